/*
 * relflip exec -- CMD...: a one-off command in APP/current on the
 * selected hosts; exec_run() in src/exec.c.
 */
#include <stdlib.h>

#include "cmd.h"
#include "exec.h"
#include "out.h"

struct exec_opts {
	char *cmdline; /* the words, each quoted: exec_join() */
};

static int
exec_args(void *opts, int argc, char **argv, struct rf_error *err)
{
	struct exec_opts *o = opts;
	struct buf b = BUF_INIT;

	if (argc == 0)
		return cmd_usage_fail(err, "no command: give it after --, as "
					   "in relflip exec -- uptime");
	exec_join(&b, argc, (const char *const *)argv);
	o->cmdline = buf_detach(&b, NULL);
	return 0;
}

static void
exec_release(void *opts)
{
	struct exec_opts *o = opts;

	free(o->cmdline);
}

static int
exec_exec(struct cmd_ctx *ctx, void *opts)
{
	const struct exec_opts *o = opts;
	struct selection sel = cmd_selection(ctx);
	struct out_field fl[3] = {
		OF_STR("command", "exec"),
		OF_INT("hosts", ctx->nhosts),
		OF_STR("cmdline", o->cmdline),
	};

	out_event("start", NULL, NULL, fl, 3);
	return exec_run(&sel, o->cmdline, &ctx->outcome, &ctx->err);
}

const struct cmd_entry cmd_exec_entry = {
	.name = "exec",
	.usage = "-- CMD...",
	.summary = "run a one-off command in current/ on the hosts",
	.help = "Runs CMD in APP/current on every selected host (-H, -R), "
		"max_parallel\n"
		"at once, under hook_timeout, with the variables hooks get: "
		"RELFLIP_RELEASE_PATH\n"
		"(the live release's directory), RELFLIP_REVISION, "
		"RELFLIP_APP_PATH,\n"
		"RELFLIP_HOST and RELFLIP_PREVIOUS_REVISION (where a rollback "
		"would go,\n"
		"or empty). Its output is shown with the host as prefix.\n"
		"\n"
		"The words after -- run exactly as given, each one word (they "
		"are quoted):\n"
		"  relflip exec -- ls -la \"my dir\"\n"
		"For pipes, redirections or $VARIABLES, give a shell the whole "
		"line:\n"
		"  relflip exec -- sh -c 'tail -n 100 log/app.log | grep "
		"ERROR'\n"
		"\n"
		"It takes no lock: it is meant for reads and one-offs, runs "
		"beside a deploy,\n"
		"and a freeze (relflip lock) does not stop it. Global options "
		"may come\n"
		"before the --; nothing after it is taken for an option.\n"
		"\n"
		"Exit status: the worst host's: the highest exit status of the "
		"command; a\n"
		"host with no live release counts as 6 (an error for that "
		"host), one that\n"
		"cannot be reached as 4, one past hook_timeout as 124.\n"
		"\n"
		"Options:\n"
		"  -h, --help  this help\n",
	.flags = CMD_CONFIG | CMD_RESULT,
	.opts_size = sizeof(struct exec_opts),
	.args = exec_args,
	.exec = exec_exec,
	.release = exec_release,
};
