/* vs_image_internal.h - private glue between the files of src/image.
 *
 * Not part of the module contract: the per-format decoders, the header budget
 * check they all share, the bounded EXIF reader and the orientation transform.
 * Tests may include it to drive the EXIF reader directly. */
#ifndef VS_IMAGE_INTERNAL_H
#define VS_IMAGE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "vs_err.h"
#include "vs_image.h"

/* Largest side any decoder accepts; PNG can claim 2^31-1, GIF/JPEG 65535. */
#define VS_IMAGE_MAX_SIDE 65535

/* Checks header dimensions before anything is allocated: 0 -> VS_ERR_CORRUPT,
 * a side over VS_IMAGE_MAX_SIDE or w*h over max_pixels -> VS_ERR_TOO_LARGE.
 * `what` starts the message ("png", "gif screen", ...). */
vs_err vs_image_check_dims(const char *what, long width, long height,
                           size_t max_pixels, vs_error *err);

/* Per-format decoders: buf/len is the whole encoded file (already sniffed),
 * max_pixels is never 0, *out receives a new RGB8 image. On failure *out is
 * left zeroed and everything they took is released. */
vs_err vs_decode_jpeg(const uint8_t *buf, size_t len, size_t max_pixels,
                      vs_image *out, vs_error *err);
/* The same at 1/denom of the size (*denom 1, 2, 4 or 8: the largest whose
 * longer side is still >= min_side; min_side <= 0: 1), through libjpeg's
 * DCT scaling; *full_w x *full_h is the whole image. The pixel budget is
 * checked on the whole image. */
vs_err vs_decode_jpeg_scaled(const uint8_t *buf, size_t len, size_t max_pixels, int min_side, vs_image *out,
                             int *denom, int *full_w, int *full_h, vs_error *err);
vs_err vs_decode_png(const uint8_t *buf, size_t len, size_t max_pixels,
                     vs_image *out, vs_error *err);
vs_err vs_decode_webp(const uint8_t *buf, size_t len, size_t max_pixels,
                      vs_image *out, vs_error *err);
vs_err vs_decode_gif(const uint8_t *buf, size_t len, size_t max_pixels,
                     vs_image *out, vs_error *err);

/* Composites `npix` RGBA8 pixels (straight alpha) over white, writing packed
 * RGB8 to the front of the same buffer (in place is safe: the write cursor
 * never passes the read cursor). */
void vs_rgba_over_white(uint8_t *px, size_t npix);

/* EXIF orientation (1..8) of a JPEG, read from the first APP1 "Exif" segment
 * before SOS; 1 when absent or malformed. Never reads outside buf[0..len). */
int vs_exif_jpeg_orientation(const uint8_t *buf, size_t len);

/* Orientation (1..8) stored in a TIFF/EXIF block (the bytes after "Exif\0\0");
 * 1 when absent or malformed. Bounded like the above. */
int vs_exif_tiff_orientation(const uint8_t *tiff, size_t len);

/* Writes src transformed by EXIF orientation 1..8 into a new *dst (5..8 swap
 * width and height). Orientation 6 is a 90-degree clockwise turn. */
vs_err vs_image_orient(const vs_image *src, int orientation, vs_image *dst,
                       vs_error *err);

#endif
