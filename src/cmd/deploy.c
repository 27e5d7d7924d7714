/*
 * relflip deploy ARTIFACT: options, then the core in src/deploy.c.
 */
#include <getopt.h>
#include <stdlib.h>

#include "cmd.h"
#include "deploy.h"
#include "out.h"

static const char deploy_options[] =
    "Uploads ARTIFACT (a tarball: gzip, zstd, xz or plain) into\n"
    "releases/ID on every host, runs the install hook there and migrate\n"
    "once on the primary host, then switches current batch by batch,\n"
    "restarts the services and checks health; a failed check switches\n"
    "every host back.\n"
    "\n"
    "Options:\n"
    "  --revision ID  the release id (default: $GITHUB_SHA)\n"
    "  --ref REF      the git ref, checked against allowed_refs\n"
    "                 (default: $GITHUB_REF)\n"
    "  --dry-run      connect and check, change nothing, print the plan\n"
    "                 with the exact remote commands\n"
    "  -h, --help     this help\n";

static int
cmd_deploy_exec(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "revision", required_argument, NULL, 'r' },
		{ "ref", required_argument, NULL, 'f' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct deploy_opts o = { 0 };
	struct rf_error err = RF_ERROR_INIT;
	int c;

	o.revision = getenv("GITHUB_SHA");
	o.ref = getenv("GITHUB_REF");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			o.revision = optarg;
			break;
		case 'f':
			o.ref = optarg;
			break;
		case 'n':
			o.dry_run = 1;
			break;
		case 'h':
			return cmd_usage(&cmd_deploy_entry, deploy_options, 0);
		default:
			return cmd_usage_error(&cmd_deploy_entry,
					       "unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cmd_usage_error(&cmd_deploy_entry,
				       "which artifact? (a tarball)");
	if (argc - optind > 1)
		return cmd_usage_error(&cmd_deploy_entry,
				       "unexpected argument '%s'",
				       argv[optind + 1]);
	o.artifact = argv[optind];
	if (cmd_load_config(ctx, &err) != 0) {
		out_error(&err);
		return err.code;
	}
	return deploy_run(ctx, &o);
}

const struct cmd_entry cmd_deploy_entry = {
	.name = "deploy",
	.usage = "ARTIFACT [--revision ID] [--ref REF] [--dry-run]",
	.summary = "upload a release, switch to it, check its health, roll "
		   "back on failure",
	.flags = 0,
	.exec = cmd_deploy_exec,
};
