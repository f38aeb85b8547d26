/* cli_help.c - the one table of commands: name, summary, usage, every option
 * with its default, environment, an example and the function that runs it.
 * main.c dispatches from it, `visage help` and `visage CMD --help` print from
 * it, and each command's usage error quotes its usage line from it, so the
 * three cannot drift apart. docs/cli.md is this text. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* Options several commands share, with the defaults cli_data_dir,
 * cli_models_dir and the --server clients apply. */
#define OPT_DATA {"--data DIR", "the data dir", "$VISAGE_DATA, else ./visage-data"}
#define OPT_TENANT {"--tenant T", "the tenant (local mode: one in 'visage tenant list', or default)", "default"}
#define OPT_SERVER {"--server URL", "send the request to a running server instead of opening the data dir", "none: local"}
#define OPT_KEY {"--key K", "the API key for --server", "$VISAGE_API_KEY"}
#define OPT_MODELS {"--models DIR", "the models folder", "$VISAGE_MODELS, else ./models, else <binary>/../models"}
#define OPT_END {NULL, NULL, NULL}

static const cli_opt o_faces[] = {
    {"--crops DIR", "also save each aligned face as DIR/<file>_face_<i>.jpg", "none"},
    {"--thorough", "search every scale for faces down to 24 px (slower)", "off: the detector's pass budget"},
    OPT_MODELS,
    OPT_END};
static const cli_opt o_compare[] = {OPT_MODELS, OPT_END};
static const cli_opt o_serve[] = {
    OPT_DATA,
    {"--listen HOST:PORT", "address of the API and web UI", "$VISAGE_LISTEN, else 127.0.0.1:8080"},
    {"--workers N", "ingest worker threads ($VISAGE_WORKERS, when set, wins)", "one per core"},
    OPT_MODELS,
    OPT_END};
static const cli_opt o_api[] = {
    OPT_DATA,
    {"--listen HOST:PORT", "address of the API and web UI", "$VISAGE_LISTEN, else 127.0.0.1:8080"},
    {"--workers N", "ingest worker threads in this process ($VISAGE_WORKERS, when set, wins)", "0: none"},
    OPT_MODELS,
    OPT_END};
static const cli_opt o_worker[] = {
    {"--workers N", "worker threads ($VISAGE_WORKERS, when set, wins)", "one per core"},
    OPT_MODELS,
    OPT_END};
static const cli_opt o_ingest[] = {
    OPT_DATA, OPT_TENANT, OPT_SERVER, OPT_KEY,
    {"--wait", "with --server: wait until the server has processed every image", "on"},
    {"--no-wait", "with --server: return after the upload, printing the sha256 of each accepted image", "off"},
    OPT_MODELS,
    OPT_END};
static const cli_opt o_search[] = {
    OPT_DATA, OPT_TENANT,
    {"--top-k K", "number of results, 1..1000", "10"},
    OPT_SERVER, OPT_KEY, OPT_MODELS,
    OPT_END};
static const cli_opt o_crawl[] = {
    OPT_DATA, OPT_TENANT,
    {"--depth N", "links to follow from the seed page, 0..100", "1"},
    {"--max-pages N", "pages to fetch at most", "100"},
    {"--max-images N", "images to save at most", "10000"},
    {"--delay SECONDS", "pause between two requests to the site, 0..3600", "1"},
    {"--timeout SECONDS", "per request, 0.1..3600", "15"},
    {"--max-image-mb N", "larger images are skipped, 1..1024", "16"},
    {"--allow-hosts H1,H2", "other hosts whose pages and images may be fetched", "the seed's host only"},
    {"--user-agent UA", "the User-Agent header", "visage's own"},
    {"--require-face", "keep only images with a face", "off"},
    {"--server URL", "start the crawl on a running server (needs --key)", "none: local"},
    {"--key K", "the API key for --server", "none"},
    OPT_MODELS,
    OPT_END};
static const cli_opt o_erase[] = {
    {"--face-index N", "which face of IMAGE names the person (query_faces order of 'visage search')",
     "the only face; required when IMAGE shows several"},
    {"--threshold T", "similarity at which an image shows the person, 0.3..1", "the model's same-person threshold"},
    {"--max-images N", "stop after N images, 1..100000", "1000"},
    {"--dry-run", "list the images, erase nothing", "off"},
    {"--block", "also erase future images of the person on arrival", "off"},
    {"--note TEXT", "note recorded with the block", "none"},
    OPT_DATA, OPT_TENANT, OPT_SERVER, OPT_KEY, OPT_MODELS,
    OPT_END};
static const cli_opt o_reindex[] = {
    OPT_DATA,
    {"--embedder NAME", "the target model: dlib or faceres", "$VISAGE_EMBEDDER, else dlib"},
    {"--drop-blocks", "drop erasure blocks that cannot be carried to the new model", "off: refuse"},
    {"--workers N", "threads", "$VISAGE_WORKERS, else one per core"},
    OPT_MODELS,
    OPT_END};
static const cli_opt o_tenant[] = {OPT_DATA, OPT_END};
static const cli_opt o_none[] = {OPT_END};

static int cmd_help(int argc, char **argv);

static const cli_cmd k_cmds[] = {
    {"detect", "faces, boxes, landmarks, quality (one JSON line per image)",
     "visage detect [--models DIR] [--crops DIR] [--thorough] IMAGE...", o_faces,
     "$VISAGE_WORKERS threads (default: one per core); $VISAGE_EMBEDDER; $VISAGE_DETECT_PASSES",
     "visage detect --crops faces/ photo.jpg", cmd_detect},
    {"embed", "as detect, plus the L2-normalised embedding of each face",
     "visage embed [--models DIR] [--crops DIR] [--thorough] IMAGE...", o_faces,
     "$VISAGE_WORKERS threads (default: one per core); $VISAGE_EMBEDDER (dlib|faceres, default dlib)",
     "visage embed photo.jpg", cmd_embed},
    {"compare", "similarity of the best face of each image, same_person verdict",
     "visage compare [--models DIR] IMAGE_A IMAGE_B", o_compare, "$VISAGE_EMBEDDER (dlib|faceres, default dlib)",
     "visage compare a.jpg b.jpg", cmd_compare},
    {"serve", "API + web UI + ingest workers in one process (creates the data dir)",
     "visage serve [--data DIR] [--listen HOST:PORT] [--workers N] [--models DIR]", o_serve,
     "server limits: $VISAGE_MAX_CONNECTIONS, $VISAGE_RATE_LIMIT, ... (docs/deploy.md)",
     "visage serve --data ./visage-data --listen 127.0.0.1:8080", cmd_serve},
    {"api", "the API half of distributed mode: owns catalog and index (creates the data dir)",
     "visage api [--data DIR] [--listen HOST:PORT] [--workers N] [--models DIR]", o_api,
     "$VISAGE_QUEUE, $VISAGE_STORE, $VISAGE_INDEX (default: embedded)",
     "VISAGE_QUEUE=redis://127.0.0.1:6379/0 visage api --listen 0.0.0.0:8080", cmd_api},
    {"worker", "the worker half of distributed mode: processes the shared queue",
     "visage worker [--workers N] [--models DIR]", o_worker,
     "$VISAGE_QUEUE (required: redis://host:port/db), $VISAGE_STORE, $VISAGE_INDEX",
     "VISAGE_QUEUE=redis://127.0.0.1:6379/0 VISAGE_STORE=s3://bucket visage worker", cmd_worker},
    {"ingest", "import files and folders, return when they are processed (creates the data dir)",
     "visage ingest PATH... [--data DIR] [--tenant T] [--models DIR] | [--server URL --key K [--wait|--no-wait]]",
     o_ingest, "$VISAGE_WORKERS threads (default: one per core)", "visage ingest ~/Photos --tenant acme", cmd_ingest},
    {"search", "where else does the best face of IMAGE appear",
     "visage search IMAGE [--data DIR] [--tenant T] [--top-k K] [--models DIR] | [--server URL --key K]", o_search,
     NULL, "visage search me.jpg --top-k 5", cmd_search},
    {"crawl", "crawl a site's images into the index, return when they are processed",
     "visage crawl URL [--depth N] [--max-pages N] [--max-images N] [--delay S] [--timeout S] [--max-image-mb N]\n"
     "                 [--allow-hosts H1,H2] [--user-agent UA] [--require-face] [--data DIR] [--tenant T]\n"
     "                 [--models DIR] | [--server URL --key K]",
     o_crawl, "$VISAGE_WORKERS threads (default: one per core)", "visage crawl https://example.com/ --depth 2 --delay 0.5",
     cmd_crawl},
    {"erase", "erase every image of the person in IMAGE (--dry-run: list them)",
     "visage erase IMAGE [--face-index N] [--threshold T] [--max-images N] [--dry-run] [--block [--note TEXT]]\n"
     "                   [--data DIR] [--tenant T] [--models DIR] | [--server URL --key K]",
     o_erase, NULL, "visage erase me.jpg --dry-run", cmd_erase},
    {"reindex", "re-embed every stored image with another model, then switch (server stopped)",
     "visage reindex [--data DIR] [--embedder dlib|faceres] [--drop-blocks] [--workers N] [--models DIR]", o_reindex,
     NULL, "visage reindex --embedder faceres", cmd_reindex},
    {"tenant", "create a tenant / rotate its API key / list the tenants",
     "visage tenant create NAME [--data DIR]\n"
     "       visage tenant rotate-key NAME [--data DIR]\n"
     "       visage tenant list [--data DIR]",
     o_tenant,
     "create makes the data dir if needed and prints the tenant's API key once; rotate-key prints a new key and "
     "revokes every old one at once",
     "visage tenant create acme", cmd_tenant},
    {"help", "this overview, or the options of one command", "visage help [COMMAND]", o_none, NULL,
     "visage help search", cmd_help},
};
#define N_CMDS (sizeof k_cmds / sizeof k_cmds[0])

const cli_cmd *cli_cmd_find(const char *name) {
    for (size_t i = 0; name && i < N_CMDS; i++)
        if (!strcmp(k_cmds[i].name, name)) return &k_cmds[i];
    return NULL;
}

/* The overview: one line per command, from the table. */
void cli_help_overview(FILE *f) {
    fprintf(f, "usage: visage COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < N_CMDS; i++) fprintf(f, "  %-9s %s\n", k_cmds[i].name, k_cmds[i].summary);
    fprintf(f, "\nRun 'visage help COMMAND' or 'visage COMMAND --help' for its options and their defaults.\n"
               "search, erase, crawl, reindex and tenant rotate-key/list need an existing data dir;\n"
               "serve, api, ingest and tenant create make one.\n");
}

/* Every option of c with its default, the environment and an example. */
void cli_help_cmd(FILE *f, const cli_cmd *c) {
    fprintf(f, "usage: %s\n\n%s\n", c->usage, c->summary);
    if (c->opts[0].flag) fprintf(f, "\noptions:\n");
    for (const cli_opt *o = c->opts; o->flag; o++)
        fprintf(f, "  %-20s %s (default: %s)\n", o->flag, o->help, o->def);
    if (c->env) fprintf(f, "\nenvironment: %s\n", c->env);
    fprintf(f, "\nexample:\n  %s\n", c->example);
}

int cli_usage(const char *name) {
    const cli_cmd *c = cli_cmd_find(name);
    if (!c) {
        fprintf(stderr, "usage: visage COMMAND [ARGS]\ncommands:");
        for (size_t i = 0; i < N_CMDS; i++) fprintf(stderr, " %s", k_cmds[i].name);
        fprintf(stderr, "\nsee 'visage help'\n");
        return 2;
    }
    fprintf(stderr, "usage: %s\nsee 'visage %s --help'\n", c->usage, c->name);
    return 2;
}

/* `visage help [COMMAND]`: on stdout, exit 0; an unknown COMMAND is a usage
 * error. */
static int cmd_help(int argc, char **argv) {
    if (argc < 2) {
        cli_help_overview(stdout);
        return 0;
    }
    const cli_cmd *c = cli_cmd_find(argv[1]);
    if (!c || argc > 2) {
        if (!c) fprintf(stderr, "visage: help: unknown command '%s'\n", argv[1]);
        return cli_usage(c ? "help" : NULL);
    }
    cli_help_cmd(stdout, c);
    return 0;
}
