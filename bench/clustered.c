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
    if (bench_clustered_print_dist(&p, v, who, n, people) < 0) die("out of memory for the distributions");
    if (out && bench_clustered_write(out, &p, v, who, n, qv, qwho, q, people) != 0) die("writing the --out file failed");
    free(v);
    free(qv);
    free(who);
    free(qwho);
    return 0;
}
