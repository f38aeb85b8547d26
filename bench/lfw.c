/* lfw.c - face verification on LFW View 1 with visage's whole pipeline
 * (decode, detect, align, embed), every embedder side by side in one run.
 *
 *   build/bench_lfw [--lfw DIR] [--pairs pairsDevTest.txt] [--threads N] [--scores FILE]
 *                   [--only-default] [--show-errors] [--show-missed]
 *
 * Per image the face nearest the image centre is used (LFW's images are
 * centred on the named person; a group photo's other faces are not them). A
 * pair with an image where no face was found counts as a wrong answer at
 * every threshold, as the LFW README asks. Prints, per embedder: accuracy at
 * the shipped threshold, accuracy with the threshold chosen on the other 9 of
 * 10 folds, the best accuracy on the set (an upper bound, not a result),
 * ROC AUC, TAR at FAR 1e-3 and at the lowest FAR the set can measure, missed
 * faces, and time per image. Choose settings on DevTrain, report DevTest. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "vs_engine.h"
#include "vs_similarity.h"

typedef struct pair {
    int a, b;       /* image indexes */
    int same;
} pair;

static int show_errors, show_missed, only_default;

typedef struct bench {
    char dir[1024];
    int n_images, cap_images;
    char **images;  /* relative paths */
    int n_pairs;
    pair *pairs;
    vs_engine *engine;
    float *emb;     /* n_images x dim */
    int *found;
    double busy_ms;
    int next;
    pthread_mutex_t mu;
} bench;

static int image_index(bench *b, const char *name, int num) {
    char rel[512];
    snprintf(rel, sizeof rel, "%s/%s_%04d.jpg", name, name, num);
    for (int i = 0; i < b->n_images; i++)
        if (!strcmp(b->images[i], rel)) return i;
    if (b->n_images == b->cap_images) {
        b->cap_images = b->cap_images ? b->cap_images * 2 : 1024;
        b->images = realloc(b->images, sizeof(char *) * (size_t)b->cap_images);
        if (!b->images) bench_fail("lfw: out of memory");
    }
    b->images[b->n_images] = strdup(rel);
    return b->n_images++;
}

static void read_pairs(bench *b, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) bench_fail("lfw: cannot open %s (is ../shared/data/lfw-dev there?)", path);
    char line[512];
    int cap = 0;
    if (!fgets(line, sizeof line, f)) bench_fail("lfw: %s is empty", path); /* the count line */
    while (fgets(line, sizeof line, f)) {
        char n1[200], n2[200];
        int i, j;
        pair p;
        if (sscanf(line, "%199s %d %199s %d", n1, &i, n2, &j) == 4) {
            p = (pair){image_index(b, n1, i), image_index(b, n2, j), 0};
        } else if (sscanf(line, "%199s %d %d", n1, &i, &j) == 3) {
            p = (pair){image_index(b, n1, i), image_index(b, n1, j), 1};
        } else {
            continue;
        }
        if (b->n_pairs == cap) {
            cap = cap ? cap * 2 : 1024;
            b->pairs = realloc(b->pairs, sizeof(pair) * (size_t)cap);
            if (!b->pairs) bench_fail("lfw: out of memory");
        }
        b->pairs[b->n_pairs++] = p;
    }
    fclose(f);
}

/* The face whose box centre is nearest the image centre. */
static int centre_face(const vs_faces *f, const vs_image *img) {
    int best = -1;
    float bd = 1e30f;
    for (int i = 0; i < f->n; i++) {
        const vs_face_det *d = &f->faces[i].det;
        float dx = d->x + d->w / 2 - img->width / 2.0f, dy = d->y + d->h / 2 - img->height / 2.0f;
        if (dx * dx + dy * dy < bd) {
            bd = dx * dx + dy * dy;
            best = i;
        }
    }
    return best;
}

static void *worker(void *arg) {
    bench *b = arg;
    vs_engine_worker *w = NULL;
    vs_error err = {0};
    if (vs_engine_worker_new(b->engine, &w, &err) != VS_OK) bench_fail("lfw: %s", err.msg);
    int dim = vs_engine_embedding_dim(b->engine);
    for (;;) {
        pthread_mutex_lock(&b->mu);
        int i = b->next++;
        pthread_mutex_unlock(&b->mu);
        if (i >= b->n_images) break;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", b->dir, b->images[i]);
        double t0 = bench_now_ms();
        vs_image img = {0};
        vs_faces f = {0};
        if (vs_image_load(path, NULL, &img, &err) != VS_OK) {
            fprintf(stderr, "lfw: %s\n", err.msg);
            continue;
        }
        if (vs_engine_analyze(w, &img, VS_ANALYZE_EMBED, &f, &err) == VS_OK) {
            int k = centre_face(&f, &img);
            if (k >= 0) {
                memcpy(b->emb + (size_t)i * dim, f.faces[k].embedding, sizeof(float) * (size_t)dim);
                b->found[i] = 1;
            }
        }
        double dt = bench_now_ms() - t0;
        pthread_mutex_lock(&b->mu);
        b->busy_ms += dt;
        pthread_mutex_unlock(&b->mu);
        vs_faces_free(&f);
        vs_image_free(&img);
    }
    vs_engine_worker_free(w);
    return NULL;
}

/* Accuracy over pairs[lo..hi) at threshold t; a pair with a missing face is
 * wrong whatever t. */
static double accuracy(const bench *b, const float *s, const int *ok, int lo, int hi, float t) {
    int right = 0;
    for (int i = lo; i < hi; i++)
        if (ok[i] && (s[i] >= t) == b->pairs[i].same) right++;
    return hi > lo ? (double)right / (hi - lo) : 0;
}

/* The threshold with the best accuracy over the pairs outside [lo, hi)
 * (midpoint of the best gap between sorted scores). */
static float best_threshold(const bench *b, const float *s, const int *ok, int lo, int hi, double *best_acc) {
    float bt = 0.5f;
    double ba = -1;
    for (int i = 0; i < b->n_pairs; i++) {
        if ((i >= lo && i < hi) || !ok[i]) continue;
        float t = s[i] + 1e-6f;
        int right = 0, n = 0;
        for (int j = 0; j < b->n_pairs; j++) {
            if (j >= lo && j < hi) continue;
            n++;
            if (ok[j] && (s[j] >= t) == b->pairs[j].same) right++;
        }
        double a = n ? (double)right / n : 0;
        if (a > ba) {
            ba = a;
            bt = t;
        }
    }
    /* move from the score just above a negative to the middle of the gap */
    float above = 2;
    for (int j = 0; j < b->n_pairs; j++)
        if (!(j >= lo && j < hi) && ok[j] && s[j] >= bt && s[j] < above) above = s[j];
    float below = -2;
    for (int j = 0; j < b->n_pairs; j++)
        if (!(j >= lo && j < hi) && ok[j] && s[j] < bt && s[j] > below) below = s[j];
    if (above < 2 && below > -2) bt = (above + below) / 2;
    *best_acc = ba;
    return bt;
}

/* False accepts among different-person pairs and false rejects among
 * same-person pairs at t (a lost pair counts as rejected; never accepted). */
static void far_frr(const bench *b, const float *s, const int *ok, float t, double *far, double *frr) {
    int fa = 0, fr = 0, neg = 0, pos = 0;
    for (int i = 0; i < b->n_pairs; i++) {
        if (b->pairs[i].same) {
            pos++;
            fr += !ok[i] || s[i] < t;
        } else {
            neg++;
            fa += ok[i] && s[i] >= t;
        }
    }
    *far = neg ? (double)fa / neg : 0;
    *frr = pos ? (double)fr / pos : 0;
}

static void report(const char *name, const bench *b, const float *s, const int *ok, float shipped, float possible,
                   int missed, double ms_per_image) {
    double best;
    float bt = best_threshold(b, s, ok, 0, 0, &best);
    /* 10 folds of interleaved pairs, so every fold has both kinds */
    int right = 0;
    for (int f = 0; f < 10; f++) {
        int *fold_ok = malloc(sizeof(int) * (size_t)b->n_pairs);
        float *fs = malloc(sizeof(float) * (size_t)b->n_pairs);
        pair *fp = malloc(sizeof(pair) * (size_t)b->n_pairs);
        int n = 0;
        for (int i = 0; i < b->n_pairs; i++)
            if (i % 10 != f) { fs[n] = s[i]; fold_ok[n] = ok[i]; fp[n++] = b->pairs[i]; }
        int train = n;
        for (int i = 0; i < b->n_pairs; i++)
            if (i % 10 == f) { fs[n] = s[i]; fold_ok[n] = ok[i]; fp[n++] = b->pairs[i]; }
        bench fb = *b;
        fb.pairs = fp;
        double a;
        float t = best_threshold(&fb, fs, fold_ok, train, n, &a);
        right += (int)lrint(accuracy(&fb, fs, fold_ok, train, n, t) * (n - train));
        free(fold_ok);
        free(fs);
        free(fp);
    }
    /* AUC over pairs with both faces (Mann-Whitney), plus TAR at FAR */
    double auc_num = 0;
    long npos = 0, nneg = 0;
    for (int i = 0; i < b->n_pairs; i++) {
        if (!ok[i]) continue;
        if (b->pairs[i].same) npos++;
        else nneg++;
    }
    float *neg = malloc(sizeof(float) * (size_t)(nneg + 1));
    int k = 0;
    for (int i = 0; i < b->n_pairs; i++)
        if (ok[i] && !b->pairs[i].same) neg[k++] = s[i];
    for (int i = 0; i < b->n_pairs; i++) {
        if (!ok[i] || !b->pairs[i].same) continue;
        for (int j = 0; j < k; j++) auc_num += s[i] > neg[j] ? 1 : s[i] == neg[j] ? 0.5 : 0;
    }
    float max_neg = -2;
    for (int j = 0; j < k; j++) if (neg[j] > max_neg) max_neg = neg[j];
    int tar0 = 0, tot_pos = 0;
    float min_pos = 2;
    for (int i = 0; i < b->n_pairs; i++) {
        if (!b->pairs[i].same) continue;
        tot_pos++;
        if (ok[i] && s[i] > max_neg) tar0++;
        if (ok[i] && s[i] < min_pos) min_pos = s[i];
    }
    free(neg);
    if (show_errors)
        for (int i = 0; i < b->n_pairs; i++)
            if (ok[i] && (s[i] >= bt) != b->pairs[i].same)
                fprintf(stderr, "wrong %s %.3f %s %s\n", b->pairs[i].same ? "same" : "diff", s[i],
                        b->images[b->pairs[i].a], b->images[b->pairs[i].b]);
    int lost = 0;
    for (int i = 0; i < b->n_pairs; i++) lost += !ok[i];
    if (shipped > -1) {
        double far_s, frr_s, far_p, frr_p;
        far_frr(b, s, ok, shipped, &far_s, &frr_s);
        far_frr(b, s, ok, possible, &far_p, &frr_p);
        printf("%-14s bands: same person >= %.3f: FAR %.4f FRR %.4f | possible >= %.3f: FAR %.4f FRR %.4f\n", name,
               shipped, far_s, frr_s, possible, far_p, frr_p);
    }
    char at[48] = "no shipped threshold";
    if (shipped > -1) snprintf(at, sizeof at, "acc@%.3f %.4f", shipped, accuracy(b, s, ok, 0, b->n_pairs, shipped));
    printf("%-14s pairs lost %d | %s | 10-fold %.4f | best %.4f (t=%.3f) | AUC %.5f | TAR@FAR<=%.0e %.4f | "
           "min same %.3f max diff %.3f | missed %d | %.1f ms/image\n",
           name, lost, at, (double)right / b->n_pairs, best, bt,
           npos && nneg ? auc_num / ((double)npos * nneg) : 0, nneg ? 1.0 / nneg : 0,
           tot_pos ? (double)tar0 / tot_pos : 0, min_pos, max_neg, missed, ms_per_image);
}

int main(int argc, char **argv) {
    const char *lfw = "../shared/data/lfw-dev", *pairs = "pairsDevTest.txt", *scores_path = NULL;
    int threads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--show-errors")) { show_errors = 1; continue; }
        if (!strcmp(argv[i], "--show-missed")) { show_missed = 1; continue; }
        if (!strcmp(argv[i], "--only-default")) { only_default = 1; continue; }
        if (i + 1 == argc) bench_fail("%s needs a value", argv[i]);
        if (!strcmp(argv[i], "--lfw")) lfw = argv[i + 1];
        else if (!strcmp(argv[i], "--pairs")) pairs = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--scores")) scores_path = argv[i + 1];
        else bench_fail("usage: bench_lfw [--lfw DIR] [--pairs FILE] [--threads N] [--scores FILE] [--only-default] "
                 "[--show-errors] [--show-missed]");
        i++;
    }
    if (threads < 1 || threads > 64) threads = 2;
    bench b = {0};
    snprintf(b.dir, sizeof b.dir, "%s", lfw);
    char pp[2048];
    snprintf(pp, sizeof pp, "%s/%s", lfw, pairs);
    read_pairs(&b, pp);
    printf("LFW %s: %d pairs, %d images, %d threads\n", pairs, b.n_pairs, b.n_images, threads);
    float *sc[VS_EMBEDDER_COUNT];
    int *okp[VS_EMBEDDER_COUNT];
    int n_emb = only_default ? 1 : VS_EMBEDDER_COUNT;
    for (int e = 0; e < n_emb; e++) {
        vs_engine_cfg cfg;
        vs_engine_cfg_default(&cfg);
        cfg.embedder = (vs_embedder)e; /* VS_EMBEDDER_DEFAULT is 0 */
        vs_error err = {0};
        if (vs_engine_load(&cfg, &b.engine, &err) != VS_OK) bench_fail("lfw: %s", err.msg);
        int dim = vs_engine_embedding_dim(b.engine);
        b.emb = calloc((size_t)b.n_images * dim, sizeof(float));
        b.found = calloc((size_t)b.n_images, sizeof(int));
        b.next = 0;
        b.busy_ms = 0;
        pthread_mutex_init(&b.mu, NULL);
        pthread_t th[64];
        for (int t = 0; t < threads; t++) pthread_create(&th[t], NULL, worker, &b);
        for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
        int missed = 0;
        for (int i = 0; i < b.n_images; i++) {
            missed += !b.found[i];
            if (!b.found[i] && show_missed) fprintf(stderr, "no face: %s\n", b.images[i]);
        }
        sc[e] = malloc(sizeof(float) * (size_t)b.n_pairs);
        okp[e] = malloc(sizeof(int) * (size_t)b.n_pairs);
        for (int i = 0; i < b.n_pairs; i++) {
            pair p = b.pairs[i];
            okp[e][i] = b.found[p.a] && b.found[p.b];
            sc[e][i] = okp[e][i] ? vs_dot(b.emb + (size_t)p.a * dim, b.emb + (size_t)p.b * dim, dim) : -1;
        }
        report(vs_embedder_get((vs_embedder)e)->name, &b, sc[e], okp[e], vs_engine_config(b.engine)->match_threshold,
               vs_engine_embedder(b.engine)->possible_threshold, missed, b.busy_ms / b.n_images);
        free(b.emb);
        free(b.found);
        vs_engine_free(b.engine);
        pthread_mutex_destroy(&b.mu);
    }
    /* fusion: cosine of the concatenation of w*dlib and sqrt(1-w^2)*faceres
     * (each unit length) is w^2 cos_dlib + (1-w^2) cos_faceres */
    float *fs = malloc(sizeof(float) * (size_t)b.n_pairs);
    int *fok = malloc(sizeof(int) * (size_t)b.n_pairs);
    for (int wi = 5; n_emb == VS_EMBEDDER_COUNT && wi <= 9; wi += 2) {
        float w2 = (float)wi / 10;
        for (int i = 0; i < b.n_pairs; i++) {
            fok[i] = okp[0][i] && okp[1][i];
            fs[i] = w2 * sc[0][i] + (1 - w2) * sc[1][i];
        }
        char name[32];
        snprintf(name, sizeof name, "fusion w2=%.1f", w2);
        report(name, &b, fs, fok, -2, -2, 0, 0);
    }
    if (scores_path) {
        FILE *f = fopen(scores_path, "w");
        if (!f) bench_fail("lfw: cannot write %s", scores_path);
        fprintf(f, "same\tdlib\tfaceres\n");
        for (int i = 0; i < b.n_pairs; i++)
            fprintf(f, "%d\t%.6f\t%.6f\n", b.pairs[i].same, sc[0][i], n_emb > 1 ? sc[1][i] : 0);
        fclose(f);
    }
    free(fs);
    free(fok);
    for (int e = 0; e < n_emb; e++) { free(sc[e]); free(okp[e]); }
    for (int i = 0; i < b.n_images; i++) free(b.images[i]);
    free(b.images);
    free(b.pairs);
    return 0;
}
