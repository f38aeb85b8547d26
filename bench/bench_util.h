/* bench_util.h - what the C benchmarks share: a monotonic clock, a small
 * seeded random generator and random unit vectors, dying with a message
 * (bench_fail, bench_die), and removing a scratch directory. Header-only:
 * each bench is one program. */
#ifndef VS_BENCH_UTIL_H
#define VS_BENCH_UTIL_H

#include <ftw.h>
#include <stdarg.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "vs_err.h"

static inline double bench_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Resident set size in MB, from /proc/self/statm. */
static inline double bench_rss_mb(void) {
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

/* qsort comparator for doubles, ascending. */
static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* xorshift64*: the same sequence for the same seed, run after run. */
static inline uint64_t bench_rnd(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ull;
}

/* A random unit vector of n floats (uniform in [-1,1]^n, normalised). */
static inline void bench_rand_unit(uint64_t *state, float *v, int n) {
    double n2 = 0;
    for (int d = 0; d < n; d++) {
        v[d] = (float)((double)(bench_rnd(state) >> 11) / 4503599627370496.0 - 1.0);
        n2 += (double)v[d] * v[d];
    }
    float inv = (float)(1.0 / sqrt(n2));
    for (int d = 0; d < n; d++) v[d] *= inv;
}

/* Prints a printf-style message and a newline on stderr, and exits 1. */
static inline void bench_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static inline void bench_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static inline void bench_die(const char *prog, const char *what, const vs_error *e) {
    fprintf(stderr, "%s: %s: %s\n", prog, what, e->msg);
    exit(1);
}

static inline int bench_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Removes dir and everything under it. */
static inline void bench_rm_tree(const char *dir) { nftw(dir, bench_rm_one, 16, FTW_DEPTH | FTW_PHYS); }

#endif
