/* test_face_math.c - the pure maths of src/face: IoU and (weighted) NMS,
 * similarity fit and alignment matrix, perceptual hash, quality scoring and
 * descriptor similarity. Synthetic inputs only: no files, no models. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "vs_align.h"
#include "vs_alloc.h"
#include "vs_box.h"
#include "vs_err.h"
#include "vs_image.h"
#include "vs_phash.h"
#include "vs_quality.h"
#include "vs_similarity.h"

#define PI_D 3.14159265358979323846

/* |a - b| <= eps, and false for NaN: cmocka 1.1.5's assert_float_equal
 * passes when a value is NaN, which would hide exactly the bugs (0 * inf,
 * 0 / 0) these tests look for. */
#define assert_near(a, b, eps)                                                        \
    do {                                                                              \
        double a_ = (double)(a), b_ = (double)(b);                                    \
        if (!(fabs(a_ - b_) <= (double)(eps))) {                                      \
            print_error("%s = %.9g, expected %.9g +- %g\n", #a, a_, b_, (double)(eps)); \
            fail();                                                                   \
        }                                                                             \
    } while (0)

/* ---- helpers ----------------------------------------------------------- */

/* Deterministic pseudo-random numbers (LCG), so failures reproduce. */
static uint32_t rng_state = 12345u;
static uint32_t rng_u32(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}
/* Uniform in [-1, 1). */
static double rng_sym(void) { return (rng_u32() & 0xffffff) / (double)0x800000 - 1.0; }

/* A zeroed image made with the project allocator (vs_image_alloc belongs to
 * another module; these tests only rely on the struct). */
static vs_image img_new(int w, int h, int c) {
    vs_image im = {w, h, c, vs_calloc((size_t)w * h * c, 1)};
    assert_non_null(im.data);
    return im;
}
static void img_free(vs_image *im) {
    vs_free(im->data);
    im->data = NULL;
}
static uint8_t clamp_u8(double v) { return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)(v + 0.5); }
static void img_set(vs_image *im, int x, int y, double r, double g, double b) {
    uint8_t *p = im->data + ((size_t)y * im->width + x) * im->channels;
    if (im->channels == 1) {
        p[0] = clamp_u8(r);
    } else {
        p[0] = clamp_u8(r);
        p[1] = clamp_u8(g);
        p[2] = clamp_u8(b);
    }
}

/* A smooth "photo-like" RGB image: gradients plus a few Gaussian blobs. */
static vs_image img_scene(int w, int h) {
    vs_image im = img_new(w, h, 3);
    const double bx[4] = {0.3, 0.7, 0.5, 0.15}, by[4] = {0.35, 0.3, 0.75, 0.8};
    const double br[4] = {0.12, 0.18, 0.1, 0.08}, ba[4] = {120, -90, 100, 70};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double u = (x + 0.5) / w, v = (y + 0.5) / h;
            double g = 60 + 80 * u + 30 * v;
            for (int k = 0; k < 4; k++) {
                double d2 = (u - bx[k]) * (u - bx[k]) + (v - by[k]) * (v - by[k]);
                g += ba[k] * exp(-d2 / (2 * br[k] * br[k]));
            }
            /* Hard-edged shapes and mild noise, so the hash has detail to
             * lose. */
            if (u > 0.55 && u < 0.8 && v > 0.55 && v < 0.7)
                g -= 60;
            if (u > 0.1 && u < 0.2 && v > 0.1 && v < 0.5)
                g += 50;
            g += 4 * rng_sym();
            img_set(&im, x, y, g + 10, g, g - 15);
        }
    return im;
}

/* Bilinear resize written here, independent of src/image. */
static vs_image img_resize(const vs_image *s, int w, int h) {
    vs_image d = img_new(w, h, s->channels);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double sx = (x + 0.5) * s->width / w - 0.5, sy = (y + 0.5) * s->height / h - 0.5;
            if (sx < 0) sx = 0;
            if (sy < 0) sy = 0;
            int x0 = (int)sx, y0 = (int)sy;
            int x1 = x0 + 1 < s->width ? x0 + 1 : x0, y1 = y0 + 1 < s->height ? y0 + 1 : y0;
            double fx = sx - x0, fy = sy - y0;
            for (int c = 0; c < s->channels; c++) {
#define PX(xx, yy) s->data[((size_t)(yy) * s->width + (xx)) * s->channels + c]
                double v = (1 - fy) * ((1 - fx) * PX(x0, y0) + fx * PX(x1, y0)) +
                           fy * ((1 - fx) * PX(x0, y1) + fx * PX(x1, y1));
#undef PX
                d.data[((size_t)y * w + x) * s->channels + c] = clamp_u8(v);
            }
        }
    return d;
}

/* Box blur of radius r (clamped at the borders), in a new image. */
static vs_image img_blur(const vs_image *s, int r) {
    vs_image d = img_new(s->width, s->height, s->channels);
    for (int y = 0; y < s->height; y++)
        for (int x = 0; x < s->width; x++)
            for (int c = 0; c < s->channels; c++) {
                int sum = 0, n = 0;
                for (int j = -r; j <= r; j++)
                    for (int i = -r; i <= r; i++) {
                        int xx = x + i, yy = y + j;
                        if (xx < 0 || yy < 0 || xx >= s->width || yy >= s->height)
                            continue;
                        sum += s->data[((size_t)yy * s->width + xx) * s->channels + c];
                        n++;
                    }
                d.data[((size_t)y * s->width + x) * s->channels + c] = (uint8_t)(sum / n);
            }
    return d;
}

/* Applies the 2x3 matrix m to (x, y). */
static void apply(const float m[6], float x, float y, float *ox, float *oy) {
    *ox = m[0] * x + m[1] * y + m[2];
    *oy = m[3] * x + m[4] * y + m[5];
}

/* A detection with the given box and score, no keypoints. */
static vs_face_det det_box(float x, float y, float w, float h, float score) {
    vs_face_det d;
    memset(&d, 0, sizeof d);
    d.x = x;
    d.y = y;
    d.w = w;
    d.h = h;
    d.score = score;
    return d;
}

/* ---- boxes and NMS ------------------------------------------------------ */

static void test_iou(void **state) {
    (void)state;
    vs_face_det a = det_box(0, 0, 10, 10, 1), b = det_box(5, 0, 10, 10, 1);
    vs_face_det c = det_box(20, 20, 5, 5, 1), e = det_box(0, 0, 0, 10, 1);
    assert_near(vs_box_iou(&a, &a), 1.0f, 1e-6);
    assert_near(vs_box_iou(&a, &b), 50.0f / 150.0f, 1e-6);
    assert_near(vs_box_iou(&b, &a), 50.0f / 150.0f, 1e-6);
    assert_near(vs_box_iou(&a, &c), 0.0f, 0);
    assert_near(vs_box_iou(&a, &e), 0.0f, 0);
    /* Touching edges do not overlap. */
    vs_face_det t = det_box(10, 0, 10, 10, 1);
    assert_near(vs_box_iou(&a, &t), 0.0f, 0);
}

static void test_nms_keeps_higher_score(void **state) {
    (void)state;
    vs_face_det d[2] = {det_box(0, 0, 100, 100, 0.6f), det_box(5, 5, 100, 100, 0.9f)};
    assert_true(vs_box_iou(&d[0], &d[1]) > 0.8f);
    int k = vs_nms(d, 2, 0.5f, 0);
    assert_int_equal(k, 1);
    assert_near(d[0].score, 0.9f, 0);
    assert_near(d[0].x, 5.0f, 0);
    assert_near(d[0].y, 5.0f, 0);
}

static void test_nms_disjoint_both_kept_sorted(void **state) {
    (void)state;
    vs_face_det d[3] = {det_box(0, 0, 10, 10, 0.5f), det_box(100, 0, 10, 10, 0.8f),
                        det_box(0, 100, 10, 10, 0.7f)};
    int k = vs_nms(d, 3, 0.3f, 0);
    assert_int_equal(k, 3);
    assert_near(d[0].score, 0.8f, 0);
    assert_near(d[1].score, 0.7f, 0);
    assert_near(d[2].score, 0.5f, 0);
    assert_near(d[0].x, 100.0f, 0);
    /* Same boxes, weighted: nothing to merge, nothing changes. */
    vs_face_det w[2] = {det_box(0, 0, 10, 10, 0.5f), det_box(100, 0, 10, 10, 0.8f)};
    assert_int_equal(vs_nms(w, 2, 0.3f, 1), 2);
    assert_near(w[1].x, 0.0f, 0);
    assert_near(w[1].score, 0.5f, 0);
}

/* A overlaps B and B overlaps C, but A does not overlap C: greedy NMS removes
 * B (suppressed by A) and must then keep C, because the suppressor is gone. */
static void test_nms_chain_is_greedy(void **state) {
    (void)state;
    vs_face_det d[3] = {det_box(0, 0, 10, 10, 0.9f), det_box(4, 0, 10, 10, 0.8f),
                        det_box(8, 0, 10, 10, 0.7f)};
    assert_true(vs_box_iou(&d[0], &d[1]) > 0.4f);
    assert_true(vs_box_iou(&d[1], &d[2]) > 0.4f);
    assert_true(vs_box_iou(&d[0], &d[2]) < 0.4f);
    int k = vs_nms(d, 3, 0.4f, 0);
    assert_int_equal(k, 2);
    assert_near(d[0].x, 0.0f, 0);
    assert_near(d[1].x, 8.0f, 0);
}

static void test_nms_weighted_averages(void **state) {
    (void)state;
    vs_face_det d[3] = {det_box(2, 4, 100, 100, 0.3f), det_box(0, 0, 100, 100, 0.9f),
                        det_box(500, 500, 50, 50, 0.4f)};
    d[0].n_kp = d[1].n_kp = 6;
    for (int k = 0; k < 6; k++) {
        d[0].kp[k][0] = 10.0f + k;
        d[0].kp[k][1] = 20.0f;
        d[1].kp[k][0] = 14.0f + k;
        d[1].kp[k][1] = 24.0f;
    }
    int k = vs_nms(d, 3, 0.5f, 1);
    assert_int_equal(k, 2);
    /* x = (0*0.9 + 2*0.3)/1.2 = 0.5, y = (4*0.3)/1.2 = 1, score = max. */
    assert_near(d[0].x, 0.5f, 1e-5);
    assert_near(d[0].y, 1.0f, 1e-5);
    assert_near(d[0].w, 100.0f, 1e-4);
    assert_near(d[0].score, 0.9f, 0);
    for (int j = 0; j < 6; j++) {
        assert_near(d[0].kp[j][0], 13.0f + j, 1e-4); /* (14*.9+10*.3)/1.2 */
        assert_near(d[0].kp[j][1], 23.0f, 1e-4);
    }
    assert_int_equal(d[0].n_kp, 6);
    /* The unrelated box survives untouched. */
    assert_near(d[1].x, 500.0f, 0);
    assert_near(d[1].score, 0.4f, 0);

    /* The same input without weighting keeps the best box as is. */
    vs_face_det p[2] = {det_box(2, 4, 100, 100, 0.3f), det_box(0, 0, 100, 100, 0.9f)};
    assert_int_equal(vs_nms(p, 2, 0.5f, 0), 1);
    assert_near(p[0].x, 0.0f, 0);
}

static void test_nms_empty_and_nan(void **state) {
    (void)state;
    vs_face_det d[2] = {det_box(0, 0, 10, 10, NAN), det_box(0, 0, 10, 10, 0.2f)};
    assert_int_equal(vs_nms(d, 0, 0.5f, 0), 0);
    assert_int_equal(vs_nms(NULL, 5, 0.5f, 1), 0);
    assert_int_equal(vs_nms(d, -1, 0.5f, 1), 0);
    /* A NaN score never seeds a cluster ahead of a real one. */
    assert_int_equal(vs_nms(d, 2, 0.5f, 0), 1);
    assert_near(d[0].score, 0.2f, 0);
}

/* ---- alignment ----------------------------------------------------------- */

/* Builds [s cos, -s sin, tx; s sin, s cos, ty]. */
static void make_similarity(double deg, double s, double tx, double ty, float m[6]) {
    double c = s * cos(deg * PI_D / 180), n = s * sin(deg * PI_D / 180);
    m[0] = (float)c;
    m[1] = (float)-n;
    m[2] = (float)tx;
    m[3] = (float)n;
    m[4] = (float)c;
    m[5] = (float)ty;
}

static void test_similarity_recovers_exact(void **state) {
    (void)state;
    float truth[6], src[4][2], dst[4][2], m[6];
    make_similarity(30, 1.7, 40.5, -12.25, truth);
    for (int i = 0; i < 4; i++) {
        src[i][0] = vs_align_template[i][0];
        src[i][1] = vs_align_template[i][1];
        apply(truth, src[i][0], src[i][1], &dst[i][0], &dst[i][1]);
    }
    vs_error err;
    vs_error_clear(&err);
    assert_int_equal(vs_similarity_estimate((const float(*)[2])src, (const float(*)[2])dst, 4, m, &err),
                     VS_OK);
    for (int i = 0; i < 6; i++)
        assert_near(m[i], truth[i], 1e-4);
    /* The structure [a -b; b a] of a similarity. */
    assert_near(m[0], m[4], 0);
    assert_near(m[1], -m[3], 0);
}

static void test_similarity_with_noise(void **state) {
    (void)state;
    float truth[6], src[4][2], dst[4][2], m[6];
    make_similarity(-12, 0.6, 300, 150, truth);
    rng_state = 7;
    for (int i = 0; i < 4; i++) {
        /* Detector-sized coordinates: a face of ~120 px in a photo. */
        src[i][0] = 200 + 2.0f * vs_align_template[i][0];
        src[i][1] = 100 + 2.0f * vs_align_template[i][1];
        apply(truth, src[i][0], src[i][1], &dst[i][0], &dst[i][1]);
        dst[i][0] += (float)(0.5 * rng_sym());
        dst[i][1] += (float)(0.5 * rng_sym());
    }
    assert_int_equal(vs_similarity_estimate((const float(*)[2])src, (const float(*)[2])dst, 4, m, NULL),
                     VS_OK);
    double rss = 0, rss_truth = 0;
    for (int i = 0; i < 4; i++) {
        float x, y, tx, ty;
        apply(m, src[i][0], src[i][1], &x, &y);
        apply(truth, src[i][0], src[i][1], &tx, &ty);
        rss += (x - dst[i][0]) * (x - dst[i][0]) + (y - dst[i][1]) * (y - dst[i][1]);
        rss_truth += (tx - dst[i][0]) * (tx - dst[i][0]) + (ty - dst[i][1]) * (ty - dst[i][1]);
    }
    /* Least squares: no worse than the true transform, and small. */
    assert_true(rss <= rss_truth + 1e-6);
    assert_true(sqrt(rss / 4) < 0.5);
    double scale = hypot(m[0], m[3]), angle = atan2(m[3], m[0]) * 180 / PI_D;
    assert_near(scale, 0.6, 0.01);
    assert_near(angle, -12.0, 1.0);
}

static void test_similarity_rejects_bad_input(void **state) {
    (void)state;
    float same[4][2] = {{5, 5}, {5, 5}, {5, 5}, {5, 5}};
    float dst[4][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
    float m[6];
    vs_error err;
    vs_error_clear(&err);
    assert_int_equal(vs_similarity_estimate((const float(*)[2])same, (const float(*)[2])dst, 4, m, &err),
                     VS_ERR_INVALID_ARG);
    assert_int_equal(err.code, VS_ERR_INVALID_ARG);
    assert_true(strlen(err.msg) > 0);
    assert_int_equal(vs_similarity_estimate((const float(*)[2])dst, (const float(*)[2])dst, 1, m, NULL),
                     VS_ERR_INVALID_ARG);
    float nan_pts[4][2] = {{0, 0}, {1, 0}, {NAN, 1}, {1, 1}};
    assert_int_equal(vs_similarity_estimate((const float(*)[2])nan_pts, (const float(*)[2])dst, 4, m, NULL),
                     VS_ERR_INVALID_ARG);
    /* Two distinct points are enough. */
    assert_int_equal(vs_similarity_estimate((const float(*)[2])dst, (const float(*)[2])dst, 2, m, NULL),
                     VS_OK);
    assert_near(m[0], 1.0f, 1e-6);
}

/* A mirror image cannot be matched by a rotation: the fit stays a proper
 * similarity (positive determinant) and leaves a residual. */
static void test_similarity_never_reflects(void **state) {
    (void)state;
    float src[4][2] = {{0, 0}, {10, 0}, {0, 5}, {3, 9}}, dst[4][2], m[6];
    for (int i = 0; i < 4; i++) {
        dst[i][0] = -src[i][0];
        dst[i][1] = src[i][1];
    }
    assert_int_equal(vs_similarity_estimate((const float(*)[2])src, (const float(*)[2])dst, 4, m, NULL),
                     VS_OK);
    assert_true(m[0] * m[4] - m[1] * m[3] >= 0);
    double rss = 0;
    for (int i = 0; i < 4; i++) {
        float x, y;
        apply(m, src[i][0], src[i][1], &x, &y);
        rss += (x - dst[i][0]) * (x - dst[i][0]) + (y - dst[i][1]) * (y - dst[i][1]);
    }
    assert_true(rss > 1.0);
}

static void test_affine_invert(void **state) {
    (void)state;
    float m[6], inv[6], back[6];
    make_similarity(30, 1.7, 40.5, -12.25, m);
    m[1] += 0.3f; /* a general affine, not only similarities */
    vs_affine_invert(m, inv);
    vs_affine_invert(inv, back);
    for (int i = 0; i < 6; i++)
        assert_near(back[i], m[i], 1e-4);
    /* inv undoes m on points. */
    float x, y, bx, by;
    apply(m, 17.0f, -3.0f, &x, &y);
    apply(inv, x, y, &bx, &by);
    assert_near(bx, 17.0f, 1e-4);
    assert_near(by, -3.0f, 1e-4);
    /* Singular -> zeros. */
    float sing[6] = {1, 2, 3, 2, 4, 5};
    vs_affine_invert(sing, inv);
    for (int i = 0; i < 6; i++)
        assert_near(inv[i], 0.0f, 0);
}

static void test_align_matrix(void **state) {
    (void)state;
    /* Keypoints already where the 224 template puts them: identity. */
    float kp[4][2], m[6];
    for (int i = 0; i < 4; i++) {
        kp[i][0] = 2 * vs_align_template[i][0];
        kp[i][1] = 2 * vs_align_template[i][1];
    }
    assert_int_equal(vs_align_matrix((const float(*)[2])kp, 224, m, NULL), VS_OK);
    const float id[6] = {1, 0, 0, 0, 1, 0};
    for (int i = 0; i < 6; i++)
        assert_near(m[i], id[i], 1e-4);

    /* A face rotated, scaled and moved in a photo: the returned crop->image
     * map sends the template points of a 112 crop onto the keypoints. */
    float img_from_tpl[6];
    make_similarity(-25, 2.4, 310, 95, img_from_tpl);
    for (int i = 0; i < 4; i++)
        apply(img_from_tpl, vs_align_template[i][0], vs_align_template[i][1], &kp[i][0], &kp[i][1]);
    assert_int_equal(vs_align_matrix((const float(*)[2])kp, 112, m, NULL), VS_OK);
    for (int i = 0; i < 6; i++)
        assert_near(m[i], img_from_tpl[i], 1e-3);
    /* At 224 the same face maps crop (2x, 2y) to where 112 mapped (x, y). */
    float m224[6];
    assert_int_equal(vs_align_matrix((const float(*)[2])kp, 224, m224, NULL), VS_OK);
    float a, b, c, d;
    apply(m, 50, 60, &a, &b);
    apply(m224, 100, 120, &c, &d);
    assert_near(a, c, 1e-2);
    assert_near(b, d, 1e-2);

    vs_error err;
    vs_error_clear(&err);
    assert_int_equal(vs_align_matrix((const float(*)[2])kp, 0, m, &err), VS_ERR_INVALID_ARG);
    float same[4][2] = {{3, 3}, {3, 3}, {3, 3}, {3, 3}};
    assert_int_equal(vs_align_matrix((const float(*)[2])same, 224, m, &err), VS_ERR_INVALID_ARG);
}

/* dlib's chip: the unit template with padding p sits at (p + t) / (1 + 2p) of
 * the chip, so keypoints at exactly those pixels give the identity, and a
 * face twice as far apart in the photo gives a map that doubles. */
static void test_align_dlib_matrix(void **state) {
    (void)state;
    float kp[4][2], m[6];
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 2; k++) kp[i][k] = (0.25f + vs_align_dlib_template[i][k]) / 1.5f * 150;
    assert_int_equal(vs_align_dlib_matrix((const float(*)[2])kp, 150, 0.25f, m, NULL), VS_OK);
    const float id[6] = {1, 0, 0, 0, 1, 0};
    for (int i = 0; i < 6; i++) assert_near(m[i], id[i], 1e-4);
    /* the eyes of the template are level and the nose is between them */
    assert_near(vs_align_dlib_template[0][1], vs_align_dlib_template[1][1], 1e-6);
    assert_true(vs_align_dlib_template[2][0] > vs_align_dlib_template[0][0] &&
                vs_align_dlib_template[2][0] < vs_align_dlib_template[1][0]);
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 2; k++) kp[i][k] = 2 * kp[i][k] + 40;
    assert_int_equal(vs_align_dlib_matrix((const float(*)[2])kp, 150, 0.25f, m, NULL), VS_OK);
    assert_near(m[0], 2, 1e-4);
    assert_near(m[1], 0, 1e-4);
    assert_near(m[2], 40, 1e-3);
    /* more padding shows more around the face: a larger crop->image scale */
    float m2[6];
    assert_int_equal(vs_align_dlib_matrix((const float(*)[2])kp, 150, 0.5f, m2, NULL), VS_OK);
    assert_true(m2[0] > m[0]);
    vs_error err;
    vs_error_clear(&err);
    assert_int_equal(vs_align_dlib_matrix((const float(*)[2])kp, 150, -0.1f, m, &err), VS_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "padding"));
    assert_int_equal(vs_align_dlib_matrix((const float(*)[2])kp, 0, 0.25f, m, &err), VS_ERR_INVALID_ARG);
}

/* ---- perceptual hash ------------------------------------------------------ */

static void test_phash_hex_and_hamming(void **state) {
    (void)state;
    char hex[17];
    vs_phash_hex(0x0123456789abcdefULL, hex);
    assert_string_equal(hex, "0123456789abcdef");
    vs_phash_hex(0, hex);
    assert_string_equal(hex, "0000000000000000");
    vs_phash_hex(UINT64_MAX, hex);
    assert_string_equal(hex, "ffffffffffffffff");
    assert_int_equal(vs_hamming64(0, UINT64_MAX), 64);
    assert_int_equal(vs_hamming64(0xbULL, 0), 3);
    assert_int_equal(vs_hamming64(0x8000000000000001ULL, 0x8000000000000001ULL), 0);
}

/* A vertical edge (left half white) has, among the 8 lowest frequencies,
 * only horizontal odd terms: u=1 and u=5 positive, u=3 and u=7 negative.
 * With the DC bit this pins the bit order: 0xc4 in the top byte. A
 * horizontal edge puts the same pattern in column 0: bits 63, 55, 23. */
static void test_phash_bit_layout(void **state) {
    (void)state;
    vs_image v = img_new(64, 64, 1), h = img_new(64, 64, 1);
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++) {
            v.data[y * 64 + x] = x < 32 ? 255 : 0;
            h.data[y * 64 + x] = y < 32 ? 255 : 0;
        }
    char hex[17];
    vs_phash_hex(vs_phash(&v), hex);
    assert_string_equal(hex, "c400000000000000");
    vs_phash_hex(vs_phash(&h), hex);
    assert_string_equal(hex, "8080000000800000");
    img_free(&v);
    img_free(&h);
}

static void test_phash_constant_is_stable(void **state) {
    (void)state;
    vs_image a = img_new(64, 64, 3), b = img_new(45, 101, 1), k = img_new(50, 50, 3);
    memset(a.data, 128, 64 * 64 * 3);
    memset(b.data, 200, 45 * 101);
    /* Sizes that enlarge (1x1, 3 wide) or shrink unevenly into 32 cells. */
    const int sizes[][2] = {{1, 1}, {3, 200}, {200, 3}, {77, 77}, {33, 7}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        vs_image c = img_new(sizes[i][0], sizes[i][1], 3);
        memset(c.data, 90, (size_t)sizes[i][0] * sizes[i][1] * 3);
        assert_true(vs_phash(&c) == 0x8000000000000000ULL);
        img_free(&c);
    }
    /* Only the DC bit: no AC coefficient rises above a median of zero. At
     * 45x101 source pixels straddle the 32x32 cells unevenly, so this also
     * checks that the area average weights them by overlap. */
    assert_true(vs_phash(&a) == 0x8000000000000000ULL);
    assert_true(vs_phash(&a) == vs_phash(&a));
    assert_true(vs_phash(&b) == 0x8000000000000000ULL);
    /* Black has no DC either. */
    assert_true(vs_phash(&k) == 0);
    vs_image empty = {0, 0, 3, NULL};
    assert_true(vs_phash(&empty) == 0);
    img_free(&a);
    img_free(&b);
    img_free(&k);
}

static void test_phash_gray_equals_rgb_gray(void **state) {
    (void)state;
    vs_image rgb = img_scene(120, 90), gray = img_new(120, 90, 1);
    for (int i = 0; i < 120 * 90; i++) {
        uint8_t g = rgb.data[3 * i + 1];
        rgb.data[3 * i] = rgb.data[3 * i + 2] = g;
        gray.data[i] = g;
    }
    assert_true(vs_phash(&rgb) == vs_phash(&gray));
    img_free(&rgb);
    img_free(&gray);
}

/* Luma, not one channel: red carries a pattern, green its negative. Luma
 * (0.299 R + 0.587 G) follows green, so the hash is that of the negative. */
static void test_phash_uses_luma(void **state) {
    (void)state;
    vs_image pat = img_scene(96, 64), rgb = img_new(96, 64, 3), neg = img_new(96, 64, 1);
    for (int i = 0; i < 96 * 64; i++) {
        uint8_t p = pat.data[3 * i + 1];
        rgb.data[3 * i] = p;
        rgb.data[3 * i + 1] = (uint8_t)(255 - p);
        rgb.data[3 * i + 2] = 0;
        neg.data[i] = (uint8_t)(255 - p);
    }
    assert_true(vs_hamming64(vs_phash(&rgb), vs_phash(&neg)) <= 2);
    assert_true(vs_hamming64(vs_phash(&rgb), vs_phash(&pat)) >= 20);
    img_free(&pat);
    img_free(&rgb);
    img_free(&neg);
}

static void test_phash_near_duplicates(void **state) {
    (void)state;
    vs_image base = img_scene(240, 180);
    uint64_t h0 = vs_phash(&base);

    vs_image bright = img_new(240, 180, 3);
    for (size_t i = 0; i < (size_t)240 * 180 * 3; i++)
        bright.data[i] = clamp_u8(base.data[i] * 1.05 + 12);
    vs_image small = img_resize(&base, 120, 90);
    vs_image big = img_resize(&base, 400, 300);
    vs_image odd = img_resize(&base, 97, 71);
    vs_image noisy = img_new(240, 180, 3);
    for (size_t i = 0; i < (size_t)240 * 180 * 3; i++)
        noisy.data[i] = clamp_u8(base.data[i] + 10 * rng_sym());

    int d_bright = vs_hamming64(h0, vs_phash(&bright));
    int d_small = vs_hamming64(h0, vs_phash(&small));
    int d_big = vs_hamming64(h0, vs_phash(&big));
    int d_odd = vs_hamming64(h0, vs_phash(&odd));
    int d_noisy = vs_hamming64(h0, vs_phash(&noisy));
    /* The hash is not blind: the mirror image flips every odd horizontal
     * frequency and must land far away. */
    vs_image mirror = img_new(240, 180, 3);
    for (int y = 0; y < 180; y++)
        for (int x = 0; x < 240; x++)
            memcpy(mirror.data + ((size_t)y * 240 + x) * 3,
                   base.data + ((size_t)y * 240 + (239 - x)) * 3, 3);
    uint64_t hm = vs_phash(&mirror), both_h, both_m, small_h, small_m;
    int d_mirror = vs_hamming64(h0, hm);
    print_message("phash mirror: %d\n", d_mirror);
    assert_true(d_mirror >= 12);
    /* ... and vs_phash_both predicts it from the original's DCT: a flipped
     * re-post is recognised (exactly, up to a coefficient on the median) */
    vs_phash_both(&base, &both_h, &both_m);
    assert_true(both_h == h0);
    assert_true(vs_hamming64(both_m, hm) <= 1);
    vs_phash_both(&small, &small_h, &small_m); /* a flipped, resized copy too */
    assert_true(vs_hamming64(small_m, hm) <= 6);
    uint64_t e_h = 1, e_m = 1;
    vs_phash_both(NULL, &e_h, &e_m);
    assert_true(e_h == 0 && e_m == 0);
    img_free(&mirror);
    print_message("phash near-duplicates: bright %d small %d big %d odd %d noisy %d\n", d_bright,
                  d_small, d_big, d_odd, d_noisy);
    assert_true(d_noisy <= 6);
    assert_true(d_bright <= 6);
    assert_true(d_small <= 6);
    assert_true(d_big <= 6);
    assert_true(d_odd <= 6);
    img_free(&base);
    img_free(&bright);
    img_free(&small);
    img_free(&big);
    img_free(&odd);
    img_free(&noisy);
}

static void test_phash_different_images_are_far(void **state) {
    (void)state;
    const int n = 128;
    vs_image grad = img_new(n, n, 1), check = img_new(n, n, 1), noise = img_new(n, n, 1);
    vs_image scene = img_scene(n, n);
    rng_state = 99;
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            grad.data[y * n + x] = (uint8_t)((x + y) * 255 / (2 * n - 2));
            check.data[y * n + x] = ((x / 32) + (y / 32)) % 2 ? 230 : 25;
            noise.data[y * n + x] = (uint8_t)(rng_u32() & 0xff);
        }
    uint64_t h[4] = {vs_phash(&grad), vs_phash(&check), vs_phash(&noise), vs_phash(&scene)};
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++) {
            int d = vs_hamming64(h[i], h[j]);
            print_message("phash distance %d-%d: %d\n", i, j, d);
            assert_true(d >= 20);
        }
    img_free(&grad);
    img_free(&check);
    img_free(&noise);
    img_free(&scene);
}

/* ---- quality --------------------------------------------------------------- */

/* A frontal detection for a 224 crop: template keypoints x2, ears outside the
 * eyes, a 200 px box. */
static vs_face_det frontal_det(void) {
    vs_face_det d = det_box(10, 10, 200, 200, 0.95f);
    d.n_kp = 6;
    for (int i = 0; i < 4; i++) {
        d.kp[i][0] = 2 * vs_align_template[i][0];
        d.kp[i][1] = 2 * vs_align_template[i][1];
    }
    d.kp[4][0] = 20;
    d.kp[4][1] = 110;
    d.kp[5][0] = 204;
    d.kp[5][1] = 110;
    return d;
}

/* Rotates every keypoint of d by deg (clockwise on screen, image y down)
 * about (cx, cy). */
static void rotate_kp(vs_face_det *d, double deg, double cx, double cy) {
    double c = cos(deg * PI_D / 180), s = sin(deg * PI_D / 180);
    for (int i = 0; i < d->n_kp; i++) {
        double x = d->kp[i][0] - cx, y = d->kp[i][1] - cy;
        d->kp[i][0] = (float)(cx + c * x - s * y);
        d->kp[i][1] = (float)(cy + s * x + c * y);
    }
}

/* A textured, mid-grey, sharp "face" crop: 8-px checker of 90/170 plus a
 * gentle gradient. */
static vs_image sharp_crop(void) {
    vs_image im = img_new(224, 224, 3);
    for (int y = 0; y < 224; y++)
        for (int x = 0; x < 224; x++) {
            double g = (((x / 8) + (y / 8)) % 2 ? 170 : 90) + 20.0 * x / 224;
            img_set(&im, x, y, g + 8, g, g - 8);
        }
    return im;
}

static void test_quality_defaults(void **state) {
    (void)state;
    vs_quality_cfg c;
    vs_quality_cfg_default(&c);
    assert_near(c.min_face_px, 24.0f, 0);
    assert_near(c.good_face_px, 112.0f, 0);
    assert_true(c.gate_enroll >= c.gate_verify);
    assert_true(c.gate_verify >= c.gate_search);
    assert_near(c.gate_enroll, 0.6f, 1e-6);
    assert_near(c.gate_verify, 0.45f, 1e-6);
    assert_near(c.gate_search, 0.3f, 1e-6);
}

static void test_quality_sharpness(void **state) {
    (void)state;
    vs_quality_cfg cfg;
    vs_quality_cfg_default(&cfg);
    vs_face_det d = frontal_det();
    vs_image sharp = sharp_crop(), soft = img_blur(&sharp, 2), mush = img_blur(&soft, 3);
    vs_quality qs, qb, qm;
    vs_quality_assess(&cfg, &d, &sharp, &qs);
    vs_quality_assess(&cfg, &d, &soft, &qb);
    vs_quality_assess(&cfg, &d, &mush, &qm);
    print_message("sharpness: sharp %.3f (var %.1f) blur %.3f (var %.1f) heavy %.3f (var %.1f)\n",
                  qs.sharpness, qs.laplacian_var, qb.sharpness, qb.laplacian_var, qm.sharpness,
                  qm.laplacian_var);
    assert_true(qs.laplacian_var > qb.laplacian_var);
    assert_true(qb.laplacian_var > qm.laplacian_var);
    assert_true(qs.sharpness > 0.8f);
    assert_true(qs.sharpness > qb.sharpness);
    assert_true(qm.sharpness < 0.3f);
    assert_true(qs.score > qm.score);
    /* The documented curve var / (var + 60). */
    assert_near(qs.sharpness, qs.laplacian_var / (qs.laplacian_var + 60.0), 1e-5);
    assert_near(qb.sharpness, qb.laplacian_var / (qb.laplacian_var + 60.0), 1e-5);
    /* 1-px checker of 100/140: every Laplacian is +-4*40, variance 25600. */
    vs_image fine = img_new(224, 224, 1);
    for (int y = 0; y < 224; y++)
        for (int x = 0; x < 224; x++)
            fine.data[y * 224 + x] = (x + y) % 2 ? 140 : 100;
    vs_quality qc;
    vs_quality_assess(&cfg, &d, &fine, &qc);
    assert_near(qc.laplacian_var, 25600.0, 1.0);
    assert_near(qc.mean_luma, 120.0, 0.5);
    img_free(&fine);
    /* A flat crop has no edges at all. */
    vs_image flat = img_new(224, 224, 1);
    memset(flat.data, 128, 224 * 224);
    vs_quality qf;
    vs_quality_assess(&cfg, &d, &flat, &qf);
    assert_near(qf.laplacian_var, 0.0f, 1e-6);
    assert_near(qf.sharpness, 0.0f, 1e-6);
    img_free(&sharp);
    img_free(&soft);
    img_free(&mush);
    img_free(&flat);
}

static void test_quality_exposure(void **state) {
    (void)state;
    vs_face_det d = frontal_det();
    vs_image black = img_new(224, 224, 3), white = img_new(224, 224, 3), mid = sharp_crop();
    memset(white.data, 255, 224 * 224 * 3);
    vs_quality qk, qw, qm;
    vs_quality_assess(NULL, &d, &black, &qk);
    vs_quality_assess(NULL, &d, &white, &qw);
    vs_quality_assess(NULL, &d, &mid, &qm);
    assert_true(qk.exposure < 0.1f);
    assert_true(qw.exposure < 0.1f);
    assert_true(qm.exposure > 0.9f);
    assert_near(qk.mean_luma, 0.0f, 1e-6);
    assert_near(qw.mean_luma, 255.0f, 1e-3);
    assert_near(qm.mean_luma, 140.0f, 3.0);
    /* Dim but not black (mean ~40) is penalised, not zeroed. */
    vs_image dim = img_new(224, 224, 1);
    for (int i = 0; i < 224 * 224; i++)
        dim.data[i] = (uint8_t)(30 + (i % 7) * 3);
    vs_quality qd;
    vs_quality_assess(NULL, &d, &dim, &qd);
    assert_true(qd.exposure > 0.2f && qd.exposure < 0.9f);
    assert_true(qk.score < qd.score);
    /* Half black, half white stripes: mid-grey on average but every pixel
     * clipped. */
    vs_image stripes = img_new(224, 224, 1);
    for (int i = 0; i < 224 * 224; i++)
        stripes.data[i] = (i / 4) % 2 ? 255 : 0;
    vs_quality qs;
    vs_quality_assess(NULL, &d, &stripes, &qs);
    assert_near(qs.mean_luma, 127.5, 2.0);
    assert_true(qs.exposure < 0.1f);
    img_free(&stripes);
    /* Only the face region counts: the same textured face in front of a
     * blown-out window (white outside the central region) stays well exposed
     * and its sharpness ignores the window's edge. */
    vs_image window = sharp_crop();
    for (int y = 0; y < 224; y++)
        for (int x = 0; x < 224; x++)
            if (x < 40 || x >= 184 || y < 52 || y >= 208)
                img_set(&window, x, y, 255, 255, 255);
    vs_quality qwin;
    vs_quality_assess(NULL, &d, &window, &qwin);
    assert_near(qwin.exposure, qm.exposure, 1e-6);
    assert_near(qwin.laplacian_var, qm.laplacian_var, 1e-3);
    img_free(&window);
    img_free(&black);
    img_free(&white);
    img_free(&mid);
    img_free(&dim);
}

static void test_quality_frontal_pose(void **state) {
    (void)state;
    vs_face_det d = frontal_det();
    vs_image crop = sharp_crop();
    vs_quality q;
    vs_quality_assess(NULL, &d, &crop, &q);
    assert_near(q.yaw_deg, 0.0f, 1.0);
    assert_near(q.roll_deg, 0.0f, 1.0);
    assert_near(q.pitch_deg, 0.0f, 1.0);
    assert_true(q.pose > 0.99f);
    /* Pose does not depend on where or how big the face is. */
    vs_face_det far = d;
    for (int i = 0; i < 6; i++) {
        far.kp[i][0] = 0.3f * d.kp[i][0] + 800;
        far.kp[i][1] = 0.3f * d.kp[i][1] + 50;
    }
    vs_quality qf;
    vs_quality_assess(NULL, &far, &crop, &qf);
    assert_near(qf.yaw_deg, q.yaw_deg, 0.05);
    assert_near(qf.pitch_deg, q.pitch_deg, 0.05);
    /* An overall good face clears the enrol gate. */
    assert_true(q.score > 0.6f);
    assert_true(vs_quality_passes(NULL, &q, VS_GATE_ENROLL));
    assert_null(vs_quality_reject_reason(NULL, &q, &d, VS_GATE_ENROLL));
    img_free(&crop);
}

static void test_quality_roll(void **state) {
    (void)state;
    vs_image crop = sharp_crop();
    for (int sign = -1; sign <= 1; sign += 2) {
        vs_face_det d = frontal_det();
        rotate_kp(&d, sign * 20.0, 112, 112);
        vs_quality q;
        vs_quality_assess(NULL, &d, &crop, &q);
        /* Eye line turned clockwise on screen (left eye lower) = +roll. */
        assert_near(q.roll_deg, sign * 20.0f, 0.5);
        if (sign > 0)
            assert_true(d.kp[VS_KP_LEFT_EYE][1] > d.kp[VS_KP_RIGHT_EYE][1]);
        /* In-plane rotation does not look like yaw or pitch. */
        assert_near(q.yaw_deg, 0.0f, 1.0);
        assert_near(q.pitch_deg, 0.0f, 1.0);
        assert_true(q.pose > 0.99f);
    }
    img_free(&crop);
}

static void test_quality_yaw_and_pitch(void **state) {
    (void)state;
    vs_image crop = sharp_crop();
    vs_face_det base = frontal_det();
    float eye_d = base.kp[1][0] - base.kp[0][0];
    float mid_x = 0.5f * (base.kp[0][0] + base.kp[1][0]);
    vs_quality q;

    /* Nose under the left eye (image right): strongly positive yaw. */
    vs_face_det d = base;
    d.kp[VS_KP_NOSE][0] = d.kp[VS_KP_LEFT_EYE][0];
    vs_quality_assess(NULL, &d, &crop, &q);
    assert_true(q.yaw_deg > 40.0f);
    assert_true(q.pose < 0.6f);
    /* ... and under the right eye: the mirror. */
    d = base;
    d.kp[VS_KP_NOSE][0] = d.kp[VS_KP_RIGHT_EYE][0];
    vs_quality_assess(NULL, &d, &crop, &q);
    assert_true(q.yaw_deg < -40.0f);

    /* The head model: nose offset 0.45 * tan(30 deg) eye distances = 30 deg. */
    d = base;
    d.kp[VS_KP_NOSE][0] = mid_x + eye_d * 0.45f * (float)tan(30 * PI_D / 180);
    vs_quality_assess(NULL, &d, &crop, &q);
    assert_near(q.yaw_deg, 30.0f, 0.5);
    assert_near(q.pose, 0.75f, 0.02);

    /* Nose almost on the mouth: far beyond 60 deg yaw gives pose 0. */
    d = base;
    d.kp[VS_KP_NOSE][0] = mid_x + 2.0f * eye_d;
    vs_quality_assess(NULL, &d, &crop, &q);
    assert_near(q.pose, 0.0f, 1e-6);
    assert_string_equal(vs_quality_reject_reason(NULL, &q, &d, VS_GATE_SEARCH), "EXTREME_POSE");

    /* Nose raised toward the eye line: head tilted back, positive pitch;
     * lowered toward the mouth: negative. */
    d = base;
    d.kp[VS_KP_NOSE][1] -= 15;
    vs_quality_assess(NULL, &d, &crop, &q);
    assert_true(q.pitch_deg > 10.0f);
    assert_near(q.yaw_deg, 0.0f, 1.0);
    d = base;
    d.kp[VS_KP_NOSE][1] += 15;
    vs_quality_assess(NULL, &d, &crop, &q);
    assert_true(q.pitch_deg < -10.0f);

    /* Without keypoints pose is unknown: neutral factor. */
    d = base;
    d.n_kp = 0;
    vs_quality_assess(NULL, &d, &crop, &q);
    assert_near(q.pose, 0.5f, 1e-6);
    assert_near(q.yaw_deg, 0.0f, 0);
    img_free(&crop);
}

static void test_quality_size(void **state) {
    (void)state;
    vs_quality_cfg cfg;
    vs_quality_cfg_default(&cfg);
    vs_image crop = sharp_crop();
    vs_face_det d = frontal_det();
    vs_quality q;
    d.w = 300, d.h = 112;
    vs_quality_assess(&cfg, &d, &crop, &q);
    assert_near(q.size, 1.0f, 1e-6);
    d.w = 68;
    vs_quality_assess(&cfg, &d, &crop, &q);
    assert_near(q.size, 0.5f, 1e-6);
    d.w = 20;
    vs_quality_assess(&cfg, &d, &crop, &q);
    assert_near(q.size, 0.0f, 0);
    assert_near(q.score, 0.0f, 0);
    assert_false(vs_quality_passes(&cfg, &q, VS_GATE_SEARCH));
    assert_string_equal(vs_quality_reject_reason(&cfg, &q, &d, VS_GATE_SEARCH), "SMALL_BOUNDING_BOX");
    img_free(&crop);
}

/* Hand-made quality records: the gates nest (enrol passes imply verify
 * passes imply search passes) and each reason names the factor at fault. */
static void test_quality_gates_and_reasons(void **state) {
    (void)state;
    vs_quality_cfg cfg;
    vs_quality_cfg_default(&cfg);
    for (int i = 0; i <= 100; i++) {
        vs_quality q = {0};
        q.score = i / 100.0f;
        int s = vs_quality_passes(&cfg, &q, VS_GATE_SEARCH);
        int v = vs_quality_passes(&cfg, &q, VS_GATE_VERIFY);
        int e = vs_quality_passes(&cfg, &q, VS_GATE_ENROLL);
        assert_true(!e || v);
        assert_true(!v || s);
    }
    vs_quality mid = {.score = 0.5f, .det = 1, .size = 1, .sharpness = 0.8f, .exposure = 1, .pose = 0.6f};
    assert_true(vs_quality_passes(&cfg, &mid, VS_GATE_SEARCH));
    assert_true(vs_quality_passes(&cfg, &mid, VS_GATE_VERIFY));
    assert_false(vs_quality_passes(&cfg, &mid, VS_GATE_ENROLL));
    assert_null(vs_quality_reject_reason(&cfg, &mid, NULL, VS_GATE_VERIFY));
    vs_quality low = mid;
    low.score = 0.4f;
    assert_true(vs_quality_passes(&cfg, &low, VS_GATE_SEARCH));
    assert_false(vs_quality_passes(&cfg, &low, VS_GATE_VERIFY));
    assert_false(vs_quality_passes(&cfg, &low, VS_GATE_ENROLL));
    assert_true(vs_quality_passes(NULL, &low, VS_GATE_SEARCH));
    assert_false(vs_quality_passes(NULL, &low, VS_GATE_VERIFY));
    assert_string_equal(vs_quality_reject_reason(&cfg, &mid, NULL, VS_GATE_ENROLL), "EXTREME_POSE");

    vs_quality blur = {.score = 0.2f, .det = 1, .size = 1, .sharpness = 0.1f, .exposure = 1, .pose = 1,
                       .mean_luma = 120};
    assert_string_equal(vs_quality_reject_reason(&cfg, &blur, NULL, VS_GATE_SEARCH), "LOW_SHARPNESS");
    vs_quality dark = {.score = 0.2f, .det = 1, .size = 1, .sharpness = 0.9f, .exposure = 0.05f,
                       .pose = 1, .mean_luma = 10};
    assert_string_equal(vs_quality_reject_reason(&cfg, &dark, NULL, VS_GATE_SEARCH), "LOW_BRIGHTNESS");
    vs_quality glare = dark;
    glare.mean_luma = 250;
    assert_string_equal(vs_quality_reject_reason(&cfg, &glare, NULL, VS_GATE_SEARCH), "LOW_QUALITY");
    vs_quality small = {.score = 0.2f, .det = 1, .size = 0.05f, .sharpness = 0.9f, .exposure = 1,
                        .pose = 1};
    assert_string_equal(vs_quality_reject_reason(&cfg, &small, NULL, VS_GATE_SEARCH),
                        "SMALL_BOUNDING_BOX");
    vs_quality unsure = {.score = 0.2f, .det = 0.1f, .size = 1, .sharpness = 0.9f, .exposure = 1,
                         .pose = 1};
    assert_string_equal(vs_quality_reject_reason(&cfg, &unsure, NULL, VS_GATE_SEARCH), "LOW_CONFIDENCE");
    vs_quality meh = {.score = 0.5f, .det = 0.8f, .size = 0.8f, .sharpness = 0.8f, .exposure = 0.8f,
                      .pose = 0.8f};
    assert_string_equal(vs_quality_reject_reason(&cfg, &meh, NULL, VS_GATE_ENROLL), "LOW_QUALITY");
}

/* The score of a real assessment: one bad factor drags it under the gates
 * that the same face otherwise clears. */
static void test_quality_single_bad_factor(void **state) {
    (void)state;
    vs_image crop = sharp_crop(), black = img_new(224, 224, 3);
    vs_face_det d = frontal_det();
    vs_quality good, dark;
    vs_quality_assess(NULL, &d, &crop, &good);
    vs_quality_assess(NULL, &d, &black, &dark);
    assert_true(vs_quality_passes(NULL, &good, VS_GATE_ENROLL));
    assert_false(vs_quality_passes(NULL, &dark, VS_GATE_SEARCH));
    assert_string_equal(vs_quality_reject_reason(NULL, &dark, &d, VS_GATE_SEARCH), "LOW_BRIGHTNESS");
    assert_true(good.score >= 0.0f && good.score <= 1.0f);
    /* No crop at all: nothing to measure, nothing passes. */
    vs_quality none;
    vs_quality_assess(NULL, &d, NULL, &none);
    assert_near(none.sharpness, 0.0f, 0);
    assert_near(none.score, 0.0f, 0);
    img_free(&crop);
    img_free(&black);
}

/* ---- descriptor similarity -------------------------------------------------- */

static void test_l2_normalize(void **state) {
    (void)state;
    float v[2] = {3, 4};
    vs_l2_normalize(v, 2);
    assert_near(v[0], 0.6f, 1e-6);
    assert_near(v[1], 0.8f, 1e-6);
    float z[5] = {0};
    vs_l2_normalize(z, 5);
    for (int i = 0; i < 5; i++)
        assert_near(z[i], 0.0f, 0);
    float big[1024];
    rng_state = 3;
    for (int i = 0; i < 1024; i++)
        big[i] = (float)(100 * rng_sym());
    vs_l2_normalize(big, 1024);
    double ss = 0;
    for (int i = 0; i < 1024; i++)
        ss += (double)big[i] * big[i];
    assert_near(ss, 1.0, 1e-5);
}

static void test_dot_matches_reference(void **state) {
    (void)state;
    static float a[1031], b[1031];
    rng_state = 5;
    for (int i = 0; i < 1031; i++) {
        a[i] = (float)rng_sym();
        b[i] = (float)rng_sym();
    }
    /* Lengths around the 8-lane blocks, including tails. */
    const int lens[] = {0, 1, 7, 8, 9, 15, 16, 17, 1024, 1031};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        int n = lens[k];
        double ref = 0;
        for (int i = 0; i < n; i++)
            ref += (double)a[i] * b[i];
        assert_near(vs_dot(a, b, n), ref, 1e-4);
    }
    float o[3] = {1, 2, 3}, p[3] = {4, -5, 6};
    assert_near(vs_dot(o, p, 3), 12.0f, 0);
    assert_near(vs_dot(o, p, -4), 0.0f, 0);
}

static void test_cosine(void **state) {
    (void)state;
    float a[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, b[9], c[9], z[9] = {0};
    for (int i = 0; i < 9; i++) {
        b[i] = 3.5f * a[i];
        c[i] = -a[i];
    }
    assert_near(vs_cosine(a, b, 9), 1.0f, 1e-6);
    assert_near(vs_cosine(a, c, 9), -1.0f, 1e-6);
    assert_near(vs_cosine(a, z, 9), 0.0f, 0);
    float x[2] = {1, 0}, y[2] = {0, 2}, d[2] = {1, 1};
    assert_near(vs_cosine(x, y, 2), 0.0f, 1e-7);
    assert_near(vs_cosine(x, d, 2), (float)(1 / sqrt(2.0)), 1e-6);
    /* Rounding never pushes a parallel pair past 1. */
    rng_state = 11;
    float r[37], q[37];
    for (int t = 0; t < 2000; t++) {
        float k = (float)(0.1 + 10 * (rng_sym() + 1));
        for (int i = 0; i < 37; i++) {
            r[i] = (float)rng_sym();
            q[i] = k * r[i];
        }
        float cs = vs_cosine(r, q, 37), cn = vs_cosine(r, q, 37) * -1.0f;
        assert_true(cs <= 1.0f && cs > 0.9999f);
        assert_true(cn >= -1.0f);
    }
    /* For unit vectors cosine is the dot product. */
    vs_l2_normalize(a, 9);
    vs_l2_normalize(d, 2);
    float e[9] = {9, 8, 7, 6, 5, 4, 3, 2, 1};
    vs_l2_normalize(e, 9);
    assert_near(vs_cosine(a, e, 9), vs_dot(a, e, 9), 1e-6);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iou),
        cmocka_unit_test(test_nms_keeps_higher_score),
        cmocka_unit_test(test_nms_disjoint_both_kept_sorted),
        cmocka_unit_test(test_nms_chain_is_greedy),
        cmocka_unit_test(test_nms_weighted_averages),
        cmocka_unit_test(test_nms_empty_and_nan),
        cmocka_unit_test(test_similarity_recovers_exact),
        cmocka_unit_test(test_similarity_with_noise),
        cmocka_unit_test(test_similarity_rejects_bad_input),
        cmocka_unit_test(test_similarity_never_reflects),
        cmocka_unit_test(test_affine_invert),
        cmocka_unit_test(test_align_matrix),
        cmocka_unit_test(test_align_dlib_matrix),
        cmocka_unit_test(test_phash_hex_and_hamming),
        cmocka_unit_test(test_phash_bit_layout),
        cmocka_unit_test(test_phash_constant_is_stable),
        cmocka_unit_test(test_phash_gray_equals_rgb_gray),
        cmocka_unit_test(test_phash_uses_luma),
        cmocka_unit_test(test_phash_near_duplicates),
        cmocka_unit_test(test_phash_different_images_are_far),
        cmocka_unit_test(test_quality_defaults),
        cmocka_unit_test(test_quality_sharpness),
        cmocka_unit_test(test_quality_exposure),
        cmocka_unit_test(test_quality_frontal_pose),
        cmocka_unit_test(test_quality_roll),
        cmocka_unit_test(test_quality_yaw_and_pitch),
        cmocka_unit_test(test_quality_size),
        cmocka_unit_test(test_quality_gates_and_reasons),
        cmocka_unit_test(test_quality_single_bad_factor),
        cmocka_unit_test(test_l2_normalize),
        cmocka_unit_test(test_dot_matches_reference),
        cmocka_unit_test(test_cosine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
