/* http_parse.c - http-parser callbacks: turn the byte stream into http_request structs,
 * enforcing the head and body limits and the framing rules (no TE together with CL). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "http_private.h"

/* Release a request and everything it owns. */
void http_req_priv_free(http_req_priv **rp)
{
	http_req_priv *r = *rp;
	if (r == NULL)
		return;
	free(r->req.target);
	free(r->req.path);
	free(r->req.query);
	for (unsigned i = 0; i < r->req.nheaders; i++) {
		free(r->req.headers[i].name);
		free(r->req.headers[i].value);
	}
	tbuf_free(&r->req.body);
	tbuf_free(&r->reply_headers);
	free(r);
	*rp = NULL;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Percent-decode s[0..n) into a malloc'd string. -1 on an invalid escape or %00, so
 * that a decoded path never hides a NUL. plus_space: '+' means ' ' (query strings). */
int http_percent_decode(const char *s, size_t n, int plus_space, char **out_r)
{
	tbuf b = TBUF_INIT;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '%') {
			int hi = i + 1 < n ? hexval((unsigned char)s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				tbuf_free(&b);
				return -1;
			}
			tbuf_append_char(&b, (char)(hi * 16 + lo));
			i += 2;
		} else if (ch == '+' && plus_space) {
			tbuf_append_char(&b, ' ');
		} else {
			tbuf_append_char(&b, ch);
		}
	}
	if (b.data == NULL)
		tbuf_reserve(&b, 1);
	*out_r = tbuf_steal(&b);
	return 0;
}

static http_reqparser *sess_of(http_parser *p)
{
	return p->data;
}

/* Count head bytes (URL and header lines) and fail with 431 past the limit. */
static int count_head(http_reqparser *s, size_t n)
{
	s->head_bytes += n;
	if (s->head_bytes > s->limits->max_header_bytes) {
		s->error_status = 431;
		return -1;
	}
	return 0;
}

static int on_message_begin(http_parser *p)
{
	http_reqparser *s = sess_of(p);
	http_req_priv_free(&s->cur);
	s->cur = calloc(1, sizeof(*s->cur));
	if (s->cur == NULL)
		abort();
	tbuf_init(&s->cur->req.body);
	tbuf_init(&s->cur->reply_headers);
	tbuf_reset(&s->hname);
	tbuf_reset(&s->hvalue);
	s->in_value = 0;
	s->head_bytes = 0;
	s->body_bytes = 0;
	s->message_done = 0;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	http_reqparser *s = sess_of(p);
	if (count_head(s, n) < 0)
		return -1;
	tbuf t = TBUF_INIT;
	if (s->cur->req.target != NULL)
		tbuf_append_str(&t, s->cur->req.target);
	tbuf_append(&t, at, n);
	free(s->cur->req.target);
	s->cur->req.target = tbuf_steal(&t);
	return 0;
}

/* Store the header collected in hname/hvalue into the request. */
static int commit_header(http_reqparser *s)
{
	http_request *r = &s->cur->req;
	if (s->hname.len == 0)
		return 0;
	if (r->nheaders >= HTTP_MAX_HEADERS) {
		s->error_status = 431;
		return -1;
	}
	r->headers[r->nheaders].name = strdup(tbuf_cstr(&s->hname));
	r->headers[r->nheaders].value = strdup(tbuf_cstr(&s->hvalue));
	if (r->headers[r->nheaders].name == NULL || r->headers[r->nheaders].value == NULL)
		abort();
	r->nheaders++;
	tbuf_reset(&s->hname);
	tbuf_reset(&s->hvalue);
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
	http_reqparser *s = sess_of(p);
	if (count_head(s, n) < 0)
		return -1;
	if (s->in_value) {
		if (commit_header(s) < 0)
			return -1;
		s->in_value = 0;
	}
	tbuf_append(&s->hname, at, n);
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
	http_reqparser *s = sess_of(p);
	if (count_head(s, n) < 0)
		return -1;
	s->in_value = 1;
	tbuf_append(&s->hvalue, at, n);
	return 0;
}

/* Split the target into path (decoded) and query; checks framing and the body limit. */
static int on_headers_complete(http_parser *p)
{
	http_reqparser *s = sess_of(p);
	http_request *r = &s->cur->req;
	if (commit_header(s) < 0)
		return -1;
	int te = 0, cl = 0;
	for (unsigned i = 0; i < r->nheaders; i++) {
		if (strcasecmp(r->headers[i].name, "Transfer-Encoding") == 0)
			te = 1;
		else if (strcasecmp(r->headers[i].name, "Content-Length") == 0)
			cl = 1;
	}
	if (te && cl) {
		s->error_status = 400;
		return -1;
	}
	if (cl && p->content_length > s->limits->max_body_bytes) {
		s->error_status = 413;
		return -1;
	}
	int w = snprintf(s->cur->method, sizeof(s->cur->method), "%s", http_method_str(p->method));
	if (w < 0 || (size_t)w >= sizeof(s->cur->method)) {
		s->error_status = 501;
		return -1;
	}
	r->method = s->cur->method;
	if (r->target == NULL || r->target[0] == '\0') {
		s->error_status = 400;
		return -1;
	}
	const char *q = strchr(r->target, '?');
	size_t plen = q ? (size_t)(q - r->target) : strlen(r->target);
	if (http_percent_decode(r->target, plen, 0, &r->path) < 0) {
		s->error_status = 400;
		return -1;
	}
	r->query = strdup(q ? q + 1 : "");
	if (r->query == NULL)
		abort();
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	http_reqparser *s = sess_of(p);
	s->body_bytes += n;
	if (s->body_bytes > s->limits->max_body_bytes) {
		s->error_status = 413;
		return -1;
	}
	tbuf_append(&s->cur->req.body, at, n);
	return 0;
}

/* A request is complete: pause the parser so that http_session_process hands it over
 * before reading the next (pipelined) one. */
static int on_message_complete(http_parser *p)
{
	http_reqparser *s = sess_of(p);
	s->cur->req.keep_alive = http_should_keep_alive(p) && !p->upgrade;
	s->message_done = 1;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings reqparser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

void http_reqparser_init(http_reqparser *p, const http_limits *limits)
{
	memset(p, 0, sizeof(*p));
	p->limits = limits;
	tbuf_init(&p->hname);
	tbuf_init(&p->hvalue);
	http_parser_init(&p->parser, HTTP_REQUEST);
	p->parser.data = p;
}

void http_reqparser_clear(http_reqparser *p)
{
	http_req_priv_free(&p->cur);
	tbuf_free(&p->hname);
	tbuf_free(&p->hvalue);
	p->message_done = 0;
}

/* One http_parser_execute over the bytes; a complete request pauses the parser (see
 * on_message_complete), so that requests come out one at a time, in order. */
int http_reqparser_feed(http_reqparser *p, const char *data, size_t len, size_t *used_r,
			int *status_r)
{
	*used_r = 0;
	if (p->message_done)
		return HTTP_PARSE_REQUEST;      /* not taken yet */
	enum http_errno e = HTTP_PARSER_ERRNO(&p->parser);
	if (e == HPE_PAUSED)
		http_parser_pause(&p->parser, 0);
	else if (e != HPE_OK || p->error_status != 0) {
		*status_r = p->error_status ? p->error_status : 400;
		return HTTP_PARSE_ERROR;
	}
	if (len == 0)
		return HTTP_PARSE_MORE;         /* a zero length would mean EOF to http-parser */
	*used_r = http_parser_execute(&p->parser, &reqparser_settings, data, len);
	if (p->message_done)
		return HTTP_PARSE_REQUEST;
	e = HTTP_PARSER_ERRNO(&p->parser);
	if (e != HPE_OK && e != HPE_PAUSED) {
		if (p->error_status == 0)
			p->error_status = 400;
		*status_r = p->error_status;
		return HTTP_PARSE_ERROR;
	}
	return HTTP_PARSE_MORE;
}

http_req_priv *http_reqparser_take(http_reqparser *p)
{
	if (!p->message_done)
		return NULL;
	http_req_priv *r = p->cur;
	p->cur = NULL;
	p->message_done = 0;
	return r;
}

int http_reqparser_partial(const http_reqparser *p)
{
	return p->cur != NULL && !p->message_done;
}
