/* cmd_compare.c - `visage compare IMAGE_A IMAGE_B`: cosine similarity of the
 * best face of each photo (by detector confidence and quality, not size) and
 * whether it clears the calibrated same-person threshold. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "vs_similarity.h"

/* Loads path and embeds its best face into emb. Returns 0 on success. */
static int best_face(vs_engine_worker *w, const char *path, float *emb, int dim) {
    vs_faces faces = {0};
    vs_error err = {0};
    vs_err rc = vs_engine_analyze_file(w, path, VS_ANALYZE_EMBED, &faces, NULL, NULL, &err);
    int ok = 0;
    if (rc != VS_OK) {
        cli_error(path, &err);
    } else {
        int b = vs_faces_best(&faces);
        if (b < 0) fprintf(stderr, "visage: %s: no face found\n", path);
        else {
            memcpy(emb, faces.faces[b].embedding, sizeof(float) * (size_t)dim);
            ok = 1;
        }
    }
    vs_faces_free(&faces);
    return ok ? 0 : 1;
}

int cmd_compare(int argc, char **argv) {
    const char *models = NULL, *files[2];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--models") && i + 1 < argc) models = argv[++i];
        else if (n < 2) files[n++] = argv[i];
        else n = 3;
    }
    if (n != 2) return cli_usage("compare");
    vs_engine *e = cli_engine_load(models, 0, -1);
    if (!e) return 1;
    vs_engine_worker *w = NULL;
    vs_error err = {0};
    int rc = 1, dim = vs_engine_embedding_dim(e);
    float a[2048], b[2048];
    if (dim > 2048) fprintf(stderr, "visage: compare: embedding dimension %d too large\n", dim);
    else if (vs_engine_worker_new(e, &w, &err) != VS_OK) cli_error("engine", &err);
    else if (best_face(w, files[0], a, dim) == 0 && best_face(w, files[1], b, dim) == 0) {
        float sim = vs_cosine(a, b, dim), t = vs_engine_config(e)->match_threshold;
        printf("{\"similarity\":%.6f,\"same_person\":%s,\"band\":\"%s\",\"threshold\":%.4f,\"possible_threshold\":%.4f,"
               "\"model\":\"%s\"}\n",
               sim, sim >= t ? "true" : "false", vs_engine_band(e, sim), t, vs_engine_embedder(e)->possible_threshold,
               vs_engine_model_id(e));
        rc = 0;
    }
    vs_engine_worker_free(w);
    vs_engine_free(e);
    return rc;
}
