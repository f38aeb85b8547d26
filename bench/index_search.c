/* index_search.c - issue 11's benchmark: the HNSW graph (src/index/vs_hnsw.c)
 * beside exact search and, with --peers, hnswlib and FAISS HNSW on the same
 * data in the same run (so machine load is shared alike).
 *
 *   build/bench_index_search --points N [--dim 128] [--m 16] [--efc 200] [--queries 1000]
 *       [--ef 16,32,64,128,256] [--del-ef LIST] [--seed S] [--no-build-2] [--no-delete]
 *       [--peers] [--peer-only hnswlib,faiss_hnsw_flat,faiss_hnsw_sq8] [--peer-args "ARGS"]
 *
 * Data: bench/clustered.h face-like vectors (dlib-fitted cosines, printed
 * first); queries are new photos of base-set people. The graph is used the
 * way the server uses it: cfg.vector_of points at the caller's float matrix,
 * so the graph holds only int8 copies and links.
 *
 * Output: JSON lines, numbers printed, never asserted. One "bench":"search"
 * line per measured configuration (index "exact", "hnsw", and the peers'
 * "hnswlib", "faiss_hnsw_flat", "faiss_hnsw_sq8") with points, ef_search,
 * recall_at_10 (against exact), p50_ms / p99_ms (one query at a time, one
 * thread), qps_2_threads and rss_mb. Other lines: "clustered" (the data),
 * "build", "open", "delete" (recall after deleting 30 % beside a fresh build
 * of the rest), "peers". bench/index_table.py turns a run into a table. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"
#include "clustered.h"
#include "vs_flat.h"
#include "vs_hnsw.h"

#ifndef VS_SOURCE_DIR
#define VS_SOURCE_DIR "."
#endif

#define K 10
#define EF_LIST_MAX 16

/* What one run measures (the command line). */
typedef struct bench_opts {
    int64_t n;
    int dim, m, efc, nq, nef, ndel_ef, build_2, deletes, peers;
    int ef[EF_LIST_MAX], del_ef[EF_LIST_MAX];
    uint64_t seed;
    const char *ef_arg, *peer_only, *peer_args;
} bench_opts;

/* The data set and its exact answers; x is what vector_of serves. */
typedef struct bench_data {
    const bench_opts *o;
    bench_clustered_params p;
    float *x, *q;             /* n * dim, nq * dim */
    int32_t *who, *qwho, people;
    uint32_t *truth;          /* nq * K exact ids (over live rows) */
    unsigned char *live;      /* n, 1 = stored; NULL before deletes */
} bench_data;

static void die(const char *msg) {
    fprintf(stderr, "bench_index_search: %s\n", msg);
    exit(1);
}

static void die_e(const char *what, const vs_error *e) { bench_die("bench_index_search", what, e); }

/* Parses "16,32,64" into out (at most EF_LIST_MAX); returns the count. */
static int parse_list(const char *s, int *out) {
    int n = 0;
    for (const char *p = s; *p && n < EF_LIST_MAX;) {
        out[n++] = atoi(p);
        const char *c = strchr(p, ',');
        if (!c) break;
        p = c + 1;
    }
    return n;
}

/* Reads the command line into o; dies on anything unknown or out of range. */
static void parse_opts(int argc, char **argv, bench_opts *o) {
    *o = (bench_opts){.n = 100000, .dim = 128, .m = 16, .efc = 200, .nq = 1000, .build_2 = 1, .deletes = 1,
                      .seed = 0x5EEDFACEull, .ef_arg = "16,32,64,128,256",
                      .peer_only = "hnswlib,faiss_hnsw_flat,faiss_hnsw_sq8", .peer_args = ""};
    const char *del_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--peers")) o->peers = 1;
        else if (!strcmp(a, "--no-build-2")) o->build_2 = 0;
        else if (!strcmp(a, "--no-delete")) o->deletes = 0;
        else {
            if (!strcmp(a, "--points")) o->n = atoll(v);
            else if (!strcmp(a, "--dim")) o->dim = atoi(v);
            else if (!strcmp(a, "--m")) o->m = atoi(v);
            else if (!strcmp(a, "--efc")) o->efc = atoi(v);
            else if (!strcmp(a, "--queries")) o->nq = atoi(v);
            else if (!strcmp(a, "--ef")) o->ef_arg = v;
            else if (!strcmp(a, "--del-ef")) del_arg = v;
            else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 0);
            else if (!strcmp(a, "--peer-only")) o->peer_only = v;
            else if (!strcmp(a, "--peer-args")) o->peer_args = v;
            else die("usage: bench_index_search --points N [--dim D] [--m M] [--efc E] [--queries Q] [--ef LIST] "
                     "[--del-ef LIST] [--seed S] [--no-build-2] [--no-delete] [--peers] [--peer-only LIST] "
                     "[--peer-args ARGS]");
            i++;
        }
    }
    o->nef = parse_list(o->ef_arg, o->ef);
    /* by default the deletes are measured at the three largest ef values */
    if (del_arg) o->ndel_ef = parse_list(del_arg, o->del_ef);
    else
        for (int i = o->nef > 3 ? o->nef - 3 : 0; i < o->nef; i++) o->del_ef[o->ndel_ef++] = o->ef[i];
    if (o->n < 100 || o->n > VS_HNSW_ID_MAX || o->dim < 1 || o->dim > 4096 || o->nq < 10 || o->nq > 100000 ||
        o->nef < 1)
        die("--points, --dim, --queries or --ef out of range");
    for (int i = 0; i < o->nef; i++)
        if (o->ef[i] < 1 || o->ef[i] > VS_HNSW_EF_MAX) die("--ef value out of range");
}

/* ---- exact search ------------------------------------------------------- */

/* Exact top-K ids of query q over the live rows (live NULL: all), best
 * first, through vs_flat_dot as the embedded exact scan does. */
static void exact_topk(const bench_data *d, const float *q, uint32_t *out) {
    float bs[K];
    int nb = 0, dim = d->o->dim;
    for (int64_t i = 0; i < d->o->n; i++) {
        if (d->live && !d->live[i]) continue;
        float s = vs_flat_dot(q, d->x + (size_t)i * dim, (size_t)dim);
        if (nb == K && s <= bs[K - 1]) continue;
        int j = nb < K ? nb++ : K - 1;
        for (; j > 0 && bs[j - 1] < s; j--) bs[j] = bs[j - 1], out[j] = out[j - 1];
        bs[j] = s, out[j] = (uint32_t)i;
    }
    for (int j = nb; j < K; j++) out[j] = UINT32_MAX;
}

typedef struct truth_job {
    bench_data *d;
    int from, to;
} truth_job;

/* Exact answers for queries [from, to). */
static void *truth_run(void *arg) {
    truth_job *j = arg;
    for (int i = j->from; i < j->to; i++) exact_topk(j->d, j->d->q + (size_t)i * j->d->o->dim, j->d->truth + (size_t)i * K);
    return NULL;
}

/* Fills d->truth for every query on two threads; returns the seconds. */
static double truth_all(bench_data *d) {
    truth_job j[2] = {{d, 0, d->o->nq / 2}, {d, d->o->nq / 2, d->o->nq}};
    pthread_t t[2];
    double t0 = bench_now_ms();
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, truth_run, &j[i])) die("pthread_create");
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    return (bench_now_ms() - t0) / 1e3;
}

/* The "exact" line: single-thread latency of a full scan over 100 queries,
 * and the ground truth for all of them (2 threads, giving the QPS). */
static void bench_exact(bench_data *d) {
    int nt = d->o->nq < 100 ? d->o->nq : 100;
    double *lat = malloc((size_t)nt * sizeof *lat);
    if (!lat) die("out of memory for latencies");
    uint32_t ids[K];
    for (int i = 0; i < nt; i++) {
        double t0 = bench_now_ms();
        exact_topk(d, d->q + (size_t)i * d->o->dim, ids);
        lat[i] = bench_now_ms() - t0;
    }
    qsort(lat, (size_t)nt, sizeof *lat, bench_cl_cmp_double);
    double secs = truth_all(d);
    printf("{\"bench\":\"search\",\"index\":\"exact\",\"points\":%lld,\"dim\":%d,\"ef_search\":0,\"recall_at_10\":1,"
           "\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"qps_2_threads\":%.1f,\"rss_mb\":%.0f,\"queries_timed\":%d,"
           "\"note\":\"vs_flat_dot over a contiguous float matrix\"}\n",
           (long long)d->o->n, d->o->dim, lat[nt / 2], lat[nt * 99 / 100], d->o->nq / secs, bench_rss_mb(), nt);
    fflush(stdout);
    free(lat);
}

/* ---- the graph ---------------------------------------------------------- */

/* vector_of: the caller's float row of id (the graph keeps no float copy). */
static const float *vec_of(void *ctx, uint32_t id) {
    const bench_data *d = ctx;
    return d->x + (size_t)id * d->o->dim;
}

/* An empty graph over d's rows. */
static vs_hnsw *graph_new(bench_data *d) {
    vs_hnsw_cfg c = {.dim = d->o->dim, .M = d->o->m, .ef_construction = d->o->efc, .seed = d->o->seed,
                     .vector_of = vec_of, .vector_ctx = d};
    vs_hnsw *h;
    vs_error e = {0};
    if (vs_hnsw_new(&c, &h, &e)) die_e("hnsw new", &e);
    return h;
}

typedef struct insert_job {
    bench_data *d;
    vs_hnsw *h;
    const uint32_t *ids;
    int64_t n;
    int stride, first;
} insert_job;

/* Inserts ids[first], ids[first + stride], ... */
static void *insert_run(void *arg) {
    insert_job *j = arg;
    vs_error e = {0};
    for (int64_t i = j->first; i < j->n; i += j->stride)
        if (vs_hnsw_insert(j->h, j->ids[i], vec_of(j->d, j->ids[i]), &e)) die_e("hnsw insert", &e);
    return NULL;
}

/* Builds a graph of ids[n] with 1 or 2 inserter threads; *secs = time. */
static vs_hnsw *graph_build(bench_data *d, const uint32_t *ids, int64_t n, int threads, double *secs) {
    vs_hnsw *h = graph_new(d);
    insert_job j[2] = {{d, h, ids, n, threads, 0}, {d, h, ids, n, threads, 1}};
    pthread_t t[2];
    double t0 = bench_now_ms();
    if (threads == 1) insert_run(&j[0]);
    else {
        for (int i = 0; i < 2; i++)
            if (pthread_create(&t[i], NULL, insert_run, &j[i])) die("pthread_create");
        for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    }
    *secs = (bench_now_ms() - t0) / 1e3;
    return h;
}

/* Recall@K of hits against the exact row of query i. */
static double recall_of(const bench_data *d, int i, const vs_hnsw_hit *hits, size_t nh) {
    const uint32_t *t = d->truth + (size_t)i * K;
    int found = 0, want = 0;
    for (int a = 0; a < K; a++) {
        if (t[a] == UINT32_MAX) continue;
        want++;
        for (size_t b = 0; b < nh; b++) found += t[a] == hits[b].id;
    }
    return want ? (double)found / want : 1.0;
}

typedef struct qps_job {
    bench_data *d;
    vs_hnsw *h;
    int ef, from, to;
} qps_job;

/* Runs queries [from, to) twice, for the 2-thread QPS. */
static void *qps_run(void *arg) {
    qps_job *j = arg;
    vs_hnsw_hit hits[K];
    size_t nh;
    vs_error e = {0};
    for (int r = 0; r < 2; r++)
        for (int i = j->from; i < j->to; i++)
            if (vs_hnsw_search(j->h, j->d->q + (size_t)i * j->d->o->dim, K, j->ef, NULL, NULL, hits, &nh, &e))
                die_e("hnsw search", &e);
    return NULL;
}

/* One ef's figures. */
typedef struct search_res {
    double recall, p50, p99, qps;
    long deleted_returned;
} search_res;

/* Recall, single-thread p50/p99 over all queries, and 2-thread QPS. */
static search_res measure(bench_data *d, vs_hnsw *h, int ef, int with_qps) {
    int nq = d->o->nq;
    search_res r = {0};
    double *lat = malloc((size_t)nq * sizeof *lat);
    if (!lat) die("out of memory for latencies");
    for (int i = 0; i < nq; i++) {
        vs_hnsw_hit hits[K];
        size_t nh;
        vs_error e = {0};
        double t0 = bench_now_ms();
        if (vs_hnsw_search(h, d->q + (size_t)i * d->o->dim, K, ef, NULL, NULL, hits, &nh, &e)) die_e("hnsw search", &e);
        lat[i] = bench_now_ms() - t0;
        r.recall += recall_of(d, i, hits, nh);
        for (size_t b = 0; d->live && b < nh; b++) r.deleted_returned += !d->live[hits[b].id];
    }
    r.recall /= nq;
    qsort(lat, (size_t)nq, sizeof *lat, bench_cl_cmp_double);
    r.p50 = lat[nq / 2], r.p99 = lat[(size_t)nq * 99 / 100];
    free(lat);
    if (with_qps) {
        qps_job j[2] = {{d, h, ef, 0, nq / 2}, {d, h, ef, nq / 2, nq}};
        pthread_t t[2];
        double t0 = bench_now_ms();
        for (int i = 0; i < 2; i++)
            if (pthread_create(&t[i], NULL, qps_run, &j[i])) die("pthread_create");
        for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
        r.qps = 2.0 * nq / ((bench_now_ms() - t0) / 1e3);
    }
    return r;
}

/* The build line: times, rate, memory of the graph against the floats. */
static void print_build(bench_data *d, vs_hnsw *h, double b1, double b2, double rss_before) {
    double bytes = (double)vs_hnsw_bytes(h), fbytes = (double)d->o->n * d->o->dim * 4.0;
    vs_error e = {0};
    vs_err vr = vs_hnsw_validate(h, &e);   /* symmetric links, every node reachable on level 0 */
    printf("{\"bench\":\"build\",\"index\":\"hnsw\",\"points\":%lld,\"dim\":%d,\"m\":%d,\"ef_construction\":%d,"
           "\"build_s_1_thread\":%.2f,\"inserts_per_s_1_thread\":%.0f,",
           (long long)d->o->n, d->o->dim, d->o->m, d->o->efc, b1, d->o->n / b1);
    if (b2 > 0)
        printf("\"build_s_2_threads\":%.2f,\"inserts_per_s_2_threads\":%.0f,\"note_2_threads\":\"two inserter threads; "
               "vs_hnsw serialises writes under its rwlock, so this measures lock handover, not parallel build\",",
               b2, d->o->n / b2);
    printf("\"graph_bytes\":%.0f,\"graph_bytes_per_point\":%.1f,\"float32_bytes_per_point\":%d,"
           "\"graph_to_float32_ratio\":%.3f,\"rss_mb\":%.0f,\"rss_mb_before_build\":%.0f,\"validate\":\"%s\","
           "\"note\":\"rss includes the caller's float32 matrix (vector_of), which the server keeps anyway\"}\n",
           bytes, bytes / d->o->n, d->o->dim * 4, bytes / fbytes, bench_rss_mb(), rss_before, vr ? e.msg : "ok");
    fflush(stdout);
}

/* The search line of one ef. */
static void print_search(bench_data *d, int ef, const search_res *r, double b1, double b2) {
    printf("{\"bench\":\"search\",\"index\":\"hnsw\",\"points\":%lld,\"dim\":%d,\"m\":%d,\"ef_construction\":%d,"
           "\"ef_search\":%d,\"recall_at_10\":%.4f,\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"qps_2_threads\":%.0f,"
           "\"build_s_1_thread\":%.2f,\"build_s_2_threads\":%.2f,\"rss_mb\":%.0f}\n",
           (long long)d->o->n, d->o->dim, d->o->m, d->o->efc, ef, r->recall, r->p50, r->p99, r->qps, b1, b2, bench_rss_mb());
    fflush(stdout);
}

/* ---- save and open ------------------------------------------------------ */

static vs_err write_fn(void *ctx, const void *buf, size_t n, vs_error *e) {
    return fwrite(buf, 1, n, ctx) == n ? VS_OK : vs_fail(e, VS_ERR_IO, "bench save: fwrite of %zu bytes", n);
}

static vs_err read_fn(void *ctx, void *buf, size_t n, vs_error *e) {
    return fread(buf, 1, n, ctx) == n ? VS_OK : vs_fail(e, VS_ERR_IO, "bench open: fread of %zu bytes", n);
}

/* Saves h to dir/graph.bin, times vs_hnsw_load from it, and checks that the
 * loaded graph answers the first 50 queries with the same top-10. */
static void bench_open(bench_data *d, vs_hnsw *h, const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/graph.bin", dir);
    vs_error e = {0};
    FILE *f = fopen(path, "wb");
    if (!f) die("cannot create the graph file");
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    double t0 = bench_now_ms();
    if (vs_hnsw_save(h, write_fn, f, &e)) die_e("hnsw save", &e);
    if (fflush(f) || fsync(fileno(f)) || fclose(f)) die("writing the graph file");
    double save_s = (bench_now_ms() - t0) / 1e3;
    struct stat st;
    if (stat(path, &st)) die("stat of the graph file");
    if (!(f = fopen(path, "rb"))) die("cannot open the graph file");
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    vs_hnsw_cfg c = {.dim = d->o->dim, .M = d->o->m, .ef_construction = d->o->efc, .vector_of = vec_of, .vector_ctx = d};
    vs_hnsw *g;
    t0 = bench_now_ms();
    if (vs_hnsw_load(&c, read_fn, f, &g, &e)) die_e("hnsw load", &e);
    double open_s = (bench_now_ms() - t0) / 1e3;
    fclose(f);
    int same = 0, nc = d->o->nq < 50 ? d->o->nq : 50, ef = d->o->ef[d->o->nef - 1];
    for (int i = 0; i < nc; i++) {
        vs_hnsw_hit a[K], b[K];
        size_t na, nb;
        const float *q = d->q + (size_t)i * d->o->dim;
        if (vs_hnsw_search(h, q, K, ef, NULL, NULL, a, &na, &e) || vs_hnsw_search(g, q, K, ef, NULL, NULL, b, &nb, &e))
            die_e("hnsw search", &e);
        int eq = na == nb;
        for (size_t k = 0; eq && k < na; k++) eq = a[k].id == b[k].id;
        same += eq;
    }
    printf("{\"bench\":\"open\",\"index\":\"hnsw\",\"points\":%lld,\"file_mb\":%.1f,\"save_s\":%.2f,\"open_s\":%.3f,"
           "\"same_top10\":%d,\"checked\":%d,\"note\":\"vs_hnsw_load through fread (1 MiB buffer), page cache warm; "
           "the float32 vectors are the caller's (not in the file)\"}\n",
           (long long)d->o->n, st.st_size / 1048576.0, save_s, open_s, same, nc);
    fflush(stdout);
    vs_hnsw_free(g);
    remove(path);
}

/* ---- deletes ------------------------------------------------------------ */

/* Deletes a seeded 30 % of h (freed here), measures recall at the del-ef
 * values beside a fresh single-thread build of the remaining 70 %. */
static void bench_delete(bench_data *d, vs_hnsw *h) {
    const bench_opts *o = d->o;
    size_t n = (uint32_t)o->n;   /* parse_opts bounded it to [100, VS_HNSW_ID_MAX] */
    uint32_t *perm = malloc(n * sizeof *perm);
    d->live = malloc(n);
    if (!perm || !d->live) die("out of memory for the delete set");
    for (int64_t i = 0; i < o->n; i++) perm[i] = (uint32_t)i;
    uint64_t s = o->seed ^ 0xDE1E7Eull;
    for (int64_t i = o->n - 1; i > 0; i--) {
        int64_t j = (int64_t)(bench_cl_next(&s) % (uint64_t)(i + 1));
        uint32_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    int64_t nd = o->n * 3 / 10;
    memset(d->live, 1, n);
    vs_error e = {0};
    double t0 = bench_now_ms();
    for (int64_t i = 0; i < nd; i++) {
        if (vs_hnsw_delete(h, perm[i], &e)) die_e("hnsw delete", &e);
        d->live[perm[i]] = 0;
    }
    double del_s = (bench_now_ms() - t0) / 1e3;
    vs_err vr = vs_hnsw_validate(h, &e);
    printf("{\"bench\":\"delete\",\"index\":\"hnsw\",\"points\":%lld,\"deleted\":%lld,\"delete_s\":%.2f,"
           "\"deletes_per_s\":%.0f,\"graph_bytes_per_live_point\":%.1f,\"validate\":\"%s\"}\n",
           (long long)o->n, (long long)nd, del_s, nd / del_s, (double)vs_hnsw_bytes(h) / (double)(o->n - nd),
           vr ? e.msg : "ok");
    fflush(stdout);
    truth_all(d);
    search_res after[EF_LIST_MAX];
    for (int i = 0; i < o->ndel_ef; i++) after[i] = measure(d, h, o->del_ef[i], 0);
    vs_hnsw_free(h);
    /* the fresh build inserts the survivors in their original order */
    int64_t nk = 0;
    for (int64_t i = 0; i < o->n; i++)
        if (d->live[i]) perm[nk++] = (uint32_t)i;
    double fb;
    vs_hnsw *f = graph_build(d, perm, nk, 1, &fb);
    for (int i = 0; i < o->ndel_ef; i++) {
        search_res fr = measure(d, f, o->del_ef[i], 0);
        printf("{\"bench\":\"delete\",\"index\":\"hnsw\",\"phase\":\"after_delete_30pct\",\"points\":%lld,"
               "\"ef_search\":%d,\"recall_at_10\":%.4f,\"recall_at_10_fresh_build\":%.4f,\"recall_gap\":%.4f,"
               "\"p50_ms\":%.4f,\"p50_ms_fresh_build\":%.4f,\"deleted_returned\":%ld,\"fresh_build_s\":%.2f,"
               "\"note\":\"true delete with neighbour repair\"}\n",
               (long long)nk, o->del_ef[i], after[i].recall, fr.recall, fr.recall - after[i].recall, after[i].p50,
               fr.p50, after[i].deleted_returned, fb);
        fflush(stdout);
    }
    vs_hnsw_free(f);
    free(perm);
}

/* ---- peers -------------------------------------------------------------- */

/* Writes the data to dir/data.vscl and runs bench/peers.py on it, passing
 * its JSON lines through to stdout as they come. */
static void bench_peers(bench_data *d, const char *dir) {
    const bench_opts *o = d->o;
    char path[512], cmd[2048];
    snprintf(path, sizeof path, "%s/data.vscl", dir);
    if (bench_clustered_write(path, &d->p, d->x, d->who, o->n, d->q, d->qwho, o->nq, d->people))
        die("writing the VSCL file for the peers");
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/bench/peers.py %s --m %d --ef-construction %d --ef %s --only %s %s",
             VS_SOURCE_DIR, path, o->m, o->efc, o->ef_arg, o->peer_only, o->peer_args);
    printf("{\"bench\":\"peers_cmd\",\"cmd\":\"%s\"}\n", cmd);
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    if (!p) die("cannot start bench/peers.py");
    char line[8192];
    while (fgets(line, sizeof line, p)) {
        fputs(line, stdout);
        fflush(stdout);
    }
    int st = pclose(p);
    if (st) fprintf(stderr, "bench_index_search: peers.py exited with status %d\n", st);
    remove(path);
}

int main(int argc, char **argv) {
    bench_opts o;
    parse_opts(argc, argv, &o);
    bench_data d = {.o = &o, .p = bench_clustered_defaults(o.dim)};
    d.p.seed = o.seed;
    d.x = malloc((size_t)o.n * o.dim * sizeof *d.x);
    d.q = malloc((size_t)o.nq * o.dim * sizeof *d.q);
    d.who = malloc((size_t)o.n * sizeof *d.who);
    d.qwho = malloc((size_t)o.nq * sizeof *d.qwho);
    d.truth = malloc((size_t)o.nq * K * sizeof *d.truth);
    uint32_t *ids = malloc((size_t)o.n * sizeof *ids);
    if (!d.x || !d.q || !d.who || !d.qwho || !d.truth || !ids) die("out of memory for the data");
    char dir[] = "/tmp/vs_bench_search_XXXXXX";
    if (!mkdtemp(dir)) die("mkdtemp");
    d.people = bench_clustered_gen(&d.p, o.n, d.x, d.who);
    bench_clustered_queries(&d.p, d.who, o.n, o.nq, d.q, d.qwho);
    if (bench_clustered_print_dist(&d.p, d.x, d.who, o.n, d.people)) die("out of memory for the distributions");
    bench_exact(&d);
    for (int64_t i = 0; i < o.n; i++) ids[i] = (uint32_t)i;
    double rss0 = bench_rss_mb(), b1, b2 = 0;
    vs_hnsw *h = graph_build(&d, ids, o.n, 1, &b1);
    if (o.build_2) vs_hnsw_free(graph_build(&d, ids, o.n, 2, &b2));
    print_build(&d, h, b1, b2, rss0);
    for (int i = 0; i < o.nef; i++) {
        search_res r = measure(&d, h, o.ef[i], 1);
        print_search(&d, o.ef[i], &r, b1, b2);
    }
    bench_open(&d, h, dir);
    if (o.deletes) bench_delete(&d, h);   /* frees h */
    else vs_hnsw_free(h);
    if (o.peers) bench_peers(&d, dir);
    rmdir(dir);
    free(ids);
    free(d.x), free(d.q), free(d.who), free(d.qwho), free(d.truth), free(d.live);
    return 0;
}
