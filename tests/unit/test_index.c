/* test_index.c - the embedded vector index: the index contract
 * (contract_index.h: exact top-k against brute force, tenant isolation,
 * filters, replace/delete/scroll, reopen, concurrent readers with a writer),
 * then what is the embedded backend's own: one process per data dir,
 * persistence (torn tail, mid-file corruption, bad headers, compaction), and
 * allocation and write failures during upsert. Every index lives in its own
 * mkdtemp data dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "contract_index.h"
#include "vs_index_embedded.h"
#include "vs_index_log.h"

/* ---- the backend -------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *s, int flag, struct FTW *ftw) {
    (void)s, (void)flag, (void)ftw;
    return remove(p);
}

static void emb_create(fx *f, const char *tag) {
    (void)tag;
    snprintf(f->coll, sizeof f->coll, "faces_v1");
    snprintf(f->dir, sizeof f->dir, "/tmp/vs_index_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
}

static vs_index *emb_connect(fx *f) {
    vs_index *ix = NULL;
    vs_error e = {0};
    assert_ok(vs_index_open("embedded", f->dir, &ix, &e), e);
    return ix;
}

static void emb_destroy(fx *f) {
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const index_backend embedded = {
    .create = emb_create, .connect = emb_connect, .destroy = emb_destroy,
    .exact = 1, .sorted_scroll = 1, .validator = 1,
};

/* The same backend with an HNSW graph for every tenant from its first point
 * (the server's bound is 20000): the whole contract then runs through the
 * graphs, whose search must be exact at these sizes (ef_search covers every
 * point) and whose deletes and replaces must keep them in step. */
static vs_index *emb_connect_ann(fx *f) {
    vs_index *ix = NULL;
    vs_error e = {0};
    vs_index_opts o = {.ann_min_points = 1, .ann_ef_search = 512};
    assert_ok(vs_index_open_with("embedded", f->dir, &o, &ix, &e), e);
    return ix;
}

static const index_backend embedded_ann = {
    .create = emb_create, .connect = emb_connect_ann, .destroy = emb_destroy,
    .exact = 1, .sorted_scroll = 1, .validator = 1,
};

static void log_path(const fx *f, char *out, size_t cap) {
    snprintf(out, cap, "%s/index/%s/%s", f->dir, f->coll, VS_LOG_FILE);
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* ---- tests -------------------------------------------------------------- */

static void test_crc32c_vector(void **state) {
    (void)state;
    assert_int_equal(vs_crc32c(0, "123456789", 9), 0xE3069283u);
    /* continuation equals one pass */
    assert_int_equal(vs_crc32c(vs_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    assert_int_equal(vs_crc32c(0, "", 0), 0);
}

/* One process per data dir: a second open is refused while the first holds it. */
static void test_one_open_per_dir(void **state) {
    (void)state;
    fx *f = fx_new(&embedded, "", 64, 1, 1);
    vs_index *other = NULL;
    vs_error e = {0};
    assert_rc(vs_index_open("embedded", f->dir, &other, &e), VS_ERR_IO, e);
    assert_rc(vs_index_open("redis://x", f->dir, &other, &e), VS_ERR_UNSUPPORTED, e);
    fx_free(f);
}

/* Truncates/overwrites bytes of the log of a closed fixture. */
static void poke(const char *path, long off, const void *bytes, size_t n) {
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, n, off), (ssize_t)n);
    close(fd);
}

static void test_torn_tail(void **state) {
    (void)state;
    /* cut: inside the commit, inside the last record, just the commit, garbage appended */
    const long cuts[] = {5, 300, 32, -100};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        fx *f = fx_new(&embedded, "", 64, 300, 31 + c);
        char path[256];
        log_path(f, path, sizeof path);
        gen_points(f, 0, 300);
        put_points(f, 0, 200, 100);
        long s1 = file_size(path);
        put_points(f, 200, 300, 100);
        long s2 = file_size(path);
        f->ix->ops->close(f->ix);
        f->ix = NULL;
        if (cuts[c] > 0) {
            assert_int_equal(truncate(path, s2 - cuts[c]), 0);
        } else {
            char zeros[100] = {0};
            poke(path, s2, zeros, sizeof zeros);
        }
        f->ix = emb_connect(f);
        validate(f);
        int total = total_count(f);
        if (cuts[c] > 0) {
            assert_int_equal(total, 200); /* the torn batch is dropped whole */
            assert_int_equal(file_size(path), s1);
        } else {
            assert_int_equal(total, 300);
            assert_int_equal(file_size(path), s2);
        }
        /* and the log keeps working after the cut */
        for (int i = 200; i < 300; i++) f->alive[i] = 0;
        put_points(f, 250, 260, 10);
        fx_reopen(f);
        validate(f);
        fx_free(f);
    }
}

static void test_corruption(void **state) {
    (void)state;
    fx *f = fx_new(&embedded, "", 64, 300, 41);
    char path[256];
    log_path(f, path, sizeof path);
    gen_points(f, 0, 300);
    put_points(f, 0, 100, 100);
    put_points(f, 100, 300, 100);
    f->ix->ops->close(f->ix);
    f->ix = NULL;
    long hdr = 20 + (long)strlen(MODEL);
    /* a flipped byte in the first group, valid groups after it */
    unsigned char b;
    int fd = open(path, O_RDONLY);
    assert_int_equal(pread(fd, &b, 1, hdr + 100), 1);
    close(fd);
    b ^= 0x40;
    poke(path, hdr + 100, &b, 1);
    vs_index *ix = NULL;
    vs_error e = {0};
    assert_rc(vs_index_open("embedded", f->dir, &ix, &e), VS_ERR_CORRUPT, e);
    assert_non_null(strstr(e.msg, path));
    char off[32];
    snprintf(off, sizeof off, "offset %ld", hdr);
    assert_non_null(strstr(e.msg, off));
    assert_true(file_size(path) > hdr + 1000); /* nothing was cut */
    b ^= 0x40;
    poke(path, hdr + 100, &b, 1);
    /* a flipped byte inside the last, acknowledged group is corruption too */
    long s = file_size(path);
    fd = open(path, O_RDONLY);
    assert_int_equal(pread(fd, &b, 1, s - 200), 1);
    close(fd);
    b ^= 1;
    poke(path, s - 200, &b, 1);
    assert_rc(vs_index_open("embedded", f->dir, &ix, &e), VS_ERR_CORRUPT, e);
    b ^= 1;
    poke(path, s - 200, &b, 1);
    /* wrong magic and wrong version give clear errors */
    poke(path, 0, "XSIX", 4);
    assert_rc(vs_index_open("embedded", f->dir, &ix, &e), VS_ERR_CORRUPT, e);
    assert_non_null(strstr(e.msg, "magic"));
    assert_non_null(strstr(e.msg, path));
    poke(path, 0, "VSIX", 4);
    unsigned char v99[4] = {99, 0, 0, 0};
    poke(path, 4, v99, 4);
    assert_rc(vs_index_open("embedded", f->dir, &ix, &e), VS_ERR_UNSUPPORTED, e);
    assert_non_null(strstr(e.msg, "version 99"));
    unsigned char v1[4] = {1, 0, 0, 0};
    poke(path, 4, v1, 4);
    /* a header whose dim was changed fails its checksum */
    unsigned char d[4] = {65, 0, 0, 0};
    poke(path, 8, d, 4);
    assert_rc(vs_index_open("embedded", f->dir, &ix, &e), VS_ERR_CORRUPT, e);
    d[0] = 64;
    poke(path, 8, d, 4);
    /* a length field pointing far beyond the file, followed by valid groups */
    unsigned char big[4] = {0xff, 0xff, 0xff, 0x7f};
    poke(path, hdr, big, 4);
    assert_rc(vs_index_open("embedded", f->dir, &ix, &e), VS_ERR_CORRUPT, e);
    fx_free(f);
}

static void test_compaction(void **state) {
    (void)state;
    fx *f = fx_new(&embedded, "", 64, 300, 51);
    char path[256];
    log_path(f, path, sizeof path);
    gen_points(f, 0, 300);
    for (int r = 0; r < 4; r++) put_points(f, 0, 300, 100); /* 3/4 of the log is dead */
    char tn[32];
    tenant_of(0, tn);
    vs_filter f0 = {.tenant_id = tn};
    int64_t del;
    vs_error e = {0};
    assert_ok(f->ix->ops->delete_filter(f->ix, f->coll, &f0, &del, &e), e);
    for (int i = 0; i < 300; i++)
        if (f->tenant[i] == 0) f->alive[i] = 0;
    char *before = search_snapshot(f);
    long s_before = file_size(path);
    vs_index_embedded_set_compact_min(1000);
    fx_reopen(f);
    vs_index_embedded_set_compact_min(64ull << 20);
    long s_after = file_size(path);
    assert_true(s_after < s_before / 3);
    validate(f);
    char *after = search_snapshot(f);
    assert_string_equal(before, after);
    fx_reopen(f); /* the compacted file replays to the same state */
    validate(f);
    assert_int_equal(file_size(path), s_after);
    free(after);
    after = search_snapshot(f);
    assert_string_equal(before, after);
    free(before);
    free(after);
    fx_free(f);
}

/* ---- allocation failure ------------------------------------------------- */

static void test_upsert_alloc_failure(void **state) {
    (void)state;
    enum { NEW = 200, REP = 20, B = NEW + REP };
    fx *f = fx_new(&embedded, "", 32, 600, 71);
    char path[256];
    log_path(f, path, sizeof path);
    gen_points(f, 0, 600);
    put_points(f, 0, 300, 100);
    /* the batch: new points (enough to grow every tenant block), replacements,
     * and one brand-new tenant */
    vs_point pts[B];
    static char ids[B][VS_POINT_ID_MAX], pay[B][512];
    for (int k = 0; k < B; k++) {
        int i = k < NEW ? 300 + k : (k - NEW) * 7;
        snprintf(ids[k], sizeof ids[k], "%s", f->ids[i]);
        payload_of(f, i, pay[k], sizeof pay[k]);
        if (k == 0) snprintf(pay[k], sizeof pay[k], "{\"tenant_id\":\"tenant-new\"}");
        pts[k] = (vs_point){ids[k], f->vecs + (size_t)i * 32, pay[k]};
    }
    /* replacements get new vectors so a half-applied batch would show */
    float rep[REP][32];
    for (int k = 0; k < REP; k++) {
        rand_vec(f, rep[k], NULL, 1.0f);
        pts[NEW + k].vector = rep[k];
    }
    long size0 = file_size(path);
    int total0 = total_count(f);
    char *snap0 = search_snapshot(f);
    int failures = 0;
    vs_err rc = VS_ERR_NOMEM;
    for (long k = 0; rc == VS_ERR_NOMEM && k < 10000; k++) {
        vs_error e = {0};
        vs_alloc_fail_after(k);
        rc = f->ix->ops->upsert(f->ix, f->coll, pts, B, &e);
        vs_alloc_fail_after(-1);
        if (rc == VS_OK) break;
        if (rc != VS_ERR_NOMEM) fail_msg("allocation failure %ld gave %s: %s", k, vs_err_name(rc), e.msg);
        failures++;
        /* nothing of the batch is visible, in memory or on disk */
        validate(f);
        assert_int_equal(file_size(path), size0);
        vs_filter fl = {.tenant_id = "tenant-new"};
        assert_int_equal(count_of(f, &fl), 0);
        assert_int_equal(total_count(f), total0);
        char *snap = search_snapshot(f);
        assert_string_equal(snap, snap0);
        free(snap);
    }
    free(snap0);
    assert_int_equal(rc, VS_OK);
    assert_true(failures > 3);
    assert_true(f->ix->ops->healthy(f->ix));
    validate(f);
    vs_filter fl = {.tenant_id = "tenant-new"};
    assert_int_equal(count_of(f, &fl), 1);
    assert_int_equal(total_count(f), total0 + NEW - 1);
    /* search fails cleanly too */
    vs_alloc_fail_after(0);
    vs_hit *hits = NULL;
    int n = 0;
    vs_error e = {0};
    vs_filter f0 = {.tenant_id = "tenant-0"};
    rc = f->ix->ops->search(f->ix, f->coll, f->vecs, &f0, 10, -1.0f, &hits, &n, &e);
    vs_alloc_fail_after(-1);
    assert_int_equal(rc, VS_ERR_NOMEM);
    assert_null(hits);
    fx_reopen(f);
    validate(f);
    assert_int_equal(count_of(f, &fl), 1);
    assert_int_equal(total_count(f), total0 + NEW - 1);
    fx_free(f);
}

/* A write that fails half-way (file size limit, as with a full disk) leaves
 * neither bytes in the log nor points in memory, and the index keeps working. */
static void test_write_failure(void **state) {
    (void)state;
    enum { N = 1500 }; /* ~6 MB of dim-1024 records: one 4 MiB flush, then the rest */
    fx *f = fx_new(&embedded, "", 1024, N, 81);
    char path[256];
    log_path(f, path, sizeof path);
    gen_points(f, 0, N);
    put_points(f, 0, 10, 10);
    long size0 = file_size(path);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    for (int r = 0; r < 2; r++) {
        lim = old;
        lim.rlim_cur = (rlim_t)size0 + (r == 0 ? 5u << 20 : 1000u); /* after a flush / at once */
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        vs_point *pts = calloc(N, sizeof *pts);
        static char ids[N][VS_POINT_ID_MAX], pay[N][512];
        for (int i = 10; i < N; i++) {
            snprintf(ids[i], sizeof ids[i], "%s", f->ids[i]);
            payload_of(f, i, pay[i], sizeof pay[i]);
            pts[i - 10] = (vs_point){ids[i], f->vecs + (size_t)i * 1024, pay[i]};
        }
        vs_error e = {0};
        vs_err rc = f->ix->ops->upsert(f->ix, f->coll, pts, N - 10, &e);
        setrlimit(RLIMIT_FSIZE, &old);
        free(pts);
        assert_int_equal(rc, VS_ERR_IO);
        assert_non_null(strstr(e.msg, path));
        assert_int_equal(file_size(path), size0);
        assert_int_equal(total_count(f), 10);
        assert_true(f->ix->ops->healthy(f->ix));
        validate(f);
    }
    signal(SIGXFSZ, prev);
    put_points(f, 10, 20, 10);
    fx_reopen(f);
    validate(f);
    assert_int_equal(total_count(f), 20);
    fx_free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        CONTRACT_INDEX_TESTS(&embedded),
        CONTRACT_INDEX_TESTS(&embedded_ann),
        cmocka_unit_test(test_crc32c_vector),
        cmocka_unit_test(test_one_open_per_dir),
        cmocka_unit_test(test_torn_tail),
        cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_compaction),
        cmocka_unit_test(test_upsert_alloc_failure),
        cmocka_unit_test(test_write_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
