/* test_queue.c - the embedded (SQLite) queue: delivery order, leases and
 * redelivery, retries and dead letters, durability across close/reopen,
 * wake() for shutdown, many producers and consumers with every message
 * acked exactly once, and refusing a queue.db that is not ours. Each test
 * gets its own mkdtemp data dir; short visibility timeouts keep it quick. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vs_hash.h"
#include "vs_queue.h"

typedef struct fixture {
    char dir[64];
    vs_queue *q;
    vs_queue_opts opts;
} fixture;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static vs_queue *open_q(fixture *f) {
    vs_error e = {0};
    vs_queue *q = NULL;
    vs_err rc = vs_queue_open("embedded", &f->opts, &q, &e);
    if (rc != VS_OK) fprintf(stderr, "open: %s\n", e.msg);
    assert_int_equal(rc, VS_OK);
    return q;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/vs_test_queue_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    f->opts = (vs_queue_opts){.data_dir = f->dir, .visibility_ms = 200, .max_attempts = 3};
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    if (f->q) f->q->ops->close(f->q);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static int64_t push1(vs_queue *q, const char *body) {
    vs_error e = {0};
    int64_t id = -1;
    const char *b[1] = {body};
    assert_int_equal(q->ops->push(q, b, 1, &id, &e), VS_OK);
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
    assert_int_equal(q->ops->stats(q, &s, &e), VS_OK);
    return s;
}

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
    assert_null(m.body);
    vs_error e = {0};
    assert_int_equal(q->ops->ack(q, id, &e), VS_OK);
    assert_int_equal(q->ops->ack(q, id, &e), VS_OK);      /* again: not an error */
    assert_int_equal(q->ops->ack(q, 987654, &e), VS_OK);  /* unknown: not an error */
    assert_int_equal(pop(q, 0, &m), VS_ERR_NOT_FOUND);
    assert_null(m.body);
    vs_queue_stats s = stats(q);
    assert_int_equal(s.acked_total, 1); /* counted once */
    assert_int_equal(s.ready + s.in_flight + s.dead, 0);
    /* ids are never reused, even after the table emptied */
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
    assert_int_equal(q->ops->push(q, batch, 0, NULL, &e), VS_OK); /* empty batch */
    const char *holes[2] = {"x", NULL};
    assert_int_equal(q->ops->push(q, holes, 2, NULL, &e), VS_ERR_INVALID_ARG);
    for (int i = 0; i < 7; i++) {
        vs_msg m;
        assert_int_equal(pop(q, 0, &m), VS_OK);
        char want[8];
        snprintf(want, sizeof want, "m%d", i);
        assert_string_equal(m.body, want);
        if (i < 5) assert_int_equal(m.id, ids[i]);
        vs_msg_free(&m);
    }
    vs_msg m;
    assert_int_equal(pop(q, 0, &m), VS_ERR_NOT_FOUND); /* the rejected batch left nothing behind */
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

/* A push from another thread ends a waiting pop long before its timeout. */
static void *delayed_push(void *arg) {
    usleep(100 * 1000);
    push1(arg, "late");
    return NULL;
}

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

static void test_visibility_timeout(void **state) {
    fixture *f = *state;
    vs_queue *q = f->q = open_q(f);
    int64_t id = push1(q, "v");
    vs_msg m;
    int64_t t0 = vs_now_ms();
    assert_int_equal(pop(q, 0, &m), VS_OK);
    vs_msg_free(&m);
    assert_int_equal(pop(q, 0, &m), VS_ERR_NOT_FOUND); /* leased */
    vs_queue_stats s = stats(q);
    assert_int_equal(s.in_flight, 1);
    assert_int_equal(s.ready, 0);
    assert_int_equal(pop(q, 2000, &m), VS_OK); /* lease ran out: delivered again */
    int64_t dt = vs_now_ms() - t0;
    assert_true(dt >= 190 && dt < 1500);
    assert_int_equal(m.id, id);
    assert_int_equal(m.attempts, 2);
    vs_msg_free(&m);
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
    assert_int_equal(m.id, id);
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
    assert_int_equal(m.attempts, 3);
    vs_msg_free(&m);
    assert_int_equal(q->ops->nack(q, 424242, "unknown id", 0, &e), VS_OK);
}

typedef struct dead_seen {
    int n;
    int64_t ids[8];
    char errors[8][96];
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

    /* a second dead letter comes first (newest first), and limit holds */
    int64_t id2 = push1(q, "poison2");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pop(q, 0, &m), VS_OK);
        vs_msg_free(&m);
        usleep(2000);
        assert_int_equal(q->ops->nack(q, id2, "again", 0, &e), VS_OK);
    }
    memset(&d, 0, sizeof d);
    assert_int_equal(q->ops->list_dead(q, 10, on_dead, &d, &e), VS_OK);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.ids[0], id2);
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
    assert_int_equal(pop(q, 0, &m), VS_OK); /* consumer "dies": no ack, no nack */
    vs_msg_free(&m);
    assert_int_equal(pop(q, 1000, &m), VS_OK);
    assert_int_equal(m.attempts, 2);
    vs_msg_free(&m);
    assert_int_equal(pop(q, 400, &m), VS_ERR_NOT_FOUND); /* expired twice: dead, not delivered a third time */
    dead_seen d = {0};
    vs_error e = {0};
    assert_int_equal(q->ops->list_dead(q, 10, on_dead, &d, &e), VS_OK);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.ids[0], id);
    assert_non_null(strstr(d.errors[0], "lease expired 2 times"));
}

static void test_durable_across_reopen(void **state) {
    fixture *f = *state;
    vs_queue *q = open_q(f);
    int64_t a = push1(q, "kept");
    int64_t b = push1(q, "leased");
    vs_msg m;
    assert_int_equal(pop(q, 0, &m), VS_OK); /* leases "kept" (lowest id) */
    assert_int_equal(m.id, a);
    vs_msg_free(&m);
    q->ops->close(q);

    q = f->q = open_q(f);
    assert_int_equal(pop(q, 0, &m), VS_OK); /* the unleased one is there at once */
    assert_int_equal(m.id, b);
    assert_string_equal(m.body, "leased");
    vs_msg_free(&m);
    vs_error e = {0};
    assert_int_equal(q->ops->ack(q, b, &e), VS_OK);
    assert_int_equal(pop(q, 0, &m), VS_ERR_NOT_FOUND); /* the leased one still is leased */
    assert_int_equal(pop(q, 2000, &m), VS_OK);          /* and comes back after the lease */
    assert_int_equal(m.id, a);
    assert_int_equal(m.attempts, 2);
    assert_string_equal(m.body, "kept");
    vs_msg_free(&m);
    assert_int_equal(q->ops->ack(q, a, &e), VS_OK);
    q->ops->close(q);
    q = f->q = open_q(f);
    assert_int_equal(stats(q).acked_total, 2); /* the counter is persistent too */
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
    vs_msg_free(&m1);
    vs_msg_free(&m2);
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
    /* shutting down: even with work there, pop returns at once */
    push1(q, "after");
    vs_msg m;
    int64_t t0 = vs_now_ms();
    assert_int_equal(pop(q, 5000, &m), VS_ERR_NOT_FOUND);
    assert_true(vs_now_ms() - t0 < 100);
}

#define PRODUCERS 4
#define CONSUMERS 4
#define PER_PRODUCER 500
#define TOTAL (PRODUCERS * PER_PRODUCER)

typedef struct mt_state {
    vs_queue *q;
    atomic_int seen[TOTAL];
    atomic_int acked, errors;
    int64_t ids[TOTAL];
} mt_state;

typedef struct mt_arg {
    mt_state *st;
    int who;
} mt_arg;

/* Producer: alternates batches of 25 and single pushes; bodies "p-N". */
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
        if (a->st->q->ops->push(a->st->q, b, n, ids, &e) != VS_OK) atomic_fetch_add(&a->st->errors, 1);
        for (int j = 0; j < n; j++) a->st->ids[base + i + j] = ids[j];
        i += n;
    }
    return NULL;
}

/* Consumer: pops, checks and counts the body, acks, until all are acked. */
static void *consumer(void *arg) {
    mt_arg *a = arg;
    while (atomic_load(&a->st->acked) < TOTAL) {
        vs_msg m;
        vs_error e = {0};
        vs_err rc = a->st->q->ops->pop(a->st->q, 200, &m, &e);
        if (rc == VS_ERR_NOT_FOUND) continue;
        if (rc != VS_OK) {
            atomic_fetch_add(&a->st->errors, 1);
            continue;
        }
        int n = -1;
        if (sscanf(m.body, "p-%d", &n) == 1 && n >= 0 && n < TOTAL) atomic_fetch_add(&a->st->seen[n], 1);
        else atomic_fetch_add(&a->st->errors, 1);
        if (a->st->q->ops->ack(a->st->q, m.id, &e) != VS_OK) atomic_fetch_add(&a->st->errors, 1);
        atomic_fetch_add(&a->st->acked, 1);
        vs_msg_free(&m);
    }
    return NULL;
}

static void test_many_producers_and_consumers(void **state) {
    fixture *f = *state;
    f->opts.visibility_ms = 60000; /* no redelivery: each body must be seen exactly once */
    mt_state *st = calloc(1, sizeof *st);
    st->q = f->q = open_q(f);
    pthread_t tp[PRODUCERS], tc[CONSUMERS];
    mt_arg ap[PRODUCERS], ac[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++) {
        ac[i] = (mt_arg){st, i};
        pthread_create(&tc[i], NULL, consumer, &ac[i]);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        ap[i] = (mt_arg){st, i};
        pthread_create(&tp[i], NULL, producer, &ap[i]);
    }
    for (int i = 0; i < PRODUCERS; i++) pthread_join(tp[i], NULL);
    for (int i = 0; i < CONSUMERS; i++) pthread_join(tc[i], NULL);
    assert_int_equal(atomic_load(&st->errors), 0);
    assert_int_equal(atomic_load(&st->acked), TOTAL);
    for (int i = 0; i < TOTAL; i++) assert_int_equal(atomic_load(&st->seen[i]), 1);
    /* ids distinct: sort-free check through the FIFO property of one producer */
    for (int p = 0; p < PRODUCERS; p++)
        for (int i = 1; i < PER_PRODUCER; i++)
            assert_true(st->ids[p * PER_PRODUCER + i] > st->ids[p * PER_PRODUCER + i - 1]);
    vs_queue_stats s = stats(st->q);
    assert_int_equal(s.ready, 0);
    assert_int_equal(s.in_flight, 0);
    assert_int_equal(s.acked_total, TOTAL);
    free(st);
}

/* Prints push and pop+ack rates (a number to read, never asserted). */
static void test_throughput(void **state) {
    fixture *f = *state;
    vs_queue *q = f->q = open_q(f);
    enum { N = 10000, BATCH = 500 };
    static char bufs[BATCH][160];
    const char *b[BATCH];
    for (int i = 0; i < BATCH; i++) {
        snprintf(bufs[i], sizeof bufs[i], "{\"tenant_id\":\"t\",\"bucket\":\"raw-images\",\"key\":\"t/%064d.jpg\"}", i);
        b[i] = bufs[i];
    }
    vs_error e = {0};
    int64_t t0 = vs_now_ms();
    for (int i = 0; i < N; i += BATCH) assert_int_equal(q->ops->push(q, b, BATCH, NULL, &e), VS_OK);
    int64_t t1 = vs_now_ms();
    for (int i = 0; i < N; i++) {
        vs_msg m;
        assert_int_equal(pop(q, 0, &m), VS_OK);
        assert_int_equal(q->ops->ack(q, m.id, &e), VS_OK);
        vs_msg_free(&m);
    }
    int64_t t2 = vs_now_ms();
    print_message("queue: push %d in batches of %d: %.0f msg/s; pop+ack one by one: %.0f msg/s\n", N, BATCH,
                  N * 1000.0 / (double)(t1 - t0 + 1), N * 1000.0 / (double)(t2 - t1 + 1));
    assert_int_equal(stats(q).acked_total, N);
}

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 64; i++) fputs(text, fp);
    fclose(fp);
}

static void test_refuses_foreign_files(void **state) {
    fixture *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/queue.db", f->dir);
    write_file(path, "this is not a SQLite database, just some text in the way. ");
    vs_queue *q = NULL;
    vs_error e = {0};
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    assert_int_equal(vs_queue_open("embedded", &f->opts, &q, &e), VS_ERR_CORRUPT);
    assert_null(q);
    assert_non_null(strstr(e.msg, "queue.db"));
    assert_non_null(strstr(e.msg, "not a"));
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_size, before.st_size); /* untouched */

    /* a real SQLite database, but someone else's */
    remove(path);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE messages(x); INSERT INTO messages VALUES(1);", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(vs_queue_open("embedded", &f->opts, &q, &e), VS_ERR_CORRUPT);
    assert_non_null(strstr(e.msg, "not a visage queue"));
    /* and it was left as it was: not switched to WAL, no tables added */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "delete");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* ours by its id, but a version from the future */
    remove(path);
    f->q = open_q(f);
    f->q->ops->close(f->q);
    f->q = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(vs_queue_open("embedded", &f->opts, &q, &e), VS_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "version 99"));

    /* ours by id and version, but a table missing a column */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=1; DROP TABLE dead; CREATE TABLE dead(id INTEGER);", NULL,
                                  NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(vs_queue_open("embedded", &f->opts, &q, &e), VS_ERR_CORRUPT);
    assert_non_null(strstr(e.msg, "wrong schema"));

    assert_int_equal(vs_queue_open("amqp://localhost:5672/", &f->opts, &q, &e), VS_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "amqp"));
    vs_queue_opts none = {0};
    assert_int_equal(vs_queue_open("embedded", &none, &q, &e), VS_ERR_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_push_pop_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_pop_is_quick, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pop_waits_for_push, setup, teardown),
        cmocka_unit_test_setup_teardown(test_visibility_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nack_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_letter_after_max_nacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_letter_after_expired_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wake_unblocks_pop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_producers_and_consumers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_foreign_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
