/* vs_routes_ops.c - liveness, readiness (each backend's health), Prometheus
 * metrics, the dead-letter list, and the web UI's static files. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_routes.h"

void vs_route_healthz(vs_req *r) { vs_reply_json(r, 200, json_pack("{s:s}", "status", "ok")); }

void vs_route_readyz(vs_req *r) {
    vs_app *a = r->app;
    int store = a->store->ops->healthy(a->store), queue = a->queue->ops->healthy(a->queue),
        index = a->index->ops->healthy(a->index);
    int ok = store && queue && index;
    vs_reply_json(r, ok ? 200 : 503,
                  json_pack("{s:s,s:{s:s,s:s,s:s}}", "status", ok ? "ready" : "not_ready", "backends", "store",
                            store ? "ok" : "down", "queue", queue ? "ok" : "down", "index", index ? "ok" : "down"));
}

/* Appends printf-formatted text to a growing buffer. */
static void put(char **buf, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void put(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (*buf && *len + (size_t)n < *cap) {
            *len += (size_t)n;
            return;
        }
        size_t nc = (*cap + (size_t)n + 1) * 2;
        char *nb = realloc(*buf, nc);
        if (!nb) return;
        *buf = nb;
        *cap = nc;
    }
}

void vs_route_metrics(vs_req *r) {
    vs_app *a = r->app;
    char *b = NULL;
    size_t len = 0, cap = 0;
    vs_queue_stats qs = {0};
    vs_error err;
    a->queue->ops->stats(a->queue, &qs, &err);
    put(&b, &len, &cap, "# TYPE visage_queue_ready gauge\nvisage_queue_ready %lld\n", (long long)qs.ready);
    put(&b, &len, &cap, "# TYPE visage_queue_in_flight gauge\nvisage_queue_in_flight %lld\n", (long long)qs.in_flight);
    put(&b, &len, &cap, "# TYPE visage_queue_dead gauge\nvisage_queue_dead %lld\n", (long long)qs.dead);
    put(&b, &len, &cap, "# TYPE visage_http_requests_total counter\nvisage_http_requests_total %lld\n", (long long)a->requests);
    put(&b, &len, &cap, "# TYPE visage_http_errors_total counter\nvisage_http_errors_total{class=\"4xx\"} %lld\n"
                        "visage_http_errors_total{class=\"5xx\"} %lld\n", (long long)a->errors_4xx, (long long)a->errors_5xx);
    put(&b, &len, &cap, "# TYPE visage_ingest_accepted_total counter\nvisage_ingest_accepted_total %lld\n",
        (long long)a->ingest_accepted);
    static const char *why[VS_REFUSED_N] = {"rate_ip", "rate_key", "auth_fail", "body_memory", "queue_full",
                                            "host", "origin", "head_timeout", "body_timeout", "query_pixels"};
    put(&b, &len, &cap, "# TYPE visage_http_refused_total counter\n");
    for (int i = 0; i < VS_REFUSED_N; i++)
        put(&b, &len, &cap, "visage_http_refused_total{reason=\"%s\"} %lld\n", why[i], (long long)a->refused[i]);
    put(&b, &len, &cap, "# TYPE visage_http_rate_limited_total counter\nvisage_http_rate_limited_total %lld\n",
        (long long)(a->refused[VS_REFUSED_RATE_IP] + a->refused[VS_REFUSED_RATE_KEY] + a->refused[VS_REFUSED_AUTH_FAIL]));
    vs_crawl_db_stats cs;
    if (a->crawl.db && vs_crawl_db_stats_get(a->crawl.db, &cs, &err) == VS_OK) {
        put(&b, &len, &cap, "# TYPE visage_crawl_jobs gauge\n");
        for (int s = VS_CRAWL_QUEUED; s <= VS_CRAWL_CANCELLED; s++)
            put(&b, &len, &cap, "visage_crawl_jobs{state=\"%s\"} %lld\n", vs_crawl_state_name((vs_crawl_state)s),
                (long long)cs.jobs[s]);
        put(&b, &len, &cap, "# TYPE visage_crawl_requests_total counter\nvisage_crawl_requests_total %lld\n"
                            "# TYPE visage_crawl_pages_total counter\nvisage_crawl_pages_total %lld\n"
                            "# TYPE visage_crawl_images_total counter\nvisage_crawl_images_total{result=\"saved\"} %lld\n"
                            "visage_crawl_images_total{result=\"duplicate\"} %lld\n"
                            "visage_crawl_images_total{result=\"skipped\"} %lld\n"
                            "# TYPE visage_crawl_errors_total counter\nvisage_crawl_errors_total %lld\n"
                            "# TYPE visage_crawl_bytes_total counter\nvisage_crawl_bytes_total %lld\n",
            (long long)cs.total.requests, (long long)cs.total.pages_fetched, (long long)cs.total.images_saved,
            (long long)cs.total.images_duplicate, (long long)cs.total.images_skipped, (long long)cs.total.errors,
            (long long)cs.total.bytes);
    }
    static const char *le_s[8] = {"1", "5", "10", "25", "50", "100", "250", "+Inf"};
    long long cum = 0;
    put(&b, &len, &cap, "# TYPE visage_search_latency_ms histogram\n");
    for (int i = 0; i < 8; i++) {
        cum += a->search_hist[i];
        put(&b, &len, &cap, "visage_search_latency_ms_bucket{le=\"%s\"} %lld\n", le_s[i], cum);
    }
    put(&b, &len, &cap, "visage_search_latency_ms_sum %lld\nvisage_search_latency_ms_count %lld\n",
        (long long)a->search_ms_sum, (long long)a->search_count);
    if (a->workers) {
        vs_worker_stats ws;
        vs_workers_stats(a->workers, &ws);
        put(&b, &len, &cap, "# TYPE visage_images_total counter\nvisage_images_total{result=\"processed\"} %lld\n"
                            "visage_images_total{result=\"duplicate\"} %lld\nvisage_images_total{result=\"rejected\"} %lld\n"
                            "visage_images_total{result=\"failed\"} %lld\nvisage_images_total{result=\"blocked\"} %lld\n",
            (long long)ws.processed, (long long)ws.duplicates, (long long)ws.rejected, (long long)ws.failed,
            (long long)ws.blocked);
        put(&b, &len, &cap, "# TYPE visage_faces_indexed_total counter\nvisage_faces_indexed_total %lld\n",
            (long long)ws.faces_indexed);
        put(&b, &len, &cap, "# TYPE visage_workers_busy gauge\nvisage_workers_busy %lld\n", (long long)ws.busy);
        static const char *lw[8] = {"50", "100", "250", "500", "1000", "2500", "5000", "+Inf"};
        cum = 0;
        put(&b, &len, &cap, "# TYPE visage_process_latency_ms histogram\n");
        for (int i = 0; i < 8; i++) {
            cum += ws.latency_hist[i];
            put(&b, &len, &cap, "visage_process_latency_ms_bucket{le=\"%s\"} %lld\n", lw[i], cum);
        }
        put(&b, &len, &cap, "visage_process_latency_ms_sum %lld\nvisage_process_latency_ms_count %lld\n",
            (long long)ws.latency_ms_sum, cum);
    }
    if (!b) return vs_reply_error(r, 500, "internal", "out of memory");
    vs_reply_bytes(r, 200, "text/plain; version=0.0.4", b, len);
}

static int add_dead(void *ctx, const vs_dead_msg *m) {
    json_t *body = json_loads(m->body, 0, NULL);
    json_array_append_new((json_t *)ctx, json_pack("{s:I,s:o,s:s,s:i,s:I}", "message_id", (json_int_t)m->id, "message",
                                                   body ? body : json_string(m->body), "last_error", m->last_error,
                                                   "attempts", m->attempts, "failed_at", (json_int_t)m->failed_at_ms));
    return 0;
}

void vs_route_dead_letters(vs_req *r) {
    json_t *all = json_array(), *mine = json_array();
    vs_error err = {0};
    vs_err rc = r->app->queue->ops->list_dead(r->app->queue, 1000, add_dead, all, &err);
    if (rc != VS_OK) {
        json_decref(all);
        json_decref(mine);
        return vs_reply_vs_err(r, rc, &err);
    }
    size_t i;
    json_t *d;
    json_array_foreach(all, i, d) { /* a tenant sees only its own messages */
        const char *t = json_string_value(json_object_get(json_object_get(d, "message"), "tenant_id"));
        if (t && !strcmp(t, r->tenant)) json_array_append(mine, d);
    }
    json_decref(all);
    vs_reply_json(r, 200, json_pack("{s:o}", "dead_letters", mine));
}

/* The web UI: web/index.html, compiled into the binary by the build
 * (CMake turns it into vs_web_index_html), so `visage serve` needs no files. */
extern const char vs_web_index_html[];

void vs_route_web(vs_req *r) {
    char *page = strdup(vs_web_index_html);
    if (!page) return vs_reply_error(r, 500, "internal", "out of memory");
    vs_reply_bytes(r, 200, "text/html; charset=utf-8", page, strlen(page));
}
