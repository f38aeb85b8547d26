/* vs_detect.c - face detection with blazeface-back over a scale pyramid.
 *
 * Level 0 shows the whole photo, padded to a square, at 256 px: it finds the
 * faces that fill a good part of the frame. Each further level divides the
 * region a tile covers by 1.75 (so the first is 2x2 tiles overlapping by a
 * quarter), down to the scale where min_face_px becomes ~20 network pixels,
 * BlazeFace's smallest reliable face, or until the next level would exceed
 * max_passes network runs (~8 ms each): the cost of finding 24-px faces in a
 * 4000-px photo is hundreds of passes, which only a caller who asks for it
 * (visage detect --thorough) should pay.
 * Tiles invent faces (textures, ears, the eye region of a large face), so a
 * detection only a tile saw must (1) be small for its tile (large faces are
 * level 0's job), (2) not be cut by the tile edge, (3) not sit inside a
 * larger face already found, (4) pass the keypoint geometry check and (5)
 * clear a higher score threshold. Survivors of all passes are merged by
 * weighted NMS. Tuned for photos up to ~4000 px and faces from 24 px up.
 *
 * vs_detect_run can instead take its faces from FaceBoxes, one pass over the
 * whole photo that sees faces cut by the border and faces filling the frame,
 * which the pyramid misses. FaceBoxes gives no keypoints and, at the
 * thresholds that find every face of a crowded photo, invents some; so each
 * of its boxes gets one BlazeFace pass on a crop centred on it, which both
 * places the keypoints and has to agree that it is a face. */
#include "vs_detect.h"

#include <math.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_faceboxes.h"

const char *const vs_blaze_outputs[4] = {"Identity", "Identity_1", "Identity_2", "Identity_3"};

#define MAX_CANDIDATES 2048
#define TILE_MIN_NET_PX 20.0f  /* smallest face, in network pixels, a tile should expect */
#define TILE_MAX_FACE_FRAC 0.45f /* a tile detection wider than this share of the tile is level 0's */
#define TILE_LEVEL_STEP 1.75f   /* each level's tiles cover 1/1.75 of the previous: 2x2 tiles first */
#define ROTATE_MARGIN 0.05f     /* a turned orientation wins by this much... */
#define ROTATE_SAME_PLACE_MARGIN 0.1f /* ...or this, where upright saw a face at the same place */
#define LEVEL0_MARGIN 0.1f      /* black border around the whole photo at level 0, share of its side */

void vs_detect_cfg_default(vs_detect_cfg *c) {
    /* Calibrated on the shared photos (docs/models.md): real faces score
     * >= 0.78 at level 0 and >= 0.8 in tiles; textures, buttons and ears that
     * look like faces score 0.63-0.77. */
    c->detector = VS_DETECTOR_UNION; /* docs/detector-notes.md */
    c->score_threshold = 0.7f;
    c->tile_score_threshold = 0.8f;
    c->nms_iou = 0.3f;
    c->min_face_px = 24;
    c->max_faces = 64;
    c->use_tiles = 1;
    c->try_rotations = 1;
    c->max_passes = 0; /* the detector's own budget */
    c->rotate_below = 0.85f;
    c->fb_side = VS_FACEBOXES_SIDE;
    c->fb_fitted = 1;
    c->fb_threshold = 0.4f;
    c->fb_confirm = 0.7f;
    c->fb_sure = 0.9f;
    c->fb_sure_confirm = 0.3f;
    c->fb_context = 2.5f;
}

static const char *const detector_names[VS_DETECTOR_COUNT] = {"blazeface", "faceboxes", "union"};

const char *vs_detector_name(vs_detector d) {
    return (unsigned)d < VS_DETECTOR_COUNT ? detector_names[d] : NULL;
}

int vs_detector_find(const char *name) {
    for (int i = 0; name && i < VS_DETECTOR_COUNT; i++)
        if (!strcmp(name, detector_names[i])) return i;
    return -1;
}

static float sigmoidf(float x) {
    if (x < -80) x = -80;
    if (x > 80) x = 80;
    return 1.0f / (1.0f + expf(-x));
}

int vs_blaze_decode(const float *const outs[4], float threshold, vs_region r, vs_face_det *out, int cap) {
    int n = 0, a = 0;
    /* anchors: 16x16 grid x 2, then 8x8 grid x 6; centre ((x+0.5)/fm, (y+0.5)/fm) */
    static const int grids[2] = {16, 8}, per[2] = {2, 6};
    for (int lvl = 0; lvl < 2; lvl++) {
        const float *scores = outs[lvl], *reg = outs[2 + lvl];
        int fm = grids[lvl], idx = 0;
        for (int gy = 0; gy < fm; gy++)
            for (int gx = 0; gx < fm; gx++)
                for (int k = 0; k < per[lvl]; k++, idx++, a++) {
                    float s = sigmoidf(scores[idx]);
                    if (s < threshold || n >= cap) continue;
                    const float *q = reg + (size_t)idx * 16;
                    float cx = (gx + 0.5f) / fm + q[0] / VS_BLAZE_INPUT;
                    float cy = (gy + 0.5f) / fm + q[1] / VS_BLAZE_INPUT;
                    float w = q[2] / VS_BLAZE_INPUT, h = q[3] / VS_BLAZE_INPUT;
                    if (!(w > 0 && h > 0)) continue;
                    vs_face_det *d = &out[n++];
                    d->score = s;
                    d->x = r.x + (cx - w / 2) * r.size;
                    d->y = r.y + (cy - h / 2) * r.size;
                    d->w = w * r.size;
                    d->h = h * r.size;
                    d->n_kp = 6;
                    for (int p = 0; p < 6; p++) {
                        d->kp[p][0] = r.x + ((gx + 0.5f) / fm + q[4 + 2 * p] / VS_BLAZE_INPUT) * r.size;
                        d->kp[p][1] = r.y + ((gy + 0.5f) / fm + q[5 + 2 * p] / VS_BLAZE_INPUT) * r.size;
                    }
                }
    }
    (void)a;
    return n;
}

int vs_face_geometry_ok(const vs_face_det *d) {
    if (d->n_kp < 4 || d->w <= 0 || d->h <= 0) return 0;
    float ex = d->kp[1][0] - d->kp[0][0], ey = d->kp[1][1] - d->kp[0][1];
    float eye_dist = sqrtf(ex * ex + ey * ey);
    if (eye_dist < 1e-3f) return 0;
    /* Work in the face's frame: u along the eye line, v perpendicular (down). */
    float ux = ex / eye_dist, uy = ey / eye_dist, vx = -uy, vy = ux;
    float mx = (d->kp[0][0] + d->kp[1][0]) / 2, my = (d->kp[0][1] + d->kp[1][1]) / 2;
    float nose_u = ((d->kp[2][0] - mx) * ux + (d->kp[2][1] - my) * uy) / eye_dist;
    float nose_v = ((d->kp[2][0] - mx) * vx + (d->kp[2][1] - my) * vy) / eye_dist;
    float mouth_u = ((d->kp[3][0] - mx) * ux + (d->kp[3][1] - my) * uy) / eye_dist;
    float mouth_v = ((d->kp[3][0] - mx) * vx + (d->kp[3][1] - my) * vy) / eye_dist;
    float ratio = eye_dist / d->w;
    /* Frontal faces: ratio ~0.35-0.45, nose_v ~0.5-0.7, mouth_v ~1.0-1.3; the
     * bounds leave room for profile views (eyes closer) and tilted heads. */
    if (ratio < 0.12f || ratio > 0.75f) return 0;
    if (nose_v < 0.1f || mouth_v < 0.45f || mouth_v > 2.2f || mouth_v < nose_v) return 0;
    if (fabsf(nose_u) > 1.0f || fabsf(mouth_u) > 1.0f) return 0;
    return 1;
}

/* Fills the network input with the image region r (bilinear, black outside),
 * scaled to [-1, 1]. src is the image at the scale r refers to. */
static void fill_input(const vs_image *src, vs_region r, vs_image *tile, float *in) {
    float s = r.size / VS_BLAZE_INPUT;
    float m[6] = {s, 0, r.x + 0.5f * s - 0.5f, 0, s, r.y + 0.5f * s - 0.5f};
    vs_image_warp_affine(src, m, tile, 0);
    size_t n = (size_t)VS_BLAZE_INPUT * VS_BLAZE_INPUT * 3;
    for (size_t i = 0; i < n; i++) in[i] = tile->data[i] * (1.0f / 127.5f) - 1.0f;
}

/* One pass: runs the network on region r of src and appends detections,
 * mapped to original-image pixels by `scale` (src pixels * 1/scale). */
static vs_err run_pass(vs_runtime *rt, const vs_image *src, float scale, vs_region r, float threshold,
                       vs_image *tile, vs_face_det *cand, int *n, vs_error *err) {
    fill_input(src, r, tile, vs_runtime_input(rt));
    vs_err rc = vs_runtime_run(rt, err);
    if (rc != VS_OK) return rc;
    const float *outs[4];
    for (int i = 0; i < 4; i++) outs[i] = vs_runtime_output(rt, i);
    vs_region orig = {r.x / scale, r.y / scale, r.size / scale};
    *n += vs_blaze_decode(outs, threshold, orig, cand + *n, MAX_CANDIDATES - *n);
    return VS_OK;
}

/* 1 when detection d (from a tile showing region t of the original image, w x h)
 * is fully inside the tile, or touches only edges that are image edges. */
static int inside_tile(const vs_face_det *d, vs_region t, int w, int h) {
    float margin = 0.02f * t.size;
    if (d->x < t.x + margin && t.x > 0) return 0;
    if (d->y < t.y + margin && t.y > 0) return 0;
    if (d->x + d->w > t.x + t.size - margin && t.x + t.size < w) return 0;
    if (d->y + d->h > t.y + t.size - margin && t.y + t.size < h) return 0;
    return 1;
}

/* 1 when d's centre lies inside a clearly larger detection in big[0..nb). */
static int inside_larger_face(const vs_face_det *d, const vs_face_det *big, int nb) {
    float cx = d->x + d->w / 2, cy = d->y + d->h / 2;
    for (int i = 0; i < nb; i++)
        if (big[i].w > 1.6f * d->w && cx > big[i].x && cx < big[i].x + big[i].w && cy > big[i].y &&
            cy < big[i].y + big[i].h)
            return 1;
    return 0;
}

/* Runs level 0 and the tile pyramid on one orientation of the image. */
static vs_err detect_upright(vs_runtime *rt, const vs_image *img, const vs_detect_cfg *cfg, vs_face_det *cand,
                             int *n_out, vs_error *err) {
    vs_image tile = {0}, level = {0};
    vs_err rc = vs_image_alloc(&tile, VS_BLAZE_INPUT, VS_BLAZE_INPUT, 3, err);
    if (rc != VS_OK) return rc;
    int n = 0, side = img->width > img->height ? img->width : img->height;
    /* Level 0: the whole photo, shrunk with area averaging first so small
     * details do not alias, then padded to a square. */
    float s0 = (float)VS_BLAZE_INPUT / side;
    const vs_image *src0 = img;
    if (s0 < 1.0f) {
        int lw = (int)lroundf(img->width * s0), lh = (int)lroundf(img->height * s0);
        rc = vs_image_resize(img, lw < 1 ? 1 : lw, lh < 1 ? 1 : lh, &level, err);
        if (rc != VS_OK) goto out;
        s0 = (float)level.width / img->width;
        src0 = &level;
    } else {
        s0 = 1.0f;
    }
    /* A margin on every side lets anchors see faces cut by the image edge
     * (measured: a face 40 % outside the frame is found with it, not without). */
    float m0 = LEVEL0_MARGIN * side * s0;
    vs_region r0 = {-m0, -m0, side * s0 + 2 * m0};
    rc = run_pass(rt, src0, s0, r0, cfg->score_threshold, &tile, cand, &n, err);
    if (rc != VS_OK) goto out;
    int n0 = n = vs_nms(cand, n, cfg->nms_iou, 1);
    if (!cfg->use_tiles) goto out;
    /* Finer levels: a tile covers `cover` original pixels; halve until the
     * smallest face we look for would be TILE_MIN_NET_PX network pixels. */
    float stop = cfg->min_face_px * VS_BLAZE_INPUT / TILE_MIN_NET_PX;
    int passes = 1;
    for (float cover = side / TILE_LEVEL_STEP; cover >= VS_BLAZE_INPUT / 2.0f; cover /= TILE_LEVEL_STEP) {
        float step = cover * 0.75f;
        int nx = img->width <= cover ? 1 : (int)ceilf((img->width - cover) / step) + 1;
        int ny = img->height <= cover ? 1 : (int)ceilf((img->height - cover) / step) + 1;
        if (passes + nx * ny > cfg->max_passes) break; /* the time budget says stop here */
        passes += nx * ny;
        float scale = (float)VS_BLAZE_INPUT / cover;
        const vs_image *src = img;
        vs_image_free(&level);
        if (scale < 1.0f) {
            rc = vs_image_resize(img, (int)lroundf(img->width * scale), (int)lroundf(img->height * scale), &level, err);
            if (rc != VS_OK) goto out;
            scale = (float)level.width / img->width;
            src = &level;
        } else {
            scale = 1.0f;
        }
        for (int ty = 0; ty < ny; ty++)
            for (int tx = 0; tx < nx; tx++) {
                float ox = nx == 1 ? 0 : fminf(tx * step, img->width - cover);
                float oy = ny == 1 ? 0 : fminf(ty * step, img->height - cover);
                vs_region t = {ox, oy, cover};
                int before = n;
                vs_region ts = {ox * scale, oy * scale, cover * scale};
                rc = run_pass(rt, src, scale, ts, cfg->tile_score_threshold, &tile, cand, &n, err);
                if (rc != VS_OK) goto out;
                int k = before;
                for (int i = before; i < n; i++) {
                    vs_face_det *d = &cand[i];
                    if (d->w > TILE_MAX_FACE_FRAC * cover || !inside_tile(d, t, img->width, img->height) ||
                        inside_larger_face(d, cand, n0) || !vs_face_geometry_ok(d))
                        continue;
                    cand[k++] = *d;
                }
                n = k;
                if (n > MAX_CANDIDATES - VS_BLAZE_ANCHORS) n = vs_nms(cand, n, cfg->nms_iou, 1);
            }
        if (cover <= stop) break;
    }
    n = vs_nms(cand, n, cfg->nms_iou, 1);
out:
    vs_image_free(&tile);
    vs_image_free(&level);
    *n_out = n;
    return rc;
}

/* Maps a point of the image rotated clockwise by q quarter turns back to the
 * original w x h image. */
static void unrotate_point(float *x, float *y, int q, int w, int h) {
    float rx = *x, ry = *y;
    switch (q) {
    case 1: *x = ry; *y = h - rx; break;          /* rotated is h wide */
    case 2: *x = w - rx; *y = h - ry; break;
    case 3: *x = w - ry; *y = rx; break;
    default: break;
    }
}

static void unrotate_det(vs_face_det *d, int q, int w, int h) {
    float xs[2] = {d->x, d->x + d->w}, ys[2] = {d->y, d->y + d->h};
    float x0 = 1e30f, y0 = 1e30f, x1 = -1e30f, y1 = -1e30f;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            float x = xs[i], y = ys[j];
            unrotate_point(&x, &y, q, w, h);
            x0 = fminf(x0, x); y0 = fminf(y0, y); x1 = fmaxf(x1, x); y1 = fmaxf(y1, y);
        }
    d->x = x0; d->y = y0; d->w = x1 - x0; d->h = y1 - y0;
    for (int p = 0; p < d->n_kp; p++) unrotate_point(&d->kp[p][0], &d->kp[p][1], q, w, h);
}

/* Keeps the plausible detections: geometry check for all (level 0 included:
 * a face-like texture with no face layout is not a face), and nothing much
 * smaller than the smallest face searched for (tiles make tiny false faces). */
static int filter_geometry(vs_face_det *d, int n, float min_side) {
    int k = 0;
    for (int i = 0; i < n; i++)
        if (vs_face_geometry_ok(&d[i]) && d[i].w >= min_side) d[k++] = d[i];
    return k;
}

/* Quarter turns clockwise that would bring d's eye line level: 0 for an
 * upright face (roll within +-45 degrees), 2 for one upside down. */
static int turns_to_level(const vs_face_det *d) {
    float deg = atan2f(d->kp[1][1] - d->kp[0][1], d->kp[1][0] - d->kp[0][0]) * (180.0f / (float)M_PI);
    int q = (int)lroundf(-deg / 90.0f);
    return ((q % 4) + 4) % 4;
}

/* BlazeFace can score a turned face as high as an upright one (an upside-down
 * portrait at 0.94 at level 0), keypoints in the right order but placed tens
 * of pixels off, so the rotation retry never runs. When the best face's eye
 * line says it is turned, the photo is searched once more turned so that face
 * stands upright, and those faces replace cand[0..*n) if their best is the same
 * face, now level. alt has MAX_CANDIDATES room. */
static vs_err upright_turned(vs_runtime *rt, const vs_image *img, const vs_detect_cfg *cfg, vs_face_det *cand, int *n,
                             vs_face_det *alt, vs_error *err) {
    int q = turns_to_level(&cand[0]), m = 0;
    if (q == 0) return VS_OK;
    vs_image rot = {0};
    vs_err rc = vs_image_rotate(img, q, &rot, err);
    if (rc == VS_OK) rc = detect_upright(rt, &rot, cfg, alt, &m, err);
    vs_image_free(&rot);
    if (rc != VS_OK) return rc;
    m = filter_geometry(alt, m, 0.75f * cfg->min_face_px);
    if (m == 0 || turns_to_level(&alt[0]) != 0) return VS_OK;
    for (int i = 0; i < m; i++) unrotate_det(&alt[i], q, img->width, img->height);
    if (vs_box_iou(&alt[0], &cand[0]) <= 0.3f) return VS_OK;
    memcpy(cand, alt, sizeof *alt * (size_t)m);
    *n = m;
    return VS_OK;
}

vs_err vs_detect_faces(vs_runtime *rt, const vs_image *img, const vs_detect_cfg *cfg_in, vs_face_det *out, int cap,
                       int *n_out, vs_error *err) {
    vs_detect_cfg cfg;
    if (cfg_in) cfg = *cfg_in;
    else vs_detect_cfg_default(&cfg);
    if (cfg.max_passes <= 0) cfg.max_passes = VS_DETECT_PASSES;
    *n_out = 0;
    if (!img || !img->data || img->channels != 3 || img->width < 1 || img->height < 1)
        return vs_fail(err, VS_ERR_INVALID_ARG, "detect: need a non-empty RGB image");
    vs_face_det *cand = vs_malloc(sizeof *cand * MAX_CANDIDATES);
    if (!cand) return vs_fail(err, VS_ERR_NOMEM, "detect: candidates");
    vs_face_det *alt = vs_malloc(sizeof *alt * MAX_CANDIDATES);
    if (!alt) {
        vs_free(cand);
        return vs_fail(err, VS_ERR_NOMEM, "detect: candidates");
    }
    int n = 0;
    vs_err rc = detect_upright(rt, img, &cfg, cand, &n, err);
    n = filter_geometry(cand, n, 0.75f * cfg.min_face_px);
    /* Web photos often lose their EXIF orientation. A sideways or upside-down
     * face either goes unseen or is "found" with low confidence and made-up
     * upright landmarks, so when the best upright face is not clearly a face,
     * the other three orientations compete and the most confident wins. */
    float best = n > 0 ? cand[0].score : 0;
    for (int q = 1; rc == VS_OK && cfg.try_rotations && best < cfg.rotate_below && q < 4; q++) {
        vs_image rot = {0};
        int m = 0;
        if ((rc = vs_image_rotate(img, q, &rot, err)) != VS_OK) break;
        rc = detect_upright(rt, &rot, &cfg, alt, &m, err);
        vs_image_free(&rot);
        m = filter_geometry(alt, m, 0.75f * cfg.min_face_px);
        /* Where the upright pass already saw a face at the same place, the
         * turned one must win clearly: a face with big hair or a tilted head
         * can score a little higher upside down (LFW DevTrain: 0.82 against
         * 0.76 for an upright portrait), and a turned face embeds as noise. */
        if (m > 0) unrotate_det(&alt[0], q, img->width, img->height);
        float margin = n > 0 && vs_box_iou(&alt[0], &cand[0]) > 0.3f ? ROTATE_SAME_PLACE_MARGIN : ROTATE_MARGIN;
        if (m > 0 && alt[0].score > best + margin) {
            for (int i = 1; i < m; i++) unrotate_det(&alt[i], q, img->width, img->height);
            memcpy(cand, alt, sizeof *alt * (size_t)m);
            n = m;
            best = alt[0].score;
        }
    }
    if (rc == VS_OK && cfg.try_rotations && n > 0) rc = upright_turned(rt, img, &cfg, cand, &n, alt, err);
    vs_free(alt);
    if (rc == VS_OK) {
        int lim = cfg.max_faces < cap ? cfg.max_faces : cap;
        if (n > lim) n = lim;
        memcpy(out, cand, sizeof *cand * (size_t)n);
        *n_out = n;
    }
    vs_free(cand);
    return rc;
}

/* ---- FaceBoxes proposals, BlazeFace on crops ---- */

#define MAX_PROPOSALS 256
#define SAME_FACE_IOU 0.3f
#define MIN_CROP_PX 128.0f /* a crop shows at least this many image pixels: BlazeFace on a
                            * tinier one sees an upscaled blur (an eye became a face) */

/* Same face for two detectors whose boxes differ in extent (FaceBoxes boxes
 * run from the forehead to below the chin, BlazeFace's from the brows to the
 * chin): IoU >= 0.3, or the centre of each inside the other. */
static int same_face(const vs_face_det *a, const vs_face_det *b) {
    if (vs_box_iou(a, b) >= SAME_FACE_IOU) return 1;
    float ax = a->x + a->w / 2, ay = a->y + a->h / 2, bx = b->x + b->w / 2, by = b->y + b->h / 2;
    return ax > b->x && ax < b->x + b->w && ay > b->y && ay < b->y + b->h && bx > a->x && bx < a->x + a->w &&
           by > a->y && by < a->y + a->h;
}

/* The crop frame: network-input point (u, v) in [0, 256)^2 (continuous) is
 * image point (f[0]u + f[1]v + f[2], f[3]u + f[4]v + f[5]). The crop is a
 * square of `side` image pixels centred on (cx, cy), showing the image
 * turned q quarter turns clockwise, as vs_image_rotate would. */
static void crop_frame(float cx, float cy, float side, int q, float f[6]) {
    static const float ax[4][2] = {{1, 0}, {0, -1}, {-1, 0}, {0, 1}}; /* image step of +u */
    static const float ay[4][2] = {{0, 1}, {1, 0}, {0, -1}, {-1, 0}}; /* image step of +v */
    float s = side / VS_BLAZE_INPUT, h = VS_BLAZE_INPUT / 2.0f;
    f[0] = s * ax[q][0], f[1] = s * ay[q][0], f[2] = cx - h * (f[0] + f[1]);
    f[3] = s * ax[q][1], f[4] = s * ay[q][1], f[5] = cy - h * (f[3] + f[4]);
}

/* Fills the network input with the crop of frame f (black outside img),
 * scaled to [-1, 1]. A crop much larger than the input is sampled k x k
 * times finer and area-averaged, so that it does not alias. */
static vs_err fill_crop(vs_runtime *rt, const vs_image *img, const float f[6], vs_error *err) {
    float scale = sqrtf(f[0] * f[0] + f[3] * f[3]);
    int k = scale >= 1.5f ? (int)fminf(ceilf(scale), 4.0f) : 1, side = VS_BLAZE_INPUT * k;
    vs_image big = {0}, tile = {0};
    vs_err rc = vs_image_alloc(&big, side, side, 3, err);
    if (rc != VS_OK) return rc;
    /* warp_affine maps pixel indexes (centres at +0.5) */
    float m[6] = {f[0] / k, f[1] / k, 0, f[3] / k, f[4] / k, 0};
    m[2] = f[2] + 0.5f * (m[0] + m[1]) - 0.5f;
    m[5] = f[5] + 0.5f * (m[3] + m[4]) - 0.5f;
    vs_image_warp_affine(img, m, &big, 0);
    const vs_image *src = &big;
    if (k > 1) {
        if ((rc = vs_image_resize(&big, VS_BLAZE_INPUT, VS_BLAZE_INPUT, &tile, err)) != VS_OK) goto out;
        src = &tile;
    }
    float *in = vs_runtime_input(rt);
    for (size_t i = 0; i < (size_t)VS_BLAZE_INPUT * VS_BLAZE_INPUT * 3; i++) in[i] = src->data[i] * (1.0f / 127.5f) - 1.0f;
out:
    vs_image_free(&big);
    vs_image_free(&tile);
    return rc;
}

/* Maps a detection from crop coordinates to the image through frame f. */
static void crop_to_image(vs_face_det *d, const float f[6]) {
    float xs[2] = {d->x, d->x + d->w}, ys[2] = {d->y, d->y + d->h};
    float x0 = 1e30f, y0 = 1e30f, x1 = -1e30f, y1 = -1e30f;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            float x = f[0] * xs[i] + f[1] * ys[j] + f[2], y = f[3] * xs[i] + f[4] * ys[j] + f[5];
            x0 = fminf(x0, x), y0 = fminf(y0, y), x1 = fmaxf(x1, x), y1 = fmaxf(y1, y);
        }
    d->x = x0, d->y = y0, d->w = x1 - x0, d->h = y1 - y0;
    for (int p = 0; p < d->n_kp; p++) {
        float u = d->kp[p][0], v = d->kp[p][1];
        d->kp[p][0] = f[0] * u + f[1] * v + f[2];
        d->kp[p][1] = f[3] * u + f[4] * v + f[5];
    }
}

/* One pass over the crop of frame f: the face-shaped detection overlapping
 * box most, if any; returns 1 when found. cand has VS_BLAZE_ANCHORS room. */
static vs_err crop_pass(vs_runtime *rt, const vs_image *img, const float f[6], const vs_face_det *box,
                        float threshold, vs_face_det *cand, vs_face_det *out, int *found, vs_error *err) {
    vs_err rc = fill_crop(rt, img, f, err);
    if (rc == VS_OK) rc = vs_runtime_run(rt, err);
    if (rc != VS_OK) return rc;
    const float *outs[4];
    for (int i = 0; i < 4; i++) outs[i] = vs_runtime_output(rt, i);
    int n = vs_blaze_decode(outs, threshold, (vs_region){0, 0, VS_BLAZE_INPUT}, cand, VS_BLAZE_ANCHORS);
    n = vs_nms(cand, n, 0.3f, 1);
    float best = -1;
    for (int i = 0; i < n; i++) {
        if (!vs_face_geometry_ok(&cand[i])) continue; /* checked upright, in the crop */
        crop_to_image(&cand[i], f);
        float iou = vs_box_iou(&cand[i], box);
        if (same_face(&cand[i], box) && iou > best) {
            best = iou;
            *out = cand[i];
            *found = 1;
        }
    }
    return VS_OK;
}

vs_err vs_blaze_on_box(vs_runtime *rt, const vs_image *img, const vs_face_det *box, float context, float threshold,
                       float rotate_below, vs_face_det *out, int *found, vs_error *err) {
    *found = 0;
    float side = fmaxf(context * fmaxf(box->w, box->h), MIN_CROP_PX);
    if (!(box->w > 0 && box->h > 0) || !img || !img->data || img->channels != 3) return VS_OK;
    vs_face_det *cand = vs_malloc(sizeof *cand * VS_BLAZE_ANCHORS);
    if (!cand) return vs_fail(err, VS_ERR_NOMEM, "detect: crop candidates");
    vs_err rc = VS_OK;
    int best_q = -1;
    for (int q = 0; q < 4 && rc == VS_OK; q++) {
        if (q == 1 && (!(rotate_below > 0) || (*found && out->score >= rotate_below))) break;
        float f[6];
        vs_face_det d;
        int got = 0;
        crop_frame(box->x + box->w / 2, box->y + box->h / 2, side, q, f);
        rc = crop_pass(rt, img, f, box, threshold, cand, &d, &got, err);
        /* as for whole photos: a turned crop must beat upright clearly */
        if (got && (!*found || d.score > out->score + (best_q == 0 ? ROTATE_SAME_PLACE_MARGIN : 0))) {
            *out = d;
            *found = 1;
            best_q = q;
        }
    }
    vs_free(cand);
    return rc;
}

/* Drops every face whose centre lies inside a clearly larger one: the eye
 * region of a big face, which FaceBoxes and BlazeFace can both take for a
 * small face (as tiles do in vs_detect_faces). Keeps the order. */
static int drop_inner_faces(vs_face_det *d, int n) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        int inner = 0;
        for (int j = 0; j < n && !inner; j++) inner = j != i && inside_larger_face(&d[i], &d[j], 1);
        if (!inner) d[k++] = d[i];
    }
    return k;
}

/* Confirms proposals p[0..np) (best first) that no face in faces[0..*n)
 * already covers, appending each confirmed one; stops at cap. A proposal
 * FaceBoxes is sure of needs less of BlazeFace, which scores faces cut by the
 * border low (docs/detector-notes.md). *sure is set when a confirmed face was
 * a sure proposal. */
static vs_err confirm_proposals(vs_runtime *blaze, const vs_image *img, const vs_detect_cfg *cfg, float rotate_below,
                                const vs_face_det *p, int np, vs_face_det *faces, int *n, int cap, int *sure,
                                vs_error *err) {
    for (int i = 0; i < np && *n < cap; i++) {
        int covered = 0;
        for (int j = 0; j < *n && !covered; j++) covered = same_face(&p[i], &faces[j]);
        if (covered) continue;
        vs_face_det d;
        int found = 0;
        float need = p[i].score >= cfg->fb_sure ? cfg->fb_sure_confirm : cfg->fb_confirm;
        vs_err rc = vs_blaze_on_box(blaze, img, &p[i], cfg->fb_context, need, rotate_below, &d, &found, err);
        if (rc != VS_OK) return rc;
        if (!found || d.w < 0.75f * cfg->min_face_px) continue;
        for (int j = 0; j < *n && found; j++) found = !same_face(&d, &faces[j]);
        if (!found) continue;
        faces[(*n)++] = d;
        *sure |= p[i].score >= cfg->fb_sure;
    }
    return VS_OK;
}

/* Confirms proposals p[0..np) into faces[0..*n) (confirm_proposals), then
 * keeps them best first without duplicates or faces inside larger ones. */
static vs_err merge_proposals(vs_runtime *blaze, const vs_image *img, const vs_detect_cfg *cfg, float rotate_below,
                              const vs_face_det *p, int np, vs_face_det *faces, int *n, int *sure, vs_error *err) {
    vs_err rc = confirm_proposals(blaze, img, cfg, rotate_below, p, np, faces, n, MAX_CANDIDATES, sure, err);
    if (rc == VS_OK) *n = drop_inner_faces(faces, vs_nms(faces, *n, cfg->nms_iou, 0)); /* best first */
    return rc;
}

/* FaceBoxes over one orientation of the photo, its boxes confirmed by
 * BlazeFace crops (turned when unsure if rotate_below > 0) and appended to
 * faces[0..*n) unless already there. props has MAX_PROPOSALS room. */
static vs_err faceboxes_faces(vs_runtime *blaze, vs_runtime *fb, const vs_image *img, const vs_detect_cfg *cfg,
                              float rotate_below, vs_face_det *props, vs_face_det *faces, int *n, int *sure,
                              vs_error *err) {
    int np = 0;
    vs_err rc = vs_faceboxes_detect(fb, img, cfg->fb_threshold, cfg->nms_iou, props, MAX_PROPOSALS, &np, err);
    return rc == VS_OK ? merge_proposals(blaze, img, cfg, rotate_below, props, np, faces, n, sure, err) : rc;
}

/* FaceBoxes alone sees few sideways or upside-down faces: when the upright
 * photo gives no clear face (none that BlazeFace scores >= rotate_below or
 * FaceBoxes >= fb_sure), it is also searched turned by 90, 180 and 270
 * degrees, and the most confident orientation wins, as in vs_detect_faces. */
static vs_err faceboxes_turned(vs_runtime *blaze, vs_runtime *fb, const vs_image *img, const vs_detect_cfg *cfg,
                               vs_face_det *props, vs_face_det *faces, int *n, vs_error *err) {
    vs_face_det *alt = vs_malloc(sizeof *alt * MAX_CANDIDATES);
    if (!alt) return vs_fail(err, VS_ERR_NOMEM, "detect: candidates");
    vs_err rc = VS_OK;
    float best = *n > 0 ? faces[0].score : 0;
    for (int q = 1; q < 4 && rc == VS_OK && best < cfg->rotate_below; q++) {
        vs_image rot = {0};
        int m = 0, sure = 0;
        if ((rc = vs_image_rotate(img, q, &rot, err)) != VS_OK) break;
        rc = faceboxes_faces(blaze, fb, &rot, cfg, 0, props, alt, &m, &sure, err);
        vs_image_free(&rot);
        if (rc != VS_OK || m == 0) continue;
        for (int i = 0; i < m; i++) unrotate_det(&alt[i], q, img->width, img->height);
        float margin = *n > 0 && vs_box_iou(&alt[0], &faces[0]) > 0.3f ? ROTATE_SAME_PLACE_MARGIN : ROTATE_MARGIN;
        if (alt[0].score > best + margin) {
            memcpy(faces, alt, sizeof *alt * (size_t)m);
            *n = m;
            best = alt[0].score;
        }
    }
    vs_free(alt);
    return rc;
}

/* 1 when FaceBoxes found a face too small for the pyramid's level 0 (under
 * TILE_MIN_NET_PX network pixels once the photo is shrunk to 256): a crowd or
 * a distant group, where faces come in every size. Union then runs the
 * pyramid's tiles as well; otherwise level 0 alone, since the tiles look for
 * faces that FaceBoxes sees anyway (docs/detector-notes.md). */
static int has_small_faces(const vs_face_det *p, int np, const vs_image *img) {
    float side = (float)(img->width > img->height ? img->width : img->height);
    for (int i = 0; i < np; i++)
        if (fmaxf(p[i].w, p[i].h) < TILE_MIN_NET_PX * side / VS_BLAZE_INPUT) return 1;
    return 0;
}

vs_err vs_detect_run(vs_runtime *blaze, vs_runtime *faceboxes, const vs_image *img, const vs_detect_cfg *cfg_in,
                     vs_face_det *out, int cap, int *n_out, vs_error *err) {
    vs_detect_cfg cfg;
    if (cfg_in) cfg = *cfg_in;
    else vs_detect_cfg_default(&cfg);
    *n_out = 0;
    if (cfg.detector == VS_DETECTOR_BLAZEFACE) return vs_detect_faces(blaze, img, &cfg, out, cap, n_out, err);
    int auto_budget = cfg.max_passes <= 0;
    if (auto_budget) cfg.max_passes = cfg.detector == VS_DETECTOR_UNION ? VS_UNION_PASSES : VS_DETECT_PASSES;
    if (!vs_detector_name(cfg.detector))
        return vs_fail(err, VS_ERR_INVALID_ARG, "detect: unknown detector %d", (int)cfg.detector);
    if (!faceboxes)
        return vs_fail(err, VS_ERR_INVALID_ARG, "detect: detector %s needs the %s model", vs_detector_name(cfg.detector),
                       VS_FACEBOXES_MODEL);
    if (!img || !img->data || img->channels != 3 || img->width < 1 || img->height < 1)
        return vs_fail(err, VS_ERR_INVALID_ARG, "detect: need a non-empty RGB image");
    int lim = cfg.max_faces < cap ? cfg.max_faces : cap, n = 0, sure = 0;
    float crop_turns = cfg.try_rotations ? cfg.rotate_below : 0;
    vs_face_det *faces = vs_malloc(sizeof *faces * MAX_CANDIDATES);
    vs_face_det *props = vs_malloc(sizeof *props * MAX_PROPOSALS);
    vs_err rc = faces && props ? VS_OK : vs_fail(err, VS_ERR_NOMEM, "detect: candidates");
    /* FaceBoxes first: what it finds decides how deep the pyramid looks. */
    int np = 0;
    if (rc == VS_OK) rc = vs_faceboxes_detect(faceboxes, img, cfg.fb_threshold, cfg.nms_iou, props, MAX_PROPOSALS, &np, err);
    if (rc == VS_OK && auto_budget && cfg.detector == VS_DETECTOR_UNION && has_small_faces(props, np, img))
        cfg.max_passes = VS_DETECT_PASSES;
    /* A caller who raised the pyramid's budget wants faces smaller than
     * FaceBoxes sees (visage detect --thorough): the pyramid runs too. */
    if (rc == VS_OK && (cfg.detector == VS_DETECTOR_UNION || cfg.max_passes > VS_DETECT_PASSES))
        rc = vs_detect_faces(blaze, img, &cfg, faces, MAX_CANDIDATES, &n, err);
    if (rc == VS_OK) rc = merge_proposals(blaze, img, &cfg, crop_turns, props, np, faces, &n, &sure, err);
    if (rc == VS_OK && cfg.detector == VS_DETECTOR_FACEBOXES && cfg.max_passes <= VS_DETECT_PASSES &&
        cfg.try_rotations && !sure)
        rc = faceboxes_turned(blaze, faceboxes, img, &cfg, props, faces, &n, err);
    if (rc == VS_OK) {
        if (n > lim) n = lim;
        memcpy(out, faces, sizeof *faces * (size_t)n);
        *n_out = n;
    }
    vs_free(faces);
    vs_free(props);
    return rc;
}
