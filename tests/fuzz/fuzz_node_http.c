/* fuzz_node_http.c - the HTTP/1.1 request parser of node/http (http_reqparser, the one
 * the connection sessions use), fed in pieces of random size as a socket would deliver
 * them. The first input byte seeds the piece sizes; the rest is the byte stream.
 * Checks the layer's promises on every request that comes out: limits held, fields set. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "http_private.h"

#define FUZZ_MAX_HEAD 2048
#define FUZZ_MAX_BODY 8192

/* What the session guarantees to a handler, checked on one parsed request. */
static void check_request(http_req_priv *r)
{
	http_request *q = &r->req;
	if (q->method == NULL || q->target == NULL || q->path == NULL || q->query == NULL)
		abort();
	if (strlen(q->target) > FUZZ_MAX_HEAD || q->body.len > FUZZ_MAX_BODY)
		abort();
	if (q->nheaders > HTTP_MAX_HEADERS)
		abort();
	for (unsigned i = 0; i < q->nheaders; i++)
		if (q->headers[i].name == NULL || q->headers[i].value == NULL)
			abort();
	if (http_header_get(q, "Transfer-Encoding") != NULL && http_header_get(q, "Content-Length") != NULL)
		abort();
	(void)http_header_get(q, "host");
	char *v = http_query_param(q, "q");
	free(v);
	v = http_query_param(q, "");
	free(v);
	http_add_header(q, "X-Fuzz", q->path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const http_limits lim = { FUZZ_MAX_HEAD, FUZZ_MAX_BODY, 30, 30 };
	if (size < 1)
		return 0;
	uint32_t seed = data[0] * 2654435761u + 1;
	data++;
	size--;
	http_reqparser p;
	http_reqparser_init(&p, &lim);
	tbuf pending = TBUF_INIT;      /* like the connection's input buffer */
	size_t off = 0;
	int done = 0;
	while (off < size && !done) {
		seed = seed * 1103515245u + 12345u;
		size_t piece = 1 + (seed >> 16) % 97;
		if (piece > size - off)
			piece = size - off;
		tbuf_append(&pending, data + off, piece);
		off += piece;
		while (pending.len > 0 && !done) {
			/* a copy of exactly the buffered bytes, so that ASan sees any over-read */
			char *chunk = malloc(pending.len);
			if (chunk == NULL)
				abort();
			memcpy(chunk, pending.data, pending.len);
			size_t used = 0;
			int status = 0;
			int rc = http_reqparser_feed(&p, chunk, pending.len, &used, &status);
			free(chunk);
			if (used > pending.len)
				abort();
			tbuf_consume(&pending, used);
			if (rc == HTTP_PARSE_ERROR) {
				if (status != 400 && status != 413 && status != 431 && status != 501)
					abort();
				done = 1;
			} else if (rc == HTTP_PARSE_REQUEST) {
				http_req_priv *r = http_reqparser_take(&p);
				if (r == NULL)
					abort();
				check_request(r);
				int keep = r->req.keep_alive;
				http_req_priv_free(&r);
				if (!keep)
					done = 1;     /* the session closes after this reply */
			} else if (used == 0) {
				break;            /* wait for more bytes, as the session does */
			}
		}
	}
	tbuf_free(&pending);
	http_reqparser_clear(&p);
	return 0;
}
