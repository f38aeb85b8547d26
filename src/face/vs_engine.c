/* vs_engine.c - the face engine: per image, detect (vs_detect), then per face
 * align to the ArcFace template at 224 px, score quality, hash the crop and
 * run faceres for the 1024-d descriptor at its internal node
 * global_pooling/Mean (the graph's declared outputs are age/gender heads).
 * faceres takes RGB 0..255 unnormalised; the descriptor is L2-normalised here. */
#include "vs_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_align.h"
#include "vs_alloc.h"
#include "vs_nn.h"
#include "vs_phash.h"
#include "vs_similarity.h"

struct vs_engine {
    vs_engine_cfg cfg;
    char models_dir[1024];
    vs_model *detector;
    vs_model *embedder;
    int dim;
};

struct vs_engine_worker {
    const vs_engine *e;
    vs_runtime *det_rt;
    vs_runtime *emb_rt;
};

void vs_engine_cfg_default(vs_engine_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    const char *env = getenv("VISAGE_MODELS");
    cfg->models_dir = env && *env ? env : "models";
    vs_detect_cfg_default(&cfg->detect);
    vs_quality_cfg_default(&cfg->quality);
    cfg->match_threshold = VS_DEFAULT_MATCH_THRESHOLD;
}

/* Loads one model and checks its input and output shapes are the expected. */
static vs_err load_model(const char *dir, const char *name, const vs_model_opts *o, int in_side, vs_model **m,
                         vs_error *err) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    vs_err rc = vs_model_load(path, o, m, err);
    if (rc != VS_OK) return rc;
    vs_shape s = vs_model_input_shape(*m);
    if (s.ndim != 4 || s.dims[1] != (size_t)in_side || s.dims[2] != (size_t)in_side || s.dims[3] != 3) {
        vs_model_free(*m);
        *m = NULL;
        return vs_fail(err, VS_ERR_MODEL, "%s: input is not [1,%d,%d,3]", path, in_side, in_side);
    }
    return VS_OK;
}

vs_err vs_engine_load(const vs_engine_cfg *cfg, vs_engine **out, vs_error *err) {
    *out = NULL;
    vs_engine *e = vs_calloc(1, sizeof *e);
    if (!e) return vs_fail(err, VS_ERR_NOMEM, "engine");
    if (cfg) e->cfg = *cfg;
    else vs_engine_cfg_default(&e->cfg);
    snprintf(e->models_dir, sizeof e->models_dir, "%s", e->cfg.models_dir ? e->cfg.models_dir : "models");
    e->cfg.models_dir = e->models_dir;
    vs_model_opts dopt = {.batch = 1, .n_outputs = 4};
    for (int i = 0; i < 4; i++) dopt.outputs[i] = vs_blaze_outputs[i];
    vs_model_opts eopt = {.batch = 1, .n_outputs = 1, .outputs = {VS_EMBED_NODE}};
    vs_err rc = load_model(e->models_dir, VS_DETECT_MODEL, &dopt, VS_BLAZE_INPUT, &e->detector, err);
    if (rc == VS_OK) rc = load_model(e->models_dir, VS_EMBED_MODEL, &eopt, VS_EMBED_INPUT, &e->embedder, err);
    if (rc == VS_OK) {
        static const size_t want[4][3] = {{1, 512, 1}, {1, 384, 1}, {1, 512, 16}, {1, 384, 16}};
        for (int i = 0; i < 4 && rc == VS_OK; i++) {
            vs_shape s = vs_model_output_shape(e->detector, i);
            if (s.ndim != 3 || memcmp(s.dims, want[i], sizeof want[i]) != 0)
                rc = vs_fail(err, VS_ERR_MODEL, "%s/%s.json: output %s has an unexpected shape", e->models_dir,
                             VS_DETECT_MODEL, vs_blaze_outputs[i]);
        }
        vs_shape s = vs_model_output_shape(e->embedder, 0);
        e->dim = (int)s.dims[s.ndim - 1];
    }
    if (rc != VS_OK) {
        vs_engine_free(e);
        return rc;
    }
    *out = e;
    return VS_OK;
}

void vs_engine_free(vs_engine *e) {
    if (!e) return;
    vs_model_free(e->detector);
    vs_model_free(e->embedder);
    vs_free(e);
}

int vs_engine_embedding_dim(const vs_engine *e) { return e->dim; }
const vs_engine_cfg *vs_engine_config(const vs_engine *e) { return &e->cfg; }

vs_err vs_engine_worker_new(const vs_engine *e, vs_engine_worker **out, vs_error *err) {
    *out = NULL;
    vs_engine_worker *w = vs_calloc(1, sizeof *w);
    if (!w) return vs_fail(err, VS_ERR_NOMEM, "engine worker");
    w->e = e;
    vs_err rc = vs_runtime_new(e->detector, 1, &w->det_rt, err);
    if (rc == VS_OK) rc = vs_runtime_new(e->embedder, 1, &w->emb_rt, err);
    if (rc != VS_OK) {
        vs_engine_worker_free(w);
        return rc;
    }
    *out = w;
    return VS_OK;
}

void vs_engine_worker_free(vs_engine_worker *w) {
    if (!w) return;
    vs_runtime_free(w->det_rt);
    vs_runtime_free(w->emb_rt);
    vs_free(w);
}

vs_err vs_engine_embed_crop(vs_engine_worker *w, const vs_image *crop, float *emb, vs_error *err) {
    if (crop->width != VS_EMBED_INPUT || crop->height != VS_EMBED_INPUT || crop->channels != 3)
        return vs_fail(err, VS_ERR_INVALID_ARG, "embed: crop must be %dx%d RGB", VS_EMBED_INPUT, VS_EMBED_INPUT);
    float *in = vs_runtime_input(w->emb_rt);
    size_t n = (size_t)VS_EMBED_INPUT * VS_EMBED_INPUT * 3;
    for (size_t i = 0; i < n; i++) in[i] = crop->data[i];
    vs_err rc = vs_runtime_run(w->emb_rt, err);
    if (rc != VS_OK) return rc;
    memcpy(emb, vs_runtime_output(w->emb_rt, 0), sizeof(float) * (size_t)w->e->dim);
    vs_l2_normalize(emb, w->e->dim);
    return VS_OK;
}

/* Aligns, scores, hashes and (optionally) embeds one detection. */
static vs_err describe_face(vs_engine_worker *w, const vs_image *img, const vs_face_det *d, unsigned flags,
                            vs_face *f, vs_error *err) {
    float m[6];
    f->det = *d;
    vs_err rc = vs_align_matrix((const float(*)[2])d->kp, VS_EMBED_INPUT, m, err);
    if (rc != VS_OK) return rc;
    if ((rc = vs_image_alloc(&f->crop, VS_EMBED_INPUT, VS_EMBED_INPUT, 3, err)) != VS_OK) return rc;
    vs_image_warp_affine(img, m, &f->crop, 0);
    vs_quality_assess(&w->e->cfg.quality, d, &f->crop, &f->quality);
    f->phash = vs_phash(&f->crop);
    if (flags & VS_ANALYZE_EMBED) {
        f->embedding = vs_malloc(sizeof(float) * (size_t)w->e->dim);
        if (!f->embedding) return vs_fail(err, VS_ERR_NOMEM, "embedding");
        if ((rc = vs_engine_embed_crop(w, &f->crop, f->embedding, err)) != VS_OK) return rc;
    }
    if (!(flags & VS_ANALYZE_KEEP_CROPS)) vs_image_free(&f->crop);
    return VS_OK;
}

vs_err vs_engine_analyze(vs_engine_worker *w, const vs_image *img, unsigned flags, vs_faces *out, vs_error *err) {
    memset(out, 0, sizeof *out);
    int cap = w->e->cfg.detect.max_faces > 0 ? w->e->cfg.detect.max_faces : 64;
    vs_face_det *dets = vs_malloc(sizeof *dets * (size_t)cap);
    if (!dets) return vs_fail(err, VS_ERR_NOMEM, "detections");
    int n = 0;
    vs_err rc = vs_detect_faces(w->det_rt, img, &w->e->cfg.detect, dets, cap, &n, err);
    if (rc == VS_OK && n > 0) {
        out->faces = vs_calloc((size_t)n, sizeof *out->faces);
        if (!out->faces) rc = vs_fail(err, VS_ERR_NOMEM, "faces");
    }
    for (int i = 0; rc == VS_OK && i < n; i++) {
        rc = describe_face(w, img, &dets[i], flags, &out->faces[i], err);
        out->n = i + 1;
    }
    vs_free(dets);
    if (rc != VS_OK) vs_faces_free(out);
    return rc;
}

void vs_faces_free(vs_faces *f) {
    for (int i = 0; i < f->n; i++) {
        vs_free(f->faces[i].embedding);
        vs_image_free(&f->faces[i].crop);
    }
    vs_free(f->faces);
    memset(f, 0, sizeof *f);
}

int vs_faces_best(const vs_faces *f) {
    int best = -1;
    float bs = -1;
    for (int i = 0; i < f->n; i++) {
        float s = f->faces[i].det.score * (0.25f + f->faces[i].quality.score);
        if (s > bs) {
            bs = s;
            best = i;
        }
    }
    return best;
}
