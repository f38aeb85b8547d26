/* vs_routes_faces.c - faces and images of the caller's tenant: get, delete,
 * erase an image completely; and signed blob downloads (crops, thumbs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vs_alloc.h"
#include "vs_erase.h"
#include "vs_routes.h"

/* The payload of one of the tenant's faces, or NULL after replying. */
static json_t *load_face(vs_req *r, const char *id) {
    char *payload = NULL;
    vs_error err = {0};
    vs_err rc = r->app->index->ops->get(r->app->index, r->p->coll.faces, r->tenant, id, NULL, &payload, &err);
    if (rc == VS_ERR_NOT_FOUND) {
        vs_reply_error(r, 404, "not_found", "face %s not found", id);
        return NULL;
    }
    if (rc != VS_OK) {
        vs_reply_vs_err(r, rc, &err);
        return NULL;
    }
    json_t *pl = json_loads(payload, 0, NULL);
    vs_free(payload);
    if (!pl) vs_reply_error(r, 500, "internal", "stored payload of %s is not JSON", id);
    return pl;
}

void vs_route_face_get(vs_req *r, const char *id) {
    json_t *pl = load_face(r, id);
    if (!pl) return;
    json_object_set_new(pl, "face_id", json_string(id));
    vs_add_face_urls(r->app, pl, pl);
    json_t *one = json_pack("[{s:s}]", "face_id", id);
    vs_route_people_annotate(r, one);
    static const char *keep[] = {"person_id", "person_name"};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(json_array_get(one, 0), keep[i]);
        if (v) json_object_set(pl, keep[i], v);
    }
    json_decref(one);
    vs_reply_json(r, 200, pl);
}

/* Deletes one face and keeps its image; the erasure record (begun before
 * anything goes, vs_erase_face) makes a crash part-way finish at start-up. */
void vs_route_face_delete(vs_req *r, const char *id) {
    json_t *pl = load_face(r, id);
    if (!pl) return;
    vs_error err = {0};
    int64_t n = 0;
    char *payload = json_dumps(pl, JSON_COMPACT);
    json_decref(pl);
    if (!payload) return vs_reply_error(r, 500, "internal", "out of memory");
    vs_err rc = vs_erase_face(r->p, r->tenant, id, payload, &n, &err);
    free(payload);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &err);
    vs_reply_json(r, 200, json_pack("{s:s,s:b}", "face_id", id, "deleted", n > 0));
}

/* The row's created_at into o (the record itself does not hold it). */
static int created_of(void *ctx, const vs_image_row *row) {
    json_object_set_new((json_t *)ctx, "created_at", json_integer((json_int_t)row->created_ms));
    return 1;
}

/* What a page needs to draw the photo with its faces boxed: created_at,
 * image_url (the stored raw image, absent when none is stored) and each
 * indexed face's crop_url and thumb_url (the pipeline's keys). */
static void add_image_files(vs_req *r, const char *sha, json_t *o) {
    vs_error err = {0};
    vs_image_query q = {.tenant = r->tenant, .status = -1, .sha256 = sha, .since_ms = INT64_MIN,
                        .until_ms = INT64_MAX, .limit = 1};
    vs_image_record_list(r->app->catalog, &q, created_of, o, &err);
    char key[512], url[1024];
    if (vs_raw_find(r->app->store, r->tenant, sha, key, sizeof key, &err) == VS_OK) {
        vs_app_blob_url(r->app, "raw-images", key, url, sizeof url);
        json_object_set_new(o, "image_url", json_string(url));
    }
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(o, "faces_indexed"), i, f)
        vs_add_face_index_urls(r, sha, (int)json_integer_value(json_object_get(f, "face_index")), f);
}

void vs_route_image_get(vs_req *r, const char *sha256) {
    const char *ext = vs_req_query(r, "external_image_id");
    if (!sha256 && !ext) return vs_reply_error(r, 400, "bad_request", "give /images/{sha256} or ?external_image_id=");
    if (sha256 && !vs_sha256_hex_ok(sha256)) return vs_reply_error(r, 400, "bad_request", "image id must be a lower-case sha256");
    vs_image_status st;
    char *rec = NULL, sha[65];
    vs_error err = {0};
    vs_err rc = vs_image_record_get(r->app->catalog, r->tenant, sha256, sha256 ? NULL : ext, &st, &rec, sha, &err);
    if (rc == VS_ERR_NOT_FOUND) return vs_reply_error(r, 404, "not_found", "image not found");
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &err);
    if (st == VS_IMG_ERASED) {
        vs_free(rec);
        return vs_reply_error(r, 404, "not_found", "image was erased");
    }
    json_t *o = rec ? json_loads(rec, 0, NULL) : NULL;
    vs_free(rec);
    if (!o) o = json_object();
    json_object_set_new(o, "image_sha256", json_string(sha));
    json_object_set_new(o, "status", json_string(vs_image_status_name(st)));
    if (st == VS_IMG_DONE) {
        char key[256], url[1024];
        snprintf(key, sizeof key, "%s/%s_thumb.jpg", r->tenant, sha);
        vs_app_blob_url(r->app, "thumbnails", key, url, sizeof url);
        json_object_set_new(o, "thumbnail_url", json_string(url));
    }
    add_image_files(r, sha, o);
    vs_reply_json(r, 200, o);
}

void vs_route_image_delete(vs_req *r, const char *sha256) {
    if (!vs_sha256_hex_ok(sha256)) return vs_reply_error(r, 400, "bad_request", "image id must be a lower-case sha256");
    const char *sup = vs_req_query(r, "suppress");
    if (sup && strcmp(sup, "true") != 0 && strcmp(sup, "false") != 0)
        return vs_reply_error(r, 400, "bad_request", "'suppress' must be true or false");
    vs_image_status st;
    vs_error err = {0};
    vs_err had = vs_image_record_get(r->app->catalog, r->tenant, sha256, NULL, &st, NULL, NULL, &err);
    /* only an image the tenant had is remembered as erased: an unknown
     * sha256 leaves no trace */
    int suppress = (!sup || !strcmp(sup, "true")) && had == VS_OK;
    /* erased before: run it again all the same, in case a crash cut that
     * erasure short, then say so */
    int already = suppress && st == VS_IMG_ERASED;
    int64_t faces = 0, crawled = 0; /* crawled: rows of where the crawler found it */
    /* an image the tenant has: its log entry is begun before anything goes,
     * so a crash part-way leaves it named (vs_erase_resume finishes it) */
    int recorded = had == VS_OK && !already;
    vs_err rc = recorded ? vs_erase_image_recorded(r->p, r->tenant, sha256, suppress, "image", json_object(), &faces,
                                                   &crawled, &err)
                         : vs_erase_image(r->p, r->tenant, sha256, suppress, &faces, &crawled, &err);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &err);
    if (already) return vs_reply_error(r, 404, "not_found", "image was erased already");
    if (crawled > 0) had = VS_OK;
    if (had == VS_ERR_NOT_FOUND && faces == 0) return vs_reply_error(r, 404, "not_found", "image not found");
    if (!recorded)
        rc = vs_erase_log(r->p, r->tenant, "image",
                          json_pack("{s:s,s:I,s:b}", "image_sha256", sha256, "faces_deleted", (json_int_t)faces, "suppressed", suppress),
                          &err);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &err);
    vs_reply_json(r, 200, json_pack("{s:s,s:b,s:b,s:I}", "image_sha256", sha256, "erased", 1, "suppressed", suppress,
                                    "faces_deleted", (json_int_t)faces));
}

void vs_route_blob(vs_req *r, const char *bucket_and_key) {
    const char *slash = strchr(bucket_and_key, '/');
    const char *exp = vs_req_query(r, "expires"), *sig = vs_req_query(r, "sig");
    char bucket[64];
    if (!slash || (size_t)(slash - bucket_and_key) >= sizeof bucket || !exp || !sig)
        return vs_reply_error(r, 403, "forbidden", "blob URLs must be signed (expires, sig)");
    memcpy(bucket, bucket_and_key, (size_t)(slash - bucket_and_key));
    bucket[slash - bucket_and_key] = '\0';
    const char *key = slash + 1;
    if (!vs_presign_check(r->app->secret, sizeof r->app->secret, bucket, key, strtoll(exp, NULL, 10), sig, (int64_t)time(NULL)))
        return vs_reply_error(r, 403, "forbidden", "bad or expired signature");
    uint8_t *data = NULL;
    size_t len = 0;
    vs_error err = {0};
    vs_err rc = vs_store_get(r->app->store, bucket, key, 64u << 20, &data, &len, &err);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &err);
    void *copy = malloc(len ? len : 1); /* MHD frees replies with free() */
    if (!copy) {
        vs_free(data);
        return vs_reply_error(r, 500, "internal", "out of memory");
    }
    memcpy(copy, data, len);
    vs_free(data);
    vs_image_format f = vs_image_sniff(copy, len);
    vs_reply_bytes(r, 200, f == VS_FMT_PNG ? "image/png" : f == VS_FMT_WEBP ? "image/webp" : f == VS_FMT_GIF ? "image/gif" : "image/jpeg", copy, len);
}
