/* mime_int.h - private to node/mime/: the structure scanner (mime_scan.c), the header
 * field parsers (mime_param.c: Content-Type and friends; mime_addr.c: address lists and
 * ENVELOPE) and the IMAP rendering of strings and parts (mime_render.c).
 *
 * The scanner is our own, not GMime's parser, so that offsets are exact byte positions
 * in the stored message and broken MIME is handled the way Dovecot handles it (a
 * boundary line ends a part even inside its header, a multipart without parts gets one
 * empty text/plain part, ...). It works on plain memory, allocates only what it renders
 * and is bounded by MIME_DEPTH_MAX and MIME_PARTS_MAX. GMime does the decoding
 * (mime_decode.c). */
#ifndef TERN_MIME_INT_H
#define TERN_MIME_INT_H
#include "mime.h"

#define MIME_DEPTH_MAX 32        /* nested multiparts and enclosed messages */
#define MIME_PARTS_MAX 2000      /* entities in one message */
#define MIME_PARAMS_MAX 64       /* parameters kept per header field */
#define MIME_CONT_MAX 32         /* RFC 2231 continuations joined per parameter */

/* The header fields the analysis reads; the last occurrence wins (as in Dovecot). */
enum mime_field {
	MF_CONTENT_TYPE, MF_CTE, MF_CID, MF_CDESC, MF_CDISP, MF_CLANG, MF_CLOC, MF_CMD5,
	MF_DATE, MF_SUBJECT, MF_FROM, MF_SENDER, MF_REPLY_TO, MF_TO, MF_CC, MF_BCC,
	MF_IN_REPLY_TO, MF_MESSAGE_ID, MF_COUNT
};

/* Unfolded values (CR and LF removed) of one entity's header; present[i] tells an
 * empty field from an absent one. */
typedef struct mime_fields {
	tbuf v[MF_COUNT];
	int present[MF_COUNT];
} mime_fields;

void mime_fields_free(mime_fields *f);

/* One parameter as sent (RFC 2231 continuations joined, still encoded). */
typedef struct mime_param {
	tbuf name, value;
} mime_param;

/* A parsed Content-Type or Content-Disposition. value is "type/subtype" split in two
 * for Content-Type (type, subtype) and the disposition type for Content-Disposition
 * (type only). valid = 0 when the field is absent or unparsable. */
typedef struct mime_ctype {
	int valid;
	tbuf type, subtype;
	mime_param params[MIME_PARAMS_MAX];
	size_t nparams;
} mime_ctype;

/* Parse a Content-Type (want_subtype 1) or Content-Disposition (0) value. */
void mime_ctype_parse(const char *v, size_t len, int want_subtype, mime_ctype *ct);
void mime_ctype_free(mime_ctype *ct);
/* The value of parameter name (case-insensitive), or NULL. */
const tbuf *mime_ctype_param(const mime_ctype *ct, const char *name);

/* IMAP nstring of s (NULL = NIL): quoted, or a literal when it holds CR, LF, '"', '\\'
 * or 8-bit bytes. CR and LF are dropped first when nolf is set. */
void mime_imap_nstring(tbuf *out, const char *s, size_t n, int nolf);
/* The same for a string known to be present. */
void mime_imap_string(tbuf *out, const char *s, size_t n);

/* ENVELOPE of an entity's header (RFC 3501 §7.4.2). */
void mime_envelope_render(const mime_fields *f, tbuf *out);
/* One address list ("((name adl mailbox host) ...)" or NIL) of a raw header value. */
void mime_addr_list_render(const char *v, size_t len, tbuf *out);

/* What the renderer needs of one analysed entity. */
typedef struct mime_entity {
	Tern__MimePart *part;
	const mime_fields *fields;
	const mime_ctype *ct;          /* parsed Content-Type (valid or not) */
	int multipart;                 /* rendered as a multipart (children in bs/body) */
	int message;                   /* rendered as message/rfc822 with env, bs, body */
	int text;                      /* type text: body lines are sent */
	const char *dtype, *dsubtype;  /* type used when ct is not valid */
	const tbuf *child_bs, *child_body, *child_env; /* children, rendered */
} mime_entity;

/* BODYSTRUCTURE (ext 1) or BODY (ext 0) of one entity, appended to out. */
void mime_render_part(const mime_entity *e, int ext, tbuf *out);

#endif
