/*
 * test_rpc_result.c - rpc_parse_result: every response sample (5.0.1 wire
 * samples and the spec's examples) encodes back byte for byte, the proxy's
 * rewrite, the round-trip property over generated member lists, what is
 * accepted beyond rpc_encode's output, the rejects, and get/set.
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
#include "rpc_result.h"
#include "testdata.h"

#define N(a)	  (sizeof(a) / sizeof((a)[0]))
#define XML_DECL  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define XML_OPEN  XML_DECL "<methodResponse>\n<params>\n<param>\n<struct>\n"
#define XML_CLOSE "</struct>\n</param>\n</params>\n</methodResponse>\n"

/* ---- helpers ------------------------------------------------------------- */

static void parse_ok_n(const char *body, size_t len, struct rpc_result *res)
{
	struct err e = {0};
	if (rpc_parse_result(body, len, res, &e) != 0)
		fail_msg("parse failed: %s\n%.*s", e.msg, (int)len, body);
}

static void parse_ok(const char *body, struct rpc_result *res)
{
	parse_ok_n(body, strlen(body), res);
}

static void parse_fail(const char *body, const char *needle)
{
	struct err e = {0};
	struct rpc_result res;
	memset(&res, 0x5a, sizeof res);
	assert_int_equal(rpc_parse_result(body, strlen(body), &res, &e), -1);
	if (!strstr(e.msg, needle))
		fail_msg("error \"%s\" lacks \"%s\" for\n%s", e.msg, needle, body);
	assert_true(!strncmp(e.msg, "JSON parse error: ", 18) ||
		    !strncmp(e.msg, "XML-RPC parse error: ", 21));
	assert_int_not_equal(e.code, 0);
	assert_null(res.members);
	assert_null(res.id);
	assert_int_equal(res.n, 0);
	rpc_result_free(&res);
}

static char *encode(enum rpc_format fmt, const char *id, const struct rpc_member *m, size_t n,
		    size_t *len)
{
	struct buf out;
	struct err e = {0};
	buf_init(&out, 1u << 28);
	if (rpc_encode(&out, fmt, id, m, n, &e) != 0)
		fail_msg("encode: %s", e.msg);
	return buf_steal(&out, len);
}

static char *encode_res(const struct rpc_result *res, size_t *len)
{
	return encode(res->format, res->id, res->members, res->n, len);
}

static void assert_bytes(const char *got, size_t glen, const char *want, size_t wlen)
{
	if (glen != wlen || memcmp(got, want, wlen))
		fail_msg("differs:\n--- got (%zu)\n%.*s\n--- want (%zu)\n%.*s", glen, (int)glen,
			 got, wlen, (int)wlen, want);
}

static void assert_str_member(const struct rpc_result *res, const char *name, const char *want)
{
	const struct rpc_member *m = rpc_result_get(res, name);
	assert_non_null(m);
	assert_int_equal(m->type, RPC_T_STR);
	assert_int_equal(m->slen, strlen(want));
	assert_memory_equal(m->s, want, m->slen);
}

static void assert_int_member(const struct rpc_result *res, const char *name, long long want)
{
	const struct rpc_member *m = rpc_result_get(res, name);
	assert_non_null(m);
	assert_int_equal(m->type, RPC_T_INT);
	assert_int_equal(m->i, want);
}

/* ---- the samples ------------------------------------------------------------ */

static void test_samples_byte_identical(void **state)
{
	static const char *const files[] = {
	    "spec_1_4_resp.json",	  "spec_1_4_resp.xml",
	    "spec_2_1_resp.xml",	  "spec_2_2_resp.json",
	    "spec_2_2_resp.xml",	  "spec_2_3_resp.json",
	    "spec_2_3_resp.xml",	  "spec_2_4_resp.json",
	    "spec_2_4_resp.xml",	  "spec_2_5_resp.json",
	    "spec_2_5_resp.xml",	  "spec_2_6_resp.json",
	    "spec_2_6_resp.xml",	  "spec_2_7_resp.json",
	    "spec_2_7_resp.xml",	  "wire_available_resp.json",
	    "wire_available_resp.xml",	  "wire_getresult_resp.json",
	    "wire_getresult_resp.xml",	  "wire_request_eval_resp.json",
	    "wire_request_eval_resp.xml", "wire_request_run_resp.json",
	    "wire_request_run_resp.xml",  "wire_running_resp.json",
	    "wire_running_resp.xml",	  "wire_stop_resp.json",
	    "wire_stop_resp.xml",
	};
	for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
		size_t len = 0, olen = 0;
		char *body = read_data(files[k], &len);
		struct rpc_result res;
		parse_ok_n(body, len, &res);
		assert_int_equal(res.format,
				 strstr(files[k], ".xml") ? RPC_FORMAT_XML : RPC_FORMAT_JSON);
		char *out = encode_res(&res, &olen);
		assert_bytes(out, olen, body, len);
		free(out);
		rpc_result_free(&res);
		rpc_result_free(&res); /* twice is safe */
		free(body);
	}
}

static void test_sample_contents(void **state)
{
	size_t len = 0;
	char *body = read_data("wire_getresult_resp.json", &len);
	struct rpc_result res;
	parse_ok_n(body, len, &res);
	assert_string_equal(res.id, "2-2204-990752847");
	assert_int_equal(res.n, 4);
	assert_string_equal(res.members[0].name, "compilation");
	assert_str_member(&res, "compilation", "");
	assert_non_null(
	    strstr(rpc_result_get(&res, "execution")->s, "Testing 1/1 : hello\n\n<|--"));
	assert_int_member(&res, "executed", 1);
	assert_int_member(&res, "interactive", 0);
	assert_null(rpc_result_get(&res, "nosuch"));
	assert_null(rpc_result_get(&res, NULL));
	assert_null(rpc_result_get(NULL, "executed"));
	rpc_result_free(&res);
	free(body);

	body = read_data("wire_getresult_resp.xml", &len);
	parse_ok_n(body, len, &res);
	assert_null(res.id);
	assert_non_null(strstr(rpc_result_get(&res, "execution")->s, "\n--|>\n\nGrade :=>>10\n"));
	rpc_result_free(&res);
	free(body);
}

/* What the proxy does with a request response: suffix the tickets, put its
 * own ports in. */
static void rewrite(struct rpc_result *res)
{
	static const char *const tickets[] = {"adminticket", "monitorticket", "executionticket"};
	struct err e = {0};
	for (size_t k = 0; k < 3; k++) {
		const struct rpc_member *m = rpc_result_get(res, tickets[k]);
		assert_non_null(m);
		char s[64];
		int n = snprintf(s, sizeof s, "%.*s07", (int)m->slen, m->s);
		assert_int_equal(rpc_result_set_str(res, tickets[k], s, (size_t)n, &e), 1);
	}
	assert_int_equal(rpc_result_set_int(res, "port", 80, &e), 1);
	assert_int_equal(rpc_result_set_int(res, "secureport", 443, &e), 1);
	assert_int_equal(rpc_result_set_int(res, "homepath", 1, &e), 0);
}

static void test_proxy_rewrite(void **state)
{
	size_t len = 0, olen = 0;
	char *body = read_data("wire_request_eval_resp.json", &len);
	struct rpc_result res;
	parse_ok_n(body, len, &res);
	rewrite(&res);
	char *out = encode_res(&res, &olen);
	assert_string_equal(out, "{\"jsonrpc\":\"2.0\",\"result\":{\"adminticket\":"
				 "\"66490811109709207\",\"monitorticket\":\"4923887681049307\","
				 "\"executionticket\":\"26233571034614007\",\"port\":80,"
				 "\"secureport\":443},\"id\":\"2-2202-665473988\"}");
	free(out);
	rpc_result_free(&res);
	free(body);

	body = read_data("wire_request_eval_resp.xml", &len);
	parse_ok_n(body, len, &res);
	rewrite(&res);
	out = encode_res(&res, &olen);
	assert_string_equal(out, XML_OPEN "<member><name>adminticket</name>\n"
					  "<value><string>1358665726513507</string></value>\n"
					  "</member>\n<member><name>monitorticket</name>\n"
					  "<value><string>98083361648741207</string></value>\n"
					  "</member>\n<member><name>executionticket</name>\n"
					  "<value><string>149942071531044707</string></value>\n"
					  "</member>\n<member><name>port</name>\n"
					  "<value><int>80</int></value>\n</member>\n"
					  "<member><name>secureport</name>\n"
					  "<value><int>443</int></value>\n</member>\n" XML_CLOSE);
	free(out);
	rpc_result_free(&res);
	free(body);
}

/* ---- the round-trip property ------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Pieces strings are made of; the dirty ones are what the encoders replace
 * or drop (invalid UTF-8, control bytes, U+FFFE). */
static const char *const clean[] = {
    "a",
    "Z",
    " ",
    "0",
    "&",
    "<",
    ">",
    "'",
    "\"",
    "/",
    "\\",
    "\r",
    "\n",
    "\t",
    "\r\n",
    "\x7f",
    "]]>",
    "\xc3\xa9",
    "\xe2\x82\xac",
    "\xf0\x9f\x98\x80",
    "\xef\xbf\xbd",
    "&#195;",
    "\xf4\x8f\xbe\x80",
    "\xf4\x8f\xbc\x81",
    "\xc2\x80",
};
static const char *const dirty[] = {"\xff", "\xc3", "\x01", "\x1b", "\xef\xbf\xbe", "\xed\xa0\x80"};

static size_t gen_string(char *s, size_t cap, int allow_dirty)
{
	size_t n = 0, parts = rnd() % 12;
	for (size_t k = 0; k < parts; k++) {
		const char *p = allow_dirty && rnd() % 4 == 0 ? dirty[rnd() % N(dirty)]
							      : clean[rnd() % N(clean)];
		size_t l = strlen(p);
		if (n + l >= cap)
			break;
		memcpy(s + n, p, l);
		n += l;
	}
	if (allow_dirty && rnd() % 8 == 0 && n + 1 < cap)
		s[n++] = '\0'; /* JSON carries it, XML drops it */
	return n;
}

static long long gen_int(void)
{
	static const long long edges[] = {0,
					  1,
					  -1,
					  INT32_MAX,
					  INT32_MIN,
					  (long long)INT32_MAX + 1,
					  (long long)INT32_MIN - 1,
					  INT64_MAX,
					  INT64_MIN,
					  9007199254740993LL,
					  -9007199254740993LL,
					  4294967296LL};
	return rnd() % 2 ? edges[rnd() % N(edges)] : (long long)rnd();
}

struct gen {
	struct rpc_member m[RPC_RESULT_MAX_MEMBERS];
	char names[RPC_RESULT_MAX_MEMBERS][32];
	char strs[RPC_RESULT_MAX_MEMBERS][96];
	size_t n;
};

/* Names are distinct and clean, so they stay distinct through XML's drops. */
static void gen_members(struct gen *g, int allow_dirty)
{
	g->n = rnd() % (RPC_RESULT_MAX_MEMBERS + 1);
	for (size_t k = 0; k < g->n; k++) {
		char extra[16];
		size_t el = gen_string(extra, 12, 0);
		snprintf(g->names[k], sizeof g->names[k], "m%zu_%.*s", k, (int)el, extra);
		struct rpc_member *m = &g->m[k];
		*m = (struct rpc_member){.name = g->names[k]};
		if (rnd() % 2) {
			m->type = RPC_T_INT;
			m->i = gen_int();
		} else {
			m->type = RPC_T_STR;
			m->slen = gen_string(g->strs[k], sizeof g->strs[k], allow_dirty);
			m->s = g->strs[k];
		}
	}
}

/* rpc_encode(parse(rpc_encode(M))) == rpc_encode(M); for clean strings the
 * members themselves come back too. */
static void check_property(enum rpc_format fmt, const char *id, const struct gen *g, int clean_)
{
	size_t len = 0, len2 = 0;
	char *body = encode(fmt, id, g->m, g->n, &len);
	struct rpc_result res;
	parse_ok_n(body, len, &res);
	assert_int_equal(res.format, fmt);
	assert_int_equal(res.n, g->n);
	if (fmt == RPC_FORMAT_XML)
		assert_null(res.id);
	else
		assert_string_equal(res.id, id ? id : "");
	char *again = encode(fmt, id, res.members, res.n, &len2);
	assert_bytes(again, len2, body, len);
	free(again);
	again = encode_res(&res, &len2);
	assert_bytes(again, len2, body, len);
	free(again);
	for (size_t k = 0; clean_ && k < g->n; k++) {
		const struct rpc_member *a = &g->m[k], *b = &res.members[k];
		assert_string_equal(a->name, b->name);
		assert_int_equal(a->type, b->type);
		if (a->type == RPC_T_STR) {
			assert_int_equal(a->slen, b->slen);
			assert_memory_equal(a->s, b->s, a->slen);
		} else if (fmt == RPC_FORMAT_JSON || (a->i >= INT32_MIN && a->i <= INT32_MAX)) {
			assert_int_equal(a->i, b->i);
		} else {
			assert_true((double)a->i == (double)b->i);
		}
	}
	rpc_result_free(&res);
	free(body);
}

static void test_round_trip_property(void **state)
{
	static const char *const ids[] = {NULL, "", "2-2204-990752847", "a\"b\\/\x01\xc3\xa9"};
	struct gen *g = malloc(sizeof *g);
	assert_non_null(g);
	for (int iter = 0; iter < 400; iter++) {
		int allow_dirty = iter % 2;
		gen_members(g, allow_dirty);
		for (int fmt = 0; fmt < 2; fmt++)
			check_property((enum rpc_format)fmt, ids[iter % 4], g, !allow_dirty);
	}
	free(g);
}

/* The edges one by one, and the full 64 members. */
static void test_round_trip_edges(void **state)
{
	struct gen *g = malloc(sizeof *g);
	assert_non_null(g);
	static const long long ints[] = {INT64_MAX, INT64_MIN, 9007199254740993LL, 2147483648LL,
					 -2147483649LL};
	for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
		g->n = 1;
		g->m[0] = (struct rpc_member){.name = "v", .type = RPC_T_INT, .i = ints[k]};
		check_property(RPC_FORMAT_JSON, "1", g, 1);
		check_property(RPC_FORMAT_XML, NULL, g, 1);
	}
	/* INT64_MAX goes as <double>9223372036854775808</double> and reads back */
	struct rpc_result res;
	parse_ok(XML_OPEN "<member><name>v</name>\n<value><double>9223372036854775808</double>"
			  "</value>\n</member>\n" XML_CLOSE,
		 &res);
	assert_int_member(&res, "v", INT64_MAX);
	rpc_result_free(&res);
	/* NUL bytes in JSON strings */
	g->m[0] = (struct rpc_member){.name = "v", .type = RPC_T_STR, .s = "a\0b\0", .slen = 4};
	check_property(RPC_FORMAT_JSON, "1", g, 1);
	/* exactly the maximum number of members */
	g->n = RPC_RESULT_MAX_MEMBERS;
	for (size_t k = 0; k < g->n; k++) {
		snprintf(g->names[k], sizeof g->names[k], "m%zu", k);
		g->m[k] = (struct rpc_member){.name = g->names[k], .type = RPC_T_INT, .i = (long)k};
	}
	check_property(RPC_FORMAT_JSON, "1", g, 1);
	check_property(RPC_FORMAT_XML, NULL, g, 1);
	/* and an empty result */
	g->n = 0;
	check_property(RPC_FORMAT_JSON, "1", g, 1);
	check_property(RPC_FORMAT_XML, NULL, g, 1);
	free(g);
}

/* ---- beyond rpc_encode's output -------------------------------------------- */

static void test_liberal_json(void **state)
{
	struct rpc_result res;
	parse_ok(" \n{\"result\":{\"a\":\"x\",\"t\":true,\"f\":false,\"r\":5.0,\"big\":1e18},"
		 "\"id\":42}",
		 &res);
	assert_int_equal(res.format, RPC_FORMAT_JSON);
	assert_string_equal(res.id, "42");
	assert_str_member(&res, "a", "x");
	assert_int_member(&res, "t", 1);
	assert_int_member(&res, "f", 0);
	assert_int_member(&res, "r", 5);
	assert_int_member(&res, "big", 1000000000000000000LL);
	size_t len = 0;
	char *out = encode_res(&res, &len);
	assert_string_equal(out, "{\"jsonrpc\":\"2.0\",\"result\":{\"a\":\"x\",\"t\":1,\"f\":0,"
				 "\"r\":5,\"big\":1000000000000000000},\"id\":\"42\"}");
	free(out);
	rpc_result_free(&res);
	parse_ok("{\"id\":null,\"result\":{},\"jsonrpc\":\"1.0\"}", &res);
	assert_null(res.id);
	assert_int_equal(res.n, 0);
	rpc_result_free(&res);
	parse_ok("{\"result\":{\"s\":\"\\u00e9\\ufffe\\u0000\"},\"id\":1.5}", &res);
	assert_string_equal(res.id, "1.5");
	const struct rpc_member *m = rpc_result_get(&res, "s");
	assert_int_equal(m->slen, 6);
	assert_memory_equal(m->s, "\xc3\xa9\xef\xbf\xbe\0", 6);
	rpc_result_free(&res);
}

static void test_liberal_xml(void **state)
{
	struct rpc_result res;
	/* standard XML-RPC: <value> around the struct; other int types; no
	 * declaration; comments; CRLF between the elements */
	parse_ok("\r\n<methodResponse><params><param><!-- c --><value><struct>\r\n"
		 "<member><value><i4> 7 </i4></value><name>a</name></member>\r\n"
		 "<member><name>b</name><value><i8>-9223372036854775808</i8></value></member>"
		 "<member><name>c</name><value><boolean>1</boolean></value></member>"
		 "<member><name>d</name><value>  untyped &amp; kept  </value></member>"
		 "<member><name>e</name><value><double>4294967296.0</double></value></member>"
		 "<member><name>f</name><value><string>Rodr&#195;&#173;guez\r\n</string>"
		 "</value></member>"
		 "<member><name>g</name><value><string/></value></member>"
		 "<member><name>h</name><value><int>+0012</int></value></member>"
		 "</struct></value></param></params></methodResponse>",
		 &res);
	assert_int_equal(res.format, RPC_FORMAT_XML);
	assert_null(res.id);
	assert_int_equal(res.n, 8);
	assert_int_member(&res, "a", 7);
	assert_int_member(&res, "b", INT64_MIN);
	assert_int_member(&res, "c", 1);
	assert_str_member(&res, "d", "  untyped & kept  ");
	assert_int_member(&res, "e", 4294967296LL);
	assert_str_member(&res, "f", "Rodr\xc3\xadguez\r\n");
	assert_str_member(&res, "g", "");
	assert_int_member(&res, "h", 12);
	assert_string_equal(res.members[0].name, "a");
	rpc_result_free(&res);
}

/* ---- rejects ------------------------------------------------------------------ */

#define XML_ONE(value)                                                                             \
	XML_OPEN "<member><name>v</name>\n<value>" value "</value>\n</member>\n" XML_CLOSE

static void test_rejects_json(void **state)
{
	parse_fail("", "JSON parse error");
	parse_fail("garbage", "JSON parse error");
	parse_fail("[1]", "root is not an object");
	parse_fail("{\"jsonrpc\":\"2.0\",\"error\":{\"code\":1},\"id\":\"1\"}", "JSON-RPC error");
	parse_fail("{\"jsonrpc\":\"2.0\",\"id\":\"1\"}", "missing \"result\"");
	parse_fail("{\"result\":[],\"id\":\"1\"}", "\"result\" is not an object");
	parse_fail("{\"result\":3}", "\"result\" is not an object");
	parse_fail("{\"result\":{\"a\":{}}}", "nested");
	parse_fail("{\"result\":{\"a\":[1]}}", "nested");
	parse_fail("{\"result\":{\"a\":null}}", "not a string or number");
	parse_fail("{\"result\":{\"a\":1.5}}", "not an integral number");
	parse_fail("{\"result\":{\"a\":1e19}}", "not an integral number");
	parse_fail("{\"result\":{\"a\":1,\"a\":2}}", "duplicate");
	parse_fail("{\"result\":{},\"result\":{}}", "duplicate");
	parse_fail("{\"result\":{},\"extra\":1}", "unexpected member");
	parse_fail("{\"result\":{},\"jsonrpc\":2}", "\"jsonrpc\" is not a string");
	parse_fail("{\"result\":{},\"id\":[]}", "\"id\" is not a string or number");
	parse_fail("{\"result\":{},\"id\":true}", "\"id\" is not a string or number");
	parse_fail("{\"result\":{},\"id\":\"a\\u0000\"}", "NUL byte");
	parse_fail("{\"result\":{\"a\\u0000\":1}}", "NUL byte");
	parse_fail("{\"result\":{\"a\":\"\xff\"}}", "JSON parse error");
	parse_fail("{\"result\":{\"a\":99999999999999999999}}", "JSON parse error");
	char deep[300];
	memset(deep, '[', sizeof deep - 1);
	deep[sizeof deep - 1] = '\0';
	parse_fail(deep, "nested");
	/* one member too many */
	char *body = malloc(65 * 16 + 64);
	size_t n = (size_t)sprintf(body, "{\"result\":{");
	for (int k = 0; k <= RPC_RESULT_MAX_MEMBERS; k++)
		n += (size_t)sprintf(body + n, "%s\"m%d\":%d", k ? "," : "", k, k);
	sprintf(body + n, "}}");
	parse_fail(body, "too many members");
	free(body);
}

static void test_rejects_xml(void **state)
{
	parse_fail("<", "XML-RPC parse error");
	parse_fail("<methodCall><methodName>x</methodName></methodCall>", "not <methodResponse>");
	parse_fail(XML_DECL "<methodResponse><fault><value><struct><member><name>faultCode</name>"
			    "<value><int>4</int></value></member></struct></value></fault>"
			    "</methodResponse>",
		   "fault");
	parse_fail("<methodResponse/>", "nothing inside <methodResponse>");
	parse_fail("<methodResponse><params/></methodResponse>", "nothing inside <params>");
	parse_fail("<methodResponse><params><param><struct/></param><param><struct/></param>"
		   "</params></methodResponse>",
		   "more than one element");
	parse_fail("<methodResponse><params><param><value><int>1</int></value></param></params>"
		   "</methodResponse>",
		   "not a <struct>");
	parse_fail("<methodResponse><params><param><value>text</value></param></params>"
		   "</methodResponse>",
		   "unexpected text");
	parse_fail("<methodResponse><foo/></methodResponse>", "unexpected <foo>");
	parse_fail(XML_ONE("<struct></struct>"), "type <struct>");
	parse_fail(XML_ONE("<array><data/></array>"), "type <array>");
	parse_fail(XML_ONE("<base64>AAA=</base64>"), "type <base64>");
	parse_fail(XML_ONE("<nil/>"), "type <nil>");
	parse_fail(XML_ONE("<dateTime.iso8601>x</dateTime.iso8601>"), "type <dateTime");
	parse_fail(XML_ONE("<double>1.5</double>"), "not an integral number");
	parse_fail(XML_ONE("<double>1e19</double>"), "not an integral number");
	parse_fail(XML_ONE("<double>9223372036854777856</double>"), "not an integral number");
	parse_fail(XML_ONE("<int>x</int>"), "bad <int>");
	parse_fail(XML_ONE("<int>99999999999999999999</int>"), "bad <int>");
	parse_fail(XML_ONE("<boolean>2</boolean>"), "bad <boolean>");
	parse_fail(XML_ONE("<string>a</string><string>b</string>"), "more than one type");
	parse_fail(XML_ONE("<string>&#239;&#191;&#190;</string>"), "characters XML cannot");
	parse_fail(XML_OPEN "<member><name>&#239;&#191;&#191;</name><value>1</value></member>"
			    "\n" XML_CLOSE,
		   "member name");
	parse_fail(XML_OPEN "<member><name>a</name><value>1</value></member>"
			    "<member><name>a</name><value>2</value></member>" XML_CLOSE,
		   "duplicate member");
	parse_fail(XML_OPEN "<member><name>a</name></member>" XML_CLOSE, "without <value>");
	parse_fail(XML_OPEN
		   "<member><name>a</name><name>b</name><value>1</value></member>" XML_CLOSE,
		   "unexpected <name>");
	parse_fail(XML_OPEN "<member><name><b>a</b></name><value>1</value></member>" XML_CLOSE,
		   "unexpected <b>");
	parse_fail(XML_OPEN "stray text" XML_CLOSE, "unexpected text");
	parse_fail(XML_OPEN "<other/>" XML_CLOSE, "unexpected <other>");
	parse_fail(XML_OPEN "<member><name>a</name><value>1</value></member>", "XML-RPC parse");
	/* the request parser's hardening applies */
	parse_fail("<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaa\">]>"
		   "<methodResponse/>",
		   "DOCTYPE");
	parse_fail(XML_ONE("<string>&a;</string>"), "XML-RPC parse error");
	char *deep = malloc(20 * 400 + 1);
	deep[0] = '\0';
	for (int k = 0; k < 400; k++)
		strcat(deep, "<methodResponse>");
	parse_fail(deep, "nested too deeply");
	free(deep);
	/* one member too many */
	char *body = malloc(80 * 66 + 256);
	size_t n = (size_t)sprintf(body, XML_OPEN);
	for (int k = 0; k <= RPC_RESULT_MAX_MEMBERS; k++)
		n += (size_t)sprintf(body + n, "<member><name>m%d</name><value>1</value></member>",
				     k);
	sprintf(body + n, XML_CLOSE);
	parse_fail(body, "too many members");
	free(body);
}

/* ---- get and set ----------------------------------------------------------------- */

static void test_get_set(void **state)
{
	struct rpc_result res;
	struct err e = {0};
	parse_ok("{\"jsonrpc\":\"2.0\",\"result\":{\"a\":\"x\",\"b\":2},\"id\":\"1\"}", &res);
	assert_int_equal(rpc_result_set_str(&res, "b", "two\0", 4, &e), 1);
	const struct rpc_member *b = rpc_result_get(&res, "b");
	assert_int_equal(b->type, RPC_T_STR);
	assert_int_equal(b->slen, 4);
	assert_memory_equal(b->s, "two\0", 5); /* NUL-terminated copy */
	assert_int_equal(rpc_result_set_int(&res, "a", -5, &e), 1);
	assert_int_member(&res, "a", -5);
	assert_null(rpc_result_get(&res, "a")->s);
	assert_int_equal(rpc_result_set_str(&res, "a", NULL, 0, &e), 1);
	assert_str_member(&res, "a", "");
	assert_int_equal(rpc_result_set_str(&res, "a", "again", 5, &e), 1);
	assert_int_equal(rpc_result_set_str(&res, "zz", "x", 1, &e), 0);
	assert_int_equal(rpc_result_set_int(&res, "zz", 1, &e), 0);
	assert_int_equal(res.n, 2);
	size_t len = 0;
	char *out = encode_res(&res, &len);
	assert_string_equal(out, "{\"jsonrpc\":\"2.0\",\"result\":{\"a\":\"again\","
				 "\"b\":\"two\\u0000\"},\"id\":\"1\"}");
	free(out);
	rpc_result_free(&res);
	assert_int_equal(rpc_result_set_int(&res, "a", 1, &e), 0); /* freed: empty */
	struct rpc_result zero = {0};
	rpc_result_free(&zero);
	rpc_result_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_samples_byte_identical),
	    cmocka_unit_test(test_sample_contents),
	    cmocka_unit_test(test_proxy_rewrite),
	    cmocka_unit_test(test_round_trip_property),
	    cmocka_unit_test(test_round_trip_edges),
	    cmocka_unit_test(test_liberal_json),
	    cmocka_unit_test(test_liberal_xml),
	    cmocka_unit_test(test_rejects_json),
	    cmocka_unit_test(test_rejects_xml),
	    cmocka_unit_test(test_get_set),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
