/* http_private.h - what the files of node/http/ share: the service, the per-connection
 * session and the request wrapper. The only header that includes http_parser.h. */
#ifndef TERN_HTTP_PRIVATE_H
#define TERN_HTTP_PRIVATE_H
#include <http_parser.h>
#include "http.h"

struct event;

struct http_service {
	http_limits limits;
	http_handler_fn fn;
	void *ctx;
	tern_service_handler handler;
};

typedef struct http_session http_session;
typedef struct http_req_priv http_req_priv;

/* The request parser over plain buffers (http_parse.c): http-parser plus Tern's limits
 * and framing rules, with no connection behind it. The session feeds it what the
 * connection has buffered; the fuzz target feeds it arbitrary bytes. */
typedef struct http_reqparser {
	http_parser parser;
	const http_limits *limits;
	http_req_priv *cur;     /* being parsed; NULL between requests */
	tbuf hname, hvalue;     /* header being collected (callbacks may split it) */
	int in_value;
	size_t head_bytes;
	size_t body_bytes;
	int error_status;       /* set by a callback to stop parsing with this reply */
	int message_done;       /* on_message_complete ran for cur */
} http_reqparser;

enum {
	HTTP_PARSE_MORE = 0,    /* no complete request yet: feed more bytes */
	HTTP_PARSE_REQUEST = 1, /* a request is complete: take it with http_reqparser_take */
	HTTP_PARSE_ERROR = -1,  /* the stream is malformed or over a limit: answer and close */
};

/* A request with the layer's bookkeeping. `req` comes first so that the handler's
 * http_request pointer converts back. */
struct http_req_priv {
	http_request req;
	http_session *sess;     /* NULL once the connection has gone */
	tbuf reply_headers;     /* "Name: value\r\n" lines for http_reply */
	char method[24];
};

struct http_session {
	http_service *svc;
	tern_conn *conn;
	http_reqparser rp;
	http_req_priv *inflight;/* handed to the handler, not answered yet */
	int in_process;         /* http_session_process is on the stack */
	int closed;             /* on_close ran: the connection is gone */
	int failed;             /* an error reply was sent: ignore further input */
	struct event *timer;    /* request_timeout of a partial request */
};

/* http_parse.c */
/* limits must outlive the parser. */
void http_reqparser_init(http_reqparser *p, const http_limits *limits);
/* Free a partial request and the header scratch. */
void http_reqparser_clear(http_reqparser *p);
/* Parse data[0..len) (len > 0); *used_r = bytes consumed. HTTP_PARSE_REQUEST stops right
 * after the request's last byte (the rest is for the next call, after the take);
 * HTTP_PARSE_ERROR sets *status_r to the status to answer (400, 413, 431, 501). After an
 * error the parser accepts nothing more. */
int http_reqparser_feed(http_reqparser *p, const char *data, size_t len, size_t *used_r,
			int *status_r);
/* The completed request, now the caller's (free with http_req_priv_free). */
http_req_priv *http_reqparser_take(http_reqparser *p);
/* 1 while a request has begun but is not complete (for the request timeout). */
int http_reqparser_partial(const http_reqparser *p);
void http_req_priv_free(http_req_priv **r);
int http_percent_decode(const char *s, size_t n, int plus_space, char **out_r);
/* http_session.c */
void http_session_process(http_session *s);
void http_session_reply_done(http_session *s, int keep_alive);
void http_session_free(http_session **s);
/* http_reply.c */
void http_write_response(tern_conn *c, int status, const char *content_type, const tbuf *extra,
			 int keep_alive, const void *body, size_t len);

#endif
