#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "metrics.h"
#include "metrics_http.h"

#define V(...) ((const char *const[]){__VA_ARGS__})

static char *render(struct metrics *m)
{
	struct buf b;
	buf_init(&b, 1u << 24);
	struct err err = {0};
	assert_int_equal(metrics_render(m, &b, &err), 0);
	return buf_steal(&b, NULL);
}

static void counters_and_gauges_exact(void **state)
{
	(void)state;
	struct metrics *m = metrics_new();
	assert_non_null(m);
	struct metric *req =
	    metrics_counter(m, "vpl_proxy_requests_total", "HTTP requests by method and status.",
			    V("method", "status", NULL));
	struct metric *up = metrics_gauge(m, "vpl_proxy_workers_up", "Workers answering.", NULL);
	struct metric *plain = metrics_counter(m, "ns:plain_total", NULL, NULL);
	assert_non_null(req);
	assert_non_null(up);
	assert_non_null(plain);

	metric_inc(req, V("GET", "200"));
	metric_inc(req, V("GET", "200"));
	metric_add(req, V("POST", "500"), 2.4);	 /* rounds to 2 */
	metric_add(req, V("POST", "500"), 0.6);	 /* rounds to 1 */
	metric_add(req, V("POST", "500"), -5);	 /* ignored: counters only go up */
	metric_add(req, V("POST", "500"), NAN);	 /* ignored */
	metric_set(req, V("GET", "200"), 99);	 /* wrong kind: ignored */
	metric_observe(req, V("GET", "200"), 1); /* wrong kind: ignored */
	metric_set(up, NULL, 4);
	metric_add(up, NULL, -1);
	metric_inc(up, NULL);
	metric_add(up, NULL, -5);
	/* Cached children are the same objects the lookup returns. */
	assert_ptr_equal(metric_child(req, V("GET", "200")), metric_child(req, V("GET", "200")));

	char *text = render(m);
	assert_string_equal(text,
			    "# HELP vpl_proxy_requests_total HTTP requests by method and status.\n"
			    "# TYPE vpl_proxy_requests_total counter\n"
			    "vpl_proxy_requests_total{method=\"GET\",status=\"200\"} 2\n"
			    "vpl_proxy_requests_total{method=\"POST\",status=\"500\"} 3\n"
			    "# HELP vpl_proxy_workers_up Workers answering.\n"
			    "# TYPE vpl_proxy_workers_up gauge\n"
			    "vpl_proxy_workers_up -1\n"
			    "# TYPE ns:plain_total counter\n"
			    "ns:plain_total 0\n");
	free(text);
	metrics_free(m);
}

static void histograms_exact_and_edges(void **state)
{
	(void)state;
	struct metrics *m = metrics_new();
	const double b[] = {0.25, 0.5, 1, 30};
	struct metric *h = metrics_histogram(m, "req_seconds", "Latency.", V("method", NULL), b, 4);
	struct metric *lat = metrics_histogram(m, "lat_seconds", "Default buckets.", NULL,
					       metrics_latency_bounds, METRICS_LATENCY_NBOUNDS);
	assert_non_null(h);
	assert_non_null(lat);
	/* A value equal to a bound falls in that bound's bucket (le). */
	const double obs[] = {0.25, -1, 0.5, 0.75, 1, 31};
	for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
		metric_observe(h, V("GET"), obs[i]);
	metric_observe(h, V("GET"), NAN); /* ignored */
	metric_add(h, V("GET"), 1);	  /* wrong kind: ignored */
	metric_observe(lat, NULL, 0.1);
	metric_observe(lat, NULL, 0.2);
	metric_observe(lat, NULL, 0.001);

	char *text = render(m);
	assert_string_equal(text, "# HELP req_seconds Latency.\n"
				  "# TYPE req_seconds histogram\n"
				  "req_seconds_bucket{method=\"GET\",le=\"0.25\"} 2\n"
				  "req_seconds_bucket{method=\"GET\",le=\"0.5\"} 3\n"
				  "req_seconds_bucket{method=\"GET\",le=\"1\"} 5\n"
				  "req_seconds_bucket{method=\"GET\",le=\"30\"} 5\n"
				  "req_seconds_bucket{method=\"GET\",le=\"+Inf\"} 6\n"
				  "req_seconds_sum{method=\"GET\"} 32.5\n"
				  "req_seconds_count{method=\"GET\"} 6\n"
				  "# HELP lat_seconds Default buckets.\n"
				  "# TYPE lat_seconds histogram\n"
				  "lat_seconds_bucket{le=\"0.001\"} 1\n"
				  "lat_seconds_bucket{le=\"0.0025\"} 1\n"
				  "lat_seconds_bucket{le=\"0.005\"} 1\n"
				  "lat_seconds_bucket{le=\"0.01\"} 1\n"
				  "lat_seconds_bucket{le=\"0.025\"} 1\n"
				  "lat_seconds_bucket{le=\"0.05\"} 1\n"
				  "lat_seconds_bucket{le=\"0.1\"} 2\n"
				  "lat_seconds_bucket{le=\"0.25\"} 3\n"
				  "lat_seconds_bucket{le=\"0.5\"} 3\n"
				  "lat_seconds_bucket{le=\"1\"} 3\n"
				  "lat_seconds_bucket{le=\"2.5\"} 3\n"
				  "lat_seconds_bucket{le=\"5\"} 3\n"
				  "lat_seconds_bucket{le=\"10\"} 3\n"
				  "lat_seconds_bucket{le=\"30\"} 3\n"
				  "lat_seconds_bucket{le=\"+Inf\"} 3\n"
				  "lat_seconds_sum 0.30100000000000005\n"
				  "lat_seconds_count 3\n");
	free(text);
	metrics_free(m);
}

static void escaping(void **state)
{
	(void)state;
	struct metrics *m = metrics_new();
	struct metric *c =
	    metrics_counter(m, "esc_total", "a \"quoted\" back\\slash\nnewline", V("v", NULL));
	assert_non_null(c);
	metric_inc(c, V("a\\b\"c\nd"));
	metric_inc(c, V("caf\xc3\xa9 \xff!"));
	metric_inc(c, (const char *const *)NULL); /* NULL values count as "" */
	char *text = render(m);
	assert_string_equal(text, "# HELP esc_total a \"quoted\" back\\\\slash\\nnewline\n"
				  "# TYPE esc_total counter\n"
				  "esc_total{v=\"a\\\\b\\\"c\\nd\"} 1\n"
				  "esc_total{v=\"caf\xc3\xa9 \xef\xbf\xbd!\"} 1\n"
				  "esc_total{v=\"\"} 1\n");
	free(text);
	metrics_free(m);
}

static void child_limit_goes_to_other(void **state)
{
	(void)state;
	struct metrics *m = metrics_new();
	struct metric *c = metrics_counter(m, "lim_total", NULL, V("a", "b", NULL));
	assert_non_null(c);
	char *text = render(m);
	assert_string_equal(text, "# TYPE lim_total counter\n"); /* no children yet */
	free(text);

	char vals[METRICS_MAX_CHILDREN + 10][16];
	struct metric_child *kids[METRICS_MAX_CHILDREN];
	for (int i = 0; i < METRICS_MAX_CHILDREN; i++) {
		snprintf(vals[i], sizeof vals[i], "v%d", i);
		kids[i] = metric_child(c, V(vals[i], "x"));
		metric_child_inc(kids[i]);
	}
	text = render(m);
	assert_null(strstr(text, "other")); /* the overflow child shows only once used */
	free(text);

	struct metric_child *other = metric_child(c, V("other", "other"));
	for (int i = METRICS_MAX_CHILDREN; i < METRICS_MAX_CHILDREN + 10; i++) {
		snprintf(vals[i], sizeof vals[i], "v%d", i);
		struct metric_child *k = metric_child(c, V(vals[i], "x"));
		assert_ptr_equal(k, other);
		metric_child_add(k, 2);
	}
	/* Existing children are still found; none moved. */
	for (int i = 0; i < METRICS_MAX_CHILDREN; i++)
		assert_ptr_equal(metric_child(c, V(vals[i], "x")), kids[i]);

	text = render(m);
	int lines = 0;
	for (char *p = text; (p = strchr(p, '\n')); p++)
		lines++;
	assert_int_equal(lines, 1 + METRICS_MAX_CHILDREN + 1);
	assert_non_null(strstr(text, "lim_total{a=\"v0\",b=\"x\"} 1\n"));
	assert_non_null(strstr(text, "lim_total{a=\"v63\",b=\"x\"} 1\n"));
	assert_non_null(strstr(text, "\nlim_total{a=\"other\",b=\"other\"} 20\n"));
	const char *last = "\nlim_total{a=\"other\",b=\"other\"} 20\n"; /* rendered last */
	assert_string_equal(text + strlen(text) - strlen(last), last);
	free(text);

	/* "other" asked for explicitly before the limit is the same series. */
	struct metric *d = metrics_counter(m, "early_total", NULL, V("a", NULL));
	struct metric_child *o = metric_child(d, V("other"));
	metric_child_inc(o);
	assert_ptr_equal(metric_child(d, V("other")), o);
	metrics_free(m);
}

static void bad_registrations(void **state)
{
	(void)state;
	struct metrics *m = metrics_new();
	const double ok_b[] = {1, 2};
	assert_null(metrics_counter(m, "", NULL, NULL));
	assert_null(metrics_counter(m, NULL, NULL, NULL));
	assert_null(metrics_counter(m, "9lives", NULL, NULL));
	assert_null(metrics_counter(m, "a-b", NULL, NULL));
	assert_null(metrics_counter(m, "a b", NULL, NULL));
	assert_null(metrics_counter(m, "ok_total", NULL, V("__reserved", NULL)));
	assert_null(metrics_counter(m, "ok_total", NULL, V("a:b", NULL)));
	assert_null(metrics_counter(m, "ok_total", NULL, V("1a", NULL)));
	assert_null(metrics_counter(m, "ok_total", NULL, V("", NULL)));
	assert_null(metrics_counter(m, "ok_total", NULL, V("a", "a", NULL)));
	assert_null(metrics_counter(m, "ok_total", NULL,
				    V("a", "b", "c", "d", "e", "f", "g", "h", "i", NULL)));
	assert_null(metrics_histogram(m, "h", NULL, V("le", NULL), ok_b, 2));
	const double unsorted[] = {1, 0.5}, equal[] = {1, 1}, nan_b[] = {1, NAN},
		     inf_b[] = {1, INFINITY};
	assert_null(metrics_histogram(m, "h", NULL, NULL, unsorted, 2));
	assert_null(metrics_histogram(m, "h", NULL, NULL, equal, 2));
	assert_null(metrics_histogram(m, "h", NULL, NULL, nan_b, 2));
	assert_null(metrics_histogram(m, "h", NULL, NULL, inf_b, 2));
	double many[METRICS_MAX_BUCKETS + 1];
	for (size_t i = 0; i < sizeof many / sizeof many[0]; i++)
		many[i] = (double)i;
	assert_null(metrics_histogram(m, "h", NULL, NULL, many, METRICS_MAX_BUCKETS + 1));
	assert_non_null(metrics_histogram(m, "h", NULL, NULL, many, METRICS_MAX_BUCKETS));

	/* Valid ones, then a duplicate name of any kind. */
	assert_non_null(metrics_counter(m, "ok_total", NULL, V("le", "_x", "A1", NULL)));
	assert_non_null(metrics_counter(m, "a:b_c", NULL, NULL));
	assert_null(metrics_gauge(m, "ok_total", NULL, NULL));
	assert_null(metrics_histogram(m, "ok_total", NULL, NULL, ok_b, 2));
	metrics_free(m);
}

/* ---- concurrency ---- */

#define THREADS 4
#define ITERS	100000

struct shared {
	struct metric *c, *g, *h, *fan;
	struct metric_child *cached;
	atomic_bool stop;
	atomic_uint rounds;
};

static const char *const keys[8] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"};

static void *hammer(void *arg)
{
	struct shared *s = arg;
	for (int i = 0; i < ITERS; i++) {
		metric_inc(s->c, V("in"));
		metric_child_add(s->cached, 3);
		metric_inc(s->g, NULL);
		metric_observe(s->h, V("GET"), 0.5);
		/* All threads race to create the same 8 children. */
		metric_inc(s->fan, V(keys[i % 8]));
	}
	return NULL;
}

static uint64_t value_of(const char *text, const char *series)
{
	const char *p = strstr(text, series);
	assert_non_null(p);
	return strtoull(p + strlen(series), NULL, 10);
}

static void concurrent_updates_are_exact(void **state)
{
	(void)state;
	struct metrics *m = metrics_new();
	struct shared s = {
	    .c = metrics_counter(m, "c_total", NULL, V("dir", NULL)),
	    .g = metrics_gauge(m, "g", NULL, NULL),
	    .h = metrics_histogram(m, "h_seconds", NULL, V("method", NULL), metrics_latency_bounds,
				   METRICS_LATENCY_NBOUNDS),
	    .fan = metrics_counter(m, "fan_total", NULL, V("k", NULL)),
	};
	struct metric *cb = metrics_counter(m, "bytes_total", NULL, V("direction", NULL));
	s.cached = metric_child(cb, V("out"));
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &s), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);

	char *text = render(m);
	const uint64_t n = (uint64_t)THREADS * ITERS;
	assert_int_equal(value_of(text, "c_total{dir=\"in\"} "), n);
	assert_int_equal(value_of(text, "bytes_total{direction=\"out\"} "), 3 * n);
	assert_int_equal(value_of(text, "\ng "), n);
	assert_int_equal(value_of(text, "h_seconds_bucket{method=\"GET\",le=\"0.25\"} "), 0);
	assert_int_equal(value_of(text, "h_seconds_bucket{method=\"GET\",le=\"0.5\"} "), n);
	assert_int_equal(value_of(text, "h_seconds_count{method=\"GET\"} "), n);
	assert_non_null(strstr(text, "h_seconds_sum{method=\"GET\"} 200000\n"));
	uint64_t fan = 0;
	int series = 0;
	for (const char *p = text; (p = strstr(p, "fan_total{")); p++, series++)
		fan += value_of(p, "} ");
	assert_int_equal(series, 8); /* no duplicate children */
	assert_int_equal(fan, n);
	free(text);
	metrics_free(m);
}

static void *update_until_stopped(void *arg)
{
	struct shared *s = arg;
	char v[16];
	for (unsigned i = 0; !atomic_load(&s->stop); i++) {
		metric_inc(s->c, V("in"));
		metric_observe(s->h, V("GET"), (double)(i % 100) / 10.0);
		/* Keeps creating children past the limit while renders run. */
		snprintf(v, sizeof v, "x%u", i % 200);
		metric_inc(s->fan, V(v));
		metric_add(s->g, NULL, (i & 1) ? 1 : -1);
		atomic_fetch_add(&s->rounds, 1);
	}
	return NULL;
}

static void render_while_updating(void **state)
{
	(void)state;
	struct metrics *m = metrics_new();
	struct shared s = {
	    .c = metrics_counter(m, "c_total", NULL, V("dir", NULL)),
	    .g = metrics_gauge(m, "g", NULL, NULL),
	    .h = metrics_histogram(m, "h_seconds", NULL, V("method", NULL), metrics_latency_bounds,
				   METRICS_LATENCY_NBOUNDS),
	    .fan = metrics_counter(m, "fan_total", NULL, V("k", NULL)),
	};
	atomic_init(&s.stop, false);
	atomic_init(&s.rounds, 0);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, update_until_stopped, &s), 0);
	/* At least 300 renders, and until the updaters got well past the limit. */
	for (int r = 0; r < 300 || atomic_load(&s.rounds) < 20000; r++) {
		char *text = render(m);
		/* _count comes from the same reads as the +Inf bucket. */
		const char *inf = strstr(text, "le=\"+Inf\"} ");
		if (inf)
			assert_int_equal(value_of(inf, "} "),
					 value_of(text, "h_seconds_count{method=\"GET\"} "));
		free(text);
	}
	atomic_store(&s.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	char *text = render(m);
	assert_non_null(strstr(text, "fan_total{k=\"other\"} "));
	free(text);
	metrics_free(m);
}

/* ---- metrics_http ---- */

static int64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

/* Sends req (n bytes), optionally half-closes, reads to EOF. */
static char *exchange(int port, const char *req, size_t n, int half_close)
{
	int fd = connect_to(port);
	assert_int_equal(send(fd, req, n, MSG_NOSIGNAL), (ssize_t)n);
	if (half_close)
		shutdown(fd, SHUT_WR);
	struct buf b;
	buf_init(&b, 1u << 24);
	char tmp[4096];
	ssize_t r;
	while ((r = recv(fd, tmp, sizeof tmp, 0)) > 0)
		assert_int_equal(buf_append(&b, tmp, (size_t)r, NULL), 0);
	close(fd);
	return buf_steal(&b, NULL);
}

static char *get(int port, const char *req)
{
	return exchange(port, req, strlen(req), 0);
}

static struct metrics *sample_registry(void)
{
	struct metrics *m = metrics_new();
	struct metric *c =
	    metrics_counter(m, "vpl_jail_requests_total", "Requests.", V("method", "status", NULL));
	metric_add(c, V("available", "200"), 7);
	return m;
}

static void http_serves_metrics(void **state)
{
	(void)state;
	struct metrics *m = sample_registry();
	struct err err = {0};
	struct metrics_http *h = metrics_http_start(m, "127.0.0.1", 0, 0, &err);
	assert_non_null(h);
	int port = metrics_http_port(h);
	assert_true(port > 0);

	char *want = render(m);
	char expect[4096];
	snprintf(expect, sizeof expect,
		 "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		 strlen(want), want);
	char *got = get(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
	assert_string_equal(got, expect);
	free(got);
	got = get(port, "GET /metrics?name[]=x HTTP/1.0\n\n");
	assert_string_equal(got, expect);
	free(got);
	got = get(port, "HEAD /metrics HTTP/1.1\r\n\r\n");
	assert_int_equal(strncmp(got, expect, strlen(expect) - strlen(want)), 0);
	assert_int_equal(strlen(got), strlen(expect) - strlen(want));
	free(got);
	free(want);

	const char *nf = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
			 "Content-Length: 10\r\nConnection: close\r\n\r\nNot Found\n";
	const char *bad = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
			  "Content-Length: 12\r\nConnection: close\r\n\r\nBad Request\n";
	const char *const not_found[] = {
	    "GET / HTTP/1.1\r\n\r\n",
	    "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
	    "GET /metricsx HTTP/1.1\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof not_found / sizeof not_found[0]; i++) {
		got = get(port, not_found[i]);
		assert_string_equal(got, nf);
		free(got);
	}
	const char *const malformed[] = {
	    "garbage\r\n\r\n",
	    "GET /metrics\r\n\r\n",
	    "GET /metrics HTTP/2.0\r\n\r\n",
	    "GET  /metrics HTTP/1.1\r\n\r\n",
	    "GET metrics HTTP/1.1\r\n\r\n",
	    "get /metrics HTTP/1.1\r\n\r\n",
	    "GET /met\x01rics HTTP/1.1\r\n\r\n",
	    "GET /m\xc3\xa9trics HTTP/1.1\r\n\r\n",
	    "\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
		got = get(port, malformed[i]);
		assert_string_equal(got, bad);
		free(got);
	}
	/* NUL in the line, a head cut short by EOF, a head over the cap. */
	got = exchange(port, "GET /\0 HTTP/1.1\r\n\r\n", 19, 0);
	assert_string_equal(got, bad);
	free(got);
	got = exchange(port, "GET /metrics HTTP/1.1\r\n", 23, 1);
	assert_string_equal(got, bad);
	free(got);
	char *big = malloc(METRICS_HTTP_MAX_HEAD + 100);
	memset(big, 'A', METRICS_HTTP_MAX_HEAD + 100);
	got = exchange(port, big, METRICS_HTTP_MAX_HEAD + 100, 0);
	assert_string_equal(got, bad);
	free(got);
	free(big);

	/* Still serving, and values are live. */
	metric_inc(metrics_counter(m, "late_total", NULL, NULL), NULL);
	got = get(port, "GET /metrics HTTP/1.1\r\n\r\n");
	assert_non_null(strstr(got, "\r\n\r\n# HELP vpl_jail_requests_total Requests.\n"));
	assert_non_null(strstr(got, "\nlate_total 1\n"));
	free(got);
	metrics_http_stop(h);
	metrics_free(m);
}

static void http_stalled_client_does_not_block(void **state)
{
	(void)state;
	struct metrics *m = sample_registry();
	struct err err = {0};
	struct metrics_http *h = metrics_http_start(m, "127.0.0.1", 0, 0, &err);
	assert_non_null(h);
	int port = metrics_http_port(h);

	/* A client that connects and sends nothing, then one that sends half
	 * a request line and stops: each delays the next scrape by at most the
	 * timeout, and is dropped (reads EOF). */
	for (int round = 0; round < 2; round++) {
		int stalled = connect_to(port);
		if (round == 1)
			assert_int_equal(send(stalled, "GET /met", 8, 0), 8);
		usleep(50 * 1000); /* accepted, the thread waits on it */
		int64_t t0 = ms_now();
		char *got = get(port, "GET /metrics HTTP/1.1\r\n\r\n");
		int64_t took = ms_now() - t0;
		assert_int_equal(strncmp(got, "HTTP/1.1 200 OK\r\n", 17), 0);
		assert_true(took < METRICS_HTTP_TIMEOUT_MS + 1000);
		free(got);
		char c;
		assert_int_equal(recv(stalled, &c, 1, 0), 0);
		close(stalled);
	}
	metrics_http_stop(h);
	metrics_free(m);
}

static void http_stop_interrupts_a_stalled_client(void **state)
{
	(void)state;
	struct metrics *m = sample_registry();
	struct metrics_http *h = metrics_http_start(m, "127.0.0.1", 0, 0, NULL);
	assert_non_null(h);
	int stalled = connect_to(metrics_http_port(h));
	usleep(100 * 1000); /* the thread is now waiting on it */
	int64_t t0 = ms_now();
	metrics_http_stop(h);
	assert_true(ms_now() - t0 < 1000);
	close(stalled);
	/* Nothing listens any more. */
	metrics_free(m);
}

static void http_address_rules(void **state)
{
	(void)state;
	struct metrics *m = sample_registry();
	struct err err = {0};
	const char *const public_addrs[] = {"0.0.0.0", "192.0.2.1",   "10.0.0.1",
					    "::",      "2001:db8::1", "::ffff:192.0.2.1"};
	for (size_t i = 0; i < sizeof public_addrs / sizeof public_addrs[0]; i++) {
		err_clear(&err);
		assert_null(metrics_http_start(m, public_addrs[i], 0, 0, &err));
		assert_int_equal(err.code, EACCES);
		assert_non_null(strstr(err.msg, "non-loopback"));
	}
	const char *const bad_addrs[] = {"localhost", "", "127.0.0.1:9", "1.2.3"};
	for (size_t i = 0; i < sizeof bad_addrs / sizeof bad_addrs[0]; i++) {
		err_clear(&err);
		assert_null(metrics_http_start(m, bad_addrs[i], 0, 0, &err));
		assert_int_equal(err.code, EINVAL);
	}
	assert_null(metrics_http_start(m, "127.0.0.1", 65536, 0, &err));
	assert_null(metrics_http_start(m, "127.0.0.1", -1, 0, &err));

	/* allow_public lifts the rule: this one then fails only at bind. */
	err_clear(&err);
	assert_null(metrics_http_start(m, "192.0.2.1", 0, 1, &err));
	assert_int_not_equal(err.code, EACCES);
	assert_non_null(strstr(err.msg, "bind"));

	/* The whole 127/8 and its v4-mapped form count as loopback. */
	struct metrics_http *h = metrics_http_start(m, "::ffff:127.0.0.1", 0, 0, &err);
	assert_non_null(h);
	char *got = get(metrics_http_port(h), "GET /metrics HTTP/1.1\r\n\r\n");
	assert_int_equal(strncmp(got, "HTTP/1.1 200 OK\r\n", 17), 0);
	free(got);
	metrics_http_stop(h);

	/* A port in use is an error, not a silent second listener. */
	h = metrics_http_start(m, "127.0.0.1", 0, 0, &err);
	assert_non_null(h);
	assert_null(metrics_http_start(m, "127.0.0.1", metrics_http_port(h), 0, &err));
	assert_int_equal(err.code, EADDRINUSE);
	metrics_http_stop(h);

	/* ::1 when the host has IPv6. */
	err_clear(&err);
	h = metrics_http_start(m, "::1", 0, 0, &err);
	if (h)
		metrics_http_stop(h);
	else
		assert_true(err.code == EADDRNOTAVAIL || err.code == EAFNOSUPPORT);
	metrics_http_stop(NULL);
	metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(counters_and_gauges_exact),
	    cmocka_unit_test(histograms_exact_and_edges),
	    cmocka_unit_test(escaping),
	    cmocka_unit_test(child_limit_goes_to_other),
	    cmocka_unit_test(bad_registrations),
	    cmocka_unit_test(concurrent_updates_are_exact),
	    cmocka_unit_test(render_while_updating),
	    cmocka_unit_test(http_serves_metrics),
	    cmocka_unit_test(http_stalled_client_does_not_block),
	    cmocka_unit_test(http_stop_interrupts_a_stalled_client),
	    cmocka_unit_test(http_address_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
