/* cmd_faces.c - `visage detect IMAGE...` and `visage embed IMAGE...`: one JSON
 * line per image, in the order given, computed by a pool of worker threads
 * (one engine worker each). A bad file prints one line on stderr naming it
 * and the reason; the rest of the batch goes on; the exit status is 1 if any
 * file failed.
 *
 * Threading: workers claim the next file index under `mu`, analyse it
 * without any lock, store the JSON text in results[i] and signal `done`.
 * The main thread prints results strictly in input order as they complete,
 * so output streams for long batches and memory holds only the window of
 * finished-but-not-printed lines. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vs_alloc.h"

typedef struct batch {
    const vs_engine *engine;
    char **files;
    int n_files;
    int with_embedding;
    const char *crops_dir;   /* --crops DIR: write each aligned face as JPEG */
    pthread_mutex_t mu;
    pthread_cond_t done;
    int next;          /* next file to claim */
    char **out;        /* JSON line per file, NULL until done */
    char **errs;       /* error line per file */
    int *finished;
} batch;

/* Writes the aligned crops of one image as DIR/<file name>_face_<i>.jpg. */
static vs_err write_crops(const char *dir, const char *file, const vs_faces *faces, vs_error *err) {
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    for (int i = 0; i < faces->n; i++) {
        uint8_t *jpg = NULL;
        size_t len = 0;
        vs_err rc = vs_image_encode_jpeg(&faces->faces[i].crop, 90, &jpg, &len, err);
        if (rc != VS_OK) return rc;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s_face_%d.jpg", dir, base, i);
        FILE *f = fopen(path, "wb");
        size_t wrote = f ? fwrite(jpg, 1, len, f) : 0;
        if (f && fclose(f) != 0) wrote = 0;
        vs_free(jpg);
        if (wrote != len) return vs_fail(err, VS_ERR_IO, "cannot write %s", path);
    }
    return VS_OK;
}

/* Analyses one file into its JSON line or an error line. */
static void process_file(batch *b, vs_engine_worker *w, int i, char **out, char **errline) {
    vs_faces faces = {0};
    vs_error err = {0};
    const char *file = b->files[i];
    int width = 0, height = 0;
    unsigned flags = (b->with_embedding ? VS_ANALYZE_EMBED : 0) | (b->crops_dir ? VS_ANALYZE_KEEP_CROPS : 0);
    vs_err rc = vs_engine_analyze_file(w, file, flags, &faces, &width, &height, &err);
    if (rc == VS_OK && b->crops_dir) rc = write_crops(b->crops_dir, file, &faces, &err);
    if (rc != VS_OK) {
        char line[VS_ERROR_MSG_MAX + 256];
        /* vs_engine_analyze_file messages already start with the path */
        if (strncmp(err.msg, file, strlen(file)) == 0) snprintf(line, sizeof line, "visage: %s", err.msg);
        else snprintf(line, sizeof line, "visage: %s: %s", file, err.msg);
        *errline = strdup(line);
    } else {
        json_t *o = json_object();
        json_object_set_new(o, "file", json_string(file));
        json_object_set_new(o, "width", json_integer(width));
        json_object_set_new(o, "height", json_integer(height));
        json_t *arr = json_array();
        int dim = vs_engine_embedding_dim(b->engine);
        for (int k = 0; k < faces.n; k++) json_array_append_new(arr, cli_face_json(&faces.faces[k], dim, b->with_embedding));
        json_object_set_new(o, "faces", arr);
        *out = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(7));
        json_decref(o);
        if (!*out) *errline = strdup("visage: out of memory formatting JSON");
    }
    vs_faces_free(&faces);
}

static void *worker_main(void *arg) {
    batch *b = arg;
    vs_engine_worker *w = NULL;
    vs_error err = {0};
    vs_err rc = vs_engine_worker_new(b->engine, &w, &err);
    for (;;) {
        pthread_mutex_lock(&b->mu);
        int i = b->next < b->n_files ? b->next++ : -1;
        pthread_mutex_unlock(&b->mu);
        if (i < 0) break;
        char *out = NULL, *errline = NULL;
        if (rc == VS_OK) process_file(b, w, i, &out, &errline);
        else {
            char line[VS_ERROR_MSG_MAX + 64];
            snprintf(line, sizeof line, "visage: %s: engine: %s", b->files[i], err.msg);
            errline = strdup(line);
        }
        pthread_mutex_lock(&b->mu);
        b->out[i] = out;
        b->errs[i] = errline;
        b->finished[i] = 1;
        pthread_cond_broadcast(&b->done);
        pthread_mutex_unlock(&b->mu);
    }
    vs_engine_worker_free(w);
    return NULL;
}

static int usage(const char *cmd) { return cli_usage(cmd); }

static int run_faces(int argc, char **argv, int with_embedding) {
    const char *cmd = with_embedding ? "embed" : "detect", *models = NULL, *crops = NULL;
    char **files = calloc((size_t)argc + 1, sizeof *files);
    int n = 0, thorough = 0;
    if (!files) return 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--models") && i + 1 < argc) models = argv[++i];
        else if (!strcmp(argv[i], "--crops") && i + 1 < argc) crops = argv[++i];
        else if (!strcmp(argv[i], "--thorough")) thorough = 1;
        else if (argv[i][0] == '-' && argv[i][1]) { free(files); return usage(cmd); }
        else files[n++] = argv[i];
    }
    if (n == 0) { free(files); return usage(cmd); }
    vs_engine *e = cli_engine_load(models, thorough, -1);
    if (!e) { free(files); return 1; }
    batch b = {.engine = e, .files = files, .n_files = n, .with_embedding = with_embedding,
             .crops_dir = crops};
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.done, NULL);
    b.out = calloc((size_t)n, sizeof *b.out);
    b.errs = calloc((size_t)n, sizeof *b.errs);
    b.finished = calloc((size_t)n, sizeof *b.finished);
    int nt = cli_worker_count();
    if (nt > n) nt = n;
    pthread_t th[64];
    int started = 0, failed = 0;
    if (b.out && b.errs && b.finished)
        for (; started < nt; started++)
            if (pthread_create(&th[started], NULL, worker_main, &b) != 0) break;
    if (started == 0) {
        fprintf(stderr, "visage: %s: cannot start worker threads\n", cmd);
        failed = 1;
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&b.mu);
        while (!b.finished[i]) pthread_cond_wait(&b.done, &b.mu);
        pthread_mutex_unlock(&b.mu);
        if (b.out[i]) {
            fputs(b.out[i], stdout);
            fputc('\n', stdout);
            fflush(stdout);
        }
        if (b.errs[i]) {
            fprintf(stderr, "%s\n", b.errs[i]);
            failed = 1;
        }
        free(b.out[i]);
        free(b.errs[i]);
    }
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.done);
    free(b.out);
    free(b.errs);
    free(b.finished);
    free(files);
    vs_engine_free(e);
    return failed ? 1 : 0;
}

int cmd_detect(int argc, char **argv) { return run_faces(argc, argv, 0); }
int cmd_embed(int argc, char **argv) { return run_faces(argc, argv, 1); }
