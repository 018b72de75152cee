/* Coding 2 ("mix") of kmz: the palette, then the indices of an image coded bit by bit,
 * each bit's probability mixed from several context models and a 2-D match model, all
 * range coded (spec/CODING2.md). Plain C99, no Python;
 * entropy.py is the driver. All arithmetic is on integers, so every platform writes
 * and reads the same bytes.
 *
 * The decoder is a state that decodes the pixels a chunk at a time, in row-major
 * order. Unlike coding 1 it reads back anywhere in the image (the match model), so
 * each call is given the whole image decoded so far: the caller may move and grow
 * that buffer between calls, as the payload proves to hold the pixels.
 *
 * Kernels return KMZ_OK (0), a poll.h status (negative) or one of the statuses below
 * (positive), and free whatever they allocated before returning.
 */
#ifndef KMZ_MIX_H
#define KMZ_MIX_H

#include <stdint.h>

#include "poll.h"

#define KMZ_MIX_MAX_K 4096 /* spec/CODING2.md 2: at most 12 bits per pixel */

/* Statuses of a payload that breaks spec/CODING2.md 7, and of misuse. */
#define KMZ_MIX_TRUNCATED 1 /* the payload ends too soon */
#define KMZ_MIX_TRAILING 2  /* bytes left after the last pixel */
#define KMZ_MIX_BAD_START 3 /* the range coder's first five bytes */
#define KMZ_MIX_RANGE 4     /* a decoded index not below K */
#define KMZ_MIX_INDEX 5     /* encoder: an index not below K */

typedef struct kmz_mix_decoder kmz_mix_decoder;

/* Codes the palette (k x channels bytes, channels 3 or 4, 1 <= k <= KMZ_MIX_MAX_K) and
 * `indices` (height x width, row-major, each below k). The payload holds the palette
 * in an order of the encoder's choosing, and the indices to match. On KMZ_OK, *payload
 * is a malloc'd block of *size bytes that the caller frees; on KMZ_MIX_INDEX, *pixel
 * is the offending one. */
int kmz_mix_encode(const uint16_t *indices, int64_t width, int64_t height, const uint8_t *palette,
                   int64_t k, int channels, uint8_t **payload, int64_t *size, int64_t *pixel, kmz_poll *poll);

/* A decoder of width x height pixels and a palette of k entries of `channels` bytes
 * over the `size` bytes at `payload`, which must stay in place until the decoder is
 * freed; NULL when out of memory. */
kmz_mix_decoder *kmz_mix_decoder_new(const uint8_t *payload, int64_t size, int64_t k, int channels, int64_t width,
                                     int64_t height);

void kmz_mix_decoder_free(kmz_mix_decoder *decoder);

/* Decodes the palette, the payload's start, into `palette` (k x channels bytes):
 * KMZ_OK or a positive status, final as below. */
int kmz_mix_decode_palette(kmz_mix_decoder *decoder, uint8_t *palette);

/* Decodes the next `count` pixels (at most those left) into `image`, which holds the
 * pixels decoded by earlier calls at their row-major places, the new ones going
 * after them. *pixel is then the number of pixels decoded so far, or the pixel where
 * a positive status was found. Such a status is final: later calls repeat it. */
int kmz_mix_decode(kmz_mix_decoder *decoder, uint16_t *image, int64_t count, int64_t *pixel, kmz_poll *poll);

#endif
