/* vs_multipart.c - multipart/form-data splitting: a pure function of the
 * Content-Type header and the body, so it can be fuzzed without a server. */
#include "vs_multipart.h"

#include <stdio.h>
#include <string.h>

/* Finds needle in the first n bytes of hay. */
static const char *memfind(const char *hay, size_t n, const char *needle, size_t nl) {
    if (nl == 0 || n < nl) return NULL;
    for (size_t i = 0; i + nl <= n; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, nl) == 0) return hay + i;
    return NULL;
}

/* Copies the value of attribute `attr` ("name", "filename") of a
 * Content-Disposition header line into out. */
static void disposition_attr(const char *line, size_t n, const char *attr, char *out, size_t cap) {
    char pat[32];
    out[0] = '\0';
    snprintf(pat, sizeof pat, " %s=\"", attr);
    const char *p = memfind(line, n, pat, strlen(pat));
    if (!p) {
        snprintf(pat, sizeof pat, ";%s=\"", attr);
        p = memfind(line, n, pat, strlen(pat));
    }
    if (!p) return;
    p += strlen(pat);
    size_t k = 0;
    while (p < line + n && *p != '"' && k + 1 < cap) out[k++] = *p++;
    out[k] = '\0';
}

int vs_multipart_parse(const char *ct, const char *body, size_t body_len, vs_part *parts, int cap) {
    const char *b = ct ? strstr(ct, "boundary=") : NULL;
    if (!b || !body) return -1;
    b += 9;
    char delim[200];
    size_t bl = strcspn(b, "; ");
    if (*b == '"') { b++; bl = strcspn(b, "\""); }
    if (bl == 0 || bl > 180) return -1;
    int dl = snprintf(delim, sizeof delim, "--%.*s", (int)bl, b);
    const char *p = memfind(body, body_len, delim, (size_t)dl), *end = body + body_len;
    int n = 0;
    while (p && n < cap) {
        p += dl;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') return n; /* closing delimiter */
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') p += 2;
        const char *hdr_end = memfind(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!hdr_end) return -1;
        vs_part *pt = &parts[n];
        memset(pt, 0, sizeof *pt);
        const char *cd = memfind(p, (size_t)(hdr_end - p), "ontent-Disposition:", 19);
        if (cd) {
            const char *eol = memfind(cd, (size_t)(hdr_end + 2 - cd), "\r\n", 2);
            size_t ln = eol ? (size_t)(eol - cd) : (size_t)(hdr_end - cd);
            disposition_attr(cd, ln, "name", pt->name, sizeof pt->name);
            disposition_attr(cd, ln, "filename", pt->filename, sizeof pt->filename);
        }
        const char *data = hdr_end + 4;
        char nd[204];
        int ndl = snprintf(nd, sizeof nd, "\r\n%s", delim);
        const char *next = memfind(data, (size_t)(end - data), nd, (size_t)ndl);
        if (!next) return -1;
        pt->data = data;
        pt->len = (size_t)(next - data);
        n++;
        p = next + 2;
    }
    return n;
}

