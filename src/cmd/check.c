/*
 * relflip check: a pre-flight doctor. Connects to every host in parallel and
 * reports what a deploy would trip over, changing nothing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cmd.h"
#include "health.h"
#include "hosts.h"
#include "layout.h"
#include "out.h"
#include "xmalloc.h"

enum check_item {
	ITEM_CONNECT,
	ITEM_HOSTKEY,
	ITEM_AUTH,
	ITEM_PATH,
	ITEM_LAYOUT,
	ITEM_DISK,
	ITEM_LOCK,
	ITEM_TOOLS,
	ITEM_HEALTH,
	NITEMS,
};

static const struct {
	const char *name;  /* in JSON events */
	const char *title; /* column header */
	enum rf_exit code; /* exit class when it fails */
	int order;         /* where a deploy would trip: earlier wins */
} items[NITEMS] = {
	[ITEM_CONNECT] = { "connect", "CONNECT", RF_EXIT_CONNECT, 0 },
	[ITEM_HOSTKEY] = { "hostkey", "HOST KEY", RF_EXIT_CONNECT, 0 },
	[ITEM_AUTH] = { "auth", "AUTH", RF_EXIT_CONNECT, 0 },
	[ITEM_PATH] = { "path", "APP PATH", RF_EXIT_UPLOAD, 2 },
	[ITEM_LAYOUT] = { "layout", "CURRENT", RF_EXIT_UPLOAD, 2 },
	[ITEM_DISK] = { "disk", "DISK FREE", RF_EXIT_UPLOAD, 2 },
	[ITEM_LOCK] = { "lock", "LOCK", RF_EXIT_LOCKED, 1 },
	[ITEM_TOOLS] = { "tools", "TOOLS", RF_EXIT_UPLOAD, 2 },
	[ITEM_HEALTH] = { "health", "HEALTH", RF_EXIT_HEALTH, 3 },
};

enum item_state { ITEM_SKIPPED, ITEM_OK, ITEM_WARN, ITEM_FAIL };

struct item_result {
	enum item_state state;
	char cell[48];       /* short text for the table */
	char detail[512];    /* for JSON and the message */
	char hint[512];
};

struct host_check {
	const struct conf_host *host;
	struct item_result r[NITEMS];
	long long started_ms;
	char live[65]; /* the release current points at, or "" */
};

struct check_run {
	const struct conf *conf;
	struct host_check *hosts;
};

/* Below this, a deploy of anything is unlikely to fit. */
#define DISK_FAIL_BYTES (50ULL * 1000 * 1000)
#define DISK_WARN_BYTES (1000ULL * 1000 * 1000)

static void
item_set(struct host_check *hc, enum check_item i, enum item_state s,
	 const char *cell, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
item_set(struct host_check *hc, enum check_item i, enum item_state s,
	 const char *cell, const char *fmt, ...)
{
	va_list ap;

	hc->r[i].state = s;
	snprintf(hc->r[i].cell, sizeof(hc->r[i].cell), "%s", cell);
	va_start(ap, fmt);
	vsnprintf(hc->r[i].detail, sizeof(hc->r[i].detail), fmt, ap);
	va_end(ap);
}

static void
item_hint(struct host_check *hc, enum check_item i, const char *hint)
{
	snprintf(hc->r[i].hint, sizeof(hc->r[i].hint), "%s", hint);
	rf_hint_add_config(hc->r[i].hint, sizeof(hc->r[i].hint));
}

/*
 * Which of connect, host key and auth an error from connecting is about,
 * from what the adapter says went wrong. A failure at a jump host is the
 * server's connect item: the server itself was not reached.
 */
static enum check_item
connect_item(const struct rf_error *err)
{
	if (err->via[0] != '\0')
		return ITEM_CONNECT;
	switch (err->kind) {
	case RF_KIND_HOSTKEY_UNKNOWN:
	case RF_KIND_HOSTKEY_CHANGED:
	case RF_KIND_HOSTKEY_REVOKED:
	case RF_KIND_KNOWN_HOSTS:
		return ITEM_HOSTKEY;
	case RF_KIND_AUTH_REFUSED:
	case RF_KIND_KEY_UNUSABLE:
		return ITEM_AUTH;
	default:
		return ITEM_CONNECT;
	}
}

static void
check_path(struct host_check *hc, const char *app, const char *user,
	   const struct layout_state *st)
{
	char hint[sizeof(hc->r[0].hint)];

	if (!st->app_exists && st->writable) {
		item_set(hc, ITEM_PATH, ITEM_OK, "will be created",
			 "%s does not exist yet; the first deploy will "
			 "create it (%s is writable)",
			 app, st->ancestor);
	} else if (!st->app_exists) {
		item_set(hc, ITEM_PATH, ITEM_FAIL, "cannot be created",
			 "app path %s does not exist and cannot be created: "
			 "%s is not writable",
			 app, st->ancestor);
		snprintf(hint, sizeof(hint),
			 "create it for %s, as root on the server: install -d "
			 "-o %s %s (or fix [app] path)",
			 user, user, app);
		item_hint(hc, ITEM_PATH, hint);
	} else if (!st->app_is_dir) {
		item_set(hc, ITEM_PATH, ITEM_FAIL, "not a directory",
			 "app path %s is not a directory", app);
	} else if (!st->writable) {
		item_set(hc, ITEM_PATH, ITEM_FAIL, "not writable",
			 "app path %s is not writable by the deploy user", app);
		snprintf(hint, sizeof(hint),
			 "give %s the app path, as root on the server: chown "
			 "-R %s %s",
			 user, user, app);
		item_hint(hc, ITEM_PATH, hint);
	} else {
		item_set(hc, ITEM_PATH, ITEM_OK, "writable", "%s is writable",
			 app);
	}
}

static void
check_layout(struct host_check *hc, const struct layout_state *st)
{
	char cell[48];

	switch (st->current) {
	case CURRENT_NONE:
		item_set(hc, ITEM_LAYOUT, ITEM_OK, "none yet",
			 "no current: nothing deployed yet");
		break;
	case CURRENT_LINK:
		if (st->current_id[0] == '\0') {
			item_set(hc, ITEM_LAYOUT, ITEM_FAIL, "outside releases/",
				 "current -> %s, which is not a release under "
				 "releases/: relflip will not switch away from it",
				 st->current_target);
			item_hint(hc, ITEM_LAYOUT,
				  "point current at a release by hand (ln -sfn "
				  "releases/ID current.new && mv -T current.new "
				  "current), or move it aside");
			break;
		}
		snprintf(cell, sizeof(cell), "%.47s", st->current_id);
		item_set(hc, ITEM_LAYOUT, ITEM_OK, cell,
			 "current -> %s (%ld entries in releases/)",
			 st->current_target,
			 st->nreleases < 0 ? 0 : st->nreleases);
		break;
	case CURRENT_DANGLING:
		item_set(hc, ITEM_LAYOUT, ITEM_WARN, "dangling",
			 "current -> %s points to nothing: the site is down "
			 "until the next deploy or rollback",
			 st->current_target);
		break;
	case CURRENT_DIR:
		item_set(hc, ITEM_LAYOUT, ITEM_FAIL, "real directory",
			 "current is a real directory, not a symlink: relflip "
			 "will not replace it");
		item_hint(hc, ITEM_LAYOUT,
			  "move it aside by hand (mv current "
			  "current.before-relflip); relflip never deletes it");
		break;
	case CURRENT_OTHER:
		item_set(hc, ITEM_LAYOUT, ITEM_FAIL, "not a symlink",
			 "current exists but is neither a symlink nor a "
			 "directory");
		break;
	}
}

/* A deploy refuses to start while a shared_files entry is missing. */
static void
check_shared(struct host_check *hc, const struct layout_state *st)
{
	struct buf names = BUF_INIT;
	size_t i;

	if (st->missing_shared.n == 0 || hc->r[ITEM_LAYOUT].state == ITEM_FAIL)
		return;
	for (i = 0; i < st->missing_shared.n; i++)
		buf_addf(&names, "%sshared/%s", i ? ", " : "",
			 st->missing_shared.v[i]);
	item_set(hc, ITEM_LAYOUT, ITEM_FAIL, "shared missing",
		 "shared_files missing on the server: %s", buf_str(&names));
	item_hint(hc, ITEM_LAYOUT,
		  "create them with the app's settings (mode 0640), or run "
		  "relflip setup to list them");
	buf_release(&names);
}

static void
check_lock(struct host_check *hc, const struct conf *conf,
	   const struct layout_state *st)
{
	long long age;

	if (!st->lock.held) {
		item_set(hc, ITEM_LOCK, ITEM_OK, "free", "no deploy holds it");
		return;
	}
	age = st->server_now - (st->lock.renewed ? st->lock.renewed
						 : st->lock.since);
	if (age < 0)
		age = 0;
	item_set(hc, ITEM_LOCK, ITEM_FAIL,
		 (double)age > conf->lock_ttl ? "stale" : "held",
		 "locked by %s%s%s for %s %s, renewed %llds ago%s%s",
		 st->lock.user[0] ? st->lock.user : "someone",
		 st->lock.pid[0] ? " pid " : "", st->lock.pid,
		 st->lock.command[0] ? st->lock.command : "a deploy of",
		 st->lock.revision[0] ? st->lock.revision : "?", age,
		 st->lock.run_url[0] ? ", run " : "", st->lock.run_url);
	if ((double)age > conf->lock_ttl)
		item_hint(hc, ITEM_LOCK,
			  "the lock is older than lock_ttl: if that deploy is "
			  "dead, relflip unlock removes it");
	else
		item_hint(hc, ITEM_LOCK,
			  "wait for that deploy, or set [deploy] lock_wait");
}

static void
check_disk(struct host_check *hc, struct remote *r, const struct conf *conf,
	   const char *path)
{
	struct rf_error err = RF_ERROR_INIT;
	uint64_t avail = 0;
	char size[32];

	if (remote_statvfs(r, path, &avail, &err) != 0) {
		/* Free space is read over SFTP, and so is a full upload. */
		if (err.kind == RF_KIND_SFTP && conf->artifact_url == NULL) {
			item_set(hc, ITEM_DISK, ITEM_FAIL, "no SFTP",
				 "%s: an upload needs it", err.msg);
			item_hint(hc, ITEM_DISK, err.hint);
			return;
		}
		item_set(hc, ITEM_DISK, ITEM_WARN, "unknown",
			 "cannot read free space of %s: %s", path, err.msg);
		return;
	}
	out_format_bytes(size, sizeof(size), avail);
	if (avail < DISK_FAIL_BYTES)
		item_set(hc, ITEM_DISK, ITEM_FAIL, size,
			 "only %s free on %s", size, path);
	else if (avail < DISK_WARN_BYTES)
		item_set(hc, ITEM_DISK, ITEM_WARN, size,
			 "only %s free on %s", size, path);
	else
		item_set(hc, ITEM_DISK, ITEM_OK, size, "%s free on %s", size,
			 path);
}

static void
check_health(struct host_check *hc, struct remote *r, const struct conf *conf,
	     const struct layout_state *st)
{
	struct conf once = *conf;
	struct health_result res;
	struct rf_error err = RF_ERROR_INIT;

	if (!conf->has_health || conf->health_url == NULL) {
		item_set(hc, ITEM_HEALTH, ITEM_SKIPPED, "-",
			 "no [health] url configured");
		return;
	}
	/* One try: check reports, it does not wait for an app to start. */
	once.health_retries = 0;
	once.health_deadline = conf->health_timeout;
	if (health_check_remote(r, &once, st->current_id, &res, &err) != 0) {
		item_set(hc, ITEM_HEALTH, ITEM_FAIL, "error", "%s", err.msg);
		return;
	}
	if (res.ok) {
		item_set(hc, ITEM_HEALTH, ITEM_OK, res.detail, "%s answers %s",
			 conf->health_url, res.detail);
	} else if (st->current != CURRENT_LINK) {
		item_set(hc, ITEM_HEALTH, ITEM_WARN, "not yet",
			 "%s does not answer (%s); no release is live yet",
			 conf->health_url, res.detail);
	} else {
		item_set(hc, ITEM_HEALTH, ITEM_FAIL, "failing",
			 "%s: %s", conf->health_url, res.detail);
		if (res.hint[0] != '\0')
			item_hint(hc, ITEM_HEALTH, res.hint);
	}
}

static void
check_host(void *arg, size_t index)
{
	struct check_run *run = arg;
	struct host_check *hc = &run->hosts[index];
	const struct conf *conf = run->conf;
	struct remote *r = NULL;
	struct ssh_info info;
	struct rf_error err = RF_ERROR_INIT;
	struct layout_state st;
	struct probe_asks asks = { 0 };
	char cell[48];

	if (host_connect(conf, hc->host, &r, &info, &err) != 0) {
		enum check_item it = connect_item(&err);
		enum check_item i;

		for (i = ITEM_CONNECT; i < it; i++)
			item_set(hc, i, ITEM_OK, "ok", "ok");
		item_set(hc, it, ITEM_FAIL, "FAILED", "%s", err.msg);
		item_hint(hc, it, err.hint);
		return;
	}
	snprintf(cell, sizeof(cell), "%.0f ms", info.connect_ms);
	item_set(hc, ITEM_CONNECT, ITEM_OK, cell, "%s in %.0f ms%s%s",
		 info.address, info.connect_ms,
		 info.njumps > 0 ? " through jump host " : "",
		 info.njumps > 0 ? info.jumps[info.njumps - 1].name : "");
	item_set(hc, ITEM_HOSTKEY, ITEM_OK, "ok", "%s %s", info.hostkey_type,
		 info.fingerprint);
	item_set(hc, ITEM_AUTH, ITEM_OK, info.auth, "%s as %s", info.auth,
		 info.user);

	asks.shared_files = &conf->shared_files;
	if (layout_probe(r, conf->app_path, LAYOUT_TOOLS, &asks, &st, &err) !=
	    0) {
		item_set(hc, ITEM_PATH, ITEM_FAIL, "probe failed", "%s",
			 err.msg);
		remote_close(r);
		return;
	}
	if (st.current == CURRENT_LINK)
		snprintf(hc->live, sizeof(hc->live), "%s", st.current_id);
	check_path(hc, conf->app_path, info.user, &st);
	check_layout(hc, &st);
	check_shared(hc, &st);
	check_disk(hc, r, conf, st.app_exists ? conf->app_path : st.ancestor);
	check_lock(hc, conf, &st);
	if (st.missing_tools[0] != '\0') {
		item_set(hc, ITEM_TOOLS, ITEM_FAIL, "missing",
			 "the server lacks: %s", st.missing_tools);
		item_hint(hc, ITEM_TOOLS,
			  "install coreutils, tar and findutils on the server");
	} else {
		item_set(
		    hc, ITEM_TOOLS, ITEM_OK, "ok",
		    "sh tar sha256sum mv -T ln readlink find timeout; "
		    "steps run in %s",
		    strcmp(st.agent, "perl") == 0
			? "the Perl agent"
			: "the shell's agent (no perl here, or "
			  "RELFLIP_AGENT=sh: three processes more a step)");
	}
	check_health(hc, r, conf, &st);
	layout_state_release(&st);
	remote_close(r);
}

static const char *
state_name(enum item_state s)
{
	switch (s) {
	case ITEM_OK:
		return "ok";
	case ITEM_WARN:
		return "warning";
	case ITEM_FAIL:
		return "failed";
	default:
		return "skipped";
	}
}

static void
trim_right(struct buf *b)
{
	while (b->len > 0 && b->buf[b->len - 1] == ' ')
		b->buf[--b->len] = '\0';
}

static void
print_table(const struct check_run *run, size_t n)
{
	size_t width[NITEMS + 1], i, j;
	struct buf line = BUF_INIT;

	width[0] = strlen("HOST");
	for (j = 0; j < n; j++) {
		if (strlen(run->hosts[j].host->name) > width[0])
			width[0] = strlen(run->hosts[j].host->name);
	}
	for (i = 0; i < NITEMS; i++) {
		width[i + 1] = strlen(items[i].title);
		for (j = 0; j < n; j++) {
			size_t w = strlen(run->hosts[j].r[i].cell);

			if (run->hosts[j].r[i].state == ITEM_SKIPPED)
				w = 1;
			if (w > width[i + 1])
				width[i + 1] = w;
		}
	}
	buf_addf(&line, "%-*s", (int)width[0], "HOST");
	for (i = 0; i < NITEMS; i++)
		buf_addf(&line, "  %-*s", (int)width[i + 1], items[i].title);
	trim_right(&line);
	out_text("%s", buf_str(&line));
	for (j = 0; j < n; j++) {
		buf_reset(&line);
		buf_addf(&line, "%-*s", (int)width[0],
			 run->hosts[j].host->name);
		for (i = 0; i < NITEMS; i++) {
			const struct item_result *r = &run->hosts[j].r[i];

			buf_addf(&line, "  %-*s", (int)width[i + 1],
				 r->state == ITEM_SKIPPED ? "-" : r->cell);
		}
		trim_right(&line);
		out_text("%s", buf_str(&line));
	}
	buf_release(&line);
}

/*
 * The public URL, once, from here. With expect_revision it must serve
 * the release live on the hosts; when they disagree, or none is live, only
 * its status is judged, and the line says so.
 */
static void
check_public(const struct conf *conf, const struct check_run *run, size_t n)
{
	struct conf once = *conf;
	struct health_result res;
	struct rf_error err = RF_ERROR_INIT;
	const char *live = NULL;
	size_t j;

	for (j = 0; j < n; j++) {
		const char *id = run->hosts[j].live;

		if (id[0] == '\0' || (live != NULL && strcmp(id, live) != 0)) {
			live = NULL;
			break;
		}
		live = id;
	}
	once.health_retries = 0;
	once.health_deadline = once.health_timeout;
	if (live == NULL)
		once.expect_revision = 0;
	if (health_check_public(&once, live, &res, &err) == 0 && res.ok)
		out_text("public_url %s answers %s%s", conf->public_url,
			 res.detail,
			 conf->expect_revision && live == NULL
			     ? " (no single live release to look for in the "
			       "body)"
			     : "");
	else
		out_warning(NULL, "check", "public_url %s does not answer: %s",
			    conf->public_url,
			    err.msg[0] ? err.msg : res.detail);
}

/*
 * A restart that reloads (SIGHUP, SIGUSR2, `systemctl reload`) leaves the
 * old workers answering while new ones start, and a master that resolved
 * current when it started may keep the old code for good: a check of the
 * status alone then passes on the old release. Only a body that must
 * name the new release tells them apart (docs/getting-started.md).
 */
static void
check_reload(const struct conf *conf)
{
	static const char *const words[] = { "reload", "HUP", "USR2" };
	size_t i, k;

	if (!conf->has_health || conf->expect_revision)
		return;
	for (i = 0; i < conf->nservices; i++) {
		const char *cmd = conf->services[i].restart;

		for (k = 0; k < sizeof(words) / sizeof(words[0]); k++)
			if (strstr(cmd, words[k]) != NULL)
				break;
		if (k == sizeof(words) / sizeof(words[0]))
			continue;
		out_warning(NULL, "check",
			    "[service \"%s\"] restart reloads (%s) and "
			    "[health] expect_revision is off: the old process "
			    "can pass the health check. Set expect_revision = "
			    "yes and put the release id in the health body",
			    conf->services[i].name, words[k]);
	}
}

static int
check_exec(struct cmd_ctx *ctx, void *opts)
{
	struct rf_error err = RF_ERROR_INIT;
	struct check_run run;
	long long started = out_now_ms();
	int worst_order = 99, code = 0;
	size_t nready = 0, j;
	enum check_item i;

	(void)opts;
	{
		struct out_field f[3] = {
			OF_STR("command", "check"),
			OF_INT("hosts", ctx->nhosts),
			OF_STR("app_path", ctx->conf->app_path),
		};
		out_event("start", NULL, NULL, f, 3);
	}
	out_text("relflip %s · check · %zu host%s · %s", relflip_version(),
		 ctx->nhosts, ctx->nhosts == 1 ? "" : "s",
		 ctx->conf->app_path);

	run.conf = ctx->conf;
	run.hosts = xcalloc(ctx->nhosts, sizeof(*run.hosts));
	for (j = 0; j < ctx->nhosts; j++)
		run.hosts[j].host = ctx->hosts[j];
	hosts_run(ctx->nhosts, ctx->conf->max_parallel, check_host, &run);

	for (j = 0; j < ctx->nhosts; j++) {
		struct host_check *hc = &run.hosts[j];
		int failed = 0;

		for (i = 0; i < NITEMS; i++) {
			struct out_field f[3] = {
				OF_STR("item", items[i].name),
				OF_STR("result", state_name(hc->r[i].state)),
				OF_STR("detail", hc->r[i].detail),
			};

			if (hc->r[i].state == ITEM_SKIPPED &&
			    hc->r[i].detail[0] == '\0')
				continue;
			f[0].s = items[i].name;
			out_event("check", hc->host->name, NULL, f, 3);
		}
		for (i = 0; i < NITEMS; i++) {
			if (hc->r[i].state != ITEM_FAIL)
				continue;
			failed = 1;
			if (items[i].order < worst_order) {
				worst_order = items[i].order;
				code = items[i].code;
			}
		}
		nready += !failed;
	}
	print_table(&run, ctx->nhosts);

	for (j = 0; j < ctx->nhosts; j++) {
		struct host_check *hc = &run.hosts[j];

		for (i = 0; i < NITEMS; i++) {
			if (hc->r[i].state == ITEM_WARN) {
				out_warning(hc->host->name, "check", "%s",
					    hc->r[i].detail);
			} else if (hc->r[i].state == ITEM_FAIL) {
				rf_error_clear(&err);
				rf_error_set(&err, items[i].code, "check", "%s",
					     hc->r[i].detail);
				if (hc->r[i].hint[0] != '\0')
					rf_error_hint(&err, "%s",
						      hc->r[i].hint);
				rf_error_host(&err, hc->host->name);
				out_error(&err);
			}
		}
	}

	if (ctx->conf->has_health && ctx->conf->public_url != NULL)
		check_public(ctx->conf, &run, ctx->nhosts);
	check_reload(ctx->conf);

	if (code == 0)
		out_text("ready: %zu of %zu host%s pass", nready, ctx->nhosts,
			 ctx->nhosts == 1 ? "" : "s");
	else
		out_text("not ready: %zu of %zu host%s pass (exit %d)", nready,
			 ctx->nhosts, ctx->nhosts == 1 ? "" : "s", code);
	fleet_outcome(&ctx->outcome, code, NULL, NULL, started);
	free(run.hosts);
	return code;
}

const struct cmd_entry cmd_check_entry = {
	.name = "check",
	.usage = "",
	.summary = "pre-flight doctor: connection, host key, auth, layout, "
		   "permissions, free disk, lock, server tools, health URL",
	.help = "Checks, per host, in parallel: connection, host key, "
		"authentication,\n"
		"the app path (exists and writable, or can be created), the "
		"layout\n"
		"(current a valid symlink?), free disk, the deploy lock, the "
		"tools a\n"
		"deploy runs on the server, and the health URL; then "
		"[health] public_url\n"
		"once from here, looking for the live release's id in the body "
		"when\n"
		"expect_revision is set. Changes nothing.\n"
		"\n"
		"Exit: 0 when every host passes; else the code of the first "
		"thing a\n"
		"deploy would trip over: 4 connection, host key or login; 5 "
		"the lock is\n"
		"held; 6 the app path, current, free disk or a tool; 8 "
		"[health] url\n"
		"fails where a release is live: the live app is unhealthy now "
		"(check\n"
		"rolls nothing back). A public_url that does not answer is a "
		"warning,\n"
		"as is a restart that reloads (reload, HUP, USR2) while "
		"expect_revision\n"
		"is off.\n"
		"\n"
		"Options:\n"
		"  -h, --help  this help\n",
	.flags = CMD_CONFIG | CMD_RESULT,
	.args = cmd_no_args,
	.exec = check_exec,
};
