/*
 * relflip deploy ARTIFACT: options, then the core in src/deploy.c.
 */
#include <stdlib.h>

#include "cmd.h"
#include "deploy.h"
#include "out.h"

enum { OPT_REVISION = 256, OPT_REF, OPT_DRY_RUN, OPT_URL, OPT_SHA256 };

static const struct option deploy_options[] = {
	{ "revision", required_argument, NULL, OPT_REVISION },
	{ "ref", required_argument, NULL, OPT_REF },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "url", required_argument, NULL, OPT_URL },
	{ "sha256", required_argument, NULL, OPT_SHA256 },
	{ NULL, 0, NULL, 0 },
};

static int
deploy_option(void *opts, int c, const char *arg, struct rf_error *err)
{
	struct deploy_opts *o = opts;

	(void)err;
	switch (c) {
	case OPT_REVISION:
		o->revision = arg;
		break;
	case OPT_REF:
		o->ref = arg;
		break;
	case OPT_DRY_RUN:
		o->dry_run = 1;
		break;
	case OPT_URL:
		o->url = arg;
		break;
	case OPT_SHA256:
		o->sha256 = arg;
		break;
	}
	return 0;
}

static int
deploy_args(void *opts, int argc, char **argv, struct rf_error *err)
{
	struct deploy_opts *o = opts;

	if (argc < 1 && o->sha256 == NULL)
		return cmd_usage_fail(err, "which artifact? (a tarball, or "
					   "--sha256 HEX of the one at --url)");
	if (argc > 1)
		return cmd_usage_fail(err, "unexpected argument '%s'", argv[1]);
	if (argc == 1 && o->sha256 != NULL)
		return cmd_usage_fail(err,
				      "give ARTIFACT or --sha256, not both "
				      "(with a local file relflip computes "
				      "its checksum)");
	o->artifact = argc == 1 ? argv[0] : NULL;
	if (o->revision == NULL)
		o->revision = getenv("GITHUB_SHA");
	if (o->ref == NULL)
		o->ref = getenv("GITHUB_REF");
	return 0;
}

static int
deploy_exec(struct cmd_ctx *ctx, void *opts)
{
	const struct deploy_opts *o = opts;
	struct selection sel = cmd_selection(ctx);
	struct out_field fl[4] = {
		OF_STR("command", "deploy"),
		OF_STR("revision", o->revision),
		OF_INT("hosts", ctx->nhosts),
		OF_BOOL("dry_run", o->dry_run),
	};

	out_event("start", NULL, NULL, fl, 4);
	out_text("relflip %s · %zu host%s · release %s%s", relflip_version(),
		 ctx->nhosts, ctx->nhosts == 1 ? "" : "s",
		 o->revision ? o->revision : "?",
		 o->dry_run ? " · dry run" : "");
	return deploy_run(&sel, o, &ctx->outcome, &ctx->err);
}

const struct cmd_entry cmd_deploy_entry = {
	.name = "deploy",
	.usage =
	    "ARTIFACT|--sha256 HEX [--url URL] [--revision ID] [--ref REF] "
	    "[--dry-run]",
	.summary = "upload a release, switch to it, check its health, roll "
		   "back on failure",
	.help = "Uploads ARTIFACT (a tarball: gzip, zstd, xz or plain) into\n"
		"releases/ID on every host, runs the install hook there and "
		"migrate\n"
		"once on the primary host, then switches current batch by "
		"batch,\n"
		"restarts the services and checks health; a failed check "
		"switches\n"
		"every host back. With [artifact] url or --url, each host "
		"downloads\n"
		"the artifact itself instead of an upload.\n"
		"\n"
		"Options:\n"
		"  --revision ID  the release id (default: $GITHUB_SHA)\n"
		"  --ref REF      the git ref, checked against allowed_refs\n"
		"                 (default: $GITHUB_REF)\n"
		"  --url URL      the hosts download the artifact from URL\n"
		"                 (overrides [artifact] url)\n"
		"  --sha256 HEX   instead of ARTIFACT: the SHA-256 of the one "
		"at the URL;\n"
		"                 relflip fetches it once to validate it\n"
		"  --dry-run      connect and check, change nothing, print the "
		"plan\n"
		"                 with the exact remote commands\n"
		"  -h, --help     this help\n",
	.flags = CMD_CONFIG | CMD_RESULT,
	.options = deploy_options,
	.opts_size = sizeof(struct deploy_opts),
	.option = deploy_option,
	.args = deploy_args,
	.exec = deploy_exec,
};
