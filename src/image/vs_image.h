/* vs_image.h - decoding, geometry and encoding of 8-bit images.
 *
 * Decoders sniff the format from magic bytes (never the file name), apply the
 * EXIF orientation, and refuse images whose header claims more pixels than the
 * budget *before* allocating the pixel buffer: a hostile 1-KB file may claim
 * 65535x65535. Output is always packed RGB8 (alpha composited over white). */
#ifndef VS_IMAGE_H
#define VS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "vs_err.h"

#define VS_IMAGE_DEFAULT_MAX_PIXELS 50000000u   /* 50 MP */
#define VS_IMAGE_DEFAULT_MAX_BYTES (256u << 20)  /* largest file we read */

/* Packed pixels, row-major, stride = width * channels. Owned by whoever holds
 * the struct; release with vs_image_free. channels is 3 (RGB) or 1 (gray). */
typedef struct vs_image {
    int width, height, channels;
    uint8_t *data;
} vs_image;

typedef enum vs_image_format {
    VS_FMT_UNKNOWN = 0, VS_FMT_JPEG, VS_FMT_PNG, VS_FMT_WEBP, VS_FMT_GIF
} vs_image_format;

typedef struct vs_decode_opts {
    size_t max_pixels;  /* 0 = VS_IMAGE_DEFAULT_MAX_PIXELS */
    int ignore_exif;    /* 1 = do not rotate by EXIF orientation */
} vs_decode_opts;

/* Format from the first bytes, or VS_FMT_UNKNOWN. */
vs_image_format vs_image_sniff(const uint8_t *buf, size_t len);
const char *vs_image_format_name(vs_image_format f);

/* Decodes an encoded image in memory into *out (RGB8). opts may be NULL.
 * Errors: VS_ERR_UNSUPPORTED (not an image we know), VS_ERR_CORRUPT
 * (truncated/malformed), VS_ERR_TOO_LARGE (over max_pixels). */
vs_err vs_image_decode(const uint8_t *buf, size_t len, const vs_decode_opts *opts,
                       vs_image *out, vs_error *err);

/* A photo decoded for analysis, maybe smaller than it is (vs_image_decode_scaled). */
typedef struct vs_decoded {
    vs_image img;       /* the photo at 1/denom of its size (sides rounded up), upright */
    int denom;          /* 1, 2, 4 or 8: whole-photo pixel = denom x img pixel */
    int width, height;  /* the whole photo, upright */
} vs_decoded;

/* vs_image_decode, but a JPEG whose longer side is at least twice min_side
 * is decoded at 1/2, 1/4 or 1/8 of its size (the smallest scale keeping the
 * longer side >= min_side: libjpeg's DCT scaling, several times faster than
 * decoding whole). Other formats and smaller JPEGs come whole (denom 1).
 * Release out->img with vs_image_free. */
vs_err vs_image_decode_scaled(const uint8_t *buf, size_t len, const vs_decode_opts *opts, int min_side,
                              vs_decoded *out, vs_error *err);

/* Format and size from the header only (no pixels decoded), with the same
 * pixel-budget check as vs_image_decode: VS_ERR_UNSUPPORTED, VS_ERR_CORRUPT
 * (unreadable header) or VS_ERR_TOO_LARGE. A truncated body is not seen. */
vs_err vs_image_probe(const uint8_t *buf, size_t len, const vs_decode_opts *opts, vs_image_format *fmt,
                      int *width, int *height, vs_error *err);

/* Reads and decodes a file; messages start with the path. Empty file ->
 * VS_ERR_CORRUPT, file over VS_IMAGE_DEFAULT_MAX_BYTES -> VS_ERR_TOO_LARGE. */
vs_err vs_image_load(const char *path, const vs_decode_opts *opts, vs_image *out,
                     vs_error *err);

/* Reads a whole file into a new buffer (caller frees with vs_free), at most
 * max_bytes. */
vs_err vs_read_file(const char *path, size_t max_bytes, uint8_t **out, size_t *len,
                    vs_error *err);

/* Allocates a zeroed w x h x c image. */
vs_err vs_image_alloc(vs_image *img, int width, int height, int channels, vs_error *err);
void vs_image_free(vs_image *img);

/* Bilinear resize of src into a new image of w x h (area-averaging when
 * shrinking by more than 2x, so small faces do not alias). */
vs_err vs_image_resize(const vs_image *src, int w, int h, vs_image *dst, vs_error *err);

/* Rotates clockwise by quarter_turns * 90 degrees into a new image. */
vs_err vs_image_rotate(const vs_image *src, int quarter_turns, vs_image *dst, vs_error *err);

/* Affine warp with bilinear sampling: for every dst pixel (x, y),
 * src point = (m[0]*x + m[1]*y + m[2], m[3]*x + m[4]*y + m[5]).
 * dst must be allocated with the same channel count; outside src -> border. */
void vs_image_warp_affine(const vs_image *src, const float m[6], vs_image *dst,
                          uint8_t border);

/* Encodes RGB8 or gray as JPEG (quality 1..100) into a new buffer (vs_free). */
vs_err vs_image_encode_jpeg(const vs_image *img, int quality, uint8_t **out,
                            size_t *len, vs_error *err);

#endif
