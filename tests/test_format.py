"""kmz.format against spec/FORMAT.md: header bytes, the length formula, the CRC, and
every decoder check of section 4 with its error class, message and order."""

import re
import struct
import zlib

import numpy as np
import pytest

from kmz import format as fmt
from kmz.errors import (
    ChecksumError,
    FormatError,
    HeaderError,
    IndexRangeError,
    LengthError,
    PaddingError,
    SignatureError,
    VersionError,
)

PALETTE5 = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)], dtype=np.uint8)


def valid_file(width=3, height=2, k=5, indices=(4, 0, 3, 1, 2, 4)):
    palette = PALETTE5 if k == 5 else np.arange(3 * k, dtype=np.uint64).astype(np.uint8).reshape(k, 3)
    return fmt.encode(fmt.Header(width, height, k), palette, np.array(indices))


def rewrite(data, offset, new, fix_crc=True):
    """`data` with bytes at `offset` replaced; the CRC recomputed unless fix_crc is False."""
    out = bytearray(data)
    out[offset : offset + len(new)] = new
    if fix_crc:
        out[-4:] = struct.pack(">I", zlib.crc32(bytes(out[:-4])))
    return bytes(out)


def test_header_bytes_match_the_spec_table():
    header = fmt.Header(width=3, height=2, k=5).pack()
    assert header == bytes.fromhex("8b4b4d5a0d0a1a0a" "01" "00" "0000" "00000003" "00000002" "0004" "03" "00")
    assert len(header) == fmt.HEADER_SIZE == 24


def test_header_round_trip_through_read_header():
    for width, height, k in [(1, 1, 1), (7, 3, 3), (2**31 - 1, 5, 65536), (640, 480, 257)]:
        header = fmt.Header(width, height, k)
        assert fmt.read_header(header.pack()) == header


@pytest.mark.parametrize(
    "k, b", [(1, 0), (2, 1), (3, 2), (4, 2), (5, 3), (8, 3), (9, 4), (255, 8), (256, 8), (257, 9),
             (1000, 10), (32768, 15), (32769, 16), (65536, 16)],
)
def test_bits_per_index_is_ceil_log2_k(k, b):
    assert fmt.bits_per_index(k) == b
    assert fmt.Header(1, 1, k).bits_per_index == b


def test_file_size_formula():
    assert fmt.file_size(1, 1, 1) == 31  # header + 3 + no index data + CRC
    assert fmt.file_size(3, 1, 5) == 24 + 15 + 2 + 4  # 9 bits -> 2 bytes
    assert fmt.file_size(4, 2, 2) == 24 + 6 + 1 + 4
    assert fmt.file_size(5, 3, 300) == 24 + 900 + 17 + 4  # 135 bits -> 17 bytes
    assert fmt.file_size(100, 100, 65536) == 24 + 3 * 65536 + 20000 + 4
    # Python integers: the largest header's size does not overflow.
    big = 2**31 - 1
    assert fmt.file_size(big, big, 65536) == 28 + 3 * 65536 + 2 * big * big


@pytest.mark.parametrize(
    "kwargs, message",
    [({"width": 0}, "width"), ({"height": 2**31}, "height"), ({"k": 0}, "k must be"), ({"k": 65537}, "k must be"),
     ({"coding": 200}, "coding")],
)
def test_header_rejects_illegal_values_with_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fmt.Header(**{"width": 1, "height": 1, "k": 2, **kwargs})


def test_spec_example_index_bytes():
    # Spec 3.3: K = 5, W = 3, H = 1, indices 4 0 3 -> stream 100 000 011 -> bytes 81 80.
    data = fmt.encode(fmt.Header(3, 1, 5), PALETTE5, [4, 0, 3])
    assert data[24 + 15 : -4] == b"\x81\x80"
    assert data[24 : 24 + 15] == PALETTE5.tobytes()


def test_crc_is_the_spec_crc32_of_every_byte_before_it():
    assert zlib.crc32(b"123456789") == 0xCBF43926  # the spec's check value for its CRC
    data = valid_file()
    assert struct.unpack(">I", data[-4:])[0] == zlib.crc32(data[:-4])


def test_decode_returns_header_palette_and_indices():
    header, palette, indices = fmt.decode(valid_file())
    assert header == fmt.Header(3, 2, 5)
    assert palette.dtype == np.uint8 and (palette == PALETTE5).all()
    assert indices.shape == (2, 3) and indices.tolist() == [[4, 0, 3], [1, 2, 4]]


def test_decode_accepts_any_bytes_like():
    data = valid_file()
    for form in (data, bytearray(data), memoryview(data)):
        assert fmt.decode(form)[2].tolist() == [[4, 0, 3], [1, 2, 4]]


def test_k_1_has_no_index_data_and_every_pixel_is_entry_0():
    data = fmt.encode(fmt.Header(5, 4, 1), [[9, 8, 7]], np.zeros(20, dtype=np.uint16))
    assert len(data) == 31
    header, palette, indices = fmt.decode(data)
    assert indices.shape == (4, 5) and not indices.any()


def test_k_65536_sixteen_bit_indices():
    indices = np.array([0, 65535, 256, 40000])
    palette = np.zeros((65536, 3), dtype=np.uint8)
    data = fmt.encode(fmt.Header(2, 2, 65536), palette, indices)
    assert len(data) == 28 + 3 * 65536 + 8
    assert data[24 + 3 * 65536 : -4] == bytes.fromhex("0000ffff01009c40")
    assert fmt.decode(data)[2].reshape(-1).tolist() == indices.tolist()


# Every check of spec section 4, in its order: (what is broken, the file, class, message).
def _checks():
    base = valid_file()
    return [
        ("signature", rewrite(base, 0, b"\x0b"), SignatureError, "not a .kmz file"),
        ("signature, short file", b"GIF8", SignatureError, "not a .kmz file"),
        ("shorter than the header", base[:23], LengthError, "truncated"),
        ("version", rewrite(base, 8, b"\x00"), VersionError, "unknown format version 0"),
        ("coding", rewrite(base, 9, b"\x03"), HeaderError, "unknown index coding 3"),
        ("reserved u16", rewrite(base, 10, b"\x80\x00"), HeaderError, "reserved"),
        ("reserved u8", rewrite(base, 23, b"\x01"), HeaderError, "reserved"),
        ("width 0", rewrite(base, 12, b"\0\0\0\0"), HeaderError, "width is 0"),
        ("height 2^32-1", rewrite(base, 16, b"\xff\xff\xff\xff"), HeaderError, "height is 4294967295"),
        ("b too small", rewrite(base, 22, b"\x02"), HeaderError, "bits per index is 2; K = 5 needs 3"),
        ("b too large", rewrite(base, 22, b"\x10"), HeaderError, "bits per index is 16"),
        ("shorter", base[:-1], LengthError, "truncated: file is 45 bytes, its header implies 46"),
        ("longer", base + b"\0\0", LengthError, "trailing bytes: file is 48 bytes, its header implies 46"),
        ("checksum", rewrite(base, 30, b"\x01", fix_crc=False), ChecksumError, "checksum mismatch"),
        ("padding", rewrite(base, 41, bytes([base[41] | 0x04])), PaddingError, "6 padding bits"),
    ]  # check 12, the index range, is test_index_out_of_range_names_the_first_bad_pixel


@pytest.mark.parametrize("what, data, error, message", _checks(), ids=[c[0] for c in _checks()])
def test_each_check_raises_its_error(what, data, error, message):
    with pytest.raises(error, match=re.escape(message)) as info:
        fmt.decode(data)
    assert type(info.value) is error


def test_index_out_of_range_names_the_first_bad_pixel():
    # fmt.encode refuses out-of-range indices, so pack 3-bit values by hand: 4 0 3 / 5 7 4.
    bits = "".join(format(i, "03b") for i in (4, 0, 3, 5, 7, 4)) + "000000"
    index_data = int(bits, 2).to_bytes(3, "big")
    body = fmt.Header(3, 2, 5).pack() + PALETTE5.tobytes() + index_data
    data = body + struct.pack(">I", zlib.crc32(body))
    with pytest.raises(IndexRangeError, match=r"index 5 at pixel \(0, 1\) is out of range for K = 5"):
        fmt.decode(data)


def test_checks_run_in_spec_order():
    base = valid_file()
    # A bad version is reported before the (also wrong) length.
    with pytest.raises(VersionError):
        fmt.decode(rewrite(base, 8, b"\x07")[:30])
    # A wrong length is reported before the (now wrong) checksum.
    with pytest.raises(LengthError):
        fmt.decode(base[:-1] + b"\x00\x00")
    # The checksum is checked before the padding bits...
    bad_padding = rewrite(base, 41, bytes([base[41] | 1]), fix_crc=False)
    with pytest.raises(ChecksumError):
        fmt.decode(bad_padding)
    # ...and skipping it (for fuzzing) still leaves every other check.
    with pytest.raises(PaddingError):
        fmt.decode(bad_padding, verify_checksum=False)
    assert fmt.decode(rewrite(base, 30, b"\x01", fix_crc=False), verify_checksum=False)[1][2, 0] == 1


@pytest.mark.parametrize(
    "data",
    [valid_file(1, 1, 1, [0]), valid_file(), valid_file(5, 3, 300, list(range(0, 300, 20)))],
    ids=["k1", "k5", "k300"],
)
def test_every_prefix_of_a_valid_file_raises_format_error(data):
    fmt.decode(data)
    for length in range(len(data)):
        with pytest.raises(FormatError) as info:
            fmt.decode(data[:length])
        # A prefix of the signature is not "not a .kmz file": it is a truncated one.
        assert type(info.value) is LengthError, length


@pytest.mark.parametrize(
    "header, palette, indices, message",
    [
        (fmt.Header(2, 1, 3), np.zeros((2, 3)), [0, 1], r"palette must have shape \(3, 3\)"),
        (fmt.Header(2, 1, 3), np.zeros((3, 3)), [0, 1, 2], "expected 2 indices, got 3"),
        (fmt.Header(2, 1, 3), np.zeros((3, 3)), [0, 3], "index 3 is out of range for K = 3"),
    ],
)
def test_encode_rejects_inconsistent_arguments(header, palette, indices, message):
    with pytest.raises(ValueError, match=message):
        fmt.encode(header, palette, np.array(indices))
