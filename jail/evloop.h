/*
 * evloop.h - file descriptors and timers for the parts of the worker that are
 * not sockets (containerd's completion eventfd, task FIFOs).
 *
 * One epoll set whose own fd the server adopts into the libwebsockets loop:
 * when it turns readable, the server calls evloop_dispatch(), which runs the
 * ready callbacks. Everything runs on the loop thread.
 *
 * Ownership: a watch never owns its fd (the caller closes it after
 * ev_unwatch). ev_unwatch() and ev_timer_cancel() may be called from inside
 * any callback, including for watches whose events are still pending in the
 * same dispatch round: those are skipped, then freed after the round.
 */
#ifndef VC_EVLOOP_H
#define VC_EVLOOP_H

#include <stdint.h>

#include "err.h"

#define EV_READ	 1u
#define EV_WRITE 2u
#define EV_HUP	 4u /* reported, never requested */

struct evloop;
struct ev_watch;
struct ev_timer;

typedef void (*ev_fd_cb)(void *arg, int fd, unsigned events);
typedef void (*ev_timer_cb)(void *arg);

struct evloop *evloop_new(struct err *err);
void evloop_free(struct evloop *ev); /* every watch and timer must be gone */
int evloop_fd(const struct evloop *ev);
void evloop_dispatch(struct evloop *ev);
/* For loops without libwebsockets (tools, tests): waits up to ms, then dispatches. */
int evloop_run_once(struct evloop *ev, int ms);

struct ev_watch *ev_watch_fd(struct evloop *ev, int fd, unsigned events, ev_fd_cb cb, void *arg,
			     struct err *err);
int ev_watch_set(struct ev_watch *w, unsigned events);
/* The events last asked for (0 when paused or unwatched). */
unsigned ev_watch_events(const struct ev_watch *w);
void ev_unwatch(struct ev_watch *w);

struct ev_timer *ev_timer_add(struct evloop *ev, int64_t ms, ev_timer_cb cb, void *arg,
			      struct err *err);
void ev_timer_cancel(struct ev_timer *t);

#endif
