/* test_queue_redis.c - the redis:// queue against a real redis-server that
 * the test starts itself on a random loopback port (and stops at the end):
 * the queue contract (contract_queue.h), then what is Redis's own: the lazy
 * trim, URL options and the cap, a group lost with the data, AUTH, ids Redis
 * gives that do not fit an int64, and Redis unreachable or killed and
 * restarted under load. redis-server missing is a failure, not a skip: CI
 * needs this test. */
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

#include "contract_queue.h"

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

/* Entries left in the stream plus retry deadlines in the delay hash. */
static long long held(fixture *f) {
    (void)f;
    return raw_int("XLEN face:ingest") + raw_int("HLEN face:ingest:delay");
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    freeReplyObject(raw("FLUSHALL"));
    f->opts = (vs_queue_opts){.visibility_ms = 200, .max_attempts = 3};
    snprintf(f->url, sizeof f->url, "redis://127.0.0.1:%d/0", srv.port);
    f->held = held;
    f->batch = 10000; /* one pipelined push */
    f->per_producer = 2000;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    close_all(f);
    free(f);
    return 0;
}

/* ---- tests ---- */

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

/* The contract's rate run (one pipelined push of 10000) with an entry that
 * another reader of the group acked without deleting it: the lazy trim
 * (every 1024 acks) removes it, so nothing is held at the end. */
static void test_throughput_and_trim(void **state) {
    vs_queue *q = open_q(*state); /* makes the group */
    q->ops->close(q);
    freeReplyObject(raw("XADD face:ingest * body stale"));
    freeReplyObject(raw("XREADGROUP GROUP visage other COUNT 1 STREAMS face:ingest >"));
    redisReply *r = raw("XRANGE face:ingest - +");
    assert_int_equal(r->elements, 1);
    freeReplyObject(raw("XACK face:ingest visage %s", r->element[0]->element[0]->str));
    freeReplyObject(r);
    contract_throughput(state);
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
    mt_state *st = mt_new(f->q = open_q(f), 2000);
    st->retry_pushes = 1;
    pthread_t tp[PRODUCERS], tc[CONSUMERS];
    mt_arg ap[PRODUCERS], ac[CONSUMERS];
    run_threads(st, tp, tc, ap, ac);
    while (atomic_load(&st->pushed) < st->total / 3) usleep(1000);

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
    for (int i = 0; i < st->total; i++) dup += atomic_load(&st->seen[i]) > 1 ? atomic_load(&st->seen[i]) - 1 : 0;
    printf("# redis queue restart: down %lld ms, %d VS_ERR_BACKEND while down, %d duplicate deliveries of %d\n",
           (long long)down_ms, atomic_load(&st->backend_errors), dup, st->total);
    assert_int_equal(atomic_load(&st->errors), 0);
    assert_true(atomic_load(&st->backend_errors) > 0);
    for (int i = 0; i < st->total; i++) {
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
        CONTRACT_QUEUE_TESTS(setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput_and_trim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_options_and_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_that_do_not_fit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_restart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
