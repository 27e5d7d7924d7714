#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "out.h"
#include "quote.h"
#include "xmalloc.h"

struct out_settings out_cfg;

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static char **secrets;
static size_t nsecrets;
/* A progress line is on the terminal and must be cleared before text. */
static int progress_shown;

/*
 * The live status block of a fleet on a terminal: a line per host at the
 * bottom of the screen, erased before any other line is written and drawn
 * again after it.
 */
#define LIVE_HOSTS_MAX 60
#define LIVE_TEXT 96
static size_t live_n;
static char (*live_names)[32];
static char (*live_text)[LIVE_TEXT];
static size_t live_shown;
static long long live_drawn_ms;

static void live_erase(void);
static void live_draw(void);
static const char *color(const char *c);

#define COLOR_RED "\033[31;1m"
#define COLOR_YELLOW "\033[33;1m"
#define COLOR_GREEN "\033[32m"
#define COLOR_DIM "\033[2m"
#define COLOR_RESET "\033[0m"

void
out_setup(int json, int quiet, int verbose, int no_color)
{
	const char *nc = getenv("NO_COLOR");
	const char *gh = getenv("GITHUB_ACTIONS");

	out_cfg.json = json;
	out_cfg.quiet = quiet;
	out_cfg.verbose = verbose;
	out_cfg.tty = isatty(STDERR_FILENO);
	out_cfg.color = out_cfg.tty && !no_color && (nc == NULL || *nc == '\0');
	out_cfg.github = gh != NULL && strcmp(gh, "true") == 0;
}

void
out_secret(const char *text)
{
	if (text == NULL || strlen(text) < 4)
		return;
	pthread_mutex_lock(&out_lock);
	secrets = xreallocarray(secrets, nsecrets + 1, sizeof(*secrets));
	secrets[nsecrets++] = xstrdup(text);
	pthread_mutex_unlock(&out_lock);
}

/* Replace every registered secret in s; the result belongs to the caller. */
static char *
redact(const char *s)
{
	char *cur = xstrdup(s);
	size_t i;

	for (i = 0; i < nsecrets; i++) {
		struct buf b = BUF_INIT;
		const char *p = cur, *hit;
		size_t n = strlen(secrets[i]);

		if (strstr(cur, secrets[i]) == NULL)
			continue;
		while ((hit = strstr(p, secrets[i])) != NULL) {
			buf_add(&b, p, (size_t)(hit - p));
			buf_adds(&b, "[redacted]");
			p = hit + n;
		}
		buf_adds(&b, p);
		free(cur);
		cur = buf_detach(&b, NULL);
	}
	return cur;
}

long long
out_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
iso_time(char *dst, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char base[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(dst, len, "%.19s.%03dZ", base, (int)(ts.tv_nsec / 1000000));
}

/* Write a line to stderr, clearing a progress bar first. Lock held. */
static void
err_line(const char *line)
{
	char *clean = redact(line);

	if (progress_shown) {
		fputs("\r\033[K", stderr);
		progress_shown = 0;
	}
	live_erase();
	fputs(clean, stderr);
	fputc('\n', stderr);
	live_draw();
	fflush(stderr);
	free(clean);
}

/* Lock held. */
static void
live_erase(void)
{
	if (live_shown == 0)
		return;
	fprintf(stderr, "\033[%zuA\r\033[J", live_shown);
	live_shown = 0;
}

/* Lock held. */
static void
live_draw(void)
{
	size_t i;

	if (live_n == 0)
		return;
	live_erase();
	for (i = 0; i < live_n; i++)
		fprintf(stderr, "  %s%-16s%s %s\n", color(COLOR_DIM),
			live_names[i], color(COLOR_RESET), live_text[i]);
	live_shown = live_n;
	live_drawn_ms = out_now_ms();
	fflush(stderr);
}

void
out_live_begin(size_t n, const char *const *names)
{
	size_t i;

	if (!out_cfg.tty || out_cfg.json || out_cfg.quiet || n < 2 ||
	    n > LIVE_HOSTS_MAX)
		return;
	pthread_mutex_lock(&out_lock);
	live_names = xcalloc(n, sizeof(*live_names));
	live_text = xcalloc(n, sizeof(*live_text));
	for (i = 0; i < n; i++) {
		snprintf(live_names[i], sizeof(live_names[i]), "%s", names[i]);
		snprintf(live_text[i], sizeof(live_text[i]), "waiting");
	}
	live_n = n;
	pthread_mutex_unlock(&out_lock);
}

void
out_live_set(size_t i, const char *fmt, ...)
{
	va_list ap;
	char *safe;
	char text[LIVE_TEXT];

	if (live_n == 0 || i >= live_n)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	safe = term_sanitize(text);
	pthread_mutex_lock(&out_lock);
	if (live_n != 0) {
		snprintf(live_text[i], LIVE_TEXT, "%s", safe);
		if (out_now_ms() - live_drawn_ms >= 100)
			live_draw();
	}
	pthread_mutex_unlock(&out_lock);
	free(safe);
}

void
out_live_end(void)
{
	pthread_mutex_lock(&out_lock);
	if (live_n != 0) {
		live_erase();
		fflush(stderr);
		free(live_names);
		free(live_text);
		live_names = NULL;
		live_text = NULL;
		live_n = 0;
	}
	pthread_mutex_unlock(&out_lock);
}

static void
emit_json(struct buf *b)
{
	char *clean = redact(buf_str(b));

	fputs(clean, stdout);
	fputc('\n', stdout);
	fflush(stdout);
	free(clean);
}

static void
json_start(struct buf *b, const char *event, const char *host,
	   const char *stage)
{
	char t[40];

	iso_time(t, sizeof(t));
	buf_adds(b, "{\"time\": ");
	json_quote(b, t);
	buf_adds(b, ", \"event\": ");
	json_quote(b, event);
	if (host != NULL && host[0] != '\0') {
		buf_adds(b, ", \"host\": ");
		json_quote(b, host);
	}
	if (stage != NULL) {
		buf_adds(b, ", \"stage\": ");
		json_quote(b, stage);
	}
}

static void
json_fields(struct buf *b, const struct out_field *f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		buf_adds(b, ", ");
		json_quote(b, f[i].key);
		buf_adds(b, ": ");
		switch (f[i].type) {
		case OUT_STR:
			if (f[i].s == NULL)
				buf_adds(b, "null");
			else
				json_quote(b, f[i].s);
			break;
		case OUT_INT:
			buf_addf(b, "%lld", f[i].i);
			break;
		case OUT_BOOL:
			buf_adds(b, f[i].i ? "true" : "false");
			break;
		case OUT_DOUBLE:
			buf_addf(b, "%.3f", f[i].d);
			break;
		}
	}
}

void
out_event(const char *event, const char *host, const char *stage,
	  const struct out_field *fields, size_t nfields)
{
	struct buf b = BUF_INIT;

	if (!out_cfg.json)
		return;
	json_start(&b, event, host, stage);
	json_fields(&b, fields, nfields);
	buf_addch(&b, '}');
	pthread_mutex_lock(&out_lock);
	emit_json(&b);
	pthread_mutex_unlock(&out_lock);
	buf_release(&b);
}

static void
text_v(int force, const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT;

	if (out_cfg.quiet && !force)
		return;
	buf_vaddf(&b, fmt, ap);
	pthread_mutex_lock(&out_lock);
	err_line(buf_str(&b));
	pthread_mutex_unlock(&out_lock);
	buf_release(&b);
}

void
out_text(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	text_v(0, fmt, ap);
	va_end(ap);
}

void
out_primary(const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	char *clean;

	/* Under --json stdout carries events only. */
	if (out_cfg.json)
		return;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	clean = redact(buf_str(&b));
	pthread_mutex_lock(&out_lock);
	/* stdout may share the terminal with the live block. */
	live_erase();
	fflush(stderr);
	fputs(clean, stdout);
	fputc('\n', stdout);
	if (live_n != 0) {
		fflush(stdout);
		live_draw();
	}
	pthread_mutex_unlock(&out_lock);
	free(clean);
	buf_release(&b);
}

/* Workflow commands escape %, CR and LF in data; also , and : in props. */
static void
gh_escape(struct buf *b, const char *s, int prop)
{
	for (; *s != '\0'; s++) {
		if (*s == '%')
			buf_adds(b, "%25");
		else if (*s == '\r')
			buf_adds(b, "%0D");
		else if (*s == '\n')
			buf_adds(b, "%0A");
		else if (prop && *s == ':')
			buf_adds(b, "%3A");
		else if (prop && *s == ',')
			buf_adds(b, "%2C");
		else
			buf_addch(b, *s);
	}
}

/* A workflow command line. Lock held. */
static void
gh_command(const char *cmd, const char *stage, const char *host,
	   const char *msg)
{
	struct buf b = BUF_INIT, title = BUF_INIT;
	char *clean;
	FILE *f = out_cfg.json ? stderr : stdout;

	buf_addf(&title, "relflip %s", stage ? stage : cmd);
	if (host != NULL && host[0] != '\0')
		buf_addf(&title, " on %s", host);
	buf_addf(&b, "::%s title=", cmd);
	gh_escape(&b, buf_str(&title), 1);
	buf_adds(&b, "::");
	gh_escape(&b, msg, 0);
	clean = redact(buf_str(&b));
	fprintf(f, "%s\n", clean);
	fflush(f);
	free(clean);
	buf_release(&b);
	buf_release(&title);
}

void
out_group_begin(const char *title)
{
	FILE *f = out_cfg.json ? stderr : stdout;

	if (!out_cfg.github)
		return;
	pthread_mutex_lock(&out_lock);
	fflush(stderr);
	fprintf(f, "::group::relflip %s\n", title);
	fflush(f);
	pthread_mutex_unlock(&out_lock);
}

void
out_group_end(void)
{
	FILE *f = out_cfg.json ? stderr : stdout;

	if (!out_cfg.github)
		return;
	pthread_mutex_lock(&out_lock);
	fflush(stderr);
	fprintf(f, "::endgroup::\n");
	fflush(f);
	pthread_mutex_unlock(&out_lock);
}

void
out_step_summary(const char *markdown)
{
	const char *path = getenv("GITHUB_STEP_SUMMARY");
	char *clean;
	FILE *f;

	if (path == NULL || *path == '\0')
		return;
	f = fopen(path, "a");
	if (f == NULL) {
		out_warning(NULL, NULL, "cannot append to GITHUB_STEP_SUMMARY "
			    "%s: %m", path);
		return;
	}
	clean = redact(markdown);
	fputs(clean, f);
	free(clean);
	if (fclose(f) != 0)
		out_warning(NULL, NULL, "cannot write GITHUB_STEP_SUMMARY %s",
			    path);
}

static const char *
color(const char *c)
{
	return out_cfg.color ? c : "";
}

void
out_warning(const char *host, const char *stage, const char *fmt, ...)
{
	struct buf msg = BUF_INIT, line = BUF_INIT;
	struct out_field f[1];
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(&msg, fmt, ap);
	va_end(ap);
	f[0] = (struct out_field)OF_STR("message", buf_str(&msg));
	out_event("warning", host, stage, f, 1);
	if (!out_cfg.quiet) {
		buf_addf(&line, "relflip: %swarning:%s ", color(COLOR_YELLOW),
			 color(COLOR_RESET));
		if (host != NULL && host[0] != '\0')
			buf_addf(&line, "%s: ", host);
		buf_adds(&line, buf_str(&msg));
		pthread_mutex_lock(&out_lock);
		err_line(buf_str(&line));
		if (out_cfg.github)
			gh_command("warning", stage, NULL, buf_str(&msg));
		pthread_mutex_unlock(&out_lock);
	}
	buf_release(&msg);
	buf_release(&line);
}

void
out_error(const struct rf_error *err)
{
	struct buf line = BUF_INIT;
	struct out_field f[3];
	size_t n = 0;

	if (out_cfg.github) {
		struct buf msg = BUF_INIT;

		buf_adds(&msg, err->msg);
		if (err->hint[0] != '\0')
			buf_addf(&msg, "\nhint: %s", err->hint);
		pthread_mutex_lock(&out_lock);
		gh_command("error", err->stage, err->host, buf_str(&msg));
		pthread_mutex_unlock(&out_lock);
		buf_release(&msg);
	}

	f[n++] = (struct out_field)OF_INT("code", err->code);
	f[n++] = (struct out_field)OF_STR("message", err->msg);
	if (err->hint[0] != '\0')
		f[n++] = (struct out_field)OF_STR("hint", err->hint);
	out_event("error", err->host, err->stage, f, n);

	buf_addf(&line, "relflip: %serror:%s ", color(COLOR_RED),
		 color(COLOR_RESET));
	if (err->host[0] != '\0' && strstr(err->msg, err->host) == NULL)
		buf_addf(&line, "%s: ", err->host);
	buf_adds(&line, err->msg);
	if (err->code > RF_EXIT_USAGE)
		buf_addf(&line, " (exit %d)", (int)err->code);
	pthread_mutex_lock(&out_lock);
	err_line(buf_str(&line));
	if (err->hint[0] != '\0') {
		buf_reset(&line);
		buf_addf(&line, "hint: %s", err->hint);
		err_line(buf_str(&line));
	}
	pthread_mutex_unlock(&out_lock);
	buf_release(&line);
}

void
out_debug_at(const char *func, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	if (!out_cfg.verbose)
		return;
	buf_addf(&b, "debug: %s: ", func);
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&out_lock);
	err_line(buf_str(&b));
	pthread_mutex_unlock(&out_lock);
	buf_release(&b);
}

void
out_stage_begin(const char *host, const char *stage)
{
	struct out_field f[1] = { OF_STR("phase", "begin") };

	out_event("stage", host, stage, f, 1);
}

void
out_stage_end(const char *host, const char *stage, long duration_ms, int ok,
	      const char *detail)
{
	struct out_field f[4] = {
		OF_STR("phase", "end"),
		OF_INT("duration_ms", duration_ms),
		OF_BOOL("ok", ok),
		OF_STR("detail", detail ? detail : ""),
	};
	struct buf line = BUF_INIT;
	char dur[32];
	char *safe;

	out_event("stage", host, stage, f, 4);
	if (out_cfg.quiet)
		return;
	out_format_duration(dur, sizeof(dur), duration_ms);
	safe = term_sanitize(detail ? detail : "");
	buf_addf(&line, "  %s%-9s%s %-56s %s%8s%s", ok ? "" : color(COLOR_RED),
		 stage, ok ? "" : color(COLOR_RESET), safe, color(COLOR_DIM),
		 dur, color(COLOR_RESET));
	pthread_mutex_lock(&out_lock);
	err_line(buf_str(&line));
	pthread_mutex_unlock(&out_lock);
	free(safe);
	buf_release(&line);
}

void
out_progress(const char *label, uint64_t done, uint64_t total)
{
	static long long last_draw_ms, started_ms;
	long long now = out_now_ms();
	int finished = done >= total;

	if (out_cfg.json || !out_cfg.tty || out_cfg.quiet || live_n != 0)
		return;
	pthread_mutex_lock(&out_lock);
	if (started_ms == 0 || done == 0)
		started_ms = now;
	if (!finished && now - last_draw_ms < 100) {
		pthread_mutex_unlock(&out_lock);
		return;
	}
	last_draw_ms = now;
	if (finished) {
		if (progress_shown)
			fputs("\r\033[K", stderr);
		progress_shown = 0;
		started_ms = 0;
	} else {
		char sd[32], st[32], rate[32];
		double secs = (double)(now - started_ms) / 1000.0;
		double bps = secs > 0 ? (double)done / secs : 0;
		int pct = total ? (int)(done * 100 / total) : 100;
		int width = 30, fill = pct * width / 100, i;
		long eta = bps > 0 ? (long)((double)(total - done) / bps) : 0;

		out_format_bytes(sd, sizeof(sd), done);
		out_format_bytes(st, sizeof(st), total);
		out_format_bytes(rate, sizeof(rate), (uint64_t)bps);
		fprintf(stderr, "\r\033[K  upload    %s [", label ? label : "");
		for (i = 0; i < width; i++)
			fputc(i < fill ? '=' : (i == fill ? '>' : ' '), stderr);
		fprintf(stderr, "] %3d%% %s/%s %s/s ETA %lds", pct, sd, st,
			rate, eta);
		progress_shown = 1;
	}
	fflush(stderr);
	pthread_mutex_unlock(&out_lock);
}

void
out_output(const char *host, const char *stage, int is_stderr,
	   const char *line)
{
	struct out_field f[2] = {
		OF_STR("line", line),
		OF_STR("stream", is_stderr ? "stderr" : "stdout"),
	};
	struct buf b = BUF_INIT;
	char *safe;

	out_event("output", host, stage, f, 2);
	if (out_cfg.quiet)
		return;
	safe = term_sanitize(line);
	buf_addf(&b, "    %s%s |%s %s", color(COLOR_DIM), host ? host : "",
		 color(COLOR_RESET), safe);
	pthread_mutex_lock(&out_lock);
	err_line(buf_str(&b));
	pthread_mutex_unlock(&out_lock);
	free(safe);
	buf_release(&b);
}

void
out_result(const char *status, int exit_code, const char *revision,
	   const char *previous, long duration_ms)
{
	struct out_field f[5] = {
		OF_STR("status", status),
		OF_INT("exit_code", exit_code),
		OF_STR("revision", revision),
		OF_STR("previous", previous),
		OF_INT("duration_ms", duration_ms),
	};

	out_event("result", NULL, NULL, f, 5);
}

void
out_format_duration(char *dst, size_t len, long ms)
{
	if (ms < 1000)
		snprintf(dst, len, "%ld ms", ms);
	else if (ms < 60000)
		snprintf(dst, len, "%.1f s", (double)ms / 1000.0);
	else
		snprintf(dst, len, "%ldm%02lds", ms / 60000, (ms / 1000) % 60);
}

void
out_format_bytes(char *dst, size_t len, uint64_t bytes)
{
	static const char *units[] = { "B", "KB", "MB", "GB", "TB" };
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1000.0 && u < 4) {
		v /= 1000.0;
		u++;
	}
	if (u == 0)
		snprintf(dst, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(dst, len, "%.1f %s", v, units[u]);
}

int
out_finish(void)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return -1;
	return 0;
}
