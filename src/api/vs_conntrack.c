/* vs_conntrack.c - a list of (fd, deadline) and one watchdog thread that
 * shuts the sockets whose deadline passed. Sized for the server's few
 * hundred connections: a linear scan every tick costs microseconds.
 *
 * Threading: one mutex guards the list; the server's polling threads add,
 * update and remove entries, the watchdog scans under the same lock, so an
 * entry (and its fd) cannot be removed while being shut. A heap ordered by
 * deadline was rejected: updates on every request phase would cost more
 * than the scan they save at this size. */
#include "vs_conntrack.h"

#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

#include "vs_alloc.h"
#include "vs_hash.h"

struct vs_tracked {
    vs_tracked *prev, *next;
    int fd;
    int reason;
    int64_t deadline_ms;  /* 0 = none */
    int cut;              /* shut already */
};

struct vs_conntrack {
    pthread_mutex_t mu;
    pthread_cond_t cv;    /* signalled to stop */
    pthread_t thread;
    int stop, count, tick_ms;
    vs_tracked *head;
    vs_conntrack_cut_cb cb;
    void *ctx;
};

/* Shuts every socket past its deadline; caller holds mu. The cut is
 * counted before the shutdown, so whoever sees the socket end (the peer,
 * a test) also sees the count (counted after, a loaded machine showed 0). */
static void sweep(vs_conntrack *t, int64_t now) {
    for (vs_tracked *c = t->head; c; c = c->next) {
        if (c->cut || !c->deadline_ms || now < c->deadline_ms) continue;
        c->cut = 1;
        if (t->cb) t->cb(t->ctx, c->reason);
        shutdown(c->fd, SHUT_RDWR);
    }
}

/* The watchdog: a sweep every tick until stopped. */
static void *watchdog(void *arg) {
    vs_conntrack *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)t->tick_ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&t->cv, &t->mu, &ts);
        if (!t->stop) sweep(t, vs_now_ms());
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

vs_err vs_conntrack_start(int tick_ms, vs_conntrack_cut_cb cb, void *ctx, vs_conntrack **out, vs_error *err) {
    *out = NULL;
    vs_conntrack *t = vs_calloc(1, sizeof *t);
    if (!t) return vs_fail(err, VS_ERR_NOMEM, "connection watchdog");
    t->tick_ms = tick_ms > 0 ? tick_ms : 200;
    t->cb = cb;
    t->ctx = ctx;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    int rc = pthread_create(&t->thread, NULL, watchdog, t);
    if (rc != 0) {
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        vs_free(t);
        return vs_fail(err, VS_ERR_INTERNAL, "connection watchdog: pthread_create: error %d", rc);
    }
    *out = t;
    return VS_OK;
}

void vs_conntrack_stop(vs_conntrack *t) {
    if (!t) return;
    pthread_mutex_lock(&t->mu);
    t->stop = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    while (t->head) {
        vs_tracked *c = t->head;
        t->head = c->next;
        vs_free(c);
    }
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    vs_free(t);
}

vs_tracked *vs_conntrack_add(vs_conntrack *t, int fd, int64_t deadline_ms, int reason) {
    vs_tracked *c = vs_calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = fd;
    c->deadline_ms = deadline_ms;
    c->reason = reason;
    pthread_mutex_lock(&t->mu);
    c->next = t->head;
    if (t->head) t->head->prev = c;
    t->head = c;
    t->count++;
    pthread_mutex_unlock(&t->mu);
    return c;
}

void vs_conntrack_set(vs_conntrack *t, vs_tracked *c, int64_t deadline_ms, int reason) {
    if (!c) return;
    pthread_mutex_lock(&t->mu);
    c->deadline_ms = deadline_ms;
    c->reason = reason;
    pthread_mutex_unlock(&t->mu);
}

void vs_conntrack_remove(vs_conntrack *t, vs_tracked *c) {
    if (!c) return;
    pthread_mutex_lock(&t->mu);
    if (c->prev) c->prev->next = c->next;
    else t->head = c->next;
    if (c->next) c->next->prev = c->prev;
    t->count--;
    pthread_mutex_unlock(&t->mu);
    vs_free(c);
}

int vs_conntrack_count(vs_conntrack *t) {
    pthread_mutex_lock(&t->mu);
    int n = t->count;
    pthread_mutex_unlock(&t->mu);
    return n;
}
