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
 * numbers. Header-only; no allocation except in bench_clustered_gen's
 * caller-visible output arrays (the caller owns them). */
#ifndef VS_BENCH_CLUSTERED_H
#define VS_BENCH_CLUSTERED_H

#include <math.h>
#include <stdint.h>
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

#endif
