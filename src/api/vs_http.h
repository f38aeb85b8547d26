/* vs_http.h - one HTTP request as the route handlers see it, and the reply
 * helpers. Error bodies are always {"error":{"code":"…","message":"…"}}. */
#ifndef VS_HTTP_H
#define VS_HTTP_H

#include <jansson.h>
#include <stddef.h>

#include "vs_app.h"
#include "vs_base64.h"
#include "vs_multipart.h"

typedef struct vs_req {
    struct MHD_Connection *conn;
    vs_app *app;
    const char *method;
    const char *path;            /* without the query string */
    char *body;                  /* NUL-terminated copy of the request body */
    size_t body_len;
    int too_large;               /* body exceeded max_body_bytes (already discarded) */
    char tenant[VS_TENANT_MAX];  /* from the API key (or "default" in open mode) */
    const vs_pipeline *p;        /* the engine and collections this request uses, taken
                                  * once at its start (a reindex switches them) */
    /* the reply */
    int status;
    char *resp;                  /* malloc'd */
    size_t resp_len;
    const char *content_type;
    char location[256];
    int retry_after;             /* seconds for a Retry-After header; 0: none, except that every
                                  * 503 gets VS_RETRY_AFTER_S (send_reply in vs_server.c) */
    int64_t started_ms;
} vs_req;

#define VS_RETRY_AFTER_S 5       /* Retry-After of a 503 whose handler named no other */

/* Replies with a JSON value (stolen). */
void vs_reply_json(vs_req *r, int status, json_t *body);
/* Replies {"error":{"code":code,"message":…}}. */
void vs_reply_error(vs_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Replies with raw bytes (taken: must come from malloc). */
void vs_reply_bytes(vs_req *r, int status, const char *content_type, void *data, size_t len);
/* Maps a vs_err to a status and error reply (e.g. TOO_LARGE -> 413). */
void vs_reply_vs_err(vs_req *r, vs_err code, const vs_error *err);

const char *vs_req_header(vs_req *r, const char *name);
const char *vs_req_query(vs_req *r, const char *name);

/* Parses the body as a JSON object; on failure replies 400 naming the line
 * and column and returns NULL. */
json_t *vs_req_json(vs_req *r);

/* Splits a multipart/form-data body (vs_multipart_parse on this request). */
int vs_req_multipart(vs_req *r, vs_part *parts, int cap);

/* 1 when the request's Content-Type starts with prefix. */
int vs_req_is(vs_req *r, const char *content_type_prefix);

#endif
