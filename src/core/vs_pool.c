/* vs_pool.c - fork-join over a fixed set of threads: a job is published
 * under the mutex with a generation number; threads and the caller take part
 * indexes from an atomic counter until none are left. The caller returns
 * only when every part is done and no thread is inside the job any more,
 * then closes it (fn = NULL), so a late thread can never run a finished
 * job's function on its caller's (gone) context. */
#include "vs_pool.h"

#include <pthread.h>
#include <stdatomic.h>

#include "vs_alloc.h"

#define POOL_MAX_THREADS 64

struct vs_pool {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    pthread_mutex_t busy;        /* held by the caller of the job in progress */
    int n_threads;
    pthread_t threads[POOL_MAX_THREADS];
    /* the current job, under mu */
    unsigned long gen;
    void (*fn)(void *, int);
    void *ctx;
    int n;
    atomic_int next, left;
    int inside;                  /* threads taking part in the job, under mu */
    int stop;
};

/* Takes and runs parts of the current job until none are left; signals the
 * caller when the last one finishes. */
static void run_parts(vs_pool *p, void (*fn)(void *, int), void *ctx, int n) {
    for (;;) {
        int i = atomic_fetch_add(&p->next, 1);
        if (i >= n) return;
        fn(ctx, i);
        if (atomic_fetch_sub(&p->left, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_broadcast(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void *pool_main(void *arg) {
    vs_pool *p = arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && !(p->fn && p->gen != seen)) pthread_cond_wait(&p->work, &p->mu);
        if (p->stop) break;
        seen = p->gen;
        void (*fn)(void *, int) = p->fn;
        void *ctx = p->ctx;
        int n = p->n;
        p->inside++;
        pthread_mutex_unlock(&p->mu);
        run_parts(p, fn, ctx, n);
        pthread_mutex_lock(&p->mu);
        if (--p->inside == 0) pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

vs_pool *vs_pool_new(int threads) {
    if (threads < 0) threads = 0;
    if (threads > POOL_MAX_THREADS) threads = POOL_MAX_THREADS;
    vs_pool *p = vs_calloc(1, sizeof *p);
    if (!p) return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->busy, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, pool_main, p) != 0) {
            vs_pool_free(p);
            return NULL;
        }
        p->n_threads++;
    }
    return p;
}

int vs_pool_threads(const vs_pool *p) { return p ? p->n_threads : 0; }

void vs_pool_run(vs_pool *p, int n, void (*fn)(void *ctx, int i), void *ctx) {
    if (n <= 0) return;
    if (!p || p->n_threads == 0 || n == 1 || pthread_mutex_trylock(&p->busy) != 0) {
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    atomic_store(&p->next, 0);
    atomic_store(&p->left, n);
    p->gen++;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    run_parts(p, fn, ctx, n);
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->left) > 0 || p->inside > 0) pthread_cond_wait(&p->done, &p->mu);
    p->fn = NULL; /* closed: a thread waking now stays out */
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->busy);
}

void vs_pool_free(vs_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->busy);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    vs_free(p);
}
