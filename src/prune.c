/*
 * Prune: remove old releases on every host, keeping the live one, the
 * rollback target, the newest good ones and a few failed ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "lock.h"
#include "out.h"
#include "plan.h"
#include "prune.h"
#include "quote.h"
#include "steps.h"

struct prune {
	const struct prune_opts *o;
	int keep;
	uint64_t freed_total;
	size_t removed_total;
};

static int
prune_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct prune *pr = arg;
	const char *app = f->conf->app_path;
	const struct release_record **gone = NULL;
	struct buf cmd = BUF_INIT, out = BUF_INIT, errtext = BUF_INIT;
	struct buf names = BUF_INIT, line = BUF_INIT;
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
		       f->conf->keep_failed, pr->o->adopt, &gone);
	for (i = 0; i < n; i++)
		buf_addf(&names, "%s%s", i ? " " : "", gone[i]->id);

	/* What goes: the releases, leftovers of interrupted deploys. */
	for (i = 0; i < n; i++)
		step_list_release(&list, gone[i]->id);
	for (i = 0; i < fh->st.tmpdirs.n; i++)
		buf_addf(&list, "releases/%s\n", fh->st.tmpdirs.v[i]);
	for (i = 0; i < fh->st.trash.n; i++)
		buf_addf(&list, ".relflip/trash/%s\n", fh->st.trash.v[i]);
	for (i = 0; i < fh->st.incoming.n; i++)
		buf_addf(&list, ".relflip/incoming/%s\n", fh->st.incoming.v[i]);

	if (pr->o->dry_run) {
		/* Measure only: the same list, du without rm. */
		buf_adds(&cmd, "L=$(cat)\ncd ");
		sh_quote(&cmd, app);
		buf_adds(&cmd, " || exit 1\n[ -z \"$L\" ] || printf '%s\\n' \"$L\" | "
			       "xargs -r -d '\\n' du -skc -- 2>/dev/null | "
			       "tail -n 1\n");
	} else {
		struct json_obj o;

		step_remove_listed(&cmd, app, 1);
		fleet_log_begin(f, fh, NULL, fh->live, "ok", 0, &o, &line);
		json_obj_uint(&o, "removed", n);
		json_obj_int(&o, "kept", pr->keep);
		json_obj_end(&o);
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

		buf_addf(&d, "%s %zu release%s", pr->o->dry_run ? "would remove"
							: "removed",
			 n, n == 1 ? "" : "s");
		if (n > 0)
			buf_addf(&d, " (%s)", buf_str(&names));
		buf_addf(&d, ", %s %s", size,
			 pr->o->dry_run ? "would be freed" : "freed");
		snprintf(fh->detail, sizeof(fh->detail), "%.150s",
			 buf_str(&d));
		if (d.len > 150)
			memcpy(fh->detail + 146, "...", 4);
		buf_release(&d);
	}
	pr->freed_total += freed;
	pr->removed_total += n;
	if (pr->o->dry_run && list.len > 0) {
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
	buf_release(&list);
	return rc;
}

int
prune_run(const struct selection *sel, const struct prune_opts *opts,
	  struct run_outcome *outcome, struct rf_error *err)
{
	struct prune pr;
	struct fleet f;
	long long t0 = out_now_ms();
	char size[32], dur[32];
	int code = 0;

	memset(&pr, 0, sizeof(pr));
	pr.o = opts;
	pr.keep = opts->keep > 0 ? opts->keep : sel->conf->keep_releases;
	fleet_init(&f, sel, "prune", NULL);
	if (fleet_open(&f, opts->dry_run ? FLEET_PROBE : FLEET_LOCK, err) !=
		0 ||
	    (fleet_activate_all(&f),
	     fleet_step(&f, "prune", prune_one, &pr, err)) != 0) {
		code = err->code;
	} else {
		out_format_bytes(size, sizeof(size), pr.freed_total);
		out_format_duration(dur, sizeof(dur),
				    (long)(out_now_ms() - t0));
		out_text("%s %zu release%s on %zu host%s, %s %s in %s",
			 opts->dry_run ? "dry run: would remove" : "pruned",
			 pr.removed_total, pr.removed_total == 1 ? "" : "s",
			 f.n, f.n == 1 ? "" : "s", size,
			 opts->dry_run ? "would be freed" : "freed", dur);
	}
	fleet_outcome(outcome, code, NULL, NULL, t0);
	fleet_unlock(&f);
	fleet_release(&f);
	return code;
}
