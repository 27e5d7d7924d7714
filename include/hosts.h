#ifndef RELFLIP_HOSTS_H
#define RELFLIP_HOSTS_H

#include <stddef.h>

#include "conf.h"
#include "remote.h"
#include "ssh-config.h"

/* Work over many hosts: connections and a bounded pool of threads. */

/*
 * Connect to a configured host: its route (host_route_resolve, with the
 * ssh config that [ssh] config names) and then remote_ssh_connect. The
 * adapter says what went wrong; here that becomes exit 4 and stage
 * "connect" (130 when interrupted; 2 for an ssh config error). Under -v,
 * logs the ssh config lines applied, the jump chain, and per host (and
 * new jump host) the key exchange, host key and authentication used.
 */
int host_connect(const struct conf *conf, const struct conf_host *host,
		 struct remote **out, struct ssh_info *info,
		 struct rf_error *err);

/*
 * Where and how to reach a host. relflip's own keys win where both are
 * set: [host] port, then [ssh] port, user, identity or identity_env and
 * known_hosts, when the file set them; otherwise what ssh_config says for
 * the host's address (HostName, User, Port, IdentityFile,
 * UserKnownHostsFile), then the defaults. The jump chain is [host]
 * proxy_jump, else [ssh] proxy_jump, else ssh_config's ProxyJump ("none"
 * anywhere: direct). Each jump host is looked up in ssh_config too: its
 * user is the one in proxy_jump, else ssh_config's, else [ssh] user; its
 * port the one in proxy_jump, else ssh_config's, else 22; its key and
 * known_hosts as for the servers. A jump host's own ProxyJump is not
 * followed: list the whole chain.
 */
struct host_route {
	struct ssh_options opts;
	struct ssh_options jumps[SSH_JUMPS_MAX];
	struct strlist strings; /* owns every string the options point to */
	struct strlist ids[SSH_JUMPS_MAX + 1]; /* identities: server, hops */
	struct strlist log; /* for -v: what was applied, the chain */
};

/* Resolve host's route; cfg may be NULL. Errors are config errors (2). */
int host_route_resolve(const struct conf *conf, const struct conf_host *host,
		       const struct ssh_config *cfg, struct host_route *route,
		       struct rf_error *err);
void host_route_release(struct host_route *route);

/*
 * Read the ssh config and resolve every host's route, changing nothing:
 * a config error (exit 2, naming the ssh config's file and line, or the
 * proxy jump) before any host is connected to.
 */
int hosts_routes_check(const struct conf *conf, struct conf_host **hosts,
		       size_t n, struct rf_error *err);

typedef void (*host_work_fn)(void *arg, size_t index);

/*
 * Call fn(arg, i) for i in 0..n-1, at most max_parallel at once, each in
 * its own thread; returns when all are done. Each index is handled by
 * exactly one call, so per-host state needs no locking.
 */
void hosts_run(size_t n, int max_parallel, host_work_fn fn, void *arg);

#endif
