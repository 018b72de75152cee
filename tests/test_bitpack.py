"""kmz.bitpack against bitarray, an independent bit-by-bit reference (spec section 3.3)."""

import numpy as np
import pytest
from bitarray import bitarray
from bitarray.util import ba2int, int2ba
from hypothesis import given, settings
from hypothesis import strategies as st

from kmz import bitpack
from kmz.bitpack import pack, packed_size, unpack

WIDTHS = range(1, 17)
COUNTS = [0, 1, 2, 7, 8, 9, 13, 31, 101, 1000, 4099]


def reference_pack(values, bits):
    """Each value's bits, most significant first, appended one code at a time;
    bitarray pads the last byte with zero bits."""
    stream = bitarray(endian="big")
    if not values:
        return b""
    stream.encode({v: int2ba(v, length=bits, endian="big") for v in set(values)}, values)
    return stream.tobytes()


def reference_unpack(data, bits, count):
    stream = bitarray(endian="big")
    stream.frombytes(bytes(data))
    return [ba2int(stream[i * bits : (i + 1) * bits]) for i in range(count)]


def random_indices(bits, count, seed=0):
    return np.random.default_rng(seed * 100 + bits).integers(0, 1 << bits, count, dtype=np.uint16)


@pytest.mark.parametrize("bits", WIDTHS)
@pytest.mark.parametrize("count", COUNTS)
def test_pack_matches_bitarray_and_round_trips(bits, count):
    indices = random_indices(bits, count, seed=count)
    data = pack(indices, bits)
    assert data == reference_pack(indices.tolist(), bits)
    assert len(data) == packed_size(count, bits) == -(-count * bits // 8)
    spare = 8 * len(data) - count * bits
    if spare:
        assert data[-1] & ((1 << spare) - 1) == 0  # padding bits are zero
    result = unpack(data, bits, count)
    assert result.dtype == np.uint16 and result.shape == (count,)
    assert result.tolist() == indices.tolist()


@pytest.mark.parametrize("bits", WIDTHS)
def test_unpack_matches_bitarray_on_arbitrary_bytes(bits):
    # Not produced by pack: every bit pattern, including nonzero padding bits.
    data = np.random.default_rng(bits).integers(0, 256, 257, dtype=np.uint8).tobytes()
    count = 8 * len(data) // bits
    assert unpack(data, bits, count).tolist() == reference_unpack(data, bits, count)


@pytest.mark.parametrize("bits", WIDTHS)
def test_largest_values(bits):
    top = (1 << bits) - 1
    for count in (1, 7, 8, 9, 333):
        indices = np.full(count, top, dtype=np.uint16)
        data = pack(indices, bits)
        full, spare = divmod(count * bits, 8)
        assert data[:full] == b"\xff" * full
        if spare:
            assert data[full:] == bytes([(0xFF << (8 - spare)) & 0xFF])
        assert unpack(data, bits, count).tolist() == [top] * count
    alternating = np.tile(np.array([top, 0], dtype=np.uint16), 50)
    assert pack(alternating, bits) == reference_pack(alternating.tolist(), bits)


@pytest.mark.parametrize("bits", WIDTHS)
def test_extra_trailing_bytes_are_ignored(bits):
    indices = random_indices(bits, 77)
    data = pack(indices, bits)
    for extra in (b"\x00", b"\xff" * 3, b"\xa5" * 40):
        assert unpack(data + extra, bits, 77).tolist() == indices.tolist()
        assert unpack(bytearray(data + extra), bits, 77).tolist() == indices.tolist()


@pytest.mark.parametrize("bits", WIDTHS)
def test_across_chunks(bits, monkeypatch):
    # The work is done in chunks of bitpack._CHUNK values; make them small so that
    # chunk boundaries (and their last words) fall inside a short input.
    monkeypatch.setattr(bitpack, "_CHUNK", 64)
    for count in (64, 65, 64 * 5 + 9, 1001):
        indices = random_indices(bits, count, seed=count)
        data = pack(indices, bits)
        assert data == reference_pack(indices.tolist(), bits)
        assert unpack(data, bits, count).tolist() == indices.tolist()


@pytest.mark.parametrize("bits", [3, 9, 12])
def test_real_chunk_boundary(bits):
    count = bitpack._CHUNK + 21
    indices = random_indices(bits, count)
    data = pack(indices, bits)
    assert data == reference_pack(indices.tolist(), bits)
    assert np.array_equal(unpack(data, bits, count), indices)


@pytest.mark.parametrize("bits", WIDTHS)
def test_input_dtypes_and_layouts_give_the_same_bytes(bits):
    indices = random_indices(bits, 203)
    expected = reference_pack(indices.tolist(), bits)
    assert pack(indices.tolist(), bits) == expected
    assert pack(indices.astype(np.int64), bits) == expected
    assert pack(indices.reshape(7, 29), bits) == expected  # row-major order
    strided = np.zeros(406, dtype=np.uint16)
    strided[::2] = indices
    assert pack(strided[::2], bits) == expected
    if bits <= 8:
        assert pack(indices.astype(np.uint8), bits) == expected


@pytest.mark.parametrize("bits", WIDTHS)
def test_pack_leaves_its_input_alone(bits):
    indices = random_indices(bits, 1000)
    before = indices.copy()
    pack(indices, bits)
    assert np.array_equal(indices, before)


def test_zero_bits():
    assert pack(np.zeros(10, dtype=np.uint16), 0) == b""
    assert pack([], 0) == b""
    result = unpack(b"", 0, 10)
    assert result.dtype == np.uint16 and result.tolist() == [0] * 10
    assert packed_size(10, 0) == 0


def test_spec_example():
    # spec/FORMAT.md 3.3: K = 5 (b = 3), indices 4, 0, 3 -> 100 000 011 -> 81 80.
    assert pack([4, 0, 3], 3) == b"\x81\x80"
    assert unpack(b"\x81\x80", 3, 3).tolist() == [4, 0, 3]


@pytest.mark.parametrize("bits", [-1, 17, 32])
def test_bits_out_of_range(bits):
    message = f"bits must be between 0 and 16, not {bits}"
    with pytest.raises(ValueError, match=message):
        pack([0], bits)
    with pytest.raises(ValueError, match=message):
        unpack(b"\x00\x00\x00", bits, 1)


def test_unpack_needs_enough_data():
    with pytest.raises(ValueError):
        unpack(b"\x00\x00", 9, 2)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 16).flatmap(lambda b: st.tuples(st.just(b), st.lists(st.integers(0, (1 << b) - 1), max_size=70))))
def test_any_values(case):
    bits, values = case
    data = pack(np.array(values, dtype=np.uint16), bits)
    assert data == reference_pack(values, bits)
    assert unpack(data, bits, len(values)).tolist() == values
