/*
 * The layout probe: layout_parse on sample probe outputs, layout_target_id
 * on the forms a `current` link takes, and the probe script itself run
 * with /bin/sh against a temporary directory, its output parsed.
 */

#include <sys/stat.h>
#include <sys/wait.h>

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
#include "layout.h"
#include "record.h"

static int
has(const struct strlist *l, const char *s)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		if (strcmp(l->v[i], s) == 0)
			return 1;
	}
	return 0;
}

static void
test_missing_app_with_ancestor(void **state)
{
	struct layout_state st;

	(void)state;
	layout_parse("now=1767225600\n"
		     "app=0\n"
		     "ancestor=/srv\n"
		     "writable=1\n"
		     "current=none\n",
		     &st);
	assert_true(st.server_now == 1767225600LL);
	assert_int_equal(st.app_exists, 0);
	assert_int_equal(st.app_is_dir, 0);
	assert_int_equal(st.writable, 1);
	assert_string_equal(st.ancestor, "/srv");
	assert_int_equal(st.current, CURRENT_NONE);
	assert_string_equal(st.current_id, "");
	assert_int_equal(st.nreleases, -1);
	assert_int_equal(st.lock.held, 0);
	assert_string_equal(st.missing_tools, "");
	assert_int_equal(st.records.n, 0);
	layout_state_release(&st);

	/* A read-only ancestor. */
	layout_parse("app=0\nancestor=/\nwritable=0\ncurrent=none\n", &st);
	assert_string_equal(st.ancestor, "/");
	assert_int_equal(st.writable, 0);
	layout_state_release(&st);
}

static void
test_link_current(void **state)
{
	struct layout_state st;

	(void)state;
	layout_parse("now=1\napp=1\ndir=1\nwritable=1\n"
		     "target=releases/abc\ncurrent=link\nreleases=3\n",
		     &st);
	assert_int_equal(st.app_exists, 1);
	assert_int_equal(st.app_is_dir, 1);
	assert_int_equal(st.writable, 1);
	assert_int_equal(st.current, CURRENT_LINK);
	assert_string_equal(st.current_target, "releases/abc");
	assert_string_equal(st.current_id, "abc");
	assert_int_equal(st.nreleases, 3);
	layout_state_release(&st);

	/* Capistrano's absolute target names the release too. */
	layout_parse("app=1\ndir=1\ntarget=/var/www/app/releases/"
		     "20240101120000\ncurrent=link\nreleases=0\n",
		     &st);
	assert_int_equal(st.current, CURRENT_LINK);
	assert_string_equal(st.current_id, "20240101120000");
	assert_int_equal(st.nreleases, 0);
	layout_state_release(&st);

	/* A link somewhere else: no release id. */
	layout_parse("app=1\ndir=1\ntarget=/opt/elsewhere\ncurrent=link\n",
		     &st);
	assert_int_equal(st.current, CURRENT_LINK);
	assert_string_equal(st.current_target, "/opt/elsewhere");
	assert_string_equal(st.current_id, "");
	layout_state_release(&st);
}

static void
test_dangling_current(void **state)
{
	struct layout_state st;

	(void)state;
	layout_parse("app=1\ndir=1\ntarget=releases/gone\ncurrent=dangling\n",
		     &st);
	assert_int_equal(st.current, CURRENT_DANGLING);
	assert_string_equal(st.current_target, "releases/gone");
	assert_string_equal(st.current_id, "gone");
	layout_state_release(&st);
}

static void
test_real_dir_and_other_current(void **state)
{
	struct layout_state st;

	(void)state;
	layout_parse("app=1\ndir=1\ncurrent=dir\n", &st);
	assert_int_equal(st.current, CURRENT_DIR);
	assert_string_equal(st.current_id, "");
	layout_state_release(&st);

	layout_parse("app=1\ndir=1\ncurrent=other\n", &st);
	assert_int_equal(st.current, CURRENT_OTHER);
	layout_state_release(&st);

	/* The app path is a file. */
	layout_parse("app=1\ndir=0\nwritable=0\ncurrent=none\n", &st);
	assert_int_equal(st.app_exists, 1);
	assert_int_equal(st.app_is_dir, 0);
	assert_int_equal(st.writable, 0);
	layout_state_release(&st);

	/* A target line with a current that is no link is not an id. */
	layout_parse("target=releases/abc\ncurrent=dir\n", &st);
	assert_string_equal(st.current_id, "");
	layout_state_release(&st);
}

static void
test_lock_held_with_info(void **state)
{
	struct layout_state st;

	(void)state;
	layout_parse("now=1767229200\napp=1\ndir=1\ncurrent=none\n"
		     "lock=1\n"
		     "lock_renewed=1767229100\n"
		     "lock_user=octocat@ci-7\n"
		     "lock_runner=ci-7\n"
		     "lock_pid=4242\n"
		     "lock_run_url=https://github.com/o/r/actions/runs/9?a=b\n"
		     "lock_revision=3f2c1ab\n"
		     "lock_command=deploy\n"
		     "lock_token=00112233445566778899aabbccddeeff\n"
		     "lock_since=1767225600\n",
		     &st);
	assert_int_equal(st.lock.held, 1);
	assert_true(st.lock.renewed == 1767229100LL);
	assert_true(st.lock.since == 1767225600LL);
	assert_string_equal(st.lock.user, "octocat@ci-7");
	assert_string_equal(st.lock.runner, "ci-7");
	assert_string_equal(st.lock.pid, "4242");
	/* Only the first '=' splits key from value. */
	assert_string_equal(st.lock.run_url,
			    "https://github.com/o/r/actions/runs/9?a=b");
	assert_string_equal(st.lock.revision, "3f2c1ab");
	assert_string_equal(st.lock.command, "deploy");
	layout_state_release(&st);

	/* Without since (an info file cut short): renewed stands in. */
	layout_parse("lock=1\nlock_renewed=1767229100\n", &st);
	assert_int_equal(st.lock.held, 1);
	assert_true(st.lock.since == 1767229100LL);
	assert_string_equal(st.lock.user, "");
	layout_state_release(&st);

	/* Over-long values are cut to fit, never overflow. */
	{
		struct buf b = BUF_INIT;
		size_t i;

		buf_adds(&b, "lock=1\nlock_pid=");
		for (i = 0; i < 200; i++)
			buf_addch(&b, '9');
		buf_adds(&b, "\nlock_user=");
		for (i = 0; i < 300; i++)
			buf_addch(&b, 'u');
		buf_addch(&b, '\n');
		layout_parse(buf_str(&b), &st);
		assert_int_equal(strlen(st.lock.pid), sizeof(st.lock.pid) - 1);
		assert_int_equal(strlen(st.lock.user),
				 sizeof(st.lock.user) - 1);
		layout_state_release(&st);
		buf_release(&b);
	}
}

static void
test_missing_tools(void **state)
{
	struct layout_state st;

	(void)state;
	layout_parse("app=1\nmissing=timeout\nmissing=sha256sum\n"
		     "missing=mv-T\n",
		     &st);
	assert_string_equal(st.missing_tools, "timeout sha256sum mv -T");
	layout_state_release(&st);

	layout_parse("app=1\nmissing=mv-T\n", &st);
	assert_string_equal(st.missing_tools, "mv -T");
	layout_state_release(&st);
}

static void
test_records_and_release_dirs(void **state)
{
	struct layout_state st;
	struct release_record *r;

	(void)state;
	layout_parse(
	    "app=1\ndir=1\ntarget=releases/b2\ncurrent=link\nreleases=6\n"
	    /* a record before its directory */
	    "record={\"id\": \"a1\", \"status\": \"good\", \"ref\": "
	    "\"refs/heads/x=y\", \"activated\": \"2026-01-01T00:00:00Z\"}\n"
	    "rdir=a1\n"
	    /* a directory before its record */
	    "rdir=b2\n"
	    "record={\"id\": \"b2\", \"status\": \"live\"}\n"
	    /* a record whose directory is gone */
	    "record={\"id\": \"c3\", \"status\": \"bad\", \"reason\": "
	    "\"health check failed\"}\n"
	    /* a directory without a record (made by hand) */
	    "rdir=d4\n"
	    /* left by an interrupted unpack */
	    "rdir=.tmp-e5-00112233445566778899aabbccddeeff\n"
	    /* names that are no release id */
	    "rdir=.git\n"
	    "rdir=my app\n"
	    /* records that are not records */
	    "record={\"id\": \"../../etc\"}\n"
	    "record=garbage\n"
	    "record=\n"
	    "incoming=f6.0123456789ab.tar\n"
	    "incoming=f6.0123456789ab.tar.sum\n",
	    &st);

	assert_int_equal(st.current, CURRENT_LINK);
	assert_string_equal(st.current_id, "b2");
	assert_int_equal(st.records.n, 4);

	r = record_find(&st.records, "a1");
	assert_non_null(r);
	assert_int_equal(r->status, RS_GOOD);
	assert_int_equal(r->has_record, 1);
	assert_int_equal(r->has_dir, 1);
	assert_string_equal(r->ref, "refs/heads/x=y");
	assert_true(r->activated == 1767225600000LL);

	r = record_find(&st.records, "b2");
	assert_non_null(r);
	assert_int_equal(r->status, RS_LIVE);
	assert_int_equal(r->has_record, 1);
	assert_int_equal(r->has_dir, 1);

	r = record_find(&st.records, "c3");
	assert_non_null(r);
	assert_int_equal(r->status, RS_BAD);
	assert_int_equal(r->has_record, 1);
	assert_int_equal(r->has_dir, 0);
	assert_string_equal(r->reason, "health check failed");

	r = record_find(&st.records, "d4");
	assert_non_null(r);
	assert_int_equal(r->status, RS_UNKNOWN);
	assert_int_equal(r->has_record, 0);
	assert_int_equal(r->has_dir, 1);

	assert_int_equal(st.tmpdirs.n, 1);
	assert_true(
	    has(&st.tmpdirs, ".tmp-e5-00112233445566778899aabbccddeeff"));
	assert_int_equal(st.foreign.n, 2);
	assert_true(has(&st.foreign, ".git"));
	assert_true(has(&st.foreign, "my app"));
	assert_null(record_find(&st.records, ".tmp-e5-00112233445566778899"
					     "aabbccddeeff"));
	assert_null(record_find(&st.records, "my app"));
	assert_int_equal(st.incoming.n, 2);
	assert_true(has(&st.incoming, "f6.0123456789ab.tar"));
	layout_state_release(&st);
	assert_int_equal(st.records.n, 0);
	assert_int_equal(st.foreign.n, 0);
	assert_int_equal(st.tmpdirs.n, 0);
	assert_int_equal(st.incoming.n, 0);
}

static void
test_parse_odd_text(void **state)
{
	struct layout_state st;

	(void)state;
	/* Empty, lines without '=', unknown keys, no final newline. */
	layout_parse("", &st);
	assert_int_equal(st.nreleases, -1);
	assert_int_equal(st.current, CURRENT_NONE);
	layout_state_release(&st);

	layout_parse("hello\n\nwho=me\nmotd banner from the server\n"
		     "app=1\ndir=1\ncurrent=link\ntarget=releases/z9",
		     &st);
	assert_int_equal(st.app_exists, 1);
	assert_int_equal(st.current, CURRENT_LINK);
	assert_string_equal(st.current_id, "z9");
	layout_state_release(&st);

	/* A state reused after release is clean. */
	layout_parse("rdir=x1\nrdir=.tmp-x\nincoming=x\n", &st);
	layout_state_release(&st);
	layout_parse("app=0\n", &st);
	assert_int_equal(st.records.n, 0);
	assert_int_equal(st.tmpdirs.n, 0);
	layout_state_release(&st);
}

/* Found by fuzzing: a file time * 1000 overflowed, undefined behaviour. */
static void
test_parse_utime_out_of_range(void **state)
{
	struct layout_state st;

	(void)state;
	layout_parse("utime=r1 9223372036854775807\n"
		     "utime=r2 -9223372036854775808\nutime=r3 1767225600\n",
		     &st);
	assert_int_equal(st.records.n, 3);
	assert_true(record_find(&st.records, "r1")->created == 0);
	assert_true(record_find(&st.records, "r2")->created == 0);
	assert_true(record_find(&st.records, "r3")->created == 1767225600000LL);
	layout_state_release(&st);
}

static void
test_target_id_forms(void **state)
{
	char id[65];

	(void)state;
	assert_string_equal(layout_target_id("releases/abc", id, sizeof(id)),
			    "abc");
	assert_string_equal(layout_target_id("./releases/abc", id, sizeof(id)),
			    "abc");
	assert_string_equal(
	    layout_target_id("/srv/app/releases/3f2c1ab", id, sizeof(id)),
	    "3f2c1ab");
	assert_string_equal(layout_target_id("releases/abc/", id, sizeof(id)),
			    "abc");
	assert_string_equal(
	    layout_target_id("../app/releases/v1.2.3-rc_1", id, sizeof(id)),
	    "v1.2.3-rc_1");

	assert_null(layout_target_id("", id, sizeof(id)));
	assert_null(layout_target_id("abc", id, sizeof(id)));
	assert_null(layout_target_id("releases/", id, sizeof(id)));
	assert_null(layout_target_id("releases", id, sizeof(id)));
	assert_null(layout_target_id("myreleases/abc", id, sizeof(id)));
	assert_null(layout_target_id("/srv/oldreleases/abc", id, sizeof(id)));
	assert_null(layout_target_id("releases/a/b", id, sizeof(id)));
	assert_null(layout_target_id("releases/.tmp-abc-0011", id, sizeof(id)));
	assert_null(layout_target_id("releases/..", id, sizeof(id)));
	assert_null(layout_target_id("releases/a b", id, sizeof(id)));
	assert_null(layout_target_id("/opt/other", id, sizeof(id)));
}

/*
 * Found by fuzzing: a target that names no id left its text in current_id
 * (layout.h: the id, or ""), and a name past 64 bytes was cut to a valid
 * id, another release.
 */
static void
test_current_id_only_a_whole_id(void **state)
{
	struct layout_state st;
	char id[65], target[128];

	(void)state;
	layout_parse("current=link\ntarget=releases/a b\n", &st);
	assert_string_equal(st.current_id, "");
	layout_state_release(&st);
	layout_parse("current=dangling\ntarget=releases/r1/.\n", &st);
	assert_string_equal(st.current_id, "");
	layout_state_release(&st);

	snprintf(target, sizeof(target), "releases/%070d", 7);
	assert_null(layout_target_id(target, id, sizeof(id)));
	assert_string_equal(id, "");
	snprintf(target, sizeof(target), "releases/%064d/", 7);
	assert_non_null(layout_target_id(target, id, sizeof(id)));
	assert_int_equal(strlen(id), 64);
}

/*
 * BUG (src/layout.c, layout_target_id): it takes the FIRST "releases/" in
 * the target, so an absolute target under an app path that itself holds a
 * "releases/" component (current -> /srv/releases/shop/releases/abc, as
 * Capistrano writes it) yields "shop/releases/abc", which is no id: the
 * live release is then unknown. Fix: match the last "releases/" (a
 * reverse search), or check that the rest after the match is one id.
 */
static void
test_target_id_app_path_with_releases(void **state)
{
	char id[65];

	(void)state;
	assert_non_null(layout_target_id("/srv/releases/shop/releases/abc", id,
					 sizeof(id)));
	assert_string_equal(id, "abc");
}

/* ---- the probe script, run for real ---- */

static char tmp[64];

static void
sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

/* Run script with /bin/sh -c, its stdout into out; returns the status. */
static int
run_sh(const char *script, struct buf *out)
{
	char b[4096];
	FILE *p;
	size_t n;
	int st;
	struct buf cmd = BUF_INIT;
	char path[128];
	FILE *f;

	/* Through a file: the script is longer than a command line wants. */
	snprintf(path, sizeof(path), "%s/probe.sh", tmp);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(script, f);
	fclose(f);
	buf_addf(&cmd, "/bin/sh '%s'", path);
	p = popen(buf_str(&cmd), "r");
	assert_non_null(p);
	while ((n = fread(b, 1, sizeof(b), p)) > 0)
		buf_add(out, b, n);
	st = pclose(p);
	buf_release(&cmd);
	unlink(path);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
probe_setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/test-layout-XXXXXX");
	assert_non_null(mkdtemp(tmp));
	return 0;
}

static int
probe_teardown(void **state)
{
	(void)state;
	sh("rm -rf '%s'", tmp);
	return 0;
}

static void
test_probe_script_missing_app(void **state)
{
	struct buf cmd = BUF_INIT, out = BUF_INIT;
	struct layout_state st;
	char app[256];

	(void)state;
	snprintf(app, sizeof(app), "%s/srv/it's $(touch %s/pwned) app", tmp,
		 tmp);
	layout_probe_script(&cmd, app, LAYOUT_RECORDS, NULL);
	assert_int_equal(run_sh(buf_str(&cmd), &out), 0);
	layout_parse(buf_str(&out), &st);
	assert_true(st.server_now > 1700000000LL);
	assert_int_equal(st.app_exists, 0);
	assert_string_equal(st.ancestor, tmp);
	assert_int_equal(st.writable, 1);
	assert_int_equal(st.current, CURRENT_NONE);
	assert_int_equal(st.nreleases, -1);
	assert_int_equal(st.lock.held, 0);
	assert_int_equal(st.records.n, 0);
	/* Probing changes nothing: no app dir, no probe dir left. */
	assert_int_equal(access(app, F_OK), -1);
	sh("test -z \"$(ls -A '%s')\"", tmp);
	layout_state_release(&st);
	buf_release(&cmd);
	buf_release(&out);
}

static void
test_probe_script_deployed_app(void **state)
{
	struct buf cmd = BUF_INIT, out = BUF_INIT;
	struct layout_state st;
	struct release_record *r;
	char app[256];

	(void)state;
	snprintf(app, sizeof(app), "%s/app", tmp);
	sh("mkdir -p '%s' && cd '%s' && mkdir -p releases/r1 releases/r2 "
	   "'releases/not an id' "
	   "releases/.tmp-r3-tok shared .relflip/releases .relflip/incoming "
	   ".relflip/lock && ln -s releases/r2 current && "
	   "printf '{\"id\": \"r1\", \"status\": \"good\"}\\n' > "
	   ".relflip/releases/r1.json && "
	   "printf '{\"id\": \"r2\", \"status\": \"live\"}\\n' > "
	   ".relflip/releases/r2.json && "
	   "printf '{\"id\": \"gone\", \"status\": \"bad\"}\\n' > "
	   ".relflip/releases/gone.json && "
	   ": > .relflip/incoming/r3.0123456789ab.tar && "
	   "printf 'user=me@box\\nrunner=box\\npid=77\\nrevision=r3\\n"
	   "command=deploy\\nsince=1767225600\\ntoken=t\\n' > "
	   ".relflip/lock/info",
	   app, app);
	layout_probe_script(&cmd, app, LAYOUT_RECORDS, NULL);
	assert_int_equal(run_sh(buf_str(&cmd), &out), 0);
	layout_parse(buf_str(&out), &st);
	assert_int_equal(st.app_exists, 1);
	assert_int_equal(st.app_is_dir, 1);
	assert_int_equal(st.writable, 1);
	assert_int_equal(st.current, CURRENT_LINK);
	assert_string_equal(st.current_target, "releases/r2");
	assert_string_equal(st.current_id, "r2");
	assert_int_equal(st.nreleases, 4);
	assert_int_equal(st.lock.held, 1);
	assert_string_equal(st.lock.user, "me@box");
	assert_string_equal(st.lock.pid, "77");
	assert_string_equal(st.lock.revision, "r3");
	assert_string_equal(st.lock.command, "deploy");
	assert_true(st.lock.since == 1767225600LL);
	assert_true(st.lock.renewed > 1700000000LL);

	r = record_find(&st.records, "r1");
	assert_non_null(r);
	assert_int_equal(r->status, RS_GOOD);
	assert_int_equal(r->has_dir, 1);
	r = record_find(&st.records, "r2");
	assert_non_null(r);
	assert_int_equal(r->status, RS_LIVE);
	assert_int_equal(r->has_dir, 1);
	r = record_find(&st.records, "gone");
	assert_non_null(r);
	assert_int_equal(r->has_dir, 0);
	assert_true(has(&st.tmpdirs, ".tmp-r3-tok"));
	assert_true(has(&st.foreign, "not an id"));
	assert_true(has(&st.incoming, "r3.0123456789ab.tar"));
	layout_state_release(&st);

	/* current made dangling, then a real directory. */
	sh("cd '%s' && rm -rf releases/r2", app);
	buf_reset(&out);
	assert_int_equal(run_sh(buf_str(&cmd), &out), 0);
	layout_parse(buf_str(&out), &st);
	assert_int_equal(st.current, CURRENT_DANGLING);
	assert_string_equal(st.current_id, "r2");
	layout_state_release(&st);

	sh("cd '%s' && rm current && mkdir current", app);
	buf_reset(&out);
	assert_int_equal(run_sh(buf_str(&cmd), &out), 0);
	layout_parse(buf_str(&out), &st);
	assert_int_equal(st.current, CURRENT_DIR);
	assert_string_equal(st.current_id, "");
	layout_state_release(&st);

	buf_release(&cmd);
	buf_release(&out);
}

/*
 * BUG (src/layout.c, layout_parse, the "utime=" line added in 04b6ac6,
 * around line 213): the probe prints "utime=<name> <mtime>" for
 * every directory under releases/ without a record, and the parser splits
 * at the FIRST space. A foreign directory named "not an id" thus yields
 * the release id "not" -- a phantom release with no directory that
 * `releases` lists and `prune --adopt` would try to remove. Fix: split at
 * the last space (strrchr), since the name may hold spaces and the time
 * cannot, and keep release_id_valid on the whole name.
 */
static void
test_probe_foreign_dir_is_no_release(void **state)
{
	struct buf cmd = BUF_INIT, out = BUF_INIT;
	struct layout_state st;
	char app[256];

	(void)state;
	snprintf(app, sizeof(app), "%s/app", tmp);
	sh("mkdir -p '%s/releases/not an id' '%s/releases/r1'", app, app);
	layout_probe_script(&cmd, app, LAYOUT_RECORDS, NULL);
	assert_int_equal(run_sh(buf_str(&cmd), &out), 0);
	layout_parse(buf_str(&out), &st);
	assert_true(has(&st.foreign, "not an id"));
	assert_null(record_find(&st.records, "not"));
	assert_int_equal(st.records.n, 1);
	assert_non_null(record_find(&st.records, "r1"));
	layout_state_release(&st);
	buf_release(&cmd);
	buf_release(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing_app_with_ancestor),
		cmocka_unit_test(test_link_current),
		cmocka_unit_test(test_dangling_current),
		cmocka_unit_test(test_real_dir_and_other_current),
		cmocka_unit_test(test_lock_held_with_info),
		cmocka_unit_test(test_missing_tools),
		cmocka_unit_test(test_records_and_release_dirs),
		cmocka_unit_test(test_parse_odd_text),
		cmocka_unit_test(test_parse_utime_out_of_range),
		cmocka_unit_test(test_target_id_forms),
		cmocka_unit_test(test_current_id_only_a_whole_id),
		cmocka_unit_test(test_target_id_app_path_with_releases),
		cmocka_unit_test_setup_teardown(test_probe_script_missing_app,
						probe_setup, probe_teardown),
		cmocka_unit_test_setup_teardown(test_probe_script_deployed_app,
						probe_setup, probe_teardown),
		cmocka_unit_test_setup_teardown(
		    test_probe_foreign_dir_is_no_release, probe_setup,
		    probe_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
