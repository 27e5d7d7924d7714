/*
 * relflip lock -m MESSAGE: a manual freeze on the selected hosts;
 * freeze_run() in src/lock.c.
 */
#include "cmd.h"
#include "lock.h"
#include "out.h"

struct lock_opts {
	const char *message;
};

static const struct option lock_options[] = {
	{ "message", required_argument, NULL, 'm' },
	{ NULL, 0, NULL, 0 },
};

static int
lock_option(void *opts, int c, const char *arg, struct rf_error *err)
{
	struct lock_opts *o = opts;

	(void)c;
	if (freeze_message_check(arg, err) != 0)
		return -1;
	o->message = arg;
	return 0;
}

static int
lock_args(void *opts, int argc, char **argv, struct rf_error *err)
{
	const struct lock_opts *o = opts;

	if (cmd_no_args(opts, argc, argv, err) != 0)
		return -1;
	return freeze_message_check(o->message, err);
}

static int
lock_exec(struct cmd_ctx *ctx, void *opts)
{
	const struct lock_opts *o = opts;
	struct selection sel = cmd_selection(ctx);
	int code;
	struct out_field fl[3] = {
		OF_STR("command", "lock"),
		OF_INT("hosts", ctx->nhosts),
		OF_STR("message", o->message),
	};

	out_event("start", NULL, NULL, fl, 3);
	code = freeze_run(&sel, o->message, &ctx->outcome, &ctx->err);
	if (code == 0)
		out_text("frozen: deploys, rollbacks and prunes refuse %s "
			 "(exit 5) until relflip unlock",
			 ctx->nhosts == 1 ? "this host" : "these hosts");
	return code;
}

const struct cmd_entry cmd_lock_entry = {
	.name = "lock",
	.usage = "-m MESSAGE",
	.summary = "freeze the hosts: deploys and rollbacks refuse them",
	.help =
	    "Takes the deploy lock on every selected host, as a deploy "
	    "takes it, and\n"
	    "keeps it: a freeze, with your message and who you are. "
	    "Deploys,\n"
	    "rollbacks and prunes refuse a frozen host (exit 5), naming "
	    "the message,\n"
	    "who set it and since when; they do not wait for it. A freeze "
	    "is never\n"
	    "stale (lock_ttl does not apply); anyone on call lifts it with "
	    "relflip\n"
	    "unlock, no --force needed. Every host or none: on a host whose "
	    "lock is\n"
	    "held (a deploy, another freeze) it fails with exit 5 and "
	    "leaves no\n"
	    "freeze anywhere. Written to the log. relflip exec is not "
	    "stopped by it.\n"
	    "\n"
	    "Options:\n"
	    "  -m, --message MESSAGE  why, in one line (at most 200 bytes, "
	    "no control\n"
	    "                         characters); required\n"
	    "  -h, --help             this help\n",
	.flags = CMD_CONFIG | CMD_RESULT,
	.options = lock_options,
	.shortopts = "m:",
	.opts_size = sizeof(struct lock_opts),
	.option = lock_option,
	.args = lock_args,
	.exec = lock_exec,
};
