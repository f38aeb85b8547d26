/* vs_cluster.h - faces grouped into people (issue 14): a pure algorithm, no
 * I/O, no index. The caller supplies nearest neighbours (from its HNSW graph,
 * or vs_cluster_knn_exact for small batches) and keeps the person table.
 *
 * Two entry points:
 *   - vs_cluster_assign_local (vs_cluster_assign without a background): one
 *     new face joins an existing person when a vote of its nearest assigned
 *     faces AND the person's centroid both say so;
 *   - vs_cluster_batch: the faces that joined no one are grouped by DBSCAN
 *     over their k-nearest-neighbour graph, O(n * knn_k) after the kNN lists.
 *
 * The intended use, and what bench/people.c measures: run the batch over the
 * unassigned faces, then pass the batch's noise once through
 * vs_cluster_assign_local (the "attach" pass: the batch is strict on purpose, and
 * a face it left out joins a person only when its neighbours and the
 * centroid agree), then assign each new face as it is indexed.
 *
 * Similarities are cosines of L2-normalised embeddings (dot products). The
 * defaults are measured for the dlib embedder: docs/people.md says where each
 * comes from. No globals, no threads: the caller may run batches of different
 * tenants concurrently. */
#ifndef VS_CLUSTER_H
#define VS_CLUSTER_H

#include "vs_err.h"

typedef struct vs_cluster_cfg {
    float link_sim;     /* DBSCAN: two faces are neighbours when similarity >= link_sim */
    int   min_faces;    /* a person needs this many distinct faces (default 3) */
    int   knn_k;        /* neighbours looked at per face in the graph (measured default 10) */
    float join_sim;     /* incremental: similarity to the person's centroid needed to join */
    int   vote_k;       /* incremental: nearest assigned neighbours that vote */
    float vote_frac;    /* incremental: share of the votes (of those >= link_sim) the person needs */
    float contrast;     /* added after measuring (docs/people.md): an edge or a vote must also beat
                         * the face's background (its knn_k-th nearest other photo) by this much;
                         * 0 = off. Keeps look-alike crowds apart (only where the background is
                         * below link_sim, so people seen often are not broken up) */
} vs_cluster_cfg;

/* The measured defaults for the dlib embedder (docs/people.md). */
void vs_cluster_cfg_default(vs_cluster_cfg *c);

/* The k nearest faces of face i among the batch (excluding i), best first:
 * writes up to k (index, similarity) pairs, returns how many (<0 = error). */
typedef int (*vs_cluster_knn_fn)(void *ctx, int i, int k, int *nbr, float *sim);

/* DBSCAN over the kNN graph of n faces: labels[i] = 0..*n_clusters-1, or -1
 * (noise: joins no one yet). dup[i] (may be NULL): faces with the same dup id
 * count once toward min_faces. Not quadratic: O(n * knn_k) given knn.
 *
 * Edges: i-j when j is in i's list and i in j's (mutual kNN), similarity
 * >= link_sim and >= both faces' background + contrast (see
 * vs_cluster_assign_local), and the two share >= min_faces - 2 other
 * neighbours (shared nearest neighbours: a thin chain of look-alikes does not
 * link two people). With dup ids, a row holds knn_k distinct photos (the
 * batch asks knn for longer rows when copies are about). A face is a core
 * when it and its edges span >= min_faces distinct dup ids; cores joined by an edge are one person (single link
 * among cores, the DBSCAN rule); a non-core face with an edge to a core
 * joins the core it is most similar to; a person left with fewer than
 * min_faces distinct dup ids is dissolved to noise. Labels are numbered by
 * the lowest face index of each person, so the same input gives the same
 * labels. labels[n] and the kNN calls are the caller's; scratch is
 * O(n * knn_k) and freed on every path. */
vs_err vs_cluster_batch(int n, const vs_cluster_cfg *c, vs_cluster_knn_fn knn, void *ctx, const int *dup,
                        int *labels, int *n_clusters, vs_error *err);

/* Exact knn over an array of n vectors (dim floats each), for tests and
 * small batches: ctx is a vs_cluster_exact. O(n * dim) per call. */
typedef struct vs_cluster_exact {
    const float *vecs;
    int n, dim;
} vs_cluster_exact;
int vs_cluster_knn_exact(void *ctx, int i, int k, int *nbr, float *sim);

/* Incremental assignment of one new face: its nearest already-assigned faces
 * (person id of each, similarity, best first) and, per candidate person, the
 * similarity of the face to that person's centroid (cosine with the mean of
 * the member vectors; centroid_sim returns 0 on success, non-zero when it
 * cannot tell): returns the person id it joins, or -1. person ids are
 * caller-defined non-negative ints.
 *
 * Rule: of the first vote_k neighbours, those with similarity >= link_sim
 * vote for their person; the person with most votes (ties: higher summed
 * similarity, then lower id) must hold >= vote_frac of them and at least 2
 * (min(2, vote_k)): one look-alike is not evidence; and the face's
 * centroid similarity to it must be >= join_sim. No vote: -1. */
typedef struct vs_cluster_vote {
    int person;
    float sim;
} vs_cluster_vote;
int vs_cluster_assign(const vs_cluster_cfg *c, const vs_cluster_vote *nbrs, int n_nbrs,
                      int (*centroid_sim)(void *ctx, int person, float *sim), void *ctx);

/* Local contrast (measured on LFW DevTrain, docs/people.md): where the
 * embedder crowds different people together, a face's nearest strangers are
 * as close as a person's own photos are elsewhere. vs_cluster_assign with
 * the batch's contrast: background is the similarity of the new face's
 * knn_k-th nearest other photo among ALL the tenant's faces (assigned or
 * not: the caller's unfiltered search), and a neighbour votes only at >=
 * max(link_sim, background + contrast). No lift when background >= link_sim
 * (the face is among many photos of someone: no stranger to compare with)
 * or background < -1 (unknown: fewer than knn_k other photos): then it is
 * vs_cluster_assign. What the server should call; bench/people.c does. */
int vs_cluster_assign_local(const vs_cluster_cfg *c, const vs_cluster_vote *nbrs, int n_nbrs, float background,
                            int (*centroid_sim)(void *ctx, int person, float *sim), void *ctx);

/* People that are one person: a batch can split someone in two (two dense
 * parts with no edge between them, measured on the shared photos: Obama
 * came out as two people), and a batch can form a second person beside
 * one that exists. Each member of a new person is asked, as a new face
 * would be, which person it would join if its own person did not exist
 * (vs_cluster_assign_local with its own person's neighbours left out):
 * choice[i] = that person or -1, one choice per distinct photo (copies of
 * one photo are one opinion). The new person merges into the person at
 * least vote_frac of its n photos chose, with at least min_faces of them
 * choosing it (a merge is the costly error: a few look-alike members are
 * not enough). Returns that person, or -1. */
int vs_cluster_merge_target(const vs_cluster_cfg *c, const int *choice, int n);

#endif
