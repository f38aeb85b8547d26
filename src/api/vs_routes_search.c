/* vs_routes_search.c - POST /api/v1/search: by image (best face, or every
 * face with "faces":"all"), by vector, or by an indexed face id; top_k,
 * threshold and payload filters; always within the caller's tenant. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_hash.h"
#include "vs_routes.h"

typedef struct search_opts {
    int top_k;
    float threshold;
    vs_filter filter;
    int all_faces;
    int by_image;             /* group_by "image": groups beside the flat results */
    const char *exclude_id;   /* the query face itself, when searching by face_id */
} search_opts;

/* Turns one hit into the documented result object. */
static json_t *hit_json(vs_app *a, const vs_engine *e, const vs_hit *h) {
    json_t *pl = json_loads(h->payload_json, 0, NULL);
    float match = vs_engine_config(e)->match_threshold;
    json_t *o = json_pack("{s:s,s:f,s:b,s:s}", "face_id", h->id, "score", (double)h->score, "same_person",
                          h->score >= match, "band", vs_engine_band(e, h->score));
    static const char *copy[] = {"image_sha256", "site", "source_url", "page_url", "bbox", "quality_score", "det_score", "face_index",
                                 "near_duplicate_of"};
    for (size_t i = 0; pl && i < sizeof copy / sizeof copy[0]; i++) {
        json_t *v = json_object_get(pl, copy[i]);
        if (v) json_object_set(o, copy[i], v);
    }
    if (pl) vs_add_face_urls(a, pl, o);
    json_decref(pl);
    return o;
}

/* Runs one vector query; returns the results array or NULL after replying. */
static json_t *query(vs_req *r, const float *vec, const search_opts *so) {
    vs_hit *hits = NULL;
    int n = 0;
    vs_error err = {0};
    int64_t t0 = vs_now_ms();
    int k = so->top_k + (so->exclude_id ? 1 : 0);
    vs_err rc = r->app->index->ops->search(r->app->index, r->p->coll.faces, vec, &so->filter, k, so->threshold, &hits,
                                           &n, &err);
    if (rc == VS_ERR_NOT_FOUND) { /* nothing indexed yet */
        n = 0;
        rc = VS_OK;
    }
    if (rc != VS_OK) {
        vs_reply_vs_err(r, rc, &err);
        return NULL;
    }
    int64_t ms = vs_now_ms() - t0;
    static const int64_t bounds[7] = {1, 5, 10, 25, 50, 100, 250};
    int b = 0;
    while (b < 7 && ms > bounds[b]) b++;
    atomic_fetch_add(&r->app->search_count, 1);
    atomic_fetch_add(&r->app->search_ms_sum, ms);
    atomic_fetch_add(&r->app->search_hist[b], 1);
    json_t *arr = json_array();
    for (int i = 0, kept = 0; i < n && kept < so->top_k; i++) {
        if (so->exclude_id && !strcmp(hits[i].id, so->exclude_id)) continue;
        json_array_append_new(arr, hit_json(r->app, r->p->engine, &hits[i]));
        kept++;
    }
    vs_hits_free(hits, n);
    vs_route_people_annotate(r, arr);
    return arr;
}

/* Reads top_k, threshold, filters and faces from the JSON body. */
static int read_opts(vs_req *r, json_t *b, search_opts *so) {
    memset(so, 0, sizeof *so);
    so->top_k = 10;
    so->filter.tenant_id = r->tenant;
    json_t *v;
    if ((v = json_object_get(b, "top_k"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000) {
            vs_reply_error(r, 400, "bad_request", "top_k must be an integer from 1 to 1000");
            return -1;
        }
        so->top_k = (int)json_integer_value(v);
    }
    if ((v = json_object_get(b, "threshold"))) {
        if (!json_is_number(v) || json_number_value(v) < -1 || json_number_value(v) > 1) {
            vs_reply_error(r, 400, "bad_request", "threshold must be a number from -1 to 1");
            return -1;
        }
        so->threshold = (float)json_number_value(v);
    } else {
        so->threshold = -1.0f;
    }
    /* filters: the schema has checked their types, so none is ignored */
    json_t *f = json_object_get(b, "filters");
    so->filter.site = json_string_value(json_object_get(f, "site"));
    so->filter.image_sha256 = json_string_value(json_object_get(f, "image_sha256"));
    if (so->filter.image_sha256 && !vs_sha256_hex_ok(so->filter.image_sha256)) {
        vs_reply_error(r, 400, "bad_request", "filters.image_sha256: must be 64 lower-case hex digits");
        return -1;
    }
    if ((v = json_object_get(f, "min_quality"))) so->filter.min_quality = (float)json_number_value(v);
    /* every point compared, even where a tenant's graph would answer */
    so->filter.exact = json_is_true(json_object_get(b, "exact"));
    const char *faces = json_string_value(json_object_get(b, "faces"));
    so->all_faces = faces && !strcmp(faces, "all");
    so->by_image = json_object_get(b, "group_by") != NULL; /* the schema allows "image" only */
    return 0;
}

/* A new group of one image, from its best result. */
static json_t *new_group(json_t *res) {
    static const char *const keep[] = {"image_sha256", "score", "same_person", "band", "source_url", "page_url", "site"};
    json_t *g = json_pack("{s:[O],s:[]}", "faces", res, "near_duplicates");
    for (size_t k = 0; g && k < sizeof keep / sizeof keep[0]; k++)
        if (json_object_get(res, keep[k])) json_object_set(g, keep[k], json_object_get(res, keep[k]));
    return g;
}

/* The entry of an image folded into an earlier group as its near duplicate. */
static json_t *near_dup(json_t *res) {
    static const char *const keep[] = {"image_sha256", "score", "face_id", "source_url", "page_url", "site", "thumb_url"};
    json_t *d = json_object();
    for (size_t k = 0; d && k < sizeof keep / sizeof keep[0]; k++)
        if (json_object_get(res, keep[k])) json_object_set(d, keep[k], json_object_get(res, keep[k]));
    return d;
}

/* The face ids a grouping has seen, each with its group: `owner` maps a
 * result's face_id, `wanted` the face its near_duplicate_of names. */
typedef struct face_links {
    json_t *owner, *wanted;
} face_links;

/* The earlier group res is a near duplicate of (its near_duplicate_of is a
 * face seen there, or a face seen there names res's face), else -1. */
static int linked_group(const face_links *fl, json_t *res) {
    const char *id = json_string_value(json_object_get(res, "face_id"));
    const char *dup = json_string_value(json_object_get(res, "near_duplicate_of"));
    json_t *g = dup ? json_object_get(fl->owner, dup) : NULL;
    if (!g && id) g = json_object_get(fl->wanted, id);
    return g ? (int)json_integer_value(g) : -1;
}

/* Remembers res as seen in group g. */
static void link_face(face_links *fl, json_t *res, int g) {
    const char *id = json_string_value(json_object_get(res, "face_id"));
    const char *dup = json_string_value(json_object_get(res, "near_duplicate_of"));
    if (id) json_object_set_new(fl->owner, id, json_integer(g));
    if (dup && !json_object_get(fl->wanted, dup)) json_object_set_new(fl->wanted, dup, json_integer(g));
}

/* Results (best first) grouped by image, groups in the order of their best
 * score. An image whose face is a near duplicate of a face seen in an
 * earlier group (near_duplicate_of names a face id, either way round, and
 * through images folded there before) is listed in that group's
 * near_duplicates, not as a group of its own: a photo posted at three sizes
 * is one hit to look at, not three. */
static json_t *group_by_image(json_t *results) {
    json_t *groups = json_array(), *where = json_object(); /* sha256 -> group index */
    face_links fl = {json_object(), json_object()};
    size_t i;
    json_t *res;
    json_array_foreach(results, i, res) {
        const char *sha = json_string_value(json_object_get(res, "image_sha256"));
        if (!sha || !groups || !where || !fl.owner || !fl.wanted) continue;
        json_t *at = json_object_get(where, sha);
        int g = at ? (int)json_integer_value(at) : linked_group(&fl, res);
        json_t *grp = g >= 0 ? json_array_get(groups, (size_t)g) : NULL;
        if (!grp) { /* an image of its own */
            g = (int)json_array_size(groups);
            json_array_append_new(groups, new_group(res));
        } else if (at && !strcmp(json_string_value(json_object_get(grp, "image_sha256")), sha)) {
            json_array_append(json_object_get(grp, "faces"), res); /* another face of the group's image */
        } else if (!at) { /* first seen: folded in as a near duplicate */
            json_array_append_new(json_object_get(grp, "near_duplicates"), near_dup(res));
        }
        json_object_set_new(where, sha, json_integer(g));
        link_face(&fl, res, g);
    }
    json_decref(where);
    json_decref(fl.owner);
    json_decref(fl.wanted);
    return groups;
}

/* Adds "groups" to o from its "results" when the request asked for them. */
static void add_groups(const search_opts *so, json_t *o) {
    if (so->by_image && o) json_object_set_new(o, "groups", group_by_image(json_object_get(o, "results")));
}

/* Search by the faces of an image. */
static void search_image(vs_req *r, const uint8_t *data, size_t len, const search_opts *so) {
    vs_faces faces = {0};
    if (vs_req_analyze(r, data, len, &faces) != 0) return;
    json_t *qf = json_array(), *results = NULL;
    int best = vs_faces_best(&faces);
    for (int i = 0; i < faces.n; i++) {
        json_t *f = vs_query_face_json(&faces.faces[i]);
        json_object_set_new(f, "best", json_boolean(i == best));
        if (so->all_faces || i == best) {
            json_t *res = query(r, faces.faces[i].embedding, so);
            if (!res) {
                json_decref(f);
                json_decref(qf);
                json_decref(results);
                vs_faces_free(&faces);
                return;
            }
            if (i == best) results = json_incref(res);
            if (so->all_faces) json_object_set(f, "results", res);
            if (so->all_faces) add_groups(so, f);
            json_decref(res);
        }
        json_array_append_new(qf, f);
    }
    vs_faces_free(&faces);
    json_t *out = json_pack("{s:o,s:o}", "query_faces", qf, "results", results ? results : json_array());
    if (best < 0) json_object_set_new(out, "message", json_string("no face found in the query image"));
    add_groups(so, out);
    vs_reply_json(r, 200, out);
}

void vs_route_search(vs_req *r) {
    search_opts so;
    json_t *b = vs_req_body(r, VS_BODY_JSON | VS_BODY_FORM | VS_BODY_IMAGE, &vs_schema_search, &vs_schema_search_form);
    if (!b) return;
    if (read_opts(r, b, &so) != 0) {
        json_decref(b);
        return;
    }
    int dim = vs_engine_embedding_dim(r->p->engine);
    json_t *vec = json_object_get(b, "vector");
    const char *face_id = json_string_value(json_object_get(b, "face_id"));
    if (vec || face_id) { /* by a vector, or by an indexed face (not returned as its own match) */
        float *v = vs_malloc(sizeof(float) * (size_t)dim);
        if (!v) vs_reply_error(r, 500, "internal", "out of memory");
        else if (vec ? vs_req_vector(r, vec, v) == 0 : vs_req_face_vector(r, face_id, v) == 0) {
            if (!vec) so.exclude_id = face_id;
            json_t *res = query(r, v, &so);
            json_t *out = res ? json_pack("{s:[],s:o}", "query_faces", "results", res) : NULL;
            add_groups(&so, out);
            if (out) vs_reply_json(r, 200, out);
        }
        vs_free(v);
    } else {
        uint8_t *data = NULL;
        size_t len = 0;
        int got = vs_req_image(r, vs_req_is(r, "application/json") ? b : NULL, &data, &len);
        if (got > 0) search_image(r, data, len, &so);
        else if (got == 0) vs_reply_error(r, 400, "bad_request", "give one of image_b64, vector, face_id, or multipart field 'image'");
        vs_free(data);
    }
    json_decref(b);
}
