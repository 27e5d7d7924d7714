/*
 * The JSON writer and reader: objects byte for byte, nesting, every kind
 * of value, strings escaped so that nothing breaks a line or reaches a
 * terminal raw, and what the writer writes the reader (json-c) reads back.
 */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "json.h"

static char *
quoted(const char *s)
{
	struct buf b = BUF_INIT;

	json_quote(&b, s);
	return buf_detach(&b, NULL);
}

static void
test_object_layout(void **state)
{
	struct buf b = BUF_INIT;
	struct json_obj o, child, grandchild;

	(void)state;
	json_obj_begin(&o, &b);
	json_obj_end(&o);
	assert_string_equal(buf_str(&b), "{}");

	buf_reset(&b);
	json_obj_begin(&o, &b);
	json_obj_str(&o, "s", "x");
	json_obj_str(&o, "none", NULL);
	json_obj_int(&o, "neg", -42);
	json_obj_uint(&o, "big", 18446744073709551615ULL);
	json_obj_bool(&o, "yes", 7);
	json_obj_bool(&o, "no", 0);
	json_obj_null(&o, "n");
	json_obj_double(&o, "d", 0.25);
	json_obj_double(&o, "nan", NAN);
	json_obj_double(&o, "inf", -INFINITY);
	json_obj_child(&o, "child", &child);
	json_obj_int(&child, "a", 1);
	json_obj_child(&child, "empty", &grandchild);
	json_obj_end(&grandchild);
	json_obj_end(&child);
	/* The outer object goes on after its child. */
	json_obj_str(&o, "after", "y");
	json_obj_end(&o);
	assert_string_equal(
	    buf_str(&b),
	    "{\"s\": \"x\", \"none\": null, \"neg\": -42, \"big\": "
	    "18446744073709551615, \"yes\": true, \"no\": false, \"n\": null, "
	    "\"d\": 0.250, \"nan\": null, \"inf\": null, \"child\": {\"a\": 1, "
	    "\"empty\": {}}, \"after\": \"y\"}");
	buf_release(&b);
}

static void
test_nested_and_read_back(void **state)
{
	struct buf b = BUF_INIT;
	struct json_obj o, c;
	struct json_doc *d;

	(void)state;
	json_obj_begin(&o, &b);
	json_obj_str(&o, "text", "deploy \"v2\"\nfailed");
	json_obj_child(&o, "result", &c);
	json_obj_str(&c, "status", "rolled_back");
	json_obj_int(&c, "exit_code", 8);
	json_obj_end(&c);
	json_obj_int(&o, "n", 3);
	json_obj_end(&o);

	d = json_read_object(buf_str(&b));
	assert_non_null(d);
	assert_string_equal(json_read_str(d, "text"), "deploy \"v2\"\nfailed");
	assert_int_equal(json_read_kind(d, "result"), JR_OTHER);
	assert_int_equal(json_read_int(d, "n"), 3);
	json_read_free(d);
	buf_release(&b);
}

static void
test_quote_controls(void **state)
{
	char *q;

	(void)state;
	q = quoted("a\"b\\c\nd\re\tf\x01\x1b[31m\x7f");
	assert_string_equal(q, "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001\\u001b[31m"
			       "\\u007f\"");
	free(q);
	/* C1 controls as UTF-8 (U+0085 NEL, U+009B CSI), then U+00A0 kept. */
	q = quoted("\xc2\x85|\xc2\x9b"
		   "31m|\xc2\xa0");
	assert_string_equal(q, "\"\\u0085|\\u009b31m|\xc2\xa0\"");
	free(q);
	/* The line and paragraph separators; their neighbours kept. */
	q = quoted("\xe2\x80\xa8|\xe2\x80\xa9|\xe2\x80\xa7|\xe2\x80\xaa");
	assert_string_equal(q, "\"\\u2028|\\u2029|\xe2\x80\xa7|\xe2\x80\xaa\"");
	free(q);
	/* Raw C1 bytes are not UTF-8: U+FFFD each. */
	q = quoted("\x9b\x85");
	assert_string_equal(q, "\"\\ufffd\\ufffd\"");
	free(q);
}

/* Every byte 1..255: one line of valid JSON, read back by json-c. */
static void
test_quote_every_byte(void **state)
{
	struct buf b = BUF_INIT;
	struct json_obj o;
	struct json_doc *d;
	char in[256];
	const char *s;
	size_t i;

	(void)state;
	for (i = 1; i < 256; i++)
		in[i - 1] = (char)i;
	in[255] = '\0';
	json_obj_begin(&o, &b);
	json_obj_str(&o, "v", in);
	json_obj_end(&o);
	s = buf_str(&b);
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		assert_true(c >= 0x20 && c != 0x7f);
	}
	/* No raw byte above 0x7f either: the input has no valid sequence. */
	for (i = 0; s[i] != '\0'; i++)
		assert_true((unsigned char)s[i] < 0x80);
	d = json_read_object(s);
	assert_non_null(d);
	assert_int_equal(json_read_kind(d, "v"), JR_STRING);
	assert_int_equal(strncmp(json_read_str(d, "v"), in, 0x7f), 0);
	json_read_free(d);
	buf_release(&b);
}

static void
test_read_kinds_and_conversions(void **state)
{
	struct json_doc *d;

	(void)state;
	d = json_read_object("{\"s\": \"12\", \"e\": \"\", \"i\": 5000000000, "
			     "\"f\": 2.9, \"t\": true, \"z\": false, \"n\": "
			     "null, \"a\": [1], \"o\": {}}");
	assert_non_null(d);
	assert_int_equal(json_read_kind(d, "s"), JR_STRING);
	assert_int_equal(json_read_kind(d, "i"), JR_INT);
	assert_int_equal(json_read_kind(d, "f"), JR_DOUBLE);
	assert_int_equal(json_read_kind(d, "t"), JR_BOOL);
	assert_int_equal(json_read_kind(d, "n"), JR_NULL);
	assert_int_equal(json_read_kind(d, "a"), JR_OTHER);
	assert_int_equal(json_read_kind(d, "o"), JR_OTHER);
	assert_int_equal(json_read_kind(d, "missing"), JR_ABSENT);

	assert_string_equal(json_read_str(d, "s"), "12");
	assert_null(json_read_str(d, "i"));
	assert_null(json_read_str(d, "n"));
	assert_null(json_read_str(d, "missing"));

	assert_true(json_read_int(d, "i") == 5000000000LL);
	assert_int_equal(json_read_int(d, "s"), 12);
	assert_int_equal(json_read_int(d, "f"), 2);
	assert_int_equal(json_read_int(d, "t"), 1);
	assert_int_equal(json_read_int(d, "n"), 0);
	assert_int_equal(json_read_int(d, "missing"), 0);

	assert_true(json_read_bool(d, "t"));
	assert_false(json_read_bool(d, "z"));
	assert_true(json_read_bool(d, "s"));
	assert_false(json_read_bool(d, "e"));
	assert_true(json_read_bool(d, "i"));
	assert_false(json_read_bool(d, "n"));
	assert_false(json_read_bool(d, "missing"));
	json_read_free(d);
	json_read_free(NULL);
}

static void
test_read_refuses_non_objects(void **state)
{
	static const char *const bad[] = {
		"",      "{",  "not json", "[1, 2]",
		"\"a\"", "42", "null",     "{\"a\": 1",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(json_read_object(bad[i]));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_object_layout),
		cmocka_unit_test(test_nested_and_read_back),
		cmocka_unit_test(test_quote_controls),
		cmocka_unit_test(test_quote_every_byte),
		cmocka_unit_test(test_read_kinds_and_conversions),
		cmocka_unit_test(test_read_refuses_non_objects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
