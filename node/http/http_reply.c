/* http_reply.c - responses, header and query lookup, status texts. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "http_private.h"

const char *http_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 207: return "Multi-Status";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 423: return "Locked";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Unknown";
	}
}

/* Write status line, the layer's headers, extra headers and the body. */
void http_write_response(tern_conn *c, int status, const char *content_type, const tbuf *extra,
			 int keep_alive, const void *body, size_t len)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	if (strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
		date[0] = '\0';
	tbuf out = TBUF_INIT;
	tbuf_appendf(&out, "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Length: %zu\r\n", status,
		     http_status_text(status), date, len);
	if (content_type != NULL && content_type[0] != '\0')
		tbuf_appendf(&out, "Content-Type: %s\r\n", content_type);
	tbuf_appendf(&out, "Connection: %s\r\n", keep_alive ? "keep-alive" : "close");
	if (extra != NULL && extra->len > 0)
		tbuf_append(&out, extra->data, extra->len);
	tbuf_append(&out, "\r\n", 2);
	if (len > 0)
		tbuf_append(&out, body, len);
	tern_conn_write(c, out.data, out.len);
	tbuf_free(&out);
}

const char *http_header_get(const http_request *req, const char *name)
{
	for (unsigned i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

char *http_query_param(const http_request *req, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = req->query ? req->query : "";
	while (*p != '\0') {
		const char *end = strchr(p, '&');
		size_t plen = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', plen);
		size_t klen = eq ? (size_t)(eq - p) : plen;
		if (klen == nlen && memcmp(p, name, nlen) == 0) {
			char *v = NULL;
			const char *val = eq ? eq + 1 : p + plen;
			size_t vlen = (size_t)(p + plen - val);
			if (http_percent_decode(val, vlen, 1, &v) < 0)
				return NULL;
			return v;
		}
		p += plen;
		if (*p == '&')
			p++;
	}
	return NULL;
}

void http_add_header(http_request *req, const char *name, const char *value)
{
	http_req_priv *r = (http_req_priv *)req;
	/* No CR/LF may reach the wire from a header value. */
	if (strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL)
		return;
	tbuf_appendf(&r->reply_headers, "%s: %s\r\n", name, value);
}

void http_reply(http_request *req, int status, const char *content_type, const void *body, size_t len)
{
	http_req_priv *r = (http_req_priv *)req;
	http_session *s = r->sess;
	if (s == NULL || s->closed) {
		http_req_priv_free(&r);
		return;
	}
	int keep = req->keep_alive && !s->failed;
	http_write_response(s->conn, status, content_type, &r->reply_headers, keep, body, len);
	http_req_priv_free(&r);
	http_session_reply_done(s, keep);
}
