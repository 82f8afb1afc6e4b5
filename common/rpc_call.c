/*
 * rpc_call.c - request bodies in both formats (rpc_call.h).
 *
 * JSON goes through jansson's serializer, streamed into the buffer. XML is
 * written here in xmlrpc-epi's layout (one element per line), text escaped
 * in runs as rpc_encode.c does, so a 128 MiB file costs a few appends.
 *
 * One walk over params before writing checks what the parsers would refuse
 * or change (depth, member names); string values are checked while they
 * are written, since that scan is needed anyway to pick <string> or <base64>.
 */
#include "rpc_call.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define CALL_FAIL(err, ...) err_set(err, EINVAL, "rpc_encode_call: " __VA_ARGS__)

/* The params object sits at depth 2: the request's root is level 1 to both
 * parsers (rpc_json.c's bracket scan, rpc_xml.c's struct counting). */
#define PARAMS_DEPTH 2

static bool utf8_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		size_t k = p[i] < 0x80 ? 1 : utf8_seq_len(p + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

bool rpc_xml_text_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		if (p[i] < 0x80) {
			if (p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
				return false;
			i++;
			continue;
		}
		size_t k = utf8_seq_len(p + i, n - i);
		if (!k || (k == 3 && p[i] == 0xEF && p[i + 1] == 0xBF && p[i + 2] >= 0xBE))
			return false; /* invalid, or U+FFFE / U+FFFF */
		i += k;
	}
	return true;
}

/*
 * Member names and the method cannot be base64, but U+FFFE and U+FFFF can
 * still go, as byte references that rpc_parse_xml reads back as bytes (the
 * &#NNN; rule in rpc.h): what they need is valid UTF-8 without the control
 * bytes XML 1.0 has no way to carry.
 */
static bool xml_name_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return false;
	return utf8_ok(s, n);
}

/* Depth and member names: what a parser would refuse, found before any byte
 * is written. */
static int check_tree(json_t *v, int depth, enum rpc_format fmt, struct err *err)
{
	const char *key;
	size_t klen, i;
	json_t *child;

	if (!json_is_object(v) && !json_is_array(v))
		return 0;
	if (depth > RPC_MAX_DEPTH)
		return CALL_FAIL(err, "params nested deeper than %d levels", RPC_MAX_DEPTH);
	if (json_is_array(v)) {
		json_array_foreach(v, i, child)
		{
			if (check_tree(child, depth + 1, fmt, err) < 0)
				return -1;
		}
		return 0;
	}
	json_object_keylen_foreach(v, key, klen, child)
	{
		if (memchr(key, '\0', klen))
			return CALL_FAIL(err, "a member name holds a NUL byte");
		/* jansson's serializer would silently drop the bad bytes */
		if (!utf8_ok(key, klen))
			return CALL_FAIL(err, "a member name is not valid UTF-8");
		if (fmt == RPC_FORMAT_XML && !xml_name_ok(key, klen))
			return CALL_FAIL(err, "member name \"%.40s\" cannot be carried by XML-RPC",
					 key);
		if (check_tree(child, depth + 1, fmt, err) < 0)
			return -1;
	}
	return 0;
}

/* ---- JSON --------------------------------------------------------------- */

struct sink {
	struct buf *out;
	struct err *err;
	bool failed; /* the buffer refused (cap or memory), *err is set */
};

static int sink_put(const char *p, size_t n, void *data)
{
	struct sink *s = data;

	if (buf_append(s->out, p, n, s->err) < 0) {
		s->failed = true;
		return -1;
	}
	return 0;
}

/* Any value, compact. Besides the sink, jansson only fails on a string that
 * is not valid UTF-8 (or when out of memory, reported the same way). */
static int json_put(struct buf *out, const json_t *v, struct err *err)
{
	struct sink s = {.out = out, .err = err};

	if (json_dump_callback(v, sink_put, &s, JSON_COMPACT | JSON_ENCODE_ANY) == 0)
		return 0;
	return s.failed ? -1 : CALL_FAIL(err, "params hold a string that is not valid UTF-8");
}

static int json_put_str(struct buf *out, const char *what, const char *s, struct err *err)
{
	if (!utf8_ok(s, strlen(s)))
		return CALL_FAIL(err, "the %s is not valid UTF-8", what);
	json_t *v = json_string(s);
	if (!v)
		return err_set(err, ENOMEM, "out of memory");
	int rc = json_put(out, v, err);
	json_decref(v);
	return rc;
}

static int json_call(struct buf *out, const char *method, const char *id, const json_t *params,
		     struct err *err)
{
	if (buf_puts(out, "{\"method\":", err) < 0 ||
	    json_put_str(out, "method", method, err) < 0 || buf_puts(out, ",\"params\":", err) < 0)
		return -1;
	if (params ? json_put(out, params, err) < 0 : buf_puts(out, "{}", err) < 0)
		return -1;
	if (id && (buf_puts(out, ",\"id\":", err) < 0 || json_put_str(out, "id", id, err) < 0))
		return -1;
	return buf_puts(out, "}", err);
}

/* ---- XML ---------------------------------------------------------------- */

/* Replacement for the character at p (left bytes from p on) in XML text,
 * or NULL to copy it; *len gets the bytes it replaces. CR goes as a
 * reference since XML readers turn a raw one into LF (rpc_parse_xml does
 * not, others do). U+FFFE and U+FFFF, which only names and the method reach
 * (such strings go as base64), go as byte references. */
static const char *xml_escape(const char *p, size_t left, size_t *len)
{
	*len = 1;
	switch (p[0]) {
	case '&':
		return "&amp;";
	case '<':
		return "&lt;";
	case '>':
		return "&gt;";
	case '\r':
		return "&#13;";
	case '\xEF':
		if (left < 3 || p[1] != '\xBF' || (p[2] != '\xBE' && p[2] != '\xBF'))
			return NULL;
		*len = 3;
		return p[2] == '\xBE' ? "&#239;&#191;&#190;" : "&#239;&#191;&#191;";
	default:
		return NULL;
	}
}

/* s must pass xml_name_ok(); escaped in runs. */
static int xml_put_text(struct buf *out, const char *s, size_t n, struct err *err)
{
	size_t run = 0, i = 0;

	while (i < n) {
		size_t len;
		const char *rep = xml_escape(s + i, n - i, &len);
		if (!rep) {
			i++;
			continue;
		}
		if (buf_append(out, s + run, i - run, err) < 0 || buf_puts(out, rep, err) < 0)
			return -1;
		i += len;
		run = i;
	}
	return buf_append(out, s + run, n - run, err);
}

/* Standard alphabet, padded, one line: what rpc_xml.c's decoder reads. */
static int xml_put_base64(struct buf *out, const unsigned char *p, size_t n, struct err *err)
{
	static const char digit[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	if (n > SIZE_MAX / 2)
		return err_set(err, E2BIG, "rpc_encode_call: string too long");
	size_t m = (n + 2) / 3 * 4;
	if (buf_puts(out, "<base64>", err) < 0 || buf_reserve(out, m, err) < 0)
		return -1;
	char *o = out->data + out->len;
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = digit[v >> 18];
		*o++ = digit[(v >> 12) & 63];
		*o++ = digit[(v >> 6) & 63];
		*o++ = digit[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
		*o++ = digit[v >> 18];
		*o++ = digit[(v >> 12) & 63];
		*o++ = i + 1 < n ? digit[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	out->len += m;
	out->data[out->len] = '\0';
	return buf_puts(out, "</base64>", err);
}

static int xml_put_string(struct buf *out, const char *s, size_t n, struct err *err)
{
	if (!rpc_xml_text_ok(s, n))
		return xml_put_base64(out, (const unsigned char *)s, n, err);
	if (n == 0)
		return buf_puts(out, "<string/>", err); /* as xmlrpc-epi writes it */
	if (buf_puts(out, "<string>", err) < 0 || xml_put_text(out, s, n, err) < 0)
		return -1;
	return buf_puts(out, "</string>", err);
}

/* Shortest %.*g that reads back as d; always starts with a digit or '-'. */
static int xml_put_double(struct buf *out, double d, struct err *err)
{
	char tmp[40];

	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	return buf_printf(out, err, "<double>%s</double>", tmp);
}

static int xml_put_value(struct buf *out, json_t *v, struct err *err);

static int xml_put_struct(struct buf *out, json_t *obj, struct err *err)
{
	const char *key;
	size_t klen;
	json_t *v;

	if (buf_puts(out, "<struct>\n", err) < 0)
		return -1;
	json_object_keylen_foreach(obj, key, klen, v)
	{
		if (buf_puts(out, "<member>\n<name>", err) < 0 ||
		    xml_put_text(out, key, klen, err) < 0 || buf_puts(out, "</name>\n", err) < 0 ||
		    xml_put_value(out, v, err) < 0 || buf_puts(out, "</member>\n", err) < 0)
			return -1;
	}
	return buf_puts(out, "</struct>", err);
}

static int xml_put_array(struct buf *out, json_t *arr, struct err *err)
{
	size_t i;
	json_t *v;

	if (buf_puts(out, "<array>\n<data>\n", err) < 0)
		return -1;
	json_array_foreach(arr, i, v)
	{
		if (xml_put_value(out, v, err) < 0)
			return -1;
	}
	return buf_puts(out, "</data>\n</array>", err);
}

static int xml_put_typed(struct buf *out, json_t *v, struct err *err)
{
	json_int_t i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return xml_put_struct(out, v, err);
	case JSON_ARRAY:
		return xml_put_array(out, v, err);
	case JSON_STRING:
		return xml_put_string(out, json_string_value(v), json_string_length(v), err);
	case JSON_INTEGER:
		i = json_integer_value(v);
		if (i >= INT32_MIN && i <= INT32_MAX)
			return buf_printf(out, err, "<int>%" JSON_INTEGER_FORMAT "</int>", i);
		return buf_printf(out, err, "<i8>%" JSON_INTEGER_FORMAT "</i8>", i);
	case JSON_REAL:
		return xml_put_double(out, json_real_value(v), err);
	case JSON_TRUE:
		return buf_puts(out, "<boolean>1</boolean>", err);
	case JSON_FALSE:
		return buf_puts(out, "<boolean>0</boolean>", err);
	case JSON_NULL:
		return buf_puts(out, "<nil/>", err);
	}
	return CALL_FAIL(err, "unknown value type %d", (int)json_typeof(v));
}

/* Recursion is bounded: check_tree() has seen the depth. */
static int xml_put_value(struct buf *out, json_t *v, struct err *err)
{
	if (buf_puts(out, "<value>\n", err) < 0 || xml_put_typed(out, v, err) < 0)
		return -1;
	return buf_puts(out, "\n</value>\n", err);
}

/* The parser trims the methodName and cannot decode base64 there. */
static int check_xml_method(const char *m, struct err *err)
{
	size_t n = strlen(m);

	if (!n || !xml_name_ok(m, n) || strchr(" \t\r\n", m[0]) || strchr(" \t\r\n", m[n - 1]))
		return CALL_FAIL(err, "method \"%.40s\" cannot be carried by XML-RPC", m);
	return 0;
}

static int xml_call(struct buf *out, const char *method, json_t *params, struct err *err)
{
	if (check_xml_method(method, err) < 0 ||
	    buf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodCall>\n<methodName>",
		     err) < 0 ||
	    xml_put_text(out, method, strlen(method), err) < 0 ||
	    buf_puts(out, "</methodName>\n<params>\n<param>\n", err) < 0)
		return -1;
	if (params ? xml_put_value(out, params, err) < 0
		   : buf_puts(out, "<value>\n<struct>\n</struct>\n</value>\n", err) < 0)
		return -1;
	return buf_puts(out, "</param>\n</params>\n</methodCall>\n", err);
}

int rpc_encode_call(struct buf *out, enum rpc_format fmt, const char *method, const char *id,
		    const json_t *params, struct err *err)
{
	/* jansson's iterators take non-const pointers; nothing here writes. */
	json_t *p = (json_t *)params;
	size_t start = out->len;
	int rc;

	if (!method)
		return CALL_FAIL(err, "no method");
	if (fmt != RPC_FORMAT_JSON && fmt != RPC_FORMAT_XML)
		return CALL_FAIL(err, "unknown format %d", (int)fmt);
	if (p && !json_is_object(p))
		return CALL_FAIL(err, "params is not an object");
	if (p && check_tree(p, PARAMS_DEPTH, fmt, err) < 0)
		return -1;
	if (fmt == RPC_FORMAT_JSON)
		rc = json_call(out, method, id, p, err);
	else
		rc = xml_call(out, method, p, err);
	if (rc < 0 && out->data) {
		/* All or nothing, like rpc_encode(). */
		out->len = start;
		out->data[start] = '\0';
	}
	return rc;
}
