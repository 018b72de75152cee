/* Weighted k-means kernels: seeding, assignment, Lloyd moves with bounds. Plain C, no
 * Python; quantize.py is the driver and owns the iteration policy.
 *
 * Conventions: points are (n, dims) float32 and weights (n) float64; centres are
 * (k, dims) float64; dims is 3 (RGB, Oklab) or 4 (RGBA in the coordinates where the
 * composite error is Euclidean, quantize.py). A neighbour table is (ranked, order), each (k, m): for each centre the
 * centres in order of distance from it and those distances, as they were when the
 * table was made; drift[c] is how far centre c has moved since. m is 0 for no table.
 * Every kernel returns KMZ_OK, KMZ_INTERRUPTED or KMZ_NO_MEMORY.
 */
#ifndef KMZ_KMEANS_H
#define KMZ_KMEANS_H

#include <stdint.h>

#include "poll.h"

/* Rings of points per cluster in seeding, by distance from its centre. */
#define KMZ_SHELLS 8

#define KMZ_MAX_DIMS 4

typedef struct {
    const double *ranked;
    const int32_t *order;
    int64_t m;
    double *drift;
} kmz_table;

/* Greedy weighted k-means++: centre j is the best (lowest total cost) of `trials`
 * points drawn with probability proportional to weight x squared distance to the
 * nearest centre so far; draws (k, trials) are uniform in [0, 1). Writes the chosen
 * points' indices and each point's nearest chosen centre. */
int kmz_seed(const float *points, int dims, const double *weights, int64_t n, int64_t k,
             const double *draws, int64_t trials, int64_t *chosen, int64_t *labels, kmz_poll *poll);

/* The same seeding with each cluster's points kept in one run, outer points first
 * (seed_runs.c): faster when clusters hold a few points each (large k). Its draws
 * land on other points than kmz_seed's, from the same distribution. */
int kmz_seed_runs(const float *points, int dims, const double *weights, int64_t n, int64_t k,
                  const double *draws, int64_t trials, int64_t *chosen, int64_t *labels, kmz_poll *poll);

/* Each point's nearest centre (labels), its bounds (upper: the distance to it; lower:
 * to the second nearest) and the clusters' weighted sums (k, dims) and masses (zeroed
 * by the caller). A point no farther from guesses[i] than floors[i] keeps it unsearched. */
int kmz_assign(const float *points, int dims, const double *weights, int64_t n, const double *centres,
               int64_t k, const int64_t *guesses, const double *floors, const kmz_table *table,
               int64_t *labels, double *upper, double *lower, double *sums, double *mass,
               kmz_poll *poll);

/* Move the centres from `old` to `centres` and relabel every point whose bounds no
 * longer prove its label, keeping labels, bounds, sums and masses up to date; adds
 * each centre's move to table->drift. *changed gets the weight that changed cluster. */
int kmz_move(const float *points, int dims, const double *weights, int64_t n, const double *old,
             const double *centres, int64_t k, int64_t *labels, double *upper, double *lower,
             double *sums, double *mass, kmz_table *table, double *changed, kmz_poll *poll);

/* The (k, k) distances between the centres, for the neighbour table: the sum of the
 * squared differences channel by channel in order, then the square root. */
void kmz_distances(const double *centres, int dims, int64_t k, double *apart);

/* The neighbour table from the distances and each row's order by distance, or
 * nearly (a sort that may misplace a few centres a few places): ranked[i][t] =
 * apart[i][order[i][t]], with each row put in order of distance, and centres at the
 * same distance in order of number, so that any such sort gives the same table. */
void kmz_rank(const double *apart, int64_t k, int32_t *order, double *ranked);

/* The weighted squared error of a clustering. */
double kmz_error(const float *points, int dims, const double *weights, int64_t n, const double *centres,
                 const int64_t *labels);

/* A finer stage's start from a coarser one whose points (`parents`) pool these: each
 * point's guess is its parent's label, and its floor its parent's lower bound less
 * the distance between the two. */
void kmz_inherit(const float *points, int dims, int64_t n, const float *parents, const int64_t *parent_of,
                 const int64_t *labels, const double *lower, int64_t *guesses, double *floors);

/* Each point's nearest centre (the lowest number among equally near ones), through a
 * grid over the centres: for callers with an arbitrary palette. */
int kmz_nearest(const float *points, int dims, int64_t n, const double *centres, int64_t k, int64_t *labels,
                kmz_poll *poll);

#endif
