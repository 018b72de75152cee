"""The .kmz byte format (spec/FORMAT.md): header, palette, index data, CRC-32 trailer.

Works on bytes in memory only; knows nothing of k-means, files or PNG.

    struct header {            // 24 bytes, big-endian, unsigned (spec 3.1)
        u8  signature[8];      // 8B 'K' 'M' 'Z' 0D 0A 1A 0A
        u8  version;           // 1
        u8  coding;            // index coding: 0 = raw bit-packed, 1 = ctx (spec/CODING.md),
                               // 2 = mix (spec/CODING2.md)
        u16 flags;             // bit 0: the palette has alpha (RGBA entries); others 0
        u32 width;             // 1 .. 2^31 - 1
        u32 height;            // 1 .. 2^31 - 1
        u16 k_minus_1;         // K - 1, so K is 1 .. 65536
        u8  bits_per_index;    // must equal ceil(log2 K): 0 when K = 1
        u8  reserved;          // must be 0
    };
    u8  palette[K][C];         // R, G, B (C = 3), or R, G, B, A (C = 4, flag bit 0);
                               // coding 2: none, its payload holds the palette
    u8  indices[ceil(W*H*b / 8)];  // row-major, b bits each, MSB first (spec 3.3)
                                   // codings 1 and 2: a range-coded payload of any length
    u32 crc32;                 // CRC-32 (ISO-HDLC, as zlib) of every byte before it
"""

import struct
import sys
import warnings
import zlib
from dataclasses import dataclass

import numpy as np

from . import bitpack, checks, entropy
from .errors import (
    ChecksumError,
    HeaderError,
    IndexRangeError,
    LengthError,
    PaddingError,
    PixelLimitError,
    PixelLimitWarning,
    SignatureError,
    VersionError,
)

SIGNATURE = b"\x8bKMZ\r\n\x1a\n"
VERSION = 1
CODING_RAW = 0
# The coded codings' numbers are entropy's, which hands them to the C coder.
CODING_CTX = entropy.CODINGS["ctx"]
CODING_MIX = entropy.CODINGS["mix"]
CODINGS = {CODING_RAW: "raw", CODING_CTX: "ctx", CODING_MIX: "mix"}
CODED_MAX_K = entropy.MAX_K  # the largest K of codings 1 and 2
# Check 9's bounds: a payload of P bytes holds fewer pixels than P times these. A
# coding-1 pixel costs at least one coded bit (spec/CODING.md 6); a coding-2 pixel at
# least one binary decision, narrowing the range by 65536/65520 or more, so that P bytes
# hold fewer than about 22,800 P pixels (spec/CODING2.md 7).
CTX_PIXELS_PER_BYTE = 1 << 19
MIX_PIXELS_PER_BYTE = 1 << 15
_PIXELS_PER_BYTE = {CODING_CTX: CTX_PIXELS_PER_BYTE, CODING_MIX: MIX_PIXELS_PER_BYTE}
FLAG_ALPHA = 0x0001  # the flags field's only defined bit: RGBA palette entries (spec 3.1)
HEADER_SIZE = 24
TRAILER_SIZE = 4
OVERHEAD = HEADER_SIZE + TRAILER_SIZE
MAX_DIMENSION = 2**31 - 1
MAX_K = 65536
# Pillow's default Image.MAX_IMAGE_PIXELS: a 1 GiB budget at 4 bytes per pixel, over 3.
DEFAULT_MAX_IMAGE_PIXELS = 1024 * 1024 * 1024 // 4 // 3

_HEADER = struct.Struct(">8sBBHIIHBB")
assert _HEADER.size == HEADER_SIZE


def bits_per_index(k):
    """ceil(log2 k): the bits one index needs; 0 when k == 1."""
    return (k - 1).bit_length()


def file_size(width, height, k, alpha=False):
    """Exact length in bytes of a raw-coded file (spec 3.4), with RGBA entries when alpha."""
    return OVERHEAD + (4 if alpha else 3) * k + bitpack.packed_size(width * height, bits_per_index(k))


def coding_id(name):
    """The header's coding number for a coding name ("raw", "ctx", "mix")."""
    for number, known in CODINGS.items():
        if known == name:
            return number
    raise ValueError(f"unknown coding {name!r}; known: {', '.join(CODINGS.values())}")


def check_coded_k(coding, k):
    """ValueError unless the coding named `coding` takes K = k: ctx and mix take at most
    CODED_MAX_K (raw takes every K the header can hold)."""
    if coding_id(coding) != CODING_RAW and k > CODED_MAX_K:
        raise ValueError(f"coding {coding} supports K up to {CODED_MAX_K}, not {k}")


@dataclass(frozen=True)
class Header:
    width: int
    height: int
    k: int
    coding: int = CODING_RAW
    alpha: bool = False  # RGBA palette entries

    def __post_init__(self):
        for name in ("width", "height"):
            value = getattr(self, name)
            if not 1 <= value <= MAX_DIMENSION:
                raise ValueError(f"{name} must be between 1 and {MAX_DIMENSION}, not {value}")
        if not 1 <= self.k <= MAX_K:
            raise ValueError(f"k must be between 1 and {MAX_K}, not {self.k}")
        if self.coding not in CODINGS:
            raise ValueError(f"unknown index coding {self.coding}")
        check_coded_k(CODINGS[self.coding], self.k)

    @property
    def bits_per_index(self):
        return bits_per_index(self.k)

    @property
    def channels(self):
        """Bytes per palette entry: 3 (RGB) or 4 (RGBA)."""
        return 4 if self.alpha else 3

    @property
    def palette_size(self):
        """Bytes of the palette part after the header: C*K, or 0 for coding 2, whose
        payload holds the palette (spec/CODING2.md 1)."""
        return 0 if self.coding == CODING_MIX else self.channels * self.k

    @property
    def pixel_count(self):
        return self.width * self.height

    @property
    def file_size(self):
        """The raw coding's file length (spec 3.4), whatever this header's coding."""
        return file_size(self.width, self.height, self.k, self.alpha)

    def pack(self):
        return _HEADER.pack(
            SIGNATURE, VERSION, self.coding, FLAG_ALPHA if self.alpha else 0, self.width, self.height,
            self.k - 1, self.bits_per_index, 0,
        )


def read_header(data):
    """Parse and validate the header at the start of `data` (spec 3.1, checks 1-3).

    Reads only the first 24 bytes; the length and checksum are checked by decode().
    """
    data = bytes(data[:HEADER_SIZE])
    if data[: len(SIGNATURE)] != SIGNATURE[: len(data)]:
        raise SignatureError("not a .kmz file (bad signature)")
    if len(data) < HEADER_SIZE:
        raise LengthError(f"truncated: {len(data)} bytes, shorter than the {HEADER_SIZE}-byte header")
    _, version, coding, flags, width, height, k_minus_1, bits, reserved = _HEADER.unpack(data)
    if version != VERSION:
        raise VersionError(f"unknown format version {version} (this decoder reads version {VERSION})")
    if coding not in CODINGS:
        raise HeaderError(f"unknown index coding {coding}")
    k = k_minus_1 + 1
    if coding != CODING_RAW and k > CODED_MAX_K:  # still check 4 (spec/CODING.md 6, spec/CODING2.md 7)
        raise HeaderError(f"coding {CODINGS[coding]} allows K up to {CODED_MAX_K}, not {k}")
    if flags & ~FLAG_ALPHA or reserved:
        raise HeaderError("reserved header bits are not zero")
    for name, value in (("width", width), ("height", height)):
        if not 1 <= value <= MAX_DIMENSION:
            raise HeaderError(f"{name} is {value}; it must be between 1 and {MAX_DIMENSION}")
    if bits != bits_per_index(k):
        raise HeaderError(f"bits per index is {bits}; K = {k} needs {bits_per_index(k)}")
    return Header(width, height, k, coding, alpha=bool(flags & FLAG_ALPHA))


class _PackageLimit:
    """Default of every max_pixels argument: read kmz.MAX_IMAGE_PIXELS at call time, so
    that setting the package attribute (as with Pillow's Image.MAX_IMAGE_PIXELS) works."""

    def __repr__(self):
        return "kmz.MAX_IMAGE_PIXELS"


PACKAGE_LIMIT = _PackageLimit()


def pixel_limit(max_pixels=PACKAGE_LIMIT):
    """The limit a max_pixels argument stands for: a number, or None for none;
    ValueError for anything else (None, not 0 or a negative, lifts the limit)."""
    if max_pixels is PACKAGE_LIMIT:
        max_pixels = sys.modules[__package__].MAX_IMAGE_PIXELS
    if max_pixels is not None:
        checks.positive("max_pixels", max_pixels)  # as given: an int limit prints as one
    return max_pixels


def check_pixel_limit(width, height, max_pixels=PACKAGE_LIMIT):
    """Spec section 4, check 8, as Pillow does it: above max_pixels a PixelLimitWarning,
    above twice that a PixelLimitError; None disables the limit.

    Python integers, so a declared 2^62 pixels cannot overflow.
    """
    max_pixels = pixel_limit(max_pixels)
    if max_pixels is None:
        return
    pixels = int(width) * int(height)
    if pixels > 2 * max_pixels:
        raise PixelLimitError(
            f"image is {width} x {height} = {pixels:,} pixels, more than twice the limit of "
            f"{max_pixels:,} pixels (a possible decompression bomb)"
        )
    if pixels > max_pixels:
        warnings.warn(
            f"image is {width} x {height} = {pixels:,} pixels, more than the limit of {max_pixels:,}"
            " pixels (a possible decompression bomb)",
            PixelLimitWarning,
            stacklevel=3,
        )


def encode(header, palette, indices):
    """Assemble a complete file from a header, a (K, 3) uint8 palette ((K, 4) when
    header.alpha) and W*H indices."""
    palette = np.asarray(palette, dtype=np.uint8)
    indices = np.asarray(indices).reshape(-1)
    if palette.shape != (header.k, header.channels):
        raise ValueError(f"palette must have shape ({header.k}, {header.channels}), not {palette.shape}")
    if len(indices) != header.pixel_count:
        raise ValueError(f"expected {header.pixel_count} indices, got {len(indices)}")
    if len(indices) and int(indices.max()) >= header.k:
        raise ValueError(f"index {int(indices.max())} is out of range for K = {header.k}")
    if header.coding != CODING_RAW:
        index_data = entropy.encode(indices.reshape(header.height, header.width), palette, CODINGS[header.coding])
    else:
        index_data = bitpack.pack(indices, header.bits_per_index)
    body = header.pack() + (palette.tobytes() if header.palette_size else b"") + index_data
    return body + struct.pack(">I", zlib.crc32(body))


def decode(data, verify_checksum=True, max_pixels=PACKAGE_LIMIT):
    """Validate a complete file and return (header, palette (K, 3) uint8 or (K, 4) when
    header.alpha, indices (H, W) uint16).

    Checks, in the order of spec section 4: signature, version, header fields, pixel
    limit (check_pixel_limit with max_pixels), length, checksum, padding bits, index range.
    Raises a FormatError subclass on the first failure. verify_checksum=False skips only
    the checksum (check 10), so that a fuzzer's inputs reach the checks behind it.
    """
    data = memoryview(data).cast("B")
    header = read_header(data)
    check_pixel_limit(header.width, header.height, max_pixels)
    check_length(header, len(data))
    if verify_checksum:
        check_checksum(data)
    body = data[:-TRAILER_SIZE]
    k, bits, count, channels = header.k, header.bits_per_index, header.pixel_count, header.channels
    index_data = body[HEADER_SIZE + header.palette_size :]
    if header.coding == CODING_MIX:
        palette, indices = entropy.decode(index_data, (k, channels), header.width, header.height, coding="mix")
        return header, palette.copy(), indices
    palette = np.frombuffer(body, dtype=np.uint8, count=channels * k, offset=HEADER_SIZE).reshape(k, channels)
    if header.coding == CODING_CTX:
        _, indices = entropy.decode(index_data, palette, header.width, header.height, coding="ctx")
        return header, palette.copy(), indices
    spare_bits = 8 * len(index_data) - count * bits
    if spare_bits and index_data[-1] & ((1 << spare_bits) - 1):
        raise PaddingError(f"the {spare_bits} padding bits of the last byte are not zero")
    indices = bitpack.unpack(index_data, bits, count)
    if k < (1 << bits) and count:
        bad = np.flatnonzero(indices >= k)
        if len(bad):
            row, col = divmod(int(bad[0]), header.width)
            raise IndexRangeError(
                f"index {int(indices[bad[0]])} at pixel ({col}, {row}) is out of range for K = {k}"
            )
    return header, palette.copy(), indices.reshape(header.height, header.width)


def check_checksum(data):
    """Check 10: the CRC-32 trailer of a whole file (its length checked) matches the
    bytes before it."""
    data = memoryview(data).cast("B")
    (stored,) = struct.unpack(">I", data[-TRAILER_SIZE:])
    computed = zlib.crc32(data[:-TRAILER_SIZE])
    if computed != stored:
        raise ChecksumError(f"checksum mismatch: stored {stored:08x}, computed {computed:08x}")


def check_length(header, length):
    """Check 9: a file of `length` bytes can hold what `header` declares. For raw coding
    the length is exact; for codings 1 and 2 (spec/CODING.md 6, spec/CODING2.md 7) there
    must be room for the 5 bytes every payload starts with, and no more pixels than the
    payload can hold.
    Needs only the length, so a reader can check it before reading the file."""
    if header.coding == CODING_RAW:
        expected = header.file_size
        if length != expected:
            what = "truncated" if length < expected else "trailing bytes"
            raise LengthError(f"{what}: file is {length} bytes, its header implies {expected}")
        return
    payload = length - OVERHEAD - header.palette_size
    if payload < 5:
        raise LengthError(
            f"truncated: file is {length} bytes, a coded file with K = {header.k} needs at least "
            f"{OVERHEAD + header.palette_size + 5}"
        )
    if header.pixel_count > _PIXELS_PER_BYTE[header.coding] * payload:
        raise LengthError(
            f"truncated: {payload} bytes of coded index data cannot hold "
            f"{header.width} x {header.height} pixels"
        )
