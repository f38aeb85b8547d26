/* fuzz_crawl.c - libFuzzer target for what the crawler reads from hostile
 * sites without the network: the input is split at its first NUL into a
 * robots.txt and an HTML page. robots.txt is parsed and asked about a few
 * paths (they must not crash, and "/robots.txt" must stay allowed); the
 * page's links are extracted and every URL found is normalised (it must be
 * absolute http(s) and normalise to itself a second time). Build and run:
 * tests/fuzz/run.sh crawl [seconds] */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vs_crawl.h"
#include "vs_html.h"
#include "vs_robots.h"

/* A normalised URL normalises to itself: dedup depends on it. */
static void check_url(const char *u) {
    char a[VS_CRAWL_URL_MAX], b[VS_CRAWL_URL_MAX];
    if (vs_crawl_normalise(u, a, sizeof a) != 0) return; /* too long or odd: dropped by the crawler */
    if (vs_crawl_normalise(a, b, sizeof b) != 0 || strcmp(a, b) != 0) abort();
    if (strncmp(a, "http://", 7) != 0 && strncmp(a, "https://", 8) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t rlen = nul ? (size_t)(nul - data) : size;
    vs_robots *r = NULL;
    if (vs_robots_parse((const char *)data, rlen, "visage/0.1", &r, NULL) == VS_OK) {
        static const char *paths[] = {"/", "/a/b?c=d", "/private/x", "", "/%2F$", "/robots.txt"};
        for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) (void)vs_robots_allowed(r, paths[i]);
        if (!vs_robots_allowed(r, "/robots.txt")) abort();
        (void)vs_robots_crawl_delay(r);
        vs_robots_free(r);
    }
    if (!nul) return 0;
    vs_html_links l;
    if (vs_html_extract((const char *)nul + 1, size - rlen - 1, "http://example.com/dir/page.html", &l, NULL) == VS_OK) {
        for (int i = 0; i < l.n_images; i++) check_url(l.images[i]);
        for (int i = 0; i < l.n_pages; i++) check_url(l.pages[i]);
        vs_html_links_free(&l);
    }
    return 0;
}
