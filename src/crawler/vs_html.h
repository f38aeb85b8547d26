/* vs_html.h - link extraction from one HTML page for the crawler: the image
 * URLs worth fetching and the page links to follow at the next depth. Parsing
 * with gumbo (HTML5 tree builder, so malformed markup is handled like a
 * browser does); URL resolution with libcurl's URL API. No network I/O. */
#ifndef VS_HTML_H
#define VS_HTML_H

#include <stddef.h>

#include "vs_err.h"

#define VS_HTML_MAX_BYTES (8u * 1024u * 1024u) /* larger input: VS_ERR_TOO_LARGE */
#define VS_HTML_MAX_LINKS 10000                /* per list; further URLs are dropped */
#define VS_HTML_MAX_URL 8192                   /* longer resolved URLs are dropped */
#define VS_HTML_MAX_DEPTH 1000                 /* deeper element nesting: VS_ERR_TOO_LARGE */

/* Absolute http/https URLs, fragment removed, deduplicated (exact string),
 * in first-seen document order. All strings and both arrays are owned by
 * the struct: free with vs_html_links_free. */
typedef struct vs_html_links {
    char **images;
    int n_images;
    char **pages;
    int n_pages;
} vs_html_links;

/* Extracts from `len` bytes of `html` (need not be NUL-terminated):
 *   images: per <img> one URL, the first that resolves to http(s) of: the
 *           largest srcset candidate, the largest data-srcset candidate,
 *           data-src, src (lazy loaders put the real image in data-* and a
 *           placeholder in src); per <picture><source> the largest of its
 *           srcset (or data-srcset); <meta property|name="og:image[:url|
 *           :secure_url]" | "twitter:image[:src]" content>; <link
 *           rel="image_src" href>. "Largest" = highest w descriptor, else
 *           highest x density (none = 1x), else the first candidate.
 *   pages:  <a href>.
 * Relative URLs resolve against the first <base href> (itself resolved
 * against page_url), else against page_url, which must be absolute.
 * javascript:, mailto:, data: and every non-http(s) scheme are dropped.
 * *out is zeroed first and stays zeroed on failure. Errors: INVALID_ARG
 * (NULL argument, page_url not an absolute URL), TOO_LARGE (len >
 * VS_HTML_MAX_BYTES), NOMEM, BACKEND (gumbo or libcurl failed). gumbo's own
 * allocations use malloc, not vs_alloc (gumbo does not survive failures).
 * Pages nesting elements deeper than VS_HTML_MAX_DEPTH (estimated before
 * parsing: gumbo slows down worse than quadratically with depth) are
 * TOO_LARGE. */
vs_err vs_html_extract(const char *html, size_t len, const char *page_url,
                       vs_html_links *out, vs_error *err);

/* Frees everything in *l and zeroes it; safe on a zeroed struct. */
void vs_html_links_free(vs_html_links *l);

#endif
