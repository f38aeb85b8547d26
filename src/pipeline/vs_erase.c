/* vs_erase.c - erasure of an image, of a person (every image with a face
 * like a given one), and blocks against the person's future images. Works
 * through the store, index and catalog interfaces only, so it is the same
 * for the embedded and the distributed system. */
#include "vs_erase.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_crawl_jobs.h"
#include "vs_events.h"
#include "vs_hash.h"
#include "vs_identity.h"
#include "vs_people.h"
#include "vs_strset.h"

/* Faces one search of a person's erasure returns; a person with more is
 * handled in rounds (erased faces leave the index, the next round finds the
 * rest). */
#define ERASE_ROUND_K 1000
/* Blocks looked at per face when deciding whether it is blocked: the best
 * few are enough, thresholds differ per block. */
#define BLOCK_MATCH_K 8

/* The buckets an image has files in, and what follows "{tenant}/{sha256}"
 * in their names (DESIGN.md's keys). */
static const struct {
    const char *bucket, *suffix;
} k_files[4] = {{"face-crops", "_face_"}, {"face-thumbs", "_face_"}, {"thumbnails", "_thumb"}, {"raw-images", "."}};

/* Images whose files one listing removes: the sha256 set of a tenant. */
typedef struct files_ctx {
    const vs_pipeline *p;
    const char *bucket, *suffix;
    const vs_strset *shas;     /* NULL: every key listed goes */
    size_t tenant_len;
    vs_err rc;
    vs_error *err;
} files_ctx;

/* List callback: deletes the key when it is a file of one of the images. */
static int delete_listed(void *ctx, const char *key, size_t size) {
    files_ctx *d = ctx;
    (void)size;
    if (d->shas) { /* "{tenant}/{sha256}{suffix}..." */
        const char *name = key + d->tenant_len + 1;
        char sha[65];
        if (strlen(name) < 64 || strncmp(name + 64, d->suffix, strlen(d->suffix)) != 0) return 0;
        memcpy(sha, name, 64);
        sha[64] = '\0';
        if (!vs_strset_has(d->shas, sha)) return 0;
    }
    d->rc = vs_store_del(d->p->store, d->bucket, key, d->err);
    return d->rc != VS_OK;
}

/* Deletes the files of one image: one listing of its own name per bucket. */
static vs_err erase_files_one(const vs_pipeline *p, const char *tenant, const char *sha256, vs_error *err) {
    vs_err rc = VS_OK;
    for (int b = 0; b < 4 && rc == VS_OK; b++) {
        char prefix[512];
        snprintf(prefix, sizeof prefix, "%s/%s%s", tenant, sha256, k_files[b].suffix);
        files_ctx d = {p, k_files[b].bucket, k_files[b].suffix, NULL, 0, VS_OK, err};
        rc = p->store->ops->list(p->store, k_files[b].bucket, prefix, delete_listed, &d, err);
        if (rc == VS_OK) rc = d.rc;
    }
    return rc;
}

/* Deletes the files of many images of a tenant with one listing of the
 * tenant's folder per bucket, instead of one listing per image: the file
 * store reads the whole folder for any listing in it, and S3 pages 1000
 * keys per request. */
static vs_err erase_files_many(const vs_pipeline *p, const char *tenant, const vs_strset *shas, vs_error *err) {
    vs_err rc = VS_OK;
    char prefix[VS_TENANT_MAX + 2];
    snprintf(prefix, sizeof prefix, "%s/", tenant);
    for (int b = 0; b < 4 && rc == VS_OK; b++) {
        files_ctx d = {p, k_files[b].bucket, k_files[b].suffix, shas, strlen(tenant), VS_OK, err};
        rc = p->store->ops->list(p->store, k_files[b].bucket, prefix, delete_listed, &d, err);
        if (rc == VS_OK) rc = d.rc;
    }
    return rc;
}

/* The rest of an image once its files are gone: identity samples, crawl
 * rows, the record (or its ERASED marker), and its points last: while they
 * remain, a retried erasure of the person finds the image again. */
static vs_err erase_rest(const vs_pipeline *p, const char *tenant, const char *sha256, int suppress, int64_t *faces,
                         int64_t *rows, vs_error *err) {
    vs_filter f = {.tenant_id = tenant, .image_sha256 = sha256};
    vs_err rc = vs_identity_forget(p, tenant, sha256, NULL, err);
    if (rc == VS_OK && p->people) rc = vs_people_forget(p->people, tenant, sha256, NULL, err);
    if (rc == VS_OK && p->crawl_db) rc = vs_crawl_images_forget(p->crawl_db, tenant, sha256, rows, err);
    if (rc == VS_OK) rc = vs_event_forget(p->catalog, tenant, sha256, NULL, err); /* events naming it */
    if (rc == VS_OK) {
        rc = suppress ? vs_image_record_mark_erased(p->catalog, tenant, sha256, err)
                      : vs_image_record_delete(p->catalog, tenant, sha256, err);
        if (rc == VS_ERR_NOT_FOUND) rc = VS_OK; /* no record to delete */
    }
    if (rc == VS_OK) {
        rc = p->index->ops->delete_filter(p->index, p->coll.faces, &f, faces, err);
        if (rc == VS_ERR_NOT_FOUND) rc = VS_OK; /* no collection yet */
    }
    if (rc == VS_OK && p->shadow) { /* a reindex may have re-embedded it already */
        rc = p->index->ops->delete_filter(p->index, p->shadow->faces, &f, NULL, err);
        if (rc == VS_ERR_NOT_FOUND) rc = VS_OK;
    }
    return rc;
}

vs_err vs_erase_image(const vs_pipeline *p, const char *tenant, const char *sha256, int suppress,
                      int64_t *faces_deleted, int64_t *crawl_rows, vs_error *err) {
    int64_t n = 0, rows = 0;
    vs_err rc = erase_files_one(p, tenant, sha256, err);
    if (rc == VS_OK) rc = erase_rest(p, tenant, sha256, suppress, &n, &rows, err);
    if (faces_deleted) *faces_deleted = n;
    if (crawl_rows) *crawl_rows = rows;
    return rc;
}

vs_err vs_erase_log(const vs_pipeline *p, const char *tenant, const char *what, json_t *detail, vs_error *err) {
    char *s = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
    json_decref(detail);
    vs_err rc = s ? vs_erasure_log_add(p->catalog, tenant, what, s, err) : vs_fail(err, VS_ERR_NOMEM, "erasure log");
    free(s);
    return rc;
}

/* ---- the record of an erasure ------------------------------------------ */

/* Begins the log entry of an erasure (vs_erasure_begin) before anything is
 * deleted: d (the caller's, kept for the final detail) gets state "started"
 * and a request id, and the n images named go in the same commit. */
static vs_err record_begin(const vs_pipeline *p, const char *tenant, const char *what, json_t *d,
                           const char *const *shas, int n, int64_t *id, vs_error *err) {
    char rid[VS_UUID_STR];
    if (vs_uuid_random("visage-erasure", tenant, rid) != 0) return vs_fail(err, VS_ERR_BACKEND, "erasure record: no randomness");
    json_object_set_new(d, "state", json_string("started"));
    json_object_set_new(d, "request_id", json_string(rid));
    char *s = json_dumps(d, JSON_COMPACT);
    vs_err rc = s ? vs_erasure_begin(p->catalog, tenant, what, s, shas, n, id, err) : vs_fail(err, VS_ERR_NOMEM, "erasure record");
    free(s);
    return rc;
}

/* Closes the entry with d as its detail, state "done"; d must name every
 * image the entry named (the catalog drops its own list now). */
static vs_err record_finish(const vs_pipeline *p, int64_t id, json_t *d, vs_error *err) {
    json_object_set_new(d, "state", json_string("done"));
    char *s = json_dumps(d, JSON_COMPACT);
    vs_err rc = s ? vs_erasure_finish(p->catalog, id, s, err) : vs_fail(err, VS_ERR_NOMEM, "erasure record");
    free(s);
    return rc;
}

vs_err vs_erase_image_recorded(const vs_pipeline *p, const char *tenant, const char *sha256, int suppress,
                               const char *what, json_t *detail, int64_t *faces_deleted, int64_t *crawl_rows,
                               vs_error *err) {
    int64_t id = 0, faces = 0;
    const char *one[1] = {sha256};
    vs_err rc = detail ? VS_OK : vs_fail(err, VS_ERR_NOMEM, "erasure record");
    if (rc == VS_OK) {
        json_object_set_new(detail, "image_sha256", json_string(sha256));
        json_object_set_new(detail, "suppressed", json_boolean(suppress));
        rc = record_begin(p, tenant, what, detail, one, 1, &id, err);
    }
    if (rc == VS_OK) rc = vs_erase_image(p, tenant, sha256, suppress, &faces, crawl_rows, err);
    if (rc == VS_OK) {
        json_object_set_new(detail, "images", json_pack("[s]", sha256));
        json_object_set_new(detail, "images_erased", json_integer(1));
        json_object_set_new(detail, "faces_deleted", json_integer(faces));
        rc = record_finish(p, id, detail, err);
    }
    json_decref(detail);
    if (faces_deleted) *faces_deleted = faces;
    return rc;
}

vs_err vs_erase_blocked(const vs_pipeline *p, const char *tenant, const char *sha256, const char *block_id, vs_error *err) {
    return vs_erase_image_recorded(p, tenant, sha256, 1, "blocked_on_arrival", json_pack("{s:s}", "block_id", block_id),
                                   NULL, NULL, err);
}

/* ---- one face ------------------------------------------------------------ */

/* Removes every trace of one face: crop and thumbnail, the identity samples
 * taken from it, its entry in the image record (moved to faces_deleted),
 * and its points last, so that until the end a plain retry still finds the
 * face. Each step is idempotent: a resumed deletion runs them all again.
 * crop/thumb/sha256 may be NULL (not known). *points = points removed. */
static vs_err face_steps(const vs_pipeline *p, const char *tenant, const char *face_id, const char *sha256,
                         const char *crop, const char *thumb, int64_t *points, vs_error *err) {
    const char *ids[1] = {face_id};
    vs_err rc = crop ? vs_store_del(p->store, "face-crops", crop, err) : VS_OK;
    if (rc == VS_OK && thumb) rc = vs_store_del(p->store, "face-thumbs", thumb, err);
    if (rc == VS_OK) rc = vs_identity_forget(p, tenant, NULL, face_id, err);
    if (rc == VS_OK && p->people) rc = vs_people_forget(p->people, tenant, NULL, face_id, err);
    if (rc == VS_OK) rc = vs_event_forget(p->catalog, tenant, NULL, face_id, err); /* events naming it */
    if (rc == VS_OK && sha256) rc = vs_image_record_drop_face(p->catalog, tenant, sha256, face_id, err);
    if (rc == VS_OK) {
        rc = p->index->ops->delete_ids(p->index, p->coll.faces, tenant, ids, 1, points, err);
        if (rc == VS_ERR_NOT_FOUND) rc = VS_OK; /* no collection yet */
    }
    if (rc == VS_OK && p->shadow) { /* a reindex may have re-embedded it already */
        rc = p->index->ops->delete_ids(p->index, p->shadow->faces, tenant, ids, 1, NULL, err);
        if (rc == VS_ERR_NOT_FOUND) rc = VS_OK;
    }
    return rc;
}

vs_err vs_erase_face(const vs_pipeline *p, const char *tenant, const char *face_id, const char *payload_json,
                     int64_t *deleted, vs_error *err) {
    int64_t id = 0, n = 0;
    *deleted = 0;
    json_t *pl = json_loads(payload_json ? payload_json : "{}", 0, NULL);
    const char *sha = json_string_value(json_object_get(pl, "image_sha256"));
    json_t *fi = json_object_get(pl, "face_index");
    json_t *d = json_pack("{s:s}", "face_id", face_id);
    vs_err rc = d ? VS_OK : vs_fail(err, VS_ERR_NOMEM, "erase face %s", face_id);
    if (rc == VS_OK && sha && vs_sha256_hex_ok(sha)) json_object_set_new(d, "image_sha256", json_string(sha));
    if (rc == VS_OK && json_is_integer(fi)) json_object_set(d, "face_index", fi);
    /* the entry first: a crash from here on leaves it started, and the next
     * start-up finishes the deletion from what it names */
    if (rc == VS_OK) rc = record_begin(p, tenant, "face", d, NULL, 0, &id, err);
    if (rc == VS_OK)
        rc = face_steps(p, tenant, face_id, json_string_value(json_object_get(d, "image_sha256")),
                        json_string_value(json_object_get(pl, "crop_key")),
                        json_string_value(json_object_get(pl, "thumb_key")), &n, err);
    if (rc == VS_OK) {
        json_object_set_new(d, "faces_deleted", json_integer(n));
        rc = record_finish(p, id, d, err);
    }
    if (rc == VS_OK) *deleted = n;
    json_decref(d);
    json_decref(pl);
    return rc;
}

/* ---- a person ------------------------------------------------------------ */

/* One matching image of the report: its sha, best score and faces. */
static json_t *image_entry(const vs_hit *h, json_t *pl, const char *sha) {
    json_t *o = json_pack("{s:s,s:f,s:[s]}", "image_sha256", sha, "score", (double)h->score, "face_ids", h->id);
    static const char *copy[] = {"source_url", "site", "page_url"};
    for (size_t i = 0; o && i < sizeof copy / sizeof copy[0]; i++)
        if (json_object_get(pl, copy[i])) json_object_set(o, copy[i], json_object_get(pl, copy[i]));
    return o;
}

typedef struct person_run {
    const vs_pipeline *p;
    const char *tenant;
    const vs_erase_person_opts *o;
    json_t *images;        /* the report's list; entries by sha in `by_sha` */
    json_t *by_sha;
    int64_t erased, faces;
    int full;              /* max_images reached */
    int64_t record;        /* the erasure log entry, begun before the first round */
} person_run;

/* Takes one round of hits (best first) into the report; the new images'
 * sha256 go into `fresh`. */
static vs_err take_hits(person_run *r, const vs_hit *hits, int n, vs_strset *fresh, vs_error *err) {
    for (int i = 0; i < n; i++) {
        json_t *pl = json_loads(hits[i].payload_json, 0, NULL);
        const char *sha = json_string_value(json_object_get(pl, "image_sha256"));
        json_t *known = sha ? json_object_get(r->by_sha, sha) : NULL;
        if (known) { /* another face of an image already listed */
            json_array_append_new(json_object_get(known, "face_ids"), json_string(hits[i].id));
        } else if (sha && vs_sha256_hex_ok(sha)) {
            if ((int)json_array_size(r->images) >= r->o->max_images) {
                r->full = 1;
                json_decref(pl);
                break;
            }
            json_t *e = image_entry(&hits[i], pl, sha);
            if (!e || vs_strset_add(fresh, sha) < 0) {
                json_decref(e);
                json_decref(pl);
                return vs_fail(err, VS_ERR_NOMEM, "erase person: report");
            }
            json_array_append_new(r->images, e);
            json_object_set(r->by_sha, sha, e);
        }
        json_decref(pl);
    }
    return VS_OK;
}

/* Below this many images a round lists each image's own files; from it on,
 * the tenant's folders once. */
#define ERASE_BATCH_MIN 8

/* Erases a set of images of a tenant named in erasure log entry `record`:
 * their files, then the rest of each, marking each erased in the entry once
 * it is gone. Adds to *erased and *faces. */
static vs_err erase_set(const vs_pipeline *p, const char *tenant, int suppress, int64_t record, const vs_strset *set,
                        int64_t *erased, int64_t *faces, vs_error *err) {
    vs_err rc = VS_OK;
    if (set->n >= ERASE_BATCH_MIN) rc = erase_files_many(p, tenant, set, err);
    for (size_t i = 0; i < set->n_slots && rc == VS_OK; i++) {
        const char *sha = set->slots[i];
        if (!sha) continue;
        int64_t nf = 0;
        if (set->n < ERASE_BATCH_MIN) rc = erase_files_one(p, tenant, sha, err);
        if (rc == VS_OK) rc = erase_rest(p, tenant, sha, suppress, &nf, NULL, err);
        if (rc == VS_OK) rc = vs_erasure_image_done(p->catalog, record, sha, err);
        if (rc == VS_OK) ++*erased, *faces += nf;
    }
    return rc;
}

/* Names the images of one round in the log entry (one durable commit), and
 * only then erases them: whatever a crash cuts, the entry names every image
 * that is gone. */
static vs_err erase_round(person_run *r, const vs_strset *fresh, vs_error *err) {
    const char **shas = fresh->n ? vs_malloc(sizeof *shas * fresh->n) : NULL;
    if (fresh->n && !shas) return vs_fail(err, VS_ERR_NOMEM, "erase person: round of %zu images", fresh->n);
    int n = 0;
    for (size_t i = 0; i < fresh->n_slots; i++)
        if (fresh->slots[i]) shas[n++] = fresh->slots[i];
    vs_err rc = vs_erasure_plan(r->p->catalog, r->record, shas, n, err);
    vs_free(shas);
    return rc == VS_OK ? erase_set(r->p, r->tenant, r->o->suppress, r->record, fresh, &r->erased, &r->faces, err) : rc;
}

/* Searches and erases in rounds until no face matches, max_images is
 * reached, or a round brings nothing new (a point the erasure could not
 * remove must not loop forever). *complete = nothing left to find. */
static vs_err person_rounds(person_run *r, const float *vec, int *complete, vs_error *err) {
    /* exact: an erasure must find every matching face, not most of them */
    vs_filter f = {.tenant_id = r->tenant, .exact = 1};
    *complete = 0;
    for (;;) {
        vs_hit *hits = NULL;
        int n = 0;
        vs_strset fresh = {0}; /* this round's new images */
        vs_err rc = r->p->index->ops->search(r->p->index, r->p->coll.faces, vec, &f, ERASE_ROUND_K, r->o->threshold,
                                             &hits, &n, err);
        if (rc == VS_ERR_NOT_FOUND) { /* nothing indexed yet */
            *complete = 1;
            return VS_OK;
        }
        if (rc != VS_OK) return rc;
        if (r->o->dry_run) { /* in the report only, so one round sees all it can */
            rc = take_hits(r, hits, n, &fresh, err);
            *complete = rc == VS_OK && !r->full && n < ERASE_ROUND_K;
            vs_hits_free(hits, n);
            vs_strset_free(&fresh);
            return rc;
        }
        if (n == 0) {
            vs_hits_free(hits, n);
            *complete = 1;
            return VS_OK;
        }
        rc = take_hits(r, hits, n, &fresh, err);
        vs_hits_free(hits, n);
        size_t added = fresh.n;
        if (rc == VS_OK) rc = erase_round(r, &fresh, err);
        vs_strset_free(&fresh);
        if (rc != VS_OK || r->full) return rc;
        if (added == 0)
            return vs_fail(err, VS_ERR_BACKEND, "erase person: %d matching faces remain in the index after their images were erased",
                           n);
    }
}

/* The begun entry of a person's erasure: what it is about (never the
 * vector). Its images are named round by round. */
static json_t *person_detail(const vs_erase_person_opts *o, const char *block_id) {
    json_t *d = json_pack("{s:f,s:b}", "threshold", (double)o->threshold, "suppressed", o->suppress);
    if (d && block_id[0]) json_object_set_new(d, "block_id", json_string(block_id));
    if (d && o->note && *o->note) json_object_set_new(d, "note", json_string(o->note));
    return d;
}

/* Completes the log entry of a person's erasure: the report's counts, the
 * images by sha256 only. */
static vs_err finish_person(const vs_pipeline *p, int64_t record, json_t *d, json_t *report, vs_error *err) {
    json_t *shas = json_array(), *e;
    size_t i;
    json_array_foreach(json_object_get(report, "images"), i, e) json_array_append(shas, json_object_get(e, "image_sha256"));
    static const char *copy[] = {"images_erased", "faces_deleted", "complete"};
    for (size_t k = 0; k < sizeof copy / sizeof copy[0]; k++) json_object_set(d, copy[k], json_object_get(report, copy[k]));
    vs_err rc = shas && !json_object_set_new(d, "images", shas) ? record_finish(p, record, d, err)
                                                                : vs_fail(err, VS_ERR_NOMEM, "erasure log");
    if (rc != VS_OK) { /* the images are gone; say so, not just that a write failed */
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        rc = vs_fail(err, rc, "erased %lld images, but the erasure log could not be written: %s",
                     (long long)json_integer_value(json_object_get(report, "images_erased")), why);
    }
    return rc;
}

vs_err vs_erase_person(const vs_pipeline *p, const char *tenant, const float *vec, const vs_erase_person_opts *o,
                       json_t **report, vs_error *err) {
    *report = NULL;
    if (o->max_images < 1 || o->max_images > VS_ERASE_MAX_IMAGES)
        return vs_fail(err, VS_ERR_INVALID_ARG, "max_images must be 1..%d", VS_ERASE_MAX_IMAGES);
    char block_id[VS_POINT_ID_MAX] = "";
    vs_err rc = VS_OK;
    /* the block first: an image of the person arriving while the old ones
     * are erased is caught by it instead of slipping in between */
    if (o->block && !o->dry_run) rc = vs_block_add(p, tenant, vec, o->threshold, o->note, block_id, err);
    if (rc != VS_OK) return rc;
    person_run r = {.p = p, .tenant = tenant, .o = o, .images = json_array(), .by_sha = json_object()};
    json_t *d = o->dry_run ? NULL : person_detail(o, block_id);
    int complete = 0;
    if (!r.images || !r.by_sha || (!o->dry_run && !d)) rc = vs_fail(err, VS_ERR_NOMEM, "erase person");
    /* the entry before the first image goes: it is what a crash leaves */
    if (rc == VS_OK && d) rc = record_begin(p, tenant, "person", d, NULL, 0, &r.record, err);
    if (rc == VS_OK) rc = person_rounds(&r, vec, &complete, err);
    if (rc == VS_OK) {
        *report = json_pack("{s:b,s:f,s:O,s:I,s:I,s:b}", "dry_run", o->dry_run, "threshold", (double)o->threshold, "images",
                            r.images, "images_erased", (json_int_t)r.erased, "faces_deleted", (json_int_t)r.faces,
                            "complete", complete);
        if (!*report) rc = vs_fail(err, VS_ERR_NOMEM, "erase person: report");
        else if (block_id[0]) json_object_set_new(*report, "block_id", json_string(block_id));
    }
    if (rc == VS_OK && !o->dry_run) rc = finish_person(p, r.record, d, *report, err);
    if (rc != VS_OK) {
        json_decref(*report);
        *report = NULL;
    }
    json_decref(d);
    json_decref(r.images);
    json_decref(r.by_sha);
    return rc;
}

/* ---- finishing what a crash cut short ------------------------------------ */

/* Start-up: the entries still in progress, copied out of the catalog (its
 * callbacks may not call it back), as {id, tenant, what, detail}. */
static int collect_open(void *ctx, int64_t id, const char *tenant, const char *what, const char *detail_json) {
    json_t *d = json_loads(detail_json, 0, NULL);
    json_t *e = json_pack("{s:I,s:s,s:s,s:o}", "id", (json_int_t)id, "tenant", tenant, "what", what, "detail",
                          json_is_object(d) ? d : json_object());
    if (!json_is_object(d)) json_decref(d);
    return !e || json_array_append_new((json_t *)ctx, e) != 0;
}

/* The images an entry named: every one into `all` (in order), those not
 * marked erased into `pending`. */
typedef struct named_images {
    json_t *all;
    vs_strset pending;
    int failed;
} named_images;

static int collect_image(void *ctx, const char *sha256, int done) {
    named_images *ni = ctx;
    if (json_array_append_new(ni->all, json_string(sha256)) != 0 || (!done && vs_strset_add(&ni->pending, sha256) < 0))
        ni->failed = 1;
    return ni->failed;
}

/* Finishes one erasure a crash cut short: the images it named and had not
 * erased yet are erased now (the tenant asked for it), and the entry is
 * completed with all of them, marked resumed. A person's erasure is not
 * searched again (the log never keeps the vector): "complete" says false,
 * so the tenant knows to ask again for images not yet found then. */
/* Finishes a face deletion a crash cut short: every step again, the files
 * by the names the pipeline gives them (the point that held the keys may be
 * gone), then the entry completed, marked resumed. faces_deleted is 1: the
 * face was there when the entry was begun, and it is gone now. */
static vs_err resume_face(const vs_pipeline *p, int64_t id, const char *tenant, json_t *d, vs_error *err) {
    const char *face = json_string_value(json_object_get(d, "face_id"));
    const char *sha = json_string_value(json_object_get(d, "image_sha256"));
    json_t *fi = json_object_get(d, "face_index");
    if (!face || !*face || strlen(face) >= VS_POINT_ID_MAX)
        return vs_fail(err, VS_ERR_CORRUPT, "resume erasure %lld: a face entry without a face_id", (long long)id);
    if (sha && !vs_sha256_hex_ok(sha)) sha = NULL;
    char crop[VS_FACE_KEY_MAX], thumb[VS_FACE_KEY_MAX];
    int keys = sha && json_is_integer(fi) && json_integer_value(fi) >= 0 && json_integer_value(fi) < 100000;
    if (keys) vs_face_blob_keys(tenant, sha, (int)json_integer_value(fi), crop, thumb);
    vs_err rc = face_steps(p, tenant, face, sha, keys ? crop : NULL, keys ? thumb : NULL, NULL, err);
    if (rc != VS_OK) return rc;
    json_object_set_new(d, "faces_deleted", json_integer(1));
    json_object_set_new(d, "resumed", json_true());
    json_object_set_new(d, "resumed_at", json_integer(vs_wall_ms()));
    return record_finish(p, id, d, err);
}

static vs_err block_drop(const vs_pipeline *p, const char *tenant, const char *id, vs_error *err);

/* Finishes lifting a block that a crash cut after its entry was begun. */
static vs_err resume_block(const vs_pipeline *p, int64_t id, const char *tenant, json_t *d, vs_error *err) {
    const char *block = json_string_value(json_object_get(d, "block_id"));
    if (!block || !*block || strlen(block) >= VS_POINT_ID_MAX)
        return vs_fail(err, VS_ERR_CORRUPT, "resume erasure %lld: a block_lifted entry without a block_id", (long long)id);
    vs_err rc = block_drop(p, tenant, block, err);
    if (rc != VS_OK) return rc;
    json_object_set_new(d, "resumed", json_true());
    json_object_set_new(d, "resumed_at", json_integer(vs_wall_ms()));
    return record_finish(p, id, d, err);
}

static vs_err resume_one(const vs_pipeline *p, json_t *e, vs_error *err) {
    int64_t id = json_integer_value(json_object_get(e, "id")), erased = 0, faces = 0; /* counts of this run only */
    const char *tenant = json_string_value(json_object_get(e, "tenant"));
    json_t *d = json_object_get(e, "detail");
    vs_err rc = vs_tenant_check(tenant, "resume erasure", err);
    const char *what = json_string_value(json_object_get(e, "what"));
    if (rc == VS_OK && !strcmp(what, "face")) return resume_face(p, id, tenant, d, err);
    if (rc == VS_OK && !strcmp(what, "block_lifted")) return resume_block(p, id, tenant, d, err);
    named_images ni = {.all = json_array()};
    if (rc == VS_OK && !ni.all) rc = vs_fail(err, VS_ERR_NOMEM, "resume erasure %lld", (long long)id);
    if (rc == VS_OK) rc = vs_erasure_images(p->catalog, id, collect_image, &ni, err);
    if (rc == VS_OK && ni.failed) rc = vs_fail(err, VS_ERR_NOMEM, "resume erasure %lld: images", (long long)id);
    json_t *sup = json_object_get(d, "suppressed"); /* absent: erased images stay erased */
    if (rc == VS_OK) rc = erase_set(p, tenant, sup ? json_is_true(sup) : 1, id, &ni.pending, &erased, &faces, err);
    if (rc == VS_OK) {
        json_object_set_new(d, "images", ni.all);
        ni.all = NULL;
        json_object_set_new(d, "images_erased", json_integer((json_int_t)json_array_size(json_object_get(d, "images"))));
        json_object_set_new(d, "resumed", json_true());
        json_object_set_new(d, "resumed_at", json_integer(vs_wall_ms()));
        if (!strcmp(json_string_value(json_object_get(e, "what")), "person")) json_object_set_new(d, "complete", json_false());
        rc = record_finish(p, id, d, err);
    }
    json_decref(ni.all);
    vs_strset_free(&ni.pending);
    return rc;
}

vs_err vs_erase_resume(const vs_pipeline *p, int *resumed, vs_error *err) {
    *resumed = 0;
    json_t *open = json_array(), *e;
    vs_err rc = open ? vs_erasure_unfinished(p->catalog, collect_open, open, err) : vs_fail(err, VS_ERR_NOMEM, "resume erasures");
    size_t i;
    json_array_foreach(open, i, e) {
        if (rc != VS_OK) break;
        rc = resume_one(p, e, err);
        if (rc == VS_OK) ++*resumed;
    }
    json_decref(open);
    return rc;
}

/* ---- blocks -------------------------------------------------------------- */

vs_err vs_block_add(const vs_pipeline *p, const char *tenant, const float *vec, float threshold, const char *note,
                    char id_out[VS_POINT_ID_MAX], vs_error *err) {
    if (!(threshold >= 0.3f && threshold <= 1.0f)) /* below 0.3 a block would take strangers' images */
        return vs_fail(err, VS_ERR_INVALID_ARG, "block threshold must be 0.3..1");
    if (note && strlen(note) > VS_BLOCK_NOTE_MAX) return vs_fail(err, VS_ERR_INVALID_ARG, "block note is over %d bytes", VS_BLOCK_NOTE_MAX);
    int dim = vs_engine_embedding_dim(p->engine);
    vs_err rc = p->index->ops->ensure_collection(p->index, p->coll.blocks, dim, vs_engine_model_id(p->engine), err);
    if (rc != VS_OK) return rc;
    if (vs_uuid_random("visage-block", tenant, id_out) != 0) return vs_fail(err, VS_ERR_BACKEND, "block: no randomness");
    json_t *pl = json_pack("{s:s,s:s,s:f,s:I}", "tenant_id", tenant, "kind", "block", "threshold", (double)threshold,
                           "created_at", (json_int_t)vs_wall_ms());
    if (pl && note && *note) json_object_set_new(pl, "note", json_string(note));
    char *s = pl ? json_dumps(pl, JSON_COMPACT) : NULL;
    json_decref(pl);
    if (!s) return vs_fail(err, VS_ERR_NOMEM, "block");
    vs_point pt = {id_out, vec, s};
    rc = p->index->ops->upsert(p->index, p->coll.blocks, &pt, 1, err);
    free(s);
    return rc;
}

static int list_one(void *ctx, const char *id, const float *vector, const char *payload_json) {
    (void)vector;
    json_t *pl = json_loads(payload_json, 0, NULL);
    json_t *o = json_pack("{s:s,s:O,s:O}", "block_id", id, "threshold", json_object_get(pl, "threshold"), "created_at",
                          json_object_get(pl, "created_at"));
    if (o && json_object_get(pl, "note")) json_object_set(o, "note", json_object_get(pl, "note"));
    if (o) json_array_append_new((json_t *)ctx, o);
    json_decref(pl);
    return 0;
}

vs_err vs_block_list(const vs_pipeline *p, const char *tenant, json_t *arr, vs_error *err) {
    vs_filter f = {.tenant_id = tenant};
    return vs_index_scroll_all(p->index, p->coll.blocks, &f, 256, list_one, arr, err);
}

/* Deletes block id of the tenant (its point); a missing one is fine. */
static vs_err block_drop(const vs_pipeline *p, const char *tenant, const char *id, vs_error *err) {
    const char *ids[1] = {id}; /* the tenant's points only: another tenant's block id deletes nothing */
    vs_err rc = p->index->ops->delete_ids(p->index, p->coll.blocks, tenant, ids, 1, NULL, err);
    return rc == VS_ERR_NOT_FOUND ? VS_OK : rc;
}

/* Lifted like any erasure is recorded: the entry begun before the block's
 * point goes, so a crash in between cannot lift it unlogged. */
vs_err vs_block_delete(const vs_pipeline *p, const char *tenant, const char *id, vs_error *err) {
    vs_err rc = p->index->ops->get(p->index, p->coll.blocks, tenant, id, NULL, NULL, err);
    if (rc == VS_ERR_NOT_FOUND) return vs_fail(err, VS_ERR_NOT_FOUND, "block %s not found", id);
    if (rc != VS_OK) return rc;
    int64_t rec = 0;
    json_t *d = json_pack("{s:s}", "block_id", id);
    rc = d ? record_begin(p, tenant, "block_lifted", d, NULL, 0, &rec, err) : vs_fail(err, VS_ERR_NOMEM, "lift block");
    if (rc == VS_OK) rc = block_drop(p, tenant, id, err);
    if (rc == VS_OK) rc = record_finish(p, rec, d, err);
    json_decref(d);
    return rc;
}

vs_err vs_block_match(const vs_pipeline *p, const char *tenant, const vs_point *pts, int n, int *blocked,
                      char id_out[VS_POINT_ID_MAX], vs_error *err) {
    vs_filter f = {.tenant_id = tenant, .exact = 1};   /* a block must never be missed */
    *blocked = 0;
    id_out[0] = '\0';
    for (int i = 0; i < n && !*blocked; i++) {
        vs_hit *hits = NULL;
        int nh = 0;
        vs_err rc = p->index->ops->search(p->index, p->coll.blocks, pts[i].vector, &f, BLOCK_MATCH_K, 0.3f, &hits,
                                          &nh, err);
        if (rc == VS_ERR_NOT_FOUND) return VS_OK; /* no block was ever added */
        if (rc != VS_OK) return rc;
        for (int k = 0; k < nh && !*blocked; k++) {
            json_t *pl = json_loads(hits[k].payload_json, 0, NULL);
            json_t *t = json_object_get(pl, "threshold");
            if (json_is_number(t) && hits[k].score >= (float)json_number_value(t)) {
                *blocked = 1;
                snprintf(id_out, VS_POINT_ID_MAX, "%s", hits[k].id);
            }
            json_decref(pl);
        }
        vs_hits_free(hits, nh);
    }
    return VS_OK;
}
