"""The quantizer: pixels (N, 3) uint8 -> palette (K, 3) uint8 and labels (N,).

Knows nothing of bytes, files or PNG. k-means runs on the image's distinct colours,
each weighted by how many pixels have it, which gives the same centroids as
clustering every pixel at a fraction of the cost.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans

MAX_K = 65536


@dataclass(frozen=True)
class Quantized:
    palette: np.ndarray  # (K, 3) uint8
    labels: np.ndarray  # (N,) uint16: index into palette (K <= 65536 fits)


def distinct_colours(pixels):
    """Return (colours (U, 3) uint8, counts (U,), inverse (N,)) for pixels (N, 3) uint8."""
    packed = (
        pixels[:, 0].astype(np.uint32) << 16
        | pixels[:, 1].astype(np.uint32) << 8
        | pixels[:, 2].astype(np.uint32)
    )
    keys, inverse, counts = np.unique(packed, return_inverse=True, return_counts=True)
    colours = np.stack([(keys >> 16) & 255, (keys >> 8) & 255, keys & 255], axis=1)
    return colours.astype(np.uint8), counts, inverse.reshape(-1)


def nearest(colours, palette):
    """Index of the nearest palette entry (squared RGB distance) for each colour."""
    c = colours.astype(np.float32)
    p = palette.astype(np.float32)
    out = np.empty(len(c), dtype=np.int64)
    p_norm = (p * p).sum(axis=1)
    step = max(1, (1 << 22) // max(1, len(p)))  # bound the (chunk, K) distance matrix
    for start in range(0, len(c), step):
        chunk = c[start : start + step]
        # |c - p|^2 = |c|^2 - 2 c.p + |p|^2; |c|^2 is constant per row, so drop it.
        d = p_norm[None, :] - 2.0 * chunk @ p.T
        out[start : start + step] = d.argmin(axis=1)
    return out


def quantize(pixels, k, seed=0):
    """Find a palette of at most k colours for pixels (N, 3) uint8 and label each pixel.

    When the image has at most k distinct colours the palette is exactly those colours
    (sorted) and the labels reproduce the image losslessly.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.shape[1] != 3 or pixels.dtype != np.uint8:
        raise ValueError("pixels must be an (N, 3) uint8 array")
    if len(pixels) == 0:
        raise ValueError("pixels must not be empty")
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be between 1 and {MAX_K}, not {k}")
    colours, counts, inverse = distinct_colours(pixels)
    if len(colours) <= k:
        return Quantized(colours, inverse.astype(np.uint16))
    km = KMeans(n_clusters=k, n_init=1, random_state=seed)
    km.fit(colours.astype(np.float64), sample_weight=counts)
    # Round, not truncate: truncation biases every channel down by half a level.
    palette = np.clip(np.rint(km.cluster_centers_), 0, 255).astype(np.uint8)
    colour_labels = nearest(colours, palette)
    return Quantized(palette, colour_labels.astype(np.uint16)[inverse])
