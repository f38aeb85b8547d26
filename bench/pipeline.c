/* pipeline.c - the whole face pipeline (vs_process_image: fetch, decode,
 * detect, align, quality, pHash, embed, near-duplicate check, crops and
 * thumbnails, catalog record, index upsert) on real files, a file store,
 * the embedded index and the catalog in a scratch dir, with no HTTP or
 * queue in front. Prints where the time went, stage by stage, per photo and
 * per face (the engine's vs_engine_profile), and photos/s with T threads.
 * Every photo is processed under a fresh sha256, so nothing is skipped as
 * an exact duplicate. Asserts nothing.
 *
 *   bench_pipeline [--threads T] [--rounds R] [--passes N] [--detector D] IMAGE...
 * VS_BENCH_PIN=1 pins thread t to core t (measured: no gain, docs/models.md). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "vs_alloc.h"
#include "vs_hash.h"
#include "vs_pipeline.h"

#define MAX_THREADS 16

typedef struct job {
    vs_pipeline *p;
    int n_msgs;
    vs_ingest_msg *msgs;
    atomic_int next;
    atomic_int faces;
    vs_engine_worker *w[MAX_THREADS];
} job;

static void die(const char *what, const vs_error *e) { bench_die("bench_pipeline", what, e); }

typedef struct thread_arg {
    job *j;
    int t;
} thread_arg;

static void *worker(void *arg) {
    thread_arg *a = arg;
    job *j = a->j;
    vs_error e = {0};
    if (getenv("VS_BENCH_PIN")) { /* one core per thread: does pinning pay? */
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(a->t % (int)sysconf(_SC_NPROCESSORS_ONLN), &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    for (int i; (i = atomic_fetch_add(&j->next, 1)) < j->n_msgs;) {
        vs_process_result res;
        int nf = 0;
        if (vs_process_image(j->p, j->w[a->t], &j->msgs[i], &res, &nf, &e) != VS_OK) die("process", &e);
        atomic_fetch_add(&j->faces, nf);
    }
    return NULL;
}

/* Stores every image `rounds` times under distinct sha256s; returns the messages. */
static vs_ingest_msg *stage_images(vs_pipeline *p, char **paths, int n, int rounds) {
    vs_ingest_msg *msgs = vs_calloc((size_t)(n * rounds), sizeof *msgs);
    vs_error e = {0};
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        uint8_t *buf = NULL;
        if (vs_read_file(paths[i], VS_IMAGE_DEFAULT_MAX_BYTES, &buf, &len, &e)) die("read", &e);
        for (int r = 0; r < rounds; r++) {
            vs_ingest_msg *m = &msgs[r * n + i];
            char seed[64];
            snprintf(seed, sizeof seed, "%d/%d", i, r);
            vs_sha256_hex(seed, strlen(seed), m->sha256);
            snprintf(m->tenant, sizeof m->tenant, "bench");
            snprintf(m->bucket, sizeof m->bucket, "raw-images");
            vs_raw_key(m->tenant, m->sha256, vs_image_sniff(buf, len), m->key, sizeof m->key);
            if (vs_store_put(p->store, m->bucket, m->key, buf, len, "application/octet-stream", &e)) die("store", &e);
        }
        vs_free(buf);
    }
    return msgs;
}

static void print_profile(const char *label, const vs_engine_profile *pr, double wall_ms, int threads, int faces_indexed) {
    double img = pr->images ? (double)pr->images : 1, fc = pr->faces ? (double)pr->faces : 1, total = 0;
    printf("{\"bench\":\"pipeline\",\"run\":\"%s\",\"threads\":%d,\"photos\":%llu,\"faces\":%llu,\"faces_indexed\":%d,"
           "\"photos_per_s\":%.1f,\"stages_ms_per_photo\":{",
           label, threads, (unsigned long long)pr->images, (unsigned long long)pr->faces, faces_indexed,
           pr->images * 1000.0 / wall_ms);
    for (int s = 0; s < VS_STAGE_COUNT; s++) {
        total += pr->ns[s] / 1e6;
        printf("%s\"%s\":%.2f", s ? "," : "", vs_stage_name((vs_stage)s), pr->ns[s] / 1e6 / img);
    }
    printf("},\"cpu_ms_per_photo\":%.2f,\"calls_per_photo\":{", total / img);
    for (int s = 0; s < VS_STAGE_COUNT; s++)
        printf("%s\"%s\":%.2f", s ? "," : "", vs_stage_name((vs_stage)s), pr->calls[s] / img);
    printf("},\"per_face_ms\":{\"align\":%.2f,\"quality\":%.2f,\"phash\":%.2f,\"embed_chip\":%.2f,\"embed\":%.2f}}\n",
           pr->ns[VS_STAGE_ALIGN] / 1e6 / fc, pr->ns[VS_STAGE_QUALITY] / 1e6 / fc, pr->ns[VS_STAGE_PHASH] / 1e6 / fc,
           pr->ns[VS_STAGE_EMBED_CHIP] / 1e6 / fc, pr->ns[VS_STAGE_EMBED] / 1e6 / fc);
}

int main(int argc, char **argv) {
    int threads = 1, rounds = 3, a = 1;
    vs_engine_cfg cfg;
    vs_engine_cfg_default(&cfg);
    for (; a + 1 < argc && !strncmp(argv[a], "--", 2); a += 2) {
        if (!strcmp(argv[a], "--threads")) threads = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--rounds")) rounds = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--passes")) cfg.detect.max_passes = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--detector")) cfg.detect.detector = (vs_detector)vs_detector_find(argv[a + 1]);
        else return fprintf(stderr, "bench_pipeline: unknown option %s\n", argv[a]), 2;
    }
    if (a >= argc || threads < 1 || threads > MAX_THREADS || rounds < 1 || (int)cfg.detect.detector < 0)
        return fprintf(stderr, "usage: bench_pipeline [--threads T] [--rounds R] [--passes N] [--detector D] IMAGE...\n"), 2;
    char dir[] = "/tmp/vs_bench_pipeline_XXXXXX", url[300];
    if (!mkdtemp(dir)) return 1;
    snprintf(url, sizeof url, "file://%s/blobs", dir);
    vs_pipeline p = {0};
    vs_engine *engine = NULL;
    vs_error e = {0};
    if (vs_engine_load(&cfg, &engine, &e) || vs_store_open(url, &p.store, &e) ||
        vs_index_open("embedded", dir, &p.index, &e) || vs_catalog_open(dir, &p.catalog, &e))
        die("open", &e);
    p.engine = engine;
    vs_collections_gen(1, &p.coll);
    vs_pipeline_cfg_default(&p.cfg);
    int n_files = argc - a;
    job j = {.p = &p, .n_msgs = n_files * rounds};
    j.msgs = stage_images(&p, argv + a, n_files, rounds);
    for (int t = 0; t < threads; t++)
        if (vs_engine_worker_new(engine, &j.w[t], &e)) die("worker", &e);
    /* warm-up, not timed: each file once through each thread's engine
     * worker, which makes the runtimes its shapes need and warms caches */
    vs_engine_profile base[MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        for (int i = 0; i < n_files; i++) {
            vs_faces f = {0};
            if (vs_engine_analyze_file(j.w[t], argv[a + i], VS_ANALYZE_EMBED, &f, NULL, NULL, &e)) die("warm-up", &e);
            vs_faces_free(&f);
        }
        base[t] = *vs_engine_worker_profile(j.w[t]);
    }
    pthread_t th[MAX_THREADS];
    thread_arg ta[MAX_THREADS];
    double t0 = bench_now_ms();
    for (int t = 0; t < threads; t++) {
        ta[t] = (thread_arg){&j, t};
        pthread_create(&th[t], NULL, worker, &ta[t]);
    }
    for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
    double wall = bench_now_ms() - t0;
    vs_engine_profile sum = {0};
    for (int t = 0; t < threads; t++) {
        vs_engine_profile_accumulate(&sum, vs_engine_worker_profile(j.w[t]), &base[t]);
    }
    char label[96];
    snprintf(label, sizeof label, "%s,passes=%d", vs_detector_name(cfg.detect.detector), cfg.detect.max_passes);
    print_profile(label, &sum, wall, threads, atomic_load(&j.faces));
    printf("{\"bench\":\"pipeline_memory\",\"threads\":%d,\"rss_mb\":%.0f}\n", threads, bench_rss_mb());
    for (int t = 0; t < threads; t++) vs_engine_worker_free(j.w[t]);
    vs_free(j.msgs);
    vs_catalog_close(p.catalog);
    p.index->ops->close(p.index);
    vs_store_close(p.store);
    vs_engine_free(engine);
    bench_rm_tree(dir);
    return 0;
}
