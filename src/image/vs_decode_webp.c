/* vs_decode_webp.c - WebP (lossy, lossless, with alpha, and the first frame
 * of an animation) to RGB8 with libwebp. Still images decode straight into our
 * buffer; animations go through libwebpdemux's frame compositor. */
#include <string.h>
#include <webp/decode.h>
#include <webp/demux.h>

#include "vs_alloc.h"
#include "vs_image_internal.h"

/* Short text for a libwebp status code. */
static const char *webp_status_text(VP8StatusCode st) {
    switch (st) {
    case VP8_STATUS_OK: return "ok";
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated WebP data";
    }
    return "unknown libwebp status";
}

/* Copies the first animation frame (canvas-sized RGBA, already composited by
 * libwebpdemux) into px, which holds w*h*4 bytes. */
static vs_err webp_first_frame(const uint8_t *buf, size_t len, int w, int h, uint8_t *px,
                               vs_error *err) {
    vs_err rc = VS_OK;
    WebPAnimDecoder *dec = NULL;
    WebPAnimDecoderOptions o;
    if (!WebPAnimDecoderOptionsInit(&o))
        return vs_fail(err, VS_ERR_BACKEND, "webp: libwebpdemux version mismatch");
    o.color_mode = MODE_RGBA;
    o.use_threads = 0;
    WebPData data = {.bytes = buf, .size = len};
    dec = WebPAnimDecoderNew(&data, &o);
    if (!dec) {
        rc = vs_fail(err, VS_ERR_CORRUPT, "webp: malformed or truncated animation");
        goto out;
    }
    WebPAnimInfo info;
    if (!WebPAnimDecoderGetInfo(dec, &info) || (int)info.canvas_width != w ||
        (int)info.canvas_height != h) {
        rc = vs_fail(err, VS_ERR_CORRUPT, "webp: animation canvas disagrees with its header");
        goto out;
    }
    uint8_t *frame = NULL;
    int timestamp = 0;
    if (!WebPAnimDecoderGetNext(dec, &frame, &timestamp) || !frame) {
        rc = vs_fail(err, VS_ERR_CORRUPT, "webp: cannot decode the first animation frame");
        goto out;
    }
    memcpy(px, frame, (size_t)w * (size_t)h * 4u);
out:
    if (dec) WebPAnimDecoderDelete(dec);
    return rc;
}

/* Decodes a WebP. The header (VP8/VP8L/VP8X) gives the size, checked against
 * the budget before the pixel buffer exists. */
vs_err vs_decode_webp(const uint8_t *buf, size_t len, size_t max_pixels, vs_image *out,
                      vs_error *err) {
    vs_err rc = VS_OK;
    uint8_t *px = NULL;
    memset(out, 0, sizeof *out);

    WebPBitstreamFeatures f;
    VP8StatusCode st = WebPGetFeatures(buf, len, &f);
    if (st != VP8_STATUS_OK) {
        rc = vs_fail(err,
                     st == VP8_STATUS_UNSUPPORTED_FEATURE ? VS_ERR_UNSUPPORTED : VS_ERR_CORRUPT,
                     "webp: header: %s", webp_status_text(st));
        goto out;
    }
    rc = vs_image_check_dims("webp", f.width, f.height, max_pixels, err);
    if (rc != VS_OK) goto out;

    size_t npix = (size_t)f.width * (size_t)f.height;
    int rgba = f.has_alpha || f.has_animation;
    size_t bytes = npix * (rgba ? 4u : 3u);
    px = vs_malloc(bytes);
    if (!px) {
        rc = vs_fail(err, VS_ERR_NOMEM, "webp: no memory for %dx%d pixels", f.width, f.height);
        goto out;
    }
    if (f.has_animation) {
        rc = webp_first_frame(buf, len, f.width, f.height, px, err);
        if (rc != VS_OK) goto out;
    } else {
        int stride = f.width * (rgba ? 4 : 3);
        uint8_t *ok = rgba ? WebPDecodeRGBAInto(buf, len, px, bytes, stride)
                           : WebPDecodeRGBInto(buf, len, px, bytes, stride);
        if (!ok) {
            rc = vs_fail(err, VS_ERR_CORRUPT, "webp: malformed or truncated image data");
            goto out;
        }
    }
    if (rgba) {
        vs_rgba_over_white(px, npix);
        uint8_t *shrunk = vs_realloc(px, npix * 3u);
        if (shrunk) px = shrunk; /* else keep the larger buffer: still valid */
    }
    out->width = f.width;
    out->height = f.height;
    out->channels = 3;
    out->data = px;
    px = NULL;
out:
    vs_free(px);
    return rc;
}
