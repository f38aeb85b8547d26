/* vs_webhook.h - delivering a tenant's events (vs_events.h) to its webhook:
 * each pending event is POSTed as JSON, signed with the webhook's secret,
 * under the address rules of URL ingest (vs_fetch.h: loopback, private and
 * other internal ranges refused on the connected address unless
 * allow_cidrs names them), and retried with exponential backoff until a
 * 2xx answer or max_attempts. The state of every try is in the catalog, so
 * a restart resumes where the last process stopped.
 *
 * The request: POST {url}, body {"id","tenant","kind","at","detail"} (at in
 * ms since the epoch), headers Content-Type: application/json,
 * X-Visage-Event: {kind}, X-Visage-Timestamp: {unix seconds},
 * X-Visage-Signature: sha256={hex HMAC-SHA256(secret, timestamp "." body)},
 * the key being the secret's text as shown ("whsec_…"). Redirects are not
 * followed (a 3xx is a failed try). docs/webhooks.md shows a receiver. */
#ifndef VS_WEBHOOK_H
#define VS_WEBHOOK_H

#include <stdatomic.h>
#include <stdint.h>

#include "vs_catalog.h"
#include "vs_err.h"
#include "vs_events.h"

#define VS_WEBHOOK_SIG_MAX 72    /* "sha256=" + 64 hex + NUL */

/* Zero fields take the defaults. */
typedef struct vs_webhook_cfg {
    const char *allow_cidrs;     /* ranges a webhook may reach despite the rules ($VISAGE_FETCH_ALLOW) */
    int max_attempts;            /* tries per event before it is failed (default 8;
                                  * $VISAGE_WEBHOOK_MAX_ATTEMPTS) */
    int backoff_ms;              /* wait after the first failed try, doubled after each
                                  * (default 1000; $VISAGE_WEBHOOK_BACKOFF_MS) */
    int backoff_max_ms;          /* the doubling stops here (default 300000) */
    int timeout_ms;              /* one POST, connect to last byte (default 10000) */
    int poll_ms;                 /* the runner looks for new events this often (default 1000) */
    int keep_days;               /* events older than this are removed once not pending (default 30;
                                  * $VISAGE_EVENTS_KEEP_DAYS): the runner prunes at its start and hourly */
    /* optional: one line per failed try */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
} vs_webhook_cfg;

/* VS_OK when url may be a webhook: absolute http(s) with a host, at most
 * VS_WEBHOOK_URL_MAX-1 bytes, and, when its host is an address literal,
 * one the address rules allow (a name is checked at each connection, as
 * every address it resolves to then). Else INVALID_ARG saying why. */
vs_err vs_webhook_url_check(const char *url, const char *allow_cidrs, vs_error *err);

/* "sha256=<hex HMAC-SHA256(secret, "{ts_s}." body)>" into out. */
void vs_webhook_signature(const char *secret, int64_t ts_s, const char *body, size_t len, char out[VS_WEBHOOK_SIG_MAX]);

/* The JSON body sent for event d: a new string (free()), NULL when out of
 * memory. */
char *vs_webhook_body(const vs_event_due *d);

/* One signed POST of body to url. VS_OK for a 2xx answer; else the error
 * of vs_fetch (VS_ERR_UNSUPPORTED for a refused address, with *refused =
 * 1; VS_ERR_IO for a network error, a timeout or a non-2xx status, then in
 * *http_status, 0 when there was no answer). stop (may be NULL) aborts a
 * transfer in progress when it becomes non-zero (VS_ERR_CANCELLED). */
vs_err vs_webhook_post(const vs_webhook_cfg *cfg, const char *url, const char *secret, const char *kind,
                       const char *body, int64_t ts_s, const atomic_int *stop, long *http_status, int *refused,
                       vs_error *err);

/* Tries the one event most due (vs_event_next_due at now) and records the
 * try: delivered, pending with its next try after the backoff, or failed
 * (the last try, a refused address or a URL that is not one). *found = 1
 * when there was one; else *next_ms gets the earliest next try of a
 * pending event (0: none). Used by the runner, and by tests to deliver
 * synchronously. A try cut by stop is not recorded (the event stays due). */
vs_err vs_webhook_deliver_one(vs_catalog *c, const vs_webhook_cfg *cfg, const atomic_int *stop, int *found,
                              int64_t *next_ms, vs_error *err);
/* The same, taking tenants in turn: another tenant's due event before
 * last_tenant's (vs_event_next_due); last_tenant (VS_TENANT_MAX chars) is
 * then set to the tenant tried. What the runner calls. */
vs_err vs_webhook_deliver_next(vs_catalog *c, const vs_webhook_cfg *cfg, const atomic_int *stop, char *last_tenant,
                               int *found, int64_t *next_ms, vs_error *err);

/* The background runner: one thread, started with the server, that
 * delivers due events one at a time. It borrows c and cfg's strings, which
 * must outlive it. */
typedef struct vs_webhook_runner vs_webhook_runner;
vs_err vs_webhook_runner_start(vs_catalog *c, const vs_webhook_cfg *cfg, vs_webhook_runner **out, vs_error *err);
/* An event was added or a webhook set: look now rather than at the next poll. */
void vs_webhook_runner_wake(vs_webhook_runner *r);
/* Stops the thread (a POST in progress is aborted and stays pending, to be
 * sent again after the next start) and frees r; NULL is fine. */
void vs_webhook_runner_stop(vs_webhook_runner *r);

#endif
