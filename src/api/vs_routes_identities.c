/* vs_routes_identities.c - identities: create, enroll (from an image or
 * indexed face ids, ENROLL quality gate), verify (VERIFY gate), identify
 * (open-set: below the threshold the answer is "unknown", never the
 * nearest stranger), list, delete. The logic is in vs_identity.c. */
#include <stdio.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_hash.h"
#include "vs_identity.h"
#include "vs_routes.h"
#include "vs_similarity.h"

/* The face of a probe image: for enrolment the only face, or face_index
 * when it shows several (a sample of the wrong person would make the
 * identity match strangers); for verify/identify the best face. -1 after
 * replying (422 no face; 400 several faces and no face_index, listing them). */
static int pick_face(vs_req *r, json_t *b, vs_gate gate, const vs_faces *faces) {
    json_t *fi = json_object_get(b, "face_index");
    if (faces->n == 0) {
        vs_reply_error(r, 422, "no_face", "no face found in the image");
        return -1;
    }
    if (gate != VS_GATE_ENROLL) return vs_faces_best(faces);
    if (fi) {
        if (json_integer_value(fi) < faces->n) return (int)json_integer_value(fi);
        vs_reply_error(r, 400, "bad_request", "face_index: must be from 0 to %d (the image shows %d faces)", faces->n - 1,
                       faces->n);
        return -1;
    }
    if (faces->n == 1) return 0;
    char list[640];
    size_t n = 0;
    for (int i = 0; i < faces->n && n < sizeof list; i++) {
        const vs_face *f = &faces->faces[i];
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%d: bbox [%.0f, %.0f, %.0f, %.0f] quality %.2f", i ? "; " : "", i,
                              (double)f->det.x, (double)f->det.y, (double)f->det.w, (double)f->det.h,
                              (double)f->quality.score);
    }
    vs_reply_error(r, 400, "bad_request",
                   "the image shows %d faces: say which one to enroll with face_index (%s; the order of query_faces "
                   "in POST /api/v1/search)", faces->n, list);
    return -1;
}

/* The picture of an enrolled face, kept with its sample (JPEG, as the
 * pipeline's face crops); NULL when it cannot be made: the sample stands
 * without a picture, the crop is for people, not for matching. */
static uint8_t *sample_crop(const vs_face *f, size_t *len) {
    uint8_t *jpg = NULL;
    vs_error err = {0};
    *len = 0;
    if (!f->crop.width || vs_image_encode_jpeg(&f->crop, 88, &jpg, len, &err) != VS_OK) return NULL;
    return jpg;
}

/* The probe embedding of a verify/identify/enroll request: best face of an
 * image that passes `gate`, or an indexed face. Returns 0 with vec, quality
 * and the sha256 of the image it came from filled, -1 after replying. With
 * crop not NULL (enrolment) a face of an image also gets its JPEG there
 * (vs_free; NULL for an indexed face, which has its own). */
static int probe(vs_req *r, json_t *b, vs_gate gate, float *vec, float *quality, json_t **query_face, char sha_out[65],
                 uint8_t **crop, size_t *crop_len) {
    vs_app *a = r->app;
    const char *face_id = json_string_value(json_object_get(b, "face_id"));
    const vs_quality_cfg *qc = &vs_engine_config(r->p->engine)->quality;
    *query_face = NULL;
    if (crop) *crop = NULL;
    if (face_id) {
        char *pl = NULL;
        vs_error err = {0};
        vs_err rc = a->index->ops->get(a->index, r->p->coll.faces, r->tenant, face_id, vec, &pl, &err);
        if (rc == VS_ERR_NOT_FOUND) {
            vs_reply_error(r, 404, "not_found", "face %s not found", face_id);
            return -1;
        }
        if (rc != VS_OK) {
            vs_reply_vs_err(r, rc, &err);
            return -1;
        }
        json_t *o = json_loads(pl, 0, NULL);
        vs_free(pl);
        *quality = (float)json_number_value(json_object_get(o, "quality_score"));
        const char *sha = json_string_value(json_object_get(o, "image_sha256"));
        snprintf(sha_out, 65, "%s", sha ? sha : "");
        json_decref(o);
        float need = gate == VS_GATE_ENROLL ? qc->gate_enroll : gate == VS_GATE_VERIFY ? qc->gate_verify : qc->gate_search;
        if (*quality < need) {
            vs_reply_error(r, 422, "low_quality", "face %s has quality %.2f, below the %s gate %.2f", face_id, *quality,
                           gate == VS_GATE_ENROLL ? "ENROLL" : "VERIFY", need);
            return -1;
        }
        return 0;
    }
    uint8_t *data = NULL;
    size_t len = 0;
    int got = vs_req_image(r, b, &data, &len);
    if (got <= 0) {
        if (got == 0) vs_reply_error(r, 400, "bad_request", "give image_b64 or face_id");
        vs_free(data);
        return -1;
    }
    vs_faces faces = {0};
    vs_sha256_hex(data, len, sha_out);
    int rc = vs_req_analyze_flags(r, data, len, VS_ANALYZE_EMBED | (crop ? VS_ANALYZE_KEEP_CROPS : 0), &faces);
    vs_free(data);
    if (rc != 0) return -1;
    int best = pick_face(r, b, gate, &faces);
    if (best < 0) {
        vs_faces_free(&faces);
        return -1;
    }
    const vs_face *f = &faces.faces[best];
    const char *why = vs_quality_reject_reason(qc, &f->quality, &f->det, gate);
    if (why) {
        vs_reply_error(r, 422, "low_quality", "the face does not pass the %s quality gate (%.2f): %s",
                       gate == VS_GATE_ENROLL ? "ENROLL" : "VERIFY", f->quality.score, why);
        vs_faces_free(&faces);
        return -1;
    }
    memcpy(vec, f->embedding, sizeof(float) * (size_t)vs_engine_embedding_dim(r->p->engine));
    *quality = f->quality.score;
    *query_face = vs_query_face_json(f);
    if (crop) *crop = sample_crop(f, crop_len);
    vs_faces_free(&faces);
    return 0;
}

void vs_route_identity_create(vs_req *r) {
    json_t *b = vs_req_body(r, VS_BODY_JSON, &vs_schema_identity_create, NULL);
    if (!b) return;
    char id[VS_UUID_STR];
    vs_error err = {0};
    const char *name = json_string_value(json_object_get(b, "name"));
    vs_err rc = vs_identity_create(r->p, r->tenant, name, id, &err);
    if (rc == VS_OK) vs_reply_json(r, 201, json_pack("{s:s,s:s,s:i}", "identity_id", id, "name", name, "n_samples", 0));
    else vs_reply_vs_err(r, rc, &err);
    json_decref(b);
}

/* crop_url and thumb_url of a sample: its own crop (enrolled from an
 * uploaded image), else the indexed face it came from while that exists. */
static void sample_urls(vs_req *r, json_t *s) {
    char url[1024];
    const char *ck = json_string_value(json_object_get(s, "crop_key"));
    const char *fid = json_string_value(json_object_get(s, "face_id"));
    if (ck) {
        vs_app_blob_url(r->app, "face-crops", ck, url, sizeof url);
        json_object_set_new(s, "crop_url", json_string(url));
    } else if (fid) {
        char *pl = NULL;
        vs_error err = {0};
        if (r->app->index->ops->get(r->app->index, r->p->coll.faces, r->tenant, fid, NULL, &pl, &err) == VS_OK) {
            json_t *o = json_loads(pl, 0, NULL);
            if (o) vs_add_face_urls(r->app, o, s);
            json_decref(o);
        }
        vs_free(pl);
    }
    json_object_del(s, "crop_key"); /* a storage detail, not the API's */
}

/* The identity's samples with their picture URLs; NULL after replying. */
static json_t *samples_of(vs_req *r, const char *id) {
    json_t *arr = json_array();
    vs_error err = {0};
    vs_err rc = arr ? vs_identity_samples(r->p, r->tenant, id, arr, &err) : vs_fail(&err, VS_ERR_NOMEM, "samples");
    if (rc != VS_OK) {
        json_decref(arr);
        vs_reply_vs_err(r, rc, &err);
        return NULL;
    }
    size_t i;
    json_t *s;
    json_array_foreach(arr, i, s) sample_urls(r, s);
    return arr;
}

/* cover_url of an identity: the crop of its first sample that has one. */
static void add_cover(vs_req *r, json_t *item) {
    json_t *arr = json_array();
    vs_error err = {0};
    size_t i;
    json_t *s;
    if (vs_identity_samples(r->p, r->tenant, json_string_value(json_object_get(item, "identity_id")), arr, &err) == VS_OK)
        json_array_foreach(arr, i, s) {
            sample_urls(r, s);
            json_t *u = json_object_get(s, "crop_url");
            if (!u) continue;
            json_object_set(item, "cover_url", u);
            break;
        }
    json_decref(arr);
}

void vs_route_identity_list(vs_req *r) {
    json_t *arr = json_array();
    vs_error err = {0};
    vs_err rc = vs_identity_list(r->p, r->tenant, arr, &err);
    if (rc != VS_OK) {
        json_decref(arr);
        return vs_reply_vs_err(r, rc, &err);
    }
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item) add_cover(r, item);
    vs_reply_json(r, 200, json_pack("{s:o}", "identities", arr));
}

void vs_route_identity_get(vs_req *r, const char *id) {
    json_t *info = NULL;
    vs_error err = {0};
    vs_err rc = vs_identity_get(r->p, r->tenant, id, &info, NULL, &err);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &err);
    json_t *samples = samples_of(r, id);
    if (!samples) return json_decref(info);
    json_t *o = json_pack("{s:s,s:O,s:I,s:I,s:o}", "identity_id", id, "name", json_object_get(info, "name"), "n_samples",
                          (json_int_t)json_array_size(samples), "created_at",
                          json_integer_value(json_object_get(info, "created_at")), "samples", samples);
    json_decref(info);
    if (!o) return vs_reply_error(r, 500, "internal", "out of memory");
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(o, "samples"), i, s) {
        json_t *u = json_object_get(s, "crop_url");
        if (!u) continue;
        json_object_set(o, "cover_url", u);
        break;
    }
    vs_reply_json(r, 200, o);
}

void vs_route_identity_sample_delete(vs_req *r, const char *id, const char *sample_id) {
    int n = 0;
    vs_error err = {0};
    vs_err rc = vs_identity_remove_sample(r->p, r->tenant, id, sample_id, &n, &err);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &err);
    vs_reply_json(r, 200, json_pack("{s:s,s:s,s:b,s:i}", "identity_id", id, "sample_id", sample_id, "deleted", 1,
                                    "n_samples", n));
}

void vs_route_identity_delete(vs_req *r, const char *id) {
    vs_error err = {0};
    vs_err rc = vs_identity_delete(r->p, r->tenant, id, &err);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &err);
    vs_reply_json(r, 200, json_pack("{s:s,s:b}", "identity_id", id, "deleted", 1));
}

/* Drops repeated ids from a face_ids array (a face counts once). */
static void unique_ids(json_t *ids) {
    for (size_t i = 1; i < json_array_size(ids);) {
        size_t k = 0;
        while (k < i && !json_equal(json_array_get(ids, k), json_array_get(ids, i))) k++;
        if (k < i) json_array_remove(ids, i);
        else i++;
    }
}

void vs_route_identity_enroll(vs_req *r, const char *id) {
    json_t *b = vs_req_body(r, VS_BODY_JSON | VS_BODY_FORM | VS_BODY_IMAGE, &vs_schema_enroll, &vs_schema_enroll_form);
    if (!b) return;
    int dim = vs_engine_embedding_dim(r->p->engine);
    json_t *ids = json_object_get(b, "face_ids");
    if (json_object_get(b, "face_index") && (ids || json_object_get(b, "face_id"))) {
        json_decref(b);
        return vs_reply_error(r, 400, "bad_request", "face_index: only with an image (it picks a face of the image)");
    }
    unique_ids(ids);
    size_t n = json_is_array(ids) ? json_array_size(ids) : 1;
    float *vecs = vs_malloc(sizeof(float) * (size_t)dim * n);
    vs_identity_sample *s = vs_calloc(n, sizeof *s);
    char(*shas)[65] = vs_calloc(n, 65);
    json_t *qf = NULL;
    int ok = vecs && s && shas;
    for (size_t i = 0; ok && i < n; i++) {
        json_t *one = json_is_array(ids) ? json_pack("{s:O}", "face_id", json_array_get(ids, i)) : json_incref(b);
        uint8_t *crop = NULL;
        ok = probe(r, one, VS_GATE_ENROLL, vecs + i * (size_t)dim, &s[i].quality, &qf, shas[i], &crop, &s[i].crop_len) == 0;
        s[i].crop_jpeg = crop;
        s[i].image_sha256 = shas[i][0] ? shas[i] : NULL;
        s[i].vector = vecs + i * (size_t)dim;
        s[i].face_id = json_is_array(ids) ? json_string_value(json_array_get(ids, i))
                                          : json_string_value(json_object_get(b, "face_id"));
        json_decref(one);
        json_decref(qf);
    }
    if (!vecs || !s || !shas) vs_reply_error(r, 500, "internal", "out of memory");
    if (ok) {
        int count = 0, added = 0;
        vs_error err = {0};
        vs_err rc = vs_identity_enroll(r->p, r->tenant, id, s, (int)n, &count, &added, &err);
        if (rc == VS_OK) vs_reply_json(r, 200, json_pack("{s:s,s:i,s:i}", "identity_id", id, "enrolled", added, "n_samples", count));
        else vs_reply_vs_err(r, rc, &err);
    }
    for (size_t i = 0; s && i < n; i++) vs_free((void *)s[i].crop_jpeg);
    vs_free(vecs);
    vs_free(s);
    vs_free(shas);
    json_decref(b);
}

void vs_route_identity_verify(vs_req *r, const char *id) {
    json_t *b = vs_req_body(r, VS_BODY_JSON | VS_BODY_FORM | VS_BODY_IMAGE, &vs_schema_probe, &vs_schema_probe_form);
    if (!b) return;
    int dim = vs_engine_embedding_dim(r->p->engine);
    float *vec = vs_malloc(sizeof(float) * (size_t)dim), *cen = vs_malloc(sizeof(float) * (size_t)dim), q = 0;
    json_t *info = NULL, *qf = NULL;
    vs_error err = {0};
    char sha[65];
    if (!vec || !cen) vs_reply_error(r, 500, "internal", "out of memory");
    else {
        vs_err rc = vs_identity_get(r->p, r->tenant, id, &info, cen, &err);
        if (rc != VS_OK) vs_reply_vs_err(r, rc, &err);
        else if (json_integer_value(json_object_get(info, "n_samples")) == 0)
            vs_reply_error(r, 409, "not_enrolled", "identity %s has no enrolled face yet", id);
        else if (probe(r, b, VS_GATE_VERIFY, vec, &q, &qf, sha, NULL, NULL) == 0) {
            float sim = vs_dot(vec, cen, dim), t = vs_engine_config(r->p->engine)->match_threshold;
            json_t *o = json_pack("{s:s,s:O,s:f,s:b,s:s,s:f}", "identity_id", id, "name", json_object_get(info, "name"),
                                  "similarity", (double)sim, "match", sim >= t, "band", vs_engine_band(r->p->engine, sim),
                                  "threshold", (double)t);
            if (qf) json_object_set_new(o, "query_face", qf);
            vs_reply_json(r, 200, o);
        }
    }
    json_decref(info);
    vs_free(vec);
    vs_free(cen);
    json_decref(b);
}

void vs_route_identify(vs_req *r) {
    json_t *b = vs_req_body(r, VS_BODY_JSON | VS_BODY_FORM | VS_BODY_IMAGE, &vs_schema_probe, &vs_schema_probe_form);
    if (!b) return;
    int dim = vs_engine_embedding_dim(r->p->engine);
    float *vec = vs_malloc(sizeof(float) * (size_t)dim), q = 0;
    json_t *qf = NULL;
    char sha[65];
    if (!vec) vs_reply_error(r, 500, "internal", "out of memory");
    else if (probe(r, b, VS_GATE_VERIFY, vec, &q, &qf, sha, NULL, NULL) == 0) {
        int found = 0;
        char id[VS_POINT_ID_MAX], name[256];
        float sim = 0, t = vs_engine_config(r->p->engine)->match_threshold;
        vs_error err = {0};
        vs_err rc = vs_identity_closest(r->p, r->tenant, vec, &found, id, name, &sim, &err);
        if (rc != VS_OK) vs_reply_vs_err(r, rc, &err);
        else {
            json_t *o = found && sim >= t
                            ? json_pack("{s:s,s:{s:s,s:s,s:f},s:f}", "result", "match", "identity", "identity_id", id, "name",
                                        name, "similarity", (double)sim, "threshold", (double)t)
                            : json_pack("{s:s,s:n,s:f}", "result", "unknown", "identity", "threshold", (double)t);
            if (qf) json_object_set_new(o, "query_face", qf);
            qf = NULL;
            vs_reply_json(r, 200, o);
        }
    }
    json_decref(qf);
    vs_free(vec);
    json_decref(b);
}
