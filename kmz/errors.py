"""Exception types: everything kmz raises for bad data derives from KmzError.

Misuse of the API (a negative K, an array of the wrong shape) raises ValueError or
TypeError instead, as Python code expects.
"""


class KmzError(Exception):
    """Base of every error kmz raises for bad data or a failed operation."""


class FormatError(KmzError):
    """A .kmz file breaks the format specification (spec/FORMAT.md)."""


class SignatureError(FormatError):
    """The first 8 bytes are not the .kmz signature (spec 3.1)."""


class VersionError(FormatError):
    """The header names a format version this decoder does not know (spec 3.1)."""


class HeaderError(FormatError):
    """A header field holds an illegal value (spec 3.1)."""


class LengthError(FormatError):
    """The file is shorter or longer than its header says it must be (spec 3.4)."""


class ChecksumError(FormatError):
    """The CRC-32 trailer does not match the bytes before it (spec 3.5)."""


class IndexRangeError(FormatError):
    """An index in the pixel data is not less than K (spec 3.3)."""


class PaddingError(FormatError):
    """The unused bits of the last index byte are not zero (spec 3.3)."""


class PixelLimitError(FormatError):
    """The image has more than twice kmz.MAX_IMAGE_PIXELS pixels (spec section 4, check 8).

    Raised from the header alone, before any pixel memory is allocated; also raised
    for an input image given to the encoder.
    """


class PixelLimitWarning(RuntimeWarning):
    """The image has more than kmz.MAX_IMAGE_PIXELS pixels, but not twice as many:
    possibly a decompression bomb (as Pillow's DecompressionBombWarning)."""


class PayloadError(FormatError):
    """Coded index data (coding 1 or 2) that no encoder can write (spec/CODING.md 6,
    spec/CODING2.md 7)."""


class ImageReadError(KmzError):
    """An input image cannot be read (not an image, truncated or corrupt)."""


class OutputExistsError(KmzError):
    """The output file exists and overwriting was not asked for."""


class WriteError(KmzError):
    """An output cannot be written (permissions, full disk, input would be overwritten)."""


class DamagedImageError(FormatError, OSError):
    """A damaged .kmz file met through Pillow: an OSError, as Pillow users expect, and a
    FormatError; the specific kmz error (ChecksumError, LengthError, ...) is its __cause__."""


class OutOfMemoryError(KmzError, MemoryError):
    """An image needs more memory than the machine has available: refused before the
    allocation is tried (a MemoryError too, so that code catching that still does)."""


class TargetError(KmzError):
    """A quality target (psnr=, max_bytes=) cannot be met and strict was asked for.
    `result` is the TargetResult of the closest K."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result
