/*
 * jail_metrics.h - the worker's Prometheus metrics (docs/operations.md): requests by method
 * and status, request latency, open WebSocket sessions, live tasks. Served as text on
 * METRICS_ADDRESS:METRICS_PORT (loopback by default) by common/metrics_http.c's thread.
 *
 * Every function is a no-op while j->metrics is NULL (unit tests, fuzzers), so the protocol
 * core can count without caring whether metrics exist.
 */
#ifndef VC_JAIL_METRICS_H
#define VC_JAIL_METRICS_H

#include <stdint.h>

#include "err.h"
#include "jail.h"

/* Registers the families, and starts serving them when METRICS_PORT is set. */
int jail_metrics_init(struct jail *j, struct err *err);
void jail_metrics_free(struct jail *j);

void jail_metrics_request(struct jail *j, const char *method, int status, int64_t ms);
void jail_metrics_ws(struct jail *j, bool monitor, int delta);

#endif
