/*
 * methods.h - the seven RPC methods of the VPL jail protocol.
 *
 * methods_call() executes one parsed request against the worker's state and
 * fills the result members (in the reference's order) or an HTTP error
 * (status + detail text) the way vpl-jail-protocol.md §1.6 says: the
 * protocol has no RPC-level faults. Strings the result points to live in
 * `scratch` or in the task until the response has been encoded.
 */
#ifndef VC_METHODS_H
#define VC_METHODS_H

#include "jail.h"
#include "rpc.h"

#define METHODS_MAX_MEMBERS 8

struct methods_result {
	int status; /* 200, or the HTTP error status */
	char detail[256];
	struct rpc_member m[METHODS_MAX_MEMBERS];
	size_t n;
	char scratch[256];
	uint64_t task_id; /* for the request log line; 0 = none */
	/* getresult hands its outputs over; freed by methods_result_free(). */
	struct buf out_compilation, out_execution;
};

void methods_call(struct jail *j, const struct rpc_request *req, struct methods_result *res);
void methods_result_free(struct methods_result *res);

/* The disk guard request/directrun/available consult (diskguard.h), set up from j->cfg at the
 * first use. A process that cannot see the disks (the privsep parser) feeds it the verdict of
 * one that can with diskguard_report(). */
struct diskguard *methods_diskguard(struct jail *j);

/* The limits a task gets: the request's, clamped to the server's maxima; a
 * missing or non-positive request means "the server's maximum". */
struct task_limits methods_clamp_limits(const struct jail_config *cfg,
					const struct rpc_request *req);

#endif
