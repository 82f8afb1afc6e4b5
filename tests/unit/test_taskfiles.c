#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "rpc.h"
#include "taskfiles.h"

static int parse(const char *json, struct rpc_request *req)
{
	struct err e;
	return rpc_parse(json, strlen(json), req, &e);
}

static void plain_base64_and_scripts(void **state)
{
	(void)state;
	struct rpc_request req = {0};
	assert_int_equal(
	    parse("{\"method\":\"request\",\"params\":{\"files\":{"
		  "\"vpl_run.sh\":\"#!/bin/bash\\r\\necho hi\\r\\n\","
		  "\"mac.sh\":\"a\\rb\\r\","
		  "\"./hello.c\":\"int main(){}\","
		  "\"logo.png.b64\":\"iVBORw0KGgo=\","
		  "\"sub/dir/x.txt\":\"x\"},"
		  "\"fileencoding\":{\"logo.png.b64\":1,\"vpl_run.sh\":0},"
		  "\"filestodelete\":{\"vpl_run.sh\":1,\"logo.png.b64\":1,\"ghost\":1}},"
		  "\"id\":\"1\"}",
		  &req),
	    0);
	struct task_files f;
	struct err e;
	assert_int_equal(taskfiles_from_request(&req, &f, &e), 0);
	assert_int_equal(f.n, 5);

	const struct task_file *run = taskfiles_find(&f, "vpl_run.sh");
	assert_non_null(run);
	assert_int_equal(run->mode, 0700);
	assert_int_equal(run->len, strlen("#!/bin/bash\necho hi\n"));
	assert_memory_equal(run->data, "#!/bin/bash\necho hi\n", run->len);
	assert_true(run->delete_after_compile);

	const struct task_file *mac = taskfiles_find(&f, "mac.sh");
	assert_memory_equal(mac->data, "a\nb\n", 4); /* no LF at all: CR -> LF */

	const struct task_file *c = taskfiles_find(&f, "hello.c");
	assert_non_null(c); /* "./" skipped */
	assert_int_equal(c->mode, 0600);
	assert_null(c->owned_data); /* borrowed, not copied */
	assert_false(c->delete_after_compile);

	const struct task_file *png = taskfiles_find(&f, "logo.png");
	assert_non_null(png);
	assert_int_equal(png->len, 8);
	assert_memory_equal(png->data, "\x89PNG\r\n\x1a\n", 8);
	/* "logo.png.b64" listed for old jails must not delete the decoded file */
	assert_false(png->delete_after_compile);
	assert_null(taskfiles_find(&f, "logo.png.b64"));
	assert_non_null(taskfiles_find(&f, "sub/dir/x.txt"));
	taskfiles_free(&f);
	rpc_request_free(&req);
}

static void rejects_bad_names_and_content(void **state)
{
	(void)state;
	const char *bad[] = {
	    "{\"method\":\"r\",\"params\":{\"files\":{\"../x\":\"a\"}}}",
	    "{\"method\":\"r\",\"params\":{\"files\":{\"a/../../x\":\"a\"}}}",
	    "{\"method\":\"r\",\"params\":{\"files\":{\"\":\"a\"}}}",
	    "{\"method\":\"r\",\"params\":{\"files\":{\"a\":5}}}",
	    "{\"method\":\"r\",\"params\":{\"files\":{\"a\":\"!!\"},\"fileencoding\":{\"a\":1}}}",
	    "{\"method\":\"r\",\"params\":{\"files\":{\"a\":\"x\"},\"filestodelete\":{\"..\":1}}}",
	    "{\"method\":\"r\",\"params\":{\"files\":\"nope\"}}",
	    "{\"method\":\"r\",\"params\":{}}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct rpc_request req = {0};
		assert_int_equal(parse(bad[i], &req), 0);
		struct task_files f;
		struct err e;
		assert_int_equal(taskfiles_from_request(&req, &f, &e), -1);
		assert_true(e.msg[0] != '\0');
		rpc_request_free(&req);
	}
}

static void empty_array_maps(void **state)
{
	(void)state;
	struct rpc_request req = {0};
	assert_int_equal(parse("{\"method\":\"r\",\"params\":{\"files\":{\"a\":\"x\"},"
			       "\"fileencoding\":[],\"filestodelete\":[]}}",
			       &req),
			 0);
	struct task_files f;
	struct err e;
	assert_int_equal(taskfiles_from_request(&req, &f, &e), 0);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.total_bytes, 1);
	taskfiles_free(&f);
	rpc_request_free(&req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(plain_base64_and_scripts),
	    cmocka_unit_test(rejects_bad_names_and_content),
	    cmocka_unit_test(empty_array_maps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
