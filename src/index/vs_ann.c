/* vs_ann.c - per-tenant HNSW graphs over a vs_flat (see vs_ann.h).
 *
 * The tenant -> graph table is a small array: only tenants past min_points
 * (tens of thousands of faces each) have a graph, so there are few, and a
 * linear scan of their names costs less than the search it precedes. */
#include "vs_ann.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_hnsw.h"
#include "vs_index_log.h"   /* vs_crc32c */

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
    _Atomic uint64_t searches, fallbacks, builds, reconnected;
    uint64_t changes;         /* graph writes since the last save (writer only) */
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
    if (h && vs_hnsw_delete(h, slot, NULL) == VS_OK) a->changes++;   /* NOT_FOUND: it was not in the graph */
}

/* Takes tenant's graph out of the map and frees it. */
static void ann_drop(vs_ann *a, const char *tenant) {
    a->changes++;
    pthread_rwlock_wrlock(&a->map);
    int at = ann_find(a, tenant);
    vs_hnsw *h = at >= 0 ? a->graphs[at].h : NULL;
    if (at >= 0) a->graphs[at] = a->graphs[--a->n];
    pthread_rwlock_unlock(&a->map);
    vs_hnsw_free(h);   /* no search holds it: searches hold the map lock while they use a graph */
}

void vs_ann_note(vs_ann *a, uint32_t slot) {
    vs_hnsw *h = a->n ? ann_graph_of_slot(a, slot) : NULL;
    if (!h) return;
    a->changes++;
    if (vs_hnsw_insert(h, slot, vs_flat_vector(a->flat, slot), NULL) == VS_OK) return;
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

/* The parameters of every graph of a. */
static vs_hnsw_cfg ann_hnsw_cfg(const vs_ann *a) {
    return (vs_hnsw_cfg){.dim = vs_flat_dim(a->flat), .M = a->cfg.M, .ef_construction = a->cfg.ef_construction,
                         .seed = 0x5EEDull, .vector_of = ann_vector_of, .vector_ctx = (void *)a->flat};
}

/* Builds a graph over every point of tenant (outside the map lock: searches
 * go on with the exact scan meanwhile). */
static vs_err ann_build(vs_ann *a, const char *tenant, vs_hnsw **out, vs_error *err) {
    vs_hnsw_cfg hc = ann_hnsw_cfg(a);
    vs_filter f = {.tenant_id = tenant};
    uint32_t *slots = NULL;
    size_t n = 0;
    vs_err rc = vs_hnsw_new(&hc, out, err);
    if (!rc) rc = vs_flat_select(a->flat, &f, &slots, &n, err);
    for (size_t i = 0; i < n && !rc; i++) rc = vs_hnsw_insert(*out, slots[i], vs_flat_vector(a->flat, slots[i]), err);
    size_t relinked = 0;   /* a build can strand a few nodes (1 in ~100k measured): link them now */
    if (!rc) rc = vs_hnsw_reconnect(*out, &relinked, err);
    atomic_fetch_add(&a->reconnected, relinked);
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
    if (!rc) {
        atomic_fetch_add(&a->builds, 1);
        a->changes += (uint64_t)n;
    }
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
    st->reconnected = atomic_load(&a->reconnected);
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

/* ---- snapshot ------------------------------------------------------------
 *
 * The graphs are a cache of what the log already holds: losing them costs a
 * rebuild (minutes at a million faces), never data. So the file is written
 * whole beside the log and swapped in by rename, never patched:
 *
 *   "VSAN" | u32 version | u32 graphs
 *   per graph: u32 tenant_len | tenant | u64 nodes |
 *              nodes x (u32 slot | u32 id_len | id)   in increasing slot order
 *              | the vs_hnsw_save stream (the same nodes, same order)
 *   u32 crc32c of every byte before it | "VSAE"
 *
 * Slots are positions in vs_flat's table and change across a restart (the
 * log replays into a fresh table, compaction reorders it), so the point ids
 * are saved with them and the graph is reloaded under today's slots. */
#define SNAP_MAGIC "VSAN"
#define SNAP_END "VSAE"
#define SNAP_VERSION 1u

typedef struct snap_w {
    FILE *f;
    uint32_t crc;
    const char *path;
} snap_w;

/* vs_hnsw_write_fn into the snapshot, folding bytes into the CRC. */
static vs_err snap_write(void *ctx, const void *buf, size_t n, vs_error *e) {
    snap_w *w = ctx;
    w->crc = vs_crc32c(w->crc, buf, n);
    if (fwrite(buf, 1, n, w->f) != n) return vs_fail(e, VS_ERR_IO, "ann save %s: %s", w->path, strerror(errno));
    return VS_OK;
}

/* vs_hnsw_foreach callback: collects a graph's slots in order. */
static int snap_collect(void *ctx, uint32_t slot) {
    uint32_t **p = ctx;
    *(*p)++ = slot;
    return 0;
}

/* Writes one tenant's graph: ids of its nodes, then the graph. */
static vs_err snap_graph(const vs_ann *a, const ann_graph *g, snap_w *w, vs_error *err) {
    uint64_t n = vs_hnsw_count(g->h);
    uint32_t *slots = vs_malloc((n ? n : 1) * sizeof *slots), *end = slots;
    if (!slots) return vs_fail(err, VS_ERR_NOMEM, "ann save %s: %llu slots", w->path, (unsigned long long)n);
    vs_hnsw_foreach(g->h, snap_collect, &end);
    uint32_t tl = (uint32_t)strlen(g->tenant);
    vs_err rc = snap_write(w, &tl, sizeof tl, err);
    if (!rc) rc = snap_write(w, g->tenant, tl, err);
    if (!rc) rc = snap_write(w, &n, sizeof n, err);
    for (uint64_t i = 0; i < n && !rc; i++) {
        vs_flat_view v;
        vs_flat_view_of(a->flat, slots[i], &v);
        uint32_t il = (uint32_t)strlen(v.id);
        rc = snap_write(w, &slots[i], sizeof slots[i], err);
        if (!rc) rc = snap_write(w, &il, sizeof il, err);
        if (!rc) rc = snap_write(w, v.id, il, err);
    }
    vs_free(slots);
    return rc ? rc : vs_hnsw_save(g->h, snap_write, w, err);
}

vs_err vs_ann_save(vs_ann *a, const char *path, vs_error *err) {
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return vs_fail(err, VS_ERR_INVALID_ARG, "ann save %s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        return vs_fail(err, VS_ERR_IO, "ann save %s: %s", tmp, strerror(errno));
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    snap_w w = {f, 0, tmp};
    uint32_t head[2] = {SNAP_VERSION, 0};
    pthread_rwlock_rdlock(&a->map);   /* only the writer (our caller) changes it: this is for form */
    head[1] = (uint32_t)a->n;
    vs_err rc = snap_write(&w, SNAP_MAGIC, 4, err);
    if (!rc) rc = snap_write(&w, head, sizeof head, err);
    for (int i = 0; i < a->n && !rc; i++) {
        size_t relinked = 0;   /* a node no walk reaches is lost to every search: fix before keeping */
        if (vs_hnsw_reconnect(a->graphs[i].h, &relinked, NULL) == VS_OK) atomic_fetch_add(&a->reconnected, relinked);
        rc = snap_graph(a, &a->graphs[i], &w, err);
    }
    pthread_rwlock_unlock(&a->map);
    uint32_t crc = w.crc;
    if (!rc) rc = snap_write(&w, &crc, sizeof crc, err);
    if (!rc) rc = snap_write(&w, SNAP_END, 4, err);
    if (!rc && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        rc = vs_fail(err, VS_ERR_IO, "ann save %s: %s", tmp, strerror(errno));
    if (fclose(f) != 0 && !rc) rc = vs_fail(err, VS_ERR_IO, "ann save %s: close: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path) != 0) rc = vs_fail(err, VS_ERR_IO, "ann save %s: rename: %s", path, strerror(errno));
    if (rc) {
        unlink(tmp);
        return rc;
    }
    int de = vs_fsync_parent(path);
    if (de) return vs_fail(err, VS_ERR_IO, "ann save %s: fsync of its directory: %s", path, strerror(de));
    a->changes = 0;
    return VS_OK;
}

uint64_t vs_ann_unsaved(const vs_ann *a) { return a->changes; }

/* A bounds-checked cursor over the mapped file. */
typedef struct snap_r {
    const unsigned char *p, *end;
    const char *path;
} snap_r;

/* vs_hnsw_read_fn over the cursor: a read past the end is CORRUPT. */
static vs_err snap_read(void *ctx, void *buf, size_t n, vs_error *e) {
    snap_r *r = ctx;
    if ((size_t)(r->end - r->p) < n) return vs_fail(e, VS_ERR_CORRUPT, "ann load %s: truncated", r->path);
    memcpy(buf, r->p, n);
    r->p += n;
    return VS_OK;
}

/* Saved slots (increasing) and the slots those points have now; slots at
 * or past `gone` stand for points no longer in this tenant. `direct`, when
 * the saved slots are dense enough to afford it, maps a saved slot to now
 * in one load (UINT32_MAX: not saved) instead of a binary search: the remap
 * runs once per link, tens of millions of times at a million faces. */
typedef struct snap_map {
    uint32_t *old, *now, *direct;
    uint64_t n;
    uint32_t gone, direct_n;
} snap_map;

/* Builds m->direct when the highest saved slot is under 4n + 1024 (a table
 * at most 4x the id table; sparser graphs keep the binary search). */
static void snap_direct(snap_map *m) {
    uint64_t top = m->n ? (uint64_t)m->old[m->n - 1] + 1 : 0;
    if (!m->n || top > 4 * m->n + 1024 || !(m->direct = vs_malloc(top * sizeof *m->direct))) return;
    memset(m->direct, 0xff, top * sizeof *m->direct);
    for (uint64_t i = 0; i < m->n; i++) m->direct[m->old[i]] = m->now[i];
    m->direct_n = (uint32_t)top;
}

/* vs_hnsw_remap_fn: a saved slot's slot now. */
static uint32_t snap_remap(void *ctx, uint32_t saved) {
    const snap_map *m = ctx;
    if (m->direct) return saved < m->direct_n ? m->direct[saved] : UINT32_MAX;
    uint64_t lo = 0, hi = m->n;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (m->old[mid] < saved) lo = mid + 1;
        else hi = mid;
    }
    return lo < m->n && m->old[lo] == saved ? m->now[lo] : UINT32_MAX;
}

/* Reads a graph's id table into m, mapping each saved point to its slot
 * now (or to a stand-in past `gone` when it left the tenant). */
static vs_err snap_ids(const vs_ann *a, snap_r *r, const char *tenant, snap_map *m, vs_error *err) {
    vs_err rc = snap_read(r, &m->n, sizeof m->n, err);
    if (rc) return rc;
    if (m->n > (uint64_t)(r->end - r->p) / 8 || m->n >= VS_HNSW_ID_MAX)
        return vs_fail(err, VS_ERR_CORRUPT, "ann load %s: %llu nodes", r->path, (unsigned long long)m->n);
    m->old = vs_malloc((m->n ? m->n : 1) * sizeof *m->old);
    m->now = vs_malloc((m->n ? m->n : 1) * sizeof *m->now);
    if (!m->old || !m->now) return vs_fail(err, VS_ERR_NOMEM, "ann load %s: id table", r->path);
    m->gone = vs_flat_slot_limit(a->flat);
    uint32_t next_gone = m->gone;
    vs_filter f = {.tenant_id = tenant};
    for (uint64_t i = 0; i < m->n && !rc; i++) {
        uint32_t il = 0;
        char id[VS_POINT_ID_MAX];
        rc = snap_read(r, &m->old[i], sizeof m->old[i], err);
        if (!rc) rc = snap_read(r, &il, sizeof il, err);
        if (!rc && (il >= VS_POINT_ID_MAX || (i && m->old[i] <= m->old[i - 1])))
            rc = vs_fail(err, VS_ERR_CORRUPT, "ann load %s: node %llu", r->path, (unsigned long long)i);
        if (!rc) rc = snap_read(r, id, il, err);
        if (rc) break;
        id[il] = '\0';
        int64_t s = vs_flat_find(a->flat, id);
        m->now[i] = s >= 0 && vs_flat_matches(a->flat, (uint32_t)s, &f) ? (uint32_t)s : next_gone++;
        if (next_gone >= VS_HNSW_ID_MAX) rc = vs_fail(err, VS_ERR_CORRUPT, "ann load %s: too many ids", r->path);
    }
    return rc;
}

/* Brings a loaded graph in step with the flat: stand-ins of points that
 * left are deleted, points added or changed since the save are inserted. */
static vs_err snap_reconcile(vs_ann *a, vs_hnsw *h, const char *tenant, const snap_map *m, vs_error *err) {
    vs_err rc = VS_OK;
    for (uint64_t i = 0; i < m->n && !rc; i++)
        if (m->now[i] >= m->gone) rc = vs_hnsw_delete(h, m->now[i], err);
    vs_filter f = {.tenant_id = tenant};
    uint32_t *slots = NULL;
    size_t n = 0;
    if (!rc) rc = vs_flat_select(a->flat, &f, &slots, &n, err);
    for (size_t i = 0; i < n && !rc; i++) {
        const float *v = vs_flat_vector(a->flat, slots[i]);
        if (vs_hnsw_same_vector(h, slots[i], v)) continue;
        rc = vs_hnsw_insert(h, slots[i], v, err);
        a->changes++;
    }
    vs_free(slots);
    return rc;
}

/* Loads the next graph of the file and installs it (if its tenant still
 * deserves one). */
static vs_err snap_load_graph(vs_ann *a, snap_r *r, vs_error *err) {
    uint32_t tl = 0;
    char tenant[VS_FLAT_TENANT_MAX + 1];
    vs_err rc = snap_read(r, &tl, sizeof tl, err);
    if (!rc && tl > VS_FLAT_TENANT_MAX) rc = vs_fail(err, VS_ERR_CORRUPT, "ann load %s: tenant length %u", r->path, tl);
    if (!rc) rc = snap_read(r, tenant, tl, err);
    if (rc) return rc;
    tenant[tl] = '\0';
    if (ann_find(a, tenant) >= 0) return vs_fail(err, VS_ERR_CORRUPT, "ann load %s: tenant %s twice", r->path, tenant);
    snap_map m = {0};
    vs_hnsw *h = NULL;
    vs_hnsw_cfg hc = ann_hnsw_cfg(a);
    rc = snap_ids(a, r, tenant, &m, err);
    if (!rc) snap_direct(&m);
    if (!rc) rc = vs_hnsw_load_remap(&hc, snap_read, r, snap_remap, &m, &h, err);
    if (!rc) rc = snap_reconcile(a, h, tenant, &m, err);
    vs_filter f = {.tenant_id = tenant};
    if (!rc && (int64_t)vs_flat_count(a->flat, &f) >= a->cfg.min_points / 2 && a->cfg.min_points >= 0) {
        rc = ann_install(a, tenant, h, err);
        if (!rc) h = NULL;
    }
    vs_hnsw_free(h);
    vs_free(m.old);
    vs_free(m.now);
    vs_free(m.direct);
    return rc;
}

/* Checks the frame: magic, version, trailer and CRC. */
static vs_err snap_check(const unsigned char *p, size_t size, const char *path, vs_error *err) {
    uint32_t crc, version;
    if (size < 20 || memcmp(p, SNAP_MAGIC, 4) != 0 || memcmp(p + size - 4, SNAP_END, 4) != 0)
        return vs_fail(err, VS_ERR_CORRUPT, "ann load %s: not a graph snapshot (or cut short)", path);
    memcpy(&crc, p + size - 8, 4);
    memcpy(&version, p + 4, 4);
    if (vs_crc32c(0, p, size - 8) != crc) return vs_fail(err, VS_ERR_CORRUPT, "ann load %s: checksum mismatch", path);
    if (version != SNAP_VERSION)
        return vs_fail(err, VS_ERR_UNSUPPORTED, "ann load %s: version %u, this build reads %u", path, version,
                       SNAP_VERSION);
    return VS_OK;
}

vs_err vs_ann_load(vs_ann *a, const char *path, vs_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vs_fail(err, errno == ENOENT ? VS_ERR_NOT_FOUND : VS_ERR_IO, "ann load %s: %s", path, strerror(errno));
    struct stat st;
    void *map = MAP_FAILED;
    vs_err rc = VS_OK;
    if (fstat(fd, &st) != 0 || st.st_size < 20)
        rc = vs_fail(err, VS_ERR_CORRUPT, "ann load %s: too short", path);
    else if ((map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED)
        rc = vs_fail(err, VS_ERR_IO, "ann load %s: mmap: %s", path, strerror(errno));
    close(fd);
    if (!rc) rc = snap_check(map, (size_t)st.st_size, path, err);
    if (!rc) {
        snap_r r = {(const unsigned char *)map + 12, (const unsigned char *)map + st.st_size - 8, path};
        uint32_t graphs;
        memcpy(&graphs, (const unsigned char *)map + 8, 4);
        for (uint32_t i = 0; i < graphs && !rc; i++) rc = snap_load_graph(a, &r, err);
        if (!rc && r.p != r.end) rc = vs_fail(err, VS_ERR_CORRUPT, "ann load %s: bytes after the last graph", path);
    }
    if (map != MAP_FAILED) munmap(map, (size_t)st.st_size);
    if (rc) vs_ann_clear(a);   /* all or nothing: the caller rebuilds */
    return rc;
}
