/* vs_http.c - reply helpers, headers, JSON bodies, multipart and base64:
 * the request/response shaping every route shares. */
#include "vs_http.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_multipart.h"
#include "vs_redact.h"

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
    vs_redact_inplace(msg, sizeof msg); /* an echoed URL never shows its credentials */
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

int vs_req_multipart(vs_req *r, vs_part *parts, int cap) {
    return vs_multipart_parse(vs_req_header(r, "Content-Type"), r->body, r->body_len, parts, cap);
}
