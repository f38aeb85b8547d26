/* vs_workers.c - the pipeline's worker threads.
 *
 * Threading: each thread owns one vs_engine_worker (its XNNPACK runtimes and
 * scratch) and never shares it; the engine, store, index, catalog and queue
 * are thread-safe by contract. The only shared state here is the stats
 * block, under `mu`, and the `stopping` flag (atomic). A message is acked
 * only after vs_process_image has written its points and record, so a thread
 * or process that dies mid-way leaves the message leased; the queue
 * delivers it again after the visibility timeout and the deterministic ids
 * make the second run overwrite the first. Transient errors are nacked with
 * a growing delay; the queue dead-letters a message after max_attempts.
 * Rejected one-thread-per-request designs: a pool sized to the cores keeps
 * one runtime per core busy and memory bounded.
 *
 * A reindex inside the server swaps the pipeline (engine and collections):
 * `p` is read once per message, after taking the pipeline's writes lock
 * shared (so a message is handled entirely before or entirely after a
 * switch, which holds it exclusive), and a thread whose engine worker was
 * made for another engine makes a new one first. Old engines stay alive
 * until shutdown (their owner frees them after vs_workers_stop).
 *
 * Errors are logged through a vs_ratelog owned by the pool: a failing disk
 * or queue makes every thread fail the same way several times a second,
 * and one line per interval with a count says as much as hundreds. */
#include "vs_workers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "vs_alloc.h"
#include "vs_hash.h"
#include "vs_health.h"
#include "vs_ratelog.h"

#define MAX_WORKERS 64

struct vs_workers {
    _Atomic(const vs_pipeline *) p;
    vs_queue *q;
    int n;
    int apply;    /* 1 = apply result messages instead of processing images */
    int nice;     /* of every thread (vs_workers_opts) */
    pthread_t threads[MAX_WORKERS];
    vs_engine_worker *engines[MAX_WORKERS];
    const vs_engine *engine_of[MAX_WORKERS];  /* what engines[i] was made for */
    atomic_int stopping;
    pthread_mutex_t mu;
    vs_worker_stats stats;
    vs_ratelog log;   /* every error line of the threads */
};

/* Logs an error of the pool: key groups repeats (no message ids in it),
 * line is the whole text of this occurrence. */
static void log_error(vs_workers *w, const char *key, const char *line) {
    vs_ratelog_say(&w->log, vs_now_ms(), key, line);
}

/* Notes the outcome of one step for /readyz: storage errors (full,
 * read-only, failing disk) and the last success. */
static void note_storage(vs_workers *w, vs_err rc, const char *msg) {
    int storage = rc != VS_OK && vs_err_text_is_storage(msg);
    if (rc != VS_OK && !storage) return;
    pthread_mutex_lock(&w->mu);
    if (storage) {
        w->stats.storage_errors++;
        w->stats.last_storage_error_ms = vs_now_ms();
        snprintf(w->stats.last_storage_error, sizeof w->stats.last_storage_error, "%s", msg);
    } else {
        w->stats.last_ok_ms = vs_now_ms();
    }
    pthread_mutex_unlock(&w->mu);
}

static void record(vs_workers *w, vs_process_result r, vs_err rc, int faces, int64_t ms, const vs_engine_worker *ew,
                   const vs_engine_profile *before) {
    static const int64_t bounds[7] = {50, 100, 250, 500, 1000, 2500, 5000};
    pthread_mutex_lock(&w->mu);
    if (ew) vs_engine_profile_accumulate(&w->stats.stages, vs_engine_worker_profile(ew), before);
    if (rc != VS_OK) w->stats.failed++;
    else if (r == VS_PROCESS_DUPLICATE) w->stats.duplicates++;
    else if (r == VS_PROCESS_REJECTED) w->stats.rejected++;
    else if (r == VS_PROCESS_BLOCKED) w->stats.blocked++;
    else w->stats.processed++;
    w->stats.faces_indexed += faces;
    w->stats.latency_ms_sum += ms;
    int b = 0;
    while (b < 7 && ms > bounds[b]) b++;
    w->stats.latency_hist[b]++;
    pthread_mutex_unlock(&w->mu);
}

/* Thread i's engine worker for p's engine, made anew when a reindex
 * switched engines; NULL (the message is retried) when that fails. */
static vs_engine_worker *engine_for(vs_workers *w, int i, const vs_pipeline *p) {
    if (w->apply || w->engine_of[i] == p->engine) return w->engines[i];
    vs_engine_worker *nw = NULL;
    vs_error err = {0};
    if (vs_engine_worker_new(p->engine, &nw, &err) != VS_OK) {
        char line[VS_ERROR_MSG_MAX + 32];
        snprintf(line, sizeof line, "visage: worker: %s", err.msg);
        log_error(w, err.msg, line);
        return NULL;
    }
    vs_engine_worker_free(w->engines[i]);
    w->engines[i] = nw;
    w->engine_of[i] = p->engine;
    return nw;
}

/* Handles one leased message: parse, process, ack or nack. */
static void handle(vs_workers *w, int i, const vs_msg *msg) {
    pthread_rwlock_t *writes = atomic_load(&w->p)->writes; /* one lock for every pipeline of the process */
    if (writes) pthread_rwlock_rdlock(writes);
    const vs_pipeline *p = atomic_load(&w->p);
    vs_engine_worker *ew = engine_for(w, i, p);
    vs_ingest_msg m;
    vs_error err = {0};
    vs_process_result r = VS_PROCESSED;
    int faces = 0;
    int64_t t0 = vs_now_ms();
    vs_engine_profile before = {0};
    if (ew) before = *vs_engine_worker_profile(ew);
    pthread_mutex_lock(&w->mu);
    w->stats.busy++;
    pthread_mutex_unlock(&w->mu);
    vs_err rc;
    if (w->apply) {
        rc = vs_apply_result(p, msg->body, &err);
    } else {
        rc = ew ? vs_ingest_msg_parse(msg->body, &m, &err) : vs_fail(&err, VS_ERR_NOMEM, "no engine worker");
        if (rc == VS_OK) rc = vs_process_image(p, ew, &m, &r, &faces, &err);
    }
    if (writes) pthread_rwlock_unlock(writes);
    vs_error qerr = {0};
    char key[VS_ERROR_MSG_MAX + 32], line[VS_ERROR_MSG_MAX + 96];
    note_storage(w, rc == VS_ERR_CORRUPT ? VS_OK : rc, err.msg);
    if (rc == VS_OK || rc == VS_ERR_CORRUPT) {
        /* done, or a message no retry can fix: ack (a corrupt message was
         * logged; the record, if any, says why) */
        if (rc != VS_OK) {
            snprintf(key, sizeof key, "messages dropped: %s", err.msg);
            snprintf(line, sizeof line, "visage: worker: message %lld dropped: %s", (long long)msg->id, err.msg);
            log_error(w, key, line);
        }
        vs_err arc = w->q->ops->ack(w->q, msg->id, &qerr);
        if (arc != VS_OK) {
            snprintf(key, sizeof key, "ack: %s", qerr.msg);
            snprintf(line, sizeof line, "visage: worker: ack %lld: %s", (long long)msg->id, qerr.msg);
            log_error(w, key, line);
        }
        note_storage(w, arc, qerr.msg);
    } else {
        int64_t retry = 1000LL << (msg->attempts < 6 ? msg->attempts : 6);
        snprintf(key, sizeof key, "messages failed, will retry: %s", err.msg);
        snprintf(line, sizeof line, "visage: worker: message %lld (attempt %d) failed, will retry: %s",
                 (long long)msg->id, msg->attempts, err.msg);
        log_error(w, key, line);
        if (w->q->ops->nack(w->q, msg->id, err.msg, retry, &qerr) != VS_OK) {
            snprintf(key, sizeof key, "nack: %s", qerr.msg);
            snprintf(line, sizeof line, "visage: worker: nack %lld: %s", (long long)msg->id, qerr.msg);
            log_error(w, key, line);
            note_storage(w, VS_ERR_IO, qerr.msg);
        }
    }
    pthread_mutex_lock(&w->mu);
    w->stats.busy--;
    pthread_mutex_unlock(&w->mu);
    record(w, r, rc, faces, vs_now_ms() - t0, w->apply ? NULL : ew, &before);
}

typedef struct thread_arg {
    vs_workers *w;
    int i;
} thread_arg;

static void *worker_main(void *arg) {
    vs_workers *w = ((thread_arg *)arg)->w;
    int i = ((thread_arg *)arg)->i;
    vs_free(arg);
    /* Linux nices threads one by one (a tid is a process id to setpriority);
     * raising one's own niceness needs no privilege. */
    if (w->nice > 0 && setpriority(PRIO_PROCESS, (id_t)gettid(), w->nice) != 0)
        log_error(w, "nice", "visage: worker: cannot lower this thread's priority; ingest competes with search");
    while (!atomic_load(&w->stopping)) {
        vs_msg msg = {0};
        vs_error err = {0};
        vs_err rc = w->q->ops->pop(w->q, 500, &msg, &err);
        vs_ratelog_flush(&w->log, vs_now_ms()); /* a storm that ended still gets its count line */
        if (rc == VS_ERR_NOT_FOUND) { /* the queue answered: its storage works again */
            note_storage(w, VS_OK, NULL);
            continue;
        }
        if (rc != VS_OK) {
            char key[VS_ERROR_MSG_MAX + 16], line[VS_ERROR_MSG_MAX + 32];
            snprintf(key, sizeof key, "queue: %s", err.msg);
            snprintf(line, sizeof line, "visage: worker: queue: %s", err.msg);
            log_error(w, key, line);
            note_storage(w, rc, err.msg);
            usleep(200 * 1000);
            continue;
        }
        handle(w, i, &msg);
        vs_msg_free(&msg);
    }
    return NULL;
}

/* Common start: n threads, each with an engine worker unless applying. */
static vs_err start(const vs_pipeline *p, vs_queue *q, int n, int apply, int nice, vs_workers **out, vs_error *err) {
    *out = NULL;
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > MAX_WORKERS) n = MAX_WORKERS;
    vs_workers *w = vs_calloc(1, sizeof *w);
    if (!w) return vs_fail(err, VS_ERR_NOMEM, "workers");
    atomic_store(&w->p, p);
    w->q = q;
    w->apply = apply;
    w->nice = nice < 0 ? 0 : nice > 19 ? 19 : nice;
    pthread_mutex_init(&w->mu, NULL);
    vs_ratelog_init(&w->log, 10000, "visage: worker: ", NULL, NULL);
    vs_err rc = VS_OK;
    for (int i = 0; i < n && rc == VS_OK && !apply; i++) {
        rc = vs_engine_worker_new(p->engine, &w->engines[i], err);
        w->engine_of[i] = p->engine;
    }
    for (int i = 0; i < n && rc == VS_OK; i++) {
        thread_arg *a = vs_malloc(sizeof *a);
        if (!a) { rc = vs_fail(err, VS_ERR_NOMEM, "workers"); break; }
        *a = (thread_arg){w, i};
        if (pthread_create(&w->threads[i], NULL, worker_main, a) != 0) {
            vs_free(a);
            rc = vs_fail(err, VS_ERR_BACKEND, "workers: cannot start thread %d", i);
            break;
        }
        w->n = i + 1;
    }
    if (rc != VS_OK) {
        vs_workers_stop(w);
        return rc;
    }
    *out = w;
    return VS_OK;
}

vs_err vs_workers_start(const vs_pipeline *p, vs_queue *q, const vs_workers_opts *o, vs_workers **out, vs_error *err) {
    return start(p, q, o ? o->threads : 0, 0, o ? o->nice : 0, out, err);
}

vs_err vs_appliers_start(const vs_pipeline *p, vs_queue *q, int n, vs_workers **out, vs_error *err) {
    return start(p, q, n <= 0 ? 1 : n, 1, 0, out, err);
}

void vs_workers_stop(vs_workers *w) {
    if (!w) return;
    atomic_store(&w->stopping, 1);
    if (w->q) w->q->ops->wake(w->q);
    for (int i = 0; i < w->n; i++) pthread_join(w->threads[i], NULL);
    for (int i = 0; i < MAX_WORKERS; i++) vs_engine_worker_free(w->engines[i]);
    vs_ratelog_destroy(&w->log, vs_now_ms());
    pthread_mutex_destroy(&w->mu);
    vs_free(w);
}

void vs_workers_set_pipeline(vs_workers *w, const vs_pipeline *p) {
    if (w) atomic_store(&w->p, p);
}

void vs_workers_stats(vs_workers *w, vs_worker_stats *out) {
    pthread_mutex_lock(&w->mu);
    *out = w->stats;
    pthread_mutex_unlock(&w->mu);
}
