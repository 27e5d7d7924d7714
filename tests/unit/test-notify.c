/*
 * The end of a run told outside the servers (notify.h): who is told and
 * when, the webhook's text and payload (the result event, the same object
 * --json prints), the runner hooks' variables; and notify_run_end running
 * a runner hook on this machine and warning, never failing, when the hook
 * or the webhook fails.
 */

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "conf.h"
#include "error.h"
#include "fleet.h"
#include "json.h"
#include "notify.h"
#include "out.h"
#include "fakes/capture.h"

static int
setup(void **state)
{
	(void)state;
	memset(&out_cfg, 0, sizeof(out_cfg));
	interrupted = 0;
	return 0;
}

static struct notify_end
end_of(const char *command, int code)
{
	struct notify_end e = {
		.command = command,
		.status = code == 0 ? "ok"
			  : (code == RF_EXIT_HEALTH ||
			     code == RF_EXIT_ROLLBACK_FAILED)
			      ? "rolled_back"
			      : "failed",
		.code = code,
		.revision = "v2",
		.previous = "v1",
		.duration_ms = 2300,
		.hosts = 2,
		.app = "/srv/app",
		.actor = "alice",
		.run_url = "",
		.why = "",
		.changed = 1,
	};

	return e;
}

static char *
text_of(const struct notify_end *e)
{
	struct buf b = BUF_INIT;

	notify_text(e, &b);
	return buf_detach(&b, NULL);
}

/* ---- who is told, and when ---- */

static void
test_skip_interrupted_and_unchanged(void **state)
{
	struct notify_end e = end_of("deploy", RF_EXIT_INTERRUPTED);

	(void)state;
	assert_non_null(notify_skip(&e));
	assert_non_null(strstr(notify_skip(&e), "interrupted"));
	/* A rollback with nothing to do: ok, but nothing moved. */
	e = end_of("rollback", 0);
	e.changed = 0;
	assert_string_equal(notify_skip(&e), "nothing changed");
	e.changed = 1;
	assert_null(notify_skip(&e));
	/* A failure before any switch is still told. */
	e = end_of("deploy", RF_EXIT_HOOK);
	e.changed = 0;
	assert_null(notify_skip(&e));
	e = end_of("deploy", RF_EXIT_LOCKED);
	e.changed = 0;
	assert_null(notify_skip(&e));
}

static void
test_wanted_by_notify_on(void **state)
{
	struct conf c;
	struct notify_end ok = end_of("deploy", 0);
	struct notify_end back = end_of("deploy", RF_EXIT_HEALTH);
	struct notify_end failed = end_of("rollback", RF_EXIT_HOOK);

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_false(notify_wanted(&c, &failed));
	c.notify_url = (char *)"http://127.0.0.1:9/hook";
	c.notify_on = NOTIFY_ALWAYS;
	assert_true(notify_wanted(&c, &ok));
	assert_true(notify_wanted(&c, &back));
	assert_true(notify_wanted(&c, &failed));
	c.notify_on = NOTIFY_FAILURE;
	assert_false(notify_wanted(&c, &ok));
	assert_true(notify_wanted(&c, &back));
	assert_true(notify_wanted(&c, &failed));
}

static void
test_hook_by_command_and_result(void **state)
{
	struct conf c;
	struct notify_end e;
	const char *stage = NULL;

	(void)state;
	memset(&c, 0, sizeof(c));
	e = end_of("deploy", 0);
	assert_null(notify_hook(&c, &e, &stage));
	c.hook_after_deploy = (char *)"./tell-sentry";
	c.hook_on_failure = (char *)"./page";
	assert_string_equal(notify_hook(&c, &e, &stage), "./tell-sentry");
	assert_string_equal(stage, "after_deploy");
	/* after_deploy is a deploy's: a rollback that succeeds runs none. */
	e = end_of("rollback", 0);
	assert_null(notify_hook(&c, &e, &stage));
	e = end_of("deploy", RF_EXIT_HEALTH);
	assert_string_equal(notify_hook(&c, &e, &stage), "./page");
	assert_string_equal(stage, "on_failure");
	e = end_of("rollback", RF_EXIT_HOOK);
	assert_string_equal(notify_hook(&c, &e, &stage), "./page");
	e = end_of("deploy", RF_EXIT_CONNECT);
	assert_string_equal(notify_hook(&c, &e, &stage), "./page");
}

/* ---- the text ---- */

static void
test_text_deploy_ok(void **state)
{
	struct notify_end e = end_of("deploy", 0);
	char *s;

	(void)state;
	s = text_of(&e);
	assert_string_equal(s, "relflip deploy of v2 to /srv/app on 2 hosts by "
			       "alice: ok in 2.3 s (rollback target: v1)");
	free(s);
	/* The first deploy: nothing to go back to; one host. */
	e.previous = "";
	e.hosts = 1;
	e.run_url = "https://github.com/o/r/actions/runs/7";
	s = text_of(&e);
	assert_string_equal(s, "relflip deploy of v2 to /srv/app on 1 host by "
			       "alice: ok in 2.3 s · "
			       "https://github.com/o/r/actions/runs/7");
	free(s);
}

static void
test_text_failures_say_what_and_why(void **state)
{
	struct notify_end e = end_of("deploy", RF_EXIT_HEALTH);
	char *s;

	(void)state;
	e.why = "health check failed on web2: 503; switched back web1 web2";
	s = text_of(&e);
	assert_string_equal(s,
			    "relflip deploy of v2 to /srv/app on 2 hosts by "
			    "alice: rolled back to v1 (exit 8): health check "
			    "failed on web2: 503; switched back web1 web2");
	free(s);

	e = end_of("deploy", RF_EXIT_HOOK);
	e.why = "before_switch hook failed with exit 3 on web1";
	s = text_of(&e);
	assert_string_equal(s, "relflip deploy of v2 to /srv/app on 2 hosts by "
			       "alice: failed, current unchanged (exit 7): "
			       "before_switch hook failed with exit 3 on web1");
	free(s);

	e = end_of("deploy", RF_EXIT_ROLLBACK_FAILED);
	s = text_of(&e);
	assert_non_null(strstr(s, "the way back failed too: a person is "
				  "needed (exit 9)"));
	free(s);

	/* A rollback's own check failing switches back where it was. */
	e = end_of("rollback", RF_EXIT_HEALTH);
	e.revision = "v1";
	e.previous = "v2";
	s = text_of(&e);
	assert_string_equal(s, "relflip rollback of /srv/app to v1 on 2 hosts "
			       "by alice: switched back to v2 (exit 8)");
	free(s);

	/* Failed before the release id was known. */
	e = end_of("deploy", RF_EXIT_USAGE);
	e.revision = "";
	s = text_of(&e);
	assert_non_null(strstr(s, "deploy of (no release id) to /srv/app"));
	free(s);
}

static void
test_text_redacts_secrets(void **state)
{
	struct notify_end e = end_of("deploy", RF_EXIT_UPLOAD);
	char *s;

	(void)state;
	out_secret("s3cr3t-t0ken-4242");
	e.why = "download of https://ci.example.com/a.tgz?t=s3cr3t-t0ken-4242 "
		"failed";
	s = text_of(&e);
	assert_null(strstr(s, "s3cr3t"));
	assert_non_null(strstr(s, "t=[redacted] failed"));
	free(s);
}

/* The URL's parts are secrets from the moment the config is loaded. */
static void
test_url_secrets(void **state)
{
	char url[] = "https://bot:pa55-w0rd@hooks.example.com/services/T0/B0/"
		     "tok-777";
	struct conf c = { 0 };
	struct notify_end e = end_of("deploy", RF_EXIT_HOOK);
	char *s;

	(void)state;
	c.notify_url = url;
	notify_secrets(&c);
	e.why = "before_switch hook failed on web1: curl "
		"hooks.example.com/services/T0/B0/tok-777 as bot:pa55-w0rd, "
		"then pa55-w0rd alone";
	s = text_of(&e);
	assert_null(strstr(s, "tok-777"));
	assert_null(strstr(s, "pa55-w0rd"));
	assert_non_null(strstr(s, "curl hooks.example.com[redacted] as "
				  "[redacted], then [redacted] alone"));
	free(s);
}

/* ---- the payload and the result object ---- */

/* The object after "relflip": in a payload, parsed. */
static struct json_doc *
inner_of(const char *payload)
{
	const char *at = strstr(payload, "\"relflip\": ");
	char *inner;
	struct json_doc *d;

	assert_non_null(at);
	inner = strdup(at + strlen("\"relflip\": "));
	assert_non_null(inner);
	assert_int_equal(inner[strlen(inner) - 1], '}');
	inner[strlen(inner) - 1] = '\0';
	d = json_read_object(inner);
	free(inner);
	return d;
}

static void
test_payload_is_text_and_result(void **state)
{
	struct notify_end e = end_of("deploy", RF_EXIT_HEALTH);
	struct buf b = BUF_INIT;
	struct json_doc *d, *r;
	char *text;

	(void)state;
	e.why = "a \"quoted\" why\nwith a newline";
	notify_payload(&e, &b);
	/* One line: a newline in the text is escaped. */
	assert_null(strchr(buf_str(&b), '\n'));
	d = json_read_object(buf_str(&b));
	assert_non_null(d);
	text = text_of(&e);
	assert_string_equal(json_read_str(d, "text"), text);
	assert_int_equal(json_read_kind(d, "relflip"), JR_OTHER);
	r = inner_of(buf_str(&b));
	assert_non_null(r);
	assert_string_equal(json_read_str(r, "event"), "result");
	assert_string_equal(json_read_str(r, "status"), "rolled_back");
	assert_int_equal(json_read_int(r, "exit_code"), 8);
	assert_string_equal(json_read_str(r, "revision"), "v2");
	assert_string_equal(json_read_str(r, "previous"), "v1");
	assert_int_equal(json_read_int(r, "duration_ms"), 2300);
	assert_int_equal(json_read_kind(r, "time"), JR_STRING);
	json_read_free(r);
	json_read_free(d);
	free(text);
	buf_release(&b);
}

/* A JSON line with its "time" value blanked, to compare two of them. */
static void
blank_time(char *s)
{
	char *t = strstr(s, "\"time\": \"");
	char *end;

	assert_non_null(t);
	t += strlen("\"time\": \"");
	end = strchr(t, '"');
	assert_non_null(end);
	memmove(t, end, strlen(end) + 1);
}

static void
test_result_is_the_result_event(void **state)
{
	struct notify_end e = end_of("deploy", 0);
	struct buf b = BUF_INIT;
	struct capture c;
	char *printed;

	(void)state;
	e.previous = "";
	notify_result(&e, &b);
	out_cfg.json = 1;
	capture_begin(&c, 1);
	out_result("ok", 0, "v2", NULL, 2300);
	printed = capture_end(&c);
	out_cfg.json = 0;
	assert_int_equal(printed[strlen(printed) - 1], '\n');
	printed[strlen(printed) - 1] = '\0';
	blank_time(printed);
	blank_time(b.buf);
	assert_string_equal(buf_str(&b), printed);
	/* No previous release: null, as the event has it. */
	assert_non_null(strstr(printed, "\"previous\": null"));
	free(printed);
	buf_release(&b);
}

static void
test_vars(void **state)
{
	struct notify_end e = end_of("rollback", RF_EXIT_HEALTH);
	char *vars[NOTIFY_VARS];
	size_t n, i;

	(void)state;
	n = notify_vars(&e, vars);
	assert_int_equal(n, NOTIFY_VARS);
	assert_string_equal(vars[0], "RELFLIP_COMMAND=rollback");
	assert_string_equal(vars[1], "RELFLIP_RESULT=rolled_back");
	assert_string_equal(vars[2], "RELFLIP_EXIT_CODE=8");
	assert_string_equal(vars[3], "RELFLIP_REVISION=v2");
	assert_string_equal(vars[4], "RELFLIP_PREVIOUS_REVISION=v1");
	assert_string_equal(vars[5], "RELFLIP_APP_PATH=/srv/app");
	for (i = 0; i < n; i++)
		free(vars[i]);
}

/* ---- notify_run_end, with a runner hook on this machine ---- */

struct run_fixture {
	struct conf conf;
	struct conf_host host;
	struct fleet f;
	struct fleet_host fh;
	struct run_outcome o;
	char dir[64];
	char cmd[512];
};

static void
fixture_init(struct run_fixture *x, const char *command, int code, int switched)
{
	memset(x, 0, sizeof(*x));
	snprintf(x->dir, sizeof(x->dir), "/tmp/relflip-notify.XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	x->conf.app_path = (char *)"/srv/app";
	x->conf.hook_timeout = 10;
	x->host.name = (char *)"web1";
	x->fh.host = &x->host;
	x->fh.sw.switched = switched;
	x->f.conf = &x->conf;
	x->f.h = &x->fh;
	x->f.n = 1;
	x->f.command = command;
	snprintf(x->f.actor, sizeof(x->f.actor), "alice");
	x->o.status = code == 0 ? "ok" : "failed";
	snprintf(x->o.revision, sizeof(x->o.revision), "v2");
	snprintf(x->o.previous, sizeof(x->o.previous), "v1");
	x->o.duration_ms = 1200;
}

static char *
file_text(const char *dir, const char *name)
{
	struct buf b = BUF_INIT;
	char path[128], chunk[512];
	size_t n;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "r");
	if (fp == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_add(&b, chunk, n);
	fclose(fp);
	return buf_detach(&b, NULL);
}

static void
fixture_release(struct run_fixture *x)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", x->dir);
	assert_int_equal(system(cmd), 0);
}

static void
test_run_end_after_deploy_reads_the_result(void **state)
{
	struct run_fixture x;
	struct rf_error err = RF_ERROR_INIT;
	struct capture c;
	struct json_doc *d;
	char *out, *got;

	(void)state;
	fixture_init(&x, "deploy", 0, 1);
	snprintf(x.cmd, sizeof(x.cmd),
		 "cat > '%s/stdin'; echo \"$RELFLIP_RESULT $RELFLIP_EXIT_CODE "
		 "$RELFLIP_REVISION\" > '%s/env'; echo told sentry; "
		 "echo careful >&2",
		 x.dir, x.dir);
	x.conf.hook_after_deploy = x.cmd;
	x.conf.hook_on_failure = (char *)"echo wrong hook > /dev/null";
	capture_begin(&c, 2);
	notify_run_end(&x.f, &x.o, 0, &err);
	out = capture_end(&c);
	assert_non_null(strstr(out, "    runner | told sentry\n"));
	assert_non_null(strstr(out, "    runner | careful\n"));
	assert_non_null(strstr(out, "after_deploy"));
	assert_null(strstr(out, "warning"));
	got = file_text(x.dir, "env");
	assert_non_null(got);
	assert_string_equal(got, "ok 0 v2\n");
	free(got);
	got = file_text(x.dir, "stdin");
	assert_non_null(got);
	/* One line, the result event. */
	assert_int_equal(got[strlen(got) - 1], '\n');
	assert_ptr_equal(strchr(got, '\n'), got + strlen(got) - 1);
	d = json_read_object(got);
	assert_non_null(d);
	assert_string_equal(json_read_str(d, "event"), "result");
	assert_string_equal(json_read_str(d, "status"), "ok");
	assert_string_equal(json_read_str(d, "previous"), "v1");
	json_read_free(d);
	free(got);
	free(out);
	fixture_release(&x);
}

static void
test_run_end_failing_hooks_only_warn(void **state)
{
	struct run_fixture x;
	struct rf_error err = RF_ERROR_INIT;
	struct capture c;
	char *out;

	(void)state;
	fixture_init(&x, "deploy", 0, 1);
	x.conf.hook_after_deploy =
	    (char *)"echo cannot reach sentry >&2; exit 3";
	capture_begin(&c, 2);
	notify_run_end(&x.f, &x.o, 0, &err);
	out = capture_end(&c);
	assert_non_null(strstr(out, "relflip: warning: the after_deploy hook "
				    "failed on the runner (exit 3: cannot "
				    "reach sentry); the deploy itself is done: "
				    "exit 0 stands"));
	free(out);

	/* on_failure: a failing one says the exit code stays. */
	x.conf.hook_on_failure = (char *)"exit 4";
	rf_error_set(&err, RF_EXIT_HEALTH, "health", "health check failed");
	x.o.status = "rolled_back";
	capture_begin(&c, 2);
	notify_run_end(&x.f, &x.o, RF_EXIT_HEALTH, &err);
	out = capture_end(&c);
	assert_non_null(strstr(out, "the on_failure hook failed on the runner "
				    "(exit 4); it does not change the exit "
				    "code"));
	free(out);
	fixture_release(&x);
}

static void
test_run_end_hook_time_limit(void **state)
{
	struct run_fixture x;
	struct rf_error err = RF_ERROR_INIT;
	struct capture c;
	long long t0;
	char *out;

	(void)state;
	fixture_init(&x, "rollback", RF_EXIT_HOOK, 0);
	x.conf.hook_timeout = 0.3;
	x.conf.hook_on_failure = (char *)"sleep 30";
	rf_error_set(&err, RF_EXIT_HOOK, "before_switch", "it failed");
	t0 = out_now_ms();
	capture_begin(&c, 2);
	notify_run_end(&x.f, &x.o, RF_EXIT_HOOK, &err);
	out = capture_end(&c);
	/* TERM ends sleep at once: well within the 2 s grace. */
	assert_true(out_now_ms() - t0 < 2500);
	assert_non_null(strstr(out, "timed out after 300 ms (hook_timeout) "
				    "and was killed"));
	free(out);
	fixture_release(&x);
}

static void
test_run_end_skips(void **state)
{
	struct run_fixture x;
	struct rf_error err = RF_ERROR_INIT;
	struct capture c;
	char *out, *got;

	(void)state;
	/* Interrupted: nothing runs. */
	fixture_init(&x, "deploy", RF_EXIT_INTERRUPTED, 0);
	snprintf(x.cmd, sizeof(x.cmd), "touch '%s/ran'", x.dir);
	x.conf.hook_on_failure = x.cmd;
	x.conf.hook_after_deploy = x.cmd;
	capture_begin(&c, 2);
	notify_run_end(&x.f, &x.o, RF_EXIT_INTERRUPTED, &err);
	out = capture_end(&c);
	free(out);
	got = file_text(x.dir, "ran");
	assert_null(got);
	/* --dry-run: nothing runs, the plan shows the hooks. */
	x.f.dry_run = 1;
	capture_begin(&c, 1);
	notify_run_end(&x.f, &x.o, 0, &err);
	out = capture_end(&c);
	assert_non_null(strstr(out, "plan on the runner"));
	assert_non_null(strstr(out, "after_deploy"));
	assert_non_null(strstr(out, "on_failure"));
	assert_null(file_text(x.dir, "ran"));
	free(out);
	fixture_release(&x);
}

static void
test_run_end_dead_webhook_warns(void **state)
{
	struct run_fixture x;
	struct rf_error err = RF_ERROR_INIT;
	struct capture c;
	char *out;

	(void)state;
	fixture_init(&x, "deploy", 0, 1);
	/* Port 9 (discard) on loopback: nothing listens, refused at once. */
	x.conf.notify_url =
	    (char *)"http://127.0.0.1:9/services/T0/B0/tok3n-xyz";
	/* As cmd_load_config does. */
	notify_secrets(&x.conf);
	capture_begin(&c, 2);
	notify_run_end(&x.f, &x.o, 0, &err);
	out = capture_end(&c);
	assert_non_null(strstr(out, "relflip: warning: the [notify] webhook "
				    "was not told of this deploy"));
	assert_non_null(strstr(out, "the deploy's result stands (exit 0)"));
	assert_null(strstr(out, "tok3n"));
	free(out);
	fixture_release(&x);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_skip_interrupted_and_unchanged,
				       setup),
		cmocka_unit_test_setup(test_wanted_by_notify_on, setup),
		cmocka_unit_test_setup(test_hook_by_command_and_result, setup),
		cmocka_unit_test_setup(test_text_deploy_ok, setup),
		cmocka_unit_test_setup(test_text_failures_say_what_and_why,
				       setup),
		cmocka_unit_test_setup(test_text_redacts_secrets, setup),
		cmocka_unit_test_setup(test_url_secrets, setup),
		cmocka_unit_test_setup(test_payload_is_text_and_result, setup),
		cmocka_unit_test_setup(test_result_is_the_result_event, setup),
		cmocka_unit_test_setup(test_vars, setup),
		cmocka_unit_test_setup(
		    test_run_end_after_deploy_reads_the_result, setup),
		cmocka_unit_test_setup(test_run_end_failing_hooks_only_warn,
				       setup),
		cmocka_unit_test_setup(test_run_end_hook_time_limit, setup),
		cmocka_unit_test_setup(test_run_end_skips, setup),
		cmocka_unit_test_setup(test_run_end_dead_webhook_warns, setup),
	};

	/*
	 * As relflip runs (main ignores SIGPIPE): a runner hook that exits
	 * before it reads the result event on its stdin must not kill us.
	 */
	signal(SIGPIPE, SIG_IGN);

	return cmocka_run_group_tests(tests, NULL, NULL);
}
