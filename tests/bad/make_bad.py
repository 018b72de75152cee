"""The corpus of files kmz must refuse: one or more per refusal class of spec section 4.

    python tests/bad/make_bad.py    # rewrites tests/bad/*.kmz and tests/bad/README.md

Each case is built from a small valid file (K = 5, 3 x 5 pixels, so b = 3 and the index
data has 3 padding bits) with one rule broken, and names the error and the exact message
the decoder must give (hand-written here, never copied from the decoder's output).
Findings of the atheris harness (tests/fuzz/) are added as cases too.
"""

import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIGNATURE = b"\x8bKMZ\r\n\x1a\n"
PALETTE = bytes(range(10, 25))  # 5 entries
# Indices 0..4 cycling over 15 pixels, 3 bits each: 45 bits + 3 zero padding bits.
INDICES = [i % 5 for i in range(15)]


def header(version=1, coding=0, reserved=0, width=3, height=5, k_minus_1=4, bits=3, reserved2=0):
    return struct.pack(">8sBBHIIHBB", SIGNATURE, version, coding, reserved, width, height,
                       k_minus_1, bits, reserved2)


def pack3(indices):
    value = 0
    for i in indices:
        value = value << 3 | i
    nbits = 3 * len(indices)
    padding = -nbits % 8
    return (value << padding).to_bytes((nbits + padding) // 8, "big")


def with_crc(body):
    return body + struct.pack(">I", zlib.crc32(body))


def valid(**fields):
    return with_crc(header(**fields) + PALETTE + pack3(INDICES))


def _flip_crc(data):
    return data[:-1] + bytes([data[-1] ^ 0x01])


def _index_out_of_range():
    indices = list(INDICES)
    indices[7] = 6  # pixel (1, 2) in row-major order on a 3-wide image
    indices[11] = 7
    return with_crc(header() + PALETTE + pack3(indices))


def _padding():
    data = bytearray(header() + PALETTE + pack3(INDICES))
    data[-1] |= 0x01
    return with_crc(bytes(data))


GOOD = valid()
LIMIT_BOMB = with_crc(header(width=2**31 - 1, height=2**31 - 1, k_minus_1=0, bits=0) + b"\0\0\0")

# name: (bytes, error class, exact message)
CASES = {
    "empty": (b"", "LengthError", "truncated: 0 bytes, shorter than the 24-byte header"),
    "png_signature": (b"\x89PNG\r\n\x1a\n" + bytes(40), "SignatureError", "not a .kmz file (bad signature)"),
    "signature_bit7_stripped": (b"\x0b" + GOOD[1:], "SignatureError", "not a .kmz file (bad signature)"),
    "signature_crlf_to_lf": (GOOD[:4] + GOOD[5:], "SignatureError", "not a .kmz file (bad signature)"),
    "signature_prefix_only": (SIGNATURE[:5], "LengthError", "truncated: 5 bytes, shorter than the 24-byte header"),
    "short_not_kmz": (b"GIF", "SignatureError", "not a .kmz file (bad signature)"),
    "short_header": (GOOD[:23], "LengthError", "truncated: 23 bytes, shorter than the 24-byte header"),
    "version_2": (valid(version=2), "VersionError",
                  "unknown format version 2 (this decoder reads version 1)"),
    "version_0": (valid(version=0), "VersionError",
                  "unknown format version 0 (this decoder reads version 1)"),
    "coding_3": (valid(coding=3), "HeaderError", "unknown index coding 3"),
    "reserved_u16": (valid(reserved=0x8000), "HeaderError", "reserved header bits are not zero"),
    "reserved_u8": (valid(reserved2=1), "HeaderError", "reserved header bits are not zero"),
    "width_zero": (valid(width=0), "HeaderError", "width is 0; it must be between 1 and 2147483647"),
    "height_zero": (valid(height=0), "HeaderError", "height is 0; it must be between 1 and 2147483647"),
    "width_2_31": (valid(width=2**31), "HeaderError",
                   "width is 2147483648; it must be between 1 and 2147483647"),
    "height_max_u32": (valid(height=2**32 - 1), "HeaderError",
                       "height is 4294967295; it must be between 1 and 2147483647"),
    # K itself cannot leave 1..65536 (u16 k_minus_1); a K the index width disagrees with can.
    "bits_too_wide_for_k": (valid(bits=4), "HeaderError", "bits per index is 4; K = 5 needs 3"),
    "bits_too_narrow_for_k": (valid(k_minus_1=8), "HeaderError", "bits per index is 3; K = 9 needs 4"),
    "bits_17": (valid(k_minus_1=65535, bits=17), "HeaderError", "bits per index is 17; K = 65536 needs 16"),
    "pixel_bomb_2_62": (LIMIT_BOMB, "PixelLimitError",
                        "image is 2147483647 x 2147483647 = 4,611,686,014,132,420,609 pixels, more than "
                        "twice the limit of 89,478,485 pixels (a possible decompression bomb)"),
    "truncated_crc": (GOOD[:-1], "LengthError", "truncated: file is 48 bytes, its header implies 49"),
    "truncated_indices": (GOOD[:42], "LengthError", "truncated: file is 42 bytes, its header implies 49"),
    "trailing_byte": (GOOD + b"\0", "LengthError", "trailing bytes: file is 50 bytes, its header implies 49"),
    "checksum": (_flip_crc(GOOD), "ChecksumError", f"checksum mismatch: stored {zlib.crc32(GOOD[:-4]) ^ 1:08x}, "
                 f"computed {zlib.crc32(GOOD[:-4]):08x}"),
    "palette_bit_flip": (GOOD[:30] + bytes([GOOD[30] ^ 0x10]) + GOOD[31:], "ChecksumError",
                         f"checksum mismatch: stored {zlib.crc32(GOOD[:-4]):08x}, "
                         f"computed {zlib.crc32(GOOD[:30] + bytes([GOOD[30] ^ 0x10]) + GOOD[31:-4]):08x}"),
    "padding_bit": (_padding(), "PaddingError", "the 3 padding bits of the last byte are not zero"),
    "index_out_of_range": (_index_out_of_range(), "IndexRangeError",
                           "index 6 at pixel (1, 2) is out of range for K = 5"),
    # Coding 1 (spec/CODING.md): a payload whose first byte is not 0.
    "ctx_payload_start": (with_crc(header(coding=1) + PALETTE + b"\x01\0\0\0\0"), "PayloadError",
                          "the coded data has an illegal start (spec/CODING.md 5.1)"),
    # Coding 2 (spec/CODING2.md) starts its payload as coding 1 does, right after the
    # header: its payload holds the palette.
    "mix_payload_start": (with_crc(header(coding=2) + b"\x01\0\0\0\0"), "PayloadError",
                          "the coded data has an illegal start (spec/CODING.md 5.1)"),
}


def write():
    for old in HERE.glob("*.kmz"):
        old.unlink()
    lines = [
        "# Files kmz must refuse",
        "",
        "Generated by `python tests/bad/make_bad.py`; tests/test_limits.py asserts each error",
        "type and message. The base file is valid: K = 5, 3 x 5 pixels, 49 bytes.",
        "",
        "| file | error | message |",
        "|---|---|---|",
    ]
    for name, (data, error, message) in CASES.items():
        (HERE / f"{name}.kmz").write_bytes(data)
        lines.append(f"| {name}.kmz | {error} | {message} |")
    (HERE / "README.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    write()
