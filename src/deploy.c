/*
 * The deploy: validate, connect, then its table of stages (lock,
 * preflight, the transfer's upload and unpack, link, install, migrate,
 * the batched switch, restart and health, record), and --dry-run printing
 * that same table.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "artifact.h"
#include "connect.h"
#include "deploy.h"
#include "hook.h"
#include "http.h"
#include "json.h"
#include "lock.h"
#include "notify.h"
#include "out.h"
#include "plan.h"
#include "quote.h"
#include "record.h"
#include "release.h"
#include "report.h"
#include "steps.h"
#include "switch.h"
#include "transfer.h"
#include "xmalloc.h"

/* Room asked beyond the unpacked size: 10% and 16 MiB. */
#define DISK_MARGIN_BYTES (16ULL << 20)

/* ---- validate ---- */

static int
shared_path_ok(const char *p)
{
	const char *s = p;

	if (p[0] == '\0' || p[0] == '/')
		return 0;
	while (*s != '\0') {
		size_t n = strcspn(s, "/");

		if ((n == 2 && strncmp(s, "..", 2) == 0) ||
		    (n == 1 && s[0] == '.') || n == 0)
			return 0;
		s += n;
		if (*s == '/')
			s++;
	}
	return 1;
}

static int
validate_args(struct deploy *d, struct rf_error *err)
{
	const struct conf *conf = d->conf;
	const char *rev = d->opts->revision;
	size_t i;

	if (rev == NULL || rev[0] == '\0') {
		rf_error_set(err, RF_EXIT_USAGE, "validate",
			     "no release id: pass --revision ID or set "
			     "GITHUB_SHA");
		return rf_error_hint(err, "a release id is 1-64 characters of "
				     "A-Z a-z 0-9 . _ - (not starting with .)");
	}
	if (!release_id_valid(rev))
		return rf_error_set(err, RF_EXIT_USAGE, "validate",
				    "'%s' is not a valid release id (1-64 "
				    "characters of A-Z a-z 0-9 . _ -, not "
				    "starting with .)",
				    rev);
	if (!release_ref_allowed(&conf->allowed_refs, d->opts->ref)) {
		struct buf globs = BUF_INIT;
		const char *ref = d->opts->ref ? d->opts->ref : "";
		char guess[256];

		for (i = 0; i < conf->allowed_refs.n; i++)
			buf_addf(&globs, "%s%s", i ? " " : "",
				 conf->allowed_refs.v[i]);
		release_ref_guess(&conf->allowed_refs, ref, guess,
				  sizeof(guess));
		if (ref[0] == '\0')
			rf_error_set(err, RF_EXIT_REF, "validate",
				     "no ref given, and allowed_refs is set "
				     "(%s)",
				     buf_str(&globs));
		else
			rf_error_set(err, RF_EXIT_REF, "validate",
				     "ref '%s' is not allowed to deploy "
				     "(allowed_refs: %s)",
				     ref, buf_str(&globs));
		if (guess[0] != '\0' && ref[0] == '\0')
			rf_error_hint(err,
				      "pass --ref %s (from CI, $GITHUB_REF "
				      "gives it)",
				      guess);
		else if (guess[0] != '\0')
			rf_error_hint(err,
				      "did you mean --ref %s? a ref is "
				      "written in full",
				      guess);
		else
			rf_error_hint(err, "deploy from an allowed branch or "
					   "tag, or pass --ref REF (default: "
					   "$GITHUB_REF)");
		buf_release(&globs);
		return -1;
	}
	for (i = 0; i < conf->shared_dirs.n + conf->shared_files.n; i++) {
		const char *p = i < conf->shared_dirs.n
				    ? conf->shared_dirs.v[i]
				    : conf->shared_files.v[i -
							   conf->shared_dirs.n];

		if (!shared_path_ok(p))
			return rf_error_set(err, RF_EXIT_USAGE, "validate",
					    "%s: [app] shared path '%s' must be "
					    "relative, without . or .. parts",
					    conf->file, p);
	}
	/* A file that is not there needs no server to say so. */
	if (d->opts->artifact != NULL && access(d->opts->artifact, R_OK) != 0) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
			     "cannot open '%s': %m", d->opts->artifact);
		return rf_error_hint(err, "deploy the tarball relflip pack "
					  "wrote: relflip pack . -o app.tgz");
	}
	return 0;
}

/*
 * Read the whole artifact: a long local job, so it runs while the hosts
 * are being connected to (connecting changes nothing on a server).
 */
static int
validate_artifact(struct deploy *d, struct rf_error *err)
{
	struct artifact_limits limits = ARTIFACT_LIMITS_DEFAULT;
	long long t0 = out_now_ms();
	char size[32], detail[256];

	out_stage_begin(NULL, "validate");
	if (artifact_manifest(d->opts->artifact, &limits, &d->art, &d->manifest,
			      err) != 0)
		return -1;
	manifest_format(&d->manifest, &d->manifest_text);
	snprintf(d->checksum, sizeof(d->checksum), "sha256:%s", d->art.sha256);
	d->fd = open(d->opts->artifact, O_RDONLY | O_CLOEXEC);
	if (d->fd < 0)
		return rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
				    "cannot open '%s': %m", d->opts->artifact);
	/* Here, beside the connect, rather than after the switch. */
	if (d->conf->health_url != NULL &&
	    http_load("the health check", err) != 0)
		return -1;
	out_format_bytes(size, sizeof(size), d->art.unpacked_size);
	snprintf(detail, sizeof(detail), "%.120s, %llu files, %s unpacked",
		 d->opts->artifact, (unsigned long long)d->art.files, size);
	out_stage_end(NULL, "validate", (long)(out_now_ms() - t0), 1, detail);
	return 0;
}

struct validate_job {
	struct deploy *d;
	struct rf_error err;
	int rc;
};

static void *
validate_thread(void *arg)
{
	struct validate_job *job = arg;

	job->rc = validate_artifact(job->d, &job->err);
	/* From now on the lock's step travels with the agent's start. */
	__atomic_store_n(&job->d->f.warm_up, 0, __ATOMIC_RELAXED);
	return NULL;
}

/* ---- preflight ---- */

static void
preflight_plan(const struct fleet *f, const struct fleet_host *fh, void *run,
	       struct stage_plan *pl)
{
	(void)f;
	(void)fh;
	(void)run;
	buf_adds(&pl->what, "check current, shared_files, an existing "
			    "release of this id and free disk, from what the "
			    "lock's probe read");
}

/* Refuse releases/<id> when it is there and relflip did not make it. */
static int
foreign_release(struct fleet *f, struct fleet_host *fh, const char *id)
{
	const struct release_record *rec = record_find(&fh->st.records, id);

	if (strlist_has(&fh->st.foreign, id))
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "preflight",
			     "releases/%s on %s is not a directory relflip made "
			     "(a link or a file)",
			     id, fh->host->name);
	else if (rec != NULL && rec->has_dir && !rec->has_record)
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "preflight",
			     "releases/%s exists on %s but relflip did not "
			     "make it (no record)",
			     id, fh->host->name);
	else if (rec != NULL && rec->has_dir && !rec->verified)
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "preflight",
			     "releases/%s on %s has no manifest: relflip did "
			     "not check its files (made by relflip 0.1, or by "
			     "hand)",
			     id, fh->host->name);
	else
		return 0;
	rf_error_hint(&fh->err, "deploy under another --revision, or move "
		      "%s/releases/%s away",
		      f->conf->app_path, id);
	return -1;
}

/*
 * Everything here comes from the lock's probe: no round trip of its own.
 */
static int
preflight_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct deploy *d = arg;
	struct deploy_host *h = deploy_host_of(fh);
	const char *id = d->opts->revision;
	const struct layout_state *st = &fh->st;
	struct release_record *rec;
	uint64_t need;
	char s1[32], s2[32];
	size_t i;

	if (st->current == CURRENT_DIR || st->current == CURRENT_OTHER) {
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "preflight",
			     "%s/current on %s is not a symlink: relflip will "
			     "not replace it",
			     f->conf->app_path, fh->host->name);
		return rf_error_hint(&fh->err, "move it aside by hand (mv "
				     "current current.before-relflip), then "
				     "deploy again");
	}
	if (st->current == CURRENT_LINK && st->current_id[0] == '\0') {
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "preflight",
			     "%s/current on %s points at %s, outside "
			     "releases/: relflip could not switch back to it",
			     f->conf->app_path, fh->host->name,
			     st->current_target);
		return rf_error_hint(&fh->err, "point current at a release "
				     "under releases/, or move it aside");
	}
	if (st->missing_shared.n > 0) {
		struct buf names = BUF_INIT;

		for (i = 0; i < st->missing_shared.n; i++)
			buf_addf(&names, "%sshared/%s", i ? ", " : "",
				 st->missing_shared.v[i]);
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "preflight",
			     "shared_files missing on %s: %s (the app would "
			     "start without them)",
			     fh->host->name, buf_str(&names));
		rf_error_hint(&fh->err, "create them under %s/shared with the "
			      "app's settings (mode 0640); relflip setup lists "
			      "them",
			      f->conf->app_path);
		buf_release(&names);
		return -1;
	}
	if (foreign_release(f, fh, id) != 0)
		return -1;
	rec = record_find(&fh->st.records, id);
	if (rec != NULL && rec->has_dir) {
		if (strcmp(rec->checksum, d->checksum) != 0) {
			rf_error_set(&fh->err, RF_EXIT_UPLOAD, "preflight",
				     "release %s on %s was deployed from another "
				     "artifact (%.19s..., this one is "
				     "%.19s...)",
				     id, fh->host->name, rec->checksum,
				     d->checksum);
			return rf_error_hint(&fh->err, "a release id names one "
					     "artifact: build with a new "
					     "--revision");
		}
		h->reuse = 1;
		h->made = 1;
		snprintf(fh->detail, sizeof(fh->detail),
			 "release %.64s already there", id);
		return 0;
	}
	h->have = st->incoming_size;
	if (h->have < 0 || (uint64_t)h->have > d->art.file_size)
		h->have = 0;
	need = d->art.unpacked_size + d->art.unpacked_size / 10 +
	       (d->art.file_size - (uint64_t)h->have) + DISK_MARGIN_BYTES;
	out_format_bytes(s1, sizeof(s1),
			 st->free_bytes < 0 ? 0 : (uint64_t)st->free_bytes);
	out_format_bytes(s2, sizeof(s2), need);
	if (st->free_bytes >= 0 && (uint64_t)st->free_bytes < need) {
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "preflight",
			     "not enough disk on %s: %s free under %s, the "
			     "release needs %s",
			     fh->host->name, s1, f->conf->app_path, s2);
		return rf_error_hint(&fh->err, "free space on %s, or prune: "
				     "relflip -H %s prune --keep 2",
				     fh->host->name, fh->host->name);
	}
	snprintf(fh->detail, sizeof(fh->detail), "%s free", s1);
	if (f->n > 1)
		fh->detail[0] = '\0';
	return 0;
}

static const struct stage preflight_stage = {
	.name = "preflight",
	.flags = 0,
	.does = "check what the deploy would trip over",
	.undo = NULL,
	.plan = preflight_plan,
	.run = preflight_one,
};

void
deploy_fill_record(const struct deploy *d, struct release_record *rec)
{
	const struct fleet *f = &d->f;

	snprintf(rec->id, sizeof(rec->id), "%s", d->opts->revision);
	snprintf(rec->checksum, sizeof(rec->checksum), "%s", d->checksum);
	rec->size = d->art.file_size;
	rec->unpacked = d->art.unpacked_size;
	snprintf(rec->ref, sizeof(rec->ref), "%s",
		 d->opts->ref ? d->opts->ref : "");
	snprintf(rec->actor, sizeof(rec->actor), "%s", f->actor);
	snprintf(rec->runner, sizeof(rec->runner), "%s", f->runner);
	snprintf(rec->run_url, sizeof(rec->run_url), "%s", f->run_url);
	if (rec->created == 0)
		rec->created = d->now;
	rec->has_record = 1;
	rec->has_dir = 1;
}

/* ---- link ---- */

static void
link_plan(const struct fleet *f, const struct fleet_host *fh, void *run,
	  struct stage_plan *p)
{
	struct deploy *d = run;
	struct release_record rec;
	struct buf json = BUF_INIT;
	const struct release_record *old;

	memset(&rec, 0, sizeof(rec));
	old = record_find((struct record_set *)&fh->st.records,
			  d->opts->revision);
	if (old != NULL)
		rec = *old;
	deploy_fill_record(d, &rec);
	if (rec.status != RS_LIVE)
		rec.status = RS_STAGED;
	rec.reason[0] = '\0';
	record_format(&rec, &json);
	step_link_script(&p->script, f->conf, d->opts->revision,
			 buf_str(&json));
	buf_release(&json);
	p->limit = STEP_LIMIT_SHORT;
}

static const struct stage link_stage;

static int
link_judge(struct fleet *f, struct fleet_host *fh, void *arg, int status,
	   const char *errtext)
{
	struct deploy *d = arg;

	(void)f;
	if (status > 0)
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "link",
			     "linking shared files into releases/%s on %s "
			     "failed: %s",
			     d->opts->revision, fh->host->name, errtext);
	if (status == 0) {
		struct release_record *rec;

		rec = record_add(&fh->st.records, d->opts->revision);
		deploy_fill_record(d, rec);
		if (rec->status != RS_LIVE)
			rec->status = RS_STAGED;
		rec->reason[0] = '\0';
		deploy_host_of(fh)->staged = 1;
	}
	return status == 0 ? 0 : -1;
}

static int
link_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	return stage_exec_judged(f, fh, &link_stage, arg);
}

static const struct stage link_stage = {
	.name = "link",
	.flags = STAGE_CHANGES | STAGE_JOINS,
	.does = "link shared dirs and files, write REVISION and the record",
	.undo = "the release is marked failed and pruned later",
	.plan = link_plan,
	.run = link_one,
	.judge = link_judge,
};

/* ---- hooks ---- */

static void
hook_env(struct deploy *d, const struct fleet_host *fh, struct step_env *env)
{
	env->app = d->conf->app_path;
	env->release = d->opts->revision;
	env->previous = fh->live;
	env->host = fh->host->name;
}

static void
hook_plan(struct deploy *d, const struct fleet_host *fh, const char *command,
	  struct stage_plan *p)
{
	struct step_env env;
	struct buf dir = BUF_INIT;

	hook_env(d, fh, &env);
	buf_addf(&dir, "%s/releases/%s", d->conf->app_path,
		 d->opts->revision);
	step_hook_script(&p->script, buf_str(&dir), &env, command);
	buf_release(&dir);
}

/* A hook in the new release's directory on one host. */
static int
hook_one(struct deploy *d, struct fleet *f, struct fleet_host *fh,
	 const char *stage, const char *command)
{
	struct step_env env;
	struct buf dir = BUF_INIT;
	int rc;

	hook_env(d, fh, &env);
	buf_addf(&dir, "%s/releases/%s", f->conf->app_path, d->opts->revision);
	rc = fleet_hook(f, fh, stage, buf_str(&dir), command, &env,
			RF_EXIT_HOOK, &fh->err);
	buf_release(&dir);
	return rc;
}

static int
install_wanted(const struct fleet *f, const struct fleet_host *fh, void *run)
{
	(void)fh;
	(void)run;
	return f->conf->hook_install != NULL;
}

static void
install_plan(const struct fleet *f, const struct fleet_host *fh, void *run,
	     struct stage_plan *p)
{
	hook_plan(run, fh, f->conf->hook_install, p);
}

static int
install_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	return hook_one(arg, f, fh, "install", f->conf->hook_install);
}

static const struct stage install_stage = {
	.name = "install",
	.flags = STAGE_CHANGES,
	.does = "run the install hook in the new release",
	.undo = "the release is marked failed and pruned later",
	.wanted = install_wanted,
	.plan = install_plan,
	.run = install_one,
};

static int
migrate_wanted(const struct fleet *f, const struct fleet_host *fh, void *run)
{
	(void)run;
	return f->conf->hook_migrate != NULL &&
	       ((struct deploy_host *)fh->data)->primary;
}

static void
migrate_plan(const struct fleet *f, const struct fleet_host *fh, void *run,
	     struct stage_plan *p)
{
	hook_plan(run, fh, f->conf->hook_migrate, p);
}

static int
migrate_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	if (hook_one(arg, f, fh, "migrate", f->conf->hook_migrate) != 0)
		return -1;
	deploy_host_of(fh)->migrated = 1;
	snprintf(fh->detail, sizeof(fh->detail), "(primary)");
	return 0;
}

static const struct stage migrate_stage = {
	.name = "migrate",
	.flags = STAGE_CHANGES,
	.does = "run the migrate hook once, on the primary host",
	.undo = "nothing: a database is not rolled back",
	.wanted = migrate_wanted,
	.plan = migrate_plan,
	.run = migrate_one,
};

/* The first selected primary host runs migrate; none selected: a warning. */
static void
choose_primary(struct deploy *d)
{
	size_t i;

	for (i = 0; i < d->f.n; i++) {
		if (d->f.h[i].host->primary) {
			d->dh[i].primary = 1;
			return;
		}
	}
	if (d->conf->hook_migrate != NULL)
		out_warning(NULL, "migrate",
			    "the primary host is not among the selected hosts: "
			    "migrate will not run");
}

/* ---- record, log, prune, unlock ---- */

/* How the run ended, for the record row. */
struct finish {
	const char *result;   /* ok, failed, rolled_back */
	enum release_status status;
	int code;
	char reason[256];
	int prune;
};

/*
 * The record row's script: this release's record, the one it replaces,
 * the log line, pruning and the unlock, in one round trip. It works on
 * records (the host's own, or a copy for --dry-run) and says in *ngone
 * how many releases it prunes; the removal list goes to list.
 */
static void
record_build(struct deploy *d, const struct finish *fin,
	     const struct fleet_host *fh, struct record_set *records,
	     struct buf *cmd, struct buf *list, size_t *ngone)
{
	struct fleet *f = &d->f;
	struct buf json = BUF_INIT, line = BUF_INIT;
	struct json_obj o;
	struct release_record *rec, *prev;
	const struct release_record **gone = NULL;
	long long now = record_now_ms();
	size_t i;
	int keep, made;

	*ngone = 0;
	rec = record_find(records, d->opts->revision);
	/*
	 * No record for a release this run did not make and that had none:
	 * a directory someone else put there stays theirs.
	 */
	made = ((struct deploy_host *)fh->data)->made ||
	       (rec != NULL && rec->has_record);
	/*
	 * A release this run did not make (another artifact under the id)
	 * or that is live or good: a failure before the switch leaves its
	 * record as it was.
	 */
	keep = !made ||
	       (rec != NULL && rec->has_record &&
		(strcmp(rec->checksum, d->checksum) != 0 ||
		 (fin->status == RS_FAILED &&
		  (rec->status == RS_LIVE || rec->status == RS_GOOD))));
	rec = record_add(records, d->opts->revision);
	if (!keep) {
		deploy_fill_record(d, rec);
		rec->status = fin->status;
	}
	if (fin->status == RS_LIVE) {
		rec->activated = now;
		rec->reason[0] = '\0';
	} else {
		snprintf(rec->reason, sizeof(rec->reason), "%s", fin->reason);
		if (fin->status == RS_BAD) {
			/* It was live, for a while: say when. */
			if (fh->sw.switched && f->switched_ms)
				rec->activated = f->switched_ms;
			rec->deactivated = now;
		}
	}
	if (((struct deploy_host *)fh->data)->migrated)
		rec->migrated = 1;
	if (!keep) {
		record_format(rec, &json);
		step_write_record(cmd, f->conf->app_path, rec->id,
				  buf_str(&json));
	}
	prev = fh->live[0] ? record_find(records, fh->live) : NULL;
	/*
	 * The release it replaces becomes good, and one set up by hand (no
	 * record: a Capistrano layout) gets its first record that way, so
	 * that a plain rollback can go back to it.
	 */
	if (fin->status == RS_LIVE && prev != NULL && prev != rec) {
		prev->has_record = 1;
		prev->status = RS_GOOD;
		prev->deactivated = now;
		buf_reset(&json);
		record_format(prev, &json);
		step_write_record(cmd, f->conf->app_path, prev->id,
				  buf_str(&json));
	}
	if (fin->prune) {
		*ngone = plan_prune(records, rec->id, f->conf->keep_releases,
				    f->conf->keep_failed, 0, &gone);
		for (i = 0; i < *ngone; i++)
			step_list_release(list, gone[i]->id);
		for (i = 0; i < fh->st.tmpdirs.n; i++)
			buf_addf(list, "releases/%s\n", fh->st.tmpdirs.v[i]);
		for (i = 0; i < fh->st.trash.n; i++)
			buf_addf(list, ".relflip/trash/%s\n", fh->st.trash.v[i]);
	}
	fleet_log_begin(f, fh, d->opts->revision, fh->live, fin->result,
			fin->code, &o, &line);
	json_obj_str(&o, "checksum", d->checksum);
	json_obj_int(&o, "duration_ms", out_now_ms() - d->started_ms);
	/* The log is where "who removed v1?" is answered, by hand or not. */
	if (fin->prune)
		json_obj_int(&o, "pruned", (long long)*ngone);
	json_obj_end(&o);
	step_append_log(cmd, f->conf->app_path, buf_str(&line));
	if (list->len > 0)
		step_discard_listed(cmd, f->conf->app_path, f->token);
	step_unlock_script(cmd, f->conf->app_path, f->token, 0);
	free(gone);
	buf_release(&json);
	buf_release(&line);
}

static void
record_plan(const struct fleet *f, const struct fleet_host *fh, void *run,
	    struct stage_plan *p)
{
	struct deploy *d = run;
	struct finish fin = { "ok", RS_LIVE, 0, "", 1 };
	struct record_set copy = { NULL, 0 };
	size_t ngone;

	(void)f;
	/* The records as they would become, on a copy. */
	if (fh->st.records.n > 0) {
		copy.v = xcalloc(fh->st.records.n, sizeof(*copy.v));
		memcpy(copy.v, fh->st.records.v,
		       fh->st.records.n * sizeof(*copy.v));
		copy.n = fh->st.records.n;
	}
	record_build(d, &fin, fh, &copy, &p->script, &p->input, &ngone);
	record_set_release(&copy);
}

static int
record_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct deploy *d = arg;
	struct buf cmd = BUF_INIT, list = BUF_INIT, errtext = BUF_INIT;
	size_t ngone;
	int status;

	record_build(d, d->fin, fh, &fh->st.records, &cmd, &list, &ngone);
	if (d->fin->prune) {
		struct out_field fl[4] = {
			OF_STR("phase", "end"),
			OF_INT("duration_ms", 0),
			OF_BOOL("ok", 1),
			OF_INT("removed", ngone),
		};

		if (ngone > 0)
			snprintf(fh->detail, sizeof(fh->detail),
				 "pruned %zu", ngone);
		/* Pruning rides in the record step's round trip. */
		out_event("stage", fh->host->name, "prune", fl, 4);
	}
	status = fleet_run_input(fh, f->conf->app_path, buf_str(&cmd),
				 list.len ? buf_str(&list) : NULL, NULL,
				 &errtext, &fh->err);
	if (status == 0)
		fh->locked = 0;
	else if (status > 0) {
		buf_one_line(&errtext);
		rf_error_set(&fh->err, RF_EXIT_INTERNAL, "record",
			     "writing the release record on %s failed: %s",
			     fh->host->name, buf_str(&errtext));
		if (strstr(buf_str(&errtext), "No space left") != NULL)
			rf_error_hint(
			    &fh->err,
			    "the disk on %s is full: free space (relflip "
			    "-H %s prune --keep 2 removes old releases); "
			    "the lock stays until relflip -H %s unlock",
			    fh->host->name, fh->host->name, fh->host->name);
	}
	buf_release(&cmd);
	buf_release(&list);
	buf_release(&errtext);
	return status == 0 ? 0 : -1;
}

static const struct stage record_stage = {
	.name = "record",
	.flags = STAGE_CHANGES | STAGE_FINAL,
	.does = "write the records and the log line, prune, unlock",
	.undo = NULL,
	.plan = record_plan,
	.run = record_one,
};

/*
 * The record row on every host that holds the lock. A record that cannot
 * be written fails a deploy that had succeeded: what is live is fine, but
 * the records lag until the next run repairs them.
 */
static int
finish(struct deploy *d, int code, struct rf_error *why)
{
	struct finish fin = { "ok", RS_LIVE, code, "", 0 };
	struct rf_error err = RF_ERROR_INIT;

	snprintf(fin.reason, sizeof(fin.reason), "%.250s",
		 code ? why->msg : "");
	if (code == 0) {
		fin.prune = 1;
	} else if (code == RF_EXIT_HEALTH || code == RF_EXIT_ROLLBACK_FAILED) {
		fin.result = "rolled_back";
		fin.status = RS_BAD;
	} else {
		fin.result = "failed";
		fin.status = RS_FAILED;
	}
	d->fin = &fin;
	/* Every host that holds our lock gets its record and log line. */
	if (stage_run(&d->f, &record_stage, d, &err) == 0) {
		if (code == RF_EXIT_INTERRUPTED)
			rf_error_hint(
			    why,
			    "current is unchanged on every "
			    "host; %s is marked failed and the lock "
			    "is released: relflip releases shows each "
			    "host, deploy again when ready",
			    d->opts->revision);
	} else {
		fleet_unlock(&d->f);
		if (code != 0) {
			out_error(&err);
		} else {
			*why = err;
			rf_error_set(why, err.code ? err.code : RF_EXIT_INTERNAL,
				     "record",
				     "%s is live, but %.400s; the next deploy or "
				     "rollback repairs the records",
				     d->opts->revision, err.msg);
			if (err.hint[0] != '\0')
				rf_error_hint(why, "%s", err.hint);
			code = why->code;
		}
	}
	d->fin = NULL;
	return code;
}

/* ---- the table ---- */

/* The deploy's rows, with the transfer mode's two in the middle. */
static size_t
deploy_rows(const struct deploy *d, const struct stage **rows)
{
	size_t n = 0;

	rows[n++] = &lock_stage;
	rows[n++] = &preflight_stage;
	rows[n++] = d->transfer->upload;
	rows[n++] = d->transfer->unpack;
	rows[n++] = &link_stage;
	rows[n++] = &install_stage;
	rows[n++] = &migrate_stage;
	rows[n++] = &before_switch_stage;
	rows[n++] = &switch_stage;
	rows[n++] = &restart_stage;
	rows[n++] = &after_switch_stage;
	rows[n++] = &health_stage;
	rows[n++] = &way_back_stage;
	rows[n++] = &record_stage;
	return n;
}

#define DEPLOY_ROWS_MAX 16

/*
 * Probe in a dry run reports a held lock as the deploy would meet it; its
 * line says that none was taken.
 */
static int
dry_lock_check(struct fleet *f, struct fleet_host *fh, void *arg)
{
	(void)f;
	(void)arg;
	if (!fh->st.lock.held) {
		snprintf(fh->detail, sizeof(fh->detail),
			 "free (a dry run takes no lock)");
		return 0;
	}
	return rf_error_set(&fh->err, RF_EXIT_LOCKED, "lock",
			    "deploy lock on %s is held by %s for %s %s",
			    fh->host->name,
			    fh->st.lock.user[0] ? fh->st.lock.user : "someone",
			    fh->st.lock.command, fh->st.lock.revision);
}

/*
 * Where a rollback after this deploy would go: the release live before it,
 * or, when this deploy re-deploys the live release, the newest good one.
 */
static const char *
rollback_target(struct deploy *d)
{
	struct fleet *f = &d->f;
	const struct release_record *r;
	struct rf_error ignored = RF_ERROR_INIT;
	size_t i;

	for (i = 0; i < f->n; i++) {
		if (f->h[i].live[0] == '\0')
			continue;
		if (strcmp(f->h[i].live, d->opts->revision) != 0)
			return f->h[i].live;
		r = plan_rollback_target(&f->h[i].st.records, f->h[i].live,
					 NULL, &ignored);
		return r ? r->id : NULL;
	}
	return NULL;
}

static void
summary(struct deploy *d, int code, const struct rf_error *err)
{
	char dur[32];
	long ms = (long)(out_now_ms() - d->started_ms);

	out_format_duration(dur, sizeof(dur), ms);
	if (code == 0 && !d->opts->dry_run)
		out_text("deployed %s to %zu host%s in %s (rollback target: "
			 "%s)",
			 d->opts->revision, d->f.n, d->f.n == 1 ? "" : "s", dur,
			 d->previous ? d->previous : "none");
	fleet_report(&d->f, d->opts->revision, d->previous, code, ms, err);
}

int
deploy_run(const struct selection *sel, const struct deploy_opts *opts,
	   struct run_outcome *outcome, struct rf_error *err)
{
	struct deploy d;
	struct deploy_opts o = *opts; /* pull may fetch the artifact here */
	const struct stage *rows[DEPLOY_ROWS_MAX];
	size_t i, nrows;
	int code = 0;

	memset(&d, 0, sizeof(d));
	d.conf = sel->conf;
	d.opts = &o;
	d.fd = -1;
	d.transfer = transfer_pull_wanted(&o, d.conf) ? &transfer_pull
						      : &transfer_delta;
	pthread_mutex_init(&d.progress_lock, NULL);
	pthread_mutex_init(&d.transfer_lock, NULL);
	d.started_ms = out_now_ms();
	d.now = record_now_ms();
	fleet_init(&d.f, sel, "deploy", opts->revision);
	d.f.warm_up = 1;
	d.f.dry_run = opts->dry_run;
	d.dh = xcalloc(sel->n ? sel->n : 1, sizeof(*d.dh));
	for (i = 0; i < sel->n; i++)
		d.f.h[i].data = &d.dh[i];
	nrows = deploy_rows(&d, rows);
	d.asks.shared_files = &d.conf->shared_files;
	d.asks.base_manifest = 1;
	d.asks.free_space = 1;
	d.f.asks = &d.asks;

	if (validate_args(&d, err) != 0 ||
	    transfer_pull_prepare(&d, &o, err) != 0) {
		code = err->code;
		goto done;
	}
	{
		struct validate_job job = { &d, RF_ERROR_INIT, 0 };
		pthread_t t;
		int threaded, connected;

		threaded = pthread_create(&t, NULL, validate_thread, &job) == 0;
		if (!threaded)
			validate_thread(&job);
		connected = fleet_connect(&d.f, err) == 0;
		if (threaded)
			pthread_join(t, NULL);
		/* A rejected artifact is the first thing to say (step 1). */
		if (job.rc != 0) {
			*err = job.err;
			code = err->code;
			goto done;
		}
		if (!connected) {
			code = err->code;
			goto done;
		}
	}
	step_incoming_path(&d.incoming, d.conf->app_path, opts->revision,
			   d.art.sha256);
	d.asks.incoming = buf_str(&d.incoming);
	choose_primary(&d);
	if (opts->dry_run) {
		if (fleet_probe(&d.f, err) != 0) {
			code = err->code;
			goto done;
		}
		d.previous = rollback_target(&d);
		fleet_activate_all(&d.f);
		if (fleet_step(&d.f, "lock", dry_lock_check, NULL, err) == 0)
			fleet_step(&d.f, "preflight", preflight_one, &d, err);
		for (i = 0; i < d.f.n; i++) {
			d.f.h[i].target = opts->revision;
			d.f.h[i].back = d.f.h[i].live[0] ? d.f.h[i].live : NULL;
			if (d.f.h[i].failed) {
				out_error(&d.f.h[i].err);
				if (code == 0)
					code = d.f.h[i].err.code;
			}
		}
		stages_print(&d.f, rows, nrows, &d);
		if (code == 0) {
			rf_error_clear(err);
			out_text("dry run: the plan could run; nothing was "
				 "changed");
		} else {
			rf_error_set(err, (enum rf_exit)code, NULL,
				     "dry run: the plan could not run on every "
				     "host (see above)");
		}
		goto done;
	}
	/* The lock row reads what is live: what the way back goes to. */
	if (stage_run(&d.f, rows[0], &d, err) != 0) {
		code = err->code;
		goto done;
	}
	d.previous = rollback_target(&d);
	for (i = 0; i < d.f.n; i++) {
		d.f.h[i].target = opts->revision;
		d.f.h[i].back = d.f.h[i].live[0] ? d.f.h[i].live : NULL;
	}
	for (i = 0; i < d.f.n; i++) {
		if (d.f.h[i].live[0] != '\0') {
			out_text("  live now: %s", d.f.h[i].live);
			break;
		}
	}
	code = stages_walk(&d.f, rows + 1, nrows - 1, &d, err);
	code = finish(&d, code, err);

done:
	if (code != 0 && err->code == 0)
		err->code = (enum rf_exit)code;
	summary(&d, code, err);
	fleet_outcome(outcome, code, opts->revision, d.previous, d.started_ms);
	if (d.fd >= 0)
		close(d.fd);
	transfer_pull_end(&d);
	fleet_unlock(&d.f);
	notify_run_end(&d.f, outcome, code, err);
	fleet_release(&d.f);
	free(d.dh);
	transfer_delta_release(&d);
	manifest_release(&d.manifest);
	buf_release(&d.manifest_text);
	buf_release(&d.incoming);
	return code;
}
