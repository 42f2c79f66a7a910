/* imap_flags.c - flag lists of STORE, APPEND and FETCH FLAGS (RFC 3501 §2.3.2): system
 * flags map to TERN__FLAG__* bits, anything else that is a valid atom is a keyword. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "imap_msg.h"

static const struct {
	const char *name;
	uint32_t bit;
} system_flags[] = {
	{ "\\Seen", TERN__FLAG__FLAG_SEEN },
	{ "\\Answered", TERN__FLAG__FLAG_ANSWERED },
	{ "\\Flagged", TERN__FLAG__FLAG_FLAGGED },
	{ "\\Deleted", TERN__FLAG__FLAG_DELETED },
	{ "\\Draft", TERN__FLAG__FLAG_DRAFT },
};

/* atom-char minus the characters a flag keyword may not hold (RFC 3501 §9). */
static int keyword_valid(const char *s, size_t len)
{
	if (len == 0 || len > 255)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return 0;
	}
	return 1;
}

/* One flag atom into the bits or the keyword array (duplicates dropped). */
static int flag_one(const imap_arg *a, uint32_t *flags, const char **kw, size_t *nkw, const char **error_r)
{
	if (a->type != IMAP_ARG_ATOM || a->len == 0) {
		*error_r = "Invalid flag";
		return -1;
	}
	if (a->str[0] == '\\') {
		for (size_t i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]); i++) {
			if (strcasecmp(a->str, system_flags[i].name) == 0) {
				*flags |= system_flags[i].bit;
				return 0;
			}
		}
		*error_r = strcasecmp(a->str, "\\Recent") == 0 ? "\\Recent cannot be set" : "Invalid system flag";
		return -1;
	}
	if (!keyword_valid(a->str, a->len)) {
		*error_r = "Invalid flag keyword";
		return -1;
	}
	for (size_t i = 0; i < *nkw; i++)
		if (strcasecmp(kw[i], a->str) == 0)
			return 0;
	kw[(*nkw)++] = a->str;
	return 0;
}

/* *keywords_r is a malloc'd array (free() it; NULL when there are none) of pointers into
 * the argument tree, so it lives as long as the arguments. */
int imap_flags_parse(const imap_arg *arg, uint32_t *flags_r, const char ***keywords_r, size_t *nkeywords_r,
		     const char **error_r)
{
	const imap_arg *items = arg;
	size_t n = 1, nkw = 0;
	const char **kw = NULL;
	uint32_t flags = 0;

	if (arg->type == IMAP_ARG_LIST) {
		items = arg->list;
		n = arg->nlist;
	}
	if (n > 0) {
		kw = calloc(n, sizeof(*kw));
		if (kw == NULL) {
			*error_r = "Out of memory";
			return -1;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (flag_one(&items[i], &flags, kw, &nkw, error_r) != 0) {
			free(kw);
			return -1;
		}
	}
	if (nkw == 0) {
		free(kw);
		kw = NULL;
	}
	*flags_r = flags;
	*keywords_r = kw;
	*nkeywords_r = nkw;
	return 0;
}

void imap_flags_render(uint32_t flags, char **keywords, size_t nkeywords, int recent, tbuf *out)
{
	int first = 1;

	tbuf_append_char(out, '(');
	for (size_t i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]); i++) {
		if (flags & system_flags[i].bit) {
			if (!first)
				tbuf_append_char(out, ' ');
			tbuf_append_str(out, system_flags[i].name);
			first = 0;
		}
	}
	if (recent) {
		tbuf_append_str(out, first ? "\\Recent" : " \\Recent");
		first = 0;
	}
	for (size_t i = 0; i < nkeywords; i++) {
		if (!first)
			tbuf_append_char(out, ' ');
		tbuf_append_str(out, keywords[i]);
		first = 0;
	}
	tbuf_append_char(out, ')');
}
