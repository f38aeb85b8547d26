/* index_open.c - the embedded index as the server runs it, at face scale:
 * one tenant of N clustered face-like vectors (bench/clustered.h, dlib's
 * 128-d by default) with real-looking payloads, through the vs_index API.
 * Prints JSON lines (never asserts): upsert rate with the tenant's graph
 * growing as it goes (it is built when the tenant passes the bound, then
 * fed point by point), search p50/p99 and recall@10 through the graph
 * against "exact": true, close (snapshot save), reopen time (log replay +
 * snapshot load), RSS, and the files' sizes.
 * Usage: bench_index_open [--points N] [--dim D] [--queries Q] [--batch B] [--dir DIR]
 * (default dir: a fresh /tmp one, removed at the end). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"
#include "clustered.h"
#include "vs_ann.h"
#include "vs_index.h"
#include "vs_index_embedded.h"

#define COLL "faces_v1"
#define K 10

static double file_mb(const char *dir, const char *name) {
    char p[1024];
    struct stat st;
    snprintf(p, sizeof p, "%s/index/%s/%s", dir, COLL, name);
    return stat(p, &st) == 0 ? st.st_size / 1048576.0 : 0;
}

static void die(const char *what, const vs_error *e) { bench_die("bench_index_open", what, e); }

static vs_index *open_ix(const char *dir) {
    vs_index *ix = NULL;
    vs_error e = {0};
    if (vs_index_open("embedded", dir, &ix, &e) != VS_OK) die("open", &e);
    return ix;
}

/* Upserts n points in batches of b; returns the seconds taken. */
static double load(vs_index *ix, const float *x, int n, int dim, int b) {
    vs_point *pts = malloc(sizeof *pts * (size_t)b);
    char(*ids)[40] = malloc(40 * (size_t)b), (*pay)[400] = malloc(400 * (size_t)b);
    double t0 = bench_now_ms();
    for (int i = 0; i < n; i += b) {
        int k = 0;
        for (; k < b && i + k < n; k++) {
            int id = i + k;
            snprintf(ids[k], 40, "%08x-0000-4000-8000-%012d", id, id);
            snprintf(pay[k], 400,
                     "{\"tenant_id\":\"acme\",\"image_sha256\":\"%064d\",\"face_index\":0,\"bbox\":[10,20,110,130],"
                     "\"crop_key\":\"face-crops/acme/%d_face_0.jpg\",\"site\":\"site-%d.example\","
                     "\"source_url\":\"https://site-%d.example/p/%d.jpg\",\"quality_score\":%.3f,\"det_score\":0.97,"
                     "\"model\":\"dlib@bench\"}",
                     id, id, id % 7, id % 7, id, (double)(id % 1000) / 1000.0);
            pts[k] = (vs_point){ids[k], x + (size_t)id * dim, pay[k]};
        }
        vs_error e = {0};
        if (ix->ops->upsert(ix, COLL, pts, k, &e) != VS_OK) die("upsert", &e);
    }
    double s = (bench_now_ms() - t0) / 1e3;
    free(pts), free(ids), free(pay);
    return s;
}

/* Searches every query (exact or not); latencies into lat, ids into out. */
static void run(vs_index *ix, const float *q, int nq, int dim, int exact, double *lat, char (*out)[K][64]) {
    vs_filter f = {.tenant_id = "acme", .exact = exact};
    for (int i = 0; i < nq; i++) {
        vs_hit *h = NULL;
        int n = 0;
        vs_error e = {0};
        double t0 = bench_now_ms();
        if (ix->ops->search(ix, COLL, q + (size_t)i * dim, &f, K, -1.0f, &h, &n, &e) != VS_OK) die("search", &e);
        lat[i] = bench_now_ms() - t0;
        for (int j = 0; j < K; j++) snprintf(out[i][j], 64, "%s", j < n ? h[j].id : "");
        vs_hits_free(h, n);
    }
}

/* Prints one "search" line: p50/p99 of lat and recall of got vs truth. */
static void report(const char *index, int points, int ef, int nq, double *lat, char (*got)[K][64],
                   char (*truth)[K][64]) {
    double rec = 0;
    for (int i = 0; i < nq; i++)
        for (int a = 0; a < K; a++)
            for (int b = 0; b < K && truth[i][a][0]; b++) rec += strcmp(truth[i][a], got[i][b]) == 0 ? 1.0 / K : 0;
    qsort(lat, (size_t)nq, sizeof *lat, bench_cmp_double);
    printf("{\"bench\":\"search\",\"path\":\"vs_index\",\"index\":\"%s\",\"points\":%d,\"ef_search\":%d,"
           "\"recall_at_10\":%.4f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"rss_mb\":%.0f}\n",
           index, points, ef, rec / nq, lat[nq / 2], lat[nq * 99 / 100], bench_rss_mb());
    fflush(stdout);
}

int main(int argc, char **argv) {
    int n = 100000, dim = 128, nq = 500, batch = 64;
    const char *dir_arg = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--points")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dim")) dim = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--queries")) nq = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir")) dir_arg = argv[i + 1];
    }
    char dir[512];
    snprintf(dir, sizeof dir, "%s", dir_arg ? dir_arg : "/tmp/vs_bench_open_XXXXXX");
    if (!dir_arg && !mkdtemp(dir)) return 1;
    bench_clustered_params p = bench_clustered_defaults(dim);
    float *x = malloc(sizeof(float) * (size_t)n * dim), *q = malloc(sizeof(float) * (size_t)nq * dim);
    int32_t *person = malloc(sizeof(int32_t) * (size_t)n), *qp = malloc(sizeof(int32_t) * (size_t)nq);
    bench_clustered_gen(&p, n, x, person);
    bench_clustered_queries(&p, person, n, nq, q, qp);
    double *lat = malloc(sizeof(double) * (size_t)nq);
    char(*truth)[K][64] = malloc(sizeof *truth * (size_t)nq), (*got)[K][64] = malloc(sizeof *got * (size_t)nq);

    vs_index *ix = open_ix(dir);
    vs_error e = {0};
    if (ix->ops->ensure_collection(ix, COLL, dim, "dlib@bench", &e) != VS_OK) die("ensure", &e);
    double up_s = load(ix, x, n, dim, batch);
    vs_ann_stats st;
    vs_index_embedded_ann_stats(ix, COLL, &st, &e);
    printf("{\"bench\":\"upsert\",\"path\":\"vs_index\",\"points\":%d,\"dim\":%d,\"batch\":%d,\"seconds\":%.1f,"
           "\"points_per_s\":%.0f,\"graphs\":%d,\"graph_points\":%llu,\"graph_bytes_per_point\":%.0f,"
           "\"float32_bytes_per_point\":%d,\"rss_mb\":%.0f}\n",
           n, dim, batch, up_s, n / up_s, st.graphs, (unsigned long long)st.points,
           st.points ? (double)st.bytes / st.points : 0, dim * 4, bench_rss_mb());
    fflush(stdout);
    run(ix, q, nq, dim, 1, lat, truth);
    report("exact", n, 0, nq, lat, truth, truth);
    run(ix, q, nq, dim, 0, lat, got);
    report(st.graphs ? "hnsw" : "exact", n, VS_ANN_EF_SEARCH_DEFAULT, nq, lat, got, truth);

    double t0 = bench_now_ms();
    ix->ops->close(ix);
    double close_s = (bench_now_ms() - t0) / 1e3;
    /* the log replay alone: graphs off, so the snapshot is not read */
    vs_index_opts off = {.ann_min_points = -1};
    t0 = bench_now_ms();
    if (vs_index_open_with("embedded", dir, &off, &ix, &e) != VS_OK) die("open without graphs", &e);
    double replay_s = (bench_now_ms() - t0) / 1e3;
    ix->ops->close(ix);
    t0 = bench_now_ms();
    ix = open_ix(dir);
    double open_s = (bench_now_ms() - t0) / 1e3;
    vs_index_embedded_ann_stats(ix, COLL, &st, &e);
    printf("{\"bench\":\"open\",\"path\":\"vs_index\",\"points\":%d,\"close_s\":%.2f,\"open_s\":%.2f,\"log_replay_s\":%.2f,"
           "\"graphs_rebuilt\":%llu,\"log_mb\":%.0f,\"snapshot_mb\":%.0f,\"rss_mb\":%.0f}\n",
           n, close_s, open_s, replay_s, (unsigned long long)st.builds, file_mb(dir, "points.log"),
           file_mb(dir, "graphs.snap"), bench_rss_mb());
    fflush(stdout);
    run(ix, q, nq, dim, 0, lat, got);
    report(st.graphs ? "hnsw_reopened" : "exact", n, VS_ANN_EF_SEARCH_DEFAULT, nq, lat, got, truth);
    ix->ops->close(ix);
    if (!dir_arg) bench_rm_tree(dir);
    free(x), free(q), free(person), free(qp), free(lat), free(truth), free(got);
    return 0;
}
