/*
 * fuzz_json.c - libFuzzer target: rpc_parse_json, then every getter on every
 * parameter, then rpc_encode of what was read in both formats.
 *
 * Besides crashes, leaks and sanitizer reports it checks these invariants
 * (abort() on violation):
 *  - a successful parse gives a method and an object of params;
 *  - the getters answer -1/0/1 and set a message with -1;
 *  - the JSON response always reparses (jansson), and every string that was
 *    valid UTF-8 comes back byte for byte, every int exactly;
 *  - the XML response is always well-formed (libxml2), and every string
 *    comes back as the input minus what the contract drops (invalid UTF-8,
 *    control bytes, U+FFFE/U+FFFF) and with XML's CR normalization.
 *
 * fuzz_xml.c is this file with FUZZ_PARSE set to rpc_parse_xml.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "rpc.h"

#ifndef FUZZ_PARSE
#define FUZZ_PARSE  rpc_parse_json
#define FUZZ_FORMAT RPC_FORMAT_JSON
#endif

#define MAX_MEMBERS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz invariant violated: %s\n", what);
		abort();
	}
}

struct members {
	struct rpc_member m[MAX_MEMBERS];
	char names[MAX_MEMBERS][8];
	size_t n;
};

static void add(struct members *ms, enum rpc_type t, const char *s, size_t slen, long long i)
{
	if (ms->n == MAX_MEMBERS)
		return;
	struct rpc_member *m = &ms->m[ms->n];
	snprintf(ms->names[ms->n], sizeof ms->names[0], "m%zu", ms->n);
	*m = (struct rpc_member){.name = ms->names[ms->n], .type = t, .s = s, .slen = slen, .i = i};
	ms->n++;
}

/* Reads one parameter every way the handlers can. */
static void read_param(const struct rpc_request *req, const char *key, struct members *ms)
{
	struct err e = {0};
	long long i;
	const char *s;
	size_t n;
	json_t *map;
	const char *k;
	json_t *v;

	int rc = rpc_get_int(req, key, &i, &e);
	check(rc >= -1 && rc <= 1 && (rc >= 0 || e.msg[0]), "rpc_get_int result");
	if (rc == 1)
		add(ms, RPC_T_INT, NULL, 0, i);
	e.msg[0] = '\0';
	rc = rpc_get_str(req, key, &s, &n, &e);
	check(rc >= -1 && rc <= 1 && (rc >= 0 || e.msg[0]), "rpc_get_str result");
	if (rc == 1)
		add(ms, RPC_T_STR, s, n, 0);
	e.msg[0] = '\0';
	rc = rpc_get_map(req, key, &map, &e);
	check(rc >= -1 && rc <= 1 && (rc >= 0 || e.msg[0]), "rpc_get_map result");
	if (rc != 1)
		return;
	check(json_is_object(map), "rpc_get_map gives an object");
	json_object_foreach(map, k, v)
	{
		rc = rpc_json_to_int(v, &i);
		check(rc >= -1 && rc <= 1, "rpc_json_to_int result");
		if (json_is_string(v))
			add(ms, RPC_T_STR, json_string_value(v), json_string_length(v), 0);
	}
}

static int valid_utf8(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n); /* jansson validates UTF-8 */
	json_decref(j);
	return j != NULL;
}

static void check_json_response(const struct buf *out, const struct members *ms)
{
	json_error_t je;
	json_t *root = json_loadb(out->data, out->len, JSON_ALLOW_NUL, &je);
	check(root != NULL, "JSON response reparses");
	json_t *res = json_object_get(root, "result");
	check(json_object_size(res) == ms->n, "JSON response has every member");
	for (size_t k = 0; k < ms->n; k++) {
		const struct rpc_member *m = &ms->m[k];
		json_t *v = json_object_get(res, m->name);
		if (m->type == RPC_T_INT) {
			check(json_is_integer(v) && json_integer_value(v) == m->i, "JSON int");
		} else if (valid_utf8(m->s, m->slen)) {
			check(json_is_string(v) && json_string_length(v) == m->slen &&
				  !memcmp(json_string_value(v), m->s, m->slen),
			      "JSON string round trip");
		}
	}
	json_decref(root);
}

/* What an XML reader must see for s: the encoder's drops, then XML's
 * end-of-line normalization (CR LF and lone CR become LF). */
static char *xml_expected(const char *s, size_t n, size_t *outlen)
{
	const unsigned char *p = (const unsigned char *)s;
	char *o = malloc(n + 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == 0xEF && i + 2 < n && p[i + 1] == 0xBF && p[i + 2] >= 0xBE) {
			i += 2;
		} else if (p[i] == '\r') {
			o[k++] = '\n';
			if (i + 1 < n && p[i + 1] == '\n')
				i++;
		} else if (p[i] >= 0x20 || p[i] == '\t' || p[i] == '\n') {
			o[k++] = (char)p[i];
		}
	}
	*outlen = k;
	return o;
}

static void check_xml_response(const struct buf *out, const struct members *ms)
{
	xmlDocPtr doc = xmlReadMemory(out->data, (int)out->len, NULL, "UTF-8",
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	check(doc != NULL, "XML response is well-formed");
	xmlNodePtr n = xmlDocGetRootElement(doc);
	check(n && !strcmp((const char *)n->name, "methodResponse"), "XML root");
	/* methodResponse/params/param/struct/member* */
	for (int d = 0; d < 3 && n; d++) {
		n = n->children;
		while (n && n->type != XML_ELEMENT_NODE)
			n = n->next;
	}
	check(n && !strcmp((const char *)n->name, "struct"), "XML struct");
	size_t k = 0;
	for (xmlNodePtr m = n->children; m; m = m->next) {
		if (m->type != XML_ELEMENT_NODE)
			continue;
		check(k < ms->n, "XML member count");
		xmlNodePtr value =
		    m->children ? m->children->next ? m->children->next->next : NULL : NULL;
		check(value && !strcmp((const char *)value->name, "value"), "XML <value>");
		const struct rpc_member *rm = &ms->m[k++];
		if (rm->type == RPC_T_STR && valid_utf8(rm->s, rm->slen)) {
			xmlChar *text = xmlNodeGetContent(value);
			size_t wl;
			char *want = xml_expected(rm->s, rm->slen, &wl);
			size_t tl = text ? strlen((const char *)text) : 0;
			check(tl == wl && !memcmp(text ? (const char *)text : "", want, wl),
			      "XML string round trip");
			free(want);
			xmlFree(text);
		}
	}
	check(k == ms->n, "XML member count");
	xmlFreeDoc(doc);
}

static void encode_both(const struct rpc_request *req, const struct members *ms)
{
	struct buf out;
	struct err e = {0};

	buf_init(&out, 64u << 20);
	check(rpc_encode(&out, RPC_FORMAT_JSON, req->id, ms->m, ms->n, &e) == 0, "encode JSON");
	check_json_response(&out, ms);
	buf_reset(&out);
	check(rpc_encode(&out, RPC_FORMAT_XML, req->id, ms->m, ms->n, &e) == 0, "encode XML");
	check_xml_response(&out, ms);
	buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rpc_request req;
	struct err e = {0};
	struct members ms = {.n = 0};
	const char *keys[MAX_MEMBERS];
	size_t nkeys = 0;
	const char *key;
	json_t *v;

	if (FUZZ_PARSE((const char *)data, size, &req, &e) != 0) {
		check(e.msg[0] && !req.method && !req.params, "failure leaves an empty request");
		return 0;
	}
	check(req.format == FUZZ_FORMAT, "format");
	check(req.method && json_is_object(req.params), "method and params");
	check(FUZZ_FORMAT == RPC_FORMAT_JSON || !req.id, "no id in XML-RPC");
	/* keys first: rpc_get_map may replace [] by {} in params */
	json_object_foreach(req.params, key, v)
	{
		if (nkeys < MAX_MEMBERS)
			keys[nkeys++] = key;
	}
	add(&ms, RPC_T_STR, req.method, strlen(req.method), 0);
	if (req.id)
		add(&ms, RPC_T_STR, req.id, strlen(req.id), 0);
	for (size_t k = 0; k < nkeys; k++) {
		add(&ms, RPC_T_STR, keys[k], strlen(keys[k]), 0);
		read_param(&req, keys[k], &ms);
	}
	encode_both(&req, &ms);
	rpc_request_free(&req);
	return 0;
}
