/* vs_events.c - events and webhooks in the catalog (vs_events.h). Tuned for
 * a few events per minute per tenant (a watched person seen again), not a
 * firehose: one row per event, written with the catalog's full sync, the
 * delivery state updated in place by the one runner thread.
 *
 * Threading: the catalog's one connection and mutex (vs_catalog.c explains
 * why one); every function here takes the mutex for its statements only,
 * never across a network call, so a slow receiver holds up nothing else. */
#include "vs_events.h"

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_hash.h"
#include "vs_sqlite.h"

/* Stable names: the API shows them and clients match on them. */
const char *vs_delivery_state_name(vs_delivery_state s) {
    switch (s) {
    case VS_DELIVERY_PENDING: return "pending";
    case VS_DELIVERY_DELIVERED: return "delivered";
    case VS_DELIVERY_FAILED: return "failed";
    case VS_DELIVERY_NONE: return "none";
    }
    return "unknown";
}

/* Kinds go into an HTTP header (X-Visage-Event): a narrow alphabet keeps
 * them free of CR/LF and of anything a receiver would need to escape. */
int vs_event_kind_ok(const char *kind) {
    if (!kind) return 0;
    size_t n = strnlen(kind, VS_EVENT_KIND_MAX);
    if (n == 0 || n >= VS_EVENT_KIND_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((kind[i] >= 'a' && kind[i] <= 'z') || (kind[i] >= '0' && kind[i] <= '9') || kind[i] == '_' ||
              kind[i] == '.'))
            return 0;
    return 1;
}

/* The event's inputs checked once here, at the edge: what is stored is a
 * valid tenant, a kind a header may carry, and a JSON object. */
static vs_err event_check(const char *tenant, const char *kind, const char *detail_json, vs_error *err) {
    vs_err rc = vs_tenant_check(tenant, "event add", err);
    if (rc != VS_OK) return rc;
    if (!vs_event_kind_ok(kind))
        return vs_fail(err, VS_ERR_INVALID_ARG, "event add: kind must be 1..63 characters of [a-z0-9_.]");
    if (detail_json && strnlen(detail_json, VS_EVENT_DETAIL_MAX + 1) > VS_EVENT_DETAIL_MAX)
        return vs_fail(err, VS_ERR_TOO_LARGE, "event add: detail over %d bytes", VS_EVENT_DETAIL_MAX);
    json_t *d = detail_json ? json_loads(detail_json, JSON_REJECT_DUPLICATES, NULL) : NULL;
    int ok = json_is_object(d);
    json_decref(d);
    if (!ok) return vs_fail(err, VS_ERR_INVALID_ARG, "event add: detail must be a JSON object");
    return VS_OK;
}

/* One INSERT: the state is pending when the tenant has a webhook at this
 * moment (read in the same statement, so no race with a PUT/DELETE). */
vs_err vs_event_add(vs_catalog *c, const char *tenant, const char *kind, const char *detail_json, int64_t *id,
                    vs_error *err) {
    if (id) *id = 0;
    vs_err rc = event_check(tenant, kind, detail_json, err);
    if (rc != VS_OK) return rc;
    vs_sqlite_db *sq = vs_catalog_sqlite(c);
    int64_t now = vs_wall_ms();
    pthread_mutex_lock(&sq->mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(sq,
                           "INSERT INTO events(tenant_id, at, kind, detail_json, state, next_try_ms) VALUES(?1, ?2, ?3,"
                           " ?4, CASE WHEN EXISTS(SELECT 1 FROM webhooks WHERE tenant_id = ?1) THEN 0 ELSE 3 END, ?2)",
                           "event add", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        sqlite3_bind_int64(st, 2, now);
        vs_sqlite_bind_text(st, 3, kind);
        vs_sqlite_bind_text(st, 4, detail_json);
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(sq, err, "event add");
        else if (id) *id = sqlite3_last_insert_rowid(sq->db);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&sq->mu);
    return rc;
}

/* A row of the listing's SELECT as a vs_event (columns in its order). */
static vs_event event_of(sqlite3_stmt *st) {
    return (vs_event){.id = sqlite3_column_int64(st, 0),
                      .tenant = (const char *)sqlite3_column_text(st, 1),
                      .kind = (const char *)sqlite3_column_text(st, 2),
                      .detail_json = (const char *)sqlite3_column_text(st, 3),
                      .at_ms = sqlite3_column_int64(st, 4),
                      .state = (vs_delivery_state)sqlite3_column_int(st, 5),
                      .attempts = sqlite3_column_int(st, 6),
                      .next_try_ms = sqlite3_column_int64(st, 7),
                      .delivered_ms = sqlite3_column_int64(st, 8),
                      .last_error = (const char *)sqlite3_column_text(st, 9)};
}

/* Keyset paging on the id: a page costs the same however deep it is. */
vs_err vs_event_list(vs_catalog *c, const char *tenant, int64_t before_id, int limit, vs_event_cb cb, void *ctx,
                     vs_error *err) {
    vs_err rc = vs_tenant_check(tenant, "event list", err);
    if (rc != VS_OK) return rc;
    if (limit < 1 || limit > 1000) return vs_fail(err, VS_ERR_INVALID_ARG, "event list: limit must be 1..1000");
    vs_sqlite_db *sq = vs_catalog_sqlite(c);
    pthread_mutex_lock(&sq->mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(sq,
                           "SELECT id, tenant_id, kind, detail_json, at, state, attempts, next_try_ms,"
                           " coalesce(delivered_at, 0), last_error FROM events WHERE tenant_id = ?1 AND id < ?2"
                           " ORDER BY id DESC LIMIT ?3",
                           "event list", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        sqlite3_bind_int64(st, 2, before_id > 0 ? before_id : INT64_MAX);
        sqlite3_bind_int(st, 3, limit);
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
            vs_event ev = event_of(st);
            if (cb(ctx, &ev) != 0) break;
        }
        if (s != SQLITE_ROW && s != SQLITE_DONE) rc = vs_sqlite_fail(sq, err, "event list");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&sq->mu);
    return rc;
}

/* One UPDATE: the state change reads the old state in the same row, so
 * a delivery racing the erasure either went before it or finds the event
 * failed (vs_event_attempt only updates pending events). */
vs_err vs_event_forget(vs_catalog *c, const char *tenant, const char *sha256, const char *face_id, vs_error *err) {
    vs_err rc = vs_tenant_check(tenant, "event forget", err);
    if (rc != VS_OK || (!sha256 && !face_id)) return rc;
    vs_sqlite_db *sq = vs_catalog_sqlite(c);
    pthread_mutex_lock(&sq->mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(sq,
                           "UPDATE events SET detail_json = '{\"erased\":true}',"
                           " last_error = CASE WHEN state = 0 THEN 'erased before delivery' ELSE last_error END,"
                           " state = CASE WHEN state = 0 THEN 2 ELSE state END"
                           " WHERE tenant_id = ?1 AND json_valid(detail_json) AND"
                           " ((?2 IS NOT NULL AND json_extract(detail_json, '$.image_sha256') = ?2) OR"
                           " (?3 IS NOT NULL AND json_extract(detail_json, '$.face_id') = ?3))",
                           "event forget", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        vs_sqlite_bind_text(st, 2, sha256);
        vs_sqlite_bind_text(st, 3, face_id);
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(sq, err, "event forget");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&sq->mu);
    return rc;
}

/* Oldest first by id (ids grow with time), so each chunk's scan starts
 * where the old rows are and stops after 1,000 of them. */
vs_err vs_event_prune(vs_catalog *c, int64_t before_ms, int64_t *removed, vs_error *err) {
    vs_sqlite_db *sq = vs_catalog_sqlite(c);
    int64_t total = 0;
    vs_err rc = VS_OK;
    for (int chunk = 1000; rc == VS_OK && chunk == 1000;) {
        pthread_mutex_lock(&sq->mu);
        sqlite3_stmt *st = NULL;
        rc = vs_sqlite_prepare(sq,
                               "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ?1 AND state != 0"
                               " ORDER BY id LIMIT 1000)",
                               "event prune", &st, err);
        chunk = 0;
        if (rc == VS_OK) {
            sqlite3_bind_int64(st, 1, before_ms);
            if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(sq, err, "event prune");
            else chunk = sqlite3_changes(sq->db);
            sqlite3_finalize(st);
        }
        pthread_mutex_unlock(&sq->mu);
        total += chunk;
    }
    if (removed) *removed = total;
    return rc;
}

/* ---- webhooks ------------------------------------------------------------- */

/* A new secret "whsec_<64 hex>" (32 random bytes): the HMAC key receivers
 * verify signatures with. Stored as text, not hashed: the runner needs it
 * to sign every delivery. */
static vs_err new_secret(char out[VS_WEBHOOK_SECRET_MAX], vs_error *err) {
    uint8_t raw[32];
    if (vs_random_bytes(raw, sizeof raw) != 0)
        return vs_fail(err, VS_ERR_BACKEND, "webhook set: no random bytes for the secret");
    memcpy(out, "whsec_", 6);
    vs_hex(raw, sizeof raw, out + 6);
    memset(raw, 0, sizeof raw);
    return VS_OK;
}

/* One upsert: a PUT replaces the URL and the secret together, so no
 * delivery is ever signed with a secret of another URL. */
vs_err vs_webhook_set(vs_catalog *c, const char *tenant, const char *url, vs_webhook *out, vs_error *err) {
    vs_err rc = vs_tenant_check(tenant, "webhook set", err);
    if (rc != VS_OK) return rc;
    if (!url || !*url || strlen(url) >= VS_WEBHOOK_URL_MAX)
        return vs_fail(err, VS_ERR_INVALID_ARG, "webhook set: url must be 1..%d bytes", VS_WEBHOOK_URL_MAX - 1);
    vs_webhook w = {.created_ms = vs_wall_ms()};
    snprintf(w.url, sizeof w.url, "%s", url);
    if ((rc = new_secret(w.secret, err)) != VS_OK) return rc;
    vs_sqlite_db *sq = vs_catalog_sqlite(c);
    pthread_mutex_lock(&sq->mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(sq,
                           "INSERT INTO webhooks(tenant_id, url, secret, created_at) VALUES(?1, ?2, ?3, ?4)"
                           " ON CONFLICT(tenant_id) DO UPDATE SET url = excluded.url, secret = excluded.secret,"
                           " created_at = excluded.created_at",
                           "webhook set", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        vs_sqlite_bind_text(st, 2, w.url);
        vs_sqlite_bind_text(st, 3, w.secret);
        sqlite3_bind_int64(st, 4, w.created_ms);
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(sq, err, "webhook set");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&sq->mu);
    if (rc == VS_OK && out) *out = w;
    memset(&w, 0, sizeof w);
    return rc;
}

/* Copies the row out under the lock (the caller may keep it). */
vs_err vs_webhook_get(vs_catalog *c, const char *tenant, vs_webhook *out, vs_error *err) {
    memset(out, 0, sizeof *out);
    vs_err rc = vs_tenant_check(tenant, "webhook get", err);
    if (rc != VS_OK) return rc;
    vs_sqlite_db *sq = vs_catalog_sqlite(c);
    pthread_mutex_lock(&sq->mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(sq, "SELECT url, secret, created_at FROM webhooks WHERE tenant_id = ?1", "webhook get", &st,
                           err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            snprintf(out->url, sizeof out->url, "%s", (const char *)sqlite3_column_text(st, 0));
            snprintf(out->secret, sizeof out->secret, "%s", (const char *)sqlite3_column_text(st, 1));
            out->created_ms = sqlite3_column_int64(st, 2);
        } else if (s == SQLITE_DONE) {
            rc = vs_fail(err, VS_ERR_NOT_FOUND, "webhook: tenant '%s' has none", tenant);
        } else {
            rc = vs_sqlite_fail(sq, err, "webhook get");
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&sq->mu);
    return rc;
}

/* The two statements of a removal, inside its transaction: the row, then
 * the events that were waiting for it. Called with the mutex held. */
static vs_err webhook_delete_locked(vs_sqlite_db *sq, const char *tenant, vs_error *err) {
    static const char *sql[2] = {
        "DELETE FROM webhooks WHERE tenant_id = ?1",
        "UPDATE events SET state = 2, last_error = 'webhook removed before delivery' WHERE tenant_id = ?1"
        " AND state = 0"};
    vs_err rc = VS_OK;
    for (int i = 0; i < 2 && rc == VS_OK; i++) {
        sqlite3_stmt *st = NULL;
        if ((rc = vs_sqlite_prepare(sq, sql[i], "webhook delete", &st, err)) != VS_OK) break;
        vs_sqlite_bind_text(st, 1, tenant);
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(sq, err, "webhook delete");
        else if (i == 0 && sqlite3_changes(sq->db) == 0)
            rc = vs_fail(err, VS_ERR_NOT_FOUND, "webhook: tenant '%s' has none", tenant);
        sqlite3_finalize(st);
    }
    return rc;
}

/* Both statements in one transaction: no event is left pending for a
 * webhook that is gone (it would be sent to the next URL set). */
vs_err vs_webhook_delete(vs_catalog *c, const char *tenant, vs_error *err) {
    vs_err rc = vs_tenant_check(tenant, "webhook delete", err);
    if (rc != VS_OK) return rc;
    vs_sqlite_db *sq = vs_catalog_sqlite(c);
    pthread_mutex_lock(&sq->mu);
    rc = vs_sqlite_exec(sq, "BEGIN IMMEDIATE", "begin webhook delete", err);
    if (rc == VS_OK) {
        rc = webhook_delete_locked(sq, tenant, err);
        if (rc == VS_OK) rc = vs_sqlite_exec(sq, "COMMIT", "commit webhook delete", err);
        if (rc != VS_OK) vs_sqlite_rollback(sq);
    }
    pthread_mutex_unlock(&sq->mu);
    return rc;
}

/* ---- delivery state --------------------------------------------------------- */

/* Frees the detail copy; the struct is reusable after. */
void vs_event_due_clear(vs_event_due *d) {
    if (!d) return;
    vs_free(d->detail_json);
    memset(d, 0, sizeof *d);
}

/* Copies the due row (columns of vs_event_next_due's first SELECT). */
static vs_err due_of(sqlite3_stmt *st, vs_event_due *out, vs_error *err) {
    out->id = sqlite3_column_int64(st, 0);
    out->at_ms = sqlite3_column_int64(st, 1);
    out->attempts = sqlite3_column_int(st, 2);
    snprintf(out->tenant, sizeof out->tenant, "%s", (const char *)sqlite3_column_text(st, 3));
    snprintf(out->kind, sizeof out->kind, "%s", (const char *)sqlite3_column_text(st, 4));
    snprintf(out->url, sizeof out->url, "%s", (const char *)sqlite3_column_text(st, 6));
    snprintf(out->secret, sizeof out->secret, "%s", (const char *)sqlite3_column_text(st, 7));
    if (!(out->detail_json = vs_strdup((const char *)sqlite3_column_text(st, 5))))
        return vs_fail(err, VS_ERR_NOMEM, "event due: out of memory");
    return VS_OK;
}

/* The earliest next try of any pending event into *next_ms (0: none).
 * Called with the mutex held. */
static vs_err next_try_locked(vs_sqlite_db *sq, int64_t *next_ms, vs_error *err) {
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(sq,
                                  "SELECT coalesce(min(e.next_try_ms), 0) FROM events e JOIN webhooks w"
                                  " ON w.tenant_id = e.tenant_id WHERE e.state = 0",
                                  "event due", &st, err);
    if (rc != VS_OK) return rc;
    if (sqlite3_step(st) == SQLITE_ROW) *next_ms = sqlite3_column_int64(st, 0);
    else rc = vs_sqlite_fail(sq, err, "event due");
    sqlite3_finalize(st);
    return rc;
}

/* The join with webhooks picks up the URL and secret current now: a PUT
 * between tries sends the next try to the new URL with the new secret. */
/* One due event, of any tenant but skip (NULL: any), into *out; the
 * partial index events_due gives them in next_try_ms order, so skipping a
 * tenant's rows is a walk along it, not a sort. Caller holds the lock. */
static vs_err due_locked(vs_sqlite_db *sq, int64_t now_ms, const char *skip, vs_event_due *out, int *found,
                         vs_error *err) {
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(sq,
                                  "SELECT e.id, e.at, e.attempts, e.tenant_id, e.kind, e.detail_json, w.url, w.secret"
                                  " FROM events e JOIN webhooks w ON w.tenant_id = e.tenant_id"
                                  " WHERE e.state = 0 AND e.next_try_ms <= ?1 AND (?2 IS NULL OR e.tenant_id != ?2)"
                                  " ORDER BY e.next_try_ms, e.id LIMIT 1",
                                  "event due", &st, err);
    if (rc != VS_OK) return rc;
    sqlite3_bind_int64(st, 1, now_ms);
    vs_sqlite_bind_text(st, 2, skip);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        rc = due_of(st, out, err);
        *found = rc == VS_OK;
    } else if (s != SQLITE_DONE) {
        rc = vs_sqlite_fail(sq, err, "event due");
    }
    sqlite3_finalize(st);
    return rc;
}

vs_err vs_event_next_due(vs_catalog *c, int64_t now_ms, const char *after_tenant, vs_event_due *out, int *found,
                         int64_t *next_ms, vs_error *err) {
    memset(out, 0, sizeof *out);
    *found = 0;
    if (next_ms) *next_ms = 0;
    vs_sqlite_db *sq = vs_catalog_sqlite(c);
    pthread_mutex_lock(&sq->mu);
    vs_err rc = after_tenant && after_tenant[0] ? due_locked(sq, now_ms, after_tenant, out, found, err) : VS_OK;
    if (rc == VS_OK && !*found) rc = due_locked(sq, now_ms, NULL, out, found, err);
    if (rc == VS_OK && !*found && next_ms) rc = next_try_locked(sq, next_ms, err);
    pthread_mutex_unlock(&sq->mu);
    if (rc != VS_OK) vs_event_due_clear(out), *found = 0;
    return rc;
}

/* "AND state = 0": a try that raced a DELETE of the webhook or an erasure
 * does not bring the event back to life. */
vs_err vs_event_attempt(vs_catalog *c, int64_t id, vs_delivery_state state, int64_t next_try_ms,
                        const char *last_error, vs_error *err) {
    if (state != VS_DELIVERY_PENDING && state != VS_DELIVERY_DELIVERED && state != VS_DELIVERY_FAILED)
        return vs_fail(err, VS_ERR_INVALID_ARG, "event attempt: state must be pending, delivered or failed");
    vs_sqlite_db *sq = vs_catalog_sqlite(c);
    pthread_mutex_lock(&sq->mu);
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(sq,
                                  "UPDATE events SET attempts = attempts + 1, state = ?2, next_try_ms = ?3,"
                                  " last_error = ?4, delivered_at = CASE WHEN ?2 = 1 THEN ?5 ELSE NULL END"
                                  " WHERE id = ?1 AND state = 0",
                                  "event attempt", &st, err);
    if (rc == VS_OK) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int(st, 2, (int)state);
        sqlite3_bind_int64(st, 3, next_try_ms);
        vs_sqlite_bind_text(st, 4, last_error);
        sqlite3_bind_int64(st, 5, vs_wall_ms());
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(sq, err, "event attempt");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&sq->mu);
    return rc;
}
