/* cmd_ingest.c - `visage ingest PATH... [--data DIR] [--tenant T]`: imports
 * files and folders into the embedded system and returns when they are
 * processed, with a live progress line on a terminal. With --server URL
 * --key K the images are sent to a running server instead (batch API) and
 * the command waits for the server to finish them (--wait), or returns
 * once they are accepted (--no-wait), printing their sha256. */
#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_system.h"
#include "vs_alloc.h"
#include "vs_base64.h"
#include "vs_hash.h"

typedef struct file_list {
    char **v;
    int n, cap;
    int skipped;   /* files inside folders that are not images */
} file_list;

/* Appends a copy of p; on allocation failure the file is dropped with a
 * message (the list stays valid). */
static void add_file(file_list *l, const char *p) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, sizeof(char *) * (size_t)cap);
        if (!nv) {
            fprintf(stderr, "visage: %s: out of memory listing files\n", p);
            return;
        }
        l->v = nv;
        l->cap = cap;
    }
    char *d = strdup(p);
    if (d) l->v[l->n++] = d;
}

/* 1 when the first bytes of the file are those of an image we decode. */
static int looks_like_image(const char *path) {
    uint8_t head[16];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    return vs_image_sniff(head, n) != VS_FMT_UNKNOWN;
}

/* Adds path (a file, or every non-hidden image file below a folder: a README
 * or a .DS_Store next to the photos is skipped, not an error). Files named
 * explicitly are always tried, so a bad one is reported. */
static void walk(file_list *l, const char *path, int explicit) {
    struct stat st;
    if (stat(path, &st) != 0) {
        add_file(l, path); /* reported as unreadable later */
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (explicit || looks_like_image(path)) add_file(l, path);
        else l->skipped++;
        return;
    }
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        walk(l, sub, 0);
    }
    if (d) closedir(d);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct progress {
    cli_system *s;
    int total, failed;
    int64_t t0;
    int tty;
} progress;

static void show(void *ctx, const vs_queue_stats *qs) {
    progress *p = ctx;
    if (!p->tty || !p->s->app.workers) return;
    vs_worker_stats ws;
    vs_workers_stats(p->s->app.workers, &ws);
    int64_t done = ws.processed + ws.duplicates + ws.rejected + ws.blocked;
    double sec = (vs_now_ms() - p->t0) / 1000.0;
    fprintf(stderr, "\r%lld/%d images  %.1f img/s  faces %lld  skipped %lld  failed %lld  queued %lld   ",
            (long long)done, p->total, sec > 0 ? done / sec : 0.0, (long long)ws.faces_indexed, (long long)ws.duplicates,
            (long long)(ws.rejected + p->failed), (long long)(qs->ready + qs->in_flight));
}

/* Stores one file and prepares its queue message; 0 = queued, -1 = skipped. */
static int stage_file(cli_system *s, const char *tenant, const char *path, char **msg_out) {
    vs_app *a = &s->app;
    uint8_t *data = NULL;
    size_t len = 0;
    vs_error err = {0};
    vs_image_format fmt;
    int w, h;
    vs_decode_opts o = {.max_pixels = a->cfg.max_pixels};
    vs_err rc = vs_read_file(path, 64u << 20, &data, &len, &err);
    if (rc == VS_OK && len == 0) rc = vs_fail(&err, VS_ERR_CORRUPT, "%s: empty file", path);
    if (rc == VS_OK) rc = vs_image_probe(data, len, &o, &fmt, &w, &h, &err);
    vs_ingest_msg m = {0};
    vs_image_status st;
    vs_err had = VS_ERR_NOT_FOUND; /* the tenant's record of these bytes */
    if (rc == VS_OK) {
        vs_sha256_hex(data, len, m.sha256);
        had = vs_image_record_get(a->catalog, tenant, m.sha256, NULL, &st, NULL, NULL, &err);
        if (had == VS_OK && st == VS_IMG_ERASED)
            rc = vs_fail(&err, VS_ERR_UNSUPPORTED, "%s: image was erased for tenant %s and is not indexed again", path,
                         tenant);
    }
    if (rc == VS_OK) {
        snprintf(m.tenant, sizeof m.tenant, "%s", tenant);
        snprintf(m.bucket, sizeof m.bucket, "raw-images");
        vs_raw_key(tenant, m.sha256, fmt, m.key, sizeof m.key);
        char real[PATH_MAX];
        if (realpath(path, real)) snprintf(m.source_url, sizeof m.source_url, "file://%.2000s", real);
        rc = vs_store_put(a->store, m.bucket, m.key, data, len, NULL, &err);
    }
    vs_free(data);
    if (rc == VS_OK && had == VS_ERR_NOT_FOUND)
        rc = vs_image_record_put(a->catalog, tenant, m.sha256, NULL, VS_IMG_QUEUED, NULL, &err);
    if (rc != VS_OK) {
        if (strncmp(err.msg, path, strlen(path)) == 0) fprintf(stderr, "\rvisage: %s\n", err.msg);
        else fprintf(stderr, "\rvisage: %s: %s\n", path, err.msg);
        return -1;
    }
    *msg_out = vs_ingest_msg_json(&m);
    return *msg_out ? 0 : -1;
}

static int ingest_local(file_list *files, const char *data_dir, const char *models, const char *tenant) {
    cli_system s;
    cli_system_opts o = {.op = "ingest", .data_dir = data_dir, .create_data = 1, .tenant = tenant, .models = models, .workers = -1};
    if (getenv("VISAGE_WORKERS")) o.workers = atoi(getenv("VISAGE_WORKERS"));
    if (cli_system_open(&o, &s) != 0) return 1;
    progress p = {&s, files->n, 0, vs_now_ms(), isatty(2)};
    char *batch[64];
    int nb = 0, rc = 0;
    for (int i = 0; i <= files->n; i++) {
        if (i < files->n) {
            char *m = NULL;
            if (stage_file(&s, tenant, files->v[i], &m) == 0) batch[nb++] = m;
            else p.failed++;
        }
        if (nb == 64 || (i == files->n && nb > 0)) {
            vs_error err = {0};
            if (s.app.queue->ops->push(s.app.queue, (const char *const *)batch, nb, NULL, &err) != VS_OK) {
                cli_error("queue", &err);
                rc = 1;
            }
            for (int k = 0; k < nb; k++) free(batch[k]);
            nb = 0;
        }
    }
    cli_system_drain(&s, show, &p);
    vs_worker_stats ws;
    vs_workers_stats(s.app.workers, &ws);
    if (p.tty) fprintf(stderr, "\n");
    double sec = (vs_now_ms() - p.t0) / 1000.0;
    printf("{\"images\":%d,\"processed\":%lld,\"duplicates\":%lld,\"blocked\":%lld,\"failed\":%lld,\"faces_indexed\":%lld,"
           "\"seconds\":%.2f,\"images_per_s\":%.1f}\n",
           files->n, (long long)ws.processed, (long long)ws.duplicates, (long long)ws.blocked,
           (long long)(ws.rejected + ws.failed + p.failed), (long long)ws.faces_indexed, sec,
           sec > 0 ? (ws.processed + ws.duplicates + ws.blocked) / sec : 0);
    if (ws.rejected + ws.failed + p.failed > 0) rc = 1;
    cli_system_close(&s);
    return rc;
}

/* Sends the files to a server in batches of 16, then (wait) waits for
 * each; without wait the summary lists the accepted images' sha256 so they
 * can be followed with GET /api/v1/images/SHA256. */
static int ingest_remote(file_list *files, const char *server, const char *key, int wait) {
    json_t *shas = json_array();
    int failed = 0;
    char url[1200];
    for (int i = 0; i < files->n; i += 16) {
        json_t *items = json_array();
        for (int k = i; k < files->n && k < i + 16; k++) {
            uint8_t *d = NULL;
            size_t n = 0;
            vs_error err = {0};
            if (vs_read_file(files->v[k], 32u << 20, &d, &n, &err) != VS_OK) {
                fprintf(stderr, "visage: %s\n", err.msg);
                failed++;
                json_array_append_new(items, json_null());
                continue;
            }
            char *b64 = vs_base64_encode(d, n), real[PATH_MAX], src[PATH_MAX + 8] = "";
            vs_free(d);
            if (realpath(files->v[k], real)) snprintf(src, sizeof src, "file://%s", real);
            json_array_append_new(items, json_pack("{s:s,s:s}", "image_b64", b64 ? b64 : "", "source_url", src));
            vs_free(b64);
        }
        json_t *req = json_pack("{s:o}", "items", items);
        char *body = json_dumps(req, JSON_COMPACT), *resp = NULL;
        json_decref(req);
        long status = 0;
        snprintf(url, sizeof url, "%s/api/v1/ingest/batch", server);
        if (!body || cli_http("POST", url, key, "application/json", body, strlen(body), &resp, &status) != 0) {
            free(body);
            json_decref(shas);
            return 1;
        }
        free(body);
        json_t *r = json_loads(resp, 0, NULL);
        if (status != 202) fprintf(stderr, "visage: server answered %ld: %s\n", status, resp);
        size_t j;
        json_t *x;
        json_array_foreach(json_object_get(r, "accepted"), j, x) json_array_append(shas, json_object_get(x, "image_sha256"));
        json_array_foreach(json_object_get(r, "rejected"), j, x) {
            int idx = i + (int)json_integer_value(json_object_get(x, "index"));
            fprintf(stderr, "visage: %s: %s\n", idx < files->n ? files->v[idx] : "?",
                    json_string_value(json_object_get(json_object_get(x, "error"), "message")));
            failed++;
        }
        json_decref(r);
        vs_free(resp);
    }
    size_t j;
    json_t *x;
    int done = 0;
    if (!wait) {
        json_t *out = json_pack("{s:i,s:i,s:i,s:O}", "images", files->n, "accepted", (int)json_array_size(shas), "failed",
                                failed, "image_sha256", shas);
        char *txt = out ? json_dumps(out, JSON_COMPACT) : NULL;
        if (txt) printf("%s\n", txt);
        free(txt);
        json_decref(out);
        json_decref(shas);
        return failed ? 1 : 0;
    }
    json_array_foreach(shas, j, x) { /* wait for each accepted image */
        for (int tries = 0; tries < 1200; tries++) {
            char *resp = NULL;
            long status = 0;
            snprintf(url, sizeof url, "%s/api/v1/images/%s", server, json_string_value(x));
            if (cli_http("GET", url, key, NULL, NULL, 0, &resp, &status) != 0) break;
            json_t *r = json_loads(resp, 0, NULL);
            const char *st = json_string_value(json_object_get(r, "status"));
            int fin = st && (!strcmp(st, "done") || !strcmp(st, "failed"));
            if (st && !strcmp(st, "failed")) failed++;
            json_decref(r);
            vs_free(resp);
            if (fin) {
                done++;
                break;
            }
            usleep(250 * 1000);
        }
    }
    printf("{\"images\":%d,\"accepted\":%zu,\"finished\":%d,\"failed\":%d}\n", files->n, json_array_size(shas), done, failed);
    json_decref(shas);
    return failed ? 1 : 0;
}

int cmd_ingest(int argc, char **argv) {
    const char *data = NULL, *tenant = "default", *server = NULL, *key = getenv("VISAGE_API_KEY"), *models = NULL;
    file_list files = {0};
    int wait = 1, bad = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--tenant") && i + 1 < argc) tenant = argv[++i];
        else if (!strcmp(argv[i], "--server") && i + 1 < argc) server = argv[++i];
        else if (!strcmp(argv[i], "--key") && i + 1 < argc) key = argv[++i];
        else if (!strcmp(argv[i], "--models") && i + 1 < argc) models = argv[++i];
        else if (!strcmp(argv[i], "--wait") || !strcmp(argv[i], "--no-wait")) wait = argv[i][2] == 'w';
        else if (argv[i][0] == '-') {
            bad = 1;
            break;
        } else walk(&files, argv[i], 1);
    }
    if (bad || (files.n == 0 && files.skipped == 0) || (!wait && !server)) {
        if (!bad && !wait && !server)
            cli_errorf("ingest", "--no-wait goes with --server (a local ingest processes the images itself)");
        for (int i = 0; i < files.n; i++) free(files.v[i]);
        free(files.v);
        return cli_usage("ingest");
    }
    if (!cli_tenant_ok(tenant)) return 2;
    if (files.skipped) fprintf(stderr, "visage: skipped %d file(s) in the folders that are not images\n", files.skipped);
    qsort(files.v, (size_t)files.n, sizeof *files.v, cmp_str);
    int rc = server ? ingest_remote(&files, server, key, wait) : ingest_local(&files, data, models, tenant);
    for (int i = 0; i < files.n; i++) free(files.v[i]);
    free(files.v);
    return rc;
}
