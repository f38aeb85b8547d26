/* contract_queue.h - what every vs_queue backend must do, per vs_queue.h:
 * FIFO with stable, growing ids, leases and redelivery to another handle,
 * retries (shorter and longer than the lease), dead letters newest first,
 * stats, durability across close/reopen, wake(), many producers and
 * consumers with every message acked exactly once, and a push/pop rate
 * (printed, never asserted). Included by test_queue.c (embedded) and
 * test_queue_redis.c, which supply the backend through a fixture and run
 * CONTRACT_QUEUE_TESTS plus their own tests. Not a program of its own. */
#ifndef CONTRACT_QUEUE_H
#define CONTRACT_QUEUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vs_hash.h"
#include "vs_queue.h"

/* Set up by the program's per-test setup; q and q2 are closed by its teardown. */
typedef struct fixture {
    char url[128];       /* vs_queue_open's url: "embedded" or "redis://..." */
    char dir[64];        /* embedded: the data dir opts.data_dir points to */
    vs_queue_opts opts;  /* visibility_ms 200, max_attempts 3, unless a test says otherwise */
    vs_queue *q, *q2;
    /* Messages the backend still stores for the queue (bookkeeping such as a
     * retry's deadline included): acked and dead ones must be gone. NULL: not checked. */
    long long (*held)(struct fixture *f);
    int batch;           /* contract_throughput's push batch (0: 500) */
    int per_producer;    /* messages each of contract_many_producers_and_consumers's producers pushes (0: 500) */
} fixture;

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

static void close_all(fixture *f) {
    if (f->q) f->q->ops->close(f->q);
    if (f->q2) f->q2->ops->close(f->q2);
    f->q = f->q2 = NULL;
}

static void assert_held(fixture *f, long long want) {
    if (f->held) assert_int_equal(f->held(f), want);
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

/* ---- the contract ---- */

static void contract_push_pop_ack(void **state) {
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
    assert_int_equal(q->ops->ack(q, id, &e), VS_OK);     /* again: not an error */
    assert_int_equal(q->ops->ack(q, 987654, &e), VS_OK); /* unknown: not an error */
    assert_int_equal(q->ops->ack(q, -5, &e), VS_OK);     /* not even an id: not an error */
    assert_int_equal(pop(q, 0, &m), VS_ERR_NOT_FOUND);
    assert_null(m.body);
    vs_queue_stats s = stats(q);
    assert_int_equal(s.acked_total, 1); /* counted once */
    assert_int_equal(s.ready + s.in_flight + s.dead, 0);
    assert_held(f, 0); /* the ack removed it */
    /* ids are never reused, even after the queue emptied */
    assert_true(push1(q, "next") > id);
}

static void contract_fifo(void **state) {
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
        assert_int_equal(q->ops->ack(q, m.id, &e), VS_OK);
        vs_msg_free(&m);
    }
    vs_msg m;
    assert_int_equal(pop(q, 0, &m), VS_ERR_NOT_FOUND); /* the rejected batch left nothing behind */
}

static void contract_empty_pop_is_quick(void **state) {
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

/* A push from another thread ends a waiting pop long before its timeout. */
static void contract_pop_waits_for_push(void **state) {
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
 * handle) gets the same id, attempts 2. */
static void contract_visibility_timeout(void **state) {
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

static void contract_nack_retry(void **state) {
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

/* A retry delay longer than the lease holds the message back all of it. */
static void contract_retry_longer_than_visibility(void **state) {
    fixture *f = *state;
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
    assert_int_equal(m.attempts, 2); /* the wait did not count as deliveries */
    vs_msg_free(&m);
    assert_int_equal(q->ops->ack(q, id, &e), VS_OK);
    assert_held(f, 0); /* and left nothing behind */
}

static void contract_dead_letter_after_max_nacks(void **state) {
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
    assert_held(f, 0);

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
    assert_int_equal(q->ops->list_dead(q, 0, on_dead, &d, &e), VS_OK); /* 0: all, newest first */
    assert_int_equal(d.n, 2);
    assert_int_equal(d.ids[0], id2);
    assert_int_equal(d.ids[1], id);
    memset(&d, 0, sizeof d);
    assert_int_equal(q->ops->list_dead(q, 1, on_dead, &d, &e), VS_OK);
    assert_int_equal(d.n, 1);
    assert_held(f, 0);
}

static void contract_dead_letter_after_expired_leases(void **state) {
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

/* Messages, leases and the acked counter outlive the handle. */
static void contract_durable_across_reopen(void **state) {
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

static void contract_stats(void **state) {
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

static void contract_wake_unblocks_pop(void **state) {
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

/* ---- many producers and consumers (also under a backend that fails) ---- */

#define PRODUCERS 4
#define CONSUMERS 4
#define PER_PRODUCER_MAX 2000
#define TOTAL_MAX (PRODUCERS * PER_PRODUCER_MAX)

typedef struct mt_state {
    vs_queue *q;
    int per, total; /* messages per producer, in all */
    atomic_int seen[TOTAL_MAX];
    atomic_int acked, errors, backend_errors, pushed;
    atomic_int producers_done;
    int retry_pushes; /* the backend may fail for a while: VS_ERR_BACKEND is counted, a failed push retried */
    int64_t ids[TOTAL_MAX];
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
    int per = a->st->per, base = a->who * per, i = 0;
    while (i < per) {
        int n = (i / 25) % 2 ? 1 : 25;
        if (i + n > per) n = per - i;
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
    for (int i = 0; i < st->total; i++) n += atomic_load(&st->seen[i]) > 0;
    return n;
}

/* Consumer: pops, counts the body, acks, until every body was seen. */
static void *consumer(void *arg) {
    mt_arg *a = arg;
    int64_t give_up = vs_now_ms() + 30000;
    while (vs_now_ms() < give_up) {
        if (!a->st->retry_pushes && atomic_load(&a->st->acked) >= a->st->total) break;
        if (a->st->retry_pushes && atomic_load(&a->st->producers_done) == PRODUCERS &&
            distinct(a->st) == a->st->total)
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
        if (sscanf(m.body, "p-%d", &n) == 1 && n >= 0 && n < a->st->total) atomic_fetch_add(&a->st->seen[n], 1);
        else atomic_fetch_add(&a->st->errors, 1);
        rc = a->st->q->ops->ack(a->st->q, m.id, &e);
        if (rc == VS_ERR_BACKEND && a->st->retry_pushes) atomic_fetch_add(&a->st->backend_errors, 1);
        else if (rc != VS_OK) atomic_fetch_add(&a->st->errors, 1);
        atomic_fetch_add(&a->st->acked, 1);
        vs_msg_free(&m);
    }
    return NULL;
}

/* A new mt_state on q, per messages a producer. */
static mt_state *mt_new(vs_queue *q, int per) {
    mt_state *st = calloc(1, sizeof *st);
    st->q = q;
    st->per = per > 0 ? per : 500;
    assert_true(st->per <= PER_PRODUCER_MAX);
    st->total = PRODUCERS * st->per;
    return st;
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

static void contract_many_producers_and_consumers(void **state) {
    fixture *f = *state;
    f->opts.visibility_ms = 60000; /* no redelivery: each body must be seen exactly once */
    mt_state *st = mt_new(f->q = open_q(f), f->per_producer);
    pthread_t tp[PRODUCERS], tc[CONSUMERS];
    mt_arg ap[PRODUCERS], ac[CONSUMERS];
    int64_t t0 = vs_now_ms();
    run_threads(st, tp, tc, ap, ac);
    for (int i = 0; i < PRODUCERS; i++) pthread_join(tp[i], NULL);
    for (int i = 0; i < CONSUMERS; i++) pthread_join(tc[i], NULL);
    printf("# queue %s: %d producers + %d consumers, %d messages pushed, popped and acked in %lld ms\n", f->url,
           PRODUCERS, CONSUMERS, st->total, (long long)(vs_now_ms() - t0));
    assert_int_equal(atomic_load(&st->errors), 0);
    assert_int_equal(atomic_load(&st->acked), st->total);
    for (int i = 0; i < st->total; i++) assert_int_equal(atomic_load(&st->seen[i]), 1);
    /* ids distinct: sort-free check through the FIFO property of one producer */
    for (int p = 0; p < PRODUCERS; p++)
        for (int i = 1; i < st->per; i++) assert_true(st->ids[p * st->per + i] > st->ids[p * st->per + i - 1]);
    vs_queue_stats s = stats(st->q);
    assert_int_equal(s.ready, 0);
    assert_int_equal(s.in_flight, 0);
    assert_int_equal(s.acked_total, st->total);
    free(st);
    assert_held(f, 0);
}

/* Push rate in batches of f->batch and pop+ack rate one by one, printed
 * (never asserted); delivery in push order. */
static void contract_throughput(void **state) {
    fixture *f = *state;
    vs_queue *q = f->q = open_q(f);
    enum { N = 10000 };
    static char bufs[N][160];
    static const char *b[N];
    static int64_t ids[N];
    for (int i = 0; i < N; i++) {
        snprintf(bufs[i], sizeof bufs[i], "{\"tenant_id\":\"t\",\"bucket\":\"raw-images\",\"key\":\"t/%064d.jpg\"}", i);
        b[i] = bufs[i];
    }
    int batch = f->batch > 0 ? f->batch : 500;
    vs_error e = {0};
    int64_t t0 = vs_now_ms();
    for (int i = 0; i < N; i += batch)
        assert_int_equal(q->ops->push(q, b + i, i + batch <= N ? batch : N - i, ids + i, &e), VS_OK);
    int64_t t1 = vs_now_ms();
    for (int i = 1; i < N; i++) assert_true(ids[i] > ids[i - 1]);
    for (int i = 0; i < N; i++) {
        vs_msg m;
        assert_int_equal(pop(q, 0, &m), VS_OK);
        assert_int_equal(m.id, ids[i]);
        assert_int_equal(q->ops->ack(q, m.id, &e), VS_OK);
        vs_msg_free(&m);
    }
    int64_t t2 = vs_now_ms();
    printf("# queue %s: push %d in batches of %d: %.0f msgs/s; pop+ack one by one: %.0f msgs/s\n", f->url, N, batch,
           N * 1000.0 / (double)(t1 - t0 + 1), N * 1000.0 / (double)(t2 - t1 + 1));
    assert_int_equal(stats(q).acked_total, N);
    assert_held(f, 0);
}

/* The contract, for a program's test list: each test gets a fresh fixture
 * (an empty queue) from setup and gives it back to teardown. Each program
 * lists contract_throughput itself, after priming the backend if it wants
 * (the redis one leaves a stale entry for its lazy trim to find). */
#define CONTRACT_QUEUE_TESTS(setup, teardown)                                                                   \
    cmocka_unit_test_setup_teardown(contract_push_pop_ack, setup, teardown),                                    \
        cmocka_unit_test_setup_teardown(contract_fifo, setup, teardown),                                        \
        cmocka_unit_test_setup_teardown(contract_empty_pop_is_quick, setup, teardown),                          \
        cmocka_unit_test_setup_teardown(contract_pop_waits_for_push, setup, teardown),                          \
        cmocka_unit_test_setup_teardown(contract_visibility_timeout, setup, teardown),                          \
        cmocka_unit_test_setup_teardown(contract_nack_retry, setup, teardown),                                  \
        cmocka_unit_test_setup_teardown(contract_retry_longer_than_visibility, setup, teardown),                \
        cmocka_unit_test_setup_teardown(contract_dead_letter_after_max_nacks, setup, teardown),                 \
        cmocka_unit_test_setup_teardown(contract_dead_letter_after_expired_leases, setup, teardown),            \
        cmocka_unit_test_setup_teardown(contract_durable_across_reopen, setup, teardown),                       \
        cmocka_unit_test_setup_teardown(contract_stats, setup, teardown),                                       \
        cmocka_unit_test_setup_teardown(contract_wake_unblocks_pop, setup, teardown),                           \
        cmocka_unit_test_setup_teardown(contract_many_producers_and_consumers, setup, teardown)

#endif
