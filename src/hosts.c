#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hosts.h"
#include "xmalloc.h"

int
host_connect(const struct conf *conf, const struct conf_host *host,
	     struct remote **out, struct ssh_info *info, struct rf_error *err)
{
	struct ssh_options opts = {
		.name = host->name,
		.address = host->address,
		.port = host->port,
		.user = host->user ? host->user : conf->ssh_user,
		.identity = conf->identity,
		.identity_env = conf->identity_env,
		.known_hosts = conf->known_hosts,
		.connect_timeout = conf->connect_timeout,
	};
	int rc;

	memset(info, 0, sizeof(*info));
	rc = remote_ssh_connect(&opts, out, info, err);
	if (rc != 0)
		rf_error_host(err, host->name);
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
