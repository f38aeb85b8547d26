/* cmd_tenant.c - `visage tenant create NAME [--data DIR]`: a tenant and its
 * API key, printed once (only its hash is stored). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vs_catalog.h"

int cmd_tenant(int argc, char **argv) {
    const char *data = getenv("VISAGE_DATA"), *name = NULL;
    if (argc < 2 || strcmp(argv[1], "create") != 0) {
        fprintf(stderr, "usage: visage tenant create NAME [--data DIR]\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!name) name = argv[i];
        else return fprintf(stderr, "usage: visage tenant create NAME [--data DIR]\n"), 2;
    }
    if (!name) return fprintf(stderr, "usage: visage tenant create NAME [--data DIR]\n"), 2;
    if (!data || !*data) data = "./visage-data";
    char mk[1100];
    snprintf(mk, sizeof mk, "%s", data);
    if (cli_mkdir(mk) != 0) return 1;
    vs_catalog *c = NULL;
    vs_error err = {0};
    char key[VS_API_KEY_MAX];
    if (vs_catalog_open(data, &c, &err) != VS_OK || vs_tenant_create(c, name, key, &err) != VS_OK) {
        cli_error("tenant create", &err);
        if (c) vs_catalog_close(c);
        return 1;
    }
    vs_catalog_close(c);
    printf("{\"tenant\":\"%s\",\"api_key\":\"%s\"}\n", name, key);
    fprintf(stderr, "visage: keep this key: it is shown once and stored only as a hash\n");
    return 0;
}
