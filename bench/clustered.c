/* clustered.c - writes bench/clustered.h's synthetic face embeddings to a
 * file that bench/peers.py reads, so our index and the peers see the same
 * numbers, and prints their same/different-person cosine distributions.
 *
 *   build/bench_clustered --points N [--dim 128] [--queries 1000] [--seed S] [--out FILE]
 *                         [--w-global X] [--w-person X] [--w-noise X] [--alpha X] [--noise-spread X]
 *
 * File (little-endian): "VSCL", u32 version 1, u32 points, u32 queries,
 * u32 dim, u32 people; float32 points*dim; int32 person[points];
 * float32 queries*dim; int32 query_person[queries]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clustered.h"

/* Prints a message and exits 1. */
static void die(const char *msg) {
    fprintf(stderr, "bench_clustered: %s\n", msg);
    exit(1);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double dotf(const float *a, const float *b, int dim) {
    double s = 0;
    for (int d = 0; d < dim; d++) s += (double)a[d] * b[d];
    return s;
}

/* Prints mean, sd and percentiles of x[n] (sorted here) as a JSON object. */
static void print_stats(const char *name, double *x, int64_t n) {
    if (n == 0) {
        printf("\"%s\":{\"n\":0}", name);
        return;
    }
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    double m = 0, v = 0;
    for (int64_t i = 0; i < n; i++) m += x[i];
    m /= (double)n;
    for (int64_t i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
#define PCT(p) x[(int64_t)((p) / 100.0 * (double)(n - 1))]
    printf("\"%s\":{\"n\":%lld,\"mean\":%.4f,\"sd\":%.4f,\"p1\":%.4f,\"p5\":%.4f,\"p50\":%.4f,\"p95\":%.4f,\"p99\":%.4f}",
           name, (long long)n, m, sqrt(v / (double)n), PCT(1), PCT(5), PCT(50), PCT(95), PCT(99));
#undef PCT
}

/* Same-person cosines (pairs of a query and its mates in the base set, plus
 * base pairs found by scanning a window) and different-person cosines of
 * random base pairs; bounded counts so 1M points stay quick. */
static void print_distributions(const bench_clustered_params *p, const float *v, const int32_t *who, int64_t n,
                                int32_t people) {
    enum { CAP = 200000 };
    double *same = malloc(CAP * sizeof *same), *diff = malloc(CAP * sizeof *diff);
    if (!same || !diff) die("out of memory for the distributions");
    int64_t ns = 0, nd = 0;
    uint64_t s = 12345;
    int64_t window = n < 20000 ? n : 20000; /* pairs within the first points: O(window^2) bounded */
    for (int64_t i = 0; i < window && ns < CAP; i++)
        for (int64_t j = i + 1; j < window && ns < CAP; j++)
            if (who[i] == who[j]) same[ns++] = dotf(v + i * p->dim, v + j * p->dim, p->dim);
    while (nd < CAP) {
        int64_t i = (int64_t)(bench_cl_next(&s) % (uint64_t)n), j = (int64_t)(bench_cl_next(&s) % (uint64_t)n);
        if (who[i] != who[j]) diff[nd++] = dotf(v + i * p->dim, v + j * p->dim, p->dim);
    }
    printf("{\"bench\":\"clustered\",\"points\":%lld,\"dim\":%d,\"people\":%d,\"w_global\":%.3f,\"w_person\":%.3f,"
           "\"w_noise\":%.3f,\"alpha\":%.3f,\"noise_spread\":%.3f,\"max_faces\":%d,",
           (long long)n, p->dim, people, p->w_global, p->w_person, p->w_noise, p->alpha, p->noise_spread, p->max_faces);
    print_stats("same", same, ns);
    putchar(',');
    print_stats("diff", diff, nd);
    printf("}\n");
    free(same);
    free(diff);
}

/* Writes the file; returns 0 or dies naming the file. */
static void write_file(const char *path, const bench_clustered_params *p, const float *v, const int32_t *who, int64_t n,
                       const float *qv, const int32_t *qwho, int64_t q, int32_t people) {
    FILE *f = fopen(path, "wb");
    if (!f) die("cannot open the --out file");
    uint32_t h[5] = {1, (uint32_t)n, (uint32_t)q, (uint32_t)p->dim, (uint32_t)people};
    int ok = fwrite("VSCL", 1, 4, f) == 4 && fwrite(h, sizeof h, 1, f) == 1 &&
             fwrite(v, sizeof *v * (size_t)p->dim, (size_t)n, f) == (size_t)n && fwrite(who, sizeof *who, (size_t)n, f) == (size_t)n &&
             fwrite(qv, sizeof *qv * (size_t)p->dim, (size_t)q, f) == (size_t)q && fwrite(qwho, sizeof *qwho, (size_t)q, f) == (size_t)q;
    if (fclose(f) != 0 || !ok) die("writing the --out file failed");
}

int main(int argc, char **argv) {
    int64_t n = 100000, q = 1000;
    const char *out = NULL;
    bench_clustered_params p = bench_clustered_defaults(128);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) die("every option takes a value");
        if (!strcmp(a, "--points")) n = atoll(v);
        else if (!strcmp(a, "--queries")) q = atoll(v);
        else if (!strcmp(a, "--dim")) p.dim = atoi(v);
        else if (!strcmp(a, "--seed")) p.seed = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--w-global")) p.w_global = atof(v);
        else if (!strcmp(a, "--w-person")) p.w_person = atof(v);
        else if (!strcmp(a, "--w-noise")) p.w_noise = atof(v);
        else if (!strcmp(a, "--alpha")) p.alpha = atof(v);
        else if (!strcmp(a, "--noise-spread")) p.noise_spread = atof(v);
        else die("usage: bench_clustered --points N [--dim D] [--queries Q] [--seed S] [--out FILE] [--w-global X] ...");
        i++;
    }
    if (n < 2 || n > 50000000 || q < 0 || q > 1000000 || p.dim < 1 || p.dim > 4096) die("--points, --queries or --dim out of range");
    float *v = malloc((size_t)n * (size_t)p.dim * sizeof *v), *qv = malloc((size_t)(q ? q : 1) * (size_t)p.dim * sizeof *qv);
    int32_t *who = malloc((size_t)n * sizeof *who), *qwho = malloc((size_t)(q ? q : 1) * sizeof *qwho);
    if (!v || !qv || !who || !qwho) die("out of memory for the points");
    int32_t people = bench_clustered_gen(&p, n, v, who);
    bench_clustered_queries(&p, who, n, q, qv, qwho);
    print_distributions(&p, v, who, n, people);
    if (out) write_file(out, &p, v, who, n, qv, qwho, q, people);
    free(v);
    free(qv);
    free(who);
    free(qwho);
    return 0;
}
