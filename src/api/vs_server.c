/* vs_server.c - libmicrohttpd glue: accumulates each request body (bounded by
 * max_body_bytes: the rest is read and dropped, then 413), authenticates the
 * API key to exactly one tenant, routes, and sends the reply.
 *
 * Threading: MHD runs a pool of `threads` polling threads; a request lives
 * on one of them from first byte to reply, so handlers are plain blocking
 * functions. Shared state is in vs_app (thread-safe backends, atomic
 * counters, the engine pool under its mutex). */
#include "vs_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_hash.h"
#include "vs_http.h"
#include "vs_router.h"
#include "vs_routes.h"

struct vs_server {
    struct MHD_Daemon *d;
    vs_app *app;
    int port;
};

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

/* Routes that need no API key: health, metrics, the web UI, signed blobs. */
static int route_public(vs_req *r) {
    const char *p = r->path;
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) return 0;
    if (!strcmp(p, "/healthz")) { vs_route_healthz(r); return 1; }
    if (!strcmp(p, "/readyz")) { vs_route_readyz(r); return 1; }
    if (!strcmp(p, "/metrics")) { vs_route_metrics(r); return 1; }
    if (!strncmp(p, "/api/v1/blobs/", 14)) { vs_route_blob(r, p + 14); return 1; }
    if (!strcmp(p, "/") || !strncmp(p, "/web/", 5)) { vs_route_web(r); return 1; }
    return 0;
}

static void send_reply(vs_req *r) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(r->resp_len, r->resp ? r->resp : (void *)"",
                                                                r->resp ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    r->resp = NULL;
    if (!resp) return;
    MHD_add_response_header(resp, "Content-Type", r->content_type ? r->content_type : "application/json");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (r->allow[0]) MHD_add_response_header(resp, "Allow", r->allow);
    if (r->retry_after > 0 || r->status == 503) { /* every 503 says when to come back */
        char ra[16];
        snprintf(ra, sizeof ra, "%d", r->retry_after > 0 ? r->retry_after : VS_RETRY_AFTER_S);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    vs_server *s = cls;
    vs_req *r = *con_cls;
    (void)version;
    if (!r) { /* first call: headers only */
        r = vs_calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->conn = c;
        r->app = s->app;
        r->method = method;
        r->path = url;
        r->started_ms = vs_now_ms();
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->app->cfg.max_body_bytes) r->too_large = 1;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size > 0) { /* body bytes: keep them unless over the limit */
        if (!r->too_large) {
            if (r->body_len + *upload_size > s->app->cfg.max_body_bytes) {
                r->too_large = 1;
                vs_free(r->body);
                r->body = NULL;
                r->body_len = 0;
            } else {
                char *nb = vs_realloc(r->body, r->body_len + *upload_size + 1);
                if (!nb) return MHD_NO;
                memcpy(nb + r->body_len, upload, *upload_size);
                r->body = nb;
                r->body_len += *upload_size;
                r->body[r->body_len] = '\0';
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&s->app->requests, 1);
    if (r->too_large)
        vs_reply_error(r, 413, "too_large", "request body over %zu bytes", s->app->cfg.max_body_bytes);
    else if (!route_public(r) && !route_admin(r) && authenticate(r) == 0) {
        int w = is_write(r);
        if (w) pthread_rwlock_rdlock(&s->app->writes);
        r->p = vs_app_pipeline(s->app); /* after the lock: a write sees the pipeline of after a switch */
        vs_router_dispatch(r);
        if (w) pthread_rwlock_unlock(&s->app->writes);
    }
    if (!r->status) vs_reply_error(r, 500, "internal", "no reply");
    if (r->status >= 500) atomic_fetch_add(&s->app->errors_5xx, 1);
    else if (r->status >= 400) atomic_fetch_add(&s->app->errors_4xx, 1);
    send_reply(r);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t) {
    (void)cls;
    (void)c;
    (void)t;
    vs_req *r = *con_cls;
    if (!r) return;
    vs_free(r->body);
    free(r->resp);
    vs_free(r);
    *con_cls = NULL;
}

vs_err vs_server_start(const vs_server_cfg *cfg, vs_app *app, vs_server **out, vs_error *err) {
    *out = NULL;
    const char *listen = cfg && cfg->listen ? cfg->listen : "127.0.0.1:8080";
    struct sockaddr_in sa;
    if (parse_listen(listen, &sa) != 0)
        return vs_fail(err, VS_ERR_INVALID_ARG, "listen address '%s' is not IPV4:PORT", listen);
    if (app->cfg.open_mode && vs_tenant_count(app->catalog) == 0 && (ntohl(sa.sin_addr.s_addr) >> 24) != 127)
        return vs_fail(err, VS_ERR_INVALID_ARG,
                       "no tenant exists, so the API needs no key: refusing to listen on %s (not loopback); "
                       "create one first with `visage tenant create NAME`", listen);
    vs_server *s = vs_calloc(1, sizeof *s);
    if (!s) return vs_fail(err, VS_ERR_NOMEM, "server");
    s->app = app;
    int threads = cfg && cfg->threads > 0 ? cfg->threads : 4;
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
                            (unsigned)threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)512, MHD_OPTION_END);
    if (!s->d) {
        vs_free(s);
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
    vs_free(s);
}
