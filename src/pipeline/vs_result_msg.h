/* vs_result_msg.h - the result message a distributed worker hands the index
 * owner on face:results (written by vs_pipeline.c's commit, applied by
 * vs_apply_result): read and checked here as a pure function of its text,
 * so the one place that trusts a worker's JSON can be fuzzed alone.
 *
 * Wire format (one JSON object):
 *   {"tenant_id":s, "image_sha256":s, "status":i, "dim":i, "model":s,
 *    "external_image_id":s?, "record":{...}?,
 *    "points":[{"id":s, "vector_b64":base64 of dim float32, "payload":{"tenant_id":s,...}}]} */
#ifndef VS_RESULT_MSG_H
#define VS_RESULT_MSG_H

#include <jansson.h>

#include "vs_err.h"
#include "vs_index.h"

#define VS_RESULT_POINTS_MAX 1024 /* points of one image: far above the pipeline's max_faces */

/* A parsed result message. Strings point into root (alive until
 * vs_result_msg_free); pts, their vectors and payload texts are owned. */
typedef struct vs_result_msg {
    json_t *root;
    const char *tenant, *sha, *external_id, *model; /* NULL when absent */
    int dim;              /* as the message says (checked against the engine by the caller) */
    int status;           /* vs_image_status */
    char *record;         /* compact JSON of "record", or NULL (free()) */
    size_t n_points;      /* as many as the message lists (before any check) */
    vs_point *pts;        /* n_points, when the message parsed whole */
} vs_result_msg;

/* Parses json into m. The header (tenant, sha, model, dim, n_points) is
 * filled as far as it could be read even when it fails, so the caller can
 * refuse a message of another model with a record. Fails with
 * VS_ERR_CORRUPT when tenant or sha is missing, dim is out of range, there
 * are over VS_RESULT_POINTS_MAX points, or a point lacks an id, a vector of
 * exactly dim floats or a payload of the message's own tenant. Always
 * release m with vs_result_msg_free. */
vs_err vs_result_msg_parse(const char *json, vs_result_msg *m, vs_error *err);

void vs_result_msg_free(vs_result_msg *m);

#endif
