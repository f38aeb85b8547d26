/* vs_crawl.c - the crawl loop: a frontier of per-host FIFO queues, a
 * scheduler that starts transfers on one curl multi handle when a host's
 * delay has passed and its robots.txt is known, and completion handlers for
 * robots.txt, pages and images.
 *
 * Politeness is per origin (scheme, host, port), which is also the unit
 * robots.txt applies to (RFC 9309). Redirects are not followed by curl but
 * re-queued here, so the target is scope-checked, robots-checked, delayed and
 * deduplicated like any other URL: a redirect loop ends when it comes back
 * to a URL already seen, and a redirect to another site is never requested.
 *
 * Every URL is admitted at most once (normalised form in `seen`) and the
 * admitted pages and images are capped by max_pages and max_images, so the
 * memory of a crawl is bounded by its limits, not by what the site links. */
#include "vs_crawl.h"

#include <curl/curl.h>
#include <libpsl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vs_alloc.h"
#include "vs_fetch.h"
#include "vs_hash.h"
#include "vs_html.h"
#include "vs_image.h"
#include "vs_robots.h"
#include "vs_strset.h"

#define CRAWL_DEFAULT_UA "visage/0.1 (+https://github.com/visage/visage)"
#define CRAWL_MAX_CRAWL_DELAY_MS 60000   /* a site asking for more still gets a minute */
#define CRAWL_SEEN_OUT_MAX 100000        /* distinct out-of-scope URLs remembered */
#define CRAWL_BATCH 64                   /* URLs per sink->discovered call */
#define CRAWL_PROGRESS_MS 250
#define CRAWL_MAX_RETRIES 2              /* per URL, after 429 Too Many Requests / 503 */
#define CRAWL_RETRY_DEFAULT_MS 5000      /* wait when the answer gave no Retry-After */
#define CRAWL_RETRY_MAX_MS 120000        /* a longer Retry-After is cut to this */

enum { ROBOTS_UNKNOWN = 0, ROBOTS_FETCHING, ROBOTS_READY };

/* One URL waiting in its host's queue. */
typedef struct item {
    struct item *next;
    char *url, *referrer;
    int depth, redirects;
    int retries;           /* 429/503 answers so far */
    vs_crawl_kind kind;
} item;

/* One origin: its queue, its robots.txt and when it may be asked again. */
typedef struct host {
    char *origin;          /* "http://127.0.0.1:8080" */
    int64_t next_ok_ms;
    int inflight;
    int robots_state;
    vs_robots *robots;
    int delay_ms;
    char *refused;         /* no answer at all (refused address, DNS, connect,
                              timeout) for robots.txt: why; its URLs fail so */
    item *head, *tail;
} host;

/* One transfer in flight; item is NULL for a robots.txt fetch. */
typedef struct xfer {
    struct xfer *prev, *next;          /* the crawl's list of live transfers */
    vs_fetch_xfer *fx;
    item *it;
    host *h;
} xfer;

struct vs_crawl {
    vs_crawl_opts o;                   /* its strings point to the copies below */
    char *ua, *allow_hosts, *allow_cidrs;
    vs_crawl_sink sink;
    char site[256];                    /* the seed's site: its registrable domain (site_of) */
    CURLM *multi;
    xfer *live;                        /* transfers in flight */
    host **hosts;
    int n_hosts, cap_hosts;
    int inflight, pending;
    int64_t pages_admitted, images_admitted, out_remembered;
    vs_strset seen;
    vs_crawl_counts k;
    vs_crawl_url *batch;               /* discovered URLs not yet handed to the sink */
    item **batch_items;                /* ... and their queue entries, queued after it */
    int n_batch;
    vs_err fatal;                      /* the sink failed: stop */
    vs_error fatal_err;
    int64_t last_progress_ms;
    char seed_error[VS_ERROR_MSG_MAX]; /* why the seed URL failed, or "" */
};

/* Frees one queue entry. */
static void item_free(item *it) {
    if (!it) return;
    vs_free(it->url);
    vs_free(it->referrer);
    vs_free(it);
}

/* A new queue entry (copies of the strings), or NULL when memory ran out. */
static item *item_new(const char *url, const char *referrer, int depth, int redirects, vs_crawl_kind kind) {
    item *it = vs_calloc(1, sizeof *it);
    if (!it) return NULL;
    it->url = vs_strdup(url);
    it->referrer = vs_strdup(referrer ? referrer : "");
    if (!it->url || !it->referrer) {
        item_free(it);
        return NULL;
    }
    it->depth = depth;
    it->redirects = redirects;
    it->kind = kind;
    return it;
}

/* The public form of a queue entry, for the sink. */
static void item_url(const item *it, vs_crawl_url *u) {
    memset(u, 0, sizeof *u);
    snprintf(u->url, sizeof u->url, "%s", it->url);
    snprintf(u->referrer, sizeof u->referrer, "%.*s", (int)sizeof u->referrer - 1, it->referrer);
    u->depth = it->depth;
    u->redirects = it->redirects;
    u->kind = it->kind;
}

/* A copy of s, or NULL (with s NULL too). */
static char *dup_opt(const char *s, int *nomem) {
    if (!s) return NULL;
    char *d = vs_strdup(s);
    if (!d) *nomem = 1;
    return d;
}

/* Fills the defaults of zero fields. */
static void opts_defaults(vs_crawl_opts *o) {
    if (o->max_depth < 0) o->max_depth = 0;
    if (o->max_pages <= 0) o->max_pages = 100;
    if (o->max_images <= 0) o->max_images = 10000;
    if (o->delay_ms == 0) o->delay_ms = 1000;
    if (o->delay_ms < 0) o->delay_ms = 0;
    if (o->per_host <= 0) o->per_host = 1;
    if (o->max_transfers <= 0) o->max_transfers = 16;
    if (o->timeout_ms <= 0) o->timeout_ms = 15000;
    if (o->max_redirects <= 0) o->max_redirects = 5;
    if (o->retry_wait_ms <= 0) o->retry_wait_ms = CRAWL_RETRY_DEFAULT_MS;
    if (o->max_page_bytes == 0) o->max_page_bytes = 4u << 20;
    if (o->max_page_bytes > VS_HTML_MAX_BYTES) o->max_page_bytes = VS_HTML_MAX_BYTES;
    if (o->max_image_bytes == 0) o->max_image_bytes = 16u << 20;
}

vs_err vs_crawl_new(const vs_crawl_opts *opts, const vs_crawl_sink *sink, vs_crawl **out, vs_error *err) {
    *out = NULL;
    if (!sink || !sink->image) return vs_fail(err, VS_ERR_INVALID_ARG, "crawl: a sink with an image callback is required");
    vs_crawl *c = vs_calloc(1, sizeof *c);
    if (!c) return vs_fail(err, VS_ERR_NOMEM, "crawl: out of memory");
    c->o = opts ? *opts : (vs_crawl_opts){0};
    opts_defaults(&c->o);
    c->sink = *sink;
    c->k = c->o.start;
    int nomem = 0;
    c->ua = dup_opt(c->o.user_agent ? c->o.user_agent : CRAWL_DEFAULT_UA, &nomem);
    c->allow_hosts = dup_opt(c->o.allow_hosts, &nomem);
    c->allow_cidrs = dup_opt(c->o.allow_cidrs, &nomem);
    c->o.user_agent = c->ua;
    c->o.allow_hosts = c->allow_hosts;
    c->o.allow_cidrs = c->allow_cidrs;
    c->batch = vs_calloc(CRAWL_BATCH, sizeof *c->batch);
    c->batch_items = vs_calloc(CRAWL_BATCH, sizeof *c->batch_items);
    if (nomem || !c->batch || !c->batch_items) {
        vs_crawl_free(c);
        return vs_fail(err, VS_ERR_NOMEM, "crawl: out of memory");
    }
    vs_err rc = vs_fetch_check_cidrs(c->o.allow_cidrs, err);
    if (rc != VS_OK) {
        vs_crawl_free(c);
        return rc;
    }
    rc = vs_fetch_global_init(err);
    if (rc != VS_OK || !(c->multi = curl_multi_init())) {
        vs_crawl_free(c);
        return rc != VS_OK ? rc : vs_fail(err, VS_ERR_BACKEND, "crawl: curl_multi_init failed");
    }
    /* one connection per origin at a time keeps the per-host limit honest */
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c->o.per_host);
    *out = c;
    return VS_OK;
}

static void abort_all(vs_crawl *c);

void vs_crawl_free(vs_crawl *c) {
    if (!c) return;
    if (c->multi) abort_all(c);
    for (int i = 0; i < c->n_hosts; i++) {
        host *h = c->hosts[i];
        for (item *it = h->head, *nx; it; it = nx) {
            nx = it->next;
            item_free(it);
        }
        vs_robots_free(h->robots);
        vs_free(h->refused);
        vs_free(h->origin);
        vs_free(h);
    }
    for (int i = 0; i < c->n_batch; i++) item_free(c->batch_items[i]);
    vs_free(c->hosts);
    vs_free(c->batch);
    vs_free(c->batch_items);
    if (c->multi) curl_multi_cleanup(c->multi);
    vs_strset_free(&c->seen);
    vs_free(c->ua);
    vs_free(c->allow_hosts);
    vs_free(c->allow_cidrs);
    vs_free(c);
}

/* Lower-cases s in place. */
static void lower(char *s) {
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z') *s = (char)(*s - 'A' + 'a');
}

/* Parses url (absolute http/https) and writes the normalised URL, the origin
 * ("scheme://host[:port]"), the host (lower-case) and path+query as the
 * server sees it. Any output may be NULL. 0, or -1 for a URL we do not crawl. */
static int url_split(const char *url, char *norm, size_t norm_cap, char *origin, size_t origin_cap, char *host,
                     size_t host_cap, char *pathq, size_t pathq_cap) {
    CURLU *u = curl_url();
    char *scheme = NULL, *hostp = NULL, *port = NULL, *full = NULL, *path = NULL, *query = NULL;
    int rc = -1;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) goto out;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) goto out;
    lower(scheme);
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) goto out;
    if (curl_url_get(u, CURLUPART_HOST, &hostp, 0) != CURLUE_OK || !*hostp) goto out;
    lower(hostp);
    curl_url_set(u, CURLUPART_HOST, hostp, 0);
    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
    if (curl_url_get(u, CURLUPART_URL, &full, CURLU_NO_DEFAULT_PORT) != CURLUE_OK) goto out;
    if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_NO_DEFAULT_PORT) != CURLUE_OK) port = NULL;
    if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) goto out;
    if (curl_url_get(u, CURLUPART_QUERY, &query, 0) != CURLUE_OK) query = NULL;
    if (norm && (size_t)snprintf(norm, norm_cap, "%s", full) >= norm_cap) goto out;
    if (origin &&
        (size_t)snprintf(origin, origin_cap, "%s://%s%s%s", scheme, hostp, port ? ":" : "", port ? port : "") >= origin_cap)
        goto out;
    if (host && (size_t)snprintf(host, host_cap, "%s", hostp) >= host_cap) goto out;
    if (pathq && (size_t)snprintf(pathq, pathq_cap, "%s%s%s", *path ? path : "/", query ? "?" : "",
                                  query ? query : "") >= pathq_cap)
        goto out;
    rc = 0;
out:
    curl_free(scheme);
    curl_free(hostp);
    curl_free(port);
    curl_free(full);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
    return rc;
}

int vs_crawl_normalise(const char *url, char *out, size_t cap) {
    return url && url_split(url, out, cap, NULL, 0, NULL, 0, NULL, 0) == 0 ? 0 : -1;
}

/* The site of a host: its registrable domain by the Public Suffix List
 * (www.example.com and cdn.example.com -> example.com, a.b.example.co.uk ->
 * example.co.uk, while alice.github.io and bob.github.io stay apart). An IP
 * address, or a name without a registrable domain (localhost), is its own
 * site. libpsl's built-in list: nothing is downloaded. */
static int site_of(const char *host, char *out, size_t cap) {
    const char *rd = NULL;
    int ip = host[0] == '[' || strspn(host, "0123456789.") == strlen(host);
    if (!ip) rd = psl_registrable_domain(psl_builtin(), host);
    return snprintf(out, cap, "%s", rd ? rd : host);
}

int vs_crawl_site(const char *url, char *out, size_t cap) {
    char host[VS_CRAWL_URL_MAX];
    if (!url || url_split(url, NULL, 0, NULL, 0, host, sizeof host, NULL, 0) != 0) return -1;
    int n = site_of(host, out, cap);
    return n >= 0 && (size_t)n < cap ? 0 : -1;
}

/* 1 when host is of the seed's site, or is (or is under) an allow-listed
 * host: "cdn.example.net" lets in cdn.example.net and img.cdn.example.net. */
static int in_scope(const vs_crawl *c, const char *host) {
    char site[256];
    site_of(host, site, sizeof site);
    if (strcmp(site, c->site) == 0) return 1;
    size_t hl = strlen(host);
    const char *p = c->o.allow_hosts;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && *p == ' ') p++, n--;
        while (n && p[n - 1] == ' ') n--;
        if (n && n <= hl && strncasecmp(host + hl - n, p, n) == 0 && (n == hl || host[hl - n - 1] == '.')) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

/* The host record of origin, created (robots unknown) on first use. */
static host *host_get(vs_crawl *c, const char *origin) {
    for (int i = 0; i < c->n_hosts; i++)
        if (strcmp(c->hosts[i]->origin, origin) == 0) return c->hosts[i];
    if (c->n_hosts == c->cap_hosts) {
        int cap = c->cap_hosts ? c->cap_hosts * 2 : 8;
        host **nh = vs_realloc(c->hosts, (size_t)cap * sizeof *nh);
        if (!nh) return NULL;
        c->hosts = nh;
        c->cap_hosts = cap;
    }
    host *h = vs_calloc(1, sizeof *h);
    if (!h || !(h->origin = vs_strdup(origin))) {
        vs_free(h);
        return NULL;
    }
    h->delay_ms = c->o.delay_ms;
    c->hosts[c->n_hosts++] = h;
    return h;
}

/* Puts it in the queue of h, at the back or (a retry) at the front. */
static void q_push(vs_crawl *c, host *h, item *it, int front) {
    if (front) {
        it->next = h->head;
        h->head = it;
        if (!h->tail) h->tail = it;
    } else {
        it->next = NULL;
        if (h->tail) h->tail->next = it;
        else h->head = it;
        h->tail = it;
    }
    c->pending++;
}

/* Takes the first URL of h's queue (there is one). */
static item *q_pop(vs_crawl *c, host *h) {
    item *it = h->head;
    h->head = it->next;
    if (!h->head) h->tail = NULL;
    c->pending--;
    return it;
}

/* Appends it to the queue of its origin; 0 on allocation failure. */
static int enqueue(vs_crawl *c, item *it) {
    char origin[VS_CRAWL_URL_MAX];
    if (url_split(it->url, NULL, 0, origin, sizeof origin, NULL, 0, NULL, 0) != 0) return 0;
    host *h = host_get(c, origin);
    if (!h) return 0;
    q_push(c, h, it, 0);
    return 1;
}

/* Remembers why the crawl's seed failed (a URL without a referrer is the
 * seed or a redirect of it); the first reason stays. */
static void seed_failed(vs_crawl *c, const char *referrer, const char *fmt, ...) {
    if (referrer[0] || c->seed_error[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->seed_error, sizeof c->seed_error, fmt, ap);
    va_end(ap);
}

/* Records a failure of the sink or of memory: the crawl stops. */
static void set_fatal(vs_crawl *c, vs_err rc, const char *msg) {
    if (c->fatal != VS_OK) return;
    c->fatal = rc;
    vs_fail(&c->fatal_err, rc, "%s", msg);
}

/* Hands the pending discovered URLs to the sink (to persist them), then
 * queues them; on a sink failure they are dropped and the crawl stops. */
static void flush_batch(vs_crawl *c) {
    if (c->n_batch == 0) return;
    vs_error e = {0};
    vs_err rc = c->sink.discovered ? c->sink.discovered(c->sink.ctx, c->batch, c->n_batch, &e) : VS_OK;
    for (int i = 0; i < c->n_batch; i++) {
        item *it = c->batch_items[i];
        c->batch_items[i] = NULL;
        if (rc != VS_OK || c->fatal != VS_OK) {
            item_free(it);
        } else if (!enqueue(c, it)) {
            item_free(it);
            set_fatal(c, VS_ERR_NOMEM, "crawl: out of memory queueing URLs");
        }
    }
    if (rc != VS_OK) set_fatal(c, rc, e.msg);
    c->n_batch = 0;
}

/* 1 when the URL's path ends in an image file extension, so a link to it is
 * fetched as an image rather than parsed as a page. */
static int looks_like_image(const char *url) {
    static const char *ext[] = {".jpg", ".jpeg", ".png", ".webp", ".gif"};
    size_t n = strcspn(url, "?#");
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
        size_t m = strlen(ext[i]);
        if (n > m && strncasecmp(url + n - m, ext[i], m) == 0) return 1;
    }
    return 0;
}

/* Decides about one URL found on a page (or a redirect target): out of
 * scope, over a limit or already seen -> dropped (counted); else batched
 * for the sink and the queue. */
static void admit(vs_crawl *c, const char *url, const char *referrer, int depth, int redirects, vs_crawl_kind kind) {
    char norm[VS_CRAWL_URL_MAX], host[VS_CRAWL_URL_MAX];
    if (c->fatal != VS_OK) return;
    if (url_split(url, norm, sizeof norm, NULL, 0, host, sizeof host, NULL, 0) != 0) return;
    if (!in_scope(c, host)) {
        if (redirects > 0) seed_failed(c, referrer, "redirected out of scope to %.300s", norm);
        /* remembered (prefixed, apart from real URLs) to count each once */
        if (c->out_remembered >= CRAWL_SEEN_OUT_MAX) return;
        char key[VS_CRAWL_URL_MAX + 2];
        snprintf(key, sizeof key, "!%s", norm);
        int r = vs_strset_add(&c->seen, key);
        if (r == 1) {
            c->out_remembered++;
            c->k.out_of_scope++;
        }
        return;
    }
    if (kind == VS_CRAWL_PAGE && c->pages_admitted >= c->o.max_pages) return;
    if (kind == VS_CRAWL_IMAGE && c->images_admitted >= c->o.max_images) return;
    int r = vs_strset_add(&c->seen, norm);
    if (r == 0) return;
    item *it = r < 0 ? NULL : item_new(norm, referrer, depth, redirects, kind);
    if (!it) return set_fatal(c, VS_ERR_NOMEM, "crawl: out of memory admitting URLs");
    if (kind == VS_CRAWL_PAGE) c->pages_admitted++;
    else c->images_admitted++;
    item_url(it, &c->batch[c->n_batch]);
    c->batch_items[c->n_batch++] = it;
    if (c->n_batch == CRAWL_BATCH) flush_batch(c);
}

vs_err vs_crawl_seed(vs_crawl *c, const char *url, vs_error *err) {
    char norm[VS_CRAWL_URL_MAX];
    char host[VS_CRAWL_URL_MAX];
    if (!url || url_split(url, norm, sizeof norm, NULL, 0, host, sizeof host, NULL, 0) != 0)
        return vs_fail(err, VS_ERR_INVALID_ARG, "crawl: '%.200s' is not an absolute http(s) URL", url ? url : "(null)");
    site_of(host, c->site, sizeof c->site);
    admit(c, norm, "", 0, 0, looks_like_image(norm) ? VS_CRAWL_IMAGE : VS_CRAWL_PAGE);
    flush_batch(c);
    if (c->fatal != VS_OK) return vs_fail(err, c->fatal, "%s", c->fatal_err.msg);
    return VS_OK;
}

vs_err vs_crawl_restore(vs_crawl *c, const vs_crawl_url *u, int pending, vs_error *err) {
    char norm[VS_CRAWL_URL_MAX];
    if (url_split(u->url, norm, sizeof norm, NULL, 0, NULL, 0, NULL, 0) != 0) return VS_OK; /* unusable: skip */
    int r = vs_strset_add(&c->seen, norm);
    if (r < 0) return vs_fail(err, VS_ERR_NOMEM, "crawl: out of memory restoring URLs");
    if (r == 0) return VS_OK;
    if (u->kind == VS_CRAWL_PAGE) c->pages_admitted++;
    else c->images_admitted++;
    if (!pending) return VS_OK;
    item *it = item_new(norm, u->referrer, u->depth, u->redirects, u->kind);
    if (!it || !enqueue(c, it)) {
        item_free(it);
        return vs_fail(err, VS_ERR_NOMEM, "crawl: out of memory restoring URLs");
    }
    return VS_OK;
}

/* check_head of image transfers: the first bytes must be an image format we
 * decode, so an HTML error page or a huge non-image behind a .jpg name is
 * dropped after a few bytes instead of downloaded. */
static const char *image_check(void *ctx, const uint8_t *p, size_t n) {
    (void)ctx;
    return vs_image_sniff(p, n) == VS_FMT_UNKNOWN ? "not an image (no JPEG, PNG, WebP or GIF signature)" : NULL;
}

/* Starts one transfer of url for it (NULL = robots.txt of h). */
static vs_err start(vs_crawl *c, host *h, item *it, const char *url, vs_error *err) {
    vs_fetch_opts fo = {
        .max_bytes = !it ? VS_ROBOTS_MAX_BYTES : it->kind == VS_CRAWL_IMAGE ? c->o.max_image_bytes : c->o.max_page_bytes,
        .timeout_ms = c->o.timeout_ms,
        .max_redirects = it ? -1 : 5,
        .allow_cidrs = c->o.allow_cidrs,
        .allow_all = c->o.allow_all,
        .user_agent = c->o.user_agent,
        .no_follow = it != NULL,
        .reuse_connections = 1,
        .check_head = it && it->kind == VS_CRAWL_IMAGE ? image_check : NULL,
        .check_bytes = 12,
        .truncate = it == NULL, /* RFC 9309: parse at least the first 500 KiB of a robots.txt */
    };
    xfer *x = vs_calloc(1, sizeof *x);
    if (!x) return vs_fail(err, VS_ERR_NOMEM, "crawl: out of memory");
    vs_err rc = vs_fetch_xfer_new(url, &fo, &x->fx, err);
    if (rc != VS_OK) {
        vs_free(x);
        return rc;
    }
    x->it = it;
    x->h = h;
    CURL *e = vs_fetch_xfer_easy(x->fx);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        vs_fetch_xfer_free(x->fx);
        vs_free(x);
        return vs_fail(err, VS_ERR_BACKEND, "crawl: curl_multi_add_handle failed for %.200s", url);
    }
    x->next = c->live;
    if (c->live) c->live->prev = x;
    c->live = x;
    h->inflight++;
    c->inflight++;
    c->k.requests++;
    return VS_OK;
}

/* Passes one line about a URL to the sink. */
static void report(vs_crawl *c, const item *it, const char *msg) {
    if (!c->sink.url_error) return;
    vs_crawl_url u;
    item_url(it, &u);
    c->sink.url_error(c->sink.ctx, &u, msg);
}

/* Reports a failed URL (remembering it when it is the seed's failure). */
static void url_error(vs_crawl *c, const item *it, const char *msg) {
    seed_failed(c, it->referrer, "%s", msg);
    report(c, it, msg);
}

/* Tells the sink the URL is finished, then frees its entry. */
static void finish_item(vs_crawl *c, item *it) {
    if (c->sink.done) {
        vs_crawl_url u;
        item_url(it, &u);
        c->sink.done(c->sink.ctx, &u, &c->k);
    }
    item_free(it);
}

/* Starts whatever may start now: per host, its robots.txt first, then
 * queued URLs while the host's delay and the concurrency limits allow.
 * URLs robots.txt disallows are dropped here, never requested. */
static void schedule(vs_crawl *c, int64_t now) {
    for (int i = 0; i < c->n_hosts && c->fatal == VS_OK; i++) {
        host *h = c->hosts[i];
        while (c->inflight < c->o.max_transfers && h->inflight < c->o.per_host && now >= h->next_ok_ms) {
            if (!h->head || h->robots_state == ROBOTS_FETCHING) break;
            vs_error e = {0};
            if (h->robots_state == ROBOTS_UNKNOWN) {
                char url[VS_CRAWL_URL_MAX + 16];
                snprintf(url, sizeof url, "%s/robots.txt", h->origin);
                h->robots_state = ROBOTS_FETCHING;
                vs_err src = start(c, h, NULL, url, &e);
                if (src != VS_OK) { /* memory, libcurl or our options: not the site's doing */
                    h->robots_state = ROBOTS_UNKNOWN;
                    return set_fatal(c, src, e.msg);
                }
                h->next_ok_ms = now + h->delay_ms;
                break;
            }
            item *it = q_pop(c, h);
            if (h->refused) { /* every URL of the host fails the same way */
                c->k.errors++;
                url_error(c, it, h->refused);
                finish_item(c, it);
                continue;
            }
            char pathq[VS_CRAWL_URL_MAX];
            if (url_split(it->url, NULL, 0, NULL, 0, NULL, 0, pathq, sizeof pathq) != 0 ||
                !vs_robots_allowed(h->robots, pathq)) {
                c->k.robots_blocked++;
                seed_failed(c, it->referrer, "robots.txt of %.150s disallows %.200s", h->origin, it->url);
                finish_item(c, it);
                continue;
            }
            vs_err src = start(c, h, it, it->url, &e);
            if (src != VS_OK) { /* as above: stop, the URL stays pending */
                item_free(it);
                return set_fatal(c, src, e.msg);
            }
            h->next_ok_ms = now + h->delay_ms;
        }
    }
}

/* A robots.txt answer (RFC 9309 2.3.1): 2xx is parsed, 4xx means no rules,
 * a 5xx means keep out. No answer at all (an address the rules refuse, a
 * name that does not resolve, a refused connection, a timeout) also keeps
 * us out, but the host's URLs then count as errors, not as robots-blocked:
 * the site did not ask for it. */
static void robots_done(vs_crawl *c, host *h, vs_err rc, const vs_fetch_result *r, const vs_error *e) {
    vs_error pe = {0};
    if (rc == VS_OK) {
        if (vs_robots_parse((const char *)r->data, r->len, c->o.user_agent, &h->robots, &pe) != VS_OK) h->robots = NULL;
    } else if (rc == VS_ERR_IO && ((r->http_status >= 400 && r->http_status < 500) || r->too_many_redirects)) {
        h->robots = vs_robots_allow_all(); /* "unavailable"; over 5 redirects counts as such too */
    } else if (r->refused || r->http_status == 0) {
        h->robots = vs_robots_disallow_all();
        if (!(h->refused = vs_strdup(e->msg))) return set_fatal(c, VS_ERR_NOMEM, "crawl: out of memory");
        h->delay_ms = 0;
    } else {
        h->robots = vs_robots_disallow_all();
        if (c->sink.url_error) {
            vs_crawl_url u = {.kind = VS_CRAWL_PAGE};
            snprintf(u.url, sizeof u.url, "%.2000s/robots.txt", h->origin);
            char msg[VS_ERROR_MSG_MAX + 64];
            snprintf(msg, sizeof msg, "robots.txt unreachable, host skipped: %s", e->msg);
            c->sink.url_error(c->sink.ctx, &u, msg);
        }
    }
    if (!h->robots) return set_fatal(c, VS_ERR_NOMEM, "crawl: out of memory reading robots.txt");
    double cd = vs_robots_crawl_delay(h->robots);
    if (cd > 0) {
        int ms = cd * 1000 > CRAWL_MAX_CRAWL_DELAY_MS ? CRAWL_MAX_CRAWL_DELAY_MS : (int)(cd * 1000);
        if (ms > h->delay_ms) h->delay_ms = ms;
        h->next_ok_ms = vs_now_ms() + h->delay_ms;
    }
    h->robots_state = ROBOTS_READY;
}

/* 1 when a page response is HTML (by Content-Type, or by its first
 * non-blank byte when the server sent none). */
static int is_html(const vs_fetch_result *r) {
    if (r->content_type[0])
        return strncasecmp(r->content_type, "text/html", 9) == 0 ||
               strncasecmp(r->content_type, "application/xhtml", 17) == 0;
    size_t i = 0;
    while (i < r->len && (r->data[i] == ' ' || r->data[i] == '\n' || r->data[i] == '\r' || r->data[i] == '\t')) i++;
    return i < r->len && r->data[i] == '<';
}

/* Hands a downloaded image to the sink. A sink failure stops the crawl and
 * leaves the URL pending (so a resume fetches it again). Returns 0 then. */
static int image_done(vs_crawl *c, item *it, const vs_fetch_result *r) {
    c->k.images_fetched++;
    vs_image_format f = vs_image_sniff(r->data, r->len);
    if (f == VS_FMT_UNKNOWN) {
        c->k.images_skipped++;
        url_error(c, it, "not an image (no JPEG, PNG, WebP or GIF signature)");
        return 1;
    }
    vs_crawl_image img = {r->data, r->len, it->url, it->referrer, c->site, vs_image_format_name(f)};
    vs_crawl_image_outcome out = VS_CRAWL_IMG_SKIPPED;
    vs_error e = {0};
    vs_err rc = c->sink.image(c->sink.ctx, &img, &out, &e);
    if (rc != VS_OK) {
        set_fatal(c, rc, e.msg);
        return 0;
    }
    if (out == VS_CRAWL_IMG_SAVED) c->k.images_saved++;
    else if (out == VS_CRAWL_IMG_DUPLICATE) c->k.images_duplicate++;
    else c->k.images_skipped++;
    return 1;
}

/* A 429 or 503 asks us to slow down: the host waits Retry-After (or a
 * default growing with each try, capped) before its next request, and the
 * URL goes back to the head of its queue, at most CRAWL_MAX_RETRIES times.
 * Returns 1 when the URL was requeued. */
static int retry_later(vs_crawl *c, host *h, item *it, const vs_fetch_result *r) {
    if ((r->http_status != 429 && r->http_status != 503) || it->retries >= CRAWL_MAX_RETRIES) return 0;
    int64_t wait = r->retry_after_s > 0 ? (int64_t)r->retry_after_s * 1000 : (int64_t)c->o.retry_wait_ms * (it->retries + 1);
    if (wait > CRAWL_RETRY_MAX_MS) wait = CRAWL_RETRY_MAX_MS;
    if (wait < h->delay_ms) wait = h->delay_ms;
    it->retries++;
    q_push(c, h, it, 1);
    int64_t at = vs_now_ms() + wait;
    if (at > h->next_ok_ms) h->next_ok_ms = at;
    char msg[128];
    snprintf(msg, sizeof msg, "HTTP %ld, retrying in %.1f s (try %d of %d)", r->http_status, wait / 1000.0,
             it->retries + 1, CRAWL_MAX_RETRIES + 1);
    report(c, it, msg);
    return 1;
}

/* Extracts a page's images and, below the depth limit, its links. */
static void page_done(vs_crawl *c, item *it, const vs_fetch_result *r) {
    c->k.pages_fetched++;
    vs_html_links l;
    vs_error e = {0};
    vs_err rc = vs_html_extract((const char *)r->data, r->len, it->url, &l, &e);
    if (rc == VS_ERR_NOMEM) return set_fatal(c, rc, e.msg); /* the page stays pending */
    if (rc != VS_OK) {
        c->k.errors++;
        url_error(c, it, e.msg);
        return;
    }
    for (int i = 0; i < l.n_images; i++) admit(c, l.images[i], it->url, it->depth, 0, VS_CRAWL_IMAGE);
    for (int i = 0; i < l.n_pages; i++) {
        if (looks_like_image(l.pages[i])) admit(c, l.pages[i], it->url, it->depth, 0, VS_CRAWL_IMAGE);
        else if (it->depth < c->o.max_depth) admit(c, l.pages[i], it->url, it->depth + 1, 0, VS_CRAWL_PAGE);
    }
    vs_html_links_free(&l);
}

/* Takes x off the multi handle and the live list. When the host has no
 * other request in flight, its next one waits the delay from now, the end
 * of this one: counted from the start only, a slow answer would let two
 * requests reach the site closer than the delay (measured: 472 ms apart
 * under a 500 ms Crawl-delay on a loaded machine). */
static void unlink_xfer(vs_crawl *c, xfer *x) {
    curl_multi_remove_handle(c->multi, vs_fetch_xfer_easy(x->fx));
    if (x->prev) x->prev->next = x->next;
    else c->live = x->next;
    if (x->next) x->next->prev = x->prev;
    x->h->inflight--;
    c->inflight--;
    int64_t at = vs_now_ms() + x->h->delay_ms;
    if (x->h->inflight == 0 && at > x->h->next_ok_ms) x->h->next_ok_ms = at;
}

/* One finished transfer: robots.txt, a redirect, a page, an image or an
 * error. Frees the transfer. */
static void on_done(vs_crawl *c, CURLMsg *msg) {
    xfer *x = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    CURLcode res = msg->data.result;
    unlink_xfer(c, x);
    c->k.bytes += (int64_t)vs_fetch_xfer_received(x->fx);
    vs_fetch_result r;
    vs_error e = {0};
    vs_err rc = vs_fetch_xfer_finish(x->fx, (int)res, &r, &e);
    item *it = x->it;
    int finished = 1;
    if (rc == VS_ERR_NOMEM) { /* our memory, not the URL: stop, the URL stays pending */
        set_fatal(c, rc, e.msg);
        if (!it) x->h->robots_state = ROBOTS_UNKNOWN;
    } else if (!it) {
        robots_done(c, x->h, rc, &r, &e);
    } else if (rc == VS_ERR_IO && retry_later(c, x->h, it, &r)) {
        it = NULL; /* back in its queue, not finished */
    } else if (rc != VS_OK) {
        int skipped = it->kind == VS_CRAWL_IMAGE && (rc == VS_ERR_TOO_LARGE || rc == VS_ERR_UNSUPPORTED) && !r.refused;
        if (skipped) {
            c->k.images_fetched++;
            c->k.images_skipped++;
        } else {
            c->k.errors++;
        }
        url_error(c, it, e.msg);
    } else if (r.redirect_url[0]) {
        c->k.redirects++;
        if (it->redirects + 1 > c->o.max_redirects) {
            c->k.errors++;
            url_error(c, it, "too many redirects");
        } else {
            admit(c, r.redirect_url, it->referrer, it->depth, it->redirects + 1, it->kind);
        }
    } else if (it->kind == VS_CRAWL_IMAGE || strncasecmp(r.content_type, "image/", 6) == 0) {
        finished = image_done(c, it, &r);
    } else if (is_html(&r)) {
        page_done(c, it, &r);
    } else {
        c->k.pages_fetched++; /* a document without links for us (PDF, text ...) */
    }
    flush_batch(c);
    /* the crawl is failing (sink or memory): what this URL led to may not
     * have been persisted, so it stays pending and a resume fetches it again */
    if (c->fatal != VS_OK) finished = 0;
    if (it && finished) finish_item(c, it);
    else item_free(it);
    vs_fetch_result_free(&r);
    vs_fetch_xfer_free(x->fx);
    vs_free(x);
}

/* Milliseconds until some host may start a transfer (0 = now), capped so
 * progress is reported regularly. */
static int next_wakeup(const vs_crawl *c, int64_t now) {
    int64_t best = CRAWL_PROGRESS_MS;
    for (int i = 0; i < c->n_hosts; i++) {
        const host *h = c->hosts[i];
        if (!h->head || h->robots_state == ROBOTS_FETCHING || h->inflight >= c->o.per_host) continue;
        int64_t d = h->next_ok_ms - now;
        if (d < best) best = d < 0 ? 0 : d;
    }
    return (int)best;
}

/* Aborts every transfer in flight; their URLs stay pending for a resume. */
static void abort_all(vs_crawl *c) {
    while (c->live) {
        xfer *x = c->live;
        unlink_xfer(c, x);
        if (!x->it && x->h->robots_state == ROBOTS_FETCHING) x->h->robots_state = ROBOTS_UNKNOWN;
        item_free(x->it);
        vs_fetch_xfer_free(x->fx);
        vs_free(x);
    }
}

vs_err vs_crawl_run(vs_crawl *c, const atomic_int *stop, vs_error *err) {
    int running = 0;
    vs_err rc = VS_OK;
    while (c->fatal == VS_OK) {
        if (stop && atomic_load(stop)) {
            rc = vs_fail(err, VS_ERR_CANCELLED, "crawl: stopped; it can be resumed");
            break;
        }
        int64_t now = vs_now_ms();
        schedule(c, now);
        if (c->inflight == 0 && c->pending == 0) break;
        if (curl_multi_perform(c->multi, &running) != CURLM_OK) {
            rc = vs_fail(err, VS_ERR_BACKEND, "crawl: curl_multi_perform failed");
            break;
        }
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(c->multi, &left)))
            if (m->msg == CURLMSG_DONE) on_done(c, m);
        now = vs_now_ms();
        if (now - c->last_progress_ms >= CRAWL_PROGRESS_MS) {
            c->last_progress_ms = now;
            if (c->sink.progress) c->sink.progress(c->sink.ctx, &c->k);
        }
        if (c->fatal != VS_OK || (c->inflight == 0 && c->pending == 0)) continue;
        curl_multi_poll(c->multi, NULL, 0, next_wakeup(c, now), NULL);
    }
    if (c->fatal != VS_OK && rc == VS_OK) rc = vs_fail(err, c->fatal, "%s", c->fatal_err.msg);
    abort_all(c);
    if (c->sink.progress) c->sink.progress(c->sink.ctx, &c->k);
    return rc;
}

void vs_crawl_get_counts(const vs_crawl *c, vs_crawl_counts *out) { *out = c->k; }

const char *vs_crawl_seed_error(const vs_crawl *c) { return c->seed_error[0] ? c->seed_error : NULL; }
