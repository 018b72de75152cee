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
    SignatureError,
    VersionError,
    WriteError,
)
from .image import KmzImage, encode, frombytes, open

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
    "ImageReadError",
    "OutputExistsError",
    "WriteError",
]
