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

/* The aligned crop kept for display, quality and pHash (ArcFace template). */
#define VS_EMBED_INPUT 224
#define VS_DETECT_MODEL "blazeface-back"

/* The identity embedders visage can run. Each collection records the model id
 * of the embedder that filled it, and a collection is only ever searched with
 * vectors of that model (docs/models.md). */
typedef enum vs_embedder {
    VS_EMBEDDER_DLIB = 0,   /* dlib ResNet 128-d, from face-api; the default */
    VS_EMBEDDER_FACERES,    /* HSE FaceRes 1024-d, from human-models; visage <= 0.1 */
    VS_EMBEDDER_COUNT
} vs_embedder;

#define VS_EMBEDDER_DEFAULT VS_EMBEDDER_DLIB

typedef struct vs_embedder_info {
    const char *name;       /* "dlib", "faceres": what users type */
    const char *model_id;   /* pinned into collections, e.g. "dlib-resnet@face-api-1.7.15" */
    int dim;
    float match_threshold;  /* same-person cosine chosen on LFW DevTrain */
    float possible_threshold; /* "possible match" band starts here */
} vs_embedder_info;

const vs_embedder_info *vs_embedder_get(vs_embedder e);
/* By name or model id; -1 when unknown. */
int vs_embedder_find(const char *name_or_model_id);

typedef struct vs_engine_cfg {
    const char *models_dir;     /* folder with the model files (scripts/fetch-models.sh) */
    vs_embedder embedder;
    vs_detect_cfg detect;
    vs_quality_cfg quality;
    float match_threshold;      /* 0 = the embedder's calibrated threshold */
} vs_engine_cfg;

/* Fills defaults; models_dir from $VISAGE_MODELS, else "models"; the default
 * embedder. */
void vs_engine_cfg_default(vs_engine_cfg *cfg);

typedef struct vs_engine vs_engine;
typedef struct vs_engine_worker vs_engine_worker;

typedef struct vs_face {
    vs_face_det det;        /* box + keypoints, pixels of the analysed image */
    vs_quality quality;
    uint64_t phash;         /* of the aligned crop */
    uint64_t phash_mirror;  /* of its mirror image: a flipped re-post's crop hashes to about this */
    float *embedding;       /* dim floats, L2-normalised; NULL unless asked */
    vs_image crop;          /* ArcFace-aligned 224x224 crop; empty unless asked */
} vs_face;

typedef struct vs_faces {
    int n;
    vs_face *faces;         /* best detection first */
} vs_faces;

enum {
    VS_ANALYZE_EMBED = 1,       /* compute embeddings */
    VS_ANALYZE_KEEP_CROPS = 2,  /* keep the aligned crops in vs_face.crop */
    VS_ANALYZE_EMBED_SEARCHABLE = 4 /* with VS_ANALYZE_EMBED: embed only the faces the SEARCH quality
                                     * gate passes (the pipeline indexes no other; the rest keep
                                     * embedding NULL): a crowd's small, blurred faces cost no
                                     * embedding run */
};

vs_err vs_engine_load(const vs_engine_cfg *cfg, vs_engine **out, vs_error *err);
void vs_engine_free(vs_engine *e);
int vs_engine_embedding_dim(const vs_engine *e);
/* The embedder's model id (what collections are pinned to). */
const char *vs_engine_model_id(const vs_engine *e);
const vs_embedder_info *vs_engine_embedder(const vs_engine *e);

/* The verdict band of a similarity, from LFW DevTrain error rates
 * (docs/models.md): "same_person" at or above the match threshold,
 * "possible" at or above the embedder's possible threshold (where 99 % of
 * same-person pairs still score), else "different". */
const char *vs_engine_band(const vs_engine *e, float similarity);
const vs_engine_cfg *vs_engine_config(const vs_engine *e);

/* Where a worker's time goes, stage by stage. The engine times detection and
 * the per-face work; whoever decodes and stores around it (vs_pipeline, the
 * benchmarks) adds those stages with vs_engine_profile_add. Network stages
 * count passes, the others calls. */
typedef enum vs_stage {
    VS_STAGE_DECODE = 0,    /* compressed bytes to pixels */
    VS_STAGE_DETECT_PREP,   /* detection minus its networks: resizing, tiles, anchors, NMS */
    VS_STAGE_BLAZEFACE,     /* BlazeFace passes (pyramid, crops, rotations) */
    VS_STAGE_FACEBOXES,     /* FaceBoxes passes */
    VS_STAGE_ALIGN,         /* the 224-px aligned crop */
    VS_STAGE_QUALITY,
    VS_STAGE_PHASH,
    VS_STAGE_EMBED_CHIP,    /* the embedder's own aligned chip */
    VS_STAGE_EMBED,         /* embedder passes */
    VS_STAGE_DEDUP,         /* near-duplicate search in the index */
    VS_STAGE_STORE,         /* thumbnails and crops: encode and write */
    VS_STAGE_COMMIT,        /* catalog record and index upsert */
    VS_STAGE_COUNT
} vs_stage;

typedef struct vs_engine_profile {
    uint64_t images, faces;         /* analysed by vs_engine_analyze */
    uint64_t calls[VS_STAGE_COUNT];
    int64_t ns[VS_STAGE_COUNT];
} vs_engine_profile;

/* "decode", "detect_prep", "blazeface", ...: metric and JSON names. */
const char *vs_stage_name(vs_stage s);
/* w's profile, summed since w was made. */
const vs_engine_profile *vs_engine_worker_profile(const vs_engine_worker *w);
/* Adds one call of ns nanoseconds to stage s of w's profile. */
void vs_engine_profile_add(vs_engine_worker *w, vs_stage s, int64_t ns);
/* Adds to *sum what a profile gained from `before` to `now` (snapshots of
 * one worker's profile): how a pool or a benchmark totals its workers. */
void vs_engine_profile_accumulate(vs_engine_profile *sum, const vs_engine_profile *now,
                                  const vs_engine_profile *before);

vs_err vs_engine_worker_new(const vs_engine *e, vs_engine_worker **out, vs_error *err);
typedef struct vs_engine_worker_opts {
    int threads;        /* XNNPACK threads per network run (<= 1: the calling thread only) */
    int square_only;    /* 1: FaceBoxes on its square input only, one runtime instead of up
                         * to three (vs_faceboxes.h): for query workers, whose memory
                         * matters more than a few ms on wide photos */
} vs_engine_worker_opts;

/* vs_engine_worker_new with options (NULL: the defaults, all 0). */
vs_err vs_engine_worker_new_with(const vs_engine *e, const vs_engine_worker_opts *o, vs_engine_worker **out,
                                 vs_error *err);
void vs_engine_worker_free(vs_engine_worker *w);

/* Finds and describes every face of img. *out is filled (release with
 * vs_faces_free) even when no face is found (n = 0). */
vs_err vs_engine_analyze(vs_engine_worker *w, const vs_image *img, unsigned flags, vs_faces *out,
                         vs_error *err);
void vs_faces_free(vs_faces *f);

/* Faces narrower than this in a picture decoded at reduced scale are cut
 * and embedded from the whole photo (the 224-px crop and dlib's chip want
 * ~110 px across the face). */
#define VS_ENGINE_FULL_RES_FACE_PX 128
/* Pixels to decode for analysis: a JPEG twice this long or more is decoded
 * at 1/2, 1/4 or 1/8 scale for detection (vs_image_decode_scaled), 1.5x the
 * side FaceBoxes looks at, so detection sees what it would on the whole. */
#define VS_ENGINE_DECODE_SIDE 1536

/* vs_engine_analyze for a photo decoded at reduced scale: detects on d->img,
 * and a face narrower than VS_ENGINE_FULL_RES_FACE_PX there is aligned and
 * embedded from the whole photo, decoded again from buf/len with dopt (once
 * for all such faces; buf NULL: never, the scaled picture serves). Boxes and
 * keypoints come back in the whole photo's pixels either way. */
vs_err vs_engine_analyze_decoded(vs_engine_worker *w, const vs_decoded *d, const uint8_t *buf, size_t len,
                                 const vs_decode_opts *dopt, unsigned flags, vs_faces *out, vs_error *err);

/* What the server does with a photo's bytes: vs_image_decode_scaled at
 * VS_ENGINE_DECODE_SIDE, then vs_engine_analyze_decoded. *width x *height
 * receive the whole photo's size (NULL: not wanted). Decode errors as
 * vs_image_decode. */
vs_err vs_engine_analyze_bytes(vs_engine_worker *w, const uint8_t *buf, size_t len, const vs_decode_opts *dopt,
                               unsigned flags, vs_faces *out, int *width, int *height, vs_error *err);
/* The same for a file (the command-line tools); messages start with the path. */
vs_err vs_engine_analyze_file(vs_engine_worker *w, const char *path, unsigned flags, vs_faces *out, int *width,
                              int *height, vs_error *err);

/* Index of "the" face of a query photo: highest det score x quality, not
 * merely the largest; -1 when there is none. */
int vs_faces_best(const vs_faces *f);

/* Embeds the face with keypoints kp (right eye, left eye, nose tip, mouth
 * centre; pixels of img) into emb (dim floats, L2-normalised), aligning it
 * the way the embedder was trained. */
vs_err vs_engine_embed_face(vs_engine_worker *w, const vs_image *img, const float kp[4][2], float *emb,
                            vs_error *err);

#endif
