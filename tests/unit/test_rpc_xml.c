/*
 * test_rpc_xml.c - the XML-RPC parser: the spec's examples (§2.1-2.7), the
 * 5.0.1 wire samples, every value type, the &#NNN; byte rule, CR
 * preservation, and hostile input (DTDs, entity bombs, depth, huge text).
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
	if (rpc_parse_xml(body, len, req, &e) != 0)
		fail_msg("parse failed: %s", e.msg);
	assert_int_equal(req->format, RPC_FORMAT_XML);
	assert_non_null(req->method);
	assert_null(req->id);
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

static void parse_fail_n(const char *body, size_t len, const char *needle)
{
	struct err e = {0};
	struct rpc_request req;
	memset(&req, 0x5a, sizeof req);
	assert_int_equal(rpc_parse_xml(body, len, &req, &e), -1);
	if (!strstr(e.msg, needle))
		fail_msg("error \"%s\" lacks \"%s\"", e.msg, needle);
	assert_true(!strncmp(e.msg, "XML-RPC parse error: ", 21) ||
		    !strcmp(e.msg, "RPC/XML methodName parse error"));
	assert_int_not_equal(e.code, 0);
	assert_null(req.method);
	assert_null(req.id);
	assert_null(req.params);
}

static void parse_fail(const char *body, const char *needle)
{
	parse_fail_n(body, strlen(body), needle);
}

#define CALL_HEAD                                                                                  \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodCall>\n<methodName>m</methodName>\n"   \
	"<params><param><value><struct><member><name>a</name><value>"
#define CALL_TAIL "</value></member></struct></value></param></params></methodCall>"

/* A call whose params hold one member "a" with the given <value> content. */
static char *call_with(const char *value)
{
	char *s;
	assert_true(asprintf(&s, CALL_HEAD "%s" CALL_TAIL, value) > 0);
	return s;
}

/* Parses call_with(value) and returns member "a" (owned by req). */
static json_t *value_of(const char *value, struct rpc_request *req)
{
	char *body = call_with(value);
	parse_ok(body, req);
	free(body);
	json_t *v = json_object_get(req->params, "a");
	assert_non_null(v);
	return v;
}

static void value_fail(const char *value, const char *needle)
{
	char *body = call_with(value);
	parse_fail(body, needle);
	free(body);
}

static void assert_json_str(const json_t *v, const char *want, size_t wlen)
{
	assert_true(json_is_string(v));
	if (json_string_length(v) != wlen || memcmp(json_string_value(v), want, wlen))
		fail_msg("got \"%s\" (%zu bytes), want \"%s\"", json_string_value(v),
			 json_string_length(v), want);
}

/* member "a" must be the string want */
static void string_is(const char *value, const char *want)
{
	struct rpc_request req;
	assert_json_str(value_of(value, &req), want, strlen(want));
	rpc_request_free(&req);
}

static void string_is_n(const char *value, const char *want, size_t wlen)
{
	struct rpc_request req;
	assert_json_str(value_of(value, &req), want, wlen);
	rpc_request_free(&req);
}

static long long get_int(const struct rpc_request *req, const char *name)
{
	struct err e = {0};
	long long v = -12345;
	if (rpc_get_int(req, name, &v, &e) != 1)
		fail_msg("int %s: %s", name, e.msg);
	return v;
}

static void assert_str(const struct rpc_request *req, const char *name, const char *want)
{
	const char *s = NULL;
	size_t n = 0;
	struct err e = {0};
	if (rpc_get_str(req, name, &s, &n, &e) != 1)
		fail_msg("str %s: %s", name, e.msg);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(s, want, n);
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
	assert_json_str(json_object_get(map, key), want, strlen(want));
}

static long long map_int(json_t *map, const char *key)
{
	long long v = -999;
	assert_int_equal(rpc_json_to_int(json_object_get(map, key), &v), 1);
	return v;
}

/* ---- the spec's examples ------------------------------------------------------ */

static void test_spec_2_1_available(void **state)
{
	struct rpc_request req;
	parse_file("spec_2_1_req.xml", &req);
	assert_string_equal(req.method, "available");
	assert_int_equal(get_int(&req, "maxmemory"), 134217728);
	assert_int_equal(json_object_size(req.params), 1);
	rpc_request_free(&req);
}

static void test_spec_2_2_request(void **state)
{
	struct rpc_request req;
	parse_file("spec_2_2_req.xml", &req);
	assert_string_equal(req.method, "request");
	json_t *files = get_map(&req, "files");
	assert_int_equal(json_object_size(files), 5);
	assert_map_str(files, "vpl_run.sh",
		       "#!/bin/bash\n. common_script.sh\ngcc -o vpl_execution hello.c\n");
	assert_map_str(files, "hello.c", "#include <stdio.h>\nint main(){puts(\"hi\");}\n");
	assert_map_str(files, "logo.png.b64", "iVBORw0KGgo=");
	json_t *enc = get_map(&req, "fileencoding");
	assert_int_equal(map_int(enc, "logo.png.b64"), 1);
	assert_int_equal(map_int(enc, "hello.c"), 0);
	json_t *del = get_map(&req, "filestodelete");
	assert_int_equal(json_object_size(del), 2);
	assert_int_equal(get_int(&req, "maxtime"), 240);
	assert_int_equal(get_int(&req, "maxprocesses"), 200);
	assert_int_equal(get_int(&req, "interactive"), 1);
	assert_int_equal(get_int(&req, "pluginversion"), 2026012812);
	assert_str(&req, "execute", "vpl_run.sh");
	assert_str(&req, "lang", "en_US.UTF-8");
	rpc_request_free(&req);
}

static void test_spec_2_3_directrun(void **state)
{
	struct rpc_request req;
	parse_file("spec_2_3_req.xml", &req);
	assert_string_equal(req.method, "directrun");
	json_t *files = get_map(&req, "files");
	assert_map_str(files, "a.c", "int main(){return 0;}");
	assert_map_str(files, ".vpl_directrun.sh",
		       "#!/bin/bash\ncat > vpl_execution <<CONTENTS\n#!/bin/bash\ngcc a.c && "
		       "./a.out\nCONTENTS\nchmod +x vpl_execution");
	assert_int_equal(get_int(&req, "maxfilesize"), 2000000000);
	assert_int_equal(get_int(&req, "maxtime"), 1000000);
	rpc_request_free(&req);
}

static void test_spec_ticket_methods(void **state)
{
	static const struct {
		const char *file, *method;
	} cases[] = {
	    {"spec_2_4_req.xml", "getresult"},
	    {"spec_2_5_req.xml", "running"},
	    {"spec_2_6_req.xml", "stop"},
	    {"spec_2_7_req.xml", "update"},
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		struct rpc_request req;
		parse_file(cases[k].file, &req);
		assert_string_equal(req.method, cases[k].method);
		assert_str(&req, "adminticket", "70213394801117");
		assert_int_equal(get_int(&req, "pluginversion"), 2026012812);
		rpc_request_free(&req);
	}
	struct rpc_request req;
	parse_file("spec_2_7_req.xml", &req);
	assert_map_str(get_map(&req, "files"), "index.php", "<?php echo 'v2';");
	assert_int_equal(map_int(get_map(&req, "filestodelete"), "old.php"), 1);
	rpc_request_free(&req);
}

/* ---- the wire samples ------------------------------------------------------------ */

static void test_wire_requests(void **state)
{
	static const struct {
		const char *file, *method;
		size_t nparams;
	} cases[] = {
	    {"wire_available_req.xml", "available", 1},
	    {"wire_request_eval_req.xml", "request", 26},
	    {"wire_getresult_req.xml", "getresult", 2},
	    {"wire_request_run_req.xml", "request", 26},
	    {"wire_running_req.xml", "running", 2},
	    {"wire_stop_req.xml", "stop", 2},
	    {"wire_unknown_req.xml", "nosuchmethod", 2},
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		struct rpc_request req;
		parse_file(cases[k].file, &req);
		assert_string_equal(req.method, cases[k].method);
		assert_int_equal(json_object_size(req.params), cases[k].nparams);
		rpc_request_free(&req);
	}
}

static void test_wire_request_eval(void **state)
{
	struct rpc_request req;
	parse_file("wire_request_eval_req.xml", &req);
	json_t *files = get_map(&req, "files");
	assert_int_equal(json_object_size(files), 8);
	/* <string/> */
	assert_map_str(files, "vpl_debug.sh", "");
	assert_map_str(files, "vpl_evaluate.cases", "case = hello\noutput = Hello world\n");
	/* &#60; &#62; &#34; */
	assert_map_str(
	    files, "hello.c",
	    "#include <stdio.h>\nint main(void){ printf(\"Hello world\\n\"); return 0; }\n");
	assert_map_str(
	    files, "vpl_run.sh",
	    "#!/bin/bash\n# This file is part of VPL for Moodle - http://v...(745 bytes)");
	assert_int_equal(json_object_size(get_map(&req, "filestodelete")), 5);
	assert_int_equal(json_object_size(get_map(&req, "fileencoding")), 8);
	assert_str(&req, "runscript", "");
	assert_str(&req, "execute", "vpl_evaluate.sh");
	assert_int_equal(get_int(&req, "type"), 2);
	assert_int_equal(get_int(&req, "activityid"), 100);
	json_t *list = json_object_get(req.params, "submittedlist");
	assert_true(json_is_array(list));
	assert_int_equal(json_array_size(list), 1);
	assert_json_str(json_array_get(list, 0), "hello.c", 7);
	rpc_request_free(&req);
}

/* ---- envelope ---------------------------------------------------------------------- */

static void test_declaration_optional(void **state)
{
	struct rpc_request req;
	parse_ok("<methodCall><methodName>stop</methodName><params><param><value><struct>"
		 "<member><name>adminticket</name><value><string>1</string></value></member>"
		 "</struct></value></param></params></methodCall>",
		 &req);
	assert_string_equal(req.method, "stop");
	assert_str(&req, "adminticket", "1");
	rpc_request_free(&req);
	/* a declaration naming another encoding does not change the decoding */
	parse_ok("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><methodCall>"
		 "<methodName>caf\xc3\xa9</methodName></methodCall>",
		 &req);
	assert_string_equal(req.method, "caf\xc3\xa9");
	rpc_request_free(&req);
}

static void test_params_forms(void **state)
{
	struct rpc_request req;
	parse_ok("<methodCall><methodName>available</methodName></methodCall>", &req);
	assert_int_equal(json_object_size(req.params), 0);
	rpc_request_free(&req);
	parse_ok("<methodCall><methodName>available</methodName><params/></methodCall>", &req);
	assert_int_equal(json_object_size(req.params), 0);
	rpc_request_free(&req);
	parse_ok("<methodCall><params><param><value><struct/></value></param></params>"
		 "<methodName>x</methodName></methodCall>",
		 &req);
	assert_string_equal(req.method, "x");
	assert_int_equal(json_object_size(req.params), 0);
	rpc_request_free(&req);
	/* PHP's empty map as the only param */
	parse_ok("<methodCall><methodName>x</methodName><params><param><value><array><data/>"
		 "</array></value></param></params></methodCall>",
		 &req);
	assert_int_equal(json_object_size(req.params), 0);
	rpc_request_free(&req);
	/* params after the first are not looked at */
	parse_ok("<methodCall><methodName>x</methodName><params>"
		 "<param><value><struct><member><name>k</name><value><int>3</int></value></member>"
		 "</struct></value></param><param><value><foo/></value></param></params>"
		 "</methodCall>",
		 &req);
	assert_int_equal(get_int(&req, "k"), 3);
	rpc_request_free(&req);
	/* comments and PIs between the structural elements are fine */
	parse_ok("<!-- c --><methodCall><!-- c --><methodName>x<!-- c --></methodName><?pi x?>"
		 "</methodCall><!-- c -->",
		 &req);
	assert_string_equal(req.method, "x");
	rpc_request_free(&req);
}

static void test_method_name(void **state)
{
	struct rpc_request req;
	parse_ok("<methodCall><methodName>\n  running \t</methodName></methodCall>", &req);
	assert_string_equal(req.method, "running");
	rpc_request_free(&req);
	parse_ok("<methodCall><methodName>a&amp;b&#233;</methodName></methodCall>", &req);
	assert_string_equal(req.method, "a&b\xc3\xa9");
	rpc_request_free(&req);
	parse_fail("<methodCall><params/></methodCall>", "RPC/XML methodName parse error");
	parse_fail("<methodCall><methodName></methodName></methodCall>",
		   "RPC/XML methodName parse error");
	parse_fail("<methodCall><methodName> </methodName></methodCall>",
		   "RPC/XML methodName parse error");
	parse_fail("<methodCall><methodName/></methodCall>", "RPC/XML methodName parse error");
	parse_fail("<methodCall><methodName><b>x</b></methodName></methodCall>",
		   "RPC/XML methodName parse error");
	parse_fail("<methodCall><methodName>a</methodName><methodName>b</methodName></methodCall>",
		   "RPC/XML methodName parse error");
}

static void test_structure_errors(void **state)
{
	parse_fail("<methodResponse><params/></methodResponse>",
		   "the root element is not <methodCall>");
	parse_fail("<methodcall><methodName>a</methodName></methodcall>", "not <methodCall>");
	parse_fail("<methodCall><methodName>a</methodName><params/><params/></methodCall>",
		   "unexpected <params> in <methodCall>");
	parse_fail("<methodCall><methodName>a</methodName><foo/></methodCall>",
		   "unexpected <foo> in <methodCall>");
	parse_fail("<methodCall>text<methodName>a</methodName></methodCall>",
		   "unexpected text inside <methodCall>");
	parse_fail("<methodCall><methodName>a</methodName><params><value/></params></methodCall>",
		   "unexpected <value> in <params>");
	parse_fail("<methodCall><methodName>a</methodName><params><param/></params></methodCall>",
		   "<param> without <value>");
	parse_fail("<methodCall><methodName>a</methodName><params><param><value/><value/></param>"
		   "</params></methodCall>",
		   "unexpected <value> in <param>");
	parse_fail("<methodCall><methodName>a</methodName><params><param><value><int>1</int>"
		   "</value></param></params></methodCall>",
		   "the first <param> is not a <struct>");
	parse_fail("<methodCall><methodName>a</methodName><params><param><value>s</value>"
		   "</param></params></methodCall>",
		   "the first <param> is not a <struct>");
	parse_fail("<methodCall><methodName>a</methodName><params><param><value><array><data>"
		   "<value>1</value></data></array></value></param></params></methodCall>",
		   "not a <struct>");
}

static void test_malformed(void **state)
{
	parse_fail("", "Document is empty");
	parse_fail_n(NULL, 0, "XML-RPC parse error");
	parse_fail("<", "XML-RPC parse error");
	parse_fail("<methodCall>", "Premature end of data");
	parse_fail("<methodCall><methodName>a</methodName>", "at line 1");
	parse_fail("<methodCall><methodName>a</methodname></methodCall>", "mismatch");
	parse_fail("<methodCall><methodName>a&b</methodName></methodCall>",
		   "EntityRef: expecting ';'");
	parse_fail("<methodCall><methodName>a</methodName></methodCall>junk", "Extra content");
	parse_fail("<methodCall><methodName>a</methodName></methodCall><methodCall/>",
		   "Extra content");
	parse_fail("{\"method\":\"a\"}", "Start tag expected");
	/* rpc_parse strips leading blanks; rpc_parse_xml itself needs the
	 * declaration first, like any XML parser */
	parse_fail("  <?xml version=\"1.0\"?><methodCall/>",
		   "XML declaration allowed only at the start");
	parse_fail("<methodCall><methodName>\xff</methodName></methodCall>", "UTF-8");
	parse_fail("<methodCall><methodName>&#0;</methodName></methodCall>", "xmlParseCharRef");
	parse_fail("<methodCall><methodName>&#x110000;</methodName></methodCall>",
		   "xmlParseCharRef");
	parse_fail("<methodCall>\n<methodName>a</methodName>\n<params>\n</paramz>", "at line 4");
	/* every prefix of a valid request fails cleanly */
	size_t len = 0;
	char *full = read_data("spec_2_1_req.xml", &len);
	for (size_t n = 0; n + 1 < len; n++) /* the last byte is a newline after the root */
		parse_fail_n(full, n, "XML-RPC parse error: ");
	free(full);
}

/* ---- value types -------------------------------------------------------------------- */

static void test_scalar_types(void **state)
{
	struct rpc_request req;
	json_t *v;
	static const struct {
		const char *xml;
		long long want;
	} ints[] = {
	    {"<int>5</int>", 5},
	    {"<int>-5</int>", -5},
	    {"<int>+5</int>", 5},
	    {"<i4>2147483647</i4>", 2147483647},
	    {"<i8>9223372036854775807</i8>", INT64_MAX},
	    {"<i8>-9223372036854775808</i8>", INT64_MIN},
	    {"<int>4294967296</int>", 4294967296LL}, /* 64-bit values tolerated in <int> */
	    {"<int> 7\n</int>", 7},
	    {"<int>\r\n7\r\n</int>", 7},
	    {"<int>007</int>", 7},
	    {"<int>-000000000000000000000000000000000009223372036854775808</int>", INT64_MIN},
	    {"<boolean>1</boolean>", 1},
	    {"<boolean>0</boolean>", 0},
	    {"<boolean> true </boolean>", 1},
	    {"<boolean>false</boolean>", 0},
	};
	for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
		v = value_of(ints[k].xml, &req);
		if (!json_is_integer(v) || json_integer_value(v) != ints[k].want)
			fail_msg("%s", ints[k].xml);
		rpc_request_free(&req);
	}
	v = value_of("<double>2.5</double>", &req);
	assert_true(json_is_real(v));
	assert_true(json_real_value(v) == 2.5);
	assert_int_equal(get_int(&req, "a"), 2);
	rpc_request_free(&req);
	v = value_of("<double>-1e3</double>", &req);
	assert_true(json_real_value(v) == -1000.0);
	rpc_request_free(&req);
	v = value_of("<double>4294967296</double>", &req);
	assert_int_equal(get_int(&req, "a"), 4294967296LL);
	rpc_request_free(&req);
	v = value_of("<nil/>", &req);
	assert_true(json_is_null(v));
	assert_int_equal(rpc_get_str(&req, "a", &(const char *){0}, &(size_t){0}, NULL), 0);
	rpc_request_free(&req);
	v = value_of("<nil></nil>", &req);
	assert_true(json_is_null(v));
	rpc_request_free(&req);
}

static void test_scalar_errors(void **state)
{
	value_fail("<int></int>", "bad <int> value");
	value_fail("<int>12x</int>", "bad <int> value");
	value_fail("<int>1 2</int>", "bad <int> value");
	value_fail("<int>0x10</int>", "bad <int> value");
	value_fail("<int>-</int>", "bad <int> value");
	value_fail("<int>1.5</int>", "bad <int> value");
	value_fail("<i4>9223372036854775808</i4>", "bad <i4> value");
	value_fail("<i8>-9223372036854775809</i8>", "bad <i8> value");
	value_fail("<boolean>2</boolean>", "bad <boolean> value");
	value_fail("<boolean></boolean>", "bad <boolean> value");
	value_fail("<double>abc</double>", "bad <double> value");
	value_fail("<double>nan</double>", "bad <double> value");
	value_fail("<double>inf</double>", "bad <double> value");
	value_fail("<double>1e999</double>", "bad <double> value");
	value_fail("<double>1.5x</double>", "bad <double> value");
	value_fail("<double></double>", "bad <double> value");
	value_fail("<nil>x</nil>", "<nil> is not empty");
	value_fail("<int><b/></int>", "unexpected <b> inside <int>");
	value_fail("<foo>1</foo>", "unknown value type <foo>");
	value_fail("<int>1</int><int>2</int>", "more than one type in <value>");
	value_fail("x<int>1</int>", "unexpected text inside <value>");
	value_fail("<int>1</int>x", "unexpected text inside <value>");
}

static void test_base64(void **state)
{
	string_is("<base64>aGVsbG8=</base64>", "hello");
	string_is("<base64>aGVsbG8</base64>", "hello"); /* padding optional */
	string_is("<base64>aGVs\r\nbG8g\n d29y bGQ=</base64>", "hello world");
	string_is("<base64></base64>", "");
	string_is("<base64/>", "");
	string_is_n("<base64>AAEC/w==</base64>", "\0\1\2\xff", 4); /* any bytes, NUL too */
	value_fail("<base64>a</base64>", "bad <base64> value");
	value_fail("<base64>aGVs!G8=</base64>", "bad <base64> value");
	value_fail("<base64>aG=Vs</base64>", "bad <base64> value");
}

static void test_strings(void **state)
{
	string_is("<string>plain</string>", "plain");
	string_is("<string/>", "");
	string_is("<string></string>", "");
	string_is("untyped", "untyped");
	string_is("", "");
	/* whitespace is data: nothing is trimmed or collapsed */
	string_is("<string>  a  \n\t b \n</string>", "  a  \n\t b \n");
	string_is("   ", "   ");
	string_is("\n untyped \n", "\n untyped \n");
	/* predefined entities and references */
	string_is("<string>&amp;&lt;&gt;&apos;&quot;</string>", "&<>'\"");
	string_is("<string>&#60;&#62;&#34;&#38;&#10;&#9;</string>", "<>\"&\n\t");
	string_is("<string>&#x3C;&#x20AC;&#x1F600;</string>", "<\xe2\x82\xac\xf0\x9f\x98\x80");
	/* CDATA is literal, references included */
	string_is("<string><![CDATA[&#195; <b>&amp;]]></string>", "&#195; <b>&amp;");
	string_is("<string>a<![CDATA[<]]>b</string>", "a<b");
	/* comments and PIs inside a string are not part of it */
	string_is("<string>a<!-- x -->b<?pi y?>c</string>", "abc");
	/* quoted '>' in attributes (ignored) does not confuse the lexer */
	string_is("<string x=\"a>b\" y='c>d'>t</string>", "t");
	value_fail("<string>a<b/>c</string>", "unexpected <b> inside <string>");
	value_fail("<string>&foo;</string>", "Entity 'foo' not defined");
	value_fail("<string>&#xD800;</string>", "xmlParseCharRef");
}

static void test_byte_references(void **state)
{
	/* xmlrpc-epi's per-byte escaping of UTF-8 */
	string_is("<string>Rodr&#195;&#173;guez</string>", "Rodr\xc3\xadguez");
	string_is("<string>&#226;&#130;&#172;</string>", "\xe2\x82\xac");
	string_is("<string>&#240;&#159;&#152;&#128;</string>", "\xf0\x9f\x98\x80");
	string_is("<string>&#0195;&#0173;</string>", "\xc3\xad"); /* leading zeros */
	/* not valid UTF-8 as bytes: code points instead */
	string_is("<string>&#233;t&#233;</string>", "\xc3\xa9t\xc3\xa9");
	string_is("<string>&#128;&#255;</string>", "\xc2\x80\xc3\xbf");
	/* the rule is per string: one bad byte makes all of it code points */
	string_is("<string>&#195;&#173;&#233;</string>", "\xc3\x83\xc2\xad\xc3\xa9");
	/* hex references are always code points */
	string_is("<string>&#xE9;</string>", "\xc3\xa9");
	string_is("<string>&#xC3;&#xAD;</string>", "\xc3\x83\xc2\xad");
	/* references below 128 are plain ASCII, above 255 plain code points */
	string_is("<string>&#127;&#256;&#8364;</string>", "\x7f\xc4\x80\xe2\x82\xac");
	/* bytes mixed with raw UTF-8 and entities */
	string_is("<string>\xc3\xa9 &#195;&#173; &amp;</string>", "\xc3\xa9 \xc3\xad &");
	/* member names (file names) and untyped values follow the same rule */
	struct rpc_request req;
	parse_ok("<methodCall><methodName>m</methodName><params><param><value><struct>"
		 "<member><name>Rodr&#195;&#173;guez.c</name><value>&#195;&#173;</value></member>"
		 "</struct></value></param></params></methodCall>",
		 &req);
	assert_str(&req, "Rodr\xc3\xadguez.c", "\xc3\xad");
	rpc_request_free(&req);
	/* a byte reference in CDATA is text */
	string_is("<string><![CDATA[&#195;&#173;]]>&#195;&#173;</string>", "&#195;&#173;\xc3\xad");
}

/* The lexer's private-use markers (U+10FF00..U+10FF81) sent by the client
 * must come through as themselves, whichever way they were written. */
static void test_marker_code_points_are_data(void **state)
{
	string_is("<string>\xf4\x8f\xbc\x80\xf4\x8f\xbe\x80\xf4\x8f\xbe\x81</string>",
		  "\xf4\x8f\xbc\x80\xf4\x8f\xbe\x80\xf4\x8f\xbe\x81");
	string_is("<string>&#x10FF00;&#x10ff80;&#1113985;</string>",
		  "\xf4\x8f\xbc\x80\xf4\x8f\xbe\x80\xf4\x8f\xbe\x81");
	/* next to real byte references and CRs */
	string_is("<string>&#195;&#173;\xf4\x8f\xbc\x83&#x10FF43;\r\n</string>",
		  "\xc3\xad\xf4\x8f\xbc\x83\xf4\x8f\xbd\x83\r\n");
	string_is("<string><![CDATA[\xf4\x8f\xbe\x81\r]]></string>", "\xf4\x8f\xbe\x81\r");
	/* neighbours of the block are untouched too */
	string_is("<string>\xf4\x8f\xbb\xbf\xf4\x8f\xbe\x82</string>",
		  "\xf4\x8f\xbb\xbf\xf4\x8f\xbe\x82");
	struct rpc_request req;
	parse_ok("<methodCall><methodName>m</methodName><params><param><value><struct>"
		 "<member><name>\xf4\x8f\xbe\x81</name><value>x</value></member>"
		 "</struct></value></param></params></methodCall>",
		 &req);
	assert_str(&req, "\xf4\x8f\xbe\x81", "x");
	rpc_request_free(&req);
}

static void test_crlf_preserved(void **state)
{
	string_is("<string>a\r\nb\r\n</string>", "a\r\nb\r\n");
	string_is("<string>a\rb\r</string>", "a\rb\r");
	string_is("<string>\r\n\r\n</string>", "\r\n\r\n");
	string_is("<string><![CDATA[x\r\ny]]></string>", "x\r\ny");
	string_is("\r\nuntyped\r\n", "\r\nuntyped\r\n");
	string_is("<string>a&#13;&#10;b</string>", "a\r\nb");
	string_is("<base64>aGVs\r\nbG8=</base64>", "hello");

	/* a whole document with CRLF line ends parses (the blanks between
	 * elements are not data) and keeps the CRs inside the strings */
	struct rpc_request req;
	const char *doc =
	    "<?xml version=\"1.0\"?>\r\n<methodCall>\r\n<methodName>\r\nm\r\n"
	    "</methodName>\r\n<params>\r\n<param>\r\n<value>\r\n<struct>\r\n"
	    "<member>\r\n<name>f</name>\r\n<value>\r\n<string>l1\r\nl2\r\n</string>"
	    "\r\n</value>\r\n</member>\r\n<member>\r\n<name>n</name>\r\n<value>\r\n"
	    "<int>\r\n5\r\n</int>\r\n</value>\r\n</member>\r\n<member>\r\n<name>l</name>"
	    "\r\n<value>\r\n<array>\r\n<data>\r\n<value>\r\n<i4>1</i4>\r\n</value>\r\n"
	    "</data>\r\n</array>\r\n</value>\r\n</member>\r\n</struct>\r\n</value>\r\n"
	    "</param>\r\n</params>\r\n</methodCall>\r\n";
	parse_ok(doc, &req);
	assert_string_equal(req.method, "m");
	assert_str(&req, "f", "l1\r\nl2\r\n");
	assert_int_equal(get_int(&req, "n"), 5);
	assert_int_equal(json_array_size(json_object_get(req.params, "l")), 1);
	rpc_request_free(&req);
}

static void test_struct_and_array(void **state)
{
	struct rpc_request req;
	json_t *v = value_of("<struct>\n<member>\n<value><int>1</int></value>\n<name>x</name>\n"
			     "</member>\n<member><name>y</name><value><struct/></value></member>"
			     "<member><name></name><value>empty name</value></member>"
			     "<member><name> sp </name><value/></member></struct>",
			     &req);
	assert_true(json_is_object(v));
	assert_int_equal(json_object_size(v), 4);
	assert_int_equal(map_int(v, "x"), 1); /* <value> before <name> is fine */
	assert_true(json_is_object(json_object_get(v, "y")));
	assert_map_str(v, "", "empty name");
	assert_map_str(v, " sp ", ""); /* names are not trimmed */
	rpc_request_free(&req);

	v = value_of("<array><data>\n<value>s</value>\n<value><int>2</int></value>"
		     "<value><array><data><value><nil/></value></data></array></value>"
		     "</data></array>",
		     &req);
	assert_true(json_is_array(v));
	assert_int_equal(json_array_size(v), 3);
	assert_json_str(json_array_get(v, 0), "s", 1);
	assert_int_equal(json_integer_value(json_array_get(v, 1)), 2);
	assert_true(json_is_null(json_array_get(json_array_get(v, 2), 0)));
	rpc_request_free(&req);

	/* empty arrays are maps for rpc_get_map (PHP's empty map) */
	static const char *empties[] = {"<array/>", "<array></array>", "<array><data/></array>",
					"<array>\n<data>\n</data>\n</array>"};
	for (size_t k = 0; k < 4; k++) {
		v = value_of(empties[k], &req);
		assert_true(json_is_array(v));
		assert_int_equal(json_array_size(v), 0);
		assert_int_equal(json_object_size(get_map(&req, "a")), 0);
		rpc_request_free(&req);
	}
}

static void test_struct_errors(void **state)
{
	value_fail("<struct><member><name>x</name><value>1</value></member>"
		   "<member><name>x</name><value>2</value></member></struct>",
		   "duplicate member \"x\"");
	value_fail("<struct><member><name>x</name></member></struct>", "<member> without <value>");
	value_fail("<struct><member><value>1</value></member></struct>", "<member> without <name>");
	value_fail("<struct><member><name>x</name><name>y</name><value>1</value></member></struct>",
		   "unexpected <name> in <member>");
	value_fail("<struct><member><name>x</name><value>1</value><foo/></member></struct>",
		   "unexpected <foo> in <member>");
	value_fail("<struct><value>1</value></struct>", "unexpected <value> in <struct>");
	value_fail("<struct>x<member><name>x</name><value>1</value></member></struct>",
		   "unexpected text inside <struct>");
	value_fail("<struct><member><name><b/></name><value>1</value></member></struct>",
		   "unexpected <b> inside <name>");
	value_fail("<array><value>1</value></array>", "unexpected <value> in <array>");
	value_fail("<array><data/><data/></array>", "unexpected <data> in <array>");
	value_fail("<array><data><int>1</int></data></array>", "unexpected <int> in <data>");
	value_fail("<array><data>x</data></array>", "unexpected text inside <data>");
	/* the duplicate is found in a top-level struct too */
	parse_fail("<methodCall><methodName>m</methodName><params><param><value><struct>"
		   "<member><name>files</name><value><struct/></value></member>"
		   "<member><name>files</name><value><struct/></value></member>"
		   "</struct></value></param></params></methodCall>",
		   "duplicate member \"files\"");
}

/* ---- hostile input ---------------------------------------------------------------- */

static double seconds(clock_t t0)
{
	return (double)(clock() - t0) / CLOCKS_PER_SEC;
}

static void test_dtd_rejected(void **state)
{
	static const char *docs[] = {
	    "<!DOCTYPE methodCall><methodCall><methodName>a</methodName></methodCall>",
	    "<?xml version=\"1.0\"?>\n<!DOCTYPE methodCall SYSTEM \"file:///etc/passwd\">"
	    "<methodCall><methodName>a</methodName></methodCall>",
	    "<?xml version=\"1.0\"?><!DOCTYPE m [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
	    "<methodCall><methodName>&x;</methodName></methodCall>",
	    "<?xml version=\"1.0\"?><!DOCTYPE m [<!ENTITY x SYSTEM \"http://127.0.0.1:1/x\">]>"
	    "<methodCall><methodName>&x;</methodName></methodCall>",
	    "<!-- c --><!DOCTYPE m><methodCall/>",
	    "<methodCall><!ELEMENT x ANY><methodName>a</methodName></methodCall>",
	    "<methodCall><methodName>a</methodName></methodCall><!DOCTYPE x>",
	};
	for (size_t k = 0; k < sizeof docs / sizeof docs[0]; k++)
		parse_fail(docs[k], "DOCTYPE and markup declarations are not allowed");
	/* "<!DOCTYPE" inside CDATA or a comment is just text */
	string_is("<string><![CDATA[<!DOCTYPE x>]]></string>", "<!DOCTYPE x>");
	string_is("<string><!-- <!DOCTYPE x> -->y</string>", "y");
}

static void test_entity_bomb_rejected_quickly(void **state)
{
	/* billion laughs, plus a quadratic-blowup variant with one huge entity */
	char *lol;
	assert_true(
	    asprintf(&lol,
		     "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n"
		     " <!ENTITY lol \"lol\">\n"
		     " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
		     " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
		     " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
		     " <!ENTITY lol9 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
		     "]>\n" CALL_HEAD "<string>&lol9;</string>" CALL_TAIL) > 0);
	clock_t t0 = clock();
	parse_fail(lol, "DOCTYPE");
	free(lol);
	size_t n = 8u << 20;
	char *quad = malloc(n + 256);
	assert_non_null(quad);
	char *p = quad + sprintf(quad, "<!DOCTYPE m [<!ENTITY a \"");
	memset(p, 'a', n);
	p += n;
	p += sprintf(p, "\">]><methodCall><methodName>&a;&a;&a;</methodName></methodCall>");
	parse_fail_n(quad, (size_t)(p - quad), "DOCTYPE");
	free(quad);
	assert_true(seconds(t0) < 0.5);
}

/* methodCall (1) + params struct (2) + `levels` nested structs */
static char *nested_structs(int levels)
{
	size_t n = (size_t)levels * 80 + 512;
	char *s = malloc(n), *p = s;
	assert_non_null(s);
	p += sprintf(p, "<methodCall><methodName>m</methodName><params><param><value><struct>");
	for (int k = 0; k < levels; k++)
		p += sprintf(p, "<member><name>a</name><value><struct>");
	p += sprintf(p, "<member><name>leaf</name><value><string>x</string></value></member>");
	for (int k = 0; k < levels; k++)
		p += sprintf(p, "</struct></value></member>");
	sprintf(p, "</struct></value></param></params></methodCall>");
	return s;
}

static char *nested_arrays(int levels)
{
	size_t n = (size_t)levels * 80 + 512;
	char *s = malloc(n), *p = s;
	assert_non_null(s);
	p += sprintf(p, "<methodCall><methodName>m</methodName><params><param><value><struct>"
			"<member><name>a</name><value>");
	for (int k = 0; k < levels; k++)
		p += sprintf(p, "<array><data><value>");
	p += sprintf(p, "<string>x</string>");
	for (int k = 0; k < levels; k++)
		p += sprintf(p, "</value></data></array>");
	sprintf(p, "</value></member></struct></value></param></params></methodCall>");
	return s;
}

static void test_depth(void **state)
{
	struct rpc_request req;
	char *ok = nested_structs(RPC_MAX_DEPTH - 2);
	parse_ok(ok, &req);
	rpc_request_free(&req);
	free(ok);
	char *deep = nested_structs(RPC_MAX_DEPTH - 1);
	parse_fail(deep, "nested deeper than 64 levels");
	free(deep);
	ok = nested_arrays(RPC_MAX_DEPTH - 2);
	parse_ok(ok, &req);
	rpc_request_free(&req);
	free(ok);
	deep = nested_arrays(RPC_MAX_DEPTH - 1);
	parse_fail(deep, "nested deeper than 64 levels");
	free(deep);

	/* raw element nesting is capped by the lexer before libxml2 gets far */
	size_t levels = 1000000;
	char *bomb = malloc(levels * 3 + 64), *p = bomb;
	assert_non_null(bomb);
	p += sprintf(p, "<methodCall>");
	for (size_t k = 0; k < levels; k++)
		p += sprintf(p, "<a>");
	clock_t t0 = clock();
	parse_fail_n(bomb, (size_t)(p - bomb), "elements nested too deeply");
	assert_true(seconds(t0) < 0.5);
	free(bomb);
	/* empty elements and end tags do not count */
	char *flat = malloc(levels * 4 + 256);
	assert_non_null(flat);
	p = flat + sprintf(flat, "<methodCall><methodName>m</methodName><!-- ");
	p += sprintf(
	    p, " --><params><param><value><struct><member><name>l</name><value><array><data>");
	for (size_t k = 0; k < 1000; k++)
		p += sprintf(p, "<value/>");
	sprintf(p, "</data></array></value></member></struct></value></param>"
		   "<param><value><b/><c/></value></param></params></methodCall>");
	parse_ok(flat, &req);
	assert_int_equal(json_array_size(json_object_get(req.params, "l")), 1000);
	rpc_request_free(&req);
	free(flat);
}

static void test_huge_text(void **state)
{
	size_t big = 20u << 20;
	const char *head = CALL_HEAD "<string>";
	const char *tail = "</string>" CALL_TAIL;
	size_t hl = strlen(head), tl = strlen(tail);
	char *body = malloc(hl + big + tl);
	assert_non_null(body);
	memcpy(body, head, hl);
	for (size_t k = 0; k < big; k++)
		body[hl + k] = (k % 100 == 99) ? '\n' : (char)('a' + k % 26);
	memcpy(body + hl + big, tail, tl);
	struct rpc_request req;
	clock_t t0 = clock();
	parse_ok_n(body, hl + big + tl, &req);
	assert_true(seconds(t0) < 10);
	json_t *v = json_object_get(req.params, "a");
	assert_int_equal(json_string_length(v), big);
	const char *s = json_string_value(v);
	assert_int_equal(s[0], 'a');
	assert_int_equal(s[99], '\n');
	assert_int_equal(s[big - 1], (big - 1) % 100 == 99 ? '\n' : 'a' + (big - 1) % 26);
	rpc_request_free(&req);

	/* the same with CRLFs and byte references sprinkled in: the rewriting
	 * path, and references split across libxml2's read chunks */
	size_t out = 0;
	char *want = malloc(big);
	assert_non_null(want);
	for (size_t k = 0; k < big;) {
		if (k % 997 == 0 && k + 12 <= big) {
			memcpy(body + hl + k, "&#195;&#173;", 12);
			want[out++] = '\xc3';
			want[out++] = '\xad';
			k += 12;
		} else if (k % 101 == 0 && k + 2 <= big) {
			memcpy(body + hl + k, "\r\n", 2);
			want[out++] = '\r';
			want[out++] = '\n';
			k += 2;
		} else {
			body[hl + k] = 'x';
			want[out++] = 'x';
			k++;
		}
	}
	parse_ok_n(body, hl + big + tl, &req);
	v = json_object_get(req.params, "a");
	assert_int_equal(json_string_length(v), out);
	assert_memory_equal(json_string_value(v), want, out);
	rpc_request_free(&req);
	free(want);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spec_2_1_available),
	    cmocka_unit_test(test_spec_2_2_request),
	    cmocka_unit_test(test_spec_2_3_directrun),
	    cmocka_unit_test(test_spec_ticket_methods),
	    cmocka_unit_test(test_wire_requests),
	    cmocka_unit_test(test_wire_request_eval),
	    cmocka_unit_test(test_declaration_optional),
	    cmocka_unit_test(test_params_forms),
	    cmocka_unit_test(test_method_name),
	    cmocka_unit_test(test_structure_errors),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_scalar_types),
	    cmocka_unit_test(test_scalar_errors),
	    cmocka_unit_test(test_base64),
	    cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_byte_references),
	    cmocka_unit_test(test_marker_code_points_are_data),
	    cmocka_unit_test(test_crlf_preserved),
	    cmocka_unit_test(test_struct_and_array),
	    cmocka_unit_test(test_struct_errors),
	    cmocka_unit_test(test_dtd_rejected),
	    cmocka_unit_test(test_entity_bomb_rejected_quickly),
	    cmocka_unit_test(test_depth),
	    cmocka_unit_test(test_huge_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
