/* fuzz_redis.c - libFuzzer target for what the Redis queue reads from the
 * server: the bytes are RESP, parsed by hiredis's reader (not ours) into
 * reply trees, which go through our readers (src/queue/vs_redis_reply.c)
 * the way vs_queue_redis.c uses them: an XREADGROUP reply, XREVRANGE dead
 * letters, stats and "next" script replies. Property: a stream id that
 * maps to a vs id maps back to the same halves.
 * Build and run: tests/fuzz/run.sh redis [seconds] */
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vs_redis_reply.h"

/* Stream id text -> vs id -> text must give back the same ms and seq. */
static void sid_round_trip(const char *s) {
    int64_t v = vs_redis_encode_sid(s);
    if (!v) return;
    unsigned long long ms, seq, ms2, seq2;
    char out[48];
    if (!vs_redis_parse_sid(s, &ms, &seq) || !vs_redis_decode_id(v, out) || !vs_redis_parse_sid(out, &ms2, &seq2) ||
        ms != ms2 || seq != seq2 || vs_redis_encode_sid(out) != v)
        abort();
}

/* The fields a queue entry or dead letter is read for. */
static void read_fields(const redisReply *f) {
    static const char *names[] = {"body", "sid", "attempts", "failed_at", "last_error"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const redisReply *v = vs_redis_field_of(f, names[i]);
        (void)vs_redis_reply_ll(v);
        if (v && v->type == REDIS_REPLY_STRING) {
            volatile size_t n = strlen(v->str) + v->len; /* ASan: str holds len bytes */
            (void)n;
            sid_round_trip(v->str);
        }
    }
}

static void walk(const redisReply *r) {
    int malformed;
    const redisReply *e = vs_redis_xread_entry(r, &malformed);
    if (e) {
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) abort();
        if (e->element[0]->type == REDIS_REPLY_STRING) sid_round_trip(e->element[0]->str);
        read_fields(e->element[1]);
    }
    if (r->type == REDIS_REPLY_STRING) sid_round_trip(r->str);
    if (r->type != REDIS_REPLY_ARRAY) return;
    if (r->elements == 3) read_fields(r->element[1]); /* "next" script: [id, fields, attempts] */
    for (size_t i = 0; i < r->elements; i++) { /* XREVRANGE rows [id, fields]; stats numbers */
        const redisReply *x = r->element[i];
        (void)vs_redis_reply_ll(x);
        if (x->type == REDIS_REPLY_ARRAY && x->elements == 2) read_fields(x->element[1]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    redisReader *rd = redisReaderCreate();
    if (!rd) return 0;
    vs_redis_reader_limits(rd); /* as vs_queue_redis.c sets on every connection */
    if (redisReaderFeed(rd, (const char *)data, size) == REDIS_OK) {
        void *reply;
        for (int k = 0; k < 16 && redisReaderGetReply(rd, &reply) == REDIS_OK && reply; k++) {
            walk(reply);
            freeReplyObject(reply);
        }
    }
    redisReaderFree(rd);
    return 0;
}
