/* test_sigv4.c - the SigV4 signing maths against the examples AWS publishes
 * in the S3 API reference ("Authenticating Requests: Using Query Parameters"
 * and "Signature Calculations for the Authorization Header": GET object,
 * PUT object, GET bucket lifecycle, GET bucket list) and the signing-key
 * example of the AWS general reference, intermediate strings included, so a
 * failure says which step went wrong. Then URI encoding and bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_hash.h"
#include "vs_sigv4.h"

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define DATE "20130524T000000Z"
#define HOST "examplebucket.s3.amazonaws.com"
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static const vs_sigv4_creds g_creds = {AK, SK, "us-east-1", "s3"};

/* Checks the canonical request, the hash line of the string to sign and the
 * signature of r, as the AWS example documents them. */
static void check_request(const vs_sigv4_request *r, const char *want_creq, const char *want_sh,
                          const char *want_sts_hash, const char *want_sig) {
    char sh[256];
    char *creq = vs_sigv4_canonical_request(r, sh, sizeof sh);
    assert_non_null(creq);
    assert_string_equal(creq, want_creq);
    assert_string_equal(sh, want_sh);
    char *sts = vs_sigv4_string_to_sign(&g_creds, DATE, creq);
    assert_non_null(sts);
    char want_sts[256];
    snprintf(want_sts, sizeof want_sts, "AWS4-HMAC-SHA256\n" DATE "\n20130524/us-east-1/s3/aws4_request\n%s",
             want_sts_hash);
    assert_string_equal(sts, want_sts);
    char sig[VS_SIGV4_SIG_HEX], sh2[256];
    assert_int_equal(vs_sigv4_sign(&g_creds, DATE, r, sig, sh2, sizeof sh2), 0);
    assert_string_equal(sig, want_sig);
    assert_string_equal(sh2, want_sh);
    vs_free(creq);
    vs_free(sts);
}

/* The presigned URL example: GET /test.txt for 86400 s. */
static void test_presigned_url_example(void **state) {
    (void)state;
    const vs_sigv4_kv q[] = {
        {"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
        {"X-Amz-Credential", AK "/20130524/us-east-1/s3/aws4_request"},
        {"X-Amz-Date", DATE},
        {"X-Amz-Expires", "86400"},
        {"X-Amz-SignedHeaders", "host"},
    };
    const vs_sigv4_kv h[] = {{"host", HOST}};
    const vs_sigv4_request r = {"GET", "/test.txt", q, 5, h, 1, "UNSIGNED-PAYLOAD"};
    check_request(&r,
                  "GET\n/test.txt\n"
                  "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%"
                  "2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\n"
                  "host:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD",
                  "host", "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04",
                  "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    /* the one-call form gives the documented URL query */
    char *qs = vs_sigv4_presign_query(&g_creds, DATE, 86400, HOST, "GET", "/test.txt");
    assert_non_null(qs);
    assert_string_equal(qs, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
                            "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
                            "X-Amz-SignedHeaders=host&X-Amz-Signature="
                            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    vs_free(qs);
    /* expiry outside 1 s .. 7 days, a bad date or no host: no URL */
    assert_null(vs_sigv4_presign_query(&g_creds, DATE, 0, HOST, "GET", "/test.txt"));
    assert_null(vs_sigv4_presign_query(&g_creds, DATE, VS_SIGV4_MAX_EXPIRES + 1, HOST, "GET", "/test.txt"));
    assert_null(vs_sigv4_presign_query(&g_creds, "2013-05-24T00:00:00Z", 60, HOST, "GET", "/test.txt"));
    assert_null(vs_sigv4_presign_query(&g_creds, DATE, 60, "", "GET", "/test.txt"));
    qs = vs_sigv4_presign_query(&g_creds, DATE, VS_SIGV4_MAX_EXPIRES, HOST, "GET", "/test.txt");
    assert_non_null(qs);
    vs_free(qs);
}

/* Header signing, GET object with a Range header. */
static void test_get_object_example(void **state) {
    (void)state;
    const vs_sigv4_kv h[] = {
        {"Host", HOST},
        {"Range", "bytes=0-9"},
        {"x-amz-content-sha256", EMPTY_SHA},
        {"x-amz-date", DATE},
    };
    const vs_sigv4_request r = {"GET", "/test.txt", NULL, 0, h, 4, EMPTY_SHA};
    check_request(&r,
                  "GET\n/test.txt\n\n"
                  "host:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                  "x-amz-content-sha256:" EMPTY_SHA "\nx-amz-date:20130524T000000Z\n\n"
                  "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA,
                  "host;range;x-amz-content-sha256;x-amz-date",
                  "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
                  "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    char auth[512];
    assert_int_equal(vs_sigv4_authorization(&g_creds, DATE, &r, auth, sizeof auth), 0);
    assert_string_equal(auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                              "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                              "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    assert_int_equal(vs_sigv4_authorization(&g_creds, DATE, &r, auth, 40), -1); /* too small: nothing */
    assert_string_equal(auth, "");
}

/* Header signing, PUT object "Welcome to Amazon S3." to /test$file.text:
 * '$' is percent-encoded in the canonical URI, and the headers arrive in
 * no particular order and case. */
static void test_put_object_example(void **state) {
    (void)state;
    const char *body = "Welcome to Amazon S3.";
    char hash[VS_SHA256_HEX];
    vs_sha256_hex(body, strlen(body), hash);
    assert_string_equal(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    const vs_sigv4_kv h[] = {
        {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
        {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
        {"Host", HOST},
        {"x-amz-date", DATE},
        {"X-Amz-Content-Sha256", hash},
    };
    const vs_sigv4_request r = {"PUT", "/test$file.text", NULL, 0, h, 5, hash};
    check_request(&r,
                  "PUT\n/test%24file.text\n\n"
                  "date:Fri, 24 May 2013 00:00:00 GMT\nhost:examplebucket.s3.amazonaws.com\n"
                  "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
                  "x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
                  "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
                  "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
                  "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                  "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
                  "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

/* Header signing, GET bucket lifecycle: a query parameter without a value
 * is "lifecycle=" in the canonical query. */
static void test_get_lifecycle_example(void **state) {
    (void)state;
    const vs_sigv4_kv q[] = {{"lifecycle", ""}};
    const vs_sigv4_kv h[] = {{"host", HOST}, {"x-amz-content-sha256", EMPTY_SHA}, {"x-amz-date", DATE}};
    const vs_sigv4_request r = {"GET", "/", q, 1, h, 3, EMPTY_SHA};
    check_request(&r,
                  "GET\n/\nlifecycle=\nhost:examplebucket.s3.amazonaws.com\nx-amz-content-sha256:" EMPTY_SHA
                  "\nx-amz-date:20130524T000000Z\n\nhost;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA,
                  "host;x-amz-content-sha256;x-amz-date",
                  "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
                  "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

/* Header signing, GET bucket (list objects) with query parameters given
 * out of order: they are sorted by name. */
static void test_list_objects_example(void **state) {
    (void)state;
    const vs_sigv4_kv q[] = {{"prefix", "J"}, {"max-keys", "2"}};
    const vs_sigv4_kv h[] = {{"host", HOST}, {"x-amz-content-sha256", EMPTY_SHA}, {"x-amz-date", DATE}};
    const vs_sigv4_request r = {"GET", "/", q, 2, h, 3, EMPTY_SHA};
    check_request(&r,
                  "GET\n/\nmax-keys=2&prefix=J\nhost:examplebucket.s3.amazonaws.com\nx-amz-content-sha256:" EMPTY_SHA
                  "\nx-amz-date:20130524T000000Z\n\nhost;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA,
                  "host;x-amz-content-sha256;x-amz-date",
                  "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
                  "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

/* The signing-key derivation example of the AWS general reference (IAM,
 * 2012-02-15, its own example secret). */
static void test_signing_key_example(void **state) {
    (void)state;
    const vs_sigv4_creds c = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "iam"};
    uint8_t key[32];
    char hex[65];
    vs_sigv4_signing_key(&c, "20120215", key);
    vs_hex(key, sizeof key, hex);
    assert_string_equal(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

/* URI encoding: unreserved kept, '/' kept or not, everything else %XX in
 * upper case (UTF-8 bytes one by one), and no cut output. */
static void test_uri_encode(void **state) {
    (void)state;
    char out[128];
    assert_int_equal(vs_sigv4_uri_encode("AZaz09-._~", 1, out, sizeof out), 10);
    assert_string_equal(out, "AZaz09-._~");
    vs_sigv4_uri_encode("a/b c+d=e&f%g", 0, out, sizeof out);
    assert_string_equal(out, "a/b%20c%2Bd%3De%26f%25g");
    vs_sigv4_uri_encode("a/b", 1, out, sizeof out);
    assert_string_equal(out, "a%2Fb");
    vs_sigv4_uri_encode("\xc3\xa9*", 1, out, sizeof out);
    assert_string_equal(out, "%C3%A9%2A");
    assert_int_equal(vs_sigv4_uri_encode("a b", 1, NULL, 0), 5);
    assert_int_equal(vs_sigv4_uri_encode("a b", 1, out, 5), 5); /* needs 6 with the NUL */
    assert_string_equal(out, "");
    /* a continuation token (base64) survives a round trip through the query */
    const vs_sigv4_kv q[] = {{"list-type", "2"}, {"continuation-token", "1+a/b=="}, {"prefix", "t/"}};
    char *qs = vs_sigv4_canonical_query(q, 3);
    assert_non_null(qs);
    assert_string_equal(qs, "continuation-token=1%2Ba%2Fb%3D%3D&list-type=2&prefix=t%2F");
    vs_free(qs);
    qs = vs_sigv4_canonical_query(NULL, 0);
    assert_non_null(qs);
    assert_string_equal(qs, "");
    vs_free(qs);
}

/* Header values are trimmed and folded; CR/LF, a missing host, repeated
 * names and malformed dates are refused rather than signed. */
static void test_bad_input(void **state) {
    (void)state;
    char sh[64], sig[VS_SIGV4_SIG_HEX];
    const vs_sigv4_kv folded[] = {{"host", HOST}, {"X-Custom", "  a   b \t c  "}};
    vs_sigv4_request r = {"GET", "/k", NULL, 0, folded, 2, EMPTY_SHA};
    char *creq = vs_sigv4_canonical_request(&r, sh, sizeof sh);
    assert_non_null(creq);
    assert_non_null(strstr(creq, "\nx-custom:a b c\n"));
    vs_free(creq);
    const vs_sigv4_kv crlf[] = {{"host", HOST}, {"x-a", "v\r\nx-b: injected"}};
    r.headers = crlf;
    assert_null(vs_sigv4_canonical_request(&r, sh, sizeof sh));
    assert_int_equal(vs_sigv4_sign(&g_creds, DATE, &r, sig, sh, sizeof sh), -1);
    const vs_sigv4_kv nohost[] = {{"x-amz-date", DATE}};
    r.headers = nohost;
    r.n_headers = 1;
    assert_null(vs_sigv4_canonical_request(&r, sh, sizeof sh));
    const vs_sigv4_kv twice[] = {{"host", HOST}, {"Host", HOST}};
    r.headers = twice;
    r.n_headers = 2;
    assert_null(vs_sigv4_canonical_request(&r, sh, sizeof sh));
    const vs_sigv4_kv badname[] = {{"host", HOST}, {"x a", "v"}};
    r.headers = badname;
    assert_null(vs_sigv4_canonical_request(&r, sh, sizeof sh));
    const vs_sigv4_kv ok[] = {{"host", HOST}};
    r.headers = ok;
    r.n_headers = 1;
    assert_null(vs_sigv4_canonical_request(&r, sh, 3)); /* "host" does not fit */
    assert_int_equal(vs_sigv4_sign(&g_creds, "20130524", &r, sig, sh, sizeof sh), -1);
    assert_int_equal(vs_sigv4_sign(&g_creds, "20130524T000000", &r, sig, sh, sizeof sh), -1);
    const vs_sigv4_creds slash = {"AK/X", SK, "us-east-1", "s3"};
    assert_int_equal(vs_sigv4_sign(&slash, DATE, &r, sig, sh, sizeof sh), -1);
    assert_int_equal(vs_sigv4_sign(&g_creds, DATE, &r, sig, sh, sizeof sh), 0);
    /* the path without a leading '/' still canonicalises to an absolute one */
    r.path = "test.txt";
    creq = vs_sigv4_canonical_request(&r, sh, sizeof sh);
    assert_non_null(creq);
    assert_memory_equal(creq, "GET\n/test.txt\n", 14);
    vs_free(creq);
}

/* X-Amz-Date formatting from unix seconds. */
static void test_amz_date(void **state) {
    (void)state;
    char d[VS_SIGV4_DATE];
    vs_sigv4_amz_date(1369353600, d);
    assert_string_equal(d, DATE);
    vs_sigv4_amz_date(0, d);
    assert_string_equal(d, "19700101T000000Z");
    vs_sigv4_amz_date(1700000000 + 59, d); /* 22:13:20 + 59 s */
    assert_string_equal(d, "20231114T221419Z");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presigned_url_example), cmocka_unit_test(test_get_object_example),
        cmocka_unit_test(test_put_object_example),    cmocka_unit_test(test_get_lifecycle_example),
        cmocka_unit_test(test_list_objects_example),  cmocka_unit_test(test_signing_key_example),
        cmocka_unit_test(test_uri_encode),            cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_amz_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
