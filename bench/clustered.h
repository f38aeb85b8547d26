/* clustered.h - synthetic face embeddings for the index benchmarks: data
 * that behaves like a face embedder's output rather than uniform noise.
 *
 * Real dlib embeddings (bench/face_dist.py on LFW dev) sit in a narrow cone
 * (the norm of their mean is 0.92): two different people have cosine 0.84
 * +- 0.034, two photos of one person 0.95 +- 0.018. A point here is
 *
 *     normalise(w_global * g + w_person * c_person + w_noise * s_face * n_face)
 *
 * with g one fixed unit direction (the cone's axis), c and n Gaussian with a
 * per-coordinate sd decaying as (1+d)^(-alpha/2) (real embeddings use few
 * effective dimensions, which is what widens the different-person spread)
 * and s_face lognormal (photos differ in how far they stray from the person).
 * People have 1..max_faces faces (skewed to few: crawls hold many people
 * seen once) and appear shuffled, as a crawl brings them.
 *
 * Deterministic: everything derives from the seed by splitmix64, so the C
 * benchmark and bench_clustered's file (read by bench/peers.py) hold the same
 * numbers. Header-only; the output arrays are the caller's. */
#ifndef VS_BENCH_CLUSTERED_H
#define VS_BENCH_CLUSTERED_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct bench_clustered_params {
    uint64_t seed;
    int dim;
    double w_global;     /* weight of the shared direction (sets the different-person mean) */
    double w_person;     /* weight of the person's centre (same minus different mean) */
    double w_noise;      /* weight of a face's own deviation (1 - same mean) */
    double alpha;        /* spectrum decay of c and n (sets the different-person sd) */
    double noise_spread; /* sd of log s_face (sets the same-person sd) */
    int max_faces;       /* people have 1..max_faces faces */
} bench_clustered_params;

/* Parameters fitted to dlib on LFW dev (bench/results/index_peers.txt shows
 * the fit side by side); dim may differ, the shape is kept. */
static inline bench_clustered_params bench_clustered_defaults(int dim) {
    return (bench_clustered_params){.seed = 0x5EEDFACEull, .dim = dim, .w_global = 0.915, .w_person = 0.336,
                                    .w_noise = 0.221, .alpha = 0.85, .noise_spread = 0.2, .max_faces = 50};
}

/* splitmix64: a good 64-bit stream from any state, so per-person and per-face
 * streams can be derived from (seed, index) without storing them. */
static inline uint64_t bench_cl_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in (0,1), never 0 (Box-Muller takes its log). */
static inline double bench_cl_unif(uint64_t *s) { return ((double)(bench_cl_next(s) >> 11) + 0.5) / 9007199254740992.0; }

/* One standard normal (Box-Muller, the cosine half). */
static inline double bench_cl_gauss(uint64_t *s) {
    double u = bench_cl_unif(s), v = bench_cl_unif(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* A stream derived from the seed and a (kind, index) pair. */
static inline uint64_t bench_cl_stream(const bench_clustered_params *p, uint64_t kind, uint64_t i) {
    uint64_t s = p->seed ^ (kind * 0xD1B54A32D192ED03ull) ^ (i * 0x8CB92BA72F3D8DD7ull);
    bench_cl_next(&s);
    return s;
}

/* out[dim] += w * (unit-norm anisotropic Gaussian from stream s). */
static inline void bench_cl_add_aniso(const bench_clustered_params *p, uint64_t s, double w, double *out) {
    double tmp[4096], n2 = 0;
    int dim = p->dim > 4096 ? 4096 : p->dim;
    for (int d = 0; d < dim; d++) {
        tmp[d] = bench_cl_gauss(&s) * pow(1.0 + d, -p->alpha / 2);
        n2 += tmp[d] * tmp[d];
    }
    double k = w / sqrt(n2);
    for (int d = 0; d < dim; d++) out[d] += k * tmp[d];
}

/* The vector of one face of `person`; face_key picks its own deviation. */
static inline void bench_clustered_face(const bench_clustered_params *p, int32_t person, uint64_t face_key, float *out) {
    double v[4096] = {0}, n2 = 0;
    int dim = p->dim > 4096 ? 4096 : p->dim;
    /* g: an isotropic unit vector, the same for every face */
    uint64_t gs = bench_cl_stream(p, 1, 0);
    double g[4096], g2 = 0;
    for (int d = 0; d < dim; d++) {
        g[d] = bench_cl_gauss(&gs);
        g2 += g[d] * g[d];
    }
    for (int d = 0; d < dim; d++) v[d] = p->w_global * g[d] / sqrt(g2);
    bench_cl_add_aniso(p, bench_cl_stream(p, 2, (uint64_t)person), p->w_person, v);
    uint64_t fs = bench_cl_stream(p, 3, face_key);
    double scale = exp(p->noise_spread * bench_cl_gauss(&fs) - p->noise_spread * p->noise_spread / 2);
    bench_cl_add_aniso(p, bench_cl_next(&fs), p->w_noise * scale, v);
    for (int d = 0; d < dim; d++) n2 += v[d] * v[d];
    for (int d = 0; d < dim; d++) out[d] = (float)(v[d] / sqrt(n2));
}

/* Assigns n points to people of 1..max_faces faces, shuffled: person[n].
 * Returns the number of people. */
static inline int32_t bench_clustered_people(const bench_clustered_params *p, int64_t n, int32_t *person) {
    uint64_t s = bench_cl_stream(p, 4, 0);
    int32_t who = 0;
    for (int64_t i = 0; i < n; who++) {
        double u = bench_cl_unif(&s);
        int64_t size = 1 + (int64_t)((p->max_faces - 1) * u * u * u + 0.5);
        for (int64_t k = 0; k < size && i < n; k++) person[i++] = who;
    }
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = (int64_t)(bench_cl_next(&s) % (uint64_t)(i + 1));
        int32_t t = person[i];
        person[i] = person[j];
        person[j] = t;
    }
    return who;
}

/* Fills vecs[n*dim] and person[n] (caller-owned): the base set. */
static inline int32_t bench_clustered_gen(const bench_clustered_params *p, int64_t n, float *vecs, int32_t *person) {
    int32_t people = bench_clustered_people(p, n, person);
    for (int64_t i = 0; i < n; i++) bench_clustered_face(p, person[i], (uint64_t)i, vecs + i * p->dim);
    return people;
}

/* Fills q query vectors: new photos (never in the base set) of people drawn
 * from the base set's faces, so a query has 0..49 true mates, as a search for
 * someone does. qperson[q] gets whom each shows. */
static inline void bench_clustered_queries(const bench_clustered_params *p, const int32_t *person, int64_t n, int64_t q,
                                           float *out, int32_t *qperson) {
    uint64_t s = bench_cl_stream(p, 5, 0);
    for (int64_t j = 0; j < q; j++) {
        qperson[j] = person[bench_cl_next(&s) % (uint64_t)n];
        bench_clustered_face(p, qperson[j], (uint64_t)(n + j) | (1ull << 62), out + j * p->dim);
    }
}

/* ---- shared by bench_clustered and bench_index_search -------------------- */

static inline int bench_cl_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double bench_cl_dotf(const float *a, const float *b, int dim) {
    double s = 0;
    for (int d = 0; d < dim; d++) s += (double)a[d] * b[d];
    return s;
}

/* Prints mean, sd and percentiles of x[n] (sorted here) as a JSON object. */
static inline void bench_cl_print_stats(const char *name, double *x, int64_t n) {
    if (n == 0) {
        printf("\"%s\":{\"n\":0}", name);
        return;
    }
    qsort(x, (size_t)n, sizeof *x, bench_cl_cmp_double);
    double m = 0, v = 0;
    for (int64_t i = 0; i < n; i++) m += x[i];
    m /= (double)n;
    for (int64_t i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
#define PCT(p) x[(int64_t)((p) / 100.0 * (double)(n - 1))]
    printf("\"%s\":{\"n\":%lld,\"mean\":%.4f,\"sd\":%.4f,\"p1\":%.4f,\"p5\":%.4f,\"p50\":%.4f,\"p95\":%.4f,\"p99\":%.4f}",
           name, (long long)n, m, sqrt(v / (double)n), PCT(1), PCT(5), PCT(50), PCT(95), PCT(99));
#undef PCT
}

/* Prints the {"bench":"clustered",...} line: same-person cosines (pairs
 * within a window of the first points) and different-person cosines of
 * random pairs; bounded counts so 1M points stay quick. Returns -1 on NOMEM. */
static inline int bench_clustered_print_dist(const bench_clustered_params *p, const float *v, const int32_t *who,
                                             int64_t n, int32_t people) {
    enum { CAP = 200000 };
    double *same = malloc(CAP * sizeof *same), *diff = malloc(CAP * sizeof *diff);
    if (!same || !diff) {
        free(same);
        free(diff);
        return -1;
    }
    int64_t ns = 0, nd = 0;
    uint64_t s = 12345;
    int64_t window = n < 20000 ? n : 20000; /* pairs within the first points: O(window^2) bounded */
    for (int64_t i = 0; i < window && ns < CAP; i++)
        for (int64_t j = i + 1; j < window && ns < CAP; j++)
            if (who[i] == who[j]) same[ns++] = bench_cl_dotf(v + i * p->dim, v + j * p->dim, p->dim);
    for (int tries = 0; nd < CAP && tries < 4 * CAP; tries++) {
        int64_t i = (int64_t)(bench_cl_next(&s) % (uint64_t)n), j = (int64_t)(bench_cl_next(&s) % (uint64_t)n);
        if (who[i] != who[j]) diff[nd++] = bench_cl_dotf(v + i * p->dim, v + j * p->dim, p->dim);
    }
    printf("{\"bench\":\"clustered\",\"points\":%lld,\"dim\":%d,\"people\":%d,\"w_global\":%.3f,\"w_person\":%.3f,"
           "\"w_noise\":%.3f,\"alpha\":%.3f,\"noise_spread\":%.3f,\"max_faces\":%d,",
           (long long)n, p->dim, people, p->w_global, p->w_person, p->w_noise, p->alpha, p->noise_spread, p->max_faces);
    bench_cl_print_stats("same", same, ns);
    putchar(',');
    bench_cl_print_stats("diff", diff, nd);
    printf("}\n");
    fflush(stdout);
    free(same);
    free(diff);
    return 0;
}

/* Writes the "VSCL" file bench/peers.py reads (layout in clustered.c's
 * header comment); 0 or -1 on any I/O failure. */
static inline int bench_clustered_write(const char *path, const bench_clustered_params *p, const float *v,
                                        const int32_t *who, int64_t n, const float *qv, const int32_t *qwho,
                                        int64_t q, int32_t people) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint32_t h[5] = {1, (uint32_t)n, (uint32_t)q, (uint32_t)p->dim, (uint32_t)people};
    int ok = fwrite("VSCL", 1, 4, f) == 4 && fwrite(h, sizeof h, 1, f) == 1 &&
             fwrite(v, sizeof *v * (size_t)p->dim, (size_t)n, f) == (size_t)n &&
             fwrite(who, sizeof *who, (size_t)n, f) == (size_t)n &&
             fwrite(qv, sizeof *qv * (size_t)p->dim, (size_t)q, f) == (size_t)q &&
             fwrite(qwho, sizeof *qwho, (size_t)q, f) == (size_t)q;
    return fclose(f) != 0 || !ok ? -1 : 0;
}

#endif
