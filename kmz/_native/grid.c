#include <math.h>
#include <stdlib.h>

#include "distance.h"
#include "grid.h"

/* Cells per axis, and their size to cover the box lo..hi. */
static void set_cells(kmz_grid *grid, const double lo[3], const double hi[3], int64_t cells) {
    grid->cells = cells;
    for (int a = 0; a < 3; a++) {
        double extent = hi[a] - lo[a];
        grid->origin[a] = lo[a];
        grid->size[a] = extent > 0 ? extent / cells : 1.0;
        grid->inverse[a] = 1.0 / grid->size[a];
    }
}

void kmz_grid_shape(kmz_grid *grid, const double lo[3], const double hi[3], int64_t items) {
    int64_t cells = (int64_t)cbrt(items / 2.0);
    set_cells(grid, lo, hi, cells < 1 ? 1 : cells);
    grid->head = grid->next = NULL;
    grid->dims = 3;
}

/* Empty lists for the grid's cells and for `items` items. Returns 0, or -1 when out of memory. */
static int allocate(kmz_grid *grid, int64_t items) {
    int64_t cells = grid->cells;
    grid->head = malloc(sizeof(int64_t) * cells * cells * cells);
    grid->next = malloc(sizeof(int64_t) * (items > 0 ? items : 1));
    if (!grid->head || !grid->next) {
        kmz_grid_free(grid);
        return -1;
    }
    for (int64_t c = 0; c < cells * cells * cells; c++)
        grid->head[c] = -1;
    return 0;
}

int kmz_grid_init(kmz_grid *grid, const double lo[3], const double hi[3], int64_t items) {
    kmz_grid_shape(grid, lo, hi, items);
    return allocate(grid, items);
}

void kmz_grid_free(kmz_grid *grid) {
    free(grid->head);
    free(grid->next);
    grid->head = grid->next = NULL;
}

/* The cell coordinate of x on axis a, clamped to the grid. */
static inline int64_t coordinate(const kmz_grid *grid, int a, double x) {
    double c = floor((x - grid->origin[a]) * grid->inverse[a]);
    return c < 0 ? 0 : c >= grid->cells ? grid->cells - 1 : (int64_t)c;
}

void kmz_grid_insert(kmz_grid *grid, const double at[3], int64_t item) {
    int64_t n = grid->cells;
    int64_t cell = (coordinate(grid, 0, at[0]) * n + coordinate(grid, 1, at[1])) * n + coordinate(grid, 2, at[2]);
    grid->next[item] = grid->head[cell];
    grid->head[cell] = item;
}

/* Both bounding boxes, of float32 points and of float64 centres, from one body. */
#define KMZ_BOUNDS(name, type) \
    void name(const type *points, int dims, int64_t n, double lo[3], double hi[3]) { \
        for (int a = 0; a < 3; a++) \
            lo[a] = hi[a] = n ? points[a] : 0.0; \
        for (int64_t i = 0; i < dims * n; i++) { \
            int a = i % dims; \
            if (a >= 3) \
                continue; \
            if (points[i] < lo[a]) \
                lo[a] = points[i]; \
            if (points[i] > hi[a]) \
                hi[a] = points[i]; \
        } \
    }
KMZ_BOUNDS(kmz_bounds_f32, float)
KMZ_BOUNDS(kmz_bounds_f64, double)

int kmz_grid_of_centres(kmz_grid *grid, const double *centres, int64_t k, int dims) {
    double lo[3], hi[3];
    kmz_bounds_f64(centres, dims, k, lo, hi);
    if (kmz_grid_init(grid, lo, hi, k) < 0)
        return -1;
    grid->dims = dims;
    for (int refined = 0;; refined = 1) {
        int64_t occupied = 0;
        for (int64_t c = k - 1; c >= 0; c--) { /* so that each cell lists its centres in order */
            kmz_grid_insert(grid, centres + dims * c, c);
            occupied += grid->next[c] < 0;
        }
        /* Spread evenly, the centres would fill all the cells, two to a cell. A
         * photograph's palette fills a thin sheet of its bounding box instead, and
         * there cells that size hold a hundred centres each: the cells are made
         * finer, once, as a sheet's occupied cells multiply (by the square of the
         * refinement), for two centres to a cell again, and at most KMZ_GRID_MOST
         * cells per centre in all. */
        int64_t cells = (int64_t)(grid->cells * sqrt(0.5 * k / occupied));
        while (cells > grid->cells && (double)cells * cells * cells > KMZ_GRID_MOST * (double)k)
            cells--;
        if (refined || cells < grid->cells * 5 / 4)
            return 0;
        kmz_grid_free(grid);
        set_cells(grid, lo, hi, cells);
        if (allocate(grid, k) < 0)
            return -1;
    }
}

/* A lower bound on the distance from `at` to any cell outside the cube of cells
 * within Chebyshev distance r of its cell; INFINITY when that cube covers the grid.
 * Shrunk by a hair, so that rounding never makes it exceed a true distance. */
static double outside(const kmz_grid *grid, const double at[3], const int64_t cell[3], int64_t r) {
    double bound = INFINITY;
    for (int a = 0; a < 3; a++) {
        if (cell[a] - r > 0) {
            double d = at[a] - (grid->origin[a] + (cell[a] - r) * grid->size[a]);
            if (d < bound)
                bound = d;
        }
        if (cell[a] + r < grid->cells - 1) {
            double d = grid->origin[a] + (cell[a] + r + 1) * grid->size[a] - at[a];
            if (d < bound)
                bound = d;
        }
    }
    return bound * (1 - 1e-9) - 1e-9;
}

int64_t kmz_grid_two_nearest(const kmz_grid *grid, const double *centres, const double *at,
                             int64_t guess, int64_t skip, double *first_out, double *second_out) {
    int64_t n = grid->cells, cell[3];
    for (int a = 0; a < 3; a++)
        cell[a] = coordinate(grid, a, at[a]);
    int64_t best = guess;
    double first = guess >= 0 ? centres_distance2(at, 0, centres, guess, grid->dims) : INFINITY, second = INFINITY;
    for (int64_t r = 0;; r++) {
        /* The cells at Chebyshev distance exactly r: the shell of the cube. */
        for (int64_t x = cell[0] - r; x <= cell[0] + r; x++) {
            if (x < 0 || x >= n)
                continue;
            for (int64_t y = cell[1] - r; y <= cell[1] + r; y++) {
                if (y < 0 || y >= n)
                    continue;
                int inner = x != cell[0] - r && x != cell[0] + r && y != cell[1] - r && y != cell[1] + r;
                int64_t step = inner ? 2 * r : 1; /* inside the shell on x and y: only its two z faces */
                for (int64_t z = cell[2] - r; z <= cell[2] + r; z += step > 0 ? step : 1) {
                    if (z < 0 || z >= n)
                        continue;
                    for (int64_t c = grid->head[(x * n + y) * n + z]; c >= 0; c = grid->next[c]) {
                        if (c == guess || c == skip)
                            continue;
                        double d = centres_distance2(at, 0, centres, c, grid->dims);
                        if (d < first || (d == first && best != guess && c < best)) {
                            second = first;
                            first = d;
                            best = c;
                        } else if (d < second) {
                            second = d;
                        }
                    }
                }
            }
        }
        double bound = outside(grid, at, cell, r);
        if (bound == INFINITY || (bound > 0 && bound * bound > second))
            break;
    }
    *first_out = first;
    *second_out = second;
    return best;
}

/* The cell range of a ball's bounding cube on each axis. */
static void cube(const kmz_grid *shape, const double at[3], double radius, int64_t from[3], int64_t to[3]) {
    for (int a = 0; a < 3; a++) {
        from[a] = coordinate(shape, a, at[a] - radius);
        to[a] = coordinate(shape, a, at[a] + radius);
    }
}

int64_t kmz_grid_near(const kmz_grid *grid, const double at[3], double radius, int64_t *items) {
    int64_t from[3], to[3], n = grid->cells, count = 0;
    cube(grid, at, radius, from, to);
    for (int64_t x = from[0]; x <= to[0]; x++)
        for (int64_t y = from[1]; y <= to[1]; y++)
            for (int64_t z = from[2]; z <= to[2]; z++)
                for (int64_t c = grid->head[(x * n + y) * n + z]; c >= 0; c = grid->next[c])
                    items[count++] = c;
    return count;
}

int kmz_balls_build(kmz_balls *balls, const kmz_grid *shape, const double *centres, const double *radii,
                    int64_t count) {
    int64_t n = shape->cells, cells = n * n * n, from[3], to[3];
    if (balls->start == NULL && (balls->start = malloc(sizeof(int64_t) * (cells + 1))) == NULL)
        return -1;
    int64_t *start = balls->start;
    for (int64_t c = 0; c <= cells; c++)
        start[c] = 0;
    /* Count each cell's balls (in start[cell + 1]), sum up, then fill. */
    for (int64_t b = 0; b < count; b++) {
        cube(shape, centres + 3 * b, radii[b], from, to);
        for (int64_t x = from[0]; x <= to[0]; x++)
            for (int64_t y = from[1]; y <= to[1]; y++)
                for (int64_t z = from[2]; z <= to[2]; z++)
                    start[(x * n + y) * n + z + 1]++;
    }
    for (int64_t c = 0; c < cells; c++)
        start[c + 1] += start[c];
    if (start[cells] > balls->capacity) {
        free(balls->item);
        balls->capacity = 2 * start[cells];
        if ((balls->item = malloc(sizeof(int64_t) * balls->capacity)) == NULL) {
            balls->capacity = 0;
            return -1;
        }
    }
    for (int64_t b = 0; b < count; b++) { /* start[cell] is the fill point, and ends as the next cell's start */
        cube(shape, centres + 3 * b, radii[b], from, to);
        for (int64_t x = from[0]; x <= to[0]; x++)
            for (int64_t y = from[1]; y <= to[1]; y++)
                for (int64_t z = from[2]; z <= to[2]; z++)
                    balls->item[start[(x * n + y) * n + z]++] = b;
    }
    for (int64_t c = cells; c > 0; c--)
        start[c] = start[c - 1];
    start[0] = 0;
    return 0;
}

void kmz_balls_free(kmz_balls *balls) {
    free(balls->start);
    free(balls->item);
    balls->start = balls->item = NULL;
    balls->capacity = 0;
}

int64_t kmz_balls_at(const kmz_balls *balls, const kmz_grid *shape, const double at[3], int64_t *items) {
    int64_t n = shape->cells;
    int64_t cell = (coordinate(shape, 0, at[0]) * n + coordinate(shape, 1, at[1])) * n + coordinate(shape, 2, at[2]);
    int64_t count = balls->start[cell + 1] - balls->start[cell];
    const int64_t *run = balls->item + balls->start[cell];
    for (int64_t t = 0; t < count; t++)
        items[t] = run[t];
    return count;
}
