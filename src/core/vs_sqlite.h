/* vs_sqlite.h - opening one of visage's own SQLite files (catalog.db,
 * crawl.db) the same way everywhere: created 0600, WAL checked to be on,
 * a busy timeout for other processes, and a schema that is created on a new
 * file, accepted at this build's version, upgraded from an older version by
 * the file's own upgrade steps, and otherwise refused rather than repaired:
 * a newer version is a newer build's file, tables without a version are
 * somebody else's database. */
#ifndef VS_SQLITE_H
#define VS_SQLITE_H

#include <pthread.h>
#include <sqlite3.h>

#include "vs_err.h"

typedef struct vs_sqlite_spec {
    const char *path;          /* the file */
    const char *what;          /* names it in messages: "catalog", "crawl db" */
    const char *schema;        /* SQL creating every table and index */
    int version;               /* PRAGMA user_version this build writes (>= 1) */
    const char *synchronous;   /* "FULL" or "NORMAL": what a crash may lose */
    int foreign_keys;          /* 1: PRAGMA foreign_keys=ON */
    /* upgrades[v-1] is the SQL that turns a version-v file into v+1, for
     * v = 1 .. version-1; all steps due run in one transaction. NULL: files
     * of an older version are refused. */
    const char *const *upgrades;
} vs_sqlite_spec;

/* Writes "{data_dir}/{file}" into out (cap bytes) and creates data_dir
 * (0700) when missing. INVALID_ARG (empty dir, path too long) or IO,
 * naming `what` ("catalog open"). */
vs_err vs_sqlite_data_path(const char *data_dir, const char *file, const char *what, char *out, size_t cap,
                           vs_error *err);

/* Makes the SQLite file at path private before it is opened: creates it
 * 0600 when missing (SQLite gives the -wal, -shm and -journal files it
 * makes later the mode of the database file, so they are 0600 too, whatever
 * the umask), and takes group/other bits off the file and any of those
 * companions that exist (a data dir from a build that made them 0644).
 * Best effort: a file it cannot change is left for open to report. */
void vs_sqlite_private_file(const char *path);

/* Opens (creating) spec->path with SQLITE_OPEN_NOMUTEX (the caller
 * serialises), configures it and checks or creates the schema. Errors:
 * VS_ERR_UNSUPPORTED (newer schema), VS_ERR_CORRUPT (tables but no
 * version), VS_ERR_BACKEND (not a database, WAL refused, SQLite failed),
 * VS_ERR_NOMEM. On failure *out is NULL and nothing stays open. */
vs_err vs_sqlite_open(const vs_sqlite_spec *spec, sqlite3 **out, vs_error *err);

/* One of the files once open, as the catalog and crawl.db hold it: the
 * connection, the mutex every use of it holds (their statements take
 * microseconds, and one connection under one lock keeps sqlite3_errmsg
 * paired with the statement that failed), and how messages name it. */
typedef struct vs_sqlite_db {
    sqlite3 *db;
    pthread_mutex_t mu;
    const char *what;
    char path[1024];
} vs_sqlite_db;

/* Opens {data_dir}/{file} into d with spec's what, schema, version and
 * settings (spec.path is filled in here). On failure d holds nothing. */
vs_err vs_sqlite_db_open(vs_sqlite_db *d, const char *data_dir, const char *file, vs_sqlite_spec spec, vs_error *err);
/* Closes the connection (SQLite checkpoints the WAL); a zeroed d is fine. */
void vs_sqlite_db_close(vs_sqlite_db *d);

/* The statement helpers of such a file, called with its mutex held.
 * Failures are VS_ERR_BACKEND "{what} {path}: {op}: {SQLite's message}". */
vs_err vs_sqlite_fail(vs_sqlite_db *d, vs_error *err, const char *op);
vs_err vs_sqlite_exec(vs_sqlite_db *d, const char *sql, const char *op, vs_error *err);   /* no rows: BEGIN, COMMIT */
vs_err vs_sqlite_prepare(vs_sqlite_db *d, const char *sql, const char *op, sqlite3_stmt **st, vs_error *err);
int vs_sqlite_bind_text(sqlite3_stmt *st, int i, const char *s);                        /* NULL binds NULL */
/* Ends a failed transaction; its own failure is ignored (the first error is
 * the one reported, and SQLite rolls back on close anyway). */
void vs_sqlite_rollback(vs_sqlite_db *d);

#endif
