"""Floyd-Steinberg error diffusion of an image against a fixed palette.

Pillow does the diffusion in C. Its colour search is approximate (it caches the
answer per 4x4x4 block of RGB, and about 3-10% of pixels do not get their nearest
entry when dithering is off), so kmz uses it only for dithering, where the
diffused error dominates; undithered labels come from the quantizer's exact search.
"""

import numpy as np
from PIL import Image

MAX_K = 256  # Pillow's mode P holds at most 256 colours


def dither(image, palette):
    """Indices (H, W) uint16 into palette (K, 3) uint8 for image (H, W, 3) uint8,
    with Floyd-Steinberg error diffusion. K must be at most 256."""
    palette = np.asarray(palette, dtype=np.uint8)
    if not 1 <= len(palette) <= MAX_K:
        raise ValueError(f"dithering needs a palette of 1 to {MAX_K} colours, not {len(palette)}")
    holder = Image.new("P", (1, 1))
    # Pillow pads a short palette with black entries: repeat the first entry instead,
    # so a padding index can only ever stand for a real palette colour.
    padded = np.concatenate([palette, np.repeat(palette[:1], MAX_K - len(palette), axis=0)])
    holder.putpalette(padded.tobytes())
    indices = np.asarray(Image.fromarray(image).quantize(palette=holder, dither=Image.Dither.FLOYDSTEINBERG))
    # Padding entries equal entry 0, so mapping them to 0 changes no pixel.
    return np.where(indices < len(palette), indices, 0).astype(np.uint16)
