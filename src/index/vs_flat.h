/* vs_flat.h - the in-memory structure behind the embedded vector index: one
 * collection's points, grouped per tenant in contiguous float matrices so an
 * exact scan of one tenant touches nothing else. Pure data structure: it knows
 * no files, no locks and no JSON (the caller parses payloads and passes the
 * fields filters need). Not thread-safe by itself: vs_index_embedded.c puts a
 * rwlock around it (const functions may run concurrently with each other).
 *
 * Layout: points live in a slot table (id, tenant block, row, payload text and
 * filter fields); an id -> slot hash map finds them; each tenant has a block
 * whose rows are the vectors (rows * dim floats, contiguous) and a row -> slot
 * array. Deleting swaps the block's last row into the hole, so blocks stay
 * dense. A tenant -> block hash map picks the block for a query. */
#ifndef VS_FLAT_H
#define VS_FLAT_H

#include <stddef.h>
#include <stdint.h>

#include "vs_err.h"
#include "vs_index.h"

typedef struct vs_flat vs_flat;

#define VS_FLAT_TENANT_MAX 255   /* bytes of a tenant id */
#define VS_FLAT_SITE_MAX 4096    /* bytes of a payload "site" */
#define VS_FLAT_SHA_MAX 255      /* bytes of a payload "image_sha256" */

/* One point ready to insert. vs_flat_entry_init copies the strings into one
 * allocation (blob) that vs_flat_put takes over on success; otherwise the
 * caller releases it with vs_flat_entry_clear. tenant and vector are only read
 * during vs_flat_put (the block keeps its own copies). */
typedef struct vs_flat_entry {
    char id[VS_POINT_ID_MAX];
    const char *tenant;
    const float *vector;       /* dim floats */
    char *blob;                /* payload '\0' [site '\0'] [sha '\0'] */
    uint32_t payload_len;
    int32_t site_off, sha_off; /* offsets into blob, -1 when absent */
    float quality;
    int has_quality;
} vs_flat_entry;

/* Read-only view of a stored point; pointers stay valid until the next
 * mutation of the structure. */
typedef struct vs_flat_view {
    const char *id, *tenant, *site, *image_sha256, *payload;  /* site/sha NULL if absent */
    size_t payload_len;
    const float *vector;
    float quality;
    int has_quality;
} vs_flat_view;

typedef struct vs_flat_hit {
    uint32_t slot;
    float score;
} vs_flat_hit;

vs_flat *vs_flat_new(int dim);   /* NULL on NOMEM or dim < 1 */
void vs_flat_free(vs_flat *f);
int vs_flat_dim(const vs_flat *f);
size_t vs_flat_size(const vs_flat *f);   /* live points */

/* Fills e (copying payload, site and sha into e->blob); site/sha may be NULL.
 * Lengths are checked by the caller (ids < VS_POINT_ID_MAX is checked here). */
vs_err vs_flat_entry_init(vs_flat_entry *e, const char *id, const char *tenant, const float *vector,
                          const char *payload, size_t payload_len, const char *site, size_t site_len,
                          const char *sha, size_t sha_len, int has_quality, float quality);
void vs_flat_entry_clear(vs_flat_entry *e);

/* Grows every table so that the next n vs_flat_put calls with these entries
 * cannot fail (tenant blocks are created empty when missing). May leave extra
 * capacity behind on failure, never an inconsistent structure. */
vs_err vs_flat_reserve(vs_flat *f, const vs_flat_entry *entries, int n, vs_error *err);

/* Inserts or replaces e->id (moving it between tenant blocks if its tenant
 * changed). Takes e->blob (sets it NULL) on success. Grows tables on demand,
 * so only fails with VS_ERR_NOMEM when no vs_flat_reserve covered it. */
vs_err vs_flat_put(vs_flat *f, vs_flat_entry *e, vs_error *err);

/* Removes id; returns 1 if it was there (and, when tenant is not NULL, it
 * belonged to that tenant), 0 otherwise. Never allocates. */
int vs_flat_remove(vs_flat *f, const char *id, const char *tenant);

/* Slot of id or -1; view of a live slot. */
int64_t vs_flat_find(const vs_flat *f, const char *id);
void vs_flat_view_of(const vs_flat *f, uint32_t slot, vs_flat_view *v);

/* Whether live slot belongs to flt->tenant_id and matches its other fields. */
int vs_flat_matches(const vs_flat *f, uint32_t slot, const vs_filter *flt);
/* Points of filter->tenant_id matching the other filter fields. */
size_t vs_flat_count(const vs_flat *f, const vs_filter *flt);
/* Every matching slot, in row order, in a new array (vs_free; NULL when 0). */
vs_err vs_flat_select(const vs_flat *f, const vs_filter *flt, uint32_t **slots, size_t *n, vs_error *err);

/* Exact top-k by dot product over the filter's tenant block: hits (capacity
 * top_k, caller-owned) receives up to top_k results with score >= threshold,
 * best first (ties: smaller id first). */
void vs_flat_search(const vs_flat *f, const float *query, const vs_filter *flt, int top_k, float threshold,
                    vs_flat_hit *hits, int *n_hits);

/* The same search split for several threads: a search over rows
 * [begin, end) of the filter's tenant block only (its row count is
 * vs_flat_count with the tenant alone), and the merge of the parts'
 * results into exactly what one whole scan returns (same hits, same order:
 * ties still go to the smaller id). */
void vs_flat_search_rows(const vs_flat *f, const float *query, const vs_filter *flt, int top_k, float threshold,
                         uint32_t begin, uint32_t end, vs_flat_hit *hits, int *n_hits);
void vs_flat_merge(const vs_flat *f, const vs_flat_hit *const *parts, const int *n_parts, int np, int top_k,
                   vs_flat_hit *hits, int *n_hits);

/* Calls cb with every tenant that has (or had) a block and its live point
 * count; stops on non-zero. */
int vs_flat_tenants(const vs_flat *f, int (*cb)(void *ctx, const char *tenant, size_t n), void *ctx);

/* One past the highest slot ever used: every slot is below it. */
uint32_t vs_flat_slot_limit(const vs_flat *f);

/* The float32 row of live slot (dim floats); valid until the next mutation. */
const float *vs_flat_vector(const vs_flat *f, uint32_t slot);

/* Calls cb for every live point (order unspecified); stops on non-zero. */
int vs_flat_foreach(const vs_flat *f, int (*cb)(void *ctx, const vs_flat_view *v), void *ctx);

/* Checks every invariant (id map <-> slots <-> block rows, counts, tenant
 * map, free list, finite vectors); the first violation goes into err as
 * VS_ERR_INTERNAL. */
vs_err vs_flat_validate(const vs_flat *f, vs_error *err);

/* Dot product of two dim-float rows (exposed for tests and benchmarks). */
float vs_flat_dot(const float *a, const float *b, size_t dim);

#endif
