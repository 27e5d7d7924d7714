/*
 * Reading the deploy log back (logread.h): the parser of one line, on
 * what fleet_log_begin() writes and on what it must refuse; the reply of
 * the reading script, torn and long lines included; the merge by time;
 * and the script itself run with /bin/sh on a log file here.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "fleet.h"
#include "json.h"
#include "logread.h"
#include "fakes/run-sh.h"

/* ---- log_line_parse ---- */

static void
test_parse_what_fleet_log_begin_writes(void **state)
{
	char name[] = "web1";
	struct conf_host h = { .name = name };
	struct fleet_host fh = { .host = &h };
	struct fleet f;
	struct buf line = BUF_INIT;
	struct json_obj o;
	struct log_entry e;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.command = "deploy";
	snprintf(f.actor, sizeof(f.actor), "alice");
	snprintf(f.runner, sizeof(f.runner), "ci-7");
	snprintf(f.run_url, sizeof(f.run_url), "https://ci/run/1");
	fleet_log_begin(&f, &fh, "v2", "v1", "rolled_back", 8, &o, &line);
	json_obj_str(&o, "checksum", "sha256:ab");
	json_obj_int(&o, "duration_ms", 1234);
	json_obj_end(&o);
	assert_int_equal(log_line_parse(buf_str(&line), &e), 0);
	assert_true(e.time_ms > 1700000000000LL);
	assert_int_equal(e.time_ms % 1000, 0);
	assert_string_equal(e.command, "deploy");
	assert_string_equal(e.revision, "v2");
	assert_string_equal(e.previous, "v1");
	assert_string_equal(e.result, "rolled_back");
	assert_int_equal(e.exit_code, 8);
	assert_string_equal(e.actor, "alice");
	assert_string_equal(e.runner, "ci-7");
	assert_string_equal(e.run_url, "https://ci/run/1");
	assert_string_equal(e.checksum, "sha256:ab");
	assert_true(e.duration_ms == 1234);
	/* What the line does not have. */
	assert_string_equal(e.why, "");
	assert_string_equal(e.message, "");
	assert_true(e.removed == -1 && e.kept == -1);
	/* The host is the caller's to set: where the line was read. */
	assert_string_equal(e.host, "");
	buf_release(&line);
}

static void
test_parse_extras_of_unlock_prune_lock(void **state)
{
	struct log_entry e;

	(void)state;
	assert_int_equal(
	    log_line_parse("{\"time\": \"2025-01-04T12:00:00Z\", \"command\": "
			   "\"unlock\", \"revision\": \"v3\", \"result\": "
			   "\"ok\", \"exit_code\": 0, \"holder\": "
			   "\"alice@ci-1\", \"holder_since\": "
			   "\"2025-01-04T11:00:00Z\", \"why\": \"freeze\", "
			   "\"message\": \"db work\"}",
			   &e),
	    0);
	assert_true(e.time_ms == 1735992000000LL);
	assert_string_equal(e.why, "freeze");
	assert_string_equal(e.holder, "alice@ci-1");
	assert_string_equal(e.holder_since, "2025-01-04T11:00:00Z");
	assert_string_equal(e.message, "db work");

	assert_int_equal(log_line_parse("{\"time\": \"2025-01-03T00:00:00Z\", "
					"\"command\": \"prune\", \"removed\": "
					"3, \"kept\": 5}",
					&e),
			 0);
	assert_true(e.removed == 3 && e.kept == 5);
	assert_true(e.duration_ms == -1);
}

static void
test_parse_time_forms(void **state)
{
	struct log_entry e;

	(void)state;
	/* Epoch seconds, a fraction, no Z: all the same instant's forms. */
	assert_int_equal(log_line_parse("{\"time\": 1735725660, \"command\": "
					"\"deploy\"}",
					&e),
			 0);
	assert_true(e.time_ms == 1735725660000LL);
	assert_int_equal(
	    log_line_parse("{\"time\": \"2025-01-01T10:01:00.250Z\""
			   ", \"command\": \"deploy\"}",
			   &e),
	    0);
	assert_true(e.time_ms == 1735725660250LL);
	assert_int_equal(log_line_parse("{\"time\": \"2025-01-01T10:01:00\", "
					"\"command\": \"deploy\"}",
					&e),
			 0);
	assert_true(e.time_ms == 1735725660000LL);
}

static void
test_parse_refuses_what_is_not_a_log_line(void **state)
{
	static const char *const bad[] = {
		"",
		"not json",
		"[1, 2]",
		"null",
		"{}",
		/* A release record: JSON, but not a log line. */
		"{\"id\": \"v1\", \"status\": \"good\"}",
		"{\"time\": \"2025-01-01T10:01:00Z\"}",
		"{\"time\": \"2025-01-01T10:01:00Z\", \"command\": \"\"}",
		"{\"time\": \"2025-01-01T10:01:00Z\", \"command\": 7}",
		"{\"command\": \"deploy\"}",
		"{\"time\": \"yesterday\", \"command\": \"deploy\"}",
		"{\"time\": \"2025-01-01T10:01:00Z junk\", \"command\": \"x\"}",
		"{\"time\": -5, \"command\": \"deploy\"}",
		"{\"time\": true, \"command\": \"deploy\"}",
		"{\"time\": 9223372036854775807, \"command\": \"deploy\"}",
		/* Torn where an append was cut short. */
		"{\"time\": \"2025-01-01T10:02:00Z\", \"command\": \"depl",
	};
	struct log_entry e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&e, 0x55, sizeof(e));
		if (log_line_parse(bad[i], &e) != -1)
			fail_msg("taken for a log line: %s", bad[i]);
		/* Nothing half-filled is left behind. */
		assert_string_equal(e.command, "");
		assert_true(e.time_ms == 0);
	}
}

static void
test_parse_truncates_long_fields_and_ignores_wrong_types(void **state)
{
	struct buf line = BUF_INIT;
	struct log_entry e;
	int i;

	(void)state;
	buf_adds(&line, "{\"time\": 1, \"command\": \"deploy\", \"actor\": \"");
	for (i = 0; i < 500; i++)
		buf_addch(&line, 'a');
	buf_adds(&line, "\", \"revision\": 42, \"removed\": \"3\", "
			"\"exit_code\": \"x\"}");
	assert_int_equal(log_line_parse(buf_str(&line), &e), 0);
	assert_int_equal(strlen(e.actor), sizeof(e.actor) - 1);
	assert_string_equal(e.revision, "");
	assert_true(e.removed == -1);
	assert_int_equal(e.exit_code, 0);
	buf_release(&line);
}

/* ---- log_reply_parse ---- */

static void
test_reply_lines_hosts_and_order(void **state)
{
	struct log_list list = { NULL, 0 };
	struct log_skips sk;

	(void)state;
	log_reply_parse("L{\"time\": 10, \"command\": \"deploy\"}\n"
			"Lnot json\n"
			"long\n"
			"L{\"time\": 5, \"command\": \"prune\"}\n"
			"noise the script never prints\n",
			"web2", 1, &list, &sk);
	assert_int_equal(list.n, 2);
	assert_int_equal(sk.read, 2);
	assert_int_equal(sk.skipped, 1);
	assert_int_equal(sk.too_long, 1);
	assert_int_equal(sk.torn, 0);
	assert_int_equal(sk.missing, 0);
	assert_string_equal(list.v[0].host, "web2");
	assert_int_equal(list.v[0].host_index, 1);
	assert_int_equal(list.v[0].seq, 0);
	assert_int_equal(list.v[1].seq, 1);
	assert_string_equal(list.v[1].command, "prune");
	log_list_release(&list);

	log_reply_parse("none\n", "web1", 0, &list, &sk);
	assert_int_equal(sk.missing, 1);
	assert_int_equal(list.n, 0);
	log_reply_parse("", "web1", 0, &list, &sk);
	assert_int_equal(sk.missing, 0);
	assert_int_equal(list.n, 0);
}

static void
test_reply_torn_last_line(void **state)
{
	struct log_list list = { NULL, 0 };
	struct log_skips sk;

	(void)state;
	/* The file ends without a newline and its last line is cut short. */
	log_reply_parse("torn\n"
			"L{\"time\": 10, \"command\": \"deploy\"}\n"
			"L{\"time\": 11, \"comm\n",
			"web1", 0, &list, &sk);
	assert_int_equal(list.n, 1);
	assert_int_equal(sk.skipped, 1);
	assert_int_equal(sk.torn, 1);
	log_list_release(&list);

	/* No newline, but a whole line: read, and nothing is torn. */
	log_reply_parse("torn\n"
			"Lgarbage\n"
			"L{\"time\": 11, \"command\": \"deploy\"}\n",
			"web1", 0, &list, &sk);
	assert_int_equal(list.n, 1);
	assert_int_equal(sk.skipped, 1);
	assert_int_equal(sk.torn, 0);
	log_list_release(&list);

	/* A bad line that is not the last is no torn one. */
	log_reply_parse("Lgarbage\nL{\"time\": 1, \"command\": \"x\"}\n",
			"web1", 0, &list, &sk);
	assert_int_equal(sk.torn, 0);
	assert_int_equal(sk.skipped, 1);
	log_list_release(&list);
}

/* ---- log_merge ---- */

static void
add(struct log_list *l, long long t, size_t host, size_t seq, const char *rev)
{
	l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
	assert_non_null(l->v);
	memset(&l->v[l->n], 0, sizeof(l->v[l->n]));
	l->v[l->n].time_ms = t;
	l->v[l->n].host_index = host;
	l->v[l->n].seq = seq;
	snprintf(l->v[l->n].revision, sizeof(l->v[l->n].revision), "%s", rev);
	l->n++;
}

static void
test_merge_by_time_then_host_then_line(void **state)
{
	struct log_list l = { NULL, 0 };

	(void)state;
	add(&l, 3000, 0, 1, "c");
	add(&l, 1000, 0, 0, "a");
	add(&l, 3000, 1, 1, "e");
	add(&l, 2000, 1, 0, "b");
	add(&l, 3000, 0, 2, "d");
	log_merge(&l, 100);
	assert_int_equal(l.n, 5);
	assert_string_equal(l.v[0].revision, "a");
	assert_string_equal(l.v[1].revision, "b");
	assert_string_equal(l.v[2].revision, "c");
	assert_string_equal(l.v[3].revision, "d");
	assert_string_equal(l.v[4].revision, "e");

	/* The newest N, still oldest first. */
	log_merge(&l, 2);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].revision, "d");
	assert_string_equal(l.v[1].revision, "e");
	log_merge(&l, 0);
	assert_int_equal(l.n, 0);
	log_list_release(&l);
	log_merge(&l, 5);
	assert_int_equal(l.n, 0);
}

/* ---- log_read_script, run here ---- */

static void
test_script_reads_the_last_lines(void **state)
{
	char dir[64];
	struct buf cmd = BUF_INIT, out = BUF_INIT, path = BUF_INIT;
	struct log_list list = { NULL, 0 };
	struct log_skips sk;
	FILE *f;
	int i;

	(void)state;
	run_sh_tmpdir(dir, sizeof(dir), "test-logread");
	log_read_script(&cmd, dir, 3);
	assert_int_equal(run_sh(dir, buf_str(&cmd), &out, NULL), 0);
	assert_string_equal(buf_str(&out), "none\n");

	buf_addf(&path, "%s/.relflip", dir);
	assert_int_equal(mkdir(buf_str(&path), 0755), 0);
	buf_adds(&path, "/log.jsonl");
	f = fopen(buf_str(&path), "w");
	assert_non_null(f);
	for (i = 1; i <= 5; i++)
		fprintf(f, "{\"time\": %d, \"command\": \"deploy\"}\n", i);
	for (i = 0; i < LOG_LINE_MAX + 1; i++)
		fputc('x', f);
	fputs("\n{\"time\": 9, \"comm", f);
	fclose(f);

	buf_reset(&out);
	assert_int_equal(run_sh(dir, buf_str(&cmd), &out, NULL), 0);
	log_reply_parse(buf_str(&out), "web1", 0, &list, &sk);
	/* 3 lines: the fifth, the long one, the torn one. */
	assert_int_equal(list.n, 1);
	assert_true(list.v[0].time_ms == 5000);
	assert_int_equal(sk.too_long, 1);
	assert_int_equal(sk.skipped, 1);
	assert_int_equal(sk.torn, 1);
	log_list_release(&list);

	/* The torn line completed: whole again. */
	f = fopen(buf_str(&path), "a");
	assert_non_null(f);
	fputs("and\": \"deploy\"}\n", f);
	fclose(f);
	buf_reset(&out);
	assert_int_equal(run_sh(dir, buf_str(&cmd), &out, NULL), 0);
	log_reply_parse(buf_str(&out), "web1", 0, &list, &sk);
	assert_int_equal(list.n, 2);
	assert_true(list.v[1].time_ms == 9000);
	assert_int_equal(sk.torn, 0);
	assert_int_equal(sk.skipped, 0);
	log_list_release(&list);

	run_sh_rmdir(dir);
	buf_release(&cmd);
	buf_release(&out);
	buf_release(&path);
}

static void
test_script_quotes_the_app_path(void **state)
{
	struct buf cmd = BUF_INIT;

	(void)state;
	log_read_script(&cmd, "/srv/it's $(app)", 20);
	assert_non_null(strstr(buf_str(&cmd),
			       "F='/srv/it'\\''s $(app)/.relflip/log.jsonl'"));
	assert_non_null(strstr(buf_str(&cmd), "tail -n 20 "));
	buf_release(&cmd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_what_fleet_log_begin_writes),
		cmocka_unit_test(test_parse_extras_of_unlock_prune_lock),
		cmocka_unit_test(test_parse_time_forms),
		cmocka_unit_test(test_parse_refuses_what_is_not_a_log_line),
		cmocka_unit_test(
		    test_parse_truncates_long_fields_and_ignores_wrong_types),
		cmocka_unit_test(test_reply_lines_hosts_and_order),
		cmocka_unit_test(test_reply_torn_last_line),
		cmocka_unit_test(test_merge_by_time_then_host_then_line),
		cmocka_unit_test(test_script_reads_the_last_lines),
		cmocka_unit_test(test_script_quotes_the_app_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
