/*
 * server.h - the worker's network edge: libwebsockets context, the plain and
 * TLS listeners, and the glue that turns lws callbacks into
 * http_handle_headers()/http_handle_body() calls.
 *
 * One thread, one event loop. Every connection carries one request and is
 * closed after its response (the protocol's rule). Slow clients: headers
 * must complete within lws's idle limit (10 s), a body may not stall for
 * more than SERVER_BODY_IDLE_S seconds nor take longer than
 * SERVER_BODY_BASE_S + 1 s per MiB declared; either gets 408.
 */
#ifndef VC_SERVER_H
#define VC_SERVER_H

#include "err.h"
#include "jail.h"

#define SERVER_BODY_IDLE_S 6
#define SERVER_BODY_BASE_S 60

struct server;

struct server *server_new(struct jail *j, struct err *err);
/* Runs until server_stop() (or SIGTERM/SIGINT); SIGHUP reloads the TLS
 * certificate and key after checking that they load and match. */
int server_run(struct server *s);
void server_stop(struct server *s);
/* What a signal does, when the keeper received it (privsep): SIGTERM/SIGINT drain/stop. */
void server_signal(struct server *s, int sig);
/* Replaces the TLS listener's certificate chain and key with PEM read by the keeper; the
 * current one stays on any error. New handshakes use the new one. */
int server_tls_reload_mem(struct server *s, const void *cert, size_t cert_len, const void *key,
			  size_t key_len, struct err *err);
void server_free(struct server *s);

#endif
