/*
 * rpc_json.c - the JSON-RPC request parser, the typed parameter getters
 * shared by both formats, and the format dispatch (rpc_parse).
 *
 * Choices the contract leaves open, made here:
 *  - Duplicate object keys are rejected (JSON_REJECT_DUPLICATES), at any
 *    depth. PHP's json_encode never produces them, and accepting them would
 *    let two parsers of one body (a proxy, a logger, us) disagree on which
 *    "files" or "method" counts.
 *  - "jsonrpc", when present, must be a string; its value is not checked
 *    (the reference only ever saw "2.0").
 *  - A JSON null "id" counts as absent. A non-integer numeric id is printed
 *    in the shortest form that reads back as the same double.
 */
#include "rpc.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_FAIL(err, ...) err_set(err, EINVAL, "JSON parse error: " __VA_ARGS__)

/*
 * jansson recurses once per nesting level, up to its compiled-in limit of
 * 2048, which is too deep for a small thread stack and far more than an RPC
 * needs. This scan rejects documents nested deeper than RPC_MAX_DEPTH before
 * jansson sees them. It tracks only strings and brackets: exact for valid
 * JSON, and for invalid JSON a wrong answer is harmless because jansson
 * rejects the document anyway.
 */
static bool json_depth_ok(const char *s, size_t n)
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
			if (++depth > RPC_MAX_DEPTH)
				return false;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return true;
}

static char *dup_bytes(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* Shortest %.*g that reads back as d (ids like 1.5 stay "1.5"). */
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

static int take_method(const json_t *v, struct rpc_request *req, struct err *err)
{
	if (!json_is_string(v))
		return JSON_FAIL(err, "\"method\" is not a string");
	size_t n = json_string_length(v);
	if (memchr(json_string_value(v), '\0', n))
		return JSON_FAIL(err, "\"method\" contains a NUL byte");
	req->method = dup_bytes(json_string_value(v), n);
	return req->method ? 0 : err_set(err, ENOMEM, "out of memory");
}

static int take_params(json_t *v, struct rpc_request *req, struct err *err)
{
	if (json_is_object(v)) {
		req->params = json_incref(v);
	} else if (json_is_array(v) && json_array_size(v) == 0) {
		req->params = json_object(); /* PHP's empty map */
		if (!req->params)
			return err_set(err, ENOMEM, "out of memory");
	} else {
		return JSON_FAIL(err, "\"params\" is not an object");
	}
	return 0;
}

static int take_id(const json_t *v, struct rpc_request *req, struct err *err)
{
	switch (json_typeof(v)) {
	case JSON_NULL:
		return 0;
	case JSON_STRING:
		if (memchr(json_string_value(v), '\0', json_string_length(v)))
			return JSON_FAIL(err, "\"id\" contains a NUL byte");
		req->id = dup_bytes(json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		if (asprintf(&req->id, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0)
			req->id = NULL;
		break;
	case JSON_REAL:
		req->id = real_to_text(json_real_value(v));
		break;
	default:
		return JSON_FAIL(err, "\"id\" is not a string or number");
	}
	return req->id ? 0 : err_set(err, ENOMEM, "out of memory");
}

static int take_root(json_t *root, struct rpc_request *req, struct err *err)
{
	const char *key;
	json_t *v;

	if (!json_is_object(root))
		return JSON_FAIL(err, "root is not an object");
	json_object_foreach(root, key, v)
	{
		int rc;
		if (!strcmp(key, "method"))
			rc = take_method(v, req, err);
		else if (!strcmp(key, "params"))
			rc = take_params(v, req, err);
		else if (!strcmp(key, "id"))
			rc = take_id(v, req, err);
		else if (!strcmp(key, "jsonrpc"))
			rc = json_is_string(v) ? 0 : JSON_FAIL(err, "\"jsonrpc\" is not a string");
		else
			rc = JSON_FAIL(err, "unexpected member \"%.40s\"", key);
		if (rc < 0)
			return -1;
	}
	if (!req->method)
		return JSON_FAIL(err, "missing \"method\"");
	if (!req->params)
		return JSON_FAIL(err, "missing \"params\"");
	return 0;
}

int rpc_parse_json(const char *body, size_t len, struct rpc_request *req, struct err *err)
{
	json_error_t jerr;

	memset(req, 0, sizeof *req);
	req->format = RPC_FORMAT_JSON;
	if (!body)
		body = "";
	if (!json_depth_ok(body, len))
		return JSON_FAIL(err, "nested deeper than %d levels", RPC_MAX_DEPTH);
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!root)
		return JSON_FAIL(err, "%s at line %d column %d", jerr.text, jerr.line, jerr.column);
	int rc = take_root(root, req, err);
	json_decref(root);
	if (rc < 0)
		rpc_request_free(req);
	return rc;
}

void rpc_request_free(struct rpc_request *req)
{
	if (!req)
		return;
	free(req->method);
	free(req->id);
	json_decref(req->params);
	req->method = NULL;
	req->id = NULL;
	req->params = NULL;
}

/* Whitespace to both XML (S) and JSON (ws); \f and \v are neither. */
static bool is_ascii_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int rpc_parse(const char *body, size_t len, struct rpc_request *req, struct err *err)
{
	size_t i = 0;

	while (i < len && is_ascii_space(body[i]))
		i++;
	/* libxml2 wants the declaration at offset 0, so XML gets the body from
	 * the '<' on; JSON gets all of it so error positions match the body. */
	if (i < len && body[i] == '<')
		return rpc_parse_xml(body + i, len - i, req, err);
	return rpc_parse_json(body, len, req, err);
}

/* Optional sign, then one or more decimal digits, nothing else. */
static int decimal_to_ll(const char *s, size_t n, long long *out)
{
	size_t i = 0;
	bool neg = false;
	unsigned long long v = 0;

	if (n && (s[0] == '+' || s[0] == '-'))
		neg = s[i++] == '-';
	if (i == n)
		return -1;
	/* |LLONG_MIN| = LLONG_MAX + 1 */
	unsigned long long limit = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (limit - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (neg)
		*out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
	else
		*out = (long long)v;
	return 1;
}

int rpc_json_to_int(const json_t *v, long long *out)
{
	double d;

	if (!v)
		return 0;
	switch (json_typeof(v)) {
	case JSON_NULL:
		return 0;
	case JSON_INTEGER:
		*out = json_integer_value(v);
		return 1;
	case JSON_REAL:
		d = json_real_value(v);
		/* -2^63 <= d < 2^63, so the truncation is defined */
		if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
			return -1;
		*out = (long long)d;
		return 1;
	case JSON_TRUE:
		*out = 1;
		return 1;
	case JSON_FALSE:
		*out = 0;
		return 1;
	case JSON_STRING:
		return decimal_to_ll(json_string_value(v), json_string_length(v), out);
	default:
		return -1;
	}
}

static json_t *param(const struct rpc_request *req, const char *name)
{
	return req && json_is_object(req->params) ? json_object_get(req->params, name) : NULL;
}

int rpc_get_int(const struct rpc_request *req, const char *name, long long *out, struct err *err)
{
	int rc = rpc_json_to_int(param(req, name), out);
	if (rc < 0)
		return err_set(err, EINVAL, "parameter \"%s\" is not a usable integer", name);
	return rc;
}

int rpc_get_str(const struct rpc_request *req, const char *name, const char **s, size_t *len,
		struct err *err)
{
	const json_t *v = param(req, name);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return err_set(err, EINVAL, "parameter \"%s\" is not a string", name);
	*s = json_string_value(v);
	*len = json_string_length(v);
	return 1;
}

int rpc_get_map(const struct rpc_request *req, const char *name, json_t **obj, struct err *err)
{
	json_t *v = param(req, name);

	if (!v || json_is_null(v))
		return 0;
	if (json_is_array(v) && json_array_size(v) == 0) {
		/* Replace PHP's [] by {} in place so the caller gets a borrowed
		 * object that lives as long as req, like any other map. */
		v = json_object();
		if (!v || json_object_set_new(req->params, name, v) < 0)
			return err_set(err, ENOMEM, "out of memory");
	}
	if (!json_is_object(v))
		return err_set(err, EINVAL, "parameter \"%s\" is not a map", name);
	*obj = v;
	return 1;
}
