/* test_front.c - the server front door's pure parts: token buckets (rates,
 * refill, Retry-After, bounded table), rate strings, the open mode's Host
 * check, CORS origin matching, and the connection watchdog shutting a
 * socket past its deadline (on a socketpair, no server). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "vs_conntrack.h"
#include "vs_hash.h"
#include "vs_origin.h"
#include "vs_ratelimit.h"

static void test_bucket_allows_burst_then_refuses_then_refills(void **state) {
    (void)state;
    vs_ratelimit *rl;
    assert_int_equal(vs_ratelimit_new(64, &rl, NULL), VS_OK);
    vs_rate r = {2, 5}; /* 2/s, burst 5 */
    int retry = 0;
    for (int i = 0; i < 5; i++) assert_int_equal(vs_ratelimit_check(rl, "ip:a", r, 1, 1000, &retry), 1);
    assert_int_equal(vs_ratelimit_check(rl, "ip:a", r, 1, 1000, &retry), 0);
    assert_int_equal(retry, 1); /* one token in 0.5 s: rounded up to 1 s */
    assert_int_equal(vs_ratelimit_check(rl, "ip:b", r, 1, 1000, &retry), 1); /* other key untouched */
    assert_int_equal(vs_ratelimit_check(rl, "ip:a", r, 1, 1400, &retry), 0);
    assert_int_equal(vs_ratelimit_check(rl, "ip:a", r, 1, 1500, &retry), 1); /* 0.5 s later: one token */
    assert_int_equal(vs_ratelimit_check(rl, "ip:a", r, 1, 1500, &retry), 0);
    /* a peek does not take */
    assert_int_equal(vs_ratelimit_check(rl, "ip:a", r, 0, 2000, &retry), 1);
    assert_int_equal(vs_ratelimit_check(rl, "ip:a", r, 1, 2000, &retry), 1);
    assert_int_equal(vs_ratelimit_check(rl, "ip:a", r, 0, 2000, &retry), 0);
    /* never more than the burst after a long pause */
    int ok = 0;
    for (int i = 0; i < 20; i++) ok += vs_ratelimit_check(rl, "ip:a", r, 1, 100000, &retry);
    assert_int_equal(ok, 5);
    /* unlimited */
    for (int i = 0; i < 1000; i++) assert_int_equal(vs_ratelimit_check(rl, "x", (vs_rate){0, 0}, 1, 0, &retry), 1);
    vs_ratelimit_free(rl);
}

static void test_slow_rate_gives_long_retry_after(void **state) {
    (void)state;
    vs_ratelimit *rl;
    assert_int_equal(vs_ratelimit_new(64, &rl, NULL), VS_OK);
    vs_rate r = {10.0 / 60, 2}; /* 10 per minute */
    int retry = 0;
    assert_int_equal(vs_ratelimit_check(rl, "fail:1.2.3.4", r, 1, 0, &retry), 1);
    assert_int_equal(vs_ratelimit_check(rl, "fail:1.2.3.4", r, 1, 0, &retry), 1);
    assert_int_equal(vs_ratelimit_check(rl, "fail:1.2.3.4", r, 1, 0, &retry), 0);
    assert_int_equal(retry, 6);
    vs_ratelimit_free(rl);
}

/* A flood of distinct keys cannot grow the table; a key evicted starts
 * over with a full bucket, others keep working. */
static void test_table_is_bounded(void **state) {
    (void)state;
    vs_ratelimit *rl;
    assert_int_equal(vs_ratelimit_new(64, &rl, NULL), VS_OK);
    vs_rate r = {1, 1};
    int retry;
    char key[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "ip:%d", i);
        assert_int_equal(vs_ratelimit_check(rl, key, r, 1, i, &retry), 1);
    }
    /* the newest key is still tracked and empty */
    assert_int_equal(vs_ratelimit_check(rl, "ip:99999", r, 1, 99999, &retry), 0);
    vs_ratelimit_free(rl);
}

static void test_rate_parse(void **state) {
    (void)state;
    vs_rate r;
    vs_error e = {0};
    assert_int_equal(vs_rate_parse("100", "X", &r, &e), VS_OK);
    assert_true(r.per_s == 100 && r.burst == 200);
    assert_int_equal(vs_rate_parse("20/s:50", "X", &r, &e), VS_OK);
    assert_true(r.per_s == 20 && r.burst == 50);
    assert_int_equal(vs_rate_parse("10/m", "X", &r, &e), VS_OK);
    assert_true(r.per_s > 0.166 && r.per_s < 0.167 && r.burst == 10);
    assert_int_equal(vs_rate_parse("off", "X", &r, &e), VS_OK);
    assert_true(r.per_s == 0);
    assert_int_equal(vs_rate_parse("0.5", "X", &r, &e), VS_OK);
    assert_true(r.per_s == 0.5 && r.burst == 1);
    assert_int_equal(vs_rate_parse("fast", "VISAGE_RATE_LIMIT", &r, &e), VS_ERR_INVALID_ARG);
    assert_non_null(strstr(e.msg, "VISAGE_RATE_LIMIT='fast'"));
    assert_int_equal(vs_rate_parse("10/h", "X", &r, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_rate_parse("10:0", "X", &r, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_rate_parse("-3", "X", &r, &e), VS_ERR_INVALID_ARG);
}

static void test_host_is_loopback(void **state) {
    (void)state;
    const char *yes[] = {"127.0.0.1", "127.0.0.1:8080", "localhost", "LocalHost:80", "[::1]", "[::1]:8080",
                         "127.255.0.9:1"};
    const char *no[] = {"attacker.example", "attacker.example:8080", "127.0.0.1.evil.example", "localhost.evil",
                        "10.0.0.1:80", "[::2]:80", "[::1]x", "127.0.0.1:80x", "127.0.0.1:", "", "localhost:123456",
                        "0x7f.0.0.1"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) assert_true(vs_host_is_loopback(yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        if (vs_host_is_loopback(no[i])) fail_msg("'%s' taken for loopback", no[i]);
    }
}

static void test_origins(void **state) {
    (void)state;
    assert_true(vs_origin_same_host("http://127.0.0.1:8080", "127.0.0.1:8080"));
    assert_true(vs_origin_same_host("https://visage.example", "visage.example"));
    assert_false(vs_origin_same_host("http://evil.example", "127.0.0.1:8080"));
    assert_false(vs_origin_same_host("http://127.0.0.1:9999", "127.0.0.1:8080"));
    assert_false(vs_origin_same_host("null", "127.0.0.1:8080"));
    assert_false(vs_origin_same_host("http://x", NULL));
    const char *list = "https://app.example, http://localhost:3000";
    assert_true(vs_origin_listed("https://app.example", list));
    assert_true(vs_origin_listed("http://localhost:3000", list));
    assert_false(vs_origin_listed("https://app.example.evil", list));
    assert_false(vs_origin_listed("https://app.exampl", list));
    assert_false(vs_origin_listed("null", list));
    assert_false(vs_origin_listed("https://app.example", NULL));
    vs_error e = {0};
    assert_int_equal(vs_origin_list_check(list, &e), VS_OK);
    assert_int_equal(vs_origin_list_check(NULL, &e), VS_OK);
    assert_int_equal(vs_origin_list_check("*", &e), VS_ERR_INVALID_ARG);
    assert_non_null(strstr(e.msg, "'*'"));
    assert_int_equal(vs_origin_list_check("https://a.example/path", &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_origin_list_check("https://*.example", &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_origin_list_check("app.example", &e), VS_ERR_INVALID_ARG);
}

static atomic_int cuts; /* written by the watchdog thread */
static void count_cut(void *ctx, int reason) {
    (void)ctx;
    atomic_fetch_add(&cuts, reason);
}

/* A socket past its deadline is shut (the peer reads end-of-file); one
 * without a deadline, or removed, is not touched. */
static void test_watchdog_shuts_late_sockets(void **state) {
    (void)state;
    int a[2], b[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    vs_conntrack *t;
    assert_int_equal(vs_conntrack_start(20, count_cut, NULL, &t, NULL), VS_OK);
    vs_tracked *ca = vs_conntrack_add(t, a[0], vs_now_ms() + 100, 7);
    vs_tracked *cb = vs_conntrack_add(t, b[0], vs_now_ms() + 100, 7);
    vs_conntrack_set(t, cb, 0, 0); /* b: no deadline any more */
    assert_int_equal(vs_conntrack_count(t), 2);
    char c;
    int64_t t0 = vs_now_ms();
    ssize_t n = read(a[1], &c, 1); /* blocks until the watchdog shuts a[0] */
    int64_t waited = vs_now_ms() - t0;
    assert_int_equal(n, 0);
    printf("watchdog: socket shut %lld ms after tracking (deadline 100 ms)\n", (long long)waited);
    assert_true(waited >= 50);
    assert_int_equal(atomic_load(&cuts), 7);
    assert_int_equal(write(b[1], "x", 1), 1); /* b still open both ways */
    assert_int_equal(read(b[0], &c, 1), 1);
    vs_conntrack_remove(t, ca);
    vs_conntrack_remove(t, cb);
    assert_int_equal(vs_conntrack_count(t), 0);
    vs_conntrack_stop(t);
    close(a[0]), close(a[1]), close(b[0]), close(b[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_allows_burst_then_refuses_then_refills),
        cmocka_unit_test(test_slow_rate_gives_long_retry_after),
        cmocka_unit_test(test_table_is_bounded),
        cmocka_unit_test(test_rate_parse),
        cmocka_unit_test(test_host_is_loopback),
        cmocka_unit_test(test_origins),
        cmocka_unit_test(test_watchdog_shuts_late_sockets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
