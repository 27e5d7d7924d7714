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

int
rf_error_hint(struct rf_error *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
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
