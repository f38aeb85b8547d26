/* vs_workers.h - the worker pool of `visage serve` / `visage worker`: N
 * threads, each with its own engine worker (network runtimes), taking
 * messages from the queue and running vs_process_image on them. */
#ifndef VS_WORKERS_H
#define VS_WORKERS_H

#include <stdint.h>

#include "vs_pipeline.h"
#include "vs_queue.h"

typedef struct vs_workers vs_workers;

typedef struct vs_worker_stats {
    int64_t processed, duplicates, rejected, failed, blocked, faces_indexed;
    int64_t busy;              /* messages being processed now */
    int64_t latency_ms_sum;
    int64_t latency_hist[8];   /* process time buckets: <=50,100,250,500,1000,2500,5000,+Inf ms */
    /* storage trouble (disk full, read-only, I/O error: vs_err_text_is_storage)
     * seen taking, handling or settling a message; for /readyz */
    int64_t storage_errors;    /* since start */
    int64_t last_storage_error_ms, last_ok_ms; /* monotonic (vs_now_ms), 0 = never */
    char last_storage_error[160];
    vs_engine_profile stages;  /* where the threads' time went, summed message by message */
} vs_worker_stats;

typedef struct vs_workers_opts {
    int threads;    /* <= 0: one per core */
    /* Scheduling niceness of the threads (0..19; 0 = as the process). Ingest
     * is batch work: at 10, a search request's thread (nice 0) gets ~90 % of
     * a core it shares with a busy worker, so search stays interactive
     * while the queue drains at full speed on otherwise idle cores. */
    int nice;
} vs_workers_opts;

#define VS_WORKERS_NICE 10

/* Starts the threads of o. The pipeline and queue are borrowed and must
 * outlive the pool. */
vs_err vs_workers_start(const vs_pipeline *p, vs_queue *q, const vs_workers_opts *o, vs_workers **out, vs_error *err);

/* Starts n threads that take result messages (from distributed workers)
 * from q and apply them to the local index and catalog (vs_apply_result):
 * the index owner's side of the hand-over. Same stop/stats. */
vs_err vs_appliers_start(const vs_pipeline *p, vs_queue *q, int n, vs_workers **out, vs_error *err);

/* Makes p the pipeline of every message handled from now on (a reindex
 * switched engine and collections; call it holding p->writes exclusive).
 * The old pipeline and engine must stay alive until vs_workers_stop.
 * w may be NULL. */
void vs_workers_set_pipeline(vs_workers *w, const vs_pipeline *p);

/* Stops taking work, lets in-flight messages finish (or be redelivered
 * later if the process dies), joins the threads and frees the pool. */
void vs_workers_stop(vs_workers *w);

void vs_workers_stats(vs_workers *w, vs_worker_stats *out);

#endif
