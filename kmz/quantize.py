"""The quantizer: pixels (N, 3) or (N, 4) uint8 -> palette (K, 3) or (K, 4) uint8 and labels (N,).

Knows nothing of bytes, files or PNG. Weighted k-means on the image's distinct
colours, each weighted by how many pixels have it (the same centroids as clustering
every pixel, at a fraction of the cost), done coarse to fine:

1. a histogram of the distinct colours, through a hash table of packed colours
   whose size follows the number of distinct colours;
2. the colours are pooled into the cells of a 6-bit-per-channel grid (their
   weighted means), seeded with greedy weighted k-means++ and clustered there
   (for small K, the best of several starts made on a 5-bit grid);
3. the centres are refined on a 7-bit grid, then by Lloyd passes on the exact
   colours, each stage starting from the labels and bounds of the one before;
4. the centres are rounded to bytes, every distinct colour is assigned to its
   nearest palette entry, and every pixel gets its colour's label in one gather.

Counting, pooling, seeding and each Lloyd pass are C loops (kmz._kmeans, from
kmz/_native/), which run without the GIL and stop on Ctrl-C. Lloyd passes skip
the points whose nearest centre provably did not change (Hamerly's bounds), and a
search that cannot be skipped visits the centres in order of distance from the
point's previous one, stopping as soon as the triangle inequality rules out the
rest (above NEIGHBOUR_MAX_K, a grid over the centres stands in for that table).
Everything runs in one thread, in a fixed order: the same input gives the same
output. Distances are measured in RGB or, on request, in Oklab.

RGBA pixels go the same way in 4 coordinates where the mean of the errors over black
and over white is Euclidean (kmz.colour.rgba_to_composite). In their histogram every
fully transparent pixel is counted as (0, 0, 0, 0), and the entry of that colour's
cluster is kept exactly transparent.
"""

from dataclasses import dataclass

import numpy as np

from . import _kmeans
from .colour import composite_to_rgba, oklab_to_srgb, rgba_to_composite, srgb_to_oklab

MAX_K = 65536
SPACES = ("rgb", "oklab")

COARSE_BITS = 6  # seeding and first clustering: far fewer points, fine enough for K = 256
TRIAL_BITS = 5  # where several starts compete (small K): cheaper still, as good a judge
MID_BITS = 7  # a second pass on a finer grid, when it still pools two colours or more per cell
TOL = 1e-3  # Lloyd stops when less than this fraction of the weight changed cluster
MAX_ITER = 100
FINE_ITER = 20  # Lloyd passes on the exact colours, at most: the last ones only polish
RESTARTS = 192  # k-means++ starts: RESTARTS // K of them, at least one
NEIGHBOUR_MAX_K = 1024  # above this, search a grid of the centres: (K, K) tables would cost too much
RGBA_EXACT_MAX = 1 << 14  # RGBA images with at most this many colours skip the grids
# RGBA's grids are a bit coarser: a cell spans four channels, and at RGB's bits it barely
# pools (an icon's 54,000 colours fall in 20,000 cells). And its exact-colour passes stop
# sooner. On the alpha corpus this cost at most 0.003 dB at K = 16, 64 and 256, and saved
# 8-12% of the time. Each: the coarse, trial and mid grids' bits, the exact-colour passes.
RGB_STAGES = (COARSE_BITS, TRIAL_BITS, MID_BITS, FINE_ITER)
RGBA_STAGES = (COARSE_BITS - 1, TRIAL_BITS - 1, MID_BITS - 1, 10)
REBUILD_DRIFT = 16.0  # re-sort the centre neighbour table once some centre moved this far


@dataclass(frozen=True)
class Quantized:
    palette: np.ndarray  # (K, 3) uint8, or (K, 4) for RGBA pixels
    labels: np.ndarray  # (N,) uint16: index into palette (K <= 65536 fits)
    # The sum over all pixels of the squared distance (0..255 units) to their entry: in
    # RGB, or for RGBA the composite error (over black and over white, the mean of the
    # two, summed over R, G, B), so that the PSNR is 10 log10(255^2 / (error / 3N)) either way.
    squared_error: float


def _unpack(keys):
    return np.stack([keys >> 16, (keys >> 8) & 255, keys & 255], axis=1).astype(np.uint8)


def _count_keys(values):
    """(each value's number, each distinct value, how many have it), numbered in order of
    first appearance through a hash table: for 32-bit keys (N,), or for pixels (N, 3)
    or (N, 4) packed as R << 16 | G << 8 | B, or R << 24 | G << 16 | B << 8 | A with
    every fully transparent pixel 0 (its colour does not show; all share one entry)."""
    n = len(values)
    number, keys, counts = np.empty(n, np.uint32), np.empty(n, np.uint32), np.zeros(n, np.uint32)
    if values.ndim == 2:
        distinct = _kmeans.count_pixels(np.ascontiguousarray(values), number, keys, counts)
    else:
        distinct = _kmeans.count_keys(values, number, keys, counts)
    return number, keys[:distinct].copy(), counts[:distinct].copy()


class _Histogram:
    """The distinct colours of an image, their pixel counts, and the way back to pixels.

    A hash table of packed colours replaces sorting: it numbers the distinct colours
    in order of first appearance, and each pixel keeps its colour's number.
    """

    def __init__(self, pixels):
        self.number, self.keys, self.counts = _count_keys(pixels)
        if pixels.shape[1] == 4:
            self.colours = self.keys.astype(">u4").view(np.uint8).reshape(-1, 4)
        else:
            self.colours = _unpack(self.keys)

    def pixel_labels(self, colour_labels):
        """Labels per pixel from labels per distinct colour: one gather. Indexing casts
        the uint32 numbers to intp in buffered chunks; take() casts them all first, an
        8-byte copy per pixel whose fresh pages cost more than the gather (24 MP: 286 ms
        against 102 in a process's first quantize)."""
        return np.asarray(colour_labels, dtype=np.uint16)[self.number]


def nearest(points, centres):
    """The nearest centre for each point (N, 3), the lowest number among equally near
    ones, through a grid over the centres: a query visits a few cells, not all K.
    (For callers with an arbitrary palette; quantize() has its own bounded searches.)"""
    points = np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 3)
    labels = np.empty(len(points), np.int64)
    _kmeans.nearest(points, np.ascontiguousarray(centres, dtype=np.float64).reshape(-1, 3), labels)
    return labels


def _seed(points, weights, k, rng):
    """k centres (float64) for `points` and each point's nearest among them: greedy
    weighted k-means++, each centre the best of 2 + ln k draws (kmz/_native/kmeans.c;
    above NEIGHBOUR_MAX_K, where clusters hold a few colours, seed_runs.c keeps the
    same draws' points in contiguous runs, about three times as fast there)."""
    chosen, labels = np.empty(k, np.int64), np.empty(len(points), np.int64)
    seed = _kmeans.seed_runs if k > NEIGHBOUR_MAX_K else _kmeans.seed
    seed(points, weights, rng.random((k, 2 + int(np.log(k)))), chosen, labels)
    return points[chosen].astype(np.float64), labels


def _neighbours(centres):
    """For each centre, all centres in order of distance from it (`order`), and
    those distances (`ranked`): a search that starts from a good guess stops early.
    Empty tables above NEIGHBOUR_MAX_K, where they cost more memory than they save
    time: the kernels then search a grid over the centres instead.

    Ties are ordered by centre number. numpy sorts each row, nearly: it sorts keys
    made of a distance's bits (a distance is not negative, so its bits sort as it does)
    with the lowest few replaced by the centre's number, in a third of the time of an
    argsort of the distances. kmz/_native/kmeans.c then puts the centres whose
    distances differ only in those bits, and those at equal distances, in order of
    distance and number, so that every machine gets the same table, and the same
    palette. The distances are measured there too, without numpy's (k, k) temporaries."""
    k = len(centres)
    if k > NEIGHBOUR_MAX_K:
        return np.zeros((0, 0)), np.zeros((0, 0), dtype=np.int32)
    apart, ranked = np.empty((k, k)), np.empty((k, k))
    _kmeans.distances(np.ascontiguousarray(centres), apart)
    low = np.uint64((1 << (k - 1).bit_length()) - 1)  # the bits that hold a centre's number
    keys = apart.view(np.uint64) & ~low | np.arange(k, dtype=np.uint64)
    keys.sort(axis=1)
    order = (keys & low).astype(np.int32)
    _kmeans.rank(apart, order, ranked)
    return ranked, order


def _assign(points, weights, centres, guesses, floors, ranked, order, drift):
    """Each point's nearest centre, its bounds (distance to that centre, and to the
    second nearest), and the clusters' weighted sums and masses. `floors` are lower
    bounds on each point's distance to any centre but its guess: a point nearer
    than that to its guess needs no search."""
    k, n = len(centres), len(points)
    labels, upper, lower = np.empty(n, np.int64), np.empty(n), np.empty(n)
    sums, mass = np.zeros((k, points.shape[1])), np.zeros(k)
    _kmeans.assign(points, weights, centres, guesses, floors, ranked, order, drift, labels, upper, lower, sums, mass)
    return labels, upper, lower, sums, mass


def _lloyd(points, weights, centres, start, tol, max_iter, table=None, pin=None):
    """Weighted Lloyd iterations from `centres` until less than `tol` of the weight
    changes cluster. `start` is (guesses, floors) for _assign: likely nearest
    centres, and what is known of the distance to the others (only speed-ups).
    `pin`, a point's number, holds the centre of that point's cluster on the point.
    Returns the centres, each point's nearest among them, its bounds, and the
    neighbour table with the centres' drift since it was made, which a later stage
    starting from these centres can take as `table`."""
    if table is None:
        ranked, order, drift = *_neighbours(centres), np.zeros(len(centres))
    else:
        ranked, order, drift = table[0], table[1], table[2].copy()
    labels, upper, lower, sums, mass = _assign(points, weights, centres, *start, ranked, order, drift)
    total = weights.sum()
    for _ in range(max_iter):
        new = np.divide(sums, mass[:, None], out=centres.copy(), where=mass[:, None] > 0)  # an empty cluster stays
        if pin is not None:
            new[labels[pin]] = points[pin]
        if drift.max() > REBUILD_DRIFT:  # the table's bounds got loose: sorting anew pays
            ranked, order = _neighbours(centres)
            drift[:] = 0
        # Relabels only the points whose bounds no longer prove their label (Hamerly).
        changed = _kmeans.move(points, weights, centres, new, labels, upper, lower, sums, mass, ranked, order, drift)
        centres = new
        if changed <= tol * total:
            break
    return centres, labels, upper, lower, (ranked, order, drift)


def _inherit(points, parents, parent_of, labels, lower):
    """A finer stage's start from a coarser one whose points (`parents`) pool these:
    each point's guess is its parent's label, and its parent's lower bound, less
    the distance between the two, bounds its distance to every other centre."""
    guesses, floors = np.empty(len(points), np.int64), np.empty(len(points))
    _kmeans.inherit(points, parents, parent_of, labels, lower, guesses, floors)
    return guesses, floors


def _parents(fine_of, coarse_of, cells):
    """Each cell of a finer grid's cell of a coarser one, from each colour's cell in
    both (the grids nest: a cell lies in one cell of any coarser grid; the exact
    colours are the finest grid, each colour its own cell)."""
    parent = np.empty(cells, dtype=np.int64)
    parent[fine_of] = coarse_of
    return parent


def _sums(points, weights, groups, count):
    """Each group's weighted sum of its points, (count, dims), and its weight, (count):
    summed point by point, in order, as a loop over them would: the same bits."""
    mass = np.bincount(groups, weights, minlength=count)
    sums = np.stack([np.bincount(groups, weights * points[:, j], minlength=count) for j in range(points.shape[1])], axis=1)
    return sums, mass


def _pool(keys, points, weights, bits, most=None):
    """Pool colours (packed RGB or RGBA `keys`) into the cells of a grid of `bits` per
    channel: (cell means, cell weights, each colour's cell); None if that makes
    more than `most` cells."""
    top = (0xFF << (8 - bits)) & 0xFF
    dims = points.shape[1]
    cell_of, cell_keys, _ = _count_keys(keys & np.uint32(top * (0x01010101 if dims == 4 else 0x010101)))
    cells = len(cell_keys)
    if most is not None and cells > most:
        return None
    sums, mass = _sums(points, weights, cell_of, cells)
    # Cells in key order: cells near in colour then sit near in memory, which makes
    # seeding's walks through its per-cluster shells much faster.
    order = np.argsort(cell_keys)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return (sums[order] / mass[order, None]).astype(np.float32), mass[order], rank[cell_of]


def quantize(pixels, k, seed=0, space="rgb"):
    """Find a palette of at most k colours for pixels (N, 3) or (N, 4) uint8 (RGB or
    straight RGBA) and label each pixel.

    `space` is where distances are measured for RGB: "rgb", or "oklab" (perceptual;
    the palette is still sRGB bytes). RGBA is measured by the composite error (the
    mean over black and over white) and takes only "rgb". The same pixels, k, seed
    and space always give the same result. When the image has at most k distinct
    colours the palette is exactly those colours (sorted) and the labels reproduce
    the image losslessly (for RGBA, every fully transparent pixel as (0, 0, 0, 0)).
    """
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.shape[1] not in (3, 4) or pixels.dtype != np.uint8:
        raise ValueError("pixels must be an (N, 3) or (N, 4) uint8 array")
    if len(pixels) == 0:
        raise ValueError("pixels must not be empty")
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be between 1 and {MAX_K}, not {k}")
    if space not in SPACES:
        raise ValueError(f"space must be one of {', '.join(SPACES)}, not {space!r}")
    rgba = pixels.shape[1] == 4
    if rgba and space != "rgb":
        raise ValueError(f"RGBA pixels are quantized by the composite error; space {space!r} is for RGB")
    histogram = _Histogram(pixels)
    colours = histogram.colours
    if len(colours) <= k:
        order = np.argsort(histogram.keys)
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return Quantized(colours[order], histogram.pixel_labels(rank), 0.0)

    if rgba:
        to_space = rgba_to_composite
    else:
        to_space = srgb_to_oklab if space == "oklab" else (lambda rgb: rgb.astype(np.float32))
    points = to_space(colours)
    weights = histogram.counts.astype(np.float64)
    coarse_bits, trial_bits, mid_bits, fine_iter = RGBA_STAGES if rgba else RGB_STAGES
    # Too few cells to tell k clusters apart, or (RGBA) few enough colours to cluster
    # them all (then they are not pooled at all): use the colours. A cell that pools two
    # heavy colours (an icon's flat greys, 4 levels apart) gets one centre, and Lloyd
    # never splits a cluster.
    pooled = None if rgba and len(points) <= RGBA_EXACT_MAX else _pool(histogram.keys, points, weights, coarse_bits)
    if pooled is None or len(pooled[0]) < 4 * k:
        pooled = points, weights, np.arange(len(points))
    cells, cell_weights, cell_of = pooled
    rng = np.random.default_rng(seed)
    # Small palettes are cheap and their k-means has poorer local optima: keep the best
    # of several starts, made on a coarser grid still when it has cells enough.
    restarts = max(1, RESTARTS // k)
    trial = None if restarts == 1 or cells is points else _pool(histogram.keys, points, weights, trial_bits)
    if trial is None or len(trial[0]) < 4 * k:
        trial = cells, cell_weights, cell_of
    grid, grid_weights, grid_of = trial
    runs = []
    for _ in range(restarts):
        centres, guesses = _seed(grid, grid_weights, k, rng)
        if rgba:
            # Lloyd's first step is taken on the seeding's labels (each point's nearest
            # seed; no cluster is empty, each has its seed): the centres start at their
            # clusters' means. That saves searching every point among the seeds, and
            # gives each start a step more before the stopping test, which an icon's
            # transparent pixels (most of its weight) often let through after one step.
            # On the alpha corpus: faster, and never worse. (Not for RGB: opaque
            # palettes stay as they were.)
            sums, mass = _sums(grid, grid_weights, guesses, k)
            centres = sums / mass[:, None]
        runs.append(_lloyd(grid, grid_weights, centres, (guesses, np.zeros(len(grid))), TOL, MAX_ITER))
    centres, labels, _, lower, table = min(runs, key=lambda run: _kmeans.error(grid, grid_weights, *run[:2]))
    # Then finer and finer points: the coarse cells (unless the starts were made on
    # them), the mid ones when they still pool two colours a cell, the exact colours.
    # Each stage starts from the labels and bounds of the one before.
    stages = [] if grid is cells else [(cells, cell_weights, cell_of, MAX_ITER)]
    mid = None if cells is points else _pool(histogram.keys, points, weights, mid_bits, most=len(points) // 2)
    if mid is not None:
        stages.append((*mid, MAX_ITER))
    stages.append((points, weights, np.arange(len(points)), fine_iter))
    # On the exact colours, the transparent colour's entry is held exactly transparent.
    transparent = np.flatnonzero(histogram.keys == 0) if rgba else []
    pin = int(transparent[0]) if len(transparent) else None
    coarse, coarse_of = grid, grid_of
    for finer, finer_weights, finer_of, passes in stages:
        start = _inherit(finer, coarse, _parents(finer_of, coarse_of, len(finer)), labels, lower)
        exact = finer is points
        # RGBA's centres have drifted far by the time its grids give way to finer points,
        # and a stale neighbour table widens every search: a new one pays there. (Not for
        # RGB: the table's order breaks ties, and opaque palettes stay what they were.)
        if rgba and finer is not coarse:
            table = None
        centres, labels, upper, lower, table = _lloyd(
            finer, finer_weights, centres, start, TOL, passes, table, pin if exact else None
        )
        coarse, coarse_of = finer, finer_of

    if rgba:
        palette = composite_to_rgba(centres)
    else:
        srgb = oklab_to_srgb(centres) if space == "oklab" else centres
        # Round, not truncate: truncation biases every channel down by half a level.
        palette = np.clip(np.rint(srgb), 0, 255).astype(np.uint8)
    # Rounding moves each centre a little: the bounds of the last pass still prove
    # most colours' nearest entry, and only the others are searched again (the
    # cluster sums and masses that _move keeps up to date are not needed here).
    entries = to_space(palette).astype(np.float64)
    _kmeans.move(points, weights, centres, entries, labels, upper, lower, np.zeros(centres.shape), np.zeros(k), *table)
    # From the histogram, not the pixels: one term per distinct colour, measured where
    # k-means measures it for RGBA (the composite error) and in RGB otherwise.
    if rgba:
        diff = points.astype(np.float64) - entries[labels]
    else:
        diff = colours.astype(np.int64) - palette[labels].astype(np.int64)
    # A plain sum, not a dot product: that would wake BLAS's threads for one multiply-add.
    squared_error = float((histogram.counts * (diff * diff).sum(1)).sum())
    return Quantized(palette, histogram.pixel_labels(labels), squared_error)
