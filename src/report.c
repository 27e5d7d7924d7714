/*
 * The end of a run: a per-host table, and under GitHub Actions a Markdown
 * summary.
 */
#include <stdio.h>
#include <string.h>

#include "out.h"
#include "report.h"

/* Where a host stands after the run, in a few words, and what is live. */
static const char *
host_outcome(const struct fleet_host *fh, const char **live)
{
	/* A host never probed: what is live there was not looked at. */
	if (fh->st.server_now == 0)
		*live = "(not checked)";
	else
		*live = fh->live[0] ? fh->live : "none";
	if (fh->sw.switched && fh->sw.reverted && fh->sw.revert_ok) {
		*live = fh->back ? fh->back : "none";
		return "rolled back";
	}
	if (fh->sw.switched && fh->sw.reverted) {
		*live = fh->back ? fh->back : "none";
		return "ROLLBACK FAILED";
	}
	if (fh->sw.switched && !fh->sw.healthy) {
		*live = fh->target;
		return "UNHEALTHY, still switched";
	}
	if (fh->sw.switched) {
		*live = fh->target;
		return "ok";
	}
	if (fh->failed)
		return "failed";
	if (!fh->connected)
		return "not reached";
	return "unchanged";
}

void
fleet_report(const struct fleet *f, const char *revision, const char *previous,
	     int code, long duration_ms, const struct rf_error *err)
{
	struct buf md = BUF_INIT;
	size_t i;
	char dur[32];

	out_live_end();
	if (f->n > 1 && !out_cfg.quiet) {
		out_text("  %-20s %-26s %-24s %s", "HOST", "RESULT", "LIVE",
			 "DURATION");
		for (i = 0; i < f->n; i++) {
			const struct fleet_host *fh = &f->h[i];
			const char *live, *what = host_outcome(fh, &live);

			out_format_duration(dur, sizeof(dur),
					    (long)(fh->t_last - fh->t_first));
			out_text("  %-20s %-26s %-24s %s", fh->host->name, what,
				 live, dur);
		}
	}
	if (!out_cfg.github)
		return;
	out_format_duration(dur, sizeof(dur), duration_ms);
	buf_addf(&md, "### relflip %s %s: %s\n\n", f->command,
		 revision ? revision : "",
		 code == 0 ? "done"
		 : code == RF_EXIT_HEALTH ? "health check failed, rolled back"
		 : code == RF_EXIT_ROLLBACK_FAILED ? "ROLLBACK FAILED: a person "
						     "is needed"
						   : "failed");
	buf_addf(&md, "| | |\n|---|---|\n| release | `%s` |\n"
		      "| previous | `%s` |\n| result | %s (exit %d) |\n"
		      "| duration | %s |\n| actor | %s |\n",
		 revision ? revision : "-", previous ? previous : "none",
		 code == 0 ? "ok" : "failed", code, dur, f->actor);
	if (f->run_url[0] != '\0')
		buf_addf(&md, "| run | %s |\n", f->run_url);
	if (err != NULL && err->msg[0] != '\0')
		buf_addf(&md, "| error | %s |\n", err->msg);
	if (code == RF_EXIT_HEALTH)
		buf_addf(&md, "\n**Rollback:** every switched host went back "
			      "to `%s`.\n",
			 previous ? previous : "(no current)");
	buf_adds(&md, "\n| host | result | live | duration |\n"
		      "|---|---|---|---|\n");
	for (i = 0; i < f->n; i++) {
		const struct fleet_host *fh = &f->h[i];
		const char *live, *what = host_outcome(fh, &live);

		out_format_duration(dur, sizeof(dur),
				    (long)(fh->t_last - fh->t_first));
		buf_addf(&md, "| %s | %s | `%s` | %s |\n", fh->host->name,
			 what, live, dur);
	}
	buf_addch(&md, '\n');
	out_step_summary(buf_str(&md));
	buf_release(&md);
}
