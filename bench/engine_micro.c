/* engine_micro.c - single-thread timings of the face engine's parts: one
 * blazeface-back pass (256 px), one FaceBoxes pass (1024x1024 and 1024x768
 * inputs), one embedding by each embedder (dlib 150 px,
 * faceres 224 px), and a whole image (decode + detect + align + quality +
 * embed) of a ~1 MP photo with each; peak RSS. Prints JSON; bench/engine runs
 * it beside the tfjs-wasm reference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_util.h"
#include "vs_dlib_resnet.h"
#include "vs_engine.h"
#include "vs_faceboxes.h"
#include "vs_nn.h"

static double now_ms(void) { return bench_now_ms(); }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of n timings of `run` on `rt`. */
static double time_runtime(vs_runtime *rt, int n) {
    double t[256];
    vs_error err;
    for (int i = 0; i < 5; i++) vs_runtime_run(rt, &err);
    for (int i = 0; i < n; i++) {
        double t0 = now_ms();
        vs_runtime_run(rt, &err);
        t[i] = now_ms() - t0;
    }
    qsort(t, (size_t)n, sizeof t[0], cmp_double);
    return t[n / 2];
}

static vs_model *load(const char *dir, const char *name, const vs_model_opts *o) {
    char path[1024];
    vs_error err = {0};
    vs_model *m = NULL;
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    if (vs_model_load(path, o, &m, &err) != VS_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    return m;
}

int main(int argc, char **argv) {
    const char *image = argc > 1 ? argv[1] : "../shared/data/faces/knn_examples/train/obama/obama.jpg";
    int iters = argc > 2 ? atoi(argv[2]) : 50;
    if (iters < 1 || iters > 256) iters = 50;
    vs_engine_cfg cfg;
    vs_engine_cfg_default(&cfg);
    if (getenv("VS_BENCH_PASSES")) cfg.detect.max_passes = atoi(getenv("VS_BENCH_PASSES"));
    vs_error err = {0};
    vs_model_opts dopt = {.batch = 1, .n_outputs = 4};
    for (int i = 0; i < 4; i++) dopt.outputs[i] = vs_blaze_outputs[i];
    vs_model_opts eopt = {.batch = 1, .n_outputs = 1, .outputs = {"global_pooling/Mean"}};
    vs_model *det = load(cfg.models_dir, VS_DETECT_MODEL, &dopt), *emb = load(cfg.models_dir, "faceres", &eopt);
    vs_model *dlib = NULL;
    char dpath[1024];
    snprintf(dpath, sizeof dpath, "%s/face_recognition_model-weights_manifest.json", cfg.models_dir);
    vs_runtime *drt = NULL, *ert = NULL, *lrt = NULL;
    if (vs_dlib_resnet_load(dpath, &dlib, &err) != VS_OK || vs_runtime_new(det, 1, &drt, &err) != VS_OK ||
        vs_runtime_new(emb, 1, &ert, &err) != VS_OK || vs_runtime_new(dlib, 1, &lrt, &err) != VS_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < 256 * 256 * 3; i++) vs_runtime_input(drt)[i] = (float)(i % 255) / 127.5f - 1;
    for (size_t i = 0; i < 224 * 224 * 3; i++) vs_runtime_input(ert)[i] = (float)(i % 255);
    for (size_t i = 0; i < 150 * 150 * 3; i++) vs_runtime_input(lrt)[i] = (float)(i % 255);
    double det_ms = time_runtime(drt, iters), emb_ms = time_runtime(ert, iters), dlib_ms = time_runtime(lrt, iters);
    /* FaceBoxes at the square input and at the 4:3 one the engine fits to wide photos */
    double fb_ms[2];
    for (int k = 0; k < 2; k++) {
        vs_model *fm = NULL;
        vs_runtime *frt = NULL;
        char fpath[1200];
        snprintf(fpath, sizeof fpath, "%s/%s", cfg.models_dir, VS_FACEBOXES_MODEL);
        if (vs_faceboxes_load(fpath, k ? 768 : 1024, 1024, &fm, &err) != VS_OK || vs_runtime_new(fm, 1, &frt, &err) != VS_OK) {
            fprintf(stderr, "bench: %s\n", err.msg);
            return 1;
        }
        float *in = vs_runtime_input(frt);
        for (size_t i = 0, n = (size_t)(k ? 768 : 1024) * 1024 * 3; i < n; i++) in[i] = (float)(i % 255) / 127.5f - 1;
        fb_ms[k] = time_runtime(frt, iters < 20 ? iters : 20);
        vs_runtime_free(frt);
        vs_model_free(fm);
    }
    double per_image[VS_EMBEDDER_COUNT];
    int faces = 0, width = 0, height = 0;
    for (int k = 0; k < VS_EMBEDDER_COUNT; k++) {
        cfg.embedder = (vs_embedder)k;
        vs_engine *e = NULL;
        vs_engine_worker *w = NULL;
        if (vs_engine_load(&cfg, &e, &err) != VS_OK || vs_engine_worker_new(e, &w, &err) != VS_OK) {
            fprintf(stderr, "bench: %s\n", err.msg);
            return 1;
        }
        double t[256];
        for (int i = -3; i < iters; i++) {
            double t0 = now_ms();
            vs_image img = {0};
            vs_faces f = {0};
            if (vs_image_load(image, NULL, &img, &err) != VS_OK ||
                vs_engine_analyze(w, &img, VS_ANALYZE_EMBED, &f, &err) != VS_OK) {
                fprintf(stderr, "bench: %s\n", err.msg);
                return 1;
            }
            if (i >= 0) t[i] = now_ms() - t0;
            faces = f.n;
            width = img.width;
            height = img.height;
            vs_faces_free(&f);
            vs_image_free(&img);
        }
        qsort(t, (size_t)iters, sizeof t[0], cmp_double);
        per_image[k] = t[iters / 2];
        vs_engine_worker_free(w);
        vs_engine_free(e);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"threads\":1,\"blazeface_ms\":%.3f,\"faceboxes_ms\":%.3f,\"faceboxes_1024x768_ms\":%.3f,"
           "\"faceres_ms\":%.3f,\"dlib_ms\":%.3f,\"image\":\"%s\","
           "\"image_px\":[%d,%d],\"faces\":%d,\"detector_max_passes\":%d,\"per_image_ms\":%.3f,"
           "\"per_image_faceres_ms\":%.3f,\"peak_rss_mb\":%.1f}\n",
           det_ms, fb_ms[0], fb_ms[1], emb_ms, dlib_ms, image, width, height, faces, cfg.detect.max_passes, per_image[VS_EMBEDDER_DLIB],
           per_image[VS_EMBEDDER_FACERES], ru.ru_maxrss / 1024.0);
    vs_runtime_free(drt);
    vs_runtime_free(ert);
    vs_runtime_free(lrt);
    vs_model_free(dlib);
    vs_model_free(det);
    vs_model_free(emb);
    return 0;
}
