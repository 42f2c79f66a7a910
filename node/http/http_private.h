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
	http_parser_settings settings;
};

typedef struct http_session http_session;

/* A request with the layer's bookkeeping. `req` comes first so that the handler's
 * http_request pointer converts back. */
typedef struct http_req_priv {
	http_request req;
	http_session *sess;     /* NULL once the connection has gone */
	tbuf reply_headers;     /* "Name: value\r\n" lines for http_reply */
	char method[24];
} http_req_priv;

struct http_session {
	http_service *svc;
	tern_conn *conn;
	http_parser parser;
	http_req_priv *cur;     /* being parsed */
	http_req_priv *inflight;/* handed to the handler, not answered yet */
	tbuf hname, hvalue;     /* header being collected (callbacks may split it) */
	int in_value;
	size_t head_bytes;
	size_t body_bytes;
	int error_status;       /* set by a callback to stop parsing with this reply */
	int message_done;       /* on_message_complete ran for cur */
	int in_process;         /* http_session_process is on the stack */
	int closed;             /* on_close ran: the connection is gone */
	int failed;             /* an error reply was sent: ignore further input */
	struct event *timer;    /* request_timeout of a partial request */
};

/* http_parse.c */
void http_parser_settings_init(http_parser_settings *s);
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
