/* cmd_reindex.c - `visage reindex [--data DIR] [--embedder NAME]
 * [--drop-blocks]`: moves a data dir to another embedder (vs_reindex.h),
 * offline: the embedded index has one owner, so the server is stopped.
 * Progress on stderr, the report as one JSON line on stdout. SIGINT or
 * SIGTERM stops at the next image; running the command again continues,
 * as it does after a crash or kill -9. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_system.h"
#include "vs_hash.h"
#include "vs_reindex.h"

static atomic_int g_stop;

static void on_signal(int sig) {
    (void)sig;
    atomic_store(&g_stop, 1);
}

typedef struct progress {
    int tty;
    int64_t last_ms;
    const char *last_phase;
} progress;

/* A line per phase, then at most one a second (a live line on a terminal). */
static void show(void *ctx, const char *phase, int64_t done, int64_t total) {
    progress *p = ctx;
    int64_t now = vs_now_ms();
    int new_phase = !p->last_phase || strcmp(p->last_phase, phase) != 0;
    if (!new_phase && !p->tty && now - p->last_ms < 1000 && done != total) return;
    p->last_ms = now;
    p->last_phase = phase;
    if (total >= 0) fprintf(stderr, "%svisage: reindex: %s %lld/%lld%s", p->tty ? "\r" : "", phase, (long long)done,
                            (long long)total, p->tty ? "   " : "\n");
    else fprintf(stderr, "%svisage: reindex: %s %lld%s", p->tty ? "\r" : "", phase, (long long)done, p->tty ? "   " : "\n");
}

static int usage(void) { return cli_usage("reindex"); }

static int run(const char *data, const char *models, const char *embedder, int drop_blocks, int threads) {
    int target = vs_embedder_find(embedder);
    if (target < 0) {
        fprintf(stderr, "visage: reindex: embedder \"%s\" is not one of dlib, faceres\n", embedder);
        return 2;
    }
    cli_system s;
    cli_system_opts so = {.role = CLI_ROLE_LOCAL, .op = "reindex", .data_dir = data, .models = models, .embedder = ""};
    if (cli_system_open(&so, &s) != 0) return 1;
    vs_engine *e = cli_engine_load(models, 0, target);
    int rc = 1;
    if (e) {
        progress pr = {isatty(2), 0, NULL};
        vs_reindex_opts o = {.engine = e, .drop_blocks = drop_blocks, .threads = threads, .progress = show, .ctx = &pr,
                             .stop = &g_stop};
        vs_reindex_report rep;
        vs_error err = {0};
        fprintf(stderr, "visage: reindex: %s, from %s to %s\n", s.data_dir, vs_engine_model_id(s.app.engine),
                vs_engine_model_id(e));
        vs_err r = vs_reindex_run(&s.app.pipeline, &o, &rep, &err);
        if (pr.tty && pr.last_phase) fprintf(stderr, "\n");
        if (r == VS_OK && !rep.switched) fprintf(stderr, "visage: reindex: the data is on %s already; nothing to do\n", rep.to_model);
        if (r == VS_OK && rep.blocks_dropped)
            fprintf(stderr, "visage: reindex: dropped %lld erasure block(s), each recorded in its tenant's erasure log: "
                            "block those people again with the new model\n", (long long)rep.blocks_dropped);
        if (r == VS_OK && rep.samples_lost)
            fprintf(stderr, "visage: reindex: %lld identity sample(s) could not be embedded again (their source image "
                            "is not stored)\n", (long long)rep.samples_lost);
        if (r != VS_OK) cli_error(r == VS_ERR_CANCELLED ? "reindex stopped" : "reindex", &err);
        if (r != VS_OK && r != VS_ERR_INVALID_ARG)
            fprintf(stderr, "visage: reindex: searches still use %s; run the command again to continue\n",
                    rep.from_model);
        json_t *j = vs_reindex_report_json(&rep);
        char *txt = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(4)) : NULL;
        if (txt && r == VS_OK) printf("%s\n", txt);
        free(txt);
        json_decref(j);
        rc = r == VS_OK ? 0 : 1;
    }
    vs_engine_free(e);
    cli_system_close(&s);
    return rc;
}

int cmd_reindex(int argc, char **argv) {
    const char *data = NULL, *models = NULL, *embedder = getenv("VISAGE_EMBEDDER");
    int drop_blocks = 0, threads = cli_worker_count();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--embedder") && i + 1 < argc) embedder = argv[++i];
        else if (!strcmp(argv[i], "--models") && i + 1 < argc) models = argv[++i];
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--drop-blocks")) drop_blocks = 1;
        else return usage();
    }
    if (!embedder || !*embedder) embedder = vs_embedder_get(VS_EMBEDDER_DEFAULT)->name;
    if (threads < 1) return usage();
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return run(data, models, embedder, drop_blocks, threads);
}
