/* vs_routes_events.c - the caller's events newest first (GET
 * /api/v1/events, keyset-paged on the event id) and its webhook (GET, PUT,
 * DELETE /api/v1/webhook). Events are added by the modules (vs_events.h)
 * and delivered by the server's webhook runner (vs_webhook.h); these
 * handlers only shape requests and replies. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_events.h"
#include "vs_routes.h"

#define EVENTS_DEFAULT 50
#define EVENTS_MAX 200

/* limit=1..200 (default 50); -1 after replying 400 naming the field. */
static int events_limit(vs_req *r, int *limit) {
    const char *s = vs_req_query(r, "limit");
    char *end = NULL;
    *limit = EVENTS_DEFAULT;
    if (!s) return 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > EVENTS_MAX) {
        vs_reply_error(r, 400, "bad_request", "limit: must be an integer from 1 to %d, got \"%.32s\"", EVENTS_MAX, s);
        return -1;
    }
    *limit = (int)v;
    return 0;
}

/* The cursor "ev{id}" (the last event of the previous page) as the id
 * below which the page starts; 0 when absent; -1 after replying 400. */
static int events_cursor(vs_req *r, int64_t *before) {
    const char *s = vs_req_query(r, "cursor");
    *before = 0;
    if (!s) return 0;
    char *end = NULL;
    long long v = strncmp(s, "ev", 2) == 0 && s[2] >= '0' && s[2] <= '9' ? strtoll(s + 2, &end, 10) : -1;
    if (v < 1 || !end || *end) {
        vs_reply_error(r, 400, "bad_request", "cursor: not a cursor this listing returned (give next_cursor as it came)");
        return -1;
    }
    *before = v;
    return 0;
}

typedef struct event_page {
    json_t *items;
    int limit, more;
} event_page;

/* One event as the API shows it: {id, kind, at, detail, delivery}. */
static json_t *event_json(const vs_event *ev) {
    json_t *detail = ev->detail_json ? json_loads(ev->detail_json, 0, NULL) : NULL;
    if (!json_is_object(detail)) {
        json_decref(detail);
        detail = json_object();
    }
    json_t *d = json_pack("{s:s,s:i}", "state", vs_delivery_state_name(ev->state), "attempts", ev->attempts);
    if (d && ev->last_error) json_object_set_new(d, "last_error", json_string(ev->last_error));
    if (d && ev->state == VS_DELIVERY_DELIVERED) json_object_set_new(d, "delivered_at", json_integer(ev->delivered_ms));
    if (d && ev->state == VS_DELIVERY_PENDING && ev->attempts > 0)
        json_object_set_new(d, "next_try_at", json_integer(ev->next_try_ms));
    return json_pack("{s:I,s:s,s:I,s:o,s:o*}", "id", (json_int_t)ev->id, "kind", ev->kind, "at", (json_int_t)ev->at_ms,
                     "detail", detail, "delivery", d);
}

/* One row of the listing; the one beyond the limit only says there is more. */
static int page_event(void *ctx, const vs_event *ev) {
    event_page *p = ctx;
    if ((int)json_array_size(p->items) >= p->limit) {
        p->more = 1;
        return 1;
    }
    json_t *e = event_json(ev);
    if (e) json_array_append_new(p->items, e);
    return 0;
}

/* One catalog query of limit + 1 rows: the extra one only says whether a
 * next page exists, so next_cursor is never a link to an empty page. */
void vs_route_events_list(vs_req *r) {
    int limit;
    int64_t before;
    if (events_limit(r, &limit) || events_cursor(r, &before)) return;
    event_page p = {json_array(), limit, 0};
    vs_error err = {0};
    vs_err rc = vs_event_list(r->app->catalog, r->tenant, before, limit + 1, page_event, &p, &err);
    if (rc != VS_OK) {
        json_decref(p.items);
        return vs_reply_vs_err(r, rc, &err);
    }
    json_t *out = json_pack("{s:o}", "events", p.items);
    size_t n = json_array_size(p.items);
    if (p.more && n > 0) {
        char cur[32];
        snprintf(cur, sizeof cur, "ev%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(json_array_get(p.items, n - 1), "id")));
        json_object_set_new(out, "next_cursor", json_string(cur));
    }
    vs_reply_json(r, 200, out);
}

/* {url, secret, created_at}: the secret is shown on every GET, not only
 * once: the API key that reads it can replace it anyway, and a receiver
 * being redeployed needs it again. */
static json_t *webhook_json(const vs_webhook *w) {
    return json_pack("{s:s,s:s,s:I}", "url", w->url, "secret", w->secret, "created_at", (json_int_t)w->created_ms);
}

/* 404 when none is set (vs_reply_vs_err maps NOT_FOUND). */
void vs_route_webhook_get(vs_req *r) {
    vs_webhook w;
    vs_error err = {0};
    vs_err rc = vs_webhook_get(r->app->catalog, r->tenant, &w, &err);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &err);
    vs_reply_json(r, 200, webhook_json(&w));
    memset(&w, 0, sizeof w);
}

/* Sets (or replaces) the webhook with a new secret: a PUT is also how a
 * secret is rotated. */
void vs_route_webhook_put(vs_req *r) {
    json_t *body = vs_req_body(r, VS_BODY_JSON, &vs_schema_webhook, NULL);
    if (!body) return;
    const char *url = json_string_value(json_object_get(body, "url"));
    vs_error err = {0};
    vs_webhook w;
    vs_err rc = vs_webhook_url_check(url, r->app->cfg.fetch_allow_cidrs, &err);
    if (rc == VS_OK) rc = vs_webhook_set(r->app->catalog, r->tenant, url, &w, &err);
    json_decref(body);
    if (rc == VS_ERR_INVALID_ARG) return vs_reply_error(r, 400, "bad_request", "%s", err.msg);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &err);
    vs_webhook_runner_wake(r->app->webhooks); /* events already pending go now */
    vs_reply_json(r, 200, webhook_json(&w));
    memset(&w, 0, sizeof w);
}

/* Its pending events become failed in the same transaction (vs_events.h). */
void vs_route_webhook_delete(vs_req *r) {
    vs_error err = {0};
    vs_err rc = vs_webhook_delete(r->app->catalog, r->tenant, &err);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &err);
    vs_reply_json(r, 200, json_pack("{s:b}", "deleted", 1));
}
