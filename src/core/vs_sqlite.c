/* vs_sqlite.c - see vs_sqlite.h. */
#include "vs_sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VS_SQLITE_BUSY_MS 5000

/* An SQLite failure as VS_ERR_BACKEND naming the file and the step. */
static vs_err db_fail(const vs_sqlite_spec *s, sqlite3 *db, const char *op, vs_error *err) {
    return vs_fail(err, VS_ERR_BACKEND, "%s %s: %s: %s", s->what, s->path, op, sqlite3_errmsg(db));
}

static vs_err exec_sql(const vs_sqlite_spec *s, sqlite3 *db, const char *sql, const char *op, vs_error *err) {
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? VS_OK : db_fail(s, db, op, err);
}

/* The single integer a query returns (PRAGMA user_version, a count). */
static vs_err query_int(const vs_sqlite_spec *s, sqlite3 *db, const char *sql, const char *op, int64_t *out,
                        vs_error *err) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return db_fail(s, db, op, err);
    vs_err rc = sqlite3_step(st) == SQLITE_ROW ? VS_OK : db_fail(s, db, op, err);
    if (rc == VS_OK) *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

/* WAL so readers run beside the writer; checked, because SQLite silently
 * keeps another mode where WAL is impossible (some network filesystems). */
static vs_err configure(const vs_sqlite_spec *s, sqlite3 *db, vs_error *err) {
    sqlite3_busy_timeout(db, VS_SQLITE_BUSY_MS);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, db, "set WAL mode", err);
    vs_err rc = VS_OK;
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_fail(s, db, "set WAL mode", err);
    } else {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        if (!mode || strcmp(mode, "wal") != 0)
            rc = vs_fail(err, VS_ERR_BACKEND, "%s %s: set WAL mode: journal mode stays '%s'", s->what, s->path,
                         mode ? mode : "?");
    }
    sqlite3_finalize(st);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA synchronous=%s", s->synchronous ? s->synchronous : "FULL");
    if (rc == VS_OK) rc = exec_sql(s, db, sql, "set synchronous", err);
    if (rc == VS_OK && s->foreign_keys) rc = exec_sql(s, db, "PRAGMA foreign_keys=ON", "enable foreign keys", err);
    return rc;
}

/* Runs the upgrade steps from the file's version to this build's in one
 * transaction; the version is read again inside it, since another process
 * may have upgraded the file since we looked. */
static vs_err upgrade(const vs_sqlite_spec *s, sqlite3 *db, vs_error *err) {
    vs_err rc = exec_sql(s, db, "BEGIN IMMEDIATE", "begin schema upgrade", err);
    if (rc != VS_OK) return rc;
    int64_t ver = 0;
    rc = query_int(s, db, "PRAGMA user_version", "read schema version", &ver, err);
    for (int64_t v = ver; rc == VS_OK && v >= 1 && v < s->version; v++) {
        char op[64];
        snprintf(op, sizeof op, "upgrade schema %lld to %lld", (long long)v, (long long)v + 1);
        rc = exec_sql(s, db, s->upgrades[v - 1], op, err);
    }
    char setver[64];
    snprintf(setver, sizeof setver, "PRAGMA user_version=%d", s->version);
    if (rc == VS_OK && ver != s->version) rc = exec_sql(s, db, setver, "set schema version", err);
    if (rc == VS_OK) rc = exec_sql(s, db, "COMMIT", "commit schema upgrade", err);
    if (rc != VS_OK) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Creates the schema on a new file, upgrades an older one, or checks the
 * version of one at ours. */
static vs_err migrate(const vs_sqlite_spec *s, sqlite3 *db, vs_error *err) {
    int64_t ver = 0, tables = 0;
    vs_err rc = query_int(s, db, "PRAGMA user_version", "read schema version", &ver, err);
    if (rc != VS_OK) return rc;
    if (ver > s->version)
        return vs_fail(err, VS_ERR_UNSUPPORTED,
                       "%s %s: schema version %lld is newer than this build supports (%d); upgrade visage", s->what,
                       s->path, (long long)ver, s->version);
    if (ver == s->version) return VS_OK;
    if (ver >= 1 && s->upgrades) return upgrade(s, db, err);
    rc = query_int(s, db, "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'", "read schema", &tables,
                   err);
    if (rc != VS_OK) return rc;
    if (tables > 0)
        return vs_fail(err, VS_ERR_CORRUPT, "%s %s: has %lld tables but no schema version: not a visage %s", s->what,
                       s->path, (long long)tables, s->what);
    if ((rc = exec_sql(s, db, "BEGIN IMMEDIATE", "begin schema", err)) != VS_OK) return rc;
    char setver[64];
    snprintf(setver, sizeof setver, "PRAGMA user_version=%d", s->version);
    rc = exec_sql(s, db, s->schema, "create schema", err);
    if (rc == VS_OK) rc = exec_sql(s, db, setver, "set schema version", err);
    if (rc == VS_OK) rc = exec_sql(s, db, "COMMIT", "commit schema", err);
    if (rc != VS_OK) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

vs_err vs_sqlite_data_path(const char *data_dir, const char *file, const char *what, char *out, size_t cap,
                           vs_error *err) {
    if (!data_dir || !*data_dir) return vs_fail(err, VS_ERR_INVALID_ARG, "%s: empty data dir", what);
    int n = snprintf(out, cap, "%s/%s", data_dir, file);
    if (n < 0 || (size_t)n >= cap)
        return vs_fail(err, VS_ERR_INVALID_ARG, "%s: data dir path too long: %.200s", what, data_dir);
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST)
        return vs_fail(err, VS_ERR_IO, "%s: mkdir %.300s: %s", what, data_dir, strerror(errno));
    return VS_OK;
}

/* Takes group/other bits off one existing file; no file is fine. */
static void tighten(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077)) (void)chmod(path, st.st_mode & 0700);
}

void vs_sqlite_private_file(const char *path) {
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    static const char *const k_companions[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof k_companions / sizeof k_companions[0]; i++) {
        char p[1100];
        if ((size_t)snprintf(p, sizeof p, "%s%s", path, k_companions[i]) < sizeof p) tighten(p);
    }
}

vs_err vs_sqlite_open(const vs_sqlite_spec *s, sqlite3 **out, vs_error *err) {
    *out = NULL;
    /* 0600 before SQLite touches it (key hashes, tenants' URLs) */
    vs_sqlite_private_file(s->path);
    sqlite3 *db = NULL;
    vs_err rc;
    if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK)
        rc = db ? db_fail(s, db, "open", err) : vs_fail(err, VS_ERR_NOMEM, "%s %s: open: out of memory", s->what, s->path);
    else if ((rc = configure(s, db, err)) == VS_OK)
        rc = migrate(s, db, err);
    if (rc != VS_OK) {
        sqlite3_close_v2(db);
        return rc;
    }
    *out = db;
    return VS_OK;
}

vs_err vs_sqlite_db_open(vs_sqlite_db *d, const char *data_dir, const char *file, vs_sqlite_spec spec, vs_error *err) {
    char op[64];
    snprintf(op, sizeof op, "%s open", spec.what);
    memset(d, 0, sizeof *d);
    d->what = spec.what;
    vs_err rc = vs_sqlite_data_path(data_dir, file, op, d->path, sizeof d->path, err);
    if (rc != VS_OK) return rc;
    spec.path = d->path;
    rc = vs_sqlite_open(&spec, &d->db, err);
    if (rc == VS_OK) pthread_mutex_init(&d->mu, NULL);
    return rc;
}

void vs_sqlite_db_close(vs_sqlite_db *d) {
    if (!d->db) return;
    sqlite3_close_v2(d->db);
    pthread_mutex_destroy(&d->mu);
    d->db = NULL;
}

vs_err vs_sqlite_fail(vs_sqlite_db *d, vs_error *err, const char *op) {
    return vs_fail(err, VS_ERR_BACKEND, "%s %s: %s: %s", d->what, d->path, op, sqlite3_errmsg(d->db));
}

vs_err vs_sqlite_exec(vs_sqlite_db *d, const char *sql, const char *op, vs_error *err) {
    return sqlite3_exec(d->db, sql, NULL, NULL, NULL) == SQLITE_OK ? VS_OK : vs_sqlite_fail(d, err, op);
}

vs_err vs_sqlite_prepare(vs_sqlite_db *d, const char *sql, const char *op, sqlite3_stmt **st, vs_error *err) {
    return sqlite3_prepare_v2(d->db, sql, -1, st, NULL) == SQLITE_OK ? VS_OK : vs_sqlite_fail(d, err, op);
}

int vs_sqlite_bind_text(sqlite3_stmt *st, int i, const char *s) {
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

void vs_sqlite_rollback(vs_sqlite_db *d) { sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL); }
