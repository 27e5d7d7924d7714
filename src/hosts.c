#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "hosts.h"
#include "out.h"
#include "xmalloc.h"

/*
 * The home directory, for ~ in the ssh config; NULL when $HOME is unset
 * (getpwuid is not thread-safe, and hosts connect in threads).
 */
static const char *
home_dir(void)
{
	const char *home = getenv("HOME");

	return home != NULL && *home != '\0' ? home : NULL;
}

/* Keep a copy of s in the route; the pointer lives as long as it. */
static const char *
keep(struct host_route *route, const char *s)
{
	if (s == NULL)
		return NULL;
	strlist_add(&route->strings, s);
	return route->strings.v[route->strings.n - 1];
}

static void logf_route(struct host_route *route, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
logf_route(struct host_route *route, const char *fmt, ...)
{
	char line[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	strlist_add(&route->log, line);
}

/* What ssh_config said for name, into the log. */
static void
log_config(struct host_route *route, const char *who,
	   const struct ssh_config_host *sc)
{
	size_t i;

	for (i = 0; i < sc->applied.n; i++)
		logf_route(route, "%s: ssh config %s", who, sc->applied.v[i]);
	for (i = 0; i < sc->notes.n; i++)
		logf_route(route, "%s: ssh config %s", who, sc->notes.v[i]);
}

/*
 * Expand an ssh_config path (IdentityFile, UserKnownHostsFile) for the
 * final hop o; NULL and err (a config error) for a token it cannot.
 */
static const char *
keep_path(struct host_route *route, const struct ssh_options *o,
	  const char *name, const char *path, const char *directive,
	  struct rf_error *err)
{
	struct ssh_config_tokens t = {
		.home = home_dir(),
		.local_user = getenv("USER") != NULL ? getenv("USER") : "",
		.hostname = o->address,
		.name = name,
		.port = o->port,
		.user = o->user,
	};
	const char *why, *kept;
	char *v;

	v = ssh_config_expand_path(path, &t, &why);
	if (v == NULL) {
		rf_error_set(err, RF_EXIT_USAGE, NULL,
			     "ssh config: %s %s for %s %s", directive, path,
			     name, why);
		rf_error_hint(err, "set the file in relflip's [ssh] section, "
				   "which wins over the ssh config");
		return NULL;
	}
	kept = keep(route, v);
	free(v);
	return kept;
}

/* Key and known_hosts of hop o from ssh_config, unless relflip set them. */
static int
apply_keys(const struct conf *conf, struct host_route *route,
	   struct ssh_options *o, struct strlist *ids, const char *who,
	   const char *name, const struct ssh_config_host *sc,
	   struct rf_error *err)
{
	const char *p;
	size_t i;

	o->identity = conf->identity;
	o->identity_env = conf->identity_env;
	o->known_hosts = conf->known_hosts;
	o->connect_timeout = conf->connect_timeout;
	if (conf->identity_set && sc->identities.n > 0)
		logf_route(
		    route,
		    "%s: [ssh] %s wins over the ssh config's "
		    "IdentityFile",
		    who, conf->identity != NULL ? "identity" : "identity_env");
	if (!conf->identity_set) {
		for (i = 0; i < sc->identities.n; i++) {
			p = keep_path(route, o, name, sc->identities.v[i],
				      "IdentityFile", err);
			if (p == NULL)
				return -1;
			strlist_add(ids, p);
		}
		if (ids->n > 0) {
			o->identities = (const char *const *)ids->v;
			o->nidentities = ids->n;
		}
	}
	if (sc->known_hosts.n > 0 && conf->known_hosts_set)
		logf_route(route,
			   "%s: [ssh] known_hosts wins over the ssh config's "
			   "UserKnownHostsFile",
			   who);
	if (sc->known_hosts.n > 0 && !conf->known_hosts_set) {
		if (sc->known_hosts.n > 1)
			logf_route(route,
				   "%s: ssh config UserKnownHostsFile: only "
				   "the first file, %s, is read",
				   who, sc->known_hosts.v[0]);
		o->known_hosts = keep_path(route, o, name, sc->known_hosts.v[0],
					   "UserKnownHostsFile", err);
		if (o->known_hosts == NULL)
			return -1;
	}
	return 0;
}

/* The jump hops of route from the spec: each looked up in ssh_config. */
static int
resolve_jumps(const struct conf *conf, const struct conf_host *host,
	      const struct ssh_config *cfg, const char *spec,
	      const char *source, struct host_route *route,
	      struct rf_error *err)
{
	struct ssh_jump_spec *hops = NULL;
	struct ssh_config_host sj;
	struct ssh_options *o;
	struct buf chain = BUF_INIT;
	const char *why;
	char who[160];
	size_t n = 0, i;
	int r = -1;

	if (ssh_jump_parse(spec, &hops, &n, &why) != 0) {
		rf_error_set(err, RF_EXIT_USAGE, NULL, "%s: proxy jump '%s' %s",
			     source, spec, why);
		return rf_error_hint(err, "write jump hosts as "
					  "[user@]host[:port], several "
					  "separated by commas");
	}
	if (n > SSH_JUMPS_MAX) {
		rf_error_set(err, RF_EXIT_USAGE, NULL,
			     "%s: %zu jump hosts; relflip follows at most %d",
			     source, n, SSH_JUMPS_MAX);
		goto out;
	}
	for (i = 0; i < n; i++) {
		o = &route->jumps[i];
		memset(&sj, 0, sizeof(sj));
		if (cfg != NULL)
			ssh_config_resolve(cfg, hops[i].host, &sj);
		snprintf(who, sizeof(who), "%s: jump host %s", host->name,
			 hops[i].host);
		log_config(route, who, &sj);
		if (sj.proxy_jump != NULL)
			logf_route(route,
				   "%s: its own ProxyJump (%s) is not "
				   "followed: list the whole chain",
				   who, sj.proxy_jump);
		o->name = keep(route, hops[i].host);
		o->address = keep(route, sj.hostname != NULL ? sj.hostname
							     : hops[i].host);
		o->port = hops[i].port > 0 ? hops[i].port
			  : sj.port > 0    ? sj.port
					   : 22;
		o->user = keep(route, hops[i].user != NULL ? hops[i].user
				      : sj.user != NULL    ? sj.user
							   : conf->ssh_user);
		r = apply_keys(conf, route, o, &route->ids[i + 1], who,
			       hops[i].host, &sj, err);
		ssh_config_host_release(&sj);
		if (r != 0)
			goto out;
		buf_addf(&chain, "%s (%s@%s:%d) -> ", o->name, o->user,
			 o->address, o->port);
	}
	route->opts.jumps = route->jumps;
	route->opts.njumps = n;
	if (n > 0)
		logf_route(route, "%s: jump chain (%s): %s%s (%s@%s:%d)",
			   host->name, source, buf_str(&chain), host->name,
			   route->opts.user, route->opts.address,
			   route->opts.port);
	r = 0;
out:
	buf_release(&chain);
	ssh_jump_free(hops, n);
	return r;
}

int
host_route_resolve(const struct conf *conf, const struct conf_host *host,
		   const struct ssh_config *cfg, struct host_route *route,
		   struct rf_error *err)
{
	struct ssh_config_host sc;
	struct ssh_options *o = &route->opts;
	const char *spec, *source;
	char who[80];
	int r;

	memset(route, 0, sizeof(*route));
	memset(&sc, 0, sizeof(sc));
	if (cfg != NULL)
		ssh_config_resolve(cfg, host->address, &sc);
	snprintf(who, sizeof(who), "%s", host->name);
	log_config(route, who, &sc);

	o->name = host->name;
	o->address =
	    keep(route, sc.hostname != NULL ? sc.hostname : host->address);
	if (host->port_set || conf->ssh_port_set || sc.port == 0)
		o->port = host->port;
	else
		o->port = sc.port;
	if (sc.port != 0 && o->port != sc.port)
		logf_route(
		    route, "%s: %s port %d wins over the ssh config's Port %d",
		    who, host->port_set ? "[host]" : "[ssh]", o->port, sc.port);
	if (conf->ssh_user_set || sc.user == NULL)
		o->user = keep(route, host->user != NULL ? host->user
							 : conf->ssh_user);
	else
		o->user = keep(route, sc.user);
	if (sc.user != NULL && conf->ssh_user_set &&
	    strcmp(sc.user, o->user) != 0)
		logf_route(route,
			   "%s: [ssh] user %s wins over the ssh config's User "
			   "%s",
			   who, o->user, sc.user);
	r = apply_keys(conf, route, o, &route->ids[0], who, host->address, &sc,
		       err);

	if (r == 0) {
		if (host->proxy_jump != NULL) {
			spec = host->proxy_jump;
			source = "[host] proxy_jump";
		} else if (conf->proxy_jump != NULL) {
			spec = conf->proxy_jump;
			source = "[ssh] proxy_jump";
		} else {
			spec = sc.proxy_jump;
			source = "ssh config ProxyJump";
		}
		if (spec != NULL)
			r = resolve_jumps(conf, host, cfg, spec, source, route,
					  err);
	}
	ssh_config_host_release(&sc);
	if (r != 0)
		host_route_release(route);
	return r;
}

void
host_route_release(struct host_route *route)
{
	size_t i;

	strlist_free(&route->strings);
	for (i = 0; i < SSH_JUMPS_MAX + 1; i++)
		strlist_free(&route->ids[i]);
	strlist_free(&route->log);
	memset(route, 0, sizeof(*route));
}

/* The ssh config [ssh] config names: none, a file, or ~/.ssh/config. */
static int
load_ssh_config(const struct conf *conf, struct ssh_config **out,
		struct rf_error *err)
{
	const char *home = home_dir();
	char *path;
	int r;

	*out = NULL;
	if (conf->ssh_config != NULL &&
	    strcasecmp(conf->ssh_config, "none") == 0)
		return 0;
	if (conf->ssh_config != NULL)
		return ssh_config_load(conf->ssh_config, 1, home, out, err);
	if (home == NULL)
		return 0;
	path = xasprintf("%s/.ssh/config", home);
	r = ssh_config_load(path, 0, home, out, err);
	free(path);
	return r;
}

int
hosts_routes_check(const struct conf *conf, struct conf_host **hosts, size_t n,
		   struct rf_error *err)
{
	struct ssh_config *cfg = NULL;
	struct host_route route;
	size_t i;
	int r = 0;

	if (load_ssh_config(conf, &cfg, err) != 0)
		return -1;
	for (i = 0; i < n && r == 0; i++) {
		r = host_route_resolve(conf, hosts[i], cfg, &route, err);
		if (r == 0)
			host_route_release(&route);
		else
			rf_error_host(err, hosts[i]->name);
	}
	ssh_config_free(cfg);
	return r;
}

/* Under -v: what connecting used, per jump host and for the server. */
static void
log_connected(const struct conf_host *host, const struct ssh_info *info)
{
	const struct ssh_hop_info *h;
	size_t i;

	for (i = 0; i < info->njumps; i++) {
		h = &info->jumps[i];
		if (h->shared)
			out_debug("%s: jump host %s (%s): shared connection",
				  host->name, h->name, h->address);
		else
			out_debug("%s: jump host %s (%s): connected in %.0f "
				  "ms: kex %s, host key %s %s, auth %s",
				  host->name, h->name, h->address,
				  h->connect_ms, h->kex, h->hostkey_type,
				  h->fingerprint, h->auth);
	}
	out_debug("%s: %s@%s connected in %.0f ms: kex %s, host key %s %s, "
		  "cipher %s, mac %s, auth %s (%s)",
		  host->name, info->user, info->address, info->connect_ms,
		  info->kex, info->hostkey_type, info->fingerprint,
		  info->cipher, info->mac, info->auth, info->library);
}

int
host_connect(const struct conf *conf, const struct conf_host *host,
	     struct remote **out, struct ssh_info *info, struct rf_error *err)
{
	struct ssh_config *cfg = NULL;
	struct host_route route;
	size_t i;
	int rc;

	memset(info, 0, sizeof(*info));
	*out = NULL;
	if (load_ssh_config(conf, &cfg, err) != 0 ||
	    host_route_resolve(conf, host, cfg, &route, err) != 0) {
		ssh_config_free(cfg);
		rf_error_host(err, host->name);
		return -1;
	}
	ssh_config_free(cfg);
	for (i = 0; i < route.log.n; i++)
		out_debug("%s", route.log.v[i]);

	rc = remote_ssh_connect(&route.opts, out, info, err);
	if (rc != 0) {
		/* What went wrong, into the contract's terms. */
		if (err->kind == RF_KIND_INTERRUPTED) {
			err->code = RF_EXIT_INTERRUPTED;
			err->stage = NULL;
		} else {
			err->code = RF_EXIT_CONNECT;
			err->stage = "connect";
		}
		out_debug("%s: connect failed: %s%s%s", host->name,
			  rf_kind_name(err->kind),
			  err->via[0] != '\0' ? " at jump host " : "",
			  err->via);
		rf_error_host(err, host->name);
	} else {
		log_connected(host, info);
	}
	host_route_release(&route);
	return rc;
}

struct pool {
	pthread_mutex_t lock;
	size_t next;
	size_t n;
	host_work_fn fn;
	void *arg;
};

static void *
pool_worker(void *p)
{
	struct pool *pool = p;
	size_t i;

	for (;;) {
		pthread_mutex_lock(&pool->lock);
		i = pool->next++;
		pthread_mutex_unlock(&pool->lock);
		if (i >= pool->n)
			return NULL;
		pool->fn(pool->arg, i);
	}
}

void
hosts_run(size_t n, int max_parallel, host_work_fn fn, void *arg)
{
	struct pool pool = { PTHREAD_MUTEX_INITIALIZER, 0, n, fn, arg };
	size_t nthreads, i, started = 0;
	pthread_t *threads;

	if (n == 0)
		return;
	if (n == 1 || max_parallel <= 1) {
		for (i = 0; i < n; i++)
			fn(arg, i);
		return;
	}
	nthreads = (size_t)max_parallel < n ? (size_t)max_parallel : n;
	threads = xcalloc(nthreads, sizeof(*threads));
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&threads[i], NULL, pool_worker, &pool) != 0)
			break;
		started++;
	}
	/* Could not start a thread: this one works through what is left. */
	if (started == 0)
		pool_worker(&pool);
	for (i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(threads);
}
