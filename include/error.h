#ifndef RELFLIP_ERROR_H
#define RELFLIP_ERROR_H

#include <signal.h>

/* Exit codes: the contract in DESIGN.md. */
enum rf_exit {
	RF_EXIT_OK = 0,
	RF_EXIT_INTERNAL = 1,
	RF_EXIT_USAGE = 2,
	RF_EXIT_ARTIFACT = 3,
	RF_EXIT_CONNECT = 4,
	RF_EXIT_LOCKED = 5,
	RF_EXIT_UPLOAD = 6,
	RF_EXIT_HOOK = 7,
	RF_EXIT_HEALTH = 8,
	RF_EXIT_ROLLBACK_FAILED = 9,
	RF_EXIT_REF = 10,
	RF_EXIT_INTERRUPTED = 130,
};

/*
 * What went wrong, in a transport's own terms. An adapter says what
 * happened (the kind, a message and a hint); the caller, which knows what
 * it was doing, picks the exit code and the stage. `check` sorts connect
 * failures into its connect, host key and auth columns by kind.
 */
enum rf_kind {
	RF_KIND_NONE = 0,
	RF_KIND_RESOLVE,            /* the name does not resolve */
	RF_KIND_REFUSED,            /* nothing listens, or no route there */
	RF_KIND_TIMEOUT,            /* no answer within the connect timeout */
	RF_KIND_PROTOCOL,           /* not SSH, or no algorithm in common */
	RF_KIND_HOSTKEY_UNKNOWN,    /* not in known_hosts (or no such file) */
	RF_KIND_HOSTKEY_CHANGED,    /* known_hosts lists another key */
	RF_KIND_HOSTKEY_REVOKED,    /* known_hosts marks the key @revoked */
	RF_KIND_KNOWN_HOSTS,        /* known_hosts cannot be read */
	RF_KIND_AUTH_REFUSED,       /* the server took none of the keys */
	RF_KIND_KEY_UNUSABLE,       /* a key cannot be read, parsed or used */
	RF_KIND_CONNECTION_LOST,    /* the connection broke or stalled */
	RF_KIND_CHANNEL_REFUSED,    /* a channel or tunnel could not open */
	RF_KIND_CHANNEL_PROHIBITED, /* ... because sshd forbids it */
	RF_KIND_SFTP,               /* an SFTP request failed */
	RF_KIND_NO_SPACE,           /* the server's disk is full */
	RF_KIND_INTERRUPTED,        /* SIGINT or SIGTERM */
};

/*
 * One error travels up from where it happened to main.c, which prints it.
 * Fixed buffers: nothing is allocated on the error path.
 */
struct rf_error {
	enum rf_exit code;  /* exit code from DESIGN.md; 0 when unset */
	const char *stage;  /* "connect", "upload", ...: a static string, or NULL */
	char host[64];      /* "" when not host-specific */
	char msg[512];      /* lowercase, error first, no full stop */
	char hint[512];     /* what to try next, or "" */
	enum rf_kind kind;  /* what went wrong; RF_KIND_NONE when not told */
	char via[64];       /* the jump host it happened on, or "" */
};

#define RF_ERROR_INIT { 0 }

/* Fill err and return -1, so callers can `return rf_error_set(...)`. */
int rf_error_set(struct rf_error *err, enum rf_exit code, const char *stage,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * For adapters: fill err with what went wrong and why, leaving the exit
 * code (0) and the stage (NULL) to the caller; clears the hint and via.
 * Returns -1.
 */
int rf_error_kind(struct rf_error *err, enum rf_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A short name for a kind: "host key changed"; "" for RF_KIND_NONE. */
const char *rf_kind_name(enum rf_kind kind);

/* Set the hint of an error already set; returns -1. */
int rf_error_hint(struct rf_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * The config file the person chose with -c, as the hint's commands must
 * name it ("-c 'config/staging.ini'", shell-quoted by the caller), or NULL.
 * A hint such as "relflip -H web1 unlock" pasted without it would act on
 * ./relflip.ini, which is often production.
 */
void rf_hint_config(const char *option);

/*
 * Put the -c option (rf_hint_config) after "relflip " wherever hint names
 * a relflip command that reads the config; hint is cut to size if it must.
 */
void rf_hint_add_config(char *hint, size_t size);

/* Name the host the error happened on (copied, truncated to fit). */
void rf_error_host(struct rf_error *err, const char *host);

void rf_error_clear(struct rf_error *err);

/* A broken invariant: print and exit 1. Never for conditions users cause. */
void rf_bug_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
#define rf_bug(...) rf_bug_at(__FILE__, __LINE__, __VA_ARGS__)

/*
 * Set by the SIGINT/SIGTERM handler. Transfer loops and step boundaries
 * check it and unwind through the normal path.
 */
extern volatile sig_atomic_t interrupted;

/* Install the SIGINT/SIGTERM handlers and ignore SIGPIPE. */
void signals_setup(void);

/*
 * After `current` moved, a deploy finishes its check or the way back before
 * it stops: while deferred, a signal is only remembered. Undeferring
 * returns whether one arrived meanwhile (and does not set `interrupted`).
 */
void signals_defer(void);
int signals_undefer(void);

#endif
