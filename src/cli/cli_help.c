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
    {"--user-agent UA", "the User-Agent header", "visage/0.1 (+https://github.com/visage/visage)"},
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

#define LOCAL_READ                                                                                                 \
    "needs an existing data dir (refused, not made, when missing); with a local data dir, --tenant must be "      \
    "default or a tenant of 'visage tenant list'"

static const cli_cmd k_cmds[] = {
    {.name = "detect", .summary = "faces, boxes, landmarks, quality (one JSON line per image)",
     .usage = "visage detect [--models DIR] [--crops DIR] [--thorough] IMAGE...", .opts = o_faces,
     .env = "$VISAGE_WORKERS threads (default: one per core); $VISAGE_EMBEDDER; $VISAGE_DETECT_PASSES",
     .example = "visage detect --crops faces/ photo.jpg", .run = cmd_detect},
    {.name = "embed", .summary = "as detect, plus the L2-normalised embedding of each face",
     .usage = "visage embed [--models DIR] [--crops DIR] [--thorough] IMAGE...", .opts = o_faces,
     .env = "$VISAGE_WORKERS threads (default: one per core); $VISAGE_EMBEDDER (dlib|faceres, default dlib)",
     .example = "visage embed photo.jpg", .run = cmd_embed},
    {.name = "compare", .summary = "similarity of the best face of each image, same_person verdict",
     .usage = "visage compare [--models DIR] IMAGE_A IMAGE_B", .opts = o_compare,
     .env = "$VISAGE_EMBEDDER (dlib|faceres, default dlib)", .example = "visage compare a.jpg b.jpg",
     .run = cmd_compare},
    {.name = "serve", .summary = "API + web UI + ingest workers in one process",
     .usage = "visage serve [--data DIR] [--listen HOST:PORT] [--workers N] [--models DIR]", .opts = o_serve,
     .env = "server limits: $VISAGE_MAX_CONNECTIONS, $VISAGE_RATE_LIMIT, ... (docs/deploy.md)",
     .example = "visage serve --data ./visage-data --listen 127.0.0.1:8080", .run = cmd_serve,
     .notes = "makes a missing data dir (saying so once)"},
    {.name = "api", .summary = "the API half of distributed mode: owns catalog and index",
     .usage = "visage api [--data DIR] [--listen HOST:PORT] [--workers N] [--models DIR]", .opts = o_api,
     .env = "$VISAGE_QUEUE, $VISAGE_STORE, $VISAGE_INDEX (default: embedded)",
     .example = "VISAGE_QUEUE=redis://127.0.0.1:6379/0 visage api --listen 0.0.0.0:8080", .run = cmd_api,
     .notes = "makes a missing data dir (saying so once)"},
    {.name = "worker", .summary = "the worker half of distributed mode: processes the shared queue",
     .usage = "visage worker [--workers N] [--models DIR]", .opts = o_worker,
     .env = "$VISAGE_QUEUE (required: redis://host:port/db), $VISAGE_STORE, $VISAGE_INDEX",
     .example = "VISAGE_QUEUE=redis://127.0.0.1:6379/0 VISAGE_STORE=s3://bucket visage worker", .run = cmd_worker,
     .notes = "has no data dir: everything it touches is shared"},
    {.name = "ingest", .summary = "import files and folders, return when they are processed",
     .usage = "visage ingest PATH... [--data DIR] [--tenant T] [--models DIR] | [--server URL --key K [--wait|--no-wait]]",
     .opts = o_ingest, .env = "$VISAGE_WORKERS threads (default: one per core)",
     .example = "visage ingest ~/Photos --tenant acme", .run = cmd_ingest,
     .notes = "makes a missing data dir (saying so once); with a local data dir, --tenant must be default or a "
              "tenant of 'visage tenant list', checked before anything is stored"},
    {.name = "search", .summary = "where else does the best face of IMAGE appear",
     .usage = "visage search IMAGE [--data DIR] [--tenant T] [--top-k K] [--models DIR] | [--server URL --key K]",
     .opts = o_search, .example = "visage search me.jpg --top-k 5", .run = cmd_search, .notes = LOCAL_READ},
    {.name = "crawl", .summary = "crawl a site's images into the index, return when they are processed",
     .usage = "visage crawl URL [--depth N] [--max-pages N] [--max-images N] [--delay S] [--timeout S] [--max-image-mb N]\n"
              "                 [--allow-hosts H1,H2] [--user-agent UA] [--require-face] [--data DIR] [--tenant T]\n"
              "                 [--models DIR] | [--server URL --key K]",
     .opts = o_crawl, .env = "$VISAGE_WORKERS threads (default: one per core)",
     .example = "visage crawl https://example.com/ --depth 2 --delay 0.5", .run = cmd_crawl, .notes = LOCAL_READ},
    {.name = "erase", .summary = "erase every image of the person in IMAGE (--dry-run: list them)",
     .usage = "visage erase IMAGE [--face-index N] [--threshold T] [--max-images N] [--dry-run] [--block [--note TEXT]]\n"
              "                   [--data DIR] [--tenant T] [--models DIR] | [--server URL --key K]",
     .opts = o_erase, .example = "visage erase me.jpg --dry-run", .run = cmd_erase, .notes = LOCAL_READ},
    {.name = "reindex", .summary = "re-embed every stored image with another model, then switch (server stopped)",
     .usage = "visage reindex [--data DIR] [--embedder dlib|faceres] [--drop-blocks] [--workers N] [--models DIR]",
     .opts = o_reindex, .example = "visage reindex --embedder faceres", .run = cmd_reindex,
     .notes = "needs an existing data dir (refused, not made, when missing)"},
    {.name = "tenant", .summary = "create a tenant / rotate its API key / list the tenants",
     .usage = "visage tenant create NAME [--data DIR]\n"
              "       visage tenant rotate-key NAME [--data DIR]\n"
              "       visage tenant list [--data DIR]",
     .opts = o_tenant, .example = "visage tenant create acme", .run = cmd_tenant,
     .notes = "create makes a missing data dir (saying so once) and prints the tenant's API key once; rotate-key "
              "prints a new key and revokes every old one at once; rotate-key and list need an existing data dir"},
    {.name = "help", .summary = "this overview, or the options of one command", .usage = "visage help [COMMAND]",
     .opts = o_none, .example = "visage help search", .run = cmd_help},
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
    if (c->notes) fprintf(f, "\nnotes: %s\n", c->notes);
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
