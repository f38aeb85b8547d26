/* vs_redis_reply.c - reading the Redis queue's replies: stream ids and the
 * shapes of XREADGROUP, XREVRANGE and script replies. hiredis parses RESP;
 * this walks the reply trees it builds, checking every type and count
 * before an element is touched, since a broken or hostile server (or a
 * stream someone else wrote to) decides them. Pure, fuzzed by
 * tests/fuzz/fuzz_redis.c. */
#include "vs_redis_reply.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* hiredis's own constructors, reached through the task's privdata (the
 * reader's, set by vs_redis_reader_limits): only arrays are checked. */
static void *fwd_string(const redisReadTask *t, char *s, size_t n) {
    return ((const redisReplyObjectFunctions *)t->privdata)->createString(t, s, n);
}
static void *fwd_integer(const redisReadTask *t, long long v) {
    return ((const redisReplyObjectFunctions *)t->privdata)->createInteger(t, v);
}
static void *fwd_nil(const redisReadTask *t) { return ((const redisReplyObjectFunctions *)t->privdata)->createNil(t); }

/* A larger "*N" returns NULL, which hiredis turns into a reader error (the
 * connection is dropped and the operation retried or failed), instead of
 * an allocation the server sized. */
static void *capped_array(const redisReadTask *t, int n) {
    if (n > VS_REDIS_MAX_ELEMENTS) return NULL;
    return ((const redisReplyObjectFunctions *)t->privdata)->createArray(t, n);
}

static redisReplyObjectFunctions capped_fns = {fwd_string, capped_array, fwd_integer, fwd_nil, freeReplyObject};

void vs_redis_reader_limits(redisReader *r) {
    if (!r || r->fn == &capped_fns || !r->fn) return;
    r->privdata = r->fn; /* hiredis's default table: static, lives as long as the process */
    r->fn = &capped_fns;
}

/* Integer value of an integer or numeric string reply (0 otherwise). */
long long vs_redis_reply_ll(const redisReply *r) {
    if (!r) return 0;
    if (r->type == REDIS_REPLY_INTEGER) return r->integer;
    if (r->type == REDIS_REPLY_STRING && r->str) return strtoll(r->str, NULL, 10);
    return 0;
}

/* The value of `name` in a flat field/value array reply, or NULL. */
const redisReply *vs_redis_field_of(const redisReply *f, const char *name) {
    if (!f || f->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (f->element[i]->type == REDIS_REPLY_STRING && !strcmp(f->element[i]->str, name)) return f->element[i + 1];
    return NULL;
}

/* Parses a stream id "ms-seq" into its halves; 0 on malformed text. */
int vs_redis_parse_sid(const char *s, unsigned long long *ms, unsigned long long *seq) {
    char *end;
    errno = 0;
    *ms = strtoull(s, &end, 10);
    if (errno || end == s || *end != '-') return 0;
    const char *p = end + 1;
    *seq = strtoull(p, &end, 10);
    return !errno && end != p && *end == '\0';
}

/* vs id of a stream id: ms << 20 | seq; 0 when it does not fit (see the
 * header: ms < 2^43, seq < 2^20). */
int64_t vs_redis_encode_sid(const char *s) {
    unsigned long long ms, seq;
    if (!s || !vs_redis_parse_sid(s, &ms, &seq) || ms >= VS_REDIS_MS_LIMIT || seq >= (1ULL << VS_REDIS_SEQ_BITS)) return 0;
    return (int64_t)(ms << VS_REDIS_SEQ_BITS | seq);
}

/* Stream id of a vs id; 0 for ids no stream id maps to (<= 0). */
int vs_redis_decode_id(int64_t id, char out[48]) {
    if (id <= 0) return 0;
    snprintf(out, 48, "%llu-%llu", (unsigned long long)id >> VS_REDIS_SEQ_BITS,
             (unsigned long long)id & ((1ULL << VS_REDIS_SEQ_BITS) - 1));
    return 1;
}

/* The one entry of an XREADGROUP COUNT 1 reply, [[key, [[id, fields]]]]:
 * an array of [id, fields] or NULL (nil, or no entry: *malformed 0; any
 * other shape: *malformed 1). */
const redisReply *vs_redis_xread_entry(const redisReply *r, int *malformed) {
    *malformed = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0) return NULL;
    const redisReply *s = r->element[0];
    if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 || s->element[1]->type != REDIS_REPLY_ARRAY ||
        s->element[1]->elements == 0)
        return NULL;
    const redisReply *e = s->element[1]->element[0];
    if (e->type == REDIS_REPLY_ARRAY && e->elements == 2) return e;
    *malformed = 1;
    return NULL;
}
