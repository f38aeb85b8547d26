/* cli_system.h - opening the embedded system (data dir, backends, engine,
 * pipeline, optional workers) the same way for serve, ingest and search. */
#ifndef VS_CLI_SYSTEM_H
#define VS_CLI_SYSTEM_H

#include "vs_app.h"

/* Which process this is (DESIGN.md topologies). */
typedef enum cli_role {
    CLI_ROLE_SERVE = 0,  /* everything in one process */
    CLI_ROLE_API,        /* HTTP + catalog + index owner; applies workers' results */
    CLI_ROLE_WORKER,     /* consumes the ingest queue; hands results to the API */
    CLI_ROLE_LOCAL       /* a command-line tool on a data dir (ingest, search) */
} cli_role;

typedef struct cli_system {
    char data_dir[1024];
    int lock_fd;
    vs_app app;
    vs_queue *results;        /* face:results, when workers and index owner are apart */
} cli_system;

typedef struct cli_system_opts {
    cli_role role;
    const char *op;           /* the command, for error lines ("search") */
    const char *data_dir;     /* --data, else $VISAGE_DATA, else ./visage-data */
    int create_data;          /* 1: make a missing data dir (serve, api, ingest); 0: refuse it */
    const char *tenant;       /* local mode: must be "default" or in the catalog (NULL: no check) */
    const char *models;       /* --models */
    int workers;              /* 0 = none, <0 = one per core */
    int engine_pool;          /* engine workers for queries (search by image) */
    int crawl_runner;         /* 1: run queued crawl jobs in the background */
    const char *embedder;     /* for a data dir with nothing indexed: NULL = $VISAGE_EMBEDDER,
                               * "" = the default (reindex names its own target) */
} cli_system_opts;

/* Opens everything under the data dir (the dir itself made only when
 * create_data says so; a tenant not in its catalog refused before anything
 * is written for it); takes an
 * exclusive lock on it so two processes never write the same embedded index.
 * Prints one error line and returns -1 on failure. */
int cli_system_open(const cli_system_opts *o, cli_system *s);
void cli_system_close(cli_system *s);

/* Detects and embeds the faces of the image file with one of the system's
 * engine workers; prints one line naming the file and returns -1 when it
 * cannot be read or analysed. */
int cli_system_analyze(cli_system *s, const char *image, vs_faces *faces);

/* Waits until every queued message is processed (queue empty, nothing in
 * flight), calling progress(ctx) about 4 times a second. */
void cli_system_drain(cli_system *s, void (*progress)(void *ctx, const vs_queue_stats *qs), void *ctx);

#endif
