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
} vs_fetch_opts;

typedef struct vs_fetch_result {
    uint8_t *data;             /* vs_free; NUL-terminated (not counted in len) */
    size_t len;
    long http_status;
    char content_type[128];
    char final_url[2048];
} vs_fetch_result;

/* Errors: VS_ERR_INVALID_ARG (bad URL or scheme, bad allow_cidrs),
 * VS_ERR_UNSUPPORTED ("address not allowed: 10.0.0.1 (private)", or a
 * redirect to another scheme), VS_ERR_TOO_LARGE, VS_ERR_IO (network,
 * timeout, too many redirects, HTTP status outside 2xx: the message says
 * which; http_status is kept for an HTTP error). Thread-safe: one easy handle
 * per call, curl_global_init done once inside. */
vs_err vs_fetch_url(const char *url, const vs_fetch_opts *opts, vs_fetch_result *out, vs_error *err);
void vs_fetch_result_free(vs_fetch_result *r);

/* 1 when addr (textual IPv4/IPv6, optionally [bracketed]) may be connected
 * to under opts; 0 for anything unparsable. A malformed allow_cidrs allows
 * nothing here (vs_fetch_url rejects it). */
int vs_fetch_addr_allowed(const char *addr, const vs_fetch_opts *opts);

#endif
