/* Coding 1 ("ctx") of kmz: the indices of an image coded with a 2-D adaptive context
 * model and a binary range coder (spec/CODING.md). Plain C99, no Python; entropy.py
 * is the driver. All arithmetic is on integers, so every platform writes and reads
 * the same bytes.
 *
 * The encoder codes a whole image in one call. The decoder is a state that decodes
 * the pixels a chunk at a time, in row-major order, into buffers the caller supplies:
 * it keeps the rows its contexts need, so the caller may grow its image as the
 * payload proves to hold pixels, and never needs the whole image up front.
 *
 * Kernels return KMZ_OK (0), a poll.h status (negative: KMZ_INTERRUPTED when
 * `poll` asked to stop, KMZ_NO_MEMORY) or one of the statuses below (positive), and
 * free whatever they allocated before returning.
 */
#ifndef KMZ_CTX_H
#define KMZ_CTX_H

#include <stdint.h>

#include "poll.h"

#define KMZ_CTX_MAX_K 4096 /* spec/CODING.md 2: the rank tables are K x K */

/* Statuses of a payload that breaks spec/CODING.md 6, and of misuse. */
#define KMZ_CTX_TRUNCATED 1 /* checks 9 and 12: the payload ends too soon */
#define KMZ_CTX_TRAILING 2  /* check 14: bytes left after the last pixel */
#define KMZ_CTX_BAD_START 3 /* check 11 */
#define KMZ_CTX_RANK 4      /* check 13: an escape rank past the palette */
#define KMZ_CTX_INDEX 5     /* encoder: an index not below K */

typedef struct kmz_ctx_decoder kmz_ctx_decoder;

/* Codes `indices` (height x width, row-major, each below k) of the palette (k x
 * channels bytes, channels 3 for RGB or 4 for RGBA, 1 <= k <= KMZ_CTX_MAX_K). On KMZ_OK, *payload is a malloc'd block of
 * *size bytes that the caller frees; on KMZ_CTX_INDEX, *pixel is the offending one. */
int kmz_ctx_encode(const uint16_t *indices, int64_t width, int64_t height, const uint8_t *palette,
                   int64_t k, int channels, uint8_t **payload, int64_t *size, int64_t *pixel, kmz_poll *poll);

/* A decoder of width x height pixels over the `size` bytes at `payload`, which must
 * stay in place until the decoder is freed; NULL when out of memory. */
kmz_ctx_decoder *kmz_ctx_decoder_new(const uint8_t *payload, int64_t size, const uint8_t *palette,
                                     int64_t k, int channels, int64_t width, int64_t height);

void kmz_ctx_decoder_free(kmz_ctx_decoder *decoder);

/* Decodes the next `count` pixels (at most those left) into `indices`; *pixel is
 * then the number of pixels decoded so far, or the pixel (row-major number) where a
 * positive status was found. Such a status is final: later calls repeat it. */
int kmz_ctx_decode(kmz_ctx_decoder *decoder, uint16_t *indices, int64_t count, int64_t *pixel,
                   kmz_poll *poll);

/* The palette indices by distance to entry `ref` (squared RGB, or for RGBA the
 * composite distance), ties by index: the order S_ref of spec/CODING.md 4.3, into
 * order[0..k-1]. */
int kmz_ctx_order(const uint8_t *palette, int64_t k, int channels, int64_t ref, uint16_t *order);

#endif
