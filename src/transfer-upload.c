/*
 * The upload transfer: the whole artifact over SFTP into
 * .relflip/incoming/ (resumed from a partial file), then on the server its
 * checksum, tar into a temporary directory, and the rename into place.
 */
#include <stdio.h>
#include <string.h>

#include "out.h"
#include "record.h"
#include "steps.h"
#include "transfer.h"

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
	out_live_set(p->index, "%3d%%",
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

int
transfer_wants_new(const struct fleet *f, const struct fleet_host *fh,
		   void *run)
{
	(void)f;
	(void)run;
	return !((struct deploy_host *)fh->data)->reuse;
}

static void
upload_plan(const struct fleet *f, const struct fleet_host *fh, void *run,
	    struct stage_plan *p)
{
	struct deploy *d = run;
	struct buf in = BUF_INIT;

	step_incoming_path(&in, f->conf->app_path, d->opts->revision,
			   d->art.sha256);
	buf_addf(&p->what, "SFTP put %s -> %s (%llu bytes from offset %lld)",
		 d->opts->artifact, buf_str(&in),
		 (unsigned long long)d->art.file_size,
		 (long long)((struct deploy_host *)fh->data)->have);
	buf_release(&in);
}

/*
 * Bytes in flight for all uploads at once: each host gets its share (the
 * adapter keeps it between 64 KiB and 2 MiB), so that memory stays flat
 * however many hosts upload together.
 */
#define UPLOADS_IN_FLIGHT (4u << 20)

static size_t
upload_window(const struct fleet *f)
{
	size_t i, n = 0;

	for (i = 0; i < f->n; i++)
		n += f->h[i].active && !f->h[i].failed;
	if ((int)n > f->conf->max_parallel)
		n = (size_t)f->conf->max_parallel;
	return UPLOADS_IN_FLIGHT / (n ? n : 1);
}

static int
upload_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct deploy *d = arg;
	struct deploy_host *h = deploy_host_of(fh);
	struct buf in = BUF_INIT;
	struct upload_progress prog = { d, (size_t)(fh - f->h), 0 };
	struct put_request req = { 0 };
	long long t0 = out_now_ms();
	char sz[32], rate[32];
	int rc;

	step_incoming_path(&in, f->conf->app_path, d->opts->revision,
			   d->art.sha256);
	req.fd = d->fd;
	req.offset = (uint64_t)h->have;
	req.size = d->art.file_size;
	req.path = buf_str(&in);
	req.window = upload_window(f);
	req.on_progress = upload_progress;
	req.arg = &prog;
	rc = remote_put(fh->r, &req, &fh->err);
	buf_release(&in);
	if (rc != 0)
		return -1;
	out_format_bytes(sz, sizeof(sz), d->art.file_size - req.offset);
	out_format_rate(rate, sizeof(rate), d->art.file_size - req.offset,
			(long)(out_now_ms() - t0));
	snprintf(fh->detail, sizeof(fh->detail), "%s%s%s%s", sz,
		 rate[0] ? " " : "", rate, req.offset ? " (resumed)" : "");
	return 0;
}

static const struct stage upload_stage = {
	.name = "upload",
	.flags = STAGE_CHANGES,
	.does = "send the artifact to .relflip/incoming/ (resumable)",
	.undo = "the upload is removed by the next prune",
	.wanted = transfer_wants_new,
	.plan = upload_plan,
	.run = upload_one,
};

/* The record the unpack writes before the release gets its name. */
static void
staged_record(const struct deploy *d, struct buf *json)
{
	struct release_record rec;

	memset(&rec, 0, sizeof(rec));
	deploy_fill_record(d, &rec);
	rec.status = RS_STAGED;
	record_format(&rec, json);
}

static void
unpack_plan(const struct fleet *f, const struct fleet_host *fh, void *run,
	    struct stage_plan *p)
{
	struct deploy *d = run;
	struct buf json = BUF_INIT;

	(void)fh;
	staged_record(d, &json);
	step_unpack_script(&p->script, f->conf->app_path, d->opts->revision,
			   d->art.sha256, f->token, buf_str(&json));
	p->shared_input = d->manifest_text.buf;
	p->shared_len = d->manifest_text.len;
	p->limit = f->conf->hook_timeout;
	buf_release(&json);
}

static const struct stage unpack_stage;

static int
unpack_judge(struct fleet *f, struct fleet_host *fh, void *arg, int status,
	     const char *errtext)
{
	struct deploy *d = arg;
	const char *id = d->opts->revision;

	(void)f;
	if (status == 0) {
		deploy_host_of(fh)->made = 1;
		return 0;
	}
	if (status > 0) {
		switch (status) {
		case STEP_MANIFEST:
			rf_error_set(&fh->err, RF_EXIT_UPLOAD, "unpack",
				     "what tar unpacked on %s is not what "
				     "validation approved, so it was removed: "
				     "%s",
				     fh->host->name, errtext);
			rf_error_hint(&fh->err, "the server's tar reads this "
				      "artifact differently: rebuild it with "
				      "relflip pack, or report it");
			break;
		case STEP_RECORD:
			rf_error_set(&fh->err, RF_EXIT_UPLOAD, "unpack",
				     "cannot write the record of releases/%s on "
				     "%s: %s",
				     id, fh->host->name, errtext);
			break;
		case STEP_CHECKSUM:
			rf_error_set(&fh->err, RF_EXIT_UPLOAD, "unpack",
				     "the upload's checksum on %s differs from "
				     "the artifact (%s): %s",
				     fh->host->name, d->checksum,
				     errtext);
			rf_error_hint(&fh->err, "the partial upload was removed; "
				      "deploy again");
			break;
		case STEP_UNPACK:
			rf_error_set(&fh->err, RF_EXIT_UPLOAD, "unpack",
				     "tar could not unpack the release on %s: "
				     "%s",
				     fh->host->name, errtext);
			break;
		default:
			rf_error_set(&fh->err, RF_EXIT_UPLOAD, "unpack",
				     "cannot move the release into releases/%s "
				     "on %s (exit %d): %s",
				     id, fh->host->name, status,
				     errtext);
			break;
		}
		if (strstr(errtext, "No space left") != NULL)
			rf_error_hint(&fh->err, "the disk on %s is full: free "
				      "space, or prune: relflip -H %s prune "
				      "--keep 2",
				      fh->host->name, fh->host->name);
	}
	return -1;
}

static int
unpack_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	return stage_exec_judged(f, fh, &unpack_stage, arg);
}

static const struct stage unpack_stage = {
	.name = "unpack",
	.flags = STAGE_CHANGES,
	.does = "check the upload's SHA-256, unpack it, check every file "
		"against the manifest, rename it into place",
	.undo = "a failed unpack removes its temporary directory",
	.wanted = transfer_wants_new,
	.plan = unpack_plan,
	.run = unpack_one,
	.judge = unpack_judge,
};

const struct transfer transfer_upload = {
	.name = "upload",
	.upload = &upload_stage,
	.unpack = &unpack_stage,
};
