"""Bit packing of indices: `bits` bits each, most significant bit first, no padding
between values, the last byte padded with zero bits.

Pure and vectorized. Values go in groups of u (a power of two) whose u*bits bits fill
U whole bytes. Packing merges neighbours, b -> 2b -> 4b ... bits, by viewing a pair of
containers (uint8..uint64) as one integer twice as wide, and leaves each group
left-aligned in a word of K >= U bytes; unpacking reads each group as such a word and
splits it back the same way. Words are written and read at overlapping byte offsets in
one strided, byteswapping copy. At millions of indices the cost is memory traffic, not
arithmetic: the work runs in chunks that fit the cache, with few passes each, in place
where the array is ours.
"""

import numpy as np

MAX_BITS = 16

# Values per chunk: at 2^18..2^20 the temporaries stay in cache, and whole-array steps
# on millions of values run 3 to 6 times faster than on the full array.
_CHUNK = 1 << 19

_UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}


def packed_size(count, bits):
    """Bytes needed for `count` indices of `bits` bits: ceil(count * bits / 8)."""
    return (count * bits + 7) // 8


def _check_bits(bits):
    if not 0 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be between 0 and {MAX_BITS}, not {bits}")


def _group(bits):
    """(u, U, K): values per group, its bytes, and the bytes of the word read or written
    per group. A byte for 2 and 4 bits; four values for even widths above 8 (4b <= 56
    bits fit one word); else eight: the fewest that fill whole bytes for odd widths,
    the most that fit one word for 6. Odd widths above 8 take two words (K = 16)."""
    u = {2: 4, 4: 2}.get(bits, 4 if bits > 8 and bits % 2 == 0 else 8)
    size = u * bits // 8
    return u, size, max(1, 1 << (size - 1).bit_length())


def _container(nbits):
    """Smallest unsigned integer size in bits (8, 16, 32 or 64) holding `nbits` bits."""
    return max(8, 1 << (nbits - 1).bit_length())


def _pack_groups(values, bits, out):
    """Pack contiguous uint16 `values`, a whole number of groups, into uint8 `out`,
    which must extend K - U bytes past the last group (they are overwritten by zeros)."""
    u, size, word = _group(bits)
    a, s, n = values, 16, bits  # containers of s bits holding n-bit values
    levels = u.bit_length() - 1
    # Odd widths above 8 stop a merge early: their groups take two words (below).
    for level in range(levels - (size > 8)):
        own = a is not values  # never modify the caller's array
        final = level == levels - 1
        w = a.view(_UINT[2 * s])  # a pair of containers, the first value in the low half
        if 2 * n <= s:
            # Multiplying by 2^(s+n) + 1 lands first<<n | second at bits s..s+2n and
            # pushes the rest out of the word: a clean merge in two passes.
            w = np.multiply(w, _UINT[2 * s]((1 << (s + n)) + 1), out=w if own else None)
            s2 = _container(2 * n)
            a = np.right_shift(w, s, out=np.empty(len(w), _UINT[s2]), casting="unsafe")
            s = s2
        elif final:
            # Left-align the group in the word, zeros below: each value is shifted to
            # the top first, which drops whatever lay above it.
            a = np.left_shift(w, 2 * s - n)
            w = np.right_shift(w, s, out=w if own else None)
            w <<= 2 * s - n
            w >>= n
            a |= w
            s = 2 * s
        else:
            # Shift-or leaves the second value's own bits as garbage above bit s + n,
            # which the final merge drops; a merge before that needs them cleared.
            a = np.left_shift(w, n)
            a |= np.right_shift(w, s, out=w if own else None)
            if level < levels - 2:
                a &= _UINT[2 * s]((1 << 2 * n) - 1)
            s = 2 * s
        n = 2 * n
    if size > 8:
        # Odd widths above 8: two 4b-bit halves q0, q1 (garbage above) in 64-bit
        # containers make 8b > 64 bits: word 0 = q0 and the top of q1, word 1 the rest.
        pairs = a.reshape(-1, 2)
        hi = pairs[:, 0] << np.uint64(64 - n)
        lo = pairs[:, 1] << np.uint64(64 - n)
        hi |= lo >> np.uint64(n)
        lo <<= np.uint64(64 - n)
        words = [hi, lo]
    else:
        words = [a]
    # Fill the bytes below each group's with the next group's first bytes, so that
    # the overlapping writes below agree wherever they overlap, in any order.
    if word > size:
        words[-1][:-1] |= words[0][1:] >> words[0].dtype.type(8 * (size % 8))
    # One pass writes each word big-endian at its group's byte offset: the byteswap
    # and the squeeze from K to U bytes per group at once.
    for offset, w in zip((0, 8), words):
        dst = np.ndarray((len(w),), f">u{w.itemsize}", out, offset=offset, strides=(size,))
        np.copyto(dst, w)


def pack(indices, bits):
    """Pack a 1-D array of non-negative integers below 2**bits into bytes."""
    _check_bits(bits)
    indices = np.asarray(indices).reshape(-1)
    count = len(indices)
    if bits == 0 or count == 0:
        return b""
    if bits == 8:
        return indices.astype(np.uint8).tobytes()
    if bits == 16:
        return indices.astype(">u2").tobytes()
    values = np.ascontiguousarray(indices, dtype=np.uint16)
    u, size, word = _group(bits)
    groups, rest = divmod(count, u)
    total = packed_size(count, bits)
    out = np.empty(total + word, np.uint8)  # room for the last group's whole word
    step = _CHUNK // u
    for start in range(0, groups, step):
        # Chunk by chunk, so the temporaries stay in cache; a chunk's last word
        # spills zeros into the next chunk's first bytes, overwritten right after.
        end = min(start + step, groups)
        _pack_groups(values[start * u : end * u], bits, out[start * size :])
    if rest:
        # The last, partial group, after the others: zero values give zero padding.
        tail = np.zeros(u, np.uint16)
        tail[:rest] = values[groups * u :]
        _pack_groups(tail, bits, out[groups * size :])
    return out[:total].tobytes()


def _words(buf, count, stride, offset=0, word=8):
    """A view of `count` big-endian integers of `word` bytes in `buf`, the i-th at byte
    offset + i * stride. The reads may overlap; copying the view to a native array
    swaps the bytes and makes it contiguous in one pass."""
    return np.ndarray((count,), f">u{word}", buf, offset=offset, strides=(stride,))


def _unpack_groups(buf, bits, out):
    """Unpack len(out) // u groups from uint8 `buf` into uint16 `out`. `buf` must
    extend at least K - U bytes past the last group: each group is read as a whole
    word, the next group's bytes below it shifted out."""
    u, size, word = _group(bits)
    groups = len(out) // u
    if word <= 8:
        a = _words(buf, groups, size, word=word).astype(_UINT[8 * word])
        n = 8 * size
    else:
        # Odd widths above 8: the group's first four values are its first 4b bits;
        # the other four start 4 bits into byte (b - 1) / 2. Read a word at each,
        # shift out those 4 bits, and both halves are split like an even width.
        a = np.empty((groups, 2), np.uint64)
        for col, offset in enumerate((0, (bits - 1) // 2)):
            np.copyto(a[:, col], _words(buf, groups, size, offset))  # 1-D: 6x faster than 2-D
        a[:, 1] <<= np.uint64(4)
        n = 4 * bits
    s, left = 8 * a.itemsize, True  # n bits left-aligned in s-bit words, garbage below
    a = a.reshape(-1)
    while n > 2 * bits:
        # Split each n-bit value in two: the upper half is the first child. A child
        # keeps whatever lies above it (a truncating cast); the last split drops it.
        m = n // 2
        c = _container(m)
        if 2 * c == s:
            # The pair of children is a word as wide as the parent: build it in place
            # with contiguous passes, the first child in the low half.
            first = a >> _UINT[s](s - m if left else m)
            if not left:
                first &= _UINT[s]((1 << c) - 1)  # its garbage would reach the second
            if left:
                a >>= _UINT[s](s - n)
            a <<= _UINT[s](c)
            a |= first
            a = a.view(_UINT[c])
        else:
            pairs = np.empty((len(a), 2), _UINT[c])
            for col, shift in enumerate((s - m, s - n) if left else (m, 0)):
                np.right_shift(a, shift, out=pairs[:, col], casting="unsafe")
            a = pairs.reshape(-1)
        s, n, left = c, m, False
    # The last split writes the output as uint32 words, each holding a pair of uint16
    # outputs, the first in the low half: contiguous passes instead of strided ones.
    words = out.view(np.uint32)
    if s <= 16:
        # (v << 16) | (v >> b) in one multiplication: v * 2^(16+b) and v do not overlap.
        np.multiply(a, np.uint32((1 << (16 + bits)) + 1), out=words, dtype=np.uint32)
        words >>= np.uint32(bits)
        words &= np.uint32(((1 << bits) - 1) * 0x10001)
    else:
        # 32-bit containers: shifting each value to the top first drops the garbage.
        np.right_shift(a << np.uint32(32 - 2 * bits), np.uint32(32 - bits), out=words)
        a <<= np.uint32(32 - bits)
        a >>= np.uint32(16 - bits)
        words |= a


def unpack(data, bits, count):
    """Unpack `count` indices of `bits` bits from bytes; returns a uint16 array.

    `data` must hold at least packed_size(count, bits) bytes; extra bytes are ignored.
    """
    _check_bits(bits)
    if bits == 0 or count == 0:
        return np.zeros(count, dtype=np.uint16)
    need = packed_size(count, bits)
    buf = np.frombuffer(data, dtype=np.uint8, count=need)
    if bits == 8:
        return buf.astype(np.uint16)
    if bits == 16:
        return buf.view(">u2").astype(np.uint16)
    if bits == 1:
        return np.unpackbits(buf, count=count).astype(np.uint16)  # a C table lookup
    u, size, word = _group(bits)
    groups = -(-count // u)
    # Groups whose word read stays inside the data go straight from it; the last few
    # (and a partial group) from a zero-padded copy of the remaining bytes.
    direct = min(groups, max(0, (need - word) // size + 1))
    out = np.empty(groups * u, np.uint16)
    step = _CHUNK // u
    for start in range(0, direct, step):  # chunk by chunk, as in pack()
        _unpack_groups(buf[start * size :], bits, out[start * u : min(start + step, direct) * u])
    if direct < groups:
        tail = np.zeros((groups - direct) * size + word, np.uint8)
        rest = buf[direct * size :]
        tail[: len(rest)] = rest
        _unpack_groups(tail, bits, out[direct * u :])
    return out[:count]
