/* test_image.c - the image module: decoding of every format (fixtures are
 * made here with the libraries' own encoders), EXIF orientation, hostile and
 * truncated inputs, header budgets, allocation failure, and the geometry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gif_lib.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <webp/encode.h>

#include "vs_alloc.h"
#include "vs_err.h"
#include "vs_image.h"
#include "vs_image_internal.h"

/* Fails the test with the decoder's message when the code is not `want`. */
#define assert_rc(expr, want, e)                                                          \
    do {                                                                                  \
        vs_err rc_ = (expr);                                                              \
        if (rc_ != (want))                                                                \
            fail_msg("%s: got %s, want %s (%s)", #expr, vs_err_name(rc_),                 \
                     vs_err_name(want), (e).msg);                                         \
    } while (0)

/* ---- fixture helpers ------------------------------------------------------ */

typedef struct membuf {
    uint8_t *p;
    size_t len, cap;
} membuf;

static void mb_put(membuf *m, const void *d, size_t n) {
    if (m->len + n > m->cap) {
        size_t cap = (m->len + n) * 2 + 64;
        m->p = realloc(m->p, cap);
        assert_non_null(m->p);
        m->cap = cap;
    }
    memcpy(m->p + m->len, d, n);
    m->len += n;
}

static uint32_t xs_state = 12345;
static uint32_t xs(void) { /* xorshift32: deterministic test randomness */
    xs_state ^= xs_state << 13;
    xs_state ^= xs_state >> 17;
    xs_state ^= xs_state << 5;
    return xs_state;
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const uint8_t *px_at(const vs_image *img, int x, int y) {
    return img->data + ((size_t)y * (size_t)img->width + (size_t)x) * (size_t)img->channels;
}

static void assert_px(const vs_image *img, int x, int y, int r, int g, int b, int tol) {
    const uint8_t *p = px_at(img, x, y);
    if (abs(p[0] - r) > tol || abs(p[1] - g) > tol || abs(p[2] - b) > tol)
        fail_msg("pixel (%d,%d) = (%d,%d,%d), want (%d,%d,%d) +-%d", x, y, p[0], p[1], p[2], r, g,
                 b, tol);
}

/* -- PNG writer (libpng classic API into memory) -- */

static void png_w_cb(png_structp png, png_bytep d, size_t n) { mb_put(png_get_io_ptr(png), d, n); }
static void png_f_cb(png_structp png) { (void)png; }

/* Encodes rows already packed as PNG wants them (big-endian 16-bit, packed
 * sub-byte samples). rowbytes is per row. */
static membuf make_png(int w, int h, int ctype, int depth, const uint8_t *pixels, size_t rowbytes,
                       const png_color *pal, int npal, const uint8_t *trns, int ntrns,
                       int interlace) {
    membuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_bytep *rows = calloc((size_t)h, sizeof *rows);
    assert_non_null(png);
    assert_non_null(info);
    assert_non_null(rows);
    if (setjmp(png_jmpbuf(png))) fail_msg("libpng write failed");
    png_set_write_fn(png, &m, png_w_cb, png_f_cb);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, ctype,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, info, pal, npal);
    if (trns) png_set_tRNS(png, info, trns, ntrns, NULL);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)pixels + (size_t)y * rowbytes;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    return m;
}

/* An 8-bit RGB PNG of w x h with pixel (x,y) = (x*20, y*20, x+y). */
static membuf make_rgb_png(int w, int h, int interlace) {
    uint8_t *px = malloc((size_t)w * (size_t)h * 3);
    assert_non_null(px);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = px + ((size_t)y * (size_t)w + (size_t)x) * 3;
            p[0] = (uint8_t)(x * 20), p[1] = (uint8_t)(y * 20), p[2] = (uint8_t)(x + y);
        }
    membuf m = make_png(w, h, PNG_COLOR_TYPE_RGB, 8, px, (size_t)w * 3, NULL, 0, NULL, 0, interlace);
    free(px);
    return m;
}

/* Offset just past the last IDAT chunk (its CRC included) of a PNG. */
static size_t png_idat_end(const membuf *m, size_t *first_idat) {
    size_t pos = 8, end = 0;
    *first_idat = 0;
    while (pos + 12 <= m->len) {
        uint32_t n = get_be32(m->p + pos);
        if (memcmp(m->p + pos + 4, "IDAT", 4) == 0) {
            if (!*first_idat) *first_idat = pos;
            end = pos + 12 + n;
        }
        pos += 12 + n;
    }
    return end;
}

/* -- GIF writer -- */

static int gif_w_cb(GifFileType *g, const GifByteType *d, int n) {
    mb_put(g->UserData, d, (size_t)n);
    return n;
}

/* Writes one frame (fw x fh at left/top) of palette indexes onto a sw x sh
 * screen; transparent < 0 means no graphics control block. */
static membuf make_gif(int sw, int sh, const GifColorType *gcolors, int left, int top, int fw,
                       int fh, const GifColorType *lcolors, int interlace, int transparent,
                       const uint8_t *idx) {
    membuf m = {0};
    int e = 0;
    GifFileType *g = EGifOpen(&m, gif_w_cb, &e);
    assert_non_null(g);
    ColorMapObject *gmap = gcolors ? GifMakeMapObject(4, gcolors) : NULL;
    ColorMapObject *lmap = lcolors ? GifMakeMapObject(4, lcolors) : NULL;
    EGifSetGifVersion(g, true);
    assert_int_equal(EGifPutScreenDesc(g, sw, sh, 8, 0, gmap), GIF_OK);
    if (transparent >= 0) {
        GraphicsControlBlock gcb = {.DisposalMode = DISPOSAL_UNSPECIFIED,
                                    .UserInputFlag = false,
                                    .DelayTime = 0,
                                    .TransparentColor = transparent};
        GifByteType ext[8];
        size_t n = EGifGCBToExtension(&gcb, ext);
        assert_int_equal(EGifPutExtension(g, GRAPHICS_EXT_FUNC_CODE, (int)n, ext), GIF_OK);
    }
    assert_int_equal(EGifPutImageDesc(g, left, top, fw, fh, interlace, lmap), GIF_OK);
    GifPixelType *rows = malloc((size_t)fw * (size_t)fh); /* EGifPutLine masks in place */
    assert_non_null(rows);
    memcpy(rows, idx, (size_t)fw * (size_t)fh);
    if (interlace) {
        static const int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
        for (int p = 0; p < 4; p++)
            for (int y = start[p]; y < fh; y += step[p])
                assert_int_equal(EGifPutLine(g, rows + y * fw, fw), GIF_OK);
    } else {
        for (int y = 0; y < fh; y++) assert_int_equal(EGifPutLine(g, rows + y * fw, fw), GIF_OK);
    }
    free(rows);
    assert_int_equal(EGifCloseFile(g, &e), GIF_OK);
    GifFreeMapObject(gmap);
    GifFreeMapObject(lmap);
    return m;
}

static const GifColorType GIF_COLORS[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};

/* The 6x4 GIF of test_gif_decode: 4x2 frame at (1,1), index 3 transparent. */
static membuf make_small_gif(void) {
    static const uint8_t idx[8] = {0, 1, 2, 3, 3, 2, 1, 0};
    return make_gif(6, 4, GIF_COLORS, 1, 1, 4, 2, NULL, 0, 3, idx);
}

/* -- JPEG via our own encoder -- */

/* A w x h RGB image with smooth content (JPEG-friendly). */
static vs_image smooth_image(int w, int h) {
    vs_image img;
    vs_error e;
    assert_rc(vs_image_alloc(&img, w, h, 3, &e), VS_OK, e);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = img.data + ((size_t)y * (size_t)w + (size_t)x) * 3;
            p[0] = (uint8_t)(40 + x * 150 / w), p[1] = (uint8_t)(60 + y * 120 / h), p[2] = 128;
        }
    return img;
}

static membuf encode_jpeg(const vs_image *img, int quality) {
    uint8_t *buf = NULL;
    size_t len = 0;
    vs_error e;
    assert_rc(vs_image_encode_jpeg(img, quality, &buf, &len, &e), VS_OK, e);
    membuf m = {0};
    mb_put(&m, buf, len);
    vs_free(buf);
    return m;
}

/* Returns a copy of jpeg with an EXIF APP1 segment (IFD0 with one
 * orientation entry) inserted right after SOI. */
static membuf jpeg_with_exif(const membuf *jpeg, int orientation, int big_endian) {
    uint8_t tiff[26];
    if (big_endian) {
        const uint8_t t[26] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3,
                               0,   0,   0, 1,  0, (uint8_t)orientation, 0, 0, 0, 0, 0, 0};
        memcpy(tiff, t, sizeof t);
    } else {
        const uint8_t t[26] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3,
                               0,   1,   0,  0, 0, (uint8_t)orientation, 0, 0, 0, 0, 0, 0, 0};
        memcpy(tiff, t, sizeof t);
    }
    uint8_t hdr[10] = {0xff, 0xe1, 0, 0, 'E', 'x', 'i', 'f', 0, 0};
    size_t seg = 2 + 6 + sizeof tiff;
    hdr[2] = (uint8_t)(seg >> 8), hdr[3] = (uint8_t)seg;
    membuf m = {0};
    mb_put(&m, jpeg->p, 2);
    mb_put(&m, hdr, sizeof hdr);
    mb_put(&m, tiff, sizeof tiff);
    mb_put(&m, jpeg->p + 2, jpeg->len - 2);
    return m;
}

/* -- WebP -- */

/* Copies a libwebp output buffer (size n, at *enc) into a membuf. Takes the
 * pointer's address so the encoder call in the argument list runs first. */
static membuf webp_copy(uint8_t **enc, size_t n) {
    assert_true(n > 0);
    membuf m = {0};
    mb_put(&m, *enc, n);
    WebPFree(*enc);
    *enc = NULL;
    return m;
}

/* ---- sniffing ------------------------------------------------------------- */

static void test_sniff(void **state) {
    (void)state;
    const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const uint8_t jpg[3] = {0xff, 0xd8, 0xff};
    assert_int_equal(vs_image_sniff(png, 8), VS_FMT_PNG);
    assert_int_equal(vs_image_sniff(png, 7), VS_FMT_UNKNOWN);
    assert_int_equal(vs_image_sniff(jpg, 3), VS_FMT_JPEG);
    assert_int_equal(vs_image_sniff((const uint8_t *)"GIF89a", 6), VS_FMT_GIF);
    assert_int_equal(vs_image_sniff((const uint8_t *)"GIF87a", 6), VS_FMT_GIF);
    assert_int_equal(vs_image_sniff((const uint8_t *)"RIFF\0\0\0\0WEBP", 12), VS_FMT_WEBP);
    assert_int_equal(vs_image_sniff((const uint8_t *)"RIFF\0\0\0\0WAVE", 12), VS_FMT_UNKNOWN);
    assert_int_equal(vs_image_sniff(NULL, 0), VS_FMT_UNKNOWN);
    assert_string_equal(vs_image_format_name(VS_FMT_WEBP), "webp");
    assert_string_equal(vs_image_format_name(VS_FMT_UNKNOWN), "unknown");
}

/* ---- PNG ------------------------------------------------------------------ */

static void test_png_rgb8_and_interlaced(void **state) {
    (void)state;
    for (int interlace = 0; interlace <= 1; interlace++) {
        membuf m = make_rgb_png(9, 7, interlace);
        vs_image img;
        vs_error e;
        assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_OK, e);
        assert_int_equal(img.width, 9);
        assert_int_equal(img.height, 7);
        assert_int_equal(img.channels, 3);
        for (int y = 0; y < 7; y++)
            for (int x = 0; x < 9; x++) assert_px(&img, x, y, x * 20, y * 20, x + y, 0);
        vs_image_free(&img);
        assert_null(img.data);
        free(m.p);
    }
}

static void test_png_16bit(void **state) {
    (void)state;
    const uint16_t v[2][3] = {{0xffff, 0x0000, 0x8080}, {0x1234, 0xabcd, 0x7fff}};
    uint8_t px[12];
    for (int i = 0; i < 6; i++) px[2 * i] = (uint8_t)(v[i / 3][i % 3] >> 8), px[2 * i + 1] = (uint8_t)v[i / 3][i % 3];
    membuf m = make_png(2, 1, PNG_COLOR_TYPE_RGB, 16, px, 12, NULL, 0, NULL, 0, 0);
    vs_image img;
    vs_error e;
    assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_OK, e);
    for (int x = 0; x < 2; x++) {
        int r = (v[x][0] * 255 + 32767) / 65535, g = (v[x][1] * 255 + 32767) / 65535,
            b = (v[x][2] * 255 + 32767) / 65535;
        assert_px(&img, x, 0, r, g, b, 1);
    }
    assert_px(&img, 0, 0, 255, 0, 128, 0);
    vs_image_free(&img);
    free(m.p);
}

static void test_png_palette_with_trns(void **state) {
    (void)state;
    const png_color pal[4] = {{10, 20, 30}, {200, 0, 0}, {0, 0, 200}, {1, 2, 3}};
    const uint8_t trns[3] = {255, 0, 128}; /* entry 3 has no alpha: opaque */
    const uint8_t idx[4] = {0, 1, 2, 3};
    membuf m = make_png(4, 1, PNG_COLOR_TYPE_PALETTE, 8, idx, 4, pal, 4, trns, 3, 0);
    vs_image img;
    vs_error e;
    assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_OK, e);
    assert_int_equal(img.channels, 3);
    assert_px(&img, 0, 0, 10, 20, 30, 0);
    assert_px(&img, 1, 0, 255, 255, 255, 0); /* fully transparent -> white */
    /* half alpha over white: 0*128/255 + 255*127/255 = 127, 200 -> 227 */
    assert_px(&img, 2, 0, 127, 127, 227, 1);
    assert_px(&img, 3, 0, 1, 2, 3, 0);
    vs_image_free(&img);
    free(m.p);
}

static void test_png_gray_alpha_and_1bit(void **state) {
    (void)state;
    const uint8_t ga[8] = {0, 0, 100, 255, 0, 128, 200, 64};
    membuf m = make_png(4, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, ga, 8, NULL, 0, NULL, 0, 0);
    vs_image img;
    vs_error e;
    assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_OK, e);
    for (int x = 0; x < 4; x++) {
        double g = ga[2 * x], a = ga[2 * x + 1] / 255.0;
        int want = (int)(g * a + 255.0 * (1.0 - a) + 0.5);
        assert_px(&img, x, 0, want, want, want, 1);
    }
    vs_image_free(&img);
    free(m.p);

    const uint8_t bits[2] = {0xa5, 0x80}; /* 1010 0101 1: nine 1-bit pixels */
    m = make_png(9, 1, PNG_COLOR_TYPE_GRAY, 1, bits, 2, NULL, 0, NULL, 0, 0);
    assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_OK, e);
    const int want[9] = {255, 0, 255, 0, 0, 255, 0, 255, 255};
    for (int x = 0; x < 9; x++) assert_px(&img, x, 0, want[x], want[x], want[x], 0);
    vs_image_free(&img);
    free(m.p);
}

/* ---- WebP ----------------------------------------------------------------- */

static void test_webp_decode(void **state) {
    (void)state;
    vs_image src = smooth_image(32, 24), img;
    vs_error e;
    uint8_t *enc = NULL;

    /* lossless: exact */
    membuf m = webp_copy(&enc, WebPEncodeLosslessRGB(src.data, 32, 24, 32 * 3, &enc));
    assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_OK, e);
    assert_int_equal(img.width, 32);
    assert_int_equal(img.height, 24);
    assert_memory_equal(img.data, src.data, 32 * 24 * 3);
    vs_image_free(&img);
    free(m.p);

    /* lossy: close */
    m = webp_copy(&enc, WebPEncodeRGB(src.data, 32, 24, 32 * 3, 95.0f, &enc));
    assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_OK, e);
    long diff = 0;
    for (size_t i = 0; i < 32 * 24 * 3; i++) diff += abs(img.data[i] - src.data[i]);
    assert_true(diff / (32 * 24 * 3) < 6);
    vs_image_free(&img);
    free(m.p);

    /* alpha: transparent -> white, opaque kept */
    uint8_t rgba[4 * 4] = {200, 10, 10, 255, 0, 0, 0, 0, 10, 200, 10, 255, 0, 0, 250, 0};
    m = webp_copy(&enc, WebPEncodeLosslessRGBA(rgba, 2, 2, 8, &enc));
    assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_OK, e);
    assert_int_equal(img.channels, 3);
    assert_px(&img, 0, 0, 200, 10, 10, 0);
    assert_px(&img, 1, 0, 255, 255, 255, 0);
    assert_px(&img, 0, 1, 10, 200, 10, 0);
    assert_px(&img, 1, 1, 255, 255, 255, 0);
    vs_image_free(&img);
    free(m.p);
    vs_image_free(&src);
}

static void put_le24(membuf *m, uint32_t v) {
    uint8_t b[3] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16)};
    mb_put(m, b, 3);
}
static void put_le32(membuf *m, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    mb_put(m, b, 4);
}

/* Hand-assembles an animated WebP (VP8X + ANIM + one ANMF) whose single 2x2
 * red frame sits at (2,2) on a 6x6 canvas: the first frame is composited. */
static void test_webp_animated_first_frame(void **state) {
    (void)state;
    uint8_t red[2 * 2 * 3] = {250, 0, 0, 250, 0, 0, 250, 0, 0, 250, 0, 0};
    uint8_t *enc = NULL;
    membuf still = webp_copy(&enc, WebPEncodeLosslessRGB(red, 2, 2, 6, &enc));
    assert_memory_equal(still.p + 12, "VP8L", 4);
    const uint8_t *vp8l = still.p + 12; /* chunk header + payload (+pad) */
    size_t vp8l_len = still.len - 12;

    membuf body = {0};
    mb_put(&body, "WEBP", 4);
    mb_put(&body, "VP8X", 4);
    put_le32(&body, 10);
    uint8_t flags[4] = {0x02 | 0x10, 0, 0, 0}; /* animation + alpha */
    mb_put(&body, flags, 4);
    put_le24(&body, 6 - 1);
    put_le24(&body, 6 - 1);
    mb_put(&body, "ANIM", 4);
    put_le32(&body, 6);
    put_le32(&body, 0); /* background colour */
    uint8_t loop[2] = {0, 0};
    mb_put(&body, loop, 2);
    mb_put(&body, "ANMF", 4);
    put_le32(&body, (uint32_t)(16 + vp8l_len));
    put_le24(&body, 2 / 2); /* x offset / 2 */
    put_le24(&body, 2 / 2);
    put_le24(&body, 2 - 1);
    put_le24(&body, 2 - 1);
    put_le24(&body, 100); /* duration */
    uint8_t fl = 0x02;    /* do not blend */
    mb_put(&body, &fl, 1);
    mb_put(&body, vp8l, vp8l_len);

    membuf m = {0};
    mb_put(&m, "RIFF", 4);
    put_le32(&m, (uint32_t)body.len);
    mb_put(&m, body.p, body.len);

    vs_image img;
    vs_error e;
    assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_OK, e);
    assert_int_equal(img.width, 6);
    assert_int_equal(img.height, 6);
    assert_px(&img, 0, 0, 255, 255, 255, 0);
    assert_px(&img, 2, 2, 250, 0, 0, 0);
    assert_px(&img, 3, 3, 250, 0, 0, 0);
    assert_px(&img, 4, 4, 255, 255, 255, 0);
    vs_image_free(&img);
    free(m.p);
    free(body.p);
    free(still.p);
}

/* ---- GIF ------------------------------------------------------------------ */

static void test_gif_decode(void **state) {
    (void)state;
    membuf m = make_small_gif();
    vs_image img;
    vs_error e;
    assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_OK, e);
    assert_int_equal(img.width, 6);
    assert_int_equal(img.height, 4);
    assert_px(&img, 0, 0, 255, 255, 255, 0); /* outside the frame */
    assert_px(&img, 5, 3, 255, 255, 255, 0);
    assert_px(&img, 1, 1, 0, 0, 0, 0);
    assert_px(&img, 2, 1, 255, 0, 0, 0);
    assert_px(&img, 3, 1, 0, 255, 0, 0);
    assert_px(&img, 4, 1, 255, 255, 255, 0); /* transparent index */
    assert_px(&img, 1, 2, 255, 255, 255, 0);
    assert_px(&img, 2, 2, 0, 255, 0, 0);
    assert_px(&img, 3, 2, 255, 0, 0, 0);
    assert_px(&img, 4, 2, 0, 0, 0, 0);
    vs_image_free(&img);
    free(m.p);
}

static void test_gif_interlaced_local_colormap(void **state) {
    (void)state;
    const GifColorType local[4] = {{10, 10, 10}, {90, 0, 0}, {0, 90, 0}, {0, 0, 90}};
    uint8_t idx[3 * 11];
    for (int y = 0; y < 11; y++)
        for (int x = 0; x < 3; x++) idx[y * 3 + x] = (uint8_t)((y + x) % 4);
    membuf m = make_gif(3, 11, GIF_COLORS, 0, 0, 3, 11, local, 1, -1, idx);
    vs_image img;
    vs_error e;
    assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_OK, e);
    for (int y = 0; y < 11; y++)
        for (int x = 0; x < 3; x++) {
            const GifColorType *c = &local[(y + x) % 4];
            assert_px(&img, x, y, c->Red, c->Green, c->Blue, 0);
        }
    vs_image_free(&img);
    free(m.p);
}

/* ---- JPEG ----------------------------------------------------------------- */

static void test_jpeg_roundtrip(void **state) {
    (void)state;
    vs_image src = smooth_image(40, 30), img;
    vs_error e;
    membuf m = encode_jpeg(&src, 95);
    assert_int_equal(vs_image_sniff(m.p, m.len), VS_FMT_JPEG);
    assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_OK, e);
    assert_int_equal(img.width, 40);
    assert_int_equal(img.height, 30);
    assert_int_equal(img.channels, 3);
    long diff = 0;
    for (size_t i = 0; i < 40 * 30 * 3; i++) diff += abs(img.data[i] - src.data[i]);
    assert_true(diff / (40 * 30 * 3) < 3);
    vs_image_free(&img);
    free(m.p);

    /* gray in, RGB out with r = g = b */
    vs_image gray;
    assert_rc(vs_image_alloc(&gray, 16, 16, 1, &e), VS_OK, e);
    memset(gray.data, 77, 256);
    m = encode_jpeg(&gray, 90);
    assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_OK, e);
    assert_int_equal(img.channels, 3);
    assert_px(&img, 5, 5, 77, 77, 77, 1);
    vs_image_free(&img);
    vs_image_free(&gray);
    free(m.p);

    uint8_t *out = NULL;
    size_t len = 0;
    assert_rc(vs_image_encode_jpeg(&src, 0, &out, &len, &e), VS_ERR_INVALID_ARG, e);
    assert_rc(vs_image_encode_jpeg(&src, 101, &out, &len, &e), VS_ERR_INVALID_ARG, e);
    assert_null(out);
    vs_image_free(&src);
}

/* A CMYK JPEG (Adobe, inverted like Photoshop writes) comes out as RGB. */
static void test_jpeg_cmyk(void **state) {
    (void)state;
    uint8_t cmyk[16 * 16 * 4];
    for (int i = 0; i < 256; i++) {
        uint8_t *p = cmyk + 4 * i;
        p[0] = 200, p[1] = 100, p[2] = 50, p[3] = (uint8_t)(i < 128 ? 255 : 128);
    }
    tjhandle tj = tjInitCompress();
    assert_non_null(tj);
    unsigned char *jpg = NULL;
    unsigned long len = 0;
    assert_int_equal(tjCompress2(tj, cmyk, 16, 0, 16, TJPF_CMYK, &jpg, &len, TJSAMP_444, 98, 0), 0);
    tjDestroy(tj);
    vs_image img;
    vs_error e;
    assert_rc(vs_image_decode(jpg, len, NULL, &img, &e), VS_OK, e);
    assert_int_equal(img.channels, 3);
    assert_px(&img, 4, 2, 200, 100, 50, 6);
    assert_px(&img, 4, 12, 100, 50, 25, 6);
    vs_image_free(&img);
    tjFree(jpg);
}

/* ---- shared photos -------------------------------------------------------- */

static void check_not_flat(const vs_image *img) {
    uint8_t lo = 255, hi = 0;
    size_t n = (size_t)img->width * (size_t)img->height * 3;
    for (size_t i = 0; i < n; i += 97) {
        if (img->data[i] < lo) lo = img->data[i];
        if (img->data[i] > hi) hi = img->data[i];
    }
    assert_true(hi - lo > 100);
}

static void test_shared_photos(void **state) {
    (void)state;
    vs_image img;
    vs_error e;
    assert_rc(vs_image_load(VS_SHARED_DIR "/data/faces/test_images/32bit.png", NULL, &img, &e),
              VS_OK, e);
    assert_int_equal(img.width, 626);
    assert_int_equal(img.height, 1200);
    assert_int_equal(img.channels, 3);
    check_not_flat(&img);
    vs_image_free(&img);

    assert_rc(vs_image_load(VS_SHARED_DIR "/data/faces/obama_small.jpg", NULL, &img, &e), VS_OK, e);
    assert_int_equal(img.width, 320);
    assert_int_equal(img.height, 240);
    check_not_flat(&img);
    vs_image_free(&img);

    /* EXIF present with orientation 1 ("upper-left"): size unchanged */
    assert_rc(vs_image_load(VS_SHARED_DIR "/data/faces/test_images/obama3.jpg", NULL, &img, &e),
              VS_OK, e);
    assert_int_equal(img.width, 1434);
    assert_int_equal(img.height, 2333);
    vs_image_free(&img);
}

/* ---- EXIF ----------------------------------------------------------------- */

enum { TL, TR, BL, BR };

/* Colour class of the 16x16 marker area at a corner: 'r', 'b' or '-'. */
static char corner(const vs_image *img, int which) {
    int x = which == TL || which == BL ? 8 : img->width - 9;
    int y = which == TL || which == TR ? 8 : img->height - 9;
    const uint8_t *p = px_at(img, x, y);
    if (p[0] > 180 && p[1] < 90 && p[2] < 90) return 'r';
    if (p[2] > 180 && p[0] < 90 && p[1] < 90) return 'b';
    return '-';
}

/* 64x32 gray with a red block at top-left and a blue block at top-right. */
static vs_image marked_image(void) {
    vs_image img;
    vs_error e;
    assert_rc(vs_image_alloc(&img, 64, 32, 3, &e), VS_OK, e);
    memset(img.data, 128, 64 * 32 * 3);
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++) {
            uint8_t *r = img.data + ((size_t)y * 64 + (size_t)x) * 3;
            uint8_t *b = img.data + ((size_t)y * 64 + (size_t)(48 + x)) * 3;
            r[0] = 255, r[1] = 0, r[2] = 0;
            b[0] = 0, b[1] = 0, b[2] = 255;
        }
    return img;
}

static void test_exif_orientations(void **state) {
    (void)state;
    /* Where the red (top-left) and blue (top-right) markers must end up. */
    static const int red_at[9] = {0, TL, TR, BR, BL, TL, TR, BR, BL};
    static const int blue_at[9] = {0, TR, TL, BL, BR, BL, BR, TR, TL};
    vs_image src = marked_image();
    membuf jpeg = encode_jpeg(&src, 95);
    for (int o = 1; o <= 8; o++) {
        membuf m = jpeg_with_exif(&jpeg, o, o % 2);
        assert_int_equal(vs_exif_jpeg_orientation(m.p, m.len), o);
        vs_image img;
        vs_error e;
        assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_OK, e);
        int swapped = o >= 5;
        assert_int_equal(img.width, swapped ? 32 : 64);
        assert_int_equal(img.height, swapped ? 64 : 32);
        for (int c = TL; c <= BR; c++) {
            char want = c == red_at[o] ? 'r' : c == blue_at[o] ? 'b' : '-';
            if (corner(&img, c) != want)
                fail_msg("orientation %d corner %d: got %c want %c", o, c, corner(&img, c), want);
        }
        vs_image_free(&img);

        vs_decode_opts opts = {.ignore_exif = 1};
        assert_rc(vs_image_decode(m.p, m.len, &opts, &img, &e), VS_OK, e);
        assert_int_equal(img.width, 64);
        assert_int_equal(corner(&img, TL), 'r');
        vs_image_free(&img);
        free(m.p);
    }
    free(jpeg.p);
    vs_image_free(&src);
}

/* DCT-scaled decoding: a JPEG twice min_side long or more comes at 1/2,
 * 1/4 or 1/8 scale (the smallest keeping min_side), its whole size told;
 * EXIF orientation turns the scaled picture and swaps the whole size; other
 * formats and min_side 0 decode whole. */
static void test_decode_scaled(void **state) {
    (void)state;
    vs_image src = {0}, whole = {0};
    vs_error e;
    assert_rc(vs_image_alloc(&src, 3200, 1800, 3, &e), VS_OK, e);
    for (int y = 0; y < 1800; y++) /* smooth gradient: scaled pixels compare to averages */
        for (int x = 0; x < 3200; x++) {
            uint8_t *p = src.data + ((size_t)y * 3200 + x) * 3;
            p[0] = (uint8_t)(x / 13), p[1] = (uint8_t)(y / 8), p[2] = 100;
        }
    membuf jpeg = encode_jpeg(&src, 92);
    static const struct { int min_side, denom, w, h; } cases[] = {
        {0, 1, 3200, 1800}, {1536, 2, 1600, 900}, {800, 4, 800, 450}, {400, 8, 400, 225},
        {100, 8, 400, 225}, {1601, 1, 3200, 1800}, {1600, 2, 1600, 900}};
    assert_rc(vs_image_decode(jpeg.p, jpeg.len, NULL, &whole, &e), VS_OK, e);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vs_decoded d;
        assert_rc(vs_image_decode_scaled(jpeg.p, jpeg.len, NULL, cases[i].min_side, &d, &e), VS_OK, e);
        assert_int_equal(d.denom, cases[i].denom);
        assert_int_equal(d.img.width, cases[i].w);
        assert_int_equal(d.img.height, cases[i].h);
        assert_int_equal(d.width, 3200);
        assert_int_equal(d.height, 1800);
        /* a scaled pixel is the mean of the whole block it stands for (to JPEG's noise) */
        int k = d.denom, x = d.img.width / 3, y = d.img.height / 2;
        double sum = 0;
        for (int dy = 0; dy < k; dy++)
            for (int dx = 0; dx < k; dx++) sum += whole.data[((size_t)(y * k + dy) * 3200 + x * k + dx) * 3];
        assert_true(fabs(d.img.data[((size_t)y * d.img.width + x) * 3] - sum / (k * k)) < 4);
        vs_image_free(&d.img);
    }
    /* EXIF 6 (turned a quarter): the scaled picture and the whole size are upright */
    membuf m = jpeg_with_exif(&jpeg, 6, 1);
    vs_decoded d;
    assert_rc(vs_image_decode_scaled(m.p, m.len, NULL, 1536, &d, &e), VS_OK, e);
    assert_int_equal(d.denom, 2);
    assert_int_equal(d.img.width, 900);
    assert_int_equal(d.img.height, 1600);
    assert_int_equal(d.width, 1800);
    assert_int_equal(d.height, 3200);
    vs_image_free(&d.img);
    free(m.p);
    /* a PNG decodes whole whatever min_side says */
    membuf png = make_rgb_png(640, 480, 0);
    assert_rc(vs_image_decode_scaled(png.p, png.len, NULL, 100, &d, &e), VS_OK, e);
    assert_int_equal(d.denom, 1);
    assert_int_equal(d.img.width, 640);
    assert_int_equal(d.width, 640);
    vs_image_free(&d.img);
    free(png.p);
    /* errors as vs_image_decode's, and out zeroed */
    assert_int_equal(vs_image_decode_scaled(jpeg.p, 100, NULL, 1536, &d, &e), VS_ERR_CORRUPT);
    assert_null(d.img.data);
    vs_decode_opts small = {.max_pixels = 1000000};
    assert_int_equal(vs_image_decode_scaled(jpeg.p, jpeg.len, &small, 1536, &d, &e), VS_ERR_TOO_LARGE);
    free(jpeg.p);
    vs_image_free(&whole);
    vs_image_free(&src);
}

/* Heap copy of exactly n bytes so ASan flags any read past the end. */
static int tiff_orient(const uint8_t *t, size_t n) {
    uint8_t *c = malloc(n ? n : 1);
    assert_non_null(c);
    memcpy(c, t, n);
    int o = vs_exif_tiff_orientation(c, n);
    free(c);
    return o;
}

static void test_exif_hostile(void **state) {
    (void)state;
    const uint8_t ok[26] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3,
                            0,   1,   0,  0, 0, 6, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(tiff_orient(ok, 26), 6);
    assert_int_equal(tiff_orient(ok, 22), 6); /* entry ends exactly at the end */
    assert_int_equal(tiff_orient(ok, 21), 1); /* one byte short: entry dropped */
    for (size_t n = 0; n < 22; n++) assert_int_equal(tiff_orient(ok, n), n < 22 ? 1 : 6);

    uint8_t t[26];
    memcpy(t, ok, 26);
    t[8] = 0xff, t[9] = 0xff; /* count 65535: clamped to what fits */
    assert_int_equal(tiff_orient(t, 26), 6);
    memcpy(t, ok, 26);
    t[4] = 0xf0, t[7] = 0xff; /* IFD offset far outside */
    assert_int_equal(tiff_orient(t, 26), 1);
    memcpy(t, ok, 26);
    t[4] = 25; /* IFD count would straddle the end */
    assert_int_equal(tiff_orient(t, 26), 1);
    memcpy(t, ok, 26);
    t[18] = 9; /* orientation out of range */
    assert_int_equal(tiff_orient(t, 26), 1);
    memcpy(t, ok, 26);
    t[12] = 7; /* type UNDEFINED */
    assert_int_equal(tiff_orient(t, 26), 1);
    memcpy(t, ok, 26);
    t[0] = 'X';
    assert_int_equal(tiff_orient(t, 26), 1);

    /* Every prefix of a JPEG with EXIF: 1 until the APP1 segment is whole. */
    vs_image src = smooth_image(16, 16);
    membuf jpeg = encode_jpeg(&src, 80);
    membuf m = jpeg_with_exif(&jpeg, 6, 1);
    size_t app1_end = 4 + 2 + 6 + 26;
    for (size_t n = 0; n <= app1_end + 8; n++) {
        uint8_t *c = malloc(n ? n : 1);
        memcpy(c, m.p, n);
        assert_int_equal(vs_exif_jpeg_orientation(c, n), n < app1_end ? 1 : 6);
        free(c);
    }
    /* Random damage in the markers and EXIF: never out of range, never OOB. */
    for (int i = 0; i < 3000; i++) {
        size_t n = app1_end + 40;
        uint8_t *c = malloc(n);
        memcpy(c, m.p, n);
        for (int k = 0; k < 1 + (int)(xs() % 4); k++) c[2 + xs() % (n - 2)] = (uint8_t)xs();
        int o = vs_exif_jpeg_orientation(c, n);
        assert_true(o >= 1 && o <= 8);
        free(c);
    }
    free(m.p);
    free(jpeg.p);
    vs_image_free(&src);
}

/* ---- corrupt, truncated and hostile input --------------------------------- */

static void test_empty_and_garbage(void **state) {
    (void)state;
    vs_image img;
    vs_error e;
    uint8_t junk[1000];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)xs();
    assert_rc(vs_image_decode(junk, 0, NULL, &img, &e), VS_ERR_CORRUPT, e);
    junk[0] = 0x13;
    assert_rc(vs_image_decode(junk, sizeof junk, NULL, &img, &e), VS_ERR_UNSUPPORTED, e);
    assert_non_null(strstr(e.msg, "first bytes 13"));
    assert_null(img.data);
    const char *html = "<!DOCTYPE html><html>";
    assert_rc(vs_image_decode((const uint8_t *)html, strlen(html), NULL, &img, &e),
              VS_ERR_UNSUPPORTED, e);
    assert_non_null(strstr(e.msg, "HTML"));
    const uint8_t jpeg_start[2] = {0xff, 0xd8};
    assert_rc(vs_image_decode(jpeg_start, 2, NULL, &img, &e), VS_ERR_CORRUPT, e);
    const uint8_t bad_jpeg[12] = {0xff, 0xd8, 0xff, 0xe0, 0, 0, 1, 2, 3, 4, 5, 6};
    assert_rc(vs_image_decode(bad_jpeg, sizeof bad_jpeg, NULL, &img, &e), VS_ERR_CORRUPT, e);
}

static void test_truncated_jpeg(void **state) {
    (void)state;
    vs_image src = smooth_image(64, 64), img;
    vs_error e;
    membuf m = encode_jpeg(&src, 90);
    assert_rc(vs_image_decode(m.p, m.len / 2, NULL, &img, &e), VS_ERR_CORRUPT, e);
    assert_non_null(strstr(e.msg, "jpeg"));
    assert_null(img.data);
    /* missing just the EOI marker still counts as truncated */
    assert_rc(vs_image_decode(m.p, m.len - 2, NULL, &img, &e), VS_ERR_CORRUPT, e);
    free(m.p);
    vs_image_free(&src);
}

static void test_truncated_png_every_length(void **state) {
    (void)state;
    membuf m = make_rgb_png(13, 11, 0);
    size_t first_idat, idat_end = png_idat_end(&m, &first_idat);
    assert_true(idat_end > 0 && idat_end < m.len);
    for (size_t n = 1; n < m.len; n++) {
        vs_image img;
        vs_error e;
        vs_err rc = vs_image_decode(m.p, n, NULL, &img, &e);
        if (n < idat_end) {
            if (rc != VS_ERR_CORRUPT) fail_msg("cut at %zu of %zu: %s", n, m.len, vs_err_name(rc));
        } else {
            assert_rc(rc, VS_OK, e); /* only IEND is missing: the pixels are whole */
        }
        vs_image_free(&img);
    }
    free(m.p);
}

static void test_png_damaged(void **state) {
    (void)state;
    membuf m = make_rgb_png(13, 11, 0);
    size_t idat, end = png_idat_end(&m, &idat);
    uint32_t n = get_be32(m.p + idat);
    vs_image img;
    vs_error e;

    m.p[end - 1] ^= 0x55; /* IDAT CRC */
    assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_ERR_CORRUPT, e);
    m.p[end - 1] ^= 0x55;
    assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_OK, e);
    vs_image_free(&img);

    /* zlib header broken, CRC made valid again: libpng must still refuse */
    m.p[idat + 8] = 0xff;
    put_be32(m.p + idat + 8 + n, crc32_of(m.p + idat + 4, n + 4));
    assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_ERR_CORRUPT, e);
    free(m.p);

    /* random damage with valid CRCs: any verdict but no crash or leak */
    for (int i = 0; i < 300; i++) {
        m = make_rgb_png(13, 11, i % 2);
        end = png_idat_end(&m, &idat);
        n = get_be32(m.p + idat);
        for (int k = 0; k < 3; k++) m.p[idat + 8 + xs() % n] ^= (uint8_t)(1 + xs() % 255);
        put_be32(m.p + idat + 8 + n, crc32_of(m.p + idat + 4, n + 4));
        vs_err rc = vs_image_decode(m.p, m.len, NULL, &img, &e);
        assert_true(rc == VS_OK || rc == VS_ERR_CORRUPT);
        vs_image_free(&img);
        free(m.p);
    }
}

static void test_truncated_gif_and_webp(void **state) {
    (void)state;
    membuf m = make_small_gif();
    for (size_t n = 1; n < m.len; n++) {
        vs_image img;
        vs_error e;
        vs_err rc = vs_image_decode(m.p, n, NULL, &img, &e);
        if (n < m.len - 1) {
            if (rc != VS_ERR_CORRUPT) fail_msg("gif cut at %zu of %zu: %s", n, m.len, vs_err_name(rc));
        } else {
            assert_rc(rc, VS_OK, e); /* only the trailer is missing */
        }
        vs_image_free(&img);
    }
    free(m.p);

    vs_image src = smooth_image(32, 32), img;
    vs_error e;
    uint8_t *enc = NULL;
    m = webp_copy(&enc, WebPEncodeRGB(src.data, 32, 32, 96, 80.0f, &enc));
    assert_rc(vs_image_decode(m.p, m.len / 2, NULL, &img, &e), VS_ERR_CORRUPT, e);
    assert_rc(vs_image_decode(m.p, 20, NULL, &img, &e), VS_ERR_CORRUPT, e);
    free(m.p);
    vs_image_free(&src);
}

/* Flips random bytes of valid files of every format: decoders may accept or
 * refuse, but must not crash, leak or return a half-filled image. */
static void test_mutation_fuzz(void **state) {
    (void)state;
    vs_image src = smooth_image(24, 20);
    uint8_t *enc = NULL;
    membuf files[4];
    files[0] = encode_jpeg(&src, 85);
    files[1] = make_rgb_png(24, 20, 1);
    files[2] = make_small_gif();
    files[3] = webp_copy(&enc, WebPEncodeRGB(src.data, 24, 20, 72, 80.0f, &enc));
    for (int f = 0; f < 4; f++) {
        uint8_t *c = malloc(files[f].len);
        for (int i = 0; i < 400; i++) {
            memcpy(c, files[f].p, files[f].len);
            int flips = 1 + (int)(xs() % 6);
            for (int k = 0; k < flips; k++) c[xs() % files[f].len] = (uint8_t)xs();
            size_t n = i % 3 == 0 ? files[f].len - xs() % files[f].len : files[f].len;
            vs_image img;
            vs_error e;
            vs_decode_opts opts = {.max_pixels = 1u << 20}; /* keeps damaged headers cheap */
            vs_err rc = vs_image_decode(c, n, &opts, &img, &e);
            assert_true(rc == VS_OK || rc == VS_ERR_CORRUPT || rc == VS_ERR_UNSUPPORTED ||
                        rc == VS_ERR_TOO_LARGE);
            if (rc == VS_OK) {
                assert_non_null(img.data);
                assert_int_equal(img.channels, 3);
            } else {
                assert_null(img.data);
            }
            vs_image_free(&img);
        }
        free(c);
        free(files[f].p);
    }
    vs_image_free(&src);
}

/* ---- budgets -------------------------------------------------------------- */

/* A PNG whose IHDR claims w x h (valid CRCs, a token IDAT, IEND). */
static membuf png_claiming(uint32_t w, uint32_t h) {
    membuf m = {0};
    const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    mb_put(&m, sig, 8);
    uint8_t ihdr[4 + 4 + 13 + 4] = {0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    put_be32(ihdr + 8, w);
    put_be32(ihdr + 12, h);
    ihdr[16] = 8, ihdr[17] = 2; /* 8-bit RGB */
    put_be32(ihdr + 21, crc32_of(ihdr + 4, 17));
    mb_put(&m, ihdr, sizeof ihdr);
    uint8_t idat[4 + 4 + 4 + 4] = {0, 0, 0, 4, 'I', 'D', 'A', 'T', 0x78, 0x9c, 0, 0};
    put_be32(idat + 12, crc32_of(idat + 4, 8));
    mb_put(&m, idat, sizeof idat);
    uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D'};
    put_be32(iend + 8, crc32_of(iend + 4, 4));
    mb_put(&m, iend, sizeof iend);
    return m;
}

/* Expects VS_ERR_TOO_LARGE with every vs_* allocation armed to fail: proof
 * that the refusal comes before the pixel buffer is allocated. */
static void assert_too_large_without_alloc(const membuf *m, const vs_decode_opts *opts) {
    vs_image img;
    vs_error e;
    vs_alloc_fail_after(0);
    vs_err rc = vs_image_decode(m->p, m->len, opts, &img, &e);
    vs_alloc_fail_after(-1);
    assert_rc(rc, VS_ERR_TOO_LARGE, e);
    assert_null(img.data);
}

static void test_huge_headers(void **state) {
    (void)state;
    vs_image img;
    vs_error e;
    membuf m = png_claiming(60000, 60000);
    assert_too_large_without_alloc(&m, NULL);
    assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_ERR_TOO_LARGE, e);
    assert_non_null(strstr(e.msg, "60000x60000"));
    assert_non_null(strstr(e.msg, "budget"));
    free(m.p);
    m = png_claiming(70000, 1); /* few pixels but a side over 65535 */
    assert_too_large_without_alloc(&m, NULL);
    free(m.p);
    m = png_claiming(0, 10);
    assert_rc(vs_image_decode(m.p, m.len, NULL, &img, &e), VS_ERR_CORRUPT, e);
    free(m.p);

    /* JPEG: patch SOF0 of a real file to 65000x65000 */
    vs_image src = smooth_image(16, 16);
    m = encode_jpeg(&src, 80);
    size_t sof = 0;
    for (size_t i = 2; i + 9 < m.len; i++)
        if (m.p[i] == 0xff && m.p[i + 1] == 0xc0) {
            sof = i;
            break;
        }
    assert_true(sof > 0);
    m.p[sof + 5] = 0xfd, m.p[sof + 6] = 0xe8; /* height 65000 */
    m.p[sof + 7] = 0xfd, m.p[sof + 8] = 0xe8; /* width 65000 */
    assert_too_large_without_alloc(&m, NULL);
    free(m.p);

    /* GIF: logical screen 65535 x 65535 (and 10000 x 10000) */
    uint8_t gif[13 + 1] = {'G', 'I', 'F', '8', '9', 'a', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, ';'};
    m = (membuf){0};
    mb_put(&m, gif, sizeof gif);
    assert_too_large_without_alloc(&m, NULL);
    m.p[6] = 0x10, m.p[7] = 0x27, m.p[8] = 0x10, m.p[9] = 0x27;
    assert_too_large_without_alloc(&m, NULL);
    free(m.p);

    /* WebP: VP8L header patched to 16384 x 16384 */
    uint8_t *enc = NULL;
    m = webp_copy(&enc, WebPEncodeLosslessRGB(src.data, 16, 16, 48, &enc));
    assert_memory_equal(m.p + 12, "VP8L", 4);
    uint32_t bits = (uint32_t)m.p[21] | (uint32_t)m.p[22] << 8 | (uint32_t)m.p[23] << 16 |
                    (uint32_t)m.p[24] << 24;
    bits = (bits & 0xf0000000u) | 16383u | 16383u << 14;
    m.p[21] = (uint8_t)bits, m.p[22] = (uint8_t)(bits >> 8), m.p[23] = (uint8_t)(bits >> 16),
    m.p[24] = (uint8_t)(bits >> 24);
    assert_too_large_without_alloc(&m, NULL);
    free(m.p);

    /* a caller budget below a real image */
    m = make_rgb_png(100, 100, 0);
    vs_decode_opts small = {.max_pixels = 5000};
    assert_too_large_without_alloc(&m, &small);
    small.max_pixels = 10000;
    assert_rc(vs_image_decode(m.p, m.len, &small, &img, &e), VS_OK, e);
    vs_image_free(&img);
    free(m.p);
    vs_image_free(&src);
}

/* ---- files ---------------------------------------------------------------- */

static void write_file(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d, 1, n, f), n);
    fclose(f);
}

static void test_load_files(void **state) {
    (void)state;
    char dir[] = "/tmp/vs_test_image_XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    vs_image img;
    vs_error e;

    membuf png = make_rgb_png(5, 4, 0);
    snprintf(path, sizeof path, "%s/x.jpg", dir); /* the extension lies */
    write_file(path, png.p, png.len);
    assert_rc(vs_image_load(path, NULL, &img, &e), VS_OK, e);
    assert_int_equal(img.width, 5);
    assert_px(&img, 4, 3, 80, 60, 7, 0);
    vs_image_free(&img);

    uint8_t *buf = NULL;
    size_t len = 0;
    assert_rc(vs_read_file(path, 10, &buf, &len, &e), VS_ERR_TOO_LARGE, e);
    assert_null(buf);
    assert_rc(vs_read_file(path, png.len, &buf, &len, &e), VS_OK, e);
    assert_int_equal(len, png.len);
    assert_memory_equal(buf, png.p, len);
    vs_free(buf);

    write_file(path, png.p, png.len / 2); /* truncated: message starts with the path */
    assert_rc(vs_image_load(path, NULL, &img, &e), VS_ERR_CORRUPT, e);
    assert_int_equal(strncmp(e.msg, path, strlen(path)), 0);
    assert_non_null(strstr(e.msg, "png"));
    unlink(path);

    snprintf(path, sizeof path, "%s/empty.png", dir);
    write_file(path, "", 0);
    assert_rc(vs_image_load(path, NULL, &img, &e), VS_ERR_CORRUPT, e);
    assert_non_null(strstr(e.msg, "empty"));
    unlink(path);

    snprintf(path, sizeof path, "%s/missing.png", dir);
    assert_rc(vs_image_load(path, NULL, &img, &e), VS_ERR_IO, e);
    assert_non_null(strstr(e.msg, path));
    assert_rc(vs_image_load(dir, NULL, &img, &e), VS_ERR_IO, e);
    assert_null(img.data);
    rmdir(dir);
    free(png.p);
}

/* ---- allocation failure --------------------------------------------------- */

typedef vs_err (*decode_fn)(const membuf *m, vs_image *img, vs_error *e);

static vs_err dec_default(const membuf *m, vs_image *img, vs_error *e) {
    return vs_image_decode(m->p, m->len, NULL, img, e);
}

/* Fails the n-th allocation for n = 0, 1, ... until the call succeeds: each
 * run must report VS_ERR_NOMEM (or succeed) and free everything (ASan). */
static void fault_loop(const membuf *m, decode_fn fn) {
    int succeeded = 0;
    for (long n = 0; n < 200 && !succeeded; n++) {
        vs_image img;
        vs_error e;
        vs_error_clear(&e);
        vs_alloc_fail_after(n);
        vs_err rc = fn(m, &img, &e);
        vs_alloc_fail_after(-1);
        if (rc == VS_OK) {
            succeeded = 1;
            assert_non_null(img.data);
        } else if (rc != VS_ERR_NOMEM) {
            fail_msg("fail after %ld: %s (%s)", n, vs_err_name(rc), e.msg);
        } else {
            assert_null(img.data);
        }
        vs_image_free(&img);
    }
    assert_true(succeeded);
}

static vs_err resize_then_rotate(const membuf *m, vs_image *img, vs_error *e) {
    vs_image a = {0}, b = {0};
    vs_err rc = vs_image_decode(m->p, m->len, NULL, &a, e);
    if (rc == VS_OK) rc = vs_image_resize(&a, 1, 7, &b, e); /* area in x, bilinear in y */
    vs_image_free(&a);
    if (rc == VS_OK) rc = vs_image_rotate(&b, 1, &a, e);
    vs_image_free(&b);
    if (rc == VS_OK) {
        uint8_t *buf = NULL;
        size_t len = 0;
        rc = vs_image_encode_jpeg(&a, 80, &buf, &len, e);
        vs_free(buf);
    }
    *img = a;
    if (rc != VS_OK) vs_image_free(img);
    return rc;
}

static void test_fault_injection(void **state) {
    (void)state;
    uint8_t *enc = NULL;
    uint8_t rgba[4 * 4 * 4];
    for (size_t i = 0; i < sizeof rgba; i++) rgba[i] = (uint8_t)(i * 7);
    membuf m = make_png(4, 4, PNG_COLOR_TYPE_RGBA, 8, rgba, 16, NULL, 0, NULL, 0, 0);
    fault_loop(&m, dec_default);
    fault_loop(&m, resize_then_rotate);
    free(m.p);

    vs_image src = marked_image();
    membuf j = encode_jpeg(&src, 80);
    m = jpeg_with_exif(&j, 6, 0); /* decode + orientation buffers */
    fault_loop(&m, dec_default);
    free(m.p);
    free(j.p);

    m = make_small_gif();
    fault_loop(&m, dec_default);
    free(m.p);

    m = webp_copy(&enc, WebPEncodeLosslessRGBA(rgba, 4, 4, 16, &enc));
    fault_loop(&m, dec_default);
    free(m.p);
    vs_image_free(&src);
}

/* ---- geometry ------------------------------------------------------------- */

static vs_image random_image(int w, int h, int c) {
    vs_image img;
    vs_error e;
    assert_rc(vs_image_alloc(&img, w, h, c, &e), VS_OK, e);
    for (size_t i = 0; i < (size_t)w * (size_t)h * (size_t)c; i++) img.data[i] = (uint8_t)xs();
    return img;
}

static void assert_same_image(const vs_image *a, const vs_image *b) {
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    assert_int_equal(a->channels, b->channels);
    assert_memory_equal(a->data, b->data, (size_t)a->width * (size_t)a->height * (size_t)a->channels);
}

static void test_alloc_args(void **state) {
    (void)state;
    vs_image img;
    vs_error e;
    assert_rc(vs_image_alloc(&img, 0, 5, 3, &e), VS_ERR_INVALID_ARG, e);
    assert_rc(vs_image_alloc(&img, 5, 5, 5, &e), VS_ERR_INVALID_ARG, e);
    assert_null(img.data);
    assert_rc(vs_image_alloc(&img, 3, 2, 1, &e), VS_OK, e);
    for (int i = 0; i < 6; i++) assert_int_equal(img.data[i], 0);
    vs_image_free(&img);
    vs_image_free(&img); /* twice is harmless */
    vs_image_free(NULL);
}

static void test_rotate(void **state) {
    (void)state;
    for (int c = 1; c <= 3; c += 2) {
        vs_image src = random_image(7, 5, c), r1, r2, back;
        vs_error e;
        assert_rc(vs_image_rotate(&src, 1, &r1, &e), VS_OK, e);
        assert_int_equal(r1.width, 5);
        assert_int_equal(r1.height, 7);
        for (int y = 0; y < 7; y++) /* clockwise: out(x,y) = in(y, H-1-x) */
            for (int x = 0; x < 5; x++)
                assert_memory_equal(px_at(&r1, x, y), px_at(&src, y, 4 - x), (size_t)c);
        assert_rc(vs_image_rotate(&src, 2, &r2, &e), VS_OK, e);
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 7; x++)
                assert_memory_equal(px_at(&r2, x, y), px_at(&src, 6 - x, 4 - y), (size_t)c);
        vs_image_free(&r2);
        vs_image_free(&r1);
        for (int q = 0; q <= 4; q++) {
            assert_rc(vs_image_rotate(&src, q, &r1, &e), VS_OK, e);
            assert_rc(vs_image_rotate(&r1, 4 - q, &back, &e), VS_OK, e);
            assert_same_image(&back, &src);
            vs_image_free(&back);
            assert_rc(vs_image_rotate(&src, q - 4, &r2, &e), VS_OK, e); /* negative turns */
            assert_same_image(&r2, &r1);
            vs_image_free(&r2);
            vs_image_free(&r1);
        }
        vs_image_free(&src);
    }
}

static void test_resize(void **state) {
    (void)state;
    vs_error e;
    vs_image src, dst;
    /* a constant image stays exactly constant at any size */
    assert_rc(vs_image_alloc(&src, 100, 80, 3, &e), VS_OK, e);
    for (size_t i = 0; i < 100 * 80; i++)
        src.data[3 * i] = 10, src.data[3 * i + 1] = 200, src.data[3 * i + 2] = 77;
    const int sizes[][2] = {{13, 7}, {250, 200}, {60, 70}, {1, 1}, {100, 80}, {37, 80}, {333, 9}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        assert_rc(vs_image_resize(&src, sizes[s][0], sizes[s][1], &dst, &e), VS_OK, e);
        assert_int_equal(dst.width, sizes[s][0]);
        assert_int_equal(dst.height, sizes[s][1]);
        for (int y = 0; y < dst.height; y++)
            for (int x = 0; x < dst.width; x++) assert_px(&dst, x, y, 10, 200, 77, 0);
        vs_image_free(&dst);
    }
    vs_image_free(&src);
    assert_rc(vs_image_resize(&src, 5, 5, &dst, &e), VS_ERR_INVALID_ARG, e);

    /* bilinear upscale with pixel centres: [0, 200] -> [0, 50, 150, 200] */
    assert_rc(vs_image_alloc(&src, 2, 1, 1, &e), VS_OK, e);
    src.data[0] = 0, src.data[1] = 200;
    assert_rc(vs_image_resize(&src, 4, 1, &dst, &e), VS_OK, e);
    const uint8_t up[4] = {0, 50, 150, 200};
    assert_memory_equal(dst.data, up, 4);
    vs_image_free(&dst);
    vs_image_free(&src);

    /* area averaging when shrinking by more than 2x */
    assert_rc(vs_image_alloc(&src, 6, 1, 1, &e), VS_OK, e);
    const uint8_t six[6] = {10, 20, 30, 40, 50, 60};
    memcpy(src.data, six, 6);
    assert_rc(vs_image_resize(&src, 2, 1, &dst, &e), VS_OK, e);
    assert_int_equal(dst.data[0], 20);
    assert_int_equal(dst.data[1], 50);
    vs_image_free(&dst);
    assert_rc(vs_image_resize(&src, 1, 1, &dst, &e), VS_OK, e);
    assert_int_equal(dst.data[0], 35);
    vs_image_free(&dst);
    vs_image_free(&src);

    /* one-pixel stripes shrunk 64 -> 7 must come out near mid-gray; point
     * sampling (plain bilinear) would alias to near black or white */
    assert_rc(vs_image_alloc(&src, 64, 16, 3, &e), VS_OK, e);
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 64; x++) memset(src.data + ((size_t)y * 64 + (size_t)x) * 3, x % 2 ? 255 : 0, 3);
    assert_rc(vs_image_resize(&src, 7, 4, &dst, &e), VS_OK, e);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 7; x++) assert_px(&dst, x, y, 128, 128, 128, 16);
    vs_image_free(&dst);
    vs_image_free(&src);
}

static void test_warp_affine(void **state) {
    (void)state;
    vs_error e;
    for (int c = 1; c <= 3; c += 2) {
        vs_image src = random_image(31, 17, c), dst;
        assert_rc(vs_image_alloc(&dst, 31, 17, c, &e), VS_OK, e);
        const float id[6] = {1, 0, 0, 0, 1, 0};
        vs_image_warp_affine(&src, id, &dst, 9);
        assert_same_image(&dst, &src);

        /* translation: dst(x,y) = src(x+2, y+3), border beyond the edge */
        const float tr[6] = {1, 0, 2, 0, 1, 3};
        vs_image_warp_affine(&src, tr, &dst, 7);
        for (int y = 0; y < 17; y++)
            for (int x = 0; x < 31; x++)
                for (int k = 0; k < c; k++) {
                    int want = x + 2 < 31 && y + 3 < 17 ? px_at(&src, x + 2, y + 3)[k] : 7;
                    assert_int_equal(px_at(&dst, x, y)[k], want);
                }

        /* half-pixel shift averages neighbours */
        const float half[6] = {1, 0, 0.5f, 0, 1, 0};
        vs_image_warp_affine(&src, half, &dst, 0);
        for (int y = 0; y < 17; y++)
            for (int x = 0; x < 30; x++)
                for (int k = 0; k < c; k++) {
                    int s = px_at(&src, x, y)[k] + px_at(&src, x + 1, y)[k];
                    int got = px_at(&dst, x, y)[k];
                    assert_true(got == s / 2 || got == (s + 1) / 2);
                }

        /* far outside and NaN: all border */
        const float away[6] = {1, 0, 1e9f, 0, 1, -1e9f};
        vs_image_warp_affine(&src, away, &dst, 42);
        for (size_t i = 0; i < 31 * 17 * (size_t)c; i++) assert_int_equal(dst.data[i], 42);
        const float huge[6] = {1, 0, 0, 0, 1e12f, 0}; /* beyond the fixed-point walk */
        vs_image_warp_affine(&src, huge, &dst, 44);
        for (size_t i = (size_t)31 * (size_t)c; i < 31 * 17 * (size_t)c; i++)
            assert_int_equal(dst.data[i], 44);
        const float nan[6] = {NAN, 0, 0, 0, 1, 0};
        vs_image_warp_affine(&src, nan, &dst, 43);
        for (size_t i = 0; i < 31 * 17 * (size_t)c; i++) assert_int_equal(dst.data[i], 43);
        vs_image_free(&dst);

        /* a quarter turn as a matrix equals vs_image_rotate */
        vs_image rot, warped;
        assert_rc(vs_image_rotate(&src, 1, &rot, &e), VS_OK, e);
        assert_rc(vs_image_alloc(&warped, 17, 31, c, &e), VS_OK, e);
        const float q[6] = {0, 1, 0, -1, 0, 16};
        vs_image_warp_affine(&src, q, &warped, 0);
        assert_same_image(&warped, &rot);
        vs_image_free(&warped);
        vs_image_free(&rot);
        vs_image_free(&src);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_png_rgb8_and_interlaced),
        cmocka_unit_test(test_png_16bit),
        cmocka_unit_test(test_png_palette_with_trns),
        cmocka_unit_test(test_png_gray_alpha_and_1bit),
        cmocka_unit_test(test_webp_decode),
        cmocka_unit_test(test_webp_animated_first_frame),
        cmocka_unit_test(test_gif_decode),
        cmocka_unit_test(test_gif_interlaced_local_colormap),
        cmocka_unit_test(test_jpeg_roundtrip),
        cmocka_unit_test(test_jpeg_cmyk),
        cmocka_unit_test(test_shared_photos),
        cmocka_unit_test(test_exif_orientations),
        cmocka_unit_test(test_exif_hostile),
        cmocka_unit_test(test_empty_and_garbage),
        cmocka_unit_test(test_truncated_jpeg),
        cmocka_unit_test(test_truncated_png_every_length),
        cmocka_unit_test(test_png_damaged),
        cmocka_unit_test(test_truncated_gif_and_webp),
        cmocka_unit_test(test_mutation_fuzz),
        cmocka_unit_test(test_huge_headers),
        cmocka_unit_test(test_load_files),
        cmocka_unit_test(test_fault_injection),
        cmocka_unit_test(test_alloc_args),
        cmocka_unit_test(test_rotate),
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_warp_affine),
        cmocka_unit_test(test_decode_scaled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
