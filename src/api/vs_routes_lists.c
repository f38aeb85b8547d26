/* vs_routes_lists.c - browsing a tenant's data for the web app: its images
 * and its indexed faces newest first, page by page (GET /api/v1/images,
 * GET /api/v1/faces), and the dashboard's counts (GET /api/v1/stats).
 * Tuned for pages of up to 200 rows read by a person, not for exports: each
 * page is one catalog query, walked with a keyset cursor (created_at,
 * sha256[, face_index]) so a page costs the same however deep it is. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vs_alloc.h"
#include "vs_identity.h"
#include "vs_routes.h"

#define LIST_DEFAULT 50
#define LIST_MAX 200

/* A listing's paging and filters as the query string gave them. */
typedef struct list_args {
    vs_image_query q;
    int limit;
    int after_face;           /* faces: the cursor's face_index; -1: none */
    char after_sha[65];
} list_args;

/* limit=1..200 (default 50); -1 after replying 400 naming the field. */
static int parse_limit(vs_req *r, int *limit) {
    const char *s = vs_req_query(r, "limit");
    char *end = NULL;
    *limit = LIST_DEFAULT;
    if (!s) return 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > LIST_MAX) {
        vs_reply_error(r, 400, "bad_request", "limit: must be an integer from 1 to %d, got \"%.32s\"", LIST_MAX, s);
        return -1;
    }
    *limit = (int)v;
    return 0;
}

/* "2026-12-03", "2026-12-03T10:00:00Z" (optionally with .fff) as ms since
 * the epoch, UTC; -1 when s is not one. */
static int parse_iso(const char *s, int64_t *ms) {
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10) return -1;
    const char *t = s + n;
    if (*t) {
        int m2 = 0;
        if (sscanf(t, "T%2d:%2d:%2d%n", &h, &mi, &sec, &m2) != 3 || m2 != 9) return -1;
        t += m2;
        if (*t == '.') {
            int m3 = 0;
            if (sscanf(t, ".%3d%n", &frac, &m3) != 1 || m3 != 4) return -1;
            t += m3;
        }
        if (strcmp(t, "Z") != 0) return -1;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970) return -1;
    tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d, tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = sec;
    *ms = (int64_t)timegm(&tm) * 1000 + frac;
    return 0;
}

/* since/until: integer ms since the epoch or an ISO-8601 UTC date/time;
 * absent leaves *ms; -1 after replying 400. */
static int parse_time(vs_req *r, const char *name, int64_t *ms) {
    const char *s = vs_req_query(r, name);
    if (!s) return 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (*s && !*end && v >= 0) {
        *ms = v;
        return 0;
    }
    if (parse_iso(s, ms) == 0) return 0;
    vs_reply_error(r, 400, "bad_request", "%s: give ms since the epoch or an ISO-8601 UTC time (2026-12-03 or "
                   "2026-12-03T10:00:00Z), got \"%.64s\"", name, s);
    return -1;
}

/* The cursor "{created_ms}.{sha256}[.{face_index}]" of the last row of the
 * previous page (faces carry the index); -1 after replying 400. */
static int parse_cursor(vs_req *r, int with_face, list_args *a) {
    const char *s = vs_req_query(r, "cursor");
    if (!s) return 0;
    long long created = -1;
    int face = -1, n = 0;
    int ok = sscanf(s, "%18lld.%64[0-9a-f]%n", &created, a->after_sha, &n) == 2 && created >= 0 &&
             vs_sha256_hex_ok(a->after_sha);
    if (ok && with_face) {
        int m = 0;
        ok = sscanf(s + n, ".%4d%n", &face, &m) == 1 && face >= 0 && s[n + m] == '\0';
    } else if (ok) ok = s[n] == '\0';
    if (!ok) {
        vs_reply_error(r, 400, "bad_request", "cursor: not a cursor this listing returned (give next_cursor as it came)");
        return -1;
    }
    a->q.after_sha256 = a->after_sha;
    a->q.after_created_ms = created;
    a->after_face = face;
    return 0;
}

/* The query string of a listing into a; -1 after replying 400. */
static int parse_list(vs_req *r, int with_face, list_args *a) {
    memset(a, 0, sizeof *a);
    a->q = (vs_image_query){.tenant = r->tenant, .status = -1, .since_ms = INT64_MIN, .until_ms = INT64_MAX};
    a->after_face = -1;
    a->q.site = vs_req_query(r, "site");
    if (parse_limit(r, &a->limit) || parse_time(r, "since", &a->q.since_ms) || parse_time(r, "until", &a->q.until_ms) ||
        parse_cursor(r, with_face, a))
        return -1;
    return 0;
}

/* A record's JSON, or an empty object (queued images have none yet). */
static json_t *record_of(const vs_image_row *row) {
    json_t *o = row->record_json ? json_loads(row->record_json, 0, NULL) : NULL;
    return o ? o : json_object();
}

/* Copies the named members of src that exist into dst. */
static void copy_fields(json_t *dst, json_t *src, const char *const *names) {
    for (int i = 0; names[i]; i++) {
        json_t *v = json_object_get(src, names[i]);
        if (v) json_object_set(dst, names[i], v);
    }
}

typedef struct image_page {
    json_t *items;
    int limit, more;
    char last[128];          /* cursor of the last row kept */
} image_page;

/* One image row of GET /api/v1/images; one beyond the limit only says
 * there is more. */
static int image_row(void *ctx, const vs_image_row *row) {
    image_page *pg = ctx;
    if ((int)json_array_size(pg->items) == pg->limit) {
        pg->more = 1;
        return 1;
    }
    static const char *const keep[] = {"width", "height", "faces_found", "site", "source_url", "page_url", NULL};
    json_t *rec = record_of(row);
    json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "image_sha256", row->sha256, "status",
                          vs_image_status_name(row->status), "created_at", (json_int_t)row->created_ms, "updated_at",
                          (json_int_t)row->updated_ms, "faces_indexed",
                          (json_int_t)json_array_size(json_object_get(rec, "faces_indexed")), "faces_not_indexed",
                          (json_int_t)json_array_size(json_object_get(rec, "faces_not_indexed")));
    if (o) {
        copy_fields(o, rec, keep);
        if (row->external_id) json_object_set_new(o, "external_image_id", json_string(row->external_id));
        json_array_append_new(pg->items, o);
    }
    json_decref(rec);
    snprintf(pg->last, sizeof pg->last, "%" PRId64 ".%s", row->created_ms, row->sha256);
    return 0;
}

/* Thumbnail URLs, added after the listing (not under the catalog lock). */
static void add_thumbnails(vs_req *r, json_t *items) {
    size_t i;
    json_t *o;
    json_array_foreach(items, i, o) {
        if (strcmp(json_string_value(json_object_get(o, "status")), "done") != 0) continue;
        char key[256], url[1024];
        snprintf(key, sizeof key, "%s/%s_thumb.jpg", r->tenant, json_string_value(json_object_get(o, "image_sha256")));
        vs_app_blob_url(r->app, "thumbnails", key, url, sizeof url);
        json_object_set_new(o, "thumbnail_url", json_string(url));
    }
}

/* status=queued|processing|done|failed into q; -1 after replying 400. */
static int parse_status(vs_req *r, vs_image_query *q) {
    const char *s = vs_req_query(r, "status");
    if (!s) return 0;
    for (int k = VS_IMG_QUEUED; k <= VS_IMG_FAILED; k++)
        if (!strcmp(s, vs_image_status_name((vs_image_status)k))) {
            q->status = k;
            return 0;
        }
    vs_reply_error(r, 400, "bad_request", "status: expected one of queued, processing, done, failed, got \"%.32s\"", s);
    return -1;
}

void vs_route_image_list(vs_req *r) {
    if (vs_req_query(r, "external_image_id")) return vs_route_image_get(r, NULL);
    list_args a;
    if (parse_list(r, 0, &a) || parse_status(r, &a.q)) return;
    image_page pg = {json_array(), a.limit, 0, ""};
    a.q.limit = a.limit + 1;
    vs_error err = {0};
    vs_err rc = pg.items ? vs_image_record_list(r->app->catalog, &a.q, image_row, &pg, &err)
                         : vs_fail(&err, VS_ERR_NOMEM, "image list");
    if (rc != VS_OK) {
        json_decref(pg.items);
        return vs_reply_vs_err(r, rc, &err);
    }
    add_thumbnails(r, pg.items);
    json_t *out = json_pack("{s:o}", "images", pg.items);
    if (pg.more) json_object_set_new(out, "next_cursor", json_string(pg.last));
    vs_reply_json(r, 200, out);
}

typedef struct face_page {
    json_t *items;
    int limit, more, after_face;
    const char *after_sha;   /* the cursor's image: its faces up to after_face were seen */
    char last[160];
    int rows;                /* images seen by the current catalog call */
    int64_t row_created;     /* the last image seen, to go on from */
    char row_sha[65];
} face_page;

/* The faces of one DONE image, face_index ascending, past the cursor. */
static int face_rows(void *ctx, const vs_image_row *row) {
    face_page *pg = ctx;
    static const char *const keep[] = {"site", "source_url", "page_url", NULL};
    pg->rows++;
    pg->row_created = row->created_ms;
    memcpy(pg->row_sha, row->sha256, 65);
    json_t *rec = record_of(row), *f;
    size_t i;
    int stop = 0;
    json_array_foreach(json_object_get(rec, "faces_indexed"), i, f) {
        int idx = (int)json_integer_value(json_object_get(f, "face_index"));
        if (pg->after_sha && !strcmp(pg->after_sha, row->sha256) && idx <= pg->after_face) continue;
        if ((int)json_array_size(pg->items) == pg->limit) {
            pg->more = stop = 1;
            break;
        }
        json_t *o = json_pack("{s:O,s:s,s:i,s:O,s:O,s:I}", "face_id", json_object_get(f, "face_id"), "image_sha256",
                              row->sha256, "face_index", idx, "bbox", json_object_get(f, "bbox"), "quality_score",
                              json_object_get(f, "quality_score"), "created_at", (json_int_t)row->created_ms);
        if (!o) continue;
        copy_fields(o, rec, keep);
        json_array_append_new(pg->items, o);
        snprintf(pg->last, sizeof pg->last, "%" PRId64 ".%s.%d", row->created_ms, row->sha256, idx);
    }
    json_decref(rec);
    return stop;
}

/* crop_url and thumb_url of each listed face, from the pipeline's keys. */
static void add_face_files(vs_req *r, json_t *items) {
    size_t i;
    json_t *o;
    json_array_foreach(items, i, o)
        vs_add_face_index_urls(r, json_string_value(json_object_get(o, "image_sha256")),
                               (int)json_integer_value(json_object_get(o, "face_index")), o);
}

/* The images after the cursor, in batches (an image may list no face, so
 * a page's worth of images need not fill a page of faces). */
static vs_err face_scan(vs_req *r, vs_image_query q, face_page *pg, vs_error *err) {
    vs_err rc = VS_OK;
    char from[65]; /* the statement reads it while face_rows moves row_sha on */
    q.limit = pg->limit + 1;
    for (;;) {
        pg->rows = 0;
        rc = vs_image_record_list(r->app->catalog, &q, face_rows, pg, err);
        if (rc != VS_OK || pg->more || pg->rows < q.limit) return rc;
        memcpy(from, pg->row_sha, sizeof from);
        q.after_sha256 = from;
        q.after_created_ms = pg->row_created;
    }
}

void vs_route_face_list(vs_req *r) {
    list_args a;
    if (parse_list(r, 1, &a)) return;
    a.q.sha256 = vs_req_query(r, "image_sha256");
    if (a.q.sha256 && !vs_sha256_hex_ok(a.q.sha256))
        return vs_reply_error(r, 400, "bad_request", "image_sha256: must be 64 lower-case hex digits");
    a.q.status = VS_IMG_DONE;
    face_page pg = {json_array(), a.limit, 0, a.after_face, a.q.after_sha256, "", 0, 0, ""};
    vs_error err = {0};
    vs_err rc = pg.items ? VS_OK : vs_fail(&err, VS_ERR_NOMEM, "face list");
    /* first the rest of the cursor's own image: the listing below starts
     * strictly after it */
    if (rc == VS_OK && a.q.after_sha256 && (!a.q.sha256 || !strcmp(a.q.sha256, a.q.after_sha256))) {
        vs_image_query one = a.q;
        one.sha256 = a.q.after_sha256;
        one.after_sha256 = NULL;
        one.limit = 1;
        rc = vs_image_record_list(r->app->catalog, &one, face_rows, &pg, &err);
    }
    if (rc == VS_OK && !pg.more) rc = face_scan(r, a.q, &pg, &err);
    if (rc != VS_OK) {
        json_decref(pg.items);
        return vs_reply_vs_err(r, rc, &err);
    }
    add_face_files(r, pg.items);
    json_t *out = json_pack("{s:o}", "faces", pg.items);
    if (pg.more) json_object_set_new(out, "next_cursor", json_string(pg.last));
    vs_reply_json(r, 200, out);
}

typedef struct dead_count {
    const char *tenant;
    int64_t n;
} dead_count;

/* Counts the caller's dead letters (the queue is shared by every tenant). */
static int count_dead(void *ctx, const vs_dead_msg *m) {
    dead_count *c = ctx;
    json_t *body = json_loads(m->body, 0, NULL);
    const char *t = json_string_value(json_object_get(body, "tenant_id"));
    if (t && !strcmp(t, c->tenant)) c->n++;
    json_decref(body);
    return 0;
}

/* The tenant's crawl jobs that are running now. */
static int64_t crawls_running(vs_req *r) {
    if (!r->app->crawl.db) return 0;
    enum { CAP = 256 };
    vs_crawl_job *jobs = vs_calloc(CAP, sizeof *jobs);
    int n = 0;
    int64_t k = 0;
    vs_error err = {0};
    if (jobs && vs_crawl_job_list(r->app->crawl.db, r->tenant, jobs, CAP, &n, &err) == VS_OK)
        for (int i = 0; i < n; i++) k += jobs[i].state == VS_CRAWL_RUNNING;
    vs_free(jobs);
    return k;
}

/* The dashboard's numbers, all the caller's own: images by status, faces
 * indexed (the DONE records' lists), identities, running crawls, images
 * waiting (queued or processing), dead letters, images done in the last
 * minute. */
void vs_route_stats(vs_req *r) {
    int64_t st[VS_IMG_ERASED + 1], last_min = 0, faces = 0;
    vs_error err = {0};
    vs_err rc = vs_image_record_counts(r->app->catalog, r->tenant, st, &last_min, &faces, &err);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &err);
    dead_count dead = {r->tenant, 0};
    rc = r->app->queue->ops->list_dead(r->app->queue, 1000, count_dead, &dead, &err);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &err);
    json_t *ids = json_array();
    rc = vs_identity_list(r->p, r->tenant, ids, &err);
    if (rc == VS_ERR_NOT_FOUND) rc = VS_OK; /* no identity collection yet */
    if (rc != VS_OK) {
        json_decref(ids);
        return vs_reply_vs_err(r, rc, &err);
    }
    json_t *out = json_pack("{s:{s:I,s:I,s:I,s:I},s:I,s:I,s:I,s:I,s:I,s:I}", "images", "queued",
                            (json_int_t)st[VS_IMG_QUEUED], "processing", (json_int_t)st[VS_IMG_PROCESSING], "done",
                            (json_int_t)st[VS_IMG_DONE], "failed", (json_int_t)st[VS_IMG_FAILED], "faces_indexed",
                            (json_int_t)faces, "identities", (json_int_t)json_array_size(ids), "crawl_jobs_running",
                            (json_int_t)crawls_running(r), "queue_depth",
                            (json_int_t)(st[VS_IMG_QUEUED] + st[VS_IMG_PROCESSING]), "dead_letters", (json_int_t)dead.n,
                            "processed_last_minute", (json_int_t)last_min);
    json_decref(ids);
    vs_reply_json(r, 200, out);
}
