/*
 * rpc_encode.c - response bodies in the reference server's exact layouts
 * (vpl-jail-protocol.md §1.4; byte-compared against the 5.0.1 wire samples
 * in tests/unit/test_rpc_encode.c).
 *
 * Strings are escaped in runs: bytes that need no change are appended in one
 * buf_append() per run, so a 128 MiB program output costs a few appends, not
 * one per byte.
 */
#include "rpc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

/* Replacement for byte c inside a JSON string, or NULL to copy it as is. */
static const char *json_byte_escape(unsigned char c, char tmp[8])
{
	switch (c) {
	case '"':
		return "\\\"";
	case '\\':
		return "\\\\";
	case '/':
		return "\\/"; /* the reference and PHP's json_encode both do this */
	case '\b':
		return "\\b";
	case '\f':
		return "\\f";
	case '\n':
		return "\\n";
	case '\r':
		return "\\r";
	case '\t':
		return "\\t";
	default:
		break;
	}
	if (c < 0x20 || c == 0x7F) {
		snprintf(tmp, 8, "\\u%04x", c);
		return tmp;
	}
	return NULL;
}

static int json_put_string(struct buf *out, const char *s, size_t n, struct err *err)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0; /* start of the pending unchanged run */
	size_t i = 0;
	char tmp[8];

	while (i < n) {
		const char *rep;
		if (p[i] >= 0x80) {
			size_t k = utf8_seq_len(p + i, n - i);
			if (k) {
				i += k;
				continue;
			}
			rep = "\xEF\xBF\xBD"; /* U+FFFD per invalid byte */
		} else {
			rep = json_byte_escape(p[i], tmp);
			if (!rep) {
				i++;
				continue;
			}
		}
		if (buf_append(out, p + run, i - run, err) < 0 || buf_puts(out, rep, err) < 0)
			return -1;
		run = ++i;
	}
	return buf_append(out, p + run, n - run, err);
}

static int json_put_quoted(struct buf *out, const char *s, size_t n, struct err *err)
{
	if (buf_append(out, "\"", 1, err) < 0 || json_put_string(out, s, n, err) < 0)
		return -1;
	return buf_append(out, "\"", 1, err);
}

/* Entity for byte c in XML character data, "" to drop it, NULL to keep it. */
static const char *xml_byte_escape(unsigned char c)
{
	switch (c) {
	case '&':
		return "&amp;";
	case '<':
		return "&lt;";
	case '>':
		return "&gt;";
	case '\'':
		return "&apos;";
	case '"':
		return "&quot;";
	case '\t':
	case '\n':
	case '\r':
		return NULL;
	default:
		/* XML 1.0 has no way to carry these, not even as &#N;. */
		return c < 0x20 ? "" : NULL;
	}
}

/* U+FFFE and U+FFFF are valid UTF-8 but not XML 1.0 characters either. */
static int is_xml_nonchar(const unsigned char *p, size_t k)
{
	return k == 3 && p[0] == 0xEF && p[1] == 0xBF && (p[2] == 0xBE || p[2] == 0xBF);
}

static int xml_put_string(struct buf *out, const char *s, size_t n, struct err *err)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0;
	size_t i = 0;

	while (i < n) {
		const char *rep;
		size_t skip = 1;
		if (p[i] >= 0x80) {
			size_t k = utf8_seq_len(p + i, n - i);
			if (k && !is_xml_nonchar(p + i, k)) {
				i += k;
				continue;
			}
			rep = ""; /* dropped, as the reference drops invalid UTF-8 */
			skip = k ? k : 1;
		} else {
			rep = xml_byte_escape(p[i]);
			if (!rep) {
				i++;
				continue;
			}
		}
		if (buf_append(out, p + run, i - run, err) < 0 || buf_puts(out, rep, err) < 0)
			return -1;
		i += skip;
		run = i;
	}
	return buf_append(out, p + run, n - run, err);
}

static int json_put_member(struct buf *out, const struct rpc_member *m, struct err *err)
{
	if (json_put_quoted(out, m->name, strlen(m->name), err) < 0 ||
	    buf_append(out, ":", 1, err) < 0)
		return -1;
	if (m->type == RPC_T_INT)
		return buf_printf(out, err, "%lld", m->i);
	return json_put_quoted(out, m->s ? m->s : "", m->s ? m->slen : 0, err);
}

static int json_encode(struct buf *out, const char *id, const struct rpc_member *m, size_t n,
		       struct err *err)
{
	if (buf_puts(out, "{\"jsonrpc\":\"2.0\",\"result\":{", err) < 0)
		return -1;
	for (size_t k = 0; k < n; k++) {
		if (k && buf_append(out, ",", 1, err) < 0)
			return -1;
		if (json_put_member(out, &m[k], err) < 0)
			return -1;
	}
	if (buf_puts(out, "},\"id\":", err) < 0 || json_put_quoted(out, id, strlen(id), err) < 0)
		return -1;
	return buf_append(out, "}", 1, err);
}

/*
 * The reference prints out-of-int32 values with %lg (4.29497e+09), which
 * loses digits; %.0f keeps every digit of the double, and PHP reads <double>
 * as a double anyway.
 */
static int xml_put_value(struct buf *out, const struct rpc_member *m, struct err *err)
{
	if (m->type == RPC_T_STR) {
		if (buf_puts(out, "<string>", err) < 0 ||
		    xml_put_string(out, m->s ? m->s : "", m->s ? m->slen : 0, err) < 0)
			return -1;
		return buf_puts(out, "</string>", err);
	}
	if (m->i >= INT32_MIN && m->i <= INT32_MAX)
		return buf_printf(out, err, "<int>%lld</int>", m->i);
	return buf_printf(out, err, "<double>%.0f</double>", (double)m->i);
}

static int xml_encode(struct buf *out, const struct rpc_member *m, size_t n, struct err *err)
{
	if (buf_puts(out,
		     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		     "<methodResponse>\n<params>\n<param>\n<struct>\n",
		     err) < 0)
		return -1;
	for (size_t k = 0; k < n; k++) {
		if (buf_puts(out, "<member><name>", err) < 0 ||
		    xml_put_string(out, m[k].name, strlen(m[k].name), err) < 0 ||
		    buf_puts(out, "</name>\n<value>", err) < 0 ||
		    xml_put_value(out, &m[k], err) < 0 ||
		    buf_puts(out, "</value>\n</member>\n", err) < 0)
			return -1;
	}
	return buf_puts(out, "</struct>\n</param>\n</params>\n</methodResponse>\n", err);
}

static int check_members(const struct rpc_member *m, size_t n, struct err *err)
{
	if (n && !m)
		return err_set(err, EINVAL, "rpc_encode: no members given");
	for (size_t k = 0; k < n; k++) {
		if (!m[k].name)
			return err_set(err, EINVAL, "rpc_encode: member %zu has no name", k);
		if (m[k].type != RPC_T_STR && m[k].type != RPC_T_INT)
			return err_set(err, EINVAL, "rpc_encode: member %s has unknown type %d",
				       m[k].name, (int)m[k].type);
	}
	return 0;
}

int rpc_encode(struct buf *out, enum rpc_format fmt, const char *id, const struct rpc_member *m,
	       size_t n, struct err *err)
{
	size_t start = out->len;
	int rc;

	if (check_members(m, n, err) < 0)
		return -1;
	if (fmt == RPC_FORMAT_JSON)
		rc = json_encode(out, id ? id : "", m, n, err);
	else if (fmt == RPC_FORMAT_XML)
		rc = xml_encode(out, m, n, err);
	else
		rc = err_set(err, EINVAL, "rpc_encode: unknown format %d", (int)fmt);
	if (rc < 0 && out->data) {
		/* All or nothing: never leave half a response in the buffer. */
		out->len = start;
		out->data[start] = '\0';
	}
	return rc;
}
