/* vs_app.c - the parts of vs_app shared by the server and the command-line
 * tools: the pipeline in use and the engine workers queries borrow.
 *
 * Threading: `cur` is an atomic pointer, stored by vs_app_install with the
 * writes lock held exclusive, loaded by every request and worker; what it
 * points to is immutable and lives until close. The pool's slots are only
 * added (a reindex adds its engine's), under mu, and checked out under mu;
 * a slot serves the engine it was made for, so a request that took the old
 * pipeline keeps embedding with the old engine, consistently with the
 * collections it searches. */
#include "vs_app.h"

#include "vs_alloc.h"
#include "vs_people.h"

const vs_pipeline *vs_app_pipeline(vs_app *a) {
    const vs_pipeline *p = atomic_load(&a->cur);
    return p ? p : &a->pipeline;
}

void vs_app_install(vs_app *a, const vs_pipeline *p) {
    atomic_store(&a->cur, p);
    vs_workers_set_pipeline(a->workers, p);
    vs_workers_set_pipeline(a->appliers, p);
    if (a->people) vs_people_set_pipeline(a->people, p);
}

vs_err vs_app_engine_add(vs_app *a, const vs_engine *e, int n, vs_error *err) {
    vs_engine_worker *w[VS_APP_ENGINE_POOL] = {0};
    if (n > VS_APP_ENGINE_POOL) n = VS_APP_ENGINE_POOL;
    vs_err rc = VS_OK;
    vs_engine_worker_opts wo = {.threads = a->cfg.query_threads, .square_only = 1};
    for (int i = 0; i < n && rc == VS_OK; i++) rc = vs_engine_worker_new_with(e, &wo, &w[i], err);
    pthread_mutex_lock(&a->mu);
    if (rc == VS_OK && a->pool_n + n > VS_APP_ENGINE_POOL * VS_APP_ENGINES)
        rc = vs_fail(err, VS_ERR_TOO_LARGE, "engine pool: this process holds %d engines already; restart it",
                     VS_APP_ENGINES);
    for (int i = 0; i < n && rc == VS_OK; i++) {
        a->pool[a->pool_n] = w[i];
        a->pool_engine[a->pool_n] = e;
        a->pool_free[a->pool_n++] = 1;
        w[i] = NULL;
    }
    pthread_mutex_unlock(&a->mu);
    for (int i = 0; i < n; i++) vs_engine_worker_free(w[i]); /* NULL when taken */
    return rc;
}

vs_engine_worker *vs_app_engine_acquire(vs_app *a, const vs_engine *e) {
    pthread_mutex_lock(&a->mu);
    for (;;) {
        for (int i = 0; i < a->pool_n; i++)
            if (a->pool_free[i] && a->pool_engine[i] == e) {
                a->pool_free[i] = 0;
                pthread_mutex_unlock(&a->mu);
                return a->pool[i];
            }
        pthread_cond_wait(&a->cv, &a->mu);
    }
}

void vs_app_engine_release(vs_app *a, vs_engine_worker *w) {
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < a->pool_n; i++)
        if (a->pool[i] == w) a->pool_free[i] = 1;
    pthread_cond_broadcast(&a->cv); /* waiters may want different engines */
    pthread_mutex_unlock(&a->mu);
}

void vs_app_engines_free(vs_app *a) {
    for (int i = 0; i < a->pool_n; i++) vs_engine_worker_free(a->pool[i]);
    a->pool_n = 0;
}
