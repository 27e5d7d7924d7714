/*
 * relflip setup: the layout on every host before the first deploy;
 * setup_run() in src/setup.c.
 */
#include "cmd.h"
#include "out.h"
#include "setup.h"

static int
setup_exec(struct cmd_ctx *ctx, void *opts)
{
	struct selection sel = cmd_selection(ctx);
	struct out_field fl[2] = {
		OF_STR("command", "setup"),
		OF_INT("hosts", ctx->nhosts),
	};

	(void)opts;
	out_event("start", NULL, NULL, fl, 2);
	return setup_run(&sel, &ctx->outcome, &ctx->err);
}

const struct cmd_entry cmd_setup_entry = {
	.name = "setup",
	.usage = "",
	.summary = "create the app path, releases/, shared/ and shared_dirs",
	.help =
	    "Creates, on every selected host, what is missing of the "
	    "app path,\n"
	    "releases/, shared/, each [app] shared_dirs entry under shared/, "
	    "and\n"
	    ".relflip/releases and .relflip/incoming, and says what it "
	    "created or that\n"
	    "all was already there. The shared_files missing under shared/ "
	    "are listed\n"
	    "as warnings, never created: they hold what only you can write "
	    "(secrets);\n"
	    "check and deploy refuse them missing. Safe to run again: a "
	    "second run\n"
	    "changes nothing. It only creates directories (mkdir -p), as a "
	    "deploy's\n"
	    "lock step does, so it takes no lock and runs even while a "
	    "deploy holds it.\n"
	    "With --json, one `setup` event per path.\n"
	    "\n"
	    "Exit status: 0 (missing shared files included), 4 when a host "
	    "cannot be\n"
	    "reached, 6 when a directory cannot be created there.\n"
	    "\n"
	    "Options:\n"
	    "  -h, --help  this help\n",
	.flags = CMD_CONFIG | CMD_RESULT,
	.args = cmd_no_args,
	.exec = setup_exec,
};
