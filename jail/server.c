#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_handler.h"
#include "http_reply.h"
#include "log.h"
#include "netacl.h"
#include "secretfile.h"
#include "tasks.h"
#include "tlsfiles.h"
#include "ws.h"

#define WRITE_CHUNK (64 * 1024)
/* Web-app pass-through (§6.8): what the client has not taken yet pauses the relay above
 * PROXY_OUT_HIGH (one read of the relay may come on top), resumes it below PROXY_OUT_LOW;
 * request bytes the relay has not taken stop reading the client above PROXY_IN_HIGH. */
#define PROXY_OUT_HIGH (256 * 1024)
#define PROXY_OUT_LOW  (64 * 1024)
#define PROXY_OUT_MAX  (1024 * 1024)
#define PROXY_IN_HIGH  (256 * 1024)
#define PROXY_HEAD_MAX (16 * 1024)
#define PROXY_MS       30000 /* each proxied connection, as the reference */
#define PROXY_TICK_US  (100 * 1000)
/* A response that waits for the sandbox (update): the sandbox answers within its own 10 s;
 * this only guards the connection against a missing answer. */
#define PENDING_MS 15000

struct server {
	struct jail *jail;
	struct lws_context *ctx;
	struct lws_vhost *plain, *secure;
	SSL_CTX *secure_ctx; /* the TLS vhost's, for reloads from memory (privsep) */
	lws_sorted_usec_list_t sweep;
};

struct conn {
	struct http_request rq;
	char method_name[16];
	char *path;
	char *query;
	char *cookie;
	struct sockaddr_storage peer;
	struct buf body;
	struct buf out;
	size_t out_off;
	int64_t body_start_ms, last_byte_ms;
	bool reading_body;
	bool replying;
	struct ws_sess *ws; /* an upgraded monitor/execute socket */
	/* web-app pass-through: the sandbox's relay to the task's local server */
	struct lws *wsi;
	bool proxying, relay_ended, out_paused, rx_paused, got_output, relay_refused;
	void *relay; /* NULL once ended or closed */
	struct jail *jail;
	struct buf pout; /* the local server's bytes not yet written to the client */
	size_t pout_off;
	uint64_t proxy_task;
	int64_t proxy_deadline_ms;
	/* an RPC whose answer comes later (update): NULL once answered or given up */
	struct http_pending *pending;
	int64_t pending_deadline_ms;
};

static volatile sig_atomic_t g_stop, g_term, g_reload;
static struct lws_context *g_ctx;

int64_t jail_monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		g_reload = 1;
	else if (g_term++) /* a second SIGTERM/SIGINT: now */
		g_stop = 1;
	if (g_ctx)
		lws_cancel_service(g_ctx);
}

static void conn_free(struct conn *c)
{
	if (c->pending) /* the client left before the answer: nothing will write to c */
		http_pending_cancel(c->pending);
	c->pending = NULL;
	if (c->relay && c->jail && c->jail->web_close)
		c->jail->web_close(c->jail->sandbox, c->relay);
	c->relay = NULL;
	buf_free(&c->pout);
	free(c->path);
	free(c->query);
	free(c->cookie);
	buf_free(&c->body);
	buf_free(&c->out);
	c->path = c->query = c->cookie = NULL;
}

static char *copy_token(struct lws *wsi, enum lws_token_indexes t)
{
	int len = lws_hdr_total_length(wsi, t);
	if (len <= 0)
		return NULL;
	char *s = malloc((size_t)len + 1);
	if (s && lws_hdr_copy(wsi, s, len + 1, t) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

static const struct {
	enum lws_token_indexes tok;
	enum http_method m;
	const char *name;
} methods[] = {
    {WSI_TOKEN_GET_URI, HTTP_GET, "GET"},	  {WSI_TOKEN_POST_URI, HTTP_POST, "POST"},
    {WSI_TOKEN_HEAD_URI, HTTP_HEAD, "HEAD"},	  {WSI_TOKEN_OPTIONS_URI, HTTP_OTHER, "OPTIONS"},
    {WSI_TOKEN_PUT_URI, HTTP_OTHER, "PUT"},	  {WSI_TOKEN_PATCH_URI, HTTP_OTHER, "PATCH"},
    {WSI_TOKEN_DELETE_URI, HTTP_OTHER, "DELETE"}, {WSI_TOKEN_CONNECT, HTTP_OTHER, "CONNECT"},
};

static long long content_length(struct lws *wsi)
{
	char v[32];
	int n = lws_hdr_copy(wsi, v, sizeof v, WSI_TOKEN_HTTP_CONTENT_LENGTH);
	if (n <= 0)
		return -1;
	long long r = 0;
	for (int i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9' || r > (LLONG_MAX - 9) / 10)
			return LLONG_MAX; /* unparsable: treated as too large */
		r = r * 10 + (v[i] - '0');
	}
	return r;
}

static void start_reply(struct lws *wsi, struct conn *c)
{
	struct server *s = lws_context_user(lws_get_context(wsi));
	/* "HTTP/1.1 NNN": 4xx/5xx count as errors for FAIL2BAN. */
	bool error = c->out.len > 9 && (c->out.data[9] == '4' || c->out.data[9] == '5');
	if (c->rq.peer)
		f2b_note(s->jail->f2b, c->rq.peer, error, jail_monotonic_ms());
	c->replying = true;
	c->reading_body = false;
	lws_set_timer_usecs(wsi, LWS_SET_TIMER_USEC_CANCEL);
	lws_callback_on_writable(wsi);
}

/* ---- web-app pass-through (§6.8) ---- */

static void proxy_output(void *sess, const void *data, size_t len)
{
	struct conn *c = sess;
	c->got_output = true;
	if (buf_append(&c->pout, data, len, NULL) < 0) {
		/* cannot happen (the relay pauses first); never grow: drop the connection */
		c->jail->web_close(c->jail->sandbox, c->relay);
		c->relay = NULL;
		c->relay_ended = true;
		c->pout_off = c->pout.len;
	} else if (c->pout.len - c->pout_off > PROXY_OUT_HIGH && !c->out_paused) {
		c->out_paused = true;
		c->jail->web_pause(c->jail->sandbox, c->relay, true);
	}
	lws_callback_on_writable(c->wsi);
}

static void proxy_ended(void *sess)
{
	struct conn *c = sess;
	c->relay = NULL;
	c->relay_ended = true;
	lws_callback_on_writable(c->wsi);
}

static void proxy_refused(void *sess)
{
	struct conn *c = sess;
	c->relay_refused = true;
	proxy_ended(sess);
}

/* Path and query as they go to the local server: lws gives them decoded. */
static void put_encoded(struct buf *b, const char *s, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~!$'()*,;:@", *p) || strchr(keep, *p)) {
			buf_append(b, p, 1, NULL);
		} else {
			char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			buf_append(b, e, 3, NULL);
		}
	}
}

/* The request again, for the local server: request line, the headers that matter (the
 * reference replays them verbatim), Connection: close. */
static int proxy_head(struct lws *wsi, struct conn *c, struct buf *b)
{
	static const struct {
		enum lws_token_indexes tok;
		const char *name;
	} hdrs[] = {
	    {WSI_TOKEN_HOST, "Host"},
	    {WSI_TOKEN_HTTP_USER_AGENT, "User-Agent"},
	    {WSI_TOKEN_HTTP_ACCEPT, "Accept"},
	    {WSI_TOKEN_HTTP_ACCEPT_LANGUAGE, "Accept-Language"},
	    {WSI_TOKEN_HTTP_ACCEPT_ENCODING, "Accept-Encoding"},
	    {WSI_TOKEN_HTTP_ACCEPT_CHARSET, "Accept-Charset"},
	    {WSI_TOKEN_HTTP_COOKIE, "Cookie"},
	    {WSI_TOKEN_HTTP_CONTENT_TYPE, "Content-Type"},
	    {WSI_TOKEN_HTTP_CONTENT_LENGTH, "Content-Length"},
	    {WSI_TOKEN_HTTP_REFERER, "Referer"},
	    {WSI_TOKEN_ORIGIN, "Origin"},
	    {WSI_TOKEN_HTTP_AUTHORIZATION, "Authorization"},
	    {WSI_TOKEN_HTTP_CACHE_CONTROL, "Cache-Control"},
	    {WSI_TOKEN_HTTP_IF_MODIFIED_SINCE, "If-Modified-Since"},
	    {WSI_TOKEN_HTTP_IF_NONE_MATCH, "If-None-Match"},
	    {WSI_TOKEN_HTTP_IF_MATCH, "If-Match"},
	    {WSI_TOKEN_HTTP_IF_RANGE, "If-Range"},
	    {WSI_TOKEN_HTTP_IF_UNMODIFIED_SINCE, "If-Unmodified-Since"},
	    {WSI_TOKEN_HTTP_RANGE, "Range"},
	};
	buf_puts(b, c->method_name, NULL);
	buf_puts(b, " ", NULL);
	put_encoded(b, c->path && c->path[0] ? c->path : "/", "/");
	if (c->query && c->query[0]) {
		buf_puts(b, "?", NULL);
		put_encoded(b, c->query, "/?=&+");
	}
	buf_puts(b, " HTTP/1.1\r\n", NULL);
	for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
		char *v = copy_token(wsi, hdrs[i].tok);
		if (v && !strpbrk(v, "\r\n")) {
			buf_puts(b, hdrs[i].name, NULL);
			buf_puts(b, ": ", NULL);
			buf_puts(b, v, NULL);
			buf_puts(b, "\r\n", NULL);
		}
		free(v);
	}
	return buf_puts(b, "Connection: close\r\n\r\n", NULL);
}

static int proxy_start(struct lws *wsi, struct server *s, struct conn *c, struct task *t)
{
	struct jail *j = s->jail;
	c->jail = j;
	c->wsi = wsi;
	c->proxy_task = t->id;
	buf_init(&c->pout, PROXY_OUT_MAX);
	struct web_sink sink = {proxy_output, proxy_ended, c, proxy_refused};
	struct err e;
	c->relay = j->web_open(j->sandbox, t, &sink, &e);
	if (!c->relay) {
		log_info("task %llu: proxied connection refused: %s", (unsigned long long)t->id,
			 e.msg);
		struct http_reply_opts o = {.tls = c->rq.tls, .hsts_max_age = j->cfg.hsts_max_age};
		http_reply_error(&c->out, &o, 503, "Service Unavailable", NULL);
		start_reply(wsi, c);
		return 0;
	}
	c->proxying = true;
	struct buf head;
	buf_init(&head, PROXY_HEAD_MAX);
	int rc = proxy_head(wsi, c, &head);
	if (rc == 0 && j->web_input(j->sandbox, c->relay, head.data, head.len) < 0)
		rc = -1;
	buf_free(&head);
	if (rc < 0)
		return -1; /* the request does not fit: conn_free closes the relay */
	c->proxy_deadline_ms = jail_monotonic_ms() + PROXY_MS;
	lws_set_timer_usecs(wsi, PROXY_TICK_US);
	return 0;
}

static void proxy_body(struct conn *c, const void *in, size_t len)
{
	if (!c->relay)
		return; /* the answer came already, or the relay is gone */
	long q = c->jail->web_input(c->jail->sandbox, c->relay, in, len);
	if (q > PROXY_IN_HIGH && !c->rx_paused) {
		c->rx_paused = true;
		lws_rx_flow_control(c->wsi, 0);
	}
}

/* Returns -1 to close the connection. */
static int proxy_tick(struct lws *wsi, struct conn *c)
{
	if (jail_monotonic_ms() >= c->proxy_deadline_ms) {
		log_info("task %llu: proxied connection closed at its time limit",
			 (unsigned long long)c->proxy_task);
		return -1;
	}
	if (c->rx_paused &&
	    (!c->relay || c->jail->web_queued(c->jail->sandbox, c->relay) < PROXY_IN_HIGH / 4)) {
		c->rx_paused = false;
		lws_rx_flow_control(wsi, 1);
	}
	lws_set_timer_usecs(wsi, PROXY_TICK_US);
	return 0;
}

static int write_some(struct lws *wsi, struct conn *c);

static int proxy_writeable(struct lws *wsi, struct server *s, struct conn *c)
{
	static unsigned char stage[LWS_PRE + WRITE_CHUNK];
	if (c->relay_ended && !c->got_output) {
		/* nothing came from the local server (not listening, say) */
		c->proxying = false;
		struct http_reply_opts o = {.tls = c->rq.tls,
					    .hsts_max_age = s->jail->cfg.hsts_max_age};
		buf_reset(&c->out);
		if (c->relay_refused) /* as web_open's own refusal: the client may retry */
			http_reply_error(&c->out, &o, 503, "Service Unavailable", NULL);
		else
			http_reply_error(&c->out, &o, 502, "Bad Gateway", NULL);
		c->replying = true;
		return write_some(wsi, c);
	}
	size_t left = c->pout.len - c->pout_off;
	if (left) {
		size_t n = left > WRITE_CHUNK ? WRITE_CHUNK : left;
		memcpy(stage + LWS_PRE, c->pout.data + c->pout_off, n);
		if (lws_write(wsi, stage + LWS_PRE, n, LWS_WRITE_HTTP) < 0)
			return -1;
		c->pout_off += n;
		left -= n;
		if (left == 0) {
			buf_reset(&c->pout);
			c->pout_off = 0;
		} else if (c->pout_off >= PROXY_OUT_HIGH) {
			memmove(c->pout.data, c->pout.data + c->pout_off, left);
			c->pout.len = left;
			c->pout_off = 0;
		}
	}
	if (c->out_paused && left < PROXY_OUT_LOW && c->relay) {
		c->out_paused = false;
		c->jail->web_pause(c->jail->sandbox, c->relay, false);
	}
	if (left) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	return c->relay_ended ? -1 : 0; /* the end: lws flushes, then closes */
}

/* The address the request is about: the socket's peer, or, when that peer is one of
 * TRUSTED_PROXIES, the last X-Forwarded-For entry (the one our proxy appended; earlier
 * entries are whatever the client claimed). Fills *ss; NULL when unknown. */
static const struct sockaddr *client_address(struct lws *wsi, const struct jail_config *cfg,
					     struct sockaddr_storage *ss)
{
	socklen_t sl = sizeof *ss;
	int fd = lws_get_socket_fd(wsi);
	if (fd < 0 || getpeername(fd, (struct sockaddr *)ss, &sl) != 0)
		return NULL;
	if (cfg->trusted_proxies.count == 0 ||
	    !netacl_allows(&cfg->trusted_proxies, (struct sockaddr *)ss))
		return (struct sockaddr *)ss;
	char xff[512];
	int n = lws_hdr_copy(wsi, xff, sizeof xff, WSI_TOKEN_X_FORWARDED_FOR);
	if (n > 0 && netacl_forwarded_for(xff, (size_t)n, ss) < 0)
		log_warn("X-Forwarded-For from a trusted proxy is not an address: ignored");
	return (struct sockaddr *)ss;
}

/* With PROXY_SECRET_FILE, only vpl-proxy may talk to this worker: every request but the
 * harmless fixed pages carries the shared secret (compared in constant time). */
static bool proxy_authenticated(struct lws *wsi, const struct jail_config *cfg, const char *path,
				size_t path_len)
{
	if (!cfg->proxy_secret)
		return true;
	static const char *const open_paths[] = {"/OK", "/robots.txt", "/favicon.ico"};
	for (size_t i = 0; i < sizeof open_paths / sizeof open_paths[0]; i++)
		if (path && path_len == strlen(open_paths[i]) &&
		    memcmp(path, open_paths[i], path_len) == 0)
			return true;
	static const char name[] = "x-vplcell-auth:";
	char got[SECRET_MAX_LEN + 1];
	int n = lws_hdr_custom_length(wsi, name, (int)sizeof name - 1);
	if (n <= 0 || n > SECRET_MAX_LEN)
		return false;
	if (lws_hdr_custom_copy(wsi, got, (int)sizeof got, name, (int)sizeof name - 1) != n)
		return false;
	bool ok = secret_equal(cfg->proxy_secret, got, (size_t)n);
	OPENSSL_cleanse(got, sizeof got);
	return ok;
}

static int on_http(struct lws *wsi, struct server *s, struct conn *c)
{
	memset(c, 0, sizeof *c);
	buf_init(&c->out, 1);
	c->rq.method = HTTP_OTHER;
	c->rq.method_name = "?";
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		if (lws_hdr_total_length(wsi, methods[i].tok) > 0) {
			c->path = copy_token(wsi, methods[i].tok);
			c->rq.method = methods[i].m;
			snprintf(c->method_name, sizeof c->method_name, "%s", methods[i].name);
			c->rq.method_name = c->method_name;
			break;
		}
	}
	c->query = copy_token(wsi, WSI_TOKEN_HTTP_URI_ARGS);
	c->cookie = copy_token(wsi, WSI_TOKEN_HTTP_COOKIE);
	c->rq.path = c->path ? c->path : "";
	c->rq.path_len = c->path ? strlen(c->path) : 0;
	c->rq.query = c->query;
	c->rq.cookie = c->cookie;
	c->rq.tls = lws_is_ssl(wsi);
	c->rq.peer = client_address(wsi, &s->jail->cfg, &c->peer);
	c->rq.content_length = content_length(wsi);
	char expect[32];
	c->rq.expect_continue =
	    lws_hdr_copy(wsi, expect, sizeof expect, WSI_TOKEN_HTTP_EXPECT) > 0 &&
	    strcasecmp(expect, "100-continue") == 0;

	/* Responses are built whole; the cap only guards against a bug. */
	buf_init(&c->out, (size_t)s->jail->cfg.result_max_size * 4 + (1u << 20));
	if (!proxy_authenticated(wsi, &s->jail->cfg, c->rq.path, c->rq.path_len)) {
		char peer[64];
		http_peer_text(c->rq.peer, peer, sizeof peer);
		log_warn("http %s from %s: 403, no valid proxy authentication", c->method_name,
			 peer);
		struct http_reply_opts o = {.tls = c->rq.tls,
					    .hsts_max_age = s->jail->cfg.hsts_max_age};
		http_reply_error(&c->out, &o, 403, "Forbidden", NULL);
		start_reply(wsi, c);
		return 0;
	}
	/* §1.5: a live VPL_web cookie wins over everything else. */
	struct task *web = s->jail->web_open ? http_web_task(s->jail, &c->rq) : NULL;
	if (web)
		return proxy_start(wsi, s, c, web);
	if (http_handle_headers(s->jail, &c->rq, &c->out) == HTTP_REPLY_READY) {
		start_reply(wsi, c);
		return 0;
	}
	buf_init(&c->body, (size_t)c->rq.content_length);
	c->reading_body = true;
	c->body_start_ms = c->last_byte_ms = jail_monotonic_ms();
	if (c->rq.expect_continue) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		unsigned char b[LWS_PRE + sizeof cont];
		memcpy(b + LWS_PRE, cont, sizeof cont - 1);
		if (lws_write(wsi, b + LWS_PRE, sizeof cont - 1, LWS_WRITE_HTTP) < 0)
			return -1;
	}
	lws_set_timer_usecs(wsi, LWS_USEC_PER_SEC);
	return 0;
}

/* The sandbox answered a deferred RPC: the response is built now, written as any other. */
static void pending_ready(void *arg)
{
	struct conn *c = arg;
	struct http_pending *p = c->pending;
	c->pending = NULL;
	http_pending_finish(c->jail, p, false, &c->out);
	start_reply(c->wsi, c);
}

static void pending_tick(struct lws *wsi, struct conn *c)
{
	if (jail_monotonic_ms() < c->pending_deadline_ms) {
		lws_set_timer_usecs(wsi, LWS_USEC_PER_SEC);
		return;
	}
	struct http_pending *p = c->pending;
	c->pending = NULL;
	http_pending_finish(c->jail, p, true, &c->out);
	start_reply(wsi, c);
}

static void finish_body(struct lws *wsi, struct server *s, struct conn *c)
{
	size_t len;
	char *body = buf_steal(&c->body, &len);
	struct http_pending *p = NULL;
	if (http_handle_body_async(s->jail, &c->rq, body, len, &c->out, &p) == HTTP_REPLY_LATER) {
		c->reading_body = false;
		c->pending = p;
		c->jail = s->jail;
		c->wsi = wsi;
		c->pending_deadline_ms = jail_monotonic_ms() + PENDING_MS;
		http_pending_watch(p, pending_ready, c);
		lws_set_timer_usecs(wsi, LWS_USEC_PER_SEC);
		return;
	}
	start_reply(wsi, c);
}

static void body_timeout(struct lws *wsi, struct server *s, struct conn *c)
{
	int64_t now = jail_monotonic_ms();
	int64_t limit_ms = (SERVER_BODY_BASE_S + c->rq.content_length / (1 << 20)) * 1000;
	if (now - c->last_byte_ms < SERVER_BODY_IDLE_S * 1000 &&
	    now - c->body_start_ms < limit_ms) {
		lws_set_timer_usecs(wsi, LWS_USEC_PER_SEC);
		return;
	}
	char peer[64];
	http_peer_text(c->rq.peer, peer, sizeof peer);
	log_info("http POST from %s: 408 body not received in time (%zu of %lld bytes)", peer,
		 c->body.len, c->rq.content_length);
	s->jail->stats.errors++;
	buf_free(&c->body);
	buf_reset(&c->out);
	struct http_reply_opts o = {.tls = c->rq.tls, .hsts_max_age = s->jail->cfg.hsts_max_age};
	http_reply_error(&c->out, &o, 408, "Socket read timeout", NULL);
	start_reply(wsi, c);
}

static int write_some(struct lws *wsi, struct conn *c)
{
	static unsigned char stage[LWS_PRE + WRITE_CHUNK];
	size_t left = c->out.len - c->out_off;
	size_t n = left > WRITE_CHUNK ? WRITE_CHUNK : left;
	if (n) {
		memcpy(stage + LWS_PRE, c->out.data + c->out_off, n);
		if (lws_write(wsi, stage + LWS_PRE, n, LWS_WRITE_HTTP) < 0)
			return -1;
		c->out_off += n;
	}
	if (c->out_off < c->out.len) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	/* Connection: close. lws flushes anything still buffered first. */
	return -1;
}

/* A WebSocket upgrade: the ticket is checked before the handshake, and a
 * bad one gets the reference's plain HTTP 500 instead of 101. */
static int confirm_upgrade(struct lws *wsi, struct server *s, const char *what)
{
	char path[256], peer[64] = "?";
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int fd = lws_get_socket_fd(wsi);
	if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
		http_peer_text((struct sockaddr *)&ss, peer, sizeof peer);
	bool authed = proxy_authenticated(wsi, &s->jail->cfg, NULL, 0);
	if (authed && what && strcasecmp(what, "websocket") == 0 &&
	    lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) > 0 &&
	    ws_check(s->jail, path) == 0)
		return 0;
	/* Never log the path: it holds a ticket. */
	if (!authed)
		log_warn("websocket upgrade from %s refused: no valid proxy authentication", peer);
	else
		log_info("websocket upgrade from %s refused: unknown, used or unready ticket",
			 peer);
	if (s->jail->f2b && fd >= 0)
		f2b_note(s->jail->f2b, (struct sockaddr *)&ss, true, jail_monotonic_ms());
	struct buf out;
	buf_init(&out, 1 << 16);
	struct http_reply_opts o = {.tls = lws_is_ssl(wsi),
				    .hsts_max_age = s->jail->cfg.hsts_max_age};
	http_reply_error(&out, &o, 500, "Bad ticket", NULL);
	unsigned char *b = malloc(LWS_PRE + out.len);
	if (b) {
		memcpy(b + LWS_PRE, out.data, out.len);
		lws_write(wsi, b + LWS_PRE, out.len, LWS_WRITE_HTTP_FINAL);
		free(b);
	}
	buf_free(&out);
	return -1;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct server *s = lws_context_user(lws_get_context(wsi));
	struct conn *c = user;
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return on_http(wsi, s, c);
	case LWS_CALLBACK_HTTP_BODY:
		if (c->proxying) {
			proxy_body(c, in, len);
			return 0;
		}
		if (!c->reading_body)
			return 0;
		if (buf_append(&c->body, in, len, NULL) < 0) {
			/* More than Content-Length said: refuse. */
			buf_free(&c->body);
			struct http_reply_opts o = {.tls = c->rq.tls,
						    .hsts_max_age = s->jail->cfg.hsts_max_age};
			http_reply_error(&c->out, &o, 413, "http Request size too large", NULL);
			start_reply(wsi, c);
			return 0;
		}
		c->last_byte_ms = jail_monotonic_ms();
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (c->reading_body)
			finish_body(wsi, s, c);
		return 0;
	case LWS_CALLBACK_TIMER:
		if (c && c->ws)
			ws_timer(c->ws);
		else if (c && c->proxying)
			return proxy_tick(wsi, c);
		else if (c && c->reading_body)
			body_timeout(wsi, s, c);
		else if (c && c->pending)
			pending_tick(wsi, c);
		return 0;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return confirm_upgrade(wsi, s, in);
	case LWS_CALLBACK_ADD_HEADERS: {
		/* The reference plants this cookie on the handshake: the plugin's
		 * web-app mode checks it (vpl-jail-protocol.md §6.8). */
		static const char cookie[] = "VPL_Iwh=y; Path=/; SameSite=none; Secure";
		struct lws_process_html_args *a = in;
		unsigned char *p = (unsigned char *)a->p;
		if (lws_add_http_header_by_name(
			wsi, (const unsigned char *)"set-cookie:", (const unsigned char *)cookie,
			sizeof cookie - 1, &p, p + a->max_len))
			return -1;
		a->max_len -= (int)(p - (unsigned char *)a->p);
		a->p = (char *)p;
		return 0;
	}
	case LWS_CALLBACK_ESTABLISHED: {
		char path[256], proto[32];
		if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) <= 0)
			return -1;
		const char *pn = lws_get_protocol(wsi) ? lws_get_protocol(wsi)->name : NULL;
		snprintf(proto, sizeof proto, "%s", pn && strcmp(pn, "http") != 0 ? pn : "");
		c->ws = ws_open(s->jail, wsi, path, proto[0] ? proto : NULL);
		return c->ws ? 0 : -1;
	}
	case LWS_CALLBACK_RECEIVE:
		if (c->ws)
			ws_receive(c->ws, in, len);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return c->ws ? ws_writeable(c->ws) : 0;
	case LWS_CALLBACK_CLOSED:
		if (c && c->ws) {
			ws_closed(c->ws);
			c->ws = NULL;
		}
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (c->proxying)
			return proxy_writeable(wsi, s, c);
		if (!c->replying)
			return 0;
		return write_some(wsi, c);
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (c) /* NULL for a connection that closed before its headers */
			conn_free(c);
		return 0;
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION: {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = (int)(intptr_t)in;
		/* A trusted proxy is never banned for its clients' failures: it enforces
		 * FAIL2BAN itself, per client. */
		if (s->jail->f2b && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 &&
		    !(s->jail->cfg.trusted_proxies.count &&
		      netacl_allows(&s->jail->cfg.trusted_proxies, (struct sockaddr *)&ss)) &&
		    !f2b_allows(s->jail->f2b, (struct sockaddr *)&ss, jail_monotonic_ms())) {
			char peer[64];
			http_peer_text((struct sockaddr *)&ss, peer, sizeof peer);
			log_warn("FAIL2BAN: refusing connection from %s", peer);
			return 1;
		}
		return 0;
	}
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return 0; /* checked in HTTP_CONFIRM_UPGRADE */
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		/* user is the vhost's SSL_CTX: TLS 1.0 and 1.1 are off. */
		SSL_CTX_set_min_proto_version((SSL_CTX *)user, TLS1_2_VERSION);
		s->secure_ctx = user;
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

/* The evloop's epoll fd, adopted as a raw file: readable means some FIFO,
 * timer or containerd completion is ready. */
static int ev_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		       size_t len)
{
	struct server *s = lws_context_user(lws_get_context(wsi));
	if (reason == LWS_CALLBACK_RAW_RX_FILE && s->jail->ev)
		evloop_dispatch(s->jail->ev);
	return 0;
}

static const struct lws_protocols protocols[] = {
    {"http", callback, sizeof(struct conn), 0, 0, NULL, 0},
    {"vplcell-ev", ev_callback, 0, 0, 0, NULL, 0},
    /* WebSocket subprotocols (§6.1): legacy noVNC offers both; the current
     * plugin offers none and lands on "http" above. */
    {"binary", callback, sizeof(struct conn), 0, 0, NULL, 0},
    {"base64", callback, sizeof(struct conn), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lws_log_emit(int level, const char *line)
{
	log_msg(level == LLL_ERR ? LOG_LVL_ERR : LOG_LVL_WARN, "lws: %s", line);
}

static void sweep_cb(lws_sorted_usec_list_t *sul)
{
	struct server *s = lws_container_of(sul, struct server, sweep);
	task_sweep(s->jail->tasks, jail_monotonic_ms());
	lws_sul_schedule(s->ctx, 0, &s->sweep, sweep_cb, LWS_USEC_PER_SEC);
}

static struct lws_vhost *make_vhost(struct server *s, const char *name, int port, bool tls,
				    struct err *err)
{
	const struct jail_config *cfg = &s->jail->cfg;
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof info);
	info.vhost_name = name;
	info.port = port;
	info.iface = cfg->interface && cfg->interface[0] ? cfg->interface : NULL;
	info.protocols = protocols;
	info.options = 0;
	struct in_addr v4;
	/* An IPv4 INTERFACE with IPv6 on makes lws listen on every address. */
	if (info.iface && inet_pton(AF_INET, info.iface, &v4) == 1)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	if (tls) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = cfg->ssl_cert_file;
		info.ssl_private_key_filepath = cfg->ssl_key_file;
		info.ssl_cipher_list = cfg->ssl_cipher_list;
		info.tls1_3_plus_cipher_list = cfg->ssl_cipher_suites;
		info.ssl_options_set =
		    SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_RENEGOTIATION;
	}
	struct lws_vhost *v = lws_create_vhost(s->ctx, &info);
	if (!v)
		err_set(err, EADDRINUSE, "cannot listen on %s port %d (%s)",
			info.iface ? info.iface : "*", port, tls ? "https" : "http");
	return v;
}

struct server *server_new(struct jail *j, struct err *err)
{
	const struct jail_config *cfg = &j->cfg;
	if (cfg->secure_port && tls_files_check(cfg->ssl_cert_file, cfg->ssl_key_file, err) < 0) {
		err_wrap(err, "SECURE_PORT %d", cfg->secure_port);
		return NULL;
	}
	struct server *s = calloc(1, sizeof *s);
	if (!s) {
		err_sys(err, ENOMEM, "allocating server");
		return NULL;
	}
	s->jail = j;
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);

	struct lws_context_creation_info info;
	memset(&info, 0, sizeof info);
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.user = s;
	info.max_http_header_data = 8192; /* the reference's header limit */
	info.timeout_secs = 20;
	info.timeout_secs_ah_idle = 10;
	info.pt_serv_buf_size = 32768;
	s->ctx = lws_create_context(&info);
	if (!s->ctx) {
		err_set(err, EIO, "lws_create_context failed");
		free(s);
		return NULL;
	}
	if (cfg->port && !(s->plain = make_vhost(s, "http", cfg->port, false, err)))
		goto fail;
	if (cfg->secure_port && !(s->secure = make_vhost(s, "https", cfg->secure_port, true, err)))
		goto fail;
	if (j->ev) {
		/* A dup: lws closes what it adopts, the evloop keeps its own. */
		lws_sock_file_fd_type fd = {.filefd = fcntl(evloop_fd(j->ev), F_DUPFD_CLOEXEC, 3)};
		if (fd.filefd < 0 ||
		    !lws_adopt_descriptor_vhost(s->plain ? s->plain : s->secure,
						LWS_ADOPT_RAW_FILE_DESC, fd, "vplcell-ev", NULL)) {
			err_set(err, EIO, "cannot add the sandbox's event fd to the loop");
			goto fail;
		}
	}
	lws_sul_schedule(s->ctx, 0, &s->sweep, sweep_cb, LWS_USEC_PER_SEC);
	return s;
fail:
	lws_context_destroy(s->ctx);
	free(s);
	return NULL;
}

static void reload_tls(struct server *s)
{
	const struct jail_config *cfg = &s->jail->cfg;
	struct err e;
	if (!s->secure)
		return;
	if (tls_files_check(cfg->ssl_cert_file, cfg->ssl_key_file, &e) < 0) {
		log_err("SIGHUP: keeping the current certificate: %s", e.msg);
		return;
	}
	lws_tls_cert_updated(s->ctx, cfg->ssl_cert_file, cfg->ssl_key_file, NULL, 0, NULL, 0);
	log_info("SIGHUP: certificate %s reloaded", cfg->ssl_cert_file);
}

/* Certificate chain and key from PEM in memory (the keeper read the files). */
int server_tls_reload_mem(struct server *s, const void *cert, size_t cert_len, const void *key,
			  size_t key_len, struct err *err)
{
	if (!s->secure_ctx)
		return err_set(err, ENOENT, "no TLS listener");
	int rc = -1;
	X509 *leaf = NULL;
	EVP_PKEY *pkey = NULL;
	STACK_OF(X509) *chain = sk_X509_new_null();
	BIO *cb = BIO_new_mem_buf(cert, (int)cert_len), *kb = BIO_new_mem_buf(key, (int)key_len);
	if (!chain || !cb || !kb || !(leaf = PEM_read_bio_X509(cb, NULL, NULL, NULL)) ||
	    !(pkey = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL))) {
		err_set(err, EINVAL, "the certificate or key does not parse");
		goto out;
	}
	X509 *x;
	while ((x = PEM_read_bio_X509(cb, NULL, NULL, NULL)))
		if (!sk_X509_push(chain, x)) {
			X509_free(x);
			err_set(err, ENOMEM, "certificate chain");
			goto out;
		}
	ERR_clear_error(); /* the end of the chain reads as an error */
	if (!X509_check_private_key(leaf, pkey)) {
		err_set(err, EINVAL, "the key does not match the certificate");
		goto out;
	}
	if (SSL_CTX_use_certificate(s->secure_ctx, leaf) != 1 ||
	    SSL_CTX_use_PrivateKey(s->secure_ctx, pkey) != 1 ||
	    SSL_CTX_set1_chain(s->secure_ctx, chain) != 1) {
		err_set(err, EIO, "OpenSSL refused the certificate");
		goto out;
	}
	rc = 0;
out:
	X509_free(leaf);
	EVP_PKEY_free(pkey);
	sk_X509_pop_free(chain, X509_free);
	BIO_free(cb);
	BIO_free(kb);
	return rc;
}

void server_signal(struct server *s, int sig)
{
	(void)s;
	on_signal(sig);
}

int server_run(struct server *s)
{
	g_ctx = s->ctx;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	/* Under privsep the keeper gets the signals and tells us (server_signal). */
	sa.sa_handler = s->jail->signals_from_keeper ? SIG_IGN : on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_info("vpl-jail ready: http port %d, https port %d", s->jail->cfg.port,
		 s->jail->cfg.secure_port);
	struct jail *j = s->jail;
	int64_t drain_until = 0, flush_until = 0;
	while (!g_stop) {
		if (lws_service(s->ctx, 0) < 0)
			break;
		if (g_reload) {
			g_reload = 0;
			reload_tls(s);
		}
		/* SIGTERM: tasks alive may finish (the sweep timer wakes the loop every second);
		 * nothing new is accepted meanwhile. */
		int64_t now = jail_monotonic_ms();
		size_t live = g_term ? task_count_pending(j->tasks) : 0;
		if (g_term && !j->draining) {
			if (live == 0 || j->cfg.shutdown_grace == 0)
				break;
			j->draining = true;
			drain_until = now + (int64_t)j->cfg.shutdown_grace * 1000;
			log_info("SIGTERM: draining, %zu task(s) may finish within %d s (SIGTERM "
				 "again stops at once)",
				 live, j->cfg.shutdown_grace);
		}
		if (j->draining && (live == 0 || now >= drain_until)) {
			if (live)
				log_warn("SHUTDOWN_GRACE over: %zu task(s) cut short", live);
			/* The answer that emptied the table is still being written: one more
			 * turn of the loop (the sweep wakes it within a second) sends it. */
			if (flush_until == 0)
				flush_until = now + 500;
			else if (now >= flush_until)
				break;
		}
	}
	log_info("vpl-jail stopping");
	return 0;
}

void server_stop(struct server *s)
{
	(void)s;
	g_stop = 1;
	if (g_ctx)
		lws_cancel_service(g_ctx);
}

void server_free(struct server *s)
{
	if (!s)
		return;
	lws_sul_cancel(&s->sweep);
	lws_context_destroy(s->ctx);
	g_ctx = NULL;
	free(s);
}
