/*
 * rpc_result.c - response bodies back into members (rpc_result.h).
 *
 * JSON goes through jansson like requests do (duplicates rejected, NUL
 * bytes in strings allowed). XML goes through rpc_xml.c's hardened reader
 * and value converter (rpc_xml_priv.h), so a response's text is decoded
 * exactly as a request's: raw CRs kept (rpc_encode writes them raw), the
 * &#NNN; byte rule, and the same DTD, entity and depth limits.
 *
 * Everything accepted must encode back to itself, which is why strings and
 * names are held to what rpc_encode() writes unchanged (valid UTF-8 in
 * JSON, which jansson enforces; rpc_xml_text_ok() in XML, where a byte
 * reference could otherwise smuggle in a U+FFFE that the encoder drops).
 */
#include "rpc_result.h"
#include "rpc_call.h"
#include "rpc_xml_priv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#define JSON_FAIL(err, ...) err_set(err, EINVAL, "JSON parse error: " __VA_ARGS__)
#define XML_FAIL(err, ...)  err_set(err, EINVAL, "XML-RPC parse error: " __VA_ARGS__)

/* ---- members ------------------------------------------------------------ */

static char *dup_bytes(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		if (n)
			memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static void member_free(struct rpc_member *m)
{
	free((void *)m->name);
	free((void *)m->s);
	*m = (struct rpc_member){.name = NULL};
}

void rpc_result_free(struct rpc_result *res)
{
	if (!res)
		return;
	for (size_t k = 0; k < res->n; k++)
		member_free(&res->members[k]);
	free(res->members);
	free(res->id);
	res->members = NULL;
	res->n = 0;
	res->id = NULL;
}

static int result_fail(const struct rpc_result *res, struct err *err, const char *why,
		       const char *name)
{
	return err_set(err, EINVAL, "%s parse error: %s \"%.40s\"",
		       res->format == RPC_FORMAT_XML ? "XML-RPC" : "JSON", why, name);
}

/* Appends a member, copying name and string (s is NULL for an int). */
static int add_member(struct rpc_result *res, const char *name, enum rpc_type type, const char *s,
		      size_t slen, long long i, struct err *err)
{
	if (res->n == RPC_RESULT_MAX_MEMBERS)
		return result_fail(res, err, "too many members, at", name);
	for (size_t k = 0; k < res->n; k++)
		if (!strcmp(res->members[k].name, name))
			return result_fail(res, err, "duplicate member", name);
	struct rpc_member *grown = realloc(res->members, (res->n + 1) * sizeof *grown);
	if (!grown)
		return err_set(err, ENOMEM, "out of memory");
	res->members = grown;
	struct rpc_member m = {.name = strdup(name), .type = type, .slen = slen, .i = i};
	if (type == RPC_T_STR)
		m.s = dup_bytes(s, slen);
	if (!m.name || (type == RPC_T_STR && !m.s)) {
		member_free(&m);
		return err_set(err, ENOMEM, "out of memory");
	}
	res->members[res->n++] = m;
	return 0;
}

/*
 * d as an int64 that rpc_encode() writes back as the same %.0f text: d must
 * be integral and within [-2^63, 2^63]. 2^63 itself is what the encoder
 * writes for INT64_MAX ((double)INT64_MAX rounds up), so it reads as that.
 */
static int integral(double d, long long *out)
{
	if (!(d >= -9223372036854775808.0 && d <= 9223372036854775808.0))
		return -1;
	if (d == 9223372036854775808.0) {
		*out = INT64_MAX;
		return 0;
	}
	if ((double)(long long)d != d)
		return -1;
	*out = (long long)d;
	return 0;
}

/* ---- JSON --------------------------------------------------------------- */

/* jansson recurses once per nesting level; a response is two levels deep
 * (root, result), so deeper documents are refused before jansson sees them.
 * The scan is rpc_json.c's: exact for valid JSON, harmless for the rest. */
static bool json_shallow(const char *s, size_t n)
{
	int depth = 0;
	size_t i = 0;

	while (i < n) {
		char c = s[i++];
		if (c == '"') {
			while (i < n && s[i] != '"')
				i += s[i] == '\\' ? 2 : 1;
			i++;
		} else if (c == '{' || c == '[') {
			if (++depth > 2)
				return false;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return true;
}

/* Shortest %.*g that reads back as d, as rpc_json.c prints numeric ids. */
static char *real_to_text(double d)
{
	char tmp[40];

	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	return strdup(tmp);
}

static int json_take_id(const json_t *v, struct rpc_result *res, struct err *err)
{
	switch (json_typeof(v)) {
	case JSON_NULL:
		return 0;
	case JSON_STRING:
		if (memchr(json_string_value(v), '\0', json_string_length(v)))
			return JSON_FAIL(err, "\"id\" contains a NUL byte");
		res->id = dup_bytes(json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		if (asprintf(&res->id, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0)
			res->id = NULL;
		break;
	case JSON_REAL:
		res->id = real_to_text(json_real_value(v));
		break;
	default:
		return JSON_FAIL(err, "\"id\" is not a string or number");
	}
	return res->id ? 0 : err_set(err, ENOMEM, "out of memory");
}

static int json_take_member(struct rpc_result *res, const char *key, const json_t *v,
			    struct err *err)
{
	long long i;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return add_member(res, key, RPC_T_STR, json_string_value(v), json_string_length(v),
				  0, err);
	case JSON_INTEGER:
		i = json_integer_value(v);
		break;
	case JSON_TRUE:
		i = 1;
		break;
	case JSON_FALSE:
		i = 0;
		break;
	case JSON_REAL:
		if (integral(json_real_value(v), &i) < 0)
			return JSON_FAIL(err, "member \"%.40s\" is not an integral number", key);
		break;
	default:
		return JSON_FAIL(err, "member \"%.40s\" is not a string or number", key);
	}
	return add_member(res, key, RPC_T_INT, NULL, 0, i, err);
}

static int json_take_result(json_t *obj, struct rpc_result *res, struct err *err)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return JSON_FAIL(err, "\"result\" is not an object");
	/* jansson refuses NUL bytes in keys, so key is the whole name */
	json_object_foreach(obj, key, v)
	{
		if (json_take_member(res, key, v, err) < 0)
			return -1;
	}
	return 0;
}

static int json_take_root(json_t *root, struct rpc_result *res, struct err *err)
{
	const char *key;
	json_t *v;
	bool seen_result = false;

	if (!json_is_object(root))
		return JSON_FAIL(err, "root is not an object");
	json_object_foreach(root, key, v)
	{
		int rc;
		if (!strcmp(key, "result")) {
			rc = json_take_result(v, res, err);
			seen_result = true;
		} else if (!strcmp(key, "id"))
			rc = json_take_id(v, res, err);
		else if (!strcmp(key, "jsonrpc"))
			rc = json_is_string(v) ? 0 : JSON_FAIL(err, "\"jsonrpc\" is not a string");
		else if (!strcmp(key, "error"))
			rc = JSON_FAIL(err, "the response is a JSON-RPC error");
		else
			rc = JSON_FAIL(err, "unexpected member \"%.40s\"", key);
		if (rc < 0)
			return -1;
	}
	return seen_result ? 0 : JSON_FAIL(err, "missing \"result\"");
}

static int json_result(const char *body, size_t len, struct rpc_result *res, struct err *err)
{
	json_error_t jerr;

	if (!json_shallow(body, len))
		return JSON_FAIL(err, "nested values in a response");
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!root)
		return JSON_FAIL(err, "%s at line %d column %d", jerr.text, jerr.line, jerr.column);
	int rc = json_take_root(root, res, err);
	json_decref(root);
	return rc;
}

/* ---- XML ---------------------------------------------------------------- */

static const char *node_name(const xmlNode *n)
{
	return (const char *)n->name;
}

static bool named(const xmlNode *n, const char *name)
{
	return !strcmp(node_name(n), name);
}

/* The one element inside el (blanks, comments and PIs aside). */
static int only_child(xmlNodePtr el, xmlNodePtr *out, struct err *err)
{
	*out = NULL;
	for (xmlNodePtr c = el->children; c; c = c->next) {
		int rc = rpc_xml_structural(c, el, err);
		if (rc < 0)
			return -1;
		if (rc == 0)
			continue;
		if (*out)
			return XML_FAIL(err, "more than one element in <%.40s>", node_name(el));
		*out = c;
	}
	return *out ? 0 : XML_FAIL(err, "nothing inside <%.40s>", node_name(el));
}

/* methodResponse/params/param/struct (the reference layout), or with a
 * <value> around the struct (standard XML-RPC). */
static int find_struct(xmlNodePtr root, xmlNodePtr *st, struct err *err)
{
	xmlNodePtr params, param, v;

	if (!root || !named(root, "methodResponse"))
		return XML_FAIL(err, "the root element is not <methodResponse>");
	if (only_child(root, &params, err) < 0)
		return -1;
	if (named(params, "fault"))
		return XML_FAIL(err, "the response is a fault");
	if (!named(params, "params"))
		return XML_FAIL(err, "unexpected <%.40s> in <methodResponse>", node_name(params));
	if (only_child(params, &param, err) < 0)
		return -1;
	if (!named(param, "param"))
		return XML_FAIL(err, "unexpected <%.40s> in <params>", node_name(param));
	if (only_child(param, &v, err) < 0)
		return -1;
	if (named(v, "value") && only_child(v, &v, err) < 0)
		return -1;
	if (!named(v, "struct"))
		return XML_FAIL(err, "the result is not a <struct>");
	*st = v;
	return 0;
}

/* The types a result member may have: those rpc_encode() writes or that
 * map onto them without loss. */
static int check_type(xmlNodePtr value, const char *name, struct err *err)
{
	static const char *const ok[] = {"string", "int", "i4", "i8", "double", "boolean"};

	for (xmlNodePtr c = value->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++)
			if (named(c, ok[k]))
				return 0;
		return XML_FAIL(err, "member \"%.40s\" has type <%.40s>", name, node_name(c));
	}
	return 0; /* untyped: a string */
}

static int xml_take_value(struct rpc_result *res, const char *name, xmlNodePtr value,
			  struct err *err)
{
	json_t *v;
	long long i;
	int rc;

	if (check_type(value, name, err) < 0 || rpc_xml_value(value, &v, err) < 0)
		return -1;
	if (json_is_string(v) && !rpc_xml_text_ok(json_string_value(v), json_string_length(v)))
		rc = result_fail(res, err, "characters XML cannot carry in member", name);
	else if (json_is_string(v))
		rc = add_member(res, name, RPC_T_STR, json_string_value(v), json_string_length(v),
				0, err);
	else if (json_is_integer(v))
		rc = add_member(res, name, RPC_T_INT, NULL, 0, json_integer_value(v), err);
	else if (json_is_real(v) && integral(json_real_value(v), &i) == 0)
		rc = add_member(res, name, RPC_T_INT, NULL, 0, i, err);
	else
		rc = result_fail(res, err, "not an integral number in member", name);
	json_decref(v);
	return rc;
}

/* <member>: exactly one <name> and one <value>, in any order. */
static int xml_take_member(struct rpc_result *res, xmlNodePtr m, struct err *err)
{
	xmlNodePtr name = NULL, value = NULL;
	json_t *key;

	for (xmlNodePtr c = m->children; c; c = c->next) {
		int rc = rpc_xml_structural(c, m, err);
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
	if (rpc_xml_string(name, &key, err) < 0)
		return -1;
	/* XML text never holds NUL, so the name is a C string */
	const char *k = json_string_value(key);
	int rc = rpc_xml_text_ok(k, json_string_length(key))
		     ? xml_take_value(res, k, value, err)
		     : result_fail(res, err, "characters XML cannot carry in member name", k);
	json_decref(key);
	return rc;
}

static int xml_take_struct(struct rpc_result *res, xmlNodePtr st, struct err *err)
{
	for (xmlNodePtr c = st->children; c; c = c->next) {
		int rc = rpc_xml_structural(c, st, err);
		if (rc > 0 && !named(c, "member"))
			rc = XML_FAIL(err, "unexpected <%.40s> in <struct>", node_name(c));
		if (rc > 0)
			rc = xml_take_member(res, c, err);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int xml_result(const char *body, size_t len, struct rpc_result *res, struct err *err)
{
	xmlDocPtr doc = rpc_xml_read(body, len, err);
	xmlNodePtr st = NULL;

	if (!doc)
		return -1;
	int rc = find_struct(xmlDocGetRootElement(doc), &st, err);
	if (rc == 0)
		rc = xml_take_struct(res, st, err);
	xmlFreeDoc(doc);
	return rc;
}

/* ---- entry points ------------------------------------------------------- */

int rpc_parse_result(const char *body, size_t len, struct rpc_result *res, struct err *err)
{
	size_t i = 0;
	int rc;

	memset(res, 0, sizeof *res);
	if (!body) {
		body = "";
		len = 0;
	}
	/* as rpc_parse: ASCII whitespace, then '<' means XML */
	while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r'))
		i++;
	if (i < len && body[i] == '<') {
		res->format = RPC_FORMAT_XML;
		rc = xml_result(body + i, len - i, res, err);
	} else {
		res->format = RPC_FORMAT_JSON;
		rc = json_result(body, len, res, err);
	}
	if (rc < 0)
		rpc_result_free(res);
	return rc;
}

static struct rpc_member *find(const struct rpc_result *res, const char *name)
{
	for (size_t k = 0; res && name && k < res->n; k++)
		if (!strcmp(res->members[k].name, name))
			return &res->members[k];
	return NULL;
}

const struct rpc_member *rpc_result_get(const struct rpc_result *res, const char *name)
{
	return find(res, name);
}

int rpc_result_set_str(struct rpc_result *res, const char *name, const char *s, size_t len,
		       struct err *err)
{
	struct rpc_member *m = find(res, name);

	if (!m)
		return 0;
	char *copy = dup_bytes(s, s ? len : 0);
	if (!copy)
		return err_set(err, ENOMEM, "out of memory");
	free((void *)m->s);
	m->type = RPC_T_STR;
	m->s = copy;
	m->slen = s ? len : 0;
	m->i = 0;
	return 1;
}

int rpc_result_set_int(struct rpc_result *res, const char *name, long long v, struct err *err)
{
	struct rpc_member *m = find(res, name);

	if (!m)
		return 0;
	free((void *)m->s);
	m->type = RPC_T_INT;
	m->s = NULL;
	m->slen = 0;
	m->i = v;
	return 1;
}
