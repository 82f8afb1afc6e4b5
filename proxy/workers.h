/*
 * workers.h - the proxy's set of vpl-jail workers, their health and their load.
 *
 * Where workers come from: a list of "host:port" names. A host is an IPv4 literal or a DNS
 * name, and every A record of a name is one worker (Docker Swarm `tasks.<service>` with
 * dnsrr, a Kubernetes headless Service: one record per replica). Names are resolved once by
 * workers_start() and again every dns_interval_ms. IPv4 only: route codes (route.h) carry
 * IPv4 addresses.
 *
 * Health and load: every health_interval_ms the health thread POSTs the protocol's
 * `available` to each worker (libcurl multi, one reused easy handle per worker, connect and
 * total timeout health_timeout_ms, no proxy from the environment) and reads result.status
 * (ready/busy/offline), load and the limits. A failed poll (connect error, timeout, status
 * other than 200, bad JSON, no status) is retried once at once; two failures in a row mark
 * the worker down, so a dead or hung worker leaves the rotation within about
 * health_interval_ms + 2 * health_timeout_ms. One good poll brings it back up.
 *
 *   picked for new tasks  = in the current name set, up, last status "ready",
 *                           and not failed on the data path since its last good poll
 *   known (routable)      = in the current name set (up or down), or gone from DNS less
 *                           than gone_grace_ms ago and still answering, so the tasks it
 *                           runs can finish; it is dropped once it is down or the grace ends
 *
 * A worker that is "busy" (MAX_TASKS reached) or "offline" (drained with DRAIN_FILE) stays
 * known but is not picked. New workers are not picked before their first good poll.
 *
 * Threads: workers_start() starts exactly one thread (health polls and DNS; no fork). All
 * other functions may be called from any thread: they take one mutex around a small array
 * and never block on the network. The health thread holds that mutex only to update state,
 * never across a transfer or a DNS lookup. workers_new/workers_start/workers_free are not
 * concurrent with anything else on the same object.
 *
 * DNS lookups are getaddrinfo() in the health thread, made between poll rounds (never while
 * a poll is in flight, so a slow lookup cannot turn into poll timeouts). A slow resolver
 * pauses health polling for its duration; the last known state is kept meanwhile.
 *
 * libcurl: workers_new() calls curl_global_init() and workers_free() curl_global_cleanup()
 * (both reference-counted). Call workers_new() before starting other threads that use curl
 * if your libcurl is older than 7.84 (not thread-safe init).
 *
 * Logging (log.h): one line per state change (added, up, down, status, gone from DNS,
 * dropped, data-path failure). Never the secret nor the URL path.
 */
#ifndef VC_WORKERS_H
#define VC_WORKERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* A worker's address: ip_be in network byte order (as in s_addr and route.h), port in host
 * order. Compared by value. */
struct worker_addr {
	uint32_t ip_be;
	uint16_t port;
};

#define WORKER_ADDR_STRLEN 22 /* "255.255.255.255:65535" + NUL */

/* Writes "a.b.c.d:port" to out; returns out. */
char *worker_addr_fmt(struct worker_addr a, char out[WORKER_ADDR_STRLEN]);

struct workers_config {
	const char *const *names; /* NULL-terminated "host:port" entries (at least one) */
	int dns_interval_ms;	  /* <= 0: 5000 */
	int health_interval_ms;	  /* <= 0: 1000 */
	int health_timeout_ms;	  /* <= 0: 800; connect and total timeout of one poll */
	int gone_grace_ms;	  /* <= 0: 600000; how long a worker gone from DNS stays known */
	const char *urlpath;	  /* the workers' URLPATH, e.g. "/"; NULL = "/" */
	const char *secret; /* sent as "X-Vplcell-Auth: <secret>" on every poll; NULL = none */
};

/*
 * Checks and copies cfg (the caller's strings may be freed afterwards). Refused: no names, an
 * entry that is not host:port with a port 1..65535 and a host of letters, digits, '.', '-',
 * '_' (IPv6 literals included), a URL path that does not start with '/', is over 2048 bytes
 * or holds blanks, control or non-ASCII bytes, '?' or '#', an empty secret or one with
 * control characters (header injection). Nothing is resolved and no thread runs yet.
 */
struct workers *workers_new(const struct workers_config *cfg, struct err *err);

/*
 * Resolves every name once, synchronously (a name that does not resolve now is logged and
 * retried every dns_interval_ms: an orchestrator may start the proxy before its workers),
 * then starts the health thread, whose first poll round begins at once. Fails only if the
 * thread or curl cannot be set up, or if called twice.
 */
int workers_start(struct workers *w, struct err *err);

/* Stops and joins the health thread (if started) and frees everything. NULL is a no-op. */
void workers_free(struct workers *w);

/*
 * Picks a worker for a new task: among the pickable workers not in exclude[0..nexclude), the
 * one with the smallest load + inflight; ties rotate. Writes it to *out and returns 0, or
 * returns -1 if there is none. It does not count the task: call workers_inflight(+1) when the
 * task is actually sent.
 */
int workers_pick(struct workers *w, const struct worker_addr *exclude, size_t nexclude,
		 struct worker_addr *out);

/* True if a is in the current set (see "known" above): the only addresses the proxy may
 * connect to, e.g. after decoding a route code. */
bool workers_known(struct workers *w, struct worker_addr a);

/* True if a is known and up (answering its polls, no data-path failure since): the proxy
 * does not wait for a connect to a worker it already knows is down. */
bool workers_up(struct workers *w, struct worker_addr a);

/*
 * Counts tasks the proxy sent to a (delta > 0) or that never reached it (delta < 0) into its
 * load until a poll that started after the change answers (that answer's load includes them).
 * Unknown addresses are ignored. Do not undo a +1 when the worker answers the request: the
 * task then lives on the worker and its next poll counts it; undoing it would hide a burst
 * of quick requests (each +1 gone before any poll) and send them all to one worker. Undo it
 * only when the task was not created (no connection, an error answer).
 */
void workers_inflight(struct workers *w, struct worker_addr a, int delta);

/*
 * The data path could not connect to a: it leaves the rotation now (still known, so running
 * tasks keep their route). The next good poll that started after this call brings it back.
 */
void workers_failed(struct workers *w, struct worker_addr a);

/*
 * What `available` through the proxy should answer. Status: "ready" if ready > 0, else
 * "offline" if every up worker is offline (up > 0 && offline == up), else "busy".
 * Limits (maxtime, maxfilesize, maxmemory, maxprocesses) are those of the ready worker with
 * the largest maxmemory: Moodle reads them as what one task may get, and a task lands on one
 * worker, so they must be one worker's real maxima, and the largest-memory one is where the
 * biggest task can go. With no ready worker, the same over up workers; all 0 if none is up.
 */
struct workers_summary {
	int total;	/* known workers */
	int up;		/* up (answering, not failed on the data path) */
	int ready;	/* pickable */
	int busy;	/* up, last status busy */
	int offline;	/* up, last status offline (draining) */
	long long load; /* sum over up workers of load + inflight */
	long long maxtime, maxfilesize, maxmemory, maxprocesses;
};

void workers_summary(struct workers *w, struct workers_summary *s);

enum worker_status {
	WORKER_UNKNOWN = 0, /* never answered yet */
	WORKER_READY,
	WORKER_BUSY,
	WORKER_OFFLINE,
};

const char *worker_status_name(enum worker_status s); /* "unknown", "ready", ... */

struct worker_info {
	struct worker_addr addr;
	bool up;		   /* as in the summary */
	bool in_names;		   /* false: gone from DNS, kept for its running tasks */
	enum worker_status status; /* from the last good poll */
	long long load;		   /* from the last good poll */
	int inflight;
	long long maxmemory;
	char error[160]; /* why the last poll failed (curl's text: host and port, never the
			  * path or the secret); "" if the last poll was good */
};

/* Copies up to max entries (known workers, in no particular order) and returns how many are
 * known, which may exceed max. For logs and metrics. */
size_t workers_list(struct workers *w, struct worker_info *out, size_t max);

#endif
