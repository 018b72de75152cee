"""KmzImage: a palette and its indices, and the two directions between pixels and bytes.

Encode = quantize -> format (which bit-packs); decode = format -> palette[indices].
"""

import dataclasses
import os
from io import BytesIO, TextIOBase

import numpy as np
from PIL import Image

from . import checks
from . import format as fmt
from . import io
from . import targets
from .errors import TargetError, WriteError
from .dither import dither as diffuse
from .quantize import SPACES, quantize

DEFAULT_K = 64

# Formats whose Pillow writers keep a palette image as one (pixel-identical, smaller).
_PALETTE_FORMATS = {"PNG", "GIF", "BMP", "TIFF"}
# Samples compared at a time when measuring an error: the temporaries stay small.
_CHUNK = 1 << 20
# Up to this many pixels size_with("ctx") (or "mix") codes the whole image (each costs
# about as much as quantizing at K=256, mix more); above, a sixteenth of the rows in 16
# bands.
EXACT_CODED_PIXELS = 1 << 20
_BANDS = 16
# Bytes a pixel that quantizing needs on top of the pixels: each pixel's colour number
# (uint32) and its label (uint16).
_QUANTIZE_BYTES_PER_PIXEL = 6
# Formats that keep every level of an RGBA image's alpha (GIF keeps one level, BMP none),
# each checked to give the RGBA pixels back exactly (tests/test_alpha.py); of these only
# PNG keeps it in a palette image, so the others are given RGBA.
_ALPHA_FORMATS = {"PNG", "TIFF", "WEBP", "ICO", "QOI", "TGA", "SGI", "DDS", "JPEG2000", "IM"}
# Colours a GIF holds: Pillow would quantize a larger palette again, silently.
_GIF_MAX_K = 256
# Formats whose Pillow writers change the pixels (WebP and ICO are written as they are,
# io.py): lossy coding (JPEG, MPO, PDF's JPEG, AVIF), fixed icon sizes (ICNS), grey
# (SPIDER). Such a file is not the quantized image, and kmz says so.
LOSSY_FORMATS = frozenset({"JPEG", "MPO", "PDF", "AVIF", "ICNS", "SPIDER"})


class KmzImage:
    """A decoded or freshly encoded .kmz image: `palette` (K, 3) uint8, or (K, 4) RGBA
    for an image with transparency, and `indices` (H, W) uint16, each index naming a
    palette entry. `coding` names how tobytes() writes the indices: "raw" (bit-packed,
    the default), "ctx" (context-modelled and range-coded, spec/CODING.md) or "mix"
    (context mixing and a match model, smaller and slower, spec/CODING2.md)."""

    # How encode() chose K for a quality target (a targets.TargetResult); None otherwise.
    target = None
    # From encode(): the sum over all pixels of the squared distance (0..255 units)
    # between each pixel given and its palette colour, in RGB or, for RGBA, the
    # composite error (kmz.quantize.Quantized); None for a decoded image.
    squared_error = None

    def __init__(self, palette, indices, coding="raw"):
        palette = np.asarray(palette)
        indices = np.asarray(indices)
        if palette.ndim != 2 or palette.shape[1] not in (3, 4) or palette.dtype != np.uint8:
            raise ValueError("palette must be a (K, 3) or (K, 4) uint8 array")
        if indices.ndim != 2 or indices.dtype.kind not in "ui":
            raise ValueError("indices must be an (H, W) integer array")
        self.header = fmt.Header(indices.shape[1], indices.shape[0], len(palette), alpha=palette.shape[1] == 4)
        if indices.size and (indices.min() < 0 or indices.max() >= len(palette)):
            raise ValueError(f"indices must be in range 0..{len(palette) - 1}")
        self.palette = palette
        self.indices = indices.astype(np.uint16, copy=False)
        self.coding = coding

    width = property(lambda self: self.header.width)
    height = property(lambda self: self.header.height)
    k = property(lambda self: self.header.k)
    bits_per_index = property(lambda self: self.header.bits_per_index)
    size = property(lambda self: (self.width, self.height), doc="(width, height), as Pillow")
    channels = property(lambda self: self.header.channels, doc="3 (RGB) or 4 (RGBA)")

    @property
    def coding(self):
        """The index coding tobytes() writes: "raw", "ctx" or "mix"."""
        return fmt.CODINGS[self.header.coding]

    @coding.setter
    def coding(self, name):
        self.header = dataclasses.replace(self.header, coding=fmt.coding_id(name))

    def __repr__(self):
        mode = " RGBA" if self.channels == 4 else ""
        return f"<KmzImage {self.width}x{self.height}{mode} K={self.k} bits_per_index={self.bits_per_index}>"

    @property
    def psnr(self):
        """PSNR in dB of an encoded image against the pixels it was made from (inf when
        lossless), from squared_error; None for a decoded image."""
        if self.squared_error is None:
            return None
        return _decibels(self.squared_error, 3 * self.width * self.height)

    def _check_memory(self, bytes_per_pixel, what):
        io.check_memory(bytes_per_pixel * self.width * self.height, f"{what} {self.width} x {self.height} pixels")

    def to_array(self):
        """The pixels: an (H, W, 3) uint8 array, (H, W, 4) for RGBA, equal to palette[indices]."""
        self._check_memory(self.channels, "an array of")
        return self.palette[self.indices]

    def to_pil(self):
        """A PIL image: mode P when K <= 256 (the palette kept; an RGBA palette, which
        PNG writes as a tRNS chunk), RGB or RGBA otherwise."""
        # P: the indices as bytes, which Pillow shares; else an array and Pillow's copy.
        self._check_memory(1 if self.k <= 256 else 2 * self.channels + 1, "an image of")
        if self.k <= 256:
            image = Image.fromarray(self.indices.astype(np.uint8), mode="P")
            image.putpalette(self.palette.tobytes(), "RGBA" if self.channels == 4 else "RGB")
            return image
        return Image.fromarray(self.to_array(), mode="RGBA" if self.channels == 4 else "RGB")

    def tobytes(self):
        """The complete .kmz file."""
        return fmt.encode(self.header, self.palette, self.indices)

    def size_with(self, coding):
        """(bytes, exact): the .kmz file's size were it written with `coding`. Exact for
        raw (a formula), and for ctx and mix up to EXACT_CODED_PIXELS; above that,
        estimated in a fifth of the time or less from two samples, each 16 evenly spaced
        bands of rows, a 256th and a 128th of the rows. A model learns as it codes, so
        a sample costs more per pixel than the image: the line through the two samples'
        costs (a cost per pixel, and a fixed cost of learning) extrapolates to the whole.
        On the corpus's images above a million pixels: ctx within 3%, mix 2-13% over
        (one sample, scaled, was 6-30% over for ctx)."""
        if fmt.coding_id(coding) == fmt.CODING_RAW:
            return self.header.file_size, True
        rows = max(1, self.height // _BANDS**2)
        if self.width * self.height <= EXACT_CODED_PIXELS or 2 * rows * _BANDS >= self.height:
            return len(KmzImage(self.palette, self.indices, coding).tobytes()), True
        # What does not grow with the image: header, checksum and palette (mix codes it).
        fixed = len(KmzImage(self.palette, self.indices[:1, :1], coding).tobytes())
        (small, small_pixels), (large, large_pixels) = (self._sample(coding, n, fixed) for n in (rows, 2 * rows))
        per_pixel = (large - small) / (large_pixels - small_pixels)
        learning = large - per_pixel * large_pixels
        if learning < 0:  # the larger sample cost more per pixel: uneven, so scale it instead
            return fixed + round(large * self.height / (2 * rows * _BANDS)), False
        return fixed + round(per_pixel * self.width * self.height + learning), False

    def _sample(self, coding, rows, fixed):
        """(payload bytes, pixels) of 16 evenly spaced bands of `rows` rows coded as one image."""
        tops = np.linspace(0, self.height - rows, _BANDS).astype(int)
        indices = np.concatenate([self.indices[top : top + rows] for top in tops])
        return len(KmzImage(self.palette, indices, coding).tobytes()) - fixed, indices.size

    def save(self, fp, format=None, force=True):
        """Write the image to a path or a binary file object, as .kmz or as any format
        Pillow writes: `format` ("KMZ", "PNG", "JPEG", ...) or else the path's suffix
        chooses. Palette formats (PNG, GIF, BMP, TIFF) keep K <= 256 as a palette image;
        the others get RGB (RGBA). The file holds the image's pixels exactly (WebP is
        written lossless, ICO at the image's size) except in LOSSY_FORMATS (JPEG, ...); a
        GIF above K = 256, an RGBA image in a format without alpha, or an image larger
        than a format holds (ICO 256 x 256, WebP 16383 a side, ...) is refused
        (WriteError). Returns the number of bytes written.

        A path is written atomically. An existing file is replaced, as Pillow does,
        unless force=False: then OutputExistsError, also for a file that appears during
        the write. Whatever exists and is not a regular file is never replaced
        (WriteError). A file object gets the whole file in one write, or nothing when
        the format cannot hold the image (WriteError).
        """
        to_file = hasattr(fp, "write")
        if format is None:
            if to_file:
                raise ValueError("saving to a file object needs a format")
            format = io.image_format(fp)
        format = format.upper()
        if format != "KMZ":
            Image.init()  # Pillow registers its other writers when first asked (costly)
        if format not in Image.SAVE:
            raise ValueError(f"unknown image format {format!r}")
        if not force and not to_file:
            io.check_output(fp)  # before the coding, which takes time
        if format == "KMZ":
            write = _writing(self.tobytes())
        else:
            if self.channels == 4 and format not in _ALPHA_FORMATS:
                raise WriteError(f"{io.label(fp)}: {format} cannot keep the transparency of an RGBA image "
                                 f"(save as {', '.join(sorted(_ALPHA_FORMATS))})")
            if format == "GIF" and self.k > _GIF_MAX_K:
                raise WriteError(f"{io.label(fp)}: GIF holds at most {_GIF_MAX_K} colours, not K={self.k} "
                                 "(save as PNG)")
            image = self.to_pil()
            if image.mode == "P" and (format not in _PALETTE_FORMATS or (self.channels == 4 and format != "PNG")):
                # JPEG, WebP and others cannot store a palette, TIFF not its alpha
                image = image.convert("RGBA" if self.channels == 4 else "RGB")
            write = io.pil_writer(image, format, io.label(fp))
        if not to_file:
            return io.write_atomic(fp, write, force)
        if format != "KMZ":
            # In memory first: a format that fails part way leaves the file object untouched.
            buffer = BytesIO()
            write(buffer)
            write = _writing(buffer.getbuffer())
        return write(fp)


def _writing(data):
    """write(f) putting all of `data` into a file object, which may take only part at a
    time: a pipe that its reader has closed takes what fits, and says so only when asked
    for the rest (BrokenPipeError). A write that returns no count took it all."""

    def write(f):
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            taken = f.write(view[done:])
            done = len(view) if taken is None else done + taken
        return done

    return write


def frombytes(data, verify_checksum=True, max_pixels=fmt.PACKAGE_LIMIT):
    """Decode a complete .kmz file held in memory.

    max_pixels (default kmz.MAX_IMAGE_PIXELS; None for no limit) is checked from the
    header before anything is allocated; verify_checksum=False skips only the CRC-32.
    An image the memory available cannot hold raises OutOfMemoryError, also before.
    """
    try:
        data = memoryview(data)
    except TypeError:
        hint = " (kmz.open reads a path)" if isinstance(data, (str, os.PathLike)) else ""
        raise TypeError(f"kmz.frombytes takes the bytes of a .kmz file, not {type(data).__name__}{hint}") from None
    data = data.cast("B")
    header = fmt.read_header(data)
    fmt.check_pixel_limit(header.width, header.height, max_pixels)
    fmt.check_length(header, len(data))
    io.check_memory(2 * header.pixel_count, f"decoding {header.width} x {header.height} pixels")
    header, palette, indices = fmt.decode(data, verify_checksum=verify_checksum, max_pixels=None)  # checked above
    return KmzImage(palette, indices, coding=fmt.CODINGS[header.coding])


def open(fp, verify_checksum=True, max_pixels=fmt.PACKAGE_LIMIT):
    """Read a .kmz file from a path or a binary file object (arguments as frombytes).
    A path must name a regular file; reading stops where the header says the file ends."""
    # Checked here: an int would pass for a file descriptor, bytes for a path.
    if isinstance(fp, TextIOBase):
        raise TypeError("kmz.open takes a path or a binary file object, not a text file object (open it with 'rb')")
    if not (isinstance(fp, (str, os.PathLike)) or hasattr(fp, "read")):
        hint = " (kmz.frombytes decodes a file's bytes)" if isinstance(fp, (bytes, bytearray, memoryview)) else ""
        raise TypeError(f"kmz.open takes a path or a binary file object, not {type(fp).__name__}{hint}")
    return frombytes(io.read_kmz(fp, max_pixels), verify_checksum, max_pixels=None)  # read_kmz checked the limit


def encode(image, k=None, seed=0, psnr=None, max_bytes=None, strict=False, progress=None,
           coding="raw", space="rgb", dither=False, frame=None, background=io.DEFAULT_BACKGROUND,
           max_pixels=fmt.PACKAGE_LIMIT):
    """Quantize an image to at most k colours (default 64): `image` is a path, a PIL image
    or an (H, W, 3) or (H, W, 4) (straight RGBA) uint8 array. Returns a KmzImage;
    `.save(path)` writes it, its indices coded as `coding` says ("raw", "ctx" or "mix").

    An image with transparency gets an RGBA palette, quantized for the error seen over
    black and over white (docs/transparency.md); an alpha of 255 everywhere is dropped.
    `background`, a colour, flattens the transparency onto it instead.

    `space` is where k-means measures colour distance: "rgb" or "oklab" (perceptual).
    `dither` maps pixels to the palette with Floyd-Steinberg error diffusion instead of
    to the nearest colour (needs k <= 256, and an opaque image).

    Quality targets (one at a time; see kmz.targets for the search and its guarantee):
    psnr=DB chooses the smallest K whose PSNR reaches DB, max_bytes=N a K whose file fits
    in N bytes where K + 1's does not (the largest that fits for raw, whose size grows
    with K), searching K in 1..k (default targets.DEFAULT_MAX_K = 256). The
    result's `.target` (a TargetResult) names the K chosen and what it reached. A target
    that cannot be met gives the closest K with `.target.met` False, or, when strict,
    raises TargetError. `progress`, if given, is called with a line per stage.

    frame, background and max_pixels are as kmz.io.convert_image takes them (which also
    returns the notes on what the conversion did); an array has one frame.
    """
    # Misuse is refused before the slow work: a float K would fail deep in k-means.
    if k is not None:
        k = checks.whole("k", k, 1, fmt.MAX_K)
    seed = checks.whole("seed", seed, 0)
    if psnr is not None:
        psnr = checks.positive("psnr", psnr)
    if max_bytes is not None:
        max_bytes = checks.whole("max_bytes", max_bytes, 1)
    if psnr is not None and max_bytes is not None:
        raise ValueError("give one quality target: psnr or max_bytes, not both")
    if strict and psnr is None and max_bytes is None:
        raise ValueError("strict needs a quality target: psnr or max_bytes")
    if space not in SPACES:
        raise ValueError(f"space must be one of {', '.join(SPACES)}, not {space!r}")
    fmt.coding_id(coding)  # an unknown coding is refused now, with or without k
    if k is not None:
        fmt.check_coded_k(coding, k)
    if dither and k is not None and k > 256:
        raise ValueError(f"dithering needs k <= 256, not {k}")
    if isinstance(image, (str, os.PathLike)):
        pixels, _ = io.open_image(image, frame, background, max_pixels)
    elif isinstance(image, Image.Image):
        pixels, _ = io.convert_image(image, frame, background, max_pixels)
    else:
        pixels, _ = io.convert_array(image, frame, background, max_pixels)
    height, width = pixels.shape[:2]
    if width == 0 or height == 0:
        raise ValueError("image has no pixels")
    io.check_memory(_QUANTIZE_BYTES_PER_PIXEL * width * height, f"quantizing {width} x {height} pixels")
    channels = pixels.shape[2]
    if channels == 4 and dither:
        raise ValueError("dithering is for opaque images; this one has transparency (give a background)")
    encoded = {}

    def encode_at(k):
        if k not in encoded:
            if progress:
                progress(f"quantizing K={k}")
            result = quantize(pixels.reshape(-1, channels), k, seed=seed, space=space)
            if dither:
                # Not each pixel's nearest entry, so not the quantizer's error: measured.
                indices = diffuse(pixels, result.palette)
                error = _sum_squared(pixels, lambda start, stop: result.palette[indices[start:stop]])
            else:
                indices, error = result.labels.reshape(height, width), result.squared_error
            encoded[k] = KmzImage(result.palette, indices, coding=coding)
            encoded[k].squared_error = error
        return encoded[k]

    def file_size(k):
        # The raw size follows from K alone; a coded size needs the encode.
        if coding == "raw":
            return fmt.file_size(width, height, k, alpha=channels == 4)
        return len(encode_at(k).tobytes())

    if psnr is None and max_bytes is None:
        return encode_at(DEFAULT_K if k is None else k)
    k_max = targets.DEFAULT_MAX_K if k is None else k
    if psnr is not None:
        found = targets.smallest_k_for_psnr(psnr, lambda k: encode_at(k).psnr, k_max)
    else:
        found = targets.largest_k_for_bytes(max_bytes, file_size, k_max)
    if strict and not found.met:
        raise TargetError(found.describe(), found)
    image = encode_at(found.k)
    if max_bytes is not None and image.k < found.k:
        # Fewer colours than K: the target reports the file written, not the raw
        # formula's size for K entries it does not have (a coded size was measured).
        found = found.with_colours(image.k, image.header.file_size if coding == "raw" else found.reached)
    image.target = found
    return image


def psnr(original, decoded):
    """Peak signal-to-noise ratio in dB between two uint8 arrays of one shape (inf when
    equal), measured a chunk at a time: no float copies of the images.

    For RGBA arrays (last axis 4) it is the PSNR of what a viewer sees: the mean of the
    squared errors of the two composites, over black and over white (RGB), so the colour
    of a fully transparent pixel does not count."""
    original, decoded = np.asarray(original), np.asarray(decoded)
    if original.shape != decoded.shape:
        raise ValueError(f"the arrays differ in shape: {original.shape} and {decoded.shape}")
    if original.shape[-1] == 4:
        error = _sum_squared(original, lambda start, stop: decoded[start:stop], _composite_squared)
        return _decibels(error, 3 * (original.size // 4))
    return _decibels(_sum_squared(original, lambda start, stop: decoded[start:stop]), original.size)


def _squared(original, decoded):
    """The sum of squared differences of two uint8 arrays, in integers."""
    diff = original.astype(np.int32) - decoded
    return int(np.square(diff).sum(dtype=np.int64))


def _sum_squared(original, decoded_rows, squared=_squared):
    """squared(a, b), summed over `original` (uint8, rows first) and the decoded image,
    whose rows start..stop decoded_rows(start, stop) gives: a few rows at a time, so
    memory stays bounded."""
    rows = max(1, _CHUNK * len(original) // max(1, original.size))
    return sum(squared(original[start : start + rows], decoded_rows(start, start + rows))
               for start in range(0, len(original), rows))


def _composite_squared(original, decoded):
    """For straight-RGBA uint8 arrays: the sum over pixels and R, G, B of the mean of the
    squared errors over black (C·a, a = alpha/255) and over white (C·a + 255 - alpha)."""
    a, b = (np.asarray(x, dtype=np.float64).reshape(-1, 4) for x in (original, decoded))
    over_black = a[:, :3] * (a[:, 3:] / 255.0) - b[:, :3] * (b[:, 3:] / 255.0)
    over_white = over_black - (a[:, 3:] - b[:, 3:])
    return float(((over_black**2 + over_white**2) / 2).sum())


def _decibels(squared_error, samples):
    """PSNR in dB of a total squared error over `samples` 8-bit values."""
    if squared_error == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0**2 / (squared_error / samples)))
