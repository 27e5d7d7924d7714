#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

volatile sig_atomic_t interrupted;
static volatile sig_atomic_t deferring, deferred;

int
rf_error_set(struct rf_error *err, enum rf_exit code, const char *stage,
	     const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	err->code = code;
	err->stage = stage;
	err->hint[0] = '\0';
	err->kind = RF_KIND_NONE;
	err->via[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int
rf_error_kind(struct rf_error *err, enum rf_kind kind, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	err->code = 0;
	err->stage = NULL;
	err->hint[0] = '\0';
	err->kind = kind;
	err->via[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

const char *
rf_kind_name(enum rf_kind kind)
{
	static const char *const names[] = {
		[RF_KIND_NONE] = "",
		[RF_KIND_RESOLVE] = "name not resolved",
		[RF_KIND_REFUSED] = "connection refused",
		[RF_KIND_TIMEOUT] = "timed out",
		[RF_KIND_PROTOCOL] = "SSH handshake failed",
		[RF_KIND_HOSTKEY_UNKNOWN] = "host key unknown",
		[RF_KIND_HOSTKEY_CHANGED] = "host key changed",
		[RF_KIND_HOSTKEY_REVOKED] = "host key revoked",
		[RF_KIND_KNOWN_HOSTS] = "known_hosts unreadable",
		[RF_KIND_AUTH_REFUSED] = "authentication refused",
		[RF_KIND_KEY_UNUSABLE] = "key unusable",
		[RF_KIND_CONNECTION_LOST] = "connection lost",
		[RF_KIND_CHANNEL_REFUSED] = "channel refused",
		[RF_KIND_CHANNEL_PROHIBITED] = "channel prohibited",
		[RF_KIND_SFTP] = "SFTP failure",
		[RF_KIND_NO_SPACE] = "no space left",
		[RF_KIND_INTERRUPTED] = "interrupted",
	};

	if ((size_t)kind >= sizeof(names) / sizeof(names[0]) ||
	    names[kind] == NULL)
		return "";
	return names[kind];
}

static char hint_config_option[300];

void
rf_hint_config(const char *option)
{
	snprintf(hint_config_option, sizeof(hint_config_option), "%s",
		 option != NULL ? option : "");
}

/* Does "relflip " at p go on with a command that reads the config? */
static int
names_config_command(const char *p)
{
	static const char *const words[] = {
		"-H",       "-R",    "deploy", "rollback", "prune",
		"releases", "check", "unlock", "status",   "log",
		"exec",     "lock",  "setup",
	};
	size_t i, n;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		n = strlen(words[i]);
		if (strncmp(p, words[i], n) == 0 &&
		    (p[n] == ' ' || p[n] == '\0' || p[n] == ',' ||
		     p[n] == ';' || p[n] == ')' || p[n] == '.'))
			return 1;
	}
	return 0;
}

void
rf_hint_add_config(char *hint, size_t size)
{
	static const char word[] = "relflip ";
	char out[1024];
	const char *p = hint, *at;
	size_t len = 0;

	if (hint_config_option[0] == '\0' || strstr(hint, word) == NULL)
		return;
	while ((at = strstr(p, word)) != NULL) {
		at += sizeof(word) - 1;
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%.*s",
					(int)(at - p), p);
		if (len >= sizeof(out))
			break;
		if ((at - sizeof(word) + 1 == hint ||
		     !isalnum((unsigned char)at[-(int)sizeof(word)])) &&
		    names_config_command(at))
			len += (size_t)snprintf(out + len, sizeof(out) - len,
						"%s ", hint_config_option);
		if (len >= sizeof(out))
			break;
		p = at;
	}
	if (len < sizeof(out))
		snprintf(out + len, sizeof(out) - len, "%s", p);
	snprintf(hint, size, "%s", out);
}

int
rf_error_hint(struct rf_error *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
	rf_hint_add_config(err->hint, sizeof(err->hint));
	return -1;
}

void
rf_error_host(struct rf_error *err, const char *host)
{
	if (err == NULL)
		return;
	snprintf(err->host, sizeof(err->host), "%s", host ? host : "");
}

void
rf_error_clear(struct rf_error *err)
{
	memset(err, 0, sizeof(*err));
}

void
rf_bug_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "relflip: BUG: %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(RF_EXIT_INTERNAL);
}

static void
on_signal(int sig)
{
	(void)sig;
	if (deferring)
		deferred = 1;
	else
		interrupted = 1;
}

void
signals_defer(void)
{
	deferred = interrupted;
	interrupted = 0;
	deferring = 1;
}

int
signals_undefer(void)
{
	deferring = 0;
	return deferred;
}

void
signals_setup(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: blocking waits return EINTR and see the flag. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}
