/* A uniform grid over 3-D points (colours): the nearest-neighbour searches of large
 * palettes visit the cells near a query instead of every centre. Each cell's items
 * are one run of an array, their coordinates copied beside them, so that a search
 * reads memory in order. Points of 4 coordinates (RGBA) are gridded by their first
 * 3: the distance to a cell on those is still a lower bound on the full distance, so
 * every search stays exact. */
#ifndef KMZ_GRID_H
#define KMZ_GRID_H

#include <stdint.h>

typedef struct {
    double origin[3], size[3], inverse[3]; /* cell (i, j, l) starts at origin + (i, j, l) * size */
    int64_t cells;                         /* per axis */
    int32_t *start;                        /* per cell (x-major), and one more: where its run begins */
    int32_t *item;                         /* the items' numbers, cell after cell */
    double *at;                            /* their coordinates (dims each), in the same order */
    int dims;                              /* coordinates per item (3 or 4) */
} kmz_grid;

/* The cells of a grid over the box lo..hi, about `items` / 2 of them; no items. */
void kmz_grid_shape(kmz_grid *grid, const double lo[3], const double hi[3], int64_t items);
void kmz_grid_free(kmz_grid *grid);

/* The bounding box, on the first 3 coordinates, of n points (float32 or float64 rows of dims). */
void kmz_bounds_f32(const float *points, int dims, int64_t n, double lo[3], double hi[3]);
void kmz_bounds_f64(const double *points, int dims, int64_t n, double lo[3], double hi[3]);

/* At most this many cells per centre in a grid of the centres. */
#define KMZ_GRID_MOST 16

/* A grid holding the k centres (rows of dims), item c at centres[c], its cells fine
 * enough for about eight centres to each occupied one. Returns 0, or -1 when out of memory. */
int kmz_grid_of_centres(kmz_grid *grid, const double *centres, int64_t k, int dims);

/* The nearest centre to `at` (of the grid's dims coordinates; squared distance to
 * *first) and the squared distance to the second nearest (*second; INFINITY when
 * k = 1), exactly as a scan of every centre would find them: `guess` first (-1 for
 * none), then in order of number, a centre replacing the best only when strictly
 * nearer. */
int64_t kmz_grid_two_nearest(const kmz_grid *grid, const double *centres, const double *at,
                             int64_t guess, double *first, double *second);

/* How much nearer than `reach` to `at` the items may have come that moved by speed[c]
 * (each from where it is in the grid): the largest speed[c] of those (other than
 * `skip`) within reach + speed[c] of `at`, 0 for none; `most` is the largest of all
 * speeds. A hair wide, for rounding. */
double kmz_grid_fastest(const kmz_grid *grid, const double *at, double reach, const double *speed, double most,
                        int64_t skip);

/* Balls listed in every cell of a grid's shape that their bounding cube meets: the
 * balls that may contain a point are those listed in its cell. The lists are made
 * all at once, each cell's a contiguous run, so that reading one is quick. */
typedef struct {
    int64_t *start;    /* per cell, and one more: where its run of items begins */
    int64_t *item;     /* the ball numbers, cell after cell */
    int64_t capacity;  /* of item */
} kmz_balls;

/* Lists the balls 0..count-1 (centres (count, 3), radii). Returns 0, or -1 when out of memory. */
int kmz_balls_build(kmz_balls *balls, const kmz_grid *shape, const double *centres, const double *radii,
                    int64_t count);
void kmz_balls_free(kmz_balls *balls);
/* The balls listed in the cell of `at`: a run of *count ball numbers. */
const int64_t *kmz_balls_in(const kmz_balls *balls, const kmz_grid *shape, const double at[3], int64_t *count);
/* Appends the balls listed in the cell of `at` to items, in order of number; returns
 * how many. */
int64_t kmz_balls_at(const kmz_balls *balls, const kmz_grid *shape, const double at[3], int64_t *items);

#endif
