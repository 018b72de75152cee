"""Coding 1 ("ctx"): the indices coded with a 2-D adaptive context model and a binary
range coder (spec/CODING.md). Pure: indices (H, W) + palette -> payload bytes and back.

A pixel usually equals one of its neighbours (left, up, up-right, up-left), so each is
coded as a choice among the distinct neighbours, by adaptive binary decisions in a
context made of the neighbours' equality pattern, of two farther pixels and of how many
neighbours were themselves escapes. A pixel equal to none of them (an escape) is coded
as its rank among the palette entries sorted by colour distance to the left
neighbour's colour, the neighbours left out: an adaptive Elias-gamma code.

Every context depends on the pixels decoded before it, so the loop is sequential by
nature: it is compiled with numba. All arithmetic is integer, hence deterministic.
"""

import numpy as np
from numba import njit

from .errors import IndexRangeError, LengthError, PayloadError

MAX_K = 4096  # the rank tables are K x K (spec/CODING.md 2)

PROB_BITS = 16
PROB_HALF = 1 << (PROB_BITS - 1)
RATE_LIMIT = 30  # an adaptation count saturates here: the slowest rate is 1/32
RATES = np.array([(1 << PROB_BITS) // (n + 2) for n in range(RATE_LIMIT + 1)], dtype=np.int64)
TOP = 1 << 24
ESCAPE_FIRST = 2  # with this many escaped neighbours, "escape?" is decided first
MODELLED_MANTISSA = 2  # mantissa bits with an adaptive model; the rest are uniform

# Context tables, one flat array of probabilities (spec/CODING.md 4.1).
PATTERNS = 64 * 5 * 4  # equality mask x escaped neighbours x far bits
ESCAPE_BASE = 0
CANDIDATE_BASE = ESCAPE_BASE + PATTERNS
BUCKET_BASE = CANDIDATE_BASE + PATTERNS * 4
MANTISSA_BASE = BUCKET_BASE + 5 * 4 * 16
CONTEXTS = MANTISSA_BASE + 17 * 4

# Status codes of the compiled decoder, turned into exceptions by decode().
_OK, _TRUNCATED, _TRAILING, _BAD_START, _RANK = range(5)


@njit(cache=True, nogil=True)
def _fill(ref, bits, pal, order, rank, filled, keys, tally):
    """Sort the palette by squared RGB distance to entry `ref`, ties by index.

    The key (distance, index) is packed as distance << b | index (b = bits per index)
    and sorted by an LSD radix sort, a byte per pass: at K = 256 every entry becomes a
    reference and a comparison sort of each row cost about a tenth of decoding.
    `keys` (2, K) and `tally` (256) are scratch space."""
    k = pal.shape[0]
    src, dst = keys[0], keys[1]
    top = 0
    for j in range(k):
        d0 = pal[j, 0] - pal[ref, 0]
        d1 = pal[j, 1] - pal[ref, 1]
        d2 = pal[j, 2] - pal[ref, 2]
        key = ((d0 * d0 + d1 * d1 + d2 * d2) << bits) | j
        src[j] = key
        top |= key
    s = 0
    while (top >> s) > 0:
        tally[:] = 0
        for j in range(k):
            tally[(src[j] >> s) & 255] += 1
        start = 0
        for b in range(256):
            count = tally[b]
            tally[b] = start
            start += count
        for j in range(k):
            key = src[j]
            b = (key >> s) & 255
            dst[tally[b]] = key
            tally[b] += 1
        src, dst = dst, src
        s += 8
    mask = (1 << bits) - 1
    for r in range(k):
        j = src[r] & mask
        order[ref, r] = j
        rank[ref, j] = r
    filled[ref] = 1


@njit(cache=True, nogil=True, inline="always")
def _next_position(x, y, width):
    """Row-major stepping without a division per pixel."""
    x += 1
    if x == width:
        return np.int64(0), y + 1
    return x, y


@njit(cache=True, nogil=True, inline="always")
def _context(a, esc, i, x, y, width):
    """The model's view of pixel i (spec/CODING.md 4.1-4.2): (pattern, escaped
    neighbours, number of candidates, candidates c0..c3)."""
    if y == 0:
        left = np.int64(a[i - 1]) if x > 0 else np.int64(0)
        up = up_right = up_left = left
        act = np.int64(esc[i - 1]) if x > 0 else np.int64(0)
    else:
        up = np.int64(a[i - width])
        act = np.int64(esc[i - width])
        if x > 0:
            left = np.int64(a[i - 1])
            up_left = np.int64(a[i - width - 1])
            act += np.int64(esc[i - 1]) + np.int64(esc[i - width - 1])
        else:
            left = up_left = up
        if x < width - 1:
            up_right = np.int64(a[i - width + 1])
            act += np.int64(esc[i - width + 1])
        else:
            up_right = up
    far_left = np.int64(a[i - 2]) if x >= 2 else left
    far_up = np.int64(a[i - 2 * width]) if y >= 2 else up
    mask = (
        np.int64(left == up) | (np.int64(left == up_right) << 1) | (np.int64(left == up_left) << 2)
        | (np.int64(up == up_right) << 3) | (np.int64(up == up_left) << 4)
        | (np.int64(up_right == up_left) << 5)
    )
    far = np.int64(far_left == left) | (np.int64(far_up == up) << 1)
    # The candidates without a branch on the (unpredictable) neighbours: slot j holds
    # the j-th new value; slots at or past nc hold leftovers that are never read.
    new_up = np.int64(up != left)
    new_up_right = np.int64(up_right != left) & np.int64(up_right != up)
    new_up_left = np.int64(up_left != left) & np.int64(up_left != up) & np.int64(up_left != up_right)
    c1 = up if new_up else (up_right if new_up_right else up_left)
    c2 = up_right if new_up & new_up_right else up_left
    c3 = up_left
    nc = 1 + new_up + new_up_right + new_up_left
    return (mask * 5 + act) * 4 + far, act, nc, left, c1, c2, c3


@njit(cache=True, nogil=True, inline="always")
def _candidate(j, c0, c1, c2, c3):
    if j == 0:
        return c0
    if j == 1:
        return c1
    if j == 2:
        return c2
    return c3


@njit(cache=True, nogil=True, inline="always")
def _adapt(probs, counts, c, bit):
    """Move the probability of a 0 in context c towards the bit just coded."""
    n = np.int64(counts[c])
    rate = RATES[n]
    p = np.int64(probs[c])
    up = (((1 << PROB_BITS) - p) * rate) >> PROB_BITS
    down = (p * rate) >> PROB_BITS
    # Both moves computed, one selected: no branch on the (unpredictable) bit.
    probs[c] = p - down if bit else p + up
    counts[c] = n + (n < RATE_LIMIT)


@njit(cache=True, nogil=True, inline="always")
def _shift_low(low, cache, pending, pos, out):
    """Move the top byte of `low` out through the carry cache (spec/CODING.md 5.2).
    Returns the new (low, cache, pending, pos); pos becomes -1 when `out` is full."""
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
def _put(low, rng, cache, pending, pos, out, probs, counts, c, bit):
    """Encode one bit in context c; returns the new coder state."""
    bound = (rng >> PROB_BITS) * np.int64(probs[c])
    if bit == 0:
        rng = bound
    else:
        low += bound
        rng -= bound
    _adapt(probs, counts, c, bit)
    while rng < TOP:
        rng <<= 8
        low, cache, pending, pos = _shift_low(low, cache, pending, pos, out)
    return low, rng, cache, pending, pos


@njit(cache=True, nogil=True, inline="always")
def _put_uniform(low, rng, cache, pending, pos, out, value, n):
    """Encode the n-bit `value` with all values equally likely; the last value also
    gets the remainder of the range, so that every code decodes to some value."""
    step = rng >> n
    low += value * step
    rng = rng - value * step if value == (1 << n) - 1 else step
    while rng < TOP:
        rng <<= 8
        low, cache, pending, pos = _shift_low(low, cache, pending, pos, out)
    return low, rng, cache, pending, pos


@njit(cache=True, nogil=True, inline="always")
def _fetch(code, rng, pos, data):
    """Renormalise the decoder. Past the end of `data` it reads zeros and lets pos
    run beyond len(data), which the caller reports as truncation."""
    while rng < TOP:
        byte = np.int64(0)
        if pos < data.shape[0]:
            byte = np.int64(data[pos])
        pos += 1
        rng <<= 8
        code = (code << 8) | byte
    return code, rng, pos


@njit(cache=True, nogil=True, inline="always")
def _get(code, rng, pos, data, probs, counts, c):
    """Decode one bit in context c; returns (bit, code, range, pos)."""
    bound = (rng >> PROB_BITS) * np.int64(probs[c])
    bit = np.int64(code >= bound)
    code -= bound if bit else 0
    rng = rng - bound if bit else bound
    _adapt(probs, counts, c, bit)
    code, rng, pos = _fetch(code, rng, pos, data)
    return bit, code, rng, pos


@njit(cache=True, nogil=True)
def _encode(a, width, bits, pal, order, rank, filled, probs, counts, out):
    """Code the flat indices `a` into `out`; returns the payload length, -1 if out is full."""
    esc = np.zeros(a.shape[0], np.uint8)
    keys, tally = np.empty((2, pal.shape[0]), np.int64), np.empty(256, np.int64)
    low, rng, cache, pending, pos = np.int64(0), np.int64(0xFFFFFFFF), np.int64(0), np.int64(1), np.int64(0)
    x, y = np.int64(-1), np.int64(0)
    for i in range(a.shape[0]):
        x, y = _next_position(x, y, width)
        pattern, act, nc, c0, c1, c2, c3 = _context(a, esc, i, x, y, width)
        value = np.int64(a[i])
        # The candidates are distinct: at most one matches.
        hit = 0 if c0 == value else (1 if c1 == value and nc > 1 else (
            2 if c2 == value and nc > 2 else (3 if c3 == value and nc > 3 else -1)))
        first = 0
        if act >= ESCAPE_FIRST:
            bit = 1 if hit < 0 else 0
            low, rng, cache, pending, pos = _put(
                low, rng, cache, pending, pos, out, probs, counts, ESCAPE_BASE + pattern, bit)
            first = 1
        if hit >= 0 or first == 0:
            # Candidate decisions, bit 0 = "this one"; after "escape? no" the last is implied.
            last = nc - 1 if first else nc
            for j in range(last):
                bit = 0 if j == hit else 1
                low, rng, cache, pending, pos = _put(
                    low, rng, cache, pending, pos, out, probs, counts, CANDIDATE_BASE + pattern * 4 + j, bit)
                if bit == 0:
                    break
        if pos < 0:
            return -1
        if hit >= 0:
            continue
        esc[i] = 1
        if filled[c0] == 0:
            _fill(c0, bits, pal, order, rank, filled, keys, tally)
        r = np.int64(rank[c0, value])
        r -= (
            np.int64(rank[c0, c0] < r) + np.int64(nc > 1 and rank[c0, c1] < r)
            + np.int64(nc > 2 and rank[c0, c2] < r) + np.int64(nc > 3 and rank[c0, c3] < r)
        )
        e = 0
        while (r >> e) > 0:
            e += 1
        bucket = BUCKET_BASE + (act * 4 + nc - 1) * 16
        for s in range(bits):
            bit = 1 if e > s else 0
            low, rng, cache, pending, pos = _put(low, rng, cache, pending, pos, out, probs, counts, bucket + s, bit)
            if bit == 0:
                break
        node = 1
        for m in range(min(e - 1, MODELLED_MANTISSA)):
            bit = (r >> (e - 2 - m)) & 1
            c = MANTISSA_BASE + e * 4 + node
            low, rng, cache, pending, pos = _put(low, rng, cache, pending, pos, out, probs, counts, c, bit)
            node = 2 * node + bit
        n = e - 1 - MODELLED_MANTISSA
        if n > 0:
            low, rng, cache, pending, pos = _put_uniform(
                low, rng, cache, pending, pos, out, r & ((1 << n) - 1), n)
        if pos < 0:
            return -1
    for _ in range(5):
        low, cache, pending, pos = _shift_low(low, cache, pending, pos, out)
    return pos


@njit(cache=True, nogil=True)
def _decode(data, width, bits, pal, order, rank, filled, probs, counts, a):
    """Decode into the flat `a`; returns (status, pixel) with the status codes above."""
    k = pal.shape[0]
    end = data.shape[0]
    if end < 5:
        return _TRUNCATED, 0
    if data[0] != 0:
        return _BAD_START, 0
    code = (np.int64(data[1]) << 24) | (np.int64(data[2]) << 16) | (np.int64(data[3]) << 8) | data[4]
    if code == 0xFFFFFFFF:
        return _BAD_START, 0
    rng, pos = np.int64(0xFFFFFFFF), np.int64(5)
    esc = np.zeros(a.shape[0], np.uint8)
    keys, tally = np.empty((2, k), np.int64), np.empty(256, np.int64)
    x, y = np.int64(-1), np.int64(0)
    for i in range(a.shape[0]):
        x, y = _next_position(x, y, width)
        pattern, act, nc, c0, c1, c2, c3 = _context(a, esc, i, x, y, width)
        hit = -1
        first = 0
        escape = 0
        if act >= ESCAPE_FIRST:
            escape, code, rng, pos = _get(code, rng, pos, data, probs, counts, ESCAPE_BASE + pattern)
            first = 1
        if escape == 0:
            last = nc - 1 if first else nc
            for j in range(last):
                bit, code, rng, pos = _get(code, rng, pos, data, probs, counts, CANDIDATE_BASE + pattern * 4 + j)
                if bit == 0:
                    hit = j
                    break
            if hit < 0 and first:
                hit = nc - 1
        if pos > end:
            return _TRUNCATED, i
        if hit >= 0:
            a[i] = _candidate(hit, c0, c1, c2, c3)
            continue
        esc[i] = 1
        bucket = BUCKET_BASE + (act * 4 + nc - 1) * 16
        e = 0
        while e < bits:
            bit, code, rng, pos = _get(code, rng, pos, data, probs, counts, bucket + e)
            if bit == 0:
                break
            e += 1
        r = np.int64(1) if e > 0 else np.int64(0)
        for m in range(min(e - 1, MODELLED_MANTISSA)):
            bit, code, rng, pos = _get(code, rng, pos, data, probs, counts, MANTISSA_BASE + e * 4 + r)
            r = 2 * r + bit
        n = e - 1 - MODELLED_MANTISSA
        if pos > end:
            return _TRUNCATED, i
        if n > 0:
            step = rng >> n
            low_bits = min(code // step, (1 << n) - 1)
            code -= low_bits * step
            rng = rng - low_bits * step if low_bits == (1 << n) - 1 else step
            code, rng, pos = _fetch(code, rng, pos, data)
            r = (r << n) | low_bits
        if pos > end:
            return _TRUNCATED, i
        if r >= k - nc:
            return _RANK, i
        if filled[c0] == 0:
            _fill(c0, bits, pal, order, rank, filled, keys, tally)
        # Undo the candidates' removal: the smallest rank R with R = r + (number of
        # candidates ranked at or below R), reached by iterating from R = r.
        q0 = np.int64(rank[c0, c0])
        q1 = np.int64(rank[c0, c1]) if nc > 1 else np.int64(k)
        q2 = np.int64(rank[c0, c2]) if nc > 2 else np.int64(k)
        q3 = np.int64(rank[c0, c3]) if nc > 3 else np.int64(k)
        base_r = r
        while True:
            moved = base_r + (q0 <= r) + (q1 <= r) + (q2 <= r) + (q3 <= r)
            if moved == r:
                break
            r = moved
        a[i] = order[c0, r]
    if pos != end:
        return _TRAILING, a.shape[0]
    return _OK, a.shape[0]


def _state(palette):
    """Fresh model (uint16 probabilities, uint8 counts: small enough for the L1 cache)
    and empty rank tables for a palette (spec/CODING.md 4.1)."""
    k = len(palette)
    if not 1 <= k <= MAX_K:
        raise ValueError(f"coding ctx supports K from 1 to {MAX_K}, not {k}")
    pal = np.ascontiguousarray(palette, dtype=np.int64).reshape(k, 3)
    order = np.empty((k, k), dtype=np.uint16)  # order[ref, rank] = index; rows filled lazily
    rank = np.empty((k, k), dtype=np.uint16)  # rank[ref, index] = rank
    filled = np.zeros(k, dtype=np.uint8)
    probs = np.full(CONTEXTS, PROB_HALF, dtype=np.uint16)
    counts = np.zeros(CONTEXTS, dtype=np.uint8)
    return (k - 1).bit_length(), pal, order, rank, filled, probs, counts


def encode(indices, palette):
    """The coding-1 payload of `indices` (H, W), each below K = len(palette) <= MAX_K."""
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.size == 0:
        raise ValueError("indices must be a non-empty (H, W) array")
    if indices.min() < 0 or indices.max() >= len(palette):
        raise ValueError(f"indices must be in range 0..{len(palette) - 1}")
    height, width = indices.shape
    flat = np.ascontiguousarray(indices, dtype=np.uint16).reshape(-1)
    capacity = flat.size * 2 + 64
    while True:
        out = np.empty(capacity, dtype=np.uint8)
        size = _encode(flat, width, *_state(palette), out)
        if size >= 0:
            return out[:size].tobytes()
        capacity *= 4


def decode(payload, palette, width, height):
    """The indices (H, W) uint16 of a coding-1 payload; raises a FormatError subclass
    when the payload is malformed (spec/CODING.md 6)."""
    data = np.frombuffer(payload, dtype=np.uint8)
    indices = np.zeros(width * height, dtype=np.uint16)
    bits, pal, order, rank, filled, probs, counts = _state(palette)
    status, pixel = _decode(data, width, bits, pal, order, rank, filled, probs, counts, indices)
    where = f"({int(pixel) % width}, {int(pixel) // width})"
    if status == _TRUNCATED:
        raise LengthError(f"truncated: the coded index data ends before pixel {where}")
    if status == _TRAILING:
        raise LengthError("trailing bytes: the coded index data goes on after the last pixel")
    if status == _BAD_START:
        raise PayloadError("the coded index data has an illegal start (spec/CODING.md 5.1)")
    if status == _RANK:
        raise IndexRangeError(f"escape rank at pixel {where} is out of range for K = {len(palette)}")
    return indices.reshape(height, width)
