/* vs_redis_reply.h - the Redis queue's reading of reply trees and stream
 * ids (vs_queue_redis.c asks, these read). Private to src/queue. */
#ifndef VS_REDIS_REPLY_H
#define VS_REDIS_REPLY_H

#include <hiredis/hiredis.h>
#include <stdint.h>

/* A stream id "ms-seq" maps to the vs id ms << 20 | seq when ms < 2^43 and
 * seq < 2^20 (see vs_queue_redis.c). */
#define VS_REDIS_SEQ_BITS 20
#define VS_REDIS_MS_LIMIT (1ULL << 43)

/* Elements of one reply array hiredis may allocate for: hiredis 0.14
 * trusts a server's "*N" up to INT_MAX (a 17 GB pointer array before one
 * element arrives, found by fuzz_redis). Our largest replies (every dead
 * letter) stay far below. */
#define VS_REDIS_MAX_ELEMENTS (1LL << 22)

/* Applies VS_REDIS_MAX_ELEMENTS to a reader (a context's c->reader) by
 * wrapping its reply constructors; call once, before the first reply. */
void vs_redis_reader_limits(redisReader *r);

/* Integer value of an integer or numeric string reply (0 otherwise). */
long long vs_redis_reply_ll(const redisReply *r);

/* The value of `name` in a flat field/value array reply, or NULL. */
const redisReply *vs_redis_field_of(const redisReply *f, const char *name);

/* Parses a stream id "ms-seq" into its halves; 0 on malformed text. */
int vs_redis_parse_sid(const char *s, unsigned long long *ms, unsigned long long *seq);

/* vs id of a stream id; 0 when it does not fit. */
int64_t vs_redis_encode_sid(const char *s);

/* Stream id of a vs id into out; 0 for ids no stream id maps to (<= 0). */
int vs_redis_decode_id(int64_t id, char out[48]);

/* The one entry of an XREADGROUP COUNT 1 reply, [[key, [[id, fields]]]]:
 * an array of [id, fields] or NULL (nil, or no entry: *malformed 0; any
 * other shape: *malformed 1). */
const redisReply *vs_redis_xread_entry(const redisReply *r, int *malformed);

#endif
