/* proxy/httphead: strict HTTP/1.x head parsing and rewriting, driven on byte strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httphead.h"

/* ---- samples ---- */

#define RPC_BODY                                                                                   \
	"{\"method\":\"available\",\"params\":{\"maxmemory\":134217728},\"id\":\"3-79890-"         \
	"840949600\"}"

/* What the plugin's curl sends (§1.3), body included. */
static const char rpc_post[] = "POST /secret HTTP/1.1\r\n"
			       "Host: jail.example.org:8443\r\n"
			       "User-Agent: VPL \r\n"
			       "Accept: */*\r\n"
			       "Content-type: application/json;charset=UTF-8\r\n"
			       "Content-Length: 80\r\n"
			       "Expect: 100-continue\r\n"
			       "\r\n" RPC_BODY;

/* Chrome opening the monitor socket, followed by the first bytes of a frame. */
static const char ws_upgrade[] =
    "GET /123456789012345678901234567890123456789042/monitor HTTP/1.1\r\n"
    "Host: vpl.example.org\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: https://moodle.example.org\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-US,en;q=0.9,es;q=0.8\r\n"
    "Cookie: MoodleSession=abcdef0123456789; VPL_Iwh=y\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n"
    "\x81\x85\x37\xfa\x21\x3d";

static const char webapp_get[] =
    "GET /static/app.js?v=3 HTTP/1.1\r\n"
    "Host: vpl.example.org:8443\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0\r\n"
    "Accept: */*\r\n"
    "Referer: https://vpl.example.org:8443/\r\n"
    "Cookie: a=1; VPL_web=123; b=2\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

/* The worker's answer to /<ticket>/httpPassthrough (§6.8), then the reference's 200. */
static const char redirect_resp[] = "HTTP/1.1 302 REDIRECT\r\n"
				    "Server: vpl-jail-system 5.0.1\r\n"
				    "Connection: close\r\n"
				    "Set-Cookie: VPL_Iwh=y; Path=/; SameSite=none; Secure\r\n"
				    "Set-Cookie: VPL_web=123; Path=/\r\n"
				    "Location: /\r\n"
				    "Content-Length: 0\r\n"
				    "\r\n";

static const char ok_resp[] =
    "HTTP/1.1 200 OK\r\n"
    "Server: vpl-jail-system 5.0.1\r\n"
    "Connection: close\r\n"
    "Content-Length: 177\r\n"
    "Content-Type: application/json; charset=utf-8\r\n"
    "\r\n"
    "{\"jsonrpc\":\"2.0\",\"result\":{\"status\":\"ready\",\"load\":34,\"maxtime\":1800,"
    "\"maxfilesize\":67108864,\"maxmemory\":2097152000,\"maxprocesses\":500,\"secureport\":"
    "8091},\"id\":\"2-2202-663130770\"}";

#define S(x) (x), (sizeof(x) - 1)

/* ---- helpers ---- */

static int parse(struct httphead *h, bool response, const char *s, size_t n, struct err *err)
{
	httphead_init(h);
	err_clear(err);
	return httphead_parse(h, response, s, n, err);
}

static bool span_eq(const char *p, size_t n, const char *s)
{
	return p && n == strlen(s) && memcmp(p, s, n) == 0;
}

static void assert_span(const char *p, size_t n, const char *s)
{
	if (!span_eq(p, n, s))
		fail_msg("got '%.*s', want '%s'", (int)(p ? n : 0), p ? p : "", s);
}

static void assert_cookie(const struct httphead *h, const char *name, const char *want)
{
	size_t len = 0;
	const char *v = httphead_cookie(h, name, &len);
	assert_span(v, len, want);
}

static void assert_same_head(const struct httphead *a, const struct httphead *b)
{
	assert_int_equal(a->is_response, b->is_response);
	assert_int_equal(a->head_len, b->head_len);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->minor_version, b->minor_version);
	assert_int_equal(a->content_length, b->content_length);
	assert_int_equal(a->chunked, b->chunked);
	assert_int_equal(a->expect_continue, b->expect_continue);
	assert_int_equal(a->upgrade_websocket, b->upgrade_websocket);
	assert_int_equal(a->connection_close, b->connection_close);
	assert_int_equal(a->method_len, b->method_len);
	assert_int_equal(a->target_len, b->target_len);
	if (!a->is_response) {
		assert_memory_equal(a->method, b->method, a->method_len);
		assert_memory_equal(a->target, b->target, a->target_len);
	}
	assert_int_equal(a->nfields, b->nfields);
	for (size_t i = 0; i < a->nfields; i++) {
		assert_int_equal(a->fields[i].name_len, b->fields[i].name_len);
		assert_int_equal(a->fields[i].value_len, b->fields[i].value_len);
		assert_memory_equal(a->fields[i].name, b->fields[i].name, a->fields[i].name_len);
		assert_memory_equal(a->fields[i].value, b->fields[i].value, a->fields[i].value_len);
	}
}

/* The same outcome (result, status, fields) whatever the input's split: in two parts at
 * every point, and one byte at a time with the prefix moved to a new buffer each time. */
static void assert_split_invariant(bool response, const char *s, size_t n)
{
	struct httphead ref, h;
	struct err e0, e;
	int r0 = parse(&ref, response, s, n, &e0);
	for (size_t k = 0; k <= n; k++) {
		int r = parse(&h, response, s, k, &e);
		if (r == 0)
			r = httphead_parse(&h, response, s, n, &e);
		assert_int_equal(r, r0);
		if (r0 < 0)
			assert_int_equal(e.code, e0.code);
		else if (r0 == 1)
			assert_same_head(&h, &ref);
		httphead_free(&h);
	}
	httphead_init(&h);
	int r = 0;
	for (size_t k = 0; k <= n && r == 0; k++) {
		char *moved = malloc(k ? k : 1);
		memcpy(moved, s, k);
		r = httphead_parse(&h, response, moved, k, &e);
		free(moved);
	}
	assert_int_equal(r, r0);
	if (r0 < 0)
		assert_int_equal(e.code, e0.code);
	else if (r0 == 1)
		assert_same_head(&h, &ref);
	httphead_free(&h);
	httphead_free(&ref);
}

/* ---- parsing the samples ---- */

static void rpc_post_head(void **state)
{
	(void)state;
	struct httphead h;
	struct err e;
	assert_int_equal(parse(&h, false, S(rpc_post), &e), 1);
	assert_false(h.is_response);
	assert_span(h.method, h.method_len, "POST");
	assert_span(h.target, h.target_len, "/secret");
	assert_int_equal(h.minor_version, 1);
	assert_int_equal(h.nfields, 6);
	assert_int_equal(h.head_len, sizeof rpc_post - 1 - strlen(RPC_BODY));
	assert_memory_equal(rpc_post + h.head_len, RPC_BODY, strlen(RPC_BODY));
	assert_int_equal(h.content_length, (long long)strlen(RPC_BODY));
	assert_true(h.expect_continue);
	assert_false(h.chunked || h.upgrade_websocket || h.connection_close);
	const struct httphead_field *f = httphead_get(&h, "user-agent");
	assert_non_null(f);
	assert_span(f->name, f->name_len, "User-Agent");
	assert_span(f->value, f->value_len, "VPL"); /* OWS trimmed in the view, kept on the wire */
	f = httphead_get(&h, "CONTENT-TYPE");
	assert_non_null(f);
	assert_span(f->value, f->value_len, "application/json;charset=UTF-8");
	assert_null(httphead_get(&h, "Transfer-Encoding"));
	assert_null(httphead_get(&h, "Content")); /* whole names only */
	httphead_free(&h);
	httphead_free(&h); /* twice is fine */
}

static void websocket_upgrade_head(void **state)
{
	(void)state;
	struct httphead h;
	struct err e;
	assert_int_equal(parse(&h, false, S(ws_upgrade), &e), 1);
	assert_span(h.method, h.method_len, "GET");
	assert_span(h.target, h.target_len, "/123456789012345678901234567890123456789042/monitor");
	assert_true(h.upgrade_websocket);
	assert_int_equal(h.content_length, -1);
	assert_int_equal(h.nfields, 13);
	assert_int_equal(sizeof ws_upgrade - 1 - h.head_len, 6); /* the frame bytes */
	size_t len;
	const char *v = httphead_cookie(&h, "VPL_Iwh", &len);
	assert_span(v, len, "y");
	assert_null(httphead_cookie(&h, "VPL_web", &len));
	httphead_free(&h);

	/* Firefox's Connection list; Upgrade alone decides */
	static const char ff[] = "GET /1/execute HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, "
				 "Upgrade\r\nUpgrade: WebSocket\r\n\r\n";
	assert_int_equal(parse(&h, false, S(ff), &e), 1);
	assert_true(h.upgrade_websocket);
	httphead_free(&h);
	static const char no[] = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: x, "
				 "close\r\n\r\n";
	assert_int_equal(parse(&h, false, S(no), &e), 1);
	assert_false(h.upgrade_websocket);
	assert_true(h.connection_close);
	httphead_free(&h);
}

static void webapp_cookies(void **state)
{
	(void)state;
	struct httphead h;
	struct err e;
	size_t len;
	assert_int_equal(parse(&h, false, S(webapp_get), &e), 1);
	assert_span(h.target, h.target_len, "/static/app.js?v=3");
	assert_int_equal(h.head_len, sizeof webapp_get - 1);
	assert_cookie(&h, "VPL_web", "123");
	assert_cookie(&h, "a", "1");
	assert_cookie(&h, "b", "2");
	assert_null(httphead_cookie(&h, "c", &len));
	assert_null(httphead_cookie(&h, "VPL", &len));
	assert_null(httphead_cookie(&h, "vpl_web", &len)); /* cookie names are case-sensitive */
	httphead_free(&h);

	static const char many[] = "GET / HTTP/1.0\r\n"
				   "Cookie: x=1;VPL_web2=9\r\n"
				   "cookie:\tflag ;  VPL_web = \"77\" ; z=\r\n"
				   "Cookie: VPL_web=88\r\n\r\n";
	assert_int_equal(parse(&h, false, S(many), &e), 1);
	assert_cookie(&h, "VPL_web", "\"77\""); /* first match */
	assert_cookie(&h, "VPL_web2", "9");
	assert_cookie(&h, "z", "");
	assert_null(httphead_cookie(&h, "flag", &len));
	httphead_free(&h);
}

static void response_heads(void **state)
{
	(void)state;
	struct httphead h;
	struct err e;
	size_t len;
	assert_int_equal(parse(&h, true, S(redirect_resp), &e), 1);
	assert_true(h.is_response);
	assert_int_equal(h.status, 302);
	assert_int_equal(h.minor_version, 1);
	assert_true(h.connection_close);
	assert_int_equal(h.content_length, 0);
	assert_null(h.method);
	assert_cookie(&h, "VPL_web", "123");
	assert_cookie(&h, "VPL_Iwh", "y");
	assert_null(httphead_cookie(&h, "Path", &len)); /* an attribute, not a cookie */
	httphead_free(&h);

	assert_int_equal(parse(&h, true, S(ok_resp), &e), 1);
	assert_int_equal(h.status, 200);
	assert_int_equal(h.content_length, 177);
	assert_int_equal(sizeof ok_resp - 1 - h.head_len, 177);
	httphead_free(&h);

	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n";
	assert_int_equal(parse(&h, true, S(cont), &e), 1);
	assert_int_equal(h.status, 100);
	assert_int_equal(h.head_len, 25);
	httphead_free(&h);

	static const char bare[] = "HTTP/1.0 204\r\nTransfer-Encoding: gzip\r\n\r\n";
	assert_int_equal(parse(&h, true, S(bare), &e), -1); /* TE in HTTP/1.0 */
	assert_int_equal(e.code, 502);
	httphead_free(&h);
	static const char nophrase[] = "HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n";
	assert_int_equal(parse(&h, true, S(nophrase), &e), 1);
	assert_true(h.chunked);
	httphead_free(&h);
	static const char upg[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
				  "Upgrade: websocket\r\nSec-WebSocket-Accept: "
				  "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
	assert_int_equal(parse(&h, true, S(upg), &e), 1);
	assert_true(h.upgrade_websocket);
	assert_int_equal(h.status, 101);
	httphead_free(&h);
}

static void every_split_point(void **state)
{
	(void)state;
	assert_split_invariant(false, S(rpc_post));
	assert_split_invariant(false, S(ws_upgrade));
	assert_split_invariant(false, S(webapp_get));
	assert_split_invariant(true, S(redirect_resp));
	assert_split_invariant(true, S(ok_resp));
	/* refusals too: the same status however the bytes arrive */
	static const char bad1[] = "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n";
	static const char bad2[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n";
	static const char bad3[] = "GET / HTTP/2.0\r\n\r\n";
	assert_split_invariant(false, S(bad1));
	assert_split_invariant(false, S(bad2));
	assert_split_invariant(false, S(bad3));
	assert_split_invariant(true, S(bad1));
}

/* ---- refusals ---- */

struct refusal {
	const char *what;
	bool response;
	const char *head;
	int status;
};

static const struct refusal refusals[] = {
    {"CL+TE", false,
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"TE+CL", false,
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
    {"two CLs", false,
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
    {"CL list", false, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400},
    {"CL plus", false, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400},
    {"CL minus", false, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
    {"CL inner space", false, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", 400},
    {"CL hex", false, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400},
    {"CL empty", false, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400},
    {"CL overflow", false,
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
    {"CL 19 digits", false,
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000000000\r\n\r\n", 400},
    {"space before colon", false, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", 400},
    {"tab before colon", false, "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400},
    {"obs-fold", false, "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400},
    {"obs-fold tab", false, "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", 400},
    {"fold first", false, "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
    {"CR in value", false, "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400},
    {"bare LF", false, "GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n", 400},
    {"bare LF end", false, "GET / HTTP/1.1\r\nHost: a\r\n\n", 400},
    {"LF request line", false, "GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
    {"DEL in value", false, "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7f\r\n\r\n", 400},
    {"ESC in value", false, "GET / HTTP/1.1\r\nHost: a\r\nX-A: \x1b[31m\r\n\r\n", 400},
    {"empty name", false, "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400},
    {"bad name", false, "GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", 400},
    {"no colon", false, "GET / HTTP/1.1\r\nHost: a\r\nX-A\r\n\r\n", 400},
    {"absolute form", false, "GET http://evil.example/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"authority form", false, "CONNECT evil.example:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"asterisk", false, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"8-bit target", false, "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"two spaces", false, "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"trailing space", false, "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
    {"bad method", false, "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"no version", false, "GET /\r\nHost: a\r\n\r\n", 400},
    {"lower version", false, "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
    {"HTTP/1.10", false, "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400},
    {"HTTP/2.0", false, "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
    {"HTTP/1.2", false, "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505},
    {"HTTP/0.9", false, "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505},
    {"h2 preface", false, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400},
    {"empty first line", false, "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"TE gzip", false, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
    {"TE gzip,chunked", false,
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
    {"TE chunked twice", false,
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
     "chunked\r\n\r\n",
     400},
    {"TE chunked,gzip", false,
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400},
    {"TE param", false, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n",
     400},
    {"TE empty", false, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400},
    {"TE in 1.0", false, "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"TE vertical tab", false,
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0b"
     "chunked\r\n\r\n",
     400},
    {"two Hosts", false, "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400},
    {"no Host", false, "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400},
    {"resp obs-fold", true, "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\n\r\n", 502},
    {"resp CL+TE", true,
     "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 502},
    {"resp two CLs", true, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
     502},
    {"resp HTTP/2", true, "HTTP/2.0 200 OK\r\n\r\n", 502},
    {"resp status 4 digits", true, "HTTP/1.1 2000 OK\r\n\r\n", 502},
    {"resp status 099", true, "HTTP/1.1 099 X\r\n\r\n", 502},
    {"resp status 600", true, "HTTP/1.1 600 X\r\n\r\n", 502},
    {"resp no status", true, "HTTP/1.1\r\n\r\n", 502},
    {"resp request line", true, "GET / HTTP/1.1\r\n\r\n", 502},
    {"resp CR in reason", true, "HTTP/1.1 200 O\rK\r\n\r\n", 502},
    {"resp bare LF", true, "HTTP/1.1 200 OK\n\n", 502},
};

static void smuggling_refused(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof refusals / sizeof *refusals; i++) {
		const struct refusal *c = &refusals[i];
		struct httphead h;
		struct err e;
		int r = parse(&h, c->response, c->head, strlen(c->head), &e);
		if (r != -1 || e.code != c->status)
			fail_msg("%s: got %d/%d, want -1/%d (%s)", c->what, r, e.code, c->status,
				 e.msg);
		assert_non_null(strstr(e.msg, "refused"));
		/* refused for good, with the same status */
		err_clear(&e);
		assert_int_equal(httphead_parse(&h, c->response, c->head, strlen(c->head), &e), -1);
		assert_int_equal(e.code, c->status);
		assert_null(httphead_get(&h, "Host"));
		httphead_free(&h);
	}
}

/* Accepted edge cases next to the refusals, so the rules are not stricter than written. */
static void accepted_edges(void **state)
{
	(void)state;
	struct httphead h;
	struct err e;
	static const char two_equal[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n"
					"content-length:7\t\r\n\r\n";
	assert_int_equal(parse(&h, false, S(two_equal), &e), 1);
	assert_int_equal(h.content_length, 7);
	httphead_free(&h);
	static const char chunked[] =
	    "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n"
	    "\r\n5\r\nhello\r\n0\r\n\r\n";
	assert_int_equal(parse(&h, false, S(chunked), &e), 1);
	assert_true(h.chunked); /* the caller answers 501 unless it tunnels */
	assert_int_equal(h.content_length, -1);
	httphead_free(&h);
	static const char http10[] = "GET /OK HTTP/1.0\r\n\r\n";
	assert_int_equal(parse(&h, false, S(http10), &e), 1);
	assert_int_equal(h.minor_version, 0);
	assert_int_equal(h.nfields, 0);
	assert_int_equal(h.head_len, sizeof http10 - 1);
	httphead_free(&h);
	static const char obs_text[] =
	    "GET /a?b=%C3%A9&c={x}|y HTTP/1.1\r\nHost: a\r\n"
	    "X-Name: Jos\xc3\xa9\tP\xe9rez\r\nX-Empty:\r\nX-Sp:   \r\n\r\n";
	assert_int_equal(parse(&h, false, S(obs_text), &e), 1);
	assert_span(httphead_get(&h, "x-name")->value, httphead_get(&h, "x-name")->value_len,
		    "Jos\xc3\xa9\tP\xe9rez");
	assert_int_equal(httphead_get(&h, "x-empty")->value_len, 0);
	assert_int_equal(httphead_get(&h, "x-sp")->value_len, 0);
	httphead_free(&h);
}

static char *head_of_size(size_t total)
{
	static const char pre[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
	char *s = malloc(total + 1);
	size_t pad = total - (sizeof pre - 1) - 4;
	memcpy(s, pre, sizeof pre - 1);
	memset(s + sizeof pre - 1, 'p', pad);
	memcpy(s + total - 4, "\r\n\r\n", 5);
	return s;
}

static void size_limits(void **state)
{
	(void)state;
	struct httphead h;
	struct err e;
	char *s = head_of_size(HTTPHEAD_MAX_BYTES);
	assert_int_equal(parse(&h, false, s, HTTPHEAD_MAX_BYTES, &e), 1);
	assert_int_equal(h.head_len, HTTPHEAD_MAX_BYTES);
	httphead_free(&h);
	free(s);
	/* one byte more: known too large as soon as 16 KiB arrived without the head's end */
	s = head_of_size(HTTPHEAD_MAX_BYTES + 1);
	assert_int_equal(parse(&h, false, s, HTTPHEAD_MAX_BYTES - 1, &e), 0);
	assert_int_equal(httphead_parse(&h, false, s, HTTPHEAD_MAX_BYTES, &e), -1);
	assert_int_equal(e.code, 413);
	httphead_free(&h);
	free(s);
	s = head_of_size(17 * 1024);
	assert_int_equal(parse(&h, false, s, 17 * 1024, &e), -1);
	assert_int_equal(e.code, 413);
	httphead_free(&h);
	assert_int_equal(parse(&h, true, s, 17 * 1024, &e), -1);
	assert_int_equal(e.code, 502);
	httphead_free(&h);
	free(s);
	/* the same with no line end at all */
	char *junk = malloc(HTTPHEAD_MAX_BYTES);
	memset(junk, 'G', HTTPHEAD_MAX_BYTES);
	assert_int_equal(parse(&h, false, junk, HTTPHEAD_MAX_BYTES - 1, &e), 0);
	assert_int_equal(httphead_parse(&h, false, junk, HTTPHEAD_MAX_BYTES, &e), -1);
	assert_int_equal(e.code, 413);
	httphead_free(&h);
	free(junk);

	/* 64 field lines pass, 65 are 431 */
	struct buf b;
	buf_init(&b, 1 << 16);
	assert_int_equal(buf_puts(&b, "GET / HTTP/1.1\r\nHost: a\r\n", NULL), 0);
	for (int i = 1; i < HTTPHEAD_MAX_FIELDS; i++)
		assert_int_equal(buf_printf(&b, NULL, "X-F%d: %d\r\n", i, i), 0);
	size_t at = b.len;
	assert_int_equal(buf_puts(&b, "\r\n", NULL), 0);
	assert_int_equal(parse(&h, false, b.data, b.len, &e), 1);
	assert_int_equal(h.nfields, HTTPHEAD_MAX_FIELDS);
	httphead_free(&h);
	b.len = at;
	assert_int_equal(buf_puts(&b, "X-F65: 65\r\n\r\n", NULL), 0);
	assert_int_equal(parse(&h, false, b.data, b.len, &e), -1);
	assert_int_equal(e.code, 431);
	httphead_free(&h);
	buf_free(&b);
}

static void lifecycle(void **state)
{
	(void)state;
	struct httphead h;
	struct err e;
	/* early refusal: as soon as the bad line ends, the rest never read */
	static const char early[] = "GET http://x/ HTTP/1.1\r\n";
	assert_int_equal(parse(&h, false, S(early), &e), -1);
	assert_int_equal(e.code, 400);
	httphead_free(&h);
	/* complete: later calls return 1 without looking at data */
	assert_int_equal(parse(&h, false, S(webapp_get), &e), 1);
	assert_int_equal(httphead_parse(&h, false, NULL, 0, &e), 1);
	/* movable once complete: pointers are into h's own copy */
	struct httphead *moved = malloc(sizeof *moved);
	memcpy(moved, &h, sizeof h);
	size_t len;
	assert_cookie(moved, "VPL_web", "123");
	httphead_free(moved);
	free(moved);
	/* the copy went with `moved`: h is only readied again */
	httphead_init(&h);
	assert_int_equal(httphead_parse(&h, true, S(redirect_resp), &e), 1);
	assert_int_equal(h.status, 302);
	httphead_free(&h);
	/* misuse */
	assert_int_equal(httphead_parse(&h, false, "GET", 3, &e), 0);
	assert_int_equal(httphead_parse(&h, true, "GET /", 5, &e), -1);
	assert_int_equal(e.code, 500);
	httphead_free(&h);
	assert_int_equal(httphead_parse(&h, false, "GET", 3, &e), 0);
	assert_int_equal(httphead_parse(&h, false, "GE", 2, &e), -1);
	assert_int_equal(e.code, 500);
	httphead_free(&h);
	/* nothing to read yet */
	assert_null(httphead_get(&h, "Host"));
	assert_null(httphead_cookie(&h, "VPL_web", &len));
	struct buf out;
	buf_init(&out, 1024);
	assert_int_equal(httphead_write(&h, NULL, &out, &e), -1);
	assert_int_equal(e.code, EINVAL);
	buf_free(&out);
}

/* ---- writing ---- */

/* Writes h with edit e and checks the output against `want`, then that it parses again. */
static void assert_write(const struct httphead *h, const struct httphead_edit *e, const char *want)
{
	struct buf out;
	struct err err;
	buf_init(&out, 1 << 16);
	assert_int_equal(httphead_write(h, e, &out, &err), 0);
	if (out.len != strlen(want) || memcmp(out.data, want, out.len) != 0)
		fail_msg("wrote:\n%s\nwant:\n%s", out.data, want);
	struct httphead again;
	assert_int_equal(parse(&again, h->is_response, out.data, out.len, &err), 1);
	assert_int_equal(again.head_len, out.len);
	assert_int_equal(again.content_length, h->content_length);
	assert_int_equal(again.upgrade_websocket, h->upgrade_websocket);
	httphead_free(&again);
	buf_free(&out);
}

static void write_round_trip(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		size_t n;
		bool response;
	} samples[] = {
	    {S(rpc_post), false},     {S(ws_upgrade), false}, {S(webapp_get), false},
	    {S(redirect_resp), true}, {S(ok_resp), true},
	};
	for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
		struct httphead h;
		struct err e;
		assert_int_equal(parse(&h, samples[i].response, samples[i].s, samples[i].n, &e), 1);
		char *head = strndup(samples[i].s, h.head_len);
		assert_write(&h, NULL, head);
		assert_write(&h, &(struct httphead_edit){0}, head);
		/* an edit that matches nothing changes nothing either */
		const char *const drop[] = {"X-Nothing", NULL};
		assert_write(&h,
			     &(struct httphead_edit){.cookie_name = "absent",
						     .cookie_value = "1",
						     .cookie_value_len = 1,
						     .drop = drop},
			     head);
		free(head);
		httphead_free(&h);
	}
}

static void write_target(void **state)
{
	(void)state;
	struct httphead h;
	struct err e;
	assert_int_equal(parse(&h, false, S(ws_upgrade), &e), 1);
	const char *t = "/1234567890123456789012345678901234567890/monitor";
	struct buf want;
	buf_init(&want, 1 << 16);
	assert_int_equal(buf_printf(&want, NULL, "GET %s%s", t, strstr(ws_upgrade, " HTTP/1.1")),
			 0);
	want.len -= 6; /* not the frame bytes */
	want.data[want.len] = '\0';
	assert_write(&h, &(struct httphead_edit){.target = t, .target_len = strlen(t)}, want.data);
	buf_free(&want);
	httphead_free(&h);
}

static void write_cookie_request(void **state)
{
	(void)state;
	struct httphead h;
	struct err e;
	struct httphead_edit ed = {
	    .cookie_name = "VPL_web", .cookie_value = "45", .cookie_value_len = 2};
	assert_int_equal(parse(&h, false, S(webapp_get), &e), 1);
	struct buf want;
	buf_init(&want, 1 << 16);
	buf_puts(&want,
		 "GET /static/app.js?v=3 HTTP/1.1\r\n"
		 "Host: vpl.example.org:8443\r\n"
		 "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 "
		 "Firefox/125.0\r\n"
		 "Accept: */*\r\n"
		 "Referer: https://vpl.example.org:8443/\r\n"
		 "Cookie: a=1; VPL_web=45; b=2\r\n"
		 "Connection: keep-alive\r\n"
		 "\r\n",
		 NULL);
	assert_write(&h, &ed, want.data);
	buf_free(&want);
	httphead_free(&h);

	/* every occurrence, spacing and other cookies kept, look-alike names untouched */
	static const char many[] = "GET / HTTP/1.1\r\nHost: a\r\n"
				   "Cookie:  VPL_web = \"9\" ;x=y;VPL_web2=3;XVPL_web=4\r\n"
				   "X-Cookie: VPL_web=5\r\n"
				   "cookie: VPL_web=8 \r\n"
				   "Cookie: VPL_web\r\n\r\n";
	static const char many_want[] = "GET / HTTP/1.1\r\nHost: a\r\n"
					"Cookie:  VPL_web = 45 ;x=y;VPL_web2=3;XVPL_web=4\r\n"
					"X-Cookie: VPL_web=5\r\n"
					"cookie: VPL_web=45 \r\n"
					"Cookie: VPL_web\r\n\r\n";
	assert_int_equal(parse(&h, false, S(many), &e), 1);
	assert_write(&h, &ed, many_want);
	/* an empty value is a value */
	assert_write(&h, &(struct httphead_edit){.cookie_name = "x", .cookie_value = NULL},
		     "GET / HTTP/1.1\r\nHost: a\r\n"
		     "Cookie:  VPL_web = \"9\" ;x=;VPL_web2=3;XVPL_web=4\r\n"
		     "X-Cookie: VPL_web=5\r\n"
		     "cookie: VPL_web=8 \r\n"
		     "Cookie: VPL_web\r\n\r\n");
	httphead_free(&h);
}

static void write_cookie_response(void **state)
{
	(void)state;
	struct httphead h;
	struct err e;
	assert_int_equal(parse(&h, true, S(redirect_resp), &e), 1);
	size_t len;
	const char *v = httphead_cookie(&h, "VPL_web", &len);
	char routed[64];
	snprintf(routed, sizeof routed, "%.*s%s", (int)len, v, "0042");
	struct httphead_edit ed = {
	    .cookie_name = "VPL_web", .cookie_value = routed, .cookie_value_len = strlen(routed)};
	assert_write(&h, &ed,
		     "HTTP/1.1 302 REDIRECT\r\n"
		     "Server: vpl-jail-system 5.0.1\r\n"
		     "Connection: close\r\n"
		     "Set-Cookie: VPL_Iwh=y; Path=/; SameSite=none; Secure\r\n"
		     "Set-Cookie: VPL_web=1230042; Path=/\r\n"
		     "Location: /\r\n"
		     "Content-Length: 0\r\n"
		     "\r\n");
	httphead_free(&h);
	/* no attributes; a Cookie field in a response is not a Set-Cookie */
	static const char plain[] = "HTTP/1.1 200 OK\r\nCookie: VPL_web=1\r\nSet-Cookie: "
				    "VPL_web=1\r\nSet-Cookie: Path=/; VPL_web=2\r\n\r\n";
	assert_int_equal(parse(&h, true, S(plain), &e), 1);
	assert_write(&h, &ed,
		     "HTTP/1.1 200 OK\r\nCookie: VPL_web=1\r\nSet-Cookie: VPL_web=1230042\r\n"
		     "Set-Cookie: Path=/; VPL_web=2\r\n\r\n");
	httphead_free(&h);
}

static void write_drop_add(void **state)
{
	(void)state;
	struct httphead h;
	struct err e;
	static const char in[] = "GET /x HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6\r\nHost: a\r\n"
				 "x-forwarded-for: 7.7.7.7\r\nForwarded: for=6.6.6.6\r\n"
				 "X-Real-IP: 6.6.6.6\r\nAccept: */*\r\n\r\n";
	const char *const drop[] = {"X-Forwarded-For", "forwarded", "X-REAL-IP", NULL};
	assert_int_equal(parse(&h, false, S(in), &e), 1);
	assert_write(&h,
		     &(struct httphead_edit){.drop = drop,
					     .add = "X-Forwarded-For: 192.0.2.7\r\n"
						    "X-Forwarded-Proto: https\r\n"},
		     "GET /x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n"
		     "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: https\r\n\r\n");
	/* all at once */
	const char *const drop_host[] = {"host", NULL};
	assert_write(&h,
		     &(struct httphead_edit){.target = "/y?z",
					     .target_len = 4,
					     .drop = drop_host,
					     .add = "Host: worker:8080\r\n"},
		     "GET /y?z HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6\r\n"
		     "x-forwarded-for: 7.7.7.7\r\nForwarded: for=6.6.6.6\r\n"
		     "X-Real-IP: 6.6.6.6\r\nAccept: */*\r\nHost: worker:8080\r\n\r\n");
	httphead_free(&h);
}

static void write_refuses_bad_edits(void **state)
{
	(void)state;
	struct httphead h, resp;
	struct err e;
	assert_int_equal(parse(&h, false, S(webapp_get), &e), 1);
	assert_int_equal(parse(&resp, true, S(redirect_resp), &e), 1);
	const struct httphead_edit bad[] = {
	    {.target = "http://evil/", .target_len = 12},
	    {.target = "", .target_len = 0},
	    {.target = "/a b", .target_len = 4},
	    {.target = "/a\r\nX-Evil: 1", .target_len = 13},
	    {.cookie_name = "VPL_web", .cookie_value = "1;evil=2", .cookie_value_len = 8},
	    {.cookie_name = "VPL_web", .cookie_value = "1\r\nX-Evil: 1", .cookie_value_len = 12},
	    {.cookie_name = "VPL_web", .cookie_value = "1 2", .cookie_value_len = 3},
	    {.cookie_name = "VPL_web", .cookie_value = NULL, .cookie_value_len = 3},
	    {.cookie_name = "VPL web", .cookie_value = "1", .cookie_value_len = 1},
	    {.cookie_name = "", .cookie_value = "1", .cookie_value_len = 1},
	    {.add = "X-A: 1"},
	    {.add = "X-A: 1\n"},
	    {.add = "X-A: 1\r\n\r\nGET /smuggled HTTP/1.1\r\n"},
	    {.add = "X-A: 1\r\n folded\r\n"},
	    {.add = "X-A 1\r\n"},
	    {.add = "X-A: 1\rX-B: 2\r\n"},
	    {.add = "X-A: \x01\r\n"},
	};
	struct buf out;
	buf_init(&out, 1 << 16);
	buf_puts(&out, "kept", NULL);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		err_clear(&e);
		if (httphead_write(&h, &bad[i], &out, &e) != -1 || e.code != EINVAL)
			fail_msg("bad edit %zu accepted", i);
		assert_int_equal(out.len, 4);
	}
	err_clear(&e);
	assert_int_equal(httphead_write(&resp,
					&(struct httphead_edit){.target = "/", .target_len = 1},
					&out, &e),
			 -1);
	assert_int_equal(e.code, EINVAL);
	/* out's cap: nothing half-written */
	struct buf small;
	buf_init(&small, 40);
	buf_puts(&small, "kept", NULL);
	assert_int_equal(httphead_write(&h, NULL, &small, &e), -1);
	assert_int_equal(e.code, E2BIG);
	assert_int_equal(small.len, 4);
	assert_string_equal(small.data, "kept");
	buf_free(&small);
	/* appends after what out holds */
	assert_int_equal(httphead_write(&resp, NULL, &out, &e), 0);
	assert_int_equal(out.len, 4 + resp.head_len);
	assert_memory_equal(out.data + 4, redirect_resp, resp.head_len);
	buf_free(&out);
	httphead_free(&h);
	httphead_free(&resp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rpc_post_head),
	    cmocka_unit_test(websocket_upgrade_head),
	    cmocka_unit_test(webapp_cookies),
	    cmocka_unit_test(response_heads),
	    cmocka_unit_test(every_split_point),
	    cmocka_unit_test(smuggling_refused),
	    cmocka_unit_test(accepted_edges),
	    cmocka_unit_test(size_limits),
	    cmocka_unit_test(lifecycle),
	    cmocka_unit_test(write_round_trip),
	    cmocka_unit_test(write_target),
	    cmocka_unit_test(write_cookie_request),
	    cmocka_unit_test(write_cookie_response),
	    cmocka_unit_test(write_drop_add),
	    cmocka_unit_test(write_refuses_bad_edits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
