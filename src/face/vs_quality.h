/* vs_quality.h - how usable a detected face is for recognition: a score in
 * [0,1] from detector confidence, face size, sharpness, exposure and head
 * pose, with gates per use (enrol > verify > search) and a Rekognition-style
 * reason when a face is turned away. */
#ifndef VS_QUALITY_H
#define VS_QUALITY_H

#include "vs_box.h"
#include "vs_image.h"

typedef struct vs_quality_cfg {
    float min_face_px;   /* face box short side at or below which size score is 0 (24) */
    float good_face_px;  /* size score 1 at or above (112) */
    float gate_enroll;   /* minimum score to enrol a face (0.6) */
    float gate_verify;   /* minimum score for 1:1 verification (0.45) */
    float gate_search;   /* minimum score to search with a face (0.3) */
} vs_quality_cfg;

/* Fills the defaults above. Invariant: gate_enroll >= gate_verify >= gate_search. */
void vs_quality_cfg_default(vs_quality_cfg *cfg);

typedef struct vs_quality {
    float score;      /* overall, [0,1]: product of the factors below, see .c */
    float det;        /* detector confidence, [0,1] */
    float size;       /* face size factor, [0,1] */
    float sharpness;  /* [0,1] from laplacian_var */
    float exposure;   /* [0,1] from mean_luma and clipped pixels */
    float pose;       /* [0,1], 1 = frontal */
    float yaw_deg;    /* + = nose toward the image's right (subject's left) */
    float pitch_deg;  /* + = nose up (face tilted back) */
    float roll_deg;   /* + = eye line turned clockwise in the image */
    float laplacian_var;  /* variance of the 4-neighbour Laplacian of the gray crop */
    float mean_luma;      /* mean gray level of the crop, 0..255 */
} vs_quality;

typedef enum vs_gate { VS_GATE_SEARCH, VS_GATE_VERIFY, VS_GATE_ENROLL } vs_gate;

/* Scores one face. det: the detection (box in pixels of the source image,
 * keypoints for pose); aligned_crop: the face warped by vs_align_matrix,
 * RGB or gray; sharpness is calibrated for the 224 px crop the embedder uses.
 * cfg NULL = defaults; det NULL gives det and size 0 (score 0). A crop smaller than 3x3 (or NULL) gets sharpness and
 * exposure 0; fewer than 4 keypoints leave the pose unknown (angles 0, pose
 * factor 0.5). */
void vs_quality_assess(const vs_quality_cfg *cfg, const vs_face_det *det,
                       const vs_image *aligned_crop, vs_quality *out);

/* 1 when q->score reaches the gate's threshold. cfg NULL = defaults. */
int vs_quality_passes(const vs_quality_cfg *cfg, const vs_quality *q, vs_gate gate);

/* NULL when the face passes the gate, else a static string naming the main
 * reason: "SMALL_BOUNDING_BOX", "LOW_CONFIDENCE", "LOW_SHARPNESS",
 * "EXTREME_POSE", "LOW_BRIGHTNESS" (under-exposed) or "LOW_QUALITY" (over-
 * exposed, or several factors each a little low). det may be NULL. */
const char *vs_quality_reject_reason(const vs_quality_cfg *cfg, const vs_quality *q,
                                     const vs_face_det *det, vs_gate gate);

#endif
