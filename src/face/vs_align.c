/* vs_align.c - closed-form 2-D similarity fit (Umeyama without reflection)
 * and the ArcFace alignment matrix. Called once per face with 4 points, so
 * clarity and double-precision accumulation matter more than speed. */
#include "vs_align.h"

#include <math.h>

const float vs_align_template[4][2] = {
    {38.2946f, 51.6963f},  /* right eye (left in image) */
    {73.5318f, 51.5014f},  /* left eye */
    {56.0252f, 71.7366f},  /* nose tip */
    {56.1396f, 92.2848f},  /* mouth centre */
};

/* In 2-D a rotation+scale is the complex number z = a + ib acting on points
 * p = x + iy, and minimising sum |d_i - z s_i - t|^2 over z and t is ordinary
 * complex least squares: t aligns the centroids, and
 *   z = sum conj(s_i') d_i' / sum |s_i'|^2   (primed = centred).
 * This equals Umeyama's solution with det(R) = +1 forced, because every
 * z != 0 is a proper rotation times a positive scale; no SVD is needed. */
vs_err vs_similarity_estimate(const float src[][2], const float dst[][2], int n,
                              float m[6], vs_error *err) {
    if (!src || !dst || !m || n < 2)
        return vs_fail(err, VS_ERR_INVALID_ARG, "similarity: need at least 2 point pairs, got %d", n);
    double sx = 0, sy = 0, dx = 0, dy = 0, mag = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(src[i][0]) || !isfinite(src[i][1]) || !isfinite(dst[i][0]) ||
            !isfinite(dst[i][1]))
            return vs_fail(err, VS_ERR_INVALID_ARG, "similarity: point %d is not finite", i);
        sx += src[i][0];
        sy += src[i][1];
        dx += dst[i][0];
        dy += dst[i][1];
        mag += fabs(src[i][0]) + fabs(src[i][1]);
    }
    sx /= n;
    sy /= n;
    dx /= n;
    dy /= n;
    double var = 0, re = 0, im = 0;
    for (int i = 0; i < n; i++) {
        double px = src[i][0] - sx, py = src[i][1] - sy;
        double qx = dst[i][0] - dx, qy = dst[i][1] - dy;
        var += px * px + py * py;
        re += px * qx + py * qy;  /* Re(conj(p) q) */
        im += px * qy - py * qx;  /* Im(conj(p) q) */
    }
    /* "All points coincide" relative to their magnitude: float inputs carry
     * ~1e-7 relative error, so a spread below ~1e-6 of the coordinates'
     * size (squared: 1e-12) is noise, not geometry. */
    double scale = mag / (2.0 * n);
    if (!(var / n > 1e-12 * (scale * scale + 1e-6)))
        return vs_fail(err, VS_ERR_INVALID_ARG, "similarity: the %d source points coincide", n);
    double a = re / var, b = im / var;
    m[0] = (float)a;
    m[1] = (float)-b;
    m[2] = (float)(dx - (a * sx - b * sy));
    m[3] = (float)b;
    m[4] = (float)a;
    m[5] = (float)(dy - (b * sx + a * sy));
    return VS_OK;
}

/* Inverts [A t] as [A^-1  -A^-1 t], in double so that inverting twice gives
 * the original back to float precision. */
void vs_affine_invert(const float m[6], float inv[6]) {
    double a = m[0], b = m[1], c = m[3], d = m[4];
    double det = a * d - b * c;
    if (det == 0.0 || !isfinite(det)) {
        for (int i = 0; i < 6; i++)
            inv[i] = 0.0f;
        return;
    }
    double ia = d / det, ib = -b / det, ic = -c / det, id = a / det;
    inv[0] = (float)ia;
    inv[1] = (float)ib;
    inv[2] = (float)(-(ia * m[2] + ib * m[5]));
    inv[3] = (float)ic;
    inv[4] = (float)id;
    inv[5] = (float)(-(ic * m[2] + id * m[5]));
}

/* dlib's mean face (the 68-point shape of get_face_chip_details, unit square)
 * reduced to our 4 keypoints: eye centres = mean of each eye's 6 points,
 * nose tip = point 30, mouth centre = mean of the 12 outer-lip points. */
const float vs_align_dlib_template[4][2] = {
    {0.2254918f, 0.2159903f},  /* right eye (left in image), points 36-41 */
    {0.7547613f, 0.2159903f},  /* left eye, points 42-47 */
    {0.4901270f, 0.5156250f},  /* nose tip, point 30 */
    {0.4901266f, 0.8076588f},  /* mouth centre, points 48-59 */
};

/* Fits image->crop onto dst (crop pixels) and returns crop->image, because a
 * warp samples the source for every destination pixel. */
static vs_err fit_inverse(const float kp[4][2], const float dst[4][2], float src_from_dst[6], vs_error *err) {
    float fwd[6];
    vs_err rc = vs_similarity_estimate(kp, (const float(*)[2])dst, 4, fwd, err);
    if (rc != VS_OK)
        return rc;
    /* A fit with (almost) no scale would blow one image pixel up to the whole
     * crop: the keypoints do not look like a face. */
    double det = (double)fwd[0] * fwd[4] - (double)fwd[1] * fwd[3];
    if (!(det > 1e-12))
        return vs_fail(err, VS_ERR_INVALID_ARG, "align: keypoints do not fit the face template");
    vs_affine_invert(fwd, src_from_dst);
    return VS_OK;
}

vs_err vs_align_matrix(const float kp[4][2], int out_size, float src_from_dst[6], vs_error *err) {
    if (!kp || !src_from_dst || out_size <= 0)
        return vs_fail(err, VS_ERR_INVALID_ARG, "align: bad output size %d", out_size);
    float dst[4][2];
    float s = (float)out_size / (float)VS_ALIGN_TEMPLATE_SIZE;
    for (int i = 0; i < 4; i++) {
        dst[i][0] = vs_align_template[i][0] * s;
        dst[i][1] = vs_align_template[i][1] * s;
    }
    return fit_inverse(kp, (const float(*)[2])dst, src_from_dst, err);
}

/* dlib places the unit mean face at (padding + p) / (1 + 2 padding) of the
 * chip, so padding 0.25 leaves a quarter face of margin on every side. */
vs_err vs_align_dlib_matrix(const float kp[4][2], int out_size, float padding, float src_from_dst[6],
                            vs_error *err) {
    if (!kp || !src_from_dst || out_size <= 0 || !(padding >= 0 && padding <= 2))
        return vs_fail(err, VS_ERR_INVALID_ARG, "align: bad chip size %d or padding %g", out_size, padding);
    float dst[4][2];
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 2; k++)
            dst[i][k] = (padding + vs_align_dlib_template[i][k]) / (1 + 2 * padding) * (float)out_size;
    return fit_inverse(kp, (const float(*)[2])dst, src_from_dst, err);
}
