/* mime.h - MIME structure of a message for IMAP (node/mime/), computed once when the
 * message is delivered or appended (GMime 3; mime_init() before any thread starts), and
 * kept in its record (Tern__MimeInfo): ENVELOPE, BODYSTRUCTURE and BODY as IMAP sends
 * them, and the offsets of every part so that BODY[section] is served from the stored
 * bytes. Also the decoding SEARCH needs (RFC 2047 words, transfer encodings, charsets). */
#ifndef TERN_MIME_H
#define TERN_MIME_H
#include <stddef.h>
#include <stdint.h>
#include "records.pb-c.h"
#include "tern.h"

#define MIME_ANALYSIS_VERSION 1

/* Initialise GMime; call once in main() before threads start. */
void mime_init(void);
void mime_shutdown(void);

/* Analyse the message bytes (CRLF or LF lines; broken MIME is tolerated: whatever can be
 * parsed is described, the rest becomes text/plain or application/octet-stream parts as
 * the RFCs suggest). Bounded: nesting depth and part count are limited. Returns a new
 * record (free with mime_info_free) or NULL on out-of-memory only. */
Tern__MimeInfo *mime_analyze(const void *data, size_t len);
void mime_info_free(Tern__MimeInfo **info);

/* The part named by an IMAP section part number ("1.2.3", "" = the whole message),
 * or NULL. For "N" on a message/rfc822 part, the part itself (its enclosed message is
 * part->message). */
const Tern__MimePart *mime_find_part(const Tern__MimePart *root, const char *section);

/* Decode a raw header value (unfolded, RFC 2047 encoded words, any charset) to UTF-8. */
void mime_decode_header(const char *raw, size_t len, tbuf *out);
/* Decode a part body (its transfer encoding, then its charset) to UTF-8 text, at most
 * max bytes of output. 0 ok. */
int mime_decode_text(const Tern__MimePart *part, const void *body, size_t len, const char *charset,
		     size_t max, tbuf *out);
/* Decode a part body's transfer encoding only (for FETCH BINARY). -1 when the encoding
 * is unknown (BINARY answers NO [UNKNOWN-CTE]). */
int mime_decode_transfer(const char *encoding, const void *body, size_t len, tbuf *out);

#endif
