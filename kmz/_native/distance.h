/* Squared distances between points (float32) and centres (float64) of `dims` (3 or 4)
 * coordinates, shared by the k-means kernels and the grid. */
#ifndef KMZ_DISTANCE_H
#define KMZ_DISTANCE_H

#include <stdint.h>

/* Squared distance between two points of `dims` (3 or 4) coordinates: float32
 * arithmetic, as the points are. The 3-D sum is written out as before, term for term,
 * so that RGB palettes stay bit for bit what they were. */
static inline float point_distance2(const float *a, int64_t i, const float *b, int64_t j, int dims) {
    const float *p = a + dims * i, *q = b + dims * j;
    float d0 = p[0] - q[0], d1 = p[1] - q[1], d2 = p[2] - q[2];
    if (dims == 3)
        return d0 * d0 + d1 * d1 + d2 * d2;
    float d3 = p[3] - q[3];
    return d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3;
}

/* Squared distance from a point to a centre, in float64. */
static inline double centre_distance2(const float *points, int64_t i, const double *centres, int64_t c, int dims) {
    const float *p = points + dims * i;
    const double *q = centres + dims * c;
    double d0 = p[0] - q[0], d1 = p[1] - q[1], d2 = p[2] - q[2];
    if (dims == 3)
        return d0 * d0 + d1 * d1 + d2 * d2;
    double d3 = p[3] - q[3];
    return d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3;
}

static inline double centres_distance2(const double *a, int64_t i, const double *b, int64_t j, int dims) {
    const double *p = a + dims * i, *q = b + dims * j;
    double d0 = p[0] - q[0], d1 = p[1] - q[1], d2 = p[2] - q[2];
    if (dims == 3)
        return d0 * d0 + d1 * d1 + d2 * d2;
    double d3 = p[3] - q[3];
    return d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3;
}

#endif
