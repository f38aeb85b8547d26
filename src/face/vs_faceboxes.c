/* vs_faceboxes.c - FaceBoxes: the parts of its graph that visage runs in C
 * (resize and pad, anchors, softmax, box decoding, NMS), around the network
 * body that the executor runs. Tuned for one pass per photo at ~1024 px
 * (21824 anchors): anchors are not stored, each is made from its index only
 * when its score passes the threshold. */
#include "vs_faceboxes.h"

#include <math.h>
#include <string.h>

#include "vs_alloc.h"

const char *const vs_faceboxes_outputs[6] = {
    "prediction_layers/class_predictor_0/BiasAdd", "prediction_layers/box_encoding_predictor_0/BiasAdd",
    "prediction_layers/class_predictor_1/BiasAdd", "prediction_layers/box_encoding_predictor_1/BiasAdd",
    "prediction_layers/class_predictor_2/BiasAdd", "prediction_layers/box_encoding_predictor_2/BiasAdd",
};

/* The anchor layout of the graph's anchor_generator. */
typedef struct fb_level {
    int stride, n_sizes, size[3], dens[3];
} fb_level;

static const fb_level levels[3] = {
    {32, 3, {32, 64, 128}, {4, 2, 1}},
    {64, 1, {256}, {1}},
    {128, 1, {512}, {1}},
};

#define CENTRE_VARIANCE 0.1f /* the graph's 1/10, 1/10, 1/5, 1/5 box coder */
#define SIZE_VARIANCE 0.2f
#define MAX_CANDIDATES 4096

static int anchors_per_cell(const fb_level *l) {
    int n = 0;
    for (int s = 0; s < l->n_sizes; s++) n += l->dens[s] * l->dens[s];
    return n;
}

/* Anchor a of cell (gx, gy): within a cell the sizes come in order, and a
 * densified size's n x n copies have their centres spread over the anchor's
 * side, the y shift running fastest (as the graph's tile/meshgrid lays them
 * out). Box (ymin, xmin, ymax, xmax) clipped to the h x w input. */
static void anchor_box(const fb_level *l, int gx, int gy, int a, int h, int w, float box[4]) {
    int s = 0;
    while (a >= l->dens[s] * l->dens[s]) a -= l->dens[s] * l->dens[s], s++;
    int n = l->dens[s];
    float size = (float)l->size[s], step = size / n;
    float cy = (gy + 0.5f) * l->stride - size / 2 + step / 2 + (a % n) * step;
    float cx = (gx + 0.5f) * l->stride - size / 2 + step / 2 + (a / n) * step;
    box[0] = fminf(fmaxf(cy - size / 2, 0), (float)h);
    box[1] = fminf(fmaxf(cx - size / 2, 0), (float)w);
    box[2] = fminf(fmaxf(cy + size / 2, 0), (float)h);
    box[3] = fminf(fmaxf(cx + size / 2, 0), (float)w);
}

int vs_faceboxes_anchors(int h, int w, float *anchors, int cap) {
    int k = 0;
    for (int li = 0; li < 3; li++) {
        const fb_level *l = &levels[li];
        int gh = h / l->stride, gw = w / l->stride, per = anchors_per_cell(l);
        for (int gy = 0; gy < gh; gy++)
            for (int gx = 0; gx < gw; gx++)
                for (int a = 0; a < per; a++, k++)
                    if (k < cap) anchor_box(l, gx, gy, a, h, w, anchors + 4 * (size_t)k);
    }
    return k;
}

int vs_faceboxes_decode(const float *const outs[6], int h, int w, float threshold, float clip_w, float clip_h,
                        vs_face_det *out, int cap) {
    int n = 0;
    for (int li = 0; li < 3; li++) {
        const fb_level *l = &levels[li];
        const float *cls = outs[2 * li], *reg = outs[2 * li + 1];
        int gh = h / l->stride, gw = w / l->stride, per = anchors_per_cell(l);
        for (int gy = 0; gy < gh; gy++)
            for (int gx = 0; gx < gw; gx++)
                for (int a = 0; a < per; a++) {
                    size_t i = ((size_t)gy * gw + gx) * per + a;
                    /* softmax over (background, face) */
                    float score = 1.0f / (1.0f + expf(cls[2 * i] - cls[2 * i + 1]));
                    if (!(score >= threshold) || n >= cap) continue;
                    float an[4];
                    anchor_box(l, gx, gy, a, h, w, an);
                    const float *t = reg + 4 * i;
                    float ah = an[2] - an[0], aw = an[3] - an[1];
                    float cy = an[0] + ah / 2 + t[0] * CENTRE_VARIANCE * ah;
                    float cx = an[1] + aw / 2 + t[1] * CENTRE_VARIANCE * aw;
                    float bh = expf(t[2] * SIZE_VARIANCE) * ah, bw = expf(t[3] * SIZE_VARIANCE) * aw;
                    float y0 = fminf(fmaxf(cy - bh / 2, 0), clip_h), y1 = fminf(fmaxf(cy + bh / 2, 0), clip_h);
                    float x0 = fminf(fmaxf(cx - bw / 2, 0), clip_w), x1 = fminf(fmaxf(cx + bw / 2, 0), clip_w);
                    vs_face_det *d = &out[n++];
                    memset(d, 0, sizeof *d);
                    d->x = x0, d->y = y0, d->w = x1 - x0, d->h = y1 - y0;
                    d->score = score;
                }
    }
    return n;
}

vs_err vs_faceboxes_load(const char *json_path, int h, int w, vs_model **out, vs_error *err) {
    *out = NULL;
    if (h < VS_FACEBOXES_ALIGN || w < VS_FACEBOXES_ALIGN || h % VS_FACEBOXES_ALIGN || w % VS_FACEBOXES_ALIGN)
        return vs_fail(err, VS_ERR_INVALID_ARG, "%s: input %dx%d is not a multiple of %d", json_path, w, h,
                       VS_FACEBOXES_ALIGN);
    vs_model_opts o = {.batch = 1, .n_outputs = 6, .input = VS_FACEBOXES_INPUT_NODE, .input_ndim = 4,
                       .input_dims = {1, h, w, 3}};
    for (int i = 0; i < 6; i++) o.outputs[i] = vs_faceboxes_outputs[i];
    vs_err rc = vs_model_load(json_path, &o, out, err);
    if (rc != VS_OK) return rc;
    /* The decoder indexes outputs by anchor: their shapes must be the grid's. */
    for (int li = 0; li < 3 && rc == VS_OK; li++) {
        const fb_level *l = &levels[li];
        for (int k = 0; k < 2; k++) {
            vs_shape s = vs_model_output_shape(*out, 2 * li + k);
            size_t want[4] = {1, (size_t)(h / l->stride), (size_t)(w / l->stride),
                              (size_t)anchors_per_cell(l) * (k ? 4 : 2)};
            if (s.ndim != 4 || memcmp(s.dims, want, sizeof want) != 0) {
                rc = vs_fail(err, VS_ERR_MODEL, "%s: output %s has an unexpected shape", json_path,
                             vs_faceboxes_outputs[2 * li + k]);
                break;
            }
        }
    }
    if (rc != VS_OK) {
        vs_model_free(*out);
        *out = NULL;
    }
    return rc;
}

/* Scales img into the top-left of the h x w input as the graph sees it:
 * pixel * (1/255 as the graph's float16) then 2x - 1; padding is -1 (the
 * graph pads zeros before standardising). *sw x *sh is the scaled photo. */
static vs_err fill_input(const vs_image *img, int h, int w, float *in, int *sw, int *sh, vs_error *err) {
    float s = fminf((float)w / img->width, (float)h / img->height);
    int rw = (int)lroundf(img->width * s), rh = (int)lroundf(img->height * s);
    rw = rw < 1 ? 1 : rw > w ? w : rw;
    rh = rh < 1 ? 1 : rh > h ? h : rh;
    vs_image sc = {0};
    vs_err rc = vs_image_resize(img, rw, rh, &sc, err);
    if (rc != VS_OK) return rc;
    for (size_t i = 0; i < (size_t)h * w * 3; i++) in[i] = -1.0f;
    for (int y = 0; y < rh; y++)
        for (int x = 0; x < rw * 3; x++) {
            float v = (float)sc.data[(size_t)y * rw * 3 + x] * 0.0039215087890625f;
            in[(size_t)y * w * 3 + x] = 2.0f * v - 1.0f;
        }
    vs_image_free(&sc);
    *sw = rw;
    *sh = rh;
    return VS_OK;
}

vs_err vs_faceboxes_detect(vs_runtime *rt, const vs_image *img, float threshold, float nms_iou, vs_face_det *out,
                           int cap, int *n_out, vs_error *err) {
    *n_out = 0;
    if (!img || !img->data || img->channels != 3 || img->width < 1 || img->height < 1)
        return vs_fail(err, VS_ERR_INVALID_ARG, "faceboxes: need a non-empty RGB image");
    vs_shape is = vs_model_input_shape(vs_runtime_model(rt));
    int h = (int)is.dims[1], w = (int)is.dims[2], sw, sh;
    vs_err rc = fill_input(img, h, w, vs_runtime_input(rt), &sw, &sh, err);
    if (rc == VS_OK) rc = vs_runtime_run(rt, err);
    if (rc != VS_OK) return rc;
    vs_face_det *cand = vs_malloc(sizeof *cand * MAX_CANDIDATES);
    if (!cand) return vs_fail(err, VS_ERR_NOMEM, "faceboxes: candidates");
    const float *outs[6];
    for (int i = 0; i < 6; i++) outs[i] = vs_runtime_output(rt, i);
    int n = vs_faceboxes_decode(outs, h, w, threshold, (float)sw, (float)sh, cand, MAX_CANDIDATES);
    n = vs_nms(cand, n, nms_iou, 0);
    if (n > cap) n = cap;
    float kx = (float)img->width / sw, ky = (float)img->height / sh; /* input -> photo pixels */
    for (int i = 0; i < n; i++) {
        out[i] = cand[i];
        out[i].x *= kx, out[i].w *= kx, out[i].y *= ky, out[i].h *= ky;
    }
    vs_free(cand);
    *n_out = n;
    return VS_OK;
}

/* ---- one input shape per photo shape ---- */

struct vs_faceboxes_models {
    int side, short_side;
    vs_model *m[VS_FACEBOXES_SHAPES]; /* square, wide (short_side high), tall (short_side wide) */
};

struct vs_faceboxes_runtimes {
    const vs_faceboxes_models *m;
    int threads;
    int square_only;
    vs_runtime *rt[VS_FACEBOXES_SHAPES];
};

vs_err vs_faceboxes_models_load(const char *json_path, int side, int fitted, vs_faceboxes_models **out,
                                vs_error *err) {
    *out = NULL;
    vs_faceboxes_models *m = vs_calloc(1, sizeof *m);
    if (!m) return vs_fail(err, VS_ERR_NOMEM, "faceboxes: models");
    m->side = side;
    /* 3/4 of the side, rounded up to the graph's alignment */
    m->short_side = (side * 3 / 4 + VS_FACEBOXES_ALIGN - 1) / VS_FACEBOXES_ALIGN * VS_FACEBOXES_ALIGN;
    vs_err rc = vs_faceboxes_load(json_path, side, side, &m->m[0], err);
    if (rc == VS_OK && fitted && m->short_side < side) {
        rc = vs_faceboxes_load(json_path, m->short_side, side, &m->m[1], err);
        if (rc == VS_OK) rc = vs_faceboxes_load(json_path, side, m->short_side, &m->m[2], err);
    }
    if (rc != VS_OK) {
        vs_faceboxes_models_free(m);
        return rc;
    }
    *out = m;
    return VS_OK;
}

void vs_faceboxes_models_free(vs_faceboxes_models *m) {
    if (!m) return;
    for (int i = 0; i < VS_FACEBOXES_SHAPES; i++) vs_model_free(m->m[i]);
    vs_free(m);
}

vs_err vs_faceboxes_runtimes_new(const vs_faceboxes_models *m, int threads, int square_only,
                                 vs_faceboxes_runtimes **out, vs_error *err) {
    *out = vs_calloc(1, sizeof **out);
    if (!*out) return vs_fail(err, VS_ERR_NOMEM, "faceboxes: runtimes");
    (*out)->m = m;
    (*out)->threads = threads;
    (*out)->square_only = square_only;
    /* the square input serves every photo the others do not: made now, so
     * no request pays for it; the fitted ones when first needed */
    vs_err rc = vs_runtime_new(m->m[0], threads, &(*out)->rt[0], err);
    if (rc != VS_OK) {
        vs_faceboxes_runtimes_free(*out);
        *out = NULL;
    }
    return rc;
}

void vs_faceboxes_runtimes_free(vs_faceboxes_runtimes *r) {
    if (!r) return;
    for (int i = 0; i < VS_FACEBOXES_SHAPES; i++) vs_runtime_free(r->rt[i]);
    vs_free(r);
}

vs_err vs_faceboxes_runtime_for(vs_faceboxes_runtimes *r, int w, int h, vs_runtime **out, vs_error *err) {
    const vs_faceboxes_models *m = r->m;
    int shape = 0;
    /* the short side once the long side is scaled to m->side */
    double scaled_short = w > 0 && h > 0 ? (double)m->side * (w < h ? w : h) / (w > h ? w : h) : m->side;
    /* the graph was trained on photos padded with -1 (black) below and to
     * the right; a photo that would fill the short input to its edge meets
     * the convolutions' zero padding there instead, and lost a 40-px face
     * at that edge (docs/detector-notes.md): it keeps the square input */
    if (m->m[1] && !r->square_only && scaled_short <= m->short_side - VS_FACEBOXES_FIT_MARGIN) shape = w >= h ? 1 : 2;
    if (!r->rt[shape]) {
        vs_err rc = vs_runtime_new(m->m[shape], r->threads, &r->rt[shape], err);
        if (rc != VS_OK) return rc;
    }
    *out = r->rt[shape];
    return VS_OK;
}

void vs_faceboxes_runtimes_clock(const vs_faceboxes_runtimes *r, uint64_t *runs, int64_t *ns) {
    *runs = 0;
    *ns = 0;
    for (int i = 0; i < VS_FACEBOXES_SHAPES; i++)
        if (r->rt[i]) {
            uint64_t a;
            int64_t b;
            vs_runtime_clock(r->rt[i], &a, &b);
            *runs += a;
            *ns += b;
        }
}
