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

#define HASHED 7            /* 4.2: context models */
#define DIRECT 3            /* 4.3: the first three (left, up, gradient) have direct slots when B <= 8 */
#define INPUTS (HASHED + 1) /* and the match model */
#define GROUP 4             /* 4.3: bits per slot; a slot is 16 cells, one per node */
#define DIRECT_SLOTS 18     /* 4.3: per context value: the first group, 16 of the second, the up step */
#define PAIRS 65536         /* 5.2: cells of each pair of neighbours in the up step */
#define RATE_LIMIT 40       /* 4.3: a count saturates here: cells keep adapting */
#define SETS (6 * 256)      /* 5.4: weight sets: the tree's by match state and node, then the steps' */
#define LEFT_SETS (5 * 256)
#define UP_SETS (5 * 256 + 16)
#define WEIGHT_START (1 << 14)
#define WEIGHT_LIMIT (1 << 24)
#define LEARNING_RATE 3
#define MATCH_ROW 32 /* 4.4: pixels of the row in the match context */
#define ROW_BASE 0x01000193u
#define PIXEL_BYTES 32 /* 6: a pixel narrows the range by at most 2^168 */
#define ENTRY_BYTES 128 /* 3.2: a palette entry, 64 decisions, by at most 2^768 */
#define LINE 64         /* bytes: slots start on a cache line, so that one is one read */

#if defined(__GNUC__)
#define KMZ_PREFETCH(address) __builtin_prefetch(address) /* a hint: no effect on the result */
#define KMZ_INLINE static inline __attribute__((always_inline))
#else
#define KMZ_PREFETCH(address) ((void)0)
#define KMZ_INLINE static inline
#endif

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

/* The model: the cells of 4.3, the weights of 5, the match state of 4.4. A cell is a
 * probability p of a 1 in units of 2^-16 (low 16 bits) and a count (the next 8). */
typedef struct {
    int64_t k, width;
    int bits;     /* B: bits per pixel, max(1, bitlen(k - 1)) */
    int deep;     /* 4.2: contexts used past the first group */
    int direct;   /* 4.3: B <= 8, contexts 0-2 have direct slots */
    int up_step;  /* 5.2: 7 <= B <= 8 */
    int16_t stretch[4096];
    int16_t squashed[4095]; /* squash(d) for d = -2047..2047 */
    uint32_t rates[RATE_LIMIT + 1];
    uint32_t *cells, *cells_block; /* the hashed slots, 16 cells each; the block holding them */
    uint32_t *direct_cells, *direct_block; /* contexts 0-2: K x DIRECT_SLOTS slots each */
    uint32_t *pairs, *pairs_block;         /* 5.2: 2 x PAIRS cells */
    int slot_shift;   /* 32 - log2(slots) */
    int32_t *weights; /* SETS x INPUTS */
    uint32_t match_cells[64];
    uint32_t *last; /* 4.4: the number after each match context's last pixel */
    int last_shift;
    int64_t match_at; /* the pixel the match predicts from, or -1 */
    uint32_t match_length;
    uint32_t row_hash, row_drop; /* 4.4: the rolling hash of the row, ROW_BASE^31 */
    uint32_t match_slot, next_slot; /* 4.4: this pixel's match slot; the next one's, found a pixel ahead */
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

/* `count` cells starting on a cache line, all fresh (p = 1/2, n = 0), in *block (to free). */
static uint32_t *fresh_cells(size_t count, uint32_t **block) {
    *block = malloc(count * sizeof **block + LINE);
    if (!*block)
        return NULL;
    uint32_t *cells = (uint32_t *)(((uintptr_t)*block + LINE - 1) & ~(uintptr_t)(LINE - 1));
    for (size_t c = 0; c < count; c++)
        cells[c] = 1u << 15;
    return cells;
}

/* 4.4 The match slot of pixel `pos` at (x, y): `row` is the row hash of its left
 * neighbour (the 32 pixels before that one), then the four pixels above it, each plus
 * one, 0 outside the image. */
static inline uint32_t match_slot_of(const model *m, const uint16_t *image, int64_t pos, int64_t x, int64_t y,
                                     uint32_t row) {
    int64_t w = m->width;
    uint32_t up = y > 0 ? image[pos - w] + 1u : 0;
    uint32_t up_left = y > 0 && x > 0 ? image[pos - w - 1] + 1u : 0;
    uint32_t up_right = y > 0 && x < w - 1 ? image[pos - w + 1] + 1u : 0;
    uint32_t far_up_right = y > 0 && x < w - 2 ? image[pos - w + 2] + 1u : 0;
    return finish(combine(combine(combine(combine(row, up), up_left), up_right), far_up_right)) >> m->last_shift;
}

static int model_init(model *m, int64_t k, int64_t width, int64_t height) {
    memset(m, 0, sizeof *m);
    m->k = k;
    m->width = width;
    m->bits = k > 1 ? bit_length((uint64_t)(k - 1)) : 1;
    m->deep = m->bits >= 7 ? 3 : 4;
    m->direct = m->bits <= 8;
    m->up_step = m->bits >= 7 && m->bits <= 8;
    int64_t pixels = width * height;
    /* 4.3 and 4.4: tables sized by the image, within bounds that keep them in the
     * caches: with direct slots for the three busiest contexts, larger hashed tables
     * only wait longer for memory. */
    int slot_bits = clamp_int(bit_length((uint64_t)pixels) - 2, 12, m->bits <= 6 ? 17 : 14);
    int last_bits = clamp_int(bit_length((uint64_t)pixels), 12, 18);
    m->slot_shift = 32 - slot_bits;
    m->last_shift = 32 - last_bits;
    m->cells = fresh_cells((size_t)16 << slot_bits, &m->cells_block);
    m->weights = malloc((size_t)SETS * INPUTS * sizeof *m->weights);
    m->last = calloc((size_t)1 << last_bits, sizeof *m->last);
    if (!m->cells || !m->weights || !m->last)
        return KMZ_NO_MEMORY;
    if (m->direct && !(m->direct_cells = fresh_cells((size_t)DIRECT * k * DIRECT_SLOTS * 16, &m->direct_block)))
        return KMZ_NO_MEMORY;
    if (m->up_step && !(m->pairs = fresh_cells(2 * PAIRS, &m->pairs_block)))
        return KMZ_NO_MEMORY;
    int q = 0;
    for (int d = -2047; d <= 2047; d++)
        for (int s = squash(d); q <= s && q < 4096; q++)
            m->stretch[q] = (int16_t)d;
    for (; q < 4096; q++)
        m->stretch[q] = 2047;
    for (int d = -2047; d <= 2047; d++)
        m->squashed[d + 2047] = (int16_t)squash(d);
    for (int n = 0; n <= RATE_LIMIT; n++)
        m->rates[n] = 131072u / (uint32_t)(2 * n + 3);
    for (int c = 0; c < 64; c++)
        m->match_cells[c] = 1u << 15;
    for (int w = 0; w < SETS * INPUTS; w++)
        m->weights[w] = WEIGHT_START;
    m->match_at = -1;
    m->match_slot = match_slot_of(m, NULL, 0, 0, 0, 0);
    m->row_drop = 1;
    for (int i = 0; i < MATCH_ROW - 1; i++)
        m->row_drop *= ROW_BASE;
    return KMZ_OK;
}

static void model_free(model *m) {
    free(m->cells_block);
    free(m->direct_block);
    free(m->pairs_block);
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
    int value[DIRECT]; /* contexts 0-2: left, up, gradient */
    int left, up, up_left, up_right;
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
    v->left = v->value[0] = left;
    v->up = v->value[1] = up;
    v->value[2] = gradient;
    v->up_left = up_left;
    v->up_right = up_right;
    /* 4.2 The contexts: the nearest neighbours one by one, the plane through them, the
     * four of the row above and the left, two wider ones, and all seven. */
    v->hash[0] = combine(1, left);
    v->hash[1] = combine(2, up);
    v->hash[2] = combine(4, gradient);
    v->hash[3] = combine(combine(combine(combine(3, left), up), up_left), up_right);
    v->hash[4] = combine(combine(combine(5, far_left), left), up);
    v->hash[5] = combine(combine(combine(6, far_up), up), left);
    v->hash[6] = combine(combine(combine(combine(combine(combine(combine(7, left), up), up_left), up_right), far_left),
                                 far_up),
                         far_up_right);
    /* 4.4 The match: carry on where the last prediction came true, else take the last
     * pixel with this match context, if its left neighbour is this one's. The context
     * leaves the left pixel out, so the next pixel's is known now: its entry of `last`
     * is fetched a pixel ahead. */
    if (m->match_length == 0) {
        uint32_t last = m->last[m->match_slot];
        m->match_at = last ? (int64_t)last - 1 : -1;
        if (m->match_at >= 1 && x > 0 && image[m->match_at - 1] != left)
            m->match_at = -1;
    }
    if (x + 1 < w) {
        m->next_slot = match_slot_of(m, image, pos + 1, x + 1, y, m->row_hash);
        KMZ_PREFETCH(&m->last[m->next_slot]);
    }
    v->expected = m->match_at >= 0 ? image[m->match_at] : -1;
    v->length = m->match_length < 15 ? (int)m->match_length : 15;
}

/* 4.4 After the pixel: the match and the row hash move on. */
static inline void advance(model *m, const uint16_t *image, int64_t pos, int64_t x, int64_t y, const view *v,
                           int value) {
    if (v->expected == value) {
        m->match_length += m->match_length < 65535;
        m->match_at++;
    } else {
        m->match_length = 0;
        m->match_at = -1;
    }
    m->last[m->match_slot] = (uint32_t)(pos + 1);
    m->match_slot = x + 1 < m->width ? m->next_slot : match_slot_of(m, image, pos + 1, 0, y + 1, 0);
    uint32_t dropped = x >= MATCH_ROW ? (uint32_t)image[pos - MATCH_ROW] + 1 : 0;
    m->row_hash = x + 1 == m->width ? 0 : (uint32_t)value + 1 + ROW_BASE * (m->row_hash - dropped * m->row_drop);
}

/* 5.5-5.6 One mixed decision over the n cells with the weights w: codes `bit` (encoder)
 * or decodes and returns it, then learns. Always inlined, with n a constant at each
 * call, so that the loops unroll. */
KMZ_INLINE int decide(model *m, uint32_t **cell, int n, int32_t *w, kmz_range_encoder *e, kmz_range_decoder *d,
                      int bit) {
    int st[INPUTS];
    int64_t dot = 0;
    for (int i = 0; i < n; i++) {
        st[i] = m->stretch[(*cell[i] & 0xFFFF) >> 4];
        dot += (int64_t)w[i] * st[i];
    }
    /* 5.5 Arithmetic shifts of negative numbers round down (two's complement). */
    int64_t logit = dot >> 16;
    int p = m->squashed[(logit < -2047 ? -2047 : logit > 2047 ? 2047 : logit) + 2047];
    if (e)
        kmz_range_put(e, (uint32_t)(4096 - p) << 4, bit);
    else
        bit = kmz_range_get(d, (uint32_t)(4096 - p) << 4);
    /* 5.6 Learning. */
    int err = ((bit << 12) - p) * LEARNING_RATE;
    for (int i = 0; i < n; i++) {
        int32_t moved = w[i] + ((st[i] * err) >> 14);
        w[i] = moved < -WEIGHT_LIMIT ? -WEIGHT_LIMIT : moved > WEIGHT_LIMIT ? WEIGHT_LIMIT : moved;
    }
    for (int i = 0; i < n; i++)
        learn(cell[i], m->rates[*cell[i] >> 16], bit, RATE_LIMIT);
    return bit;
}

/* 4.3 The slot of context i for the group that starts at `node`: a direct one for
 * contexts 0-2 when B <= 8 (number 0 for the first group, node - 15 in the second),
 * else a hashed one. */
static inline uint32_t *slot_of(const model *m, const view *v, int i, int node) {
    if (m->direct && i < DIRECT)
        return m->direct_cells +
               ((((size_t)i * m->k + v->value[i]) * DIRECT_SLOTS + (node == 1 ? 0 : node - 15)) << 4);
    return m->cells + ((size_t)(finish(combine(v->hash[i], (uint32_t)node)) >> m->slot_shift) << 4);
}

static inline int min_int(int a, int b) {
    return a < b ? a : b;
}

/* 5. One pixel: "is it the left neighbour?", then (5.2) "is it the one above?", then
 * its index, B bits from the most significant, as a tree whose last bit is not coded
 * where the steps before leave one choice. Encodes `value` when `e` is given, else
 * decodes and returns it. */
KMZ_INLINE int code_pixel(model *m, const view *v, kmz_range_encoder *e, kmz_range_decoder *d, int value) {
    uint32_t *slot[HASHED], *cell[INPUTS];
    int node = 1, group = 1, agree = v->expected >= 0, up_excluded = 0, length = v->length;
    /* 5.1 The left step, with cell 0 of the first group's slots. */
    for (int i = 0; i < HASHED; i++)
        cell[i] = slot[i] = slot_of(m, v, i, 1);
    int same = v->expected == v->left;
    cell[HASHED] = &m->match_cells[16 + (!agree ? 0 : same ? 1 + min_int(length, 6) : 8 + min_int(length, 7))];
    int32_t *w = m->weights + (size_t)(LEFT_SETS + (!agree ? 0 : (same ? 1 : 5) + min_int(length, 3))) * INPUTS;
    if (decide(m, cell, INPUTS, w, e, d, value == v->left))
        return v->left;
    agree = agree && !same;
    /* 5.2 The up step. */
    if (m->up_step && v->up != v->left) {
        int matched = v->expected >= 0;
        same = v->expected == v->up;
        for (int i = 0; i < DIRECT; i++)
            cell[i] = m->direct_cells + ((((size_t)i * m->k + v->value[i]) * DIRECT_SLOTS + DIRECT_SLOTS - 1) << 4);
        cell[3] = &m->match_cells[1 + (!matched ? 0 : same ? 1 + min_int(length, 6) : 8 + min_int(length, 6))];
        cell[4] = &m->pairs[v->left << 8 | v->up];
        cell[5] = &m->pairs[PAIRS + (v->up_left << 8 | v->up_right)];
        w = m->weights + (size_t)(UP_SETS + (!matched ? 0 : (same ? 1 : 5) + min_int(length, 3))) * INPUTS;
        if (decide(m, cell, 6, w, e, d, value == v->up))
            return v->up;
        agree = agree && !same;
        up_excluded = 1;
    }
    /* 5.3 The tree. */
    for (int b = m->bits - 1; b >= 0; b--) {
        /* Past the first group fewer contexts: the low bits learn faster from fewer,
         * and cost less. */
        int used = m->bits - 1 - b < GROUP ? HASHED : m->deep;
        if ((m->bits - 1 - b) % GROUP == 0) {
            /* A new slot per context for every GROUP bits, chosen by the bits so far
             * (the first group's are the left step's). */
            if (b != m->bits - 1)
                for (int i = 0; i < used; i++)
                    slot[i] = slot_of(m, v, i, node);
            group = 1;
        }
        if (b == 0) {
            /* The last bit is known where a step excluded its sibling: the other one. */
            int top = 1 << m->bits, excluded = node == (top | v->left) >> 1                    ? v->left
                                               : up_excluded && node == (top | v->up) >> 1 ? v->up
                                                                                            : -1;
            if (excluded >= 0)
                return 2 * node + (~excluded & 1) - top;
        }
        int expected_bit = agree ? (v->expected >> b) & 1 : 0;
        for (int i = 0; i < used; i++)
            cell[i] = slot[i] + group;
        cell[used] = &m->match_cells[agree ? 32 + (length << 1 | expected_bit) : 0];
        int state = agree ? 1 + min_int(length, 3) : 0;
        w = m->weights + (size_t)(state * 256 + (node < 256 ? node : 0)) * INPUTS;
        int bit = used == HASHED  ? decide(m, cell, HASHED + 1, w, e, d, (value >> b) & 1)
                  : used == 4     ? decide(m, cell, 5, w, e, d, (value >> b) & 1)
                                  : decide(m, cell, 4, w, e, d, (value >> b) & 1);
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

/* The encoder's choice of order (not part of the format) -------------------------------
 *
 * Two candidates. A path through the colours, from the darkest to the nearest one not
 * yet taken (sum of absolute differences of the channels; ties to the lower index):
 * along the ramps of anti-aliased text and gradients it makes neighbouring indices
 * neighbouring colours, and it keeps the palette's differences (3.2) small. And the
 * order of brightness (299 R + 587 G + 114 B, times the alpha; ties by index), which
 * suits the smooth shading of many photographs better. The one taken is that under
 * which neighbouring pixels' indices differ by fewer binary digits in all: a cheap
 * stand-in for how well the model will predict them. order[r] is the index placed at
 * r, rank[index] its place. */
static uint64_t brightness(const uint8_t *c, int channels) {
    return (299u * c[0] + 587u * c[1] + 114u * c[2]) * (uint64_t)(channels == 4 ? c[3] : 255);
}

static int by_key(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void brightness_order(const uint8_t *palette, int64_t k, int channels, uint64_t *keys, uint16_t *order) {
    for (int64_t j = 0; j < k; j++)
        keys[j] = brightness(palette + channels * j, channels) << 12 | (uint64_t)j;
    qsort(keys, (size_t)k, sizeof *keys, by_key);
    for (int64_t r = 0; r < k; r++)
        order[r] = (uint16_t)(keys[r] & 4095);
}

static void path_order(const uint8_t *palette, int64_t k, int channels, uint16_t *order) {
    int64_t first = 0;
    for (int64_t j = 1; j < k; j++)
        if (brightness(palette + channels * j, channels) < brightness(palette + channels * first, channels))
            first = j;
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
}

/* The binary digits of the differences between the ranks of horizontal and vertical
 * neighbours. */
static uint64_t spread(const uint16_t *indices, int64_t width, int64_t height, const uint16_t *rank,
                       const uint8_t *digits) {
    uint64_t sum = 0;
    for (int64_t y = 0, pos = 0; y < height; y++)
        for (int64_t x = 0; x < width; x++, pos++) {
            int r = rank[indices[pos]];
            if (x > 0)
                sum += digits[abs(r - rank[indices[pos - 1]])];
            if (y > 0)
                sum += digits[abs(r - rank[indices[pos - width]])];
        }
    return sum;
}

static int choose_order(const uint8_t *palette, int64_t k, int channels, const uint16_t *indices, int64_t width,
                        int64_t height, uint16_t *order, uint16_t *rank) {
    uint64_t *keys = malloc((size_t)k * sizeof *keys);
    uint16_t *other = malloc((size_t)k * sizeof *other), *other_rank = malloc((size_t)k * sizeof *other_rank);
    uint8_t *digits = malloc((size_t)k);
    if (!keys || !other || !other_rank || !digits) {
        free(keys);
        free(other);
        free(other_rank);
        free(digits);
        return KMZ_NO_MEMORY;
    }
    for (int64_t d = 0; d < k; d++)
        digits[d] = (uint8_t)bit_length((uint64_t)d);
    path_order(palette, k, channels, order);
    brightness_order(palette, k, channels, keys, other);
    for (int64_t r = 0; r < k; r++) {
        rank[order[r]] = (uint16_t)r;
        other_rank[other[r]] = (uint16_t)r;
    }
    if (spread(indices, width, height, other_rank, digits) < spread(indices, width, height, rank, digits)) {
        memcpy(order, other, (size_t)k * sizeof *order);
        memcpy(rank, other_rank, (size_t)k * sizeof *rank);
    }
    free(keys);
    free(other);
    free(other_rank);
    free(digits);
    return KMZ_OK;
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
    if (status == KMZ_OK)
        status = choose_order(palette, k, channels, indices, width, height, order, rank);
    if (status == KMZ_OK) {
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
            advance(&m, image, pos, x, y, &v, image[pos]);
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
    int64_t x = pos % width, y = pos / width; /* then kept up: no division per pixel */
    for (; pos < stop; pos++) {
        if (kmz_poll_tick(poll, m->bits)) {
            status = KMZ_INTERRUPTED;
            break;
        }
        view v;
        look(m, image, pos, x, y, &v);
        int value = code_pixel(m, &v, NULL, &c, 0);
        /* In stream order: a read past the end first, then a position past the palette. */
        if (c.pos > c.end)
            return fail(d, KMZ_MIX_TRUNCATED, pos, pixel);
        if (value >= m->k)
            return fail(d, KMZ_MIX_RANGE, pos, pixel);
        image[pos] = (uint16_t)value;
        advance(m, image, pos, x, y, &v, value);
        if (++x == width) {
            x = 0;
            y++;
        }
    }
    d->coder = c;
    d->done = pos;
    *pixel = pos;
    if (status == KMZ_OK && pos == total && c.pos != c.end)
        return fail(d, KMZ_MIX_TRAILING, pos, pixel);
    return status;
}
