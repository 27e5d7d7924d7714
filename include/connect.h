#ifndef RELFLIP_CONNECT_H
#define RELFLIP_CONNECT_H

#include "fleet.h"

/*
 * Connect to every host, new connections a few ms apart; any failure
 * fails all (exit 4, naming each host). While f->warm_up is set (deploy:
 * while the artifact is still being validated), each host's agent is
 * started too, its cost hidden behind the validation; once it is clear,
 * the first step goes with the agent's start instead, a round trip sooner.
 */
int fleet_connect(struct fleet *f, struct rf_error *err);

#endif
