/*
 * http_reply.h - complete HTTP/1.1 responses, byte for byte as the reference
 * server writes them (vpl-jail-protocol.md §1.4, §1.6):
 *
 *   HTTP/1.1 <code> <text>\r\n
 *   Server: vpl-jail-system <version>\r\n
 *   Connection: close\r\n
 *   <extra headers>
 *   Content-Length: <n>\r\n
 *   [Strict-Transport-Security: max-age=<n>\r\n]   (HTTPS only)
 *   Content-Type: <type>; charset=utf-8\r\n
 *   \r\n<body>
 *
 * The version passes the plugin's string compare (>= "4.0.3") and names us.
 * Every response closes the connection, as the protocol says.
 */
#ifndef VC_HTTP_REPLY_H
#define VC_HTTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define VPL_SERVER_HEADER "vpl-jail-system 5.0.1-vplcell"

struct http_reply_opts {
	bool tls;
	long long hsts_max_age; /* < 0: no HSTS header */
	bool head_only;		/* HEAD: headers without the body */
};

const char *http_status_text(int status);
const char *http_content_type(const char *body, size_t len);

/* extra: "" or complete header lines, each ending in \r\n. */
int http_reply(struct buf *out, const struct http_reply_opts *o, int status, const char *extra,
	       const char *body, size_t len, struct err *err);

/* The reference's small HTML error page; detail is HTML-escaped. */
int http_reply_error(struct buf *out, const struct http_reply_opts *o, int status,
		     const char *detail, struct err *err);

#endif
