/* line.c - the line framer of the text protocols (see line.h). */
#include <string.h>
#include <event2/buffer.h>
#include "line.h"

void tern_line_init(tern_line_reader *r, size_t max)
{
	tbuf_init(&r->line);
	r->max = max;
	r->overflow = 0;
}

void tern_line_clear(tern_line_reader *r)
{
	tbuf_free(&r->line);
	r->overflow = 0;
}

/* The line so far is kept until its LF; once longer than max (+1 for a CR that may
 * precede the LF) it is dropped and the rest of the line skipped, so memory stays
 * bounded whatever the client sends. */
int tern_line_feed(tern_line_reader *r, const char *p, size_t n, size_t *used_r)
{
	const char *lf = memchr(p, '\n', n);
	size_t take = lf ? (size_t)(lf - p) : n;

	*used_r = lf ? take + 1 : n;
	if (!r->overflow) {
		if (r->line.len + take > r->max + 1) {
			r->overflow = 1;
			tbuf_reset(&r->line);
		} else {
			tbuf_append(&r->line, p, take);
		}
	}
	if (lf == NULL)
		return TERN_LINE_MORE;
	if (r->overflow) {
		r->overflow = 0;
		return TERN_LINE_TOOLONG;
	}
	if (r->line.len > 0 && r->line.data[r->line.len - 1] == '\r')
		tbuf_truncate(&r->line, r->line.len - 1);
	if (r->line.len > r->max) {
		tbuf_reset(&r->line);
		return TERN_LINE_TOOLONG;
	}
	if (r->line.data == NULL)
		tbuf_reserve(&r->line, 1);
	return TERN_LINE_OK;
}

/* Only the first contiguous chunk is looked at each time, so nothing is copied out of
 * the evbuffer but the line itself. */
int tern_line_read(tern_line_reader *r, struct evbuffer *in)
{
	int rc = TERN_LINE_MORE;

	while (rc == TERN_LINE_MORE && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		size_t used = 0;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		rc = tern_line_feed(r, v.iov_base, v.iov_len, &used);
		evbuffer_drain(in, used);
	}
	return rc;
}
