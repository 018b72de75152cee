"""Files: reading inputs (images with Pillow, .kmz files no further than their header
allows; regular files or streams, never devices or FIFOs), writing outputs atomically,
and the memory available for what they hold.

The only module that touches the disk.
"""

import contextlib
import errno
import io
import os
import stat
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor, ImageOps, UnidentifiedImageError

from . import format as fmt
from . import checks
from .errors import ImageReadError, KmzError, LengthError, OutOfMemoryError, OutputExistsError, WriteError


DEFAULT_BACKGROUND = None  # keep transparency; a colour flattens onto it
_ORIENTATION = 0x0112  # the EXIF tag
_CHUNK = 1 << 20  # bytes per read from a stream, whose length is not known in advance
# Bytes per pixel that reading an image for encoding needs at least: Pillow's decoded
# image (4 bytes a pixel for most modes) and the RGB array made from it.
_READ_BYTES_PER_PIXEL = 7
# Pixels a side that formats hold, checked before Pillow is asked: libjpeg would print
# its reason on stderr past any handler, and Pillow's ICO says "all sizes too large".
_MAX_SIDE = {"JPEG": 65500, "ICO": 256}
_NAME_MAX = 255  # bytes in a file name: Linux's NAME_MAX, and most file systems'


def background_rgb(background):
    """A Pillow colour name, '#rrggbb' or an (r, g, b) tuple, as an (r, g, b) tuple;
    ValueError for what is not a colour, or not opaque ('#rrggbbaa' with aa below ff):
    what shows through a transparent pixel must not be transparent itself."""
    if isinstance(background, str):
        try:
            rgba = ImageColor.getrgb(background)
        except ValueError:
            raise ValueError(f"unknown colour {background!r} (a name such as white, or #rrggbb)") from None
        if len(rgba) == 4 and rgba[3] != 255:
            raise ValueError(f"a background must be opaque, not {background!r} (alpha {rgba[3]})")
        return rgba[:3]
    rgb = tuple(int(c) for c in background)
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise ValueError(f"background must be a colour name or 3 values 0-255, not {background!r}")
    return rgb


def _check_arguments(frame, background, max_pixels):
    """ValueError (or TypeError) for misuse of convert_image's and open_image's
    arguments; else the background as an (r, g, b) tuple, or None."""
    if frame is not None:
        checks.whole("frame", frame, 0)
    fmt.pixel_limit(max_pixels)
    return None if background is None else background_rgb(background)


def _scale_to_8_bits(values, top):
    """Samples 0..top (clipped) scaled and rounded to 0..255: 16-bit 65535 -> 255, not clipped.
    Floats that are not numbers map as numbers would: NaN and -inf to 0, +inf to 255
    (a NaN cast to uint8 is undefined, and could differ from one machine to the next)."""
    if isinstance(top, float):
        values = np.nan_to_num(values, nan=0.0, posinf=top, neginf=0.0)
        return np.rint(np.clip(values, 0.0, top) * (255 / top)).astype(np.uint8)
    # Integers: v * 255 / 65535 is never exactly halfway, so this rounds as rint would.
    values = np.clip(values, 0, top).astype(np.uint32)
    return ((values * 255 + top // 2) // top).astype(np.uint8)


# Modes whose samples are not 8-bit; how each maps to 0..255 (README "Errors").
_WIDE_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535, "F": 1.0}


def _opaque_unless(clear):
    """An alpha channel: 0 where `clear` is true, 255 elsewhere."""
    return np.where(clear, 0, 255).astype(np.uint8)


def _with_rgb16_transparency(image):
    """A 16-bit RGB PNG with a tRNS colour as an RGBA image, the pixels of that colour
    clear; any other image as it is. Pillow reads such a PNG as 8-bit RGB, the high
    byte of each sample, and so never matches the 16-bit colour; the same data decoded
    as little-endian gives the low bytes, and the two compare at 16 bits. To be called
    before the image is loaded (getexif loads a PNG)."""
    transparent = image.info.get("transparency")
    if image.format != "PNG" or not isinstance(transparent, tuple) or [t.args for t in image.tile] != ["RGB;16B"]:
        return image
    with Image.open(image.fp) as low_bytes:  # Pillow reads a file object from its start
        low_bytes.tile = [tile._replace(args="RGB;16L") for tile in low_bytes.tile]
        low = np.asarray(low_bytes)
    high = np.asarray(image)
    clear = np.ones(high.shape[:2], bool)
    for channel, sample in enumerate(transparent):
        clear &= (high[:, :, channel] == sample >> 8) & (low[:, :, channel] == sample & 255)
    rgba = Image.fromarray(np.dstack([high, _opaque_unless(clear)]), "RGBA")
    rgba.info = {key: value for key, value in image.info.items() if key != "transparency"}  # EXIF and all
    return rgba


def _rgb_and_alpha(image, notes):
    """(rgb (H, W, 3) uint8, alpha (H, W) uint8 or None) for a PIL image of any mode."""
    mode = image.mode
    transparent = image.info.get("transparency")
    if mode in _WIDE_MODES:
        top = _WIDE_MODES[mode]
        span = "0.0-1.0" if mode == "F" else "0-65535"
        notes.append(f"mode {mode}: samples {span} scaled to 8 bits")
        values = np.asarray(image)
        grey = _scale_to_8_bits(values, top)
        # A 16-bit grey PNG's tRNS colour, compared before the scaling merges its neighbours.
        alpha = _opaque_unless(values == transparent) if isinstance(transparent, int) else None
        return np.repeat(grey[:, :, None], 3, axis=2), alpha
    palette_alpha = mode == "P" and image.palette is not None and image.palette.mode == "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or transparent is not None or palette_alpha:
        rgba = np.asarray(image.convert("RGBA"))
        return rgba[:, :, :3], rgba[:, :, 3]
    if mode == "CMYK":
        notes.append("CMYK converted to RGB without colour management")
    try:
        # An RGB image as it is: convert() would copy it first (4 bytes a pixel).
        return np.asarray(image if mode == "RGB" else image.convert("RGB"), dtype=np.uint8), None
    except ValueError:
        raise ImageReadError(f"images of mode {mode} are not supported") from None


def convert_image(image, frame=None, background=DEFAULT_BACKGROUND, max_pixels=fmt.PACKAGE_LIMIT):
    """A PIL image as (pixels, notes): pixels an (H, W, 3) uint8 RGB array, or (H, W, 4)
    straight RGBA when the image has transparency (an alpha below 255), upright (EXIF
    orientation applied), and notes a list of sentences saying what was done to get there.

    frame picks a frame of an animation or a layer of a PSD, from 0 (default: the first
    frame, or a PSD's composite, with a note). Given a `background` (a Pillow colour
    name, '#rrggbb' or an RGB tuple), transparent pixels are composited onto it and the
    pixels are RGB. An alpha channel that is 255 everywhere is dropped. The pixel limit
    (kmz.MAX_IMAGE_PIXELS unless given; None for none) is checked before the pixels are
    loaded.
    """
    bg = _check_arguments(frame, background, max_pixels)
    notes = []
    # A PSD's frames are its layers, which Pillow numbers from 1; as opened, it shows
    # their composite. One of a single layer, or none (n_frames 0), is read as a still
    # image: its composite.
    first = getattr(image, "_min_frame", 0)
    frames = max(1, getattr(image, "n_frames", 1))
    if frame is not None and not 0 <= frame < frames:
        raise ImageReadError(f"no frame {frame}: the image has {frames} frame{'s' * (frames != 1)}")
    if frames > 1:
        if frame is not None:
            _seek(image, frame)
        elif first:
            notes.append(f"the image has {frames} layers; encoded their composite (--frame N picks layer N, from 0)")
        else:
            image.seek(0)  # a PIL image given may show another frame
            notes.append(f"the image has {frames} frames; encoded the first (--frame N picks another)")
    width, height = image.size
    if width == 0 or height == 0:
        raise ImageReadError(f"the image has no pixels ({width} x {height})")
    fmt.check_pixel_limit(width, height, max_pixels)
    check_memory(_READ_BYTES_PER_PIXEL * width * height, f"reading {width} x {height} pixels")
    image = _with_rgb16_transparency(image)
    orientation = image.getexif().get(_ORIENTATION, 1)
    if orientation in range(2, 9):
        image = ImageOps.exif_transpose(image)
        notes.append(f"rotated/flipped upright as its EXIF orientation ({orientation}) says")
    rgb, alpha = _rgb_and_alpha(image, notes)
    return _with_alpha(rgb, alpha, background, bg, notes)


def convert_array(pixels, frame=None, background=DEFAULT_BACKGROUND, max_pixels=fmt.PACKAGE_LIMIT):
    """An (H, W, 3) or straight RGBA (H, W, 4) uint8 array as (pixels, notes), as
    convert_image gives them: an alpha of 255 everywhere dropped, transparency composited
    onto `background` when one is given. An array is one image: frame may only be 0."""
    bg = _check_arguments(frame, background, max_pixels)
    if frame:
        raise ValueError(f"no frame {frame}: an array is one image")
    pixels = np.asarray(pixels)
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4) or pixels.dtype != np.uint8:
        raise ValueError("an array image must be (H, W, 3) or (H, W, 4) uint8")
    fmt.check_pixel_limit(pixels.shape[1], pixels.shape[0], max_pixels)
    if pixels.shape[2] == 3:
        return pixels, []
    return _with_alpha(pixels[:, :, :3], pixels[:, :, 3], background, bg, [])


def _with_alpha(rgb, alpha, background, bg, notes):
    """(pixels, notes) from RGB and an alpha (or None): RGBA when some alpha is below
    255, unless bg, the background as (r, g, b), is given: then composited onto it."""
    if alpha is not None and (alpha < 255).any():
        if bg is None:
            return np.ascontiguousarray(np.dstack([rgb, alpha])), notes
        a = alpha.astype(np.uint32)[:, :, None]
        rgb = (rgb * a + np.array(bg, dtype=np.uint32) * (255 - a) + 127) // 255
        rgb = rgb.astype(np.uint8)
        name = background if isinstance(background, str) else "#%02x%02x%02x" % bg
        notes.append(f"the image has transparency; composited onto {name}")
    return np.ascontiguousarray(rgb), notes


def _seek(image, frame):
    """Show frame `frame` (from 0) of an image of several frames."""
    first = getattr(image, "_min_frame", 0)
    if first and image.tell() == first + frame:
        # A PSD as opened says it shows layer 1 but shows the composite, and Pillow takes
        # seek(tell()) for a no-op: going by another layer first loads the one asked for.
        image.seek(first + (frame == 0))
    image.seek(first + frame)


def to_rgb_array(image):
    """A PIL image as an (H, W, 3) uint8 array, upright (EXIF orientation applied), any
    transparency composited onto white (open_image keeps it)."""
    return convert_image(image, background="white")[0]


def open_image(source, frame=None, background=DEFAULT_BACKGROUND, max_pixels=fmt.PACKAGE_LIMIT):
    """Read any image Pillow can read, from a path or a binary file object: (pixels,
    notes) as convert_image gives them.

    Every failure (no such file, not a regular file, not an image, truncated or corrupt,
    over the pixel limit, no such frame) is a KmzError whose message starts with the
    path (or the file object's name); misuse of the other arguments is a ValueError,
    as with a PIL image.
    """
    _check_arguments(frame, background, max_pixels)  # API misuse, before any failure is the file's
    name = label(source)
    with _open_input(source) as (f, size):
        if size is None:  # a pipe: Pillow needs to seek, so it reads from memory
            f = _read_stream(f, name)
        try:
            # kmz's own limit (checked in convert_image) replaces Pillow's for this read.
            with _without_pillow_limit(), Image.open(f) as image:
                return convert_image(image, frame, background, max_pixels)
        except KmzError as e:
            raise type(e)(f"{name}: {e}") from None
        except UnidentifiedImageError:
            raise ImageReadError(f"{name}: not an image Pillow can read") from None
        except MemoryError:
            raise
        except Exception as e:  # Pillow's decoders raise many types for corrupt files
            raise ImageReadError(f"{name}: cannot read image ({str(e) or type(e).__name__})") from None


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


def read_image(source):
    """Read any image Pillow can read as an (H, W, 3) uint8 RGB array, any transparency
    composited onto white (open_image keeps it)."""
    return open_image(source, background="white")[0]


def label(source):
    """What messages call an input or output: its path, or a file object's name
    ("<stdin>" for sys.stdin.buffer)."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return str(getattr(source, "name", "<stream>"))


def _reason(error):
    """An OSError's reason in kmz's wording."""
    return "no such file" if error.errno == errno.ENOENT else _lowercase(error.strerror or str(error))


def _lowercase(text):
    """A reason from elsewhere (strerror, Pillow) in lowercase, as kmz's own messages
    are: "Is a directory" -> "is a directory", but "I/O error" stays."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _not_regular(path, mode):
    """Why a file of this st_mode cannot be read or replaced: None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return f"{path}: is a directory"
    kind = next((kind for test, kind in _KINDS if test(mode)), "of an unknown type")
    return f"{path}: not a regular file ({kind})"


@contextlib.contextmanager
def _open_input(source):
    """(binary file, its size) for reading `source`: a path, which must name a regular
    file (a device can be read forever, a FIFO can block), or a file object, whose
    size is None unless it is a regular file. A path's file is closed afterwards. Read
    errors (EIO and the like) become ImageReadErrors naming the file."""
    name = label(source)
    try:
        if hasattr(source, "read"):
            yield source, _regular_size(source)
            return
        if refusal := _not_regular(name, os.stat(source).st_mode):
            raise ImageReadError(refusal)
        # Non-blocking, in case a FIFO took the file's place since the stat: open() would
        # wait for a writer. A regular file ignores the flag.
        fd = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(fd)
            if refusal := _not_regular(name, info.st_mode):
                raise ImageReadError(refusal)
            yield f, info.st_size
    except OSError as e:
        if e.errno is None:  # Pillow's own OSErrors (a truncated image) are not read errors
            raise
        raise ImageReadError(f"{name}: {_reason(e)}") from None


def _regular_size(f):
    """The bytes left in a file object if it is a regular file; None for a pipe, a
    terminal or an io.BytesIO (no descriptor)."""
    try:
        info = os.fstat(f.fileno())
        return info.st_size - f.tell() if stat.S_ISREG(info.st_mode) else None
    except (AttributeError, OSError, ValueError):
        return None


def _read_stream(f, name):
    """The rest of a stream of unknown length (a BytesIO), refused once it outgrows
    the memory available."""
    available = available_memory()
    data = io.BytesIO()
    while chunk := f.read(_CHUNK):
        data.write(chunk)
        if available is not None and data.tell() > available:
            raise OutOfMemoryError(f"out of memory: {name} goes on past the {_bytes(available)} available")
    data.seek(0)
    return data


def read_kmz(source, max_pixels=fmt.PACKAGE_LIMIT):
    """The bytes of a .kmz file, from a path or a binary file object (such as stdin),
    read no further than its header allows.

    The header, the pixel limit (as kmz.format.decode checks them) and, for a regular
    file, the length are checked before the rest is read: a 10 GB file that is not a
    .kmz costs 24 bytes of reading. A stream of raw coding is read to the length its
    header implies (and one byte more, to see trailing bytes); a coded one (coding 1
    or 2), whose length the header does not fix, to its end, within the memory
    available. A bad header raises the FormatError decode() would, without the path
    (as decode()); other failures are KmzErrors naming the file.
    """
    name = label(source)
    with _open_input(source) as (f, size):
        head = f.read(fmt.HEADER_SIZE)
        header = fmt.read_header(head)
        fmt.check_pixel_limit(header.width, header.height, max_pixels)
        if size is not None:
            fmt.check_length(header, size)
            check_memory(size, f"reading {name}")
            return head + f.read(size - len(head))
        if header.coding != fmt.CODING_RAW:
            return head + _read_stream(f, name).getbuffer()
        expected = header.file_size
        check_memory(expected, f"reading {name}")
        data = head + f.read(expected + 1 - len(head))
        if len(data) > expected:
            raise LengthError(f"trailing bytes: the file goes on past the {expected} bytes its header implies")
        return data


def available_memory():
    """Bytes of memory a new allocation can have without swapping or the OOM killer
    (Linux's MemAvailable); None where that is not known."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _bytes(n):
    """A byte count for a person: 1.5 GB."""
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000


def check_memory(needed, what):
    """Refuse, with OutOfMemoryError, work that needs more bytes than the machine has
    available, before the allocation is tried: the alternative is the OOM killer,
    which ends the process without a word."""
    available = available_memory()
    if available is not None and needed > available:
        raise OutOfMemoryError(f"out of memory: {what} needs {_bytes(needed)}, {_bytes(available)} available")


def check_output(path, inputs=(), force=False):
    """Refuse an output that would overwrite an input, that exists and is not a regular
    file (never replaced, even with force), or that exists, without force."""
    path = Path(path)
    if not _exists(path):
        return
    for source in inputs:
        if isinstance(source, (str, Path)) and Path(source).exists() and path.resolve() == Path(source).resolve():
            raise WriteError(f"{path}: refusing to overwrite the input")
    if not force:
        raise _exists_error(path)


def _exists_error(path):
    return OutputExistsError(f"{path}: exists (use --force to replace it)")


def _exists(path):
    """Whether an output path exists; WriteError if it does but is not a regular file:
    replacing a folder, a FIFO or a device (/dev/null, as root) with a file is never
    what was meant."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:  # also a symlink to nothing: link() refuses it, replace() replaces it
        return False
    except OSError as e:
        raise WriteError(f"{path}: cannot write ({_reason(e)})") from None
    if refusal := _not_regular(path, mode):
        raise WriteError(refusal)
    return True


def write_atomic(path, write, force=True):
    """Write a file by calling write(fileobj) on a temporary file in the same folder,
    then fsync and move it into place, so no partial output is ever left at `path`.
    Returns what write() returned.

    With force, an existing file is replaced; without, the move fails, leaving the file
    as it is (OutputExistsError), also when it appeared while the output was written.
    Whatever exists and is not a regular file is never replaced (WriteError).
    """
    path = Path(path)
    _exists(path)  # refuses what is not a regular file before the temporary file is made
    folder = path.parent if str(path.parent) else Path(".")
    # The temporary file's name is known before the file exists, so that a Ctrl-C at
    # any moment, even while it is being created, leaves nothing behind.
    tmp = folder / _temporary_name(path.name)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            written = write(f)
            f.flush()
            os.fsync(f.fileno())
        # Created 0600 while written; the output gets the usual umask-based mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        _move_into_place(tmp, path, force)
    except BaseException as e:
        try:
            if not isinstance(e, FileExistsError):  # only O_EXCL says that: not ours to remove
                os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise WriteError(f"{path}: cannot write ({_reason(e)})") from None
        raise
    _fsync_folder(folder)
    return written


def _temporary_name(name):
    """.NAME.<16 hex digits>.tmp, NAME cut (at a character's start) so that the whole
    fits the 255 bytes a file name may have: a valid output name must stay writable."""
    room = _NAME_MAX - len(f"..{'0' * 16}.tmp")
    encoded = os.fsencode(name)
    if len(encoded) > room:
        while encoded[room] & 0xC0 == 0x80:  # a UTF-8 continuation byte
            room -= 1
        name = os.fsdecode(encoded[:room])
    return f".{name}.{os.urandom(8).hex()}.tmp"


def _move_into_place(tmp, path, force):
    exists = _exists(path)  # again: the slow work is done, and things may have appeared
    if force:
        os.replace(tmp, path)
        return
    refusal = _exists_error(path)
    # link() never replaces: a file that appeared since any check is kept.
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise refusal from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise
        # A file system without hard links (FAT, some network ones): the check just made
        # is the last, and only a file appearing in this instant would be replaced.
        if exists:
            raise refusal from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


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
        raise WriteError(f"{path}: cannot create folder ({_reason(e)})") from None


def write_bytes(path, data, force=True):
    return write_atomic(path, lambda f: f.write(data), force)


def image_format(path):
    """The format, by Pillow's name ("PNG", "KMZ", ...), that `path`'s suffix asks for;
    WriteError when Pillow writes none by that suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".kmz":  # kmz's own: no need to load every Pillow plugin to learn that
        return "KMZ"
    format = Image.registered_extensions().get(suffix)
    if format not in Image.SAVE:
        raise WriteError(f"{path}: unknown image format for suffix {suffix!r}")
    return format


def _writer_options(image, format):
    """What Pillow needs to be told to write the pixels as they are: unasked, it writes
    WebP lossy (and clears the colour of clear pixels) and an ICO at the standard icon
    sizes up to the image's, resampled."""
    return {"WEBP": {"lossless": True, "exact": True}, "ICO": {"sizes": [image.size]}}.get(format, {})


def pil_writer(image, format, name):
    """write(fileobj) saving a PIL image as `format`: a format that cannot hold the image
    (GIF, TGA, PCX and SGI store sizes in 16 bits, WebP allows 16383 pixels a side, ICO
    256, JPEG 65500)
    raises WriteError naming `name`, whatever Pillow raised (OverflowError,
    struct.error, ValueError, ...); disk errors stay OSErrors for write_atomic."""

    def write(f):
        if format in _MAX_SIDE and max(image.size) > _MAX_SIDE[format]:
            raise WriteError(f"{name}: cannot write as {format} (at most {_MAX_SIDE[format]} pixels a side)")
        try:
            image.save(f, format=format, **_writer_options(image, format))
            return f.seek(0, os.SEEK_END)  # not tell(): the ICO writer ends on its header
        except OSError as e:
            if e.errno is not None:
                raise
            raise WriteError(f"{name}: cannot write as {format} ({_lowercase(str(e))})") from None
        except MemoryError:
            raise
        except Exception as e:  # noqa: BLE001 - each Pillow writer has its own ways to fail
            raise WriteError(f"{name}: cannot write as {format} ({_lowercase(str(e) or type(e).__name__)})") from None

    return write


def save_pil(path, image, format=None, force=True):
    """Save a PIL image atomically; the format is chosen from the suffix unless given."""
    format = format or image_format(path)
    return write_atomic(path, pil_writer(image, format, path), force)
