/* Coding 1 ("ctx"): the context model and range coder of spec/CODING.md, encoder and
 * decoder. Section numbers below are those of spec/CODING.md.
 *
 * Every context depends on the pixels coded before it, so both directions are one
 * sequential loop over the pixels; the code keeps that loop free of divisions and of
 * branches on the (unpredictable) coded values where it can.
 */
#include "ctx.h"
#include "rangecoder.h"

#include <stdlib.h>
#include <string.h>

/* 4.1 Binary contexts ----------------------------------------------------------------
 *
 * One flat table of cells, each a probability p of a 0 (in units of 2^-16) and an
 * adaptation count n:
 *
 *   cell 0         1280                        6400            6720          6788
 *        .---------.---------------------------.---------------.-------------.
 *        | escape  | candidate                 | bucket        | mantissa    |
 *        | pattern | 1280 + 4 pattern + j      | 6400 + 16 (4A | 6720 + 4e   |
 *        |         |                 j = 0..3  |  + n - 1) + s | + node      |
 *        `---------'---------------------------'---------------'-------------'
 */
#define PROB_BITS KMZ_RANGE_PROB_BITS
#define PROB_HALF (1 << (PROB_BITS - 1))
#define RATE_LIMIT 30 /* a count saturates here: the slowest rate is 1/32 */
#define PATTERNS (64 * 5 * 4) /* equality mask x escaped neighbours x far bits */
#define ESCAPE_BASE 0
#define CANDIDATE_BASE (ESCAPE_BASE + PATTERNS)
#define BUCKET_BASE (CANDIDATE_BASE + PATTERNS * 4)
#define MANTISSA_BASE (BUCKET_BASE + 5 * 4 * 16)
#define CONTEXTS (MANTISSA_BASE + 17 * 4)

#define ESCAPE_FIRST 2      /* 4.2: with this many escaped neighbours, "escape?" comes first */
#define MODELLED_MANTISSA 2 /* 4.3: mantissa bits with a cell; the rest are uniform */

/* 5.3: the bytes one pixel can add to the payload. A pixel codes at most 18 adaptive
 * bits (4 choices, 12 bucket, 2 mantissa), each narrowing the range at most 2^11.1
 * times (p stays within 31..65505), and 9 uniform ones: under 30 bytes. */
#define PIXEL_BYTES 64

/* The model of 4.1 and the rank tables of 4.3. Uint16 probabilities and uint8 counts
 * keep the cells within the L1 cache. */
typedef struct {
    int64_t k;
    int bits;           /* b: bits per index, (k - 1).bit_length() */
    int channels;       /* 3 (RGB) or 4 (RGBA) bytes per palette entry */
    uint8_t *palette;   /* k x channels, a copy */
    uint16_t *order;    /* order[ref * k + r]: the index of rank r in S_ref */
    uint16_t *rank;     /* rank[ref * k + j]: the rank of index j in S_ref */
    uint8_t *filled;    /* whether row ref of both is built (lazily, 7) */
    uint64_t *keys;     /* 2k: the sort's scratch */
    uint32_t rates[RATE_LIMIT + 1];
    uint16_t probs[CONTEXTS];
    uint8_t counts[CONTEXTS];
} model;

static int model_init(model *m, const uint8_t *palette, int64_t k, int channels) {
    m->k = k;
    m->channels = channels;
    m->bits = 0;
    while ((k - 1) >> m->bits)
        m->bits++;
    m->palette = malloc((size_t)k * channels);
    m->order = malloc((size_t)(k * k) * sizeof *m->order);
    m->rank = malloc((size_t)(k * k) * sizeof *m->rank);
    m->filled = calloc((size_t)k, 1);
    m->keys = malloc((size_t)(2 * k) * sizeof *m->keys);
    if (!m->palette || !m->order || !m->rank || !m->filled || !m->keys)
        return KMZ_NO_MEMORY;
    memcpy(m->palette, palette, (size_t)k * channels);
    for (int n = 0; n <= RATE_LIMIT; n++)
        m->rates[n] = (1u << PROB_BITS) / (uint32_t)(n + 2);
    for (int c = 0; c < CONTEXTS; c++) {
        m->probs[c] = PROB_HALF;
        m->counts[c] = 0;
    }
    return KMZ_OK;
}

static void model_free(model *m) {
    free(m->palette);
    free(m->order);
    free(m->rank);
    free(m->filled);
    free(m->keys);
}

/* 4.1 Adaptation: p moves towards the bit just coded, by 1/(n + 2). */
static inline void adapt(model *m, int cell, int bit) {
    uint32_t n = m->counts[cell], rate = m->rates[n], p = m->probs[cell];
    uint32_t up = (((1u << PROB_BITS) - p) * rate) >> PROB_BITS;
    uint32_t down = (p * rate) >> PROB_BITS;
    /* Both moves computed, one selected: no branch on the bit. */
    m->probs[cell] = (uint16_t)(bit ? p - down : p + up);
    m->counts[cell] = (uint8_t)(n + (n < RATE_LIMIT));
}

/* 4.3 The order S_ref ------------------------------------------------------------------
 *
 *   key = d(ref, j) << b | j        d: squared RGB distance, at most 3 x 255^2; for RGBA
 *                                   the composite distance (rgba_distance), under 2^36
 *
 * sorted ascending orders by distance, ties by index. An LSD radix sort, a byte per
 * pass: at K = 256 every entry becomes a reference, and a comparison sort of each
 * row would cost about a tenth of decoding. */
/* 4.3's distance between RGBA entries: 510^2 times the squared composite error (the
 * mean over black and over white) of showing one for the other. With u = (2C - 255) A
 * per channel and w = 255 A, it is sum (u - u')^2 + 3 (w - w')^2: every fully
 * transparent entry is at 0 from every other. */
static inline uint64_t rgba_distance(const uint8_t *p, const uint8_t *q) {
    int64_t a = p[3], b = q[3], w = 255 * (a - b), d = 3 * w * w;
    for (int c = 0; c < 3; c++) {
        int64_t u = (2 * p[c] - 255) * a - (2 * q[c] - 255) * b;
        d += u * u;
    }
    return (uint64_t)d;
}

static void sort_palette(const uint8_t *palette, int channels, int64_t k, int bits, int64_t ref, uint64_t *keys,
                         uint16_t *order) {
    uint64_t *src = keys, *dst = keys + k, top = 0;
    const uint8_t *centre = palette + channels * ref;
    for (int64_t j = 0; j < k; j++) {
        uint64_t distance;
        if (channels == 4) {
            distance = rgba_distance(palette + 4 * j, centre);
        } else {
            int32_t d0 = palette[3 * j] - centre[0], d1 = palette[3 * j + 1] - centre[1],
                    d2 = palette[3 * j + 2] - centre[2];
            distance = (uint64_t)(d0 * d0 + d1 * d1 + d2 * d2);
        }
        uint64_t key = (distance << bits) | (uint64_t)j;
        src[j] = key;
        top |= key;
    }
    for (int shift = 0; top >> shift; shift += 8) {
        int64_t tally[256] = {0};
        for (int64_t j = 0; j < k; j++)
            tally[(src[j] >> shift) & 255]++;
        int64_t start = 0;
        for (int b = 0; b < 256; b++) {
            int64_t count = tally[b];
            tally[b] = start;
            start += count;
        }
        for (int64_t j = 0; j < k; j++)
            dst[tally[(src[j] >> shift) & 255]++] = src[j];
        uint64_t *swap = src;
        src = dst;
        dst = swap;
    }
    uint64_t mask = ((uint64_t)1 << bits) - 1;
    for (int64_t r = 0; r < k; r++)
        order[r] = (uint16_t)(src[r] & mask);
}

/* 7: a row of the rank tables is built when its reference first precedes an escape. */
static void fill(model *m, int64_t ref) {
    uint16_t *order = m->order + ref * m->k, *rank = m->rank + ref * m->k;
    sort_palette(m->palette, m->channels, m->k, m->bits, ref, m->keys, order);
    for (int64_t r = 0; r < m->k; r++)
        rank[order[r]] = (uint16_t)r;
    m->filled[ref] = 1;
}

int kmz_ctx_order(const uint8_t *palette, int64_t k, int channels, int64_t ref, uint16_t *order) {
    uint64_t *keys = malloc((size_t)(2 * k) * sizeof *keys);
    if (!keys)
        return KMZ_NO_MEMORY;
    int bits = 0;
    while ((k - 1) >> bits)
        bits++;
    sort_palette(palette, channels, k, bits, ref, keys, order);
    free(keys);
    return KMZ_OK;
}

/* 3. What the model sees ------------------------------------------------------------
 *
 * 3.1 The neighbours of the pixel `?` at column x of row y:
 *
 *    column   x-2   x-1    x    x+1
 *           .-----.-----.-----.-----.
 *   row y-2 |     |     | FU  |     |
 *           |-----+-----+-----+-----|
 *   row y-1 |     | UL  |  U  | UR  |
 *           |-----+-----+-----+-----'
 *   row y   | FL  |  L  |  ?  |
 *           `-----'-----'-----'
 *
 * Missing ones (image edges) stand in for each other as 3.1 says. The rows are given
 * as pointers (`row`: y, `up`: y-1, `up2`: y-2; `esc`, `esc_up`: the escape flags of
 * rows y and y-1), so the encoder can point into the image and the decoder into the
 * few rows it keeps. */
typedef struct {
    int pattern; /* 3.2: (mask * 5 + A) * 4 + far */
    int act;     /* A: escaped neighbours */
    int nc;      /* n: candidates */
    uint32_t c[4];
} view;

static inline view look(const uint16_t *row, const uint16_t *up_row, const uint16_t *up2_row,
                        const uint8_t *esc, const uint8_t *esc_up, int64_t x, int64_t y, int64_t width) {
    uint32_t left, up, up_right, up_left;
    int act;
    if (y == 0) {
        left = x > 0 ? row[x - 1] : 0;
        up = up_right = up_left = left;
        act = x > 0 ? esc[x - 1] : 0;
    } else {
        up = up_row[x];
        act = esc_up[x];
        if (x > 0) {
            left = row[x - 1];
            up_left = up_row[x - 1];
            act += esc[x - 1] + esc_up[x - 1];
        } else {
            left = up_left = up;
        }
        if (x < width - 1) {
            up_right = up_row[x + 1];
            act += esc_up[x + 1];
        } else {
            up_right = up;
        }
    }
    uint32_t far_left = x >= 2 ? row[x - 2] : left;
    uint32_t far_up = y >= 2 ? up2_row[x] : up;
    int mask = (left == up) | (left == up_right) << 1 | (left == up_left) << 2 | (up == up_right) << 3 |
               (up == up_left) << 4 | (up_right == up_left) << 5;
    int far = (far_left == left) | (far_up == up) << 1;
    /* 3.2 The candidates, without a branch on the neighbours: slot j holds the j-th new
     * value; slots at or past nc hold leftovers that are never used. */
    int new_up = up != left;
    int new_up_right = up_right != left && up_right != up;
    int new_up_left = up_left != left && up_left != up && up_left != up_right;
    view v;
    v.pattern = (mask * 5 + act) * 4 + far;
    v.act = act;
    v.nc = 1 + new_up + new_up_right + new_up_left;
    v.c[0] = left;
    v.c[1] = new_up ? up : (new_up_right ? up_right : up_left);
    v.c[2] = new_up && new_up_right ? up_right : up_left;
    v.c[3] = up_left;
    return v;
}

/* 5. The range coder: rangecoder.h, shared with coding 2. A bit in a cell is coded
 * with the cell's probability, then the cell adapts. */
static inline void put(kmz_range_encoder *e, model *m, int cell, int bit) {
    kmz_range_put(e, m->probs[cell], bit);
    adapt(m, cell, bit);
}

static inline int get(kmz_range_decoder *d, model *m, int cell) {
    int bit = kmz_range_get(d, m->probs[cell]);
    adapt(m, cell, bit);
    return bit;
}

/* 4. The pixel loop ------------------------------------------------------------------
 *
 * 4.2 One pixel, n candidates c[0..n-1] (a `1` means "not this one"):
 *
 *   A >= 2:  escape? -1-> escape (4.3)
 *              |0
 *              `-> c[0]? -0-> c[0]  ...  c[n-2]? -0-> c[n-2]; all 1: c[n-1]
 *   A < 2:   c[0]? -0-> c[0]  ...  c[n-1]? -0-> c[n-1]; all 1: escape (4.3)
 *
 * 4.3 An escape is a rank r in S_L with the candidates left out:
 *
 *   .- r, e = its bit length ---------------------------------------------------.
 *   | bucket: e in unary           | mantissa: the 2 bits  | the rest: e - 3     |
 *   | 1 ... 1 0 (no 0 when e = b), | below the leading 1,  | bits, uniform (5.2) |
 *   | in cells by (A, n)           | in cells by (e, node) |                     |
 *   `---------------------------------------------------------------------------'
 */
static inline int bucket_cell(const view *v) {
    return BUCKET_BASE + (v->act * 4 + v->nc - 1) * 16;
}

int kmz_ctx_encode(const uint16_t *indices, int64_t width, int64_t height, const uint8_t *palette,
                   int64_t k, int channels, uint8_t **payload, int64_t *size, int64_t *pixel, kmz_poll *poll) {
    model m;
    int status = model_init(&m, palette, k, channels);
    uint8_t *esc_rows = malloc((size_t)(2 * width));
    kmz_range_encoder e = KMZ_RANGE_ENCODER((width * height) / 4 + 4096);
    e.out = malloc((size_t)e.capacity);
    if (!esc_rows || !e.out)
        status = KMZ_NO_MEMORY;
    for (int64_t y = 0; y < height && status == KMZ_OK; y++) {
        const uint16_t *row = indices + y * width;
        const uint16_t *up_row = y > 0 ? row - width : row, *up2_row = y > 1 ? row - 2 * width : row;
        uint8_t *esc = esc_rows + (y & 1) * width, *esc_up = esc_rows + ((y + 1) & 1) * width;
        for (int64_t x = 0; x < width; x++) {
            uint32_t value = row[x];
            if (value >= k) {
                *pixel = y * width + x;
                status = KMZ_CTX_INDEX;
                break;
            }
            if (kmz_poll_tick(poll, 1)) {
                status = KMZ_INTERRUPTED;
                break;
            }
            if (kmz_range_reserve(&e, PIXEL_BYTES) != 0) {
                status = KMZ_NO_MEMORY;
                break;
            }
            view v = look(row, up_row, up2_row, esc, esc_up, x, y, width);
            /* The candidates are distinct: at most one matches. */
            int hit = -1;
            for (int j = 0; j < v.nc && hit < 0; j++)
                hit = v.c[j] == value ? j : -1;
            int first = v.act >= ESCAPE_FIRST;
            if (first)
                put(&e, &m, ESCAPE_BASE + v.pattern, hit < 0);
            if (hit >= 0 || !first) {
                /* After "escape? no" the last candidate is implied. */
                int last = first ? v.nc - 1 : v.nc;
                for (int j = 0; j < last; j++) {
                    put(&e, &m, CANDIDATE_BASE + v.pattern * 4 + j, j != hit);
                    if (j == hit)
                        break;
                }
            }
            esc[x] = hit < 0;
            if (hit >= 0)
                continue;
            uint32_t c0 = v.c[0];
            if (!m.filled[c0])
                fill(&m, c0);
            /* 4.3, the other way round: r = rank(v) - #{candidates ranked before v}. */
            const uint16_t *rank = m.rank + c0 * k;
            int64_t r = rank[value];
            r -= (rank[c0] < r) + (v.nc > 1 && rank[v.c[1]] < r) + (v.nc > 2 && rank[v.c[2]] < r) +
                 (v.nc > 3 && rank[v.c[3]] < r);
            int length = 0;
            while (r >> length)
                length++;
            int bucket = bucket_cell(&v);
            for (int s = 0; s < m.bits; s++) {
                put(&e, &m, bucket + s, length > s);
                if (length <= s)
                    break;
            }
            int node = 1;
            for (int b = 0; b < length - 1 && b < MODELLED_MANTISSA; b++) {
                int bit = (int)(r >> (length - 2 - b)) & 1;
                put(&e, &m, MANTISSA_BASE + length * 4 + node, bit);
                node = 2 * node + bit;
            }
            int rest = length - 1 - MODELLED_MANTISSA;
            if (rest > 0)
                kmz_range_put_uniform(&e, (uint64_t)r & (((uint64_t)1 << rest) - 1), rest);
        }
    }
    if (status == KMZ_OK) {
        /* 5.3 End: the capacity check of the last pixel left room for these. */
        kmz_range_finish(&e);
        *payload = e.out;
        *size = e.pos;
    } else {
        free(e.out);
    }
    free(esc_rows);
    model_free(&m);
    return status;
}

/* The decoder keeps the last three rows of indices and two of escape flags, in turns.
 * They grow with the first row, so that a payload declaring a huge width but holding
 * few pixels costs little. */
struct kmz_ctx_decoder {
    model model;
    kmz_range_decoder coder;
    int64_t width, height;
    int64_t x, y, done; /* the next pixel */
    int64_t columns;    /* allocated entries of each row */
    uint16_t *rows[3];  /* rows y, y-1, y-2 */
    uint8_t *esc[2];    /* rows y, y-1 */
    int status;         /* the first positive status met, final */
    int64_t failed_at;
};

kmz_ctx_decoder *kmz_ctx_decoder_new(const uint8_t *payload, int64_t size, const uint8_t *palette,
                                     int64_t k, int channels, int64_t width, int64_t height) {
    kmz_ctx_decoder *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    if (model_init(&d->model, palette, k, channels) != KMZ_OK) {
        kmz_ctx_decoder_free(d);
        return NULL;
    }
    d->coder.data = payload;
    d->coder.end = size;
    d->width = width;
    d->height = height;
    return d;
}

void kmz_ctx_decoder_free(kmz_ctx_decoder *d) {
    if (!d)
        return;
    model_free(&d->model);
    for (int i = 0; i < 3; i++)
        free(d->rows[i]);
    for (int i = 0; i < 2; i++)
        free(d->esc[i]);
    free(d);
}

/* Rows of at least `columns` entries (grown by doubling, up to the width). */
static int grow_rows(kmz_ctx_decoder *d, int64_t columns) {
    if (columns <= d->columns)
        return KMZ_OK;
    columns = columns < 2 * d->columns ? 2 * d->columns : columns;
    columns = columns < d->width ? columns : d->width;
    for (int i = 0; i < 3; i++) {
        uint16_t *grown = realloc(d->rows[i], (size_t)columns * sizeof *grown);
        if (!grown)
            return KMZ_NO_MEMORY;
        d->rows[i] = grown;
    }
    for (int i = 0; i < 2; i++) {
        uint8_t *grown = realloc(d->esc[i], (size_t)columns);
        if (!grown)
            return KMZ_NO_MEMORY;
        d->esc[i] = grown;
    }
    d->columns = columns;
    return KMZ_OK;
}

static int fail(kmz_ctx_decoder *d, int status, int64_t at, int64_t *pixel) {
    d->status = status;
    d->failed_at = *pixel = at;
    return status;
}

int kmz_ctx_decode(kmz_ctx_decoder *d, uint16_t *indices, int64_t count, int64_t *pixel, kmz_poll *poll) {
    if (d->status) {
        *pixel = d->failed_at;
        return d->status;
    }
    int64_t total = d->width * d->height, width = d->width;
    count = count < total - d->done ? count : total - d->done;
    /* Until the first row is complete, rows need only the columns reached. */
    int status = grow_rows(d, d->y > 0 || d->x + count >= width ? width : d->x + count);
    if (status != KMZ_OK)
        return status;
    kmz_range_decoder c = d->coder;
    if (d->done == 0 && c.pos == 0) {
        /* 5.1 Start (check 11). */
        int start = kmz_range_start(&c);
        if (start != KMZ_RANGE_OK)
            return fail(d, start == KMZ_RANGE_TRUNCATED ? KMZ_CTX_TRUNCATED : KMZ_CTX_BAD_START, 0, pixel);
    }
    model *m = &d->model;
    int64_t k = m->k, x = d->x, y = d->y, i = d->done, stop = d->done + count;
    uint16_t *row = d->rows[y % 3], *up_row = d->rows[(y + 2) % 3], *up2_row = d->rows[(y + 1) % 3];
    uint8_t *esc = d->esc[y & 1], *esc_up = d->esc[(y + 1) & 1];
    for (; i < stop; i++) {
        if (kmz_poll_tick(poll, 1)) {
            status = KMZ_INTERRUPTED;
            break;
        }
        view v = look(row, up_row, up2_row, esc, esc_up, x, y, width);
        int hit = -1, first = v.act >= ESCAPE_FIRST;
        if (!first || !get(&c, m, ESCAPE_BASE + v.pattern)) {
            int last = first ? v.nc - 1 : v.nc;
            for (int j = 0; j < last; j++) {
                if (!get(&c, m, CANDIDATE_BASE + v.pattern * 4 + j)) {
                    hit = j;
                    break;
                }
            }
            if (hit < 0 && first)
                hit = v.nc - 1;
        }
        uint32_t value;
        if (hit >= 0) {
            if (c.pos > c.end)
                return fail(d, KMZ_CTX_TRUNCATED, i, pixel);
            value = v.c[hit];
        } else {
            int bucket = bucket_cell(&v), length = 0;
            while (length < m->bits && get(&c, m, bucket + length))
                length++;
            int64_t r = length > 0;
            for (int b = 0; b < length - 1 && b < MODELLED_MANTISSA; b++)
                r = 2 * r + get(&c, m, (int)(MANTISSA_BASE + length * 4 + r));
            int rest = length - 1 - MODELLED_MANTISSA;
            if (rest > 0)
                r = r << rest | (int64_t)kmz_range_get_uniform(&c, rest);
            /* Checks 12, then 13: in stream order, a read past the end comes first. */
            if (c.pos > c.end)
                return fail(d, KMZ_CTX_TRUNCATED, i, pixel);
            if (r >= k - v.nc)
                return fail(d, KMZ_CTX_RANK, i, pixel);
            uint32_t c0 = v.c[0];
            if (!m->filled[c0])
                fill(m, c0);
            /* 4.3 The index: the smallest R >= r with R = r + #{i : q_i <= R}, reached
             * by iterating from R = r. Absent candidates rank k, past every R. */
            const uint16_t *rank = m->rank + c0 * k;
            int64_t q0 = rank[c0], q1 = v.nc > 1 ? rank[v.c[1]] : k, q2 = v.nc > 2 ? rank[v.c[2]] : k,
                    q3 = v.nc > 3 ? rank[v.c[3]] : k;
            for (int64_t base = r;;) {
                int64_t moved = base + (q0 <= r) + (q1 <= r) + (q2 <= r) + (q3 <= r);
                if (moved == r)
                    break;
                r = moved;
            }
            value = m->order[c0 * k + r];
        }
        indices[i - d->done] = (uint16_t)value;
        row[x] = (uint16_t)value;
        esc[x] = hit < 0;
        if (++x == width) {
            x = 0;
            y++;
            uint16_t *oldest = up2_row;
            up2_row = up_row;
            up_row = row;
            row = oldest;
            uint8_t *spare = esc_up;
            esc_up = esc;
            esc = spare;
        }
    }
    d->coder = c;
    d->x = x;
    d->y = y;
    d->done = i;
    *pixel = i;
    /* Check 14: the last pixel must end the payload. */
    if (status == KMZ_OK && i == total && c.pos != c.end)
        return fail(d, KMZ_CTX_TRAILING, i, pixel);
    return status;
}
