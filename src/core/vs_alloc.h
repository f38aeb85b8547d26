/* vs_alloc.h - every heap allocation of visage goes through here.
 *
 * One wrapper so that tests can make the N-th allocation fail and check that
 * decoders and loaders clean up and report VS_ERR_NOMEM (the SQLite/curl
 * fault-injection habit). In production the hook is never armed. */
#ifndef VS_ALLOC_H
#define VS_ALLOC_H

#include <stddef.h>

void *vs_malloc(size_t n);
void *vs_calloc(size_t count, size_t size); /* checks count*size overflow */
void *vs_realloc(void *p, size_t n);
void vs_free(void *p);
char *vs_strdup(const char *s);

/* Multiplies a*b (and *c) into *out; returns 0 on overflow. For sizes that come
 * from untrusted headers. */
int vs_mul_size(size_t a, size_t b, size_t *out);

/* Test hook: after `n` more successful allocations every one fails, until
 * disarmed with n < 0.
 * Returns how many allocations happened since the last arm. Not for production. */
void vs_alloc_fail_after(long n);
long vs_alloc_count(void);

#endif
