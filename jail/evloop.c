#include "evloop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

struct ev_watch {
	struct evloop *ev;
	int fd;
	ev_fd_cb cb; /* NULL once unwatched */
	void *arg;
	struct ev_timer *timer; /* set when this watch is a timer's timerfd */
	struct ev_watch *next_dead;
	unsigned events; /* as last set */
};

struct ev_timer {
	struct ev_watch *w;
	int tfd;
	ev_timer_cb cb;
	void *arg;
};

struct evloop {
	int epfd;
	int dispatching;
	struct ev_watch *dead; /* freed after the current dispatch round */
};

struct evloop *evloop_new(struct err *err)
{
	struct evloop *ev = calloc(1, sizeof *ev);
	if (!ev) {
		err_sys(err, ENOMEM, "allocating event loop");
		return NULL;
	}
	ev->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ev->epfd < 0) {
		err_sys(err, errno, "epoll_create1");
		free(ev);
		return NULL;
	}
	return ev;
}

static void reap_dead(struct evloop *ev)
{
	while (ev->dead) {
		struct ev_watch *w = ev->dead;
		ev->dead = w->next_dead;
		free(w);
	}
}

void evloop_free(struct evloop *ev)
{
	if (!ev)
		return;
	reap_dead(ev);
	close(ev->epfd);
	free(ev);
}

int evloop_fd(const struct evloop *ev)
{
	return ev->epfd;
}

static uint32_t to_epoll(unsigned events)
{
	return (events & EV_READ ? EPOLLIN : 0) | (events & EV_WRITE ? EPOLLOUT : 0);
}

void evloop_dispatch(struct evloop *ev)
{
	struct epoll_event evs[64];
	ev->dispatching++;
	int n = epoll_wait(ev->epfd, evs, 64, 0);
	for (int i = 0; i < n; i++) {
		struct ev_watch *w = evs[i].data.ptr;
		if (!w->cb)
			continue;
		unsigned e = (evs[i].events & EPOLLIN ? EV_READ : 0) |
			     (evs[i].events & EPOLLOUT ? EV_WRITE : 0) |
			     (evs[i].events & (EPOLLHUP | EPOLLERR) ? EV_HUP : 0);
		w->cb(w->arg, w->fd, e);
	}
	if (--ev->dispatching == 0)
		reap_dead(ev);
}

int evloop_run_once(struct evloop *ev, int ms)
{
	struct epoll_event e;
	int n = epoll_wait(ev->epfd, &e, 1, ms);
	if (n > 0)
		evloop_dispatch(ev);
	return n;
}

struct ev_watch *ev_watch_fd(struct evloop *ev, int fd, unsigned events, ev_fd_cb cb, void *arg,
			     struct err *err)
{
	struct ev_watch *w = calloc(1, sizeof *w);
	if (!w) {
		err_sys(err, ENOMEM, "allocating watch");
		return NULL;
	}
	*w = (struct ev_watch){.ev = ev, .fd = fd, .cb = cb, .arg = arg, .events = events};
	struct epoll_event e = {.events = to_epoll(events), .data.ptr = w};
	if (epoll_ctl(ev->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
		err_sys(err, errno, "epoll_ctl add fd %d", fd);
		free(w);
		return NULL;
	}
	return w;
}

int ev_watch_set(struct ev_watch *w, unsigned events)
{
	struct epoll_event e = {.events = to_epoll(events), .data.ptr = w};
	w->events = events;
	return epoll_ctl(w->ev->epfd, EPOLL_CTL_MOD, w->fd, &e);
}

unsigned ev_watch_events(const struct ev_watch *w)
{
	return w->cb ? w->events : 0;
}

void ev_unwatch(struct ev_watch *w)
{
	if (!w)
		return;
	struct evloop *ev = w->ev;
	epoll_ctl(ev->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->cb = NULL;
	if (ev->dispatching) {
		w->next_dead = ev->dead;
		ev->dead = w;
	} else {
		free(w);
	}
}

static void timer_fired(void *arg, int fd, unsigned events)
{
	struct ev_timer *t = arg;
	uint64_t n;
	if (read(fd, &n, sizeof n) != sizeof n)
		return;
	ev_timer_cb cb = t->cb;
	void *cb_arg = t->arg;
	/* One-shot: the timer is gone before its callback runs, so the
	 * callback may free what owns it. */
	ev_timer_cancel(t);
	cb(cb_arg);
}

struct ev_timer *ev_timer_add(struct evloop *ev, int64_t ms, ev_timer_cb cb, void *arg,
			      struct err *err)
{
	struct ev_timer *t = calloc(1, sizeof *t);
	if (!t) {
		err_sys(err, ENOMEM, "allocating timer");
		return NULL;
	}
	t->cb = cb;
	t->arg = arg;
	t->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (t->tfd < 0) {
		err_sys(err, errno, "timerfd_create");
		free(t);
		return NULL;
	}
	if (ms < 1)
		ms = 1;
	struct itimerspec its = {
	    .it_value = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000}};
	if (timerfd_settime(t->tfd, 0, &its, NULL) < 0 ||
	    !(t->w = ev_watch_fd(ev, t->tfd, EV_READ, timer_fired, t, err))) {
		if (!t->w)
			err_sys(err, errno, "timerfd_settime");
		close(t->tfd);
		free(t);
		return NULL;
	}
	return t;
}

void ev_timer_cancel(struct ev_timer *t)
{
	if (!t)
		return;
	ev_unwatch(t->w);
	close(t->tfd);
	free(t);
}
