/* cmd_tenant.c - `visage tenant create NAME`, `visage tenant rotate-key NAME`
 * and `visage tenant list` [--data DIR]. A key is printed once (only its
 * hash is stored). These touch only the catalog, which SQLite shares between
 * processes, so they work while a server runs on the same data dir: a new
 * tenant or key is usable at once and a rotated-out key is refused at once. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vs_catalog.h"

static int usage(void) { return cli_usage("tenant"); }

static int print_tenant(void *ctx, const char *name, int64_t created_ms, int64_t n_keys) {
    (void)ctx;
    json_t *o = json_pack("{s:s,s:I,s:I}", "tenant", name, "created_at", (json_int_t)created_ms, "keys", (json_int_t)n_keys);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s) printf("%s\n", s);
    free(s);
    json_decref(o);
    return 0;
}

int cmd_tenant(int argc, char **argv) {
    const char *data = getenv("VISAGE_DATA"), *name = NULL;
    if (argc < 2) return usage();
    const char *verb = argv[1];
    int create = !strcmp(verb, "create"), rotate = !strcmp(verb, "rotate-key"), list = !strcmp(verb, "list");
    if (!create && !rotate && !list) return usage();
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!name && !list && argv[i][0] != '-') name = argv[i];
        else return usage();
    }
    if (!list && !name) return usage();
    if (create && !vs_tenant_new_name_ok(name)) { /* before the data dir is made */
        fprintf(stderr, "visage: tenant create: not a valid tenant name: use 1 to 63 of A-Z a-z 0-9 _ . - starting "
                        "with a letter or a digit\n");
        return 1;
    }
    const char *op = create ? "tenant create" : rotate ? "tenant rotate-key" : "tenant list";
    char dir[1100];
    if (cli_data_dir(op, data, create, dir, sizeof dir) != 0) return 1;
    vs_catalog *c = NULL;
    vs_error err = {0};
    char key[VS_API_KEY_MAX];
    vs_err rc = vs_catalog_open(dir, &c, &err);
    if (rc == VS_OK)
        rc = create ? vs_tenant_create(c, name, key, &err)
                    : rotate ? vs_tenant_rotate_key(c, name, key, &err) : vs_tenant_list(c, print_tenant, NULL, &err);
    if (c) vs_catalog_close(c);
    if (rc != VS_OK) {
        cli_error(op, &err);
        return 1;
    }
    if (list) return 0;
    printf("{\"tenant\":\"%s\",\"api_key\":\"%s\"}\n", name, key);
    fprintf(stderr, "visage: keep this key: it is shown once and stored only as a hash%s\n",
            rotate ? "; the tenant's old keys no longer work" : "");
    return 0;
}
