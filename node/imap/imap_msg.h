/* imap_msg.h - the message engines of IMAP (node/imap/): FETCH, SEARCH and flag lists, as
 * functions over one message at a time. They know nothing of sessions or sockets: the
 * session resolves sequence sets to messages (imap_view), calls these, and writes the
 * rendered bytes. Bodies are served from the stored bytes by the offsets of the message's
 * Tern__MimeInfo (DESIGN.md §4), never from a re-serialised MIME tree. */
#ifndef TERN_IMAP_MSG_H
#define TERN_IMAP_MSG_H
#include <stddef.h>
#include <stdint.h>
#include "imap_args.h"
#include "store.h"

/* The message as FETCH and SEARCH see it. */
typedef struct imap_msg {
	store *st;
	const Tern__MessageMeta *meta;  /* flags, keywords, sizes, modseq, blob, header prefix, mime */
	uint32_t msn;                   /* message sequence number in the session */
	int recent;                     /* \Recent in this session */
} imap_msg;

/* ---- FETCH ---- */

typedef struct imap_fetch imap_fetch;   /* a parsed FETCH attribute list */

/* Parse the attributes of FETCH (one atom, a macro ALL/FAST/FULL, or a list) and the
 * optional modifiers list (CHANGEDSINCE n, VANISHED). uid_cmd adds UID to every reply.
 * 0 ok; -1 with *error_r (static text for a BAD reply). */
int imap_fetch_parse(const imap_arg *atts, const imap_arg *modifiers, int uid_cmd, imap_fetch **f_r,
		     const char **error_r);
void imap_fetch_free(imap_fetch **f);
/* The attributes ask for a body section without .PEEK (the caller sets \Seen first when
 * the folder is writable, and then includes FLAGS in the reply). */
int imap_fetch_sets_seen(const imap_fetch *f);
/* MODSEQ is requested (FETCH MODSEQ or CHANGEDSINCE): CONDSTORE is enabled by it. */
int imap_fetch_wants_modseq(const imap_fetch *f);
/* CHANGEDSINCE value, 0 = none: messages with modseq <= it are skipped by the caller. */
uint64_t imap_fetch_changedsince(const imap_fetch *f);
/* The VANISHED modifier was given (QRESYNC; only with UID FETCH and CHANGEDSINCE). */
int imap_fetch_vanished(const imap_fetch *f);
/* imap_fetch_render: a BINARY section of a part whose Content-Transfer-Encoding is
 * unknown; the command fails with NO [UNKNOWN-CTE] (RFC 3516). */
#define IMAP_FETCH_EUNKNOWN_CTE (-100)
/* Render "* MSN FETCH (...)\r\n" for one message into out (literals as {n}\r\n + bytes,
 * BINARY sections as ~{n}). force_flags adds FLAGS (after an implicit \Seen) and
 * with_modseq adds MODSEQ (CONDSTORE enabled). Store errors → negative store code and
 * nothing appended. */
int imap_fetch_render(const imap_fetch *f, const imap_msg *m, int force_flags, int with_modseq,
		      tbuf *out);

/* ---- SEARCH ---- */

typedef struct imap_search imap_search;   /* a parsed search program */

typedef struct imap_search_ctx {
	uint32_t max_msn;               /* for '*' in sequence sets */
	uint32_t max_uid;
	int64_t now;                    /* for OLDER/YOUNGER (RFC 5032), if supported */
} imap_search_ctx;

/* Parse search keys (after an optional CHARSET x: only UTF-8 and US-ASCII are accepted,
 * anything else → -1 with *error_r "[BADCHARSET (UTF-8 US-ASCII)]..."). Also the
 * RETURN (...) options of ESEARCH if supported. 0 ok; -1 with *error_r. */
int imap_search_parse(const imap_arg *args, size_t nargs, imap_search **s_r, const char **error_r);
void imap_search_free(imap_search **s);
/* Does message m match? 1 yes, 0 no, negative store code on a read error. Text keys
 * (BODY, TEXT, SUBJECT, FROM, ...) match case-insensitively on decoded text (RFC 2047
 * words, transfer encodings, charsets to UTF-8). */
int imap_search_match(const imap_search *s, const imap_search_ctx *ctx, const imap_msg *m);
/* The program has BODY or TEXT keys (reads and decodes message bodies). */
int imap_search_reads_body(const imap_search *s);
/* The program uses MODSEQ (CONDSTORE): the SEARCH reply ends with (MODSEQ n). */
int imap_search_uses_modseq(const imap_search *s);

/* ---- flags ---- */

/* A flag list "(\Seen $Label)" or a single flag → system flag bits (TERN__FLAG__*) and
 * keywords (pointers into args). \Recent and unknown \-flags are errors. 0 ok. */
int imap_flags_parse(const imap_arg *arg, uint32_t *flags_r, const char ***keywords_r, size_t *nkeywords_r,
		     const char **error_r);
/* "(\Seen \Flagged $Label)" for a message. */
void imap_flags_render(uint32_t flags, char **keywords, size_t nkeywords, int recent, tbuf *out);

/* ---- sections of the stored bytes ---- */

/* Read [off, off+len) of the message as the client sees it: header prefix followed by
 * the body blob. */
int imap_msg_read(const imap_msg *m, uint64_t off, uint64_t len, tbuf *out);

#endif
