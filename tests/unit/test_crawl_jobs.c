/* test_crawl_jobs.c - the crawl job store (crawl.db): job round trip and
 * tenant scoping, claim order, updates that survive a reopen, the frontier's
 * dedup and done flags, saved images, and refusal of foreign, newer or
 * non-database files. Each test works in its own temporary data dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vs_alloc.h"
#include "vs_crawl_jobs.h"
#include "vs_err.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define SHA_C "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

typedef struct fixture {
    char dir[64];
    char db[128];
    vs_crawl_db *c;
} fixture;

/* Makes a fresh data dir and opens a crawl db in it. */
static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/vs_crawljobs_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->db, sizeof f->db, "%s/crawl.db", f->dir);
    vs_error e = {0};
    if (vs_crawl_db_open(f->dir, &f->c, &e) != VS_OK) {
        fprintf(stderr, "open: %s\n", e.msg);
        return -1;
    }
    *state = f;
    return 0;
}

/* Removes the db files and the data dir. */
static int teardown(void **state) {
    fixture *f = *state;
    char p[160];
    vs_crawl_db_close(f->c);
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", f->db, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Closes and reopens the db of f (persistence checks). */
static void reopen(fixture *f) {
    vs_error e = {0};
    vs_crawl_db_close(f->c);
    f->c = NULL;
    assert_int_equal(vs_crawl_db_open(f->dir, &f->c, &e), VS_OK);
}

/* Creates a job of tenant with seed url and returns it (heap: the struct
 * holds several KiB of URL buffers). */
static vs_crawl_job *new_job(fixture *f, const char *tenant, const char *seed) {
    vs_crawl_job *j = calloc(1, sizeof *j);
    vs_error e = {0};
    snprintf(j->tenant, sizeof j->tenant, "%s", tenant);
    snprintf(j->seed_url, sizeof j->seed_url, "%s", seed);
    assert_int_equal(vs_crawl_job_create(f->c, j, &e), VS_OK);
    return j;
}

/* Fills a frontier entry. */
static void set_url(vs_crawl_url *u, const char *url, const char *ref, int depth, int redirects, vs_crawl_kind kind) {
    memset(u, 0, sizeof *u);
    snprintf(u->url, sizeof u->url, "%s", url);
    snprintf(u->referrer, sizeof u->referrer, "%s", ref);
    u->depth = depth;
    u->redirects = redirects;
    u->kind = kind;
}

/* Asserts that every field of two jobs is equal. */
static void assert_job_equal(const vs_crawl_job *a, const vs_crawl_job *b) {
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->tenant, b->tenant);
    assert_string_equal(a->seed_url, b->seed_url);
    assert_int_equal(a->max_depth, b->max_depth);
    assert_int_equal(a->max_pages, b->max_pages);
    assert_int_equal(a->max_images, b->max_images);
    assert_int_equal(a->delay_ms, b->delay_ms);
    assert_int_equal(a->require_face, b->require_face);
    assert_int_equal(a->operator_crawl, b->operator_crawl);
    assert_string_equal(a->allow_hosts, b->allow_hosts);
    assert_int_equal(a->timeout_ms, b->timeout_ms);
    assert_int_equal(a->max_image_bytes, b->max_image_bytes);
    assert_string_equal(a->user_agent, b->user_agent);
    assert_int_equal(a->state, b->state);
    assert_memory_equal(&a->counts, &b->counts, sizeof a->counts);
    assert_string_equal(a->error, b->error);
    assert_int_equal(a->created_ms, b->created_ms);
    assert_int_equal(a->started_ms, b->started_ms);
    assert_int_equal(a->finished_ms, b->finished_ms);
}

static void test_state_names(void **state) {
    (void)state;
    assert_string_equal(vs_crawl_state_name(VS_CRAWL_QUEUED), "queued");
    assert_string_equal(vs_crawl_state_name(VS_CRAWL_RUNNING), "running");
    assert_string_equal(vs_crawl_state_name(VS_CRAWL_DONE), "done");
    assert_string_equal(vs_crawl_state_name(VS_CRAWL_FAILED), "failed");
}

/* Every option survives create + get; create fills id and created_ms and
 * resets what a fresh job cannot have yet. */
static void test_create_get_round_trip(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_crawl_job *j = calloc(1, sizeof *j), *g = calloc(1, sizeof *g);
    strcpy(j->tenant, "acme.co-1_x");
    strcpy(j->seed_url, "https://example.com/gallery?page=1");
    j->max_depth = 3;
    j->max_pages = 250;
    j->max_images = 9000;
    j->delay_ms = -1;
    j->require_face = 1;
    j->operator_crawl = 1;
    strcpy(j->allow_hosts, "cdn.example.com,img.example.net");
    j->timeout_ms = 20000;
    j->max_image_bytes = (int64_t)5 << 32;
    strcpy(j->user_agent, "visage-test/1.0 (+https://example.com/bot)");
    j->state = VS_CRAWL_DONE;      /* ignored: a new job is queued */
    j->counts.requests = 77;       /* ignored: a new job has done nothing */
    strcpy(j->error, "stale");
    j->started_ms = 5;
    assert_int_equal(vs_crawl_job_create(f->c, j, &e), VS_OK);

    assert_int_equal(strlen(j->id), 30);
    assert_memory_equal(j->id, "crawl_", 6);
    for (int i = 6; i < 30; i++) assert_non_null(strchr("0123456789abcdef", j->id[i]));
    assert_true(j->created_ms > 1600000000000LL);
    assert_int_equal(j->state, VS_CRAWL_QUEUED);
    assert_int_equal(j->counts.requests, 0);
    assert_string_equal(j->error, "");
    assert_int_equal(j->started_ms, 0);
    assert_int_equal(j->finished_ms, 0);

    assert_int_equal(vs_crawl_job_get(f->c, "acme.co-1_x", j->id, g, &e), VS_OK);
    assert_job_equal(j, g);
    memset(g, 0, sizeof *g);
    assert_int_equal(vs_crawl_job_get(f->c, NULL, j->id, g, &e), VS_OK); /* no tenant: any job */
    assert_job_equal(j, g);

    /* ids are random: a second job gets another one */
    vs_crawl_job *k = new_job(f, "acme.co-1_x", "https://example.com/");
    assert_string_not_equal(j->id, k->id);
    free(j);
    free(g);
    free(k);
}

/* Another tenant's job reads exactly like a missing one. */
static void test_get_tenant_isolation(void **state) {
    fixture *f = *state;
    vs_error e = {0}, e2 = {0};
    vs_crawl_job *j = new_job(f, "tenant-a", "https://a.example/");
    vs_crawl_job *g = calloc(1, sizeof *g);
    assert_int_equal(vs_crawl_job_get(f->c, "tenant-b", j->id, g, &e), VS_ERR_NOT_FOUND);
    assert_int_equal(vs_crawl_job_get(f->c, "tenant-b", "crawl_000000000000000000000000", g, &e2), VS_ERR_NOT_FOUND);
    assert_null(strstr(e.msg, "tenant-a"));
    /* same message shape, only the id differs */
    assert_non_null(strstr(e.msg, "not found"));
    assert_non_null(strstr(e2.msg, "not found"));
    assert_int_equal(vs_crawl_job_get(f->c, "tenant-a", j->id, g, &e), VS_OK);
    assert_string_equal(g->tenant, "tenant-a");
    free(j);
    free(g);
}

static void test_invalid_args(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_crawl_job *j = calloc(1, sizeof *j), *g = calloc(1, sizeof *g);
    strcpy(j->seed_url, "https://x.example/");
    const char *bad_tenants[] = {"", "a b", "a/b", "../x", "ténant", "x\n"};
    for (size_t i = 0; i < sizeof bad_tenants / sizeof *bad_tenants; i++) {
        strcpy(j->tenant, bad_tenants[i]);
        vs_error_clear(&e);
        assert_int_equal(vs_crawl_job_create(f->c, j, &e), VS_ERR_INVALID_ARG);
        assert_non_null(strstr(e.msg, "[A-Za-z0-9_.-]"));
    }
    memset(j->tenant, 'a', sizeof j->tenant); /* 64 chars, no terminator */
    assert_int_equal(vs_crawl_job_create(f->c, j, &e), VS_ERR_INVALID_ARG);
    strcpy(j->tenant, "acme");
    j->seed_url[0] = '\0';
    assert_int_equal(vs_crawl_job_create(f->c, j, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_crawl_job_create(f->c, NULL, &e), VS_ERR_INVALID_ARG);
    assert_string_equal(j->id, ""); /* nothing filled on failure */

    assert_int_equal(vs_crawl_job_get(f->c, "a/b", "crawl_x", g, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_crawl_job_get(f->c, "acme", NULL, g, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_crawl_job_get(f->c, "acme", "", g, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_crawl_job_get(f->c, "acme", "crawl_nope", g, &e), VS_ERR_NOT_FOUND);

    strcpy(g->id, "crawl_nope");
    assert_int_equal(vs_crawl_job_update(f->c, g, &e), VS_ERR_NOT_FOUND);
    g->state = (vs_crawl_state)7;
    assert_int_equal(vs_crawl_job_update(f->c, g, &e), VS_ERR_INVALID_ARG);

    vs_crawl_job *ok = new_job(f, "acme", "https://x.example/");
    vs_crawl_url u;
    set_url(&u, "", "", 0, 0, VS_CRAWL_PAGE);
    assert_int_equal(vs_crawl_urls_add(f->c, ok->id, &u, 1, NULL, &e), VS_ERR_INVALID_ARG);
    set_url(&u, "https://x.example/a", "", 0, 0, (vs_crawl_kind)5);
    assert_int_equal(vs_crawl_urls_add(f->c, ok->id, &u, 1, NULL, &e), VS_ERR_INVALID_ARG);
    set_url(&u, "https://x.example/a", "", -1, 0, VS_CRAWL_PAGE);
    assert_int_equal(vs_crawl_urls_add(f->c, ok->id, &u, 1, NULL, &e), VS_ERR_INVALID_ARG);
    set_url(&u, "https://x.example/a", "", 0, 0, VS_CRAWL_PAGE);
    assert_int_equal(vs_crawl_urls_add(f->c, ok->id, &u, -1, NULL, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_crawl_urls_add(f->c, "", &u, 1, NULL, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_crawl_urls_add(f->c, "crawl_nope", &u, 1, NULL, &e), VS_ERR_NOT_FOUND);
    assert_int_equal(vs_crawl_urls_add(f->c, ok->id, &u, 0, NULL, &e), VS_OK);
    assert_int_equal(vs_crawl_url_done(f->c, ok->id, "https://x.example/never-added", NULL, NULL, NULL, &e), VS_ERR_NOT_FOUND);
    assert_int_equal(vs_crawl_url_done(f->c, ok->id, "", NULL, NULL, NULL, &e), VS_ERR_INVALID_ARG);

    int added = 7;
    assert_int_equal(vs_crawl_image_add(f->c, ok->id, "abc", "", "", &added, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(added, 0);
    assert_int_equal(vs_crawl_image_add(f->c, ok->id, SHA_A "0", "", "", &added, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_crawl_image_add(f->c, ok->id, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                        "", "", &added, &e),
                     VS_ERR_INVALID_ARG);
    assert_int_equal(vs_crawl_image_add(f->c, "crawl_nope", SHA_A, "", "", &added, &e), VS_ERR_NOT_FOUND);
    free(j);
    free(g);
    free(ok);
}

/* Oldest QUEUED first; a claimed job turns RUNNING with started_ms set and
 * is never handed out twice; jobs a dead process left RUNNING come back
 * through vs_crawl_jobs_requeue, keeping their started_ms. */
static void test_claim_order(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_crawl_job *c = calloc(1, sizeof *c);
    int found = 7;
    assert_int_equal(vs_crawl_job_claim(f->c, c, &found, &e), VS_OK);
    assert_int_equal(found, 0);

    vs_crawl_job *a = new_job(f, "acme", "https://a.example/");
    vs_crawl_job *b = new_job(f, "acme", "https://b.example/");
    vs_crawl_job *d = new_job(f, "other", "https://d.example/");
    /* b was running when its process died */
    b->state = VS_CRAWL_RUNNING;
    b->started_ms = 1234;
    assert_int_equal(vs_crawl_job_update(f->c, b, &e), VS_OK);

    assert_int_equal(vs_crawl_job_claim(f->c, c, &found, &e), VS_OK);
    assert_int_equal(found, 1);
    assert_string_equal(c->id, a->id);
    assert_int_equal(c->state, VS_CRAWL_RUNNING);
    assert_true(c->started_ms >= a->created_ms);
    vs_crawl_job *g = calloc(1, sizeof *g);
    assert_int_equal(vs_crawl_job_get(f->c, NULL, a->id, g, &e), VS_OK);
    assert_job_equal(c, g); /* what claim returned is what is stored */

    /* a RUNNING job is not handed out again: the next is d (b is RUNNING) */
    assert_int_equal(vs_crawl_job_claim(f->c, c, &found, &e), VS_OK);
    assert_string_equal(c->id, d->id);
    assert_int_equal(vs_crawl_job_claim(f->c, c, &found, &e), VS_OK);
    assert_int_equal(found, 0);

    /* start-up: every RUNNING job (a, b, d) is queued again, oldest first */
    int64_t n = 0;
    assert_int_equal(vs_crawl_jobs_requeue(f->c, &n, &e), VS_OK);
    assert_int_equal(n, 3);
    assert_int_equal(vs_crawl_job_claim(f->c, c, &found, &e), VS_OK);
    assert_string_equal(c->id, a->id);
    assert_int_equal(vs_crawl_job_claim(f->c, c, &found, &e), VS_OK);
    assert_string_equal(c->id, b->id);
    assert_int_equal(c->started_ms, 1234); /* resumed, not restarted */
    c->state = VS_CRAWL_DONE;
    assert_int_equal(vs_crawl_job_update(f->c, c, &e), VS_OK);
    assert_int_equal(vs_crawl_jobs_requeue(f->c, &n, &e), VS_OK);
    assert_int_equal(n, 1); /* a; b is done and d still queued */
    free(a);
    free(b);
    free(c);
    free(d);
    free(g);
}

/* Cancel takes a QUEUED job out (state cancelled), leaves others alone and
 * never sees another tenant's job; list is per tenant, newest first. */
static void test_cancel_and_list(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_crawl_job *a = new_job(f, "acme", "https://a.example/");
    vs_crawl_job *b = new_job(f, "acme", "https://b.example/");
    vs_crawl_job *o = new_job(f, "other", "https://o.example/");
    int cancelled = 7;
    assert_int_equal(vs_crawl_job_cancel_queued(f->c, "other", a->id, &cancelled, &e), VS_ERR_NOT_FOUND);
    assert_int_equal(cancelled, 0);
    assert_int_equal(vs_crawl_job_cancel_queued(f->c, "acme", a->id, &cancelled, &e), VS_OK);
    assert_int_equal(cancelled, 1);
    vs_crawl_job *g = calloc(1, sizeof *g);
    assert_int_equal(vs_crawl_job_get(f->c, "acme", a->id, g, &e), VS_OK);
    assert_int_equal(g->state, VS_CRAWL_CANCELLED);
    assert_true(g->finished_ms > 0);
    assert_string_equal(vs_crawl_state_name(VS_CRAWL_CANCELLED), "cancelled");
    /* again: no longer queued, nothing changes */
    assert_int_equal(vs_crawl_job_cancel_queued(f->c, "acme", a->id, &cancelled, &e), VS_OK);
    assert_int_equal(cancelled, 0);
    /* a cancelled job is never claimed */
    int found = 0;
    assert_int_equal(vs_crawl_job_claim(f->c, g, &found, &e), VS_OK);
    assert_string_equal(g->id, b->id);

    vs_crawl_job *list = calloc(4, sizeof *list);
    int n = 0;
    assert_int_equal(vs_crawl_job_list(f->c, "acme", list, 4, &n, &e), VS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, b->id); /* newest first */
    assert_string_equal(list[1].id, a->id);
    assert_int_equal(vs_crawl_job_list(f->c, "acme", list, 1, &n, &e), VS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(vs_crawl_job_list(f->c, "other", list, 4, &n, &e), VS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, o->id);
    assert_int_equal(vs_crawl_job_list(f->c, "nobody", list, 4, &n, &e), VS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(vs_crawl_job_list(f->c, "bad tenant!", list, 4, &n, &e), VS_ERR_INVALID_ARG);
    free(a);
    free(b);
    free(o);
    free(g);
    free(list);
}

/* State, every count, the error and the times persist across reopen;
 * options and created_ms are not changed by an update. */
static void test_update_persists(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_crawl_job *j = new_job(f, "acme", "https://a.example/");
    j->max_depth = 99; /* not written by update */
    j->state = VS_CRAWL_FAILED;
    int64_t *cnt[11] = {&j->counts.requests,       &j->counts.pages_fetched,    &j->counts.images_fetched,
                        &j->counts.images_saved,   &j->counts.images_duplicate, &j->counts.images_skipped,
                        &j->counts.robots_blocked, &j->counts.out_of_scope,     &j->counts.redirects,
                        &j->counts.errors,         &j->counts.bytes};
    for (int i = 0; i < 11; i++) *cnt[i] = 1000 + i * 7 + ((int64_t)i << 33);
    strcpy(j->error, "store down: connection refused");
    j->started_ms = 1700000000001LL;
    j->finished_ms = 1700000000999LL;
    assert_int_equal(vs_crawl_job_update(f->c, j, &e), VS_OK);
    reopen(f);
    vs_crawl_job *g = calloc(1, sizeof *g);
    assert_int_equal(vs_crawl_job_get(f->c, "acme", j->id, g, &e), VS_OK);
    j->max_depth = 0;
    assert_job_equal(j, g);
    assert_int_equal(g->counts.bytes, 1070 + ((int64_t)10 << 33));
    assert_int_equal(g->counts.requests, 1000);
    free(j);
    free(g);
}

typedef struct url_seen {
    int n;
    char url[16][64];
    char ref[16][64];
    int depth[16], redirects[16], kind[16], pending[16];
    int stop_after;         /* stop the walk after this many (0 = never) */
    vs_crawl_db *db;        /* non-NULL: mark each URL done from inside fn */
    const char *job_id;
    int nested_rc;
} url_seen;

/* Records each URL of a walk; optionally calls back into the db. */
static int collect_url(void *ctx, const vs_crawl_url *u, int pending) {
    url_seen *s = ctx;
    if (s->n < 16) {
        snprintf(s->url[s->n], sizeof s->url[0], "%.63s", u->url);
        snprintf(s->ref[s->n], sizeof s->ref[0], "%.63s", u->referrer);
        s->depth[s->n] = u->depth;
        s->redirects[s->n] = u->redirects;
        s->kind[s->n] = (int)u->kind;
        s->pending[s->n] = pending;
    }
    s->n++;
    if (s->db) {
        vs_error e = {0};
        if (vs_crawl_url_done(s->db, s->job_id, u->url, NULL, NULL, NULL, &e) != VS_OK) s->nested_rc = 1;
    }
    return s->stop_after && s->n >= s->stop_after;
}

/* added[] flags new URLs: a URL already in the job, or twice in one call,
 * is new once; the same URL in another job is new there. */
static void test_urls_add_dedup(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_crawl_job *j = new_job(f, "acme", "https://a.example/");
    vs_crawl_job *k = new_job(f, "acme", "https://a.example/");
    vs_crawl_url *u = calloc(4, sizeof *u);
    set_url(&u[0], "https://a.example/", "", 0, 0, VS_CRAWL_PAGE);
    set_url(&u[1], "https://a.example/p1", "https://a.example/", 1, 0, VS_CRAWL_PAGE);
    set_url(&u[2], "https://a.example/", "https://a.example/p1", 2, 0, VS_CRAWL_PAGE); /* dup in call */
    set_url(&u[3], "https://a.example/i.jpg", "https://a.example/", 1, 2, VS_CRAWL_IMAGE);
    int added[4] = {9, 9, 9, 9};
    assert_int_equal(vs_crawl_urls_add(f->c, j->id, u, 4, added, &e), VS_OK);
    assert_int_equal(added[0], 1);
    assert_int_equal(added[1], 1);
    assert_int_equal(added[2], 0);
    assert_int_equal(added[3], 1);

    set_url(&u[0], "https://a.example/p1", "", 5, 0, VS_CRAWL_PAGE); /* had */
    set_url(&u[1], "https://a.example/p2", "https://a.example/p1", 2, 0, VS_CRAWL_PAGE);
    assert_int_equal(vs_crawl_urls_add(f->c, j->id, u, 2, added, &e), VS_OK);
    assert_int_equal(added[0], 0);
    assert_int_equal(added[1], 1);
    assert_int_equal(vs_crawl_urls_add(f->c, j->id, u, 2, NULL, &e), VS_OK); /* added may be NULL */

    /* the other job has its own set */
    assert_int_equal(vs_crawl_urls_add(f->c, k->id, u, 2, added, &e), VS_OK);
    assert_int_equal(added[0], 1);
    assert_int_equal(added[1], 1);

    /* the first insertion's fields win */
    url_seen s = {0};
    assert_int_equal(vs_crawl_urls_each(f->c, j->id, collect_url, &s, &e), VS_OK);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.url[1], "https://a.example/p1");
    assert_int_equal(s.depth[1], 1);
    assert_string_equal(s.ref[1], "https://a.example/");
    assert_string_equal(s.url[2], "https://a.example/i.jpg");
    assert_int_equal(s.kind[2], VS_CRAWL_IMAGE);
    assert_int_equal(s.redirects[2], 2);
    assert_int_equal(s.depth[0], 0);
    free(j);
    free(k);
    free(u);
}

/* Done flags and insertion order survive a reopen; a walk can stop early;
 * fn may call back into the db; more URLs than one internal batch. */
static void test_url_done_and_each(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_crawl_job *j = new_job(f, "acme", "https://a.example/");
    vs_crawl_job *k = new_job(f, "acme", "https://b.example/");
    vs_crawl_url *u = calloc(1, sizeof *u);
    const char *order[] = {"https://a.example/z", "https://a.example/a", "https://a.example/m", "https://a.example/b"};
    for (int i = 0; i < 4; i++) {
        set_url(u, order[i], "", i, 0, VS_CRAWL_PAGE);
        assert_int_equal(vs_crawl_urls_add(f->c, j->id, u, 1, NULL, &e), VS_OK);
    }
    set_url(u, "https://b.example/", "", 0, 0, VS_CRAWL_PAGE);
    assert_int_equal(vs_crawl_urls_add(f->c, k->id, u, 1, NULL, &e), VS_OK);
    assert_int_equal(vs_crawl_url_done(f->c, j->id, "https://a.example/a", NULL, NULL, NULL, &e), VS_OK);
    assert_int_equal(vs_crawl_url_done(f->c, j->id, "https://a.example/b", NULL, NULL, NULL, &e), VS_OK);
    assert_int_equal(vs_crawl_url_done(f->c, j->id, "https://a.example/b", NULL, NULL, NULL, &e), VS_OK); /* twice is fine */
    assert_int_equal(vs_crawl_url_done(f->c, k->id, "https://a.example/z", NULL, NULL, NULL, &e), VS_ERR_NOT_FOUND);
    reopen(f);

    url_seen s = {0};
    assert_int_equal(vs_crawl_urls_each(f->c, j->id, collect_url, &s, &e), VS_OK);
    assert_int_equal(s.n, 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(s.url[i], order[i]);
        assert_int_equal(s.depth[i], i);
    }
    assert_int_equal(s.pending[0], 1);
    assert_int_equal(s.pending[1], 0);
    assert_int_equal(s.pending[2], 1);
    assert_int_equal(s.pending[3], 0);

    memset(&s, 0, sizeof s);
    s.stop_after = 2;
    assert_int_equal(vs_crawl_urls_each(f->c, j->id, collect_url, &s, &e), VS_OK);
    assert_int_equal(s.n, 2);

    memset(&s, 0, sizeof s);
    assert_int_equal(vs_crawl_urls_each(f->c, "crawl_nope", collect_url, &s, &e), VS_OK);
    assert_int_equal(s.n, 0);

    /* 100 URLs (several batches), each marked done from inside fn */
    vs_crawl_url *many = calloc(100, sizeof *many);
    for (int i = 0; i < 100; i++) {
        char url[64];
        snprintf(url, sizeof url, "https://b.example/%03d", i);
        set_url(&many[i], url, "https://b.example/", 1, 0, VS_CRAWL_IMAGE);
    }
    assert_int_equal(vs_crawl_urls_add(f->c, k->id, many, 100, NULL, &e), VS_OK);
    memset(&s, 0, sizeof s);
    s.db = f->c;
    s.job_id = k->id;
    assert_int_equal(vs_crawl_urls_each(f->c, k->id, collect_url, &s, &e), VS_OK);
    assert_int_equal(s.n, 101);
    assert_int_equal(s.nested_rc, 0);
    assert_string_equal(s.url[0], "https://b.example/");
    assert_string_equal(s.url[1], "https://b.example/000");
    assert_int_equal(s.pending[15], 1);
    memset(&s, 0, sizeof s);
    assert_int_equal(vs_crawl_urls_each(f->c, k->id, collect_url, &s, &e), VS_OK);
    assert_int_equal(s.n, 101);
    for (int i = 0; i < 16; i++) assert_int_equal(s.pending[i], 0);
    free(j);
    free(k);
    free(u);
    free(many);
}

typedef struct sha_seen {
    int n;
    char sha[80][65];
    int stop_after;
} sha_seen;

/* Records each sha256 of an images walk. */
static int collect_sha(void *ctx, const char *sha256) {
    sha_seen *s = ctx;
    if (s->n < 80) snprintf(s->sha[s->n], sizeof s->sha[0], "%s", sha256);
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

/* Comparison for qsort of 65-char sha strings. */
static int cmp_sha(const void *a, const void *b) { return strcmp(a, b); }

static void test_images_add_each(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_crawl_job *j = new_job(f, "acme", "https://a.example/");
    vs_crawl_job *k = new_job(f, "acme", "https://b.example/");
    int added = 9;
    assert_int_equal(vs_crawl_image_add(f->c, j->id, SHA_B, "https://a.example/", "https://a.example/b.jpg", &added, &e),
                     VS_OK);
    assert_int_equal(added, 1);
    assert_int_equal(vs_crawl_image_add(f->c, j->id, SHA_A, "https://a.example/", "https://a.example/a.jpg", &added, &e),
                     VS_OK);
    assert_int_equal(added, 1);
    assert_int_equal(vs_crawl_image_add(f->c, j->id, SHA_B, "https://a.example/x", "https://a.example/b2.jpg", &added,
                                        &e),
                     VS_OK);
    assert_int_equal(added, 0);
    assert_int_equal(vs_crawl_image_add(f->c, j->id, SHA_C, NULL, NULL, NULL, &e), VS_OK); /* NULLs allowed */
    assert_int_equal(vs_crawl_image_add(f->c, k->id, SHA_A, "", "", &added, &e), VS_OK);
    assert_int_equal(added, 1); /* other job: its own set */
    reopen(f);

    sha_seen s = {0};
    assert_int_equal(vs_crawl_images_each(f->c, j->id, collect_sha, &s, &e), VS_OK);
    assert_int_equal(s.n, 3);
    qsort(s.sha, 3, sizeof s.sha[0], cmp_sha);
    assert_string_equal(s.sha[0], SHA_C);
    assert_string_equal(s.sha[1], SHA_A);
    assert_string_equal(s.sha[2], SHA_B);
    memset(&s, 0, sizeof s);
    assert_int_equal(vs_crawl_images_each(f->c, k->id, collect_sha, &s, &e), VS_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.sha[0], SHA_A);

    /* more than one batch, each reported once; a walk can stop early */
    for (int i = 0; i < 75; i++) {
        char sha[65];
        snprintf(sha, sizeof sha, "%064x", i);
        assert_int_equal(vs_crawl_image_add(f->c, k->id, sha, "", "", &added, &e), VS_OK);
        assert_int_equal(added, 1);
    }
    memset(&s, 0, sizeof s);
    assert_int_equal(vs_crawl_images_each(f->c, k->id, collect_sha, &s, &e), VS_OK);
    assert_int_equal(s.n, 76);
    qsort(s.sha, 76, sizeof s.sha[0], cmp_sha);
    for (int i = 1; i < 76; i++) assert_true(strcmp(s.sha[i - 1], s.sha[i]) < 0);
    memset(&s, 0, sizeof s);
    s.stop_after = 3;
    assert_int_equal(vs_crawl_images_each(f->c, k->id, collect_sha, &s, &e), VS_OK);
    assert_int_equal(s.n, 3);
    free(j);
    free(k);
}

/* Allocation failures are reported as NOMEM and leave nothing behind. */
static void test_alloc_failure(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_crawl_db *c = (vs_crawl_db *)1;
    vs_alloc_fail_after(0);
    vs_err rc = vs_crawl_db_open(f->dir, &c, &e);
    vs_alloc_fail_after(-1);
    assert_int_equal(rc, VS_ERR_NOMEM);
    assert_null(c);

    vs_crawl_job *j = new_job(f, "acme", "https://a.example/");
    url_seen s = {0};
    vs_alloc_fail_after(0);
    rc = vs_crawl_urls_each(f->c, j->id, collect_url, &s, &e);
    vs_alloc_fail_after(-1);
    assert_int_equal(rc, VS_ERR_NOMEM);
    assert_int_equal(s.n, 0);
    free(j);
}

/* Opens the db file of f with plain SQLite and runs sql. */
static void raw_exec(const fixture *f, const char *sql) {
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* A damaged queued row is reported once and marked FAILED, so the jobs
 * queued after it still run. */
static void test_bad_queued_row_does_not_block_the_queue(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_crawl_job *bad = new_job(f, "acme", "https://a.example/");
    vs_crawl_job *good = new_job(f, "acme", "https://b.example/");
    vs_crawl_job *g = calloc(1, sizeof *g);
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE jobs SET error = hex(zeroblob(150)) WHERE id = '%s'", bad->id);
    vs_crawl_db_close(f->c);
    f->c = NULL;
    raw_exec(f, sql);
    reopen(f);
    int found = 0;
    assert_int_equal(vs_crawl_job_claim(f->c, g, &found, &e), VS_ERR_CORRUPT);
    assert_non_null(strstr(e.msg, bad->id));
    assert_int_equal(found, 0);
    assert_int_equal(vs_crawl_job_claim(f->c, g, &found, &e), VS_OK);
    assert_int_equal(found, 1);
    assert_string_equal(g->id, good->id);
    assert_int_equal(vs_crawl_job_get(f->c, "acme", bad->id, g, &e), VS_OK); /* readable again, and failed */
    assert_int_equal(g->state, VS_CRAWL_FAILED);
    assert_non_null(strstr(g->error, "bad field"));
    free(bad);
    free(good);
    free(g);
}

/* A damaged job row is reported as CORRUPT, not copied past its buffer. */
static void test_bad_row_is_corrupt(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_crawl_job *j = new_job(f, "acme", "https://a.example/");
    vs_crawl_job *g = calloc(1, sizeof *g);
    vs_crawl_db_close(f->c);
    f->c = NULL;
    raw_exec(f, "UPDATE jobs SET error = hex(zeroblob(150))");
    reopen(f);
    assert_int_equal(vs_crawl_job_get(f->c, "acme", j->id, g, &e), VS_ERR_CORRUPT);
    assert_non_null(strstr(e.msg, "crawl.db"));
    free(j);
    free(g);
}

static void test_garbage_file_refused(void **state) {
    fixture *f = *state;
    vs_crawl_db_close(f->c);
    f->c = NULL;
    char p[160];
    snprintf(p, sizeof p, "%s-wal", f->db);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", f->db);
    unlink(p);
    FILE *fp = fopen(f->db, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 4096; i++) fputc("not a database at all\n"[i % 22], fp);
    fclose(fp);
    vs_error e = {0};
    vs_crawl_db *c = (vs_crawl_db *)1;
    assert_int_equal(vs_crawl_db_open(f->dir, &c, &e), VS_ERR_BACKEND);
    assert_null(c);
    assert_non_null(strstr(e.msg, "crawl.db"));
    assert_non_null(strstr(e.msg, "not a database"));
}

static void test_newer_schema_refused(void **state) {
    fixture *f = *state;
    vs_crawl_db_close(f->c);
    f->c = NULL;
    raw_exec(f, "PRAGMA user_version=99");
    vs_error e = {0};
    vs_crawl_db *c = NULL;
    assert_int_equal(vs_crawl_db_open(f->dir, &c, &e), VS_ERR_UNSUPPORTED);
    assert_null(c);
    assert_non_null(strstr(e.msg, "99"));
    assert_non_null(strstr(e.msg, "newer"));
    assert_non_null(strstr(e.msg, "crawl.db"));
}

static void test_foreign_database_refused(void **state) {
    fixture *f = *state;
    vs_crawl_db_close(f->c);
    f->c = NULL;
    char p[160];
    snprintf(p, sizeof p, "%s-wal", f->db);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", f->db);
    unlink(p);
    unlink(f->db);
    raw_exec(f, "CREATE TABLE other(x)");
    vs_error e = {0};
    vs_crawl_db *c = NULL;
    assert_int_equal(vs_crawl_db_open(f->dir, &c, &e), VS_ERR_CORRUPT);
    assert_null(c);
    assert_non_null(strstr(e.msg, "not a visage crawl db"));
}

/* The file is private to the owner (it holds tenants' URLs). */
static void test_file_mode(void **state) {
    fixture *f = *state;
    struct stat sb;
    assert_int_equal(stat(f->db, &sb), 0);
    assert_int_equal(sb.st_mode & 077, 0);
}


/* The done mark, the saved image and the counts are one transaction: all
 * three land together, and a URL the job never queued writes none of them. */
static void test_url_done_with_image_and_counts(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_crawl_job *j = new_job(f, "acme", "https://a.example/");
    vs_crawl_url *u = calloc(1, sizeof *u);
    set_url(u, "https://a.example/p.jpg", "https://a.example/", 0, 0, VS_CRAWL_IMAGE);
    assert_int_equal(vs_crawl_urls_add(f->c, j->id, u, 1, NULL, &e), VS_OK);
    const char *sha = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const char *sha2 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    vs_crawl_counts k = {.requests = 3, .pages_fetched = 1, .images_fetched = 1, .images_saved = 1, .bytes = 1234};
    /* unknown URL: NOT_FOUND, and neither image nor counts written */
    assert_int_equal(vs_crawl_url_done(f->c, j->id, "https://a.example/none.jpg", sha2, "https://a.example/", &k, &e),
                     VS_ERR_NOT_FOUND);
    assert_int_equal(vs_crawl_url_done(f->c, j->id, u->url, "NOT-HEX", "https://a.example/", &k, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_crawl_url_done(f->c, j->id, u->url, sha, "https://a.example/", &k, &e), VS_OK);
    reopen(f);
    vs_crawl_job got;
    assert_int_equal(vs_crawl_job_get(f->c, "acme", j->id, &got, &e), VS_OK);
    assert_int_equal(got.counts.requests, 3);
    assert_int_equal(got.counts.images_saved, 1);
    assert_int_equal(got.counts.bytes, 1234);
    sha_seen s = {0};
    assert_int_equal(vs_crawl_images_each(f->c, j->id, collect_sha, &s, &e), VS_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.sha[0], sha);
    url_seen us = {0};
    assert_int_equal(vs_crawl_urls_each(f->c, j->id, collect_url, &us, &e), VS_OK);
    assert_int_equal(us.n, 1);
    assert_int_equal(us.pending[0], 0);
    free(u);
    free(j);
}


/* Erasure forgets the image in every job of the tenant (image rows and the
 * frontier row of its URL), and nothing of other tenants. */
static void test_images_forget(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_crawl_job *a1 = new_job(f, "acme", "https://a.example/");
    vs_crawl_job *a2 = new_job(f, "acme", "https://a2.example/");
    vs_crawl_job *o = new_job(f, "other", "https://o.example/");
    const char *sha = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
    const char *keep = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
    vs_crawl_url *u = calloc(1, sizeof *u);
    vs_crawl_job *jobs[3] = {a1, a2, o};
    for (int i = 0; i < 3; i++) {
        set_url(u, "https://x.example/p.jpg", "https://x.example/", 0, 0, VS_CRAWL_IMAGE);
        assert_int_equal(vs_crawl_urls_add(f->c, jobs[i]->id, u, 1, NULL, &e), VS_OK);
        assert_int_equal(vs_crawl_url_done(f->c, jobs[i]->id, u->url, sha, "https://x.example/", NULL, &e), VS_OK);
    }
    int added = 0;
    assert_int_equal(vs_crawl_image_add(f->c, a1->id, keep, "https://x.example/", "https://x.example/k.jpg", &added, &e), VS_OK);
    int64_t n = 0;
    assert_int_equal(vs_crawl_images_forget(f->c, "acme", sha, &n, &e), VS_OK);
    assert_int_equal(n, 2);
    sha_seen s = {0};
    assert_int_equal(vs_crawl_images_each(f->c, a1->id, collect_sha, &s, &e), VS_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.sha[0], keep);
    url_seen us = {0};
    assert_int_equal(vs_crawl_urls_each(f->c, a2->id, collect_url, &us, &e), VS_OK);
    assert_int_equal(us.n, 0); /* the URL it came from is gone too */
    memset(&s, 0, sizeof s);
    assert_int_equal(vs_crawl_images_each(f->c, o->id, collect_sha, &s, &e), VS_OK);
    assert_int_equal(s.n, 1); /* the other tenant keeps its own */
    memset(&us, 0, sizeof us);
    assert_int_equal(vs_crawl_urls_each(f->c, o->id, collect_url, &us, &e), VS_OK);
    assert_int_equal(us.n, 1);
    assert_int_equal(vs_crawl_images_forget(f->c, "acme", "nothex", &n, &e), VS_ERR_INVALID_ARG);
    /* the metrics view: three queued jobs, counts summed over them */
    a1->state = VS_CRAWL_DONE;
    a1->counts.pages_fetched = 5;
    o->counts.pages_fetched = 2;
    assert_int_equal(vs_crawl_job_update(f->c, a1, &e), VS_OK);
    assert_int_equal(vs_crawl_job_update(f->c, o, &e), VS_OK);
    vs_crawl_db_stats st;
    assert_int_equal(vs_crawl_db_stats_get(f->c, &st, &e), VS_OK);
    assert_int_equal(st.jobs[VS_CRAWL_QUEUED], 2);
    assert_int_equal(st.jobs[VS_CRAWL_DONE], 1);
    assert_int_equal(st.total.pages_fetched, 7);
    free(u);
    free(a1);
    free(a2);
    free(o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_names),
        cmocka_unit_test_setup_teardown(test_create_get_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_tenant_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_urls_add_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_done_and_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_images_add_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_row_is_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_queued_row_does_not_block_the_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_database_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_done_with_image_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_images_forget, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
