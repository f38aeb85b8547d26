/* cli.h - what the sub-commands share: engine start-up, JSON of a face,
 * error lines. Each sub-command lives in its own cmd_*.c. */
#ifndef VS_CLI_H
#define VS_CLI_H

#include <jansson.h>
#include <stdio.h>

#include "vs_catalog.h"
#include "vs_engine.h"
#include "vs_workers.h"

/* Resolves the models folder: --models, $VISAGE_MODELS, ./models, then
 * <binary>/../models. Writes into buf and returns it. */
const char *cli_models_dir(const char *flag, char *buf, size_t cap);

/* Loads the engine or prints one error line; returns NULL on failure.
 * thorough = 1 lifts the detector's pass budget (every face down to 24 px).
 * embedder: a vs_embedder, or -1 for $VISAGE_EMBEDDER (dlib|faceres), else
 * the default. */
vs_engine *cli_engine_load(const char *models_flag, int thorough, int embedder);

/* {"bbox":[x,y,w,h],"det_score":s,"landmarks":[[x,y]...],"quality":q, ...} */
json_t *cli_face_json(const vs_face *f, int dim, int with_embedding);

/* Prints "visage: <what>: <msg>" on stderr, with <what> once: a message
 * that already starts with it (many vs_error messages name their op or
 * file) is printed as "visage: <msg>". */
void cli_error(const char *what, const vs_error *err);
/* The same for a message formatted here. */
void cli_errorf(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Resolves the data dir (flag, else $VISAGE_DATA, else ./visage-data) into
 * buf. A missing dir is made when create is set ("visage: created data dir
 * X" on stderr, once); otherwise it is refused naming the commands that
 * make one. op names the command in the messages. 0, or -1 after a line. */
int cli_data_dir(const char *op, const char *flag, int create, char *buf, size_t cap);
/* 1 when the data dir buf (from cli_data_dir's resolution) exists. */
int cli_data_dir_exists(const char *dir);

/* One command of the table in cli_help.c. */
typedef struct cli_opt {
    const char *flag, *help, *def;
} cli_opt;
typedef struct cli_cmd {
    const char *name, *summary;
    const char *usage;        /* "visage NAME ..." (lines after the first start with 7 spaces) */
    const cli_opt *opts;      /* every option it accepts, ended by {NULL} */
    const char *env;          /* environment it reads, or NULL */
    const char *example;
    int (*run)(int argc, char **argv);
    const char *notes;        /* what else to know (data dir, tenants), or NULL */
} cli_cmd;
/* The command called name, or NULL. */
const cli_cmd *cli_cmd_find(const char *name);
/* `visage help`: the commands and their summaries. */
void cli_help_overview(FILE *f);
/* `visage CMD --help`: usage, every option with its default, an example. */
void cli_help_cmd(FILE *f, const cli_cmd *c);
/* The usage of command name (NULL: of visage) and "see 'visage NAME
 * --help'" on stderr; returns 2, the exit status of a usage error. */
int cli_usage(const char *name);

/* Worker threads for a batch: $VISAGE_WORKERS, else the number of cores. */
int cli_worker_count(void);
/* $VISAGE_WORKER_NICE (0..19), else VS_WORKERS_NICE: ingest threads yield to requests. */
int cli_worker_nice(void);

/* 1 when t is a valid tenant id ([A-Za-z0-9_.-]{1,63}); else prints why. */
int cli_tenant_ok(const char *t);

/* Local mode: 1 when tenant is "default" (the open-mode tenant, always
 * there) or a tenant of catalog c (NULL: a data dir not made yet, no
 * tenants); else prints "visage: <op>: no tenant 'T' (tenants: a, b,
 * default)" and returns 0. */
int cli_tenant_known(const char *op, vs_catalog *c, const char *tenant);

/* mkdir -p; prints an error line and returns -1 on failure. */
int cli_mkdir(const char *dir);

/* One HTTP request to a visage server (--server): body may be NULL.
 * *resp gets the response body (vs_free), *status the HTTP status.
 * Returns 0 when a response arrived. */
int cli_http(const char *method, const char *url, const char *key, const char *ctype, const void *body, size_t len,
             char **resp, long *status);

/* POSTs req (a JSON object; it gets "image_b64" = the bytes of the file
 * image) to server + route with key, and prints the answer on 200, or
 * "visage: IMAGE: server answered N: …" on stderr. Takes req. Returns the
 * exit status: 0 on 200, else 1. */
int cli_post_image(const char *server, const char *route, const char *key, const char *image, json_t *req);

/* Parses option `name` of command `cmd` as a number in [lo, hi] (a whole
 * number when whole is set); prints why (and "see 'visage CMD --help'")
 * and returns -1 when it is not: the caller exits 2. */
int cli_num_arg(const char *cmd, const char *name, const char *v, double lo, double hi, int whole, double *out);

int cmd_detect(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_api(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_tenant(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_crawl(int argc, char **argv);
int cmd_erase(int argc, char **argv);
int cmd_reindex(int argc, char **argv);

#endif
