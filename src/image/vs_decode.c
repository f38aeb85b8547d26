/* vs_decode.c - the front door of image decoding: read a file with a byte
 * budget, sniff the format from magic bytes (never the name), check the header
 * budget, dispatch to the per-format decoder and apply the EXIF orientation. */
#include "vs_image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vs_alloc.h"
#include "vs_image_internal.h"

static const uint8_t PNG_MAGIC[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
static const uint8_t JPEG_MAGIC[3] = {0xff, 0xd8, 0xff};

/* 1 when the first min(len, n) bytes of buf equal magic. */
static int has_prefix(const uint8_t *buf, size_t len, const void *magic, size_t n) {
    return memcmp(buf, magic, len < n ? len : n) == 0;
}

/* Magic bytes only: file names and MIME types from clients are not trusted. */
vs_image_format vs_image_sniff(const uint8_t *buf, size_t len) {
    if (!buf) return VS_FMT_UNKNOWN;
    if (len >= 3 && memcmp(buf, JPEG_MAGIC, 3) == 0) return VS_FMT_JPEG;
    if (len >= 8 && memcmp(buf, PNG_MAGIC, 8) == 0) return VS_FMT_PNG;
    if (len >= 12 && memcmp(buf, "RIFF", 4) == 0 && memcmp(buf + 8, "WEBP", 4) == 0)
        return VS_FMT_WEBP;
    if (len >= 6 && (memcmp(buf, "GIF87a", 6) == 0 || memcmp(buf, "GIF89a", 6) == 0))
        return VS_FMT_GIF;
    return VS_FMT_UNKNOWN;
}

/* Stable lower-case name, used in messages and logs. */
const char *vs_image_format_name(vs_image_format f) {
    switch (f) {
    case VS_FMT_JPEG: return "jpeg";
    case VS_FMT_PNG: return "png";
    case VS_FMT_WEBP: return "webp";
    case VS_FMT_GIF: return "gif";
    case VS_FMT_UNKNOWN: break;
    }
    return "unknown";
}

/* A short human guess at what unrecognised bytes are, so an upload error says
 * "looks like HEIC" rather than only hex. NULL when we have no idea. */
static const char *guess_kind(const uint8_t *b, size_t len) {
    if (len >= 12 && memcmp(b + 4, "ftyp", 4) == 0) {
        if (memcmp(b + 8, "avif", 4) == 0 || memcmp(b + 8, "avis", 4) == 0) return "AVIF";
        if (memcmp(b + 8, "hei", 3) == 0 || memcmp(b + 8, "mif1", 4) == 0 ||
            memcmp(b + 8, "hev", 3) == 0)
            return "HEIC/HEIF";
        return "an ISO media file (MP4/MOV)";
    }
    if (len >= 2 && b[0] == 'B' && b[1] == 'M') return "BMP";
    if (len >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0)) return "TIFF";
    if (len >= 4 && memcmp(b, "RIFF", 4) == 0) return "a RIFF file that is not WebP";
    if (len >= 3 && memcmp(b, "GIF", 3) == 0) return "a GIF with an unknown version";
    if (len >= 2 && b[0] == 0xff && b[1] == 0xd8) return "a truncated JPEG";
    if (len >= 4 && memcmp(b, "\x89PNG", 4) == 0) return "a damaged PNG signature";
    if (len >= 4 && memcmp(b, "\0\0\1\0", 4) == 0) return "an ICO icon";
    if (len >= 4 && memcmp(b, "%PDF", 4) == 0) return "PDF";
    if (len >= 4 && memcmp(b, "PK\3\4", 4) == 0) return "a ZIP archive";
    if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b) return "gzip data";
    if (len >= 4 && memcmp(b, "\x7f" "ELF", 4) == 0) return "an ELF executable";
    if (len >= 1 && (b[0] == '<' || b[0] == '{' || b[0] == '[')) return "text (HTML/XML/JSON)";
    return NULL;
}

/* Fills `out` (size n) with the first bytes of buf as hex, then a guess. */
static void describe_bytes(const uint8_t *buf, size_t len, char *out, size_t n) {
    size_t shown = len < 8 ? len : 8, pos = 0;
    for (size_t i = 0; i < shown && pos + 4 < n; i++)
        pos += (size_t)snprintf(out + pos, n - pos, "%s%02x", i ? " " : "", buf[i]);
    const char *kind = guess_kind(buf, len);
    if (kind && pos < n) snprintf(out + pos, n - pos, ", looks like %s", kind);
}

/* The one budget rule every decoder applies to its header, so all formats
 * refuse the same sizes with the same message shape. */
vs_err vs_image_check_dims(const char *what, long width, long height,
                           size_t max_pixels, vs_error *err) {
    if (width <= 0 || height <= 0)
        return vs_fail(err, VS_ERR_CORRUPT, "%s: header says %ldx%ld pixels", what, width,
                       height);
    if (width > VS_IMAGE_MAX_SIDE || height > VS_IMAGE_MAX_SIDE)
        return vs_fail(err, VS_ERR_TOO_LARGE, "%s: %ldx%ld has a side over %d pixels", what,
                       width, height, VS_IMAGE_MAX_SIDE);
    uint64_t px = (uint64_t)width * (uint64_t)height;
    if (px > (uint64_t)max_pixels)
        return vs_fail(err, VS_ERR_TOO_LARGE, "%s: %ldx%ld is %.4g MP, over the %.4g MP budget",
                       what, width, height, (double)px / 1e6, (double)max_pixels / 1e6);
    return VS_OK;
}

/* Alpha over white with integer rounding; shared by PNG and WebP. */
void vs_rgba_over_white(uint8_t *px, size_t npix) {
    const uint8_t *s = px;
    uint8_t *d = px;
    for (size_t i = 0; i < npix; i++, s += 4, d += 3) {
        unsigned a = s[3], ia = 255u - a;
        /* (c*a + 255*(255-a)) / 255, rounded; read all of s before writing d. */
        unsigned r = (s[0] * a + 255u * ia + 127u) / 255u;
        unsigned g = (s[1] * a + 255u * ia + 127u) / 255u;
        unsigned b = (s[2] * a + 255u * ia + 127u) / 255u;
        d[0] = (uint8_t)r;
        d[1] = (uint8_t)g;
        d[2] = (uint8_t)b;
    }
}

/* Sniffs, dispatches, then turns JPEGs upright by their EXIF orientation
 * (other formats carry it too rarely to matter). *out stays zeroed on error. */
vs_err vs_image_decode(const uint8_t *buf, size_t len, const vs_decode_opts *opts,
                       vs_image *out, vs_error *err) {
    if (!out) return vs_fail(err, VS_ERR_INVALID_ARG, "image decode: out is NULL");
    vs_decoded d;
    vs_err rc = vs_image_decode_scaled(buf, len, opts, 0, &d, err);
    *out = d.img;
    return rc;
}

vs_err vs_image_decode_scaled(const uint8_t *buf, size_t len, const vs_decode_opts *opts, int min_side,
                              vs_decoded *out, vs_error *err) {
    vs_image img = {0}, turned = {0};
    vs_err rc = VS_OK;
    int denom = 1, fw = 0, fh = 0;
    if (!out) return vs_fail(err, VS_ERR_INVALID_ARG, "image decode: out is NULL");
    memset(out, 0, sizeof *out);
    if (len == 0) return vs_fail(err, VS_ERR_CORRUPT, "image decode: empty input (0 bytes)");
    if (!buf) return vs_fail(err, VS_ERR_INVALID_ARG, "image decode: buf is NULL");
    size_t max_pixels = opts && opts->max_pixels ? opts->max_pixels : VS_IMAGE_DEFAULT_MAX_PIXELS;

    vs_image_format fmt = vs_image_sniff(buf, len);
    switch (fmt) {
    case VS_FMT_JPEG: rc = vs_decode_jpeg_scaled(buf, len, max_pixels, min_side, &img, &denom, &fw, &fh, err); break;
    case VS_FMT_PNG: rc = vs_decode_png(buf, len, max_pixels, &img, err); break;
    case VS_FMT_WEBP: rc = vs_decode_webp(buf, len, max_pixels, &img, err); break;
    case VS_FMT_GIF: rc = vs_decode_gif(buf, len, max_pixels, &img, err); break;
    case VS_FMT_UNKNOWN: {
        /* A file shorter than a magic it starts with is a truncated image. */
        if ((len < sizeof JPEG_MAGIC && has_prefix(buf, len, JPEG_MAGIC, sizeof JPEG_MAGIC)) ||
            (len < sizeof PNG_MAGIC && has_prefix(buf, len, PNG_MAGIC, sizeof PNG_MAGIC)) ||
            (len < 6 && (has_prefix(buf, len, "GIF89a", 6) || has_prefix(buf, len, "GIF87a", 6))) ||
            (len < 12 && has_prefix(buf, len, "RIFF", 4))) {
            rc = vs_fail(err, VS_ERR_CORRUPT, "image decode: only %zu bytes, truncated header",
                         len);
            goto out;
        }
        char desc[96] = "";
        describe_bytes(buf, len, desc, sizeof desc);
        rc = vs_fail(err, VS_ERR_UNSUPPORTED,
                     "image decode: not a JPEG, PNG, WebP or GIF (first bytes %s)", desc);
        goto out;
    }
    }
    if (rc != VS_OK) goto out;

    if (fmt != VS_FMT_JPEG) fw = img.width, fh = img.height;
    if (fmt == VS_FMT_JPEG && !(opts && opts->ignore_exif)) {
        int orientation = vs_exif_jpeg_orientation(buf, len);
        if (orientation >= 5) { /* the turns by a quarter swap the sides */
            int t = fw;
            fw = fh;
            fh = t;
        }
        if (orientation != 1) {
            rc = vs_image_orient(&img, orientation, &turned, err);
            if (rc != VS_OK) goto out;
            vs_image_free(&img);
            img = turned;
            turned = (vs_image){0};
        }
    }
    out->img = img;
    out->denom = denom;
    out->width = fw;
    out->height = fh;
    img = (vs_image){0};
out:
    vs_image_free(&img);
    vs_image_free(&turned);
    return rc;
}

/* Whole-file read bounded by max_bytes, for uploads and model files alike. */
vs_err vs_read_file(const char *path, size_t max_bytes, uint8_t **out, size_t *len,
                    vs_error *err) {
    vs_err rc = VS_OK;
    uint8_t *buf = NULL;
    size_t cap = 0, used = 0;
    int fd = -1;
    if (!path || !out || !len) return vs_fail(err, VS_ERR_INVALID_ARG, "read file: NULL argument");
    *out = NULL;
    *len = 0;
    if (max_bytes == SIZE_MAX) max_bytes--; /* keeps max_bytes + 1 meaningful */

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = vs_fail(err, VS_ERR_IO, "%s: open: %s", path, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = vs_fail(err, VS_ERR_IO, "%s: stat: %s", path, strerror(errno));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = vs_fail(err, VS_ERR_IO, "%s: is a directory", path);
        goto out;
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > (uint64_t)max_bytes) {
        rc = vs_fail(err, VS_ERR_TOO_LARGE, "%s: %lld bytes, over the %zu-byte limit", path,
                     (long long)st.st_size, max_bytes);
        goto out;
    }
    /* The size is only a hint (the file may change, or be a pipe): read until
     * EOF, growing the buffer, and enforce max_bytes on what actually came. */
    cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536;
    if (cap > max_bytes + 1) cap = max_bytes + 1;
    buf = vs_malloc(cap);
    if (!buf) {
        rc = vs_fail(err, VS_ERR_NOMEM, "%s: no memory for %zu bytes", path, cap);
        goto out;
    }
    for (;;) {
        if (used == cap) {
            if (cap > max_bytes) {
                rc = vs_fail(err, VS_ERR_TOO_LARGE, "%s: over the %zu-byte limit", path,
                             max_bytes);
                goto out;
            }
            size_t ncap = cap > max_bytes / 2 ? max_bytes + 1 : cap * 2;
            uint8_t *nb = vs_realloc(buf, ncap);
            if (!nb) {
                rc = vs_fail(err, VS_ERR_NOMEM, "%s: no memory for %zu bytes", path, ncap);
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + used, cap - used);
        if (n < 0) {
            if (errno == EINTR) continue;
            rc = vs_fail(err, VS_ERR_IO, "%s: read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0) break;
        used += (size_t)n;
    }
    if (used > max_bytes) {
        rc = vs_fail(err, VS_ERR_TOO_LARGE, "%s: over the %zu-byte limit", path, max_bytes);
        goto out;
    }
    *out = buf;
    *len = used;
    buf = NULL;
out:
    if (fd >= 0) close(fd);
    vs_free(buf);
    return rc;
}

/* vs_read_file + vs_image_decode, with the path prefixed to any message. */
vs_err vs_image_load(const char *path, const vs_decode_opts *opts, vs_image *out,
                     vs_error *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    vs_error inner;
    vs_error_clear(&inner);
    if (!out) return vs_fail(err, VS_ERR_INVALID_ARG, "image load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return vs_fail(err, VS_ERR_INVALID_ARG, "image load: path is NULL");

    vs_err rc = vs_read_file(path, VS_IMAGE_DEFAULT_MAX_BYTES, &buf, &len, err);
    if (rc != VS_OK) goto out;
    if (len == 0) {
        rc = vs_fail(err, VS_ERR_CORRUPT, "%s: empty file", path);
        goto out;
    }
    rc = vs_image_decode(buf, len, opts, out, &inner);
    /* Decoder messages start with the format; prefix the path for the caller. */
    if (rc != VS_OK) vs_fail(err, rc, "%s: %s", path, inner.msg);
out:
    vs_free(buf);
    return rc;
}
