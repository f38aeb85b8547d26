/* test_cluster.c - faces into people (src/pipeline/vs_cluster.c) on small
 * hand-made embeddings: two tight groups and strangers, min_faces, re-posted
 * photos counting once, a chain between two people (never merged when one
 * face wide; merged when three wide and link_sim lets its steps link: DBSCAN
 * is single-link among cores), many copies of one photo beside the person's
 * other photos, the incremental vote + centroid rule and its local contrast,
 * allocation failures, determinism, n = 0 and 1, bad
 * arguments. Vectors are dim 16, built from angles so the similarities are
 * known to a few thousandths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_cluster.h"

#define DIM 16

/* Deterministic noise: xorshift, so a failure reproduces. */
static float rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)((double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* v = normalise(cos(a) e_x + sin(a) e_y + noise). */
static void face_at(float *v, int x, int y, double a, float noise, uint64_t *s) {
    double n2 = 0;
    for (int d = 0; d < DIM; d++) v[d] = noise * rnd(s);
    v[x] += (float)cos(a);
    v[y] += (float)sin(a);
    for (int d = 0; d < DIM; d++) n2 += (double)v[d] * v[d];
    for (int d = 0; d < DIM; d++) v[d] = (float)(v[d] / sqrt(n2));
}

static int run(const float *vecs, int n, const vs_cluster_cfg *c, const int *dup, int *labels) {
    vs_cluster_exact x = {vecs, n, DIM};
    int nc = -7;
    vs_error e;
    assert_int_equal(vs_cluster_batch(n, c, vs_cluster_knn_exact, &x, dup, labels, &nc, &e), VS_OK);
    return nc;
}

/* 8 faces near e0, 8 near e1, 5 strangers each on its own axis. */
static int two_groups(float *v) {
    uint64_t s = 42;
    int n = 0;
    for (int i = 0; i < 8; i++) face_at(v + DIM * n++, 0, 2, 0, 0.02f, &s);
    for (int i = 0; i < 8; i++) face_at(v + DIM * n++, 1, 2, 0, 0.02f, &s);
    for (int i = 0; i < 5; i++) face_at(v + DIM * n++, 3 + 2 * i, 4 + 2 * i, 0, 0.02f, &s);
    return n;
}

static void test_two_groups_and_noise(void **state) {
    (void)state;
    float v[32 * DIM];
    int labels[32], n = two_groups(v);
    vs_cluster_cfg c;
    vs_cluster_cfg_default(&c);
    assert_int_equal(run(v, n, &c, NULL, labels), 2);
    for (int i = 0; i < 8; i++) assert_int_equal(labels[i], 0);
    for (int i = 8; i < 16; i++) assert_int_equal(labels[i], 1);
    for (int i = 16; i < n; i++) assert_int_equal(labels[i], -1);
}

static void test_min_faces(void **state) {
    (void)state;
    float v[4 * DIM];
    uint64_t s = 7;
    for (int i = 0; i < 2; i++) face_at(v + DIM * i, 0, 1, 0, 0.02f, &s);
    int labels[4];
    vs_cluster_cfg c;
    vs_cluster_cfg_default(&c);
    assert_int_equal(run(v, 2, &c, NULL, labels), 0); /* two photos are not a person */
    assert_int_equal(labels[0], -1);
    assert_int_equal(labels[1], -1);
    c.min_faces = 2;
    assert_int_equal(run(v, 2, &c, NULL, labels), 1);
    assert_int_equal(labels[0], 0);
    assert_int_equal(labels[1], 0);
    face_at(v + DIM * 2, 0, 1, 0, 0.02f, &s); /* a third photo makes one at the default */
    vs_cluster_cfg_default(&c);
    assert_int_equal(run(v, 3, &c, NULL, labels), 1);
}

static void test_duplicates_count_once(void **state) {
    (void)state;
    float v[4 * DIM];
    uint64_t s = 9;
    for (int i = 0; i < 3; i++) face_at(v + DIM * i, 0, 1, 0, 0.001f, &s); /* one photo posted 3 times */
    int labels[4], same[3] = {5, 5, 5}, distinct[3] = {1, 2, 3};
    vs_cluster_cfg c;
    vs_cluster_cfg_default(&c);
    assert_int_equal(run(v, 3, &c, same, labels), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(labels[i], -1);
    assert_int_equal(run(v, 3, &c, distinct, labels), 1);
    /* two copies and one other photo: 2 distinct, still not a person */
    int two[3] = {5, 5, 6};
    assert_int_equal(run(v, 3, &c, two, labels), 0);
    /* a fourth, different photo makes 3 distinct */
    face_at(v + DIM * 3, 0, 1, 0, 0.02f, &s);
    int three[4] = {5, 5, 6, 8};
    assert_int_equal(run(v, 4, &c, three, labels), 1);
    for (int i = 0; i < 4; i++) assert_int_equal(labels[i], 0);
}

/* One photo posted 12 times (dup 1) and two other photos of the same person
 * (dups 2, 3), with knn_k 4: the copies would fill every copy's list, so the
 * batch asks for more neighbours for a face with copies, and the person is
 * found (3 distinct photos). */
static void test_many_copies(void **state) {
    (void)state;
    float v[16 * DIM];
    int dup[16], labels[16], n = 0;
    uint64_t s = 5;
    for (int i = 0; i < 12; i++) dup[n] = 1, face_at(v + DIM * n++, 0, 1, 0, 0.001f, &s);
    dup[n] = 2, face_at(v + DIM * n++, 0, 1, 0.15, 0.001f, &s);
    dup[n] = 3, face_at(v + DIM * n++, 0, 1, -0.15, 0.001f, &s);
    vs_cluster_cfg c;
    vs_cluster_cfg_default(&c);
    c.knn_k = 4;
    c.link_sim = 0.95f; /* cos(0.15) = 0.989, cos(0.3) = 0.955 */
    assert_int_equal(run(v, n, &c, dup, labels), 1);
    for (int i = 0; i < n; i++) assert_int_equal(labels[i], 0);
}

/* Group A at angle 0, group B at 110 degrees (similarity -0.34), a chain
 * between them at 22, 44, 66, 88 degrees: consecutive steps have similarity
 * cos 22 = 0.927.
 *  - A chain one face wide never merges A and B, whatever link_sim: an edge
 *    needs a shared neighbour (SNN >= min_faces - 2 = 1) and two chain faces
 *    share none: the middle faces stay noise (at 0.90 the end faces, 0.927
 *    from A or B, join them as border faces, which is right).
 *  - A chain three faces wide (three photos at each step): at link_sim 0.95
 *    no step is an edge and A and B stay apart (the chain faces form
 *    small persons of their own, which is right: they are tight triples).
 *    At link_sim 0.90 every step is an edge with shared neighbours, the
 *    faces' background is above link_sim (no contrast lift), and DBSCAN,
 *    single-link among cores, makes A, chain and B one person: what a high
 *    link_sim is there to prevent. */
static int chain(float *v, int width) {
    const double deg = 3.14159265358979 / 180;
    uint64_t s = 11;
    int n = 0;
    for (int i = 0; i < 8; i++) face_at(v + DIM * n++, 0, 1, 0, 0.004f, &s);
    for (int i = 0; i < 8; i++) face_at(v + DIM * n++, 0, 1, 110 * deg, 0.004f, &s);
    for (int j = 1; j <= 4; j++)
        for (int w = 0; w < width; w++) face_at(v + DIM * n++, 0, 1, 22 * j * deg, 0.004f, &s);
    return n;
}

static void test_chain(void **state) {
    (void)state;
    float v[32 * DIM];
    int labels[32];
    vs_cluster_cfg c;
    vs_cluster_cfg_default(&c);
    int n = chain(v, 1);
    for (int t = 0; t < 2; t++) {
        c.link_sim = t ? 0.90f : 0.95f;
        assert_int_equal(run(v, n, &c, NULL, labels), 2);
        for (int i = 0; i < 8; i++) assert_int_equal(labels[i], 0);
        for (int i = 8; i < 16; i++) assert_int_equal(labels[i], 1);
        /* at 0.90 the end faces are within reach of A and B: borders of them */
        assert_int_equal(labels[16], t ? 0 : -1);
        assert_int_equal(labels[17], -1);
        assert_int_equal(labels[18], -1);
        assert_int_equal(labels[19], t ? 1 : -1);
    }
    n = chain(v, 3);
    c.link_sim = 0.95f;
    assert_int_equal(run(v, n, &c, NULL, labels), 6); /* A, B and the four triples */
    for (int i = 0; i < 8; i++) assert_int_equal(labels[i], 0);
    for (int i = 8; i < 16; i++) assert_int_equal(labels[i], 1);
    /* at 0.90 every step is an edge; the faces' background (10th nearest)
     * is itself >= 0.90, so the contrast does not lift the bar, and single
     * link merges A, chain and B */
    c.link_sim = 0.90f;
    assert_int_equal(run(v, n, &c, NULL, labels), 1);
    for (int i = 0; i < n; i++) assert_int_equal(labels[i], 0);
}

typedef struct centroids {
    int person[4];
    float sim[4];
    int n, calls;
} centroids;

static int centroid_of(void *ctx, int person, float *sim) {
    centroids *c = ctx;
    c->calls++;
    for (int i = 0; i < c->n; i++)
        if (c->person[i] == person) {
            *sim = c->sim[i];
            return 0;
        }
    return -1;
}

static void test_assign(void **state) {
    (void)state;
    vs_cluster_cfg c;
    vs_cluster_cfg_default(&c);
    float hi = c.join_sim + 0.02f, lo = c.join_sim - 0.02f, link = c.link_sim + 0.02f;
    centroids cs = {{7, 8}, {hi, hi}, 2, 0};
    vs_cluster_vote agree[8];
    for (int i = 0; i < 8; i++) agree[i] = (vs_cluster_vote){7, link + 0.01f * (float)(8 - i)};
    assert_int_equal(vs_cluster_assign(&c, agree, 8, centroid_of, &cs), 7);
    /* votes agree but the centroid is too far */
    cs.sim[0] = lo;
    assert_int_equal(vs_cluster_assign(&c, agree, 8, centroid_of, &cs), -1);
    cs.sim[0] = hi;
    /* split 4 / 4 between two people: no majority, no join */
    vs_cluster_vote split[8];
    for (int i = 0; i < 8; i++) split[i] = (vs_cluster_vote){i % 2 ? 8 : 7, link};
    assert_int_equal(vs_cluster_assign(&c, split, 8, centroid_of, &cs), -1);
    /* 7 of 8 for person 8: joins 8 */
    for (int i = 0; i < 8; i++) split[i] = (vs_cluster_vote){i == 3 ? 7 : 8, link};
    assert_int_equal(vs_cluster_assign(&c, split, 8, centroid_of, &cs), 8);
    /* neighbours below link_sim do not vote: no votes, no join, no centroid asked */
    vs_cluster_vote far[3] = {{7, c.link_sim - 0.01f}, {7, c.link_sim - 0.02f}, {7, 0.5f}};
    cs.calls = 0;
    assert_int_equal(vs_cluster_assign(&c, far, 3, centroid_of, &cs), -1);
    assert_int_equal(cs.calls, 0);
    /* a far neighbour of another person does not dilute the vote */
    vs_cluster_vote mixed[4] = {{7, link}, {7, link}, {7, link}, {8, c.link_sim - 0.1f}};
    assert_int_equal(vs_cluster_assign(&c, mixed, 4, centroid_of, &cs), 7);
    /* unknown centroid: -1 */
    vs_cluster_vote unknown[3] = {{9, link}, {9, link}, {9, link}};
    assert_int_equal(vs_cluster_assign(&c, unknown, 3, centroid_of, &cs), -1);
    assert_int_equal(vs_cluster_assign(&c, agree, 0, centroid_of, &cs), -1);
}

/* The contrast in the incremental path: votes must beat background +
 * contrast when the background is below link_sim; a background at or above
 * link_sim (the face is among many photos of someone) lifts nothing. */
static void test_assign_local(void **state) {
    (void)state;
    vs_cluster_cfg c;
    vs_cluster_cfg_default(&c);
    centroids cs = {{7}, {c.join_sim + 0.02f}, 1, 0};
    vs_cluster_vote v[4];
    for (int i = 0; i < 4; i++) v[i] = (vs_cluster_vote){7, c.link_sim + 0.01f};
    assert_int_equal(vs_cluster_assign_local(&c, v, 4, -3.0f, centroid_of, &cs), 7);  /* unknown */
    assert_int_equal(vs_cluster_assign_local(&c, v, 4, c.link_sim - 0.005f, centroid_of, &cs), -1); /* crowded */
    assert_int_equal(vs_cluster_assign_local(&c, v, 4, c.link_sim - 0.05f, centroid_of, &cs), 7);  /* sparse */
    assert_int_equal(vs_cluster_assign_local(&c, v, 4, c.link_sim + 0.005f, centroid_of, &cs), 7); /* no lift */
    c.contrast = 0;
    assert_int_equal(vs_cluster_assign_local(&c, v, 4, c.link_sim - 0.005f, centroid_of, &cs), 7); /* off */
}

static void test_deterministic(void **state) {
    (void)state;
    float v[32 * DIM];
    int a[32], b[32], n = two_groups(v);
    vs_cluster_cfg c;
    vs_cluster_cfg_default(&c);
    c.knn_k = 4; /* rows shorter than the groups: edges depend on ties and order */
    int na = run(v, n, &c, NULL, a), nb = run(v, n, &c, NULL, b);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, sizeof(int) * (size_t)n);
}

static void test_small_n(void **state) {
    (void)state;
    vs_cluster_cfg c;
    vs_cluster_cfg_default(&c);
    int labels[1] = {5}, nc = -1;
    vs_error e;
    vs_cluster_exact x = {NULL, 0, DIM};
    assert_int_equal(vs_cluster_batch(0, &c, vs_cluster_knn_exact, &x, NULL, NULL, &nc, &e), VS_OK);
    assert_int_equal(nc, 0);
    float v[DIM];
    uint64_t s = 3;
    face_at(v, 0, 1, 0, 0.01f, &s);
    assert_int_equal(run(v, 1, &c, NULL, labels), 0);
    assert_int_equal(labels[0], -1);
    c.min_faces = 1; /* a person of one face is allowed when asked for */
    assert_int_equal(run(v, 1, &c, NULL, labels), 1);
    assert_int_equal(labels[0], 0);
}

static int knn_fails(void *ctx, int i, int k, int *nbr, float *sim) {
    (void)ctx, (void)i, (void)k, (void)nbr, (void)sim;
    return -1;
}

static void test_bad_args(void **state) {
    (void)state;
    vs_cluster_cfg c;
    vs_cluster_cfg_default(&c);
    int labels[4], nc;
    vs_error e;
    assert_int_equal(vs_cluster_batch(4, &c, knn_fails, NULL, NULL, labels, &nc, &e), VS_ERR_BACKEND);
    assert_int_equal(vs_cluster_batch(-1, &c, knn_fails, NULL, NULL, labels, &nc, &e), VS_ERR_INVALID_ARG);
    c.knn_k = 0;
    assert_int_equal(vs_cluster_batch(4, &c, knn_fails, NULL, NULL, labels, &nc, &e), VS_ERR_INVALID_ARG);
    vs_cluster_cfg_default(&c);
    c.min_faces = 0;
    assert_int_equal(vs_cluster_batch(4, &c, knn_fails, NULL, NULL, labels, &nc, &e), VS_ERR_INVALID_ARG);
    vs_cluster_cfg_default(&c);
    assert_int_equal(vs_cluster_batch(4, &c, NULL, NULL, NULL, labels, &nc, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_cluster_knn_exact(NULL, 0, 4, labels, (float *)labels), -1);
}

/* Every allocation of a batch failing in turn: VS_ERR_NOMEM, never a crash
 * or a leak (the ASan build checks the leaks), and the same labels once
 * allocations succeed again. */
static void test_alloc_failures(void **state) {
    (void)state;
    float v[32 * DIM];
    int n = two_groups(v), labels[32], want[32], dup[32], nc = 0;
    for (int i = 0; i < n; i++) dup[i] = i / 2;
    vs_cluster_cfg c;
    vs_cluster_cfg_default(&c);
    vs_cluster_exact x = {v, n, DIM};
    vs_error e;
    assert_int_equal(vs_cluster_batch(n, &c, vs_cluster_knn_exact, &x, dup, want, &nc, &e), VS_OK);
    int failed = 0;
    for (long k = 0; k < 40; k++) {
        vs_alloc_fail_after(k);
        vs_err rc = vs_cluster_batch(n, &c, vs_cluster_knn_exact, &x, dup, labels, &nc, &e);
        vs_alloc_fail_after(-1);
        assert_true(rc == VS_OK || rc == VS_ERR_NOMEM);
        failed += rc == VS_ERR_NOMEM;
        if (rc == VS_OK) assert_memory_equal(labels, want, sizeof(int) * (size_t)n);
    }
    assert_true(failed > 0);
}

/* A new person merges only where enough of its photos agree: vote_frac of
 * them and at least min_faces; a few look-alike members are not enough. */
static void test_merge_target(void **state) {
    (void)state;
    vs_cluster_cfg c;
    vs_cluster_cfg_default(&c); /* vote_frac 0.75, min_faces 3 */
    int all[] = {4, 4, 4, 4};
    assert_int_equal(vs_cluster_merge_target(&c, all, 4), 4);
    int most[] = {4, 4, 4, -1};
    assert_int_equal(vs_cluster_merge_target(&c, most, 4), 4); /* 3 of 4 = 0.75 */
    int half[] = {4, 4, -1, -1};
    assert_int_equal(vs_cluster_merge_target(&c, half, 4), -1);
    int split[] = {4, 4, 7, 7, 4, 4, 7, 7};
    assert_int_equal(vs_cluster_merge_target(&c, split, 8), -1); /* two candidates: no merge */
    int two[] = {5, 5};
    assert_int_equal(vs_cluster_merge_target(&c, two, 2), -1); /* below min_faces photos */
    int none[] = {-1, -1, -1};
    assert_int_equal(vs_cluster_merge_target(&c, none, 3), -1);
    assert_int_equal(vs_cluster_merge_target(&c, all, 0), -1);
    assert_int_equal(vs_cluster_merge_target(NULL, all, 4), -1);
    assert_int_equal(vs_cluster_merge_target(&c, NULL, 4), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_groups_and_noise), cmocka_unit_test(test_min_faces),
        cmocka_unit_test(test_duplicates_count_once), cmocka_unit_test(test_many_copies), cmocka_unit_test(test_chain),
        cmocka_unit_test(test_assign), cmocka_unit_test(test_assign_local),    cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_small_n),   cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_alloc_failures),    cmocka_unit_test(test_merge_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
