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

int vs_media_type_is(const char *ct, const char *type) {
    if (!ct) return 0;
    while (*ct == ' ' || *ct == '\t') ct++;
    size_t n = strcspn(ct, ";"), tl = strlen(type);
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) n--;
    if (tl && type[tl - 1] == '/') return n > tl && strncasecmp(ct, type, tl) == 0;
    return n == tl && strncasecmp(ct, type, tl) == 0;
}

/* What a route accepts, for the 415 message. */
static void accepted_text(unsigned accept, char *out, size_t cap) {
    snprintf(out, cap, "%s%s%s%s%s", accept & VS_BODY_JSON ? "application/json" : "",
             (accept & VS_BODY_JSON) && (accept & ~1u) ? ", " : "", accept & VS_BODY_FORM ? "multipart/form-data" : "",
             (accept & VS_BODY_FORM) && (accept & VS_BODY_IMAGE) ? ", " : "",
             accept & VS_BODY_IMAGE ? "image/* or application/octet-stream (the image itself)" : "");
}

/* One text part of a form as the JSON value its field's type says; NULL
 * after writing why into msg. */
static json_t *form_value(const vs_schema_field *f, const char *data, size_t len, char *msg, size_t cap) {
    char num[64];
    json_t *v = NULL;
    if (f->type == VS_SCHEMA_STRING) {
        if (!(v = json_stringn(data, len))) snprintf(msg, cap, "%s: must be UTF-8 text", f->name);
        return v;
    }
    if (f->type == VS_SCHEMA_OBJECT || f->type == VS_SCHEMA_ARRAY) {
        json_error_t je;
        if (!(v = json_loadb(data, len, 0, &je))) snprintf(msg, cap, "%s: not valid JSON: %s", f->name, je.text);
        return v;
    }
    if (len == 0 || len >= sizeof num) {
        snprintf(msg, cap, "%s: expected %s, got %zu bytes", f->name,
                 f->type == VS_SCHEMA_BOOLEAN ? "true or false" : "a number", len);
        return NULL;
    }
    memcpy(num, data, len);
    num[len] = '\0';
    char *end = NULL;
    if (f->type == VS_SCHEMA_BOOLEAN && (!strcmp(num, "true") || !strcmp(num, "false"))) return json_boolean(num[0] == 't');
    if (f->type == VS_SCHEMA_INTEGER) {
        long long x = strtoll(num, &end, 10);
        if (end != num && !*end && num[0] != ' ') return json_integer(x);
    } else if (f->type == VS_SCHEMA_NUMBER) {
        double x = strtod(num, &end);
        if (end != num && !*end && num[0] != ' ' && x == x && x - x == 0) return json_real(x);
    }
    snprintf(msg, cap, "%s: expected %s, got \"%s\"", f->name,
             f->type == VS_SCHEMA_BOOLEAN ? "true or false" : f->type == VS_SCHEMA_INTEGER ? "an integer" : "a number", num);
    return NULL;
}

/* The text parts of a multipart body as an object of form_schema's fields;
 * NULL after replying 400 (unknown part, a field twice, two images). */
static json_t *form_body(vs_req *r, const vs_schema *form_schema) {
    vs_part parts[VS_FORM_MAX_PARTS + 1];
    char msg[512] = "";
    int n = vs_req_multipart(r, parts, VS_FORM_MAX_PARTS + 1), images = 0;
    if (n < 0) {
        vs_reply_error(r, 400, "bad_request", "malformed multipart/form-data body");
        return NULL;
    }
    if (n > VS_FORM_MAX_PARTS) {
        vs_reply_error(r, 400, "bad_request", "multipart body has more than %d parts", VS_FORM_MAX_PARTS);
        return NULL;
    }
    json_t *o = json_object();
    for (int i = 0; o && !msg[0] && i < n; i++) {
        const vs_schema_field *f = vs_schema_find(form_schema, parts[i].name);
        if (!strcmp(parts[i].name, "image")) {
            if (++images > 1) snprintf(msg, sizeof msg, "image: a second 'image' part: send one image per request");
        } else if (!f) {
            char known[256] = "image";
            for (int k = 0, m = 5; k < form_schema->n_fields && m < (int)sizeof known; k++)
                m += snprintf(known + m, sizeof known - (size_t)m, ", %s", form_schema->fields[k].name);
            snprintf(msg, sizeof msg, "%.64s: unknown multipart field (this route takes %s)", parts[i].name, known);
        } else if (json_object_get(o, f->name)) {
            snprintf(msg, sizeof msg, "%s: given twice", f->name);
        } else {
            json_t *v = form_value(f, parts[i].data, parts[i].len, msg, sizeof msg);
            if (v) json_object_set_new(o, f->name, v);
        }
    }
    if (!msg[0] && o) vs_schema_check(form_schema, o, msg, sizeof msg);
    if (!o || msg[0]) {
        json_decref(o);
        if (msg[0]) vs_reply_error(r, 400, "bad_request", "%s", msg);
        else vs_reply_error(r, 500, "internal", "out of memory");
        return NULL;
    }
    return o;
}

json_t *vs_req_body(vs_req *r, unsigned accept, const vs_schema *json_schema, const vs_schema *form_schema) {
    const char *ct = vs_req_header(r, "Content-Type");
    char msg[512];
    json_t *o = NULL;
    if (vs_media_type_is(ct, "application/json") && (accept & VS_BODY_JSON)) {
        if (!(o = vs_req_json(r))) return NULL;
        if (vs_schema_check(json_schema, o, msg, sizeof msg) != 0) {
            json_decref(o);
            vs_reply_error(r, 400, "bad_request", "%s", msg);
            return NULL;
        }
        return o;
    }
    if (vs_media_type_is(ct, "multipart/form-data") && (accept & VS_BODY_FORM)) return form_body(r, form_schema);
    if ((vs_media_type_is(ct, "image/") || vs_media_type_is(ct, "application/octet-stream")) && (accept & VS_BODY_IMAGE))
        return json_object();
    if (!ct && r->body_len == 0) { /* nothing sent: the schema says what was needed */
        o = json_object();
        if (o && vs_schema_check(json_schema, o, msg, sizeof msg) != 0) {
            json_decref(o);
            vs_reply_error(r, 400, "bad_request", "%s", msg);
            return NULL;
        }
        return o;
    }
    char acc[160];
    accepted_text(accept, acc, sizeof acc);
    int tl = ct ? (int)strcspn(ct, ";") : 0; /* the media type, without a boundary or charset */
    vs_reply_error(r, 415, "unsupported_media_type", "%s %s takes %s, not %.*s", r->method, r->path, acc,
                   ct ? (tl > 100 ? 100 : tl) : 29, ct ? ct : "a body without Content-Type");
    return NULL;
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
