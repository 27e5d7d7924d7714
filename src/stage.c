/*
 * Walking a command's table of stages: running each row on the hosts, and
 * printing the rows for --dry-run.
 */
#include <stdio.h>
#include <stdlib.h>
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

const char *
stage_plan_stdin(const struct stage_plan *p, size_t *len)
{
	if (p->input.len > 0) {
		*len = p->input.len;
		return p->input.buf;
	}
	*len = p->shared_len;
	return p->shared_len > 0 ? p->shared_input : NULL;
}

int
stage_exec(struct fleet *f, struct fleet_host *fh, const struct stage *s,
	   void *run, struct buf *out, struct buf *errtext)
{
	struct stage_plan p = STAGE_PLAN_INIT;
	struct buf cmd = BUF_INIT;
	const char *in;
	size_t inlen;
	int status;

	s->plan(f, fh, run, &p);
	in = stage_plan_stdin(&p, &inlen);
	if (fh->locked)
		step_renew(&cmd, f->conf->app_path);
	buf_adds(&cmd, buf_str(&p.script));
	out_debug("%s: %s: %s", fh->host->name, s->name, buf_str(&cmd));
	status = remote_run_data(fh->r, buf_str(&cmd), in, inlen, p.limit, out,
				 errtext, &fh->err);
	buf_release(&cmd);
	stage_plan_release(&p);
	return status;
}

/* A step's stderr as a judge quotes it: one line (buf_one_line). */
static const char *
step_message(struct buf *errtext)
{
	buf_one_line(errtext);
	return buf_str(errtext);
}

int
stage_exec_judged(struct fleet *f, struct fleet_host *fh,
		  const struct stage *s, void *run)
{
	struct buf errtext = BUF_INIT;
	int status, rc;

	status = stage_exec(f, fh, s, run, NULL, &errtext);
	rc = status < 0 ? -1
			: s->judge(f, fh, run, status, step_message(&errtext));
	buf_release(&errtext);
	return rc;
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

/* Two rows in one round trip: what the second got, for its own step. */
struct joined {
	const struct stage *a, *b;
	void *run;
	int *ran_b;   /* per host: b ran in the same script */
	int *status_b;
	struct buf *errtext_b;
	char mark[64];
};

static int
joined_a(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct joined *j = arg;
	size_t i = (size_t)(fh - f->h);
	struct stage_plan pa = STAGE_PLAN_INIT, pb = STAGE_PLAN_INIT;
	struct buf cmd = BUF_INIT, errtext = BUF_INIT;
	const char *m, *in;
	size_t inlen;
	int status, rc;

	j->ran_b[i] = 0;
	if (j->b->wanted != NULL && !j->b->wanted(f, fh, j->run))
		return j->a->run(f, fh, j->run);
	j->a->plan(f, fh, j->run, &pa);
	j->b->plan(f, fh, j->run, &pb);
	if (fh->locked)
		step_renew(&cmd, f->conf->app_path);
	/*
	 * Each in a subshell of its own (their variables apart); b only once
	 * a succeeded, after a line on stderr that tells the two apart.
	 */
	buf_addf(&cmd, "(\n%s)\nS=$?; [ $S -eq 0 ] || exit $S\n"
		       "echo '%s' >&2\n(\n%s)\n",
		 buf_str(&pa.script), j->mark, buf_str(&pb.script));
	out_debug("%s: %s+%s: %s", fh->host->name, j->a->name, j->b->name,
		  buf_str(&cmd));
	errtext.max = 8192;
	in = stage_plan_stdin(&pa, &inlen);
	status = remote_run_data(fh->r, buf_str(&cmd), in, inlen,
				 pa.limit > pb.limit ? pa.limit : pb.limit, NULL,
				 &errtext, &fh->err);
	m = strstr(buf_str(&errtext), j->mark);
	if (status >= 0 && m != NULL) {
		/* a went through; the status is b's. */
		j->ran_b[i] = 1;
		j->status_b[i] = status;
		buf_adds(&j->errtext_b[i], m + strlen(j->mark) +
						(m[strlen(j->mark)] == '\n'));
		errtext.buf[m - errtext.buf] = '\0';
		errtext.len = (size_t)(m - errtext.buf);
		status = 0;
	}
	rc = status < 0
		 ? -1
		 : j->a->judge(f, fh, j->run, status, step_message(&errtext));
	stage_plan_release(&pa);
	stage_plan_release(&pb);
	buf_release(&cmd);
	buf_release(&errtext);
	return rc;
}

static int
joined_b(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct joined *j = arg;
	size_t i = (size_t)(fh - f->h);

	if (!j->ran_b[i])
		return j->b->run(f, fh, j->run);
	return j->b->judge(f, fh, j->run, j->status_b[i],
			   step_message(&j->errtext_b[i]));
}

/*
 * Rows a and b in one round trip where a host runs both: a's step runs
 * both scripts, b's step then only judges what b's script did (or runs it
 * alone where a's run went another way, such as a fallback).
 */
static int
stages_run_joined(struct fleet *f, const struct stage *a,
		  const struct stage *b, void *run, struct rf_error *err)
{
	struct joined j;
	size_t i;
	int rc = -1;

	memset(&j, 0, sizeof(j));
	j.a = a;
	j.b = b;
	j.run = run;
	j.ran_b = calloc(f->n ? f->n : 1, sizeof(*j.ran_b));
	j.status_b = calloc(f->n ? f->n : 1, sizeof(*j.status_b));
	j.errtext_b = calloc(f->n ? f->n : 1, sizeof(*j.errtext_b));
	if (j.ran_b == NULL || j.status_b == NULL || j.errtext_b == NULL)
		rf_bug("out of memory");
	snprintf(j.mark, sizeof(j.mark), "relflip-%s-joined", f->token);
	for (i = 0; i < f->n; i++)
		f->h[i].active = !f->h[i].failed &&
				 (a->wanted == NULL || a->wanted(f, &f->h[i], run));
	if (fleet_step(f, a->name, joined_a, &j, err) != 0)
		goto out;
	for (i = 0; i < f->n; i++)
		f->h[i].active = !f->h[i].failed &&
				 (b->wanted == NULL || b->wanted(f, &f->h[i], run));
	if (fleet_step(f, b->name, joined_b, &j, err) != 0)
		goto out;
	rc = 0;
out:
	for (i = 0; i < f->n; i++)
		buf_release(&j.errtext_b[i]);
	free(j.ran_b);
	free(j.status_b);
	free(j.errtext_b);
	return rc;
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
			int rc, join = i + 1 < n &&
				       (rows[i + 1]->flags & STAGE_JOINS) &&
				       rows[i]->judge != NULL &&
				       rows[i + 1]->judge != NULL;

			if (join)
				rc = stages_run_joined(f, rows[i], rows[i + 1],
						       run, err);
			else
				rc = stage_run(f, rows[i], run, err);
			if (rc != 0)
				return err->code ? (int)err->code
						 : RF_EXIT_INTERNAL;
			i += join;
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
