/*
 * relflip rollback [--to ID]: options, then the core in src/rollback.c.
 */
#include "cmd.h"
#include "out.h"
#include "release.h"
#include "rollback.h"

enum { OPT_TO = 256, OPT_DRY_RUN };

static const struct option rollback_options[] = {
	{ "to", required_argument, NULL, OPT_TO },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ NULL, 0, NULL, 0 },
};

static int
rollback_option(void *opts, int c, const char *arg, struct rf_error *err)
{
	struct rollback_opts *o = opts;

	if (c == OPT_DRY_RUN) {
		o->dry_run = 1;
		return 0;
	}
	if (!release_id_valid(arg))
		return cmd_usage_fail(err, "'%s' is not a release id", arg);
	o->to = arg;
	return 0;
}

static int
rollback_exec(struct cmd_ctx *ctx, void *opts)
{
	const struct rollback_opts *o = opts;
	struct selection sel = cmd_selection(ctx);
	struct out_field fl[3] = {
		OF_STR("command", "rollback"),
		OF_STR("to", o->to),
		OF_INT("hosts", ctx->nhosts),
	};

	out_event("start", NULL, NULL, fl, 3);
	out_text("relflip %s · rollback · %zu host%s%s", relflip_version(),
		 ctx->nhosts, ctx->nhosts == 1 ? "" : "s",
		 o->dry_run ? " · dry run" : "");
	return rollback_run(&sel, o, &ctx->outcome, &ctx->err);
}

const struct cmd_entry cmd_rollback_entry = {
	.name = "rollback",
	.usage = "[--to ID] [--dry-run]",
	.summary = "switch back to the newest good release, or to ID",
	.help = "Switches current on every selected host to the newest good "
		"release\n"
		"before the live one, or to ID; restarts the services and "
		"checks\n"
		"health, switching back when the check fails. The release "
		"rolled back\n"
		"from is marked bad (unless --to names a newer one: a "
		"roll-forward).\n"
		"\n"
		"Options:\n"
		"  --to ID     the release to go to (a bad one works, with a "
		"warning;\n"
		"              a failed one, that never went live, is refused)\n"
		"  --dry-run   connect and check, change nothing, print the plan\n"
		"  -h, --help  this help\n",
	.flags = CMD_CONFIG | CMD_RESULT,
	.options = rollback_options,
	.opts_size = sizeof(struct rollback_opts),
	.option = rollback_option,
	.args = cmd_no_args,
	.exec = rollback_exec,
};
