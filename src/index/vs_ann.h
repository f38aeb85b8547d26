/* vs_ann.h - the approximate side of the embedded index: one HNSW graph
 * (vs_hnsw) per large tenant of a collection, over the vectors vs_flat
 * already holds. A tenant with at least cfg.min_points points is searched
 * through its graph; smaller tenants, selective filters and "exact" requests
 * keep the exact scan. Graph node ids are vs_flat slots, so hits map back to
 * points with no extra table; the graph keeps only int8 copies and links and
 * re-ranks on the flat's float32 rows.
 *
 * The one invariant everything rests on: a slot is in a tenant's graph only
 * while the flat holds it for that tenant. Writers therefore call
 * vs_ann_forget before the flat removes or re-assigns a slot, and
 * vs_ann_note after the flat stored it (vs_index_embedded.c does both under
 * the collection's writer lock, when the flat cannot change under them).
 *
 * Threading: writers are serialised by the caller. Searches run
 * concurrently with each other and with one writer: a map lock guards which
 * tenants have graphs (taken exclusively only to install or drop one), and
 * each graph has its own rwlock. Searches must hold the caller's read lock
 * on the flat, since re-ranking reads its rows. */
#ifndef VS_ANN_H
#define VS_ANN_H

#include <stdint.h>

#include "vs_err.h"
#include "vs_flat.h"
#include "vs_index.h"

typedef struct vs_ann vs_ann;

#define VS_ANN_MIN_POINTS_DEFAULT 20000   /* below this an exact scan costs ~1 ms (128-d) */
#define VS_ANN_M_DEFAULT 16
#define VS_ANN_EF_CONSTRUCTION_DEFAULT 200
#define VS_ANN_EF_SEARCH_DEFAULT 128   /* recall@10 ~0.96 at 1M faces (docs/system.md) */

/* Tuning of the approximate index; zero fields take the defaults above.
 * min_points < 0 turns graphs off (every search exact). */
typedef struct vs_ann_cfg {
    int64_t min_points;
    int M, ef_construction, ef_search;
} vs_ann_cfg;

/* The cfg with zero fields replaced by defaults and the rest clamped to
 * what vs_hnsw accepts. */
vs_ann_cfg vs_ann_cfg_resolve(const vs_ann_cfg *cfg);

/* A collection's graphs over flat (read, not owned: it must outlive the
 * vs_ann). NULL on NOMEM. */
vs_ann *vs_ann_new(const vs_ann_cfg *cfg, const vs_flat *flat);
void vs_ann_free(vs_ann *a);

/* Writer side (caller serialises writers; flat unchanged during the call). */

/* Drops slot from its tenant's graph, if it is in one. */
void vs_ann_forget(vs_ann *a, uint32_t slot);
/* Adds slot (live in flat) to its tenant's graph when that tenant has one.
 * Cannot fail: when the graph cannot take it (NOMEM) the graph is dropped,
 * exact scans answer, and the next vs_ann_refresh rebuilds it. */
void vs_ann_note(vs_ann *a, uint32_t slot);
/* Before n points of tenant are removed: when that is a large share of its
 * graph, drops the graph (a rebuild by vs_ann_refresh is cheaper than n
 * repaired deletes) and returns 1, so the caller skips vs_ann_forget. */
int vs_ann_forget_many(vs_ann *a, const char *tenant, size_t n);
/* Builds the graph of tenant when it reached min_points and has none, drops
 * it when the tenant fell under min_points / 2 (so a tenant hovering at the
 * bound does not rebuild on every write). A build reads the whole tenant:
 * ~20k points take a few seconds, done once. */
vs_err vs_ann_refresh(vs_ann *a, const char *tenant, vs_error *err);
/* Drops every graph (the flat was emptied). */
void vs_ann_clear(vs_ann *a);

/* Reader side (caller holds the flat's read lock). */

/* Approximate top-k of the filter's tenant into out (capacity k), best
 * first, scores exact. Sets *used = 0 and returns VS_OK without searching
 * when the exact scan should answer instead: no graph for the tenant, an
 * image_sha256 filter (a handful of points: exact is both cheaper and
 * complete), or a filter so selective that the graph walk found fewer than
 * k matching points (the exact scan then finds them all). */
vs_err vs_ann_search(vs_ann *a, const float *query, const vs_filter *flt, int k, vs_flat_hit *out, int *n,
                     int *used, vs_error *err);

/* vs_ann_stats is declared in vs_index.h (vs_index_ann_stats). */
void vs_ann_get_stats(vs_ann *a, vs_ann_stats *st);

/* Persistence (the graphs are a cache of what the log holds; see vs_ann.c
 * for the file). vs_ann_save writes every graph to path.tmp, fsyncs and
 * renames it over path: a crash at any point leaves the previous file
 * whole. Caller is the (only) writer. vs_ann_load, on an ann with no graphs
 * yet, reads path (checksummed), maps the saved points to today's slots,
 * deletes those gone, inserts those added or changed since the save, and
 * installs the graphs; on any error it installs none (NOT_FOUND: no file)
 * and the caller builds them with vs_ann_refresh. */
vs_err vs_ann_save(vs_ann *a, const char *path, vs_error *err);
vs_err vs_ann_load(vs_ann *a, const char *path, vs_error *err);
/* Graph changes since the last save (or since creation). */
uint64_t vs_ann_unsaved(const vs_ann *a);

/* Checks every graph (vs_hnsw_validate) and the invariant above: each node
 * is a live slot of that tenant, and each graph holds all of its tenant's
 * points. */
vs_err vs_ann_validate(vs_ann *a, vs_error *err);

#endif
