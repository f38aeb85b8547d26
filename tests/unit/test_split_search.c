/* test_split_search.c - the fork-join pool, and a search split over row
 * ranges and merged: it must give exactly what one whole scan gives (same
 * hits, same order, ties to the smaller id), with and without filters, and
 * through the embedded index where large blocks take the split path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>

#include "vs_alloc.h"
#include "vs_flat.h"
#include "vs_index.h"
#include "vs_pool.h"

#define DIM 64

/* ---- pool ---- */

typedef struct count_ctx {
    int hits[1000];
} count_ctx;

static void count_part(void *ctx, int i) {
    count_ctx *c = ctx;
    __atomic_fetch_add(&c->hits[i], 1, __ATOMIC_RELAXED);
}

/* Every part runs exactly once, many jobs in a row (a late thread never runs
 * an old job), with and without threads, and NULL pools run inline. */
static void test_pool_runs_each_part_once(void **state) {
    (void)state;
    for (int threads = 0; threads <= 3; threads++) {
        vs_pool *p = vs_pool_new(threads);
        assert_non_null(p);
        assert_int_equal(vs_pool_threads(p), threads);
        for (int round = 0; round < 300; round++) {
            count_ctx c;
            memset(&c, 0, sizeof c);
            int n = 1 + round % 17;
            vs_pool_run(p, n, count_part, &c);
            for (int i = 0; i < n; i++) assert_int_equal(c.hits[i], 1);
            for (int i = n; i < 20; i++) assert_int_equal(c.hits[i], 0);
        }
        vs_pool_free(p);
    }
    count_ctx c;
    memset(&c, 0, sizeof c);
    vs_pool_run(NULL, 5, count_part, &c);
    for (int i = 0; i < 5; i++) assert_int_equal(c.hits[i], 1);
    vs_pool_free(NULL);
}

typedef struct race_ctx {
    vs_pool *pool;
    int ok;
} race_ctx;

static void *race_main(void *arg) {
    race_ctx *r = arg;
    for (int round = 0; round < 200; round++) {
        count_ctx c;
        memset(&c, 0, sizeof c);
        vs_pool_run(r->pool, 8, count_part, &c);
        for (int i = 0; i < 8; i++)
            if (c.hits[i] != 1) r->ok = 0;
    }
    return NULL;
}

/* Two callers at once: one gets the pool, the other runs inline; both
 * complete every part once. */
static void test_pool_concurrent_callers(void **state) {
    (void)state;
    vs_pool *p = vs_pool_new(2);
    race_ctx a = {p, 1}, b = {p, 1};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, race_main, &a);
    pthread_create(&tb, NULL, race_main, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_true(a.ok && b.ok);
    vs_pool_free(p);
}

/* ---- split search ---- */

/* Deterministic pseudo-random unit-ish vector for i; every 7th point repeats
 * an earlier vector so scores tie. */
static void make_vec(int i, float *v) {
    int src = (i % 7 == 0 && i > 0) ? i / 7 : i;
    uint32_t x = 2654435761u * (uint32_t)(src + 1);
    for (int d = 0; d < DIM; d++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v[d] = (float)((int)(x % 2001) - 1000) / 1000.0f;
    }
}

static vs_flat *build_flat(int n) {
    vs_flat *f = vs_flat_new(DIM);
    assert_non_null(f);
    float v[DIM];
    for (int i = 0; i < n; i++) {
        make_vec(i, v);
        char id[32], site[16];
        snprintf(id, sizeof id, "p%06d", i);
        snprintf(site, sizeof site, "s%d", i % 5);
        vs_flat_entry e;
        assert_int_equal(vs_flat_entry_init(&e, id, i % 3 ? "t1" : "t2", v, "{}", 2, site, strlen(site), NULL, 0, 0, 0),
                         VS_OK);
        assert_int_equal(vs_flat_put(f, &e, NULL), VS_OK);
    }
    return f;
}

/* Split in 1..5 parts and merged == one scan, for several filters, k and
 * thresholds. */
static void test_split_equals_whole(void **state) {
    (void)state;
    vs_flat *f = build_flat(3000);
    float q[DIM];
    make_vec(21, q); /* a vector that repeats: ties among the best */
    const char *sites[] = {NULL, "s2"};
    const int ks[] = {1, 10, 250};
    const float th[] = {-1e30f, 0.5f};
    for (int si = 0; si < 2; si++)
        for (int ki = 0; ki < 3; ki++)
            for (int ti = 0; ti < 2; ti++) {
                vs_filter flt = {.tenant_id = "t1", .site = sites[si]};
                int k = ks[ki], nw = 0;
                vs_flat_hit *whole = calloc((size_t)k, sizeof *whole), *merged = calloc((size_t)k, sizeof *merged);
                vs_flat_search(f, q, &flt, k, th[ti], whole, &nw);
                vs_filter tenant_only = {.tenant_id = "t1"};
                uint32_t rows = (uint32_t)vs_flat_count(f, &tenant_only);
                assert_true(rows > 1900);
                for (int np = 1; np <= 5; np++) {
                    vs_flat_hit *parts[5];
                    const vs_flat_hit *cparts[5];
                    int counts[5];
                    for (int i = 0; i < np; i++) {
                        parts[i] = calloc((size_t)k, sizeof **parts);
                        vs_flat_search_rows(f, q, &flt, k, th[ti], rows * (uint32_t)i / (uint32_t)np,
                                            rows * (uint32_t)(i + 1) / (uint32_t)np, parts[i], &counts[i]);
                        cparts[i] = parts[i];
                    }
                    int nm = 0;
                    vs_flat_merge(f, cparts, counts, np, k, merged, &nm);
                    assert_int_equal(nm, nw);
                    for (int i = 0; i < nw; i++) {
                        assert_int_equal(merged[i].slot, whole[i].slot);
                        assert_true(merged[i].score == whole[i].score);
                    }
                    for (int i = 0; i < np; i++) free(parts[i]);
                }
                free(whole);
                free(merged);
            }
    vs_flat_hit h[4];
    int n = 7;
    vs_filter none = {.tenant_id = "nobody"};
    assert_int_equal(vs_flat_count(f, &none), 0);
    vs_flat_search_rows(f, q, &none, 4, -1, 0, 10, h, &n);
    assert_int_equal(n, 0);
    vs_flat_free(f);
}

/* Through the embedded index: a block over the split threshold gives the
 * same hits as a brute-force ranking of the same points. */
static void test_embedded_large_block(void **state) {
    (void)state;
    char dir[] = "/tmp/visage-split-XXXXXX";
    assert_non_null(mkdtemp(dir));
    vs_index *ix = NULL;
    vs_error e = {0};
    assert_int_equal(vs_index_open("embedded", dir, &ix, &e), VS_OK);
    assert_int_equal(ix->ops->ensure_collection(ix, "c", DIM, "test", &e), VS_OK);
    enum { N = 20000, B = 1000 };
    vs_point *pts = calloc(B, sizeof *pts);
    float *vecs = calloc((size_t)B * DIM, sizeof *vecs);
    char(*ids)[16] = calloc(B, sizeof *ids);
    for (int base = 0; base < N; base += B) {
        for (int i = 0; i < B; i++) {
            snprintf(ids[i], sizeof ids[i], "p%06d", base + i);
            make_vec(base + i, vecs + (size_t)i * DIM);
            pts[i].id = ids[i];
            pts[i].vector = vecs + (size_t)i * DIM;
            pts[i].payload_json = "{\"tenant_id\":\"t\"}";
        }
        assert_int_equal(ix->ops->upsert(ix, "c", pts, B, &e), VS_OK);
    }
    float q[DIM];
    make_vec(7 * 300, q);
    /* exact: 20000 points reach the graph bound; this test is about the split scan */
    vs_filter flt = {.tenant_id = "t", .exact = 1};
    vs_hit *hits = NULL;
    int n = 0;
    assert_int_equal(ix->ops->search(ix, "c", q, &flt, 25, -1e30f, &hits, &n, &e), VS_OK);
    assert_int_equal(n, 25);
    /* brute force: best score, ties to the smaller id */
    float *scores = calloc(N, sizeof *scores);
    float v[DIM];
    for (int i = 0; i < N; i++) {
        make_vec(i, v);
        scores[i] = vs_flat_dot(q, v, DIM);
    }
    for (int r = 0; r < 25; r++) {
        int best = -1;
        for (int i = 0; i < N; i++)
            if (scores[i] > -1e30f && (best < 0 || scores[i] > scores[best])) best = i;
        char id[32];
        snprintf(id, sizeof id, "p%06d", best);
        assert_string_equal(hits[r].id, id);
        assert_true(hits[r].score == scores[best]);
        scores[best] = -1e31f;
    }
    vs_hits_free(hits, n);
    free(scores);
    free(pts);
    free(vecs);
    free(ids);
    ix->ops->close(ix);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_runs_each_part_once),
        cmocka_unit_test(test_pool_concurrent_callers),
        cmocka_unit_test(test_split_equals_whole),
        cmocka_unit_test(test_embedded_large_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
