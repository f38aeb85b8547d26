/* vs_engine.c - the face engine: per image, detect (vs_detect), then per face
 * align to the ArcFace template at 224 px (the crop users see, scored for
 * quality and hashed), and embed the face with the collection's embedder:
 *   dlib    dlib's ResNet on its own 150 px face chip (dlib's template, padding
 *           0.25), 128-d; built in C from face-api's weights (vs_dlib_resnet.c);
 *   faceres HSE FaceRes on the 224 px ArcFace crop, 1024-d, read at the
 *           internal node global_pooling/Mean (the declared outputs are
 *           age/gender heads); RGB 0..255 unnormalised.
 * Descriptors are L2-normalised here, so cosine = dot product everywhere. */
#include "vs_engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_align.h"
#include "vs_alloc.h"
#include "vs_dlib_resnet.h"
#include "vs_faceboxes.h"
#include "vs_hash.h"
#include "vs_nn.h"
#include "vs_phash.h"
#include "vs_similarity.h"

#define FACERES_FILE "faceres"
#define FACERES_NODE "global_pooling/Mean"
#define DLIB_FILE "face_recognition_model-weights_manifest.json"
#define DLIB_PADDING 0.25f

/* Thresholds: docs/models.md, "Thresholds", chosen on LFW DevTrain. */
static const vs_embedder_info embedders[VS_EMBEDDER_COUNT] = {
    [VS_EMBEDDER_DLIB] = {"dlib", "dlib-resnet@face-api-1.7.15", VS_DLIB_DIM, 0.903f, 0.88f},
    [VS_EMBEDDER_FACERES] = {"faceres", "faceres@human-models-3.0.4", 1024, 0.55f, 0.45f},
};

const vs_embedder_info *vs_embedder_get(vs_embedder e) {
    return (unsigned)e < VS_EMBEDDER_COUNT ? &embedders[e] : NULL;
}

int vs_embedder_find(const char *s) {
    for (int i = 0; s && i < VS_EMBEDDER_COUNT; i++)
        if (!strcmp(s, embedders[i].name) || !strcmp(s, embedders[i].model_id)) return i;
    return -1;
}

struct vs_engine {
    vs_engine_cfg cfg;
    char models_dir[1024];
    const vs_embedder_info *info;
    vs_model *detector;
    vs_faceboxes_models *faceboxes; /* NULL when cfg.detect.detector is BlazeFace alone */
    vs_model *embedder;
    int chip;           /* embedder input side */
    int dim;
};

struct vs_engine_worker {
    const vs_engine *e;
    vs_runtime *det_rt;
    vs_faceboxes_runtimes *fb;      /* of e->faceboxes, or NULL */
    vs_runtime *emb_rt;
    vs_image chip, big;  /* embedder input, and its supersampled version */
    vs_engine_profile prof;
};

static const char *const stage_names[VS_STAGE_COUNT] = {
    "decode", "detect_prep", "blazeface", "faceboxes", "align", "quality",
    "phash", "embed_chip", "embed", "dedup", "store", "commit"};

const char *vs_stage_name(vs_stage s) { return (unsigned)s < VS_STAGE_COUNT ? stage_names[s] : NULL; }

const vs_engine_profile *vs_engine_worker_profile(const vs_engine_worker *w) { return &w->prof; }

void vs_engine_profile_add(vs_engine_worker *w, vs_stage s, int64_t ns) {
    if ((unsigned)s >= VS_STAGE_COUNT) return;
    w->prof.calls[s]++;
    w->prof.ns[s] += ns;
}

void vs_engine_profile_accumulate(vs_engine_profile *sum, const vs_engine_profile *now,
                                  const vs_engine_profile *before) {
    sum->images += now->images - before->images;
    sum->faces += now->faces - before->faces;
    for (int s = 0; s < VS_STAGE_COUNT; s++) {
        sum->calls[s] += now->calls[s] - before->calls[s];
        sum->ns[s] += now->ns[s] - before->ns[s];
    }
}

/* Adds to stage s the passes and time a network made since the clock read
 * (runs0, ns0), now at (runs, ns); returns those nanoseconds. */
static int64_t charge(vs_engine_worker *w, vs_stage s, uint64_t runs0, int64_t ns0, uint64_t runs, int64_t ns) {
    w->prof.calls[s] += runs - runs0;
    w->prof.ns[s] += ns - ns0;
    return ns - ns0;
}

void vs_engine_cfg_default(vs_engine_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    const char *env = getenv("VISAGE_MODELS");
    cfg->models_dir = env && *env ? env : "models";
    cfg->embedder = VS_EMBEDDER_DEFAULT;
    vs_detect_cfg_default(&cfg->detect);
    vs_quality_cfg_default(&cfg->quality);
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

/* The embedder of e->info, with its chip side. */
static vs_err load_embedder(vs_engine *e, vs_error *err) {
    if (e->cfg.embedder == VS_EMBEDDER_FACERES) {
        vs_model_opts eopt = {.batch = 1, .n_outputs = 1, .outputs = {FACERES_NODE}};
        e->chip = VS_EMBED_INPUT;
        return load_model(e->models_dir, FACERES_FILE, &eopt, VS_EMBED_INPUT, &e->embedder, err);
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", e->models_dir, DLIB_FILE);
    e->chip = VS_DLIB_INPUT;
    return vs_dlib_resnet_load(path, &e->embedder, err);
}

vs_err vs_engine_load(const vs_engine_cfg *cfg, vs_engine **out, vs_error *err) {
    *out = NULL;
    vs_engine *e = vs_calloc(1, sizeof *e);
    if (!e) return vs_fail(err, VS_ERR_NOMEM, "engine");
    if (cfg) e->cfg = *cfg;
    else vs_engine_cfg_default(&e->cfg);
    snprintf(e->models_dir, sizeof e->models_dir, "%s", e->cfg.models_dir ? e->cfg.models_dir : "models");
    e->cfg.models_dir = e->models_dir;
    e->info = vs_embedder_get(e->cfg.embedder);
    if (!e->info) {
        vs_free(e);
        return vs_fail(err, VS_ERR_INVALID_ARG, "engine: unknown embedder %d", (int)e->cfg.embedder);
    }
    if (!(e->cfg.match_threshold > 0)) e->cfg.match_threshold = e->info->match_threshold;
    vs_model_opts dopt = {.batch = 1, .n_outputs = 4};
    for (int i = 0; i < 4; i++) dopt.outputs[i] = vs_blaze_outputs[i];
    vs_err rc = load_model(e->models_dir, VS_DETECT_MODEL, &dopt, VS_BLAZE_INPUT, &e->detector, err);
    if (rc == VS_OK && e->cfg.detect.detector != VS_DETECTOR_BLAZEFACE) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", e->models_dir, VS_FACEBOXES_MODEL);
        rc = vs_faceboxes_models_load(path, e->cfg.detect.fb_side, e->cfg.detect.fb_fitted, &e->faceboxes, err);
    }
    if (rc == VS_OK) rc = load_embedder(e, err);
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
        if (e->dim != e->info->dim)
            rc = vs_fail(err, VS_ERR_MODEL, "%s: embedder %s gives %d values, expected %d", e->models_dir, e->info->name,
                         e->dim, e->info->dim);
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
    vs_faceboxes_models_free(e->faceboxes);
    vs_model_free(e->embedder);
    vs_free(e);
}

int vs_engine_embedding_dim(const vs_engine *e) { return e->dim; }
const char *vs_engine_model_id(const vs_engine *e) { return e->info->model_id; }
const vs_embedder_info *vs_engine_embedder(const vs_engine *e) { return e->info; }

const char *vs_engine_band(const vs_engine *e, float sim) {
    if (sim >= e->cfg.match_threshold) return "same_person";
    return sim >= e->info->possible_threshold ? "possible" : "different";
}
const vs_engine_cfg *vs_engine_config(const vs_engine *e) { return &e->cfg; }

vs_err vs_engine_worker_new(const vs_engine *e, vs_engine_worker **out, vs_error *err) {
    return vs_engine_worker_new_with(e, NULL, out, err);
}

vs_err vs_engine_worker_new_with(const vs_engine *e, const vs_engine_worker_opts *o, vs_engine_worker **out,
                                 vs_error *err) {
    int threads = o && o->threads > 1 ? o->threads : 1;
    *out = NULL;
    vs_engine_worker *w = vs_calloc(1, sizeof *w);
    if (!w) return vs_fail(err, VS_ERR_NOMEM, "engine worker");
    w->e = e;
    vs_err rc = vs_runtime_new(e->detector, threads, &w->det_rt, err);
    if (rc == VS_OK && e->faceboxes)
        rc = vs_faceboxes_runtimes_new(e->faceboxes, threads, o && o->square_only, &w->fb, err);
    if (rc == VS_OK) rc = vs_runtime_new(e->embedder, threads, &w->emb_rt, err);
    if (rc == VS_OK) rc = vs_image_alloc(&w->chip, e->chip, e->chip, 3, err);
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
    vs_faceboxes_runtimes_free(w->fb);
    vs_runtime_free(w->emb_rt);
    vs_image_free(&w->chip);
    vs_image_free(&w->big);
    vs_free(w);
}

/* Warps img into w->chip with crop->image matrix m. A bilinear warp that
 * shrinks by more than ~1.5x aliases (dlib builds a pyramid for that), so a
 * chip of a big face is sampled k x k times larger and area-averaged down. */
static vs_err warp_chip(vs_engine_worker *w, const vs_image *img, const float m[6], vs_error *err) {
    float scale = sqrtf(m[0] * m[0] + m[3] * m[3]);
    int k = (int)lrintf(scale);
    if (k > 4) k = 4;
    if (k <= 1) {
        vs_image_warp_affine(img, m, &w->chip, 0);
        return VS_OK;
    }
    int side = w->chip.width * k;
    if (w->big.width != side) {
        vs_image_free(&w->big);
        vs_err rc = vs_image_alloc(&w->big, side, side, 3, err);
        if (rc != VS_OK) return rc;
    }
    float mk[6] = {m[0] / k, m[1] / k, m[2] + 0.5f * (m[0] + m[1]) * (1.0f / k - 1),
                   m[3] / k, m[4] / k, m[5] + 0.5f * (m[3] + m[4]) * (1.0f / k - 1)};
    vs_image_warp_affine(img, mk, &w->big, 0);
    vs_image small;
    vs_err rc = vs_image_resize(&w->big, w->chip.width, w->chip.height, &small, err);
    if (rc != VS_OK) return rc;
    memcpy(w->chip.data, small.data, (size_t)w->chip.width * w->chip.height * 3);
    vs_image_free(&small);
    return VS_OK;
}

vs_err vs_engine_embed_face(vs_engine_worker *w, const vs_image *img, const float kp[4][2], float *emb,
                            vs_error *err) {
    const vs_engine *e = w->e;
    float m[6];
    vs_err rc = e->cfg.embedder == VS_EMBEDDER_DLIB ? vs_align_dlib_matrix(kp, e->chip, DLIB_PADDING, m, err)
                                                    : vs_align_matrix(kp, e->chip, m, err);
    int64_t t0 = vs_now_ns();
    if (rc == VS_OK) rc = warp_chip(w, img, m, err);
    if (rc != VS_OK) return rc;
    float *in = vs_runtime_input(w->emb_rt);
    size_t n = (size_t)e->chip * e->chip * 3;
    for (size_t i = 0; i < n; i++) in[i] = w->chip.data[i];
    vs_engine_profile_add(w, VS_STAGE_EMBED_CHIP, vs_now_ns() - t0);
    t0 = vs_now_ns();
    rc = vs_runtime_run(w->emb_rt, err);
    vs_engine_profile_add(w, VS_STAGE_EMBED, vs_now_ns() - t0);
    if (rc != VS_OK) return rc;
    memcpy(emb, vs_runtime_output(w->emb_rt, 0), sizeof(float) * (size_t)e->dim);
    vs_l2_normalize(emb, e->dim);
    return VS_OK;
}

/* Aligns, scores, hashes and (optionally) embeds one detection. */
static vs_err describe_face(vs_engine_worker *w, const vs_image *img, const vs_face_det *d, unsigned flags,
                            vs_face *f, vs_error *err) {
    float m[6];
    f->det = *d;
    vs_err rc = vs_align_matrix((const float(*)[2])d->kp, VS_EMBED_INPUT, m, err);
    if (rc != VS_OK) return rc;
    int64_t t0 = vs_now_ns();
    if ((rc = vs_image_alloc(&f->crop, VS_EMBED_INPUT, VS_EMBED_INPUT, 3, err)) != VS_OK) return rc;
    vs_image_warp_affine(img, m, &f->crop, 0);
    int64_t t1 = vs_now_ns();
    vs_quality_assess(&w->e->cfg.quality, d, &f->crop, &f->quality);
    int64_t t2 = vs_now_ns();
    vs_phash_both(&f->crop, &f->phash, &f->phash_mirror);
    vs_engine_profile_add(w, VS_STAGE_ALIGN, t1 - t0);
    vs_engine_profile_add(w, VS_STAGE_QUALITY, t2 - t1);
    vs_engine_profile_add(w, VS_STAGE_PHASH, vs_now_ns() - t2);
    int searchable = !(flags & VS_ANALYZE_EMBED_SEARCHABLE) ||
                     !vs_quality_reject_reason(&w->e->cfg.quality, &f->quality, d, VS_GATE_SEARCH);
    if ((flags & VS_ANALYZE_EMBED) && searchable) {
        f->embedding = vs_malloc(sizeof(float) * (size_t)w->e->dim);
        if (!f->embedding) return vs_fail(err, VS_ERR_NOMEM, "embedding");
        if ((rc = vs_engine_embed_face(w, img, (const float(*)[2])d->kp, f->embedding, err)) != VS_OK) return rc;
    }
    if (!(flags & VS_ANALYZE_KEEP_CROPS)) vs_image_free(&f->crop);
    return VS_OK;
}

/* Runs the detector on img: *dets (vs_malloc, the caller frees) receives
 * *n detections in img's pixels, best first. */
static vs_err detect(vs_engine_worker *w, const vs_image *img, vs_face_det **dets, int *n, vs_error *err) {
    int cap = w->e->cfg.detect.max_faces > 0 ? w->e->cfg.detect.max_faces : 64;
    *n = 0;
    *dets = vs_malloc(sizeof **dets * (size_t)cap);
    if (!*dets) return vs_fail(err, VS_ERR_NOMEM, "detections");
    uint64_t br0, br1, fr0 = 0, fr1 = 0;
    int64_t bns0, bns1, fns0 = 0, fns1 = 0, t0 = vs_now_ns();
    vs_runtime *fb_rt = NULL;
    vs_err rc = VS_OK;
    if (w->fb) {
        vs_faceboxes_runtimes_clock(w->fb, &fr0, &fns0);
        rc = vs_faceboxes_runtime_for(w->fb, img->width, img->height, &fb_rt, err);
    }
    vs_runtime_clock(w->det_rt, &br0, &bns0);
    if (rc == VS_OK) rc = vs_detect_run(w->det_rt, fb_rt, img, &w->e->cfg.detect, *dets, cap, n, err);
    vs_runtime_clock(w->det_rt, &br1, &bns1);
    if (w->fb) vs_faceboxes_runtimes_clock(w->fb, &fr1, &fns1);
    int64_t nets = charge(w, VS_STAGE_BLAZEFACE, br0, bns0, br1, bns1) + charge(w, VS_STAGE_FACEBOXES, fr0, fns0, fr1, fns1);
    vs_engine_profile_add(w, VS_STAGE_DETECT_PREP, vs_now_ns() - t0 - nets);
    w->prof.images++;
    w->prof.faces += (uint64_t)(*n > 0 ? *n : 0);
    return rc;
}

vs_err vs_engine_analyze(vs_engine_worker *w, const vs_image *img, unsigned flags, vs_faces *out, vs_error *err) {
    vs_decoded d = {.img = *img, .denom = 1, .width = img->width, .height = img->height};
    return vs_engine_analyze_decoded(w, &d, NULL, 0, NULL, flags, out, err);
}

/* Multiplies a detection's box and keypoints by k (scaled image -> whole photo). */
static void scale_det(vs_face_det *d, float k) {
    d->x *= k, d->y *= k, d->w *= k, d->h *= k;
    for (int i = 0; i < d->n_kp; i++) d->kp[i][0] *= k, d->kp[i][1] *= k;
}

vs_err vs_engine_analyze_decoded(vs_engine_worker *w, const vs_decoded *d, const uint8_t *buf, size_t len,
                                 const vs_decode_opts *dopt, unsigned flags, vs_faces *out, vs_error *err) {
    memset(out, 0, sizeof *out);
    vs_face_det *dets = NULL;
    vs_image full = {0};
    int n = 0;
    vs_err rc = detect(w, &d->img, &dets, &n, err);
    if (rc == VS_OK && n > 0) {
        out->faces = vs_calloc((size_t)n, sizeof *out->faces);
        if (!out->faces) rc = vs_fail(err, VS_ERR_NOMEM, "faces");
    }
    float k = (float)d->denom;
    for (int i = 0; rc == VS_OK && i < n; i++) {
        /* A face small in the scaled picture is cut from the whole photo,
         * decoded (once) only now: the crop and the embedding get every pixel
         * the photo has, as if it had been decoded whole. */
        if (d->denom > 1 && dets[i].w < VS_ENGINE_FULL_RES_FACE_PX && buf) {
            if (!full.data) {
                int64_t t0 = vs_now_ns();
                rc = vs_image_decode(buf, len, dopt, &full, err);
                vs_engine_profile_add(w, VS_STAGE_DECODE, vs_now_ns() - t0);
                if (rc != VS_OK) break;
            }
            vs_face_det whole = dets[i];
            scale_det(&whole, k);
            rc = describe_face(w, &full, &whole, flags, &out->faces[i], err);
        } else {
            rc = describe_face(w, &d->img, &dets[i], flags, &out->faces[i], err);
            if (d->denom > 1) scale_det(&out->faces[i].det, k);
        }
        out->n = i + 1;
    }
    vs_image_free(&full);
    vs_free(dets);
    if (rc != VS_OK) vs_faces_free(out);
    return rc;
}

vs_err vs_engine_analyze_bytes(vs_engine_worker *w, const uint8_t *buf, size_t len, const vs_decode_opts *dopt,
                               unsigned flags, vs_faces *out, int *width, int *height, vs_error *err) {
    vs_decoded d;
    memset(out, 0, sizeof *out);
    int64_t t0 = vs_now_ns();
    vs_err rc = vs_image_decode_scaled(buf, len, dopt, VS_ENGINE_DECODE_SIDE, &d, err);
    vs_engine_profile_add(w, VS_STAGE_DECODE, vs_now_ns() - t0);
    if (rc != VS_OK) return rc;
    if (width) *width = d.width;
    if (height) *height = d.height;
    rc = vs_engine_analyze_decoded(w, &d, buf, len, dopt, flags, out, err);
    vs_image_free(&d.img);
    return rc;
}

vs_err vs_engine_analyze_file(vs_engine_worker *w, const char *path, unsigned flags, vs_faces *out, int *width,
                              int *height, vs_error *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    vs_error inner = {0};
    memset(out, 0, sizeof *out);
    vs_err rc = vs_read_file(path, VS_IMAGE_DEFAULT_MAX_BYTES, &buf, &len, err); /* names the path */
    if (rc == VS_OK && len == 0) rc = vs_fail(err, VS_ERR_CORRUPT, "%s: empty file", path);
    else if (rc == VS_OK) {
        rc = vs_engine_analyze_bytes(w, buf, len, NULL, flags, out, width, height, &inner);
        if (rc != VS_OK) vs_fail(err, rc, "%s: %s", path, inner.msg);
    }
    vs_free(buf);
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
