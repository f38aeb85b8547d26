/* test_robots.c - robots.txt parsing and matching against the examples of
 * RFC 9309 and Google's robots.txt documentation, plus hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vs_alloc.h"
#include "vs_err.h"
#include "vs_robots.h"

/* Parses a NUL-terminated robots.txt for `ua`, failing the test on error. */
static vs_robots *parse_ua(const char *txt, const char *ua) {
    vs_robots *r = NULL;
    vs_error e;
    vs_error_clear(&e);
    assert_int_equal(vs_robots_parse(txt, strlen(txt), ua, &r, &e), VS_OK);
    assert_non_null(r);
    return r;
}

static vs_robots *parse(const char *txt) { return parse_ua(txt, "visage/0.1 (+https://example.org)"); }

static void test_specific_group_beats_star(void **state) {
    (void)state;
    const char *txt =
        "User-agent: *\n"
        "Disallow: /\n"
        "\n"
        "User-agent: otherbot\n"
        "Allow: /\n"
        "\n"
        "User-agent: visage\n"
        "Disallow: /secret\n";
    vs_robots *r = parse(txt);
    assert_true(vs_robots_allowed(r, "/public"));
    assert_false(vs_robots_allowed(r, "/secret/x"));
    vs_robots_free(r);
    /* Another agent falls back to '*'. */
    r = parse_ua(txt, "somebot/2.0");
    assert_false(vs_robots_allowed(r, "/public"));
    vs_robots_free(r);
    /* No group for us and no '*': everything allowed. */
    r = parse("User-agent: otherbot\nDisallow: /\n");
    assert_true(vs_robots_allowed(r, "/anything"));
    vs_robots_free(r);
}

static void test_user_agent_case_insensitive_and_shared_group(void **state) {
    (void)state;
    /* Consecutive User-agent lines share the rules that follow; tokens are
     * compared case-insensitively and version suffixes are ignored. */
    const char *txt =
        "User-agent: otherbot\n"
        "USER-AGENT: ViSaGe/9.9\n"
        "Disallow: /x\n"
        "User-agent: *\n"
        "Disallow: /y\n";
    vs_robots *r = parse(txt);
    assert_false(vs_robots_allowed(r, "/x"));
    assert_true(vs_robots_allowed(r, "/y"));
    vs_robots_free(r);
    /* A longer token is a different agent. */
    r = parse("User-agent: visage-images\nDisallow: /\nUser-agent: *\nDisallow: /y\n");
    assert_true(vs_robots_allowed(r, "/x"));
    assert_false(vs_robots_allowed(r, "/y"));
    vs_robots_free(r);
}

static void test_groups_for_same_agent_merge(void **state) {
    (void)state;
    vs_robots *r = parse("User-agent: visage\nDisallow: /a\n\nUser-agent: visage\nDisallow: /b\n");
    assert_false(vs_robots_allowed(r, "/a"));
    assert_false(vs_robots_allowed(r, "/b"));
    assert_true(vs_robots_allowed(r, "/c"));
    vs_robots_free(r);
}

static void test_allow_inside_disallowed_dir(void **state) {
    (void)state;
    vs_robots *r = parse("User-agent: *\nDisallow: /private/\nAllow: /private/ok.html\n");
    assert_false(vs_robots_allowed(r, "/private/"));
    assert_false(vs_robots_allowed(r, "/private/secret.html"));
    assert_true(vs_robots_allowed(r, "/private/ok.html"));
    assert_true(vs_robots_allowed(r, "/private"));
    assert_true(vs_robots_allowed(r, "/"));
    vs_robots_free(r);
}

static void test_wildcard_and_end_anchor(void **state) {
    (void)state;
    vs_robots *r = parse("User-agent: *\nDisallow: /*.gif$\nDisallow: /fish*.php\n");
    assert_false(vs_robots_allowed(r, "/a.gif"));
    assert_false(vs_robots_allowed(r, "/dir/b.c.gif"));
    assert_true(vs_robots_allowed(r, "/a.gif?x"));
    assert_true(vs_robots_allowed(r, "/a.gifs"));
    assert_false(vs_robots_allowed(r, "/fish.php"));
    assert_false(vs_robots_allowed(r, "/fishheads/catfish.php?parameters"));
    assert_true(vs_robots_allowed(r, "/Fish.PHP"));
    vs_robots_free(r);
}

static void test_disallow_all_but_root(void **state) {
    (void)state;
    vs_robots *r = parse("User-agent: *\nDisallow: /\nAllow: /$\n");
    assert_true(vs_robots_allowed(r, "/"));
    assert_true(vs_robots_allowed(r, ""));
    assert_false(vs_robots_allowed(r, "/page"));
    assert_false(vs_robots_allowed(r, "/?q=1"));
    /* /robots.txt is always allowed. */
    assert_true(vs_robots_allowed(r, "/robots.txt"));
    vs_robots_free(r);
}

static void test_empty_disallow_allows_all(void **state) {
    (void)state;
    vs_robots *r = parse("User-agent: *\nDisallow:\n");
    assert_true(vs_robots_allowed(r, "/"));
    assert_true(vs_robots_allowed(r, "/anything/at/all"));
    vs_robots_free(r);
    /* An empty file, too. */
    r = NULL;
    assert_int_equal(vs_robots_parse(NULL, 0, "visage", &r, NULL), VS_OK);
    assert_true(vs_robots_allowed(r, "/x"));
    assert_true(vs_robots_crawl_delay(r) < 0);
    vs_robots_free(r);
}

static void test_longest_match_and_allow_wins_ties(void **state) {
    (void)state;
    vs_robots *r = parse("User-agent: *\nAllow: /p\nDisallow: /\n");
    assert_true(vs_robots_allowed(r, "/page"));
    assert_false(vs_robots_allowed(r, "/other"));
    vs_robots_free(r);
    r = parse("User-agent: *\nAllow: /folder\nDisallow: /folder\n");
    assert_true(vs_robots_allowed(r, "/folder/page"));
    vs_robots_free(r);
    /* Order does not matter for the tie. */
    r = parse("User-agent: *\nDisallow: /folder\nAllow: /folder\n");
    assert_true(vs_robots_allowed(r, "/folder/page"));
    vs_robots_free(r);
    /* Longer Disallow beats shorter Allow, whatever the order. */
    r = parse("User-agent: *\nAllow: /page\nDisallow: /*.htm\n");
    assert_false(vs_robots_allowed(r, "/page.htm"));
    vs_robots_free(r);
    r = parse("User-agent: *\nAllow: /$\nDisallow: /\n");
    assert_false(vs_robots_allowed(r, "/page.htm"));
    assert_true(vs_robots_allowed(r, "/"));
    vs_robots_free(r);
}

static void test_crawl_delay(void **state) {
    (void)state;
    vs_robots *r = parse("User-agent: *\nCrawl-delay: 9\n\nUser-agent: visage\nCrawl-delay: 2.5\nDisallow: /x\n");
    assert_true(vs_robots_crawl_delay(r) > 2.49 && vs_robots_crawl_delay(r) < 2.51);
    vs_robots_free(r);
    r = parse_ua("User-agent: *\nCrawl-delay: 9\n\nUser-agent: visage\nCrawl-delay: 2.5\n", "other");
    assert_true(vs_robots_crawl_delay(r) > 8.99 && vs_robots_crawl_delay(r) < 9.01);
    vs_robots_free(r);
    r = parse("User-agent: *\nDisallow: /x\n");
    assert_true(vs_robots_crawl_delay(r) < 0);
    vs_robots_free(r);
    r = parse("User-agent: *\nCrawl-delay: soon\n");
    assert_true(vs_robots_crawl_delay(r) < 0);
    vs_robots_free(r);
}

static void test_crlf_comments_and_bom(void **state) {
    (void)state;
    const char *txt =
        "\xEF\xBB\xBF# robots for example.org\r\n"
        "User-agent: visage # our crawler\r\n"
        "Disallow: /tmp/ # scratch space\r\n"
        "# Disallow: /commented\r\n"
        "Crawl-delay: 1.5\r\n"
        "Sitemap: https://example.org/sitemap.xml\r\n";
    vs_robots *r = parse(txt);
    assert_false(vs_robots_allowed(r, "/tmp/file"));
    assert_true(vs_robots_allowed(r, "/commented"));
    assert_true(vs_robots_allowed(r, "/tmp"));
    assert_true(vs_robots_crawl_delay(r) > 1.49 && vs_robots_crawl_delay(r) < 1.51);
    vs_robots_free(r);
}

static void test_rules_before_any_group_are_ignored(void **state) {
    (void)state;
    vs_robots *r = parse("Disallow: /\nUser-agent: *\nDisallow: /x\n");
    assert_true(vs_robots_allowed(r, "/y"));
    assert_false(vs_robots_allowed(r, "/x"));
    vs_robots_free(r);
}

static void test_fetch_failure_policies(void **state) {
    (void)state;
    vs_robots *a = vs_robots_allow_all(), *d = vs_robots_disallow_all();
    assert_non_null(a);
    assert_non_null(d);
    assert_true(vs_robots_allowed(a, "/anything"));
    assert_false(vs_robots_allowed(d, "/anything"));
    assert_true(vs_robots_allowed(d, "/robots.txt"));
    assert_true(vs_robots_crawl_delay(a) < 0);
    vs_robots_free(a);
    vs_robots_free(d);
}

static void test_input_past_512k_ignored(void **state) {
    (void)state;
    size_t n = VS_ROBOTS_MAX_BYTES + 64;
    char *buf = vs_malloc(n + 1);
    assert_non_null(buf);
    const char *head = "User-agent: *\nDisallow: /a\n";
    memset(buf, '\n', n);
    memcpy(buf, head, strlen(head));
    const char *tail = "Disallow: /b\n";
    memcpy(buf + n - strlen(tail), tail, strlen(tail));
    buf[n] = '\0';
    vs_robots *r = NULL;
    assert_int_equal(vs_robots_parse(buf, n, "visage", &r, NULL), VS_OK);
    assert_false(vs_robots_allowed(r, "/a"));
    assert_true(vs_robots_allowed(r, "/b"));
    vs_robots_free(r);
    vs_free(buf);
}

static void test_garbage_does_not_crash(void **state) {
    (void)state;
    size_t n = 1u << 20;
    unsigned char *buf = vs_malloc(n);
    assert_non_null(buf);
    uint32_t x = 12345;
    static const char alphabet[] = "User-agent:Disallow*$/\n\r#: visage\0\xff";
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        buf[i] = (unsigned char)alphabet[(x >> 16) % (sizeof alphabet - 1)];
    }
    vs_robots *r = NULL;
    assert_int_equal(vs_robots_parse((const char *)buf, n, "visage", &r, NULL), VS_OK);
    (void)vs_robots_allowed(r, "/some/path?with=query");
    (void)vs_robots_crawl_delay(r);
    vs_robots_free(r);
    vs_free(buf);
}

static void test_allocation_failure_reported(void **state) {
    (void)state;
    const char *txt = "User-agent: *\nDisallow: /a\nDisallow: /b\n";
    for (long k = 0; k < 8; k++) {
        vs_robots *r = NULL;
        vs_error e;
        vs_error_clear(&e);
        vs_alloc_fail_after(k);
        vs_err rc = vs_robots_parse(txt, strlen(txt), "visage", &r, &e);
        vs_alloc_fail_after(-1);
        if (rc == VS_OK) {
            assert_false(vs_robots_allowed(r, "/b"));
            vs_robots_free(r);
        } else {
            assert_int_equal(rc, VS_ERR_NOMEM);
            assert_null(r);
        }
    }
    assert_int_equal(vs_robots_parse("x", 1, NULL, NULL, NULL), VS_ERR_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_specific_group_beats_star),
        cmocka_unit_test(test_user_agent_case_insensitive_and_shared_group),
        cmocka_unit_test(test_groups_for_same_agent_merge),
        cmocka_unit_test(test_allow_inside_disallowed_dir),
        cmocka_unit_test(test_wildcard_and_end_anchor),
        cmocka_unit_test(test_disallow_all_but_root),
        cmocka_unit_test(test_empty_disallow_allows_all),
        cmocka_unit_test(test_longest_match_and_allow_wins_ties),
        cmocka_unit_test(test_crawl_delay),
        cmocka_unit_test(test_crlf_comments_and_bom),
        cmocka_unit_test(test_rules_before_any_group_are_ignored),
        cmocka_unit_test(test_fetch_failure_policies),
        cmocka_unit_test(test_input_past_512k_ignored),
        cmocka_unit_test(test_garbage_does_not_crash),
        cmocka_unit_test(test_allocation_failure_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
