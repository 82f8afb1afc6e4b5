/* The HTTP decisions and the RPC methods, driven without sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "http_handler.h"
#include "http_reply.h"
#include "methods.h"

static int64_t fake_now;
static int64_t now_ms(void)
{
	return fake_now;
}

static int setup(void **state)
{
	struct jail *j = calloc(1, sizeof *j);
	jail_config_defaults(&j->cfg);
	free(j->cfg.urlpath);
	j->cfg.urlpath = strdup("/secret");
	free(j->cfg.drain_file);
	j->cfg.drain_file = NULL;
	j->tasks = task_table_new(4, 4096);
	j->now_ms = now_ms;
	*state = j;
	return 0;
}

static int teardown(void **state)
{
	struct jail *j = *state;
	task_table_free(j->tasks);
	jail_config_free(&j->cfg);
	free(j);
	return 0;
}

static struct http_request post(const char *path, long long len)
{
	return (struct http_request){.method = HTTP_POST,
				     .method_name = "POST",
				     .path = path,
				     .path_len = strlen(path),
				     .content_length = len};
}

static void call(struct jail *j, const char *body, struct buf *out)
{
	struct http_request rq = post("/secret", (long long)strlen(body));
	buf_init(out, 1 << 20);
	assert_int_equal(http_handle_headers(j, &rq, out), HTTP_NEED_BODY);
	http_handle_body(j, &rq, strdup(body), strlen(body), out);
}

static const char *body_of(const struct buf *b)
{
	const char *p = strstr(b->data, "\r\n\r\n");
	return p ? p + 4 : "";
}

static void urlpath_and_sizes(void **state)
{
	struct jail *j = *state;
	struct buf out;
	buf_init(&out, 1 << 20);
	struct http_request rq = post("/secreT", 10);
	assert_int_equal(http_handle_headers(j, &rq, &out), HTTP_REPLY_READY);
	assert_non_null(strstr(out.data, "HTTP/1.1 404 Not found\r\n"));
	buf_reset(&out);
	rq = post("/secret/", 10);
	assert_int_equal(http_handle_headers(j, &rq, &out), HTTP_REPLY_READY);
	buf_reset(&out);
	rq = post("/secret", j->cfg.request_max_size + 1);
	assert_int_equal(http_handle_headers(j, &rq, &out), HTTP_REPLY_READY);
	assert_non_null(strstr(out.data, "413 Request Entity Too Large"));
	buf_reset(&out);
	rq = post("/secret", -1);
	assert_int_equal(http_handle_headers(j, &rq, &out), HTTP_REPLY_READY);
	assert_non_null(strstr(out.data, "HTTP/1.1 400 "));
	buf_reset(&out);
	rq = post("/secret", j->cfg.request_max_size);
	assert_int_equal(http_handle_headers(j, &rq, &out), HTTP_NEED_BODY);
	buf_free(&out);
}

static void available_exact(void **state)
{
	struct jail *j = *state;
	struct buf out;
	call(j, "{\"method\":\"available\",\"params\":{\"maxmemory\":134217728},\"id\":\"3-1-2\"}",
	     &out);
	assert_string_equal(body_of(&out),
			    "{\"jsonrpc\":\"2.0\",\"result\":{\"status\":\"ready\",\"load\":0,"
			    "\"maxtime\":1200,\"maxfilesize\":67108864,\"maxmemory\":2097152000,"
			    "\"maxprocesses\":500,\"secureport\":443},\"id\":\"3-1-2\"}");
	assert_non_null(strstr(out.data, "Server: " VPL_SERVER_HEADER "\r\nConnection: close\r\n"));
	buf_free(&out);
}

static void request_lifecycle_and_expiry(void **state)
{
	struct jail *j = *state;
	struct buf out;
	fake_now = 1000;
	call(j,
	     "{\"method\":\"request\",\"params\":{\"files\":{\"a.sh\":\"x\"},\"execute\":\"a.sh\","
	     "\"interactive\":0,\"lang\":\"C\",\"maxtime\":10},\"id\":\"1\"}",
	     &out);
	assert_non_null(strstr(out.data, "HTTP/1.1 200 OK"));
	assert_int_equal(task_count(j->tasks), 1);
	buf_free(&out);
	/* Lifetime cap: 2 * maxtime + TASK_TTL_EXTRA. */
	assert_int_equal(task_sweep(j->tasks, 1000 + (2 * 10 + 30) * 1000 - 1), 0);
	assert_int_equal(task_sweep(j->tasks, 1000 + (2 * 10 + 30) * 1000), 1);
	assert_int_equal(task_count(j->tasks), 0);
}

static void busy_at_cap(void **state)
{
	struct jail *j = *state;
	struct buf out;
	for (int i = 0; i < 4; i++) {
		call(j,
		     "{\"method\":\"request\",\"params\":{\"files\":{},\"execute\":\"a.sh\"},"
		     "\"id\":\"1\"}",
		     &out);
		assert_non_null(strstr(out.data, "HTTP/1.1 200 OK"));
		buf_free(&out);
	}
	call(j, "{\"method\":\"available\",\"params\":{\"maxmemory\":1},\"id\":\"1\"}", &out);
	assert_non_null(strstr(body_of(&out), "\"status\":\"busy\",\"load\":4"));
	buf_free(&out);
	call(j,
	     "{\"method\":\"request\",\"params\":{\"files\":{},\"execute\":\"a.sh\"},\"id\":\"1\"}",
	     &out);
	assert_non_null(strstr(out.data, "HTTP/1.1 503 "));
	buf_free(&out);
}

static void clamp_rules(void **state)
{
	struct jail *j = *state;
	struct rpc_request req = {0};
	struct err e;
	const char *s = "{\"method\":\"request\",\"params\":{\"maxtime\":99999,\"maxmemory\":-5,"
			"\"maxfilesize\":1000,\"maxprocesses\":\"7\"}}";
	assert_int_equal(rpc_parse(s, strlen(s), &req, &e), 0);
	struct task_limits l = methods_clamp_limits(&j->cfg, &req);
	assert_int_equal(l.maxtime, 1200);
	assert_int_equal(l.maxmemory, j->cfg.max_memory);
	assert_int_equal(l.maxfilesize, 1000);
	assert_int_equal(l.maxprocesses, 7);
	rpc_request_free(&req);
}

static void get_routes(void **state)
{
	struct jail *j = *state;
	struct buf out;
	buf_init(&out, 1 << 16);
	struct http_request rq = {.method = HTTP_GET,
				  .method_name = "GET",
				  .path = "/ok",
				  .path_len = 3,
				  .content_length = -1};
	assert_int_equal(http_handle_headers(j, &rq, &out), HTTP_REPLY_READY);
	assert_non_null(strstr(out.data, "200 OK"));
	assert_non_null(strstr(out.data, "Set-Cookie: VPL_Iwh=y; Path=/; SameSite=none; Secure"));
	buf_reset(&out);
	rq.path = "/secret";
	rq.path_len = 7;
	assert_int_equal(http_handle_headers(j, &rq, &out), HTTP_REPLY_READY);
	assert_non_null(strstr(out.data, "404"));
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(urlpath_and_sizes, setup, teardown),
	    cmocka_unit_test_setup_teardown(available_exact, setup, teardown),
	    cmocka_unit_test_setup_teardown(request_lifecycle_and_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(busy_at_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(clamp_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(get_routes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
