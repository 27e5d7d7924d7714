/*
 * What out.c writes, captured from stderr and stdout byte for byte: every
 * piece of text escaped so that nothing starts a line, moves the cursor
 * or begins a GitHub Actions workflow command; relflip's own colours kept;
 * registered secrets (and each of their lines) redacted in text and JSON.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "error.h"
#include "json.h"
#include "out.h"
#include "fakes/capture.h"

static int
setup(void **state)
{
	(void)state;
	memset(&out_cfg, 0, sizeof(out_cfg));
	unsetenv("GITHUB_STEP_SUMMARY");
	return 0;
}

static char *
err_of(const char *host, const char *msg, const char *hint, enum rf_exit code)
{
	struct rf_error err = RF_ERROR_INIT;
	struct capture c;

	rf_error_set(&err, code, "deploy", "%s", msg);
	if (hint != NULL)
		rf_error_hint(&err, "%s", hint);
	if (host != NULL)
		rf_error_host(&err, host);
	capture_begin(&c, 2);
	out_error(&err);
	return capture_end(&c);
}

static void
test_error_escapes_control_characters(void **state)
{
	char *s;

	(void)state;
	s = err_of(NULL,
		   "bad\nline\rback\x1b[2J\x07 c1 \xc2\x9b"
		   "31m del\x7f tab\tkept",
		   "try\nthis", RF_EXIT_CONNECT);
	assert_string_equal(s, "relflip: error: bad\\x0aline\\x0dback\\x1b[2J"
			       "\\x07 c1 \\xc2\\x9b31m del\\x7f tab\tkept "
			       "(exit 4)\nhint: try\\x0athis\n");
	free(s);

	/* The host prefix is cleaned as well. */
	s = err_of("we\nb1", "refused", NULL, RF_EXIT_CONNECT);
	assert_string_equal(s, "relflip: error: we\\x0ab1: refused (exit 4)\n");
	free(s);

	/* The prefix is left out only where the message names the host as a
	 * word of its own, not inside a path or a longer name. */
	s = err_of("h1", "key in /tmp/e2e.LGh1Jw/known_hosts", NULL,
		   RF_EXIT_CONNECT);
	assert_string_equal(s, "relflip: error: h1: key in "
			       "/tmp/e2e.LGh1Jw/known_hosts (exit 4)\n");
	free(s);
	s = err_of("web", "no /srv/web/app or web1.", NULL, RF_EXIT_CONNECT);
	assert_string_equal(s, "relflip: error: web: no /srv/web/app or "
			       "web1. (exit 4)\n");
	free(s);
	s = err_of("web", "cannot reach web (10.0.0.5): refused", NULL,
		   RF_EXIT_CONNECT);
	assert_string_equal(s, "relflip: error: cannot reach web (10.0.0.5): "
			       "refused (exit 4)\n");
	free(s);
	s = err_of("web", "timed out on web.", NULL, RF_EXIT_CONNECT);
	assert_string_equal(s, "relflip: error: timed out on web. (exit 4)\n");
	free(s);

	/* Invalid UTF-8 is shown, valid UTF-8 kept. */
	s = err_of(NULL, "caf\xc3\xa9 \xff", NULL, RF_EXIT_USAGE);
	assert_string_equal(s, "relflip: error: caf\xc3\xa9 \\xff\n");
	free(s);
}

static void
test_colour_is_relflips_own(void **state)
{
	char *s;

	(void)state;
	out_cfg.color = 1;
	s = err_of(NULL, "x\x1b[32mfake green", NULL, RF_EXIT_USAGE);
	assert_string_equal(s, "relflip: \x1b[31;1merror:\x1b[0m "
			       "x\\x1b[32mfake green\n");
	free(s);
}

static char *
text_of(const char *text)
{
	struct capture c;

	capture_begin(&c, 2);
	out_text("%s", text);
	return capture_end(&c);
}

static void
assert_text(const char *in, const char *want)
{
	char *s = text_of(in);

	assert_string_equal(s, want);
	free(s);
}

static void
test_text_starts_no_workflow_command(void **state)
{
	(void)state;
	assert_text("::error::pwned", "\\x3a:error::pwned\n");
	assert_text("  \t::warning title=x::y",
		    "  \t\\x3a:warning title=x::y\n");
	/* .NET's TrimStart() also skips Unicode blanks: U+00A0, U+3000. */
	assert_text("\xc2\xa0::add-mask::x", "\xc2\xa0\\x3a:add-mask::x\n");
	assert_text("\xe3\x80\x80::stop-commands::t",
		    "\xe3\x80\x80\\x3a:stop-commands::t\n");
	assert_text(" \xc2\xa0\t\xe2\x80\x83 ::x::y",
		    " \xc2\xa0\t\xe2\x80\x83 \\x3a:x::y\n");
	/* A soft hyphen between the colons, which ICU matching ignores. */
	assert_text(":\xc2\xad:error::x", "\\x3a\xc2\xad:error::x\n");
	/* A newline cannot put one at the start of a line either. */
	assert_text("ok\n::error::x", "ok\\x0a::error::x\n");
	/* The old syntax counts anywhere in a line. */
	assert_text("say ##[error]x", "say ##\\x5berror]x\n");
	assert_text("#\xc2\xad#[set-output]", "#\xc2\xad#\\x5bset-output]\n");
	/* Text that only looks alike is left alone. */
	assert_text("address 2001:db8::1", "address 2001:db8::1\n");
	assert_text(": :x", ": :x\n");
	assert_text("# [x] and #[y]", "# [x] and #[y]\n");
	assert_text("", "\n");
}

static void
test_other_lines_are_cleaned(void **state)
{
	struct capture c;
	char want[512];
	char *s;

	(void)state;
	capture_begin(&c, 2);
	out_warning("web1", "install", "disk\nlow\x1b[1A");
	out_output("web1", "install", 1, "\x1b]0;title\x07::error::x\r");
	out_stage_end(NULL, "install", 12, 1, "web1\nweb2");
	out_debug("a\nb");
	s = capture_end(&c);
	snprintf(want, sizeof(want),
		 "relflip: warning: web1: disk\\x0alow\\x1b[1A\n"
		 "  install   web1 \xe2\x80\xa6\n"
		 "    web1 | \\x1b]0;title\\x07::error::x\\x0d\n"
		 "  %-9s %-56s %8s\n",
		 "install", "web1\\x0aweb2", "12 ms");
	assert_string_equal(s, want);
	free(s);

	/* A script's lines stay lines, each one marked and cleaned. */
	out_cfg.verbose = 1;
	capture_begin(&c, 2);
	out_debug("a\n::error::b\x1b[K\n");
	s = capture_end(&c);
	assert_string_equal(s, "debug: test_other_lines_are_cleaned: a\n"
			       "debug:   | ::error::b\\x1b[K\n");
	free(s);

	/* -q keeps errors only. */
	out_cfg.quiet = 1;
	capture_begin(&c, 2);
	out_text("hidden");
	out_warning(NULL, NULL, "hidden");
	out_output("web1", "install", 0, "hidden");
	s = capture_end(&c);
	assert_string_equal(s, "");
	free(s);
}

static void
test_primary_keeps_its_lines(void **state)
{
	struct capture c;
	char *s;

	(void)state;
	capture_begin(&c, 1);
	out_primary("web1: would remove:\n  releases/a\x1b[K\n::error::x");
	s = capture_end(&c);
	assert_string_equal(s, "web1: would remove:\n  releases/a\\x1b[K\n"
			       "\\x3a:error::x\n");
	free(s);
}

static void
test_github_commands_are_one_line(void **state)
{
	struct capture c;
	char *s;

	(void)state;
	out_cfg.github = 1;
	capture_begin(&c, 1);
	out_stage_running("up\n::error::x", "web1");
	out_output("web1", "upload", 0, "line");
	out_stage_end(NULL, "upload", 1, 1, "");
	s = capture_end(&c);
	assert_string_equal(s, "::group::relflip up\\x0a::error::x web1 "
			       "(output)\n::endgroup::\n");
	free(s);

	capture_begin(&c, 1);
	s = err_of("web1", "100% down\n::error::x", "look\rthere",
		   RF_EXIT_HEALTH);
	free(s);
	s = capture_end(&c);
	assert_string_equal(s, "::error title=relflip deploy on web1::100%25 "
			       "down\\x0a::error::x%0Ahint: look\\x0dthere\n");
	free(s);
}

static void
test_secrets_redacted_in_text(void **state)
{
	static const char key[] = "-----BEGIN OPENSSH PRIVATE KEY-----\n"
				  "b3BlbnNzaC1rZXktdjEAAAAA\r\n"
				  "QyNTUxOQAAACBzZWNyZXQ=\n"
				  "-----END OPENSSH PRIVATE KEY-----\n";
	char *s;

	(void)state;
	out_secret(key);
	out_secret(key); /* once is enough */
	out_secret("abc");
	out_secret(NULL);

	s = text_of(key);
	assert_string_equal(s, "[redacted]\n");
	free(s);
	/* Each line alone; the armour is no secret. */
	assert_text("x QyNTUxOQAAACBzZWNyZXQ= y", "x [redacted] y\n");
	assert_text(
	    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA",
	    "-----BEGIN OPENSSH PRIVATE KEY-----\\x0a[redacted]\n");
	/* Shorter than 4 bytes: not a secret. */
	assert_text("abc", "abc\n");

	s = err_of("web1", "cannot read the key file QyNTUxOQAAACBzZWNyZXQ=",
		   "b3BlbnNzaC1rZXktdjEAAAAA?", RF_EXIT_CONNECT);
	assert_string_equal(s, "relflip: error: web1: cannot read the key "
			       "file [redacted] (exit 4)\nhint: [redacted]?\n");
	free(s);
}

static void
test_secrets_redacted_in_json(void **state)
{
	struct out_field f[2] = {
		OF_STR("line", "tok=S3cr\"et\\1 and b3BlbnNzaC1rZXktdjEAAAAA"),
		OF_STR("none", NULL),
	};
	struct json_doc *d;
	struct capture c;
	char *s, *nl;

	(void)state;
	out_secret("S3cr\"et\\1");
	out_secret("b3BlbnNzaC1rZXktdjEAAAAA");
	out_cfg.json = 1;
	capture_begin(&c, 1);
	out_event("output", "web\n1", "install", f, 2);
	s = capture_end(&c);
	/* One line, valid JSON, no trace of either secret. */
	nl = strchr(s, '\n');
	assert_non_null(nl);
	assert_string_equal(nl, "\n");
	*nl = '\0';
	assert_null(strstr(s, "S3cr"));
	assert_null(strstr(s, "b3Bl"));
	d = json_read_object(s);
	assert_non_null(d);
	assert_string_equal(json_read_str(d, "event"), "output");
	assert_string_equal(json_read_str(d, "host"), "web\n1");
	assert_string_equal(json_read_str(d, "stage"), "install");
	assert_string_equal(json_read_str(d, "line"),
			    "tok=[redacted] and [redacted]");
	assert_int_equal(json_read_kind(d, "none"), JR_NULL);
	json_read_free(d);
	free(s);

	/* Errors under --json: the event carries the redacted message. */
	capture_begin(&c, 1);
	s = err_of(NULL, "bad S3cr\"et\\1", "hint S3cr\"et\\1", RF_EXIT_USAGE);
	free(s);
	s = capture_end(&c);
	assert_null(strstr(s, "S3cr"));
	assert_non_null(strstr(s, "\"message\": \"bad [redacted]\""));
	assert_non_null(strstr(s, "\"hint\": \"hint [redacted]\""));
	free(s);
}

static void
test_step_summary_redacted(void **state)
{
	char path[] = "/tmp/test-out-XXXXXX";
	char text[256];
	size_t n;
	FILE *f;
	int fd;

	(void)state;
	out_secret("summary-secret-value");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	setenv("GITHUB_STEP_SUMMARY", path, 1);
	out_step_summary("| a | summary-secret-value |\n");
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	unlink(path);
	assert_string_equal(text, "| a | [redacted] |\n");
}

/* A hook's lines come under their stage's heading, once a stage. */
static void
test_output_under_its_heading(void **state)
{
	struct capture c;
	char want[512];
	char *s;

	(void)state;
	capture_begin(&c, 2);
	out_stage_running("install", "web1 web2");
	out_output("web1", "install", 0, "one");
	out_output("web2", "install", 1, "two");
	out_stage_end(NULL, "install", 1200, 1, "web1 web2");
	out_stage_running("switch", "web1 web2");
	out_stage_end(NULL, "switch", 3, 1, "web1 web2");
	/* Output without a stage announced names its own. */
	out_output("web1", "restart", 0, "three");
	out_stage_end(NULL, "restart", 3, 1, "web1");
	s = capture_end(&c);
	snprintf(want, sizeof(want),
		 "  install   web1 web2 \xe2\x80\xa6\n"
		 "    web1 | one\n"
		 "    web2 | two\n"
		 "  %-9s %-56s %8s\n"
		 "  %-9s %-56s %8s\n"
		 "  restart   web1 \xe2\x80\xa6\n"
		 "    web1 | three\n"
		 "  %-9s %-56s %8s\n",
		 "install", "web1 web2", "1.2 s", "switch", "web1 web2", "3 ms",
		 "restart", "web1", "3 ms");
	assert_string_equal(s, want);
	free(s);
}

/*
 * Under GitHub Actions a stage's output is folded, and its own line
 * comes after the fold, where a collapsed log still shows it.
 */
static void
test_github_folds_output_not_stage_lines(void **state)
{
	struct capture out, err;
	char *o, *e;

	(void)state;
	out_cfg.github = 1;
	capture_begin(&out, 1);
	capture_begin(&err, 2);
	out_stage_running("install", "web1");
	out_output("web1", "install", 0, "pip says");
	out_stage_end(NULL, "install", 5, 0, "FAILED: web1");
	out_stage_running("link", "web1");
	out_stage_end(NULL, "link", 5, 1, "web1");
	e = capture_end(&err);
	o = capture_end(&out);
	assert_string_equal(o, "::group::relflip install web1 (output)\n"
			       "::endgroup::\n");
	assert_non_null(strstr(e, "    web1 | pip says\n  install   FAILED"));
	assert_null(strstr(e, "\xe2\x80\xa6"));
	free(o);
	free(e);
}

/*
 * On a terminal, one host: a line while its stage runs, gone when the
 * stage ends; drawn again under each line written meanwhile.
 */
static void
test_live_line_for_one_host(void **state)
{
	const char *names[] = { "web1" };
	struct capture c;
	char *s, *p;

	(void)state;
	out_cfg.tty = 1;
	capture_begin(&c, 2);
	out_live_begin(1, names);
	out_live_stage(0, "install");
	out_output("web1", "install", 0, "hello");
	out_live_done(0, 1);
	out_stage_end(NULL, "install", 5, 1, "web1");
	out_live_end();
	s = capture_end(&c);
	/*
	 * Drawn; erased (cursor up, clear) before each line written, the
	 * heading and the output, and drawn again under it.
	 */
	p = strstr(s, "  install   web1 \xe2\x80\xa6\n\033[1A\r\033[J"
		      "  install   web1 \xe2\x80\xa6\n"
		      "  install   web1 \xe2\x80\xa6\n\033[1A\r\033[J"
		      "    web1 | hello\n"
		      "  install   web1 \xe2\x80\xa6");
	assert_non_null(p);
	/* Its end erases it, and the stage's line takes its place. */
	p = strstr(p, "\033[1A\r\033[J  install   web1   ");
	assert_non_null(p);
	free(s);

	/* Off a terminal, under -q or --json: no live line. */
	out_cfg.tty = 0;
	capture_begin(&c, 2);
	out_live_begin(1, names);
	out_live_stage(0, "install");
	out_live_done(0, 1);
	out_live_end();
	s = capture_end(&c);
	assert_string_equal(s, "");
	free(s);
}

/* releases prints a table: no stage lines, but errors and warnings. */
static void
test_table_only_keeps_errors(void **state)
{
	struct capture c;
	char *s;

	(void)state;
	out_cfg.table_only = 1;
	capture_begin(&c, 2);
	out_stage_end(NULL, "connect", 12, 1, "web1");
	out_warning("web1", "probe", "odd");
	s = capture_end(&c);
	assert_string_equal(s, "relflip: warning: web1: odd\n");
	free(s);
	s = err_of("web1", "refused", NULL, RF_EXIT_CONNECT);
	assert_string_equal(s, "relflip: error: web1: refused (exit 4)\n");
	free(s);
}

static void
test_rate_only_when_it_means_something(void **state)
{
	char r[32];

	(void)state;
	out_format_rate(r, sizeof(r), 3000, 0);
	assert_string_equal(r, "");
	out_format_rate(r, sizeof(r), 3000000, 50);
	assert_string_equal(r, "");
	out_format_rate(r, sizeof(r), 1000, 5000);
	assert_string_equal(r, "");
	out_format_rate(r, sizeof(r), 4500000, 2000);
	assert_string_equal(r, "2.2 MB/s");
}

/*
 * A hint's relflip commands carry the -c the person gave, so that pasting
 * one acts on the same config; prose and commands that read no config are
 * left alone.
 */
static void
test_hint_commands_name_the_config(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "relflip -H web1 unlock --force removes it",
		  "relflip -c config/staging.ini -H web1 unlock --force "
		  "removes it" },
		{ "space, or prune: relflip -H web1 prune --keep 2",
		  "space, or prune: relflip -c config/staging.ini -H web1 "
		  "prune --keep 2" },
		{ "relflip releases lists them; relflip rollback --to ID picks "
		  "one",
		  "relflip -c config/staging.ini releases lists them; "
		  "relflip -c config/staging.ini rollback --to ID picks one" },
		{ "(relflip check)", "(relflip -c config/staging.ini check)" },
		{ "relflip pack, or report it", "relflip pack, or report it" },
		{ "relflip did not leave it like this: relflip reads tar only",
		  "relflip did not leave it like this: relflip reads tar "
		  "only" },
		{ "relflip --help lists the commands",
		  "relflip --help lists the commands" },
		{ "xrelflip check", "xrelflip check" },
		{ "relflip logs", "relflip logs" },
	};
	struct rf_error err = RF_ERROR_INIT;
	char hint[40];
	size_t i;

	(void)state;
	rf_error_hint(&err, "relflip -H %s status", "web1");
	assert_string_equal(err.hint, "relflip -H web1 status");
	rf_hint_config("-c config/staging.ini");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rf_error_hint(&err, "%s", cases[i].in);
		assert_string_equal(err.hint, cases[i].out);
	}
	/* Cut to the buffer, never past it. */
	snprintf(hint, sizeof(hint), "%s", "relflip -H web1 unlock");
	rf_hint_add_config(hint, sizeof(hint));
	assert_string_equal(hint, "relflip -c config/staging.ini -H web1 u");
	rf_hint_config(NULL);
	rf_error_hint(&err, "relflip -H %s status", "web1");
	assert_string_equal(err.hint, "relflip -H web1 status");
}

#define T(f) cmocka_unit_test_setup(f, setup)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_error_escapes_control_characters),
		T(test_colour_is_relflips_own),
		T(test_text_starts_no_workflow_command),
		T(test_other_lines_are_cleaned),
		T(test_primary_keeps_its_lines),
		T(test_github_commands_are_one_line),
		T(test_secrets_redacted_in_text),
		T(test_secrets_redacted_in_json),
		T(test_step_summary_redacted),
		T(test_output_under_its_heading),
		T(test_github_folds_output_not_stage_lines),
		T(test_live_line_for_one_host),
		T(test_table_only_keeps_errors),
		T(test_rate_only_when_it_means_something),
		T(test_hint_commands_name_the_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
