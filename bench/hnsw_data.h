/* hnsw_data.h - synthetic face-like embeddings for the HNSW test and bench:
 * clustered, not uniform noise. 32 "populations" (unrelated directions), each
 * person's centre drawn around one of them (centres of one population have
 * cosine ~0.4, of different populations ~0), each person 1-20 faces around
 * the centre (same-person cosine ~0.92). Unit vectors, dot = cosine, like the
 * dlib embedder's output. Header-only, deterministic for a seed. */
#ifndef VS_HNSW_DATA_H
#define VS_HNSW_DATA_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HD_POPULATIONS 32

typedef struct hd_rng {
    uint64_t s;
} hd_rng;

/* xorshift64* step. */
static inline uint64_t hd_next(hd_rng *r) {
    r->s ^= r->s >> 12, r->s ^= r->s << 25, r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ull;
}

/* Uniform in (0, 1]. */
static inline double hd_unif(hd_rng *r) { return ((double)(hd_next(r) >> 11) + 1.0) / 9007199254740992.0; }

/* Standard normal (Box-Muller, one of the pair). */
static inline double hd_gauss(hd_rng *r) {
    return sqrt(-2.0 * log(hd_unif(r))) * cos(6.283185307179586 * hd_unif(r));
}

/* Scales v to unit length. */
static inline void hd_normalise(float *v, int dim) {
    double n2 = 0;
    for (int d = 0; d < dim; d++) n2 += (double)v[d] * v[d];
    float inv = (float)(1.0 / sqrt(n2 > 0 ? n2 : 1));
    for (int d = 0; d < dim; d++) v[d] *= inv;
}

/* out = normalise(base + sigma * gaussian) (base NULL: pure gaussian). */
static inline void hd_around(hd_rng *r, const float *base, double sigma, float *out, int dim) {
    for (int d = 0; d < dim; d++) out[d] = (float)((base ? base[d] : 0) + sigma * hd_gauss(r));
    hd_normalise(out, dim);
}

/* The generator: populations and the current person's centre. */
typedef struct hd_gen {
    hd_rng r;
    int dim;
    float *pop;        /* HD_POPULATIONS * dim */
    float *centre;     /* dim */
    int left;          /* faces left for the current person */
    uint32_t person;
} hd_gen;

/* Sets up a generator; returns 0 on NOMEM. Free with hd_free. */
static inline int hd_init(hd_gen *g, int dim, uint64_t seed) {
    memset(g, 0, sizeof *g);
    g->r.s = seed ? seed : 1;
    g->dim = dim;
    g->pop = malloc(sizeof(float) * (size_t)dim * HD_POPULATIONS);
    g->centre = malloc(sizeof(float) * (size_t)dim);
    if (!g->pop || !g->centre) return 0;
    for (int p = 0; p < HD_POPULATIONS; p++) hd_around(&g->r, NULL, 1.0, g->pop + (size_t)p * dim, dim);
    g->person = UINT32_MAX;
    return 1;
}

static inline void hd_free(hd_gen *g) {
    free(g->pop);
    free(g->centre);
}

/* A new person: a centre near a random population (cosine ~0.4 to others of
 * it), and 1-20 faces to come. */
static inline void hd_new_person(hd_gen *g) {
    const float *p = g->pop + (size_t)(hd_next(&g->r) % HD_POPULATIONS) * g->dim;
    hd_around(&g->r, p, sqrt(1.5 / g->dim), g->centre, g->dim);
    g->left = 1 + (int)(hd_next(&g->r) % 20);
    g->person++;
}

/* One face of the current person (a new person when the last one is done);
 * *person gets the person's number. Same-person cosine ~0.92. */
static inline void hd_face(hd_gen *g, float *out, uint32_t *person) {
    if (g->left <= 0) hd_new_person(g);
    g->left--;
    hd_around(&g->r, g->centre, sqrt(0.087 / g->dim), out, g->dim);
    if (person) *person = g->person;
}

/* A query: a fresh face of a person already generated (person <= last),
 * approximated by a new face of a random earlier centre is not possible
 * without keeping centres, so queries are new faces of new people drawn from
 * the same populations: the hard case (neighbours are other people). */
static inline void hd_query(hd_gen *g, float *out) {
    float *save = malloc(sizeof(float) * (size_t)g->dim);
    if (save) memcpy(save, g->centre, sizeof(float) * (size_t)g->dim);
    int left = g->left;
    uint32_t person = g->person;
    hd_new_person(g);
    hd_around(&g->r, g->centre, sqrt(0.087 / g->dim), out, g->dim);
    if (save) memcpy(g->centre, save, sizeof(float) * (size_t)g->dim);
    free(save);
    g->left = left, g->person = person;
}

#endif
