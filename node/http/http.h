/* http.h - the one HTTP/1.1 server layer of ternd (http-parser on libevent), used by the
 * admin API now and by CalDAV, CardDAV and free/busy later. http-parser is archived
 * upstream: nothing outside node/http/ includes http_parser.h.
 *
 * Requests are framed and bounded (head size, body size, time to send one request);
 * keep-alive is honoured; a request with both Transfer-Encoding and Content-Length is
 * refused (400), as are malformed requests. One request is handled at a time per
 * connection: reading pauses until the handler replies (pipelined requests wait). */
#ifndef TERN_HTTP_H
#define TERN_HTTP_H
#include <stddef.h>
#include "tern.h"

#define HTTP_MAX_HEADERS 64

typedef struct http_header {
	char *name;             /* as sent */
	char *value;
} http_header;

typedef struct http_request {
	const char *method;     /* "GET", "PROPFIND", ... */
	char *target;           /* raw request target, "/api/users?domain=x" */
	char *path;             /* percent-decoded path without the query */
	char *query;            /* raw query string or "" */
	http_header headers[HTTP_MAX_HEADERS];
	unsigned nheaders;
	tbuf body;
	int keep_alive;
	tern_conn *conn;
	void *user_data;        /* for the handler */
} http_request;

typedef struct http_limits {
	size_t max_header_bytes;
	size_t max_body_bytes;
	int keepalive_timeout;  /* seconds */
	int request_timeout;    /* seconds */
} http_limits;

/* Called once per complete request on the connection's I/O thread. The handler must
 * answer with http_reply() exactly once, now or later from the same I/O thread. */
typedef void (*http_handler_fn)(http_request *req, void *ctx);

/* A tern_service_handler that speaks HTTP and calls fn for each request. The returned
 * object lives until http_service_free(). */
typedef struct http_service http_service;
http_service *http_service_new(const http_limits *limits, http_handler_fn fn, void *ctx);
const tern_service_handler *http_service_handler(http_service *s);
void http_service_free(http_service **s);

/* Header lookup, case-insensitive; NULL when absent. */
const char *http_header_get(const http_request *req, const char *name);
/* Value of a query parameter (percent-decoded, malloc'd), or NULL. */
char *http_query_param(const http_request *req, const char *name);
/* Add a response header for the coming http_reply (Content-Length, Connection and Date are
 * added by the layer). */
void http_add_header(http_request *req, const char *name, const char *value);
/* Send the response and release the request. When the connection has gone meanwhile,
 * only the release happens. */
void http_reply(http_request *req, int status, const char *content_type, const void *body, size_t len);
const char *http_status_text(int status);

#endif
