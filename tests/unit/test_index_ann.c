/* test_index_ann.c - the embedded index's approximate search (vs_ann.c: one
 * HNSW graph per tenant past a bound) through the vs_index API, on clustered
 * face-like vectors (bench/clustered.h): the graph answers only above the
 * bound, top-10 overlap with the exact scan, exact scores, tenant isolation
 * with identical vectors in two tenants, filters (wide ones through the
 * graph, selective ones handed to the exact scan), deletes never returned,
 * bulk deletes rebuilding, a point moving tenant, the graph dropped below
 * half the bound, reopen, and searches beside a writer. The bound is set
 * low (500) so the data stays small; the server's default is 20000. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../bench/clustered.h"
#include "vs_ann.h"
#include "vs_index.h"
#include "vs_index_embedded.h"

#if defined(__SANITIZE_ADDRESS__)
#define N_BIG 2400   /* a quarter, then the even half of the rest deleted: 600 left, past BOUND */
#else
#define N_BIG 4000
#endif
#define N_SMALL 300
#define N_MID 450
#define BOUND 500
#define DIM 128
#define NQ 60
#define K 10
#define COLL "faces_v1"

#define assert_ok(expr, e) do { vs_err rc_ = (expr); if (rc_) fail_msg("%s: %s", #expr, (e).msg); } while (0)

typedef struct world {
    char dir[64];
    vs_index *ix;
    float *vecs, *queries;   /* N_BIG base vectors, NQ queries */
    int32_t *person;
} world;

static int rm_one(const char *p, const struct stat *s, int flag, struct FTW *ftw) {
    (void)s, (void)flag, (void)ftw;
    return remove(p);
}

static vs_index *open_ix(const char *dir) {
    vs_index *ix = NULL;
    vs_error e = {0};
    vs_index_opts o = {.ann_min_points = BOUND, .ann_ef_search = 64};
    assert_ok(vs_index_open_with("embedded", dir, &o, &ix, &e), e);
    return ix;
}

/* Site of base point i: "rare" for 1 in 500 (fewer than K), else odd/even. */
static const char *site_of(int i) { return i % 500 == 7 ? "rare.example" : i % 2 ? "odd.example" : "even.example"; }

/* Upserts points [from, to) of the base set as tenant t with id prefix. */
static void put_range(world *w, const char *t, const char *prefix, int from, int to) {
    vs_error e = {0};
    for (int i = from; i < to; i += 100) {
        vs_point pts[100];
        char ids[100][32], pay[100][256];
        int n = 0;
        for (int j = i; j < to && n < 100; j++, n++) {
            snprintf(ids[n], sizeof ids[n], "%s-%05d", prefix, j);
            snprintf(pay[n], sizeof pay[n],
                     "{\"tenant_id\":\"%s\",\"site\":\"%s\",\"image_sha256\":\"sha%05d\",\"quality_score\":%.1f}", t,
                     site_of(j), j / 4, (j % 10) / 10.0);
            pts[n] = (vs_point){ids[n], w->vecs + (size_t)j * DIM, pay[n]};
        }
        assert_ok(w->ix->ops->upsert(w->ix, COLL, pts, n, &e), e);
    }
}

static int setup(void **state) {
    world *w = calloc(1, sizeof *w);
    snprintf(w->dir, sizeof w->dir, "/tmp/vs_ann_XXXXXX");
    if (!mkdtemp(w->dir)) return -1;
    bench_clustered_params p = bench_clustered_defaults(DIM);
    p.seed = 77;
    w->vecs = malloc(sizeof(float) * N_BIG * DIM);
    w->queries = malloc(sizeof(float) * NQ * DIM);
    w->person = malloc(sizeof(int32_t) * N_BIG);
    int32_t qp[NQ];
    bench_clustered_gen(&p, N_BIG, w->vecs, w->person);
    bench_clustered_queries(&p, w->person, N_BIG, NQ, w->queries, qp);
    w->ix = open_ix(w->dir);
    vs_error e = {0};
    assert_ok(w->ix->ops->ensure_collection(w->ix, COLL, DIM, "dlib@test", &e), e);
    put_range(w, "big", "b", 0, N_BIG);
    put_range(w, "small", "s", 0, N_SMALL);   /* the same vectors as big's first ones */
    put_range(w, "mid", "m", 0, N_MID);
    *state = w;
    return 0;
}

static int teardown(void **state) {
    world *w = *state;
    w->ix->ops->close(w->ix);
    nftw(w->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(w->vecs), free(w->queries), free(w->person), free(w);
    return 0;
}

static vs_ann_stats stats(world *w) {
    vs_ann_stats st;
    vs_error e = {0};
    assert_ok(vs_index_embedded_ann_stats(w->ix, COLL, &st, &e), e);
    return st;
}

static void validate(world *w) {
    vs_error e = {0};
    assert_ok(vs_index_validate(w->ix, COLL, &e), e);
}

/* Top-k of query qi for filter f; hits owned by the caller. */
static int search(world *w, int qi, const vs_filter *f, vs_hit **hits) {
    int n = 0;
    vs_error e = {0};
    assert_ok(w->ix->ops->search(w->ix, COLL, w->queries + (size_t)qi * DIM, f, K, -1.0f, hits, &n, &e), e);
    for (int i = 1; i < n; i++) assert_true((*hits)[i - 1].score >= (*hits)[i].score);
    return n;
}

/* Mean overlap of f's approximate top-K with the exact one over all
 * queries; every approximate hit must also pass check (if given). */
static double overlap(world *w, vs_filter f, const char *prefix) {
    double sum = 0;
    for (int qi = 0; qi < NQ; qi++) {
        vs_hit *a, *x;
        f.exact = 0;
        int na = search(w, qi, &f, &a);
        f.exact = 1;
        int nx = search(w, qi, &f, &x);
        int same = 0;
        for (int i = 0; i < na; i++) {
            assert_memory_equal(a[i].id, prefix, strlen(prefix));   /* the tenant's own points only */
            if (f.site) assert_non_null(strstr(a[i].payload_json, f.site));
            for (int j = 0; j < nx; j++)
                if (strcmp(a[i].id, x[j].id) == 0) {
                    same++;
                    assert_float_equal(a[i].score, x[j].score, 1e-6);   /* scores are exact */
                }
        }
        sum += nx ? (double)same / nx : 1.0;
        vs_hits_free(a, na);
        vs_hits_free(x, nx);
    }
    return sum / NQ;
}

/* The graph exists only for the tenant past the bound, answers its
 * searches, and agrees with the exact scan; small tenants stay exact. */
static void test_engaged_recall(void **state) {
    world *w = *state;
    vs_ann_stats st = stats(w);
    assert_int_equal(st.graphs, 1);
    assert_int_equal(st.points, N_BIG);
    uint64_t before = st.searches;
    double r = overlap(w, (vs_filter){.tenant_id = "big"}, "b-");
    printf("# big (%d points): top-%d overlap with exact %.4f\n", N_BIG, K, r);
    assert_true(r >= 0.9);
    assert_int_equal(stats(w).searches - before, NQ);   /* every non-exact search went through the graph */
    before = stats(w).searches;
    assert_true(overlap(w, (vs_filter){.tenant_id = "small"}, "s-") == 1.0);
    assert_int_equal(stats(w).searches, before);
    validate(w);
}

/* Wide filters go through the graph and every hit passes them; a filter
 * the graph cannot fill (rare site, one image) gets the exact answer. */
static void test_filters(void **state) {
    world *w = *state;
    double r = overlap(w, (vs_filter){.tenant_id = "big", .site = "odd.example"}, "b-");
    printf("# site filter (half): overlap %.4f\n", r);
    assert_true(r >= 0.85);
    r = overlap(w, (vs_filter){.tenant_id = "big", .min_quality = 0.75f}, "b-");
    printf("# min_quality filter (a fifth): overlap %.4f\n", r);
    assert_true(r >= 0.8);
    uint64_t fb = stats(w).exact_fallbacks;
    assert_true(overlap(w, (vs_filter){.tenant_id = "big", .site = "rare.example"}, "b-") == 1.0);
    assert_true(stats(w).exact_fallbacks > fb);
    assert_true(overlap(w, (vs_filter){.tenant_id = "big", .image_sha256 = "sha00012"}, "b-") == 1.0);
}

/* Deleting a point takes it out of every answer at once; the graph stays
 * valid and keeps its recall; a bulk delete rebuilds it; below half the
 * bound the tenant goes back to exact search. */
static void test_deletes(void **state) {
    world *w = *state;
    vs_error e = {0};
    int nd = N_BIG / 4;   /* under a third: repaired one by one */
    char(*ids)[32] = malloc((size_t)nd * 32);
    const char **idp = malloc((size_t)nd * sizeof *idp);
    for (int i = 0; i < nd; i++) {
        snprintf(ids[i], 32, "b-%05d", i * 4 + 1);
        idp[i] = ids[i];
    }
    uint64_t builds = stats(w).builds;
    int64_t deleted = 0;
    assert_ok(w->ix->ops->delete_ids(w->ix, COLL, "big", idp, nd, &deleted, &e), e);
    assert_int_equal(deleted, nd);
    assert_int_equal(stats(w).points, N_BIG - nd);
    assert_int_equal(stats(w).builds, builds);
    validate(w);
    for (int qi = 0; qi < NQ; qi++) {
        vs_hit *h;
        int n = search(w, qi, &(vs_filter){.tenant_id = "big"}, &h);
        for (int i = 0; i < n; i++) assert_int_not_equal(atoi(h[i].id + 2) % 4, 1);
        vs_hits_free(h, n);
    }
    double r = overlap(w, (vs_filter){.tenant_id = "big"}, "b-");
    printf("# after deleting a quarter: overlap %.4f\n", r);
    assert_true(r >= 0.9);
    /* half of what is left in one delete_filter: dropped and rebuilt */
    assert_ok(w->ix->ops->delete_filter(w->ix, COLL, &(vs_filter){.tenant_id = "big", .site = "even.example"},
                                        &deleted, &e), e);
    assert_true(deleted > 0);
    assert_int_equal(stats(w).builds, builds + 1);
    assert_int_equal(stats(w).points, (uint64_t)(N_BIG - nd - deleted));
    validate(w);
    assert_true(overlap(w, (vs_filter){.tenant_id = "big"}, "b-") >= 0.9);
    free(ids), free(idp);
}

/* A tenant crossing the bound gets its graph; a point moved to another
 * tenant leaves the old tenant's graph; reopening rebuilds the graphs. */
static void test_switch_move_reopen(void **state) {
    world *w = *state;
    vs_error e = {0};
    int graphs = stats(w).graphs;
    put_range(w, "mid", "m", N_MID, BOUND + 10);
    assert_int_equal(stats(w).graphs, graphs + 1);
    validate(w);
    /* b-00000 (still in big) moves to small, with its vector */
    char pay[] = "{\"tenant_id\":\"small\",\"site\":\"odd.example\"}";
    vs_point p = {"b-00000", w->vecs, pay};
    assert_ok(w->ix->ops->upsert(w->ix, COLL, &p, 1, &e), e);
    validate(w);
    vs_hit *h;
    int n;
    int found_small = 0;
    for (int qi = 0; qi < NQ; qi++) {
        n = search(w, qi, &(vs_filter){.tenant_id = "big"}, &h);
        for (int i = 0; i < n; i++) assert_string_not_equal(h[i].id, "b-00000");
        vs_hits_free(h, n);
    }
    float *q = w->vecs;   /* its own vector finds it in small, first */
    assert_ok(w->ix->ops->search(w->ix, COLL, q, &(vs_filter){.tenant_id = "small"}, K, -1.0f, &h, &n, &e), e);
    for (int i = 0; i < n; i++) found_small += strcmp(h[i].id, "b-00000") == 0;
    assert_int_equal(found_small, 1);
    vs_hits_free(h, n);

    vs_ann_stats st = stats(w);
    w->ix->ops->close(w->ix);
    w->ix = open_ix(w->dir);
    vs_ann_stats st2 = stats(w);
    assert_int_equal(st2.graphs, st.graphs);
    assert_int_equal(st2.points, st.points);
    assert_int_equal(st2.builds, 0);   /* loaded from the snapshot written at close, not rebuilt */
    validate(w);
    assert_true(overlap(w, (vs_filter){.tenant_id = "big"}, "b-") >= 0.9);
}

typedef struct reader {
    world *w;
    int bad;
} reader;

static void *reader_run(void *arg) {
    reader *r = arg;
    for (int i = 0; i < 200; i++) {
        vs_hit *h = NULL;
        int n = 0;
        vs_error e = {0};
        if (r->w->ix->ops->search(r->w->ix, COLL, r->w->queries + (size_t)(i % NQ) * DIM,
                                  &(vs_filter){.tenant_id = "big"}, K, -1.0f, &h, &n, &e) != VS_OK)
            r->bad++;
        for (int j = 0; j < n; j++) r->bad += strncmp(h[j].id, "b-", 2) != 0;
        vs_hits_free(h, n);
    }
    return NULL;
}

/* Searches beside a writer that deletes and re-adds points: no error, no
 * foreign point, a valid graph after. */
static void test_concurrent(void **state) {
    world *w = *state;
    reader rd[2] = {{w, 0}, {w, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, reader_run, &rd[i]), 0);
    vs_error e = {0};
    for (int i = 2; i < 400; i += 4) {
        char id[32];
        snprintf(id, sizeof id, "b-%05d", i);
        const char *idp = id;
        int64_t d;
        assert_ok(w->ix->ops->delete_ids(w->ix, COLL, "big", &idp, 1, &d, &e), e);
        put_range(w, "big", "b", i, i + 1);
        put_range(w, "small", "s", i, i + 1);
    }
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    assert_int_equal(rd[0].bad + rd[1].bad, 0);
    validate(w);
}

static void snap_path(const world *w, char *out, size_t cap) {
    snprintf(out, cap, "%s/index/%s/graphs.snap", w->dir, COLL);
}

/* A child changes the index after the last snapshot (a point moves, one
 * gets a new vector, some go, some come) and dies without closing: the
 * reopened index loads the stale snapshot and reconciles it with the log,
 * with no rebuild, and answers as the log says. */
static void test_crash_after_changes(void **state) {
    world *w = *state;
    vs_error e = {0};
    assert_ok(vs_index_embedded_checkpoint(w->ix, COLL, &e), e);
    w->ix->ops->close(w->ix);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        vs_index *ix = open_ix(w->dir);
        w->ix = ix;
        char pay[] = "{\"tenant_id\":\"big\",\"site\":\"odd.example\"}";
        vs_point p = {"b-00003", w->queries, pay};   /* b-00003 now looks like query 0 */
        if (ix->ops->upsert(ix, COLL, &p, 1, &e) != VS_OK) _exit(2);
        const char *gone[] = {"b-00011", "b-00015"};
        int64_t d;
        if (ix->ops->delete_ids(ix, COLL, "big", gone, 2, &d, &e) != VS_OK || d != 2) _exit(3);
        put_range(w, "big", "b", N_BIG - 50, N_BIG);   /* back if deleted before */
        _exit(0);   /* no close: no snapshot of these changes */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail_msg("child: status %#x", status);
    w->ix = open_ix(w->dir);
    vs_ann_stats st = stats(w);
    assert_int_equal(st.builds, 0);
    validate(w);   /* each graph holds exactly its tenant's live points */
    vs_hit *h;
    int n = search(w, 0, &(vs_filter){.tenant_id = "big"}, &h);
    assert_true(n > 0);
    assert_string_equal(h[0].id, "b-00003");
    assert_float_equal(h[0].score, 1.0f, 1e-5);
    vs_hits_free(h, n);
    for (int qi = 0; qi < NQ; qi++) {
        n = search(w, qi, &(vs_filter){.tenant_id = "big"}, &h);
        for (int i = 0; i < n; i++) {
            assert_string_not_equal(h[i].id, "b-00011");
            assert_string_not_equal(h[i].id, "b-00015");
        }
        vs_hits_free(h, n);
    }
}

/* A child saves the snapshot over and over and is SIGKILLed at random
 * moments: every reopen finds a whole snapshot (the old or the new one,
 * never a torn one: no rebuild) and a valid index. */
static void test_sigkill_during_save(void **state) {
    world *w = *state;
    w->ix->ops->close(w->ix);
    char snap[256], tmp[300];
    snap_path(w, snap, sizeof snap);
    snprintf(tmp, sizeof tmp, "%s.tmp", snap);
    int torn_left = 0;
    srand((unsigned)time(NULL));
    unlink(tmp);
    for (int round = 0; round < 8; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            vs_index *ix = open_ix(w->dir);
            vs_error e = {0};
            for (;;) vs_index_embedded_checkpoint(ix, COLL, &e);
        }
        /* kill while a save is under way: the moment its temp file exists,
         * after a random extra wait of 0-2 ms into the write */
        struct stat st;
        for (int spin = 0; spin < 40000 && stat(tmp, &st) != 0; spin++) usleep(50);
        usleep((useconds_t)(rand() % 2000));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        torn_left += stat(tmp, &st) == 0;
        w->ix = open_ix(w->dir);
        assert_int_equal(stats(w).builds, 0);
        assert_true(stats(w).graphs >= 1);
        validate(w);
        assert_int_not_equal(stat(tmp, &st), 0);   /* open removed the leftover */
        w->ix->ops->close(w->ix);
    }
    printf("# %d of 8 kills left a half-written snapshot behind\n", torn_left);
    assert_true(torn_left >= 1);   /* the kills did land inside saves */
    w->ix = open_ix(w->dir);
}

/* A damaged snapshot is refused by its checksum; the graphs are rebuilt
 * from the log, answer correctly, and a good snapshot is written again. */
static void test_corrupt_snapshot(void **state) {
    world *w = *state;
    w->ix->ops->close(w->ix);
    char snap[256];
    snap_path(w, snap, sizeof snap);
    int fd = open(snap, O_RDWR);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    unsigned char b;
    off_t at = st.st_size / 2;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x10;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
    w->ix = open_ix(w->dir);
    assert_true(stats(w).builds >= 1);
    validate(w);
    assert_true(overlap(w, (vs_filter){.tenant_id = "big"}, "b-") >= 0.9);
    w->ix->ops->close(w->ix);
    w->ix = open_ix(w->dir);
    assert_int_equal(stats(w).builds, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engaged_recall), cmocka_unit_test(test_filters),
        cmocka_unit_test(test_deletes),        cmocka_unit_test(test_switch_move_reopen),
        cmocka_unit_test(test_concurrent),     cmocka_unit_test(test_crash_after_changes),
        cmocka_unit_test(test_sigkill_during_save), cmocka_unit_test(test_corrupt_snapshot),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
