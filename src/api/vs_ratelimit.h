/* vs_ratelimit.h - token buckets keyed by a short string (a client address,
 * a tenant, "failed auth from this address"), in a table of fixed size: a
 * flood of new keys evicts the least recently seen bucket of its probe
 * window instead of growing memory. Thread-safe (one mutex); no globals:
 * the server owns one table. */
#ifndef VS_RATELIMIT_H
#define VS_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "vs_err.h"

typedef struct vs_ratelimit vs_ratelimit;

/* A bucket's refill rate and size. per_s <= 0: unlimited (never refused). */
typedef struct vs_rate {
    double per_s;   /* tokens added per second */
    double burst;   /* bucket size: requests allowed at once after a pause */
} vs_rate;

/* Parses "RATE[/s|/m][:BURST]" (e.g. "100", "20/s:50", "10/m:20"); "0" or
 * "off" = unlimited. BURST defaults to max(1, 2 x the per-second rate) for
 * /s and to RATE for /m. VS_ERR_INVALID_ARG naming `what` otherwise. */
vs_err vs_rate_parse(const char *s, const char *what, vs_rate *out, vs_error *err);

/* A table of `slots` buckets (rounded up to a power of two, at least 64).
 * Freed by vs_ratelimit_free. */
vs_err vs_ratelimit_new(size_t slots, vs_ratelimit **out, vs_error *err);
void vs_ratelimit_free(vs_ratelimit *rl);

/* Checks key's bucket at now_ms (a monotonic clock): 1 when at least one
 * token is there, taking it when take is 1; 0 when empty, with *retry_s set
 * to the whole seconds (>= 1) until a token will be there. A key seen for
 * the first time starts with a full bucket. Keys longer than 63 bytes are
 * cut. */
int vs_ratelimit_check(vs_ratelimit *rl, const char *key, vs_rate rate, int take, int64_t now_ms, int *retry_s);

#endif
