/*
 * relflip releases: every release on every selected host, newest first,
 * with its status and where it came from; hosts that disagree on the live
 * release are pointed out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fleet.h"
#include "out.h"
#include "xmalloc.h"

static void
print_host(struct fleet_host *fh, int json)
{
	struct record_set *set = &fh->st.records;
	size_t i;

	qsort(set->v, set->n, sizeof(*set->v), record_cmp_newest);
	if (!json)
		out_primary("%s (%s:%d)  live: %s%s", fh->host->name,
			    fh->host->address, fh->host->port,
			    fh->live[0] ? fh->live : "none",
			    fh->st.current == CURRENT_DANGLING
				? " (DANGLING: its directory is gone)"
				: "");
	if (!json && set->n > 0)
		out_primary("    %-24s %-8s %-20s %-16s %-22s %-14s %s", "ID",
			    "STATUS", "DEPLOYED AT", "BY", "REF", "CHECKSUM",
			    "SIZE");
	for (i = 0; i < set->n; i++) {
		const struct release_record *r = &set->v[i];
		int live = strcmp(r->id, fh->live) == 0;
		char when[32] = "-", size[32] = "-", sum[24] = "-";

		if (!r->has_dir && !live)
			continue;
		if (r->created)
			record_time(when, sizeof(when), r->created / 1000);
		if (r->size)
			out_format_bytes(size, sizeof(size), r->size);
		if (r->checksum[0])
			snprintf(sum, sizeof(sum), "%.14s", r->checksum + 7);
		if (json) {
			struct out_field fl[11] = {
				OF_STR("id", r->id),
				OF_STR("status",
				       release_status_name(r->status)),
				OF_BOOL("live", live),
				OF_STR("deployed_at", r->created ? when : NULL),
				OF_STR("actor", r->actor),
				OF_STR("ref", r->ref),
				OF_STR("checksum", r->checksum),
				OF_INT("size", r->size),
				OF_INT("unpacked_size", r->unpacked),
				OF_BOOL("migrated", r->migrated),
				OF_STR("reason", r->reason),
			};
			out_event("release", fh->host->name, NULL, fl, 11);
			continue;
		}
		out_primary("  %s %-24s %-8s %-20s %-16.16s %-22.22s %-14s %s",
			    live ? "*" : " ", r->id,
			    release_status_name(r->status), when,
			    r->actor[0] ? r->actor : "-",
			    r->ref[0] ? r->ref : "-", sum, size);
	}
	if (!json && fh->st.foreign.n > 0) {
		struct buf b = BUF_INIT;

		for (i = 0; i < fh->st.foreign.n; i++)
			buf_addf(&b, " %s", fh->st.foreign.v[i]);
		out_primary("    not made by relflip, left alone:%s",
			    buf_str(&b));
		buf_release(&b);
	}
}

static int
releases_exec(struct cmd_ctx *ctx, void *opts)
{
	struct selection sel = cmd_selection(ctx);
	struct fleet f;
	struct buf lives = BUF_INIT;
	long long t0 = out_now_ms();
	int code = 0, disagree = 0;
	size_t i;
	struct out_field fl[2] = {
		OF_STR("command", "releases"),
		OF_INT("hosts", ctx->nhosts),
	};

	(void)opts;
	out_event("start", NULL, NULL, fl, 2);
	fleet_init(&f, &sel, "releases", NULL);
	if (fleet_open(&f, FLEET_PROBE, &ctx->err) != 0) {
		code = ctx->err.code;
		goto done;
	}
	for (i = 0; i < f.n; i++) {
		if (i > 0 && !ctx->json)
			out_primary("%s", "");
		print_host(&f.h[i], ctx->json);
		buf_addf(&lives, "%s%s: %s", i ? ", " : "", f.h[i].host->name,
			 f.h[i].live[0] ? f.h[i].live : "none");
		if (strcmp(f.h[i].live, f.h[0].live) != 0)
			disagree = 1;
	}
	if (disagree)
		out_warning(NULL, "releases",
			    "the hosts DISAGREE on the live release: %s",
			    buf_str(&lives));
done:
	fleet_outcome(&ctx->outcome, code, NULL, NULL, t0);
	buf_release(&lives);
	fleet_release(&f);
	return code;
}

const struct cmd_entry cmd_releases_entry = {
	.name = "releases",
	.usage = "",
	.summary = "list releases per host: id, deployed at, ref, actor, "
		   "status",
	.help = "Lists, per host, every release under releases/: id, status "
		"(live,\n"
		"good, bad, failed, staged, or unknown for one relflip did not "
		"make),\n"
		"deployed at, by whom, ref, checksum and size. `*` marks the "
		"live one.\n"
		"With --json, one object per release per host.\n"
		"\n"
		"Options:\n"
		"  -h, --help  this help\n",
	.flags = CMD_CONFIG | CMD_RESULT,
	.args = cmd_no_args,
	.exec = releases_exec,
};
