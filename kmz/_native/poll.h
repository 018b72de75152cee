/* Interrupt polling for kernels that run without the GIL.
 *
 * The kernels (kmeans.c, histogram.c, ctx.c) know nothing of Python: they call
 * kmz_poll() every so often with the work done since the last call, and stop with
 * KMZ_INTERRUPTED when it returns nonzero. The module layer supplies `check`, which
 * takes the GIL back for a moment and asks Python whether a signal (Ctrl-C) is
 * pending; a kernel called with a NULL check is never interrupted.
 */
#ifndef KMZ_POLL_H
#define KMZ_POLL_H

#include <stdint.h>

#define KMZ_OK 0
#define KMZ_INTERRUPTED (-1)
#define KMZ_NO_MEMORY (-2)

/* Work units (about one distance or one coded decision each) between checks: some
 * tens of microseconds of work, so an interrupt is answered at once and the checks
 * cost nothing measurable. */
#define KMZ_POLL_EVERY (1 << 18)

typedef struct {
    int (*check)(void *context); /* nonzero: stop */
    void *context;
    int64_t budget; /* work left before the next check */
} kmz_poll;

/* Nonzero when the kernel must stop. */
static inline int kmz_poll_tick(kmz_poll *poll, int64_t work) {
    if (poll == 0 || poll->check == 0)
        return 0;
    poll->budget -= work;
    if (poll->budget > 0)
        return 0;
    poll->budget = KMZ_POLL_EVERY;
    return poll->check(poll->context);
}

#endif
