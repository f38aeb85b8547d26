/* vs_catalog.c - the embedded catalog on SQLite: tenants, hashed API keys and
 * one record per processed image. Tuned for light traffic (one key lookup per
 * API request, a few record writes per processed image), not for bulk data.
 *
 * Threading: one sqlite3 connection guarded by one mutex. SQLite serialises
 * writers on a database anyway, and catalog statements take microseconds, so a
 * pool of connections would add WAL read concurrency nobody needs plus
 * SQLITE_BUSY handling on every write. The mutex also keeps sqlite3_errmsg()
 * paired with the statement that failed, which a shared connection in
 * SQLite's own serialised mode would not guarantee. busy_timeout still covers
 * another process (e.g. `visage tenant create`) holding the write lock. */
#include "vs_catalog.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_events.h"
#include "vs_hash.h"
#include "vs_sqlite.h"

/* Bump when the schema changes (and add the step to k_upgrades); open
 * refuses files from a newer build. 2: settings, reindex_images. 3: an
 * erasure in progress (erasures.state) and the images it names. 4: images by
 * (tenant, created_at), for the newest-first listings. 5: events and their
 * webhook delivery state, one webhook per tenant (vs_events.h). 6: index
 * (tenant, updated_at, sha256), for followers of changed records. */
#define VS_CATALOG_SCHEMA_VERSION 6

struct vs_catalog {
    vs_sqlite_db sq;
};

static const char *k_schema =
    "CREATE TABLE IF NOT EXISTS tenants(id TEXT PRIMARY KEY, created_at INT);"
    "CREATE TABLE IF NOT EXISTS api_keys(key_sha256 TEXT PRIMARY KEY,"
    " tenant_id TEXT NOT NULL REFERENCES tenants(id), created_at INT);"
    "CREATE TABLE IF NOT EXISTS images(tenant_id TEXT, sha256 TEXT, external_id TEXT, status INT,"
    " record_json TEXT, created_at INT, updated_at INT, PRIMARY KEY(tenant_id, sha256));"
    "CREATE INDEX IF NOT EXISTS images_external ON images(tenant_id, external_id);"
    "CREATE INDEX IF NOT EXISTS images_created ON images(tenant_id, created_at);"
    "CREATE INDEX IF NOT EXISTS images_updated ON images(tenant_id, updated_at, sha256);"
    "CREATE TABLE IF NOT EXISTS erasures(id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL,"
    " at INT NOT NULL, what TEXT NOT NULL, detail_json TEXT NOT NULL, state INT NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS erasures_tenant ON erasures(tenant_id, id);"
    "CREATE TABLE IF NOT EXISTS erasure_images(erasure_id INT NOT NULL, sha256 TEXT NOT NULL,"
    " done INT NOT NULL DEFAULT 0, PRIMARY KEY(erasure_id, sha256));"
    "CREATE INDEX IF NOT EXISTS erasures_open ON erasures(state) WHERE state = 1;"
    "CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS reindex_images(tenant_id TEXT, sha256 TEXT, status INT NOT NULL,"
    " record_json TEXT, PRIMARY KEY(tenant_id, sha256));"
    VS_EVENTS_SCHEMA;

/* k_upgrades[v-1] turns a version-v catalog into v+1 (vs_sqlite_spec). */
static const char *const k_upgrades[] = {
    /* 1 -> 2 */
    "CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE reindex_images(tenant_id TEXT, sha256 TEXT, status INT NOT NULL, record_json TEXT,"
    " PRIMARY KEY(tenant_id, sha256));",
    /* 2 -> 3 */
    "ALTER TABLE erasures ADD COLUMN state INT NOT NULL DEFAULT 0;"
    "CREATE TABLE erasure_images(erasure_id INT NOT NULL, sha256 TEXT NOT NULL, done INT NOT NULL DEFAULT 0,"
    " PRIMARY KEY(erasure_id, sha256));"
    "CREATE INDEX erasures_open ON erasures(state) WHERE state = 1;",
    /* 3 -> 4 */
    "CREATE INDEX images_created ON images(tenant_id, created_at);",
    /* 4 -> 5 */
    VS_EVENTS_SCHEMA,
    /* 5 -> 6 */
    "CREATE INDEX IF NOT EXISTS images_updated ON images(tenant_id, updated_at, sha256);",
};

/* Reads a single integer result (a count). */
static vs_err query_int(vs_catalog *c, const char *sql, const char *op, int64_t *out, vs_error *err) {
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&c->sq, sql, op, &st, err);
    if (rc != VS_OK) return rc;
    if (sqlite3_step(st) == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    else rc = vs_sqlite_fail(&c->sq, err, op);
    sqlite3_finalize(st);
    return rc;
}

int vs_tenant_name_ok(const char *name) {
    if (!name) return 0;
    size_t n = strnlen(name, VS_TENANT_MAX);
    if (n == 0 || n >= VS_TENANT_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                 ch == '.' || ch == '-';
        if (!ok) return 0;
    }
    /* "." and ".." are path components, not names: their files would land
     * beside or above every tenant's */
    return strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* A new tenant's name also starts with a letter or digit: names starting
 * with '.' make hidden folders and with '-' read as options on a command
 * line. (Older tenants named otherwise keep working: vs_tenant_name_ok.) */
int vs_tenant_new_name_ok(const char *name) {
    return vs_tenant_name_ok(name) && ((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
                                       (name[0] >= '0' && name[0] <= '9'));
}

/* name for a message: printable ASCII kept, anything else as '?', cut. */
static void printable(const char *name, char *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; name && name[i] && k + 1 < cap; i++)
        out[k++] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
    out[k] = '\0';
}

int vs_sha256_hex_ok(const char *s) {
    if (!s) return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return s[64] == '\0';
}

vs_err vs_tenant_check(const char *tenant, const char *op, vs_error *err) {
    if (vs_tenant_name_ok(tenant)) return VS_OK;
    char shown[81];
    printable(tenant ? tenant : "(null)", shown, sizeof shown);
    return vs_fail(err, VS_ERR_INVALID_ARG, "%s: tenant name '%s' must be 1..63 characters of [A-Za-z0-9_.-] ('.' and "
                   "'..' are not names)", op, shown);
}

/* Opens or creates {data_dir}/catalog.db, configures the connection and
 * checks or creates the schema; the file is refused rather than repaired. */
vs_err vs_catalog_open(const char *data_dir, vs_catalog **out, vs_error *err) {
    *out = NULL;
    vs_catalog *c = vs_calloc(1, sizeof *c);
    if (!c) return vs_fail(err, VS_ERR_NOMEM, "catalog open: out of memory");
    /* synchronous=FULL: a lost API key row is worse than a slow write */
    vs_sqlite_spec spec = {NULL, "catalog", k_schema, VS_CATALOG_SCHEMA_VERSION, "FULL", 1, k_upgrades};
    vs_err rc = vs_sqlite_db_open(&c->sq, data_dir, "catalog.db", spec, err);
    if (rc != VS_OK) {
        vs_free(c);
        return rc;
    }
    *out = c;
    return VS_OK;
}

/* The catalog's own files (vs_events.c) reach the connection and its
 * mutex through this; other modules use the functions of the headers. */
vs_sqlite_db *vs_catalog_sqlite(vs_catalog *c) { return &c->sq; }

/* Closes the connection (WAL is checkpointed by SQLite) and frees c. */
void vs_catalog_close(vs_catalog *c) {
    if (!c) return;
    vs_sqlite_db_close(&c->sq);
    vs_free(c);
}

/* Inserts the tenant and the hash of its key in one transaction, so a tenant
 * never exists without a key. Called with the mutex held. */
static vs_err insert_tenant(vs_catalog *c, const char *name, const char *key_hash, vs_error *err) {
    int64_t now = vs_wall_ms();
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_exec(&c->sq, "BEGIN IMMEDIATE", "begin tenant create", err);
    if (rc != VS_OK) return rc;
    rc = vs_sqlite_prepare(&c->sq, "INSERT INTO tenants(id, created_at) VALUES(?1, ?2)", "insert tenant", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, name);
        sqlite3_bind_int64(st, 2, now);
        int s = sqlite3_step(st);
        if (s == SQLITE_CONSTRAINT)
            rc = vs_fail(err, VS_ERR_INVALID_ARG, "tenant create: tenant '%s' already exists", name);
        else if (s != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "insert tenant");
        sqlite3_finalize(st);
        st = NULL;
    }
    if (rc == VS_OK)
        rc = vs_sqlite_prepare(&c->sq, "INSERT INTO api_keys(key_sha256, tenant_id, created_at) VALUES(?1, ?2, ?3)",
                               "insert api key", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, key_hash);
        vs_sqlite_bind_text(st, 2, name);
        sqlite3_bind_int64(st, 3, now);
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "insert api key");
        sqlite3_finalize(st);
    }
    if (rc == VS_OK) rc = vs_sqlite_exec(&c->sq, "COMMIT", "commit tenant create", err);
    if (rc != VS_OK) vs_sqlite_rollback(&c->sq);
    return rc;
}

/* A new API key "vsk_<48 hex>" and its SHA-256 (what is stored). */
static vs_err new_key(char key[VS_API_KEY_MAX], char hash[VS_SHA256_HEX], const char *op, vs_error *err) {
    uint8_t raw[24];
    if (vs_random_bytes(raw, sizeof raw) != 0)
        return vs_fail(err, VS_ERR_BACKEND, "%s: no random bytes for the API key", op);
    memcpy(key, "vsk_", 4);
    vs_hex(raw, sizeof raw, key + 4);
    vs_sha256_hex(key, strlen(key), hash);
    memset(raw, 0, sizeof raw);
    return VS_OK;
}

/* Creates a tenant and its key; only the key's SHA-256 is stored, so the
 * key shown here is the only copy. */
vs_err vs_tenant_create(vs_catalog *c, const char *name, char key_out[VS_API_KEY_MAX], vs_error *err) {
    key_out[0] = '\0';
    vs_err rc = vs_tenant_check(name, "tenant create", err);
    if (rc != VS_OK) return rc;
    if (!vs_tenant_new_name_ok(name))
        return vs_fail(err, VS_ERR_INVALID_ARG, "tenant create: tenant name '%s' must start with a letter or a digit", name);
    char key[VS_API_KEY_MAX], hash[VS_SHA256_HEX];
    if ((rc = new_key(key, hash, "tenant create", err)) != VS_OK) return rc;
    pthread_mutex_lock(&c->sq.mu);
    rc = insert_tenant(c, name, hash, err);
    pthread_mutex_unlock(&c->sq.mu);
    if (rc == VS_OK) memcpy(key_out, key, strlen(key) + 1);
    memset(key, 0, sizeof key);
    return rc;
}

/* Replaces every key of the tenant by a new one in one transaction: there
 * is no moment with no key, and an old key stops working at once (every
 * request looks its key up here). Called with the mutex held. */
static vs_err replace_keys(vs_catalog *c, const char *name, const char *key_hash, vs_error *err) {
    int64_t n = 0;
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_exec(&c->sq, "BEGIN IMMEDIATE", "begin key rotation", err);
    if (rc != VS_OK) return rc;
    rc = vs_sqlite_prepare(&c->sq, "SELECT count(*) FROM tenants WHERE id = ?1", "key rotation", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, name);
        if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
        else rc = vs_sqlite_fail(&c->sq, err, "key rotation");
        sqlite3_finalize(st);
    }
    if (rc == VS_OK && n == 0) rc = vs_fail(err, VS_ERR_NOT_FOUND, "key rotation: no tenant '%s'", name);
    static const char *sql[2] = {"DELETE FROM api_keys WHERE tenant_id = ?1",
                                 "INSERT INTO api_keys(key_sha256, tenant_id, created_at) VALUES(?2, ?1, ?3)"};
    for (int i = 0; i < 2 && rc == VS_OK; i++) {
        rc = vs_sqlite_prepare(&c->sq, sql[i], "key rotation", &st, err);
        if (rc != VS_OK) break;
        vs_sqlite_bind_text(st, 1, name);
        if (i == 1) {
            vs_sqlite_bind_text(st, 2, key_hash);
            sqlite3_bind_int64(st, 3, vs_wall_ms());
        }
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "key rotation");
        sqlite3_finalize(st);
    }
    if (rc == VS_OK) rc = vs_sqlite_exec(&c->sq, "COMMIT", "commit key rotation", err);
    if (rc != VS_OK) vs_sqlite_rollback(&c->sq);
    return rc;
}

vs_err vs_tenant_rotate_key(vs_catalog *c, const char *name, char key_out[VS_API_KEY_MAX], vs_error *err) {
    key_out[0] = '\0';
    vs_err rc = vs_tenant_check(name, "key rotation", err);
    if (rc != VS_OK) return rc;
    char key[VS_API_KEY_MAX], hash[VS_SHA256_HEX];
    if ((rc = new_key(key, hash, "key rotation", err)) != VS_OK) return rc;
    pthread_mutex_lock(&c->sq.mu);
    rc = replace_keys(c, name, hash, err);
    pthread_mutex_unlock(&c->sq.mu);
    if (rc == VS_OK) memcpy(key_out, key, strlen(key) + 1);
    memset(key, 0, sizeof key);
    return rc;
}

vs_err vs_tenant_list(vs_catalog *c, vs_tenant_cb cb, void *ctx, vs_error *err) {
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    vs_err rc =
        vs_sqlite_prepare(&c->sq,
                          "SELECT t.id, t.created_at, (SELECT count(*) FROM api_keys k WHERE k.tenant_id = t.id)"
                          " FROM tenants t ORDER BY t.id",
                          "list tenants", &st, err);
    if (rc == VS_OK) {
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW)
            if (cb(ctx, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
                   sqlite3_column_int64(st, 2)) != 0)
                break;
        if (s != SQLITE_ROW && s != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "list tenants");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

/* Maps a presented API key to its tenant by the key's hash. */
vs_err vs_tenant_for_key(vs_catalog *c, const char *key, char tenant_out[VS_TENANT_MAX], vs_error *err) {
    tenant_out[0] = '\0';
    if (!key || !*key) return vs_fail(err, VS_ERR_NOT_FOUND, "unknown API key");
    /* Look up by the hash: an attacker who times the B-tree search learns
     * about hashes of keys, not about the keys. */
    char hash[VS_SHA256_HEX];
    vs_sha256_hex(key, strlen(key), hash);
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    vs_err rc =
        vs_sqlite_prepare(&c->sq, "SELECT tenant_id FROM api_keys WHERE key_sha256 = ?1", "look up api key", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, hash);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(st, 0);
            if (t && strlen(t) < VS_TENANT_MAX) memcpy(tenant_out, t, strlen(t) + 1);
            else rc = vs_fail(err, VS_ERR_CORRUPT, "catalog %s: api key row with a bad tenant id", c->sq.path);
        } else if (s == SQLITE_DONE) {
            rc = vs_fail(err, VS_ERR_NOT_FOUND, "unknown API key");
        } else {
            rc = vs_sqlite_fail(&c->sq, err, "look up api key");
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

/* Counts tenants; -1 on a catalog error so callers fail closed. */
int64_t vs_tenant_count(vs_catalog *c) {
    int64_t n = -1;
    pthread_mutex_lock(&c->sq.mu);
    if (query_int(c, "SELECT count(*) FROM tenants", "count tenants", &n, NULL) != VS_OK) n = -1;
    pthread_mutex_unlock(&c->sq.mu);
    return n;
}

/* Stable lower-case status names used in API responses. */
const char *vs_image_status_name(vs_image_status s) {
    switch (s) {
    case VS_IMG_QUEUED: return "queued";
    case VS_IMG_PROCESSING: return "processing";
    case VS_IMG_DONE: return "done";
    case VS_IMG_FAILED: return "failed";
    case VS_IMG_ERASED: return "erased";
    }
    return "unknown";
}

/* Upserts the record of (tenant, sha256) in one statement, so concurrent
 * puts of one image never conflict. */
vs_err vs_image_record_put(vs_catalog *c, const char *tenant, const char *sha256, const char *external_id,
                           vs_image_status status, const char *record_json, vs_error *err) {
    vs_err rc = vs_tenant_check(tenant, "image record put", err);
    if (rc != VS_OK) return rc;
    if (!vs_sha256_hex_ok(sha256))
        return vs_fail(err, VS_ERR_INVALID_ARG, "image record put: sha256 must be 64 lower-case hex digits");
    if (status < VS_IMG_QUEUED || status > VS_IMG_FAILED)
        return vs_fail(err, VS_ERR_INVALID_ARG, "image record put: unknown status %d", (int)status);
    /* COALESCE keeps the stored external_id / record_json when NULL is passed. */
    static const char *sql =
        "INSERT INTO images(tenant_id, sha256, external_id, status, record_json, created_at, updated_at)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?6)"
        " ON CONFLICT(tenant_id, sha256) DO UPDATE SET"
        " external_id = COALESCE(excluded.external_id, images.external_id), status = excluded.status,"
        " record_json = COALESCE(excluded.record_json, images.record_json), updated_at = excluded.updated_at"
        " WHERE images.status != 4"; /* VS_IMG_ERASED stays */
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(&c->sq, sql, "put image record", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        vs_sqlite_bind_text(st, 2, sha256);
        vs_sqlite_bind_text(st, 3, external_id);
        sqlite3_bind_int(st, 4, (int)status);
        vs_sqlite_bind_text(st, 5, record_json);
        sqlite3_bind_int64(st, 6, vs_wall_ms());
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "put image record");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

vs_err vs_image_record_drop_face(vs_catalog *c, const char *tenant, const char *sha256, const char *face_id,
                                 vs_error *err) {
    vs_err rc = vs_tenant_check(tenant, "image record drop face", err);
    if (rc != VS_OK) return rc;
    if (!vs_sha256_hex_ok(sha256) || !face_id)
        return vs_fail(err, VS_ERR_INVALID_ARG, "image record drop face: sha256 must be 64 lower-case hex digits");
    /* json_set evaluates both values against the stored record: the entry
     * (stamped) is appended to faces_deleted, faces_indexed keeps the rest */
    static const char *sql =
        "UPDATE images SET updated_at = ?4, record_json = json_set(record_json,"
        " '$.faces_indexed', (SELECT json_group_array(json(value)) FROM json_each(images.record_json, '$.faces_indexed')"
        "   WHERE json_extract(value, '$.face_id') IS NOT ?3),"
        " '$.faces_deleted', json_insert(COALESCE(json_extract(record_json, '$.faces_deleted'), json('[]')), '$[#]',"
        "   (SELECT json_set(value, '$.deleted_at', ?4) FROM json_each(images.record_json, '$.faces_indexed')"
        "     WHERE json_extract(value, '$.face_id') = ?3 LIMIT 1)))"
        " WHERE tenant_id = ?1 AND sha256 = ?2 AND json_valid(record_json) AND EXISTS(SELECT 1 FROM"
        " json_each(images.record_json, '$.faces_indexed') WHERE json_extract(value, '$.face_id') = ?3)";
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(&c->sq, sql, "image record drop face", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        vs_sqlite_bind_text(st, 2, sha256);
        vs_sqlite_bind_text(st, 3, face_id);
        sqlite3_bind_int64(st, 4, vs_wall_ms());
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "image record drop face");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

vs_err vs_image_records_queue(vs_catalog *c, const char *tenant, const char *const *sha256,
                              const char *const *external_ids, int n, int *already_done, vs_error *err) {
    vs_err rc = vs_tenant_check(tenant, "queue image records", err);
    if (rc != VS_OK) return rc;
    for (int i = 0; i < n; i++)
        if (!vs_sha256_hex_ok(sha256[i]))
            return vs_fail(err, VS_ERR_INVALID_ARG, "queue image records: sha256 must be 64 lower-case hex digits");
    /* New -> QUEUED; FAILED -> QUEUED (a retry); QUEUED/PROCESSING/DONE stay. */
    static const char *sql =
        "INSERT INTO images(tenant_id, sha256, external_id, status, record_json, created_at, updated_at)"
        " VALUES(?1, ?2, ?3, 0, NULL, ?4, ?4)"
        " ON CONFLICT(tenant_id, sha256) DO UPDATE SET"
        " external_id = COALESCE(excluded.external_id, images.external_id),"
        " status = CASE WHEN images.status = 3 THEN 0 ELSE images.status END, updated_at = excluded.updated_at"
        " WHERE images.status != 4"; /* VS_IMG_ERASED stays */
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL, *q = NULL;
    rc = vs_sqlite_exec(&c->sq, "BEGIN IMMEDIATE", "begin queue image records", err);
    if (rc == VS_OK) rc = vs_sqlite_prepare(&c->sq, sql, "queue image records", &st, err);
    if (rc == VS_OK && already_done)
        rc = vs_sqlite_prepare(&c->sq, "SELECT status FROM images WHERE tenant_id = ?1 AND sha256 = ?2",
                               "queue image records", &q, err);
    int64_t now = vs_wall_ms();
    for (int i = 0; rc == VS_OK && i < n; i++) {
        if (already_done) { /* read before the upsert below, in the same transaction */
            sqlite3_reset(q);
            vs_sqlite_bind_text(q, 1, tenant);
            vs_sqlite_bind_text(q, 2, sha256[i]);
            int step = sqlite3_step(q);
            if (step != SQLITE_ROW && step != SQLITE_DONE) {
                rc = vs_sqlite_fail(&c->sq, err, "queue image records");
                break;
            }
            int was = step == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
            already_done[i] = was == VS_IMG_DONE ? 1 : was == VS_IMG_ERASED ? 2 : 0;
        }
        sqlite3_reset(st);
        vs_sqlite_bind_text(st, 1, tenant);
        vs_sqlite_bind_text(st, 2, sha256[i]);
        vs_sqlite_bind_text(st, 3, external_ids ? external_ids[i] : NULL);
        sqlite3_bind_int64(st, 4, now);
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "queue image records");
    }
    sqlite3_finalize(st);
    sqlite3_finalize(q);
    if (rc == VS_OK) rc = vs_sqlite_exec(&c->sq, "COMMIT", "commit queue image records", err);
    else vs_sqlite_rollback(&c->sq);
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

/* Copies the current row of a record query (sha256, status, record_json)
 * to the caller's outputs. Called with the mutex held. */
static vs_err read_record_row(vs_catalog *c, sqlite3_stmt *st, vs_image_status *status, char **record_json,
                              char sha_out[65], vs_error *err) {
    const char *sha = (const char *)sqlite3_column_text(st, 0);
    if (!vs_sha256_hex_ok(sha))
        return vs_fail(err, VS_ERR_CORRUPT, "catalog %s: image row with a bad sha256", c->sq.path);
    if (sha_out) memcpy(sha_out, sha, 65);
    if (status) *status = (vs_image_status)sqlite3_column_int(st, 1);
    if (record_json) {
        *record_json = NULL;
        if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
            const char *j = (const char *)sqlite3_column_text(st, 2);
            if (!j || !(*record_json = vs_strdup(j)))
                return vs_fail(err, VS_ERR_NOMEM, "catalog %s: image record: out of memory", c->sq.path);
        }
    }
    return VS_OK;
}

/* Reads one record of the tenant, by sha256 or by external id. */
vs_err vs_image_record_get(vs_catalog *c, const char *tenant, const char *sha256, const char *external_id,
                           vs_image_status *status, char **record_json, char sha_out[65], vs_error *err) {
    if (record_json) *record_json = NULL;
    vs_err rc = vs_tenant_check(tenant, "image record get", err);
    if (rc != VS_OK) return rc;
    if (!sha256 && !external_id)
        return vs_fail(err, VS_ERR_INVALID_ARG, "image record get: give a sha256 or an external id");
    /* The tenant is in every WHERE: no path returns another tenant's row. An
     * external id may name several images; the most recently updated wins. */
    const char *sql = sha256
                          ? "SELECT sha256, status, record_json FROM images WHERE tenant_id = ?1 AND sha256 = ?2"
                          : "SELECT sha256, status, record_json FROM images WHERE tenant_id = ?1 AND external_id = ?2"
                            " ORDER BY updated_at DESC, sha256 LIMIT 1";
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(&c->sq, sql, "get image record", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        vs_sqlite_bind_text(st, 2, sha256 ? sha256 : external_id);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) rc = read_record_row(c, st, status, record_json, sha_out, err);
        else if (s == SQLITE_DONE)
            rc = vs_fail(err, VS_ERR_NOT_FOUND, "image %.128s not found in tenant %s", sha256 ? sha256 : external_id,
                         tenant);
        else rc = vs_sqlite_fail(&c->sq, err, "get image record");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

/* Deletes one record of the tenant (erasure). */
vs_err vs_image_record_delete(vs_catalog *c, const char *tenant, const char *sha256, vs_error *err) {
    vs_err rc = vs_tenant_check(tenant, "image record delete", err);
    if (rc != VS_OK) return rc;
    if (!sha256) return vs_fail(err, VS_ERR_INVALID_ARG, "image record delete: no sha256");
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(&c->sq, "DELETE FROM images WHERE tenant_id = ?1 AND sha256 = ?2", "delete image record",
                           &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        vs_sqlite_bind_text(st, 2, sha256);
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "delete image record");
        else if (sqlite3_changes(c->sq.db) == 0)
            rc = vs_fail(err, VS_ERR_NOT_FOUND, "image %.64s not found in tenant %s", sha256, tenant);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

vs_err vs_image_record_mark_erased(vs_catalog *c, const char *tenant, const char *sha256, vs_error *err) {
    vs_err rc = vs_tenant_check(tenant, "image record erase", err);
    if (rc != VS_OK) return rc;
    if (!vs_sha256_hex_ok(sha256))
        return vs_fail(err, VS_ERR_INVALID_ARG, "image record erase: sha256 must be 64 lower-case hex digits");
    static const char *sql =
        "INSERT INTO images(tenant_id, sha256, external_id, status, record_json, created_at, updated_at)"
        " VALUES(?1, ?2, NULL, 4, NULL, ?3, ?3)"
        " ON CONFLICT(tenant_id, sha256) DO UPDATE SET external_id = NULL, status = 4, record_json = NULL,"
        " updated_at = excluded.updated_at";
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(&c->sq, sql, "erase image record", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        vs_sqlite_bind_text(st, 2, sha256);
        sqlite3_bind_int64(st, 3, vs_wall_ms());
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "erase image record");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

/* Sums the progress of n images with one statement reused per image, in one
 * read transaction so the counts come from a single snapshot. json_extract
 * runs only on valid JSON of DONE records: a damaged record_json counts as
 * zero faces instead of failing the whole summary. */
vs_err vs_image_records_summary(vs_catalog *c, const char *tenant, const char *const *sha256, int n,
                                int64_t *processed, int64_t *faces_found, vs_error *err) {
    if (processed) *processed = 0;
    if (faces_found) *faces_found = 0;
    vs_err rc = vs_tenant_check(tenant, "image records summary", err);
    if (rc != VS_OK) return rc;
    if (n < 0 || (n > 0 && !sha256))
        return vs_fail(err, VS_ERR_INVALID_ARG, "image records summary: bad image count %d", n);
    for (int i = 0; i < n; i++)
        if (!vs_sha256_hex_ok(sha256[i]))
            return vs_fail(err, VS_ERR_INVALID_ARG, "image records summary: sha256 must be 64 lower-case hex digits");
    static const char *sql =
        "SELECT status, CASE WHEN status = ?3 AND json_valid(record_json)"
        " THEN json_extract(record_json, '$.faces_found') END"
        " FROM images WHERE tenant_id = ?1 AND sha256 = ?2";
    int64_t done = 0, faces = 0;
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_exec(&c->sq, "BEGIN", "begin image records summary", err);
    if (rc != VS_OK) {
        pthread_mutex_unlock(&c->sq.mu);
        return rc;
    }
    rc = vs_sqlite_prepare(&c->sq, sql, "image records summary", &st, err);
    for (int i = 0; rc == VS_OK && i < n; i++) {
        sqlite3_reset(st);
        vs_sqlite_bind_text(st, 1, tenant);
        vs_sqlite_bind_text(st, 2, sha256[i]);
        sqlite3_bind_int(st, 3, VS_IMG_DONE);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            int status = sqlite3_column_int(st, 0);
            if (status == VS_IMG_DONE || status == VS_IMG_FAILED || status == VS_IMG_ERASED) done++;
            if (status == VS_IMG_DONE && sqlite3_column_type(st, 1) == SQLITE_INTEGER)
                faces += sqlite3_column_int64(st, 1);
        } else if (s != SQLITE_DONE) {
            rc = vs_sqlite_fail(&c->sq, err, "image records summary");
        }
    }
    sqlite3_finalize(st);
    if (rc == VS_OK) rc = vs_sqlite_exec(&c->sq, "COMMIT", "commit image records summary", err);
    else vs_sqlite_rollback(&c->sq);
    pthread_mutex_unlock(&c->sq.mu);
    if (rc == VS_OK) {
        if (processed) *processed = done;
        if (faces_found) *faces_found = faces;
    }
    return rc;
}

/* Checks one erasure log entry before anything is written. */
static vs_err erasure_check(const char *tenant, const char *what, const char *detail_json, vs_error *err) {
    vs_err rc = vs_tenant_check(tenant, "erasure log", err);
    if (rc == VS_OK && (!what || !*what || !detail_json))
        rc = vs_fail(err, VS_ERR_INVALID_ARG, "erasure log: no kind or detail");
    return rc;
}

/* Inserts one (checked) erasure log entry; state 1 = in progress (an
 * erasure begun, see vs_erasure_begin), 0 = done. Called with the mutex held. */
static vs_err erasure_insert(vs_catalog *c, const char *tenant, const char *what, const char *detail_json, int state,
                             vs_error *err) {
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&c->sq,
                                  "INSERT INTO erasures(tenant_id, at, what, detail_json, state) VALUES(?1, ?2, ?3, ?4, ?5)",
                                  "erasure log", &st, err);
    if (rc != VS_OK) return rc;
    vs_sqlite_bind_text(st, 1, tenant);
    sqlite3_bind_int64(st, 2, vs_wall_ms());
    vs_sqlite_bind_text(st, 3, what);
    vs_sqlite_bind_text(st, 4, detail_json);
    sqlite3_bind_int(st, 5, state);
    if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "erasure log");
    sqlite3_finalize(st);
    return rc;
}

vs_err vs_erasure_log_add(vs_catalog *c, const char *tenant, const char *what, const char *detail_json, vs_error *err) {
    vs_err rc = erasure_check(tenant, what, detail_json, err);
    if (rc != VS_OK) return rc;
    pthread_mutex_lock(&c->sq.mu);
    rc = erasure_insert(c, tenant, what, detail_json, 0, err);
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

/* ---- an erasure in progress ------------------------------------------------ */

/* INVALID_ARG unless each of the n entries is a sha256 as we write them. */
static vs_err shas_check(const char *const *sha256, int n, const char *op, vs_error *err) {
    if (n < 0 || (n > 0 && !sha256)) return vs_fail(err, VS_ERR_INVALID_ARG, "%s: no images", op);
    for (int i = 0; i < n; i++)
        if (!vs_sha256_hex_ok(sha256[i]))
            return vs_fail(err, VS_ERR_INVALID_ARG, "%s: image %d is not a sha256 of 64 lower-case hex digits", op, i);
    return VS_OK;
}

/* Names n images in erasure id, not erased yet (a name given twice is kept
 * once). Called with the mutex held, inside a transaction. */
static vs_err erasure_images_insert(vs_catalog *c, int64_t id, const char *const *sha256, int n, vs_error *err) {
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&c->sq, "INSERT OR IGNORE INTO erasure_images(erasure_id, sha256) VALUES(?1, ?2)",
                                  "erasure plan", &st, err);
    for (int i = 0; rc == VS_OK && i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, id);
        vs_sqlite_bind_text(st, 2, sha256[i]);
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "erasure plan");
    }
    sqlite3_finalize(st);
    return rc;
}

/* 1 when entry id exists and is in progress, else 0; -1 on an error (err
 * set). Called with the mutex held. */
static int erasure_open(vs_catalog *c, int64_t id, const char *op, vs_error *err) {
    sqlite3_stmt *st = NULL;
    if (vs_sqlite_prepare(&c->sq, "SELECT state FROM erasures WHERE id = ?1", op, &st, err) != VS_OK) return -1;
    sqlite3_bind_int64(st, 1, id);
    int s = sqlite3_step(st), open = s == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
    if (s != SQLITE_ROW && s != SQLITE_DONE) open = -1, vs_sqlite_fail(&c->sq, err, op);
    sqlite3_finalize(st);
    return open;
}

vs_err vs_erasure_begin(vs_catalog *c, const char *tenant, const char *what, const char *detail_json,
                        const char *const *sha256, int n, int64_t *id, vs_error *err) {
    *id = 0;
    vs_err rc = erasure_check(tenant, what, detail_json, err);
    if (rc == VS_OK) rc = shas_check(sha256, n, "erasure begin", err);
    if (rc != VS_OK) return rc;
    pthread_mutex_lock(&c->sq.mu);
    rc = vs_sqlite_exec(&c->sq, "BEGIN IMMEDIATE", "begin erasure", err);
    if (rc == VS_OK) {
        rc = erasure_insert(c, tenant, what, detail_json, 1, err);
        if (rc == VS_OK) *id = sqlite3_last_insert_rowid(c->sq.db);
        if (rc == VS_OK) rc = erasure_images_insert(c, *id, sha256, n, err);
        if (rc == VS_OK) rc = vs_sqlite_exec(&c->sq, "COMMIT", "commit erasure begin", err);
        if (rc != VS_OK) vs_sqlite_rollback(&c->sq), *id = 0;
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

vs_err vs_erasure_plan(vs_catalog *c, int64_t id, const char *const *sha256, int n, vs_error *err) {
    vs_err rc = shas_check(sha256, n, "erasure plan", err);
    if (rc != VS_OK || n == 0) return rc;
    pthread_mutex_lock(&c->sq.mu);
    rc = vs_sqlite_exec(&c->sq, "BEGIN IMMEDIATE", "begin erasure plan", err);
    if (rc == VS_OK) {
        int open = erasure_open(c, id, "erasure plan", err);
        if (open < 0) rc = VS_ERR_BACKEND;
        else if (!open) rc = vs_fail(err, VS_ERR_NOT_FOUND, "erasure plan: no erasure %lld in progress", (long long)id);
        if (rc == VS_OK) rc = erasure_images_insert(c, id, sha256, n, err);
        if (rc == VS_OK) rc = vs_sqlite_exec(&c->sq, "COMMIT", "commit erasure plan", err);
        if (rc != VS_OK) vs_sqlite_rollback(&c->sq);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

vs_err vs_erasure_image_done(vs_catalog *c, int64_t id, const char *sha256, vs_error *err) {
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&c->sq, "UPDATE erasure_images SET done = 1 WHERE erasure_id = ?1 AND sha256 = ?2",
                                  "erasure image done", &st, err);
    if (rc == VS_OK) {
        sqlite3_bind_int64(st, 1, id);
        vs_sqlite_bind_text(st, 2, sha256);
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "erasure image done");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

/* The finished entry's detail replaces the begun one, and the list of its
 * images (now in the detail) is dropped. Called with the mutex held, inside
 * a transaction. */
static vs_err erasure_close(vs_catalog *c, int64_t id, const char *detail_json, vs_error *err) {
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&c->sq, "UPDATE erasures SET detail_json = ?2, state = 0 WHERE id = ?1 AND state = 1",
                                  "erasure finish", &st, err);
    if (rc != VS_OK) return rc;
    sqlite3_bind_int64(st, 1, id);
    vs_sqlite_bind_text(st, 2, detail_json);
    if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "erasure finish");
    else if (sqlite3_changes(c->sq.db) != 1)
        rc = vs_fail(err, VS_ERR_NOT_FOUND, "erasure finish: no erasure %lld in progress", (long long)id);
    sqlite3_finalize(st);
    if (rc == VS_OK) rc = vs_sqlite_prepare(&c->sq, "DELETE FROM erasure_images WHERE erasure_id = ?1", "erasure finish", &st, err);
    if (rc != VS_OK) return rc;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "erasure finish");
    sqlite3_finalize(st);
    return rc;
}

vs_err vs_erasure_finish(vs_catalog *c, int64_t id, const char *detail_json, vs_error *err) {
    if (!detail_json) return vs_fail(err, VS_ERR_INVALID_ARG, "erasure finish: no detail");
    pthread_mutex_lock(&c->sq.mu);
    vs_err rc = vs_sqlite_exec(&c->sq, "BEGIN IMMEDIATE", "begin erasure finish", err);
    if (rc == VS_OK) {
        rc = erasure_close(c, id, detail_json, err);
        if (rc == VS_OK) rc = vs_sqlite_exec(&c->sq, "COMMIT", "commit erasure finish", err);
        if (rc != VS_OK) vs_sqlite_rollback(&c->sq);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

vs_err vs_erasure_unfinished(vs_catalog *c, vs_erasure_open_cb cb, void *ctx, vs_error *err) {
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&c->sq, "SELECT id, tenant_id, what, detail_json FROM erasures WHERE state = 1 ORDER BY id",
                                  "unfinished erasures", &st, err);
    if (rc == VS_OK) {
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW)
            if (cb(ctx, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
                   (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3)) != 0)
                break;
        if (s != SQLITE_ROW && s != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "unfinished erasures");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

vs_err vs_erasure_images(vs_catalog *c, int64_t id, vs_erasure_image_cb cb, void *ctx, vs_error *err) {
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&c->sq, "SELECT sha256, done FROM erasure_images WHERE erasure_id = ?1 ORDER BY rowid",
                                  "erasure images", &st, err);
    if (rc == VS_OK) {
        sqlite3_bind_int64(st, 1, id);
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW)
            if (cb(ctx, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 1)) != 0) break;
        if (s != SQLITE_ROW && s != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "erasure images");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

vs_err vs_erasure_log_list(vs_catalog *c, const char *tenant, int64_t before, int limit, vs_erasure_cb cb, void *ctx,
                           vs_error *err) {
    vs_err rc = vs_tenant_check(tenant, "erasure log list", err);
    if (rc != VS_OK) return rc;
    if (limit < 1 || limit > 1000) return vs_fail(err, VS_ERR_INVALID_ARG, "erasure log list: limit must be 1..1000");
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(
        &c->sq,
        /* an erasure in progress (or cut by a crash, until the restart
         * finishes it) shows every image it has named so far; a face's
         * deletion and a block's lifting name no image (their detail names
         * the face or block) */
        "SELECT id, at, what, CASE WHEN state = 0 OR what IN ('face', 'block_lifted') THEN detail_json ELSE json_set(detail_json, '$.images',"
        " json((SELECT json_group_array(sha256) FROM (SELECT sha256 FROM erasure_images WHERE erasure_id = e.id"
        " ORDER BY rowid))), '$.images_erased', (SELECT count(*) FROM erasure_images WHERE erasure_id = e.id"
        " AND done = 1)) END FROM erasures e WHERE tenant_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
        "erasure log list", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        sqlite3_bind_int64(st, 2, before > 0 ? before : INT64_MAX);
        sqlite3_bind_int(st, 3, limit);
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW)
            if (cb(ctx, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                   (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3)) != 0)
                break;
        if (s != SQLITE_ROW && s != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "erasure log list");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

vs_err vs_tenant_ids(vs_catalog *c, vs_tenant_id_cb cb, void *ctx, vs_error *err) {
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&c->sq,
                                  "SELECT id FROM tenants UNION SELECT tenant_id FROM images UNION SELECT 'default'"
                                  " ORDER BY 1",
                                  "list tenant ids", &st, err);
    if (rc == VS_OK) {
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(st, 0);
            if (vs_tenant_name_ok(t) && cb(ctx, t) != 0) break;
        }
        if (s != SQLITE_ROW && s != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "list tenant ids");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

/* ---- settings ------------------------------------------------------------- */

vs_err vs_setting_get(vs_catalog *c, const char *key, char **value, vs_error *err) {
    *value = NULL;
    if (!key || !*key) return vs_fail(err, VS_ERR_INVALID_ARG, "setting get: no key");
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&c->sq, "SELECT value FROM settings WHERE key = ?1", "get setting", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, key);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            if (!(*value = vs_strdup((const char *)sqlite3_column_text(st, 0))))
                rc = vs_fail(err, VS_ERR_NOMEM, "catalog %s: setting %s: out of memory", c->sq.path, key);
        } else if (s == SQLITE_DONE) {
            rc = vs_fail(err, VS_ERR_NOT_FOUND, "catalog %s: setting %s is not set", c->sq.path, key);
        } else {
            rc = vs_sqlite_fail(&c->sq, err, "get setting");
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

/* Writes (value NULL: removes) one setting. Called with the mutex held. */
static vs_err setting_write(vs_catalog *c, const char *key, const char *value, vs_error *err) {
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&c->sq,
                                  value ? "INSERT INTO settings(key, value) VALUES(?1, ?2)"
                                          " ON CONFLICT(key) DO UPDATE SET value = excluded.value"
                                        : "DELETE FROM settings WHERE key = ?1",
                                  "put setting", &st, err);
    if (rc != VS_OK) return rc;
    vs_sqlite_bind_text(st, 1, key);
    if (value) vs_sqlite_bind_text(st, 2, value);
    if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "put setting");
    sqlite3_finalize(st);
    return rc;
}

vs_err vs_setting_put(vs_catalog *c, const char *key, const char *value, vs_error *err) {
    if (!key || !*key) return vs_fail(err, VS_ERR_INVALID_ARG, "setting put: no key");
    pthread_mutex_lock(&c->sq.mu);
    vs_err rc = setting_write(c, key, value, err);
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

/* ---- reindex staging ------------------------------------------------------ */

vs_err vs_reindex_record_put(vs_catalog *c, const char *tenant, const char *sha256, vs_image_status status,
                             const char *record_json, vs_error *err) {
    vs_err rc = vs_tenant_check(tenant, "reindex record put", err);
    if (rc != VS_OK) return rc;
    if (!vs_sha256_hex_ok(sha256))
        return vs_fail(err, VS_ERR_INVALID_ARG, "reindex record put: sha256 must be 64 lower-case hex digits");
    if (status != VS_IMG_DONE && status != VS_IMG_FAILED)
        return vs_fail(err, VS_ERR_INVALID_ARG, "reindex record put: status must be done or failed, not %s",
                       vs_image_status_name(status));
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(&c->sq,
                           "INSERT INTO reindex_images(tenant_id, sha256, status, record_json) VALUES(?1, ?2, ?3, ?4)"
                           " ON CONFLICT(tenant_id, sha256) DO UPDATE SET status = excluded.status,"
                           " record_json = excluded.record_json",
                           "stage reindex record", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        vs_sqlite_bind_text(st, 2, sha256);
        sqlite3_bind_int(st, 3, (int)status);
        vs_sqlite_bind_text(st, 4, record_json);
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "stage reindex record");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

vs_err vs_reindex_pending(vs_catalog *c, vs_image_ref *out, int cap, int *n, vs_error *err) {
    *n = 0;
    if (cap < 1) return vs_fail(err, VS_ERR_INVALID_ARG, "reindex pending: capacity %d", cap);
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(&c->sq,
                                  "SELECT i.tenant_id, i.sha256 FROM images i WHERE i.status = 2 AND NOT EXISTS"
                                  " (SELECT 1 FROM reindex_images r WHERE r.tenant_id = i.tenant_id AND r.sha256 = i.sha256)"
                                  " ORDER BY i.tenant_id, i.sha256 LIMIT ?1",
                                  "reindex pending", &st, err);
    if (rc == VS_OK) {
        sqlite3_bind_int(st, 1, cap);
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(st, 0), *sha = (const char *)sqlite3_column_text(st, 1);
            if (!vs_tenant_name_ok(t) || !vs_sha256_hex_ok(sha)) {
                rc = vs_fail(err, VS_ERR_CORRUPT, "catalog %s: image row with a bad tenant or sha256", c->sq.path);
                break;
            }
            memcpy(out[*n].tenant, t, strlen(t) + 1);
            memcpy(out[*n].sha256, sha, 65);
            (*n)++;
        }
        if (rc == VS_OK && s != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "reindex pending");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

vs_err vs_reindex_counts(vs_catalog *c, int64_t *images, int64_t *staged, int64_t *failed, vs_error *err) {
    pthread_mutex_lock(&c->sq.mu);
    vs_err rc = query_int(c, "SELECT count(*) FROM images WHERE status = 2", "reindex counts", images, err);
    if (rc == VS_OK)
        rc = query_int(c,
                       "SELECT count(*) FROM images i JOIN reindex_images r"
                       " ON r.tenant_id = i.tenant_id AND r.sha256 = i.sha256 WHERE i.status = 2",
                       "reindex counts", staged, err);
    if (rc == VS_OK)
        rc = query_int(c,
                       "SELECT count(*) FROM images i JOIN reindex_images r"
                       " ON r.tenant_id = i.tenant_id AND r.sha256 = i.sha256 WHERE i.status = 2 AND r.status = 3",
                       "reindex counts", failed, err);
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

vs_err vs_reindex_reset(vs_catalog *c, vs_error *err) {
    pthread_mutex_lock(&c->sq.mu);
    vs_err rc = vs_sqlite_exec(&c->sq, "DELETE FROM reindex_images", "reset reindex", err);
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

/* The switch's statements, inside its transaction. Called with the mutex held. */
static vs_err switch_locked(vs_catalog *c, const vs_setting *set, int n_set, const vs_erasure_entry *log, int n_log,
                            vs_error *err) {
    sqlite3_stmt *st = NULL;
    /* the faces the tenant deleted stay deleted: a staged record made before
     * a face's deletion would list it as indexed again, so the live
     * record's faces_deleted is carried over and those ids leave
     * faces_indexed (their points are swept by vs_reindex) */
    vs_err rc = vs_sqlite_prepare(
        &c->sq,
        "UPDATE images SET status = r.status, updated_at = ?1, record_json = CASE WHEN json_valid(images.record_json)"
        " AND json_valid(r.record_json) AND json_array_length(images.record_json, '$.faces_deleted') > 0 THEN"
        " json_set(r.record_json, '$.faces_deleted', json(json_extract(images.record_json, '$.faces_deleted')),"
        " '$.faces_indexed', json((SELECT json_group_array(json(value)) FROM json_each(r.record_json, '$.faces_indexed')"
        " WHERE json_extract(value, '$.face_id') NOT IN (SELECT json_extract(d.value, '$.face_id')"
        " FROM json_each(images.record_json, '$.faces_deleted') d WHERE json_extract(d.value, '$.face_id') IS NOT NULL))))"
        " ELSE r.record_json END"
        " FROM reindex_images r WHERE images.tenant_id = r.tenant_id AND images.sha256 = r.sha256 AND images.status = 2",
        "reindex switch", &st, err);
    if (rc == VS_OK) {
        sqlite3_bind_int64(st, 1, vs_wall_ms());
        if (sqlite3_step(st) != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "reindex switch");
        sqlite3_finalize(st);
    }
    for (int i = 0; rc == VS_OK && i < n_set; i++) rc = setting_write(c, set[i].key, set[i].value, err);
    for (int i = 0; rc == VS_OK && i < n_log; i++) rc = erasure_insert(c, log[i].tenant, log[i].what, log[i].detail_json, 0, err);
    if (rc == VS_OK) rc = vs_sqlite_exec(&c->sq, "DELETE FROM reindex_images", "reindex switch", err);
    return rc;
}

vs_err vs_reindex_switch(vs_catalog *c, const vs_setting *set, int n_set, const vs_erasure_entry *log, int n_log,
                         vs_error *err) {
    for (int i = 0; i < n_set; i++)
        if (!set[i].key || !*set[i].key) return vs_fail(err, VS_ERR_INVALID_ARG, "reindex switch: setting %d has no key", i);
    for (int i = 0; i < n_log; i++) {
        vs_err rc = erasure_check(log[i].tenant, log[i].what, log[i].detail_json, err);
        if (rc != VS_OK) return rc;
    }
    pthread_mutex_lock(&c->sq.mu);
    vs_err rc = vs_sqlite_exec(&c->sq, "BEGIN IMMEDIATE", "begin reindex switch", err);
    if (rc == VS_OK) {
        rc = switch_locked(c, set, n_set, log, n_log, err);
        if (rc == VS_OK) rc = vs_sqlite_exec(&c->sq, "COMMIT", "commit reindex switch", err);
        if (rc != VS_OK) vs_sqlite_rollback(&c->sq);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

/* Binds the filters of q to the listing statement (numbered as in its SQL). */
static void bind_image_query(sqlite3_stmt *st, const vs_image_query *q) {
    vs_sqlite_bind_text(st, 1, q->tenant);
    sqlite3_bind_int(st, 2, q->status);
    vs_sqlite_bind_text(st, 3, q->site);
    vs_sqlite_bind_text(st, 4, q->sha256);
    sqlite3_bind_int64(st, 5, q->since_ms);
    sqlite3_bind_int64(st, 6, q->until_ms);
    vs_sqlite_bind_text(st, 7, q->after_sha256);
    sqlite3_bind_int64(st, 8, q->after_created_ms);
    sqlite3_bind_int(st, 9, q->limit);
}

/* One SQL for every filter combination: a NULL or negative parameter turns
 * its condition off, so there is no SQL text assembled at run time. The
 * cursor is the (created_at, sha256) of the last row the caller saw; rows
 * come strictly after it in (created_at DESC, sha256 DESC) order. */
vs_err vs_image_record_list(vs_catalog *c, const vs_image_query *q, vs_image_row_cb cb, void *ctx, vs_error *err) {
    vs_err rc = vs_tenant_check(q->tenant, "image record list", err);
    if (rc != VS_OK) return rc;
    if (q->limit < 1) return vs_fail(err, VS_ERR_INVALID_ARG, "image record list: limit must be at least 1");
    if (q->after_sha256 && !vs_sha256_hex_ok(q->after_sha256))
        return vs_fail(err, VS_ERR_INVALID_ARG, "image record list: cursor sha256 must be 64 lower-case hex digits");
    static const char *sql =
        "SELECT sha256, status, external_id, record_json, created_at, updated_at FROM images"
        " WHERE tenant_id = ?1 AND status != 4 AND (?2 < 0 OR status = ?2)"
        " AND (?3 IS NULL OR json_extract(record_json, '$.site') = ?3) AND (?4 IS NULL OR sha256 = ?4)"
        " AND created_at >= ?5 AND created_at < ?6"
        " AND (?7 IS NULL OR created_at < ?8 OR (created_at = ?8 AND sha256 < ?7))"
        " ORDER BY created_at DESC, sha256 DESC LIMIT ?9";
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(&c->sq, sql, "image record list", &st, err);
    if (rc == VS_OK) {
        bind_image_query(st, q);
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
            vs_image_row row = {(const char *)sqlite3_column_text(st, 0), (vs_image_status)sqlite3_column_int(st, 1),
                                (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3),
                                sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 5)};
            if (!vs_sha256_hex_ok(row.sha256)) {
                rc = vs_fail(err, VS_ERR_CORRUPT, "catalog %s: image row with a bad sha256", c->sq.path);
                break;
            }
            if (cb(ctx, &row) != 0) break;
        }
        if (rc == VS_OK && s != SQLITE_ROW && s != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "image record list");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

vs_err vs_image_records_changed(vs_catalog *c, const char *tenant, int64_t after_ms, const char *after_sha, int limit,
                                vs_image_row_cb cb, void *ctx, vs_error *err) {
    vs_err rc = vs_tenant_check(tenant, "image records changed", err);
    if (rc != VS_OK) return rc;
    if (limit < 1) return vs_fail(err, VS_ERR_INVALID_ARG, "image records changed: limit must be at least 1");
    static const char *sql =
        "SELECT sha256, status, external_id, record_json, created_at, updated_at FROM images"
        " WHERE tenant_id = ?1 AND (updated_at > ?2 OR (updated_at = ?2 AND sha256 > ?3))"
        " ORDER BY updated_at, sha256 LIMIT ?4";
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(&c->sq, sql, "image records changed", &st, err);
    if (rc == VS_OK) {
        sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, after_ms);
        sqlite3_bind_text(st, 3, after_sha ? after_sha : "", -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, limit);
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
            vs_image_row row = {(const char *)sqlite3_column_text(st, 0), (vs_image_status)sqlite3_column_int(st, 1),
                                (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3),
                                sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 5)};
            if (!row.sha256 || cb(ctx, &row) != 0) break;
        }
        if (s != SQLITE_ROW && s != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "image records changed");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}

/* One grouped scan of the tenant's rows (the (tenant, created_at) index
 * covers the tenant prefix), plus the DONE ones updated in the last minute. */
vs_err vs_image_record_counts(vs_catalog *c, const char *tenant, int64_t counts[VS_IMG_ERASED + 1],
                              int64_t *done_last_minute, int64_t *faces_indexed, vs_error *err) {
    vs_err rc = vs_tenant_check(tenant, "image record counts", err);
    if (rc != VS_OK) return rc;
    for (int i = 0; i <= VS_IMG_ERASED; i++) counts[i] = 0;
    *done_last_minute = *faces_indexed = 0;
    static const char *sql =
        "SELECT status, count(*), sum(CASE WHEN updated_at >= ?2 THEN 1 ELSE 0 END),"
        " sum(CASE WHEN status = 2 THEN coalesce(json_array_length(record_json, '$.faces_indexed'), 0) ELSE 0 END)"
        " FROM images WHERE tenant_id = ?1 GROUP BY status";
    pthread_mutex_lock(&c->sq.mu);
    sqlite3_stmt *st = NULL;
    rc = vs_sqlite_prepare(&c->sq, sql, "image record counts", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        sqlite3_bind_int64(st, 2, vs_wall_ms() - 60000);
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
            int k = sqlite3_column_int(st, 0);
            if (k < 0 || k > VS_IMG_ERASED) continue;
            counts[k] = sqlite3_column_int64(st, 1);
            if (k == VS_IMG_DONE) {
                *done_last_minute = sqlite3_column_int64(st, 2);
                *faces_indexed = sqlite3_column_int64(st, 3);
            }
        }
        if (s != SQLITE_DONE) rc = vs_sqlite_fail(&c->sq, err, "image record counts");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&c->sq.mu);
    return rc;
}
