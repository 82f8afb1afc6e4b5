/*
 * test_rpc_call.c - rpc_encode_call: every request sample parses back to
 * the same request in its own format (and in the other where it can cross),
 * the exact layouts, NUL bytes, non-UTF-8 and control characters (base64),
 * huge ints, reals, empty and nested params, and the rejects.
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
#include <unistd.h>

#include "rpc.h"
#include "rpc_call.h"
#include "testdata.h"

#define XML_HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodCall>\n"

/* ---- helpers ------------------------------------------------------------- */

static void parse_ok(const char *body, size_t len, struct rpc_request *req)
{
	struct err e = {0};
	if (rpc_parse(body, len, req, &e) != 0)
		fail_msg("parse failed: %s\n%.*s", e.msg, (int)len, body);
}

static json_t *json_of(const char *text)
{
	json_error_t je;
	json_t *v = json_loads(text, JSON_ALLOW_NUL, &je);
	if (!v)
		fail_msg("bad test JSON: %s", je.text);
	return v;
}

/* Encodes; the caller frees the body. */
static char *call_body(enum rpc_format fmt, const char *method, const char *id,
		       const json_t *params, size_t *len)
{
	struct buf out;
	struct err e = {0};
	buf_init(&out, 1u << 28);
	if (rpc_encode_call(&out, fmt, method, id, params, &e) != 0)
		fail_msg("encode failed: %s", e.msg);
	return buf_steal(&out, len);
}

static void call_fails(enum rpc_format fmt, const char *method, const char *id,
		       const json_t *params, const char *needle)
{
	struct buf out;
	struct err e = {0};
	buf_init(&out, 1u << 20);
	assert_int_equal(buf_puts(&out, "KEEP", &e), 0);
	assert_int_equal(rpc_encode_call(&out, fmt, method, id, params, &e), -1);
	assert_int_equal(e.code, EINVAL);
	if (!strstr(e.msg, needle))
		fail_msg("error \"%s\" lacks \"%s\"", e.msg, needle);
	assert_int_equal(out.len, 4);
	assert_string_equal(out.data, "KEEP");
	buf_free(&out);
}

/* Encodes req in fmt and parses it back: same method, id and params. */
static void round_trip(const struct rpc_request *req, enum rpc_format fmt)
{
	size_t len = 0;
	char *body = call_body(fmt, req->method, req->id, req->params, &len);
	struct rpc_request back;
	parse_ok(body, len, &back);
	assert_int_equal(back.format, fmt);
	assert_string_equal(back.method, req->method);
	if (fmt == RPC_FORMAT_XML || !req->id)
		assert_null(back.id);
	else
		assert_string_equal(back.id, req->id);
	if (!json_equal(back.params, req->params)) {
		char *a = json_dumps(req->params, JSON_ENCODE_ANY);
		char *b = json_dumps(back.params, JSON_ENCODE_ANY);
		fail_msg("params differ\n--- sent %s\n--- got %s\n--- body %s", a, b, body);
	}
	rpc_request_free(&back);
	free(body);
}

static void round_trip_text(const char *body)
{
	struct rpc_request req;
	parse_ok(body, strlen(body), &req);
	round_trip(&req, req.format);
	rpc_request_free(&req);
}

/* The member "v" of params encoded as XML, between <value>\n and \n</value>. */
static char *xml_value_of(const json_t *v)
{
	json_t *params = json_object();
	json_object_set(params, "v", (json_t *)v);
	size_t len = 0;
	char *body = call_body(RPC_FORMAT_XML, "m", NULL, params, &len);
	json_decref(params);
	const char *open = "<name>v</name>\n<value>\n";
	char *b = strstr(body, open);
	assert_non_null(b);
	b += strlen(open);
	char *e = strstr(b, "\n</value>\n</member>");
	assert_non_null(e);
	char *s = strndup(b, (size_t)(e - b));
	free(body);
	return s;
}

static void xml_value_is(json_t *v, const char *want)
{
	char *got = xml_value_of(v);
	if (strcmp(got, want))
		fail_msg("got %s\nwant %s", got, want);
	free(got);
	json_decref(v);
}

/* ---- the samples ---------------------------------------------------------- */

static const char *const samples[] = {
    "spec_1_3_req.json",	  "spec_2_1_req.xml",	       "spec_2_2_req.json",
    "spec_2_2_req.xml",		  "spec_2_3_req.json",	       "spec_2_3_req.xml",
    "spec_2_4_req.json",	  "spec_2_4_req.xml",	       "spec_2_5_req.json",
    "spec_2_5_req.xml",		  "spec_2_6_req.json",	       "spec_2_6_req.xml",
    "spec_2_7_req.json",	  "spec_2_7_req.xml",	       "wire_available_req.json",
    "wire_available_req.xml",	  "wire_getresult_req.json",   "wire_getresult_req.xml",
    "wire_request_eval_req.json", "wire_request_eval_req.xml", "wire_request_run_req.json",
    "wire_request_run_req.xml",	  "wire_running_req.json",     "wire_running_req.xml",
    "wire_stop_req.json",	  "wire_stop_req.xml",	       "wire_unknown_req.json",
    "wire_unknown_req.xml",
};

/* The samples hold no booleans and only UTF-8, so they cross formats too. */
static void test_samples_round_trip(void **state)
{
	for (size_t k = 0; k < sizeof samples / sizeof samples[0]; k++) {
		size_t len = 0;
		char *body = read_data(samples[k], &len);
		struct rpc_request req;
		parse_ok(body, len, &req);
		round_trip(&req, RPC_FORMAT_JSON);
		round_trip(&req, RPC_FORMAT_XML);
		rpc_request_free(&req);
		free(body);
	}
}

/* The XML layout is xmlrpc-epi's: samples without escapes come out byte
 * for byte as the plugin sent them. */
static void test_xml_layout_matches_plugin(void **state)
{
	static const char *const files[] = {"wire_available_req.xml", "wire_getresult_req.xml",
					    "wire_running_req.xml", "wire_stop_req.xml"};
	for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
		size_t len = 0, olen = 0;
		char *body = read_data(files[k], &len);
		struct rpc_request req;
		parse_ok(body, len, &req);
		char *out = call_body(RPC_FORMAT_XML, req.method, NULL, req.params, &olen);
		if (olen != len || memcmp(out, body, len))
			fail_msg("%s differs:\n--- got\n%s\n--- want\n%s", files[k], out, body);
		free(out);
		rpc_request_free(&req);
		free(body);
	}
}

static void test_json_layout(void **state)
{
	size_t len = 0;
	char *body = read_data("wire_getresult_req.json", &len);
	struct rpc_request req;
	parse_ok(body, len, &req);
	char *out = call_body(RPC_FORMAT_JSON, req.method, req.id, req.params, &len);
	assert_string_equal(out, "{\"method\":\"getresult\",\"params\":{\"adminticket\":"
				 "\"664908111097092\",\"pluginversion\":2026012812},\"id\":"
				 "\"2-2204-990752847\"}");
	assert_int_equal(len, strlen(out));
	free(out);
	/* no id: the member is left out */
	out = call_body(RPC_FORMAT_JSON, req.method, NULL, req.params, &len);
	assert_string_equal(out, "{\"method\":\"getresult\",\"params\":{\"adminticket\":"
				 "\"664908111097092\",\"pluginversion\":2026012812}}");
	free(out);
	rpc_request_free(&req);
	free(body);
	/* a numeric id comes back as the same text */
	round_trip_text("{\"method\":\"m\",\"params\":{},\"id\":7}");
	round_trip_text("{\"method\":\"m\",\"params\":{},\"id\":1.5,\"jsonrpc\":\"2.0\"}");
	round_trip_text("{\"method\":\"m\",\"params\":{},\"id\":\"a\\\"b\\/\\u00e9\"}");
}

/* What the proxy does: strip a suffix from adminticket and forward. */
static void test_proxy_rewrite(void **state)
{
	static const char *const files[] = {"wire_getresult_req.json", "wire_getresult_req.xml",
					    "spec_2_7_req.json", "spec_2_7_req.xml"};
	for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
		size_t len = 0;
		char *body = read_data(files[k], &len);
		struct rpc_request req;
		parse_ok(body, len, &req);
		json_t *expect = json_deep_copy(req.params);
		assert_int_equal(json_object_set_new(req.params, "adminticket", json_string("42")),
				 0);
		assert_int_equal(json_object_set_new(expect, "adminticket", json_string("42")), 0);
		char *out = call_body(req.format, req.method, req.id, req.params, &len);
		struct rpc_request back;
		parse_ok(out, len, &back);
		assert_int_equal(back.format, req.format);
		assert_string_equal(back.method, req.method);
		assert_true(json_equal(back.params, expect));
		/* and the member order is the client's */
		const char *k1 = json_object_iter_key(json_object_iter(back.params));
		const char *k2 = json_object_iter_key(json_object_iter(req.params));
		assert_string_equal(k1, k2);
		rpc_request_free(&back);
		rpc_request_free(&req);
		json_decref(expect);
		free(out);
		free(body);
	}
}

/* ---- strings --------------------------------------------------------------- */

static void test_nul_bytes(void **state)
{
	const char *body = "{\"method\":\"update\",\"params\":{\"files\":{\"a\\u0000b\":"
			   "\"x\\u0000y\\u0000\"},\"adminticket\":\"1\"},\"id\":\"9\"}";
	struct rpc_request req;
	struct rpc_request bad;
	struct err e = {0};
	/* keys cannot hold NUL (jansson refuses them) */
	assert_int_equal(rpc_parse(body, strlen(body), &bad, &e), -1);
	round_trip_text("{\"method\":\"update\",\"params\":{\"files\":{\"a.bin\":"
			"\"x\\u0000y\\u0000\"},\"adminticket\":\"1\"},\"id\":\"9\"}");
	body = "{\"method\":\"update\",\"params\":{\"files\":{\"a.bin\":\"x\\u0000y\\u0000\"}}}";
	parse_ok(body, strlen(body), &req);
	round_trip(&req, RPC_FORMAT_XML);
	json_t *files = json_object_get(req.params, "files");
	char *v = xml_value_of(json_object_get(files, "a.bin"));
	assert_string_equal(v, "<base64>eAB5AA==</base64>");
	free(v);
	size_t len = 0;
	char *out = call_body(RPC_FORMAT_JSON, req.method, NULL, req.params, &len);
	assert_non_null(strstr(out, "\"x\\u0000y\\u0000\""));
	free(out);
	rpc_request_free(&req);
}

/* An XML request whose file is not UTF-8 (base64) goes on as base64, and
 * cannot go as JSON. */
static void test_non_utf8_xml(void **state)
{
	const char *body = XML_HEAD "<methodName>update</methodName>\n<params><param><value>"
				    "<struct><member><name>files</name><value><struct><member>"
				    "<name>img.png</name><value><base64>iVBORw0KGgr/AA==</base64>"
				    "</value></member></struct></value></member></struct></value>"
				    "</param></params></methodCall>\n";
	struct rpc_request req;
	parse_ok(body, strlen(body), &req);
	round_trip(&req, RPC_FORMAT_XML);
	char *v = xml_value_of(json_object_get(json_object_get(req.params, "files"), "img.png"));
	assert_string_equal(v, "<base64>iVBORw0KGgr/AA==</base64>");
	free(v);
	call_fails(RPC_FORMAT_JSON, req.method, NULL, req.params, "not valid UTF-8");
	rpc_request_free(&req);
	/* Latin-1 through a byte reference that is not UTF-8 stays code points */
	body = XML_HEAD "<methodName>m</methodName><params><param><value><struct><member>"
			"<name>a</name><value><string>caf&#233;</string></value></member>"
			"</struct></value></param></params></methodCall>";
	parse_ok(body, strlen(body), &req);
	round_trip(&req, RPC_FORMAT_XML);
	round_trip(&req, RPC_FORMAT_JSON);
	rpc_request_free(&req);
}

static void test_xml_strings(void **state)
{
	xml_value_is(json_string("a&b<c>d'e\"f"), "<string>a&amp;b&lt;c&gt;d'e\"f</string>");
	xml_value_is(json_string("l1\r\nl2\tx\n"), "<string>l1&#13;\nl2\tx\n</string>");
	xml_value_is(json_string(""), "<string/>");
	xml_value_is(json_string("]]>"), "<string>]]&gt;</string>");
	xml_value_is(json_string("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f"),
		     "<string>\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f</string>");
	/* what XML 1.0 cannot carry: control bytes, U+FFFE, U+FFFF */
	xml_value_is(json_string("\x1b[0m"), "<base64>G1swbQ==</base64>");
	xml_value_is(json_string("\xef\xbf\xbe"), "<base64>77++</base64>");
	xml_value_is(json_string("\xef\xbf\xbf!"), "<base64>77+/IQ==</base64>");
	xml_value_is(json_stringn_nocheck("\xff", 1), "<base64>/w==</base64>");
	xml_value_is(json_stringn_nocheck("\xc3", 1), "<base64>ww==</base64>");

	/* all of them come back, including rpc_xml.c's marker block (U+10FF80)
	 * and text that looks like a byte reference */
	const char *strs[] = {
	    "a&b<c>d'e\"f",
	    "l1\r\nl2\r",
	    "\r",
	    " lead and trail ",
	    "\x1b[0m",
	    "\xef\xbf\xbe",
	    "\xf4\x8f\xbe\x80\xf4\x8f\xbc\x81",
	    "&#195;&#173;",
	    "&amp;",
	    "\xc2\x80\xc3\xbf",
	};
	struct rpc_request req = {.method = "m", .params = json_object()};
	for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++) {
		char key[8];
		snprintf(key, sizeof key, "s%zu", k);
		json_object_set_new(req.params, key, json_string(strs[k]));
	}
	json_object_set_new(req.params, "bin", json_stringn_nocheck("\0\x01\xfe\xff\x80", 5));
	round_trip(&req, RPC_FORMAT_XML);
	json_object_del(req.params, "bin");
	round_trip(&req, RPC_FORMAT_JSON);
	json_decref(req.params);
}

/* Names and the method cannot be base64; the U+FFFE and U+FFFF that an
 * XML request can hold there (through byte references) go back the same
 * way. */
static void test_xml_names(void **state)
{
	const char *body = "<methodCall><methodName>a&#239;&#191;&#190;</methodName><params>"
			   "<param><value><struct><member><name>k&#239;&#191;&#191;\r&amp;</name>"
			   "<value><string>&#239;&#191;&#190;</string></value></member></struct>"
			   "</value></param></params></methodCall>";
	struct rpc_request req;
	parse_ok(body, strlen(body), &req);
	assert_string_equal(req.method, "a\xef\xbf\xbe");
	assert_non_null(json_object_get(req.params, "k\xef\xbf\xbf\r&"));
	round_trip(&req, RPC_FORMAT_XML);
	round_trip(&req, RPC_FORMAT_JSON);
	size_t len = 0;
	char *out = call_body(RPC_FORMAT_XML, req.method, NULL, req.params, &len);
	assert_non_null(strstr(out, "<methodName>a&#239;&#191;&#190;</methodName>"));
	assert_non_null(strstr(out, "<name>k&#239;&#191;&#191;&#13;&amp;</name>\n<value>\n"
				    "<base64>77++</base64>"));
	free(out);
	rpc_request_free(&req);
	/* and from JSON, names with any UTF-8 but control bytes */
	round_trip_text("{\"method\":\"m\\ufffe\",\"params\":{\"\\uffff\\u00e9\\r\\t\":1}}");
	body = "{\"method\":\"m\",\"params\":{\"\\uffff\\u00e9\\r\\t\":1}}";
	parse_ok(body, strlen(body), &req);
	round_trip(&req, RPC_FORMAT_XML);
	rpc_request_free(&req);
}

/* ---- numbers and other types ------------------------------------------------ */

static void test_huge_ints(void **state)
{
	xml_value_is(json_integer(0), "<int>0</int>");
	xml_value_is(json_integer(INT32_MAX), "<int>2147483647</int>");
	xml_value_is(json_integer(INT32_MIN), "<int>-2147483648</int>");
	xml_value_is(json_integer(2147483648LL), "<i8>2147483648</i8>");
	xml_value_is(json_integer(-2147483649LL), "<i8>-2147483649</i8>");
	xml_value_is(json_integer(INT64_MAX), "<i8>9223372036854775807</i8>");
	xml_value_is(json_integer(INT64_MIN), "<i8>-9223372036854775808</i8>");
	round_trip_text("{\"method\":\"m\",\"params\":{\"a\":9223372036854775807,"
			"\"b\":-9223372036854775808,\"c\":9007199254740993,\"d\":-1}}");
	struct rpc_request req;
	const char *body = "{\"method\":\"m\",\"params\":{\"a\":9223372036854775807,"
			   "\"b\":-9223372036854775808,\"c\":9007199254740993}}";
	parse_ok(body, strlen(body), &req);
	round_trip(&req, RPC_FORMAT_XML);
	rpc_request_free(&req);
}

static void test_reals(void **state)
{
	xml_value_is(json_real(0.1), "<double>0.1</double>");
	xml_value_is(json_real(1.0), "<double>1</double>");
	xml_value_is(json_real(-2.5e-7), "<double>-2.5e-07</double>");
	xml_value_is(json_real(1e300), "<double>1e+300</double>");
	const char *body = "{\"method\":\"m\",\"params\":{\"a\":0.1,\"b\":1e300,\"c\":-0.0,"
			   "\"d\":4.9406564584124654e-324,\"e\":1.7976931348623157e308,"
			   "\"f\":0.30000000000000004,\"g\":1.0}}";
	struct rpc_request req;
	parse_ok(body, strlen(body), &req);
	round_trip(&req, RPC_FORMAT_JSON);
	round_trip(&req, RPC_FORMAT_XML);
	rpc_request_free(&req);
}

static void test_other_types(void **state)
{
	xml_value_is(json_true(), "<boolean>1</boolean>");
	xml_value_is(json_false(), "<boolean>0</boolean>");
	xml_value_is(json_null(), "<nil/>");
	xml_value_is(json_of("[]"), "<array>\n<data>\n</data>\n</array>");
	xml_value_is(json_of("{}"), "<struct>\n</struct>");
	xml_value_is(json_of("[1,\"x\"]"), "<array>\n<data>\n<value>\n<int>1</int>\n</value>\n"
					   "<value>\n<string>x</string>\n</value>\n</data>\n"
					   "</array>");
	/* JSON keeps booleans; XML-RPC brings them back as 0/1 (rpc.h) */
	const char *body = "{\"method\":\"m\",\"params\":{\"t\":true,\"f\":false,\"n\":null}}";
	struct rpc_request req;
	parse_ok(body, strlen(body), &req);
	round_trip(&req, RPC_FORMAT_JSON);
	size_t len = 0;
	char *out = call_body(RPC_FORMAT_XML, req.method, NULL, req.params, &len);
	struct rpc_request back;
	parse_ok(out, len, &back);
	json_t *want = json_of("{\"t\":1,\"f\":0,\"n\":null}");
	assert_true(json_equal(back.params, want));
	json_decref(want);
	rpc_request_free(&back);
	free(out);
	rpc_request_free(&req);
}

/* ---- params ----------------------------------------------------------------- */

static void test_empty_params(void **state)
{
	size_t len = 0;
	char *out = call_body(RPC_FORMAT_JSON, "available", "1", NULL, &len);
	assert_string_equal(out, "{\"method\":\"available\",\"params\":{},\"id\":\"1\"}");
	free(out);
	json_t *empty = json_object();
	out = call_body(RPC_FORMAT_JSON, "available", NULL, empty, &len);
	assert_string_equal(out, "{\"method\":\"available\",\"params\":{}}");
	free(out);
	out = call_body(RPC_FORMAT_XML, "available", NULL, empty, &len);
	assert_string_equal(out, XML_HEAD "<methodName>available</methodName>\n<params>\n<param>\n"
					  "<value>\n<struct>\n</struct>\n</value>\n</param>\n"
					  "</params>\n</methodCall>\n");
	free(out);
	char *out2 = call_body(RPC_FORMAT_XML, "available", NULL, NULL, &len);
	out = call_body(RPC_FORMAT_XML, "available", NULL, empty, &len);
	assert_string_equal(out, out2);
	free(out);
	free(out2);
	json_decref(empty);
	round_trip_text("{\"method\":\"available\",\"params\":[]}");
	round_trip_text("<methodCall><methodName>available</methodName></methodCall>");
	round_trip_text("<methodCall><methodName>x</methodName><params/></methodCall>");
}

static void test_nested_files(void **state)
{
	const char *body =
	    "{\"method\":\"request\",\"params\":{\"files\":{\"a.c\":\"int main(){}\\n\","
	    "\"dir/b.h\":\"#define X <y>\\r\\n\",\"empty\":\"\"},\"filestodelete\":{\"a.c\":1},"
	    "\"fileencoding\":{\"a.c\":0,\"dir/b.h\":0},\"submittedlist\":[\"a.c\",[],{}],"
	    "\"nested\":{\"a\":{\"b\":{\"c\":[1,[2,[3]]]}}},\"emptymap\":[],"
	    "\"name with spaces & <marks>\":\"v\"},\"id\":\"3-1-2\"}";
	struct rpc_request req;
	parse_ok(body, strlen(body), &req);
	round_trip(&req, RPC_FORMAT_JSON);
	round_trip(&req, RPC_FORMAT_XML);
	rpc_request_free(&req);
}

/* Nesting up to what the parsers accept round-trips; one more is refused
 * by the encoder as it would be by the parsers. */
static void test_depth(void **state)
{
	/* root (1) > params (2) > 62 more levels = RPC_MAX_DEPTH */
	json_t *params = json_object(), *leaf = params;
	for (int d = 3; d <= RPC_MAX_DEPTH; d++) {
		json_t *next = d % 2 ? json_object() : json_array();
		if (json_is_object(leaf))
			json_object_set_new(leaf, "k", next);
		else
			json_array_append_new(leaf, next);
		leaf = next;
	}
	struct rpc_request req = {.method = "m", .params = params};
	round_trip(&req, RPC_FORMAT_JSON);
	round_trip(&req, RPC_FORMAT_XML);
	json_t *deeper = json_array();
	if (json_is_object(leaf))
		json_object_set_new(leaf, "k", deeper);
	else
		json_array_append_new(leaf, deeper);
	call_fails(RPC_FORMAT_JSON, "m", NULL, params, "nested deeper");
	call_fails(RPC_FORMAT_XML, "m", NULL, params, "nested deeper");
	json_decref(params);
}

/* ---- XML with and without the declaration ----------------------------------- */

static void test_xml_declaration(void **state)
{
	round_trip_text("<methodCall><methodName>stop</methodName><params><param><value>"
			"<struct><member><name>adminticket</name><value>123</value></member>"
			"</struct></value></param></params></methodCall>");
	round_trip_text("  \r\n" XML_HEAD "<methodName> stop </methodName><params><param><value>"
			"<struct><member><name> sp </name><value><string> x </string></value>"
			"</member></struct></value></param></params></methodCall>");
	/* the output always has the declaration */
	const char *body = "<methodCall><methodName>stop</methodName></methodCall>";
	struct rpc_request req;
	parse_ok(body, strlen(body), &req);
	size_t len = 0;
	char *out = call_body(RPC_FORMAT_XML, req.method, NULL, req.params, &len);
	assert_true(!strncmp(out, XML_HEAD, strlen(XML_HEAD)));
	free(out);
	rpc_request_free(&req);
}

/* ---- rejects ----------------------------------------------------------------- */

static void test_rejects(void **state)
{
	json_t *p = json_of("{\"a\":1}");
	call_fails(RPC_FORMAT_JSON, NULL, NULL, p, "no method");
	call_fails((enum rpc_format)9, "m", NULL, p, "unknown format");
	json_t *arr = json_of("[1]");
	call_fails(RPC_FORMAT_JSON, "m", NULL, arr, "not an object");
	call_fails(RPC_FORMAT_XML, "m", NULL, arr, "not an object");
	json_decref(arr);
	call_fails(RPC_FORMAT_JSON, "m\xff", NULL, p, "method is not valid UTF-8");
	call_fails(RPC_FORMAT_JSON, "m", "\xc3", p, "id is not valid UTF-8");
	/* the XML methodName is trimmed by the parser and cannot be base64 */
	call_fails(RPC_FORMAT_XML, "", NULL, p, "cannot be carried");
	call_fails(RPC_FORMAT_XML, " m", NULL, p, "cannot be carried");
	call_fails(RPC_FORMAT_XML, "m\n", NULL, p, "cannot be carried");
	call_fails(RPC_FORMAT_XML, "m\x01", NULL, p, "cannot be carried");
	call_fails(RPC_FORMAT_XML, "m\xff", NULL, p, "cannot be carried");
	call_fails(RPC_FORMAT_XML, "m\xef\xbf", NULL, p, "cannot be carried");
	json_decref(p);
	/* member names cannot be base64 either */
	p = json_of("{\"files\":{\"a\\u0001b\":\"x\"}}");
	call_fails(RPC_FORMAT_XML, "m", NULL, p, "member name");
	size_t len = 0;
	free(call_body(RPC_FORMAT_JSON, "m", NULL, p, &len));
	json_decref(p);
	p = json_object();
	json_object_setn_new_nocheck(p, "a\0b", 3, json_integer(1));
	call_fails(RPC_FORMAT_JSON, "m", NULL, p, "NUL byte");
	json_decref(p);
	p = json_object();
	json_object_setn_new_nocheck(p, "\xff", 1, json_integer(1));
	call_fails(RPC_FORMAT_JSON, "m", NULL, p, "not valid UTF-8");
	call_fails(RPC_FORMAT_XML, "m", NULL, p, "member name");
	json_decref(p);
}

/* Any failure leaves the buffer as it was, the cap included. */
static void test_buffer_cap(void **state)
{
	json_t *p = json_of("{\"files\":{\"a\":\"0123456789012345678901234567890123456789\","
			    "\"b\":\"\\u0001123456789012345678901234567890123456789\"}}");
	struct err e = {0};
	size_t full[2];
	for (int fmt = 0; fmt < 2; fmt++) {
		char *body = call_body((enum rpc_format)fmt, "update", "1", p, &full[fmt]);
		free(body);
		for (size_t cap = 0; cap < full[fmt]; cap += 3) {
			struct buf out;
			buf_init(&out, cap + 4);
			assert_int_equal(buf_puts(&out, "KEEP", &e), 0);
			assert_int_equal(
			    rpc_encode_call(&out, (enum rpc_format)fmt, "update", "1", p, &e), -1);
			assert_int_equal(e.code, E2BIG);
			assert_int_equal(out.len, 4);
			assert_string_equal(out.data, "KEEP");
			buf_free(&out);
		}
		struct buf out;
		buf_init(&out, full[fmt] + 4);
		assert_int_equal(buf_puts(&out, "KEEP", &e), 0);
		assert_int_equal(rpc_encode_call(&out, (enum rpc_format)fmt, "update", "1", p, &e),
				 0);
		assert_int_equal(out.len, full[fmt] + 4);
		buf_free(&out);
	}
	json_decref(p);
}

static void test_big_file(void **state)
{
	size_t n = 20u << 20;
	char *s = malloc(n);
	assert_non_null(s);
	for (size_t k = 0; k < n; k++)
		s[k] = (k % 80 == 79) ? '\n' : (k % 1000 == 3) ? '<' : (char)('a' + k % 26);
	struct rpc_request req = {.method = "update", .params = json_object()};
	json_t *files = json_object();
	json_object_set_new(files, "big.txt", json_stringn(s, n));
	s[5] = '\x01'; /* this one goes as base64 */
	json_object_set_new(files, "big.bin", json_stringn(s, n));
	json_object_set_new(req.params, "files", files);
	round_trip(&req, RPC_FORMAT_XML);
	json_object_del(files, "big.bin");
	round_trip(&req, RPC_FORMAT_JSON);
	json_decref(req.params);
	free(s);
}

static void test_xml_text_ok(void **state)
{
	assert_true(rpc_xml_text_ok(NULL, 0));
	assert_true(rpc_xml_text_ok("a\t\n\r\x7f", 5));
	assert_true(rpc_xml_text_ok("\xef\xbf\xbd\xf4\x8f\xbf\xbf", 7));
	assert_false(rpc_xml_text_ok("\0", 1));
	assert_false(rpc_xml_text_ok("\x1f", 1));
	assert_false(rpc_xml_text_ok("\xef\xbf\xbe", 3));
	assert_false(rpc_xml_text_ok("\xed\xa0\x80", 3)); /* surrogate */
	assert_false(rpc_xml_text_ok("\xc0\xaf", 2));	  /* overlong */
	assert_false(rpc_xml_text_ok("\xe2\x82", 2));	  /* truncated */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_samples_round_trip),
	    cmocka_unit_test(test_xml_layout_matches_plugin),
	    cmocka_unit_test(test_json_layout),
	    cmocka_unit_test(test_proxy_rewrite),
	    cmocka_unit_test(test_nul_bytes),
	    cmocka_unit_test(test_non_utf8_xml),
	    cmocka_unit_test(test_xml_strings),
	    cmocka_unit_test(test_xml_names),
	    cmocka_unit_test(test_huge_ints),
	    cmocka_unit_test(test_reals),
	    cmocka_unit_test(test_other_types),
	    cmocka_unit_test(test_empty_params),
	    cmocka_unit_test(test_nested_files),
	    cmocka_unit_test(test_depth),
	    cmocka_unit_test(test_xml_declaration),
	    cmocka_unit_test(test_rejects),
	    cmocka_unit_test(test_buffer_cap),
	    cmocka_unit_test(test_big_file),
	    cmocka_unit_test(test_xml_text_ok),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
