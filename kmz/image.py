"""KmzImage: a palette and its indices, and the two directions between pixels and bytes.

Encode = quantize -> format (which bit-packs); decode = format -> palette[indices].
"""

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from . import format as fmt
from . import io
from . import targets
from .errors import TargetError, WriteError
from .dither import dither as diffuse
from .quantize import quantize

DEFAULT_K = 64


# Formats whose Pillow writers keep a palette image as one (pixel-identical, smaller).
_PALETTE_SUFFIXES = {".png", ".gif", ".bmp", ".tif", ".tiff"}
# Formats that keep an RGBA image's alpha, every level of it (GIF keeps one level, BMP none).
_ALPHA_SUFFIXES = {".png", ".tif", ".tiff", ".webp"}


class KmzImage:
    """A decoded or freshly encoded .kmz image: `palette` (K, 3) uint8, or (K, 4) RGBA
    for an image with transparency, and `indices` (H, W) uint16, each index naming a
    palette entry. `coding` names how
    tobytes() writes the indices: "raw" (bit-packed, the default) or "ctx"
    (context-modelled and range-coded, spec/CODING.md)."""

    # How encode() chose K for a quality target (a targets.TargetResult); None otherwise.
    target = None

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
        """The index coding tobytes() writes: "raw" or "ctx"."""
        return fmt.CODINGS[self.header.coding]

    @coding.setter
    def coding(self, name):
        self.header = dataclasses.replace(self.header, coding=fmt.coding_id(name))

    def __repr__(self):
        mode = " RGBA" if self.channels == 4 else ""
        return f"<KmzImage {self.width}x{self.height}{mode} K={self.k} bits_per_index={self.bits_per_index}>"

    def to_array(self):
        """The pixels: an (H, W, 3) uint8 array, (H, W, 4) for RGBA, equal to palette[indices]."""
        return self.palette[self.indices]

    def to_pil(self):
        """A PIL image: mode P when K <= 256 (the palette kept; an RGBA palette, which
        PNG writes as a tRNS chunk), RGB or RGBA otherwise."""
        if self.k <= 256:
            image = Image.fromarray(self.indices.astype(np.uint8), mode="P")
            image.putpalette(self.palette.tobytes(), "RGBA" if self.channels == 4 else "RGB")
            return image
        return Image.fromarray(self.to_array(), mode="RGBA" if self.channels == 4 else "RGB")

    def tobytes(self):
        """The complete .kmz file."""
        return fmt.encode(self.header, self.palette, self.indices)

    def save(self, path, force=True):
        """Write .kmz when the suffix is .kmz, else any format Pillow writes (by suffix).

        An existing file is replaced, as Pillow does, unless force=False
        (then OutputExistsError). The write is atomic.
        """
        if not force:
            io.check_output(path)
        suffix = Path(path).suffix.lower()
        if suffix == ".kmz":
            io.write_bytes(path, self.tobytes())
            return
        image = self.to_pil()
        if self.channels == 4 and suffix not in _ALPHA_SUFFIXES:
            raise WriteError(f"{path}: {suffix or 'this format'} cannot keep the transparency of an RGBA image "
                             f"(save as {', '.join(sorted(_ALPHA_SUFFIXES))})")
        if image.mode == "P" and suffix not in _PALETTE_SUFFIXES:
            image = image.convert("RGBA" if self.channels == 4 else "RGB")  # WebP and others store no palette
        io.save_pil(path, image)


def frombytes(data, verify_checksum=True, max_pixels=fmt.PACKAGE_LIMIT):
    """Decode a complete .kmz file held in memory.

    max_pixels (default kmz.MAX_IMAGE_PIXELS; None for no limit) is checked from the
    header before anything is allocated; verify_checksum=False skips only the CRC-32.
    """
    header, palette, indices = fmt.decode(data, verify_checksum=verify_checksum, max_pixels=max_pixels)
    return KmzImage(palette, indices, coding=fmt.CODINGS[header.coding])


def open(fp, verify_checksum=True, max_pixels=fmt.PACKAGE_LIMIT):
    """Read a .kmz file from a path or a binary file object (arguments as frombytes)."""
    data = fp.read() if hasattr(fp, "read") else io.read_bytes(fp)
    return frombytes(data, verify_checksum=verify_checksum, max_pixels=max_pixels)


def encode(image, k=None, seed=0, psnr=None, max_bytes=None, strict=False, progress=None,
           coding="raw", space="rgb", dither=False, frame=None, background=io.DEFAULT_BACKGROUND,
           max_pixels=fmt.PACKAGE_LIMIT):
    """Quantize an image to at most k colours (default 64): `image` is a path, a PIL image
    or an (H, W, 3) or (H, W, 4) (straight RGBA) uint8 array. Returns a KmzImage;
    `.save(path)` writes it, its indices coded as `coding` says ("raw" or "ctx").

    An image with transparency gets an RGBA palette, quantized for the error seen over
    black and over white (docs/transparency.md); an alpha of 255 everywhere is dropped.
    `background`, a colour, flattens the transparency onto it instead (not for arrays).

    `space` is where k-means measures colour distance: "rgb" or "oklab" (perceptual).
    `dither` maps pixels to the palette with Floyd-Steinberg error diffusion instead of
    to the nearest colour (needs k <= 256, and an opaque image).

    Quality targets (one at a time; see kmz.targets for the search and its guarantee):
    psnr=DB chooses the smallest K whose PSNR reaches DB, max_bytes=N the largest K whose
    file fits in N bytes, searching K in 1..k (default targets.DEFAULT_MAX_K = 256). The
    result's `.target` (a TargetResult) names the K chosen and what it reached. A target
    that cannot be met gives the closest K with `.target.met` False, or, when strict,
    raises TargetError. `progress`, if given, is called with a line per stage.

    frame, background and max_pixels are as kmz.io.convert_image takes them (which also
    returns the notes on what the conversion did).
    """
    # Reject options that cannot hold the result before the slow quantization.
    if fmt.coding_id(coding) == fmt.CODING_CTX and k is not None and k > fmt.CTX_MAX_K:
        raise ValueError(f"coding ctx supports K up to {fmt.CTX_MAX_K}, not {k}")
    if dither and k is not None and k > 256:
        raise ValueError(f"dithering needs k <= 256, not {k}")
    if isinstance(image, (str, Path)):
        pixels, _ = io.open_image(image, frame, background, max_pixels)
    elif isinstance(image, Image.Image):
        pixels, _ = io.convert_image(image, frame, background, max_pixels)
    else:
        pixels = np.asarray(image)
        if pixels.ndim != 3 or pixels.shape[2] not in (3, 4) or pixels.dtype != np.uint8:
            raise ValueError("an array image must be (H, W, 3) or (H, W, 4) uint8")
        fmt.check_pixel_limit(pixels.shape[1], pixels.shape[0], max_pixels)
        if pixels.shape[2] == 4 and (pixels[:, :, 3] == 255).all():
            pixels = pixels[:, :, :3]  # opaque: the same file as its RGB
    height, width = pixels.shape[:2]
    if width == 0 or height == 0:
        raise ValueError("image has no pixels")
    if psnr is not None and max_bytes is not None:
        raise ValueError("give one quality target: psnr or max_bytes, not both")
    channels = pixels.shape[2]
    if channels == 4 and dither:
        raise ValueError("dithering is for opaque images; this one has transparency (give a background)")
    encoded = {}

    def encode_at(k):
        if k not in encoded:
            if progress:
                progress(f"quantizing K={k}")
            result = quantize(pixels.reshape(-1, channels), k, seed=seed, space=space)
            indices = diffuse(pixels, result.palette) if dither else result.labels.reshape(height, width)
            encoded[k] = KmzImage(result.palette, indices, coding=coding)
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
        found = targets.smallest_k_for_psnr(psnr, lambda k: _psnr(pixels, encode_at(k).to_array()), k_max)
    else:
        found = targets.largest_k_for_bytes(max_bytes, file_size, k_max)
    if strict and not found.met:
        raise TargetError(found.describe(), found)
    image = encode_at(found.k)
    image.target = found
    return image


def psnr(original, decoded):
    """Peak signal-to-noise ratio in dB between two uint8 arrays (inf when equal).

    For RGBA arrays (last axis 4) it is the PSNR of what a viewer sees: the mean of
    the squared errors of the two composites, over black and over white (RGB, floating
    point), so the colour of a fully transparent pixel does not count."""
    if original.shape[-1] == 4:
        mse = (composite_mse(original, decoded, 0.0) + composite_mse(original, decoded, 255.0)) / 2
        return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)
    diff = original.astype(np.float64) - decoded.astype(np.float64)
    mse = float(np.mean(diff * diff))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def composite_mse(original, decoded, background):
    """The mean squared error of two straight-RGBA uint8 arrays composited over a
    grey `background` level (0 black, 255 white): C·a + background·(1 - a) per channel."""
    a, b = (np.asarray(x, dtype=np.float64).reshape(-1, 4) for x in (original, decoded))
    over = [x[:, :3] * (x[:, 3:] / 255.0) + background * (1.0 - x[:, 3:] / 255.0) for x in (a, b)]
    return float(np.mean((over[0] - over[1]) ** 2))


_psnr = psnr  # encode()'s psnr= keyword hides the function inside it
