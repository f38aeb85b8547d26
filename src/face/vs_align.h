/* vs_align.h - similarity transforms that bring detector keypoints onto the
 * ArcFace template, so the embedder always sees eyes, nose and mouth at the
 * same place. Pure maths: the warp itself is vs_image_warp_affine. */
#ifndef VS_ALIGN_H
#define VS_ALIGN_H

#include "vs_err.h"

/* Side of the canonical template, pixels. */
#define VS_ALIGN_TEMPLATE_SIZE 112

/* The ArcFace 112x112 template for the 4 keypoints used for alignment, in the
 * detector's order: right eye (left in image), left eye, nose tip, mouth
 * centre. */
extern const float vs_align_template[4][2];

/* Least-squares similarity transform (rotation + uniform scale +
 * translation, no reflection; Umeyama 1991) mapping src[i] onto dst[i],
 * i < n. Writes the 2x3 matrix [a -b tx; b a ty] row-major into m:
 *   x' = m[0]*x + m[1]*y + m[2],  y' = m[3]*x + m[4]*y + m[5].
 * Errors: VS_ERR_INVALID_ARG when n < 2, a coordinate is not finite, or the
 * src points all coincide (no scale or rotation can be recovered). */
vs_err vs_similarity_estimate(const float src[][2], const float dst[][2], int n,
                              float m[6], vs_error *err);

/* Inverse of the affine map m (any 2x3, not only similarities). A singular m
 * (determinant 0) gives an all-zero inv. inv may not alias m. */
void vs_affine_invert(const float m[6], float inv[6]);

/* The matrix for warping a face to an out_size x out_size crop: the template
 * is scaled by out_size/112 (224 -> x2), the image->template similarity is
 * estimated from kp (right eye, left eye, nose tip, mouth centre, image
 * pixels) and its inverse is returned in src_from_dst, i.e. the crop->image
 * mapping that vs_image_warp_affine samples with.
 * Errors: VS_ERR_INVALID_ARG for out_size <= 0, non-finite or coincident
 * keypoints, or keypoints so badly arranged that the fit has no scale. */
vs_err vs_align_matrix(const float kp[4][2], int out_size, float src_from_dst[6],
                       vs_error *err);

/* dlib's face-chip template for the same 4 keypoints, in the unit square of
 * its mean face shape (see vs_align.c for how it was derived). */
extern const float vs_align_dlib_template[4][2];

/* The crop->image matrix of dlib's face chip (get_face_chip_details): the
 * unit template with `padding` (dlib's recognition chips use 0.25) around it,
 * scaled to out_size (150). Errors as vs_align_matrix, and for a padding
 * outside 0..2. */
vs_err vs_align_dlib_matrix(const float kp[4][2], int out_size, float padding, float src_from_dst[6],
                            vs_error *err);

#endif
