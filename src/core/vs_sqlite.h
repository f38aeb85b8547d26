/* vs_sqlite.h - opening one of visage's own SQLite files (catalog.db,
 * crawl.db) the same way everywhere: created 0600, WAL checked to be on,
 * a busy timeout for other processes, and a schema that is created on a new
 * file, accepted at this build's version, and otherwise refused rather than
 * repaired: a newer version is a newer build's file, tables without a
 * version are somebody else's database. */
#ifndef VS_SQLITE_H
#define VS_SQLITE_H

#include <sqlite3.h>

#include "vs_err.h"

typedef struct vs_sqlite_spec {
    const char *path;          /* the file */
    const char *what;          /* names it in messages: "catalog", "crawl db" */
    const char *schema;        /* SQL creating every table and index */
    int version;               /* PRAGMA user_version this build writes (>= 1) */
    const char *synchronous;   /* "FULL" or "NORMAL": what a crash may lose */
    int foreign_keys;          /* 1: PRAGMA foreign_keys=ON */
} vs_sqlite_spec;

/* Writes "{data_dir}/{file}" into out (cap bytes) and creates data_dir
 * (0700) when missing. INVALID_ARG (empty dir, path too long) or IO,
 * naming `what` ("catalog open"). */
vs_err vs_sqlite_data_path(const char *data_dir, const char *file, const char *what, char *out, size_t cap,
                           vs_error *err);

/* Opens (creating) spec->path with SQLITE_OPEN_NOMUTEX (the caller
 * serialises), configures it and checks or creates the schema. Errors:
 * VS_ERR_UNSUPPORTED (newer schema), VS_ERR_CORRUPT (tables but no
 * version), VS_ERR_BACKEND (not a database, WAL refused, SQLite failed),
 * VS_ERR_NOMEM. On failure *out is NULL and nothing stays open. */
vs_err vs_sqlite_open(const vs_sqlite_spec *spec, sqlite3 **out, vs_error *err);

#endif
