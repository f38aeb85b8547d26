/* main.c - the visage command line: dispatches to one file per sub-command. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static int usage(void) {
    fprintf(stderr,
            "usage: visage COMMAND [ARGS]\n"
            "  detect IMAGE...           faces, boxes, landmarks, quality (one JSON line per image)\n"
            "  embed IMAGE...            as detect, plus the L2-normalised embedding of each face\n"
            "  compare IMAGE_A IMAGE_B   similarity of the best face of each, same_person verdict\n"
            "  serve [--data DIR] [--listen HOST:PORT]   API + web UI + workers in one process\n"
            "  api / worker                              the halves for distributed mode (VISAGE_QUEUE, VISAGE_STORE, VISAGE_INDEX)\n"
            "  ingest PATH... [--data DIR] [--tenant T]  import files/folders, wait until processed\n"
            "  search IMAGE [--data DIR] [--tenant T] [--top-k K]   where else does this face appear\n"
            "  crawl URL [--depth N] [--max-pages N] [--delay S] [--data DIR] [--tenant T]\n"
            "                            crawl a site's images into the index, wait until processed\n"
            "  erase IMAGE [--dry-run] [--block] [--threshold T] [--face-index N] [--data DIR] [--tenant T]\n"
            "                            erase every image of the person in IMAGE (--dry-run: list them)\n"
            "  reindex [--embedder dlib|faceres] [--drop-blocks] [--data DIR]\n"
            "                            re-embed every stored image with another model, then switch (server stopped)\n"
            "  tenant create NAME [--data DIR]           create a tenant, print its API key once\n"
            "  tenant rotate-key NAME | tenant list      a new key (old ones revoked at once); the tenants\n"
            "  (ingest, search, crawl and erase take --server URL --key K to use a running server)\n"
            "options: --models DIR (default: $VISAGE_MODELS, ./models, <binary>/../models)\n"
            "         --crops DIR (detect/embed: save each aligned face as JPEG)\n"
            "         --thorough (detect/embed: search every scale for faces down to 24 px; slower)\n");
    return 2;
}

int main(int argc, char **argv) {
    /* A second guard for private data at rest: every module already creates
     * its files 0600 and folders 0700 by explicit mode; this covers anything
     * made by a library we do not control (and the data dir itself). */
    umask(077);
    if (argc < 2) return usage();
    const char *cmd = argv[1];
    if (!strcmp(cmd, "detect")) return cmd_detect(argc - 1, argv + 1);
    if (!strcmp(cmd, "embed")) return cmd_embed(argc - 1, argv + 1);
    if (!strcmp(cmd, "compare")) return cmd_compare(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve")) return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "api")) return cmd_api(argc - 1, argv + 1);
    if (!strcmp(cmd, "worker")) return cmd_worker(argc - 1, argv + 1);
    if (!strcmp(cmd, "ingest")) return cmd_ingest(argc - 1, argv + 1);
    if (!strcmp(cmd, "search")) return cmd_search(argc - 1, argv + 1);
    if (!strcmp(cmd, "crawl")) return cmd_crawl(argc - 1, argv + 1);
    if (!strcmp(cmd, "erase")) return cmd_erase(argc - 1, argv + 1);
    if (!strcmp(cmd, "tenant")) return cmd_tenant(argc - 1, argv + 1);
    if (!strcmp(cmd, "reindex")) return cmd_reindex(argc - 1, argv + 1);
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage();
        return 0;
    }
    fprintf(stderr, "visage: unknown command '%s'\n", cmd);
    return usage();
}
