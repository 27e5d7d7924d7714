/*
 * The layout made before the first deploy: see include/setup.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "out.h"
#include "quote.h"
#include "setup.h"
#include "status.h"
#include "steps.h"
#include "xmalloc.h"

static const char *const action_names[] = {
	[SETUP_CREATED] = "created",
	[SETUP_EXISTS] = "exists",
	[SETUP_MISSING] = "missing",
};

const char *
setup_action_name(enum setup_action a)
{
	return action_names[a];
}

void
setup_script(struct buf *cmd, const struct conf *conf)
{
	static const char *const layout[] = {
		".",        "releases",          "shared",
		".relflip", ".relflip/releases", ".relflip/incoming",
	};
	struct buf p = BUF_INIT;
	size_t i;

	buf_adds(cmd, "A=");
	sh_quote(cmd, conf->app_path);
	/*
	 * What is there is left as it is; a name that is there but is not a
	 * directory (or a link to one) stops setup: relflip would fail on
	 * it later.
	 */
	buf_addf(cmd,
		 "\nmk() { if [ -d \"$A/$1\" ]; then echo \"exists $1\"; "
		 "elif [ -e \"$A/$1\" ] || [ -L \"$A/$1\" ]; then "
		 "echo \"$A/$1 is there but is not a directory\" >&2; "
		 "exit %d; "
		 "else mkdir -p \"$A/$1\" && echo \"created $1\" || exit %d; "
		 "fi; }\n",
		 STEP_LAYOUT, STEP_LAYOUT);
	for (i = 0; i < sizeof(layout) / sizeof(layout[0]); i++)
		buf_addf(cmd, "mk %s\n", layout[i]);
	for (i = 0; i < conf->shared_dirs.n; i++) {
		buf_reset(&p);
		buf_addf(&p, "shared/%s", conf->shared_dirs.v[i]);
		buf_adds(cmd, "mk ");
		sh_quote(cmd, buf_str(&p));
		buf_addch(cmd, '\n');
	}
	for (i = 0; i < conf->shared_files.n; i++) {
		buf_reset(&p);
		buf_addf(&p, "shared/%s", conf->shared_files.v[i]);
		buf_adds(cmd, "S=");
		sh_quote(cmd, buf_str(&p));
		buf_adds(cmd, "; [ -e \"$A/$S\" ] || echo \"missing $S\"\n");
	}
	buf_adds(cmd, "exit 0\n");
	buf_release(&p);
}

void
setup_reply_parse(const char *reply, struct setup_result *res)
{
	const char *line = reply, *nl, *sp;
	size_t i, n;

	for (; line != NULL && *line != '\0'; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		n = nl ? (size_t)(nl - line) : strlen(line);
		sp = memchr(line, ' ', n);
		if (sp == NULL || sp + 1 == line + n)
			continue;
		for (i = 0; i < sizeof(action_names) / sizeof(action_names[0]);
		     i++) {
			if ((size_t)(sp - line) == strlen(action_names[i]) &&
			    strncmp(line, action_names[i],
				    (size_t)(sp - line)) == 0)
				break;
		}
		if (i == sizeof(action_names) / sizeof(action_names[0]))
			continue;
		res->v = xreallocarray(res->v, res->n + 1, sizeof(*res->v));
		res->v[res->n].action = (enum setup_action)i;
		snprintf(res->v[res->n].path, sizeof(res->v[res->n].path),
			 "%.*s", (int)(line + n - sp - 1), sp + 1);
		res->n++;
	}
}

size_t
setup_count(const struct setup_result *res, enum setup_action a)
{
	size_t i, n = 0;

	for (i = 0; i < res->n; i++)
		n += res->v[i].action == a;
	return n;
}

void
setup_result_release(struct setup_result *res)
{
	free(res->v);
	res->v = NULL;
	res->n = 0;
}

/* The human detail: what was made, or that all was there. */
static void
setup_detail(struct fleet_host *fh, const struct setup_result *res,
	     const char *app)
{
	struct buf d = BUF_INIT;
	size_t i, made = setup_count(res, SETUP_CREATED);

	if (made == 0) {
		snprintf(fh->detail, sizeof(fh->detail), "already there");
		return;
	}
	buf_adds(&d, "created");
	for (i = 0; i < res->n; i++) {
		if (res->v[i].action != SETUP_CREATED)
			continue;
		buf_addf(&d, " %s",
			 strcmp(res->v[i].path, ".") == 0 ? app
							  : res->v[i].path);
	}
	snprintf(fh->detail, sizeof(fh->detail), "%.150s%s", buf_str(&d),
		 d.len > 150 ? "..." : "");
	buf_release(&d);
}

static int
setup_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct buf cmd = BUF_INIT, out = BUF_INIT, errtext = BUF_INIT;
	struct setup_result res = { NULL, 0 };
	const char *app = f->conf->app_path;
	size_t i;
	int status, rc = -1;

	(void)arg;
	setup_script(&cmd, f->conf);
	out.max = 1 << 20;
	status = fleet_run(fh, app, buf_str(&cmd), &out, &errtext, &fh->err);
	if (status < 0)
		goto out;
	/* What it made before it stopped is said, too. */
	setup_reply_parse(buf_str(&out), &res);
	for (i = 0; i < res.n; i++) {
		struct out_field fl[2] = {
			OF_STR("path", res.v[i].path),
			OF_STR("action", setup_action_name(res.v[i].action)),
		};

		out_event("setup", fh->host->name, "setup", fl, 2);
	}
	if (status != 0) {
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "setup",
			     "cannot create the layout under %s on %s: %s", app,
			     fh->host->name,
			     errtext.len ? buf_str(&errtext)
					 : "the setup script failed");
		rf_error_hint(&fh->err,
			      "relflip -H %s check shows what is "
			      "wrong with the app path",
			      fh->host->name);
		goto out;
	}
	setup_detail(fh, &res, app);
	rc = 0;
out:
	for (i = 0; i < res.n; i++) {
		if (res.v[i].action == SETUP_MISSING)
			out_warning(
			    fh->host->name, "setup",
			    "%s/%s is missing: create it with the app's "
			    "secrets or settings (deploy and check "
			    "refuse a missing shared file)",
			    app, res.v[i].path);
	}
	setup_result_release(&res);
	buf_release(&cmd);
	buf_release(&out);
	buf_release(&errtext);
	return rc;
}

int
setup_run(const struct selection *sel, struct run_outcome *outcome,
	  struct rf_error *err)
{
	struct fleet f;
	long long t0 = out_now_ms();
	int code;

	fleet_init(&f, sel, "setup", NULL);
	code = status_open(&f, 0, err);
	status_step(&f, "setup", setup_one, NULL, &code, err);
	fleet_outcome(outcome, code, NULL, NULL, t0);
	fleet_release(&f);
	return code;
}
