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
#include "vs_alloc.h"
#include "vs_base64.h"
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

static int erase_remote(const erase_args *a) {
    uint8_t *d = NULL;
    size_t n = 0;
    vs_error err = {0};
    if (vs_read_file(a->image, 32u << 20, &d, &n, &err) != VS_OK) {
        fprintf(stderr, "visage: %s\n", err.msg);
        return 1;
    }
    char *b64 = vs_base64_encode(d, n), url[1200], *resp = NULL;
    vs_free(d);
    json_t *req = json_pack("{s:s,s:i,s:b,s:b}", "image_b64", b64 ? b64 : "", "max_images", a->max_images, "dry_run",
                            a->dry_run, "block", a->block);
    vs_free(b64);
    if (req && a->face_index >= 0) json_object_set_new(req, "face_index", json_integer(a->face_index));
    if (req && a->threshold >= 0) json_object_set_new(req, "threshold", json_real(a->threshold));
    if (req && a->note) json_object_set_new(req, "note", json_string(a->note));
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    long status = 0;
    snprintf(url, sizeof url, "%s/api/v1/erase", a->server);
    int rc = body ? cli_http("POST", url, a->key, "application/json", body, strlen(body), &resp, &status) : -1;
    free(body);
    if (rc != 0) return 1;
    if (status == 200) printf("%s\n", resp);
    else fprintf(stderr, "visage: %s: server answered %ld: %s\n", a->image, status, resp);
    vs_free(resp);
    return status == 200 ? 0 : 1;
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
    cli_system_opts so = {.data_dir = a->data, .models = a->models, .engine_pool = 1};
    if (cli_system_open(&so, &s) != 0) return 1;
    vs_app *app = &s.app;
    vs_image img = {0};
    vs_faces faces = {0};
    vs_error err = {0};
    json_t *report = NULL;
    vs_engine_worker *w = vs_app_engine_acquire(app);
    vs_err e = vs_image_load(a->image, NULL, &img, &err);
    if (e == VS_OK) e = vs_engine_analyze(w, &img, VS_ANALYZE_EMBED, &faces, &err);
    vs_app_engine_release(app, w);
    int rc = 1, idx = -1;
    if (e != VS_OK) {
        if (strncmp(err.msg, a->image, strlen(a->image)) == 0) fprintf(stderr, "visage: %s\n", err.msg);
        else fprintf(stderr, "visage: %s: %s\n", a->image, err.msg);
    } else if ((idx = pick_face(a, &faces)) >= 0) {
        vs_erase_person_opts o = {.threshold = a->threshold >= 0 ? a->threshold : vs_engine_config(app->engine)->match_threshold,
                                  .max_images = a->max_images, .dry_run = a->dry_run, .suppress = 1, .block = a->block,
                                  .note = a->note};
        e = vs_erase_person(&app->pipeline, a->tenant, faces.faces[idx].embedding, &o, &report, &err);
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
    vs_image_free(&img);
    cli_system_close(&s);
    return rc;
}

/* 1 when s is a whole decimal number in [lo, hi], stored in *out. */
static int int_arg(const char *s, long lo, long hi, int *out) {
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
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
        else if (!strcmp(argv[i], "--face-index")) bad = !int_arg(argv[++i], 0, 1000, &a.face_index);
        else if (!strcmp(argv[i], "--max-images")) bad = !int_arg(argv[++i], 1, VS_ERASE_MAX_IMAGES, &a.max_images);
        else if (!strcmp(argv[i], "--threshold")) a.threshold = (float)atof(argv[++i]), bad = !(a.threshold >= 0.3f && a.threshold <= 1);
        else if (!a.image && argv[i][0] != '-') a.image = argv[i];
        else bad = 1;
    }
    if (bad || !a.image) {
        fprintf(stderr, "usage: visage erase IMAGE [--face-index N] [--threshold 0.3..1] [--max-images N] [--dry-run]\n"
                        "                    [--block [--note TEXT]] [--data DIR] [--tenant T] | [--server URL --key K]\n");
        return 2;
    }
    if (!cli_tenant_ok(a.tenant)) return 2;
    return a.server ? erase_remote(&a) : erase_local(&a);
}
