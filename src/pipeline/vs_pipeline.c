/* vs_pipeline.c - process_image(): fetch the raw blob, decode, detect, align,
 * score, hash, dedup, embed, save crops and thumbnails, upsert the points of
 * the image in one batch, and leave a record of what was and was not indexed
 * (with Rekognition-style reasons). Knows the backends only by interface. */
#include "vs_pipeline.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_base64.h"
#include "vs_erase.h"
#include "vs_hash.h"
#include "vs_identity.h"
#include "vs_phash.h"
#include "vs_result_msg.h"

void vs_pipeline_cfg_default(vs_pipeline_cfg *c) {
    c->near_dup_hamming = 6;
    c->near_dup_cosine = 0.90f;
    /* A re-post of the same photo on another page is exactly what "where else
     * does this face appear?" must find, so near-duplicates are indexed and
     * linked, not dropped (exact duplicates, same sha256, are skipped). */
    c->near_dup_skip = 0;
    c->index_gate = VS_GATE_SEARCH;
    c->max_faces = 32;
    c->thumb_px = 320;
    c->face_thumb_px = 112;
    c->max_image_bytes = 64u << 20;
    c->max_pixels = VS_IMAGE_DEFAULT_MAX_PIXELS;
}

void vs_raw_key(const char *tenant, const char *sha256, vs_image_format fmt, char *key, size_t cap) {
    snprintf(key, cap, "%s/%s.%s", tenant, sha256, fmt == VS_FMT_JPEG ? "jpg" : vs_image_format_name(fmt));
}

typedef struct raw_seen {
    char *key;
    size_t cap;
    int found;
} raw_seen;

static int raw_one(void *ctx, const char *key, size_t size) {
    raw_seen *r = ctx;
    (void)size;
    if (strlen(key) >= r->cap) return 0;
    snprintf(r->key, r->cap, "%s", key);
    r->found = 1;
    return 1;
}

void vs_face_blob_keys(const char *tenant, const char *sha256, int face_index, char crop[VS_FACE_KEY_MAX],
                       char thumb[VS_FACE_KEY_MAX]) {
    snprintf(crop, VS_FACE_KEY_MAX, "%s/%s_face_%d.jpg", tenant, sha256, face_index);
    snprintf(thumb, VS_FACE_KEY_MAX, "%s/%s_face_%d_thumb.jpg", tenant, sha256, face_index);
}

vs_err vs_raw_find(vs_store *store, const char *tenant, const char *sha256, char *key, size_t cap, vs_error *err) {
    char prefix[VS_TENANT_MAX + 80];
    snprintf(prefix, sizeof prefix, "%s/%s.", tenant, sha256);
    raw_seen r = {key, cap, 0};
    vs_err rc = store->ops->list(store, "raw-images", prefix, raw_one, &r, err);
    if (rc == VS_OK && !r.found)
        rc = vs_fail(err, VS_ERR_NOT_FOUND, "raw image %s of tenant %s is not stored", sha256, tenant);
    return rc;
}

char *vs_ingest_msg_json(const vs_ingest_msg *m) {
    json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "tenant_id", m->tenant, "bucket", m->bucket, "key", m->key,
                          "image_sha256", m->sha256);
    if (!o) return NULL;
    if (m->site[0]) json_object_set_new(o, "site", json_string(m->site));
    if (m->source_url[0]) json_object_set_new(o, "source_url", json_string(m->source_url));
    if (m->page_url[0]) json_object_set_new(o, "page_url", json_string(m->page_url));
    if (m->external_id[0]) json_object_set_new(o, "external_image_id", json_string(m->external_id));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* Copies JSON string field `k` of o into dst (cap bytes); 0 if absent. */
static int get_str(json_t *o, const char *k, char *dst, size_t cap) {
    const char *v = json_string_value(json_object_get(o, k));
    dst[0] = '\0';
    if (!v) return 0;
    if (strlen(v) >= cap) return -1;
    memcpy(dst, v, strlen(v) + 1);
    return 1;
}

vs_err vs_ingest_msg_parse(const char *json, vs_ingest_msg *m, vs_error *err) {
    memset(m, 0, sizeof *m);
    json_error_t je;
    json_t *o = json_loads(json, 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return vs_fail(err, VS_ERR_CORRUPT, "queue message is not a JSON object: %s", je.text);
    }
    vs_err rc = VS_OK;
    if (get_str(o, "tenant_id", m->tenant, sizeof m->tenant) != 1 || get_str(o, "bucket", m->bucket, sizeof m->bucket) != 1 ||
        get_str(o, "key", m->key, sizeof m->key) != 1 || get_str(o, "image_sha256", m->sha256, sizeof m->sha256) != 1 ||
        get_str(o, "site", m->site, sizeof m->site) < 0 || get_str(o, "source_url", m->source_url, sizeof m->source_url) < 0 ||
        get_str(o, "page_url", m->page_url, sizeof m->page_url) < 0 ||
        get_str(o, "external_image_id", m->external_id, sizeof m->external_id) < 0)
        rc = vs_fail(err, VS_ERR_CORRUPT, "queue message: missing or oversized tenant_id/bucket/key/image_sha256");
    json_decref(o);
    return rc;
}

/* The files an image produces (crops, thumbnails), written together by one
 * group-committed vs_store_put_many. */
typedef struct blob_set {
    vs_blob b[2 * 64 + 1];
    char keys[2 * 64 + 1][256];
    uint8_t *bufs[2 * 64 + 1];
    int n;
} blob_set;

static void blob_set_free(blob_set *bs) {
    for (int i = 0; i < bs->n; i++) vs_free(bs->bufs[i]);
    bs->n = 0;
}

/* Encodes img as JPEG into the set under bucket/key. */
static vs_err add_jpeg(blob_set *bs, const vs_image *img, const char *bucket, const char *key, vs_error *err) {
    if (bs->n >= (int)(sizeof bs->b / sizeof bs->b[0])) return vs_fail(err, VS_ERR_INTERNAL, "process: too many files");
    uint8_t *jpg = NULL;
    size_t len = 0;
    vs_err rc = vs_image_encode_jpeg(img, 88, &jpg, &len, err);
    if (rc != VS_OK) return rc;
    int i = bs->n++;
    snprintf(bs->keys[i], sizeof bs->keys[i], "%s", key);
    bs->bufs[i] = jpg;
    bs->b[i] = (vs_blob){bucket, bs->keys[i], jpg, len};
    return VS_OK;
}

/* Adds a JPEG thumbnail of img whose longest side is at most px. */
static vs_err add_thumb(blob_set *bs, const vs_image *img, int px, const char *bucket, const char *key, vs_error *err) {
    int side = img->width > img->height ? img->width : img->height;
    if (side <= px) return add_jpeg(bs, img, bucket, key, err);
    int w = (int)((long)img->width * px / side), h = (int)((long)img->height * px / side);
    vs_image t = {0};
    vs_err rc = vs_image_resize(img, w < 1 ? 1 : w, h < 1 ? 1 : h, &t, err);
    if (rc == VS_OK) rc = add_jpeg(bs, &t, bucket, key, err);
    vs_image_free(&t);
    return rc;
}

/* Writes points and record into the local index and catalog, unless the
 * image was erased meanwhile or holds a blocked face. */
static vs_err commit_local(const vs_pipeline *p, const char *tenant, const char *sha, const char *external_id,
                           vs_image_status st, const char *rec, const vs_point *pts, int n, int dim, int *blocked,
                           vs_error *err) {
    vs_image_status now;
    vs_err rc = vs_image_record_get(p->catalog, tenant, sha, NULL, &now, NULL, NULL, err);
    /* erased while it was being processed: keep it out, and remove the crops
     * and thumbnails the worker saved after the erasure had run */
    if (rc == VS_OK && now == VS_IMG_ERASED) return vs_erase_image(p, tenant, sha, 1, NULL, NULL, err);
    if (rc != VS_OK && rc != VS_ERR_NOT_FOUND) return rc;
    rc = VS_OK;
    int hit = 0;
    char block[VS_POINT_ID_MAX];
    if (n > 0) rc = vs_block_match(p, tenant, pts, n, &hit, block, err);
    if (rc != VS_OK) return rc;
    if (blocked) *blocked = hit;
    /* a face of a person the tenant erased with a block: the image goes the
     * way their old ones went, crops the worker saved included */
    if (hit) return vs_erase_blocked(p, tenant, sha, block, err);
    if (n > 0) {
        rc = p->index->ops->ensure_collection(p->index, p->coll.faces, dim, vs_engine_model_id(p->engine),
                                              err);
        if (rc == VS_OK) rc = p->index->ops->upsert(p->index, p->coll.faces, pts, n, err);
    }
    if (rc == VS_OK)
        rc = p->reindex ? vs_reindex_record_put(p->catalog, tenant, sha, st, rec, err)
                        : vs_image_record_put(p->catalog, tenant, sha, external_id, st, rec, err);
    return rc;
}

/* Hands points and record over: locally, or as one message to the index
 * owner (vectors as base64 float32) when the pipeline has a results queue. */
static vs_err commit(const vs_pipeline *p, const vs_ingest_msg *m, vs_image_status st, json_t *rec, const vs_point *pts,
                     int n, int *blocked, vs_error *err) {
    int dim = vs_engine_embedding_dim(p->engine);
    const char *ext = m->external_id[0] ? m->external_id : NULL;
    char *recs = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    vs_err rc = VS_OK;
    if (!p->results) {
        rc = commit_local(p, m->tenant, m->sha256, ext, st, recs, pts, n, dim, blocked, err);
        free(recs);
        return rc;
    }
    json_t *o = json_pack("{s:s,s:s,s:i,s:i,s:s}", "tenant_id", m->tenant, "image_sha256", m->sha256, "status", (int)st,
                          "dim", dim, "model", vs_engine_model_id(p->engine));
    json_t *arr = json_array();
    if (ext) json_object_set_new(o, "external_image_id", json_string(ext));
    if (rec) json_object_set(o, "record", rec);
    for (int i = 0; o && i < n; i++) {
        char *v = vs_base64_encode((const uint8_t *)pts[i].vector, sizeof(float) * (size_t)dim);
        json_t *pl = json_loads(pts[i].payload_json, 0, NULL);
        if (!v || !pl) {
            vs_free(v);
            json_decref(pl);
            rc = vs_fail(err, VS_ERR_NOMEM, "process: result message");
            break;
        }
        json_array_append_new(arr, json_pack("{s:s,s:s,s:o}", "id", pts[i].id, "vector_b64", v, "payload", pl));
        vs_free(v);
    }
    json_object_set_new(o, "points", arr);
    char *body = rc == VS_OK ? json_dumps(o, JSON_COMPACT) : NULL;
    if (rc == VS_OK && !body) rc = vs_fail(err, VS_ERR_NOMEM, "process: result message");
    if (rc == VS_OK) rc = p->results->ops->push(p->results, (const char *const *)&body, 1, NULL, err);
    free(body);
    free(recs);
    json_decref(o);
    return rc;
}

/* A worker that embedded with another model than the index owner's: the
 * image is recorded as failed, saying why and what to do, and the message
 * is dropped (VS_ERR_CORRUPT: no retry can make the vectors comparable). */
static vs_err refuse_model(const vs_pipeline *p, const char *tenant, const char *sha, const char *model, int dim,
                           vs_error *err) {
    const char *mine = vs_engine_model_id(p->engine);
    char why[sizeof err->msg];
    snprintf(why, sizeof why,
             "a worker embedded this image with model %.100s (%d-d) but the index holds %s (%d-d): run the workers "
             "with VISAGE_EMBEDDER=%s and ingest the image again",
             model ? model : "(unknown)", dim, mine, vs_engine_embedding_dim(p->engine),
             vs_engine_embedder(p->engine)->name);
    json_t *rec = json_pack("{s:s,s:s,s:{s:s,s:s}}", "image_sha256", sha, "status", "failed", "error", "code",
                            "MODEL_MISMATCH", "message", why);
    char *recs = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    vs_image_status now = VS_IMG_QUEUED;
    vs_err rc = VS_OK;
    if (recs && vs_tenant_name_ok(tenant) && vs_sha256_hex_ok(sha)) {
        rc = vs_image_record_get(p->catalog, tenant, sha, NULL, &now, NULL, NULL, err);
        if (rc == VS_ERR_NOT_FOUND) rc = VS_OK;
        /* an image indexed already (by a right worker) keeps its record */
        if (rc == VS_OK && now != VS_IMG_DONE) rc = vs_image_record_put(p->catalog, tenant, sha, NULL, VS_IMG_FAILED, recs, err);
    }
    free(recs);
    if (rc != VS_OK) return rc; /* the catalog is down: retried */
    return vs_fail(err, VS_ERR_CORRUPT, "result message for %.64s refused: %s", sha, why);
}

vs_err vs_apply_result(const vs_pipeline *p, const char *json, vs_error *err) {
    vs_result_msg m;
    vs_error perr = {0};
    vs_err rc = vs_result_msg_parse(json, &m, &perr);
    int dim = vs_engine_embedding_dim(p->engine);
    if (m.tenant && m.sha && ((m.model && strcmp(m.model, vs_engine_model_id(p->engine)) != 0) ||
                              (m.n_points > 0 && m.dim != dim))) {
        rc = refuse_model(p, m.tenant, m.sha, m.model, m.dim, err);
    } else if (rc != VS_OK) {
        if (err) *err = perr;
    } else if (m.dim != dim) {
        rc = vs_fail(err, VS_ERR_CORRUPT, "result message for %.64s: dimension %d != %d", m.sha, m.dim, dim);
    } else {
        rc = commit_local(p, m.tenant, m.sha, m.external_id, (vs_image_status)m.status, m.record, m.pts,
                          (int)m.n_points, dim, NULL, err);
    }
    vs_result_msg_free(&m);
    return rc;
}

/* Records a permanent failure (the image itself is bad): not retried. */
static vs_err reject(const vs_pipeline *p, const vs_ingest_msg *m, const char *code, const vs_error *why,
                     vs_process_result *result, vs_error *err) {
    json_t *rec = json_pack("{s:s,s:s,s:{s:s,s:s}}", "image_sha256", m->sha256, "status", "failed", "error", "code",
                            code, "message", why->msg);
    vs_err rc = commit(p, m, VS_IMG_FAILED, rec, NULL, 0, NULL, err);
    json_decref(rec);
    *result = VS_PROCESS_REJECTED;
    return rc;
}

static json_t *bbox_json(const vs_face_det *d) {
    return json_pack("[ffff]", (double)d->x, (double)d->y, (double)d->w, (double)d->h);
}

static json_t *landmarks_json(const vs_face_det *d) {
    json_t *a = json_array();
    for (int i = 0; i < d->n_kp; i++) json_array_append_new(a, json_pack("[ff]", (double)d->kp[i][0], (double)d->kp[i][1]));
    return a;
}

/* Id of an existing face of this tenant (from another image) that is a
 * near-duplicate of f: very similar embedding AND close pHash, of the crop
 * or of its mirror (a flipped re-post is a re-post). */
static vs_err find_near_duplicate(const vs_pipeline *p, const vs_ingest_msg *m, const vs_face *f, char dup[VS_POINT_ID_MAX],
                                  vs_error *err) {
    vs_filter flt = {.tenant_id = m->tenant};
    vs_hit *hits = NULL;
    int n = 0;
    dup[0] = '\0';
    vs_err rc = p->index->ops->search(p->index, p->coll.faces, f->embedding, &flt, 5, p->cfg.near_dup_cosine,
                                      &hits, &n, err);
    if (rc != VS_OK) return rc;
    for (int i = 0; i < n && !dup[0]; i++) {
        json_t *pl = json_loads(hits[i].payload_json, 0, NULL);
        const char *sha = json_string_value(json_object_get(pl, "image_sha256"));
        const char *ph = json_string_value(json_object_get(pl, "p_hash"));
        if (sha && ph && strcmp(sha, m->sha256) != 0) {
            uint64_t other = strtoull(ph, NULL, 16);
            int d = vs_hamming64(other, f->phash), dm = vs_hamming64(other, f->phash_mirror);
            if ((d < dm ? d : dm) <= p->cfg.near_dup_hamming) snprintf(dup, VS_POINT_ID_MAX, "%s", hits[i].id);
        }
        json_decref(pl);
    }
    vs_hits_free(hits, n);
    return VS_OK;
}

/* Builds the payload of an indexed face. */
static json_t *face_payload(const vs_pipeline *p, const vs_ingest_msg *m, const vs_face *f, int i, const char *crop_key,
                            const char *thumb_key, int64_t now) {
    char ph[17];
    vs_phash_hex(f->phash, ph);
    json_t *o = json_pack("{s:s,s:s,s:i,s:o,s:o,s:s,s:s,s:s,s:s#,s:f,s:f,s:I,s:s}", "tenant_id", m->tenant,
                          "image_sha256", m->sha256, "face_index", i, "bbox", bbox_json(&f->det), "landmarks",
                          landmarks_json(&f->det), "crop_key", crop_key, "thumb_key", thumb_key, "p_hash", ph,
                          "p_hash_prefix", ph, (int)4, "quality_score", (double)f->quality.score,
                          "det_score", (double)f->det.score, "created_at", (json_int_t)now, "model",
                          vs_engine_model_id(p->engine));
    if (o && m->site[0]) json_object_set_new(o, "site", json_string(m->site));
    if (o && m->source_url[0]) json_object_set_new(o, "source_url", json_string(m->source_url));
    if (o && m->page_url[0]) json_object_set_new(o, "page_url", json_string(m->page_url));
    return o;
}

typedef struct face_plan {
    int index;             /* 1 = goes into the index */
    int deleted;           /* 1 = the tenant deleted it (reindex): in no list, no file */
    const char *reason;    /* why not */
    char dup_of[VS_POINT_ID_MAX];
    char id[VS_UUID_STR];
} face_plan;

/* 1 when a face found by a reindex is one the tenant deleted (DELETE
 * /api/v1/faces/{id}; an entry of the old record's faces_deleted): the same
 * id, or a box overlapping the deleted one's by half or more, since another
 * detector may number the faces otherwise. A deleted face must never come
 * back, so a doubtful match counts as deleted. */
static int was_deleted(const json_t *deleted, const char *id, const vs_face_det *d) {
    size_t k;
    json_t *e;
    json_array_foreach(deleted, k, e) {
        const char *fid = json_string_value(json_object_get(e, "face_id"));
        json_t *b = json_object_get(e, "bbox");
        if (fid && !strcmp(fid, id)) return 1;
        if (json_array_size(b) != 4) continue;
        vs_face_det old = {.x = (float)json_number_value(json_array_get(b, 0)), .y = (float)json_number_value(json_array_get(b, 1)),
                           .w = (float)json_number_value(json_array_get(b, 2)), .h = (float)json_number_value(json_array_get(b, 3))};
        if (vs_box_iou(&old, d) >= 0.5f) return 1;
    }
    return 0;
}

/* A reindex's view of the faces the tenant deleted from this image: the
 * faces_deleted list of its record (a new reference), NULL when none. */
static vs_err faces_deleted_of(const vs_pipeline *p, const vs_ingest_msg *m, json_t **out, vs_error *err) {
    vs_image_status st;
    char *rec = NULL;
    *out = NULL;
    vs_err rc = p->reindex && p->catalog ? vs_image_record_get(p->catalog, m->tenant, m->sha256, NULL, &st, &rec, NULL, err)
                                         : VS_ERR_NOT_FOUND;
    if (rc == VS_ERR_NOT_FOUND) return VS_OK;
    json_t *o = rc == VS_OK && rec ? json_loads(rec, 0, NULL) : NULL, *d = json_object_get(o, "faces_deleted");
    if (json_array_size(d) > 0) *out = json_incref(d);
    json_decref(o);
    vs_free(rec);
    return rc;
}

/* Decides per face: indexed, or not with a reason. Faces are considered best
 * quality first, so EXCEEDS_MAX_FACES drops the worst ones. */
static vs_err plan_faces(const vs_pipeline *p, const vs_ingest_msg *m, const vs_faces *faces, const json_t *deleted,
                         face_plan *plan, vs_error *err) {
    const vs_quality_cfg *qc = &vs_engine_config(p->engine)->quality;
    int *order = vs_malloc(sizeof(int) * (size_t)(faces->n ? faces->n : 1));
    if (!order) return vs_fail(err, VS_ERR_NOMEM, "process: face order");
    for (int i = 0; i < faces->n; i++) order[i] = i;
    for (int i = 1; i < faces->n; i++) /* insertion sort by quality, descending */
        for (int j = i; j > 0 && faces->faces[order[j]].quality.score > faces->faces[order[j - 1]].quality.score; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int kept = 0;
    vs_err rc = VS_OK;
    for (int k = 0; k < faces->n && rc == VS_OK; k++) {
        int i = order[k];
        const vs_face *f = &faces->faces[i];
        face_plan *fp = &plan[i];
        vs_face_id(m->tenant, m->sha256, i, fp->id);
        if (deleted && was_deleted(deleted, fp->id, &f->det)) {
            fp->deleted = 1;
            continue;
        }
        fp->reason = vs_quality_reject_reason(qc, &f->quality, &f->det, p->cfg.index_gate);
        if (!fp->reason && kept >= p->cfg.max_faces) fp->reason = "EXCEEDS_MAX_FACES";
        if (!fp->reason && p->index) {
            rc = find_near_duplicate(p, m, f, fp->dup_of, err);
            if (fp->dup_of[0] && p->cfg.near_dup_skip) fp->reason = "DUPLICATE";
        }
        if (!fp->reason) {
            fp->index = 1;
            kept++;
        }
    }
    vs_free(order);
    return rc;
}

/* Saves crops and thumbnails of the indexed faces, then upserts them all in
 * one batch; fills the record's face lists. */
static vs_err index_faces(const vs_pipeline *p, const vs_ingest_msg *m, const vs_faces *faces, const face_plan *plan,
                          blob_set *bs, json_t *indexed, json_t *not_indexed, vs_point *pts, char **payloads, int *n_out,
                          vs_error *err) {
    int n = 0;
    vs_err rc = VS_OK;
    int64_t now = vs_wall_ms();
    for (int i = 0; i < faces->n && rc == VS_OK; i++) {
        const vs_face *f = &faces->faces[i];
        if (plan[i].deleted) continue; /* listed under faces_deleted as it was */
        if (!plan[i].index) {
            json_t *o = json_pack("{s:i,s:o,s:f,s:[s]}", "face_index", i, "bbox", bbox_json(&f->det), "quality_score",
                                  (double)f->quality.score, "reasons", plan[i].reason);
            if (plan[i].dup_of[0]) json_object_set_new(o, "duplicate_of", json_string(plan[i].dup_of));
            json_array_append_new(not_indexed, o);
            continue;
        }
        char crop_key[VS_FACE_KEY_MAX], thumb_key[VS_FACE_KEY_MAX];
        vs_face_blob_keys(m->tenant, m->sha256, i, crop_key, thumb_key);
        rc = add_jpeg(bs, &f->crop, "face-crops", crop_key, err);
        if (rc == VS_OK) rc = add_thumb(bs, &f->crop, p->cfg.face_thumb_px, "face-thumbs", thumb_key, err);
        if (rc != VS_OK) break;
        json_t *pl = face_payload(p, m, f, i, crop_key, thumb_key, now);
        if (pl && plan[i].dup_of[0]) json_object_set_new(pl, "near_duplicate_of", json_string(plan[i].dup_of));
        payloads[n] = pl ? json_dumps(pl, JSON_COMPACT) : NULL;
        json_decref(pl);
        if (!payloads[n]) { rc = vs_fail(err, VS_ERR_NOMEM, "process: payload"); break; }
        pts[n] = (vs_point){plan[i].id, f->embedding, payloads[n]};
        n++;
        json_t *rec = json_pack("{s:s,s:i,s:o,s:f}", "face_id", plan[i].id, "face_index", i, "bbox", bbox_json(&f->det),
                                "quality_score", (double)f->quality.score);
        if (plan[i].dup_of[0]) json_object_set_new(rec, "near_duplicate_of", json_string(plan[i].dup_of));
        json_array_append_new(indexed, rec);
    }
    /* files first, then (in commit) the points that name them: a crash in
     * between leaves orphan files that the retry overwrites, never points
     * without files */
    if (rc == VS_OK) rc = vs_store_put_many(p->store, bs->b, bs->n, err);
    *n_out = n;
    return rc;
}

vs_err vs_process_image(const vs_pipeline *p, vs_engine_worker *w, const vs_ingest_msg *m, vs_process_result *result,
                        int *faces_indexed, vs_error *err) {
    vs_image_status st;
    *result = VS_PROCESSED;
    if (faces_indexed) *faces_indexed = 0;
    vs_err rc = p->catalog ? vs_image_record_get(p->catalog, m->tenant, m->sha256, NULL, &st, NULL, NULL, err) : VS_ERR_NOT_FOUND;
    /* step 6a: exact duplicate, or erased (a reindex processes DONE images again) */
    if (rc == VS_OK && ((st == VS_IMG_DONE && !p->reindex) || st == VS_IMG_ERASED)) {
        *result = VS_PROCESS_DUPLICATE;
        return VS_OK;
    }
    if (rc != VS_OK && rc != VS_ERR_NOT_FOUND) return rc;

    uint8_t *buf = NULL; /* step 1: fetch */
    size_t len = 0;
    vs_error why = {0};
    rc = vs_store_get(p->store, m->bucket, m->key, p->cfg.max_image_bytes, &buf, &len, &why);
    if (rc == VS_ERR_NOT_FOUND || rc == VS_ERR_TOO_LARGE) return reject(p, m, vs_err_name(rc), &why, result, err);
    if (rc != VS_OK) {
        *err = why;
        return rc;
    }
    /* step 2: decode, EXIF-oriented; a big JPEG at reduced scale, its small
     * faces from the whole photo decoded again (vs_engine_analyze_decoded) */
    vs_decoded dec = {0};
    vs_decode_opts dopt = {.max_pixels = p->cfg.max_pixels};
    int64_t t0 = vs_now_ns();
    rc = vs_image_decode_scaled(buf, len, &dopt, VS_ENGINE_DECODE_SIDE, &dec, &why);
    vs_engine_profile_add(w, VS_STAGE_DECODE, vs_now_ns() - t0);
    if (rc != VS_OK) {
        vs_free(buf);
        return reject(p, m, vs_err_name(rc), &why, result, err);
    }
    const vs_image *img = &dec.img;

    vs_faces faces = {0}; /* steps 3-7: detect, align, quality, pHash, embed */
    face_plan *plan = NULL;
    json_t *indexed = json_array(), *not_indexed = json_array();
    vs_point *pts = NULL;
    char **payloads = NULL;
    int n_pts = 0;
    json_t *deleted = NULL; /* a reindex keeps the faces the tenant deleted deleted */
    rc = faces_deleted_of(p, m, &deleted, err);
    if (rc == VS_OK)
        rc = vs_engine_analyze_decoded(w, &dec, buf, len, &dopt,
                                       VS_ANALYZE_EMBED | VS_ANALYZE_KEEP_CROPS |
                                           (p->cfg.index_gate == VS_GATE_SEARCH ? VS_ANALYZE_EMBED_SEARCHABLE : 0),
                                       &faces, err);
    vs_free(buf);
    if (rc == VS_OK && p->index)
        rc = p->index->ops->ensure_collection(p->index, p->coll.faces, vs_engine_embedding_dim(p->engine),
                                              vs_engine_model_id(p->engine), err);
    size_t nf = (size_t)(faces.n ? faces.n : 1);
    if (rc == VS_OK && (!(plan = vs_calloc(nf, sizeof *plan)) || !(pts = vs_calloc(nf, sizeof *pts)) ||
                        !(payloads = vs_calloc(nf, sizeof *payloads))))
        rc = vs_fail(err, VS_ERR_NOMEM, "process: plan");
    t0 = vs_now_ns();
    if (rc == VS_OK) rc = plan_faces(p, m, &faces, deleted, plan, err);
    vs_engine_profile_add(w, VS_STAGE_DEDUP, vs_now_ns() - t0);
    t0 = vs_now_ns();
    blob_set *bs = rc == VS_OK ? vs_calloc(1, sizeof *bs) : NULL;
    if (rc == VS_OK && !bs) rc = vs_fail(err, VS_ERR_NOMEM, "process: files");
    if (rc == VS_OK) { /* step 8: image thumbnail */
        char tk[512];
        snprintf(tk, sizeof tk, "%s/%s_thumb.jpg", m->tenant, m->sha256);
        rc = add_thumb(bs, img, p->cfg.thumb_px, "thumbnails", tk, err);
    }
    if (rc == VS_OK) rc = index_faces(p, m, &faces, plan, bs, indexed, not_indexed, pts, payloads, &n_pts, err); /* 8-9 */
    vs_engine_profile_add(w, VS_STAGE_STORE, vs_now_ns() - t0);
    if (bs) blob_set_free(bs);
    vs_free(bs);
    if (rc == VS_OK) {
        json_t *rec = json_pack("{s:s,s:s,s:i,s:i,s:i,s:O,s:O,s:s,s:I}", "image_sha256", m->sha256, "status", "done",
                                "width", dec.width, "height", dec.height, "faces_found", faces.n, "faces_indexed", indexed,
                                "faces_not_indexed", not_indexed, "model", vs_engine_model_id(p->engine),
                                "processed_at", (json_int_t)vs_wall_ms());
        if (m->site[0]) json_object_set_new(rec, "site", json_string(m->site));
        if (m->source_url[0]) json_object_set_new(rec, "source_url", json_string(m->source_url));
        if (m->page_url[0]) json_object_set_new(rec, "page_url", json_string(m->page_url));
        if (m->external_id[0]) json_object_set_new(rec, "external_image_id", json_string(m->external_id));
        if (deleted) json_object_set(rec, "faces_deleted", deleted);
        int blocked = 0;
        t0 = vs_now_ns();
        rc = commit(p, m, VS_IMG_DONE, rec, pts, n_pts, &blocked, err); /* step 10 */
        vs_engine_profile_add(w, VS_STAGE_COMMIT, vs_now_ns() - t0);
        json_decref(rec);
        if (blocked) *result = VS_PROCESS_BLOCKED;
        else if (faces_indexed) *faces_indexed = (int)json_array_size(indexed);
    }
    json_decref(indexed);
    json_decref(not_indexed);
    json_decref(deleted);
    for (int i = 0; payloads && i < n_pts; i++) free(payloads[i]);
    vs_free(payloads);
    vs_free(pts);
    vs_free(plan);
    vs_faces_free(&faces);
    vs_image_free(&dec.img);
    return rc;
}
