/* vs_geometry.c - pixel buffers and the geometry done on them: allocation,
 * resize (bilinear, area-averaging when shrinking), quarter turns and EXIF
 * orientations, and the affine warp that cuts aligned 224x224 face crops. */
#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_image_internal.h"

/* Zeroed pixels through vs_calloc, shape checked and size overflow-checked. */
vs_err vs_image_alloc(vs_image *img, int width, int height, int channels, vs_error *err) {
    if (!img) return vs_fail(err, VS_ERR_INVALID_ARG, "image alloc: img is NULL");
    memset(img, 0, sizeof *img);
    if (width <= 0 || height <= 0 || channels < 1 || channels > 4)
        return vs_fail(err, VS_ERR_INVALID_ARG, "image alloc: bad shape %dx%dx%d", width, height,
                       channels);
    size_t n;
    if (!vs_mul_size((size_t)width, (size_t)height, &n) || !vs_mul_size(n, (size_t)channels, &n))
        return vs_fail(err, VS_ERR_TOO_LARGE, "image alloc: %dx%dx%d overflows", width, height,
                       channels);
    img->data = vs_calloc(n, 1);
    if (!img->data)
        return vs_fail(err, VS_ERR_NOMEM, "image alloc: no memory for %dx%dx%d", width, height,
                       channels);
    img->width = width;
    img->height = height;
    img->channels = channels;
    return VS_OK;
}

/* Frees the pixels and zeroes the struct, so a second call is harmless. */
void vs_image_free(vs_image *img) {
    if (!img) return;
    vs_free(img->data);
    memset(img, 0, sizeof *img);
}

/* 1 when img has a shape and pixels. */
static int image_ok(const vs_image *img) {
    return img && img->data && img->width > 0 && img->height > 0 && img->channels >= 1 &&
           img->channels <= 4;
}

/* ---- resize ------------------------------------------------------------ */

/* Resampling weights for one axis: output i reads inputs first[i] ..
 * first[i] + count[i] - 1 with weights w[i * taps ..]. Ranges only move
 * forward as i grows, which the row cache in vs_image_resize relies on. */
typedef struct axis_taps {
    int taps;   /* max inputs per output */
    int *first; /* [out] */
    int *count; /* [out] */
    float *w;   /* [out * taps] */
} axis_taps;

/* Releases the weight tables of one axis (NULL members are fine). */
static void axis_free(axis_taps *a) {
    vs_free(a->first);
    vs_free(a->count);
    vs_free(a->w);
}

/* Builds the weights mapping n_in samples to n_out: area averaging (a box of
 * width n_in/n_out, fractional at the ends) when shrinking by more than 2x,
 * else bilinear with pixel centres at +0.5 (edges clamped). */
static vs_err axis_build(axis_taps *a, int n_in, int n_out, vs_error *err) {
    double scale = (double)n_in / (double)n_out;
    int area = scale > 2.0;
    a->taps = area ? (int)ceil(scale) + 1 : 2;
    a->first = vs_calloc((size_t)n_out, sizeof *a->first);
    a->count = vs_calloc((size_t)n_out, sizeof *a->count);
    a->w = vs_calloc((size_t)n_out * (size_t)a->taps, sizeof *a->w);
    if (!a->first || !a->count || !a->w)
        return vs_fail(err, VS_ERR_NOMEM, "image resize: no memory for %d weights", n_out);

    for (int i = 0; i < n_out; i++) {
        float *w = a->w + (size_t)i * (size_t)a->taps;
        if (area) {
            double lo = i * scale, hi = (i + 1) * scale;
            int s0 = (int)floor(lo), s1 = (int)ceil(hi) - 1;
            if (s1 > n_in - 1) s1 = n_in - 1;
            if (s1 - s0 + 1 > a->taps) s1 = s0 + a->taps - 1; /* rounding guard */
            double sum = 0;
            for (int s = s0; s <= s1; s++) {
                double cover = fmin(hi, s + 1.0) - fmax(lo, (double)s);
                w[s - s0] = (float)(cover > 0 ? cover : 0);
                sum += w[s - s0];
            }
            for (int s = s0; s <= s1; s++) w[s - s0] = (float)(w[s - s0] / sum);
            a->first[i] = s0;
            a->count[i] = s1 - s0 + 1;
        } else {
            double c = (i + 0.5) * scale - 0.5;
            int s0 = (int)floor(c);
            float f = (float)(c - s0);
            if (s0 < 0) {
                a->first[i] = 0, a->count[i] = 1, w[0] = 1.0f;
            } else if (s0 >= n_in - 1) {
                a->first[i] = n_in - 1, a->count[i] = 1, w[0] = 1.0f;
            } else {
                a->first[i] = s0, a->count[i] = 2, w[0] = 1.0f - f, w[1] = f;
            }
        }
    }
    return VS_OK;
}

/* Horizontal pass of one source row into `out` (dst_w * c floats). Three
 * channels, the common case, get their own loop: summing in the same order
 * as the general one, so both give the same floats. */
static void resize_row(const uint8_t *src, int c, const axis_taps *ax, int dst_w, float *out) {
    if (c == 3) {
        for (int x = 0; x < dst_w; x++, out += 3) {
            const float *w = ax->w + (size_t)x * (size_t)ax->taps;
            const uint8_t *s = src + (size_t)ax->first[x] * 3;
            float a0 = 0, a1 = 0, a2 = 0;
            for (int t = 0, n = ax->count[x]; t < n; t++, s += 3) {
                a0 += w[t] * s[0];
                a1 += w[t] * s[1];
                a2 += w[t] * s[2];
            }
            out[0] = a0, out[1] = a1, out[2] = a2;
        }
        return;
    }
    for (int x = 0; x < dst_w; x++) {
        const float *w = ax->w + (size_t)x * (size_t)ax->taps;
        const uint8_t *s = src + (size_t)ax->first[x] * (size_t)c;
        int n = ax->count[x];
        for (int k = 0; k < c; k++) {
            float acc = 0;
            for (int t = 0; t < n; t++) acc += w[t] * s[(size_t)t * (size_t)c + (size_t)k];
            out[(size_t)x * (size_t)c + (size_t)k] = acc;
        }
    }
}

/* Vertical pass of one output row: o = rounded sum of wy[t] * rows[t], the
 * taps added in order (as a running sum from 0 would). Two taps, bilinear's
 * case, are one fused loop. Built for AVX2 too where the CPU has it (no FMA,
 * so the sums round as in the baseline build). */
__attribute__((target_clones("avx2", "default")))
static void resize_column(const float *const *rows, const float *wy, int n, size_t len, float *acc, uint8_t *o) {
    if (n == 2) {
        const float *r0 = rows[0], *r1 = rows[1], w0 = wy[0], w1 = wy[1];
        for (size_t i = 0; i < len; i++) {
            int v = (int)(w0 * r0[i] + w1 * r1[i] + 0.5f);
            o[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        return;
    }
    const float *r0 = rows[0], w0 = wy[0];
    for (size_t i = 0; i < len; i++) acc[i] = w0 * r0[i];
    for (int t = 1; t < n; t++) {
        const float *r = rows[t], wt = wy[t];
        for (size_t i = 0; i < len; i++) acc[i] += wt * r[i];
    }
    for (size_t i = 0; i < len; i++) {
        int v = (int)(acc[i] + 0.5f);
        o[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

/* Separable resampling of src into the already allocated *out: rows are
 * resampled horizontally once each into a small ring cache (as many rows as
 * the vertical filter has taps), and each output row is a weighted sum of
 * cached rows. Memory is O(taps * out width), not a full intermediate image. */
static vs_err resample(const vs_image *src, vs_image *out, vs_error *err) {
    vs_err rc = VS_OK;
    axis_taps ax = {0}, ay = {0};
    float *ring = NULL, *acc = NULL;
    int *ring_row = NULL;
    const float **rows = NULL;
    const int w = out->width, h = out->height, c = src->channels;

    rc = axis_build(&ax, src->width, w, err);
    if (rc != VS_OK) goto out;
    rc = axis_build(&ay, src->height, h, err);
    if (rc != VS_OK) goto out;
    const size_t row_floats = (size_t)w * (size_t)c;
    ring = vs_calloc((size_t)ay.taps * row_floats, sizeof *ring);
    acc = vs_calloc(row_floats, sizeof *acc);
    ring_row = vs_calloc((size_t)ay.taps, sizeof *ring_row);
    rows = vs_calloc((size_t)ay.taps, sizeof *rows);
    if (!ring || !acc || !ring_row || !rows) {
        rc = vs_fail(err, VS_ERR_NOMEM, "image resize: no memory for the row cache");
        goto out;
    }
    for (int i = 0; i < ay.taps; i++) ring_row[i] = -1;

    const size_t src_stride = (size_t)src->width * (size_t)c;
    for (int y = 0; y < h; y++) {
        int first = ay.first[y], n = ay.count[y];
        /* Rows first..first+n-1 map to distinct slots because n <= taps. */
        for (int t = 0; t < n; t++) {
            int r = first + t, slot = r % ay.taps;
            if (ring_row[slot] != r) {
                resize_row(src->data + (size_t)r * src_stride, c, &ax, w,
                           ring + (size_t)slot * row_floats);
                ring_row[slot] = r;
            }
            rows[t] = ring + (size_t)slot * row_floats;
        }
        resize_column(rows, ay.w + (size_t)y * (size_t)ay.taps, n, row_floats, acc,
                      out->data + (size_t)y * row_floats);
    }
out:
    vs_free(ring);
    vs_free(acc);
    vs_free(ring_row);
    vs_free(rows);
    axis_free(&ax);
    axis_free(&ay);
    return rc;
}

/* Validates, allocates the result and resamples (a same-size resize is a
 * copy). The weights are built per call: resize runs once per photo. */
vs_err vs_image_resize(const vs_image *src, int w, int h, vs_image *dst, vs_error *err) {
    vs_image out = {0};
    if (!dst) return vs_fail(err, VS_ERR_INVALID_ARG, "image resize: dst is NULL");
    memset(dst, 0, sizeof *dst);
    if (!image_ok(src)) return vs_fail(err, VS_ERR_INVALID_ARG, "image resize: empty source");
    if (w <= 0 || h <= 0)
        return vs_fail(err, VS_ERR_INVALID_ARG, "image resize: bad target %dx%d", w, h);

    vs_err rc = vs_image_alloc(&out, w, h, src->channels, err);
    if (rc != VS_OK) goto out;
    if (w == src->width && h == src->height)
        memcpy(out.data, src->data, (size_t)w * (size_t)h * (size_t)src->channels);
    else
        rc = resample(src, &out, err);
    if (rc != VS_OK) goto out;
    *dst = out;
    out = (vs_image){0};
out:
    vs_image_free(&out);
    return rc;
}

/* ---- quarter turns and EXIF orientations -------------------------------- */

/* One strided copy serves all eight EXIF orientations (and so the quarter
 * turns): each is an integer affine map from output to source pixels. */
vs_err vs_image_orient(const vs_image *src, int orientation, vs_image *dst, vs_error *err) {
    if (!dst) return vs_fail(err, VS_ERR_INVALID_ARG, "image orient: dst is NULL");
    memset(dst, 0, sizeof *dst);
    if (!image_ok(src)) return vs_fail(err, VS_ERR_INVALID_ARG, "image orient: empty source");
    if (orientation < 1 || orientation > 8)
        return vs_fail(err, VS_ERR_INVALID_ARG, "image orient: orientation %d", orientation);
    const int W = src->width, H = src->height, c = src->channels;
    const int swap = orientation >= 5;
    vs_err rc = vs_image_alloc(dst, swap ? H : W, swap ? W : H, c, err);
    if (rc != VS_OK) return rc;

    /* out(x, y) = in(x0 + x*dx_x + y*dy_x, y0 + x*dx_y + y*dy_y): every
     * orientation is such an integer map; express it as pixel offsets. */
    ptrdiff_t sx0, sy0, dxx, dxy, dyx, dyy;
    switch (orientation) {
    default:
    case 1: sx0 = 0, sy0 = 0, dxx = 1, dxy = 0, dyx = 0, dyy = 1; break;
    case 2: sx0 = W - 1, sy0 = 0, dxx = -1, dxy = 0, dyx = 0, dyy = 1; break;
    case 3: sx0 = W - 1, sy0 = H - 1, dxx = -1, dxy = 0, dyx = 0, dyy = -1; break;
    case 4: sx0 = 0, sy0 = H - 1, dxx = 1, dxy = 0, dyx = 0, dyy = -1; break;
    case 5: sx0 = 0, sy0 = 0, dxx = 0, dxy = 1, dyx = 1, dyy = 0; break;           /* transpose */
    case 6: sx0 = 0, sy0 = H - 1, dxx = 0, dxy = -1, dyx = 1, dyy = 0; break;      /* 90 cw */
    case 7: sx0 = W - 1, sy0 = H - 1, dxx = 0, dxy = -1, dyx = -1, dyy = 0; break; /* transverse */
    case 8: sx0 = W - 1, sy0 = 0, dxx = 0, dxy = 1, dyx = -1, dyy = 0; break;      /* 90 ccw */
    }
    const ptrdiff_t step_x = (dxx + dxy * W) * c; /* source bytes per output column */
    const ptrdiff_t step_y = (dyx + dyy * W) * c; /* source bytes per output row */
    const uint8_t *in = src->data;
    uint8_t *o = dst->data;
    /* Offsets, not pointers, walk the source: a pointer stepped past the
     * first row after the last output pixel would be undefined. */
    ptrdiff_t row_off = (sx0 + sy0 * (ptrdiff_t)W) * c;
    for (int y = 0; y < dst->height; y++, row_off += step_y) {
        ptrdiff_t off = row_off;
        if (c == 3) {
            for (int x = 0; x < dst->width; x++, off += step_x, o += 3) {
                o[0] = in[off];
                o[1] = in[off + 1];
                o[2] = in[off + 2];
            }
        } else {
            for (int x = 0; x < dst->width; x++, off += step_x, o += c)
                memcpy(o, in + off, (size_t)c);
        }
    }
    return VS_OK;
}

/* A quarter turn is the matching EXIF orientation; negative turns wrap. */
vs_err vs_image_rotate(const vs_image *src, int quarter_turns, vs_image *dst, vs_error *err) {
    static const int orientation_of_turns[4] = {1, 6, 3, 8};
    int q = ((quarter_turns % 4) + 4) % 4;
    return vs_image_orient(src, orientation_of_turns[q], dst, err);
}

/* ---- affine warp ---------------------------------------------------------- */

#define WARP_BITS 10 /* sub-pixel precision of the bilinear weights */
#define WARP_ONE (1 << WARP_BITS)
#define STEP_BITS 16 /* precision of the incremental row walk */

/* Fetches channel k of source pixel (x, y) or the border value outside. */
static inline int px_or_border(const vs_image *s, int x, int y, int k, int border) {
    if ((unsigned)x >= (unsigned)s->width || (unsigned)y >= (unsigned)s->height) return border;
    return s->data[((size_t)y * (size_t)s->width + (size_t)x) * (size_t)s->channels + (size_t)k];
}

/* Writes the bilinear sample at source point (qx, qy) / WARP_ONE - 1 (the +1
 * keeps q non-negative for points in (-1, 0)) to the c bytes at o. The caller
 * has checked that the point lies in (-1, W) x (-1, H). Inlined into both
 * row walks of vs_image_warp_affine. */
static inline void warp_sample(const vs_image *src, int qx, int qy, uint8_t *o, int border) {
    const int c = src->channels, W = src->width, H = src->height;
    const int x0 = (qx >> WARP_BITS) - 1, y0 = (qy >> WARP_BITS) - 1;
    const int ax = qx & (WARP_ONE - 1), ay = qy & (WARP_ONE - 1);
    const int w00 = (WARP_ONE - ax) * (WARP_ONE - ay), w01 = ax * (WARP_ONE - ay);
    const int w10 = (WARP_ONE - ax) * ay, w11 = ax * ay;
    const int round = 1 << (2 * WARP_BITS - 1), shift = 2 * WARP_BITS;
    if (x0 >= 0 && y0 >= 0 && x0 + 1 < W && y0 + 1 < H) {
        const size_t stride = (size_t)W * (size_t)c;
        const uint8_t *p = src->data + (size_t)y0 * stride + (size_t)x0 * (size_t)c;
        const uint8_t *q = p + stride;
        if (c == 3) {
            o[0] = (uint8_t)((p[0] * w00 + p[3] * w01 + q[0] * w10 + q[3] * w11 + round) >> shift);
            o[1] = (uint8_t)((p[1] * w00 + p[4] * w01 + q[1] * w10 + q[4] * w11 + round) >> shift);
            o[2] = (uint8_t)((p[2] * w00 + p[5] * w01 + q[2] * w10 + q[5] * w11 + round) >> shift);
        } else {
            for (int k = 0; k < c; k++)
                o[k] = (uint8_t)((p[k] * w00 + p[c + k] * w01 + q[k] * w10 + q[c + k] * w11 +
                                  round) >> shift);
        }
    } else { /* on the edge: missing neighbours read as border */
        for (int k = 0; k < c; k++) {
            int v = px_or_border(src, x0, y0, k, border) * w00 +
                    px_or_border(src, x0 + 1, y0, k, border) * w01 +
                    px_or_border(src, x0, y0 + 1, k, border) * w10 +
                    px_or_border(src, x0 + 1, y0 + 1, k, border) * w11;
            o[k] = (uint8_t)((v + round) >> shift);
        }
    }
}

/* Bilinear warp with 10-bit weights. Near the edge each missing neighbour
 * reads as `border` (OpenCV's BORDER_CONSTANT), so crop edges blend; points
 * more than a pixel outside src are plain border.
 * Each dst row is walked in 48.16 fixed point (one add per pixel, about 1.5x
 * faster than float per pixel; drift < 2^-16 px per step). Rows whose ends
 * lie beyond +-2^30 px, or are NaN, fall back to evaluating the float formula
 * per pixel, so absurd matrices are still well defined (all border). */
void vs_image_warp_affine(const vs_image *src, const float m[6], vs_image *dst,
                          uint8_t border) {
    if (!dst || !dst->data || dst->width <= 0 || dst->height <= 0) return;
    const size_t dst_bytes = (size_t)dst->width * (size_t)dst->height * (size_t)dst->channels;
    if (!image_ok(src) || !m || src->channels != dst->channels) {
        assert(!"vs_image_warp_affine: bad source or channel mismatch");
        memset(dst->data, border, dst_bytes);
        return;
    }
    const int c = src->channels, dw = dst->width;
    const float fw = (float)src->width, fh = (float)src->height;
    const int64_t one = (int64_t)1 << STEP_BITS;
    const int64_t lim_x = (int64_t)src->width << STEP_BITS, lim_y = (int64_t)src->height << STEP_BITS;
    const double scale = (double)one, far = 1073741824.0; /* 2^30 px */
    const int64_t dx = (int64_t)llrint((double)m[0] * scale), dy = (int64_t)llrint((double)m[3] * scale);
    const int fixed_ok = fabs((double)m[0]) < far && fabs((double)m[3]) < far;
    uint8_t *o = dst->data;

    for (int y = 0; y < dst->height; y++) {
        const double bx = (double)m[1] * y + m[2], by = (double)m[4] * y + m[5];
        const double ex = bx + (double)m[0] * (dw - 1), ey = by + (double)m[3] * (dw - 1);
        if (fixed_ok && fabs(bx) < far && fabs(by) < far && fabs(ex) < far && fabs(ey) < far) {
            int64_t xf = (int64_t)llrint(bx * scale), yf = (int64_t)llrint(by * scale);
            for (int x = 0; x < dw; x++, o += c, xf += dx, yf += dy) {
                if (!(xf > -one && xf < lim_x && yf > -one && yf < lim_y)) {
                    memset(o, border, (size_t)c);
                    continue;
                }
                /* xf + one > 0: round to WARP_BITS fractional bits. */
                const int shift = STEP_BITS - WARP_BITS, half = 1 << (shift - 1);
                warp_sample(src, (int)((xf + one + half) >> shift), (int)((yf + one + half) >> shift),
                            o, border);
            }
        } else {
            for (int x = 0; x < dw; x++, o += c) {
                const float sx = m[0] * (float)x + (float)bx, sy = m[3] * (float)x + (float)by;
                /* The negated form also sends NaN to the border. */
                if (!(sx > -1.0f && sx < fw && sy > -1.0f && sy < fh)) {
                    memset(o, border, (size_t)c);
                    continue;
                }
                warp_sample(src, (int)((sx + 1.0f) * WARP_ONE + 0.5f),
                            (int)((sy + 1.0f) * WARP_ONE + 0.5f), o, border);
            }
        }
    }
}
