/* vs_detect.h - BlazeFace (back-camera model) face detection on photos of any
 * size: anchor decoding, a scale pyramid of overlapping 256-px tiles for small
 * faces, cross-tile weighted NMS, geometry checks against false faces, and a
 * retry at 90/180/270 degrees when an upright pass finds no clear face.
 * vs_detect_run also offers FaceBoxes (vs_faceboxes.h) as the finder, with
 * BlazeFace on a crop of each box for keypoints and as a second opinion. */
#ifndef VS_DETECT_H
#define VS_DETECT_H

#include "vs_box.h"
#include "vs_err.h"
#include "vs_image.h"
#include "vs_nn.h"

#define VS_BLAZE_INPUT 256
#define VS_BLAZE_ANCHORS 896
#define VS_DETECT_PASSES 8 /* budget of the BlazeFace pyramid when it is the only finder */
#define VS_UNION_PASSES 1  /* ... and beside FaceBoxes (union): level 0 only, since FaceBoxes finds
                            * the faces the tiles were for, unless it found faces too small for
                            * level 0 (a crowd): then VS_DETECT_PASSES (docs/detector-notes.md) */

/* Output node names of blazeface-back.json, in the order the decoder wants:
 * scores 16x16x2, scores 8x8x6, regressors 16x16x2, regressors 8x8x6. */
extern const char *const vs_blaze_outputs[4];

/* Which detector vs_detect_run runs (docs/detector-notes.md: measured on
 * photos built from the shared portraits, the shared photos and LFW). */
typedef enum vs_detector {
    VS_DETECTOR_BLAZEFACE = 0,  /* the BlazeFace pyramid alone (vs_detect_faces); visage <= 0.1 */
    VS_DETECTOR_FACEBOXES,      /* FaceBoxes boxes, each confirmed and given keypoints by BlazeFace on a crop
                                 * (plus the pyramid when max_passes is raised) */
    VS_DETECTOR_UNION,          /* BlazeFace's faces, plus FaceBoxes boxes it missed, confirmed the same
                                 * way; the default: every face the pyramid finds keeps its box and
                                 * keypoints (so embeddings and thresholds), the rest are added */
    VS_DETECTOR_COUNT
} vs_detector;

/* "blazeface", "faceboxes", "union"; NULL for an unknown value. */
const char *vs_detector_name(vs_detector d);
/* By name; -1 when unknown. */
int vs_detector_find(const char *name);

typedef struct vs_detect_cfg {
    vs_detector detector;       /* VS_DETECTOR_UNION */
    float score_threshold;      /* full-frame pass (0.7) */
    float tile_score_threshold; /* detections that only a tile saw (0.8) */
    float nms_iou;              /* weighted NMS overlap (0.3) */
    int min_face_px;            /* smallest face side searched for, pixels (24);
                                 * faces under 3/4 of it are dropped */
    int max_faces;              /* most faces returned, best first (64) */
    int use_tiles;              /* 1 = scale pyramid for small faces */
    int max_passes;             /* pyramid network runs per orientation, level 0 included;
                                 * 0 (default) = the detector's own budget: VS_DETECT_PASSES for
                                 * blazeface, VS_UNION_PASSES for union (VS_DETECT_PASSES where
                                 * FaceBoxes found faces too small for level 0); the faceboxes detector
                                 * runs the pyramid too only when this is raised above
                                 * VS_DETECT_PASSES: a thorough search for faces smaller than
                                 * FaceBoxes sees (~40 px in a 1600-px photo) */
    int try_rotations;          /* 1 = retry at 90/180/270 when unsure */
    float rotate_below;         /* ... i.e. when the best face scores below (0.85) */
    /* FaceBoxes, for VS_DETECTOR_FACEBOXES and VS_DETECTOR_UNION */
    int fb_side;                /* input side the model is loaded for; the photo's long side is scaled to it (1024) */
    int fb_fitted;              /* 1 (default): a 4:3 or wider photo runs FaceBoxes on a side x 3/4 side
                                 * input (~25 % less work, ~45 MB more per engine worker); 0: square
                                 * only ($VISAGE_DETECT_FITTED=0) */
    float fb_threshold;         /* boxes at or above this probability are proposals (0.4) */
    float fb_confirm;           /* BlazeFace score on the crop a proposal needs (0.7)... */
    float fb_sure;              /* ...unless FaceBoxes scores it at least this (0.9)... */
    float fb_sure_confirm;      /* ...when this is enough (0.3): faces cut by the border */
    float fb_context;           /* side of that crop / longer side of the box (2.5) */
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

/* Finds faces in img (RGB8) with the BlazeFace pyramid, whatever
 * cfg->detector says. rt must be a runtime of blazeface-back loaded with
 * vs_blaze_outputs. Writes up to cap detections, best first, in img's pixel
 * coordinates; *n receives the count (0 is not an error). */
vs_err vs_detect_faces(vs_runtime *rt, const vs_image *img, const vs_detect_cfg *cfg,
                       vs_face_det *out, int cap, int *n, vs_error *err);

/* BlazeFace's view of a face box found by another detector: one pass over a
 * square crop centred on `box`, `context` times its longer side, and the
 * detection scoring >= threshold with a face's keypoint layout that overlaps
 * the box most (IoU >= 0.3, or each centre inside the other box); the crop
 * shows at least 128 image pixels however small the box. When that
 * scores below rotate_below (0 = never), the crop is also turned by 90, 180
 * and 270 degrees and the most confident orientation wins (upright by a
 * margin): a sideways face gets made-up upright keypoints otherwise. On
 * success *found = 1 and *out is that detection, box and keypoints in img's
 * pixels; *found = 0 otherwise. */
vs_err vs_blaze_on_box(vs_runtime *rt, const vs_image *img, const vs_face_det *box, float context, float threshold,
                       float rotate_below, vs_face_det *out, int *found, vs_error *err);

/* Finds faces in img with cfg->detector: blaze is the BlazeFace runtime (as
 * for vs_detect_faces), faceboxes a runtime of the model vs_faceboxes_load
 * made for cfg->fb_side (NULL allowed for VS_DETECTOR_BLAZEFACE only). Every
 * face comes with BlazeFace's box, keypoints and score. Output as
 * vs_detect_faces. */
vs_err vs_detect_run(vs_runtime *blaze, vs_runtime *faceboxes, const vs_image *img, const vs_detect_cfg *cfg,
                     vs_face_det *out, int cap, int *n, vs_error *err);

#endif
