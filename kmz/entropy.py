"""Coding 1 ("ctx"): the indices coded with a 2-D adaptive context model and a binary
range coder (spec/CODING.md). Pure: indices (H, W) + palette -> payload bytes and back.

Each pixel is first predicted by its distinct neighbours (left, up, up-right, up-left):
one adaptive binary decision per candidate, in a context made of the neighbours'
equality pattern and of how many of them were themselves escapes. A pixel equal to
none of them (an escape) is coded as its rank among the palette entries sorted by
colour distance to the left neighbour's colour, candidates left out: an adaptive
Elias-gamma code (bucket = bit length, then the bits below the leading one).

The per-pixel loop is sequential by nature (every context depends on the pixels
decoded before), so it is compiled with numba; all arithmetic is integer.
"""

import numpy as np
from numba import njit

from .errors import IndexRangeError, LengthError, PayloadError

MAX_K = 4096  # the distance-rank tables are K x K; see spec/CODING.md 2

PROB_BITS = 16
PROB_ONE = 1 << PROB_BITS
RATE_LIMIT = 30  # adaptation count saturates here: the slowest rate is 1/32
RATES = np.array([PROB_ONE // (n + 2) for n in range(RATE_LIMIT + 1)], dtype=np.int64)
TOP = 1 << 24
ACTIVITY = 5  # 0..4 escaped neighbours
CANDIDATE_CONTEXTS = 64 * ACTIVITY * 4
BUCKET_CONTEXTS = ACTIVITY * 4

# Decoder status codes (returned by the compiled loop, turned into exceptions below).
_OK, _TRUNCATED, _TRAILING, _BAD_START, _RANK = range(5)


def _tables(palette):
    """Empty lazily filled distance-rank tables and the int32 palette they come from."""
    k = len(palette)
    order = np.empty((k, k), dtype=np.uint16)  # order[ref][rank] = index
    rank = np.empty((k, k), dtype=np.uint16)  # rank[ref][index] = rank
    filled = np.zeros(k, dtype=np.uint8)
    return np.ascontiguousarray(palette, dtype=np.int64), order, rank, filled


@njit(cache=True, nogil=True)
def _fill(ref, pal, order, rank, filled):
    """Sort the palette by squared RGB distance to entry `ref`, ties by index."""
    k = pal.shape[0]
    keys = np.empty(k, dtype=np.int64)
    for j in range(k):
        d0 = pal[j, 0] - pal[ref, 0]
        d1 = pal[j, 1] - pal[ref, 1]
        d2 = pal[j, 2] - pal[ref, 2]
        keys[j] = (d0 * d0 + d1 * d1 + d2 * d2) * k + j
    idx = np.argsort(keys)
    for r in range(k):
        order[ref, r] = idx[r]
        rank[ref, idx[r]] = r
    filled[ref] = 1


@njit(cache=True, nogil=True, inline="always")
def _neighbours(a, i, x, y, width):
    """(L, U, UR, UL) with the edge rules of spec/CODING.md 3."""
    if y == 0:
        if x == 0:
            return 0, 0, 0, 0
        left = a[i - 1]
        return left, left, left, left
    up = a[i - width]
    left = a[i - 1] if x > 0 else up
    up_left = a[i - width - 1] if x > 0 else up
    up_right = a[i - width + 1] if x < width - 1 else up
    return left, up, up_right, up_left


@njit(cache=True, nogil=True, inline="always")
def _activity(esc, i, x, y, width):
    if y == 0:
        return np.int64(esc[i - 1]) if x > 0 else np.int64(0)
    n = np.int64(esc[i - width])
    if x > 0:
        n += np.int64(esc[i - 1]) + np.int64(esc[i - width - 1])
    if x < width - 1:
        n += np.int64(esc[i - width + 1])
    return n


@njit(cache=True, nogil=True, inline="always")
def _adapt(probs, counts, c, bit, rates):
    n = counts[c]
    p = probs[c]
    if bit == 0:
        p += ((PROB_ONE - p) * rates[n]) >> PROB_BITS
    else:
        p -= (p * rates[n]) >> PROB_BITS
    probs[c] = p
    if n < RATE_LIMIT:
        counts[c] = n + 1


@njit(cache=True, nogil=True, inline="always")
def _shift_low(low, cache, pending, pos, out):
    """Move the top byte of `low` out through the carry cache (spec/CODING.md 5.2).
    Returns the new (low, cache, pending, pos); pos = -1 when `out` is full."""
    if low < 0xFF000000 or low > 0xFFFFFFFF:
        carry = low >> 32
        if pos < 0 or pos + pending > out.shape[0]:
            return low, cache, pending, np.int64(-1)
        out[pos] = (cache + carry) & 0xFF
        pos += 1
        for _ in range(pending - 1):
            out[pos] = (0xFF + carry) & 0xFF
            pos += 1
        pending = 0
        cache = (low >> 24) & 0xFF
    return (low & 0x00FFFFFF) << 8, cache, pending + 1, pos


@njit(cache=True, nogil=True, inline="always")
def _put(low, rng, cache, pending, pos, out, probs, counts, c, bit, rates):
    """Encode one bit in context c; returns the new coder state."""
    bound = (rng >> PROB_BITS) * probs[c]
    if bit == 0:
        rng = bound
    else:
        low += bound
        rng -= bound
    _adapt(probs, counts, c, bit, rates)
    while rng < TOP:
        rng <<= 8
        low, cache, pending, pos = _shift_low(low, cache, pending, pos, out)
    return low, rng, cache, pending, pos


@njit(cache=True, nogil=True, inline="always")
def _get(code, rng, pos, data, probs, counts, c, rates):
    """Decode one bit in context c; returns (bit, code, range, pos). A read past the
    end of `data` reads 0 and leaves pos > len(data): the caller reports truncation."""
    bound = (rng >> PROB_BITS) * probs[c]
    if code < bound:
        rng = bound
        bit = 0
    else:
        code -= bound
        rng -= bound
        bit = 1
    _adapt(probs, counts, c, bit, rates)
    while rng < TOP:
        byte = np.int64(0)
        if pos < data.shape[0]:
            byte = np.int64(data[pos])
        pos += 1
        rng <<= 8
        code = (code << 8) | byte
    return bit, code, rng, pos


@njit(cache=True, nogil=True, inline="always")
def _context(a, esc, cand, i, x, y, width):
    """Fill `cand` with the distinct neighbours; return (count, context base, activity)."""
    left, up, up_right, up_left = _neighbours(a, i, x, y, width)
    left, up, up_right, up_left = np.int64(left), np.int64(up), np.int64(up_right), np.int64(up_left)
    act = _activity(esc, i, x, y, width)
    mask = (
        np.int64(left == up) | (np.int64(left == up_right) << 1) | (np.int64(left == up_left) << 2)
        | (np.int64(up == up_right) << 3) | (np.int64(up == up_left) << 4)
        | (np.int64(up_right == up_left) << 5)
    )
    cand[0] = left
    nc = 1
    if up != left:
        cand[nc] = up
        nc += 1
    if up_right != left and up_right != up:
        cand[nc] = up_right
        nc += 1
    if up_left != left and up_left != up and up_left != up_right:
        cand[nc] = up_left
        nc += 1
    return nc, (mask * ACTIVITY + act) * 4, act


def _model(bits):
    """Initial probabilities and counts, and the offsets of the three context tables."""
    stride = 1 << max(bits - 1, 0)
    size = CANDIDATE_CONTEXTS + BUCKET_CONTEXTS * 16 + (bits + 1) * stride
    probs = np.full(size, PROB_ONE // 2, dtype=np.int64)
    return probs, np.zeros(size, dtype=np.int64), stride


@njit(cache=True, nogil=True)
def _encode(a, width, bits, pal, order, rank, filled, rates, probs, counts, stride, out):
    """Code the flat indices `a` into `out`; returns the payload length, -1 if out is full."""
    n_pix = a.shape[0]
    bucket_base = CANDIDATE_CONTEXTS
    mant_base = bucket_base + BUCKET_CONTEXTS * 16
    esc = np.zeros(n_pix, np.uint8)
    low, rng, cache, pending, pos = np.int64(0), np.int64(0xFFFFFFFF), np.int64(0), np.int64(1), np.int64(0)
    cand = np.empty(4, np.int64)
    for i in range(n_pix):
        y = i // width
        x = i - y * width
        nc, base, act = _context(a, esc, cand, i, x, y, width)
        value = a[i]
        hit = False
        for j in range(nc):
            bit = 0 if cand[j] == value else 1
            low, rng, cache, pending, pos = _put(low, rng, cache, pending, pos, out, probs, counts, base + j, bit, rates)
            if bit == 0:
                hit = True
                break
        if pos < 0:
            return -1
        if hit:
            continue
        esc[i] = 1
        ref = cand[0]
        if filled[ref] == 0:
            _fill(ref, pal, order, rank, filled)
        r = np.int64(rank[ref, value])
        below = 0
        for j in range(nc):
            if rank[ref, cand[j]] < r:
                below += 1
        r -= below
        e = 0
        t = r
        while t > 0:
            e += 1
            t >>= 1
        ctx_b = bucket_base + (act * 4 + nc - 1) * 16
        for s in range(bits):
            bit = 1 if e > s else 0
            low, rng, cache, pending, pos = _put(low, rng, cache, pending, pos, out, probs, counts, ctx_b + s, bit, rates)
            if bit == 0:
                break
        v = 1
        for m in range(e - 2, -1, -1):
            bit = (r >> m) & 1
            c = mant_base + e * stride + v
            low, rng, cache, pending, pos = _put(low, rng, cache, pending, pos, out, probs, counts, c, bit, rates)
            v = 2 * v + bit
    for _ in range(5):
        low, cache, pending, pos = _shift_low(low, cache, pending, pos, out)
    return pos


@njit(cache=True, nogil=True)
def _decode(data, n_pix, width, bits, pal, order, rank, filled, rates, probs, counts, stride, a):
    """Decode into `a`; returns (status, pixel) with the status codes above."""
    k = pal.shape[0]
    bucket_base = CANDIDATE_CONTEXTS
    mant_base = bucket_base + BUCKET_CONTEXTS * 16
    if data.shape[0] < 5:
        return _TRUNCATED, 0
    if data[0] != 0:
        return _BAD_START, 0
    code = (np.int64(data[1]) << 24) | (np.int64(data[2]) << 16) | (np.int64(data[3]) << 8) | data[4]
    rng = np.int64(0xFFFFFFFF)
    pos = np.int64(5)
    end = data.shape[0]
    if code == 0xFFFFFFFF:
        return _BAD_START, 0
    esc = np.zeros(n_pix, np.uint8)
    cand = np.empty(4, np.int64)
    ranks = np.empty(4, np.int64)
    for i in range(n_pix):
        y = i // width
        x = i - y * width
        nc, base, act = _context(a, esc, cand, i, x, y, width)
        hit = -1
        for j in range(nc):
            bit, code, rng, pos = _get(code, rng, pos, data, probs, counts, base + j, rates)
            if bit == 0:
                hit = j
                break
        if pos > end:
            return _TRUNCATED, i
        if hit >= 0:
            a[i] = cand[hit]
            continue
        esc[i] = 1
        ctx_b = bucket_base + (act * 4 + nc - 1) * 16
        e = 0
        while e < bits:
            bit, code, rng, pos = _get(code, rng, pos, data, probs, counts, ctx_b + e, rates)
            if bit == 0:
                break
            e += 1
        r = 0
        if e > 0:
            v = 1
            for m in range(e - 1):
                bit, code, rng, pos = _get(code, rng, pos, data, probs, counts, mant_base + e * stride + v, rates)
                v = 2 * v + bit
            r = v
        if pos > end:
            return _TRUNCATED, i
        if r >= k - nc:
            return _RANK, i
        ref = cand[0]
        if filled[ref] == 0:
            _fill(ref, pal, order, rank, filled)
        # Undo the candidates' removal: step over each candidate ranked at or below r.
        for j in range(nc):
            ranks[j] = rank[ref, cand[j]]
        ranks[:nc].sort()
        for j in range(nc):
            if ranks[j] <= r:
                r += 1
        a[i] = order[ref, r]
    if pos != end:
        return _TRAILING, n_pix
    return _OK, n_pix


def encode(indices, palette):
    """The coding-1 payload of `indices` (H, W), all below K = len(palette) <= MAX_K."""
    indices = np.asarray(indices)
    palette = np.asarray(palette)
    k = len(palette)
    if not 1 <= k <= MAX_K:
        raise ValueError(f"coding ctx supports K from 1 to {MAX_K}, not {k}")
    height, width = indices.shape
    flat = np.ascontiguousarray(indices.reshape(-1), dtype=np.int64)
    bits = (k - 1).bit_length()
    pal, order, rank, filled = _tables(palette)
    capacity = len(flat) * (bits + 2) // 8 + 64
    while True:
        probs, counts, stride = _model(bits)
        out = np.empty(capacity, dtype=np.uint8)
        n = _encode(flat, width, bits, pal, order, rank, filled, RATES, probs, counts, stride, out)
        if n >= 0:
            return out[:n].tobytes()
        capacity *= 4


def decode(payload, palette, width, height):
    """Indices (H, W) uint16 from a coding-1 payload; raises a FormatError subclass."""
    k = len(palette)
    bits = (k - 1).bit_length()
    data = np.frombuffer(payload, dtype=np.uint8)
    pal, order, rank, filled = _tables(palette)
    probs, counts, stride = _model(bits)
    a = np.zeros(width * height, dtype=np.uint16)
    status, pixel = _decode(data, width * height, width, bits, pal, order, rank, filled,
                            RATES, probs, counts, stride, a)
    if status == _TRUNCATED:
        raise LengthError(f"truncated: the coded index data ends before pixel {_where(pixel, width)}")
    if status == _TRAILING:
        raise LengthError("trailing bytes: the coded index data does not end where the pixels do")
    if status == _BAD_START:
        raise PayloadError("the coded index data has an illegal start (spec/CODING.md 5.3)")
    if status == _RANK:
        raise IndexRangeError(f"escape rank at pixel {_where(pixel, width)} is out of range for K = {k}")
    return a.reshape(height, width)


def _where(pixel, width):
    row, col = divmod(int(pixel), width)
    return f"({col}, {row})"
