/*
 * The byte buffer: empty adds, the bound, consume. The ASan+UBSan build of
 * this test is what catches a NULL handed to memcpy.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

/* Another buffer's empty contents (NULL, 0) added: nothing, no UB. */
static void
test_add_empty(void **state)
{
	struct buf a = BUF_INIT, b = BUF_INIT;

	(void)state;
	assert_int_equal(buf_add(&a, b.buf, b.len), 0);
	assert_int_equal(a.len, 0);
	assert_string_equal(buf_str(&a), "");
	assert_int_equal(buf_adds(&a, "x"), 0);
	assert_int_equal(buf_add(&a, b.buf, b.len), 0);
	assert_string_equal(buf_str(&a), "x");
	buf_release(&a);
}

/* An add past max fails and leaves the buffer as it was. */
static void
test_bound(void **state)
{
	struct buf a = BUF_INIT;

	(void)state;
	a.max = 4;
	assert_int_equal(buf_adds(&a, "abc"), 0);
	assert_int_equal(buf_adds(&a, "de"), -1);
	assert_string_equal(buf_str(&a), "abc");
	assert_int_equal(buf_addch(&a, 'd'), 0);
	assert_string_equal(buf_str(&a), "abcd");
	buf_release(&a);
}

static void
test_consume(void **state)
{
	struct buf a = BUF_INIT;

	(void)state;
	assert_int_equal(buf_adds(&a, "line one\nline two"), 0);
	buf_consume(&a, strlen("line one\n"));
	assert_string_equal(buf_str(&a), "line two");
	buf_consume(&a, a.len);
	assert_int_equal(a.len, 0);
	assert_string_equal(buf_str(&a), "");
	buf_release(&a);
}

static void
test_one_line(void **state)
{
	struct buf a = BUF_INIT;

	(void)state;
	buf_one_line(&a);
	assert_string_equal(buf_str(&a), "");
	assert_int_equal(buf_adds(&a, "printf: I/O error\n\ncannot write\n"),
			 0);
	buf_one_line(&a);
	assert_string_equal(buf_str(&a), "printf: I/O error; cannot write");
	assert_int_equal(a.len, strlen(buf_str(&a)));
	assert_int_equal(buf_adds(&a, "."), 0);
	assert_string_equal(buf_str(&a), "printf: I/O error; cannot write.");
	buf_reset(&a);
	assert_int_equal(buf_adds(&a, "\n\n"), 0);
	buf_one_line(&a);
	assert_string_equal(buf_str(&a), "");
	assert_int_equal(a.len, 0);
	buf_release(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_empty),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_consume),
		cmocka_unit_test(test_one_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
