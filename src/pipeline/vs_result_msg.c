/* vs_result_msg.c - reading a distributed worker's result message (see
 * vs_result_msg.h): the index owner's only input from workers, checked here
 * once (shape, sizes, each point's tenant) before anything is written. */
#include "vs_result_msg.h"

#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_base64.h"
#include "vs_index_log.h"

/* Frees what m owns (the points' vectors and payload texts are kept in the
 * vs_point's const pointers, allocated here). */
void vs_result_msg_free(vs_result_msg *m) {
    for (size_t i = 0; m->pts && i < m->n_points; i++) {
        vs_free((void *)m->pts[i].vector);
        free((void *)m->pts[i].payload_json);
    }
    vs_free(m->pts);
    free(m->record);
    json_decref(m->root);
    memset(m, 0, sizeof *m);
}

/* Reads point i of the message into m->pts[i]: an id, a vector of exactly
 * m->dim floats and a payload object of the message's tenant (a worker must
 * never write into another tenant). */
static vs_err read_point(vs_result_msg *m, const json_t *pt, size_t i, vs_error *err) {
    const char *id = json_string_value(json_object_get(pt, "id"));
    const char *b64 = json_string_value(json_object_get(pt, "vector_b64"));
    json_t *pay = json_object_get(pt, "payload");
    uint8_t *vec = NULL;
    size_t len = 0;
    if (!id || !b64 || !json_is_object(pay) || vs_base64_decode(b64, strlen(b64), &vec, &len) != 0 ||
        len != sizeof(float) * (size_t)m->dim) {
        vs_free(vec);
        return vs_fail(err, VS_ERR_CORRUPT, "result message for %.64s: point %zu is malformed", m->sha, i);
    }
    m->pts[i].id = id;
    m->pts[i].vector = (const float *)vec; /* owned by m from here */
    const char *pt_tenant = json_string_value(json_object_get(pay, "tenant_id"));
    if (!pt_tenant || strcmp(pt_tenant, m->tenant) != 0)
        return vs_fail(err, VS_ERR_CORRUPT, "result message for %.64s: point %zu has another tenant", m->sha, i);
    if (!(m->pts[i].payload_json = json_dumps(pay, JSON_COMPACT)))
        return vs_fail(err, VS_ERR_NOMEM, "result message for %.64s: point %zu", m->sha, i);
    return VS_OK;
}

vs_err vs_result_msg_parse(const char *json, vs_result_msg *m, vs_error *err) {
    memset(m, 0, sizeof *m);
    json_error_t je;
    json_t *o = m->root = json_loads(json ? json : "", 0, &je);
    if (!json_is_object(o))
        return vs_fail(err, VS_ERR_CORRUPT, "result message is not a JSON object: %s", o ? "another type" : je.text);
    m->tenant = json_string_value(json_object_get(o, "tenant_id"));
    m->sha = json_string_value(json_object_get(o, "image_sha256"));
    m->external_id = json_string_value(json_object_get(o, "external_image_id"));
    m->model = json_string_value(json_object_get(o, "model"));
    json_int_t dim = json_integer_value(json_object_get(o, "dim"));
    m->dim = dim >= 1 && dim <= VS_LOG_DIM_MAX ? (int)dim : 0;
    json_int_t st = json_integer_value(json_object_get(o, "status"));
    m->status = st >= 0 && st <= 16 ? (int)st : -1; /* the catalog checks it is a status it knows */
    json_t *pts = json_object_get(o, "points");
    m->n_points = json_array_size(pts);
    if (!m->tenant || !m->sha || m->dim == 0 || m->status < 0 || (pts && !json_is_array(pts)) ||
        m->n_points > VS_RESULT_POINTS_MAX) {
        return vs_fail(err, VS_ERR_CORRUPT,
                       "result message: missing tenant_id/image_sha256, dim %lld or status out of range, or %zu "
                       "points (max %d)",
                       (long long)dim, m->n_points, VS_RESULT_POINTS_MAX);
    }
    json_t *rec = json_object_get(o, "record");
    if (rec && !(m->record = json_dumps(rec, JSON_COMPACT)))
        return vs_fail(err, VS_ERR_NOMEM, "result message for %.64s: record", m->sha);
    if (m->n_points && !(m->pts = vs_calloc(m->n_points, sizeof *m->pts)))
        return vs_fail(err, VS_ERR_NOMEM, "result message for %.64s: %zu points", m->sha, m->n_points);
    for (size_t i = 0; i < m->n_points; i++) {
        vs_err rc = read_point(m, json_array_get(pts, i), i, err);
        if (rc != VS_OK) return rc;
    }
    return VS_OK;
}
