"""kmz: a lossy image codec built on k-means colour quantization, with its own file format.

    import kmz
    image = kmz.encode("photo.jpg", k=64)   # quantize: a KmzImage
    image.save("photo.kmz")
    kmz.open("photo.kmz").to_pil().show()
    PIL.Image.open("photo.kmz")             # after `import kmz`, Pillow reads .kmz too
"""

from .errors import (
    ChecksumError,
    DamagedImageError,
    FormatError,
    HeaderError,
    ImageReadError,
    IndexRangeError,
    KmzError,
    LengthError,
    OutputExistsError,
    PaddingError,
    SignatureError,
    TargetError,
    VersionError,
    WriteError,
)
from .image import KmzImage, encode, frombytes, open
from .targets import TargetResult
from . import pillow_plugin  # registers .kmz with Pillow

__all__ = [
    "open",
    "encode",
    "frombytes",
    "KmzImage",
    "TargetResult",
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
    "DamagedImageError",
    "TargetError",
]
