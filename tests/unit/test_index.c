/* test_index.c - the embedded vector index against a brute-force reference:
 * exact top-k, tenant isolation, filters, replace/delete/scroll, persistence
 * (reopen, torn tail, mid-file corruption, bad headers, compaction),
 * concurrent readers with a writer, and allocation failure during upsert.
 * Every index lives in its own mkdtemp data dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vs_alloc.h"
#include "vs_err.h"
#include "vs_index.h"
#include "vs_index_embedded.h"
#include "vs_index_log.h"

#define COLL "faces_v1"
#define MODEL "faceres@test"
#define N_TENANTS 3
#define N_SITES 3

/* Fails with the index's message when the code is not `want`. */
#define assert_rc(expr, want, e)                                                                                \
    do {                                                                                                        \
        vs_err rc_ = (expr);                                                                                    \
        if (rc_ != (want)) fail_msg("%s: got %s, want %s (%s)", #expr, vs_err_name(rc_), vs_err_name(want),   \
                                    (e).msg);                                                                   \
    } while (0)
#define assert_ok(expr, e) assert_rc(expr, VS_OK, e)

/* ---- fixture ------------------------------------------------------------ */

/* The reference copy of every point the test wrote. */
typedef struct fx {
    char dir[128];
    vs_index *ix;
    int dim, n;
    float *vecs;
    int *tenant, *site, *alive;
    float *quality;
    uint64_t rng;
} fx;

static uint64_t rnd(fx *f) { /* xorshift64* */
    f->rng ^= f->rng >> 12;
    f->rng ^= f->rng << 25;
    f->rng ^= f->rng >> 27;
    return f->rng * 2685821657736338717ull;
}
static float rnd_unit(fx *f) { return (float)((rnd(f) >> 11) * (1.0 / 9007199254740992.0)); }

/* Fills v with a random unit vector (or a small perturbation of base). */
static void rand_vec(fx *f, float *v, const float *base, float noise) {
    double n2 = 0;
    for (int d = 0; d < f->dim; d++) {
        v[d] = (base ? base[d] : 0.0f) + noise * (2.0f * rnd_unit(f) - 1.0f);
        n2 += (double)v[d] * v[d];
    }
    float inv = (float)(1.0 / sqrt(n2));
    for (int d = 0; d < f->dim; d++) v[d] *= inv;
}

static void id_of(int i, char out[VS_POINT_ID_MAX]) { snprintf(out, VS_POINT_ID_MAX, "p-%06d", i); }
static void tenant_of(int t, char out[32]) { snprintf(out, 32, "tenant-%d", t); }
static void sha_of(int i, char out[32]) { snprintf(out, 32, "sha-%05d", i / 4); } /* 4 faces per image */

/* Payload JSON of reference point i (what a face point looks like). */
static void payload_of(const fx *f, int i, char *out, size_t cap) {
    char t[32], sha[32];
    tenant_of(f->tenant[i], t);
    sha_of(i, sha);
    snprintf(out, cap,
             "{\"tenant_id\":\"%s\",\"site\":\"site-%d.example\",\"image_sha256\":\"%s\",\"face_index\":%d,"
             "\"quality_score\":%.9g,\"bbox\":[1,2,3,4]}",
             t, f->site[i], sha, i % 4, (double)f->quality[i]);
}

static int rm_one(const char *p, const struct stat *s, int flag, struct FTW *ftw) {
    (void)s, (void)flag, (void)ftw;
    return remove(p);
}

static vs_index *open_ix(const char *dir) {
    vs_index *ix = NULL;
    vs_error e = {0};
    assert_ok(vs_index_open("embedded", dir, &ix, &e), e);
    return ix;
}

/* A fresh data dir with the collection created and capacity for n points. */
static fx *fx_new(int dim, int n, uint64_t seed) {
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/vs_index_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->dim = dim;
    f->rng = seed;
    f->vecs = calloc((size_t)n * (size_t)dim, sizeof(float));
    f->tenant = calloc((size_t)n, sizeof(int));
    f->site = calloc((size_t)n, sizeof(int));
    f->alive = calloc((size_t)n, sizeof(int));
    f->quality = calloc((size_t)n, sizeof(float));
    f->ix = open_ix(f->dir);
    vs_error e = {0};
    assert_ok(f->ix->ops->ensure_collection(f->ix, COLL, dim, MODEL, &e), e);
    return f;
}

static void fx_free(fx *f) {
    if (f->ix) f->ix->ops->close(f->ix);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f->vecs);
    free(f->tenant);
    free(f->site);
    free(f->alive);
    free(f->quality);
    free(f);
}

static void fx_reopen(fx *f) {
    f->ix->ops->close(f->ix);
    f->ix = open_ix(f->dir);
}

static void log_path(const fx *f, char *out, size_t cap) {
    snprintf(out, cap, "%s/index/%s/%s", f->dir, COLL, VS_LOG_FILE);
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Upserts reference points [from, to) (after setting their data) in batches. */
static void put_points(fx *f, int from, int to, int batch) {
    vs_point *pts = calloc((size_t)batch, sizeof *pts);
    char (*ids)[VS_POINT_ID_MAX] = calloc((size_t)batch, VS_POINT_ID_MAX);
    char (*pay)[512] = calloc((size_t)batch, 512);
    for (int i = from; i < to; i += batch) {
        int k = 0;
        for (int j = i; j < to && j < i + batch; j++, k++) {
            id_of(j, ids[k]);
            payload_of(f, j, pay[k], 512);
            pts[k] = (vs_point){ids[k], f->vecs + (size_t)j * (size_t)f->dim, pay[k]};
            f->alive[j] = 1;
        }
        vs_error e = {0};
        assert_ok(f->ix->ops->upsert(f->ix, COLL, pts, k, &e), e);
    }
    if (to > f->n) f->n = to;
    free(pts);
    free(ids);
    free(pay);
}

/* Random data for points [from, to): tenants, sites, qualities, vectors. */
static void gen_points(fx *f, int from, int to) {
    for (int i = from; i < to; i++) {
        f->tenant[i] = (int)(rnd(f) % N_TENANTS);
        f->site[i] = (int)(rnd(f) % N_SITES);
        f->quality[i] = (float)(rnd(f) % 1000) / 1000.0f;
        rand_vec(f, f->vecs + (size_t)i * (size_t)f->dim, NULL, 1.0f);
    }
}

static void validate(fx *f) {
    vs_error e = {0};
    assert_ok(vs_index_validate(f->ix, COLL, &e), e);
}

/* ---- brute-force reference ---------------------------------------------- */

typedef struct ref_hit {
    int i;
    double score;
} ref_hit;

static int ref_cmp(const void *a, const void *b) {
    const ref_hit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->i - y->i; /* ids are p-%06d: index order is id order */
}

static double ref_dot(const fx *f, int i, const float *q) {
    double s = 0;
    const float *v = f->vecs + (size_t)i * (size_t)f->dim;
    for (int d = 0; d < f->dim; d++) s += (double)v[d] * q[d];
    return s;
}

/* Whether reference point i passes filter (tenant index t, site/sha/quality). */
static int ref_match(const fx *f, int i, int t, int site, const char *sha, float minq) {
    char s[32];
    if (!f->alive[i] || f->tenant[i] != t) return 0;
    if (site >= 0 && f->site[i] != site) return 0;
    if (sha) {
        sha_of(i, s);
        if (strcmp(s, sha) != 0) return 0;
    }
    return !(minq > 0) || f->quality[i] >= minq;
}

/* Reference top-k; returns how many. */
static int ref_search(const fx *f, const float *q, int t, int site, const char *sha, float minq, int k, float thr,
                      ref_hit *out) {
    int n = 0;
    for (int i = 0; i < f->n; i++) {
        if (!ref_match(f, i, t, site, sha, minq)) continue;
        double s = ref_dot(f, i, q);
        if (s < thr) continue;
        out[n++] = (ref_hit){i, s};
    }
    qsort(out, (size_t)n, sizeof *out, ref_cmp);
    return n < k ? n : k;
}

/* Runs one search on the index and checks it against the reference: same
 * ids (except where the reference itself has a near-tie) and scores. */
static void check_search(fx *f, const float *q, int t, int site, const char *sha, float minq, int k, float thr) {
    char tn[32], sn[32];
    tenant_of(t, tn);
    snprintf(sn, sizeof sn, "site-%d.example", site);
    vs_filter flt = {.tenant_id = tn, .site = site >= 0 ? sn : NULL, .image_sha256 = sha, .min_quality = minq};
    vs_hit *hits = NULL;
    int n = 0;
    vs_error e = {0};
    assert_ok(f->ix->ops->search(f->ix, COLL, q, &flt, k, thr, &hits, &n, &e), e);
    ref_hit *ref = malloc(sizeof *ref * (size_t)(f->n + 1));
    int rn = ref_search(f, q, t, site, sha, minq, k, thr, ref);
    /* Near the threshold float vs double may disagree on one point. */
    if (n != rn) {
        int boundary = 0;
        for (int i = 0; i < f->n; i++)
            if (ref_match(f, i, t, site, sha, minq) && fabs(ref_dot(f, i, q) - thr) < 1e-5) boundary = 1;
        if (!boundary) fail_msg("search returned %d hits, reference %d", n, rn);
    }
    for (int j = 0; j < n && j < rn; j++) {
        int i = atoi(hits[j].id + 2);
        assert_true(i >= 0 && i < f->n);
        double s = ref_dot(f, i, q);
        if (fabs(s - hits[j].score) > 1e-4)
            fail_msg("hit %d (%s): score %f, reference %f", j, hits[j].id, hits[j].score, s);
        if (i != ref[j].i && fabs(s - ref[j].score) > 1e-5)
            fail_msg("hit %d: index has %s (%f), reference p-%06d (%f)", j, hits[j].id, s, ref[j].i, ref[j].score);
        /* Tenant isolation and filters, asserted on every hit. */
        assert_true(ref_match(f, i, t, site, sha, minq));
        assert_non_null(strstr(hits[j].payload_json, tn));
        if (j > 0) assert_true(hits[j].score <= hits[j - 1].score);
    }
    vs_hits_free(hits, n);
    free(ref);
}

/* ---- tests -------------------------------------------------------------- */

static void test_crc32c_vector(void **state) {
    (void)state;
    assert_int_equal(vs_crc32c(0, "123456789", 9), 0xE3069283u);
    /* continuation equals one pass */
    assert_int_equal(vs_crc32c(vs_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    assert_int_equal(vs_crc32c(0, "", 0), 0);
}

static void test_ensure_collection_mismatch(void **state) {
    (void)state;
    fx *f = fx_new(64, 1, 1);
    vs_error e = {0};
    assert_ok(f->ix->ops->ensure_collection(f->ix, COLL, 64, MODEL, &e), e);
    assert_rc(f->ix->ops->ensure_collection(f->ix, COLL, 128, MODEL, &e), VS_ERR_INVALID_ARG, e);
    assert_non_null(strstr(e.msg, "128"));
    assert_non_null(strstr(e.msg, "64"));
    assert_rc(f->ix->ops->ensure_collection(f->ix, COLL, 64, "other-model", &e), VS_ERR_INVALID_ARG, e);
    assert_non_null(strstr(e.msg, "other-model"));
    assert_non_null(strstr(e.msg, MODEL));
    assert_rc(f->ix->ops->ensure_collection(f->ix, "../evil", 64, MODEL, &e), VS_ERR_INVALID_ARG, e);
    assert_rc(f->ix->ops->ensure_collection(f->ix, "x", 0, MODEL, &e), VS_ERR_INVALID_ARG, e);
    vs_filter flt = {.tenant_id = "t"};
    int64_t n = -1;
    assert_rc(f->ix->ops->count(f->ix, "nope", &flt, &n, &e), VS_ERR_NOT_FOUND, e);
    assert_non_null(strstr(e.msg, "nope"));
    /* persists: the reopened collection still refuses another dim */
    fx_reopen(f);
    assert_rc(f->ix->ops->ensure_collection(f->ix, COLL, 32, MODEL, &e), VS_ERR_INVALID_ARG, e);
    assert_ok(f->ix->ops->ensure_collection(f->ix, COLL, 64, MODEL, &e), e);
    /* a second open of the same data dir is refused while the first holds it */
    vs_index *other = NULL;
    assert_rc(vs_index_open("embedded", f->dir, &other, &e), VS_ERR_IO, e);
    assert_rc(vs_index_open("redis://x", f->dir, &other, &e), VS_ERR_UNSUPPORTED, e);
    assert_true(f->ix->ops->healthy(f->ix));
    fx_free(f);
}

/* Exact search against brute force at one dimension. */
static void exact_at_dim(int dim) {
    fx *f = fx_new(dim, 2000, 42 + (uint64_t)dim);
    gen_points(f, 0, 2000);
    put_points(f, 0, 2000, 250);
    validate(f);
    float *q = malloc(sizeof(float) * (size_t)dim);
    for (int r = 0; r < 8; r++) {
        for (int t = 0; t < N_TENANTS; t++) {
            if (r % 2)
                rand_vec(f, q, NULL, 1.0f);
            else /* near an existing point: realistic high scores */
                rand_vec(f, q, f->vecs + (size_t)(rnd(f) % 2000) * (size_t)dim, 0.05f);
            check_search(f, q, t, -1, NULL, 0, 10, -1.0f);
        }
    }
    rand_vec(f, q, f->vecs, 0.01f);
    check_search(f, q, f->tenant[0], -1, NULL, 0, 1, -1.0f);
    check_search(f, q, f->tenant[0], -1, NULL, 0, 5000, -1.0f); /* top_k over the tenant's size */
    check_search(f, q, f->tenant[0], -1, NULL, 0, 50, 0.05f);   /* threshold */
    /* get returns exactly what was stored */
    float *v = malloc(sizeof(float) * (size_t)dim);
    char id[VS_POINT_ID_MAX], tn[32], want[512];
    for (int i = 0; i < 2000; i += 97) {
        id_of(i, id);
        tenant_of(f->tenant[i], tn);
        char *pay = NULL;
        vs_error e = {0};
        assert_ok(f->ix->ops->get(f->ix, COLL, tn, id, v, &pay, &e), e);
        assert_memory_equal(v, f->vecs + (size_t)i * (size_t)dim, sizeof(float) * (size_t)dim);
        payload_of(f, i, want, sizeof want);
        assert_string_equal(pay, want);
        vs_free(pay);
    }
    free(v);
    free(q);
    fx_free(f);
}

static void test_search_exact_dim64(void **state) {
    (void)state;
    exact_at_dim(64);
}

static void test_search_exact_dim1024(void **state) {
    (void)state;
    exact_at_dim(1024);
}

static int count_of(fx *f, const vs_filter *flt) {
    int64_t n = -1;
    vs_error e = {0};
    assert_ok(f->ix->ops->count(f->ix, COLL, flt, &n, &e), e);
    return (int)n;
}

static int ref_count(const fx *f, int t, int site, const char *sha, float minq) {
    int n = 0;
    for (int i = 0; i < f->n; i++) n += ref_match(f, i, t, site, sha, minq);
    return n;
}

typedef struct scroll_acc {
    char (*ids)[VS_POINT_ID_MAX];
    int n, cap;
    const char *tenant;
    int bad;
    int stop_after;
} scroll_acc;

static int scroll_cb(void *ctx, const char *id, const float *vec, const char *payload) {
    scroll_acc *a = ctx;
    (void)vec;
    char want[64];
    snprintf(want, sizeof want, "\"tenant_id\":\"%s\"", a->tenant);
    if (!strstr(payload, want)) a->bad++;
    if (a->n < a->cap) snprintf(a->ids[a->n], VS_POINT_ID_MAX, "%s", id);
    a->n++;
    return a->stop_after && a->n >= a->stop_after;
}

/* Scrolls every point of a tenant in pages of `limit`; returns how many. */
static int scroll_all(fx *f, const char *tenant, int limit, scroll_acc *a) {
    vs_filter flt = {.tenant_id = tenant};
    char next[VS_POINT_ID_MAX] = "", after[VS_POINT_ID_MAX];
    a->n = 0;
    a->tenant = tenant;
    do {
        snprintf(after, sizeof after, "%s", next);
        vs_error e = {0};
        int before = a->n;
        assert_ok(f->ix->ops->scroll(f->ix, COLL, &flt, after[0] ? after : NULL, limit, scroll_cb, a, next, &e), e);
        assert_true(a->n - before <= limit);
    } while (next[0]);
    return a->n;
}

static void test_tenant_isolation(void **state) {
    (void)state;
    fx *f = fx_new(32, 600, 7);
    gen_points(f, 0, 600);
    put_points(f, 0, 600, 100);
    char ta[32], tb[32], id[VS_POINT_ID_MAX];
    tenant_of(0, ta);
    tenant_of(1, tb);
    int nb = ref_count(f, 1, -1, NULL, 0);
    vs_filter fa = {.tenant_id = ta}, fb = {.tenant_id = tb};
    assert_int_equal(count_of(f, &fa), ref_count(f, 0, -1, NULL, 0));
    assert_int_equal(count_of(f, &fb), nb);
    /* search: a query equal to a B point, as tenant A, never sees it */
    int b0 = -1;
    for (int i = 0; i < 600 && b0 < 0; i++)
        if (f->tenant[i] == 1) b0 = i;
    vs_hit *hits = NULL;
    int n = 0;
    vs_error e = {0};
    assert_ok(f->ix->ops->search(f->ix, COLL, f->vecs + (size_t)b0 * 32, &fa, 1000, -1.0f, &hits, &n, &e), e);
    assert_int_equal(n, ref_count(f, 0, -1, NULL, 0));
    for (int j = 0; j < n; j++) {
        assert_int_equal(f->tenant[atoi(hits[j].id + 2)], 0);
        assert_non_null(strstr(hits[j].payload_json, "\"tenant_id\":\"tenant-0\""));
    }
    vs_hits_free(hits, n);
    /* get of B's point as A: not found, outputs untouched */
    id_of(b0, id);
    char *pay = (char *)"sentinel";
    assert_rc(f->ix->ops->get(f->ix, COLL, ta, id, NULL, &pay, &e), VS_ERR_NOT_FOUND, e);
    assert_null(pay);
    assert_ok(f->ix->ops->get(f->ix, COLL, tb, id, NULL, NULL, &e), e);
    /* unknown tenant: empty everywhere */
    vs_filter fz = {.tenant_id = "tenant-zzz"};
    assert_int_equal(count_of(f, &fz), 0);
    assert_ok(f->ix->ops->search(f->ix, COLL, f->vecs, &fz, 10, -1.0f, &hits, &n, &e), e);
    assert_int_equal(n, 0);
    /* scroll as A: only A */
    scroll_acc acc = {.ids = calloc(600, VS_POINT_ID_MAX), .cap = 600};
    assert_int_equal(scroll_all(f, ta, 50, &acc), ref_count(f, 0, -1, NULL, 0));
    assert_int_equal(acc.bad, 0);
    /* delete_ids of B's ids as A: nothing happens */
    const char *bids[3];
    char bid[3][VS_POINT_ID_MAX];
    int k = 0;
    for (int i = 0; i < 600 && k < 3; i++)
        if (f->tenant[i] == 1) id_of(i, bid[k]), bids[k] = bid[k], k++;
    int64_t del = -1;
    assert_ok(f->ix->ops->delete_ids(f->ix, COLL, ta, bids, 3, &del, &e), e);
    assert_int_equal(del, 0);
    assert_int_equal(count_of(f, &fb), nb);
    fx_reopen(f); /* nothing of B's reached the log either */
    assert_int_equal(count_of(f, &fb), nb);
    /* delete_filter as A removes only A */
    assert_ok(f->ix->ops->delete_filter(f->ix, COLL, &fa, &del, &e), e);
    assert_int_equal(del, ref_count(f, 0, -1, NULL, 0));
    assert_int_equal(count_of(f, &fa), 0);
    assert_int_equal(count_of(f, &fb), nb);
    /* a filter without tenant is refused */
    vs_filter none = {0};
    assert_rc(f->ix->ops->delete_filter(f->ix, COLL, &none, &del, &e), VS_ERR_INVALID_ARG, e);
    assert_rc(f->ix->ops->search(f->ix, COLL, f->vecs, &none, 10, -1.0f, &hits, &n, &e), VS_ERR_INVALID_ARG, e);
    assert_rc(f->ix->ops->count(f->ix, COLL, NULL, &del, &e), VS_ERR_INVALID_ARG, e);
    validate(f);
    free(acc.ids);
    fx_free(f);
}

static void test_filters(void **state) {
    (void)state;
    fx *f = fx_new(48, 900, 11);
    gen_points(f, 0, 900);
    put_points(f, 0, 900, 300);
    float q[48];
    char sha[32], tn[32], sn[32];
    for (int t = 0; t < N_TENANTS; t++) {
        tenant_of(t, tn);
        for (int s = 0; s < N_SITES; s++) {
            rand_vec(f, q, NULL, 1.0f);
            check_search(f, q, t, s, NULL, 0, 15, -1.0f);
            snprintf(sn, sizeof sn, "site-%d.example", s);
            vs_filter flt = {.tenant_id = tn, .site = sn};
            assert_int_equal(count_of(f, &flt), ref_count(f, t, s, NULL, 0));
        }
        rand_vec(f, q, NULL, 1.0f);
        check_search(f, q, t, -1, NULL, 0.5f, 15, -1.0f);
        check_search(f, q, t, 1, NULL, 0.8f, 15, -1.0f);
        vs_filter fq = {.tenant_id = tn, .min_quality = 0.5f};
        assert_int_equal(count_of(f, &fq), ref_count(f, t, -1, NULL, 0.5f));
    }
    /* image_sha256: the faces of one image */
    sha_of(40, sha);
    rand_vec(f, q, NULL, 1.0f);
    check_search(f, q, f->tenant[40], -1, sha, 0, 10, -1.0f);
    tenant_of(f->tenant[40], tn);
    vs_filter fs = {.tenant_id = tn, .image_sha256 = sha};
    assert_int_equal(count_of(f, &fs), ref_count(f, f->tenant[40], -1, sha, 0));
    /* delete_filter by image, as in DELETE /api/v1/images/{sha256} */
    int64_t del = -1;
    vs_error e = {0};
    int want = ref_count(f, f->tenant[40], -1, sha, 0);
    assert_true(want >= 1);
    assert_ok(f->ix->ops->delete_filter(f->ix, COLL, &fs, &del, &e), e);
    assert_int_equal(del, want);
    for (int i = 0; i < 900; i++)
        if (ref_match(f, i, f->tenant[40], -1, sha, 0)) f->alive[i] = 0;
    assert_int_equal(count_of(f, &fs), 0);
    for (int t = 0; t < N_TENANTS; t++) {
        tenant_of(t, tn);
        vs_filter ft = {.tenant_id = tn};
        assert_int_equal(count_of(f, &ft), ref_count(f, t, -1, NULL, 0));
    }
    validate(f);
    fx_free(f);
}

static void test_replace_delete_scroll(void **state) {
    (void)state;
    fx *f = fx_new(16, 500, 5);
    gen_points(f, 0, 500);
    put_points(f, 0, 500, 64);
    char tn[32], id[VS_POINT_ID_MAX];
    tenant_of(f->tenant[3], tn);
    vs_filter ft = {.tenant_id = tn};
    int before = count_of(f, &ft);
    /* upsert of an existing id replaces: count unchanged, new data returned */
    rand_vec(f, f->vecs + 3 * 16, NULL, 1.0f);
    f->quality[3] = 0.123f;
    put_points(f, 3, 4, 1);
    assert_int_equal(count_of(f, &ft), before);
    float v[16];
    char *pay = NULL, want[512];
    vs_error e = {0};
    id_of(3, id);
    assert_ok(f->ix->ops->get(f->ix, COLL, tn, id, v, &pay, &e), e);
    assert_memory_equal(v, f->vecs + 3 * 16, sizeof v);
    payload_of(f, 3, want, sizeof want);
    assert_string_equal(pay, want);
    vs_free(pay);
    check_search(f, f->vecs + 3 * 16, f->tenant[3], -1, NULL, 0, 3, -1.0f);
    /* the same id moved to another tenant stays consistent */
    f->tenant[3] = (f->tenant[3] + 1) % N_TENANTS;
    put_points(f, 3, 4, 1);
    assert_int_equal(count_of(f, &ft), before - 1);
    validate(f);
    /* within one batch the last occurrence wins */
    vs_point dup[2];
    char p0[512], p1[512];
    payload_of(f, 5, p0, sizeof p0);
    payload_of(f, 5, p1, sizeof p1);
    memcpy(strstr(p1, "\"bbox\":[1,2,3,4]"), "\"bbox\":[9,9,9,9]", 16);
    id_of(5, id);
    dup[0] = (vs_point){id, f->vecs + 5 * 16, p0};
    dup[1] = (vs_point){id, f->vecs + 5 * 16, p1};
    assert_ok(f->ix->ops->upsert(f->ix, COLL, dup, 2, &e), e);
    tenant_of(f->tenant[5], tn);
    assert_ok(f->ix->ops->get(f->ix, COLL, tn, id, NULL, &pay, &e), e);
    assert_string_equal(pay, p1);
    vs_free(pay);
    /* delete_ids counts only existing points of the tenant; repeats count once */
    const char *ids[4];
    char idb[4][VS_POINT_ID_MAX];
    int t0 = f->tenant[10], k = 0;
    for (int i = 10; i < 500 && k < 3; i++)
        if (f->tenant[i] == t0) id_of(i, idb[k]), ids[k] = idb[k], f->alive[i] = 0, k++;
    ids[3] = ids[0];
    tenant_of(t0, tn);
    int64_t del = -1;
    assert_ok(f->ix->ops->delete_ids(f->ix, COLL, tn, ids, 4, &del, &e), e);
    assert_int_equal(del, 3);
    assert_ok(f->ix->ops->delete_ids(f->ix, COLL, tn, ids, 4, &del, &e), e);
    assert_int_equal(del, 0);
    assert_rc(f->ix->ops->get(f->ix, COLL, tn, ids[0], NULL, NULL, &e), VS_ERR_NOT_FOUND, e);
    validate(f);
    /* scroll: every point exactly once, in id order, in pages of any size */
    for (int t = 0; t < N_TENANTS; t++) {
        tenant_of(t, tn);
        scroll_acc acc = {.ids = calloc(600, VS_POINT_ID_MAX), .cap = 600};
        int want = ref_count(f, t, -1, NULL, 0);
        const int limits[] = {1, 2, 7, want - 1, want, want + 1, 1000};
        for (size_t li = 0; li < sizeof limits / sizeof limits[0]; li++) {
            int n = scroll_all(f, tn, limits[li], &acc);
            assert_int_equal(n, want);
            assert_int_equal(acc.bad, 0);
            for (int j = 1; j < n; j++) assert_true(strcmp(acc.ids[j - 1], acc.ids[j]) < 0);
            for (int j = 0; j < n; j++) assert_true(ref_match(f, atoi(acc.ids[j] + 2), t, -1, NULL, 0));
        }
        /* the callback can stop early; next resumes right after */
        acc.n = 0;
        acc.stop_after = 3;
        char next[VS_POINT_ID_MAX];
        vs_filter fl = {.tenant_id = tn};
        assert_ok(f->ix->ops->scroll(f->ix, COLL, &fl, NULL, 100, scroll_cb, &acc, next, &e), e);
        assert_int_equal(acc.n, 3);
        assert_string_equal(next, acc.ids[2]);
        free(acc.ids);
    }
    /* bad input leaves the index untouched */
    int total = 0;
    for (int t = 0; t < N_TENANTS; t++) {
        tenant_of(t, tn);
        vs_filter fl = {.tenant_id = tn};
        total += count_of(f, &fl);
    }
    float nanv[16] = {NAN};
    vs_point bad[] = {
        {"ok-1", f->vecs, "{\"tenant_id\":\"tenant-0\"}"},
        {"bad-1", f->vecs, "{\"site\":\"x\"}"},
    };
    assert_rc(f->ix->ops->upsert(f->ix, COLL, bad, 2, &e), VS_ERR_INVALID_ARG, e);
    assert_non_null(strstr(e.msg, "tenant_id"));
    assert_non_null(strstr(e.msg, COLL));
    bad[1] = (vs_point){"bad-q", f->vecs, "{\"tenant_id\":\"tenant-0\",\"quality_score\":1e300}"};
    assert_rc(f->ix->ops->upsert(f->ix, COLL, bad, 2, &e), VS_ERR_INVALID_ARG, e);
    bad[1] = (vs_point){"bad-2", f->vecs, "not json"};
    assert_rc(f->ix->ops->upsert(f->ix, COLL, bad, 2, &e), VS_ERR_INVALID_ARG, e);
    bad[1] = (vs_point){"bad-3", nanv, "{\"tenant_id\":\"tenant-0\"}"};
    assert_rc(f->ix->ops->upsert(f->ix, COLL, bad, 2, &e), VS_ERR_INVALID_ARG, e);
    bad[1] = (vs_point){"0123456789012345678901234567890123456789012345678901234567890123", f->vecs,
                        "{\"tenant_id\":\"tenant-0\"}"};
    assert_rc(f->ix->ops->upsert(f->ix, COLL, bad, 2, &e), VS_ERR_INVALID_ARG, e);
    int after = 0;
    for (int t = 0; t < N_TENANTS; t++) {
        tenant_of(t, tn);
        vs_filter fl = {.tenant_id = tn};
        after += count_of(f, &fl);
    }
    assert_int_equal(after, total);
    validate(f);
    fx_free(f);
}

/* Every hit of a fixed set of queries, as text, for before/after comparisons. */
static char *search_snapshot(fx *f) {
    size_t cap = 1 << 20, len = 0;
    char *out = calloc(1, cap);
    float q[64];
    uint64_t saved = f->rng;
    f->rng = 99;
    for (int r = 0; r < 6; r++) {
        rand_vec(f, q, NULL, 1.0f);
        char tn[32];
        tenant_of(r % N_TENANTS, tn);
        vs_filter flt = {.tenant_id = tn};
        vs_hit *hits = NULL;
        int n = 0;
        vs_error e = {0};
        assert_ok(f->ix->ops->search(f->ix, COLL, q, &flt, 10, -1.0f, &hits, &n, &e), e);
        for (int j = 0; j < n; j++)
            len +=
                (size_t)snprintf(out + len, cap - len, "%s %.9g %s\n", hits[j].id, hits[j].score, hits[j].payload_json);
        vs_hits_free(hits, n);
    }
    f->rng = saved;
    return out;
}

static void test_persistence_reopen(void **state) {
    (void)state;
    fx *f = fx_new(64, 800, 21);
    gen_points(f, 0, 800);
    put_points(f, 0, 800, 100);
    const char *ids[2] = {"p-000001", "p-000002"};
    char tn[32];
    tenant_of(f->tenant[1], tn);
    int64_t del;
    vs_error e = {0};
    assert_ok(f->ix->ops->delete_ids(f->ix, COLL, tn, ids, 1, &del, &e), e);
    f->alive[1] = 0;
    rand_vec(f, f->vecs + 5 * 64, NULL, 1.0f);
    put_points(f, 5, 6, 1); /* a replacement */
    /* surrounding whitespace is dropped so the stored text is exactly the object */
    vs_point ws = {"ws-1", f->vecs, " \n{\"tenant_id\":\"tenant-ws\", \"x\": [1, 2]}\t\n"};
    assert_ok(f->ix->ops->upsert(f->ix, COLL, &ws, 1, &e), e);
    char *before = search_snapshot(f);
    fx_reopen(f);
    validate(f);
    char *after = search_snapshot(f);
    assert_string_equal(before, after);
    char *wpay = NULL;
    assert_ok(f->ix->ops->get(f->ix, COLL, "tenant-ws", "ws-1", NULL, &wpay, &e), e);
    assert_string_equal(wpay, "{\"tenant_id\":\"tenant-ws\", \"x\": [1, 2]}");
    vs_free(wpay);
    assert_rc(f->ix->ops->get(f->ix, COLL, tn, "p-000001", NULL, NULL, &e), VS_ERR_NOT_FOUND, e);
    float v[64];
    tenant_of(f->tenant[5], tn);
    assert_ok(f->ix->ops->get(f->ix, COLL, tn, "p-000005", v, NULL, &e), e);
    assert_memory_equal(v, f->vecs + 5 * 64, sizeof v);
    for (int t = 0; t < N_TENANTS; t++) {
        tenant_of(t, tn);
        vs_filter fl = {.tenant_id = tn};
        assert_int_equal(count_of(f, &fl), ref_count(f, t, -1, NULL, 0));
    }
    free(before);
    free(after);
    fx_free(f);
}

/* Truncates/overwrites bytes of the log of a closed fixture. */
static void poke(const char *path, long off, const void *bytes, size_t n) {
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, n, off), (ssize_t)n);
    close(fd);
}

static void test_torn_tail(void **state) {
    (void)state;
    /* cut: inside the commit, inside the last record, just the commit, garbage appended */
    const long cuts[] = {5, 300, 32, -100};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        fx *f = fx_new(64, 300, 31 + c);
        char path[256];
        log_path(f, path, sizeof path);
        gen_points(f, 0, 300);
        put_points(f, 0, 200, 100);
        long s1 = file_size(path);
        put_points(f, 200, 300, 100);
        long s2 = file_size(path);
        f->ix->ops->close(f->ix);
        f->ix = NULL;
        if (cuts[c] > 0) {
            assert_int_equal(truncate(path, s2 - cuts[c]), 0);
        } else {
            char zeros[100] = {0};
            poke(path, s2, zeros, sizeof zeros);
        }
        f->ix = open_ix(f->dir);
        validate(f);
        int total = 0;
        for (int t = 0; t < N_TENANTS; t++) {
            char tn[32];
            tenant_of(t, tn);
            vs_filter fl = {.tenant_id = tn};
            total += count_of(f, &fl);
        }
        if (cuts[c] > 0) {
            assert_int_equal(total, 200); /* the torn batch is dropped whole */
            assert_int_equal(file_size(path), s1);
        } else {
            assert_int_equal(total, 300);
            assert_int_equal(file_size(path), s2);
        }
        /* and the log keeps working after the cut */
        for (int i = 200; i < 300; i++) f->alive[i] = 0;
        put_points(f, 250, 260, 10);
        fx_reopen(f);
        validate(f);
        fx_free(f);
    }
}

static void test_corruption(void **state) {
    (void)state;
    fx *f = fx_new(64, 300, 41);
    char path[256];
    log_path(f, path, sizeof path);
    gen_points(f, 0, 300);
    put_points(f, 0, 100, 100);
    put_points(f, 100, 300, 100);
    f->ix->ops->close(f->ix);
    f->ix = NULL;
    long hdr = 20 + (long)strlen(MODEL);
    /* a flipped byte in the first group, valid groups after it */
    unsigned char b;
    int fd = open(path, O_RDONLY);
    assert_int_equal(pread(fd, &b, 1, hdr + 100), 1);
    close(fd);
    b ^= 0x40;
    poke(path, hdr + 100, &b, 1);
    vs_index *ix = NULL;
    vs_error e = {0};
    assert_rc(vs_index_open("embedded", f->dir, &ix, &e), VS_ERR_CORRUPT, e);
    assert_non_null(strstr(e.msg, path));
    char off[32];
    snprintf(off, sizeof off, "offset %ld", hdr);
    assert_non_null(strstr(e.msg, off));
    assert_true(file_size(path) > hdr + 1000); /* nothing was cut */
    b ^= 0x40;
    poke(path, hdr + 100, &b, 1);
    /* a flipped byte inside the last, acknowledged group is corruption too */
    long s = file_size(path);
    fd = open(path, O_RDONLY);
    assert_int_equal(pread(fd, &b, 1, s - 200), 1);
    close(fd);
    b ^= 1;
    poke(path, s - 200, &b, 1);
    assert_rc(vs_index_open("embedded", f->dir, &ix, &e), VS_ERR_CORRUPT, e);
    b ^= 1;
    poke(path, s - 200, &b, 1);
    /* wrong magic and wrong version give clear errors */
    poke(path, 0, "XSIX", 4);
    assert_rc(vs_index_open("embedded", f->dir, &ix, &e), VS_ERR_CORRUPT, e);
    assert_non_null(strstr(e.msg, "magic"));
    assert_non_null(strstr(e.msg, path));
    poke(path, 0, "VSIX", 4);
    unsigned char v99[4] = {99, 0, 0, 0};
    poke(path, 4, v99, 4);
    assert_rc(vs_index_open("embedded", f->dir, &ix, &e), VS_ERR_UNSUPPORTED, e);
    assert_non_null(strstr(e.msg, "version 99"));
    unsigned char v1[4] = {1, 0, 0, 0};
    poke(path, 4, v1, 4);
    /* a header whose dim was changed fails its checksum */
    unsigned char d[4] = {65, 0, 0, 0};
    poke(path, 8, d, 4);
    assert_rc(vs_index_open("embedded", f->dir, &ix, &e), VS_ERR_CORRUPT, e);
    d[0] = 64;
    poke(path, 8, d, 4);
    /* a length field pointing far beyond the file, followed by valid groups */
    unsigned char big[4] = {0xff, 0xff, 0xff, 0x7f};
    poke(path, hdr, big, 4);
    assert_rc(vs_index_open("embedded", f->dir, &ix, &e), VS_ERR_CORRUPT, e);
    fx_free(f);
}

static void test_compaction(void **state) {
    (void)state;
    fx *f = fx_new(64, 300, 51);
    char path[256];
    log_path(f, path, sizeof path);
    gen_points(f, 0, 300);
    for (int r = 0; r < 4; r++) put_points(f, 0, 300, 100); /* 3/4 of the log is dead */
    char tn[32];
    tenant_of(0, tn);
    vs_filter f0 = {.tenant_id = tn};
    int64_t del;
    vs_error e = {0};
    assert_ok(f->ix->ops->delete_filter(f->ix, COLL, &f0, &del, &e), e);
    for (int i = 0; i < 300; i++)
        if (f->tenant[i] == 0) f->alive[i] = 0;
    char *before = search_snapshot(f);
    long s_before = file_size(path);
    vs_index_embedded_set_compact_min(1000);
    fx_reopen(f);
    vs_index_embedded_set_compact_min(64ull << 20);
    long s_after = file_size(path);
    assert_true(s_after < s_before / 3);
    validate(f);
    char *after = search_snapshot(f);
    assert_string_equal(before, after);
    fx_reopen(f); /* the compacted file replays to the same state */
    validate(f);
    assert_int_equal(file_size(path), s_after);
    free(after);
    after = search_snapshot(f);
    assert_string_equal(before, after);
    free(before);
    free(after);
    fx_free(f);
}

/* ---- concurrency -------------------------------------------------------- */

typedef struct conc {
    fx *f;
    atomic_int stop, errors, searches, writes;
    char first_err[VS_ERROR_MSG_MAX];
    pthread_mutex_t mu;
} conc;

static void conc_fail(conc *c, const char *msg) {
    pthread_mutex_lock(&c->mu);
    if (!c->first_err[0]) snprintf(c->first_err, sizeof c->first_err, "%s", msg);
    pthread_mutex_unlock(&c->mu);
    atomic_fetch_add(&c->errors, 1);
}

static void *reader(void *arg) {
    conc *c = arg;
    fx *f = c->f;
    uint64_t rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)&rng;
    float q[32];
    while (!atomic_load(&c->stop)) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        int t = (int)(rng % N_TENANTS);
        double n2 = 0;
        for (int d = 0; d < 32; d++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            q[d] = (float)((int)(rng % 2001) - 1000);
            n2 += (double)q[d] * q[d];
        }
        for (int d = 0; d < 32; d++) q[d] = (float)(q[d] / sqrt(n2 + 1e-9));
        char tn[32], want[64];
        tenant_of(t, tn);
        snprintf(want, sizeof want, "\"tenant_id\":\"%s\"", tn);
        vs_filter flt = {.tenant_id = tn};
        vs_hit *hits = NULL;
        int n = 0;
        vs_error e = {0};
        if (f->ix->ops->search(f->ix, COLL, q, &flt, 10, -1.0f, &hits, &n, &e) != VS_OK) conc_fail(c, e.msg);
        for (int j = 0; j < n; j++) {
            if (!strstr(hits[j].payload_json, want)) conc_fail(c, "search returned another tenant's point");
            if (j && hits[j].score > hits[j - 1].score) conc_fail(c, "hits out of order");
        }
        if (n > 0) {
            float v[32];
            vs_error ge = {0};
            vs_err rc = f->ix->ops->get(f->ix, COLL, tn, hits[0].id, v, NULL, &ge);
            if (rc != VS_OK && rc != VS_ERR_NOT_FOUND) conc_fail(c, ge.msg); /* may be deleted meanwhile */
        }
        vs_hits_free(hits, n);
        int64_t cnt;
        if (f->ix->ops->count(f->ix, COLL, &flt, &cnt, &e) != VS_OK) conc_fail(c, e.msg);
        atomic_fetch_add(&c->searches, 1);
    }
    return NULL;
}

static void *writer(void *arg) {
    conc *c = arg;
    fx *f = c->f;
    uint64_t rng = 12345;
    int next_id = 100000;
    while (!atomic_load(&c->stop)) {
        vs_point pts[8];
        char ids[8][VS_POINT_ID_MAX], pay[8][128];
        float vecs[8][32];
        for (int k = 0; k < 8; k++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            int replace = (int)(rng % 3) == 0;
            int t = (int)(rng % N_TENANTS);
            if (replace) { /* an existing id of the initial set, same tenant */
                int i = (int)(rng % 1000);
                id_of(i, ids[k]);
                t = f->tenant[i];
            } else {
                id_of(next_id++, ids[k]);
            }
            snprintf(pay[k], sizeof pay[k], "{\"tenant_id\":\"tenant-%d\",\"site\":\"w\"}", t);
            for (int d = 0; d < 32; d++) vecs[k][d] = (d == (int)(rng % 32)) ? 1.0f : 0.0f;
            pts[k] = (vs_point){ids[k], vecs[k], pay[k]};
        }
        vs_error e = {0};
        if (f->ix->ops->upsert(f->ix, COLL, pts, 8, &e) != VS_OK) conc_fail(c, e.msg);
        if (next_id % 5 == 0) { /* now and then delete a fresh point */
            char tn[32];
            const char *one = ids[7];
            tenant_of(0, tn);
            int64_t del;
            if (f->ix->ops->delete_ids(f->ix, COLL, tn, &one, 1, &del, &e) != VS_OK) conc_fail(c, e.msg);
        }
        atomic_fetch_add(&c->writes, 1);
    }
    return NULL;
}

static void test_concurrent(void **state) {
    (void)state;
    fx *f = fx_new(32, 1000, 61);
    gen_points(f, 0, 1000);
    put_points(f, 0, 1000, 250);
    conc c = {.f = f};
    pthread_mutex_init(&c.mu, NULL);
    pthread_t r[4], w;
    for (int i = 0; i < 4; i++) pthread_create(&r[i], NULL, reader, &c);
    pthread_create(&w, NULL, writer, &c);
    struct timespec one = {1, 0};
    nanosleep(&one, NULL);
    atomic_store(&c.stop, 1);
    for (int i = 0; i < 4; i++) pthread_join(r[i], NULL);
    pthread_join(w, NULL);
    if (atomic_load(&c.errors)) fail_msg("%d errors, first: %s", atomic_load(&c.errors), c.first_err);
    assert_true(atomic_load(&c.searches) > 0);
    assert_true(atomic_load(&c.writes) > 0);
    validate(f);
    pthread_mutex_destroy(&c.mu);
    fx_free(f);
}

/* ---- allocation failure ------------------------------------------------- */

/* Points of all three test tenants. */
static int total_count(fx *f) {
    int total = 0;
    for (int t = 0; t < N_TENANTS; t++) {
        char tn[32];
        tenant_of(t, tn);
        vs_filter fl = {.tenant_id = tn};
        total += count_of(f, &fl);
    }
    return total;
}

static void test_upsert_alloc_failure(void **state) {
    (void)state;
    enum { NEW = 200, REP = 20, B = NEW + REP };
    fx *f = fx_new(32, 600, 71);
    char path[256];
    log_path(f, path, sizeof path);
    gen_points(f, 0, 600);
    put_points(f, 0, 300, 100);
    /* the batch: new points (enough to grow every tenant block), replacements,
     * and one brand-new tenant */
    vs_point pts[B];
    static char ids[B][VS_POINT_ID_MAX], pay[B][512];
    for (int k = 0; k < B; k++) {
        int i = k < NEW ? 300 + k : (k - NEW) * 7;
        id_of(i, ids[k]);
        payload_of(f, i, pay[k], sizeof pay[k]);
        if (k == 0) snprintf(pay[k], sizeof pay[k], "{\"tenant_id\":\"tenant-new\"}");
        pts[k] = (vs_point){ids[k], f->vecs + (size_t)i * 32, pay[k]};
    }
    /* replacements get new vectors so a half-applied batch would show */
    float rep[REP][32];
    for (int k = 0; k < REP; k++) {
        rand_vec(f, rep[k], NULL, 1.0f);
        pts[NEW + k].vector = rep[k];
    }
    long size0 = file_size(path);
    int total0 = total_count(f);
    char *snap0 = search_snapshot(f);
    int failures = 0;
    vs_err rc = VS_ERR_NOMEM;
    for (long k = 0; rc == VS_ERR_NOMEM && k < 10000; k++) {
        vs_error e = {0};
        vs_alloc_fail_after(k);
        rc = f->ix->ops->upsert(f->ix, COLL, pts, B, &e);
        vs_alloc_fail_after(-1);
        if (rc == VS_OK) break;
        if (rc != VS_ERR_NOMEM) fail_msg("allocation failure %ld gave %s: %s", k, vs_err_name(rc), e.msg);
        failures++;
        /* nothing of the batch is visible, in memory or on disk */
        validate(f);
        assert_int_equal(file_size(path), size0);
        vs_filter fl = {.tenant_id = "tenant-new"};
        assert_int_equal(count_of(f, &fl), 0);
        assert_int_equal(total_count(f), total0);
        char *snap = search_snapshot(f);
        assert_string_equal(snap, snap0);
        free(snap);
    }
    free(snap0);
    assert_int_equal(rc, VS_OK);
    assert_true(failures > 3);
    assert_true(f->ix->ops->healthy(f->ix));
    validate(f);
    vs_filter fl = {.tenant_id = "tenant-new"};
    assert_int_equal(count_of(f, &fl), 1);
    assert_int_equal(total_count(f), total0 + NEW - 1);
    /* search fails cleanly too */
    vs_alloc_fail_after(0);
    vs_hit *hits = NULL;
    int n = 0;
    vs_error e = {0};
    vs_filter f0 = {.tenant_id = "tenant-0"};
    rc = f->ix->ops->search(f->ix, COLL, f->vecs, &f0, 10, -1.0f, &hits, &n, &e);
    vs_alloc_fail_after(-1);
    assert_int_equal(rc, VS_ERR_NOMEM);
    assert_null(hits);
    fx_reopen(f);
    validate(f);
    assert_int_equal(count_of(f, &fl), 1);
    assert_int_equal(total_count(f), total0 + NEW - 1);
    fx_free(f);
}

/* A write that fails half-way (file size limit, as with a full disk) leaves
 * neither bytes in the log nor points in memory, and the index keeps working. */
static void test_write_failure(void **state) {
    (void)state;
    enum { N = 1500 }; /* ~6 MB of dim-1024 records: one 4 MiB flush, then the rest */
    fx *f = fx_new(1024, N, 81);
    char path[256];
    log_path(f, path, sizeof path);
    gen_points(f, 0, N);
    put_points(f, 0, 10, 10);
    long size0 = file_size(path);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    for (int r = 0; r < 2; r++) {
        lim = old;
        lim.rlim_cur = (rlim_t)size0 + (r == 0 ? 5u << 20 : 1000u); /* after a flush / at once */
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        vs_point *pts = calloc(N, sizeof *pts);
        static char ids[N][VS_POINT_ID_MAX], pay[N][512];
        for (int i = 10; i < N; i++) {
            id_of(i, ids[i]);
            payload_of(f, i, pay[i], sizeof pay[i]);
            pts[i - 10] = (vs_point){ids[i], f->vecs + (size_t)i * 1024, pay[i]};
        }
        vs_error e = {0};
        vs_err rc = f->ix->ops->upsert(f->ix, COLL, pts, N - 10, &e);
        setrlimit(RLIMIT_FSIZE, &old);
        free(pts);
        assert_int_equal(rc, VS_ERR_IO);
        assert_non_null(strstr(e.msg, path));
        assert_int_equal(file_size(path), size0);
        assert_int_equal(total_count(f), 10);
        assert_true(f->ix->ops->healthy(f->ix));
        validate(f);
    }
    signal(SIGXFSZ, prev);
    put_points(f, 10, 20, 10);
    fx_reopen(f);
    validate(f);
    assert_int_equal(total_count(f), 20);
    fx_free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vector),
        cmocka_unit_test(test_ensure_collection_mismatch),
        cmocka_unit_test(test_search_exact_dim64),
        cmocka_unit_test(test_search_exact_dim1024),
        cmocka_unit_test(test_tenant_isolation),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_replace_delete_scroll),
        cmocka_unit_test(test_persistence_reopen),
        cmocka_unit_test(test_torn_tail),
        cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_compaction),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_upsert_alloc_failure),
        cmocka_unit_test(test_write_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
