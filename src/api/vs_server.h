/* vs_server.h - the HTTP server (libmicrohttpd) in front of a vs_app, and
 * the front door's protections: connection limits, head and body
 * deadlines, authentication before the body, a memory budget for bodies,
 * rate limits, ingest backpressure, the open mode's Host check and CORS. */
#ifndef VS_SERVER_H
#define VS_SERVER_H

#include "vs_app.h"
#include "vs_ratelimit.h"

typedef struct vs_server vs_server;

typedef struct vs_server_cfg {
    const char *listen;         /* "HOST:PORT" (default 127.0.0.1:8080); port 0 = any free */
    int threads;                /* request threads (default 4) */
    unsigned max_connections;   /* all clients together (default 512) */
    unsigned max_conn_per_ip;   /* per client address (default 64); 0 = no limit */
    int head_timeout_ms;        /* accept (or the previous reply) to the end of the request
                                 * head, however the bytes trickle in (default 15000) */
    int body_timeout_ms;        /* end of head to end of body, and reply written (default 60000) */
    size_t body_memory;         /* request bodies buffered at once, all connections (default 256 MiB) */
    vs_rate rate_ip;            /* requests per client address (default 2000/s, burst 4000) */
    vs_rate rate_key;           /* requests per tenant's API key (default 1000/s, burst 2000) */
    vs_rate rate_auth_fail;     /* failed authentications per address (default 10/m, burst 20) */
    int64_t queue_max;          /* ingest/crawl answer 503 when the queue holds more (default
                                 * 10000: some 20 minutes of work for one 2-core machine); 0 = no bound */
    const char *cors_origins;   /* comma-separated exact origins allowed cross-origin
                                 * ("https://app.example"); NULL/"" = none (default) */
} vs_server_cfg;

/* The defaults above (listen and cors_origins NULL). */
void vs_server_cfg_default(vs_server_cfg *cfg);

/* Starts serving app (borrowed). Refuses a non-loopback address while no
 * tenant exists (open mode would expose tenant "default" to the network),
 * and a CORS origin that is not "scheme://host[:port]". cfg is copied. */
vs_err vs_server_start(const vs_server_cfg *cfg, vs_app *app, vs_server **out, vs_error *err);
/* The port actually bound. */
int vs_server_port(const vs_server *s);
void vs_server_stop(vs_server *s);

#endif
