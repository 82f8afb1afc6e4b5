/*
 * server.h - vpl-proxy's event loop: the public listeners (HTTPS/WSS and optionally plain),
 * the connections to workers, and what flows between them (docs/proxy.md).
 *
 * One thread, one libwebsockets context in raw mode: lws does TLS and polling; the proxy
 * parses each request head itself (httphead.c) and then either
 *   - answers it (/OK, /robots.txt, /favicon.ico, `available`, policy refusals),
 *   - forwards one RPC to a worker and rewrites the answer (tickets get route codes, ports
 *     become the proxy's), or
 *   - tunnels the connection byte for byte to the worker its ticket names (monitor/execute
 *     WebSockets, web-app pass-through and VPL_web cookies), rewriting only the monitor's
 *     run:browser ticket and the VPL_web Set-Cookie.
 * Every connection carries one request (the protocol's rule), so nothing is kept between
 * requests: two proxies with the same ROUTE_SECRET route the same tickets the same way.
 *
 * Back-pressure: each side's pending output is bounded (PROXY_OUT_HIGH); above it the other
 * side is not read until the output drains below PROXY_OUT_LOW.
 * SIGHUP reloads the certificate after checking it (live connections keep theirs);
 * SIGTERM/SIGINT stop the loop.
 */
#ifndef VC_PROXY_SERVER_H
#define VC_PROXY_SERVER_H

#include "config.h"
#include "err.h"

#define PROXY_OUT_HIGH (256 * 1024)
#define PROXY_OUT_LOW  (64 * 1024)
/* An RPC answer from a worker is read whole before it is rewritten. */
#define PROXY_RESPONSE_MAX     (256LL * 1024 * 1024)
#define PROXY_HEAD_S	       10  /* a request head must arrive within this */
#define PROXY_BODY_IDLE_S      6   /* a body may not stall longer (as vpl-jail) */
#define PROXY_BODY_BASE_S      60  /* nor take longer than this + 1 s per MiB (as vpl-jail) */
#define PROXY_WAIT_S	       120 /* a worker's RPC answer (update waits up to 15 s) */
#define PROXY_CONNECT_S	       5   /* a TLS handshake, a connect to a worker */
#define WORKER_KEEPALIVE_S     15
#define WORKER_USER_TIMEOUT_MS 30000

struct proxy;

struct proxy *proxy_new(const struct proxy_config *cfg, struct err *err);
int proxy_run(struct proxy *p);
void proxy_stop(struct proxy *p);
void proxy_free(struct proxy *p);

#endif
