/* vs_routes_ops.c - liveness, readiness (each backend's health), Prometheus
 * metrics, the dead-letter list, and the web UI's static files. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_hash.h"
#include "vs_people.h"
#include "vs_routes.h"
#include "vs_web.h"

void vs_route_healthz(vs_req *r) { vs_reply_json(r, 200, json_pack("{s:s}", "status", "ok")); }

/* One readiness check's outcome, as /readyz reports it. */
typedef struct ready_check {
    const char *name;      /* "data_dir", "workers", "dead_letters", "store", ... */
    const char *state;     /* "ok" or what is wrong ("disk_full", "down", ...) */
    char msg[600];         /* for an operator; "" when ok */
} ready_check;

/* The data dir: writable, with min_free_bytes to spare. Probed at most once
 * a second (a probe writes and syncs 4 KiB), so a busy prober stays cheap. */
static void check_data_dir(vs_app *a, ready_check *c) {
    c->name = "data_dir";
    c->state = "ok";
    if (!a->cfg.data_dir) return;
    vs_app_health *h = &a->health;
    pthread_mutex_lock(&h->mu);
    int64_t now = vs_now_ms();
    if (h->checked_ms == 0 || now - h->checked_ms >= 1000) {
        h->dir = vs_dir_check(a->cfg.data_dir, a->cfg.min_free_bytes, h->dir_msg, sizeof h->dir_msg);
        h->checked_ms = now;
    }
    c->state = vs_dir_state_name(h->dir);
    snprintf(c->msg, sizeof c->msg, "%s", h->dir != VS_DIR_OK ? h->dir_msg : "");
    pthread_mutex_unlock(&h->mu);
}

/* The workers: failing on storage (disk full, read-only, I/O errors) in
 * the last 30 s with no success since means every message will fail. */
static void check_workers(vs_app *a, ready_check *c) {
    c->name = "workers";
    c->state = "ok";
    if (!a->workers) return;
    vs_worker_stats ws;
    vs_workers_stats(a->workers, &ws);
    int64_t now = vs_now_ms();
    if (ws.last_storage_error_ms > ws.last_ok_ms && now - ws.last_storage_error_ms < 30000) {
        c->state = "storage_errors";
        snprintf(c->msg, sizeof c->msg, "workers keep failing on storage (%lld errors so far), last: %s",
                 (long long)ws.storage_errors, ws.last_storage_error);
    }
}

/* Dead letters: ready_max_new_dead or more in the last 5 minutes means the
 * pipeline is failing as a whole (one bad image is acked, not
 * dead-lettered; a dead letter took five failed tries), and work sent here
 * will only join them. Fewer are single messages for an operator to look
 * at in /api/v1/dead-letters, not a reason to take the node out. */
static void check_dead_letters(vs_app *a, ready_check *c) {
    c->name = "dead_letters";
    c->state = "ok";
    if (a->cfg.ready_max_new_dead <= 0) return;
    vs_queue_stats qs = {0};
    vs_error err = {0};
    if (a->queue->ops->stats(a->queue, &qs, &err) != VS_OK) return; /* the queue check reports it */
    pthread_mutex_lock(&a->health.mu);
    if (a->health.dead.window_ms == 0) vs_dead_watch_init(&a->health.dead, 0);
    int64_t fresh = vs_dead_watch_add(&a->health.dead, vs_now_ms(), qs.dead);
    pthread_mutex_unlock(&a->health.mu);
    if (fresh >= a->cfg.ready_max_new_dead) {
        c->state = "growing";
        snprintf(c->msg, sizeof c->msg,
                 "%lld messages were dead-lettered in the last 5 minutes (limit %d, VISAGE_READY_MAX_NEW_DEAD); "
                 "see GET /api/v1/dead-letters", (long long)fresh, a->cfg.ready_max_new_dead);
    }
}

/* A backend's ping. */
static void check_backend(const char *name, int ok, ready_check *c) {
    c->name = name;
    c->state = ok ? "ok" : "down";
    if (!ok) snprintf(c->msg, sizeof c->msg, "the %s backend does not answer", name);
}

/* 200 when every check passes; else 503 with Retry-After, "failed" (the
 * checks' names) and "reason" (their messages), so an operator reading one
 * probe knows what to fix. "backends" keeps its old shape for old clients. */
void vs_route_readyz(vs_req *r) {
    vs_app *a = r->app;
    ready_check c[6] = {0};
    check_backend("store", a->store->ops->healthy(a->store), &c[0]);
    check_backend("queue", a->queue->ops->healthy(a->queue), &c[1]);
    check_backend("index", a->index->ops->healthy(a->index), &c[2]);
    check_data_dir(a, &c[3]);
    check_workers(a, &c[4]);
    check_dead_letters(a, &c[5]);
    json_t *checks = json_object(), *failed = json_array();
    char reason[2048] = "";
    size_t rl = 0;
    for (int i = 0; i < 6; i++) {
        json_object_set_new(checks, c[i].name, json_string(c[i].state));
        if (!strcmp(c[i].state, "ok")) continue;
        json_array_append_new(failed, json_string(c[i].name));
        int n = snprintf(reason + rl, sizeof reason - rl, "%s%s", rl ? "; " : "", c[i].msg);
        if (n > 0) rl = rl + (size_t)n < sizeof reason ? rl + (size_t)n : sizeof reason - 1;
    }
    int ok = json_array_size(failed) == 0;
    json_t *o = json_pack("{s:s,s:{s:s,s:s,s:s},s:o}", "status", ok ? "ready" : "not_ready", "backends", "store",
                          c[0].state, "queue", c[1].state, "index", c[2].state, "checks", checks);
    if (o && !ok) {
        json_object_set_new(o, "failed", failed);
        json_object_set_new(o, "reason", json_string(reason));
        r->retry_after = VS_RETRY_AFTER_S;
    } else {
        json_decref(failed);
    }
    vs_reply_json(r, ok ? 200 : 503, o);
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
    if (a->people) {
        vs_people_stats ps;
        vs_people_stats_get(a->people, &ps);
        put(&b, &len, &cap, "# TYPE visage_people_faces_placed_total counter\n"
                            "visage_people_faces_placed_total{how=\"on_arrival\"} %lld\n"
                            "visage_people_faces_placed_total{how=\"attach\"} %lld\n"
                            "# TYPE visage_people_batches_total counter\nvisage_people_batches_total %lld\n"
                            "# TYPE visage_people_formed_total counter\nvisage_people_formed_total %lld\n"
                            "# TYPE visage_people_merged_total counter\nvisage_people_merged_total %lld\n"
                            "# TYPE visage_people_last_batch_ms gauge\nvisage_people_last_batch_ms %lld\n",
            (long long)ps.placed, (long long)ps.attached, (long long)ps.batches, (long long)ps.formed,
            (long long)ps.merged, (long long)ps.last_batch_ms);
    }
    vs_ann_stats as;
    if (vs_index_ann_stats(a->index, vs_app_pipeline(a)->coll.faces, &as, &err) == VS_OK)   /* public route: no r->p */
        put(&b, &len, &cap, "# TYPE visage_index_graphs gauge\nvisage_index_graphs %d\n"
                            "# TYPE visage_index_graph_points gauge\nvisage_index_graph_points %llu\n"
                            "# TYPE visage_index_graph_bytes gauge\nvisage_index_graph_bytes %llu\n"
                            "# TYPE visage_index_searches_total counter\n"
                            "visage_index_searches_total{path=\"graph\"} %llu\n"
                            "visage_index_searches_total{path=\"exact_fallback\"} %llu\n"
                            "# TYPE visage_index_graph_builds_total counter\nvisage_index_graph_builds_total %llu\n",
            as.graphs, (unsigned long long)as.points, (unsigned long long)as.bytes, (unsigned long long)as.searches,
            (unsigned long long)as.exact_fallbacks, (unsigned long long)as.builds);
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
        /* where the workers' time goes, stage by stage (bench/engine prints the same per photo) */
        put(&b, &len, &cap, "# TYPE visage_stage_seconds_total counter\n");
        for (int i = 0; i < VS_STAGE_COUNT; i++)
            put(&b, &len, &cap, "visage_stage_seconds_total{stage=\"%s\"} %.6f\n", vs_stage_name((vs_stage)i),
                ws.stages.ns[i] / 1e9);
        put(&b, &len, &cap, "# TYPE visage_stage_calls_total counter\n");
        for (int i = 0; i < VS_STAGE_COUNT; i++)
            put(&b, &len, &cap, "visage_stage_calls_total{stage=\"%s\"} %llu\n", vs_stage_name((vs_stage)i),
                (unsigned long long)ws.stages.calls[i]);
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

/* The web app: its files are compiled into the binary (vs_web.h), so
 * `visage serve` needs no files at run time. */
void vs_route_web(vs_req *r) {
    const vs_web_file *f = vs_web_find(r->path);
    if (!f) return vs_reply_error(r, 404, "not_found", "no web file %.128s", r->path);
    char *copy = malloc(f->len + 1);
    if (!copy) return vs_reply_error(r, 500, "internal", "out of memory");
    memcpy(copy, f->data, f->len + 1);
    vs_reply_bytes(r, 200, vs_web_content_type(f->name), copy, f->len);
}
