/* cli_system.c - the embedded system of one data dir: catalog, queue,
 * index, blob store, engine, pipeline, workers, engine pool and the URL
 * signing secret, opened and closed in one place. */
#include "cli_system.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "vs_erase.h"
#include "vs_events.h"
#include "vs_people.h"
#include "vs_hash.h"
#include "vs_health.h"
#include "vs_redact.h"

/* Reads DATA/secret, creating it (32 random bytes, mode 0600) if absent. */
static int load_secret(const char *dir, uint8_t secret[32]) {
    char path[1200];
    snprintf(path, sizeof path, "%s/secret", dir);
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, secret, 32);
        close(fd);
        if (n == 32) return 0;
        fprintf(stderr, "visage: %s: expected 32 bytes; delete it to make a new one\n", path);
        return -1;
    }
    if (vs_random_bytes(secret, 32) != 0) return -1;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, secret, 32) != 32 || fsync(fd) != 0) {
        fprintf(stderr, "visage: %s: %s\n", path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Env var or default. */
static const char *env_or(const char *name, const char *def) {
    const char *v = getenv(name);
    return v && *v ? v : def;
}

/* Takes the data dir's lock (one process owns an embedded index/catalog).
 * Each failure says what it is: a dir this user cannot write (read-only
 * mount, someone else's dir) is not a dir another process holds. */
static int lock_data_dir(cli_system *s) {
    char path[1200], msg[1400];
    snprintf(path, sizeof path, "%s/LOCK", s->data_dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        fprintf(stderr, "visage: data dir %s is not usable: open %s: %s\n", s->data_dir, path, strerror(errno));
        return -1;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            fprintf(stderr, "visage: data dir %s is in use by another visage process; "
                            "send work to it with --server URL instead\n", s->data_dir);
        else
            fprintf(stderr, "visage: data dir %s: lock %s: %s\n", s->data_dir, path, strerror(errno));
    } else if (vs_dir_check(s->data_dir, 0, msg, sizeof msg) == VS_DIR_UNWRITABLE) {
        /* an existing LOCK opens even where nothing new can be written */
        fprintf(stderr, "visage: %s\n", msg);
    } else {
        return 0;
    }
    close(s->lock_fd);
    s->lock_fd = -1;
    return -1;
}

/* /readyz settings: the data dir it probes, $VISAGE_MIN_FREE_MB (the free
 * space below which the server is not ready: 100 MB leaves room to finish
 * the images in hand and to erase) and $VISAGE_READY_MAX_NEW_DEAD. */
static void ready_cfg(vs_app_cfg *c, const char *data_dir) {
    c->data_dir = data_dir;
    const char *mb = getenv("VISAGE_MIN_FREE_MB"), *dead = getenv("VISAGE_READY_MAX_NEW_DEAD");
    long long v = mb && *mb ? atoll(mb) : 100;
    if (v > (1LL << 40)) v = 1LL << 40; /* a floor above any disk, without overflow */
    c->min_free_bytes = v > 0 ? (uint64_t)v << 20 : 0;
    c->ready_max_new_dead = dead && *dead ? atoi(dead) : 10;
}

/* Crawl failures of single URLs, as log lines on stderr. */
static void crawl_log(void *ctx, const char *line) {
    (void)ctx;
    char shown[2048];
    fprintf(stderr, "%s\n", vs_redact(line, shown, sizeof shown));
}

/* Sets up crawling on the open crawl.db and, for a server, starts the
 * runner of queued crawls (resuming one a restart interrupted). */
static vs_err start_crawl(cli_system *s, const cli_system_opts *o, vs_error *err) {
    vs_app *a = &s->app;
    vs_crawl_env *env = &a->crawl;
    env->store = a->store;
    env->catalog = a->catalog;
    env->queue = a->queue;
    env->engine = a->engine;
    env->allow_cidrs = a->cfg.fetch_allow_cidrs;
    env->max_pixels = a->cfg.max_pixels;
    env->log = crawl_log;
    const char *ni = getenv("VISAGE_CRAWL_NO_INGEST");
    env->no_ingest = ni && !strcmp(ni, "1");
    const char *jobs = getenv("VISAGE_CRAWL_JOBS");
    int threads = jobs && atoi(jobs) > 0 ? atoi(jobs) : 4;
    return o->crawl_runner ? vs_crawl_runner_start(env, threads, &a->crawler, err) : VS_OK;
}

/* A face of a watched person arrived: recorded as an event of the tenant
 * (GET /api/v1/events; delivered to its webhook when it has one). */
static void people_seen(void *ctx, const char *tenant, const char *person_id, const json_t *face) {
    vs_app *a = ctx;
    json_t *d = json_deep_copy(face);
    char *detail = NULL;
    vs_error err = {0};
    if (d) json_object_set_new(d, "person_id", json_string(person_id));
    if (d) detail = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    if (!detail || vs_event_add(a->catalog, tenant, "person_seen", detail, NULL, &err) != VS_OK)
        fprintf(stderr, "visage: people: tenant %s: the event for person %s was not recorded: %s\n", tenant, person_id,
                detail ? err.msg : "out of memory");
    else if (a->webhooks)
        vs_webhook_runner_wake(a->webhooks);
    free(detail);
}

/* 1 when environment variable name is set to value. */
static int env_is(const char *name, const char *value) {
    const char *v = getenv(name);
    return v && !strcmp(v, value);
}

/* Opens people.db (faces grouped into people) for a server; its runner
 * starts last (vs_people_start), once the index and the catalog serve.
 * VISAGE_PEOPLE_TICK_MS sets its pause between passes and
 * VISAGE_PEOPLE_EXACT_MAX the largest batch with exact neighbours (tests). */
static vs_err open_people(cli_system *s, vs_error *err) {
    vs_app *a = &s->app;
    vs_people_cfg pc;
    vs_people_cfg_default(&pc);
    const char *tick = getenv("VISAGE_PEOPLE_TICK_MS");
    if (tick && atoi(tick) > 0) pc.tick_ms = atoi(tick);
    const char *exact = getenv("VISAGE_PEOPLE_EXACT_MAX");
    if (exact && atoi(exact) >= 0) pc.exact_max = atoi(exact);
    vs_err rc = vs_people_open(s->data_dir, &a->pipeline, &pc, &a->people, err);
    if (rc == VS_OK) a->pipeline.people = a->people;
    return rc;
}

/* A positive whole number from environment variable name, else def; a
 * value that is not one is said on stderr and ignored. */
static int env_positive(const char *name, int def) {
    const char *v = getenv(name);
    if (!v) return def;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (*v && !*end && n > 0 && n <= 1000000000L) return (int)n;
    fprintf(stderr, "visage: %s='%.40s': want a positive whole number; using %d\n", name, v, def);
    return def;
}

/* For a server (the same processes that run crawls): the thread that
 * delivers tenants' events to their webhooks, under the fetch address
 * rules; $VISAGE_WEBHOOK_MAX_ATTEMPTS and $VISAGE_WEBHOOK_BACKOFF_MS tune
 * its retries (tests make them short), $VISAGE_EVENTS_KEEP_DAYS how long
 * events are kept. */
static vs_err start_webhooks(cli_system *s, const cli_system_opts *o, vs_error *err) {
    vs_app *a = &s->app;
    if (!o->crawl_runner) return VS_OK;
    a->webhook = (vs_webhook_cfg){.allow_cidrs = a->cfg.fetch_allow_cidrs,
                                  .max_attempts = env_positive("VISAGE_WEBHOOK_MAX_ATTEMPTS", 8),
                                  .backoff_ms = env_positive("VISAGE_WEBHOOK_BACKOFF_MS", 1000),
                                  .keep_days = env_positive("VISAGE_EVENTS_KEEP_DAYS", 30),
                                  .log = crawl_log};
    return vs_webhook_runner_start(a->catalog, &a->webhook, &a->webhooks, err);
}

/* Finishes erasures a crash cut short, before any worker or request runs.
 * A failure does not stop the start (the erasures stay started and are
 * tried again at the next one); it is said on stderr. */
static void resume_erasures(vs_app *a) {
    vs_error err = {0};
    int n = 0;
    vs_err rc = vs_erase_resume(&a->pipeline, &n, &err);
    if (n > 0) fprintf(stderr, "visage: finished %d erasure%s cut short by a restart\n", n, n == 1 ? "" : "s");
    if (rc != VS_OK) fprintf(stderr, "visage: erasures cut short by a restart are not finished yet: %s\n", err.msg);
}

/* The collections this process uses and the embedder they pin
 * (vs_collections.h): the catalog's active set, or for a worker the newest
 * set in the shared index it reads; VISAGE_EMBEDDER chooses only where
 * nothing is indexed yet, and must match otherwise. A worker without index
 * access cannot look: it runs VISAGE_EMBEDDER, and the index owner refuses
 * its results if that is not the index's model. */
static vs_err choose_model(vs_app *a, int worker, const char *want, vs_collections *coll, vs_embedder *emb,
                           vs_error *err) {
    vs_err rc = VS_OK;
    vs_collections_gen(1, coll);
    if (!worker) rc = vs_collections_load(a->catalog, coll, err);
    else if (a->index) rc = vs_collections_newest(a->index, coll, err);
    if (rc != VS_OK) return rc;
    if (a->index) return vs_collections_embedder(a->index, coll, want, emb, err);
    int e = want && *want ? vs_embedder_find(want) : VS_EMBEDDER_DEFAULT;
    if (e < 0) return vs_fail(err, VS_ERR_INVALID_ARG, "VISAGE_EMBEDDER=%.80s is not one of dlib, faceres", want);
    *emb = (vs_embedder)e;
    return VS_OK;
}

int cli_system_open(const cli_system_opts *o, cli_system *s) {
    memset(s, 0, sizeof *s);
    s->lock_fd = -1;
    snprintf(s->data_dir, sizeof s->data_dir, "%s", o->data_dir ? o->data_dir : env_or("VISAGE_DATA", "./visage-data"));
    int worker = o->role == CLI_ROLE_WORKER;
    const char *op = o->op ? o->op : "visage";
    if (!worker) {
        /* a new data dir has no tenant but "default": say so before making it */
        if (o->create_data && o->tenant && !cli_data_dir_exists(s->data_dir) && !cli_tenant_known(op, NULL, o->tenant))
            return -1;
        if (cli_data_dir(op, o->data_dir, o->create_data, s->data_dir, sizeof s->data_dir) != 0 ||
            lock_data_dir(s) != 0)
            return -1;
    }
    vs_app *a = &s->app;
    a->cfg.max_body_bytes = 32u << 20;
    a->cfg.max_pixels = VS_IMAGE_DEFAULT_MAX_PIXELS;
    a->cfg.presign_ttl_s = 3600;
    a->cfg.fetch_allow_cidrs = getenv("VISAGE_FETCH_ALLOW");
    a->cfg.open_mode = 1;
    a->cfg.admin_key = env_or("VISAGE_ADMIN_KEY", NULL);
    a->cfg.threads = cli_worker_count();
    /* 1 by default: two threads halve a FaceBoxes pass alone, but measured
     * inside the server (bench/serve.js) they gave no shorter searches */
    a->cfg.query_threads = 1;
    const char *qt = getenv("VISAGE_QUERY_THREADS");
    if (qt && atoi(qt) > 0) a->cfg.query_threads = atoi(qt) > 16 ? 16 : atoi(qt);
    ready_cfg(&a->cfg, worker ? NULL : s->data_dir);
    a->started_ms = vs_wall_ms();
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->health.mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    pthread_rwlockattr_t wa;
    pthread_rwlockattr_init(&wa);
#ifdef __GLIBC__
    /* busy workers take it shared back to back: a waiting reindex must get it */
    pthread_rwlockattr_setkind_np(&wa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    pthread_rwlock_init(&a->writes, &wa);
    pthread_rwlockattr_destroy(&wa);
    a->cfg.query_max_pixels = 12000000; /* a 4000x3000 phone photo; ~1-3 s of decode+detect on 2 cores */
    const char *qmp = getenv("VISAGE_QUERY_MAX_PIXELS");
    if (qmp && *qmp) {
        char *end;
        long long v = strtoll(qmp, &end, 10);
        if (*end || v < 1) {
            fprintf(stderr, "visage: VISAGE_QUERY_MAX_PIXELS='%.40s': want a positive whole number\n", qmp);
            goto fail;
        }
        a->cfg.query_max_pixels = (size_t)v;
    }
    vs_error err = {0};
    char store_url[1200];
    snprintf(store_url, sizeof store_url, "file://%s/blobs", s->data_dir);
    const char *queue_url = env_or("VISAGE_QUEUE", "embedded"), *index_url = env_or("VISAGE_INDEX", "embedded");
    vs_queue_opts qo = {.name = "face:ingest", .data_dir = s->data_dir, .visibility_ms = 60000, .max_attempts = 5};
    const char *vis = getenv("VISAGE_VISIBILITY_MS");
    if (vis) qo.visibility_ms = atoll(vis);
    int remote_queue = strcmp(queue_url, "embedded") != 0, remote_index = strcmp(index_url, "embedded") != 0;
    if (worker && !remote_queue) {
        fprintf(stderr, "visage: worker: VISAGE_QUEUE must name a shared queue (redis://host:port/db)\n");
        return -1;
    }
    if (!worker && load_secret(s->data_dir, a->secret) != 0) goto fail;
    if (!worker && vs_catalog_open(s->data_dir, &a->catalog, &err) != VS_OK) goto fail_err;
    if (!worker && o->tenant && !cli_tenant_known(op, a->catalog, o->tenant)) goto fail;
    /* before any worker starts: erasure (pipeline) forgets crawl.db rows too */
    if (!worker && vs_crawl_db_open(s->data_dir, &a->crawl.db, &err) != VS_OK) goto fail_err;
    if (vs_store_open(env_or("VISAGE_STORE", store_url), &a->store, &err) != VS_OK) goto fail_err;
    if (vs_queue_open(queue_url, &qo, &a->queue, &err) != VS_OK) goto fail_err;
    /* a worker reads a shared index (near-duplicate links) but never owns an embedded one */
    vs_index_opts io = {0};
    const char *ann = getenv("VISAGE_ANN_MIN_POINTS");
    if (ann) io.ann_min_points = strcmp(ann, "off") == 0 ? -1 : atoll(ann);
    if ((ann = getenv("VISAGE_ANN_M"))) io.ann_m = atoi(ann);
    if ((ann = getenv("VISAGE_ANN_EF_CONSTRUCTION"))) io.ann_ef_construction = atoi(ann);
    if ((ann = getenv("VISAGE_ANN_EF_SEARCH"))) io.ann_ef_search = atoi(ann);
    if ((!worker || remote_index) && vs_index_open_with(index_url, s->data_dir, &io, &a->index, &err) != VS_OK)
        goto fail_err;
    vs_collections coll;
    vs_embedder emb;
    if (choose_model(a, worker, o->embedder ? o->embedder : getenv("VISAGE_EMBEDDER"), &coll, &emb, &err) != VS_OK)
        goto fail_err;
    if (!(a->engine = cli_engine_load(o->models, 0, (int)emb))) goto fail;
    a->pipeline = (vs_pipeline){.store = a->store, .index = a->index, .catalog = a->catalog, .engine = a->engine,
                                .coll = coll, .crawl_db = a->crawl.db, .writes = &a->writes};
    vs_pipeline_cfg_default(&a->pipeline.cfg);
    /* before any worker or request: erasure takes faces out of their people */
    if (o->crawl_runner && !env_is("VISAGE_PEOPLE", "off") && open_people(s, &err) != VS_OK) goto fail_err;
    const char *nd = getenv("VISAGE_NEAR_DUP");
    if (nd && !strcmp(nd, "skip")) a->pipeline.cfg.near_dup_skip = 1;
    /* workers and the index owner apart: results travel on face:results */
    if (worker || (o->role == CLI_ROLE_API && remote_queue)) {
        vs_queue_opts ro = qo;
        ro.name = "face:results";
        if (vs_queue_open(queue_url, &ro, &s->results, &err) != VS_OK) goto fail_err;
        if (worker) a->pipeline.results = s->results;
        else if (vs_appliers_start(&a->pipeline, s->results, 1, &a->appliers, &err) != VS_OK) goto fail_err;
    }
    atomic_store(&a->cur, &a->pipeline);
    if (!worker) resume_erasures(a);
    if (vs_app_engine_add(a, a->engine, o->engine_pool, &err) != VS_OK) goto fail_err;
    vs_workers_opts wo = {.threads = o->workers, .nice = cli_worker_nice()};
    if (o->workers != 0 && vs_workers_start(&a->pipeline, a->queue, &wo, &a->workers, &err) != VS_OK) goto fail_err;
    if (!worker && start_crawl(s, o, &err) != VS_OK) goto fail_err;
    if (a->people && vs_people_start(a->people, people_seen, a, &err) != VS_OK) goto fail_err;
    if (!worker && start_webhooks(s, o, &err) != VS_OK) goto fail_err;
    return 0;
fail_err:
    cli_error(op, &err);
fail:
    cli_system_close(s);
    return -1;
}

void cli_system_close(cli_system *s) {
    vs_app *a = &s->app;
    vs_app_reindex_stop(a); /* first: it may hold the writes lock the workers wait for */
    vs_crawl_runner_stop(a->crawler); /* then the crawler: it queues images */
    a->crawler = NULL;
    vs_people_close(a->people); /* its runner reads the index and the catalog */
    a->people = NULL;
    a->pipeline.people = NULL;
    vs_webhook_runner_stop(a->webhooks); /* before the catalog it reads */
    a->webhooks = NULL;
    vs_workers_stop(a->workers);
    a->workers = NULL;
    vs_workers_stop(a->appliers);
    a->appliers = NULL;
    vs_app_engines_free(a);
    vs_app_reindex_free(a); /* its engines, once no worker or request holds them */
    if (a->index) a->index->ops->close(a->index);
    if (a->queue) a->queue->ops->close(a->queue);
    if (s->results) s->results->ops->close(s->results);
    s->results = NULL;
    vs_store_close(a->store);
    if (a->catalog) vs_catalog_close(a->catalog);
    vs_crawl_db_close(a->crawl.db); /* after the workers: erasure on arrival forgets crawl rows */
    vs_engine_free((vs_engine *)a->engine);
    pthread_rwlock_destroy(&a->writes);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->health.mu);
    memset(a, 0, sizeof *a);
    if (s->lock_fd >= 0) close(s->lock_fd);
    s->lock_fd = -1;
}

int cli_system_analyze(cli_system *s, const char *image, vs_faces *faces) {
    vs_error err = {0};
    vs_engine_worker *w = vs_app_engine_acquire(&s->app, s->app.engine);
    vs_err e = vs_engine_analyze_file(w, image, VS_ANALYZE_EMBED, faces, NULL, NULL, &err);
    vs_app_engine_release(&s->app, w);
    if (e == VS_OK) return 0;
    cli_error(image, &err);
    return -1;
}

void cli_system_drain(cli_system *s, void (*progress)(void *ctx, const vs_queue_stats *qs), void *ctx) {
    for (;;) {
        vs_queue_stats qs = {0};
        vs_error err;
        if (s->app.queue->ops->stats(s->app.queue, &qs, &err) != VS_OK) break;
        if (progress) progress(ctx, &qs);
        if (qs.ready == 0 && qs.in_flight == 0) break;
        usleep(250 * 1000);
    }
}
