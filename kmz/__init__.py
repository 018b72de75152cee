"""kmz: a lossy image codec built on k-means colour quantization, with its own file format.

    import kmz
    image = kmz.encode("photo.jpg", k=64)   # quantize: a KmzImage
    image.save("photo.kmz")
    kmz.open("photo.kmz").to_pil().show()
    PIL.Image.open("photo.kmz")             # after `import kmz`, Pillow reads .kmz too
"""

import importlib

from .errors import (
    ChecksumError,
    DamagedImageError,
    FormatError,
    HeaderError,
    ImageReadError,
    IndexRangeError,
    KmzError,
    LengthError,
    OutOfMemoryError,
    OutputExistsError,
    PaddingError,
    PayloadError,
    PixelLimitError,
    PixelLimitWarning,
    SignatureError,
    TargetError,
    VersionError,
    WriteError,
)
from .format import DEFAULT_MAX_IMAGE_PIXELS
from .image import KmzImage, encode, frombytes, open
from .targets import TargetResult
from . import pillow_plugin  # registers .kmz with Pillow

# The one place the version is written; pyproject.toml reads it from here.
__version__ = "0.1.0"

# Decoding or encoding an image of more pixels warns (PixelLimitWarning); more than twice
# as many is refused (PixelLimitError). Set to None to lift the limit, as with Pillow's
# Image.MAX_IMAGE_PIXELS; read at each call.
MAX_IMAGE_PIXELS = DEFAULT_MAX_IMAGE_PIXELS


def __getattr__(name):
    # The sweep and batch machinery load when first used, so that `import kmz` stays quick.
    if name in ("sweep", "batch"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "PayloadError",
    "PixelLimitError",
    "PixelLimitWarning",
    "MAX_IMAGE_PIXELS",
    "ImageReadError",
    "OutputExistsError",
    "OutOfMemoryError",
    "WriteError",
    "DamagedImageError",
    "TargetError",
]
