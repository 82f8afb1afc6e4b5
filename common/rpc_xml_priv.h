/*
 * rpc_xml_priv.h - the pieces of the XML-RPC request parser (rpc_xml.c)
 * that rpc_result.c reuses to read XML-RPC responses. Internal to common/:
 * not for the servers.
 *
 * rpc_xml_read() parses a whole body with the request parser's hardening
 * (no DTD, no entities but the predefined five, no network, element nesting
 * capped, the &#NNN; byte rule and raw CRs kept; see rpc_xml.c). The caller
 * frees the document with xmlFreeDoc(); on failure it returns NULL with
 * *err set ("XML-RPC parse error: ..."). The converters below may modify
 * the tree (they free text nodes once converted).
 */
#ifndef VC_RPC_XML_PRIV_H
#define VC_RPC_XML_PRIV_H

#include <jansson.h>
#include <libxml/tree.h>

#include "err.h"

xmlDocPtr rpc_xml_read(const char *body, size_t len, struct err *err);

/* A child c of a structural element: 1 = an element, 0 = skip (blank text,
 * comment, PI; a raw CR counts as blank), -1 = anything else, *err set. */
int rpc_xml_structural(const xmlNode *c, const xmlNode *parent, struct err *err);

/* A <value> element as rpc.h maps it (new reference in *out). */
int rpc_xml_value(xmlNodePtr value, json_t **out, struct err *err);

/* The decoded text of el (text only, no child elements) as a JSON string. */
int rpc_xml_string(xmlNodePtr el, json_t **out, struct err *err);

#endif
