#include "http_reply.h"

#include <string.h>

const char *http_status_text(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 302:
		return "Found";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not found";
	case 405:
		return "Method not allowed";
	case 408:
		return "Request Time-out";
	case 413:
		return "Request Entity Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Time-out";
	case 505:
		return "HTTP Version Not Supported";
	case 431:
		return "Request Header Fields Too Large";
	}
	return "Error";
}

static bool starts_with(const char *s, size_t len, const char *prefix)
{
	size_t pl = strlen(prefix);
	return len >= pl && strncasecmp(s, prefix, pl) == 0;
}

const char *http_content_type(const char *body, size_t len)
{
	if (starts_with(body, len, "<?xml "))
		return "text/xml";
	if (len && body[0] == '{')
		return "application/json";
	if (starts_with(body, len, "<svg") || starts_with(body, len, "<!DOCTYPE svg"))
		return "image/svg+xml";
	if (starts_with(body, len, "<html") || starts_with(body, len, "<!DOCTYPE html"))
		return "text/html";
	return "text/plain";
}

int http_reply(struct buf *out, const struct http_reply_opts *o, int status, const char *extra,
	       const char *body, size_t len, struct err *err)
{
	if (buf_printf(out, err,
		       "HTTP/1.1 %d %s\r\nServer: " VPL_SERVER_HEADER
		       "\r\nConnection: close\r\n%sContent-Length: %zu\r\n",
		       status, http_status_text(status), extra ? extra : "", len) < 0)
		return -1;
	if (o->tls && o->hsts_max_age >= 0 &&
	    buf_printf(out, err, "Strict-Transport-Security: max-age=%lld\r\n", o->hsts_max_age) <
		0)
		return -1;
	if (buf_printf(out, err, "Content-Type: %s; charset=utf-8\r\n\r\n",
		       http_content_type(body, len)) < 0)
		return -1;
	if (!o->head_only && buf_append(out, body, len, err) < 0)
		return -1;
	return 0;
}

static int append_escaped(struct buf *b, const char *s, struct err *err)
{
	for (; *s; s++) {
		const char *rep = NULL;
		switch (*s) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		}
		int r = rep ? buf_puts(b, rep, err) : buf_append(b, s, 1, err);
		if (r < 0)
			return -1;
	}
	return 0;
}

int http_reply_error(struct buf *out, const struct http_reply_opts *o, int status,
		     const char *detail, struct err *err)
{
	struct buf body;
	buf_init(&body, 16384);
	const char *text = http_status_text(status);
	int r = -1;
	if (buf_printf(&body, err, "<html><head><title>%s</title></head><body><h2>%s</h2><h3>",
		       text, text) == 0 &&
	    append_escaped(&body, detail, err) == 0 &&
	    buf_puts(&body, "</h3></body></html>", err) == 0)
		r = http_reply(out, o, status, NULL, body.data, body.len, err);
	buf_free(&body);
	return r;
}
