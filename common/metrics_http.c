#include "metrics_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

struct metrics_http {
	struct metrics *m;
	int lfd;
	int wake[2]; /* a byte on wake[1] tells the thread to exit */
	int port;
	pthread_t thread;
};

enum { WAIT_READY = 1, WAIT_TIMEOUT = 0, WAIT_STOP = -1 };

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline, watching the wake pipe. */
static int wait_fd(struct metrics_http *h, int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return WAIT_TIMEOUT;
		struct pollfd p[2] = {{.fd = fd, .events = events},
				      {.fd = h->wake[0], .events = POLLIN}};
		int r = poll(p, 2, left > INT32_MAX ? INT32_MAX : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return WAIT_TIMEOUT; /* drop the connection, keep serving */
		if (p[1].revents)
			return WAIT_STOP;
		if (p[0].revents)
			return WAIT_READY;
	}
}

/* Sends all of p before deadline. 0 done, -1 give up (timeout, error, stop). */
static int send_all(struct metrics_http *h, int fd, const char *p, size_t n, int64_t deadline,
		    bool *stop)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_fd(h, fd, POLLOUT, deadline);
			if (r == WAIT_READY)
				continue;
			if (r == WAIT_STOP)
				*stop = true;
		}
		return -1;
	}
	return 0;
}

/* The request line "METHOD SP /target SP HTTP/1.x", no control bytes.
 * Returns 200 (GET or HEAD /metrics), 404 or 400; *head_only for HEAD. */
static int route(const char *head, size_t len, bool *head_only)
{
	const char *eol = memchr(head, '\n', len);
	size_t n = eol ? (size_t)(eol - head) : len;
	if (n && head[n - 1] == '\r')
		n--;
	char line[METRICS_HTTP_MAX_HEAD + 1];
	memcpy(line, head, n);
	line[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x21 && line[i] != ' ')
			return 400;
	char *sp1 = strchr(line, ' ');
	char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || strchr(sp2 + 1, ' ') || sp1 == line || sp1 - line > 16)
		return 400;
	for (const char *p = line; p < sp1; p++)
		if (*p < 'A' || *p > 'Z')
			return 400;
	const char *target = sp1 + 1, *version = sp2 + 1;
	if (target[0] != '/' ||
	    (strcmp(version, "HTTP/1.1") != 0 && strcmp(version, "HTTP/1.0") != 0))
		return 400;
	for (const char *p = target; p < sp2; p++)
		if ((unsigned char)*p > 0x7e)
			return 400;
	size_t plen = strcspn(target, "? ");
	size_t mlen = (size_t)(sp1 - line);
	bool get = mlen == 3 && memcmp(line, "GET", 3) == 0;
	bool hd = mlen == 4 && memcmp(line, "HEAD", 4) == 0;
	if ((get || hd) && plen == 8 && memcmp(target, "/metrics", 8) == 0) {
		*head_only = hd;
		return 200;
	}
	return 404;
}

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	default:
		return "Internal Server Error";
	}
}

/* One exchange. Returns false when the thread must stop. */
static bool serve_conn(struct metrics_http *h, int fd)
{
	int64_t deadline = now_ms() + METRICS_HTTP_TIMEOUT_MS;
	char head[METRICS_HTTP_MAX_HEAD];
	size_t len = 0;
	int status = 0;
	while (!status) {
		ssize_t r = recv(fd, head + len, sizeof head - len, 0);
		if (r > 0) {
			/* Only new bytes can end the head; the test looks back. */
			size_t from = len;
			len += (size_t)r;
			for (size_t i = from; i < len && !status; i++) {
				if (head[i] != '\n')
					continue;
				if ((i >= 1 && head[i - 1] == '\n') ||
				    (i >= 2 && head[i - 1] == '\r' && head[i - 2] == '\n'))
					status = -1; /* complete head */
			}
			if (!status && len == sizeof head)
				status = 400;
			continue;
		}
		if (r == 0) {
			if (len == 0)
				return true; /* connected and left */
			status = 400;	     /* half-closed mid-head */
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return true;
		int w = wait_fd(h, fd, POLLIN, deadline);
		if (w == WAIT_STOP)
			return false;
		if (w == WAIT_TIMEOUT)
			return true; /* stalled: drop it so the next scrape is served */
	}

	bool head_only = false;
	if (status == -1)
		status = route(head, len, &head_only);
	struct buf body;
	buf_init(&body, METRICS_HTTP_MAX_BODY);
	const char *ctype = "text/plain; charset=utf-8";
	if (status == 200) {
		if (metrics_render(h->m, &body, NULL) == 0) {
			ctype = METRICS_CONTENT_TYPE;
		} else {
			status = 500;
			head_only = false;
		}
	}
	if (status != 200) {
		buf_reset(&body);
		buf_printf(&body, NULL, "%s\n", reason(status));
	}
	char hdr[256];
	int hl = snprintf(hdr, sizeof hdr,
			  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			  "Connection: close\r\n\r\n",
			  status, reason(status), ctype, body.len);
	bool stop = false;
	if (send_all(h, fd, hdr, (size_t)hl, deadline, &stop) == 0 && !head_only)
		send_all(h, fd, body.data ? body.data : "", body.len, deadline, &stop);
	buf_free(&body);
	if (stop)
		return false;

	/* Closing with unread input would reset the connection and could
	 * destroy the response in flight: signal EOF, then drain briefly. */
	shutdown(fd, SHUT_WR);
	int64_t drain_end = now_ms() + 200;
	if (drain_end > deadline)
		drain_end = deadline;
	for (size_t drained = 0; drained < (64u << 10);) {
		ssize_t r = recv(fd, head, sizeof head, 0);
		if (r > 0) {
			drained += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int w = wait_fd(h, fd, POLLIN, drain_end);
			if (w == WAIT_READY)
				continue;
			if (w == WAIT_STOP)
				return false;
		}
		break;
	}
	return true;
}

static void *serve(void *arg)
{
	struct metrics_http *h = arg;
	for (;;) {
		struct pollfd p[2] = {{.fd = h->lfd, .events = POLLIN},
				      {.fd = h->wake[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno != EINTR)
				poll(&p[1], 1, 100); /* ENOMEM: back off, still stoppable */
			continue;
		}
		if (p[1].revents)
			break;
		if (!p[0].revents)
			continue;
		int fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			/* Out of descriptors: do not spin on a readable listener. */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				poll(&p[1], 1, 100);
			continue;
		}
		bool go_on = serve_conn(h, fd);
		close(fd);
		if (!go_on)
			break;
	}
	return NULL;
}

static bool loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

struct metrics_http *metrics_http_start(struct metrics *m, const char *addr, int port,
					int allow_public, struct err *err)
{
	if (!m || !addr)
		return err_set(err, EINVAL, "metrics: no registry or address"), NULL;
	if (port < 0 || port > 65535)
		return err_set(err, EINVAL, "metrics: port %d out of range", port), NULL;
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	socklen_t sl;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		sl = sizeof *a4;
	} else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		struct in6_addr in6 = a6->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&in6)) {
			/* ::ffff:a.b.c.d is IPv4: bind it as such (the v6 socket is V6ONLY). */
			memset(&ss, 0, sizeof ss);
			a4->sin_family = AF_INET;
			memcpy(&a4->sin_addr, &in6.s6_addr[12], 4);
			a4->sin_port = htons((uint16_t)port);
			sl = sizeof *a4;
		} else {
			a6->sin6_family = AF_INET6;
			a6->sin6_port = htons((uint16_t)port);
			sl = sizeof *a6;
		}
	} else {
		return err_set(err, EINVAL, "metrics: '%.64s' is not a numeric IP address", addr),
		       NULL;
	}
	if (!allow_public && !loopback(&ss))
		return err_set(err, EACCES,
			       "metrics: refusing to listen on non-loopback address %.64s "
			       "(metrics must not be reachable by students or the public)",
			       addr),
		       NULL;

	struct metrics_http *h = calloc(1, sizeof *h);
	if (!h)
		return err_sys(err, ENOMEM, "metrics"), NULL;
	h->m = m;
	h->wake[0] = h->wake[1] = -1;
	h->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (h->lfd < 0) {
		err_sys(err, errno, "metrics: socket");
		goto fail;
	}
	int one = 1;
	setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ss.ss_family == AF_INET6)
		setsockopt(h->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(h->lfd, (struct sockaddr *)&ss, sl) < 0) {
		err_sys(err, errno, "metrics: bind %.64s port %d", addr, port);
		goto fail;
	}
	if (listen(h->lfd, 16) < 0) {
		err_sys(err, errno, "metrics: listen");
		goto fail;
	}
	struct sockaddr_storage bound;
	socklen_t bl = sizeof bound;
	if (getsockname(h->lfd, (struct sockaddr *)&bound, &bl) < 0) {
		err_sys(err, errno, "metrics: getsockname");
		goto fail;
	}
	h->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
						   : ((struct sockaddr_in6 *)&bound)->sin6_port);
	if (pipe2(h->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		err_sys(err, errno, "metrics: pipe");
		goto fail;
	}
	/* The thread starts with every signal blocked, so signals keep going
	 * to the threads that handle them. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&h->thread, NULL, serve, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		err_sys(err, rc, "metrics: starting the thread");
		goto fail;
	}
	return h;
fail:
	if (h->lfd >= 0)
		close(h->lfd);
	if (h->wake[0] >= 0) {
		close(h->wake[0]);
		close(h->wake[1]);
	}
	free(h);
	return NULL;
}

int metrics_http_port(const struct metrics_http *h)
{
	return h->port;
}

void metrics_http_stop(struct metrics_http *h)
{
	if (!h)
		return;
	ssize_t w;
	do
		w = write(h->wake[1], "x", 1);
	while (w < 0 && errno == EINTR);
	pthread_join(h->thread, NULL);
	close(h->lfd);
	close(h->wake[0]);
	close(h->wake[1]);
	free(h);
}
