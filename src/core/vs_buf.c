/* vs_buf.c - see vs_buf.h. */
#include "vs_buf.h"

#include <string.h>

#include "vs_alloc.h"

vs_err vs_buf_reserve(vs_buf *b, size_t n) {
    if ((b->limit && n > b->limit) || n >= SIZE_MAX / 2) return VS_ERR_TOO_LARGE;
    if (n + 1 <= b->cap) return VS_OK;
    size_t cap = b->cap ? b->cap * 2 : 4096;
    if (cap < n + 1) cap = n + 1;
    if (b->limit && cap > b->limit + 1) cap = b->limit + 1;
    uint8_t *d = vs_realloc(b->data, cap);
    if (!d) return VS_ERR_NOMEM;
    if (!b->data) d[0] = '\0';
    b->data = d;
    b->cap = cap;
    return VS_OK;
}

vs_err vs_buf_append(vs_buf *b, const void *p, size_t n) {
    if (n > SIZE_MAX / 2 - b->len) return VS_ERR_TOO_LARGE;
    vs_err rc = vs_buf_reserve(b, b->len + n);
    if (rc != VS_OK) return rc;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return VS_OK;
}

void vs_buf_clear(vs_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

uint8_t *vs_buf_take(vs_buf *b, size_t *len) {
    if (vs_buf_reserve(b, 0) != VS_OK) return NULL;
    uint8_t *d = b->data;
    if (len) *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

void vs_buf_free(vs_buf *b) {
    size_t limit = b->limit;
    vs_free(b->data);
    memset(b, 0, sizeof *b);
    b->limit = limit;
}

size_t vs_buf_curl_write(char *p, size_t size, size_t nmemb, void *ud) {
    vs_buf_sink *s = ud;
    size_t n = size * nmemb;
    s->rc = vs_buf_append(&s->buf, p, n);
    return s->rc == VS_OK ? n : 0;
}
