/*
 * relflip setup's script (setup.h), run with /bin/sh on an app path
 * here: what a first run creates, that a second changes nothing, the
 * missing shared files, a file in the way; and the reply's parser.
 */

#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "setup.h"
#include "quote.h"
#include "fakes/run-sh.h"

struct fx {
	char dir[64];
	char app[128];
	struct conf conf;
};

static int
fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	run_sh_tmpdir(fx->dir, sizeof(fx->dir), "test-setup");
	snprintf(fx->app, sizeof(fx->app), "%s/srv/it's app", fx->dir);
	fx->conf.app_path = fx->app;
	strlist_add(&fx->conf.shared_dirs, "uploads");
	strlist_add(&fx->conf.shared_dirs, "log/archive");
	strlist_add(&fx->conf.shared_files, ".env");
	strlist_add(&fx->conf.shared_files, "config/db.yml");
	*state = fx;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx *fx = *state;

	run_sh_rmdir(fx->dir);
	strlist_free(&fx->conf.shared_dirs);
	strlist_free(&fx->conf.shared_files);
	free(fx);
	return 0;
}

static int
is_dir(const char *app, const char *rel)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", app, rel);
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Run the script; its reply parsed into res. */
static int
run_setup(struct fx *fx, struct setup_result *res, struct buf *err)
{
	struct buf cmd = BUF_INIT, out = BUF_INIT;
	int st;

	setup_script(&cmd, &fx->conf);
	st = run_sh(fx->dir, buf_str(&cmd), &out, err);
	setup_reply_parse(buf_str(&out), res);
	buf_release(&cmd);
	buf_release(&out);
	return st;
}

static void
test_first_run_creates_second_changes_nothing(void **state)
{
	static const char *const dirs[] = {
		".",
		"releases",
		"shared",
		".relflip",
		".relflip/releases",
		".relflip/incoming",
		"shared/uploads",
		"shared/log/archive",
	};
	struct fx *fx = *state;
	struct setup_result res = { NULL, 0 };
	size_t i;

	assert_int_equal(run_setup(fx, &res, NULL), 0);
	assert_int_equal(res.n, 10);
	for (i = 0; i < 8; i++) {
		assert_string_equal(res.v[i].path, dirs[i]);
		assert_int_equal(res.v[i].action, SETUP_CREATED);
		assert_true(is_dir(fx->app, dirs[i]));
	}
	assert_string_equal(res.v[8].path, "shared/.env");
	assert_int_equal(res.v[8].action, SETUP_MISSING);
	assert_string_equal(res.v[9].path, "shared/config/db.yml");
	assert_int_equal(res.v[9].action, SETUP_MISSING);
	assert_false(is_dir(fx->app, "shared/config"));
	assert_int_equal(setup_count(&res, SETUP_CREATED), 8);
	setup_result_release(&res);

	assert_int_equal(run_setup(fx, &res, NULL), 0);
	assert_int_equal(setup_count(&res, SETUP_CREATED), 0);
	assert_int_equal(setup_count(&res, SETUP_EXISTS), 8);
	assert_int_equal(setup_count(&res, SETUP_MISSING), 2);
	setup_result_release(&res);
}

static void
test_a_file_in_the_way_stops_it(void **state)
{
	struct fx *fx = *state;
	struct setup_result res = { NULL, 0 };
	struct buf err = BUF_INIT, p = BUF_INIT;
	FILE *f;

	assert_int_equal(run_setup(fx, &res, NULL), 0);
	setup_result_release(&res);
	buf_addf(&p, "%s/shared/uploads", fx->app);
	assert_int_equal(rmdir(buf_str(&p)), 0);
	f = fopen(buf_str(&p), "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(run_setup(fx, &res, &err), 76);
	assert_non_null(strstr(buf_str(&err), "shared/uploads is there but is "
					      "not a directory"));
	/* What came before it was reported. */
	assert_int_equal(setup_count(&res, SETUP_EXISTS), 6);
	setup_result_release(&res);
	buf_release(&err);
	buf_release(&p);
}

static void
test_a_link_to_a_directory_is_there(void **state)
{
	struct fx *fx = *state;
	struct setup_result res = { NULL, 0 };
	struct buf cmd = BUF_INIT;

	/* releases/ on another volume, through a link: left as it is. */
	buf_adds(&cmd, "A=");
	sh_quote(&cmd, fx->app);
	buf_addf(&cmd,
		 "; mkdir -p \"$A\" '%s/elsewhere' && ln -s "
		 "'%s/elsewhere' \"$A/releases\"",
		 fx->dir, fx->dir);
	assert_int_equal(run_sh(fx->dir, buf_str(&cmd), NULL, NULL), 0);
	assert_int_equal(run_setup(fx, &res, NULL), 0);
	assert_string_equal(res.v[1].path, "releases");
	assert_int_equal(res.v[1].action, SETUP_EXISTS);
	setup_result_release(&res);
	buf_release(&cmd);
}

static void
test_reply_parse_skips_what_it_does_not_know(void **state)
{
	struct setup_result res = { NULL, 0 };

	(void)state;
	setup_reply_parse(
	    "created releases\nexists shared\nmissing shared/a b\n"
	    "creatednospace\nbogus x\ncreated \n\nexists .",
	    &res);
	assert_int_equal(res.n, 4);
	assert_string_equal(res.v[2].path, "shared/a b");
	assert_int_equal(res.v[2].action, SETUP_MISSING);
	assert_string_equal(res.v[3].path, ".");
	assert_string_equal(setup_action_name(SETUP_CREATED), "created");
	setup_result_release(&res);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_first_run_creates_second_changes_nothing, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_a_file_in_the_way_stops_it,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_link_to_a_directory_is_there, fx_setup, fx_teardown),
		cmocka_unit_test(test_reply_parse_skips_what_it_does_not_know),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
