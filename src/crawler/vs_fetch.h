/* vs_fetch.h - HTTP(S) GET of one URL for URL ingest (and later the
 * crawler), treating the URL as hostile: only http/https; the connection is
 * refused when the resolved address is loopback, private (RFC 1918, ULA),
 * link-local (incl. 169.254.169.254 metadata), CGNAT, multicast, unspecified
 * or broadcast, unless its range is in allow_cidrs; checked for every
 * connection, so for every redirect hop too; size and time limits enforced
 * while downloading (the transfer is aborted, not truncated). */
#ifndef VS_FETCH_H
#define VS_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "vs_err.h"

/* Zero fields take the defaults; opts itself may be NULL. */
typedef struct vs_fetch_opts {
    size_t max_bytes;          /* default 32 MiB */
    int timeout_ms;            /* whole transfer, default 15000 */
    int max_redirects;         /* default 5; negative = follow none */
    const char *allow_cidrs;   /* e.g. "127.0.0.0/8,10.1.0.0/16"; NULL = none;
                                  a bare address is a /32 or /128 */
    int allow_all;             /* 1 = no address check (operator's own crawl) */
    const char *user_agent;    /* default "visage/0.1" */
    int no_follow;             /* 1: a 3xx answer is returned (VS_OK, redirect_url
                                  set) for the caller to judge, not followed */
    int reuse_connections;     /* 1: keep connections for later transfers of the
                                  same multi handle (the crawler) */
    /* Called once with the first check_bytes of the body (or the whole body
     * when shorter); a non-NULL reason aborts the transfer with
     * VS_ERR_UNSUPPORTED naming it (e.g. an "image" that is HTML). */
    const char *(*check_head)(void *ctx, const uint8_t *p, size_t n);
    void *check_ctx;
    size_t check_bytes;        /* default 16 */
    int truncate;              /* 1: a body over max_bytes keeps its first max_bytes
                                  (the transfer stops there) instead of failing:
                                  robots.txt, where only the start counts */
} vs_fetch_opts;

typedef struct vs_fetch_result {
    uint8_t *data;             /* vs_free; NUL-terminated (not counted in len) */
    size_t len;
    long http_status;
    char content_type[128];
    char final_url[2048];
    char redirect_url[2048];   /* absolute Location of a 3xx (no_follow only) */
    long retry_after_s;        /* Retry-After of the answer in seconds (kept also
                                  on an HTTP error), 0 when none */
    int refused;               /* on error: every address tried was refused by the rules */
    int too_many_redirects;    /* on error: the redirect limit was hit */
} vs_fetch_result;

/* Errors: VS_ERR_INVALID_ARG (bad URL or scheme, bad allow_cidrs),
 * VS_ERR_UNSUPPORTED ("address not allowed: 10.0.0.1 (private)", or a
 * redirect to another scheme), VS_ERR_TOO_LARGE, VS_ERR_IO (network,
 * timeout, too many redirects, HTTP status outside 2xx: the message says
 * which; http_status is kept for an HTTP error). Thread-safe: one easy handle
 * per call, curl_global_init done once inside. */
vs_err vs_fetch_url(const char *url, const vs_fetch_opts *opts, vs_fetch_result *out, vs_error *err);
void vs_fetch_result_free(vs_fetch_result *r);

/* The same transfer in pieces, for a caller running many at once on a curl
 * multi handle (the crawler): new prepares an easy handle with every option,
 * the address policy and the limits; the caller adds vs_fetch_xfer_easy(x)
 * to its multi, and when curl reports the transfer done, finish turns curl's
 * result code into the result or error of vs_fetch_url. free releases the
 * handle (remove it from the multi first). */
typedef struct vs_fetch_xfer vs_fetch_xfer;
/* libcurl's global set-up, exactly once per process (curl_global_init is not
 * thread-safe); every vs_fetch entry point calls it, callers making their own
 * multi handle call it first. VS_ERR_BACKEND when it failed. */
vs_err vs_fetch_global_init(vs_error *err);
/* VS_OK when list (NULL or "" = none) is a valid allow_cidrs value, else
 * INVALID_ARG naming the bad entry: to refuse a setting at start-up. */
vs_err vs_fetch_check_cidrs(const char *list, vs_error *err);
vs_err vs_fetch_xfer_new(const char *url, const vs_fetch_opts *opts, vs_fetch_xfer **out, vs_error *err);
void *vs_fetch_xfer_easy(vs_fetch_xfer *x);   /* the CURL * */
vs_err vs_fetch_xfer_finish(vs_fetch_xfer *x, int curl_code, vs_fetch_result *out, vs_error *err);
size_t vs_fetch_xfer_received(const vs_fetch_xfer *x);   /* body bytes so far */
void vs_fetch_xfer_free(vs_fetch_xfer *x);

/* 1 when addr (textual IPv4/IPv6, optionally [bracketed]) may be connected
 * to under opts; 0 for anything unparsable. A malformed allow_cidrs allows
 * nothing here (vs_fetch_url rejects it). */
int vs_fetch_addr_allowed(const char *addr, const vs_fetch_opts *opts);

#endif
