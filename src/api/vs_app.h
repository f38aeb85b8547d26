/* vs_app.h - everything a request handler may use, owned by the process
 * (`visage serve`) and borrowed by the HTTP layer: backends, the pipeline,
 * the worker pool, a small pool of engine workers for search-by-image,
 * the URL-signing secret and the limits. Handlers hold no business logic of
 * their own beyond request/response shaping; the work is in the modules. */
#ifndef VS_APP_H
#define VS_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "vs_catalog.h"
#include "vs_crawl_runner.h"
#include "vs_engine.h"
#include "vs_fetch.h"
#include "vs_index.h"
#include "vs_pipeline.h"
#include "vs_queue.h"
#include "vs_store.h"
#include "vs_workers.h"

#define VS_APP_ENGINE_POOL 4

typedef struct vs_app_cfg {
    size_t max_body_bytes;       /* 413 above (default 32 MiB) */
    size_t max_pixels;           /* 413 above (default 50 MP) */
    int presign_ttl_s;           /* crop/thumb URL lifetime (default 3600) */
    const char *fetch_allow_cidrs; /* address ranges URL ingest may reach despite the rules */
    int open_mode;               /* 1 = no tenants yet: tenant "default", loopback only */
} vs_app_cfg;

typedef struct vs_app {
    vs_app_cfg cfg;
    vs_store *store;
    vs_queue *queue;
    vs_index *index;
    vs_catalog *catalog;
    const vs_engine *engine;
    vs_pipeline pipeline;
    vs_workers *workers;         /* may be NULL (API-only process) */
    vs_crawl_env crawl;          /* crawl jobs: crawl.db and what the runner borrows */
    vs_crawl_runner *crawler;    /* runs the API's crawl jobs; NULL in CLI tools */
    uint8_t secret[32];          /* signs blob URLs; from {data}/secret */
    /* engine workers for searches by image: checked out under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    vs_engine_worker *pool[VS_APP_ENGINE_POOL];
    int pool_free[VS_APP_ENGINE_POOL];
    int pool_n;
    /* request metrics */
    atomic_llong requests, errors_4xx, errors_5xx;
    atomic_llong search_count, search_ms_sum, search_hist[8];
    atomic_llong ingest_accepted;
    int64_t started_ms;
} vs_app;

/* The pipeline requests use now: its engine and active collections. */
const vs_pipeline *vs_app_pipeline(vs_app *a);

/* Borrows an engine worker for one request (waits if all are busy). */
vs_engine_worker *vs_app_engine_acquire(vs_app *a);
void vs_app_engine_release(vs_app *a, vs_engine_worker *w);

#endif
