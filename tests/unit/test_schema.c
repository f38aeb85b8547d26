/* test_schema.c - the request schemas (vs_schema_check), the route table's
 * 405/404 decisions (vs_router_lookup) and Content-Type matching: pure
 * functions, checked without a server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vs_catalog.h"
#include "vs_http.h"
#include "vs_router.h"
#include "vs_schema.h"

/* Checks text against s; returns the message ("" when it conforms). */
static const char *check(const vs_schema *s, const char *text) {
    static char msg[512];
    json_error_t je;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &je);
    assert_non_null(j);
    int rc = vs_schema_check(s, j, msg, sizeof msg);
    json_decref(j);
    assert_int_equal(rc, msg[0] ? -1 : 0);
    return msg;
}

static void test_valid_bodies_pass(void **state) {
    (void)state;
    assert_string_equal(check(&vs_schema_search, "{\"face_id\":\"x\",\"top_k\":5,\"threshold\":0.5,\"faces\":\"all\","
                                                 "\"filters\":{\"site\":\"a\",\"min_quality\":0.4}}"), "");
    assert_string_equal(check(&vs_schema_ingest_item, "{\"bucket\":\"raw-images\",\"key\":\"t/x\",\"site\":\"s\"}"), "");
    assert_string_equal(check(&vs_schema_crawl, "{\"url\":\"http://a/\",\"depth\":null,\"delay_s\":0.5}"), "");
    assert_string_equal(check(&vs_schema_enroll, "{\"face_ids\":[\"a\",\"b\"]}"), "");
    assert_string_equal(check(&vs_schema_reindex, "{}"), "");
}

static void test_wrong_types_name_the_field(void **state) {
    (void)state;
    assert_string_equal(check(&vs_schema_search, "{\"face_id\":\"x\",\"filters\":{\"site\":5}}"),
                        "filters.site: expected a string, got an integer");
    assert_string_equal(check(&vs_schema_search, "{\"filters\":{\"min_quality\":\"x\"}}"),
                        "filters.min_quality: expected a number, got a string");
    assert_string_equal(check(&vs_schema_ingest_item, "{\"image_b64\":12}"), "image_b64: expected a string, got an integer");
    assert_string_equal(check(&vs_schema_search, "{\"top_k\":2.5}"), "top_k: expected an integer, got a number with a fraction");
    assert_string_equal(check(&vs_schema_enroll, "{\"face_ids\":[\"a\",3]}"), "face_ids[1]: expected a string, got an integer");
    assert_string_equal(check(&vs_schema_search, "{\"filters\":[]}"), "filters: expected an object, got an array");
    assert_string_equal(check(&vs_schema_erase, "{\"dry_run\":\"yes\"}"), "dry_run: expected a boolean, got a string");
}

static void test_unknown_fields_enums_and_ranges(void **state) {
    (void)state;
    assert_string_equal(check(&vs_schema_search, "{\"faces\":\"some\"}"), "faces: expected one of \"best\", \"all\", got \"some\"");
    assert_string_equal(check(&vs_schema_ingest_item, "{\"bucket\":\"face-crops\",\"key\":\"t/x\"}"),
                        "bucket: expected one of \"raw-images\", got \"face-crops\"");
    assert_true(strncmp(check(&vs_schema_search, "{\"topk\":1}"), "topk: unknown field (search takes top_k,", 40) == 0);
    assert_true(strncmp(check(&vs_schema_search, "{\"filters\":{\"colour\":1}}"), "filters.colour: unknown field", 29) == 0);
    assert_string_equal(check(&vs_schema_search, "{\"top_k\":0}"), "top_k: must be from 1 to 1000, got 0");
    assert_string_equal(check(&vs_schema_erase, "{\"threshold\":0.1}"), "threshold: must be from 0.3 to 1, got 0.1");
    assert_string_equal(check(&vs_schema_identity_create, "{}"), "name: required (a string)");
    assert_string_equal(check(&vs_schema_identity_create, "{\"name\":\"\"}"), "name: must be 1 to 200 bytes long, got 0");
    assert_string_equal(check(&vs_schema_ingest_batch, "{\"items\":[]}"), "items: must hold 1 to 1000 items, got 0");
    assert_string_equal(check(&vs_schema_ingest_item, "{\"site\":\"a\\u0000b\"}"), "site: must not contain a NUL character");
}

static void test_exclusive_sources(void **state) {
    (void)state;
    assert_string_equal(check(&vs_schema_ingest_item, "{\"url\":\"http://a/\",\"image_b64\":\"AA==\"}"),
                        "image_b64 and url both given: give exactly one of image_b64, url, bucket");
    assert_string_equal(check(&vs_schema_search, "{\"vector\":[1],\"face_id\":\"x\"}"),
                        "vector and face_id both given: give exactly one of image_b64, vector, face_id");
    assert_string_equal(check(&vs_schema_search, "{\"image_b64\":null,\"face_id\":\"x\"}"),
                        "image_b64: expected a string, got null");
}

static void test_not_an_object(void **state) {
    (void)state;
    char msg[128];
    json_t *a = json_array();
    assert_int_equal(vs_schema_check(&vs_schema_search, a, msg, sizeof msg), -1);
    assert_string_equal(msg, "expected an object, got an array");
    assert_int_equal(vs_schema_check(&vs_schema_search, a, NULL, 0), -1);
    json_decref(a);
}

static void test_router_405_and_404(void **state) {
    (void)state;
    char id[256], allow[128];
    assert_int_equal(vs_router_lookup("GET", "/api/v1/faces/abc", id, allow, sizeof id), 1);
    assert_string_equal(id, "abc");
    assert_int_equal(vs_router_lookup("PUT", "/api/v1/faces/abc", id, allow, sizeof allow), 0);
    assert_string_equal(allow, "GET, DELETE");
    assert_int_equal(vs_router_lookup("GET", "/api/v1/search", id, allow, sizeof allow), 0);
    assert_string_equal(allow, "POST");
    /* a fixed path wins over an {id}: identify is not an identity id */
    assert_int_equal(vs_router_lookup("DELETE", "/api/v1/identities/identify", id, allow, sizeof allow), 0);
    assert_string_equal(allow, "POST");
    assert_int_equal(vs_router_lookup("POST", "/api/v1/identities/x1/enroll", id, allow, sizeof id), 1);
    assert_string_equal(id, "x1");
    /* the one path with two ids: both come back, as "id/id2" */
    assert_int_equal(vs_router_lookup("DELETE", "/api/v1/identities/x1/samples/s2", id, allow, sizeof id), 1);
    assert_string_equal(id, "x1/s2");
    assert_int_equal(vs_router_lookup("GET", "/api/v1/identities/x1/samples/s2", id, allow, sizeof allow), 0);
    assert_string_equal(allow, "DELETE");
    assert_int_equal(vs_router_lookup("DELETE", "/api/v1/identities/x1/samples/", id, allow, sizeof allow), -1);
    assert_int_equal(vs_router_lookup("DELETE", "/api/v1/identities//samples/s2", id, allow, sizeof allow), -1);
    assert_int_equal(vs_router_lookup("DELETE", "/api/v1/identities/x1/samples/s2/x", id, allow, sizeof allow), -1);
    assert_int_equal(vs_router_lookup("GET", "/api/v1/identities/x1", id, allow, sizeof id), 1);
    assert_int_equal(vs_router_lookup("GET", "/api/v1/stats", id, allow, sizeof id), 1);
    assert_int_equal(vs_router_lookup("GET", "/api/v1/faces", id, allow, sizeof id), 1);
    assert_int_equal(vs_router_lookup("GET", "/api/v1/nothing", id, allow, sizeof allow), -1);
    assert_int_equal(vs_router_lookup("GET", "/api/v1/faces/", id, allow, sizeof allow), -1);
    assert_int_equal(vs_router_lookup("GET", "/api/v1/faces/a/b", id, allow, sizeof allow), -1);
    char sha[65];
    memset(sha, 'a', 64);
    sha[64] = '\0';
    char p[128];
    snprintf(p, sizeof p, "/api/v1/images/%s", sha);
    assert_int_equal(vs_router_lookup("DELETE", p, id, allow, sizeof id), 1);
    assert_string_equal(id, sha);
}

static void test_media_types(void **state) {
    (void)state;
    assert_true(vs_media_type_is("application/json", "application/json"));
    assert_true(vs_media_type_is("Application/JSON; charset=utf-8", "application/json"));
    assert_false(vs_media_type_is("application/jsonx", "application/json"));
    assert_false(vs_media_type_is("text/plain", "application/json"));
    assert_false(vs_media_type_is(NULL, "application/json"));
    assert_true(vs_media_type_is("image/png", "image/"));
    assert_false(vs_media_type_is("image/", "image/"));
    assert_true(vs_media_type_is("multipart/form-data; boundary=x", "multipart/form-data"));
}

/* "." and ".." are refused everywhere; a new name starts with a letter or
 * digit, while older names that do not keep working. */
static void test_tenant_names(void **state) {
    (void)state;
    static const char *bad[] = {".", "..", "a/b", "a\x01b", "", "a b", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(vs_tenant_name_ok(bad[i]));
        assert_false(vs_tenant_new_name_ok(bad[i]));
    }
    char longest[65];
    memset(longest, 'x', 64);
    longest[64] = '\0';
    assert_false(vs_tenant_new_name_ok(longest));
    longest[63] = '\0';
    assert_true(vs_tenant_new_name_ok(longest));
    assert_true(vs_tenant_name_ok(".old") && !vs_tenant_new_name_ok(".old"));
    assert_true(vs_tenant_name_ok("-old") && !vs_tenant_new_name_ok("-old"));
    assert_true(vs_tenant_new_name_ok("beta.co-2_x") && vs_tenant_new_name_ok("a..b"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_bodies_pass),     cmocka_unit_test(test_wrong_types_name_the_field),
        cmocka_unit_test(test_unknown_fields_enums_and_ranges), cmocka_unit_test(test_exclusive_sources),
        cmocka_unit_test(test_not_an_object),         cmocka_unit_test(test_router_405_and_404),
        cmocka_unit_test(test_media_types),           cmocka_unit_test(test_tenant_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
