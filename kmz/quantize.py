"""The quantizer: pixels (N, 3) uint8 -> palette (K, 3) uint8 and labels (N,).

Knows nothing of bytes, files or PNG. Weighted k-means on the image's distinct
colours, each weighted by how many pixels have it (the same centroids as clustering
every pixel, at a fraction of the cost), done coarse to fine:

1. a histogram of the distinct colours, through a table indexed by packed RGB
   (64 MiB of address space per thread, kept for the next image: only the pages
   an image's colours touch are ever in memory);
2. the colours are pooled into the cells of a 6-bit-per-channel grid (their
   weighted means), seeded with greedy weighted k-means++ and clustered there
   (several starts for small K, keeping the best);
3. the centres are refined on a 7-bit grid, then by Lloyd passes on the exact
   colours, each stage starting from the labels of the one before;
4. the centres are rounded to bytes, every distinct colour is assigned to its
   nearest palette entry, and every pixel gets its colour's label in one gather.

Counting, pooling, seeding and each Lloyd pass are loops compiled with numba.
Lloyd passes skip the points whose nearest centre provably did not change
(Hamerly's bounds), and a search that cannot be skipped visits the centres in
order of distance from the point's previous one, stopping as soon as the
triangle inequality rules out the rest. Everything runs in one thread, in a
fixed order: the same input gives the same output. Distances are measured in
RGB or, on request, in Oklab.
"""

import threading
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy.spatial import cKDTree

from .colour import oklab_to_srgb, srgb_to_oklab

MAX_K = 65536
SPACES = ("rgb", "oklab")

COARSE_BITS = 6  # seeding and first clustering: far fewer points, fine enough for K = 256
MID_BITS = 7  # a second pass on a finer grid, when it still pools two colours or more per cell
TOL = 1e-3  # Lloyd stops when less than this fraction of the weight changed cluster
MAX_ITER = 100
FINE_ITER = 20  # Lloyd passes on the exact colours, at most: the last ones only polish
RESTARTS = 96  # k-means++ starts on the coarse grid: RESTARTS // K of them, at least one
NEIGHBOUR_MAX_K = 1024  # above this, search every centre: (K, K) tables would cost too much
REBUILD_DRIFT = 16.0  # re-sort the centre neighbour table once some centre moved this far


@dataclass(frozen=True)
class Quantized:
    palette: np.ndarray  # (K, 3) uint8
    labels: np.ndarray  # (N,) uint16: index into palette (K <= 65536 fits)


def _unpack(keys):
    return np.stack([keys >> 16, (keys >> 8) & 255, keys & 255], axis=1).astype(np.uint8)


@njit(cache=True, nogil=True)
def _count_colours(pixels, table):
    """(each pixel's colour number, packed RGB of each distinct colour, pixel count of
    each), the colours numbered in order of first appearance. `table`, indexed by
    packed RGB, is scratch: every entry read is written first, so it needs no clearing."""
    n = len(pixels)
    number = np.empty(n, dtype=np.uint32)
    for i in range(n):
        key = (np.uint32(pixels[i, 0]) << 16) | (np.uint32(pixels[i, 1]) << 8) | np.uint32(pixels[i, 2])
        number[i] = key
        table[key] = n  # not numbered yet: numbers stay below n
    keys, counts = np.empty(n, dtype=np.uint32), np.zeros(n, dtype=np.uint32)
    distinct = 0
    for i in range(n):
        key = number[i]
        if table[key] == n:
            table[key] = distinct
            keys[distinct] = key
            distinct += 1
        number[i] = table[key]
        counts[number[i]] += 1
    return number, keys[:distinct].copy(), counts[:distinct].copy()


_scratch = threading.local()


def _table():
    """This thread's 2^24-entry scratch table: kept from image to image because a
    fresh one costs a page fault for every 4 KiB it touches, as much as the count."""
    if not hasattr(_scratch, "table"):
        _scratch.table = np.empty(1 << 24, dtype=np.uint32)
    return _scratch.table


class _Histogram:
    """The distinct colours of an image, their pixel counts, and the way back to pixels.

    A table indexed by packed RGB replaces sorting: it numbers the distinct colours
    in order of first appearance, and each pixel keeps its colour's number.
    """

    def __init__(self, pixels):
        self.number, self.keys, self.counts = _count_colours(pixels, _table())
        self.colours = _unpack(self.keys)

    def pixel_labels(self, colour_labels):
        """Labels per pixel from labels per distinct colour: one gather."""
        return np.asarray(colour_labels, dtype=np.uint16)[self.number]


def nearest(points, centres):
    """The nearest centre for each point, through a k-d tree over the centres: in
    three dimensions a query visits a handful of centres, not all K. (For callers
    with an arbitrary palette; quantize() has its own bounded searches.)"""
    tree = cKDTree(np.asarray(centres, dtype=np.float64))
    return tree.query(points, workers=-1)[1]


@njit(cache=True, nogil=True)
def _draw(cumulative, u):
    """The index a uniform draw u in [0, 1) lands on, by bisection of a cumulative
    sum: the first entry above u x total, so never a zero-weight point."""
    target = u * cumulative[-1]
    lo, hi = 0, len(cumulative) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] <= target:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True, inline="always")
def _distance2(points, i, centres, c):
    d0 = points[i, 0] - centres[c, 0]
    d1 = points[i, 1] - centres[c, 1]
    d2 = points[i, 2] - centres[c, 2]
    return d0 * d0 + d1 * d1 + d2 * d2


@njit(cache=True, nogil=True)
def _seed_kernel(points, weights, k, draws):
    """Greedy weighted k-means++: each new centre is the best (lowest total cost) of a
    few points drawn with probability proportional to weight x squared distance to
    the nearest centre so far. `draws` (k, trials) holds the uniform draws. Returns
    the chosen points' indices and each point's nearest chosen centre.

    The points are kept in a linked list per cluster, with each cluster's cost and
    radius. A draw picks a cluster by cost, then a point in it; a candidate can only
    take points from the clusters it is near: none from a cluster whose centre is at
    least twice the cluster's radius away (triangle inequality), whose cost then
    counts whole, so most clusters are never visited."""
    n, trials = len(points), draws.shape[1]
    chosen = np.empty(k, dtype=np.int64)
    labels = np.zeros(n, dtype=np.int64)
    head, after = np.full(k, -1, dtype=np.int64), np.empty(n, dtype=np.int64)
    radius, cluster_cost = np.zeros(k), np.zeros(k)
    chosen[0] = _draw(np.cumsum(weights), draws[0, 0])
    cost, reach = np.empty(n), np.empty(n)  # weighted squared distance; distance
    for i in range(n - 1, -1, -1):
        d = _distance2(points, i, points, chosen[0])
        cost[i], reach[i] = weights[i] * d, np.sqrt(d)
        after[i], head[0] = head[0], i
        radius[0] = max(radius[0], reach[i])
        cluster_cost[0] += cost[i]
    for j in range(1, k):
        cumulative = np.cumsum(cluster_cost[:j])
        best, best_total = -1, np.inf
        for t in range(trials):
            c = _draw(cumulative, draws[j, t])
            target = draws[j, t] * cumulative[-1] - (cumulative[c - 1] if c > 0 else 0.0)
            i, total, candidate = head[c], 0.0, head[c]
            while i >= 0:
                if cost[i] > 0:  # never an existing centre
                    candidate = i
                total += cost[i]
                if total > target:
                    break
                i = after[i]
            total = 0.0
            for c in range(j):
                if _distance2(points, candidate, points, chosen[c]) >= 4 * radius[c] * radius[c]:
                    total += cluster_cost[c]
                    continue
                i = head[c]
                while i >= 0:
                    total += min(cost[i], weights[i] * _distance2(points, i, points, candidate))
                    i = after[i]
            if total < best_total:
                best, best_total = candidate, total
        chosen[j] = best
        for c in range(j):
            if _distance2(points, best, points, chosen[c]) >= 4 * radius[c] * radius[c]:
                continue
            i, head[c], radius[c], cluster_cost[c] = head[c], -1, 0.0, 0.0
            while i >= 0:
                following = after[i]
                d = _distance2(points, i, points, best)
                if weights[i] * d < cost[i]:
                    cost[i], reach[i], labels[i] = weights[i] * d, np.sqrt(d), j
                    after[i], head[j] = head[j], i
                    radius[j] = max(radius[j], reach[i])
                    cluster_cost[j] += cost[i]
                else:
                    after[i], head[c] = head[c], i
                    radius[c] = max(radius[c], reach[i])
                    cluster_cost[c] += cost[i]
                i = following
    return chosen, labels


def _seed(points, weights, k, rng):
    """k centres (float64) for `points` and each point's nearest among them."""
    chosen, labels = _seed_kernel(points, weights, k, rng.random((k, 2 + int(np.log(k)))))
    return points[chosen].astype(np.float64), labels


def _neighbours(centres):
    """The distances between centres and, for each centre, all centres in order of
    distance from it: a search that starts from a good guess stops early. Empty
    tables above NEIGHBOUR_MAX_K, where they cost more memory than they save time.

    Ties are ordered by centre number. numpy's sort (many times faster than numba's
    here) may order ties differently from one CPU to another: the rare rows with
    ties are sorted again, stably, so that every machine gets the same palette."""
    k = len(centres)
    if k > NEIGHBOUR_MAX_K:
        return np.zeros((0, 0)), np.zeros((0, 0), dtype=np.int32)
    apart = np.zeros((k, k))
    for j in range(3):  # one channel at a time: a (k, k, 3) array reduced over its short axis is slow
        apart += np.subtract.outer(centres[:, j], centres[:, j]) ** 2
    np.sqrt(apart, out=apart)
    order = np.argsort(apart, axis=1)
    tied = (np.diff(np.take_along_axis(apart, order, axis=1), axis=1) == 0).any(axis=1)
    order[tied] = np.argsort(apart[tied], axis=1, kind="stable")
    return apart, order.astype(np.int32)


@njit(cache=True, nogil=True, inline="always")
def _two_nearest(points, i, centres, guess, apart, order, drift, most):
    """(label, squared distance to nearest, squared distance to second nearest) of
    point i. The centres are visited by distance from `guess` (as it was when the
    table was made: each centre c has moved `drift[c]` since, at most `most`); once a
    centre is so far from it that the triangle inequality puts it beyond the second
    nearest so far, so are all the rest."""
    best, first, second = guess, _distance2(points, i, centres, guess), np.inf
    ordered = len(order) > 0  # without a table (large K), every centre is tried
    r = np.sqrt(first)
    for t in range(len(centres)):
        c = order[guess, t] if ordered else t
        if c == guess:
            continue
        if ordered:
            reach = apart[guess, c] - drift[guess] - most - r
            if reach > 0 and reach * reach >= second:
                break
        d = _distance2(points, i, centres, c)
        if d < first:
            best, first, second = c, d, first
        elif d < second:
            second = d
    return best, first, second


@njit(cache=True, nogil=True)
def _move(points, weights, old, new, labels, upper, lower, sums, mass, apart, order, drift):
    """Move the centres from `old` to `new` and relabel every point whose nearest
    centre may have changed (Hamerly: only those whose bounds, upper on the distance
    to its own centre and lower on the distance to any other, no longer prove it),
    keeping the per-cluster weighted sums and masses up to date. (apart, order) are
    a _neighbours table of the centres before they drifted by `drift`, which grows
    by this move. Returns the weight that changed cluster."""
    k = len(new)
    moved = np.empty(k)
    for c in range(k):
        moved[c] = np.sqrt(_distance2(new, c, old, c))
    # How much closer any centre but its own may have come to a point of cluster j:
    # centre i only can if |c_i - c_j| < upper + lower + moved[i] for some point of
    # j (triangle inequality), so only the moves of centres that near count.
    top = np.argmax(moved)
    drop = np.zeros(k)
    if len(order):
        reach = np.zeros(k)
        for i in range(len(points)):
            reach[labels[i]] = max(reach[labels[i]], upper[i] + lower[i])
        most, fastest = drift.max(), moved[top]
        for j in range(k):
            for t in range(k):  # nearest centres first: the rest are too far to matter
                c = order[j, t]
                if apart[c, j] - most - drift[j] >= reach[j] + fastest:
                    break
                if c != j and moved[c] > drop[j] and apart[c, j] - drift[c] - drift[j] < reach[j] + moved[c]:
                    drop[j] = moved[c]
    else:  # no table (large K): the largest move of any other centre
        drop[:] = moved[top]
        drop[top] = 0.0
        for c in range(k):
            if c != top:
                drop[top] = max(drop[top], moved[c])
    drift += moved
    most = drift.max()
    # Half the distance from each centre to its nearest other: a point nearer than
    # that to its own centre cannot be nearer to any other.
    half = np.zeros(k)
    if len(order) and k > 1:
        for c in range(k):
            other = order[c, 1] if order[c, 0] == c else order[c, 0]
            half[c] = max(0.0, 0.5 * (apart[c, other] - drift[c] - most))
    changed = 0.0
    for i in range(len(points)):
        a = labels[i]
        upper[i] += moved[a]
        lower[i] -= drop[a]
        bound = max(half[a], lower[i])
        if upper[i] <= bound:
            continue
        upper[i] = np.sqrt(_distance2(points, i, new, a))
        if upper[i] <= bound:
            continue
        b, first, second = _two_nearest(points, i, new, a, apart, order, drift, most)
        upper[i], lower[i] = np.sqrt(first), np.sqrt(second)
        if b != a:
            labels[i] = b
            w = weights[i]
            changed += w
            mass[a] -= w
            mass[b] += w
            for j in range(3):
                sums[a, j] -= w * points[i, j]
                sums[b, j] += w * points[i, j]
    return changed


@njit(cache=True, nogil=True)
def _assign(points, weights, centres, guesses, apart, order):
    """Each point's nearest centre, its bounds (distance to that centre, and to the
    second nearest), and the clusters' weighted sums and masses."""
    k, n = len(centres), len(points)
    labels = np.empty(n, dtype=np.int64)
    upper, lower = np.empty(n), np.empty(n)
    sums, mass = np.zeros((k, 3)), np.zeros(k)
    drift = np.zeros(k)
    for i in range(n):
        a, first, second = _two_nearest(points, i, centres, guesses[i], apart, order, drift, 0.0)
        labels[i], upper[i], lower[i] = a, np.sqrt(first), np.sqrt(second)
        w = weights[i]
        mass[a] += w
        for j in range(3):
            sums[a, j] += w * points[i, j]
    return labels, upper, lower, sums, mass


def _lloyd(points, weights, centres, guesses, tol, max_iter):
    """Weighted Lloyd iterations from `centres` until less than `tol` of the weight
    changes cluster; `guesses` are likely nearest centres (only a speed-up). Returns
    the centres, each point's nearest among them, its bounds, the weighted squared
    error, and the neighbour table with the centres' drift since it was made."""
    apart, order = _neighbours(centres)
    drift = np.zeros(len(centres))
    labels, upper, lower, sums, mass = _assign(points, weights, centres, guesses, apart, order)
    total = weights.sum()
    for _ in range(max_iter):
        new = np.divide(sums, mass[:, None], out=centres.copy(), where=mass[:, None] > 0)  # an empty cluster stays
        if drift.max() > REBUILD_DRIFT:  # the table's bounds got loose: sorting anew pays
            apart, order = _neighbours(centres)
            drift[:] = 0
        changed = _move(points, weights, centres, new, labels, upper, lower, sums, mass, apart, order, drift)
        centres = new
        if changed <= tol * total:
            break
    error = float(weights @ ((points - centres[labels]) ** 2).sum(axis=1))
    return centres, labels, upper, lower, error, (apart, order, drift)


@njit(cache=True, nogil=True)
def _pool_kernel(keys, points, weights, mask, table):
    """(key, weighted sum of points and weight of each cell, each point's cell), the
    cells numbered in order of first appearance through the scratch table."""
    n = len(keys)
    for i in range(n):
        table[keys[i] & mask] = n  # not numbered yet
    cell_keys, sums, mass = np.empty(n, dtype=np.uint32), np.zeros((n, 3)), np.zeros(n)
    cell_of = np.empty(n, dtype=np.int64)
    cells = 0
    for i in range(n):
        key = keys[i] & mask
        if table[key] == n:
            table[key] = cells
            cell_keys[cells] = key
            cells += 1
        c = cell_of[i] = table[key]
        w = weights[i]
        mass[c] += w
        for j in range(3):
            sums[c, j] += w * points[i, j]
    return cell_keys[:cells], sums[:cells], mass[:cells], cell_of


def _pool(keys, points, weights, bits):
    """Pool colours (packed RGB `keys`) into the cells of a grid of `bits` per
    channel: (cell means, cell weights, each colour's cell)."""
    top = (0xFF << (8 - bits)) & 0xFF
    cell_keys, sums, mass, cell_of = _pool_kernel(keys, points, weights, np.uint32(top * 0x010101), _table())
    # Cells in key order: cells near in colour then sit near in memory, which makes
    # seeding's walks through its per-cluster lists much faster.
    order = np.argsort(cell_keys)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return (sums[order] / mass[order, None]).astype(np.float32), mass[order], rank[cell_of]


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
    cells, cell_weights, cell_of = _pool(histogram.keys, points, weights, COARSE_BITS)
    if len(cells) < 4 * k:  # too few cells to tell k clusters apart: use the colours
        cells, cell_weights, cell_of = points, weights, np.arange(len(points))
    rng = np.random.default_rng(seed)
    # Small palettes are cheap on the coarse grid and their k-means has poorer local
    # optima: keep the best of several starts.
    runs = []
    for _ in range(max(1, RESTARTS // k)):
        centres, guesses = _seed(cells, cell_weights, k, rng)
        runs.append(_lloyd(cells, cell_weights, centres, guesses, TOL, MAX_ITER))
    centres, cell_labels = min(runs, key=lambda run: run[4])[:2]
    # Each finer stage starts from the labels of the coarser one, as guesses.
    guesses = cell_labels[cell_of]
    if cells is not points:
        mid, mid_weights, mid_of = _pool(histogram.keys, points, weights, MID_BITS)
        if 2 * len(mid) <= len(points):  # worth a stage of its own
            mid_guesses = np.empty(len(mid), dtype=np.int64)
            mid_guesses[mid_of] = guesses
            centres, mid_labels = _lloyd(mid, mid_weights, centres, mid_guesses, TOL, MAX_ITER)[:2]
            guesses = mid_labels[mid_of]
    centres, labels, upper, lower, _, table = _lloyd(points, weights, centres, guesses, TOL, FINE_ITER)

    srgb = oklab_to_srgb(centres) if space == "oklab" else centres
    # Round, not truncate: truncation biases every channel down by half a level.
    palette = np.clip(np.rint(srgb), 0, 255).astype(np.uint8)
    # Rounding moves each centre a little: the bounds of the last pass still prove
    # most colours' nearest entry, and only the others are searched again (the
    # cluster sums and masses that _move keeps up to date are not needed here).
    entries = to_space(palette).astype(np.float64)
    _move(points, weights, centres, entries, labels, upper, lower, np.zeros((k, 3)), np.zeros(k), *table)
    return Quantized(palette, histogram.pixel_labels(labels))
