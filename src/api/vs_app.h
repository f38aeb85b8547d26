/* vs_app.h - everything a request handler may use, owned by the process
 * (`visage serve`) and borrowed by the HTTP layer: backends, the pipeline
 * in use (a reindex swaps it), the worker pool, a small pool of engine
 * workers for search-by-image, the URL-signing secret and the limits. Handlers hold no business logic of
 * their own beyond request/response shaping; the work is in the modules. */
#ifndef VS_APP_H
#define VS_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "vs_catalog.h"
#include "vs_crawl_runner.h"
#include "vs_engine.h"
#include "vs_fetch.h"
#include "vs_health.h"
#include "vs_index.h"
#include "vs_pipeline.h"
#include "vs_queue.h"
#include "vs_store.h"
#include "vs_webhook.h"
#include "vs_workers.h"

#define VS_APP_ENGINE_POOL 4    /* engine workers per engine for queries */
#define VS_APP_ENGINES 4        /* engines a process may hold: its first, one per reindex */

typedef struct vs_app_cfg {
    size_t max_body_bytes;       /* 413 above (default 32 MiB) */
    size_t max_pixels;           /* 413 above (default 50 MP) */
    int presign_ttl_s;           /* crop/thumb URL lifetime (default 3600) */
    const char *fetch_allow_cidrs; /* address ranges URL ingest may reach despite the rules */
    int open_mode;               /* 1 = no tenants yet: tenant "default", loopback only */
    const char *admin_key;       /* $VISAGE_ADMIN_KEY: operator routes (reindex) with tenants; NULL: none */
    int threads;                 /* cores the process may use (a reindex's engine workers) */
    int query_threads;           /* threads each query engine worker's networks run on (0 = 1;
                                  * $VISAGE_QUERY_THREADS) */
    /* /readyz (vs_route_readyz) */
    const char *data_dir;        /* probed for writes and free space; NULL: not checked */
    uint64_t min_free_bytes;     /* $VISAGE_MIN_FREE_MB: not ready below (default 100 MB; 0 = no floor) */
    int ready_max_new_dead;      /* $VISAGE_READY_MAX_NEW_DEAD: not ready when this many messages were
                                  * dead-lettered in the last 5 minutes (default 10; 0 = not checked) */
    size_t query_max_pixels;     /* 413 above for an image to search/verify/identify/enroll/erase
                                  * by: decode+detect cost (default 12 MP) */
} vs_app_cfg;

/* What /readyz remembers between calls, under its own mutex: the data dir
 * probe (cached ~1 s so a busy probe stays cheap) and dead-letter samples. */
typedef struct vs_app_health {
    pthread_mutex_t mu;
    int64_t checked_ms;          /* monotonic time of the last probe; 0 = never */
    vs_dir_state dir;
    char dir_msg[512];
    vs_dead_watch dead;
} vs_app_health;

/* What the server's front door refused or cut, by reason (counted in
 * vs_app.refused, shown by /metrics as visage_http_refused_total). */
typedef enum vs_refusal {
    VS_REFUSED_RATE_IP,       /* 429: client address over its rate */
    VS_REFUSED_RATE_KEY,      /* 429: API key over its rate */
    VS_REFUSED_AUTH_FAIL,     /* 429: too many failed authentications from the address */
    VS_REFUSED_BODY_MEMORY,   /* 503: body memory budget spent */
    VS_REFUSED_QUEUE_FULL,    /* 503: ingest queue deeper than the bound */
    VS_REFUSED_HOST,          /* 421: open mode, Host not loopback */
    VS_REFUSED_ORIGIN,        /* 403: cross-origin, origin not allowed */
    VS_REFUSED_HEAD_TIMEOUT,  /* connection closed: request head too slow */
    VS_REFUSED_BODY_TIMEOUT,  /* connection closed: body (or reply) too slow */
    VS_REFUSED_QUERY_PIXELS,  /* 413: query image over query_max_pixels */
    VS_REFUSED_N
} vs_refusal;

typedef struct vs_app_reindex vs_app_reindex;

typedef struct vs_app {
    vs_app_cfg cfg;
    vs_store *store;
    vs_queue *queue;
    vs_index *index;
    vs_catalog *catalog;
    const vs_engine *engine;     /* the one the process started with (owned by its opener) */
    vs_pipeline pipeline;        /* the one the process started with */
    /* What requests and workers use now: &pipeline, or one a reindex
     * installed (owned by `reindex`, kept until close). Swapped holding
     * `writes` exclusive. */
    _Atomic(const vs_pipeline *) cur;
    /* Held shared by every write of images, faces, identities and blocks
     * (workers per image, the write routes); exclusive by a reindex for its
     * final pass and switch. Searches never take it. Writer-preferring. */
    pthread_rwlock_t writes;
    vs_workers *workers;         /* may be NULL (API-only process) */
    vs_workers *appliers;        /* API: applies distributed workers' results; may be NULL */
    vs_crawl_env crawl;          /* crawl jobs: crawl.db and what the runner borrows */
    vs_crawl_runner *crawler;    /* runs the API's crawl jobs; NULL in CLI tools */
    struct vs_people *people;    /* faces grouped into people (people.db + runner); NULL in CLI tools */
    vs_webhook_cfg webhook;      /* delivery settings ($VISAGE_WEBHOOK_*, the fetch allow list) */
    vs_webhook_runner *webhooks; /* delivers events to tenants' webhooks; NULL in CLI tools */
    vs_app_reindex *reindex;     /* the server's background reindex; NULL until one is asked */
    uint8_t secret[32];          /* signs blob URLs; from {data}/secret */
    /* engine workers for queries, each for one engine: checked out under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    vs_engine_worker *pool[VS_APP_ENGINE_POOL * VS_APP_ENGINES];
    const vs_engine *pool_engine[VS_APP_ENGINE_POOL * VS_APP_ENGINES];
    int pool_free[VS_APP_ENGINE_POOL * VS_APP_ENGINES];
    int pool_n;
    /* request metrics */
    atomic_llong requests, errors_4xx, errors_5xx;
    atomic_llong search_count, search_ms_sum, search_hist[8];
    atomic_llong ingest_accepted;
    atomic_llong refused[VS_REFUSED_N];
    int64_t started_ms;
    vs_app_health health;        /* /readyz; mutex set up by the opener */
} vs_app;

/* The pipeline requests use now: its engine and active collections. A
 * request takes it once (after the writes lock, for a write). */
const vs_pipeline *vs_app_pipeline(vs_app *a);
/* Makes p current for requests, workers and appliers. Caller holds
 * a->writes exclusive (or no other thread runs yet); p must live until
 * close. */
void vs_app_install(vs_app *a, const vs_pipeline *p);

/* Adds n engine workers for engine e to the query pool (all or none). */
vs_err vs_app_engine_add(vs_app *a, const vs_engine *e, int n, vs_error *err);
/* Borrows an engine worker of engine e for one request (waits if all of
 * e's are busy; e must have been added). */
vs_engine_worker *vs_app_engine_acquire(vs_app *a, const vs_engine *e);
void vs_app_engine_release(vs_app *a, vs_engine_worker *w);
/* Frees every engine worker of the pool (at close, after the server). */
void vs_app_engines_free(vs_app *a);

/* A reindex of the whole deployment to embedder e in the background
 * (vs_reindex.h), while the current engine and collections keep serving:
 * VS_ERR_INVALID_ARG when one is running. throttle_ms: a pause after each
 * image, to leave the cores to searches and ingest. */
vs_err vs_app_reindex_start(vs_app *a, vs_embedder e, int drop_blocks, int throttle_ms, vs_error *err);
/* {"state","embedder","phase","done","total","started_at","finished_at",
 * "report","error","model","collections","pending"}: a new object. */
json_t *vs_app_reindex_status(vs_app *a);
/* Stops a running reindex (resumable later) and waits for its thread. */
void vs_app_reindex_stop(vs_app *a);
/* Frees the engines and pipelines reindexes made: after vs_app_reindex_stop,
 * the workers and the engine pool are gone. */
void vs_app_reindex_free(vs_app *a);

#endif
