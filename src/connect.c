/*
 * Connecting to every host of a fleet, paced.
 */
#include <pthread.h>
#include <time.h>

#include "agent.h"
#include "connect.h"
#include "hosts.h"
#include "out.h"

/*
 * New connections are spread out, one every CONNECT_SPACING_MS, so that a
 * firewall or bastion that limits connection rates (and sshd's MaxStartups
 * behind a shared address) is not tripped by a fleet connecting at once.
 */
#define CONNECT_SPACING_MS 5

static void
connect_pace(struct fleet *f)
{
	long long now, slot;

	pthread_mutex_lock(&f->pace_lock);
	now = out_now_ms();
	slot = f->next_connect_ms > now ? f->next_connect_ms : now;
	f->next_connect_ms = slot + CONNECT_SPACING_MS;
	pthread_mutex_unlock(&f->pace_lock);
	if (slot > now) {
		struct timespec ts = { 0, (long)(slot - now) * 1000000L };

		nanosleep(&ts, NULL);
	}
}

static int
connect_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	(void)arg;
	connect_pace(f);
	if (host_connect(f->conf, fh->host, &fh->r, &fh->info, &fh->err) != 0)
		return -1;
	fh->connected = 1;
	if (__atomic_load_n(&f->warm_up, __ATOMIC_RELAXED)) {
		/*
		 * Start the agent while the artifact is still being
		 * validated: its channel costs two round trips (and sshd
		 * ~45 ms), hidden here. Once validation is over, the lock's
		 * step travelling with the agent's start costs less.
		 */
		struct rf_error ignored = RF_ERROR_INIT;

		agent_start(fh->r, &ignored);
	}
	return 0;
}

int
fleet_connect(struct fleet *f, struct rf_error *err)
{
	fleet_activate_all(f);
	return fleet_step(f, "connect", connect_one, NULL, err);
}

