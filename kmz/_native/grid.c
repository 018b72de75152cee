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
    grid->start = grid->item = NULL;
    grid->at = NULL;
    grid->dims = 3;
}

void kmz_grid_free(kmz_grid *grid) {
    free(grid->start);
    free(grid->item);
    free(grid->at);
    grid->start = grid->item = NULL;
    grid->at = NULL;
}

/* The cell coordinate of x on axis a, clamped to the grid. */
static inline int64_t coordinate(const kmz_grid *grid, int a, double x) {
    double c = floor((x - grid->origin[a]) * grid->inverse[a]);
    return c < 0 ? 0 : c >= grid->cells ? grid->cells - 1 : (int64_t)c;
}

/* The cell of a point, numbered x-major. */
static inline int64_t cell_of(const kmz_grid *grid, const double at[3]) {
    int64_t n = grid->cells;
    return (coordinate(grid, 0, at[0]) * n + coordinate(grid, 1, at[1])) * n + coordinate(grid, 2, at[2]);
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
    kmz_grid_shape(grid, lo, hi, k);
    grid->dims = dims;
    int64_t *cell = malloc(sizeof(int64_t) * (k > 0 ? k : 1));
    if (cell == NULL)
        return -1;
    /* Spread evenly, the centres would fill all the cells, two to a cell. A
     * photograph's palette fills a thin sheet of its bounding box instead, and there
     * cells that size hold 10 to 35 centres each (Kodak, K = 4096): the cells are made
     * finer, once, as a sheet's occupied cells multiply (by the square of the
     * refinement), for about eight centres to an occupied cell, and at most
     * KMZ_GRID_MOST cells per centre in all. Eight rather than two: a search passes
     * over the cells farther than its second nearest centre so far, and opening
     * fewer cells saves more than reading fewer centres (Lloyd at K = 4096 on Kodak
     * images: 0.029 s an image, against 0.034 s at two a cell). */
    for (int refined = 0;; refined = 1) {
        int64_t total = grid->cells * grid->cells * grid->cells, occupied = 0;
        free(grid->start);
        if ((grid->start = calloc(total + 1, sizeof(int32_t))) == NULL) {
            free(cell);
            return -1;
        }
        for (int64_t c = 0; c < k; c++) {
            cell[c] = cell_of(grid, centres + dims * c);
            occupied += grid->start[cell[c] + 1]++ == 0;
        }
        int64_t cells = (int64_t)(grid->cells * sqrt(k / 8.0 / occupied));
        while (cells > grid->cells && (double)cells * cells * cells > KMZ_GRID_MOST * (double)k)
            cells--;
        if (refined || cells < grid->cells * 5 / 4)
            break;
        set_cells(grid, lo, hi, cells);
    }
    /* Each cell's centres in one run, in order of number, their coordinates beside. */
    int64_t total = grid->cells * grid->cells * grid->cells;
    for (int64_t c = 0; c < total; c++)
        grid->start[c + 1] += grid->start[c];
    grid->item = malloc(sizeof(int32_t) * (k > 0 ? k : 1));
    grid->at = malloc(sizeof(double) * dims * (k > 0 ? k : 1));
    if (grid->item == NULL || grid->at == NULL) {
        free(cell);
        kmz_grid_free(grid);
        return -1;
    }
    for (int64_t c = 0; c < k; c++) { /* start[cell] is the fill point, and ends as the next cell's start */
        int64_t t = grid->start[cell[c]]++;
        grid->item[t] = (int32_t)c;
        for (int a = 0; a < dims; a++)
            grid->at[dims * t + a] = centres[dims * c + a];
    }
    for (int64_t c = total; c > 0; c--)
        grid->start[c] = grid->start[c - 1];
    grid->start[0] = 0;
    free(cell);
    return 0;
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

/* The square of how far x lies outside cell coordinate i on axis a (0 inside), the
 * distance shrunk by a hair so that rounding never makes it exceed a true one. */
static inline double gap2(const kmz_grid *grid, int a, double x, int64_t i) {
    double lo = grid->origin[a] + i * grid->size[a], hi = lo + grid->size[a];
    double d = x < lo ? lo - x : x > hi ? x - hi : 0.0;
    d = d > 1e-9 ? d * (1 - 1e-9) - 1e-9 : 0.0;
    return d * d;
}

int64_t kmz_grid_two_nearest(const kmz_grid *grid, const double *centres, const double *at,
                             int64_t guess, double *first_out, double *second_out) {
    int64_t n = grid->cells, cell[3];
    int dims = grid->dims;
    for (int a = 0; a < 3; a++)
        cell[a] = coordinate(grid, a, at[a]);
    int64_t best = guess;
    double first = guess >= 0 ? centres_distance2(at, 0, centres, guess, dims) : INFINITY, second = INFINITY;
    for (int64_t r = 0;; r++) {
        /* The cells at Chebyshev distance exactly r: the shell of the cube. Those
         * farther than the second nearest so far are passed over: by the gaps, on
         * each axis, between `at` and the cells' rows (gy, gz from offset -r). */
        double gy[2 * r + 1], gz[2 * r + 1];
        for (int64_t o = 0; o <= 2 * r; o++) {
            gy[o] = gap2(grid, 1, at[1], cell[1] - r + o);
            gz[o] = gap2(grid, 2, at[2], cell[2] - r + o);
        }
        for (int64_t x = cell[0] - r; x <= cell[0] + r; x++) {
            if (x < 0 || x >= n)
                continue;
            double dx = gap2(grid, 0, at[0], x);
            for (int64_t y = cell[1] - r; y <= cell[1] + r; y++) {
                if (y < 0 || y >= n)
                    continue;
                double dxy = dx + gy[y - cell[1] + r];
                if (dxy > second)
                    continue;
                int inner = x != cell[0] - r && x != cell[0] + r && y != cell[1] - r && y != cell[1] + r;
                int64_t step = inner ? 2 * r : 1; /* inside the shell on x and y: only its two z faces */
                for (int64_t z = cell[2] - r; z <= cell[2] + r; z += step > 0 ? step : 1) {
                    if (z < 0 || z >= n)
                        continue;
                    if (dxy + gz[z - cell[2] + r] > second)
                        continue;
                    int64_t from = grid->start[(x * n + y) * n + z], to = grid->start[(x * n + y) * n + z + 1];
                    for (int64_t t = from; t < to; t++) {
                        int64_t c = grid->item[t];
                        if (c == guess)
                            continue;
                        double d = centres_distance2(at, 0, grid->at, t, dims);
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

double kmz_grid_fastest(const kmz_grid *grid, const double *at, double reach, const double *speed, double most,
                        int64_t skip) {
    int64_t from[3], to[3], n = grid->cells;
    double fastest = 0.0;
    cube(grid, at, (reach + most) * (1 + 1e-9) + 1e-9, from, to);
    for (int64_t x = from[0]; x <= to[0]; x++)
        for (int64_t y = from[1]; y <= to[1]; y++)
            for (int64_t z = from[2]; z <= to[2]; z++) {
                int64_t cell = (x * n + y) * n + z;
                for (int64_t t = grid->start[cell]; t < grid->start[cell + 1]; t++) {
                    int64_t c = grid->item[t];
                    double within = (reach + speed[c]) * (1 + 1e-9) + 1e-9;
                    if (speed[c] > fastest && c != skip
                        && centres_distance2(at, 0, grid->at, t, grid->dims) < within * within)
                        fastest = speed[c];
                }
            }
    return fastest;
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

const int64_t *kmz_balls_in(const kmz_balls *balls, const kmz_grid *shape, const double at[3], int64_t *count) {
    int64_t cell = cell_of(shape, at);
    *count = balls->start[cell + 1] - balls->start[cell];
    return balls->item + balls->start[cell];
}

int64_t kmz_balls_at(const kmz_balls *balls, const kmz_grid *shape, const double at[3], int64_t *items) {
    int64_t count;
    const int64_t *run = kmz_balls_in(balls, shape, at, &count);
    for (int64_t t = 0; t < count; t++)
        items[t] = run[t];
    return count;
}
