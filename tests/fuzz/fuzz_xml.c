/*
 * fuzz_xml.c - libFuzzer target: rpc_parse_xml, the getters and rpc_encode.
 * The harness and its invariants are fuzz_json.c's; only the parser differs.
 */
#define FUZZ_PARSE  rpc_parse_xml
#define FUZZ_FORMAT RPC_FORMAT_XML
#include "fuzz_json.c"
