/* test_signals.c - what the server says about itself: credentials hidden in
 * every URL it logs or echoes (vs_redact, vs_fail), repeated errors logged
 * once per interval with a count (vs_ratelog), and the readiness checks
 * (vs_dir_check, storage error texts, dead-letter growth). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "vs_err.h"
#include "vs_health.h"
#include "vs_ratelog.h"
#include "vs_redact.h"

/* vs_redact of in, compared with want. */
static void redacts(const char *in, const char *want) {
    char out[512];
    vs_redact(in, out, sizeof out);
    if (strcmp(out, want) != 0) fail_msg("redact(%s) = %s, want %s", in, out, want);
}

static void test_url_userinfo_hidden(void **state) {
    (void)state;
    redacts("redis://:PASSWORD@host:6379/0", "redis://***@host:6379/0");
    redacts("redis://user:PASSWORD@host:99999/0", "redis://***@host:99999/0");
    redacts("http://user:s3cretpw@127.0.0.1:8080/a/b?x=1", "http://***@127.0.0.1:8080/a/b?x=1");
    redacts("http://token@host/", "http://***@host/");
    /* malformed: '@' inside the password, no path, spaces around */
    redacts("queue redis://:p@ss@wd@host: bad port", "queue redis://***@host: bad port");
    redacts("seed 'https://u:pw@h' failed", "seed 'https://***@h' failed");
    redacts("redis://:pw:with:colons@[::1]:6379", "redis://***@[::1]:6379");
    /* two URLs in one line, and an '@' in a path is not user-info */
    redacts("fetch http://a:b@x/p from https://c:d@y/q", "fetch http://***@x/p from https://***@y/q");
    redacts("http://host/user@example.com", "http://host/user@example.com");
    /* nothing to hide */
    redacts("no url here: a@b", "no url here: a@b");
    redacts("file:///data/blobs", "file:///data/blobs");
    redacts("", "");
}

static void test_query_secrets_hidden(void **state) {
    (void)state;
    redacts("http://h/x?key=abc&page=2", "http://h/x?key=***&page=2");
    redacts("https://b.s3/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=deadbeef#f",
            "https://b.s3/k?X-Amz-Credential=***&X-Amz-Signature=***#f");
    redacts("GET http://q:6333/c?api_key=K1 failed; token=plain", "GET http://q:6333/c?api_key=*** failed; token=plain");
    redacts("http://h/?keyword=cat&sig=1", "http://h/?keyword=cat&sig=***");
}

static void test_redact_cut_never_shows_secret(void **state) {
    (void)state;
    char out[20];
    vs_redact("redis://:PASSWORDPASSWORD@host", out, sizeof out);
    assert_null(strstr(out, "PASS"));
    assert_string_equal(out, "redis://***@host");
    char small[12];
    vs_redact("x http://u:SECRET@h/", small, sizeof small);
    assert_null(strstr(small, "SEC"));
    char buf[64] = "see http://u:SECRET@h/";
    vs_redact_inplace(buf, sizeof buf);
    assert_string_equal(buf, "see http://***@h/");
    assert_true(vs_redact_needed("http://u:p@h"));
    assert_false(vs_redact_needed("http://h/p"));
}

static void test_fail_messages_are_redacted(void **state) {
    (void)state;
    vs_error e = {0};
    vs_fail(&e, VS_ERR_INVALID_ARG, "queue open: redis URL %s: bad port", "redis://:PASSWORD@host:99999/0");
    assert_string_equal(e.msg, "queue open: redis URL redis://***@host:99999/0: bad port");
    /* a long path before the message is cut: the user-info was hidden first */
    char url[1000];
    snprintf(url, sizeof url, "http://user:PASSWORD@h/%0900d", 0);
    vs_fail(&e, VS_ERR_IO, "fetch %s", url);
    assert_null(strstr(e.msg, "PASSWORD"));
    assert_int_equal(strlen(e.msg), sizeof e.msg - 1);
    /* a message may name its own previous text */
    vs_fail(&e, VS_ERR_IO, "again: %s", e.msg);
    assert_int_equal(strncmp(e.msg, "again: fetch http://***@h/", 26), 0);
}

/* Sink of the ratelog tests: keeps the lines. */
typedef struct lines {
    char v[16][300];
    int n;
} lines;

static void keep(void *ctx, const char *line) {
    lines *l = ctx;
    if (l->n < 16) snprintf(l->v[l->n++], sizeof l->v[0], "%s", line);
}

static void test_ratelog_counts_repeats(void **state) {
    (void)state;
    lines got = {0};
    vs_ratelog rl;
    vs_ratelog_init(&rl, 10000, "w: ", keep, &got);
    /* 126 identical errors in 25 s, 5 a second: one line, then a count per 10 s */
    for (int i = 0; i < 126; i++) vs_ratelog_say(&rl, 1000 + i * 200, "queue: disk full", "w: queue: disk full");
    assert_int_equal(got.n, 3);
    assert_string_equal(got.v[0], "w: queue: disk full");
    assert_string_equal(got.v[1], "w: queue: disk full (50 more times in the last 10 s)");
    assert_string_equal(got.v[2], "w: queue: disk full (50 more times in the last 10 s)");
    /* the storm stops: flush reports the rest once the interval is over */
    vs_ratelog_flush(&rl, 26000);
    assert_int_equal(got.n, 3);
    vs_ratelog_flush(&rl, 31000);
    assert_int_equal(got.n, 4);
    assert_string_equal(got.v[3], "w: queue: disk full (25 more times in the last 10 s)");
    /* after a quiet interval the next occurrence is written as it is */
    vs_ratelog_say(&rl, 60000, "queue: disk full", "w: queue: disk full again");
    assert_string_equal(got.v[4], "w: queue: disk full again");
    /* another key is independent; lines are redacted */
    vs_ratelog_say(&rl, 60001, "fetch", "w: fetch http://u:SECRET@h/ failed");
    assert_string_equal(got.v[5], "w: fetch http://***@h/ failed");
    vs_ratelog_say(&rl, 60002, "queue: disk full", "w: queue: disk full");
    vs_ratelog_destroy(&rl, 61000);
    assert_int_equal(got.n, 7);
    assert_string_equal(got.v[6], "w: queue: disk full (1 more times in the last 1 s)");
}

static void test_ratelog_eviction_reports_count(void **state) {
    (void)state;
    lines got = {0};
    vs_ratelog rl;
    vs_ratelog_init(&rl, 10000, "", keep, &got);
    vs_ratelog_say(&rl, 0, "k0", "k0");
    vs_ratelog_say(&rl, 1, "k0", "k0");
    char k[8];
    for (int i = 1; i <= VS_RATELOG_KEYS; i++) { /* the last one evicts k0, the least recent */
        snprintf(k, sizeof k, "k%d", i);
        vs_ratelog_say(&rl, 10 + i, k, k);
    }
    assert_int_equal(got.n, 1 + 1 + VS_RATELOG_KEYS);
    assert_string_equal(got.v[VS_RATELOG_KEYS], "k0 (1 more times in the last 1 s)");
    vs_ratelog_destroy(&rl, 100);
}

static void test_dir_check(void **state) {
    (void)state;
    char dir[] = "/tmp/vs_signals_XXXXXX", msg[512];
    assert_non_null(mkdtemp(dir));
    assert_int_equal(vs_dir_check(dir, 0, msg, sizeof msg), VS_DIR_OK);
    assert_string_equal(msg, "");
    /* a floor above any disk's free space: full, naming the dir and the setting */
    assert_int_equal(vs_dir_check(dir, UINT64_MAX / 2, msg, sizeof msg), VS_DIR_FULL);
    assert_non_null(strstr(msg, dir));
    assert_non_null(strstr(msg, "VISAGE_MIN_FREE_MB"));
    /* the probe leaves nothing behind */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s)\"", dir);
    assert_int_equal(system(cmd), 0);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    assert_int_equal(vs_dir_check(missing, 0, msg, sizeof msg), VS_DIR_UNWRITABLE);
    assert_non_null(strstr(msg, "No such file or directory"));
    assert_string_equal(vs_dir_state_name(VS_DIR_FULL), "disk_full");
    rmdir(dir);
}

static void test_storage_texts(void **state) {
    (void)state;
    assert_true(vs_err_text_is_storage("queue pop: database or disk is full"));
    assert_true(vs_err_text_is_storage("store put raw-images/a: write: No space left on device"));
    assert_true(vs_err_text_is_storage("open x: Read-only file system"));
    assert_true(vs_err_text_is_storage("catalog: attempt to write a readonly database"));
    assert_false(vs_err_text_is_storage("decode: not a JPEG"));
    assert_false(vs_err_text_is_storage(NULL));
}

static void test_dead_watch(void **state) {
    (void)state;
    vs_dead_watch w;
    vs_dead_watch_init(&w, 300000);
    assert_int_equal(vs_dead_watch_add(&w, 0, 4), 0);       /* old dead letters are not "new" */
    assert_int_equal(vs_dead_watch_add(&w, 1000, 4), 0);
    assert_int_equal(vs_dead_watch_add(&w, 60000, 9), 5);
    assert_int_equal(vs_dead_watch_add(&w, 200000, 15), 11);
    /* five minutes after the growth it no longer counts */
    assert_int_equal(vs_dead_watch_add(&w, 200000 + 300001, 15), 0);
    /* an operator clears the list: no growth, and later growth counts from the new low */
    assert_int_equal(vs_dead_watch_add(&w, 520000, 0), 0);
    assert_int_equal(vs_dead_watch_add(&w, 540000, 3), 3);
    /* many calls a second keep the ring bounded and still see the growth */
    for (int i = 0; i < 10000; i++) vs_dead_watch_add(&w, 540000 + i, 3);
    assert_int_equal(w.n <= VS_DEAD_WATCH_SAMPLES, 1);
    assert_int_equal(vs_dead_watch_add(&w, 560000, 3), 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_userinfo_hidden),
        cmocka_unit_test(test_query_secrets_hidden),
        cmocka_unit_test(test_redact_cut_never_shows_secret),
        cmocka_unit_test(test_fail_messages_are_redacted),
        cmocka_unit_test(test_ratelog_counts_repeats),
        cmocka_unit_test(test_ratelog_eviction_reports_count),
        cmocka_unit_test(test_dir_check),
        cmocka_unit_test(test_storage_texts),
        cmocka_unit_test(test_dead_watch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
