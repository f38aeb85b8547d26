/* vs_pool.h - a small fork-join pool: run fn(ctx, 0..n-1) on the pool's
 * threads and the caller's, and return when every part is done. Made for
 * splitting one memory-bound scan (an index search) over the cores, where a
 * single core cannot pull the DRAM bandwidth that two can. One job at a
 * time: a caller that finds the pool busy runs its parts itself, so
 * concurrent searches never wait for each other. Each pool has one owner
 * (the embedded index's scans, the S3 store's uploads); no globals. */
#ifndef VS_POOL_H
#define VS_POOL_H

typedef struct vs_pool vs_pool;

/* A pool of `threads` helper threads (0 = none: vs_pool_run runs inline).
 * NULL when threads could not be started. */
vs_pool *vs_pool_new(int threads);

/* Helper threads (the caller is one more worker during vs_pool_run). */
int vs_pool_threads(const vs_pool *p);

/* Runs fn(ctx, i) for every i in [0, n), each exactly once, and returns when
 * all have returned. p may be NULL (all inline). */
void vs_pool_run(vs_pool *p, int n, void (*fn)(void *ctx, int i), void *ctx);

/* Stops and joins the threads; NULL is fine. */
void vs_pool_free(vs_pool *p);

#endif
