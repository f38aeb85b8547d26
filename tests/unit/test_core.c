/* test_core.c - vs_err formatting and the allocation wrapper's overflow and
 * fault-injection behaviour that every other module's tests rely on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "vs_alloc.h"
#include "vs_buf.h"
#include "vs_err.h"
#include "vs_strset.h"

static void test_fail_formats_and_returns_code(void **state) {
    (void)state;
    vs_error e;
    vs_error_clear(&e);
    vs_err rc = vs_fail(&e, VS_ERR_CORRUPT, "%s: bad %s at %d", "a.jpg", "marker", 7);
    assert_int_equal(rc, VS_ERR_CORRUPT);
    assert_int_equal(e.code, VS_ERR_CORRUPT);
    assert_string_equal(e.msg, "a.jpg: bad marker at 7");
    assert_int_equal(vs_fail(NULL, VS_ERR_IO, "x"), VS_ERR_IO);
    assert_string_equal(vs_err_name(VS_ERR_TOO_LARGE), "too_large");
}

static void test_calloc_overflow_is_refused(void **state) {
    (void)state;
    assert_null(vs_calloc(SIZE_MAX / 2, 4));
    size_t out;
    assert_false(vs_mul_size(SIZE_MAX / 3, 4, &out));
    assert_true(vs_mul_size(1000, 1000, &out));
    assert_int_equal(out, 1000000);
}

static void test_fault_injection(void **state) {
    (void)state;
    vs_alloc_fail_after(2);
    void *a = vs_malloc(8), *b = vs_malloc(8), *c = vs_malloc(8);
    vs_alloc_fail_after(-1);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    vs_free(a);
    vs_free(b);
    void *d = vs_malloc(8);
    assert_non_null(d);
    vs_free(d);
}


/* vs_buf: NUL after the bytes, growth, the limit (exact, never exceeded,
 * nothing changed on refusal), out of memory leaves the buffer intact. */
static void test_buf(void **state) {
    (void)state;
    vs_buf b = {.limit = 10000};
    assert_int_equal(vs_buf_reserve(&b, 0), VS_OK);
    assert_string_equal((char *)b.data, "");
    for (int i = 0; i < 1000; i++) assert_int_equal(vs_buf_append(&b, "0123456789", 10), VS_OK);
    assert_int_equal(b.len, 10000);
    assert_true(b.cap <= 10001);
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(vs_buf_append(&b, "x", 1), VS_ERR_TOO_LARGE);
    assert_int_equal(b.len, 10000);
    assert_int_equal(memcmp(b.data + 9990, "0123456789", 10), 0);
    vs_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.limit, 10000); /* kept for reuse */
    vs_buf u = {0};
    assert_int_equal(vs_buf_append(&u, "abc", 3), VS_OK);
    vs_alloc_fail_after(0);
    char big[8192] = {0};
    assert_int_equal(vs_buf_append(&u, big, sizeof big), VS_ERR_NOMEM);
    vs_alloc_fail_after(-1);
    assert_int_equal(u.len, 3);
    assert_string_equal((char *)u.data, "abc");
    /* the curl callback: a refused chunk aborts (returns 0) with the reason */
    vs_buf_sink sk = {.buf.limit = 5};
    assert_int_equal(vs_buf_curl_write("hello", 1, 5, &sk), 5);
    assert_int_equal(vs_buf_curl_write("!", 1, 1, &sk), 0);
    assert_int_equal(sk.rc, VS_ERR_TOO_LARGE);
    vs_buf_free(&sk.buf);
    /* clear keeps the memory for a retry; take hands the bytes over */
    uint8_t *keep = u.data;
    vs_buf_clear(&u);
    assert_int_equal(u.len, 0);
    assert_string_equal((char *)u.data, "");
    assert_ptr_equal(u.data, keep);
    assert_int_equal(vs_buf_append(&u, "xyz", 3), VS_OK);
    size_t n = 0;
    uint8_t *t = vs_buf_take(&u, &n);
    assert_int_equal(n, 3);
    assert_string_equal((char *)t, "xyz");
    assert_null(u.data);
    assert_int_equal(u.len, 0);
    vs_free(t);
    vs_buf e = {.limit = 7};
    t = vs_buf_take(&e, &n); /* nothing received: still "" */
    assert_non_null(t);
    assert_int_equal(n, 0);
    assert_string_equal((char *)t, "");
    assert_int_equal(e.limit, 7);
    vs_free(t);
    vs_alloc_fail_after(0);
    assert_null(vs_buf_take(&e, &n));
    vs_alloc_fail_after(-1);
    vs_buf_free(&u);
}

/* vs_strset: add/has, duplicates, growth past many entries. */
static void test_strset(void **state) {
    (void)state;
    vs_strset s = {0};
    assert_false(vs_strset_has(&s, "a"));
    char k[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "http://h/%d", i);
        assert_int_equal(vs_strset_add(&s, k), 1);
    }
    assert_int_equal(vs_strset_add(&s, "http://h/42"), 0);
    assert_true(vs_strset_has(&s, "http://h/4999"));
    assert_false(vs_strset_has(&s, "http://h/5000"));
    assert_int_equal(s.n, 5000);
    vs_alloc_fail_after(0);
    assert_int_equal(vs_strset_add(&s, "new"), -1);
    vs_alloc_fail_after(-1);
    assert_false(vs_strset_has(&s, "new"));
    vs_strset_free(&s);
    assert_int_equal(s.n, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_formats_and_returns_code),
        cmocka_unit_test(test_calloc_overflow_is_refused),
        cmocka_unit_test(test_fault_injection),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_strset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
