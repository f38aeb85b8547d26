/* test_store.c - the file:// blob store: the store contract
 * (contract_store.h), with no temp file left after any test, then what is
 * the file backend's own: its layout, key rules, pruning racing with puts,
 * open errors, and the signed paths a blob URL relies on. Every store lives
 * in a mkdtemp dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "contract_store.h"

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* Counts the temp files a put leaves behind under dir (there must be none). */
static int tmp_count;
static int count_tmp(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag;
    if (!strncmp(p + ftw->base, ".vstmp.", 7)) tmp_count++;
    return 0;
}
static int temp_files(const char *dir) {
    tmp_count = 0;
    nftw(dir, count_tmp, 16, FTW_PHYS);
    return tmp_count;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/vs_test_store_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    char url[128];
    snprintf(url, sizeof url, "file://%s/blobs", f->dir);
    vs_error e = {0};
    if (vs_store_open(url, &f->s, &e) != VS_OK) {
        fprintf(stderr, "open: %s\n", e.msg);
        return -1;
    }
    *state = f;
    return 0;
}

/* Fails the test that left a temp file behind. */
static int teardown(void **state) {
    fixture *f = *state;
    vs_store_close(f->s);
    int left = temp_files(f->dir);
    if (left) fprintf(stderr, "%d temp files left under %s\n", left, f->dir);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return left ? -1 : 0;
}

/* The documented layout DIR/bucket/key, files 0600 whatever the umask; a delete
 * prunes the parents it emptied, not one still in use nor the bucket. */
static void test_layout(void **state) {
    fixture *f = *state;
    vs_store *s = f->s;
    assert_int_equal(put_str(s, "raw-images", "t/abc.jpg", "first version, long text"), VS_OK);
    assert_int_equal(put_str(s, "raw-images", "t/abc.jpg", "hello"), VS_OK);
    assert_int_equal(put_str(s, "raw-images", "t/sub/deep/x.bin", "12345678"), VS_OK);
    char path[256];
    snprintf(path, sizeof path, "%s/blobs/raw-images/t/abc.jpg", f->dir);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, 5);
    assert_int_equal(sb.st_mode & 0777, 0600); /* biometric data: owner only, whatever the umask */
    vs_error e = {0};
    assert_int_equal(vs_store_del(s, "raw-images", "t/sub/deep/x.bin", &e), VS_OK);
    snprintf(path, sizeof path, "%s/blobs/raw-images/t/sub", f->dir);
    assert_int_not_equal(stat(path, &sb), 0); /* emptied parents pruned */
    snprintf(path, sizeof path, "%s/blobs/raw-images/t", f->dir);
    assert_int_equal(stat(path, &sb), 0); /* but not one that still holds abc.jpg */
    assert_int_equal(vs_store_del(s, "raw-images", "t/abc.jpg", &e), VS_OK);
    snprintf(path, sizeof path, "%s/blobs/raw-images", f->dir);
    assert_int_equal(stat(path, &sb), 0); /* the bucket itself stays */
}

/* vs_store_key_ok itself, and the file backend's own refusals: a temp
 * file's name, and nothing written outside the bucket. */
static void test_key_rules(void **state) {
    fixture *f = *state;
    char long_key[600];
    memset(long_key, 'k', sizeof long_key);
    long_key[512] = '\0';
    assert_true(vs_store_key_ok(long_key));
    long_key[512] = 'k';
    long_key[513] = '\0';
    assert_false(vs_store_key_ok(long_key));
    assert_true(vs_store_key_ok("t/abc.jpg"));
    assert_true(vs_store_key_ok("a..b/c...jpg")); /* dots inside a name are fine */
    const char *bad[] = {"../x", "/abs", "a\x01", "", "a/../b", "a/..", "..", ".", "a/./b", "a//b", "a/",
                         "a\\b", "a\x7f", "a\nb", long_key, NULL};
    for (int i = 0; bad[i]; i++) assert_false(vs_store_key_ok(bad[i]));
    assert_false(vs_store_key_ok(NULL));
    vs_error e = {0};
    assert_int_equal(vs_store_put(f->s, "b", "x/.vstmp.1234", "x", 1, NULL, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_store_put(f->s, "b", "../escaped", "x", 1, NULL, &e), VS_ERR_INVALID_ARG);
    char path[256];
    snprintf(path, sizeof path, "%s/blobs/escaped", f->dir);
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0); /* nothing was written outside the bucket */
}

typedef struct churn_arg {
    vs_store *s;
    const char *key;
    int failures;
} churn_arg;

/* Puts then deletes its key 100 times; the delete prunes the shared parent
 * directories whenever they look empty, under the other thread's feet. */
static void *churn(void *arg) {
    churn_arg *c = arg;
    for (int i = 0; i < 100; i++) {
        vs_error e = {0};
        if (vs_store_put(c->s, "race", c->key, "x", 1, NULL, &e) != VS_OK) {
            fprintf(stderr, "churn put: %s\n", e.msg);
            c->failures++;
        }
        if (vs_store_del(c->s, "race", c->key, &e) != VS_OK) c->failures++;
    }
    return NULL;
}

static void test_put_races_with_prune(void **state) {
    fixture *f = *state;
    churn_arg c[2] = {{f->s, "d/x/y/a", 0}, {f->s, "d/x/y/b", 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, churn, &c[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    assert_int_equal(c[0].failures + c[1].failures, 0);
    listing l;
    listing_init(&l, 4);
    assert_int_equal(n_listed(f->s, "race", "", &l), 0);
    listing_free(&l);
}

static void test_open_errors(void **state) {
    fixture *f = *state;
    vs_store *s = NULL;
    vs_error e = {0};
    assert_int_equal(vs_store_open("ftp://bucket", &s, &e), VS_ERR_UNSUPPORTED);
    assert_null(s);
    assert_non_null(strstr(e.msg, "ftp"));
    assert_int_equal(vs_store_open("file://", &s, &e), VS_ERR_INVALID_ARG);
    char url[128];
    snprintf(url, sizeof url, "file://%s/plainfile", f->dir);
    FILE *fp = fopen(url + 7, "w");
    fputs("x", fp);
    fclose(fp);
    assert_int_not_equal(vs_store_open(url, &s, &e), VS_OK); /* a file, not a directory */
    assert_null(s);
}

/* Extracts the sig= value of a presigned path. */
static const char *sig_of(const char *path) {
    const char *p = strstr(path, "&sig=");
    return p ? p + 5 : "";
}

static void test_presign(void **state) {
    (void)state;
    const uint8_t secret[] = "0123456789abcdef0123456789abcdef";
    const uint8_t other[] = "0123456789abcdef0123456789abcdeF";
    char path[512];
    const char *key = "t/a b+c%d_face_0.jpg";
    vs_presign_path(secret, 32, "face-crops", key, 2000000000, path, sizeof path);
    assert_true(!strncmp(path, "/api/v1/blobs/face-crops/t/a%20b%2Bc%25d_face_0.jpg?expires=2000000000&sig=",
                         strlen("/api/v1/blobs/face-crops/t/a%20b%2Bc%25d_face_0.jpg?expires=2000000000&sig=")));
    const char *sig = sig_of(path);
    assert_int_equal(strlen(sig), 64);
    assert_true(vs_presign_check(secret, 32, "face-crops", key, 2000000000, sig, 1700000000));
    assert_true(vs_presign_check(secret, 32, "face-crops", key, 2000000000, sig, 2000000000)); /* last second */
    assert_false(vs_presign_check(secret, 32, "face-crops", key, 2000000000, sig, 2000000001)); /* expired */
    char bad[80];
    snprintf(bad, sizeof bad, "%s", sig);
    bad[10] = bad[10] == '0' ? '1' : '0';
    assert_false(vs_presign_check(secret, 32, "face-crops", key, 2000000000, bad, 1700000000));
    bad[10] = sig[10];
    bad[63] = '\0';
    assert_false(vs_presign_check(secret, 32, "face-crops", key, 2000000000, bad, 1700000000)); /* truncated */
    assert_false(vs_presign_check(secret, 32, "face-thumbs", key, 2000000000, sig, 1700000000));
    assert_false(vs_presign_check(secret, 32, "face-crops", "t/other.jpg", 2000000000, sig, 1700000000));
    assert_false(vs_presign_check(secret, 32, "face-crops", key, 2000000001, sig, 1700000000)); /* extended */
    assert_false(vs_presign_check(other, 32, "face-crops", key, 2000000000, sig, 1700000000));
    assert_false(vs_presign_check(secret, 32, "face-crops", key, 2000000000, NULL, 1700000000));
    assert_false(vs_presign_check(secret, 32, "face-crops", key, 2000000000, "", 1700000000));
    /* no path for a key that is not a key; no cut path when it does not fit */
    vs_presign_path(secret, 32, "face-crops", "../x", 2000000000, path, sizeof path);
    assert_string_equal(path, "");
    vs_presign_path(secret, 32, "face-crops", key, 2000000000, path, 60);
    assert_string_equal(path, "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        CONTRACT_STORE_TESTS(setup, teardown),
        cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_races_with_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test(test_presign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
