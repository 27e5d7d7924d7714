/*
 * The deploy: validate, connect, lock, preflight, upload, unpack, link,
 * install, migrate, switch (batches, health, the way back), record, prune.
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
#include "deploy.h"
#include "fleet.h"
#include "out.h"
#include "plan.h"
#include "quote.h"
#include "record.h"
#include "release.h"
#include "steps.h"
#include "xmalloc.h"

/* Room asked beyond the unpacked size: 10% and 16 MiB. */
#define DISK_MARGIN_BYTES (16ULL << 20)

struct deploy_host {
	int reuse;          /* releases/<id> is there with this checksum */
	int64_t have;       /* bytes of the upload already on the server */
	uint64_t sent;      /* progress of the upload, from the file's start */
	int staged;         /* the staged record was written */
	int migrated;
};

struct deploy {
	struct cmd_ctx *ctx;
	const struct conf *conf;
	const struct deploy_opts *opts;
	struct artifact_info art;
	struct fleet f;
	struct deploy_host *dh;
	int fd;                /* the artifact, open for the upload */
	long long started_ms;
	long long now;         /* epoch ms at the start, for records */
	long long switched_ms; /* epoch ms when the switch began, or 0 */
	char checksum[72];     /* "sha256:<hex>" */
	const char *previous;  /* live release on the first host, or NULL */
	pthread_mutex_t progress_lock;
};

static struct deploy_host *
dhost(struct fleet_host *fh)
{
	return fh->data;
}

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

		for (i = 0; i < conf->allowed_refs.n; i++)
			buf_addf(&globs, "%s%s", i ? " " : "",
				 conf->allowed_refs.v[i]);
		rf_error_set(err, RF_EXIT_REF, "validate",
			     "ref '%s' is not allowed to deploy (allowed_refs: "
			     "%s)",
			     d->opts->ref ? d->opts->ref : "", buf_str(&globs));
		rf_error_hint(err, "deploy from an allowed branch or tag, or "
			      "pass --ref REF (default: $GITHUB_REF)");
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
	if (artifact_validate(d->opts->artifact, &limits, &d->art, err) != 0)
		return -1;
	snprintf(d->checksum, sizeof(d->checksum), "sha256:%s", d->art.sha256);
	d->fd = open(d->opts->artifact, O_RDONLY | O_CLOEXEC);
	if (d->fd < 0)
		return rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
				    "cannot open '%s': %m", d->opts->artifact);
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
	return NULL;
}

/* ---- preflight ---- */

static int
preflight_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct deploy *d = arg;
	struct deploy_host *h = dhost(fh);
	const char *id = d->opts->revision;
	struct release_record *rec;
	struct buf in = BUF_INIT;
	uint64_t avail, need;
	char s1[32], s2[32];
	int rc = -1;

	if (fh->st.current == CURRENT_DIR || fh->st.current == CURRENT_OTHER) {
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "preflight",
			     "%s/current on %s is not a symlink: relflip will "
			     "not replace it",
			     f->conf->app_path, fh->host->name);
		rf_error_hint(&fh->err, "move it aside by hand (mv current "
			      "current.before-relflip), then deploy again");
		goto out;
	}
	rec = record_find(&fh->st.records, id);
	if (rec != NULL && rec->has_dir) {
		if (!rec->has_record) {
			rf_error_set(&fh->err, RF_EXIT_UPLOAD, "preflight",
				     "releases/%s exists on %s but relflip did "
				     "not make it (no record)",
				     id, fh->host->name);
			rf_error_hint(&fh->err, "deploy under another --revision, "
				      "or move that directory away");
			goto out;
		}
		if (strcmp(rec->checksum, d->checksum) != 0) {
			rf_error_set(&fh->err, RF_EXIT_UPLOAD, "preflight",
				     "release %s on %s was deployed from another "
				     "artifact (%.19s..., this one is "
				     "%.19s...)",
				     id, fh->host->name, rec->checksum,
				     d->checksum);
			rf_error_hint(&fh->err, "a release id names one "
				      "artifact: build with a new --revision");
			goto out;
		}
		h->reuse = 1;
		snprintf(fh->detail, sizeof(fh->detail),
			 "release %.64s already there", id);
		rc = 0;
		goto out;
	}
	step_incoming_path(&in, f->conf->app_path, id, d->art.sha256);
	if (remote_file_size(fh->r, buf_str(&in), &h->have, &fh->err) != 0)
		goto out;
	if (h->have < 0 || (uint64_t)h->have > d->art.file_size)
		h->have = 0;
	/* In a dry run the app path may not exist yet: ask its parent. */
	if (remote_statvfs(fh->r, fh->st.app_exists ? f->conf->app_path
						    : fh->st.ancestor,
			   &avail, &fh->err) != 0)
		goto out;
	need = d->art.unpacked_size + d->art.unpacked_size / 10 +
	       (d->art.file_size - (uint64_t)h->have) + DISK_MARGIN_BYTES;
	out_format_bytes(s1, sizeof(s1), avail);
	out_format_bytes(s2, sizeof(s2), need);
	if (avail < need) {
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "preflight",
			     "not enough disk on %s: %s free under %s, the "
			     "release needs %s",
			     fh->host->name, s1, f->conf->app_path, s2);
		rf_error_hint(&fh->err, "free space on %s, or prune: relflip "
			      "-H %s prune --keep 2",
			      fh->host->name, fh->host->name);
		goto out;
	}
	snprintf(fh->detail, sizeof(fh->detail), "%s free", s1);
	if (f->n > 1)
		fh->detail[0] = '\0';
	rc = 0;
out:
	buf_release(&in);
	return rc;
}

/* ---- upload ---- */

/* Progress over every host: one bar, and throttled events per host. */
struct upload_progress {
	struct deploy *d;
	size_t index;
	long long last_event_ms;
};

static void
upload_progress(void *arg, uint64_t done, uint64_t total)
{
	struct upload_progress *p = arg;
	struct deploy *d = p->d;
	long long now = out_now_ms();
	uint64_t sum = 0;
	size_t i, n = 0;
	char label[32];

	if (done >= total || now - p->last_event_ms >= 250) {
		struct out_field fl[2] = {
			OF_INT("bytes", done),
			OF_INT("total", total),
		};

		p->last_event_ms = now;
		out_event("progress", d->f.h[p->index].host->name, "upload",
			  fl, 2);
	}
	out_live_set(p->index, "upload    %3d%%",
		     total ? (int)(done * 100 / total) : 100);
	pthread_mutex_lock(&d->progress_lock);
	d->dh[p->index].sent = done;
	for (i = 0; i < d->f.n; i++) {
		if (d->f.h[i].active && !d->dh[i].reuse) {
			sum += d->dh[i].sent;
			n++;
		}
	}
	pthread_mutex_unlock(&d->progress_lock);
	if (n <= 1)
		snprintf(label, sizeof(label), "%.31s",
			 d->f.h[p->index].host->name);
	else
		snprintf(label, sizeof(label), "%zu hosts", n);
	out_progress(label, sum, total * n);
}

static int
upload_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct deploy *d = arg;
	struct deploy_host *h = dhost(fh);
	struct buf in = BUF_INIT;
	struct upload_progress prog = { d, (size_t)(fh - f->h), 0 };
	struct put_request req = { 0 };
	long long t0 = out_now_ms();
	char sz[32], rate[32];
	double secs;
	int rc;

	if (h->reuse) {
		snprintf(fh->detail, sizeof(fh->detail), "skipped: already "
			 "there");
		return 0;
	}
	step_incoming_path(&in, f->conf->app_path, d->opts->revision,
			   d->art.sha256);
	req.fd = d->fd;
	req.offset = (uint64_t)h->have;
	req.size = d->art.file_size;
	req.path = buf_str(&in);
	req.on_progress = upload_progress;
	req.arg = &prog;
	rc = remote_put(fh->r, &req, &fh->err);
	buf_release(&in);
	if (rc != 0)
		return -1;
	secs = (double)(out_now_ms() - t0) / 1000.0;
	out_format_bytes(sz, sizeof(sz), d->art.file_size - req.offset);
	out_format_bytes(rate, sizeof(rate),
			 secs > 0 ? (uint64_t)((double)(d->art.file_size -
							req.offset) /
					       secs)
				  : 0);
	snprintf(fh->detail, sizeof(fh->detail), "%s %s/s%s", sz, rate,
		 req.offset ? " (resumed)" : "");
	return 0;
}

/* ---- unpack, link ---- */

static int
unpack_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct deploy *d = arg;
	struct buf cmd = BUF_INIT, errtext = BUF_INIT;
	const char *id = d->opts->revision;
	int status;

	if (dhost(fh)->reuse) {
		snprintf(fh->detail, sizeof(fh->detail), "skipped: already "
			 "there");
		return 0;
	}
	step_unpack_script(&cmd, f->conf->app_path, id, d->art.sha256,
			   f->token);
	status = fleet_run(fh, f->conf->app_path, buf_str(&cmd), NULL,
			   &errtext, &fh->err);
	buf_release(&cmd);
	if (status == 0) {
		buf_release(&errtext);
		return 0;
	}
	if (status > 0) {
		switch (status) {
		case STEP_CHECKSUM:
			rf_error_set(&fh->err, RF_EXIT_UPLOAD, "unpack",
				     "the upload's checksum on %s differs from "
				     "the artifact (%s): %s",
				     fh->host->name, d->checksum,
				     buf_str(&errtext));
			rf_error_hint(&fh->err, "the partial upload was removed; "
				      "deploy again");
			break;
		case STEP_UNPACK:
			rf_error_set(&fh->err, RF_EXIT_UPLOAD, "unpack",
				     "tar could not unpack the release on %s: "
				     "%s",
				     fh->host->name, buf_str(&errtext));
			break;
		default:
			rf_error_set(&fh->err, RF_EXIT_UPLOAD, "unpack",
				     "cannot move the release into releases/%s "
				     "on %s (exit %d): %s",
				     id, fh->host->name, status,
				     buf_str(&errtext));
			break;
		}
	}
	buf_release(&errtext);
	return -1;
}

static void
fill_record(struct deploy *d, struct release_record *rec)
{
	struct fleet *f = &d->f;

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

static int
link_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct deploy *d = arg;
	struct buf cmd = BUF_INIT, json = BUF_INIT, errtext = BUF_INIT;
	struct release_record *rec;
	int status;

	rec = record_add(&fh->st.records, d->opts->revision);
	fill_record(d, rec);
	if (rec->status != RS_LIVE)
		rec->status = RS_STAGED;
	rec->reason[0] = '\0';
	record_format(rec, &json);
	step_link_script(&cmd, f->conf, d->opts->revision, buf_str(&json));
	status = fleet_run(fh, f->conf->app_path, buf_str(&cmd), NULL,
			   &errtext, &fh->err);
	if (status > 0)
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "link",
			     "linking shared files into releases/%s on %s "
			     "failed: %s",
			     d->opts->revision, fh->host->name,
			     buf_str(&errtext));
	if (status == 0)
		dhost(fh)->staged = 1;
	buf_release(&cmd);
	buf_release(&json);
	buf_release(&errtext);
	return status == 0 ? 0 : -1;
}

/* ---- hooks ---- */

static void
hook_env(struct deploy *d, struct fleet_host *fh, struct step_env *env)
{
	env->app = d->conf->app_path;
	env->release = d->opts->revision;
	env->previous = fh->live;
	env->host = fh->host->name;
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
install_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	return hook_one(arg, f, fh, "install", f->conf->hook_install);
}

static int
migrate_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	if (hook_one(arg, f, fh, "migrate", f->conf->hook_migrate) != 0)
		return -1;
	dhost(fh)->migrated = 1;
	snprintf(fh->detail, sizeof(fh->detail), "(primary)");
	return 0;
}

static int
run_migrate(struct deploy *d, struct rf_error *err)
{
	struct fleet *f = &d->f;
	size_t i, primary = f->n;

	if (d->conf->hook_migrate == NULL)
		return 0;
	for (i = 0; i < f->n; i++) {
		f->h[i].active = 0;
		if (f->h[i].host->primary && primary == f->n)
			primary = i;
	}
	if (primary == f->n) {
		out_warning(NULL, "migrate",
			    "the primary host is not among the selected hosts: "
			    "migrate did not run");
		return 0;
	}
	f->h[primary].active = 1;
	return fleet_step(f, "migrate", migrate_one, d, err);
}

/* ---- record, log, prune, unlock ---- */

struct finish {
	struct deploy *d;
	const char *result;   /* ok, failed, rolled_back */
	enum release_status status;
	int code;
	const char *reason;
	int prune;
};

static int
finish_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct finish *fin = arg;
	struct deploy *d = fin->d;
	struct buf cmd = BUF_INIT, json = BUF_INIT, line = BUF_INIT;
	struct buf errtext = BUF_INIT, list = BUF_INIT;
	struct release_record *rec, *prev;
	const struct release_record **gone = NULL;
	long long now = record_now_ms();
	size_t i, ngone = 0;
	int status, keep;

	rec = record_find(&fh->st.records, d->opts->revision);
	/*
	 * A release this run did not make (another artifact under the id)
	 * or that is live or good: a failure before the switch leaves its
	 * record as it was.
	 */
	keep = rec != NULL && rec->has_record &&
	       (strcmp(rec->checksum, d->checksum) != 0 ||
		(fin->status == RS_FAILED &&
		 (rec->status == RS_LIVE || rec->status == RS_GOOD)));
	rec = record_add(&fh->st.records, d->opts->revision);
	if (!keep) {
		fill_record(d, rec);
		rec->status = fin->status;
	}
	if (fin->status == RS_LIVE) {
		rec->activated = now;
		rec->reason[0] = '\0';
	} else {
		snprintf(rec->reason, sizeof(rec->reason), "%s", fin->reason);
		if (fin->status == RS_BAD) {
			/* It was live, for a while: say when. */
			if (fh->sw.switched && d->switched_ms)
				rec->activated = d->switched_ms;
			rec->deactivated = now;
		}
	}
	if (dhost(fh)->migrated)
		rec->migrated = 1;
	if (!keep) {
		record_format(rec, &json);
		step_write_record(&cmd, f->conf->app_path, rec->id,
				  buf_str(&json));
	}
	prev = fh->live[0] ? record_find(&fh->st.records, fh->live) : NULL;
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
		step_write_record(&cmd, f->conf->app_path, prev->id,
				  buf_str(&json));
	}
	{
		struct buf extra = BUF_INIT;

		buf_adds(&extra, "\"checksum\": ");
		json_quote(&extra, d->checksum);
		buf_addf(&extra, ", \"duration_ms\": %lld",
			 out_now_ms() - d->started_ms);
		fleet_log_line(f, fh, d->opts->revision, fh->live, fin->result,
			       fin->code, buf_str(&extra), &line);
		buf_release(&extra);
	}
	step_append_log(&cmd, f->conf->app_path, buf_str(&line));
	if (fin->prune) {
		ngone = plan_prune(&fh->st.records, rec->id,
				   f->conf->keep_releases, f->conf->keep_failed,
				   0, &gone);
		for (i = 0; i < ngone; i++)
			step_list_release(&list, gone[i]->id);
		for (i = 0; i < fh->st.tmpdirs.n; i++)
			buf_addf(&list, "releases/%s\n", fh->st.tmpdirs.v[i]);
		if (ngone > 0)
			snprintf(fh->detail, sizeof(fh->detail),
				 "pruned %zu", ngone);
		{
			struct out_field fl[4] = {
				OF_STR("phase", "end"),
				OF_INT("duration_ms", 0),
				OF_BOOL("ok", 1),
				OF_INT("removed", ngone),
			};

			/* Pruning rides in the record step's round trip. */
			out_event("stage", fh->host->name, "prune", fl, 4);
		}
	}
	if (list.len > 0)
		step_remove_listed(&cmd, f->conf->app_path, 0);
	step_unlock_script(&cmd, f->conf->app_path, f->token, 0);
	status = fleet_run_input(fh, f->conf->app_path, buf_str(&cmd),
				 list.len ? buf_str(&list) : NULL, NULL,
				 &errtext, &fh->err);
	if (status == 0)
		fh->locked = 0;
	else if (status > 0)
		rf_error_set(&fh->err, RF_EXIT_INTERNAL, "record",
			     "writing the release record on %s failed: %s",
			     fh->host->name, buf_str(&errtext));
	free(gone);
	buf_release(&cmd);
	buf_release(&json);
	buf_release(&line);
	buf_release(&errtext);
	buf_release(&list);
	return status == 0 ? 0 : -1;
}

static void
finish(struct deploy *d, int code, const struct rf_error *why)
{
	struct fleet *f = &d->f;
	struct finish fin = { d, "ok", RS_LIVE, code, "", 0 };
	struct rf_error err = RF_ERROR_INIT;
	char reason[256];
	size_t i;

	snprintf(reason, sizeof(reason), "%.250s", why ? why->msg : "");
	fin.reason = reason;
	if (code == 0) {
		fin.prune = 1;
	} else if (code == RF_EXIT_HEALTH || code == RF_EXIT_ROLLBACK_FAILED) {
		fin.result = "rolled_back";
		fin.status = RS_BAD;
	} else {
		fin.result = "failed";
		fin.status = RS_FAILED;
	}
	/* Every host that holds our lock gets its record and log line. */
	for (i = 0; i < f->n; i++) {
		f->h[i].active = f->h[i].locked;
		f->h[i].failed = 0;
	}
	if (fleet_step(f, "record", finish_one, &fin, &err) != 0) {
		out_error(&err);
		fleet_unlock(f);
	}
}

/* ---- dry run ---- */

static void
plan_print(struct fleet_host *fh, const char *stage, const char *what)
{
	struct out_field fl[1] = { OF_STR("command", what) };
	struct buf ind = BUF_INIT;
	const char *p;

	out_event("plan", fh->host->name, stage, fl, 1);
	if (out_cfg.json)
		return;
	for (p = what; *p != '\0'; p++) {
		buf_addch(&ind, *p);
		if (*p == '\n' && p[1] != '\0')
			buf_adds(&ind, "              ");
	}
	out_primary("  %-10s  %s", stage, buf_str(&ind));
	buf_release(&ind);
}

static int
dry_run(struct deploy *d)
{
	struct fleet *f = &d->f;
	const char *id = d->opts->revision;
	struct buf cmd = BUF_INIT, json = BUF_INIT, info = BUF_INIT;
	struct release_record rec;
	size_t i, j;
	int code = 0;

	for (i = 0; i < f->n; i++) {
		struct fleet_host *fh = &f->h[i];
		struct step_env env;
		char what[512];

		if (fh->failed) {
			out_error(&fh->err);
			if (code == 0)
				code = fh->err.code;
			continue;
		}
		out_primary("plan for %s on %s (%s:%d), live now: %s", id,
			    fh->host->name, fh->host->address, fh->host->port,
			    fh->live[0] ? fh->live : "none");
		buf_reset(&info);
		buf_addf(&info, "user=%s@%s\n...\n", f->actor, f->runner);
		buf_reset(&cmd);
		step_lock_script(&cmd, d->conf->app_path, buf_str(&info));
		plan_print(fh, "lock", buf_str(&cmd));
		if (dhost(fh)->reuse) {
			plan_print(fh, "upload", "(skipped: the release is "
				   "already there with this checksum)");
		} else {
			struct buf in = BUF_INIT;

			step_incoming_path(&in, d->conf->app_path, id,
					   d->art.sha256);
			snprintf(what, sizeof(what),
				 "SFTP put %.100s -> %.300s (%llu bytes from "
				 "offset %lld)",
				 d->opts->artifact, buf_str(&in),
				 (unsigned long long)d->art.file_size,
				 (long long)dhost(fh)->have);
			plan_print(fh, "upload", what);
			buf_reset(&cmd);
			step_unpack_script(&cmd, d->conf->app_path, id,
					   d->art.sha256, f->token);
			plan_print(fh, "unpack", buf_str(&cmd));
			buf_release(&in);
		}
		memset(&rec, 0, sizeof(rec));
		fill_record(d, &rec);
		rec.status = RS_STAGED;
		buf_reset(&json);
		record_format(&rec, &json);
		buf_reset(&cmd);
		step_link_script(&cmd, d->conf, id, buf_str(&json));
		plan_print(fh, "link", buf_str(&cmd));
		hook_env(d, fh, &env);
		snprintf(what, sizeof(what), "%s/releases/%s",
			 d->conf->app_path, id);
		if (d->conf->hook_install) {
			buf_reset(&cmd);
			step_hook_script(&cmd, what, &env,
					 d->conf->hook_install);
			plan_print(fh, "install", buf_str(&cmd));
		}
		if (d->conf->hook_migrate && fh->host->primary) {
			buf_reset(&cmd);
			step_hook_script(&cmd, what, &env,
					 d->conf->hook_migrate);
			plan_print(fh, "migrate", buf_str(&cmd));
		}
		buf_reset(&cmd);
		step_switch_script(&cmd, d->conf->app_path, id);
		plan_print(fh, "switch", buf_str(&cmd));
		snprintf(what, sizeof(what), "%s/current", d->conf->app_path);
		for (j = 0; j < d->conf->nservices; j++) {
			if (!conf_service_on_host(&d->conf->services[j],
						  fh->host))
				continue;
			buf_reset(&cmd);
			step_hook_script(&cmd, what, &env,
					 d->conf->services[j].restart);
			plan_print(fh, "restart", buf_str(&cmd));
		}
		if (d->conf->has_health && d->conf->health_url) {
			snprintf(what, sizeof(what),
				 "GET %.300s through SSH (expect %d%s)",
				 d->conf->health_url, d->conf->expect_status,
				 d->conf->expect_revision
				     ? " and the release id in the body"
				     : "");
			plan_print(fh, "health", what);
		}
		buf_reset(&cmd);
		step_switch_script(&cmd, d->conf->app_path,
				   fh->live[0] ? fh->live : NULL);
		plan_print(fh, "rollback", buf_str(&cmd));
	}
	buf_release(&cmd);
	buf_release(&json);
	buf_release(&info);
	if (code == 0)
		out_text("dry run: the plan could run; nothing was changed");
	return code;
}

/* Probe in a dry run reports a held lock as the deploy would meet it. */
static int
dry_lock_check(struct fleet *f, struct fleet_host *fh, void *arg)
{
	(void)f;
	(void)arg;
	if (!fh->st.lock.held)
		return 0;
	return rf_error_set(&fh->err, RF_EXIT_LOCKED, "lock",
			    "deploy lock on %s is held by %s for %s %s",
			    fh->host->name,
			    fh->st.lock.user[0] ? fh->st.lock.user : "someone",
			    fh->st.lock.command, fh->st.lock.revision);
}

/* ---- the whole ---- */

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
	const char *status = code == 0 ? "ok"
			     : (code == RF_EXIT_HEALTH ||
				code == RF_EXIT_ROLLBACK_FAILED)
				 ? "rolled_back"
				 : "failed";

	out_format_duration(dur, sizeof(dur), ms);
	if (code == 0 && !d->opts->dry_run)
		out_text("deployed %s to %zu host%s in %s (rollback target: "
			 "%s)",
			 d->opts->revision, d->f.n, d->f.n == 1 ? "" : "s", dur,
			 d->previous ? d->previous : "none");
	fleet_report(&d->f, d->opts->revision, d->previous, code, ms, err);
	if (code != 0 && err != NULL && err->msg[0] != '\0')
		out_error(err);
	if (code != 0 && code != RF_EXIT_USAGE && code != RF_EXIT_ARTIFACT &&
	    code != RF_EXIT_REF && d->ctx->config_path != NULL)
		out_text("hint: relflip -c %s check", d->ctx->config_path);
	out_result(status, code, d->opts->revision, d->previous, ms);
}

int
deploy_run(struct cmd_ctx *ctx, const struct deploy_opts *opts)
{
	struct deploy d;
	struct rf_error err = RF_ERROR_INIT;
	size_t i;
	int code = 0;

	memset(&d, 0, sizeof(d));
	d.ctx = ctx;
	d.conf = ctx->conf;
	d.opts = opts;
	d.fd = -1;
	pthread_mutex_init(&d.progress_lock, NULL);
	d.started_ms = out_now_ms();
	d.now = record_now_ms();
	fleet_init(&d.f, ctx->conf, ctx->hosts, ctx->nhosts, "deploy",
		   opts->revision);
	d.f.warm_up = 1;
	d.dh = xcalloc(ctx->nhosts ? ctx->nhosts : 1, sizeof(*d.dh));
	for (i = 0; i < ctx->nhosts; i++)
		d.f.h[i].data = &d.dh[i];

	{
		struct out_field fl[4] = {
			OF_STR("command", "deploy"),
			OF_STR("revision", opts->revision),
			OF_INT("hosts", ctx->nhosts),
			OF_BOOL("dry_run", opts->dry_run),
		};
		out_event("start", NULL, NULL, fl, 4);
	}

	out_text("relflip %s · %zu host%s · release %s%s", relflip_version(),
		 d.f.n, d.f.n == 1 ? "" : "s", opts->revision ? opts->revision : "?",
		 opts->dry_run ? " · dry run" : "");
	if (validate_args(&d, &err) != 0) {
		code = err.code;
		goto done;
	}
	{
		struct validate_job job = { &d, RF_ERROR_INIT, 0 };
		pthread_t t;
		int threaded, connected;

		threaded = pthread_create(&t, NULL, validate_thread, &job) == 0;
		if (!threaded)
			validate_thread(&job);
		connected = fleet_connect(&d.f, &err) == 0;
		if (threaded)
			pthread_join(t, NULL);
		/* A rejected artifact is the first thing to say (step 1). */
		if (job.rc != 0) {
			err = job.err;
			code = err.code;
			goto done;
		}
		if (!connected) {
			code = err.code;
			goto done;
		}
	}
	if (opts->dry_run) {
		if (fleet_probe(&d.f, &err) != 0) {
			code = err.code;
			goto done;
		}
		d.previous = rollback_target(&d);
		fleet_activate_all(&d.f);
		if (fleet_step(&d.f, "lock", dry_lock_check, NULL, &err) == 0)
			fleet_step(&d.f, "preflight", preflight_one, &d, &err);
		code = dry_run(&d);
		rf_error_clear(&err);
		goto done;
	}
	if (fleet_lock(&d.f, &err) != 0) {
		code = err.code;
		goto done;
	}
	d.previous = rollback_target(&d);
	for (i = 0; i < d.f.n; i++) {
		if (d.f.h[i].live[0] != '\0') {
			out_text("  live now: %s", d.f.h[i].live);
			break;
		}
	}

	fleet_activate_all(&d.f);
	if (fleet_step(&d.f, "preflight", preflight_one, &d, &err) != 0 ||
	    fleet_step(&d.f, "upload", upload_one, &d, &err) != 0 ||
	    fleet_step(&d.f, "unpack", unpack_one, &d, &err) != 0 ||
	    fleet_step(&d.f, "link", link_one, &d, &err) != 0 ||
	    (d.conf->hook_install != NULL &&
	     fleet_step(&d.f, "install", install_one, &d, &err) != 0) ||
	    run_migrate(&d, &err) != 0) {
		code = err.code;
		finish(&d, code, &err);
		goto done;
	}
	if (interrupted) {
		rf_error_set(&err, RF_EXIT_INTERRUPTED, "switch",
			     "interrupted before the switch: current is "
			     "unchanged");
		code = err.code;
		finish(&d, code, &err);
		goto done;
	}

	/* Only when every host is staged does any host switch. */
	for (i = 0; i < d.f.n; i++) {
		d.f.h[i].target = opts->revision;
		d.f.h[i].back = d.f.h[i].live[0] ? d.f.h[i].live : NULL;
	}
	d.switched_ms = record_now_ms();
	code = fleet_switch(&d.f, &err);
	finish(&d, code, code ? &err : NULL);

done:
	if (code != 0 && err.code == 0)
		err.code = (enum rf_exit)code;
	summary(&d, code, &err);
	if (d.fd >= 0)
		close(d.fd);
	fleet_unlock(&d.f);
	fleet_release(&d.f);
	free(d.dh);
	return code;
}
