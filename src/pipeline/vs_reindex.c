/* vs_reindex.c - a reindex run (see vs_reindex.h): plan, images, identities,
 * blocks, sweep, switch, drop. Tuned for a few hundred thousand images: the
 * networks dominate; the catalog and index are asked per image, in batches.
 *
 * Threading: the images of a batch are shared out by an atomic counter to
 * `threads` threads, each with its own engine worker (vs_engine_worker is
 * single-threaded); counts and the first error are under pass.mu. The
 * pipeline, store, index and catalog are thread-safe by contract. All the
 * other steps run on the caller's thread. Rejected: the ingest queue and the
 * pipeline's workers (a server's workers must go on ingesting with the old
 * engine meanwhile, and the queue's retries and dead letters are the wrong
 * failure model here: a backend error stops the run, which resumes later). */
#include "vs_reindex.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vs_alloc.h"
#include "vs_hash.h"
#include "vs_identity.h"
#include "vs_strset.h"

#define IMAGE_BATCH 64
#define MAX_THREADS 64

/* ---- the plan --------------------------------------------------------------- */

typedef struct plan {
    vs_collections from, to;
    char model[VS_INDEX_MODEL_MAX + 1];
    int dropping;              /* switched already: only the old collections' drop is left */
} plan;

static vs_err plan_save(vs_catalog *cat, const plan *pl, vs_error *err) {
    char *from = vs_collections_json(&pl->from), *to = vs_collections_json(&pl->to);
    json_t *o = from && to ? json_pack("{s:o,s:o,s:s,s:s,s:I}", "from", json_loads(from, 0, NULL), "to",
                                       json_loads(to, 0, NULL), "model", pl->model, "phase",
                                       pl->dropping ? "drop" : "fill", "at", (json_int_t)vs_wall_ms())
                           : NULL;
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    vs_err rc = s ? vs_setting_put(cat, VS_SETTING_REINDEX, s, err) : vs_fail(err, VS_ERR_NOMEM, "reindex plan");
    free(from), free(to), free(s);
    json_decref(o);
    return rc;
}

/* The plan in the catalog; *found = 0 when there is none. */
static vs_err plan_load(vs_catalog *cat, plan *pl, int *found, vs_error *err) {
    char *v = NULL;
    *found = 0;
    vs_err rc = vs_setting_get(cat, VS_SETTING_REINDEX, &v, err);
    if (rc == VS_ERR_NOT_FOUND) return VS_OK;
    if (rc != VS_OK) return rc;
    json_t *o = json_loads(v, 0, NULL);
    vs_free(v);
    char *from = json_dumps(json_object_get(o, "from"), JSON_COMPACT), *to = json_dumps(json_object_get(o, "to"), 0);
    const char *model = json_string_value(json_object_get(o, "model"));
    const char *phase = json_string_value(json_object_get(o, "phase"));
    rc = from && to && model && phase && strlen(model) <= VS_INDEX_MODEL_MAX
             ? VS_OK
             : vs_fail(err, VS_ERR_CORRUPT, "catalog setting %s is damaged", VS_SETTING_REINDEX);
    if (rc == VS_OK) rc = vs_collections_parse(from, &pl->from, err);
    if (rc == VS_OK) rc = vs_collections_parse(to, &pl->to, err);
    if (rc == VS_OK) {
        snprintf(pl->model, sizeof pl->model, "%s", model);
        pl->dropping = !strcmp(phase, "drop");
        *found = 1;
    }
    free(from), free(to);
    json_decref(o);
    return rc;
}

/* Drops every collection of c (missing ones are fine). */
static vs_err drop_all(vs_index *ix, const vs_collections *c, vs_error *err) {
    const char *names[4];
    vs_collections_list(c, names);
    vs_err rc = VS_OK;
    for (int i = 0; i < 4 && rc == VS_OK; i++) rc = ix->ops->drop_collection(ix, names[i], err);
    return rc;
}

/* A fresh plan from cur's active collections to the next generation, made
 * by model: leftovers under the target names are dropped, staging emptied. */
static vs_err plan_new(const vs_pipeline *cur, const char *model, plan *pl, vs_error *err) {
    memset(pl, 0, sizeof *pl);
    pl->from = cur->coll;
    vs_collections_gen(vs_collections_generation(&cur->coll) + 1, &pl->to);
    snprintf(pl->model, sizeof pl->model, "%s", model);
    vs_err rc = plan_save(cur->catalog, pl, err); /* first: a crash from here on is resumed, not repeated */
    if (rc == VS_OK) rc = drop_all(cur->index, &pl->to, err);
    if (rc == VS_OK) rc = vs_reindex_reset(cur->catalog, err);
    return rc;
}

/* ---- tenants ----------------------------------------------------------------- */

static int add_tenant(void *ctx, const char *t) {
    json_array_append_new((json_t *)ctx, json_string(t));
    return 0;
}

/* Every tenant id that may hold data, as a JSON array (caller decrefs). */
static vs_err tenants_of(vs_catalog *cat, json_t **out, vs_error *err) {
    *out = json_array();
    if (!*out) return vs_fail(err, VS_ERR_NOMEM, "reindex: tenants");
    vs_err rc = vs_tenant_ids(cat, add_tenant, *out, err);
    if (rc != VS_OK) json_decref(*out), *out = NULL;
    return rc;
}

/* ---- blocks ------------------------------------------------------------------ */

typedef struct block_ctx {
    const char *tenant, *model;
    json_t *entries;           /* [{tenant, detail}] */
} block_ctx;

static int add_block(void *ctx, const char *id, const float *vec, const char *payload) {
    block_ctx *b = ctx;
    (void)vec;
    json_t *pl = json_loads(payload, 0, NULL);
    json_t *d = json_pack("{s:s,s:O*,s:s,s:s}", "block_id", id, "threshold", json_object_get(pl, "threshold"), "reason",
                          "reindex: a block holds a vector of the old model, and the photos it came from are erased, "
                          "so it cannot be made again",
                          "new_model", b->model);
    if (d && json_object_get(pl, "note")) json_object_set(d, "note", json_object_get(pl, "note"));
    if (d) json_array_append_new(b->entries, json_pack("{s:s,s:o}", "tenant", b->tenant, "detail", d));
    json_decref(pl);
    return 0;
}

/* Every block of every tenant in cur's blocks collection, as erasure log
 * entries to be. */
static vs_err collect_blocks(const vs_pipeline *cur, const json_t *tenants, const char *model, json_t **out,
                             vs_error *err) {
    *out = json_array();
    vs_err rc = *out ? VS_OK : vs_fail(err, VS_ERR_NOMEM, "reindex: blocks");
    size_t i;
    json_t *t;
    json_array_foreach(tenants, i, t) {
        if (rc != VS_OK) break;
        block_ctx b = {json_string_value(t), model, *out};
        vs_filter f = {.tenant_id = b.tenant};
        rc = vs_index_scroll_all(cur->index, cur->coll.blocks, &f, 256, add_block, &b, err);
    }
    return rc;
}

/* Refuses blocks unless they may be dropped: names the tenants and counts. */
static vs_err check_blocks(const json_t *blocks, int drop, vs_error *err) {
    if (drop || json_array_size(blocks) == 0) return VS_OK;
    char who[200] = "";
    size_t i;
    json_t *b;
    json_array_foreach(blocks, i, b) {
        const char *t = json_string_value(json_object_get(b, "tenant"));
        if (!strstr(who, t) && strlen(who) + strlen(t) + 3 < sizeof who) {
            if (who[0]) strcat(who, ", ");
            strcat(who, t);
        }
    }
    return vs_fail(err, VS_ERR_INVALID_ARG,
                   "%zu erasure block(s) (tenant %s) hold vectors of the old model and cannot be carried over (the "
                   "photos they came from are erased); nothing was switched. Run again with --drop-blocks "
                   "(\"drop_blocks\":true) to drop them, each recorded in its tenant's erasure log, and block the "
                   "people again with the new model",
                   json_array_size(blocks), who);
}

/* ---- images ------------------------------------------------------------------ */

typedef struct pass {
    const vs_pipeline *tp;
    const vs_reindex_opts *o;
    vs_engine_worker **workers;
    const vs_image_ref *refs;
    int n;
    atomic_int next;
    pthread_mutex_t mu;        /* guards everything below */
    vs_err rc;
    vs_error err;
    int64_t done, total;
} pass;

/* The ingest message that made an image, rebuilt from its record. */
static void msg_of_record(const vs_image_ref *ref, const char *rec, vs_ingest_msg *m) {
    memset(m, 0, sizeof *m);
    snprintf(m->tenant, sizeof m->tenant, "%s", ref->tenant);
    snprintf(m->sha256, sizeof m->sha256, "%s", ref->sha256);
    snprintf(m->bucket, sizeof m->bucket, "raw-images");
    snprintf(m->key, sizeof m->key, "%s/%s", ref->tenant, ref->sha256); /* until found: a missing raw file */
    json_t *o = json_loads(rec ? rec : "{}", 0, NULL);
    static const struct {
        const char *k;
        size_t off, cap;
    } f[4] = {{"site", offsetof(vs_ingest_msg, site), sizeof m->site},
              {"source_url", offsetof(vs_ingest_msg, source_url), sizeof m->source_url},
              {"page_url", offsetof(vs_ingest_msg, page_url), sizeof m->page_url},
              {"external_image_id", offsetof(vs_ingest_msg, external_id), sizeof m->external_id}};
    for (int i = 0; i < 4; i++) {
        const char *v = json_string_value(json_object_get(o, f[i].k));
        if (v && strlen(v) < f[i].cap) memcpy((char *)m + f[i].off, v, strlen(v) + 1);
    }
    json_decref(o);
}

/* Re-embeds one image into tp's collections and stages its record. An image
 * no longer DONE (erased meanwhile) is left alone; one whose raw file is
 * gone is staged FAILED by the pipeline, as any unreadable image is. */
static vs_err reembed_image(const vs_pipeline *tp, vs_engine_worker *w, const vs_image_ref *ref, vs_error *err) {
    vs_image_status st = VS_IMG_QUEUED;
    char *rec = NULL;
    vs_err rc = vs_image_record_get(tp->catalog, ref->tenant, ref->sha256, NULL, &st, &rec, NULL, err);
    if (rc == VS_ERR_NOT_FOUND || (rc == VS_OK && st != VS_IMG_DONE)) {
        vs_free(rec);
        return VS_OK;
    }
    vs_ingest_msg m;
    if (rc == VS_OK) msg_of_record(ref, rec, &m);
    vs_free(rec);
    if (rc == VS_OK) rc = vs_raw_find(tp->store, ref->tenant, ref->sha256, m.key, sizeof m.key, err);
    if (rc == VS_ERR_NOT_FOUND) rc = VS_OK; /* the pipeline records why */
    vs_process_result res;
    if (rc == VS_OK) rc = vs_process_image(tp, w, &m, &res, NULL, err);
    return rc;
}

static void *pass_thread(void *arg) {
    pass *ps = ((void **)arg)[0];
    vs_engine_worker *w = ((void **)arg)[1];
    for (;;) {
        int i = atomic_fetch_add(&ps->next, 1);
        if (i >= ps->n || (ps->o->stop && atomic_load(ps->o->stop))) break;
        pthread_mutex_lock(&ps->mu);
        int failed = ps->rc != VS_OK;
        pthread_mutex_unlock(&ps->mu);
        if (failed) break;
        vs_error e = {0};
        vs_err rc = reembed_image(ps->tp, w, &ps->refs[i], &e);
        pthread_mutex_lock(&ps->mu);
        if (rc != VS_OK && ps->rc == VS_OK) ps->rc = rc, ps->err = e;
        if (rc == VS_OK) ps->done++;
        if (rc == VS_OK && ps->o->progress) ps->o->progress(ps->o->ctx, "images", ps->done, ps->total);
        pthread_mutex_unlock(&ps->mu);
        if (ps->o->throttle_ms > 0) usleep((useconds_t)ps->o->throttle_ms * 1000);
    }
    return NULL;
}

/* One batch of images over the threads. */
static vs_err run_batch(pass *ps, const vs_image_ref *refs, int n, int threads, vs_error *err) {
    ps->refs = refs;
    ps->n = n;
    atomic_store(&ps->next, 0);
    pthread_t th[MAX_THREADS];
    void *args[MAX_THREADS][2];
    int started = 0;
    for (int t = 0; t < threads && t < n; t++) {
        args[t][0] = ps, args[t][1] = ps->workers[t];
        if (pthread_create(&th[t], NULL, pass_thread, args[t]) != 0) break;
        started++;
    }
    if (started == 0) pass_thread(args[0]); /* no thread could start: do it here */
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    if (ps->rc != VS_OK) {
        if (err) *err = ps->err;
        return ps->rc;
    }
    if (ps->o->stop && atomic_load(ps->o->stop)) return vs_fail(err, VS_ERR_CANCELLED, "reindex stopped; run it again to go on");
    return VS_OK;
}

/* Re-embeds every DONE image not staged yet, batch by batch, until none is
 * left (images made DONE meanwhile by a server's workers included). */
static vs_err images_pass(const vs_pipeline *tp, const vs_reindex_opts *o, vs_engine_worker **workers, int threads,
                          vs_error *err) {
    pass ps = {.tp = tp, .o = o, .workers = workers, .rc = VS_OK};
    pthread_mutex_init(&ps.mu, NULL);
    vs_image_ref *refs = vs_malloc(sizeof *refs * IMAGE_BATCH);
    int64_t failed = 0;
    vs_err rc = refs ? vs_reindex_counts(tp->catalog, &ps.total, &ps.done, &failed, err)
                     : vs_fail(err, VS_ERR_NOMEM, "reindex: images");
    for (int n = 0; rc == VS_OK;) {
        rc = vs_reindex_pending(tp->catalog, refs, IMAGE_BATCH, &n, err);
        if (rc != VS_OK || n == 0) break;
        rc = run_batch(&ps, refs, n, threads, err);
    }
    vs_free(refs);
    pthread_mutex_destroy(&ps.mu);
    return rc;
}

/* ---- identities --------------------------------------------------------------- */

typedef struct id_run {
    const vs_pipeline *cur, *tp;
    vs_engine_worker *w;
    const char *tenant;
    vs_reindex_report *rep;
} id_run;

/* The best face of a stored raw image, embedded by w into vec: *ok = 0 when
 * the image is not stored, not readable or holds no face. */
static vs_err embed_raw_best(const id_run *r, const char *sha, float *vec, int *ok, vs_error *err) {
    char key[512];
    uint8_t *buf = NULL;
    size_t len = 0;
    *ok = 0;
    vs_error why = {0};
    vs_err rc = vs_raw_find(r->tp->store, r->tenant, sha, key, sizeof key, err);
    if (rc == VS_OK) rc = vs_store_get(r->tp->store, "raw-images", key, r->tp->cfg.max_image_bytes, &buf, &len, err);
    if (rc == VS_ERR_NOT_FOUND || rc == VS_ERR_TOO_LARGE) return VS_OK;
    if (rc != VS_OK) return rc;
    vs_faces faces = {0};
    vs_decode_opts d = {.max_pixels = r->tp->cfg.max_pixels};
    vs_err drc = vs_engine_analyze_bytes(r->w, buf, len, &d, VS_ANALYZE_EMBED, &faces, NULL, NULL, &why);
    int best = drc == VS_OK ? vs_faces_best(&faces) : -1;
    if (best >= 0) {
        memcpy(vec, faces.faces[best].embedding, sizeof(float) * (size_t)vs_engine_embedding_dim(r->tp->engine));
        *ok = 1;
    }
    /* an unreadable image only loses its sample; anything else is retried */
    if (drc != VS_OK && drc != VS_ERR_CORRUPT && drc != VS_ERR_UNSUPPORTED && drc != VS_ERR_TOO_LARGE) {
        rc = drc;
        *err = why;
    }
    vs_faces_free(&faces);
    vs_free(buf);
    return rc;
}

/* The new vector of one sample (payload pl): its face's, re-embedded with
 * the image, or the best face of its stored source image. *ok = 0: lost. */
static vs_err sample_vector(const id_run *r, json_t *pl, float *vec, int *ok, vs_error *err) {
    const char *face = json_string_value(json_object_get(pl, "face_id"));
    const char *sha = json_string_value(json_object_get(pl, "image_sha256"));
    *ok = 0;
    if (face) {
        vs_err rc = r->tp->index->ops->get(r->tp->index, r->tp->coll.faces, r->tenant, face, vec, NULL, err);
        if (rc == VS_OK) *ok = 1;
        return rc == VS_ERR_NOT_FOUND ? VS_OK : rc;
    }
    return sha && vs_sha256_hex_ok(sha) ? embed_raw_best(r, sha, vec, ok, err) : VS_OK;
}

/* Rebuilds one identity (payload info) in tp's collections. */
static vs_err rebuild_identity(id_run *r, const char *id, json_t *info, vs_error *err) {
    json_t *members = json_object_get(info, "members");
    size_t n = json_array_size(members);
    int dim = vs_engine_embedding_dim(r->tp->engine);
    float *vecs = vs_malloc(sizeof(float) * (size_t)dim * (n ? n : 1));
    vs_identity_sample *s = vs_calloc(n ? n : 1, sizeof *s);
    const char **sids = vs_calloc(n ? n : 1, sizeof *sids);
    json_t **pls = vs_calloc(n ? n : 1, sizeof *pls);
    vs_err rc = vecs && s && sids && pls ? VS_OK : vs_fail(err, VS_ERR_NOMEM, "reindex: identity %s", id);
    int k = 0;
    for (size_t i = 0; i < n && rc == VS_OK; i++) {
        const char *sid = json_string_value(json_array_get(members, i));
        char *pay = NULL;
        vs_err g = sid ? r->cur->index->ops->get(r->cur->index, r->cur->coll.samples, r->tenant, sid, NULL, &pay, err)
                       : VS_ERR_NOT_FOUND;
        if (g == VS_ERR_NOT_FOUND) continue; /* erased already: not a member any more */
        if ((rc = g) != VS_OK) break;
        pls[k] = json_loads(pay, 0, NULL);
        vs_free(pay);
        int ok = 0;
        float *v = vecs + (size_t)k * (size_t)dim;
        rc = pls[k] ? sample_vector(r, pls[k], v, &ok, err) : VS_OK;
        if (rc != VS_OK || !ok) {
            r->rep->samples_lost += rc == VS_OK;
            json_decref(pls[k]), pls[k] = NULL;
            continue;
        }
        s[k] = (vs_identity_sample){v, json_string_value(json_object_get(pls[k], "face_id")),
                                    json_string_value(json_object_get(pls[k], "image_sha256")),
                                    (float)json_number_value(json_object_get(pls[k], "quality_score")), NULL, 0,
                                    json_object_get(pls[k], "crop_key") != NULL};
        sids[k++] = sid;
    }
    if (rc == VS_OK) rc = vs_identity_rebuild(r->tp, r->tenant, id, info, sids, s, k, err);
    if (rc == VS_OK) r->rep->identities++, r->rep->samples += k;
    for (int i = 0; pls && i < k; i++) json_decref(pls[i]);
    vs_free(vecs), vs_free(s), vs_free(sids), vs_free(pls);
    return rc;
}

static int add_identity(void *ctx, const char *id, const float *vec, const char *payload) {
    (void)vec;
    json_t *pl = json_loads(payload, 0, NULL);
    if (pl) json_object_set_new((json_t *)ctx, id, pl);
    return 0;
}

/* Rebuilds every identity of every tenant (whole, on every run). */
static vs_err identities_pass(const vs_pipeline *cur, const vs_pipeline *tp, vs_engine_worker *w, const json_t *tenants,
                              const vs_reindex_opts *o, vs_reindex_report *rep, vs_error *err) {
    rep->identities = rep->samples = rep->samples_lost = 0;
    /* from nothing: samples an earlier run wrote for members erased since must not stay */
    vs_err rc = tp->index->ops->drop_collection(tp->index, tp->coll.identities, err);
    if (rc == VS_OK) rc = tp->index->ops->drop_collection(tp->index, tp->coll.samples, err);
    size_t i;
    json_t *t;
    json_array_foreach(tenants, i, t) {
        if (rc != VS_OK) break;
        id_run r = {cur, tp, w, json_string_value(t), rep};
        json_t *ids = json_object();
        vs_filter f = {.tenant_id = r.tenant};
        rc = ids ? vs_index_scroll_all(cur->index, cur->coll.identities, &f, 256, add_identity, ids, err)
                 : vs_fail(err, VS_ERR_NOMEM, "reindex: identities");
        const char *id;
        json_t *info;
        json_object_foreach(ids, id, info) {
            if (rc != VS_OK) break;
            rc = rebuild_identity(&r, id, info, err);
            if (rc == VS_OK && o->progress) o->progress(o->ctx, "identities", rep->identities, -1);
        }
        json_decref(ids);
        if (rc != VS_OK) break;
    }
    return rc;
}

/* ---- the sweep ---------------------------------------------------------------- */

static int add_sha(void *ctx, const char *id, const float *vec, const char *payload) {
    (void)id, (void)vec;
    json_t *pl = json_loads(payload, 0, NULL);
    const char *sha = json_string_value(json_object_get(pl, "image_sha256"));
    if (sha) vs_strset_add((vs_strset *)ctx, sha);
    json_decref(pl);
    return 0;
}

/* The crop and thumbnail the reindex saved for face id of tp's collection
 * (same keys as the live ones): a face deleted while the reindex ran must
 * not come back on disk either. Files before the point, so a crash in
 * between is swept again by the next run. */
static vs_err sweep_files(const vs_pipeline *tp, const char *tenant, const char *id, vs_error *err) {
    char *payload = NULL;
    vs_err rc = tp->index->ops->get(tp->index, tp->coll.faces, tenant, id, NULL, &payload, err);
    if (rc == VS_ERR_NOT_FOUND) return VS_OK;
    json_t *pl = rc == VS_OK ? json_loads(payload, 0, NULL) : NULL;
    vs_free(payload);
    const char *ck = json_string_value(json_object_get(pl, "crop_key"));
    const char *tk = json_string_value(json_object_get(pl, "thumb_key"));
    if (rc == VS_OK && ck) rc = vs_store_del(tp->store, "face-crops", ck, err);
    if (rc == VS_OK && tk) rc = vs_store_del(tp->store, "face-thumbs", tk, err);
    json_decref(pl);
    return rc;
}

/* Of a DONE image still carrying its old record, deletes from the new
 * collection the faces that record indexed but the old collection no longer
 * has (DELETE /api/v1/faces/{id}: re-detection found them again). */
static vs_err sweep_faces(const vs_pipeline *cur, const vs_pipeline *tp, const char *tenant, const char *rec,
                          int64_t *swept, vs_error *err) {
    json_t *o = json_loads(rec ? rec : "{}", 0, NULL), *f;
    size_t i;
    vs_err rc = VS_OK;
    /* faces_deleted: DELETE /api/v1/faces/{id} moves the face there */
    json_t *all = json_array();
    json_array_extend(all, json_object_get(o, "faces_indexed"));
    json_array_extend(all, json_object_get(o, "faces_deleted"));
    json_array_foreach(all, i, f) {
        const char *id = json_string_value(json_object_get(f, "face_id"));
        if (!id) continue;
        vs_err g = cur->index->ops->get(cur->index, cur->coll.faces, tenant, id, NULL, NULL, err);
        if (g != VS_ERR_NOT_FOUND) {
            if ((rc = g) != VS_OK) break;
            continue;
        }
        int64_t n = 0;
        const char *ids[1] = {id};
        if ((rc = sweep_files(tp, tenant, id, err)) != VS_OK) break;
        if ((rc = tp->index->ops->delete_ids(tp->index, tp->coll.faces, tenant, ids, 1, &n, err)) != VS_OK) break;
        *swept += n;
    }
    json_decref(all);
    json_decref(o);
    return rc;
}

/* Deletes the new points that must not be there: all of an image no longer
 * DONE (erased while the reindex ran), and faces deleted one by one. Runs
 * before the switch, while the old collections and records are intact:
 * erasure is as complete in the new collections as in the old. */
static vs_err sweep(const vs_pipeline *cur, const vs_pipeline *tp, const json_t *tenants, vs_reindex_report *rep,
                    vs_error *err) {
    vs_err rc = VS_OK;
    size_t i;
    json_t *t;
    json_array_foreach(tenants, i, t) {
        const char *tenant = json_string_value(t);
        vs_strset shas = {0};
        vs_filter f = {.tenant_id = tenant};
        rc = vs_index_scroll_all(tp->index, tp->coll.faces, &f, 1024, add_sha, &shas, err);
        for (size_t k = 0; rc == VS_OK && k < shas.n_slots; k++) {
            const char *sha = shas.slots[k];
            vs_image_status st = VS_IMG_QUEUED;
            char *rec = NULL;
            if (!sha) continue;
            vs_err g = vs_image_record_get(tp->catalog, tenant, sha, NULL, &st, &rec, NULL, err);
            if (g != VS_OK && g != VS_ERR_NOT_FOUND) rc = g;
            else if (g == VS_OK && st == VS_IMG_DONE) rc = sweep_faces(cur, tp, tenant, rec, &rep->points_swept, err);
            else {
                vs_filter one = {.tenant_id = tenant, .image_sha256 = sha};
                int64_t n = 0;
                rc = tp->index->ops->delete_filter(tp->index, tp->coll.faces, &one, &n, err);
                rep->points_swept += n;
            }
            vs_free(rec);
        }
        vs_strset_free(&shas);
        if (rc != VS_OK) break;
    }
    return rc;
}

/* ---- switch and drop ------------------------------------------------------------ */

/* The counts of the report that the collections and catalog hold. */
static vs_err count_new(const vs_pipeline *tp, const json_t *tenants, vs_reindex_report *rep, vs_error *err) {
    int64_t images = 0;
    vs_err rc = vs_reindex_counts(tp->catalog, &images, &rep->images, &rep->images_failed, err);
    rep->faces = 0;
    size_t i;
    json_t *t;
    json_array_foreach(tenants, i, t) {
        if (rc != VS_OK) break;
        vs_filter f = {.tenant_id = json_string_value(t)};
        int64_t n = 0;
        rc = tp->index->ops->count(tp->index, tp->coll.faces, &f, &n, err);
        if (rc == VS_ERR_NOT_FOUND) rc = VS_OK, n = 0; /* nothing indexed at all */
        rep->faces += n;
    }
    return rc;
}

/* The switch: staged records, active names, plan phase "drop" and the
 * dropped blocks' log entries, in one catalog transaction. */
static vs_err switch_catalog(const vs_pipeline *cur, plan *pl, const json_t *blocks, vs_error *err) {
    size_t nb = json_array_size(blocks);
    vs_erasure_entry *log = vs_calloc(nb ? nb : 1, sizeof *log);
    char **details = vs_calloc(nb ? nb : 1, sizeof *details);
    char *active = vs_collections_json(&pl->to);
    vs_err rc = log && details && active ? VS_OK : vs_fail(err, VS_ERR_NOMEM, "reindex: switch");
    for (size_t i = 0; rc == VS_OK && i < nb; i++) {
        json_t *b = json_array_get(blocks, i);
        details[i] = json_dumps(json_object_get(b, "detail"), JSON_COMPACT);
        log[i] = (vs_erasure_entry){json_string_value(json_object_get(b, "tenant")), "block_dropped", details[i]};
        if (!details[i]) rc = vs_fail(err, VS_ERR_NOMEM, "reindex: switch");
    }
    plan next = *pl;
    next.dropping = 1;
    char *from = vs_collections_json(&next.from), *to = vs_collections_json(&next.to);
    json_t *po = from && to ? json_pack("{s:o,s:o,s:s,s:s,s:I}", "from", json_loads(from, 0, NULL), "to",
                                        json_loads(to, 0, NULL), "model", next.model, "phase", "drop", "at",
                                        (json_int_t)vs_wall_ms())
                            : NULL;
    char *ps = po ? json_dumps(po, JSON_COMPACT) : NULL;
    if (rc == VS_OK && !ps) rc = vs_fail(err, VS_ERR_NOMEM, "reindex: switch");
    vs_setting set[2] = {{VS_SETTING_COLLECTIONS, active}, {VS_SETTING_REINDEX, ps}};
    if (rc == VS_OK) rc = vs_reindex_switch(cur->catalog, set, 2, log, (int)nb, err);
    if (rc == VS_OK) pl->dropping = 1;
    for (size_t i = 0; details && i < nb; i++) free(details[i]);
    vs_free(log), vs_free(details);
    free(active), free(from), free(to), free(ps);
    json_decref(po);
    return rc;
}

/* After the switch: the old collections go, then the plan. */
static vs_err finish_drop(const vs_pipeline *cur, const plan *pl, const vs_reindex_opts *o, vs_error *err) {
    vs_err rc = drop_all(cur->index, &pl->from, err);
    if (rc == VS_OK && o->progress) o->progress(o->ctx, "drop", 4, 4); /* collections */
    if (rc == VS_OK) rc = vs_setting_put(cur->catalog, VS_SETTING_REINDEX, NULL, err);
    return rc;
}

/* ---- the run ---------------------------------------------------------------------- */

/* The plan to follow: resumed, abandoned for another model, or new.
 * *nothing = 1 when the data is on the target model already. */
static vs_err plan_get(const vs_pipeline *cur, const char *model, plan *pl, vs_reindex_report *rep, int *nothing,
                       vs_error *err) {
    int found = 0;
    *nothing = 0;
    vs_err rc = plan_load(cur->catalog, pl, &found, err);
    if (rc != VS_OK) return rc;
    if (found && (pl->dropping || !strcmp(pl->model, model))) {
        rep->resumed = 1;
        return VS_OK;
    }
    if (found) { /* a reindex to another model was under way: its collections go */
        rc = drop_all(cur->index, &pl->to, err);
        if (rc == VS_OK) rc = vs_setting_put(cur->catalog, VS_SETTING_REINDEX, NULL, err);
        if (rc != VS_OK) return rc;
    }
    if (!strcmp(vs_engine_model_id(cur->engine), model)) {
        *nothing = 1;
        return VS_OK;
    }
    return plan_new(cur, model, pl, err);
}

/* Everything from the images to the switch, with the engine workers. */
static vs_err fill_and_switch(const vs_pipeline *cur, const vs_pipeline *tp, plan *pl, const vs_reindex_opts *o,
                              vs_engine_worker **workers, int threads, vs_reindex_report *rep, vs_error *err) {
    json_t *tenants = NULL, *blocks = NULL;
    const vs_reindex_hooks *h = &o->hooks;
    vs_err rc = tenants_of(cur->catalog, &tenants, err);
    if (rc == VS_OK) rc = collect_blocks(cur, tenants, pl->model, &blocks, err);
    if (rc == VS_OK) rc = check_blocks(blocks, o->drop_blocks, err); /* before hours of work */
    if (rc == VS_OK && h->started) h->started(h->ctx, &pl->to);
    if (rc == VS_OK) rc = images_pass(tp, o, workers, threads, err);
    int paused = rc == VS_OK && h->pause;
    if (paused) h->pause(h->ctx); /* from here to the switch no image, face, identity or block changes */
    json_decref(blocks), blocks = NULL;
    json_decref(tenants), tenants = NULL;
    if (rc == VS_OK) rc = tenants_of(cur->catalog, &tenants, err); /* new ones may have come meanwhile */
    if (rc == VS_OK) rc = images_pass(tp, o, workers, threads, err); /* what arrived meanwhile */
    if (rc == VS_OK) rc = collect_blocks(cur, tenants, pl->model, &blocks, err);
    if (rc == VS_OK) rc = check_blocks(blocks, o->drop_blocks, err);
    if (rc == VS_OK) rc = identities_pass(cur, tp, workers[0], tenants, o, rep, err);
    if (rc == VS_OK) rc = sweep(cur, tp, tenants, rep, err);
    /* the new faces collection exists even with nothing in it: it is what pins the model */
    if (rc == VS_OK)
        rc = tp->index->ops->ensure_collection(tp->index, tp->coll.faces, vs_engine_embedding_dim(tp->engine),
                                               pl->model, err);
    if (rc == VS_OK) rc = count_new(tp, tenants, rep, err);
    if (rc == VS_OK && o->progress) o->progress(o->ctx, "switch", rep->images, rep->images);
    if (rc == VS_OK) rc = switch_catalog(cur, pl, blocks, err);
    if (rc == VS_OK) rep->blocks_dropped = (int64_t)json_array_size(blocks), rep->switched = 1;
    if (rc == VS_OK && h->switched) h->switched(h->ctx, &pl->to);
    if (paused) h->resume(h->ctx);
    json_decref(blocks);
    json_decref(tenants);
    return rc;
}

vs_err vs_reindex_run(const vs_pipeline *cur, const vs_reindex_opts *o, vs_reindex_report *rep, vs_error *err) {
    int64_t t0 = vs_now_ms();
    memset(rep, 0, sizeof *rep);
    const char *model = vs_engine_model_id(o->engine);
    snprintf(rep->from_model, sizeof rep->from_model, "%s", vs_engine_model_id(cur->engine));
    snprintf(rep->to_model, sizeof rep->to_model, "%s", model);
    rep->from = rep->to = cur->coll;
    if (!cur->catalog || !cur->index || cur->results)
        return vs_fail(err, VS_ERR_INVALID_ARG, "reindex: runs where the catalog and the index are (the API process)");
    plan pl;
    int nothing = 0;
    vs_err rc = plan_get(cur, model, &pl, rep, &nothing, err);
    if (rc != VS_OK || nothing) return rc;
    rep->from = pl.from;
    rep->to = pl.to;
    vs_pipeline tp = *cur; /* the new model's pipeline: same backends, new engine and names, records staged */
    tp.engine = o->engine;
    tp.coll = pl.to;
    tp.reindex = 1;
    int threads = o->threads < 1 ? 1 : o->threads > MAX_THREADS ? MAX_THREADS : o->threads;
    vs_engine_worker *workers[MAX_THREADS] = {0};
    for (int i = 0; i < threads && rc == VS_OK && !pl.dropping; i++) rc = vs_engine_worker_new(o->engine, &workers[i], err);
    if (rc == VS_OK && !pl.dropping) rc = fill_and_switch(cur, &tp, &pl, o, workers, threads, rep, err);
    for (int i = 0; i < threads; i++) vs_engine_worker_free(workers[i]);
    if (rc == VS_OK) rc = finish_drop(cur, &pl, o, err);
    if (rc == VS_OK && !rep->switched) rep->switched = 1; /* the switch was made by an earlier run */
    rep->seconds = (double)(vs_now_ms() - t0) / 1000.0;
    return rc;
}

static json_t *side_json(const char *model, const vs_collections *c) {
    return json_pack("{s:s,s:s,s:s,s:s,s:s}", "model", model, "faces", c->faces, "identities", c->identities, "samples",
                     c->samples, "blocks", c->blocks);
}

json_t *vs_reindex_report_json(const vs_reindex_report *r) {
    return json_pack("{s:b,s:b,s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f}", "switched", r->switched, "resumed",
                     r->resumed, "from", side_json(r->from_model, &r->from), "to", side_json(r->to_model, &r->to),
                     "images", (json_int_t)r->images, "images_failed", (json_int_t)r->images_failed, "faces",
                     (json_int_t)r->faces, "identities", (json_int_t)r->identities, "samples", (json_int_t)r->samples,
                     "samples_lost", (json_int_t)r->samples_lost, "blocks_dropped", (json_int_t)r->blocks_dropped,
                     "points_swept", (json_int_t)r->points_swept, "seconds", r->seconds);
}
