/* vs_http.h - one HTTP request as the route handlers see it, and the reply
 * helpers. Error bodies are always {"error":{"code":"…","message":"…"}}. */
#ifndef VS_HTTP_H
#define VS_HTTP_H

#include <jansson.h>
#include <stddef.h>

#include "vs_app.h"
#include "vs_base64.h"
#include "vs_multipart.h"
#include "vs_schema.h"

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
    char allow[64];              /* Allow header of a 405: the methods the path takes */
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

/* 1 when the media type of content_type (before any ';' parameters) is
 * exactly type, compared case-insensitively; a type ending in '/' ("image/")
 * matches any subtype. Pure (tested without a server). */
int vs_media_type_is(const char *content_type, const char *type);

/* The bodies a route accepts (vs_req_body). */
enum {
    VS_BODY_JSON = 1,   /* application/json */
    VS_BODY_FORM = 2,   /* multipart/form-data */
    VS_BODY_IMAGE = 4   /* image/..., application/octet-stream: the image itself */
};

#define VS_FORM_MAX_PARTS 16

/* The request body as a JSON object that conforms to its schema, or NULL
 * after replying: JSON is parsed and checked against json_schema; the text
 * parts of a multipart form become the fields of form_schema (typed as it
 * says, e.g. top_k an integer) and are checked; at most one "image" part; an
 * image body is {}; so is an empty body without Content-Type (the schema's
 * required fields then say what is missing). Any other Content-Type is 415
 * naming what the route accepts. The result is new (json_decref). */
json_t *vs_req_body(vs_req *r, unsigned accept, const vs_schema *json_schema, const vs_schema *form_schema);

#endif
