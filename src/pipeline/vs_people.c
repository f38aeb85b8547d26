/* vs_people.c - keeps people.db in step with the catalog and the index:
 * places each new face (vs_cluster_assign on its nearest placed faces and
 * the candidates' centroids), groups the waiting ones in batches
 * (vs_cluster_batch), follows deletions, and answers the people routes.
 * One connection under one mutex (vs_sqlite_db); the runner's work on a
 * tenant is a series of short transactions, so the routes never wait long. */
#include "vs_people.h"
#include "vs_people_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vs_alloc.h"
#include "vs_catalog.h"
#include "vs_similarity.h"
#include "vs_sqlite.h"

#define PEOPLE_SCHEMA_VERSION 1
#define FOLLOW_PAGE 64       /* records read per step */
#define CENTROID_SAMPLE 32   /* members averaged for a centroid */

static const char *k_schema =
    "CREATE TABLE IF NOT EXISTS people(tenant_id TEXT NOT NULL, person_id TEXT NOT NULL, name TEXT,"
    " identity_id TEXT, watched INT NOT NULL DEFAULT 0, ignored INT NOT NULL DEFAULT 0, created_at INT NOT NULL,"
    " PRIMARY KEY(tenant_id, person_id));"
    "CREATE TABLE IF NOT EXISTS faces(tenant_id TEXT NOT NULL, face_id TEXT NOT NULL, person_id TEXT,"
    " image_sha256 TEXT NOT NULL, site TEXT, dup_of TEXT, quality REAL NOT NULL DEFAULT 0,"
    " manual INT NOT NULL DEFAULT 0, created_at INT NOT NULL, PRIMARY KEY(tenant_id, face_id));"
    "CREATE INDEX IF NOT EXISTS faces_person ON faces(tenant_id, person_id);"
    "CREATE INDEX IF NOT EXISTS faces_image ON faces(tenant_id, image_sha256);"
    "CREATE TABLE IF NOT EXISTS follow(tenant_id TEXT PRIMARY KEY, after_ms INT NOT NULL, after_sha TEXT NOT NULL,"
    " waiting_at_batch INT NOT NULL DEFAULT -1);";

void vs_people_cfg_default(vs_people_cfg *c) {
    memset(c, 0, sizeof *c);
    vs_cluster_cfg_default(&c->cluster);
    c->tick_ms = 1000;
    c->batch_max = 1000000;
    c->exact_max = 2000;
    c->nice = 10;
}

vs_err vs_people_open(const char *data_dir, const vs_pipeline *p, const vs_people_cfg *cfg, vs_people **out,
                      vs_error *err) {
    *out = NULL;
    vs_people *pp = vs_calloc(1, sizeof *pp);
    if (!pp) return vs_fail(err, VS_ERR_NOMEM, "people open: out of memory");
    vs_sqlite_spec spec = {NULL, "people db", k_schema, PEOPLE_SCHEMA_VERSION, "NORMAL", 0, NULL};
    vs_err rc = vs_sqlite_db_open(&pp->sq, data_dir, "people.db", spec, err);
    if (rc != VS_OK) {
        vs_free(pp);
        return rc;
    }
    if (cfg)
        pp->cfg = *cfg;
    else
        vs_people_cfg_default(&pp->cfg);
    atomic_store(&pp->p, p);
    pthread_mutex_init(&pp->wake_mu, NULL);
    pthread_cond_init(&pp->wake_cv, NULL);
    vs_ratelog_init(&pp->log, 10000, "visage: people: ", NULL, NULL);
    *out = pp;
    return VS_OK;
}

void vs_people_stats_get(vs_people *pp, vs_people_stats *out) {
    *out = (vs_people_stats){atomic_load(&pp->n_placed),   atomic_load(&pp->n_batches), atomic_load(&pp->n_formed),
                             atomic_load(&pp->n_attached), atomic_load(&pp->n_merged),  atomic_load(&pp->last_batch_ms)};
}

void vs_people_set_pipeline(vs_people *pp, const vs_pipeline *p) {
    atomic_store(&pp->p, p);
}

/* ---- small statement helpers (called with sq.mu held) -------------- */

/* Runs sql with up to 4 text parameters (NULL binds NULL); no rows. */
vs_err vs_people_exec(vs_people *pp, const char *sql, const char *op, const char *a, const char *b, const char *c,
                      const char *d, vs_error *err) {
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&pp->sq, sql, op, &st, err);
    if (rc != VS_OK) return rc;
    const char *v[4] = {a, b, c, d};
    for (int i = 0; i < 4 && i < sqlite3_bind_parameter_count(st); i++) vs_sqlite_bind_text(st, i + 1, v[i]);
    if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&pp->sq, err, op);
    sqlite3_finalize(st);
    return rc;
}

/* The single text value of a query with up to 3 text parameters into out
 * ("" when no row or NULL); *found = a row came back. */
vs_err vs_people_text(vs_people *pp, const char *sql, const char *op, const char *a, const char *b, const char *c,
                      char *out, size_t cap, int *found, vs_error *err) {
    sqlite3_stmt *st = NULL;
    out[0] = '\0';
    if (found) *found = 0;
    vs_err rc = vs_sqlite_prepare(&pp->sq, sql, op, &st, err);
    if (rc != VS_OK) return rc;
    const char *v[3] = {a, b, c};
    for (int i = 0; i < 3 && i < sqlite3_bind_parameter_count(st); i++) vs_sqlite_bind_text(st, i + 1, v[i]);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        snprintf(out, cap, "%s", t ? t : "");
        if (found) *found = 1;
    } else if (s != SQLITE_DONE) {
        rc = vs_sqlite_fail(&pp->sq, err, op);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Removes the tenant's people that have no face left. */
vs_err vs_people_drop_empty(vs_people *pp, const char *tenant, vs_error *err) {
    return vs_people_exec(pp,
                          "DELETE FROM people WHERE tenant_id = ?1 AND NOT EXISTS (SELECT 1 FROM faces f"
                          " WHERE f.tenant_id = ?1 AND f.person_id = people.person_id)",
                          "people drop empty", tenant, NULL, NULL, NULL, err);
}

/* ---- following the catalog ----------------------------------------- */

/* One changed record, copied out of the catalog's callback. */
typedef struct changed {
    char sha[65];
    int status;
    json_t *rec; /* record_json parsed, or NULL */
    int64_t updated_ms;
} changed;

typedef struct changed_page {
    changed rows[FOLLOW_PAGE];
    int n;
} changed_page;

static int collect_changed(void *ctx, const vs_image_row *row) {
    changed_page *pg = ctx;
    changed *c = &pg->rows[pg->n++];
    snprintf(c->sha, sizeof c->sha, "%s", row->sha256);
    c->status = (int)row->status;
    c->rec = row->record_json ? json_loads(row->record_json, 0, NULL) : NULL;
    c->updated_ms = row->updated_ms;
    return pg->n == FOLLOW_PAGE;
}

/* 1 when the record's faces_indexed lists face_id. */
static int lists_face(const json_t *faces, const char *face_id) {
    size_t i;
    json_t *f;
    json_array_foreach(faces, i, f) {
        const char *id = json_string_value(json_object_get(f, "face_id"));
        if (id && !strcmp(id, face_id)) return 1;
    }
    return 0;
}

/* Takes out of people.db the faces of image sha no longer in `faces` (a
 * face deleted, the image erased: faces is then empty). */
static vs_err drop_gone(vs_people *pp, const char *tenant, const char *sha, const json_t *faces, vs_error *err) {
    sqlite3_stmt *st = NULL;
    json_t *gone = json_array();
    vs_err rc = gone
                    ? vs_sqlite_prepare(&pp->sq, "SELECT face_id FROM faces WHERE tenant_id = ?1 AND image_sha256 = ?2",
                                        "people faces of image", &st, err)
                    : vs_fail(err, VS_ERR_NOMEM, "people");
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        vs_sqlite_bind_text(st, 2, sha);
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *id = (const char *)sqlite3_column_text(st, 0);
            if (id && !lists_face(faces, id)) json_array_append_new(gone, json_string(id));
        }
        sqlite3_finalize(st);
    }
    size_t i;
    json_t *g;
    json_array_foreach(gone, i, g) {
        if (rc != VS_OK) break;
        rc = vs_people_exec(pp, "DELETE FROM faces WHERE tenant_id = ?1 AND face_id = ?2", "people forget face", tenant,
                            json_string_value(g), NULL, NULL, err);
    }
    if (rc == VS_OK && json_array_size(gone) > 0) rc = vs_people_drop_empty(pp, tenant, err);
    json_decref(gone);
    return rc;
}

/* Centroid similarity for vs_cluster_assign_local: the cosine of the face
 * with the mean of up to CENTROID_SAMPLE member vectors of candidate k. */
typedef struct assign_ctx {
    vs_people *pp;
    const vs_pipeline *p;
    const char *tenant;
    const float *vec;
    char (*persons)[VS_UUID_STR]; /* candidate k's person id */
    vs_error *err;
} assign_ctx;

static int centroid_sim(void *ctx, int k, float *sim) {
    assign_ctx *a = ctx;
    int dim = vs_engine_embedding_dim(a->p->engine);
    float *sum = vs_calloc((size_t)dim, sizeof(float)), *v = vs_malloc(sizeof(float) * (size_t)dim);
    sqlite3_stmt *st = NULL;
    int n = 0, rc = -1;
    if (sum && v &&
        vs_sqlite_prepare(&a->pp->sq, "SELECT face_id FROM faces WHERE tenant_id = ?1 AND person_id = ?2 LIMIT ?3",
                          "people members", &st, a->err) == VS_OK) {
        vs_sqlite_bind_text(st, 1, a->tenant);
        vs_sqlite_bind_text(st, 2, a->persons[k]);
        sqlite3_bind_int(st, 3, CENTROID_SAMPLE);
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *id = (const char *)sqlite3_column_text(st, 0);
            vs_error e = {0};
            if (a->p->index->ops->get(a->p->index, a->p->coll.faces, a->tenant, id, v, NULL, &e) != VS_OK) continue;
            for (int d = 0; d < dim; d++) sum[d] += v[d];
            n++;
        }
        sqlite3_finalize(st);
        float norm = sqrtf(vs_dot(sum, sum, dim));
        if (n > 0 && norm > 0) { /* cosine with the mean of the members */
            *sim = vs_dot(sum, a->vec, dim) / norm;
            rc = 0;
        }
    }
    vs_free(sum);
    vs_free(v);
    return rc;
}

/* The person a new face joins ("" for none): its nearest placed faces vote
 * (vs_cluster_assign), the candidates' centroids confirm. */
static vs_err choose_person(vs_people *pp, const vs_pipeline *p, const char *tenant, const char *face_id,
                            const float *vec, const char *skip_person, int skip_faces, char person[VS_UUID_STR],
                            vs_error *err) {
    const vs_cluster_cfg *cc = &pp->cfg.cluster;
    vs_filter f = {.tenant_id = tenant};
    vs_hit *hits = NULL;
    /* faces that wait (a new face's own copies above all) and the skipped
     * person's faces come first in the list and do not vote: look past up
     * to 3 * vote_k of the former and all of the latter (at most 500), so
     * the votes are those of the nearest placed faces, as the module's
     * filtered search has them (bench/people.c) */
    int n = 0, want = (cc->vote_k > cc->knn_k ? cc->vote_k : cc->knn_k) + 1 + 3 * cc->vote_k +
                      (skip_faces < 500 ? skip_faces : 500);
    person[0] = '\0';
    /* unfiltered: the knn_k-th nearest other face is the face's background
     * (vs_cluster_assign_local), assigned or not */
    vs_err rc = p->index->ops->search(p->index, p->coll.faces, vec, &f, want, -1.0f, &hits, &n, err);
    if (rc != VS_OK) return rc;
    float background = -2.0f;
    for (int i = 0, others = 0; i < n; i++)
        if (strcmp(hits[i].id, face_id) != 0 && ++others == cc->knn_k) background = hits[i].score;
    vs_cluster_vote *votes = vs_calloc((size_t)n + 1, sizeof *votes);
    char(*persons)[VS_UUID_STR] = vs_calloc((size_t)n + 1, VS_UUID_STR);
    int nv = 0, np = 0;
    if (!votes || !persons) rc = vs_fail(err, VS_ERR_NOMEM, "people assign");
    for (int i = 0; rc == VS_OK && i < n && nv < cc->vote_k; i++) { /* the nearest placed ones vote */
        char pid[VS_UUID_STR];
        if (!strcmp(hits[i].id, face_id)) continue;
        rc = vs_people_text(pp, "SELECT person_id FROM faces WHERE tenant_id = ?1 AND face_id = ?2",
                            "people face person", tenant, hits[i].id, NULL, pid, sizeof pid, NULL, err);
        if (rc != VS_OK || !pid[0] || (skip_person && !strcmp(pid, skip_person))) continue;
        int k = 0;
        while (k < np && strcmp(persons[k], pid) != 0) k++;
        if (k == np) snprintf(persons[np++], VS_UUID_STR, "%s", pid);
        votes[nv++] = (vs_cluster_vote){k, hits[i].score};
    }
    if (rc == VS_OK && nv > 0) {
        assign_ctx a = {pp, p, tenant, vec, persons, err};
        int k = vs_cluster_assign_local(cc, votes, nv, background, centroid_sim, &a);
        if (k >= 0 && k < np) snprintf(person, VS_UUID_STR, "%s", persons[k]);
    }
    vs_free(votes);
    vs_free(persons);
    vs_hits_free(hits, n);
    return rc;
}

/* *watched = the tenant's person is watched (called with sq.mu held). */
static vs_err person_watched(vs_people *pp, const char *tenant, const char *person, int *watched, vs_error *err) {
    char w[8];
    vs_err rc = vs_people_text(pp, "SELECT watched FROM people WHERE tenant_id = ?1 AND person_id = ?2",
                               "people watched", tenant, person, NULL, w, sizeof w, NULL, err);
    *watched = rc == VS_OK && w[0] == '1';
    return rc;
}

/* A face of the record not in people.db yet: placed (or left waiting),
 * in one statement. *watched = the person it joined is watched. */
static vs_err place_face(vs_people *pp, const vs_pipeline *p, const char *tenant, const char *sha, const json_t *rec,
                         const json_t *face, int *watched, char person[VS_UUID_STR], vs_error *err) {
    const char *face_id = json_string_value(json_object_get(face, "face_id"));
    int dim = vs_engine_embedding_dim(p->engine), found = 0;
    char have[8];
    *watched = 0;
    person[0] = '\0';
    if (!face_id) return VS_OK;
    vs_err rc = vs_people_text(pp, "SELECT 1 FROM faces WHERE tenant_id = ?1 AND face_id = ?2", "people face known",
                               tenant, face_id, NULL, have, sizeof have, &found, err);
    if (rc != VS_OK || found) return rc;
    float *vec = vs_malloc(sizeof(float) * (size_t)dim);
    char *payload = NULL;
    if (!vec) return vs_fail(err, VS_ERR_NOMEM, "people place");
    vs_error e = {0};
    vs_err g = p->index->ops->get(p->index, p->coll.faces, tenant, face_id, vec, &payload, &e);
    if (g == VS_OK) {
        json_t *pl = payload ? json_loads(payload, 0, NULL) : NULL;
        rc = choose_person(pp, p, tenant, face_id, vec, NULL, 0, person, err);
        if (rc == VS_OK) {
            sqlite3_stmt *st = NULL;
            rc = vs_sqlite_prepare(
                &pp->sq,
                "INSERT OR IGNORE INTO faces(tenant_id, face_id, person_id, image_sha256, site, dup_of,"
                " quality, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                "people add face", &st, err);
            if (rc == VS_OK) {
                vs_sqlite_bind_text(st, 1, tenant);
                vs_sqlite_bind_text(st, 2, face_id);
                vs_sqlite_bind_text(st, 3, person[0] ? person : NULL);
                vs_sqlite_bind_text(st, 4, sha);
                vs_sqlite_bind_text(st, 5, json_string_value(json_object_get(rec, "site")));
                vs_sqlite_bind_text(st, 6, json_string_value(json_object_get(pl, "near_duplicate_of")));
                sqlite3_bind_double(st, 7, json_number_value(json_object_get(face, "quality_score")));
                sqlite3_bind_int64(st, 8, vs_wall_ms());
                if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&pp->sq, err, "people add face");
                sqlite3_finalize(st);
            }
        }
        if (rc == VS_OK && person[0]) rc = person_watched(pp, tenant, person, watched, err);
        json_decref(pl);
    } else if (g != VS_ERR_NOT_FOUND) { /* NOT_FOUND: deleted since the record was read */
        rc = g;
        *err = e;
    }
    vs_free(payload);
    vs_free(vec);
    return rc;
}

/* The face as the watch callback gets it: the record's entry plus where
 * the image was found. */
static json_t *seen_face(const char *sha, const json_t *rec, const json_t *face) {
    json_t *o = json_deep_copy(face);
    if (!o) return NULL;
    json_object_set_new(o, "image_sha256", json_string(sha));
    static const char *keep[] = {"site", "source_url", "page_url"};
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(rec, keep[i]);
        if (v) json_object_set(o, keep[i], v);
    }
    return o;
}

/* One changed record: faces gone are dropped, new ones placed; the cursor
 * moves past it in the same transaction. */
static vs_err apply_record(vs_people *pp, const vs_pipeline *p, const char *tenant, const changed *c, int64_t *placed,
                           json_t *seen, vs_error *err) {
    json_t *faces = c->status == VS_IMG_DONE ? json_object_get(c->rec, "faces_indexed") : NULL;
    json_t *none = json_array();
    if (!faces) faces = none;
    pthread_mutex_lock(&pp->sq.mu);
    vs_err rc = vs_sqlite_exec(&pp->sq, "BEGIN IMMEDIATE", "people begin", err);
    if (rc == VS_OK) rc = drop_gone(pp, tenant, c->sha, faces, err);
    size_t i;
    json_t *f;
    json_array_foreach(faces, i, f) {
        if (rc != VS_OK) break;
        int watched = 0;
        char person[VS_UUID_STR];
        rc = place_face(pp, p, tenant, c->sha, c->rec, f, &watched, person, err);
        if (rc == VS_OK && person[0]) atomic_fetch_add(&pp->n_placed, 1);
        if (rc == VS_OK && person[0] && placed) (*placed)++;
        if (rc == VS_OK && watched && seen)
            json_array_append_new(seen,
                                  json_pack("{s:s,s:o*}", "person_id", person, "face", seen_face(c->sha, c->rec, f)));
    }
    if (rc == VS_OK) {
        char ms[24];
        snprintf(ms, sizeof ms, "%lld", (long long)c->updated_ms);
        rc = vs_people_exec(
            pp,
            "INSERT INTO follow(tenant_id, after_ms, after_sha) VALUES (?1, CAST(?2 AS INTEGER), ?3)"
            " ON CONFLICT(tenant_id) DO UPDATE SET after_ms = excluded.after_ms, after_sha = excluded.after_sha",
            "people follow", tenant, ms, c->sha, NULL, err);
    }
    if (rc == VS_OK)
        rc = vs_sqlite_exec(&pp->sq, "COMMIT", "people commit", err);
    else
        vs_sqlite_rollback(&pp->sq);
    pthread_mutex_unlock(&pp->sq.mu);
    json_decref(none);
    return rc;
}

/* Tells the watch callback, outside the lock, of the faces placed with
 * watched people. */
static void tell_seen(vs_people *pp, const char *tenant, json_t *seen) {
    size_t i;
    json_t *s;
    json_array_foreach(seen, i, s) {
        if (pp->seen)
            pp->seen(pp->seen_ctx, tenant, json_string_value(json_object_get(s, "person_id")),
                     json_object_get(s, "face"));
    }
    json_array_clear(seen);
}

/* Follows the tenant's changed records to the end. */
static vs_err follow_tenant(vs_people *pp, const vs_pipeline *p, const char *tenant, int64_t *placed, vs_error *err) {
    char cur[100] = "", sha[65] = "";
    long long ms = 0;
    /* the saved place, read once: each record applied moves it (in the
     * same transaction), so the loop follows it in memory */
    pthread_mutex_lock(&pp->sq.mu);
    vs_err rc = vs_people_text(pp, "SELECT after_ms || ' ' || after_sha FROM follow WHERE tenant_id = ?1",
                               "people cursor", tenant, NULL, NULL, cur, sizeof cur, NULL, err);
    pthread_mutex_unlock(&pp->sq.mu);
    if (rc == VS_OK && cur[0] && sscanf(cur, "%lld %64s", &ms, sha) < 1)
        rc = vs_fail(err, VS_ERR_CORRUPT, "people db: tenant %s: unreadable place \"%.64s\"", tenant, cur);
    json_t *seen = json_array();
    while (rc == VS_OK && !atomic_load(&pp->stop)) {
        changed_page *pg = vs_calloc(1, sizeof *pg);
        if (!pg) rc = vs_fail(err, VS_ERR_NOMEM, "people follow");
        if (rc == VS_OK) rc = vs_image_records_changed(p->catalog, tenant, ms, sha, FOLLOW_PAGE, collect_changed, pg, err);
        int n = pg ? pg->n : 0;
        for (int i = 0; rc == VS_OK && i < n; i++) {
            rc = apply_record(pp, p, tenant, &pg->rows[i], placed, seen, err);
            tell_seen(pp, tenant, seen);
            if (rc == VS_OK) {
                ms = pg->rows[i].updated_ms;
                snprintf(sha, sizeof sha, "%s", pg->rows[i].sha);
            }
        }
        for (int i = 0; pg && i < pg->n; i++) json_decref(pg->rows[i].rec);
        vs_free(pg);
        if (n < FOLLOW_PAGE) break;
    }
    json_decref(seen);
    return rc;
}

/* ---- grouping the waiting faces ------------------------------------ */

typedef struct waiting {
    int n, cap, dim;
    char (*ids)[VS_POINT_ID_MAX];
    char (*dup_of)[VS_POINT_ID_MAX];
    float *vecs; /* n x dim for a small batch; NULL for a big one (the index has them) */
    struct waiting_ref *by_id; /* the faces sorted by id, to map a search hit or a dup link back */
} waiting;

typedef struct waiting_ref {
    const char *id;
    int i;
} waiting_ref;

static void waiting_free(waiting *w) {
    vs_free(w->ids);
    vs_free(w->dup_of);
    vs_free(w->vecs);
    vs_free(w->by_id);
}

/* Up to cap waiting faces of the tenant, the oldest first; with their
 * vectors when they are few enough for exact neighbours. */
static vs_err load_waiting(vs_people *pp, const vs_pipeline *p, const char *tenant, waiting *w, vs_error *err) {
    w->ids = vs_calloc((size_t)w->cap, sizeof *w->ids);
    w->dup_of = vs_calloc((size_t)w->cap, sizeof *w->dup_of);
    if (!w->ids || !w->dup_of) return vs_fail(err, VS_ERR_NOMEM, "people batch of %d", w->cap);
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&pp->sq.mu);
    vs_err rc = vs_sqlite_prepare(&pp->sq,
                                  "SELECT face_id, dup_of FROM faces WHERE tenant_id = ?1 AND person_id IS NULL"
                                  " ORDER BY created_at, face_id LIMIT ?2",
                                  "people waiting", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        sqlite3_bind_int(st, 2, w->cap);
        while (sqlite3_step(st) == SQLITE_ROW && w->n < w->cap) {
            const char *id = (const char *)sqlite3_column_text(st, 0), *d = (const char *)sqlite3_column_text(st, 1);
            snprintf(w->ids[w->n], VS_POINT_ID_MAX, "%s", id ? id : "");
            snprintf(w->dup_of[w->n], VS_POINT_ID_MAX, "%s", d ? d : "");
            w->n++;
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&pp->sq.mu);
    if (rc != VS_OK || w->n > pp->cfg.exact_max) return rc;
    w->vecs = vs_malloc(sizeof(float) * (size_t)w->dim * (size_t)(w->n + 1));
    if (!w->vecs) return vs_fail(err, VS_ERR_NOMEM, "people batch of %d", w->n);
    int kept = 0;
    for (int i = 0; i < w->n; i++) {
        vs_error e = {0};
        if (p->index->ops->get(p->index, p->coll.faces, tenant, w->ids[i], w->vecs + (size_t)kept * (size_t)w->dim,
                               NULL, &e) != VS_OK)
            continue; /* deleted meanwhile: the record's next change drops it */
        if (kept != i) {
            memcpy(w->ids[kept], w->ids[i], VS_POINT_ID_MAX);
            memcpy(w->dup_of[kept], w->dup_of[i], VS_POINT_ID_MAX);
        }
        kept++;
    }
    w->n = kept;
    return rc;
}

static int cmp_ref(const void *a, const void *b) {
    return strcmp(((const waiting_ref *)a)->id, ((const waiting_ref *)b)->id);
}

/* The index of the waiting face with this id, or -1: O(log n) over by_id. */
static int waiting_find(const waiting *w, const char *id) {
    waiting_ref key = {id, 0};
    const waiting_ref *r = bsearch(&key, w->by_id, (size_t)w->n, sizeof key, cmp_ref);
    return r ? r->i : -1;
}

/* Near-duplicates count once: a face's dup id is the index of the face it
 * is a near-duplicate of when that one waits too (followed to the end of
 * the chain), else its own. by_id is built here: O(n log n), not n^2. */
static vs_err dup_ids(waiting *w, int *dup, vs_error *err) {
    w->by_id = vs_malloc(sizeof *w->by_id * (size_t)(w->n + 1));
    if (!w->by_id) return vs_fail(err, VS_ERR_NOMEM, "people batch ids of %d", w->n);
    for (int i = 0; i < w->n; i++) w->by_id[i] = (waiting_ref){w->ids[i], i};
    qsort(w->by_id, (size_t)w->n, sizeof *w->by_id, cmp_ref);
    for (int i = 0; i < w->n; i++) {
        /* a link points at an older face: chains are short; 64 steps bound a cycle */
        int j = i, steps = 0;
        while (w->dup_of[j][0] && steps++ < 64) {
            int k = waiting_find(w, w->dup_of[j]);
            if (k < 0 || k == j) break;
            j = k;
        }
        dup[i] = j;
    }
    return VS_OK;
}

/* Waiting face i's vector: from memory for a small batch, else read from
 * the index into scratch (dim floats). NULL when it was deleted meanwhile. */
static const float *waiting_vec(const vs_pipeline *p, const char *tenant, const waiting *w, int i, float *scratch) {
    if (w->vecs) return w->vecs + (size_t)i * (size_t)w->dim;
    vs_error e = {0};
    return p->index->ops->get(p->index, p->coll.faces, tenant, w->ids[i], scratch, NULL, &e) == VS_OK ? scratch : NULL;
}

/* The batch's kNN for a small batch: exact, over the vectors in memory. For
 * a big one: the tenant's own index, one search per face (log n each, never
 * n^2, and no second graph to build), keeping the hits that wait too. A
 * face deleted meanwhile has no neighbours. */
typedef struct batch_index {
    const vs_pipeline *p;
    const char *tenant;
    const waiting *w;
    float *vec; /* dim floats of scratch */
} batch_index;

static int knn_index(void *ctx, int i, int k, int *nbr, float *sim) {
    batch_index *b = ctx;
    vs_error e = {0};
    const float *v = waiting_vec(b->p, b->tenant, b->w, i, b->vec);
    if (!v) return 0;
    vs_filter f = {.tenant_id = b->tenant};
    vs_hit *hits = NULL;
    int n = 0, want = 2 * k + 1 < 512 ? 2 * k + 1 : 512; /* placed faces share the list */
    if (b->p->index->ops->search(b->p->index, b->p->coll.faces, v, &f, want, -1.0f, &hits, &n, &e) != VS_OK)
        return -1;
    int m = 0;
    for (int j = 0; j < n && m < k; j++) {
        int at = waiting_find(b->w, hits[j].id);
        if (at < 0 || at == i) continue;
        nbr[m] = at;
        sim[m++] = hits[j].score;
    }
    vs_hits_free(hits, n);
    return m;
}

static vs_err cluster_batch(vs_people *pp, const vs_pipeline *p, const char *tenant, const waiting *w,
                            const int *dup, int *labels, int *n_clusters, vs_error *err) {
    if (w->vecs) {
        vs_cluster_exact ex = {w->vecs, w->n, w->dim};
        return vs_cluster_batch(w->n, &pp->cfg.cluster, vs_cluster_knn_exact, &ex, dup, labels, n_clusters, err);
    }
    batch_index b = {p, tenant, w, vs_malloc(sizeof(float) * (size_t)w->dim)};
    if (!b.vec) return vs_fail(err, VS_ERR_NOMEM, "people batch");
    vs_err rc = vs_cluster_batch(w->n, &pp->cfg.cluster, knn_index, &b, dup, labels, n_clusters, err);
    vs_free(b.vec);
    return rc;
}

/* Writes each cluster of the batch as a new person; pids[c] gets the id
 * of cluster c. */
static vs_err store_clusters(vs_people *pp, const char *tenant, const waiting *w, const int *labels, int n_clusters,
                             char (*pids)[VS_UUID_STR], vs_error *err) {
    pthread_mutex_lock(&pp->sq.mu);
    vs_err rc = vs_sqlite_exec(&pp->sq, "BEGIN IMMEDIATE", "people begin", err);
    for (int c = 0; rc == VS_OK && c < n_clusters; c++) {
        char *pid = pids[c], now[24];
        vs_uuid_random("person", tenant, pid);
        snprintf(now, sizeof now, "%lld", (long long)vs_wall_ms());
        rc = vs_people_exec(pp,
                            "INSERT INTO people(tenant_id, person_id, created_at) VALUES (?1, ?2, CAST(?3 AS INTEGER))",
                            "people new person", tenant, pid, now, NULL, err);
        for (int i = 0; rc == VS_OK && i < w->n; i++)
            if (labels[i] == c)
                rc = vs_people_exec(
                    pp, "UPDATE faces SET person_id = ?3 WHERE tenant_id = ?1 AND face_id = ?2 AND person_id IS NULL",
                    "people cluster face", tenant, w->ids[i], pid, NULL, err);
    }
    if (rc == VS_OK)
        rc = vs_sqlite_exec(&pp->sq, "COMMIT", "people commit", err);
    else
        vs_sqlite_rollback(&pp->sq);
    pthread_mutex_unlock(&pp->sq.mu);
    return rc;
}

/* A face that waited and now joins person (the attach pass, a merge): when
 * the person is watched, it is news, as a new face joining would be; noted
 * in seen with what people.db knows (sha, site), the record's URLs are
 * added by tell_seen_waited outside the lock. Called with sq.mu held. */
static vs_err note_if_watched(vs_people *pp, const char *tenant, const char *face_id, const char *person, json_t *seen,
                              vs_error *err) {
    int watched = 0;
    vs_err rc = person_watched(pp, tenant, person, &watched, err);
    if (rc != VS_OK || !watched) return rc;
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(&pp->sq, "SELECT image_sha256, site FROM faces WHERE tenant_id = ?1 AND face_id = ?2",
                           "people watched face", &st, err);
    if (rc != VS_OK) return rc;
    vs_sqlite_bind_text(st, 1, tenant);
    vs_sqlite_bind_text(st, 2, face_id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *sha = (const char *)sqlite3_column_text(st, 0), *site = (const char *)sqlite3_column_text(st, 1);
        json_t *face = json_pack("{s:s,s:s}", "face_id", face_id, "image_sha256", sha ? sha : "");
        if (face && site) json_object_set_new(face, "site", json_string(site));
        json_array_append_new(seen, json_pack("{s:s,s:o*}", "person_id", person, "face", face));
    }
    sqlite3_finalize(st);
    return VS_OK;
}

/* The waited faces' events, each with its image's URLs from the catalog
 * (read here, outside people.db's lock). */
static void tell_seen_waited(vs_people *pp, const vs_pipeline *p, const char *tenant, json_t *seen) {
    size_t i;
    json_t *s;
    json_array_foreach(seen, i, s) {
        json_t *face = json_object_get(s, "face");
        char *rec_json = NULL;
        vs_error e = {0};
        if (!face || vs_image_record_get(p->catalog, tenant, json_string_value(json_object_get(face, "image_sha256")),
                                         NULL, NULL, &rec_json, NULL, &e) != VS_OK)
            continue;
        json_t *rec = rec_json ? json_loads(rec_json, 0, NULL) : NULL;
        json_t *full = rec ? seen_face(json_string_value(json_object_get(face, "image_sha256")), rec, face) : NULL;
        if (full) json_object_set_new(s, "face", full); /* face is gone from here on */
        json_decref(rec);
        vs_free(rec_json);
    }
    tell_seen(pp, tenant, seen);
}

/* The attach pass: a face the (strict) batch left out joins a person when
 * its neighbours and the centroid agree, as a new face would. *placed
 * counts them. */
static vs_err attach_noise(vs_people *pp, const vs_pipeline *p, const char *tenant, const waiting *w, const int *labels,
                           int64_t *placed, json_t *seen, vs_error *err) {
    float *vec = w->vecs ? NULL : vs_malloc(sizeof(float) * (size_t)w->dim);
    if (!w->vecs && !vec) return vs_fail(err, VS_ERR_NOMEM, "people attach");
    vs_err rc = VS_OK;
    pthread_mutex_lock(&pp->sq.mu);
    for (int i = 0; rc == VS_OK && i < w->n; i++) {
        char person[VS_UUID_STR];
        if (labels[i] >= 0) continue;
        const float *v = waiting_vec(p, tenant, w, i, vec);
        if (!v) continue; /* deleted meanwhile */
        rc = choose_person(pp, p, tenant, w->ids[i], v, NULL, 0, person, err);
        if (rc == VS_OK && person[0]) {
            rc = vs_people_exec(
                pp, "UPDATE faces SET person_id = ?3 WHERE tenant_id = ?1 AND face_id = ?2 AND person_id IS NULL",
                "people attach", tenant, w->ids[i], person, NULL, err);
            if (rc == VS_OK) rc = note_if_watched(pp, tenant, w->ids[i], person, seen, err);
            atomic_fetch_add(&pp->n_attached, 1);
            (*placed)++;
        }
    }
    pthread_mutex_unlock(&pp->sq.mu);
    vs_free(vec);
    return rc;
}

typedef struct person_size {
    int size, c;
} person_size;

/* Smallest first, then by label: the same batch merges in the same order. */
static int cmp_person_size(const void *a, const void *b) {
    const person_size *x = a, *y = b;
    return x->size != y->size ? (x->size < y->size ? -1 : 1) : (x->c > y->c) - (x->c < y->c);
}

/* People that are one person (vs_cluster_merge_target): each new person of
 * the batch, smallest first, asks its photos which person they would join
 * if it did not exist; when enough agree, its faces move there and it goes.
 * Without this, a batch that split someone in two (the shared photos: Obama
 * as two people) or formed a second person beside an existing one would
 * keep both for good. One index search per distinct photo. */
static vs_err merge_new_people(vs_people *pp, const vs_pipeline *p, const char *tenant, const waiting *w,
                               const int *labels, const int *dup, int n_clusters, char (*pids)[VS_UUID_STR],
                               json_t *seen, vs_error *err) {
    int *start = vs_calloc((size_t)n_clusters + 2, sizeof *start), *member = vs_calloc((size_t)w->n + 1, sizeof *member);
    int *order = vs_calloc((size_t)n_clusters + 1, sizeof *order), *choice = vs_calloc((size_t)w->n + 1, sizeof *choice);
    char(*cand)[VS_UUID_STR] = vs_calloc((size_t)w->n + 1, VS_UUID_STR);
    float *vec = w->vecs ? NULL : vs_malloc(sizeof(float) * (size_t)w->dim);
    vs_err rc = VS_OK;
    if (!start || !member || !order || !choice || !cand || (!w->vecs && !vec))
        rc = vs_fail(err, VS_ERR_NOMEM, "people merge of %d new people", n_clusters);
    /* members grouped by person, a counting sort of the labels: person c's
     * faces are member[start[c] .. start[c+1]) */
    for (int i = 0; rc == VS_OK && i < w->n; i++)
        if (labels[i] >= 0) start[labels[i] + 2]++;
    for (int c = 0; rc == VS_OK && c < n_clusters; c++) start[c + 2] += start[c + 1], order[c] = c;
    for (int i = 0; rc == VS_OK && i < w->n; i++)
        if (labels[i] >= 0) member[start[labels[i] + 1]++] = i;
    person_size *by_size = rc == VS_OK ? vs_calloc((size_t)n_clusters + 1, sizeof *by_size) : NULL;
    if (rc == VS_OK && !by_size) rc = vs_fail(err, VS_ERR_NOMEM, "people merge of %d new people", n_clusters);
    for (int c = 0; rc == VS_OK && c < n_clusters; c++) by_size[c] = (person_size){start[c + 1] - start[c], c};
    if (rc == VS_OK) qsort(by_size, (size_t)n_clusters, sizeof *by_size, cmp_person_size); /* a fragment joins the bulk */
    for (int c = 0; rc == VS_OK && c < n_clusters; c++) order[c] = by_size[c].c;
    vs_free(by_size);
    pthread_mutex_lock(&pp->sq.mu);
    for (int o = 0; rc == VS_OK && o < n_clusters; o++) {
        int a = order[o], m = 0, nc = 0;
        for (int t = start[a]; rc == VS_OK && t < start[a + 1]; t++) {
            int i = member[t], copy = 0;
            for (int u = start[a]; u < t && !copy; u++) copy = dup[member[u]] == dup[i];
            if (copy) continue; /* one opinion per photo */
            const float *v = waiting_vec(p, tenant, w, i, vec);
            if (!v) continue; /* deleted meanwhile */
            char to[VS_UUID_STR];
            rc = choose_person(pp, p, tenant, w->ids[i], v, pids[a], start[a + 1] - start[a], to, err);
            int k = -1;
            if (rc == VS_OK && to[0]) {
                for (k = 0; k < nc && strcmp(cand[k], to) != 0; k++) {}
                if (k == nc) snprintf(cand[nc++], VS_UUID_STR, "%s", to);
            }
            choice[m++] = k;
        }
        int to = rc == VS_OK ? vs_cluster_merge_target(&pp->cfg.cluster, choice, m) : -1;
        if (to < 0) continue;
        rc = vs_sqlite_exec(&pp->sq, "BEGIN IMMEDIATE", "people merge begin", err);
        if (rc == VS_OK)
            rc = vs_people_exec(pp, "UPDATE faces SET person_id = ?3 WHERE tenant_id = ?1 AND person_id = ?2",
                                "people merge faces", tenant, pids[a], cand[to], NULL, err);
        if (rc == VS_OK)
            rc = vs_people_exec(pp, "DELETE FROM people WHERE tenant_id = ?1 AND person_id = ?2", "people merge person",
                                tenant, pids[a], NULL, NULL, err);
        if (rc == VS_OK)
            rc = vs_sqlite_exec(&pp->sq, "COMMIT", "people merge commit", err);
        else
            vs_sqlite_rollback(&pp->sq);
        if (rc == VS_OK) atomic_fetch_add(&pp->n_merged, 1);
        for (int t = start[a]; rc == VS_OK && t < start[a + 1]; t++) /* news only once it holds */
            rc = note_if_watched(pp, tenant, w->ids[member[t]], cand[to], seen, err);
    }
    pthread_mutex_unlock(&pp->sq.mu);
    vs_free(start), vs_free(member), vs_free(order), vs_free(choice), vs_free(cand), vs_free(vec);
    return rc;
}

/* 1 when the waiting faces are worth a batch: enough of them, and more
 * than at the last batch by a twentieth (at least one). A batch that found
 * nobody is not redone for the same faces, and a big tenant under steady
 * ingest re-groups every 5 % of growth, not every tick. */
static int batch_due(int64_t n_wait, const char *last, int min_faces) {
    if (n_wait < min_faces) return 0;
    if (!last[0] || atoll(last) < 0) return 1;
    int64_t before = atoll(last), step = before / 20 > 1 ? before / 20 : 1;
    return n_wait >= before + step;
}

/* Groups the tenant's waiting faces when batch_due says so. */
static vs_err batch_tenant(vs_people *pp, const vs_pipeline *p, const char *tenant, vs_error *err) {
    char cnt[24], last[24];
    pthread_mutex_lock(&pp->sq.mu);
    vs_err rc = vs_people_text(pp, "SELECT count(*) FROM faces WHERE tenant_id = ?1 AND person_id IS NULL",
                               "people waiting count", tenant, NULL, NULL, cnt, sizeof cnt, NULL, err);
    if (rc == VS_OK)
        rc = vs_people_text(pp, "SELECT waiting_at_batch FROM follow WHERE tenant_id = ?1", "people batch mark", tenant,
                            NULL, NULL, last, sizeof last, NULL, err);
    pthread_mutex_unlock(&pp->sq.mu);
    int64_t n_wait = atoll(cnt);
    if (rc != VS_OK || !batch_due(n_wait, last, pp->cfg.cluster.min_faces)) return rc;
    waiting w = {.cap = (int)(n_wait < pp->cfg.batch_max ? n_wait : pp->cfg.batch_max),
                 .dim = vs_engine_embedding_dim(p->engine)};
    int64_t t0 = vs_now_ms();
    rc = load_waiting(pp, p, tenant, &w, err);
    int *labels = rc == VS_OK ? vs_calloc((size_t)w.n + 1, sizeof(int)) : NULL;
    int *dup = rc == VS_OK ? vs_calloc((size_t)w.n + 1, sizeof(int)) : NULL;
    if (rc == VS_OK && (!labels || !dup)) rc = vs_fail(err, VS_ERR_NOMEM, "people batch");
    int n_clusters = 0;
    if (rc == VS_OK) rc = dup_ids(&w, dup, err);
    if (rc == VS_OK) rc = cluster_batch(pp, p, tenant, &w, dup, labels, &n_clusters, err);
    char(*pids)[VS_UUID_STR] = rc == VS_OK && n_clusters > 0 ? vs_calloc((size_t)n_clusters, VS_UUID_STR) : NULL;
    if (rc == VS_OK && n_clusters > 0 && !pids) rc = vs_fail(err, VS_ERR_NOMEM, "people batch");
    if (rc == VS_OK && n_clusters > 0) rc = store_clusters(pp, tenant, &w, labels, n_clusters, pids, err);
    if (rc == VS_OK) atomic_fetch_add(&pp->n_batches, 1), atomic_fetch_add(&pp->n_formed, n_clusters);
    int64_t placed = 0;
    json_t *seen = json_array();
    if (rc == VS_OK && !seen) rc = vs_fail(err, VS_ERR_NOMEM, "people batch");
    if (rc == VS_OK && n_clusters > 0) rc = attach_noise(pp, p, tenant, &w, labels, &placed, seen, err);
    if (rc == VS_OK && n_clusters > 0)
        rc = merge_new_people(pp, p, tenant, &w, labels, dup, n_clusters, pids, seen, err);
    if (seen) tell_seen_waited(pp, p, tenant, seen);
    json_decref(seen);
    vs_free(pids);
    if (rc == VS_OK) {
        char left[24];
        for (int i = 0; i < w.n; i++) placed += labels[i] >= 0;
        snprintf(left, sizeof left, "%lld", (long long)(n_wait - placed));
        pthread_mutex_lock(&pp->sq.mu);
        rc = vs_people_exec(pp, "UPDATE follow SET waiting_at_batch = CAST(?2 AS INTEGER) WHERE tenant_id = ?1",
                            "people batch mark", tenant, left, NULL, NULL, err);
        pthread_mutex_unlock(&pp->sq.mu);
    }
    vs_free(labels);
    vs_free(dup);
    waiting_free(&w);
    atomic_store(&pp->last_batch_ms, vs_now_ms() - t0);
    return rc;
}

/* ---- the runner ----------------------------------------------------- */

static int collect_tenant(void *ctx, const char *tenant) {
    json_array_append_new(ctx, json_string(tenant));
    return 0;
}

vs_err vs_people_run_once(vs_people *pp, int64_t *placed, vs_error *err) {
    const vs_pipeline *p = atomic_load(&pp->p);
    json_t *tenants = json_array();
    int64_t n = 0;
    vs_err rc =
        tenants ? vs_tenant_ids(p->catalog, collect_tenant, tenants, err) : vs_fail(err, VS_ERR_NOMEM, "people");
    size_t i;
    json_t *t;
    json_array_foreach(tenants, i, t) {
        if (rc != VS_OK || atomic_load(&pp->stop)) break;
        rc = follow_tenant(pp, p, json_string_value(t), &n, err);
        if (rc == VS_OK) rc = batch_tenant(pp, p, json_string_value(t), err);
    }
    json_decref(tenants);
    if (placed) *placed = n;
    return rc;
}

static void *runner(void *arg) {
    vs_people *pp = arg;
    /* this thread only: ingest and search come first */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), pp->cfg.nice);
    while (!atomic_load(&pp->stop)) {
        vs_error err = {0};
        if (vs_people_run_once(pp, NULL, &err) != VS_OK) {
            char line[sizeof err.msg + 32];
            snprintf(line, sizeof line, "visage: people: %s", err.msg);
            vs_ratelog_say(&pp->log, vs_now_ms(), err.msg, line);
        }
        vs_ratelog_flush(&pp->log, vs_now_ms());
        pthread_mutex_lock(&pp->wake_mu);
        if (!atomic_load(&pp->stop)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ns = ts.tv_nsec + (int64_t)pp->cfg.tick_ms * 1000000;
            ts.tv_sec += (time_t)(ns / 1000000000);
            ts.tv_nsec = (long)(ns % 1000000000);
            pthread_cond_timedwait(&pp->wake_cv, &pp->wake_mu, &ts);
        }
        pthread_mutex_unlock(&pp->wake_mu);
    }
    return NULL;
}

vs_err vs_people_start(vs_people *pp, vs_people_seen_cb seen, void *seen_ctx, vs_error *err) {
    pp->seen = seen;
    pp->seen_ctx = seen_ctx;
    if (pthread_create(&pp->thread, NULL, runner, pp) != 0)
        return vs_fail(err, VS_ERR_IO, "people: cannot start the runner");
    pp->started = 1;
    return VS_OK;
}

void vs_people_close(vs_people *pp) {
    if (!pp) return;
    atomic_store(&pp->stop, 1);
    pthread_mutex_lock(&pp->wake_mu);
    pthread_cond_broadcast(&pp->wake_cv);
    pthread_mutex_unlock(&pp->wake_mu);
    if (pp->started) pthread_join(pp->thread, NULL);
    vs_sqlite_db_close(&pp->sq);
    vs_ratelog_destroy(&pp->log, vs_now_ms());
    pthread_mutex_destroy(&pp->wake_mu);
    pthread_cond_destroy(&pp->wake_cv);
    vs_free(pp);
}
