/* vs_hnsw.h - an HNSW graph (Malkov & Yashunin) for approximate inner-product
 * search over L2-normalised vectors of any dimension, with true deletes.
 *
 * A pure data structure in the manner of Redis's hnsw.c: it knows no files,
 * tenants, payloads or HTTP. Node ids are uint32 chosen by the caller (the row
 * of the point in the caller's table), so the caller keeps payloads and maps
 * hits back itself. One graph per tenant gives tenant isolation by
 * construction.
 *
 * Vectors are stored twice: int8 (symmetric, one scale per vector by default)
 * for graph traversal, and float32 for re-ranking the final ef candidates, so
 * returned scores are exact dot products. Links are kept symmetric (if a links
 * to b then b links to a): that is what makes a true delete cheap - the
 * deleted node's own lists name every node that points to it - and the
 * neighbours that lost a link are reconnected on the spot.
 *
 * Threading: a pthread rwlock inside. Searches take it for reading and run
 * concurrently; insert and delete take it for writing (serialised). No
 * globals: two graphs share nothing. */
#ifndef VS_HNSW_H
#define VS_HNSW_H

#include <stddef.h>
#include <stdint.h>

#include "vs_err.h"

typedef struct vs_hnsw vs_hnsw;

#define VS_HNSW_DIM_MAX 8192          /* bytes of a query copy on the heap, bounded */
#define VS_HNSW_M_MAX 64              /* level-0 lists hold 2*M links */
#define VS_HNSW_EF_MAX 4096           /* ef_construction / ef_search bound */
#define VS_HNSW_ID_MAX (1u << 28)     /* the id table grows to max id + 1 pointers */

/* One search result: the caller's id and the exact (float32) dot product. */
typedef struct vs_hnsw_hit {
    uint32_t id;
    float score;
} vs_hnsw_hit;

/* Filter: return nonzero to keep id in the results. Filtered-out nodes are
 * still traversed (the graph stays connected through them). Called with the
 * read lock held: it must not call back into the same graph's writers. */
typedef int (*vs_hnsw_filter)(void *ctx, uint32_t id);

/* Full-precision vector of stored id, for the final re-rank. Called with the
 * graph's read lock held; must return dim floats valid until it returns. */
typedef const float *(*vs_hnsw_vector_fn)(void *ctx, uint32_t id);

/* How a graph is built. dim in [1, VS_HNSW_DIM_MAX]; M in [2, VS_HNSW_M_MAX]
 * (links per node on upper levels, 2*M on level 0); ef_construction in
 * [1, VS_HNSW_EF_MAX]; seed drives level draws, so the same inserts in the
 * same order build the same graph. quant_clip <= 0 scales each vector by its
 * own max |component|; > 0 uses one symmetric scale clip/127 with components
 * clamped to [-clip, clip]. vector_of == NULL: the graph keeps its own
 * float32 copy of every vector (dim * 4 bytes a node); otherwise it keeps
 * only the int8 copy and asks vector_of(vector_ctx, id) at re-rank time, so
 * a caller that already holds the vectors does not pay for them twice. */
typedef struct vs_hnsw_cfg {
    int dim, M, ef_construction;
    uint64_t seed;
    float quant_clip;
    vs_hnsw_vector_fn vector_of;
    void *vector_ctx;
} vs_hnsw_cfg;

/* Creates an empty graph in *out; the caller frees it with vs_hnsw_free. */
vs_err vs_hnsw_new(const vs_hnsw_cfg *cfg, vs_hnsw **out, vs_error *e);
void vs_hnsw_free(vs_hnsw *h);

/* Inserts vec (dim floats, expected L2-normalised; copied) under id, replacing
 * a point already stored under that id. id < VS_HNSW_ID_MAX. */
vs_err vs_hnsw_insert(vs_hnsw *h, uint32_t id, const float *vec, vs_error *e);

/* Removes id from the graph for good: unlinks it from every neighbour,
 * reconnects the neighbours that lost a link, moves the entry point if needed,
 * frees the node. VS_ERR_NOT_FOUND if id is not stored. */
vs_err vs_hnsw_delete(vs_hnsw *h, uint32_t id, vs_error *e);

/* Top-k by inner product with query (dim floats): traverses with ef_search
 * (raised to k if smaller), keeps the ef best nodes that pass filter (NULL:
 * all), re-ranks them on float32 and writes the best min(k, found) to out,
 * best first. *n_out = number written. A filtered walk gives up after about
 * 64 * ef + 4096 visits, so *n_out < k with a filter means "too selective
 * for the graph": scan the nodes that pass it instead. */
vs_err vs_hnsw_search(vs_hnsw *h, const float *query, size_t k, int ef_search,
                      vs_hnsw_filter filter, void *ctx, vs_hnsw_hit *out, size_t *n_out,
                      vs_error *e);

size_t vs_hnsw_count(vs_hnsw *h);           /* points stored */
int vs_hnsw_contains(vs_hnsw *h, uint32_t id);
size_t vs_hnsw_bytes(vs_hnsw *h);           /* heap held by nodes + id table */

/* Byte stream callbacks for save/load: VS_OK after moving exactly n bytes. */
typedef vs_err (*vs_hnsw_write_fn)(void *ctx, const void *buf, size_t n, vs_error *e);
typedef vs_err (*vs_hnsw_read_fn)(void *ctx, void *buf, size_t n, vs_error *e);

/* Writes the whole graph (parameters, entry point, every node's level, links
 * and int8 vector; float32 copies too when the graph keeps them) to w, under
 * the read lock: searches go on, writers wait. Framing, checksums and atomic
 * replacement of files are the caller's (vs_index_embedded.c). */
vs_err vs_hnsw_save(vs_hnsw *h, vs_hnsw_write_fn w, void *ctx, vs_error *e);

/* Reads a graph written by vs_hnsw_save into a new *out. cfg must name the
 * same dim, M and float-copy mode as the saved graph (VS_ERR_INVALID_ARG
 * naming the difference otherwise: the caller rebuilds); ef_construction,
 * vector_of and vector_ctx are taken from cfg. Every count, level and link
 * read is bounds-checked, so a damaged stream gives VS_ERR_CORRUPT, never an
 * out-of-range access. */
vs_err vs_hnsw_load(const vs_hnsw_cfg *cfg, vs_hnsw_read_fn r, void *ctx, vs_hnsw **out, vs_error *e);

/* Maps a saved id to the id it has now (UINT32_MAX: unknown, the stream is
 * corrupt). Lets a caller whose ids are positions in its own table (which
 * can change across a restart) reload a graph saved under the old ones. */
typedef uint32_t (*vs_hnsw_remap_fn)(void *ctx, uint32_t saved_id);

/* vs_hnsw_load with every node and link id passed through remap (NULL:
 * unchanged). Two saved ids mapped to one id are VS_ERR_CORRUPT. */
vs_err vs_hnsw_load_remap(const vs_hnsw_cfg *cfg, vs_hnsw_read_fn r, void *ctx, vs_hnsw_remap_fn remap,
                          void *remap_ctx, vs_hnsw **out, vs_error *e);

/* 1 when id is stored with the int8 copy vec quantises to (its vector is
 * unchanged as far as the graph can tell), 0 otherwise. */
int vs_hnsw_same_vector(vs_hnsw *h, uint32_t id, const float *vec);

/* Calls cb for every stored id in increasing order; stops on non-zero. Read
 * lock held: cb must not call the graph's writers. */
void vs_hnsw_foreach(vs_hnsw *h, int (*cb)(void *ctx, uint32_t id), void *ctx);

/* Finds the nodes no walk from the entry point can reach on level 0 (rare:
 * a cut link that was a small group's only way in) and re-inserts each, so
 * it is linked to the reachable graph again; *relinked counts them. A node
 * that cannot be reached can never be returned, so vs_ann runs this before
 * every snapshot. O(points * M) for the walk, plus one insert per node. */
vs_err vs_hnsw_reconnect(vs_hnsw *h, size_t *relinked, vs_error *e);

/* Checks the invariants: every link names a live node, links are symmetric,
 * no self or duplicate links, counts within caps, the entry point has the top
 * level, and every node is reachable on level 0 from the entry point.
 * VS_ERR_INTERNAL with the first broken one named. For tests and tools. */
vs_err vs_hnsw_validate(vs_hnsw *h, vs_error *e);

/* Exposed for tests and the bench: the int8 dot kernel used for traversal. */
int32_t vs_hnsw_dot_i8(const int8_t *a, const int8_t *b, int n);

#endif
