/* vs_routes_erase.c - POST /api/v1/erase: every image of a person, found by
 * a face (image_b64, face_id or vector), erased or (dry_run) listed; with
 * "block" their later images are erased on arrival too. GET
 * /api/v1/erase/blocks and DELETE /api/v1/erase/blocks/{id} show and lift
 * blocks; GET /api/v1/erase/log is the tenant's record of every erasure.
 * Always within the caller's tenant. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_erase.h"
#include "vs_routes.h"

/* Reads the options of an erasure; -1 after replying 400. */
static int read_opts(vs_req *r, json_t *b, vs_erase_person_opts *o) {
    json_t *v;
    *o = (vs_erase_person_opts){.threshold = vs_engine_config(r->p->engine)->match_threshold, .max_images = 1000,
                                .suppress = 1};
    if ((v = json_object_get(b, "threshold"))) {
        /* below 0.3 strangers' faces match: an erasure there would be a wipe */
        if (!json_is_number(v) || json_number_value(v) < 0.3 || json_number_value(v) > 1) {
            vs_reply_error(r, 400, "bad_request", "threshold must be a number from 0.3 to 1");
            return -1;
        }
        o->threshold = (float)json_number_value(v);
    }
    if ((v = json_object_get(b, "max_images"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > VS_ERASE_MAX_IMAGES) {
            vs_reply_error(r, 400, "bad_request", "max_images must be an integer from 1 to %d", VS_ERASE_MAX_IMAGES);
            return -1;
        }
        o->max_images = (int)json_integer_value(v);
    }
    static const char *flags[] = {"dry_run", "suppress", "block"};
    int *dst[] = {&o->dry_run, &o->suppress, &o->block};
    for (int i = 0; i < 3; i++)
        if ((v = json_object_get(b, flags[i]))) {
            if (!json_is_boolean(v)) {
                vs_reply_error(r, 400, "bad_request", "%s must be true or false", flags[i]);
                return -1;
            }
            *dst[i] = json_is_true(v);
        }
    if ((v = json_object_get(b, "note")) && (!json_is_string(v) || json_string_length(v) > VS_BLOCK_NOTE_MAX)) {
        vs_reply_error(r, 400, "bad_request", "note must be a string of at most %d bytes", VS_BLOCK_NOTE_MAX);
        return -1;
    }
    o->note = json_string_value(v);
    if (o->block && !o->suppress) {
        vs_reply_error(r, 400, "bad_request", "block needs suppress: a blocked person's erased images stay erased");
        return -1;
    }
    return 0;
}

/* The face of the query image that names the person: its only face, or
 * face_index when it has several (erasing the wrong person cannot be undone,
 * so "the best face" is not good enough here). Fills vec and *query_face;
 * -1 after replying. */
static int image_face(vs_req *r, json_t *b, float *vec, json_t **query_face) {
    uint8_t *data = NULL;
    size_t len = 0;
    int got = vs_req_image(r, b, &data, &len);
    if (got == 0) vs_reply_error(r, 400, "bad_request", "give one of image_b64, face_id or vector");
    if (got <= 0) return -1;
    vs_faces faces = {0};
    int rc = vs_req_analyze(r, data, len, &faces);
    vs_free(data);
    if (rc != 0) return -1;
    json_t *fi = json_object_get(b, "face_index");
    int idx = fi ? (json_is_integer(fi) ? (int)json_integer_value(fi) : -1) : (faces.n == 1 ? 0 : -1);
    int ok = faces.n > 0 && idx >= 0 && idx < faces.n;
    if (faces.n == 0) vs_reply_error(r, 400, "bad_request", "no face found in the query image");
    else if (fi && !ok) vs_reply_error(r, 400, "bad_request", "face_index must be an integer from 0 to %d", faces.n - 1);
    else if (!ok)
        vs_reply_error(r, 400, "bad_request",
                       "the query image shows %d faces: say whose images to erase with face_index (0..%d, in the order "
                       "POST /api/v1/search lists them as query_faces)",
                       faces.n, faces.n - 1);
    if (!ok) {
        vs_faces_free(&faces);
        return -1;
    }
    memcpy(vec, faces.faces[idx].embedding, sizeof(float) * (size_t)vs_engine_embedding_dim(r->p->engine));
    *query_face = vs_query_face_json(&faces.faces[idx]);
    vs_faces_free(&faces);
    return 0;
}

/* The query vector from face_id, vector or the image; -1 after replying. */
static int query_vector(vs_req *r, json_t *b, float *vec, json_t **query_face) {
    json_t *v = json_object_get(b, "vector");
    const char *face_id = json_string_value(json_object_get(b, "face_id"));
    if (v) {
        if (vs_req_vector(r, v, vec) != 0) return -1;
        float norm = 0; /* a zero vector stays zero: it names nobody */
        for (int i = 0; i < vs_engine_embedding_dim(r->p->engine); i++) norm += vec[i] * vec[i];
        if (!(norm > 0)) {
            vs_reply_error(r, 400, "bad_request", "vector must have a non-zero length");
            return -1;
        }
        return 0;
    }
    if (face_id) return vs_req_face_vector(r, face_id, vec);
    return image_face(r, b, vec, query_face);
}

/* A dry run is a preview someone looks at before confirming: each image
 * gets its (signed) thumbnail URL. */
static void add_thumbnails(vs_req *r, json_t *images) {
    size_t i;
    json_t *e;
    json_array_foreach(images, i, e) {
        char key[256], url[1024];
        snprintf(key, sizeof key, "%s/%s_thumb.jpg", r->tenant, json_string_value(json_object_get(e, "image_sha256")));
        vs_app_blob_url(r->app, "thumbnails", key, url, sizeof url);
        json_object_set_new(e, "thumbnail_url", json_string(url));
    }
}

void vs_route_erase(vs_req *r) {
    json_t *b = vs_req_body(r, VS_BODY_JSON, &vs_schema_erase, NULL);
    if (!b) return;
    if (json_object_get(b, "face_index") && !json_object_get(b, "image_b64")) {
        json_decref(b);
        return vs_reply_error(r, 400, "bad_request", "face_index: only with image_b64 (it picks a face of that image)");
    }
    vs_erase_person_opts o;
    json_t *query_face = NULL, *report = NULL;
    float *vec = vs_malloc(sizeof(float) * (size_t)vs_engine_embedding_dim(r->p->engine));
    if (!vec) vs_reply_error(r, 500, "internal", "out of memory");
    else if (read_opts(r, b, &o) == 0 && query_vector(r, b, vec, &query_face) == 0) {
        vs_error err = {0};
        vs_err rc = vs_erase_person(r->p, r->tenant, vec, &o, &report, &err);
        if (rc != VS_OK) {
            vs_reply_vs_err(r, rc, &err);
        } else {
            if (query_face) json_object_set(report, "query_face", query_face);
            if (o.dry_run) add_thumbnails(r, json_object_get(report, "images"));
            vs_reply_json(r, 200, report);
        }
    }
    json_decref(query_face);
    vs_free(vec);
    json_decref(b);
}

void vs_route_blocks_list(vs_req *r) {
    json_t *arr = json_array();
    vs_error err = {0};
    vs_err rc = vs_block_list(r->p, r->tenant, arr, &err);
    if (rc != VS_OK) {
        json_decref(arr);
        return vs_reply_vs_err(r, rc, &err);
    }
    vs_reply_json(r, 200, json_pack("{s:o}", "blocks", arr));
}

void vs_route_block_delete(vs_req *r, const char *id) {
    vs_error err = {0};
    vs_err rc = vs_block_delete(r->p, r->tenant, id, &err);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &err);
    vs_reply_json(r, 200, json_pack("{s:s,s:b}", "block_id", id, "deleted", 1));
}

static int log_one(void *ctx, int64_t id, int64_t at_ms, const char *what, const char *detail_json) {
    json_t *e = json_loads(detail_json, 0, NULL);
    if (!json_is_object(e)) {
        json_decref(e);
        e = json_object();
    }
    json_object_set_new(e, "id", json_integer(id));
    json_object_set_new(e, "at", json_integer(at_ms));
    json_object_set_new(e, "what", json_string(what));
    json_array_append_new((json_t *)ctx, e);
    return 0;
}

void vs_route_erase_log(vs_req *r) {
    const char *lim = vs_req_query(r, "limit"), *bef = vs_req_query(r, "before");
    char *end = NULL;
    long long limit = lim ? strtoll(lim, &end, 10) : 100;
    if (lim && (*end || limit < 1 || limit > 1000)) return vs_reply_error(r, 400, "bad_request", "limit must be 1..1000");
    long long before = bef ? strtoll(bef, &end, 10) : 0;
    if (bef && (*end || before < 1)) return vs_reply_error(r, 400, "bad_request", "before must be an entry id (a positive integer)");
    json_t *arr = json_array();
    vs_error err = {0};
    vs_err rc = vs_erasure_log_list(r->app->catalog, r->tenant, before, (int)limit, log_one, arr, &err);
    if (rc != VS_OK) {
        json_decref(arr);
        return vs_reply_vs_err(r, rc, &err);
    }
    json_t *out = json_pack("{s:o}", "entries", arr);
    size_t n = json_array_size(arr);
    if (n == (size_t)limit) /* maybe more: where the next page starts */
        json_object_set(out, "next_before", json_object_get(json_array_get(arr, n - 1), "id"));
    vs_reply_json(r, 200, out);
}
