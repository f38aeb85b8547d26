/* contract_index.h - what every vs_index backend must do, per vs_index.h,
 * checked against a brute-force reference copy of every point written:
 * collections that refuse another dim or model, exact top-k (ids, scores,
 * order, threshold), tenant isolation in every call, payload filters,
 * replace/delete counts, scroll in pages of any size, durability across a
 * reopen, bad points refused whole, and concurrent searches with a writer.
 * Ids are half plain strings, half face UUIDs. Included by test_index.c
 * (embedded) and test_index_qdrant_live.c, which describe their backend in
 * an index_backend and run CONTRACT_INDEX_TESTS(&backend) plus their own
 * tests. Not a program of its own. */
#ifndef CONTRACT_INDEX_H
#define CONTRACT_INDEX_H

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vs_alloc.h"
#include "vs_err.h"
#include "vs_hash.h"
#include "vs_index.h"

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

typedef struct fx fx;

/* A backend under test. */
typedef struct index_backend {
    const char *(*missing)(void);         /* non-NULL: why it cannot run here (the test is skipped) */
    void (*create)(fx *f, const char *tag); /* a fresh place for f's collection: sets f->coll (and f->dir) */
    vs_index *(*connect)(fx *f);          /* a new handle on that place */
    void (*destroy)(fx *f);               /* removes the place, after the handle is closed */
    int exact;         /* get and scroll give back the very bytes stored (Qdrant re-serialises payloads) */
    int sorted_scroll; /* scroll in strcmp order of ids (Qdrant walks the order of its derived UUIDs) */
    int validator;     /* vs_index_validate checks it (otherwise VS_ERR_UNSUPPORTED) */
} index_backend;

/* A collection plus the reference copy of every point the test wrote. */
struct fx {
    const index_backend *be;
    char coll[64], dir[128];
    vs_index *ix;
    int dim, n;
    float *vecs;
    int *tenant, *site, *alive;
    float *quality;
    char (*ids)[VS_POINT_ID_MAX];
    uint64_t rng;
};

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
static void sha_of(int i, char out[32]) { snprintf(out, 32, "sha-%05d", i / 4); } /* 4 faces per image */

/* Point i's id: half plain strings, half face UUIDs. */
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

/* A new collection (from be, named after tag where that matters) with capacity for n points. */
static fx *fx_new(const index_backend *be, const char *tag, int dim, int n, uint64_t seed) {
    const char *why = be->missing ? be->missing() : NULL;
    if (why) {
        print_message("%s\n", why);
        skip();
    }
    fx *f = calloc(1, sizeof *f);
    f->be = be;
    f->dim = dim;
    f->rng = seed;
    f->vecs = calloc((size_t)n * (size_t)dim, sizeof(float));
    f->tenant = calloc((size_t)n, sizeof(int));
    f->site = calloc((size_t)n, sizeof(int));
    f->alive = calloc((size_t)n, sizeof(int));
    f->quality = calloc((size_t)n, sizeof(float));
    f->ids = calloc((size_t)n, VS_POINT_ID_MAX);
    be->create(f, tag);
    f->ix = be->connect(f);
    vs_error e = {0};
    assert_ok(f->ix->ops->ensure_collection(f->ix, f->coll, dim, MODEL, &e), e);
    return f;
}

static void fx_free(fx *f) {
    if (f->ix) f->ix->ops->close(f->ix);
    f->be->destroy(f);
    free(f->vecs);
    free(f->tenant);
    free(f->site);
    free(f->alive);
    free(f->quality);
    free(f->ids);
    free(f);
}

/* Closes the handle and opens a new one on the same place. */
static void fx_reopen(fx *f) {
    f->ix->ops->close(f->ix);
    f->ix = f->be->connect(f);
}

/* Random data for points [from, to): tenants, sites, qualities, ids, vectors. */
static void gen_points(fx *f, int from, int to) {
    for (int i = from; i < to; i++) {
        f->tenant[i] = (int)(rnd(f) % N_TENANTS);
        f->site[i] = (int)(rnd(f) % N_SITES);
        f->quality[i] = (float)(rnd(f) % 1000) / 1000.0f;
        make_id(i, f->ids[i]);
        rand_vec(f, f->vecs + (size_t)i * (size_t)f->dim, NULL, 1.0f);
    }
}

/* Upserts reference points [from, to) (after setting their data) in batches. */
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

/* The backend's own invariant check, where it has one. */
static void validate(fx *f) {
    vs_error e = {0};
    assert_rc(vs_index_validate(f->ix, f->coll, &e), f->be->validator ? VS_OK : VS_ERR_UNSUPPORTED, e);
}

/* What get returned is what was stored: the same text and bits, or (a
 * backend that re-serialises) the same JSON and floats. */
static void assert_payload(const fx *f, const char *got, const char *want) {
    if (f->be->exact) {
        assert_string_equal(got, want);
        return;
    }
    json_t *a = json_loads(got, 0, NULL), *b = json_loads(want, 0, NULL);
    if (!json_equal(a, b)) fail_msg("payload %s, want %s", got, want);
    json_decref(a);
    json_decref(b);
}

static void assert_vector(const fx *f, const float *got, const float *want) {
    if (f->be->exact) assert_memory_equal(got, want, sizeof(float) * (size_t)f->dim);
    else
        for (int d = 0; d < f->dim; d++) assert_float_equal(got[d], want[d], 1e-6);
}

/* ---- brute-force reference ---------------------------------------------- */

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

static int ref_count(const fx *f, int t, int site, const char *sha, float minq) {
    int n = 0;
    for (int i = 0; i < f->n; i++) n += ref_match(f, i, t, site, sha, minq);
    return n;
}

/* Runs one search on the index and checks it against the reference: same
 * ids (except where the reference itself has a near-tie) and scores, every
 * hit of the tenant and the filter, best first. */
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
    /* Near the threshold float vs double may disagree on one point. */
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
            fail_msg("hit %d: index has %s (%f), reference %s (%f)", j, hits[j].id, s, f->ids[ref[j].i], ref[j].score);
        /* Tenant isolation and filters, asserted on every hit. */
        assert_true(ref_match(f, i, t, site, sha, minq));
        assert_non_null(strstr(hits[j].payload_json, tn));
        if (j > 0) assert_true(hits[j].score <= hits[j - 1].score);
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

typedef struct scroll_acc {
    fx *f;
    const char *tenant;
    int *seen; /* per reference point */
    int n, bad, unsorted, stop_after;
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
    if (a->n > 0 && strcmp(a->last, id) >= 0) a->unsorted++;
    snprintf(a->last, sizeof a->last, "%s", id);
    a->n++;
    return a->stop_after && a->n >= a->stop_after;
}

/* Scrolls tenant t in pages of limit: every point exactly once, with its
 * vector, in id order where the backend promises it. */
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
    if (f->be->sorted_scroll) assert_int_equal(a.unsorted, 0);
    assert_int_equal(a.n, ref_count(f, t, -1, NULL, 0));
    for (int i = 0; i < f->n; i++) assert_int_equal(a.seen[i], ref_match(f, i, t, -1, NULL, 0));
    free(a.seen);
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
        assert_ok(f->ix->ops->search(f->ix, f->coll, q, &flt, 10, -1.0f, &hits, &n, &e), e);
        for (int j = 0; j < n; j++)
            len +=
                (size_t)snprintf(out + len, cap - len, "%s %.9g %s\n", hits[j].id, hits[j].score, hits[j].payload_json);
        vs_hits_free(hits, n);
    }
    f->rng = saved;
    return out;
}

/* ---- the contract ------------------------------------------------------- */

static void contract_collection(void **state) {
    fx *f = fx_new(*state, "coll", 64, 1, 1);
    vs_error e = {0};
    assert_true(f->ix->ops->healthy(f->ix));
    assert_ok(f->ix->ops->ensure_collection(f->ix, f->coll, 64, MODEL, &e), e);
    assert_rc(f->ix->ops->ensure_collection(f->ix, f->coll, 128, MODEL, &e), VS_ERR_INVALID_ARG, e);
    assert_non_null(strstr(e.msg, "128"));
    assert_non_null(strstr(e.msg, "64"));
    assert_rc(f->ix->ops->ensure_collection(f->ix, f->coll, 64, "other-model", &e), VS_ERR_INVALID_ARG, e);
    assert_non_null(strstr(e.msg, "other-model"));
    assert_non_null(strstr(e.msg, MODEL));
    assert_rc(f->ix->ops->ensure_collection(f->ix, "../evil", 64, MODEL, &e), VS_ERR_INVALID_ARG, e);
    assert_rc(f->ix->ops->ensure_collection(f->ix, "x", 0, MODEL, &e), VS_ERR_INVALID_ARG, e);
    vs_filter flt = {.tenant_id = "t"};
    int64_t n = -1;
    assert_rc(f->ix->ops->count(f->ix, "visage_nope", &flt, &n, &e), VS_ERR_NOT_FOUND, e);
    assert_non_null(strstr(e.msg, "visage_nope"));
    assert_ok(f->ix->ops->count(f->ix, f->coll, &flt, &n, &e), e);
    assert_int_equal(n, 0); /* a new collection is empty for every tenant */
    /* persists: a new handle (one that never saw it) still refuses another dim or model */
    fx_reopen(f);
    assert_rc(f->ix->ops->ensure_collection(f->ix, f->coll, 32, MODEL, &e), VS_ERR_INVALID_ARG, e);
    assert_rc(f->ix->ops->ensure_collection(f->ix, f->coll, 64, "other-model", &e), VS_ERR_INVALID_ARG, e);
    assert_ok(f->ix->ops->ensure_collection(f->ix, f->coll, 64, MODEL, &e), e);
    assert_true(f->ix->ops->healthy(f->ix));
    fx_free(f);
}

/* describe names a collection's dim and model; a dropped collection is gone
 * with its points (also after a reopen) and its name can be made anew with
 * another model. */
static void contract_describe_drop(void **state) {
    fx *f = fx_new(*state, "drop", 64, 40, 7);
    vs_error e = {0};
    int dim = 0;
    char model[VS_INDEX_MODEL_MAX + 1] = "";
    assert_ok(f->ix->ops->describe(f->ix, f->coll, &dim, model, &e), e);
    assert_int_equal(dim, 64);
    assert_string_equal(model, MODEL);
    assert_rc(f->ix->ops->describe(f->ix, "visage_nope", &dim, model, &e), VS_ERR_NOT_FOUND, e);
    gen_points(f, 0, 40);
    put_points(f, 0, 40, 16);
    assert_ok(f->ix->ops->drop_collection(f->ix, f->coll, &e), e);
    vs_filter flt = {.tenant_id = "tenant-0"};
    int64_t n = -1;
    assert_rc(f->ix->ops->count(f->ix, f->coll, &flt, &n, &e), VS_ERR_NOT_FOUND, e);
    assert_rc(f->ix->ops->describe(f->ix, f->coll, &dim, model, &e), VS_ERR_NOT_FOUND, e);
    assert_ok(f->ix->ops->drop_collection(f->ix, f->coll, &e), e); /* again: nothing left to do */
    fx_reopen(f);
    assert_rc(f->ix->ops->describe(f->ix, f->coll, &dim, model, &e), VS_ERR_NOT_FOUND, e);
    /* the name again, another model: empty, and that model from now on */
    assert_ok(f->ix->ops->ensure_collection(f->ix, f->coll, 32, "other-model", &e), e);
    assert_ok(f->ix->ops->count(f->ix, f->coll, &flt, &n, &e), e);
    assert_int_equal(n, 0);
    fx_reopen(f);
    assert_ok(f->ix->ops->describe(f->ix, f->coll, &dim, model, &e), e);
    assert_int_equal(dim, 32);
    assert_string_equal(model, "other-model");
    assert_rc(f->ix->ops->drop_collection(f->ix, "../evil", &e), VS_ERR_INVALID_ARG, e);
    fx_free(f);
}

/* Exact search against brute force at one dimension. */
static void exact_at_dim(const index_backend *be, int dim) {
    fx *f = fx_new(be, "exact", dim, 2000, 42 + (uint64_t)dim);
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
    /* get returns what was stored */
    float *v = malloc(sizeof(float) * (size_t)dim);
    char tn[32], want[512];
    for (int i = 0; i < 2000; i += 97) {
        tenant_of(f->tenant[i], tn);
        char *pay = NULL;
        vs_error e = {0};
        assert_ok(f->ix->ops->get(f->ix, f->coll, tn, f->ids[i], v, &pay, &e), e);
        assert_vector(f, v, f->vecs + (size_t)i * (size_t)dim);
        payload_of(f, i, want, sizeof want);
        assert_payload(f, pay, want);
        vs_free(pay);
    }
    free(v);
    free(q);
    fx_free(f);
}

static void contract_search_exact_dim64(void **state) {
    exact_at_dim(*state, 64);
}

static void contract_search_exact_dim1024(void **state) {
    exact_at_dim(*state, 1024);
}

static void contract_tenant_isolation(void **state) {
    fx *f = fx_new(*state, "iso", 32, 600, 7);
    gen_points(f, 0, 600);
    put_points(f, 0, 600, 100);
    char ta[32], tb[32];
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
    assert_ok(f->ix->ops->search(f->ix, f->coll, f->vecs + (size_t)b0 * 32, &fa, 1000, -1.0f, &hits, &n, &e), e);
    assert_int_equal(n, ref_count(f, 0, -1, NULL, 0));
    for (int j = 0; j < n; j++) {
        assert_int_equal(f->tenant[index_of(f, hits[j].id)], 0);
        assert_non_null(strstr(hits[j].payload_json, "\"tenant_id\":\"tenant-0\""));
    }
    vs_hits_free(hits, n);
    /* get of B's point as A: not found, outputs untouched */
    char *pay = (char *)"sentinel";
    assert_rc(f->ix->ops->get(f->ix, f->coll, ta, f->ids[b0], NULL, &pay, &e), VS_ERR_NOT_FOUND, e);
    assert_null(pay);
    assert_ok(f->ix->ops->get(f->ix, f->coll, tb, f->ids[b0], NULL, NULL, &e), e);
    /* unknown tenant: empty everywhere */
    vs_filter fz = {.tenant_id = "tenant-zzz"};
    assert_int_equal(count_of(f, &fz), 0);
    assert_ok(f->ix->ops->search(f->ix, f->coll, f->vecs, &fz, 10, -1.0f, &hits, &n, &e), e);
    assert_int_equal(n, 0);
    /* scroll as A: only A */
    scroll_check(f, 0, 50);
    /* delete_ids of B's ids as A: nothing happens */
    const char *bids[3];
    int k = 0;
    for (int i = 0; i < 600 && k < 3; i++)
        if (f->tenant[i] == 1) bids[k++] = f->ids[i];
    int64_t del = -1;
    assert_ok(f->ix->ops->delete_ids(f->ix, f->coll, ta, bids, 3, &del, &e), e);
    assert_int_equal(del, 0);
    assert_int_equal(count_of(f, &fb), nb);
    fx_reopen(f); /* nothing of B's was lost in the store either */
    assert_int_equal(count_of(f, &fb), nb);
    /* delete_filter as A removes only A */
    assert_ok(f->ix->ops->delete_filter(f->ix, f->coll, &fa, &del, &e), e);
    assert_int_equal(del, ref_count(f, 0, -1, NULL, 0));
    assert_int_equal(count_of(f, &fa), 0);
    assert_int_equal(count_of(f, &fb), nb);
    /* a filter without tenant is refused */
    vs_filter none = {0};
    assert_rc(f->ix->ops->delete_filter(f->ix, f->coll, &none, &del, &e), VS_ERR_INVALID_ARG, e);
    assert_rc(f->ix->ops->search(f->ix, f->coll, f->vecs, &none, 10, -1.0f, &hits, &n, &e), VS_ERR_INVALID_ARG, e);
    assert_rc(f->ix->ops->count(f->ix, f->coll, NULL, &del, &e), VS_ERR_INVALID_ARG, e);
    validate(f);
    fx_free(f);
}

static void contract_filters(void **state) {
    fx *f = fx_new(*state, "filters", 48, 900, 11);
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
    assert_ok(f->ix->ops->delete_filter(f->ix, f->coll, &fs, &del, &e), e);
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

static void contract_replace_delete_scroll(void **state) {
    fx *f = fx_new(*state, "scroll", 16, 500, 5);
    gen_points(f, 0, 500);
    put_points(f, 0, 500, 64);
    char tn[32];
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
    assert_ok(f->ix->ops->get(f->ix, f->coll, tn, f->ids[3], v, &pay, &e), e);
    assert_vector(f, v, f->vecs + 3 * 16);
    payload_of(f, 3, want, sizeof want);
    assert_payload(f, pay, want);
    vs_free(pay);
    check_search(f, f->vecs + 3 * 16, f->tenant[3], -1, NULL, 0, 3, -1.0f);
    /* the same id moved to another tenant stays consistent */
    f->tenant[3] = (f->tenant[3] + 1) % N_TENANTS;
    put_points(f, 3, 4, 1);
    assert_int_equal(count_of(f, &ft), before - 1);
    validate(f);
    /* within one batch the last occurrence wins */
    char p0[512], p1[512];
    payload_of(f, 5, p0, sizeof p0);
    payload_of(f, 5, p1, sizeof p1);
    memcpy(strstr(p1, "\"bbox\":[1,2,3,4]"), "\"bbox\":[9,9,9,9]", 16);
    vs_point dup[2] = {{f->ids[5], f->vecs + 5 * 16, p0}, {f->ids[5], f->vecs + 5 * 16, p1}};
    assert_ok(f->ix->ops->upsert(f->ix, f->coll, dup, 2, &e), e);
    tenant_of(f->tenant[5], tn);
    assert_ok(f->ix->ops->get(f->ix, f->coll, tn, f->ids[5], NULL, &pay, &e), e);
    assert_payload(f, pay, p1);
    vs_free(pay);
    /* delete_ids counts only existing points of the tenant; repeats and unknown ids count nothing */
    const char *ids[5];
    int t0 = f->tenant[10], k = 0;
    for (int i = 10; i < 500 && k < 3; i++)
        if (f->tenant[i] == t0) ids[k++] = f->ids[i], f->alive[i] = 0;
    ids[3] = ids[0];
    ids[4] = "p-nonexistent";
    tenant_of(t0, tn);
    int64_t del = -1;
    assert_ok(f->ix->ops->delete_ids(f->ix, f->coll, tn, ids, 5, &del, &e), e);
    assert_int_equal(del, 3);
    vs_filter f0 = {.tenant_id = tn};
    assert_int_equal(count_of(f, &f0), ref_count(f, t0, -1, NULL, 0));
    assert_ok(f->ix->ops->delete_ids(f->ix, f->coll, tn, ids, 5, &del, &e), e);
    assert_int_equal(del, 0);
    assert_rc(f->ix->ops->get(f->ix, f->coll, tn, ids[0], NULL, NULL, &e), VS_ERR_NOT_FOUND, e);
    validate(f);
    /* scroll: every point exactly once, in pages of any size */
    for (int t = 0; t < N_TENANTS; t++) {
        int cnt = ref_count(f, t, -1, NULL, 0);
        const int limits[] = {1, 2, 7, cnt - 1, cnt, cnt + 1, 1000};
        for (size_t li = 0; li < sizeof limits / sizeof limits[0]; li++)
            if (limits[li] >= 1) scroll_check(f, t, limits[li]);
        /* the callback can stop early; next resumes right after it */
        tenant_of(t, tn);
        vs_filter fl = {.tenant_id = tn};
        scroll_acc acc = {.f = f, .seen = calloc(500, sizeof(int)), .tenant = tn, .stop_after = 3};
        char next[VS_POINT_ID_MAX];
        assert_ok(f->ix->ops->scroll(f->ix, f->coll, &fl, NULL, 100, scroll_cb, &acc, next, &e), e);
        assert_int_equal(acc.n, 3);
        assert_string_equal(next, acc.last);
        free(acc.seen);
    }
    /* bad points are refused whole: the index is untouched */
    int total = total_count(f);
    float nanv[16] = {NAN};
    vs_point bad[] = {
        {"ok-1", f->vecs, "{\"tenant_id\":\"tenant-0\"}"},
        {"bad-1", f->vecs, "{\"site\":\"x\"}"},
    };
    assert_rc(f->ix->ops->upsert(f->ix, f->coll, bad, 2, &e), VS_ERR_INVALID_ARG, e);
    assert_non_null(strstr(e.msg, "tenant_id"));
    assert_non_null(strstr(e.msg, f->coll));
    bad[1] = (vs_point){"bad-q", f->vecs, "{\"tenant_id\":\"tenant-0\",\"quality_score\":1e300}"};
    assert_rc(f->ix->ops->upsert(f->ix, f->coll, bad, 2, &e), VS_ERR_INVALID_ARG, e);
    bad[1] = (vs_point){"bad-2", f->vecs, "not json"};
    assert_rc(f->ix->ops->upsert(f->ix, f->coll, bad, 2, &e), VS_ERR_INVALID_ARG, e);
    bad[1] = (vs_point){"bad-3", nanv, "{\"tenant_id\":\"tenant-0\"}"};
    assert_rc(f->ix->ops->upsert(f->ix, f->coll, bad, 2, &e), VS_ERR_INVALID_ARG, e);
    bad[1] = (vs_point){"0123456789012345678901234567890123456789012345678901234567890123", f->vecs,
                        "{\"tenant_id\":\"tenant-0\"}"};
    assert_rc(f->ix->ops->upsert(f->ix, f->coll, bad, 2, &e), VS_ERR_INVALID_ARG, e);
    assert_int_equal(total_count(f), total);
    validate(f);
    fx_free(f);
}

/* Every write is there for a new handle: deletes, replacements, payload text. */
static void contract_persistence_reopen(void **state) {
    fx *f = fx_new(*state, "reopen", 64, 800, 21);
    gen_points(f, 0, 800);
    put_points(f, 0, 800, 100);
    char tn[32];
    tenant_of(f->tenant[1], tn);
    int64_t del;
    vs_error e = {0};
    const char *one = f->ids[1];
    assert_ok(f->ix->ops->delete_ids(f->ix, f->coll, tn, &one, 1, &del, &e), e);
    f->alive[1] = 0;
    rand_vec(f, f->vecs + 5 * 64, NULL, 1.0f);
    put_points(f, 5, 6, 1); /* a replacement */
    /* surrounding whitespace is dropped so the stored text is exactly the object */
    vs_point ws = {"ws-1", f->vecs, " \n{\"tenant_id\":\"tenant-ws\", \"x\": [1, 2]}\t\n"};
    assert_ok(f->ix->ops->upsert(f->ix, f->coll, &ws, 1, &e), e);
    char *before = search_snapshot(f);
    fx_reopen(f);
    validate(f);
    char *after = search_snapshot(f);
    assert_string_equal(before, after);
    char *wpay = NULL;
    assert_ok(f->ix->ops->get(f->ix, f->coll, "tenant-ws", "ws-1", NULL, &wpay, &e), e);
    assert_payload(f, wpay, "{\"tenant_id\":\"tenant-ws\", \"x\": [1, 2]}");
    vs_free(wpay);
    assert_rc(f->ix->ops->get(f->ix, f->coll, tn, f->ids[1], NULL, NULL, &e), VS_ERR_NOT_FOUND, e);
    float v[64];
    tenant_of(f->tenant[5], tn);
    assert_ok(f->ix->ops->get(f->ix, f->coll, tn, f->ids[5], v, NULL, &e), e);
    assert_vector(f, v, f->vecs + 5 * 64);
    for (int t = 0; t < N_TENANTS; t++) {
        tenant_of(t, tn);
        vs_filter fl = {.tenant_id = tn};
        assert_int_equal(count_of(f, &fl), ref_count(f, t, -1, NULL, 0));
    }
    free(before);
    free(after);
    fx_free(f);
}

/* ---- concurrency: four readers and a writer for a second ----------------- */

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
        if (f->ix->ops->search(f->ix, f->coll, q, &flt, 10, -1.0f, &hits, &n, &e) != VS_OK) conc_fail(c, e.msg);
        for (int j = 0; j < n; j++) {
            if (!strstr(hits[j].payload_json, want)) conc_fail(c, "search returned another tenant's point");
            if (j && hits[j].score > hits[j - 1].score) conc_fail(c, "hits out of order");
        }
        if (n > 0) {
            float v[32];
            vs_error ge = {0};
            vs_err rc = f->ix->ops->get(f->ix, f->coll, tn, hits[0].id, v, NULL, &ge);
            if (rc != VS_OK && rc != VS_ERR_NOT_FOUND) conc_fail(c, ge.msg); /* may be deleted meanwhile */
        }
        vs_hits_free(hits, n);
        int64_t cnt;
        if (f->ix->ops->count(f->ix, f->coll, &flt, &cnt, &e) != VS_OK) conc_fail(c, e.msg);
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
                snprintf(ids[k], sizeof ids[k], "%s", f->ids[i]);
                t = f->tenant[i];
            } else {
                snprintf(ids[k], sizeof ids[k], "w-%06d", next_id++);
            }
            snprintf(pay[k], sizeof pay[k], "{\"tenant_id\":\"tenant-%d\",\"site\":\"w\"}", t);
            for (int d = 0; d < 32; d++) vecs[k][d] = (d == (int)(rng % 32)) ? 1.0f : 0.0f;
            pts[k] = (vs_point){ids[k], vecs[k], pay[k]};
        }
        vs_error e = {0};
        if (f->ix->ops->upsert(f->ix, f->coll, pts, 8, &e) != VS_OK) conc_fail(c, e.msg);
        if (next_id % 5 == 0) { /* now and then delete a fresh point */
            char tn[32];
            const char *one = ids[7];
            tenant_of(0, tn);
            int64_t del;
            if (f->ix->ops->delete_ids(f->ix, f->coll, tn, &one, 1, &del, &e) != VS_OK) conc_fail(c, e.msg);
        }
        atomic_fetch_add(&c->writes, 1);
    }
    return NULL;
}

static void contract_concurrent(void **state) {
    fx *f = fx_new(*state, "conc", 32, 1000, 61);
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

/* The contract, for a program's test list; backend: a const index_backend *. */
#define CONTRACT_INDEX_TESTS(backend)                                                                           \
    cmocka_unit_test_prestate(contract_collection, (void *)(backend)),                                          \
        cmocka_unit_test_prestate(contract_describe_drop, (void *)(backend)),                                   \
        cmocka_unit_test_prestate(contract_search_exact_dim64, (void *)(backend)),                              \
        cmocka_unit_test_prestate(contract_search_exact_dim1024, (void *)(backend)),                            \
        cmocka_unit_test_prestate(contract_tenant_isolation, (void *)(backend)),                                \
        cmocka_unit_test_prestate(contract_filters, (void *)(backend)),                                         \
        cmocka_unit_test_prestate(contract_replace_delete_scroll, (void *)(backend)),                           \
        cmocka_unit_test_prestate(contract_persistence_reopen, (void *)(backend)),                              \
        cmocka_unit_test_prestate(contract_concurrent, (void *)(backend))

#endif
