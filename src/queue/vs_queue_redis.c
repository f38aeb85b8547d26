/* vs_queue_redis.c - the redis://host:port/db queue: Redis Streams through
 * hiredis, for the distributed topologies (API and workers on several
 * machines sharing one Redis >= 7.0). Tuned for a few producers pushing
 * batches and tens of workers popping one message at a time: a push is two
 * round trips per batch, a pop or an ack is one round trip when work is there.
 *
 * Layout. With the prefix P ("face:" unless the URL says ?prefix=...) and the
 * queue's name N ("ingest" for face:ingest, "results" for face:results), the
 * messages are the stream P"ingest" (P N in general), read by the consumer group "visage";
 * dead letters are the stream P"ingest:dead" (fields sid, body, last_error,
 * attempts, failed_at); P"ingest:acked" counts acks; P"ingest:delay" is a
 * hash of retry deadlines longer than the visibility timeout (below). The
 * group is created at open and again whenever a command says NOGROUP (Redis
 * restarted without persistence), at id 0, not "$": the stream only ever
 * holds unacknowledged messages (an ack deletes its entry), so reading it
 * from the start delivers exactly what was not done, including what
 * producers pushed into a stream that had lost its group. For Redis Cluster
 * the prefix must carry a hash tag ("?prefix={face}:"), since the scripts
 * touch several keys; this client does not follow MOVED redirects anyway.
 *
 * Ids. A stream id is "ms-seq" (two 64-bit numbers), vs_msg.id is an
 * int64: id = ms << 20 | seq. That holds ms below 2^43 (the year 2248) and
 * seq below 2^20, i.e. up to 1048575 entries within one stream millisecond.
 * Redis only goes past that when its clock stepped back and more than a
 * million messages were added before it caught up, or when a foreign client
 * wrote explicit ids; such an entry is moved (copied to a fresh id, the old
 * one deleted, in one script) by whichever push or pop meets it first. The
 * id of a message is stable across redeliveries and retries, because a
 * message never moves: retries park it in the pending list (below).
 *
 * Delivery. pop runs the "next" script first: the lowest pending entry idle
 * for at least visibility_ms (a lease that ran out: its consumer died or
 * hung, or a parked retry whose delay is over) is XCLAIMed, and its delivery
 * count plus one is vs_msg.attempts; if that count would pass max_attempts,
 * the entry goes to the dead letters ("lease expired N times") instead, as
 * in the embedded queue. With nothing to reclaim the same script does a
 * non-blocking XREADGROUP ">" (attempts 1). Only when both find nothing does
 * pop block, in XREADGROUP ... BLOCK slices of at most POLL_MS, then loops:
 * the slice bounds how late a lease expiry or a retry is noticed and how
 * long wake() takes. XPENDING IDLE + XCLAIM is used rather than XAUTOCLAIM
 * because XAUTOCLAIM scans at most 10 x COUNT pending entries per call from
 * a cursor, so with COUNT 1 an expired entry behind ten live leases would
 * need a cursor carried between calls to be found.
 *
 * Retries. nack with attempts < max_attempts leaves the message pending and
 * re-XCLAIMs it to the parking consumer "visage-retry" with IDLE set to
 * visibility_ms - retry_ms, so the normal reclaim path takes it back exactly
 * retry_ms later, with the same id and Redis's own delivery count (JUSTID
 * does not increment it). Redis cannot date a delivery in the future, so a
 * retry_ms above visibility_ms also writes its deadline to the delay hash;
 * a reclaim that finds the deadline ahead re-parks the entry (restoring its
 * delivery count) for the time left. At the limit, nack moves the message to
 * the dead letters with its error. Each of these is one Lua script, so a
 * move to the dead letters and the removal from the stream happen together.
 * The rejected alternative, acking the message and adding a copy with a
 * not-before field, changes the id on every retry and needs pop to skip
 * copies that are not yet due.
 *
 * Trimming and the cap. Nothing is ever trimmed approximately (MAXLEN ~):
 * that drops unprocessed messages silently. push refuses a batch with
 * VS_ERR_TOO_LARGE ("queue full: N pending") when XLEN plus the batch would
 * pass max_len (?max_len=, default 10 million). ack deletes the entry
 * (XACK + XDEL + INCR of the counter in one script), so the stream holds
 * only messages not yet done; every TRIM_EVERY acks a lazy XTRIM MINID to
 * the oldest pending (or last delivered) id removes what others may have
 * acked without deleting, and only while "visage" is the stream's only
 * group. The same pass forgets consumers idle for a day with nothing
 * pending (processes that are gone). The dead-letter stream is never
 * trimmed: dead letters are for an operator to read.
 *
 * Durability is Redis's: push returns when Redis has the entries in memory;
 * what a crash of Redis can lose depends on its appendonly/appendfsync
 * settings (appendfsync always for "never lose an accepted image").
 *
 * Costs and limits. The reclaim check (XPENDING IDLE) walks the pending
 * list until it meets an expired entry, so a pop costs O(leases + parked
 * retries): nothing at tens of workers, noticeable with 10^5 retries parked
 * at once (stats counts at most STATS_SCAN expired leases for the same
 * reason). visibility_ms and max_attempts are per handle and passed to the
 * scripts on every call: all processes sharing a stream should agree.
 *
 * Threading. hiredis contexts are not thread-safe, so every operation checks
 * a context out of a small pool (`mu` guards only the pool's array), uses it
 * alone, and checks it back in; an operation that finds none idle connects a
 * new one, and at most POOL_KEEP idle ones are kept. A pop holds its context
 * while it blocks, so N waiting workers hold N connections - inherent, since
 * a connection in XREADGROUP BLOCK can carry nothing else. All the handle's
 * connections are one consumer (hostname:pid:n): Redis lets a consumer read
 * on several connections, and leases are judged by entry idle time, not by
 * consumer. Rejected: one context under a mutex (a blocked pop would stall
 * every push, and all round trips would queue behind each other);
 * thread-local contexts (a context per thread that ever called, outliving
 * close or leaking when threads come and go); hiredis's async API with an
 * event-loop thread (one more hop, and a loop to run). `shutdown` (atomic,
 * set by wake) is read by pops between slices and while backing off.
 * Writes to a socket the server closed raise SIGPIPE, which would kill a
 * process that did not ignore it; unless it is ignored at open, each
 * operation blocks SIGPIPE in its thread and consumes one it caused.
 *
 * Failure. On an I/O error (Redis restarted, network cut, a 5 s reply
 * timeout) the context is dropped, the idle pool with it (its contexts are
 * as stale), and the operation reconnects with a 100 ms..2 s backoff until
 * its deadline: wait_ms for pop, OP_BUDGET_MS for the others; then it fails
 * with VS_ERR_BACKEND naming the op and the server ("queue push: redis
 * 127.0.0.1:6390: connection refused"). Every operation is safe to repeat
 * after a lost reply: an ack or nack finds the message gone or parked, a
 * lost pop reply leaves a lease that expires, and a repeated push may queue
 * a batch twice - at-least-once, which the pipeline's deterministic ids
 * make harmless. LOADING/BUSY replies are retried the same way. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vs_alloc.h"
#include "vs_hash.h"
#include "vs_queue_internal.h"
#include "vs_redact.h"
#include "vs_redis_reply.h"

vs_err vs_queue_redis_open(const char *url, const vs_queue_opts *opts, vs_queue **out, vs_error *err);

#define DEFAULT_PORT 6379
#define DEFAULT_PREFIX "face:"
#define DEFAULT_MAX_LEN 10000000LL
#define GROUP "visage"
#define PARKING "visage-retry"   /* consumer that holds nacked messages during their retry delay */
#define POLL_MS 250              /* longest XREADGROUP BLOCK slice */
#define OP_BUDGET_MS 2000        /* how long a non-pop op keeps reconnecting */
#define CONNECT_TIMEOUT_MS 1000
#define IO_TIMEOUT_MS 5000       /* a reply slower than this drops the connection; > POLL_MS */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define POOL_KEEP 32
#define PIPELINE_CHUNK 512       /* XADDs written before their replies are read */
#define TRIM_EVERY 1024
#define FORGET_IDLE_MS 86400000  /* consumers idle this long with nothing pending are deleted */
#define STATS_SCAN 10000         /* expired leases counted at most */
#define SEQ_BITS VS_REDIS_SEQ_BITS /* 20 (vs_redis_reply.h) */
#define STR_(x) #x
#define STR(x) STR_(x)
#define MS_LIMIT VS_REDIS_MS_LIMIT

/* What went wrong in a step, which decides what rd_run does next. */
enum { ST_OK, ST_IO, ST_AGAIN, ST_NOGROUP, ST_FAIL };

enum { SC_NEXT, SC_ACK, SC_NACK, SC_STATS, SC_TRIM, SC_RELOCATE, SC_FORGET, SC_COUNT };

/* Lua (5.1, Redis 7). Each runs atomically; times are Redis's clock. */
#define LUA_NOW                                                                                                      \
    "local function now_ms() local t = redis.call('TIME')\n"                                                         \
    " return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end\n"
#define LUA_FIELD                                                                                                    \
    "local function field(f, name) for i = 1, #f, 2 do if f[i] == name then return f[i + 1] end end\n"              \
    " return nil end\n"

static const char *const scripts[SC_COUNT] = {
    /* KEYS: stream, dead, delay. ARGV: group, consumer, parking, visibility, max_attempts.
     * Returns {id, fields, attempts} or nil. */
    [SC_NEXT] = LUA_NOW LUA_FIELD
    "local key, dead, delay = KEYS[1], KEYS[2], KEYS[3]\n"
    "local group, me, parking = ARGV[1], ARGV[2], ARGV[3]\n"
    "local vis, max = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "for _ = 1, 16 do\n"
    "  local p = redis.call('XPENDING', key, group, 'IDLE', vis, '-', '+', 1)\n"
    "  if #p == 0 then break end\n"
    "  local id, d = p[1][1], p[1][4] + 1\n"
    "  local e = redis.call('XCLAIM', key, group, me, vis, id)[1]\n"
    "  if not e or not e[2] then\n"
    "    redis.call('XACK', key, group, id)\n"
    "    redis.call('HDEL', delay, id)\n"
    "  else\n"
    "    local now = now_ms()\n"
    "    local nb = tonumber(redis.call('HGET', delay, id) or 0)\n"
    "    if nb > now then\n"
    "      local idle = vis - (nb - now)\n"
    "      if idle < 0 then idle = 0 end\n"
    "      redis.call('XCLAIM', key, group, parking, 0, id, 'IDLE', string.format('%.0f', idle),\n"
    "                 'RETRYCOUNT', d - 1, 'JUSTID')\n"
    "    elseif d > max then\n"
    "      redis.call('XADD', dead, '*', 'sid', id, 'body', field(e[2], 'body') or '',\n"
    "                 'last_error', 'lease expired ' .. (d - 1) .. ' times (worker crashed?)',\n"
    "                 'attempts', d - 1, 'failed_at', string.format('%.0f', now))\n"
    "      redis.call('XACK', key, group, id)\n"
    "      redis.call('XDEL', key, id)\n"
    "      redis.call('HDEL', delay, id)\n"
    "    else\n"
    "      if nb > 0 then redis.call('HDEL', delay, id) end\n"
    "      return {id, e[2], d}\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local r = redis.call('XREADGROUP', 'GROUP', group, me, 'COUNT', 1, 'STREAMS', key, '>')\n"
    "if r and r[1] and r[1][2][1] then\n"
    "  local e = r[1][2][1]\n"
    "  return {e[1], e[2], 1}\n"
    "end\n"
    "return false\n",

    /* KEYS: stream, acked, delay. ARGV: group, id. Returns 1 when the entry was there. */
    [SC_ACK] =
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
    "local d = redis.call('XDEL', KEYS[1], ARGV[2])\n"
    "redis.call('HDEL', KEYS[3], ARGV[2])\n"
    "if d == 1 then redis.call('INCR', KEYS[2]) end\n"
    "return d\n",

    /* KEYS: stream, dead, delay. ARGV: group, id, error, retry_ms, max_attempts, visibility, parking.
     * Returns 0 (not leased: nothing to do), 1 (parked for a retry) or 2 (dead-lettered). */
    [SC_NACK] = LUA_NOW LUA_FIELD
    "local key, dead, delay = KEYS[1], KEYS[2], KEYS[3]\n"
    "local group, id, why = ARGV[1], ARGV[2], ARGV[3]\n"
    "local retry, max, vis = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local p = redis.call('XPENDING', key, group, id, id, 1)\n"
    "if #p == 0 then return 0 end\n"
    "local e = redis.call('XRANGE', key, id, id)\n"
    "if #e == 0 then\n"
    "  redis.call('XACK', key, group, id)\n"
    "  redis.call('HDEL', delay, id)\n"
    "  return 0\n"
    "end\n"
    "local d, now = p[1][4], now_ms()\n"
    "if d >= max then\n"
    "  redis.call('XADD', dead, '*', 'sid', id, 'body', field(e[1][2], 'body') or '', 'last_error', why,\n"
    "             'attempts', d, 'failed_at', string.format('%.0f', now))\n"
    "  redis.call('XACK', key, group, id)\n"
    "  redis.call('XDEL', key, id)\n"
    "  redis.call('HDEL', delay, id)\n"
    "  return 2\n"
    "end\n"
    "local idle = vis - retry\n"
    "if idle < 0 then idle = 0 end\n"
    "redis.call('XCLAIM', key, group, ARGV[7], 0, id, 'IDLE', string.format('%.0f', idle), 'JUSTID')\n"
    "if retry > vis then redis.call('HSET', delay, id, string.format('%.0f', now + retry))\n"
    "else redis.call('HDEL', delay, id) end\n"
    "return 1\n",

    /* KEYS: stream, dead, acked. ARGV: group, parking, visibility. Returns {ready, in_flight, dead, acked}. */
    [SC_STATS] =
    "local key, group, parking = KEYS[1], ARGV[1], ARGV[2]\n"
    "local len = redis.call('XLEN', key)\n"
    "local s = redis.call('XPENDING', key, group)\n"
    "local pending, parked, expired = s[1], 0, 0\n"
    "if type(s[4]) == 'table' then\n"
    "  for _, c in ipairs(s[4]) do if c[1] == parking then parked = tonumber(c[2]) end end\n"
    "end\n"
    "if pending > parked then\n"
    "  for _, e in ipairs(redis.call('XPENDING', key, group, 'IDLE', ARGV[3], '-', '+', " STR(STATS_SCAN) ")) do\n"
    "    if e[2] ~= parking then expired = expired + 1 end\n"
    "  end\n"
    "end\n"
    "local unread = len - pending\n"
    "if unread < 0 then unread = 0 end\n"
    "return {unread + parked + expired, pending - parked - expired, redis.call('XLEN', KEYS[2]),\n"
    "        tonumber(redis.call('GET', KEYS[3]) or 0)}\n",

    /* KEYS: stream. ARGV: group, forget_idle_ms. Returns entries trimmed (-1: not ours alone). */
    [SC_TRIM] = LUA_FIELD
    "local key, group = KEYS[1], ARGV[1]\n"
    "local groups = redis.call('XINFO', 'GROUPS', key)\n"
    "if #groups ~= 1 or field(groups[1], 'name') ~= group then return -1 end\n"
    "local s = redis.call('XPENDING', key, group)\n"
    "local minid = field(groups[1], 'last-delivered-id')\n"
    "if s[1] > 0 then minid = s[2] end\n"
    "local n = redis.call('XTRIM', key, 'MINID', minid)\n"
    "for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', key, group)) do\n"
    "  if field(c, 'pending') == 0 and field(c, 'idle') > tonumber(ARGV[2]) then\n"
    "    redis.call('XGROUP', 'DELCONSUMER', key, group, field(c, 'name'))\n"
    "  end\n"
    "end\n"
    "return n\n",

    /* KEYS: stream, delay. ARGV: group, old id. Returns the new id, or nil when the entry is gone. */
    [SC_RELOCATE] = LUA_NOW
    "local key, delay, group, old = KEYS[1], KEYS[2], ARGV[1], ARGV[2]\n"
    "local e = redis.call('XRANGE', key, old, old)\n"
    "redis.call('XACK', key, group, old)\n"
    "redis.call('HDEL', delay, old)\n"
    "if #e == 0 then return false end\n"
    "redis.call('XDEL', key, old)\n"
    "local info = redis.call('XINFO', 'STREAM', key)\n"
    "local last = '0-0'\n"
    "for i = 1, #info, 2 do if info[i] == 'last-generated-id' then last = info[i + 1] end end\n"
    "local ms = tonumber(string.match(last, '^(%d+)'))\n"
    "local nid = '*'\n"
    "if ms >= now_ms() then nid = string.format('%.0f-0', ms + 1) end\n"
    "return redis.call('XADD', key, nid, unpack(e[1][2]))\n",

    /* KEYS: stream. ARGV: group, consumer. Deletes the consumer if it holds nothing. */
    [SC_FORGET] = LUA_FIELD
    "for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do\n"
    "  if field(c, 'name') == ARGV[2] and field(c, 'pending') == 0 then\n"
    "    return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])\n"
    "  end\n"
    "end\n"
    "return -1\n",
};

typedef struct rd_queue {
    vs_queue base;
    char host[256], user[128], password[256];
    int port, db;
    char server[300];  /* "host:port" for messages */
    char key[96], dead_key[112], acked_key[112], delay_key[112];
    char consumer[320];
    int64_t max_len, visibility_ms;
    int max_attempts;
    char vis_arg[24], max_arg[16];
    char sha[SC_COUNT][48];  /* filled at open, read-only after */
    int guard_sigpipe;
    atomic_int shutdown;
    atomic_uint acks;
    pthread_mutex_t mu;  /* guards idle[] and n_idle only */
    redisContext *idle[POOL_KEEP];
    int n_idle;
} rd_queue;

/* One operation's attempt state: the connection it holds and why the last
 * try failed. */
typedef struct rd_call {
    rd_queue *q;
    redisContext *c;
    const char *op;
    vs_error *err;
    int st;          /* ST_* of the last failure */
    int broken;      /* the connection is out of step (mid-pipeline failure): never pool it */
    vs_err rc;       /* the code for ST_FAIL */
    char why[200];   /* the reason for ST_IO / ST_AGAIN / ST_NOGROUP */
} rd_call;

typedef int (*rd_step)(rd_call *k, void *arg);

/* ---- small helpers ---- */

/* Sleeps ms milliseconds. */
static void sleep_ms(int64_t ms) {
    if (ms <= 0) return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Records a final failure of the step (code + message naming op and
 * server) and returns ST_FAIL. */
static int rd_fail(rd_call *k, vs_err code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int rd_fail(rd_call *k, vs_err code, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    k->rc = vs_fail(k->err, code, "queue %s: redis %s: %s", k->op, k->q->server, msg);
    k->st = ST_FAIL;
    return ST_FAIL;
}

/* Copies a hiredis or server error text into k->why, first letter lower
 * case, calling a socket timeout what it is. */
static void set_why(rd_call *k, const char *s) {
    if (!s || !s[0]) s = "connection lost";
    if (strstr(s, "temporarily unavailable")) s = "timed out waiting for a reply";
    snprintf(k->why, sizeof k->why, "%s", s);
    if (k->why[0] >= 'A' && k->why[0] <= 'Z' && !(k->why[1] >= 'A' && k->why[1] <= 'Z')) k->why[0] += 'a' - 'A';
}

/* Turns a reply (NULL on a connection failure) into ST_OK or a failure
 * class; error replies are freed and NULL is returned for every failure. */
static redisReply *rd_check(rd_call *k, redisReply *r) {
    if (!r) {
        if (k->c->err == REDIS_ERR_OOM) {
            k->broken = 1;
            rd_fail(k, VS_ERR_NOMEM, "out of memory");
        } else {
            k->st = ST_IO;
            set_why(k, k->c->errstr);
        }
        return NULL;
    }
    if (r->type != REDIS_REPLY_ERROR) return r;
    const char *s = r->str ? r->str : "";
    if (strstr(s, "NOGROUP")) {
        k->st = ST_NOGROUP;
        set_why(k, s);
    } else if (!strncmp(s, "LOADING", 7) || !strncmp(s, "BUSY", 4) || !strncmp(s, "TRYAGAIN", 8) ||
               !strncmp(s, "MASTERDOWN", 10)) {
        k->st = ST_AGAIN;
        set_why(k, s);
    } else {
        rd_fail(k, VS_ERR_BACKEND, "%s", s);
    }
    freeReplyObject(r);
    return NULL;
}

/* Sends one command, returns its reply (NULL on any failure, k->st set). */
static redisReply *rd_cmd(rd_call *k, int argc, const char **argv) {
    return rd_check(k, redisCommandArgv(k->c, argc, argv, NULL));
}

/* Runs script `which` by its SHA1, falling back to the text when the
 * server lost its script cache (restart). argv holds keys then arguments. */
static redisReply *rd_script(rd_call *k, int which, int nkeys, int argc, const char **argv) {
    const char *a[16];
    char nk[8];
    snprintf(nk, sizeof nk, "%d", nkeys);
    a[0] = "EVALSHA";
    a[1] = k->q->sha[which];
    a[2] = nk;
    for (int i = 0; i < argc && i < 13; i++) a[3 + i] = argv[i];
    redisReply *r = k->q->sha[which][0] ? redisCommandArgv(k->c, argc + 3, a, NULL) : NULL;
    if (!k->q->sha[which][0] || (r && r->type == REDIS_REPLY_ERROR && r->str && !strncmp(r->str, "NOSCRIPT", 8))) {
        if (r) freeReplyObject(r);
        a[0] = "EVAL";
        a[1] = scripts[which];
        r = redisCommandArgv(k->c, argc + 3, a, NULL);
    }
    return rd_check(k, r);
}

/* ---- SIGPIPE ---- */

typedef struct rd_sig {
    int on, was_pending;
    sigset_t old;
} rd_sig;

/* Blocks SIGPIPE in this thread for the operation (unless the process
 * ignores it), remembering whether one was already pending. */
static void sig_hold(const rd_queue *q, rd_sig *s) {
    s->on = q->guard_sigpipe;
    if (!s->on) return;
    sigset_t ps, pend;
    sigemptyset(&ps);
    sigaddset(&ps, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &ps, &s->old);
    sigpending(&pend);
    s->was_pending = sigismember(&pend, SIGPIPE);
}

/* Consumes a SIGPIPE our writes raised and restores the signal mask. */
static void sig_release(rd_sig *s) {
    if (!s->on) return;
    sigset_t ps, pend;
    sigemptyset(&ps);
    sigaddset(&ps, SIGPIPE);
    sigpending(&pend);
    if (!s->was_pending && sigismember(&pend, SIGPIPE)) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&ps, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &s->old, NULL);
}

/* ---- connections ---- */

/* An idle pooled context, or NULL. */
static redisContext *pool_take(rd_queue *q) {
    pthread_mutex_lock(&q->mu);
    redisContext *c = q->n_idle ? q->idle[--q->n_idle] : NULL;
    pthread_mutex_unlock(&q->mu);
    return c;
}

/* Returns a healthy context to the pool (frees it when the pool is full). */
static void pool_give(rd_queue *q, redisContext *c) {
    pthread_mutex_lock(&q->mu);
    if (q->n_idle < POOL_KEEP) {
        q->idle[q->n_idle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&q->mu);
    if (c) redisFree(c);
}

/* Frees every idle context: after one failed with an I/O error the others
 * are most likely dead too (Redis restarted). */
static void pool_flush(rd_queue *q) {
    redisContext *drop[POOL_KEEP];
    pthread_mutex_lock(&q->mu);
    int n = q->n_idle;
    memcpy(drop, q->idle, (size_t)n * sizeof drop[0]);
    q->n_idle = 0;
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < n; i++) redisFree(drop[i]);
}

/* Opens a connection (AUTH, SELECT) into k->c within the deadline; on
 * failure k->c stays NULL and k->st says why. */
static void rd_connect(rd_call *k, int64_t deadline) {
    rd_queue *q = k->q;
    int64_t t = deadline - vs_now_ms();
    if (t > CONNECT_TIMEOUT_MS) t = CONNECT_TIMEOUT_MS;
    if (t < 50) t = 50;
    struct timeval tv = {.tv_sec = t / 1000, .tv_usec = (t % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(q->host, q->port, tv);
    if (!c || c->err) {
        k->st = ST_IO;
        set_why(k, c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return;
    }
    struct timeval io = {.tv_sec = IO_TIMEOUT_MS / 1000, .tv_usec = (IO_TIMEOUT_MS % 1000) * 1000};
    redisSetTimeout(c, io);
    vs_redis_reader_limits(c->reader);
    k->c = c;
    redisReply *r = NULL;
    if (q->password[0]) {
        const char *a[3] = {"AUTH", q->user[0] ? q->user : q->password, q->password};
        if (!(r = rd_cmd(k, q->user[0] ? 3 : 2, a))) goto fail;
        freeReplyObject(r);
    }
    if (q->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", q->db);
        const char *a[2] = {"SELECT", db};
        if (!(r = rd_cmd(k, 2, a))) goto fail;
        freeReplyObject(r);
    }
    return;
fail:
    redisFree(k->c);
    k->c = NULL;
}

/* Creates the consumer group (and the stream) if missing. */
static int rd_make_group(rd_call *k) {
    const char *a[6] = {"XGROUP", "CREATE", k->q->key, GROUP, "0", "MKSTREAM"};
    redisReply *r = redisCommandArgv(k->c, 6, a, NULL);
    if (r && r->type == REDIS_REPLY_ERROR && r->str && !strncmp(r->str, "BUSYGROUP", 9)) {
        freeReplyObject(r);
        return ST_OK;
    }
    if (!(r = rd_check(k, r))) return k->st;
    freeReplyObject(r);
    return ST_OK;
}

/* Runs step on a pooled or new connection, reconnecting with backoff on
 * I/O errors and transient server replies until the deadline, re-creating
 * the group on NOGROUP. A pop (is_pop) gives up at once on shutdown. */
static vs_err rd_run(rd_queue *q, const char *op, int64_t deadline, int is_pop, rd_step step, void *arg,
                     vs_error *err) {
    rd_call k = {.q = q, .op = op, .err = err};
    rd_sig sg;
    sig_hold(q, &sg);
    int64_t backoff = BACKOFF_MIN_MS;
    int group_fixes = 0, fresh_retry = 0;
    vs_err rc;
    for (;;) {
        int reused = 0;
        k.st = ST_OK;
        k.broken = 0;
        if (!k.c) {
            k.c = pool_take(q);
            reused = k.c != NULL;
            if (!k.c) rd_connect(&k, deadline);
        }
        if (k.c) k.st = step(&k, arg);
        if (k.c && k.broken) { /* replies still on the wire: never reuse it */
            redisFree(k.c);
            k.c = NULL;
        }
        if (k.st == ST_NOGROUP) {
            if (group_fixes++ >= 2) rd_fail(&k, VS_ERR_BACKEND, "%s", k.why);
            else if (!k.c) continue; /* the retry meets NOGROUP again and fixes it then */
            else if (rd_make_group(&k) == ST_OK) continue;
        }
        if (k.st == ST_OK || k.st == ST_FAIL) {
            rc = k.st == ST_OK ? VS_OK : k.rc;
            break;
        }
        if (k.st == ST_IO) {
            if (k.c) redisFree(k.c);
            k.c = NULL;
            pool_flush(q);
            if (reused && !fresh_retry++) continue; /* a stale pooled connection: retry at once on a new one */
        }
        int64_t left = deadline - vs_now_ms();
        if (left <= 0) {
            rc = vs_fail(err, VS_ERR_BACKEND, "queue %s: redis %s: %s", op, q->server, k.why);
            break;
        }
        int64_t nap = backoff < left ? backoff : left;
        while (nap > 0 && !(is_pop && atomic_load(&q->shutdown))) {
            int64_t s = nap < POLL_MS ? nap : POLL_MS;
            sleep_ms(s);
            nap -= s;
        }
        if (is_pop && atomic_load(&q->shutdown)) {
            rc = vs_fail(err, VS_ERR_NOT_FOUND, "queue %s: shutting down", op);
            break;
        }
        backoff = backoff * 2 < BACKOFF_MAX_MS ? backoff * 2 : BACKOFF_MAX_MS;
    }
    if (k.c) {
        if (k.broken || k.c->err) redisFree(k.c);
        else pool_give(q, k.c);
    }
    sig_release(&sg);
    return rc;
}

/* Deadline of a non-pop operation. */
static int64_t op_deadline(void) {
    return vs_now_ms() + OP_BUDGET_MS;
}

/* ---- operations ---- */

/* Moves an entry whose stream id has no vs id to a fresh id (see the
 * header); *new_id gets the new vs id, 0 when the entry was gone or the
 * new id does not fit either. */
static int relocate(rd_call *k, const char *sid, int64_t *new_id) {
    rd_queue *q = k->q;
    const char *a[4] = {q->key, q->delay_key, GROUP, sid};
    *new_id = 0;
    redisReply *r = rd_script(k, SC_RELOCATE, 2, 4, a);
    if (!r) return k->st;
    if (r->type == REDIS_REPLY_STRING) *new_id = vs_redis_encode_sid(r->str);
    freeReplyObject(r);
    return ST_OK;
}

/* Dead-letters a pending entry at once (the nack script with a limit of 0). */
static int force_dead(rd_call *k, const char *sid, const char *why) {
    rd_queue *q = k->q;
    const char *a[10] = {q->key, q->dead_key, q->delay_key, GROUP, sid, why, "0", "0", q->vis_arg, PARKING};
    redisReply *r = rd_script(k, SC_NACK, 3, 10, a);
    if (!r) return k->st;
    freeReplyObject(r);
    return ST_OK;
}

typedef struct push_arg {
    const char *const *bodies;
    int n;
    int64_t *ids;  /* may be NULL */
} push_arg;

/* XLEN against the cap, then the batch as pipelined XADDs, PIPELINE_CHUNK
 * at a time; ids that do not fit are fixed after their chunk is read. */
static int push_step(rd_call *k, void *arg) {
    push_arg *p = arg;
    rd_queue *q = k->q;
    const char *xl[2] = {"XLEN", q->key};
    redisReply *r = rd_cmd(k, 2, xl);
    if (!r) return k->st;
    long long len = vs_redis_reply_ll(r);
    freeReplyObject(r);
    if (len + p->n > q->max_len)
        return rd_fail(k, VS_ERR_TOO_LARGE, "queue full: %lld pending (max_len %lld, batch of %d)", len,
                       (long long)q->max_len, p->n);
    for (int base = 0; base < p->n; base += PIPELINE_CHUNK) {
        int m = p->n - base < PIPELINE_CHUNK ? p->n - base : PIPELINE_CHUNK;
        for (int i = 0; i < m; i++) {
            const char *a[5] = {"XADD", q->key, "*", "body", p->bodies[base + i]};
            if (redisAppendCommandArgv(k->c, 5, a, NULL) != REDIS_OK) {
                k->broken = 1;
                return rd_fail(k, VS_ERR_NOMEM, "out of memory");
            }
        }
        char moved[PIPELINE_CHUNK][48]; /* stream ids that need relocating, "" for the others */
        for (int i = 0; i < m; i++) {
            void *v = NULL;
            r = rd_check(k, redisGetReply(k->c, &v) == REDIS_OK ? v : NULL);
            if (!r) {
                k->broken = 1; /* the rest of the chunk's replies are still on the wire */
                return k->st;
            }
            if (r->type != REDIS_REPLY_STRING) {
                int type = r->type;
                freeReplyObject(r);
                k->broken = 1;
                return rd_fail(k, VS_ERR_BACKEND, "XADD answered with reply type %d", type);
            }
            int64_t id = vs_redis_encode_sid(r->str);
            snprintf(moved[i], sizeof moved[i], "%s", id ? "" : r->str);
            if (p->ids) p->ids[base + i] = id;
            freeReplyObject(r);
        }
        for (int i = 0; i < m; i++) {
            if (!moved[i][0]) continue;
            int64_t id;
            int st = relocate(k, moved[i], &id);
            if (st != ST_OK) return st;
            if (!id) return rd_fail(k, VS_ERR_BACKEND, "XADD gave id %s, which no int64 message id holds", moved[i]);
            if (p->ids) p->ids[base + i] = id;
        }
    }
    return ST_OK;
}

/* Appends the batch (see push_step); all or nothing only up to a lost
 * connection, after which the retry may queue part of it twice. */
static vs_err rd_push(vs_queue *qq, const char *const *bodies, int n, int64_t *ids_out, vs_error *err) {
    rd_queue *q = (rd_queue *)qq;
    if (n < 0 || (n > 0 && !bodies)) return vs_fail(err, VS_ERR_INVALID_ARG, "queue push: bad batch (n=%d)", n);
    for (int i = 0; i < n; i++)
        if (!bodies[i]) return vs_fail(err, VS_ERR_INVALID_ARG, "queue push: message %d of %d has no body", i, n);
    if (n == 0) return VS_OK;
    push_arg p = {bodies, n, ids_out};
    return rd_run(q, "push", op_deadline(), 0, push_step, &p, err);
}

typedef struct pop_arg {
    vs_msg *out;
    int64_t deadline;
} pop_arg;

/* Fills out from a delivered entry [id, fields]; leaves out->body NULL
 * (and returns ST_OK) when the entry had to be moved or dead-lettered
 * because its id does not fit an int64. */
static int take_entry(rd_call *k, const redisReply *id, const redisReply *fields, int attempts, vs_msg *out) {
    if (!id || id->type != REDIS_REPLY_STRING) return rd_fail(k, VS_ERR_BACKEND, "malformed stream entry");
    int64_t vid = vs_redis_encode_sid(id->str);
    if (!vid) {
        unsigned long long ms, seq;
        if (vs_redis_parse_sid(id->str, &ms, &seq) && ms + 1 < MS_LIMIT) {
            int64_t moved;
            return relocate(k, id->str, &moved);
        }
        char why[160];
        snprintf(why, sizeof why, "stream id %.60s is past the 43-bit millisecond range of message ids", id->str);
        return force_dead(k, id->str, why);
    }
    const redisReply *b = vs_redis_field_of(fields, "body");
    const char *s = b && b->type == REDIS_REPLY_STRING ? b->str : "";
    size_t len = b && b->type == REDIS_REPLY_STRING ? b->len : 0;
    out->body = vs_malloc(len + 1);
    if (!out->body) return rd_fail(k, VS_ERR_NOMEM, "message %s", id->str);
    memcpy(out->body, s, len);
    out->body[len] = '\0';
    out->id = vid;
    out->attempts = attempts;
    return ST_OK;
}

/* One pop: the "next" script (reclaim, else a new entry), else a blocking
 * XREADGROUP slice, until a message comes, the deadline passes or wake. */
static int pop_step(rd_call *k, void *arg) {
    pop_arg *p = arg;
    rd_queue *q = k->q;
    for (;;) {
        if (atomic_load(&q->shutdown)) return rd_fail(k, VS_ERR_NOT_FOUND, "shutting down");
        const char *a[8] = {q->key, q->dead_key, q->delay_key, GROUP, q->consumer, PARKING, q->vis_arg, q->max_arg};
        redisReply *r = rd_script(k, SC_NEXT, 3, 8, a);
        if (!r) return k->st;
        int st = ST_OK;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3)
            st = take_entry(k, r->element[0], r->element[1], (int)vs_redis_reply_ll(r->element[2]), p->out);
        int got = r->type == REDIS_REPLY_ARRAY;
        freeReplyObject(r);
        if (st != ST_OK || p->out->body) return st;
        if (got) continue; /* an entry was moved: look again at once */
        int64_t left = p->deadline - vs_now_ms();
        if (left <= 0) return rd_fail(k, VS_ERR_NOT_FOUND, "no message ready");
        if (atomic_load(&q->shutdown)) continue;
        char block[24];
        snprintf(block, sizeof block, "%lld", (long long)(left < POLL_MS ? left : POLL_MS));
        const char *xa[11] = {"XREADGROUP", "GROUP", GROUP, q->consumer, "COUNT", "1", "BLOCK", block,
                              "STREAMS",    q->key,  ">"};
        if (!(r = rd_cmd(k, 11, xa))) return k->st;
        /* [[key, [[id, fields]]]] or nil when the slice ran out */
        int malformed = 0;
        const redisReply *e = vs_redis_xread_entry(r, &malformed);
        if (e) st = take_entry(k, e->element[0], e->element[1], 1, p->out);
        else if (malformed) st = rd_fail(k, VS_ERR_BACKEND, "malformed XREADGROUP reply");
        freeReplyObject(r);
        if (st != ST_OK || p->out->body) return st;
    }
}

/* Leases a message, waiting up to wait_ms (see pop_step); if Redis is
 * unreachable, VS_ERR_BACKEND after about wait_ms. */
static vs_err rd_pop(vs_queue *qq, int wait_ms, vs_msg *out, vs_error *err) {
    rd_queue *q = (rd_queue *)qq;
    *out = (vs_msg){0};
    if (atomic_load(&q->shutdown)) return vs_fail(err, VS_ERR_NOT_FOUND, "queue pop: shutting down");
    pop_arg p = {out, vs_now_ms() + (wait_ms > 0 ? wait_ms : 0)};
    vs_err rc = rd_run(q, "pop", p.deadline, 1, pop_step, &p, err);
    if (rc != VS_OK) {
        vs_msg_free(out);
        *out = (vs_msg){0};
    }
    return rc;
}

/* Lazy trim of acknowledged entries and gone consumers (see the header). */
static int trim_step(rd_call *k, void *arg) {
    (void)arg;
    const char *a[3] = {k->q->key, GROUP, ""};
    char idle[24];
    snprintf(idle, sizeof idle, "%d", FORGET_IDLE_MS);
    a[2] = idle;
    redisReply *r = rd_script(k, SC_TRIM, 1, 3, a);
    if (!r) return k->st;
    freeReplyObject(r);
    return ST_OK;
}

/* The ack script for the stream id in arg. */
static int ack_step(rd_call *k, void *arg) {
    rd_queue *q = k->q;
    const char *a[5] = {q->key, q->acked_key, q->delay_key, GROUP, arg};
    redisReply *r = rd_script(k, SC_ACK, 3, 5, a);
    if (!r) return k->st;
    freeReplyObject(r);
    return ST_OK;
}

/* Done: deletes the entry and counts it if it was there; every
 * TRIM_EVERY-th ack also runs the lazy trim (its failure is ignored). */
static vs_err rd_ack(vs_queue *qq, int64_t id, vs_error *err) {
    rd_queue *q = (rd_queue *)qq;
    char sid[48];
    if (!vs_redis_decode_id(id, sid)) return VS_OK; /* no entry can have it */
    vs_err rc = rd_run(q, "ack", op_deadline(), 0, ack_step, sid, err);
    if (rc == VS_OK && atomic_fetch_add(&q->acks, 1) % TRIM_EVERY == TRIM_EVERY - 1) {
        vs_error ignored;
        rd_run(q, "trim", op_deadline(), 0, trim_step, NULL, &ignored);
    }
    return rc;
}

typedef struct nack_arg {
    const char *sid, *error;
    char retry[24];
} nack_arg;

/* The nack script (see the header's Retries). */
static int nack_step(rd_call *k, void *arg) {
    nack_arg *n = arg;
    rd_queue *q = k->q;
    const char *a[10] = {q->key, q->dead_key, q->delay_key, GROUP, n->sid, n->error, n->retry,
                         q->max_arg, q->vis_arg, PARKING};
    redisReply *r = rd_script(k, SC_NACK, 3, 10, a);
    if (!r) return k->st;
    freeReplyObject(r);
    return ST_OK;
}

/* Failed: ready again after retry_ms (parked, same id), or dead-lettered
 * with `error` at max_attempts. An id that is not leased is left alone. */
static vs_err rd_nack(vs_queue *qq, int64_t id, const char *error, int64_t retry_ms, vs_error *err) {
    rd_queue *q = (rd_queue *)qq;
    nack_arg n = {.error = error && error[0] ? error : "failed (no error given)"};
    char sid[48];
    if (!vs_redis_decode_id(id, sid)) return VS_OK;
    n.sid = sid;
    snprintf(n.retry, sizeof n.retry, "%lld", (long long)(retry_ms > 0 ? retry_ms : 0));
    return rd_run(q, "nack", op_deadline(), 0, nack_step, &n, err);
}

/* The stats script into arg. */
static int stats_step(rd_call *k, void *arg) {
    vs_queue_stats *s = arg;
    rd_queue *q = k->q;
    const char *a[6] = {q->key, q->dead_key, q->acked_key, GROUP, PARKING, q->vis_arg};
    redisReply *r = rd_script(k, SC_STATS, 3, 6, a);
    if (!r) return k->st;
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements == 4;
    if (ok) {
        s->ready = vs_redis_reply_ll(r->element[0]);
        s->in_flight = vs_redis_reply_ll(r->element[1]);
        s->dead = vs_redis_reply_ll(r->element[2]);
        s->acked_total = vs_redis_reply_ll(r->element[3]);
    }
    freeReplyObject(r);
    return ok ? ST_OK : rd_fail(k, VS_ERR_BACKEND, "malformed stats reply");
}

/* ready = never delivered + parked retries + expired leases (the latter
 * counted up to STATS_SCAN); in_flight = leases still running. */
static vs_err rd_stats(vs_queue *qq, vs_queue_stats *out, vs_error *err) {
    *out = (vs_queue_stats){0};
    return rd_run((rd_queue *)qq, "stats", op_deadline(), 0, stats_step, out, err);
}

typedef struct dead_rows {
    int limit;
    vs_dead_msg *rows;
    size_t n;
} dead_rows;

/* Frees the copied dead letters. */
static void dead_rows_free(dead_rows *d) {
    for (size_t i = 0; i < d->n; i++) {
        vs_free((char *)d->rows[i].body);
        vs_free((char *)d->rows[i].last_error);
    }
    vs_free(d->rows);
    d->rows = NULL;
    d->n = 0;
}

/* Copies a string reply's text (or "") into a new buffer. */
static char *dup_reply(const redisReply *r) {
    const char *s = r && r->type == REDIS_REPLY_STRING ? r->str : "";
    size_t len = r && r->type == REDIS_REPLY_STRING ? r->len : 0;
    char *p = vs_malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* XREVRANGE of the dead letters, copied out so the callback runs with no
 * connection held. */
static int dead_step(rd_call *k, void *arg) {
    dead_rows *d = arg;
    dead_rows_free(d); /* a retried step starts over */
    char count[24];
    snprintf(count, sizeof count, "%d", d->limit);
    const char *a[6] = {"XREVRANGE", k->q->dead_key, "+", "-", "COUNT", count};
    redisReply *r = rd_cmd(k, d->limit > 0 ? 6 : 4, a);
    if (!r) return k->st;
    int st = ST_OK;
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        d->rows = vs_calloc(r->elements, sizeof *d->rows);
        if (!d->rows) st = rd_fail(k, VS_ERR_NOMEM, "list_dead: %zu rows", r->elements);
        for (size_t i = 0; st == ST_OK && i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
            const redisReply *f = e->element[1], *sid = vs_redis_field_of(f, "sid");
            vs_dead_msg *m = &d->rows[d->n];
            m->id = sid && sid->type == REDIS_REPLY_STRING ? vs_redis_encode_sid(sid->str) : 0;
            m->attempts = (int)vs_redis_reply_ll(vs_redis_field_of(f, "attempts"));
            m->failed_at_ms = vs_redis_reply_ll(vs_redis_field_of(f, "failed_at"));
            m->body = dup_reply(vs_redis_field_of(f, "body"));
            m->last_error = dup_reply(vs_redis_field_of(f, "last_error"));
            d->n++;
            if (!m->body || !m->last_error) st = rd_fail(k, VS_ERR_NOMEM, "list_dead");
        }
    }
    freeReplyObject(r);
    return st;
}

/* Dead letters newest first, at most limit (<= 0: all). */
static vs_err rd_list_dead(vs_queue *qq, int limit, vs_dead_cb cb, void *ctx, vs_error *err) {
    dead_rows d = {.limit = limit};
    vs_err rc = rd_run((rd_queue *)qq, "list_dead", op_deadline(), 0, dead_step, &d, err);
    for (size_t i = 0; rc == VS_OK && i < d.n; i++)
        if (cb(ctx, &d.rows[i])) break;
    dead_rows_free(&d);
    return rc;
}

/* Shutdown: waiting pops return VS_ERR_NOT_FOUND within POLL_MS, later
 * ones at once, until close. */
static void rd_wake(vs_queue *qq) {
    atomic_store(&((rd_queue *)qq)->shutdown, 1);
}

/* PING. */
static int ping_step(rd_call *k, void *arg) {
    (void)arg;
    const char *a[1] = {"PING"};
    redisReply *r = rd_cmd(k, 1, a);
    if (!r) return k->st;
    freeReplyObject(r);
    return ST_OK;
}

/* 1 when Redis answers PING within a second. */
static int rd_healthy(vs_queue *qq) {
    vs_error ignored;
    return rd_run((rd_queue *)qq, "healthy", vs_now_ms() + 1000, 0, ping_step, NULL, &ignored) == VS_OK;
}

/* Deletes this handle's consumer from the group if it holds nothing. */
static int forget_step(rd_call *k, void *arg) {
    (void)arg;
    const char *a[3] = {k->q->key, GROUP, k->q->consumer};
    redisReply *r = rd_script(k, SC_FORGET, 1, 3, a);
    if (!r) return k->st;
    freeReplyObject(r);
    return ST_OK;
}

/* Frees the handle and its connections. */
static void destroy(rd_queue *q) {
    pool_flush(q);
    pthread_mutex_destroy(&q->mu);
    vs_free(q);
}

/* Forgets the consumer (best effort, half a second) and frees everything;
 * no other call may be running or start. */
static void rd_close(vs_queue *qq) {
    if (!qq) return;
    rd_queue *q = (rd_queue *)qq;
    vs_error ignored;
    rd_run(q, "close", vs_now_ms() + 500, 0, forget_step, NULL, &ignored);
    destroy(q);
}

static const vs_queue_ops rd_ops = {
    .push = rd_push,
    .pop = rd_pop,
    .ack = rd_ack,
    .nack = rd_nack,
    .stats = rd_stats,
    .list_dead = rd_list_dead,
    .wake = rd_wake,
    .healthy = rd_healthy,
    .close = rd_close,
};

/* ---- open ---- */

/* Copies [s, s+n) into dst (cap bytes); 0 when it does not fit. */
static int copy_part(char *dst, size_t cap, const char *s, size_t n) {
    if (n >= cap) return 0;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 1;
}

/* Parses a non-negative decimal in [s, s+n) no larger than max; -1 if bad. */
static long long parse_num(const char *s, size_t n, long long max) {
    if (n == 0 || n > 19) return -1;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
        if (v > max) return -1;
    }
    return v;
}

/* redis://[[user]:password@]host[:port][/db][?prefix=P&max_len=N] into q.
 * No percent-decoding: the parts are taken as written. */
static vs_err parse_url(rd_queue *q, const char *url, const char *suffix, vs_error *err) {
    char shown[128]; /* url for messages: without its password, whatever else is wrong with it */
    vs_url_redact(url, shown, sizeof shown);
    const char *p = url + strlen("redis://");
    size_t alen = strcspn(p, "/?");
    const char *at = memchr(p, '@', alen), *host = p;
    char prefix[72] = DEFAULT_PREFIX;
    q->port = DEFAULT_PORT;
    q->max_len = DEFAULT_MAX_LEN;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon || !copy_part(q->user, sizeof q->user, p, (size_t)(colon - p)) ||
            !copy_part(q->password, sizeof q->password, colon + 1, (size_t)(at - colon - 1)))
            return vs_fail(err, VS_ERR_INVALID_ARG, "queue open: redis URL: bad credentials (want [user]:password@)");
        host = at + 1;
    }
    size_t hlen = (size_t)(p + alen - host);
    const char *port = NULL;
    if (hlen && host[0] == '[') { /* [v6]:port */
        const char *close = memchr(host, ']', hlen);
        if (!close) return vs_fail(err, VS_ERR_INVALID_ARG, "queue open: redis URL: unclosed [ in host");
        if (!copy_part(q->host, sizeof q->host, host + 1, (size_t)(close - host - 1)))
            return vs_fail(err, VS_ERR_INVALID_ARG, "queue open: redis URL: host too long");
        if (close + 1 < p + alen) {
            if (close[1] != ':') return vs_fail(err, VS_ERR_INVALID_ARG, "queue open: redis URL: junk after ]");
            port = close + 2;
        }
    } else {
        const char *colon = memchr(host, ':', hlen);
        if (!copy_part(q->host, sizeof q->host, host, colon ? (size_t)(colon - host) : hlen))
            return vs_fail(err, VS_ERR_INVALID_ARG, "queue open: redis URL: host too long");
        if (colon) port = colon + 1;
    }
    if (!q->host[0]) return vs_fail(err, VS_ERR_INVALID_ARG, "queue open: redis URL %s: no host", shown);
    if (port) {
        long long v = parse_num(port, (size_t)(p + alen - port), 65535);
        if (v <= 0) return vs_fail(err, VS_ERR_INVALID_ARG, "queue open: redis URL %s: bad port", shown);
        q->port = (int)v;
    }
    p += alen;
    if (*p == '/') {
        p++;
        size_t dlen = strcspn(p, "?");
        if (dlen) {
            long long v = parse_num(p, dlen, INT_MAX);
            if (v < 0) return vs_fail(err, VS_ERR_INVALID_ARG, "queue open: redis URL %s: bad db number", shown);
            q->db = (int)v;
        }
        p += dlen;
    }
    if (*p == '?') p++;
    while (*p) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len, vlen = eq ? len - klen - 1 : 0;
        const char *v = eq ? eq + 1 : p + len;
        if (klen == 6 && !memcmp(p, "prefix", 6)) {
            int ok = vlen > 0 && copy_part(prefix, 65, v, vlen);
            for (size_t i = 0; ok && i < vlen; i++) ok = v[i] > ' ' && v[i] < 127;
            if (!ok)
                return vs_fail(err, VS_ERR_INVALID_ARG,
                               "queue open: redis URL: prefix must be 1-64 printable characters, no spaces");
        } else if (klen == 7 && !memcmp(p, "max_len", 7)) {
            long long n = parse_num(v, vlen, LLONG_MAX / 2);
            if (n <= 0) return vs_fail(err, VS_ERR_INVALID_ARG, "queue open: redis URL: bad max_len");
            q->max_len = n;
        } else {
            return vs_fail(err, VS_ERR_INVALID_ARG,
                           "queue open: redis URL: unknown option \"%.*s\" (known: prefix, max_len)",
                           (int)(klen > 40 ? 40 : klen), p);
        }
        p += len;
        if (*p == '&') p++;
    }
    int bracket = strchr(q->host, ':') != NULL;
    snprintf(q->server, sizeof q->server, "%s%s%s:%d", bracket ? "[" : "", q->host, bracket ? "]" : "", q->port);
    snprintf(q->key, sizeof q->key, "%s%s", prefix, suffix);
    snprintf(q->dead_key, sizeof q->dead_key, "%s:dead", q->key);
    snprintf(q->acked_key, sizeof q->acked_key, "%s:acked", q->key);
    snprintf(q->delay_key, sizeof q->delay_key, "%s:delay", q->key);
    return VS_OK;
}

/* Creates the group and loads the scripts (their SHA1s are kept). */
static int open_step(rd_call *k, void *arg) {
    (void)arg;
    int st = rd_make_group(k);
    if (st != ST_OK) return st;
    for (int i = 0; i < SC_COUNT; i++) {
        const char *a[3] = {"SCRIPT", "LOAD", scripts[i]};
        redisReply *r = rd_cmd(k, 3, a);
        if (!r) return k->st;
        if (r->type == REDIS_REPLY_STRING) snprintf(k->q->sha[i], sizeof k->q->sha[i], "%s", r->str);
        freeReplyObject(r);
    }
    return ST_OK;
}

/* Opens a redis:// queue: parses the URL, connects (retrying for
 * OP_BUDGET_MS), creates the group. opts must be complete (vs_queue_open
 * fills the defaults); data_dir is not used. Freed by ops->close. */
vs_err vs_queue_redis_open(const char *url, const vs_queue_opts *opts, vs_queue **out, vs_error *err) {
    static atomic_uint opened;
    *out = NULL;
    rd_queue *q = vs_calloc(1, sizeof *q);
    if (!q) return vs_fail(err, VS_ERR_NOMEM, "queue open");
    q->base.ops = &rd_ops;
    pthread_mutex_init(&q->mu, NULL);
    /* The queue's name ("face:ingest", "face:results") picks the stream: its
     * part after the last ':' follows the prefix, so ?prefix= moves both. */
    const char *name = opts->name && *opts->name ? opts->name : "face:ingest";
    const char *suffix = strrchr(name, ':') ? strrchr(name, ':') + 1 : name;
    vs_err rc = parse_url(q, url, suffix, err);
    if (rc != VS_OK) goto out;
    q->visibility_ms = opts->visibility_ms;
    q->max_attempts = opts->max_attempts;
    snprintf(q->vis_arg, sizeof q->vis_arg, "%lld", (long long)q->visibility_ms);
    snprintf(q->max_arg, sizeof q->max_arg, "%d", q->max_attempts);
    char host[128] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(q->consumer, sizeof q->consumer, "%s:%ld:%u", host, (long)getpid(), atomic_fetch_add(&opened, 1) + 1);
    struct sigaction sa;
    q->guard_sigpipe = !(sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN);
    rc = rd_run(q, "open", op_deadline(), 0, open_step, NULL, err);
out:
    if (rc != VS_OK) {
        destroy(q);
        return rc;
    }
    *out = &q->base;
    return VS_OK;
}
