/*
 * httphead.c - strict HTTP/1.x head parser and rewriter (contract in httphead.h).
 *
 * The parser works line by line on the caller's stream prefix: it remembers how far it has
 * searched for LF and where the current line starts, checks each line when its LF arrives
 * and records offsets only. On the empty line it copies the head once and turns offsets
 * into pointers, then checks the fields' meaning (framing, Host, flags) as a whole.
 */
#include "httphead.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static_assert(HTTPHEAD_MAX_BYTES <= UINT16_MAX, "head offsets are kept in 16 bits");

enum { PHASE_START = 0, PHASE_FIELDS, PHASE_DONE, PHASE_FAILED };

/* ---- character classes (RFC 9110 5.6.2, 5.5; RFC 6265 4.1.1) ---- */

static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* field-vchar, SP or HT: everything but the CTLs other than HT (obs-text allowed) */
static bool is_value_byte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Visible ASCII: what an origin-form target may hold (browsers percent-encode the rest). */
static bool is_target_byte(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e;
}

static bool is_cookie_octet(unsigned char c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) ||
	       (c >= 0x3c && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

/* a[0..alen) equals the NUL-terminated b, ASCII case-insensitively (no locale). */
static bool ieq(const char *a, size_t alen, const char *b)
{
	size_t i = 0;
	for (; i < alen; i++)
		if (b[i] == '\0' || ascii_lower(a[i]) != ascii_lower(b[i]))
			return false;
	return b[i] == '\0';
}

static bool all_tchars(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)p[i]))
			return false;
	return n > 0;
}

/* ---- refusals ---- */

/* Refuses the head for good: a response's refusals all become 502 (the proxy's answer). */
__attribute__((format(printf, 4, 5))) static int refuse(struct httphead *h, struct err *err,
							int status, const char *fmt, ...)
{
	struct httphead_state *s = &h->priv;
	char what[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (s->response && status != 500)
		status = 502;
	if (s->copy) { /* refused after the copy: no pointer may dangle */
		free(s->copy);
		s->copy = NULL;
		h->method = h->target = NULL;
		for (size_t i = 0; i < h->nfields; i++)
			h->fields[i].name = h->fields[i].value = NULL;
	}
	s->phase = PHASE_FAILED;
	s->fail_code = status;
	return err_set(err, status, "%s head refused: %s", s->response ? "response" : "request",
		       what);
}

/* ---- lines ---- */

/* Exactly "HTTP/1.0" or "HTTP/1.1"; another d.d is 505, anything else 400. */
static int take_version(struct httphead *h, const char *p, size_t n, struct err *err)
{
	if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || !is_digit(p[5]) || p[6] != '.' ||
	    !is_digit(p[7]))
		return refuse(h, err, 400, "malformed HTTP version");
	if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
		return refuse(h, err, 505, "HTTP/%c.%c not supported (only 1.0 and 1.1)", p[5],
			      p[7]);
	h->minor_version = p[7] - '0';
	return 0;
}

/* METHOD SP origin-form SP HTTP/1.x, in data[0, end) */
static int take_request_line(struct httphead *h, const char *data, size_t end, struct err *err)
{
	struct httphead_state *s = &h->priv;
	size_t i = 0;
	while (i < end && is_tchar((unsigned char)data[i]))
		i++;
	if (i == 0 || i == end || data[i] != ' ')
		return refuse(h, err, 400, "malformed method in the request line");
	s->method_len = (uint16_t)i;
	size_t t = ++i;
	while (i < end && is_target_byte((unsigned char)data[i]))
		i++;
	if (i == t || data[t] != '/')
		return refuse(h, err, 400,
			      "request target not in origin form (must start with '/')");
	if (i == end || data[i] != ' ')
		return refuse(h, err, 400, "invalid byte in the request target");
	s->target_off = (uint16_t)t;
	h->target_len = i - t;
	i++;
	return take_version(h, data + i, end - i, err);
}

/* HTTP/1.x SP 3DIGIT [SP reason], in data[0, end) */
static int take_status_line(struct httphead *h, const char *data, size_t end, struct err *err)
{
	if (end < 12 || data[8] != ' ')
		return refuse(h, err, 502, "malformed status line");
	if (take_version(h, data, 8, err) < 0)
		return -1;
	if (!is_digit(data[9]) || !is_digit(data[10]) || !is_digit(data[11]))
		return refuse(h, err, 502, "malformed status code");
	h->status = (data[9] - '0') * 100 + (data[10] - '0') * 10 + (data[11] - '0');
	if (h->status < 100 || h->status > 599)
		return refuse(h, err, 502, "status code %d out of range", h->status);
	if (end > 12 && data[12] != ' ')
		return refuse(h, err, 502, "malformed status line");
	for (size_t i = 13; i < end; i++)
		if (!is_value_byte((unsigned char)data[i]))
			return refuse(h, err, 502, "control character in the reason phrase");
	return 0;
}

/* name ':' OWS value OWS, in data[start, end) */
static int take_field_line(struct httphead *h, const char *data, size_t start, size_t end,
			   struct err *err)
{
	struct httphead_state *s = &h->priv;
	size_t i = start;
	while (i < end && is_tchar((unsigned char)data[i]))
		i++;
	if (i == start && (i == end || data[i] == ':'))
		return refuse(h, err, 400, "empty field name");
	if (i == end || data[i] != ':')
		return refuse(h, err, 400,
			      "invalid byte in field name '%.*s' (or space before ':')",
			      (int)(i - start > 64 ? 64 : i - start), data + start);
	size_t name_len = i - start;
	i++;
	while (i < end && is_ows(data[i]))
		i++;
	size_t v = i, vend = end;
	while (vend > v && is_ows(data[vend - 1]))
		vend--;
	for (size_t k = v; k < vend; k++)
		if (!is_value_byte((unsigned char)data[k]))
			return refuse(h, err, 400, "control character 0x%02x in the value of %.*s",
				      (unsigned char)data[k], (int)(name_len > 64 ? 64 : name_len),
				      data + start);
	size_t n = h->nfields++;
	s->name_off[n] = (uint16_t)start;
	s->value_off[n] = (uint16_t)v;
	h->fields[n].name = NULL; /* pointers only once the head is copied */
	h->fields[n].name_len = name_len;
	h->fields[n].value = NULL;
	h->fields[n].value_len = vend - v;
	return 0;
}

/* ---- meaning ---- */

/* Walks the non-empty elements of a comma-separated list (RFC 9110 5.6.1), trimmed. */
struct list_iter {
	const char *p, *end;
};

static bool list_next(struct list_iter *it, const char **elem, size_t *len)
{
	while (it->p < it->end) {
		const char *comma = memchr(it->p, ',', (size_t)(it->end - it->p));
		const char *e = comma ? comma : it->end;
		const char *b = it->p;
		it->p = comma ? comma + 1 : it->end;
		while (b < e && is_ows(*b))
			b++;
		while (e > b && is_ows(e[-1]))
			e--;
		if (e > b) {
			*elem = b;
			*len = (size_t)(e - b);
			return true;
		}
	}
	return false;
}

static bool list_has(const struct httphead_field *f, const char *token)
{
	struct list_iter it = {f->value, f->value + f->value_len};
	const char *e;
	size_t n;
	while (list_next(&it, &e, &n))
		if (ieq(e, n, token))
			return true;
	return false;
}

/* 1 to 18 digits: no sign, no list, cannot overflow a long long. -1 otherwise. */
static long long parse_content_length(const struct httphead_field *f)
{
	if (f->value_len == 0 || f->value_len > 18)
		return -1;
	long long v = 0;
	for (size_t i = 0; i < f->value_len; i++) {
		if (!is_digit(f->value[i]))
			return -1;
		v = v * 10 + (f->value[i] - '0');
	}
	return v;
}

struct codings {
	int n, nchunked;
	bool last_chunked, malformed;
};

static void add_codings(struct codings *c, const struct httphead_field *f)
{
	struct list_iter it = {f->value, f->value + f->value_len};
	const char *e;
	size_t n;
	while (list_next(&it, &e, &n)) {
		if (!all_tchars(e, n)) /* no parameters: nobody sends them on chunked */
			c->malformed = true;
		c->n++;
		c->last_chunked = ieq(e, n, "chunked");
		c->nchunked += c->last_chunked;
	}
}

static int check_meaning(struct httphead *h, struct err *err)
{
	bool response = h->priv.response;
	struct codings te = {0};
	bool has_te = false;
	long long cl = -1;
	int nhost = 0;
	for (size_t i = 0; i < h->nfields; i++) {
		const struct httphead_field *f = &h->fields[i];
		if (ieq(f->name, f->name_len, "content-length")) {
			long long v = parse_content_length(f);
			if (v < 0)
				return refuse(h, err, 400, "Content-Length is not 1 to 18 digits");
			if (cl >= 0 && v != cl)
				return refuse(h, err, 400, "Content-Length copies differ");
			cl = v;
		} else if (ieq(f->name, f->name_len, "transfer-encoding")) {
			has_te = true;
			add_codings(&te, f);
		} else if (ieq(f->name, f->name_len, "host")) {
			nhost++;
		} else if (ieq(f->name, f->name_len, "expect")) {
			if (ieq(f->value, f->value_len, "100-continue"))
				h->expect_continue = true;
		} else if (ieq(f->name, f->name_len, "upgrade")) {
			if (list_has(f, "websocket"))
				h->upgrade_websocket = true;
		} else if (ieq(f->name, f->name_len, "connection")) {
			if (list_has(f, "close"))
				h->connection_close = true;
		}
	}
	if (has_te) {
		/* Both framings at once is the classic smuggling vector: never pick one. */
		if (cl >= 0)
			return refuse(h, err, 400, "both Transfer-Encoding and Content-Length");
		if (h->minor_version == 0)
			return refuse(h, err, 400, "Transfer-Encoding in an HTTP/1.0 message");
		if (te.malformed)
			return refuse(h, err, 400, "malformed Transfer-Encoding");
		if (te.nchunked > 1)
			return refuse(h, err, 400, "chunked applied more than once");
		if (!response && !te.last_chunked)
			return refuse(h, err, 400, "chunked is not the final transfer coding");
		if (!response && te.n > 1)
			return refuse(h, err, 501, "transfer coding other than chunked");
		h->chunked = te.last_chunked;
	}
	if (!response && nhost > 1)
		return refuse(h, err, 400, "more than one Host field");
	if (!response && nhost == 0 && h->minor_version == 1)
		return refuse(h, err, 400, "no Host field in an HTTP/1.1 request");
	h->content_length = cl;
	return 0;
}

/* The empty line ended the head at data[head_len - 1]: copy it, point into the copy. */
static int complete(struct httphead *h, const char *data, size_t head_len, struct err *err)
{
	struct httphead_state *s = &h->priv;
	char *copy = malloc(head_len + 1);
	if (!copy)
		return refuse(h, err, 500, "out of memory copying %zu bytes", head_len);
	memcpy(copy, data, head_len);
	copy[head_len] = '\0';
	s->copy = copy;
	h->head_len = head_len;
	if (!s->response) {
		h->method = copy;
		h->method_len = s->method_len;
		h->target = copy + s->target_off;
	}
	for (size_t i = 0; i < h->nfields; i++) {
		h->fields[i].name = copy + s->name_off[i];
		h->fields[i].value = copy + s->value_off[i];
	}
	if (check_meaning(h, err) < 0)
		return -1;
	s->phase = PHASE_DONE;
	return 1;
}

/* The line data[start, eol] (eol at its LF) is complete: check it. 1 when it ended the head. */
static int take_line(struct httphead *h, const char *data, size_t start, size_t eol,
		     struct err *err)
{
	struct httphead_state *s = &h->priv;
	if (eol == start || data[eol - 1] != '\r')
		return refuse(h, err, 400, "line ending in a bare LF");
	size_t end = eol - 1;
	if (end == start) {
		if (s->phase == PHASE_START)
			return refuse(h, err, 400, "empty line before the start line");
		return complete(h, data, eol + 1, err);
	}
	if (s->phase == PHASE_START) {
		int r = s->response ? take_status_line(h, data, end, err)
				    : take_request_line(h, data, end, err);
		if (r < 0)
			return -1;
		s->start_end = (uint16_t)end;
		s->phase = PHASE_FIELDS;
		return 0;
	}
	if (is_ows(data[start]))
		return refuse(h, err, 400, "obsolete line folding (a line starts with whitespace)");
	if (h->nfields == HTTPHEAD_MAX_FIELDS)
		return refuse(h, err, 431, "more than %d field lines", HTTPHEAD_MAX_FIELDS);
	return take_field_line(h, data, start, end, err);
}

void httphead_init(struct httphead *h)
{
	memset(h, 0, sizeof *h);
	h->content_length = -1;
}

void httphead_free(struct httphead *h)
{
	free(h->priv.copy);
	httphead_init(h);
}

int httphead_parse(struct httphead *h, bool response, const char *data, size_t len, struct err *err)
{
	struct httphead_state *s = &h->priv;
	if (s->phase == PHASE_DONE)
		return 1;
	if (s->phase == PHASE_FAILED)
		return err_set(err, s->fail_code, "%s head already refused",
			       s->response ? "response" : "request");
	if (s->scan == 0) {
		s->response = response;
		h->is_response = response;
		h->content_length = -1;
	} else if (response != s->response) {
		return refuse(h, err, 500, "httphead_parse: request/response changed mid-head");
	}
	if (len < s->scan)
		return refuse(h, err, 500, "httphead_parse: the stream prefix shrank");
	/* A complete head ends at or before HTTPHEAD_MAX_BYTES: never look further. */
	size_t window = len < HTTPHEAD_MAX_BYTES ? len : HTTPHEAD_MAX_BYTES;
	while (s->scan < window) {
		const char *lf = memchr(data + s->scan, '\n', window - s->scan);
		if (!lf) {
			s->scan = window;
			break;
		}
		size_t eol = (size_t)(lf - data);
		s->scan = eol + 1;
		int r = take_line(h, data, s->line, eol, err);
		if (r != 0)
			return r;
		s->line = eol + 1;
	}
	if (window == HTTPHEAD_MAX_BYTES)
		return refuse(h, err, 413, "head larger than %d bytes", HTTPHEAD_MAX_BYTES);
	return 0;
}

const struct httphead_field *httphead_get(const struct httphead *h, const char *name)
{
	if (h->priv.phase != PHASE_DONE)
		return NULL;
	for (size_t i = 0; i < h->nfields; i++)
		if (ieq(h->fields[i].name, h->fields[i].name_len, name))
			return &h->fields[i];
	return NULL;
}

/* ---- cookies ---- */

/* One cookie-pair in [b, e): name and value spans, OWS around both ignored. */
struct cookie_pair {
	const char *name, *name_end, *value, *value_end;
};

static bool split_pair(const char *b, const char *e, struct cookie_pair *cp)
{
	while (b < e && is_ows(*b))
		b++;
	const char *eq = memchr(b, '=', (size_t)(e - b));
	if (!eq)
		return false;
	cp->name = b;
	cp->name_end = eq;
	while (cp->name_end > b && is_ows(cp->name_end[-1]))
		cp->name_end--;
	cp->value = eq + 1;
	while (cp->value < e && is_ows(*cp->value))
		cp->value++;
	cp->value_end = e;
	while (cp->value_end > cp->value && is_ows(cp->value_end[-1]))
		cp->value_end--;
	return true;
}

static bool pair_named(const struct cookie_pair *cp, const char *name, size_t len)
{
	return (size_t)(cp->name_end - cp->name) == len && memcmp(cp->name, name, len) == 0;
}

/* The field that carries cookies in this kind of head. */
static bool is_cookie_field(const struct httphead *h, const struct httphead_field *f)
{
	return ieq(f->name, f->name_len, h->is_response ? "set-cookie" : "cookie");
}

const char *httphead_cookie(const struct httphead *h, const char *name, size_t *len)
{
	if (h->priv.phase != PHASE_DONE)
		return NULL;
	size_t nlen = strlen(name);
	for (size_t i = 0; i < h->nfields; i++) {
		const struct httphead_field *f = &h->fields[i];
		if (!is_cookie_field(h, f))
			continue;
		const char *p = f->value, *end = f->value + f->value_len;
		for (;;) {
			const char *semi = memchr(p, ';', (size_t)(end - p));
			const char *se = semi ? semi : end;
			struct cookie_pair cp;
			if (split_pair(p, se, &cp) && pair_named(&cp, name, nlen)) {
				*len = (size_t)(cp.value_end - cp.value);
				return cp.value;
			}
			if (!semi || h->is_response) /* Set-Cookie: the rest are attributes */
				break;
			p = semi + 1;
		}
	}
	return NULL;
}

/* ---- writing ---- */

static bool valid_target(const char *t, size_t n)
{
	if (n == 0 || t[0] != '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_target_byte((unsigned char)t[i]))
			return false;
	return true;
}

/* `add` must be whole field lines, so that it can neither end the head nor fold into it. */
static bool valid_add(const char *p)
{
	while (*p) {
		size_t i = 0;
		while (is_tchar((unsigned char)p[i]))
			i++;
		if (i == 0 || p[i] != ':')
			return false;
		for (i++; p[i] != '\r' && p[i] != '\0'; i++)
			if (!is_value_byte((unsigned char)p[i]))
				return false;
		if (p[i] != '\r' || p[i + 1] != '\n')
			return false;
		p += i + 2;
	}
	return true;
}

static int check_edit(const struct httphead *h, const struct httphead_edit *e, struct err *err)
{
	if (h->priv.phase != PHASE_DONE)
		return err_set(err, EINVAL, "httphead_write: the head is not complete");
	if (e->target && h->is_response)
		return err_set(err, EINVAL, "httphead_write: a response has no target");
	if (e->target && !valid_target(e->target, e->target_len))
		return err_set(err, EINVAL, "httphead_write: target not in origin form");
	if (e->cookie_name) {
		if (!all_tchars(e->cookie_name, strlen(e->cookie_name)))
			return err_set(err, EINVAL, "httphead_write: cookie name not a token");
		if (!e->cookie_value && e->cookie_value_len)
			return err_set(err, EINVAL, "httphead_write: no cookie value");
		for (size_t i = 0; i < e->cookie_value_len; i++)
			if (!is_cookie_octet((unsigned char)e->cookie_value[i]))
				return err_set(
				    err, EINVAL,
				    "httphead_write: byte 0x%02x not allowed in a cookie",
				    (unsigned char)e->cookie_value[i]);
	}
	if (e->add && !valid_add(e->add))
		return err_set(err, EINVAL, "httphead_write: added lines are not field lines");
	return 0;
}

static bool dropped(const struct httphead_edit *e, const struct httphead_field *f)
{
	for (const char *const *d = e->drop; d && *d; d++)
		if (ieq(f->name, f->name_len, *d))
			return true;
	return false;
}

/* The cookie field line [ls, le) of the copy, with cookie e->cookie_name's value replaced. */
static int write_cookie_line(const struct httphead *h, const struct httphead_field *f,
			     const char *ls, const char *le, const struct httphead_edit *e,
			     struct buf *out, struct err *err)
{
	size_t nlen = strlen(e->cookie_name);
	const char *p = f->value, *vend = f->value + f->value_len;
	if (buf_append(out, ls, (size_t)(p - ls), err) < 0) /* name, ':', OWS */
		return -1;
	for (;;) {
		const char *semi = memchr(p, ';', (size_t)(vend - p));
		const char *se = semi ? semi : vend;
		struct cookie_pair cp;
		if (split_pair(p, se, &cp) && pair_named(&cp, e->cookie_name, nlen)) {
			if (buf_append(out, p, (size_t)(cp.value - p), err) < 0 ||
			    buf_append(out, e->cookie_value, e->cookie_value_len, err) < 0 ||
			    buf_append(out, cp.value_end, (size_t)(se - cp.value_end), err) < 0)
				return -1;
		} else if (buf_append(out, p, (size_t)(se - p), err) < 0) {
			return -1;
		}
		if (!semi)
			break;
		if (h->is_response) /* Set-Cookie: attributes follow, copied as they are */
			return buf_append(out, semi, (size_t)(le - semi), err);
		if (buf_append(out, ";", 1, err) < 0)
			return -1;
		p = semi + 1;
	}
	return buf_append(out, vend, (size_t)(le - vend), err); /* OWS, CRLF */
}

static int write_head(const struct httphead *h, const struct httphead_edit *e, struct buf *out,
		      struct err *err)
{
	const struct httphead_state *s = &h->priv;
	const char *c = s->copy;
	size_t fields_at = s->start_end + 2; /* past the start line's CRLF */
	if (e->target) {
		size_t rest = (size_t)s->target_off + h->target_len;
		if (buf_append(out, c, s->target_off, err) < 0 ||
		    buf_append(out, e->target, e->target_len, err) < 0 ||
		    buf_append(out, c + rest, fields_at - rest, err) < 0)
			return -1;
	} else if (buf_append(out, c, fields_at, err) < 0) {
		return -1;
	}
	for (size_t i = 0; i < h->nfields; i++) {
		const struct httphead_field *f = &h->fields[i];
		const char *ls = c + s->name_off[i];
		const char *le = c + (i + 1 < h->nfields ? s->name_off[i + 1] : h->head_len - 2);
		if (dropped(e, f))
			continue;
		int r = e->cookie_name && is_cookie_field(h, f)
			    ? write_cookie_line(h, f, ls, le, e, out, err)
			    : buf_append(out, ls, (size_t)(le - ls), err);
		if (r < 0)
			return -1;
	}
	if (e->add && buf_puts(out, e->add, err) < 0)
		return -1;
	return buf_append(out, "\r\n", 2, err);
}

int httphead_write(const struct httphead *h, const struct httphead_edit *e, struct buf *out,
		   struct err *err)
{
	static const struct httphead_edit none;
	if (!e)
		e = &none;
	if (check_edit(h, e, err) < 0)
		return -1;
	size_t mark = out->len;
	if (write_head(h, e, out, err) < 0) {
		out->len = mark;
		if (out->data)
			out->data[mark] = '\0';
		return -1;
	}
	return 0;
}
