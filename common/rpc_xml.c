/*
 * rpc_xml.c - the XML-RPC request parser, libxml2 underneath.
 *
 * A stock XML parser differs from the reference (and from what the plugin
 * relies on) in two ways that change file contents:
 *
 *  1. Byte references. PHP's xmlrpc-epi may escape UTF-8 byte by byte
 *     ("Rodr&#195;&#173;guez"); the reference reads each decimal &#NNN; in
 *     128..255 as one byte, an XML parser as the code point U+00NN
 *     ("RodrÃ­guez").
 *  2. Carriage returns. XML 1.0 §2.11 turns CR LF and lone CR into LF;
 *     xmlrpc-epi sends file contents with raw CRs and the reference keeps
 *     them, so a CRLF test-case file must arrive as CRLF.
 *
 * Both are handled by rewriting the body on its way into libxml2. libxml2
 * pulls the body through a read callback (feed_read), so the rewritten body
 * is produced a few KiB at a time and never held as a second copy. Inside
 * elements:
 *   - a decimal &#NNN; with NNN in 128..255 becomes the code point
 *     MARK_BYTE + (NNN - 128);
 *   - a raw CR (in text or CDATA) becomes MARK_CR;
 *   - a code point of the marker block that the sender itself wrote (raw or
 *     as a reference) gets MARK_ESC in front, so markers stay unambiguous.
 * Text read back from the tree is decoded (unmark): MARK_CR -> CR,
 * MARK_ESC x -> x, byte markers -> those bytes if the whole string is then
 * valid UTF-8, else -> the code points U+0080..U+00FF (the rule in rpc.h).
 * The marker block U+10FF00..U+10FF81 is plane-16 private use, which XML
 * accepts as character data. References inside CDATA sections, comments,
 * PIs and tags are left alone: they are not references there (or unused).
 *
 * The same lexer rejects "<!" markup other than comments and CDATA (that is,
 * a DOCTYPE) and caps element nesting before libxml2 parses that far, so
 * entity bombs and deep-nesting bodies fail within the first read. The
 * internalSubset SAX hook is a second, independent DTD stop. No DTD means no
 * entity but the five predefined ones; XML_PARSE_NONET and the absence of
 * XML_PARSE_NOENT / XML_PARSE_DTDLOAD keep libxml2 off the network and disk.
 *
 * The body is always read as UTF-8 (the plugin sends nothing else, and the
 * rewriting works on UTF-8 bytes): an encoding declaration is ignored.
 *
 * Peak memory for a body of size B carrying one big file: B (the caller's
 * body) + the libxml2 text node (~B) + the jansson string (~B) while that
 * string is converted (+ ~B for unmark's output if it held byte markers or
 * CRs). Each text node is freed as soon as it has been converted.
 */
#include "rpc.h"
#include "rpc_xml_priv.h"
#include "utf8.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#define MARK_BYTE 0x10FF00u /* + (b - 0x80): the byte b from a decimal reference */
#define MARK_ESC  0x10FF80u /* the next code point is the sender's own */
#define MARK_CR	  0x10FF81u /* a raw carriage return */

/* Elements per RPC nesting level: <member><value><struct> (or data/value/
 * array); plus the fixed methodCall/params/param/value/type prefix. */
#define MAX_ELEM_DEPTH (3 * RPC_MAX_DEPTH + 8)

#define XML_OPTIONS                                                                                \
	(XML_PARSE_NONET | XML_PARSE_HUGE | XML_PARSE_NOCDATA | XML_PARSE_IGNORE_ENC |             \
	 XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

#define XML_FAIL(err, ...) err_set(err, EINVAL, "XML-RPC parse error: " __VA_ARGS__)
#define METHOD_FAIL(err)   err_set(err, EINVAL, "RPC/XML methodName parse error")

/* ---- UTF-8 helpers ---------------------------------------------------- */

static void put_cp4(unsigned char out[4], uint32_t cp)
{
	out[0] = (unsigned char)(0xF0 | (cp >> 18));
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (unsigned char)(0x80 | (cp & 0x3F));
}

/* The marker-block code point encoded at p, or 0 if p holds something else. */
static uint32_t marker_at(const unsigned char *p, size_t n)
{
	if (n < 4 || p[0] != 0xF4 || p[1] != 0x8F || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
		return 0;
	uint32_t cp = 0x10F000u | ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3Fu);
	return cp >= MARK_BYTE && cp <= MARK_CR ? cp : 0;
}

static bool utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq_len(s + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

/* ---- the rewriting lexer that feeds libxml2 ----------------------------- */

struct feed {
	const unsigned char *in;
	size_t len;
	size_t pos;	 /* next input byte the lexer looks at */
	size_t from, to; /* input bytes to pass through next */
	size_t resume;	 /* where passing through continues after lit */
	unsigned char lit[4];
	size_t lit_off, lit_len;
	int depth; /* element nesting at pos */
	bool in_cdata;
	bool done;
	char error[120]; /* why the lexer (or the DTD hook) stopped the parse */
};

static int feed_fail(struct feed *f, const char *why)
{
	snprintf(f->error, sizeof f->error, "%s", why);
	return -1;
}

/* Queues: pass [resume, at) through, then the code point cp; the input
 * continues at at + consumed, the lexer at pos. */
static int feed_emit(struct feed *f, size_t at, size_t consumed, uint32_t cp, size_t pos)
{
	f->to = at;
	put_cp4(f->lit, cp);
	f->lit_len = 4;
	f->resume = at + consumed;
	f->pos = pos;
	return 1;
}

static bool starts(const unsigned char *p, size_t n, const char *s)
{
	size_t k = strlen(s);
	return n >= k && !memcmp(p, s, k);
}

/* Offset just past the first `end` at or after i, or n. */
static size_t skip_past(const unsigned char *in, size_t n, size_t i, const char *end)
{
	size_t k = strlen(end);
	const unsigned char *p = i < n ? memmem(in + i, n - i, end, k) : NULL;
	return p ? (size_t)(p - in) + k : n;
}

/*
 * A character reference "&#D...;" / "&#xH...;" at p: returns its length and
 * sets *v (saturated at 0x110000) and *decimal; 0 if p holds none.
 */
static size_t char_ref(const unsigned char *p, size_t n, uint32_t *v, bool *decimal)
{
	size_t i = 2;
	uint32_t val = 0;
	unsigned base = 10;

	if (n < 4 || p[1] != '#')
		return 0;
	if (p[2] == 'x') {
		base = 16;
		i = 3;
	}
	size_t first = i;
	for (; i < n; i++) {
		unsigned d;
		if (p[i] >= '0' && p[i] <= '9')
			d = p[i] - '0';
		else if (base == 16 && p[i] >= 'a' && p[i] <= 'f')
			d = p[i] - 'a' + 10;
		else if (base == 16 && p[i] >= 'A' && p[i] <= 'F')
			d = p[i] - 'A' + 10;
		else
			break;
		val = val * base + d;
		if (val > 0x110000)
			val = 0x110000;
	}
	if (i == first || i >= n || p[i] != ';')
		return 0;
	*v = val;
	*decimal = base == 10;
	return i + 1;
}

static int lex_ref(struct feed *f, size_t *ip)
{
	size_t i = *ip;
	uint32_t v;
	bool decimal;
	size_t k = char_ref(f->in + i, f->len - i, &v, &decimal);

	if (!k) {
		*ip = i + 1;
		return 0;
	}
	if (decimal && v >= 0x80 && v <= 0xFF)
		return feed_emit(f, i, k, MARK_BYTE + (v - 0x80), i + k);
	if (v >= MARK_BYTE && v <= MARK_CR)
		return feed_emit(f, i, 0, MARK_ESC, i + k);
	*ip = i + k;
	return 0;
}

/* A start tag: up to the '>' outside quoted attribute values. */
static int lex_start_tag(struct feed *f, size_t *ip)
{
	const unsigned char *in = f->in;
	size_t n = f->len, j = *ip + 1;
	unsigned char quote = 0;

	for (; j < n; j++) {
		if (quote) {
			if (in[j] == quote)
				quote = 0;
		} else if (in[j] == '"' || in[j] == '\'') {
			quote = in[j];
		} else if (in[j] == '>') {
			break;
		}
	}
	if (j >= n) {
		*ip = n;
		return 0;
	}
	if (in[j - 1] != '/' && ++f->depth > MAX_ELEM_DEPTH)
		return feed_fail(f, "elements nested too deeply");
	*ip = j + 1;
	return 0;
}

static int lex_markup(struct feed *f, size_t *ip)
{
	const unsigned char *p = f->in + *ip;
	size_t n = f->len - *ip;

	if (starts(p, n, "<!--")) {
		*ip = skip_past(f->in, f->len, *ip + 4, "-->");
	} else if (starts(p, n, "<![CDATA[")) {
		f->in_cdata = true;
		*ip += 9;
	} else if (starts(p, n, "<!")) {
		return feed_fail(f, "DOCTYPE and markup declarations are not allowed");
	} else if (starts(p, n, "<?")) {
		*ip = skip_past(f->in, f->len, *ip + 2, "?>");
	} else if (starts(p, n, "</")) {
		*ip = skip_past(f->in, f->len, *ip + 2, ">");
		f->depth--;
	} else {
		return lex_start_tag(f, ip);
	}
	return 0;
}

/* Bytes the scan loops must stop at; everything else passes through. */
static const bool text_stop[256] = {['<'] = 1, ['&'] = 1, ['\r'] = 1, [0xF4] = 1};
static const bool cdata_stop[256] = {[']'] = 1, ['\r'] = 1, [0xF4] = 1};

static int lex_text(struct feed *f, size_t *ip)
{
	size_t i = *ip;
	const unsigned char *p = f->in + i;
	size_t left = f->len - i;

	if (p[0] == '<')
		return lex_markup(f, ip);
	if (f->depth > 0) {
		if (p[0] == '\r')
			return feed_emit(f, i, 1, MARK_CR, i + 1);
		if (p[0] == '&')
			return lex_ref(f, ip);
		if (marker_at(p, left))
			return feed_emit(f, i, 0, MARK_ESC, i + 4);
	}
	*ip = i + 1;
	return 0;
}

static int lex_cdata(struct feed *f, size_t *ip)
{
	size_t i = *ip;
	const unsigned char *p = f->in + i;
	size_t left = f->len - i;

	if (starts(p, left, "]]>")) {
		f->in_cdata = false;
		*ip = i + 3;
		return 0;
	}
	if (f->depth > 0) {
		if (p[0] == '\r')
			return feed_emit(f, i, 1, MARK_CR, i + 1);
		if (marker_at(p, left))
			return feed_emit(f, i, 0, MARK_ESC, i + 4);
	}
	*ip = i + 1;
	return 0;
}

/* Scans to the next rewrite (queued, returns 1), to the end (returns 0,
 * done) or to a forbidden construct (returns -1). */
static int lex_step(struct feed *f)
{
	size_t i = f->pos;

	f->from = f->resume;
	f->lit_off = f->lit_len = 0;
	while (i < f->len) {
		const bool *stop = f->in_cdata ? cdata_stop : text_stop;
		while (i < f->len && !stop[f->in[i]])
			i++;
		if (i >= f->len)
			break;
		int rc = f->in_cdata ? lex_cdata(f, &i) : lex_text(f, &i);
		if (rc)
			return rc;
	}
	f->to = f->pos = f->len;
	f->done = true;
	return 0;
}

/* libxml2's xmlInputReadCallback: fills buf with the rewritten body. */
static int feed_read(void *ctx, char *buf, int len)
{
	struct feed *f = ctx;
	size_t want = len > 0 ? (size_t)len : 0, got = 0;

	while (got < want) {
		if (f->from < f->to) {
			size_t k = f->to - f->from;
			k = k < want - got ? k : want - got;
			memcpy(buf + got, f->in + f->from, k);
			f->from += k;
			got += k;
		} else if (f->lit_off < f->lit_len) {
			buf[got++] = (char)f->lit[f->lit_off++];
		} else if (f->done) {
			break;
		} else if (lex_step(f) < 0) {
			return -1;
		}
	}
	return (int)got;
}

/* ---- libxml2 ------------------------------------------------------------ */

static void quiet_error(void *ctx, xmlErrorPtr e)
{
	(void)ctx;
	(void)e;
}

static void reject_dtd(void *ctx, const xmlChar *name, const xmlChar *eid, const xmlChar *sid)
{
	xmlParserCtxtPtr ctxt = ctx;
	if (ctxt->_private)
		feed_fail(ctxt->_private, "DOCTYPE is not allowed");
	xmlStopParser(ctxt);
}

static xmlDocPtr read_doc(struct feed *f, struct err *err)
{
	xmlParserCtxtPtr ctxt = xmlNewParserCtxt();

	if (!ctxt) {
		err_set(err, ENOMEM, "XML-RPC parse error: out of memory");
		return NULL;
	}
	ctxt->_private = f;
	ctxt->sax->internalSubset = reject_dtd;
	ctxt->sax->serror = quiet_error; /* errors go to *err, not stderr */
	xmlDocPtr doc = xmlCtxtReadIO(ctxt, feed_read, NULL, f, NULL, "UTF-8", XML_OPTIONS);
	if (doc && doc->intSubset)
		feed_fail(f, "DOCTYPE is not allowed");
	/* libxml2 may take the lexer's -1 for an early end of input after the
	 * root element closed: the lexer's verdict wins either way. */
	if (doc && f->error[0]) {
		xmlFreeDoc(doc);
		doc = NULL;
	}
	if (!doc) {
		xmlErrorPtr e = xmlCtxtGetLastError(ctxt);
		if (f->error[0] || !e || !e->message) {
			XML_FAIL(err, "%s", f->error[0] ? f->error : "unknown error");
		} else {
			int n = (int)strcspn(e->message, "\n");
			XML_FAIL(err, "%.*s at line %d column %d", n, e->message, e->line, e->int2);
		}
	}
	xmlFreeParserCtxt(ctxt);
	return doc;
}

/* ---- text of an element ------------------------------------------------- */

struct text {
	const char *p;
	size_t n;
	char *owned; /* p points here when the text had to be assembled */
};

static void text_free(struct text *t)
{
	free(t->owned);
	t->owned = NULL;
}

static bool is_text(const xmlNode *c)
{
	return c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE;
}

static const char *node_name(const xmlNode *n)
{
	return (const char *)n->name;
}

/* Text and CDATA children of el, concatenated; comments and PIs are
 * skipped, anything else is an error. Borrows the node's buffer when there
 * is a single text child (the usual case, and the one that matters for a
 * 128 MiB file). */
static int raw_text(const xmlNode *el, struct text *t, struct err *err)
{
	const xmlNode *only = NULL;
	size_t total = 0, count = 0;

	*t = (struct text){.p = ""};
	for (const xmlNode *c = el->children; c; c = c->next) {
		if (is_text(c)) {
			total += c->content ? strlen((const char *)c->content) : 0;
			only = c;
			count++;
		} else if (c->type != XML_COMMENT_NODE && c->type != XML_PI_NODE) {
			return XML_FAIL(err, "unexpected <%.40s> inside <%.40s>",
					c->name ? node_name(c) : "?", node_name(el));
		}
	}
	if (count == 1 && only->content) {
		t->p = (const char *)only->content;
		t->n = total;
	} else if (count > 1) {
		if (!(t->owned = malloc(total + 1)))
			return err_set(err, ENOMEM, "XML-RPC parse error: out of memory");
		for (const xmlNode *c = el->children; c; c = c->next) {
			if (is_text(c) && c->content) {
				size_t k = strlen((const char *)c->content);
				memcpy(t->owned + t->n, c->content, k);
				t->n += k;
			}
		}
		t->owned[t->n] = '\0';
		t->p = t->owned;
	}
	return 0;
}

/* Undoes the lexer's rewriting into out (never longer than in). */
static size_t unmark(const unsigned char *in, size_t n, unsigned char *out, bool as_bytes)
{
	size_t i = 0, o = 0;

	while (i < n) {
		const unsigned char *q = memchr(in + i, 0xF4, n - i);
		size_t run = q ? (size_t)(q - in) - i : n - i;
		memmove(out + o, in + i, run);
		o += run;
		i += run;
		if (!q)
			break;
		uint32_t m = marker_at(in + i, n - i);
		if (!m) {
			out[o++] = in[i++];
			continue;
		}
		i += 4;
		if (m == MARK_CR) {
			out[o++] = '\r';
		} else if (m == MARK_ESC) {
			size_t k = i < n ? utf8_seq_len(in + i, n - i) : 0;
			memmove(out + o, in + i, k);
			o += k;
			i += k;
		} else {
			unsigned b = 0x80 + (m - MARK_BYTE);
			if (!as_bytes)
				out[o++] = (unsigned char)(0xC0 | (b >> 6));
			out[o++] = (unsigned char)(as_bytes ? b : 0x80 | (b & 0x3F));
		}
	}
	return o;
}

/* Applies the byte-vs-code-point rule to one string (see the top). */
static int decode_text(struct text *t, struct err *err)
{
	if (!memchr(t->p, 0xF4, t->n))
		return 0;
	unsigned char *out = malloc(t->n + 1);
	if (!out)
		return err_set(err, ENOMEM, "XML-RPC parse error: out of memory");
	const unsigned char *in = (const unsigned char *)t->p;
	size_t n = unmark(in, t->n, out, true);
	if (!utf8_valid(out, n))
		n = unmark(in, t->n, out, false);
	out[n] = '\0';
	free(t->owned);
	t->owned = (char *)out;
	t->p = t->owned;
	t->n = n;
	return 0;
}

static int element_text(const xmlNode *el, struct text *t, struct err *err)
{
	if (raw_text(el, t, err) < 0)
		return -1;
	if (decode_text(t, err) < 0) {
		text_free(t);
		return -1;
	}
	return 0;
}

static void trim(struct text *t)
{
	while (t->n && strchr(" \t\r\n", t->p[0]))
		t->p++, t->n--;
	while (t->n && strchr(" \t\r\n", t->p[t->n - 1]))
		t->n--;
}

/* Whitespace between structural elements (a raw CR there is MARK_CR). */
static bool is_blank(const xmlChar *s)
{
	size_t n = s ? strlen((const char *)s) : 0;

	for (size_t i = 0; i < n;) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
			i++;
		else if (marker_at(s + i, n - i) == MARK_CR)
			i += 4;
		else
			return false;
	}
	return true;
}

/* For a child of a structural element: 1 = an element to look at, 0 = skip
 * (blank text, comment, PI), -1 = text or other content that is not allowed. */
static int structural(const xmlNode *c, const xmlNode *parent, struct err *err)
{
	if (c->type == XML_ELEMENT_NODE)
		return 1;
	if (c->type == XML_COMMENT_NODE || c->type == XML_PI_NODE)
		return 0;
	if (is_text(c) && is_blank(c->content))
		return 0;
	return XML_FAIL(err, "unexpected text inside <%.40s>", node_name(parent));
}

static bool named(const xmlNode *n, const char *name)
{
	return !strcmp(node_name(n), name);
}

/* Frees a converted string's text nodes now rather than with the document. */
static void drop_children(xmlNodePtr el)
{
	xmlFreeNodeList(el->children);
	el->children = el->last = NULL;
}

/* ---- values ------------------------------------------------------------- */

static int conv_value(xmlNodePtr value, int depth, json_t **out, struct err *err);

static int made(json_t *v, json_t **out, struct err *err)
{
	*out = v;
	return v ? 0 : err_set(err, ENOMEM, "XML-RPC parse error: out of memory");
}

static int conv_string(xmlNodePtr el, int depth, json_t **out, struct err *err)
{
	struct text t;

	if (element_text(el, &t, err) < 0)
		return -1;
	/* libxml2 text is valid UTF-8 and unmark keeps it so */
	json_t *v = json_stringn_nocheck(t.p, t.n);
	text_free(&t);
	drop_children(el);
	return made(v, out, err);
}

static int scalar_text(xmlNodePtr el, struct text *t, struct err *err)
{
	if (element_text(el, t, err) < 0)
		return -1;
	trim(t);
	return 0;
}

/* Optional sign, decimal digits (leading zeros allowed), nothing else. */
static int parse_ll(const char *s, size_t n, long long *v)
{
	char tmp[24], *end;
	size_t sign = n && (s[0] == '+' || s[0] == '-');
	size_t d = sign;

	while (d + 1 < n && s[d] == '0')
		d++;
	if (n - d + sign >= sizeof tmp || d >= n || s[d] < '0' || s[d] > '9')
		return -1;
	memcpy(tmp, s, sign);
	memcpy(tmp + sign, s + d, n - d);
	tmp[sign + n - d] = '\0';
	errno = 0;
	*v = strtoll(tmp, &end, 10);
	return errno || *end ? -1 : 0;
}

static int conv_int(xmlNodePtr el, int depth, json_t **out, struct err *err)
{
	struct text t;
	long long v;

	if (scalar_text(el, &t, err) < 0)
		return -1;
	int rc = parse_ll(t.p, t.n, &v);
	text_free(&t);
	if (rc < 0)
		return XML_FAIL(err, "bad <%.10s> value", node_name(el));
	return made(json_integer(v), out, err);
}

static int conv_double(xmlNodePtr el, int depth, json_t **out, struct err *err)
{
	struct text t;
	char tmp[256], *end;
	double d = NAN;

	if (scalar_text(el, &t, err) < 0)
		return -1;
	if (t.n && t.n < sizeof tmp &&
	    (t.p[0] == '-' || t.p[0] == '+' || t.p[0] == '.' || (t.p[0] >= '0' && t.p[0] <= '9'))) {
		memcpy(tmp, t.p, t.n);
		tmp[t.n] = '\0';
		d = strtod(tmp, &end);
		if (*end)
			d = NAN;
	}
	text_free(&t);
	if (!isfinite(d))
		return XML_FAIL(err, "bad <double> value");
	return made(json_real(d), out, err);
}

static int conv_boolean(xmlNodePtr el, int depth, json_t **out, struct err *err)
{
	struct text t;
	int v = -1;

	if (scalar_text(el, &t, err) < 0)
		return -1;
	if ((t.n == 1 && t.p[0] == '1') || (t.n == 4 && !memcmp(t.p, "true", 4)))
		v = 1;
	else if ((t.n == 1 && t.p[0] == '0') || (t.n == 5 && !memcmp(t.p, "false", 5)))
		v = 0;
	text_free(&t);
	if (v < 0)
		return XML_FAIL(err, "bad <boolean> value");
	return made(json_integer(v), out, err);
}

static int b64_digit(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Standard alphabet; whitespace anywhere, '=' padding optional but only at
 * the end. Returns the decoded length or -1. */
static long b64_decode(const unsigned char *s, size_t n, unsigned char *out)
{
	unsigned long acc = 0;
	size_t bits = 0, o = 0, digits = 0;
	bool padding = false;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')
			continue;
		if (s[i] == '=') {
			padding = true;
			continue;
		}
		int d = b64_digit(s[i]);
		if (d < 0 || padding)
			return -1;
		acc = (acc << 6 | (unsigned)d) & 0xFFFFFF;
		digits++;
		if ((bits += 6) >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return digits % 4 == 1 ? -1 : (long)o;
}

static int conv_base64(xmlNodePtr el, int depth, json_t **out, struct err *err)
{
	struct text t;

	if (element_text(el, &t, err) < 0)
		return -1;
	unsigned char *bytes = malloc(t.n / 4 * 3 + 3);
	long n = bytes ? b64_decode((const unsigned char *)t.p, t.n, bytes) : -1;
	text_free(&t);
	if (n < 0) {
		free(bytes);
		return bytes ? XML_FAIL(err, "bad <base64> value")
			     : err_set(err, ENOMEM, "XML-RPC parse error: out of memory");
	}
	/* arbitrary bytes by contract: no UTF-8 check */
	json_t *v = json_stringn_nocheck((const char *)bytes, (size_t)n);
	free(bytes);
	drop_children(el);
	return made(v, out, err);
}

static int conv_nil(xmlNodePtr el, int depth, json_t **out, struct err *err)
{
	struct text t;

	if (scalar_text(el, &t, err) < 0)
		return -1;
	size_t n = t.n;
	text_free(&t);
	if (n)
		return XML_FAIL(err, "<nil> is not empty");
	return made(json_null(), out, err);
}

static int check_depth(int depth, struct err *err)
{
	if (depth > RPC_MAX_DEPTH)
		return XML_FAIL(err, "nested deeper than %d levels", RPC_MAX_DEPTH);
	return 0;
}

/* <member>: exactly one <name> and one <value>, in any order. */
static int conv_member(xmlNodePtr m, int depth, json_t *obj, struct err *err)
{
	xmlNodePtr name = NULL, value = NULL;

	for (xmlNodePtr c = m->children; c; c = c->next) {
		int rc = structural(c, m, err);
		if (rc < 0)
			return -1;
		if (rc == 0)
			continue;
		xmlNodePtr *slot = named(c, "name") ? &name : named(c, "value") ? &value : NULL;
		if (!slot || *slot)
			return XML_FAIL(err, "unexpected <%.40s> in <member>", node_name(c));
		*slot = c;
	}
	if (!name || !value)
		return XML_FAIL(err, "<member> without <%s>", name ? "value" : "name");

	struct text key;
	json_t *v;
	if (element_text(name, &key, err) < 0)
		return -1;
	int rc = json_object_getn(obj, key.p, key.n)
		     ? XML_FAIL(err, "duplicate member \"%.40s\"", key.p)
		     : conv_value(value, depth, &v, err);
	if (rc == 0 && json_object_setn_new_nocheck(obj, key.p, key.n, v) < 0)
		rc = err_set(err, ENOMEM, "XML-RPC parse error: out of memory");
	text_free(&key);
	return rc;
}

static int conv_struct(xmlNodePtr el, int depth, json_t **out, struct err *err)
{
	if (check_depth(++depth, err) < 0 || made(json_object(), out, err) < 0)
		return -1;
	for (xmlNodePtr c = el->children; c; c = c->next) {
		int rc = structural(c, el, err);
		if (rc > 0 && !named(c, "member"))
			rc = XML_FAIL(err, "unexpected <%.40s> in <struct>", node_name(c));
		if (rc > 0)
			rc = conv_member(c, depth, *out, err);
		if (rc < 0) {
			json_decref(*out);
			return -1;
		}
	}
	return 0;
}

static int conv_data(xmlNodePtr data, int depth, json_t *arr, struct err *err)
{
	for (xmlNodePtr c = data->children; c; c = c->next) {
		json_t *v;
		int rc = structural(c, data, err);
		if (rc < 0)
			return -1;
		if (rc == 0)
			continue;
		if (!named(c, "value"))
			return XML_FAIL(err, "unexpected <%.40s> in <data>", node_name(c));
		if (conv_value(c, depth, &v, err) < 0)
			return -1;
		if (json_array_append_new(arr, v) < 0)
			return err_set(err, ENOMEM, "XML-RPC parse error: out of memory");
	}
	return 0;
}

/* <array/>, <array><data/></array> or <array><data><value>... */
static int conv_array(xmlNodePtr el, int depth, json_t **out, struct err *err)
{
	bool seen_data = false;

	if (check_depth(++depth, err) < 0 || made(json_array(), out, err) < 0)
		return -1;
	for (xmlNodePtr c = el->children; c; c = c->next) {
		int rc = structural(c, el, err);
		if (rc > 0 && (!named(c, "data") || seen_data))
			rc = XML_FAIL(err, "unexpected <%.40s> in <array>", node_name(c));
		if (rc > 0) {
			seen_data = true;
			rc = conv_data(c, depth, *out, err);
		}
		if (rc < 0) {
			json_decref(*out);
			return -1;
		}
	}
	return 0;
}

typedef int conv_fn(xmlNodePtr el, int depth, json_t **out, struct err *err);

static conv_fn *conv_for(const xmlNode *el)
{
	static const struct {
		const char *name;
		conv_fn *fn;
	} types[] = {
	    {"string", conv_string}, {"int", conv_int},	      {"i4", conv_int},
	    {"i8", conv_int},	     {"double", conv_double}, {"boolean", conv_boolean},
	    {"base64", conv_base64}, {"nil", conv_nil},	      {"struct", conv_struct},
	    {"array", conv_array},
	};
	for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
		if (named(el, types[k].name))
			return types[k].fn;
	return NULL;
}

/* <value>: one typed element amid blanks, or untyped text (a string, kept
 * verbatim including whitespace). depth is the enclosing container's. */
static int conv_value(xmlNodePtr value, int depth, json_t **out, struct err *err)
{
	xmlNodePtr typed = NULL;

	for (xmlNodePtr c = value->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (typed)
			return XML_FAIL(err, "more than one type in <value>");
		typed = c;
	}
	if (!typed)
		return conv_string(value, depth, out, err);
	for (xmlNodePtr c = value->children; c; c = c->next)
		if (structural(c, value, err) < 0)
			return -1;
	conv_fn *fn = conv_for(typed);
	if (!fn)
		return XML_FAIL(err, "unknown value type <%.40s>", node_name(typed));
	return fn(typed, depth, out, err);
}

/* ---- methodCall --------------------------------------------------------- */

static int take_method_name(xmlNodePtr el, struct rpc_request *req, struct err *err)
{
	struct text t;

	if (element_text(el, &t, err) < 0)
		return METHOD_FAIL(err);
	trim(&t);
	if (t.n)
		req->method = strndup(t.p, t.n);
	text_free(&t);
	if (!req->method)
		return METHOD_FAIL(err);
	return 0;
}

/* The first <param> must hold a struct (or PHP's empty array); the rest are
 * not looked at. */
static int take_params(xmlNodePtr params, struct rpc_request *req, struct err *err)
{
	xmlNodePtr param = NULL, value = NULL;

	for (xmlNodePtr c = params->children; c && !param; c = c->next) {
		int rc = structural(c, params, err);
		if (rc < 0)
			return -1;
		if (rc > 0 && !named(c, "param"))
			return XML_FAIL(err, "unexpected <%.40s> in <params>", node_name(c));
		if (rc > 0)
			param = c;
	}
	if (!param)
		return made(json_object(), &req->params, err);
	for (xmlNodePtr c = param->children; c; c = c->next) {
		int rc = structural(c, param, err);
		if (rc < 0)
			return -1;
		if (rc > 0 && (value || !named(c, "value")))
			return XML_FAIL(err, "unexpected <%.40s> in <param>", node_name(c));
		if (rc > 0)
			value = c;
	}
	if (!value)
		return XML_FAIL(err, "<param> without <value>");
	json_t *v;
	if (conv_value(value, 1, &v, err) < 0)
		return -1;
	if (json_is_array(v) && json_array_size(v) == 0) {
		json_decref(v);
		return made(json_object(), &req->params, err);
	}
	if (!json_is_object(v)) {
		json_decref(v);
		return XML_FAIL(err, "the first <param> is not a <struct>");
	}
	req->params = v;
	return 0;
}

static int take_call(xmlNodePtr root, struct rpc_request *req, struct err *err)
{
	xmlNodePtr name = NULL, params = NULL;

	if (!root || !named(root, "methodCall"))
		return XML_FAIL(err, "the root element is not <methodCall>");
	for (xmlNodePtr c = root->children; c; c = c->next) {
		int rc = structural(c, root, err);
		if (rc < 0)
			return -1;
		if (rc == 0)
			continue;
		if (named(c, "methodName") && !name)
			name = c;
		else if (named(c, "methodName"))
			return METHOD_FAIL(err);
		else if (named(c, "params") && !params)
			params = c;
		else
			return XML_FAIL(err, "unexpected <%.40s> in <methodCall>", node_name(c));
	}
	if (!name || take_method_name(name, req, err) < 0)
		return METHOD_FAIL(err);
	if (!params)
		return made(json_object(), &req->params, err);
	return take_params(params, req, err);
}

int rpc_parse_xml(const char *body, size_t len, struct rpc_request *req, struct err *err)
{
	struct feed f = {.in = (const unsigned char *)(body ? body : ""), .len = body ? len : 0};

	memset(req, 0, sizeof *req);
	req->format = RPC_FORMAT_XML;
	xmlInitParser(); /* idempotent; the server should also call it before threads */
	xmlDocPtr doc = read_doc(&f, err);
	if (!doc)
		return -1;
	int rc = take_call(xmlDocGetRootElement(doc), req, err);
	xmlFreeDoc(doc);
	if (rc < 0)
		rpc_request_free(req);
	return rc;
}

/* ---- shared with rpc_result.c (rpc_xml_priv.h) -------------------------- */

xmlDocPtr rpc_xml_read(const char *body, size_t len, struct err *err)
{
	struct feed f = {.in = (const unsigned char *)(body ? body : ""), .len = body ? len : 0};

	xmlInitParser();
	return read_doc(&f, err);
}

int rpc_xml_structural(const xmlNode *c, const xmlNode *parent, struct err *err)
{
	return structural(c, parent, err);
}

int rpc_xml_value(xmlNodePtr value, json_t **out, struct err *err)
{
	return conv_value(value, 1, out, err);
}

int rpc_xml_string(xmlNodePtr el, json_t **out, struct err *err)
{
	return conv_string(el, 0, out, err);
}
