/* test_core.c - vs_err formatting and the allocation wrapper's overflow and
 * fault-injection behaviour that every other module's tests rely on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vs_alloc.h"
#include "vs_err.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_formats_and_returns_code),
        cmocka_unit_test(test_calloc_overflow_is_refused),
        cmocka_unit_test(test_fault_injection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
