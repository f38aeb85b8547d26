/* vs_index.h - the vector index contract: collections of points (id +
 * L2-normalised float32 vector + JSON payload) with a fixed dimension and the
 * model that made them, upsert, get, delete, count, scroll and top-k cosine
 * search with payload filters. tenant_id is part of every filter and every
 * point: no call can see another tenant's points. Backends: "embedded"
 * (exact scan, persisted under the data dir) and http(s)://host:6333
 * (Qdrant REST; QDRANT_API_KEY). Thread-safe: searches run concurrently,
 * writes are serialised. */
#ifndef VS_INDEX_H
#define VS_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "vs_err.h"

typedef struct vs_index vs_index;

#define VS_POINT_ID_MAX 64
#define VS_INDEX_MODEL_MAX 255     /* bytes of a collection's model id */

typedef struct vs_point {
    const char *id;            /* e.g. a vs_face_id UUID, <= 63 chars */
    const float *vector;       /* dim floats */
    const char *payload_json;  /* JSON object; must contain "tenant_id" */
} vs_point;

/* Payload filter; NULL / 0 fields are "any". tenant_id is required. */
typedef struct vs_filter {
    const char *tenant_id;
    const char *site;
    const char *image_sha256;
    float min_quality;         /* payload "quality_score" >= this */
    int exact;                 /* search only: scan every point even where an
                                * approximate index exists (embedded: the
                                * tenant's HNSW graph; Qdrant: params.exact) */
} vs_filter;

typedef struct vs_hit {
    char id[VS_POINT_ID_MAX];
    float score;               /* cosine similarity */
    char *payload_json;        /* owned: vs_hits_free */
} vs_hit;

typedef int (*vs_point_cb)(void *ctx, const char *id, const float *vector, const char *payload_json);

typedef struct vs_index_ops {
    /* Creates the collection or checks an existing one has this dim and
     * model: a mismatch -> VS_ERR_INVALID_ARG naming both (never mix models). */
    vs_err (*ensure_collection)(vs_index *ix, const char *name, int dim, const char *model, vs_error *err);
    /* The dim and model id an existing collection was created with (what
     * decides which embedder may search it). VS_ERR_NOT_FOUND when there is
     * no such collection. */
    vs_err (*describe)(vs_index *ix, const char *name, int *dim, char model[VS_INDEX_MODEL_MAX + 1], vs_error *err);
    /* Deletes the collection and every point in it, from disk (or Qdrant)
     * too; VS_OK when it does not exist, so a drop cut short is finished by
     * calling it again. Calls under way on it when it goes finish against an
     * empty collection or fail VS_ERR_NOT_FOUND; later ones fail NOT_FOUND
     * until ensure_collection makes it anew. */
    vs_err (*drop_collection)(vs_index *ix, const char *name, vs_error *err);
    /* Inserts or replaces points by id, all or none, durable on return. */
    vs_err (*upsert)(vs_index *ix, const char *coll, const vs_point *pts, int n, vs_error *err);
    /* One point of the tenant: VS_ERR_NOT_FOUND if absent or another tenant's.
     * vector_out (dim floats) and payload_out (vs_free) may be NULL. */
    vs_err (*get)(vs_index *ix, const char *coll, const char *tenant_id, const char *id, float *vector_out,
                  char **payload_out, vs_error *err);
    vs_err (*delete_ids)(vs_index *ix, const char *coll, const char *tenant_id, const char *const *ids, int n,
                         int64_t *deleted, vs_error *err);
    vs_err (*delete_filter)(vs_index *ix, const char *coll, const vs_filter *f, int64_t *deleted, vs_error *err);
    vs_err (*count)(vs_index *ix, const char *coll, const vs_filter *f, int64_t *n, vs_error *err);
    /* Every matching point, at most limit per call, in a stable order that
     * resumes after `after_id` (NULL = start); *next receives the last id
     * seen or "" at the end. The embedded backend's order is the ids' string
     * order; Qdrant's is the order of the point UUIDs it derives from them. */
    vs_err (*scroll)(vs_index *ix, const char *coll, const vs_filter *f, const char *after_id, int limit,
                     vs_point_cb cb, void *ctx, char next[VS_POINT_ID_MAX], vs_error *err);
    /* Best top_k points with score >= threshold, best first. *hits is a new
     * array (vs_hits_free). */
    vs_err (*search)(vs_index *ix, const char *coll, const float *query, const vs_filter *f, int top_k,
                     float threshold, vs_hit **hits, int *n_hits, vs_error *err);
    int (*healthy)(vs_index *ix);
    void (*close)(vs_index *ix);
} vs_index_ops;

struct vs_index {
    const vs_index_ops *ops;
};

/* url: "embedded" (data_dir required) or "http(s)://qdrant-host:6333". */
vs_err vs_index_open(const char *url, const char *data_dir, vs_index **out, vs_error *err);

/* Tuning of the embedded backend's approximate search (Qdrant tunes its
 * own). Zero fields take the defaults. */
typedef struct vs_index_opts {
    int64_t ann_min_points;   /* a tenant with at least this many points is searched
                               * through its HNSW graph (default 20000); < 0: never */
    int ann_m;                /* graph links per node (default 16, level 0 has twice) */
    int ann_ef_construction;  /* candidates kept while linking an insert (default 200) */
    int ann_ef_search;        /* candidates kept while searching (default 128, at least top_k) */
} vs_index_opts;

/* vs_index_open with tuning; opts may be NULL (defaults). */
vs_err vs_index_open_with(const char *url, const char *data_dir, const vs_index_opts *opts, vs_index **out,
                          vs_error *err);
void vs_hits_free(vs_hit *hits, int n);

/* Every point of coll matching f, to cb, page by page (`page` per call of
 * ops->scroll); cb returning non-zero stops early. A collection that does
 * not exist has no points: VS_OK. */
vs_err vs_index_scroll_all(vs_index *ix, const char *coll, const vs_filter *f, int page, vs_point_cb cb, void *ctx,
                           vs_error *err);

/* What the embedded backend's approximate index (vs_ann.c) holds and did
 * for one collection, for /metrics and tests. */
typedef struct vs_ann_stats {
    int graphs;               /* tenants with a graph */
    uint64_t points, bytes;   /* nodes in graphs, heap they hold */
    uint64_t searches;        /* searches the graphs answered */
    uint64_t exact_fallbacks; /* filtered searches handed back to the exact scan */
    uint64_t builds;          /* graphs built in this process (a tenant crossing the
                               * bound, a bulk delete, an open without a snapshot) */
    uint64_t reconnected;     /* nodes found unreachable and re-linked (at each snapshot) */
} vs_ann_stats;

/* VS_ERR_UNSUPPORTED for backends without one (Qdrant keeps its own). */
vs_err vs_index_ann_stats(vs_index *ix, const char *coll, vs_ann_stats *st, vs_error *err);

/* Checks the internal invariants of one collection (embedded backend: every
 * id maps to its tenant block and row and back, counts agree, no duplicate
 * ids, finite vectors, log size matches the file). VS_ERR_INTERNAL naming the
 * first violation; VS_ERR_UNSUPPORTED for backends without a validator.
 * Takes the collection's locks: safe while other threads use the index. */
vs_err vs_index_validate(vs_index *ix, const char *coll, vs_error *err);

#endif
