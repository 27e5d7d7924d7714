/*
 * relflip log [-n N]: the hosts' deploy logs, merged by time, newest
 * last: what was done where, by whom, and how it ended.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "logread.h"
#include "out.h"
#include "record.h"
#include "xmalloc.h"

#define LOG_DEFAULT_LINES 20

struct log_opts {
	long long lines;
};

static const struct option log_options[] = {
	{ "lines", required_argument, NULL, 'n' },
	{ NULL, 0, NULL, 0 },
};

static int
log_option(void *opts, int c, const char *arg, struct rf_error *err)
{
	struct log_opts *o = opts;
	char *end;

	(void)c;
	errno = 0;
	o->lines = strtoll(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || o->lines < 1 ||
	    o->lines > LOG_LINES_MAX)
		return cmd_usage_fail(err,
				      "-n '%s' is not a number of lines "
				      "(1-%d)",
				      arg, LOG_LINES_MAX);
	return 0;
}

enum {
	COL_TIME,
	COL_HOST,
	COL_BY,
	COL_WHAT,
	COL_RELEASE,
	COL_RESULT,
	COL_MORE,
	NCOLS
};

static const char *const headings[NCOLS] = {
	"TIME", "HOST", "BY", "COMMAND", "RELEASE", "RESULT", "",
};

/* "v2 (was v1)"; for lines about no release, the one live then. */
static void
release_cell(const struct log_entry *e, struct buf *b)
{
	if (e->revision[0] != '\0') {
		buf_adds(b, e->revision);
		if (e->previous[0] != '\0')
			buf_addf(b, " (was %s)", e->previous);
	} else if (e->previous[0] != '\0') {
		buf_addf(b, "- (live: %s)", e->previous);
	} else {
		buf_adds(b, "-");
	}
}

/* What some commands add: why and whose for unlock, removed for prune. */
static void
more_cell(const struct log_entry *e, struct buf *b)
{
	const char *sep = "";

	if (e->why[0] != '\0') {
		buf_addf(b, "why: %s", e->why);
		sep = ", ";
	}
	if (e->holder[0] != '\0') {
		buf_addf(b, "%sheld by %s", sep, e->holder);
		if (e->holder_since[0] != '\0')
			buf_addf(b, " since %s", e->holder_since);
		sep = ", ";
	}
	if (e->removed >= 0) {
		buf_addf(b, "%sremoved %lld", sep, e->removed);
		if (e->kept >= 0)
			buf_addf(b, " (keep %lld)", e->kept);
		sep = ", ";
	}
	if (e->message[0] != '\0')
		buf_addf(b, "%smessage: %s", sep, e->message);
}

static void
log_event(const struct log_entry *e)
{
	struct out_field fl[18];
	char when[40];
	size_t n = 0;

	record_time(when, sizeof(when), e->time_ms / 1000);
	fl[n++] = (struct out_field)OF_STR("logged_at", when);
	fl[n++] = (struct out_field)OF_STR("command", e->command);
	fl[n++] = (struct out_field)OF_STR("revision", e->revision);
	fl[n++] = (struct out_field)OF_STR("previous", e->previous);
	fl[n++] = (struct out_field)OF_STR("result", e->result);
	fl[n++] = (struct out_field)OF_INT("exit_code", e->exit_code);
	fl[n++] = (struct out_field)OF_STR("actor", e->actor);
	fl[n++] = (struct out_field)OF_STR("runner", e->runner);
	fl[n++] = (struct out_field)OF_STR("run_url", e->run_url);
	if (e->why[0] != '\0')
		fl[n++] = (struct out_field)OF_STR("why", e->why);
	if (e->holder[0] != '\0')
		fl[n++] = (struct out_field)OF_STR("holder", e->holder);
	if (e->holder_since[0] != '\0')
		fl[n++] =
		    (struct out_field)OF_STR("holder_since", e->holder_since);
	if (e->message[0] != '\0')
		fl[n++] = (struct out_field)OF_STR("message", e->message);
	if (e->checksum[0] != '\0')
		fl[n++] = (struct out_field)OF_STR("checksum", e->checksum);
	if (e->removed >= 0)
		fl[n++] = (struct out_field)OF_INT("removed", e->removed);
	if (e->kept >= 0)
		fl[n++] = (struct out_field)OF_INT("kept", e->kept);
	if (e->duration_ms >= 0)
		fl[n++] =
		    (struct out_field)OF_INT("duration_ms", e->duration_ms);
	out_event("log", e->host, NULL, fl, n);
}

static void
print_table(const struct log_list *list)
{
	struct buf *cells = xcalloc((list->n + 1) * NCOLS, sizeof(*cells));
	size_t i, c;

	for (c = 0; c < NCOLS; c++)
		buf_adds(&cells[c], headings[c]);
	for (i = 0; i < list->n; i++) {
		const struct log_entry *e = &list->v[i];
		struct buf *row = &cells[(i + 1) * NCOLS];
		char when[32];

		record_time(when, sizeof(when), e->time_ms / 1000);
		buf_adds(&row[COL_TIME], when);
		buf_adds(&row[COL_HOST], e->host);
		buf_adds(&row[COL_BY], e->actor[0] ? e->actor : "-");
		buf_adds(&row[COL_WHAT], e->command);
		release_cell(e, &row[COL_RELEASE]);
		buf_adds(&row[COL_RESULT], e->result[0] ? e->result : "?");
		if (e->exit_code != 0)
			buf_addf(&row[COL_RESULT], " (exit %d)", e->exit_code);
		more_cell(e, &row[COL_MORE]);
	}
	cmd_print_table(cells, list->n + 1, NCOLS);
}

static int
log_exec(struct cmd_ctx *ctx, void *opts)
{
	const struct log_opts *o = opts;
	struct selection sel = cmd_selection(ctx);
	struct log_list list = { NULL, 0 };
	long long t0 = out_now_ms();
	size_t n = o->lines ? (size_t)o->lines : LOG_DEFAULT_LINES, i;
	int code;
	struct out_field fl[3] = {
		OF_STR("command", "log"),
		OF_INT("hosts", ctx->nhosts),
		OF_INT("lines", n),
	};

	out_event("start", NULL, NULL, fl, 3);
	code = log_run(&sel, n, &list, &ctx->err);
	for (i = 0; i < list.n; i++)
		log_event(&list.v[i]);
	if (list.n > 0)
		print_table(&list);
	else
		out_text("no log lines on %s: nothing was done there with "
			 "relflip yet",
			 ctx->nhosts == 1 ? "that host" : "those hosts");
	fleet_outcome(&ctx->outcome, code, NULL, NULL, t0);
	log_list_release(&list);
	return code;
}

const struct cmd_entry cmd_log_entry = {
	.name = "log",
	.usage = "[-n N]",
	.summary = "the hosts' deploy logs, merged by time, newest last",
	.help = "Reads APP/.relflip/log.jsonl on every selected host (only "
		"its last N\n"
		"lines leave the server) and prints the newest N events of all "
		"of them,\n"
		"oldest first: when, host, who, what (deploy, rollback, prune, "
		"lock,\n"
		"unlock), the release (and the one before), the result and its "
		"exit code,\n"
		"and what some add: why and whose for unlock, how many prune "
		"removed, a\n"
		"freeze's message. Lines that are not log lines (a torn last "
		"line left by\n"
		"an interrupted append) are skipped, with a warning saying how "
		"many. With\n"
		"--json, one `log` event per line (fields in relflip(1)).\n"
		"\n"
		"Options:\n"
		"  -n, --lines N  how many events (default 20, at most 10000)\n"
		"  -h, --help     this help\n",
	.flags = CMD_CONFIG | CMD_RESULT,
	.options = log_options,
	.shortopts = "n:",
	.opts_size = sizeof(struct log_opts),
	.option = log_option,
	.args = cmd_no_args,
	.exec = log_exec,
};
