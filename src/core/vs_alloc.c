/* vs_alloc.c - allocation wrapper with an injectable failure for tests.
 * The counters are atomics so the hook is safe with worker threads; they cost
 * one relaxed load per allocation when disarmed. */
#include "vs_alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_after = -1;
static atomic_long alloc_count = 0;

/* Returns 1 when the armed hook says this allocation must fail. */
static int should_fail(void) {
    atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    long n = atomic_load_explicit(&fail_after, memory_order_relaxed);
    if (n < 0) return 0;
    if (n == 0) return 1;
    atomic_fetch_sub_explicit(&fail_after, 1, memory_order_relaxed);
    return 0;
}

void *vs_malloc(size_t n) { return should_fail() ? NULL : malloc(n ? n : 1); }

void *vs_calloc(size_t count, size_t size) {
    size_t total;
    if (!vs_mul_size(count, size, &total)) return NULL;
    return should_fail() ? NULL : calloc(1, total ? total : 1);
}

void *vs_realloc(void *p, size_t n) { return should_fail() ? NULL : realloc(p, n ? n : 1); }

void vs_free(void *p) { free(p); }

char *vs_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = vs_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int vs_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

void vs_alloc_fail_after(long n) {
    atomic_store(&alloc_count, 0);
    atomic_store(&fail_after, n);
}

long vs_alloc_count(void) { return atomic_load(&alloc_count); }
