/* vs_quality.c - face quality from an aligned crop and its detection: cheap
 * image statistics (Laplacian variance, luma) and keypoint geometry, run once
 * per detected face before embedding, so a few hundred microseconds at most. */
#include "vs_quality.h"

#include <math.h>
#include <stddef.h>

#include "vs_align.h"

#define Q_RAD2DEG 57.29577951308232

/* Sharpness curve var / (var + K), K = 60 (gray levels squared). Measured on
 * 224-px crops aligned from four portraits in ../shared/data/faces (the crop
 * has 70 px between the eyes; "inter-eye" is the source's):
 *   inter-eye 120-132 px (downsampled into the crop):  var 280-1010 -> 0.82-0.94
 *   inter-eye 60-66 px (about crop scale):             var 100-300  -> 0.63-0.83
 *   inter-eye 30-33 px (upsampled ~2.3x):              var 27-70    -> 0.31-0.54
 *   inter-eye 15-16 px (a ~35-px face, ~4.5x):         var 9-19     -> 0.13-0.24
 *   the first row after a 3x3 box blur:                var 30-80    -> 0.33-0.57
 *   ... and a further 5x5 box blur (heavy):            var 7-15     -> 0.10-0.20
 * The Laplacian is taken at the crop's own resolution, so the values hold for
 * the 224-px crops of the embedder; a 112-px crop of the same face reads
 * sharper. */
#define Q_SHARP_K 60.0

/* Face region of an aligned crop, as fractions of its side: from just above
 * the eyebrows to below the mouth, cheek to cheek (template eyes at x = 0.34
 * and 0.66, y = 0.46; mouth at y = 0.82). Sharpness and exposure are measured
 * here so that background (a bright window, the warp's constant border past
 * the image edge) does not decide them. */
#define Q_ROI_X0 0.20
#define Q_ROI_X1 0.80
#define Q_ROI_Y0 0.25
#define Q_ROI_Y1 0.92

/* Exposure: the mean-luma factor is 1 on [Q_LUMA_LO, Q_LUMA_HI] and falls
 * linearly to 0 at Q_LUMA_MIN / Q_LUMA_MAX. The plateau is wide on the dark
 * side on purpose: a well-exposed dark-skinned face has a mean luma around
 * 60-90, and skin tone must not read as under-exposure. */
#define Q_LUMA_MIN 15.0
#define Q_LUMA_LO 50.0
#define Q_LUMA_HI 200.0
#define Q_LUMA_MAX 245.0
/* A pixel at or beyond these levels is clipped; the clipped factor is
 * 1 - fraction / Q_CLIP_ZERO (0 when 40% of the face is clipped). */
#define Q_CLIP_DARK 8
#define Q_CLIP_BRIGHT 247
#define Q_CLIP_ZERO 0.40

/* Head model for pose (orthographic projection): the nose tip sits in front
 * of the eye plane by Q_NOSE_DEPTH times the inter-eye distance (about 28 mm
 * for a 63 mm inter-pupil distance, anthropometric averages; the same ratio
 * as the generic 3-D face model used with OpenCV solvePnP). Turning the head
 * by yaw y moves the nose by depth*sin(y) while the eyes shrink by cos(y), so
 * nose offset / eye distance = Q_NOSE_DEPTH * tan(y). */
#define Q_NOSE_DEPTH 0.45
/* Pose factor 1 - (angle/limit)^2: 0.75 at 30 deg yaw, 0.44 at 45, 0 at 60.
 * Pitch is estimated less reliably (faces differ in nose/mouth proportions
 * by ~+-7 deg) so it gets a wider limit. Roll is not penalised: alignment
 * removes in-plane rotation exactly. */
#define Q_YAW_LIMIT 60.0
#define Q_PITCH_LIMIT 50.0
#define Q_POSE_UNKNOWN 0.5f

/* Overall score = det^0.5 * size^0.5 * sharpness^0.5 * exposure^0.5 * pose.
 * A product, not a mean: each factor is a separate way for the descriptor to
 * become useless (a 30-px face, motion blur, a black frame, a profile), and
 * with an arithmetic mean three perfect factors would lift a profile face or
 * a blurred one over the enrol gate. Square roots soften the factors whose
 * scale is soft (detector calibration, the sharpness curve never reaches 1,
 * exposure and size degrade gradually); pose keeps exponent 1 because a turned
 * face changes the descriptor directly. A sharp frontal face with det 0.9
 * scores ~0.85; one factor at 0.1 alone caps the score at 0.32 (0.1 for pose). */
#define Q_W_DET 0.5
#define Q_W_SIZE 0.5
#define Q_W_SHARP 0.5
#define Q_W_EXPO 0.5
#define Q_W_POSE 1.0

/* Below this contribution (factor^weight) a single factor is named as the
 * reject reason; if none is that low the face is rejected for LOW_QUALITY. */
#define Q_BLAME_BELOW 0.75

/* The defaults documented in vs_quality.h. */
void vs_quality_cfg_default(vs_quality_cfg *cfg) {
    cfg->min_face_px = 24.0f;
    cfg->good_face_px = 112.0f;
    cfg->gate_enroll = 0.6f;
    cfg->gate_verify = 0.45f;
    cfg->gate_search = 0.3f;
}

/* Clamps to [0,1]; NaN becomes 0 so a broken input never passes a gate. */
static double clamp01(double v) {
    if (!(v > 0.0))
        return 0.0;
    return v > 1.0 ? 1.0 : v;
}

/* Gray level (BT.601 luma, integer weights summing to 256) of pixel (x, y). */
static int luma_at(const vs_image *img, int x, int y) {
    const uint8_t *p = img->data + ((size_t)y * img->width + x) * img->channels;
    if (img->channels >= 3)
        return (77 * p[0] + 150 * p[1] + 29 * p[2] + 128) >> 8;
    return p[0];
}

/* Laplacian variance and luma statistics over the face region of the crop.
 * Returns 0 when the crop is too small to hold a 3x3 neighbourhood. */
static int crop_stats(const vs_image *img, double *lap_var, double *mean, double *clipped) {
    if (!img || !img->data || img->width < 3 || img->height < 3 || img->channels < 1)
        return 0;
    int w = img->width, h = img->height;
    int x0 = (int)(Q_ROI_X0 * w), x1 = (int)(Q_ROI_X1 * w);
    int y0 = (int)(Q_ROI_Y0 * h), y1 = (int)(Q_ROI_Y1 * h);
    /* Keep one pixel of margin for the Laplacian's neighbours. */
    if (x0 < 1)
        x0 = 1;
    if (y0 < 1)
        y0 = 1;
    if (x1 > w - 1)
        x1 = w - 1;
    if (y1 > h - 1)
        y1 = h - 1;
    if (x1 <= x0 || y1 <= y0)
        return 0;
    double ls = 0, ls2 = 0, sum = 0;
    long clip = 0, cnt = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            int c = luma_at(img, x, y);
            double lap = luma_at(img, x - 1, y) + luma_at(img, x + 1, y) +
                         luma_at(img, x, y - 1) + luma_at(img, x, y + 1) - 4.0 * c;
            ls += lap;
            ls2 += lap * lap;
            sum += c;
            clip += c <= Q_CLIP_DARK || c >= Q_CLIP_BRIGHT;
            cnt++;
        }
    double lm = ls / cnt;
    *lap_var = ls2 / cnt - lm * lm;
    if (*lap_var < 0)
        *lap_var = 0;
    *mean = sum / cnt;
    *clipped = (double)clip / cnt;
    return 1;
}

/* Exposure factor from mean luma and clipped fraction (see Q_LUMA_*). */
static double exposure_factor(double mean, double clipped) {
    double m;
    if (mean < Q_LUMA_LO)
        m = (mean - Q_LUMA_MIN) / (Q_LUMA_LO - Q_LUMA_MIN);
    else if (mean > Q_LUMA_HI)
        m = (Q_LUMA_MAX - mean) / (Q_LUMA_MAX - Q_LUMA_HI);
    else
        m = 1.0;
    return clamp01(m) * clamp01(1.0 - clipped / Q_CLIP_ZERO);
}

/* (nose - eye line) / (mouth - eye line) of a frontal face, from the ArcFace
 * template, so that template keypoints give pitch 0 by construction. */
static double template_nose_ratio(void) {
    const float(*t)[2] = vs_align_template;
    double ey = 0.5 * (t[0][1] + t[1][1]);
    return (t[2][1] - ey) / (t[3][1] - ey);
}

/* Roll, yaw and pitch in degrees from eyes, nose and mouth. The points are
 * first rotated by -roll about the eye midpoint so the eye line is
 * horizontal; then yaw comes from the nose's horizontal offset and pitch from
 * where the nose falls between eye line and mouth (see Q_NOSE_DEPTH).
 * Ears are not used: BlazeFace places them even when they are hidden, so
 * their asymmetry says little. Returns 0 if the eyes coincide. */
static int pose_angles(const float kp[6][2], double *roll, double *yaw, double *pitch) {
    double rx = kp[VS_KP_RIGHT_EYE][0], ry = kp[VS_KP_RIGHT_EYE][1];
    double lx = kp[VS_KP_LEFT_EYE][0], ly = kp[VS_KP_LEFT_EYE][1];
    double dx = lx - rx, dy = ly - ry;
    double eye_d = hypot(dx, dy);
    if (!(eye_d > 1e-6))
        return 0;
    /* Image y points down, so a positive angle is a clockwise turn. */
    *roll = atan2(dy, dx) * Q_RAD2DEG;
    double c = dx / eye_d, s = dy / eye_d;
    double mx = 0.5 * (rx + lx), my = 0.5 * (ry + ly);
    /* Rotate by -roll: (u, v) = R(-roll) (p - mid). */
    double nu = c * (kp[VS_KP_NOSE][0] - mx) + s * (kp[VS_KP_NOSE][1] - my);
    double nv = -s * (kp[VS_KP_NOSE][0] - mx) + c * (kp[VS_KP_NOSE][1] - my);
    double mv = -s * (kp[VS_KP_MOUTH][0] - mx) + c * (kp[VS_KP_MOUTH][1] - my);
    *yaw = atan(nu / eye_d / Q_NOSE_DEPTH) * Q_RAD2DEG;
    /* Pitch: with eyes and mouth at depth ~0 and the nose tip at depth D,
     * pitching by p puts the nose at N cos(p) - D sin(p) below the eye line
     * and the mouth at M cos(p) (mv, measured). So
     *   sin(p) = (q0 - q) * mv / D,  q = nv / mv,  q0 = N / M (template),
     * with D = Q_NOSE_DEPTH times the true eye distance, which yaw has
     * shortened by cos(yaw). */
    if (mv > 1e-3 * eye_d) {
        double depth = Q_NOSE_DEPTH * eye_d / cos(*yaw / Q_RAD2DEG);
        double sp = (template_nose_ratio() - nv / mv) * mv / depth;
        sp = sp > 1.0 ? 1.0 : sp < -1.0 ? -1.0 : sp;
        *pitch = asin(sp) * Q_RAD2DEG;
    } else {
        /* Mouth at or above the eye line: the head is thrown far back or
         * the keypoints are wrong; either way an extreme pose. */
        *pitch = 90.0;
    }
    return 1;
}

/* Computes every factor, then the product score (see Q_W_*). Never fails:
 * missing inputs give 0 factors, so they cannot pass a gate by accident. */
void vs_quality_assess(const vs_quality_cfg *cfg, const vs_face_det *det,
                       const vs_image *aligned_crop, vs_quality *out) {
    vs_quality_cfg def;
    if (!cfg) {
        vs_quality_cfg_default(&def);
        cfg = &def;
    }
    vs_quality q = {0};

    q.det = det ? (float)clamp01(det->score) : 0.0f;

    double side = det ? fmin(det->w, det->h) : 0.0;
    double span = (double)cfg->good_face_px - cfg->min_face_px;
    q.size = span > 0 ? (float)clamp01((side - cfg->min_face_px) / span)
                      : (side >= cfg->good_face_px ? 1.0f : 0.0f);

    double lap_var = 0, mean = 0, clipped = 1;
    if (crop_stats(aligned_crop, &lap_var, &mean, &clipped)) {
        q.laplacian_var = (float)lap_var;
        q.mean_luma = (float)mean;
        q.sharpness = (float)(lap_var / (lap_var + Q_SHARP_K));
        q.exposure = (float)exposure_factor(mean, clipped);
    }

    double roll, yaw, pitch;
    if (det && det->n_kp >= 4 && pose_angles(det->kp, &roll, &yaw, &pitch)) {
        q.roll_deg = (float)roll;
        q.yaw_deg = (float)yaw;
        q.pitch_deg = (float)pitch;
        double py = yaw / Q_YAW_LIMIT, pp = pitch / Q_PITCH_LIMIT;
        q.pose = (float)(clamp01(1.0 - py * py) * clamp01(1.0 - pp * pp));
    } else {
        q.pose = Q_POSE_UNKNOWN;
    }

    q.score = (float)clamp01(pow(q.det, Q_W_DET) * pow(q.size, Q_W_SIZE) *
                             pow(q.sharpness, Q_W_SHARP) * pow(q.exposure, Q_W_EXPO) *
                             pow(q.pose, Q_W_POSE));
    *out = q;
}

/* The threshold of a gate; unknown gates get the strictest. */
static float gate_threshold(const vs_quality_cfg *cfg, vs_gate gate) {
    switch (gate) {
    case VS_GATE_SEARCH: return cfg->gate_search;
    case VS_GATE_VERIFY: return cfg->gate_verify;
    case VS_GATE_ENROLL: return cfg->gate_enroll;
    }
    return cfg->gate_enroll;
}

/* Score against the gate's threshold. */
int vs_quality_passes(const vs_quality_cfg *cfg, const vs_quality *q, vs_gate gate) {
    vs_quality_cfg def;
    if (!cfg) {
        vs_quality_cfg_default(&def);
        cfg = &def;
    }
    return q->score >= gate_threshold(cfg, gate);
}

/* Blames the factor that costs the most (smallest factor^weight), as
 * Rekognition's UnindexedFaces reasons do; a face that fails with every
 * factor merely mediocre gets LOW_QUALITY. Ties go to the earlier entry:
 * exposure before sharpness, because a black or blown-out crop has no edges
 * either and the darkness is the cause. */
const char *vs_quality_reject_reason(const vs_quality_cfg *cfg, const vs_quality *q,
                                     const vs_face_det *det, vs_gate gate) {
    vs_quality_cfg def;
    if (!cfg) {
        vs_quality_cfg_default(&def);
        cfg = &def;
    }
    if (vs_quality_passes(cfg, q, gate))
        return NULL;
    if (det && fminf(det->w, det->h) <= cfg->min_face_px)
        return "SMALL_BOUNDING_BOX";
    struct { double c; const char *why; } f[] = {
        {pow(clamp01(q->size), Q_W_SIZE), "SMALL_BOUNDING_BOX"},
        {pow(clamp01(q->exposure), Q_W_EXPO),
         q->mean_luma < 128.0f ? "LOW_BRIGHTNESS" : "LOW_QUALITY"},
        {pow(clamp01(q->pose), Q_W_POSE), "EXTREME_POSE"},
        {pow(clamp01(q->sharpness), Q_W_SHARP), "LOW_SHARPNESS"},
        {pow(clamp01(q->det), Q_W_DET), "LOW_CONFIDENCE"},
    };
    size_t worst = 0;
    for (size_t i = 1; i < sizeof f / sizeof f[0]; i++)
        if (f[i].c < f[worst].c)
            worst = i;
    return f[worst].c < Q_BLAME_BELOW ? f[worst].why : "LOW_QUALITY";
}
