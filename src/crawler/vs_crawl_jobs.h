/* vs_crawl_jobs.h - crawl jobs and their frontier, kept in their own SQLite
 * file ({data_dir}/crawl.db, WAL) so a crawl survives a restart: the job row
 * (state, options, counts), every URL the job has queued (the dedup set and
 * the frontier at once: pending or done), and the images it saved. The
 * catalog stays small and the frontier of a big crawl does not bloat it.
 * Thread-safe: one connection behind one mutex, like the catalog. */
#ifndef VS_CRAWL_JOBS_H
#define VS_CRAWL_JOBS_H

#include <stdint.h>

#include "vs_catalog.h"
#include "vs_crawl.h"
#include "vs_err.h"

typedef struct vs_crawl_db vs_crawl_db;

typedef enum vs_crawl_state {
    VS_CRAWL_QUEUED = 0,
    VS_CRAWL_RUNNING,
    VS_CRAWL_DONE,
    VS_CRAWL_FAILED,
    VS_CRAWL_CANCELLED,
} vs_crawl_state;

/* "queued", "running", "done", "failed", "cancelled". */
const char *vs_crawl_state_name(vs_crawl_state s);

#define VS_CRAWL_ID_MAX 40

/* One job. Options are the crawl's own (vs_crawl_opts fields that make sense
 * to keep); counts are those of vs_crawl_counts, updated while it runs. */
typedef struct vs_crawl_job {
    char id[VS_CRAWL_ID_MAX];      /* "crawl_" + 24 hex digits, random */
    char tenant[VS_TENANT_MAX];
    char seed_url[VS_CRAWL_URL_MAX];
    int max_depth;
    int max_pages;
    int max_images;
    int delay_ms;                  /* per-host delay between requests */
    int require_face;              /* skip images with no face */
    int operator_crawl;            /* 1: started from the command line, may reach any address */
    char allow_hosts[512];         /* extra hosts in scope, comma-separated */
    int timeout_ms;                /* per transfer; 0 = the crawler's default */
    int64_t max_image_bytes;       /* 0 = the crawler's default */
    char user_agent[200];          /* "" = the crawler's default */
    vs_crawl_state state;
    vs_crawl_counts counts;
    char error[256];               /* why the job failed, or "" */
    int64_t created_ms, started_ms, finished_ms; /* wall clock ms; 0 = not yet */
} vs_crawl_job;

/* Opens (creating if needed) {data_dir}/crawl.db. A file of a newer schema ->
 * VS_ERR_UNSUPPORTED; not a database -> VS_ERR_BACKEND. */
vs_err vs_crawl_db_open(const char *data_dir, vs_crawl_db **out, vs_error *err);
void vs_crawl_db_close(vs_crawl_db *db);

/* A job's limits as people give them (the CLI's options, the API's
 * fields): counts, seconds and MiB. vs_crawl_job_limits_default fills in
 * the defaults both use; vs_crawl_job_set_limits stores them in the job's
 * own units (ms, bytes). */
typedef struct vs_crawl_job_limits {
    double depth, max_pages, max_images, delay_s, timeout_s, max_image_mb;
} vs_crawl_job_limits;
void vs_crawl_job_limits_default(vs_crawl_job_limits *l);
void vs_crawl_job_set_limits(vs_crawl_job *job, const vs_crawl_job_limits *l);

/* Inserts a new job in state QUEUED; fills job->id and job->created_ms.
 * tenant must be a valid tenant name and seed_url non-empty (INVALID_ARG). */
vs_err vs_crawl_job_create(vs_crawl_db *db, vs_crawl_job *job, vs_error *err);

/* Reads job `id`. With tenant non-NULL, a job of another tenant is
 * VS_ERR_NOT_FOUND exactly like a missing one (no existence leak). */
vs_err vs_crawl_job_get(vs_crawl_db *db, const char *tenant, const char *id, vs_crawl_job *out, vs_error *err);

/* Claims the job to run next: the oldest QUEUED one, which becomes RUNNING
 * (started_ms set unless it has one from an earlier run). *found = 0 when
 * there is none. Atomic: concurrent claimers never get the same job. */
vs_err vs_crawl_job_claim(vs_crawl_db *db, vs_crawl_job *out, int *found, vs_error *err);

/* At start-up, before any claim: jobs left RUNNING by a process that died
 * go back to QUEUED, to be claimed (and resumed) again. *n may be NULL. */
vs_err vs_crawl_jobs_requeue(vs_crawl_db *db, int64_t *n, vs_error *err);

/* Up to cap jobs of tenant, newest first, into out; *n = how many. */
vs_err vs_crawl_job_list(vs_crawl_db *db, const char *tenant, vs_crawl_job *out, int cap, int *n, vs_error *err);

/* Cancels job id of tenant if it is still QUEUED (state CANCELLED,
 * finished_ms set): *cancelled = 1 then, else 0 (running or ended; a
 * running job is stopped by its runner). Another tenant's job or a missing
 * one is VS_ERR_NOT_FOUND. */
vs_err vs_crawl_job_cancel_queued(vs_crawl_db *db, const char *tenant, const char *id, int *cancelled,
                                  vs_error *err);

/* Writes state, counts, error and the times of job (matched by id). */
vs_err vs_crawl_job_update(vs_crawl_db *db, const vs_crawl_job *job, vs_error *err);

/* Adds n URLs to the job's frontier in one transaction. added[i] = 1 when
 * urls[i].url was new to the job (queued as pending), 0 when the job had it
 * already (pending or done). added may be NULL. */
vs_err vs_crawl_urls_add(vs_crawl_db *db, const char *job_id, const vs_crawl_url *urls, int n, int *added,
                         vs_error *err);

/* Marks one URL of the job done (it will not be fetched again on resume)
 * and, in the same transaction, records the image it saved (sha256 not
 * NULL; image_url = url, found on page_url) and the job's counts (counts
 * not NULL). A crash therefore never separates them: after a restart, the
 * counts describe exactly the URLs crawl.db has as done. A url the job
 * never queued is VS_ERR_NOT_FOUND (and nothing is written). */
vs_err vs_crawl_url_done(vs_crawl_db *db, const char *job_id, const char *url, const char *sha256,
                         const char *page_url, const vs_crawl_counts *counts, vs_error *err);

/* Calls fn for every URL of the job, oldest first, with pending = 1 for
 * those not done yet; used to rebuild the frontier and the dedup set on
 * resume. A non-zero return from fn stops the walk (not an error). */
vs_err vs_crawl_urls_each(vs_crawl_db *db, const char *job_id,
                          int (*fn)(void *ctx, const vs_crawl_url *u, int pending), void *ctx, vs_error *err);

/* Records that the job saved image sha256 (found at image_url on page_url).
 * *added = 0 when the job had recorded it already. */
vs_err vs_crawl_image_add(vs_crawl_db *db, const char *job_id, const char *sha256, const char *page_url,
                          const char *image_url, int *added, vs_error *err);

/* Erasure: removes every trace of image sha256 from the tenant's jobs: the
 * saved-image rows and the frontier rows of the URLs it was fetched from.
 * *n (may be NULL) = image rows removed. A later crawl may fetch it again. */
vs_err vs_crawl_images_forget(vs_crawl_db *db, const char *tenant, const char *sha256, int64_t *n, vs_error *err);

/* For /metrics: jobs per state (indexed by vs_crawl_state) and the sums of
 * the counts over all jobs. */
typedef struct vs_crawl_db_stats {
    int64_t jobs[VS_CRAWL_CANCELLED + 1];
    vs_crawl_counts total;
} vs_crawl_db_stats;
vs_err vs_crawl_db_stats_get(vs_crawl_db *db, vs_crawl_db_stats *out, vs_error *err);

/* Calls fn for every image sha256 the job saved. */
vs_err vs_crawl_images_each(vs_crawl_db *db, const char *job_id, int (*fn)(void *ctx, const char *sha256),
                            void *ctx, vs_error *err);

#endif
