/* people.c - faces into people (src/pipeline/vs_cluster.c), measured: speed
 * at scale on synthetic embeddings, quality on real faces.
 *
 *   build/bench_people --synthetic 100000 [--threads 2] [--sweep] [--time-limit S]
 *       bench/clustered.h's dlib-fitted embeddings with known people; kNN
 *       from vs_hnsw (M 16, ef_construction 100, ef_search 64); 90 % of the
 *       faces batch-clustered, the last 10 % assigned one by one
 *       (vs_cluster_assign, neighbours from the graph filtered to assigned
 *       faces). The batch's noise first goes through the same assignment
 *       (the "attach" pass). Prints graph and clustering time, peak RSS,
 *       pairwise precision/recall, BCubed F1, share unassigned, us per new
 *       face (vs_cluster_assign_local: a filtered search for the votes, an
 *       unfiltered one for the background). --sweep adds a line per
 *       (link_sim, knn_k) setting on the same graph, with attach.
 *   build/bench_people --lfw ../shared/data/lfw-dev --pairs pairsDevTrain.txt [--cache FILE]
 *       embeds the images the pair list names (the face nearest the centre),
 *       prints the pair FMR/TAR table (link_sim), the leave-one-out centroid
 *       table (join_sim) and a batch + incremental run on those faces. Tune
 *       on DevTrain, report DevTest.
 *   build/bench_people --faces ../shared/data/faces [--lfw DIR --pairs pairsDevTest.txt]
 *       the labelled shared photos, each with 12 augmented copies (crops,
 *       rescales, JPEG re-encodes, flips, made here with src/image), alone
 *       and mixed with the LFW faces as strangers; run with dup = source
 *       photo (what the pipeline's near-duplicate marks give) and without.
 *   build/bench_people --faces ../shared/data/faces --write-copies DIR
 *       writes those copies as JPEG files + DIR/labels.tsv (file, person,
 *       photo id, face box) instead of clustering: bench/people_serve.js
 *       ingests them through `visage serve`.
 *   Any run: --link-sim --join-sim --knn-k --vote-k --vote-frac --min-faces
 *   --contrast override vs_cluster_cfg_default; PEOPLE_DUMP=FILE writes each
 *   real face's name, truth and batch label (to see which people merge).
 *   Experiments (bench/results/people_lfw_experiments.txt): --links, --joins,
 *   --vote-ks, --vote-fracs, --contrasts take comma lists and run the grid on
 *   the LFW set; --centre (--centre-project, --centre-raw, --centre-alpha A)
 *   subtracts the set's mean embedding first; --quantiles prints pair and
 *   centroid thresholds at fixed false-match rates; --sims-of NAME lists a
 *   face's nearest faces; PEOPLE_DUMP_FINAL=FILE the labels after incremental.
 *
 * bench/results/people.txt holds a run. Timings are printed, never asserted;
 * the machine's 2 cores are shared, so compare ratios within one run. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_util.h"
#include "clustered.h"
#include "vs_alloc.h"
#include "vs_cluster.h"
#include "vs_engine.h"
#include "vs_hnsw.h"
#include "vs_image.h"

static void *xcalloc(size_t n, size_t sz) {
    void *p = calloc(n ? n : 1, sz);
    if (!p) bench_fail("people: out of memory (%zu x %zu)", n, sz);
    return p;
}

/* Peak resident set (VmHWM) in MB. */
static double peak_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = atof(line + 6);
    if (f) fclose(f);
    return kb / 1024;
}

/* ---- quality measures ---------------------------------------------------- */

typedef struct quality {
    double pp, pr, pr3, bp, br, bf1, unassigned;
    int clusters;
} quality;

typedef struct lt {
    int label, truth;
} lt;

static int cmp_lt(const void *a, const void *b) {
    const lt *x = a, *y = b;
    if (x->label != y->label) return (x->label > y->label) - (x->label < y->label);
    return (x->truth > y->truth) - (x->truth < y->truth);
}

/* Pairwise precision/recall (noise faces pair with no one), recall also over
 * people with >= min_faces faces only (the ones a clustering can find), and
 * BCubed with each noise face its own cluster. truth ids < n_truth. */
static quality measure(int n, const int *label, const int *truth, int n_truth, int min_faces) {
    quality q = {0};
    int *tsize = xcalloc((size_t)n_truth, sizeof *tsize);
    lt *p = xcalloc((size_t)n, sizeof *p);
    int m = 0, max_label = -1, noise = 0;
    for (int i = 0; i < n; i++) {
        tsize[truth[i]]++;
        if (label[i] > max_label) max_label = label[i];
        if (label[i] < 0) noise++;
        else p[m++] = (lt){label[i], truth[i]};
    }
    int *csize = xcalloc((size_t)max_label + 1, sizeof *csize);
    for (int i = 0; i < m; i++) csize[p[i].label]++;
    qsort(p, (size_t)m, sizeof *p, cmp_lt);
    double tp = 0, pred = 0, tru = 0, tru3 = 0, tp3 = 0, bp = 0, br = 0;
    for (int c = 0; c <= max_label; c++) pred += (double)csize[c] * (csize[c] - 1) / 2;
    for (int t = 0; t < n_truth; t++) {
        double pairs = (double)tsize[t] * (tsize[t] - 1) / 2;
        tru += pairs;
        if (tsize[t] >= min_faces) tru3 += pairs;
    }
    for (int a = 0; a < m;) {
        int b = a;
        while (b < m && p[b].label == p[a].label && p[b].truth == p[a].truth) b++;
        double cell = b - a;
        tp += cell * (cell - 1) / 2;
        if (tsize[p[a].truth] >= min_faces) tp3 += cell * (cell - 1) / 2;
        bp += cell * cell / csize[p[a].label];
        br += cell * cell / tsize[p[a].truth];
        a = b;
    }
    bp += noise;                  /* a noise face is its own, pure cluster */
    for (int i = 0; i < n; i++) /* and recalls 1 / |its person| */
        if (label[i] < 0) br += 1.0 / tsize[truth[i]];
    q.pp = pred > 0 ? tp / pred : 1;
    q.pr = tru > 0 ? tp / tru : 1;
    q.pr3 = tru3 > 0 ? tp3 / tru3 : 1;
    q.bp = bp / n;
    q.br = br / n;
    q.bf1 = q.bp + q.br > 0 ? 2 * q.bp * q.br / (q.bp + q.br) : 0;
    q.unassigned = (double)noise / n;
    q.clusters = max_label + 1;
    free(tsize);
    free(p);
    free(csize);
    return q;
}

static void print_quality(const char *what, const quality *q) {
    printf("\"%s\":{\"pair_precision\":%.4f,\"pair_recall\":%.4f,\"pair_recall_3plus\":%.4f,\"bcubed_p\":%.4f,"
           "\"bcubed_r\":%.4f,\"bcubed_f1\":%.4f,\"unassigned\":%.4f,\"people\":%d}",
           what, q->pp, q->pr, q->pr3, q->bp, q->br, q->bf1, q->unassigned, q->clusters);
}

/* ---- kNN lists ----------------------------------------------------------- */

/* Precomputed neighbour lists (kmax per face, best first): the batch reads
 * them through knn_lists, so graph time and clustering time are apart and a
 * sweep reuses one graph. */
typedef struct knn_table {
    int n, kmax;
    int *nbr, *cnt;
    float *sim;
} knn_table;

static int knn_lists(void *ctx, int i, int k, int *nbr, float *sim) {
    const knn_table *t = ctx;
    int m = t->cnt[i] < k ? t->cnt[i] : k;
    memcpy(nbr, t->nbr + (size_t)i * t->kmax, sizeof *nbr * (size_t)m);
    memcpy(sim, t->sim + (size_t)i * t->kmax, sizeof *sim * (size_t)m);
    return m;
}

typedef struct graph_job {
    vs_hnsw *h;
    const float *vecs;
    int dim, ef, lo, hi;
    knn_table *t;
} graph_job;

/* Searches kmax + 1 and drops the face itself. */
static void *graph_worker(void *arg) {
    graph_job *j = arg;
    vs_hnsw_hit *hits = xcalloc((size_t)j->t->kmax + 1, sizeof *hits);
    vs_error e;
    for (int i = j->lo; i < j->hi; i++) {
        size_t got = 0;
        if (vs_hnsw_search(j->h, j->vecs + (size_t)i * j->dim, (size_t)j->t->kmax + 1, j->ef, NULL, NULL, hits, &got,
                           &e) != VS_OK)
            bench_fail("people: search: %s", e.msg);
        int m = 0;
        for (size_t h = 0; h < got && m < j->t->kmax; h++) {
            if ((int)hits[h].id == i) continue;
            j->t->nbr[(size_t)i * j->t->kmax + m] = (int)hits[h].id;
            j->t->sim[(size_t)i * j->t->kmax + m++] = hits[h].score;
        }
        j->t->cnt[i] = m;
    }
    free(hits);
    return NULL;
}

/* kNN lists of faces [0, n_batch) from h, in `threads` threads. */
static void knn_from_graph(vs_hnsw *h, const float *vecs, int dim, int n_batch, int kmax, int ef, int threads,
                           knn_table *t) {
    t->n = n_batch;
    t->kmax = kmax;
    t->nbr = xcalloc((size_t)n_batch * kmax, sizeof *t->nbr);
    t->sim = xcalloc((size_t)n_batch * kmax, sizeof *t->sim);
    t->cnt = xcalloc((size_t)n_batch, sizeof *t->cnt);
    pthread_t th[16];
    graph_job jobs[16];
    if (threads < 1) threads = 1;
    if (threads > 16) threads = 16;
    for (int k = 0; k < threads; k++) {
        jobs[k] = (graph_job){h, vecs, dim, ef, (int)((long)n_batch * k / threads),
                              (int)((long)n_batch * (k + 1) / threads), t};
        pthread_create(&th[k], NULL, graph_worker, &jobs[k]);
    }
    for (int k = 0; k < threads; k++) pthread_join(th[k], NULL);
}

static void knn_table_free(knn_table *t) {
    free(t->nbr);
    free(t->sim);
    free(t->cnt);
}

/* Exact lists (small real sets): same shape as knn_from_graph. */
static void knn_exact_table(const float *vecs, int n, int dim, int kmax, knn_table *t) {
    vs_cluster_exact x = {vecs, n, dim};
    t->n = n;
    t->kmax = kmax;
    t->nbr = xcalloc((size_t)n * kmax, sizeof *t->nbr);
    t->sim = xcalloc((size_t)n * kmax, sizeof *t->sim);
    t->cnt = xcalloc((size_t)n, sizeof *t->cnt);
    for (int i = 0; i < n; i++)
        t->cnt[i] = vs_cluster_knn_exact(&x, i, kmax, t->nbr + (size_t)i * kmax, t->sim + (size_t)i * kmax);
}

/* ---- incremental assignment ---------------------------------------------- */

/* Person centroids as running sums, as the server would keep them. */
typedef struct people {
    int dim, n;
    double *sum;   /* n x dim */
    const float *face;
} people;

static int centroid_sim(void *ctx, int person, float *sim) {
    const people *p = ctx;
    if (person < 0 || person >= p->n) return -1;
    const double *s = p->sum + (size_t)person * p->dim;
    double dot = 0, n2 = 0;
    for (int d = 0; d < p->dim; d++) {
        dot += s[d] * p->face[d];
        n2 += s[d] * s[d];
    }
    if (!(n2 > 0)) return -1;
    *sim = (float)(dot / sqrt(n2));
    return 0;
}

static void people_add(people *p, int person, const float *v) {
    double *s = p->sum + (size_t)person * p->dim;
    for (int d = 0; d < p->dim; d++) s[d] += v[d];
}

static void people_init(people *p, int dim, int n_people, const float *vecs, const int *label, int n) {
    p->dim = dim;
    p->n = n_people;
    p->sum = xcalloc((size_t)(n_people ? n_people : 1) * dim, sizeof *p->sum);
    for (int i = 0; i < n; i++)
        if (label[i] >= 0) people_add(p, label[i], vecs + (size_t)i * dim);
}

typedef struct assigned_filter {
    const int *label;
} assigned_filter;

static int is_assigned(void *ctx, uint32_t id) { return ((const assigned_filter *)ctx)->label[id] >= 0; }

typedef struct incr_stats {
    int tried, joined, joined_right;
    double us;
} incr_stats;

/* "Right" join: the person's majority truth is the face's truth. */
static int *majority_truth(const int *label, const int *truth, int n, int n_people) {
    int *maj = xcalloc((size_t)(n_people ? n_people : 1), sizeof *maj);
    lt *p = xcalloc((size_t)n, sizeof *p);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (label[i] >= 0) p[m++] = (lt){label[i], truth[i]};
    qsort(p, (size_t)m, sizeof *p, cmp_lt);
    int best_run = 0;
    for (int a = 0; a < m;) {
        int b = a;
        while (b < m && p[b].label == p[a].label && p[b].truth == p[a].truth) b++;
        if (a == 0 || p[a].label != p[a - 1].label) best_run = 0;
        if (b - a > best_run) {
            best_run = b - a;
            maj[p[a].label] = p[a].truth;
        }
        a = b;
    }
    free(p);
    return maj;
}

/* The unassigned faces of [lo, hi) one by one: graph search filtered to
 * assigned faces, vote + centroid, and a joined face becomes a voter and
 * moves the centroid. Run over a batch's noise right after the batch (the
 * "attach" pass) and over new faces (the incremental path). */
static incr_stats assign_range(const vs_cluster_cfg *c, vs_hnsw *h, const float *vecs, int dim, int lo, int hi,
                               int *label, const int *truth, people *pp, int ef, int n_known) {
    incr_stats st = {0};
    int *maj = majority_truth(label, truth, n_known, pp->n);
    vs_hnsw_hit *hits = xcalloc((size_t)c->vote_k, sizeof *hits);
    vs_hnsw_hit *bgh = xcalloc((size_t)c->knn_k + 1, sizeof *bgh);
    vs_cluster_vote *votes = xcalloc((size_t)c->vote_k, sizeof *votes);
    assigned_filter af = {label};
    vs_error e;
    double t0 = bench_now_ms();
    for (int i = lo; i < hi; i++) {
        if (label[i] >= 0) continue;
        size_t got = 0;
        const float *v = vecs + (size_t)i * dim;
        if (vs_hnsw_search(h, v, (size_t)c->vote_k, ef, is_assigned, &af, hits, &got, &e) != VS_OK)
            bench_fail("people: search: %s", e.msg);
        for (size_t k = 0; k < got; k++) votes[k] = (vs_cluster_vote){label[hits[k].id], hits[k].score};
        /* background: the knn_k-th nearest other face, assigned or not */
        size_t gb = 0;
        float bg = -2;
        if (vs_hnsw_search(h, v, (size_t)c->knn_k + 1, ef, NULL, NULL, bgh, &gb, &e) != VS_OK)
            bench_fail("people: search: %s", e.msg);
        for (size_t k = 0, others = 0; k < gb; k++)
            if ((int)bgh[k].id != i && ++others == (size_t)c->knn_k) bg = bgh[k].score;
        pp->face = v;
        int who = vs_cluster_assign_local(c, votes, (int)got, bg, centroid_sim, pp);
        st.tried++;
        if (who >= 0) {
            label[i] = who;
            people_add(pp, who, v);
            st.joined++;
            st.joined_right += maj[who] == truth[i];
        }
    }
    st.us = (bench_now_ms() - t0) * 1000 / (st.tried ? st.tried : 1);
    free(maj);
    free(hits);
    free(bgh);
    free(votes);
    return st;
}

/* ---- one batch + incremental run over a knn table ------------------------ */

static quality run_batch(const vs_cluster_cfg *c, knn_table *t, const int *dup, const int *truth, int n_truth,
                         int *label, int *n_people, double *ms) {
    vs_error e;
    double t0 = bench_now_ms();
    if (vs_cluster_batch(t->n, c, knn_lists, t, dup, label, n_people, &e) != VS_OK) bench_fail("people: batch: %s", e.msg);
    *ms = bench_now_ms() - t0;
    return measure(t->n, label, truth, n_truth, c->min_faces);
}

/* ---- (a) synthetic scale -------------------------------------------------- */

static void synthetic(int n, int threads, int sweep, const vs_cluster_cfg *c) {
    bench_clustered_params prm = bench_clustered_defaults(128);
    int dim = prm.dim;
    float *vecs = xcalloc((size_t)n * dim, sizeof *vecs);
    int32_t *who = xcalloc((size_t)n, sizeof *who);
    double t0 = bench_now_ms();
    int n_truth = bench_clustered_gen(&prm, n, vecs, who);
    printf("{\"bench\":\"people_synthetic_data\",\"faces\":%d,\"people\":%d,\"gen_s\":%.1f}\n", n, n_truth,
           (bench_now_ms() - t0) / 1000);
    fflush(stdout);
    vs_hnsw_cfg hc = {.dim = dim, .M = 16, .ef_construction = 100, .seed = 1, .quant_clip = 0};
    vs_hnsw *h;
    vs_error e;
    if (vs_hnsw_new(&hc, &h, &e) != VS_OK) bench_fail("people: hnsw: %s", e.msg);
    t0 = bench_now_ms();
    for (int i = 0; i < n; i++)
        if (vs_hnsw_insert(h, (uint32_t)i, vecs + (size_t)i * dim, &e) != VS_OK) bench_fail("people: insert: %s", e.msg);
    double build_ms = bench_now_ms() - t0;
    int n_batch = n - n / 10, kmax = sweep ? 16 : c->knn_k, ef = 64;
    knn_table t;
    t0 = bench_now_ms();
    knn_from_graph(h, vecs, dim, n_batch, kmax, ef, threads, &t);
    double knn_ms = bench_now_ms() - t0;
    int *label = xcalloc((size_t)n, sizeof *label), np = 0;
    double ms;
    int *truth = (int *)who;
    for (int i = n_batch; i < n; i++) label[i] = -1; /* not in the graph's voters until assigned */
    if (sweep) {
        float links[] = {0.925f, 0.929f, 0.935f, 0.94f, 0.95f, 0.96f};
        int ks[] = {6, 8, 10, 12, 16};
        for (size_t a = 0; a < sizeof links / sizeof *links; a++)
            for (size_t b = 0; b < sizeof ks / sizeof *ks; b++) {
                vs_cluster_cfg s = *c;
                s.link_sim = links[a];
                s.knn_k = ks[b];
                if (s.knn_k > kmax) continue;
                quality q = run_batch(&s, &t, NULL, truth, n_truth, label, &np, &ms);
                people pp;
                people_init(&pp, dim, np, vecs, label, n_batch);
                assign_range(&s, h, vecs, dim, 0, n_batch, label, truth, &pp, ef, n_batch);
                quality qa = measure(n_batch, label, truth, n_truth, s.min_faces);
                free(pp.sum);
                printf("{\"bench\":\"people_sweep\",\"faces\":%d,\"link_sim\":%.3f,\"knn_k\":%d,\"cluster_ms\":%.0f,",
                       n_batch, (double)s.link_sim, s.knn_k, ms);
                print_quality("batch", &q);
                printf(",");
                print_quality("after_attach", &qa);
                printf("}\n");
                fflush(stdout);
            }
    }
    quality q = run_batch(c, &t, NULL, truth, n_truth, label, &np, &ms);
    for (int i = n_batch; i < n; i++) label[i] = -1;
    people pp;
    people_init(&pp, dim, np, vecs, label, n_batch);
    incr_stats at = assign_range(c, h, vecs, dim, 0, n_batch, label, truth, &pp, ef, n_batch);
    quality qt = measure(n_batch, label, truth, n_truth, c->min_faces);
    incr_stats st = assign_range(c, h, vecs, dim, n_batch, n, label, truth, &pp, ef, n_batch);
    quality qa = measure(n, label, truth, n_truth, c->min_faces);
    printf("{\"bench\":\"people_synthetic\",\"faces\":%d,\"batch_faces\":%d,\"dim\":%d,\"link_sim\":%.3f,\"knn_k\":%d,"
           "\"min_faces\":%d,\"join_sim\":%.3f,\"vote_k\":%d,\"vote_frac\":%.2f,\"contrast\":%.3f,\"threads\":%d,"
           "\"hnsw_build_s\":%.1f,\"knn_lists_s\":%.1f,\"cluster_s\":%.2f,\"peak_rss_mb\":%.0f,",
           n, n_batch, dim, (double)c->link_sim, c->knn_k, c->min_faces, (double)c->join_sim, c->vote_k,
           (double)c->vote_frac, (double)c->contrast, threads, build_ms / 1000, knn_ms / 1000, ms / 1000, peak_rss_mb());
    print_quality("batch", &q);
    printf(",\"attach\":{\"faces\":%d,\"joined\":%d,\"joined_right\":%d,\"us_per_face\":%.1f},", at.tried,
           at.joined, at.joined_right, at.us);
    print_quality("after_attach", &qt);
    printf(",\"incremental\":{\"faces\":%d,\"joined\":%d,\"joined_right\":%d,\"us_per_face\":%.1f},", st.tried,
           st.joined, st.joined_right, st.us);
    print_quality("after_incremental", &qa);
    printf("}\n");
    fflush(stdout);
    free(pp.sum);
    knn_table_free(&t);
    vs_hnsw_free(h);
    free(label);
    free(vecs);
    free(who);
}

/* ---- real faces: embedding ----------------------------------------------- */

typedef struct face_set {
    int n, cap, dim;
    float *emb;       /* n x dim */
    int *truth, *dup, *found;
    char **name;      /* per face: what it is (path + augmentation) */
    int n_truth;
    char **truth_name;
} face_set;

static int truth_id(face_set *s, const char *person) {
    for (int t = 0; t < s->n_truth; t++)
        if (!strcmp(s->truth_name[t], person)) return t;
    s->truth_name = realloc(s->truth_name, sizeof *s->truth_name * (size_t)(s->n_truth + 1));
    if (!s->truth_name) bench_fail("people: out of memory");
    s->truth_name[s->n_truth] = strdup(person);
    return s->n_truth++;
}

static int face_add(face_set *s, const char *name, const char *person, int dup) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->emb = realloc(s->emb, sizeof *s->emb * (size_t)s->cap * s->dim);
        s->truth = realloc(s->truth, sizeof *s->truth * (size_t)s->cap);
        s->dup = realloc(s->dup, sizeof *s->dup * (size_t)s->cap);
        s->found = realloc(s->found, sizeof *s->found * (size_t)s->cap);
        s->name = realloc(s->name, sizeof *s->name * (size_t)s->cap);
        if (!s->emb || !s->truth || !s->dup || !s->found || !s->name) bench_fail("people: out of memory");
    }
    s->truth[s->n] = truth_id(s, person);
    s->dup[s->n] = dup;
    s->found[s->n] = 0;
    s->name[s->n] = strdup(name);
    return s->n++;
}

static void face_set_free(face_set *s) {
    for (int i = 0; i < s->n; i++) free(s->name[i]);
    for (int t = 0; t < s->n_truth; t++) free(s->truth_name[t]);
    free(s->emb), free(s->truth), free(s->dup), free(s->found), free(s->name), free(s->truth_name);
}

/* The face nearest the image centre (LFW centres the named person). */
static int centre_face(const vs_faces *f, const vs_image *img) {
    int best = -1;
    double bd = 1e30;
    for (int k = 0; k < f->n; k++) {
        if (!f->faces[k].embedding) continue;
        const vs_face_det *d = &f->faces[k].det;
        double dx = d->x + d->w / 2 - img->width / 2.0, dy = d->y + d->h / 2 - img->height / 2.0;
        if (dx * dx + dy * dy < bd) bd = dx * dx + dy * dy, best = k;
    }
    return best;
}

/* ---- augmentation ---------------------------------------------------------- */

static void crop(const vs_image *src, int x, int y, int w, int h, vs_image *dst) {
    vs_error e;
    if (vs_image_alloc(dst, w, h, src->channels, &e) != VS_OK) bench_fail("people: %s", e.msg);
    for (int r = 0; r < h; r++)
        memcpy(dst->data + (size_t)r * w * src->channels,
               src->data + ((size_t)(y + r) * src->width + x) * src->channels, (size_t)w * src->channels);
}

static void flip(const vs_image *src, vs_image *dst) {
    vs_error e;
    int c = src->channels;
    if (vs_image_alloc(dst, src->width, src->height, c, &e) != VS_OK) bench_fail("people: %s", e.msg);
    for (int r = 0; r < src->height; r++)
        for (int x = 0; x < src->width; x++)
            memcpy(dst->data + ((size_t)r * src->width + x) * c,
                   src->data + ((size_t)r * src->width + (src->width - 1 - x)) * c, (size_t)c);
}

static void rescale(const vs_image *src, double f, vs_image *dst) {
    vs_error e;
    int w = (int)(src->width * f + 0.5), h = (int)(src->height * f + 0.5);
    if (vs_image_resize(src, w < 1 ? 1 : w, h < 1 ? 1 : h, dst, &e) != VS_OK) bench_fail("people: %s", e.msg);
}

static void jpeg_again(const vs_image *src, int quality, vs_image *dst) {
    vs_error e;
    uint8_t *buf;
    size_t len;
    if (vs_image_encode_jpeg(src, quality, &buf, &len, &e) != VS_OK) bench_fail("people: %s", e.msg);
    if (vs_image_decode(buf, len, NULL, dst, &e) != VS_OK) bench_fail("people: %s", e.msg);
    vs_free(buf);
}

#define N_AUG 13

/* Augmentation a (0 = the photo itself) of img around the face box d: crops
 * keep the face, rescales go down to faces ~100 px wide, JPEG down to q 25.
 * *where gets d carried through the same geometry, so that in a two-face
 * photo the copy's face is picked by place, never by the model. */
static void augment(const vs_image *img, const vs_face_det *d, int a, vs_image *out, vs_face_det *where) {
    vs_image t = {0};
    int W = img->width, H = img->height;
    double f = 1.0; /* rescale factor */
    int flipped = 0;
    /* a crop window of s x face size around the face, shifted by (ox, oy) faces */
    double s = 2.2, ox = 0, oy = 0;
    *where = *d;
    switch (a) {
    case 0: jpeg_again(img, 95, out); return;
    case 1: flip(img, out), flipped = 1; break;
    case 2: s = 1.8, ox = -0.25; goto window;
    case 3: s = 1.8, ox = 0.25; goto window;
    case 4: s = 2.6, oy = 0.2; goto window;
    case 5: f = 0.5, rescale(img, f, out); break;
    case 6: f = d->w > 100 ? 100.0 / d->w : 1.0, rescale(img, f, out); break; /* face ~100 px wide */
    case 7: jpeg_again(img, 25, out); return;
    case 8: jpeg_again(img, 50, out); return;
    case 9: f = 0.7, flipped = 1, flip(img, &t), rescale(&t, f, out), vs_image_free(&t); break;
    case 10: f = 0.6, rescale(img, f, &t), jpeg_again(&t, 40, out), vs_image_free(&t); break;
    case 11: s = 3.0, ox = -0.1, oy = -0.1; goto window;
    default: flipped = 1, flip(img, &t), jpeg_again(&t, 35, out), vs_image_free(&t); break;
    }
    if (flipped) where->x = (float)W - d->x - d->w;
    where->x = (float)(where->x * f), where->y = (float)(d->y * f);
    where->w = (float)(d->w * f), where->h = (float)(d->h * f);
    return;
window:;
    double cx = d->x + d->w * (0.5 + ox), cy = d->y + d->h * (0.5 + oy), side = s * (d->w > d->h ? d->w : d->h);
    int x0 = (int)(cx - side / 2), y0 = (int)(cy - side / 2), x1 = (int)(cx + side / 2), y1 = (int)(cy + side / 2);
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > W) x1 = W;
    if (y1 > H) y1 = H;
    crop(img, x0, y0, x1 - x0, y1 - y0, out);
    where->x = d->x - (float)x0, where->y = d->y - (float)y0;
}

/* How a photo's face is chosen: the detector's best face, or in a two-face
 * photo the left or right one of its two largest faces (labelled by looking
 * at the photo); for a copy, the face on the place the source face went. */
typedef enum { PICK_BEST, PICK_CENTRE, PICK_LEFT, PICK_RIGHT, PICK_AT } pick_rule;

static int pick_face(const vs_faces *f, const vs_image *img, pick_rule rule, const vs_face_det *at) {
    if (rule == PICK_BEST) return vs_faces_best(f);
    if (rule == PICK_CENTRE) return centre_face(f, img);
    int best = -1;
    float bv = 0.3f; /* a copy's face must overlap its expected place */
    if (rule == PICK_AT) {
        for (int k = 0; k < f->n; k++) {
            float v = f->faces[k].embedding ? vs_box_iou(&f->faces[k].det, at) : 0;
            if (v > bv) bv = v, best = k;
        }
        return best;
    }
    int big[2] = {-1, -1};
    for (int k = 0; k < f->n; k++) {
        if (!f->faces[k].embedding) continue;
        float a = f->faces[k].det.w * f->faces[k].det.h;
        if (big[0] < 0 || a > f->faces[big[0]].det.w * f->faces[big[0]].det.h) big[1] = big[0], big[0] = k;
        else if (big[1] < 0 || a > f->faces[big[1]].det.w * f->faces[big[1]].det.h) big[1] = k;
    }
    if (big[1] < 0) return -1; /* a two-face photo where one face was lost */
    int left = f->faces[big[0]].det.x < f->faces[big[1]].det.x ? big[0] : big[1];
    return rule == PICK_LEFT ? left : big[0] + big[1] - left;
}

/* Embeds the face of img chosen by rule (at: where, for PICK_AT) into set
 * face i; 0 when there is none. */
static int embed_face(vs_engine_worker *w, const vs_image *img, face_set *s, int i, vs_face_det *det, pick_rule rule,
                      const vs_face_det *at) {
    vs_faces f = {0};
    vs_error e;
    int ok = 0;
    if (vs_engine_analyze(w, img, VS_ANALYZE_EMBED, &f, &e) == VS_OK) {
        int k = pick_face(&f, img, rule, at);
        if (k >= 0 && f.faces[k].embedding) {
            memcpy(s->emb + (size_t)i * s->dim, f.faces[k].embedding, sizeof(float) * (size_t)s->dim);
            if (det) *det = f.faces[k].det;
            ok = 1;
        }
    }
    vs_faces_free(&f);
    s->found[i] = ok;
    return ok;
}

/* The shared photos README names, one row per face. The two-face photos
 * were labelled by looking at them: Biden left and Obama right in
 * obama_and_biden.jpg, Obama left and Biden right in two_people.jpg, Rose
 * Leslie left and Kit Harington right in kit_with_rose.jpg. The three sizes
 * of obama-*.jpg are one photo (one dup id); each face of a two-face photo
 * has its own dup id. */
static const struct {
    const char *path, *person;
    int photo;
    pick_rule pick;
} shared_photos[] = {
    {"knn_examples/train/obama/obama.jpg", "obama", 0, PICK_BEST},
    {"knn_examples/train/obama/obama2.jpg", "obama", 1, PICK_BEST},
    {"knn_examples/test/obama1.jpg", "obama", 2, PICK_BEST},
    {"obama-1080p.jpg", "obama", 3, PICK_BEST},
    {"obama-240p.jpg", "obama", 3, PICK_BEST},
    {"obama_small.jpg", "obama", 3, PICK_BEST},
    {"test_images/obama3.jpg", "obama", 4, PICK_BEST},
    {"test_images/obama_partial_face.jpg", "obama", 5, PICK_BEST},
    {"knn_examples/test/obama_and_biden.jpg", "obama", 15, PICK_RIGHT},
    {"two_people.jpg", "obama", 16, PICK_LEFT},
    {"knn_examples/train/biden/biden.jpg", "biden", 6, PICK_BEST},
    {"knn_examples/train/biden/biden2.jpg", "biden", 7, PICK_BEST},
    {"knn_examples/test/obama_and_biden.jpg", "biden", 17, PICK_LEFT},
    {"two_people.jpg", "biden", 18, PICK_RIGHT},
    {"knn_examples/train/kit_harington/john1.jpeg", "kit_harington", 8, PICK_BEST},
    {"knn_examples/train/kit_harington/john2.jpeg", "kit_harington", 9, PICK_BEST},
    {"knn_examples/test/johnsnow_test1.jpg", "kit_harington", 10, PICK_BEST},
    {"knn_examples/test/kit_with_rose.jpg", "kit_harington", 19, PICK_RIGHT},
    {"knn_examples/train/rose_leslie/img1.jpg", "rose_leslie", 11, PICK_BEST},
    {"knn_examples/train/rose_leslie/img2.jpg", "rose_leslie", 12, PICK_BEST},
    {"knn_examples/test/kit_with_rose.jpg", "rose_leslie", 20, PICK_LEFT},
    {"knn_examples/train/alex_lacamoire/img1.jpg", "alex_lacamoire", 13, PICK_BEST},
    {"knn_examples/test/alex_lacamoire1.jpg", "alex_lacamoire", 14, PICK_BEST},
};

/* Every shared photo and its augmentations into s (dup = the source photo,
 * offset so it never meets an LFW face's dup). One worker: ~220 faces. */
static void embed_shared(vs_engine *eng, const char *dir, face_set *s) {
    vs_engine_worker *w;
    vs_error e;
    if (vs_engine_worker_new(eng, &w, &e) != VS_OK) bench_fail("people: %s", e.msg);
    int lost = 0;
    for (size_t p = 0; p < sizeof shared_photos / sizeof *shared_photos; p++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, shared_photos[p].path);
        vs_image img = {0};
        if (vs_image_load(path, NULL, &img, &e) != VS_OK) bench_fail("people: %s", e.msg);
        face_set probe = {.dim = s->dim};
        int pi = face_add(&probe, path, "x", 0);
        vs_face_det det;
        if (!embed_face(w, &img, &probe, pi, &det, shared_photos[p].pick, NULL)) {
            fprintf(stderr, "people: no face in %s\n", path);
            face_set_free(&probe);
            vs_image_free(&img);
            continue;
        }
        face_set_free(&probe);
        for (int a = 0; a < N_AUG; a++) {
            vs_image aug = {0};
            vs_face_det at;
            augment(&img, &det, a, &aug, &at);
            char name[2100];
            snprintf(name, sizeof name, "%s#aug%d", shared_photos[p].path, a);
            int i = face_add(s, name, shared_photos[p].person, 1000000 + shared_photos[p].photo);
            if (!embed_face(w, &aug, s, i, NULL, PICK_AT, &at)) {
                lost++;
                s->n--; /* no face in this copy: not a face of the set */
                free(s->name[i]);
            }
            vs_image_free(&aug);
        }
        vs_image_free(&img);
    }
    fprintf(stderr, "people: shared photos: %d faces, %d augmented copies without a face\n", s->n, lost);
    vs_engine_worker_free(w);
}

/* ---- --write-copies: the shared photos' copies as files ------------------ */

static uint64_t fnv64(const uint8_t *b, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* The copies embed_shared measures, written as JPEG (quality 95) files into
 * out, for bench/people_serve.js to ingest through `visage serve`. A copy is
 * written when the detector finds a face at the place augment reports, in the
 * decoded file (what the server will see). out/labels.tsv gets one line per
 * copy: file, person, photo (dup) id, expected box x y w h in the copy's
 * pixels. A copy of a two-face photo that comes out byte-identical for both
 * faces (no crop) is one file with two lines. */
static void write_copies(vs_engine *eng, const char *dir, const char *out) {
    vs_engine_worker *w;
    vs_error e;
    if (vs_engine_worker_new(eng, &w, &e) != VS_OK) bench_fail("people: %s", e.msg);
    if (mkdir(out, 0755) && errno != EEXIST) bench_fail("people: mkdir %s: %s", out, strerror(errno));
    char path[2048];
    snprintf(path, sizeof path, "%s/labels.tsv", out);
    FILE *lf = fopen(path, "w");
    if (!lf) bench_fail("people: cannot write %s", path);
    enum { MAXW = sizeof shared_photos / sizeof *shared_photos * N_AUG };
    struct {
        uint64_t h;
        size_t len;
        char file[64];
    } seen[MAXW];
    int n_seen = 0, labels = 0, lost = 0;
    for (size_t p = 0; p < sizeof shared_photos / sizeof *shared_photos; p++) {
        snprintf(path, sizeof path, "%s/%s", dir, shared_photos[p].path);
        vs_image img = {0};
        if (vs_image_load(path, NULL, &img, &e) != VS_OK) bench_fail("people: %s", e.msg);
        face_set probe = {.dim = vs_engine_embedding_dim(eng)};
        face_add(&probe, path, "x", 0);
        vs_face_det det;
        if (!embed_face(w, &img, &probe, 0, &det, shared_photos[p].pick, NULL)) {
            fprintf(stderr, "people: no face in %s\n", path);
            face_set_free(&probe);
            vs_image_free(&img);
            continue;
        }
        for (int a = 0; a < N_AUG; a++) {
            vs_image aug = {0}, dec = {0};
            vs_face_det at;
            uint8_t *buf;
            size_t len;
            augment(&img, &det, a, &aug, &at);
            if (vs_image_encode_jpeg(&aug, 95, &buf, &len, &e) != VS_OK) bench_fail("people: %s", e.msg);
            if (vs_image_decode(buf, len, NULL, &dec, &e) != VS_OK) bench_fail("people: %s", e.msg);
            if (embed_face(w, &dec, &probe, 0, NULL, PICK_AT, &at)) {
                uint64_t h = fnv64(buf, len);
                int k = 0;
                while (k < n_seen && !(seen[k].h == h && seen[k].len == len)) k++;
                if (k == n_seen) {
                    seen[k].h = h, seen[k].len = len;
                    snprintf(seen[k].file, sizeof seen[k].file, "p%02zu-a%02d.jpg", p, a);
                    snprintf(path, sizeof path, "%s/%s", out, seen[k].file);
                    FILE *f = fopen(path, "wb");
                    if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) bench_fail("people: cannot write %s", path);
                    n_seen++;
                }
                fprintf(lf, "%s\t%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\n", seen[k].file, shared_photos[p].person,
                        shared_photos[p].photo, (double)at.x, (double)at.y, (double)at.w, (double)at.h);
                labels++;
            } else
                lost++;
            vs_free(buf);
            vs_image_free(&dec);
            vs_image_free(&aug);
        }
        face_set_free(&probe);
        vs_image_free(&img);
    }
    if (fclose(lf)) bench_fail("people: cannot write labels.tsv");
    printf("{\"bench\":\"people_write_copies\",\"dir\":\"%s\",\"files\":%d,\"labelled_faces\":%d,"
           "\"copies_without_a_face\":%d}\n", out, n_seen, labels, lost);
    vs_engine_worker_free(w);
}

typedef struct lfw_job {
    vs_engine *eng;
    face_set *s;
    const char *dir;
    int next;
    pthread_mutex_t mu;
} lfw_job;

static void *lfw_worker(void *arg) {
    lfw_job *j = arg;
    vs_engine_worker *w;
    vs_error e;
    if (vs_engine_worker_new(j->eng, &w, &e) != VS_OK) bench_fail("people: %s", e.msg);
    for (;;) {
        pthread_mutex_lock(&j->mu);
        int i = j->next++;
        pthread_mutex_unlock(&j->mu);
        if (i >= j->s->n) break;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", j->dir, j->s->name[i]);
        vs_image img = {0};
        if (vs_image_load(path, NULL, &img, &e) != VS_OK) continue;
        embed_face(w, &img, j->s, i, NULL, PICK_CENTRE, NULL);
        vs_image_free(&img);
    }
    vs_engine_worker_free(w);
    return NULL;
}

/* Reads a pair list's image names into s (person = the name's folder, dup =
 * the image: LFW images are distinct photos). */
static void lfw_list(const char *dir, const char *pairs, face_set *s) {
    char path[2048], line[512];
    snprintf(path, sizeof path, "%s/%s", dir, pairs);
    FILE *f = fopen(path, "r");
    if (!f) bench_fail("people: cannot open %s", path);
    if (!fgets(line, sizeof line, f)) bench_fail("people: %s is empty", path);
    while (fgets(line, sizeof line, f)) {
        char n1[200], n2[200];
        int a, b;
        const char *who[2];
        int num[2];
        if (sscanf(line, "%199s %d %199s %d", n1, &a, n2, &b) == 4) who[0] = n1, num[0] = a, who[1] = n2, num[1] = b;
        else if (sscanf(line, "%199s %d %d", n1, &a, &b) == 3) who[0] = n1, num[0] = a, who[1] = n1, num[1] = b;
        else continue;
        for (int k = 0; k < 2; k++) {
            char rel[512];
            snprintf(rel, sizeof rel, "%s/%s_%04d.jpg", who[k], who[k], num[k]);
            int seen = 0;
            for (int i = s->n - 1; i >= 0 && !seen; i--) seen = !strcmp(s->name[i], rel);
            if (!seen) face_add(s, rel, who[k], s->n);
        }
    }
    fclose(f);
}

/* Cache: n, dim, then per face found + embedding, so a rerun skips ~3 min of
 * embedding. Only valid for the same list (n checked). */
static int cache_load(const char *path, face_set *s) {
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) return 0;
    int hdr[2] = {0}, ok = fread(hdr, sizeof hdr, 1, f) == 1 && hdr[0] == s->n && hdr[1] == s->dim;
    for (int i = 0; ok && i < s->n; i++)
        ok = fread(&s->found[i], sizeof(int), 1, f) == 1 &&
             fread(s->emb + (size_t)i * s->dim, sizeof(float) * (size_t)s->dim, 1, f) == 1;
    fclose(f);
    return ok;
}

static void cache_save(const char *path, const face_set *s) {
    FILE *f = path ? fopen(path, "wb") : NULL;
    if (!f) return;
    int hdr[2] = {s->n, s->dim};
    fwrite(hdr, sizeof hdr, 1, f);
    for (int i = 0; i < s->n; i++) {
        fwrite(&s->found[i], sizeof(int), 1, f);
        fwrite(s->emb + (size_t)i * s->dim, sizeof(float) * (size_t)s->dim, 1, f);
    }
    fclose(f);
}

static void embed_lfw(vs_engine *eng, const char *dir, const char *pairs, const char *cache, int threads,
                      face_set *s) {
    lfw_list(dir, pairs, s);
    if (cache_load(cache, s)) return;
    lfw_job j = {eng, s, dir, 0, PTHREAD_MUTEX_INITIALIZER};
    pthread_t th[16];
    if (threads < 1) threads = 1;
    if (threads > 16) threads = 16;
    double t0 = bench_now_ms();
    for (int k = 0; k < threads; k++) pthread_create(&th[k], NULL, lfw_worker, &j);
    for (int k = 0; k < threads; k++) pthread_join(th[k], NULL);
    fprintf(stderr, "people: embedded %d LFW images in %.0f s\n", s->n, (bench_now_ms() - t0) / 1000);
    cache_save(cache, s);
}

/* Drops faces without an embedding (the detector missed): they are not faces. */
static void keep_found(face_set *s) {
    int w = 0;
    for (int i = 0; i < s->n; i++) {
        if (!s->found[i]) {
            free(s->name[i]);
            continue;
        }
        memmove(s->emb + (size_t)w * s->dim, s->emb + (size_t)i * s->dim, sizeof(float) * (size_t)s->dim);
        s->truth[w] = s->truth[i], s->dup[w] = s->dup[i], s->found[w] = 1, s->name[w] = s->name[i];
        w++;
    }
    s->n = w;
}

/* ---- real faces: thresholds ---------------------------------------------- */

static double dotf(const float *a, const float *b, int dim) {
    double s = 0;
    for (int d = 0; d < dim; d++) s += (double)a[d] * b[d];
    return s;
}

/* Leave-one-out centroid similarities: each face of a person with >= 3
 * faces against the mean of that person's other faces (same), and against
 * the mean of every other person with >= 2 faces (different), at most cap
 * of each (arrays the caller frees). The rate of "different" at or above t
 * is the chance a wrong candidate person passes the centroid check. */
static void centroid_sims(const face_set *s, size_t cap, float **same, size_t *ns, float **diff, size_t *nd) {
    int dim = s->dim, nt = s->n_truth;
    double *sum = xcalloc((size_t)nt * dim, sizeof *sum), *c = xcalloc((size_t)dim, sizeof *c);
    int *cnt = xcalloc((size_t)nt, sizeof *cnt);
    for (int i = 0; i < s->n; i++) {
        cnt[s->truth[i]]++;
        for (int d = 0; d < dim; d++) sum[(size_t)s->truth[i] * dim + d] += s->emb[(size_t)i * dim + d];
    }
    *same = xcalloc(cap, sizeof **same), *diff = xcalloc(cap, sizeof **diff);
    *ns = *nd = 0;
    for (int i = 0; i < s->n; i++) {
        const float *v = s->emb + (size_t)i * dim;
        for (int t = 0; t < nt; t++) {
            int own = t == s->truth[i];
            if (cnt[t] < (own ? 3 : 2)) continue;
            double n2 = 0, dot = 0;
            for (int d = 0; d < dim; d++) {
                c[d] = sum[(size_t)t * dim + d] - (own ? v[d] : 0);
                n2 += c[d] * c[d];
                dot += c[d] * v[d];
            }
            float cs = (float)(dot / sqrt(n2));
            if (own && *ns < cap) (*same)[(*ns)++] = cs;
            else if (!own && *nd < cap) (*diff)[(*nd)++] = cs;
        }
    }
    free(sum), free(c), free(cnt);
}

/* The centroid check's pass rates at fixed join_sim values. */
static void centroid_table(const face_set *s) {
    size_t ns, nd;
    float *same, *diff;
    centroid_sims(s, 1 << 20, &same, &ns, &diff, &nd);
    printf("{\"bench\":\"people_centroid_table\",\"same\":%zu,\"diff\":%zu,\"rows\":[", ns, nd);
    float ts[] = {0.90f, 0.92f, 0.925f, 0.93f, 0.935f, 0.94f, 0.945f, 0.95f};
    for (size_t k = 0; k < sizeof ts / sizeof *ts; k++) {
        size_t a = 0, b = 0;
        for (size_t i = 0; i < ns; i++) a += same[i] >= ts[k];
        for (size_t i = 0; i < nd; i++) b += diff[i] >= ts[k];
        printf("%s{\"join_sim\":%.3f,\"true_join\":%.4f,\"false_join_per_candidate\":%.5f}", k ? "," : "",
               (double)ts[k], ns ? (double)a / ns : 0, nd ? (double)b / nd : 0);
    }
    double mx = -1;
    for (size_t i = 0; i < nd; i++) mx = diff[i] > mx ? diff[i] : mx;
    printf("],\"max_diff\":%.4f}\n", mx);
    free(same), free(diff);
}

/* Pair table from the pair list itself (the same pairs bench_lfw scores). */
static void pair_table(const face_set *s) {
    size_t ns = 0, nd = 0, cap = 1 << 22;
    float *same = xcalloc(cap, sizeof *same), *diff = xcalloc(cap, sizeof *diff);
    for (int i = 0; i < s->n; i++)
        for (int j = i + 1; j < s->n; j++) {
            float d = (float)dotf(s->emb + (size_t)i * s->dim, s->emb + (size_t)j * s->dim, s->dim);
            if (s->truth[i] == s->truth[j]) {
                if (ns < cap) same[ns++] = d;
            } else if (nd < cap) diff[nd++] = d;
        }
    printf("{\"bench\":\"people_pair_table\",\"note\":\"all pairs of the set's faces\",\"same\":%zu,\"diff\":%zu,"
           "\"rows\":[", ns, nd);
    float ts[] = {0.903f, 0.91f, 0.92f, 0.925f, 0.929f, 0.935f, 0.94f};
    for (size_t k = 0; k < sizeof ts / sizeof *ts; k++) {
        size_t a = 0, b = 0;
        for (size_t i = 0; i < ns; i++) a += same[i] >= ts[k];
        for (size_t i = 0; i < nd; i++) b += diff[i] >= ts[k];
        printf("%s{\"sim\":%.3f,\"tar\":%.4f,\"fmr\":%.6f}", k ? "," : "", (double)ts[k], ns ? (double)a / ns : 0,
               nd ? (double)b / nd : 0);
    }
    printf("]}\n");
    free(same), free(diff);
}

/* assign_range with exact neighbours (the real sets are small). */
typedef struct simdup {
    float sim;
    int dup;
} simdup;

static int cmp_simdup_desc(const void *a, const void *b) {
    float x = ((const simdup *)a)->sim, y = ((const simdup *)b)->sim;
    return (x < y) - (x > y);
}

/* Similarity of face i's k-th nearest other photo among faces [0, n)
 * (dup NULL: every face its own photo); -2 when there are fewer. */
static float exact_background(const float *v, int dim, int n, int i, const int *dup, int k, simdup *buf) {
    int m = 0;
    for (int j = 0; j < n; j++)
        if (j != i && (!dup || dup[j] != dup[i]))
            buf[m++] = (simdup){(float)dotf(v + (size_t)i * dim, v + (size_t)j * dim, dim), dup ? dup[j] : j};
    qsort(buf, (size_t)m, sizeof *buf, cmp_simdup_desc);
    int photos = 0;
    for (int t = 0; t < m; t++) {
        int seen = 0;
        for (int u = 0; u < t && !seen; u++) seen = buf[u].dup == buf[t].dup;
        if (!seen && ++photos == k) return buf[t].sim;
    }
    return -2;
}

static void exact_assign(const vs_cluster_cfg *c, const float *v, int dim, int lo, int hi, int *label,
                         const int *truth, const int *dup, people *pp, const int *maj, int *joined, int *right) {
    vs_cluster_vote *votes = xcalloc((size_t)c->vote_k, sizeof *votes);
    simdup *buf = xcalloc((size_t)hi, sizeof *buf);
    for (int i = lo; i < hi; i++) {
        if (label[i] >= 0) continue;
        int m = 0;
        for (int j = 0; j < hi; j++) {
            if (label[j] < 0 || j == i) continue;
            float d = (float)dotf(v + (size_t)i * dim, v + (size_t)j * dim, dim);
            if (m == c->vote_k && !(d > votes[m - 1].sim)) continue;
            int p = m < c->vote_k ? m++ : c->vote_k - 1;
            while (p > 0 && d > votes[p - 1].sim) votes[p] = votes[p - 1], p--;
            votes[p] = (vs_cluster_vote){label[j], d};
        }
        pp->face = v + (size_t)i * dim;
        float bg = exact_background(v, dim, hi, i, dup, c->knn_k, buf);
        int who = vs_cluster_assign_local(c, votes, m, bg, centroid_sim, pp);
        if (who >= 0) {
            label[i] = who;
            people_add(pp, who, pp->face);
            (*joined)++;
            *right += maj[who] == truth[i];
        }
    }
    free(buf);
    free(votes);
}

/* People that are one person (vs_cluster_merge_target): each person of
 * [0, n) found so far, smallest first, asks its photos where they would go
 * without it; a merge moves its faces and its centroid sum. */
static void merge_pass(const vs_cluster_cfg *c, const float *v, int dim, int n, int *label, const int *dup,
                       people *pp, const int *maj, int *merged, int *right) {
    int np = pp->n;
    int *size = xcalloc((size_t)np + 1, sizeof *size), *order = xcalloc((size_t)np + 1, sizeof *order);
    int *choice = xcalloc((size_t)n + 1, sizeof *choice);
    vs_cluster_vote *votes = xcalloc((size_t)c->vote_k, sizeof *votes);
    simdup *buf = xcalloc((size_t)n, sizeof *buf);
    for (int i = 0; i < n; i++)
        if (label[i] >= 0) size[label[i]]++;
    for (int a = 0; a < np; a++) order[a] = a;
    for (int a = 1; a < np; a++) /* smallest first: a fragment joins the bulk, not the other way round */
        for (int b = a; b > 0 && size[order[b]] < size[order[b - 1]]; b--) {
            int t = order[b];
            order[b] = order[b - 1], order[b - 1] = t;
        }
    for (int o = 0; o < np; o++) {
        int a = order[o], m = 0;
        if (size[a] == 0) continue;
        for (int i = 0; i < n; i++) {
            if (label[i] != a) continue;
            int copy = 0;
            for (int j = 0; j < i && dup && !copy; j++) copy = label[j] == a && dup[j] == dup[i];
            if (copy) continue;
            int k = 0;
            for (int j = 0; j < n; j++) {
                if (label[j] < 0 || label[j] == a || j == i) continue;
                float d = (float)dotf(v + (size_t)i * dim, v + (size_t)j * dim, dim);
                if (k == c->vote_k && !(d > votes[k - 1].sim)) continue;
                int p = k < c->vote_k ? k++ : c->vote_k - 1;
                while (p > 0 && d > votes[p - 1].sim) votes[p] = votes[p - 1], p--;
                votes[p] = (vs_cluster_vote){label[j], d};
            }
            pp->face = v + (size_t)i * dim;
            float bg = exact_background(v, dim, n, i, dup, c->knn_k, buf);
            choice[m++] = vs_cluster_assign_local(c, votes, k, bg, centroid_sim, pp);
        }
        int to = vs_cluster_merge_target(c, choice, m);
        if (to < 0) continue;
        (*merged)++;
        *right += maj[to] == maj[a];
        for (int i = 0; i < n; i++)
            if (label[i] == a) label[i] = to;
        for (int d = 0; d < dim; d++) pp->sum[(size_t)to * dim + d] += pp->sum[(size_t)a * dim + d];
        memset(pp->sum + (size_t)a * dim, 0, sizeof *pp->sum * (size_t)dim);
        size[to] += size[a], size[a] = 0;
    }
    free(size), free(order), free(choice), free(votes), free(buf);
}

static void dump_final(const face_set *s, const int *order, const int *truth, const int *label, int n);

/* Batch over 80 % of the set, the other 20 % one by one (exact kNN: the sets
 * are small), printed under `what`. dup NULL: every face its own photo. */
static void real_run(const char *what, const vs_cluster_cfg *c, const face_set *s, int use_dup) {
    int n = s->n, n_batch = n - n / 5, dim = s->dim;
    /* interleave deterministically so the incremental 20 % is a sample, not a tail */
    int *order = xcalloc((size_t)n, sizeof *order);
    uint64_t r = 77;
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(bench_rnd(&r) % (uint64_t)(i + 1)), t = order[i];
        order[i] = order[j], order[j] = t;
    }
    float *v = xcalloc((size_t)n * dim, sizeof *v);
    int *truth = xcalloc((size_t)n, sizeof *truth), *dup = xcalloc((size_t)n, sizeof *dup);
    for (int i = 0; i < n; i++) {
        memcpy(v + (size_t)i * dim, s->emb + (size_t)order[i] * dim, sizeof *v * (size_t)dim);
        truth[i] = s->truth[order[i]];
        dup[i] = s->dup[order[i]];
    }
    knn_table t; /* rows longer than knn_k: the batch asks for more when a face has copies */
    knn_exact_table(v, n_batch, dim, 5 * c->knn_k, &t);
    int *label = xcalloc((size_t)n, sizeof *label), np = 0;
    double ms;
    quality q = run_batch(c, &t, use_dup ? dup : NULL, truth, s->n_truth, label, &np, &ms);
    quality qall = q;
    /* the batch alone over all n, for comparison with the incremental path */
    knn_table ta;
    knn_exact_table(v, n, dim, 5 * c->knn_k, &ta);
    int *label_all = xcalloc((size_t)n, sizeof *label_all), np_all = 0;
    double ms_all;
    qall = run_batch(c, &ta, use_dup ? dup : NULL, truth, s->n_truth, label_all, &np_all, &ms_all);
    if (use_dup && getenv("PEOPLE_DUMP")) { /* debugging aid: face, truth, batch label */
        FILE *f = fopen(getenv("PEOPLE_DUMP"), "w");
        for (int i = 0; f && i < n; i++) fprintf(f, "%s\t%d\t%d\n", s->name[order[i]], truth[i], label_all[i]);
        if (f) fclose(f);
    }
    /* the server's bulk flow (a tenant's first batch over every face): the batch over all, then attach */
    people pall;
    people_init(&pall, dim, np_all, v, label_all, n);
    int *maj_all = majority_truth(label_all, truth, n, np_all);
    int att_all = 0, att_all_right = 0;
    exact_assign(c, v, dim, 0, n, label_all, truth, use_dup ? dup : NULL, &pall, maj_all, &att_all, &att_all_right);
    quality qall_att = measure(n, label_all, truth, s->n_truth, c->min_faces);
    int mg_all = 0, mg_all_right = 0;
    merge_pass(c, v, dim, n, label_all, use_dup ? dup : NULL, &pall, maj_all, &mg_all, &mg_all_right);
    quality qall_merge = measure(n, label_all, truth, s->n_truth, c->min_faces);
    free(maj_all), free(pall.sum);
    /* attach the batch's noise, then the other 20 %: brute-force neighbours among assigned faces */
    for (int i = n_batch; i < n; i++) label[i] = -1;
    people pp;
    people_init(&pp, dim, np, v, label, n_batch);
    int *maj = majority_truth(label, truth, n_batch, np);
    int att[2] = {0}, att_right[2] = {0};
    exact_assign(c, v, dim, 0, n_batch, label, truth, use_dup ? dup : NULL, &pp, maj, &att[0], &att_right[0]);
    quality qt = measure(n_batch, label, truth, s->n_truth, c->min_faces);
    int mg = 0, mg_right = 0;
    if (!getenv("PEOPLE_NO_MERGE")) merge_pass(c, v, dim, n_batch, label, use_dup ? dup : NULL, &pp, maj, &mg, &mg_right);
    exact_assign(c, v, dim, n_batch, n, label, truth, use_dup ? dup : NULL, &pp, maj, &att[1], &att_right[1]);
    int joined = att[1], right = att_right[1];
    quality qa = measure(n, label, truth, s->n_truth, c->min_faces);
    if (use_dup && getenv("PEOPLE_DUMP_FINAL")) dump_final(s, order, truth, label, n);
    printf("{\"bench\":\"people_real\",\"set\":\"%s\",\"faces\":%d,\"people_truth\":%d,\"dup\":%s,\"link_sim\":%.3f,"
           "\"knn_k\":%d,\"min_faces\":%d,\"join_sim\":%.3f,\"vote_k\":%d,\"vote_frac\":%.2f,\"contrast\":%.3f,",
           what, n, s->n_truth, use_dup ? "\"source photo\"" : "null", (double)c->link_sim, c->knn_k, c->min_faces,
           (double)c->join_sim, c->vote_k, (double)c->vote_frac, (double)c->contrast);
    print_quality("batch_all", &qall);
    printf(",\"attach_all\":{\"joined\":%d,\"joined_right\":%d},", att_all, att_all_right);
    print_quality("batch_all_attach", &qall_att);
    printf(",\"merge_all\":{\"merged\":%d,\"merged_right\":%d},", mg_all, mg_all_right);
    print_quality("batch_all_merge", &qall_merge);
    printf(",");
    print_quality("batch_80pct", &q);
    printf(",\"attach\":{\"joined\":%d,\"joined_right\":%d},", att[0], att_right[0]);
    print_quality("after_attach", &qt);
    printf(",\"merge\":{\"merged\":%d,\"merged_right\":%d}", mg, mg_right);
    printf(",\"incremental\":{\"faces\":%d,\"joined\":%d,\"joined_right\":%d},", n - n_batch, joined, right);
    print_quality("after_incremental", &qa);
    printf("}\n");
    fflush(stdout);
    free(order), free(v), free(truth), free(dup), free(label), free(label_all), free(maj), free(pp.sum);
    knn_table_free(&t);
    knn_table_free(&ta);
}

/* Appends src's faces to dst (their truth ids re-mapped by name). */
static void face_set_append(face_set *dst, const face_set *src) {
    for (int i = 0; i < src->n; i++) {
        int k = face_add(dst, src->name[i], src->truth_name[src->truth[i]], src->dup[i]);
        memcpy(dst->emb + (size_t)k * dst->dim, src->emb + (size_t)i * src->dim, sizeof(float) * (size_t)dst->dim);
        dst->found[k] = src->found[i];
    }
}

/* Link sweep on a real set: same runs, one line per link_sim. */
static void real_sweep(const char *what, const vs_cluster_cfg *c, const face_set *s, int use_dup) {
    float links[] = {0.929f, 0.935f, 0.94f, 0.945f, 0.95f, 0.955f, 0.96f};
    for (size_t a = 0; a < sizeof links / sizeof *links; a++) {
        vs_cluster_cfg x = *c;
        x.link_sim = links[a];
        real_run(what, &x, s, use_dup);
    }
}


/* ---- experiments (branch people-lfw-experiments) -------------------------- */

/* Centring (--centre): the set's mean embedding is subtracted from every
 * face and the result re-normalised. dlib embeddings lie in a narrow cone, so
 * the mean of many different faces sits close to everyone (the "average face"
 * effect); centring takes that common part out. Prints the mean's norm and a
 * digest so two sets' means can be compared. */
static float centre_alpha = 1; /* --centre-alpha: share of the mean taken out */

static void centre_set(face_set *s, const char *what, int project) {
    int dim = s->dim;
    double *m = xcalloc((size_t)dim, sizeof *m), n2 = 0;
    for (int i = 0; i < s->n; i++)
        for (int d = 0; d < dim; d++) m[d] += s->emb[(size_t)i * dim + d];
    for (int d = 0; d < dim; d++) m[d] /= s->n ? s->n : 1, n2 += m[d] * m[d];
    double mean_cos = 0;
    for (int i = 0; i < s->n; i++) {
        float *v = s->emb + (size_t)i * dim;
        double dot = 0, vn = 0;
        for (int d = 0; d < dim; d++) dot += v[d] * m[d];
        mean_cos += dot / sqrt(n2);
        /* project: take out the whole component along the mean (not only the mean itself) */
        double a = project == 1 ? dot / n2 : centre_alpha;
        for (int d = 0; d < dim; d++) v[d] = (float)(v[d] - a * m[d]), vn += (double)v[d] * v[d];
        vn = sqrt(vn);
        if (project < 2) /* 2: --centre-raw, the shifted vectors as they are (dot = x.y - x.m - y.m + |m|^2) */
            for (int d = 0; d < dim; d++) v[d] = vn > 0 ? (float)(v[d] / vn) : 0;
    }
    printf("{\"bench\":\"people_centre\",\"mode\":\"%s\",\"set\":\"%s\",\"faces\":%d,\"mean_norm\":%.4f,\"mean_cos_to_mean\":%.4f,"
           "\"alpha\":%.2f,\"mean_head\":[%.4f,%.4f,%.4f,%.4f]}\n",
           project == 2 ? "subtract, not re-normalised" : project ? "project" : "subtract", what, s->n, sqrt(n2), s->n ? mean_cos / s->n : 0, (double)centre_alpha, m[0], m[1], m[2], m[3]);
    free(m);
}

static int cmp_float_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* Pair similarities as quantiles: the threshold at which the different-person
 * pairs' false-match rate is 1e-2 .. 1e-5, and the same-person pairs' TAR
 * there (thresholds move under --centre, so a fixed table says little). */
static void pair_quantiles(const face_set *s) {
    size_t ns = 0, nd = 0, cap = (size_t)s->n * (s->n - 1) / 2 + 1;
    float *same = xcalloc(cap, sizeof *same), *diff = xcalloc(cap, sizeof *diff);
    for (int i = 0; i < s->n; i++)
        for (int j = i + 1; j < s->n; j++) {
            float d = (float)dotf(s->emb + (size_t)i * s->dim, s->emb + (size_t)j * s->dim, s->dim);
            if (s->truth[i] == s->truth[j]) same[ns++] = d;
            else diff[nd++] = d;
        }
    qsort(diff, nd, sizeof *diff, cmp_float_desc);
    qsort(same, ns, sizeof *same, cmp_float_desc);
    double mean_s = 0, mean_d = 0;
    for (size_t i = 0; i < ns; i++) mean_s += same[i];
    for (size_t i = 0; i < nd; i++) mean_d += diff[i];
    printf("{\"bench\":\"people_pair_quantiles\",\"same\":%zu,\"diff\":%zu,\"mean_same\":%.4f,\"mean_diff\":%.4f,"
           "\"rows\":[", ns, nd, ns ? mean_s / ns : 0, nd ? mean_d / nd : 0);
    double fmrs[] = {1e-2, 1e-3, 1e-4, 1e-5};
    for (size_t k = 0; k < sizeof fmrs / sizeof *fmrs; k++) {
        size_t at = (size_t)(fmrs[k] * nd);
        float t = nd ? diff[at < nd ? at : nd - 1] : 0;
        size_t a = 0;
        for (size_t i = 0; i < ns; i++) a += same[i] > t;
        printf("%s{\"fmr\":%g,\"sim\":%.4f,\"tar\":%.4f}", k ? "," : "", fmrs[k], (double)t, ns ? (double)a / ns : 0);
    }
    printf("],\"max_diff\":%.4f}\n", nd ? (double)diff[0] : 0);
    free(same), free(diff);
}

/* centroid_table as quantiles (for --centre, where the fixed thresholds say
 * little): the join_sim at which a wrong candidate person passes at a given
 * rate, and the share of true members that pass there. */
static void centroid_quantiles(const face_set *s) {
    size_t ns, nd;
    float *same, *diff;
    centroid_sims(s, (size_t)s->n * s->n_truth + 1, &same, &ns, &diff, &nd);
    qsort(diff, nd, sizeof *diff, cmp_float_desc);
    printf("{\"bench\":\"people_centroid_quantiles\",\"same\":%zu,\"diff\":%zu,\"rows\":[", ns, nd);
    double rates[] = {1e-3, 5e-4, 1.9e-4, 1e-4, 5e-5};
    for (size_t k = 0; k < sizeof rates / sizeof *rates; k++) {
        size_t at = (size_t)(rates[k] * nd);
        float t = nd ? diff[at < nd ? at : nd - 1] : 0;
        size_t a = 0;
        for (size_t i = 0; i < ns; i++) a += same[i] > t;
        printf("%s{\"false_join_per_candidate\":%g,\"join_sim\":%.4f,\"true_join\":%.4f}", k ? "," : "", rates[k],
               (double)t, ns ? (double)a / ns : 0);
    }
    printf("]}\n");
    free(same), free(diff);
}

/* --sims-of NAME: the faces nearest to each face whose name contains NAME
 * (names and similarities), to see who a look-alike is close to. */
static void sims_of(const face_set *s, const char *name) {
    simdup *buf = xcalloc((size_t)s->n, sizeof *buf);
    for (int i = 0; i < s->n; i++) {
        if (!strstr(s->name[i], name)) continue;
        int m = 0;
        for (int j = 0; j < s->n; j++)
            if (j != i) buf[m++] = (simdup){(float)dotf(s->emb + (size_t)i * s->dim, s->emb + (size_t)j * s->dim, s->dim), j};
        qsort(buf, (size_t)m, sizeof *buf, cmp_simdup_desc);
        printf("{\"bench\":\"people_sims_of\",\"face\":\"%s\",\"nearest\":[", s->name[i]);
        for (int k = 0; k < 12 && k < m; k++)
            printf("%s{\"face\":\"%s\",\"sim\":%.4f}", k ? "," : "", s->name[buf[k].dup], (double)buf[k].sim);
        float bg = exact_background(s->emb, s->dim, s->n, i, s->dup, 10, buf);
        printf("],\"background_k10\":%.4f}\n", (double)bg);
    }
    free(buf);
}

/* Comma-separated floats into out (at most max); returns how many. */
static int parse_list(const char *v, float *out, int max) {
    int m = 0;
    char *dup = strdup(v), *save = NULL;
    for (char *t = strtok_r(dup, ",", &save); t && m < max; t = strtok_r(NULL, ",", &save)) out[m++] = (float)atof(t);
    free(dup);
    return m;
}

/* Grid of real_run over lists of settings (--links --joins --vote-ks
 * --vote-fracs --contrasts); an empty list keeps c's value. */
typedef struct grid {
    float link[16], join[16], vk[16], vf[16], ct[16];
    int nl, nj, nvk, nvf, nct;
} grid;

static int grid_used(const grid *g) { return g->nl || g->nj || g->nvk || g->nvf || g->nct; }

static void real_grid(const char *what, const vs_cluster_cfg *c, const face_set *s, const grid *g) {
    int nl = g->nl ? g->nl : 1, nj = g->nj ? g->nj : 1, nvk = g->nvk ? g->nvk : 1, nvf = g->nvf ? g->nvf : 1,
        nct = g->nct ? g->nct : 1;
    for (int a = 0; a < nl; a++)
        for (int b = 0; b < nj; b++)
            for (int k = 0; k < nvk; k++)
                for (int f = 0; f < nvf; f++)
                    for (int q = 0; q < nct; q++) {
                        vs_cluster_cfg x = *c;
                        if (g->nl) x.link_sim = g->link[a];
                        if (g->nj) x.join_sim = g->join[b];
                        if (g->nvk) x.vote_k = (int)g->vk[k];
                        if (g->nvf) x.vote_frac = g->vf[f];
                        if (g->nct) x.contrast = g->ct[q];
                        real_run(what, &x, s, 1);
                    }
}

/* PEOPLE_DUMP_FINAL=FILE: each face's name, truth and label after attach +
 * incremental (PEOPLE_DUMP has the batch's). */
static void dump_final(const face_set *s, const int *order, const int *truth, const int *label, int n) {
    FILE *f = fopen(getenv("PEOPLE_DUMP_FINAL"), "w");
    for (int i = 0; f && i < n; i++) fprintf(f, "%s\t%d\t%d\n", s->name[order[i]], truth[i], label[i]);
    if (f) fclose(f);
}

int main(int argc, char **argv) {
    int n_syn = 0, threads = 2, sweep = 0, centre = 0, quantiles = 0;
    grid g = {0};
    const char *sims_name = NULL;
    const char *lfw = NULL, *pairs = "pairsDevTest.txt", *faces = NULL, *cache = NULL, *models = NULL, *copies = NULL;
    vs_cluster_cfg c;
    vs_cluster_cfg_default(&c);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--sweep")) {
            sweep = 1;
            continue;
        }
        if (!strcmp(a, "--centre") || !strcmp(a, "--centre-project") || !strcmp(a, "--centre-raw")) {
            centre = !strcmp(a, "--centre") ? 1 : !strcmp(a, "--centre-project") ? 2 : 3;
            continue;
        }
        if (!strcmp(a, "--quantiles")) {
            quantiles = 1;
            continue;
        }
        if (!v) bench_fail("people: %s needs a value", a);
        if (!strcmp(a, "--synthetic")) n_syn = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--lfw")) lfw = v;
        else if (!strcmp(a, "--pairs")) pairs = v;
        else if (!strcmp(a, "--faces")) faces = v;
        else if (!strcmp(a, "--cache")) cache = v;
        else if (!strcmp(a, "--models")) models = v;
        else if (!strcmp(a, "--write-copies")) copies = v;
        else if (!strcmp(a, "--link-sim")) c.link_sim = (float)atof(v);
        else if (!strcmp(a, "--join-sim")) c.join_sim = (float)atof(v);
        else if (!strcmp(a, "--knn-k")) c.knn_k = atoi(v);
        else if (!strcmp(a, "--vote-k")) c.vote_k = atoi(v);
        else if (!strcmp(a, "--vote-frac")) c.vote_frac = (float)atof(v);
        else if (!strcmp(a, "--min-faces")) c.min_faces = atoi(v);
        else if (!strcmp(a, "--contrast")) c.contrast = (float)atof(v);
        else if (!strcmp(a, "--centre-alpha")) centre_alpha = (float)atof(v);
        else if (!strcmp(a, "--sims-of")) sims_name = v;
        else if (!strcmp(a, "--links")) g.nl = parse_list(v, g.link, 16);
        else if (!strcmp(a, "--joins")) g.nj = parse_list(v, g.join, 16);
        else if (!strcmp(a, "--vote-ks")) g.nvk = parse_list(v, g.vk, 16);
        else if (!strcmp(a, "--vote-fracs")) g.nvf = parse_list(v, g.vf, 16);
        else if (!strcmp(a, "--contrasts")) g.nct = parse_list(v, g.ct, 16);
        else bench_fail("usage: bench_people [--synthetic N [--sweep]] [--lfw DIR --pairs FILE [--cache FILE]] "
                 "[--faces DIR [--write-copies OUT]] [--threads N] [--link-sim X] [--join-sim X] [--knn-k K] [--vote-k K] ...");
        i++;
    }
    if (n_syn > 0) synthetic(n_syn, threads, sweep, &c);
    if (!lfw && !faces) return 0;
    vs_engine_cfg ec;
    vs_engine_cfg_default(&ec);
    if (models) ec.models_dir = models;
    vs_engine *eng;
    vs_error e;
    if (vs_engine_load(&ec, &eng, &e) != VS_OK) bench_fail("people: %s", e.msg);
    if (faces && copies) { /* the copies as files, nothing clustered */
        write_copies(eng, faces, copies);
        vs_engine_free(eng);
        return 0;
    }
    int dim = vs_engine_embedding_dim(eng);
    face_set ls = {.dim = dim}, ss = {.dim = dim};
    if (lfw) {
        embed_lfw(eng, lfw, pairs, cache, threads, &ls);
        keep_found(&ls);
        if (centre) centre_set(&ls, pairs, centre - 1);
        if (!faces) {
            pair_table(&ls);
            if (centre || quantiles) pair_quantiles(&ls), centroid_quantiles(&ls);
            if (sims_name) sims_of(&ls, sims_name);
            centroid_table(&ls);
            if (grid_used(&g)) real_grid(pairs, &c, &ls, &g);
            else if (sweep) real_sweep(pairs, &c, &ls, 1);
            else real_run(pairs, &c, &ls, 1);
        }
    }
    if (faces) {
        embed_shared(eng, faces, &ss);
        keep_found(&ss);
        real_run("shared+aug", &c, &ss, 1);
        real_run("shared+aug", &c, &ss, 0);
        if (lfw) {
            face_set mix = {.dim = dim};
            face_set_append(&mix, &ss);
            face_set_append(&mix, &ls);
            if (sweep) real_sweep("shared+aug+lfw", &c, &mix, 1);
            real_run("shared+aug+lfw", &c, &mix, 1);
            real_run("shared+aug+lfw", &c, &mix, 0);
            face_set_free(&mix);
        }
    }
    face_set_free(&ls);
    face_set_free(&ss);
    vs_engine_free(eng);
    return 0;
}
