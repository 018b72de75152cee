"""KmzImage: a palette and its indices, and the two directions between pixels and bytes.

Encode = quantize -> format (which bit-packs); decode = format -> palette[indices].
"""

from pathlib import Path

import numpy as np
from PIL import Image

from . import format as fmt
from . import io
from .dither import dither as diffuse
from .quantize import quantize


class KmzImage:
    """A decoded or freshly encoded .kmz image: `palette` (K, 3) uint8 and
    `indices` (H, W) uint16, each index naming a palette entry."""

    def __init__(self, palette, indices):
        palette = np.asarray(palette)
        indices = np.asarray(indices)
        if palette.ndim != 2 or palette.shape[1] != 3 or palette.dtype != np.uint8:
            raise ValueError("palette must be a (K, 3) uint8 array")
        if indices.ndim != 2 or indices.dtype.kind not in "ui":
            raise ValueError("indices must be an (H, W) integer array")
        self.header = fmt.Header(indices.shape[1], indices.shape[0], len(palette))
        if indices.size and (indices.min() < 0 or indices.max() >= len(palette)):
            raise ValueError(f"indices must be in range 0..{len(palette) - 1}")
        self.palette = palette
        self.indices = indices.astype(np.uint16, copy=False)

    width = property(lambda self: self.header.width)
    height = property(lambda self: self.header.height)
    k = property(lambda self: self.header.k)
    bits_per_index = property(lambda self: self.header.bits_per_index)
    size = property(lambda self: (self.width, self.height), doc="(width, height), as Pillow")

    def __repr__(self):
        return f"<KmzImage {self.width}x{self.height} K={self.k} bits_per_index={self.bits_per_index}>"

    def to_array(self):
        """The pixels: an (H, W, 3) uint8 array equal to palette[indices]."""
        return self.palette[self.indices]

    def to_pil(self):
        """A PIL image: mode P when K <= 256 (the palette kept), RGB otherwise."""
        if self.k <= 256:
            image = Image.fromarray(self.indices.astype(np.uint8), mode="P")
            image.putpalette(self.palette.tobytes())
            return image
        return Image.fromarray(self.to_array(), mode="RGB")

    def tobytes(self):
        """The complete .kmz file."""
        return fmt.encode(self.header, self.palette, self.indices)

    def save(self, path, force=True):
        """Write .kmz when the suffix is .kmz, else any format Pillow writes (by suffix)."""
        if Path(path).suffix.lower() == ".kmz":
            io.write_bytes(path, self.tobytes())
        else:
            io.save_pil(path, self.to_pil())


def frombytes(data, verify_checksum=True):
    """Decode a complete .kmz file held in memory."""
    _, palette, indices = fmt.decode(data, verify_checksum=verify_checksum)
    return KmzImage(palette, indices)


def open(fp):
    """Read a .kmz file from a path or a binary file object."""
    data = fp.read() if hasattr(fp, "read") else io.read_bytes(fp)
    return frombytes(data)


def encode(image, k=64, seed=0, space="rgb", dither=False):
    """Quantize an image to at most k colours: `image` is a path, a PIL image or an
    (H, W, 3) uint8 array. Returns a KmzImage; `.save(path)` writes it.

    `space` is where k-means measures colour distance: "rgb" or "oklab"
    (perceptual). `dither` maps pixels to the palette with Floyd-Steinberg error
    diffusion instead of to the nearest colour (needs k <= 256)."""
    if isinstance(image, (str, Path)):
        pixels = io.read_image(image)
    elif isinstance(image, Image.Image):
        pixels = io.to_rgb_array(image)
    else:
        pixels = np.asarray(image)
        if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
            raise ValueError("an array image must be (H, W, 3) uint8")
    height, width = pixels.shape[:2]
    if width == 0 or height == 0:
        raise ValueError("image has no pixels")
    if dither and k > 256:
        raise ValueError(f"dithering needs k <= 256, not {k}")
    result = quantize(pixels.reshape(-1, 3), k, seed=seed, space=space)
    if dither:
        return KmzImage(result.palette, diffuse(pixels, result.palette))
    return KmzImage(result.palette, result.labels.reshape(height, width))


def psnr(original, decoded):
    """Peak signal-to-noise ratio in dB between two uint8 arrays (inf when equal)."""
    diff = original.astype(np.float64) - decoded.astype(np.float64)
    mse = float(np.mean(diff * diff))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)
