/*
 * relflip status: each host at a glance: the live release, since when,
 * by whom and from which ref, the lock (or a freeze and its message),
 * and whether the hosts agree on what is live.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "lock.h"
#include "out.h"
#include "status.h"
#include "xmalloc.h"

enum {
	COL_HOST,
	COL_LIVE,
	COL_SINCE,
	COL_BY,
	COL_REF,
	COL_BACK,
	COL_LOCK,
	NCOLS
};

static const char *const headings[NCOLS] = {
	"HOST", "LIVE", "SINCE", "BY", "REF", "ROLLBACK TO", "LOCK",
};

/* The LIVE column: the release, or what stands in its place. */
static void
live_cell(const struct host_status *hs, struct buf *b)
{
	if (!hs->reachable)
		buf_adds(b, "?");
	else if (!hs->app_exists)
		buf_adds(b, "none (no app path: relflip setup)");
	else if (hs->current == CURRENT_DANGLING)
		buf_addf(b, "%s (DANGLING: its directory is gone)",
			 hs->live[0] ? hs->live : "?");
	else if (hs->current == CURRENT_DIR)
		buf_adds(b, "none (current is a real directory)");
	else if (hs->current == CURRENT_OTHER)
		buf_adds(b, "none (current is not a link)");
	else
		buf_adds(b, hs->live[0] ? hs->live : "none");
}

static void
lock_cell(const struct host_status *hs, const struct conf *conf, struct buf *b)
{
	const struct lock_info *l = hs->lock_info;
	struct buf holder = BUF_INIT;
	const char *text;

	if (!hs->reachable) {
		buf_addf(b, "UNREACHABLE: %s", hs->error);
		return;
	}
	switch (hs->lock) {
	case LOCK_FREE:
		buf_adds(b, "free");
		return;
	case LOCK_FROZEN:
		/* "FROZEN by alice since ...: message", not "FROZEN: frozen
		 * by": the holder's text starts with the word already. */
		lock_holder_text(l, &holder);
		text = buf_str(&holder);
		buf_addf(b, "FROZEN %s",
			 strncmp(text, "frozen ", 7) == 0 ? text + 7 : text);
		buf_release(&holder);
		return;
	case LOCK_STALE:
		buf_addf(b, "STALE (not renewed for %llds, lock_ttl %.0fs): ",
			 hs->lock_age, conf->lock_ttl);
		break;
	case LOCK_HELD:
		buf_adds(b, "held by ");
		break;
	case LOCK_ODD:
		break;
	}
	lock_holder_text(l, b);
}

static void
status_event(const struct host_status *hs)
{
	const struct release_record *r = hs->rec;
	const struct lock_info *l = hs->lock_info;
	char since[32] = "", lsince[32] = "";
	int held = hs->reachable && hs->lock != LOCK_FREE;
	struct out_field fl[18];
	size_t n = 0;

	if (hs->since_ms)
		record_time_ms(since, sizeof(since), hs->since_ms);
	if (held && l->since)
		record_time(lsince, sizeof(lsince), l->since);
	fl[n++] = (struct out_field)OF_BOOL("reachable", hs->reachable);
	if (!hs->reachable) {
		fl[n++] = (struct out_field)OF_STR("error", hs->error);
		out_event("status", hs->host, NULL, fl, n);
		return;
	}
	fl[n++] = (struct out_field)OF_BOOL("app_exists", hs->app_exists);
	fl[n++] =
	    (struct out_field)OF_STR("current", current_kind_name(hs->current));
	fl[n++] =
	    (struct out_field)OF_STR("live", hs->live[0] ? hs->live : NULL);
	fl[n++] = (struct out_field)OF_STR("since", since[0] ? since : NULL);
	fl[n++] = (struct out_field)OF_STR("actor",
					   r && r->actor[0] ? r->actor : NULL);
	fl[n++] =
	    (struct out_field)OF_STR("ref", r && r->ref[0] ? r->ref : NULL);
	fl[n++] = (struct out_field)OF_STR(
	    "run_url", r && r->run_url[0] ? r->run_url : NULL);
	fl[n++] = (struct out_field)OF_STR("rollback_target", hs->target);
	fl[n++] = (struct out_field)OF_STR("lock", lock_state_name(hs->lock));
	if (held) {
		fl[n++] = (struct out_field)OF_STR("lock_by", l->user);
		fl[n++] = (struct out_field)OF_STR("lock_since",
						   lsince[0] ? lsince : NULL);
		fl[n++] = (struct out_field)OF_STR("lock_command", l->command);
		fl[n++] = (struct out_field)OF_STR(
		    "lock_revision", l->revision[0] ? l->revision : NULL);
		fl[n++] = (struct out_field)OF_STR(
		    "lock_message",
		    hs->lock == LOCK_FROZEN ? l->message : NULL);
		fl[n++] = (struct out_field)OF_INT("lock_age_s", hs->lock_age);
	}
	out_event("status", hs->host, NULL, fl, n);
}

/* The table: one row a host, columns as wide as their widest cell. */
static void
print_table(const struct host_status *v, size_t n, const struct conf *conf)
{
	struct buf *cells = xcalloc((n + 1) * NCOLS, sizeof(*cells));
	size_t i, c;

	for (c = 0; c < NCOLS; c++)
		buf_adds(&cells[c], headings[c]);
	for (i = 0; i < n; i++) {
		const struct host_status *hs = &v[i];
		struct buf *row = &cells[(i + 1) * NCOLS];
		const struct release_record *r = hs->rec;
		char since[32] = "-";

		if (hs->since_ms)
			record_time(since, sizeof(since), hs->since_ms / 1000);
		buf_adds(&row[COL_HOST], hs->host);
		live_cell(hs, &row[COL_LIVE]);
		buf_adds(&row[COL_SINCE], hs->reachable ? since : "?");
		buf_adds(&row[COL_BY], r && r->actor[0] ? r->actor : "-");
		buf_adds(&row[COL_REF], r && r->ref[0] ? r->ref : "-");
		buf_adds(&row[COL_BACK], hs->target ? hs->target : "-");
		lock_cell(hs, conf, &row[COL_LOCK]);
	}
	cmd_print_table(cells, n + 1, NCOLS);
}

static int
status_exec(struct cmd_ctx *ctx, void *opts)
{
	struct selection sel = cmd_selection(ctx);
	struct host_status *v;
	struct fleet f;
	struct buf lives = BUF_INIT;
	long long t0 = out_now_ms();
	size_t i;
	int code;
	struct out_field fl[2] = {
		OF_STR("command", "status"),
		OF_INT("hosts", ctx->nhosts),
	};

	(void)opts;
	out_event("start", NULL, NULL, fl, 2);
	fleet_init(&f, &sel, "status", NULL);
	code = status_open(&f, 1, &ctx->err);
	v = xcalloc(f.n ? f.n : 1, sizeof(*v));
	for (i = 0; i < f.n; i++) {
		status_of(&f.h[i], ctx->conf->lock_ttl, &v[i]);
		status_event(&v[i]);
	}
	print_table(v, f.n, ctx->conf);
	if (status_disagree(v, f.n, &lives))
		out_warning(NULL, "status",
			    "the hosts DISAGREE on the live release: %s",
			    buf_str(&lives));
	fleet_outcome(&ctx->outcome, code, NULL, NULL, t0);
	buf_release(&lives);
	free(v);
	fleet_release(&f);
	return code;
}

const struct cmd_entry cmd_status_entry = {
	.name = "status",
	.usage = "",
	.summary = "each host at a glance: live release, since, by whom, lock",
	.help =
	    "Shows, per host, the live release, since when it is live "
	    "(its record's\n"
	    "activation time), who deployed it and from which ref, where "
	    "a rollback\n"
	    "would go, and the lock: free, held by a run (or stale), or a "
	    "freeze\n"
	    "(relflip lock) with its message and who set it. Hosts that "
	    "disagree on\n"
	    "the live release get a warning naming each one's. Reads only: "
	    "it takes\n"
	    "no lock. With --json, one `status` event per host (fields in "
	    "relflip(1)).\n"
	    "\n"
	    "Exit status: 0, or 4 when a host cannot be reached (the others "
	    "are shown).\n"
	    "\n"
	    "Options:\n"
	    "  -h, --help  this help\n",
	.flags = CMD_CONFIG | CMD_RESULT,
	.args = cmd_no_args,
	.exec = status_exec,
};
