/*
 * test_rpc_json.c - the JSON-RPC parser, the typed getters and rpc_parse's
 * format dispatch, against the spec's examples (§1.3, §2.2-2.7), the 5.0.1
 * wire samples (tests/unit/data/) and hostile input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rpc.h"
#include "testdata.h"

/* ---- helpers ------------------------------------------------------------- */

static void parse_ok_n(const char *body, size_t len, struct rpc_request *req)
{
	struct err e = {0};
	if (rpc_parse_json(body, len, req, &e) != 0)
		fail_msg("parse failed: %s", e.msg);
	assert_int_equal(req->format, RPC_FORMAT_JSON);
	assert_non_null(req->method);
	assert_true(json_is_object(req->params));
}

static void parse_ok(const char *body, struct rpc_request *req)
{
	parse_ok_n(body, strlen(body), req);
}

static void parse_file(const char *name, struct rpc_request *req)
{
	size_t len = 0;
	char *body = read_data(name, &len);
	parse_ok_n(body, len, req);
	free(body);
}

/* Parses body expecting failure with `needle` in the message. */
static void parse_fail_n(const char *body, size_t len, const char *needle)
{
	struct err e = {0};
	struct rpc_request req;
	memset(&req, 0x5a, sizeof req); /* garbage: the parser must not trust it */
	assert_int_equal(rpc_parse_json(body, len, &req, &e), -1);
	if (!strstr(e.msg, needle))
		fail_msg("error \"%s\" lacks \"%s\" (body %.60s)", e.msg, needle, body);
	assert_int_equal(strncmp(e.msg, "JSON parse error: ", 18), 0);
	assert_int_not_equal(e.code, 0);
	assert_null(req.method);
	assert_null(req.id);
	assert_null(req.params);
	rpc_request_free(&req);
}

static void parse_fail(const char *body, const char *needle)
{
	parse_fail_n(body, strlen(body), needle);
}

static long long get_int(const struct rpc_request *req, const char *name)
{
	struct err e = {0};
	long long v = -12345;
	if (rpc_get_int(req, name, &v, &e) != 1)
		fail_msg("int %s: %s", name, e.msg);
	return v;
}

static void assert_str_n(const struct rpc_request *req, const char *name, const char *want,
			 size_t wlen)
{
	struct err e = {0};
	const char *s = NULL;
	size_t n = 0;
	if (rpc_get_str(req, name, &s, &n, &e) != 1)
		fail_msg("str %s: %s", name, e.msg);
	assert_int_equal(n, wlen);
	assert_memory_equal(s, want, wlen);
}

static void assert_str(const struct rpc_request *req, const char *name, const char *want)
{
	assert_str_n(req, name, want, strlen(want));
}

static json_t *get_map(const struct rpc_request *req, const char *name)
{
	struct err e = {0};
	json_t *m = NULL;
	if (rpc_get_map(req, name, &m, &e) != 1)
		fail_msg("map %s: %s", name, e.msg);
	assert_true(json_is_object(m));
	return m;
}

static void assert_map_str(json_t *map, const char *key, const char *want)
{
	json_t *v = json_object_get(map, key);
	assert_true(json_is_string(v));
	assert_int_equal(json_string_length(v), strlen(want));
	assert_memory_equal(json_string_value(v), want, strlen(want));
}

static long long map_int(json_t *map, const char *key)
{
	long long v = -999;
	assert_int_equal(rpc_json_to_int(json_object_get(map, key), &v), 1);
	return v;
}

/* ---- the spec's examples ----------------------------------------------------- */

static void test_spec_1_3_available(void **state)
{
	struct rpc_request req;
	parse_file("spec_1_3_req.json", &req);
	assert_string_equal(req.method, "available");
	assert_string_equal(req.id, "3-79890-840949600");
	assert_int_equal(get_int(&req, "maxmemory"), 134217728);
	assert_int_equal(json_object_size(req.params), 1);
	rpc_request_free(&req);
}

static void test_spec_2_2_request(void **state)
{
	struct rpc_request req;
	struct err e = {0};
	const char *s;
	size_t n;
	json_t *m;
	long long v;

	parse_file("spec_2_2_req.json", &req);
	assert_string_equal(req.method, "request");
	assert_string_equal(req.id, "3-81234-100200300");
	json_t *files = get_map(&req, "files");
	assert_int_equal(json_object_size(files), 4);
	assert_map_str(files, "vpl_run.sh",
		       "#!/bin/bash\n. common_script.sh\ngcc -o vpl_execution hello.c\n");
	assert_map_str(files, "hello.c", "int main(){return 0;}\n");
	assert_map_str(files, "vpl_environment.sh", "#!/bin/bash\nexport VPL_LANG='en_US.UTF-8'\n");
	assert_int_equal(map_int(get_map(&req, "filestodelete"), "vpl_run.sh"), 1);
	json_t *enc = get_map(&req, "fileencoding");
	assert_int_equal(json_object_size(enc), 4);
	assert_int_equal(map_int(enc, "hello.c"), 0);
	assert_int_equal(get_int(&req, "maxtime"), 240);
	assert_int_equal(get_int(&req, "maxfilesize"), 67108864);
	assert_int_equal(get_int(&req, "maxmemory"), 134217728);
	assert_int_equal(get_int(&req, "maxprocesses"), 200);
	assert_int_equal(get_int(&req, "interactive"), 1);
	assert_int_equal(get_int(&req, "pluginversion"), 2026012812);
	/* Moodle DB values arrive as strings */
	assert_int_equal(get_int(&req, "activityid"), 7);
	assert_int_equal(get_int(&req, "userid"), 3);
	assert_int_equal(get_int(&req, "run_mode"), 0);
	assert_int_equal(get_int(&req, "save_count"), 4);
	assert_str(&req, "execute", "vpl_run.sh");
	assert_str(&req, "lang", "en_US.UTF-8");
	assert_str(&req, "evaluator", "");
	/* null counts as absent */
	assert_int_equal(rpc_get_str(&req, "runscript", &s, &n, &e), 0);
	assert_int_equal(rpc_get_int(&req, "debugscript", &v, &e), 0);
	assert_int_equal(rpc_get_map(&req, "runscript", &m, &e), 0);
	/* a real array is not a map, an int not a string */
	assert_int_equal(rpc_get_map(&req, "submittedlist", &m, &e), -1);
	assert_non_null(strstr(e.msg, "submittedlist"));
	assert_int_equal(rpc_get_str(&req, "maxtime", &s, &n, &e), -1);
	assert_non_null(strstr(e.msg, "maxtime"));
	rpc_request_free(&req);
}

static void test_spec_2_3_directrun(void **state)
{
	struct rpc_request req;
	parse_file("spec_2_3_req.json", &req);
	assert_string_equal(req.method, "directrun");
	assert_string_equal(req.id, "3-81240-55");
	json_t *files = get_map(&req, "files");
	assert_map_str(files, ".vpl_directrun.sh",
		       "#!/bin/bash\ncat > vpl_execution <<CONTENTS\n#!/bin/bash\ngcc a.c && "
		       "./a.out\nCONTENTS\nchmod +x vpl_execution");
	assert_int_equal(map_int(get_map(&req, "filestodelete"), ".vpl_directrun.sh"), 1);
	assert_str(&req, "execute", ".vpl_directrun.sh");
	assert_int_equal(get_int(&req, "maxtime"), 1000000);
	assert_int_equal(get_int(&req, "maxfilesize"), 2000000000);
	assert_int_equal(get_int(&req, "maxprocesses"), 10000);
	rpc_request_free(&req);
}

static void test_spec_ticket_methods(void **state)
{
	static const struct {
		const char *file, *method, *id;
	} cases[] = {
	    {"spec_2_4_req.json", "getresult", "3-81250-77"},
	    {"spec_2_5_req.json", "running", "3-81260-1"},
	    {"spec_2_6_req.json", "stop", "3-81270-9"},
	    {"spec_2_7_req.json", "update", "3-81280-4"},
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		struct rpc_request req;
		parse_file(cases[k].file, &req);
		assert_string_equal(req.method, cases[k].method);
		assert_string_equal(req.id, cases[k].id);
		assert_str(&req, "adminticket", "70213394801117");
		assert_int_equal(get_int(&req, "pluginversion"), 2026012812);
		rpc_request_free(&req);
	}
}

static void test_spec_2_7_update(void **state)
{
	struct rpc_request req;
	parse_file("spec_2_7_req.json", &req);
	assert_map_str(get_map(&req, "files"), "index.php", "<?php echo 'v2';");
	assert_int_equal(map_int(get_map(&req, "filestodelete"), "old.php"), 1);
	assert_int_equal(map_int(get_map(&req, "fileencoding"), "index.php"), 0);
	rpc_request_free(&req);
}

/* ---- the wire samples (plugin 4.4.2 -> jail 5.0.1) ------------------------------ */

static void test_wire_requests(void **state)
{
	static const struct {
		const char *file, *method, *id;
		size_t nparams;
	} cases[] = {
	    {"wire_available_req.json", "available", "2-2202-663130770", 1},
	    {"wire_request_eval_req.json", "request", "2-2202-665473988", 26},
	    {"wire_getresult_req.json", "getresult", "2-2204-990752847", 2},
	    {"wire_request_run_req.json", "request", "2-2205-102348674", 26},
	    {"wire_running_req.json", "running", "2-2207-1445849", 2},
	    {"wire_stop_req.json", "stop", "2-2207-44101824", 2},
	    {"wire_unknown_req.json", "nosuchmethod", "2-2207-734167418", 2},
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		struct rpc_request req;
		parse_file(cases[k].file, &req);
		assert_string_equal(req.method, cases[k].method);
		assert_string_equal(req.id, cases[k].id);
		assert_int_equal(json_object_size(req.params), cases[k].nparams);
		rpc_request_free(&req);
	}
}

static void test_wire_request_eval(void **state)
{
	struct rpc_request req;
	parse_file("wire_request_eval_req.json", &req);
	json_t *files = get_map(&req, "files");
	assert_int_equal(json_object_size(files), 8);
	assert_map_str(files, "vpl_evaluate.cases", "case = hello\noutput = Hello world\n");
	assert_map_str(files, "vpl_debug.sh", "");
	const char *hello = json_string_value(json_object_get(files, "hello.c"));
	assert_non_null(hello);
	/* \" and \\n in the JSON become " and a backslash-n in the file */
	assert_non_null(strstr(hello, "printf(\"Hello world\\n\");"));
	assert_int_equal(json_object_size(get_map(&req, "filestodelete")), 5);
	assert_int_equal(json_object_size(get_map(&req, "fileencoding")), 8);
	assert_str(&req, "execute", "vpl_evaluate.sh");
	assert_str(&req, "lang", "en_AU.UTF-8");
	assert_int_equal(get_int(&req, "type"), 2);
	assert_int_equal(get_int(&req, "interactive"), 0);
	assert_int_equal(get_int(&req, "run_mode"), 0);
	rpc_request_free(&req);
}

/* ---- envelope rules ------------------------------------------------------------- */

static void test_jsonrpc_member(void **state)
{
	struct rpc_request req;
	parse_ok("{\"jsonrpc\":\"2.0\",\"method\":\"stop\",\"params\":{},\"id\":\"7\"}", &req);
	assert_string_equal(req.method, "stop");
	assert_string_equal(req.id, "7");
	rpc_request_free(&req);
	/* member order does not matter */
	parse_ok("{\"id\":\"x\",\"params\":{\"a\":1},\"method\":\"m\",\"jsonrpc\":\"2.0\"}", &req);
	assert_string_equal(req.method, "m");
	assert_int_equal(get_int(&req, "a"), 1);
	rpc_request_free(&req);
	parse_fail("{\"jsonrpc\":2,\"method\":\"m\",\"params\":{}}", "\"jsonrpc\" is not a string");
}

static void test_ids(void **state)
{
	static const struct {
		const char *body, *id;
	} cases[] = {
	    {"{\"method\":\"m\",\"params\":{},\"id\":42}", "42"},
	    {"{\"method\":\"m\",\"params\":{},\"id\":-7}", "-7"},
	    {"{\"method\":\"m\",\"params\":{},\"id\":9223372036854775807}", "9223372036854775807"},
	    {"{\"method\":\"m\",\"params\":{},\"id\":1.5}", "1.5"},
	    {"{\"method\":\"m\",\"params\":{},\"id\":0.1}", "0.1"},
	    {"{\"method\":\"m\",\"params\":{},\"id\":1e300}", "1e+300"},
	    {"{\"method\":\"m\",\"params\":{},\"id\":\"\"}", ""},
	    {"{\"method\":\"m\",\"params\":{},\"id\":\"a\\\"\\/b\"}", "a\"/b"},
	    {"{\"method\":\"m\",\"params\":{},\"id\":null}", NULL},
	    {"{\"method\":\"m\",\"params\":{}}", NULL},
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		struct rpc_request req;
		parse_ok(cases[k].body, &req);
		if (cases[k].id)
			assert_string_equal(req.id, cases[k].id);
		else
			assert_null(req.id);
		rpc_request_free(&req);
	}
	parse_fail("{\"method\":\"m\",\"params\":{},\"id\":true}",
		   "\"id\" is not a string or number");
	parse_fail("{\"method\":\"m\",\"params\":{},\"id\":{}}",
		   "\"id\" is not a string or number");
	parse_fail("{\"method\":\"m\",\"params\":{},\"id\":[\"a\"]}", "\"id\"");
	parse_fail("{\"method\":\"m\",\"params\":{},\"id\":\"a\\u0000b\"}", "NUL");
}

static void test_params_forms(void **state)
{
	struct rpc_request req;
	parse_ok("{\"method\":\"available\",\"params\":[],\"id\":\"1\"}", &req);
	assert_int_equal(json_object_size(req.params), 0);
	rpc_request_free(&req);
	parse_ok("{\"method\":\"available\",\"params\":[ ],\"id\":\"1\"}", &req);
	assert_true(json_is_object(req.params));
	rpc_request_free(&req);
	parse_fail("{\"method\":\"m\",\"params\":[1],\"id\":\"1\"}", "\"params\" is not an object");
	parse_fail("{\"method\":\"m\",\"params\":\"x\"}", "\"params\" is not an object");
	parse_fail("{\"method\":\"m\",\"params\":null}", "\"params\" is not an object");
	parse_fail("{\"method\":\"m\",\"params\":7}", "\"params\" is not an object");
	parse_fail("{\"method\":\"m\",\"id\":\"1\"}", "missing \"params\"");
}

static void test_method_errors(void **state)
{
	parse_fail("{\"params\":{},\"id\":\"1\"}", "missing \"method\"");
	parse_fail("{\"method\":5,\"params\":{}}", "\"method\" is not a string");
	parse_fail("{\"method\":null,\"params\":{}}", "\"method\" is not a string");
	parse_fail("{\"method\":[\"a\"],\"params\":{}}", "\"method\" is not a string");
	parse_fail("{\"method\":\"a\\u0000b\",\"params\":{}}", "NUL");
	/* the method is failed after other members were taken: nothing leaks */
	parse_fail("{\"id\":\"1\",\"params\":{\"a\":\"b\"},\"method\":1}", "\"method\"");
}

static void test_unknown_member(void **state)
{
	parse_fail("{\"method\":\"a\",\"params\":{},\"id\":\"1\",\"extra\":1}",
		   "unexpected member \"extra\"");
	parse_fail("{\"method\":\"a\",\"params\":{},\"result\":{}}", "\"result\"");
}

static void test_not_an_object(void **state)
{
	parse_fail("[]", "root is not an object");
	parse_fail("[{\"method\":\"a\",\"params\":{}}]", "root is not an object");
	parse_fail("1", "'[' or '{' expected");
	parse_fail("\"method\"", "'[' or '{' expected");
	parse_fail("null", "'[' or '{' expected");
	parse_fail("", "'[' or '{' expected near end of file");
	parse_fail("  \r\n\t", "'[' or '{' expected");
	parse_fail_n(NULL, 0, "JSON parse error");
}

static void test_malformed(void **state)
{
	parse_fail("{\"method\":\"a\",\"params\":{", "at line 1 column");
	parse_fail("{\"method\":\"a\",\"params\":{}", "'}' expected near end of file at line 1");
	parse_fail("{\"method\":\"a\" \"params\":{}}",
		   "'}' expected near '\"params\"' at line 1 column 22");
	parse_fail("{\"method\":\"a\",\"params\":{}} trailing", "end of file expected");
	parse_fail("{\"method\":'a',\"params\":{}}", "invalid token");
	parse_fail("{\"method\":\"a\",\"params\":{},}", "string or '}' expected");
	parse_fail("{\"method\":\"a\n\",\"params\":{}}", "unexpected newline");
	parse_fail("{\n  \"method\": \"a\",\n  \"params\": {\"x\": tru}\n}", "at line 3");
	parse_fail("{\"method\":\"a\",\"params\":{\"x\":\"\\q\"}}", "invalid escape");
	parse_fail("{\"method\":\"a\",\"params\":{\"x\":1.}}", "invalid token");
	parse_fail_n("{\"method\":\"a\",\"params\":{}}\0", 27, "end of file expected");
	/* every prefix of a valid request fails cleanly */
	const char *full =
	    "{\"method\":\"available\",\"params\":{\"maxmemory\":134217728},\"id\":\"1\"}";
	for (size_t n = 0; n < strlen(full); n++)
		parse_fail_n(full, n, "JSON parse error: ");
}

static void test_duplicates(void **state)
{
	parse_fail("{\"method\":\"a\",\"method\":\"b\",\"params\":{}}", "duplicate object key");
	parse_fail("{\"method\":\"a\",\"params\":{\"x\":1,\"x\":2}}", "duplicate object key");
	parse_fail("{\"method\":\"a\",\"params\":{\"files\":{\"a.c\":\"1\",\"a.c\":\"2\"}}}",
		   "duplicate object key");
	parse_fail("{\"method\":\"a\",\"params\":{},\"params\":{}}", "duplicate object key");
}

/* {"method":"m","params": + `levels` nested containers + } */
static char *nested(int levels, char open, char close)
{
	size_t n = (size_t)levels * 6 + 64;
	char *s = malloc(n), *p = s;
	assert_non_null(s);
	p += sprintf(p, "{\"method\":\"m\",\"params\":{\"a\":");
	for (int k = 1; k < levels; k++)
		p += open == '{' ? sprintf(p, "{\"a\":") : sprintf(p, "[");
	p += sprintf(p, "%c%c", open, close);
	for (int k = 1; k < levels; k++)
		*p++ = close;
	sprintf(p, "}}");
	return s;
}

static void test_depth(void **state)
{
	struct rpc_request req;
	/* root (1) + params (2) + 62 more = 64: allowed */
	for (int kind = 0; kind < 2; kind++) {
		char open = kind ? '[' : '{', close = kind ? ']' : '}';
		char *ok = nested(RPC_MAX_DEPTH - 2, open, close);
		parse_ok(ok, &req);
		rpc_request_free(&req);
		free(ok);
		char *deep = nested(RPC_MAX_DEPTH - 1, open, close);
		parse_fail(deep, "nested deeper than 64 levels");
		free(deep);
	}
	/* brackets inside strings do not count */
	char body[512];
	snprintf(body, sizeof body, "{\"method\":\"m\",\"params\":{\"a\":\"%s\\\"[[[\"}}",
		 "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
	parse_ok(body, &req);
	rpc_request_free(&req);
	/* a hostile body is refused before jansson recurses into it */
	size_t n = 1000000;
	char *bomb = malloc(n);
	assert_non_null(bomb);
	memset(bomb, '[', n);
	clock_t t0 = clock();
	parse_fail_n(bomb, n, "nested deeper");
	assert_true(clock() - t0 < CLOCKS_PER_SEC);
	free(bomb);
}

static void test_string_escapes(void **state)
{
	struct rpc_request req;
	parse_ok("{\"method\":\"m\",\"params\":{"
		 "\"slash\":\"a\\/b\\/\","
		 "\"latin\":\"\\u00e9t\\u00C9\","
		 "\"bmp\":\"\\u20ac\","
		 "\"pair\":\"\\ud83d\\ude00!\","
		 "\"nul\":\"a\\u0000b\","
		 "\"ctl\":\"\\\"\\\\\\b\\f\\n\\r\\t\\u001b\","
		 "\"raw\":\"Rodr\xc3\xadguez \xe2\x82\xac\","
		 "\"empty\":\"\"}}",
		 &req);
	assert_str(&req, "slash", "a/b/");
	assert_str(&req, "latin", "\xc3\xa9t\xc3\x89");
	assert_str(&req, "bmp", "\xe2\x82\xac");
	assert_str(&req, "pair", "\xf0\x9f\x98\x80!");
	assert_str_n(&req, "nul", "a\0b", 3);
	assert_str(&req, "ctl", "\"\\\b\f\n\r\t\x1b");
	assert_str(&req, "raw", "Rodr\xc3\xadguez \xe2\x82\xac");
	assert_str(&req, "empty", "");
	rpc_request_free(&req);

	parse_fail("{\"method\":\"m\",\"params\":{\"a\":\"\\ud800\"}}", "invalid Unicode");
	parse_fail("{\"method\":\"m\",\"params\":{\"a\":\"\\ude00\\ud83d\"}}", "invalid Unicode");
	parse_fail("{\"method\":\"m\",\"params\":{\"a\":\"\xff\"}}", "unable to decode byte 0xff");
	parse_fail("{\"method\":\"m\",\"params\":{\"a\":\"\xc3\"}}", "unable to decode");
	parse_fail("{\"method\":\"m\",\"params\":{\"\\u0000k\":1}}", "NUL byte in object key");
}

static void test_crlf_and_whitespace(void **state)
{
	struct rpc_request req;
	parse_ok("{\r\n\"method\" : \"m\" ,\r\n\t\"params\" : {\r\n"
		 "\"f\" : \"line1\\r\\nline2\\r\\n\" , \"g\" : \"  \\t lead and trail \\n "
		 "\"\r\n}\r\n}\r\n",
		 &req);
	assert_str(&req, "f", "line1\r\nline2\r\n");
	assert_str(&req, "g", "  \t lead and trail \n ");
	rpc_request_free(&req);
}

/* ---- getters ------------------------------------------------------------------- */

static void test_get_int_conversions(void **state)
{
	struct rpc_request req;
	parse_ok("{\"method\":\"m\",\"params\":{"
		 "\"i\":-42,\"max\":9223372036854775807,\"min\":-9223372036854775808,"
		 "\"r\":3.9,\"rn\":-3.9,\"rbig\":1e30,\"rneg\":-1e19,"
		 "\"t\":true,\"f\":false,"
		 "\"s\":\"42\",\"splus\":\"+7\",\"sneg\":\"-0012\",\"szero\":\"-0\","
		 "\"smax\":\"9223372036854775807\",\"smin\":\"-9223372036854775808\","
		 "\"sover\":\"9223372036854775808\",\"sunder\":\"-9223372036854775809\","
		 "\"sempty\":\"\",\"ssign\":\"-\",\"sjunk\":\"12a\",\"sspace\":\" 12\","
		 "\"sfloat\":\"1.5\",\"shex\":\"0x10\",\"snul\":\"1\\u00002\","
		 "\"obj\":{},\"arr\":[],\"null\":null}}",
		 &req);
	assert_int_equal(get_int(&req, "i"), -42);
	assert_true(get_int(&req, "max") == INT64_MAX);
	assert_true(get_int(&req, "min") == INT64_MIN);
	assert_int_equal(get_int(&req, "r"), 3);
	assert_int_equal(get_int(&req, "rn"), -3);
	assert_int_equal(get_int(&req, "t"), 1);
	assert_int_equal(get_int(&req, "f"), 0);
	assert_int_equal(get_int(&req, "s"), 42);
	assert_int_equal(get_int(&req, "splus"), 7);
	assert_int_equal(get_int(&req, "sneg"), -12);
	assert_int_equal(get_int(&req, "szero"), 0);
	assert_true(get_int(&req, "smax") == INT64_MAX);
	assert_true(get_int(&req, "smin") == INT64_MIN);

	static const char *bad[] = {"rbig",  "rneg",  "sover",	"sunder", "sempty",
				    "ssign", "sjunk", "sspace", "sfloat", "shex",
				    "snul",  "obj",   "arr"};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		struct err e = {0};
		long long v = 777;
		if (rpc_get_int(&req, bad[k], &v, &e) != -1)
			fail_msg("%s accepted as %lld", bad[k], v);
		assert_int_equal(v, 777); /* untouched on failure */
		assert_non_null(strstr(e.msg, bad[k]));
		assert_int_equal(e.code, EINVAL);
	}
	long long v = 777;
	assert_int_equal(rpc_get_int(&req, "null", &v, NULL), 0);
	assert_int_equal(rpc_get_int(&req, "absent", &v, NULL), 0);
	assert_int_equal(v, 777);
	assert_int_equal(rpc_get_int(&req, "sjunk", &v, NULL), -1); /* err may be NULL */
	rpc_request_free(&req);
}

static void test_json_to_int(void **state)
{
	long long v = 5;
	json_t *j;
	assert_int_equal(rpc_json_to_int(NULL, &v), 0);
	j = json_null();
	assert_int_equal(rpc_json_to_int(j, &v), 0);
	json_decref(j);
	j = json_array();
	assert_int_equal(rpc_json_to_int(j, &v), -1);
	json_decref(j);
	j = json_object();
	assert_int_equal(rpc_json_to_int(j, &v), -1);
	json_decref(j);
	assert_int_equal(v, 5);
	j = json_real(-0.5);
	assert_int_equal(rpc_json_to_int(j, &v), 1);
	assert_int_equal(v, 0);
	json_decref(j);
	j = json_real(-9223372036854775808.0);
	assert_int_equal(rpc_json_to_int(j, &v), 1);
	assert_true(v == INT64_MIN);
	json_decref(j);
	j = json_real(9223372036854775808.0);
	assert_int_equal(rpc_json_to_int(j, &v), -1);
	json_decref(j);
	j = json_stringn("12\0003", 4);
	assert_int_equal(rpc_json_to_int(j, &v), -1);
	json_decref(j);
	j = json_string("0012");
	assert_int_equal(rpc_json_to_int(j, &v), 1);
	assert_int_equal(v, 12);
	json_decref(j);
}

static void test_get_str(void **state)
{
	struct rpc_request req;
	struct err e = {0};
	const char *s = "unchanged";
	size_t n = 99;
	parse_ok("{\"method\":\"m\",\"params\":{\"s\":\"x\",\"i\":1,\"o\":{},\"a\":[],\"b\":true,"
		 "\"n\":null}}",
		 &req);
	assert_str(&req, "s", "x");
	assert_int_equal(rpc_get_str(&req, "n", &s, &n, &e), 0);
	assert_int_equal(rpc_get_str(&req, "absent", &s, &n, &e), 0);
	assert_string_equal(s, "unchanged");
	assert_int_equal(n, 99);
	static const char *bad[] = {"i", "o", "a", "b"};
	for (size_t k = 0; k < 4; k++) {
		assert_int_equal(rpc_get_str(&req, bad[k], &s, &n, &e), -1);
		assert_non_null(strstr(e.msg, "is not a string"));
	}
	rpc_request_free(&req);
}

static void test_get_map(void **state)
{
	struct rpc_request req;
	struct err e = {0};
	json_t *m = NULL, *m2 = NULL;
	parse_ok("{\"method\":\"m\",\"params\":{\"o\":{\"k\":\"1\"},\"empty\":[],\"list\":[1],"
		 "\"s\":\"x\",\"i\":0,\"n\":null}}",
		 &req);
	assert_int_equal(rpc_get_map(&req, "o", &m, &e), 1);
	assert_int_equal(map_int(m, "k"), 1);
	/* PHP's empty map: an empty object that stays put */
	assert_int_equal(rpc_get_map(&req, "empty", &m, &e), 1);
	assert_true(json_is_object(m));
	assert_int_equal(json_object_size(m), 0);
	assert_int_equal(rpc_get_map(&req, "empty", &m2, &e), 1);
	assert_ptr_equal(m, m2);
	assert_ptr_equal(json_object_get(req.params, "empty"), m);
	m = NULL;
	assert_int_equal(rpc_get_map(&req, "n", &m, &e), 0);
	assert_int_equal(rpc_get_map(&req, "absent", &m, &e), 0);
	assert_null(m);
	static const char *bad[] = {"list", "s", "i"};
	for (size_t k = 0; k < 3; k++) {
		assert_int_equal(rpc_get_map(&req, bad[k], &m, &e), -1);
		assert_non_null(strstr(e.msg, "is not a map"));
		assert_non_null(strstr(e.msg, bad[k]));
	}
	rpc_request_free(&req);
}

static void test_getters_on_empty_request(void **state)
{
	struct rpc_request req = {0};
	long long v;
	const char *s;
	size_t n;
	json_t *m;
	assert_int_equal(rpc_get_int(&req, "a", &v, NULL), 0);
	assert_int_equal(rpc_get_str(&req, "a", &s, &n, NULL), 0);
	assert_int_equal(rpc_get_map(&req, "a", &m, NULL), 0);
}

/* ---- lifetime ------------------------------------------------------------------- */

static void test_request_free(void **state)
{
	struct rpc_request req = {0};
	rpc_request_free(&req);
	rpc_request_free(NULL);
	parse_ok("{\"method\":\"m\",\"params\":{\"a\":\"b\"},\"id\":\"1\"}", &req);
	rpc_request_free(&req);
	assert_null(req.method);
	assert_null(req.id);
	assert_null(req.params);
	rpc_request_free(&req);					  /* twice is fine */
	assert_int_equal(rpc_parse_json("{", 1, &req, NULL), -1); /* err may be NULL */
	rpc_request_free(&req);
}

/* ---- dispatch -------------------------------------------------------------------- */

static void test_dispatch(void **state)
{
	static const char xml[] = "<?xml version=\"1.0\"?><methodCall><methodName>stop</methodName>"
				  "<params/></methodCall>";
	static const char *prefixes[] = {"", " ", "\r\n", "\t \n", "\n\n  \r\n\t"};
	for (size_t k = 0; k < 5; k++) {
		char body[256];
		struct rpc_request req;
		struct err e = {0};
		snprintf(body, sizeof body, "%s%s", prefixes[k], xml);
		if (rpc_parse(body, strlen(body), &req, &e) != 0)
			fail_msg("%s", e.msg);
		assert_int_equal(req.format, RPC_FORMAT_XML);
		assert_string_equal(req.method, "stop");
		rpc_request_free(&req);
		snprintf(body, sizeof body, "%s{\"method\":\"run\",\"params\":{}}", prefixes[k]);
		assert_int_equal(rpc_parse(body, strlen(body), &req, &e), 0);
		assert_int_equal(req.format, RPC_FORMAT_JSON);
		assert_string_equal(req.method, "run");
		rpc_request_free(&req);
	}
	struct rpc_request req;
	struct err e = {0};
	assert_int_equal(rpc_parse("", 0, &req, &e), -1);
	assert_non_null(strstr(e.msg, "JSON parse error"));
	assert_int_equal(rpc_parse("   ", 3, &req, &e), -1);
	assert_non_null(strstr(e.msg, "JSON parse error"));
	assert_int_equal(rpc_parse(" x<", 3, &req, &e), -1);
	assert_non_null(strstr(e.msg, "JSON parse error"));
	/* form feed and vertical tab are whitespace to neither format */
	assert_int_equal(rpc_parse("\f<methodCall/>", 14, &req, &e), -1);
	assert_non_null(strstr(e.msg, "JSON parse error"));
	assert_int_equal(rpc_parse("\v{}", 3, &req, &e), -1);
	assert_non_null(strstr(e.msg, "JSON parse error"));
	assert_int_equal(rpc_parse(" <", 2, &req, &e), -1);
	assert_non_null(strstr(e.msg, "XML-RPC parse error"));
	/* only the given length counts: a '<' past it is not seen */
	assert_int_equal(rpc_parse("  <", 2, &req, &e), -1);
	assert_non_null(strstr(e.msg, "JSON parse error"));
}

/* ---- size ---------------------------------------------------------------------- */

static void test_big_string(void **state)
{
	size_t big = 20u << 20;
	const char *head = "{\"method\":\"request\",\"params\":{\"files\":{\"big.txt\":\"";
	const char *tail = "\"}},\"id\":\"1\"}";
	size_t len = strlen(head) + big + strlen(tail);
	char *body = malloc(len);
	assert_non_null(body);
	memcpy(body, head, strlen(head));
	for (size_t k = 0; k < big; k++)
		body[strlen(head) + k] = (char)('a' + k % 26);
	memcpy(body + strlen(head) + big, tail, strlen(tail));
	struct rpc_request req;
	parse_ok_n(body, len, &req);
	free(body);
	json_t *f = json_object_get(get_map(&req, "files"), "big.txt");
	assert_int_equal(json_string_length(f), big);
	assert_int_equal(json_string_value(f)[big - 1], 'a' + (big - 1) % 26);
	rpc_request_free(&req);
}

static void test_big_numbers(void **state)
{
	parse_fail("{\"method\":\"m\",\"params\":{\"pluginversion\":99999999999999999999}}",
		   "too big integer");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spec_1_3_available),
	    cmocka_unit_test(test_spec_2_2_request),
	    cmocka_unit_test(test_spec_2_3_directrun),
	    cmocka_unit_test(test_spec_ticket_methods),
	    cmocka_unit_test(test_spec_2_7_update),
	    cmocka_unit_test(test_wire_requests),
	    cmocka_unit_test(test_wire_request_eval),
	    cmocka_unit_test(test_jsonrpc_member),
	    cmocka_unit_test(test_ids),
	    cmocka_unit_test(test_params_forms),
	    cmocka_unit_test(test_method_errors),
	    cmocka_unit_test(test_unknown_member),
	    cmocka_unit_test(test_not_an_object),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_duplicates),
	    cmocka_unit_test(test_depth),
	    cmocka_unit_test(test_string_escapes),
	    cmocka_unit_test(test_crlf_and_whitespace),
	    cmocka_unit_test(test_get_int_conversions),
	    cmocka_unit_test(test_json_to_int),
	    cmocka_unit_test(test_get_str),
	    cmocka_unit_test(test_get_map),
	    cmocka_unit_test(test_getters_on_empty_request),
	    cmocka_unit_test(test_request_free),
	    cmocka_unit_test(test_dispatch),
	    cmocka_unit_test(test_big_string),
	    cmocka_unit_test(test_big_numbers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
