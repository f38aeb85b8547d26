/* vs_app_reindex.c - POST /api/v1/reindex: vs_reindex_run in a background
 * thread of the server, with a second engine, while the current engine and
 * collections keep serving searches and ingest.
 *
 * Threading: one job thread at a time (plus vs_reindex's own image
 * threads). The status fields are under job.mu, read by GET. The job
 * touches the rest of the process only through three moves, each made
 * holding a->writes exclusive or with a single atomic store:
 *   started   installs a copy of the current pipeline with `shadow` = the
 *             target collections, so erasures also delete there;
 *   switched  (inside vs_reindex's final section, writes held exclusive:
 *             no worker is mid-image and no write route mid-request)
 *             installs the new engine's pipeline: requests and workers
 *             that start after it use it; workers make new engine workers;
 *   after     a run that did not switch puts the source pipeline back.
 * Everything installed is allocated before the run (the hooks cannot fail)
 * and kept, with the engine, until vs_app_reindex_free at close: a request
 * that took a pipeline may still be using it. Rejected: stopping ingest for
 * the whole run (hours for a large archive), and a reindex through the
 * ingest queue (the queue's retries and dead letters are the wrong failure
 * model, and the workers must go on with the old engine meanwhile). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_app.h"
#include "vs_hash.h"
#include "vs_reindex.h"

/* A pipeline the job installs, with its own copy of the names it points to. */
typedef struct owned_pipe {
    vs_pipeline p;
    vs_collections shadow;
} owned_pipe;

struct vs_app_reindex {
    vs_app *app;
    pthread_t thread;
    int joinable;
    atomic_int stop;
    /* the run's settings */
    vs_embedder target;
    int drop_blocks, throttle_ms;
    const vs_pipeline *source;   /* current when it started */
    vs_engine *engine;           /* this run's (also in engines[]) */
    owned_pipe *shadowed, *next; /* installed by the hooks */
    /* status, under mu */
    pthread_mutex_t mu;
    const char *state;           /* idle, loading, running, done, failed, stopped */
    char phase[16];
    int64_t done, total, started_ms, finished_ms;
    char error[VS_ERROR_MSG_MAX], error_code[32];
    json_t *report;
    /* kept until close */
    vs_engine *engines[VS_APP_ENGINES];
    int n_engines;
    owned_pipe *pipes[2 * VS_APP_ENGINES];
    int n_pipes;
};

static void set_state(vs_app_reindex *j, const char *state) {
    pthread_mutex_lock(&j->mu);
    j->state = state;
    pthread_mutex_unlock(&j->mu);
}

static void progress(void *ctx, const char *phase, int64_t done, int64_t total) {
    vs_app_reindex *j = ctx;
    pthread_mutex_lock(&j->mu);
    snprintf(j->phase, sizeof j->phase, "%s", phase);
    j->done = done;
    j->total = total;
    pthread_mutex_unlock(&j->mu);
}

static void on_pause(void *ctx) { pthread_rwlock_wrlock(&((vs_app_reindex *)ctx)->app->writes); }
static void on_resume(void *ctx) { pthread_rwlock_unlock(&((vs_app_reindex *)ctx)->app->writes); }

/* Installs p while no write is under way (writes exclusive). */
static void install_paused(vs_app *a, const vs_pipeline *p) {
    pthread_rwlock_wrlock(&a->writes);
    vs_app_install(a, p);
    pthread_rwlock_unlock(&a->writes);
}

static void on_started(void *ctx, const vs_collections *to) {
    vs_app_reindex *j = ctx;
    j->shadowed->shadow = *to;
    j->shadowed->p.shadow = &j->shadowed->shadow;
    install_paused(j->app, &j->shadowed->p);
}

/* Called with writes held exclusive, right after the catalog switched. */
static void on_switched(void *ctx, const vs_collections *to) {
    vs_app_reindex *j = ctx;
    j->next->p.coll = *to;
    vs_app_install(j->app, &j->next->p);
    fprintf(stderr, "visage: reindex: switched to %s (%s ...)\n", vs_engine_model_id(j->engine), to->faces);
}

/* A copy of src kept until close; NULL when out of memory or slots. */
static owned_pipe *own_pipe(vs_app_reindex *j, const vs_pipeline *src) {
    if (j->n_pipes >= (int)(sizeof j->pipes / sizeof j->pipes[0])) return NULL;
    owned_pipe *o = vs_calloc(1, sizeof *o);
    if (!o) return NULL;
    o->p = *src;
    o->p.shadow = NULL;
    o->p.reindex = 0;
    j->pipes[j->n_pipes++] = o;
    return o;
}

/* The new engine (the current one's settings, another embedder), its
 * query workers and the pipelines the hooks will install. */
static vs_err prepare(vs_app_reindex *j, vs_error *err) {
    vs_engine_cfg cfg = *vs_engine_config(j->source->engine);
    cfg.embedder = j->target;
    cfg.match_threshold = 0; /* the new embedder's own */
    if (j->n_engines >= VS_APP_ENGINES)
        return vs_fail(err, VS_ERR_TOO_LARGE, "reindex: this process ran %d reindexes already; restart it first",
                       VS_APP_ENGINES - 1);
    vs_err rc = vs_engine_load(&cfg, &j->engine, err);
    if (rc != VS_OK) return rc;
    j->engines[j->n_engines++] = j->engine;
    int per = j->app->pool_n < VS_APP_ENGINE_POOL ? j->app->pool_n : VS_APP_ENGINE_POOL;
    rc = vs_app_engine_add(j->app, j->engine, per > 0 ? per : 1, err);
    if (rc == VS_OK && (!(j->shadowed = own_pipe(j, j->source)) || !(j->next = own_pipe(j, j->source))))
        rc = vs_fail(err, VS_ERR_NOMEM, "reindex: pipelines");
    if (rc == VS_OK) j->next->p.engine = j->engine;
    return rc;
}

static void finish(vs_app_reindex *j, vs_err rc, const vs_error *err, const vs_reindex_report *rep) {
    pthread_mutex_lock(&j->mu);
    j->state = rc == VS_OK ? "done" : rc == VS_ERR_CANCELLED ? "stopped" : "failed";
    j->finished_ms = vs_wall_ms();
    json_decref(j->report);
    j->report = rep ? vs_reindex_report_json(rep) : NULL;
    j->error[0] = j->error_code[0] = '\0';
    if (rc != VS_OK) {
        snprintf(j->error, sizeof j->error, "%s", err->msg);
        snprintf(j->error_code, sizeof j->error_code, "%s", vs_err_name(rc));
    }
    pthread_mutex_unlock(&j->mu);
}

/* 1 when there is nothing to do: the data is on the target model and no
 * plan waits to be finished (no engine is loaded for that). */
static int on_target(vs_app_reindex *j, vs_reindex_report *rep) {
    char *plan = NULL;
    const char *model = vs_embedder_get(j->target)->model_id;
    if (strcmp(model, vs_engine_model_id(j->source->engine)) != 0) return 0;
    if (vs_setting_get(j->app->catalog, VS_SETTING_REINDEX, &plan, NULL) == VS_OK) {
        vs_free(plan);
        return 0;
    }
    snprintf(rep->from_model, sizeof rep->from_model, "%s", model);
    snprintf(rep->to_model, sizeof rep->to_model, "%s", model);
    rep->from = rep->to = j->source->coll;
    return 1;
}

static void *job_main(void *arg) {
    vs_app_reindex *j = arg;
    vs_error err = {0};
    vs_reindex_report rep;
    memset(&rep, 0, sizeof rep);
    if (on_target(j, &rep)) {
        finish(j, VS_OK, &err, &rep);
        return NULL;
    }
    vs_err rc = prepare(j, &err);
    if (rc != VS_OK) {
        finish(j, rc, &err, NULL);
        return NULL;
    }
    set_state(j, "running");
    vs_reindex_opts o = {.engine = j->engine, .drop_blocks = j->drop_blocks, .threads = j->app->cfg.threads,
                         .throttle_ms = j->throttle_ms, .progress = progress, .ctx = j, .stop = &j->stop,
                         .hooks = {j, on_started, on_pause, on_resume, on_switched}};
    rc = vs_reindex_run(j->source, &o, &rep, &err);
    if (vs_app_pipeline(j->app) == &j->shadowed->p) install_paused(j->app, j->source); /* not switched */
    finish(j, rc, &err, &rep);
    fprintf(stderr, "visage: reindex: %s%s%s\n", j->state, rc != VS_OK ? ": " : "", rc != VS_OK ? err.msg : "");
    return NULL;
}

vs_err vs_app_reindex_start(vs_app *a, vs_embedder e, int drop_blocks, int throttle_ms, vs_error *err) {
    pthread_mutex_lock(&a->mu);
    if (!a->reindex && (a->reindex = vs_calloc(1, sizeof *a->reindex))) {
        a->reindex->app = a;
        a->reindex->state = "idle";
        pthread_mutex_init(&a->reindex->mu, NULL);
    }
    vs_app_reindex *j = a->reindex;
    pthread_mutex_unlock(&a->mu);
    if (!j) return vs_fail(err, VS_ERR_NOMEM, "reindex");
    pthread_mutex_lock(&j->mu);
    int busy = !strcmp(j->state, "loading") || !strcmp(j->state, "running");
    if (!busy) j->state = "loading";
    pthread_mutex_unlock(&j->mu);
    if (busy) return vs_fail(err, VS_ERR_INVALID_ARG, "a reindex is running already; see GET /api/v1/reindex");
    if (j->joinable) pthread_join(j->thread, NULL); /* the previous run's thread, finished */
    j->joinable = 0;
    atomic_store(&j->stop, 0);
    j->target = e;
    j->drop_blocks = drop_blocks;
    j->throttle_ms = throttle_ms;
    j->source = vs_app_pipeline(a);
    j->engine = NULL;
    j->shadowed = j->next = NULL;
    pthread_mutex_lock(&j->mu);
    j->phase[0] = '\0';
    j->done = j->total = 0;
    j->started_ms = vs_wall_ms();
    j->finished_ms = 0;
    j->error[0] = j->error_code[0] = '\0';
    json_decref(j->report);
    j->report = NULL;
    pthread_mutex_unlock(&j->mu);
    if (pthread_create(&j->thread, NULL, job_main, j) != 0) {
        set_state(j, "failed");
        return vs_fail(err, VS_ERR_BACKEND, "reindex: cannot start a thread");
    }
    j->joinable = 1;
    return VS_OK;
}

/* The plan a stopped or crashed reindex left in the catalog, or NULL. */
static json_t *pending_plan(vs_app *a) {
    char *v = NULL;
    if (vs_setting_get(a->catalog, VS_SETTING_REINDEX, &v, NULL) != VS_OK) return NULL;
    json_t *o = json_loads(v, 0, NULL);
    vs_free(v);
    return o;
}

json_t *vs_app_reindex_status(vs_app *a) {
    const vs_pipeline *p = vs_app_pipeline(a);
    json_t *o = json_pack("{s:s,s:o}", "model", vs_engine_model_id(p->engine), "collections",
                          json_pack("{s:s,s:s,s:s,s:s}", "faces", p->coll.faces, "identities", p->coll.identities,
                                    "samples", p->coll.samples, "blocks", p->coll.blocks));
    pthread_mutex_lock(&a->mu);
    vs_app_reindex *j = a->reindex;
    pthread_mutex_unlock(&a->mu);
    if (!o) return NULL;
    if (!j) {
        json_object_set_new(o, "state", json_string("idle"));
    } else {
        pthread_mutex_lock(&j->mu);
        json_object_set_new(o, "state", json_string(j->state));
        json_object_set_new(o, "embedder", json_string(vs_embedder_get(j->target)->name));
        json_object_set_new(o, "drop_blocks", json_boolean(j->drop_blocks));
        if (j->phase[0]) json_object_set_new(o, "phase", json_string(j->phase));
        json_object_set_new(o, "done", json_integer(j->done));
        if (j->total >= 0) json_object_set_new(o, "total", json_integer(j->total));
        json_object_set_new(o, "started_at", json_integer(j->started_ms));
        if (j->finished_ms) json_object_set_new(o, "finished_at", json_integer(j->finished_ms));
        if (j->report) json_object_set(o, "report", j->report);
        if (j->error[0])
            json_object_set_new(o, "error", json_pack("{s:s,s:s}", "code", j->error_code, "message", j->error));
        pthread_mutex_unlock(&j->mu);
    }
    json_t *plan = pending_plan(a);
    if (plan) json_object_set_new(o, "pending", plan); /* continued by the next POST for its model */
    return o;
}

void vs_app_reindex_stop(vs_app *a) {
    vs_app_reindex *j = a->reindex;
    if (!j) return;
    atomic_store(&j->stop, 1);
    if (j->joinable) pthread_join(j->thread, NULL);
    j->joinable = 0;
}

void vs_app_reindex_free(vs_app *a) {
    vs_app_reindex *j = a->reindex;
    if (!j) return;
    for (int i = 0; i < j->n_pipes; i++) vs_free(j->pipes[i]);
    for (int i = 0; i < j->n_engines; i++) vs_engine_free(j->engines[i]);
    json_decref(j->report);
    pthread_mutex_destroy(&j->mu);
    vs_free(j);
    a->reindex = NULL;
}
