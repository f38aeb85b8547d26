/* cmd_search.c - `visage search IMAGE [--data DIR] [--tenant T] [--top-k K]`:
 * the best face of IMAGE against the tenant's index, printed as
 * {"query_faces":[…],"results":[{score, face_id, image_sha256, source_url,
 * site, bbox}]}, best first. With --server URL --key K the same question is
 * asked of a running server. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_system.h"

static int search_local(const char *image, const char *data, const char *models, const char *tenant, int top_k) {
    cli_system s;
    cli_system_opts o = {.op = "search", .data_dir = data, .tenant = tenant, .models = models, .engine_pool = 1};
    if (cli_system_open(&o, &s) != 0) return 1;
    vs_app *a = &s.app;
    vs_faces faces = {0};
    vs_error err = {0};
    int rc = 1;
    if (cli_system_analyze(&s, image, &faces) != 0) goto out;
    int best = vs_faces_best(&faces);
    json_t *qf = json_array(), *results = json_array();
    for (int i = 0; i < faces.n; i++) {
        const vs_face *f = &faces.faces[i];
        json_array_append_new(qf, json_pack("{s:[ffff],s:f,s:f,s:b}", "bbox", (double)f->det.x, (double)f->det.y,
                                            (double)f->det.w, (double)f->det.h, "det_score", (double)f->det.score,
                                            "quality", (double)f->quality.score, "best", i == best));
    }
    if (best >= 0) {
        vs_filter flt = {.tenant_id = tenant};
        vs_hit *hits = NULL;
        int n = 0;
        vs_err e = a->index->ops->search(a->index, a->pipeline.coll.faces, faces.faces[best].embedding, &flt, top_k, -1.0f, &hits, &n, &err);
        if (e == VS_ERR_NOT_FOUND) e = VS_OK, n = 0; /* nothing indexed yet */
        if (e != VS_OK) {
            cli_error("search", &err);
            json_decref(qf);
            json_decref(results);
            goto out;
        }
        float t = vs_engine_config(a->engine)->match_threshold;
        for (int i = 0; i < n; i++) {
            json_t *pl = json_loads(hits[i].payload_json, 0, NULL);
            json_t *o = json_pack("{s:f,s:s,s:b,s:s}", "score", (double)hits[i].score, "face_id", hits[i].id,
                                  "same_person", hits[i].score >= t, "band", vs_engine_band(a->engine, hits[i].score));
            static const char *copy[] = {"image_sha256", "source_url", "page_url", "site", "bbox", "quality_score"};
            for (size_t k = 0; pl && k < sizeof copy / sizeof copy[0]; k++)
                if (json_object_get(pl, copy[k])) json_object_set(o, copy[k], json_object_get(pl, copy[k]));
            json_array_append_new(results, o);
            json_decref(pl);
        }
        vs_hits_free(hits, n);
    } else {
        fprintf(stderr, "visage: %s: no face found\n", image);
    }
    json_t *out = json_pack("{s:o,s:o}", "query_faces", qf, "results", results);
    char *txt = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(out);
    if (txt) printf("%s\n", txt);
    free(txt);
    rc = best >= 0 ? 0 : 1;
out:
    vs_faces_free(&faces);
    cli_system_close(&s);
    return rc;
}

int cmd_search(int argc, char **argv) {
    const char *data = NULL, *tenant = "default", *server = NULL, *key = getenv("VISAGE_API_KEY"), *models = NULL, *image = NULL;
    int top_k = 10;
    double d;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--tenant") && i + 1 < argc) tenant = argv[++i];
        else if (!strcmp(argv[i], "--top-k") && i + 1 < argc) {
            if (cli_num_arg("search", "--top-k", argv[++i], 1, 1000, 1, &d) != 0) return 2;
            top_k = (int)d;
        }
        else if (!strcmp(argv[i], "--server") && i + 1 < argc) server = argv[++i];
        else if (!strcmp(argv[i], "--key") && i + 1 < argc) key = argv[++i];
        else if (!strcmp(argv[i], "--models") && i + 1 < argc) models = argv[++i];
        else if (!image && argv[i][0] != '-') image = argv[i];
        else image = NULL, argc = 0;
    }
    if (!image) return cli_usage("search");
    if (!cli_tenant_ok(tenant)) return 2;
    return server ? cli_post_image(server, "/api/v1/search", key, image, json_pack("{s:i}", "top_k", top_k))
                  : search_local(image, data, models, tenant, top_k);
}
