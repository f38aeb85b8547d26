/* vs_buf.h - a growing byte buffer that keeps a NUL after its bytes (so a
 * text body can be used as a string), with an optional size limit, and the
 * libcurl write callback most HTTP clients here need: append the body,
 * abort the transfer past the limit. Used by the fetch, S3, Qdrant and CLI
 * clients; what to keep of a body stays their decision. */
#ifndef VS_BUF_H
#define VS_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "vs_err.h"

typedef struct vs_buf {
    uint8_t *data;   /* vs_free; data[len] == '\0' once anything was reserved */
    size_t len, cap;
    size_t limit;    /* 0 = none; else len never passes it (and cap stays <= limit + 1) */
} vs_buf;

/* Room for n bytes in all plus the NUL, growing geometrically but never
 * past the limit. VS_ERR_TOO_LARGE when n is over the limit, VS_ERR_NOMEM
 * when memory ran out (b unchanged either way). */
vs_err vs_buf_reserve(vs_buf *b, size_t n);

/* Appends n bytes; errors as vs_buf_reserve (b unchanged). */
vs_err vs_buf_append(vs_buf *b, const void *p, size_t n);

/* Empties the buffer, keeping its memory and limit: a retried request. */
void vs_buf_clear(vs_buf *b);

/* Hands the bytes over, NUL-terminated ("" when there are none), and their
 * length; the buffer is empty (its limit kept) afterwards. NULL (b
 * unchanged) when memory for an empty buffer ran out. */
uint8_t *vs_buf_take(vs_buf *b, size_t *len);

/* Frees the bytes; the buffer is empty (its limit kept) and usable again. */
void vs_buf_free(vs_buf *b);

/* A body received through vs_buf_curl_write; rc says why a transfer was
 * aborted (TOO_LARGE past buf.limit, NOMEM), VS_OK otherwise. */
typedef struct vs_buf_sink {
    vs_buf buf;
    vs_err rc;
} vs_buf_sink;

/* CURLOPT_WRITEFUNCTION for a vs_buf_sink given as CURLOPT_WRITEDATA. */
size_t vs_buf_curl_write(char *p, size_t size, size_t nmemb, void *sink);

#endif
