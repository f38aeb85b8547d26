/* vs_routes_common.c - what several routes share: getting the image bytes
 * out of a request, analysing a query image, signed blob URLs. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vs_alloc.h"
#include "vs_routes.h"
#include "vs_similarity.h"

/* A store that can presign (S3) hands out its own URLs, so images are
 * served by the object store, not by us; otherwise our signed path. */
void vs_app_blob_url(vs_app *a, const char *bucket, const char *key, char *out, size_t cap) {
    int64_t expires = (int64_t)time(NULL) + a->cfg.presign_ttl_s;
    if (a->store->ops->presign_get && a->store->ops->presign_get(a->store, bucket, key, expires, out, cap) == 0) return;
    vs_presign_path(a->secret, sizeof a->secret, bucket, key, expires, out, cap);
}

void vs_add_face_urls(vs_app *a, json_t *payload, json_t *dst) {
    char url[1024];
    const char *ck = json_string_value(json_object_get(payload, "crop_key"));
    const char *tk = json_string_value(json_object_get(payload, "thumb_key"));
    if (ck) {
        vs_app_blob_url(a, "face-crops", ck, url, sizeof url);
        json_object_set_new(dst, "crop_url", json_string(url));
    }
    if (tk) {
        vs_app_blob_url(a, "face-thumbs", tk, url, sizeof url);
        json_object_set_new(dst, "thumb_url", json_string(url));
    }
}

void vs_add_face_index_urls(vs_req *r, const char *sha256, int face_index, json_t *dst) {
    char crop[VS_FACE_KEY_MAX], thumb[VS_FACE_KEY_MAX], url[1024];
    vs_face_blob_keys(r->tenant, sha256, face_index, crop, thumb);
    vs_app_blob_url(r->app, "face-crops", crop, url, sizeof url);
    json_object_set_new(dst, "crop_url", json_string(url));
    vs_app_blob_url(r->app, "face-thumbs", thumb, url, sizeof url);
    json_object_set_new(dst, "thumb_url", json_string(url));
}

int vs_req_image(vs_req *r, json_t *body, uint8_t **data, size_t *len) {
    *data = NULL;
    *len = 0;
    const char *ct = vs_req_header(r, "Content-Type");
    /* by the Content-Type, not by whether the route parsed a body: a form's
     * text fields arrive as a JSON object too */
    if (vs_media_type_is(ct, "application/json")) {
        const char *b64 = json_string_value(json_object_get(body, "image_b64"));
        if (!b64) return 0;
        if (vs_base64_decode(b64, strlen(b64), data, len) != 0) {
            vs_reply_error(r, 400, "bad_request", "image_b64: not valid base64");
            return -1;
        }
        return 1;
    }
    if (vs_media_type_is(ct, "multipart/form-data")) {
        vs_part parts[16];
        int n = vs_req_multipart(r, parts, 16);
        if (n < 0) {
            vs_reply_error(r, 400, "bad_request", "malformed multipart/form-data body");
            return -1;
        }
        for (int i = 0; i < n; i++)
            if (!strcmp(parts[i].name, "image")) {
                *data = vs_malloc(parts[i].len ? parts[i].len : 1);
                if (!*data) {
                    vs_reply_error(r, 500, "internal", "out of memory");
                    return -1;
                }
                memcpy(*data, parts[i].data, parts[i].len);
                *len = parts[i].len;
                return 1;
            }
        return 0;
    }
    if (vs_media_type_is(ct, "image/") || vs_media_type_is(ct, "application/octet-stream")) {
        *data = vs_malloc(r->body_len ? r->body_len : 1);
        if (!*data) {
            vs_reply_error(r, 500, "internal", "out of memory");
            return -1;
        }
        memcpy(*data, r->body, r->body_len);
        *len = r->body_len;
        return 1;
    }
    return 0;
}

/* A query image's size from its header, before any pixel is decoded:
 * decode and detection cost grows with pixels, so a small file declaring a
 * huge image would hold an engine slot for seconds. -1 after replying 413
 * (or the probe's 415/400). */
static int query_size_ok(vs_req *r, const uint8_t *data, size_t len) {
    vs_image_format fmt;
    int w = 0, h = 0;
    vs_error err = {0};
    size_t max = r->app->cfg.query_max_pixels;
    vs_decode_opts o = {.max_pixels = r->app->cfg.max_pixels};
    vs_err rc = vs_image_probe(data, len, &o, &fmt, &w, &h, &err);
    if (rc == VS_OK && max && (size_t)w * (size_t)h > max) {
        atomic_fetch_add(&r->app->refused[VS_REFUSED_QUERY_PIXELS], 1);
        vs_reply_error(r, 413, "too_large",
                       "query image is %dx%d = %zu pixels, over the limit of %zu pixels for a query image "
                       "(VISAGE_QUERY_MAX_PIXELS): send a smaller copy", w, h, (size_t)w * (size_t)h, max);
        return -1;
    }
    if (rc != VS_OK) vs_reply_vs_err(r, rc, &err);
    return rc == VS_OK ? 0 : -1;
}

int vs_req_analyze(vs_req *r, const uint8_t *data, size_t len, vs_faces *faces) {
    return vs_req_analyze_flags(r, data, len, VS_ANALYZE_EMBED, faces);
}

int vs_req_analyze_flags(vs_req *r, const uint8_t *data, size_t len, unsigned flags, vs_faces *faces) {
    vs_error err = {0};
    vs_decode_opts o = {.max_pixels = r->app->cfg.max_pixels};
    if (len == 0) {
        vs_reply_error(r, 400, "bad_request", "the image is empty (0 bytes)");
        return -1;
    }
    if (query_size_ok(r, data, len) != 0) return -1;
    vs_engine_worker *w = vs_app_engine_acquire(r->app, r->p->engine);
    vs_err rc = vs_engine_analyze_bytes(w, data, len, &o, flags, faces, NULL, NULL, &err);
    vs_app_engine_release(r->app, w);
    if (rc != VS_OK) {
        vs_reply_vs_err(r, rc, &err);
        return -1;
    }
    return 0;
}

int vs_req_vector(vs_req *r, json_t *v, float *vec) {
    int dim = vs_engine_embedding_dim(r->p->engine);
    if (!json_is_array(v) || (int)json_array_size(v) != dim) {
        vs_reply_error(r, 400, "bad_request", "vector must be an array of %d numbers", dim);
        return -1;
    }
    for (int i = 0; i < dim; i++) vec[i] = (float)json_number_value(json_array_get(v, (size_t)i));
    vs_l2_normalize(vec, dim);
    return 0;
}

int vs_req_face_vector(vs_req *r, const char *face_id, float *vec) {
    vs_error err = {0};
    vs_err rc = r->app->index->ops->get(r->app->index, r->p->coll.faces, r->tenant, face_id, vec, NULL, &err);
    if (rc == VS_ERR_NOT_FOUND) vs_reply_error(r, 404, "not_found", "face %s not found", face_id);
    else if (rc != VS_OK) vs_reply_vs_err(r, rc, &err);
    return rc == VS_OK ? 0 : -1;
}

json_t *vs_query_face_json(const vs_face *f) {
    return json_pack("{s:[ffff],s:f,s:f}", "bbox", (double)f->det.x, (double)f->det.y, (double)f->det.w,
                     (double)f->det.h, "det_score", (double)f->det.score, "quality", (double)f->quality.score);
}
