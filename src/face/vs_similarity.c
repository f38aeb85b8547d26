/* vs_similarity.c - dot products over 1024-d face descriptors. vs_dot runs
 * once per (query, candidate) pair in exhaustive search and in HNSW distance
 * evaluation, so it is the hot loop of the search path. */
#include "vs_similarity.h"

#include <math.h>

/* Eight independent accumulators: without -ffast-math GCC may not reorder a
 * single float sum, but it does map 8 separate lanes onto two SSE (or one AVX)
 * registers; the lanes are summed pairwise at the end. */
float vs_dot(const float *a, const float *b, int n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += a[i + j] * b[i + j];
    float tail = 0.0f;
    for (; i < n; i++)
        tail += a[i] * b[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) +
           tail;
}

/* Norm in double: a descriptor's squared entries can span many orders of
 * magnitude and this runs once per vector, not per comparison. */
void vs_l2_normalize(float *v, int n) {
    double ss = 0.0;
    for (int i = 0; i < n; i++)
        ss += (double)v[i] * v[i];
    if (!(ss > 0.0) || !isfinite(ss))
        return;
    double inv = 1.0 / sqrt(ss);
    for (int i = 0; i < n; i++)
        v[i] = (float)(v[i] * inv);
}

/* dot / (|a| |b|), clamped to [-1,1] against rounding. */
float vs_cosine(const float *a, const float *b, int n) {
    double na = vs_dot(a, a, n), nb = vs_dot(b, b, n);
    if (!(na > 0.0) || !(nb > 0.0))
        return 0.0f;
    double c = vs_dot(a, b, n) / sqrt(na * nb);
    if (c > 1.0)
        c = 1.0;
    if (c < -1.0)
        c = -1.0;
    return (float)c;
}
