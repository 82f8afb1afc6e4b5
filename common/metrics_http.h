/*
 * metrics_http.h - serves a metrics registry (metrics.h) over HTTP/1.x for
 * Prometheus scrapes, on its own port and its own thread.
 *
 * Why a separate port on loopback: the metrics reveal load, session counts
 * and worker health, and the server behind them must never be reachable by
 * students or from the public side; a loopback-only listener (scraped by
 * a local agent, or through an operator's own tunnel) keeps it out of the
 * proxy's and the jail's request paths entirely. So metrics_http_start()
 * refuses any address outside 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104
 * unless the caller passes allow_public, which should come from an explicit
 * operator setting, never a default. Addresses must be numeric (no DNS
 * lookup: "localhost" could resolve to anything).
 *
 * Protocol: one request per connection. "GET /metrics" (a query string is
 * ignored; HEAD likewise, without body) answers 200 with
 * Content-Type: text/plain; version=0.0.4; charset=utf-8, Content-Length
 * and Connection: close; any other well-formed request 404; a malformed
 * request line or a head over 8 KiB 400; a render error 500. The request
 * head must arrive within 5 s of accepting (else the connection is closed
 * without an answer), and the whole exchange ends by then: connections are
 * served one at a time, so a client that stalls delays the next scrape by
 * at most that timeout.
 *
 * Threads: metrics_http_start() starts ONE thread, with all signals
 * blocked (signals stay with the threads that handle them). That thread
 * only accepts, reads, renders the registry and writes; it never forks,
 * allocates nothing but its request/response buffers, and touches no state
 * besides the registry and its own sockets. The registry must outlive the
 * server. The functions below are called from one (owning) thread.
 */
#ifndef VC_METRICS_HTTP_H
#define VC_METRICS_HTTP_H

#include "err.h"
#include "metrics.h"

#define METRICS_HTTP_TIMEOUT_MS 5000
#define METRICS_HTTP_MAX_HEAD	8192
#define METRICS_HTTP_MAX_BODY	(16u << 20) /* a rendering above this answers 500 */

struct metrics_http;

/* Listens on addr:port (port 0 picks a free port) and starts serving m.
 * Returns NULL with *err set when addr is not a numeric address, not
 * loopback while allow_public is 0 (code EACCES), or on a socket, bind or
 * thread error. */
struct metrics_http *metrics_http_start(struct metrics *m, const char *addr, int port,
					int allow_public, struct err *err);

/* The bound port (useful after port 0). */
int metrics_http_port(const struct metrics_http *h);

/* Wakes and joins the thread (an exchange in progress is abandoned), closes
 * the sockets and frees h. NULL is fine. */
void metrics_http_stop(struct metrics_http *h);

#endif
