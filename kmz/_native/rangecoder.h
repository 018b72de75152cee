/* The binary range coder of codings 1 and 2 (spec/CODING.md 5; spec/CODING2.md refers
 * to it): LZMA's, with 16-bit probabilities. Only the probability of each bit comes
 * from the coding's model; what the coder does with it is here, once.
 *
 *   .- payload ------------------------------------------------------------------.
 *   | byte 0 | bytes 1-4                      | bytes 5 ...                      |
 *   |   0    | code, u32 big-endian,          | one byte per normalisation,      |
 *   |        | not 0xFFFFFFFF                 | most significant first           |
 *   `----------------------------------------------------------------------------'
 */
#ifndef KMZ_RANGECODER_H
#define KMZ_RANGECODER_H

#include <stdint.h>
#include <stdlib.h>

#define KMZ_RANGE_PROB_BITS 16 /* a probability p of a 0 is in units of 2^-16 */
#define KMZ_RANGE_TOP (1u << 24) /* 5: the range is renormalised below this */

/* 5.3 Encoder: `low` (up to 33 bits) and `range`; the top byte of `low` leaves through
 * `cache`, with `pending` bytes held back while a carry may still reach them. The
 * caller keeps `capacity` ahead of `pos + pending` by what one step can add. */
typedef struct {
    uint64_t low, range;
    uint32_t cache;
    int64_t pending, pos, capacity;
    uint8_t *out;
} kmz_range_encoder;

#define KMZ_RANGE_ENCODER(capacity) {0, 0xFFFFFFFFu, 0, 1, 0, (capacity), NULL}

/* Room for `bytes` more output: the buffer doubles when short. 0, or -1 when out of
 * memory (the buffer is then unchanged). */
static inline int kmz_range_reserve(kmz_range_encoder *e, int64_t bytes) {
    if (e->pos + e->pending + bytes <= e->capacity)
        return 0;
    uint8_t *grown = realloc(e->out, (size_t)(2 * e->capacity));
    if (!grown)
        return -1;
    e->out = grown;
    e->capacity *= 2;
    return 0;
}

/* 5.3 Shift: every byte written is one a carry can no longer change. */
static inline void kmz_range_shift(kmz_range_encoder *e) {
    if (e->low < 0xFF000000u || e->low > 0xFFFFFFFFu) {
        uint32_t carry = (uint32_t)(e->low >> 32);
        e->out[e->pos++] = (uint8_t)(e->cache + carry);
        for (; e->pending > 1; e->pending--)
            e->out[e->pos++] = (uint8_t)(0xFF + carry);
        e->pending = 0;
        e->cache = (uint32_t)(e->low >> 24) & 0xFF;
    }
    e->pending++;
    e->low = (e->low & 0x00FFFFFF) << 8;
}

/* 5.3 A bit whose 0 has probability p0 / 2^16 (0 < p0 < 2^16). */
static inline void kmz_range_put(kmz_range_encoder *e, uint32_t p0, int bit) {
    uint64_t bound = (e->range >> KMZ_RANGE_PROB_BITS) * p0;
    if (bit) {
        e->low += bound;
        e->range -= bound;
    } else {
        e->range = bound;
    }
    while (e->range < KMZ_RANGE_TOP) {
        e->range <<= 8;
        kmz_range_shift(e);
    }
}

/* 5.2 The n-bit `value`, all values equally likely; the last one also gets the
 * remainder of the range, so that every code decodes to some value. */
static inline void kmz_range_put_uniform(kmz_range_encoder *e, uint64_t value, int n) {
    uint64_t step = e->range >> n;
    e->low += value * step;
    e->range = value == ((uint64_t)1 << n) - 1 ? e->range - value * step : step;
    while (e->range < KMZ_RANGE_TOP) {
        e->range <<= 8;
        kmz_range_shift(e);
    }
}

/* 5.3 End: flushes `low`; needs 5 bytes of capacity. */
static inline void kmz_range_finish(kmz_range_encoder *e) {
    for (int s = 0; s < 5; s++)
        kmz_range_shift(e);
}

/* 5.1 Decoder: `code` stays below `range`. Past the end of the payload it reads
 * zeros and lets pos run on; the caller reports pos > end as truncation. */
typedef struct {
    uint64_t code, range;
    int64_t pos, end;
    const uint8_t *data;
} kmz_range_decoder;

#define KMZ_RANGE_OK 0
#define KMZ_RANGE_TRUNCATED 1 /* fewer than 5 bytes */
#define KMZ_RANGE_BAD_START 2 /* byte 0 not 0, or code 0xFFFFFFFF */

/* 5.1 Start: reads the first 5 bytes of the payload. */
static inline int kmz_range_start(kmz_range_decoder *d) {
    if (d->end < 5)
        return KMZ_RANGE_TRUNCATED;
    if (d->data[0] != 0)
        return KMZ_RANGE_BAD_START;
    d->code = (uint64_t)d->data[1] << 24 | (uint64_t)d->data[2] << 16 | (uint64_t)d->data[3] << 8 | d->data[4];
    if (d->code == 0xFFFFFFFFu)
        return KMZ_RANGE_BAD_START;
    d->range = 0xFFFFFFFFu;
    d->pos = 5;
    return KMZ_RANGE_OK;
}

/* 5.1 Normalise. */
static inline void kmz_range_fetch(kmz_range_decoder *d) {
    while (d->range < KMZ_RANGE_TOP) {
        uint64_t byte = d->pos < d->end ? d->data[d->pos] : 0;
        d->pos++;
        d->range <<= 8;
        d->code = (d->code << 8) | byte;
    }
}

/* 5.1 A bit whose 0 has probability p0 / 2^16. */
static inline int kmz_range_get(kmz_range_decoder *d, uint32_t p0) {
    uint64_t bound = (d->range >> KMZ_RANGE_PROB_BITS) * p0;
    int bit = d->code >= bound;
    d->code -= bit ? bound : 0;
    d->range = bit ? d->range - bound : bound;
    kmz_range_fetch(d);
    return bit;
}

/* 5.2 A uniform n-bit value. */
static inline uint64_t kmz_range_get_uniform(kmz_range_decoder *d, int n) {
    uint64_t step = d->range >> n, last = ((uint64_t)1 << n) - 1;
    uint64_t value = d->code / step < last ? d->code / step : last;
    d->code -= value * step;
    d->range = value == last ? d->range - value * step : step;
    kmz_range_fetch(d);
    return value;
}

#endif
