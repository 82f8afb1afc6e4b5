/*
 * ws.h - the monitor and execute WebSockets (vpl-jail-protocol.md §6).
 *
 * server.c routes the lws callbacks of upgraded connections here. A
 * session knows its task by id (the task may be stopped or expire at any
 * moment: every event looks it up again) and owns a bounded queue of frames
 * waiting for the socket to be writable.
 *
 * - monitor: text messages made by monitor.c from the task's progress,
 *   polled every 100 ms and at once when the task changes (task_touch);
 *   data from the browser, or the browser closing,
 *   stops the task (except while its result waits to be retrieved).
 * - execute: the program's terminal (or VNC/web relay) through the
 *   sandbox: output as text frames cut at UTF-8 boundaries (invalid bytes
 *   become U+FFFD), binary frames for VNC (base64 text in `base64` mode);
 *   input written to the program verbatim. More than WS_QUEUE_HIGH bytes
 *   queued pauses the program's output until the queue is below
 *   WS_QUEUE_LOW, so a flood neither grows memory nor stalls other sessions.
 */
#ifndef VC_WS_H
#define VC_WS_H

#include <stdbool.h>
#include <stddef.h>

#include "jail.h"

#define WS_QUEUE_HIGH (256 * 1024)
#define WS_QUEUE_LOW  (64 * 1024)

struct lws;
struct ws_sess;

/* Before the handshake: 0 when path names a live, unused monitor or
 * execute ticket of a task in a state that accepts it; -1 otherwise (the
 * caller answers 500, as the reference does). */
int ws_check(struct jail *j, const char *path);

/* After the handshake. protocol: the negotiated subprotocol name or NULL.
 * NULL when the ticket is no longer acceptable (the caller closes). */
struct ws_sess *ws_open(struct jail *j, struct lws *wsi, const char *path, const char *protocol);
void ws_receive(struct ws_sess *s, const void *data, size_t len);
/* Returns -1 when the connection must close now. */
int ws_writeable(struct ws_sess *s);
void ws_timer(struct ws_sess *s);
/* The connection is gone: frees s. */
void ws_closed(struct ws_sess *s);

#endif
