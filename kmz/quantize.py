"""The quantizer: pixels (N, 3) uint8 -> palette (K, 3) uint8 and labels (N,).

Knows nothing of bytes, files or PNG. Weighted k-means on the image's distinct
colours, each weighted by how many pixels have it (the same centroids as clustering
every pixel, at a fraction of the cost), done coarse to fine:

1. a histogram of the distinct colours, through a table indexed by packed RGB;
2. the colours are pooled into the cells of a 6-bit-per-channel grid (their
   weighted means), seeded with greedy weighted k-means++ and clustered there
   (several starts for small K, keeping the best);
3. the centres are refined on a 7-bit grid, then polished by a few Lloyd passes
   on the exact colours;
4. the centres are rounded to bytes, every distinct colour is assigned to its
   nearest palette entry, and every pixel gets its colour's label in one gather.

Nearest-centre searches go through a k-d tree over the centres, and Lloyd passes
skip the points whose nearest centre provably did not change (Hamerly's bounds).
Distances are measured in RGB or, on request, in Oklab.
"""

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .colour import oklab_to_srgb, srgb_to_oklab

MAX_K = 65536
SPACES = ("rgb", "oklab")

COARSE_BITS = 6  # seeding and first clustering: far fewer points, fine enough for K = 256
MID_BITS = 7  # a second pass on a finer grid, when it still pools two colours or more per cell
TOL = 1e-3  # Lloyd stops when less than this fraction of the weight changed cluster
MAX_ITER = 100
FINE_ITER = 4  # on the exact colours the centres only get polished, at a full search a pass
RESTARTS = 64  # k-means++ starts on the coarse grid: RESTARTS // K of them, at least one
LOCAL_DRIFT_MAX_K = 1024  # above this, (K, K) centre distances cost more than they save
WORKERS = -1  # threads for k-d tree queries (-1: one per core); no answer depends on it


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


def nearest(points, centres, k=1):
    """The nearest centre for each point, through a k-d tree over the centres: in
    three dimensions a query visits a handful of centres, not all K. With k=2,
    returns (labels, distance to nearest, distance to second nearest)."""
    tree = cKDTree(np.asarray(centres, dtype=np.float64))
    distances, labels = tree.query(points, k=k, workers=WORKERS)
    if k == 1:
        return labels
    if len(centres) == 1:
        return labels[:, 0], distances[:, 0], np.full(len(points), np.inf)
    return labels[:, 0], distances[:, 0], distances[:, 1]


def _seed(points, weights, k, rng):
    """Greedy weighted k-means++: each new centre is the best (lowest total cost) of a
    few points drawn with probability proportional to weight x squared distance to
    the nearest centre so far."""
    trials = 2 + int(np.log(k))
    weights32 = weights.astype(np.float32)
    norms = np.einsum("ij,ij->i", points, points)
    scaled = -2.0 * points.T

    def cost_to(indices):
        # |p - c|^2 = |p|^2 + |c|^2 - 2 p.c: one small matrix product for all trials.
        d = points[indices] @ scaled + norms
        d += norms[indices, None]
        np.maximum(d, 0, out=d)
        return d * weights32

    def draw(cost, n):
        cumulative = np.cumsum(cost, dtype=np.float64)
        # side="right" never lands on a zero-cost point, i.e. on an existing centre.
        picks = np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")
        return np.minimum(picks, len(points) - 1)

    chosen = [int(draw(weights, 1)[0])]
    cost = cost_to(chosen)[0]
    for _ in range(1, k):
        candidates = draw(cost, trials)
        costs = np.minimum(cost, cost_to(candidates))
        best = costs.sum(axis=1, dtype=np.float64).argmin()
        chosen.append(int(candidates[best]))
        cost = costs[best]
    return points[chosen].astype(np.float32)


def _lloyd(points, weights, centres, tol, max_iter=MAX_ITER):
    """Weighted Lloyd iterations from `centres` until less than `tol` of the weight
    changes cluster. Returns the centres (float32)."""
    k = len(centres)
    labels, upper, lower = nearest(points, centres, k=2)
    weighted = points.astype(np.float64) * weights[:, None]
    sums = np.stack([np.bincount(labels, weighted[:, c], minlength=k) for c in range(3)], axis=1)
    mass = np.bincount(labels, weights, minlength=k)
    total = mass.sum()
    for _ in range(max_iter):
        filled = mass > 0
        new = centres.copy()  # an empty cluster keeps its centre
        new[filled] = sums[filled] / mass[filled, None]
        moved = np.sqrt(((new - centres) ** 2).sum(axis=1))
        lower -= _other_drift(centres, moved, labels, upper, lower)
        upper += moved[labels]  # the own centre came at most moved[label] closer
        centres = new
        check = np.flatnonzero(upper >= lower)
        if len(check) == 0:
            break
        new_labels, upper[check], lower[check] = nearest(points[check], centres, k=2)
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


def _other_drift(centres, moved, labels, upper, lower):
    """For each point, how much closer any centre but its own may have come: what
    its lower bound on the second-nearest distance must drop by.

    A centre i can only matter to a point x of cluster j if
    |c_i - c_j| <= upper(x) + lower(x) + moved[i] (triangle inequality); so each
    cluster needs only the largest move among the centres within that reach of it,
    usually far less than the largest move overall.
    """
    k = len(centres)
    if k == 1:
        return np.zeros(len(labels))
    if k > LOCAL_DRIFT_MAX_K:  # the (K, K) centre distances would cost too much
        top = np.argsort(moved)[-2:]
        return np.where(labels == top[-1], moved[top[0]], moved[top[-1]])
    reach = np.zeros(k)
    np.maximum.at(reach, labels, upper + lower)
    apart = np.sqrt(((centres[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2))
    threat = apart <= reach[:, None] + moved[None, :]
    np.fill_diagonal(threat, False)
    return (threat * moved[None, :]).max(axis=1)[labels]


def _inertia(points, weights, centres):
    """Sum of weight x squared distance to the nearest centre."""
    distances, _ = cKDTree(centres).query(points, workers=WORKERS)
    return float(weights @ (distances * distances))


def _pool(colours, points, weights, bits):
    """Pool colours into the cells of a grid of `bits` per channel: (cell means, weights)."""
    c = colours.astype(np.uint32) >> (8 - bits)
    cell = (c[:, 0] << (2 * bits)) | (c[:, 1] << bits) | c[:, 2]
    if (1 << (3 * bits)) > 4 * len(cell):  # sparse grid: number the used cells by sorting
        _, cell = np.unique(cell, return_inverse=True)
    mass = np.bincount(cell, weights)
    used = np.flatnonzero(mass)
    means = np.stack([np.bincount(cell, weights * points[:, i])[used] for i in range(3)], axis=1)
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
    cells, cell_weights = _pool(colours, points, weights, COARSE_BITS)
    if len(cells) < 4 * k:  # too few cells to tell k clusters apart: use the colours
        cells, cell_weights = points, weights
    rng = np.random.default_rng(seed)
    # Small palettes are cheap on the coarse grid and their k-means has poorer local
    # optima: keep the best of several starts.
    starts = [_seed(cells, cell_weights, k, rng) for _ in range(max(1, RESTARTS // k))]
    runs = [_lloyd(cells, cell_weights, c, TOL) for c in starts]
    centres = runs[0] if len(runs) == 1 else min(runs, key=lambda c: _inertia(cells, cell_weights, c))
    mid, mid_weights = _pool(colours, points, weights, MID_BITS)
    if cells is not points and 2 * len(mid) <= len(points):  # worth a stage of its own
        centres = _lloyd(mid, mid_weights, centres, TOL)
    centres = _lloyd(points, weights, centres, TOL, FINE_ITER)

    srgb = oklab_to_srgb(centres) if space == "oklab" else centres
    # Round, not truncate: truncation biases every channel down by half a level.
    palette = np.clip(np.rint(srgb), 0, 255).astype(np.uint8)
    colour_labels = nearest(points, to_space(palette))
    return Quantized(palette, histogram.pixel_labels(colour_labels))
