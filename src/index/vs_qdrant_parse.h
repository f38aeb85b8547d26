/* vs_qdrant_parse.h - the Qdrant backend's reading of Qdrant's answers
 * (vs_index_qdrant.c sends, these read): pure functions, fuzzed by
 * tests/fuzz/fuzz_qdrant.c. Private to src/index. Messages name op and the
 * collection `name` as the backend's own do. */
#ifndef VS_QDRANT_PARSE_H
#define VS_QDRANT_PARSE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "vs_index.h"

/* A 2xx answer body (len bytes, may be NULL) as a JSON object with a
 * "result" (the caller json_decrefs it); NULL with why set otherwise. */
json_t *vs_qdrant_answer(const char *body, size_t len, char *why, size_t cap);

/* The reason Qdrant gave in an error answer into out (cap bytes):
 * "status":{"error":...} when the body is Qdrant JSON, else the start of
 * the body with control characters blanked. */
void vs_qdrant_reason(const char *body, size_t len, char *out, size_t cap);

/* VS_OK when a write answer says it completed (wait=true). */
vs_err vs_qdrant_update_done(const json_t *root, const char *op, const char *coll, vs_error *err);

/* result.count of a count answer into *n (>= 0). */
vs_err vs_qdrant_count_answer(const json_t *root, const char *op, const char *name, int64_t *n, vs_error *err);

/* The payload of the collection record (point VS_QDRANT_META_ID) in a
 * retrieve answer, pointing into root; *pay NULL when it is not there. */
vs_err vs_qdrant_record_answer(json_t *root, const char *op, const char *name, json_t **pay, vs_error *err);

/* model and dim (1..VS_LOG_DIM_MAX) of a record payload; *model points
 * into pay. */
vs_err vs_qdrant_record_fields(const json_t *pay, const char *op, const char *name, const char **model, int *dim,
                               vs_error *err);

/* size (1..VS_LOG_DIM_MAX) and distance of config.params.vectors of a GET
 * /collections/{name} answer; *distance points into root. */
vs_err vs_qdrant_vectors_of(const json_t *root, const char *op, const char *name, int *dim, const char **distance,
                            vs_error *err);

/* Whether a returned payload passes f (tenant_id required in f). */
int vs_qdrant_payload_matches(const json_t *pay, const vs_filter *f);

/* A returned point's Qdrant id as text (UUID string or integer >= 0). */
int vs_qdrant_rec_qid(const json_t *rec, char out[VS_POINT_ID_MAX]);

/* The point id (Qdrant id qid) of a retrieve answer, if it is tenant_id's
 * and really visage id `id`: its vector (dim floats, when vector_out) and
 * payload text (vs_free, when payload_out). VS_ERR_NOT_FOUND otherwise. */
vs_err vs_qdrant_get_answer(json_t *root, const char *name, const char *tenant_id, const char *id, const char *qid,
                            int dim, float *vector_out, char **payload_out, vs_error *err);

/* One scroll page: each point of f with a vector of dim floats (copied
 * into vec, dim floats) goes to cb, at most limit, skipping Qdrant id
 * after_q ("" none); next gets the last id delivered when more remain. */
vs_err vs_qdrant_scroll_answer(json_t *root, const char *name, const vs_filter *f, int dim, const char *after_q,
                               int limit, float *vec, vs_point_cb cb, void *ctx, char next[VS_POINT_ID_MAX],
                               vs_error *err);

/* The hits of a search answer that pass f and threshold, best first, at
 * most top_k (*hits: vs_hits_free). */
vs_err vs_qdrant_search_answer(json_t *root, const char *name, const vs_filter *f, float threshold, int top_k,
                               vs_hit **hits, int *n_hits, vs_error *err);

#endif
