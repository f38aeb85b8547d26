/* vs_crawl_jobs.c - crawl jobs, their frontier and their saved images in
 * {data_dir}/crawl.db (SQLite, WAL). Tuned for one running crawl writing a
 * batch of discovered URLs per page and one "done" per fetched URL, plus an
 * occasional job read from the API; a resume walks a job's URLs once.
 *
 * Threading: one sqlite3 connection guarded by one mutex, as in the catalog
 * (vs_catalog.c explains why not a pool). The walks (vs_crawl_urls_each,
 * vs_crawl_images_each) read rows in small batches under the mutex and call
 * the callback with the mutex released, so a callback may call back into the
 * same db (mark a URL done, add URLs) without deadlocking. Holding the mutex
 * for the whole walk was rejected for that reason, and one snapshot of the
 * whole frontier in memory because a big crawl's frontier runs to millions
 * of URLs. The price: rows added during a walk behind its position are seen
 * by it too (the walk is keyed on seq / sha256, not a snapshot).
 *
 * The file is untrusted on read: every string copied into a fixed buffer is
 * length-checked and enums range-checked (VS_ERR_CORRUPT). */
#include "vs_crawl_jobs.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_hash.h"
#include "vs_sqlite.h"

/* Bump when the schema changes; open refuses files from a newer build. */
#define VS_CRAWL_SCHEMA_VERSION 1

/* Rows read per mutex hold in the walks. */
#define URL_BATCH 32
#define IMAGE_BATCH 64

struct vs_crawl_db {
    vs_sqlite_db sq;
};

/* urls.seq is the rowid: insertion order, never reused since rows are
 * never deleted. The (job_id, seq) index serves the ordered resume walk. */
static const char *k_schema =
    "CREATE TABLE IF NOT EXISTS jobs(id TEXT PRIMARY KEY, tenant TEXT NOT NULL, seed_url TEXT NOT NULL,"
    " max_depth INT, max_pages INT, max_images INT, delay_ms INT, require_face INT, operator_crawl INT,"
    " allow_hosts TEXT, state INT NOT NULL,"
    " requests INT, pages_fetched INT, images_fetched INT, images_saved INT, images_duplicate INT,"
    " images_skipped INT, robots_blocked INT, out_of_scope INT, redirects INT, errors INT, bytes INT,"
    " error TEXT, created_ms INT, started_ms INT, finished_ms INT,"
    " timeout_ms INT, max_image_bytes INT, user_agent TEXT);"
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, created_ms);"
    "CREATE TABLE IF NOT EXISTS urls(seq INTEGER PRIMARY KEY, job_id TEXT NOT NULL, url TEXT NOT NULL,"
    " referrer TEXT, depth INT, redirects INT, kind INT, done INT NOT NULL DEFAULT 0, UNIQUE(job_id, url));"
    "CREATE INDEX IF NOT EXISTS urls_job_seq ON urls(job_id, seq);"
    "CREATE TABLE IF NOT EXISTS images(job_id TEXT NOT NULL, sha256 TEXT NOT NULL, page_url TEXT,"
    " image_url TEXT, PRIMARY KEY(job_id, sha256));";

/* The job columns in the order read_job_row expects. */
#define JOB_COLUMNS                                                                                             \
    "id, tenant, seed_url, max_depth, max_pages, max_images, delay_ms, require_face, operator_crawl,"          \
    " allow_hosts, state, requests, pages_fetched, images_fetched, images_saved, images_duplicate,"             \
    " images_skipped, robots_blocked, out_of_scope, redirects, errors, bytes, error, created_ms, started_ms,"  \
    " finished_ms, timeout_ms, max_image_bytes, user_agent"
#define JOB_N_COUNTS 11
#define JOB_N_COLUMNS 29

/* Stable lower-case state names used in API responses. */
const char *vs_crawl_state_name(vs_crawl_state s) {
    switch (s) {
    case VS_CRAWL_QUEUED: return "queued";
    case VS_CRAWL_RUNNING: return "running";
    case VS_CRAWL_DONE: return "done";
    case VS_CRAWL_FAILED: return "failed";
    case VS_CRAWL_CANCELLED: return "cancelled";
    }
    return "unknown";
}

/* 1 when s is a non-empty string shorter than cap (fits a buffer of cap). */
static int fits(const char *s, size_t cap) {
    if (!s) return 0;
    size_t n = strnlen(s, cap);
    return n > 0 && n < cap;
}

/* Checks a job id argument: non-empty and short enough to be one of ours. */
static vs_err check_job_id(const char *id, const char *op, vs_error *err) {
    if (fits(id, VS_CRAWL_ID_MAX)) return VS_OK;
    return vs_fail(err, VS_ERR_INVALID_ARG, "%s: job id must be 1..%d characters", op, VS_CRAWL_ID_MAX - 1);
}

/* Copies text column i into dst[cap]; NULL reads as "". Returns -1 when the
 * stored text does not fit (the file was edited or is damaged). */
static int copy_column(sqlite3_stmt *st, int i, char *dst, size_t cap) {
    const char *s = (const char *)sqlite3_column_text(st, i);
    size_t n = s ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (n >= cap || (s && strlen(s) != n)) return -1;
    if (n) memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

/* The 11 counters of c in column order, so reads and writes share one list. */
static void count_fields(vs_crawl_counts *c, int64_t *f[JOB_N_COUNTS]) {
    f[0] = &c->requests;
    f[1] = &c->pages_fetched;
    f[2] = &c->images_fetched;
    f[3] = &c->images_saved;
    f[4] = &c->images_duplicate;
    f[5] = &c->images_skipped;
    f[6] = &c->robots_blocked;
    f[7] = &c->out_of_scope;
    f[8] = &c->redirects;
    f[9] = &c->errors;
    f[10] = &c->bytes;
}

/* Fills out from the current row of a SELECT JOB_COLUMNS statement,
 * checking what a damaged file could get wrong. Called with the mutex held. */
static vs_err read_job_row(vs_crawl_db *db, sqlite3_stmt *st, vs_crawl_job *out, vs_error *err) {
    memset(out, 0, sizeof *out);
    int64_t *f[JOB_N_COUNTS];
    count_fields(&out->counts, f);
    int state = sqlite3_column_int(st, 10);
    if (copy_column(st, 0, out->id, sizeof out->id) || copy_column(st, 1, out->tenant, sizeof out->tenant) ||
        copy_column(st, 2, out->seed_url, sizeof out->seed_url) ||
        copy_column(st, 9, out->allow_hosts, sizeof out->allow_hosts) ||
        copy_column(st, 22, out->error, sizeof out->error) ||
        copy_column(st, 28, out->user_agent, sizeof out->user_agent) || !vs_tenant_name_ok(out->tenant) ||
        state < VS_CRAWL_QUEUED || state > VS_CRAWL_CANCELLED) {
        char id[VS_CRAWL_ID_MAX];
        snprintf(id, sizeof id, "%s", out->id[0] ? out->id : "?");
        memset(out, 0, sizeof *out);
        return vs_fail(err, VS_ERR_CORRUPT, "crawl db %s: job row '%s' has a bad field", db->sq.path, id);
    }
    out->max_depth = sqlite3_column_int(st, 3);
    out->max_pages = sqlite3_column_int(st, 4);
    out->max_images = sqlite3_column_int(st, 5);
    out->delay_ms = sqlite3_column_int(st, 6);
    out->require_face = sqlite3_column_int(st, 7);
    out->operator_crawl = sqlite3_column_int(st, 8);
    out->state = (vs_crawl_state)state;
    for (int i = 0; i < JOB_N_COUNTS; i++) *f[i] = sqlite3_column_int64(st, 11 + i);
    out->created_ms = sqlite3_column_int64(st, 23);
    out->started_ms = sqlite3_column_int64(st, 24);
    out->finished_ms = sqlite3_column_int64(st, 25);
    out->timeout_ms = sqlite3_column_int(st, 26);
    out->max_image_bytes = sqlite3_column_int64(st, 27);
    return VS_OK;
}

void vs_crawl_job_limits_default(vs_crawl_job_limits *l) {
    *l = (vs_crawl_job_limits){.depth = 1, .max_pages = 100, .max_images = 10000, .delay_s = 1, .timeout_s = 15,
                               .max_image_mb = 16};
}

void vs_crawl_job_set_limits(vs_crawl_job *j, const vs_crawl_job_limits *l) {
    j->max_depth = (int)l->depth;
    j->max_pages = (int)l->max_pages;
    j->max_images = (int)l->max_images;
    j->delay_ms = (int)(l->delay_s * 1000 + 0.5); /* 0 = no delay */
    j->timeout_ms = (int)(l->timeout_s * 1000);
    j->max_image_bytes = (int64_t)(l->max_image_mb * 1024 * 1024);
}

/* Opens or creates {data_dir}/crawl.db, configures the connection and
 * checks or creates the schema; a file is refused rather than repaired. */
vs_err vs_crawl_db_open(const char *data_dir, vs_crawl_db **out, vs_error *err) {
    *out = NULL;
    vs_crawl_db *db = vs_calloc(1, sizeof *db);
    if (!db) return vs_fail(err, VS_ERR_NOMEM, "crawl db open: out of memory");
    /* synchronous=NORMAL: WAL keeps the file consistent on a crash, and
     * losing the last few "done" marks only refetches a few URLs, while a
     * sync per URL would slow the crawl down */
    vs_sqlite_spec spec = {NULL, "crawl db", k_schema, VS_CRAWL_SCHEMA_VERSION, "NORMAL", 0, NULL};
    vs_err rc = vs_sqlite_db_open(&db->sq, data_dir, "crawl.db", spec, err);
    if (rc != VS_OK) {
        vs_free(db);
        return rc;
    }
    *out = db;
    return VS_OK;
}

/* Closes the connection (WAL is checkpointed by SQLite) and frees db. */
void vs_crawl_db_close(vs_crawl_db *db) {
    if (!db) return;
    vs_sqlite_db_close(&db->sq);
    vs_free(db);
}

/* Inserts the job as a fresh one: QUEUED, zero counts, no error, not started.
 * The same values are written back to *job, so it equals what a later get
 * returns. The random id makes a collision (a constraint error) a non-event
 * in practice; it is reported, not retried. */
vs_err vs_crawl_job_create(vs_crawl_db *db, vs_crawl_job *job, vs_error *err) {
    if (!job) return vs_fail(err, VS_ERR_INVALID_ARG, "crawl job create: no job");
    vs_err rc = vs_tenant_check(job->tenant, "crawl job create", err);
    if (rc != VS_OK) return rc;
    if (!fits(job->seed_url, sizeof job->seed_url))
        return vs_fail(err, VS_ERR_INVALID_ARG, "crawl job create: seed URL must be 1..%zu characters",
                       sizeof job->seed_url - 1);
    if (strnlen(job->allow_hosts, sizeof job->allow_hosts) >= sizeof job->allow_hosts)
        return vs_fail(err, VS_ERR_INVALID_ARG, "crawl job create: allow_hosts is not terminated");
    if (strnlen(job->user_agent, sizeof job->user_agent) >= sizeof job->user_agent)
        return vs_fail(err, VS_ERR_INVALID_ARG, "crawl job create: user_agent is not terminated");
    uint8_t raw[12];
    if (vs_random_bytes(raw, sizeof raw) != 0)
        return vs_fail(err, VS_ERR_BACKEND, "crawl job create: no random bytes for the job id");
    char id[VS_CRAWL_ID_MAX];
    memcpy(id, "crawl_", 6);
    vs_hex(raw, sizeof raw, id + 6);
    int64_t now = vs_wall_ms();
    static const char *sql =
        "INSERT INTO jobs(id, tenant, seed_url, max_depth, max_pages, max_images, delay_ms, require_face,"
        " operator_crawl, allow_hosts, state, requests, pages_fetched, images_fetched, images_saved,"
        " images_duplicate, images_skipped, robots_blocked, out_of_scope, redirects, errors, bytes, error,"
        " created_ms, started_ms, finished_ms, timeout_ms, max_image_bytes, user_agent)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '', ?12, 0, 0,"
        " ?13, ?14, ?15)";
    pthread_mutex_lock(&db->sq.mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(&db->sq, sql, "insert job", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, id);
        vs_sqlite_bind_text(st, 2, job->tenant);
        vs_sqlite_bind_text(st, 3, job->seed_url);
        sqlite3_bind_int(st, 4, job->max_depth);
        sqlite3_bind_int(st, 5, job->max_pages);
        sqlite3_bind_int(st, 6, job->max_images);
        sqlite3_bind_int(st, 7, job->delay_ms);
        sqlite3_bind_int(st, 8, job->require_face);
        sqlite3_bind_int(st, 9, job->operator_crawl);
        vs_sqlite_bind_text(st, 10, job->allow_hosts);
        sqlite3_bind_int(st, 11, VS_CRAWL_QUEUED);
        sqlite3_bind_int64(st, 12, now);
        sqlite3_bind_int(st, 13, job->timeout_ms);
        sqlite3_bind_int64(st, 14, job->max_image_bytes);
        vs_sqlite_bind_text(st, 15, job->user_agent);
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&db->sq, err, "insert job");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&db->sq.mu);
    if (rc != VS_OK) return rc;
    memcpy(job->id, id, strlen(id) + 1);
    job->state = VS_CRAWL_QUEUED;
    memset(&job->counts, 0, sizeof job->counts);
    job->error[0] = '\0';
    job->created_ms = now;
    job->started_ms = job->finished_ms = 0;
    return VS_OK;
}

/* Reads one job; with a tenant, the tenant is part of the WHERE so another
 * tenant's job takes the same path, and message, as a missing one. */
vs_err vs_crawl_job_get(vs_crawl_db *db, const char *tenant, const char *id, vs_crawl_job *out, vs_error *err) {
    vs_err rc = check_job_id(id, "crawl job get", err);
    if (rc != VS_OK) return rc;
    if (tenant && (rc = vs_tenant_check(tenant, "crawl job get", err)) != VS_OK) return rc;
    pthread_mutex_lock(&db->sq.mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(&db->sq, "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2)",
                           "get job", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, id);
        vs_sqlite_bind_text(st, 2, tenant);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) rc = read_job_row(db, st, out, err);
        else if (s == SQLITE_DONE) rc = vs_fail(err, VS_ERR_NOT_FOUND, "crawl job %.40s not found", id);
        else rc = vs_sqlite_fail(&db->sq, err, "get job");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&db->sq.mu);
    return rc;
}

/* Up to cap jobs of the tenant, newest first. */
vs_err vs_crawl_job_list(vs_crawl_db *db, const char *tenant, vs_crawl_job *out, int cap, int *n, vs_error *err) {
    *n = 0;
    vs_err rc = vs_tenant_check(tenant, "crawl job list", err);
    if (rc != VS_OK) return rc;
    pthread_mutex_lock(&db->sq.mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(&db->sq,
                           "SELECT " JOB_COLUMNS " FROM jobs WHERE tenant = ?1 ORDER BY created_ms DESC, rowid DESC"
                           " LIMIT ?2",
                           "list jobs", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        sqlite3_bind_int(st, 2, cap);
        int s;
        while (rc == VS_OK && *n < cap && (s = sqlite3_step(st)) == SQLITE_ROW)
            if ((rc = read_job_row(db, st, &out[*n], err)) == VS_OK) (*n)++;
        if (rc == VS_OK && *n < cap && s != SQLITE_DONE) rc = vs_sqlite_fail(&db->sq, err, "list jobs");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&db->sq.mu);
    if (rc != VS_OK) *n = 0;
    return rc;
}

/* Steps a prepared UPDATE, finalizes it and reports the rows it changed. */
static vs_err step_update(vs_crawl_db *db, sqlite3_stmt *st, const char *op, int64_t *changed, vs_error *err) {
    vs_err rc = sqlite3_step(st) == SQLITE_DONE ? VS_OK : vs_sqlite_fail(&db->sq, err, op);
    if (rc == VS_OK && changed) *changed = sqlite3_changes(db->sq.db);
    sqlite3_finalize(st);
    return rc;
}

vs_err vs_crawl_jobs_requeue(vs_crawl_db *db, int64_t *n, vs_error *err) {
    pthread_mutex_lock(&db->sq.mu);
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&db->sq, "UPDATE jobs SET state = ?1 WHERE state = ?2", "requeue interrupted jobs", &st, err);
    if (rc == VS_OK) {
        sqlite3_bind_int(st, 1, VS_CRAWL_QUEUED);
        sqlite3_bind_int(st, 2, VS_CRAWL_RUNNING);
        rc = step_update(db, st, "requeue interrupted jobs", n, err);
    }
    pthread_mutex_unlock(&db->sq.mu);
    return rc;
}

/* Cancels the job when it is still QUEUED; a job that changed nothing is
 * looked up only then, to tell "not yours / no such job" (NOT_FOUND) from
 * "already running or ended" (*cancelled = 0). */
vs_err vs_crawl_job_cancel_queued(vs_crawl_db *db, const char *tenant, const char *id, int *cancelled,
                                  vs_error *err) {
    *cancelled = 0;
    vs_err rc = check_job_id(id, "crawl job cancel", err);
    if (rc == VS_OK) rc = vs_tenant_check(tenant, "crawl job cancel", err);
    if (rc != VS_OK) return rc;
    int64_t changed = 0;
    pthread_mutex_lock(&db->sq.mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(&db->sq,
                           "UPDATE jobs SET state = ?1, finished_ms = ?2 WHERE id = ?3 AND tenant = ?4 AND state = ?5",
                           "cancel job", &st, err);
    if (rc == VS_OK) {
        sqlite3_bind_int(st, 1, VS_CRAWL_CANCELLED);
        sqlite3_bind_int64(st, 2, vs_wall_ms());
        vs_sqlite_bind_text(st, 3, id);
        vs_sqlite_bind_text(st, 4, tenant);
        sqlite3_bind_int(st, 5, VS_CRAWL_QUEUED);
        rc = step_update(db, st, "cancel job", &changed, err);
    }
    pthread_mutex_unlock(&db->sq.mu);
    if (rc != VS_OK || changed > 0) {
        *cancelled = rc == VS_OK;
        return rc;
    }
    vs_crawl_job *job = vs_malloc(sizeof *job);
    if (!job) return vs_fail(err, VS_ERR_NOMEM, "crawl job cancel: out of memory");
    rc = vs_crawl_job_get(db, tenant, id, job, err); /* NOT_FOUND for another tenant's */
    vs_free(job);
    return rc;
}

/* Takes a damaged QUEUED row out of the queue: FAILED, with why. Inside
 * the caller's transaction, mutex held. */
static vs_err fail_bad_row_locked(vs_crawl_db *db, int64_t rowid, const char *why, vs_error *err) {
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&db->sq, "UPDATE jobs SET state = ?1, error = substr(?2, 1, 200) WHERE rowid = ?3",
                                  "fail bad job row", &st, err);
    if (rc != VS_OK) return rc;
    sqlite3_bind_int(st, 1, VS_CRAWL_FAILED);
    vs_sqlite_bind_text(st, 2, why);
    sqlite3_bind_int64(st, 3, rowid);
    if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&db->sq, err, "fail bad job row");
    sqlite3_finalize(st);
    return rc;
}

/* Picks and marks the next QUEUED job in one IMMEDIATE transaction, so two
 * claimers at once (runner threads, processes) never get the same job. A
 * damaged row is marked FAILED (and reported) instead of being picked first
 * forever, which would stop every job queued after it. */
vs_err vs_crawl_job_claim(vs_crawl_db *db, vs_crawl_job *out, int *found, vs_error *err) {
    *found = 0;
    int64_t now = vs_wall_ms();
    pthread_mutex_lock(&db->sq.mu);
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_exec(&db->sq, "BEGIN IMMEDIATE", "begin claim job", err);
    if (rc != VS_OK) {
        pthread_mutex_unlock(&db->sq.mu);
        return rc;
    }
    vs_crawl_job job;
    int have = 0;
    int64_t bad = 0;
    rc = vs_sqlite_prepare(&db->sq,
                 "SELECT " JOB_COLUMNS ", rowid FROM jobs WHERE state = ?1 ORDER BY created_ms, rowid LIMIT 1",
                 "select job to claim", &st, err);
    if (rc == VS_OK) {
        sqlite3_bind_int(st, 1, VS_CRAWL_QUEUED);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            rc = read_job_row(db, st, &job, err);
            have = rc == VS_OK;
            if (rc == VS_ERR_CORRUPT) bad = sqlite3_column_int64(st, JOB_N_COLUMNS);
        } else if (s != SQLITE_DONE) {
            rc = vs_sqlite_fail(&db->sq, err, "select job to claim");
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if (rc == VS_OK && have) {
        if (job.started_ms) now = job.started_ms; /* resumed: it started back then */
        rc = vs_sqlite_prepare(&db->sq, "UPDATE jobs SET state = ?1, started_ms = ?2 WHERE id = ?3", "mark job running",
                               &st, err);
        if (rc == VS_OK) {
            sqlite3_bind_int(st, 1, VS_CRAWL_RUNNING);
            sqlite3_bind_int64(st, 2, now);
            vs_sqlite_bind_text(st, 3, job.id);
            if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&db->sq, err, "mark job running");
            sqlite3_finalize(st);
        }
        job.state = VS_CRAWL_RUNNING;
        job.started_ms = now;
    }
    if (bad > 0) { /* commit the FAILED mark, then report the damage */
        vs_error why = *err;
        rc = fail_bad_row_locked(db, bad, why.msg, err);
        if (rc == VS_OK) rc = vs_sqlite_exec(&db->sq, "COMMIT", "commit claim job", err);
        if (rc == VS_OK) rc = VS_ERR_CORRUPT, *err = why;
        else vs_sqlite_rollback(&db->sq);
        pthread_mutex_unlock(&db->sq.mu);
        return rc;
    }
    if (rc == VS_OK) rc = vs_sqlite_exec(&db->sq, "COMMIT", "commit claim job", err);
    if (rc != VS_OK) vs_sqlite_rollback(&db->sq);
    pthread_mutex_unlock(&db->sq.mu);
    if (rc == VS_OK && have) {
        *out = job;
        *found = 1;
    }
    return rc;
}

/* Checks that job `id` exists, inside the caller's transaction, so rows are
 * never written for a job that is not there. Called with the mutex held. */
static vs_err check_job_exists(vs_crawl_db *db, const char *id, const char *op, vs_error *err) {
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&db->sq, "SELECT 1 FROM jobs WHERE id = ?1", op, &st, err);
    if (rc != VS_OK) return rc;
    vs_sqlite_bind_text(st, 1, id);
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE) rc = vs_fail(err, VS_ERR_NOT_FOUND, "%s: crawl job %.40s not found", op, id);
    else if (s != SQLITE_ROW) rc = vs_sqlite_fail(&db->sq, err, op);
    sqlite3_finalize(st);
    return rc;
}

/* Checks one frontier entry given to vs_crawl_urls_add. */
static vs_err check_url(const vs_crawl_url *u, int i, vs_error *err) {
    if (!fits(u->url, sizeof u->url))
        return vs_fail(err, VS_ERR_INVALID_ARG, "crawl urls add: url %d must be 1..%zu characters", i,
                       sizeof u->url - 1);
    if (strnlen(u->referrer, sizeof u->referrer) >= sizeof u->referrer)
        return vs_fail(err, VS_ERR_INVALID_ARG, "crawl urls add: referrer of url %d is not terminated", i);
    if (u->kind != VS_CRAWL_PAGE && u->kind != VS_CRAWL_IMAGE)
        return vs_fail(err, VS_ERR_INVALID_ARG, "crawl urls add: url %d has unknown kind %d", i, (int)u->kind);
    if (u->depth < 0 || u->redirects < 0)
        return vs_fail(err, VS_ERR_INVALID_ARG, "crawl urls add: url %d has a negative depth or redirect count", i);
    return VS_OK;
}

/* Adds the batch in one transaction (one sync per discovered batch). The
 * insert skips only a (job_id, url) conflict, so sqlite3_changes() says
 * whether each URL was new; a URL repeated within the batch is new once. On
 * error nothing is kept and added[] is all 0. */
vs_err vs_crawl_urls_add(vs_crawl_db *db, const char *job_id, const vs_crawl_url *urls, int n, int *added,
                         vs_error *err) {
    vs_err rc = check_job_id(job_id, "crawl urls add", err);
    if (rc != VS_OK) return rc;
    if (n < 0 || (n > 0 && !urls))
        return vs_fail(err, VS_ERR_INVALID_ARG, "crawl urls add: bad url count %d", n);
    for (int i = 0; i < n; i++)
        if ((rc = check_url(&urls[i], i, err)) != VS_OK) return rc;
    if (added) memset(added, 0, (size_t)n * sizeof *added);
    if (n == 0) return VS_OK;
    pthread_mutex_lock(&db->sq.mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_exec(&db->sq, "BEGIN IMMEDIATE", "begin add urls", err);
    if (rc != VS_OK) {
        pthread_mutex_unlock(&db->sq.mu);
        return rc;
    }
    rc = check_job_exists(db, job_id, "add urls", err);
    if (rc == VS_OK)
        rc = vs_sqlite_prepare(&db->sq,
                     "INSERT INTO urls(job_id, url, referrer, depth, redirects, kind, done)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, 0) ON CONFLICT(job_id, url) DO NOTHING",
                     "add urls", &st, err);
    for (int i = 0; rc == VS_OK && i < n; i++) {
        sqlite3_reset(st);
        vs_sqlite_bind_text(st, 1, job_id);
        vs_sqlite_bind_text(st, 2, urls[i].url);
        vs_sqlite_bind_text(st, 3, urls[i].referrer);
        sqlite3_bind_int(st, 4, urls[i].depth);
        sqlite3_bind_int(st, 5, urls[i].redirects);
        sqlite3_bind_int(st, 6, (int)urls[i].kind);
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&db->sq, err, "add urls");
        else if (added) added[i] = sqlite3_changes(db->sq.db) > 0;
    }
    sqlite3_finalize(st);
    if (rc == VS_OK) rc = vs_sqlite_exec(&db->sq, "COMMIT", "commit add urls", err);
    if (rc != VS_OK) vs_sqlite_rollback(&db->sq);
    pthread_mutex_unlock(&db->sq.mu);
    if (rc != VS_OK && added) memset(added, 0, (size_t)n * sizeof *added);
    return rc;
}

/* Writes the job's counts; inside the caller's transaction, mutex held. */
static vs_err write_counts_locked(vs_crawl_db *db, const char *job_id, const vs_crawl_counts *counts, vs_error *err) {
    static const char *sql =
        "UPDATE jobs SET requests = ?2, pages_fetched = ?3, images_fetched = ?4, images_saved = ?5,"
        " images_duplicate = ?6, images_skipped = ?7, robots_blocked = ?8, out_of_scope = ?9, redirects = ?10,"
        " errors = ?11, bytes = ?12 WHERE id = ?1";
    vs_crawl_counts k = *counts;
    int64_t *f[JOB_N_COUNTS];
    count_fields(&k, f);
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&db->sq, sql, "write counts", &st, err);
    if (rc != VS_OK) return rc;
    vs_sqlite_bind_text(st, 1, job_id);
    for (int i = 0; i < JOB_N_COUNTS; i++) sqlite3_bind_int64(st, 2 + i, *f[i]);
    if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&db->sq, err, "write counts");
    else if (sqlite3_changes(db->sq.db) == 0) rc = vs_fail(err, VS_ERR_NOT_FOUND, "crawl job %.40s not found", job_id);
    sqlite3_finalize(st);
    return rc;
}

/* Writes the changing part of a job: state, counts, error, started_ms and
 * finished_ms, in one transaction. Options, tenant and created_ms never
 * change after create. */
vs_err vs_crawl_job_update(vs_crawl_db *db, const vs_crawl_job *job, vs_error *err) {
    if (!job) return vs_fail(err, VS_ERR_INVALID_ARG, "crawl job update: no job");
    vs_err rc = check_job_id(job->id, "crawl job update", err);
    if (rc != VS_OK) return rc;
    if (job->state < VS_CRAWL_QUEUED || job->state > VS_CRAWL_CANCELLED)
        return vs_fail(err, VS_ERR_INVALID_ARG, "crawl job update: unknown state %d", (int)job->state);
    if (strnlen(job->error, sizeof job->error) >= sizeof job->error)
        return vs_fail(err, VS_ERR_INVALID_ARG, "crawl job update: error text is not terminated");
    pthread_mutex_lock(&db->sq.mu);
    rc = vs_sqlite_exec(&db->sq, "BEGIN IMMEDIATE", "begin update job", err);
    if (rc != VS_OK) {
        pthread_mutex_unlock(&db->sq.mu);
        return rc;
    }
    rc = write_counts_locked(db, job->id, &job->counts, err); /* NOT_FOUND for an unknown job */
    sqlite3_stmt *st = NULL;
    if (rc == VS_OK)
        rc = vs_sqlite_prepare(
            &db->sq, "UPDATE jobs SET state = ?2, error = ?3, started_ms = ?4, finished_ms = ?5 WHERE id = ?1",
            "update job", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, job->id);
        sqlite3_bind_int(st, 2, (int)job->state);
        vs_sqlite_bind_text(st, 3, job->error);
        sqlite3_bind_int64(st, 4, job->started_ms);
        sqlite3_bind_int64(st, 5, job->finished_ms);
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&db->sq, err, "update job");
        sqlite3_finalize(st);
    }
    if (rc == VS_OK) rc = vs_sqlite_exec(&db->sq, "COMMIT", "commit update job", err);
    if (rc != VS_OK) vs_sqlite_rollback(&db->sq);
    pthread_mutex_unlock(&db->sq.mu);
    return rc;
}

/* Inserts one saved image of the job (a repeat is ignored); inside the
 * caller's transaction, mutex held. *was_new may be NULL. */
static vs_err insert_image_locked(vs_crawl_db *db, const char *job_id, const char *sha256, const char *page_url,
                                  const char *image_url, int *was_new, vs_error *err) {
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&db->sq,
                        "INSERT INTO images(job_id, sha256, page_url, image_url) VALUES(?1, ?2, ?3, ?4)"
                        " ON CONFLICT(job_id, sha256) DO NOTHING",
                        "add image", &st, err);
    if (rc != VS_OK) return rc;
    vs_sqlite_bind_text(st, 1, job_id);
    vs_sqlite_bind_text(st, 2, sha256);
    vs_sqlite_bind_text(st, 3, page_url ? page_url : "");
    vs_sqlite_bind_text(st, 4, image_url ? image_url : "");
    if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&db->sq, err, "add image");
    else if (was_new) *was_new = sqlite3_changes(db->sq.db) > 0;
    sqlite3_finalize(st);
    return rc;
}

/* Marks the URL done; inside the caller's transaction, mutex held. */
static vs_err mark_done_locked(vs_crawl_db *db, const char *job_id, const char *url, vs_error *err) {
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&db->sq, "UPDATE urls SET done = 1 WHERE job_id = ?1 AND url = ?2", "mark url done",
                                  &st, err);
    if (rc != VS_OK) return rc;
    vs_sqlite_bind_text(st, 1, job_id);
    vs_sqlite_bind_text(st, 2, url);
    if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&db->sq, err, "mark url done");
    else if (sqlite3_changes(db->sq.db) == 0)
        rc = vs_fail(err, VS_ERR_NOT_FOUND, "crawl url done: job %.40s has no url %.200s", job_id, url);
    sqlite3_finalize(st);
    return rc;
}

vs_err vs_crawl_url_done(vs_crawl_db *db, const char *job_id, const char *url, const char *sha256,
                         const char *page_url, const vs_crawl_counts *counts, vs_error *err) {
    vs_err rc = check_job_id(job_id, "crawl url done", err);
    if (rc != VS_OK) return rc;
    if (!url || !*url) return vs_fail(err, VS_ERR_INVALID_ARG, "crawl url done: empty url");
    if (sha256 && !vs_sha256_hex_ok(sha256))
        return vs_fail(err, VS_ERR_INVALID_ARG, "crawl url done: sha256 must be 64 lower-case hex digits");
    pthread_mutex_lock(&db->sq.mu);
    rc = vs_sqlite_exec(&db->sq, "BEGIN IMMEDIATE", "begin url done", err);
    if (rc != VS_OK) {
        pthread_mutex_unlock(&db->sq.mu);
        return rc;
    }
    rc = mark_done_locked(db, job_id, url, err);
    if (rc == VS_OK && sha256) rc = insert_image_locked(db, job_id, sha256, page_url, url, NULL, err);
    if (rc == VS_OK && counts) rc = write_counts_locked(db, job_id, counts, err);
    if (rc == VS_OK) rc = vs_sqlite_exec(&db->sq, "COMMIT", "commit url done", err);
    if (rc != VS_OK) vs_sqlite_rollback(&db->sq);
    pthread_mutex_unlock(&db->sq.mu);
    return rc;
}

/* Reads up to URL_BATCH URLs of the job with seq > *after into batch and
 * pending; *got is how many, *after moves to the last seq read. Called with
 * the mutex held. */
static vs_err read_url_batch(vs_crawl_db *db, const char *job_id, int64_t *after, vs_crawl_url *batch, int *pending,
                             int *got, vs_error *err) {
    *got = 0;
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&db->sq,
                        "SELECT seq, url, referrer, depth, redirects, kind, done FROM urls"
                        " WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                        "read urls", &st, err);
    if (rc != VS_OK) return rc;
    vs_sqlite_bind_text(st, 1, job_id);
    sqlite3_bind_int64(st, 2, *after);
    sqlite3_bind_int(st, 3, URL_BATCH);
    int s = SQLITE_DONE;
    while (rc == VS_OK && (s = sqlite3_step(st)) == SQLITE_ROW) {
        vs_crawl_url *u = &batch[*got];
        int kind = sqlite3_column_int(st, 5);
        if (copy_column(st, 1, u->url, sizeof u->url) || !u->url[0] ||
            copy_column(st, 2, u->referrer, sizeof u->referrer) || (kind != VS_CRAWL_PAGE && kind != VS_CRAWL_IMAGE)) {
            rc = vs_fail(err, VS_ERR_CORRUPT, "crawl db %s: url row %lld of job %.40s has a bad field", db->sq.path,
                         (long long)sqlite3_column_int64(st, 0), job_id);
            break;
        }
        u->depth = sqlite3_column_int(st, 3);
        u->redirects = sqlite3_column_int(st, 4);
        u->kind = (vs_crawl_kind)kind;
        pending[*got] = sqlite3_column_int(st, 6) == 0;
        *after = sqlite3_column_int64(st, 0);
        (*got)++;
    }
    if (rc == VS_OK && s != SQLITE_DONE) rc = vs_sqlite_fail(&db->sq, err, "read urls");
    sqlite3_finalize(st);
    return rc;
}

/* Walks the job's URLs in insertion order, URL_BATCH rows per mutex hold;
 * fn runs without the mutex (see the top of the file). */
vs_err vs_crawl_urls_each(vs_crawl_db *db, const char *job_id,
                          int (*fn)(void *ctx, const vs_crawl_url *u, int pending), void *ctx, vs_error *err) {
    vs_err rc = check_job_id(job_id, "crawl urls each", err);
    if (rc != VS_OK) return rc;
    if (!fn) return vs_fail(err, VS_ERR_INVALID_ARG, "crawl urls each: no callback");
    vs_crawl_url *batch = vs_malloc(URL_BATCH * sizeof *batch);
    if (!batch) return vs_fail(err, VS_ERR_NOMEM, "crawl db %s: read urls: out of memory", db->sq.path);
    int pending[URL_BATCH];
    int64_t after = 0;
    for (;;) {
        int got = 0;
        pthread_mutex_lock(&db->sq.mu);
        rc = read_url_batch(db, job_id, &after, batch, pending, &got, err);
        pthread_mutex_unlock(&db->sq.mu);
        if (rc != VS_OK || got == 0) break;
        int stop = 0;
        for (int i = 0; i < got && !stop; i++) stop = fn(ctx, &batch[i], pending[i]) != 0;
        if (stop || got < URL_BATCH) break;
    }
    vs_free(batch);
    return rc;
}

/* Records one saved image of the job; a repeat leaves the first row. */
vs_err vs_crawl_image_add(vs_crawl_db *db, const char *job_id, const char *sha256, const char *page_url,
                          const char *image_url, int *added, vs_error *err) {
    if (added) *added = 0;
    vs_err rc = check_job_id(job_id, "crawl image add", err);
    if (rc != VS_OK) return rc;
    if (!vs_sha256_hex_ok(sha256))
        return vs_fail(err, VS_ERR_INVALID_ARG, "crawl image add: sha256 must be 64 lower-case hex digits");
    pthread_mutex_lock(&db->sq.mu);
    rc = vs_sqlite_exec(&db->sq, "BEGIN IMMEDIATE", "begin add image", err);
    if (rc != VS_OK) {
        pthread_mutex_unlock(&db->sq.mu);
        return rc;
    }
    rc = check_job_exists(db, job_id, "add image", err);
    int was_new = 0;
    if (rc == VS_OK) rc = insert_image_locked(db, job_id, sha256, page_url, image_url, &was_new, err);
    if (rc == VS_OK) rc = vs_sqlite_exec(&db->sq, "COMMIT", "commit add image", err);
    if (rc != VS_OK) vs_sqlite_rollback(&db->sq);
    pthread_mutex_unlock(&db->sq.mu);
    if (rc == VS_OK && added) *added = was_new;
    return rc;
}

vs_err vs_crawl_images_forget(vs_crawl_db *db, const char *tenant, const char *sha256, int64_t *n, vs_error *err) {
    if (n) *n = 0;
    if (!vs_tenant_name_ok(tenant) || !vs_sha256_hex_ok(sha256))
        return vs_fail(err, VS_ERR_INVALID_ARG, "crawl images forget: bad tenant or sha256");
    static const char *sql_urls =
        "DELETE FROM urls WHERE rowid IN (SELECT u.rowid FROM urls u JOIN images i ON i.job_id = u.job_id AND"
        " i.image_url = u.url JOIN jobs j ON j.id = i.job_id WHERE j.tenant = ?1 AND i.sha256 = ?2)";
    static const char *sql_images =
        "DELETE FROM images WHERE sha256 = ?2 AND job_id IN (SELECT id FROM jobs WHERE tenant = ?1)";
    pthread_mutex_lock(&db->sq.mu);
    vs_err rc = vs_sqlite_exec(&db->sq, "BEGIN IMMEDIATE", "begin forget image", err);
    for (int k = 0; rc == VS_OK && k < 2; k++) {
        sqlite3_stmt *st = NULL;
        if ((rc = vs_sqlite_prepare(&db->sq, k ? sql_images : sql_urls, "forget image", &st, err)) != VS_OK) break;
        vs_sqlite_bind_text(st, 1, tenant);
        vs_sqlite_bind_text(st, 2, sha256);
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&db->sq, err, "forget image");
        else if (k && n) *n = sqlite3_changes(db->sq.db);
        sqlite3_finalize(st);
    }
    if (rc == VS_OK) rc = vs_sqlite_exec(&db->sq, "COMMIT", "commit forget image", err);
    if (rc != VS_OK) vs_sqlite_rollback(&db->sq);
    pthread_mutex_unlock(&db->sq.mu);
    return rc;
}

vs_err vs_crawl_db_stats_get(vs_crawl_db *db, vs_crawl_db_stats *out, vs_error *err) {
    memset(out, 0, sizeof *out);
    int64_t *f[JOB_N_COUNTS];
    count_fields(&out->total, f);
    pthread_mutex_lock(&db->sq.mu);
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&db->sq,
                        "SELECT state, count(*), sum(requests), sum(pages_fetched), sum(images_fetched),"
                        " sum(images_saved), sum(images_duplicate), sum(images_skipped), sum(robots_blocked),"
                        " sum(out_of_scope), sum(redirects), sum(errors), sum(bytes) FROM jobs GROUP BY state",
                        "job stats", &st, err);
    int s = SQLITE_DONE;
    while (rc == VS_OK && (s = sqlite3_step(st)) == SQLITE_ROW) {
        int state = sqlite3_column_int(st, 0);
        if (state >= VS_CRAWL_QUEUED && state <= VS_CRAWL_CANCELLED) out->jobs[state] = sqlite3_column_int64(st, 1);
        for (int i = 0; i < JOB_N_COUNTS; i++) *f[i] += sqlite3_column_int64(st, 2 + i);
    }
    if (rc == VS_OK && s != SQLITE_DONE) rc = vs_sqlite_fail(&db->sq, err, "job stats");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->sq.mu);
    return rc;
}

/* Walks the job's images in sha256 order (the primary key's order, so each
 * batch is an index range), IMAGE_BATCH per mutex hold; fn runs without the
 * mutex. A non-zero return from fn stops the walk. */
vs_err vs_crawl_images_each(vs_crawl_db *db, const char *job_id, int (*fn)(void *ctx, const char *sha256),
                            void *ctx, vs_error *err) {
    vs_err rc = check_job_id(job_id, "crawl images each", err);
    if (rc != VS_OK) return rc;
    if (!fn) return vs_fail(err, VS_ERR_INVALID_ARG, "crawl images each: no callback");
    char batch[IMAGE_BATCH][VS_SHA256_HEX];
    char after[VS_SHA256_HEX] = "";
    for (;;) {
        int got = 0;
        pthread_mutex_lock(&db->sq.mu);
        sqlite3_stmt *st = NULL;
        rc = vs_sqlite_prepare(&db->sq,
                               "SELECT sha256 FROM images WHERE job_id = ?1 AND sha256 > ?2 ORDER BY sha256 LIMIT ?3",
                               "read images", &st, err);
        if (rc == VS_OK) {
            vs_sqlite_bind_text(st, 1, job_id);
            vs_sqlite_bind_text(st, 2, after);
            sqlite3_bind_int(st, 3, IMAGE_BATCH);
            int s = SQLITE_DONE;
            while ((s = sqlite3_step(st)) == SQLITE_ROW) {
                const char *sha = (const char *)sqlite3_column_text(st, 0);
                if (!vs_sha256_hex_ok(sha)) {
                    rc = vs_fail(err, VS_ERR_CORRUPT, "crawl db %s: image row of job %.40s has a bad sha256",
                                 db->sq.path, job_id);
                    break;
                }
                memcpy(batch[got++], sha, VS_SHA256_HEX);
            }
            if (rc == VS_OK && s != SQLITE_DONE) rc = vs_sqlite_fail(&db->sq, err, "read images");
            sqlite3_finalize(st);
        }
        pthread_mutex_unlock(&db->sq.mu);
        if (rc != VS_OK || got == 0) break;
        memcpy(after, batch[got - 1], VS_SHA256_HEX);
        int stop = 0;
        for (int i = 0; i < got && !stop; i++) stop = fn(ctx, batch[i]) != 0;
        if (stop || got < IMAGE_BATCH) break;
    }
    return rc;
}
