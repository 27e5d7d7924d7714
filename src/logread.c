/*
 * Reading the hosts' deploy logs back: see include/logread.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "logread.h"
#include "out.h"
#include "quote.h"
#include "record.h"
#include "status.h"
#include "xmalloc.h"

static void
get_str(const struct json_doc *d, const char *key, char *dst, size_t len)
{
	const char *v = json_read_str(d, key);

	snprintf(dst, len, "%s", v != NULL ? v : "");
}

/* A number member, or -1 when there is none. */
static long long
get_num(const struct json_doc *d, const char *key)
{
	enum json_read_kind k = json_read_kind(d, key);

	if (k != JR_INT && k != JR_DOUBLE)
		return -1;
	return json_read_int(d, key);
}

/*
 * "time": what fleet_log_begin() writes ("2026-01-01T00:00:00Z"), with a
 * fraction or without the Z too, or epoch seconds. 0 and *ms, or -1.
 */
static int
get_time(const struct json_doc *d, long long *ms)
{
	struct tm tm;
	const char *s, *rest;
	long long frac = 0, scale = 100, secs;

	if (json_read_kind(d, "time") == JR_INT) {
		secs = json_read_int(d, "time");
		*ms = record_secs_to_ms(secs);
		return secs >= 0 && (*ms != 0 || secs == 0) ? 0 : -1;
	}
	s = json_read_str(d, "time");
	if (s == NULL)
		return -1;
	memset(&tm, 0, sizeof(tm));
	rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (rest == NULL)
		return -1;
	if (*rest == '.') {
		for (rest++; *rest >= '0' && *rest <= '9'; rest++) {
			frac += (*rest - '0') * scale;
			scale /= 10;
		}
	}
	if (*rest == 'Z')
		rest++;
	if (*rest != '\0')
		return -1;
	secs = (long long)timegm(&tm);
	*ms = record_secs_to_ms(secs);
	if (secs < 0 || (*ms == 0 && secs != 0))
		return -1;
	*ms += frac;
	return 0;
}

int
log_line_parse(const char *line, struct log_entry *e)
{
	struct json_doc *d;
	const char *command;
	int r = -1;

	memset(e, 0, sizeof(*e));
	d = json_read_object(line);
	if (d == NULL)
		return -1;
	command = json_read_str(d, "command");
	if (command == NULL || command[0] == '\0' ||
	    get_time(d, &e->time_ms) != 0)
		goto out;
	get_str(d, "command", e->command, sizeof(e->command));
	get_str(d, "revision", e->revision, sizeof(e->revision));
	get_str(d, "previous", e->previous, sizeof(e->previous));
	get_str(d, "result", e->result, sizeof(e->result));
	e->exit_code = (int)json_read_int(d, "exit_code");
	get_str(d, "actor", e->actor, sizeof(e->actor));
	get_str(d, "runner", e->runner, sizeof(e->runner));
	get_str(d, "run_url", e->run_url, sizeof(e->run_url));
	get_str(d, "why", e->why, sizeof(e->why));
	get_str(d, "holder", e->holder, sizeof(e->holder));
	get_str(d, "holder_since", e->holder_since, sizeof(e->holder_since));
	get_str(d, "message", e->message, sizeof(e->message));
	get_str(d, "checksum", e->checksum, sizeof(e->checksum));
	e->removed = get_num(d, "removed");
	e->kept = get_num(d, "kept");
	e->duration_ms = get_num(d, "duration_ms");
	r = 0;
out:
	if (r != 0)
		memset(e, 0, sizeof(*e));
	json_read_free(d);
	return r;
}

void
log_read_script(struct buf *cmd, const char *app, size_t n)
{
	struct buf path = BUF_INIT;

	buf_addf(&path, "%s/.relflip/log.jsonl", app);
	buf_adds(cmd, "F=");
	sh_quote(cmd, buf_str(&path));
	/*
	 * Only the last n lines leave the server; a line past LOG_LINE_MAX
	 * is not relflip's and is only counted. A last byte that is not a
	 * newline is a torn append: said first, so that the reader knows
	 * which line it is.
	 */
	buf_addf(cmd,
		 "\n[ -e \"$F\" ] || { echo none; exit 0; }\n"
		 "[ -f \"$F\" ] && [ -r \"$F\" ] || { echo \"$F is not a "
		 "readable file\" >&2; exit 3; }\n"
		 "[ -z \"$(tail -c 1 \"$F\")\" ] || echo torn\n"
		 "tail -n %zu \"$F\" | LC_ALL=C awk '{ if (length($0) > %d) "
		 "print \"long\"; else print \"L\" $0 }'\n",
		 n, LOG_LINE_MAX);
	buf_release(&path);
}

static void
list_add(struct log_list *list, const struct log_entry *e)
{
	list->v = xreallocarray(list->v, list->n + 1, sizeof(*list->v));
	list->v[list->n++] = *e;
}

void
log_reply_parse(const char *reply, const char *host, size_t host_index,
		struct log_list *list, struct log_skips *skips)
{
	const char *line = reply, *nl;
	struct log_entry e;
	int torn = 0, last_failed = 0;
	size_t seq = 0;
	char *text;

	memset(skips, 0, sizeof(*skips));
	for (; line != NULL && *line != '\0'; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		text = xstrndup(line, nl ? (size_t)(nl - line) : strlen(line));
		if (strcmp(text, "none") == 0) {
			skips->missing = 1;
		} else if (strcmp(text, "torn") == 0) {
			torn = 1;
		} else if (strcmp(text, "long") == 0) {
			skips->too_long++;
			last_failed = 0;
		} else if (text[0] == 'L') {
			last_failed = log_line_parse(text + 1, &e) != 0;
			if (last_failed) {
				skips->skipped++;
			} else {
				snprintf(e.host, sizeof(e.host), "%s", host);
				e.host_index = host_index;
				e.seq = seq++;
				list_add(list, &e);
				skips->read++;
			}
		}
		free(text);
	}
	skips->torn = torn && last_failed;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct log_entry *x = a, *y = b;

	if (x->time_ms != y->time_ms)
		return x->time_ms < y->time_ms ? -1 : 1;
	if (x->host_index != y->host_index)
		return x->host_index < y->host_index ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return 0;
}

void
log_merge(struct log_list *list, size_t keep)
{
	size_t drop;

	if (list->n == 0)
		return;
	qsort(list->v, list->n, sizeof(*list->v), entry_cmp);
	if (list->n <= keep)
		return;
	drop = list->n - keep;
	memmove(list->v, list->v + drop, keep * sizeof(*list->v));
	list->n = keep;
}

void
log_list_release(struct log_list *list)
{
	free(list->v);
	list->v = NULL;
	list->n = 0;
}

/* ---- reading every host's log ---- */

struct log_read {
	size_t n;
	struct log_list *lists; /* one per host: the threads never share */
	struct log_skips *skips;
};

static int
log_read_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	struct log_read *lr = arg;
	size_t i = (size_t)(fh - f->h);
	struct buf cmd = BUF_INIT, out = BUF_INIT, errtext = BUF_INIT;
	struct log_skips *sk = &lr->skips[i];
	int status, rc = -1;

	log_read_script(&cmd, f->conf->app_path, lr->n);
	out.max = lr->n * (LOG_LINE_MAX + 2) + 4096;
	status = fleet_run(fh, f->conf->app_path, buf_str(&cmd), &out, &errtext,
			   &fh->err);
	if (status < 0)
		goto out;
	if (status > 0) {
		buf_one_line(&errtext);
		rf_error_set(&fh->err, RF_EXIT_INTERNAL, "log",
			     "reading %s/.relflip/log.jsonl on %s failed "
			     "(exit %d): %s",
			     f->conf->app_path, fh->host->name, status,
			     buf_str(&errtext));
		goto out;
	}
	log_reply_parse(buf_str(&out), fh->host->name, i, &lr->lists[i], sk);
	if (sk->missing)
		snprintf(fh->detail, sizeof(fh->detail), "no log yet");
	else
		snprintf(fh->detail, sizeof(fh->detail), "%zu line%s", sk->read,
			 sk->read == 1 ? "" : "s");
	rc = 0;
out:
	buf_release(&cmd);
	buf_release(&out);
	buf_release(&errtext);
	return rc;
}

static void
warn_skips(const struct fleet *f, size_t i, const struct log_skips *sk)
{
	const char *host = f->h[i].host->name;

	if (sk->skipped > 0)
		out_warning(host, "log",
			    "%zu line%s of %s/.relflip/log.jsonl skipped: not "
			    "relflip log lines%s",
			    sk->skipped, sk->skipped == 1 ? "" : "s",
			    f->conf->app_path,
			    sk->torn ? " (the last one is torn: an append cut "
				       "short, by a full disk or a crash)"
				     : "");
	if (sk->too_long > 0)
		out_warning(host, "log",
			    "%zu line%s of %s/.relflip/log.jsonl skipped: "
			    "longer than %d bytes, not written by relflip",
			    sk->too_long, sk->too_long == 1 ? "" : "s",
			    f->conf->app_path, LOG_LINE_MAX);
}

int
log_run(const struct selection *sel, size_t n, struct log_list *list,
	struct rf_error *err)
{
	struct fleet f;
	struct log_read lr;
	size_t i, j;
	int code = 0;

	if (n > LOG_LINES_MAX)
		n = LOG_LINES_MAX;
	fleet_init(&f, sel, "log", NULL);
	lr.n = n;
	lr.lists = xcalloc(f.n ? f.n : 1, sizeof(*lr.lists));
	lr.skips = xcalloc(f.n ? f.n : 1, sizeof(*lr.skips));
	code = status_open(&f, 0, err);
	status_step(&f, "log", log_read_one, &lr, &code, err);
	for (i = 0; i < f.n; i++) {
		warn_skips(&f, i, &lr.skips[i]);
		for (j = 0; j < lr.lists[i].n; j++)
			list_add(list, &lr.lists[i].v[j]);
		log_list_release(&lr.lists[i]);
	}
	log_merge(list, n);
	free(lr.lists);
	free(lr.skips);
	fleet_release(&f);
	return code;
}
