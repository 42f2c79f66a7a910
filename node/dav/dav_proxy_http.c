/* dav_proxy_http.c - the HTTP/1.1 of a proxied DAV request: the forwarded request's
 * bytes, and a bounded reader of the home node's answer (status line, header fields,
 * Content-Length body or a body up to the connection's end). The home node is a Tern
 * node, whose HTTP layer always sends Content-Length; chunked answers are refused. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dav_proxy.h"

/* Hop-by-hop fields (RFC 9110 7.6.1) and the fields the proxy sets itself: never copied
 * from the client to the home node. */
static const char *const request_skip[] = {
	"Authorization", "Proxy-Authorization", "Connection", "Keep-Alive", "Proxy-Connection", "TE",
	"Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length", "Expect",
	DAV_PROXY_USER_HEADER, DAV_PROXY_FOR_HEADER, NULL,
};

/* Fields of the home node's answer that the client's own HTTP layer writes (or that
 * concern only the hop): never relayed. DAV: the front already announced the same. */
static const char *const reply_skip[] = {
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "TE", "Trailer",
	"Transfer-Encoding", "Upgrade", "Content-Length", "Content-Type", "Date", "DAV", NULL,
};

static int in_list(const char *const *list, const char *name, size_t n)
{
	for (; *list != NULL; list++)
		if (strlen(*list) == n && strncasecmp(*list, name, n) == 0)
			return 1;
	return 0;
}

/* 1 when `name` is one of the comma-separated tokens of a Connection field value (a
 * field the sender declared hop-by-hop). */
static int in_connection(const char *conn, const char *name, size_t n)
{
	while (conn != NULL && *conn) {
		while (*conn == ' ' || *conn == '\t' || *conn == ',')
			conn++;
		const char *e = conn;
		while (*e && *e != ',' && *e != ' ' && *e != '\t')
			e++;
		if ((size_t)(e - conn) == n && n > 0 && strncasecmp(conn, name, n) == 0)
			return 1;
		conn = e;
	}
	return 0;
}

static int has_crlf(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

int dav_proxy_build_request(const http_request *req, const char *host, unsigned port, const char *authz,
			    const char *account, const char *client_ip, tbuf *out)
{
	const char *conn = http_header_get(req, "Connection");

	if (has_crlf(req->method) || has_crlf(req->target) || strpbrk(req->target, " \t") != NULL ||
	    has_crlf(account) || has_crlf(client_ip) || has_crlf(host))
		return -1;
	tbuf_appendf(out, "%s %s HTTP/1.1\r\n", req->method, req->target);
	if (strchr(host, ':') != NULL)
		tbuf_appendf(out, "Host: [%s]:%u\r\n", host, port);
	else
		tbuf_appendf(out, "Host: %s:%u\r\n", host, port);
	tbuf_appendf(out, "Authorization: %s\r\n", authz);
	tbuf_appendf(out, "%s: %s\r\n", DAV_PROXY_USER_HEADER, account);
	if (client_ip[0] != '\0')
		tbuf_appendf(out, "%s: %s\r\n", DAV_PROXY_FOR_HEADER, client_ip);
	tbuf_append_str(out, "Connection: close\r\n");
	for (unsigned i = 0; i < req->nheaders; i++) {
		const http_header *h = &req->headers[i];
		size_t n = strlen(h->name);
		if (in_list(request_skip, h->name, n) || in_connection(conn, h->name, n))
			continue;
		if (n == 0 || has_crlf(h->name) || has_crlf(h->value) || strchr(h->name, ':') != NULL)
			return -1;
		tbuf_appendf(out, "%s: %s\r\n", h->name, h->value);
	}
	tbuf_appendf(out, "Content-Length: %zu\r\n\r\n", req->body.len);
	if (req->body.len > 0)
		tbuf_append(out, req->body.data, req->body.len);
	return 0;
}

void dav_proxy_reply_init(dav_proxy_reply *rp, int head_only, size_t max_body)
{
	memset(rp, 0, sizeof(*rp));
	rp->head_only = head_only;
	rp->max_body = max_body;
	rp->length = -1;
	tbuf_init(&rp->body);
}

void dav_proxy_reply_clear(dav_proxy_reply *rp)
{
	for (unsigned i = 0; i < rp->nheaders; i++) {
		free(rp->headers[i].name);
		free(rp->headers[i].value);
	}
	rp->nheaders = 0;
	free(rp->ctype);
	rp->ctype = NULL;
	tbuf_free(&rp->body);
}

/* "HTTP/1.x NNN reason": the status, or -1. */
static int parse_status_line(const char *line, size_t n)
{
	if (n < 12 || strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') || line[8] != ' ')
		return -1;
	if (!isdigit((unsigned char)line[9]) || !isdigit((unsigned char)line[10]) ||
	    !isdigit((unsigned char)line[11]) || (n > 12 && line[12] != ' '))
		return -1;
	int st = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	return st >= 100 && st <= 599 ? st : -1;
}

static char *dup_trimmed(const char *s, size_t n)
{
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	char *d = strndup(s, n);
	if (d == NULL)
		abort();
	return d;
}

/* One header field line of the answer. 0, or -1 with *error_r. */
static int header_line(dav_proxy_reply *rp, const char *line, size_t n, const char **conn_r, const char **error_r)
{
	const char *colon = memchr(line, ':', n);
	if (colon == NULL || colon == line || memchr(line, '\0', n) != NULL) {
		*error_r = "malformed header field in the home node's answer";
		return -1;
	}
	size_t nl = (size_t)(colon - line);
	for (size_t i = 0; i < nl; i++)
		if (line[i] == ' ' || line[i] == '\t' || (unsigned char)line[i] < 0x21) {
			*error_r = "malformed header field name in the home node's answer";
			return -1;
		}
	char *value = dup_trimmed(colon + 1, n - nl - 1);
	if (nl == 14 && strncasecmp(line, "Content-Length", nl) == 0) {
		char *end = NULL;
		errno = 0;
		long long v = strtoll(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0' || v < 0 || (rp->length >= 0 && rp->length != v)) {
			free(value);
			*error_r = "bad Content-Length in the home node's answer";
			return -1;
		}
		rp->length = v;
	} else if (nl == 17 && strncasecmp(line, "Transfer-Encoding", nl) == 0) {
		free(value);
		*error_r = "chunked answer from the home node";
		return -1;
	} else if (nl == 12 && strncasecmp(line, "Content-Type", nl) == 0 && rp->ctype == NULL) {
		rp->ctype = value;
		return 0;
	} else if (nl == 10 && strncasecmp(line, "Connection", nl) == 0 && *conn_r == NULL) {
		*conn_r = line + nl + 1;   /* judged once the head is complete */
	}
	if (in_list(reply_skip, line, nl)) {
		free(value);
		return 0;
	}
	if (rp->nheaders == HTTP_MAX_HEADERS) {
		free(value);
		*error_r = "too many header fields in the home node's answer";
		return -1;
	}
	rp->headers[rp->nheaders].name = strndup(line, nl);
	rp->headers[rp->nheaders].value = value;
	if (rp->headers[rp->nheaders].name == NULL)
		abort();
	rp->nheaders++;
	return 0;
}

/* Drop relayed fields that the answer's Connection field named hop-by-hop. */
static void drop_connection_named(dav_proxy_reply *rp, const char *conn, size_t conn_len)
{
	char *c = strndup(conn, conn_len);
	if (c == NULL)
		abort();
	unsigned k = 0;
	for (unsigned i = 0; i < rp->nheaders; i++) {
		if (in_connection(c, rp->headers[i].name, strlen(rp->headers[i].name))) {
			free(rp->headers[i].name);
			free(rp->headers[i].value);
			continue;
		}
		rp->headers[k++] = rp->headers[i];
	}
	rp->nheaders = k;
	free(c);
}

/* The head (status line and fields, without the blank line). 0 or -1. */
static int parse_head(dav_proxy_reply *rp, const char *head, size_t n, const char **error_r)
{
	const char *eol = memmem(head, n, "\r\n", 2);
	size_t first = eol ? (size_t)(eol - head) : n;
	const char *conn = NULL;

	rp->status = parse_status_line(head, first);
	if (rp->status < 0) {
		*error_r = "malformed status line from the home node";
		return -1;
	}
	const char *p = eol ? eol + 2 : head + n;
	const char *end = head + n;
	while (p < end) {
		const char *e = memmem(p, (size_t)(end - p), "\r\n", 2);
		size_t len = e ? (size_t)(e - p) : (size_t)(end - p);
		if (len > 0 && (p[0] == ' ' || p[0] == '\t')) {
			*error_r = "folded header field in the home node's answer";
			return -1;
		}
		if (len > 0 && header_line(rp, p, len, &conn, error_r) < 0)
			return -1;
		p += len + (e ? 2 : 0);
	}
	if (conn != NULL) {
		const char *ce = memmem(conn, (size_t)(end - conn), "\r\n", 2);
		drop_connection_named(rp, conn, ce ? (size_t)(ce - conn) : (size_t)(end - conn));
	}
	return 0;
}

/* No body whatever the fields say (RFC 9112 6.3). */
static int bodiless(const dav_proxy_reply *rp)
{
	return rp->head_only || rp->status < 200 || rp->status == 204 || rp->status == 304;
}

/* Forget a 1xx interim answer: the final one follows. */
static void reset_interim(dav_proxy_reply *rp)
{
	int head_only = rp->head_only;
	size_t max = rp->max_body;
	dav_proxy_reply_clear(rp);
	dav_proxy_reply_init(rp, head_only, max);
}

int dav_proxy_reply_read(dav_proxy_reply *rp, struct evbuffer *in, int eof, const char **error_r)
{
	while (!rp->head_done) {
		struct evbuffer_ptr at = evbuffer_search(in, "\r\n\r\n", 4, NULL);
		if (at.pos < 0) {
			if (evbuffer_get_length(in) > DAV_PROXY_HEAD_MAX) {
				*error_r = "over-long answer head from the home node";
				return DAV_PROXY_BAD;
			}
			if (eof) {
				*error_r = "the home node closed the connection before answering";
				return DAV_PROXY_BAD;
			}
			return DAV_PROXY_MORE;
		}
		size_t n = (size_t)at.pos;
		if (n > DAV_PROXY_HEAD_MAX) {
			*error_r = "over-long answer head from the home node";
			return DAV_PROXY_BAD;
		}
		const char *head = (const char *)evbuffer_pullup(in, (ssize_t)n + 4);
		if (head == NULL) {
			*error_r = "out of memory";
			return DAV_PROXY_BAD;
		}
		int rc = parse_head(rp, head, n, error_r);
		evbuffer_drain(in, n + 4);
		if (rc < 0)
			return DAV_PROXY_BAD;
		if (rp->status >= 100 && rp->status < 200) {
			reset_interim(rp);
			continue;
		}
		if (!bodiless(rp) && rp->length > (long long)rp->max_body) {
			*error_r = "the home node's answer is too large";
			return DAV_PROXY_BAD;
		}
		rp->head_done = 1;
	}
	if (bodiless(rp))
		return DAV_PROXY_DONE;
	size_t avail = evbuffer_get_length(in);
	size_t want = rp->length >= 0 ? (size_t)rp->length - rp->body.len : avail;
	size_t take = avail < want ? avail : want;
	if (take > 0) {
		if (rp->body.len + take > rp->max_body) {
			*error_r = "the home node's answer is too large";
			return DAV_PROXY_BAD;
		}
		tbuf_reserve(&rp->body, take);
		if (evbuffer_remove(in, rp->body.data + rp->body.len, take) != (int)take) {
			*error_r = "cannot read the home node's answer";
			return DAV_PROXY_BAD;
		}
		rp->body.len += take;
		rp->body.data[rp->body.len] = '\0';   /* room made by tbuf_reserve */
	}
	if (rp->length >= 0 && rp->body.len == (size_t)rp->length)
		return DAV_PROXY_DONE;
	if (eof) {
		if (rp->length < 0)
			return DAV_PROXY_DONE;
		*error_r = "the home node's answer was cut short";
		return DAV_PROXY_BAD;
	}
	return DAV_PROXY_MORE;
}
