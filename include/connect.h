#ifndef RELFLIP_CONNECT_H
#define RELFLIP_CONNECT_H

#include "fleet.h"

/*
 * Connect to every host, new connections a few ms apart; any failure
 * fails all (exit 4, naming each host). With f->warm_up, each host's
 * agent is started too.
 */
int fleet_connect(struct fleet *f, struct rf_error *err);

#endif
