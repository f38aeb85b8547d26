/* test_crawl.c - the crawl loop end to end against a small generated site
 * served by libmicrohttpd on 127.0.0.1 (and 127.0.0.2 for "another host"),
 * ephemeral ports, nothing outside loopback. The server logs every request
 * (path, Host, User-Agent, arrival time, a sequence number shared with the
 * test sink), so the tests assert on what was actually requested: robots.txt
 * first and once, disallowed and other-host URLs never, each URL at most
 * once, politeness gaps, limits, resume, stop, sink failures and allocation
 * failures (every run ends VS_OK or VS_ERR_NOMEM; ASan checks the rest). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vs_alloc.h"
#include "vs_crawl.h"
#include "vs_err.h"
#include "vs_hash.h"
#include "vs_image.h"

#define HUGE_LEN (64u << 20)        /* the oversized image, streamed without a length */
#define MAX_IMG_BYTES (256u << 10)  /* max_image_bytes of the tests */
#define LOG_MAX 2048
#define EV_MAX 512
#define N_JPEG 4

/* ---- the server ---- */

typedef struct test_server {
    struct MHD_Daemon *d;
    int port;
    int id; /* 0 = 127.0.0.1 ("a"), 1 = 127.0.0.2 ("b") */
} test_server;

typedef struct req_rec {
    int server;
    char path[256];
    char host[128];
    char ua[160];
    int64_t t_ms;
    long seq;
} req_rec;

static test_server g_a = {.id = 0}, g_b = {.id = 1};
static int g_have_b; /* 127.0.0.2 could be bound */
static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
static req_rec g_log[LOG_MAX];
static int g_n_log;
static atomic_long g_seq;           /* orders server requests and sink events */
static atomic_int g_robots_variant; /* which robots.txt is served */
static atomic_int g_busy_left;      /* /busy.html answers 429 this many more times */
static char g_big_robots[700 * 1024]; /* rules, 600 KiB of comments, then a rule past the 512 KiB read */
static atomic_size_t g_huge_sent;   /* bytes of /huge.jpg handed to MHD */
static atomic_int g_slow_started, g_release, g_stopping;
static uint8_t *g_jpg[N_JPEG];
static size_t g_jpg_len[N_JPEG];

static void log_clear(void) {
    pthread_mutex_lock(&g_log_mu);
    g_n_log = 0;
    pthread_mutex_unlock(&g_log_mu);
}

/* Requests of server `srv` (-1 = any) for path (NULL = any). */
static int log_count(int srv, const char *path) {
    int n = 0;
    pthread_mutex_lock(&g_log_mu);
    for (int i = 0; i < g_n_log; i++)
        if ((srv < 0 || g_log[i].server == srv) && (!path || !strcmp(g_log[i].path, path))) n++;
    pthread_mutex_unlock(&g_log_mu);
    return n;
}

/* Requests of server srv for path made with User-Agent ua. */
static int log_count_ua(int srv, const char *path, const char *ua) {
    int n = 0;
    pthread_mutex_lock(&g_log_mu);
    for (int i = 0; i < g_n_log; i++)
        n += g_log[i].server == srv && !strcmp(g_log[i].path, path) && !strcmp(g_log[i].ua, ua);
    pthread_mutex_unlock(&g_log_mu);
    return n;
}

/* A copy of the log (the caller reads it without the lock); returns its length. */
static int log_snapshot(req_rec *out) {
    pthread_mutex_lock(&g_log_mu);
    int n = g_n_log;
    memcpy(out, g_log, (size_t)n * sizeof *out);
    pthread_mutex_unlock(&g_log_mu);
    return n;
}

/* Streams HUGE_LEN bytes that start like a JPEG (so the head check passes)
 * with no Content-Length: only the running total can stop it. */
static ssize_t huge_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)cls;
    if (pos >= HUGE_LEN) return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = HUGE_LEN - (size_t)pos < max ? HUGE_LEN - (size_t)pos : max;
    memset(buf, 0x55, n);
    if (pos == 0 && n >= 32) memcpy(buf, g_jpg[0], 32);
    atomic_fetch_add(&g_huge_sent, n);
    return (ssize_t)n;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const void *body, size_t len,
                             const char *ctype, const char *location) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (ctype) MHD_add_response_header(r, "Content-Type", ctype);
    if (location) MHD_add_response_header(r, "Location", location);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result html(struct MHD_Connection *conn, const char *body) {
    return reply(conn, 200, body, strlen(body), "text/html; charset=utf-8", NULL);
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned status, const char *body) {
    return reply(conn, status, body, strlen(body), "text/plain", NULL);
}

static enum MHD_Result jpeg(struct MHD_Connection *conn, int i) {
    return reply(conn, 200, g_jpg[i], g_jpg_len[i], "image/jpeg", NULL);
}

static enum MHD_Result redirect(struct MHD_Connection *conn, unsigned status, const char *to) {
    return reply(conn, status, "", 0, NULL, to);
}

/* The site. Both servers serve it; links to the other host are absolute. */
static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size,
                               void **con_cls) {
    (void)method, (void)version, (void)upload_data, (void)upload_data_size, (void)con_cls;
    test_server *s = cls;
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    const char *ua = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "User-Agent");
    pthread_mutex_lock(&g_log_mu);
    if (g_n_log < LOG_MAX) {
        req_rec *r = &g_log[g_n_log++];
        r->server = s->id;
        snprintf(r->path, sizeof r->path, "%s", url);
        snprintf(r->host, sizeof r->host, "%s", host ? host : "");
        snprintf(r->ua, sizeof r->ua, "%s", ua ? ua : "");
        r->t_ms = vs_now_ms();
        r->seq = atomic_fetch_add(&g_seq, 1);
    }
    pthread_mutex_unlock(&g_log_mu);

    char buf[8192], loc[256];
    if (!strcmp(url, "/robots.txt")) {
        switch (atomic_load(&g_robots_variant)) {
        case 1: return text(conn, 200, "User-agent: *\nDisallow: /private/\nCrawl-delay: 0.4\n");
        case 2: return text(conn, 503, "busy");
        case 3: return text(conn, 200, "User-agent: visagetest\nDisallow: /\n\nUser-agent: *\nAllow: /\n");
        case 4: return text(conn, 404, "none");
        case 5: return text(conn, 200, g_big_robots);
        case 6: return redirect(conn, 302, "/robots.txt");
        default: return text(conn, 200, "User-agent: *\nDisallow: /private/\n");
        }
    }
    if (!strcmp(url, "/index.html")) {
        snprintf(buf, sizeof buf,
                 "<!doctype html><html><head><title>index</title></head><body>\n"
                 "<a href=\"page1.html\">one</a> <a href=\"page1.html#again\">one again</a>\n"
                 "<a href=\"/private/secret.html\">secret</a>\n"
                 "<a href=\"/old\">old</a> <a href=\"/l1\">loop</a> <a href=\"/away\">away</a>\n"
                 "<a href=\"http://127.0.0.2:%d/b.html\">other host</a>\n"
                 "<a href=\"/missing.html\">missing</a>\n"
                 "<a href=\"/photo.jpg\">a photo</a>\n"
                 "<a href=\"c1.html\">chain</a>\n"
                 "<img src=\"/img/a.jpg\">\n"
                 "<img srcset=\"/img/small.jpg 100w, /img/large.jpg 800w\" src=\"/img/fallback.jpg\">\n"
                 "<img src=\"fake.jpg\"> <img src=\"/huge.jpg\"> <img src=\"/img/copy.jpg\">\n"
                 "<img src=\"/private/p.jpg\">\n"
                 "</body></html>\n",
                 g_b.port);
        return html(conn, buf);
    }
    if (!strcmp(url, "/page1.html"))
        return html(conn, "<html><body><a href=\"index.html\">home</a><img src=\"img/a.jpg\"></body></html>");
    if (!strcmp(url, "/new.html")) return html(conn, "<html><body><p>moved here</p><img src=\"/img/new.jpg\"></body></html>");
    if (!strcmp(url, "/old")) return redirect(conn, 301, "/new.html");
    if (!strcmp(url, "/l1")) return redirect(conn, 302, "/l2");
    if (!strcmp(url, "/l2")) return redirect(conn, 302, "/l1");
    if (!strcmp(url, "/away")) {
        snprintf(loc, sizeof loc, "http://127.0.0.2:%d/other.html", g_b.port);
        return redirect(conn, 302, loc);
    }
    if (url[0] == '/' && url[1] == 'c' && url[2] >= '0' && url[2] <= '3' && !strcmp(url + 3, ".html")) {
        int d = url[2] - '0';
        if (d < 3) snprintf(buf, sizeof buf, "<html><body><a href=\"c%d.html\">next</a><img src=\"/img/a.jpg\"></body></html>", d + 1);
        else snprintf(buf, sizeof buf, "<html><body>the end</body></html>");
        return html(conn, buf);
    }
    /* /r0 -> /r1 -> /r2 -> /r3 (a page) */
    if (url[0] == '/' && url[1] == 'r' && url[2] >= '0' && url[2] <= '2' && !url[3]) {
        snprintf(loc, sizeof loc, "/r%d", url[2] - '0' + 1);
        return redirect(conn, 302, loc);
    }
    if (!strcmp(url, "/r3")) return html(conn, "<html><body>r3</body></html>");
    if (!strcmp(url, "/gallery.html")) {
        size_t n = (size_t)snprintf(buf, sizeof buf, "<html><body>");
        for (int i = 0; i < 10; i++) n += (size_t)snprintf(buf + n, sizeof buf - n, "<img src=\"/g/%d.jpg\">", i);
        for (int i = 0; i < 10; i++) n += (size_t)snprintf(buf + n, sizeof buf - n, "<a href=\"/p%d.html\">p</a>", i);
        snprintf(buf + n, sizeof buf - n, "</body></html>");
        return html(conn, buf);
    }
    if (url[0] == '/' && url[1] == 'p' && url[2] >= '0' && url[2] <= '9' && strspn(url + 2, "0123456789") < 6 &&
        !strcmp(url + 2 + strspn(url + 2, "0123456789"), ".html"))
        return html(conn, "<html><body>leaf</body></html>");
    if (!strcmp(url, "/many.html")) { /* more links than one batch for the sink */
        size_t n = (size_t)snprintf(buf, sizeof buf, "<html><body>");
        for (int i = 0; i < 150; i++) n += (size_t)snprintf(buf + n, sizeof buf - n, "<a href=\"p%d.html\">.</a>", i);
        snprintf(buf + n, sizeof buf - n, "</body></html>");
        return html(conn, buf);
    }
    if (!strncmp(url, "/g/", 3)) return jpeg(conn, (url[3] - '0') % N_JPEG);
    if (!strcmp(url, "/busy.html")) {
        if (atomic_fetch_sub(&g_busy_left, 1) > 0) {
            struct MHD_Response *r = MHD_create_response_from_buffer(4, "slow", MHD_RESPMEM_PERSISTENT);
            MHD_add_response_header(r, "Retry-After", "1");
            enum MHD_Result ret = MHD_queue_response(conn, 429, r);
            MHD_destroy_response(r);
            return ret;
        }
        return html(conn, "<html><body><img src=\"/img/a.jpg\"></body></html>");
    }
    if (!strcmp(url, "/down.html")) return text(conn, 503, "maintenance");
    if (!strcmp(url, "/small.html"))
        return html(conn, "<html><body><img src=\"/img/a.jpg\"><a href=\"/img/copy.jpg\">c</a>"
                          "<a href=\"/old\">o</a><a href=\"new.html\">n</a><a href=\"/missing.html\">m</a>"
                          "<a href=\"/private/x.html\">x</a></body></html>");
    if (!strcmp(url, "/imgtests.html"))
        return html(conn, "<html><body><img src=\"/moved.jpg\"><img src=\"/img/gone.jpg\"></body></html>");
    if (!strcmp(url, "/moved.jpg")) return redirect(conn, 302, "/img/target.jpg");
    if (!strcmp(url, "/twohost.html")) {
        snprintf(buf, sizeof buf, "<html><body><a href=\"http://127.0.0.2:%d/b.html\">b</a><a href=\"/away\">x</a></body></html>",
                 g_b.port);
        return html(conn, buf);
    }
    if (!strcmp(url, "/b.html") || !strcmp(url, "/other.html"))
        return html(conn, "<html><body><img src=\"/img/b.jpg\"></body></html>");
    if (!strcmp(url, "/img/a.jpg") || !strcmp(url, "/img/copy.jpg") || !strcmp(url, "/private/p.jpg")) return jpeg(conn, 0);
    if (!strcmp(url, "/img/large.jpg") || !strcmp(url, "/img/small.jpg") || !strcmp(url, "/img/fallback.jpg") ||
        !strcmp(url, "/img/target.jpg"))
        return jpeg(conn, 1);
    if (!strcmp(url, "/photo.jpg") || !strcmp(url, "/img/b.jpg")) return jpeg(conn, 2);
    if (!strcmp(url, "/img/new.jpg")) return jpeg(conn, 3);
    if (!strcmp(url, "/fake.jpg")) {
        const char *t = "<html><body>this is not an image at all</body></html>";
        return reply(conn, 200, t, strlen(t), "image/jpeg", NULL);
    }
    if (!strcmp(url, "/huge.jpg")) {
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, huge_reader, NULL, NULL);
        MHD_add_response_header(r, "Content-Type", "image/jpeg");
        enum MHD_Result ret = MHD_queue_response(conn, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (!strcmp(url, "/slow.jpg")) {
        atomic_store(&g_slow_started, 1);
        for (int i = 0; i < 60 && !atomic_load(&g_release) && !atomic_load(&g_stopping); i++) usleep(50 * 1000);
        return jpeg(conn, 2);
    }
    const char *t = "<html><body><h1>404 Not Found</h1><p>nothing here</p></body></html>";
    return reply(conn, 404, t, strlen(t), "text/html", NULL);
}

static int server_start(test_server *s, const char *ip) {
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, ip, &sin.sin_addr);
    s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_END);
    if (!s->d) return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    return s->port > 0 ? 0 : -1;
}

/* Small distinct JPEGs (solid colours) made with the project's encoder. */
static int make_jpegs(void) {
    static const uint8_t rgb[N_JPEG][3] = {{200, 30, 30}, {30, 200, 30}, {30, 30, 200}, {120, 120, 10}};
    for (int i = 0; i < N_JPEG; i++) {
        vs_image img = {0};
        vs_error e = {0};
        if (vs_image_alloc(&img, 16, 16, 3, &e) != VS_OK) return -1;
        for (int p = 0; p < 16 * 16; p++) memcpy(img.data + 3 * p, rgb[i], 3);
        vs_err rc = vs_image_encode_jpeg(&img, 90, &g_jpg[i], &g_jpg_len[i], &e);
        vs_image_free(&img);
        if (rc != VS_OK || g_jpg_len[i] < 32) return -1;
    }
    return 0;
}

static int group_setup(void **state) {
    (void)state;
    if (make_jpegs() != 0) return -1;
    if (server_start(&g_a, "127.0.0.1") != 0) return -1;
    g_have_b = server_start(&g_b, "127.0.0.2") == 0;
    if (!g_have_b) {
        fprintf(stderr, "note: no server on 127.0.0.2; the two-host checks are skipped\n");
        g_b.d = NULL;
        g_b.port = 9; /* discard port: a refused connection, never a foreign service */
    }
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    atomic_store(&g_stopping, 1);
    if (g_a.d) MHD_stop_daemon(g_a.d);
    if (g_b.d) MHD_stop_daemon(g_b.d);
    for (int i = 0; i < N_JPEG; i++) vs_free(g_jpg[i]);
    return 0;
}

/* "http://127.0.0.1:PORT" + path, in one of a few rotating buffers. */
static const char *url_a(const char *path) {
    static char bufs[8][300];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 300, "http://127.0.0.1:%d%s", g_a.port, path);
    return b;
}

/* ---- the sink ---- */

typedef struct ev {
    char url[300];
    char msg[300];
    long seq;
} ev;

typedef struct tsink {
    ev discovered[EV_MAX], done[EV_MAX], errors[EV_MAX], images[EV_MAX];
    int n_discovered, n_done, n_errors, n_images;
    char saved_sha[EV_MAX][VS_SHA256_HEX];
    int n_saved;
    const char *fail_on;      /* image URL containing this: the sink fails */
    vs_err fail_rc;
    int discovered_fail;      /* discovered fails from this call on (1-based; 0 = never) */
    int n_discovered_calls;
    int max_batch;            /* most URLs in one discovered call */
    int progress_calls;
    vs_crawl_counts done_counts; /* passed with the last done */
    int done_counts_bad;         /* a done came with counts that went back or missed an image */
    int64_t start_saved;         /* opts.start.images_saved of the run */
    vs_crawl_counts last_progress;
    vs_crawl_image last_image; /* pointers are dangling after the call: only the fields copied below */
    char img_page[300], img_site[64], img_format[16];
} tsink;

static tsink g_s;

static void ev_add(ev *list, int *n, const char *url, const char *msg) {
    if (*n >= EV_MAX) return;
    ev *e = &list[(*n)++];
    snprintf(e->url, sizeof e->url, "%.*s", (int)sizeof e->url - 1, url);
    snprintf(e->msg, sizeof e->msg, "%.*s", (int)sizeof e->msg - 1, msg ? msg : "");
    e->seq = atomic_fetch_add(&g_seq, 1);
}

static int ev_count(const ev *list, int n, const char *url) {
    int k = 0;
    for (int i = 0; i < n; i++) k += !strcmp(list[i].url, url);
    return k;
}

static const ev *ev_find(const ev *list, int n, const char *url) {
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i].url, url)) return &list[i];
    return NULL;
}

static vs_err sink_image(void *ctx, const vs_crawl_image *img, vs_crawl_image_outcome *outcome, vs_error *err) {
    tsink *s = ctx;
    ev_add(s->images, &s->n_images, img->url, NULL);
    snprintf(s->img_page, sizeof s->img_page, "%s", img->page_url);
    snprintf(s->img_site, sizeof s->img_site, "%s", img->site);
    snprintf(s->img_format, sizeof s->img_format, "%s", img->format);
    if (s->fail_on && strstr(img->url, s->fail_on)) return vs_fail(err, s->fail_rc, "sink: disk full storing %s", img->url);
    char sha[VS_SHA256_HEX];
    vs_sha256_hex(img->data, img->len, sha);
    for (int i = 0; i < s->n_saved; i++)
        if (!strcmp(s->saved_sha[i], sha)) {
            *outcome = VS_CRAWL_IMG_DUPLICATE;
            return VS_OK;
        }
    if (s->n_saved < EV_MAX) memcpy(s->saved_sha[s->n_saved++], sha, VS_SHA256_HEX);
    *outcome = VS_CRAWL_IMG_SAVED;
    return VS_OK;
}

static vs_err sink_discovered(void *ctx, const vs_crawl_url *urls, int n, vs_error *err) {
    tsink *s = ctx;
    s->n_discovered_calls++;
    if (s->discovered_fail && s->n_discovered_calls >= s->discovered_fail)
        return vs_fail(err, VS_ERR_IO, "sink: database is down");
    if (n > s->max_batch) s->max_batch = n;
    for (int i = 0; i < n; i++) ev_add(s->discovered, &s->n_discovered, urls[i].url, NULL);
    return VS_OK;
}

static void sink_done(void *ctx, const vs_crawl_url *u, const vs_crawl_counts *k) {
    tsink *s = ctx;
    /* the counts come with the URL they include: they never go back, and
     * every image the sink saved so far is in them */
    if (s->n_done > 0) {
        const vs_crawl_counts *p = &s->done_counts;
        if (k->requests < p->requests || k->pages_fetched < p->pages_fetched || k->images_fetched < p->images_fetched ||
            k->images_saved < p->images_saved || k->errors < p->errors || k->bytes < p->bytes)
            s->done_counts_bad = 1;
    }
    if (k->images_saved - s->start_saved != s->n_saved) s->done_counts_bad = 1;
    s->done_counts = *k;
    ev_add(s->done, &s->n_done, u->url, NULL);
}

static void sink_progress(void *ctx, const vs_crawl_counts *k) {
    tsink *s = ctx;
    s->progress_calls++;
    s->last_progress = *k;
}

static void sink_url_error(void *ctx, const vs_crawl_url *u, const char *msg) {
    tsink *s = ctx;
    ev_add(s->errors, &s->n_errors, u->url, msg);
}

static vs_crawl_sink test_sink(void) {
    return (vs_crawl_sink){.ctx = &g_s, .image = sink_image, .discovered = sink_discovered, .done = sink_done,
                           .progress = sink_progress, .url_error = sink_url_error};
}

/* Resets the sink, the server log and the site variant for a new test. */
static void reset(void) {
    memset(&g_s, 0, sizeof g_s);
    log_clear();
    atomic_store(&g_robots_variant, 0);
    if (!g_big_robots[0]) {
        size_t n = (size_t)snprintf(g_big_robots, sizeof g_big_robots, "User-agent: *\nDisallow: /private/\n");
        while (n < 600 * 1024) n += (size_t)snprintf(g_big_robots + n, sizeof g_big_robots - n, "# padding line\n");
        snprintf(g_big_robots + n, sizeof g_big_robots - n, "Disallow: /small.html\n");
    }
}

/* Options for the loopback site: no delay, small image limit. */
static vs_crawl_opts site_opts(void) {
    return (vs_crawl_opts){.max_depth = 1, .delay_ms = -1, .per_host = 2, .timeout_ms = 5000,
                           .max_image_bytes = MAX_IMG_BYTES, .allow_cidrs = "127.0.0.0/8"};
}

/* New crawl, seed path on server a, run, counts; the seed error is copied out. */
static vs_err crawl_site(const vs_crawl_opts *o, const char *seed_path, const atomic_int *stop, vs_crawl_counts *k,
                         vs_error *e, char *seed_err, size_t seed_err_cap) {
    vs_crawl *c = NULL;
    vs_crawl_sink sink = test_sink();
    vs_err rc = vs_crawl_new(o, &sink, &c, e);
    if (rc != VS_OK) return rc;
    rc = vs_crawl_seed(c, url_a(seed_path), e);
    if (rc == VS_OK) rc = vs_crawl_run(c, stop, e);
    vs_crawl_get_counts(c, k);
    if (seed_err) snprintf(seed_err, seed_err_cap, "%s", vs_crawl_seed_error(c) ? vs_crawl_seed_error(c) : "");
    vs_crawl_free(c);
    return rc;
}

/* Fails unless every path of server srv was requested once by user agent
 * ua (NULL = any). */
static void assert_each_once_ua(int srv, const char *ua) {
    static req_rec snap[LOG_MAX];
    int n = log_snapshot(snap);
    for (int i = 0; i < n; i++) {
        if (snap[i].server != srv || (ua && strcmp(snap[i].ua, ua) != 0)) continue;
        int k = 0;
        for (int j = 0; j < n; j++)
            k += snap[j].server == srv && !strcmp(snap[j].path, snap[i].path) && (!ua || !strcmp(snap[j].ua, ua));
        if (k != 1) fail_msg("%s requested %d times on server %d", snap[i].path, k, srv);
    }
}

static void assert_each_once(int srv) { assert_each_once_ua(srv, NULL); }

/* Fails unless robots.txt was the first request of server srv (when it got any) and asked once. */
static void assert_robots_first(int srv) {
    static req_rec snap[LOG_MAX];
    int n = log_snapshot(snap);
    for (int i = 0; i < n; i++) {
        if (snap[i].server != srv) continue;
        if (strcmp(snap[i].path, "/robots.txt") != 0) fail_msg("first request of server %d was %s", srv, snap[i].path);
        break;
    }
    if (log_count(srv, NULL) > 0) assert_int_equal(log_count(srv, "/robots.txt"), 1);
}

/* Fails unless the set of discovered URLs equals the set of done URLs, each once. */
static void assert_discovered_all_done(void) {
    assert_false(g_s.done_counts_bad);
    for (int i = 0; i < g_s.n_discovered; i++) {
        const char *u = g_s.discovered[i].url;
        if (ev_count(g_s.discovered, g_s.n_discovered, u) != 1) fail_msg("%s discovered twice", u);
        if (ev_count(g_s.done, g_s.n_done, u) != 1)
            fail_msg("%s discovered but done %d times", u, ev_count(g_s.done, g_s.n_done, u));
    }
    for (int i = 0; i < g_s.n_done; i++)
        if (!ev_find(g_s.discovered, g_s.n_discovered, g_s.done[i].url)) fail_msg("%s done but never discovered", g_s.done[i].url);
}

/* ---- the whole site ---- */

static void test_site_crawl(void **state) {
    (void)state;
    reset();
    vs_crawl_opts o = site_opts();
    o.user_agent = "visagetest/9.9 (+http://example.invalid/bot)";
    vs_crawl_counts k;
    vs_error e = {0};
    atomic_store(&g_huge_sent, 0);
    vs_err rc = crawl_site(&o, "/index.html", NULL, &k, &e, NULL, 0);
    if (rc != VS_OK) fail_msg("crawl: %s", e.msg);

    /* robots.txt first, once; every URL at most once; the other host never */
    assert_robots_first(0);
    assert_each_once(0);
    assert_int_equal(log_count(1, NULL), 0);
    /* robots.txt disallowed: never requested */
    assert_int_equal(log_count(0, "/private/secret.html"), 0);
    assert_int_equal(log_count(0, "/private/p.jpg"), 0);
    assert_int_equal(k.robots_blocked, 2);
    assert_int_equal(k.out_of_scope, 2); /* b.html linked, other.html redirected to */
    /* the redirect and its target; the loop ends */
    assert_int_equal(log_count(0, "/old"), 1);
    assert_int_equal(log_count(0, "/new.html"), 1);
    assert_int_equal(log_count(0, "/img/new.jpg"), 1);
    assert_int_equal(log_count(0, "/l1"), 1);
    assert_int_equal(log_count(0, "/l2"), 1);
    assert_int_equal(log_count(0, "/away"), 1);
    assert_int_equal(k.redirects, 4);
    /* srcset: the largest candidate only */
    assert_int_equal(log_count(0, "/img/large.jpg"), 1);
    assert_int_equal(log_count(0, "/img/small.jpg"), 0);
    assert_int_equal(log_count(0, "/img/fallback.jpg"), 0);
    /* <a href> to a .jpg is fetched as an image; relative links resolve */
    assert_int_equal(log_count(0, "/photo.jpg"), 1);
    assert_int_equal(log_count(0, "/page1.html"), 1);
    assert_int_equal(log_count(0, "/fake.jpg"), 1);
    /* depth 1: c1 is fetched, c2 (depth 2) is not */
    assert_int_equal(log_count(0, "/c1.html"), 1);
    assert_int_equal(log_count(0, "/c2.html"), 0);

    /* pages: index, page1, new, c1; images: a, large, fake, huge, copy, photo, new */
    assert_int_equal(k.pages_fetched, 4);
    assert_int_equal(k.images_fetched, 7);
    assert_int_equal(k.images_saved, 4);     /* a, large, photo, new */
    assert_int_equal(k.images_duplicate, 1); /* copy = a's bytes */
    assert_int_equal(k.images_skipped, 2);   /* fake (text), huge (too large) */
    assert_int_equal(k.errors, 1);           /* missing.html */
    assert_int_equal(k.requests, log_count(0, NULL));
    assert_int_equal(k.requests, 17);
    /* the oversized transfer was aborted early */
    assert_true(k.bytes < (int64_t)(2 * MAX_IMG_BYTES));
    if (atomic_load(&g_huge_sent) >= HUGE_LEN / 2)
        fail_msg("server sent %zu of %u bytes of /huge.jpg", (size_t)atomic_load(&g_huge_sent), HUGE_LEN);

    /* the sink saw the images that are images, each once, with their context */
    assert_int_equal(g_s.n_images, 5);
    assert_int_equal(ev_count(g_s.images, g_s.n_images, url_a("/img/a.jpg")), 1);
    assert_int_equal(ev_count(g_s.images, g_s.n_images, url_a("/fake.jpg")), 0);
    assert_int_equal(ev_count(g_s.images, g_s.n_images, url_a("/huge.jpg")), 0);
    assert_string_equal(g_s.img_site, "127.0.0.1");
    assert_string_equal(g_s.img_format, "jpeg");
    /* url_error for the 404 and the skipped images */
    const ev *m = ev_find(g_s.errors, g_s.n_errors, url_a("/missing.html"));
    assert_non_null(m);
    assert_non_null(strstr(m->msg, "404"));
    assert_non_null(ev_find(g_s.errors, g_s.n_errors, url_a("/fake.jpg")));
    assert_non_null(ev_find(g_s.errors, g_s.n_errors, url_a("/huge.jpg")));

    /* discovered before requested, done after; every discovered URL done once */
    static req_rec snap[LOG_MAX];
    int n = log_snapshot(snap);
    for (int i = 0; i < n; i++) {
        if (!strcmp(snap[i].path, "/robots.txt")) continue;
        const char *u = url_a(snap[i].path);
        const ev *d = ev_find(g_s.discovered, g_s.n_discovered, u), *f = ev_find(g_s.done, g_s.n_done, u);
        if (!d || d->seq > snap[i].seq) fail_msg("%s requested before it was discovered", u);
        if (!f || f->seq < snap[i].seq) fail_msg("%s not done after its request", u);
        assert_string_equal(snap[i].ua, "visagetest/9.9 (+http://example.invalid/bot)");
        char host[64];
        snprintf(host, sizeof host, "127.0.0.1:%d", g_a.port);
        assert_string_equal(snap[i].host, host);
    }
    assert_discovered_all_done();
    assert_non_null(ev_find(g_s.done, g_s.n_done, url_a("/private/secret.html"))); /* refused URLs are done too */
    assert_null(ev_find(g_s.discovered, g_s.n_discovered, url_a("/img/small.jpg")));
    /* the last done came with the counts of everything but robots.txt requests */
    assert_int_equal(g_s.done_counts.images_saved, k.images_saved);
    assert_int_equal(g_s.done_counts.pages_fetched, k.pages_fetched);
    assert_false(g_s.done_counts_bad);
    /* the progress callback ran at least at the end, with the final counts */
    assert_true(g_s.progress_calls >= 1);
    assert_memory_equal(&g_s.last_progress, &k, sizeof k);
}

/* Two origins in scope: each gets its own robots.txt, first and once. */
static void test_two_hosts_robots_each(void **state) {
    (void)state;
    if (!g_have_b) skip();
    reset();
    vs_crawl_opts o = site_opts();
    o.allow_hosts = "example.invalid, 127.0.0.2";
    vs_crawl_counts k;
    vs_error e = {0};
    if (crawl_site(&o, "/twohost.html", NULL, &k, &e, NULL, 0) != VS_OK) fail_msg("crawl: %s", e.msg);
    assert_robots_first(0);
    assert_robots_first(1);
    assert_each_once(0);
    assert_each_once(1);
    assert_int_equal(log_count(1, "/b.html"), 1);
    assert_int_equal(log_count(1, "/other.html"), 1);
    assert_int_equal(log_count(1, "/img/b.jpg"), 1);
    assert_int_equal(k.out_of_scope, 0);
    assert_int_equal(k.images_saved, 1);
    assert_int_equal(k.images_duplicate, 0); /* one URL, requested once, though linked from two pages */
    assert_discovered_all_done();
}

/* ---- depth and limits ---- */

static void test_depth_limit(void **state) {
    (void)state;
    for (int depth = 0; depth <= 3; depth++) {
        reset();
        vs_crawl_opts o = site_opts();
        o.max_depth = depth;
        vs_crawl_counts k;
        vs_error e = {0};
        if (crawl_site(&o, "/c0.html", NULL, &k, &e, NULL, 0) != VS_OK) fail_msg("crawl: %s", e.msg);
        for (int d = 0; d <= 3; d++) {
            char p[16];
            snprintf(p, sizeof p, "/c%d.html", d);
            if (log_count(0, p) != (d <= depth)) fail_msg("max_depth %d: %s requested %d times", depth, p, log_count(0, p));
        }
        assert_int_equal(k.pages_fetched, depth + 1);
        /* the image of every fetched page (the same URL each time: once) */
        assert_int_equal(log_count(0, "/img/a.jpg"), 1);
        assert_int_equal(k.images_saved, 1);
    }
}

static void test_max_pages_and_images(void **state) {
    (void)state;
    reset();
    vs_crawl_opts o = site_opts();
    o.max_pages = 3;
    o.max_images = 4;
    vs_crawl_counts k;
    vs_error e = {0};
    if (crawl_site(&o, "/gallery.html", NULL, &k, &e, NULL, 0) != VS_OK) fail_msg("crawl: %s", e.msg);
    int pages = 0, images = 0;
    static req_rec snap[LOG_MAX];
    int n = log_snapshot(snap);
    for (int i = 0; i < n; i++) {
        if (!strncmp(snap[i].path, "/g/", 3)) images++;
        else if (strcmp(snap[i].path, "/robots.txt") != 0) pages++;
    }
    assert_int_equal(pages, 3);   /* the gallery and two of its links */
    assert_int_equal(images, 4);
    assert_int_equal(k.pages_fetched, 3);
    assert_int_equal(k.images_fetched, 4);
    assert_int_equal(g_s.n_discovered, 3 + 4);
    assert_discovered_all_done();

    /* max_images 1 with the seed page counted separately */
    reset();
    o.max_pages = 1;
    o.max_images = 1;
    if (crawl_site(&o, "/gallery.html", NULL, &k, &e, NULL, 0) != VS_OK) fail_msg("crawl: %s", e.msg);
    assert_int_equal(log_count(0, NULL), 3); /* robots, gallery, one image */
    assert_int_equal(k.pages_fetched, 1);
    assert_int_equal(k.images_fetched, 1);
}

/* A redirect chain longer than max_redirects stops; a shorter one arrives. */
static void test_max_redirects(void **state) {
    (void)state;
    reset();
    vs_crawl_opts o = site_opts();
    o.max_redirects = 5;
    vs_crawl_counts k;
    vs_error e = {0};
    char seed_err[VS_ERROR_MSG_MAX];
    if (crawl_site(&o, "/r0", NULL, &k, &e, seed_err, sizeof seed_err) != VS_OK) fail_msg("crawl: %s", e.msg);
    assert_int_equal(log_count(0, "/r3"), 1);
    assert_int_equal(k.redirects, 3);
    assert_int_equal(k.pages_fetched, 1);
    assert_int_equal(k.errors, 0);
    assert_string_equal(seed_err, "");

    reset();
    o.max_redirects = 2;
    if (crawl_site(&o, "/r0", NULL, &k, &e, seed_err, sizeof seed_err) != VS_OK) fail_msg("crawl: %s", e.msg);
    assert_int_equal(log_count(0, "/r2"), 1);
    assert_int_equal(log_count(0, "/r3"), 0);
    assert_int_equal(k.pages_fetched, 0);
    assert_int_equal(k.errors, 1);
    assert_non_null(strstr(seed_err, "too many redirects")); /* the chain the seed started */
    assert_discovered_all_done();
}

/* An image URL that redirects is followed to the image; a 404 image is an
 * error, not "not an image". */
static void test_image_redirect_and_404(void **state) {
    (void)state;
    reset();
    vs_crawl_opts o = site_opts();
    vs_crawl_counts k;
    vs_error e = {0};
    if (crawl_site(&o, "/imgtests.html", NULL, &k, &e, NULL, 0) != VS_OK) fail_msg("crawl: %s", e.msg);
    assert_int_equal(log_count(0, "/moved.jpg"), 1);
    assert_int_equal(log_count(0, "/img/target.jpg"), 1);
    assert_int_equal(log_count(0, "/img/gone.jpg"), 1);
    assert_int_equal(k.redirects, 1);
    assert_int_equal(k.images_saved, 1);
    assert_int_equal(k.images_skipped, 0);
    assert_int_equal(k.errors, 1);
    const ev *m = ev_find(g_s.errors, g_s.n_errors, url_a("/img/gone.jpg"));
    assert_non_null(m);
    assert_non_null(strstr(m->msg, "HTTP 404"));
    assert_discovered_all_done();
}

/* ---- robots.txt ---- */

static void test_robots_variants(void **state) {
    (void)state;
    vs_crawl_counts k;
    vs_error e = {0};
    /* 5xx: the host is skipped, nothing but robots.txt is requested */
    reset();
    atomic_store(&g_robots_variant, 2);
    vs_crawl_opts o = site_opts();
    if (crawl_site(&o, "/index.html", NULL, &k, &e, NULL, 0) != VS_OK) fail_msg("crawl: %s", e.msg);
    assert_int_equal(log_count(0, NULL), 1);
    assert_int_equal(k.robots_blocked, 1);
    assert_int_equal(k.requests, 1);
    assert_true(g_s.n_errors >= 1);
    assert_non_null(strstr(g_s.errors[0].msg, "robots.txt unreachable"));
    assert_discovered_all_done();

    /* 404: no rules, everything allowed (even /private/) */
    reset();
    atomic_store(&g_robots_variant, 4);
    if (crawl_site(&o, "/small.html", NULL, &k, &e, NULL, 0) != VS_OK) fail_msg("crawl: %s", e.msg);
    assert_int_equal(log_count(0, "/small.html"), 1);
    assert_int_equal(log_count(0, "/private/x.html"), 1);
    assert_int_equal(k.robots_blocked, 0);

    /* a group for our product token: the User-Agent is what robots.txt is read for */
    reset();
    atomic_store(&g_robots_variant, 3);
    o.user_agent = "visagetest/2.0";
    if (crawl_site(&o, "/small.html", NULL, &k, &e, NULL, 0) != VS_OK) fail_msg("crawl: %s", e.msg);
    assert_int_equal(log_count(0, NULL), 1);
    assert_int_equal(k.robots_blocked, 1);
    reset();
    atomic_store(&g_robots_variant, 3);
    o.user_agent = "otherbot/1.0";
    if (crawl_site(&o, "/small.html", NULL, &k, &e, NULL, 0) != VS_OK) fail_msg("crawl: %s", e.msg);
    assert_int_equal(log_count(0, "/small.html"), 1);
    assert_int_equal(k.robots_blocked, 0);

    /* a robots.txt over 512 KiB: its start is read and obeyed, the rest
     * ignored (RFC 9309 2.5), rather than the host being skipped */
    reset();
    atomic_store(&g_robots_variant, 5);
    o.user_agent = NULL;
    if (crawl_site(&o, "/small.html", NULL, &k, &e, NULL, 0) != VS_OK) fail_msg("crawl: %s", e.msg);
    assert_int_equal(log_count(0, "/small.html"), 1);
    assert_int_equal(log_count(0, "/private/x.html"), 0);
    assert_int_equal(k.robots_blocked, 1);

    /* more than 5 redirects for robots.txt: "unavailable", like a 4xx */
    reset();
    atomic_store(&g_robots_variant, 6);
    if (crawl_site(&o, "/small.html", NULL, &k, &e, NULL, 0) != VS_OK) fail_msg("crawl: %s", e.msg);
    assert_int_equal(log_count(0, "/small.html"), 1);
    assert_int_equal(k.robots_blocked, 0);
}

/* ---- politeness ---- */

/* Fails unless consecutive requests to server a started >= min_ms apart
 * (from request first_pair on); returns the number of requests. */
static int assert_gaps(int64_t min_ms, int first_pair) {
    static req_rec snap[LOG_MAX];
    int n = log_snapshot(snap), prev = -1, pair = 0;
    for (int i = 0; i < n; i++) {
        if (snap[i].server != 0) continue;
        if (prev >= 0 && pair++ >= first_pair && snap[i].t_ms - snap[prev].t_ms < min_ms)
            fail_msg("%s came %lld ms after %s (want >= %lld)", snap[i].path, (long long)(snap[i].t_ms - snap[prev].t_ms),
                     snap[prev].path, (long long)min_ms);
        prev = i;
    }
    return n;
}

static void test_politeness_delay(void **state) {
    (void)state;
    reset();
    vs_crawl_opts o = site_opts();
    o.max_depth = 2;
    o.delay_ms = 200;
    o.per_host = 1;
    vs_crawl_counts k;
    vs_error e = {0};
    int64_t t0 = vs_now_ms();
    if (crawl_site(&o, "/c0.html", NULL, &k, &e, NULL, 0) != VS_OK) fail_msg("crawl: %s", e.msg);
    int64_t dt = vs_now_ms() - t0;
    int n = assert_gaps(190, 0);
    assert_int_equal(n, 5); /* robots, c0, c1, c2, a.jpg */
    assert_true(dt >= 4 * 190);
    if (dt > 3000) fail_msg("a 5-request crawl with 200 ms delays took %lld ms", (long long)dt);
}

static void test_crawl_delay_honoured(void **state) {
    (void)state;
    reset();
    atomic_store(&g_robots_variant, 1); /* Crawl-delay: 0.4 */
    vs_crawl_opts o = site_opts();
    o.max_depth = 1;
    o.delay_ms = 50;
    o.per_host = 1;
    vs_crawl_counts k;
    vs_error e = {0};
    if (crawl_site(&o, "/c0.html", NULL, &k, &e, NULL, 0) != VS_OK) fail_msg("crawl: %s", e.msg);
    int n = assert_gaps(390, 0);
    assert_int_equal(n, 4); /* robots, c0, c1, a.jpg */
}

/* ---- seed errors ---- */

static void test_seed_error(void **state) {
    (void)state;
    reset();
    vs_crawl_opts o = site_opts();
    vs_crawl_counts k;
    vs_error e = {0};
    char seed_err[VS_ERROR_MSG_MAX];
    assert_int_equal(crawl_site(&o, "/missing.html", NULL, &k, &e, seed_err, sizeof seed_err), VS_OK);
    assert_non_null(strstr(seed_err, "HTTP 404"));
    assert_int_equal(k.errors, 1);
    assert_int_equal(k.pages_fetched, 0);
    assert_int_equal(g_s.n_errors, 1);
    assert_string_equal(g_s.errors[0].url, url_a("/missing.html"));
    assert_int_equal(g_s.n_done, 1);

    /* a seed robots.txt disallows: nothing fetched, and the seed error says why */
    reset();
    atomic_store(&g_robots_variant, 3);
    o.user_agent = "visagetest/2.0";
    assert_int_equal(crawl_site(&o, "/small.html", NULL, &k, &e, seed_err, sizeof seed_err), VS_OK);
    assert_non_null(strstr(seed_err, "disallows"));
    assert_int_equal(log_count(0, "/small.html"), 0);
    o.user_agent = NULL;
    atomic_store(&g_robots_variant, 0);

    /* a seed that redirects to another site */
    reset();
    assert_int_equal(crawl_site(&o, "/away", NULL, &k, &e, seed_err, sizeof seed_err), VS_OK);
    assert_non_null(strstr(seed_err, "out of scope"));

    /* a good seed has none, even when pages below it fail */
    reset();
    assert_int_equal(crawl_site(&o, "/small.html", NULL, &k, &e, seed_err, sizeof seed_err), VS_OK);
    assert_string_equal(seed_err, "");
    assert_non_null(ev_find(g_s.errors, g_s.n_errors, url_a("/missing.html")));

    /* bad seeds and bad arguments */
    vs_crawl *c = NULL;
    vs_crawl_sink sink = test_sink();
    assert_int_equal(vs_crawl_new(&o, &sink, &c, &e), VS_OK);
    assert_int_equal(vs_crawl_seed(c, "ftp://127.0.0.1/x", &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_crawl_seed(c, "/index.html", &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_crawl_seed(c, NULL, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_crawl_seed(c, "not a url", &e), VS_ERR_INVALID_ARG);
    vs_crawl_free(c);
    sink.image = NULL;
    assert_int_equal(vs_crawl_new(&o, &sink, &c, &e), VS_ERR_INVALID_ARG);
    assert_null(c);
    assert_int_equal(vs_crawl_new(&o, NULL, &c, &e), VS_ERR_INVALID_ARG);
    vs_crawl_free(NULL);
}

/* The address policy applies: without allow_cidrs loopback is refused, the
 * URLs fail (counted, done) and nothing reaches the server. */
static void test_address_policy(void **state) {
    (void)state;
    reset();
    vs_crawl_opts o = site_opts();
    o.allow_cidrs = NULL;
    vs_crawl_counts k;
    vs_error e = {0};
    char seed_err[VS_ERROR_MSG_MAX];
    assert_int_equal(crawl_site(&o, "/index.html", NULL, &k, &e, seed_err, sizeof seed_err), VS_OK);
    assert_int_equal(log_count(-1, NULL), 0);
    assert_int_equal(k.errors, 1);
    assert_int_equal(k.robots_blocked, 0);
    assert_non_null(strstr(seed_err, "address not allowed"));
    assert_discovered_all_done();
    /* allow_all reaches it */
    reset();
    o.allow_all = 1;
    o.max_depth = 0;
    assert_int_equal(crawl_site(&o, "/c3.html", NULL, &k, &e, NULL, 0), VS_OK);
    assert_int_equal(log_count(0, "/c3.html"), 1);
}

/* ---- stop ---- */

static void test_stop_before_run(void **state) {
    (void)state;
    reset();
    vs_crawl_opts o = site_opts();
    atomic_int stop = 1;
    vs_crawl_counts k;
    vs_error e = {0};
    assert_int_equal(crawl_site(&o, "/index.html", &stop, &k, &e, NULL, 0), VS_ERR_CANCELLED);
    assert_int_equal(log_count(-1, NULL), 0);
    assert_int_equal(g_s.n_discovered, 1); /* the seed was persisted ... */
    assert_int_equal(g_s.n_done, 0);       /* ... and stays pending */
    assert_int_equal(k.requests, 0);
}

typedef struct stopper {
    atomic_int *stop;
    int64_t set_at;
} stopper;

/* Sets the stop flag once the server is inside /slow.jpg. */
static void *stop_when_slow(void *arg) {
    stopper *s = arg;
    for (int i = 0; i < 400 && !atomic_load(&g_slow_started); i++) usleep(5 * 1000);
    s->set_at = vs_now_ms();
    atomic_store(s->stop, 1);
    return NULL;
}

static void test_stop_while_running(void **state) {
    (void)state;
    reset();
    atomic_store(&g_slow_started, 0);
    atomic_store(&g_release, 0);
    vs_crawl_opts o = site_opts();
    atomic_int stop = 0;
    stopper st = {.stop = &stop};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stop_when_slow, &st), 0);
    vs_crawl_counts k;
    vs_error e = {0};
    vs_err rc = crawl_site(&o, "/slow.jpg", &stop, &k, &e, NULL, 0);
    int64_t back = vs_now_ms();
    pthread_join(th, NULL);
    atomic_store(&g_release, 1);
    assert_int_equal(rc, VS_ERR_CANCELLED);
    assert_true(atomic_load(&g_slow_started));
    if (back - st.set_at > 1000) fail_msg("run returned %lld ms after the stop", (long long)(back - st.set_at));
    assert_int_equal(log_count(0, "/slow.jpg"), 1);
    assert_non_null(ev_find(g_s.discovered, g_s.n_discovered, url_a("/slow.jpg")));
    assert_null(ev_find(g_s.done, g_s.n_done, url_a("/slow.jpg"))); /* in flight: stays pending */
    assert_int_equal(g_s.n_images, 0);
    assert_int_equal(k.images_fetched, 0);
}

/* ---- resume ---- */

static void test_resume(void **state) {
    (void)state;
    reset();
    vs_crawl_opts o = site_opts();
    o.max_depth = 1;
    o.start = (vs_crawl_counts){.requests = 100, .pages_fetched = 7, .images_saved = 3};
    g_s.start_saved = 3;
    vs_crawl *c = NULL;
    vs_crawl_sink sink = test_sink();
    vs_error e = {0};
    assert_int_equal(vs_crawl_new(&o, &sink, &c, &e), VS_OK);
    /* the runner's order: restore the job's URLs, then seed (already known) */
    vs_crawl_url u = {.kind = VS_CRAWL_PAGE};
    snprintf(u.url, sizeof u.url, "%s", url_a("/index.html"));
    assert_int_equal(vs_crawl_restore(c, &u, 0, &e), VS_OK);
    snprintf(u.url, sizeof u.url, "%s", url_a("/page1.html"));
    snprintf(u.referrer, sizeof u.referrer, "%s", url_a("/index.html"));
    u.depth = 1;
    assert_int_equal(vs_crawl_restore(c, &u, 0, &e), VS_OK);
    snprintf(u.url, sizeof u.url, "%s", url_a("/c1.html"));
    assert_int_equal(vs_crawl_restore(c, &u, 1, &e), VS_OK);
    vs_crawl_url im = {.kind = VS_CRAWL_IMAGE, .depth = 0};
    snprintf(im.url, sizeof im.url, "%s", url_a("/img/large.jpg"));
    snprintf(im.referrer, sizeof im.referrer, "%s", url_a("/index.html"));
    assert_int_equal(vs_crawl_restore(c, &im, 1, &e), VS_OK);
    snprintf(im.url, sizeof im.url, "%s", url_a("/img/a.jpg")); /* done: c1's image is not fetched again */
    assert_int_equal(vs_crawl_restore(c, &im, 0, &e), VS_OK);
    snprintf(im.url, sizeof im.url, "not a url");
    assert_int_equal(vs_crawl_restore(c, &im, 1, &e), VS_OK); /* unusable: skipped */
    assert_int_equal(vs_crawl_seed(c, url_a("/index.html"), &e), VS_OK);
    assert_int_equal(vs_crawl_run(c, NULL, &e), VS_OK);
    vs_crawl_counts k;
    vs_crawl_get_counts(c, &k);
    vs_crawl_free(c);

    assert_int_equal(log_count(0, "/index.html"), 0);
    assert_int_equal(log_count(0, "/page1.html"), 0);
    assert_int_equal(log_count(0, "/img/a.jpg"), 0);
    assert_int_equal(log_count(0, "/c1.html"), 1);
    assert_int_equal(log_count(0, "/c2.html"), 0); /* depth 2 */
    assert_int_equal(log_count(0, "/img/large.jpg"), 1);
    assert_int_equal(log_count(0, NULL), 3);        /* robots, c1, large */
    assert_int_equal(g_s.n_discovered, 0);          /* restored URLs and the known seed are not re-persisted */
    assert_int_equal(g_s.n_done, 2);
    assert_non_null(ev_find(g_s.done, g_s.n_done, url_a("/c1.html")));
    assert_non_null(ev_find(g_s.done, g_s.n_done, url_a("/img/large.jpg")));
    /* an image restored with its page: the page_url is the referrer */
    assert_string_equal(g_s.img_page, url_a("/index.html"));
    /* counts continue */
    assert_int_equal(k.requests, 103);
    assert_int_equal(k.pages_fetched, 8);
    assert_int_equal(k.images_saved, 4);

    /* a pending seed is fetched once (restored pending, then seeded) */
    reset();
    o.start = (vs_crawl_counts){0};
    o.max_depth = 0;
    assert_int_equal(vs_crawl_new(&o, &sink, &c, &e), VS_OK);
    u = (vs_crawl_url){.kind = VS_CRAWL_PAGE};
    snprintf(u.url, sizeof u.url, "%s", url_a("/c3.html"));
    assert_int_equal(vs_crawl_restore(c, &u, 1, &e), VS_OK);
    assert_int_equal(vs_crawl_seed(c, url_a("/c3.html"), &e), VS_OK);
    assert_int_equal(vs_crawl_run(c, NULL, &e), VS_OK);
    vs_crawl_free(c);
    assert_int_equal(log_count(0, "/c3.html"), 1);
    assert_int_equal(g_s.n_done, 1);
}

/* ---- sink failures ---- */

static void test_sink_image_failure_stops(void **state) {
    (void)state;
    reset();
    g_s.fail_on = "/img/large.jpg";
    g_s.fail_rc = VS_ERR_IO;
    vs_crawl_opts o = site_opts();
    o.per_host = 1;
    vs_crawl_counts k;
    vs_error e = {0};
    assert_int_equal(crawl_site(&o, "/index.html", NULL, &k, &e, NULL, 0), VS_ERR_IO);
    assert_non_null(strstr(e.msg, "disk full"));
    assert_int_equal(ev_count(g_s.images, g_s.n_images, url_a("/img/large.jpg")), 1);
    assert_non_null(ev_find(g_s.discovered, g_s.n_discovered, url_a("/img/large.jpg")));
    assert_null(ev_find(g_s.done, g_s.n_done, url_a("/img/large.jpg")));
    /* nothing new was started after the failure */
    const ev *last_image = &g_s.images[g_s.n_images - 1];
    static req_rec snap[LOG_MAX];
    int n = log_snapshot(snap);
    for (int i = 0; i < n; i++)
        if (snap[i].seq > last_image->seq) fail_msg("%s requested after the sink failed", snap[i].path);
    for (int i = 0; i < g_s.n_done; i++)
        if (g_s.done[i].seq > last_image->seq) fail_msg("%s marked done after the sink failed", g_s.done[i].url);
}

static void test_sink_discovered_failure_stops(void **state) {
    (void)state;
    reset();
    g_s.discovered_fail = 2; /* the seed is persisted, the index's links are not */
    vs_crawl_opts o = site_opts();
    vs_crawl_counts k;
    vs_error e = {0};
    assert_int_equal(crawl_site(&o, "/index.html", NULL, &k, &e, NULL, 0), VS_ERR_IO);
    assert_non_null(strstr(e.msg, "database is down"));
    assert_int_equal(log_count(0, NULL), 2); /* robots, index */
    /* what was not persisted is not fetched, and the page whose links were
     * lost stays pending so that a resume finds them again */
    assert_int_equal(g_s.n_discovered, 1);
    assert_null(ev_find(g_s.done, g_s.n_done, url_a("/index.html")));
    assert_int_equal(g_s.n_done, 0);

    /* failing on the seed: vs_crawl_seed reports it */
    reset();
    g_s.discovered_fail = 1;
    vs_crawl *c = NULL;
    vs_crawl_sink sink = test_sink();
    assert_int_equal(vs_crawl_new(&o, &sink, &c, &e), VS_OK);
    assert_int_equal(vs_crawl_seed(c, url_a("/index.html"), &e), VS_ERR_IO);
    assert_int_equal(vs_crawl_run(c, NULL, &e), VS_ERR_IO);
    vs_crawl_free(c);
    assert_int_equal(log_count(-1, NULL), 0);
}

/* A page with more links than one discovered batch: all persisted (in
 * batches) and fetched; when a later batch fails, the page stays pending
 * and nothing of the page is fetched after the failure. */
static void test_many_links_batches(void **state) {
    (void)state;
    reset();
    vs_crawl_opts o = site_opts();
    o.max_pages = 1000;
    o.max_transfers = 4;
    vs_crawl_counts k;
    vs_error e = {0};
    if (crawl_site(&o, "/many.html", NULL, &k, &e, NULL, 0) != VS_OK) fail_msg("crawl: %s", e.msg);
    assert_int_equal(g_s.n_discovered, 151);
    assert_true(g_s.n_discovered_calls >= 1 + 3);
    assert_true(g_s.max_batch <= 64);
    assert_int_equal(k.pages_fetched, 151);
    assert_int_equal(log_count(0, "/p149.html"), 1);
    assert_each_once(0);
    assert_discovered_all_done();

    reset();
    g_s.discovered_fail = 3; /* the seed, the first batch of many.html, then down */
    assert_int_equal(crawl_site(&o, "/many.html", NULL, &k, &e, NULL, 0), VS_ERR_IO);
    assert_int_equal(g_s.n_discovered, 1 + g_s.max_batch);
    assert_null(ev_find(g_s.done, g_s.n_done, url_a("/many.html")));
    assert_int_equal(log_count(0, NULL), 2); /* robots, many */
}

/* ---- normalisation ---- */

static void test_normalise(void **state) {
    (void)state;
    static const char *cases[][2] = {
        {"HTTP://Example.COM/A/B", "http://example.com/A/B"},
        {"http://example.com:80/x", "http://example.com/x"},
        {"https://example.com:443/x", "https://example.com/x"},
        {"http://example.com:443/x", "http://example.com:443/x"},
        {"https://example.com:8443/x?q=1", "https://example.com:8443/x?q=1"},
        {"http://example.com/x#frag", "http://example.com/x"},
        {"http://example.com/x?a=B#f", "http://example.com/x?a=B"},
        {"http://example.com", "http://example.com/"},
        {"http://example.com?q", "http://example.com/?q"},
        {"HTTPS://WWW.Example.com:443", "https://www.example.com/"},
        {"http://127.0.0.1:8080/p", "http://127.0.0.1:8080/p"},
        {"http://example.com/a/../b/./c", "http://example.com/b/c"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[VS_CRAWL_URL_MAX];
        if (vs_crawl_normalise(cases[i][0], out, sizeof out) != 0) fail_msg("'%s' rejected", cases[i][0]);
        if (strcmp(out, cases[i][1]) != 0) fail_msg("'%s' -> '%s', want '%s'", cases[i][0], out, cases[i][1]);
        /* idempotent */
        char again[VS_CRAWL_URL_MAX];
        assert_int_equal(vs_crawl_normalise(out, again, sizeof again), 0);
        assert_string_equal(again, out);
    }
    static const char *bad[] = {"ftp://example.com/", "file:///etc/passwd", "/relative/path", "relative.html",
                                "//example.com/x", "mailto:a@example.com", "javascript:alert(1)", "", "http://",
                                "data:image/png;base64,AAAA"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char out[VS_CRAWL_URL_MAX];
        if (vs_crawl_normalise(bad[i], out, sizeof out) == 0) fail_msg("'%s' accepted as '%s'", bad[i], out);
    }
    char out[VS_CRAWL_URL_MAX];
    assert_int_equal(vs_crawl_normalise(NULL, out, sizeof out), -1);
    char small[13];
    assert_int_equal(vs_crawl_normalise("http://example.com/long", small, sizeof small), -1);
    assert_int_equal(vs_crawl_normalise("http://a.io/", small, sizeof small), 0);
    assert_string_equal(small, "http://a.io/");
}

/* ---- allocation failures ---- */

static void test_alloc_failures(void **state) {
    (void)state;
    vs_crawl_opts o = site_opts();
    int saw_fail = 0, saw_ok_after_fail = 0;
    long k;
    for (k = 0; k < 5000; k++) {
        reset();
        vs_crawl *c = NULL;
        vs_crawl_sink sink = test_sink();
        vs_error e = {0};
        /* a run's own requests, told apart from late ones of the run before */
        char ua[64];
        snprintf(ua, sizeof ua, "visagetest/%ld", k);
        o.user_agent = ua;
        vs_alloc_fail_after(k);
        vs_err rc = vs_crawl_new(&o, &sink, &c, &e);
        if (rc == VS_OK) rc = vs_crawl_seed(c, url_a("/small.html"), &e);
        if (rc == VS_OK) rc = vs_crawl_run(c, NULL, &e);
        long used = vs_alloc_count();
        vs_alloc_fail_after(-1);
        vs_crawl_free(c);
        if (rc != VS_OK && rc != VS_ERR_NOMEM) fail_msg("fail after %ld: %s: %s", k, vs_err_name(rc), e.msg);
        if (rc == VS_ERR_NOMEM) saw_fail = 1;
        else if (saw_fail) saw_ok_after_fail = 1;
        assert_each_once_ua(0, ua);
        /* running out of memory is the crawler's problem, never the URL's:
         * no URL fails with it, and none is marked done unless it was
         * requested (or refused by robots.txt) */
        for (int i = 0; i < g_s.n_errors; i++)
            if (strstr(g_s.errors[i].msg, "out of memory"))
                fail_msg("fail after %ld: %s failed with '%s'", k, g_s.errors[i].url, g_s.errors[i].msg);
        for (int i = 0; i < g_s.n_done; i++) {
            const char *path = g_s.done[i].url + strlen(url_a(""));
            if (strncmp(path, "/private/", 9) != 0 && !log_count_ua(0, path, ua))
                fail_msg("fail after %ld: %s marked done but never requested", k, g_s.done[i].url);
        }
        if (used <= k) break; /* no allocation failed: the loop has covered every one */
    }
    assert_true(k < 5000);
    assert_true(saw_fail);
    print_message("crawl survived failures at each of %ld allocations\n", k);
    (void)saw_ok_after_fail;
    /* the last run was a complete, clean crawl */
    assert_true(g_s.n_images >= 1);
    assert_discovered_all_done();
}

/* 429 with Retry-After: the URL is asked again after that many seconds and
 * then crawled; a 503 that never ends is given up after three tries. */
static void test_retry_after(void **state) {
    (void)state;
    reset();
    atomic_store(&g_busy_left, 1);
    vs_crawl_opts o = site_opts();
    vs_crawl_counts k;
    vs_error e = {0};
    char seed_err[VS_ERROR_MSG_MAX];
    if (crawl_site(&o, "/busy.html", NULL, &k, &e, seed_err, sizeof seed_err) != VS_OK) fail_msg("crawl: %s", e.msg);
    assert_int_equal(log_count(0, "/busy.html"), 2);
    assert_int_equal(k.pages_fetched, 1);
    assert_int_equal(k.images_saved, 1);
    assert_int_equal(k.errors, 0);
    static req_rec snap[LOG_MAX];
    int n = log_snapshot(snap);
    int64_t first = -1, second = -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(snap[i].path, "/busy.html")) {
            if (first < 0) first = snap[i].t_ms;
            else second = snap[i].t_ms;
        }
    assert_true(second - first >= 950); /* Retry-After: 1 */

    reset();
    o.retry_wait_ms = 100;
    if (crawl_site(&o, "/down.html", NULL, &k, &e, seed_err, sizeof seed_err) != VS_OK) fail_msg("crawl: %s", e.msg);
    assert_int_equal(log_count(0, "/down.html"), 3);
    assert_int_equal(k.errors, 1);
    assert_non_null(strstr(seed_err, "HTTP 503"));
}

/* The scope unit: the registrable domain (Public Suffix List), not the host. */
static void test_site_of_url(void **state) {
    (void)state;
    static const char *cases[][2] = {
        {"https://www.example.com/a", "example.com"},
        {"http://cdn.img.example.com:8080/x.jpg", "example.com"},
        {"https://EXAMPLE.com", "example.com"},
        {"https://a.b.example.co.uk/", "example.co.uk"},
        {"https://alice.github.io/", "alice.github.io"},
        {"https://bob.github.io/", "bob.github.io"},
        {"http://127.0.0.1:8080/", "127.0.0.1"},
        {"http://127.0.0.2/", "127.0.0.2"},
        {"http://[::1]:80/", "[::1]"},
        {"http://localhost/", "localhost"},
    };
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (vs_crawl_site(cases[i][0], out, sizeof out) != 0) fail_msg("no site for %s", cases[i][0]);
        if (strcmp(out, cases[i][1]) != 0) fail_msg("site of %s: %s, want %s", cases[i][0], out, cases[i][1]);
    }
    assert_int_equal(vs_crawl_site("ftp://example.com/", out, sizeof out), -1);
    assert_int_equal(vs_crawl_site("/relative", out, sizeof out), -1);
    assert_int_equal(vs_crawl_site(NULL, out, sizeof out), -1);
    /* a long host whose site fits: the site's length counts, not the host's */
    char small[16];
    assert_int_equal(vs_crawl_site("https://a-very-long-subdomain-name.of.example.com/", small, sizeof small), 0);
    assert_string_equal(small, "example.com");
    assert_int_equal(vs_crawl_site("https://a-very-long-registrable-name.com/", small, sizeof small), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalise),
        cmocka_unit_test(test_site_crawl),
        cmocka_unit_test(test_two_hosts_robots_each),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_max_pages_and_images),
        cmocka_unit_test(test_max_redirects),
        cmocka_unit_test(test_image_redirect_and_404),
        cmocka_unit_test(test_robots_variants),
        cmocka_unit_test(test_politeness_delay),
        cmocka_unit_test(test_crawl_delay_honoured),
        cmocka_unit_test(test_seed_error),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_site_of_url),
        cmocka_unit_test(test_address_policy),
        cmocka_unit_test(test_stop_before_run),
        cmocka_unit_test(test_stop_while_running),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_sink_image_failure_stops),
        cmocka_unit_test(test_sink_discovered_failure_stops),
        cmocka_unit_test(test_many_links_batches),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
