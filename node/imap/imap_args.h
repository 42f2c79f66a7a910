/* imap_args.h - what the IMAP command parser hands to the command handlers: a command's
 * arguments as a tree of typed values (RFC 3501 §4, §9), literals already read. Private to
 * node/imap/ but shared by the session (imap_parse.c, imap_session.c, cmd_*.c) and the
 * message engines (imap_fetch.c, imap_search.c, imap_seqset.c). */
#ifndef TERN_IMAP_ARGS_H
#define TERN_IMAP_ARGS_H
#include <stddef.h>
#include <stdint.h>
#include "tern.h"

typedef enum {
	IMAP_ARG_ATOM,        /* atom, also "*", "1:5", "BODY[1.2]<0.10>" as one atom */
	IMAP_ARG_STRING,      /* quoted string or literal ({n} / {n+}); may hold NULs */
	IMAP_ARG_LIST,        /* parenthesised list */
	IMAP_ARG_NIL,
} imap_arg_type;

typedef struct imap_arg {
	imap_arg_type type;
	const char *str;      /* ATOM/STRING: the bytes (NUL-terminated copy), else NULL */
	size_t len;
	const struct imap_arg *list;   /* LIST: the elements */
	size_t nlist;
	int literal8;         /* STRING from a ~{n} literal (BINARY APPEND) */
} imap_arg;

/* A FETCH section like BODY[1.2.HEADER.FIELDS (A B)]<0.100> arrives as an ATOM whose
 * text ends at ']' only when no list is inside; with a list the parser joins the pieces,
 * so that the fetch engine always sees one atom for one fetch attribute. */

/* ---- sequence sets (RFC 3501 §9 sequence-set) ---- */

typedef struct imap_seqrange {
	uint32_t lo, hi;      /* inclusive, lo <= hi after resolution; UINT32_MAX stands for '*' */
} imap_seqrange;

typedef struct imap_seqset {
	imap_seqrange *r;
	size_t n;
} imap_seqset;

/* Parse "1:5,7,9:*" (also "$" when allow_saved, RFC 5182 - may be ignored). Numbers are
 * 1..4294967295; "0", overflow, empty pieces or a trailing comma are errors.
 * 0 ok; -1 with *error_r (static text). */
int imap_seqset_parse(const char *s, imap_seqset *set, const char **error_r);
/* Replace '*' by max and order each range (5:3 -> 3:5); with max 0 '*' ranges vanish. */
void imap_seqset_resolve(imap_seqset *set, uint32_t max);
int imap_seqset_contains(const imap_seqset *set, uint32_t v);
void imap_seqset_free(imap_seqset *set);

#endif
