/* vs_crawl_runner.c - the crawl job's sink (store raw, record, queue) and
 * the thread that runs queued jobs.
 *
 * Crash safety: a URL is marked done in crawl.db only after its image is
 * durably stored, recorded and queued, and an image is recorded as saved by
 * the job only after it was queued. So a crash at any point leaves the URL
 * pending and the resume fetches it again; the sha256 then finds the stored
 * image and the pipeline's idempotent ids keep the faces single. */
#include "vs_crawl_runner.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_redact.h"
#include "vs_hash.h"
#include "vs_image.h"
#include "vs_pipeline.h"
#include "vs_strset.h"

#define RUNNER_POLL_MS 2000
#define RUNNER_SAVE_MS 1000   /* counts are written to crawl.db this often */

/* State of one job run, the sink's context. */
typedef struct job_run {
    const vs_crawl_env *env;
    vs_crawl_job *job;
    vs_strset shas;            /* images this job saved (restored on resume) */
    vs_engine_worker *face;    /* require_face */
    char saved_sha[65];        /* the image of the URL being finished, if saved */
    char saved_url[VS_CRAWL_URL_MAX];
    int64_t last_save_ms;
} job_run;

/* Writes one log line through the environment, if it has a logger, with
 * the user:password@ of a seed (which resolved links inherit) hidden. */
static void run_log(const job_run *jr, const char *fmt, const char *a, const char *b) {
    if (!jr->env->log) return;
    char line[VS_ERROR_MSG_MAX + VS_CRAWL_URL_MAX + 64], shown[sizeof line];
    snprintf(line, sizeof line, fmt, a, b);
    jr->env->log(jr->env->log_ctx, vs_redact(line, shown, sizeof shown));
}

/* 1 when the image shows at least one face (one detector run). Decoding or
 * detection failures count as "no face": the image is skipped, not fatal. */
static int has_face(job_run *jr, const vs_crawl_image *img) {
    vs_faces f = {0};
    vs_decode_opts o = {.max_pixels = jr->env->max_pixels};
    vs_error err = {0};
    int yes = vs_engine_analyze_bytes(jr->face, img->data, img->len, &o, 0, &f, NULL, NULL, &err) == VS_OK && f.n > 0;
    vs_faces_free(&f);
    return yes;
}

/* Stores, records and queues one new image; *dup = 1 when the tenant had
 * it, 2 when the tenant erased it (then nothing is kept or queued). */
static vs_err save_image(job_run *jr, const vs_crawl_image *img, const char *sha, vs_image_format fmt, int *dup,
                         vs_error *err) {
    const vs_crawl_env *env = jr->env;
    vs_ingest_msg *m = vs_calloc(1, sizeof *m);
    if (!m) return vs_fail(err, VS_ERR_NOMEM, "crawl: out of memory");
    snprintf(m->tenant, sizeof m->tenant, "%s", jr->job->tenant);
    snprintf(m->sha256, sizeof m->sha256, "%s", sha);
    snprintf(m->bucket, sizeof m->bucket, "raw-images");
    vs_raw_key(m->tenant, sha, fmt, m->key, sizeof m->key);
    snprintf(m->site, sizeof m->site, "%s", img->site);
    /* shown to every reader of the tenant's results: no seed credentials */
    vs_url_redact(img->url, m->source_url, sizeof m->source_url);
    vs_url_redact(img->page_url, m->page_url, sizeof m->page_url);
    const char *shas[1] = {sha};
    int done = 0;
    vs_err rc = vs_store_put(env->store, m->bucket, m->key, img->data, img->len, NULL, err);
    if (rc == VS_OK) rc = vs_image_records_queue(env->catalog, m->tenant, shas, NULL, 1, &done, err);
    if (rc == VS_OK && done == 2) vs_store_del(env->store, m->bucket, m->key, NULL);
    char *body = NULL;
    if (rc == VS_OK && !done && !(body = vs_ingest_msg_json(m))) rc = vs_fail(err, VS_ERR_NOMEM, "crawl: out of memory");
    if (rc == VS_OK && !done) rc = env->queue->ops->push(env->queue, (const char *const *)&body, 1, NULL, err);
    free(body);
    vs_free(m);
    *dup = done;
    return rc;
}

/* sink->image: dedup by sha256 (job, then tenant), optional face check,
 * then store and queue. */
static vs_err sink_image(void *ctx, const vs_crawl_image *img, vs_crawl_image_outcome *out, vs_error *err) {
    job_run *jr = ctx;
    const vs_crawl_env *env = jr->env;
    char sha[65];
    vs_sha256_hex(img->data, img->len, sha);
    *out = VS_CRAWL_IMG_DUPLICATE;
    if (vs_strset_has(&jr->shas, sha)) return VS_OK;
    vs_image_format fmt;
    int w, h;
    vs_error pe = {0};
    vs_decode_opts o = {.max_pixels = env->max_pixels};
    if (vs_image_probe(img->data, img->len, &o, &fmt, &w, &h, &pe) != VS_OK) {
        *out = VS_CRAWL_IMG_SKIPPED;
        run_log(jr, "visage: crawl: %s %s", pe.msg, img->url);
        return VS_OK;
    }
    if (jr->face && !has_face(jr, img)) {
        *out = VS_CRAWL_IMG_SKIPPED;
        return VS_OK;
    }
    int dup = 0;
    vs_err rc = env->no_ingest ? VS_OK : save_image(jr, img, sha, fmt, &dup, err);
    if (rc != VS_OK) return rc;
    if (dup == 2) { /* the tenant erased this image: it stays out */
        *out = VS_CRAWL_IMG_SKIPPED;
        run_log(jr, "visage: crawl: image erased for this tenant, not indexed again %s%s", img->url, "");
        return VS_OK;
    }
    if (!env->no_ingest && !dup) { /* recorded with the URL's done mark and the counts, in sink_done */
        memcpy(jr->saved_sha, sha, sizeof sha);
        snprintf(jr->saved_url, sizeof jr->saved_url, "%s", img->url);
    }
    if (vs_strset_add(&jr->shas, sha) < 0) return vs_fail(err, VS_ERR_NOMEM, "crawl: out of memory");
    *out = dup ? VS_CRAWL_IMG_DUPLICATE : VS_CRAWL_IMG_SAVED;
    return VS_OK;
}

/* sink->discovered: the new URLs are in crawl.db before they are fetched. */
static vs_err sink_discovered(void *ctx, const vs_crawl_url *urls, int n, vs_error *err) {
    job_run *jr = ctx;
    return vs_crawl_urls_add(jr->env->db, jr->job->id, urls, n, NULL, err);
}

/* sink->done: never fetched again, also after a restart; the image it
 * saved and the counts go in the same transaction. A failure to write only
 * means a resume fetches the URL once more. */
static void sink_done(void *ctx, const vs_crawl_url *u, const vs_crawl_counts *counts) {
    job_run *jr = ctx;
    vs_error e = {0};
    const char *sha = jr->saved_sha[0] && !strcmp(jr->saved_url, u->url) ? jr->saved_sha : NULL;
    if (vs_crawl_url_done(jr->env->db, jr->job->id, u->url, sha, u->referrer, counts, &e) != VS_OK)
        run_log(jr, "visage: crawl: %s%s", e.msg, "");
    jr->saved_sha[0] = '\0';
}

/* sink->progress: counts into the job, written to crawl.db once a second. */
static void sink_progress(void *ctx, const vs_crawl_counts *k) {
    job_run *jr = ctx;
    jr->job->counts = *k;
    int64_t now = vs_now_ms();
    if (now - jr->last_save_ms >= RUNNER_SAVE_MS) {
        jr->last_save_ms = now;
        vs_crawl_job_update(jr->env->db, jr->job, NULL);
    }
    if (jr->env->progress) jr->env->progress(jr->env->log_ctx, jr->job);
}

/* sink->url_error: one log line per failed URL. */
static void sink_url_error(void *ctx, const vs_crawl_url *u, const char *msg) {
    if (strstr(msg, u->url)) run_log(ctx, "visage: crawl: %s%s", msg, "");
    else run_log(ctx, "visage: crawl: %s %s", msg, u->url);
}

/* A resume in progress: where the frontier and saved images go, and the
 * first failure (a walk stopped by its callback still returns VS_OK). */
typedef struct restore_ctx {
    vs_crawl *c;
    vs_strset *shas;
    vs_err rc;
    vs_error err;
} restore_ctx;

/* Resume: feeds every URL of an earlier run back into the crawl. */
static int restore_url(void *ctx, const vs_crawl_url *u, int pending) {
    restore_ctx *r = ctx;
    r->rc = vs_crawl_restore(r->c, u, pending, &r->err);
    return r->rc != VS_OK;
}

/* Resume: the images the job saved before. */
static int restore_sha(void *ctx, const char *sha) {
    restore_ctx *r = ctx;
    if (vs_strset_add(r->shas, sha) >= 0) return 0;
    r->rc = vs_fail(&r->err, VS_ERR_NOMEM, "crawl resume: out of memory for the saved images");
    return 1;
}

/* The crawl options of a job. API crawls get the address rules of URL
 * ingest; the operator's own crawls may reach any address. */
static void job_opts(const vs_crawl_env *env, const vs_crawl_job *job, vs_crawl_opts *o) {
    memset(o, 0, sizeof *o);
    o->max_depth = job->max_depth;
    o->max_pages = job->max_pages;
    o->max_images = job->max_images;
    o->delay_ms = job->delay_ms > 0 ? job->delay_ms : -1;
    o->allow_hosts = job->allow_hosts[0] ? job->allow_hosts : NULL;
    o->allow_all = job->operator_crawl;
    o->allow_cidrs = env->allow_cidrs;
    o->timeout_ms = job->timeout_ms;
    o->max_image_bytes = job->max_image_bytes;
    if (job->user_agent[0]) o->user_agent = job->user_agent;
    o->start = job->counts;
}

/* Builds the crawl of a job, restoring its frontier and saved images. */
static vs_err job_crawl(job_run *jr, vs_crawl **out, vs_error *err) {
    const vs_crawl_env *env = jr->env;
    vs_crawl_opts o;
    job_opts(env, jr->job, &o);
    vs_crawl_sink sink = {jr, sink_image, sink_discovered, sink_done, sink_progress, sink_url_error};
    vs_crawl *c = NULL;
    vs_err rc = vs_crawl_new(&o, &sink, &c, err);
    restore_ctx r = {c, &jr->shas, VS_OK, {0}};
    if (rc == VS_OK) rc = vs_crawl_urls_each(env->db, jr->job->id, restore_url, &r, err);
    if (rc == VS_OK && r.rc == VS_OK) rc = vs_crawl_images_each(env->db, jr->job->id, restore_sha, &r, err);
    if (rc == VS_OK && r.rc != VS_OK) { /* a job resumed without part of its frontier would end DONE too early */
        rc = r.rc;
        *err = r.err;
    }
    if (rc == VS_OK) rc = vs_crawl_seed(c, jr->job->seed_url, err);
    if (rc != VS_OK) {
        vs_crawl_free(c);
        return rc;
    }
    *out = c;
    return VS_OK;
}

vs_err vs_crawl_job_run(const vs_crawl_env *env, vs_crawl_job *job, const atomic_int *stop, vs_error *err) {
    job_run jr = {.env = env, .job = job};
    vs_crawl *c = NULL;
    vs_error e = {0};
    vs_err rc = VS_OK;
    if (job->require_face) {
        if (!env->engine) rc = vs_fail(&e, VS_ERR_UNSUPPORTED, "require_face needs the face models in this process");
        else rc = vs_engine_worker_new(env->engine, &jr.face, &e);
    }
    if (rc == VS_OK) rc = job_crawl(&jr, &c, &e);
    if (rc == VS_OK) rc = vs_crawl_run(c, stop, &e);
    if (c) vs_crawl_get_counts(c, &job->counts);
    if (rc == VS_OK && vs_crawl_seed_error(c) && job->counts.pages_fetched == 0 && job->counts.images_fetched == 0)
        rc = vs_fail(&e, VS_ERR_IO, "the seed URL failed: %s", vs_crawl_seed_error(c));
    int cancel = rc == VS_ERR_CANCELLED && stop && atomic_load(stop) == VS_CRAWL_STOP_CANCEL;
    if (rc == VS_ERR_CANCELLED && !cancel) {
        vs_crawl_job_update(env->db, job, NULL);
    } else {
        if (cancel) rc = VS_OK;
        job->state = cancel ? VS_CRAWL_CANCELLED : rc == VS_OK ? VS_CRAWL_DONE : VS_CRAWL_FAILED;
        snprintf(job->error, sizeof job->error, "%.*s", (int)sizeof job->error - 1, rc == VS_OK ? "" : e.msg);
        job->finished_ms = vs_wall_ms();
        vs_error ue = {0};
        if (vs_crawl_job_update(env->db, job, &ue) != VS_OK && rc == VS_OK) rc = vs_fail(&e, ue.code, "%s", ue.msg);
        else if (rc != VS_ERR_CANCELLED) rc = VS_OK;
    }
    vs_crawl_free(c);
    vs_strset_free(&jr.shas);
    vs_engine_worker_free(jr.face);
    if (rc != VS_OK && err) *err = e;
    return rc;
}

/* Adds the shas of the job's images to an array (for the summary). */
typedef struct sha_list {
    char (*v)[65];
    int n, cap, nomem;
} sha_list;

static int collect_sha(void *ctx, const char *sha) {
    sha_list *l = ctx;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        char(*v)[65] = vs_realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return l->nomem = 1;
        l->v = v;
        l->cap = cap;
    }
    memcpy(l->v[l->n++], sha, 65);
    return 0;
}

/* images_processed and faces_found of a job, from the catalog records of
 * the images it saved, and *rows: how many of those crawl.db still lists
 * (erasure forgets the others); -1 each when they cannot be read. */
static void job_faces(const vs_crawl_env *env, const vs_crawl_job *job, int64_t *processed, int64_t *faces,
                      int64_t *rows) {
    sha_list l = {0};
    *processed = *faces = *rows = -1;
    if (vs_crawl_images_each(env->db, job->id, collect_sha, &l, NULL) == VS_OK && !l.nomem) {
        *rows = l.n;
        const char **p = vs_calloc((size_t)(l.n ? l.n : 1), sizeof *p);
        for (int i = 0; p && i < l.n; i++) p[i] = l.v[i];
        if (p && vs_image_records_summary(env->catalog, job->tenant, p, l.n, processed, faces, NULL) != VS_OK)
            *processed = *faces = -1;
        vs_free(p);
    }
    vs_free(l.v);
}

json_t *vs_crawl_job_json(const vs_crawl_env *env, const vs_crawl_job *job) {
    const vs_crawl_counts *k = &job->counts;
    int64_t processed = 0, faces = 0, rows = 0, erased = -1;
    job_faces(env, job, &processed, &faces, &rows);
    if (processed >= 0) {
        /* an erased image leaves crawl.db: it counts as processed (it went
         * through), and as erased; only the rows still waiting are pending */
        erased = k->images_saved > rows ? k->images_saved - rows : 0;
        processed += erased;
    }
    char seed[VS_CRAWL_URL_MAX];
    vs_url_redact(job->seed_url, seed, sizeof seed); /* the crawler keeps the credentials; readers do not see them */
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,s:i,s:i,s:b}", "id", job->id, "tenant", job->tenant, "state",
                          vs_crawl_state_name(job->state), "seed_url", seed, "depth", job->max_depth,
                          "max_pages", job->max_pages, "max_images", job->max_images, "delay_ms", job->delay_ms,
                          "require_face", job->require_face);
    if (!o) return NULL;
    struct { const char *k; int64_t v; } f[] = {
        {"requests", k->requests}, {"pages_fetched", k->pages_fetched}, {"images_fetched", k->images_fetched},
        {"images_saved", k->images_saved}, {"images_duplicate", k->images_duplicate},
        {"images_skipped", k->images_skipped}, {"robots_blocked", k->robots_blocked},
        {"out_of_scope", k->out_of_scope}, {"redirects", k->redirects}, {"errors", k->errors}, {"bytes", k->bytes},
        {"images_processed", processed}, {"images_erased", erased}, {"faces_found", faces}, {"created_at", job->created_ms},
        {"started_at", job->started_ms}, {"finished_at", job->finished_ms},
    };
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) json_object_set_new(o, f[i].k, json_integer(f[i].v));
    json_object_set_new(o, "error", json_string(job->error));
    return o;
}

#define RUNNER_MAX_THREADS 16

/* One runner thread and the job it runs (id "" when idle). */
typedef struct runner_slot {
    struct vs_crawl_runner *r;
    pthread_t thread;
    int started;
    char job_id[VS_CRAWL_ID_MAX];   /* under r->mu */
    atomic_int stop;                /* VS_CRAWL_STOP_* for the job in hand */
} runner_slot;

struct vs_crawl_runner {
    vs_crawl_env env;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int woken;
    atomic_int shutdown;
    int n_slots;
    runner_slot slots[RUNNER_MAX_THREADS];
};

/* Waits up to ms for a wake-up or a shutdown. */
static void runner_wait(vs_crawl_runner *r, int ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&r->mu);
    while (!r->woken && !atomic_load(&r->shutdown))
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) != 0) break;
    r->woken = 0;
    pthread_mutex_unlock(&r->mu);
}

/* Records (or clears, with id NULL) the job a slot runs. */
static void slot_set_job_locked(runner_slot *s, const char *id) {
    snprintf(s->job_id, sizeof s->job_id, "%s", id ? id : "");
    atomic_store(&s->stop, atomic_load(&s->r->shutdown) ? VS_CRAWL_STOP_SHUTDOWN : 0);
}

static void slot_set_job(runner_slot *s, const char *id) {
    pthread_mutex_lock(&s->r->mu);
    slot_set_job_locked(s, id);
    pthread_mutex_unlock(&s->r->mu);
}

/* Claims the next queued job into the slot under the runner's lock, so a
 * cancel (which takes the same lock) sees a job either still QUEUED in
 * crawl.db or already in a slot, never in between. */
static vs_err claim_into(runner_slot *s, vs_crawl_job *job, int *found, vs_error *err) {
    pthread_mutex_lock(&s->r->mu);
    vs_err rc = vs_crawl_job_claim(s->r->env.db, job, found, err);
    if (rc == VS_OK && *found) slot_set_job_locked(s, job->id);
    pthread_mutex_unlock(&s->r->mu);
    return rc;
}

/* A runner thread: claim a job, run it, repeat; sleep when none. */
static void *runner_main(void *arg) {
    runner_slot *s = arg;
    vs_crawl_runner *r = s->r;
    vs_crawl_job *job = vs_malloc(sizeof *job);
    while (job && !atomic_load(&r->shutdown)) {
        int found = 0;
        vs_error e = {0};
        if (claim_into(s, job, &found, &e) != VS_OK) {
            if (r->env.log) r->env.log(r->env.log_ctx, e.msg);
            runner_wait(r, RUNNER_POLL_MS);
            continue;
        }
        if (!found) {
            runner_wait(r, RUNNER_POLL_MS);
            continue;
        }
        vs_crawl_runner_wake(r); /* another idle thread may take the next job */
        if (vs_crawl_job_run(&r->env, job, &s->stop, &e) != VS_OK && e.code != VS_ERR_CANCELLED && r->env.log)
            r->env.log(r->env.log_ctx, e.msg);
        slot_set_job(s, NULL);
    }
    vs_free(job);
    return NULL;
}

vs_err vs_crawl_runner_start(const vs_crawl_env *env, int threads, vs_crawl_runner **out, vs_error *err) {
    *out = NULL;
    vs_err rc = vs_crawl_jobs_requeue(env->db, NULL, err);
    if (rc != VS_OK) return rc;
    vs_crawl_runner *r = vs_calloc(1, sizeof *r);
    if (!r) return vs_fail(err, VS_ERR_NOMEM, "crawl runner: out of memory");
    r->env = *env;
    r->n_slots = threads < 1 ? 1 : threads > RUNNER_MAX_THREADS ? RUNNER_MAX_THREADS : threads;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    for (int i = 0; i < r->n_slots; i++) {
        r->slots[i].r = r;
        if (pthread_create(&r->slots[i].thread, NULL, runner_main, &r->slots[i]) != 0) {
            vs_crawl_runner_stop(r);
            return vs_fail(err, VS_ERR_BACKEND, "crawl runner: cannot start its threads");
        }
        r->slots[i].started = 1;
    }
    *out = r;
    return VS_OK;
}

void vs_crawl_runner_wake(vs_crawl_runner *r) {
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->woken = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

int vs_crawl_runner_cancel(vs_crawl_runner *r, const char *id) {
    int hit = 0;
    if (!r || !id) return 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n_slots; i++)
        if (!strcmp(r->slots[i].job_id, id)) {
            atomic_store(&r->slots[i].stop, VS_CRAWL_STOP_CANCEL);
            hit = 1;
        }
    pthread_mutex_unlock(&r->mu);
    return hit;
}

void vs_crawl_runner_stop(vs_crawl_runner *r) {
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->shutdown, 1);
    for (int i = 0; i < r->n_slots; i++)
        if (r->slots[i].job_id[0]) atomic_store(&r->slots[i].stop, VS_CRAWL_STOP_SHUTDOWN);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < r->n_slots; i++)
        if (r->slots[i].started) pthread_join(r->slots[i].thread, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    vs_free(r);
}
