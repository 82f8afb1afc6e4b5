/*
 * http_handler.h - what the worker answers to one HTTP request.
 *
 * The network glue (server.c) parses with libwebsockets and calls these two
 * functions; they hold every decision of vpl-jail-protocol.md §1.5 and build
 * the complete response bytes, so they can be unit-tested and fuzzed without
 * sockets.
 *
 *  http_handle_headers(): called once the headers are in. Returns
 *    HTTP_NEED_BODY (read Content-Length bytes, then call http_handle_body;
 *    send "100 Continue" first if rq->expect_continue) or HTTP_REPLY_READY
 *    (*out holds the whole response; write it and close).
 *  http_handle_body(): the RPC itself; *out gets the response.
 */
#ifndef VC_HTTP_HANDLER_H
#define VC_HTTP_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"
#include "http_reply.h"
#include "jail.h"

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_OTHER };
enum { HTTP_NEED_BODY = 0, HTTP_REPLY_READY = 1, HTTP_REPLY_LATER = 2 };

/* A response that waits for the sandbox (the `update` RPC, §2.7): owned jointly by the
 * connection and the sandbox's pending call; freed when both have let go. */
struct http_pending;

struct http_request {
	enum http_method method;
	const char *method_name; /* for the 400 detail of other methods */
	const char *path;	 /* without the query string; not NUL-terminated */
	size_t path_len;
	const char *query; /* NUL-terminated or NULL */
	bool tls;
	const struct sockaddr *peer; /* may be NULL in tests: treated as allowed */
	long long content_length;    /* -1 when absent */
	bool expect_continue;
	bool upgrade_websocket;
	const char *cookie; /* raw Cookie header or NULL */
};

int http_handle_headers(struct jail *j, const struct http_request *rq, struct buf *out);
/* §1.5 step 2, before anything else: the running web task whose live pass-through ticket
 * the request's VPL_web cookie holds (the connection is then proxied to its program), or
 * NULL. */
struct task *http_web_task(struct jail *j, const struct http_request *rq);
/* Takes ownership of body (malloc'ed or NULL) and frees it as early as it
 * can, so a big request is not held twice while its response is built. */
void http_handle_body(struct jail *j, const struct http_request *rq, char *body, size_t len,
		      struct buf *out);
/* Like http_handle_body, but a method whose answer comes later (update into a running task)
 * may return HTTP_REPLY_LATER with *later set and *out empty: then call
 * http_pending_watch() at once, and http_pending_finish() once ready() came (or to give up
 * at the connection's own bound), or http_pending_cancel() when the client left first.
 * Otherwise HTTP_REPLY_READY with *out holding the response. */
int http_handle_body_async(struct jail *j, const struct http_request *rq, char *body, size_t len,
			   struct buf *out, struct http_pending **later);
/* ready(arg) comes once, from the loop, when the answer is known (never from inside this
 * call, nor after http_pending_finish/cancel). */
void http_pending_watch(struct http_pending *p, void (*ready)(void *arg), void *arg);
/* The whole response into *out, with the reference encoding ({"update":ok}); give_up: the
 * answer did not come in time, say 0. Releases the connection's hold on p. */
void http_pending_finish(struct jail *j, struct http_pending *p, bool give_up, struct buf *out);
/* The connection is gone: releases its hold on p (no ready() any more). */
void http_pending_cancel(struct http_pending *p);

/* /OK, /robots.txt and /favicon.ico, answered by every server of ours (the proxy too):
 * writes the whole response and returns true, or false for any other path. */
bool http_fixed_page(const char *path, size_t path_len, const struct http_reply_opts *o,
		     struct buf *out);

/* URLPATH is a password: true if the request path (an empty one counts as "/") is `want`,
 * compared in time that depends on neither where they differ nor the path's length. */
bool http_urlpath_matches(const char *want, const char *got, size_t len);

/* Peer address as text for logs and ACLs ("1.2.3.4", "::1"); mapped IPv4
 * shown as IPv4. */
void http_peer_text(const struct sockaddr *sa, char *out, size_t outsz);

#endif
