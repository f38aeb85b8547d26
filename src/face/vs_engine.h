/* vs_engine.h - image in, faces out: detection, alignment, quality, pHash and
 * the identity embedding, with the models loaded once and shared.
 *
 *   vs_engine         the loaded models and configuration; immutable, shared
 *                     by every thread.
 *   vs_engine_worker  one per thread: network runtimes and scratch images.
 * The engine must outlive its workers. */
#ifndef VS_ENGINE_H
#define VS_ENGINE_H

#include <stdint.h>

#include "vs_box.h"
#include "vs_detect.h"
#include "vs_err.h"
#include "vs_image.h"
#include "vs_quality.h"

#define VS_EMBED_INPUT 224
#define VS_EMBED_MODEL "faceres"
#define VS_EMBED_MODEL_VERSION "human-models-3.0.4"
#define VS_EMBED_NODE "global_pooling/Mean"
#define VS_DETECT_MODEL "blazeface-back"
/* Cosine similarity at or above which two faces are the same person,
 * calibrated on public pairs (docs/models.md). */
#define VS_DEFAULT_MATCH_THRESHOLD 0.55f

typedef struct vs_engine_cfg {
    const char *models_dir;     /* folder with blazeface-back.json, faceres.json */
    vs_detect_cfg detect;
    vs_quality_cfg quality;
    float match_threshold;
} vs_engine_cfg;

/* Fills defaults; models_dir from $VISAGE_MODELS, else "models". */
void vs_engine_cfg_default(vs_engine_cfg *cfg);

typedef struct vs_engine vs_engine;
typedef struct vs_engine_worker vs_engine_worker;

typedef struct vs_face {
    vs_face_det det;        /* box + keypoints, pixels of the analysed image */
    vs_quality quality;
    uint64_t phash;         /* of the aligned crop */
    float *embedding;       /* dim floats, L2-normalised; NULL unless asked */
    vs_image crop;          /* aligned 224x224 crop; empty unless asked */
} vs_face;

typedef struct vs_faces {
    int n;
    vs_face *faces;         /* best detection first */
} vs_faces;

enum {
    VS_ANALYZE_EMBED = 1,       /* compute embeddings */
    VS_ANALYZE_KEEP_CROPS = 2   /* keep the aligned crops in vs_face.crop */
};

vs_err vs_engine_load(const vs_engine_cfg *cfg, vs_engine **out, vs_error *err);
void vs_engine_free(vs_engine *e);
int vs_engine_embedding_dim(const vs_engine *e);
const vs_engine_cfg *vs_engine_config(const vs_engine *e);

vs_err vs_engine_worker_new(const vs_engine *e, vs_engine_worker **out, vs_error *err);
void vs_engine_worker_free(vs_engine_worker *w);

/* Finds and describes every face of img. *out is filled (release with
 * vs_faces_free) even when no face is found (n = 0). */
vs_err vs_engine_analyze(vs_engine_worker *w, const vs_image *img, unsigned flags, vs_faces *out,
                         vs_error *err);
void vs_faces_free(vs_faces *f);

/* Index of "the" face of a query photo: highest det score x quality, not
 * merely the largest; -1 when there is none. */
int vs_faces_best(const vs_faces *f);

/* Embeds one already aligned 224x224 RGB crop into emb (dim floats). */
vs_err vs_engine_embed_crop(vs_engine_worker *w, const vs_image *crop, float *emb, vs_error *err);

#endif
