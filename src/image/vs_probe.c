/* vs_probe.c - format and dimensions from the header alone, without decoding
 * pixels: what the API needs to answer 415/413 for an upload in microseconds
 * and leave the decode to a worker. */
#include <string.h>
#include <turbojpeg.h>
#include <webp/decode.h>

#include "vs_image_internal.h"

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Reads width/height of buf from its header; checks them against the pixel
 * budget like the decoders do (same errors, same messages). */
vs_err vs_image_probe(const uint8_t *buf, size_t len, const vs_decode_opts *opts, vs_image_format *fmt,
                      int *width, int *height, vs_error *err) {
    size_t budget = opts && opts->max_pixels ? opts->max_pixels : VS_IMAGE_DEFAULT_MAX_PIXELS;
    *fmt = vs_image_sniff(buf, len);
    long w = 0, h = 0;
    switch (*fmt) {
    case VS_FMT_JPEG: {
        tjhandle tj = tjInitDecompress();
        int jw = 0, jh = 0, sub = 0, cs = 0;
        if (!tj) return vs_fail(err, VS_ERR_NOMEM, "jpeg: cannot create decoder");
        int rc = tjDecompressHeader3(tj, buf, (unsigned long)len, &jw, &jh, &sub, &cs);
        tjDestroy(tj);
        if (rc != 0) return vs_fail(err, VS_ERR_CORRUPT, "jpeg: unreadable header");
        w = jw;
        h = jh;
        break;
    }
    case VS_FMT_PNG:
        if (len < 24 || memcmp(buf + 12, "IHDR", 4) != 0) return vs_fail(err, VS_ERR_CORRUPT, "png: no IHDR chunk");
        w = (long)be32(buf + 16);
        h = (long)be32(buf + 20);
        break;
    case VS_FMT_GIF:
        if (len < 10) return vs_fail(err, VS_ERR_CORRUPT, "gif: truncated header");
        w = buf[6] | buf[7] << 8;
        h = buf[8] | buf[9] << 8;
        break;
    case VS_FMT_WEBP: {
        int ww = 0, wh = 0;
        if (!WebPGetInfo(buf, len, &ww, &wh)) return vs_fail(err, VS_ERR_CORRUPT, "webp: unreadable header");
        w = ww;
        h = wh;
        break;
    }
    default:
        return vs_fail(err, VS_ERR_UNSUPPORTED, "not a JPEG, PNG, WebP or GIF image");
    }
    vs_err rc = vs_image_check_dims(vs_image_format_name(*fmt), w, h, budget, err);
    if (rc != VS_OK) return rc;
    *width = (int)w;
    *height = (int)h;
    return VS_OK;
}
