/* vs_crawl.h - the crawler: one loop on the libcurl multi interface fetching
 * pages and images of a site, politely (per-host delay and concurrency,
 * robots.txt), inside a scope (the seed's site unless told otherwise), with
 * every connection under the address policy of vs_fetch. Pages are parsed
 * with vs_html; images are sniffed by magic bytes and handed to the caller's
 * sink, which stores and queues them. No storage of its own: the caller
 * persists the frontier through the sink to resume after a restart.
 *
 * One vs_crawl is used by one thread; the stop flag may be set by another. */
#ifndef VS_CRAWL_H
#define VS_CRAWL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "vs_err.h"

#define VS_CRAWL_URL_MAX 2048   /* longer URLs are not queued */

typedef enum vs_crawl_kind { VS_CRAWL_PAGE = 0, VS_CRAWL_IMAGE = 1 } vs_crawl_kind;

/* A URL in the frontier. referrer is the page it was found on ("" for a
 * seed): for an image, the page it appears on. */
typedef struct vs_crawl_url {
    char url[VS_CRAWL_URL_MAX];
    char referrer[VS_CRAWL_URL_MAX];
    int depth;                    /* pages: link distance from the seed */
    int redirects;                /* redirect hops taken to reach this URL */
    vs_crawl_kind kind;
} vs_crawl_url;

/* What a crawl did; all counts are cumulative over resumes. */
typedef struct vs_crawl_counts {
    int64_t requests;             /* HTTP requests sent, robots.txt included */
    int64_t pages_fetched;        /* HTML pages downloaded and parsed */
    int64_t images_fetched;       /* image bodies downloaded (any outcome) */
    int64_t images_saved;         /* new images stored and queued */
    int64_t images_duplicate;     /* already had by the tenant (sha256) */
    int64_t images_skipped;       /* not an image, too large, no face ... */
    int64_t robots_blocked;       /* URLs robots.txt disallowed (never requested) */
    int64_t out_of_scope;         /* URLs on other hosts (never requested) */
    int64_t redirects;            /* 3xx answers followed */
    int64_t errors;               /* HTTP errors, timeouts, refused addresses ... */
    int64_t bytes;                /* body bytes received */
} vs_crawl_counts;

/* Zero fields take the defaults given. */
typedef struct vs_crawl_opts {
    int max_depth;                /* link depth from the seed; 0 = seed page only (default 0) */
    int max_pages;                /* pages fetched in all (100) */
    int max_images;               /* images fetched in all (10000) */
    int delay_ms;                 /* per host, between request starts (1000); <0 = none */
    int per_host;                 /* transfers in flight per host (1) */
    int max_transfers;            /* transfers in flight in all (16) */
    int timeout_ms;               /* per transfer (15000) */
    int max_redirects;            /* per URL chain (5) */
    int retry_wait_ms;            /* after a 429/503 without Retry-After, times the try (5000) */
    size_t max_page_bytes;        /* larger pages are aborted mid-transfer (4 MiB) */
    size_t max_image_bytes;       /* larger images are aborted mid-transfer (16 MiB) */
    const char *user_agent;       /* "visage/0.1 (+https://github.com/visage/visage)" */
    const char *allow_hosts;      /* extra hosts in scope, with their subdomains, comma-separated
                                     ("cdn.example.net") */
    const char *allow_cidrs;      /* address ranges allowed despite the rules (vs_fetch_opts) */
    int allow_all;                /* 1 = no address check (operator's own crawl) */
    vs_crawl_counts start;        /* counts to continue from (resume) */
} vs_crawl_opts;

/* A downloaded image, already sniffed (format known). Borrowed for the call. */
typedef struct vs_crawl_image {
    const uint8_t *data;
    size_t len;
    const char *url;              /* final URL after redirects */
    const char *page_url;         /* page it was found on */
    const char *site;             /* the seed's site (vs_crawl_site) */
    const char *format;           /* "jpeg", "png", "webp", "gif" */
} vs_crawl_image;

typedef enum vs_crawl_image_outcome {
    VS_CRAWL_IMG_SAVED = 0, VS_CRAWL_IMG_DUPLICATE, VS_CRAWL_IMG_SKIPPED
} vs_crawl_image_outcome;

/* The caller's side: all callbacks run on the crawl's thread and may be NULL
 * except image. An error from image or discovered stops the crawl (the store
 * or database is down: better to stop and resume than to lose images). */
typedef struct vs_crawl_sink {
    void *ctx;
    vs_err (*image)(void *ctx, const vs_crawl_image *img, vs_crawl_image_outcome *outcome, vs_error *err);
    /* New URLs about to be queued (persist them before they are fetched). */
    vs_err (*discovered)(void *ctx, const vs_crawl_url *urls, int n, vs_error *err);
    /* A URL was handled (fetched, failed or refused): never fetch it again.
     * counts include everything this URL changed (persist them together). */
    void (*done)(void *ctx, const vs_crawl_url *u, const vs_crawl_counts *counts);
    /* Called about 4 times a second and once at the end. */
    void (*progress)(void *ctx, const vs_crawl_counts *counts);
    /* One line per failed URL, e.g. "HTTP 404 from http://..." */
    void (*url_error)(void *ctx, const vs_crawl_url *u, const char *msg);
} vs_crawl_sink;

typedef struct vs_crawl vs_crawl;

/* A crawl with options o (copied; strings too) delivering to sink. */
vs_err vs_crawl_new(const vs_crawl_opts *o, const vs_crawl_sink *sink, vs_crawl **out, vs_error *err);
void vs_crawl_free(vs_crawl *c);

/* Queues the seed page: sets the scope (its host) and the site name.
 * Errors: INVALID_ARG for a URL that is not absolute http(s). The seed is
 * passed to sink->discovered like every other URL. */
vs_err vs_crawl_seed(vs_crawl *c, const char *url, vs_error *err);

/* Resume: tells the crawl about a URL of an earlier run of the same job:
 * pending ones are queued, done ones only enter the dedup set. Neither is
 * passed to sink->discovered. Call before vs_crawl_seed, which then finds
 * the seed already known and does not queue it again. */
vs_err vs_crawl_restore(vs_crawl *c, const vs_crawl_url *u, int pending, vs_error *err);

/* Runs until nothing is left to fetch, a limit is reached, *stop becomes
 * non-zero (VS_ERR_CANCELLED; the frontier stays resumable) or the sink
 * fails (its error; the URL in hand stays pending). Errors of single URLs
 * are counted and reported to sink->url_error, never returned. */
vs_err vs_crawl_run(vs_crawl *c, const atomic_int *stop, vs_error *err);

/* Counts so far. */
void vs_crawl_get_counts(const vs_crawl *c, vs_crawl_counts *out);

/* Why the seed URL (or the redirect chain it started) failed in this run,
 * or NULL: a crawl whose seed fails has nothing else to find. */
const char *vs_crawl_seed_error(const vs_crawl *c);

/* The normalised form of url used for dedup and scope: scheme and host
 * lower-cased, default port dropped, fragment dropped, empty path = "/".
 * Returns 0, or -1 when url is not an absolute http(s) URL or too long. */
int vs_crawl_normalise(const char *url, char *out, size_t cap);

/* The site of url, which is the crawl's scope: the registrable domain of
 * its host by the Public Suffix List (https://www.example.co.uk/x ->
 * "example.co.uk"; cdn.example.com is the same site as www.example.com,
 * alice.github.io is not bob.github.io); an IP address or a name without a
 * registrable domain is its own site. 0, or -1 like vs_crawl_normalise. */
int vs_crawl_site(const char *url, char *out, size_t cap);

#endif
