/* vs_webhook.c - the webhook deliverer (vs_webhook.h): signed POSTs of
 * pending events on vs_fetch's hardened transfer, with the try recorded in
 * the catalog after each one. Tuned for a trickle of events (a watched
 * person seen again), each one small; not for bulk export.
 *
 * Threading: one runner thread per server delivers one event at a time. A
 * thread per tenant (or a curl multi handle) would keep one slow receiver
 * from delaying the others by up to the 10 s timeout, at the price of a
 * pool to size and a fairness policy; with events this rare, the simple
 * loop was chosen, and retries are ordered by their due time so a failing
 * receiver's retries never starve a working one's first tries. The catalog
 * lock is held for single statements only, never across a POST: ingest and
 * search never wait on a receiver. Shutdown aborts a POST in progress
 * through curl's progress callback; that try is not recorded, so the event
 * is sent again after the restart (receivers drop duplicates by id). */
#include "vs_webhook.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "vs_alloc.h"
#include "vs_fetch.h"
#include "vs_hash.h"
#include "vs_redact.h"

#define WEBHOOK_MAX_ATTEMPTS 8
#define WEBHOOK_BACKOFF_MS 1000
#define WEBHOOK_BACKOFF_MAX_MS 300000
#define WEBHOOK_TIMEOUT_MS 10000
#define WEBHOOK_POLL_MS 1000
#define EVENTS_KEEP_DAYS 30
#define PRUNE_EVERY_MS (3600 * 1000)
#define WEBHOOK_REPLY_MAX 65536       /* of a receiver's answer, only the status counts */

/* cfg with the defaults filled in for its zero fields. */
static vs_webhook_cfg cfg_or_default(const vs_webhook_cfg *in) {
    vs_webhook_cfg c = in ? *in : (vs_webhook_cfg){0};
    if (c.max_attempts <= 0) c.max_attempts = WEBHOOK_MAX_ATTEMPTS;
    if (c.backoff_ms <= 0) c.backoff_ms = WEBHOOK_BACKOFF_MS;
    if (c.backoff_max_ms <= 0) c.backoff_max_ms = WEBHOOK_BACKOFF_MAX_MS;
    if (c.timeout_ms <= 0) c.timeout_ms = WEBHOOK_TIMEOUT_MS;
    if (c.poll_ms <= 0) c.poll_ms = WEBHOOK_POLL_MS;
    if (c.keep_days <= 0) c.keep_days = EVENTS_KEEP_DAYS;
    return c;
}

/* The scheme and host of url are read with curl's own parser, the one the
 * transfer will use, so what is checked is what will be connected to. */
vs_err vs_webhook_url_check(const char *url, const char *allow_cidrs, vs_error *err) {
    if (!url || !*url || strlen(url) >= VS_WEBHOOK_URL_MAX)
        return vs_fail(err, VS_ERR_INVALID_ARG, "url: must be an absolute http or https URL of 1..%d bytes",
                       VS_WEBHOOK_URL_MAX - 1);
    CURLU *u = curl_url();
    if (!u) return vs_fail(err, VS_ERR_NOMEM, "url: out of memory");
    char *scheme = NULL, *host = NULL;
    vs_err rc = VS_OK;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
        rc = vs_fail(err, VS_ERR_INVALID_ARG, "url: must be an absolute http or https URL with a host");
    } else {
        vs_fetch_opts fo = {.allow_cidrs = allow_cidrs};
        int literal = strspn(host, "0123456789.") == strlen(host) || host[0] == '[';
        if (literal && !vs_fetch_addr_allowed(host, &fo))
            rc = vs_fail(err, VS_ERR_INVALID_ARG,
                         "url: address not allowed: %.64s (loopback, private, link-local and other internal ranges "
                         "are refused unless VISAGE_FETCH_ALLOW names them)", host);
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

/* HMAC over "{ts}.{body}": the timestamp is signed with the body so a
 * receiver can refuse a replay of an old request. */
void vs_webhook_signature(const char *secret, int64_t ts_s, const char *body, size_t len, char out[VS_WEBHOOK_SIG_MAX]) {
    char prefix[32];
    int pn = snprintf(prefix, sizeof prefix, "%" PRId64 ".", ts_s);
    uint8_t mac[32];
    /* the signed text is "{ts}.{body}": one buffer, so HMAC runs once */
    char *msg = vs_malloc((size_t)pn + len + 1);
    if (!msg) {
        out[0] = '\0';
        return;
    }
    memcpy(msg, prefix, (size_t)pn);
    memcpy(msg + pn, body, len);
    vs_hmac_sha256(secret, strlen(secret), msg, (size_t)pn + len, mac);
    vs_free(msg);
    memcpy(out, "sha256=", 7);
    vs_hex(mac, sizeof mac, out + 7);
}

/* jansson writes the body (escaping every string), never printf. */
char *vs_webhook_body(const vs_event_due *d) {
    json_t *detail = d->detail_json ? json_loads(d->detail_json, 0, NULL) : NULL;
    if (!json_is_object(detail)) { /* stored checked (vs_event_add); defensive */
        json_decref(detail);
        detail = json_object();
    }
    json_t *o = json_pack("{s:I,s:s,s:s,s:I,s:o}", "id", (json_int_t)d->id, "tenant", d->tenant, "kind", d->kind,
                          "at", (json_int_t)d->at_ms, "detail", detail);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

/* curl's progress callback: non-zero aborts the transfer (shutdown). */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
    (void)dt, (void)dn, (void)ut, (void)un;
    const atomic_int *stop = ud;
    return stop && atomic_load(stop) ? 1 : 0;
}

/* The request headers of one delivery; NULL when out of memory. */
static struct curl_slist *post_headers(const char *secret, const char *kind, const char *body, int64_t ts_s) {
    char sig[VS_WEBHOOK_SIG_MAX], line[160];
    vs_webhook_signature(secret, ts_s, body, strlen(body), sig);
    if (!sig[0]) return NULL;
    struct curl_slist *h = NULL, *t;
    const char *fixed[] = {"Content-Type: application/json", "Expect:"};
    for (int i = 0; i < 2; i++) {
        if (!(t = curl_slist_append(h, fixed[i]))) goto oom;
        h = t;
    }
    snprintf(line, sizeof line, "X-Visage-Event: %s", kind);
    if (!(t = curl_slist_append(h, line))) goto oom;
    h = t;
    snprintf(line, sizeof line, "X-Visage-Timestamp: %" PRId64, ts_s);
    if (!(t = curl_slist_append(h, line))) goto oom;
    h = t;
    snprintf(line, sizeof line, "X-Visage-Signature: %s", sig);
    if (!(t = curl_slist_append(h, line))) goto oom;
    return t;
oom:
    curl_slist_free_all(h);
    return NULL;
}

/* Makes the prepared GET of vs_fetch a POST of body with headers h and the
 * stop check; 0 when curl took every option. */
static int make_post(void *easy, const char *body, struct curl_slist *h, const atomic_int *stop) {
    int bad = 0;
    bad |= curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body) != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body)) != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_HTTPHEADER, h) != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress) != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_XFERINFODATA, (void *)stop) != CURLE_OK;
    return !bad;
}

/* vs_fetch's transfer turned into a POST: the address rules, limits and
 * error contract are those of URL ingest, written once. */
vs_err vs_webhook_post(const vs_webhook_cfg *cfg_in, const char *url, const char *secret, const char *kind,
                       const char *body, int64_t ts_s, const atomic_int *stop, long *http_status, int *refused,
                       vs_error *err) {
    vs_webhook_cfg cfg = cfg_or_default(cfg_in);
    *http_status = 0;
    *refused = 0;
    /* vs_fetch's transfer: the address policy on every connection, no
     * proxy, http(s) only; redirects not followed (no_follow: a 3xx comes
     * back as an answer, judged below), the answer's body cut short */
    vs_fetch_opts fo = {.max_bytes = WEBHOOK_REPLY_MAX, .timeout_ms = cfg.timeout_ms, .max_redirects = -1,
                        .allow_cidrs = cfg.allow_cidrs, .user_agent = "visage-webhook/0.1", .no_follow = 1,
                        .truncate = 1};
    vs_fetch_xfer *x = NULL;
    vs_err rc = vs_fetch_xfer_new(url, &fo, &x, err);
    if (rc != VS_OK) return rc;
    struct curl_slist *h = post_headers(secret, kind, body, ts_s);
    if (!h) rc = vs_fail(err, VS_ERR_NOMEM, "webhook: out of memory");
    else if (!make_post(vs_fetch_xfer_easy(x), body, h, stop))
        rc = vs_fail(err, VS_ERR_BACKEND, "webhook: libcurl refused an option");
    vs_fetch_result res = {0};
    if (rc == VS_OK) {
        CURLcode cc = curl_easy_perform(vs_fetch_xfer_easy(x));
        rc = vs_fetch_xfer_finish(x, (int)cc, &res, err);
        *http_status = res.http_status;
        *refused = res.refused;
        if (cc == CURLE_ABORTED_BY_CALLBACK) rc = vs_fail(err, VS_ERR_CANCELLED, "webhook: stopped (shutdown)");
        else if (rc == VS_OK && res.http_status >= 300) /* a 3xx, not followed */
            rc = vs_fail(err, VS_ERR_IO, "HTTP %ld (redirects are not followed)", res.http_status);
        else if (rc == VS_ERR_IO && res.http_status > 0)
            rc = vs_fail(err, VS_ERR_IO, "HTTP %ld", res.http_status);
    }
    vs_fetch_result_free(&res);
    curl_slist_free_all(h);
    vs_fetch_xfer_free(x);
    return rc;
}

/* The wait after the n-th failed try (n >= 1): backoff doubled n-1 times,
 * capped. */
static int64_t backoff_after(const vs_webhook_cfg *cfg, int n) {
    int64_t d = cfg->backoff_ms;
    for (int i = 1; i < n && d < cfg->backoff_max_ms; i++) d *= 2;
    return d < cfg->backoff_max_ms ? d : cfg->backoff_max_ms;
}

/* Sends event d once and records the outcome: delivered; failed for good
 * (last try, refused address, a URL that is not one); else pending again
 * after the backoff. A try cut by shutdown is not recorded. */
static vs_err try_event(vs_catalog *c, const vs_webhook_cfg *cfg, const atomic_int *stop, const vs_event_due *d,
                        vs_error *err) {
    char *body = vs_webhook_body(d);
    if (!body) return vs_fail(err, VS_ERR_NOMEM, "webhook: out of memory");
    long status = 0;
    int refused = 0;
    vs_error pe = {0};
    int64_t ts = vs_wall_ms() / 1000;
    vs_err prc = vs_webhook_post(cfg, d->url, d->secret, d->kind, body, ts, stop, &status, &refused, &pe);
    free(body);
    if (prc == VS_ERR_CANCELLED) return VS_OK;
    if (prc == VS_OK) return vs_event_attempt(c, d->id, VS_DELIVERY_DELIVERED, 0, NULL, err);
    int n = d->attempts + 1;
    vs_redact_inplace(pe.msg, sizeof pe.msg); /* a user:password@ of the URL stays out of the listing and logs */
    int final = n >= cfg->max_attempts || refused || prc == VS_ERR_INVALID_ARG || prc == VS_ERR_UNSUPPORTED;
    if (cfg->log) {
        char line[VS_ERROR_MSG_MAX + 128];
        snprintf(line, sizeof line, "visage: webhook: event %" PRId64 " of %s, try %d: %s%s", d->id, d->tenant, n,
                 pe.msg, final ? " (given up)" : "");
        cfg->log(cfg->log_ctx, line);
    }
    if (final) return vs_event_attempt(c, d->id, VS_DELIVERY_FAILED, 0, pe.msg, err);
    return vs_event_attempt(c, d->id, VS_DELIVERY_PENDING, vs_wall_ms() + backoff_after(cfg, n), pe.msg, err);
}

/* One due event per call: the runner loops on it, tests call it
 * directly to deliver without a thread or a clock to wait on. */
vs_err vs_webhook_deliver_one(vs_catalog *c, const vs_webhook_cfg *cfg_in, const atomic_int *stop, int *found,
                              int64_t *next_ms, vs_error *err) {
    return vs_webhook_deliver_next(c, cfg_in, stop, NULL, found, next_ms, err);
}

vs_err vs_webhook_deliver_next(vs_catalog *c, const vs_webhook_cfg *cfg_in, const atomic_int *stop, char *last_tenant,
                               int *found, int64_t *next_ms, vs_error *err) {
    vs_webhook_cfg cfg = cfg_or_default(cfg_in);
    vs_event_due d;
    vs_err rc = vs_event_next_due(c, vs_wall_ms(), last_tenant, &d, found, next_ms, err);
    if (rc != VS_OK || !*found) return rc;
    if (last_tenant) snprintf(last_tenant, VS_TENANT_MAX, "%s", d.tenant);
    rc = try_event(c, &cfg, stop, &d, err);
    vs_event_due_clear(&d);
    return rc;
}

/* ---- the runner -------------------------------------------------------------- */

struct vs_webhook_runner {
    vs_catalog *catalog;
    vs_webhook_cfg cfg;
    char last_tenant[VS_TENANT_MAX]; /* the tenant of the last try: the next goes to another if one is due */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int woken;
    atomic_int stop;
};

/* Waits up to ms for a wake-up or the stop. */
static void runner_wait(vs_webhook_runner *r, int64_t ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&r->mu);
    while (!r->woken && !atomic_load(&r->stop))
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) != 0) break;
    r->woken = 0;
    pthread_mutex_unlock(&r->mu);
}

/* The runner thread: deliver what is due, else sleep until the next try
 * is due or the next poll, whichever comes first (vs_event_add from another
 * module does not wake it; the poll finds its event). It also keeps the
 * events table to keep_days, at its start and hourly. */
static void *runner_main(void *arg) {
    vs_webhook_runner *r = arg;
    int64_t pruned_at = 0;
    while (!atomic_load(&r->stop)) {
        if (!pruned_at || vs_now_ms() - pruned_at >= PRUNE_EVERY_MS) {
            vs_error pe = {0};
            pruned_at = vs_now_ms();
            if (vs_event_prune(r->catalog, vs_wall_ms() - (int64_t)r->cfg.keep_days * 86400000, NULL, &pe) != VS_OK &&
                r->cfg.log)
                r->cfg.log(r->cfg.log_ctx, pe.msg);
        }
        int found = 0;
        int64_t next = 0;
        vs_error e = {0};
        if (vs_webhook_deliver_next(r->catalog, &r->cfg, &r->stop, r->last_tenant, &found, &next, &e) != VS_OK) {
            if (r->cfg.log) r->cfg.log(r->cfg.log_ctx, e.msg);
            runner_wait(r, r->cfg.poll_ms);
            continue;
        }
        if (found) continue;
        int64_t wait = r->cfg.poll_ms, until = next ? next - vs_wall_ms() : wait;
        runner_wait(r, until < 1 ? 1 : until < wait ? until : wait);
    }
    return NULL;
}

/* The thread is the runner's own and joined by stop: never detached. */
vs_err vs_webhook_runner_start(vs_catalog *c, const vs_webhook_cfg *cfg, vs_webhook_runner **out, vs_error *err) {
    *out = NULL;
    vs_err rc = vs_fetch_global_init(err); /* before the thread: curl's init is not thread-safe */
    if (rc != VS_OK) return rc;
    vs_webhook_runner *r = vs_calloc(1, sizeof *r);
    if (!r) return vs_fail(err, VS_ERR_NOMEM, "webhook runner: out of memory");
    r->catalog = c;
    r->cfg = cfg_or_default(cfg);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, runner_main, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        vs_free(r);
        return vs_fail(err, VS_ERR_BACKEND, "webhook runner: cannot start its thread");
    }
    *out = r;
    return VS_OK;
}

/* Cuts the runner's sleep short (a PUT with events already pending). */
void vs_webhook_runner_wake(vs_webhook_runner *r) {
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->woken = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* The stop flag also aborts a POST in flight (on_progress), so a
 * shutdown waits for no receiver. */
void vs_webhook_runner_stop(vs_webhook_runner *r) {
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->stop, 1);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    vs_free(r);
}
