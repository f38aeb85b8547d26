/* test_reindex.c - vs_reindex on a real file store, embedded index and
 * catalog in a temp dir, with both real engines: shared photos indexed with
 * faceres are moved to dlib. A run stopped half-way changes nothing
 * searches see and the next run finishes it; the same face ids, per image,
 * end up in the new collection once each; an image erased between the runs
 * leaves no point behind; an identity keeps the samples whose source is
 * stored and reports the one that is not; the old collections are gone.
 * Blocks are refused, or dropped into the erasure log. The index owner
 * refuses a distributed worker's result made with another model. Needs
 * models/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vs_alloc.h"
#include "vs_erase.h"
#include "vs_hash.h"
#include "vs_identity.h"
#include "vs_reindex.h"

#define FACES VS_SHARED_DIR "/data/faces/"

typedef struct fixture {
    char dir[64];
    vs_pipeline p;            /* the data dir as the server opens it: faceres, generation 1 */
    vs_engine *faceres, *dlib;
    vs_engine_worker *w;
    char sha[5][65];          /* the images below, tenant acme (4) and beta (1) */
    json_t *before;           /* sha -> [face ids] of the faceres records */
    atomic_int stop;
    int stop_after;           /* progress callbacks before stop is set (0: never) */
    int calls;
    const char *delete_when_staged; /* face id deleted once every image is staged */
} fixture;

static const char *const k_photos[5] = {"obama_small.jpg", "obama-240p.jpg", "knn_examples/train/biden/biden.jpg",
                                        "two_people.jpg", "knn_examples/train/biden/biden2.jpg"};

static vs_engine *load(vs_embedder which) {
    vs_engine_cfg cfg;
    vs_engine_cfg_default(&cfg);
    if (!getenv("VISAGE_MODELS")) cfg.models_dir = VS_SOURCE_DIR "/models";
    cfg.embedder = which;
    vs_engine *e = NULL;
    vs_error err = {0};
    if (vs_engine_load(&cfg, &e, &err) != VS_OK) fprintf(stderr, "engine: %s\n", err.msg);
    return e;
}

/* Stores photo i as the ingest path does and processes it with f->p. */
static void ingest(fixture *f, int i, const char *tenant) {
    char path[512];
    uint8_t *data = NULL;
    size_t len = 0;
    vs_error e = {0};
    snprintf(path, sizeof path, FACES "%s", k_photos[i]);
    assert_int_equal(vs_read_file(path, 64u << 20, &data, &len, &e), VS_OK);
    vs_sha256_hex(data, len, f->sha[i]);
    vs_ingest_msg m = {0};
    snprintf(m.tenant, sizeof m.tenant, "%s", tenant);
    snprintf(m.bucket, sizeof m.bucket, "raw-images");
    snprintf(m.sha256, sizeof m.sha256, "%s", f->sha[i]);
    snprintf(m.source_url, sizeof m.source_url, "file://%s", k_photos[i]);
    vs_raw_key(tenant, f->sha[i], VS_FMT_JPEG, m.key, sizeof m.key);
    assert_int_equal(vs_store_put(f->p.store, m.bucket, m.key, data, len, NULL, &e), VS_OK);
    vs_free(data);
    assert_int_equal(vs_image_record_put(f->p.catalog, tenant, f->sha[i], NULL, VS_IMG_QUEUED, NULL, &e), VS_OK);
    vs_process_result res;
    int faces = 0;
    assert_int_equal(vs_process_image(&f->p, f->w, &m, &res, &faces, &e), VS_OK);
    assert_int_equal(res, VS_PROCESSED);
    assert_true(faces >= 1);
}

/* The face ids of an image's record, as a JSON array. */
static json_t *record_faces(fixture *f, const char *tenant, const char *sha) {
    char *rec = NULL;
    vs_image_status st;
    vs_error e = {0};
    assert_int_equal(vs_image_record_get(f->p.catalog, tenant, sha, NULL, &st, &rec, NULL, &e), VS_OK);
    assert_int_equal(st, VS_IMG_DONE);
    json_t *o = json_loads(rec, 0, NULL), *ids = json_array();
    vs_free(rec);
    size_t i;
    json_t *face;
    json_array_foreach(json_object_get(o, "faces_indexed"), i, face) json_array_append(ids, json_object_get(face, "face_id"));
    json_decref(o);
    return ids;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/vs_reindex_XXXXXX");
    if (!f || !mkdtemp(f->dir)) return -1;
    char url[128];
    snprintf(url, sizeof url, "file://%s/blobs", f->dir);
    vs_error e = {0};
    f->faceres = load(VS_EMBEDDER_FACERES);
    f->dlib = load(VS_EMBEDDER_DLIB);
    if (!f->faceres || !f->dlib || vs_store_open(url, &f->p.store, &e) != VS_OK ||
        vs_index_open("embedded", f->dir, &f->p.index, &e) != VS_OK || vs_catalog_open(f->dir, &f->p.catalog, &e) != VS_OK ||
        vs_engine_worker_new(f->faceres, &f->w, &e) != VS_OK) {
        fprintf(stderr, "setup: %s\n", e.msg);
        return -1;
    }
    f->p.engine = f->faceres;
    vs_pipeline_cfg_default(&f->p.cfg);
    assert_int_equal(vs_collections_load(f->p.catalog, &f->p.coll, &e), VS_OK);
    assert_string_equal(f->p.coll.faces, "faces_v1");
    for (int i = 0; i < 5; i++) ingest(f, i, i < 4 ? "acme" : "beta");
    f->before = json_object();
    for (int i = 0; i < 5; i++) json_object_set_new(f->before, f->sha[i], record_faces(f, i < 4 ? "acme" : "beta", f->sha[i]));
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int teardown(void **state) {
    fixture *f = *state;
    json_decref(f->before);
    vs_engine_worker_free(f->w);
    vs_catalog_close(f->p.catalog);
    f->p.index->ops->close(f->p.index);
    vs_store_close(f->p.store);
    vs_engine_free(f->faceres);
    vs_engine_free(f->dlib);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* DELETE /api/v1/faces/{id} of one face of acme, as the route does it. */
static void delete_face(fixture *f, const char *id) {
    char *payload = NULL;
    int64_t n = 0;
    vs_error e = {0};
    assert_int_equal(f->p.index->ops->get(f->p.index, f->p.coll.faces, "acme", id, NULL, &payload, &e), VS_OK);
    assert_int_equal(vs_erase_face(&f->p, "acme", id, payload, &n, &e), VS_OK);
    assert_int_equal(n, 1);
    vs_free(payload);
}

static void progress(void *ctx, const char *phase, int64_t done, int64_t total) {
    fixture *f = ctx;
    if (!strcmp(phase, "images") && f->stop_after && ++f->calls >= f->stop_after) atomic_store(&f->stop, 1);
    if (!strcmp(phase, "images") && f->delete_when_staged && done == total) { /* every record staged already */
        delete_face(f, f->delete_when_staged);
        f->delete_when_staged = NULL;
    }
}

static vs_reindex_opts opts(fixture *f, int drop_blocks) {
    return (vs_reindex_opts){.engine = f->dlib, .drop_blocks = drop_blocks, .threads = 2, .progress = progress,
                             .ctx = f, .stop = &f->stop};
}

/* The data dir as a process opening it afterwards sees it. */
static void reopen_view(fixture *f, vs_collections *c, vs_embedder *emb) {
    vs_error e = {0};
    assert_int_equal(vs_collections_load(f->p.catalog, c, &e), VS_OK);
    assert_int_equal(vs_collections_embedder(f->p.index, c, NULL, emb, &e), VS_OK);
}

static int64_t count_image(fixture *f, const char *coll, const char *tenant, const char *sha) {
    vs_filter flt = {.tenant_id = tenant, .image_sha256 = sha};
    int64_t n = -1;
    vs_error e = {0};
    vs_err rc = f->p.index->ops->count(f->p.index, coll, &flt, &n, &e);
    return rc == VS_OK ? n : -1;
}

static void test_stopped_run_erasure_and_resume(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    /* an identity: a sample from an indexed face, one from a stored photo, one whose photo is not stored */
    char id[VS_UUID_STR], gone[65];
    int dim = vs_engine_embedding_dim(f->faceres), n = 0;
    float *v = vs_malloc(sizeof(float) * (size_t)dim * 3);
    const char *fid = json_string_value(json_array_get(json_object_get(f->before, f->sha[0]), 0));
    assert_int_equal(f->p.index->ops->get(f->p.index, "faces_v1", "acme", fid, v, NULL, &e), VS_OK);
    const char *fid2 = json_string_value(json_array_get(json_object_get(f->before, f->sha[1]), 0));
    assert_int_equal(f->p.index->ops->get(f->p.index, "faces_v1", "acme", fid2, v + dim, NULL, &e), VS_OK);
    memcpy(v + 2 * dim, v, sizeof(float) * (size_t)dim);
    vs_sha256_hex("never stored", 12, gone);
    vs_identity_sample s[3] = {{v, fid, f->sha[0], 0.9f, NULL, 0, 0}, {v + dim, NULL, f->sha[1], 0.8f, NULL, 0, 0}, {v + 2 * dim, NULL, gone, 0.7f, NULL, 0, 0}};
    assert_int_equal(vs_identity_create(&f->p, "acme", "Barack", id, &e), VS_OK);
    assert_int_equal(vs_identity_enroll(&f->p, "acme", id, s, 3, &n, NULL, &e), VS_OK);
    vs_free(v);
    /* stopped after two images: nothing switched, searches still on faceres */
    f->stop_after = 2;
    vs_reindex_opts o = opts(f, 0);
    vs_reindex_report rep;
    assert_int_equal(vs_reindex_run(&f->p, &o, &rep, &e), VS_ERR_CANCELLED);
    vs_collections c;
    vs_embedder emb;
    reopen_view(f, &c, &emb);
    assert_string_equal(c.faces, "faces_v1");
    assert_int_equal(emb, VS_EMBEDDER_FACERES);
    /* an image already re-embedded is erased the old way (searches' collections only) */
    vs_image_ref pend[8];
    int np = 0, staged = -1;
    assert_int_equal(vs_reindex_pending(f->p.catalog, pend, 8, &np, &e), VS_OK);
    assert_true(np >= 1 && np <= 3);
    for (int i = 0; i < 4 && staged < 0; i++) {
        int pending = 0;
        for (int k = 0; k < np; k++) pending |= !strcmp(pend[k].sha256, f->sha[i]);
        if (!pending && count_image(f, "faces_v2", "acme", f->sha[i]) > 0) staged = i;
    }
    assert_true(staged >= 0);
    assert_int_equal(vs_erase_image(&f->p, "acme", f->sha[staged], 1, NULL, NULL, &e), VS_OK);
    /* the next run finishes it */
    f->stop_after = 0;
    atomic_store(&f->stop, 0);
    assert_int_equal(vs_reindex_run(&f->p, &o, &rep, &e), VS_OK);
    assert_true(rep.switched && rep.resumed);
    assert_true(rep.points_swept >= 1);
    assert_int_equal(rep.images, 4);
    assert_int_equal(rep.identities, 1);
    /* erasing an image forgets its samples; the one never stored is lost */
    assert_int_equal(rep.samples, staged == 0 || staged == 1 ? 1 : 2);
    assert_int_equal(rep.samples_lost, 1);
    reopen_view(f, &c, &emb);
    assert_string_equal(c.faces, "faces_v2");
    assert_string_equal(c.samples, "identity_samples_v2");
    assert_int_equal(emb, VS_EMBEDDER_DLIB);
    int d = 0;
    char model[VS_INDEX_MODEL_MAX + 1];
    const char *old[4] = {"faces_v1", "identities_v1", "identity_samples_v1", "erase_blocks_v1"};
    for (int i = 0; i < 4; i++) assert_int_equal(f->p.index->ops->describe(f->p.index, old[i], &d, model, &e), VS_ERR_NOT_FOUND);
    assert_int_equal(f->p.index->ops->describe(f->p.index, "faces_v2", &d, model, &e), VS_OK);
    assert_int_equal(d, 128);
    /* the same face ids per image, each once; none of the erased image */
    int64_t total = 0;
    for (int i = 0; i < 5; i++) {
        const char *tenant = i < 4 ? "acme" : "beta";
        if (i == staged) {
            assert_int_equal(count_image(f, "faces_v2", tenant, f->sha[i]), 0);
            continue;
        }
        json_t *now = record_faces(f, tenant, f->sha[i]);
        assert_true(json_equal(now, json_object_get(f->before, f->sha[i])));
        assert_int_equal(count_image(f, "faces_v2", tenant, f->sha[i]), (int64_t)json_array_size(now));
        total += (int64_t)json_array_size(now);
        json_decref(now);
    }
    assert_int_equal(rep.faces, total);
    /* the identity, with the dlib vectors of the samples still at hand */
    vs_pipeline p2 = f->p;
    p2.engine = f->dlib;
    p2.coll = c;
    json_t *info = NULL;
    assert_int_equal(vs_identity_get(&p2, "acme", id, &info, NULL, &e), VS_OK);
    assert_string_equal(json_string_value(json_object_get(info, "name")), "Barack");
    assert_int_equal(json_integer_value(json_object_get(info, "n_samples")), rep.samples);
    json_decref(info);
    /* done: a third run has nothing to do */
    assert_int_equal(vs_reindex_run(&p2, &o, &rep, &e), VS_OK);
    assert_false(rep.switched);
}

/* Erasure log callback: the newest entry's kind and detail. */
static int newest_entry(void *ctx, int64_t lid, int64_t at, const char *w, const char *dj) {
    char **out = ctx;
    (void)lid, (void)at;
    snprintf(out[0], 32, "%s", w);
    snprintf(out[1], 512, "%s", dj);
    return 1;
}

static void test_blocks_refused_or_dropped_into_the_log(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    int dim = vs_engine_embedding_dim(f->faceres);
    float *v = vs_malloc(sizeof(float) * (size_t)dim);
    const char *fid = json_string_value(json_array_get(json_object_get(f->before, f->sha[2]), 0));
    assert_int_equal(f->p.index->ops->get(f->p.index, "faces_v1", "acme", fid, v, NULL, &e), VS_OK);
    char block[VS_POINT_ID_MAX];
    assert_int_equal(vs_block_add(&f->p, "acme", v, 0.6f, "ticket 7", block, &e), VS_OK);
    vs_free(v);
    /* one face of a two-face photo deleted on its own (DELETE /api/v1/faces/{id}) */
    json_t *two = json_object_get(f->before, f->sha[3]);
    assert_int_equal(json_array_size(two), 2);
    const char *one[1] = {json_string_value(json_array_get(two, 1))};
    assert_int_equal(f->p.index->ops->delete_ids(f->p.index, "faces_v1", "acme", one, 1, NULL, &e), VS_OK);
    vs_reindex_opts o = opts(f, 0);
    vs_reindex_report rep;
    assert_int_equal(vs_reindex_run(&f->p, &o, &rep, &e), VS_ERR_INVALID_ARG);
    assert_non_null(strstr(e.msg, "drop-blocks"));
    assert_non_null(strstr(e.msg, "acme"));
    vs_collections c;
    vs_embedder emb;
    reopen_view(f, &c, &emb);
    assert_string_equal(c.blocks, "erase_blocks_v1");
    assert_int_equal(emb, VS_EMBEDDER_FACERES);
    o.drop_blocks = 1;
    assert_int_equal(vs_reindex_run(&f->p, &o, &rep, &e), VS_OK);
    assert_int_equal(rep.blocks_dropped, 1);
    assert_int_equal(rep.points_swept, 1); /* the deleted face, found again by re-detection, did not come back */
    assert_int_equal(count_image(f, "faces_v2", "acme", f->sha[3]), 1);
    vs_error ge = {0};
    assert_int_equal(f->p.index->ops->get(f->p.index, "faces_v2", "acme", one[0], NULL, NULL, &ge), VS_ERR_NOT_FOUND);
    reopen_view(f, &c, &emb);
    assert_string_equal(c.blocks, "erase_blocks_v2");
    vs_pipeline p2 = f->p;
    p2.engine = f->dlib;
    p2.coll = c;
    json_t *arr = json_array();
    assert_int_equal(vs_block_list(&p2, "acme", arr, &e), VS_OK);
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);
    int d;
    char model[VS_INDEX_MODEL_MAX + 1];
    assert_int_equal(f->p.index->ops->describe(f->p.index, "erase_blocks_v1", &d, model, &e), VS_ERR_NOT_FOUND);
    /* the erasure log says which block went, and why */
    char what[32] = "", detail[512] = "";
    char *out[2] = {what, detail};
    assert_int_equal(vs_erasure_log_list(f->p.catalog, "acme", 0, 10, newest_entry, out, &e), VS_OK);
    assert_string_equal(what, "block_dropped");
    assert_non_null(strstr(detail, block));
    assert_non_null(strstr(detail, "ticket 7"));
}

/* The face ids an image's record lists under `list`. */
static json_t *record_list(fixture *f, const char *sha, const char *list) {
    char *rec = NULL;
    vs_image_status st;
    vs_error e = {0};
    assert_int_equal(vs_image_record_get(f->p.catalog, "acme", sha, NULL, &st, &rec, NULL, &e), VS_OK);
    json_t *o = json_loads(rec, 0, NULL), *ids = json_array(), *face;
    vs_free(rec);
    size_t i;
    json_array_foreach(json_object_get(o, list), i, face) json_array_append(ids, json_object_get(face, "face_id"));
    json_decref(o);
    return ids;
}

/* 1 when the JSON array of strings holds s. */
static int has_id(const json_t *arr, const char *s) {
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) if (!strcmp(json_string_value(x), s)) return 1;
    return 0;
}

/* Faces deleted with DELETE /api/v1/faces/{id} stay deleted through a
 * reindex that detects them again: one deleted before the run (the
 * pipeline must not index it), one deleted after its image was staged (the
 * switch and the sweep must catch it). Neither has a point in the new
 * collection, a crop or thumbnail on disk, or a place in faces_indexed of
 * the switched record; both stay under faces_deleted; the other images
 * keep their faces. */
static void test_deleted_faces_stay_deleted_through_a_reindex(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    json_t *two = json_object_get(f->before, f->sha[3]);
    assert_int_equal(json_array_size(two), 2);
    const char *before_run = json_string_value(json_array_get(two, 1)), *during = json_string_value(json_array_get(two, 0));
    delete_face(f, before_run);
    f->delete_when_staged = during;
    vs_reindex_opts o = opts(f, 1);
    vs_reindex_report rep;
    assert_int_equal(vs_reindex_run(&f->p, &o, &rep, &e), VS_OK);
    assert_null(f->delete_when_staged); /* the deletion ran while the reindex did */
    printf("points swept: %lld\n", (long long)rep.points_swept);
    vs_collections c;
    vs_embedder emb;
    reopen_view(f, &c, &emb);
    assert_string_equal(c.faces, "faces_v2");
    assert_int_equal(emb, VS_EMBEDDER_DLIB);
    assert_int_equal(count_image(f, "faces_v2", "acme", f->sha[3]), 0);
    const char *gone[2] = {before_run, during};
    for (int k = 0; k < 2; k++) {
        vs_error ge = {0};
        assert_int_equal(f->p.index->ops->get(f->p.index, "faces_v2", "acme", gone[k], NULL, NULL, &ge), VS_ERR_NOT_FOUND);
    }
    json_t *indexed = record_list(f, f->sha[3], "faces_indexed"), *deleted = record_list(f, f->sha[3], "faces_deleted");
    assert_int_equal(json_array_size(indexed), 0);
    assert_true(has_id(deleted, before_run));
    assert_true(has_id(deleted, during));
    json_decref(indexed);
    json_decref(deleted);
    char key[256];
    for (int i = 0; i < 2; i++) { /* no crop or thumbnail of either came back */
        int exists = 1;
        snprintf(key, sizeof key, "acme/%s_face_%d.jpg", f->sha[3], i);
        assert_int_equal(f->p.store->ops->exists(f->p.store, "face-crops", key, &exists, &e), VS_OK);
        assert_false(exists);
        snprintf(key, sizeof key, "acme/%s_face_%d_thumb.jpg", f->sha[3], i);
        assert_int_equal(f->p.store->ops->exists(f->p.store, "face-thumbs", key, &exists, &e), VS_OK);
        assert_false(exists);
    }
    json_t *ids = record_list(f, f->sha[0], "faces_indexed"); /* the others keep theirs */
    assert_true(json_equal(ids, json_object_get(f->before, f->sha[0])));
    json_decref(ids);
    assert_int_equal(count_image(f, "faces_v2", "acme", f->sha[0]), (int64_t)json_array_size(json_object_get(f->before, f->sha[0])));
}

/* Distributed mode: the index owner refuses a worker's result made with
 * another model, saying so in the image's record; a done image keeps its. */
static void test_results_of_another_model_refused(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    char sha[65], msg[2048];
    vs_sha256_hex("queued elsewhere", 16, sha);
    assert_int_equal(vs_image_record_put(f->p.catalog, "acme", sha, NULL, VS_IMG_QUEUED, NULL, &e), VS_OK);
    const char *fmt = "{\"tenant_id\":\"acme\",\"image_sha256\":\"%s\",\"status\":2,\"dim\":128,"
                      "\"model\":\"%s\",\"record\":{\"status\":\"done\"},\"points\":[]}";
    snprintf(msg, sizeof msg, fmt, sha, vs_engine_model_id(f->dlib));
    assert_int_equal(vs_apply_result(&f->p, msg, &e), VS_ERR_CORRUPT);
    assert_non_null(strstr(e.msg, "VISAGE_EMBEDDER=faceres"));
    char *rec = NULL;
    vs_image_status st;
    assert_int_equal(vs_image_record_get(f->p.catalog, "acme", sha, NULL, &st, &rec, NULL, &e), VS_OK);
    assert_int_equal(st, VS_IMG_FAILED);
    assert_non_null(strstr(rec, "MODEL_MISMATCH"));
    assert_non_null(strstr(rec, vs_engine_model_id(f->faceres)));
    vs_free(rec);
    snprintf(msg, sizeof msg, fmt, f->sha[0], vs_engine_model_id(f->dlib));
    assert_int_equal(vs_apply_result(&f->p, msg, &e), VS_ERR_CORRUPT);
    json_t *ids = record_faces(f, "acme", f->sha[0]); /* still done, with its faces */
    assert_true(json_equal(ids, json_object_get(f->before, f->sha[0])));
    json_decref(ids);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stopped_run_erasure_and_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocks_refused_or_dropped_into_the_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_faces_stay_deleted_through_a_reindex, setup, teardown),
        cmocka_unit_test_setup_teardown(test_results_of_another_model_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
