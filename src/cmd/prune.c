/*
 * relflip prune [--keep N]: remove old releases, keeping the live one, the
 * rollback target, the newest good ones and a few failed ones.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fleet.h"
#include "out.h"
#include "plan.h"
#include "quote.h"
#include "steps.h"
#include "xmalloc.h"

struct prune {
	int keep;
	int adopt;
	int dry;
	long long started_ms;
	uint64_t freed_total;
	size_t removed_total;
};

static const char prune_options[] =
    "Keeps, per host, `keep` releases (the live one and the newest good\n"
    "ones) and keep_failed failed or bad ones; never removes current, the\n"
    "rollback target, a staged release (a deploy in progress) or anything\n"
    "relflip did not make. Also clears uploads and temporary directories\n"
    "left by interrupted deploys.\n"
    "\n"
    "Options:\n"
    "  --keep N    releases to keep (default: [deploy] keep_releases)\n"
    "  --adopt     treat releases without a record (a Capistrano layout)\n"
    "              as good ones, ordered by their DEPLOYED_AT or REVISION\n"
    "              file times\n"
    "  --dry-run   print what would be removed, change nothing\n"
    "  -h, --help  this help\n";

static int
prune_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct prune *pr = arg;
	const char *app = f->conf->app_path;
	const struct release_record **gone = NULL;
	struct buf cmd = BUF_INIT, out = BUF_INIT, errtext = BUF_INIT;
	struct buf names = BUF_INIT, line = BUF_INIT, extra = BUF_INIT;
	struct buf list = BUF_INIT;
	size_t i, n;
	int status, rc = -1;
	uint64_t freed = 0;
	char size[32];

	for (i = 0; i < fh->st.foreign.n; i++)
		out_warning(fh->host->name, "prune",
			    "releases/%s is not a relflip release: left alone",
			    fh->st.foreign.v[i]);
	n = plan_prune(&fh->st.records, fh->live, pr->keep,
		       f->conf->keep_failed, pr->adopt, &gone);
	for (i = 0; i < n; i++)
		buf_addf(&names, "%s%s", i ? " " : "", gone[i]->id);

	/* What goes: the releases, leftovers of interrupted deploys. */
	for (i = 0; i < n; i++)
		step_list_release(&list, gone[i]->id);
	for (i = 0; i < fh->st.tmpdirs.n; i++)
		buf_addf(&list, "releases/%s\n", fh->st.tmpdirs.v[i]);
	for (i = 0; i < fh->st.incoming.n; i++)
		buf_addf(&list, ".relflip/incoming/%s\n", fh->st.incoming.v[i]);

	if (pr->dry) {
		/* Measure only: the same list, du without rm. */
		buf_adds(&cmd, "L=$(cat)\ncd ");
		sh_quote(&cmd, app);
		buf_adds(&cmd, " || exit 1\n[ -z \"$L\" ] || printf '%s\\n' \"$L\" | "
			       "xargs -r -d '\\n' du -skc -- 2>/dev/null | "
			       "tail -n 1\n");
	} else {
		step_remove_listed(&cmd, app, 1);
		buf_addf(&extra, "\"removed\": %zu, \"kept\": %d", n, pr->keep);
		fleet_log_line(f, fh, NULL, fh->live, "ok", 0, buf_str(&extra),
			       &line);
		step_append_log(&cmd, app, buf_str(&line));
	}
	out.max = 4096;
	status = fleet_run_input(fh, app, buf_str(&cmd),
				 list.len ? buf_str(&list) : "", &out, &errtext,
				 &fh->err);
	if (status < 0)
		goto done;
	if (status > 0) {
		rf_error_set(&fh->err, RF_EXIT_INTERNAL, "prune",
			     "removing releases on %s failed: %s",
			     fh->host->name, buf_str(&errtext));
		goto done;
	}
	freed = strtoull(buf_str(&out), NULL, 10) * 1024;
	out_format_bytes(size, sizeof(size), freed);
	{
		struct buf d = BUF_INIT;

		buf_addf(&d, "%s %zu release%s", pr->dry ? "would remove"
							: "removed",
			 n, n == 1 ? "" : "s");
		if (n > 0)
			buf_addf(&d, " (%s)", buf_str(&names));
		buf_addf(&d, ", %s %s", size,
			 pr->dry ? "would be freed" : "freed");
		snprintf(fh->detail, sizeof(fh->detail), "%.150s",
			 buf_str(&d));
		if (d.len > 150)
			memcpy(fh->detail + 146, "...", 4);
		buf_release(&d);
	}
	pr->freed_total += freed;
	pr->removed_total += n;
	if (pr->dry && list.len > 0) {
		struct out_field fl[1] = { OF_STR("paths", buf_str(&list)) };

		out_event("plan", fh->host->name, "prune", fl, 1);
		out_primary("%s: would remove, under %s:\n%s", fh->host->name,
			    app, buf_str(&list));
	}
	rc = 0;
done:
	free(gone);
	buf_release(&cmd);
	buf_release(&out);
	buf_release(&errtext);
	buf_release(&names);
	buf_release(&line);
	buf_release(&extra);
	buf_release(&list);
	return rc;
}

static int
cmd_prune_exec(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "keep", required_argument, NULL, 'k' },
		{ "adopt", no_argument, NULL, 'a' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct prune pr;
	struct fleet f;
	struct rf_error err = RF_ERROR_INIT;
	const char *keep_arg = NULL, *why;
	long keep;
	int c, code = 0;
	char size[32], dur[32];

	memset(&pr, 0, sizeof(pr));
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			keep_arg = optarg;
			break;
		case 'a':
			pr.adopt = 1;
			break;
		case 'n':
			pr.dry = 1;
			break;
		case 'h':
			return cmd_usage(&cmd_prune_entry, prune_options, 0);
		default:
			return cmd_usage_error(&cmd_prune_entry,
					       "unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cmd_usage_error(&cmd_prune_entry,
				       "unexpected argument '%s'",
				       argv[optind]);
	if (keep_arg != NULL &&
	    conf_parse_int(keep_arg, 1, 100000, &keep, &why) != 0)
		return cmd_usage_error(&cmd_prune_entry,
				       "--keep '%s' %s (1-100000)", keep_arg,
				       why);
	if (cmd_load_config(ctx, &err) != 0) {
		out_error(&err);
		return err.code;
	}
	pr.keep = keep_arg ? (int)keep : ctx->conf->keep_releases;
	pr.started_ms = out_now_ms();
	fleet_init(&f, ctx->conf, ctx->hosts, ctx->nhosts, "prune", NULL);
	{
		struct out_field fl[3] = {
			OF_STR("command", "prune"),
			OF_INT("keep", pr.keep),
			OF_INT("hosts", ctx->nhosts),
		};
		out_event("start", NULL, NULL, fl, 3);
	}
	if (fleet_connect(&f, &err) != 0 ||
	    (pr.dry ? fleet_probe(&f, &err) : fleet_lock(&f, &err)) != 0 ||
	    (fleet_activate_all(&f),
	     fleet_step(&f, "prune", prune_one, &pr, &err)) != 0) {
		code = err.code;
		out_error(&err);
	} else {
		out_format_bytes(size, sizeof(size), pr.freed_total);
		out_format_duration(dur, sizeof(dur),
				    (long)(out_now_ms() - pr.started_ms));
		out_text("%s %zu release%s on %zu host%s, %s %s in %s",
			 pr.dry ? "dry run: would remove" : "pruned",
			 pr.removed_total, pr.removed_total == 1 ? "" : "s",
			 f.n, f.n == 1 ? "" : "s", size,
			 pr.dry ? "would be freed" : "freed", dur);
	}
	out_result(code == 0 ? "ok" : "failed", code, NULL, NULL,
		   (long)(out_now_ms() - pr.started_ms));
	fleet_unlock(&f);
	fleet_release(&f);
	return code;
}

const struct cmd_entry cmd_prune_entry = {
	.name = "prune",
	.usage = "[--keep N] [--adopt] [--dry-run]",
	.summary = "remove old releases, keeping the live one and the "
		   "rollback target",
	.flags = 0,
	.exec = cmd_prune_exec,
};
