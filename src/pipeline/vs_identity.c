/* vs_identity.c - identities on top of the vector index: samples in one
 * collection, the centroid (mean of the samples) and the member list in the
 * other. The centroid is always recomputed from the remaining samples, so
 * erasure leaves no trace of a removed image in it. */
#include "vs_identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_hash.h"

static vs_err ensure(const vs_pipeline *p, vs_error *err) {
    int dim = vs_engine_embedding_dim(p->engine);
    vs_err rc = p->index->ops->ensure_collection(p->index, p->coll.identities, dim, vs_engine_model_id(p->engine), err);
    if (rc == VS_OK) rc = p->index->ops->ensure_collection(p->index, p->coll.samples, dim, vs_engine_model_id(p->engine), err);
    return rc;
}

/* Writes the identity point: payload info and the centroid of its members. */
static vs_err store_identity(const vs_pipeline *p, const char *id, json_t *info, const float *centroid, vs_error *err) {
    char *pl = json_dumps(info, JSON_COMPACT);
    if (!pl) return vs_fail(err, VS_ERR_NOMEM, "identity %s", id);
    vs_point pt = {id, centroid, pl};
    vs_err rc = p->index->ops->upsert(p->index, p->coll.identities, &pt, 1, err);
    free(pl);
    return rc;
}

vs_err vs_identity_create(const vs_pipeline *p, const char *tenant, const char *name, char id_out[VS_UUID_STR],
                          vs_error *err) {
    if (!name || !*name || strlen(name) > 200) return vs_fail(err, VS_ERR_INVALID_ARG, "identity name must be 1..200 characters");
    vs_err rc = ensure(p, err);
    if (rc != VS_OK) return rc;
    if (vs_uuid_random("visage-identity", tenant, id_out) != 0) return vs_fail(err, VS_ERR_BACKEND, "identity: no randomness");
    int dim = vs_engine_embedding_dim(p->engine);
    float *zero = vs_calloc((size_t)dim, sizeof(float)); /* no samples yet: scores 0 against everything */
    json_t *info = json_pack("{s:s,s:s,s:s,s:i,s:[],s:I}", "tenant_id", tenant, "kind", "identity", "name", name, "n_samples", 0,
                             "members", "created_at", (json_int_t)vs_wall_ms());
    rc = zero && info ? store_identity(p, id_out, info, zero, err) : vs_fail(err, VS_ERR_NOMEM, "identity");
    json_decref(info);
    vs_free(zero);
    return rc;
}

vs_err vs_identity_get(const vs_pipeline *p, const char *tenant, const char *id, json_t **info, float *centroid,
                       vs_error *err) {
    char *pl = NULL;
    vs_err rc = p->index->ops->get(p->index, p->coll.identities, tenant, id, centroid, &pl, err);
    if (rc != VS_OK) {
        if (rc == VS_ERR_NOT_FOUND) vs_fail(err, VS_ERR_NOT_FOUND, "identity %s not found", id);
        return rc;
    }
    json_t *o = json_loads(pl, 0, NULL);
    vs_free(pl);
    if (!o) return vs_fail(err, VS_ERR_CORRUPT, "identity %s: stored payload is not JSON", id);
    if (info) *info = o;
    else json_decref(o);
    return VS_OK;
}

/* Recomputes the centroid of identity `id` from its member samples and stores it. */
static vs_err recompute(const vs_pipeline *p, const char *tenant, const char *id, json_t *info, vs_error *err) {
    int dim = vs_engine_embedding_dim(p->engine);
    float *sum = vs_calloc((size_t)dim, sizeof(float)), *v = vs_malloc(sizeof(float) * (size_t)dim);
    json_t *members = json_object_get(info, "members"), *kept = json_array();
    vs_err rc = sum && v ? VS_OK : vs_fail(err, VS_ERR_NOMEM, "identity %s", id);
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m) {
        if (rc != VS_OK) break;
        const char *sid = json_string_value(m);
        vs_err g = sid ? p->index->ops->get(p->index, p->coll.samples, tenant, sid, v, NULL, err) : VS_ERR_NOT_FOUND;
        if (g == VS_ERR_NOT_FOUND) continue; /* sample erased */
        if (g != VS_OK) { rc = g; break; }
        for (int d = 0; d < dim; d++) sum[d] += v[d];
        json_array_append(kept, m);
    }
    if (rc == VS_OK) {
        /* The mean, not re-normalised: its dot product with a probe is the
         * probe's mean similarity to the samples, which lives on the same
         * scale as one pairwise similarity, so the calibrated same-person
         * threshold applies. (A re-normalised centroid sits closer to every
         * face, strangers included: a Biden photo scored "match" against a
         * two-sample Obama identity in the tests.) */
        size_t k = json_array_size(kept);
        for (int d = 0; k > 0 && d < dim; d++) sum[d] /= (float)k;
        json_object_set(info, "members", kept);
        json_object_set_new(info, "n_samples", json_integer((json_int_t)json_array_size(kept)));
        rc = store_identity(p, id, info, sum, err);
    }
    json_decref(kept);
    vs_free(sum);
    vs_free(v);
    return rc;
}

/* Where the crop of sample sid is kept (bucket face-crops). */
static void crop_key(const char *tenant, const char *sid, char *key, size_t cap) {
    snprintf(key, cap, "%s/sample_%s.jpg", tenant, sid);
}

/* Deletes the crops of n samples: every sample's key, whether or not it
 * had one (deleting a missing object is no error), so no path that drops
 * a sample point can leave its picture behind. */
static vs_err drop_crops(const vs_pipeline *p, const char *tenant, const char *const *sids, size_t n, vs_error *err) {
    vs_err rc = VS_OK;
    for (size_t i = 0; i < n && rc == VS_OK; i++) {
        char key[VS_TENANT_MAX + VS_POINT_ID_MAX + 16];
        if (!sids[i]) continue;
        crop_key(tenant, sids[i], key, sizeof key);
        rc = p->store->ops->del(p->store, "face-crops", key, err);
    }
    return rc;
}

/* Writes sample s of identity id under point id sid; its crop first, so a
 * point never names a file that is not there. */
static vs_err put_sample(const vs_pipeline *p, const char *tenant, const char *id, const char *sid,
                         const vs_identity_sample *s, vs_error *err) {
    json_t *pl = json_pack("{s:s,s:s,s:f}", "tenant_id", tenant, "identity_id", id, "quality_score", (double)s->quality);
    if (pl && s->face_id) json_object_set_new(pl, "face_id", json_string(s->face_id));
    if (pl && s->image_sha256) json_object_set_new(pl, "image_sha256", json_string(s->image_sha256));
    if (pl && s->crop_jpeg) {
        char key[VS_TENANT_MAX + VS_POINT_ID_MAX + 16];
        crop_key(tenant, sid, key, sizeof key);
        vs_err c = p->store->ops->put(p->store, "face-crops", key, s->crop_jpeg, s->crop_len, "image/jpeg", err);
        if (c != VS_OK) {
            json_decref(pl);
            return c;
        }
        json_object_set_new(pl, "crop_key", json_string(key));
    } else if (pl && s->crop_stored) {
        char key[VS_TENANT_MAX + VS_POINT_ID_MAX + 16];
        crop_key(tenant, sid, key, sizeof key);
        json_object_set_new(pl, "crop_key", json_string(key));
    }
    char *pls = pl ? json_dumps(pl, JSON_COMPACT) : NULL;
    json_decref(pl);
    vs_point pt = {sid, s->vector, pls};
    vs_err rc = pls ? p->index->ops->upsert(p->index, p->coll.samples, &pt, 1, err) : vs_fail(err, VS_ERR_NOMEM, "sample");
    free(pls);
    if (rc != VS_OK && s->crop_jpeg) { /* no point names the crop just written: it goes */
        vs_error ignored = {0};
        const char *self[1] = {sid};
        drop_crops(p, tenant, self, 1, &ignored);
    }
    return rc;
}

vs_err vs_identity_rebuild(const vs_pipeline *p, const char *tenant, const char *id, const json_t *info,
                           const char *const *sample_ids, const vs_identity_sample *s, int n, vs_error *err) {
    vs_err rc = ensure(p, err);
    json_t *copy = rc == VS_OK ? json_deep_copy(info) : NULL, *members = json_array();
    if (rc == VS_OK && (!copy || !members)) rc = vs_fail(err, VS_ERR_NOMEM, "identity %s: rebuild", id);
    for (int i = 0; i < n && rc == VS_OK; i++) {
        rc = put_sample(p, tenant, id, sample_ids[i], &s[i], err);
        if (rc == VS_OK) json_array_append_new(members, json_string(sample_ids[i]));
    }
    if (rc == VS_OK) {
        json_object_set(copy, "members", members);
        rc = recompute(p, tenant, id, copy, err);
    }
    json_decref(members);
    json_decref(copy);
    return rc;
}

/* 1 when arr holds the string s. */
static int has_string(const json_t *arr, const char *s) {
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (json_string_value(v) && !strcmp(json_string_value(v), s)) return 1;
    return 0;
}

vs_err vs_identity_enroll(const vs_pipeline *p, const char *tenant, const char *id, const vs_identity_sample *s, int n,
                          int *n_samples, int *added, vs_error *err) {
    json_t *info = NULL;
    if (added) *added = 0;
    vs_err rc = vs_identity_get(p, tenant, id, &info, NULL, err);
    if (rc != VS_OK) return rc;
    json_t *members = json_object_get(info, "members");
    if (json_array_size(members) + (size_t)n > VS_IDENTITY_MAX_SAMPLES) {
        json_decref(info);
        return vs_fail(err, VS_ERR_INVALID_ARG, "identity %s would exceed %d samples", id, VS_IDENTITY_MAX_SAMPLES);
    }
    int k = 0;
    for (int i = 0; i < n && rc == VS_OK; i++) {
        /* the sample's id comes from the identity, the vector and where it
         * came from (the face, else the photo): the same face given twice, or
         * enrolled before, maps to the same point and is not added again */
        char sid[VS_UUID_STR], hexv[65];
        vs_sha256_hex(s[i].vector, sizeof(float) * (size_t)vs_engine_embedding_dim(p->engine), hexv);
        const char *from = s[i].face_id ? s[i].face_id : s[i].image_sha256 ? s[i].image_sha256 : "";
        const char *parts[4] = {"visage-sample", id, hexv, from};
        vs_uuid_from(parts, 4, sid);
        if (has_string(members, sid)) continue;
        rc = put_sample(p, tenant, id, sid, &s[i], err);
        if (rc != VS_OK) break;
        json_array_append_new(members, json_string(sid));
        k++;
    }
    if (rc == VS_OK) rc = recompute(p, tenant, id, info, err);
    if (rc == VS_OK && n_samples) *n_samples = (int)json_integer_value(json_object_get(info, "n_samples"));
    if (rc == VS_OK && added) *added = k;
    json_decref(info);
    return rc;
}

vs_err vs_identity_delete(const vs_pipeline *p, const char *tenant, const char *id, vs_error *err) {
    json_t *info = NULL;
    vs_err rc = vs_identity_get(p, tenant, id, &info, NULL, err);
    if (rc != VS_OK) return rc;
    json_t *members = json_object_get(info, "members");
    size_t n = json_array_size(members);
    const char **ids = vs_calloc(n ? n : 1, sizeof *ids);
    for (size_t i = 0; ids && i < n; i++) ids[i] = json_string_value(json_array_get(members, i));
    int64_t deleted = 0;
    rc = ids ? VS_OK : vs_fail(err, VS_ERR_NOMEM, "identity delete");
    if (rc == VS_OK && n) rc = drop_crops(p, tenant, ids, n, err);
    if (rc == VS_OK && n) rc = p->index->ops->delete_ids(p->index, p->coll.samples, tenant, ids, (int)n, &deleted, err);
    const char *self[1] = {id};
    if (rc == VS_OK) rc = p->index->ops->delete_ids(p->index, p->coll.identities, tenant, self, 1, &deleted, err);
    vs_free(ids);
    json_decref(info);
    return rc;
}

vs_err vs_identity_samples(const vs_pipeline *p, const char *tenant, const char *id, json_t *arr, vs_error *err) {
    json_t *info = NULL;
    vs_err rc = vs_identity_get(p, tenant, id, &info, NULL, err);
    size_t i;
    json_t *m;
    json_array_foreach(rc == VS_OK ? json_object_get(info, "members") : NULL, i, m) {
        char *pl = NULL;
        const char *sid = json_string_value(m);
        vs_err g = sid ? p->index->ops->get(p->index, p->coll.samples, tenant, sid, NULL, &pl, err) : VS_ERR_NOT_FOUND;
        if (g == VS_ERR_NOT_FOUND) continue; /* erased, centroid not yet recomputed */
        if (g != VS_OK) { rc = g; break; }
        json_t *o = json_loads(pl, 0, NULL);
        vs_free(pl);
        if (!o) continue;
        json_t *s = json_pack("{s:s,s:O}", "sample_id", sid, "quality_score", json_object_get(o, "quality_score"));
        static const char *const keep[] = {"face_id", "image_sha256", "crop_key"};
        for (size_t k = 0; s && k < sizeof keep / sizeof keep[0]; k++)
            if (json_object_get(o, keep[k])) json_object_set(s, keep[k], json_object_get(o, keep[k]));
        if (s) json_array_append_new(arr, s);
        json_decref(o);
    }
    json_decref(info);
    return rc;
}

vs_err vs_identity_remove_sample(const vs_pipeline *p, const char *tenant, const char *id, const char *sample_id,
                                 int *n_samples, vs_error *err) {
    json_t *info = NULL;
    vs_err rc = vs_identity_get(p, tenant, id, &info, NULL, err);
    if (rc != VS_OK) return rc;
    json_t *members = json_object_get(info, "members");
    size_t i, at = json_array_size(members);
    json_t *m;
    json_array_foreach(members, i, m) if (json_string_value(m) && !strcmp(json_string_value(m), sample_id)) at = i;
    if (at == json_array_size(members)) {
        json_decref(info);
        return vs_fail(err, VS_ERR_NOT_FOUND, "identity %s has no sample %.64s", id, sample_id);
    }
    const char *ids[1] = {sample_id};
    int64_t deleted = 0;
    rc = drop_crops(p, tenant, ids, 1, err);
    if (rc == VS_OK) rc = p->index->ops->delete_ids(p->index, p->coll.samples, tenant, ids, 1, &deleted, err);
    if (rc == VS_OK) {
        json_array_remove(members, at);
        rc = recompute(p, tenant, id, info, err);
    }
    if (rc == VS_OK && n_samples) *n_samples = (int)json_integer_value(json_object_get(info, "n_samples"));
    json_decref(info);
    return rc;
}

static int list_one(void *ctx, const char *id, const float *vec, const char *payload) {
    (void)vec;
    json_t *pl = json_loads(payload, 0, NULL);
    if (pl) json_array_append_new((json_t *)ctx, json_pack("{s:s,s:O,s:O}", "identity_id", id, "name", json_object_get(pl, "name"),
                                                         "n_samples", json_object_get(pl, "n_samples")));
    json_decref(pl);
    return 0;
}

vs_err vs_identity_list(const vs_pipeline *p, const char *tenant, json_t *arr, vs_error *err) {
    vs_filter f = {.tenant_id = tenant};
    return vs_index_scroll_all(p->index, p->coll.identities, &f, 256, list_one, arr, err);
}

vs_err vs_identity_closest(const vs_pipeline *p, const char *tenant, const float *vec, int *found, char id[VS_POINT_ID_MAX],
                           char name[256], float *similarity, vs_error *err) {
    vs_filter f = {.tenant_id = tenant};
    vs_hit *hits = NULL;
    int n = 0;
    *found = 0;
    vs_err rc = p->index->ops->search(p->index, p->coll.identities, vec, &f, 1, -1.0f, &hits, &n, err);
    if (rc == VS_ERR_NOT_FOUND) return VS_OK;
    if (rc != VS_OK) return rc;
    if (n > 0) {
        json_t *pl = json_loads(hits[0].payload_json, 0, NULL);
        if (json_integer_value(json_object_get(pl, "n_samples")) > 0) {
            *found = 1;
            snprintf(id, VS_POINT_ID_MAX, "%s", hits[0].id);
            snprintf(name, 256, "%s", json_string_value(json_object_get(pl, "name")) ? json_string_value(json_object_get(pl, "name")) : "");
            *similarity = hits[0].score;
        }
        json_decref(pl);
    }
    vs_hits_free(hits, n);
    return VS_OK;
}

typedef struct forget_ctx {
    const char *image_sha256, *face_id;
    json_t *sample_ids, *identity_ids;
} forget_ctx;

static int collect_sample(void *ctx, const char *id, const float *vec, const char *payload) {
    forget_ctx *c = ctx;
    (void)vec;
    json_t *pl = json_loads(payload, 0, NULL);
    const char *sha = json_string_value(json_object_get(pl, "image_sha256"));
    const char *fid = json_string_value(json_object_get(pl, "face_id"));
    if ((c->face_id && fid && !strcmp(fid, c->face_id)) || (c->image_sha256 && sha && !strcmp(sha, c->image_sha256))) {
        json_array_append_new(c->sample_ids, json_string(id));
        json_object_set_new(c->identity_ids, json_string_value(json_object_get(pl, "identity_id")), json_true());
    }
    json_decref(pl);
    return 0;
}

vs_err vs_identity_forget(const vs_pipeline *p, const char *tenant, const char *image_sha256, const char *face_id,
                          vs_error *err) {
    forget_ctx c = {image_sha256, face_id, json_array(), json_object()};
    /* by image: the index filters on the samples' image_sha256 (an erasure
     * of a person forgets one image after another); by face: every sample
     * of the tenant is looked at */
    vs_filter f = {.tenant_id = tenant, .image_sha256 = face_id ? NULL : image_sha256};
    vs_err rc = vs_index_scroll_all(p->index, p->coll.samples, &f, 512, collect_sample, &c, err);
    size_t n = json_array_size(c.sample_ids);
    if (rc == VS_OK && n > 0) {
        const char **ids = vs_calloc(n, sizeof *ids);
        int64_t deleted = 0;
        for (size_t i = 0; ids && i < n; i++) ids[i] = json_string_value(json_array_get(c.sample_ids, i));
        rc = ids ? drop_crops(p, tenant, ids, n, err) : vs_fail(err, VS_ERR_NOMEM, "forget");
        if (rc == VS_OK) rc = p->index->ops->delete_ids(p->index, p->coll.samples, tenant, ids, (int)n, &deleted, err);
        vs_free(ids);
        const char *iid;
        json_t *v;
        json_object_foreach(c.identity_ids, iid, v) {
            json_t *info = NULL;
            if (rc != VS_OK) break;
            vs_err g = vs_identity_get(p, tenant, iid, &info, NULL, err);
            if (g == VS_ERR_NOT_FOUND) continue;
            rc = g == VS_OK ? recompute(p, tenant, iid, info, err) : g;
            json_decref(info);
        }
    }
    json_decref(c.sample_ids);
    json_decref(c.identity_ids);
    return rc;
}
