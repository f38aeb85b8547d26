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

/* Shared by serve and api: role decides whether workers run here. */
static int run_server(int argc, char **argv, cli_role role) {
    cli_system_opts o = {.role = role, .workers = role == CLI_ROLE_SERVE ? -1 : 0, .engine_pool = 2, .crawl_runner = 1};
    const char *cmd = role == CLI_ROLE_SERVE ? "serve" : "api";
    const char *listen = getenv("VISAGE_LISTEN");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) o.data_dir = argv[++i];
        else if (!strcmp(argv[i], "--listen") && i + 1 < argc) listen = argv[++i];
        else if (!strcmp(argv[i], "--models") && i + 1 < argc) o.models = argv[++i];
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc) o.workers = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: visage %s [--data DIR] [--listen HOST:PORT] [--workers N] [--models DIR]\n", cmd);
            return 2;
        }
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
    vs_server_cfg sc = {.listen = listen && *listen ? listen : "127.0.0.1:8080", .threads = 4};
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
