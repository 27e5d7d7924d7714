/*
 * Walking a command's table of stages: running each row on the hosts, and
 * printing the rows for --dry-run.
 */
#include <stdio.h>
#include <string.h>

#include "lock.h"
#include "out.h"
#include "stage.h"
#include "steps.h"
#include "switch.h"

void
stage_plan_release(struct stage_plan *p)
{
	buf_release(&p->script);
	buf_release(&p->input);
	buf_release(&p->what);
}

int
stage_exec(struct fleet *f, struct fleet_host *fh, const struct stage *s,
	   void *run, struct buf *out, struct buf *errtext)
{
	struct stage_plan p = STAGE_PLAN_INIT;
	struct buf cmd = BUF_INIT;
	int status;

	s->plan(f, fh, run, &p);
	if (fh->locked)
		step_renew(&cmd, f->conf->app_path);
	buf_adds(&cmd, buf_str(&p.script));
	out_debug("%s: %s: %s", fh->host->name, s->name, buf_str(&cmd));
	status = remote_run_limit(fh->r, buf_str(&cmd),
				  p.input.len ? buf_str(&p.input) : NULL,
				  p.limit, out, errtext, &fh->err);
	buf_release(&cmd);
	stage_plan_release(&p);
	return status;
}

int
stage_run(struct fleet *f, const struct stage *s, void *run,
	  struct rf_error *err)
{
	size_t i;
	int rc;

	for (i = 0; i < f->n; i++) {
		struct fleet_host *fh = &f->h[i];

		if (s->flags & STAGE_FINAL) {
			/* Its record and log line, whatever happened before. */
			fh->active = fh->locked;
			fh->failed = 0;
		} else {
			fh->active = !fh->failed &&
				     (s->wanted == NULL || s->wanted(f, fh, run));
		}
	}
	f->final = (s->flags & STAGE_FINAL) != 0;
	rc = fleet_step(f, s->name, s->run, run, err);
	f->final = 0;
	if (rc == 0)
		return 0;
	if (s->flags & STAGE_LOCK)
		fleet_unlock(f);
	return -1;
}

int
stages_walk(struct fleet *f, const struct stage *const *rows, size_t n,
	    void *run, struct rf_error *err)
{
	size_t i, j;
	int code;

	for (i = 0; i < n; i++) {
		if (rows[i]->flags & (STAGE_FINAL | STAGE_UNDO))
			continue;
		if (!(rows[i]->flags & STAGE_BATCHED)) {
			if (stage_run(f, rows[i], run, err) != 0)
				return err->code ? (int)err->code
						 : RF_EXIT_INTERNAL;
			continue;
		}
		if (interrupted) {
			rf_error_set(err, RF_EXIT_INTERRUPTED, rows[i]->name,
				     "interrupted before the switch: current is "
				     "unchanged");
			return err->code;
		}
		for (j = i; j < n && (rows[j]->flags & STAGE_BATCHED); j++)
			;
		code = switch_batches(f, rows + i, j - i, run, err);
		if (code != 0)
			return code;
		i = j - 1;
	}
	return 0;
}

/* One row of the dry run: the stage's name, then the script, indented. */
static void
print_plan(const struct fleet_host *fh, const struct stage *s,
	   const struct stage_plan *p)
{
	const char *text = p->script.len ? buf_str(&p->script)
					 : buf_str(&p->what);
	struct out_field fl[3] = {
		OF_STR("command", text),
		OF_BOOL("changes", s->flags & STAGE_CHANGES),
		OF_STR("undo", s->undo),
	};
	struct buf ind = BUF_INIT;
	const char *c;

	out_event("plan", fh->host->name, s->name, fl, 3);
	if (out_cfg.json)
		return;
	for (c = text; *c != '\0'; c++) {
		if (*c == '\n' && c[1] == '\0')
			break;
		buf_addch(&ind, *c);
		if (*c == '\n')
			buf_adds(&ind, "              | ");
	}
	out_primary("  %-10s  %s%s", s->name, s->does,
		    (s->flags & STAGE_CHANGES) ? "" : " (changes nothing)");
	if (ind.len > 0)
		out_primary("              | %s", buf_str(&ind));
	if (s->undo != NULL)
		out_primary("              undone by: %s", s->undo);
	buf_release(&ind);
}

void
stages_print(struct fleet *f, const struct stage *const *rows, size_t n,
	     void *run)
{
	size_t i, k;

	for (i = 0; i < f->n; i++) {
		struct fleet_host *fh = &f->h[i];

		if (fh->failed)
			continue;
		out_primary("plan on %s (%s:%d), live now: %s", fh->host->name,
			    fh->host->address, fh->host->port,
			    fh->live[0] ? fh->live : "none");
		for (k = 0; k < n; k++) {
			struct stage_plan p = STAGE_PLAN_INIT;

			if (rows[k]->wanted != NULL &&
			    !rows[k]->wanted(f, fh, run))
				continue;
			rows[k]->plan(f, fh, run, &p);
			print_plan(fh, rows[k], &p);
			stage_plan_release(&p);
		}
	}
}
