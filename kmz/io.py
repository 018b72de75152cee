"""Files: reading input images with Pillow, and writing outputs atomically.

The only module that touches the disk.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageReadError, OutputExistsError, WriteError


def to_rgb_array(image):
    """A PIL image as an (H, W, 3) uint8 array, upright (EXIF orientation applied)."""
    image = ImageOps.exif_transpose(image)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def read_image(path):
    """Read any image Pillow can read as an (H, W, 3) uint8 RGB array."""
    try:
        with Image.open(path) as image:
            return to_rgb_array(image)
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a directory") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image Pillow can read") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageReadError(f"{path}: cannot read image ({e})") from None


def read_bytes(path):
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except OSError as e:
        raise ImageReadError(f"{path}: {e.strerror or e}") from None


def check_output(path, inputs=(), force=False):
    """Refuse an output that would overwrite an input, or an existing file without force."""
    path = Path(path)
    for source in inputs:
        if path.exists() and Path(source).exists() and path.resolve() == Path(source).resolve():
            raise WriteError(f"{path}: refusing to overwrite the input")
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: exists (use --force to replace it)")


def write_atomic(path, write):
    """Write a file by calling write(fileobj) on a temporary file in the same folder,
    then fsync and rename it into place, so no partial output is ever left at `path`."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise WriteError(f"{path}: cannot write ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file 0600; give the output the usual umask-based mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise WriteError(f"{path}: cannot write ({e.strerror or e})") from None
        raise


def write_bytes(path, data):
    write_atomic(path, lambda f: f.write(data))


def save_pil(path, image, format=None):
    """Save a PIL image atomically; the format is chosen from the suffix unless given."""
    format = format or Image.registered_extensions().get(Path(path).suffix.lower())
    if format is None:
        raise WriteError(f"{path}: unknown image format for suffix {Path(path).suffix!r}")
    write_atomic(path, lambda f: image.save(f, format=format))
