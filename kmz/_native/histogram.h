/* Colour histograms: the distinct colours of an image, or the distinct cells of a
 * grid that its colours fall in. Plain C, no Python (quantize.py is the driver). */
#ifndef KMZ_HISTOGRAM_H
#define KMZ_HISTOGRAM_H

#include <stdint.h>

#include "poll.h"

/* Number the distinct values of `n` 32-bit keys (packed colours) in order of first
 * appearance, through a hash table that grows with the count: its memory follows the
 * distinct keys, not the 2^24 or 2^32 possible ones. Writes each key's number to
 * number[n], each distinct key to keys[] and its count to counts[] (zeroed by the
 * caller). Returns the number of distinct keys, KMZ_INTERRUPTED or KMZ_NO_MEMORY. */
int64_t kmz_count_keys(const uint32_t *values, int64_t n, uint32_t *number, uint32_t *keys,
                       uint32_t *counts, kmz_poll *poll);

/* kmz_count_keys on the keys of `n` pixels of `channels` bytes: RGB (3) as R << 16 |
 * G << 8 | B; straight RGBA (4) as R << 24 | G << 16 | B << 8 | A, and 0 for every fully
 * transparent pixel, whose colour does not show. */
int64_t kmz_count_pixels(const uint8_t *pixels, int channels, int64_t n, uint32_t *number, uint32_t *keys,
                         uint32_t *counts, kmz_poll *poll);

#endif
