/* test_hnsw.c - the HNSW graph (src/index/vs_hnsw.c) on clustered synthetic
 * face embeddings (bench/hnsw_data.h): recall@10 against brute force, true
 * deletes (never returned, graph valid, recall within 0.02 of a fresh build
 * after deleting 30 %; on bench/clustered.h's dlib-fitted data within 0.01
 * after two rounds of 30 % deletes with re-inserts between, a whole person
 * erased), filters selective and not, empty and one-point
 * graphs, replace, dim 1024, readers beside a writer, argument checks.
 * Sized to finish in seconds in the release build and ~20 s under ASan
 * (smaller data there). Figures are printed, never asserted as timings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../bench/clustered.h"
#include "../../bench/hnsw_data.h"
#include "vs_hnsw.h"

#if defined(__SANITIZE_ADDRESS__)   /* -O0 + ASan: ~20x slower */
#define N_POINTS 1500
#define N_1024 400
#define N_CONC 1000
#else
#define N_POINTS 15000
#define N_1024 2000
#define N_CONC 3000
#endif
#define DIM 128
#define N_QUERIES 200
#define K 10
#define M_LINKS 16
#define EFC 100
#define EF 64

#define assert_ok(expr, e) do { vs_err rc_ = (expr); if (rc_) fail_msg("%s: %s", #expr, (e).msg); } while (0)

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* n clustered faces (dim floats each) and nq queries: even ones a fresh face
 * near a stored one (its person is in the data), odd ones a new person. */
typedef struct data {
    int n, nq, dim;
    float *x, *q;
} data;

static data make_data(int n, int nq, int dim, uint64_t seed) {
    data d = {n, nq, dim, malloc(sizeof(float) * (size_t)n * dim), malloc(sizeof(float) * (size_t)nq * dim)};
    assert_non_null(d.x);
    assert_non_null(d.q);
    hd_gen g;
    assert_true(hd_init(&g, dim, seed));
    for (int i = 0; i < n; i++) hd_face(&g, d.x + (size_t)i * dim, NULL);
    for (int i = 0; i < nq; i++) {
        float *q = d.q + (size_t)i * dim;
        if (i % 2) hd_query(&g, q);
        else hd_around(&g.r, d.x + (size_t)(hd_next(&g.r) % (uint64_t)n) * dim, sqrt(0.087 / dim), q, dim);
    }
    hd_free(&g);
    return d;
}

static void free_data(data *d) {
    free(d->x);
    free(d->q);
}

static float dot(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Exact top-k ids of q among rows with live[i] (NULL: all) and keep(i). */
static int exact_topk(const data *d, const float *q, const unsigned char *live,
                      vs_hnsw_filter keep, void *ctx, int k, uint32_t *out) {
    float best[K];
    int nb = 0;
    for (int i = 0; i < d->n; i++) {
        if ((live && !live[i]) || (keep && !keep(ctx, (uint32_t)i))) continue;
        float s = dot(q, d->x + (size_t)i * d->dim, d->dim);
        if (nb == k && s <= best[k - 1]) continue;
        int j = nb < k ? nb++ : k - 1;
        while (j > 0 && best[j - 1] < s) best[j] = best[j - 1], out[j] = out[j - 1], j--;
        best[j] = s, out[j] = (uint32_t)i;
    }
    return nb;
}

/* Mean recall@K of h against exact search over the live rows. */
static double recall(vs_hnsw *h, const data *d, const unsigned char *live, int ef,
                     vs_hnsw_filter keep, void *ctx) {
    double sum = 0;
    vs_error e = {0};
    for (int qi = 0; qi < d->nq; qi++) {
        const float *q = d->q + (size_t)qi * d->dim;
        uint32_t truth[K];
        int nt = exact_topk(d, q, live, keep, ctx, K, truth);
        vs_hnsw_hit hits[K];
        size_t nh = 0;
        assert_ok(vs_hnsw_search(h, q, K, ef, keep, ctx, hits, &nh, &e), e);
        int found = 0;
        for (int i = 0; i < nt; i++)
            for (size_t j = 0; j < nh; j++) found += hits[j].id == truth[i];
        sum += nt ? (double)found / nt : 1.0;
    }
    return sum / d->nq;
}

/* vector_of for graphs over a data set: row id of d->x. */
static const float *row_of(void *ctx, uint32_t id) {
    const data *d = ctx;
    return d->x + (size_t)id * d->dim;
}

/* Graph parameters over d; the float32 vectors stay in d (row_of). */
static vs_hnsw_cfg cfg_of(const data *d, uint64_t seed) {
    return (vs_hnsw_cfg){.dim = d->dim, .M = M_LINKS, .ef_construction = EFC, .seed = seed,
                         .vector_of = row_of, .vector_ctx = (void *)d};
}

/* Builds a graph of the rows with live[i] (NULL: all). */
static vs_hnsw *build(const data *d, const unsigned char *live, uint64_t seed) {
    vs_hnsw *h = NULL;
    vs_error e = {0};
    vs_hnsw_cfg c = cfg_of(d, seed);
    assert_ok(vs_hnsw_new(&c, &h, &e), e);
    double t0 = now_ms();
    for (int i = 0; i < d->n; i++)
        if (!live || live[i]) assert_ok(vs_hnsw_insert(h, (uint32_t)i, d->x + (size_t)i * d->dim, &e), e);
    double ms = now_ms() - t0;
    size_t n = vs_hnsw_count(h);
    printf("# built %zu points dim %d in %.0f ms (%.0f/s), %.0f bytes/point\n", n, d->dim, ms,
           n / (ms / 1e3 + 1e-9), (double)vs_hnsw_bytes(h) / (n ? n : 1));
    assert_ok(vs_hnsw_validate(h, &e), e);
    return h;
}

/* The data looks like faces: prints same/different-person cosines. */
static void test_data_shape(void **state) {
    (void)state;
    hd_gen g;
    assert_true(hd_init(&g, DIM, 7));
    float a[DIM], b[DIM], c[DIM];
    uint32_t pa, pb;
    double same = 0, diff = 0, dmax = -1;
    for (int i = 0; i < 500; i++) {
        hd_new_person(&g);
        g.left = 2;   /* two faces of this person */
        hd_face(&g, a, &pa);
        hd_face(&g, b, &pb);
        assert_int_equal(pa, pb);
        same += dot(a, b, DIM);
        hd_new_person(&g);
        hd_face(&g, c, NULL);
        float s = dot(a, c, DIM);
        diff += s;
        if (s > dmax) dmax = s;
    }
    printf("# cosine same person %.3f, different %.3f (max %.3f)\n", same / 500, diff / 500, dmax);
    assert_true(same / 500 > 0.85 && same / 500 < 0.97);
    assert_true(diff / 500 < 0.3);
    hd_free(&g);
}

/* Recall@10 at a modest ef on clustered data, and the printed figures. */
static void test_recall(void **state) {
    (void)state;
    data d = make_data(N_POINTS, N_QUERIES, DIM, 11);
    vs_hnsw *h = build(&d, NULL, 1);
    for (int ef = 16; ef <= 128; ef *= 2) {
        double t0 = now_ms();
        double r = recall(h, &d, NULL, ef, NULL, NULL);
        printf("# ef %d recall@10 %.4f (%.3f ms/query incl. exact)\n", ef, r, (now_ms() - t0) / d.nq);
        if (ef == EF) assert_true(r >= 0.95);
    }
    vs_hnsw_free(h);
    free_data(&d);
}

/* Deletes 30 % at random: deleted ids never come back, the graph stays valid
 * (symmetric, reachable), recall stays within 0.01 of a fresh build (the
 * issue's bound; 0.02 until the repair was reworked). */
static void test_delete_recall(void **state) {
    (void)state;
    data d = make_data(N_POINTS, N_QUERIES, DIM, 13);
    vs_hnsw *h = build(&d, NULL, 2);
    unsigned char *live = malloc((size_t)d.n);
    assert_non_null(live);
    memset(live, 1, (size_t)d.n);
    hd_rng r = {99};
    vs_error e = {0};
    double t0 = now_ms();
    int del = 0;
    while (del < d.n * 3 / 10) {
        uint32_t id = (uint32_t)(hd_next(&r) % (uint64_t)d.n);
        if (!live[id]) continue;
        assert_ok(vs_hnsw_delete(h, id, &e), e);
        live[id] = 0, del++;
    }
    printf("# deleted %d in %.0f ms\n", del, now_ms() - t0);
    assert_int_equal(vs_hnsw_count(h), (size_t)(d.n - del));
    assert_ok(vs_hnsw_validate(h, &e), e);
    /* a deleted point is never returned, even asked for with its own vector */
    for (int i = 0, asked = 0; i < d.n && asked < 200; i++) {
        if (live[i]) continue;
        asked++;
        vs_hnsw_hit hits[K];
        size_t nh;
        assert_ok(vs_hnsw_search(h, d.x + (size_t)i * d.dim, K, 128, NULL, NULL, hits, &nh, &e), e);
        assert_int_equal(nh, K);
        for (size_t j = 0; j < nh; j++) assert_true(live[hits[j].id]);
        assert_int_equal(vs_hnsw_delete(h, (uint32_t)i, &e), VS_ERR_NOT_FOUND);
    }
    int ef = 32;   /* low ef: differences in graph quality show */
    double rd = recall(h, &d, live, ef, NULL, NULL);
    vs_hnsw *fresh = build(&d, live, 2);
    double rf = recall(fresh, &d, live, ef, NULL, NULL);
    printf("# ef %d recall@10 after 30%% deletes %.4f, fresh build %.4f\n", ef, rd, rf);
    assert_true(rd >= rf - 0.01);
    vs_hnsw_free(fresh);
    vs_hnsw_free(h);
    free(live);
    free_data(&d);
}

/* Keep ids divisible by *(int *)ctx. */
static int keep_mod(void *ctx, uint32_t id) { return id % (uint32_t)*(int *)ctx == 0; }

/* n faces of bench/clustered.h's dlib-fitted data and nq queries that are
 * new photos of people in it; person[n] (caller frees) says whose each is.
 * w_noise > 0 replaces the spread of a person's faces (0: fitted value). */
static data make_clustered(int n, int nq, int dim, double w_noise, int32_t **person) {
    data d = {n, nq, dim, malloc(sizeof(float) * (size_t)n * dim), malloc(sizeof(float) * (size_t)nq * dim)};
    int32_t *qp = malloc(sizeof *qp * (size_t)nq);
    *person = malloc(sizeof **person * (size_t)n);
    assert_true(d.x && d.q && qp && *person);
    bench_clustered_params p = bench_clustered_defaults(dim);
    if (w_noise > 0) p.w_noise = w_noise;
    bench_clustered_gen(&p, n, d.x, *person);
    bench_clustered_queries(&p, *person, n, nq, d.q, qp);
    free(qp);
    return d;
}

/* Deletes ids until `target` of d's rows are gone (live[] tracks them). */
static void delete_random(vs_hnsw *h, const data *d, unsigned char *live, int target, uint64_t seed) {
    vs_error e = {0};
    int gone = 0;
    for (int i = 0; i < d->n; i++) gone += !live[i];
    double t0 = now_ms();
    int del = 0;
    for (uint64_t r = seed; gone < target;) {
        uint32_t id = (uint32_t)(bench_cl_next(&r) % (uint64_t)d->n);
        if (!live[id]) continue;
        assert_ok(vs_hnsw_delete(h, id, &e), e);
        live[id] = 0, gone++, del++;
    }
    printf("# deleted %d in %.0f ms\n", del, now_ms() - t0);
    assert_ok(vs_hnsw_validate(h, &e), e);
}

/* Recall at ef 16 and 32 of h and of a fresh build over the live rows: h
 * within 0.01 of the fresh build (the bound for deletes). */
static void assert_recall_like_fresh(vs_hnsw *h, const data *d, const unsigned char *live, const char *what) {
    vs_hnsw *fresh = build(d, live, 2);
    for (int ef = 16; ef <= 32; ef *= 2) {
        double rd = recall(h, d, live, ef, NULL, NULL), rf = recall(fresh, d, live, ef, NULL, NULL);
        printf("# clustered, %s: ef %d recall@10 %.4f, fresh build %.4f\n", what, ef, rd, rf);
        assert_true(rd >= rf - 0.01);
    }
    vs_hnsw_free(fresh);
}

/* Erasure on face-like data: 30 % deleted, then those re-inserted and
 * another 30 % deleted (churn must not wear the graph down), then every
 * face of one person erased: the graph stays valid, recall stays within
 * 0.01 of a fresh build each time, and the erased person never comes back
 * even when searched with their own faces. */
static void test_delete_churn_clustered(void **state) {
    (void)state;
    int32_t *person;
    data d = make_clustered(N_POINTS, N_QUERIES, DIM, 0, &person);
    vs_hnsw *h = build(&d, NULL, 3);
    unsigned char *live = malloc((size_t)d.n);
    assert_non_null(live);
    memset(live, 1, (size_t)d.n);
    vs_error e = {0};
    delete_random(h, &d, live, d.n * 3 / 10, 5);
    assert_recall_like_fresh(h, &d, live, "30% deleted");
    for (int i = 0; i < d.n; i++)
        if (!live[i]) {
            assert_ok(vs_hnsw_insert(h, (uint32_t)i, d.x + (size_t)i * d.dim, &e), e);
            live[i] = 1;
        }
    delete_random(h, &d, live, d.n * 3 / 10, 6);
    assert_recall_like_fresh(h, &d, live, "re-inserted, 30% deleted again");
    int32_t who = 0;   /* the person with the most faces */
    int *per = calloc((size_t)d.n, sizeof *per), faces = 0;
    assert_non_null(per);
    for (int i = 0; i < d.n; i++)
        if (++per[person[i]] > per[who]) who = person[i];
    free(per);
    for (int i = 0; i < d.n; i++)
        if (person[i] == who && live[i]) {
            assert_ok(vs_hnsw_delete(h, (uint32_t)i, &e), e);
            live[i] = 0, faces++;
        }
    assert_ok(vs_hnsw_validate(h, &e), e);
    for (int i = 0; i < d.n; i++) {
        if (person[i] != who) continue;
        vs_hnsw_hit hits[K];
        size_t nh;
        assert_ok(vs_hnsw_search(h, d.x + (size_t)i * d.dim, K, 128, NULL, NULL, hits, &nh, &e), e);
        for (size_t j = 0; j < nh; j++) assert_int_not_equal(person[hits[j].id], who);
    }
    printf("# erased person %d (%d faces in the graph)\n", who, faces);
    assert_true(faces > 1);
    vs_hnsw_free(h);
    free(live);
    free(person);
    free_data(&d);
}

/* Near-duplicate faces (a person's photos 40x closer than fitted: the same
 * picture crawled again): full neighbours refuse newcomers that look like
 * their links, which once left whole groups with no link in (3 % of the
 * nodes unreachable after a plain build). Every node stays reachable after
 * the build and after deleting 80 %. */
static void test_near_duplicates(void **state) {
    (void)state;
    int32_t *person;
    data d = make_clustered(N_CONC, 10, DIM, 0.005, &person);
    vs_hnsw *h = build(&d, NULL, 4);   /* validates: symmetric, all reachable */
    unsigned char *live = malloc((size_t)d.n);
    assert_non_null(live);
    memset(live, 1, (size_t)d.n);
    delete_random(h, &d, live, d.n * 8 / 10, 9);   /* validates again */
    vs_hnsw_free(h);
    free(live);
    free(person);
    free_data(&d);
}

/* Filters: only passing ids come back; recall against exact search over the
 * filtered set stays high whether 1 in 2 or 1 in 100 pass. */
static void test_filters(void **state) {
    (void)state;
    data d = make_data(N_POINTS / 2, 100, DIM, 17);
    vs_hnsw *h = build(&d, NULL, 3);
    vs_error e = {0};
    int mods[] = {2, 100};
    for (int m = 0; m < 2; m++) {
        for (int qi = 0; qi < d.nq; qi++) {
            vs_hnsw_hit hits[K];
            size_t nh;
            assert_ok(vs_hnsw_search(h, d.q + (size_t)qi * DIM, K, EF, keep_mod, &mods[m], hits, &nh, &e), e);
            int passing = (d.n + mods[m] - 1) / mods[m];
            assert_int_equal(nh, passing < K ? passing : K);
            for (size_t j = 0; j < nh; j++) assert_int_equal(hits[j].id % (uint32_t)mods[m], 0);
            for (size_t j = 1; j < nh; j++) assert_true(hits[j - 1].score >= hits[j].score);
        }
        double r = recall(h, &d, NULL, EF, keep_mod, &mods[m]);
        printf("# filter 1 in %d: recall@10 %.4f\n", mods[m], r);
        assert_true(r >= 0.9);
    }
    /* a filter nothing passes: no results, no error */
    int none = d.n + 1;
    vs_hnsw_hit hits[K];
    size_t nh = 99;
    assert_ok(vs_hnsw_search(h, d.q, K, EF, keep_mod, &none, hits, &nh, &e), e);
    assert_true(nh <= 1);   /* only id 0 is divisible by n + 1 */
    vs_hnsw_free(h);
    free_data(&d);
}

/* Empty graph, one point, replace, delete down to empty and refill. */
static void test_small(void **state) {
    (void)state;
    vs_hnsw *h = NULL;
    vs_error e = {0};
    vs_hnsw_cfg c = {.dim = 4, .M = 4, .ef_construction = 16, .seed = 5};   /* own float copies */
    assert_ok(vs_hnsw_new(&c, &h, &e), e);
    float v[4] = {1, 0, 0, 0}, w[4] = {0, 1, 0, 0}, q[4] = {0.6f, 0.8f, 0, 0};
    vs_hnsw_hit hits[3];
    size_t nh = 99;
    assert_ok(vs_hnsw_search(h, q, 3, 10, NULL, NULL, hits, &nh, &e), e);
    assert_int_equal(nh, 0);
    assert_int_equal(vs_hnsw_delete(h, 7, &e), VS_ERR_NOT_FOUND);
    assert_ok(vs_hnsw_insert(h, 7, v, &e), e);
    assert_ok(vs_hnsw_validate(h, &e), e);
    assert_ok(vs_hnsw_search(h, q, 3, 10, NULL, NULL, hits, &nh, &e), e);
    assert_int_equal(nh, 1);
    assert_int_equal(hits[0].id, 7);
    assert_float_equal(hits[0].score, 0.6f, 1e-6);   /* exact float32 score */
    assert_ok(vs_hnsw_insert(h, 7, w, &e), e);        /* replace */
    assert_int_equal(vs_hnsw_count(h), 1);
    assert_ok(vs_hnsw_search(h, q, 3, 10, NULL, NULL, hits, &nh, &e), e);
    assert_float_equal(hits[0].score, 0.8f, 1e-6);
    assert_ok(vs_hnsw_insert(h, 3, v, &e), e);
    assert_ok(vs_hnsw_search(h, q, 3, 10, NULL, NULL, hits, &nh, &e), e);
    assert_int_equal(nh, 2);
    assert_int_equal(hits[0].id, 7);
    assert_int_equal(hits[1].id, 3);
    assert_ok(vs_hnsw_delete(h, 7, &e), e);
    assert_ok(vs_hnsw_delete(h, 3, &e), e);
    assert_int_equal(vs_hnsw_count(h), 0);
    assert_ok(vs_hnsw_validate(h, &e), e);
    assert_ok(vs_hnsw_search(h, q, 3, 10, NULL, NULL, hits, &nh, &e), e);
    assert_int_equal(nh, 0);
    assert_ok(vs_hnsw_insert(h, 1, v, &e), e);
    assert_true(vs_hnsw_contains(h, 1));
    assert_false(vs_hnsw_contains(h, 7));
    assert_int_equal(vs_hnsw_insert(h, VS_HNSW_ID_MAX, v, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_hnsw_search(h, q, 3, 0, NULL, NULL, hits, &nh, &e), VS_ERR_INVALID_ARG);
    vs_hnsw_free(h);
    const vs_hnsw_cfg bad[3] = {{.dim = 0, .M = 16, .ef_construction = 100},
                                {.dim = 8, .M = 1, .ef_construction = 100},
                                {.dim = 8, .M = 16, .ef_construction = 0}};
    for (int i = 0; i < 3; i++) assert_int_equal(vs_hnsw_new(&bad[i], &h, &e), VS_ERR_INVALID_ARG);
    assert_null(h);
}

/* The legacy 1024-d embedder works the same. */
static void test_dim_1024(void **state) {
    (void)state;
    data d = make_data(N_1024, 50, 1024, 19);
    vs_hnsw *h = build(&d, NULL, 4);
    double r = recall(h, &d, NULL, EF, NULL, NULL);
    printf("# dim 1024: recall@10 %.4f\n", r);
    assert_true(r >= 0.95);
    vs_hnsw_free(h);
    free_data(&d);
}

typedef struct reader {
    vs_hnsw *h;
    const data *d;
    int bad;
} reader;

/* Searches in a loop; counts errors or wrong shapes. */
static void *reader_run(void *arg) {
    reader *r = arg;
    vs_error e = {0};
    for (int i = 0; i < 300; i++) {
        vs_hnsw_hit hits[K];
        size_t nh;
        if (vs_hnsw_search(r->h, r->d->q + (size_t)(i % r->d->nq) * DIM, K, 32, NULL, NULL, hits, &nh, &e) ||
            nh != K)
            r->bad++;
    }
    return NULL;
}

/* Two readers search while the writer deletes and re-inserts; the graph is
 * valid afterwards and no search failed. */
static void test_concurrent(void **state) {
    (void)state;
    data d = make_data(N_CONC, 50, DIM, 23);
    vs_hnsw *h = build(&d, NULL, 5);
    reader rd[2] = {{h, &d, 0}, {h, &d, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, reader_run, &rd[i]), 0);
    vs_error e = {0};
    for (int i = 0; i < d.n / 5; i++) {
        uint32_t id = (uint32_t)(i * 7 % d.n);
        assert_ok(vs_hnsw_delete(h, id, &e), e);
        assert_ok(vs_hnsw_insert(h, id, d.x + (size_t)id * DIM, &e), e);
    }
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    assert_int_equal(rd[0].bad + rd[1].bad, 0);
    assert_int_equal(vs_hnsw_count(h), (size_t)d.n);
    assert_ok(vs_hnsw_validate(h, &e), e);
    vs_hnsw_free(h);
    free_data(&d);
}

/* A growable byte buffer as the save/load stream; `limit` cuts reads short. */
typedef struct stream {
    unsigned char *b;
    size_t n, cap, pos, limit;
} stream;

static vs_err stream_write(void *ctx, const void *buf, size_t n, vs_error *e) {
    (void)e;
    stream *s = ctx;
    if (s->n + n > s->cap) {
        s->cap = (s->n + n) * 2;
        s->b = realloc(s->b, s->cap);
        assert_non_null(s->b);
    }
    memcpy(s->b + s->n, buf, n);
    s->n += n;
    return VS_OK;
}

static vs_err stream_read(void *ctx, void *buf, size_t n, vs_error *e) {
    stream *s = ctx;
    size_t end = s->limit < s->n ? s->limit : s->n;
    if (s->pos + n > end) return vs_fail(e, VS_ERR_CORRUPT, "stream: %zu bytes wanted at %zu of %zu", n, s->pos, end);
    memcpy(buf, s->b + s->pos, n);
    s->pos += n;
    return VS_OK;
}

/* Same hits (ids and scores) for every query. */
static void assert_same_search(vs_hnsw *a, vs_hnsw *b, const data *d) {
    vs_error e = {0};
    for (int qi = 0; qi < d->nq; qi++) {
        vs_hnsw_hit ha[K], hb[K];
        size_t na, nb;
        assert_ok(vs_hnsw_search(a, d->q + (size_t)qi * d->dim, K, EF, NULL, NULL, ha, &na, &e), e);
        assert_ok(vs_hnsw_search(b, d->q + (size_t)qi * d->dim, K, EF, NULL, NULL, hb, &nb, &e), e);
        assert_int_equal(na, nb);
        for (size_t i = 0; i < na; i++) {
            assert_int_equal(ha[i].id, hb[i].id);
            assert_float_equal(ha[i].score, hb[i].score, 0);
        }
    }
}

/* Save then load gives the same graph: same searches, same later inserts
 * (the level draws continue), valid; a wrong M or float mode is refused
 * with INVALID_ARG; every truncation and a flipped header byte give an
 * error, never a crash or a half graph. */
static void test_save_load(void **state) {
    (void)state;
    data d = make_data(N_CONC, 40, DIM, 31);
    unsigned char *live = malloc((size_t)d.n);
    for (int i = 0; i < d.n; i++) live[i] = i % 9 != 4;   /* holes in the id range */
    vs_hnsw *h = build(&d, live, 8);
    vs_error e = {0};
    stream s = {0};
    assert_ok(vs_hnsw_save(h, stream_write, &s, &e), e);
    printf("# saved %zu points in %zu bytes\n", vs_hnsw_count(h), s.n);
    vs_hnsw_cfg c = cfg_of(&d, 999);   /* seed ignored: the saved one continues */
    vs_hnsw *g = NULL;
    s.limit = SIZE_MAX;
    assert_ok(vs_hnsw_load(&c, stream_read, &s, &g, &e), e);
    assert_int_equal(s.pos, s.n);
    assert_int_equal(vs_hnsw_count(g), vs_hnsw_count(h));
    assert_ok(vs_hnsw_validate(g, &e), e);
    assert_same_search(h, g, &d);
    for (int i = 4; i < d.n; i += 9) {   /* the same inserts build the same graph */
        assert_ok(vs_hnsw_insert(h, (uint32_t)i, d.x + (size_t)i * DIM, &e), e);
        assert_ok(vs_hnsw_insert(g, (uint32_t)i, d.x + (size_t)i * DIM, &e), e);
    }
    assert_same_search(h, g, &d);
    assert_ok(vs_hnsw_delete(g, 5, &e), e);
    assert_ok(vs_hnsw_validate(g, &e), e);
    vs_hnsw_free(g);

    c.M = M_LINKS + 2;
    s.pos = 0;
    assert_int_equal(vs_hnsw_load(&c, stream_read, &s, &g, &e), VS_ERR_INVALID_ARG);
    c = cfg_of(&d, 1);
    c.vector_of = NULL;
    s.pos = 0;
    assert_int_equal(vs_hnsw_load(&c, stream_read, &s, &g, &e), VS_ERR_INVALID_ARG);
    c = cfg_of(&d, 1);
    for (size_t cut = 0; cut < s.n; cut += cut < 200 ? 1 : 997) {
        s.pos = 0, s.limit = cut;
        assert_int_equal(vs_hnsw_load(&c, stream_read, &s, &g, &e), VS_ERR_CORRUPT);
        assert_null(g);
    }
    s.limit = SIZE_MAX;
    s.b[0] ^= 1;   /* magic */
    s.pos = 0;
    assert_int_equal(vs_hnsw_load(&c, stream_read, &s, &g, &e), VS_ERR_CORRUPT);
    s.b[0] ^= 1;
    s.n = 0;
    vs_hnsw_free(h);

    /* own float copies: saved and restored with the graph */
    vs_hnsw_cfg own = {.dim = DIM, .M = M_LINKS, .ef_construction = EFC, .seed = 3};
    assert_ok(vs_hnsw_new(&own, &h, &e), e);
    for (int i = 0; i < 500; i++) assert_ok(vs_hnsw_insert(h, (uint32_t)i * 3, d.x + (size_t)i * DIM, &e), e);
    assert_ok(vs_hnsw_save(h, stream_write, &s, &e), e);
    s.pos = 0;
    assert_ok(vs_hnsw_load(&own, stream_read, &s, &g, &e), e);
    assert_same_search(h, g, &d);
    vs_hnsw_free(g);
    vs_hnsw_free(h);
    free(s.b);
    free(live);
    free_data(&d);
}

static uint32_t plus_1000(void *ctx, uint32_t id) {
    (void)ctx;
    return id + 1000;
}

/* A graph with a part no walk reaches (two graphs' streams spliced into
 * one: the second group links only to itself) fails validation; reconnect
 * re-inserts exactly that part, after which the graph validates and the
 * lost points are found again. */
static void test_reconnect(void **state) {
    (void)state;
    data d = make_data(260, 10, DIM, 41);
    vs_error e = {0};
    vs_hnsw_cfg c = {.dim = DIM, .M = 8, .ef_construction = 64, .seed = 9};
    vs_hnsw *a, *b, *b2;
    assert_ok(vs_hnsw_new(&c, &a, &e), e);
    assert_ok(vs_hnsw_new(&c, &b, &e), e);
    for (int i = 0; i < 240; i++) assert_ok(vs_hnsw_insert(a, (uint32_t)i, d.x + (size_t)i * DIM, &e), e);
    for (int i = 0; i < 20; i++) assert_ok(vs_hnsw_insert(b, (uint32_t)i, d.x + (size_t)(240 + i) * DIM, &e), e);
    stream sa = {0}, sb = {0}, sb2 = {0};
    assert_ok(vs_hnsw_save(a, stream_write, &sa, &e), e);
    assert_ok(vs_hnsw_save(b, stream_write, &sb, &e), e);
    sb.limit = SIZE_MAX;
    assert_ok(vs_hnsw_load_remap(&c, stream_read, &sb, plus_1000, NULL, &b2, &e), e);   /* ids 1000.. */
    assert_ok(vs_hnsw_save(b2, stream_write, &sb2, &e), e);
    const size_t hdr = 48;   /* the stream's header: magic .. entry id, padded */
    stream all = {0};
    stream_write(&all, sa.b, sa.n, &e);
    stream_write(&all, sb2.b + hdr, sb2.n - hdr, &e);
    uint64_t count = 260;
    memcpy(all.b + 32, &count, sizeof count);
    all.limit = SIZE_MAX;
    vs_hnsw *g = NULL;
    vs_err rc = vs_hnsw_load(&c, stream_read, &all, &g, &e);
    if (rc) fail_msg("splice: %s (the second group outranks the first's entry: pick other seeds)", e.msg);
    assert_int_equal(vs_hnsw_count(g), 260);
    assert_int_equal(vs_hnsw_validate(g, &e), VS_ERR_INTERNAL);
    assert_non_null(strstr(e.msg, "240 of 260"));
    size_t relinked = 0;
    assert_ok(vs_hnsw_reconnect(g, &relinked, &e), e);
    assert_int_equal(relinked, 20);
    assert_ok(vs_hnsw_validate(g, &e), e);
    vs_hnsw_hit hit;
    size_t nh;
    for (int i = 0; i < 20; i++) {   /* each lost point is its own nearest neighbour again */
        assert_ok(vs_hnsw_search(g, d.x + (size_t)(240 + i) * DIM, 1, 32, NULL, NULL, &hit, &nh, &e), e);
        assert_int_equal(hit.id, 1000 + i);
    }
    assert_ok(vs_hnsw_reconnect(g, &relinked, &e), e);
    assert_int_equal(relinked, 0);
    vs_hnsw_free(a), vs_hnsw_free(b), vs_hnsw_free(b2), vs_hnsw_free(g);
    free(sa.b), free(sb.b), free(sb2.b), free(all.b);
    free_data(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_shape), cmocka_unit_test(test_small),
        cmocka_unit_test(test_recall),     cmocka_unit_test(test_delete_recall),
        cmocka_unit_test(test_filters),    cmocka_unit_test(test_dim_1024),
        cmocka_unit_test(test_concurrent), cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_delete_churn_clustered), cmocka_unit_test(test_near_duplicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
