/* vs_cluster.c - faces into people: DBSCAN over the mutual kNN graph for
 * batches, a neighbour vote checked by the centroid for one new face.
 *
 * Tuned to a tenant's faces: 10^3..10^6 embeddings of dim 128, many people
 * seen once or twice (they stay noise), a few seen often. The costly error is
 * merging two real people, so every rule leans to "not yet" over "join":
 * edges must be mutual kNN, above link_sim, above the faces' local
 * background (contrast) and share a neighbour; persons need min_faces
 * distinct photos; a new face needs two agreeing votes and the centroid. */
#include "vs_cluster.h"

#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"

#define VS_CLUSTER_K_MAX 1024    /* knn_k bound: scratch is n * k */
#define VS_CLUSTER_VOTE_MAX 256  /* vote_k bound: the tally lives on the stack */
#define VS_CLUSTER_MIN_VOTES 2   /* votes the winner needs (fewer only when vote_k is smaller) */

/* Defaults from the measurements in docs/people.md (dlib embedder, LFW
 * DevTrain for the thresholds, bench/people.c for k and the vote). */
void vs_cluster_cfg_default(vs_cluster_cfg *c) {
    c->link_sim = 0.95f;  /* DevTrain clustering (with contrast): batch pairwise precision 0.993 */
    c->min_faces = 3;     /* the default */
    c->knn_k = 10;        /* synthetic 100k: 16 lets people merge (precision 0.96), 10 keeps 0.997 */
    c->join_sim = 0.945f; /* DevTrain centroids: 2e-4 false joins per candidate, 94 % true joins */
    c->vote_k = 8;        /* not tuned: a majority of the nearest 8 */
    c->vote_frac = 0.75f; /* not tuned */
    c->contrast = 0.02f;  /* DevTrain: batch precision 0.73 -> 0.993 at link 0.95 */
}

/* Checked once at the edge, so the passes below trust the numbers. */
static vs_err vs_cluster_check_cfg(const vs_cluster_cfg *c, vs_error *err) {
    if (!c) return vs_fail(err, VS_ERR_INVALID_ARG, "cluster: no config");
    if (!(c->link_sim >= -1.0f && c->link_sim <= 1.0f))
        return vs_fail(err, VS_ERR_INVALID_ARG, "cluster: link_sim %g not in [-1, 1]", (double)c->link_sim);
    if (!(c->contrast >= 0.0f && c->contrast <= 1.0f))
        return vs_fail(err, VS_ERR_INVALID_ARG, "cluster: contrast %g not in [0, 1]", (double)c->contrast);
    if (c->min_faces < 1) return vs_fail(err, VS_ERR_INVALID_ARG, "cluster: min_faces %d < 1", c->min_faces);
    if (c->knn_k < 1 || c->knn_k > VS_CLUSTER_K_MAX)
        return vs_fail(err, VS_ERR_INVALID_ARG, "cluster: knn_k %d not in [1, %d]", c->knn_k, VS_CLUSTER_K_MAX);
    return VS_OK;
}

/* Scratch of one batch run, freed together by vs_cluster_scratch_free. */
typedef struct vs_cluster_scratch {
    int n, kmax;    /* faces; the longest row */
    size_t *off;    /* n + 1: row i is [off[i], off[i+1]) of nbr and sim */
    int *nbr;       /* neighbour indexes, rows compacted to cnt[i] edges */
    float *sim;     /* their similarities */
    int *cnt;       /* n: entries (then edges) per row */
    float *bg;      /* n: similarity of the k-th nearest other photo (-2: row not full) */
    unsigned char *core;
    int *parent;    /* n: union-find over cores; then each face's root or -1 */
} vs_cluster_scratch;

static void vs_cluster_scratch_free(vs_cluster_scratch *s) {
    vs_free(s->off);
    vs_free(s->nbr);
    vs_free(s->sim);
    vs_free(s->cnt);
    vs_free(s->core);
    vs_free(s->bg);
    vs_free(s->parent);
}

static int vs_cluster_cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Row lengths: knn_k; with dup ids, room for the face's own copies (up to
 * 4 * knn_k of them) and 2 * knn_k more for copies among the neighbours. A
 * photo posted 13 times would otherwise fill every list near it with its
 * copies, and the person's other photos, the only evidence that counts,
 * would never be seen. */
static vs_err vs_cluster_offsets(vs_cluster_scratch *s, const int *dup, int k, vs_error *err) {
    int n = s->n;
    s->off = vs_calloc((size_t)n + 1, sizeof *s->off);
    if (!s->off) return vs_fail(err, VS_ERR_NOMEM, "cluster: row offsets of %d faces", n);
    int *sorted = NULL;
    if (dup) {
        sorted = vs_malloc(sizeof *sorted * (size_t)n);
        if (!sorted) return vs_fail(err, VS_ERR_NOMEM, "cluster: dup ids of %d faces", n);
        memcpy(sorted, dup, sizeof *sorted * (size_t)n);
        qsort(sorted, (size_t)n, sizeof *sorted, vs_cluster_cmp_int);
    }
    s->kmax = k;
    for (int i = 0; i < n; i++) {
        int row = k;
        if (sorted) {
            /* faces sharing i's dup id: a range of the sorted copy */
            int lo = 0, hi = n;
            while (lo < hi) {
                int mid = lo + (hi - lo) / 2;
                if (sorted[mid] < dup[i]) lo = mid + 1;
                else hi = mid;
            }
            int end = lo;
            while (end < n && sorted[end] == dup[i] && end - lo <= 4 * k) end++;
            row += end - lo - 1 + 2 * k; /* and for copies of other photos, see vs_cluster_fill */
        }
        if (row > s->kmax) s->kmax = row;
        s->off[i + 1] = s->off[i] + (size_t)row;
    }
    vs_free(sorted);
    return VS_OK;
}

/* One allocation failure message for all the scratch arrays. */
static vs_err vs_cluster_scratch_new(vs_cluster_scratch *s, int n, int k, const int *dup, vs_error *err) {
    memset(s, 0, sizeof *s);
    s->n = n;
    size_t nk;
    if (!vs_mul_size((size_t)n, (size_t)k * 5, &nk)) return vs_fail(err, VS_ERR_TOO_LARGE, "cluster: n * knn_k overflows");
    vs_err rc = vs_cluster_offsets(s, dup, k, err);
    if (rc != VS_OK) {
        vs_cluster_scratch_free(s);
        return rc;
    }
    nk = s->off[n];
    s->nbr = vs_calloc(nk, sizeof *s->nbr);
    s->sim = vs_calloc(nk, sizeof *s->sim);
    s->cnt = vs_calloc((size_t)n, sizeof *s->cnt);
    s->core = vs_calloc((size_t)n, 1);
    s->bg = vs_calloc((size_t)n, sizeof *s->bg);
    s->parent = vs_calloc((size_t)n, sizeof *s->parent);
    if (!s->nbr || !s->sim || !s->cnt || !s->core || !s->bg || !s->parent) {
        vs_cluster_scratch_free(s);
        return vs_fail(err, VS_ERR_NOMEM, "cluster: scratch for %d faces x %d neighbours", n, k);
    }
    return VS_OK;
}

/* 1 when photo id would be the (k+1)-th distinct one of the row (the row is
 * full); else records it. Rows hold k photos, so a scan is enough. */
static int vs_cluster_row_full(int *seen, int *m, int k, int id) {
    for (int t = 0; t < *m; t++)
        if (seen[t] == id) return 0;
    if (*m == k) return 1;
    seen[(*m)++] = id;
    return 0;
}

/* Asks knn for every face and keeps only the entries that can be edges
 * (another face of the batch, similarity >= link_sim): the graph is sparse
 * from here on. With dup ids a row ends after knn_k distinct photos other
 * than the face's own, so "the k nearest" means k photos, not k copies. A
 * knn error stops the batch, it is not noise. seen holds knn_k ints. */
static vs_err vs_cluster_fill(vs_cluster_scratch *s, int k, float link_sim, const int *dup, vs_cluster_knn_fn knn,
                              void *ctx, int *seen, vs_error *err) {
    for (int i = 0; i < s->n; i++) {
        int *nb = s->nbr + s->off[i];
        float *sm = s->sim + s->off[i];
        int row = (int)(s->off[i + 1] - s->off[i]);
        int m = knn(ctx, i, row, nb, sm);
        if (m < 0) return vs_fail(err, VS_ERR_BACKEND, "cluster: neighbours of face %d: error %d", i, m);
        if (m > row) m = row;
        int w = 0, photos = 0, others = 0;
        float last = -2;
        for (int j = 0; j < m; j++) {
            if (nb[j] < 0 || nb[j] >= s->n || nb[j] == i) continue;
            int before = photos;
            if (dup && dup[nb[j]] != dup[i] && vs_cluster_row_full(seen, &photos, k, dup[nb[j]])) break;
            if (!dup && others == k) break;
            if (dup ? photos > before : 1) last = sm[j], others++; /* a new photo: the background so far */
            if (!(sm[j] >= link_sim)) continue;
            nb[w] = nb[j];
            sm[w++] = sm[j];
        }
        s->cnt[i] = w;
        s->bg[i] = (dup ? photos : others) >= k ? last : -2;
    }
    return VS_OK;
}

static void vs_cluster_compact(vs_cluster_scratch *s);

/* The bar a face's background sets: background + margin, but only when the
 * background is a stranger-level similarity (< link_sim). When even the
 * k-th nearest photo is >= link_sim the face sits among many photos of one
 * person (or a crowd that dense): there is no stranger in the row to
 * measure against, and raising the bar would only break up people seen
 * more than knn_k times (synthetic 100k: recall 0.95 -> 0.22). */
static float vs_cluster_lift(float bg, float link_sim, float margin) {
    return bg > -2.0f && bg < link_sim ? bg + margin : -2.0f;
}

/* Local contrast: an edge must beat both faces' background (the k-th
 * nearest other photo) by margin (cfg contrast). Where the embedder crowds many
 * different people together (LFW: East Asian faces, see docs/people.md) the
 * background is high and so is the bar; where faces spread out, link_sim
 * alone decides. A face whose row is not full has no background. */
static void vs_cluster_contrast(vs_cluster_scratch *s, float link_sim, float margin) {
    int n = s->n;
    for (int i = 0; i < n; i++) {
        int *nb = s->nbr + s->off[i];
        const float *sm = s->sim + s->off[i];
        float li = vs_cluster_lift(s->bg[i], link_sim, margin);
        for (int t = 0; t < s->cnt[i]; t++) {
            float lj = vs_cluster_lift(s->bg[nb[t]], link_sim, margin);
            if (sm[t] < (li > lj ? li : lj)) nb[t] += n;
        }
    }
    vs_cluster_compact(s);
}

/* 1 when j's row names i. Rows hold at most kmax entries: O(kmax). */
static int vs_cluster_row_has(const vs_cluster_scratch *s, int j, int i) {
    const int *nb = s->nbr + s->off[j];
    for (int t = 0; t < s->cnt[j]; t++)
        if (nb[t] == i) return 1;
    return 0;
}

/* Drops rows' entries marked as index + n by a pass over the rows. */
static void vs_cluster_compact(vs_cluster_scratch *s) {
    for (int i = 0; i < s->n; i++) {
        int *nb = s->nbr + s->off[i];
        float *sm = s->sim + s->off[i];
        int w = 0;
        for (int t = 0; t < s->cnt[i]; t++) {
            if (nb[t] >= s->n) continue;
            nb[w] = nb[t];
            sm[w++] = sm[t];
        }
        s->cnt[i] = w;
    }
}

/* Size of the intersection of two ascending rows. */
static int vs_cluster_common(const int *a, int na, const int *b, int nb) {
    int i = 0, j = 0, c = 0;
    while (i < na && j < nb) {
        if (a[i] < b[j]) i++;
        else if (b[j] < a[i]) j++;
        else c++, i++, j++;
    }
    return c;
}

/* Keeps an edge i-j only when i and j share >= need neighbours (shared
 * nearest neighbours, Jarvis-Patrick). Mutual kNN alone still lets two
 * people seen a few times each link when both lists are half strangers:
 * the bench showed one such edge is enough for single-link DBSCAN to chain
 * hundreds of people together. Faces of one person share their mates; two
 * look-alikes share little. Rows are copied sorted so each test is O(k). */
static vs_err vs_cluster_shared(vs_cluster_scratch *s, int need, vs_error *err) {
    if (need <= 0) return VS_OK;
    int n = s->n;
    int *srt = vs_malloc(sizeof *srt * (s->off[n] ? s->off[n] : 1));
    if (!srt) return vs_fail(err, VS_ERR_NOMEM, "cluster: sorted rows of %d faces", n);
    for (int i = 0; i < n; i++) {
        memcpy(srt + s->off[i], s->nbr + s->off[i], sizeof *srt * (size_t)s->cnt[i]);
        qsort(srt + s->off[i], (size_t)s->cnt[i], sizeof *srt, vs_cluster_cmp_int);
    }
    for (int i = 0; i < n; i++) {
        int *nb = s->nbr + s->off[i];
        for (int t = 0; t < s->cnt[i]; t++) {
            int j = nb[t];
            if (vs_cluster_common(srt + s->off[i], s->cnt[i], srt + s->off[j], s->cnt[j]) < need) nb[t] = j + n;
        }
    }
    vs_free(srt);
    vs_cluster_compact(s);
    return VS_OK;
}

/* Keeps only mutual edges (i lists j and j lists i). A face of someone seen
 * once still has k nearest strangers above link_sim in a large tenant, but
 * those strangers have their own mates nearer, so they do not list it back:
 * mutuality is what keeps look-alikes out without a higher threshold. A
 * dropped entry is marked in place as index + n (no n*k flag array), so the
 * check of a later row still sees it, then the rows are compacted. */
static void vs_cluster_mutual(vs_cluster_scratch *s) {
    int n = s->n;
    for (int i = 0; i < n; i++) {
        int *nb = s->nbr + s->off[i];
        for (int t = 0; t < s->cnt[i]; t++) {
            int j = nb[t];
            if (!vs_cluster_row_has(s, j, i) && !vs_cluster_row_has(s, j, i + n)) nb[t] = j + n;
        }
    }
    vs_cluster_compact(s);
}


/* Distinct dup ids among face i and its edges: re-posts of one photo are one
 * piece of evidence, not three. buf holds kmax + 1 ints. */
static int vs_cluster_distinct(const vs_cluster_scratch *s, const int *dup, int i, int *buf) {
    if (!dup) return 1 + s->cnt[i];
    const int *nb = s->nbr + s->off[i];
    int m = 0;
    buf[m++] = dup[i];
    for (int t = 0; t < s->cnt[i]; t++) buf[m++] = dup[nb[t]];
    qsort(buf, (size_t)m, sizeof *buf, vs_cluster_cmp_int);
    int d = 1;
    for (int t = 1; t < m; t++) d += buf[t] != buf[t - 1];
    return d;
}

/* Union-find root with path halving. */
static int vs_cluster_find(int *parent, int x) {
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

/* Joins two sets under the lower root, so roots (and labels) do not depend on
 * the order edges are met. */
static void vs_cluster_union(int *parent, int a, int b) {
    a = vs_cluster_find(parent, a);
    b = vs_cluster_find(parent, b);
    if (a < b) parent[b] = a;
    else if (b < a) parent[a] = b;
}

/* DBSCAN proper: cores from the dup-aware count, cores linked by edges form
 * one set (density-reachability), and a border face joins its most similar
 * core. Afterwards parent[i] is i's root, or -1 for noise. */
static vs_err vs_cluster_dbscan(vs_cluster_scratch *s, const int *dup, int min_faces, vs_error *err) {
    int n = s->n;
    int *buf = vs_malloc(sizeof *buf * (size_t)(s->kmax + 1));
    if (!buf) return vs_fail(err, VS_ERR_NOMEM, "cluster: dup scratch");
    for (int i = 0; i < n; i++) {
        s->core[i] = vs_cluster_distinct(s, dup, i, buf) >= min_faces;
        s->parent[i] = i;
    }
    vs_free(buf);
    for (int i = 0; i < n; i++) {
        if (!s->core[i]) continue;
        const int *nb = s->nbr + s->off[i];
        for (int t = 0; t < s->cnt[i]; t++)
            if (s->core[nb[t]]) vs_cluster_union(s->parent, i, nb[t]);
    }
    /* roots of cores first (a border face's parent is still itself) */
    int *root = vs_malloc(sizeof *root * (size_t)(n ? n : 1));
    if (!root) return vs_fail(err, VS_ERR_NOMEM, "cluster: roots of %d faces", n);
    for (int i = 0; i < n; i++) root[i] = s->core[i] ? vs_cluster_find(s->parent, i) : -1;
    for (int i = 0; i < n; i++) {
        if (s->core[i]) continue;
        const int *nb = s->nbr + s->off[i];
        const float *sm = s->sim + s->off[i];
        int best = -1;
        for (int t = 0; t < s->cnt[i]; t++)
            if (s->core[nb[t]] && (best < 0 || sm[t] > sm[best] || (sm[t] == sm[best] && nb[t] < nb[best]))) best = t;
        root[i] = best < 0 ? -1 : root[nb[best]];
    }
    memcpy(s->parent, root, sizeof *root * (size_t)n);
    vs_free(root);
    return VS_OK;
}

typedef struct vs_cluster_pair {
    int root, dup;
} vs_cluster_pair;

static int vs_cluster_cmp_pair(const void *a, const void *b) {
    const vs_cluster_pair *x = a, *y = b;
    if (x->root != y->root) return (x->root > y->root) - (x->root < y->root);
    return (x->dup > y->dup) - (x->dup < y->dup);
}

/* A border face may have gone to a more similar core elsewhere, so a set can
 * end with fewer than min_faces distinct photos: such a set is dissolved to
 * noise (a person is never made of one photo posted three times). Sorting
 * (root, dup) pairs counts distinct photos per set in O(n log n). */
static vs_err vs_cluster_enforce_min(vs_cluster_scratch *s, const int *dup, int min_faces, vs_error *err) {
    int n = s->n, m = 0;
    vs_cluster_pair *p = vs_malloc(sizeof *p * (size_t)(n ? n : 1));
    if (!p) return vs_fail(err, VS_ERR_NOMEM, "cluster: member pairs of %d faces", n);
    for (int i = 0; i < n; i++)
        if (s->parent[i] >= 0) p[m++] = (vs_cluster_pair){s->parent[i], dup ? dup[i] : i};
    qsort(p, (size_t)m, sizeof *p, vs_cluster_cmp_pair);
    /* s->cnt is free now: reuse it as "distinct photos of the set rooted here" */
    memset(s->cnt, 0, sizeof *s->cnt * (size_t)n);
    for (int t = 0; t < m; t++)
        if (t == 0 || p[t].root != p[t - 1].root || p[t].dup != p[t - 1].dup) s->cnt[p[t].root]++;
    vs_free(p);
    for (int i = 0; i < n; i++)
        if (s->parent[i] >= 0 && s->cnt[s->parent[i]] < min_faces) s->parent[i] = -1;
    return VS_OK;
}

/* Labels 0.. in order of each person's lowest face index: deterministic. */
static int vs_cluster_number(vs_cluster_scratch *s, int *labels) {
    int next = 0;
    for (int i = 0; i < s->n; i++) s->cnt[i] = -1;
    for (int i = 0; i < s->n; i++) {
        int r = s->parent[i];
        if (r < 0) {
            labels[i] = -1;
            continue;
        }
        if (s->cnt[r] < 0) s->cnt[r] = next++;
        labels[i] = s->cnt[r];
    }
    return next;
}

/* The passes in order; one cleanup path. */
vs_err vs_cluster_batch(int n, const vs_cluster_cfg *c, vs_cluster_knn_fn knn, void *ctx, const int *dup,
                        int *labels, int *n_clusters, vs_error *err) {
    vs_err rc = vs_cluster_check_cfg(c, err);
    if (rc != VS_OK) return rc;
    if (n < 0 || !knn || (n > 0 && !labels) || !n_clusters)
        return vs_fail(err, VS_ERR_INVALID_ARG, "cluster: n %d, knn, labels and n_clusters are required", n);
    *n_clusters = 0;
    if (n == 0) return VS_OK;
    vs_cluster_scratch s;
    rc = vs_cluster_scratch_new(&s, n, c->knn_k, dup, err);
    if (rc != VS_OK) return rc;
    int *seen = vs_malloc(sizeof *seen * (size_t)c->knn_k);
    if (!seen) {
        rc = vs_fail(err, VS_ERR_NOMEM, "cluster: row scratch");
        goto out;
    }
    rc = vs_cluster_fill(&s, c->knn_k, c->link_sim, dup, knn, ctx, seen, err);
    vs_free(seen);
    if (rc != VS_OK) goto out;
    if (c->contrast > 0) vs_cluster_contrast(&s, c->link_sim, c->contrast);
    vs_cluster_mutual(&s);
    rc = vs_cluster_shared(&s, c->min_faces - 2, err);
    if (rc != VS_OK) goto out;
    rc = vs_cluster_dbscan(&s, dup, c->min_faces, err);
    if (rc != VS_OK) goto out;
    rc = vs_cluster_enforce_min(&s, dup, c->min_faces, err);
    if (rc != VS_OK) goto out;
    *n_clusters = vs_cluster_number(&s, labels);
out:
    vs_cluster_scratch_free(&s);
    return rc;
}

/* Brute force: every dot product, the best k kept by insertion (k is small,
 * so a sorted array beats a heap). Ties go to the lower index. */
int vs_cluster_knn_exact(void *ctx, int i, int k, int *nbr, float *sim) {
    const vs_cluster_exact *x = ctx;
    if (!x || !x->vecs || i < 0 || i >= x->n || k < 0 || x->dim < 1) return -1;
    const float *q = x->vecs + (size_t)i * x->dim;
    int m = 0;
    for (int j = 0; j < x->n && k > 0; j++) {
        if (j == i) continue;
        const float *v = x->vecs + (size_t)j * x->dim;
        float d = 0;
        for (int t = 0; t < x->dim; t++) d += q[t] * v[t];
        if (m == k && !(d > sim[m - 1])) continue;
        int p = m < k ? m++ : k - 1;
        while (p > 0 && d > sim[p - 1]) {
            sim[p] = sim[p - 1];
            nbr[p] = nbr[p - 1];
            p--;
        }
        sim[p] = d;
        nbr[p] = j;
    }
    return m;
}

/* Vote, then centroid: the vote says the face's nearest known faces agree on
 * one person (a look-alike of a single member wins no majority), the
 * centroid says the face fits the person as a whole (a vote among a few
 * borderline neighbours is not enough). */
int vs_cluster_assign(const vs_cluster_cfg *c, const vs_cluster_vote *nbrs, int n_nbrs,
                      int (*centroid_sim)(void *ctx, int person, float *sim), void *ctx) {
    return vs_cluster_assign_local(c, nbrs, n_nbrs, -2.0f, centroid_sim, ctx);
}

/* The vote with the batch's local contrast: a neighbour votes only when it
 * beats the face's background by cfg contrast, so in a crowded region
 * of the embedding the bar rises as it does for batch edges. */
int vs_cluster_assign_local(const vs_cluster_cfg *c, const vs_cluster_vote *nbrs, int n_nbrs, float background,
                            int (*centroid_sim)(void *ctx, int person, float *sim), void *ctx) {
    if (!c || !nbrs || n_nbrs <= 0 || !centroid_sim) return -1;
    float lift = c->contrast > 0 ? vs_cluster_lift(background, c->link_sim, c->contrast) : -2.0f;
    float bar = lift > c->link_sim ? lift : c->link_sim;
    int k = c->vote_k < n_nbrs ? c->vote_k : n_nbrs;
    if (k > VS_CLUSTER_VOTE_MAX) k = VS_CLUSTER_VOTE_MAX;
    int who[VS_CLUSTER_VOTE_MAX], votes[VS_CLUSTER_VOTE_MAX], m = 0, total = 0;
    float sum[VS_CLUSTER_VOTE_MAX];
    for (int t = 0; t < k; t++) {
        if (nbrs[t].person < 0 || !(nbrs[t].sim >= bar)) continue;
        int p = 0;
        while (p < m && who[p] != nbrs[t].person) p++;
        if (p == m) {
            who[m] = nbrs[t].person;
            votes[m] = 0;
            sum[m++] = 0;
        }
        votes[p]++;
        sum[p] += nbrs[t].sim;
        total++;
    }
    if (total == 0) return -1;
    int best = 0;
    for (int p = 1; p < m; p++)
        if (votes[p] > votes[best] || (votes[p] == votes[best] && (sum[p] > sum[best] ||
                                                                   (sum[p] == sum[best] && who[p] < who[best]))))
            best = p;
    /* two faces of the person must agree: one look-alike is not evidence */
    int need = k < VS_CLUSTER_MIN_VOTES ? k : VS_CLUSTER_MIN_VOTES;
    if (votes[best] < need || (float)votes[best] < c->vote_frac * (float)total) return -1;
    float cs;
    if (centroid_sim(ctx, who[best], &cs) != 0 || !(cs >= c->join_sim)) return -1;
    return who[best];
}

/* A plurality count over n small ints: n is a person's size, so the
 * O(n * distinct) scan is fine and needs no scratch beyond two arrays. */
int vs_cluster_merge_target(const vs_cluster_cfg *c, const int *choice, int n) {
    if (!c || !choice || n <= 0) return -1;
    int best = -1, best_votes = 0;
    for (int i = 0; i < n; i++) {
        if (choice[i] < 0) continue;
        int seen = 0, votes = 0;
        for (int j = 0; j < i && !seen; j++) seen = choice[j] == choice[i];
        if (seen) continue;
        for (int j = i; j < n; j++) votes += choice[j] == choice[i];
        if (votes > best_votes || (votes == best_votes && choice[i] < best)) best = choice[i], best_votes = votes;
    }
    int need = c->min_faces > 1 ? c->min_faces : 1;
    if (best < 0 || best_votes < need || (float)best_votes < c->vote_frac * (float)n) return -1;
    return best;
}
