/* vs_routes_people.c - people found by clustering (vs_people.h): the list
 * (by images, sites or faces, with a cover face), a person with its faces
 * and sites, and what a person decides: name (which makes it an identity
 * with samples), merge, split, watch, ignore. All within the caller's
 * tenant; a server without people (an API-only tool) answers 503. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_identity.h"
#include "vs_people.h"
#include "vs_routes.h"

#define PEOPLE_PAGE 50
#define PEOPLE_PAGE_MAX 200
#define NAME_SAMPLES 8 /* best faces enrolled when a person is named */

/* The handle, or NULL after replying 503. */
static vs_people *people_of(vs_req *r) {
    if (!r->app->people) vs_reply_error(r, 503, "unavailable", "this process does not group faces into people");
    return r->app->people;
}

/* limit (1..200) and cursor (an offset this listing returned); -1 after
 * replying 400 naming the field. */
static int page_args(vs_req *r, int *offset, int *limit) {
    const char *l = vs_req_query(r, "limit"), *c = vs_req_query(r, "cursor");
    char *end = NULL;
    *limit = PEOPLE_PAGE;
    *offset = 0;
    if (l) {
        long v = strtol(l, &end, 10);
        if (!*l || *end || v < 1 || v > PEOPLE_PAGE_MAX) {
            vs_reply_error(r, 400, "bad_request", "limit: must be an integer from 1 to %d, got \"%.32s\"",
                           PEOPLE_PAGE_MAX, l);
            return -1;
        }
        *limit = (int)v;
    }
    if (c) {
        long v = strtol(c, &end, 10);
        if (!*c || *end || v < 0 || v > 100000000) {
            vs_reply_error(r, 400, "bad_request",
                           "cursor: not a cursor this listing returned (give next_cursor as it came)");
            return -1;
        }
        *offset = (int)v;
    }
    return 0;
}

/* crop_url and thumb_url of one of the tenant's faces into o (from its
 * index payload; nothing when the face is gone). */
static void add_face_urls(vs_req *r, const char *face_id, json_t *o) {
    char *payload = NULL;
    vs_error err = {0};
    if (r->app->index->ops->get(r->app->index, r->p->coll.faces, r->tenant, face_id, NULL, &payload, &err) != VS_OK)
        return;
    json_t *pl = json_loads(payload, 0, NULL);
    vs_free(payload);
    if (pl) vs_add_face_urls(r->app, pl, o);
    json_decref(pl);
}

/* A person as the API shows it: the cover face's crop URLs added. */
static void dress_person(vs_req *r, json_t *o) {
    const char *cover = json_string_value(json_object_get(o, "cover_face_id"));
    json_t *c = json_object();
    if (cover && c) {
        json_object_set_new(c, "face_id", json_string(cover));
        add_face_urls(r, cover, c);
        json_object_set(o, "cover", c);
    }
    json_decref(c);
    json_object_del(o, "cover_face_id");
}

void vs_route_people_list(vs_req *r) {
    vs_people *pp = people_of(r);
    if (!pp) return;
    const char *sort = vs_req_query(r, "sort"), *ign = vs_req_query(r, "include_ignored");
    vs_people_sort by = VS_PEOPLE_BY_IMAGES;
    if (sort && !strcmp(sort, "sites"))
        by = VS_PEOPLE_BY_SITES;
    else if (sort && !strcmp(sort, "faces"))
        by = VS_PEOPLE_BY_FACES;
    else if (sort && strcmp(sort, "images") != 0)
        return vs_reply_error(r, 400, "bad_request", "sort: expected one of images, sites, faces, got \"%.32s\"", sort);
    if (ign && strcmp(ign, "true") != 0 && strcmp(ign, "false") != 0)
        return vs_reply_error(r, 400, "bad_request", "include_ignored: must be true or false");
    int offset, limit, more = 0;
    if (page_args(r, &offset, &limit)) return;
    json_t *arr = json_array();
    vs_error err = {0};
    vs_err rc = vs_people_list(pp, r->tenant, by, ign && !strcmp(ign, "true"), offset, limit, arr, &more, &err);
    if (rc != VS_OK) {
        json_decref(arr);
        return vs_reply_vs_err(r, rc, &err);
    }
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) dress_person(r, o);
    json_t *out = json_pack("{s:o}", "people", arr);
    if (more) {
        char next[24];
        snprintf(next, sizeof next, "%d", offset + limit);
        json_object_set_new(out, "next_cursor", json_string(next));
    }
    vs_reply_json(r, 200, out);
}

void vs_route_person_get(vs_req *r, const char *id) {
    vs_people *pp = people_of(r);
    if (!pp) return;
    int offset, limit, more = 0;
    if (page_args(r, &offset, &limit)) return;
    json_t *o = NULL, *faces = json_array();
    vs_error err = {0};
    vs_err rc = vs_people_get(pp, r->tenant, id, &o, &err);
    if (rc == VS_OK) rc = vs_people_faces(pp, r->tenant, id, offset, limit, faces, &more, &err);
    if (rc != VS_OK) {
        json_decref(o);
        json_decref(faces);
        return vs_reply_vs_err(r, rc, &err);
    }
    size_t i;
    json_t *f;
    json_array_foreach(faces, i, f) add_face_urls(r, json_string_value(json_object_get(f, "face_id")), f);
    dress_person(r, o);
    json_object_set_new(o, "face_list", faces);
    if (more) {
        char next[24];
        snprintf(next, sizeof next, "%d", offset + limit);
        json_object_set_new(o, "next_cursor", json_string(next));
    }
    vs_reply_json(r, 200, o);
}

static int by_quality_desc(const void *a, const void *b) {
    double qa = json_number_value(json_object_get(*(json_t *const *)a, "quality_score"));
    double qb = json_number_value(json_object_get(*(json_t *const *)b, "quality_score"));
    return (qa < qb) - (qa > qb);
}

/* Reorders the faces best quality first: the samples a name enrols. */
static void json_array_sort_quality(json_t *faces) {
    size_t n = json_array_size(faces);
    json_t **v = vs_calloc(n + 1, sizeof *v);
    if (!v) return;
    for (size_t i = 0; i < n; i++) v[i] = json_incref(json_array_get(faces, i));
    qsort(v, n, sizeof *v, by_quality_desc);
    json_array_clear(faces);
    for (size_t i = 0; i < n; i++) json_array_append_new(faces, v[i]);
    vs_free(v);
}

/* The person's best faces (by quality, at least the ENROLL gate) as
 * identity samples: how a named person verifies and identifies. */
static vs_err enroll_person(vs_req *r, vs_people *pp, const char *person_id, const char *identity_id, int *n_samples,
                            vs_error *err) {
    json_t *faces = json_array();
    int more = 0, dim = vs_engine_embedding_dim(r->p->engine), n = 0;
    float gate = vs_engine_config(r->p->engine)->quality.gate_enroll;
    vs_err rc = vs_people_faces(pp, r->tenant, person_id, 0, 256, faces, &more, err);
    json_array_sort_quality(faces);
    float *vecs = vs_malloc(sizeof(float) * (size_t)dim * NAME_SAMPLES);
    vs_identity_sample s[NAME_SAMPLES];
    if (rc == VS_OK && !vecs) rc = vs_fail(err, VS_ERR_NOMEM, "person name");
    size_t i;
    json_t *f;
    json_array_foreach(faces, i, f) { /* best first: the first below the gate ends it */
        float q = (float)json_number_value(json_object_get(f, "quality_score"));
        if (rc != VS_OK || n == NAME_SAMPLES || q < gate) break;
        const char *fid = json_string_value(json_object_get(f, "face_id"));
        vs_error e = {0};
        if (r->app->index->ops->get(r->app->index, r->p->coll.faces, r->tenant, fid, vecs + (size_t)n * (size_t)dim,
                                    NULL, &e) != VS_OK)
            continue; /* deleted meanwhile */
        s[n] = (vs_identity_sample){.vector = vecs + (size_t)n * (size_t)dim,
                                    .face_id = fid,
                                    .image_sha256 = json_string_value(json_object_get(f, "image_sha256")),
                                    .quality = q};
        n++;
    }
    if (rc == VS_OK && n > 0) rc = vs_identity_enroll(r->p, r->tenant, identity_id, s, n, n_samples, NULL, err);
    vs_free(vecs);
    json_decref(faces);
    return rc;
}

/* POST /people/{id}/name {"name"}: the person gets the name and, the first
 * time, an identity made of its best faces (verify and identify then know
 * it); a later rename changes the person's name. */
static void person_name(vs_req *r, vs_people *pp, const char *id) {
    json_t *b = vs_req_body(r, VS_BODY_JSON, &vs_schema_person_name, NULL);
    if (!b) return;
    const char *name = json_string_value(json_object_get(b, "name"));
    json_t *o = NULL;
    vs_error err = {0};
    int n_samples = 0;
    vs_err rc = vs_people_get(pp, r->tenant, id, &o, &err);
    const char *have = rc == VS_OK ? json_string_value(json_object_get(o, "identity_id")) : NULL;
    char iid[VS_UUID_STR] = "";
    if (rc == VS_OK && !have) {
        rc = vs_identity_create(r->p, r->tenant, name, iid, &err);
        if (rc == VS_OK) rc = enroll_person(r, pp, id, iid, &n_samples, &err);
    }
    if (rc == VS_OK) rc = vs_people_name(pp, r->tenant, id, name, iid[0] ? iid : NULL, &err);
    json_decref(o);
    json_decref(b);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &err);
    if (vs_people_get(pp, r->tenant, id, &o, &err) != VS_OK) return vs_reply_vs_err(r, VS_ERR_BACKEND, &err);
    dress_person(r, o);
    if (iid[0]) json_object_set_new(o, "samples_enrolled", json_integer(n_samples));
    vs_reply_json(r, 200, o);
}

/* The person after a decision, or the error. */
static void reply_person(vs_req *r, vs_people *pp, const char *id, vs_err rc, vs_error *err) {
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, err);
    json_t *o = NULL;
    rc = vs_people_get(pp, r->tenant, id, &o, err);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, err);
    dress_person(r, o);
    vs_reply_json(r, 200, o);
}

static void person_merge(vs_req *r, vs_people *pp, const char *id) {
    json_t *b = vs_req_body(r, VS_BODY_JSON, &vs_schema_person_merge, NULL);
    if (!b) return;
    vs_error err = {0};
    vs_err rc = vs_people_merge(pp, r->tenant, id, json_string_value(json_object_get(b, "person_id")), &err);
    json_decref(b);
    reply_person(r, pp, id, rc, &err);
}

static void person_split(vs_req *r, vs_people *pp, const char *id) {
    json_t *b = vs_req_body(r, VS_BODY_JSON, &vs_schema_person_split, NULL);
    if (!b) return;
    json_t *ids = json_object_get(b, "face_ids");
    size_t n = json_array_size(ids);
    const char **v = vs_calloc(n, sizeof *v);
    char nid[VS_UUID_STR];
    vs_error err = {0};
    for (size_t i = 0; v && i < n; i++) v[i] = json_string_value(json_array_get(ids, i));
    vs_err rc = v ? vs_people_split(pp, r->tenant, id, v, (int)n, nid, &err) : vs_fail(&err, VS_ERR_NOMEM, "split");
    vs_free(v);
    json_decref(b);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &err);
    json_t *o = NULL;
    if (vs_people_get(pp, r->tenant, nid, &o, &err) != VS_OK) return vs_reply_vs_err(r, VS_ERR_BACKEND, &err);
    dress_person(r, o);
    vs_reply_json(r, 201, o);
}

static void person_flag(vs_req *r, vs_people *pp, const char *id, const vs_schema *schema, const char *flag) {
    json_t *b = vs_req_body(r, VS_BODY_JSON, schema, NULL);
    if (!b) return;
    vs_error err = {0};
    vs_err rc = vs_people_set_flag(pp, r->tenant, id, flag, json_is_true(json_object_get(b, flag)), &err);
    json_decref(b);
    reply_person(r, pp, id, rc, &err);
}

void vs_route_person_action(vs_req *r, const char *id, const char *action) {
    vs_people *pp = people_of(r);
    if (!pp) return;
    if (!strcmp(action, "name")) return person_name(r, pp, id);
    if (!strcmp(action, "merge")) return person_merge(r, pp, id);
    if (!strcmp(action, "split")) return person_split(r, pp, id);
    if (!strcmp(action, "watch")) return person_flag(r, pp, id, &vs_schema_person_watch, "watched");
    if (!strcmp(action, "ignore")) return person_flag(r, pp, id, &vs_schema_person_ignore, "ignored");
    vs_reply_error(r, 404, "not_found", "no route POST /api/v1/people/{id}/%.32s (name, merge, split, watch, ignore)",
                   action);
}

void vs_route_people_annotate(vs_req *r, json_t *results) {
    vs_people *pp = r->app->people;
    size_t n = json_array_size(results);
    if (!pp || n == 0) return;
    const char **ids = vs_calloc(n, sizeof *ids);
    char(*pids)[VS_UUID_STR] = vs_calloc(n, VS_UUID_STR);
    char(*names)[VS_PERSON_NAME_MAX] = vs_calloc(n, VS_PERSON_NAME_MAX);
    vs_error err = {0};
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = json_string_value(json_object_get(json_array_get(results, i), "face_id"));
    if (ids && pids && names && vs_people_of_faces(pp, r->tenant, ids, (int)n, pids, names, &err) == VS_OK)
        for (size_t i = 0; i < n; i++) {
            json_t *o = json_array_get(results, i);
            if (pids[i][0]) json_object_set_new(o, "person_id", json_string(pids[i]));
            if (names[i][0]) json_object_set_new(o, "person_name", json_string(names[i]));
        }
    vs_free(ids);
    vs_free(pids);
    vs_free(names);
}
