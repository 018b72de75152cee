/* Colour histograms: the distinct colours of an image, and their pooling into the
 * cells of a coarser grid. Plain C, no Python (quantize.py is the driver). */
#ifndef KMZ_HISTOGRAM_H
#define KMZ_HISTOGRAM_H

#include <stdint.h>

#include "poll.h"

/* Number the distinct colours of `n` RGB pixels in order of first appearance.
 * Writes each pixel's colour number to number[n], each distinct colour's packed RGB
 * (R << 16 | G << 8 | B) to keys[] and its pixel count to counts[] (zeroed by the
 * caller). `table` (2^24 entries, indexed by packed RGB) is scratch: every entry read
 * is written first, so it needs no clearing. Returns the number of distinct colours,
 * or KMZ_INTERRUPTED. */
int64_t kmz_count_colours(const uint8_t *pixels, int64_t n, uint32_t *table, uint32_t *number,
                          uint32_t *keys, uint32_t *counts, kmz_poll *poll);

/* Number the distinct values of `n` 32-bit keys (packed RGBA: 2^32 of them, too many
 * for a table indexed by value) in order of first appearance, through a hash table
 * that grows with the count. Writes as kmz_count_colours does: each key's number to
 * number[n], each distinct key to keys[] and its count to counts[] (zeroed by the
 * caller). Returns the number of distinct keys, KMZ_INTERRUPTED or KMZ_NO_MEMORY. */
int64_t kmz_count_keys(const uint32_t *values, int64_t n, uint32_t *number, uint32_t *keys,
                       uint32_t *counts, kmz_poll *poll);

/* kmz_count_keys on the keys of `n` straight RGBA pixels (n, 4): R << 24 | G << 16 |
 * B << 8 | A, and 0 for every fully transparent pixel, whose colour does not show. */
int64_t kmz_count_rgba(const uint8_t *pixels, int64_t n, uint32_t *number, uint32_t *keys,
                       uint32_t *counts, kmz_poll *poll);

/* Pool `n` colours (packed RGB keys[n], their points (n, 3) and weights) into the cells
 * of a grid: colours whose keys agree under `mask` share a cell. Cells are numbered in
 * order of first appearance; writes each cell's key, weighted sum of points (cells, 3)
 * and weight (both zeroed by the caller), and each colour's cell. Returns the number of
 * cells, or KMZ_INTERRUPTED. */
int64_t kmz_pool(const uint32_t *keys, const float *points, const double *weights, int64_t n,
                 uint32_t mask, uint32_t *table, uint32_t *cell_keys, double *sums, double *mass,
                 int64_t *cell_of, kmz_poll *poll);

#endif
