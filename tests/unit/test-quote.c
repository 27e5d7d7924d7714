/*
 * Quoting: sh_quote proven against a real /bin/sh (what printf %s gets is
 * the value, byte for byte), json_quote checked by json-c, and
 * term_sanitize leaving no control byte for a terminal.
 */

#include <sys/wait.h>

#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "quote.h"

/* Run cmd with /bin/sh -c (popen); its stdout, and its exit status. */
static char *
shell_output(const char *cmd, size_t *len, int *status)
{
	struct buf out = BUF_INIT;
	char b[4096];
	FILE *p;
	size_t n;
	int st;

	p = popen(cmd, "r");
	assert_non_null(p);
	while ((n = fread(b, 1, sizeof(b), p)) > 0)
		buf_add(&out, b, n);
	st = pclose(p);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return buf_detach(&out, len);
}

static const char *const tricky[] = {
	"",
	"plain",
	"two words",
	"  leading and trailing  ",
	"it's",
	"'",
	"''",
	"'\\''",
	"\"double\" quotes",
	"$(touch /tmp/pwned)",
	"`touch /tmp/pwned`",
	"$HOME ${HOME} $1 $@ $$ $?",
	"back\\slash \\n \\\\ \\",
	"line one\nline two\n",
	"\n",
	"* ? [a-z] ~ ~root",
	"a; exit 7 ; b",
	"true && false || echo x",
	"a | b > c < d >> e 2>&1",
	"(sub) {group} !bang #hash",
	"-n",
	"--",
	"%s %d %%",
	"tab\there\r\x01\x1b[31m\x7f",
	"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac",
	"not utf-8: \xff\xfe\xc3",
	"=value",
	"key=$(id)",
};

static void
test_sh_quote_round_trips_through_sh(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(tricky) / sizeof(tricky[0]); i++) {
		struct buf cmd = BUF_INIT;
		char *out;
		size_t len;
		int status;

		buf_adds(&cmd, "printf %s ");
		sh_quote(&cmd, tricky[i]);
		out = shell_output(buf_str(&cmd), &len, &status);
		assert_int_equal(status, 0);
		if (len != strlen(tricky[i]) ||
		    memcmp(out, tricky[i], len) != 0)
			fail_msg("sh_quote(%s) came back as '%s' from /bin/sh "
				 "(command: %s)",
				 tricky[i], out, buf_str(&cmd));
		free(out);
		buf_release(&cmd);
	}
}

static void
test_sh_quote_is_one_word(void **state)
{
	struct buf cmd = BUF_INIT;
	char *out;
	size_t len;
	int status;

	(void)state;
	/* Each quoted value is exactly one argument, even the empty one. */
	buf_adds(&cmd, "printf '[%s]' ");
	sh_quote(&cmd, "a b");
	buf_addch(&cmd, ' ');
	sh_quote(&cmd, "");
	buf_addch(&cmd, ' ');
	sh_quote(&cmd, "c'd");
	buf_addch(&cmd, ' ');
	sh_quote(&cmd, "*");
	out = shell_output(buf_str(&cmd), &len, &status);
	assert_int_equal(status, 0);
	assert_string_equal(out, "[a b][][c'd][*]");
	free(out);

	/* Quoted words glue to unquoted text as shells do. */
	buf_reset(&cmd);
	buf_adds(&cmd, "x=");
	sh_quote(&cmd, "it's $(x)");
	buf_adds(&cmd, "; printf %s \"$x\".tail");
	out = shell_output(buf_str(&cmd), &len, &status);
	assert_string_equal(out, "it's $(x).tail");
	free(out);
	buf_release(&cmd);
}

static void
test_sh_quote_form(void **state)
{
	struct buf b = BUF_INIT;
	char *s;

	(void)state;
	sh_quote(&b, "it's");
	assert_string_equal(buf_str(&b), "'it'\\''s'");
	buf_reset(&b);
	sh_quote(&b, "");
	assert_string_equal(buf_str(&b), "''");
	buf_reset(&b);
	/* It appends. */
	buf_adds(&b, "echo ");
	sh_quote(&b, "a");
	assert_string_equal(buf_str(&b), "echo 'a'");
	buf_release(&b);

	s = sh_quoted("$(x) y");
	assert_string_equal(s, "'$(x) y'");
	free(s);
}

/* ---- json_quote ---- */

static char *
jq(const char *s)
{
	struct buf b = BUF_INIT;

	json_quote(&b, s);
	return buf_detach(&b, NULL);
}

/* json-c reads q back as a string equal to want. */
static void
assert_json_string(const char *q, const char *want)
{
	json_object *o = json_tokener_parse(q);

	assert_non_null(o);
	assert_true(json_object_is_type(o, json_type_string));
	assert_string_equal(json_object_get_string(o), want);
	json_object_put(o);
}

static void
test_json_quote_escapes(void **state)
{
	char *q;

	(void)state;
	q = jq("say \"hi\" \\ there");
	assert_string_equal(q, "\"say \\\"hi\\\" \\\\ there\"");
	assert_json_string(q, "say \"hi\" \\ there");
	free(q);

	q = jq("a\nb\rc\td");
	assert_string_equal(q, "\"a\\nb\\rc\\td\"");
	assert_json_string(q, "a\nb\rc\td");
	free(q);

	q = jq("\x01\x08\x0c\x1b[0m\x1f\x7f");
	assert_string_equal(q, "\"\\u0001\\u0008\\u000c\\u001b[0m\\u001f"
			       "\\u007f\"");
	assert_json_string(q, "\x01\x08\x0c\x1b[0m\x1f\x7f");
	free(q);

	q = jq("");
	assert_string_equal(q, "\"\"");
	free(q);

	/* '/' and '\'' need nothing. */
	q = jq("a/b'c");
	assert_string_equal(q, "\"a/b'c\"");
	free(q);
}

static void
test_json_quote_utf8(void **state)
{
	char *q;

	(void)state;
	/* Valid UTF-8 of every length is kept as it is. */
	q = jq("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf");
	assert_string_equal(
	    q,
	    "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"");
	assert_json_string(
	    q, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf");
	free(q);

	/* Invalid bytes become U+FFFD, one each. */
	q = jq("a\377b");
	assert_string_equal(q, "\"a\\ufffdb\"");
	assert_json_string(q, "a\357\277\275b");
	free(q);

	/* A lone continuation byte; a cut sequence; a 2-byte overlong. */
	q = jq("\x80|\xc3|\xe2\x82|\xc0\xaf|\xc1\xbf|\xf5\x80\x80\x80");
	assert_string_equal(q, "\"\\ufffd|\\ufffd|\\ufffd\\ufffd|\\ufffd"
			       "\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd"
			       "\\ufffd\"");
	free(q);

	/* A sequence cut by the end of the string. */
	q = jq("end\xe2\x82");
	assert_string_equal(q, "\"end\\ufffd\\ufffd\"");
	free(q);
}

/*
 * BUG (src/quote.c, utf8_len): the lead byte alone decides validity, so
 * three kinds of invalid UTF-8 pass through json_quote (and term_sanitize)
 * as raw bytes: 3-byte overlongs (E0 80..9F xx), UTF-16 surrogates
 * (ED A0..BF xx) and code points past U+10FFFF (F4 90..BF xx xx), plus
 * 4-byte overlongs (F0 80..8F xx xx). The JSON line is then not valid
 * UTF-8 and strict readers reject it. Fix: after the lead byte, check the
 * second byte's range: E0 -> A0..BF, ED -> 80..9F, F0 -> 90..BF,
 * F4 -> 80..8F (as RFC 3629 section 4's table does).
 */
static void
test_json_quote_rejects_overlong_and_surrogates(void **state)
{
	static const char *const bad[] = {
		"\xe0\x80\xaf",     /* overlong '/' */
		"\xed\xa0\x80",     /* U+D800, a surrogate */
		"\xf4\x90\x80\x80", /* U+110000 */
		"\xf0\x80\x80\xaf", /* 4-byte overlong '/' */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *q = jq(bad[i]);

		assert_null(strchr(q, bad[i][0]));
		assert_non_null(strstr(q, "\\ufffd"));
		free(q);
	}
}

/* ---- term_sanitize ---- */

static void
assert_sanitized(const char *in, const char *want)
{
	char *s = term_sanitize(in);

	assert_string_equal(s, want);
	free(s);
}

static void
test_term_sanitize_escapes(void **state)
{
	(void)state;
	/* Colour, cursor movement, a window title: all made visible. */
	assert_sanitized("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m");
	assert_sanitized("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H");
	assert_sanitized("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07");
	assert_sanitized("bell\x07 bs\x08 cr\r nl\n del\x7f",
			 "bell\\x07 bs\\x08 cr\\x0d nl\\x0a del\\x7f");
	/* Tab is kept. */
	assert_sanitized("a\tb", "a\tb");
	assert_sanitized("", "");
	assert_sanitized("plain text: 100% ok", "plain text: 100% ok");
}

static void
test_term_sanitize_c1_and_utf8(void **state)
{
	(void)state;
	/*
	 * C1 CSI and OSC, as UTF-8 (U+009B, U+009D) and as raw bytes
	 * (octal escapes: \302\233 is C2 9B).
	 */
	assert_sanitized("\302\23331m", "\\xc2\\x9b31m");
	assert_sanitized("\302\2350;t\302\234", "\\xc2\\x9d0;t\\xc2\\x9c");
	assert_sanitized("\xc2\x80", "\\xc2\\x80");
	assert_sanitized("\23331m", "\\x9b31m");
	assert_sanitized("\x90\x9f", "\\x90\\x9f");
	/* Printable UTF-8 stays, U+00A0 (the first after C1) included. */
	assert_sanitized("caf\xc3\xa9 \xc2\xa0 \xe2\x82\xac \xf0\x9f\x98\x80",
			 "caf\xc3\xa9 \xc2\xa0 \xe2\x82\xac \xf0\x9f\x98\x80");
	/* Invalid bytes are shown, not passed on. */
	assert_sanitized("\xff\xc3", "\\xff\\xc3");
}

static void
test_term_sanitize_leaves_no_control_byte(void **state)
{
	char in[256];
	char *s;
	size_t i;

	(void)state;
	/* Every byte 1..255 once. */
	for (i = 1; i < 256; i++)
		in[i - 1] = (char)i;
	in[255] = '\0';
	s = term_sanitize(in);
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		assert_true(c == '\t' || (c >= 0x20 && c != 0x7f));
		/* A raw C1 byte is only ever a UTF-8 continuation. */
		if (c >= 0x80 && c < 0xa0)
			assert_true(i > 0 && (unsigned char)s[i - 1] >= 0xc0);
	}
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sh_quote_round_trips_through_sh),
		cmocka_unit_test(test_sh_quote_is_one_word),
		cmocka_unit_test(test_sh_quote_form),
		cmocka_unit_test(test_json_quote_escapes),
		cmocka_unit_test(test_json_quote_utf8),
		cmocka_unit_test(
		    test_json_quote_rejects_overlong_and_surrogates),
		cmocka_unit_test(test_term_sanitize_escapes),
		cmocka_unit_test(test_term_sanitize_c1_and_utf8),
		cmocka_unit_test(test_term_sanitize_leaves_no_control_byte),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
