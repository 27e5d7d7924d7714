#ifndef RELFLIP_HOSTS_H
#define RELFLIP_HOSTS_H

#include <stddef.h>

#include "conf.h"
#include "remote.h"

/* Work over many hosts: connections and a bounded pool of threads. */

/* Connect to a configured host with the [ssh] settings. */
int host_connect(const struct conf *conf, const struct conf_host *host,
		 struct remote **out, struct ssh_info *info,
		 struct rf_error *err);

typedef void (*host_work_fn)(void *arg, size_t index);

/*
 * Call fn(arg, i) for i in 0..n-1, at most max_parallel at once, each in
 * its own thread; returns when all are done. Each index is handled by
 * exactly one call, so per-host state needs no locking.
 */
void hosts_run(size_t n, int max_parallel, host_work_fn fn, void *arg);

#endif
