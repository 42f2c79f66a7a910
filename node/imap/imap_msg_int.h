/* imap_msg_int.h - helpers shared by the message engines of node/imap (FETCH, SEARCH):
 * the MIME record of a message and the plain-text handling of header sections. */
#ifndef TERN_IMAP_MSG_INT_H
#define TERN_IMAP_MSG_INT_H
#include <stddef.h>
#include <stdint.h>
#include "imap_msg.h"
#include "mime.h"

/* Largest header section that HEADER.FIELDS filtering and SEARCH header keys read. */
#define IMAP_MSG_HEADER_MAX (1024 * 1024)

/* The MIME record of m: the stored one, or (for a message stored without one) a fresh
 * analysis of the body, returned in *owned_r for the caller to free with
 * mime_info_free. NULL with *rc_r set on a read error. */
const Tern__MimeInfo *imap_msg_mime(const imap_msg *m, Tern__MimeInfo **owned_r, int *rc_r);

/* Header fields of a header section, one at a time (folded lines kept together; the
 * blank line that ends the section stops the walk). */
typedef struct imap_hdr_iter {
	const char *p, *end;
} imap_hdr_iter;

typedef struct imap_hdr_field {
	const char *name;       /* field name, without the colon */
	size_t name_len;
	const char *raw;        /* the whole field with its line endings */
	size_t raw_len;
	const char *value;      /* after the colon, folded, line endings included */
	size_t value_len;
} imap_hdr_field;

void imap_hdr_iter_init(imap_hdr_iter *it, const char *hdr, size_t len);
int imap_hdr_next(imap_hdr_iter *it, imap_hdr_field *f);
/* The fields named (or, with not, not named) in names, case-insensitively, followed by
 * the blank line (RFC 3501 HEADER.FIELDS). */
void imap_hdr_filter(const char *hdr, size_t len, char *const *names, size_t n, int not, tbuf *out);
/* The value of a header parameter (charset of Content-Type) into out, or "" when absent. */
void imap_hdr_param(const char *hdr, size_t len, const char *field, const char *param, char *out,
		    size_t outn);

/* ---- FETCH internals (imap_fetch.c, imap_fetch_section.c) ---- */

typedef enum {
	FETCH_ENVELOPE, FETCH_FLAGS, FETCH_INTERNALDATE, FETCH_RFC822_SIZE, FETCH_BODY,
	FETCH_BODYSTRUCTURE, FETCH_UID, FETCH_MODSEQ,
	FETCH_SECTION,          /* BODY[...], RFC822, RFC822.HEADER, RFC822.TEXT */
	FETCH_BINARY,           /* BINARY[...] */
	FETCH_BINARY_SIZE,      /* BINARY.SIZE[...] */
} fetch_kind;

typedef enum { SEC_ALL, SEC_HEADER, SEC_FIELDS, SEC_FIELDS_NOT, SEC_TEXT, SEC_MIME } fetch_sec;

#define FETCH_PART_MAX 64       /* "1.2.3" as text */
#define FETCH_FIELDS_MAX 256    /* names in one HEADER.FIELDS list */

typedef struct fetch_item {
	fetch_kind kind;
	fetch_sec sec;
	int peek;
	char part[FETCH_PART_MAX];      /* "" = the message itself */
	char **fields;
	size_t nfields;
	int partial;
	uint64_t poff, plen;
	char *name;                     /* reply name without <partial>, e.g. "BODY[1.MIME]" */
} fetch_item;

/* Parse one section attribute ("BODY.PEEK[1.HEADER.FIELDS (A B)]<0.10>", "BINARY[2]",
 * "BINARY.SIZE[1]") into it. 0 ok; -1 with *error_r. */
int imap_fetch_section_parse(const char *text, fetch_item *it, const char **error_r);
/* Append " NAME<o> {n}\r\n..." data of a section item for message m. 0 or a negative
 * store code / IMAP_FETCH_EUNKNOWN_CTE. */
int imap_fetch_section_render(const fetch_item *it, const imap_msg *m, const Tern__MimeInfo *mi, tbuf *out);

/* ---- SEARCH internals (imap_search.c parses, imap_search_match.c matches) ---- */

#define SEARCH_DEPTH_MAX 32                     /* nesting of NOT, OR and lists */
#define SEARCH_PART_RAW_MAX (4u << 20)          /* bytes of one part body read for BODY/TEXT */
#define SEARCH_TEXT_MAX (16u << 20)             /* decoded body text kept per message */
#define SEARCH_PART_HEADER_MAX (64u << 10)

typedef enum {
	SK_ALL, SK_AND, SK_OR, SK_NOT, SK_FLAG_SET, SK_FLAG_UNSET, SK_KEYWORD, SK_UNKEYWORD,
	SK_RECENT, SK_NEW, SK_OLD, SK_BEFORE, SK_ON, SK_SINCE, SK_SENTBEFORE, SK_SENTON,
	SK_SENTSINCE, SK_LARGER, SK_SMALLER, SK_HEADER, SK_BODY, SK_TEXT, SK_SEQ, SK_UID,
	SK_MODSEQ, SK_OLDER, SK_YOUNGER,
} skind;

/* A sequence set resolved for the max it was last matched with. */
typedef struct seq_cache {
	imap_seqset resolved;
	uint32_t max;
	int valid;
} seq_cache;

typedef struct snode {
	skind kind;
	uint32_t flag;
	int64_t num;                    /* size, modseq, day number, seconds */
	char *field;                    /* SK_HEADER: field name; SK_KEYWORD: the keyword */
	char *needle;                   /* casefolded UTF-8 */
	size_t needle_len;
	imap_seqset set;                /* SK_SEQ, SK_UID as parsed */
	seq_cache *cache;
	struct snode **kids;
	size_t nkids;
} snode;

struct imap_search {
	snode *root;
	int uses_modseq;
};

/* Days since 1970-01-01 of a civil date; month 1..12 of "Jan".. (0: not a month). */
int64_t imap_search_civil_days(int64_t y, unsigned m, unsigned d);
int imap_search_month(const char *p);
/* Match the program tree against one message: 1, 0 or a negative store code. */
int imap_search_node_match(const snode *root, const imap_search_ctx *ctx, const imap_msg *m);

#endif
