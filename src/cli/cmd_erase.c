/* cmd_erase.c - `visage erase IMAGE [--face-index N] [--threshold T]
 * [--max-images N] [--dry-run] [--block [--note TEXT]] [--data DIR]
 * [--tenant T]`: erases every image of the tenant showing the person in
 * IMAGE (or, --dry-run, lists them) and prints the report of
 * POST /api/v1/erase. --server URL --key K asks a running server. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_system.h"
#include "vs_erase.h"

typedef struct erase_args {
    const char *image, *data, *tenant, *server, *key, *models, *note;
    int face_index, max_images, dry_run, block;
    float threshold; /* < 0: the server's same-person threshold */
} erase_args;

static void print_json(json_t *o) {
    char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (txt) printf("%s\n", txt);
    free(txt);
}

/* The same request of a running server: POST /api/v1/erase. */
static int erase_remote(const erase_args *a) {
    json_t *req = json_pack("{s:i,s:b,s:b}", "max_images", a->max_images, "dry_run", a->dry_run, "block", a->block);
    if (req && a->face_index >= 0) json_object_set_new(req, "face_index", json_integer(a->face_index));
    if (req && a->threshold >= 0) json_object_set_new(req, "threshold", json_real(a->threshold));
    if (req && a->note) json_object_set_new(req, "note", json_string(a->note));
    return cli_post_image(a->server, "/api/v1/erase", a->key, a->image, req);
}

/* The face of the image that names the person, as the API picks it: the
 * only one, or --face-index. -1 after printing why. */
static int pick_face(const erase_args *a, const vs_faces *faces) {
    if (faces->n == 0) {
        fprintf(stderr, "visage: %s: no face found\n", a->image);
        return -1;
    }
    if (a->face_index >= faces->n) {
        fprintf(stderr, "visage: %s: --face-index must be 0..%d\n", a->image, faces->n - 1);
        return -1;
    }
    if (a->face_index < 0 && faces->n > 1) {
        fprintf(stderr, "visage: %s: the image shows %d faces: say whose images to erase with --face-index 0..%d "
                        "(the order of query_faces in `visage search`)\n", a->image, faces->n, faces->n - 1);
        return -1;
    }
    return a->face_index < 0 ? 0 : a->face_index;
}

static int erase_local(const erase_args *a) {
    cli_system s;
    cli_system_opts so = {.op = "erase", .data_dir = a->data, .tenant = a->tenant, .models = a->models, .engine_pool = 1};
    if (cli_system_open(&so, &s) != 0) return 1;
    vs_app *app = &s.app;
    vs_faces faces = {0};
    vs_error err = {0};
    json_t *report = NULL;
    int rc = 1, idx = -1;
    if (cli_system_analyze(&s, a->image, &faces) == 0 && (idx = pick_face(a, &faces)) >= 0) {
        vs_erase_person_opts o = {.threshold = a->threshold >= 0 ? a->threshold : vs_engine_config(app->engine)->match_threshold,
                                  .max_images = a->max_images, .dry_run = a->dry_run, .suppress = 1, .block = a->block,
                                  .note = a->note};
        vs_err e = vs_erase_person(&app->pipeline, a->tenant, faces.faces[idx].embedding, &o, &report, &err);
        if (e != VS_OK) {
            cli_error("erase", &err);
        } else {
            json_object_set_new(report, "query_face", cli_face_json(&faces.faces[idx], vs_engine_embedding_dim(app->engine), 0));
            print_json(report);
            rc = 0;
        }
    }
    json_decref(report);
    vs_faces_free(&faces);
    cli_system_close(&s);
    return rc;
}

/* One of erase's number options into a; -1 (after saying why) when bad. */
static int number_option(erase_args *a, const char *name, const char *v) {
    double d;
    if (!strcmp(name, "--threshold")) {
        if (cli_num_arg("erase", name, v, 0.3, 1, 0, &d) != 0) return -1;
        a->threshold = (float)d;
    } else if (!strcmp(name, "--face-index")) {
        if (cli_num_arg("erase", name, v, 0, 1000, 1, &d) != 0) return -1;
        a->face_index = (int)d;
    } else {
        if (cli_num_arg("erase", name, v, 1, VS_ERASE_MAX_IMAGES, 1, &d) != 0) return -1;
        a->max_images = (int)d;
    }
    return 0;
}

int cmd_erase(int argc, char **argv) {
    erase_args a = {.tenant = "default", .key = getenv("VISAGE_API_KEY"), .face_index = -1, .max_images = 1000,
                    .threshold = -1};
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--dry-run")) a.dry_run = 1;
        else if (!strcmp(argv[i], "--block")) a.block = 1;
        else if (!v && argv[i][0] == '-') bad = 1;
        else if (!strcmp(argv[i], "--data")) a.data = argv[++i];
        else if (!strcmp(argv[i], "--tenant")) a.tenant = argv[++i];
        else if (!strcmp(argv[i], "--server")) a.server = argv[++i];
        else if (!strcmp(argv[i], "--key")) a.key = argv[++i];
        else if (!strcmp(argv[i], "--models")) a.models = argv[++i];
        else if (!strcmp(argv[i], "--note")) a.note = argv[++i];
        else if (!strcmp(argv[i], "--face-index") || !strcmp(argv[i], "--max-images") || !strcmp(argv[i], "--threshold")) {
            bad = number_option(&a, argv[i], v) != 0;
            i++;
        }
        else if (!a.image && argv[i][0] != '-') a.image = argv[i];
        else bad = 1;
    }
    if (bad || !a.image) return cli_usage("erase");
    if (!cli_tenant_ok(a.tenant)) return 2;
    return a.server ? erase_remote(&a) : erase_local(&a);
}
