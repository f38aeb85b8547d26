/* vs_server.c - libmicrohttpd glue: decides from the request head alone
 * whether a request may go on (Host in open mode, Origin, rate limits,
 * size, API key, queue depth, body memory) and answers at once when not,
 * without reading the body; accumulates the body of the others (bounded by
 * max_body_bytes and a shared memory budget), routes, and sends the reply.
 *
 * Threading: MHD runs a pool of `threads` polling threads; a request lives
 * on one of them from first byte to reply, so handlers are plain blocking
 * functions. Shared state is in vs_app (thread-safe backends, atomic
 * counters, the engine pool under its mutex) and here: the rate-limit table
 * (its own mutex), the body-memory reservation and the cached queue depth
 * (atomics), and the connection watchdog (vs_conntrack: one thread that
 * shuts sockets past their head or body deadline; MHD sees end-of-file
 * and closes them in its own thread). */
#include "vs_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_conntrack.h"
#include "vs_hash.h"
#include "vs_http.h"
#include "vs_router.h"
#include "vs_origin.h"
#include "vs_routes.h"

#define RATE_SLOTS 8192       /* rate-limit buckets: active addresses and keys */
#define QUEUE_DEPTH_TTL_MS 250 /* how long a queue depth read is reused */
/* A request refused from its head with a body up to this size has the body
 * read and dropped before the reply: closing a socket with unread data
 * makes TCP reset the connection, and many clients then report the reset,
 * not the reply. A larger body is not read: reply, then close. */
#define DRAIN_MAX ((unsigned long long)1 << 20)

struct vs_server {
    struct MHD_Daemon *d;
    vs_app *app;
    int port;
    vs_server_cfg cfg;        /* copied; cors_origins points into cors */
    char *cors;               /* owned copy of cfg.cors_origins, or NULL */
    vs_ratelimit *rl;
    vs_conntrack *ct;
    atomic_size_t body_reserved;    /* bytes of body memory promised to requests now */
    atomic_llong queue_depth, queue_depth_ms;
};

/* A request as the server tracks it: the handlers' vs_req first (con_cls
 * points at it), then what the front door needs until the reply is sent. */
typedef struct srv_req {
    vs_req r;
    vs_tracked *conn;         /* the connection's deadline entry (may be NULL) */
    size_t reserved;          /* body memory held from body_reserved (>= body_cap) */
    size_t body_cap;          /* bytes allocated for r.body */
    int chunked;              /* no Content-Length: reserve as bytes arrive */
    int over_budget;          /* chunked body past the budget: dropped, 503 at the end */
    int replied;              /* answered from the head: ignore the body */
    int preflight;            /* an answered CORS preflight: Allow-Methods/Headers */
    const char *cors_origin;  /* an allowed cross-origin Origin to echo, or NULL */
    char ip[INET6_ADDRSTRLEN];
} srv_req;

/* Splits "host:port"; returns 0 on success. */
static int parse_listen(const char *s, struct sockaddr_in *sa) {
    char host[128];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host) return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    long port = strtol(colon + 1, NULL, 10);
    if (port < 0 || port > 65535) return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* Authenticates: Bearer key -> tenant, or "default" in open mode. Replies
 * 401 and returns -1 when that fails. */
static int authenticate(vs_req *r) {
    if (r->app->cfg.open_mode && vs_tenant_count(r->app->catalog) == 0) {
        strcpy(r->tenant, "default");
        return 0;
    }
    const char *h = vs_req_header(r, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        vs_reply_error(r, 401, "unauthorized", "missing 'Authorization: Bearer <api key>' header");
        return -1;
    }
    vs_error err = {0};
    vs_err rc = vs_tenant_for_key(r->app->catalog, h + 7, r->tenant, &err);
    if (rc == VS_ERR_NOT_FOUND) {
        vs_reply_error(r, 401, "unauthorized", "unknown API key");
        return -1;
    }
    if (rc != VS_OK) {
        vs_reply_vs_err(r, rc, &err);
        return -1;
    }
    return 0;
}

/* Operator routes act on the whole deployment, not on one tenant: they
 * take $VISAGE_ADMIN_KEY as the Bearer key (compared in constant time), or
 * nothing in open mode; a tenant's key is not enough. 1 when r was one. */
static int route_admin(vs_req *r) {
    if (strcmp(r->path, "/api/v1/reindex") != 0) return 0;
    const char *key = r->app->cfg.admin_key, *h = vs_req_header(r, "Authorization");
    int open = r->app->cfg.open_mode && vs_tenant_count(r->app->catalog) == 0, ok = open;
    if (!ok && key && h && strncasecmp(h, "Bearer ", 7) == 0) {
        char want[65], got[65];
        vs_sha256_hex(key, strlen(key), want);
        vs_sha256_hex(h + 7, strlen(h + 7), got);
        unsigned diff = 0;
        for (int i = 0; i < 64; i++) diff |= (unsigned)(want[i] ^ got[i]);
        ok = diff == 0;
    }
    if (!ok)
        vs_reply_error(r, 403, "forbidden",
                       key ? "%s is for the operator: send the server's VISAGE_ADMIN_KEY as the Bearer key"
                           : "%s is for the operator: start the server with VISAGE_ADMIN_KEY set and send it as the "
                             "Bearer key",
                       r->path);
    else if (!strcmp(r->method, "GET")) vs_route_reindex_get(r);
    else if (!strcmp(r->method, "POST")) vs_route_reindex_post(r);
    else {
        snprintf(r->allow, sizeof r->allow, "GET, POST");
        vs_reply_error(r, 405, "method_not_allowed", "%s %s: use GET or POST", r->method, r->path);
    }
    return 1;
}

/* 1 for the routes that change images, faces, identities or blocks: they
 * run holding the writes lock shared, so a reindex's switch happens between
 * them, never in the middle of one. Searches and ingest (queueing) do not. */
static int is_write(const vs_req *r) {
    const char *p = r->path;
    if (strncmp(p, "/api/v1/", 8) != 0) return 0;
    if (!strcmp(r->method, "DELETE")) return 1;
    if (strcmp(r->method, "POST") != 0) return 0;
    size_t n = strlen(p);
    return !strcmp(p, "/api/v1/erase") || !strcmp(p, "/api/v1/identities") ||
           (n > 7 && !strcmp(p + n - 7, "/enroll"));
}

/* 1 for the routes that need no API key: health, metrics, the web UI,
 * signed blobs (GET or HEAD). */
static int is_public(const vs_req *r) {
    const char *p = r->path;
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) return 0;
    return !strcmp(p, "/healthz") || !strcmp(p, "/readyz") || !strcmp(p, "/metrics") ||
           !strncmp(p, "/api/v1/blobs/", 14) || !strcmp(p, "/") || !strncmp(p, "/web/", 5);
}

/* Routes that need no API key: health, metrics, the web UI, signed blobs. */
static int route_public(vs_req *r) {
    const char *p = r->path;
    if (!is_public(r)) return 0;
    if (!strcmp(p, "/healthz")) vs_route_healthz(r);
    else if (!strcmp(p, "/readyz")) vs_route_readyz(r);
    else if (!strcmp(p, "/metrics")) vs_route_metrics(r);
    else if (!strncmp(p, "/api/v1/blobs/", 14)) vs_route_blob(r, p + 14);
    else vs_route_web(r);
    return 1;
}

/* Queues r's reply with the headers every reply carries, Retry-After when
 * the refusal says when to come back, and CORS headers for an allowed
 * cross-origin caller. */
static void send_reply(srv_req *sr) {
    vs_req *r = &sr->r;
    struct MHD_Response *resp = MHD_create_response_from_buffer(r->resp_len, r->resp ? r->resp : (void *)"",
                                                                r->resp ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    r->resp = NULL;
    if (!resp) return;
    MHD_add_response_header(resp, "Content-Type", r->content_type ? r->content_type : "application/json");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    /* the web app loads only its own files: an injected script or a
     * foreign image host would not run or load */
    if (r->content_type && !strncmp(r->content_type, "text/html", 9))
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
                                "frame-ancestors 'none'; form-action 'self'");
    if (r->allow[0]) MHD_add_response_header(resp, "Allow", r->allow);
    int retry = r->retry_after > 0 ? r->retry_after : r->status == 503 ? VS_RETRY_AFTER_S : 0; /* every 503 says when */
    if (retry > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", retry);
        MHD_add_response_header(resp, "Retry-After", v);
    }
    if (sr->cors_origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", sr->cors_origin);
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", "Retry-After, Location");
    }
    if (sr->cors_origin && sr->preflight) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, PUT, DELETE");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Authorization, Content-Type");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    }
    MHD_add_response_header(resp, "Vary", "Origin");
    MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
}

/* Replies status with an error body and Retry-After, counting the refusal. */
static void refuse(srv_req *sr, vs_refusal why, int status, int retry_s, const char *code, const char *msg) {
    atomic_fetch_add(&sr->r.app->refused[why], 1);
    sr->r.retry_after = retry_s;
    vs_reply_error(&sr->r, status, code, "%s", msg);
}

/* Open mode answers only requests addressed to a loopback name: a page on
 * another site that rebinds its DNS name to 127.0.0.1 sends its own name as
 * Host, so it is refused and cannot read the replies. 0 = go on. */
static int check_host(srv_req *sr, int open) {
    const char *host = vs_req_header(&sr->r, "Host");
    if (!open || !host || vs_host_is_loopback(host)) return 0;
    atomic_fetch_add(&sr->r.app->refused[VS_REFUSED_HOST], 1);
    vs_reply_error(&sr->r, 421, "misdirected_request",
                   "Host '%.100s' is not a loopback name: with no tenant (open mode) this server answers only "
                   "requests to 127.0.0.1, localhost or [::1]", host);
    return -1;
}

/* CORS, closed by default: a request whose Origin is neither the host it
 * was sent to nor one of cfg.cors_origins is refused with 403 on /api/v1
 * (a browser sends Origin on every cross-site POST, even a "simple"
 * text/plain one that skips the preflight). An allowed origin gets its
 * preflight answered and the Access-Control headers. 0 = go on. */
static int check_origin(vs_server *s, srv_req *sr) {
    vs_req *r = &sr->r;
    const char *origin = vs_req_header(r, "Origin"), *host = vs_req_header(r, "Host");
    int options = !strcmp(r->method, "OPTIONS");
    if (!origin || vs_origin_same_host(origin, host)) return 0;
    int listed = vs_origin_listed(origin, s->cors);
    if (listed) sr->cors_origin = origin;
    if (!listed && (options || !strncmp(r->path, "/api/v1/", 8))) {
        atomic_fetch_add(&r->app->refused[VS_REFUSED_ORIGIN], 1);
        vs_reply_error(r, 403, "forbidden_origin",
                       "cross-origin request from '%.100s' refused: not the server's own origin and not in "
                       "VISAGE_CORS_ORIGINS", origin);
        return -1;
    }
    if (listed && options) { /* the preflight */
        sr->preflight = 1;
        vs_reply_bytes(r, 204, "text/plain", NULL, 0);
        return -1;
    }
    return 0;
}

/* Per-address and failed-authentication limits, then the API key and its
 * own limit: all from the head. Public and operator routes need no key
 * (the operator route checks its own). 0 = go on. */
static int check_client(vs_server *s, srv_req *sr) {
    vs_req *r = &sr->r;
    char key[80];
    int retry = 0;
    int64_t now = vs_now_ms();
    snprintf(key, sizeof key, "ip:%s", sr->ip);
    if (!vs_ratelimit_check(s->rl, key, s->cfg.rate_ip, 1, now, &retry)) {
        refuse(sr, VS_REFUSED_RATE_IP, 429, retry, "rate_limited", "too many requests from this address: slow down");
        return -1;
    }
    if (is_public(r) || !strcmp(r->path, "/api/v1/reindex")) return 0;
    snprintf(key, sizeof key, "fail:%s", sr->ip);
    if (!vs_ratelimit_check(s->rl, key, s->cfg.rate_auth_fail, 0, now, &retry)) {
        refuse(sr, VS_REFUSED_AUTH_FAIL, 429, retry, "rate_limited",
               "too many failed authentications from this address: wait before trying again");
        return -1;
    }
    if (authenticate(r) != 0) {
        if (r->status == 401 && vs_req_header(r, "Authorization")) /* a wrong key: a guess */
            vs_ratelimit_check(s->rl, key, s->cfg.rate_auth_fail, 1, now, &retry);
        return -1;
    }
    snprintf(key, sizeof key, "key:%s", r->tenant);
    if (!vs_ratelimit_check(s->rl, key, s->cfg.rate_key, 1, now, &retry)) {
        refuse(sr, VS_REFUSED_RATE_KEY, 429, retry, "rate_limited", "too many requests with this API key: slow down");
        return -1;
    }
    return 0;
}

/* Ready + leased messages of the ingest queue, read at most every
 * QUEUE_DEPTH_TTL_MS (a burst of ingest calls shares one count); -1 when
 * the queue cannot say. */
static int64_t queue_depth(vs_server *s) {
    int64_t now = vs_now_ms();
    if (now - atomic_load(&s->queue_depth_ms) < QUEUE_DEPTH_TTL_MS) return atomic_load(&s->queue_depth);
    vs_queue_stats qs = {0};
    vs_error err;
    int64_t d = s->app->queue->ops->stats(s->app->queue, &qs, &err) == VS_OK ? qs.ready + qs.in_flight : -1;
    atomic_store(&s->queue_depth, d);
    atomic_store(&s->queue_depth_ms, now);
    return d;
}

/* Backpressure: the routes that add work to the queue answer 503 with
 * Retry-After while it holds more than queue_max messages, so a client
 * learns to slow down instead of growing the backlog. 0 = go on. */
static int check_queue(vs_server *s, srv_req *sr) {
    vs_req *r = &sr->r;
    if (s->cfg.queue_max <= 0 || strcmp(r->method, "POST") != 0) return 0;
    if (strcmp(r->path, "/api/v1/ingest") && strcmp(r->path, "/api/v1/ingest/batch") && strcmp(r->path, "/api/v1/crawl"))
        return 0;
    int64_t d = queue_depth(s);
    if (d <= s->cfg.queue_max) return 0;
    char msg[200];
    snprintf(msg, sizeof msg, "the ingest queue holds %lld messages (bound %lld): try again later",
             (long long)d, (long long)s->cfg.queue_max);
    refuse(sr, VS_REFUSED_QUEUE_FULL, 503, 5, "overloaded", msg);
    return -1;
}

/* Takes n bytes from the body budget: 0, or -1 when it would go past. */
static int reserve(vs_server *s, srv_req *sr, size_t n) {
    size_t cur = atomic_load(&s->body_reserved);
    do {
        if (n > s->cfg.body_memory || cur > s->cfg.body_memory - n) return -1;
    } while (!atomic_compare_exchange_weak(&s->body_reserved, &cur, cur + n));
    sr->reserved += n;
    return 0;
}

/* Size checks from Content-Length: over max_body_bytes -> 413, past the
 * shared body-memory budget -> 503 + Retry-After, both before a byte of
 * the body is read. A body without Content-Length (chunked) reserves as it
 * arrives. 0 = go on. */
static int check_body(vs_server *s, srv_req *sr) {
    vs_req *r = &sr->r;
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    const char *te = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Transfer-Encoding");
    if (!cl) {
        sr->chunked = te != NULL;
        return 0;
    }
    unsigned long long n = strtoull(cl, NULL, 10);
    if (n > r->app->cfg.max_body_bytes) {
        vs_reply_error(r, 413, "too_large", "request body of %llu bytes is over the limit of %zu bytes", n,
                       r->app->cfg.max_body_bytes);
        return -1;
    }
    if (n > 0 && reserve(s, sr, (size_t)n + 1) != 0) { /* + its NUL */
        refuse(sr, VS_REFUSED_BODY_MEMORY, 503, 2, "overloaded",
               "the server is holding as many request bodies as its memory budget allows: try again shortly");
        return -1;
    }
    return 0;
}

/* Everything decided from the request head, in order of cost: 0 when the
 * request goes on to its body and route; otherwise r holds the reply. */
static int front_door(vs_server *s, srv_req *sr) {
    vs_req *r = &sr->r;
    int open = r->app->cfg.open_mode && vs_tenant_count(r->app->catalog) == 0;
    if (check_host(sr, open) || check_origin(s, sr) || check_client(s, sr) || check_body(s, sr) ||
        check_queue(s, sr))
        return -1;
    return 0;
}

/* Counts r's status class and queues its reply; the connection's reply
 * deadline starts. */
static void finish(vs_server *s, srv_req *sr) {
    vs_req *r = &sr->r;
    if (!r->status) vs_reply_error(r, 500, "internal", "no reply");
    if (r->status >= 500) atomic_fetch_add(&s->app->errors_5xx, 1);
    else if (r->status >= 400) atomic_fetch_add(&s->app->errors_4xx, 1);
    vs_conntrack_set(s->ct, sr->conn, vs_now_ms() + s->cfg.body_timeout_ms, VS_REFUSED_BODY_TIMEOUT);
    send_reply(sr);
}

/* 1 when a refused request's body is to be read and dropped before the
 * reply (see DRAIN_MAX): a small one, or one up to twice the body limit
 * from a caller that passed authentication (a client that sent too much
 * then sees its 413, not a reset). The body deadline still bounds it. */
static int drain_first(vs_req *r) {
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
    return n > 0 && (n <= DRAIN_MAX || (r->tenant[0] && r->status == 413 && n / 2 <= r->app->cfg.max_body_bytes));
}

/* The first call for a request: its head is complete. */
static enum MHD_Result on_head(vs_server *s, struct MHD_Connection *c, const char *url, const char *method,
                               void **con_cls) {
    srv_req *sr = vs_calloc(1, sizeof *sr);
    if (!sr) return MHD_NO;
    vs_req *r = &sr->r;
    r->conn = c;
    r->app = s->app;
    r->method = method;
    r->path = url;
    r->started_ms = vs_now_ms();
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    sr->conn = ci ? ci->socket_context : NULL;
    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, sr->ip, sizeof sr->ip);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, sr->ip, sizeof sr->ip);
    vs_conntrack_set(s->ct, sr->conn, vs_now_ms() + s->cfg.body_timeout_ms, VS_REFUSED_BODY_TIMEOUT);
    *con_cls = r;
    if (front_door(s, sr) != 0) {
        atomic_fetch_add(&s->app->requests, 1);
        sr->replied = 1;
        if (!drain_first(r)) finish(s, sr); /* queued now: MHD closes after it instead of reading the body */
    }
    return MHD_YES;
}

/* Body bytes: kept unless over max_body_bytes or (chunked) past the body
 * budget, in which case they are dropped and the reply says so. */
static enum MHD_Result on_body(vs_server *s, srv_req *sr, const char *upload, size_t n) {
    vs_req *r = &sr->r;
    if (sr->replied || r->too_large || sr->over_budget) return MHD_YES;
    size_t need = r->body_len + n + 1;
    if (need - 1 > s->app->cfg.max_body_bytes) r->too_large = 1;
    else if (need > sr->body_cap) { /* the announced size at once, else doubling: no quadratic copying */
        size_t cap = sr->body_cap ? sr->body_cap * 2 : 4096;
        if (cap < sr->reserved) cap = sr->reserved;
        if (cap < need) cap = need;
        if (cap > s->app->cfg.max_body_bytes + 1) cap = s->app->cfg.max_body_bytes + 1;
        char *nb = NULL;
        if (cap > sr->reserved && reserve(s, sr, cap - sr->reserved) != 0) sr->over_budget = 1;
        else if (!(nb = vs_realloc(r->body, cap))) return MHD_NO;
        if (nb) {
            r->body = nb;
            sr->body_cap = cap;
        }
    }
    if (r->too_large || sr->over_budget) {
        vs_free(r->body);
        r->body = NULL;
        r->body_len = 0;
        sr->body_cap = 0;
        return MHD_YES;
    }
    memcpy(r->body + r->body_len, upload, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    vs_server *s = cls;
    vs_req *r = *con_cls;
    srv_req *sr = (srv_req *)r;
    (void)version;
    if (!r) return on_head(s, c, url, method, con_cls);
    if (*upload_size > 0) {
        enum MHD_Result rc = on_body(s, sr, upload, *upload_size);
        *upload_size = 0;
        return rc;
    }
    if (sr->replied) { /* refused from its head, small body drained: the reply now */
        if (drain_first(r)) finish(s, sr);
        return MHD_YES;
    }
    vs_conntrack_set(s->ct, sr->conn, 0, 0); /* the route may take its time: no deadline while it runs */
    atomic_fetch_add(&s->app->requests, 1);
    if (r->too_large)
        vs_reply_error(r, 413, "too_large", "request body over %zu bytes", s->app->cfg.max_body_bytes);
    else if (sr->over_budget)
        refuse(sr, VS_REFUSED_BODY_MEMORY, 503, 2, "overloaded",
               "the server is holding as many request bodies as its memory budget allows: try again shortly");
    else if (!route_public(r) && !route_admin(r)) {
        int w = is_write(r);
        if (w) pthread_rwlock_rdlock(&s->app->writes);
        r->p = vs_app_pipeline(s->app); /* after the lock: a write sees the pipeline of after a switch */
        vs_router_dispatch(r);
        if (w) pthread_rwlock_unlock(&s->app->writes);
    }
    finish(s, sr);
    return MHD_YES;
}

/* The request is over (reply sent, or the connection died): its memory and
 * body reservation go back; the connection's next request head has
 * head_timeout from now. */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t) {
    vs_server *s = cls;
    (void)c;
    (void)t;
    srv_req *sr = *con_cls;
    if (!sr) return;
    atomic_fetch_sub(&s->body_reserved, sr->reserved);
    vs_conntrack_set(s->ct, sr->conn, vs_now_ms() + s->cfg.head_timeout_ms, VS_REFUSED_HEAD_TIMEOUT);
    vs_free(sr->r.body);
    free(sr->r.resp);
    vs_free(sr);
    *con_cls = NULL;
}

/* A connection opens (tracked with its head deadline) or closes (forgotten,
 * before MHD closes its socket). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    vs_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? vs_conntrack_add(s->ct, ci->connect_fd, vs_now_ms() + s->cfg.head_timeout_ms,
                                                VS_REFUSED_HEAD_TIMEOUT)
                             : NULL;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        vs_conntrack_remove(s->ct, *socket_context);
        *socket_context = NULL;
    }
}

/* The watchdog cut a connection: counted by reason. */
static void on_cut(void *ctx, int reason) {
    vs_app *a = ctx;
    if (reason >= 0 && reason < VS_REFUSED_N) atomic_fetch_add(&a->refused[reason], 1);
}

void vs_server_cfg_default(vs_server_cfg *cfg) {
    *cfg = (vs_server_cfg){.threads = 4,
                           .max_connections = 512,
                           .max_conn_per_ip = 64,
                           .head_timeout_ms = 15000,
                           .body_timeout_ms = 60000,
                           .body_memory = (size_t)256 << 20,
                           .rate_ip = {2000, 4000},
                           .rate_key = {1000, 2000},
                           .rate_auth_fail = {10.0 / 60, 20},
                           .queue_max = 10000};
}

/* Frees s and what it owns (the daemon must be stopped). */
static void server_free(vs_server *s) {
    vs_conntrack_stop(s->ct);
    vs_ratelimit_free(s->rl);
    vs_free(s->cors);
    vs_free(s);
}

vs_err vs_server_start(const vs_server_cfg *cfg, vs_app *app, vs_server **out, vs_error *err) {
    *out = NULL;
    vs_server_cfg def;
    vs_server_cfg_default(&def);
    if (!cfg) cfg = &def;
    const char *listen = cfg->listen ? cfg->listen : "127.0.0.1:8080";
    struct sockaddr_in sa;
    if (parse_listen(listen, &sa) != 0)
        return vs_fail(err, VS_ERR_INVALID_ARG, "listen address '%s' is not IPV4:PORT", listen);
    if (app->cfg.open_mode && vs_tenant_count(app->catalog) == 0 && (ntohl(sa.sin_addr.s_addr) >> 24) != 127)
        return vs_fail(err, VS_ERR_INVALID_ARG,
                       "no tenant exists, so the API needs no key: refusing to listen on %s (not loopback); "
                       "create one first with `visage tenant create NAME`", listen);
    vs_err rc = vs_origin_list_check(cfg->cors_origins, err);
    if (rc != VS_OK) return rc;
    vs_server *s = vs_calloc(1, sizeof *s);
    if (!s) return vs_fail(err, VS_ERR_NOMEM, "server");
    s->app = app;
    s->cfg = *cfg;
    s->cfg.listen = NULL;
    if (s->cfg.threads <= 0) s->cfg.threads = def.threads;
    if (!s->cfg.max_connections) s->cfg.max_connections = def.max_connections;
    if (s->cfg.head_timeout_ms <= 0) s->cfg.head_timeout_ms = def.head_timeout_ms;
    if (s->cfg.body_timeout_ms <= 0) s->cfg.body_timeout_ms = def.body_timeout_ms;
    if (!s->cfg.body_memory) s->cfg.body_memory = def.body_memory;
    s->cors = cfg->cors_origins && *cfg->cors_origins ? vs_strdup(cfg->cors_origins) : NULL;
    s->cfg.cors_origins = s->cors;
    atomic_store(&s->queue_depth_ms, INT64_MIN / 2);
    if ((cfg->cors_origins && *cfg->cors_origins && !s->cors) || (rc = vs_ratelimit_new(RATE_SLOTS, &s->rl, err)) != VS_OK ||
        (rc = vs_conntrack_start(100, on_cut, app, &s->ct, err)) != VS_OK) {
        server_free(s);
        return rc != VS_OK ? rc : vs_fail(err, VS_ERR_NOMEM, "server: CORS origins");
    }
    /* MHD's own idle timeout stays as a backstop; the deadlines above are shorter */
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
                            (unsigned)s->cfg.threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)60, MHD_OPTION_CONNECTION_LIMIT, s->cfg.max_connections,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->cfg.max_conn_per_ip, MHD_OPTION_END);
    if (!s->d) {
        server_free(s);
        return vs_fail(err, VS_ERR_IO, "cannot listen on %s (address in use?)", listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : ntohs(sa.sin_port);
    *out = s;
    return VS_OK;
}

int vs_server_port(const vs_server *s) { return s->port; }

void vs_server_stop(vs_server *s) {
    if (!s) return;
    MHD_stop_daemon(s->d);
    server_free(s);
}
