/* vs_routes_crawl.c - POST /api/v1/crawl (queue a crawl job for the
 * caller's tenant), GET /api/v1/crawl (its jobs), GET and DELETE
 * /api/v1/crawl/{id}. Jobs run in the server's crawl runner; their address
 * rules are those of URL ingest. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_crawl.h"
#include "vs_routes.h"

#define API_MAX_DEPTH 10
#define API_MAX_PAGES 100000
#define API_MAX_IMAGES 1000000

/* Reads an optional number field within [lo, hi] into *out; replies 400 and
 * returns -1 when it is not a number or out of range. */
static int num_field(vs_req *r, json_t *body, const char *name, double lo, double hi, double *out) {
    json_t *v = json_object_get(body, name);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi) {
        vs_reply_error(r, 400, "bad_request", "'%s' must be a number from %g to %g", name, lo, hi);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

/* 400 when the seed's host is an address literal the rules refuse: a crawl
 * that can never fetch anything is refused now, not later. Host names are
 * checked at connect time, on every connection (DNS rebinding). */
static int seed_address_ok(vs_req *r, const char *url) {
    CURLU *u = curl_url();
    char *host = NULL;
    int ok = 1;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        vs_fetch_opts fo = {.allow_cidrs = r->app->cfg.fetch_allow_cidrs};
        int literal = strspn(host, "0123456789.") == strlen(host) || host[0] == '[';
        if (literal && !vs_fetch_addr_allowed(host, &fo)) {
            vs_reply_error(r, 400, "bad_request",
                           "address not allowed: %s (loopback, private, link-local and other internal ranges are "
                           "refused unless VISAGE_FETCH_ALLOW names them)", host);
            ok = 0;
        }
    }
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* Fills the job's options from the request body; -1 after replying 400. */
static int job_from_body(vs_req *r, json_t *body, vs_crawl_job *job) {
    const char *url = json_string_value(json_object_get(body, "url"));
    char norm[VS_CRAWL_URL_MAX];
    if (!url || vs_crawl_normalise(url, norm, sizeof norm) != 0) {
        vs_reply_error(r, 400, "bad_request", "'url' must be an absolute http or https URL");
        return -1;
    }
    vs_crawl_job_limits l;
    vs_crawl_job_limits_default(&l);
    if (num_field(r, body, "depth", 0, API_MAX_DEPTH, &l.depth) ||
        num_field(r, body, "max_pages", 1, API_MAX_PAGES, &l.max_pages) ||
        num_field(r, body, "max_images", 1, API_MAX_IMAGES, &l.max_images) ||
        num_field(r, body, "delay_s", 0, 3600, &l.delay_s) || num_field(r, body, "timeout_s", 0.1, 600, &l.timeout_s) ||
        num_field(r, body, "max_image_mb", 1, 256, &l.max_image_mb))
        return -1;
    json_t *hosts = json_object_get(body, "allow_hosts"), *face = json_object_get(body, "require_face");
    if ((hosts && !json_is_string(hosts)) || (face && !json_is_boolean(face))) {
        vs_reply_error(r, 400, "bad_request", "'allow_hosts' must be a string of comma-separated hosts and "
                                              "'require_face' a boolean");
        return -1;
    }
    if (hosts && strlen(json_string_value(hosts)) >= sizeof job->allow_hosts) {
        vs_reply_error(r, 400, "bad_request", "'allow_hosts' is longer than %zu characters", sizeof job->allow_hosts - 1);
        return -1;
    }
    if (!seed_address_ok(r, norm)) return -1;
    snprintf(job->tenant, sizeof job->tenant, "%s", r->tenant);
    snprintf(job->seed_url, sizeof job->seed_url, "%s", norm);
    snprintf(job->allow_hosts, sizeof job->allow_hosts, "%s", hosts ? json_string_value(hosts) : "");
    vs_crawl_job_set_limits(job, &l);
    job->require_face = face && json_is_true(face);
    return 0;
}

void vs_route_crawl_create(vs_req *r) {
    vs_app *a = r->app;
    json_t *body = vs_req_body(r, VS_BODY_JSON, &vs_schema_crawl, NULL);
    if (!body) return;
    vs_crawl_job job;
    memset(&job, 0, sizeof job);
    if (job_from_body(r, body, &job) != 0) {
        json_decref(body);
        return;
    }
    json_decref(body);
    vs_error e = {0};
    vs_err rc = vs_crawl_job_create(a->crawl.db, &job, &e);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &e);
    vs_crawl_runner_wake(a->crawler);
    json_t *o = vs_crawl_job_json(&a->crawl, &job);
    if (!o) return vs_reply_error(r, 500, "internal", "out of memory");
    snprintf(r->location, sizeof r->location, "/api/v1/crawl/%s", job.id);
    vs_reply_json(r, 202, o);
}

void vs_route_crawl_get(vs_req *r, const char *id) {
    vs_app *a = r->app;
    vs_crawl_job job;
    vs_error e = {0};
    vs_err rc = vs_crawl_job_get(a->crawl.db, r->tenant, id, &job, &e);
    if (rc == VS_ERR_NOT_FOUND) return vs_reply_error(r, 404, "not_found", "no crawl job %.64s", id);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &e);
    json_t *o = vs_crawl_job_json(&a->crawl, &job);
    if (!o) return vs_reply_error(r, 500, "internal", "out of memory");
    vs_reply_json(r, 200, o);
}

void vs_route_crawl_list(vs_req *r) {
    vs_app *a = r->app;
    const char *q = vs_req_query(r, "limit");
    char *end = NULL;
    long cap = q ? strtol(q, &end, 10) : 50;
    if (q && (end == q || *end || cap < 1 || cap > 200))
        return vs_reply_error(r, 400, "bad_request", "limit: must be an integer from 1 to 200, got \"%.32s\"", q);
    vs_crawl_job *jobs = vs_calloc((size_t)cap, sizeof *jobs);
    if (!jobs) return vs_reply_error(r, 500, "internal", "out of memory");
    int n = 0;
    vs_error e = {0};
    vs_err rc = vs_crawl_job_list(a->crawl.db, r->tenant, jobs, (int)cap, &n, &e);
    json_t *arr = json_array();
    for (int i = 0; rc == VS_OK && arr && i < n; i++) json_array_append_new(arr, vs_crawl_job_json(&a->crawl, &jobs[i]));
    vs_free(jobs);
    if (rc != VS_OK) {
        json_decref(arr);
        return vs_reply_vs_err(r, rc, &e);
    }
    vs_reply_json(r, 200, json_pack("{s:o}", "jobs", arr));
}

/* Stops a job for good: a queued one at once; a running one through the
 * thread that runs it (it ends "cancelled" within a fraction of a second,
 * keeping what it already stored). An ended job is left as it is (409). */
void vs_route_crawl_cancel(vs_req *r, const char *id) {
    vs_app *a = r->app;
    vs_crawl_job job;
    vs_error e = {0};
    int cancelled = 0;
    vs_err rc = vs_crawl_job_cancel_queued(a->crawl.db, r->tenant, id, &cancelled, &e);
    if (rc == VS_ERR_NOT_FOUND) return vs_reply_error(r, 404, "not_found", "no crawl job %.64s", id);
    /* not queued any more: running in one of the runner's slots (a claim
     * puts it there atomically, see vs_crawl_runner.c), or ended */
    if (rc == VS_OK && !cancelled) cancelled = vs_crawl_runner_cancel(a->crawler, id);
    if (rc == VS_OK) rc = vs_crawl_job_get(a->crawl.db, r->tenant, id, &job, &e);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &e);
    if (!cancelled)
        return vs_reply_error(r, 409, "conflict", "crawl job %.64s is %s and cannot be cancelled", id,
                              vs_crawl_state_name(job.state));
    json_t *o = vs_crawl_job_json(&a->crawl, &job);
    if (!o) return vs_reply_error(r, 500, "internal", "out of memory");
    vs_reply_json(r, 202, o);
}
