"""Bit packing of indices: `bits` bits each, most significant bit first, no padding
between values, the last byte padded with zero bits.

Pure and vectorized. Eight indices of b bits fill exactly b bytes, so both directions
work on groups of eight: pairs are merged by shifts (b -> 2b -> 4b bits, halving the
element count each step, so the total work stays about 2N), and the last merge writes
the group's 8b bits as big-endian 64-bit words whose top b bytes are the output.
"""

import numpy as np

MAX_BITS = 16


def packed_size(count, bits):
    """Bytes needed for `count` indices of `bits` bits: ceil(count * bits / 8)."""
    return (count * bits + 7) // 8


def _check_bits(bits):
    if not 0 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be between 0 and {MAX_BITS}, not {bits}")


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
    groups = -(-count // 8)
    padded = np.zeros(groups * 8, dtype=np.uint64)
    padded[:count] = indices
    v = padded.reshape(groups, 8)
    # Merge neighbours: after each step every value holds 2x the bits, MSB first.
    pairs = (v[:, 0::2] << np.uint64(bits)) | v[:, 1::2]  # (groups, 4), 2b bits
    quads = (pairs[:, 0::2] << np.uint64(2 * bits)) | pairs[:, 1::2]  # (groups, 2), 4b bits
    first, second = quads[:, 0], quads[:, 1]
    if bits <= 8:
        # The whole group (8b <= 64 bits) fits one word, right-aligned.
        words = ((first << np.uint64(4 * bits)) | second).astype(">u8")
        out = words.view(np.uint8).reshape(groups, 8)[:, 8 - bits :]
    else:
        # 8b bits span two words; align the group to the top of the first word.
        hi = (first << np.uint64(64 - 4 * bits)) | (second >> np.uint64(8 * bits - 64))
        lo = second << np.uint64(128 - 8 * bits)
        words = np.stack([hi, lo], axis=1).astype(">u8")
        out = words.view(np.uint8).reshape(groups, 16)[:, :bits]
    return out.tobytes()[: packed_size(count, bits)]


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
    groups = -(-count // 8)
    rows = np.zeros((groups, 16 if bits > 8 else 8), dtype=np.uint8)
    flat = np.zeros(groups * bits, dtype=np.uint8)
    flat[:need] = buf
    mask4 = np.uint64((1 << (4 * bits)) - 1)
    if bits <= 8:
        rows[:, 8 - bits :] = flat.reshape(groups, bits)
        word = rows.view(">u8").reshape(groups).astype(np.uint64)
        first, second = word >> np.uint64(4 * bits), word & mask4
    else:
        rows[:, :bits] = flat.reshape(groups, bits)
        words = rows.view(">u8").astype(np.uint64)
        hi, lo = words[:, 0], words[:, 1]
        first = hi >> np.uint64(64 - 4 * bits)
        second = ((hi << np.uint64(8 * bits - 64)) | (lo >> np.uint64(128 - 8 * bits))) & mask4
    out = np.empty((groups, 8), dtype=np.uint16)
    mask2, mask1 = np.uint64((1 << (2 * bits)) - 1), np.uint64((1 << bits) - 1)
    for q, quad in enumerate((first, second)):
        for p, pair in enumerate((quad >> np.uint64(2 * bits), quad & mask2)):
            col = 4 * q + 2 * p
            out[:, col] = pair >> np.uint64(bits)
            out[:, col + 1] = pair & mask1
    return out.reshape(-1)[:count]
