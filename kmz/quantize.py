"""The quantizer: pixels (N, 3) uint8 -> palette (K, 3) uint8 and labels (N,).

Knows nothing of bytes, files or PNG. Weighted k-means on the image's distinct
colours, each weighted by how many pixels have it (the same centroids as clustering
every pixel, at a fraction of the cost), done coarse to fine:

1. a histogram of the distinct colours, through a table indexed by packed RGB
   (64 MiB of address space per thread, kept for the next image: only the pages
   an image's colours touch are ever in memory);
2. the colours are pooled into the cells of a 6-bit-per-channel grid (their
   weighted means), seeded with greedy weighted k-means++ and clustered there
   (for small K, the best of several starts made on a 5-bit grid);
3. the centres are refined on a 7-bit grid, then by Lloyd passes on the exact
   colours, each stage starting from the labels and bounds of the one before;
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
TRIAL_BITS = 5  # where several starts compete (small K): cheaper still, as good a judge
MID_BITS = 7  # a second pass on a finer grid, when it still pools two colours or more per cell
TOL = 1e-3  # Lloyd stops when less than this fraction of the weight changed cluster
MAX_ITER = 100
FINE_ITER = 20  # Lloyd passes on the exact colours, at most: the last ones only polish
RESTARTS = 192  # k-means++ starts: RESTARTS // K of them, at least one
NEIGHBOUR_MAX_K = 1024  # above this, search every centre: (K, K) tables would cost too much
SHELLS = 8  # seeding's rings of points per cluster, by distance from its centre
REBUILD_DRIFT = 16.0  # re-sort the centre neighbour table once some centre moved this far


@dataclass(frozen=True)
class Quantized:
    palette: np.ndarray  # (K, 3) uint8
    labels: np.ndarray  # (N,) uint16: index into palette (K <= 65536 fits)
    squared_error: float  # sum over all pixels of the squared RGB distance (0..255) to their entry


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

    A candidate x can only take a point p from its cluster (centre c) if p's reach
    |p - c| is more than half of |x - c| (triangle inequality). So each cluster
    keeps its points in SHELLS linked lists by reach, each with its cost: a
    candidate visits only the outer shells it could take points from, and counts
    the inner ones whole (most clusters it does not visit at all)."""
    n, trials = len(points), draws.shape[1]
    chosen = np.empty(k, dtype=np.int64)
    labels = np.zeros(n, dtype=np.int64)
    head, after = np.full((k, SHELLS), -1, dtype=np.int64), np.empty(n, dtype=np.int64)
    shell_cost, cluster_cost = np.zeros((k, SHELLS)), np.zeros(k)
    scale = np.ones(k)  # a point's shell is its reach x its cluster's scale, at most SHELLS - 1
    top = np.zeros(k, dtype=np.int64)  # each cluster's outermost non-empty shell
    cost, reach = np.empty(n), np.empty(n)  # weighted squared distance; distance
    joining = np.empty(n, dtype=np.int64)  # the points of the cluster being made
    chosen[0] = _draw(np.cumsum(weights), draws[0, 0])
    for i in range(n):
        d = _distance2(points, i, points, chosen[0])
        cost[i], reach[i], joining[i] = weights[i] * d, np.sqrt(d), i
    m, j = n, 0
    while True:
        # Cluster j takes its m points: shells of equal width out to the farthest.
        farthest = 0.0
        for t in range(m):
            farthest = max(farthest, reach[joining[t]])
        scale[j] = SHELLS / farthest if farthest > 0 else 1.0
        for t in range(m - 1, -1, -1):
            i = joining[t]
            s = min(SHELLS - 1, int(reach[i] * scale[j]))
            after[i], head[j, s] = head[j, s], i
            shell_cost[j, s] += cost[i]
            top[j] = max(top[j], s)
        cluster_cost[j] = shell_cost[j].sum()
        j += 1
        if j == k:
            return chosen, labels
        cumulative = np.cumsum(cluster_cost[:j])
        best, best_total = -1, np.inf
        for t in range(trials):
            # The draw: a cluster by cost, a shell in it by cost, a point in that by cost.
            c = _draw(cumulative, draws[j, t])
            target = draws[j, t] * cumulative[-1] - (cumulative[c - 1] if c > 0 else 0.0)
            s = 0
            while s < SHELLS - 1 and (shell_cost[c, s] <= target or head[c, s] < 0):
                target -= shell_cost[c, s]
                s += 1
            while head[c, s] < 0:
                s -= 1
            i, total, candidate = head[c, s], 0.0, head[c, s]
            while i >= 0:
                if cost[i] > 0:  # never an existing centre
                    candidate = i
                total += cost[i]
                if total > target:
                    break
                i = after[i]
            total = 0.0
            for c in range(j):
                apart = np.sqrt(_distance2(points, candidate, points, chosen[c]))
                inner = cluster_cost[c]
                for s in range(top[c], -1, -1):
                    if apart >= 2 * (s + 1.000001) / scale[c]:  # (a hair wide of the shell's edge)
                        break  # this shell and those inside it are too near their centre
                    inner -= shell_cost[c, s]
                    i = head[c, s]
                    while i >= 0:
                        total += min(cost[i], weights[i] * _distance2(points, i, points, candidate))
                        i = after[i]
                total += max(inner, 0.0)
            if total < best_total:
                best, best_total = candidate, total
        chosen[j] = best
        m = 0
        for c in range(j):
            apart = np.sqrt(_distance2(points, best, points, chosen[c]))
            for s in range(top[c], -1, -1):
                if apart >= 2 * (s + 1.000001) / scale[c]:
                    break
                i, head[c, s], shell_cost[c, s] = head[c, s], -1, 0.0
                while i >= 0:
                    following = after[i]
                    d = _distance2(points, i, points, best)
                    if weights[i] * d < cost[i]:
                        cost[i], reach[i], labels[i] = weights[i] * d, np.sqrt(d), j
                        joining[m] = i
                        m += 1
                    else:
                        after[i], head[c, s] = head[c, s], i
                        shell_cost[c, s] += cost[i]
                    i = following
            while top[c] > 0 and head[c, top[c]] < 0:
                top[c] -= 1
            cluster_cost[c] = shell_cost[c].sum()


def _seed(points, weights, k, rng):
    """k centres (float64) for `points` and each point's nearest among them."""
    chosen, labels = _seed_kernel(points, weights, k, rng.random((k, 2 + int(np.log(k)))))
    return points[chosen].astype(np.float64), labels


def _neighbours(centres):
    """For each centre, all centres in order of distance from it (`order`), and
    those distances (`ranked`): a search that starts from a good guess stops early.
    Empty tables above NEIGHBOUR_MAX_K, where they cost more memory than they save
    time.

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
    ranked = np.take_along_axis(apart, order, axis=1)
    tied = (np.diff(ranked, axis=1) == 0).any(axis=1)
    order[tied] = np.argsort(apart[tied], axis=1, kind="stable")
    return ranked, order.astype(np.int32)


@njit(cache=True, nogil=True, inline="always")
def _two_nearest(points, i, centres, guess, ranked, order, drift, most):
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
            reach = ranked[guess, t] - drift[guess] - most - r
            if reach > 0 and reach * reach >= second:
                break
        d = _distance2(points, i, centres, c)
        if d < first:
            best, first, second = c, d, first
        elif d < second:
            second = d
    return best, first, second


@njit(cache=True, nogil=True)
def _move(points, weights, old, new, labels, upper, lower, sums, mass, ranked, order, drift):
    """Move the centres from `old` to `new` and relabel every point whose nearest
    centre may have changed (Hamerly: only those whose bounds, upper on the distance
    to its own centre and lower on the distance to any other, no longer prove it),
    keeping the per-cluster weighted sums and masses up to date. (ranked, order) are
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
                if ranked[j, t] - most - drift[j] >= reach[j] + fastest:
                    break
                if c != j and moved[c] > drop[j] and ranked[j, t] - drift[c] - drift[j] < reach[j] + moved[c]:
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
    # that to its own centre cannot be nearer to any other. Searched exactly, in
    # table order, until the table proves the rest farther.
    half = np.zeros(k)
    if len(order) and k > 1:
        for c in range(k):
            nearest = np.inf
            for t in range(k):
                other = order[c, t]
                if other == c:
                    continue
                if ranked[c, t] - drift[c] - most >= nearest:
                    break
                nearest = min(nearest, np.sqrt(_distance2(new, c, new, other)))
            half[c] = 0.5 * nearest
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
        b, first, second = _two_nearest(points, i, new, a, ranked, order, drift, most)
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
def _assign(points, weights, centres, guesses, floors, ranked, order, drift):
    """Each point's nearest centre, its bounds (distance to that centre, and to the
    second nearest), and the clusters' weighted sums and masses. `floors` are lower
    bounds on each point's distance to any centre but its guess: a point nearer
    than that to its guess needs no search."""
    k, n = len(centres), len(points)
    labels = np.empty(n, dtype=np.int64)
    upper, lower = np.empty(n), np.empty(n)
    sums, mass = np.zeros((k, 3)), np.zeros(k)
    most = drift.max()
    for i in range(n):
        a = guesses[i]
        first = np.sqrt(_distance2(points, i, centres, a))
        if first <= floors[i]:
            labels[i], upper[i], lower[i] = a, first, floors[i]
        else:
            a, first, second = _two_nearest(points, i, centres, a, ranked, order, drift, most)
            labels[i], upper[i], lower[i] = a, np.sqrt(first), np.sqrt(second)
        w = weights[i]
        mass[a] += w
        for j in range(3):
            sums[a, j] += w * points[i, j]
    return labels, upper, lower, sums, mass


def _lloyd(points, weights, centres, start, tol, max_iter, table=None):
    """Weighted Lloyd iterations from `centres` until less than `tol` of the weight
    changes cluster. `start` is (guesses, floors) for _assign: likely nearest
    centres, and what is known of the distance to the others (only speed-ups).
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
        if drift.max() > REBUILD_DRIFT:  # the table's bounds got loose: sorting anew pays
            ranked, order = _neighbours(centres)
            drift[:] = 0
        changed = _move(points, weights, centres, new, labels, upper, lower, sums, mass, ranked, order, drift)
        centres = new
        if changed <= tol * total:
            break
    return centres, labels, upper, lower, (ranked, order, drift)


@njit(cache=True, nogil=True)
def _error(points, weights, centres, labels):
    """The weighted squared error of a clustering."""
    error = 0.0
    for i in range(len(points)):
        error += weights[i] * _distance2(points, i, centres, labels[i])
    return error


@njit(cache=True, nogil=True)
def _inherit(points, parents, parent_of, labels, lower):
    """A finer stage's start from a coarser one whose points (`parents`) pool these:
    each point's guess is its parent's label, and its parent's lower bound, less
    the distance between the two, bounds its distance to every other centre."""
    n = len(points)
    guesses, floors = np.empty(n, dtype=np.int64), np.empty(n)
    for i in range(n):
        p = parent_of[i]
        guesses[i] = labels[p]
        floors[i] = lower[p] - np.sqrt(_distance2(points, i, parents, p))
    return guesses, floors


def _parents(fine_of, coarse_of, cells):
    """Each cell of a finer grid's cell of a coarser one, from each colour's cell in
    both (the grids nest: a cell lies in one cell of any coarser grid; the exact
    colours are the finest grid, each colour its own cell)."""
    parent = np.empty(cells, dtype=np.int64)
    parent[fine_of] = coarse_of
    return parent


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


def _pool(keys, points, weights, bits, most=None):
    """Pool colours (packed RGB `keys`) into the cells of a grid of `bits` per
    channel: (cell means, cell weights, each colour's cell); None if that makes
    more than `most` cells."""
    top = (0xFF << (8 - bits)) & 0xFF
    cell_keys, sums, mass, cell_of = _pool_kernel(keys, points, weights, np.uint32(top * 0x010101), _table())
    if most is not None and len(cell_keys) > most:
        return None
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
        return Quantized(colours[order], histogram.pixel_labels(rank), 0.0)

    to_space = srgb_to_oklab if space == "oklab" else (lambda rgb: rgb.astype(np.float32))
    points = to_space(colours)
    weights = histogram.counts.astype(np.float64)
    cells, cell_weights, cell_of = _pool(histogram.keys, points, weights, COARSE_BITS)
    if len(cells) < 4 * k:  # too few cells to tell k clusters apart: use the colours
        cells, cell_weights, cell_of = points, weights, np.arange(len(points))
    rng = np.random.default_rng(seed)
    # Small palettes are cheap and their k-means has poorer local optima: keep the best
    # of several starts, made on a coarser grid still when it has cells enough.
    restarts = max(1, RESTARTS // k)
    trial = None if restarts == 1 or cells is points else _pool(histogram.keys, points, weights, TRIAL_BITS)
    if trial is None or len(trial[0]) < 4 * k:
        trial = cells, cell_weights, cell_of
    grid, grid_weights, grid_of = trial
    runs = []
    for _ in range(restarts):
        centres, guesses = _seed(grid, grid_weights, k, rng)
        runs.append(_lloyd(grid, grid_weights, centres, (guesses, np.zeros(len(grid))), TOL, MAX_ITER))
    centres, labels, _, lower, table = min(runs, key=lambda run: _error(grid, grid_weights, *run[:2]))
    # Then finer and finer points: the 6-bit cells (unless the starts were made on
    # them), the 7-bit ones when they still pool two colours a cell, the exact colours.
    # Each stage starts from the labels and bounds of the one before.
    stages = [] if grid is cells else [(cells, cell_weights, cell_of, MAX_ITER)]
    mid = None if cells is points else _pool(histogram.keys, points, weights, MID_BITS, most=len(points) // 2)
    if mid is not None:
        stages.append((*mid, MAX_ITER))
    stages.append((points, weights, np.arange(len(points)), FINE_ITER))
    coarse, coarse_of = grid, grid_of
    for finer, finer_weights, finer_of, passes in stages:
        start = _inherit(finer, coarse, _parents(finer_of, coarse_of, len(finer)), labels, lower)
        centres, labels, upper, lower, table = _lloyd(finer, finer_weights, centres, start, TOL, passes, table)
        coarse, coarse_of = finer, finer_of

    srgb = oklab_to_srgb(centres) if space == "oklab" else centres
    # Round, not truncate: truncation biases every channel down by half a level.
    palette = np.clip(np.rint(srgb), 0, 255).astype(np.uint8)
    # Rounding moves each centre a little: the bounds of the last pass still prove
    # most colours' nearest entry, and only the others are searched again (the
    # cluster sums and masses that _move keeps up to date are not needed here).
    entries = to_space(palette).astype(np.float64)
    _move(points, weights, centres, entries, labels, upper, lower, np.zeros((k, 3)), np.zeros(k), *table)
    # From the histogram, not the pixels: one term per distinct colour.
    diff = colours.astype(np.int64) - palette[labels].astype(np.int64)
    squared_error = float(histogram.counts @ (diff * diff).sum(1))
    return Quantized(palette, histogram.pixel_labels(labels), squared_error)
