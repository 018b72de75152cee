#include <stdlib.h>

#include "histogram.h"

/* The slot of `key` in an open-addressing table of 2^bits slots (each -1 or a number
 * into keys[]): its own, or the empty one where it would go. Fibonacci hashing spreads
 * neighbouring colours, whose keys differ in a few low bits of one byte. */
static inline uint32_t slot_of(const int32_t *slots, int bits, const uint32_t *keys, uint32_t key) {
    uint32_t mask = ((uint32_t)1 << bits) - 1, s = (uint32_t)((key * 2654435769u) >> (32 - bits));
    while (slots[s] >= 0 && keys[slots[s]] != key)
        s = (s + 1) & mask;
    return s;
}

/* Pixel i's key: R << 16 | G << 8 | B for RGB (channels 3), R << 24 | G << 16 | B << 8 | A
 * for straight RGBA (channels 4), 0 when fully transparent. */
static inline uint32_t pixel_key(const uint8_t *pixels, int channels, int64_t i) {
    const uint8_t *p = pixels + channels * i;
    if (channels == 3)
        return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    return p[3] ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

/* kmz_count_keys on `values`, or on the keys of `pixels` when values is NULL (packed
 * here: a packed copy of the image would cost as much as the count). Inlined with the
 * channels a constant, so that each pixel size gets a loop with no test of it. */
static inline int64_t count_keys(const uint32_t *values, const uint8_t *pixels, int channels, int64_t n,
                                 uint32_t *number, uint32_t *keys, uint32_t *counts, kmz_poll *poll) {
    int bits = 12;
    int32_t *slots = malloc(sizeof(int32_t) << bits);
    if (!slots)
        return KMZ_NO_MEMORY;
    for (int64_t s = 0; s < (int64_t)1 << bits; s++)
        slots[s] = -1;
    int64_t distinct = 0, run = 0; /* pixels in the current run of one key, not yet counted */
    uint32_t last_key = 0, last = 0; /* that key, and its number */
    for (int64_t i = 0; i < n; i++) {
        uint32_t key = values ? values[i] : pixel_key(pixels, channels, i);
        /* Runs of one colour (transparent margins, flat fills) skip the probe, and are
         * counted once they end: not one increment of the same count per pixel. */
        if (run > 0 && key == last_key) {
            run++;
        } else {
            if (run > 0)
                counts[last] += (uint32_t)run;
            run = 1;
            last_key = key;
            uint32_t s = slot_of(slots, bits, keys, key);
            if (slots[s] < 0) {
                keys[distinct] = key;
                slots[s] = (int32_t)distinct++;
                if (2 * distinct > (int64_t)1 << bits) { /* at most half full: probes stay short */
                    int32_t *grown = malloc(sizeof(int32_t) << (bits + 1));
                    if (!grown) {
                        free(slots);
                        return KMZ_NO_MEMORY;
                    }
                    free(slots);
                    slots = grown;
                    bits++;
                    for (int64_t t = 0; t < (int64_t)1 << bits; t++)
                        slots[t] = -1;
                    for (int64_t d = 0; d < distinct; d++)
                        slots[slot_of(slots, bits, keys, keys[d])] = (int32_t)d;
                    s = slot_of(slots, bits, keys, key);
                }
            }
            last = (uint32_t)slots[s];
        }
        number[i] = last;
        if ((i & 0xFFFF) == 0 && kmz_poll_tick(poll, 0x10000)) {
            free(slots);
            return KMZ_INTERRUPTED;
        }
    }
    if (run > 0)
        counts[last] += (uint32_t)run;
    free(slots);
    return distinct;
}

int64_t kmz_count_keys(const uint32_t *values, int64_t n, uint32_t *number, uint32_t *keys,
                       uint32_t *counts, kmz_poll *poll) {
    return count_keys(values, NULL, 0, n, number, keys, counts, poll);
}

int64_t kmz_count_pixels(const uint8_t *pixels, int channels, int64_t n, uint32_t *number, uint32_t *keys,
                         uint32_t *counts, kmz_poll *poll) {
    return channels == 4 ? count_keys(NULL, pixels, 4, n, number, keys, counts, poll)
                         : count_keys(NULL, pixels, 3, n, number, keys, counts, poll);
}
