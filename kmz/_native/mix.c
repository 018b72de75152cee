/* Coding 2 ("mix"): the model and pixel loop of spec/CODING2.md, encoder and decoder.
 * Section numbers below are those of spec/CODING2.md.
 *
 * The palette comes first, in an order the encoder chooses so that neighbouring
 * indices are neighbouring colours; then each pixel's index, most significant bit
 * first, each bit's probability a logistic mix of eight predictions. Every context
 * depends on what was coded before it, so both directions are one sequential loop,
 * written once (code_palette, code_pixel) for both.
 */
#include "mix.h"
#include "rangecoder.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HASHED 7           /* 4.2: context models */
#define DEEP 4             /* 4.2: those used past the first GROUP bits */
#define INPUTS (HASHED + 1) /* and the match model */
#define GROUP 4            /* 4.3: bits per slot; a slot is 16 cells, one per node */
#define RATE_LIMIT 255     /* 4.3: a count saturates here */
#define SETS (5 * 256)     /* 5: weight sets, by match state and node */
#define WEIGHT_START (1 << 14)
#define WEIGHT_LIMIT (1 << 24)
#define LEARNING_RATE 3
#define MATCH_ROW 32 /* 4.4: pixels of the row in the match context */
#define ROW_BASE 0x01000193u
#define PIXEL_BYTES 32 /* 6: a pixel narrows the range by at most 2^144 */
#define ENTRY_BYTES 128 /* 3.2: a palette entry, 64 decisions, by at most 2^768 */

/* 3.1 The logistic functions ---------------------------------------------------------
 *
 * squash(d) = 4096 / (1 + e^(-d/256)) for d in -2047..2047, interpolated linearly
 * between these 33 points (d = -2048, -1920, ..., 2048); stretch is its inverse. */
static const uint16_t SQUASH_POINTS[33] = {1,    2,    4,    6,    10,   17,   27,   45,   74,   120,  194,
                                           311,  488,  747,  1102, 1546, 2048, 2550, 2994, 3349, 3608, 3785,
                                           3902, 3976, 4022, 4051, 4069, 4079, 4086, 4090, 4092, 4094, 4095};

static inline int squash(int64_t d) {
    int u = (int)(d < -2047 ? 1 : d > 2047 ? 4095 : d + 2048), i = u >> 7, w = u & 127;
    return (SQUASH_POINTS[i] * (128 - w) + SQUASH_POINTS[i + 1] * w + 64) >> 7;
}

/* 3.3 The hash of a context. Arithmetic modulo 2^32. */
static inline uint32_t combine(uint32_t a, uint32_t b) {
    return (a * 0x9E3779B1u) ^ (b + 0x7F4A7C15u + (a << 6) + (a >> 2));
}

static inline uint32_t finish(uint32_t h) {
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    h *= 0x297A2D39u;
    h ^= h >> 15;
    return h;
}

/* The model: the cells of 4.3, the weights of 5, the match state
 * of 4.4. A cell is a probability p of a 1 in units of 2^-16 (low 16 bits) and a count
 * (the next 8). */
typedef struct {
    int64_t k, width;
    int bits; /* B: bits per pixel, max(1, bitlen(k - 1)) */
    int16_t stretch[4096];
    uint32_t rates[RATE_LIMIT + 1];
    uint32_t *cells; /* the slots, 16 cells each */
    int slot_shift;  /* 32 - log2(slots) */
    int32_t *weights; /* SETS x INPUTS */
    uint32_t match_cells[64];
    uint32_t *last; /* 4.4: the position after each match context's last pixel */
    int last_shift;
    int64_t match_at; /* the pixel the match predicts from, or -1 */
    uint32_t match_length;
    uint32_t row_hash, row_drop; /* 4.4: the rolling hash of the row, ROW_BASE^31 */
} model;

static int bit_length(uint64_t v) {
    int n = 0;
    while (v >> n)
        n++;
    return n;
}

static int clamp_int(int v, int low, int high) {
    return v < low ? low : v > high ? high : v;
}

static int model_init(model *m, int64_t k, int64_t width, int64_t height) {
    memset(m, 0, sizeof *m);
    m->k = k;
    m->width = width;
    m->bits = k > 1 ? bit_length((uint64_t)(k - 1)) : 1;
    int64_t pixels = width * height;
    /* 4.3 and 4.4: tables sized by the image, within bounds. */
    int slot_bits = clamp_int(bit_length((uint64_t)pixels) - 2, 12, 18);
    int last_bits = clamp_int(bit_length((uint64_t)pixels), 12, 22);
    m->slot_shift = 32 - slot_bits;
    m->last_shift = 32 - last_bits;
    m->cells = malloc(((size_t)16 << slot_bits) * sizeof *m->cells);
    m->weights = malloc((size_t)SETS * INPUTS * sizeof *m->weights);
    m->last = calloc((size_t)1 << last_bits, sizeof *m->last);
    if (!m->cells || !m->weights || !m->last)
        return KMZ_NO_MEMORY;
    int q = 0;
    for (int d = -2047; d <= 2047; d++)
        for (int s = squash(d); q <= s && q < 4096; q++)
            m->stretch[q] = (int16_t)d;
    for (; q < 4096; q++)
        m->stretch[q] = 2047;
    for (int n = 0; n <= RATE_LIMIT; n++)
        m->rates[n] = 131072u / (uint32_t)(2 * n + 3);
    for (size_t c = 0; c < ((size_t)16 << slot_bits); c++)
        m->cells[c] = 1u << 15;
    for (int c = 0; c < 64; c++)
        m->match_cells[c] = 1u << 15;
    for (int w = 0; w < SETS * INPUTS; w++)
        m->weights[w] = WEIGHT_START;
    m->match_at = -1;
    m->row_drop = 1;
    for (int i = 0; i < MATCH_ROW - 1; i++)
        m->row_drop *= ROW_BASE;
    return KMZ_OK;
}

static void model_free(model *m) {
    free(m->cells);
    free(m->weights);
    free(m->last);
}

/* 4.3 A cell learns the bit: p moves towards it by 2/(2n + 3), n counting up to `limit`. */
static inline void learn(uint32_t *cell, uint32_t rate, int bit, uint32_t limit) {
    uint32_t p = *cell & 0xFFFF, n = *cell >> 16;
    p = bit ? p + (((65535 - p) * rate) >> 16) : p - ((p * rate) >> 16);
    *cell = p | (n + (n < limit)) << 16;
}

/* 4. What the model sees -------------------------------------------------------------
 *
 * 4.1 The neighbours of the pixel `?`, as indices:
 *
 *           x-2   x-1    x    x+1   x+2
 *         .-----.-----.-----.-----.-----.
 *   y-2   |     |     | UU  |     |     |
 *         |-----+-----+-----+-----+-----|
 *   y-1   |     | UL  |  U  | UR  | URR |
 *         |-----+-----+-----+-----+-----'
 *   y     | LL  |  L  |  ?  |
 *         `-----'-----'-----'
 *
 * Missing ones (image edges) stand in for each other as 4.1 says. */
typedef struct {
    uint32_t hash[HASHED];
    uint32_t match_slot;
    int expected; /* 4.4: the match's prediction, or -1 */
    int length;   /* its length, at most 15 */
} view;

static inline void look(model *m, const uint16_t *image, int64_t pos, int64_t x, int64_t y, view *v) {
    int64_t w = m->width;
    int up = y > 0 ? image[pos - w] : x > 0 ? image[pos - 1] : 0;
    int left = x > 0 ? image[pos - 1] : up;
    int up_left = x > 0 && y > 0 ? image[pos - w - 1] : up;
    int up_right = y > 0 && x < w - 1 ? image[pos - w + 1] : up;
    int far_left = x > 1 ? image[pos - 2] : left;
    int far_up = y > 1 ? image[pos - 2 * w] : up;
    int far_up_right = y > 0 && x < w - 2 ? image[pos - w + 2] : up_right;
    int gradient = clamp_int(left + up - up_left, 0, (int)m->k - 1);
    /* 4.2 The contexts: the nearest neighbours one by one, the four of the row above
     * and the left, the plane through them, two wider ones, and all seven. */
    v->hash[0] = combine(1, left);
    v->hash[1] = combine(2, up);
    v->hash[2] = combine(combine(combine(combine(3, left), up), up_left), up_right);
    v->hash[3] = combine(4, gradient);
    v->hash[4] = combine(combine(combine(5, far_left), left), up);
    v->hash[5] = combine(combine(combine(6, far_up), up), left);
    v->hash[6] = combine(combine(combine(combine(combine(combine(combine(7, left), up), up_left), up_right), far_left),
                                 far_up),
                         far_up_right);
    /* 4.4 The match: carry on where the last prediction came true, else look up the
     * last pixel whose context (the row's last 32 pixels and 4 above) was this one. */
    v->match_slot = finish(combine(combine(combine(combine(m->row_hash, up + 1), up_left + 1), up_right + 1),
                                   far_up_right + 1)) >> m->last_shift;
    if (m->match_length == 0) {
        uint32_t last = m->last[v->match_slot];
        m->match_at = last ? (int64_t)last - 1 : -1;
    }
    v->expected = m->match_at >= 0 ? image[m->match_at] : -1;
    v->length = m->match_length < 15 ? (int)m->match_length : 15;
}

/* 4.4 After the pixel: the match and the row hash move on. */
static inline void advance(model *m, const uint16_t *image, int64_t pos, int64_t x, const view *v, int value) {
    if (v->expected == value) {
        m->match_length += m->match_length < 65535;
        m->match_at++;
    } else {
        m->match_length = 0;
        m->match_at = -1;
    }
    m->last[v->match_slot] = (uint32_t)(pos + 1);
    uint32_t dropped = x >= MATCH_ROW ? (uint32_t)image[pos - MATCH_ROW] + 1 : 0;
    m->row_hash = x + 1 == m->width ? 0 : (uint32_t)value + 1 + ROW_BASE * (m->row_hash - dropped * m->row_drop);
}

/* 5. One pixel: its index, B bits from the most significant. Encodes
 * `value` when `e` is given, else decodes and returns it. */
static inline int code_pixel(model *m, const view *v, kmz_range_encoder *e, kmz_range_decoder *d, int value) {
    uint32_t *slot[HASHED];
    int node = 1, group = 1, agree = v->expected >= 0, used = HASHED;
    for (int b = m->bits - 1; b >= 0; b--) {
        if ((m->bits - 1 - b) % GROUP == 0) {
            /* 4.3 A new slot per context for every GROUP bits, chosen by the bits so far.
             * Past the first group, the first DEEP contexts only: the low bits learn
             * faster from fewer, and cost less. */
            used = b == m->bits - 1 ? HASHED : DEEP;
            for (int i = 0; i < used; i++)
                slot[i] = m->cells + ((size_t)(finish(combine(v->hash[i], (uint32_t)node)) >> m->slot_shift) << 4);
            group = 1;
        }
        /* 5.1 The inputs: the contexts' cells, then the match model's. */
        int expected_bit = agree ? (v->expected >> b) & 1 : 0, n = used + 1;
        uint32_t *cell[INPUTS];
        for (int i = 0; i < used; i++)
            cell[i] = slot[i] + group;
        cell[used] = &m->match_cells[agree ? 32 + (v->length << 1 | expected_bit) : 0];
        int state = agree ? 1 + (v->length < 3 ? v->length : 3) : 0;
        int32_t *w = m->weights + (size_t)(state * 256 + (node < 256 ? node : 0)) * INPUTS;
        int st[INPUTS];
        int64_t dot = 0;
        for (int i = 0; i < n; i++) {
            st[i] = m->stretch[(*cell[i] & 0xFFFF) >> 4];
            dot += (int64_t)w[i] * st[i];
        }
        /* 5.2 Arithmetic shifts of negative numbers round down (two's complement). */
        int p = squash(dot >> 16);
        int bit;
        if (e) {
            bit = (value >> b) & 1;
            kmz_range_put(e, (uint32_t)(4096 - p) << 4, bit);
        } else {
            bit = kmz_range_get(d, (uint32_t)(4096 - p) << 4);
        }
        /* 5.3 Learning. */
        int err = ((bit << 12) - p) * LEARNING_RATE;
        for (int i = 0; i < n; i++) {
            int32_t moved = w[i] + ((st[i] * err) >> 14);
            w[i] = moved < -WEIGHT_LIMIT ? -WEIGHT_LIMIT : moved > WEIGHT_LIMIT ? WEIGHT_LIMIT : moved;
            learn(cell[i], m->rates[*cell[i] >> 16], bit, RATE_LIMIT);
        }
        agree = agree && bit == expected_bit;
        node = 2 * node + bit;
        group = 2 * group + bit;
    }
    return node - (1 << m->bits);
}

/* 3.2 The palette ---------------------------------------------------------------------
 *
 * Entry by entry in index order, each channel as its difference from the entry before
 * (the first from 0, 0, 0, 0), taken modulo 256 into -128..127; red and blue less the
 * green difference, since colours mostly change in brightness. Each difference is a
 * zero flag, a sign, its bit length in unary and the bits below the leading one, every
 * decision with a cell of its own. */
#define PALETTE_LIMIT 30 /* 3.2: a palette cell's count saturates here: few decisions */

typedef struct {
    uint32_t zero[4][2], sign[4][2], length[4][2][8], low[4][9][8]; /* by channel, [g == 0] */
    uint32_t rates[PALETTE_LIMIT + 1];
} palette_model;

static void palette_model_init(palette_model *pm, const model *m) {
    uint32_t *cells = &pm->zero[0][0];
    for (size_t c = 0; c < offsetof(palette_model, rates) / sizeof *cells; c++)
        cells[c] = 1u << 15;
    memcpy(pm->rates, m->rates, sizeof pm->rates);
}

/* One decision of the palette: its probability straight from the cell. */
static inline int palette_bit(palette_model *pm, uint32_t *cell, kmz_range_encoder *e, kmz_range_decoder *d, int bit) {
    int p = clamp_int((int)((*cell & 0xFFFF) >> 4), 1, 4095);
    if (e)
        kmz_range_put(e, (uint32_t)(4096 - p) << 4, bit);
    else
        bit = kmz_range_get(d, (uint32_t)(4096 - p) << 4);
    learn(cell, pm->rates[*cell >> 16], bit, PALETTE_LIMIT);
    return bit;
}

/* A difference v in -128..127 of channel c in context s; returns it (decoded when no `e`). */
static int palette_difference(palette_model *pm, int c, int s, kmz_range_encoder *e, kmz_range_decoder *d, int v) {
    int size = v < 0 ? -v : v;
    if (!palette_bit(pm, &pm->zero[c][s], e, d, size != 0))
        return 0;
    int negative = palette_bit(pm, &pm->sign[c][s], e, d, v < 0);
    int length = 1; /* bitlen(size), 1 to 8 */
    while (length < 8 && palette_bit(pm, &pm->length[c][s][length], e, d, bit_length((uint64_t)size) > length))
        length++;
    int decoded = 1;
    for (int i = length - 2; i >= 0; i--)
        decoded = 2 * decoded + palette_bit(pm, &pm->low[c][length][i], e, d, (size >> i) & 1);
    return negative ? -decoded : decoded;
}

static inline int wrap(int v) {
    return ((v + 128) & 255) - 128;
}

/* Codes the k entries of `palette` (encoder), or decodes them into it. KMZ_OK, or
 * KMZ_NO_MEMORY when the encoder's output cannot grow. */
static int code_palette(const model *m, uint8_t *palette, int channels, kmz_range_encoder *e, kmz_range_decoder *d) {
    palette_model pm;
    palette_model_init(&pm, m);
    int before[4] = {0, 0, 0, 0};
    for (int64_t j = 0; j < m->k; j++) {
        if (e && kmz_range_reserve(e, ENTRY_BYTES) != 0)
            return KMZ_NO_MEMORY;
        uint8_t *entry = palette + channels * j;
        /* alpha, then green, red, blue: channel numbers 3, 1, 0, 2 */
        if (channels == 4)
            entry[3] = (uint8_t)(before[3] + palette_difference(&pm, 3, 0, e, d, wrap(entry[3] - before[3])));
        int g = palette_difference(&pm, 1, 0, e, d, wrap(entry[1] - before[1])), s = g == 0;
        entry[1] = (uint8_t)(before[1] + g);
        entry[0] = (uint8_t)(before[0] + g + palette_difference(&pm, 0, s, e, d, wrap(entry[0] - before[0] - g)));
        entry[2] = (uint8_t)(before[2] + g + palette_difference(&pm, 2, s, e, d, wrap(entry[2] - before[2] - g)));
        for (int c = 0; c < channels; c++)
            before[c] = entry[c];
    }
    return KMZ_OK;
}

/* The encoder's choice of order (not part of the format): a path through the colours,
 * from the darkest to the nearest one not yet taken (sum of absolute differences of the
 * channels; ties to the lower index). It keeps the differences of 3.2 small, and along
 * the ramps of anti-aliased text and gradients it makes neighbouring indices
 * neighbouring colours. rank[index] is the index's place in the path. */
static void choose_order(const uint8_t *palette, int64_t k, int channels, uint16_t *order, uint16_t *rank) {
    int64_t first = 0;
    uint64_t darkest = UINT64_MAX;
    for (int64_t j = 0; j < k; j++) {
        const uint8_t *c = palette + channels * j;
        uint64_t key = (299u * c[0] + 587u * c[1] + 114u * c[2]) * (uint64_t)(channels == 4 ? c[3] : 255);
        if (key < darkest) {
            darkest = key;
            first = j;
        }
    }
    for (int64_t j = 0; j < k; j++)
        order[j] = (uint16_t)j;
    order[0] = (uint16_t)first;
    order[first] = 0;
    /* order[0..r] is the path so far, order[r+1..] the rest. */
    for (int64_t r = 0; r + 1 < k; r++) {
        const uint8_t *at = palette + channels * order[r];
        int64_t best = r + 1;
        int best_distance = INT32_MAX;
        for (int64_t t = r + 1; t < k; t++) {
            const uint8_t *c = palette + channels * order[t];
            int distance = 0;
            for (int ch = 0; ch < channels; ch++)
                distance += abs(c[ch] - at[ch]);
            if (distance < best_distance || (distance == best_distance && order[t] < order[best])) {
                best_distance = distance;
                best = t;
            }
        }
        uint16_t taken = order[best];
        order[best] = order[r + 1];
        order[r + 1] = taken;
    }
    for (int64_t r = 0; r < k; r++)
        rank[order[r]] = (uint16_t)r;
}

int kmz_mix_encode(const uint16_t *indices, int64_t width, int64_t height, const uint8_t *palette,
                   int64_t k, int channels, uint8_t **payload, int64_t *size, int64_t *pixel, kmz_poll *poll) {
    int64_t pixels = width * height;
    for (int64_t pos = 0; pos < pixels; pos++)
        if (indices[pos] >= k) {
            *pixel = pos;
            return KMZ_MIX_INDEX;
        }
    model m;
    int status = model_init(&m, k, width, height);
    kmz_range_encoder e = KMZ_RANGE_ENCODER(pixels / 4 + 4096 + 3 * k);
    e.out = malloc((size_t)e.capacity);
    /* The file's palette is in the chosen order, and so are the indices coded. */
    uint8_t *stored = malloc((size_t)(channels * k));
    uint16_t *order = malloc((size_t)k * sizeof *order), *rank = malloc((size_t)k * sizeof *rank);
    uint16_t *image = malloc((size_t)pixels * sizeof *image);
    if (!e.out || !stored || !order || !rank || !image)
        status = KMZ_NO_MEMORY;
    if (status == KMZ_OK) {
        choose_order(palette, k, channels, order, rank);
        for (int64_t r = 0; r < k; r++)
            memcpy(stored + channels * r, palette + channels * order[r], (size_t)channels);
        for (int64_t pos = 0; pos < pixels; pos++)
            image[pos] = rank[indices[pos]];
        status = code_palette(&m, stored, channels, &e, NULL);
    }
    for (int64_t y = 0, pos = 0; y < height && status == KMZ_OK; y++) {
        for (int64_t x = 0; x < width; x++, pos++) {
            if (kmz_poll_tick(poll, m.bits)) {
                status = KMZ_INTERRUPTED;
                break;
            }
            if (kmz_range_reserve(&e, PIXEL_BYTES) != 0) {
                status = KMZ_NO_MEMORY;
                break;
            }
            view v;
            look(&m, image, pos, x, y, &v);
            code_pixel(&m, &v, &e, NULL, image[pos]);
            advance(&m, image, pos, x, &v, image[pos]);
        }
    }
    if (status == KMZ_OK) {
        kmz_range_finish(&e);
        *payload = e.out;
        *size = e.pos;
    } else {
        free(e.out);
    }
    free(stored);
    free(order);
    free(rank);
    free(image);
    model_free(&m);
    return status;
}

struct kmz_mix_decoder {
    model model;
    kmz_range_decoder coder;
    int channels;
    uint8_t *palette;     /* k x channels, once decoded */
    int64_t height, done; /* the next pixel, or -1 before the palette */
    int status;           /* the first positive status met, final */
    int64_t failed_at;
};

kmz_mix_decoder *kmz_mix_decoder_new(const uint8_t *payload, int64_t size, int64_t k, int channels, int64_t width,
                                     int64_t height) {
    kmz_mix_decoder *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->palette = calloc((size_t)k, (size_t)channels); /* zeros: code_palette reads it before decoding into it */
    if (!d->palette || model_init(&d->model, k, width, height) != KMZ_OK) {
        kmz_mix_decoder_free(d);
        return NULL;
    }
    d->coder.data = payload;
    d->coder.end = size;
    d->channels = channels;
    d->height = height;
    d->done = -1;
    return d;
}

void kmz_mix_decoder_free(kmz_mix_decoder *d) {
    if (!d)
        return;
    model_free(&d->model);
    free(d->palette);
    free(d);
}

static int fail(kmz_mix_decoder *d, int status, int64_t at, int64_t *pixel) {
    d->status = status;
    d->failed_at = *pixel = at;
    return status;
}

/* 6 and 3.2: the range coder's start, then the palette. */
static int decode_palette(kmz_mix_decoder *d) {
    int64_t pixel;
    if (d->status)
        return d->status;
    if (d->done >= 0)
        return KMZ_OK;
    int start = kmz_range_start(&d->coder);
    if (start != KMZ_RANGE_OK)
        return fail(d, start == KMZ_RANGE_TRUNCATED ? KMZ_MIX_TRUNCATED : KMZ_MIX_BAD_START, 0, &pixel);
    code_palette(&d->model, d->palette, d->channels, NULL, &d->coder);
    if (d->coder.pos > d->coder.end)
        return fail(d, KMZ_MIX_TRUNCATED, 0, &pixel);
    d->done = 0;
    return KMZ_OK;
}

int kmz_mix_decode_palette(kmz_mix_decoder *d, uint8_t *palette) {
    int status = decode_palette(d);
    if (status == KMZ_OK)
        memcpy(palette, d->palette, (size_t)(d->channels * d->model.k));
    return status;
}

int kmz_mix_decode(kmz_mix_decoder *d, uint16_t *image, int64_t count, int64_t *pixel, kmz_poll *poll) {
    if (decode_palette(d) != KMZ_OK) {
        *pixel = d->failed_at;
        return d->status;
    }
    model *m = &d->model;
    int64_t width = m->width, total = width * d->height, pos = d->done;
    int64_t stop = pos + (count < total - pos ? count : total - pos);
    kmz_range_decoder c = d->coder;
    int status = KMZ_OK;
    for (; pos < stop; pos++) {
        if (kmz_poll_tick(poll, m->bits)) {
            status = KMZ_INTERRUPTED;
            break;
        }
        int64_t x = pos % width, y = pos / width;
        view v;
        look(m, image, pos, x, y, &v);
        int value = code_pixel(m, &v, NULL, &c, 0);
        /* In stream order: a read past the end first, then a position past the palette. */
        if (c.pos > c.end)
            return fail(d, KMZ_MIX_TRUNCATED, pos, pixel);
        if (value >= m->k)
            return fail(d, KMZ_MIX_RANGE, pos, pixel);
        image[pos] = (uint16_t)value;
        advance(m, image, pos, x, &v, value);
    }
    d->coder = c;
    d->done = pos;
    *pixel = pos;
    if (status == KMZ_OK && pos == total && c.pos != c.end)
        return fail(d, KMZ_MIX_TRAILING, pos, pixel);
    return status;
}
