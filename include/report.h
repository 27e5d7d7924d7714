#ifndef RELFLIP_REPORT_H
#define RELFLIP_REPORT_H

#include "fleet.h"

/*
 * The end of a run: with several hosts, a table of host, result, the
 * release live now and duration; under GitHub Actions, a Markdown summary
 * of the run (title, release, previous, result, per host) appended to
 * $GITHUB_STEP_SUMMARY.
 */
void fleet_report(const struct fleet *f, const char *revision,
		  const char *previous, int code, long duration_ms,
		  const struct rf_error *err);

#endif
