/* test_store.c - the file:// blob store and presigned paths: round trips,
 * atomic overwrite (no torn reads, no temp files left), size limits, key
 * validation before any filesystem access, concurrent writers, and the
 * signature checks a blob URL relies on. Every store lives in a mkdtemp dir. */
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

#include "vs_alloc.h"
#include "vs_store.h"

typedef struct fixture {
    char dir[64];
    vs_store *s;
} fixture;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
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

static int teardown(void **state) {
    fixture *f = *state;
    vs_store_close(f->s);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static vs_err put_str(vs_store *s, const char *b, const char *k, const char *v) {
    vs_error e = {0};
    vs_err rc = vs_store_put(s, b, k, v, strlen(v), "application/octet-stream", &e);
    if (rc != VS_OK) fprintf(stderr, "put: %s\n", e.msg);
    return rc;
}

/* Gets b/k as a NUL-terminated string (test-owned, vs_free). */
static char *get_str(vs_store *s, const char *b, const char *k) {
    uint8_t *d = NULL;
    size_t n = 0;
    vs_error e = {0};
    if (vs_store_get(s, b, k, 1 << 20, &d, &n, &e) != VS_OK) return NULL;
    char *r = vs_malloc(n + 1);
    memcpy(r, d, n);
    r[n] = '\0';
    vs_free(d);
    return r;
}

static int exists(vs_store *s, const char *b, const char *k) {
    int x = -1;
    vs_error e = {0};
    assert_int_equal(s->ops->exists(s, b, k, &x, &e), VS_OK);
    return x;
}

typedef struct listing {
    int n, stop_after;
    char keys[32][128];
    size_t sizes[32];
} listing;

static int collect(void *ctx, const char *key, size_t size) {
    listing *l = ctx;
    if (l->n < 32) {
        snprintf(l->keys[l->n], sizeof l->keys[0], "%s", key);
        l->sizes[l->n] = size;
    }
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

static int listed(const listing *l, const char *key) {
    for (int i = 0; i < l->n && i < 32; i++)
        if (!strcmp(l->keys[i], key)) return 1;
    return 0;
}

static int do_list(vs_store *s, const char *b, const char *prefix, listing *l) {
    memset(l, 0, sizeof *l);
    vs_error e = {0};
    vs_err rc = s->ops->list(s, b, prefix, collect, l, &e);
    if (rc != VS_OK) fprintf(stderr, "list: %s\n", e.msg);
    assert_int_equal(rc, VS_OK);
    return l->n;
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

static void test_round_trip(void **state) {
    fixture *f = *state;
    vs_store *s = f->s;
    assert_true(s->ops->healthy(s));
    assert_int_equal(put_str(s, "raw-images", "t/abc.jpg", "hello"), VS_OK);
    assert_int_equal(put_str(s, "raw-images", "t/sub/deep/x.bin", "12345678"), VS_OK);
    assert_int_equal(put_str(s, "raw-images", "u/y.jpg", ""), VS_OK);
    assert_int_equal(put_str(s, "thumbnails", "t/abc_thumb.jpg", "th"), VS_OK);
    assert_int_equal(exists(s, "raw-images", "t/abc.jpg"), 1);
    assert_int_equal(exists(s, "raw-images", "t/sub"), 0); /* a directory is not an object */
    char *v = get_str(s, "raw-images", "t/abc.jpg");
    assert_non_null(v);
    assert_string_equal(v, "hello");
    vs_free(v);
    v = get_str(s, "raw-images", "u/y.jpg"); /* empty object */
    assert_non_null(v);
    assert_string_equal(v, "");
    vs_free(v);
    char path[256];
    snprintf(path, sizeof path, "%s/blobs/raw-images/t/abc.jpg", f->dir);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0); /* the documented layout DIR/bucket/key */
    assert_int_equal(sb.st_size, 5);

    listing l;
    assert_int_equal(do_list(s, "raw-images", "", &l), 3);
    assert_true(listed(&l, "t/abc.jpg") && listed(&l, "t/sub/deep/x.bin") && listed(&l, "u/y.jpg"));
    assert_int_equal(do_list(s, "raw-images", NULL, &l), 3);
    assert_int_equal(do_list(s, "raw-images", "t/", &l), 2);
    assert_int_equal(do_list(s, "raw-images", "t", &l), 2);
    assert_int_equal(do_list(s, "raw-images", "t/a", &l), 1);
    assert_string_equal(l.keys[0], "t/abc.jpg");
    assert_int_equal(l.sizes[0], 5);
    assert_int_equal(do_list(s, "raw-images", "t/sub/de", &l), 1);
    assert_string_equal(l.keys[0], "t/sub/deep/x.bin");
    assert_int_equal(do_list(s, "raw-images", "nope/", &l), 0);
    assert_int_equal(do_list(s, "no-such-bucket", "", &l), 0);
    memset(&l, 0, sizeof l);
    l.stop_after = 1;
    vs_error e = {0};
    assert_int_equal(s->ops->list(s, "raw-images", "", collect, &l, &e), VS_OK);
    assert_int_equal(l.n, 1); /* the callback stopped the walk */

    assert_int_equal(vs_store_del(s, "raw-images", "t/sub/deep/x.bin", &e), VS_OK);
    assert_int_equal(exists(s, "raw-images", "t/sub/deep/x.bin"), 0);
    snprintf(path, sizeof path, "%s/blobs/raw-images/t/sub", f->dir);
    assert_int_not_equal(stat(path, &sb), 0); /* emptied parents pruned */
    snprintf(path, sizeof path, "%s/blobs/raw-images/t", f->dir);
    assert_int_equal(stat(path, &sb), 0); /* but not one that still holds abc.jpg */
    assert_int_equal(vs_store_del(s, "raw-images", "t/sub/deep/x.bin", &e), VS_OK); /* missing: fine */
    assert_int_equal(vs_store_del(s, "raw-images", "u/y.jpg", &e), VS_OK);
    snprintf(path, sizeof path, "%s/blobs/raw-images", f->dir);
    assert_int_equal(stat(path, &sb), 0); /* the bucket itself stays */
    assert_int_equal(do_list(s, "raw-images", "", &l), 1);
}

static void test_missing_is_not_found(void **state) {
    fixture *f = *state;
    uint8_t *d = (uint8_t *)"sentinel";
    size_t n = 7;
    vs_error e = {0};
    assert_int_equal(vs_store_get(f->s, "raw-images", "t/none.jpg", 100, &d, &n, &e), VS_ERR_NOT_FOUND);
    assert_null(d);
    assert_int_equal(n, 0);
    assert_non_null(strstr(e.msg, "raw-images/t/none.jpg"));
    assert_int_equal(exists(f->s, "raw-images", "t/none.jpg"), 0);
    assert_int_equal(put_str(f->s, "raw-images", "t/a.jpg", "x"), VS_OK);
    /* a key through an object ("t/a.jpg/b") is missing, not an I/O error */
    assert_int_equal(vs_store_get(f->s, "raw-images", "t/a.jpg/b", 100, &d, &n, &e), VS_ERR_NOT_FOUND);
    assert_int_equal(vs_store_get(f->s, "raw-images", "t", 100, &d, &n, &e), VS_ERR_NOT_FOUND); /* a directory */
}

static void test_overwrite_is_atomic(void **state) {
    fixture *f = *state;
    assert_int_equal(put_str(f->s, "b", "k/obj", "first version, long text"), VS_OK);
    assert_int_equal(put_str(f->s, "b", "k/obj", "second"), VS_OK);
    char *v = get_str(f->s, "b", "k/obj");
    assert_string_equal(v, "second");
    vs_free(v);
    assert_int_equal(temp_files(f->dir), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/blobs/b/k/obj", f->dir);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    mode_t um = umask(0);
    umask(um);
    assert_int_equal(sb.st_mode & 0777, 0644 & ~um);
}

typedef struct flip_ctx {
    vs_store *s;
    int rounds, torn;
} flip_ctx;

/* Reads the object while another thread rewrites it: every read must be
 * one whole version (all 'a' x 3000 or all 'b' x 1000). */
static void *reader(void *arg) {
    flip_ctx *c = arg;
    for (int i = 0; i < c->rounds; i++) {
        uint8_t *d = NULL;
        size_t n = 0;
        vs_error e = {0};
        if (vs_store_get(c->s, "b", "flip", 1 << 20, &d, &n, &e) != VS_OK) {
            c->torn++;
            continue;
        }
        int ok = (n == 3000 && d[0] == 'a') || (n == 1000 && d[0] == 'b');
        for (size_t j = 0; ok && j < n; j++) ok = d[j] == d[0];
        if (!ok) c->torn++;
        vs_free(d);
    }
    return NULL;
}

static void test_readers_never_see_a_torn_object(void **state) {
    fixture *f = *state;
    static uint8_t a[3000], b[1000];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    vs_error e = {0};
    assert_int_equal(vs_store_put(f->s, "b", "flip", a, sizeof a, NULL, &e), VS_OK);
    flip_ctx c = {f->s, 400, 0};
    pthread_t t;
    pthread_create(&t, NULL, reader, &c);
    for (int i = 0; i < 40; i++) {
        int odd = i & 1;
        assert_int_equal(vs_store_put(f->s, "b", "flip", odd ? a : b, odd ? sizeof a : sizeof b, NULL, &e), VS_OK);
    }
    pthread_join(t, NULL);
    assert_int_equal(c.torn, 0);
    assert_int_equal(temp_files(f->dir), 0);
}

static void test_size_limit(void **state) {
    fixture *f = *state;
    uint8_t buf[100];
    memset(buf, 7, sizeof buf);
    vs_error e = {0};
    assert_int_equal(vs_store_put(f->s, "b", "k", buf, sizeof buf, NULL, &e), VS_OK);
    uint8_t *d = NULL;
    size_t n = 0;
    assert_int_equal(vs_store_get(f->s, "b", "k", 99, &d, &n, &e), VS_ERR_TOO_LARGE);
    assert_null(d);
    assert_non_null(strstr(e.msg, "b/k"));
    assert_int_equal(vs_store_get(f->s, "b", "k", 100, &d, &n, &e), VS_OK);
    assert_int_equal(n, 100);
    assert_memory_equal(d, buf, 100);
    vs_free(d);
}

static void test_key_validation(void **state) {
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
    uint8_t *d = NULL;
    size_t n = 0;
    int x;
    for (int i = 0; bad[i]; i++) {
        assert_int_equal(vs_store_put(f->s, "b", bad[i], "x", 1, NULL, &e), VS_ERR_INVALID_ARG);
        assert_int_equal(vs_store_get(f->s, "b", bad[i], 10, &d, &n, &e), VS_ERR_INVALID_ARG);
        assert_int_equal(vs_store_del(f->s, "b", bad[i], &e), VS_ERR_INVALID_ARG);
        assert_int_equal(f->s->ops->exists(f->s, "b", bad[i], &x, &e), VS_ERR_INVALID_ARG);
        assert_int_equal(vs_store_put(f->s, bad[i], "k", "x", 1, NULL, &e), VS_ERR_INVALID_ARG);
    }
    assert_int_equal(vs_store_put(f->s, "b", "../escaped", "x", 1, NULL, &e), VS_ERR_INVALID_ARG);
    assert_non_null(strstr(e.msg, "../escaped"));
    assert_non_null(strstr(e.msg, "put"));
    assert_int_equal(vs_store_put(f->s, "a/b", "k", "x", 1, NULL, &e), VS_ERR_INVALID_ARG); /* bucket is one name */
    assert_int_equal(vs_store_put(f->s, "b", "x/.vstmp.1234", "x", 1, NULL, &e), VS_ERR_INVALID_ARG);
    listing l;
    memset(&l, 0, sizeof l);
    assert_int_equal(f->s->ops->list(f->s, "b", "../", collect, &l, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(f->s->ops->list(f->s, "..", "", collect, &l, &e), VS_ERR_INVALID_ARG);
    char path[256];
    snprintf(path, sizeof path, "%s/blobs/escaped", f->dir);
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0); /* nothing was written outside the bucket */
    assert_int_equal(temp_files(f->dir), 0);
}

typedef struct writer_arg {
    vs_store *s;
    int id, failures;
} writer_arg;

/* Each writer puts 30 keys of its own and rewrites one shared key 30 times
 * with a payload that says who wrote it (every byte = id, length 500+id). */
static void *writer(void *arg) {
    writer_arg *w = arg;
    uint8_t buf[600];
    memset(buf, 'A' + w->id, sizeof buf);
    for (int i = 0; i < 30; i++) {
        char key[64];
        vs_error e = {0};
        snprintf(key, sizeof key, "w%d/obj%02d", w->id, i);
        if (vs_store_put(w->s, "conc", key, buf, 100 + (size_t)i, NULL, &e) != VS_OK) w->failures++;
        if (vs_store_put(w->s, "conc", "shared/one", buf, 500 + (size_t)w->id, NULL, &e) != VS_OK) w->failures++;
    }
    return NULL;
}

static void test_concurrent_puts(void **state) {
    fixture *f = *state;
    pthread_t t[4];
    writer_arg w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (writer_arg){f->s, i, 0};
        pthread_create(&t[i], NULL, writer, &w[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) assert_int_equal(w[i].failures, 0);
    vs_error e = {0};
    for (int id = 0; id < 4; id++)
        for (int i = 0; i < 30; i++) {
            char key[64];
            snprintf(key, sizeof key, "w%d/obj%02d", id, i);
            uint8_t *d = NULL;
            size_t n = 0;
            assert_int_equal(vs_store_get(f->s, "conc", key, 1000, &d, &n, &e), VS_OK);
            assert_int_equal(n, 100 + i);
            for (size_t j = 0; j < n; j++) assert_int_equal(d[j], 'A' + id);
            vs_free(d);
        }
    uint8_t *d = NULL;
    size_t n = 0;
    assert_int_equal(vs_store_get(f->s, "conc", "shared/one", 1000, &d, &n, &e), VS_OK);
    assert_true(n >= 500 && n < 504);
    for (size_t j = 0; j < n; j++) assert_int_equal(d[j], 'A' + (int)(n - 500)); /* one writer's whole payload */
    vs_free(d);
    listing l;
    assert_int_equal(do_list(f->s, "conc", "", &l), 4 * 30 + 1);
    assert_int_equal(temp_files(f->dir), 0);
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
    assert_int_equal(do_list(f->s, "race", "", &l), 0);
    assert_int_equal(temp_files(f->dir), 0);
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
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_is_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overwrite_is_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readers_never_see_a_torn_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_puts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_races_with_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test(test_presign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
