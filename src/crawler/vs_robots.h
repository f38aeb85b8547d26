/* vs_robots.h - robots.txt (RFC 9309) for the crawler: parse one file for one
 * user agent, then answer "may I fetch this path?" and "how long between
 * requests?". Pure text processing, no network I/O.
 *
 * Fetch-failure policy (RFC 9309 section 2.3.1), applied by the caller that
 * downloads /robots.txt:
 *   - 2xx: vs_robots_parse() on the body.
 *   - 3xx: follow at most 5 redirects; more than that is treated as 4xx.
 *   - 4xx (incl. 404, 401, 403): "unavailable" -> vs_robots_allow_all().
 *   - 5xx, timeout, DNS/connect failure: "unreachable" ->
 *     vs_robots_disallow_all() (the crawler may reuse a cached copy instead,
 *     and after 30 days of unreachability may treat it as allow-all).
 * In every case /robots.txt itself stays allowed. */
#ifndef VS_ROBOTS_H
#define VS_ROBOTS_H

#include <stddef.h>

#include "vs_err.h"

/* Only the first 512 KiB of a robots.txt are read (Google's limit); the rest
 * is ignored, not an error. */
#define VS_ROBOTS_MAX_BYTES (512u * 1024u)

typedef struct vs_robots vs_robots;

/* Parses `len` bytes of `text` (need not be NUL-terminated; may be NULL when
 * len is 0) for `user_agent`, whose product token (the leading run of
 * letters, '_' and '-', e.g. "visage" of "visage/0.1 (+url)") is matched
 * case-insensitively against the User-agent lines. The rules kept are those of
 * the group(s) naming that token, else those of the '*' group(s), else none
 * (everything allowed). Groups naming the same agent are merged (RFC 9309).
 * Never fails on malformed input: unknown lines are skipped.
 * On success *out is owned by the caller (vs_robots_free). Errors: NOMEM,
 * INVALID_ARG (NULL out/user_agent, or NULL text with len > 0). */
vs_err vs_robots_parse(const char *text, size_t len, const char *user_agent,
                       vs_robots **out, vs_error *err);

/* 1 when `path_and_query` (the URL's path plus "?query", e.g. "/a/b?x=1"; ""
 * counts as "/") may be fetched, else 0. Longest matching rule wins (length
 * of the rule's pattern as written), Allow wins ties; no match = allowed.
 * Patterns support '*' (any run) and a trailing '$' (end of URL). No percent-
 * encoding normalisation: pass the path as it will be requested.
 * "/robots.txt" is always allowed. */
int vs_robots_allowed(const vs_robots *r, const char *path_and_query);

/* Crawl-delay of the chosen group in seconds (fractions allowed, capped at
 * one day), or -1 when the group has none. */
double vs_robots_crawl_delay(const vs_robots *r);

/* Policy objects for failed fetches (see the top of this file). NULL on
 * allocation failure; free with vs_robots_free. */
vs_robots *vs_robots_allow_all(void);
vs_robots *vs_robots_disallow_all(void);

void vs_robots_free(vs_robots *r);

#endif
