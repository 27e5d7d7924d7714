#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cmd.h"
#include "hosts.h"
#include "notify.h"
#include "out.h"
#include "xmalloc.h"

int
cmd_usage_fail(struct rf_error *err, const char *fmt, ...)
{
	char msg[sizeof(err->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return rf_error_set(err, RF_EXIT_USAGE, NULL, "%s", msg);
}

int
cmd_no_args(void *opts, int argc, char **argv, struct rf_error *err)
{
	(void)opts;
	if (argc > 0)
		return cmd_usage_fail(err, "unexpected argument '%s'", argv[0]);
	return 0;
}

struct selection
cmd_selection(const struct cmd_ctx *ctx)
{
	struct selection sel = {
		.conf = ctx->conf,
		.hosts = ctx->hosts,
		.n = ctx->nhosts,
		.config_path = ctx->config_path,
	};

	return sel;
}

static int
selected(const struct cmd_ctx *ctx, const struct conf_host *h)
{
	size_t i;

	if (ctx->only_hosts.n == 0 && ctx->only_roles.n == 0)
		return 1;
	for (i = 0; i < ctx->only_hosts.n; i++) {
		if (strcmp(ctx->only_hosts.v[i], h->name) == 0)
			return 1;
	}
	for (i = 0; i < ctx->only_roles.n; i++) {
		if (conf_host_has_role(h, ctx->only_roles.v[i]))
			return 1;
	}
	return 0;
}

static void
host_names(const struct conf *conf, struct buf *b)
{
	size_t i;

	for (i = 0; i < conf->nhosts; i++)
		buf_addf(b, "%s%s", i ? " " : "", conf->hosts[i].name);
}

/*
 * Key text, passphrases and the webhook's URL must never reach any output:
 * each line of them is registered with out.c, which redacts it wherever it
 * would appear.
 */
static void
register_secrets(const struct conf *conf)
{
	const char *names[2] = { conf->identity_env, "RELFLIP_KEY_PASSPHRASE" };
	size_t i;

	for (i = 0; i < 2; i++) {
		const char *v = names[i] ? getenv(names[i]) : NULL;
		char *copy, *line, *save = NULL;

		if (v == NULL || *v == '\0')
			continue;
		out_secret(v);
		copy = xstrdup(v);
		for (line = strtok_r(copy, "\r\n", &save); line != NULL;
		     line = strtok_r(NULL, "\r\n", &save)) {
			/* The armour lines are no secret; the body is. */
			if (strncmp(line, "-----", 5) != 0)
				out_secret(line);
		}
		explicit_bzero(copy, strlen(v));
		free(copy);
	}
	notify_secrets(conf);
}

int
cmd_load_config(struct cmd_ctx *ctx, struct rf_error *err)
{
	struct conf *conf = xcalloc(1, sizeof(*conf));
	struct buf names = BUF_INIT;
	size_t i, j;
	int found;

	if (conf_load_file(conf, ctx->config_path, err) != 0) {
		free(conf);
		return -1;
	}
	ctx->conf = conf;
	register_secrets(conf);
	host_names(conf, &names);
	for (i = 0; i < ctx->only_hosts.n; i++) {
		found = 0;
		for (j = 0; j < conf->nhosts; j++)
			found |= strcmp(conf->hosts[j].name,
					ctx->only_hosts.v[i]) == 0;
		if (!found) {
			rf_error_set(err, RF_EXIT_USAGE, NULL,
				     "-H %s: no such host in %s",
				     ctx->only_hosts.v[i], conf->file);
			rf_error_hint(err, "hosts: %s", buf_str(&names));
			buf_release(&names);
			return -1;
		}
	}
	for (i = 0; i < ctx->only_roles.n; i++) {
		found = 0;
		for (j = 0; j < conf->nhosts; j++)
			found |= conf_host_has_role(&conf->hosts[j],
						    ctx->only_roles.v[i]);
		if (!found) {
			buf_release(&names);
			return rf_error_set(err, RF_EXIT_USAGE, NULL,
					    "-R %s: no host in %s has that role",
					    ctx->only_roles.v[i], conf->file);
		}
	}
	buf_release(&names);
	ctx->hosts = xcalloc(conf->nhosts, sizeof(*ctx->hosts));
	ctx->nhosts = 0;
	for (i = 0; i < conf->nhosts; i++) {
		if (selected(ctx, &conf->hosts[i]))
			ctx->hosts[ctx->nhosts++] = &conf->hosts[i];
	}
	/* ssh_config and jump hosts are config too: their errors come now. */
	return hosts_routes_check(conf, ctx->hosts, ctx->nhosts, err);
}

void
cmd_ctx_release(struct cmd_ctx *ctx)
{
	if (ctx->conf != NULL) {
		conf_release(ctx->conf);
		free(ctx->conf);
	}
	free(ctx->hosts);
	strlist_free(&ctx->only_hosts);
	strlist_free(&ctx->only_roles);
	ctx->conf = NULL;
	ctx->hosts = NULL;
}

void
cmd_print_table(struct buf *cells, size_t nrows, size_t ncols)
{
	struct buf line = BUF_INIT;
	size_t *width = xcalloc(ncols ? ncols : 1, sizeof(*width));
	size_t i, c;

	for (i = 0; i < nrows * ncols; i++) {
		if (cells[i].len > width[i % ncols])
			width[i % ncols] = cells[i].len;
	}
	for (i = 0; i < nrows; i++) {
		buf_reset(&line);
		for (c = 0; c < ncols; c++) {
			if (c + 1 < ncols)
				buf_addf(&line, "%-*s  ", (int)width[c],
					 buf_str(&cells[i * ncols + c]));
			else
				buf_adds(&line, buf_str(&cells[i * ncols + c]));
		}
		/* No trailing blanks where the last cells are empty. */
		while (line.len > 0 && line.buf[line.len - 1] == ' ')
			line.buf[--line.len] = '\0';
		out_primary("%s", buf_str(&line));
	}
	for (i = 0; i < nrows * ncols; i++)
		buf_release(&cells[i]);
	free(cells);
	free(width);
	buf_release(&line);
}
