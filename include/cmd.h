#ifndef RELFLIP_CMD_H
#define RELFLIP_CMD_H

#include <getopt.h>
#include <stddef.h>

#include "conf.h"
#include "error.h"
#include "fleet.h"

/*
 * The command layer. main.c parses the global options (before or after
 * the command's name) and the command's own options in one pass, loads
 * the config when the command needs it, calls the command, and then
 * prints the one final error and the result event. A command parses its
 * options into its own struct, calls the core, and prints what is its
 * own output (a table, a listing).
 */
struct cmd_ctx {
	const char *config_path;   /* -c, $RELFLIP_CONFIG, or ./relflip.ini */
	struct conf *conf;         /* with CMD_CONFIG */
	struct conf_host **hosts;  /* the selected hosts, in config order */
	size_t nhosts;
	struct strlist only_hosts; /* -H, repeatable */
	struct strlist only_roles; /* -R, repeatable */
	int json;
	int quiet;
	int verbose;
	struct rf_error err;         /* the failure main prints, once */
	struct run_outcome outcome;  /* for the result event (CMD_RESULT) */
};

enum cmd_flags {
	CMD_CONFIG = (1 << 0), /* loads the config and selects hosts */
	CMD_RESULT = (1 << 1), /* ends with a `result` event */
};

struct cmd_entry {
	const char *name;
	const char *usage;   /* options and arguments after the name */
	const char *summary; /* one line for `relflip --help` */
	const char *help;    /* what `relflip NAME --help` adds: text, options */
	int flags;
	/* The command's options: long ones (val >= 256 or a short letter). */
	const struct option *options;
	const char *shortopts; /* its short options, e.g. "o:" */
	size_t opts_size;      /* sizeof its options struct */
	/* One option; -1 with a message in err (a usage error). */
	int (*option)(void *opts, int c, const char *arg, struct rf_error *err);
	/* The words after the options; -1 with a message in err. */
	int (*args)(void *opts, int argc, char **argv, struct rf_error *err);
	/* Returns the exit code; a failure leaves its error in ctx->err. */
	int (*exec)(struct cmd_ctx *ctx, void *opts);
	/* Free what option() allocated in opts, or NULL. */
	void (*release)(void *opts);
};

extern const struct cmd_entry cmd_deploy_entry;
extern const struct cmd_entry cmd_rollback_entry;
extern const struct cmd_entry cmd_prune_entry;
extern const struct cmd_entry cmd_releases_entry;
extern const struct cmd_entry cmd_check_entry;
extern const struct cmd_entry cmd_unlock_entry;
extern const struct cmd_entry cmd_pack_entry;
extern const struct cmd_entry cmd_status_entry;
extern const struct cmd_entry cmd_log_entry;
extern const struct cmd_entry cmd_exec_entry;
extern const struct cmd_entry cmd_lock_entry;
extern const struct cmd_entry cmd_setup_entry;

/*
 * Load the config and select the hosts named by -H or having a role named
 * by -R (either matches; neither given: every host). Errors are
 * RF_EXIT_USAGE.
 */
int cmd_load_config(struct cmd_ctx *ctx, struct rf_error *err);

/* Free what cmd_load_config() made. */
void cmd_ctx_release(struct cmd_ctx *ctx);

/* What core functions need of the context: the config and the hosts. */
struct selection cmd_selection(const struct cmd_ctx *ctx);

/* "relflip NAME: " + the message, as a usage error (-1). */
int cmd_usage_fail(struct rf_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The args of a command that takes none. */
int cmd_no_args(void *opts, int argc, char **argv, struct rf_error *err);

/*
 * Print a table on stdout (out_primary): nrows rows of ncols cells, row
 * by row, the first row the headings; each column as wide as its widest
 * cell, two spaces apart. Releases the cells and frees the array.
 */
void cmd_print_table(struct buf *cells, size_t nrows, size_t ncols);

/* The version string: "0.2.0 (commit abc123)". */
const char *relflip_version(void);

#endif
