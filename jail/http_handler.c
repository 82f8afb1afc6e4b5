#include "http_handler.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_reply.h"
#include "log.h"
#include "methods.h"
#include "jail_metrics.h"
#include "netacl.h"
#include "rpc.h"

#define SET_IWH	    "Set-Cookie: VPL_Iwh=y; Path=/; SameSite=none; Secure\r\n"
#define ACME_PREFIX "/.well-known/acme-challenge/"

static const char favicon_svg[] =
    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"64\" height=\"64\" viewBox=\"0 0 64 "
    "64\"><rect width=\"64\" height=\"64\" rx=\"8\" fill=\"#2a5d8f\"/><text x=\"32\" "
    "y=\"42\" font-family=\"sans-serif\" font-size=\"24\" font-weight=\"bold\" "
    "fill=\"#fff\" text-anchor=\"middle\">VPL</text></svg>";
static const char ok_html[] = "<html><head><title>OK</title></head><body><h1>OK</h1></body></html>";
static const char robots_txt[] = "User-agent: *\nDisallow: /\n";

static struct http_reply_opts opts_for(const struct jail *j, const struct http_request *rq)
{
	return (struct http_reply_opts){.tls = rq->tls,
					.hsts_max_age = j->cfg.hsts_max_age,
					.head_only = rq->method == HTTP_HEAD};
}

void http_peer_text(const struct sockaddr *sa, char *out, size_t outsz)
{
	if (!sa) {
		snprintf(out, outsz, "-");
		return;
	}
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out,
			  (socklen_t)outsz);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a))
			inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)outsz);
		else
			inet_ntop(AF_INET6, a, out, (socklen_t)outsz);
	} else {
		snprintf(out, outsz, "?");
	}
}

static int reply_error(struct jail *j, const struct http_request *rq, struct buf *out, int status,
		       const char *detail)
{
	char peer[INET6_ADDRSTRLEN];
	http_peer_text(rq->peer, peer, sizeof peer);
	log_info("http %s from %s: %d %s", rq->method_name ? rq->method_name : "?", peer, status,
		 detail);
	j->stats.errors++;
	struct http_reply_opts o = opts_for(j, rq);
	buf_reset(out);
	http_reply_error(out, &o, status, detail, NULL);
	return HTTP_REPLY_READY;
}

static int serve_acme(struct jail *j, const struct http_request *rq, struct buf *out)
{
	const char *token = rq->path + strlen(ACME_PREFIX);
	size_t tlen = rq->path_len - strlen(ACME_PREFIX);
	/* ACME tokens are base64url: anything else cannot name a file of ours. */
	if (tlen == 0 || tlen > 256)
		return reply_error(j, rq, out, 404, "Not found");
	for (size_t i = 0; i < tlen; i++) {
		char c = token[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return reply_error(j, rq, out, 404, "Not found");
	}
	char path[4096];
	snprintf(path, sizeof path, "%s" ACME_PREFIX "%.*s", j->cfg.certbot_webroot_path, (int)tlen,
		 token);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return reply_error(j, rq, out, 404, "Not found");
	char data[8192];
	ssize_t n = read(fd, data, sizeof data);
	close(fd);
	if (n < 0)
		return reply_error(j, rq, out, 404, "Not found");
	struct http_reply_opts o = opts_for(j, rq);
	http_reply(out, &o, 200, SET_IWH, data, (size_t)n, NULL);
	return HTTP_REPLY_READY;
}

/* The value of the cookie `name` in a Cookie header (pairs separated by ';'); NULL when
 * absent or repeated (the reference refuses a repeated name). */
static const char *cookie_value(const char *cookie, const char *name, size_t *len)
{
	const char *found = NULL;
	size_t nl = strlen(name);
	for (const char *p = cookie; p && *p;) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		size_t pl = end ? (size_t)(end - p) : strlen(p);
		if (pl > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			if (found)
				return NULL;
			found = p + nl + 1;
			*len = pl - nl - 1;
			while (*len && (found[*len - 1] == ' ' || found[*len - 1] == '\t'))
				(*len)--;
			if (*len >= 2 && found[0] == '"' && found[*len - 1] == '"') {
				found++;
				*len -= 2;
			}
		} else if (pl == nl && strncmp(p, name, nl) == 0) {
			if (found)
				return NULL;
			found = p + nl;
			*len = 0;
		}
		p = end;
	}
	return found;
}

/* A task whose pass-through ticket this is and whose web program serves. */
static struct task *serving_task(struct jail *j, const char *ticket, size_t len)
{
	struct task *t = task_find(j->tasks, ticket, len, TICKET_PASSTHROUGH);
	return t && t->state == TASK_RUNNING && t->passthrough[0] ? t : NULL;
}

struct task *http_web_task(struct jail *j, const struct http_request *rq)
{
	size_t len = 0;
	const char *v = rq->cookie ? cookie_value(rq->cookie, "VPL_web", &len) : NULL;
	return v ? serving_task(j, v, len) : NULL;
}

static bool query_has(const char *q, const char *item)
{
	size_t n = strlen(item);
	for (const char *p = q; p && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL)
		if (strncmp(p, item, n) == 0 && (p[n] == '\0' || p[n] == '&' || p[n] == '='))
			return true;
	return false;
}

/* GET /<ticket>/httpPassthrough[?private] (§6.8): the cookie that opens the web program
 * to this browser, then a redirect to it; a teacher (?private) whose browser already has
 * VPL_Iwh is asked to use a private window, so that the student's cookie does not land in
 * the teacher's usual session. */
static int serve_passthrough(struct jail *j, const struct http_request *rq, const char *ticket,
			     size_t tlen, struct buf *out)
{
	struct task *t = serving_task(j, ticket, tlen);
	if (!t)
		return reply_error(j, rq, out, 404, "Not found");
	struct http_reply_opts o = opts_for(j, rq);
	size_t iwh_len;
	if (query_has(rq->query, "private") && rq->cookie &&
	    cookie_value(rq->cookie, "VPL_Iwh", &iwh_len)) {
		char page[1024];
		int n = snprintf(page, sizeof page,
				 "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
				 "<title>VPL</title></head><body><h1>Use a private window</h1>"
				 "<p>This browser already has a session on this execution server. "
				 "To see the student's web application, open this address in a "
				 "private (incognito) window:</p><p><code>%s://&lt;this "
				 "server&gt;/%s/httpPassthrough</code></p></body></html>",
				 rq->tls ? "https" : "http", t->passthrough);
		http_reply(out, &o, 200, NULL, page, (size_t)n, NULL);
		explicit_bzero(page, sizeof page);
		return HTTP_REPLY_READY;
	}
	char extra[128 + TICKET_LEN];
	snprintf(extra, sizeof extra, "Location: /\r\nSet-Cookie: VPL_web=%s; Path=/\r\n",
		 t->passthrough);
	http_reply(out, &o, 302, extra, "", 0, NULL);
	explicit_bzero(extra, sizeof extra);
	return HTTP_REPLY_READY;
}

static int serve_get(struct jail *j, const struct http_request *rq, struct buf *out)
{
	struct http_reply_opts o = opts_for(j, rq);
	static const char pt[] = "/httpPassthrough";
	const char *slash = rq->path_len > 1 && rq->path[0] == '/'
				? memchr(rq->path + 1, '/', rq->path_len - 1)
				: NULL;
	if (slash && (size_t)(rq->path + rq->path_len - slash) == sizeof pt - 1 &&
	    memcmp(slash, pt, sizeof pt - 1) == 0)
		return serve_passthrough(j, rq, rq->path + 1, (size_t)(slash - rq->path - 1), out);
	if (http_fixed_page(rq->path, rq->path_len, &o, out))
		return HTTP_REPLY_READY;
	if (j->cfg.certbot_webroot_path && rq->path_len > strlen(ACME_PREFIX) &&
	    strncmp(rq->path, ACME_PREFIX, strlen(ACME_PREFIX)) == 0)
		return serve_acme(j, rq, out);
	return reply_error(j, rq, out, 404, "Not found");
}

bool http_fixed_page(const char *path, size_t path_len, const struct http_reply_opts *o,
		     struct buf *out)
{
	static const struct {
		const char *path, *body;
		size_t len;
	} pages[] = {
	    {"/OK", ok_html, sizeof ok_html - 1},
	    {"/robots.txt", robots_txt, sizeof robots_txt - 1},
	    {"/favicon.ico", favicon_svg, sizeof favicon_svg - 1},
	};
	for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
		if (path_len == strlen(pages[i].path) &&
		    strncasecmp(path, pages[i].path, path_len) == 0) { /* as the reference */
			http_reply(out, o, 200, SET_IWH, pages[i].body, pages[i].len, NULL);
			return true;
		}
	return false;
}

bool http_urlpath_matches(const char *want, const char *got, size_t gl)
{
	size_t wl = strlen(want);
	if (gl == 0) {
		got = "/";
		gl = 1;
	}
	/* Compare over the expected length always, so the time taken does not
	 * depend on the length of what the client sent either. */
	unsigned char diff = gl != wl;
	for (size_t i = 0; i < wl; i++)
		diff |= (unsigned char)want[i] ^ (unsigned char)(i < gl ? got[i] : 0);
	return diff == 0;
}

int http_handle_headers(struct jail *j, const struct http_request *rq, struct buf *out)
{
	j->stats.requests++;
	switch (rq->method) {
	case HTTP_GET:
	case HTTP_HEAD:
		return serve_get(j, rq, out);
	case HTTP_OTHER: {
		char detail[96];
		char safe[32];
		const char *m = rq->method_name ? rq->method_name : "?";
		log_sanitize(safe, sizeof safe, m, strlen(m));
		snprintf(detail, sizeof detail, "Http(s) Unsupported METHOD %s", safe);
		return reply_error(j, rq, out, 400, detail);
	}
	case HTTP_POST:
		break;
	}
	if (rq->peer && !netacl_allows(&j->cfg.task_only_from, rq->peer))
		return reply_error(j, rq, out, 400, "Client not allowed");
	if (!http_urlpath_matches(j->cfg.urlpath, rq->path, rq->path_len))
		return reply_error(j, rq, out, 404, "http request URL path not found");
	if (rq->content_length < 0)
		return reply_error(j, rq, out, 400, "Content-Length required");
	if (rq->content_length > j->cfg.request_max_size)
		return reply_error(j, rq, out, 413, "http Request size too large");
	return HTTP_NEED_BODY;
}

static const char *method_for_log(const struct rpc_request *req)
{
	static const char *const known[] = {"available", "request", "directrun", "getresult",
					    "running",	 "stop",    "update"};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strcmp(req->method, known[i]) == 0)
			return known[i];
	return "unknown";
}

struct http_pending {
	bool sandbox_holds, conn_holds, answered;
	int ok;
	void (*ready)(void *arg);
	void *ready_arg;
	enum rpc_format format;
	char *id;
	struct http_reply_opts opts;
	char peer[INET6_ADDRSTRLEN];
	uint64_t task_id;
	size_t bytes_in;
	int64_t t0;
};

static void pending_free_if_unheld(struct http_pending *p)
{
	if (p->sandbox_holds || p->conn_holds)
		return;
	free(p->id);
	free(p);
}

/* The sandbox's done(): called once, from the loop. */
static void pending_done(void *arg, int ok)
{
	struct http_pending *p = arg;
	p->sandbox_holds = false;
	p->answered = true;
	p->ok = ok ? 1 : 0;
	if (p->conn_holds && p->ready)
		p->ready(p->ready_arg); /* may finish (and free) p: nothing after this */
	else
		pending_free_if_unheld(p);
}

void http_pending_watch(struct http_pending *p, void (*ready)(void *arg), void *arg)
{
	p->ready = ready;
	p->ready_arg = arg;
}

/* The response of a method whose result members are the given ones, as the synchronous
 * path builds it. */
static void encode_result(struct jail *j, enum rpc_format format, const char *id,
			  const struct http_reply_opts *o, const struct rpc_member *m, size_t n,
			  struct buf *out)
{
	struct buf payload;
	struct err e;
	buf_init(&payload, (size_t)j->cfg.result_max_size * 2 + 65536);
	buf_reset(out);
	if (rpc_encode(&payload, format, id, m, n, &e) < 0 ||
	    http_reply(out, o, 200, NULL, payload.data, payload.len, &e) < 0) {
		log_err("encoding response: %s", e.msg);
		buf_reset(out);
		http_reply_error(out, o, 500, "Internal error encoding response", NULL);
	}
	buf_free(&payload);
}

void http_pending_finish(struct jail *j, struct http_pending *p, bool give_up, struct buf *out)
{
	int ok = !give_up && p->answered ? p->ok : 0;
	struct rpc_member m = {.name = "update", .type = RPC_T_INT, .i = ok};
	encode_result(j, p->format, p->id, &p->opts, &m, 1, out);
	jail_metrics_request(j, "update", 200, j->now_ms() - p->t0);
	log_info("rpc update %s task=%llu from=%s status=200 bytes_in=%zu ms=%lld update=%d%s",
		 p->format == RPC_FORMAT_XML ? "xml" : "json", (unsigned long long)p->task_id,
		 p->peer, p->bytes_in, (long long)(j->now_ms() - p->t0), ok,
		 p->answered ? "" : " (no answer in time)");
	p->conn_holds = false;
	p->ready = NULL;
	pending_free_if_unheld(p);
}

void http_pending_cancel(struct http_pending *p)
{
	p->conn_holds = false;
	p->ready = NULL;
	pending_free_if_unheld(p);
}

int http_handle_body_async(struct jail *j, const struct http_request *rq, char *body, size_t len,
			   struct buf *out, struct http_pending **later)
{
	struct rpc_request req = {0};
	struct err e;
	int64_t t0 = j->now_ms();
	if (later)
		*later = NULL;
	int pr = rpc_parse(body, len, &req, &e);
	free(body); /* the tree holds what is needed from here on */
	if (pr < 0) {
		reply_error(j, rq, out, 400, e.msg);
		rpc_request_free(&req);
		return HTTP_REPLY_READY;
	}
	struct methods_result *res = malloc(sizeof *res);
	if (!res) {
		reply_error(j, rq, out, 500, "out of memory");
		rpc_request_free(&req);
		return HTTP_REPLY_READY;
	}
	/* Only update answers later, and only when the caller can wait. */
	struct http_pending *p = NULL;
	struct jail_defer defer = {0};
	if (later && strcmp(req.method, "update") == 0 && (p = calloc(1, sizeof *p))) {
		defer.done = pending_done;
		defer.arg = p;
		j->defer = &defer;
	}
	methods_call(j, &req, res);
	j->defer = NULL;
	char peer[INET6_ADDRSTRLEN];
	http_peer_text(rq->peer, peer, sizeof peer);
	if (defer.taken) {
		p->sandbox_holds = true; /* the sandbox's done() comes, whatever happens here */
		p->conn_holds = res->status == 200;
	}
	if (defer.taken && res->status == 200) {
		p->format = req.format;
		p->id = req.id ? strdup(req.id) : NULL;
		p->opts = opts_for(j, rq);
		snprintf(p->peer, sizeof p->peer, "%s", peer);
		p->task_id = res->task_id;
		p->bytes_in = len;
		p->t0 = t0;
		if (req.id && !p->id) {
			/* cannot answer later without the id: the sandbox's done() frees p */
			p->conn_holds = false;
			reply_error(j, rq, out, 500, "out of memory");
			p = NULL;
		} else {
			*later = p;
			p = NULL;
			buf_reset(out);
		}
		methods_result_free(res);
		free(res);
		rpc_request_free(&req);
		return *later ? HTTP_REPLY_LATER : HTTP_REPLY_READY;
	}
	if (!defer.taken)
		free(p);
	if (res->status != 200) {
		reply_error(j, rq, out, res->status, res->detail);
	} else {
		struct http_reply_opts o = opts_for(j, rq);
		encode_result(j, req.format, req.id, &o, res->m, res->n, out);
	}
	jail_metrics_request(j, method_for_log(&req), res->status, j->now_ms() - t0);
	/* Proxies poll `available` every second: those answers are debug noise. */
	log_msg(strcmp(req.method, "available") == 0 && res->status == 200 ? LOG_LVL_DEBUG
									   : LOG_LVL_INFO,
		"rpc %s %s task=%llu from=%s status=%d bytes_in=%zu ms=%lld", method_for_log(&req),
		req.format == RPC_FORMAT_XML ? "xml" : "json", (unsigned long long)res->task_id,
		peer, res->status, len, (long long)(j->now_ms() - t0));
	methods_result_free(res);
	free(res);
	rpc_request_free(&req);
	return HTTP_REPLY_READY;
}

void http_handle_body(struct jail *j, const struct http_request *rq, char *body, size_t len,
		      struct buf *out)
{
	http_handle_body_async(j, rq, body, len, out, NULL);
}
