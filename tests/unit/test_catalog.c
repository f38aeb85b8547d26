/* test_catalog.c - the embedded catalog: tenants and hashed API keys, image
 * records (by sha256 and by external id, kept fields, tenant scoping),
 * persistence across reopen and refusal of foreign or newer files. Each test
 * works in its own temporary data dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vs_alloc.h"
#include "vs_catalog.h"
#include "vs_err.h"
#include "vs_hash.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

typedef struct fixture {
    char dir[64];
    char db[128];
    vs_catalog *c;
} fixture;

/* Makes a fresh data dir and opens a catalog in it. */
static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/vs_catalog_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->db, sizeof f->db, "%s/catalog.db", f->dir);
    vs_error e = {0};
    if (vs_catalog_open(f->dir, &f->c, &e) != VS_OK) {
        fprintf(stderr, "open: %s\n", e.msg);
        return -1;
    }
    *state = f;
    return 0;
}

/* Removes the catalog files and the data dir. */
static int teardown(void **state) {
    fixture *f = *state;
    char p[160];
    vs_catalog_close(f->c);
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", f->db, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static void test_tenant_key_format_and_lookup(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    char key[VS_API_KEY_MAX], key2[VS_API_KEY_MAX], tenant[VS_TENANT_MAX];
    assert_int_equal(vs_tenant_count(f->c), 0);
    assert_int_equal(vs_tenant_create(f->c, "acme", key, &e), VS_OK);
    assert_int_equal(strlen(key), 4 + 48);
    assert_memory_equal(key, "vsk_", 4);
    for (int i = 4; i < 52; i++) assert_non_null(strchr("0123456789abcdef", key[i]));
    assert_int_equal(vs_tenant_create(f->c, "beta.co-2_x", key2, &e), VS_OK);
    assert_string_not_equal(key, key2);
    assert_int_equal(vs_tenant_count(f->c), 2);

    assert_int_equal(vs_tenant_for_key(f->c, key, tenant, &e), VS_OK);
    assert_string_equal(tenant, "acme");
    assert_int_equal(vs_tenant_for_key(f->c, key2, tenant, &e), VS_OK);
    assert_string_equal(tenant, "beta.co-2_x");

    char wrong[VS_API_KEY_MAX];
    strcpy(wrong, key);
    wrong[10] = wrong[10] == '0' ? '1' : '0';
    assert_int_equal(vs_tenant_for_key(f->c, wrong, tenant, &e), VS_ERR_NOT_FOUND);
    assert_string_equal(tenant, "");
    assert_int_equal(vs_tenant_for_key(f->c, "", tenant, &e), VS_ERR_NOT_FOUND);
    assert_int_equal(vs_tenant_for_key(f->c, "vsk_", tenant, &e), VS_ERR_NOT_FOUND);
}

/* Only the SHA-256 of a key is on disk, never the key itself. */
static void test_only_key_hash_is_stored(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    char key[VS_API_KEY_MAX], hash[VS_SHA256_HEX];
    assert_int_equal(vs_tenant_create(f->c, "acme", key, &e), VS_OK);
    vs_sha256_hex(key, strlen(key), hash);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT key_sha256, tenant_id FROM api_keys", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), hash);
    assert_string_equal((const char *)sqlite3_column_text(st, 1), "acme");
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
    struct stat sb;
    assert_int_equal(stat(f->db, &sb), 0);
    assert_int_equal(sb.st_mode & 077, 0);
}

static void test_duplicate_and_bad_names_rejected(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    char key[VS_API_KEY_MAX];
    assert_int_equal(vs_tenant_create(f->c, "acme", key, &e), VS_OK);
    assert_int_equal(vs_tenant_create(f->c, "acme", key, &e), VS_ERR_INVALID_ARG);
    assert_non_null(strstr(e.msg, "already exists"));
    assert_string_equal(key, "");
    assert_int_equal(vs_tenant_count(f->c), 1);

    char long_ok[64], too_long[65];
    memset(long_ok, 'a', 63);
    long_ok[63] = '\0';
    memset(too_long, 'b', 64);
    too_long[64] = '\0';
    const char *bad[] = {"", "a b", "a/b", "../x", "ténant", "a;DROP", "x\n", too_long};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        vs_error_clear(&e);
        assert_int_equal(vs_tenant_create(f->c, bad[i], key, &e), VS_ERR_INVALID_ARG);
        assert_non_null(strstr(e.msg, "[A-Za-z0-9_.-]"));
    }
    assert_int_equal(vs_tenant_create(f->c, NULL, key, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_tenant_create(f->c, long_ok, key, &e), VS_OK);
    assert_int_equal(vs_tenant_count(f->c), 2);
}

static void test_image_records(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_image_status st;
    char *json = NULL, sha[65];
    assert_int_equal(vs_image_record_get(f->c, "acme", SHA_A, NULL, &st, &json, sha, &e), VS_ERR_NOT_FOUND);
    assert_null(json);

    assert_int_equal(vs_image_record_put(f->c, "acme", SHA_A, "ext-1", VS_IMG_QUEUED, NULL, &e), VS_OK);
    assert_int_equal(vs_image_record_get(f->c, "acme", SHA_A, NULL, &st, &json, sha, &e), VS_OK);
    assert_int_equal(st, VS_IMG_QUEUED);
    assert_null(json); /* none stored yet */
    assert_string_equal(sha, SHA_A);

    /* update: NULL external_id keeps "ext-1", JSON is set */
    assert_int_equal(vs_image_record_put(f->c, "acme", SHA_A, NULL, VS_IMG_DONE, "{\"faces\":2}", &e), VS_OK);
    memset(sha, 0, sizeof sha);
    assert_int_equal(vs_image_record_get(f->c, "acme", NULL, "ext-1", &st, &json, sha, &e), VS_OK);
    assert_int_equal(st, VS_IMG_DONE);
    assert_string_equal(json, "{\"faces\":2}");
    assert_string_equal(sha, SHA_A);
    vs_free(json);
    json = NULL;

    /* NULL record_json keeps the stored JSON; status still changes */
    assert_int_equal(vs_image_record_put(f->c, "acme", SHA_A, NULL, VS_IMG_PROCESSING, NULL, &e), VS_OK);
    assert_int_equal(vs_image_record_get(f->c, "acme", SHA_A, NULL, &st, &json, NULL, &e), VS_OK);
    assert_int_equal(st, VS_IMG_PROCESSING);
    assert_string_equal(json, "{\"faces\":2}");
    vs_free(json);
    json = NULL;

    /* a new external_id replaces the old one */
    assert_int_equal(vs_image_record_put(f->c, "acme", SHA_A, "ext-2", VS_IMG_DONE, NULL, &e), VS_OK);
    assert_int_equal(vs_image_record_get(f->c, "acme", NULL, "ext-1", &st, NULL, NULL, &e), VS_ERR_NOT_FOUND);
    assert_int_equal(vs_image_record_get(f->c, "acme", NULL, "ext-2", &st, NULL, sha, &e), VS_OK);
    assert_string_equal(sha, SHA_A);

    /* status and outputs may be NULL */
    assert_int_equal(vs_image_record_get(f->c, "acme", SHA_A, NULL, NULL, NULL, NULL, &e), VS_OK);
    assert_string_equal(vs_image_status_name(VS_IMG_FAILED), "failed");
    assert_string_equal(vs_image_status_name(VS_IMG_QUEUED), "queued");
}

/* An erased image leaves a marker without its record or external id; the
 * marker survives queueing (reported as 2) and late record puts, is per
 * tenant, and deleting the record lifts it. */
static void test_erased_marker(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_image_status st;
    char *json = NULL;
    assert_int_equal(vs_image_record_put(f->c, "acme", SHA_A, "ext-9", VS_IMG_DONE, "{\"faces_found\":1}", &e), VS_OK);
    assert_int_equal(vs_image_record_mark_erased(f->c, "acme", SHA_A, &e), VS_OK);
    assert_int_equal(vs_image_record_get(f->c, "acme", SHA_A, NULL, &st, &json, NULL, &e), VS_OK);
    assert_int_equal(st, VS_IMG_ERASED);
    assert_null(json);
    assert_string_equal(vs_image_status_name(VS_IMG_ERASED), "erased");
    assert_int_equal(vs_image_record_get(f->c, "acme", NULL, "ext-9", &st, NULL, NULL, &e), VS_ERR_NOT_FOUND);
    /* a result that raced the erasure does not bring it back */
    assert_int_equal(vs_image_record_put(f->c, "acme", SHA_A, "ext-9", VS_IMG_DONE, "{\"faces_found\":1}", &e), VS_OK);
    assert_int_equal(vs_image_record_get(f->c, "acme", SHA_A, NULL, &st, NULL, NULL, &e), VS_OK);
    assert_int_equal(st, VS_IMG_ERASED);
    const char *shas[2] = {SHA_A, SHA_B};
    int done[2] = {7, 7};
    assert_int_equal(vs_image_records_queue(f->c, "acme", shas, NULL, 2, done, &e), VS_OK);
    assert_int_equal(done[0], 2);
    assert_int_equal(done[1], 0);
    assert_int_equal(vs_image_record_get(f->c, "acme", SHA_A, NULL, &st, NULL, NULL, &e), VS_OK);
    assert_int_equal(st, VS_IMG_ERASED);
    /* another tenant's copy is its own */
    assert_int_equal(vs_image_records_queue(f->c, "other", shas, NULL, 1, done, &e), VS_OK);
    assert_int_equal(done[0], 0);
    /* a marker for an image never seen is created too; a bad sha is refused */
    assert_int_equal(vs_image_record_mark_erased(f->c, "acme", SHA_B, &e), VS_OK);
    assert_int_equal(vs_image_record_mark_erased(f->c, "acme", "nothex", &e), VS_ERR_INVALID_ARG);
    /* lifting it: the record goes, the image may come again */
    assert_int_equal(vs_image_record_delete(f->c, "acme", SHA_A, &e), VS_OK);
    assert_int_equal(vs_image_records_queue(f->c, "acme", shas, NULL, 1, done, &e), VS_OK);
    assert_int_equal(done[0], 0);
}

static void test_record_args_checked(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    assert_int_equal(vs_image_record_put(f->c, "acme", "abc", NULL, VS_IMG_DONE, NULL, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_image_record_put(f->c, "acme", NULL, NULL, VS_IMG_DONE, NULL, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_image_record_put(f->c, "acme", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL,
                                         VS_IMG_DONE, NULL, &e),
                     VS_ERR_INVALID_ARG);
    assert_int_equal(vs_image_record_put(f->c, "a/b", SHA_A, NULL, VS_IMG_DONE, NULL, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_image_record_put(f->c, "acme", SHA_A, NULL, (vs_image_status)9, NULL, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_image_record_get(f->c, "acme", NULL, NULL, NULL, NULL, NULL, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_image_record_get(f->c, NULL, SHA_A, NULL, NULL, NULL, NULL, &e), VS_ERR_INVALID_ARG);
}

/* Tenant B sees nothing of tenant A: not by sha, not by external id, and
 * cannot delete or overwrite it. */
static void test_tenant_scoping(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_image_status st;
    char *json = NULL;
    assert_int_equal(vs_image_record_put(f->c, "tenant-a", SHA_A, "shared-ext", VS_IMG_DONE, "{\"owner\":\"a\"}", &e),
                     VS_OK);
    assert_int_equal(vs_image_record_get(f->c, "tenant-b", SHA_A, NULL, &st, &json, NULL, &e), VS_ERR_NOT_FOUND);
    assert_null(json);
    assert_int_equal(vs_image_record_get(f->c, "tenant-b", NULL, "shared-ext", &st, &json, NULL, &e),
                     VS_ERR_NOT_FOUND);
    assert_int_equal(vs_image_record_delete(f->c, "tenant-b", SHA_A, &e), VS_ERR_NOT_FOUND);

    /* the same image in tenant B is a separate record */
    assert_int_equal(vs_image_record_put(f->c, "tenant-b", SHA_A, "shared-ext", VS_IMG_FAILED, "{\"owner\":\"b\"}", &e),
                     VS_OK);
    assert_int_equal(vs_image_record_get(f->c, "tenant-a", NULL, "shared-ext", &st, &json, NULL, &e), VS_OK);
    assert_int_equal(st, VS_IMG_DONE);
    assert_string_equal(json, "{\"owner\":\"a\"}");
    vs_free(json);
    assert_int_equal(vs_image_record_get(f->c, "tenant-b", SHA_A, NULL, &st, &json, NULL, &e), VS_OK);
    assert_int_equal(st, VS_IMG_FAILED);
    assert_string_equal(json, "{\"owner\":\"b\"}");
    vs_free(json);
}

static void test_delete(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    assert_int_equal(vs_image_record_put(f->c, "acme", SHA_A, "x", VS_IMG_DONE, "{}", &e), VS_OK);
    assert_int_equal(vs_image_record_put(f->c, "acme", SHA_B, "y", VS_IMG_DONE, "{}", &e), VS_OK);
    assert_int_equal(vs_image_record_delete(f->c, "acme", SHA_A, &e), VS_OK);
    assert_int_equal(vs_image_record_get(f->c, "acme", SHA_A, NULL, NULL, NULL, NULL, &e), VS_ERR_NOT_FOUND);
    assert_int_equal(vs_image_record_get(f->c, "acme", NULL, "x", NULL, NULL, NULL, &e), VS_ERR_NOT_FOUND);
    assert_int_equal(vs_image_record_get(f->c, "acme", SHA_B, NULL, NULL, NULL, NULL, &e), VS_OK);
    assert_int_equal(vs_image_record_delete(f->c, "acme", SHA_A, &e), VS_ERR_NOT_FOUND);
}

static void test_persists_across_reopen(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    char key[VS_API_KEY_MAX], tenant[VS_TENANT_MAX], *json = NULL;
    vs_image_status st;
    assert_int_equal(vs_tenant_create(f->c, "acme", key, &e), VS_OK);
    assert_int_equal(vs_image_record_put(f->c, "acme", SHA_A, "ext", VS_IMG_DONE, "{\"n\":1}", &e), VS_OK);
    vs_catalog_close(f->c);
    f->c = NULL;
    assert_int_equal(vs_catalog_open(f->dir, &f->c, &e), VS_OK);
    assert_int_equal(vs_tenant_count(f->c), 1);
    assert_int_equal(vs_tenant_for_key(f->c, key, tenant, &e), VS_OK);
    assert_string_equal(tenant, "acme");
    assert_int_equal(vs_image_record_get(f->c, "acme", NULL, "ext", &st, &json, NULL, &e), VS_OK);
    assert_int_equal(st, VS_IMG_DONE);
    assert_string_equal(json, "{\"n\":1}");
    vs_free(json);
}

/* Progress of a set of images: DONE and FAILED count as processed, faces
 * are summed over DONE records only; missing, queued and processing images
 * are not processed; a record without a usable faces_found adds nothing. */
static void test_records_summary(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    char sha[8][65];
    for (int i = 0; i < 8; i++) snprintf(sha[i], sizeof sha[i], "%064x", i + 1);
    assert_int_equal(vs_image_record_put(f->c, "acme", sha[0], NULL, VS_IMG_DONE,
                                         "{\"image_sha256\":\"x\",\"status\":\"done\",\"faces_found\":2}", &e),
                     VS_OK);
    assert_int_equal(vs_image_record_put(f->c, "acme", sha[1], NULL, VS_IMG_DONE, "{\"faces_found\":5,\"faces\":[]}", &e),
                     VS_OK);
    assert_int_equal(vs_image_record_put(f->c, "acme", sha[2], NULL, VS_IMG_FAILED, "{\"faces_found\":9}", &e), VS_OK);
    assert_int_equal(vs_image_record_put(f->c, "acme", sha[3], NULL, VS_IMG_QUEUED, NULL, &e), VS_OK);
    assert_int_equal(vs_image_record_put(f->c, "acme", sha[4], NULL, VS_IMG_PROCESSING, "{\"faces_found\":4}", &e),
                     VS_OK);
    assert_int_equal(vs_image_record_put(f->c, "acme", sha[5], NULL, VS_IMG_DONE, "not json", &e), VS_OK);
    assert_int_equal(vs_image_record_put(f->c, "acme", sha[6], NULL, VS_IMG_DONE, NULL, &e), VS_OK);
    /* sha[7] has no record; sha[0] in another tenant does not count for acme */
    assert_int_equal(vs_image_record_put(f->c, "other", sha[7], NULL, VS_IMG_DONE, "{\"faces_found\":100}", &e), VS_OK);
    const char *list[8];
    for (int i = 0; i < 8; i++) list[i] = sha[i];
    int64_t processed = -1, faces = -1;
    assert_int_equal(vs_image_records_summary(f->c, "acme", list, 8, &processed, &faces, &e), VS_OK);
    assert_int_equal(processed, 5); /* 0, 1, 2, 5, 6 */
    assert_int_equal(faces, 7);     /* 2 + 5 */

    assert_int_equal(vs_image_records_summary(f->c, "other", list, 8, &processed, &faces, &e), VS_OK);
    assert_int_equal(processed, 1);
    assert_int_equal(faces, 100);
    assert_int_equal(vs_image_records_summary(f->c, "acme", list, 0, &processed, &faces, &e), VS_OK);
    assert_int_equal(processed, 0);
    assert_int_equal(faces, 0);
    assert_int_equal(vs_image_records_summary(f->c, "acme", list, 2, NULL, &faces, &e), VS_OK);
    assert_int_equal(faces, 7);

    list[3] = "abc";
    assert_int_equal(vs_image_records_summary(f->c, "acme", list, 8, &processed, &faces, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_image_records_summary(f->c, "a/b", list, 2, &processed, &faces, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_image_records_summary(f->c, "acme", list, -1, &processed, &faces, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_image_records_summary(f->c, "acme", NULL, 1, &processed, &faces, &e), VS_ERR_INVALID_ARG);
}

/* Opens the catalog file of f with plain SQLite and runs sql. */
static void raw_exec(const fixture *f, const char *sql) {
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_garbage_file_refused(void **state) {
    fixture *f = *state;
    vs_catalog_close(f->c);
    f->c = NULL;
    char p[160];
    snprintf(p, sizeof p, "%s-wal", f->db);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", f->db);
    unlink(p);
    FILE *fp = fopen(f->db, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 4096; i++) fputc("not a database at all\n"[i % 22], fp);
    fclose(fp);
    vs_error e = {0};
    vs_catalog *c = (vs_catalog *)1;
    assert_int_equal(vs_catalog_open(f->dir, &c, &e), VS_ERR_BACKEND);
    assert_null(c);
    assert_non_null(strstr(e.msg, "catalog.db"));
    assert_non_null(strstr(e.msg, "not a database"));
}

static void test_newer_schema_refused(void **state) {
    fixture *f = *state;
    vs_catalog_close(f->c);
    f->c = NULL;
    raw_exec(f, "PRAGMA user_version=99");
    vs_error e = {0};
    vs_catalog *c = NULL;
    assert_int_equal(vs_catalog_open(f->dir, &c, &e), VS_ERR_UNSUPPORTED);
    assert_null(c);
    assert_non_null(strstr(e.msg, "99"));
    assert_non_null(strstr(e.msg, "newer"));
}

static void test_foreign_database_refused(void **state) {
    fixture *f = *state;
    vs_catalog_close(f->c);
    f->c = NULL;
    raw_exec(f, "PRAGMA user_version=0; CREATE TABLE other(x)");
    vs_error e = {0};
    vs_catalog *c = NULL;
    assert_int_equal(vs_catalog_open(f->dir, &c, &e), VS_ERR_CORRUPT);
    assert_non_null(strstr(e.msg, "not a visage catalog"));
}

typedef struct writer_arg {
    vs_catalog *c;
    int id;
    int failures;
} writer_arg;

/* Writes and reads back 50 records of its own tenant. */
static void *writer(void *p) {
    writer_arg *a = p;
    char tenant[16], sha[65];
    snprintf(tenant, sizeof tenant, "t%d", a->id);
    for (int i = 0; i < 50; i++) {
        vs_error e = {0};
        snprintf(sha, sizeof sha, "%064x", i);
        vs_image_status st;
        if (vs_image_record_put(a->c, tenant, sha, NULL, VS_IMG_DONE, tenant, &e) != VS_OK) a->failures++;
        char *json = NULL;
        if (vs_image_record_get(a->c, tenant, sha, NULL, &st, &json, NULL, &e) != VS_OK || strcmp(json, tenant) != 0)
            a->failures++;
        vs_free(json);
    }
    return NULL;
}

static void test_concurrent_use(void **state) {
    fixture *f = *state;
    pthread_t th[4];
    writer_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (writer_arg){f->c, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, writer, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
}

typedef struct log_seen {
    int n;
    int64_t ids[8];
    char what[8][32];
    char detail[8][128];
    int stop_after;
} log_seen;

static int collect_log(void *ctx, int64_t id, int64_t at_ms, const char *what, const char *detail_json) {
    log_seen *s = ctx;
    assert_true(at_ms > 0);
    s->ids[s->n] = id;
    snprintf(s->what[s->n], sizeof s->what[0], "%s", what);
    snprintf(s->detail[s->n], sizeof s->detail[0], "%s", detail_json);
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

/* The erasure log: per tenant, newest first, pages by id, arguments checked,
 * kept across a reopen. */
static void test_erasure_log(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    assert_int_equal(vs_erasure_log_add(f->c, "acme", "image", "{\"faces_deleted\":2}", &e), VS_OK);
    assert_int_equal(vs_erasure_log_add(f->c, "other", "face", "{}", &e), VS_OK);
    assert_int_equal(vs_erasure_log_add(f->c, "acme", "person", "{\"images_erased\":3}", &e), VS_OK);
    log_seen s = {0};
    assert_int_equal(vs_erasure_log_list(f->c, "acme", 0, 10, collect_log, &s, &e), VS_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.what[0], "person");
    assert_string_equal(s.detail[0], "{\"images_erased\":3}");
    assert_string_equal(s.what[1], "image");
    assert_true(s.ids[0] > s.ids[1]);
    log_seen page = {0};
    assert_int_equal(vs_erasure_log_list(f->c, "acme", s.ids[0], 10, collect_log, &page, &e), VS_OK);
    assert_int_equal(page.n, 1);
    assert_string_equal(page.what[0], "image");
    log_seen one = {.stop_after = 1};
    assert_int_equal(vs_erasure_log_list(f->c, "acme", 0, 10, collect_log, &one, &e), VS_OK);
    assert_int_equal(one.n, 1); /* the callback stopped it */
    log_seen none = {0};
    assert_int_equal(vs_erasure_log_list(f->c, "nobody", 0, 10, collect_log, &none, &e), VS_OK);
    assert_int_equal(none.n, 0);
    assert_int_equal(vs_erasure_log_add(f->c, "bad/name", "image", "{}", &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_erasure_log_add(f->c, "acme", "", "{}", &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_erasure_log_add(f->c, "acme", "image", NULL, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_erasure_log_list(f->c, "acme", 0, 0, collect_log, &none, &e), VS_ERR_INVALID_ARG);
    assert_non_null(strstr(e.msg, "limit"));
    assert_int_equal(vs_erasure_log_list(f->c, "acme", 0, 1001, collect_log, &none, &e), VS_ERR_INVALID_ARG);
    vs_catalog_close(f->c);
    assert_int_equal(vs_catalog_open(f->dir, &f->c, &e), VS_OK);
    log_seen again = {0};
    assert_int_equal(vs_erasure_log_list(f->c, "acme", 0, 10, collect_log, &again, &e), VS_OK);
    assert_int_equal(again.n, 2);
}

static int count_tenant(void *ctx, const char *name, int64_t created_ms, int64_t n_keys) {
    char *out = ctx;
    char line[128];
    assert_true(created_ms > 0);
    snprintf(line, sizeof line, "%s:%lld,", name, (long long)n_keys);
    strcat(out, line);
    return 0;
}

/* Rotation: the new key works, every old one stops at once; unknown
 * tenants and bad names are refused; list shows tenants and key counts. */
static void test_key_rotation_and_list(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    char k1[VS_API_KEY_MAX], k2[VS_API_KEY_MAX], k3[VS_API_KEY_MAX], t[VS_TENANT_MAX];
    assert_int_equal(vs_tenant_create(f->c, "acme", k1, &e), VS_OK);
    assert_int_equal(vs_tenant_create(f->c, "zeta", k3, &e), VS_OK);
    assert_int_equal(vs_tenant_rotate_key(f->c, "acme", k2, &e), VS_OK);
    assert_string_not_equal(k1, k2);
    assert_int_equal(vs_tenant_for_key(f->c, k1, t, &e), VS_ERR_NOT_FOUND);
    assert_int_equal(vs_tenant_for_key(f->c, k2, t, &e), VS_OK);
    assert_string_equal(t, "acme");
    assert_int_equal(vs_tenant_for_key(f->c, k3, t, &e), VS_OK); /* another tenant's key untouched */
    assert_string_equal(t, "zeta");
    char key[VS_API_KEY_MAX];
    assert_int_equal(vs_tenant_rotate_key(f->c, "nobody", key, &e), VS_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "nobody"));
    assert_string_equal(key, "");
    assert_int_equal(vs_tenant_rotate_key(f->c, "bad/name", key, &e), VS_ERR_INVALID_ARG);
    char out[256] = "";
    assert_int_equal(vs_tenant_list(f->c, count_tenant, out, &e), VS_OK);
    assert_string_equal(out, "acme:1,zeta:1,");
    assert_int_equal(vs_tenant_count(f->c), 2);
}

/* A catalog of schema version 1 (before settings and reindex staging):
 * upgraded in place at open, its data kept. */
static void test_upgrade_from_version_1(void **state) {
    fixture *f = *state;
    vs_catalog_close(f->c);
    f->c = NULL;
    char p[160];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", f->db, suffix[i]);
        unlink(p);
    }
    raw_exec(f, "CREATE TABLE tenants(id TEXT PRIMARY KEY, created_at INT);"
                "CREATE TABLE api_keys(key_sha256 TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id),"
                " created_at INT);"
                "CREATE TABLE images(tenant_id TEXT, sha256 TEXT, external_id TEXT, status INT, record_json TEXT,"
                " created_at INT, updated_at INT, PRIMARY KEY(tenant_id, sha256));"
                "CREATE INDEX images_external ON images(tenant_id, external_id);"
                "CREATE TABLE erasures(id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, at INT NOT NULL,"
                " what TEXT NOT NULL, detail_json TEXT NOT NULL);"
                "CREATE INDEX erasures_tenant ON erasures(tenant_id, id);"
                "INSERT INTO images VALUES('acme','" SHA_A "',NULL,2,'{\"v\":1}',1,1);"
                "PRAGMA user_version=1;");
    vs_error e = {0};
    assert_int_equal(vs_catalog_open(f->dir, &f->c, &e), VS_OK);
    char *rec = NULL;
    vs_image_status st;
    assert_int_equal(vs_image_record_get(f->c, "acme", SHA_A, NULL, &st, &rec, NULL, &e), VS_OK);
    assert_int_equal(st, VS_IMG_DONE);
    assert_string_equal(rec, "{\"v\":1}");
    vs_free(rec);
    char *v = NULL;
    assert_int_equal(vs_setting_get(f->c, "faces", &v, &e), VS_ERR_NOT_FOUND);
    assert_int_equal(vs_setting_put(f->c, "faces", "faces_v1", &e), VS_OK);
    vs_catalog_close(f->c);
    assert_int_equal(vs_catalog_open(f->dir, &f->c, &e), VS_OK); /* at version 2 now: opened as is */
    assert_int_equal(vs_setting_get(f->c, "faces", &v, &e), VS_OK);
    assert_string_equal(v, "faces_v1");
    vs_free(v);
}

/* Collects the sha256s a listing gives, in order, and the last row's cursor. */
typedef struct listed {
    char shas[8][65];
    int n;
    int64_t last_created;
} listed;

static int collect_row(void *ctx, const vs_image_row *row) {
    listed *l = ctx;
    if (l->n < 8) memcpy(l->shas[l->n++], row->sha256, 65);
    l->last_created = row->created_ms;
    return 0;
}

#define SHA_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define SHA_D "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"

static void test_image_listing(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    assert_int_equal(vs_image_record_put(f->c, "acme", SHA_A, NULL, VS_IMG_DONE, "{\"site\":\"news\",\"faces_indexed\":[{},{}]}", &e), VS_OK);
    assert_int_equal(vs_image_record_put(f->c, "acme", SHA_B, "ext-b", VS_IMG_DONE, "{\"site\":\"blog\",\"faces_indexed\":[{}]}", &e), VS_OK);
    assert_int_equal(vs_image_record_put(f->c, "acme", SHA_C, NULL, VS_IMG_QUEUED, NULL, &e), VS_OK);
    assert_int_equal(vs_image_record_put(f->c, "acme", SHA_D, NULL, VS_IMG_DONE, "{}", &e), VS_OK);
    assert_int_equal(vs_image_record_mark_erased(f->c, "acme", SHA_D, &e), VS_OK);
    assert_int_equal(vs_image_record_put(f->c, "other", SHA_A, NULL, VS_IMG_DONE, "{}", &e), VS_OK);
    raw_exec(f, "UPDATE images SET created_at = 100 WHERE sha256 = '" SHA_A "';"
                "UPDATE images SET created_at = 200 WHERE sha256 IN ('" SHA_B "', '" SHA_C "');");
    /* newest first, sha256 descending on a tie; the erased one and the other tenant's never */
    vs_image_query q = {.tenant = "acme", .status = -1, .since_ms = INT64_MIN, .until_ms = INT64_MAX, .limit = 2};
    listed l = {0};
    assert_int_equal(vs_image_record_list(f->c, &q, collect_row, &l, &e), VS_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.shas[0], SHA_C);
    assert_string_equal(l.shas[1], SHA_B);
    q.after_sha256 = SHA_B; /* the cursor: strictly after (200, B) */
    q.after_created_ms = l.last_created;
    l = (listed){0};
    assert_int_equal(vs_image_record_list(f->c, &q, collect_row, &l, &e), VS_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.shas[0], SHA_A);
    /* filters */
    vs_image_query site = {.tenant = "acme", .status = -1, .site = "blog", .since_ms = INT64_MIN, .until_ms = INT64_MAX,
                           .limit = 10};
    l = (listed){0};
    assert_int_equal(vs_image_record_list(f->c, &site, collect_row, &l, &e), VS_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.shas[0], SHA_B);
    vs_image_query range = {.tenant = "acme", .status = VS_IMG_DONE, .since_ms = 100, .until_ms = 200, .limit = 10};
    l = (listed){0};
    assert_int_equal(vs_image_record_list(f->c, &range, collect_row, &l, &e), VS_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.shas[0], SHA_A);
    /* counts: by status, and the faces the DONE records list */
    int64_t counts[VS_IMG_ERASED + 1], last_min = 0, faces = 0;
    assert_int_equal(vs_image_record_counts(f->c, "acme", counts, &last_min, &faces, &e), VS_OK);
    assert_int_equal(counts[VS_IMG_DONE], 2);
    assert_int_equal(counts[VS_IMG_QUEUED], 1);
    assert_int_equal(counts[VS_IMG_ERASED], 1);
    assert_int_equal(faces, 3);
    assert_int_equal(last_min, 2);
    q.after_sha256 = "nothex";
    assert_int_equal(vs_image_record_list(f->c, &q, collect_row, &l, &e), VS_ERR_INVALID_ARG);
}

static void test_settings(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    char *v = (char *)1;
    assert_int_equal(vs_setting_get(f->c, "active", &v, &e), VS_ERR_NOT_FOUND);
    assert_null(v);
    assert_non_null(strstr(e.msg, "active"));
    assert_int_equal(vs_setting_put(f->c, "active", "{\"faces\":\"faces_v2\"}", &e), VS_OK);
    assert_int_equal(vs_setting_put(f->c, "active", "{\"faces\":\"faces_v3\"}", &e), VS_OK);
    assert_int_equal(vs_setting_get(f->c, "active", &v, &e), VS_OK);
    assert_string_equal(v, "{\"faces\":\"faces_v3\"}");
    vs_free(v);
    assert_int_equal(vs_setting_put(f->c, "active", NULL, &e), VS_OK);
    assert_int_equal(vs_setting_get(f->c, "active", &v, &e), VS_ERR_NOT_FOUND);
    assert_int_equal(vs_setting_put(f->c, "", "x", &e), VS_ERR_INVALID_ARG);
}

static int collect_tenant(void *ctx, const char *t) {
    char *buf = ctx;
    strcat(buf, t);
    strcat(buf, ",");
    return 0;
}

/* Staged records stay aside until the switch, which takes them for images
 * still DONE only, with the settings and log entries, all at once. */
static void test_reindex_staging_and_switch(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    char key[VS_API_KEY_MAX], sha_c[65], tenants[256] = "";
    memset(sha_c, 'c', 64);
    sha_c[64] = '\0';
    assert_int_equal(vs_tenant_create(f->c, "zeta", key, &e), VS_OK);
    assert_int_equal(vs_image_record_put(f->c, "acme", SHA_A, NULL, VS_IMG_DONE, "{\"old\":\"a\"}", &e), VS_OK);
    assert_int_equal(vs_image_record_put(f->c, "acme", SHA_B, NULL, VS_IMG_DONE, "{\"old\":\"b\"}", &e), VS_OK);
    assert_int_equal(vs_image_record_put(f->c, "beta", sha_c, NULL, VS_IMG_QUEUED, NULL, &e), VS_OK);
    assert_int_equal(vs_tenant_ids(f->c, collect_tenant, tenants, &e), VS_OK);
    assert_string_equal(tenants, "acme,beta,default,zeta,");
    vs_image_ref refs[4];
    int n = 0;
    int64_t images = 0, staged = -1, failed = -1;
    assert_int_equal(vs_reindex_pending(f->c, refs, 4, &n, &e), VS_OK);
    assert_int_equal(n, 2); /* the DONE ones, in order; the queued one is for the workers */
    assert_string_equal(refs[0].sha256, SHA_A);
    assert_string_equal(refs[1].tenant, "acme");
    assert_int_equal(vs_reindex_record_put(f->c, "acme", SHA_A, VS_IMG_DONE, "{\"new\":\"a\"}", &e), VS_OK);
    assert_int_equal(vs_reindex_record_put(f->c, "acme", SHA_B, VS_IMG_FAILED, "{\"new\":\"b\"}", &e), VS_OK);
    assert_int_equal(vs_reindex_record_put(f->c, "acme", SHA_B, VS_IMG_QUEUED, "{}", &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_reindex_counts(f->c, &images, &staged, &failed, &e), VS_OK);
    assert_int_equal(images, 2);
    assert_int_equal(staged, 2);
    assert_int_equal(failed, 1);
    assert_int_equal(vs_reindex_pending(f->c, refs, 4, &n, &e), VS_OK);
    assert_int_equal(n, 0);
    /* staged records are not the image's record yet */
    char *rec = NULL;
    vs_image_status st;
    assert_int_equal(vs_image_record_get(f->c, "acme", SHA_A, NULL, &st, &rec, NULL, &e), VS_OK);
    assert_string_equal(rec, "{\"old\":\"a\"}");
    vs_free(rec);
    /* erased before the switch: stays erased */
    assert_int_equal(vs_image_record_mark_erased(f->c, "acme", SHA_A, &e), VS_OK);
    vs_setting set[2] = {{"active", "v2"}, {"reindex", NULL}};
    vs_erasure_entry log[1] = {{"acme", "block_dropped", "{\"block_id\":\"b1\"}"}};
    assert_int_equal(vs_setting_put(f->c, "reindex", "{}", &e), VS_OK);
    vs_erasure_entry bad[1] = {{"a/b", "x", "{}"}};
    assert_int_equal(vs_reindex_switch(f->c, set, 2, bad, 1, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_reindex_switch(f->c, set, 2, log, 1, &e), VS_OK);
    assert_int_equal(vs_image_record_get(f->c, "acme", SHA_A, NULL, &st, &rec, NULL, &e), VS_OK);
    assert_int_equal(st, VS_IMG_ERASED);
    assert_null(rec);
    assert_int_equal(vs_image_record_get(f->c, "acme", SHA_B, NULL, &st, &rec, NULL, &e), VS_OK);
    assert_int_equal(st, VS_IMG_FAILED);
    assert_string_equal(rec, "{\"new\":\"b\"}");
    vs_free(rec);
    char *v = NULL;
    assert_int_equal(vs_setting_get(f->c, "active", &v, &e), VS_OK);
    assert_string_equal(v, "v2");
    vs_free(v);
    assert_int_equal(vs_setting_get(f->c, "reindex", &v, &e), VS_ERR_NOT_FOUND);
    log_seen s = {0};
    assert_int_equal(vs_erasure_log_list(f->c, "acme", 0, 10, collect_log, &s, &e), VS_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.what[0], "block_dropped");
    assert_int_equal(vs_reindex_counts(f->c, &images, &staged, &failed, &e), VS_OK);
    assert_int_equal(staged, 0); /* the staging is empty again */
    assert_int_equal(vs_reindex_record_put(f->c, "acme", SHA_B, VS_IMG_DONE, "{}", &e), VS_OK);
    assert_int_equal(vs_reindex_reset(f->c, &e), VS_OK);
    assert_int_equal(vs_reindex_pending(f->c, refs, 0, &n, &e), VS_ERR_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tenant_key_format_and_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_key_hash_is_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_and_bad_names_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_args_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erased_marker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_scoping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persists_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_summary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_database_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erasure_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_rotation_and_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_from_version_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reindex_staging_and_switch, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
