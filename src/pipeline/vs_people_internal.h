/* vs_people_internal.h - what vs_people.c (the runner) and
 * vs_people_query.c (reads and decisions) share: the handle and the
 * statement helpers, each called with sq.mu held. */
#ifndef VS_PEOPLE_INTERNAL_H
#define VS_PEOPLE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "vs_people.h"
#include "vs_ratelog.h"
#include "vs_sqlite.h"

struct vs_people {
    vs_sqlite_db sq;
    _Atomic(const vs_pipeline *) p;
    vs_people_cfg cfg;
    pthread_t thread;
    int started;
    atomic_int stop;
    pthread_mutex_t wake_mu;
    pthread_cond_t wake_cv;
    vs_people_seen_cb seen;
    void *seen_ctx;
    vs_ratelog log; /* a failing pass (a full disk) is said once per interval */
    /* counters for /metrics (vs_people_stats_get) */
    atomic_llong n_placed, n_batches, n_formed, n_attached, n_merged, last_batch_ms;
};

/* Runs sql with up to 4 text parameters (NULL binds NULL); no rows. */
vs_err vs_people_exec(vs_people *pp, const char *sql, const char *op, const char *a, const char *b, const char *c,
                      const char *d, vs_error *err);
/* The single text value of a query with up to 3 text parameters into out
 * ("" when no row or NULL); *found (may be NULL) = a row came back. */
vs_err vs_people_text(vs_people *pp, const char *sql, const char *op, const char *a, const char *b, const char *c,
                      char *out, size_t cap, int *found, vs_error *err);
/* Removes the tenant's people that have no face left. */
vs_err vs_people_drop_empty(vs_people *pp, const char *tenant, vs_error *err);

#endif
