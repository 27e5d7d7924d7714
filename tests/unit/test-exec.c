/*
 * relflip exec's pure parts (exec.h): the words joined so that a shell
 * runs exactly them, the script run with /bin/sh on an app here (its
 * directory and its RELFLIP_* variables), and the run's exit code.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exec.h"
#include "quote.h"
#include "fakes/run-sh.h"

static void
test_join_quotes_each_word(void **state)
{
	const char *argv[] = { "ls", "-la", "my dir", "it's", "" };
	struct buf b = BUF_INIT;

	(void)state;
	exec_join(&b, 5, argv);
	assert_string_equal(buf_str(&b), "'ls' '-la' 'my dir' 'it'\\''s' ''");
	buf_release(&b);
}

static void
test_joined_words_run_exactly_as_given(void **state)
{
	const char *argv[] = { "printf", "<%s>\\n", "a  b", "it's", "$HOME",
			       "`id`",   "$(id)",   ";",    "*",    "\\",
			       "\"q\"",  "-H",      "" };
	char dir[64];
	struct buf line = BUF_INIT, script = BUF_INIT, out = BUF_INIT;

	(void)state;
	run_sh_tmpdir(dir, sizeof(dir), "test-exec");
	exec_join(&line, sizeof(argv) / sizeof(argv[0]), argv);
	buf_adds(&script, "sh -c ");
	sh_quote(&script, buf_str(&line));
	assert_int_equal(run_sh(dir, buf_str(&script), &out, NULL), 0);
	assert_string_equal(buf_str(&out), "<a  b>\n<it's>\n<$HOME>\n<`id`>\n"
					   "<$(id)>\n<;>\n<*>\n<\\>\n<\"q\">\n"
					   "<-H>\n<>\n");
	run_sh_rmdir(dir);
	buf_release(&line);
	buf_release(&script);
	buf_release(&out);
}

static void
test_script_runs_in_current_with_the_variables(void **state)
{
	char dir[64];
	const char *argv[] = { "sh", "-c",
			       "pwd; echo \"$RELFLIP_RELEASE_PATH|"
			       "$RELFLIP_REVISION|$RELFLIP_APP_PATH|"
			       "$RELFLIP_HOST|$RELFLIP_PREVIOUS_REVISION\"; "
			       "cat REVISION; exit 7" };
	struct buf app = BUF_INIT, line = BUF_INIT, script = BUF_INIT;
	struct buf out = BUF_INIT, want = BUF_INIT, setup = BUF_INIT;
	struct step_env env;

	(void)state;
	run_sh_tmpdir(dir, sizeof(dir), "test-exec");
	buf_addf(&app, "%s/it's app", dir);
	buf_adds(&setup, "A=");
	sh_quote(&setup, buf_str(&app));
	buf_adds(&setup, "; mkdir -p \"$A/releases/v2\" && echo v2 > "
			 "\"$A/releases/v2/REVISION\" && "
			 "ln -s releases/v2 \"$A/current\"");
	assert_int_equal(run_sh(dir, buf_str(&setup), NULL, NULL), 0);

	env.app = buf_str(&app);
	env.release = "v2";
	env.previous = "v1";
	env.host = "web 1";
	exec_join(&line, 3, argv);
	exec_script(&script, &env, buf_str(&line));
	assert_int_equal(run_sh(dir, buf_str(&script), &out, NULL), 7);
	buf_addf(&want, "%s/current\n%s/releases/v2|v2|%s|web 1|v1\nv2\n",
		 buf_str(&app), buf_str(&app), buf_str(&app));
	assert_string_equal(buf_str(&out), buf_str(&want));

	/* No rollback target: the variable is there, empty. */
	env.previous = NULL;
	buf_reset(&script);
	buf_reset(&out);
	exec_script(&script, &env,
		    "printf '[%s]' \"$RELFLIP_PREVIOUS_REVISION\"");
	assert_int_equal(run_sh(dir, buf_str(&script), &out, NULL), 0);
	assert_string_equal(buf_str(&out), "[]");

	run_sh_rmdir(dir);
	buf_release(&app);
	buf_release(&line);
	buf_release(&script);
	buf_release(&out);
	buf_release(&want);
	buf_release(&setup);
}

static void
test_worst_host(void **state)
{
	struct exec_host v[4];

	(void)state;
	memset(v, 0, sizeof(v));
	assert_int_equal(exec_worst(v, 0), 0);
	assert_int_equal(exec_worst(v, 4), 0);
	v[1].code = 3;
	assert_int_equal(exec_worst(v, 4), 3);
	v[2].code = 4; /* unreachable */
	assert_int_equal(exec_worst(v, 4), 4);
	v[3].code = 6; /* nothing live */
	assert_int_equal(exec_worst(v, 4), 6);
	v[0].code = 127;
	assert_int_equal(exec_worst(v, 4), 127);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_join_quotes_each_word),
		cmocka_unit_test(test_joined_words_run_exactly_as_given),
		cmocka_unit_test(
		    test_script_runs_in_current_with_the_variables),
		cmocka_unit_test(test_worst_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
