/* test_index_qdrant_live.c - the embedded index's conformance checks (exact
 * top-k against brute force, tenant isolation, filters, replace/delete,
 * scroll) run against a real Qdrant named by QDRANT_URL (QDRANT_API_KEY when
 * it needs one). Without QDRANT_URL every test is reported as skipped. Each
 * test works in its own throw-away collection, dropped at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "vs_alloc.h"
#include "vs_err.h"
#include "vs_hash.h"
#include "vs_index.h"
#include "vs_index_qdrant.h"

#define MODEL "faceres@live-test"
#define N_TENANTS 3
#define N_SITES 3
#define SKIP_MSG "SKIPPED: set QDRANT_URL to run against a live Qdrant"

#define assert_rc(expr, want, e)                                                                                \
    do {                                                                                                        \
        vs_err rc_ = (expr);                                                                                    \
        if (rc_ != (want)) fail_msg("%s: got %s, want %s (%s)", #expr, vs_err_name(rc_), vs_err_name(want),   \
                                    (e).msg);                                                                   \
    } while (0)
#define assert_ok(expr, e) assert_rc(expr, VS_OK, e)

/* Skips the calling test unless a live Qdrant is configured. */
#define NEED_QDRANT()                                                                                           \
    do {                                                                                                        \
        if (!getenv("QDRANT_URL") || !*getenv("QDRANT_URL")) {                                                  \
            print_message("%s\n", SKIP_MSG);                                                                    \
            skip();                                                                                             \
        }                                                                                                       \
    } while (0)

/* ---- fixture: a collection plus the reference copy of every point ----- */

typedef struct fx {
    char coll[64];
    vs_index *ix;
    int dim, n;
    float *vecs;
    int *tenant, *site, *alive;
    float *quality;
    char (*ids)[VS_POINT_ID_MAX];
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

static void tenant_of(int t, char out[32]) { snprintf(out, 32, "tenant-%d", t); }
static void sha_of(int i, char out[32]) { snprintf(out, 32, "sha-%05d", i / 4); }

/* Point i's id: half plain strings (derived Qdrant ids), half face UUIDs. */
static void make_id(int i, char out[VS_POINT_ID_MAX]) {
    if (i % 2) {
        char t[32], sha[32];
        tenant_of(0, t);
        sha_of(i, sha);
        vs_face_id(t, sha, i, out);
    } else {
        snprintf(out, VS_POINT_ID_MAX, "p-%06d", i);
    }
}

/* Reference index of an id, -1 if unknown. */
static int index_of(const fx *f, const char *id) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->ids[i], id) == 0) return i;
    return -1;
}

static void payload_of(const fx *f, int i, char *out, size_t cap) {
    char t[32], sha[32];
    tenant_of(f->tenant[i], t);
    sha_of(i, sha);
    snprintf(out, cap,
             "{\"tenant_id\":\"%s\",\"site\":\"site-%d.example\",\"image_sha256\":\"%s\",\"face_index\":%d,"
             "\"quality_score\":%.9g,\"bbox\":[1,2,3,4]}",
             t, f->site[i], sha, i % 4, (double)f->quality[i]);
}

/* Sends DELETE /collections/{coll} straight to Qdrant (test cleanup only). */
static void drop_collection(const char *coll) {
    const char *base = getenv("QDRANT_URL"), *key = getenv("QDRANT_API_KEY");
    char url[512], hdr[512];
    snprintf(url, sizeof url, "%s/collections/%s", base, coll);
    CURL *h = curl_easy_init();
    struct curl_slist *hs = NULL;
    if (key && *key) {
        snprintf(hdr, sizeof hdr, "api-key: %s", key);
        hs = curl_slist_append(hs, hdr);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    curl_easy_perform(h);
    if (sink) fclose(sink);
    curl_slist_free_all(hs);
    curl_easy_cleanup(h);
}

/* A new collection named after the test, with capacity for n points. */
static fx *fx_new(const char *tag, int dim, int n, uint64_t seed) {
    fx *f = calloc(1, sizeof *f);
    snprintf(f->coll, sizeof f->coll, "visage_live_%s_%d_%ld", tag, (int)getpid(), (long)time(NULL) % 100000);
    f->dim = dim;
    f->rng = seed;
    f->vecs = calloc((size_t)n * (size_t)dim, sizeof(float));
    f->tenant = calloc((size_t)n, sizeof(int));
    f->site = calloc((size_t)n, sizeof(int));
    f->alive = calloc((size_t)n, sizeof(int));
    f->quality = calloc((size_t)n, sizeof(float));
    f->ids = calloc((size_t)n, VS_POINT_ID_MAX);
    vs_error e = {0};
    assert_ok(vs_index_open(getenv("QDRANT_URL"), NULL, &f->ix, &e), e);
    assert_true(vs_index_is_qdrant(f->ix));
    drop_collection(f->coll);
    assert_ok(f->ix->ops->ensure_collection(f->ix, f->coll, dim, MODEL, &e), e);
    return f;
}

static void fx_free(fx *f) {
    if (f->ix) f->ix->ops->close(f->ix);
    drop_collection(f->coll);
    free(f->vecs);
    free(f->tenant);
    free(f->site);
    free(f->alive);
    free(f->quality);
    free(f->ids);
    free(f);
}

static void gen_points(fx *f, int from, int to) {
    for (int i = from; i < to; i++) {
        f->tenant[i] = (int)(rnd(f) % N_TENANTS);
        f->site[i] = (int)(rnd(f) % N_SITES);
        f->quality[i] = (float)(rnd(f) % 1000) / 1000.0f;
        make_id(i, f->ids[i]);
        rand_vec(f, f->vecs + (size_t)i * (size_t)f->dim, NULL, 1.0f);
    }
}

/* Upserts reference points [from, to) in batches. */
static void put_points(fx *f, int from, int to, int batch) {
    vs_point *pts = calloc((size_t)batch, sizeof *pts);
    char (*pay)[512] = calloc((size_t)batch, 512);
    for (int i = from; i < to; i += batch) {
        int k = 0;
        for (int j = i; j < to && j < i + batch; j++, k++) {
            payload_of(f, j, pay[k], 512);
            pts[k] = (vs_point){f->ids[j], f->vecs + (size_t)j * (size_t)f->dim, pay[k]};
            f->alive[j] = 1;
        }
        vs_error e = {0};
        assert_ok(f->ix->ops->upsert(f->ix, f->coll, pts, k, &e), e);
    }
    if (to > f->n) f->n = to;
    free(pts);
    free(pay);
}

/* ---- brute-force reference -------------------------------------------- */

typedef struct ref_hit {
    int i;
    double score;
} ref_hit;

static int ref_cmp(const void *a, const void *b) {
    const ref_hit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->i - y->i;
}

static double ref_dot(const fx *f, int i, const float *q) {
    double s = 0;
    const float *v = f->vecs + (size_t)i * (size_t)f->dim;
    for (int d = 0; d < f->dim; d++) s += (double)v[d] * q[d];
    return s;
}

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

static int ref_count(const fx *f, int t, int site, const char *sha, float minq) {
    int n = 0;
    for (int i = 0; i < f->n; i++) n += ref_match(f, i, t, site, sha, minq);
    return n;
}

/* One search checked against the reference: same ids (except near-ties),
 * same scores, every hit of the tenant and the filter, best first. */
static void check_search(fx *f, const float *q, int t, int site, const char *sha, float minq, int k, float thr) {
    char tn[32], sn[32];
    tenant_of(t, tn);
    snprintf(sn, sizeof sn, "site-%d.example", site);
    vs_filter flt = {.tenant_id = tn, .site = site >= 0 ? sn : NULL, .image_sha256 = sha, .min_quality = minq};
    vs_hit *hits = NULL;
    int n = 0;
    vs_error e = {0};
    assert_ok(f->ix->ops->search(f->ix, f->coll, q, &flt, k, thr, &hits, &n, &e), e);
    ref_hit *ref = malloc(sizeof *ref * (size_t)(f->n + 1));
    int rn = 0;
    for (int i = 0; i < f->n; i++) {
        if (!ref_match(f, i, t, site, sha, minq)) continue;
        double s = ref_dot(f, i, q);
        if (s >= thr) ref[rn++] = (ref_hit){i, s};
    }
    qsort(ref, (size_t)rn, sizeof *ref, ref_cmp);
    if (rn > k) rn = k;
    if (n != rn) {
        int boundary = 0;
        for (int i = 0; i < f->n; i++)
            if (ref_match(f, i, t, site, sha, minq) && fabs(ref_dot(f, i, q) - thr) < 1e-5) boundary = 1;
        if (!boundary) fail_msg("search returned %d hits, reference %d", n, rn);
    }
    for (int j = 0; j < n && j < rn; j++) {
        int i = index_of(f, hits[j].id);
        if (i < 0) fail_msg("hit %d: unknown id %s", j, hits[j].id);
        double s = ref_dot(f, i, q);
        if (fabs(s - hits[j].score) > 1e-4)
            fail_msg("hit %d (%s): score %f, reference %f", j, hits[j].id, hits[j].score, s);
        if (i != ref[j].i && fabs(s - ref[j].score) > 1e-5)
            fail_msg("hit %d: Qdrant has %s (%f), reference %s (%f)", j, hits[j].id, s, f->ids[ref[j].i], ref[j].score);
        assert_true(ref_match(f, i, t, site, sha, minq));
        assert_non_null(strstr(hits[j].payload_json, tn));
        if (j > 0) assert_true(hits[j].score <= hits[j - 1].score + 1e-6f);
    }
    vs_hits_free(hits, n);
    free(ref);
}

static int count_of(fx *f, const vs_filter *flt) {
    int64_t n = -1;
    vs_error e = {0};
    assert_ok(f->ix->ops->count(f->ix, f->coll, flt, &n, &e), e);
    return (int)n;
}

typedef struct scroll_acc {
    fx *f;
    int *seen;
    int n, bad, stop_after;
    const char *tenant;
    char last[VS_POINT_ID_MAX];
} scroll_acc;

static int scroll_cb(void *ctx, const char *id, const float *vec, const char *payload) {
    scroll_acc *a = ctx;
    char want[64];
    snprintf(want, sizeof want, "\"tenant_id\":\"%s\"", a->tenant);
    int i = index_of(a->f, id);
    if (!strstr(payload, want) || i < 0) {
        a->bad++;
    } else {
        a->seen[i]++;
        const float *ref = a->f->vecs + (size_t)i * (size_t)a->f->dim;
        for (int d = 0; d < a->f->dim; d++)
            if (fabsf(vec[d] - ref[d]) > 1e-5f) a->bad++;
    }
    snprintf(a->last, sizeof a->last, "%s", id);
    a->n++;
    return a->stop_after && a->n >= a->stop_after;
}

/* Scrolls a tenant in pages of limit; every point must come exactly once. */
static void scroll_check(fx *f, int t, int limit) {
    char tn[32];
    tenant_of(t, tn);
    vs_filter flt = {.tenant_id = tn};
    scroll_acc a = {.f = f, .seen = calloc((size_t)f->n, sizeof(int)), .tenant = tn};
    char next[VS_POINT_ID_MAX] = "", after[VS_POINT_ID_MAX];
    do {
        memcpy(after, next, sizeof after);
        int before = a.n;
        vs_error e = {0};
        assert_ok(f->ix->ops->scroll(f->ix, f->coll, &flt, after[0] ? after : NULL, limit, scroll_cb, &a, next, &e), e);
        assert_true(a.n - before <= limit);
    } while (next[0]);
    assert_int_equal(a.bad, 0);
    assert_int_equal(a.n, ref_count(f, t, -1, NULL, 0));
    for (int i = 0; i < f->n; i++) assert_int_equal(a.seen[i], ref_match(f, i, t, -1, NULL, 0));
    free(a.seen);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_live_collection(void **state) {
    (void)state;
    NEED_QDRANT();
    fx *f = fx_new("coll", 64, 1, 1);
    vs_error e = {0};
    assert_true(f->ix->ops->healthy(f->ix));
    assert_ok(f->ix->ops->ensure_collection(f->ix, f->coll, 64, MODEL, &e), e);
    assert_rc(f->ix->ops->ensure_collection(f->ix, f->coll, 128, MODEL, &e), VS_ERR_INVALID_ARG, e);
    assert_non_null(strstr(e.msg, "128"));
    assert_non_null(strstr(e.msg, "64"));
    assert_rc(f->ix->ops->ensure_collection(f->ix, f->coll, 64, "other-model", &e), VS_ERR_INVALID_ARG, e);
    assert_non_null(strstr(e.msg, "other-model"));
    assert_non_null(strstr(e.msg, MODEL));
    /* a second client sees the same record */
    vs_index *other = NULL;
    assert_ok(vs_index_open(getenv("QDRANT_URL"), NULL, &other, &e), e);
    assert_rc(other->ops->ensure_collection(other, f->coll, 64, "other-model", &e), VS_ERR_INVALID_ARG, e);
    assert_ok(other->ops->ensure_collection(other, f->coll, 64, MODEL, &e), e);
    vs_filter flt = {.tenant_id = "t"};
    int64_t n = -1;
    assert_rc(other->ops->count(other, "visage_live_nope", &flt, &n, &e), VS_ERR_NOT_FOUND, e);
    assert_ok(other->ops->count(other, f->coll, &flt, &n, &e), e);
    assert_int_equal(n, 0); /* the record point is no tenant's */
    other->ops->close(other);
    fx_free(f);
}

static void test_live_exact_search(void **state) {
    (void)state;
    NEED_QDRANT();
    const int dim = 64, n = 1200;
    fx *f = fx_new("exact", dim, n, 42);
    gen_points(f, 0, n);
    put_points(f, 0, n, 200);
    float *q = malloc(sizeof(float) * (size_t)dim);
    for (int r = 0; r < 6; r++)
        for (int t = 0; t < N_TENANTS; t++) {
            if (r % 2)
                rand_vec(f, q, NULL, 1.0f);
            else
                rand_vec(f, q, f->vecs + (size_t)(rnd(f) % (uint64_t)n) * (size_t)dim, 0.05f);
            check_search(f, q, t, -1, NULL, 0, 10, -1.0f);
        }
    rand_vec(f, q, f->vecs, 0.01f);
    check_search(f, q, f->tenant[0], -1, NULL, 0, 1, -1.0f);
    check_search(f, q, f->tenant[0], -1, NULL, 0, 5000, -1.0f); /* top_k over the tenant's size */
    check_search(f, q, f->tenant[0], -1, NULL, 0, 50, 0.05f);   /* threshold */
    /* get returns what was stored (Cosine: vectors come back normalised) */
    float *v = malloc(sizeof(float) * (size_t)dim);
    char tn[32], want[512];
    for (int i = 0; i < n; i += 97) {
        tenant_of(f->tenant[i], tn);
        char *pay = NULL;
        vs_error e = {0};
        assert_ok(f->ix->ops->get(f->ix, f->coll, tn, f->ids[i], v, &pay, &e), e);
        for (int d = 0; d < dim; d++) assert_float_equal(v[d], f->vecs[(size_t)i * dim + d], 1e-6);
        payload_of(f, i, want, sizeof want);
        json_t *a = json_loads(pay, 0, NULL), *b = json_loads(want, 0, NULL);
        if (!json_equal(a, b)) fail_msg("get %s: payload %s, want %s", f->ids[i], pay, want);
        json_decref(a);
        json_decref(b);
        vs_free(pay);
    }
    free(v);
    free(q);
    fx_free(f);
}

static void test_live_isolation_filters(void **state) {
    (void)state;
    NEED_QDRANT();
    const int dim = 32, n = 600;
    fx *f = fx_new("iso", dim, n, 7);
    gen_points(f, 0, n);
    put_points(f, 0, n, 150);
    char ta[32], tb[32], tn[32], sn[32], sha[32];
    tenant_of(0, ta);
    tenant_of(1, tb);
    vs_filter fa = {.tenant_id = ta}, fb = {.tenant_id = tb};
    int nb = ref_count(f, 1, -1, NULL, 0);
    assert_int_equal(count_of(f, &fa), ref_count(f, 0, -1, NULL, 0));
    assert_int_equal(count_of(f, &fb), nb);
    int b0 = -1;
    for (int i = 0; i < n && b0 < 0; i++)
        if (f->tenant[i] == 1) b0 = i;
    vs_hit *hits = NULL;
    int nh = 0;
    vs_error e = {0};
    assert_ok(f->ix->ops->search(f->ix, f->coll, f->vecs + (size_t)b0 * dim, &fa, 1000, -1.0f, &hits, &nh, &e), e);
    assert_int_equal(nh, ref_count(f, 0, -1, NULL, 0));
    for (int j = 0; j < nh; j++) assert_int_equal(f->tenant[index_of(f, hits[j].id)], 0);
    vs_hits_free(hits, nh);
    char *pay = (char *)"sentinel";
    assert_rc(f->ix->ops->get(f->ix, f->coll, ta, f->ids[b0], NULL, &pay, &e), VS_ERR_NOT_FOUND, e);
    assert_null(pay);
    assert_ok(f->ix->ops->get(f->ix, f->coll, tb, f->ids[b0], NULL, NULL, &e), e);
    vs_filter fz = {.tenant_id = "tenant-zzz"};
    assert_int_equal(count_of(f, &fz), 0);
    /* filters: site, quality, image */
    float q[32];
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
    sha_of(40, sha);
    rand_vec(f, q, NULL, 1.0f);
    check_search(f, q, f->tenant[40], -1, sha, 0, 10, -1.0f);
    /* delete_ids of B's ids as A: nothing happens */
    const char *bids[3];
    int k = 0;
    for (int i = 0; i < n && k < 3; i++)
        if (f->tenant[i] == 1) bids[k++] = f->ids[i];
    int64_t del = -1;
    assert_ok(f->ix->ops->delete_ids(f->ix, f->coll, ta, bids, 3, &del, &e), e);
    assert_int_equal(del, 0);
    assert_int_equal(count_of(f, &fb), nb);
    /* delete_ids as B: counts existing points once */
    const char *rep[4] = {bids[0], bids[1], bids[0], "p-nonexistent"};
    assert_ok(f->ix->ops->delete_ids(f->ix, f->coll, tb, rep, 4, &del, &e), e);
    assert_int_equal(del, 2);
    f->alive[index_of(f, bids[0])] = f->alive[index_of(f, bids[1])] = 0;
    assert_int_equal(count_of(f, &fb), nb - 2);
    assert_rc(f->ix->ops->get(f->ix, f->coll, tb, bids[0], NULL, NULL, &e), VS_ERR_NOT_FOUND, e);
    /* delete_filter by image, then as A entirely */
    tenant_of(f->tenant[40], tn);
    vs_filter fs = {.tenant_id = tn, .image_sha256 = sha};
    int want = ref_count(f, f->tenant[40], -1, sha, 0);
    assert_ok(f->ix->ops->delete_filter(f->ix, f->coll, &fs, &del, &e), e);
    assert_int_equal(del, want);
    for (int i = 0; i < n; i++)
        if (ref_match(f, i, f->tenant[40], -1, sha, 0)) f->alive[i] = 0;
    assert_int_equal(count_of(f, &fs), 0);
    int nb_now = ref_count(f, 1, -1, NULL, 0);
    assert_ok(f->ix->ops->delete_filter(f->ix, f->coll, &fa, &del, &e), e);
    assert_int_equal(del, ref_count(f, 0, -1, NULL, 0));
    assert_int_equal(count_of(f, &fa), 0);
    assert_int_equal(count_of(f, &fb), nb_now);
    vs_filter none = {0};
    assert_rc(f->ix->ops->delete_filter(f->ix, f->coll, &none, &del, &e), VS_ERR_INVALID_ARG, e);
    fx_free(f);
}

static void test_live_replace_scroll(void **state) {
    (void)state;
    NEED_QDRANT();
    const int dim = 16, n = 300;
    fx *f = fx_new("scroll", dim, n, 5);
    gen_points(f, 0, n);
    put_points(f, 0, n, 64);
    char tn[32], want[512];
    vs_error e = {0};
    /* replace: new vector and payload, count unchanged */
    tenant_of(f->tenant[3], tn);
    vs_filter ft = {.tenant_id = tn};
    int before = count_of(f, &ft);
    rand_vec(f, f->vecs + 3 * dim, NULL, 1.0f);
    f->quality[3] = 0.123f;
    put_points(f, 3, 4, 1);
    assert_int_equal(count_of(f, &ft), before);
    float v[16];
    char *pay = NULL;
    assert_ok(f->ix->ops->get(f->ix, f->coll, tn, f->ids[3], v, &pay, &e), e);
    for (int d = 0; d < dim; d++) assert_float_equal(v[d], f->vecs[3 * dim + d], 1e-6);
    payload_of(f, 3, want, sizeof want);
    json_t *a = json_loads(pay, 0, NULL), *b = json_loads(want, 0, NULL);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    vs_free(pay);
    /* moved to another tenant */
    f->tenant[3] = (f->tenant[3] + 1) % N_TENANTS;
    put_points(f, 3, 4, 1);
    assert_int_equal(count_of(f, &ft), before - 1);
    /* within one batch the last occurrence wins */
    char p0[512], p1[512];
    payload_of(f, 5, p0, sizeof p0);
    payload_of(f, 5, p1, sizeof p1);
    memcpy(strstr(p1, "\"bbox\":[1,2,3,4]"), "\"bbox\":[9,9,9,9]", 16);
    vs_point dup[2] = {{f->ids[5], f->vecs + 5 * dim, p0}, {f->ids[5], f->vecs + 5 * dim, p1}};
    assert_ok(f->ix->ops->upsert(f->ix, f->coll, dup, 2, &e), e);
    tenant_of(f->tenant[5], tn);
    assert_ok(f->ix->ops->get(f->ix, f->coll, tn, f->ids[5], NULL, &pay, &e), e);
    assert_non_null(strstr(pay, "[9,9,9,9]"));
    vs_free(pay);
    /* scroll: every point of a tenant exactly once, pages of any size */
    for (int t = 0; t < N_TENANTS; t++) {
        int cnt = ref_count(f, t, -1, NULL, 0);
        const int limits[] = {1, 7, cnt - 1, cnt, cnt + 1, 1000};
        for (size_t li = 0; li < sizeof limits / sizeof limits[0]; li++)
            if (limits[li] >= 1) scroll_check(f, t, limits[li]);
    }
    /* the callback can stop early; next resumes right after it */
    tenant_of(0, tn);
    vs_filter f0 = {.tenant_id = tn};
    scroll_acc acc = {.f = f, .seen = calloc((size_t)n, sizeof(int)), .tenant = tn, .stop_after = 3};
    char next[VS_POINT_ID_MAX];
    assert_ok(f->ix->ops->scroll(f->ix, f->coll, &f0, NULL, 100, scroll_cb, &acc, next, &e), e);
    assert_int_equal(acc.n, 3);
    assert_string_equal(next, acc.last);
    free(acc.seen);
    fx_free(f);
}

int main(void) {
    if (!getenv("QDRANT_URL") || !*getenv("QDRANT_URL")) printf("%s\n", SKIP_MSG);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_collection),
        cmocka_unit_test(test_live_exact_search),
        cmocka_unit_test(test_live_isolation_filters),
        cmocka_unit_test(test_live_replace_scroll),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
