/* vs_decode_png.c - PNG to RGB8 with the classic libpng API (reading from
 * memory): every colour type and depth is expanded to 8-bit RGB(A) by libpng
 * transforms, and alpha is composited over white here. */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_image_internal.h"

/* Read cursor over the caller's buffer plus libpng's last error text. */
typedef struct png_src {
    const uint8_t *buf;
    size_t len, pos;
    char msg[160];
} png_src;

/* libpng read callback: running out of bytes is a truncated file. */
static void png_read_mem(png_structp png, png_bytep dst, size_t n) {
    png_src *s = png_get_io_ptr(png);
    if (n > s->len - s->pos) png_error(png, "truncated PNG data");
    memcpy(dst, s->buf + s->pos, n);
    s->pos += n;
}

/* libpng error callback: keep the text and unwind to png_decode's setjmp. */
static void png_on_error(png_structp png, png_const_charp msg) {
    png_src *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

/* libpng warning callback: ancillary-chunk warnings are not our business and
 * must not reach stderr of a server. */
static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

/* Decodes a PNG (first frame of an APNG). Locals touched after setjmp are
 * volatile so the longjmp error path still sees what to free. */
vs_err vs_decode_png(const uint8_t *buf, size_t len, size_t max_pixels, vs_image *out,
                     vs_error *err) {
    png_src src = {.buf = buf, .len = len, .pos = 0, .msg = ""};
    png_structp png = NULL;
    png_infop info = NULL;
    uint8_t *volatile px = NULL;
    png_bytep *volatile rows = NULL;
    volatile vs_err rc = VS_OK;
    memset(out, 0, sizeof *out);

    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    if (!png) return vs_fail(err, VS_ERR_NOMEM, "png: cannot create libpng reader");
    info = png_create_info_struct(png);
    if (!info) {
        rc = vs_fail(err, VS_ERR_NOMEM, "png: cannot create libpng info");
        goto out;
    }
    if (setjmp(png_jmpbuf(png))) {
        rc = vs_fail(err, VS_ERR_CORRUPT, "png: %s", src.msg);
        goto out;
    }
    /* Let libpng accept any legal size so that our check, not its 1M-pixel
     * side limit, decides (and reports "too large" rather than "corrupt"). */
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_set_read_fn(png, &src, png_read_mem);
    png_read_info(png, info);

    png_uint_32 w = 0, h = 0;
    int depth = 0, ctype = 0, interlace = 0;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    rc = vs_image_check_dims("png", (long)w, (long)h, max_pixels, err);
    if (rc != VS_OK) goto out;

    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_scale_16(png);
    if (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if ((channels != 3 && channels != 4) || rowbytes != (size_t)w * (size_t)channels) {
        rc = vs_fail(err, VS_ERR_INTERNAL, "png: transforms gave %d channels, %zu bytes a row",
                     channels, rowbytes);
        goto out;
    }
    size_t npix = (size_t)w * (size_t)h;
    px = vs_malloc(npix * (size_t)channels);
    rows = vs_calloc(h, sizeof *rows);
    if (!px || !rows) {
        rc = vs_fail(err, VS_ERR_NOMEM, "png: no memory for %lux%lu pixels", (unsigned long)w,
                     (unsigned long)h);
        goto out;
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = px + (size_t)y * rowbytes;
    png_read_image(png, rows);

    if (channels == 4) {
        vs_rgba_over_white(px, npix);
        uint8_t *shrunk = vs_realloc(px, npix * 3u);
        if (shrunk) px = shrunk; /* else keep the larger buffer: still valid */
    }
    out->width = (int)w;
    out->height = (int)h;
    out->channels = 3;
    out->data = px;
    px = NULL;
out:
    png_destroy_read_struct(&png, info ? &info : NULL, NULL);
    vs_free(rows);
    vs_free(px);
    return rc;
}
