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

/*
 * The table fits 120 columns: ids are shown whole up to 40 characters (a
 * full git SHA-1, what CI deploys by default, and what rollback --to
 * takes), BY and REF are cut, and the CHECKSUM column is left to --json
 * when the ids leave it no room.
 */
#define TABLE_COLUMNS 120
#define ID_SHOWN 40
#define BY_SHOWN 12
#define REF_SHOWN 20
#define SUM_SHOWN 10

/* Columns text takes on a terminal: UTF-8 continuation bytes take none. */
static size_t
text_width(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* Add text cut to max columns ("…" at the cut), padded to width. */
static void
cell(struct buf *line, const char *text, size_t width, size_t max)
{
	size_t w = text_width(text), i;

	if (w > max) {
		/* Cut on a character boundary, then mark the cut. */
		for (i = 0, w = 0; text[i] != '\0'; i++) {
			if (((unsigned char)text[i] & 0xc0) != 0x80 &&
			    w++ == max - 1)
				break;
		}
		buf_add(line, text, i);
		buf_adds(line, "…");
		w = max;
	} else {
		buf_adds(line, text);
	}
	while (w++ < width)
		buf_addch(line, ' ');
}

static int
shown(const struct fleet_host *fh, const struct release_record *r)
{
	return r->has_dir || strcmp(r->id, fh->live) == 0;
}

static void
print_table(struct fleet_host *fh)
{
	struct record_set *set = &fh->st.records;
	struct buf line = BUF_INIT;
	size_t wid = 2, wby = 2, wref = 3, i, total;
	int sums;

	for (i = 0; i < set->n; i++) {
		const struct release_record *r = &set->v[i];

		if (!shown(fh, r))
			continue;
		if (text_width(r->id) > wid)
			wid = text_width(r->id);
		if (text_width(r->actor) > wby)
			wby = text_width(r->actor);
		if (text_width(r->ref) > wref)
			wref = text_width(r->ref);
	}
	wid = wid > ID_SHOWN ? ID_SHOWN : wid;
	wby = wby > BY_SHOWN ? BY_SHOWN : wby;
	wref = wref > REF_SHOWN ? REF_SHOWN : wref;
	total = 4 + wid + 2 + 7 + 2 + 20 + 2 + wby + 2 + wref + 2 + 8;
	sums = total + 2 + SUM_SHOWN <= TABLE_COLUMNS;

	buf_adds(&line, "    ");
	cell(&line, "ID", wid + 2, wid);
	buf_addf(&line, "%-9s%-22s", "STATUS", "DEPLOYED AT");
	cell(&line, "BY", wby + 2, wby);
	cell(&line, "REF", wref + 2, wref);
	if (sums)
		buf_addf(&line, "%-*s", SUM_SHOWN + 2, "CHECKSUM");
	buf_adds(&line, "ARTIFACT");
	out_primary("%s", buf_str(&line));
	for (i = 0; i < set->n; i++) {
		const struct release_record *r = &set->v[i];
		char when[32] = "-", size[32] = "-", sum[24] = "-";

		if (!shown(fh, r))
			continue;
		if (r->created)
			record_time(when, sizeof(when), r->created / 1000);
		if (r->size)
			out_format_bytes(size, sizeof(size), r->size);
		if (r->checksum[0])
			snprintf(sum, sizeof(sum), "%.*s", SUM_SHOWN,
				 r->checksum + 7);
		buf_reset(&line);
		buf_addf(&line, "  %s ",
			 strcmp(r->id, fh->live) == 0 ? "*" : " ");
		cell(&line, r->id, wid + 2, wid);
		buf_addf(&line, "%-9s%-22s", release_status_name(r->status),
			 when);
		cell(&line, r->actor[0] ? r->actor : "-", wby + 2, wby);
		cell(&line, r->ref[0] ? r->ref : "-", wref + 2, wref);
		if (sums)
			buf_addf(&line, "%-*s", SUM_SHOWN + 2, sum);
		buf_adds(&line, size);
		out_primary("%s", buf_str(&line));
	}
	buf_release(&line);
}

/* One `release` event, every field whole. */
static void
print_event(const struct fleet_host *fh, const struct release_record *r)
{
	char when[32] = "-";

	if (r->created)
		record_time(when, sizeof(when), r->created / 1000);
	{
		struct out_field fl[11] = {
			OF_STR("id", r->id),
			OF_STR("status", release_status_name(r->status)),
			OF_BOOL("live", strcmp(r->id, fh->live) == 0),
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
	}
}

static void
print_host(struct fleet_host *fh, int json)
{
	struct record_set *set = &fh->st.records;
	size_t i;

	qsort(set->v, set->n, sizeof(*set->v), record_cmp_newest);
	if (json) {
		for (i = 0; i < set->n; i++) {
			if (shown(fh, &set->v[i]))
				print_event(fh, &set->v[i]);
		}
		return;
	}
	out_primary("%s (%s:%d)  live: %s%s", fh->host->name, fh->host->address,
		    fh->host->port, fh->live[0] ? fh->live : "none",
		    fh->st.current == CURRENT_DANGLING
			? " (DANGLING: its directory is gone)"
			: "");
	for (i = 0; i < set->n && !shown(fh, &set->v[i]); i++)
		;
	if (i < set->n)
		print_table(fh);
	if (fh->st.foreign.n > 0) {
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
	/* The table is the output: no connect or probe lines before it. */
	out_cfg.table_only = 1;
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
	.help =
	    "Lists, per host, every release under releases/: id, status "
	    "(live,\n"
	    "good, bad, failed, staged, or unknown for one relflip did not "
	    "make),\n"
	    "deployed at, by whom, ref, the artifact's checksum and its "
	    "size (the\n"
	    "tarball uploaded, not the release directory). `*` marks the "
	    "live one.\n"
	    "The table fits 120 columns: ids are shown whole up to 40 "
	    "characters\n"
	    "(longer ones end in …), BY and REF are cut, and CHECKSUM is "
	    "left out\n"
	    "when long ids leave no room. With --json, one object per "
	    "release per\n"
	    "host, every field whole. Errors and warnings go to stderr; the "
	    "table\n"
	    "alone to stdout.\n"
	    "\n"
	    "Options:\n"
	    "  -h, --help  this help\n",
	.flags = CMD_CONFIG | CMD_RESULT,
	.args = cmd_no_args,
	.exec = releases_exec,
};
