/*
 * Fuzz target for the worker's HTTP request handler: the input is read as a
 * raw HTTP/1.1 request (request line, headers, body) the way the network glue
 * presents it, then run through http_handle_headers() and http_handle_body()
 * with the real RPC codecs and methods behind them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_handler.h"
#include "log.h"

static struct jail g_jail;

static int64_t fake_now(void)
{
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_open("fuzz", 0, 0); /* quiet */
	jail_config_defaults(&g_jail.cfg);
	free(g_jail.cfg.drain_file);
	g_jail.cfg.drain_file = NULL;
	g_jail.cfg.request_max_size = 1 << 20;
	g_jail.tasks = task_table_new(8, 1 << 16);
	g_jail.now_ms = fake_now;
	return 0;
}

static enum http_method method_of(const char *m, size_t n)
{
	if (n == 3 && memcmp(m, "GET", 3) == 0)
		return HTTP_GET;
	if (n == 4 && memcmp(m, "HEAD", 4) == 0)
		return HTTP_HEAD;
	if (n == 4 && memcmp(m, "POST", 4) == 0)
		return HTTP_POST;
	return HTTP_OTHER;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	const char *eol = memchr(p, '\n', size);
	if (!eol)
		return 0;
	/* request line: METHOD SP PATH */
	const char *sp = memchr(p, ' ', (size_t)(eol - p));
	if (!sp)
		return 0;
	struct http_request rq = {0};
	char method[16] = "";
	size_t ml = (size_t)(sp - p) < sizeof method - 1 ? (size_t)(sp - p) : sizeof method - 1;
	memcpy(method, p, ml);
	rq.method = method_of(p, (size_t)(sp - p));
	rq.method_name = method;
	rq.path = sp + 1;
	const char *pe = memchr(rq.path, ' ', (size_t)(eol - rq.path));
	rq.path_len = (size_t)((pe ? pe : eol) - rq.path);
	rq.content_length = -1;
	/* headers until an empty line */
	const char *h = eol + 1;
	while (h < end) {
		const char *he = memchr(h, '\n', (size_t)(end - h));
		if (!he)
			he = end;
		if (he == h || (he == h + 1 && *h == '\r')) {
			h = he + 1;
			break;
		}
		if ((size_t)(he - h) > 16 && strncasecmp(h, "Content-Length: ", 16) == 0) {
			/* bounded by the line: the input is not NUL-terminated */
			long long v = 0;
			for (const char *d = h + 16; d < he && *d >= '0' && *d <= '9'; d++)
				v = v < (1LL << 40) ? v * 10 + (*d - '0') : v;
			rq.content_length = v;
		}
		if ((size_t)(he - h) >= 20 && strncasecmp(h, "Expect: 100-continue", 20) == 0)
			rq.expect_continue = true;
		h = he + 1;
	}
	struct buf out;
	buf_init(&out, 1 << 22);
	if (http_handle_headers(&g_jail, &rq, &out) == HTTP_NEED_BODY) {
		size_t blen = h < end ? (size_t)(end - h) : 0;
		char *body = malloc(blen ? blen : 1);
		if (blen)
			memcpy(body, h, blen);
		http_handle_body(&g_jail, &rq, body, blen, &out);
	}
	buf_free(&out);
	task_sweep(g_jail.tasks, INT64_MAX);
	return 0;
}
