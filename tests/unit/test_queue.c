/* test_queue.c - the embedded (SQLite) queue: the queue contract
 * (contract_queue.h: order, leases, retries, dead letters, durability,
 * wake(), many producers and consumers), then refusing a queue.db that is
 * not ours. Each test gets its own mkdtemp data dir; short visibility
 * timeouts keep it quick. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "contract_queue.h"

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* Rows left in queue.db's messages table (acked and dead ones are deleted). */
static long long held(fixture *f) {
    char path[128];
    snprintf(path, sizeof path, "%s/queue.db", f->dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM messages", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/vs_test_queue_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    strcpy(f->url, "embedded");
    f->opts = (vs_queue_opts){.data_dir = f->dir, .visibility_ms = 200, .max_attempts = 3};
    f->held = held;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    close_all(f);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 64; i++) fputs(text, fp);
    fclose(fp);
}

static void test_refuses_foreign_files(void **state) {
    fixture *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/queue.db", f->dir);
    write_file(path, "this is not a SQLite database, just some text in the way. ");
    vs_queue *q = NULL;
    vs_error e = {0};
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    assert_int_equal(vs_queue_open("embedded", &f->opts, &q, &e), VS_ERR_CORRUPT);
    assert_null(q);
    assert_non_null(strstr(e.msg, "queue.db"));
    assert_non_null(strstr(e.msg, "not a"));
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_size, before.st_size); /* untouched */

    /* a real SQLite database, but someone else's */
    remove(path);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE messages(x); INSERT INTO messages VALUES(1);", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(vs_queue_open("embedded", &f->opts, &q, &e), VS_ERR_CORRUPT);
    assert_non_null(strstr(e.msg, "not a visage queue"));
    /* and it was left as it was: not switched to WAL, no tables added */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "delete");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* ours by its id, but a version from the future */
    remove(path);
    f->q = open_q(f);
    f->q->ops->close(f->q);
    f->q = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(vs_queue_open("embedded", &f->opts, &q, &e), VS_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "version 99"));

    /* ours by id and version, but a table missing a column */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=1; DROP TABLE dead; CREATE TABLE dead(id INTEGER);", NULL,
                                  NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(vs_queue_open("embedded", &f->opts, &q, &e), VS_ERR_CORRUPT);
    assert_non_null(strstr(e.msg, "wrong schema"));

    assert_int_equal(vs_queue_open("amqp://localhost:5672/", &f->opts, &q, &e), VS_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "amqp"));
    vs_queue_opts none = {0};
    assert_int_equal(vs_queue_open("embedded", &none, &q, &e), VS_ERR_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        CONTRACT_QUEUE_TESTS(setup, teardown),
        cmocka_unit_test_setup_teardown(contract_throughput, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_foreign_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
