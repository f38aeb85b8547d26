/* erase.c - erasure of a person at archive scale, on the embedded index, the
 * file store and the catalog: one tenant of N faces (default 20000), P of
 * them (default 500) the person; every face is its own image with its raw
 * file, crop, thumbnail and record. Prints JSON lines (never asserts timings): the dry
 * run, the erasure itself (ms per image), and what a block costs the index
 * owner per incoming face with 1 and 100 blocks. Usage:
 * bench_erase [N [P [DATA_DIR]]] (default: a fresh /tmp dir, removed at the
 * end). Needs models/ for the embedding size only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "vs_alloc.h"
#include "vs_erase.h"
#include "vs_hash.h"

#define BATCH 256

static uint64_t rng = 0x9E3779B97F4A7C15ull;

/* A random face vector: with person set, at similarity 0.8 to axis 0 (the
 * person: 0.8 there, a random unit direction over the other axes scaled
 * by 0.6), else a stranger (similarity to axis 0 near 0). */
static void face_vec(float *v, int dim, int person) {
    if (!person) return bench_rand_unit(&rng, v, dim);
    bench_rand_unit(&rng, v + 1, dim - 1);
    for (int d = 1; d < dim; d++) v[d] *= 0.6f;
    v[0] = 0.8f;
}

static void die(const char *what, const vs_error *e) { bench_die("bench_erase", what, e); }

/* Indexes n faces (the first `persons` of them the person), each its own
 * image with its raw file, crop, thumbnail and record, as an archive has
 * them (the file store lists a tenant's folder per erased image). */
static void fill(vs_pipeline *p, int dim, int n, int persons) {
    float *vecs = vs_malloc(sizeof(float) * (size_t)dim * BATCH);
    char (*ids)[VS_UUID_STR] = vs_malloc(sizeof *ids * BATCH), (*pls)[256] = vs_malloc(sizeof *pls * BATCH);
    vs_point *pts = vs_malloc(sizeof *pts * BATCH);
    vs_error e = {0};
    if (!vecs || !ids || !pls || !pts) die("fill", &e);
    if (p->index->ops->ensure_collection(p->index, p->coll.faces, dim, vs_engine_model_id(p->engine), &e))
        die("collection", &e);
    for (int base = 0; base < n; base += BATCH) {
        int k = n - base < BATCH ? n - base : BATCH;
        for (int i = 0; i < k; i++) {
            char seed[32], sha[65], key[256];
            snprintf(seed, sizeof seed, "img-%d", base + i);
            vs_sha256_hex(seed, strlen(seed), sha);
            int person = base + i < persons;
            face_vec(vecs + (size_t)i * dim, dim, person);
            vs_face_id("t", sha, 0, ids[i]);
            snprintf(pls[i], sizeof pls[i], "{\"tenant_id\":\"t\",\"image_sha256\":\"%s\",\"face_index\":0}", sha);
            pts[i] = (vs_point){ids[i], vecs + (size_t)i * dim, pls[i]};
            static const char *files[3][2] = {{"raw-images", "%s/%s.jpg"}, {"face-crops", "%s/%s_face_0.jpg"},
                                              {"thumbnails", "%s/%s_thumb.jpg"}};
            for (int f = 0; f < 3; f++) {
                snprintf(key, sizeof key, files[f][1], "t", sha);
                if (vs_store_put(p->store, files[f][0], key, "jpeg bytes", 10, NULL, &e)) die("store", &e);
            }
            if (vs_image_record_put(p->catalog, "t", sha, NULL, VS_IMG_DONE, "{\"faces_found\":1}", &e)) die("record", &e);
        }
        if (p->index->ops->upsert(p->index, p->coll.faces, pts, k, &e)) die("upsert", &e);
    }
    vs_free(vecs), vs_free(ids), vs_free(pls), vs_free(pts);
}

/* ms per vs_block_match of one incoming face against the tenant's blocks. */
static double block_cost(vs_pipeline *p, int dim) {
    float *v = vs_malloc(sizeof(float) * (size_t)dim);
    vs_error e = {0};
    double best = 1e9;
    for (int r = 0; r < 200; r++) {
        face_vec(v, dim, 0);
        vs_point pt = {"x", v, "{}"};
        int blocked = 0;
        char id[VS_POINT_ID_MAX];
        double t0 = bench_now_ms();
        if (vs_block_match(p, "t", &pt, 1, &blocked, id, &e)) die("block match", &e);
        double t = bench_now_ms() - t0;
        if (t < best) best = t;
    }
    vs_free(v);
    return best;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 20000, persons = argc > 2 ? atoi(argv[2]) : 500;
    char dir[256] = "/tmp/vs_bench_erase_XXXXXX";
    int own_dir = argc <= 3;
    if (n < 1 || persons < 1 || persons > n || persons > VS_ERASE_MAX_IMAGES) return fprintf(stderr, "usage: bench_erase [N [P [DIR]]]\n"), 2;
    if (own_dir ? !mkdtemp(dir) : snprintf(dir, sizeof dir, "%s", argv[3]) < 0) return 1;
    vs_engine_cfg cfg;
    vs_engine_cfg_default(&cfg);
    if (!getenv("VISAGE_MODELS")) cfg.models_dir = "models";
    vs_pipeline p = {0};
    vs_engine *engine = NULL;
    vs_error e = {0};
    char url[300];
    snprintf(url, sizeof url, "file://%s/blobs", dir);
    if (vs_engine_load(&cfg, &engine, &e) || vs_store_open(url, &p.store, &e) || vs_index_open("embedded", dir, &p.index, &e) ||
        vs_catalog_open(dir, &p.catalog, &e))
        die("open", &e);
    p.engine = engine;
    vs_collections_gen(1, &p.coll);
    vs_pipeline_cfg_default(&p.cfg);
    int dim = vs_engine_embedding_dim(engine);
    double t0 = bench_now_ms();
    fill(&p, dim, n, persons);
    printf("{\"bench\":\"fill\",\"faces\":%d,\"person_images\":%d,\"ms\":%.0f}\n", n, persons, bench_now_ms() - t0);

    float *q = vs_calloc((size_t)dim, sizeof(float));
    q[0] = 1;
    json_t *rep = NULL;
    vs_erase_person_opts o = {.threshold = 0.6f, .max_images = VS_ERASE_MAX_IMAGES, .dry_run = 1, .suppress = 1};
    t0 = bench_now_ms();
    if (vs_erase_person(&p, "t", q, &o, &rep, &e)) die("dry run", &e);
    printf("{\"bench\":\"dry_run\",\"faces\":%d,\"listed\":%zu,\"complete\":%s,\"ms\":%.1f}\n", n,
           json_array_size(json_object_get(rep, "images")), json_is_true(json_object_get(rep, "complete")) ? "true" : "false",
           bench_now_ms() - t0);
    json_decref(rep);
    o.dry_run = 0;
    t0 = bench_now_ms();
    if (vs_erase_person(&p, "t", q, &o, &rep, &e)) die("erase", &e);
    double ms = bench_now_ms() - t0;
    json_int_t erased = json_integer_value(json_object_get(rep, "images_erased"));
    printf("{\"bench\":\"erase_person\",\"faces\":%d,\"images_erased\":%lld,\"ms\":%.0f,\"ms_per_image\":%.2f,"
           "\"note\":\"points, raw file, crop, thumbnail, identity samples, record marker, log entry\"}\n",
           n, (long long)erased, ms, erased ? ms / (double)erased : 0);
    json_decref(rep);
    char id[VS_POINT_ID_MAX];
    for (int b = 0; b < 100; b++) {
        float *v = vs_malloc(sizeof(float) * (size_t)dim);
        face_vec(v, dim, 0);
        if (vs_block_add(&p, "t", v, 0.6f, NULL, id, &e)) die("block", &e);
        vs_free(v);
        if (b == 0 || b == 99)
            printf("{\"bench\":\"block_match\",\"blocks\":%d,\"ms_per_incoming_face\":%.3f}\n", b + 1, block_cost(&p, dim));
    }
    vs_free(q);
    vs_catalog_close(p.catalog);
    p.index->ops->close(p.index);
    vs_store_close(p.store);
    vs_engine_free(engine);
    if (own_dir) bench_rm_tree(dir);
    return 0;
}
