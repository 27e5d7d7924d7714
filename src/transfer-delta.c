/*
 * The delta transfer: a host whose live release relflip verified (its
 * manifest kept) gets only what changed: a small tarball of the new and
 * changed entries and the edits to the base's manifest, in the unpack
 * request itself, with no upload of its own. The server copies what stays
 * from the base (cp --reflink=auto), unpacks the delta over it and checks
 * the whole tree against the new manifest; when the base does not verify,
 * that host falls back to the full upload by itself. A host with no such
 * base, or a delta not much smaller than the artifact, gets the full
 * upload from the start.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "artifact.h"
#include "manifest.h"
#include "out.h"
#include "record.h"
#include "steps.h"
#include "transfer.h"
#include "xmalloc.h"

/* Past this share of the artifact's size, the full (resumable) upload. */
#define DELTA_MAX_SHARE 0.5

/*
 * A delta travels in one request and is held in memory until every host
 * has it: past this many bytes of changed files, the full upload, which
 * streams from the file. Memory then stays bounded whatever the size of
 * the artifact.
 */
#define DELTA_MAX_BYTES (32ull << 20)

/* The compact base manifest read back from a server: bounded. */
#define BASE_MANIFEST_MAX (64u << 20)

/* One delta, worked out once per base release, shared by its hosts. */
struct delta {
	char base[65];
	int usable;         /* else: why says why the full upload */
	char why[160];
	/*
	 * What the unpack reads, shared by the base's hosts: edits_len
	 * bytes of -PATH, +LINE and !PATH lines (in its script), then the
	 * gzip'd tarball of what is sent (its stdin).
	 */
	struct buf payload;
	size_t edits_len;
	size_t nsend, nkeep;
	struct delta *next;
};

struct delta_state {
	char manifest_sha[65]; /* of the new manifest's text */
	struct delta *deltas;
};

/* An entry of the compact base manifest: DATA cut to 16 characters. */
struct base_entry {
	char type;
	unsigned mode;
	const char *size;
	const char *data;
	const char *path;
};

static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode base64 (padding and stray characters end or are skipped). */
static void
b64_decode(const char *s, struct buf *out)
{
	unsigned acc = 0;
	int bits = 0, v;

	for (; *s != '\0' && *s != '='; s++) {
		v = b64_value(*s);
		if (v < 0)
			continue;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_addch(out, (char)((acc >> bits) & 0xff));
		}
	}
}

/* Split the compact manifest's lines in place; sorted by path as sent. */
static size_t
parse_base(char *text, struct base_entry **out)
{
	struct base_entry *v = NULL;
	size_t n = 0, alloc = 0;
	char *line = text, *nl, *f[5];
	int k;

	while (line != NULL && *line != '\0') {
		nl = strchr(line, '\n');
		if (nl != NULL)
			*nl = '\0';
		f[0] = line;
		for (k = 1; k < 5 && f[k - 1] != NULL; k++) {
			f[k] = strchr(f[k - 1], '\t');
			if (f[k] != NULL)
				*f[k]++ = '\0';
		}
		if (k == 5 && f[4] != NULL && f[0][0] != '\0' &&
		    f[0][1] == '\0') {
			if (n == alloc) {
				alloc = alloc ? 2 * alloc : 256;
				v = xreallocarray(v, alloc, sizeof(*v));
			}
			v[n].type = f[0][0];
			v[n].mode = (unsigned)strtoul(f[1], NULL, 8);
			v[n].size = f[2];
			v[n].data = f[3];
			v[n].path = f[4];
			n++;
		}
		line = nl ? nl + 1 : NULL;
	}
	*out = v;
	return n;
}

/* Is path a shared path or under one? */
static int
under_shared(const struct conf *conf, const char *path)
{
	const struct strlist *lists[2] = { &conf->shared_dirs,
					   &conf->shared_files };
	size_t i, j, len;

	for (i = 0; i < 2; i++) {
		for (j = 0; j < lists[i]->n; j++) {
			len = strlen(lists[i]->v[j]);
			if (strncmp(path, lists[i]->v[j], len) == 0 &&
			    (path[len] == '\0' || path[len] == '/'))
				return 1;
		}
	}
	/* Written by relflip into every release: never copied. */
	return strcmp(path, "REVISION") == 0 ||
	       strcmp(path, "DEPLOYED_AT") == 0;
}

/* Whether the base holds e unchanged (DATA compared on 16 characters). */
static int
same_entry(const struct manifest_entry *e, const struct base_entry *b)
{
	char size[32];

	if (b->type != e->type || b->mode != e->mode)
		return 0;
	switch (e->type) {
	case MANIFEST_FILE:
		snprintf(size, sizeof(size), "%llu",
			 (unsigned long long)e->size);
		return strcmp(b->size, size) == 0 &&
		       strncmp(b->data, e->sha256, 16) == 0 &&
		       strlen(b->data) == 16;
	case MANIFEST_LINK:
		return strncmp(b->data, e->target, 16) == 0 &&
		       strlen(b->data) == (strlen(e->target) < 16
					       ? strlen(e->target)
					       : 16);
	default:
		return 1;
	}
}

static void
send_entry(struct manifest *send, const struct manifest_entry *e)
{
	struct manifest_entry *c = manifest_add(send, e->type, e->path);

	c->mode = e->mode;
	c->size = e->size;
	memcpy(c->sha256, e->sha256, sizeof(c->sha256));
	if (e->target != NULL)
		c->target = xstrdup(e->target);
}

/* The gzip'd tarball of send, from the artifact, into out. */
static int
write_delta_tar(const struct deploy *d, const struct manifest *send,
		struct buf *out, struct rf_error *err)
{
	int fd = memfd_create("relflip-delta", MFD_CLOEXEC);
	char chunk[65536];
	ssize_t n;
	int rc = -1;

	if (fd < 0)
		return rf_error_set(err, RF_EXIT_INTERNAL, "upload",
				    "cannot make a memory file: %s",
				    strerror(errno));
	if (artifact_write_subset(d->opts->artifact, d->art.sha256, send, fd,
				  err) != 0)
		goto out;
	if (lseek(fd, 0, SEEK_SET) != 0)
		goto out;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_add(out, chunk, (size_t)n);
	rc = n == 0 ? 0 : -1;
out:
	close(fd);
	return rc;
}

/*
 * Work out the delta of the new manifest against the base's: edits for
 * the server's copy of the base manifest, and what must travel.
 */
static void
delta_work_out(const struct deploy *d, const struct fleet_host *fh,
	       struct delta *dl)
{
	const struct manifest *m = &d->manifest;
	struct buf raw = BUF_INIT, text = BUF_INIT;
	struct manifest send = MANIFEST_INIT;
	struct base_entry *base = NULL;
	struct rf_error err = RF_ERROR_INIT;
	size_t nb, i = 0, j = 0;
	uint64_t changed = 0;
	char size[32];
	int cmp;

	b64_decode(buf_str(&fh->st.base_manifest), &raw);
	text.max = BASE_MANIFEST_MAX;
	if (gunzip_mem(raw.buf, raw.len, &text, &err) != 0) {
		snprintf(dl->why, sizeof(dl->why), "base manifest unreadable: "
			 "%.100s", err.msg);
		goto out;
	}
	nb = parse_base(text.buf, &base);
	while (i < m->n || j < nb) {
		const struct manifest_entry *e = i < m->n ? &m->entries[i]
							  : NULL;

		cmp = e == NULL ? 1 : j >= nb ? -1 : strcmp(e->path,
							      base[j].path);
		if (cmp > 0) {
			/* In the base only: gone. */
			buf_addf(&dl->payload, "-%s\n", base[j++].path);
			continue;
		}
		if (cmp < 0) {
			/* New. */
			buf_addch(&dl->payload, '+');
			manifest_format_entry(e, &dl->payload);
			send_entry(&send, e);
			i++;
			continue;
		}
		if (!same_entry(e, &base[j])) {
			buf_addf(&dl->payload, "-%s\n+", e->path);
			manifest_format_entry(e, &dl->payload);
			send_entry(&send, e);
		} else if (e->type == MANIFEST_DIR) {
			/* Made by mkdir -p (755); another mode comes in tar. */
			if (e->mode != 0755)
				send_entry(&send, e);
		} else if (under_shared(d->conf, e->path)) {
			/* In the base it is a link to shared/: not copied. */
			buf_addf(&dl->payload, "!%s\n", e->path);
			send_entry(&send, e);
		} else {
			dl->nkeep++;
		}
		i++;
		j++;
	}
	dl->nsend = send.n;
	dl->edits_len = dl->payload.len;
	for (i = 0; i < send.n; i++)
		changed += send.entries[i].size;
	if (dl->nkeep == 0) {
		snprintf(dl->why, sizeof(dl->why), "nothing in common with %s",
			 dl->base);
		goto out;
	}
	/* Judged on what changed before anything is packed. */
	if ((double)changed >
	    DELTA_MAX_SHARE * (double)d->art.unpacked_size) {
		snprintf(dl->why, sizeof(dl->why),
			 "most of it changed since %s", dl->base);
		goto out;
	}
	if (changed > DELTA_MAX_BYTES) {
		out_format_bytes(size, sizeof(size), changed);
		snprintf(dl->why, sizeof(dl->why),
			 "%s changed since %.64s, more than a delta carries",
			 size, dl->base);
		goto out;
	}
	manifest_sort(&send);
	if (write_delta_tar(d, &send, &dl->payload, &err) != 0) {
		snprintf(dl->why, sizeof(dl->why), "%.150s", err.msg);
		goto out;
	}
	if ((double)dl->payload.len >
	    DELTA_MAX_SHARE * (double)d->art.file_size) {
		snprintf(dl->why, sizeof(dl->why),
			 "most of it changed since %s", dl->base);
		goto out;
	}
	dl->usable = 1;
out:
	if (!dl->usable)
		buf_release(&dl->payload);
	free(base);
	manifest_release(&send);
	buf_release(&raw);
	buf_release(&text);
}

/*
 * The delta for fh's base, worked out on first use (usable or not), or
 * NULL when fh has no verified base.
 */
static const struct delta *
delta_find(struct deploy *d, const struct fleet_host *fh)
{
	struct delta_state *ds;
	struct delta *dl;
	const struct release_record *base;

	if (fh->st.base_id[0] == '\0' || fh->st.base_manifest.len == 0)
		return NULL;
	base = record_find((struct record_set *)&fh->st.records,
			   fh->st.base_id);
	if (base == NULL || !base->verified)
		return NULL;
	pthread_mutex_lock(&d->transfer_lock);
	ds = d->transfer_data;
	if (ds == NULL) {
		ds = xcalloc(1, sizeof(*ds));
		sha256_hex_mem(d->manifest_text.buf, d->manifest_text.len,
			       ds->manifest_sha);
		d->transfer_data = ds;
	}
	for (dl = ds->deltas; dl != NULL; dl = dl->next) {
		if (strcmp(dl->base, fh->st.base_id) == 0)
			break;
	}
	if (dl == NULL) {
		dl = xcalloc(1, sizeof(*dl));
		snprintf(dl->base, sizeof(dl->base), "%s", fh->st.base_id);
		delta_work_out(d, fh, dl);
		dl->next = ds->deltas;
		ds->deltas = dl;
	}
	pthread_mutex_unlock(&d->transfer_lock);
	return dl;
}

/* The usable delta for fh, or NULL: the full upload. */
static const struct delta *
delta_for(struct deploy *d, const struct fleet_host *fh)
{
	const struct delta *dl = delta_find(d, fh);

	return dl != NULL && dl->usable ? dl : NULL;
}

void
transfer_delta_release(struct deploy *d)
{
	struct delta_state *ds = d->transfer_data;
	struct delta *dl, *next;

	if (ds == NULL)
		return;
	for (dl = ds->deltas; dl != NULL; dl = next) {
		next = dl->next;
		buf_release(&dl->payload);
		free(dl);
	}
	free(ds);
	d->transfer_data = NULL;
}

static void
upload_plan(const struct fleet *f, const struct fleet_host *fh, void *run,
	    struct stage_plan *p)
{
	const struct delta *dl = delta_for(run, fh);

	if (dl == NULL) {
		transfer_upload.upload->plan(f, fh, run, p);
		return;
	}
	buf_addf(&p->what, "nothing of its own: %zu changed of %zu entries "
		 "travel with the unpack (%zu bytes), the other %zu are copied "
		 "from %s",
		 dl->nsend, dl->nsend + dl->nkeep, dl->payload.len,
		 dl->nkeep, dl->base);
}

static int
upload_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct deploy *d = arg;
	const struct delta *dl = delta_find(d, fh);
	char sz[32];
	size_t len;
	int rc;

	if (dl == NULL || !dl->usable) {
		rc = transfer_upload.upload->run(f, fh, arg);
		/* A base was there: say why it was no use. */
		len = strlen(fh->detail);
		if (rc == 0 && dl != NULL && dl->why[0] != '\0')
			snprintf(fh->detail + len, sizeof(fh->detail) - len,
				 ", the whole artifact: %s", dl->why);
		return rc;
	}
	out_format_bytes(sz, sizeof(sz), dl->payload.len);
	snprintf(fh->detail, sizeof(fh->detail),
		 "delta %s: %zu changed, %zu kept from %.64s", sz, dl->nsend,
		 dl->nkeep, dl->base);
	return 0;
}

static const struct stage upload_stage = {
	.name = "upload",
	.flags = STAGE_CHANGES,
	.does = "send what the host lacks: the changes since its live "
		"release, or the whole artifact (resumable)",
	.undo = "an upload is removed by the next prune",
	.wanted = transfer_wants_new,
	.plan = upload_plan,
	.run = upload_one,
};

static void
unpack_plan(const struct fleet *f, const struct fleet_host *fh, void *run,
	    struct stage_plan *p)
{
	struct deploy *d = run;
	const struct delta *dl = delta_for(d, fh);
	struct delta_state *ds = d->transfer_data;
	struct release_record rec;
	struct buf json = BUF_INIT;

	if (dl == NULL) {
		transfer_upload.unpack->plan(f, fh, run, p);
		return;
	}
	memset(&rec, 0, sizeof(rec));
	deploy_fill_record(d, &rec);
	rec.status = RS_STAGED;
	record_format(&rec, &json);
	step_unpack_delta_script(&p->script, f->conf->app_path,
				 d->opts->revision, dl->base, f->token,
				 dl->payload.buf, dl->edits_len,
				 ds->manifest_sha, buf_str(&json));
	p->shared_input = dl->payload.buf + dl->edits_len;
	p->shared_len = dl->payload.len - dl->edits_len;
	p->limit = f->conf->hook_timeout;
	buf_release(&json);
}

static const struct stage unpack_stage;

static int
unpack_judge(struct fleet *f, struct fleet_host *fh, void *arg, int status,
	     const char *errtext)
{
	struct deploy *d = arg;

	if (delta_for(d, fh) == NULL)
		return transfer_upload.unpack->judge(f, fh, arg, status,
						     errtext);
	if (status == 0) {
		deploy_host_of(fh)->made = 1;
		return 0;
	}
	if (status == STEP_DELTA_BASE) {
		/* The base is not what its manifest says: the whole artifact. */
		out_warning(fh->host->name, "unpack",
			    "the delta from %s did not verify (%.120s): "
			    "uploading the whole artifact",
			    fh->st.base_id, errtext);
		if (transfer_upload.upload->run(f, fh, arg) != 0)
			return -1;
		return transfer_upload.unpack->run(f, fh, arg);
	}
	if (status > 0)
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "unpack",
			     "building releases/%s from %s on %s failed (exit "
			     "%d): %s",
			     d->opts->revision, fh->st.base_id, fh->host->name,
			     status, errtext);
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
	.does = "build the release (the delta over a copy of the live one, or "
		"the upload unpacked), check every file against the manifest, "
		"rename it into place",
	.undo = "a failed unpack removes its temporary directory",
	.wanted = transfer_wants_new,
	.plan = unpack_plan,
	.run = unpack_one,
	.judge = unpack_judge,
};

const struct transfer transfer_delta = {
	.name = "delta",
	.upload = &upload_stage,
	.unpack = &unpack_stage,
};
