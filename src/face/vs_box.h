/* vs_box.h - face detections (box, score, keypoints), IoU and non-maximum
 * suppression. Pure geometry: no allocation, no I/O. */
#ifndef VS_BOX_H
#define VS_BOX_H

/* Keypoint indices, in BlazeFace output order. "Right"/"left" are the
 * subject's: the right eye appears on the left of the image. */
enum {
    VS_KP_RIGHT_EYE = 0,
    VS_KP_LEFT_EYE = 1,
    VS_KP_NOSE = 2,
    VS_KP_MOUTH = 3,
    VS_KP_RIGHT_EAR = 4,
    VS_KP_LEFT_EAR = 5,
    VS_KP_MAX = 6
};

/* One detected face, in pixels of the image it was found in. */
typedef struct vs_face_det {
    float x, y, w, h;  /* box: top-left corner and size, pixels */
    float score;       /* detector confidence in [0,1] */
    float kp[6][2];    /* keypoints (x, y): right eye (left in image), left eye,
                        * nose tip, mouth centre, right ear, left ear */
    int n_kp;          /* how many of kp are valid (0..6, 6 for BlazeFace) */
} vs_face_det;

/* Intersection over union of the two boxes, in [0,1]; 0 when either box is
 * empty (w or h <= 0). */
float vs_box_iou(const vs_face_det *a, const vs_face_det *b);

/* Non-maximum suppression in place. Sorts dets[0..n) by score, descending,
 * then repeatedly keeps the best remaining detection and removes every other
 * one whose IoU with it is above iou_threshold. Survivors are compacted into
 * dets[0..k), best first; returns k. With weighted = 1 (BlazeFace/MediaPipe
 * "weighted NMS") the kept box and keypoints become the score-weighted mean of
 * the cluster (the kept detection plus those it removed) and its score the
 * cluster's maximum. n <= 0 or dets == NULL returns 0. */
int vs_nms(vs_face_det *dets, int n, float iou_threshold, int weighted);

#endif
