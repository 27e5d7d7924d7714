/*
 * The pull transfer ([artifact] url, or deploy --url): each server
 * downloads the artifact itself into .relflip/incoming/ (resumed from a
 * partial file) and checks its SHA-256; the unpack is the upload
 * transfer's. relflip still validates the same bytes where it runs: the
 * local ARTIFACT, or with --sha256 a copy it fetches once for that, so
 * the manifest the servers check their tree against is always one
 * validation approved.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http.h"
#include "out.h"
#include "steps.h"
#include "transfer.h"
#include "xmalloc.h"

#define PULL_RELEASE_VAR "${RELFLIP_RELEASE}"
#define PULL_CONNECT_TIMEOUT 30.0

static const char *
pull_url_template(const struct deploy *d)
{
	return d->opts->url != NULL ? d->opts->url : d->conf->artifact_url;
}

int
transfer_pull_wanted(const struct deploy_opts *o, const struct conf *conf)
{
	return o->url != NULL || conf->artifact_url != NULL;
}

/* The URL with every ${RELFLIP_RELEASE} replaced by the release id. */
static void
pull_url(const struct deploy *d, struct buf *url)
{
	const char *s = pull_url_template(d), *v;
	size_t n = strlen(PULL_RELEASE_VAR);

	while ((v = strstr(s, PULL_RELEASE_VAR)) != NULL) {
		buf_add(url, s, (size_t)(v - s));
		buf_adds(url, d->opts->revision);
		s = v + n;
	}
	buf_adds(url, s);
}

/*
 * The URL as messages show it: no user part, no query (a presigned URL's
 * signature), no fragment.
 */
static void
pull_url_shown(const char *url, struct buf *out)
{
	const char *host = strstr(url, "://");
	const char *at, *end;

	host = host != NULL ? host + 3 : url;
	end = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(end - host));
	buf_add(out, url, (size_t)(host - url));
	if (at != NULL)
		host = at + 1;
	buf_add(out, host, strcspn(host, "?#"));
	if (url[strcspn(url, "?")] == '?')
		buf_adds(out, "?...");
}

/* What in a URL is a credential: its user part and its query. */
static void
pull_url_secrets(const char *url)
{
	const char *host = strstr(url, "://");
	const char *q = strchr(url, '?');
	const char *at;
	size_t n;

	if (q != NULL && q[1] != '\0') {
		char *query = xstrdup(q + 1);

		query[strcspn(query, "#")] = '\0';
		if (query[0] != '\0')
			out_secret(query);
		free(query);
	}
	if (host == NULL)
		return;
	host += 3;
	n = strcspn(host, "/?#");
	at = memchr(host, '@', n);
	if (at != NULL && at > host) {
		char *user = xmalloc((size_t)(at - host) + 1);

		memcpy(user, host, (size_t)(at - host));
		user[at - host] = '\0';
		out_secret(user);
		free(user);
	}
}

static int
pull_url_valid(const char *url)
{
	const char *p, *host;

	if (strncasecmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		host = url + 8;
	else
		return 0;
	if (*host == '\0' || *host == '/')
		return 0;
	for (p = url; *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return 0;
	}
	return 1;
}

/* The header [artifact] header_env names, checked; NULL without one. */
static int
pull_header(const struct conf *conf, const char **header, struct rf_error *err)
{
	const char *name = conf->artifact_header_env;
	const char *v;

	*header = NULL;
	if (name == NULL)
		return 0;
	v = getenv(name);
	if (v == NULL || v[0] == '\0') {
		rf_error_set(err, RF_EXIT_USAGE, "validate",
			     "%s: [artifact] header_env names %s, which is not "
			     "set",
			     conf->file, name);
		return rf_error_hint(err,
				     "export %s=\"Authorization: Bearer "
				     "TOKEN\" (a CI secret), or remove "
				     "header_env",
				     name);
	}
	if (strpbrk(v, "\r\n") != NULL || strchr(v, ':') == NULL || v[0] == ':')
		return rf_error_set(
		    err, RF_EXIT_USAGE, "validate",
		    "%s: [artifact] header_env: $%s is not one "
		    "HTTP header line (\"Name: value\", no line "
		    "break)",
		    conf->file, name);
	*header = v;
	return 0;
}

/* A SHA-256 in hex, or "sha256:" and one; lower-cased into hex. */
static int
pull_sha256_parse(const char *s, char hex[65])
{
	size_t i;

	if (strncasecmp(s, "sha256:", 7) == 0)
		s += 7;
	if (strlen(s) != 64 || strspn(s, "0123456789abcdefABCDEF") != 64)
		return -1;
	for (i = 0; i < 64; i++)
		hex[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] + 32 : s[i]);
	hex[64] = '\0';
	return 0;
}

/*
 * --sha256 without a local artifact: fetch it once here, into a private
 * temporary file, so that it is validated like any other; *path names it.
 */
static int
pull_fetch(struct deploy *d, const char *url, const char *header,
	   const char *want, char **path, struct rf_error *err)
{
	struct http_download req = { 0 };
	struct http_response res;
	struct buf shown = BUF_INIT, tmp = BUF_INIT;
	const char *dir = getenv("TMPDIR");
	long long t0 = out_now_ms();
	char got[65], size[32], detail[256];
	off_t bytes;
	int fd, r = -1;

	*path = NULL;
	pull_url_shown(url, &shown);
	buf_addf(&tmp, "%s/relflip-artifact.XXXXXX",
		 dir != NULL && dir[0] != '\0' ? dir : "/tmp");
	fd = mkstemp(tmp.buf);
	if (fd < 0) {
		rf_error_set(
		    err, RF_EXIT_ARTIFACT, "validate",
		    "cannot make a temporary file %s for the artifact: "
		    "%m",
		    buf_str(&tmp));
		goto out;
	}
	*path = buf_detach(&tmp, NULL);
	out_stage_begin(NULL, "validate");
	req.url = url;
	req.header = header;
	req.fd = fd;
	req.timeout = d->conf->hook_timeout;
	req.connect_timeout = PULL_CONNECT_TIMEOUT;
	if (http_download(&req, &res, err) != 0)
		goto out;
	if (!res.transport_ok || res.status < 200 || res.status > 299) {
		if (res.transport_ok)
			rf_error_set(
			    err, RF_EXIT_ARTIFACT, "validate",
			    "cannot fetch the artifact to validate it: "
			    "%s answered HTTP %ld",
			    buf_str(&shown), res.status);
		else
			rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
				     "cannot fetch the artifact to validate it "
				     "from %s: %s",
				     buf_str(&shown), res.error);
		rf_error_hint(err,
			      "with --sha256, relflip reads the artifact "
			      "once where it runs to validate it: pass the "
			      "local file instead, or check the URL");
		goto out;
	}
	bytes = lseek(fd, 0, SEEK_END);
	if (file_sha256(*path, got, err) != 0)
		goto out;
	if (strcmp(got, want) != 0) {
		rf_error_set(err, RF_EXIT_ARTIFACT, "validate",
			     "%s serves an artifact with SHA-256 %s, not the "
			     "%s given with --sha256",
			     buf_str(&shown), got, want);
		rf_error_hint(err, "the servers would get these bytes too: "
				   "check the URL and the checksum");
		goto out;
	}
	out_format_bytes(size, sizeof(size), bytes > 0 ? (uint64_t)bytes : 0);
	snprintf(detail, sizeof(detail), "fetched %s from %.180s", size,
		 buf_str(&shown));
	out_stage_end(NULL, "validate", (long)(out_now_ms() - t0), 1, detail);
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	buf_release(&shown);
	buf_release(&tmp);
	return r;
}

int
transfer_pull_prepare(struct deploy *d, struct deploy_opts *o,
		      struct rf_error *err)
{
	struct buf url = BUF_INIT;
	const char *header;
	char want[65];
	int r = -1;

	if (d->transfer != &transfer_pull) {
		if (o->sha256 == NULL)
			return 0;
		rf_error_set(err, RF_EXIT_USAGE, "validate",
			     "--sha256 names an artifact the servers download: "
			     "it needs --url URL or [artifact] url");
		return rf_error_hint(err,
				     "pass the artifact's file instead, or "
				     "the URL the servers download it from");
	}
	if (o->sha256 != NULL && pull_sha256_parse(o->sha256, want) != 0)
		return rf_error_set(err, RF_EXIT_USAGE, "validate",
				    "--sha256: '%.80s' is not a SHA-256 (64 "
				    "hex digits)",
				    o->sha256);
	if (pull_header(d->conf, &header, err) != 0)
		return -1;
	pull_url(d, &url);
	pull_url_secrets(buf_str(&url));
	if (!pull_url_valid(buf_str(&url))) {
		rf_error_set(err, RF_EXIT_USAGE, "validate",
			     "the artifact's URL is not an http:// or https:// "
			     "URL without spaces");
		rf_error_hint(err, "check --url or [artifact] url");
		goto out;
	}
	if (o->artifact == NULL) {
		if (pull_fetch(d, buf_str(&url), header, want, &d->fetched,
			       err) != 0)
			goto out;
		o->artifact = d->fetched;
	}
	r = 0;
out:
	buf_release(&url);
	return r;
}

void
transfer_pull_end(struct deploy *d)
{
	if (d->fetched == NULL)
		return;
	unlink(d->fetched);
	free(d->fetched);
	d->fetched = NULL;
}

/* ---- the download on each server ---- */

static void
pull_plan(const struct fleet *f, const struct fleet_host *fh, void *run,
	  struct stage_plan *p)
{
	struct deploy *d = run;
	struct buf url = BUF_INIT;
	const char *header = NULL;
	struct rf_error ignored = RF_ERROR_INIT;
	struct step_pull sp;

	(void)fh;
	pull_url(d, &url);
	/* transfer_pull_prepare() checked it: only the value is wanted. */
	(void)pull_header(f->conf, &header, &ignored);
	memset(&sp, 0, sizeof(sp));
	sp.app = f->conf->app_path;
	sp.id = d->opts->revision;
	sp.sha256 = d->art.sha256;
	sp.size = d->art.file_size;
	sp.url = buf_str(&url);
	sp.limit = f->conf->hook_timeout;
	sp.header = header != NULL;
	step_pull_script(&p->script, &sp);
	/* The header on stdin: never in the script, which -v and --dry-run
	 * print. */
	if (header != NULL) {
		buf_adds(&p->input, header);
		buf_addch(&p->input, '\n');
	}
	/* Past the download's own limit, the time to hash the file. */
	p->limit = f->conf->hook_timeout + STEP_LIMIT_SHORT;
	buf_release(&url);
}

static const struct stage pull_stage;

/* The value of "key=" in the script's stdout, or "". */
static void
pull_field(const struct buf *out, const char *key, char *v, size_t len)
{
	const char *s = buf_str(out);
	size_t n = strlen(key);

	v[0] = '\0';
	while (s != NULL && *s != '\0') {
		if (strncmp(s, key, n) == 0 && s[n] == '=') {
			snprintf(v, len, "%.*s", (int)strcspn(s + n + 1, "\n"),
				 s + n + 1);
			return;
		}
		s = strchr(s, '\n');
		if (s != NULL)
			s++;
	}
}

/* The script's stderr as one line: its lines joined with "; ". */
static void
pull_why(const struct buf *errtext, struct buf *why)
{
	const char *s = buf_str(errtext);

	while (*s != '\0') {
		size_t n = strcspn(s, "\n");

		if (n > 0) {
			if (why->len > 0)
				buf_adds(why, "; ");
			buf_add(why, s, n);
		}
		s += n;
		if (*s == '\n')
			s++;
	}
}

static void
pull_failed(struct deploy *d, struct fleet_host *fh, int status,
	    const char *url, const struct buf *out, const struct buf *errtext)
{
	const char *host = fh->host->name;
	struct buf line = BUF_INIT;
	const char *why;
	char v[80], lim[32];

	pull_why(errtext, &line);
	why = buf_str(&line);

	switch (status) {
	case STEP_PULL_TOOL:
		if (d->conf->artifact_header_env != NULL) {
			rf_error_set(&fh->err, RF_EXIT_UPLOAD, "upload",
				     "no curl on %s: a download with "
				     "[artifact] header_env needs curl (wget "
				     "would pass the header on to any host a "
				     "redirect names)",
				     host);
			rf_error_hint(&fh->err, "install curl on %s", host);
		} else {
			rf_error_set(
			    &fh->err, RF_EXIT_UPLOAD, "upload",
			    "neither curl nor wget on %s: the server "
			    "downloads the artifact itself ([artifact] "
			    "url or --url)",
			    host);
			rf_error_hint(&fh->err,
				      "install curl on %s, or deploy "
				      "without a URL to upload the artifact "
				      "over SSH",
				      host);
		}
		break;
	case STEP_PULL_HTTP:
		pull_field(out, "http", v, sizeof(v));
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "upload",
			     "%s could not download the artifact: %s answered "
			     "HTTP %s",
			     host, url, v[0] ? v : "error");
		if (strcmp(v, "404") == 0)
			rf_error_hint(&fh->err,
				      "publish the artifact at that "
				      "URL first, or fix --url / [artifact] "
				      "url");
		else if (strcmp(v, "401") == 0 || strcmp(v, "403") == 0)
			rf_error_hint(&fh->err,
				      "the store refused access: "
				      "check [artifact] header_env, or whether "
				      "a presigned URL has expired");
		break;
	case STEP_PULL_CONNECT:
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "upload",
			     "%s cannot reach %s: %s", host, url, why);
		rf_error_hint(&fh->err,
			      "the servers, not relflip, download "
			      "the artifact: check DNS, routes and proxies "
			      "from %s",
			      host);
		break;
	case STEP_PULL_SLOW:
		out_format_duration(lim, sizeof(lim),
				    (long)(d->conf->hook_timeout * 1000));
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "upload",
			     "%s did not finish downloading %s within %s "
			     "([deploy] hook_timeout); what it got is kept "
			     "and the next deploy resumes it",
			     host, url, lim);
		rf_error_hint(&fh->err, "deploy again, or raise [deploy] "
					"hook_timeout");
		break;
	case STEP_CHECKSUM:
		pull_field(out, "sha256", v, sizeof(v));
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "upload",
			     "%s served %s other bytes than the artifact "
			     "validated: SHA-256 %s there, %s here",
			     url, host, v, d->art.sha256);
		rf_error_hint(&fh->err,
			      "the download was removed: publish "
			      "this artifact at the URL, or point the URL at "
			      "this release");
		break;
	default:
		rf_error_set(&fh->err, RF_EXIT_UPLOAD, "upload",
			     "downloading %s on %s failed (exit %d): %s", url,
			     host, status, why);
		break;
	}
	buf_release(&line);
}

static int
pull_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct deploy *d = arg;
	struct buf out = BUF_INIT, errtext = BUF_INIT;
	struct buf url = BUF_INIT, shown = BUF_INIT;
	long long t0 = out_now_ms();
	char v[32], sz[32], rate[32];
	uint64_t from;
	double secs;
	int status;

	out.max = 4096;
	status = stage_exec(f, fh, &pull_stage, d, &out, &errtext);
	if (status != 0) {
		if (status > 0) {
			pull_url(d, &url);
			pull_url_shown(buf_str(&url), &shown);
			pull_failed(d, fh, status, buf_str(&shown), &out,
				    &errtext);
		}
		goto out;
	}
	pull_field(&out, "from", v, sizeof(v));
	from = strtoull(v, NULL, 10);
	if (from >= d->art.file_size) {
		snprintf(fh->detail, sizeof(fh->detail), "already there");
		goto out;
	}
	secs = (double)(out_now_ms() - t0) / 1000.0;
	out_format_bytes(sz, sizeof(sz), d->art.file_size - from);
	out_format_bytes(
	    rate, sizeof(rate),
	    secs > 0 ? (uint64_t)((double)(d->art.file_size - from) / secs)
		     : 0);
	snprintf(fh->detail, sizeof(fh->detail), "pulled %s %s/s%s", sz, rate,
		 from ? " (resumed)" : "");
out:
	buf_release(&out);
	buf_release(&errtext);
	buf_release(&url);
	buf_release(&shown);
	return status == 0 ? 0 : -1;
}

static const struct stage pull_stage = {
	.name = "upload",
	.flags = STAGE_CHANGES,
	.does = "the server downloads the artifact from the URL into "
		".relflip/incoming/ (resumable) and checks its SHA-256; "
		"relflip sends nothing",
	.undo = "the download is removed by the next prune",
	.wanted = transfer_wants_new,
	.plan = pull_plan,
	.run = pull_one,
};

/* ---- the unpack: the upload transfer's, once the file is there ---- */

static void
unpack_plan(const struct fleet *f, const struct fleet_host *fh, void *run,
	    struct stage_plan *p)
{
	transfer_upload.unpack->plan(f, fh, run, p);
}

static int
unpack_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	return transfer_upload.unpack->run(f, fh, arg);
}

/* Judged as the upload's, so that it can share link's round trip. */
static int
unpack_judge(struct fleet *f, struct fleet_host *fh, void *arg, int status,
	     const char *errtext)
{
	return transfer_upload.unpack->judge(f, fh, arg, status, errtext);
}

static const struct stage unpack_stage = {
	.name = "unpack",
	.flags = STAGE_CHANGES,
	.does = "check the download's SHA-256 again, unpack it, check every "
		"file against the manifest, rename it into place",
	.undo = "a failed unpack removes its temporary directory",
	.wanted = transfer_wants_new,
	.plan = unpack_plan,
	.run = unpack_one,
	.judge = unpack_judge,
};

const struct transfer transfer_pull = {
	.name = "pull",
	.upload = &pull_stage,
	.unpack = &unpack_stage,
};
