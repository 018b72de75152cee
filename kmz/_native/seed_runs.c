/* Greedy weighted k-means++ for large palettes: kmz_seed_runs (kmeans.h).
 *
 * kmz_seed's algorithm (each centre the best of `trials` points drawn by cost), its
 * data kept differently. Above NEIGHBOUR_MAX_K a cluster holds a few colours, and
 * kmz_seed spent most of its time walking shells: linked lists of points scattered
 * over memory, each an eighth of a cluster's reach wide. Here a cluster's points are
 * copied into one run of records, outer points first (sorted into 64 buckets by
 * distance from the centre), so a candidate reads, one after another, only the points
 * more than half its distance from that centre, the only ones it could take; and the
 * clusters' costs sit in a sum tree, so a draw does not add up every cluster's.
 * On Kodak images at K = 4096 this takes about 0.35x kmz_seed's time, for the same
 * PSNR. Below that K kmz_seed stays: the draws land on other points, and those
 * palettes are pinned byte for byte (tests/golden).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "distance.h"
#include "grid.h"
#include "kmeans.h"

enum { BUCKETS = 64 };

typedef struct {
    float at[KMZ_MAX_DIMS];
    float reach; /* distance to its cluster's centre */
    int32_t index;
    double weight, cost; /* cost: weight x squared distance to the centre */
} record;

typedef struct {
    float at[KMZ_MAX_DIMS]; /* the centre */
    float far;              /* no point of the cluster is farther from it */
    float step;             /* no record is farther from the centre than this beyond any before it */
    double limit2;          /* limit2(far) */
    int64_t start, size;    /* the run in the pool */
} cluster;

/* How far from its centre a point must be for a candidate `apart` from that centre
 * to take it: the triangle inequality rules out any nearer than apart / 2, and a hair
 * less is asked, for the rounding of the float32 distances. */
static inline double cut(double apart) {
    return (apart - 1e-6) * (0.5 / (1 + 1e-5));
}

/* The distance from a cluster's centre beyond which a candidate can take none of its
 * points: a hair over 2 far. */
static inline double limit(float far) {
    return 2 * far * (1 + 1e-5) + 1e-6;
}

/* Its square, compared with float32 squared distances: a hair wider still. */
static inline double limit2(float far) {
    return limit(far) * limit(far) * (1 + 1e-6);
}

/* A cluster's cost in the sum tree: each inner node the sum of its two children. */
static void set_cost(double *tree, int64_t leaves, int64_t c, double cost) {
    int64_t node = leaves + c;
    tree[node] = cost;
    for (node /= 2; node >= 1; node /= 2)
        tree[node] = tree[2 * node] + tree[2 * node + 1];
}

/* The cluster a draw lands on (never one of zero cost while the total is positive),
 * and the rest of the target within it. */
static int64_t draw_cluster(const double *tree, int64_t leaves, double u, double *target) {
    double rest = u * tree[1];
    int64_t node = 1;
    while (node < leaves) {
        node *= 2;
        if (!(rest < tree[node]) && tree[node + 1] > 0) {
            rest -= tree[node];
            node++;
        }
    }
    *target = rest;
    return node - leaves;
}

/* Writes the m records of `from` into `to`, outer buckets first, and sets the
 * cluster's far, step and cost. */
static double settle(const record *from, int64_t m, record *to, cluster *cl) {
    int64_t count[BUCKETS] = {0};
    float far = 0.0f;
    for (int64_t t = 0; t < m; t++)
        if (from[t].reach > far)
            far = from[t].reach;
    float inverse = far > 0 ? BUCKETS / far : 0.0f;
    for (int64_t t = 0; t < m; t++) {
        int64_t b = (int64_t)(from[t].reach * inverse);
        count[b < BUCKETS ? b : BUCKETS - 1]++;
    }
    int64_t place[BUCKETS], at = 0;
    for (int64_t b = BUCKETS - 1; b >= 0; b--) {
        place[b] = at;
        at += count[b];
    }
    double cost = 0.0;
    for (int64_t t = 0; t < m; t++) {
        int64_t b = (int64_t)(from[t].reach * inverse);
        to[place[b < BUCKETS ? b : BUCKETS - 1]++] = from[t];
        cost += from[t].cost;
    }
    cl->far = far;
    cl->limit2 = limit2(far);
    cl->step = far / BUCKETS * (1 + 1e-5f);
    cl->size = m;
    return cost;
}

/* The clusters that may lose points to a candidate at `at` (into `near`; returns how
 * many): of those listed in its cell and those made since the lists (listed..last),
 * the ones it is near enough to. Most are not: they are picked out without a branch,
 * which would be mispredicted at every few. */
static int64_t in_reach(const float *at, int dims, const cluster *clusters, const kmz_balls *balls,
                        const kmz_grid *grid, int64_t listed, int64_t last, int64_t *near) {
    double grid_at[3] = {at[0], at[1], at[2]};
    int64_t count, reached = 0;
    const int64_t *run = kmz_balls_in(balls, grid, grid_at, &count);
    for (int64_t t = 0; t < count; t++) {
        const cluster *cl = &clusters[run[t]];
        near[reached] = run[t];
        reached += point_distance2(at, 0, cl->at, 0, dims) < cl->limit2;
    }
    for (int64_t c = listed; c <= last; c++) {
        near[reached] = c;
        reached += point_distance2(at, 0, clusters[c].at, 0, dims) < clusters[c].limit2;
    }
    return reached;
}

/* The positive part of x, without a branch: whether a record is taken is as good as
 * random, and a mispredicted branch for each cost more than the rest of the work. */
static inline double positive(double x) {
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits &= -(uint64_t)(x > 0);
    memcpy(&x, &bits, sizeof bits);
    return x;
}

/* How much the total cost would fall were `at` a centre: over the clusters `near`. */
static double gain_of(const float *at, int dims, const record *pool, const cluster *clusters,
                      const int64_t *near, int64_t count, int64_t *read) {
    double gain = 0.0;
    for (int64_t t = 0; t < count; t++) {
        const cluster *cl = &clusters[near[t]];
        /* No record past one this near can be taken. */
        double inner = cut(sqrtf(point_distance2(at, 0, cl->at, 0, dims))) - cl->step;
        const record *r = pool + cl->start, *end = r + cl->size;
        for (; r < end && r->reach > inner; r++)
            gain += positive(r->cost - r->weight * point_distance2(at, 0, r->at, 0, dims));
        *read += r - (pool + cl->start);
    }
    return gain;
}

int kmz_seed_runs(const float *points, int dims, const double *weights, int64_t n, int64_t k,
                  const double *draws, int64_t trials, int64_t *chosen, int64_t *labels, kmz_poll *poll) {
    int status = KMZ_NO_MEMORY;
    int64_t leaves = 1, capacity = 2 * n + 1, end = 0, listed = 0;
    while (leaves < k)
        leaves *= 2;
    record *pool = malloc(sizeof(record) * capacity), *joining = malloc(sizeof(record) * n);
    cluster *clusters = malloc(sizeof(cluster) * k);
    double *tree = calloc(2 * leaves, sizeof(double)), *centre = malloc(sizeof(double) * 3 * k);
    double *radius = malloc(sizeof(double) * k);
    int64_t *near = malloc(sizeof(int64_t) * k);
    double lo[3], hi[3];
    kmz_bounds_f32(points, dims, n, lo, hi);
    kmz_grid grid;
    kmz_grid_shape(&grid, lo, hi, 2 * k);
    kmz_balls balls = {0};
    if (!pool || !joining || !clusters || !tree || !centre || !radius || !near)
        goto done;

    double total = 0.0, running = 0.0;
    for (int64_t i = 0; i < n; i++)
        total += weights[i];
    int64_t first = n - 1;
    for (int64_t i = 0; i < n; i++)
        if ((running += weights[i]) > draws[0] * total) {
            first = i;
            break;
        }
    int64_t m = n, best = first;
    for (int64_t i = 0; i < n; i++) {
        record *r = &joining[i];
        memset(r->at, 0, sizeof r->at);
        memcpy(r->at, points + dims * i, sizeof(float) * dims);
        float d = point_distance2(points, i, points, first, dims);
        r->reach = sqrtf(d);
        r->index = (int32_t)i;
        r->weight = weights[i];
        r->cost = weights[i] * d;
    }
    for (int64_t j = 0;; j++) {
        /* Cluster j: the point `best` and the m points it took, at the end of the pool. */
        cluster *cl = &clusters[j];
        chosen[j] = best;
        memset(cl->at, 0, sizeof cl->at);
        memcpy(cl->at, points + dims * best, sizeof(float) * dims);
        if (end + m > capacity) { /* close the gaps the taken points left: runs stay in cluster order */
            end = 0;
            for (int64_t c = 0; c < j; c++) {
                memmove(pool + end, pool + clusters[c].start, sizeof(record) * clusters[c].size);
                clusters[c].start = end;
                end += clusters[c].size;
            }
        }
        cl->start = end;
        set_cost(tree, leaves, j, settle(joining, m, pool + end, cl));
        end += m;
        for (int a = 0; a < 3; a++)
            centre[3 * j + a] = cl->at[a];
        if (j == k - 1)
            break;
        /* As kmz_seed: the clusters listed in the cells of a grid that their reach meets,
         * listed afresh about every sqrt(j) steps; those made since are looked at too. */
        if ((j + 1 - listed) * (j + 1 - listed) >= 8 * (j + 1) || 2 * listed < j + 1) {
            for (int64_t c = 0; c <= j; c++)
                radius[c] = limit(clusters[c].far);
            if (kmz_balls_build(&balls, &grid, centre, radius, j + 1) < 0)
                goto done;
            listed = j + 1;
        }
        double best_gain = -INFINITY;
        for (int64_t t = 0; t < trials; t++) {
            /* The draw: a cluster by cost, then a point in its run by cost. */
            double target;
            const cluster *from = &clusters[draw_cluster(tree, leaves, draws[(j + 1) * trials + t], &target)];
            const record *run = pool + from->start, *candidate = run;
            double sum = 0.0;
            for (int64_t u = 0; u < from->size; u++)
                if (run[u].cost > 0) { /* never an existing centre */
                    candidate = &run[u];
                    if ((sum += run[u].cost) > target)
                        break;
                }
            int64_t count = in_reach(candidate->at, dims, clusters, &balls, &grid, listed, j, near), read = 0;
            double gain = gain_of(candidate->at, dims, pool, clusters, near, count, &read);
            if (gain > best_gain) {
                best = candidate->index;
                best_gain = gain;
            }
            if (kmz_poll_tick(poll, count + read + 1)) {
                status = KMZ_INTERRUPTED;
                goto done;
            }
        }
        /* The points nearer the new centre than their own leave their runs for it. */
        const float *at = points + dims * best;
        int64_t count = in_reach(at, dims, clusters, &balls, &grid, listed, j, near);
        m = 0;
        for (int64_t t = 0; t < count; t++) {
            cluster *from = &clusters[near[t]];
            double inner = cut(sqrtf(point_distance2(at, 0, from->at, 0, dims))) - from->step;
            record *run = pool + from->start;
            int64_t reached = 0;
            while (reached < from->size && run[reached].reach > inner)
                reached++;
            /* Those that stay keep their order, closed up towards the inner end. */
            int64_t gap = reached;
            for (int64_t u = reached - 1; u >= 0; u--) {
                record r = run[u];
                float d = point_distance2(at, 0, r.at, 0, dims);
                if (r.weight * d < r.cost) {
                    r.cost = r.weight * d;
                    r.reach = sqrtf(d);
                    joining[m++] = r;
                } else {
                    run[--gap] = r;
                }
            }
            if (gap == 0)
                continue;
            from->start += gap;
            from->size -= gap;
            double cost = 0.0;
            for (int64_t u = 0; u < from->size; u++)
                cost += pool[from->start + u].cost;
            if (from->size && pool[from->start].reach + from->step < from->far) {
                from->far = pool[from->start].reach + from->step;
                from->limit2 = limit2(from->far);
            }
            set_cost(tree, leaves, from - clusters, cost);
        }
    }
    for (int64_t c = 0; c < k; c++)
        for (int64_t u = 0; u < clusters[c].size; u++)
            labels[pool[clusters[c].start + u].index] = c;
    status = KMZ_OK;
done:
    free(pool), free(joining), free(clusters), free(tree), free(centre), free(radius), free(near);
    kmz_balls_free(&balls);
    return status;
}
