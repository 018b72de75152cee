"""The quantizer: pixels (N, 3) uint8 -> palette (K, 3) uint8 and labels (N,).

Knows nothing of bytes, files or PNG. Weighted k-means on the image's distinct
colours, each weighted by how many pixels have it (the same centroids as clustering
every pixel, at a fraction of the cost), done coarse to fine:

1. a histogram of the distinct colours, through a table indexed by packed RGB;
2. the colours are pooled into cells of a 6-bit-per-channel grid (their weighted
   means), seeded with weighted k-means++ and clustered there to convergence;
3. those centres are refined by Lloyd iterations on the exact colours;
4. the centres are rounded to bytes, every distinct colour is assigned to its
   nearest palette entry, and every pixel gets its colour's label in one gather.

Lloyd iterations skip the points whose nearest centre provably did not change
(Hamerly's bounds), so late iterations cost little more than the centre update.
"""

from dataclasses import dataclass

import numpy as np

from .colour import oklab_to_srgb, srgb_to_oklab

MAX_K = 65536
SPACES = ("rgb", "oklab")

COARSE_BITS = 6  # grid for the coarse stage: fine enough for K = 256, 8x fewer points
COARSE_TOL = 1e-4  # stop when this fraction of the weight changed cluster
FINE_TOL = 1e-3
MAX_ITER = 100
_CHUNK = 1 << 21  # elements of a (points, K) distance block: 8 MiB of float32


@dataclass(frozen=True)
class Quantized:
    palette: np.ndarray  # (K, 3) uint8
    labels: np.ndarray  # (N,) uint16: index into palette (K <= 65536 fits)


def _pack(pixels):
    return (
        pixels[:, 0].astype(np.uint32) << 16
        | pixels[:, 1].astype(np.uint32) << 8
        | pixels[:, 2].astype(np.uint32)
    )


def _unpack(keys):
    return np.stack([keys >> 16, (keys >> 8) & 255, keys & 255], axis=1).astype(np.uint8)


class _Histogram:
    """The distinct colours of an image, their pixel counts, and the way back to pixels.

    A table indexed by packed RGB (2^24 entries, only the used pages ever touched)
    replaces sorting: each pixel writes its position into its colour's slot, and
    the pixels that read their own position back are one per distinct colour.
    """

    def __init__(self, pixels):
        self.packed = _pack(pixels)
        self.table = np.empty(1 << 24, dtype=np.uint32)
        position = np.arange(len(self.packed), dtype=np.uint32)
        self.table[self.packed] = position
        owner = self.table[self.packed]
        first = np.flatnonzero(owner == position)
        self.counts = np.bincount(owner, minlength=len(position))[first]
        self.keys = self.packed[first]
        self.colours = _unpack(self.keys)

    def pixel_labels(self, colour_labels):
        """Labels per pixel from labels per distinct colour: one scatter, one gather."""
        self.table[self.keys] = colour_labels
        return self.table[self.packed].astype(np.uint16)


def _distances(points, centres):
    """Squared distances (chunk, K) minus |point|^2, which does not change the order."""
    return (centres * centres).sum(axis=1) - 2.0 * points @ centres.T


def nearest(points, centres):
    """Index of the nearest centre (squared Euclidean distance) for each point."""
    points = np.asarray(points, dtype=np.float32)
    centres = np.asarray(centres, dtype=np.float32)
    out = np.empty(len(points), dtype=np.intp)
    step = max(1, _CHUNK // len(centres))
    for start in range(0, len(points), step):
        out[start : start + step] = _distances(points[start : start + step], centres).argmin(axis=1)
    return out


def _nearest_two(points, centres):
    """Nearest centre and the distances to the nearest and second nearest (Euclidean)."""
    n = len(points)
    labels = np.empty(n, dtype=np.intp)
    first = np.empty(n, dtype=np.float32)
    second = np.empty(n, dtype=np.float32)
    step = max(1, _CHUNK // len(centres))
    rows = np.arange(min(step, n))
    for start in range(0, n, step):
        chunk = points[start : start + step]
        d = _distances(chunk, centres)
        best = d.argmin(axis=1)
        r = rows[: len(chunk)]
        first[start : start + step] = d[r, best]
        d[r, best] = np.inf
        second[start : start + step] = d.min(axis=1) if centres.shape[0] > 1 else np.inf
        labels[start : start + step] = best
    norms = (points * points).sum(axis=1)
    return labels, np.sqrt(np.maximum(first + norms, 0)), np.sqrt(np.maximum(second + norms, 0))


def _seed(points, weights, k, rng):
    """Weighted k-means++: each new centre is a point drawn with probability
    proportional to weight x squared distance to the nearest centre so far."""
    centres = np.empty((k, 3), dtype=np.float32)
    cumulative = np.cumsum(weights)
    i = min(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"), len(points) - 1)
    centres[0] = points[i]
    cost = ((points - points[i]) ** 2).sum(axis=1) * weights
    for j in range(1, k):
        cumulative = np.cumsum(cost)
        # side="right" never lands on a zero-cost point, i.e. on an existing centre.
        i = min(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"), len(points) - 1)
        centres[j] = points[i]
        np.minimum(cost, ((points - points[i]) ** 2).sum(axis=1) * weights, out=cost)
    return centres


def _lloyd(points, weights, centres, tol, max_iter=MAX_ITER):
    """Weighted Lloyd iterations from `centres` until less than `tol` of the weight
    changes cluster. Returns the centres (float32)."""
    k = len(centres)
    labels, upper, lower = _nearest_two(points, centres)
    weighted = points.astype(np.float64) * weights[:, None]
    sums = np.stack([np.bincount(labels, weighted[:, c], minlength=k) for c in range(3)], axis=1)
    mass = np.bincount(labels, weights, minlength=k)
    total = mass.sum()
    for _ in range(max_iter):
        filled = mass > 0
        new = centres.copy()  # an empty cluster keeps its centre
        new[filled] = sums[filled] / mass[filled, None]
        moved = np.sqrt(((new - centres) ** 2).sum(axis=1))
        centres = new
        # Bounds stay valid by the triangle inequality: the own centre came at most
        # moved[label] closer, any other at most the largest move of the others.
        upper += moved[labels]
        top = np.argsort(moved)[-2:] if k > 1 else np.array([0, 0])
        lower -= np.where(labels == top[-1], moved[top[0]], moved[top[-1]])
        # The slack absorbs float32 rounding in the distance expansion.
        check = np.flatnonzero(upper + 1e-3 * (1.0 + upper) >= lower)
        if len(check) == 0:
            break
        new_labels, upper[check], lower[check] = _nearest_two(points[check], centres)
        changed = new_labels != labels[check]
        idx = check[changed]
        if weights[idx].sum() <= tol * total:
            break
        old, new_labels = labels[idx], new_labels[changed]
        for c in range(3):
            sums[:, c] += np.bincount(new_labels, weighted[idx, c], minlength=k)
            sums[:, c] -= np.bincount(old, weighted[idx, c], minlength=k)
        mass += np.bincount(new_labels, weights[idx], minlength=k)
        mass -= np.bincount(old, weights[idx], minlength=k)
        labels[idx] = new_labels
    return centres


def _coarse(colours, points, weights):
    """Pool colours into the cells of a COARSE_BITS grid: (cell means, cell weights)."""
    shift = 8 - COARSE_BITS
    c = colours.astype(np.uint32) >> shift
    cell = (c[:, 0] << (2 * COARSE_BITS)) | (c[:, 1] << COARSE_BITS) | c[:, 2]
    size = 1 << (3 * COARSE_BITS)
    mass = np.bincount(cell, weights, minlength=size)
    used = np.flatnonzero(mass)
    means = np.stack([np.bincount(cell, weights * points[:, i], minlength=size)[used] for i in range(3)], axis=1)
    return (means / mass[used, None]).astype(np.float32), mass[used]


def quantize(pixels, k, seed=0, space="rgb"):
    """Find a palette of at most k colours for pixels (N, 3) uint8 and label each pixel.

    `space` is where distances are measured: "rgb", or "oklab" (perceptual; the
    palette is still sRGB bytes). The same pixels, k, seed and space always give
    the same result. When the image has at most k distinct colours the palette is
    exactly those colours (sorted) and the labels reproduce the image losslessly.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.shape[1] != 3 or pixels.dtype != np.uint8:
        raise ValueError("pixels must be an (N, 3) uint8 array")
    if len(pixels) == 0:
        raise ValueError("pixels must not be empty")
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be between 1 and {MAX_K}, not {k}")
    if space not in SPACES:
        raise ValueError(f"space must be one of {', '.join(SPACES)}, not {space!r}")
    histogram = _Histogram(pixels)
    colours = histogram.colours
    if len(colours) <= k:
        order = np.argsort(histogram.keys)
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return Quantized(colours[order], histogram.pixel_labels(rank))

    to_space = srgb_to_oklab if space == "oklab" else (lambda rgb: rgb.astype(np.float32))
    points = to_space(colours)
    weights = histogram.counts.astype(np.float64)
    cells, cell_weights = _coarse(colours, points, weights)
    if len(cells) < 4 * k:  # too few cells to tell k clusters apart: seed on the colours
        cells, cell_weights = points, weights
    centres = _seed(cells, cell_weights, k, np.random.default_rng(seed))
    centres = _lloyd(cells, cell_weights, centres, COARSE_TOL)
    centres = _lloyd(points, weights, centres, FINE_TOL)

    srgb = oklab_to_srgb(centres) if space == "oklab" else centres
    # Round, not truncate: truncation biases every channel down by half a level.
    palette = np.clip(np.rint(srgb), 0, 255).astype(np.uint8)
    colour_labels = nearest(points, to_space(palette))
    return Quantized(palette, histogram.pixel_labels(colour_labels))
