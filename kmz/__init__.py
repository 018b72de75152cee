"""kmz: a lossy image codec built on k-means colour quantization, with its own file format.

    import kmz
    image = kmz.encode("photo.jpg", k=64)   # quantize: a KmzImage
    image.save("photo.kmz")
    kmz.open("photo.kmz").to_pil().show()
"""

from .errors import (
    ChecksumError,
    FormatError,
    HeaderError,
    ImageReadError,
    IndexRangeError,
    KmzError,
    LengthError,
    OutputExistsError,
    PaddingError,
    PixelLimitError,
    PixelLimitWarning,
    SignatureError,
    VersionError,
    WriteError,
)
from .format import DEFAULT_MAX_IMAGE_PIXELS
from .image import KmzImage, encode, frombytes, open

# Decoding or encoding an image of more pixels warns (PixelLimitWarning); more than twice
# as many is refused (PixelLimitError). Set to None to lift the limit, as with Pillow's
# Image.MAX_IMAGE_PIXELS; read at each call.
MAX_IMAGE_PIXELS = DEFAULT_MAX_IMAGE_PIXELS

__all__ = [
    "open",
    "encode",
    "frombytes",
    "KmzImage",
    "KmzError",
    "FormatError",
    "SignatureError",
    "VersionError",
    "HeaderError",
    "LengthError",
    "ChecksumError",
    "IndexRangeError",
    "PaddingError",
    "PixelLimitError",
    "PixelLimitWarning",
    "MAX_IMAGE_PIXELS",
    "ImageReadError",
    "OutputExistsError",
    "WriteError",
]
