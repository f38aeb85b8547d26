/* detect_synth.c - faces found and faces invented by the face detector, on
 * photos built from the shared portraits with known face positions, and on
 * every shared photo. Prints numbers; asserts nothing (timings vary).
 *
 *   build/bench_detect_synth [--faces DIR] [--detector SPEC]... [--save DIR [--raw]] [--only KIND]
 *
 * SPEC is blazeface, faceboxes or union (vs_detect_run), optionally with
 * settings: faceboxes:side=1280,thr=0.6,confirm=0.7,sure=0.9,sureconfirm=0.3,
 * context=2.5,passes=8,rot=1,shapes=1 (shapes=0: FaceBoxes on a square input, as before 2026-12-03).
 * Every photo goes through every detector in turn, so machine load weighs on
 * all alike; default: blazeface, faceboxes and union with their defaults.
 * --proposals runs no detector: it tells, for every FaceBoxes box of score
 * >= 0.2 (first faceboxes SPEC's side and crop), whether it is a real face and
 * what BlazeFace scores on its crop: the table the gates are chosen from.
 *
 * Photo kinds (every face position is known, so a detection either finds a
 * face or is invented):
 *   size20 .. size400  several faces of that side, with 2x context around each,
 *                      on a face-free textured canvas (1600x1200, 2000x1500 for 400)
 *   cut_left .. cut_bottom  a close-up face (40 % of the frame height) cut by
 *                      that border by 25, 37 and 50 % of its side
 *   rot90 .. rot270    each portrait turned (a photo that lost its EXIF orientation)
 *   large              a face filling 65 % of the frame height
 *   selfie             7 faces: one very large cut by the bottom border, one cut
 *                      by the right border, five from 60 to 160 px (the product
 *                      owner's crowded selfie, rebuilt)
 *   faceless           each portrait with its head painted over (face box x 1.6,
 *                      flat colour): body, clothes and background only, so
 *                      every detection is invented
 *   shared             every photo of ../shared/data/faces as it is
 * Ground truth: the face boxes below, read from blazeface-back on the
 * original photos and checked by eye (docs/detector-notes.md). A detection
 * finds a face when the centre of each box lies inside the other, or when
 * they overlap by IoU >= 0.3 (boxes clipped to the photo): detectors draw
 * boxes of different extent (BlazeFace brow to chin, FaceBoxes forehead to
 * below the chin), and the test must not favour one; a box on the eye region
 * of a larger face, or between two faces, fails it. A second detection of a
 * found face counts as invented. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_util.h"
#include "vs_alloc.h"
#include "vs_detect.h"
#include "vs_faceboxes.h"
#include "vs_image.h"
#include "vs_nn.h"

#define MAX_GT 16
#define MAX_DETS 256
#define MAX_CONFIGS 8

typedef struct box {
    float x, y, w, h;
} box;

/* One shared photo and its faces (pixels of the EXIF-oriented image). */
typedef struct shared_photo {
    const char *path; /* relative to --faces */
    int n;
    box faces[3];
    int source;       /* 1 = a single clear face: usable to build synthetic photos */
} shared_photo;

/* obama_and_biden's third face is the girl at the bottom right, partly hidden;
 * the README counts it as a real person. */
static const shared_photo shared[] = {
    {"knn_examples/test/alex_lacamoire1.jpg", 1, {{622, 203, 337, 337}}, 1},
    {"knn_examples/test/johnsnow_test1.jpg", 1, {{254, 191, 184, 184}}, 1},
    {"knn_examples/test/kit_with_rose.jpg", 2, {{253, 98, 105, 105}, {76, 127, 83, 83}}, 0},
    {"knn_examples/test/obama1.jpg", 1, {{506, 230, 396, 396}}, 1},
    {"knn_examples/test/obama_and_biden.jpg", 3, {{753, 446, 187, 187}, {1150, 418, 176, 176}, {1630, 1064, 169, 169}}, 0},
    {"knn_examples/train/alex_lacamoire/img1.jpg", 1, {{270, 196, 351, 351}}, 1},
    {"knn_examples/train/biden/biden.jpg", 1, {{413, 259, 293, 293}}, 1},
    {"knn_examples/train/biden/biden2.jpg", 1, {{451, 337, 412, 412}}, 1},
    {"knn_examples/train/kit_harington/john1.jpeg", 1, {{685, 112, 123, 123}}, 1},
    {"knn_examples/train/kit_harington/john2.jpeg", 1, {{312, 99, 189, 189}}, 1},
    {"knn_examples/train/obama/obama.jpg", 1, {{360, 146, 266, 266}}, 1},
    {"knn_examples/train/obama/obama2.jpg", 1, {{194, 311, 301, 301}}, 1},
    {"knn_examples/train/rose_leslie/img1.jpg", 1, {{620, 122, 262, 262}}, 1},
    {"knn_examples/train/rose_leslie/img2.jpg", 1, {{152, 169, 281, 281}}, 1},
    {"obama-1080p.jpg", 1, {{865, 152, 267, 267}}, 1},
    {"obama-240p.jpg", 1, {{192, 34, 59, 59}}, 1},
    {"obama_small.jpg", 1, {{99, 67, 122, 122}}, 1},
    {"test_images/32bit.png", 1, {{194, 312, 301, 301}}, 1},
    {"test_images/obama3.jpg", 1, {{633, 349, 274, 274}}, 1},
    {"test_images/obama_partial_face.jpg", 1, {{-51, 152, 257, 257}}, 0},
    {"two_people.jpg", 2, {{233, 79, 147, 147}, {782, 94, 158, 158}}, 0},
};
#define N_SHARED ((int)(sizeof shared / sizeof shared[0]))

/* A photo under test: pixels and the faces in it. */
typedef struct photo {
    vs_image img;
    int n_gt;
    box gt[MAX_GT];
} photo;

/* Results of one kind of photo, per detector configuration. */
typedef struct tally {
    const char *kind;
    int photos, faces;
    int found[MAX_CONFIGS], invented[MAX_CONFIGS];
    double ms[MAX_CONFIGS];
} tally;

/* FaceBoxes proposals by their score (rows, 0.2 .. 1 by 0.1) and BlazeFace's
 * score on the crop (columns: none, then 0 .. 1 by 0.1), real faces and not. */
typedef struct prop_table {
    int real[8][11], fake[8][11];
} prop_table;

/* One detector under test. */
typedef struct config {
    char label[200];
    vs_detect_cfg cfg;
    int shapes;                    /* 1 (default): the input shape that fits each photo, as the engine;
                                    * 0: the square input only */
    vs_faceboxes_models *fbm;
    vs_faceboxes_runtimes *fbr;
} config;

typedef struct bench {
    char faces_dir[1024];
    const char *save_dir;
    int raw;                /* --raw: saved photos without boxes drawn */
    const char *only;
    vs_image src[N_SHARED]; /* decoded shared photos */
    vs_model *blaze;
    vs_runtime *blaze_rt;
    int n_configs;
    config configs[MAX_CONFIGS];
    uint64_t rnd;
    int saved;
    int proposals;          /* --proposals */
    prop_table props;
} bench;

static void die(const char *what, const vs_error *e) { bench_die("detect_synth", what, e); }

/* ---- scoring ---- */

static box clip_box(box b, int w, int h) {
    float x0 = fmaxf(b.x, 0), y0 = fmaxf(b.y, 0);
    float x1 = fminf(b.x + b.w, (float)w), y1 = fminf(b.y + b.h, (float)h);
    return (box){x0, y0, fmaxf(x1 - x0, 0), fmaxf(y1 - y0, 0)};
}

static int centre_inside(box a, box b) {
    float cx = a.x + a.w / 2, cy = a.y + a.h / 2;
    return cx >= b.x && cx <= b.x + b.w && cy >= b.y && cy <= b.y + b.h;
}

static float iou(box a, box b) {
    float iw = fminf(a.x + a.w, b.x + b.w) - fmaxf(a.x, b.x), ih = fminf(a.y + a.h, b.y + b.h) - fmaxf(a.y, b.y);
    if (iw <= 0 || ih <= 0) return 0;
    return iw * ih / (a.w * a.h + b.w * b.h - iw * ih);
}

/* Same face: the centre of each (clipped) box inside the other, or the
 * clipped boxes overlap by IoU >= 0.3 (a face cut at the chin is often boxed
 * from the forehead to the eyes: on the face, centre above the visible part). */
static int same_face(box det, box gt, int w, int h) {
    box a = clip_box(det, w, h), b = clip_box(gt, w, h);
    if (a.w <= 0 || a.h <= 0 || b.w <= 0 || b.h <= 0) return 0;
    return (centre_inside(a, b) && centre_inside(b, a)) || iou(a, b) >= 0.3f;
}

/* Counts found faces and invented detections (dets are best first). */
static void score(const photo *p, const vs_face_det *d, int n, int *found, int *invented) {
    int used[MAX_GT] = {0};
    *found = *invented = 0;
    for (int i = 0; i < n; i++) {
        box db = {d[i].x, d[i].y, d[i].w, d[i].h};
        int hit = -1;
        for (int g = 0; g < p->n_gt && hit < 0; g++)
            if (!used[g] && same_face(db, p->gt[g], p->img.width, p->img.height)) hit = g;
        if (hit >= 0) {
            used[hit] = 1;
            (*found)++;
        } else {
            (*invented)++;
        }
    }
}

/* ---- drawing (only for --save) ---- */

static void draw_rect(vs_image *img, box b, uint8_t r, uint8_t g, uint8_t bl) {
    int x0 = (int)b.x, y0 = (int)b.y, x1 = (int)(b.x + b.w), y1 = (int)(b.y + b.h);
    for (int t = 0; t < 3; t++)
        for (int y = y0 + t; y <= y1 - t; y++)
            for (int x = x0 + t; x <= x1 - t; x++) {
                if (y != y0 + t && y != y1 - t && x != x0 + t && x != x1 - t) continue;
                if (x < 0 || y < 0 || x >= img->width || y >= img->height) continue;
                uint8_t *px = img->data + ((size_t)y * img->width + x) * 3;
                px[0] = r, px[1] = g, px[2] = bl;
            }
}

static void save_photo(bench *b, const char *kind, int c, const photo *p, const vs_face_det *d, int n, int found,
                       int invented) {
    vs_image copy = {0};
    vs_error err = {0};
    if (vs_image_alloc(&copy, p->img.width, p->img.height, 3, &err) != VS_OK) die("save", &err);
    memcpy(copy.data, p->img.data, (size_t)copy.width * copy.height * 3);
    for (int g = 0; g < p->n_gt && !b->raw; g++) draw_rect(&copy, p->gt[g], 0, 220, 0);
    for (int i = 0; i < n && !b->raw; i++) draw_rect(&copy, (box){d[i].x, d[i].y, d[i].w, d[i].h}, 230, 0, 0);
    uint8_t *jpg = NULL;
    size_t len = 0;
    if (vs_image_encode_jpeg(&copy, b->raw ? 97 : 85, &jpg, &len, &err) != VS_OK) die("save", &err);
    char path[1400];
    snprintf(path, sizeof path, "%s/%s_%03d_%s_found%d_of%d_invented%d.jpg", b->save_dir, kind, b->saved++,
             vs_detector_name(b->configs[c].cfg.detector), found, p->n_gt, invented);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(jpg, 1, len, f);
        fclose(f);
    }
    vs_free(jpg);
    vs_image_free(&copy);
}

/* ---- running the detector ---- */

/* The FaceBoxes runtime of cf for photo img: its shape's, or the square one;
 * NULL for the blazeface detector, which has none. */
static vs_runtime *fb_runtime(config *cf, const vs_image *img) {
    vs_runtime *rt = NULL;
    vs_error err = {0};
    if (cf->fbr && vs_faceboxes_runtime_for(cf->fbr, img->width, img->height, &rt, &err) != VS_OK) die("runtime", &err);
    return rt;
}

/* --proposals: classifies every FaceBoxes box of p. */
static void tabulate_proposals(bench *b, photo *p) {
    static vs_face_det props[MAX_DETS];
    config *cf = &b->configs[0];
    vs_error err = {0};
    int n = 0;
    if (vs_faceboxes_detect(fb_runtime(cf, &p->img), &p->img, 0.2f, cf->cfg.nms_iou, props, MAX_DETS, &n, &err) != VS_OK)
        die("faceboxes", &err);
    for (int i = 0; i < n; i++) {
        vs_face_det d;
        int found = 0, real = 0;
        if (vs_blaze_on_box(b->blaze_rt, &p->img, &props[i], cf->cfg.fb_context, 0.05f,
                            cf->cfg.try_rotations ? cf->cfg.rotate_below : 0, &d,
                            &found, &err) != VS_OK)
            die("blaze", &err);
        box pb = {props[i].x, props[i].y, props[i].w, props[i].h};
        for (int g = 0; g < p->n_gt && !real; g++) real = same_face(pb, p->gt[g], p->img.width, p->img.height);
        int row = (int)((props[i].score - 0.2f) * 10), col = found ? 1 + (int)(d.score * 10) : 0;
        row = row < 0 ? 0 : row > 7 ? 7 : row;
        col = col > 10 ? 10 : col;
        (real ? b->props.real : b->props.fake)[row][col]++;
    }
}

static void print_proposals(const bench *b) {
    printf("# FaceBoxes proposals (%s): rows = FaceBoxes score, columns = BlazeFace score on the crop "
           "(- = no face-shaped detection overlapping); real faces / not faces\n", b->configs[0].label);
    printf("%-10s %9s", "# fb score", "-");
    for (int c = 1; c < 11; c++) printf(" %6.1f+  ", (c - 1) / 10.0);
    printf("\n");
    for (int r = 0; r < 8; r++) {
        printf("%4.1f-%-5.1f", 0.2 + r / 10.0, 0.3 + r / 10.0);
        for (int c = 0; c < 11; c++) printf(" %4d/%-4d", b->props.real[r][c], b->props.fake[r][c]);
        printf("\n");
    }
}

/* Runs every detector on p; `label` prints a line for this photo. */
static void run(bench *b, tally *t, photo *p, const char *label) {
    static vs_face_det dets[MAX_DETS];
    t->photos++;
    t->faces += p->n_gt;
    if (b->proposals) {
        tabulate_proposals(b, p);
        return;
    }
    if (label) printf("%-46s %9s %3d", label, "", p->n_gt);
    for (int c = 0; c < b->n_configs; c++) {
        config *cf = &b->configs[c];
        vs_error err = {0};
        int n = 0, found, invented;
        double t0 = bench_now_ms();
        if (vs_detect_run(b->blaze_rt, fb_runtime(cf, &p->img), &p->img, &cf->cfg, dets, MAX_DETS, &n, &err) != VS_OK)
            die("detect", &err);
        double ms = bench_now_ms() - t0;
        score(p, dets, n, &found, &invented);
        t->found[c] += found;
        t->invented[c] += invented;
        t->ms[c] += ms;
        if (label) printf(" | %5d %3d %6.1f", found, invented, ms);
        if (b->save_dir) save_photo(b, t->kind, c, p, dets, n, found, invented);
    }
    if (label) printf("\n");
}

static void print_header(const bench *b, const char *first) {
    printf("%-46s %9s %3s", first, "photos", "n");
    for (int c = 0; c < b->n_configs; c++) printf(" | %c found inv     ms", 'A' + c);
    printf("\n");
}

static void print_tally(const bench *b, const tally *t) {
    printf("%-46s %9d %3d", t->kind, t->photos, t->faces);
    for (int c = 0; c < b->n_configs; c++)
        printf(" | %5d %3d %6.1f", t->found[c], t->invented[c], t->photos ? t->ms[c] / t->photos : 0);
    printf("\n");
}

/* ---- building photos ---- */

/* A face-free canvas: smooth colour blobs and fine noise, so the detector
 * sees texture rather than a flat wall. */
static void fill_background(bench *b, vs_image *img) {
    float cx[6], cy[6], col[6][3];
    for (int k = 0; k < 6; k++) {
        cx[k] = (float)(bench_rnd(&b->rnd) % (uint64_t)img->width);
        cy[k] = (float)(bench_rnd(&b->rnd) % (uint64_t)img->height);
        for (int c = 0; c < 3; c++) col[k][c] = (float)(40 + bench_rnd(&b->rnd) % 180);
    }
    float s2 = 2.0f * (0.3f * img->width) * (0.3f * img->width);
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++) {
            float acc[3] = {0}, wsum = 1e-6f;
            for (int k = 0; k < 6; k++) {
                float dx = x - cx[k], dy = y - cy[k], w = expf(-(dx * dx + dy * dy) / s2);
                wsum += w;
                for (int c = 0; c < 3; c++) acc[c] += w * col[k][c];
            }
            uint8_t *px = img->data + ((size_t)y * img->width + x) * 3;
            int noise = (int)(bench_rnd(&b->rnd) % 17) - 8;
            for (int c = 0; c < 3; c++) {
                int v = (int)(acc[c] / wsum) + noise;
                px[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
}

static void new_canvas(bench *b, photo *p, int w, int h) {
    vs_error err = {0};
    memset(p, 0, sizeof *p);
    if (vs_image_alloc(&p->img, w, h, 3, &err) != VS_OK) die("canvas", &err);
    fill_background(b, &p->img);
}

/* Pastes source s scaled so its face is `side` px, showing a window of
 * ctx x side around the face (moved to stay inside the source), with the
 * face centre at (fx, fy) of the canvas; the window is clipped by the canvas.
 * ctx <= 0 pastes the whole scaled source. Records the face. */
static void paste(bench *b, photo *p, int s, float side, float ctx, float fx, float fy) {
    const vs_image *src = &b->src[s];
    const box f = shared[s].faces[0];
    float k = side / f.w;
    vs_image sc = {0};
    vs_error err = {0};
    int sw = (int)lroundf(src->width * k), sh = (int)lroundf(src->height * k);
    if (vs_image_resize(src, sw < 1 ? 1 : sw, sh < 1 ? 1 : sh, &sc, &err) != VS_OK) die("resize", &err);
    float fcx = (f.x + f.w / 2) * k, fcy = (f.y + f.h / 2) * k;
    /* window in scaled-source pixels */
    float win = ctx > 0 ? ctx * side : 1e9f;
    float wx0 = fcx - win / 2, wy0 = fcy - win / 2, wx1 = wx0 + win, wy1 = wy0 + win;
    if (ctx > 0) {
        if (wx0 < 0) wx1 -= wx0, wx0 = 0;
        if (wy0 < 0) wy1 -= wy0, wy0 = 0;
        if (wx1 > sc.width) wx0 -= wx1 - sc.width, wx1 = (float)sc.width;
        if (wy1 > sc.height) wy0 -= wy1 - sc.height, wy1 = (float)sc.height;
    }
    wx0 = fmaxf(wx0, 0), wy0 = fmaxf(wy0, 0), wx1 = fminf(wx1, (float)sc.width), wy1 = fminf(wy1, (float)sc.height);
    int dx = (int)lroundf(fx - fcx), dy = (int)lroundf(fy - fcy); /* canvas = scaled + (dx, dy) */
    for (int y = (int)wy0; y < (int)wy1; y++) {
        int cy = y + dy;
        if (cy < 0 || cy >= p->img.height) continue;
        for (int x = (int)wx0; x < (int)wx1; x++) {
            int cx = x + dx;
            if (cx < 0 || cx >= p->img.width) continue;
            memcpy(p->img.data + ((size_t)cy * p->img.width + cx) * 3, sc.data + ((size_t)y * sc.width + x) * 3, 3);
        }
    }
    vs_image_free(&sc);
    if (p->n_gt < MAX_GT) p->gt[p->n_gt++] = (box){fx - side / 2, fy - side / 2, side, side};
}

/* Sources whose face is at least min_face px (upscaling a small face only
 * blurs it). */
static int sources(int *out, float min_face) {
    int n = 0;
    for (int i = 0; i < N_SHARED; i++)
        if (shared[i].source && shared[i].faces[0].w >= min_face) out[n++] = i;
    return n;
}

static int wanted(const bench *b, const char *kind) { return !b->only || !strncmp(kind, b->only, strlen(b->only)); }

/* size<S>: a grid of faces of side S, 2x context each, jittered. */
static void kind_size(bench *b, int side, tally *t) {
    int src[N_SHARED], ns = sources(src, side / 1.5f);
    int w = side >= 400 ? 2000 : 1600, h = side >= 400 ? 1500 : 1200;
    float ctx = side >= 400 ? 1.6f : 2.0f, cell = ctx * side * 1.15f;
    int cols = (int)(w / cell), rows = (int)(h / cell), per = cols * rows < 12 ? cols * rows : 12;
    for (int c = 0, next = 0; c < 3; c++) {
        photo p;
        new_canvas(b, &p, w, h);
        /* a random choice of `per` grid cells */
        int cells[256], nc = cols * rows < 256 ? cols * rows : 256;
        for (int i = 0; i < nc; i++) cells[i] = i;
        for (int i = 0; i < per; i++) {
            int j = i + (int)(bench_rnd(&b->rnd) % (uint64_t)(nc - i)), tmp = cells[i];
            cells[i] = cells[j], cells[j] = tmp;
            float jx = (float)(bench_rnd(&b->rnd) % 100) / 100.0f - 0.5f, jy = (float)(bench_rnd(&b->rnd) % 100) / 100.0f - 0.5f;
            float ox = (w - cols * cell) / 2, oy = (h - rows * cell) / 2;
            float fx = ox + (cells[i] % cols + 0.5f) * cell + jx * 0.1f * cell;
            float fy = oy + (cells[i] / cols + 0.5f) * cell + jy * 0.1f * cell;
            paste(b, &p, src[next++ % ns], (float)side, ctx, fx, fy);
        }
        run(b, t, &p, NULL);
        vs_image_free(&p.img);
    }
}

/* cut_<side>: a close-up face cut by one border. The whole source is pasted,
 * so the rest of the frame is the photo's own background. */
static void kind_cut(bench *b, int border, tally *t) {
    int src[N_SHARED], ns = sources(src, 150);
    const int w = 1024, h = 768;
    const float side = 0.4f * h, fracs[3] = {0.25f, 0.375f, 0.5f};
    for (int i = 0; i < ns && i < 6; i++)
        for (int f = 0; f < 3; f++) {
            photo p;
            new_canvas(b, &p, w, h);
            float out = fracs[f] * side, fx = w * 0.5f, fy = h * 0.5f;
            switch (border) {
            case 0: fx = side / 2 - out; break;     /* left */
            case 1: fx = w - side / 2 + out; break; /* right */
            case 2: fy = side / 2 - out; break;     /* top */
            default: fy = h - side / 2 + out; break; /* bottom */
            }
            paste(b, &p, src[(i * 3 + border) % ns], side, 0, fx, fy);
            run(b, t, &p, NULL);
            vs_image_free(&p.img);
        }
}

/* rot<q*90>: each source photo turned clockwise q times. */
static void kind_rot(bench *b, int q, tally *t) {
    int src[N_SHARED], ns = sources(src, 0);
    for (int i = 0; i < ns; i++) {
        photo p;
        memset(&p, 0, sizeof p);
        vs_error err = {0};
        const vs_image *s = &b->src[src[i]];
        if (vs_image_rotate(s, q, &p.img, &err) != VS_OK) die("rotate", &err);
        box f = shared[src[i]].faces[0];
        float cx = f.x + f.w / 2, cy = f.y + f.h / 2, rx = cx, ry = cy;
        if (q == 1) rx = s->height - cy, ry = cx;
        if (q == 2) rx = s->width - cx, ry = s->height - cy;
        if (q == 3) rx = cy, ry = s->width - cx;
        p.n_gt = 1;
        p.gt[0] = (box){rx - f.w / 2, ry - f.h / 2, f.w, f.h};
        run(b, t, &p, NULL);
        vs_image_free(&p.img);
    }
}

/* large: the face fills 65 % of the frame height. */
static void kind_large(bench *b, tally *t) {
    int src[N_SHARED], ns = sources(src, 250);
    for (int i = 0; i < ns; i++) {
        photo p;
        new_canvas(b, &p, 1280, 960);
        float fx = 640 + (float)((int)(bench_rnd(&b->rnd) % 300) - 150);
        paste(b, &p, src[i], 0.65f * 960, 0, fx, 480);
        run(b, t, &p, NULL);
        vs_image_free(&p.img);
    }
}

/* selfie: seven faces laid out like a crowded group selfie. */
static void kind_selfie(bench *b, tally *t) {
    int big[N_SHARED], nb = sources(big, 250), any[N_SHARED], na = sources(any, 100);
    /* side, centre x, centre y, context (0 = whole source); small first, the
     * large foreground face last so it may cover others' context */
    static const float layout[7][4] = {
        {60, 1100, 750, 1.6f},   {100, 900, 300, 1.6f},   {120, 600, 200, 1.6f}, {140, 250, 250, 1.6f},
        {160, 1250, 220, 1.6f},  {220, 1578, 610, 1.6f}, /* 40 % past the right border */
        {450, 575, 1087, 1.6f},  /* 25 % past the bottom border */
    };
    for (int c = 0; c < 6; c++) {
        photo p;
        new_canvas(b, &p, 1600, 1200);
        for (int k = 0; k < 7; k++) {
            int s = k == 6 ? big[c % nb] : any[(c * 7 + k) % na];
            paste(b, &p, s, layout[k][0], layout[k][3], layout[k][1], layout[k][2]);
        }
        run(b, t, &p, NULL);
        vs_image_free(&p.img);
    }
}

/* faceless: the portraits without their heads. */
static void kind_faceless(bench *b, tally *t) {
    int src[N_SHARED], ns = sources(src, 0);
    vs_error err = {0};
    for (int i = 0; i < ns; i++) {
        photo p;
        memset(&p, 0, sizeof p);
        const vs_image *s = &b->src[src[i]];
        if (vs_image_alloc(&p.img, s->width, s->height, 3, &err) != VS_OK) die("faceless", &err);
        memcpy(p.img.data, s->data, (size_t)s->width * s->height * 3);
        box f = shared[src[i]].faces[0];
        float cx = f.x + f.w / 2, cy = f.y + f.h / 2, r = 0.8f * f.w;
        for (int y = (int)fmaxf(cy - r * 1.2f, 0); y < (int)fminf(cy + r, (float)s->height); y++)
            for (int x = (int)fmaxf(cx - r, 0); x < (int)fminf(cx + r, (float)s->width); x++) {
                uint8_t *px = p.img.data + ((size_t)y * s->width + x) * 3;
                px[0] = 120, px[1] = 110, px[2] = 100;
            }
        run(b, t, &p, NULL);
        vs_image_free(&p.img);
    }
}

static void kind_shared(bench *b, tally *t) {
    if (!b->proposals) print_header(b, "# shared photo");
    for (int i = 0; i < N_SHARED; i++) {
        photo p;
        memset(&p, 0, sizeof p);
        p.img = b->src[i];
        p.n_gt = shared[i].n;
        memcpy(p.gt, shared[i].faces, sizeof shared[i].faces);
        run(b, t, &p, shared[i].path);
    }
}

/* ---- main ---- */

static void load(bench *b, const char *models) {
    vs_error err = {0};
    char path[1200];
    for (int i = 0; i < N_SHARED; i++) {
        snprintf(path, sizeof path, "%s/%s", b->faces_dir, shared[i].path);
        if (vs_image_load(path, NULL, &b->src[i], &err) != VS_OK) die("load", &err);
    }
    snprintf(path, sizeof path, "%s/blazeface-back.json", models);
    vs_model_opts o = {.batch = 1, .n_outputs = 4};
    for (int i = 0; i < 4; i++) o.outputs[i] = vs_blaze_outputs[i];
    if (vs_model_load(path, &o, &b->blaze, &err) != VS_OK) die("model", &err);
    if (vs_runtime_new(b->blaze, 1, &b->blaze_rt, &err) != VS_OK) die("runtime", &err);
    snprintf(path, sizeof path, "%s/%s", models, VS_FACEBOXES_MODEL);
    for (int c = 0; c < b->n_configs; c++) {
        config *cf = &b->configs[c];
        if (cf->cfg.detector == VS_DETECTOR_BLAZEFACE) continue;
        int side = cf->cfg.fb_side;
        if (vs_faceboxes_models_load(path, side, cf->shapes, &cf->fbm, &err) != VS_OK ||
            vs_faceboxes_runtimes_new(cf->fbm, 1, !cf->shapes, &cf->fbr, &err) != VS_OK)
            die("model", &err);
    }
}

/* "name[:key=value,...]" -> a configuration with its label. */
static int parse_config(const char *spec, config *cf) {
    char name[64], opts[256] = "";
    const char *colon = strchr(spec, ':');
    snprintf(name, sizeof name, "%.*s", colon ? (int)(colon - spec) : (int)strlen(spec), spec);
    if (colon) snprintf(opts, sizeof opts, "%s", colon + 1);
    int d = vs_detector_find(name);
    if (d < 0) return -1;
    vs_detect_cfg_default(&cf->cfg);
    cf->cfg.detector = (vs_detector)d;
    cf->shapes = 1;
    for (char *save = NULL, *kv = strtok_r(opts, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) return -1;
        *eq = '\0';
        double v = atof(eq + 1);
        if (!strcmp(kv, "side")) cf->cfg.fb_side = (int)v;
        else if (!strcmp(kv, "thr")) cf->cfg.fb_threshold = (float)v;
        else if (!strcmp(kv, "confirm")) cf->cfg.fb_confirm = (float)v;
        else if (!strcmp(kv, "sure")) cf->cfg.fb_sure = (float)v;
        else if (!strcmp(kv, "sureconfirm")) cf->cfg.fb_sure_confirm = (float)v;
        else if (!strcmp(kv, "context")) cf->cfg.fb_context = (float)v;
        else if (!strcmp(kv, "passes")) cf->cfg.max_passes = (int)v;
        else if (!strcmp(kv, "rot")) cf->cfg.try_rotations = (int)v;
        else if (!strcmp(kv, "shapes")) cf->shapes = (int)v;
        else return -1;
    }
    const vs_detect_cfg *c = &cf->cfg;
    int n = snprintf(cf->label, sizeof cf->label, "%s (pyramid <= %d passes (0: its default), rotations %s", name, c->max_passes,
                     c->try_rotations ? "on" : "off");
    if (c->detector != VS_DETECTOR_BLAZEFACE)
        snprintf(cf->label + n, sizeof cf->label - (size_t)n,
                 "; faceboxes %d px%s >= %.2f, BlazeFace on a %.1fx crop >= %.2f, >= %.2f where faceboxes >= %.2f)",
                 c->fb_side, cf->shapes ? " fitted" : " square", c->fb_threshold, c->fb_context, c->fb_confirm, c->fb_sure_confirm, c->fb_sure);
    else
        snprintf(cf->label + n, sizeof cf->label - (size_t)n, ")");
    return 0;
}

int main(int argc, char **argv) {
    static bench b;
    const char *env = getenv("VISAGE_MODELS");
    const char *models = env && *env ? env : "models";
    snprintf(b.faces_dir, sizeof b.faces_dir, "../shared/data/faces");
    b.rnd = 0x9e3779b97f4a7c15ull;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--faces") && i + 1 < argc) snprintf(b.faces_dir, sizeof b.faces_dir, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--detector") && i + 1 < argc && b.n_configs < MAX_CONFIGS &&
                 parse_config(argv[i + 1], &b.configs[b.n_configs]) == 0) b.n_configs++, i++;
        else if (!strcmp(argv[i], "--save") && i + 1 < argc) b.save_dir = argv[++i];
        else if (!strcmp(argv[i], "--raw")) b.raw = 1;
        else if (!strcmp(argv[i], "--proposals")) b.proposals = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) b.only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--faces DIR] [--detector NAME[:side=N,thr=X,confirm=X,sure=X,sureconfirm=X,context=X,passes=N,rot=0|1]]... "
                            "[--save DIR [--raw]] [--only KIND]\n", argv[0]);
            return 2;
        }
    }
    if (b.n_configs == 0) {
        static const char *defaults[3] = {"blazeface", "faceboxes", "union"};
        for (int i = 0; i < 3; i++) parse_config(defaults[i], &b.configs[b.n_configs++]);
    }
    if (b.proposals && b.configs[0].cfg.detector == VS_DETECTOR_BLAZEFACE) {
        for (int c = 1; c < b.n_configs; c++)
            if (b.configs[c].cfg.detector != VS_DETECTOR_BLAZEFACE) b.configs[0] = b.configs[c];
        b.n_configs = 1;
    }
    if (b.save_dir) mkdir(b.save_dir, 0755);
    load(&b, models);
    for (int c = 0; c < b.n_configs; c++) printf("# %c = %s\n", 'A' + c, b.configs[c].label);
    static tally tallies[32];
    int nt = 0;
    static const int sizes[5] = {20, 40, 80, 160, 400};
    static const char *size_names[5] = {"size20", "size40", "size80", "size160", "size400"};
    static const char *cut_names[4] = {"cut_left", "cut_right", "cut_top", "cut_bottom"};
    static const char *rot_names[3] = {"rot90", "rot180", "rot270"};
    for (int i = 0; i < 5; i++)
        if (wanted(&b, size_names[i])) tallies[nt].kind = size_names[i], kind_size(&b, sizes[i], &tallies[nt++]);
    for (int i = 0; i < 4; i++)
        if (wanted(&b, cut_names[i])) tallies[nt].kind = cut_names[i], kind_cut(&b, i, &tallies[nt++]);
    for (int q = 1; q <= 3; q++)
        if (wanted(&b, rot_names[q - 1])) tallies[nt].kind = rot_names[q - 1], kind_rot(&b, q, &tallies[nt++]);
    if (wanted(&b, "large")) tallies[nt].kind = "large", kind_large(&b, &tallies[nt++]);
    if (wanted(&b, "selfie")) tallies[nt].kind = "selfie", kind_selfie(&b, &tallies[nt++]);
    if (wanted(&b, "faceless")) tallies[nt].kind = "faceless", kind_faceless(&b, &tallies[nt++]);
    if (wanted(&b, "shared")) tallies[nt].kind = "shared", kind_shared(&b, &tallies[nt++]);
    if (b.proposals) {
        print_proposals(&b);
        goto out;
    }
    print_header(&b, "# kind (found, invented, ms per image)");
    tally syn = {.kind = "synthetic, all kinds"};
    for (int i = 0; i < nt; i++) {
        print_tally(&b, &tallies[i]);
        if (!strcmp(tallies[i].kind, "shared")) continue;
        syn.photos += tallies[i].photos, syn.faces += tallies[i].faces;
        for (int c = 0; c < b.n_configs; c++)
            syn.found[c] += tallies[i].found[c], syn.invented[c] += tallies[i].invented[c], syn.ms[c] += tallies[i].ms[c];
    }
    print_tally(&b, &syn);
out:
    for (int i = 0; i < N_SHARED; i++) vs_image_free(&b.src[i]);
    for (int c = 0; c < b.n_configs; c++) {
        vs_faceboxes_runtimes_free(b.configs[c].fbr);
        vs_faceboxes_models_free(b.configs[c].fbm);
    }
    vs_runtime_free(b.blaze_rt);
    vs_model_free(b.blaze);
    return 0;
}
