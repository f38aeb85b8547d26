/* vs_index_embedded.c - the "embedded" vector index backend: exact cosine
 * search over vs_flat's per-tenant blocks, made durable by vs_index_log, for
 * one process on one machine (a scan of one tenant's 100k 1024-d faces is a
 * ~400 MB memory sweep). Thin glue: validation, payload parsing, locking.
 *
 * Threading model: who locks what, and why
 *
 *   emb.reg (rwlock)   guards the registry of collections. Every call takes it
 *                      shared just long enough to find its collection;
 *                      ensure_collection takes it exclusive to add one (file
 *                      creation included: rare). Collections are only freed
 *                      by close, so the pointer stays valid after unlocking.
 *   coll.wmu (mutex)   serialises the writers of one collection (upsert,
 *                      delete_ids, delete_filter). Parsing payloads, encoding
 *                      the group, write() and fdatasync() all run under wmu
 *                      alone, so searches keep going while the disk syncs.
 *                      Only wmu holders mutate the structure, so a writer may
 *                      read it (look ids up, select points) without coll.rw.
 *   coll.rw (rwlock)   shared: search, get, count, scroll (per point) and
 *                      validate; exclusive: applying a group that is already
 *                      durable (reserve capacity, then puts/removes that
 *                      cannot fail). Readers therefore see a group entirely or
 *                      not at all, and never before it is on disk.
 *   coll.dropped       set by drop_collection under wmu and rw exclusive;
 *                      writers check it once they hold wmu, so nothing is
 *                      written to a dropped collection's (unlinked) log.
 *   Lock order is reg -> wmu -> rw; reg is dropped before the others are
 *   taken. coll.rw prefers writers (glibc's PREFER_WRITER_NONRECURSIVE), so a
 *   steady stream of searches cannot starve ingestion; in exchange no path
 *   may take it shared twice, which is why scroll calls its callback with no
 *   lock held (and why callbacks may call back into the index).
 *
 * Rejected: one mutex for everything (searches are read-only and the machine
 * has several cores); applying under the exclusive lock across fdatasync
 * (every ingest batch would stall all searches for a disk sync); RCU or
 * copy-on-write blocks (double the memory of a large tenant, more code than
 * this scale needs); a lock per tenant block (a moved point spans two blocks,
 * and the exclusive section is already short).
 *
 * Failure: if applying a durable group runs out of memory, the group is cut
 * from the log again (all or none); if even that fails the log is marked
 * broken, writes are refused and healthy() reports 0 until reopened. */
#include "vs_index_embedded.h"
#include "vs_index_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vs_alloc.h"
#include "vs_ann.h"
#include "vs_pool.h"
#include "vs_flat.h"
#include "vs_index_log.h"

#define COLL_NAME_MAX VS_INDEX_COLL_NAME_MAX
#define PATH_CAP 4096

typedef struct coll {
    char name[COLL_NAME_MAX + 1];
    char path[PATH_CAP];          /* the log file */
    char snap[PATH_CAP];          /* the graphs' snapshot beside it */
    int dim;
    vs_log *log;
    vs_flat *flat;
    vs_ann *ann;                  /* graphs of the large tenants, over flat */
    int dropped;                  /* drop_collection ran: empty, refuses writes */
    pthread_mutex_t wmu;
    pthread_rwlock_t rw;
} coll;

typedef struct emb {
    vs_index base;
    char dir[PATH_CAP];           /* {data_dir}/index */
    int lock_fd;
    pthread_rwlock_t reg;
    coll **colls;
    int n_colls, cap_colls;
    coll **gone;                  /* dropped: freed by close (callers may hold them) */
    int n_gone, cap_gone;
    vs_pool *scan;                /* splits a large search over the cores */
    vs_ann_cfg ann_cfg;           /* resolved: graphs for tenants this large */
} emb;

/* A tenant block this large is scanned by every core at once: one core
 * cannot pull the memory bandwidth that two can (15-20 vs ~37 GB/s here),
 * and below it the hand-off costs more than it saves. */
#define SPLIT_MIN_ROWS 16384

/* The graphs' snapshot, beside the log. It is written again once this many
 * graph changes (or a tenth of the graphs' points, if more) are unsaved,
 * and at close: a crash loses at most that much graph work, which open
 * redoes from the log (slower, never wrong). */
#define ANN_SNAP_FILE "graphs.snap"
#define ANN_SAVE_MIN_CHANGES 20000
#define SPLIT_MAX_PARTS 8

static const vs_index_ops emb_ops;
static _Atomic uint64_t compact_min = 64ull << 20;

void vs_index_embedded_set_compact_min(uint64_t bytes) { atomic_store(&compact_min, bytes); }

int vs_index_is_embedded(const vs_index *ix) { return ix && ix->ops == &emb_ops; }

/* Prefixes err's message with "op coll: " (the lower layers name the file),
 * cutting the tail if the whole no longer fits. */
static vs_err with_ctx(vs_error *err, vs_err rc, const char *op, const char *name) {
    if (err && rc != VS_OK) {
        char pre[96];
        snprintf(pre, sizeof pre, "%.20s %.63s: ", op, name);
        size_t pl = strlen(pre), ml = strnlen(err->msg, sizeof err->msg - 1);
        if (pl + ml >= sizeof err->msg) ml = sizeof err->msg - 1 - pl;
        memmove(err->msg + pl, err->msg, ml);
        memcpy(err->msg, pre, pl);
        err->msg[pl + ml] = '\0';
        err->code = rc;
    }
    return rc;
}

/* Finds collection name for op; VS_ERR_NOT_FOUND naming it otherwise. */
static vs_err coll_get(emb *e, const char *name, const char *op, coll **out, vs_error *err) {
    *out = NULL;
    if (!name) return vs_fail(err, VS_ERR_INVALID_ARG, "%s: no collection name", op);
    pthread_rwlock_rdlock(&e->reg);
    for (int i = 0; i < e->n_colls; i++)
        if (strcmp(e->colls[i]->name, name) == 0) *out = e->colls[i];
    pthread_rwlock_unlock(&e->reg);
    if (!*out)
        return vs_fail(err, VS_ERR_NOT_FOUND, "%s %s: no such collection in %s (call ensure_collection first)", op,
                       name, e->dir);
    return VS_OK;
}

/* Takes the writer lock of c for op; a collection dropped meanwhile is
 * VS_ERR_NOT_FOUND (and the lock is not held). */
static vs_err writer_lock(coll *c, const char *op, vs_error *err) {
    pthread_mutex_lock(&c->wmu);
    if (!c->dropped) return VS_OK;
    pthread_mutex_unlock(&c->wmu);
    return vs_fail(err, VS_ERR_NOT_FOUND, "%s %s: the collection was dropped", op, c->name);
}

/* Checks a filter: the tenant is required, min_quality must be a number. */
static vs_err filter_check(const vs_filter *f, const char *op, const coll *c, vs_error *err) {
    if (!f || !f->tenant_id || !*f->tenant_id)
        return vs_fail(err, VS_ERR_INVALID_ARG, "%s %s (%s): the filter must name a tenant_id", op, c->name, c->path);
    if (isnan(f->min_quality))
        return vs_fail(err, VS_ERR_INVALID_ARG, "%s %s (%s): min_quality is NaN", op, c->name, c->path);
    return VS_OK;
}

/* Allocates a collection record with its locks (no files touched). */
static coll *coll_new(const emb *e, const char *name) {
    coll *c = vs_calloc(1, sizeof *c);
    if (!c) return NULL;
    snprintf(c->name, sizeof c->name, "%s", name);
    if ((size_t)snprintf(c->path, sizeof c->path, "%s/%s/%s", e->dir, name, VS_LOG_FILE) >= sizeof c->path ||
        (size_t)snprintf(c->snap, sizeof c->snap, "%s/%s/%s", e->dir, name, ANN_SNAP_FILE) >= sizeof c->snap) {
        vs_free(c);
        return NULL;
    }
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
#ifdef __GLIBC__
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    pthread_rwlock_init(&c->rw, &a);
    pthread_rwlockattr_destroy(&a);
    pthread_mutex_init(&c->wmu, NULL);
    return c;
}

static void coll_free(coll *c) {
    if (!c) return;
    vs_ann_free(c->ann);
    vs_flat_free(c->flat);
    vs_log_close(c->log);
    pthread_rwlock_destroy(&c->rw);
    pthread_mutex_destroy(&c->wmu);
    vs_free(c);
}

/* Adds c to the registry (caller holds reg exclusively). */
static vs_err registry_add(emb *e, coll *c) {
    if (e->n_colls == e->cap_colls) {
        int cap = e->cap_colls ? e->cap_colls * 2 : 4;
        coll **n = vs_realloc(e->colls, (size_t)cap * sizeof *n);
        if (!n) return VS_ERR_NOMEM;
        e->colls = n;
        e->cap_colls = cap;
    }
    e->colls[e->n_colls++] = c;
    return VS_OK;
}

/* ---- replay and compaction -------------------------------------------- */

/* Replay sink: applies one logged upsert/delete to the collection's flat. */
static vs_err replay_apply(void *ctx, const vs_log_rec *r, vs_error *err) {
    coll *c = ctx;
    char id[VS_POINT_ID_MAX], tenant[VS_FLAT_TENANT_MAX + 1];
    memcpy(id, r->id, r->id_len);
    id[r->id_len] = '\0';
    if (r->type == VS_LOG_DELETE) {
        vs_flat_remove(c->flat, id, NULL);
        return VS_OK;
    }
    memcpy(tenant, r->tenant, r->tenant_len);
    tenant[r->tenant_len] = '\0';
    vs_flat_entry en;
    vs_err rc = vs_flat_entry_init(&en, id, tenant, r->vector, r->payload, r->payload_len, r->site, r->site_len,
                                   r->sha, r->sha_len, r->has_quality, r->quality);
    if (rc != VS_OK) return vs_fail(err, rc, "index log %s: cannot load point %s (%s)", c->path, id, vs_err_name(rc));
    rc = vs_flat_put(c->flat, &en, err);
    vs_flat_entry_clear(&en);
    return rc;
}

/* Replay sink: forget everything applied so far (a torn group was replayed). */
static vs_err replay_reset(void *ctx, vs_error *err) {
    coll *c = ctx;
    vs_flat_free(c->flat);
    if (!(c->flat = vs_flat_new(c->dim))) return vs_fail(err, VS_ERR_NOMEM, "index log %s: out of memory", c->path);
    return VS_OK;
}

/* Builds the log record of a stored point. */
static void rec_of_view(const vs_flat_view *v, vs_log_rec *r) {
    memset(r, 0, sizeof *r);
    r->type = VS_LOG_UPSERT;
    r->id = v->id;
    r->id_len = strlen(v->id);
    r->tenant = v->tenant;
    r->tenant_len = strlen(v->tenant);
    r->site = v->site;
    r->site_len = v->site ? strlen(v->site) : 0;
    r->sha = v->image_sha256;
    r->sha_len = v->image_sha256 ? strlen(v->image_sha256) : 0;
    r->payload = v->payload;
    r->payload_len = v->payload_len;
    r->has_quality = v->has_quality;
    r->quality = v->quality;
    r->vector = v->vector;
}

typedef struct live_ctx {
    int dim;
    uint64_t bytes;
    vs_log_emit_fn emit;
    void *ectx;
    vs_error *err;
    vs_err rc;
} live_ctx;

/* foreach callback: adds a point's record size to the live total. */
static int live_bytes_one(void *ctx, const vs_flat_view *v) {
    live_ctx *l = ctx;
    vs_log_rec r;
    rec_of_view(v, &r);
    l->bytes += vs_log_upsert_bytes(l->dim, r.id_len, r.tenant_len, r.site_len, r.sha_len, r.payload_len);
    return 0;
}

/* foreach callback: writes a point into the compacted log. */
static int compact_one(void *ctx, const vs_flat_view *v) {
    live_ctx *l = ctx;
    vs_log_rec r;
    rec_of_view(v, &r);
    l->rc = l->emit(l->ectx, &r, l->err);
    return l->rc != VS_OK;
}

/* vs_log_compact's source: every live point of the collection. */
static vs_err compact_each(void *ctx, vs_log_emit_fn emit, void *ectx, vs_error *err) {
    coll *c = ctx;
    live_ctx l = {.dim = c->dim, .emit = emit, .ectx = ectx, .err = err, .rc = VS_OK};
    vs_flat_foreach(c->flat, compact_one, &l);
    return l.rc;
}

/* Compacts the log at open when it is over compact_min bytes and more than
 * half of it is superseded or deleted records. Only at open: no reader or
 * writer exists yet, so the rewrite needs no coordination. */
static vs_err maybe_compact(coll *c, vs_error *err) {
    uint64_t size = vs_log_size(c->log), min = atomic_load(&compact_min);
    live_ctx l = {.dim = c->dim};
    vs_flat_foreach(c->flat, live_bytes_one, &l);
    uint64_t live = l.bytes + vs_log_header_size(c->log);
    if (size <= min || size - (live < size ? live : size) <= size / 2) return VS_OK;
    return vs_log_compact(c->log, compact_each, c, err);
}

/* vs_flat_tenants callback: builds the graph of a tenant past the bound. A
 * build that fails (out of memory) leaves that tenant on the exact scan
 * rather than failing the open: the data is all there either way. */
static int ann_open_one(void *ctx, const char *tenant, size_t n) {
    coll *c = ctx;
    vs_error e = {0};
    (void)n;
    if (vs_ann_refresh(c->ann, tenant, &e) != VS_OK)
        fprintf(stderr, "visage: index %s: tenant %s stays on exact search: %s\n", c->name, tenant, e.msg);
    return 0;
}

/* Saves the graphs when enough changed since the last save (or `force`
 * and anything did). A failed save costs only the next open's time, so it
 * is reported to stderr, not to the write that triggered it. Caller is the
 * collection's writer (or close). */
static void ann_checkpoint(coll *c, int force) {
    uint64_t unsaved = vs_ann_unsaved(c->ann);
    if (!unsaved || (!force && unsaved < ANN_SAVE_MIN_CHANGES)) return;   /* every write asks: answer cheaply */
    vs_ann_stats st;
    vs_ann_get_stats(c->ann, &st);
    uint64_t due = st.points / 10 > ANN_SAVE_MIN_CHANGES ? st.points / 10 : ANN_SAVE_MIN_CHANGES;
    if (!force && unsaved < due) return;
    vs_error e = {0};
    if (st.graphs == 0) {   /* nothing to keep: an old file would only be reconciled away */
        if (unlink(c->snap) == 0 || errno == ENOENT) return;
    }
    if (vs_ann_save(c->ann, c->snap, &e) != VS_OK) fprintf(stderr, "visage: index: %s (graphs rebuilt at next open)\n", e.msg);
}

/* Gives a loaded collection its graphs: the snapshot's, brought in step
 * with the log, plus a build for any tenant past the bound still without
 * one; a snapshot that was missing, damaged or stale is written anew. */
static vs_err ann_open(const emb *e, coll *c, vs_error *err) {
    if (!(c->ann = vs_ann_new(&e->ann_cfg, c->flat)))
        return vs_fail(err, VS_ERR_NOMEM, "index %s: out of memory for its graphs", c->path);
    vs_error le = {0};
    vs_err lrc = e->ann_cfg.min_points < 0 ? VS_ERR_NOT_FOUND : vs_ann_load(c->ann, c->snap, &le);
    if (lrc != VS_OK && lrc != VS_ERR_NOT_FOUND)
        fprintf(stderr, "visage: index: %s; rebuilding the graphs from the log\n", le.msg);
    vs_flat_tenants(c->flat, ann_open_one, c);
    ann_checkpoint(c, 1);
    return VS_OK;
}

/* Opens, replays and (when due) compacts the collection stored under name. */
static vs_err load_collection(emb *e, const char *name, vs_error *err) {
    coll *c = coll_new(e, name);
    if (!c) return vs_fail(err, VS_ERR_NOMEM, "open %s: out of memory (or path too long) under %s", name, e->dir);
    uint64_t truncated = 0;
    vs_log_sink sink = {replay_apply, replay_reset, c};
    vs_err rc = vs_log_open(c->path, &c->log, err);
    if (rc == VS_OK) {
        c->dim = vs_log_dim(c->log);
        if (!(c->flat = vs_flat_new(c->dim))) rc = vs_fail(err, VS_ERR_NOMEM, "index log %s: out of memory", c->path);
    }
    if (rc == VS_OK) rc = vs_log_replay(c->log, &sink, &truncated, err);
    if (rc == VS_OK) rc = maybe_compact(c, err);
    if (rc == VS_OK) rc = ann_open(e, c, err);
    if (rc == VS_OK && registry_add(e, c) != VS_OK)
        rc = vs_fail(err, VS_ERR_NOMEM, "index log %s: out of memory", c->path);
    if (rc != VS_OK) {
        coll_free(c);
        return with_ctx(err, rc, "open", name);
    }
    return VS_OK;
}

/* ---- ops -------------------------------------------------------------- */

static vs_err emb_ensure_collection(vs_index *ix, const char *name, int dim, const char *model, vs_error *err) {
    emb *e = (emb *)ix;
    if (!vs_index_name_ok(name))
        return vs_fail(err, VS_ERR_INVALID_ARG, "ensure_collection %s: name must be 1-%d of [A-Za-z0-9_-]",
                       name ? name : "(null)", COLL_NAME_MAX);
    if (dim < 1 || dim > VS_LOG_DIM_MAX || !vs_index_text_ok(model, VS_LOG_MODEL_MAX))
        return vs_fail(err, VS_ERR_INVALID_ARG, "ensure_collection %s: dim %d (1-%d) or model \"%s\" out of range",
                       name, dim, VS_LOG_DIM_MAX, model ? model : "(null)");
    vs_err rc = VS_OK;
    pthread_rwlock_wrlock(&e->reg);
    coll *c = NULL;
    for (int i = 0; i < e->n_colls; i++)
        if (strcmp(e->colls[i]->name, name) == 0) c = e->colls[i];
    if (c) {
        const char *have = vs_log_model(c->log);
        if (c->dim != dim || strcmp(have, model) != 0)
            rc = vs_fail(err, VS_ERR_INVALID_ARG,
                         "ensure_collection %s (%s): asked for dim %d model \"%s\" but the collection has dim %d "
                         "model \"%s\" (never mix models)",
                         name, c->path, dim, model, c->dim, have);
        goto out;
    }
    char dir[PATH_CAP];
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s", e->dir, name) >= sizeof dir ||
        (mkdir(dir, 0700) != 0 && errno != EEXIST)) {
        rc = vs_fail(err, VS_ERR_IO, "ensure_collection %s: mkdir %s: %s", name, dir, strerror(errno));
        goto out;
    }
    if (!(c = coll_new(e, name))) {
        rc = vs_fail(err, VS_ERR_NOMEM, "ensure_collection %s: out of memory", name);
        goto out;
    }
    c->dim = dim;
    rc = vs_log_create(c->path, dim, model, err);
    if (rc == VS_OK) rc = vs_log_open(c->path, &c->log, err);
    if (rc == VS_OK && (!(c->flat = vs_flat_new(dim)) || !(c->ann = vs_ann_new(&e->ann_cfg, c->flat))))
        rc = vs_fail(err, VS_ERR_NOMEM, "index log %s: out of memory", c->path);
    if (rc == VS_OK && registry_add(e, c) != VS_OK)
        rc = vs_fail(err, VS_ERR_NOMEM, "index log %s: out of memory", c->path);
    if (rc != VS_OK) {
        coll_free(c);
        with_ctx(err, rc, "ensure_collection", name);
    }
out:
    pthread_rwlock_unlock(&e->reg);
    return rc;
}

/* Length of s without JSON whitespace at both ends; *start gets the offset. */
static size_t json_trim(const char *s, size_t n, size_t *start) {
    size_t a = 0;
    while (a < n && (s[a] == ' ' || s[a] == '\t' || s[a] == '\n' || s[a] == '\r')) a++;
    while (n > a && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) n--;
    *start = a;
    return n - a;
}

/* Validates point i and parses its payload (once, here) into entry en, whose
 * tenant points at tenant_buf. The payload text is kept as given minus
 * surrounding whitespace; tenant_id, site, image_sha256 and quality_score are
 * extracted for filtering (non-string site/sha and non-number quality count
 * as absent). */
static vs_err prep_point(const coll *c, const vs_point *p, int i, vs_flat_entry *en, char *tenant_buf,
                         vs_error *err) {
    const char *id = p->id ? p->id : "(null)";
    if (!p->id || !vs_index_text_ok(p->id, VS_POINT_ID_MAX - 1))
        return vs_fail(err, VS_ERR_INVALID_ARG, "upsert %s (%s): point %d: id must be 1-%d printable bytes", c->name,
                       c->path, i, VS_POINT_ID_MAX - 1);
    if (!p->vector || !p->payload_json)
        return vs_fail(err, VS_ERR_INVALID_ARG, "upsert %s (%s): point %d (%s): no vector or payload", c->name,
                       c->path, i, id);
    for (int d = 0; d < c->dim; d++)
        if (!isfinite(p->vector[d]))
            return vs_fail(err, VS_ERR_INVALID_ARG, "upsert %s (%s): point %d (%s): vector[%d] is not finite", c->name,
                           c->path, i, id, d);
    size_t len = strlen(p->payload_json), off;
    if (len > VS_LOG_PAYLOAD_MAX)
        return vs_fail(err, VS_ERR_TOO_LARGE, "upsert %s (%s): point %d (%s): payload of %zu bytes over %u", c->name,
                       c->path, i, id, len, VS_LOG_PAYLOAD_MAX);
    json_error_t je;
    json_t *root = json_loadb(p->payload_json, len, 0, &je);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return vs_fail(err, VS_ERR_INVALID_ARG, "upsert %s (%s): point %d (%s): payload is not a JSON object: %s",
                       c->name, c->path, i, id, root ? "another JSON type" : je.text);
    }
    vs_err rc = VS_OK;
    json_t *t = json_object_get(root, "tenant_id"), *site = json_object_get(root, "site"),
           *sha = json_object_get(root, "image_sha256"), *q = json_object_get(root, "quality_score");
    const char *sv = json_is_string(site) ? json_string_value(site) : NULL;
    const char *hv = json_is_string(sha) ? json_string_value(sha) : NULL;
    size_t sl = sv ? json_string_length(site) : 0, hl = hv ? json_string_length(sha) : 0;
    if (!json_is_string(t) || !vs_index_text_ok(json_string_value(t), VS_FLAT_TENANT_MAX)) {
        rc = vs_fail(err, VS_ERR_INVALID_ARG,
                     "upsert %s (%s): point %d (%s): payload needs a string \"tenant_id\" of 1-%d printable bytes",
                     c->name, c->path, i, id, VS_FLAT_TENANT_MAX);
    } else if (sl > VS_FLAT_SITE_MAX || hl > VS_FLAT_SHA_MAX) {
        rc = vs_fail(err, VS_ERR_INVALID_ARG,
                     "upsert %s (%s): point %d (%s): site (max %d) or image_sha256 (max %d) too long", c->name, c->path,
                     i, id, VS_FLAT_SITE_MAX, VS_FLAT_SHA_MAX);
    } else if (json_is_number(q) && !isfinite((float)json_number_value(q))) {
        rc = vs_fail(err, VS_ERR_INVALID_ARG, "upsert %s (%s): point %d (%s): quality_score is out of float range",
                     c->name, c->path, i, id);
    } else {
        int has_q = json_is_number(q);
        snprintf(tenant_buf, VS_FLAT_TENANT_MAX + 1, "%s", json_string_value(t));
        size_t plen = json_trim(p->payload_json, len, &off);
        rc = vs_flat_entry_init(en, p->id, tenant_buf, p->vector, p->payload_json + off, plen, sv, sl, hv, hl, has_q,
                                has_q ? (float)json_number_value(q) : 0.0f);
        if (rc != VS_OK)
            vs_fail(err, rc, "upsert %s (%s): point %d (%s): out of memory", c->name, c->path, i, id);
    }
    json_decref(root);
    return rc;
}

/* Log record for a prepared entry. */
static void rec_of_entry(const vs_flat_entry *en, vs_log_rec *r) {
    memset(r, 0, sizeof *r);
    r->type = VS_LOG_UPSERT;
    r->id = en->id;
    r->id_len = strlen(en->id);
    r->tenant = en->tenant;
    r->tenant_len = strlen(en->tenant);
    r->site = en->site_off >= 0 ? en->blob + en->site_off : NULL;
    r->site_len = r->site ? strlen(r->site) : 0;
    r->sha = en->sha_off >= 0 ? en->blob + en->sha_off : NULL;
    r->sha_len = r->sha ? strlen(r->sha) : 0;
    r->payload = en->blob;
    r->payload_len = en->payload_len;
    r->has_quality = en->has_quality;
    r->quality = en->quality;
    r->vector = en->vector;
}

/* Takes the stored points with these ids out of their graphs. Caller holds
 * wmu (the flat cannot change). */
static void ann_forget_ids(coll *c, const vs_flat_entry *ents, int n) {
    for (int i = 0; i < n; i++) {
        int64_t s = vs_flat_find(c->flat, ents[i].id);
        if (s >= 0) vs_ann_forget(c->ann, (uint32_t)s);
    }
}

/* Puts the stored points with these ids into their tenants' graphs. */
static void ann_note_ids(coll *c, const vs_flat_entry *ents, int n) {
    for (int i = 0; i < n; i++) {
        int64_t s = vs_flat_find(c->flat, ents[i].id);
        if (s >= 0) vs_ann_note(c->ann, (uint32_t)s);
    }
}

/* Builds (or drops) the graphs of the tenants these entries went to. A
 * failed build leaves the tenant on exact search; the points are durable
 * and visible, so the upsert still succeeded: the error is not returned. */
static vs_err ann_refresh_ids(coll *c, const vs_flat_entry *ents, int n, vs_error *err) {
    (void)err;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = strcmp(ents[j].tenant, ents[i].tenant) == 0;
        if (!seen) vs_ann_refresh(c->ann, ents[i].tenant, NULL);
    }
    return VS_OK;
}

static vs_err emb_upsert(vs_index *ix, const char *name, const vs_point *pts, int n, vs_error *err) {
    coll *c;
    vs_err rc = coll_get((emb *)ix, name, "upsert", &c, err);
    if (rc != VS_OK) return rc;
    if (n < 0 || (n > 0 && !pts))
        return vs_fail(err, VS_ERR_INVALID_ARG, "upsert %s (%s): %d points at %p", c->name, c->path, n, (void *)pts);
    if (n == 0) return VS_OK;
    if ((rc = writer_lock(c, "upsert", err)) != VS_OK) return rc;
    vs_log_batch b = {0};
    vs_flat_entry *ents = vs_calloc((size_t)n, sizeof *ents);
    char(*tenants)[VS_FLAT_TENANT_MAX + 1] = vs_calloc((size_t)n, sizeof *tenants);
    int prepared = 0;
    if (!ents || !tenants) {
        rc = vs_fail(err, VS_ERR_NOMEM, "upsert %s (%s): out of memory for %d points", c->name, c->path, n);
        goto out;
    }
    for (; prepared < n; prepared++)
        if ((rc = prep_point(c, &pts[prepared], prepared, &ents[prepared], tenants[prepared], err)) != VS_OK) goto out;
    /* 1. durable: one group, fdatasync'ed (under wmu only: searches go on). */
    vs_log_begin(c->log, &b);
    for (int i = 0; i < n && rc == VS_OK; i++) {
        vs_log_rec r;
        rec_of_entry(&ents[i], &r);
        rc = vs_log_add(c->log, &b, &r, err);
    }
    if (rc == VS_OK) rc = vs_log_commit(c->log, &b, err);
    if (rc != VS_OK) {
        vs_log_abort(c->log, &b);
        with_ctx(err, rc, "upsert", c->name);
        goto out;
    }
    /* 2. visible: out of the graphs first (a replaced point may change
     * tenant or vector), reserve, infallible puts in one exclusive section,
     * then into the graphs of their tenants. */
    ann_forget_ids(c, ents, n);
    pthread_rwlock_wrlock(&c->rw);
    rc = vs_flat_reserve(c->flat, ents, n, err);
    for (int i = 0; i < n && rc == VS_OK; i++) rc = vs_flat_put(c->flat, &ents[i], err);
    pthread_rwlock_unlock(&c->rw);
    ann_note_ids(c, ents, n);   /* on failure: the old points go back */
    if (rc == VS_OK) rc = ann_refresh_ids(c, ents, n, err);
    ann_checkpoint(c, 0);
    if (rc != VS_OK) { /* only reserve can fail: nothing was applied */
        vs_error rb;
        if (vs_log_rollback(c->log, &b, &rb) != VS_OK) { /* the log is now marked broken */
            rc = VS_ERR_IO;
            if (err) *err = rb;
        }
        with_ctx(err, rc, "upsert", c->name);
    }
out:
    for (int i = 0; i < prepared && ents; i++) vs_flat_entry_clear(&ents[i]);
    vs_free(ents);
    vs_free(tenants);
    vs_log_batch_free(&b);
    pthread_mutex_unlock(&c->wmu);
    return rc;
}

static vs_err emb_get(vs_index *ix, const char *name, const char *tenant_id, const char *id, float *vector_out,
                      char **payload_out, vs_error *err) {
    if (payload_out) *payload_out = NULL;
    coll *c;
    vs_err rc = coll_get((emb *)ix, name, "get", &c, err);
    if (rc != VS_OK) return rc;
    if (!tenant_id || !*tenant_id || !id)
        return vs_fail(err, VS_ERR_INVALID_ARG, "get %s (%s): tenant_id and id are required", c->name, c->path);
    pthread_rwlock_rdlock(&c->rw);
    int64_t s = strlen(id) < VS_POINT_ID_MAX ? vs_flat_find(c->flat, id) : -1;
    vs_flat_view v;
    if (s >= 0) vs_flat_view_of(c->flat, (uint32_t)s, &v);
    if (s < 0 || strcmp(v.tenant, tenant_id) != 0) {
        rc = vs_fail(err, VS_ERR_NOT_FOUND, "get %s (%s): no point %s for tenant %s", c->name, c->path, id, tenant_id);
    } else {
        if (vector_out) memcpy(vector_out, v.vector, (size_t)c->dim * sizeof(float));
        if (payload_out) {
            *payload_out = vs_malloc(v.payload_len + 1);
            if (*payload_out)
                memcpy(*payload_out, v.payload, v.payload_len + 1);
            else
                rc = vs_fail(err, VS_ERR_NOMEM, "get %s (%s): out of memory", c->name, c->path);
        }
    }
    pthread_rwlock_unlock(&c->rw);
    return rc;
}

/* Logs deletes of ids (which the caller found live), then applies them;
 * *deleted counts the points actually removed. Caller holds wmu. */
static vs_err delete_logged(coll *c, const char *op, const char *const *ids, size_t n, const char *tenant,
                            int64_t *deleted, vs_error *err) {
    *deleted = 0;
    if (n == 0) return VS_OK;
    vs_log_batch b = {0};
    vs_log_begin(c->log, &b);
    vs_err rc = VS_OK;
    for (size_t i = 0; i < n && rc == VS_OK; i++) {
        vs_log_rec r = {.type = VS_LOG_DELETE, .id = ids[i], .id_len = strlen(ids[i])};
        rc = vs_log_add(c->log, &b, &r, err);
    }
    if (rc == VS_OK) rc = vs_log_commit(c->log, &b, err);
    if (rc != VS_OK) {
        vs_log_abort(c->log, &b);
        vs_log_batch_free(&b);
        return with_ctx(err, rc, op, c->name);
    }
    vs_log_batch_free(&b);
    /* out of the graph before the slots are freed (and maybe reused) */
    if (!vs_ann_forget_many(c->ann, tenant, n))
        for (size_t i = 0; i < n; i++) {
            int64_t s = vs_flat_find(c->flat, ids[i]);
            if (s >= 0) vs_ann_forget(c->ann, (uint32_t)s);
        }
    pthread_rwlock_wrlock(&c->rw);
    for (size_t i = 0; i < n; i++) *deleted += vs_flat_remove(c->flat, ids[i], tenant);
    pthread_rwlock_unlock(&c->rw);
    vs_ann_refresh(c->ann, tenant, NULL);   /* rebuilds after a bulk drop; failure: exact search */
    ann_checkpoint(c, 0);
    return VS_OK;
}

static vs_err emb_delete_ids(vs_index *ix, const char *name, const char *tenant_id, const char *const *ids, int n,
                             int64_t *deleted, vs_error *err) {
    int64_t dummy;
    if (!deleted) deleted = &dummy;
    *deleted = 0;
    coll *c;
    vs_err rc = coll_get((emb *)ix, name, "delete_ids", &c, err);
    if (rc != VS_OK) return rc;
    if (!tenant_id || !*tenant_id || n < 0 || (n > 0 && !ids))
        return vs_fail(err, VS_ERR_INVALID_ARG, "delete_ids %s (%s): tenant_id and ids are required", c->name, c->path);
    for (int i = 0; i < n; i++)
        if (!ids[i]) return vs_fail(err, VS_ERR_INVALID_ARG, "delete_ids %s (%s): id %d is NULL", c->name, c->path, i);
    if ((rc = writer_lock(c, "delete_ids", err)) != VS_OK) return rc;
    const char **live = n ? vs_malloc((size_t)n * sizeof *live) : NULL;
    size_t k = 0;
    if (n && !live) {
        rc = vs_fail(err, VS_ERR_NOMEM, "delete_ids %s (%s): out of memory", c->name, c->path);
    } else {
        /* Only this tenant's existing points are logged (wmu makes reads safe). */
        for (int i = 0; i < n; i++) {
            if (strlen(ids[i]) >= VS_POINT_ID_MAX) continue;
            int64_t s = vs_flat_find(c->flat, ids[i]);
            if (s < 0) continue;
            vs_flat_view v;
            vs_flat_view_of(c->flat, (uint32_t)s, &v);
            if (strcmp(v.tenant, tenant_id) == 0) live[k++] = ids[i];
        }
        rc = delete_logged(c, "delete_ids", live, k, tenant_id, deleted, err);
    }
    vs_free(live);
    pthread_mutex_unlock(&c->wmu);
    return rc;
}

static vs_err emb_delete_filter(vs_index *ix, const char *name, const vs_filter *f, int64_t *deleted, vs_error *err) {
    int64_t dummy;
    if (!deleted) deleted = &dummy;
    *deleted = 0;
    coll *c;
    vs_err rc = coll_get((emb *)ix, name, "delete_filter", &c, err);
    if (rc != VS_OK || (rc = filter_check(f, "delete_filter", c, err)) != VS_OK) return rc;
    if ((rc = writer_lock(c, "delete_filter", err)) != VS_OK) return rc;
    uint32_t *slots = NULL;
    size_t n = 0;
    char(*ids)[VS_POINT_ID_MAX] = NULL;
    const char **idp = NULL;
    rc = vs_flat_select(c->flat, f, &slots, &n, err);
    if (rc == VS_OK && n) {
        ids = vs_malloc(n * sizeof *ids);
        idp = vs_malloc(n * sizeof *idp);
        if (!ids || !idp) rc = vs_fail(err, VS_ERR_NOMEM, "index: out of memory for %zu ids", n);
        for (size_t i = 0; i < n && rc == VS_OK; i++) {
            vs_flat_view v;
            vs_flat_view_of(c->flat, slots[i], &v);
            memcpy(ids[i], v.id, VS_POINT_ID_MAX);
            idp[i] = ids[i];
        }
    }
    if (rc == VS_OK)
        rc = delete_logged(c, "delete_filter", idp, n, f->tenant_id, deleted, err);
    else
        with_ctx(err, rc, "delete_filter", c->name);
    vs_free(slots);
    vs_free(ids);
    vs_free(idp);
    pthread_mutex_unlock(&c->wmu);
    return rc;
}

static vs_err emb_count(vs_index *ix, const char *name, const vs_filter *f, int64_t *n, vs_error *err) {
    coll *c;
    vs_err rc = coll_get((emb *)ix, name, "count", &c, err);
    if (rc != VS_OK || (rc = filter_check(f, "count", c, err)) != VS_OK) return rc;
    if (!n) return vs_fail(err, VS_ERR_INVALID_ARG, "count %s (%s): no output", c->name, c->path);
    pthread_rwlock_rdlock(&c->rw);
    *n = (int64_t)vs_flat_count(c->flat, f);
    pthread_rwlock_unlock(&c->rw);
    return VS_OK;
}

/* qsort comparator for fixed-size id strings. */
static int cmp_id(const void *a, const void *b) { return strcmp(a, b); }

/* Keeps the `cap` smallest ids offered so far in a max-heap h of size *n. */
static void keep_smallest(char (*h)[VS_POINT_ID_MAX], size_t *n, size_t cap, const char *id) {
    size_t i;
    if (*n < cap) {
        i = (*n)++;
        memcpy(h[i], id, VS_POINT_ID_MAX);
        while (i > 0 && strcmp(h[(i - 1) / 2], h[i]) < 0) { /* sift up */
            char t[VS_POINT_ID_MAX];
            memcpy(t, h[i], sizeof t);
            memcpy(h[i], h[(i - 1) / 2], sizeof t);
            memcpy(h[(i - 1) / 2], t, sizeof t);
            i = (i - 1) / 2;
        }
        return;
    }
    if (strcmp(id, h[0]) >= 0) return;
    memcpy(h[0], id, VS_POINT_ID_MAX);
    for (i = 0;;) { /* sift down */
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < *n && strcmp(h[l], h[w]) > 0) w = l;
        if (r < *n && strcmp(h[r], h[w]) > 0) w = r;
        if (w == i) break;
        char t[VS_POINT_ID_MAX];
        memcpy(t, h[i], sizeof t);
        memcpy(h[i], h[w], sizeof t);
        memcpy(h[w], t, sizeof t);
        i = w;
    }
}

static vs_err emb_scroll(vs_index *ix, const char *name, const vs_filter *f, const char *after_id, int limit,
                         vs_point_cb cb, void *ctx, char next[VS_POINT_ID_MAX], vs_error *err) {
    if (next) next[0] = '\0';
    coll *c;
    vs_err rc = coll_get((emb *)ix, name, "scroll", &c, err);
    if (rc != VS_OK || (rc = filter_check(f, "scroll", c, err)) != VS_OK) return rc;
    if (limit < 1 || !cb || !next)
        return vs_fail(err, VS_ERR_INVALID_ARG, "scroll %s (%s): limit must be >= 1 with a callback and next buffer",
                       c->name, c->path);
    /* Under the read lock, keep the `limit` smallest matching ids after
     * after_id (a bounded heap: O(n log limit), memory O(limit)); then sort
     * them unlocked. */
    uint32_t *slots = NULL;
    size_t n = 0, m = 0, candidates = 0;
    char(*ids)[VS_POINT_ID_MAX] = NULL;
    float *vec = NULL;
    char *pay = NULL;
    size_t pay_cap = 0;
    pthread_rwlock_rdlock(&c->rw);
    rc = vs_flat_select(c->flat, f, &slots, &n, err);
    size_t cap = n < (size_t)limit ? n : (size_t)limit;
    if (rc == VS_OK && cap && !(ids = vs_malloc(cap * sizeof *ids)))
        rc = vs_fail(err, VS_ERR_NOMEM, "index: out of memory for %zu ids", cap);
    for (size_t i = 0; rc == VS_OK && i < n; i++) {
        vs_flat_view v;
        vs_flat_view_of(c->flat, slots[i], &v);
        if (after_id && strcmp(v.id, after_id) <= 0) continue;
        candidates++;
        keep_smallest(ids, &m, cap, v.id);
    }
    pthread_rwlock_unlock(&c->rw);
    vs_free(slots);
    if (rc != VS_OK) goto out;
    if (m) qsort(ids, m, sizeof *ids, cmp_id); /* ids is NULL when m == 0 */
    if (m && !(vec = vs_malloc((size_t)c->dim * sizeof *vec))) {
        rc = vs_fail(err, VS_ERR_NOMEM, "index: out of memory");
        goto out;
    }
    /* Deliver one point at a time: copy under the read lock, call back with
     * no lock held (points deleted meanwhile are skipped). */
    int delivered = 0, stopped = 0;
    size_t last = 0;
    for (size_t i = 0; i < m && delivered < limit && !stopped; i++) {
        int have = 0;
        pthread_rwlock_rdlock(&c->rw);
        int64_t s = vs_flat_find(c->flat, ids[i]);
        if (s >= 0 && vs_flat_matches(c->flat, (uint32_t)s, f)) {
            vs_flat_view v;
            vs_flat_view_of(c->flat, (uint32_t)s, &v);
            if (v.payload_len + 1 > pay_cap) {
                char *np = vs_realloc(pay, v.payload_len + 1);
                if (!np)
                    rc = vs_fail(err, VS_ERR_NOMEM, "index: out of memory for a payload");
                else
                    pay = np, pay_cap = v.payload_len + 1;
            }
            if (rc == VS_OK) {
                memcpy(pay, v.payload, v.payload_len + 1);
                memcpy(vec, v.vector, (size_t)c->dim * sizeof *vec);
                have = 1;
            }
        }
        pthread_rwlock_unlock(&c->rw);
        if (rc != VS_OK) goto out;
        if (!have) continue;
        delivered++;
        last = i;
        if (cb(ctx, ids[i], vec, pay)) stopped = 1;
    }
    /* Resume after the last id handled: where the callback stopped us, or
     * the last kept id when more candidates remain beyond this page. */
    if (stopped)
        memcpy(next, ids[last], VS_POINT_ID_MAX);
    else if (candidates > m)
        memcpy(next, ids[m - 1], VS_POINT_ID_MAX);
out:
    if (rc != VS_OK) with_ctx(err, rc, "scroll", c->name);
    vs_free(ids);
    vs_free(vec);
    vs_free(pay);
    return rc;
}

/* One part of a split search: rows [begin, end) into its own hits. */
typedef struct scan_part {
    uint32_t begin, end;
    vs_flat_hit *hits;
    int n;
} scan_part;

typedef struct scan_job {
    const vs_flat *flat;
    const float *query;
    const vs_filter *filter;
    int top_k;
    float threshold;
    scan_part parts[SPLIT_MAX_PARTS];
} scan_job;

static void scan_one(void *ctx, int i) {
    scan_job *j = ctx;
    scan_part *p = &j->parts[i];
    vs_flat_search_rows(j->flat, j->query, j->filter, j->top_k, j->threshold, p->begin, p->end, p->hits, &p->n);
}

/* The exact top-k of a large block (`rows` points of the filter's tenant),
 * its rows split over the scan pool; the merge gives exactly what one scan
 * would. Falls back to one scan when the parts' memory cannot be had.
 * Called with the collection's read lock. */
static void split_search(emb *e, const vs_flat *flat, uint32_t rows, const float *query, const vs_filter *f, int k,
                         float threshold, vs_flat_hit *out, int *n) {
    int np = vs_pool_threads(e->scan) + 1;
    if (np > SPLIT_MAX_PARTS) np = SPLIT_MAX_PARTS;
    if (rows < SPLIT_MIN_ROWS || np < 2) return vs_flat_search(flat, query, f, k, threshold, out, n);
    scan_job j = {flat, query, f, k, threshold, {{0}}};
    vs_flat_hit *mem = vs_malloc((size_t)np * (size_t)k * sizeof *mem);
    if (!mem) return vs_flat_search(flat, query, f, k, threshold, out, n);
    for (int i = 0; i < np; i++) {
        j.parts[i].begin = (uint32_t)((uint64_t)rows * (uint64_t)i / (uint64_t)np);
        j.parts[i].end = (uint32_t)((uint64_t)rows * (uint64_t)(i + 1) / (uint64_t)np);
        j.parts[i].hits = mem + (size_t)i * (size_t)k;
    }
    vs_pool_run(e->scan, np, scan_one, &j);
    const vs_flat_hit *parts[SPLIT_MAX_PARTS];
    int counts[SPLIT_MAX_PARTS];
    for (int i = 0; i < np; i++) {
        parts[i] = j.parts[i].hits;
        counts[i] = j.parts[i].n;
    }
    vs_flat_merge(flat, parts, counts, np, k, out, n);
    vs_free(mem);
}

/* The tenant's graph answers when it has one and the filter lets it
 * (vs_ann_search); hits under threshold are dropped. Every hit is checked to
 * be a live point of the tenant matching the filter once more: the graph's
 * invariant already promises it, and a tenant's results are the one place
 * where a broken promise would leak another tenant's data. */
static vs_err ann_search(coll *c, const float *query, const vs_filter *f, int k, float threshold, vs_flat_hit *out,
                         int *n, int *used, vs_error *err) {
    int got = 0;
    vs_err rc = vs_ann_search(c->ann, query, f, k, out, &got, used, err);
    if (rc != VS_OK) return with_ctx(err, rc, "search", c->name);
    *n = 0;
    for (int i = 0; i < got && *used; i++) {
        if (!vs_flat_matches(c->flat, out[i].slot, f))
            return vs_fail(err, VS_ERR_INTERNAL, "search %s: graph of %s returned slot %u of another point", c->name,
                           f->tenant_id, out[i].slot);
        if (out[i].score >= threshold) out[(*n)++] = out[i];
    }
    return VS_OK;
}

static vs_err emb_search(vs_index *ix, const char *name, const float *query, const vs_filter *f, int top_k,
                         float threshold, vs_hit **hits, int *n_hits, vs_error *err) {
    if (hits) *hits = NULL;
    if (n_hits) *n_hits = 0;
    coll *c;
    vs_err rc = coll_get((emb *)ix, name, "search", &c, err);
    if (rc != VS_OK || (rc = filter_check(f, "search", c, err)) != VS_OK) return rc;
    if (!query || !hits || !n_hits || top_k < 1 || isnan(threshold))
        return vs_fail(err, VS_ERR_INVALID_ARG,
                       "search %s (%s): need a query, outputs, top_k >= 1 (got %d), a threshold", c->name, c->path,
                       top_k);
    for (int d = 0; d < c->dim; d++)
        if (!isfinite(query[d]))
            return vs_fail(err, VS_ERR_INVALID_ARG, "search %s (%s): query[%d] is not finite", c->name, c->path, d);
    vs_flat_hit *fh = NULL;
    vs_hit *out = NULL;
    int n = 0;
    pthread_rwlock_rdlock(&c->rw);
    vs_filter tenant_only = {.tenant_id = f->tenant_id};
    size_t avail = vs_flat_count(c->flat, &tenant_only);
    int k = (size_t)top_k < avail ? top_k : (int)avail;
    if (k > 0 && !(fh = vs_malloc((size_t)k * sizeof *fh))) {
        rc = vs_fail(err, VS_ERR_NOMEM, "search %s (%s): out of memory for top_k %d", c->name, c->path, top_k);
        goto out;
    }
    int approx = 0;
    if (k > 0 && (rc = ann_search(c, query, f, k, threshold, fh, &n, &approx, err)) != VS_OK) goto out;
    if (k > 0 && !approx) split_search((emb *)ix, c->flat, (uint32_t)avail, query, f, k, threshold, fh, &n);
    if (n > 0 && !(out = vs_calloc((size_t)n, sizeof *out))) {
        rc = vs_fail(err, VS_ERR_NOMEM, "search %s (%s): out of memory for %d hits", c->name, c->path, n);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        vs_flat_view v;
        vs_flat_view_of(c->flat, fh[i].slot, &v);
        memcpy(out[i].id, v.id, VS_POINT_ID_MAX);
        out[i].score = fh[i].score;
        if (!(out[i].payload_json = vs_malloc(v.payload_len + 1))) {
            rc = vs_fail(err, VS_ERR_NOMEM, "search %s (%s): out of memory copying payloads", c->name, c->path);
            goto out;
        }
        memcpy(out[i].payload_json, v.payload, v.payload_len + 1);
    }
out:
    pthread_rwlock_unlock(&c->rw);
    vs_free(fh);
    if (rc != VS_OK) {
        vs_hits_free(out, n);
        return rc;
    }
    *hits = out;
    *n_hits = n;
    return VS_OK;
}

static vs_err emb_describe(vs_index *ix, const char *name, int *dim, char model[VS_INDEX_MODEL_MAX + 1],
                           vs_error *err) {
    coll *c;
    vs_err rc = coll_get((emb *)ix, name, "describe", &c, err);
    if (rc != VS_OK) return rc;
    *dim = c->dim;
    snprintf(model, VS_INDEX_MODEL_MAX + 1, "%s", vs_log_model(c->log));
    return VS_OK;
}

/* fsync of a directory, so an unlink or rmdir in it survives a crash. */
static int fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    int rc = fsync(fd) ? errno : 0;
    close(fd);
    return rc;
}

/* Removes the files of collection name: the log first (one unlink, so a
 * crash leaves either the whole collection or a folder without a log, which
 * open skips), a compaction's leftover, then the folder. Missing ones are
 * fine: a drop cut short is finished by the next. */
static vs_err remove_files(emb *e, const char *name, vs_error *err) {
    char dir[PATH_CAP + 80], path[PATH_CAP + 128];
    snprintf(dir, sizeof dir, "%s/%s", e->dir, name);
    snprintf(path, sizeof path, "%s/%s", dir, VS_LOG_FILE);
    if (unlink(path) != 0 && errno != ENOENT)
        return vs_fail(err, VS_ERR_IO, "drop_collection %s: unlink %s: %s", name, path, strerror(errno));
    snprintf(path, sizeof path, "%s/%s.tmp", dir, VS_LOG_FILE);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s", dir, ANN_SNAP_FILE);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s.tmp", dir, ANN_SNAP_FILE);
    unlink(path);
    if (rmdir(dir) != 0 && errno != ENOENT)
        return vs_fail(err, VS_ERR_IO, "drop_collection %s: rmdir %s: %s", name, dir, strerror(errno));
    int e2 = fsync_dir(e->dir);
    if (e2) return vs_fail(err, VS_ERR_IO, "drop_collection %s: fsync %s: %s", name, e->dir, strerror(e2));
    return VS_OK;
}

/* Dropping takes the collection out of the registry (new calls: NOT_FOUND),
 * empties it in memory under its locks (calls that already hold it see no
 * points; writers see `dropped`), then removes its files. The record stays
 * on `gone` until close, since other threads may still hold it. */
static vs_err emb_drop_collection(vs_index *ix, const char *name, vs_error *err) {
    emb *e = (emb *)ix;
    if (!vs_index_name_ok(name))
        return vs_fail(err, VS_ERR_INVALID_ARG, "drop_collection %.80s: name must be 1-%d of [A-Za-z0-9_-]",
                       name ? name : "(null)", COLL_NAME_MAX);
    vs_err rc = VS_OK;
    vs_flat *empty = NULL;
    pthread_rwlock_wrlock(&e->reg);
    int at = -1;
    for (int i = 0; i < e->n_colls; i++)
        if (strcmp(e->colls[i]->name, name) == 0) at = i;
    coll *c = at >= 0 ? e->colls[at] : NULL;
    if (c && e->n_gone == e->cap_gone) {
        int cap = e->cap_gone ? e->cap_gone * 2 : 4;
        coll **n = vs_realloc(e->gone, (size_t)cap * sizeof *n);
        if (n) e->gone = n, e->cap_gone = cap;
    }
    if (c && (e->n_gone == e->cap_gone || !(empty = vs_flat_new(c->dim)))) {
        rc = vs_fail(err, VS_ERR_NOMEM, "drop_collection %s: out of memory", name);
    } else if (c) {
        e->colls[at] = e->colls[--e->n_colls];
        e->gone[e->n_gone++] = c;
    }
    pthread_rwlock_unlock(&e->reg);
    if (rc != VS_OK) return rc;
    if (c) {
        pthread_mutex_lock(&c->wmu);
        pthread_rwlock_wrlock(&c->rw);
        vs_flat *old = c->flat;
        vs_ann_clear(c->ann);   /* before its flat goes; no writer can refill it (dropped) */
        c->flat = empty;
        c->dropped = 1;
        pthread_rwlock_unlock(&c->rw);
        pthread_mutex_unlock(&c->wmu);
        vs_flat_free(old);
    }
    return remove_files(e, name, err);
}

static int emb_healthy(vs_index *ix) {
    emb *e = (emb *)ix;
    int ok = 1;
    pthread_rwlock_rdlock(&e->reg);
    for (int i = 0; i < e->n_colls; i++)
        if (vs_log_broken(e->colls[i]->log)) ok = 0;
    pthread_rwlock_unlock(&e->reg);
    return ok;
}

static void emb_close(vs_index *ix) {
    emb *e = (emb *)ix;
    if (!e) return;
    vs_pool_free(e->scan);
    for (int i = 0; i < e->n_colls; i++)
        if (e->colls[i]->ann) ann_checkpoint(e->colls[i], 1);
    for (int i = 0; i < e->n_colls; i++) coll_free(e->colls[i]);
    for (int i = 0; i < e->n_gone; i++) coll_free(e->gone[i]);
    vs_free(e->colls);
    vs_free(e->gone);
    if (e->lock_fd >= 0) close(e->lock_fd); /* releases the flock */
    pthread_rwlock_destroy(&e->reg);
    vs_free(e);
}

vs_err vs_index_embedded_validate(vs_index *ix, const char *name, vs_error *err) {
    coll *c;
    vs_err rc = coll_get((emb *)ix, name, "validate", &c, err);
    if (rc != VS_OK) return rc;
    pthread_mutex_lock(&c->wmu); /* no group half-written while we compare sizes */
    pthread_rwlock_rdlock(&c->rw);
    rc = vs_flat_validate(c->flat, err);
    if (rc == VS_OK) rc = vs_ann_validate(c->ann, err);
    if (rc == VS_OK && vs_flat_dim(c->flat) != vs_log_dim(c->log))
        rc = vs_fail(err, VS_ERR_INTERNAL, "index validate: dim %d in memory, %d in the log", vs_flat_dim(c->flat),
                     vs_log_dim(c->log));
    struct stat st;
    if (rc == VS_OK && (stat(c->path, &st) != 0 || (uint64_t)st.st_size != vs_log_size(c->log)))
        rc = vs_fail(err, VS_ERR_INTERNAL, "index validate: log is %lld bytes on disk, %llu expected",
                     (long long)st.st_size, (unsigned long long)vs_log_size(c->log));
    pthread_rwlock_unlock(&c->rw);
    pthread_mutex_unlock(&c->wmu);
    return with_ctx(err, rc, "validate", c->path);
}

vs_err vs_index_embedded_ann_stats(vs_index *ix, const char *name, vs_ann_stats *st, vs_error *err) {
    coll *c;
    vs_err rc = coll_get((emb *)ix, name, "ann_stats", &c, err);
    if (rc == VS_OK) vs_ann_get_stats(c->ann, st);
    return rc;
}

vs_err vs_index_embedded_checkpoint(vs_index *ix, const char *name, vs_error *err) {
    coll *c;
    vs_err rc = coll_get((emb *)ix, name, "checkpoint", &c, err);
    if (rc != VS_OK || (rc = writer_lock(c, "checkpoint", err)) != VS_OK) return rc;
    rc = vs_ann_save(c->ann, c->snap, err);
    pthread_mutex_unlock(&c->wmu);
    return rc;
}

static const vs_index_ops emb_ops = {
    .ensure_collection = emb_ensure_collection,
    .describe = emb_describe,
    .drop_collection = emb_drop_collection,
    .upsert = emb_upsert,
    .get = emb_get,
    .delete_ids = emb_delete_ids,
    .delete_filter = emb_delete_filter,
    .count = emb_count,
    .scroll = emb_scroll,
    .search = emb_search,
    .healthy = emb_healthy,
    .close = emb_close,
};

vs_err vs_index_embedded_open(const char *data_dir, vs_index **out, vs_error *err) {
    return vs_index_embedded_open_with(data_dir, NULL, out, err);
}

vs_err vs_index_embedded_open_with(const char *data_dir, const vs_index_opts *opts, vs_index **out, vs_error *err) {
    *out = NULL;
    emb *e = vs_calloc(1, sizeof *e);
    if (!e) return vs_fail(err, VS_ERR_NOMEM, "open index %s: out of memory", data_dir);
    e->base.ops = &emb_ops;
    if (opts) {
        vs_ann_cfg ac = {opts->ann_min_points, opts->ann_m, opts->ann_ef_construction, opts->ann_ef_search};
        e->ann_cfg = vs_ann_cfg_resolve(&ac);
    } else {
        e->ann_cfg = vs_ann_cfg_resolve(NULL);
    }
    e->lock_fd = -1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    /* the searching thread is one of the scanners; no pool (inline) if threads cannot start */
    e->scan = vs_pool_new(cores > 1 ? (int)(cores > SPLIT_MAX_PARTS ? SPLIT_MAX_PARTS : cores) - 1 : 0);
    pthread_rwlock_init(&e->reg, NULL);
    vs_err rc = VS_OK;
    char lock[PATH_CAP + 8];
    if ((size_t)snprintf(e->dir, sizeof e->dir, "%s/index", data_dir) >= sizeof e->dir - COLL_NAME_MAX - 32) {
        rc = vs_fail(err, VS_ERR_INVALID_ARG, "open index %s: path too long", data_dir);
        goto out;
    }
    if ((mkdir(data_dir, 0700) != 0 && errno != EEXIST) || (mkdir(e->dir, 0700) != 0 && errno != EEXIST)) {
        rc = vs_fail(err, VS_ERR_IO, "open index %s: mkdir: %s", e->dir, strerror(errno));
        goto out;
    }
    snprintf(lock, sizeof lock, "%s/LOCK", e->dir);
    e->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (e->lock_fd < 0) {
        rc = vs_fail(err, VS_ERR_IO, "open index %s: %s", lock, strerror(errno));
        goto out;
    }
    if (flock(e->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = vs_fail(err, VS_ERR_IO, "open index %s: %s (is another visage process using this data dir?)", lock,
                     strerror(errno));
        goto out;
    }
    DIR *d = opendir(e->dir);
    if (!d) {
        rc = vs_fail(err, VS_ERR_IO, "open index %s: %s", e->dir, strerror(errno));
        goto out;
    }
    struct dirent *de;
    while (rc == VS_OK && (de = readdir(d)) != NULL) {
        if (!vs_index_name_ok(de->d_name)) continue;
        char path[PATH_CAP + 128];
        struct stat st;
        if ((size_t)snprintf(path, sizeof path, "%s/%s/%s.tmp", e->dir, de->d_name, VS_LOG_FILE) < sizeof path)
            unlink(path); /* leftover of a crash during create or compaction */
        if ((size_t)snprintf(path, sizeof path, "%s/%s/%s.tmp", e->dir, de->d_name, ANN_SNAP_FILE) < sizeof path)
            unlink(path); /* leftover of a crash during a graph save */
        if ((size_t)snprintf(path, sizeof path, "%s/%s/%s", e->dir, de->d_name, VS_LOG_FILE) >= sizeof path ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        rc = load_collection(e, de->d_name, err);
    }
    closedir(d);
out:
    if (rc != VS_OK) {
        emb_close(&e->base);
        return rc;
    }
    *out = &e->base;
    return VS_OK;
}
