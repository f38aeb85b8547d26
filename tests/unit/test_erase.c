/* test_erase.c - erasure of a person and blocks (vs_erase.h) on a real
 * file store, embedded index, catalog and crawl.db in a temp dir, with
 * synthetic face vectors: exactly the person's images of the tenant go, with
 * their files, records and crawl rows; max_images stops it and a second run
 * finishes; blocks match at their own threshold, per tenant, and make the
 * index owner erase a matching result instead of indexing it. The engine is
 * loaded only for its embedding size (needs models/). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vs_alloc.h"
#include "vs_base64.h"
#include "vs_erase.h"
#include "vs_hash.h"
#include "vs_queue.h"

typedef struct fixture {
    char dir[64];
    vs_pipeline p;
    vs_engine *engine;
    int dim;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/vs_erase_XXXXXX");
    if (!f || !mkdtemp(f->dir)) return -1;
    vs_engine_cfg cfg;
    vs_engine_cfg_default(&cfg);
    if (!getenv("VISAGE_MODELS")) cfg.models_dir = VS_SOURCE_DIR "/models";
    char url[128];
    snprintf(url, sizeof url, "file://%s/blobs", f->dir);
    vs_error e = {0};
    f->p.crawl_db = NULL;
    if (vs_engine_load(&cfg, &f->engine, &e) != VS_OK || vs_store_open(url, &f->p.store, &e) != VS_OK ||
        vs_index_open("embedded", f->dir, &f->p.index, &e) != VS_OK || vs_catalog_open(f->dir, &f->p.catalog, &e) != VS_OK ||
        vs_crawl_db_open(f->dir, &f->p.crawl_db, &e) != VS_OK) {
        fprintf(stderr, "setup: %s\n", e.msg);
        return -1;
    }
    f->p.engine = f->engine;
    vs_collections_gen(1, &f->p.coll);
    vs_pipeline_cfg_default(&f->p.cfg);
    f->dim = vs_engine_embedding_dim(f->engine);
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int teardown(void **state) {
    fixture *f = *state;
    vs_crawl_db_close(f->p.crawl_db);
    vs_catalog_close(f->p.catalog);
    f->p.index->ops->close(f->p.index);
    vs_store_close(f->p.store);
    vs_engine_free(f->engine);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* A unit vector at similarity `cos` to axis a, the rest along axis b. */
static void unit_vec(float *v, int dim, int a, int b, float cos) {
    memset(v, 0, sizeof(float) * (size_t)dim);
    v[a] = cos;
    v[b] = sqrtf(1.0f - cos * cos);
}

/* 64 hex digits naming image n of a test. */
static void sha_of(int n, char sha[65]) {
    char seed[32];
    snprintf(seed, sizeof seed, "image-%d", n);
    vs_sha256_hex(seed, strlen(seed), sha);
}

/* Indexes image n of tenant with one face per vector, its raw file, crop
 * and record, as the pipeline would. */
static void add_image(fixture *f, const char *tenant, int n, const float *const *vecs, int n_faces) {
    char sha[65], key[256], id[VS_UUID_STR];
    vs_error e = {0};
    sha_of(n, sha);
    snprintf(key, sizeof key, "%s/%s.jpg", tenant, sha);
    assert_int_equal(vs_store_put(f->p.store, "raw-images", key, "raw", 3, NULL, &e), VS_OK);
    assert_int_equal(f->p.index->ops->ensure_collection(f->p.index, f->p.coll.faces, f->dim,
                                                       vs_engine_model_id(f->p.engine), &e), VS_OK);
    for (int i = 0; i < n_faces; i++) {
        snprintf(key, sizeof key, "%s/%s_face_%d.jpg", tenant, sha, i);
        assert_int_equal(vs_store_put(f->p.store, "face-crops", key, "crop", 4, NULL, &e), VS_OK);
        char pl[512];
        snprintf(pl, sizeof pl, "{\"tenant_id\":\"%s\",\"image_sha256\":\"%s\",\"face_index\":%d,\"source_url\":\"https://x.test/%d.jpg\"}",
                 tenant, sha, i, n);
        vs_face_id(tenant, sha, i, id);
        vs_point pt = {id, vecs[i], pl};
        assert_int_equal(f->p.index->ops->upsert(f->p.index, f->p.coll.faces, &pt, 1, &e), VS_OK);
    }
    assert_int_equal(vs_image_record_put(f->p.catalog, tenant, sha, NULL, VS_IMG_DONE, "{\"faces_found\":1}", &e), VS_OK);
}

static vs_image_status status_of(fixture *f, const char *tenant, int n) {
    char sha[65];
    vs_image_status st = VS_IMG_QUEUED;
    vs_error e = {0};
    sha_of(n, sha);
    vs_err rc = vs_image_record_get(f->p.catalog, tenant, sha, NULL, &st, NULL, NULL, &e);
    return rc == VS_OK ? st : (vs_image_status)-1;
}

static int raw_exists(fixture *f, const char *tenant, int n) {
    char sha[65], key[256];
    uint8_t *d = NULL;
    size_t len = 0;
    vs_error e = {0};
    sha_of(n, sha);
    snprintf(key, sizeof key, "%s/%s.jpg", tenant, sha);
    vs_err rc = vs_store_get(f->p.store, "raw-images", key, 100, &d, &len, &e);
    vs_free(d);
    return rc == VS_OK;
}

typedef struct kinds {
    char s[256];
} kinds;

/* Collects the kinds of erasure log entries as "a,b,". */
static int log_kind(void *ctx, int64_t id, int64_t at_ms, const char *what, const char *detail_json) {
    kinds *k = ctx;
    (void)id, (void)at_ms, (void)detail_json;
    strncat(k->s, what, sizeof k->s - strlen(k->s) - 2);
    strcat(k->s, ",");
    return 0;
}

/* 1 when the store has bucket/key. */
static int blob_exists(fixture *f, const char *bucket, const char *key) {
    uint8_t *d = NULL;
    size_t len = 0;
    vs_error e = {0};
    vs_err rc = vs_store_get(f->p.store, bucket, key, 100, &d, &len, &e);
    vs_free(d);
    return rc == VS_OK;
}

static vs_erase_person_opts opts(float t) {
    return (vs_erase_person_opts){.threshold = t, .max_images = 1000, .suppress = 1};
}

static void test_bad_arguments_are_refused_naming_them(void **state) {
    fixture *f = *state;
    float *v = calloc((size_t)f->dim, sizeof *v);
    char id[VS_POINT_ID_MAX], note[VS_BLOCK_NOTE_MAX + 2];
    json_t *rep = NULL;
    vs_error e = {0};
    v[0] = 1;
    vs_erase_person_opts o = opts(0.6f);
    o.max_images = 0;
    assert_int_equal(vs_erase_person(&f->p, "a", v, &o, &rep, &e), VS_ERR_INVALID_ARG);
    assert_non_null(strstr(e.msg, "max_images"));
    o.max_images = VS_ERASE_MAX_IMAGES + 1;
    assert_int_equal(vs_erase_person(&f->p, "a", v, &o, &rep, &e), VS_ERR_INVALID_ARG);
    assert_null(rep);
    assert_int_equal(vs_block_add(&f->p, "a", v, 0.29f, NULL, id, &e), VS_ERR_INVALID_ARG);
    assert_non_null(strstr(e.msg, "threshold"));
    assert_int_equal(vs_block_add(&f->p, "a", v, NAN, NULL, id, &e), VS_ERR_INVALID_ARG);
    memset(note, 'n', sizeof note - 1);
    note[sizeof note - 1] = '\0';
    assert_int_equal(vs_block_add(&f->p, "a", v, 0.6f, note, id, &e), VS_ERR_INVALID_ARG);
    assert_non_null(strstr(e.msg, "note"));
    o = opts(0.6f);
    o.block = 1;
    o.max_images = 0; /* refused before any block is added */
    assert_int_equal(vs_erase_person(&f->p, "a", v, &o, &rep, &e), VS_ERR_INVALID_ARG);
    json_t *list = json_array();
    assert_int_equal(vs_block_list(&f->p, "a", list, &e), VS_OK);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    assert_int_equal(vs_block_delete(&f->p, "a", "no-such-block", &e), VS_ERR_NOT_FOUND);
    free(v);
}

static void test_empty_index_erases_nothing(void **state) {
    fixture *f = *state;
    float *v = calloc((size_t)f->dim, sizeof *v);
    json_t *rep = NULL;
    vs_error e = {0};
    v[0] = 1;
    vs_erase_person_opts o = opts(0.6f);
    assert_int_equal(vs_erase_person(&f->p, "a", v, &o, &rep, &e), VS_OK);
    assert_int_equal(json_array_size(json_object_get(rep, "images")), 0);
    assert_true(json_is_true(json_object_get(rep, "complete")));
    json_decref(rep);
    vs_point pt = {"x", v, "{}"};
    int blocked = 1;
    char id[VS_POINT_ID_MAX];
    assert_int_equal(vs_block_match(&f->p, "a", &pt, 1, &blocked, id, &e), VS_OK); /* no block collection */
    assert_int_equal(blocked, 0);
    free(v);
}

/* Person P is axis 0, stranger S axis 1. Tenant a: images 1-3 of P (the
 * third also shows S), 4 of S, 5 of P at 0.5 (below the threshold); tenant
 * b: image 6 of P. */
static void test_erases_exactly_the_persons_images_of_the_tenant(void **state) {
    fixture *f = *state;
    int dim = f->dim;
    float *p1 = calloc((size_t)dim, 4), *p2 = calloc((size_t)dim, 4), *s = calloc((size_t)dim, 4), *weak = calloc((size_t)dim, 4);
    unit_vec(p1, dim, 0, 2, 0.95f);
    unit_vec(p2, dim, 0, 3, 0.80f);
    unit_vec(s, dim, 1, 2, 1.0f);
    unit_vec(weak, dim, 0, 4, 0.50f);
    const float *one_p1[] = {p1}, *one_p2[] = {p2}, *group[] = {s, p2}, *one_s[] = {s}, *one_weak[] = {weak};
    add_image(f, "a", 1, one_p1, 1);
    add_image(f, "a", 2, one_p2, 1);
    add_image(f, "a", 3, group, 2);
    add_image(f, "a", 4, one_s, 1);
    add_image(f, "a", 5, one_weak, 1);
    add_image(f, "b", 6, one_p1, 1);
    /* a crawl of tenant a found image 1 */
    vs_crawl_job *job = calloc(1, sizeof *job);
    vs_error e = {0};
    char sha1[65];
    sha_of(1, sha1);
    strcpy(job->tenant, "a");
    strcpy(job->seed_url, "https://x.test/");
    assert_int_equal(vs_crawl_job_create(f->p.crawl_db, job, &e), VS_OK);
    int added = 0;
    assert_int_equal(vs_crawl_image_add(f->p.crawl_db, job->id, sha1, "https://x.test/", "https://x.test/1.jpg", &added, &e), VS_OK);

    float *q = calloc((size_t)dim, 4);
    q[0] = 1;
    json_t *rep = NULL;
    vs_erase_person_opts o = opts(0.6f);
    o.dry_run = 1;
    assert_int_equal(vs_erase_person(&f->p, "a", q, &o, &rep, &e), VS_OK);
    json_t *imgs = json_object_get(rep, "images");
    assert_int_equal(json_array_size(imgs), 3);
    assert_float_equal(json_real_value(json_object_get(json_array_get(imgs, 0), "score")), 0.95, 1e-4); /* best first */
    assert_string_equal(json_string_value(json_object_get(json_array_get(imgs, 0), "source_url")), "https://x.test/1.jpg");
    json_t *g = json_array_get(imgs, 2);
    assert_int_equal(json_array_size(json_object_get(g, "face_ids")), 1); /* only P's face of the group photo */
    assert_int_equal(json_integer_value(json_object_get(rep, "images_erased")), 0);
    json_decref(rep);
    for (int n = 1; n <= 5; n++) assert_int_equal(status_of(f, "a", n), VS_IMG_DONE); /* a dry run changes nothing */

    o.dry_run = 0;
    assert_int_equal(vs_erase_person(&f->p, "a", q, &o, &rep, &e), VS_OK);
    assert_int_equal(json_integer_value(json_object_get(rep, "images_erased")), 3);
    assert_int_equal(json_integer_value(json_object_get(rep, "faces_deleted")), 4); /* S goes with the group photo */
    assert_true(json_is_true(json_object_get(rep, "complete")));
    json_decref(rep);
    for (int n = 1; n <= 3; n++) {
        assert_int_equal(status_of(f, "a", n), VS_IMG_ERASED);
        assert_false(raw_exists(f, "a", n));
    }
    assert_int_equal(status_of(f, "a", 4), VS_IMG_DONE);
    assert_int_equal(status_of(f, "a", 5), VS_IMG_DONE);
    assert_true(raw_exists(f, "a", 4));
    assert_int_equal(status_of(f, "b", 6), VS_IMG_DONE); /* other tenant untouched */
    assert_true(raw_exists(f, "b", 6));
    int64_t rows = -1;
    assert_int_equal(vs_crawl_images_forget(f->p.crawl_db, "a", sha1, &rows, &e), VS_OK);
    assert_int_equal(rows, 0); /* the crawl row went with the image */
    free(job);
    free(q);
    free(p1), free(p2), free(s), free(weak);
}

static void test_max_images_stops_and_a_second_run_finishes(void **state) {
    fixture *f = *state;
    int dim = f->dim;
    float *v = calloc((size_t)dim, 4);
    for (int n = 10; n < 15; n++) {
        unit_vec(v, dim, 0, 5 + n, 0.9f);
        const float *one[] = {v};
        add_image(f, "a", n, one, 1);
    }
    float *q = calloc((size_t)dim, 4);
    q[0] = 1;
    json_t *rep = NULL;
    vs_error e = {0};
    vs_erase_person_opts o = opts(0.6f);
    o.max_images = 2;
    assert_int_equal(vs_erase_person(&f->p, "a", q, &o, &rep, &e), VS_OK);
    assert_int_equal(json_integer_value(json_object_get(rep, "images_erased")), 2);
    assert_true(json_is_false(json_object_get(rep, "complete")));
    json_decref(rep);
    o.max_images = 1000;
    assert_int_equal(vs_erase_person(&f->p, "a", q, &o, &rep, &e), VS_OK);
    assert_int_equal(json_integer_value(json_object_get(rep, "images_erased")), 3);
    assert_true(json_is_true(json_object_get(rep, "complete")));
    json_decref(rep);
    for (int n = 10; n < 15; n++) assert_int_equal(status_of(f, "a", n), VS_IMG_ERASED);
    kinds k = {0};
    assert_int_equal(vs_erasure_log_list(f->p.catalog, "a", 0, 10, log_kind, &k, &e), VS_OK);
    assert_string_equal(k.s, "person,person,"); /* one entry per erasure run, none for a dry run */
    free(v);
    free(q);
}

/* A round of 12 images takes the batch path (one listing of the tenant's
 * folder per bucket): exactly the person's files go, an orphan crop of one
 * of their images too; strangers' files and another tenant's stay. */
static void test_batch_erasure_removes_exactly_their_files(void **state) {
    fixture *f = *state;
    int dim = f->dim;
    float *v = calloc((size_t)dim, 4);
    char sha[65], key[256];
    vs_error e = {0};
    for (int n = 30; n < 47; n++) { /* 30..41 the person, 42..46 strangers */
        if (n < 42) unit_vec(v, dim, 0, 5 + n, 0.9f);
        else unit_vec(v, dim, 1, 5 + n, 1.0f);
        const float *one[] = {v};
        add_image(f, "a", n, one, 1);
        if (n == 30 || n == 42) add_image(f, "b", n, one, 1);
    }
    sha_of(31, sha); /* a crop left behind by an earlier run, with no point */
    snprintf(key, sizeof key, "a/%s_face_7.jpg", sha);
    assert_int_equal(vs_store_put(f->p.store, "face-crops", key, "x", 1, NULL, &e), VS_OK);
    float *q = calloc((size_t)dim, 4);
    q[0] = 1;
    json_t *rep = NULL;
    vs_erase_person_opts o = opts(0.6f);
    assert_int_equal(vs_erase_person(&f->p, "a", q, &o, &rep, &e), VS_OK);
    assert_int_equal(json_integer_value(json_object_get(rep, "images_erased")), 12);
    json_decref(rep);
    assert_false(blob_exists(f, "face-crops", key));
    for (int n = 30; n < 47; n++) {
        char crop[256];
        sha_of(n, sha);
        snprintf(crop, sizeof crop, "a/%s_face_0.jpg", sha);
        assert_int_equal(raw_exists(f, "a", n), n >= 42);
        assert_int_equal(blob_exists(f, "face-crops", crop), n >= 42);
        assert_int_equal(status_of(f, "a", n), n >= 42 ? VS_IMG_DONE : VS_IMG_ERASED);
    }
    assert_true(raw_exists(f, "b", 30)); /* the same image of tenant b */
    assert_int_equal(status_of(f, "b", 30), VS_IMG_DONE);
    free(v);
    free(q);
}

/* A result message as a distributed worker sends it: one face, vector v. */
static char *result_msg(fixture *f, const char *tenant, int n, const float *v) {
    char sha[65], id[VS_UUID_STR];
    sha_of(n, sha);
    vs_face_id(tenant, sha, 0, id);
    char *b64 = vs_base64_encode((const uint8_t *)v, sizeof(float) * (size_t)f->dim);
    json_t *o = json_pack("{s:s,s:s,s:i,s:i,s:{s:s,s:i},s:[{s:s,s:s,s:{s:s,s:s,s:i}}]}", "tenant_id", tenant, "image_sha256",
                          sha, "status", (int)VS_IMG_DONE, "dim", f->dim, "record", "status", "done", "faces_found", 1,
                          "points", "id", id, "vector_b64", b64, "payload", "tenant_id", tenant, "image_sha256", sha,
                          "face_index", 0);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    vs_free(b64);
    return s;
}

static void test_blocks_match_at_their_threshold_per_tenant(void **state) {
    fixture *f = *state;
    int dim = f->dim;
    float *p = calloc((size_t)dim, 4), *near = calloc((size_t)dim, 4), *mid = calloc((size_t)dim, 4), *s = calloc((size_t)dim, 4);
    p[0] = 1;
    unit_vec(near, dim, 0, 7, 0.85f);
    unit_vec(mid, dim, 0, 8, 0.70f);
    unit_vec(s, dim, 1, 9, 1.0f);
    char id[VS_POINT_ID_MAX], hit[VS_POINT_ID_MAX];
    vs_error e = {0};
    assert_int_equal(vs_block_add(&f->p, "a", p, 0.8f, "ticket 1", id, &e), VS_OK);
    int blocked = 0;
    vs_point pts[2] = {{"x", s, "{}"}, {"y", near, "{}"}};
    assert_int_equal(vs_block_match(&f->p, "a", pts, 2, &blocked, hit, &e), VS_OK);
    assert_int_equal(blocked, 1); /* the second face matches */
    assert_string_equal(hit, id);
    assert_int_equal(vs_block_match(&f->p, "b", pts, 2, &blocked, hit, &e), VS_OK);
    assert_int_equal(blocked, 0); /* a's block is not b's */
    vs_point m = {"z", mid, "{}"};
    assert_int_equal(vs_block_match(&f->p, "a", &m, 1, &blocked, hit, &e), VS_OK);
    assert_int_equal(blocked, 0); /* 0.70 < the block's 0.8 */
    json_t *list = json_array();
    assert_int_equal(vs_block_list(&f->p, "a", list, &e), VS_OK);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "note")), "ticket 1");
    json_decref(list);

    /* the index owner erases a blocked result instead of indexing it, and
     * indexes the same message of another tenant */
    char *msg = result_msg(f, "a", 20, near), *msg_b = result_msg(f, "b", 20, near);
    assert_int_equal(vs_apply_result(&f->p, msg, &e), VS_OK);
    assert_int_equal(status_of(f, "a", 20), VS_IMG_ERASED);
    assert_int_equal(vs_apply_result(&f->p, msg_b, &e), VS_OK);
    assert_int_equal(status_of(f, "b", 20), VS_IMG_DONE);
    vs_filter flt = {.tenant_id = "a"};
    int64_t n = -1;
    char sha[65];
    sha_of(20, sha);
    flt.image_sha256 = sha;
    assert_int_equal(f->p.index->ops->count(f->p.index, f->p.coll.faces, &flt, &n, &e), VS_OK);
    assert_int_equal(n, 0);

    /* an image erased while a worker processed it: the result is dropped and
     * the crop the worker saved after the erasure goes too */
    char crop[256];
    sha_of(22, sha);
    snprintf(crop, sizeof crop, "a/%s_face_0.jpg", sha);
    assert_int_equal(vs_image_record_mark_erased(f->p.catalog, "a", sha, &e), VS_OK);
    assert_int_equal(vs_store_put(f->p.store, "face-crops", crop, "late", 4, NULL, &e), VS_OK);
    char *late = result_msg(f, "a", 22, s);
    assert_int_equal(vs_apply_result(&f->p, late, &e), VS_OK);
    assert_int_equal(status_of(f, "a", 22), VS_IMG_ERASED);
    assert_false(blob_exists(f, "face-crops", crop));
    flt.image_sha256 = sha;
    assert_int_equal(f->p.index->ops->count(f->p.index, f->p.coll.faces, &flt, &n, &e), VS_OK);
    assert_int_equal(n, 0);
    free(late);

    /* lifted: the next image of the person is indexed */
    assert_int_equal(vs_block_delete(&f->p, "b", id, &e), VS_ERR_NOT_FOUND); /* not b's to lift */
    assert_int_equal(vs_block_delete(&f->p, "a", id, &e), VS_OK);
    assert_int_equal(vs_block_delete(&f->p, "a", id, &e), VS_ERR_NOT_FOUND);
    char *msg2 = result_msg(f, "a", 21, near);
    assert_int_equal(vs_apply_result(&f->p, msg2, &e), VS_OK);
    assert_int_equal(status_of(f, "a", 21), VS_IMG_DONE);
    kinds k = {0};
    assert_int_equal(vs_erasure_log_list(f->p.catalog, "a", 0, 10, log_kind, &k, &e), VS_OK);
    assert_string_equal(k.s, "block_lifted,blocked_on_arrival,"); /* newest first */
    k = (kinds){0};
    assert_int_equal(vs_erasure_log_list(f->p.catalog, "b", 0, 10, log_kind, &k, &e), VS_OK);
    assert_string_equal(k.s, "");
    free(msg), free(msg_b), free(msg2);
    free(p), free(near), free(mid), free(s);
}

/* The newest erasure log entry of a tenant: its detail as JSON. */
static int newest_detail(void *ctx, int64_t id, int64_t at_ms, const char *what, const char *detail_json) {
    (void)id, (void)at_ms, (void)what;
    *(json_t **)ctx = json_loads(detail_json, 0, NULL);
    return 1;
}

static json_t *newest_entry(fixture *f, const char *tenant) {
    json_t *d = NULL;
    vs_error e = {0};
    assert_int_equal(vs_erasure_log_list(f->p.catalog, tenant, 0, 1, newest_detail, &d, &e), VS_OK);
    assert_non_null(d);
    return d;
}

/* A crash in the middle of a person's erasure, as it leaves the catalog: the
 * entry begun with two images named, the first erased and marked, the second
 * not touched. The log names both while it is cut; a start-up's
 * vs_erase_resume erases the second, completes the entry (resumed, not
 * complete: later rounds were never searched) and leaves other images alone;
 * a second start-up finds nothing to do. */
static void test_resume_finishes_an_erasure_a_crash_cut(void **state) {
    fixture *f = *state;
    float *v = malloc(sizeof(float) * (size_t)f->dim);
    const float *vs[1] = {v};
    unit_vec(v, f->dim, 0, 1, 1.0f);
    for (int n = 1; n <= 3; n++) add_image(f, "a", n, vs, 1);
    char s1[65], s2[65];
    sha_of(1, s1);
    sha_of(2, s2);
    const char *named[2] = {s1, s2};
    int64_t id = 0;
    vs_error e = {0};
    assert_int_equal(vs_erasure_begin(f->p.catalog, "a", "person", "{\"threshold\":0.5,\"suppressed\":true,\"state\":\"started\"}",
                                      named, 2, &id, &e), VS_OK);
    assert_int_equal(vs_erase_image(&f->p, "a", s1, 1, NULL, NULL, &e), VS_OK);
    assert_int_equal(vs_erasure_image_done(f->p.catalog, id, s1, &e), VS_OK);
    /* cut: the log already names both, one erased */
    json_t *d = newest_entry(f, "a");
    assert_string_equal(json_string_value(json_object_get(d, "state")), "started");
    assert_int_equal(json_array_size(json_object_get(d, "images")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(d, "images"), 1)), s2);
    assert_int_equal(json_integer_value(json_object_get(d, "images_erased")), 1);
    json_decref(d);
    assert_true(raw_exists(f, "a", 2));

    int resumed = -1;
    assert_int_equal(vs_erase_resume(&f->p, &resumed, &e), VS_OK);
    assert_int_equal(resumed, 1);
    assert_false(raw_exists(f, "a", 2));
    assert_int_equal(status_of(f, "a", 2), VS_IMG_ERASED);
    assert_int_equal(status_of(f, "a", 3), VS_IMG_DONE); /* not named: not touched */
    d = newest_entry(f, "a");
    assert_string_equal(json_string_value(json_object_get(d, "state")), "done");
    assert_true(json_is_true(json_object_get(d, "resumed")));
    assert_true(json_is_false(json_object_get(d, "complete")));
    assert_int_equal(json_array_size(json_object_get(d, "images")), 2);
    assert_int_equal(json_integer_value(json_object_get(d, "images_erased")), 2);
    char *js = json_dumps(d, 0);
    assert_null(strstr(js, "vector")); /* ids and sha256s only */
    free(js);
    json_decref(d);
    assert_int_equal(vs_erasure_finish(f->p.catalog, id, "{}", &e), VS_ERR_NOT_FOUND); /* closed once */
    assert_int_equal(vs_erase_resume(&f->p, &resumed, &e), VS_OK);
    assert_int_equal(resumed, 0);
    free(v);
}

/* DELETE /api/v1/images' erasure and one on arrival leave complete entries
 * naming their image (begun before, finished after). */
static void test_recorded_image_erasures_name_their_image(void **state) {
    fixture *f = *state;
    float *v = malloc(sizeof(float) * (size_t)f->dim);
    const float *vs[1] = {v};
    unit_vec(v, f->dim, 0, 1, 1.0f);
    add_image(f, "a", 1, vs, 1);
    add_image(f, "a", 2, vs, 1);
    char s1[65], s2[65];
    sha_of(1, s1);
    sha_of(2, s2);
    vs_error e = {0};
    int64_t faces = -1;
    assert_int_equal(vs_erase_image_recorded(&f->p, "a", s1, 1, "image", json_object(), &faces, NULL, &e), VS_OK);
    assert_int_equal(faces, 1);
    json_t *d = newest_entry(f, "a");
    assert_string_equal(json_string_value(json_object_get(d, "image_sha256")), s1);
    assert_string_equal(json_string_value(json_object_get(d, "state")), "done");
    assert_string_equal(json_string_value(json_array_get(json_object_get(d, "images"), 0)), s1);
    assert_non_null(json_string_value(json_object_get(d, "request_id")));
    json_decref(d);
    assert_int_equal(vs_erase_blocked(&f->p, "a", s2, "block-1", &e), VS_OK);
    d = newest_entry(f, "a");
    assert_string_equal(json_string_value(json_object_get(d, "block_id")), "block-1");
    assert_string_equal(json_string_value(json_object_get(d, "image_sha256")), s2);
    json_decref(d);
    assert_false(raw_exists(f, "a", 2));
    int resumed = -1;
    assert_int_equal(vs_erase_resume(&f->p, &resumed, &e), VS_OK);
    assert_int_equal(resumed, 0); /* nothing was left started */
    free(v);
}

/* Image n of tenant "a" with two faces as the pipeline leaves them: points,
 * crops, thumbnails and a record listing both under faces_indexed. */
static void add_two_face_image(fixture *f, int n, char sha[65], char ids[2][VS_UUID_STR]) {
    float *v = malloc(sizeof(float) * (size_t)f->dim * 2);
    const float *vs[2] = {v, v + f->dim};
    unit_vec(v, f->dim, 0, 1, 1.0f);
    unit_vec(v + f->dim, f->dim, 2, 3, 1.0f);
    add_image(f, "a", n, vs, 2);
    sha_of(n, sha);
    vs_error e = {0};
    char key[256], rec[1024];
    for (int i = 0; i < 2; i++) {
        vs_face_id("a", sha, i, ids[i]);
        snprintf(key, sizeof key, "a/%s_face_%d_thumb.jpg", sha, i);
        assert_int_equal(vs_store_put(f->p.store, "face-thumbs", key, "th", 2, NULL, &e), VS_OK);
    }
    snprintf(rec, sizeof rec, "{\"faces_found\":2,\"faces_indexed\":[{\"face_id\":\"%s\",\"face_index\":0},"
             "{\"face_id\":\"%s\",\"face_index\":1}]}", ids[0], ids[1]);
    assert_int_equal(vs_image_record_put(f->p.catalog, "a", sha, NULL, VS_IMG_DONE, rec, &e), VS_OK);
    free(v);
}

/* 1 when the tenant's faces collection still holds point id. */
static int point_exists(fixture *f, const char *id) {
    vs_error e = {0};
    return f->p.index->ops->get(f->p.index, f->p.coll.faces, "a", id, NULL, NULL, &e) == VS_OK;
}

/* 1 when image sha's record lists face id under list ("faces_indexed",
 * "faces_deleted"). */
static int record_lists(fixture *f, const char *sha, const char *list, const char *id) {
    vs_image_status st;
    char *rec = NULL;
    vs_error e = {0};
    assert_int_equal(vs_image_record_get(f->p.catalog, "a", sha, NULL, &st, &rec, NULL, &e), VS_OK);
    json_t *o = json_loads(rec, 0, NULL), *x;
    vs_free(rec);
    size_t i;
    int found = 0;
    json_array_foreach(json_object_get(o, list), i, x) found |= !strcmp(json_string_value(json_object_get(x, "face_id")), id);
    json_decref(o);
    return found;
}

/* DELETE /api/v1/faces/{id}: one face goes (point, crop, thumbnail, its
 * place in faces_indexed), the other face and the image stay, and the log
 * entry "face" names the face and its image, begun and completed (done,
 * request_id). A crash after the entry was begun (simulated: the entry
 * started, nothing deleted yet) is finished by vs_erase_resume from what the
 * entry names, though the stored payload with the keys is not consulted. */
static void test_face_deletion_is_recorded_and_resumed(void **state) {
    fixture *f = *state;
    char sha[65], ids[2][VS_UUID_STR], key[256], pl[512];
    add_two_face_image(f, 1, sha, ids);
    vs_error e = {0};
    int64_t n = -1;
    snprintf(pl, sizeof pl, "{\"image_sha256\":\"%s\",\"face_index\":0,\"crop_key\":\"a/%s_face_0.jpg\","
             "\"thumb_key\":\"a/%s_face_0_thumb.jpg\"}", sha, sha, sha);
    assert_int_equal(vs_erase_face(&f->p, "a", ids[0], pl, &n, &e), VS_OK);
    assert_int_equal(n, 1);
    assert_false(point_exists(f, ids[0]));
    assert_true(point_exists(f, ids[1]));
    snprintf(key, sizeof key, "a/%s_face_0.jpg", sha);
    assert_false(blob_exists(f, "face-crops", key));
    snprintf(key, sizeof key, "a/%s_face_0_thumb.jpg", sha);
    assert_false(blob_exists(f, "face-thumbs", key));
    assert_true(raw_exists(f, "a", 1));
    assert_false(record_lists(f, sha, "faces_indexed", ids[0]));
    assert_true(record_lists(f, sha, "faces_deleted", ids[0]));
    json_t *d = newest_entry(f, "a");
    assert_string_equal(json_string_value(json_object_get(d, "state")), "done");
    assert_string_equal(json_string_value(json_object_get(d, "face_id")), ids[0]);
    assert_string_equal(json_string_value(json_object_get(d, "image_sha256")), sha);
    assert_non_null(json_string_value(json_object_get(d, "request_id")));
    assert_int_equal(json_integer_value(json_object_get(d, "faces_deleted")), 1);
    json_decref(d);

    /* the crash: face 1's entry begun, then SIGKILL before any step */
    char begun[512];
    snprintf(begun, sizeof begun, "{\"face_id\":\"%s\",\"image_sha256\":\"%s\",\"face_index\":1,\"state\":\"started\"}",
             ids[1], sha);
    int64_t id = 0;
    assert_int_equal(vs_erasure_begin(f->p.catalog, "a", "face", begun, NULL, 0, &id, &e), VS_OK);
    d = newest_entry(f, "a"); /* while cut: the face named, no image list */
    assert_string_equal(json_string_value(json_object_get(d, "state")), "started");
    assert_string_equal(json_string_value(json_object_get(d, "face_id")), ids[1]);
    assert_null(json_object_get(d, "images"));
    json_decref(d);
    int resumed = -1;
    assert_int_equal(vs_erase_resume(&f->p, &resumed, &e), VS_OK);
    assert_int_equal(resumed, 1);
    assert_false(point_exists(f, ids[1]));
    snprintf(key, sizeof key, "a/%s_face_1.jpg", sha);
    assert_false(blob_exists(f, "face-crops", key));
    snprintf(key, sizeof key, "a/%s_face_1_thumb.jpg", sha);
    assert_false(blob_exists(f, "face-thumbs", key));
    assert_false(record_lists(f, sha, "faces_indexed", ids[1]));
    assert_true(record_lists(f, sha, "faces_deleted", ids[1]));
    assert_true(raw_exists(f, "a", 1)); /* a face's deletion keeps its image */
    assert_int_equal(status_of(f, "a", 1), VS_IMG_DONE);
    d = newest_entry(f, "a");
    assert_string_equal(json_string_value(json_object_get(d, "state")), "done");
    assert_true(json_is_true(json_object_get(d, "resumed")));
    assert_int_equal(json_integer_value(json_object_get(d, "faces_deleted")), 1);
    assert_null(json_object_get(d, "images"));
    json_decref(d);
    assert_int_equal(vs_erase_resume(&f->p, &resumed, &e), VS_OK);
    assert_int_equal(resumed, 0);
}

/* Lifting a block is recorded like an erasure (begun, then done with a
 * request id), and one a crash cut after its entry began is finished by
 * vs_erase_resume: the block no longer matches. */
static void test_block_lift_is_recorded_and_resumed(void **state) {
    fixture *f = *state;
    float *v = malloc(sizeof(float) * (size_t)f->dim);
    unit_vec(v, f->dim, 0, 1, 1.0f);
    char b1[VS_POINT_ID_MAX], b2[VS_POINT_ID_MAX], hit[VS_POINT_ID_MAX];
    vs_error e = {0};
    assert_int_equal(vs_block_add(&f->p, "a", v, 0.6f, NULL, b1, &e), VS_OK);
    assert_int_equal(vs_block_delete(&f->p, "a", b1, &e), VS_OK);
    json_t *d = newest_entry(f, "a");
    assert_string_equal(json_string_value(json_object_get(d, "state")), "done");
    assert_string_equal(json_string_value(json_object_get(d, "block_id")), b1);
    assert_non_null(json_string_value(json_object_get(d, "request_id")));
    json_decref(d);
    assert_int_equal(vs_block_delete(&f->p, "a", b1, &e), VS_ERR_NOT_FOUND);

    assert_int_equal(vs_block_add(&f->p, "a", v, 0.6f, NULL, b2, &e), VS_OK);
    char begun[256];
    snprintf(begun, sizeof begun, "{\"block_id\":\"%s\",\"state\":\"started\"}", b2);
    int64_t id = 0;
    assert_int_equal(vs_erasure_begin(f->p.catalog, "a", "block_lifted", begun, NULL, 0, &id, &e), VS_OK);
    int resumed = -1, blocked = -1;
    assert_int_equal(vs_erase_resume(&f->p, &resumed, &e), VS_OK);
    assert_int_equal(resumed, 1);
    vs_point pt = {"probe", v, "{}"};
    assert_int_equal(vs_block_match(&f->p, "a", &pt, 1, &blocked, hit, &e), VS_OK);
    assert_int_equal(blocked, 0);
    d = newest_entry(f, "a");
    assert_string_equal(json_string_value(json_object_get(d, "state")), "done");
    assert_true(json_is_true(json_object_get(d, "resumed")));
    json_decref(d);
    free(v);
}

/* nftw callback: counts entries and prints any with group/other bits. */
static int g_entries, g_open;
static int check_mode(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)flag, (void)ftw;
    g_entries++;
    if (sb->st_mode & 077) {
        fprintf(stderr, "  %s is %03o\n", path, (unsigned)(sb->st_mode & 0777));
        g_open++;
    }
    return 0;
}

/* Under umask 022 the file store, the embedded index, the catalog, crawl.db
 * and the queue create every file and folder owner-only by explicit modes
 * (not by the CLI's umask, which this test does not have). */
static void test_private_modes_whatever_the_umask(void **state) {
    fixture *f = *state;
    mode_t old = umask(022);
    char dir[128], url[160];
    snprintf(dir, sizeof dir, "%s/private/data", f->dir);
    snprintf(url, sizeof url, "file://%s/blobs", dir);
    vs_error e = {0};
    vs_store *st = NULL;
    vs_index *ix = NULL;
    vs_catalog *cat = NULL;
    vs_crawl_db *cdb = NULL;
    vs_queue *q = NULL;
    vs_queue_opts qo = {.data_dir = dir, .visibility_ms = 1000, .max_attempts = 2};
    assert_int_equal(vs_queue_open("embedded", &qo, &q, &e), VS_OK);
    assert_int_equal(vs_store_open(url, &st, &e), VS_OK);
    assert_int_equal(vs_index_open("embedded", dir, &ix, &e), VS_OK);
    assert_int_equal(vs_catalog_open(dir, &cat, &e), VS_OK);
    assert_int_equal(vs_crawl_db_open(dir, &cdb, &e), VS_OK);
    const char *body[1] = {"{}"};
    assert_int_equal(q->ops->push(q, body, 1, NULL, &e), VS_OK);
    assert_int_equal(vs_store_put(st, "raw-images", "t/a.jpg", "raw", 3, NULL, &e), VS_OK);
    float *v = calloc((size_t)f->dim, sizeof(float));
    v[0] = 1;
    vs_point pt = {"00000000-0000-4000-8000-000000000001", v, "{\"tenant_id\":\"t\"}"};
    assert_int_equal(ix->ops->ensure_collection(ix, "faces_v1", f->dim, "m", &e), VS_OK);
    assert_int_equal(ix->ops->upsert(ix, "faces_v1", &pt, 1, &e), VS_OK);
    char key[VS_API_KEY_MAX];
    assert_int_equal(vs_tenant_create(cat, "t", key, &e), VS_OK);
    g_entries = g_open = 0;
    nftw(dir, check_mode, 16, FTW_PHYS); /* while open: -wal and -shm exist */
    int during = g_open, seen = g_entries;
    vs_crawl_db_close(cdb);
    vs_catalog_close(cat);
    ix->ops->close(ix);
    vs_store_close(st);
    q->ops->close(q);
    umask(old);
    free(v);
    g_entries = g_open = 0;
    nftw(dir, check_mode, 16, FTW_PHYS);
    fprintf(stderr, "  %d entries checked while open, %d after close\n", seen, g_entries);
    assert_int_equal(during, 0);
    assert_int_equal(g_open, 0);
    assert_true(seen >= 12); /* data dir, blobs/raw-images/t/a.jpg, index/LOCK, points.log, 3 databases and -wal/-shm */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_arguments_are_refused_naming_them, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_index_erases_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erases_exactly_the_persons_images_of_the_tenant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_images_stops_and_a_second_run_finishes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_erasure_removes_exactly_their_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocks_match_at_their_threshold_per_tenant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_finishes_an_erasure_a_crash_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recorded_image_erasures_name_their_image, setup, teardown),
        cmocka_unit_test_setup_teardown(test_face_deletion_is_recorded_and_resumed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block_lift_is_recorded_and_resumed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_private_modes_whatever_the_umask, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
