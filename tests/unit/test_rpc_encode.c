/*
 * test_rpc_encode.c - rpc_encode: byte equality with the 5.0.1 wire samples
 * and the spec's response examples (§1.4, §2.1-2.7), escaping in both
 * formats, invalid UTF-8, int32 overflow, and failure behaviour.
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
#include "testdata.h"

#define S(n, v)                                                                                    \
	{                                                                                          \
		.name = (n), .type = RPC_T_STR, .s = (v), .slen = sizeof(v) - 1                    \
	}
#define I(n, v)                                                                                    \
	{                                                                                          \
		.name = (n), .type = RPC_T_INT, .i = (v)                                           \
	}
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Encodes and compares with the data file `want` byte for byte; when
 * content_length is not 0 it must also equal the transcript's header. */
static void encode_matches(enum rpc_format fmt, const char *id, const struct rpc_member *m,
			   size_t n, const char *want, size_t content_length)
{
	struct buf out;
	struct err e = {0};
	size_t wlen = 0;
	char *w = read_data(want, &wlen);
	buf_init(&out, 1 << 20);
	if (rpc_encode(&out, fmt, id, m, n, &e) != 0)
		fail_msg("encode: %s", e.msg);
	if (out.len != wlen || memcmp(out.data, w, wlen))
		fail_msg("%s differs:\n--- got (%zu)\n%s\n--- want (%zu)\n%s", want, out.len,
			 out.data, wlen, w);
	if (content_length)
		assert_int_equal(out.len, content_length);
	buf_free(&out);
	free(w);
}

/* Encodes one member and returns the body (caller frees). */
static char *encode1(enum rpc_format fmt, const struct rpc_member *m, size_t *len)
{
	struct buf out;
	struct err e = {0};
	buf_init(&out, 1 << 26);
	if (rpc_encode(&out, fmt, "1", m, 1, &e) != 0)
		fail_msg("encode: %s", e.msg);
	return buf_steal(&out, len);
}

/* The JSON value of a single string member s, between the quotes. */
static void json_str_is(const char *s, size_t slen, const char *want)
{
	struct rpc_member m = {.name = "v", .type = RPC_T_STR, .s = s, .slen = slen};
	size_t len = 0;
	char *body = encode1(RPC_FORMAT_JSON, &m, &len);
	char *expect;
	assert_true(asprintf(&expect,
			     "{\"jsonrpc\":\"2.0\",\"result\":{\"v\":\"%s\"},\"id\":\"1\"}",
			     want) > 0);
	if (strcmp(body, expect))
		fail_msg("got %s\nwant %s", body, expect);
	assert_int_equal(len, strlen(expect));
	free(expect);
	free(body);
}

/* The XML text of a single string member s, between the <string> tags. */
static void xml_str_is(const char *s, size_t slen, const char *want)
{
	struct rpc_member m = {.name = "v", .type = RPC_T_STR, .s = s, .slen = slen};
	size_t len = 0;
	char *body = encode1(RPC_FORMAT_XML, &m, &len);
	const char *open = "<value><string>", *close = "</string></value>";
	char *b = strstr(body, open);
	assert_non_null(b);
	b += strlen(open);
	char *e = strstr(b, close);
	assert_non_null(e);
	if ((size_t)(e - b) != strlen(want) || memcmp(b, want, strlen(want)))
		fail_msg("got \"%.*s\", want \"%s\"", (int)(e - b), b, want);
	free(body);
}

/* The XML value element of a single int member. */
static void xml_int_is(long long v, const char *want)
{
	struct rpc_member m = {.name = "v", .type = RPC_T_INT, .i = v};
	size_t len = 0;
	char *body = encode1(RPC_FORMAT_XML, &m, &len);
	char *expect;
	assert_true(
	    asprintf(&expect, "<member><name>v</name>\n<value>%s</value>\n</member>\n", want) > 0);
	if (!strstr(body, expect))
		fail_msg("got %s\nwant %s", body, expect);
	free(expect);
	free(body);
}

/* ---- the wire samples --------------------------------------------------------- */

static void test_wire_available(void **state)
{
	const struct rpc_member m[] = {
	    S("status", "ready"),	I("load", 34),
	    I("maxtime", 1800),		I("maxfilesize", 67108864),
	    I("maxmemory", 2097152000), I("maxprocesses", 500),
	    I("secureport", 8091),
	};
	encode_matches(RPC_FORMAT_JSON, "2-2202-663130770", m, N(m), "wire_available_resp.json",
		       177);
	encode_matches(RPC_FORMAT_XML, NULL, m, N(m), "wire_available_resp.xml", 643);
	/* the id is not part of an XML response */
	encode_matches(RPC_FORMAT_XML, "ignored", m, N(m), "wire_available_resp.xml", 643);
}

static void test_wire_request(void **state)
{
	const struct rpc_member eval[] = {
	    S("adminticket", "664908111097092"),
	    S("monitorticket", "49238876810493"),
	    S("executionticket", "262335710346140"),
	    I("port", 8090),
	    I("secureport", 8091),
	};
	encode_matches(RPC_FORMAT_JSON, "2-2202-665473988", eval, N(eval),
		       "wire_request_eval_resp.json", 183);
	const struct rpc_member eval_xml[] = {
	    S("adminticket", "13586657265135"),
	    S("monitorticket", "980833616487412"),
	    S("executionticket", "1499420715310447"),
	    I("port", 8090),
	    I("secureport", 8091),
	};
	encode_matches(RPC_FORMAT_XML, NULL, eval_xml, N(eval_xml), "wire_request_eval_resp.xml",
		       548);
	const struct rpc_member run[] = {
	    S("adminticket", "181165314977080"),
	    S("monitorticket", "106670124090018"),
	    S("executionticket", "40775762388025"),
	    I("port", 8090),
	    I("secureport", 8091),
	};
	encode_matches(RPC_FORMAT_JSON, "2-2205-102348674", run, N(run),
		       "wire_request_run_resp.json", 183);
	const struct rpc_member run_xml[] = {
	    S("adminticket", "142678792538334"),
	    S("monitorticket", "160155055212954"),
	    S("executionticket", "987360413139375"),
	    I("port", 8090),
	    I("secureport", 8091),
	};
	encode_matches(RPC_FORMAT_XML, NULL, run_xml, N(run_xml), "wire_request_run_resp.xml", 548);
}

static void test_wire_getresult(void **state)
{
	const char *exec = "Testing 1/1 : hello\n\n<|--\n-Summary of tests\n"
			   ">+------------------------------+\n"
			   ">|  1  test run/ 1  test passed |\n"
			   ">+------------------------------+\n\n--|>\n\nGrade :=>>10\n";
	const struct rpc_member m[] = {
	    S("compilation", ""),
	    {.name = "execution", .type = RPC_T_STR, .s = exec, .slen = strlen(exec)},
	    I("executed", 1),
	    I("interactive", 0),
	};
	encode_matches(RPC_FORMAT_JSON, "2-2204-990752847", m, N(m), "wire_getresult_resp.json",
		       292);
	encode_matches(RPC_FORMAT_XML, NULL, m, N(m), "wire_getresult_resp.xml", 605);
}

static void test_wire_running_stop(void **state)
{
	const struct rpc_member running[] = {I("running", 1)};
	encode_matches(RPC_FORMAT_JSON, "2-2207-1445849", running, 1, "wire_running_resp.json", 62);
	encode_matches(RPC_FORMAT_XML, NULL, running, 1, "wire_running_resp.xml", 196);
	const struct rpc_member stop[] = {I("stop", 1)};
	encode_matches(RPC_FORMAT_JSON, "2-2207-44101824", stop, 1, "wire_stop_resp.json", 60);
	encode_matches(RPC_FORMAT_XML, NULL, stop, 1, "wire_stop_resp.xml", 193);
}

/* ---- the spec's examples ------------------------------------------------------- */

static void test_spec_responses(void **state)
{
	const struct rpc_member avail[] = {
	    S("status", "ready"),	I("load", 0),
	    I("maxtime", 1200),		I("maxfilesize", 67108864),
	    I("maxmemory", 2097152000), I("maxprocesses", 500),
	    I("secureport", 443),
	};
	encode_matches(RPC_FORMAT_JSON, "3-79890-840949600", avail, N(avail), "spec_1_4_resp.json",
		       0);
	const struct rpc_member avail2[] = {
	    S("status", "ready"),	I("load", 2),
	    I("maxtime", 1200),		I("maxfilesize", 67108864),
	    I("maxmemory", 2097152000), I("maxprocesses", 500),
	    I("secureport", 443),
	};
	encode_matches(RPC_FORMAT_XML, NULL, avail2, N(avail2), "spec_2_1_resp.xml", 0);
	/* §1.4's abridged XML example: the first two members */
	encode_matches(RPC_FORMAT_XML, NULL, avail, 2, "spec_1_4_resp.xml", 0);

	const struct rpc_member req[] = {
	    S("adminticket", "70213394801117"),
	    S("monitorticket", "16330021528875"),
	    S("executionticket", "4467911311940266"),
	    I("port", 0),
	    I("secureport", 443),
	};
	encode_matches(RPC_FORMAT_JSON, "3-81234-100200300", req, N(req), "spec_2_2_resp.json", 0);
	encode_matches(RPC_FORMAT_XML, NULL, req, N(req), "spec_2_2_resp.xml", 0);

	const struct rpc_member direct[] = {
	    S("homepath", "/home/p10421"),
	    S("adminticket", "55120940031221"),
	    S("executionticket", "91887313640020"),
	    I("port", 80),
	    I("secureport", 443),
	};
	encode_matches(RPC_FORMAT_JSON, "3-81240-55", direct, N(direct), "spec_2_3_resp.json", 0);
	encode_matches(RPC_FORMAT_XML, NULL, direct, N(direct), "spec_2_3_resp.xml", 0);

	const char *exec = "\n<|--\n-Summary of tests\n>+------------------------------+\n"
			   ">|  2 tests run/ 2 tests passed |\n>+------------------------------+\n"
			   "--|>\n\nGrade :=>>10\n";
	const struct rpc_member res[] = {
	    S("compilation", ""),
	    {.name = "execution", .type = RPC_T_STR, .s = exec, .slen = strlen(exec)},
	    I("executed", 1),
	    I("interactive", 0),
	};
	encode_matches(RPC_FORMAT_JSON, "3-81250-77", res, N(res), "spec_2_4_resp.json", 0);
	encode_matches(RPC_FORMAT_XML, NULL, res, N(res), "spec_2_4_resp.xml", 0);

	const struct rpc_member running[] = {I("running", 1)};
	encode_matches(RPC_FORMAT_JSON, "3-81260-1", running, 1, "spec_2_5_resp.json", 0);
	encode_matches(RPC_FORMAT_XML, NULL, running, 1, "spec_2_5_resp.xml", 0);
	const struct rpc_member stop[] = {I("stop", 1)};
	encode_matches(RPC_FORMAT_JSON, "3-81270-9", stop, 1, "spec_2_6_resp.json", 0);
	encode_matches(RPC_FORMAT_XML, NULL, stop, 1, "spec_2_6_resp.xml", 0);
	const struct rpc_member update[] = {I("update", 1)};
	encode_matches(RPC_FORMAT_JSON, "3-81280-4", update, 1, "spec_2_7_resp.json", 0);
	encode_matches(RPC_FORMAT_XML, NULL, update, 1, "spec_2_7_resp.xml", 0);
}

/* ---- JSON escaping --------------------------------------------------------------- */

static void test_json_escaping(void **state)
{
	json_str_is("\"\\/", 3, "\\\"\\\\\\/");
	json_str_is("\b\f\n\r\t", 5, "\\b\\f\\n\\r\\t");
	json_str_is("\x01\x1f\x7f\x0b", 4, "\\u0001\\u001f\\u007f\\u000b");
	json_str_is("a\0b", 3, "a\\u0000b");
	json_str_is("\x1b[31mred", 8, "\\u001b[31mred");
	json_str_is(" ~<>&'", 6, " ~<>&'");
	json_str_is("", 0, "");
	json_str_is(NULL, 0, "");
	/* valid UTF-8 passes raw: 2, 3 and 4 bytes, the extremes included */
	json_str_is("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9,
		    "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	json_str_is("\xc2\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf\xee\x80\x80", 12,
		    "\xc2\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf\xee\x80\x80");
}

#define FFFD "\xef\xbf\xbd"

static void test_json_invalid_utf8(void **state)
{
	json_str_is("\x80", 1, FFFD);
	json_str_is("a\xffz", 3, "a" FFFD "z");
	json_str_is("\xc0\x80", 2, FFFD FFFD);			 /* overlong NUL */
	json_str_is("\xc1\xbf", 2, FFFD FFFD);			 /* overlong */
	json_str_is("\xe0\x80\xaf", 3, FFFD FFFD FFFD);		 /* overlong '/' */
	json_str_is("\xed\xa0\x80", 3, FFFD FFFD FFFD);		 /* surrogate */
	json_str_is("\xf4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD); /* > U+10FFFF */
	json_str_is("\xf5\x80\x80\x80", 4, FFFD FFFD FFFD FFFD);
	json_str_is("\xe2\x82", 2, FFFD FFFD); /* truncated at the end */
	json_str_is("\xe2\x82"
		    "A",
		    3, FFFD FFFD "A");
	json_str_is("\xc3"
		    "\"",
		    2, FFFD "\\\"");
	json_str_is("\xf0\x9f\x98", 3, FFFD FFFD FFFD);
	json_str_is("\xc3\xa9\xa9", 3, "\xc3\xa9" FFFD);
}

static void test_json_names_and_id(void **state)
{
	const struct rpc_member m[] = {S("we\"ird/", "x"), I("n\n", -1)};
	struct buf out;
	struct err e = {0};
	buf_init(&out, 4096);
	assert_int_equal(rpc_encode(&out, RPC_FORMAT_JSON, "a\"b/c\\\x01", m, 2, &e), 0);
	assert_string_equal(out.data, "{\"jsonrpc\":\"2.0\",\"result\":{\"we\\\"ird\\/\":\"x\","
				      "\"n\\n\":-1},\"id\":\"a\\\"b\\/c\\\\\\u0001\"}");
	buf_reset(&out);
	assert_int_equal(rpc_encode(&out, RPC_FORMAT_JSON, NULL, m + 1, 1, &e), 0);
	assert_string_equal(out.data, "{\"jsonrpc\":\"2.0\",\"result\":{\"n\\n\":-1},\"id\":\"\"}");
	buf_free(&out);
}

static void test_json_ints(void **state)
{
	const struct rpc_member m[] = {I("a", 0), I("b", -2147483649LL), I("c", INT64_MAX),
				       I("d", INT64_MIN), I("e", 4294967296LL)};
	struct buf out;
	struct err e = {0};
	buf_init(&out, 4096);
	assert_int_equal(rpc_encode(&out, RPC_FORMAT_JSON, "7", m, N(m), &e), 0);
	assert_string_equal(out.data, "{\"jsonrpc\":\"2.0\",\"result\":{\"a\":0,\"b\":-2147483649,"
				      "\"c\":9223372036854775807,\"d\":-9223372036854775808,"
				      "\"e\":4294967296},\"id\":\"7\"}");
	buf_free(&out);
}

/* What the encoder writes must read back, through jansson, as what it was
 * given (for valid UTF-8 input). */
static void test_json_round_trip(void **state)
{
	char s[512];
	size_t n = 0;
	for (unsigned c = 0; c < 0x80; c++)
		s[n++] = (char)c;
	memcpy(s + n, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80/\\\"", 12);
	n += 12;
	struct rpc_member m = {.name = "k\"/\\", .type = RPC_T_STR, .s = s, .slen = n};
	size_t len = 0;
	char *body = encode1(RPC_FORMAT_JSON, &m, &len);
	json_error_t je;
	json_t *root = json_loadb(body, len, JSON_ALLOW_NUL, &je);
	if (!root)
		fail_msg("%s", je.text);
	json_t *v = json_object_get(json_object_get(root, "result"), "k\"/\\");
	assert_int_equal(json_string_length(v), n);
	assert_memory_equal(json_string_value(v), s, n);
	assert_string_equal(json_string_value(json_object_get(root, "id")), "1");
	json_decref(root);
	free(body);
}

/* ---- XML escaping -------------------------------------------------------------------- */

static void test_xml_escaping(void **state)
{
	xml_str_is("&<>'\"", 5, "&amp;&lt;&gt;&apos;&quot;");
	xml_str_is("a\tb\nc\rd", 7, "a\tb\nc\rd"); /* the three XML control chars stay raw */
	xml_str_is("/\\", 2, "/\\");
	xml_str_is("\x7f", 1, "\x7f");
	xml_str_is("", 0, "");
	xml_str_is(NULL, 0, "");
	/* other control bytes cannot be carried by XML 1.0: dropped */
	xml_str_is("a\x01\x08\x0b\x0c\x1b[0m\x1f"
		   "b",
		   11, "a[0mb");
	xml_str_is("a\0b", 3, "ab");
	/* valid UTF-8 passes, invalid sequences are dropped */
	xml_str_is("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9,
		   "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	xml_str_is("a\xffz\x80", 4, "az");
	xml_str_is("\xc0\x80\xed\xa0\x80\xf4\x90\x80\x80"
		   "ok",
		   11, "ok");
	xml_str_is("\xe2\x82"
		   "&",
		   3, "&amp;");
	/* U+FFFE and U+FFFF are not XML characters either; U+FFFD is */
	xml_str_is("\xef\xbf\xbe\xef\xbf\xbf" FFFD, 9, FFFD);
}

static void test_xml_names(void **state)
{
	const struct rpc_member m[] = {S("a<b>&", "v"), I("c\x01", 5)};
	struct buf out;
	struct err e = {0};
	buf_init(&out, 4096);
	assert_int_equal(rpc_encode(&out, RPC_FORMAT_XML, NULL, m, 2, &e), 0);
	assert_non_null(strstr(out.data, "<member><name>a&lt;b&gt;&amp;</name>\n<value><string>v"
					 "</string></value>\n</member>\n<member><name>c</name>\n"
					 "<value><int>5</int></value>\n</member>\n"));
	buf_free(&out);
}

static void test_xml_ints(void **state)
{
	xml_int_is(0, "<int>0</int>");
	xml_int_is(-1, "<int>-1</int>");
	xml_int_is(2147483647, "<int>2147483647</int>");
	xml_int_is(-2147483648LL, "<int>-2147483648</int>");
	xml_int_is(2147483648LL, "<double>2147483648</double>");
	xml_int_is(4294967296LL, "<double>4294967296</double>");
	xml_int_is(-2147483649LL, "<double>-2147483649</double>");
	xml_int_is(9007199254740993LL, "<double>9007199254740992</double>"); /* via double */
	xml_int_is(INT64_MAX, "<double>9223372036854775808</double>");
	xml_int_is(INT64_MIN, "<double>-9223372036854775808</double>");
}

static void test_empty_result(void **state)
{
	struct buf out;
	struct err e = {0};
	buf_init(&out, 4096);
	assert_int_equal(rpc_encode(&out, RPC_FORMAT_JSON, "x", NULL, 0, &e), 0);
	assert_string_equal(out.data, "{\"jsonrpc\":\"2.0\",\"result\":{},\"id\":\"x\"}");
	buf_reset(&out);
	assert_int_equal(rpc_encode(&out, RPC_FORMAT_XML, "x", NULL, 0, &e), 0);
	assert_string_equal(out.data,
			    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodResponse>\n"
			    "<params>\n<param>\n<struct>\n</struct>\n</param>\n</params>\n"
			    "</methodResponse>\n");
	buf_free(&out);
}

/* The response is appended: whatever the buffer held stays in front. */
static void test_appends(void **state)
{
	struct buf out;
	struct err e = {0};
	const struct rpc_member m[] = {I("stop", 1)};
	buf_init(&out, 4096);
	assert_int_equal(buf_puts(&out, "HEAD", &e), 0);
	assert_int_equal(rpc_encode(&out, RPC_FORMAT_JSON, "1", m, 1, &e), 0);
	assert_string_equal(out.data,
			    "HEAD{\"jsonrpc\":\"2.0\",\"result\":{\"stop\":1},\"id\":\"1\"}");
	buf_free(&out);
}

static void test_errors_leave_buffer_unchanged(void **state)
{
	struct buf out;
	struct err e = {0};
	const char big[] = "0123456789012345678901234567890123456789";
	const struct rpc_member m[] = {S("a", big), S("b", big), S("c", big)};
	for (int fmt = 0; fmt < 2; fmt++) {
		for (size_t cap = 0; cap < 170; cap += 7) {
			buf_init(&out, cap + 4);
			assert_int_equal(buf_puts(&out, "KEEP", &e), 0);
			int rc = rpc_encode(&out, (enum rpc_format)fmt, "1", m, 3, &e);
			assert_int_equal(rc, -1);
			assert_int_equal(e.code, E2BIG);
			assert_int_equal(out.len, 4);
			assert_string_equal(out.data, "KEEP");
			buf_free(&out);
		}
	}
	buf_init(&out, 4096);
	struct rpc_member bad = {.name = "x", .type = (enum rpc_type)7};
	assert_int_equal(rpc_encode(&out, RPC_FORMAT_JSON, "1", &bad, 1, &e), -1);
	assert_int_equal(e.code, EINVAL);
	assert_non_null(strstr(e.msg, "unknown type"));
	struct rpc_member noname = {.name = NULL, .type = RPC_T_INT};
	assert_int_equal(rpc_encode(&out, RPC_FORMAT_XML, "1", &noname, 1, &e), -1);
	assert_int_equal(e.code, EINVAL);
	assert_int_equal(rpc_encode(&out, RPC_FORMAT_XML, "1", NULL, 2, &e), -1);
	assert_int_equal(rpc_encode(&out, (enum rpc_format)9, "1", NULL, 0, &e), -1);
	assert_non_null(strstr(e.msg, "unknown format"));
	assert_int_equal(out.len, 0);
	assert_int_equal(rpc_encode(&out, (enum rpc_format)9, "1", NULL, 0, NULL), -1);
	buf_free(&out);
}

static void test_big_output(void **state)
{
	size_t n = 20u << 20;
	char *s = malloc(n);
	assert_non_null(s);
	for (size_t k = 0; k < n; k++)
		s[k] = (k % 80 == 79) ? '\n' : (k % 1000 == 3) ? '<' : (char)('a' + k % 26);
	struct rpc_member m = {.name = "execution", .type = RPC_T_STR, .s = s, .slen = n};
	size_t len = 0;
	char *body = encode1(RPC_FORMAT_XML, &m, &len);
	size_t lt = 0;
	for (size_t k = 0; k < n; k++)
		lt += s[k] == '<';
	size_t overhead =
	    strlen("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodResponse>\n"
		   "<params>\n<param>\n<struct>\n<member><name>execution</name>\n"
		   "<value><string></string></value>\n</member>\n</struct>\n</param>\n"
		   "</params>\n</methodResponse>\n");
	assert_int_equal(len, n + 3 * lt + overhead);
	free(body);
	body = encode1(RPC_FORMAT_JSON, &m, &len);
	size_t nl = n / 80;
	assert_int_equal(len, n + nl +
				  strlen("{\"jsonrpc\":\"2.0\",\"result\":{\"execution\":\"\"},"
					 "\"id\":\"1\"}"));
	free(body);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wire_available),
	    cmocka_unit_test(test_wire_request),
	    cmocka_unit_test(test_wire_getresult),
	    cmocka_unit_test(test_wire_running_stop),
	    cmocka_unit_test(test_spec_responses),
	    cmocka_unit_test(test_json_escaping),
	    cmocka_unit_test(test_json_invalid_utf8),
	    cmocka_unit_test(test_json_names_and_id),
	    cmocka_unit_test(test_json_ints),
	    cmocka_unit_test(test_json_round_trip),
	    cmocka_unit_test(test_xml_escaping),
	    cmocka_unit_test(test_xml_names),
	    cmocka_unit_test(test_xml_ints),
	    cmocka_unit_test(test_empty_result),
	    cmocka_unit_test(test_appends),
	    cmocka_unit_test(test_errors_leave_buffer_unchanged),
	    cmocka_unit_test(test_big_output),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
