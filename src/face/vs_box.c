/* vs_box.c - IoU and (weighted) non-maximum suppression of face detections.
 * Tuned for the detector's few hundred candidates per pass: O(n^2) in place,
 * no scratch memory, so it cannot fail. */
#include "vs_box.h"

#include <math.h>
#include <stdlib.h>

/* Overlap of two axis-aligned boxes; the "same face?" test of NMS. */
float vs_box_iou(const vs_face_det *a, const vs_face_det *b) {
    if (!(a->w > 0.0f && a->h > 0.0f && b->w > 0.0f && b->h > 0.0f))
        return 0.0f;
    float ix0 = fmaxf(a->x, b->x), iy0 = fmaxf(a->y, b->y);
    float ix1 = fminf(a->x + a->w, b->x + b->w);
    float iy1 = fminf(a->y + a->h, b->y + b->h);
    float iw = ix1 - ix0, ih = iy1 - iy0;
    if (!(iw > 0.0f && ih > 0.0f))
        return 0.0f;
    float inter = iw * ih;
    float uni = a->w * a->h + b->w * b->h - inter;
    return uni > 0.0f ? inter / uni : 0.0f;
}

/* qsort order: higher score first; NaN scores sort last so they are never the
 * seed of a cluster ahead of a real detection. */
static int cmp_score_desc(const void *pa, const void *pb) {
    float a = ((const vs_face_det *)pa)->score, b = ((const vs_face_det *)pb)->score;
    int na = isnan(a), nb = isnan(b);
    if (na || nb)
        return na - nb;
    return (a < b) - (a > b);
}

/* Clamps a keypoint count to the array bounds, so a garbage n_kp cannot make
 * the averaging read or write past kp[6]. */
static int kp_count(int n_kp) {
    return n_kp < 0 ? 0 : n_kp > VS_KP_MAX ? VS_KP_MAX : n_kp;
}

/* Greedy NMS in place (see vs_box.h); weighted mode averages each cluster
 * because BlazeFace's neighbouring anchors jitter, and their mean is a
 * steadier box and keypoint set than the single best anchor. */
int vs_nms(vs_face_det *dets, int n, float iou_threshold, int weighted) {
    if (!dets || n <= 0)
        return 0;
    qsort(dets, (size_t)n, sizeof *dets, cmp_score_desc);

    /* dets[0..kept) are final; dets[kept..n) are the remaining candidates,
     * still sorted. Each round takes dets[kept] as the seed, folds the
     * candidates overlapping it into the cluster sums and compacts the rest
     * (order preserved) right behind it. */
    int kept = 0;
    while (kept < n) {
        const vs_face_det seed = dets[kept];
        int nk = kp_count(seed.n_kp);
        double wsum = 0.0, bx = 0.0, by = 0.0, bw = 0.0, bh = 0.0;
        double kx[VS_KP_MAX] = {0}, ky[VS_KP_MAX] = {0};
        float best = seed.score;
        int write = kept + 1;
        for (int j = kept; j < n; j++) {
            const vs_face_det *d = &dets[j];
            int in_cluster = (j == kept) || vs_box_iou(&seed, d) > iou_threshold;
            if (!in_cluster) {
                if (write != j)
                    dets[write] = *d;
                write++;
                continue;
            }
            if (weighted) {
                double w = d->score > 0.0f ? (double)d->score : 0.0;
                wsum += w;
                bx += w * d->x;
                by += w * d->y;
                bw += w * d->w;
                bh += w * d->h;
                /* A member with fewer keypoints contributes the seed's. */
                int dk = kp_count(d->n_kp);
                for (int k = 0; k < nk; k++) {
                    const float *p = k < dk ? d->kp[k] : seed.kp[k];
                    kx[k] += w * p[0];
                    ky[k] += w * p[1];
                }
                if (d->score > best)
                    best = d->score;
            }
        }
        vs_face_det *out = &dets[kept];
        *out = seed;
        if (weighted && wsum > 0.0) {
            out->x = (float)(bx / wsum);
            out->y = (float)(by / wsum);
            out->w = (float)(bw / wsum);
            out->h = (float)(bh / wsum);
            for (int k = 0; k < nk; k++) {
                out->kp[k][0] = (float)(kx[k] / wsum);
                out->kp[k][1] = (float)(ky[k] / wsum);
            }
            out->score = best;
        }
        n = write;
        kept++;
    }
    return kept;
}
