/* vs_encode.c - JPEG encoding of RGB8 or gray images with TurboJPEG, used for
 * thumbnails and face crops written back to clients, and by tests to make
 * fixtures. The output buffer is ours (vs_malloc) so callers free it uniformly. */
#include <string.h>
#include <turbojpeg.h>

#include "vs_alloc.h"
#include "vs_image.h"

/* Compresses into a worst-case-sized buffer we own (TJFLAG_NOREALLOC keeps
 * TurboJPEG from swapping in its own), then shrinks it to the real size. */
vs_err vs_image_encode_jpeg(const vs_image *img, int quality, uint8_t **out, size_t *len,
                            vs_error *err) {
    vs_err rc = VS_OK;
    tjhandle tj = NULL;
    uint8_t *buf = NULL;
    if (!out || !len) return vs_fail(err, VS_ERR_INVALID_ARG, "jpeg encode: NULL output");
    *out = NULL;
    *len = 0;
    if (!img || !img->data || img->width <= 0 || img->height <= 0)
        return vs_fail(err, VS_ERR_INVALID_ARG, "jpeg encode: empty image");
    if (img->channels != 3 && img->channels != 1)
        return vs_fail(err, VS_ERR_INVALID_ARG, "jpeg encode: %d channels (want 1 or 3)",
                       img->channels);
    if (quality < 1 || quality > 100)
        return vs_fail(err, VS_ERR_INVALID_ARG, "jpeg encode: quality %d not in 1..100",
                       quality);
    if (img->width > 65535 || img->height > 65535)
        return vs_fail(err, VS_ERR_TOO_LARGE, "jpeg encode: %dx%d exceeds JPEG's 65535 sides",
                       img->width, img->height);

    int gray = img->channels == 1;
    int samp = gray ? TJSAMP_GRAY : TJSAMP_420;
    unsigned long cap = tjBufSize(img->width, img->height, samp);
    if (cap == (unsigned long)-1) {
        rc = vs_fail(err, VS_ERR_TOO_LARGE, "jpeg encode: %dx%d: %s", img->width, img->height,
                     tjGetErrorStr2(NULL));
        goto out;
    }
    buf = vs_malloc(cap);
    if (!buf) {
        rc = vs_fail(err, VS_ERR_NOMEM, "jpeg encode: no memory for %lu bytes", cap);
        goto out;
    }
    tj = tjInitCompress();
    if (!tj) {
        rc = vs_fail(err, VS_ERR_NOMEM, "jpeg encode: tjInitCompress: %s", tjGetErrorStr2(NULL));
        goto out;
    }
    unsigned char *dst = buf;
    unsigned long size = cap;
    if (tjCompress2(tj, img->data, img->width, 0, img->height, gray ? TJPF_GRAY : TJPF_RGB, &dst,
                    &size, samp, quality, TJFLAG_NOREALLOC | TJFLAG_ACCURATEDCT) != 0) {
        rc = vs_fail(err, VS_ERR_BACKEND, "jpeg encode: %s", tjGetErrorStr2(tj));
        goto out;
    }
    if (dst != buf) { /* cannot happen with NOREALLOC; do not free a foreign buffer */
        rc = vs_fail(err, VS_ERR_INTERNAL, "jpeg encode: TurboJPEG replaced the buffer");
        goto out;
    }
    uint8_t *shrunk = vs_realloc(buf, size);
    if (shrunk) buf = shrunk; /* else keep the larger buffer: still valid */
    *out = buf;
    *len = size;
    buf = NULL;
out:
    vs_free(buf);
    if (tj) tjDestroy(tj);
    return rc;
}
