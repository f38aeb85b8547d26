/* vs_queue_sqlite.c - the "embedded" queue: {data_dir}/queue.db, SQLite in WAL
 * mode. Tuned for one process with a handful of worker threads and bursts of
 * batched pushes (bulk ingest, crawls): a batch is one transaction with one
 * fsync, a pop or ack is a small write transaction without one.
 *
 * Threading: one sqlite3 connection per queue, every use of it (and of its
 * prepared statements) under `mu`. SQLite serialises writers on a database
 * anyway, and every queue operation writes (pop leases, ack deletes), so a
 * connection per thread would only trade our mutex for SQLite's file lock
 * plus busy-waiting, and a pool of connections would buy nothing but
 * SQLITE_BUSY retries. The connection is opened NOMUTEX because `mu` already
 * gives it to one thread at a time. `cv` (with `mu`) is how a push, a nack or
 * wake() in this process rouses pops that wait for work; they also re-poll at
 * least every POLL_MS for what no signal announces: pushes by other
 * processes on the same file and leases that expire. `shutdown`, set by
 * wake() under `mu`, makes every pop return VS_ERR_NOT_FOUND at once until
 * close. list_dead copies rows out before calling back, so a callback may
 * use the queue. close must not race with other calls (the caller's job).
 *
 * Durability: "an acknowledged image is never lost" rests on push, so push
 * runs with synchronous=FULL (the WAL is fsynced at its commit). Everything
 * else runs with synchronous=NORMAL: in WAL mode that is still safe against
 * a process crash, and what a power cut can undo is a lease, an ack or a
 * retry delay - each of which only means one more delivery, which
 * at-least-once and the pipeline's deterministic ids already allow. A later
 * FULL commit syncs those earlier NORMAL ones too.
 *
 * Time: leases and retries are wall-clock milliseconds (vs_wall_ms) because
 * they outlive the process; a clock stepped back lengthens leases, a clock
 * stepped forward ends them early (one more delivery). */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "vs_alloc.h"
#include "vs_hash.h"
#include "vs_queue_internal.h"
#include "vs_sqlite.h"

#define POLL_MS 200
#define BUSY_TIMEOUT_MS 5000
#define APP_ID 0x56535131 /* "VSQ1": marks a visage queue file */
#define SCHEMA_VERSION 1

static const char *const schema_sql =
    "CREATE TABLE messages("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"  /* AUTOINCREMENT: an id is never reused, even after acks */
    " body TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"   /* deliveries so far */
    " visible_at INTEGER NOT NULL,"           /* wall ms: ready when <= now */
    " leased INTEGER NOT NULL DEFAULT 0,"     /* 1 while delivered and not nacked: for stats */
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE dead("
    " id INTEGER PRIMARY KEY, body TEXT NOT NULL, last_error TEXT,"
    " attempts INTEGER NOT NULL, failed_at INTEGER NOT NULL);"
    "CREATE INDEX dead_by_time ON dead(failed_at);"
    "CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    "INSERT INTO meta(k, v) VALUES('acked_total', 0);";

/* The prepared statements, reused for every call (the push fast path). No
 * index on visible_at on purpose: S_NEXT walks the rowid order and stops at
 * the first ready row, so its cost is the number of leased or delayed rows
 * ahead of it, not the size of a ready backlog. */
enum {
    S_BEGIN, S_COMMIT, S_ROLLBACK, S_SYNC_FULL, S_SYNC_NORMAL, S_INSERT, S_NEXT, S_LEASE, S_GET, S_TO_DEAD,
    S_DELETE, S_ACKED, S_RETRY, S_NEXT_AT, S_STATS, S_DEAD_LIST, S_PING, S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SYNC_FULL] = "PRAGMA synchronous = FULL",
    [S_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
    [S_INSERT] = "INSERT INTO messages(body, attempts, visible_at, leased, created_at) VALUES(?1, 0, ?2, 0, ?2)",
    [S_NEXT] = "SELECT id, body, attempts FROM messages WHERE visible_at <= ?1 ORDER BY id LIMIT 1",
    [S_LEASE] = "UPDATE messages SET visible_at = ?2, attempts = attempts + 1, leased = 1 WHERE id = ?1",
    [S_GET] = "SELECT attempts FROM messages WHERE id = ?1",
    [S_TO_DEAD] = "INSERT OR REPLACE INTO dead(id, body, last_error, attempts, failed_at)"
                  " SELECT id, body, ?2, attempts, ?3 FROM messages WHERE id = ?1",
    [S_DELETE] = "DELETE FROM messages WHERE id = ?1",
    [S_ACKED] = "UPDATE meta SET v = v + 1 WHERE k = 'acked_total'",
    [S_RETRY] = "UPDATE messages SET visible_at = ?2, leased = 0 WHERE id = ?1",
    [S_NEXT_AT] = "SELECT min(visible_at) FROM messages",
    [S_STATS] = "SELECT (SELECT count(*) FROM messages),"
                " (SELECT count(*) FROM messages WHERE leased = 1 AND visible_at > ?1),"
                " (SELECT count(*) FROM dead), (SELECT v FROM meta WHERE k = 'acked_total')",
    [S_DEAD_LIST] = "SELECT id, body, last_error, attempts, failed_at FROM dead"
                    " ORDER BY failed_at DESC, id DESC LIMIT ?1",
    [S_PING] = "SELECT count(*) FROM meta",
};

typedef struct sq_queue {
    vs_queue base;
    pthread_mutex_t mu;  /* guards everything below */
    pthread_cond_t cv;   /* CLOCK_MONOTONIC; signalled when work may have appeared */
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    int shutdown;
    int64_t visibility_ms;
    int max_attempts;
    char path[PATH_MAX];
} sq_queue;

/* Records the connection's current error for op: must run before the
 * failing statement is reset. */
static vs_err db_fail(sq_queue *q, const char *op, vs_error *err) {
    return vs_fail(err, VS_ERR_BACKEND, "queue %s: %s (sqlite %d)", op, sqlite3_errmsg(q->db),
                   sqlite3_extended_errcode(q->db));
}

/* Runs a statement that returns no rows (bindings already made), resets it. */
static vs_err run(sq_queue *q, int which, const char *op, vs_error *err) {
    sqlite3_stmt *s = q->st[which];
    int rc = sqlite3_step(s);
    vs_err r = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? VS_OK : db_fail(q, op, err);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return r;
}

/* Ends a write transaction; on a failed COMMIT rolls back so the connection
 * is usable again. */
static vs_err finish(sq_queue *q, vs_err rc, const char *op, vs_error *err) {
    if (rc == VS_OK) rc = run(q, S_COMMIT, op, err);
    if (rc != VS_OK && !sqlite3_get_autocommit(q->db)) run(q, S_ROLLBACK, op, NULL);
    return rc;
}

/* Moves message id to the dead letters with last_error, inside the caller's
 * transaction. */
static vs_err to_dead(sq_queue *q, int64_t id, const char *last_error, int64_t now, const char *op, vs_error *err) {
    sqlite3_bind_int64(q->st[S_TO_DEAD], 1, id);
    sqlite3_bind_text(q->st[S_TO_DEAD], 2, last_error ? last_error : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q->st[S_TO_DEAD], 3, now);
    vs_err rc = run(q, S_TO_DEAD, op, err);
    if (rc != VS_OK) return rc;
    sqlite3_bind_int64(q->st[S_DELETE], 1, id);
    return run(q, S_DELETE, op, err);
}

/* Appends the batch in one transaction committed with synchronous=FULL, so
 * the messages are on disk when this returns; wakes waiting pops. */
static vs_err sq_push(vs_queue *qq, const char *const *bodies, int n, int64_t *ids_out, vs_error *err) {
    sq_queue *q = (sq_queue *)qq;
    if (n < 0 || (n > 0 && !bodies)) return vs_fail(err, VS_ERR_INVALID_ARG, "queue push: bad batch (n=%d)", n);
    for (int i = 0; i < n; i++)
        if (!bodies[i]) return vs_fail(err, VS_ERR_INVALID_ARG, "queue push: message %d of %d has no body", i, n);
    if (n == 0) return VS_OK;
    pthread_mutex_lock(&q->mu);
    int64_t now = vs_wall_ms();
    vs_err rc = run(q, S_SYNC_FULL, "push", err);
    if (rc == VS_OK) rc = run(q, S_BEGIN, "push", err);
    if (rc == VS_OK) {
        sqlite3_stmt *s = q->st[S_INSERT];
        for (int i = 0; i < n && rc == VS_OK; i++) {
            sqlite3_bind_text(s, 1, bodies[i], -1, SQLITE_STATIC); /* bodies outlive the step */
            sqlite3_bind_int64(s, 2, now);
            rc = run(q, S_INSERT, "push", err);
            if (rc == VS_OK && ids_out) ids_out[i] = sqlite3_last_insert_rowid(q->db);
        }
        rc = finish(q, rc, "push", err);
    }
    vs_error ignored;
    run(q, S_SYNC_NORMAL, "push", &ignored); /* only a pop/ack would run at FULL: slower, not wrong */
    if (rc == VS_OK) pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

/* One attempt to lease the lowest-id ready message, in one IMMEDIATE
 * transaction. A ready message already delivered max_attempts times can only
 * be one whose lease ran out each time (a nack at the limit dead-letters
 * it), so consumers keep dying on it: it goes to the dead letters instead.
 * When none is ready, *next_at is the wall time the earliest message becomes
 * visible (-1 if the queue is empty). */
static vs_err try_pop(sq_queue *q, vs_msg *out, int64_t *next_at, vs_error *err) {
    *next_at = -1;
    int64_t now = vs_wall_ms();
    vs_err rc = run(q, S_BEGIN, "pop", err);
    if (rc != VS_OK) return rc;
    int found = 0;
    sqlite3_stmt *s = q->st[S_NEXT];
    while (rc == VS_OK && !found) {
        sqlite3_bind_int64(s, 1, now);
        int sr = sqlite3_step(s);
        if (sr == SQLITE_DONE) {
            sqlite3_reset(s);
            break;
        }
        if (sr != SQLITE_ROW) {
            rc = db_fail(q, "pop", err);
            sqlite3_reset(s);
            break;
        }
        int64_t id = sqlite3_column_int64(s, 0);
        const unsigned char *body = sqlite3_column_text(s, 1);
        int attempts = sqlite3_column_int(s, 2);
        if (attempts < q->max_attempts) {
            out->body = vs_strdup(body ? (const char *)body : "");
            out->id = id;
            out->attempts = attempts + 1;
        }
        sqlite3_reset(s);
        if (attempts >= q->max_attempts) {
            char why[96];
            snprintf(why, sizeof why, "lease expired %d times (worker crashed?)", attempts);
            rc = to_dead(q, id, why, now, "pop", err);
            continue;
        }
        if (!out->body) {
            rc = vs_fail(err, VS_ERR_NOMEM, "queue pop: message %lld", (long long)id);
            break;
        }
        sqlite3_bind_int64(q->st[S_LEASE], 1, id);
        sqlite3_bind_int64(q->st[S_LEASE], 2, now + q->visibility_ms);
        rc = run(q, S_LEASE, "pop", err);
        found = 1;
    }
    if (rc == VS_OK && !found) {
        sqlite3_stmt *m = q->st[S_NEXT_AT];
        int sr = sqlite3_step(m);
        if (sr == SQLITE_ROW && sqlite3_column_type(m, 0) != SQLITE_NULL) *next_at = sqlite3_column_int64(m, 0);
        else if (sr != SQLITE_ROW) rc = db_fail(q, "pop", err);
        sqlite3_reset(m);
    }
    rc = finish(q, rc, "pop", err);
    if (rc != VS_OK || !found) {
        vs_msg_free(out);
        *out = (vs_msg){0};
        if (rc == VS_OK) rc = VS_ERR_NOT_FOUND;
    }
    return rc;
}

/* Leases a message, waiting up to wait_ms: on `cv` for a push, nack or wake
 * in this process, and never longer than POLL_MS (or until the earliest
 * delayed message becomes visible) before looking at the file again. */
static vs_err sq_pop(vs_queue *qq, int wait_ms, vs_msg *out, vs_error *err) {
    sq_queue *q = (sq_queue *)qq;
    *out = (vs_msg){0};
    int64_t deadline = vs_now_ms() + (wait_ms > 0 ? wait_ms : 0);
    vs_err rc;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        if (q->shutdown) {
            rc = vs_fail(err, VS_ERR_NOT_FOUND, "queue pop: shutting down");
            break;
        }
        int64_t next_at;
        rc = try_pop(q, out, &next_at, err);
        if (rc != VS_ERR_NOT_FOUND) break;
        int64_t left = deadline - vs_now_ms();
        if (left <= 0) {
            rc = vs_fail(err, VS_ERR_NOT_FOUND, "queue pop: no message ready");
            break;
        }
        int64_t nap = left < POLL_MS ? left : POLL_MS;
        if (next_at >= 0) {
            int64_t until = next_at - vs_wall_ms() + 1;
            if (until < nap) nap = until < 1 ? 1 : until;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += nap / 1000;
        ts.tv_nsec += (long)(nap % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&q->cv, &q->mu, &ts);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

/* Removes a finished message and counts it; an unknown id (acked already,
 * or dead-lettered meanwhile) is not an error and not counted. */
static vs_err sq_ack(vs_queue *qq, int64_t id, vs_error *err) {
    sq_queue *q = (sq_queue *)qq;
    pthread_mutex_lock(&q->mu);
    vs_err rc = run(q, S_BEGIN, "ack", err);
    if (rc == VS_OK) {
        sqlite3_bind_int64(q->st[S_DELETE], 1, id);
        rc = run(q, S_DELETE, "ack", err);
        if (rc == VS_OK && sqlite3_changes(q->db) > 0) rc = run(q, S_ACKED, "ack", err);
        rc = finish(q, rc, "ack", err);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

/* A failed delivery: dead-letters the message with `error` once it has been
 * delivered max_attempts times, else makes it ready again after retry_ms. */
static vs_err sq_nack(vs_queue *qq, int64_t id, const char *error, int64_t retry_ms, vs_error *err) {
    sq_queue *q = (sq_queue *)qq;
    if (retry_ms < 0) retry_ms = 0;
    pthread_mutex_lock(&q->mu);
    int64_t now = vs_wall_ms();
    vs_err rc = run(q, S_BEGIN, "nack", err);
    if (rc == VS_OK) {
        sqlite3_stmt *s = q->st[S_GET];
        sqlite3_bind_int64(s, 1, id);
        int sr = sqlite3_step(s);
        int attempts = sr == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
        if (sr != SQLITE_ROW && sr != SQLITE_DONE) rc = db_fail(q, "nack", err);
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        if (rc == VS_OK && attempts >= q->max_attempts) {
            rc = to_dead(q, id, error && error[0] ? error : "failed (no error given)", now, "nack", err);
        } else if (rc == VS_OK && attempts >= 0) {
            sqlite3_bind_int64(q->st[S_RETRY], 1, id);
            sqlite3_bind_int64(q->st[S_RETRY], 2, now + retry_ms);
            rc = run(q, S_RETRY, "nack", err);
        }
        rc = finish(q, rc, "nack", err);
    }
    if (rc == VS_OK) pthread_cond_broadcast(&q->cv); /* a waiting pop may take it, or re-plan its nap */
    pthread_mutex_unlock(&q->mu);
    return rc;
}

/* Counts: ready includes messages in a retry delay and expired leases;
 * in_flight is leased with the lease still running. */
static vs_err sq_stats(vs_queue *qq, vs_queue_stats *out, vs_error *err) {
    sq_queue *q = (sq_queue *)qq;
    *out = (vs_queue_stats){0};
    pthread_mutex_lock(&q->mu);
    sqlite3_stmt *s = q->st[S_STATS];
    sqlite3_bind_int64(s, 1, vs_wall_ms());
    vs_err rc = VS_OK;
    if (sqlite3_step(s) == SQLITE_ROW) {
        int64_t total = sqlite3_column_int64(s, 0);
        out->in_flight = sqlite3_column_int64(s, 1);
        out->ready = total - out->in_flight;
        out->dead = sqlite3_column_int64(s, 2);
        out->acked_total = sqlite3_column_int64(s, 3);
    } else {
        rc = db_fail(q, "stats", err);
    }
    sqlite3_reset(s);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

typedef struct dead_row {
    vs_dead_msg m;
    char *body, *last_error;
} dead_row;

/* Dead letters newest first, at most limit (limit <= 0: all). Rows are
 * copied out under the lock and handed to cb after it is released. */
static vs_err sq_list_dead(vs_queue *qq, int limit, vs_dead_cb cb, void *ctx, vs_error *err) {
    sq_queue *q = (sq_queue *)qq;
    dead_row *rows = NULL;
    size_t n = 0, cap = 0;
    vs_err rc = VS_OK;
    pthread_mutex_lock(&q->mu);
    sqlite3_stmt *s = q->st[S_DEAD_LIST];
    sqlite3_bind_int64(s, 1, limit > 0 ? limit : -1);
    int sr;
    while ((sr = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            dead_row *nr = vs_realloc(rows, ncap * sizeof *rows);
            if (!nr) {
                rc = vs_fail(err, VS_ERR_NOMEM, "queue list_dead");
                break;
            }
            rows = nr;
            cap = ncap;
        }
        const unsigned char *body = sqlite3_column_text(s, 1), *le = sqlite3_column_text(s, 2);
        dead_row *r = &rows[n];
        r->body = vs_strdup(body ? (const char *)body : "");
        r->last_error = vs_strdup(le ? (const char *)le : "");
        if (!r->body || !r->last_error) {
            vs_free(r->body);
            vs_free(r->last_error);
            rc = vs_fail(err, VS_ERR_NOMEM, "queue list_dead");
            break;
        }
        r->m = (vs_dead_msg){.id = sqlite3_column_int64(s, 0), .body = r->body, .last_error = r->last_error,
                             .attempts = sqlite3_column_int(s, 3), .failed_at_ms = sqlite3_column_int64(s, 4)};
        n++;
    }
    if (rc == VS_OK && sr != SQLITE_DONE) rc = db_fail(q, "list_dead", err);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    pthread_mutex_unlock(&q->mu);
    int stop = rc != VS_OK;
    for (size_t i = 0; i < n; i++) {
        if (!stop && cb(ctx, &rows[i].m)) stop = 1;
        vs_free(rows[i].body);
        vs_free(rows[i].last_error);
    }
    vs_free(rows);
    return rc;
}

/* Shutdown: every waiting pop returns VS_ERR_NOT_FOUND now, later ones at
 * once, until close. */
static void sq_wake(vs_queue *qq) {
    sq_queue *q = (sq_queue *)qq;
    pthread_mutex_lock(&q->mu);
    q->shutdown = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* 1 when the database answers a read. */
static int sq_healthy(vs_queue *qq) {
    sq_queue *q = (sq_queue *)qq;
    pthread_mutex_lock(&q->mu);
    int ok = sqlite3_step(q->st[S_PING]) == SQLITE_ROW;
    sqlite3_reset(q->st[S_PING]);
    pthread_mutex_unlock(&q->mu);
    return ok;
}

/* Frees everything open built; safe on a half-built queue. */
static void destroy(sq_queue *q) {
    for (int i = 0; i < S_COUNT; i++) sqlite3_finalize(q->st[i]);
    sqlite3_close(q->db); /* last connection: checkpoints and removes the WAL */
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    vs_free(q);
}

/* Closes the connection (checkpointing the WAL) and frees the queue; no
 * other call may be running or start. */
static void sq_close(vs_queue *qq) {
    if (qq) destroy((sq_queue *)qq);
}

static const vs_queue_ops sq_ops = {
    .push = sq_push,
    .pop = sq_pop,
    .ack = sq_ack,
    .nack = sq_nack,
    .stats = sq_stats,
    .list_dead = sq_list_dead,
    .wake = sq_wake,
    .healthy = sq_healthy,
    .close = sq_close,
};

/* Creates dir and its missing parents (mode 0700: the data dir is private).
 * 0 or -1 with errno. */
static int make_dirs(const char *dir) {
    char p[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) return -1;
        p[i] = i == n ? '\0' : '/';
    }
    return 0;
}

/* Runs a one-value query and returns its integer in *v. */
static int query_int(sqlite3 *db, const char *sql, int64_t *v) {
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            *v = sqlite3_column_int64(s, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(s);
    return rc;
}

/* A file SQLite cannot read as a database gets its own message: it is a
 * state the operator has to resolve (move the file away), not a hiccup. */
static vs_err open_fail(sq_queue *q, const char *what, vs_error *err) {
    int code = sqlite3_errcode(q->db);
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT)
        return vs_fail(err, VS_ERR_CORRUPT, "queue open %s: not a readable SQLite database (%s); move it away to start "
                       "an empty queue", q->path, sqlite3_errmsg(q->db));
    return vs_fail(err, VS_ERR_BACKEND, "queue open %s: %s: %s", q->path, what, sqlite3_errmsg(q->db));
}

/* The error for a SQLite file that is not a visage queue. */
static vs_err foreign(sq_queue *q, int64_t app, int64_t tables, vs_error *err) {
    return vs_fail(err, VS_ERR_CORRUPT, "queue open %s: a SQLite database but not a visage queue (application_id %lld, "
                   "%lld tables); move it away", q->path, (long long)app, (long long)tables);
}

/* Brings the file to our schema: creates it in an empty database (inside an
 * IMMEDIATE transaction, so two processes opening at once do not both
 * create), refuses a database that is someone else's or a newer version. */
static vs_err check_schema(sq_queue *q, vs_error *err) {
    int64_t app = 0, version = 0, tables = 0;
    if (sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return open_fail(q, "begin", err);
    vs_err rc = VS_OK;
    if (query_int(q->db, "SELECT count(*) FROM sqlite_master", &tables) != SQLITE_OK ||
        query_int(q->db, "PRAGMA application_id", &app) != SQLITE_OK ||
        query_int(q->db, "PRAGMA user_version", &version) != SQLITE_OK) {
        rc = open_fail(q, "read header", err);
    } else if (tables == 0 && app == 0) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA application_id=%d; PRAGMA user_version=%d;", APP_ID, SCHEMA_VERSION);
        if (sqlite3_exec(q->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(q->db, sql, NULL, NULL, NULL) != SQLITE_OK)
            rc = open_fail(q, "create schema", err);
    } else if (app != APP_ID) {
        rc = foreign(q, app, tables, err);
    } else if (version != SCHEMA_VERSION) {
        rc = vs_fail(err, VS_ERR_UNSUPPORTED, "queue open %s: schema version %lld, this build reads version %d",
                     q->path, (long long)version, SCHEMA_VERSION);
    }
    if (sqlite3_exec(q->db, rc == VS_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK && rc == VS_OK)
        rc = open_fail(q, "commit schema", err);
    return rc;
}

vs_err vs_queue_sqlite_open(const vs_queue_opts *opts, vs_queue **out, vs_error *err) {
    *out = NULL;
    if (make_dirs(opts->data_dir) != 0)
        return vs_fail(err, VS_ERR_IO, "queue open: mkdir %s: %s", opts->data_dir, strerror(errno));
    sq_queue *q = vs_calloc(1, sizeof *q);
    if (!q) return vs_fail(err, VS_ERR_NOMEM, "queue open");
    q->base.ops = &sq_ops;
    q->visibility_ms = opts->visibility_ms;
    q->max_attempts = opts->max_attempts;
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    vs_err rc = VS_OK;
    char file[128] = "queue";
    if (opts->name && strcmp(opts->name, "face:ingest") != 0) {
        snprintf(file, sizeof file, "%s", opts->name);
        for (char *c = file; *c; c++)
            if (*c == ':' || *c == '/') *c = '-';
    }
    int n = snprintf(q->path, sizeof q->path, "%s/%s.db", opts->data_dir, file);
    if (n < 0 || (size_t)n >= sizeof q->path) {
        rc = vs_fail(err, VS_ERR_INVALID_ARG, "queue open: data dir path too long");
        goto out;
    }
    vs_sqlite_private_file(q->path); /* image URLs and bytes wait here: owner only */
    if (sqlite3_open_v2(q->path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rc = q->db ? open_fail(q, "open", err) : vs_fail(err, VS_ERR_NOMEM, "queue open %s", q->path);
        goto out;
    }
    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, BUSY_TIMEOUT_MS);
    /* look before switching the journal mode: someone else's database must
     * be left exactly as it was */
    int64_t app = 0, tables = 0;
    if (query_int(q->db, "PRAGMA application_id", &app) != SQLITE_OK ||
        query_int(q->db, "SELECT count(*) FROM sqlite_master", &tables) != SQLITE_OK) {
        rc = open_fail(q, "read header", err);
        goto out;
    }
    if (tables > 0 && app != APP_ID) {
        rc = foreign(q, app, tables, err);
        goto out;
    }
    /* WAL: readers never block the writer, and a commit is one append */
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(q->db, "PRAGMA journal_mode=WAL", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
        rc = open_fail(q, "journal_mode=WAL", err);
        sqlite3_finalize(s);
        goto out;
    }
    const unsigned char *mode = sqlite3_column_text(s, 0);
    if (!mode || strcmp((const char *)mode, "wal") != 0) {
        rc = vs_fail(err, VS_ERR_BACKEND, "queue open %s: cannot use WAL mode (journal mode is %s)", q->path,
                     mode ? (const char *)mode : "?");
        sqlite3_finalize(s);
        goto out;
    }
    sqlite3_finalize(s);
    if (sqlite3_exec(q->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
        rc = open_fail(q, "synchronous", err);
        goto out;
    }
    if ((rc = check_schema(q, err)) != VS_OK) goto out;
    for (int i = 0; i < S_COUNT; i++)
        if (sqlite3_prepare_v3(q->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL) != SQLITE_OK) {
            rc = vs_fail(err, VS_ERR_CORRUPT, "queue open %s: wrong schema: %s", q->path, sqlite3_errmsg(q->db));
            goto out;
        }
out:
    if (rc != VS_OK) {
        destroy(q);
        return rc;
    }
    *out = &q->base;
    return VS_OK;
}
