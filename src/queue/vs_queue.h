/* vs_queue.h - the work queue contract ("face:ingest"): at-least-once
 * delivery. A message leaves the queue only when acknowledged; a consumer
 * that dies leaves its leased messages to be delivered again after the
 * visibility timeout; after max_attempts failures a message moves to the
 * dead-letter list with its last error. Backends: "embedded" (SQLite in WAL
 * mode under the data dir, vs_queue_sqlite.c) and "redis://" (Redis >= 7
 * Streams, vs_queue_redis.c). Thread-safe. */
#ifndef VS_QUEUE_H
#define VS_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "vs_err.h"

typedef struct vs_queue vs_queue;

typedef struct vs_queue_opts {
    const char *name;          /* NULL = "face:ingest"; "face:results" carries finished
                                * points from workers to the index owner. embedded:
                                * {data_dir}/queue.db for face:ingest, {data_dir}/<name
                                * with ':' as '-'>.db otherwise; redis: the stream key */
    const char *data_dir;      /* embedded: where queue.db lives */
    int64_t visibility_ms;     /* lease length before redelivery (default 60000) */
    int max_attempts;          /* deliveries before dead-letter (default 5) */
} vs_queue_opts;

typedef struct vs_msg {
    int64_t id;        /* stable across redeliveries */
    char *body;        /* JSON text, owned: vs_msg_free */
    int attempts;      /* deliveries so far, including this one */
} vs_msg;

typedef struct vs_dead_msg {
    int64_t id;
    const char *body;
    const char *last_error;
    int attempts;
    int64_t failed_at_ms;  /* wall clock */
} vs_dead_msg;

typedef int (*vs_dead_cb)(void *ctx, const vs_dead_msg *m);

/* ready: waiting for a consumer (including retry delays and expired
 * leases); in_flight: leased, lease running; acked_total: since creation. */
typedef struct vs_queue_stats {
    int64_t ready, in_flight, dead, acked_total;
} vs_queue_stats;

typedef struct vs_queue_ops {
    /* Appends messages durably (committed before returning); ids_out may be NULL. */
    vs_err (*push)(vs_queue *q, const char *const *bodies, int n, int64_t *ids_out, vs_error *err);
    /* Leases the oldest ready message (or one whose lease expired), waiting up
     * to wait_ms for one. None -> VS_ERR_NOT_FOUND. */
    vs_err (*pop)(vs_queue *q, int wait_ms, vs_msg *out, vs_error *err);
    /* Done: removes it. Acking an unknown id is not an error. */
    vs_err (*ack)(vs_queue *q, int64_t id, vs_error *err);
    /* Failed: back to ready after retry_ms, or to the dead letters with
     * `error` when attempts reached max_attempts. */
    vs_err (*nack)(vs_queue *q, int64_t id, const char *error, int64_t retry_ms, vs_error *err);
    vs_err (*stats)(vs_queue *q, vs_queue_stats *out, vs_error *err);
    /* Dead letters, newest first, at most limit (<= 0: all). */
    vs_err (*list_dead)(vs_queue *q, int limit, vs_dead_cb cb, void *ctx, vs_error *err);
    /* Wakes every pop() waiting (shutdown): they return VS_ERR_NOT_FOUND,
     * and so does every later pop, at once, until close. */
    void (*wake)(vs_queue *q);
    int (*healthy)(vs_queue *q);
    void (*close)(vs_queue *q);
} vs_queue_ops;

struct vs_queue {
    const vs_queue_ops *ops;
};

/* url: "embedded" (needs opts->data_dir), or
 * "redis://[[user]:password@]host[:port][/db][?prefix=P&max_len=N]": stream
 * P"ingest" (P defaults to "face:"), group "visage"; a push that would take
 * the stream past max_len messages (default 10 million) fails with
 * VS_ERR_TOO_LARGE, never trimming unprocessed ones. Redis unreachable:
 * VS_ERR_BACKEND (open, push, ack... after ~2 s of reconnecting; pop after
 * about wait_ms). opts may be NULL for redis:// (defaults). On success *out
 * is freed by (*out)->ops->close. */
vs_err vs_queue_open(const char *url, const vs_queue_opts *opts, vs_queue **out, vs_error *err);
void vs_msg_free(vs_msg *m);

#endif
