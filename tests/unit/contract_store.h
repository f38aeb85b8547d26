/* contract_store.h - what every vs_store backend must do, per vs_store.h:
 * round trips (odd and UTF-8 keys, empty objects, put_many, buckets made on
 * first use), listing by prefix, missing objects and buckets, overwrite with
 * no torn reads, size limits, key and bucket checks before any backend
 * access, concurrent writers, and presigned-URL limits where the backend
 * presigns. Included by test_store.c (file://) and test_store_s3.c, whose
 * per-test setup hands each test a store nobody else writes to; they run
 * CONTRACT_STORE_TESTS plus their own tests. Not a program of its own. */
#ifndef CONTRACT_STORE_H
#define CONTRACT_STORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vs_alloc.h"
#include "vs_store.h"

typedef struct fixture {
    vs_store *s;  /* empty, and this test's alone */
    char dir[64]; /* file://: the directory the store lives under */
    const char *peer_not_atomic; /* set when the server behind the store is a test double
                                  * that rewrites objects in place (s3rver): why the
                                  * torn-read and last-writer-wins checks are
                                  * skipped there (fs.createWriteStream, no rename) */
} fixture;

static vs_err put_str(vs_store *s, const char *b, const char *k, const char *v) {
    vs_error e = {0};
    vs_err rc = vs_store_put(s, b, k, v, strlen(v), "text/plain", &e);
    if (rc != VS_OK) fprintf(stderr, "put %s/%s: %s\n", b, k, e.msg);
    return rc;
}

/* Gets b/k as a NUL-terminated string (vs_free), NULL on any error. */
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

/* Asserts b/k reads back as want. */
static void assert_got(vs_store *s, const char *b, const char *k, const char *want) {
    char *got = get_str(s, b, k);
    if (!got) fail_msg("get %s/%s failed", b, k);
    assert_string_equal(got, want);
    vs_free(got);
}

static int exists(vs_store *s, const char *b, const char *k) {
    int x = -1;
    vs_error e = {0};
    vs_err rc = s->ops->exists(s, b, k, &x, &e);
    if (rc != VS_OK) fprintf(stderr, "exists: %s\n", e.msg);
    assert_int_equal(rc, VS_OK);
    return x;
}

typedef struct listing {
    int n, stop_after;
    char (*keys)[160];
    size_t *sizes;
    int cap;
} listing;

static int collect(void *ctx, const char *key, size_t size) {
    listing *l = ctx;
    if (l->n < l->cap) {
        snprintf(l->keys[l->n], sizeof l->keys[0], "%s", key);
        l->sizes[l->n] = size;
    }
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

static void listing_init(listing *l, int cap) {
    memset(l, 0, sizeof *l);
    l->cap = cap;
    l->keys = calloc((size_t)cap, sizeof l->keys[0]);
    l->sizes = calloc((size_t)cap, sizeof l->sizes[0]);
}

static void listing_free(listing *l) {
    free(l->keys);
    free(l->sizes);
}

static int listed(const listing *l, const char *key) {
    for (int i = 0; i < l->n && i < l->cap; i++)
        if (!strcmp(l->keys[i], key)) return 1;
    return 0;
}

static vs_err do_list(vs_store *s, const char *b, const char *prefix, listing *l, vs_error *e) {
    l->n = 0;
    return s->ops->list(s, b, prefix, collect, l, e);
}

/* How many keys of b start with prefix (the listing must succeed). */
static int n_listed(vs_store *s, const char *b, const char *prefix, listing *l) {
    vs_error e = {0};
    vs_err rc = do_list(s, b, prefix, l, &e);
    if (rc != VS_OK) fprintf(stderr, "list: %s\n", e.msg);
    assert_int_equal(rc, VS_OK);
    return l->n;
}

/* ---- the contract ---- */

static void contract_round_trip(void **state) {
    fixture *f = *state;
    vs_store *s = f->s;
    assert_true(s->ops->healthy(s));
    const char *odd[] = {"v/a b+c=d&e%f~g,h;i(j)k!l$m'n@o*.jpg", "v/\xc3\xa9t\xc3\xa9/x.jpg"};
    assert_int_equal(put_str(s, "raw-images", "t/abc.jpg", "hello"), VS_OK);
    assert_int_equal(put_str(s, "raw-images", "t/sub/deep/x.bin", "12345678"), VS_OK);
    assert_int_equal(put_str(s, "raw-images", "u/y.jpg", ""), VS_OK);
    assert_int_equal(put_str(s, "thumbnails", "t/abc_thumb.jpg", "th"), VS_OK);
    for (int i = 0; i < 2; i++) {
        char v[16];
        snprintf(v, sizeof v, "value %d", i);
        assert_int_equal(put_str(s, "raw-images", odd[i], v), VS_OK);
        assert_got(s, "raw-images", odd[i], v);
        assert_int_equal(exists(s, "raw-images", odd[i]), 1);
    }
    assert_int_equal(exists(s, "raw-images", "t/abc.jpg"), 1);
    assert_int_equal(exists(s, "raw-images", "t/sub"), 0); /* a prefix of keys is not an object */
    assert_got(s, "raw-images", "t/abc.jpg", "hello");
    assert_got(s, "raw-images", "u/y.jpg", ""); /* empty object */
    uint8_t *d = NULL;
    size_t n = 7;
    vs_error e = {0};
    assert_int_equal(vs_store_get(s, "raw-images", "u/y.jpg", 0, &d, &n, &e), VS_OK); /* fits a limit of 0 */
    assert_non_null(d);
    assert_int_equal(n, 0);
    vs_free(d);

    listing l;
    listing_init(&l, 32);
    assert_int_equal(n_listed(s, "raw-images", "", &l), 5);
    assert_true(listed(&l, "t/abc.jpg") && listed(&l, "t/sub/deep/x.bin") && listed(&l, "u/y.jpg"));
    assert_true(listed(&l, odd[0]) && listed(&l, odd[1]));
    assert_int_equal(n_listed(s, "raw-images", NULL, &l), 5);
    assert_int_equal(n_listed(s, "raw-images", "t/", &l), 2);
    assert_int_equal(n_listed(s, "raw-images", "t", &l), 2);
    assert_int_equal(n_listed(s, "raw-images", "t/a", &l), 1);
    assert_string_equal(l.keys[0], "t/abc.jpg");
    assert_int_equal(l.sizes[0], 5);
    assert_int_equal(n_listed(s, "raw-images", "t/sub/de", &l), 1);
    assert_string_equal(l.keys[0], "t/sub/deep/x.bin");
    assert_int_equal(l.sizes[0], 8);
    assert_int_equal(n_listed(s, "raw-images", "v/\xc3\xa9", &l), 1);
    assert_string_equal(l.keys[0], odd[1]);
    assert_int_equal(l.sizes[0], strlen("value 1"));
    assert_int_equal(n_listed(s, "raw-images", "nope/", &l), 0);
    assert_int_equal(n_listed(s, "no-such-bucket", "", &l), 0);
    assert_int_equal(n_listed(s, "thumbnails", "", &l), 1);
    l.stop_after = 1;
    assert_int_equal(n_listed(s, "raw-images", "", &l), 1); /* the callback stopped the walk */
    l.stop_after = 0;

    /* delete: gone, and again (or never there) is fine */
    assert_int_equal(vs_store_del(s, "raw-images", "t/sub/deep/x.bin", &e), VS_OK);
    assert_int_equal(exists(s, "raw-images", "t/sub/deep/x.bin"), 0);
    assert_null(get_str(s, "raw-images", "t/sub/deep/x.bin"));
    assert_int_equal(vs_store_del(s, "raw-images", "t/sub/deep/x.bin", &e), VS_OK);
    assert_int_equal(vs_store_del(s, "raw-images", "t/never", &e), VS_OK);
    assert_int_equal(vs_store_del(s, "raw-images", "u/y.jpg", &e), VS_OK);
    assert_int_equal(n_listed(s, "raw-images", "", &l), 3);
    listing_free(&l);

    vs_blob b[3] = {{"face-crops", "t/s_face_0.jpg", "c0", 2}, {"face-thumbs", "t/s_face_0_thumb.jpg", "t0", 2},
                    {"face-crops", "t/s_face_1.jpg", "c1", 2}};
    assert_int_equal(vs_store_put_many(s, b, 3, &e), VS_OK);
    assert_got(s, "face-crops", "t/s_face_0.jpg", "c0");
    assert_got(s, "face-thumbs", "t/s_face_0_thumb.jpg", "t0");
    assert_got(s, "face-crops", "t/s_face_1.jpg", "c1");
    /* a bucket beyond the four of DESIGN.md works from its first put */
    assert_int_equal(put_str(s, "extra-bucket", "k", "lazy"), VS_OK);
    assert_got(s, "extra-bucket", "k", "lazy");
    assert_true(s->ops->healthy(s));
}

static void contract_missing_is_not_found(void **state) {
    fixture *f = *state;
    vs_store *s = f->s;
    uint8_t *d = (uint8_t *)"sentinel";
    size_t n = 7;
    vs_error e = {0};
    assert_int_equal(vs_store_get(s, "raw-images", "t/none.jpg", 100, &d, &n, &e), VS_ERR_NOT_FOUND);
    assert_null(d);
    assert_int_equal(n, 0);
    assert_non_null(strstr(e.msg, "raw-images/t/none.jpg"));
    assert_int_equal(exists(s, "raw-images", "t/none.jpg"), 0);
    assert_int_equal(put_str(s, "raw-images", "t/a.jpg", "x"), VS_OK);
    /* a key through an object ("t/a.jpg/b") is missing, not an I/O error */
    assert_int_equal(vs_store_get(s, "raw-images", "t/a.jpg/b", 100, &d, &n, &e), VS_ERR_NOT_FOUND);
    assert_int_equal(vs_store_get(s, "raw-images", "t", 100, &d, &n, &e), VS_ERR_NOT_FOUND); /* a prefix */
    /* a bucket nobody wrote to */
    assert_int_equal(vs_store_get(s, "no-such-bucket", "k", 100, &d, &n, &e), VS_ERR_NOT_FOUND);
    assert_int_equal(exists(s, "no-such-bucket", "k"), 0);
    listing l;
    listing_init(&l, 4);
    assert_int_equal(n_listed(s, "no-such-bucket", "", &l), 0);
    assert_int_equal(vs_store_del(s, "no-such-bucket", "k", &e), VS_OK);
    listing_free(&l);
}

static void contract_overwrite(void **state) {
    fixture *f = *state;
    assert_int_equal(put_str(f->s, "b", "k/obj", "first version, long text"), VS_OK);
    assert_int_equal(put_str(f->s, "b", "k/obj", "second"), VS_OK);
    assert_got(f->s, "b", "k/obj", "second");
}

typedef struct flip_ctx {
    vs_store *s;
    int reads, torn, failed;
    atomic_int done;
} flip_ctx;

/* Reads the object while another thread rewrites it, until it is done:
 * every read must be one whole version (all 'a' x 3000 or all 'b' x 1000).
 * (s3rver, unlike S3, rewrites in place: a read racing a put gets a short
 * body, which the backend must refuse and retry - after s3rver's 5 s
 * keep-alive, the slowest part of test_store_s3.) */
static void *flip_reader(void *arg) {
    flip_ctx *c = arg;
    while (!atomic_load(&c->done) || c->reads < 20) {
        uint8_t *d = NULL;
        size_t n = 0;
        vs_error e = {0};
        c->reads++;
        if (vs_store_get(c->s, "b", "flip", 1 << 20, &d, &n, &e) != VS_OK) {
            c->failed++; /* an error (e.g. retries used up on a loaded machine) is not a torn read */
            continue;
        }
        int ok = (n == 3000 && d[0] == 'a') || (n == 1000 && d[0] == 'b');
        for (size_t j = 0; ok && j < n; j++) ok = d[j] == d[0];
        if (!ok) c->torn++;
        vs_free(d);
    }
    return NULL;
}

static void contract_readers_never_see_a_torn_object(void **state) {
    fixture *f = *state;
    if (f->peer_not_atomic) {
        fprintf(stderr, "torn-read check skipped: %s\n", f->peer_not_atomic);
        skip();
    }
    static uint8_t a[3000], b[1000];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    vs_error e = {0};
    assert_int_equal(vs_store_put(f->s, "b", "flip", a, sizeof a, NULL, &e), VS_OK);
    flip_ctx c = {.s = f->s};
    pthread_t t;
    pthread_create(&t, NULL, flip_reader, &c);
    for (int i = 0; i < 40; i++) {
        int odd = i & 1;
        assert_int_equal(vs_store_put(f->s, "b", "flip", odd ? a : b, odd ? sizeof a : sizeof b, NULL, &e), VS_OK);
    }
    atomic_store(&c.done, 1);
    pthread_join(t, NULL);
    assert_int_equal(c.torn, 0);
    assert_true(c.reads - c.failed >= 10); /* the property was actually exercised */
}

static void contract_size_limit(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    uint8_t big[1000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 31);
    assert_int_equal(vs_store_put(f->s, "raw-images", "t/big.bin", big, sizeof big, NULL, &e), VS_OK);
    uint8_t *d = (uint8_t *)"x";
    size_t n = 5;
    assert_int_equal(vs_store_get(f->s, "raw-images", "t/big.bin", 999, &d, &n, &e), VS_ERR_TOO_LARGE);
    assert_null(d);
    assert_int_equal(n, 0);
    assert_non_null(strstr(e.msg, "raw-images/t/big.bin"));
    assert_non_null(strstr(e.msg, "1000 bytes"));
    assert_int_equal(vs_store_get(f->s, "raw-images", "t/big.bin", 1000, &d, &n, &e), VS_OK);
    assert_int_equal(n, 1000);
    assert_memory_equal(d, big, 1000);
    vs_free(d);
}

/* Bad keys, buckets and prefixes are refused before the backend sees them. */
static void contract_key_validation(void **state) {
    fixture *f = *state;
    vs_store *s = f->s;
    char long_key[600];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    const char *bad[] = {"../x", "/abs", "a\x01", "", "a/../b", "a/..", "..", ".", "./a", "a/./b", "a//b",
                         "a/",   "a\\b", "a\x7f", "a\nb", long_key};
    vs_error e = {0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *d = NULL;
        size_t n = 0;
        int x = 9;
        assert_int_equal(vs_store_put(s, "raw-images", bad[i], "x", 1, NULL, &e), VS_ERR_INVALID_ARG);
        assert_int_equal(vs_store_get(s, "raw-images", bad[i], 10, &d, &n, &e), VS_ERR_INVALID_ARG);
        assert_int_equal(vs_store_del(s, "raw-images", bad[i], &e), VS_ERR_INVALID_ARG);
        assert_int_equal(s->ops->exists(s, "raw-images", bad[i], &x, &e), VS_ERR_INVALID_ARG);
        assert_int_equal(vs_store_put(s, bad[i], "k", "x", 1, NULL, &e), VS_ERR_INVALID_ARG);
        char url[256];
        if (s->ops->presign_get)
            assert_int_equal(s->ops->presign_get(s, "raw-images", bad[i], time(NULL) + 60, url, sizeof url), -1);
    }
    assert_int_equal(vs_store_put(s, "raw-images", "../escaped", "x", 1, NULL, &e), VS_ERR_INVALID_ARG);
    assert_non_null(strstr(e.msg, "../escaped"));
    assert_non_null(strstr(e.msg, "put"));
    assert_int_equal(vs_store_put(s, "a/b", "k", "x", 1, NULL, &e), VS_ERR_INVALID_ARG); /* a bucket is one name */
    listing l;
    listing_init(&l, 4);
    assert_int_equal(do_list(s, "raw-images", "../", &l, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(do_list(s, "raw-images", "/x", &l, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(do_list(s, "raw-images", "a//", &l, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(do_list(s, "..", "", &l, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(n_listed(s, "raw-images", "", &l), 0); /* nothing was written */
    listing_free(&l);
}

typedef struct writer_arg {
    vs_store *s;
    int id, failures;
} writer_arg;

/* Each writer puts 30 keys of its own and rewrites one shared key 30 times
 * with a payload that says who wrote it (every byte 'A' + id, length 500 + id). */
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

static void contract_concurrent_puts(void **state) {
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
    if (f->peer_not_atomic) /* two PUTs racing into one file there can interleave bytes; S3 and the file backend cannot */
        fprintf(stderr, "last-writer-wins check skipped: %s\n", f->peer_not_atomic);
    else
        for (size_t j = 0; j < n; j++) assert_int_equal(d[j], 'A' + (int)(n - 500)); /* one writer's whole payload */
    vs_free(d);
    listing l;
    listing_init(&l, 4);
    assert_int_equal(n_listed(f->s, "conc", "", &l), 4 * 30 + 1);
    listing_free(&l);
}

/* presign_get is optional; where there is one it refuses what S3 would:
 * an expiry past or beyond 7 days, and a URL that does not fit. */
static void contract_presign_limits(void **state) {
    fixture *f = *state;
    vs_store *s = f->s;
    if (!s->ops->presign_get) return;
    assert_int_equal(put_str(s, "face-crops", "t/x.jpg", "x"), VS_OK);
    char url[2048];
    assert_int_equal(s->ops->presign_get(s, "face-crops", "t/x.jpg", time(NULL) + 60, url, sizeof url), 0);
    assert_true(url[0] != '\0');
    assert_int_equal(s->ops->presign_get(s, "face-crops", "t/x.jpg", time(NULL) - 1, url, sizeof url), -1);
    assert_string_equal(url, "");
    assert_int_equal(s->ops->presign_get(s, "face-crops", "t/x.jpg", time(NULL) + 8 * 86400, url, sizeof url), -1);
    assert_int_equal(s->ops->presign_get(s, "face-crops", "t/x.jpg", time(NULL) + 60, url, 64), -1);
    assert_string_equal(url, "");
}

/* The contract, for a program's test list: setup hands each test an empty
 * store of its own, teardown closes it. */
/* A batch larger than any backend's parallelism: every object lands with
 * its own bytes; a batch with one bad key fails naming it, and the good
 * objects it holds are still whole when they were written. */
static void contract_put_many_batch(void **state) {
    fixture *f = *state;
    vs_store *s = f->s;
    vs_error e = {0};
    enum { N = 40 };
    vs_blob b[N];
    char keys[N][32], data[N][48];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "batch/%02d.jpg", i);
        snprintf(data[i], sizeof data[i], "object %d of the batch", i);
        b[i] = (vs_blob){"raw-images", keys[i], data[i], strlen(data[i])};
    }
    assert_int_equal(vs_store_put_many(s, b, N, &e), VS_OK);
    for (int i = 0; i < N; i++) assert_got(s, "raw-images", keys[i], data[i]);
    assert_int_equal(vs_store_put_many(s, b, 0, &e), VS_OK);
    b[N / 2].key = "../escape";
    assert_int_not_equal(vs_store_put_many(s, b, N, &e), VS_OK);
    assert_non_null(strstr(e.msg, "escape"));
    for (int i = 0; i < N; i++)
        if (i != N / 2) {
            uint8_t *got = NULL;
            size_t len = 0;
            if (vs_store_get(s, "raw-images", keys[i], 1024, &got, &len, NULL) == VS_OK) {
                assert_int_equal(len, strlen(data[i]));
                assert_memory_equal(got, data[i], len);
                vs_free(got);
            }
        }
}

#define CONTRACT_STORE_TESTS(setup, teardown)                                                                   \
    cmocka_unit_test_setup_teardown(contract_round_trip, setup, teardown),                                      \
        cmocka_unit_test_setup_teardown(contract_put_many_batch, setup, teardown),                              \
        cmocka_unit_test_setup_teardown(contract_missing_is_not_found, setup, teardown),                        \
        cmocka_unit_test_setup_teardown(contract_overwrite, setup, teardown),                                   \
        cmocka_unit_test_setup_teardown(contract_readers_never_see_a_torn_object, setup, teardown),             \
        cmocka_unit_test_setup_teardown(contract_size_limit, setup, teardown),                                  \
        cmocka_unit_test_setup_teardown(contract_key_validation, setup, teardown),                              \
        cmocka_unit_test_setup_teardown(contract_concurrent_puts, setup, teardown),                             \
        cmocka_unit_test_setup_teardown(contract_presign_limits, setup, teardown)

#endif
