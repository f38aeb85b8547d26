/* hnsw.c - the HNSW graph alone (src/index/vs_hnsw.c) on synthetic face
 * embeddings, default 100k points of 128-d: bench/clustered.h's data fitted
 * to dlib (queries are new photos of base-set people), or with --data easy
 * the older, too-easy bench/hnsw_data.h.
 * Prints JSON lines, never asserts: the data's same/different cosines, build
 * time and rate, bytes per point, then per ef_search recall@10 against exact
 * search, p50/p99 single-thread latency and QPS on 2 threads; then recall
 * after deleting 30 % and the delete rate; exact scan latency for scale.
 * Usage: bench_hnsw [--points N] [--dim D] [--m M] [--efc E] [--clip C]
 *                   [--data clustered|easy] [--deleted PCT]
 * (--clip > 0: one global int8 scale clip/127 instead of per-vector). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "clustered.h"
#include "hnsw_data.h"
#include "vs_hnsw.h"

#define NQ 500
#define K 10

static int g_dim = 128;

static int cmp_hit(const void *a, const void *b) {
    float x = ((const vs_hnsw_hit *)a)->score, y = ((const vs_hnsw_hit *)b)->score;
    return (x < y) - (x > y);
}

/* Exact top-K by scan over live rows; returns ms taken. */
static double exact(const float *x, int n, const unsigned char *live, const float *q, uint32_t *out) {
    double t0 = bench_now_ms();
    vs_hnsw_hit best[K + 1];
    int nb = 0;
    for (int i = 0; i < n; i++) {
        if (live && !live[i]) continue;
        const float *v = x + (size_t)i * g_dim;
        float s = 0;
        for (int d = 0; d < g_dim; d++) s += q[d] * v[d];
        if (nb == K && s <= best[K - 1].score) continue;
        best[nb < K ? nb++ : K - 1] = (vs_hnsw_hit){(uint32_t)i, s};
        qsort(best, (size_t)nb, sizeof *best, cmp_hit);
    }
    for (int i = 0; i < K; i++) out[i] = i < nb ? best[i].id : UINT32_MAX;
    return bench_now_ms() - t0;
}

typedef struct qjob {
    vs_hnsw *h;
    const float *q;
    int ef, from, to;
} qjob;

/* Runs queries [from, to) for the QPS figure. */
static void *qrun(void *arg) {
    qjob *j = arg;
    vs_hnsw_hit hits[K];
    size_t nh;
    for (int r = 0; r < 4; r++)
        for (int i = j->from; i < j->to; i++)
            vs_hnsw_search(j->h, j->q + (size_t)i * g_dim, K, j->ef, NULL, NULL, hits, &nh, NULL);
    return NULL;
}

/* Recall@10, p50/p99 single thread and 2-thread QPS at one ef. */
static void measure(vs_hnsw *h, const float *q, uint32_t (*truth)[K], int n, int ef, const char *phase) {
    double lat[NQ], rec = 0;
    for (int i = 0; i < NQ; i++) {
        vs_hnsw_hit hits[K];
        size_t nh;
        vs_error e = {0};
        double t0 = bench_now_ms();
        if (vs_hnsw_search(h, q + (size_t)i * g_dim, K, ef, NULL, NULL, hits, &nh, &e))
            bench_die("bench_hnsw", "search", &e);
        lat[i] = bench_now_ms() - t0;
        int f = 0;
        for (int a = 0; a < K; a++)
            for (size_t b = 0; b < nh; b++) f += truth[i][a] == hits[b].id;
        rec += f / (double)K;
    }
    qsort(lat, NQ, sizeof lat[0], bench_cmp_double);
    qjob j[2] = {{h, q, ef, 0, NQ / 2}, {h, q, ef, NQ / 2, NQ}};
    pthread_t t[2];
    double t0 = bench_now_ms();
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, qrun, &j[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    double qps = 4.0 * NQ / ((bench_now_ms() - t0) / 1e3);
    printf("{\"bench\":\"search\",\"index\":\"hnsw\",\"phase\":\"%s\",\"points\":%d,\"dim\":%d,\"ef_search\":%d,"
           "\"recall_at_10\":%.4f,\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"qps_2_threads\":%.0f,\"rss_mb\":%.0f}\n",
           phase, n, g_dim, ef, rec / NQ, lat[NQ / 2], lat[NQ * 99 / 100], qps, bench_rss_mb());
    fflush(stdout);
}

/* Ground truth for all queries over live rows; returns mean exact ms. */
static double truth_all(const float *x, int n, const unsigned char *live, const float *q, uint32_t (*truth)[K]) {
    double ms = 0;
    for (int i = 0; i < NQ; i++) ms += exact(x, n, live, q + (size_t)i * g_dim, truth[i]);
    return ms / NQ;
}

/* Dot product of two rows. */
static float dotf(const float *a, const float *b) {
    float s = 0;
    for (int d = 0; d < g_dim; d++) s += a[d] * b[d];
    return s;
}

/* The older hnsw_data.h set: half the queries near base points, half new
 * people; prints its same/different-person mean cosines. */
static void gen_easy(hd_gen *g, float *x, float *q, int n) {
    for (int i = 0; i < n; i++) hd_face(g, x + (size_t)i * g_dim, NULL);
    for (int i = 0; i < NQ; i++) {
        if (i % 2) hd_query(g, q + (size_t)i * g_dim);
        else hd_around(&g->r, x + (size_t)(hd_next(&g->r) % (uint64_t)n) * g_dim, sqrt(0.087 / g_dim),
                       q + (size_t)i * g_dim, g_dim);
    }
    double same = 0, diff = 0;
    for (int i = 0; i < 1000; i++) {
        float a[8192], b[8192];
        hd_new_person(g);
        g->left = 2;
        hd_face(g, a, NULL), hd_face(g, b, NULL);
        float s = 0, t = 0;
        for (int d = 0; d < g_dim; d++) s += a[d] * b[d];
        hd_new_person(g);
        hd_face(g, b, NULL);
        for (int d = 0; d < g_dim; d++) t += a[d] * b[d];
        same += s, diff += t;
    }
    printf("{\"bench\":\"data\",\"dim\":%d,\"cos_same_person\":%.3f,\"cos_diff_person\":%.3f}\n", g_dim,
           same / 1000, diff / 1000);
}

/* bench/clustered.h's set fitted to dlib: queries are new photos of base-set
 * people. Prints the mean cosine of same- and different-person pairs. */
static void gen_clustered(float *x, float *q, int n) {
    bench_clustered_params p = bench_clustered_defaults(g_dim);
    int32_t *person = malloc(sizeof *person * (size_t)n), qperson[NQ];
    if (!person) fprintf(stderr, "bench_hnsw: NOMEM\n"), exit(1);
    int32_t people = bench_clustered_gen(&p, n, x, person);
    bench_clustered_queries(&p, person, n, NQ, q, qperson);
    int32_t *last = malloc(sizeof *last * (size_t)people);   /* a face seen earlier of each person */
    if (!last) fprintf(stderr, "bench_hnsw: NOMEM\n"), exit(1);
    memset(last, 0xff, sizeof *last * (size_t)people);
    last[person[0]] = 0;
    double same = 0, diff = 0;
    int ns = 0, nd = 0;
    for (int i = 1; i < n && (ns < 2000 || nd < 2000); i++) {
        int32_t j = last[person[i]];
        if (j >= 0 && ns < 2000) same += dotf(x + (size_t)i * g_dim, x + (size_t)j * g_dim), ns++;
        if (person[i - 1] != person[i] && nd < 2000) diff += dotf(x + (size_t)i * g_dim, x + (size_t)(i - 1) * g_dim), nd++;
        last[person[i]] = i;
    }
    free(last);
    printf("{\"bench\":\"data\",\"data\":\"clustered\",\"dim\":%d,\"cos_same_person\":%.3f,\"cos_diff_person\":%.3f}\n",
           g_dim, ns ? same / ns : 0, nd ? diff / nd : 0);
    free(person);
}

int main(int argc, char **argv) {
    int n = 100000, m = 16, efc = 100;
    float clip = 0;
    int easy = 0, del_pct = 30;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--points")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dim")) g_dim = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--m")) m = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--efc")) efc = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--clip")) clip = (float)atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--data")) easy = !strcmp(argv[i + 1], "easy");
        else if (!strcmp(argv[i], "--deleted")) del_pct = atoi(argv[i + 1]);
    }
    if (del_pct < 1 || del_pct > 90) return fprintf(stderr, "bench_hnsw: --deleted in [1, 90]\n"), 2;
    if (n < 100 || g_dim < 1) return fprintf(stderr, "bench_hnsw: bad --points/--dim\n"), 2;
    float *x = malloc(sizeof(float) * (size_t)n * g_dim), *q = malloc(sizeof(float) * (size_t)NQ * g_dim);
    uint32_t(*truth)[K] = malloc(sizeof *truth * NQ);
    unsigned char *live = malloc((size_t)n);
    hd_gen g;
    if (!x || !q || !truth || !live || !hd_init(&g, g_dim, 42)) return fprintf(stderr, "bench_hnsw: NOMEM\n"), 1;
    if (easy) gen_easy(&g, x, q, n);
    else gen_clustered(x, q, n);
    double exact_ms = truth_all(x, n, NULL, q, truth);
    printf("{\"bench\":\"search\",\"index\":\"exact\",\"points\":%d,\"dim\":%d,\"ef_search\":0,\"recall_at_10\":1,"
           "\"p50_ms\":%.3f,\"rss_mb\":%.0f}\n", n, g_dim, exact_ms, bench_rss_mb());
    fflush(stdout);

    vs_hnsw *h = NULL;
    vs_error e = {0};
    vs_hnsw_cfg hc = {.dim = g_dim, .M = m, .ef_construction = efc, .seed = 1, .quant_clip = clip};
    if (vs_hnsw_new(&hc, &h, &e)) bench_die("bench_hnsw", "new", &e);
    double t0 = bench_now_ms();
    for (int i = 0; i < n; i++)
        if (vs_hnsw_insert(h, (uint32_t)i, x + (size_t)i * g_dim, &e)) bench_die("bench_hnsw", "insert", &e);
    double build_ms = bench_now_ms() - t0;
    printf("{\"bench\":\"build\",\"index\":\"hnsw\",\"points\":%d,\"dim\":%d,\"m\":%d,\"ef_construction\":%d,"
           "\"quant\":\"%s\",\"build_s\":%.2f,\"inserts_per_s\":%.0f,\"bytes_per_point\":%.0f,\"rss_mb\":%.0f}\n",
           n, g_dim, m, efc, clip > 0 ? "global" : "per_vector", build_ms / 1e3, n / (build_ms / 1e3),
           (double)vs_hnsw_bytes(h) / n, bench_rss_mb());
    fflush(stdout);
    int efs[] = {16, 32, 64, 128, 256};
    for (size_t i = 0; i < sizeof efs / sizeof efs[0]; i++) measure(h, q, truth, n, efs[i], "fresh");

    memset(live, 1, (size_t)n);
    hd_rng r = {7};
    int del = 0;
    t0 = bench_now_ms();
    while (del < (int)((int64_t)n * del_pct / 100)) {
        uint32_t id = (uint32_t)(hd_next(&r) % (uint64_t)n);
        if (!live[id]) continue;
        if (vs_hnsw_delete(h, id, &e)) bench_die("bench_hnsw", "delete", &e);
        live[id] = 0, del++;
    }
    double del_ms = bench_now_ms() - t0;
    char del_phase[48];
    snprintf(del_phase, sizeof del_phase, "after_%dpct_deletes", del_pct);
    printf("{\"bench\":\"delete\",\"index\":\"hnsw\",\"points\":%d,\"deleted\":%d,\"deletes_per_s\":%.0f}\n", n, del,
           del / (del_ms / 1e3));
    truth_all(x, n, live, q, truth);
    for (size_t i = 0; i < 4; i++) measure(h, q, truth, n - del, efs[i], del_phase);
    vs_hnsw_free(h);
    if (vs_hnsw_new(&hc, &h, &e)) bench_die("bench_hnsw", "new", &e);
    for (int i = 0; i < n; i++)
        if (live[i] && vs_hnsw_insert(h, (uint32_t)i, x + (size_t)i * g_dim, &e)) bench_die("bench_hnsw", "insert", &e);
    for (size_t i = 0; i < 4; i++) measure(h, q, truth, n - del, efs[i], "fresh_build_of_remaining");
    vs_hnsw_free(h);
    hd_free(&g);
    free(x), free(q), free(truth), free(live);
    return 0;
}
