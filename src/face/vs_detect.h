/* vs_detect.h - BlazeFace (back-camera model) face detection on photos of any
 * size: anchor decoding, a scale pyramid of overlapping 256-px tiles for small
 * faces, cross-tile weighted NMS, geometry checks against false faces, and a
 * retry at 90/180/270 degrees when an upright pass finds no clear face. */
#ifndef VS_DETECT_H
#define VS_DETECT_H

#include "vs_box.h"
#include "vs_err.h"
#include "vs_image.h"
#include "vs_nn.h"

#define VS_BLAZE_INPUT 256
#define VS_BLAZE_ANCHORS 896

/* Output node names of blazeface-back.json, in the order the decoder wants:
 * scores 16x16x2, scores 8x8x6, regressors 16x16x2, regressors 8x8x6. */
extern const char *const vs_blaze_outputs[4];

typedef struct vs_detect_cfg {
    float score_threshold;      /* full-frame pass (0.7) */
    float tile_score_threshold; /* detections that only a tile saw (0.8) */
    float nms_iou;              /* weighted NMS overlap (0.3) */
    int min_face_px;            /* smallest face side searched for, pixels (24);
                                 * faces under 3/4 of it are dropped */
    int max_faces;              /* most faces returned, best first (64) */
    int use_tiles;              /* 1 = scale pyramid for small faces */
    int max_passes;             /* network runs per orientation, level 0 included (8) */
    int try_rotations;          /* 1 = retry at 90/180/270 when unsure */
    float rotate_below;         /* ... i.e. when the best face scores below (0.85) */
} vs_detect_cfg;

void vs_detect_cfg_default(vs_detect_cfg *cfg);

/* Region of the image a 256x256 network input shows: a square of side `size`
 * at (x, y), image pixels (may extend past the image: padding). */
typedef struct vs_region {
    float x, y, size;
} vs_region;

/* Decodes raw model outputs (order of vs_blaze_outputs) of one pass over
 * `region` into detections in image pixels with score >= threshold, appending
 * at most cap - *n of them to out. Returns the number appended. */
int vs_blaze_decode(const float *const outs[4], float threshold, vs_region region,
                    vs_face_det *out, int cap);

/* Keypoint geometry sanity: eyes side by side, nose between eyes and mouth,
 * proportions of a face. Returns 1 for a plausible face. */
int vs_face_geometry_ok(const vs_face_det *d);

/* Finds faces in img (RGB8). rt must be a runtime of blazeface-back loaded
 * with vs_blaze_outputs. Writes up to cap detections, best first, in img's
 * pixel coordinates; *n receives the count (0 is not an error). */
vs_err vs_detect_faces(vs_runtime *rt, const vs_image *img, const vs_detect_cfg *cfg,
                       vs_face_det *out, int cap, int *n, vs_error *err);

#endif
