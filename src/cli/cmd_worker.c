/* cmd_worker.c - `visage worker`: one process of the distributed pool. It
 * takes images from the shared queue (VISAGE_QUEUE=redis://…), reads and
 * writes blobs in the shared store (VISAGE_STORE=s3://…), and hands every
 * finished image (points + record) to the index owner through face:results,
 * acknowledging the ingest message only once that hand-over is durable.
 * SIGTERM: stop taking work, finish the images in hand, exit. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_system.h"
#include "vs_redact.h"

int cmd_worker(int argc, char **argv) {
    cli_system_opts o = {.role = CLI_ROLE_WORKER, .op = "worker", .workers = -1};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--models") && i + 1 < argc) o.models = argv[++i];
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc) o.workers = atoi(argv[++i]);
        else return cli_usage("worker");
    }
    if (getenv("VISAGE_WORKERS") && *getenv("VISAGE_WORKERS")) o.workers = atoi(getenv("VISAGE_WORKERS"));
    if (o.workers == 0) o.workers = -1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    cli_system s;
    if (cli_system_open(&o, &s) != 0) return 1;
    char shown[512];
    fprintf(stderr, "visage: worker: consuming %s (model %s)\n", vs_url_redact(getenv("VISAGE_QUEUE"), shown, sizeof shown),
            vs_engine_model_id(s.app.engine));
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "visage: worker: %s received, finishing the images in hand\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    cli_system_close(&s);
    return 0;
}
