#ifndef RELFLIP_CMD_H
#define RELFLIP_CMD_H

#include "conf.h"
#include "error.h"

/*
 * What main.c hands each command: the global options and, for commands
 * that need it, the loaded config with the -H/-R selection applied.
 */
struct cmd_ctx {
	const char *config_path; /* -c, $RELFLIP_CONFIG, or ./relflip.ini */
	struct conf *conf;       /* set by cmd_load_config() */
	struct conf_host **hosts; /* the selected hosts, in config order */
	size_t nhosts;
	struct strlist only_hosts; /* -H, repeatable */
	struct strlist only_roles; /* -R, repeatable */
	int json;
	int quiet;
	int verbose;
};

enum cmd_flags {
	CMD_NOT_BUILT = (1 << 0), /* says so and exits 2 */
};

/*
 * Load the config (after the command parsed its options, so --help needs
 * none) and select the hosts named by -H or having a role named by -R
 * (either matches; neither given: every host). Errors are RF_EXIT_USAGE.
 */
int cmd_load_config(struct cmd_ctx *ctx, struct rf_error *err);

/* Free what cmd_load_config() made. */
void cmd_ctx_release(struct cmd_ctx *ctx);

struct cmd_entry {
	const char *name;
	const char *usage;   /* options after the command name */
	const char *summary; /* one line for `relflip --help` */
	int flags;
	/* argv[0] is the command name; returns the exit code. */
	int (*exec)(struct cmd_ctx *ctx, int argc, char **argv);
};

extern const struct cmd_entry cmd_deploy_entry;
extern const struct cmd_entry cmd_rollback_entry;
extern const struct cmd_entry cmd_prune_entry;
extern const struct cmd_entry cmd_releases_entry;
extern const struct cmd_entry cmd_check_entry;
extern const struct cmd_entry cmd_unlock_entry;
extern const struct cmd_entry cmd_pack_entry;

/*
 * Print "usage: relflip NAME USAGE" and the option lines to stdout (for
 * --help, returns 0) or stderr (for a usage error, returns 2).
 */
int cmd_usage(const struct cmd_entry *entry, const char *options_help,
	      int is_error);

/* Report a usage error for a command ("relflip deploy: ...") and return 2. */
int cmd_usage_error(const struct cmd_entry *entry, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The version string: "0.1.0 (commit abc123)". */
const char *relflip_version(void);

#endif
