#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fail2ban.h"
#include "http_handler.h"
#include "http_reply.h"
#include "httphead.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "netacl.h"
#include "route.h"
#include "rpc.h"
#include "rpc_call.h"
#include "rpc_result.h"
#include "tlsfiles.h"
#include "workers.h"
#include "wsframe.h"

#define WRITE_CHUNK (64 * 1024)
#define MAX_TRIES   3 /* workers tried for one new task */
#define IP_BUCKETS  1024
#define AUTH_HEADER "X-Vplcell-Auth"
#define TICK_US	    (500 * 1000)

/* Per-IP open connections, for MAX_CONNECTIONS_PER_IP. */
struct ip_count {
	struct ip_count *next;
	unsigned char addr[16];
	int n;
};

struct proxy {
	const struct proxy_config *cfg;
	struct lws_context *ctx;
	struct lws_vhost *plain, *secure, *backs;
	struct workers *workers;
	struct route_key rk;
	struct f2b *f2b;
	char *auth_line; /* "X-Vplcell-Auth: <secret>\r\n" */
	const char *worker_urlpath;
	struct ip_count *ips[IP_BUCKETS];
	struct metrics *metrics;
	struct metrics_http *metrics_http;
	struct metric *m_requests, *m_latency, *m_ws, *m_bytes, *m_workers_up, *m_conns;
	struct metric_child *m_bytes_up, *m_bytes_down, *m_ws_monitor, *m_ws_execute, *m_ws_web;
	lws_sorted_usec_list_t gauges;
};

enum front_state { F_HEAD, F_BODY, F_WAIT, F_TUNNEL, F_REPLY };
enum kind { K_RPC, K_MONITOR, K_EXECUTE, K_WEB };

struct back;

struct front {
	struct proxy *p;
	struct lws *wsi;
	struct sockaddr_storage peer;	/* the socket's */
	struct sockaddr_storage client; /* peer, or whom a trusted proxy forwards */
	char peer_text[64];
	bool tls, counted;
	enum front_state st;
	struct buf in; /* the head, then an RPC's body */
	struct httphead head;
	size_t body_off; /* where the body starts in `in` */
	struct buf out;	 /* to the client */
	size_t out_off;
	bool close_after, rx_paused;
	struct back *back;
	enum kind kind;
	int64_t deadline_ms, start_ms;
	int64_t body_end_ms; /* F_BODY: the whole body by then, however it trickles */
	/* RPC */
	struct rpc_request rq;
	bool have_rq, new_task, routed, rerouted;
	char method[16];
	struct worker_addr tried[MAX_TRIES];
	size_t ntried;
	struct buf fwd; /* the request as sent to the worker (for a retry) */
	struct metric_child *ws_gauge;
};

struct back {
	struct proxy *p;
	struct lws *wsi;
	struct front *front; /* NULL once the client left */
	struct worker_addr addr;
	struct buf out; /* to the worker */
	size_t out_off;
	struct buf resp; /* RPC: the whole answer; tunnel: the head until rewritten */
	bool connected, got_bytes, failed, rx_paused, head_done, inflight, opening;
	enum kind kind;
	struct wsframe_rw frames; /* monitor: worker -> browser rewriting */
	struct route_target target;
};

static volatile sig_atomic_t g_stop, g_reload;
static struct lws_context *g_ctx;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		g_reload = 1;
	else
		g_stop = 1;
	if (g_ctx)
		lws_cancel_service(g_ctx);
}

/* ---- per-IP connection counts ---- */

static void ip_key(const struct sockaddr_storage *ss, unsigned char key[16])
{
	memset(key, 0, 16);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &a->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	}
}

static struct ip_count **ip_slot(struct proxy *p, const unsigned char key[16])
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	struct ip_count **pp = &p->ips[h % IP_BUCKETS];
	while (*pp && memcmp((*pp)->addr, key, 16) != 0)
		pp = &(*pp)->next;
	return pp;
}

/* Counts a new connection; false when the address already has its maximum. */
static bool ip_enter(struct proxy *p, const struct sockaddr_storage *ss)
{
	unsigned char key[16];
	ip_key(ss, key);
	struct ip_count **pp = ip_slot(p, key);
	if (!*pp) {
		struct ip_count *c = calloc(1, sizeof *c);
		if (!c)
			return false;
		memcpy(c->addr, key, 16);
		*pp = c;
	}
	if ((*pp)->n >= p->cfg->max_conns_per_ip)
		return false;
	(*pp)->n++;
	return true;
}

static void ip_leave(struct proxy *p, const struct sockaddr_storage *ss)
{
	unsigned char key[16];
	ip_key(ss, key);
	struct ip_count **pp = ip_slot(p, key);
	if (*pp && --(*pp)->n <= 0) {
		struct ip_count *c = *pp;
		*pp = c->next;
		free(c);
	}
}

/* ---- writing ---- */

static unsigned char stage[LWS_PRE + WRITE_CHUNK];

/* Writes some of b[*off..] to wsi; returns -1 when the connection is broken. */
static int write_from(struct lws *wsi, struct buf *b, size_t *off)
{
	size_t left = b->len - *off;
	if (left == 0)
		return 0;
	size_t n = left > WRITE_CHUNK ? WRITE_CHUNK : left;
	memcpy(stage + LWS_PRE, b->data + *off, n);
	if (lws_write(wsi, stage + LWS_PRE, n, LWS_WRITE_RAW) < (int)n)
		return -1;
	*off += n;
	if (*off == b->len) {
		buf_reset(b);
		*off = 0;
	} else if (*off >= PROXY_OUT_HIGH) {
		memmove(b->data, b->data + *off, b->len - *off);
		b->len -= *off;
		*off = 0;
	}
	return 0;
}

static size_t pending(const struct buf *b, size_t off)
{
	return b->len - off;
}

static void kill_wsi(struct lws *wsi)
{
	if (wsi)
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* ---- replies of the proxy itself ---- */

static void count_request(struct front *f, int status)
{
	struct proxy *p = f->p;
	char code[8];
	snprintf(code, sizeof code, "%d", status);
	const char *m = f->method[0] ? f->method : f->kind == K_RPC ? "http" : "websocket";
	const char *v[] = {m, code, NULL};
	metric_inc(p->m_requests, v);
	const char *lv[] = {m, NULL};
	metric_observe(p->m_latency, lv, (double)(now_ms() - f->start_ms) / 1000.0);
}

/* Queues a complete response and closes after it; the status for FAIL2BAN and metrics. */
static void reply_bytes(struct front *f, int status)
{
	struct proxy *p = f->p;
	if (p->f2b)
		f2b_note(p->f2b, (struct sockaddr *)&f->client, status >= 400, now_ms());
	count_request(f, status);
	f->st = F_REPLY;
	f->close_after = true;
	lws_callback_on_writable(f->wsi);
}

static void reply_error(struct front *f, int status, const char *detail)
{
	struct http_reply_opts o = {.tls = f->tls, .hsts_max_age = f->p->cfg->hsts_max_age};
	buf_reset(&f->out);
	f->out_off = 0;
	http_reply_error(&f->out, &o, status, detail, NULL);
	log_info("%s %s from %s: %d %s", f->method[0] ? f->method : "http",
		 f->kind == K_RPC ? "request" : "connection", f->peer_text, status, detail);
	reply_bytes(f, status);
}

/* ---- talking to a worker ---- */

static void front_from_back(struct front *f, struct back *b);
static void back_done(struct back *b);

static struct back *back_open(struct front *f, struct worker_addr a, enum kind kind)
{
	struct proxy *p = f->p;
	struct back *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->p = p;
	b->front = f;
	b->addr = a;
	b->kind = kind;
	buf_init(&b->out, (size_t)p->cfg->request_max_size + (1u << 20));
	buf_init(&b->resp, kind == K_RPC ? (size_t)PROXY_RESPONSE_MAX : HTTPHEAD_MAX_BYTES);
	b->target = (struct route_target){.key = &p->rk, .ip_be = a.ip_be, .port = a.port};
	wsframe_rw_init(&b->frames, route_rewrite_monitor, &b->target);
	f->back = b;
	char ip[INET_ADDRSTRLEN];
	struct in_addr in = {.s_addr = a.ip_be};
	inet_ntop(AF_INET, &in, ip, sizeof ip);
	struct lws_client_connect_info ci;
	memset(&ci, 0, sizeof ci);
	ci.context = p->ctx;
	ci.vhost = p->backs;
	ci.address = ip;
	ci.port = a.port;
	ci.host = ip;
	ci.origin = ip;
	ci.path = "/";
	ci.method = "RAW";
	ci.protocol = "vplcell-back";
	ci.local_protocol_name = "vplcell-back";
	ci.opaque_user_data = b;
	ci.pwsi = &b->wsi;
	/* A failure may come through the callback during the call: it only marks b then. */
	b->opening = true;
	struct lws *w = lws_client_connect_via_info(&ci);
	b->opening = false;
	if (!w || b->failed) {
		if (w)
			lws_set_opaque_user_data(w, NULL);
		b->wsi = NULL;
		b->failed = true;
		back_done(b);
		return NULL;
	}
	return b;
}

static void back_free(struct back *b)
{
	if (b->inflight)
		workers_inflight(b->p->workers, b->addr, -1);
	buf_free(&b->out);
	buf_free(&b->resp);
	wsframe_rw_free(&b->frames);
	free(b);
}

/* The worker connection ended (closed, failed, or never opened): the front decides. */
static void back_done(struct back *b)
{
	struct front *f = b->front;
	if (f) {
		f->back = NULL;
		b->front = NULL;
		if (!b->connected || b->failed)
			workers_failed(b->p->workers, b->addr);
		/* The front reads what it needs from b before b goes (it may open another). */
		front_from_back(f, b);
	}
	back_free(b);
}

/* ---- routing ---- */

/* A routed ticket names a worker of the current set: its plain ticket and address. */
static bool route_of(struct proxy *p, const char *t, size_t len,
		     char plain[ROUTE_TICKET_DIGITS + 1], struct worker_addr *a)
{
	uint32_t ip;
	uint16_t port;
	if (route_strip(&p->rk, t, len, plain, &ip, &port) < 0)
		return false;
	*a = (struct worker_addr){.ip_be = ip, .port = port};
	/* A worker known to be down is not waited for: its tasks are lost. */
	return workers_known(p->workers, *a) && workers_up(p->workers, *a);
}

static const char *const drop_client[] = {AUTH_HEADER, "X-Forwarded-For", NULL};
static const char *const drop_rpc[] = {AUTH_HEADER, "X-Forwarded-For", "Content-Length", "Expect",
				       NULL};

/* Our own lines for the worker: who the client is, and that we are the proxy. */
static int add_lines(struct front *f, struct buf *lines, long long content_length)
{
	struct err e;
	char ip[64];
	http_peer_text((struct sockaddr *)&f->client, ip, sizeof ip);
	if (content_length >= 0 &&
	    buf_printf(lines, &e, "Content-Length: %lld\r\n", content_length) < 0)
		return -1;
	return buf_printf(lines, &e, "X-Forwarded-For: %s\r\n%s", ip, f->p->auth_line);
}

/* Opens a tunnel to worker a: the client's head goes out edited, then everything as is. */
static void start_tunnel(struct front *f, struct worker_addr a, const char *target, size_t tlen,
			 const char *cookie, size_t clen)
{
	struct proxy *p = f->p;
	struct buf lines;
	buf_init(&lines, 4096);
	struct httphead_edit e = {.target = target,
				  .target_len = tlen,
				  .cookie_name = cookie ? "VPL_web" : NULL,
				  .cookie_value = cookie,
				  .cookie_value_len = clen,
				  .drop = drop_client};
	struct err err;
	struct back *b = NULL;
	f->st = F_TUNNEL;
	if (add_lines(f, &lines, -1) < 0)
		goto fail;
	e.add = lines.data;
	b = back_open(f, a, f->kind);
	if (!b)
		return; /* back_done answered */
	if (httphead_write(&f->head, &e, &b->out, &err) < 0 ||
	    buf_append(&b->out, f->in.data + f->head.head_len, f->in.len - f->head.head_len, &err) <
		0) {
		buf_free(&lines);
		f->back = NULL;
		b->front = NULL;
		kill_wsi(b->wsi);
		reply_error(f, 500, "Internal Server Error");
		return;
	}
	buf_reset(&f->in);
	buf_free(&lines);
	f->ws_gauge = f->kind == K_MONITOR   ? p->m_ws_monitor
		      : f->kind == K_EXECUTE ? p->m_ws_execute
					     : p->m_ws_web;
	metric_child_add(f->ws_gauge, 1);
	return;
fail:
	buf_free(&lines);
	reply_error(f, 500, "Internal Server Error");
}

/* Sends f->fwd (an RPC) to a worker: `to` when given (a ticket's worker), else the least
 * loaded one not tried yet. */
static void send_rpc(struct front *f, const struct worker_addr *to)
{
	struct proxy *p = f->p;
	struct worker_addr a;
	if (to) {
		a = *to;
	} else if (workers_pick(p->workers, f->tried, f->ntried, &a) < 0) {
		reply_error(f, 503, f->ntried ? "No worker answered" : "No worker available");
		return;
	}
	if (f->ntried < MAX_TRIES)
		f->tried[f->ntried++] = a;
	f->st = F_WAIT;
	f->deadline_ms = now_ms() + PROXY_WAIT_S * 1000;
	struct back *b = back_open(f, a, K_RPC);
	if (!b)
		return;
	struct err e;
	if (buf_append(&b->out, f->fwd.data, f->fwd.len, &e) < 0) {
		f->back = NULL;
		b->front = NULL;
		kill_wsi(b->wsi);
		reply_error(f, 500, "Internal Server Error");
		return;
	}
	if (f->new_task) {
		workers_inflight(p->workers, a, 1);
		b->inflight = true;
	}
}

/* Builds f->fwd: the client's head for the worker's URLPATH and `body`. */
static int build_rpc(struct front *f, const char *body, size_t len)
{
	struct buf lines;
	buf_init(&lines, 4096);
	struct err e;
	const char *u = f->p->worker_urlpath;
	struct httphead_edit ed = {.target = u, .target_len = strlen(u), .drop = drop_rpc};
	buf_free(&f->fwd);
	buf_init(&f->fwd, len + HTTPHEAD_MAX_BYTES + 4096);
	int r = add_lines(f, &lines, (long long)len);
	ed.add = lines.data;
	if (r == 0)
		r = httphead_write(&f->head, &ed, &f->fwd, &e);
	if (r == 0)
		r = buf_append(&f->fwd, body, len, &e);
	buf_free(&lines);
	return r;
}

static void answer_available(struct front *f)
{
	struct proxy *p = f->p;
	struct workers_summary s;
	workers_summary(p->workers, &s);
	const char *status = s.ready ? "ready" : s.up && s.offline == s.up ? "offline" : "busy";
	struct rpc_member m[] = {
	    {.name = "status", .type = RPC_T_STR, .s = status, .slen = strlen(status)},
	    {.name = "load", .type = RPC_T_INT, .i = s.load},
	    {.name = "maxtime", .type = RPC_T_INT, .i = s.maxtime},
	    {.name = "maxfilesize", .type = RPC_T_INT, .i = s.maxfilesize},
	    {.name = "maxmemory", .type = RPC_T_INT, .i = s.maxmemory},
	    {.name = "maxprocesses", .type = RPC_T_INT, .i = s.maxprocesses},
	    {.name = "secureport", .type = RPC_T_INT, .i = p->cfg->public_secure_port},
	};
	struct buf body;
	buf_init(&body, 1 << 16);
	struct err e;
	struct http_reply_opts o = {.tls = f->tls, .hsts_max_age = p->cfg->hsts_max_age};
	buf_reset(&f->out);
	if (rpc_encode(&body, f->rq.format, f->rq.id, m, sizeof m / sizeof m[0], &e) < 0 ||
	    http_reply(&f->out, &o, 200, NULL, body.data, body.len, &e) < 0) {
		buf_free(&body);
		reply_error(f, 500, "Internal Server Error");
		return;
	}
	buf_free(&body);
	reply_bytes(f, 200);
}

/* The whole body is in: decide where it goes. */
static void rpc_body_done(struct front *f)
{
	struct proxy *p = f->p;
	const char *body = f->in.data + f->body_off;
	size_t len = f->in.len - f->body_off;
	struct err e;
	if (rpc_parse(body, len, &f->rq, &e) < 0) {
		/* The workers answer malformed requests in the protocol's exact words. */
		snprintf(f->method, sizeof f->method, "invalid");
		if (build_rpc(f, body, len) < 0)
			return reply_error(f, 500, "Internal Server Error");
		return send_rpc(f, NULL);
	}
	f->have_rq = true;
	static const char *const known[] = {"available", "request", "directrun", "getresult",
					    "running",	 "stop",    "update"};
	snprintf(f->method, sizeof f->method, "other");
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strcmp(f->rq.method, known[i]) == 0)
			snprintf(f->method, sizeof f->method, "%s", known[i]);
	if (strcmp(f->method, "available") == 0)
		return answer_available(f);
	const char *t;
	size_t tlen;
	char plain[ROUTE_TICKET_DIGITS + 1];
	struct worker_addr a;
	if (strcmp(f->method, "request") != 0 && strcmp(f->method, "directrun") != 0 &&
	    rpc_get_str(&f->rq, "adminticket", &t, &tlen, NULL) == 1 &&
	    route_of(p, t, tlen, plain, &a)) {
		/* The worker gets its own ticket back, in the client's format. */
		json_object_set_new(f->rq.params, "adminticket", json_string(plain));
		struct buf enc;
		buf_init(&enc, len + 4096);
		int r =
		    rpc_encode_call(&enc, f->rq.format, f->rq.method, f->rq.id, f->rq.params, &e);
		if (r == 0)
			r = build_rpc(f, enc.data, enc.len);
		buf_free(&enc);
		if (r < 0)
			return reply_error(f, 500, "Internal Server Error");
		buf_free(&f->in); /* the original body is not needed any more */
		f->routed = true;
		return send_rpc(f, &a);
	}
	/* New tasks go to the least loaded worker; an unroutable ticket goes anywhere: every
	 * worker answers it as the reference answers an unknown ticket. */
	f->new_task = strcmp(f->method, "request") == 0 || strcmp(f->method, "directrun") == 0;
	if (build_rpc(f, body, len) < 0)
		return reply_error(f, 500, "Internal Server Error");
	buf_free(&f->in);
	send_rpc(f, NULL);
}

/* A new task's answer: tickets get the route of the worker, ports become ours. */
static int rewrite_task_answer(struct front *f, struct back *b, const struct httphead *h,
			       const char *body, size_t len, const char *extra, struct buf *out)
{
	struct proxy *p = f->p;
	struct rpc_result r;
	struct err e;
	if (rpc_parse_result(body, len, &r, &e) < 0)
		return -1;
	static const char *const tickets[] = {"adminticket", "monitorticket", "executionticket"};
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < sizeof tickets / sizeof tickets[0]; i++) {
		const struct rpc_member *m = rpc_result_get(&r, tickets[i]);
		char routed[ROUTE_TICKET_LEN + 1];
		if (!m || m->type != RPC_T_STR || m->slen != ROUTE_TICKET_DIGITS)
			continue;
		if (route_append(&p->rk, m->s, m->slen, b->addr.ip_be, b->addr.port, routed, &e) <
			0 ||
		    rpc_result_set_str(&r, tickets[i], routed, ROUTE_TICKET_LEN, &e) < 0)
			rc = -1;
	}
	if (rc == 0 && (rpc_result_set_int(&r, "port", p->cfg->public_port, &e) < 0 ||
			rpc_result_set_int(&r, "secureport", p->cfg->public_secure_port, &e) < 0))
		rc = -1;
	struct buf nb;
	buf_init(&nb, (size_t)PROXY_RESPONSE_MAX);
	if (rc == 0)
		rc = rpc_encode(&nb, r.format, r.id, r.members, r.n, &e);
	rpc_result_free(&r);
	char cl[192];
	snprintf(cl, sizeof cl, "Content-Length: %zu\r\n%s", nb.len, extra);
	static const char *const drop[] = {"Content-Length", NULL};
	struct httphead_edit ed = {.drop = drop, .add = cl};
	if (rc == 0)
		rc = httphead_write(h, &ed, out, &e);
	if (rc == 0)
		rc = buf_append(out, nb.data, nb.len, &e);
	buf_free(&nb);
	return rc;
}

/* An RPC's worker connection ended: answer the client from what came back. */
static void rpc_back_done(struct front *f, struct back *b)
{
	struct proxy *p = f->p;
	struct httphead h;
	httphead_init(&h);
	struct err e;
	int r = b->resp.len ? httphead_parse(&h, true, b->resp.data, b->resp.len, &e) : 0;
	bool retry = f->new_task && (!b->got_bytes || (r == 1 && h.status == 503));
	if (retry && f->ntried < MAX_TRIES) {
		httphead_free(&h);
		if (b->got_bytes)
			log_info("%s from %s: worker busy, trying another", f->method,
				 f->peer_text);
		return send_rpc(f, NULL);
	}
	if (r != 1) {
		httphead_free(&h);
		if (!b->got_bytes && f->routed && !f->rerouted) {
			/* The ticket's worker is gone, and its tasks with it: any other worker
			 * answers as for an unknown ticket (running 0, getresult "Ticket not
			 * found", stop 1), which is what the plugin must hear. */
			log_warn("%s from %s: worker %s unreachable: its task is lost", f->method,
				 f->peer_text,
				 worker_addr_fmt(b->addr, (char[WORKER_ADDR_STRLEN]){0}));
			f->rerouted = true;
			return send_rpc(f, NULL);
		}
		return reply_error(f, 502, "Bad Gateway");
	}
	buf_reset(&f->out);
	f->out_off = 0;
	const char *body = b->resp.data + h.head_len;
	size_t len = b->resp.len - h.head_len;
	if (h.content_length >= 0 && (size_t)h.content_length < len)
		len = (size_t)h.content_length;
	/* The worker spoke plain HTTP to us; the client's TLS connection gets HSTS. */
	char hsts[96] = "";
	if (f->tls && p->cfg->hsts_max_age >= 0 && !httphead_get(&h, "Strict-Transport-Security"))
		snprintf(hsts, sizeof hsts, "Strict-Transport-Security: max-age=%lld\r\n",
			 p->cfg->hsts_max_age);
	int rc;
	if (f->new_task && h.status == 200) {
		rc = rewrite_task_answer(f, b, &h, body, len, hsts, &f->out);
	} else {
		struct httphead_edit ed = {.add = hsts};
		rc = httphead_write(&h, &ed, &f->out, &e);
		if (rc == 0)
			rc = buf_append(&f->out, body, len, &e);
	}
	int status = h.status;
	httphead_free(&h);
	if (rc < 0)
		return reply_error(f, 502, "Bad Gateway");
	if (f->new_task && status == 200)
		b->inflight = false; /* created: counted until the next poll includes it */
	log_info("rpc %s from=%s worker=%s status=%d ms=%lld", f->method, f->peer_text,
		 worker_addr_fmt(b->addr, (char[WORKER_ADDR_STRLEN]){0}), status,
		 (long long)(now_ms() - f->start_ms));
	reply_bytes(f, status);
}

/* Called when f's worker connection ended (b still readable). */
static void front_from_back(struct front *f, struct back *b)
{
	if (f->st == F_WAIT)
		return rpc_back_done(f, b);
	if (f->st != F_TUNNEL)
		return;
	if (!b->got_bytes) {
		/* Nothing came back: as the worker itself answers a bad ticket. */
		if (f->kind == K_WEB)
			return reply_error(f, 404, "Not found");
		return reply_error(f, 500, "Bad ticket");
	}
	/* The worker closed: what it sent goes out, then the client is closed too. */
	f->close_after = true;
	lws_callback_on_writable(f->wsi);
}

/* ---- the client side ---- */

static bool kind_of(const char *suffix, size_t n, enum kind *k)
{
	static const struct {
		const char *s;
		enum kind k;
	} kinds[] = {{"/monitor", K_MONITOR}, {"/execute", K_EXECUTE}, {"/httpPassthrough", K_WEB}};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (n == strlen(kinds[i].s) && memcmp(suffix, kinds[i].s, n) == 0) {
			*k = kinds[i].k;
			return true;
		}
	return false;
}

static bool trusted(struct proxy *p, const struct sockaddr_storage *ss)
{
	return p->cfg->trusted_proxies.count &&
	       netacl_allows(&p->cfg->trusted_proxies, (const struct sockaddr *)ss);
}

/* Behind a reverse proxy of the site's own (TRUSTED_PROXIES), the client is the last
 * X-Forwarded-For entry: that is who TASK_ONLY_FROM, FAIL2BAN and the logs are about. */
static void forwarded_client(struct front *f)
{
	const struct httphead_field *x = httphead_get(&f->head, "X-Forwarded-For");
	if (!x || !trusted(f->p, &f->peer) ||
	    netacl_forwarded_for(x->value, x->value_len, &f->client) < 0)
		return;
	http_peer_text((struct sockaddr *)&f->client, f->peer_text, sizeof f->peer_text);
}

/* The head is complete: answer, tunnel, or read an RPC body. */
static void head_done(struct front *f)
{
	struct proxy *p = f->p;
	struct httphead *h = &f->head;
	forwarded_client(f);
	const char *q = memchr(h->target, '?', h->target_len);
	size_t plen = q ? (size_t)(q - h->target) : h->target_len;
	char plain[ROUTE_TICKET_DIGITS + 1];
	struct worker_addr a;
	/* §1.5: a live VPL_web cookie wins over everything else. */
	size_t clen;
	const char *cookie = httphead_cookie(h, "VPL_web", &clen);
	if (cookie && route_of(p, cookie, clen, plain, &a)) {
		f->kind = K_WEB;
		return start_tunnel(f, a, NULL, 0, plain, ROUTE_TICKET_DIGITS);
	}
	bool get = h->method_len == 3 && memcmp(h->method, "GET", 3) == 0;
	bool head = h->method_len == 4 && memcmp(h->method, "HEAD", 4) == 0;
	bool post = h->method_len == 4 && memcmp(h->method, "POST", 4) == 0;
	/* /<ticket>/monitor|execute|httpPassthrough */
	const char *slash = plen > 1 ? memchr(h->target + 1, '/', plen - 1) : NULL;
	enum kind k;
	if (get && slash && kind_of(slash, (size_t)(h->target + plen - slash), &k)) {
		f->kind = k;
		const char *t = h->target + 1;
		size_t tlen = (size_t)(slash - t);
		if (!route_of(p, t, tlen, plain, &a))
			return reply_error(f, k == K_WEB ? 404 : 500,
					   k == K_WEB ? "Not found" : "Bad ticket");
		char target[512];
		int n = snprintf(target, sizeof target, "/%s%.*s", plain,
				 (int)(h->target + h->target_len - slash), slash);
		if (n < 0 || (size_t)n >= sizeof target)
			return reply_error(f, 400, "Bad Request");
		return start_tunnel(f, a, target, (size_t)n, NULL, 0);
	}
	if (get || head) {
		struct http_reply_opts o = {
		    .tls = f->tls, .hsts_max_age = p->cfg->hsts_max_age, .head_only = head};
		if (http_fixed_page(h->target, plen, &o, &f->out))
			return reply_bytes(f, 200);
		return reply_error(f, 404, "Not found");
	}
	if (!post) {
		snprintf(f->method, sizeof f->method, "other");
		return reply_error(f, 400, "Http(s) Unsupported METHOD");
	}
	if (!netacl_allows(&p->cfg->task_only_from, (struct sockaddr *)&f->client))
		return reply_error(f, 400, "Client not allowed");
	if (!http_urlpath_matches(p->cfg->urlpath, h->target, plen))
		return reply_error(f, 404, "http request URL path not found");
	if (h->chunked)
		return reply_error(f, 501, "Not Implemented");
	if (h->content_length < 0)
		return reply_error(f, 400, "Content-Length required");
	if (h->content_length > p->cfg->request_max_size)
		return reply_error(f, 413, "http Request size too large");
	f->kind = K_RPC;
	f->st = F_BODY;
	f->body_off = h->head_len;
	f->in.max = h->head_len + (size_t)h->content_length;
	f->deadline_ms = now_ms() + PROXY_BODY_IDLE_S * 1000;
	/* A byte every few seconds never trips the idle limit: bound the whole body too, or a
	 * slow client holds the connection for as long as its Content-Length allows. */
	f->body_end_ms = now_ms() + (PROXY_BODY_BASE_S + h->content_length / (1 << 20)) * 1000;
	if (h->expect_continue) {
		struct err e;
		buf_puts(&f->out, "HTTP/1.1 100 Continue\r\n\r\n", &e);
		lws_callback_on_writable(f->wsi);
	}
	if (f->in.len - f->body_off >= (size_t)h->content_length)
		rpc_body_done(f);
}

static void front_rx(struct front *f, const char *in, size_t len)
{
	struct proxy *p = f->p;
	struct err e;
	switch (f->st) {
	case F_HEAD: {
		if (buf_append(&f->in, in, len, &e) < 0)
			return reply_error(f, 413, "Http headers too large");
		int r = httphead_parse(&f->head, false, f->in.data, f->in.len, &e);
		if (r < 0)
			return reply_error(f, e.code >= 400 && e.code < 600 ? e.code : 400, e.msg);
		if (r == 1) {
			/* A body may come after the head: let the buffer take it. */
			f->in.max = HTTPHEAD_MAX_BYTES + (size_t)p->cfg->request_max_size;
			head_done(f);
		}
		return;
	}
	case F_BODY:
		f->deadline_ms = now_ms() + PROXY_BODY_IDLE_S * 1000;
		if (f->deadline_ms > f->body_end_ms)
			f->deadline_ms = f->body_end_ms;
		if (buf_append(&f->in, in, len, &e) < 0)
			return reply_error(f, 413, "http Request size too large");
		if (f->in.len - f->body_off >= (size_t)f->head.content_length)
			rpc_body_done(f);
		return;
	case F_TUNNEL: {
		struct back *b = f->back;
		if (!b)
			return;
		metric_child_add(p->m_bytes_up, (double)len);
		if (buf_append(&b->out, in, len, &e) < 0) {
			kill_wsi(f->wsi);
			return;
		}
		if (b->connected)
			lws_callback_on_writable(b->wsi);
		if (pending(&b->out, b->out_off) > PROXY_OUT_HIGH && !f->rx_paused) {
			f->rx_paused = true;
			lws_rx_flow_control(f->wsi, 0);
		}
		return;
	}
	case F_WAIT:
	case F_REPLY:
		return; /* one request per connection: later bytes are ignored */
	}
}

static void front_free(struct front *f)
{
	struct proxy *p = f->p;
	if (f->back) {
		f->back->front = NULL;
		kill_wsi(f->back->wsi);
		f->back = NULL;
	}
	if (f->ws_gauge)
		metric_child_add(f->ws_gauge, -1);
	if (f->counted)
		ip_leave(p, &f->peer);
	metric_add(p->m_conns, NULL, -1);
	httphead_free(&f->head);
	if (f->have_rq)
		rpc_request_free(&f->rq);
	buf_free(&f->in);
	buf_free(&f->out);
	buf_free(&f->fwd);
	free(f);
}

static int front_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct proxy *p = lws_context_user(lws_get_context(wsi));
	struct front *f = lws_get_opaque_user_data(wsi);
	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT: {
		f = calloc(1, sizeof *f);
		if (!f)
			return -1;
		f->p = p;
		f->wsi = wsi;
		f->tls = lws_is_ssl(wsi);
		f->start_ms = now_ms();
		f->deadline_ms = f->start_ms + PROXY_HEAD_S * 1000;
		buf_init(&f->in, HTTPHEAD_MAX_BYTES);
		buf_init(&f->out, (size_t)PROXY_RESPONSE_MAX + (1u << 20));
		buf_init(&f->fwd, 0);
		httphead_init(&f->head);
		lws_set_opaque_user_data(wsi, f);
		metric_add(p->m_conns, NULL, 1);
		socklen_t sl = sizeof f->peer;
		int fd = lws_get_socket_fd(wsi);
		if (fd < 0 || getpeername(fd, (struct sockaddr *)&f->peer, &sl) != 0)
			return -1;
		http_peer_text((struct sockaddr *)&f->peer, f->peer_text, sizeof f->peer_text);
		f->client = f->peer;
		if (!trusted(p, &f->peer) && !ip_enter(p, &f->peer)) {
			log_warn("%s: more than %d connections from one address: refused",
				 f->peer_text, p->cfg->max_conns_per_ip);
			return -1;
		}
		f->counted = !trusted(p, &f->peer);
		lws_set_timer_usecs(wsi, TICK_US);
		return 0;
	}
	case LWS_CALLBACK_RAW_RX:
		/* lws's own handshake timeout must not end a long WebSocket; our timer
		 * bounds the head and the body. */
		lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
		if (f)
			front_rx(f, in, len);
		return 0;
	case LWS_CALLBACK_RAW_WRITEABLE: {
		if (!f)
			return -1;
		if (write_from(wsi, &f->out, &f->out_off) < 0)
			return -1;
		size_t left = pending(&f->out, f->out_off);
		struct back *b = f->back;
		if (b && b->rx_paused && b->wsi && left < PROXY_OUT_LOW) {
			b->rx_paused = false;
			lws_rx_flow_control(b->wsi, 1);
		}
		if (left) {
			lws_callback_on_writable(wsi);
			return 0;
		}
		return f->close_after ? -1 : 0;
	}
	case LWS_CALLBACK_TIMER:
		if (!f)
			return 0;
		if ((f->st == F_HEAD || f->st == F_BODY) && now_ms() > f->deadline_ms) {
			if (f->st == F_HEAD && f->in.len == 0)
				return -1; /* nothing said: nothing to answer */
			reply_error(f, 408, "Request Time-out");
			return 0;
		}
		if (f->st == F_WAIT && now_ms() > f->deadline_ms) {
			if (f->back) {
				f->back->front = NULL;
				kill_wsi(f->back->wsi);
				f->back = NULL;
			}
			reply_error(f, 504, "Gateway Time-out");
			return 0;
		}
		if (f->st == F_HEAD || f->st == F_BODY || f->st == F_WAIT)
			lws_set_timer_usecs(wsi, TICK_US);
		return 0;
	case LWS_CALLBACK_RAW_CLOSE:
		if (f) {
			lws_set_opaque_user_data(wsi, NULL);
			front_free(f);
		}
		return 0;
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION: {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = (int)(intptr_t)in;
		if (p->f2b && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 &&
		    !trusted(p, &ss) && !f2b_allows(p->f2b, (struct sockaddr *)&ss, now_ms())) {
			char peer[64];
			http_peer_text((struct sockaddr *)&ss, peer, sizeof peer);
			log_warn("FAIL2BAN: refusing connection from %s", peer);
			return 1;
		}
		return 0;
	}
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		SSL_CTX_set_min_proto_version((SSL_CTX *)user, TLS1_2_VERSION);
		return 0;
	default:
		return 0;
	}
}

/* ---- the worker side ---- */

/* Bytes from the worker to the client, rewritten where this kind of tunnel needs it. */
static int back_to_front(struct back *b, struct front *f, const char *in, size_t len)
{
	struct proxy *p = b->p;
	struct err e;
	metric_child_add(p->m_bytes_down, (double)len);
	if (b->head_done && b->kind == K_MONITOR)
		return wsframe_rw_feed(&b->frames, in, len, &f->out, &e);
	if (b->head_done || b->kind == K_EXECUTE)
		return buf_append(&f->out, in, len, &e);
	/* The worker's response head comes first: a web app's may set VPL_web, which must
	 * come back routable; after a monitor's 101, frames follow. */
	if (buf_append(&b->resp, in, len, &e) < 0)
		return -1;
	struct httphead h;
	httphead_init(&h);
	int r = httphead_parse(&h, true, b->resp.data, b->resp.len, &e);
	if (r == 0)
		return 0;
	if (r < 0) {
		httphead_free(&h);
		return -1;
	}
	size_t clen;
	const char *c = httphead_cookie(&h, "VPL_web", &clen);
	char routed[ROUTE_TICKET_LEN + 1];
	struct httphead_edit ed = {0};
	if (c && clen == ROUTE_TICKET_DIGITS &&
	    route_append(&p->rk, c, clen, b->addr.ip_be, b->addr.port, routed, &e) == 0) {
		ed.cookie_name = "VPL_web";
		ed.cookie_value = routed;
		ed.cookie_value_len = ROUTE_TICKET_LEN;
	}
	r = httphead_write(&h, &ed, &f->out, &e);
	const char *rest = b->resp.data + h.head_len;
	size_t nrest = b->resp.len - h.head_len;
	if (r == 0 && b->kind == K_MONITOR)
		r = wsframe_rw_feed(&b->frames, rest, nrest, &f->out, &e);
	else if (r == 0)
		r = buf_append(&f->out, rest, nrest, &e);
	httphead_free(&h);
	b->head_done = true;
	buf_free(&b->resp);
	return r;
}

/* A worker cut off the network must not hold a tunnel for the kernel's 15 minutes of
 * retransmissions: unacknowledged data fails after WORKER_USER_TIMEOUT_MS, an idle
 * connection is probed from WORKER_KEEPALIVE_S on. */
static void tune_worker_socket(int fd)
{
	if (fd < 0)
		return;
	int on = 1, idle = WORKER_KEEPALIVE_S, intvl = 5, cnt = 3;
	unsigned ut = WORKER_USER_TIMEOUT_MS;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof ut);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

static int back_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		   size_t len)
{
	struct back *b = lws_get_opaque_user_data(wsi);
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (b && !b->failed) {
			log_warn("worker %s: %s",
				 worker_addr_fmt(b->addr, (char[WORKER_ADDR_STRLEN]){0}),
				 in ? (const char *)in : "connection failed");
			b->failed = true;
			b->wsi = NULL;
			lws_set_opaque_user_data(wsi, NULL);
			if (!b->opening)
				back_done(b);
		}
		return -1;
	case LWS_CALLBACK_RAW_CONNECTED:
		if (!b)
			return -1;
		b->wsi = wsi;
		b->connected = true;
		if (!b->front)
			return -1;
		lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
		tune_worker_socket(lws_get_socket_fd(wsi));
		lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_RAW_RX: {
		if (!b || !b->front)
			return -1;
		struct front *f = b->front;
		b->got_bytes = true;
		struct err e;
		if (b->kind == K_RPC) {
			if (buf_append(&b->resp, in, len, &e) < 0) {
				log_warn("worker %s: answer larger than %lld bytes",
					 worker_addr_fmt(b->addr, (char[WORKER_ADDR_STRLEN]){0}),
					 (long long)PROXY_RESPONSE_MAX);
				return -1;
			}
			return 0;
		}
		if (back_to_front(b, f, in, len) < 0)
			return -1;
		lws_callback_on_writable(f->wsi);
		if (pending(&f->out, f->out_off) > PROXY_OUT_HIGH && !b->rx_paused) {
			b->rx_paused = true;
			lws_rx_flow_control(wsi, 0);
		}
		return 0;
	}
	case LWS_CALLBACK_RAW_WRITEABLE: {
		if (!b || !b->front)
			return -1;
		if (write_from(wsi, &b->out, &b->out_off) < 0)
			return -1;
		size_t left = pending(&b->out, b->out_off);
		struct front *f = b->front;
		if (f->rx_paused && left < PROXY_OUT_LOW) {
			f->rx_paused = false;
			lws_rx_flow_control(f->wsi, 1);
		}
		if (left)
			lws_callback_on_writable(wsi);
		return 0;
	}
	case LWS_CALLBACK_RAW_CLOSE:
		if (b) {
			lws_set_opaque_user_data(wsi, NULL);
			b->wsi = NULL;
			back_done(b);
		}
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols front_protocols[] = {
    {"vplcell-front", front_cb, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};
static const struct lws_protocols back_protocols[] = {
    {"vplcell-back", back_cb, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lws_log_emit(int level, const char *line)
{
	log_msg(level == LLL_ERR ? LOG_LVL_ERR : LOG_LVL_WARN, "lws: %s", line);
}

static struct lws_vhost *listen_on(struct proxy *p, const char *name, int port, bool tls,
				   struct err *err)
{
	const struct proxy_config *cfg = p->cfg;
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof info);
	info.vhost_name = name;
	info.port = port;
	info.iface = cfg->interface;
	info.protocols = front_protocols;
	/* A browser that vanished without closing is noticed within a few minutes. */
	info.ka_time = 60;
	info.ka_probes = 3;
	info.ka_interval = 10;
	info.listen_accept_role = "raw-skt";
	info.listen_accept_protocol = "vplcell-front";
	info.options = LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG;
	struct in_addr v4;
	/* An IPv4 INTERFACE with IPv6 on makes lws listen on every address. */
	if (cfg->interface && inet_pton(AF_INET, cfg->interface, &v4) == 1)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	if (tls) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = cfg->ssl_cert_file;
		info.ssl_private_key_filepath = cfg->ssl_key_file;
		info.ssl_cipher_list = cfg->ssl_cipher_list;
		info.tls1_3_plus_cipher_list = cfg->ssl_cipher_suites;
		info.ssl_options_set =
		    SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_RENEGOTIATION;
		/* HTTP/1.1 only: the proxy parses heads itself, and h2 would take the socket. */
		info.alpn = "http/1.1";
	}
	struct lws_vhost *v = lws_create_vhost(p->ctx, &info);
	if (!v)
		err_set(err, EADDRINUSE, "cannot listen on %s port %d (%s)",
			info.iface ? info.iface : "*", port, tls ? "https" : "http");
	return v;
}

static int make_metrics(struct proxy *p, struct err *err)
{
	struct metrics *m = p->metrics = metrics_new();
	if (!m)
		return err_sys(err, ENOMEM, "metrics");
	static const char *const ms[] = {"method", "status", NULL};
	static const char *const mm[] = {"method", NULL};
	static const char *const kind[] = {"kind", NULL};
	static const char *const dir[] = {"direction", NULL};
	p->m_requests = metrics_counter(m, "vplcell_proxy_requests_total",
					"Requests answered, by RPC method and HTTP status", ms);
	p->m_latency = metrics_histogram(m, "vplcell_proxy_request_duration_seconds",
					 "Time from connection to answer", mm,
					 metrics_latency_bounds, METRICS_LATENCY_NBOUNDS);
	p->m_ws = metrics_gauge(m, "vplcell_proxy_tunnels", "Open tunnels to workers", kind);
	p->m_bytes = metrics_counter(m, "vplcell_proxy_relayed_bytes_total",
				     "Bytes relayed through tunnels", dir);
	p->m_workers_up = metrics_gauge(m, "vplcell_proxy_workers", "Workers by state",
					(const char *const[]){"state", NULL});
	p->m_conns = metrics_gauge(m, "vplcell_proxy_connections", "Open client connections", NULL);
	if (!p->m_requests || !p->m_latency || !p->m_ws || !p->m_bytes || !p->m_workers_up ||
	    !p->m_conns)
		return err_set(err, EINVAL, "registering metrics");
	p->m_bytes_up = metric_child(p->m_bytes, (const char *const[]){"to_worker"});
	p->m_bytes_down = metric_child(p->m_bytes, (const char *const[]){"to_client"});
	p->m_ws_monitor = metric_child(p->m_ws, (const char *const[]){"monitor"});
	p->m_ws_execute = metric_child(p->m_ws, (const char *const[]){"execute"});
	p->m_ws_web = metric_child(p->m_ws, (const char *const[]){"web"});
	if (p->cfg->metrics_port) {
		const char *addr = p->cfg->metrics_address ? p->cfg->metrics_address : "127.0.0.1";
		p->metrics_http = metrics_http_start(m, addr, p->cfg->metrics_port, 0, err);
		if (!p->metrics_http)
			return err_wrap(err, "METRICS_PORT %d", p->cfg->metrics_port);
	}
	return 0;
}

struct proxy *proxy_new(const struct proxy_config *cfg, struct err *err)
{
	struct proxy *p = calloc(1, sizeof *p);
	if (!p) {
		err_sys(err, ENOMEM, "allocating the proxy");
		return NULL;
	}
	p->cfg = cfg;
	p->worker_urlpath = cfg->worker_urlpath ? cfg->worker_urlpath : cfg->urlpath;
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
	if (route_key_init(&p->rk, cfg->route_secret, cfg->route_secret_previous, err) < 0)
		goto fail;
	size_t al = strlen(AUTH_HEADER) + strlen(cfg->worker_secret) + 5;
	p->auth_line = malloc(al);
	if (!p->auth_line) {
		err_sys(err, ENOMEM, "allocating");
		goto fail;
	}
	snprintf(p->auth_line, al, "%s: %s\r\n", AUTH_HEADER, cfg->worker_secret);
	if (cfg->fail2ban && !(p->f2b = f2b_new(cfg->fail2ban))) {
		err_sys(err, ENOMEM, "FAIL2BAN");
		goto fail;
	}
	if (make_metrics(p, err) < 0)
		goto fail;
	struct workers_config wc = {.names = (const char *const *)cfg->worker_names,
				    .dns_interval_ms = cfg->dns_interval_ms,
				    .health_interval_ms = cfg->health_interval_ms,
				    .urlpath = p->worker_urlpath,
				    .secret = cfg->worker_secret};
	if (!(p->workers = workers_new(&wc, err)) || workers_start(p->workers, err) < 0)
		goto fail;

	struct lws_context_creation_info info;
	memset(&info, 0, sizeof info);
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.user = p;
	info.timeout_secs = PROXY_CONNECT_S; /* TLS handshakes, connects to workers */
	info.pt_serv_buf_size = 64 * 1024;
	p->ctx = lws_create_context(&info);
	if (!p->ctx) {
		err_set(err, EIO, "lws_create_context failed");
		goto fail;
	}
	if (cfg->port && !(p->plain = listen_on(p, "http", cfg->port, false, err)))
		goto fail;
	if (cfg->secure_port && (tls_files_check(cfg->ssl_cert_file, cfg->ssl_key_file, err) < 0 ||
				 !(p->secure = listen_on(p, "https", cfg->secure_port, true, err))))
		goto fail;
	struct lws_context_creation_info bi;
	memset(&bi, 0, sizeof bi);
	bi.vhost_name = "workers";
	bi.port = CONTEXT_PORT_NO_LISTEN;
	bi.protocols = back_protocols;
	if (!(p->backs = lws_create_vhost(p->ctx, &bi))) {
		err_set(err, EIO, "cannot create the workers' vhost");
		goto fail;
	}
	return p;
fail:
	proxy_free(p);
	return NULL;
}

static void update_worker_gauges(lws_sorted_usec_list_t *sul)
{
	struct proxy *p = lws_container_of(sul, struct proxy, gauges);
	lws_sul_schedule(p->ctx, 0, &p->gauges, update_worker_gauges, LWS_USEC_PER_SEC / 2);
	struct workers_summary s;
	workers_summary(p->workers, &s);
	metric_set(p->m_workers_up, (const char *const[]){"known"}, s.total);
	metric_set(p->m_workers_up, (const char *const[]){"up"}, s.up);
	metric_set(p->m_workers_up, (const char *const[]){"ready"}, s.ready);
}

static void reload_tls(struct proxy *p)
{
	const struct proxy_config *cfg = p->cfg;
	if (!p->secure)
		return;
	/* A pair that does not load or match keeps the current one. */
	struct err e;
	if (tls_files_check(cfg->ssl_cert_file, cfg->ssl_key_file, &e) < 0) {
		log_err("SIGHUP: keeping the current certificate: %s", e.msg);
		return;
	}
	lws_tls_cert_updated(p->ctx, cfg->ssl_cert_file, cfg->ssl_key_file, NULL, 0, NULL, 0);
	log_info("SIGHUP: certificate %s reloaded", cfg->ssl_cert_file);
}

int proxy_run(struct proxy *p)
{
	g_ctx = p->ctx;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_info("vpl-proxy ready: http port %d, https port %d", p->cfg->port, p->cfg->secure_port);
	lws_sul_schedule(p->ctx, 0, &p->gauges, update_worker_gauges, 1);
	while (!g_stop) {
		if (lws_service(p->ctx, 0) < 0)
			break;
		if (g_reload) {
			g_reload = 0;
			reload_tls(p);
		}
	}
	lws_sul_cancel(&p->gauges);
	log_info("vpl-proxy stopping");
	return 0;
}

void proxy_stop(struct proxy *p)
{
	(void)p;
	g_stop = 1;
	if (g_ctx)
		lws_cancel_service(g_ctx);
}

void proxy_free(struct proxy *p)
{
	if (!p)
		return;
	if (p->ctx)
		lws_context_destroy(p->ctx);
	g_ctx = NULL;
	workers_free(p->workers);
	metrics_http_stop(p->metrics_http);
	metrics_free(p->metrics);
	f2b_free(p->f2b);
	route_key_wipe(&p->rk);
	if (p->auth_line) {
		OPENSSL_cleanse(p->auth_line, strlen(p->auth_line));
		free(p->auth_line);
	}
	for (size_t i = 0; i < IP_BUCKETS; i++)
		while (p->ips[i]) {
			struct ip_count *c = p->ips[i];
			p->ips[i] = c->next;
			free(c);
		}
	free(p);
}
