/* cmd_serve.c - `visage serve`: the whole system in one process (API + web
 * UI + workers); `visage api`: the same without workers (unless
 * VISAGE_WORKERS asks for some), owning the index and catalog and applying
 * the results distributed workers send on face:results. Both run until
 * SIGINT/SIGTERM. Shutdown order: stop accepting requests, let workers
 * finish the message in hand (unfinished ones stay leased and come back
 * after a restart), close the backends. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_system.h"
#include "vs_server.h"

/* A whole number from env var name into *out when set; -1 naming it when
 * it is not a number in [min, max]. */
static int env_long(const char *name, long long min, long long max, long long *out) {
    const char *v = getenv(name);
    if (!v || !*v) return 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*end || n < min || n > max) {
        fprintf(stderr, "visage: %s='%.40s': want a whole number from %lld to %lld\n", name, v, min, max);
        return -1;
    }
    *out = n;
    return 0;
}

/* A rate "RATE[/s|/m][:BURST]" from env var name into *out when set. */
static int env_rate(const char *name, vs_rate *out) {
    const char *v = getenv(name);
    vs_error err = {0};
    if (!v || !*v) return 0;
    if (vs_rate_parse(v, name, out, &err) == VS_OK) return 0;
    fprintf(stderr, "visage: %s\n", err.msg);
    return -1;
}

/* The front door's limits from the environment (defaults in
 * vs_server_cfg_default): connections, deadlines, body memory, rates,
 * queue bound, CORS origins. -1 after a message naming a bad value. */
static int server_cfg_from_env(vs_server_cfg *sc) {
    long long conns = sc->max_connections, per_ip = sc->max_conn_per_ip, head = sc->head_timeout_ms / 1000,
              body = sc->body_timeout_ms / 1000, mem = (long long)(sc->body_memory >> 20), qmax = sc->queue_max;
    if (env_long("VISAGE_MAX_CONNECTIONS", 1, 100000, &conns) || env_long("VISAGE_MAX_CONN_PER_IP", 0, 100000, &per_ip) ||
        env_long("VISAGE_HEAD_TIMEOUT", 1, 3600, &head) || env_long("VISAGE_BODY_TIMEOUT", 1, 3600, &body) ||
        env_long("VISAGE_BODY_MEMORY_MB", 1, 1 << 20, &mem) || env_long("VISAGE_QUEUE_MAX", 0, INT64_MAX / 2, &qmax) ||
        env_rate("VISAGE_RATE_LIMIT", &sc->rate_key) || env_rate("VISAGE_RATE_LIMIT_IP", &sc->rate_ip) ||
        env_rate("VISAGE_AUTH_FAIL_LIMIT", &sc->rate_auth_fail))
        return -1;
    sc->max_connections = (unsigned)conns;
    sc->max_conn_per_ip = (unsigned)per_ip;
    sc->head_timeout_ms = (int)head * 1000;
    sc->body_timeout_ms = (int)body * 1000;
    sc->body_memory = (size_t)mem << 20;
    sc->queue_max = qmax;
    sc->cors_origins = getenv("VISAGE_CORS_ORIGINS");
    return 0;
}

/* Shared by serve and api: role decides whether workers run here. */
static int run_server(int argc, char **argv, cli_role role) {
    cli_system_opts o = {.role = role, .workers = role == CLI_ROLE_SERVE ? -1 : 0, .engine_pool = 2, .crawl_runner = 1};
    const char *cmd = role == CLI_ROLE_SERVE ? "serve" : "api";
    const char *listen = getenv("VISAGE_LISTEN");
    o.op = cmd;
    o.create_data = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) o.data_dir = argv[++i];
        else if (!strcmp(argv[i], "--listen") && i + 1 < argc) listen = argv[++i];
        else if (!strcmp(argv[i], "--models") && i + 1 < argc) o.models = argv[++i];
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc) o.workers = atoi(argv[++i]);
        else return cli_usage(cmd);
    }
    if (getenv("VISAGE_WORKERS") && *getenv("VISAGE_WORKERS")) o.workers = atoi(getenv("VISAGE_WORKERS"));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* every thread inherits this: sigwait below gets them */
    signal(SIGPIPE, SIG_IGN);
    cli_system s;
    if (cli_system_open(&o, &s) != 0) return 1;
    vs_server_cfg sc;
    vs_server_cfg_default(&sc);
    sc.listen = listen && *listen ? listen : "127.0.0.1:8080";
    if (server_cfg_from_env(&sc) != 0) {
        cli_system_close(&s);
        return 2;
    }
    vs_server *srv = NULL;
    vs_error err = {0};
    if (vs_server_start(&sc, &s.app, &srv, &err) != VS_OK) {
        cli_error(cmd, &err);
        cli_system_close(&s);
        return 1;
    }
    fprintf(stderr, "visage: %s: %s on http://%s (data %s, model %s, %s)\n", cmd,
            s.app.workers ? "API + web UI + workers" : "API + web UI", sc.listen, s.data_dir,
            vs_engine_model_id(s.app.engine),
            vs_tenant_count(s.app.catalog) ? "API keys required" : "open mode: no tenant yet, tenant 'default'");
    if (strstr(sc.listen, ":0")) fprintf(stderr, "visage: port %d\n", vs_server_port(srv));
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "visage: %s received, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    vs_server_stop(srv);
    cli_system_close(&s);
    return 0;
}

int cmd_serve(int argc, char **argv) { return run_server(argc, argv, CLI_ROLE_SERVE); }
int cmd_api(int argc, char **argv) { return run_server(argc, argv, CLI_ROLE_API); }
