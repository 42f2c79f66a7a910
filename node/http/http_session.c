/* http_session.c - one HTTP connection: feed input to http-parser, hand complete
 * requests to the handler one at a time, time out slow clients, answer framing errors.
 * Reading pauses while a request is with the handler; pipelined bytes wait in the
 * connection's input buffer and are parsed after the reply. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include "http_private.h"

/* Answer a framing error (no handler involved) and close. */
static void session_fail(http_session *s, int status)
{
	static const char body[] = "";
	s->failed = 1;
	if (s->timer != NULL)
		evtimer_del(s->timer);
	http_write_response(s->conn, status, "text/plain", NULL, 0, body, 0);
	tern_conn_close(s->conn);
}

/* The client took longer than request_timeout to send one request. */
static void on_request_timeout(evutil_socket_t fd, short what, void *arg)
{
	http_session *s = arg;
	if (s->closed || s->failed || s->inflight != NULL)
		return;
	session_fail(s, 408);
}

/* Give the complete request to the handler. */
static void session_dispatch(http_session *s)
{
	http_req_priv *r = http_reqparser_take(&s->rp);
	if (r == NULL)
		return;
	r->sess = s;
	if (s->timer != NULL)
		evtimer_del(s->timer);
	s->inflight = r;
	r->req.conn = s->conn;
	tern_conn_pause(s->conn);
	tern_conn_set_idle_timeout(s->conn, 0);
	s->svc->fn(&r->req, s->svc->ctx);
}

/* Parse what is buffered, dispatching requests in order, until input runs out, a request
 * is with the handler, or the connection failed. Re-entrant calls (a handler replying
 * at once) return and let the outer loop go on. */
void http_session_process(http_session *s)
{
	if (s->in_process)
		return;
	s->in_process = 1;
	while (!s->closed && !s->failed && s->inflight == NULL) {
		struct evbuffer *in = tern_conn_input(s->conn);
		if (evbuffer_get_length(in) == 0)
			break;
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		size_t used = 0;
		int status = 400;
		int rc = http_reqparser_feed(&s->rp, v.iov_base, v.iov_len, &used, &status);
		evbuffer_drain(in, used);
		if (rc == HTTP_PARSE_REQUEST) {
			session_dispatch(s);
			continue;
		}
		if (rc == HTTP_PARSE_ERROR) {
			session_fail(s, status);
			break;
		}
		if (http_reqparser_partial(&s->rp) && s->timer != NULL && !evtimer_pending(s->timer, NULL)) {
			struct timeval tv = { s->svc->limits.request_timeout, 0 };
			evtimer_add(s->timer, &tv);
		}
		if (used == 0)
			break;
	}
	s->in_process = 0;
	if (s->closed)
		http_session_free(&s);
}

/* The handler answered the in-flight request: go on with the next one or close. */
void http_session_reply_done(http_session *s, int keep_alive)
{
	s->inflight = NULL;
	if (!keep_alive) {
		s->failed = 1;
		tern_conn_close(s->conn);
		return;
	}
	tern_conn_set_idle_timeout(s->conn, s->svc->limits.keepalive_timeout);
	tern_conn_resume(s->conn);
	http_session_process(s);
}

void http_session_free(http_session **sp)
{
	http_session *s = *sp;
	if (s == NULL)
		return;
	if (s->inflight != NULL) {
		s->inflight->sess = NULL;
		s->inflight->req.conn = NULL;
	}
	http_reqparser_clear(&s->rp);
	if (s->timer != NULL)
		event_free(s->timer);
	free(s);
	*sp = NULL;
}

static void *http_on_open(tern_conn *c, void *ctx)
{
	http_service *svc = ctx;
	http_session *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->svc = svc;
	s->conn = c;
	http_reqparser_init(&s->rp, &svc->limits);
	s->timer = evtimer_new(tern_io_base(tern_conn_io(c)), on_request_timeout, s);
	if (s->timer == NULL) {
		free(s);
		return NULL;
	}
	tern_conn_set_idle_timeout(c, svc->limits.keepalive_timeout);
	return s;
}

static void http_on_read(tern_conn *c, void *session)
{
	http_session *s = session;
	if (s->failed) {
		struct evbuffer *in = tern_conn_input(c);
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	http_session_process(s);
}

/* The connection is going: a request still with the handler is detached, so that its
 * later http_reply only frees it. */
static void http_on_close(tern_conn *c, void *session)
{
	http_session *s = session;
	s->closed = 1;
	if (s->in_process) {
		if (s->inflight != NULL) {
			s->inflight->sess = NULL;
			s->inflight->req.conn = NULL;
			s->inflight = NULL;
		}
		return;        /* the processing loop frees the session */
	}
	http_session_free(&s);
}

/* Server draining: close idle connections now; a busy one closes after its reply. */
static void http_on_drain(tern_conn *c, void *session)
{
	http_session *s = session;
	if (s->inflight == NULL)
		tern_conn_close(c);
	else
		s->failed = 1;
}

http_service *http_service_new(const http_limits *limits, http_handler_fn fn, void *ctx)
{
	http_service *svc = calloc(1, sizeof(*svc));
	if (svc == NULL)
		return NULL;
	svc->limits = *limits;
	svc->fn = fn;
	svc->ctx = ctx;
	svc->handler.on_open = http_on_open;
	svc->handler.on_read = http_on_read;
	svc->handler.on_close = http_on_close;
	svc->handler.on_drain = http_on_drain;
	svc->handler.ctx = svc;
	svc->handler.idle_timeout = limits->keepalive_timeout;
	return svc;
}

const tern_service_handler *http_service_handler(http_service *s)
{
	return &s->handler;
}

void http_service_free(http_service **s)
{
	free(*s);
	*s = NULL;
}
