/* The HTTP decisions and the RPC methods, driven without sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
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

/* ---- update: the answer comes later, from a (fake) sandbox ---- */

static void (*fake_done)(void *arg, int ok);
static void *fake_arg;
static size_t fake_files;
static int fake_update_rc;
static int ready_calls;

static int fake_start(void *sandbox, struct task *t, struct err *err)
{
	return 0;
}

static int fake_update(void *sandbox, struct task *t, struct task_files *files,
		       void (*done)(void *arg, int ok), void *arg, struct err *err)
{
	if (fake_update_rc < 0)
		return err_set(err, EINVAL, "the task is not running");
	fake_done = done;
	fake_arg = arg;
	fake_files = files->n;
	taskfiles_free(files); /* taken over, as the sandbox does */
	return 0;
}

static void on_ready(void *arg)
{
	ready_calls++;
}

/* tpl with its one "%s" replaced by admin (no printf: the templates are data). */
static void fill(char *out, size_t n, const char *tpl, const char *admin)
{
	const char *at = strstr(tpl, "%s");
	assert_non_null(at);
	snprintf(out, n, "%.*s%s%s", (int)(at - tpl), tpl, admin, at + 2);
}

static int update_async(struct jail *j, const char *admin, const char *tpl, struct buf *out,
			struct http_pending **p)
{
	char body[1024];
	fill(body, sizeof body, tpl, admin);
	struct http_request rq = post("/secret", (long long)strlen(body));
	buf_reset(out);
	assert_int_equal(http_handle_headers(j, &rq, out), HTTP_NEED_BODY);
	return http_handle_body_async(j, &rq, strdup(body), strlen(body), out, p);
}

static void update_deferred(void **state)
{
	static const char json[] =
	    "{\"method\":\"update\",\"params\":{\"files\":{\"index.php\":\"v2\"},"
	    "\"fileencoding\":{\"index.php\":0},\"filestodelete\":{\"old.php\":1},"
	    "\"adminticket\":\"%s\",\"pluginversion\":2026012812},\"id\":\"3-81280-4\"}";
	static const char xml[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodCall>\n<methodName>update"
	    "</methodName>\n<params><param><value><struct>\n<member><name>files</name><value>"
	    "<struct><member><name>index.php</name><value><string>v2</string></value></member>"
	    "</struct></value></member>\n<member><name>adminticket</name><value><string>%s"
	    "</string></value></member>\n</struct></value></param></params>\n</methodCall>\n";
	static const char xml_ok[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodResponse>\n<params>\n<param>\n"
	    "<struct>\n<member><name>update</name>\n<value><int>1</int></value>\n</member>\n"
	    "</struct>\n</param>\n</params>\n</methodResponse>\n";
	struct jail *j = *state;
	j->sandbox = j;
	j->start_task = fake_start;
	j->update_task = fake_update;
	struct buf out;
	call(j,
	     "{\"method\":\"request\",\"params\":{\"files\":{\"a.sh\":\"x\"},\"execute\":\"a.sh\","
	     "\"interactive\":1,\"lang\":\"C\",\"maxtime\":10},\"id\":\"1\"}",
	     &out);
	const char *a = strstr(out.data, "\"adminticket\":\"");
	assert_non_null(a);
	char admin[64];
	snprintf(admin, sizeof admin, "%.*s", (int)strcspn(a + 15, "\""), a + 15);
	struct http_pending *p = NULL;

	/* answered: the reference encoding, built when the sandbox says */
	fake_done = NULL;
	assert_int_equal(update_async(j, admin, json, &out, &p), HTTP_REPLY_LATER);
	assert_non_null(p);
	assert_int_equal(out.len, 0);
	assert_non_null(fake_done);
	assert_int_equal(fake_files, 1);
	ready_calls = 0;
	http_pending_watch(p, on_ready, NULL);
	fake_done(fake_arg, 1);
	assert_int_equal(ready_calls, 1);
	http_pending_finish(j, p, false, &out);
	assert_string_equal(body_of(&out),
			    "{\"jsonrpc\":\"2.0\",\"result\":{\"update\":1},\"id\":\"3-81280-4\"}");
	assert_non_null(strstr(out.data, "HTTP/1.1 200 OK\r\n"));
	/* writing failed */
	assert_int_equal(update_async(j, admin, json, &out, &p), HTTP_REPLY_LATER);
	http_pending_watch(p, on_ready, NULL);
	fake_done(fake_arg, 0);
	http_pending_finish(j, p, false, &out);
	assert_string_equal(body_of(&out),
			    "{\"jsonrpc\":\"2.0\",\"result\":{\"update\":0},\"id\":\"3-81280-4\"}");
	/* XML-RPC */
	assert_int_equal(update_async(j, admin, xml, &out, &p), HTTP_REPLY_LATER);
	http_pending_watch(p, on_ready, NULL);
	fake_done(fake_arg, 1);
	http_pending_finish(j, p, false, &out);
	assert_string_equal(body_of(&out), xml_ok);
	/* the client left first: the late answer finds nothing to call (ASan: no leak, no
	 * use after free) */
	ready_calls = 0;
	assert_int_equal(update_async(j, admin, json, &out, &p), HTTP_REPLY_LATER);
	http_pending_watch(p, on_ready, NULL);
	http_pending_cancel(p);
	fake_done(fake_arg, 1);
	assert_int_equal(ready_calls, 0);
	/* the connection's own bound: update=0 now, the late answer is dropped */
	assert_int_equal(update_async(j, admin, json, &out, &p), HTTP_REPLY_LATER);
	http_pending_watch(p, on_ready, NULL);
	http_pending_finish(j, p, true, &out);
	assert_string_equal(body_of(&out),
			    "{\"jsonrpc\":\"2.0\",\"result\":{\"update\":0},\"id\":\"3-81280-4\"}");
	fake_done(fake_arg, 1);
	assert_int_equal(ready_calls, 0);
	/* the sandbox refuses at once (not running): update=0 at once */
	fake_update_rc = -1;
	assert_int_equal(update_async(j, admin, json, &out, &p), HTTP_REPLY_READY);
	assert_null(p);
	assert_string_equal(body_of(&out),
			    "{\"jsonrpc\":\"2.0\",\"result\":{\"update\":0},\"id\":\"3-81280-4\"}");
	fake_update_rc = 0;
	/* the synchronous entry point cannot wait: update=0, the sandbox is not asked */
	fake_done = NULL;
	char body[1024];
	fill(body, sizeof body, json, admin);
	buf_free(&out);
	call(j, body, &out);
	assert_null(fake_done);
	assert_string_equal(body_of(&out),
			    "{\"jsonrpc\":\"2.0\",\"result\":{\"update\":0},\"id\":\"3-81280-4\"}");
	/* bad names: 400; unknown ticket: 500; neither reaches the sandbox */
	assert_int_equal(
	    update_async(j, admin,
			 "{\"method\":\"update\",\"params\":{\"files\":{\"../x\":\"y\"},"
			 "\"adminticket\":\"%s\"},\"id\":\"1\"}",
			 &out, &p),
	    HTTP_REPLY_READY);
	assert_non_null(strstr(out.data, "HTTP/1.1 400 "));
	assert_int_equal(update_async(j, "12345678901234", json, &out, &p), HTTP_REPLY_READY);
	assert_non_null(strstr(out.data, "HTTP/1.1 500 "));
	assert_null(fake_done);
	buf_free(&out);
	j->sandbox = NULL;
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
	    cmocka_unit_test_setup_teardown(update_deferred, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
