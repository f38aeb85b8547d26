/* vs_crawl_runner.h - crawl jobs end to end: runs a job of crawl.db with the
 * crawler, storing each new image raw (raw-images/{tenant}/{sha256}.{ext})
 * and queueing it for the face pipeline with its site, image URL and page
 * URL: the auto-vectorisation trigger. A background runner claims and runs
 * jobs one at a time (the API's crawls), resuming one a restart interrupted.
 * `visage crawl` runs its job directly. */
#ifndef VS_CRAWL_RUNNER_H
#define VS_CRAWL_RUNNER_H

#include <jansson.h>
#include <stdatomic.h>

#include "vs_catalog.h"
#include "vs_crawl_jobs.h"
#include "vs_engine.h"
#include "vs_queue.h"
#include "vs_store.h"

/* Everything borrowed; all thread-safe. */
typedef struct vs_crawl_env {
    vs_store *store;
    vs_catalog *catalog;
    vs_queue *queue;            /* face:ingest */
    vs_crawl_db *db;
    const vs_engine *engine;    /* for require_face; NULL = the option is refused */
    const char *allow_cidrs;    /* address ranges API crawls may reach (VISAGE_FETCH_ALLOW) */
    size_t max_pixels;          /* image header budget (0 = default) */
    int no_ingest;              /* benchmark: images are counted, not stored or queued */
    /* optional: one line per failed URL, and progress; ctx is log_ctx */
    void (*log)(void *ctx, const char *line);
    void (*progress)(void *ctx, const vs_crawl_job *job);
    void *log_ctx;
} vs_crawl_env;

/* Runs job (state RUNNING, claimed or just created) to its end: resumes its
 * frontier when crawl.db has one, writes counts while it runs and the final
 * state (DONE, or FAILED with the reason). *stop = VS_CRAWL_STOP_SHUTDOWN
 * ends the run with VS_ERR_CANCELLED and the job stays RUNNING, to be
 * resumed; VS_CRAWL_STOP_CANCEL ends it for good (state CANCELLED, VS_OK).
 * Otherwise VS_OK, even for a FAILED job (its error is in job->error). */
enum { VS_CRAWL_STOP_SHUTDOWN = 1, VS_CRAWL_STOP_CANCEL = 2 };
vs_err vs_crawl_job_run(const vs_crawl_env *env, vs_crawl_job *job, const atomic_int *stop, vs_error *err);

/* The job as the API and the CLI show it, with images_processed and
 * faces_found read from the catalog. NULL on allocation failure. */
json_t *vs_crawl_job_json(const vs_crawl_env *env, const vs_crawl_job *job);

/* The background runner: `threads` jobs at a time (a polite crawl mostly
 * waits, so one tenant's big crawl should not hold up everyone else's).
 * Start-up first requeues the jobs a dead process left RUNNING. */
typedef struct vs_crawl_runner vs_crawl_runner;
vs_err vs_crawl_runner_start(const vs_crawl_env *env, int threads, vs_crawl_runner **out, vs_error *err);
/* Asks the job id, if one of this runner's threads runs it, to stop for
 * good; 1 when it was running here. */
int vs_crawl_runner_cancel(vs_crawl_runner *r, const char *id);
/* A job was queued: look now rather than at the next poll. */
void vs_crawl_runner_wake(vs_crawl_runner *r);
/* Stops the running job (it resumes at the next start) and joins. */
void vs_crawl_runner_stop(vs_crawl_runner *r);

#endif
