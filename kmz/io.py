"""Files: reading input images with Pillow, and writing outputs atomically.

The only module that touches the disk.
"""

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor, ImageOps, UnidentifiedImageError

from . import format as fmt
from .errors import ImageReadError, KmzError, OutputExistsError, WriteError


DEFAULT_BACKGROUND = None  # keep transparency; a colour flattens onto it
_ORIENTATION = 0x0112  # the EXIF tag


def _background_rgb(background):
    """A Pillow colour name, '#rrggbb' or an (r, g, b) tuple, as an (r, g, b) tuple."""
    if isinstance(background, str):
        return ImageColor.getrgb(background)[:3]  # ValueError for an unknown colour
    rgb = tuple(int(c) for c in background)
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise ValueError(f"background must be a colour name or 3 values 0-255, not {background!r}")
    return rgb


def _scale_to_8_bits(values, top):
    """Samples 0..top (clipped) scaled and rounded to 0..255: 16-bit 65535 -> 255, not clipped."""
    if isinstance(top, float):
        return np.rint(np.clip(values, 0.0, top) * (255 / top)).astype(np.uint8)
    # Integers: v * 255 / 65535 is never exactly halfway, so this rounds as rint would.
    values = np.clip(values, 0, top).astype(np.uint32)
    return ((values * 255 + top // 2) // top).astype(np.uint8)


# Modes whose samples are not 8-bit; how each maps to 0..255 (README "Errors").
_WIDE_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535, "F": 1.0}


def _rgb_and_alpha(image, notes):
    """(rgb (H, W, 3) uint8, alpha (H, W) uint8 or None) for a PIL image of any mode."""
    mode = image.mode
    if mode in _WIDE_MODES:
        top = _WIDE_MODES[mode]
        span = "0.0-1.0" if mode == "F" else "0-65535"
        notes.append(f"mode {mode}: samples {span} scaled to 8 bits")
        grey = _scale_to_8_bits(np.asarray(image), top)
        return np.repeat(grey[:, :, None], 3, axis=2), None
    palette_alpha = mode == "P" and image.palette is not None and image.palette.mode == "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info or palette_alpha:
        rgba = np.asarray(image.convert("RGBA"))
        return rgba[:, :, :3], rgba[:, :, 3]
    if mode == "CMYK":
        notes.append("CMYK converted to RGB without colour management")
    try:
        return np.asarray(image.convert("RGB"), dtype=np.uint8), None
    except ValueError:
        raise ImageReadError(f"images of mode {mode} are not supported") from None


def convert_image(image, frame=None, background=DEFAULT_BACKGROUND, max_pixels=fmt.PACKAGE_LIMIT):
    """A PIL image as (pixels, notes): pixels an (H, W, 3) uint8 RGB array, or (H, W, 4)
    straight RGBA when the image has transparency (an alpha below 255), upright (EXIF
    orientation applied), and notes a list of sentences saying what was done to get there.

    frame picks a frame of an animation (default: the first, with a note). Given a
    `background` (a Pillow colour name, '#rrggbb' or an RGB tuple), transparent pixels
    are composited onto it and the pixels are RGB. An alpha channel that is 255
    everywhere is dropped. The pixel limit (kmz.MAX_IMAGE_PIXELS unless given; None for
    none) is checked before the pixels are loaded.
    """
    bg = None if background is None else _background_rgb(background)
    notes = []
    frames = getattr(image, "n_frames", 1)
    if frame is not None and not 0 <= frame < frames:
        raise ImageReadError(f"no frame {frame}: the image has {frames} frame{'s' * (frames != 1)}")
    if frames > 1:
        image.seek(frame or 0)
        if frame is None:
            notes.append(f"the image has {frames} frames; encoded the first (--frame N picks another)")
    width, height = image.size
    if width == 0 or height == 0:
        raise ImageReadError(f"the image has no pixels ({width} x {height})")
    fmt.check_pixel_limit(width, height, max_pixels)
    orientation = image.getexif().get(_ORIENTATION, 1)
    if orientation in range(2, 9):
        image = ImageOps.exif_transpose(image)
        notes.append(f"rotated/flipped upright as its EXIF orientation ({orientation}) says")
    rgb, alpha = _rgb_and_alpha(image, notes)
    if alpha is not None and (alpha < 255).any() and bg is None:
        return np.ascontiguousarray(np.dstack([rgb, alpha])), notes
    if alpha is not None and (alpha < 255).any():
        a = alpha.astype(np.uint32)[:, :, None]
        rgb = (rgb * a + np.array(bg, dtype=np.uint32) * (255 - a) + 127) // 255
        rgb = rgb.astype(np.uint8)
        name = background if isinstance(background, str) else "#%02x%02x%02x" % bg
        notes.append(f"the image has transparency; composited onto {name}")
    return np.ascontiguousarray(rgb), notes


def open_image(path, frame=None, background=DEFAULT_BACKGROUND, max_pixels=fmt.PACKAGE_LIMIT):
    """Read any image Pillow can read: (pixels, notes) as convert_image gives them.

    Every failure (no such file, not an image, truncated or corrupt, over the pixel
    limit, no such frame) is a KmzError whose message starts with the path.
    """
    if background is not None:
        _background_rgb(background)  # a bad colour is API misuse, not a bad file
    try:
        # kmz's own limit (checked in convert_image) replaces Pillow's for this read.
        with _without_pillow_limit(), Image.open(path) as image:
            return convert_image(image, frame, background, max_pixels)
    except KmzError as e:
        raise type(e)(f"{path}: {e}") from None
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a directory") from None
    except PermissionError:
        raise ImageReadError(f"{path}: permission denied") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image Pillow can read") from None
    except Exception as e:  # Pillow's decoders raise many types for corrupt files
        raise ImageReadError(f"{path}: cannot read image ({str(e) or type(e).__name__})") from None


@contextlib.contextmanager
def _without_pillow_limit():
    """Lift Pillow's Image.MAX_IMAGE_PIXELS (process-wide, so not thread-safe) while kmz
    applies its own, so that kmz.MAX_IMAGE_PIXELS = None really means no limit."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def to_rgb_array(image):
    """A PIL image as an (H, W, 3) uint8 array, upright (EXIF orientation applied), any
    transparency composited onto white (as before RGBA support: open_image keeps it)."""
    return convert_image(image, background="white")[0]


def read_image(path):
    """Read any image Pillow can read as an (H, W, 3) uint8 RGB array, any transparency
    composited onto white (as before RGBA support: open_image keeps it)."""
    return open_image(path, background="white")[0]


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
    _fsync_folder(folder)


def _fsync_folder(folder):
    """Make the rename itself durable; folders cannot be opened on every platform."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def make_folder(path):
    """Create an output folder (and its parents) unless it exists."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(f"{path}: cannot create folder ({e.strerror or e})") from None


def write_bytes(path, data):
    write_atomic(path, lambda f: f.write(data))


def save_pil(path, image, format=None):
    """Save a PIL image atomically; the format is chosen from the suffix unless given."""
    format = format or Image.registered_extensions().get(Path(path).suffix.lower())
    if format is None:
        raise WriteError(f"{path}: unknown image format for suffix {Path(path).suffix!r}")
    write_atomic(path, lambda f: image.save(f, format=format))
