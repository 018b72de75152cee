#include "histogram.h"

int64_t kmz_count_colours(const uint8_t *pixels, int64_t n, uint32_t *table, uint32_t *number,
                          uint32_t *keys, uint32_t *counts, kmz_poll *poll) {
    /* First pass: mark every colour present as not numbered yet (numbers stay below n). */
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *p = pixels + 3 * i;
        uint32_t key = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        number[i] = key;
        table[key] = (uint32_t)n;
        if ((i & 0xFFFF) == 0 && kmz_poll_tick(poll, 0x10000))
            return KMZ_INTERRUPTED;
    }
    int64_t distinct = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t key = number[i];
        if (table[key] == (uint32_t)n) {
            table[key] = (uint32_t)distinct;
            keys[distinct++] = key;
        }
        number[i] = table[key];
        counts[number[i]]++;
        if ((i & 0xFFFF) == 0 && kmz_poll_tick(poll, 0x10000))
            return KMZ_INTERRUPTED;
    }
    return distinct;
}

int64_t kmz_pool(const uint32_t *keys, const float *points, const double *weights, int64_t n,
                 uint32_t mask, uint32_t *table, uint32_t *cell_keys, double *sums, double *mass,
                 int64_t *cell_of, kmz_poll *poll) {
    for (int64_t i = 0; i < n; i++)
        table[keys[i] & mask] = (uint32_t)n; /* not numbered yet */
    int64_t cells = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t key = keys[i] & mask;
        if (table[key] == (uint32_t)n) {
            table[key] = (uint32_t)cells;
            cell_keys[cells++] = key;
        }
        int64_t c = cell_of[i] = table[key];
        double w = weights[i];
        mass[c] += w;
        for (int j = 0; j < 3; j++)
            sums[3 * c + j] += w * points[3 * i + j];
        if ((i & 0xFFFF) == 0 && kmz_poll_tick(poll, 0x10000))
            return KMZ_INTERRUPTED;
    }
    return cells;
}
