/* vs_s3_xml.c - just enough of S3's XML answers, by hand: the error
 * <Code> and ListObjectsV2 pages (keys, sizes, truncation, continuation
 * token). Input is a server's answer, so every length is checked against
 * the body; nothing here allocates. Tuned for pages of up to 1000 keys. */
#include "vs_s3_xml.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "vs_store_internal.h"

/* Appends code point cp as UTF-8 to out[*o] (cap bytes, NUL kept free); 0
 * when it does not fit or is not a character XML allows. */
static int put_utf8(uint32_t cp, char *out, size_t cap, size_t *o) {
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    char b[4];
    size_t k;
    if (cp < 0x80) {
        b[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    if (*o + k >= cap) return 0;
    memcpy(out + *o, b, k);
    *o += k;
    return 1;
}

/* Decodes XML text (the five named entities and &#N; / &#xH; references)
 * of n bytes at s into out (cap bytes, NUL-terminated). Returns the length,
 * or -1 when it is malformed, holds a NUL, or does not fit. */
long vs_s3_xml_unescape(const char *s, size_t n, char *out, size_t cap) {
    static const struct {
        const char *name;
        char c;
    } named[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
    size_t o = 0;
    if (cap == 0) return -1;
    for (size_t i = 0; i < n;) {
        if (s[i] == '\0') return -1;
        if (s[i] != '&') {
            if (o + 1 >= cap) return -1;
            out[o++] = s[i++];
            continue;
        }
        const char *semi = memchr(s + i, ';', n - i);
        if (!semi || semi - (s + i) > 12) return -1;
        size_t elen = (size_t)(semi - (s + i)) + 1; /* "&...;" */
        int done = 0;
        for (size_t k = 0; k < sizeof named / sizeof named[0] && !done; k++) {
            size_t nl = strlen(named[k].name);
            if (elen == nl + 1 && !memcmp(s + i + 1, named[k].name, nl)) {
                if (o + 1 >= cap) return -1;
                out[o++] = named[k].c;
                done = 1;
            }
        }
        if (!done) {
            if (elen < 4 || s[i + 1] != '#') return -1;
            int hex = s[i + 2] == 'x' || s[i + 2] == 'X';
            uint32_t cp = 0;
            size_t d0 = i + (hex ? 3 : 2), d1 = i + elen - 1;
            if (d0 >= d1) return -1;
            for (size_t d = d0; d < d1; d++) {
                char c = s[d];
                uint32_t v;
                if (c >= '0' && c <= '9') v = (uint32_t)(c - '0');
                else if (hex && c >= 'a' && c <= 'f') v = (uint32_t)(c - 'a' + 10);
                else if (hex && c >= 'A' && c <= 'F') v = (uint32_t)(c - 'A' + 10);
                else return -1;
                cp = cp * (hex ? 16u : 10u) + v;
                if (cp > 0x10FFFF) return -1;
            }
            if (!put_utf8(cp, out, cap, &o)) return -1;
        }
        i += elen;
    }
    out[o] = '\0';
    return (long)o;
}

/* Finds <tag>text</tag> in [p, end): returns the text's start and its
 * length in *n, and in *next (may be NULL) where the closing tag ends; NULL
 * when absent. S3 escapes '<' in text, so a key cannot fake a tag. */
const char *vs_s3_xml_elem(const char *p, const char *end, const char *tag, size_t *n, const char **next) {
    char open[40], close[41];
    int ol = snprintf(open, sizeof open, "<%s>", tag);
    int cl = snprintf(close, sizeof close, "</%s>", tag);
    if (p >= end) return NULL;
    const char *a = memmem(p, (size_t)(end - p), open, (size_t)ol);
    if (!a) return NULL;
    a += ol;
    const char *b = memmem(a, (size_t)(end - a), close, (size_t)cl);
    if (!b) return NULL;
    *n = (size_t)(b - a);
    if (next) *next = b + cl;
    return a;
}

/* The first <Code> of the body, unescaped into 64 bytes at most (S3's
 * codes are short names), then made printable for messages. */
void vs_s3_error_code(const char *body, size_t len, char *code, size_t cap) {
    code[0] = '\0';
    if (!body || !len) return;
    size_t n;
    const char *t = vs_s3_xml_elem(body, body + len, "Code", &n, NULL);
    if (!t) return;
    char raw[64];
    if (vs_s3_xml_unescape(t, n, raw, sizeof raw) < 0) return;
    vs_store_printable(raw, code, cap);
}

/* Reports the keys of one ListObjectsV2 page (body, NUL-terminated) that
 * start with prefix and are valid store keys; sets *stopped when cb asked
 * to stop, and token to the next page's continuation token ("" when this
 * page was the last). */
vs_err vs_s3_list_page(const char *bucket, const char *prefix, const char *body, size_t len, vs_store_list_cb cb,
                       void *ctx, int *stopped, char *token, size_t token_cap, vs_error *err) {
    const char *p = body, *end = body + len;
    size_t plen = strlen(prefix);
    char key[VS_S3_KEY_MAX + 1];
    for (;;) {
        size_t n;
        const char *next;
        const char *blk = vs_s3_xml_elem(p, end, "Contents", &n, &next);
        if (!blk) break;
        const char *bend = blk + n;
        p = next;
        size_t kn, sn;
        const char *kt = vs_s3_xml_elem(blk, bend, "Key", &kn, NULL);
        const char *stx = vs_s3_xml_elem(blk, bend, "Size", &sn, NULL);
        if (!kt || !stx || sn == 0 || sn > 20)
            return vs_fail(err, VS_ERR_BACKEND, "store list %s: malformed ListObjectsV2 answer (Contents without "
                           "Key or Size)", bucket);
        uint64_t size = 0;
        for (size_t i = 0; i < sn; i++) {
            uint64_t dgt = (uint64_t)(stx[i] - '0');
            if (stx[i] < '0' || stx[i] > '9' || size > (UINT64_MAX - dgt) / 10)
                return vs_fail(err, VS_ERR_BACKEND, "store list %s: malformed Size in ListObjectsV2 answer", bucket);
            size = size * 10 + dgt;
        }
        /* keys that cannot be a store key (too long, odd bytes) were not
         * written through a store: skip them, as file:// does */
        if (vs_s3_xml_unescape(kt, kn, key, sizeof key) < 0 || !vs_store_key_ok(key) || strncmp(key, prefix, plen) != 0)
            continue;
        if (cb(ctx, key, size > SIZE_MAX ? SIZE_MAX : (size_t)size)) {
            *stopped = 1;
            return VS_OK;
        }
    }
    size_t tn, nn;
    const char *tr = vs_s3_xml_elem(body, end, "IsTruncated", &tn, NULL);
    token[0] = '\0';
    if (tr && tn == 4 && !memcmp(tr, "true", 4)) {
        const char *nt = vs_s3_xml_elem(body, end, "NextContinuationToken", &nn, NULL);
        if (!nt || nn == 0 || vs_s3_xml_unescape(nt, nn, token, token_cap) <= 0)
            return vs_fail(err, VS_ERR_BACKEND, "store list %s: truncated ListObjectsV2 answer without a usable "
                           "NextContinuationToken", bucket);
    }
    return VS_OK;
}
