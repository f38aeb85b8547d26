/* vs_decode_gif.c - first frame of a GIF to RGB8 with giflib's record-level
 * API (not DGifSlurp, which would decode every frame of a hostile animation).
 * The canvas starts white; transparent and uncovered pixels stay white. */
#include <gif_lib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_image_internal.h"

/* Read cursor over the caller's buffer. */
typedef struct gif_src {
    const uint8_t *buf;
    size_t len, pos;
} gif_src;

/* giflib input callback: short reads tell giflib the data ran out. */
static int gif_read_mem(GifFileType *gif, GifByteType *dst, int n) {
    gif_src *s = gif->UserData;
    if (n <= 0) return 0;
    size_t k = s->len - s->pos;
    if (k > (size_t)n) k = (size_t)n;
    memcpy(dst, s->buf + s->pos, k);
    s->pos += k;
    return (int)k;
}

/* Maps a giflib error to our code and message. */
static vs_err gif_fail(vs_error *err, int code, const char *op) {
    if (code == D_GIF_ERR_NOT_ENOUGH_MEM)
        return vs_fail(err, VS_ERR_NOMEM, "gif: %s: out of memory", op);
    if (code == D_GIF_ERR_READ_FAILED || code == D_GIF_ERR_EOF_TOO_SOON)
        return vs_fail(err, VS_ERR_CORRUPT, "gif: %s: truncated GIF data", op);
    const char *text = GifErrorString(code);
    return vs_fail(err, VS_ERR_CORRUPT, "gif: %s: %s", op, text ? text : "unknown giflib error");
}

/* Decodes the frame whose descriptor was just read onto the w x h canvas,
 * clipping it to the canvas and de-interlacing rows. */
static vs_err gif_draw_frame(GifFileType *gif, int transparent, uint8_t *canvas, int w, int h,
                             size_t max_pixels, vs_error *err) {
    static const int pass_start[4] = {0, 4, 2, 1}, pass_step[4] = {8, 8, 4, 2};
    vs_err rc = VS_OK;
    GifPixelType *line = NULL;
    const GifImageDesc *d = &gif->Image;
    /* The frame decode costs frame pixels of CPU, so it is budgeted too. */
    rc = vs_image_check_dims("gif frame", d->Width, d->Height, max_pixels, err);
    if (rc != VS_OK) return rc;

    const ColorMapObject *cm = d->ColorMap ? d->ColorMap : gif->SColorMap;
    int ncolors = cm && cm->Colors ? cm->ColorCount : 0;
    line = vs_malloc((size_t)d->Width);
    if (!line) return vs_fail(err, VS_ERR_NOMEM, "gif: no memory for a %d-pixel row", d->Width);

    int passes = d->Interlace ? 4 : 1;
    for (int p = 0; p < passes; p++) {
        int y0 = d->Interlace ? pass_start[p] : 0, step = d->Interlace ? pass_step[p] : 1;
        for (int y = y0; y < d->Height; y += step) {
            if (DGifGetLine(gif, line, d->Width) == GIF_ERROR) {
                rc = gif_fail(err, gif->Error, "image data");
                goto out;
            }
            long cy = (long)d->Top + y;
            if (cy < 0 || cy >= h) continue;
            uint8_t *row = canvas + (size_t)cy * (size_t)w * 3u;
            for (int x = 0; x < d->Width; x++) {
                long cx = (long)d->Left + x;
                int idx = line[x];
                if (cx >= w) break;
                if (cx < 0 || idx == transparent) continue;
                uint8_t *o = row + (size_t)cx * 3u;
                if (idx < ncolors) {
                    o[0] = cm->Colors[idx].Red;
                    o[1] = cm->Colors[idx].Green;
                    o[2] = cm->Colors[idx].Blue;
                } else if (!cm) { /* no colour map at all: treat indexes as gray */
                    o[0] = o[1] = o[2] = (uint8_t)idx;
                } /* else an index past the map: leave it transparent */
            }
        }
    }
out:
    vs_free(line);
    return rc;
}

/* Decodes the first frame of a GIF. The logical screen from the header is
 * budgeted before the canvas is allocated. */
vs_err vs_decode_gif(const uint8_t *buf, size_t len, size_t max_pixels, vs_image *out,
                     vs_error *err) {
    vs_err rc = VS_OK;
    gif_src src = {.buf = buf, .len = len, .pos = 0};
    GifFileType *gif = NULL;
    uint8_t *canvas = NULL;
    int gerr = 0, transparent = NO_TRANSPARENT_COLOR;
    memset(out, 0, sizeof *out);

    gif = DGifOpen(&src, gif_read_mem, &gerr);
    if (!gif) return gif_fail(err, gerr, "header");
    int w = gif->SWidth, h = gif->SHeight;
    rc = vs_image_check_dims("gif screen", w, h, max_pixels, err);
    if (rc != VS_OK) goto out;

    size_t bytes = (size_t)w * (size_t)h * 3u;
    canvas = vs_malloc(bytes);
    if (!canvas) {
        rc = vs_fail(err, VS_ERR_NOMEM, "gif: no memory for %dx%d pixels", w, h);
        goto out;
    }
    memset(canvas, 255, bytes);

    /* Records until the first image; each one consumes input, so a hostile
     * stream of extensions ends when the buffer does. */
    for (;;) {
        GifRecordType type;
        if (DGifGetRecordType(gif, &type) == GIF_ERROR) {
            rc = gif_fail(err, gif->Error, "record");
            goto out;
        }
        if (type == IMAGE_DESC_RECORD_TYPE) {
            if (DGifGetImageDesc(gif) == GIF_ERROR) {
                rc = gif_fail(err, gif->Error, "image descriptor");
                goto out;
            }
            rc = gif_draw_frame(gif, transparent, canvas, w, h, max_pixels, err);
            if (rc != VS_OK) goto out;
            break;
        } else if (type == EXTENSION_RECORD_TYPE) {
            int code = 0;
            GifByteType *ext = NULL;
            if (DGifGetExtension(gif, &code, &ext) == GIF_ERROR) {
                rc = gif_fail(err, gif->Error, "extension");
                goto out;
            }
            GraphicsControlBlock gcb;
            if (code == GRAPHICS_EXT_FUNC_CODE && ext && ext[0] == 4 &&
                DGifExtensionToGCB(ext[0], ext + 1, &gcb) == GIF_OK)
                transparent = gcb.TransparentColor;
            while (ext) {
                if (DGifGetExtensionNext(gif, &ext) == GIF_ERROR) {
                    rc = gif_fail(err, gif->Error, "extension");
                    goto out;
                }
            }
        } else if (type == TERMINATE_RECORD_TYPE) {
            rc = vs_fail(err, VS_ERR_CORRUPT, "gif: file ends before any image");
            goto out;
        } else {
            rc = vs_fail(err, VS_ERR_CORRUPT, "gif: unexpected record type %d", (int)type);
            goto out;
        }
    }
    out->width = w;
    out->height = h;
    out->channels = 3;
    out->data = canvas;
    canvas = NULL;
out:
    vs_free(canvas);
    if (gif) DGifCloseFile(gif, &gerr);
    return rc;
}
