/* vs_ratelog.h - a log that says a repeated line once per interval, with a
 * count, instead of flooding: "worker: queue: database or disk is full (125
 * more times in the last 10 s)" after the first of 126 lines.
 *
 * Lines are grouped by a caller-chosen key (the error text without the
 * message id that changes from one line to the next). The first line of a
 * key is written at once; later ones within the interval are counted; the
 * first one after it (or vs_ratelog_flush, called from a loop that runs
 * anyway) writes the count. A few keys are tracked (VS_RATELOG_KEYS); a
 * new key evicts the least recent one, writing its count first, so no
 * occurrence goes unreported. Thread-safe (one mutex); no globals: the
 * owner (e.g. the worker pool) embeds it. Every line written passes
 * through vs_redact. */
#ifndef VS_RATELOG_H
#define VS_RATELOG_H

#include <pthread.h>
#include <stdint.h>

#define VS_RATELOG_KEYS 8
#define VS_RATELOG_KEY_MAX 200

/* Where lines go: NULL writes "line\n" to stderr. */
typedef void (*vs_ratelog_sink)(void *ctx, const char *line);

typedef struct vs_ratelog_slot {
    char key[VS_RATELOG_KEY_MAX];  /* "" = free */
    int64_t since_ms;              /* start of the current interval */
    int64_t last_ms;               /* last occurrence (eviction order) */
    int64_t count;                 /* occurrences not yet written */
} vs_ratelog_slot;

typedef struct vs_ratelog {
    pthread_mutex_t mu;
    int64_t interval_ms;
    const char *prefix;            /* before the key in count lines, e.g. "visage: worker: " */
    vs_ratelog_sink sink;
    void *ctx;
    vs_ratelog_slot slots[VS_RATELOG_KEYS];
} vs_ratelog;

/* interval_ms <= 0: 10 s. prefix is borrowed (a literal). */
void vs_ratelog_init(vs_ratelog *l, int64_t interval_ms, const char *prefix, vs_ratelog_sink sink, void *ctx);

/* One occurrence of key at now_ms: writes line (the full text of this
 * occurrence) when the key is new or its interval is over, else counts it.
 * When a count is pending, the line written is the count line instead:
 * "<prefix><key> (N more times in the last S s)", N counting
 * this one and those not written since the last line. */
void vs_ratelog_say(vs_ratelog *l, int64_t now_ms, const char *key, const char *line);

/* Writes the count lines of keys whose interval is over (now_ms), so a
 * storm that stopped is still reported. */
void vs_ratelog_flush(vs_ratelog *l, int64_t now_ms);

/* Writes every pending count and frees the mutex. */
void vs_ratelog_destroy(vs_ratelog *l, int64_t now_ms);

#endif
