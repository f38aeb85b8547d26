/* test_html.c - image and page link extraction: resolution against the page
 * and <base>, srcset selection, picture/meta/link sources, scheme filtering,
 * fragment removal, dedup, malformed markup and the input size limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vs_alloc.h"
#include "vs_err.h"
#include "vs_html.h"

/* Extracts from a NUL-terminated page, failing the test on error. */
static void extract(const char *html, const char *url, vs_html_links *l) {
    vs_error e;
    vs_error_clear(&e);
    vs_err rc = vs_html_extract(html, strlen(html), url, l, &e);
    if (rc != VS_OK) fail_msg("vs_html_extract: %s", e.msg);
}

/* Index of s in list, or -1. */
static int find(char **list, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0) return i;
    return -1;
}

static void test_relative_links_and_dotdot(void **state) {
    (void)state;
    const char *html =
        "<html><body>"
        "<a href=\"other.html\">1</a>"
        "<a href=\"../up/page.html\">2</a>"
        "<a href=\"/root.html\">3</a>"
        "<a href=\"//cdn.example.net/x\">4</a>"
        "<a href=\"  https://other.org/abs?q=1  \">5</a>"
        "<a href=\"?page=2\">6</a>"
        "<img src=\"../img/face.jpg\">"
        "</body></html>";
    vs_html_links l;
    extract(html, "https://example.com/dir/sub/index.html?x=1", &l);
    assert_int_equal(l.n_pages, 6);
    assert_string_equal(l.pages[0], "https://example.com/dir/sub/other.html");
    assert_string_equal(l.pages[1], "https://example.com/dir/up/page.html");
    assert_string_equal(l.pages[2], "https://example.com/root.html");
    assert_string_equal(l.pages[3], "https://cdn.example.net/x");
    assert_string_equal(l.pages[4], "https://other.org/abs?q=1");
    assert_string_equal(l.pages[5], "https://example.com/dir/sub/index.html?page=2");
    assert_int_equal(l.n_images, 1);
    assert_string_equal(l.images[0], "https://example.com/dir/img/face.jpg");
    vs_html_links_free(&l);
    assert_null(l.pages);
    assert_int_equal(l.n_pages, 0);
}

static void test_base_href(void **state) {
    (void)state;
    const char *html =
        "<html><head><base href=\"/static/v2/\"><base href=\"https://ignored.org/\"></head>"
        "<body><img src=\"a.jpg\"><a href=\"../p.html\">p</a></body></html>";
    vs_html_links l;
    extract(html, "http://example.com/deep/path/page", &l);
    assert_int_equal(l.n_images, 1);
    assert_string_equal(l.images[0], "http://example.com/static/v2/a.jpg");
    assert_int_equal(l.n_pages, 1);
    assert_string_equal(l.pages[0], "http://example.com/static/p.html");
    vs_html_links_free(&l);
}

static void test_srcset_largest(void **state) {
    (void)state;
    const char *html =
        "<img src=\"small.jpg\" srcset=\"s.jpg 320w, xl.jpg 1600w,m.jpg 800w\">"
        "<img srcset=\"one.jpg, three.jpg 3x, two.jpg 2x\">"
        "<img srcset=\"first.jpg, second.jpg\">"
        "<img srcset=\"w,comma.jpg 100w, plain.jpg 200w\">";
    vs_html_links l;
    extract(html, "https://example.com/", &l);
    assert_int_equal(l.n_images, 4);
    assert_string_equal(l.images[0], "https://example.com/xl.jpg");
    assert_string_equal(l.images[1], "https://example.com/three.jpg");
    assert_string_equal(l.images[2], "https://example.com/first.jpg");
    assert_string_equal(l.images[3], "https://example.com/plain.jpg");
    assert_int_equal(find(l.images, l.n_images, "https://example.com/small.jpg"), -1);
    assert_int_equal(find(l.images, l.n_images, "https://example.com/s.jpg"), -1);
    vs_html_links_free(&l);
}

static void test_picture_meta_link_and_lazy(void **state) {
    (void)state;
    const char *html =
        "<html><head>"
        "<meta property=\"og:image\" content=\"https://img.example.com/og.jpg\">"
        "<meta name=\"twitter:image\" content=\"/tw.png\">"
        "<meta name=\"description\" content=\"/not-an-image.jpg\">"
        "<link rel=\"preload image_src\" href=\"/thumb.jpg\">"
        "<link rel=\"stylesheet\" href=\"/style.css\">"
        "</head><body>"
        "<picture><source srcset=\"p.webp 1x, p2.webp 2x\" type=\"image/webp\">"
        "<img src=\"p.jpg\"></picture>"
        "<video><source src=\"movie.mp4\" srcset=\"nope.jpg\"></video>"
        "<img src=\"data:image/gif;base64,R0lGOD\" data-src=\"lazy.jpg\">"
        "</body></html>";
    vs_html_links l;
    extract(html, "https://example.com/a/", &l);
    assert_int_equal(l.n_images, 6);
    assert_string_equal(l.images[0], "https://img.example.com/og.jpg");
    assert_string_equal(l.images[1], "https://example.com/tw.png");
    assert_string_equal(l.images[2], "https://example.com/thumb.jpg");
    assert_string_equal(l.images[3], "https://example.com/a/p2.webp");
    assert_string_equal(l.images[4], "https://example.com/a/p.jpg");
    assert_string_equal(l.images[5], "https://example.com/a/lazy.jpg");
    assert_int_equal(find(l.images, l.n_images, "https://example.com/a/nope.jpg"), -1);
    assert_int_equal(l.n_pages, 0);
    vs_html_links_free(&l);
}

static void test_schemes_fragments_and_dedup(void **state) {
    (void)state;
    const char *html =
        "<a href=\"javascript:alert(1)\">js</a>"
        "<a href=\"mailto:someone@example.com\">mail</a>"
        "<a href=\"ftp://example.com/file\">ftp</a>"
        "<a href=\"tel:+123\">tel</a>"
        "<a href=\"#top\">top</a>"
        "<a href=\"page.html#section\">s</a>"
        "<a href=\"page.html\">again</a>"
        "<a href=\"https://example.com/page.html#other\">abs</a>"
        "<a href=\"next.html\">n</a>"
        "<img src=\"x.jpg\"><img src=\"x.jpg#frag\"><img srcset=\"x.jpg 2x\">";
    vs_html_links l;
    extract(html, "https://example.com/index.html", &l);
    assert_int_equal(l.n_pages, 3);
    assert_string_equal(l.pages[0], "https://example.com/index.html");
    assert_string_equal(l.pages[1], "https://example.com/page.html");
    assert_string_equal(l.pages[2], "https://example.com/next.html");
    assert_int_equal(l.n_images, 1);
    assert_string_equal(l.images[0], "https://example.com/x.jpg");
    for (int i = 0; i < l.n_pages; i++) assert_null(strchr(l.pages[i], '#'));
    vs_html_links_free(&l);
}

static void test_malformed_html(void **state) {
    (void)state;
    const char *html =
        "<div><p>unclosed <b>bold <a href=/one>one <img src=i1.png alt='x'"
        "<table><tr><td><a href='/two'>two<td><img src=\"i2.png\">"
        "</span></div></div></html><a href=\"/three\"";
    vs_html_links l;
    extract(html, "http://example.com/", &l);
    assert_true(find(l.pages, l.n_pages, "http://example.com/one") >= 0);
    assert_true(find(l.pages, l.n_pages, "http://example.com/two") >= 0);
    assert_true(find(l.images, l.n_images, "http://example.com/i2.png") >= 0);
    vs_html_links_free(&l);
    /* Empty input is a page without links. */
    assert_int_equal(vs_html_extract("", 0, "http://example.com/", &l, NULL), VS_OK);
    assert_int_equal(l.n_images + l.n_pages, 0);
    vs_html_links_free(&l);
}

static void test_list_cap(void **state) {
    (void)state;
    size_t per = 32, n = VS_HTML_MAX_LINKS + 50;
    char *html = vs_malloc(n * per + 1);
    assert_non_null(html);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) off += (size_t)snprintf(html + off, per, "<a href=/p%zu>", i);
    vs_html_links l;
    extract(html, "http://example.com/", &l);
    assert_int_equal(l.n_pages, VS_HTML_MAX_LINKS);
    assert_string_equal(l.pages[0], "http://example.com/p0");
    assert_string_equal(l.pages[VS_HTML_MAX_LINKS - 1], "http://example.com/p9999");
    vs_html_links_free(&l);
    vs_free(html);
}

static void test_too_large_and_bad_args(void **state) {
    (void)state;
    size_t n = 9u * 1024u * 1024u;
    char *html = vs_malloc(n);
    assert_non_null(html);
    memset(html, 'a', n);
    vs_html_links l;
    vs_error e;
    vs_error_clear(&e);
    assert_int_equal(vs_html_extract(html, n, "http://example.com/", &l, &e), VS_ERR_TOO_LARGE);
    assert_int_equal(e.code, VS_ERR_TOO_LARGE);
    assert_null(l.images);
    assert_null(l.pages);
    vs_free(html);
    assert_int_equal(vs_html_extract("<a href=x>", 10, "not a url", &l, NULL), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_html_extract("<a href=x>", 10, "ftp://example.com/", &l, NULL),
                     VS_ERR_INVALID_ARG);
    assert_int_equal(vs_html_extract("<a href=x>", 10, NULL, &l, NULL), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_html_extract("<a href=x>", 10, "http://e.com/", NULL, NULL), VS_ERR_INVALID_ARG);
}

static void test_allocation_failure_reported(void **state) {
    (void)state;
    const char *html = "<img src=a.jpg><img src=b.jpg><a href=c.html><a href=d.html>";
    int saw_fail = 0;
    for (long k = 0; k < 40; k++) {
        vs_html_links l;
        vs_alloc_fail_after(k);
        vs_err rc = vs_html_extract(html, strlen(html), "http://example.com/", &l, NULL);
        vs_alloc_fail_after(-1);
        if (rc == VS_OK) {
            assert_int_equal(l.n_images, 2);
            assert_int_equal(l.n_pages, 2);
        } else {
            assert_int_equal(rc, VS_ERR_NOMEM);
            assert_null(l.images);
            saw_fail = 1;
        }
        vs_html_links_free(&l);
    }
    assert_true(saw_fail);
}

/* Builds a page of n copies of unit followed by tail (caller frees). */
static char *repeat_page(const char *unit, int n, const char *tail, size_t *len) {
    size_t u = strlen(unit), t = strlen(tail);
    char *p = malloc(u * (size_t)n + t + 1);
    assert_non_null(p);
    for (int i = 0; i < n; i++) memcpy(p + u * (size_t)i, unit, u);
    memcpy(p + u * (size_t)n, tail, t + 1);
    *len = u * (size_t)n + t;
    return p;
}

/* Deep nesting is refused before gumbo sees it (which would take minutes);
 * long flat pages, runs of <p>/<li> the parser closes itself, void tags and
 * tags inside comments or scripts are not mistaken for depth. */
static void test_deep_nesting_refused(void **state) {
    (void)state;
    vs_html_links l;
    size_t len;
    char *deep = repeat_page("<div>", 20000, "<img src=a.jpg>", &len);
    vs_error e = {0};
    assert_int_equal(vs_html_extract(deep, len, "http://e.com/", &l, &e), VS_ERR_TOO_LARGE);
    assert_non_null(strstr(e.msg, "nested"));
    free(deep);
    char *fmt = repeat_page("<b>", 5000, "", &len);
    assert_int_equal(vs_html_extract(fmt, len, "http://e.com/", &l, NULL), VS_ERR_TOO_LARGE);
    free(fmt);
    char *ok = repeat_page("<div>", 900, "<img src=a.jpg>", &len);
    assert_int_equal(vs_html_extract(ok, len, "http://e.com/", &l, NULL), VS_OK);
    assert_int_equal(l.n_images, 1);
    vs_html_links_free(&l);
    free(ok);
    const char *units[] = {"<p>x", "<li>y", "<br><img src=b.png>", "<div></div>", "<!-- <div> -->",
                           "<script>if (a<b) document.write('<div>')</script>", "<span/>"};
    for (size_t k = 0; k < sizeof units / sizeof *units; k++) {
        char *flat = repeat_page(units[k], 3000, "<img src=a.jpg>", &len);
        assert_int_equal(vs_html_extract(flat, len, "http://e.com/", &l, NULL), VS_OK);
        assert_true(l.n_images >= 1);
        vs_html_links_free(&l);
        free(flat);
    }
    /* a page that ends inside "</scr", in a buffer with no NUL after it: the
     * depth pre-scan must not read past the end (AddressSanitizer build) */
    static const char cut[] = "<script>x</scr";
    char *exact = malloc(sizeof cut - 1);
    memcpy(exact, cut, sizeof cut - 1);
    assert_int_equal(vs_html_extract(exact, sizeof cut - 1, "http://e.com/", &l, NULL), VS_OK);
    vs_html_links_free(&l);
    free(exact);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relative_links_and_dotdot),
        cmocka_unit_test(test_base_href),
        cmocka_unit_test(test_srcset_largest),
        cmocka_unit_test(test_picture_meta_link_and_lazy),
        cmocka_unit_test(test_schemes_fragments_and_dedup),
        cmocka_unit_test(test_malformed_html),
        cmocka_unit_test(test_list_cap),
        cmocka_unit_test(test_too_large_and_bad_args),
        cmocka_unit_test(test_allocation_failure_reported),
        cmocka_unit_test(test_deep_nesting_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
