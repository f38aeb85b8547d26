/* main.c - the visage command line: dispatches to one file per sub-command
 * through the command table of cli_help.c, which also answers --help. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

/* -h and --help, the two spellings of a request for help. */
static int is_help(const char *a) { return !strcmp(a, "-h") || !strcmp(a, "--help"); }

/* `visage CMD ... --help` anywhere among the arguments is a request for
 * help, not a usage error: answered on stdout before the command parses. */
static int wants_help(int argc, char **argv) {
    for (int i = 2; i < argc; i++)
        if (is_help(argv[i])) return 1;
    return 0;
}

int main(int argc, char **argv) {
    /* A second guard for private data at rest: every module already creates
     * its files 0600 and folders 0700 by explicit mode; this covers anything
     * made by a library we do not control (and the data dir itself). */
    umask(077);
    if (argc < 2) return cli_usage(NULL);
    if (is_help(argv[1])) {
        cli_help_overview(stdout);
        return 0;
    }
    const cli_cmd *c = cli_cmd_find(argv[1]);
    if (!c) {
        fprintf(stderr, "visage: unknown command '%s'\n", argv[1]);
        return cli_usage(NULL);
    }
    if (wants_help(argc, argv)) {
        cli_help_cmd(stdout, c);
        return 0;
    }
    return c->run(argc - 1, argv + 1);
}
