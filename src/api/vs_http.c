/* vs_http.c - reply helpers, headers, JSON bodies, multipart and base64:
 * the request/response shaping every route shares. */
#include "vs_http.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"

void vs_reply_bytes(vs_req *r, int status, const char *ct, void *data, size_t len) {
    free(r->resp);
    r->status = status;
    r->resp = data;
    r->resp_len = len;
    r->content_type = ct;
}

void vs_reply_json(vs_req *r, int status, json_t *body) {
    char *s = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(7)) : NULL;
    json_decref(body);
    if (!s) {
        s = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"cannot format the response\"}}");
        status = 500;
    }
    vs_reply_bytes(r, status, "application/json", s, s ? strlen(s) : 0);
}

void vs_reply_error(vs_req *r, int status, const char *code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vs_reply_json(r, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

void vs_reply_vs_err(vs_req *r, vs_err code, const vs_error *err) {
    const char *msg = err && err->msg[0] ? err->msg : vs_err_name(code);
    switch (code) {
    case VS_ERR_TOO_LARGE: vs_reply_error(r, 413, "too_large", "%s", msg); break;
    case VS_ERR_UNSUPPORTED: vs_reply_error(r, 415, "unsupported_media_type", "%s", msg); break;
    case VS_ERR_CORRUPT:
    case VS_ERR_INVALID_ARG: vs_reply_error(r, 400, "bad_request", "%s", msg); break;
    case VS_ERR_NOT_FOUND: vs_reply_error(r, 404, "not_found", "%s", msg); break;
    case VS_ERR_IO:
    case VS_ERR_BACKEND: vs_reply_error(r, 503, "backend_unavailable", "%s", msg); break;
    default: vs_reply_error(r, 500, "internal", "%s", msg); break;
    }
}

const char *vs_req_header(vs_req *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *vs_req_query(vs_req *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

int vs_req_is(vs_req *r, const char *prefix) {
    const char *ct = vs_req_header(r, "Content-Type");
    return ct && strncasecmp(ct, prefix, strlen(prefix)) == 0;
}

json_t *vs_req_json(vs_req *r) {
    json_error_t je;
    json_t *o = json_loadb(r->body ? r->body : "", r->body_len, 0, &je);
    if (!o) {
        vs_reply_error(r, 400, "malformed_json", "request body is not valid JSON: %s at line %d column %d (byte %d)",
                       je.text, je.line, je.column, je.position);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        vs_reply_error(r, 400, "malformed_json", "request body must be a JSON object");
        return NULL;
    }
    return o;
}

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

int vs_req_multipart(vs_req *r, vs_part *parts, int cap) {
    const char *ct = vs_req_header(r, "Content-Type");
    const char *b = ct ? strstr(ct, "boundary=") : NULL;
    if (!b || !r->body) return -1;
    b += 9;
    char delim[200];
    size_t bl = strcspn(b, "; ");
    if (*b == '"') { b++; bl = strcspn(b, "\""); }
    if (bl == 0 || bl > 180) return -1;
    int dl = snprintf(delim, sizeof delim, "--%.*s", (int)bl, b);
    const char *p = memfind(r->body, r->body_len, delim, (size_t)dl), *end = r->body + r->body_len;
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

