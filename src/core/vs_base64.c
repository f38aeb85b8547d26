/* vs_base64.c - table-driven base64: the API decodes every inline image
 * with it (a batch of 500 photos is ~20 MB of base64), the pipeline encodes
 * vectors for the results stream. */
#include "vs_base64.h"

#include <string.h>

#include "vs_alloc.h"

char *vs_base64_encode(const uint8_t *d, size_t n) {
    static const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = vs_malloc((n + 2) / 3 * 4 + 1), *p = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
        *p++ = t[v >> 18 & 63];
        *p++ = t[v >> 12 & 63];
        *p++ = i + 1 < n ? t[v >> 6 & 63] : '=';
        *p++ = i + 2 < n ? t[v & 63] : '=';
    }
    *p = '\0';
    return o;
}

/* Decoding table: 0..63 for the standard and URL-safe alphabets, 64 for
 * whitespace (skipped), 65 for '=', 255 for anything else. */
static const uint8_t *b64_table(void) {
    static uint8_t t[256];
    static int ready;
    if (!ready) { /* benign race: every thread writes the same bytes */
        memset(t, 255, sizeof t);
        for (int i = 0; i < 26; i++) t['A' + i] = (uint8_t)i, t['a' + i] = (uint8_t)(26 + i);
        for (int i = 0; i < 10; i++) t['0' + i] = (uint8_t)(52 + i);
        t['+'] = t['-'] = 62;
        t['/'] = t['_'] = 63;
        t[' '] = t['\n'] = t['\r'] = t['\t'] = 64;
        t['='] = 65;
        ready = 1;
    }
    return t;
}

int vs_base64_decode(const char *in, size_t n, uint8_t **out, size_t *out_len) {
    const uint8_t *t = b64_table();
    const char *comma = n > 5 && strncmp(in, "data:", 5) == 0 ? memchr(in, ',', n) : NULL;
    if (comma) {
        n -= (size_t)(comma + 1 - in);
        in = comma + 1;
    }
    uint8_t *buf = vs_malloc(n / 4 * 3 + 4);
    if (!buf) return -1;
    const uint8_t *p = (const uint8_t *)in, *end = p + n;
    size_t k = 0;
    /* fast path: whole groups of 4 valid characters */
    while (end - p >= 4) {
        uint32_t a = t[p[0]], b = t[p[1]], c = t[p[2]], d = t[p[3]];
        if ((a | b | c | d) >= 64) break;
        uint32_t v = a << 18 | b << 12 | c << 6 | d;
        buf[k] = (uint8_t)(v >> 16);
        buf[k + 1] = (uint8_t)(v >> 8);
        buf[k + 2] = (uint8_t)v;
        k += 3;
        p += 4;
    }
    /* the tail, padding and any whitespace, one character at a time */
    unsigned acc = 0;
    int bits = 0;
    for (; p < end; p++) {
        uint8_t v = t[*p];
        if (v == 65) break;
        if (v == 64) continue;
        if (v == 255) {
            vs_free(buf);
            return -1;
        }
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[k++] = (uint8_t)(acc >> bits);
        }
    }
    *out = buf;
    *out_len = k;
    return 0;
}
