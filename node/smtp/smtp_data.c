/* smtp_data.c - reading the DATA section (RFC 5321 4.1.1.4, 4.5.2): dot-unstuffing, line
 * and size bounds, NUL and bare CR detection, the Received-header count for loop
 * detection. The message ends only at CRLF "." CRLF (a bare LF ends a line, stored as
 * CRLF, but never the message: no SMTP smuggling). Past a limit the reader keeps
 * consuming and discarding up to the end, so the session stays in step with the client
 * and answers once, at the end. */
#include <string.h>
#include <strings.h>
#include "smtp_int.h"

enum {
	ST_BOL,        /* at the start of a line */
	ST_DOT,        /* a '.' at the start of a line */
	ST_DOT_CR,     /* "." CR at the start of a line */
	ST_MID,        /* inside a line */
	ST_CR,         /* a CR inside a line */
};

void smtp_data_init(smtp_data_reader *r, size_t line_max, uint64_t size_max, unsigned received_max)
{
	memset(r, 0, sizeof(*r));
	tbuf_init(&r->msg);
	r->line_max = line_max;
	r->size_max = size_max;
	r->received_max = received_max;
	r->state = ST_BOL;
	r->prev_crlf = 1;
	r->in_header = 1;
}

void smtp_data_clear(smtp_data_reader *r)
{
	tbuf_free(&r->msg);
}

/* Once a limit is passed nothing more is stored and the memory goes back at once. */
static int discarding(const smtp_data_reader *r)
{
	return r->too_big || r->too_long;
}

/* Store message bytes of the current line (already unstuffed). */
static void emit(smtp_data_reader *r, const char *p, size_t n)
{
	for (size_t i = 0; i < n && r->line_len + i < sizeof(r->head); i++)
		r->head[r->line_len + i] = p[i];
	r->line_len += n;
	r->size += n;
	if (r->line_len > r->line_max && !r->too_long) {
		r->too_long = 1;
		tbuf_free(&r->msg);
	}
	if (r->size_max != 0 && r->size > r->size_max && !r->too_big) {
		r->too_big = 1;
		tbuf_free(&r->msg);
	}
	if (!discarding(r))
		tbuf_append(&r->msg, p, n);
}

/* The line ends: store CRLF, count header facts. */
static void end_line(smtp_data_reader *r, int crlf)
{
	if (r->in_header) {
		if (r->line_len == 0)
			r->in_header = 0;
		else if (r->line_len >= 9 && strncasecmp(r->head, "Received:", 9) == 0)
			r->received++;
	}
	r->size += 2;
	if (r->size_max != 0 && r->size > r->size_max && !r->too_big) {
		r->too_big = 1;
		tbuf_free(&r->msg);
	}
	if (!discarding(r))
		tbuf_append(&r->msg, "\r\n", 2);
	r->line_len = 0;
	r->prev_crlf = crlf;
	r->state = ST_BOL;
}

/* Handle one byte inside a line (ST_MID semantics). */
static void mid_byte(smtp_data_reader *r, char c)
{
	if (c == '\r') {
		r->state = ST_CR;
	} else if (c == '\n') {
		end_line(r, 0);
	} else {
		if (c == '\0')
			r->has_nul = 1;
		r->state = ST_MID;
		emit(r, &c, 1);
	}
}

int smtp_data_feed(smtp_data_reader *r, const char *p, size_t n, size_t *used_r)
{
	size_t i = 0;

	while (i < n) {
		char c = p[i];
		switch (r->state) {
		case ST_MID: {
			/* the common case: a run of ordinary bytes */
			size_t run = 0;
			while (i + run < n && p[i + run] != '\r' && p[i + run] != '\n' && p[i + run] != '\0')
				run++;
			if (run > 0) {
				emit(r, p + i, run);
				i += run;
				continue;
			}
			mid_byte(r, c);
			break;
		}
		case ST_BOL:
			if (c == '.')
				r->state = ST_DOT;
			else
				mid_byte(r, c);
			break;
		case ST_DOT:
			if (c == '\r')
				r->state = ST_DOT_CR;
			else if (c == '\n') {
				emit(r, ".", 1);
				end_line(r, 0);
			} else {
				mid_byte(r, c);     /* "..x" -> ".x": the first dot goes */
			}
			break;
		case ST_DOT_CR:
			if (c == '\n' && r->prev_crlf) {
				*used_r = i + 1;
				return SMTP_DATA_DONE;
			}
			emit(r, ".", 1);
			if (c == '\n') {
				end_line(r, 1);
			} else {
				r->bare_cr = 1;
				emit(r, "\r", 1);
				mid_byte(r, c);
			}
			break;
		case ST_CR:
			if (c == '\n') {
				end_line(r, 1);
			} else {
				r->bare_cr = 1;
				emit(r, "\r", 1);
				mid_byte(r, c);
			}
			break;
		}
		i++;
	}
	*used_r = n;
	return SMTP_DATA_MORE;
}

const char *smtp_data_verdict(const smtp_data_reader *r)
{
	if (r->too_big)
		return "552 5.3.4 Message size exceeds fixed maximum message size";
	if (r->too_long)
		return "500 5.5.2 Line too long";
	if (r->has_nul)
		return "554 5.6.0 Message contains NUL characters";
	if (r->bare_cr)
		return "554 5.6.0 Message contains bare CR characters";
	if (r->received > r->received_max)
		return "554 5.4.6 Too many Received headers: mail loop detected";
	return NULL;
}
