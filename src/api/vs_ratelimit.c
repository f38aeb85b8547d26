/* vs_ratelimit.c - token buckets in a fixed open-addressing table, tuned
 * for a few thousand active clients checked on every request: one hash, at
 * most PROBE slots looked at, no allocation after creation.
 *
 * Threading: one mutex around the table. A check is a few dozen
 * instructions, so a lock per bucket or lock-free buckets would buy nothing
 * measurable at HTTP request rates; they were not worth their complexity.
 *
 * Eviction: a key that finds neither its bucket nor a free slot in its
 * probe window takes the window's least recently seen slot. A bucket idle
 * long enough to be full again is the same as no bucket, so evicting it
 * loses nothing; a flood of distinct keys can evict a busy client's bucket
 * (which then starts full): the table bounds memory, not every attack. */
#include "vs_ratelimit.h"

#include <math.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"

#define PROBE 8
#define KEY_MAX 64

typedef struct bucket {
    uint64_t hash;           /* 0 = free slot */
    char key[KEY_MAX];
    double tokens;
    int64_t last_ms;         /* last refill (= last seen) */
} bucket;

struct vs_ratelimit {
    pthread_mutex_t mu;
    size_t mask;             /* slots - 1 */
    bucket *slots;
};

/* FNV-1a of the (cut) key, never 0 (0 marks a free slot). */
static uint64_t key_hash(const char *key) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; key[i] && i < KEY_MAX - 1; i++) h = (h ^ (uint8_t)key[i]) * 1099511628211ull;
    return h ? h : 1;
}

/* Parses a positive finite number at *p, advancing it; -1 when none. */
static double parse_num(const char **p) {
    char *end;
    double v = strtod(*p, &end);
    if (end == *p || !isfinite(v) || v < 0) return -1;
    *p = end;
    return v;
}

vs_err vs_rate_parse(const char *s, const char *what, vs_rate *out, vs_error *err) {
    *out = (vs_rate){0, 0};
    if (!s || !strcmp(s, "off") || !strcmp(s, "0")) return VS_OK;
    const char *p = s;
    double rate = parse_num(&p), per = 1, burst;
    if (rate < 0) goto bad;
    if (!strncmp(p, "/s", 2)) p += 2;
    else if (!strncmp(p, "/m", 2)) { p += 2; per = 60; }
    burst = per == 60 ? rate : fmax(1, 2 * rate);
    if (*p == ':') {
        p++;
        burst = parse_num(&p);
        if (burst < 1) goto bad;
    }
    if (*p) goto bad;
    if (rate == 0) return VS_OK;
    *out = (vs_rate){rate / per, burst};
    return VS_OK;
bad:
    return vs_fail(err, VS_ERR_INVALID_ARG, "%s='%.60s': want RATE[/s|/m][:BURST] (e.g. 100/s:200, 10/m) or off",
                   what, s);
}

vs_err vs_ratelimit_new(size_t slots, vs_ratelimit **out, vs_error *err) {
    *out = NULL;
    size_t n = 64;
    while (n < slots && n < ((size_t)1 << 24)) n <<= 1;
    vs_ratelimit *rl = vs_calloc(1, sizeof *rl);
    if (rl) rl->slots = vs_calloc(n, sizeof *rl->slots);
    if (!rl || !rl->slots) {
        vs_free(rl);
        return vs_fail(err, VS_ERR_NOMEM, "rate limiter: %zu buckets", n);
    }
    rl->mask = n - 1;
    pthread_mutex_init(&rl->mu, NULL);
    *out = rl;
    return VS_OK;
}

void vs_ratelimit_free(vs_ratelimit *rl) {
    if (!rl) return;
    pthread_mutex_destroy(&rl->mu);
    vs_free(rl->slots);
    vs_free(rl);
}

/* The slot of key: its own, else a free one, else the least recently seen
 * of the probe window (reset to a full bucket). Caller holds mu. */
static bucket *find_slot(vs_ratelimit *rl, const char *key, vs_rate rate, int64_t now_ms) {
    uint64_t h = key_hash(key);
    bucket *victim = NULL;
    for (size_t i = 0; i < PROBE; i++) {
        bucket *b = &rl->slots[(h + i) & rl->mask];
        if (b->hash == h && !strncmp(b->key, key, KEY_MAX - 1)) return b;
        if (!victim || (victim->hash && (!b->hash || b->last_ms < victim->last_ms))) victim = b;
    }
    victim->hash = h;
    snprintf(victim->key, sizeof victim->key, "%s", key);
    victim->tokens = rate.burst;
    victim->last_ms = now_ms;
    return victim;
}

int vs_ratelimit_check(vs_ratelimit *rl, const char *key, vs_rate rate, int take, int64_t now_ms, int *retry_s) {
    *retry_s = 0;
    if (!rl || rate.per_s <= 0) return 1;
    pthread_mutex_lock(&rl->mu);
    bucket *b = find_slot(rl, key, rate, now_ms);
    if (now_ms > b->last_ms) b->tokens = fmin(rate.burst, b->tokens + (double)(now_ms - b->last_ms) * rate.per_s / 1000.0);
    b->last_ms = now_ms > b->last_ms ? now_ms : b->last_ms;
    int ok = b->tokens >= 1.0;
    if (ok && take) b->tokens -= 1.0;
    if (!ok) *retry_s = (int)ceil((1.0 - b->tokens) / rate.per_s);
    if (!ok && *retry_s < 1) *retry_s = 1;
    pthread_mutex_unlock(&rl->mu);
    return ok;
}
