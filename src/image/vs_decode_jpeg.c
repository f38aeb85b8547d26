/* vs_decode_jpeg.c - JPEG to RGB8 through the TurboJPEG (v2 "tj") API, the
 * format of nearly every uploaded photo. Strict: libjpeg warnings such as a
 * premature end of data are errors, so a truncated upload is never indexed
 * (stray bytes between segments are the one harmless warning let through).
 * A caller that only needs a smaller picture (detection on a 12 MP photo)
 * can have it decoded at 1/2, 1/4 or 1/8 scale: libjpeg then skips most of
 * the inverse DCT, 3-4x faster than decoding whole and shrinking. */
#include <stdint.h>
#include <string.h>
#include <turbojpeg.h>

#include "vs_alloc.h"
#include "vs_image_internal.h"

/* Many cameras and editors leave stray bytes between segments; libjpeg
 * warns ("extraneous bytes before marker") yet decodes every pixel. That one
 * warning is accepted; a truncated or damaged scan still fails. */
static int harmless_warning(tjhandle tj) {
    return tjGetErrorCode(tj) == TJERR_WARNING && strstr(tjGetErrorStr2(tj), "extraneous bytes") != NULL;
}

/* Converts n CMYK pixels (Adobe-style inverted, as libjpeg returns them) to
 * RGB in place: r = c * k / 255 and so on. */
static void cmyk_to_rgb(uint8_t *px, size_t npix) {
    const uint8_t *s = px;
    uint8_t *d = px;
    for (size_t i = 0; i < npix; i++, s += 4, d += 3) {
        unsigned k = s[3];
        unsigned r = (s[0] * k + 127u) / 255u;
        unsigned g = (s[1] * k + 127u) / 255u;
        unsigned b = (s[2] * k + 127u) / 255u;
        d[0] = (uint8_t)r;
        d[1] = (uint8_t)g;
        d[2] = (uint8_t)b;
    }
}

vs_err vs_decode_jpeg(const uint8_t *buf, size_t len, size_t max_pixels, vs_image *out,
                      vs_error *err) {
    int denom, fw, fh;
    return vs_decode_jpeg_scaled(buf, len, max_pixels, 0, out, &denom, &fw, &fh, err);
}

/* The DCT scale for a w x h image: halve while the longer side stays >= min_side. */
static int scale_denom(int w, int h, int min_side) {
    int side = w > h ? w : h, d = 1;
    while (min_side > 0 && d < 8 && (side + 2 * d - 1) / (2 * d) >= min_side) d *= 2;
    return d;
}

/* Decodes a JPEG, at 1/denom of its size; the EXIF orientation is applied by
 * the caller. The header is parsed and the budget checked before the pixel
 * buffer is allocated. */
vs_err vs_decode_jpeg_scaled(const uint8_t *buf, size_t len, size_t max_pixels, int min_side, vs_image *out,
                             int *denom, int *full_w, int *full_h, vs_error *err) {
    vs_err rc = VS_OK;
    *denom = 1;
    *full_w = *full_h = 0;
    tjhandle tj = NULL;
    uint8_t *px = NULL;
    memset(out, 0, sizeof *out);

    if (len > (size_t)(unsigned long)-1)
        return vs_fail(err, VS_ERR_TOO_LARGE, "jpeg: %zu bytes is too long", len);
    tj = tjInitDecompress();
    if (!tj) {
        rc = vs_fail(err, VS_ERR_NOMEM, "jpeg: tjInitDecompress: %s", tjGetErrorStr2(NULL));
        goto out;
    }
    int w = 0, h = 0, subsamp = 0, colorspace = 0;
    if (tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &subsamp, &colorspace) != 0) {
        rc = vs_fail(err, VS_ERR_CORRUPT, "jpeg: header: %s", tjGetErrorStr2(tj));
        goto out;
    }
    rc = vs_image_check_dims("jpeg", w, h, max_pixels, err);
    if (rc != VS_OK) goto out;
    *full_w = w;
    *full_h = h;
    *denom = scale_denom(w, h, min_side);
    tjscalingfactor sf = {1, *denom};
    w = TJSCALED(w, sf); /* libjpeg rounds the sides up */
    h = TJSCALED(h, sf);

    /* libjpeg cannot convert CMYK/YCCK to RGB itself: take CMYK and convert. */
    int cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
    size_t npix = (size_t)w * (size_t)h;
    size_t bytes = npix * (cmyk ? 4u : 3u);
    px = vs_malloc(bytes);
    if (!px) {
        rc = vs_fail(err, VS_ERR_NOMEM, "jpeg: no memory for %dx%d pixels", w, h);
        goto out;
    }
    /* LIMITSCANS refuses progressive files with absurd scan counts (a CPU
     * bomb); any error or warning makes the whole decode fail. */
    int flags = TJFLAG_ACCURATEDCT | TJFLAG_LIMITSCANS;
    if (tjDecompress2(tj, buf, (unsigned long)len, px, w, 0, h, cmyk ? TJPF_CMYK : TJPF_RGB,
                      flags) != 0 && !harmless_warning(tj)) {
        int fatal = tjGetErrorCode(tj) == TJERR_FATAL;
        rc = vs_fail(err, VS_ERR_CORRUPT, "jpeg: %s%s", fatal ? "" : "damaged data: ",
                     tjGetErrorStr2(tj));
        goto out;
    }
    if (cmyk) {
        cmyk_to_rgb(px, npix);
        uint8_t *shrunk = vs_realloc(px, npix * 3u);
        if (shrunk) px = shrunk; /* else keep the larger buffer: still valid */
    }
    out->width = w;
    out->height = h;
    out->channels = 3;
    out->data = px;
    px = NULL;
out:
    vs_free(px);
    if (tj) tjDestroy(tj);
    return rc;
}
