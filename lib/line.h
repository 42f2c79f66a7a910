/* line.h - the one line framer of Tern's text protocols (SMTP and POP3 commands, IMAP's
 * AUTHENTICATE responses and IDLE's DONE, SASL continuations): bounded lines out of a
 * byte stream that may arrive one byte at a time. Memory stays bounded whatever the
 * client sends: an over-long line is dropped and skipped to its LF, then reported. */
#ifndef TERN_LINE_H
#define TERN_LINE_H
#include <stddef.h>
#include "buf.h"

struct evbuffer;

enum {
	TERN_LINE_MORE = 0,     /* need more bytes */
	TERN_LINE_OK = 1,       /* a whole line is in r->line (without CRLF / LF), NUL-terminated */
	TERN_LINE_TOOLONG = 2,  /* a line longer than max ended; its bytes were dropped */
};

typedef struct tern_line_reader {
	tbuf line;              /* after OK: the line; the caller resets it before feeding on */
	size_t max;             /* longest line without its CRLF; may change between lines */
	int overflow;           /* the current line is over max: skipping to its LF */
} tern_line_reader;

/* An empty reader for lines of at most max bytes (CRLF not counted). */
void tern_line_init(tern_line_reader *r, size_t max);
/* Free the reader's buffer; it is empty and reusable afterwards. */
void tern_line_clear(tern_line_reader *r);
/* Consume bytes of p[0..n) up to and including one LF; *used_r says how many. A CR
 * right before the LF is dropped. Call again with the rest after OK or TOOLONG (after
 * OK, once r->line has been reset). */
int tern_line_feed(tern_line_reader *r, const char *p, size_t n, size_t *used_r);
/* The same over a connection's input buffer: feeds it chunk by chunk and drains what
 * was used, until a line ends (OK, TOOLONG) or the input is used up (MORE). */
int tern_line_read(tern_line_reader *r, struct evbuffer *in);

#endif
