/* vs_events.h - what happened to a tenant's data that a team may want to be
 * told about ("person_seen": a watched person got a new face), kept durably
 * in the catalog and listed newest first, and the tenant's webhook: the one
 * URL each new event is POSTed to (by vs_webhook.h's runner), with the
 * delivery state of every event kept beside it so a restart resumes.
 *
 * Who calls what: a module that notices something (people) calls
 * vs_event_add; the API lists events and sets the webhook; the runner takes
 * due events with vs_event_next_due and records each attempt with
 * vs_event_attempt. All functions are thread-safe (the catalog's lock). */
#ifndef VS_EVENTS_H
#define VS_EVENTS_H

#include <stdint.h>

#include "vs_catalog.h"
#include "vs_err.h"

/* The tables (used by vs_catalog.c for a new file and for the upgrade of a
 * version-4 one). state: 0 pending, 1 delivered, 2 failed, 3 none (the
 * tenant had no webhook when the event was added). next_try_ms is wall
 * clock time (ms since the epoch), so it means the same after a restart. */
#define VS_EVENTS_SCHEMA                                                                                             \
    "CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, at INT NOT NULL,"            \
    " kind TEXT NOT NULL, detail_json TEXT NOT NULL, state INT NOT NULL DEFAULT 0,"                                  \
    " attempts INT NOT NULL DEFAULT 0, next_try_ms INT NOT NULL DEFAULT 0, delivered_at INT, last_error TEXT);"       \
    "CREATE INDEX events_tenant ON events(tenant_id, id);"                                                           \
    "CREATE INDEX events_due ON events(next_try_ms) WHERE state = 0;"                                                \
    "CREATE TABLE webhooks(tenant_id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL,"                     \
    " created_at INT NOT NULL);"

#define VS_EVENT_KIND_MAX 64        /* 1..63 characters of [a-z0-9_.] */
#define VS_EVENT_DETAIL_MAX 65536   /* bytes of detail_json: a few ids and URLs, not a payload */
#define VS_WEBHOOK_URL_MAX 2048     /* bytes with the NUL */
#define VS_WEBHOOK_SECRET_MAX 72    /* "whsec_" + 64 hex + NUL */

typedef enum vs_delivery_state {
    VS_DELIVERY_PENDING = 0,    /* not delivered yet; tried again at next_try_ms */
    VS_DELIVERY_DELIVERED = 1,  /* a POST got a 2xx answer */
    VS_DELIVERY_FAILED = 2,     /* given up: max attempts, a refused address, or the webhook was removed */
    VS_DELIVERY_NONE = 3        /* the tenant had no webhook when the event was added: never sent */
} vs_delivery_state;

/* "pending", "delivered", "failed", "none". */
const char *vs_delivery_state_name(vs_delivery_state s);

/* One event as listed; the strings live until the callback returns
 * (last_error may be NULL). at_ms, delivered_ms: ms since the epoch
 * (delivered_ms 0 until delivered). */
typedef struct vs_event {
    int64_t id;
    const char *tenant, *kind, *detail_json;
    int64_t at_ms;
    vs_delivery_state state;
    int attempts;
    int64_t next_try_ms, delivered_ms;
    const char *last_error;
} vs_event;

/* 1 when kind is 1..63 characters of [a-z0-9_.] ("person_seen"). */
int vs_event_kind_ok(const char *kind);

/* Adds an event of the tenant, durably (the catalog syncs each commit), and
 * returns its id in *id (may be NULL). detail_json must be a JSON object of
 * at most VS_EVENT_DETAIL_MAX bytes
 * (for "person_seen": person_id, face_id, image_sha256, site, source_url,
 * page_url); it is stored as given and sent as the body's "detail". The
 * event is pending when the tenant has a webhook then (the runner sends it
 * within about a second), else its state is none. Bad tenant, kind or
 * detail -> VS_ERR_INVALID_ARG. Ids only grow: a receiver may use them to
 * drop a duplicate (a delivery whose answer was lost is sent again). */
vs_err vs_event_add(vs_catalog *c, const char *tenant, const char *kind, const char *detail_json, int64_t *id,
                    vs_error *err);

/* The tenant's events newest first (id DESC) with id < before_id (0: from
 * the newest), at most limit (1..1000). cb returning non-zero stops; it runs
 * under the catalog lock and must not call the catalog. */
typedef int (*vs_event_cb)(void *ctx, const vs_event *ev);
vs_err vs_event_list(vs_catalog *c, const char *tenant, int64_t before_id, int limit, vs_event_cb cb, void *ctx,
                     vs_error *err);

/* Erasure: every event of the tenant whose detail names the image sha256
 * (detail.image_sha256) or the face face_id (detail.face_id) keeps its id,
 * kind and time but its detail becomes {"erased":true} (no URL, face or
 * image of an erased thing stays in the listing); one still pending is
 * failed ("erased before delivery") rather than sent. Either may be NULL;
 * idempotent (an erasure resumed after a crash runs it again). */
vs_err vs_event_forget(vs_catalog *c, const char *tenant, const char *sha256, const char *face_id, vs_error *err);

/* Retention: removes every event (of any tenant) added before before_ms
 * (ms since the epoch) that is no longer pending: the listing and the table
 * do not grow without end. A pending one stays until it is delivered or
 * given up (its retries end within hours). Works in chunks of 1,000 rows,
 * the lock released between them, so a big purge never stalls the catalog;
 * *removed (may be NULL) gets the count. */
vs_err vs_event_prune(vs_catalog *c, int64_t before_ms, int64_t *removed, vs_error *err);

/* ---- the tenant's webhook ------------------------------------------------ */

typedef struct vs_webhook {
    char url[VS_WEBHOOK_URL_MAX];
    char secret[VS_WEBHOOK_SECRET_MAX];   /* "whsec_<64 hex>": the HMAC key, as text */
    int64_t created_ms;
} vs_webhook;

/* Sets the tenant's webhook to url (checked by the caller:
 * vs_webhook_url_check) with a new random secret, replacing any previous
 * one and its secret; *out (may be NULL) gets what was stored. Events still
 * pending are sent to the new URL, signed with the new secret. */
vs_err vs_webhook_set(vs_catalog *c, const char *tenant, const char *url, vs_webhook *out, vs_error *err);
/* The tenant's webhook; none -> VS_ERR_NOT_FOUND. */
vs_err vs_webhook_get(vs_catalog *c, const char *tenant, vs_webhook *out, vs_error *err);
/* Removes it, in one transaction with its pending events, which become
 * failed ("webhook removed before delivery"); none -> VS_ERR_NOT_FOUND. */
vs_err vs_webhook_delete(vs_catalog *c, const char *tenant, vs_error *err);

/* ---- for the delivery runner ---------------------------------------------- */

/* A pending event due for a try, with what the try needs (copies). */
typedef struct vs_event_due {
    int64_t id, at_ms;
    int attempts;                         /* tries so far */
    char tenant[VS_TENANT_MAX];
    char kind[VS_EVENT_KIND_MAX];
    char *detail_json;                    /* vs_free (vs_event_due_clear) */
    char url[VS_WEBHOOK_URL_MAX];
    char secret[VS_WEBHOOK_SECRET_MAX];
} vs_event_due;

void vs_event_due_clear(vs_event_due *d);

/* The pending event (of a tenant with a webhook) with the smallest
 * next_try_ms <= now_ms, into *out (*found = 1); else *found = 0 and
 * *next_ms (may be NULL) gets the earliest next_try_ms of any pending
 * event, or 0 when there is none. With after_tenant (may be NULL), a due
 * event of another tenant comes first: the one delivery thread takes
 * tenants in turn, so a tenant whose receiver hangs (each try up to the
 * timeout) delays another's event by one try, not by its whole backlog. */
vs_err vs_event_next_due(vs_catalog *c, int64_t now_ms, const char *after_tenant, vs_event_due *out, int *found,
                         int64_t *next_ms, vs_error *err);

/* Records one try of event id: attempts + 1 and last_error (NULL: cleared);
 * state is DELIVERED (delivered_at = now), FAILED, or PENDING with the next
 * try at next_try_ms. An event no longer pending (the webhook was removed
 * meanwhile) is left as it is. */
vs_err vs_event_attempt(vs_catalog *c, int64_t id, vs_delivery_state state, int64_t next_try_ms,
                        const char *last_error, vs_error *err);

#endif
