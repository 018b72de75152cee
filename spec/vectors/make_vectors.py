"""Write the test vectors of spec/FORMAT.md section 6. Deterministic: running it again
gives the same .kmz, .txt and README bytes (the PNGs the same pixels).

    python spec/vectors/make_vectors.py [FOLDER]    # default: beside this script

good/NAME.kmz are written by kmz.format; good/NAME.txt lists what a person needs to
check each by hand (header fields, palette, indices, pixels and a hex dump); good/NAME.png
holds the pixels. bad/DEFECT.kmz are a valid file with one defect patched in by hand,
the CRC-32 recomputed unless the defect is the CRC itself, so that the check which
fails is the one the file is named after (spec section 4 stops at the first failure).
"""

import struct
import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a clone, installed or not
from kmz import format as fmt  # noqa: E402
from kmz.image import KmzImage  # noqa: E402

HERE = Path(__file__).resolve().parent


def _k300_palette():
    i = np.arange(300)
    return np.stack([i % 256, (i * 5) % 256, np.where(i >= 256, 255, 0)], axis=1)


# name, what it shows, palette (K rows of R, G, B, or of R, G, B, A), indices (one list per row)
GOOD = [
    ("1x1-k1", "K = 1: b = 0, no index data at all",
     [(255, 128, 0)], [[0]]),
    ("4x2-k2", "K = 2: b = 1, 8 indices fill exactly one byte, no padding",
     [(0, 0, 0), (255, 255, 255)], [[0, 1, 0, 1], [1, 0, 1, 0]]),
    ("3x1-k5", "K = 5, not a power of two: b = 3; the example of spec section 3.3",
     [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)], [[4, 0, 3]]),
    ("7x3-k3", "odd width: rows of 7 x 2 = 14 bits end mid-byte; 6 padding bits",
     [(10, 20, 30), (200, 100, 0), (0, 160, 255)],
     [[0, 1, 2, 0, 1, 2, 0], [2, 2, 1, 1, 0, 0, 2], [1, 0, 2, 1, 0, 2, 1]]),
    ("16x16-k256", "K = 256: b = 8, one byte per index; pixel j has index j",
     [(i, 255 - i, (7 * i) % 256) for i in range(256)], np.arange(256).reshape(16, 16).tolist()),
    ("5x3-k300", "K = 300: 9-bit indices, above 255; 135 bits, 1 padding bit",
     _k300_palette().tolist(), [[0, 1, 255, 256, 299], [299, 298, 128, 257, 2], [100, 200, 150, 5, 270]]),
    ("3x1-k5-rgba", "RGBA, flags bit 0: the example of section 3.3 with 4-byte entries, one fully transparent",
     [(255, 0, 0, 255), (0, 255, 0, 128), (0, 0, 0, 0), (255, 255, 0, 1), (0, 255, 255, 64)], [[4, 0, 3]]),
    ("5x2-k3-rgba", "RGBA, K = 3: an opaque, a half and a clear entry; 10 x 2 = 20 index bits, 4 padding bits",
     [(20, 40, 60, 255), (200, 100, 0, 127), (0, 0, 0, 0)], [[0, 1, 2, 1, 0], [2, 2, 1, 0, 0]]),
]


def hexdump(data):
    lines = []
    for offset in range(0, len(data), 16):
        row = data[offset : offset + 16]
        cells = " ".join(f"{b:02x}" for b in row[:8]) + "  " + " ".join(f"{b:02x}" for b in row[8:])
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        lines.append(f"{offset:08x}  {cells:<48}  |{text}|")
    return "\n".join(lines)


def listing(name, what, header, palette, indices, data):
    w, h, k, b = header.width, header.height, header.k, header.bits_per_index
    bits = w * h * b
    pixels = palette[indices]
    c = header.channels
    channels = "R,G,B,A" if header.alpha else "R,G,B"
    return "\n".join([
        f"{name}: {what}",
        "",
        f"width {w}",
        f"height {h}",
        f"K {k}",
        f"bits_per_index {b}",
        "coding 0",
        *(["flags 1 (bit 0: RGBA palette, 4 bytes per entry)"] if header.alpha else []),
        f"index bits {w} * {h} * {b} = {bits}, padding bits {8 * fmt.bitpack.packed_size(w * h, b) - bits}",
        f"length 24 + {c}*{k} + ceil({bits}/8) + 4 = {len(data)} bytes",
        f"crc32 {zlib.crc32(data[:-4]):08x}",
        "",
        f"palette (index: {channels})",
        *(f"{i}: " + ",".join(map(str, entry)) for i, entry in enumerate(palette.tolist())),
        "",
        "indices (one line per image row)",
        *(" ".join(map(str, row)) for row in indices.tolist()),
        "",
        f"pixels (one line per image row, {channels} per pixel)",
        *(" ".join(",".join(map(str, p)) for p in row) for row in pixels.tolist()),
        "",
        "hex",
        hexdump(data),
        "",
    ])


def write_good(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name, what, palette, indices in GOOD:
        image = KmzImage(np.array(palette, dtype=np.uint8), np.array(indices, dtype=np.uint16))
        data = image.tobytes()
        (folder / f"{name}.kmz").write_bytes(data)
        (folder / f"{name}.txt").write_text(listing(name, what, image.header, image.palette, image.indices, data))
        image.to_pil().save(folder / f"{name}.png")


# The base of every bad file: 3 x 2, K = 5 (b = 3): 18 index bits in 3 bytes, 6 padding bits.
BASE_PALETTE = bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0, 0, 255, 255])


def _header(version=1, coding=0, flags=0, width=3, height=2, k=5, bits=3, reserved=0):
    return struct.pack(">8sBBHIIHBB", fmt.SIGNATURE, version, coding, flags, width, height, k - 1, bits, reserved)


def _pack_bits(indices, bits):
    """MSB-first bit packing written out longhand, independent of kmz.bitpack."""
    stream = "".join(format(i, f"0{bits}b") for i in indices)
    stream += "0" * (-len(stream) % 8)
    return bytes(int(stream[i : i + 8], 2) for i in range(0, len(stream), 8))


def _with_crc(body):
    return body + struct.pack(">I", zlib.crc32(body))


BASE_INDICES = [4, 0, 3, 1, 2, 4]
BASE = _with_crc(_header() + BASE_PALETTE + _pack_bits(BASE_INDICES, 3))
# The same image with an RGBA palette (flags bit 0): the RGB entries, alphas 255, 128, 0, 1, 64.
BASE_RGBA_PALETTE = b"".join(BASE_PALETTE[3 * i : 3 * i + 3] + bytes([a]) for i, a in enumerate([255, 128, 0, 1, 64]))
BASE_RGBA = _with_crc(_header(flags=1) + BASE_RGBA_PALETTE + _pack_bits(BASE_INDICES, 3))


def _patch(offset, new):
    body = bytearray(BASE[:-4])
    body[offset : offset + len(new)] = new
    return _with_crc(bytes(body))


# file name, the one defect, the error class, a part of its message
BAD = [
    ("bad-signature", "first byte 8B became 0B (a 7-bit channel cleared its high bit)",
     _patch(0, b"\x0b"), "SignatureError", "not a .kmz file"),
    ("signature-crlf-to-lf", "the signature's CR LF became LF (text-mode transfer); file 1 byte short",
     BASE.replace(b"\r\n", b"\n", 1), "SignatureError", "not a .kmz file"),
    ("empty", "no bytes at all", b"", "LengthError", "truncated"),
    ("truncated-header", "only the first 20 of the header's 24 bytes", BASE[:20], "LengthError", "truncated"),
    ("unknown-version", "version 2", _patch(8, b"\x02"), "VersionError", "unknown format version 2"),
    ("unknown-coding", "coding 255", _patch(9, b"\xff"), "HeaderError", "unknown index coding 255"),
    ("nonzero-reserved", "a reserved bit of the u16 flags at offset 10 is set (0x8000; only bit 0 is defined)",
     _patch(10, b"\x80\x00"), "HeaderError", "reserved"),
    ("nonzero-reserved-flag-bit1", "flags 0x0003: bit 0 (alpha) and the reserved bit 1",
     _patch(10, b"\x00\x03"), "HeaderError", "reserved"),
    ("alpha-flag-on-rgb-palette", "flags bit 0 set on the RGB file: its 4-byte entries would need 5 bytes more",
     _patch(10, b"\x00\x01"), "LengthError", "truncated: file is 46 bytes, its header implies 51"),
    ("nonzero-reserved-byte", "the u8 reserved field at offset 23 is 0x80",
     _patch(23, b"\x80"), "HeaderError", "reserved"),
    ("zero-width", "width 0", _patch(12, struct.pack(">I", 0)), "HeaderError", "width is 0"),
    ("zero-height", "height 0", _patch(16, struct.pack(">I", 0)), "HeaderError", "height is 0"),
    ("width-too-large", "width 2^31, one above the maximum",
     _patch(12, struct.pack(">I", 2**31)), "HeaderError", "width is 2147483648"),
    ("bits-per-index-mismatch", "bits_per_index 4 where K = 5 needs 3",
     _patch(22, b"\x04"), "HeaderError", "bits per index is 4"),
    ("truncated", "the last byte (of the CRC) cut off", BASE[:-1], "LengthError", "truncated"),
    ("trailing-bytes", "one zero byte after the CRC", BASE + b"\x00", "LengthError", "trailing bytes"),
    ("bad-checksum", "the CRC's last bit flipped",
     BASE[:-1] + bytes([BASE[-1] ^ 1]), "ChecksumError", "checksum mismatch"),
    ("nonzero-padding", "the last of the 6 padding bits is 1",
     _patch(len(BASE) - 5, bytes([BASE[-5] | 1])), "PaddingError", "padding bits"),
    ("index-out-of-range", "indices 4 0 3 / 1 7 6 with K = 5: pixels (1, 1) and (2, 1) are out of range",
     _with_crc(_header() + BASE_PALETTE + _pack_bits([4, 0, 3, 1, 7, 6], 3)),
     "IndexRangeError", "index 7 at pixel (1, 1)"),
    ("rgba-truncated", "the RGBA base file without its last byte", BASE_RGBA[:-1], "LengthError", "truncated"),
    ("rgba-bad-checksum", "the RGBA base file with its CRC's last bit flipped",
     BASE_RGBA[:-1] + bytes([BASE_RGBA[-1] ^ 1]), "ChecksumError", "checksum mismatch"),
    ("rgba-index-out-of-range", "the RGBA base file with indices 4 0 3 / 1 7 6",
     _with_crc(_header(flags=1) + BASE_RGBA_PALETTE + _pack_bits([4, 0, 3, 1, 7, 6], 3)),
     "IndexRangeError", "index 7 at pixel (1, 1)"),
]


def write_bad(folder):
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        "# Bad vectors",
        "",
        "Each file is the valid 3 x 2, K = 5 file below with one defect (the CRC-32 is",
        "recomputed unless the defect is the CRC), so the check of spec section 4 that fails",
        "is the one the file is named after. A decoder must raise the error class listed",
        "(all are kmz.FormatError subclasses); kmz's message contains the text in the last column.",
        "",
        f"Base file, {len(BASE)} bytes: `{BASE.hex(' ')}`",
        "",
        "The `rgba-` files start from the same image with an RGBA palette (flags bit 0,",
        f"alphas 255, 128, 0, 1, 64), {len(BASE_RGBA)} bytes: `{BASE_RGBA.hex(' ')}`",
        "",
        "| file | defect | error | message contains |",
        "|---|---|---|---|",
    ]
    for name, defect, data, error, message in BAD:
        (folder / f"{name}.kmz").write_bytes(data)
        rows.append(f"| `{name}.kmz` | {defect} | {error} | `{message}` |")
    (folder / "README.md").write_text("\n".join(rows) + "\n")


def main(folder=HERE):
    folder = Path(folder)
    write_good(folder / "good")
    write_bad(folder / "bad")


if __name__ == "__main__":
    main(*sys.argv[1:])
