/* test_queue_redis.c - the redis:// queue against a real redis-server that
 * the test starts itself on a random loopback port (and stops at the end):
 * FIFO, leases and redelivery to another consumer, retries (shorter and
 * longer than the lease), dead letters, stats, the cap, wake(), ids Redis
 * gives that do not fit an int64, many producers and consumers, a pipelined
 * push rate (printed, never asserted), and Redis killed and restarted under
 * load. redis-server missing is a failure, not a skip: CI needs this test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vs_hash.h"
#include "vs_queue.h"

/* ---- the server ---- */

static struct {
    char dir[64];
    int port;
    pid_t pid;
    redisContext *raw; /* the test's own connection, main thread only */
} srv;

/* 1 when an executable redis-server is on PATH. */
static int have_redis_server(void) {
    const char *path = getenv("PATH");
    if (!path) return 0;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char exe[4200];
        snprintf(exe, sizeof exe, "%s/redis-server", d);
        if (access(exe, X_OK) == 0) return 1;
    }
    return 0;
}

/* Starts redis-server on srv.port with the data in srv.dir (AOF on, so a
 * restart keeps the data); 0 once it answers PING, -1 if it exited (port
 * taken) or never answered. */
static int spawn_server(const char *fsync_policy) {
    char port[16], log[128];
    snprintf(port, sizeof port, "%d", srv.port);
    snprintf(log, sizeof log, "%s/redis.log", srv.dir);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly",
               "yes", "--appendfsync", fsync_policy, "--dir", srv.dir, "--daemonize", "no", (char *)NULL);
        _exit(127);
    }
    srv.pid = pid;
    for (int i = 0; i < 100; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            srv.pid = 0;
            return -1;
        }
        struct timeval tv = {1, 0};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", srv.port, tv);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "PONG");
            if (r) freeReplyObject(r);
            if (ok) {
                srv.raw = c;
                return 0;
            }
        }
        if (c) redisFree(c);
        usleep(50 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    srv.pid = 0;
    return -1;
}

/* Stops the server with sig and reaps it. */
static void stop_server(int sig) {
    if (srv.raw) redisFree(srv.raw);
    srv.raw = NULL;
    if (srv.pid > 0) {
        kill(srv.pid, sig);
        waitpid(srv.pid, NULL, 0);
    }
    srv.pid = 0;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int group_setup(void **state) {
    (void)state;
    if (!have_redis_server()) {
        fprintf(stderr, "test_queue_redis: FAIL: redis-server is not installed (apt-get install redis-server, "
                        "or scripts/deps.sh --test); this test is required, not optional\n");
        return -1;
    }
    strcpy(srv.dir, "/tmp/vs_test_redis_XXXXXX");
    if (!mkdtemp(srv.dir)) return -1;
    srand((unsigned)(time(NULL) ^ getpid()));
    for (int tries = 0; tries < 10; tries++) {
        srv.port = 20000 + rand() % 20000;
        if (spawn_server("everysec") == 0) return 0;
    }
    fprintf(stderr, "test_queue_redis: FAIL: could not start redis-server (see %s/redis.log)\n", srv.dir);
    return -1;
}

static int group_teardown(void **state) {
    (void)state;
    stop_server(SIGTERM);
    nftw(srv.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* A command on the test's own connection; the reply is freed by the caller. */
static redisReply *raw(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(srv.raw, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    return r;
}

/* An integer command on the test's connection. */
static long long raw_int(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(srv.raw, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* ---- fixture ---- */

typedef struct fixture {
    vs_queue *q, *q2;
    vs_queue_opts opts;
    char url[128];
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    freeReplyObject(raw("FLUSHALL"));
    f->opts = (vs_queue_opts){.visibility_ms = 200, .max_attempts = 3};
    snprintf(f->url, sizeof f->url, "redis://127.0.0.1:%d/0", srv.port);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    if (f->q) f->q->ops->close(f->q);
    if (f->q2) f->q2->ops->close(f->q2);
    free(f);
    return 0;
}

static vs_queue *open_url(fixture *f, const char *url) {
    vs_error e = {0};
    vs_queue *q = NULL;
    vs_err rc = vs_queue_open(url, &f->opts, &q, &e);
    if (rc != VS_OK) fprintf(stderr, "open: %s\n", e.msg);
    assert_int_equal(rc, VS_OK);
    return q;
}

static vs_queue *open_q(fixture *f) {
    return open_url(f, f->url);
}

static int64_t push1(vs_queue *q, const char *body) {
    vs_error e = {0};
    int64_t id = -1;
    const char *b[1] = {body};
    vs_err rc = q->ops->push(q, b, 1, &id, &e);
    if (rc != VS_OK) fprintf(stderr, "push: %s\n", e.msg);
    assert_int_equal(rc, VS_OK);
    return id;
}

static vs_err pop(vs_queue *q, int wait_ms, vs_msg *m) {
    vs_error e = {0};
    vs_err rc = q->ops->pop(q, wait_ms, m, &e);
    if (rc != VS_OK && rc != VS_ERR_NOT_FOUND) fprintf(stderr, "pop: %s\n", e.msg);
    return rc;
}

static vs_queue_stats stats(vs_queue *q) {
    vs_queue_stats s;
    vs_error e = {0};
    vs_err rc = q->ops->stats(q, &s, &e);
    if (rc != VS_OK) fprintf(stderr, "stats: %s\n", e.msg);
    assert_int_equal(rc, VS_OK);
    return s;
}

/* ---- tests ---- */

static void test_push_pop_ack(void **state) {
    fixture *f = *state;
    vs_queue *q = f->q = open_q(f);
    assert_true(q->ops->healthy(q));
    int64_t id = push1(q, "{\"key\":\"t/a.jpg\"}");
    assert_true(id > 0);
    vs_msg m;
    assert_int_equal(pop(q, 0, &m), VS_OK);
    assert_int_equal(m.id, id);
    assert_int_equal(m.attempts, 1);
    assert_string_equal(m.body, "{\"key\":\"t/a.jpg\"}");
    vs_msg_free(&m);
    vs_error e = {0};
    assert_int_equal(q->ops->ack(q, id, &e), VS_OK);
    assert_int_equal(q->ops->ack(q, id, &e), VS_OK);     /* again: not an error */
    assert_int_equal(q->ops->ack(q, 987654, &e), VS_OK); /* unknown: not an error */
    assert_int_equal(q->ops->ack(q, -5, &e), VS_OK);     /* no stream id at all: not an error */
    assert_int_equal(pop(q, 0, &m), VS_ERR_NOT_FOUND);
    assert_null(m.body);
    vs_queue_stats s = stats(q);
    assert_int_equal(s.acked_total, 1); /* counted once */
    assert_int_equal(s.ready + s.in_flight + s.dead, 0);
    assert_int_equal(raw_int("XLEN face:ingest"), 0); /* the ack deleted the entry */
    assert_true(push1(q, "next") > id);
}

static void test_fifo(void **state) {
    fixture *f = *state;
    vs_queue *q = f->q = open_q(f);
    const char *batch[5] = {"m0", "m1", "m2", "m3", "m4"};
    int64_t ids[5];
    vs_error e = {0};
    assert_int_equal(q->ops->push(q, batch, 5, ids, &e), VS_OK);
    for (int i = 1; i < 5; i++) assert_true(ids[i] > ids[i - 1]);
    push1(q, "m5");
    push1(q, "m6");
    assert_int_equal(q->ops->push(q, batch, 0, NULL, &e), VS_OK);
    const char *holes[2] = {"x", NULL};
    assert_int_equal(q->ops->push(q, holes, 2, NULL, &e), VS_ERR_INVALID_ARG);
    for (int i = 0; i < 7; i++) {
        vs_msg m;
        assert_int_equal(pop(q, 0, &m), VS_OK);
        char want[8];
        snprintf(want, sizeof want, "m%d", i);
        assert_string_equal(m.body, want);
        if (i < 5) assert_int_equal(m.id, ids[i]);
        assert_int_equal(q->ops->ack(q, m.id, &e), VS_OK);
        vs_msg_free(&m);
    }
    vs_msg m;
    assert_int_equal(pop(q, 0, &m), VS_ERR_NOT_FOUND);
}

static void test_empty_pop_is_quick(void **state) {
    fixture *f = *state;
    vs_queue *q = f->q = open_q(f);
    vs_msg m;
    int64_t t0 = vs_now_ms();
    assert_int_equal(pop(q, 0, &m), VS_ERR_NOT_FOUND);
    assert_true(vs_now_ms() - t0 < 100);
    t0 = vs_now_ms();
    assert_int_equal(pop(q, 300, &m), VS_ERR_NOT_FOUND);
    int64_t dt = vs_now_ms() - t0;
    assert_true(dt >= 290 && dt < 1000);
}

static void *delayed_push(void *arg) {
    usleep(100 * 1000);
    push1(arg, "late");
    return NULL;
}

/* A push from another thread ends a blocked pop (XREADGROUP BLOCK) early. */
static void test_pop_waits_for_push(void **state) {
    fixture *f = *state;
    vs_queue *q = f->q = open_q(f);
    pthread_t t;
    pthread_create(&t, NULL, delayed_push, q);
    int64_t t0 = vs_now_ms();
    vs_msg m;
    assert_int_equal(pop(q, 5000, &m), VS_OK);
    assert_true(vs_now_ms() - t0 < 1000);
    assert_string_equal(m.body, "late");
    vs_msg_free(&m);
    pthread_join(t, NULL);
}

/* A consumer that never acks: after visibility_ms another consumer (a second
 * handle, another Redis consumer name) gets the same id, attempts 2. */
static void test_visibility_timeout(void **state) {
    fixture *f = *state;
    vs_queue *q = f->q = open_q(f);
    vs_queue *q2 = f->q2 = open_q(f);
    int64_t id = push1(q, "v");
    vs_msg m;
    int64_t t0 = vs_now_ms();
    assert_int_equal(pop(q, 0, &m), VS_OK);
    vs_msg_free(&m);
    assert_int_equal(pop(q2, 0, &m), VS_ERR_NOT_FOUND); /* leased */
    vs_queue_stats s = stats(q);
    assert_int_equal(s.in_flight, 1);
    assert_int_equal(s.ready, 0);
    assert_int_equal(pop(q2, 2000, &m), VS_OK); /* lease ran out: delivered again */
    int64_t dt = vs_now_ms() - t0;
    assert_true(dt >= 190 && dt < 1500);
    assert_int_equal(m.id, id);
    assert_int_equal(m.attempts, 2);
    assert_string_equal(m.body, "v");
    vs_msg_free(&m);
    vs_error e = {0};
    assert_int_equal(q2->ops->ack(q2, id, &e), VS_OK);
    s = stats(q);
    assert_int_equal(s.ready + s.in_flight, 0);
    assert_int_equal(s.acked_total, 1);
}

static void test_nack_retry(void **state) {
    fixture *f = *state;
    f->opts.visibility_ms = 60000; /* only the nack can bring it back */
    vs_queue *q = f->q = open_q(f);
    int64_t id = push1(q, "n");
    vs_msg m;
    vs_error e = {0};
    assert_int_equal(pop(q, 0, &m), VS_OK);
    vs_msg_free(&m);
    assert_int_equal(q->ops->nack(q, id, "transient", 0, &e), VS_OK);
    assert_int_equal(pop(q, 0, &m), VS_OK);
    assert_int_equal(m.id, id); /* the same id across retries */
    assert_int_equal(m.attempts, 2);
    vs_msg_free(&m);
    assert_int_equal(q->ops->nack(q, id, "transient", 300, &e), VS_OK);
    assert_int_equal(pop(q, 0, &m), VS_ERR_NOT_FOUND); /* delayed */
    vs_queue_stats s = stats(q);
    assert_int_equal(s.ready, 1); /* waiting for a retry, not in flight */
    assert_int_equal(s.in_flight, 0);
    int64_t t0 = vs_now_ms();
    assert_int_equal(pop(q, 2000, &m), VS_OK);
    int64_t dt = vs_now_ms() - t0;
    assert_true(dt >= 250 && dt < 1000);
    assert_int_equal(m.id, id);
    assert_int_equal(m.attempts, 3);
    vs_msg_free(&m);
    assert_int_equal(q->ops->nack(q, 424242, "unknown id", 0, &e), VS_OK);
    assert_int_equal(q->ops->nack(q, 0, "no id", 0, &e), VS_OK);
}

/* retry_ms beyond the visibility timeout: Redis cannot park it that long by
 * idle time alone; the delay hash keeps it back. */
static void test_retry_longer_than_visibility(void **state) {
    fixture *f = *state;
    f->opts.visibility_ms = 200;
    f->opts.max_attempts = 5;
    vs_queue *q = f->q = open_q(f);
    int64_t id = push1(q, "slow");
    vs_msg m;
    vs_error e = {0};
    assert_int_equal(pop(q, 0, &m), VS_OK);
    vs_msg_free(&m);
    int64_t t0 = vs_now_ms();
    assert_int_equal(q->ops->nack(q, id, "later", 800, &e), VS_OK);
    assert_int_equal(pop(q, 500, &m), VS_ERR_NOT_FOUND); /* past the lease, before the retry */
    assert_int_equal(stats(q).ready, 1);
    assert_int_equal(pop(q, 3000, &m), VS_OK);
    int64_t dt = vs_now_ms() - t0;
    assert_true(dt >= 750 && dt < 2000);
    assert_int_equal(m.id, id);
    assert_int_equal(m.attempts, 2); /* the re-parking did not count as deliveries */
    vs_msg_free(&m);
    assert_int_equal(q->ops->ack(q, id, &e), VS_OK);
    assert_int_equal(raw_int("EXISTS face:ingest:delay"), 0);
}

typedef struct dead_seen {
    int n;
    int64_t ids[8];
    char errors[8][128];
    char bodies[8][32];
    int attempts[8];
} dead_seen;

static int on_dead(void *ctx, const vs_dead_msg *m) {
    dead_seen *d = ctx;
    if (d->n < 8) {
        d->ids[d->n] = m->id;
        snprintf(d->errors[d->n], sizeof d->errors[0], "%s", m->last_error);
        snprintf(d->bodies[d->n], sizeof d->bodies[0], "%s", m->body);
        d->attempts[d->n] = m->attempts;
        assert_true(m->failed_at_ms > vs_wall_ms() - 60000);
    }
    d->n++;
    return 0;
}

static void test_dead_letter_after_max_nacks(void **state) {
    fixture *f = *state;
    vs_queue *q = f->q = open_q(f);
    int64_t id = push1(q, "poison");
    vs_error e = {0};
    for (int i = 1; i <= 3; i++) {
        vs_msg m;
        assert_int_equal(pop(q, 0, &m), VS_OK);
        assert_int_equal(m.attempts, i);
        vs_msg_free(&m);
        char why[32];
        snprintf(why, sizeof why, "boom %d", i);
        assert_int_equal(q->ops->nack(q, id, why, 0, &e), VS_OK);
    }
    vs_msg m;
    assert_int_equal(pop(q, 0, &m), VS_ERR_NOT_FOUND);
    dead_seen d = {0};
    assert_int_equal(q->ops->list_dead(q, 10, on_dead, &d, &e), VS_OK);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.ids[0], id);
    assert_string_equal(d.errors[0], "boom 3");
    assert_string_equal(d.bodies[0], "poison");
    assert_int_equal(d.attempts[0], 3);
    vs_queue_stats s = stats(q);
    assert_int_equal(s.dead, 1);
    assert_int_equal(s.ready + s.in_flight, 0);
    assert_int_equal(s.acked_total, 0);
    assert_int_equal(raw_int("XLEN face:ingest"), 0);

    int64_t id2 = push1(q, "poison2");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pop(q, 0, &m), VS_OK);
        vs_msg_free(&m);
        assert_int_equal(q->ops->nack(q, id2, "again", 0, &e), VS_OK);
    }
    memset(&d, 0, sizeof d);
    assert_int_equal(q->ops->list_dead(q, 0, on_dead, &d, &e), VS_OK); /* 0: all, newest first */
    assert_int_equal(d.n, 2);
    assert_int_equal(d.ids[0], id2);
    assert_int_equal(d.ids[1], id);
    memset(&d, 0, sizeof d);
    assert_int_equal(q->ops->list_dead(q, 1, on_dead, &d, &e), VS_OK);
    assert_int_equal(d.n, 1);
}

static void test_dead_letter_after_expired_leases(void **state) {
    fixture *f = *state;
    f->opts.visibility_ms = 100;
    f->opts.max_attempts = 2;
    vs_queue *q = f->q = open_q(f);
    int64_t id = push1(q, "crasher");
    vs_msg m;
    assert_int_equal(pop(q, 0, &m), VS_OK); /* the consumer "dies": no ack, no nack */
    vs_msg_free(&m);
    assert_int_equal(pop(q, 1000, &m), VS_OK);
    assert_int_equal(m.attempts, 2);
    vs_msg_free(&m);
    assert_int_equal(pop(q, 600, &m), VS_ERR_NOT_FOUND); /* expired twice: dead, not delivered a third time */
    dead_seen d = {0};
    vs_error e = {0};
    assert_int_equal(q->ops->list_dead(q, 10, on_dead, &d, &e), VS_OK);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.ids[0], id);
    assert_int_equal(d.attempts[0], 2);
    assert_non_null(strstr(d.errors[0], "lease expired 2 times"));
}

static void test_stats(void **state) {
    fixture *f = *state;
    f->opts.visibility_ms = 60000;
    vs_queue *q = f->q = open_q(f);
    const char *b[3] = {"a", "b", "c"};
    int64_t ids[3];
    vs_error e = {0};
    assert_int_equal(q->ops->push(q, b, 3, ids, &e), VS_OK);
    vs_queue_stats s = stats(q);
    assert_int_equal(s.ready, 3);
    assert_int_equal(s.in_flight, 0);
    vs_msg m1, m2;
    assert_int_equal(pop(q, 0, &m1), VS_OK);
    assert_int_equal(pop(q, 0, &m2), VS_OK);
    s = stats(q);
    assert_int_equal(s.ready, 1);
    assert_int_equal(s.in_flight, 2);
    assert_int_equal(q->ops->ack(q, m1.id, &e), VS_OK);
    s = stats(q);
    assert_int_equal(s.in_flight, 1);
    assert_int_equal(s.acked_total, 1);
    assert_int_equal(q->ops->nack(q, m2.id, "later", 10000, &e), VS_OK);
    s = stats(q);
    assert_int_equal(s.ready, 2); /* the retry waiting counts as ready */
    assert_int_equal(s.in_flight, 0);
    vs_msg_free(&m1);
    vs_msg_free(&m2);
    /* an expired lease counts as ready too */
    f->opts.visibility_ms = 100;
    vs_queue *q2 = f->q2 = open_q(f);
    assert_int_equal(pop(q2, 0, &m1), VS_OK);
    vs_msg_free(&m1);
    assert_int_equal(stats(q2).in_flight, 1);
    usleep(150 * 1000);
    s = stats(q2);
    assert_int_equal(s.in_flight, 0);
    assert_int_equal(s.ready, 2);
}

/* max_len, prefix and db come from the URL; a full queue refuses, it never trims. */
static void test_url_options_and_cap(void **state) {
    fixture *f = *state;
    char url[160];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/2?prefix=t1:&max_len=5", srv.port);
    vs_queue *q = f->q = open_url(f, url);
    const char *b[5] = {"1", "2", "3", "4", "5"};
    vs_error e = {0};
    assert_int_equal(q->ops->push(q, b, 4, NULL, &e), VS_OK);
    assert_int_equal(q->ops->push(q, b, 2, NULL, &e), VS_ERR_TOO_LARGE); /* 4 + 2 > 5: all refused */
    assert_non_null(strstr(e.msg, "queue full: 4 pending"));
    assert_non_null(strstr(e.msg, "push"));
    push1(q, "5");
    assert_int_equal(q->ops->push(q, b, 1, NULL, &e), VS_ERR_TOO_LARGE);
    assert_int_equal(stats(q).ready, 5);
    vs_msg m;
    assert_int_equal(pop(q, 0, &m), VS_OK);
    assert_string_equal(m.body, "1"); /* nothing was trimmed to make room */
    assert_int_equal(q->ops->ack(q, m.id, &e), VS_OK);
    vs_msg_free(&m);
    push1(q, "6"); /* room again */
    freeReplyObject(raw("SELECT 2"));
    assert_int_equal(raw_int("XLEN t1:ingest"), 5);
    assert_int_equal(raw_int("EXISTS face:ingest"), 0);
    freeReplyObject(raw("SELECT 0"));
    assert_int_equal(raw_int("EXISTS t1:ingest"), 0);

    vs_queue *bad = NULL;
    const char *bad_urls[] = {"redis://", "redis://h:99999", "redis://h:0", "redis://h/x", "redis://h?colour=red",
                              "redis://h?max_len=0", "redis://h?prefix=a%20b c", "redis://[::1"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        assert_int_equal(vs_queue_open(bad_urls[i], &f->opts, &bad, &e), VS_ERR_INVALID_ARG);
        assert_null(bad);
    }
    assert_int_equal(vs_queue_open("rediss://h", &f->opts, &bad, &e), VS_ERR_UNSUPPORTED);
}

/* Redis restarted without persistence (here: FLUSHALL): the group is gone,
 * a push recreates the bare stream, and the next command that says NOGROUP
 * creates the group at id 0, so the message pushed meanwhile is delivered. */
static void test_lost_group(void **state) {
    fixture *f = *state;
    vs_queue *q = f->q = open_q(f);
    push1(q, "before");
    freeReplyObject(raw("FLUSHALL"));
    int64_t id = push1(q, "meanwhile");
    assert_int_equal(raw_int("EXISTS face:ingest"), 1);
    vs_msg m;
    assert_int_equal(pop(q, 0, &m), VS_OK);
    assert_string_equal(m.body, "meanwhile");
    assert_int_equal(m.id, id);
    vs_error e = {0};
    assert_int_equal(q->ops->ack(q, m.id, &e), VS_OK);
    vs_msg_free(&m);
    freeReplyObject(raw("FLUSHALL"));
    vs_queue_stats s = stats(q); /* recreates the group too */
    assert_int_equal(s.ready + s.in_flight + s.dead + s.acked_total, 0);
}

/* Credentials from the URL: AUTH password, or AUTH user password. */
static void test_auth(void **state) {
    fixture *f = *state;
    freeReplyObject(raw("CONFIG SET requirepass s3cret"));
    char url[128];
    vs_queue *q = NULL;
    vs_error e = {0};
    vs_err rc = vs_queue_open(f->url, &f->opts, &q, &e);
    snprintf(url, sizeof url, "redis://:s3cret@127.0.0.1:%d/0", srv.port);
    vs_queue *q1 = open_url(f, url);
    snprintf(url, sizeof url, "redis://default:s3cret@127.0.0.1:%d/0", srv.port);
    vs_queue *q2 = open_url(f, url);
    freeReplyObject(raw("CONFIG SET requirepass %s", ""));
    assert_int_equal(rc, VS_ERR_BACKEND);
    assert_non_null(strstr(e.msg, "NOAUTH"));
    assert_null(q);
    int64_t id = push1(q1, "authed");
    vs_msg m;
    assert_int_equal(pop(q2, 0, &m), VS_OK);
    assert_int_equal(m.id, id);
    vs_msg_free(&m);
    q1->ops->close(q1);
    q2->ops->close(q2);
}

typedef struct waiter {
    vs_queue *q;
    vs_err rc;
    int64_t ms;
} waiter;

static void *wait_pop(void *arg) {
    waiter *w = arg;
    vs_msg m;
    int64_t t0 = vs_now_ms();
    w->rc = pop(w->q, 10000, &m);
    w->ms = vs_now_ms() - t0;
    if (w->rc == VS_OK) vs_msg_free(&m);
    return NULL;
}

static void test_wake_unblocks_pop(void **state) {
    fixture *f = *state;
    vs_queue *q = f->q = open_q(f);
    waiter w[2] = {{q, -1, 0}, {q, -1, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, wait_pop, &w[i]);
    usleep(150 * 1000);
    q->ops->wake(q);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].rc, VS_ERR_NOT_FOUND);
        assert_true(w[i].ms < 1000);
    }
    push1(q, "after");
    vs_msg m;
    int64_t t0 = vs_now_ms();
    assert_int_equal(pop(q, 5000, &m), VS_ERR_NOT_FOUND);
    assert_true(vs_now_ms() - t0 < 100);
}

/* Stream ids Redis can hand out that do not fit ms << 20 | seq: a sequence
 * of 2^20 or more within one millisecond (clock stepped back under load, or
 * a foreign writer) is moved to a fresh id; one past the 43-bit millisecond
 * range goes to the dead letters. */
static void test_ids_that_do_not_fit(void **state) {
    fixture *f = *state;
    vs_queue *q = f->q = open_q(f);
    redisReply *t = raw("TIME");
    long long ms = strtoll(t->element[0]->str, NULL, 10) * 1000 + 5000; /* 5 s ahead of Redis's clock */
    freeReplyObject(t);
    freeReplyObject(raw("XADD face:ingest %lld-%d body big-seq", ms, 3 << 20));
    int64_t after = push1(q, "after"); /* Redis continues at ms-(3<<20 + 1): push moves it */
    assert_true(after > 0);
    assert_int_equal((uint64_t)after >> 20, (uint64_t)ms + 1);
    vs_msg m;
    vs_error e = {0};
    /* the first delivery meets big-seq, moves it behind "after" and goes on */
    assert_int_equal(pop(q, 0, &m), VS_OK);
    assert_string_equal(m.body, "after");
    assert_int_equal(m.id, after);
    assert_int_equal(q->ops->ack(q, m.id, &e), VS_OK);
    vs_msg_free(&m);
    assert_int_equal(pop(q, 0, &m), VS_OK);
    assert_string_equal(m.body, "big-seq");
    assert_true(m.id > after);
    assert_int_equal(m.attempts, 1);
    assert_int_equal(q->ops->ack(q, m.id, &e), VS_OK);
    vs_msg_free(&m);
    assert_int_equal(raw_int("XLEN face:ingest"), 0);

    /* past the year 2248: dead-lettered with a reason, and push says why it cannot go on */
    freeReplyObject(raw("XADD face:ingest 9000000000000-1 body far-future"));
    assert_int_equal(pop(q, 0, &m), VS_ERR_NOT_FOUND);
    dead_seen d = {0};
    assert_int_equal(q->ops->list_dead(q, 10, on_dead, &d, &e), VS_OK);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.bodies[0], "far-future");
    assert_non_null(strstr(d.errors[0], "43-bit"));
    const char *b[1] = {"x"};
    assert_int_equal(q->ops->push(q, b, 1, NULL, &e), VS_ERR_BACKEND);
    assert_non_null(strstr(e.msg, "int64"));
}

#define PRODUCERS 4
#define CONSUMERS 4
#define PER_PRODUCER 2000
#define TOTAL (PRODUCERS * PER_PRODUCER)

typedef struct mt_state {
    vs_queue *q;
    atomic_int seen[TOTAL];
    atomic_int acked, errors, backend_errors, pushed;
    atomic_int producers_done;
    int retry_pushes; /* restart test: a failed push is retried, and BACKEND is expected */
    int64_t ids[TOTAL];
} mt_state;

typedef struct mt_arg {
    mt_state *st;
    int who;
} mt_arg;

/* Producer: batches of 25 and single pushes alternately; bodies "p-N". */
static void *producer(void *arg) {
    mt_arg *a = arg;
    char bufs[25][16];
    const char *b[25];
    int base = a->who * PER_PRODUCER, i = 0;
    while (i < PER_PRODUCER) {
        int n = (i / 25) % 2 ? 1 : 25;
        if (i + n > PER_PRODUCER) n = PER_PRODUCER - i;
        for (int j = 0; j < n; j++) {
            snprintf(bufs[j], sizeof bufs[j], "p-%d", base + i + j);
            b[j] = bufs[j];
        }
        vs_error e = {0};
        int64_t ids[25];
        vs_err rc = a->st->q->ops->push(a->st->q, b, n, ids, &e);
        if (rc != VS_OK) {
            if (rc == VS_ERR_BACKEND && a->st->retry_pushes) {
                atomic_fetch_add(&a->st->backend_errors, 1);
                continue; /* the same batch again */
            }
            fprintf(stderr, "producer: %s\n", e.msg);
            atomic_fetch_add(&a->st->errors, 1);
        }
        for (int j = 0; j < n; j++) a->st->ids[base + i + j] = ids[j];
        i += n;
        atomic_fetch_add(&a->st->pushed, n);
    }
    atomic_fetch_add(&a->st->producers_done, 1);
    return NULL;
}

/* Distinct bodies seen so far. */
static int distinct(mt_state *st) {
    int n = 0;
    for (int i = 0; i < TOTAL; i++) n += atomic_load(&st->seen[i]) > 0;
    return n;
}

/* Consumer: pops, counts the body, acks, until every body was seen. */
static void *consumer(void *arg) {
    mt_arg *a = arg;
    int64_t give_up = vs_now_ms() + 30000;
    while (vs_now_ms() < give_up) {
        if (!a->st->retry_pushes && atomic_load(&a->st->acked) >= TOTAL) break;
        if (a->st->retry_pushes && atomic_load(&a->st->producers_done) == PRODUCERS && distinct(a->st) == TOTAL)
            break;
        vs_msg m;
        vs_error e = {0};
        vs_err rc = a->st->q->ops->pop(a->st->q, 200, &m, &e);
        if (rc == VS_ERR_NOT_FOUND) continue;
        if (rc != VS_OK) {
            if (rc == VS_ERR_BACKEND && a->st->retry_pushes) {
                atomic_fetch_add(&a->st->backend_errors, 1);
            } else {
                fprintf(stderr, "consumer: %s\n", e.msg);
                atomic_fetch_add(&a->st->errors, 1);
            }
            continue;
        }
        int n = -1;
        if (sscanf(m.body, "p-%d", &n) == 1 && n >= 0 && n < TOTAL) atomic_fetch_add(&a->st->seen[n], 1);
        else atomic_fetch_add(&a->st->errors, 1);
        rc = a->st->q->ops->ack(a->st->q, m.id, &e);
        if (rc == VS_ERR_BACKEND && a->st->retry_pushes) atomic_fetch_add(&a->st->backend_errors, 1);
        else if (rc != VS_OK) atomic_fetch_add(&a->st->errors, 1);
        atomic_fetch_add(&a->st->acked, 1);
        vs_msg_free(&m);
    }
    return NULL;
}

/* Starts the consumers then the producers on st. */
static void run_threads(mt_state *st, pthread_t *tp, pthread_t *tc, mt_arg *ap, mt_arg *ac) {
    for (int i = 0; i < CONSUMERS; i++) {
        ac[i] = (mt_arg){st, i};
        pthread_create(&tc[i], NULL, consumer, &ac[i]);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        ap[i] = (mt_arg){st, i};
        pthread_create(&tp[i], NULL, producer, &ap[i]);
    }
}

static void test_many_producers_and_consumers(void **state) {
    fixture *f = *state;
    f->opts.visibility_ms = 60000; /* no redelivery: each body must be seen exactly once */
    mt_state *st = calloc(1, sizeof *st);
    st->q = f->q = open_q(f);
    pthread_t tp[PRODUCERS], tc[CONSUMERS];
    mt_arg ap[PRODUCERS], ac[CONSUMERS];
    int64_t t0 = vs_now_ms();
    run_threads(st, tp, tc, ap, ac);
    for (int i = 0; i < PRODUCERS; i++) pthread_join(tp[i], NULL);
    for (int i = 0; i < CONSUMERS; i++) pthread_join(tc[i], NULL);
    printf("# redis queue: %d producers + %d consumers, %d messages pushed, popped and acked in %lld ms\n",
           PRODUCERS, CONSUMERS, TOTAL, (long long)(vs_now_ms() - t0));
    assert_int_equal(atomic_load(&st->errors), 0);
    assert_int_equal(atomic_load(&st->acked), TOTAL);
    for (int i = 0; i < TOTAL; i++) assert_int_equal(atomic_load(&st->seen[i]), 1);
    for (int p = 0; p < PRODUCERS; p++)
        for (int i = 1; i < PER_PRODUCER; i++)
            assert_true(st->ids[p * PER_PRODUCER + i] > st->ids[p * PER_PRODUCER + i - 1]);
    vs_queue_stats s = stats(st->q);
    assert_int_equal(s.ready, 0);
    assert_int_equal(s.in_flight, 0);
    assert_int_equal(s.acked_total, TOTAL);
    free(st);
}

/* Pipelined push rate (printed, never asserted), then pop+ack of all; the
 * lazy trim removes an entry someone acked without deleting it. */
static void test_throughput_and_trim(void **state) {
    fixture *f = *state;
    vs_queue *q = f->q = open_q(f);
    /* an entry acked by another reader of the group but left in the stream */
    freeReplyObject(raw("XADD face:ingest * body stale"));
    freeReplyObject(raw("XREADGROUP GROUP visage other COUNT 1 STREAMS face:ingest >"));
    redisReply *r = raw("XRANGE face:ingest - +");
    assert_int_equal(r->elements, 1);
    freeReplyObject(raw("XACK face:ingest visage %s", r->element[0]->element[0]->str));
    freeReplyObject(r);

    enum { N = 10000, BATCH = 10000 };
    static char bufs[BATCH][160];
    static const char *b[BATCH];
    static int64_t ids[BATCH];
    for (int i = 0; i < BATCH; i++) {
        snprintf(bufs[i], sizeof bufs[i], "{\"tenant_id\":\"t\",\"bucket\":\"raw-images\",\"key\":\"t/%064d.jpg\"}", i);
        b[i] = bufs[i];
    }
    vs_error e = {0};
    int64_t t0 = vs_now_ms();
    assert_int_equal(q->ops->push(q, b, BATCH, ids, &e), VS_OK);
    int64_t t1 = vs_now_ms();
    for (int i = 1; i < BATCH; i++) assert_true(ids[i] > ids[i - 1]);
    for (int i = 0; i < N; i++) {
        vs_msg m;
        assert_int_equal(pop(q, 0, &m), VS_OK);
        assert_int_equal(m.id, ids[i]);
        assert_int_equal(q->ops->ack(q, m.id, &e), VS_OK);
        vs_msg_free(&m);
    }
    int64_t t2 = vs_now_ms();
    printf("# redis queue: pipelined XADD of %d messages in one push: %.0f msgs/s; pop+ack one by one: %.0f msgs/s\n",
           N, N * 1000.0 / (double)(t1 - t0 + 1), N * 1000.0 / (double)(t2 - t1 + 1));
    assert_int_equal(stats(q).acked_total, N);
    assert_int_equal(raw_int("XLEN face:ingest"), 0); /* the stale entry was trimmed */
}

/* Nothing listens: open fails with VS_ERR_BACKEND naming the op and the
 * server, after the reconnect budget. */
static void test_unreachable(void **state) {
    fixture *f = *state;
    char url[96];
    int port = srv.port == 39999 ? 39998 : srv.port + 1;
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    vs_queue *q = NULL;
    vs_error e = {0};
    int64_t t0 = vs_now_ms();
    assert_int_equal(vs_queue_open(url, &f->opts, &q, &e), VS_ERR_BACKEND);
    int64_t dt = vs_now_ms() - t0;
    assert_null(q);
    char want[64];
    snprintf(want, sizeof want, "redis 127.0.0.1:%d: connection refused", port);
    assert_non_null(strstr(e.msg, want));
    assert_non_null(strstr(e.msg, "open"));
    assert_true(dt >= 1500 && dt < 5000);
}

/* Redis SIGKILLed under load and started again on the same port with the
 * same AOF: producers and consumers see VS_ERR_BACKEND while it is down,
 * reconnect, and every message pushed is acked at least once. */
static void test_redis_restart(void **state) {
    fixture *f = *state;
    f->opts.visibility_ms = 1000; /* leases lost with the connections come back soon */
    freeReplyObject(raw("CONFIG SET appendfsync always")); /* an accepted push survives SIGKILL */
    mt_state *st = calloc(1, sizeof *st);
    st->retry_pushes = 1;
    st->q = f->q = open_q(f);
    pthread_t tp[PRODUCERS], tc[CONSUMERS];
    mt_arg ap[PRODUCERS], ac[CONSUMERS];
    run_threads(st, tp, tc, ap, ac);
    while (atomic_load(&st->pushed) < TOTAL / 3) usleep(1000);

    stop_server(SIGKILL);
    int64_t down_at = vs_now_ms();
    assert_false(st->q->ops->healthy(st->q));
    const char *b[1] = {"p-0"}; /* a duplicate of a pushed body, if it ever gets in */
    vs_error e = {0};
    assert_int_equal(st->q->ops->push(st->q, b, 1, NULL, &e), VS_ERR_BACKEND);
    char want[64];
    snprintf(want, sizeof want, "queue push: redis 127.0.0.1:%d: connection refused", srv.port);
    assert_non_null(strstr(e.msg, want));
    vs_msg m;
    int64_t t0 = vs_now_ms();
    assert_int_equal(st->q->ops->pop(st->q, 300, &m, &e), VS_ERR_BACKEND);
    assert_true(vs_now_ms() - t0 < 1500);
    int rc = -1;
    for (int i = 0; i < 20 && rc != 0; i++) {
        rc = spawn_server("always");
        if (rc != 0) usleep(200 * 1000);
    }
    assert_int_equal(rc, 0);
    int64_t down_ms = vs_now_ms() - down_at;

    for (int i = 0; i < PRODUCERS; i++) pthread_join(tp[i], NULL);
    for (int i = 0; i < CONSUMERS; i++) pthread_join(tc[i], NULL);
    int dup = 0;
    for (int i = 0; i < TOTAL; i++) dup += atomic_load(&st->seen[i]) > 1 ? atomic_load(&st->seen[i]) - 1 : 0;
    printf("# redis queue restart: down %lld ms, %d VS_ERR_BACKEND while down, %d duplicate deliveries of %d\n",
           (long long)down_ms, atomic_load(&st->backend_errors), dup, TOTAL);
    assert_int_equal(atomic_load(&st->errors), 0);
    assert_true(atomic_load(&st->backend_errors) > 0);
    for (int i = 0; i < TOTAL; i++) {
        if (atomic_load(&st->seen[i]) < 1) fprintf(stderr, "p-%d never delivered\n", i);
        assert_true(atomic_load(&st->seen[i]) >= 1);
    }
    assert_true(st->q->ops->healthy(st->q));
    vs_queue_stats s = stats(st->q);
    assert_int_equal(s.dead, 0);
    free(st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_push_pop_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_pop_is_quick, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pop_waits_for_push, setup, teardown),
        cmocka_unit_test_setup_teardown(test_visibility_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nack_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_longer_than_visibility, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_letter_after_max_nacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_letter_after_expired_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_options_and_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wake_unblocks_pop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_that_do_not_fit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_producers_and_consumers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput_and_trim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_restart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
