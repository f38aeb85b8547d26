/* vs_server.h - the HTTP server (libmicrohttpd) in front of a vs_app. */
#ifndef VS_SERVER_H
#define VS_SERVER_H

#include "vs_app.h"

typedef struct vs_server vs_server;

typedef struct vs_server_cfg {
    const char *listen;     /* "HOST:PORT" (default 127.0.0.1:8080); port 0 = any free */
    int threads;            /* request threads (default 4) */
} vs_server_cfg;

/* Starts serving app (borrowed). Refuses a non-loopback address while no
 * tenant exists (open mode would expose tenant "default" to the network). */
vs_err vs_server_start(const vs_server_cfg *cfg, vs_app *app, vs_server **out, vs_error *err);
/* The port actually bound. */
int vs_server_port(const vs_server *s);
void vs_server_stop(vs_server *s);

#endif
