/* vs_ann.c - per-tenant HNSW graphs over a vs_flat (see vs_ann.h).
 *
 * The tenant -> graph table is a small array: only tenants past min_points
 * (tens of thousands of faces each) have a graph, so there are few, and a
 * linear scan of their names costs less than the search it precedes. */
#include "vs_ann.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_hnsw.h"

typedef struct ann_graph {
    char tenant[VS_FLAT_TENANT_MAX + 1];
    vs_hnsw *h;
} ann_graph;

struct vs_ann {
    vs_ann_cfg cfg;
    const vs_flat *flat;
    pthread_rwlock_t map;     /* guards graphs[] / n (not the graphs' contents) */
    ann_graph *graphs;
    int n, cap;
    _Atomic uint64_t searches, fallbacks, builds;
};

vs_ann_cfg vs_ann_cfg_resolve(const vs_ann_cfg *cfg) {
    vs_ann_cfg c = cfg ? *cfg : (vs_ann_cfg){0};
    if (c.min_points == 0) c.min_points = VS_ANN_MIN_POINTS_DEFAULT;
    if (c.M <= 0) c.M = VS_ANN_M_DEFAULT;
    if (c.ef_construction <= 0) c.ef_construction = VS_ANN_EF_CONSTRUCTION_DEFAULT;
    if (c.ef_search <= 0) c.ef_search = VS_ANN_EF_SEARCH_DEFAULT;
    if (c.M < 2) c.M = 2;
    if (c.M > VS_HNSW_M_MAX) c.M = VS_HNSW_M_MAX;
    if (c.ef_construction > VS_HNSW_EF_MAX) c.ef_construction = VS_HNSW_EF_MAX;
    if (c.ef_search > VS_HNSW_EF_MAX) c.ef_search = VS_HNSW_EF_MAX;
    return c;
}

vs_ann *vs_ann_new(const vs_ann_cfg *cfg, const vs_flat *flat) {
    vs_ann *a = vs_calloc(1, sizeof *a);
    if (!a) return NULL;
    a->cfg = vs_ann_cfg_resolve(cfg);
    a->flat = flat;
    pthread_rwlock_init(&a->map, NULL);
    return a;
}

void vs_ann_clear(vs_ann *a) {
    pthread_rwlock_wrlock(&a->map);
    for (int i = 0; i < a->n; i++) vs_hnsw_free(a->graphs[i].h);
    a->n = 0;
    pthread_rwlock_unlock(&a->map);
}

void vs_ann_free(vs_ann *a) {
    if (!a) return;
    vs_ann_clear(a);
    vs_free(a->graphs);
    pthread_rwlock_destroy(&a->map);
    vs_free(a);
}

/* vector_of for the graphs: the flat's float32 row of a slot. */
static const float *ann_vector_of(void *ctx, uint32_t slot) { return vs_flat_vector(ctx, slot); }

/* Index of tenant's graph or -1. Caller holds the map lock (either way) or
 * is the writer (the only one who changes the map). */
static int ann_find(const vs_ann *a, const char *tenant) {
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->graphs[i].tenant, tenant) == 0) return i;
    return -1;
}

/* The graph of slot's tenant (slot live in the flat) or NULL. */
static vs_hnsw *ann_graph_of_slot(const vs_ann *a, uint32_t slot) {
    vs_flat_view v;
    vs_flat_view_of(a->flat, slot, &v);
    int i = ann_find(a, v.tenant);
    return i >= 0 ? a->graphs[i].h : NULL;
}

void vs_ann_forget(vs_ann *a, uint32_t slot) {
    vs_hnsw *h = a->n ? ann_graph_of_slot(a, slot) : NULL;
    if (h && vs_hnsw_contains(h, slot)) vs_hnsw_delete(h, slot, NULL);
}

/* Takes tenant's graph out of the map and frees it. */
static void ann_drop(vs_ann *a, const char *tenant) {
    pthread_rwlock_wrlock(&a->map);
    int at = ann_find(a, tenant);
    vs_hnsw *h = at >= 0 ? a->graphs[at].h : NULL;
    if (at >= 0) a->graphs[at] = a->graphs[--a->n];
    pthread_rwlock_unlock(&a->map);
    vs_hnsw_free(h);   /* no search holds it: searches hold the map lock while they use a graph */
}

void vs_ann_note(vs_ann *a, uint32_t slot) {
    vs_hnsw *h = a->n ? ann_graph_of_slot(a, slot) : NULL;
    if (!h || vs_hnsw_insert(h, slot, vs_flat_vector(a->flat, slot), NULL) == VS_OK) return;
    /* out of memory: a graph missing a point would hide it from searches;
     * without the graph the exact scan answers until refresh rebuilds it */
    vs_flat_view v;
    vs_flat_view_of(a->flat, slot, &v);
    ann_drop(a, v.tenant);
}

int vs_ann_forget_many(vs_ann *a, const char *tenant, size_t n) {
    if (!a->n || ann_find(a, tenant) < 0) return 0;
    vs_filter f = {.tenant_id = tenant};
    /* a repaired delete costs about as much as three inserts */
    if (n * 3 < vs_flat_count(a->flat, &f)) return 0;
    ann_drop(a, tenant);
    return 1;
}

/* Builds a graph over every point of tenant (outside the map lock: searches
 * go on with the exact scan meanwhile). */
static vs_err ann_build(vs_ann *a, const char *tenant, vs_hnsw **out, vs_error *err) {
    vs_hnsw_cfg hc = {.dim = vs_flat_dim(a->flat), .M = a->cfg.M, .ef_construction = a->cfg.ef_construction,
                      .seed = 0x5EEDull, .vector_of = ann_vector_of, .vector_ctx = (void *)a->flat};
    vs_filter f = {.tenant_id = tenant};
    uint32_t *slots = NULL;
    size_t n = 0;
    vs_err rc = vs_hnsw_new(&hc, out, err);
    if (!rc) rc = vs_flat_select(a->flat, &f, &slots, &n, err);
    for (size_t i = 0; i < n && !rc; i++) rc = vs_hnsw_insert(*out, slots[i], vs_flat_vector(a->flat, slots[i]), err);
    vs_free(slots);
    if (rc) {
        vs_hnsw_free(*out);
        *out = NULL;
    }
    return rc;
}

/* Adds (tenant, h) to the map; NOMEM leaves the map as it was. */
static vs_err ann_install(vs_ann *a, const char *tenant, vs_hnsw *h, vs_error *err) {
    vs_err rc = VS_OK;
    pthread_rwlock_wrlock(&a->map);
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 4;
        ann_graph *g = vs_realloc(a->graphs, (size_t)cap * sizeof *g);
        if (g) a->graphs = g, a->cap = cap;
    }
    if (a->n < a->cap) {
        snprintf(a->graphs[a->n].tenant, sizeof a->graphs[a->n].tenant, "%s", tenant);
        a->graphs[a->n++].h = h;
    } else {
        rc = vs_fail(err, VS_ERR_NOMEM, "ann: no room for the graph of tenant %s", tenant);
    }
    pthread_rwlock_unlock(&a->map);
    return rc;
}

vs_err vs_ann_refresh(vs_ann *a, const char *tenant, vs_error *err) {
    if (a->cfg.min_points < 0) return VS_OK;
    vs_filter f = {.tenant_id = tenant};
    int64_t n = (int64_t)vs_flat_count(a->flat, &f);
    int at = ann_find(a, tenant);
    if (at >= 0 && n < a->cfg.min_points / 2) {
        ann_drop(a, tenant);
        return VS_OK;
    }
    if (at >= 0 || n < a->cfg.min_points) return VS_OK;
    vs_hnsw *h;
    vs_err rc = ann_build(a, tenant, &h, err);
    if (!rc) atomic_fetch_add(&a->builds, 1);
    if (!rc && (rc = ann_install(a, tenant, h, err))) vs_hnsw_free(h);
    return rc;
}

/* Filter callback: the slot matches every field of the filter. */
static int ann_keep(void *ctx, uint32_t slot) {
    const void *const *p = ctx;
    return vs_flat_matches(p[0], slot, p[1]);
}

/* Whether flt narrows the tenant (site or min_quality; sha is handled apart). */
static int ann_narrows(const vs_filter *flt) { return (flt->site && *flt->site) || flt->min_quality > 0; }

vs_err vs_ann_search(vs_ann *a, const float *query, const vs_filter *flt, int k, vs_flat_hit *out, int *n,
                     int *used, vs_error *err) {
    *n = 0, *used = 0;
    if (a->cfg.min_points < 0 || flt->exact || (flt->image_sha256 && *flt->image_sha256) || k < 1 ||
        k > VS_HNSW_EF_MAX)
        return VS_OK;
    vs_err rc = VS_OK;
    pthread_rwlock_rdlock(&a->map);
    int at = ann_find(a, flt->tenant_id);
    vs_hnsw_hit *hits = at >= 0 ? vs_malloc((size_t)k * sizeof *hits) : NULL;
    if (at >= 0 && !hits) rc = vs_fail(err, VS_ERR_NOMEM, "ann search: %d hits", k);
    if (hits) {
        const void *keep_ctx[2] = {a->flat, flt};
        int narrow = ann_narrows(flt);
        size_t nh = 0;
        int ef = a->cfg.ef_search > k ? a->cfg.ef_search : k;
        rc = vs_hnsw_search(a->graphs[at].h, query, (size_t)k, ef, narrow ? ann_keep : NULL, keep_ctx, hits, &nh,
                            err);
        /* fewer than k matches found: the filter is selective, exact answers */
        if (!rc && nh < (size_t)k && narrow) atomic_fetch_add(&a->fallbacks, 1);
        if (!rc && (nh == (size_t)k || !narrow)) {
            atomic_fetch_add(&a->searches, 1);
            *used = 1;
            for (size_t i = 0; i < nh; i++) out[(*n)++] = (vs_flat_hit){hits[i].id, hits[i].score};
        }
    }
    pthread_rwlock_unlock(&a->map);
    vs_free(hits);
    return rc;
}

void vs_ann_get_stats(vs_ann *a, vs_ann_stats *st) {
    memset(st, 0, sizeof *st);
    pthread_rwlock_rdlock(&a->map);
    st->graphs = a->n;
    for (int i = 0; i < a->n; i++) {
        st->points += vs_hnsw_count(a->graphs[i].h);
        st->bytes += vs_hnsw_bytes(a->graphs[i].h);
    }
    pthread_rwlock_unlock(&a->map);
    st->searches = atomic_load(&a->searches);
    st->exact_fallbacks = atomic_load(&a->fallbacks);
    st->builds = atomic_load(&a->builds);
}

typedef struct ann_check {
    const vs_ann *a;
    const char *tenant;
    uint32_t bad;
    int found_bad;
} ann_check;

/* foreach callback: the node is a live slot of the graph's tenant. */
static int ann_check_one(void *ctx, uint32_t slot) {
    ann_check *c = ctx;
    vs_filter f = {.tenant_id = c->tenant};
    if (vs_flat_matches(c->a->flat, slot, &f)) return 0;
    c->bad = slot, c->found_bad = 1;
    return 1;
}

vs_err vs_ann_validate(vs_ann *a, vs_error *err) {
    vs_err rc = VS_OK;
    pthread_rwlock_rdlock(&a->map);
    for (int i = 0; i < a->n && !rc; i++) {
        ann_check c = {a, a->graphs[i].tenant, 0, 0};
        vs_filter f = {.tenant_id = c.tenant};
        size_t want = vs_flat_count(a->flat, &f), have = vs_hnsw_count(a->graphs[i].h);
        rc = vs_hnsw_validate(a->graphs[i].h, err);
        if (!rc) vs_hnsw_foreach(a->graphs[i].h, ann_check_one, &c);
        if (!rc && c.found_bad)
            rc = vs_fail(err, VS_ERR_INTERNAL, "ann validate: graph of %s holds slot %u, not a live point of it",
                         c.tenant, c.bad);
        if (!rc && want != have)
            rc = vs_fail(err, VS_ERR_INTERNAL, "ann validate: tenant %s has %zu points, its graph %zu", c.tenant, want,
                         have);
    }
    pthread_rwlock_unlock(&a->map);
    return rc;
}
