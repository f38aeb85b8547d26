/* vs_ratelog.c - rate-limited log lines (see vs_ratelog.h). Tuned for a
 * handful of distinct errors repeating many times a second: a linear scan
 * of VS_RATELOG_KEYS slots under one mutex. */
#include "vs_ratelog.h"

#include <stdio.h>
#include <string.h>

#include "vs_redact.h"

void vs_ratelog_init(vs_ratelog *l, int64_t interval_ms, const char *prefix, vs_ratelog_sink sink, void *ctx) {
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
    l->interval_ms = interval_ms > 0 ? interval_ms : 10000;
    l->prefix = prefix ? prefix : "";
    l->sink = sink;
    l->ctx = ctx;
}

/* Writes one line through the sink, credentials hidden. */
static void emit(vs_ratelog *l, const char *line) {
    char shown[1024];
    vs_redact(line, shown, sizeof shown);
    if (l->sink) l->sink(l->ctx, shown);
    else fprintf(stderr, "%s\n", shown);
}

/* Writes the count line of slot s (its pending occurrences up to now). */
static void emit_count(vs_ratelog *l, vs_ratelog_slot *s, int64_t now_ms) {
    char line[VS_RATELOG_KEY_MAX + 128];
    int64_t secs = (now_ms - s->since_ms + 500) / 1000;
    snprintf(line, sizeof line, "%s%s (%lld more times in the last %lld s)", l->prefix, s->key, (long long)s->count,
             (long long)(secs > 0 ? secs : 1));
    emit(l, line);
    s->count = 0;
    s->since_ms = now_ms;
}

/* The slot of key, or a free one, or the least recent one after writing
 * its pending count; *fresh = 1 when it did not hold key. */
static vs_ratelog_slot *slot_for(vs_ratelog *l, int64_t now_ms, const char *key, int *fresh) {
    vs_ratelog_slot *victim = &l->slots[0];
    for (int i = 0; i < VS_RATELOG_KEYS; i++) {
        vs_ratelog_slot *s = &l->slots[i];
        if (s->key[0] && strncmp(s->key, key, sizeof s->key - 1) == 0) {
            *fresh = 0;
            return s;
        }
        if (!s->key[0]) victim = s;
        else if (victim->key[0] && s->last_ms < victim->last_ms) victim = s;
    }
    if (victim->key[0] && victim->count > 0) emit_count(l, victim, now_ms);
    snprintf(victim->key, sizeof victim->key, "%s", key);
    victim->since_ms = now_ms;
    victim->count = 0;
    *fresh = 1;
    return victim;
}

void vs_ratelog_say(vs_ratelog *l, int64_t now_ms, const char *key, const char *line) {
    pthread_mutex_lock(&l->mu);
    int fresh = 0;
    vs_ratelog_slot *s = slot_for(l, now_ms, key ? key : line, &fresh);
    s->last_ms = now_ms;
    if (fresh) {
        emit(l, line);
    } else if (now_ms - s->since_ms < l->interval_ms) {
        s->count++;
    } else if (s->count > 0) {
        s->count++;
        emit_count(l, s, now_ms);
    } else {
        emit(l, line);
        s->since_ms = now_ms;
    }
    pthread_mutex_unlock(&l->mu);
}

void vs_ratelog_flush(vs_ratelog *l, int64_t now_ms) {
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < VS_RATELOG_KEYS; i++) {
        vs_ratelog_slot *s = &l->slots[i];
        if (s->key[0] && s->count > 0 && now_ms - s->since_ms >= l->interval_ms) emit_count(l, s, now_ms);
    }
    pthread_mutex_unlock(&l->mu);
}

void vs_ratelog_destroy(vs_ratelog *l, int64_t now_ms) {
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < VS_RATELOG_KEYS; i++)
        if (l->slots[i].key[0] && l->slots[i].count > 0) emit_count(l, &l->slots[i], now_ms);
    pthread_mutex_unlock(&l->mu);
    pthread_mutex_destroy(&l->mu);
}
