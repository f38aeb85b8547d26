/* test_fetch.c - the hostile-URL fetcher: the address policy as a table
 * (addresses are only parsed, never connected to), then real transfers
 * against tiny libmicrohttpd servers on 127.0.0.1 (and 127.0.0.2 for a
 * redirect hop) with ephemeral ports. Nothing outside loopback is contacted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vs_alloc.h"
#include "vs_err.h"
#include "vs_fetch.h"
#include "vs_hash.h"

#define IMG_LEN 5000
#define BIG_LEN (2u << 20)

typedef struct test_server {
    struct MHD_Daemon *d;
    int port;
    atomic_int requests;
} test_server;

static test_server g_main, g_hop; /* 127.0.0.1 and 127.0.0.2 */
static uint8_t g_img[IMG_LEN];
static uint8_t *g_big;
static char g_hop_target[128];   /* http://127.0.0.2:PORT/img */
static atomic_int g_stopping;

/* Chunked body of BIG_LEN bytes with no declared length: only the running
 * total in the write callback can stop it. */
static ssize_t big_chunks(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)cls;
    if (pos >= BIG_LEN) return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = BIG_LEN - (size_t)pos < max ? BIG_LEN - (size_t)pos : max;
    memcpy(buf, g_big + pos, n);
    return (ssize_t)n;
}

/* Queues a response with an optional Location / Content-Type header. */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, struct MHD_Response *r,
                             const char *location, const char *ctype) {
    if (location) MHD_add_response_header(r, "Location", location);
    if (ctype) MHD_add_response_header(r, "Content-Type", ctype);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* The test routes; counts every request it sees. */
static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size,
                               void **con_cls) {
    (void)method, (void)version, (void)upload_data, (void)upload_data_size, (void)con_cls;
    test_server *s = cls;
    atomic_fetch_add(&s->requests, 1);
    struct MHD_Response *r;
    if (!strcmp(url, "/img")) {
        r = MHD_create_response_from_buffer(IMG_LEN, g_img, MHD_RESPMEM_PERSISTENT);
        return reply(conn, 200, r, NULL, "image/jpeg");
    }
    if (!strcmp(url, "/big")) {
        r = MHD_create_response_from_buffer(BIG_LEN, g_big, MHD_RESPMEM_PERSISTENT);
        return reply(conn, 200, r, NULL, "application/octet-stream");
    }
    if (!strcmp(url, "/bigchunked")) {
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, big_chunks, NULL, NULL);
        return reply(conn, 200, r, NULL, "application/octet-stream");
    }
    if (!strcmp(url, "/slow")) {
        for (int i = 0; i < 60 && !atomic_load(&g_stopping); i++) usleep(50 * 1000); /* 3 s */
        r = MHD_create_response_from_buffer(2, "ok", MHD_RESPMEM_PERSISTENT);
        return reply(conn, 200, r, NULL, "text/plain");
    }
    if (!strcmp(url, "/tiny")) {
        r = MHD_create_response_from_buffer(3, "abc", MHD_RESPMEM_PERSISTENT);
        return reply(conn, 200, r, NULL, "text/plain");
    }
    if (!strcmp(url, "/empty")) {
        r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        return reply(conn, 200, r, NULL, "text/plain");
    }
    if (!strcmp(url, "/404body") || !strcmp(url, "/302body")) { /* error and redirect pages with a body */
        static const char page[] = "<html><body><h1>Not here</h1><p>This page has a body longer than the check.</p></body></html>";
        r = MHD_create_response_from_buffer(sizeof page - 1, (void *)page, MHD_RESPMEM_PERSISTENT);
        return url[1] == '4' ? reply(conn, 404, r, NULL, "text/html") : reply(conn, 302, r, "/img", "text/html");
    }
    const char *loc = !strcmp(url, "/redirect") ? "/img"
                      : !strcmp(url, "/loop")   ? "/loop"
                      : !strcmp(url, "/hop")    ? g_hop_target
                      : !strcmp(url, "/toftp")  ? "ftp://127.0.0.1/x"
                      : !strcmp(url, "/tofile") ? "file:///etc/passwd"
                                                : NULL;
    r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (loc) return reply(conn, 302, r, loc, NULL);
    return reply(conn, 404, r, NULL, "text/plain");
}

/* Starts a server on ip with an ephemeral port; 0 on success. */
static int server_start(test_server *s, const char *ip) {
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, ip, &sin.sin_addr);
    atomic_store(&s->requests, 0);
    s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler,
                            s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_END);
    if (!s->d) return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    return s->port > 0 ? 0 : -1;
}

static int group_setup(void **state) {
    (void)state;
    for (size_t i = 0; i < IMG_LEN; i++) g_img[i] = (uint8_t)(i * 7 + 3);
    g_big = malloc(BIG_LEN);
    if (!g_big) return -1;
    memset(g_big, 'B', BIG_LEN);
    if (server_start(&g_main, "127.0.0.1") != 0) return -1;
    if (server_start(&g_hop, "127.0.0.2") != 0) { /* some sandboxes bind only 127.0.0.1 */
        fprintf(stderr, "note: no server on 127.0.0.2; the redirect-hop control is skipped\n");
        g_hop.d = NULL;
        g_hop.port = g_main.port;
    }
    snprintf(g_hop_target, sizeof g_hop_target, "http://127.0.0.2:%d/img", g_hop.port);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    atomic_store(&g_stopping, 1);
    if (g_main.d) MHD_stop_daemon(g_main.d);
    if (g_hop.d) MHD_stop_daemon(g_hop.d);
    free(g_big);
    return 0;
}

/* URL of path on the 127.0.0.1 server. */
static const char *url_of(const char *path) {
    static char buf[256];
    snprintf(buf, sizeof buf, "http://127.0.0.1:%d%s", g_main.port, path);
    return buf;
}

/* Options that may reach the test server on 127.0.0.1 only. */
static vs_fetch_opts loopback_opts(void) {
    return (vs_fetch_opts){.max_bytes = 1u << 20, .timeout_ms = 5000, .max_redirects = 5,
                           .allow_cidrs = "127.0.0.1/32"};
}

/* ---- the address policy as a table ---- */

static void test_addr_policy_table(void **state) {
    (void)state;
    static const char *blocked[] = {
        "0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.255", "127.0.0.1",
        "127.255.255.254", "169.254.169.254", "169.254.0.1", "172.16.0.1", "172.31.255.255", "192.0.0.1",
        "192.0.0.255", "192.168.0.1", "192.168.255.255", "198.18.0.1", "198.19.255.255", "224.0.0.1",
        "239.255.255.255", "240.0.0.1", "255.255.255.254", "255.255.255.255",
        "::", "::1", "[::1]", "fc00::1", "fd12:3456::1", "fdff:ffff::1", "fe80::1", "febf:ffff::1", "ff02::1",
        "ff0e::1", "::127.0.0.1", "fec0::1",
        /* IPv4-mapped: the IPv4 rules apply to the mapped address */
        "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:192.168.1.1",
        "::ffff:0.0.0.0", "::ffff:255.255.255.255",
        /* NAT64 well-known prefix: the IPv4 rules apply to the embedded address */
        "64:ff9b::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b::169.254.169.254",
        "64:ff9b::172.16.0.1", "64:ff9b::100.64.0.1",
    };
    static const char *allowed[] = {
        "93.184.216.34", "8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0",
        "192.0.1.1", "192.167.255.255", "192.169.0.0", "198.17.255.255", "198.20.0.0", "223.255.255.255",
        "11.0.0.0", "126.255.255.255", "128.0.0.0", "169.253.255.255", "169.255.0.0",
        "2606:4700::1", "[2606:4700::1]", "2a00:1450:4001::200e", "fbff::1", "fe7f::1",
        "::ffff:93.184.216.34", "64:ff9b::93.184.216.34", "64:ff9b::808:808",
    };
    for (size_t i = 0; i < sizeof blocked / sizeof *blocked; i++) {
        if (vs_fetch_addr_allowed(blocked[i], NULL)) fail_msg("%s should be blocked", blocked[i]);
        vs_fetch_opts o = {0};
        if (vs_fetch_addr_allowed(blocked[i], &o)) fail_msg("%s should be blocked with zero opts", blocked[i]);
    }
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
        if (!vs_fetch_addr_allowed(allowed[i], NULL)) fail_msg("%s should be allowed", allowed[i]);
    static const char *garbage[] = {"", "abc", "1.2.3", "1.2.3.4.5", "256.1.1.1", "::g", "localhost", "[::1",
                                    "1.2.3.4/32"};
    for (size_t i = 0; i < sizeof garbage / sizeof *garbage; i++)
        if (vs_fetch_addr_allowed(garbage[i], NULL)) fail_msg("'%s' is not an address", garbage[i]);
    assert_false(vs_fetch_addr_allowed(NULL, NULL));
}

static void test_addr_allow_cidrs(void **state) {
    (void)state;
    vs_fetch_opts o = {.allow_cidrs = " 10.1.0.0/16, fd00::/8 ,127.0.0.1,,"};
    assert_true(vs_fetch_addr_allowed("10.1.2.3", &o));
    assert_true(vs_fetch_addr_allowed("10.1.255.255", &o));
    assert_false(vs_fetch_addr_allowed("10.2.0.1", &o));
    assert_false(vs_fetch_addr_allowed("10.0.255.255", &o));
    assert_true(vs_fetch_addr_allowed("fd12::1", &o));
    assert_false(vs_fetch_addr_allowed("fc00::1", &o));
    assert_true(vs_fetch_addr_allowed("127.0.0.1", &o)); /* bare address = /32 */
    assert_false(vs_fetch_addr_allowed("127.0.0.2", &o));
    assert_false(vs_fetch_addr_allowed("::1", &o));
    assert_true(vs_fetch_addr_allowed("::ffff:10.1.0.5", &o));    /* IPv4 allow entries cover mapped forms */
    assert_true(vs_fetch_addr_allowed("64:ff9b::a01:5", &o));     /* ... and NAT64 10.1.0.5 */
    assert_false(vs_fetch_addr_allowed("64:ff9b::a02:5", &o));
    assert_false(vs_fetch_addr_allowed("169.254.169.254", &o));
    assert_true(vs_fetch_addr_allowed("8.8.8.8", &o));

    o.allow_cidrs = "0.0.0.0/0";
    assert_true(vs_fetch_addr_allowed("127.0.0.1", &o));
    assert_true(vs_fetch_addr_allowed("169.254.169.254", &o));
    assert_false(vs_fetch_addr_allowed("::1", &o));
    o.allow_cidrs = "::1/128";
    assert_true(vs_fetch_addr_allowed("::1", &o));
    assert_false(vs_fetch_addr_allowed("127.0.0.1", &o));
    o.allow_cidrs = "169.254.169.0/23"; /* host bits set: the prefix is what counts */
    assert_true(vs_fetch_addr_allowed("169.254.168.1", &o));
    assert_false(vs_fetch_addr_allowed("169.254.170.1", &o));

    /* a malformed list allows nothing, the rest of the policy still holds */
    const char *bad_lists[] = {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/8x", "nonsense", "10.0.0.0/8,::1/129"};
    for (size_t i = 0; i < sizeof bad_lists / sizeof *bad_lists; i++) {
        o.allow_cidrs = bad_lists[i];
        if (vs_fetch_addr_allowed("10.0.0.1", &o)) fail_msg("bad list '%s' allowed 10.0.0.1", bad_lists[i]);
        assert_true(vs_fetch_addr_allowed("8.8.8.8", &o));
    }

    o = (vs_fetch_opts){.allow_all = 1};
    assert_true(vs_fetch_addr_allowed("127.0.0.1", &o));
    assert_true(vs_fetch_addr_allowed("::ffff:169.254.169.254", &o));
    assert_false(vs_fetch_addr_allowed("abc", &o));
}

/* ---- transfers over loopback ---- */

static void test_default_opts_refuse_loopback(void **state) {
    (void)state;
    vs_fetch_result r;
    vs_error e = {0};
    int before = atomic_load(&g_main.requests);
    assert_int_equal(vs_fetch_url(url_of("/img"), NULL, &r, &e), VS_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "address not allowed: 127.0.0.1 (loopback)"));
    assert_null(r.data);
    vs_fetch_opts o = {.allow_cidrs = "10.0.0.0/8"};
    assert_int_equal(vs_fetch_url(url_of("/img"), &o, &r, &e), VS_ERR_UNSUPPORTED);
    assert_int_equal(atomic_load(&g_main.requests), before);
}

/* A host name goes through DNS first; the resolved address is what is checked. */
static void test_name_resolving_to_loopback_refused(void **state) {
    (void)state;
    char url[128];
    snprintf(url, sizeof url, "http://localhost:%d/img", g_main.port);
    vs_fetch_result r;
    vs_error e = {0};
    int before = atomic_load(&g_main.requests);
    assert_int_equal(vs_fetch_url(url, NULL, &r, &e), VS_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "loopback"));
    assert_int_equal(r.refused, 1);
    assert_int_equal(r.too_many_redirects, 0);
    assert_int_equal(atomic_load(&g_main.requests), before);
}

static void test_fetch_img_exact(void **state) {
    (void)state;
    vs_fetch_opts o = loopback_opts();
    o.allow_cidrs = "127.0.0.0/8";
    vs_fetch_result r;
    vs_error e = {0};
    int before = atomic_load(&g_main.requests);
    assert_int_equal(vs_fetch_url(url_of("/img"), &o, &r, &e), VS_OK);
    assert_int_equal(atomic_load(&g_main.requests), before + 1);
    assert_int_equal(r.len, IMG_LEN);
    assert_memory_equal(r.data, g_img, IMG_LEN);
    assert_int_equal(r.data[IMG_LEN], 0);
    assert_int_equal(r.http_status, 200);
    assert_string_equal(r.content_type, "image/jpeg");
    assert_string_equal(r.final_url, url_of("/img"));
    vs_fetch_result_free(&r);
    assert_null(r.data);

    o = (vs_fetch_opts){.allow_all = 1};
    assert_int_equal(vs_fetch_url(url_of("/img"), &o, &r, &e), VS_OK);
    assert_int_equal(r.len, IMG_LEN);
    vs_fetch_result_free(&r);
}

static void test_redirect_followed(void **state) {
    (void)state;
    vs_fetch_opts o = loopback_opts();
    vs_fetch_result r;
    vs_error e = {0};
    assert_int_equal(vs_fetch_url(url_of("/redirect"), &o, &r, &e), VS_OK);
    assert_int_equal(r.len, IMG_LEN); /* the 302's own body is not mixed in */
    assert_memory_equal(r.data, g_img, IMG_LEN);
    assert_string_equal(r.final_url, url_of("/img"));
    vs_fetch_result_free(&r);

    o.max_redirects = -1; /* follow none */
    assert_int_equal(vs_fetch_url(url_of("/redirect"), &o, &r, &e), VS_ERR_IO);
    assert_non_null(strstr(e.msg, "redirect"));
}

static void test_redirect_loop_fails(void **state) {
    (void)state;
    vs_fetch_opts o = loopback_opts();
    o.max_redirects = 3;
    vs_fetch_result r;
    vs_error e = {0};
    int before = atomic_load(&g_main.requests);
    assert_int_equal(vs_fetch_url(url_of("/loop"), &o, &r, &e), VS_ERR_IO);
    assert_non_null(strstr(e.msg, "too many redirects"));
    assert_int_equal(r.too_many_redirects, 1);
    assert_int_equal(r.refused, 0);
    assert_null(r.data);
    assert_int_equal(atomic_load(&g_main.requests) - before, 4); /* first + 3 follows */
}

static void test_http_404(void **state) {
    (void)state;
    vs_fetch_opts o = loopback_opts();
    vs_fetch_result r;
    vs_error e = {0};
    assert_int_equal(vs_fetch_url(url_of("/404"), &o, &r, &e), VS_ERR_IO);
    assert_non_null(strstr(e.msg, "HTTP 404"));
    assert_non_null(strstr(e.msg, "/404"));
    assert_int_equal(r.http_status, 404);
    assert_null(r.data);
}

static void test_too_large(void **state) {
    (void)state;
    vs_fetch_opts o = loopback_opts(); /* 1 MiB */
    vs_fetch_result r;
    vs_error e = {0};
    /* declared Content-Length */
    assert_int_equal(vs_fetch_url(url_of("/big"), &o, &r, &e), VS_ERR_TOO_LARGE);
    assert_non_null(strstr(e.msg, "response larger than 1048576 bytes"));
    assert_null(r.data);
    /* chunked, no declared size: the running total stops it */
    vs_error_clear(&e);
    assert_int_equal(vs_fetch_url(url_of("/bigchunked"), &o, &r, &e), VS_ERR_TOO_LARGE);
    assert_non_null(strstr(e.msg, "response larger than 1048576 bytes"));
    /* at exactly the limit both pass */
    o.max_bytes = BIG_LEN;
    assert_int_equal(vs_fetch_url(url_of("/big"), &o, &r, &e), VS_OK);
    assert_int_equal(r.len, BIG_LEN);
    vs_fetch_result_free(&r);
    assert_int_equal(vs_fetch_url(url_of("/bigchunked"), &o, &r, &e), VS_OK);
    assert_int_equal(r.len, BIG_LEN);
    assert_int_equal(r.data[BIG_LEN - 1], 'B');
    vs_fetch_result_free(&r);
    o.max_bytes = IMG_LEN - 1;
    assert_int_equal(vs_fetch_url(url_of("/img"), &o, &r, &e), VS_ERR_TOO_LARGE);
}

static void test_timeout(void **state) {
    (void)state;
    vs_fetch_opts o = loopback_opts();
    o.timeout_ms = 500;
    vs_fetch_result r;
    vs_error e = {0};
    int64_t t0 = vs_now_ms();
    assert_int_equal(vs_fetch_url(url_of("/slow"), &o, &r, &e), VS_ERR_IO);
    int64_t dt = vs_now_ms() - t0;
    assert_non_null(strstr(e.msg, "timeout"));
    assert_true(dt >= 400);
    if (dt > 1500) fail_msg("timeout took %lld ms", (long long)dt);
}

static void test_bad_urls_and_schemes(void **state) {
    (void)state;
    static const char *bad[] = {"ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://127.0.0.1/", "dict://127.0.0.1:11211/",
                                "not a url", "//127.0.0.1/img", "127.0.0.1/img", "http://", ""};
    vs_fetch_opts o = {.allow_all = 1};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        vs_fetch_result r;
        vs_error e = {0};
        vs_err rc = vs_fetch_url(bad[i], &o, &r, &e);
        if (rc != VS_ERR_INVALID_ARG) fail_msg("'%s' gave %s: %s", bad[i], vs_err_name(rc), e.msg);
    }
    vs_fetch_result r;
    vs_error e = {0};
    assert_int_equal(vs_fetch_url(NULL, &o, &r, &e), VS_ERR_INVALID_ARG);
    vs_fetch_opts bad_list = {.allow_cidrs = "127.0.0.1/40"};
    assert_int_equal(vs_fetch_url(url_of("/img"), &bad_list, &r, &e), VS_ERR_INVALID_ARG);
    assert_non_null(strstr(e.msg, "127.0.0.1/40"));
}

/* A redirect may not switch to another scheme: curl never follows it. */
static void test_redirect_to_other_scheme_refused(void **state) {
    (void)state;
    vs_fetch_opts o = loopback_opts();
    vs_fetch_result r;
    vs_error e = {0};
    assert_int_equal(vs_fetch_url(url_of("/toftp"), &o, &r, &e), VS_ERR_UNSUPPORTED);
    assert_int_equal(vs_fetch_url(url_of("/tofile"), &o, &r, &e), VS_ERR_UNSUPPORTED);
    assert_null(r.data);
}

/* The first connection (127.0.0.1) is allowed, the redirect hop's
 * (127.0.0.2) is not: the hop must be checked on its own. */
static void test_redirect_hop_checked(void **state) {
    (void)state;
    vs_fetch_opts o = loopback_opts(); /* 127.0.0.1/32 only */
    vs_fetch_result r;
    vs_error e = {0};
    int main_before = atomic_load(&g_main.requests), hop_before = atomic_load(&g_hop.requests);
    assert_int_equal(vs_fetch_url(url_of("/hop"), &o, &r, &e), VS_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "address not allowed: 127.0.0.2 (loopback)"));
    assert_int_equal(atomic_load(&g_main.requests), main_before + 1);
    assert_int_equal(atomic_load(&g_hop.requests), hop_before);
    assert_null(r.data);
    if (!g_hop.d) return;
    /* control: with the hop's range allowed the same chain works */
    o.allow_cidrs = "127.0.0.1/32,127.0.0.2/32";
    assert_int_equal(vs_fetch_url(url_of("/hop"), &o, &r, &e), VS_OK);
    assert_int_equal(r.len, IMG_LEN);
    assert_string_equal(r.final_url, g_hop_target);
    assert_int_equal(atomic_load(&g_hop.requests), hop_before + 1);
    vs_fetch_result_free(&r);
}

/* ---- the split transfer API (the crawler's) ---- */

/* What check_head saw. */
typedef struct head_probe {
    int calls;
    size_t n;
    uint8_t first[32];
    const char *answer; /* returned: NULL accepts */
} head_probe;

static const char *probe_head(void *ctx, const uint8_t *p, size_t n) {
    head_probe *h = ctx;
    h->calls++;
    h->n = n;
    memcpy(h->first, p, n < sizeof h->first ? n : sizeof h->first);
    return h->answer;
}

/* One transfer through new / easy / perform / finish / free. */
static vs_err xfer_run(const char *url, const vs_fetch_opts *o, vs_fetch_result *r, vs_error *e, size_t *received) {
    vs_fetch_xfer *x = NULL;
    vs_err rc = vs_fetch_xfer_new(url, o, &x, e);
    if (rc != VS_OK) {
        memset(r, 0, sizeof *r);
        assert_null(x);
        return rc;
    }
    CURLcode res = curl_easy_perform(vs_fetch_xfer_easy(x));
    if (received) *received = vs_fetch_xfer_received(x);
    rc = vs_fetch_xfer_finish(x, (int)res, r, e);
    vs_fetch_xfer_free(x);
    return rc;
}

static void test_xfer_no_follow(void **state) {
    (void)state;
    vs_fetch_opts o = loopback_opts();
    o.no_follow = 1;
    vs_fetch_result r;
    vs_error e = {0};
    int before = atomic_load(&g_main.requests);
    assert_int_equal(xfer_run(url_of("/redirect"), &o, &r, &e, NULL), VS_OK);
    assert_int_equal(atomic_load(&g_main.requests), before + 1); /* not followed */
    assert_int_equal(r.http_status, 302);
    assert_string_equal(r.redirect_url, url_of("/img")); /* the relative Location made absolute */
    assert_non_null(r.data);
    assert_int_equal(r.len, 0);
    vs_fetch_result_free(&r);

    /* the same through vs_fetch_url */
    assert_int_equal(vs_fetch_url(url_of("/redirect"), &o, &r, &e), VS_OK);
    assert_int_equal(r.http_status, 302);
    assert_string_equal(r.redirect_url, url_of("/img"));
    vs_fetch_result_free(&r);

    /* a redirect to a host the policy refuses is only reported, never connected to */
    int hop_before = atomic_load(&g_hop.requests);
    assert_int_equal(xfer_run(url_of("/hop"), &o, &r, &e, NULL), VS_OK);
    assert_int_equal(r.http_status, 302);
    assert_string_equal(r.redirect_url, g_hop_target);
    assert_int_equal(atomic_load(&g_hop.requests), hop_before);
    vs_fetch_result_free(&r);

    /* a loop is one hop at a time */
    assert_int_equal(xfer_run(url_of("/loop"), &o, &r, &e, NULL), VS_OK);
    assert_string_equal(r.redirect_url, url_of("/loop"));
    vs_fetch_result_free(&r);

    /* a 2xx has no redirect_url; errors stay errors */
    assert_int_equal(xfer_run(url_of("/img"), &o, &r, &e, NULL), VS_OK);
    assert_string_equal(r.redirect_url, "");
    assert_int_equal(r.len, IMG_LEN);
    vs_fetch_result_free(&r);
    assert_int_equal(xfer_run(url_of("/404"), &o, &r, &e, NULL), VS_ERR_IO);
    assert_non_null(strstr(e.msg, "HTTP 404"));
    assert_int_equal(r.http_status, 404);
    assert_null(r.data);

    /* without no_follow the redirect_url stays empty */
    o.no_follow = 0;
    assert_int_equal(xfer_run(url_of("/redirect"), &o, &r, &e, NULL), VS_OK);
    assert_string_equal(r.redirect_url, "");
    assert_string_equal(r.final_url, url_of("/img"));
    assert_int_equal(r.len, IMG_LEN);
    vs_fetch_result_free(&r);
}

static void test_xfer_check_head_rejects(void **state) {
    (void)state;
    vs_fetch_opts o = loopback_opts();
    head_probe h = {.answer = "bad magic: not a picture"};
    o.check_head = probe_head;
    o.check_ctx = &h;
    o.check_bytes = 12;
    vs_fetch_result r;
    vs_error e = {0};
    assert_int_equal(xfer_run(url_of("/img"), &o, &r, &e, NULL), VS_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "bad magic: not a picture"));
    assert_non_null(strstr(e.msg, "/img"));
    assert_null(r.data);
    assert_int_equal(h.calls, 1);
    assert_true(h.n >= 12);
    assert_memory_equal(h.first, g_img, 12);

    /* a long body is aborted after the head, not downloaded */
    h = (head_probe){.answer = "no thanks"};
    o.max_bytes = BIG_LEN;
    size_t received = 0;
    assert_int_equal(xfer_run(url_of("/bigchunked"), &o, &r, &e, &received), VS_ERR_UNSUPPORTED);
    assert_int_equal(h.calls, 1);
    if (received >= BIG_LEN / 4) fail_msg("received %zu of %u bytes after the head was rejected", received, BIG_LEN);
    assert_int_equal(vs_fetch_url(url_of("/bigchunked"), &o, &r, &e), VS_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "no thanks"));

    /* accepted: called once, the whole body arrives */
    h = (head_probe){0};
    assert_int_equal(xfer_run(url_of("/img"), &o, &r, &e, &received), VS_OK);
    assert_int_equal(h.calls, 1);
    assert_int_equal(r.len, IMG_LEN);
    assert_int_equal(received, IMG_LEN);
    assert_memory_equal(r.data, g_img, IMG_LEN);
    vs_fetch_result_free(&r);

    /* check_bytes 0 = 16 */
    h = (head_probe){0};
    o.check_bytes = 0;
    assert_int_equal(xfer_run(url_of("/img"), &o, &r, &e, NULL), VS_OK);
    assert_int_equal(h.calls, 1);
    assert_true(h.n >= 16);
    vs_fetch_result_free(&r);

    /* through vs_fetch_url with redirects followed: only the final body is judged */
    h = (head_probe){0};
    assert_int_equal(vs_fetch_url(url_of("/302body"), &o, &r, &e), VS_OK);
    assert_int_equal(h.calls, 1);
    assert_memory_equal(h.first, g_img, 16);
    assert_int_equal(r.len, IMG_LEN);
    vs_fetch_result_free(&r);
}

static void test_xfer_check_head_short_body(void **state) {
    (void)state;
    vs_fetch_opts o = loopback_opts();
    head_probe h = {0};
    o.check_head = probe_head;
    o.check_ctx = &h;
    o.check_bytes = 16;
    vs_fetch_result r;
    vs_error e = {0};
    /* 3 bytes < check_bytes: checked whole, once, at finish */
    assert_int_equal(xfer_run(url_of("/tiny"), &o, &r, &e, NULL), VS_OK);
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.n, 3);
    assert_memory_equal(h.first, "abc", 3);
    assert_int_equal(r.len, 3);
    assert_string_equal((const char *)r.data, "abc");
    vs_fetch_result_free(&r);
    h = (head_probe){.answer = "too short to be an image"};
    assert_int_equal(xfer_run(url_of("/tiny"), &o, &r, &e, NULL), VS_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "too short to be an image"));
    assert_int_equal(h.calls, 1);
    assert_null(r.data);
    assert_int_equal(vs_fetch_url(url_of("/tiny"), &o, &r, &e), VS_ERR_UNSUPPORTED);
    /* an empty body too */
    h = (head_probe){.answer = "empty"};
    assert_int_equal(xfer_run(url_of("/empty"), &o, &r, &e, NULL), VS_ERR_UNSUPPORTED);
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.n, 0);
    h = (head_probe){0};
    assert_int_equal(xfer_run(url_of("/empty"), &o, &r, &e, NULL), VS_OK);
    assert_non_null(r.data);
    assert_int_equal(r.len, 0);
    vs_fetch_result_free(&r);
}

/* The head check is about the body asked for: a redirect or an error page
 * is judged by its status, never by check_head (short or long body). */
static void test_xfer_check_head_not_on_3xx_4xx(void **state) {
    (void)state;
    vs_fetch_opts o = loopback_opts();
    head_probe h = {.answer = "not an image"};
    o.check_head = probe_head;
    o.check_ctx = &h;
    o.check_bytes = 12;
    o.no_follow = 1;
    vs_fetch_result r;
    vs_error e = {0};
    static const char *redirects[] = {"/redirect", "/302body"};
    for (size_t i = 0; i < 2; i++) {
        h.calls = 0;
        vs_err rc = xfer_run(url_of(redirects[i]), &o, &r, &e, NULL);
        if (rc != VS_OK) fail_msg("%s: %s", redirects[i], e.msg);
        assert_int_equal(h.calls, 0);
        assert_int_equal(r.http_status, 302);
        assert_string_equal(r.redirect_url, url_of("/img"));
        vs_fetch_result_free(&r);
    }
    static const char *errors[] = {"/404", "/404body"};
    for (size_t i = 0; i < 2; i++) {
        h.calls = 0;
        assert_int_equal(xfer_run(url_of(errors[i]), &o, &r, &e, NULL), VS_ERR_IO);
        assert_non_null(strstr(e.msg, "HTTP 404"));
        assert_int_equal(r.http_status, 404);
        assert_int_equal(h.calls, 0);
    }
}

/* Several transfers on one multi handle, connections kept between them. */
static void test_xfer_on_multi(void **state) {
    (void)state;
    vs_error e = {0};
    assert_int_equal(vs_fetch_global_init(&e), VS_OK);
    CURLM *m = curl_multi_init();
    assert_non_null(m);
    vs_fetch_opts o = loopback_opts();
    o.reuse_connections = 1;
    o.no_follow = 1;
    const char *paths[] = {"/img", "/redirect", "/404", "/tiny", "/img"};
    enum { N = 5 };
    vs_fetch_xfer *x[N] = {0};
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            assert_int_equal(vs_fetch_xfer_new(url_of(paths[i]), &o, &x[i], &e), VS_OK);
            curl_easy_setopt(vs_fetch_xfer_easy(x[i]), CURLOPT_PRIVATE, (void *)(intptr_t)i);
            assert_int_equal(curl_multi_add_handle(m, vs_fetch_xfer_easy(x[i])), CURLM_OK);
        }
        int running = 1, done = 0;
        int64_t t0 = vs_now_ms();
        while (done < N && vs_now_ms() - t0 < 5000) {
            assert_int_equal(curl_multi_perform(m, &running), CURLM_OK);
            CURLMsg *msg;
            int left;
            while ((msg = curl_multi_info_read(m, &left))) {
                if (msg->msg != CURLMSG_DONE) continue;
                intptr_t i = 0;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&i);
                int res = (int)msg->data.result;
                curl_multi_remove_handle(m, vs_fetch_xfer_easy(x[i]));
                vs_fetch_result r;
                vs_err rc = vs_fetch_xfer_finish(x[i], res, &r, &e);
                if (i == 0 || i == 4) {
                    assert_int_equal(rc, VS_OK);
                    assert_int_equal(r.len, IMG_LEN);
                    assert_memory_equal(r.data, g_img, IMG_LEN);
                } else if (i == 1) {
                    assert_int_equal(rc, VS_OK);
                    assert_string_equal(r.redirect_url, url_of("/img"));
                } else if (i == 2) {
                    assert_int_equal(rc, VS_ERR_IO);
                } else {
                    assert_int_equal(rc, VS_OK);
                    assert_string_equal((const char *)r.data, "abc");
                }
                vs_fetch_result_free(&r);
                vs_fetch_xfer_free(x[i]);
                x[i] = NULL;
                done++;
            }
            if (done < N) curl_multi_poll(m, NULL, 0, 100, NULL);
        }
        assert_int_equal(done, N);
    }
    curl_multi_cleanup(m);
}

static void test_xfer_bad_args_and_unfinished(void **state) {
    (void)state;
    vs_fetch_xfer *x = (vs_fetch_xfer *)&x; /* must be reset */
    vs_error e = {0};
    vs_fetch_opts o = loopback_opts();
    assert_int_equal(vs_fetch_xfer_new("ftp://127.0.0.1/x", &o, &x, &e), VS_ERR_INVALID_ARG);
    assert_null(x);
    x = (vs_fetch_xfer *)&x;
    assert_int_equal(vs_fetch_xfer_new(NULL, &o, &x, &e), VS_ERR_INVALID_ARG);
    assert_null(x);
    o.allow_cidrs = "127.0.0.1/99";
    assert_int_equal(vs_fetch_xfer_new(url_of("/img"), &o, &x, &e), VS_ERR_INVALID_ARG);
    assert_null(x);
    vs_fetch_xfer_free(NULL);
    /* freed without being run, and after being run without finish: no leak */
    o = loopback_opts();
    assert_int_equal(vs_fetch_xfer_new(url_of("/img"), &o, &x, &e), VS_OK);
    vs_fetch_xfer_free(x);
    assert_int_equal(vs_fetch_xfer_new(url_of("/img"), &o, &x, &e), VS_OK);
    assert_int_equal(curl_easy_perform(vs_fetch_xfer_easy(x)), CURLE_OK);
    assert_int_equal(vs_fetch_xfer_received(x), IMG_LEN);
    vs_fetch_xfer_free(x);
    /* the address policy holds for xfers too */
    o.allow_cidrs = NULL;
    vs_fetch_result r;
    int before = atomic_load(&g_main.requests);
    assert_int_equal(xfer_run(url_of("/img"), &o, &r, &e, NULL), VS_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "address not allowed: 127.0.0.1 (loopback)"));
    assert_int_equal(atomic_load(&g_main.requests), before);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_policy_table),
        cmocka_unit_test(test_addr_allow_cidrs),
        cmocka_unit_test(test_default_opts_refuse_loopback),
        cmocka_unit_test(test_name_resolving_to_loopback_refused),
        cmocka_unit_test(test_fetch_img_exact),
        cmocka_unit_test(test_redirect_followed),
        cmocka_unit_test(test_redirect_loop_fails),
        cmocka_unit_test(test_http_404),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_bad_urls_and_schemes),
        cmocka_unit_test(test_redirect_to_other_scheme_refused),
        cmocka_unit_test(test_redirect_hop_checked),
        cmocka_unit_test(test_xfer_no_follow),
        cmocka_unit_test(test_xfer_check_head_rejects),
        cmocka_unit_test(test_xfer_check_head_short_body),
        cmocka_unit_test(test_xfer_check_head_not_on_3xx_4xx),
        cmocka_unit_test(test_xfer_on_multi),
        cmocka_unit_test(test_xfer_bad_args_and_unfinished),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
