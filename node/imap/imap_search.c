/* imap_search.c - SEARCH programs (RFC 3501 §6.4.4 every key, MODSEQ of RFC 7162, OLDER
 * and YOUNGER of RFC 5032): parsed once into a tree, then matched against one message at
 * a time. Text keys match case-insensitively (Unicode case folding of glib) on decoded
 * text: header values with their RFC 2047 words decoded, text bodies with their
 * transfer encoding and charset undone. Search strings must be valid UTF-8: anything
 * else is refused at parse time with a BAD, so 8-bit garbage never reaches matching.
 * The message is read lazily and at most once per match; body text is bounded. */
#include <ctype.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "imap_msg_int.h"

static const struct {
	const char *name;
	skind kind;
	uint32_t flag;
	const char *field;
} key_table[] = {
	{ "ALL", SK_ALL, 0, NULL },
	{ "ANSWERED", SK_FLAG_SET, TERN__FLAG__FLAG_ANSWERED, NULL },
	{ "DELETED", SK_FLAG_SET, TERN__FLAG__FLAG_DELETED, NULL },
	{ "DRAFT", SK_FLAG_SET, TERN__FLAG__FLAG_DRAFT, NULL },
	{ "FLAGGED", SK_FLAG_SET, TERN__FLAG__FLAG_FLAGGED, NULL },
	{ "SEEN", SK_FLAG_SET, TERN__FLAG__FLAG_SEEN, NULL },
	{ "UNANSWERED", SK_FLAG_UNSET, TERN__FLAG__FLAG_ANSWERED, NULL },
	{ "UNDELETED", SK_FLAG_UNSET, TERN__FLAG__FLAG_DELETED, NULL },
	{ "UNDRAFT", SK_FLAG_UNSET, TERN__FLAG__FLAG_DRAFT, NULL },
	{ "UNFLAGGED", SK_FLAG_UNSET, TERN__FLAG__FLAG_FLAGGED, NULL },
	{ "UNSEEN", SK_FLAG_UNSET, TERN__FLAG__FLAG_SEEN, NULL },
	{ "KEYWORD", SK_KEYWORD, 0, NULL },
	{ "UNKEYWORD", SK_UNKEYWORD, 0, NULL },
	{ "RECENT", SK_RECENT, 0, NULL },
	{ "NEW", SK_NEW, 0, NULL },
	{ "OLD", SK_OLD, 0, NULL },
	{ "BEFORE", SK_BEFORE, 0, NULL },
	{ "ON", SK_ON, 0, NULL },
	{ "SINCE", SK_SINCE, 0, NULL },
	{ "SENTBEFORE", SK_SENTBEFORE, 0, NULL },
	{ "SENTON", SK_SENTON, 0, NULL },
	{ "SENTSINCE", SK_SENTSINCE, 0, NULL },
	{ "LARGER", SK_LARGER, 0, NULL },
	{ "SMALLER", SK_SMALLER, 0, NULL },
	{ "BCC", SK_HEADER, 0, "Bcc" },
	{ "CC", SK_HEADER, 0, "Cc" },
	{ "FROM", SK_HEADER, 0, "From" },
	{ "SUBJECT", SK_HEADER, 0, "Subject" },
	{ "TO", SK_HEADER, 0, "To" },
	{ "HEADER", SK_HEADER, 0, NULL },
	{ "BODY", SK_BODY, 0, NULL },
	{ "TEXT", SK_TEXT, 0, NULL },
	{ "NOT", SK_NOT, 0, NULL },
	{ "OR", SK_OR, 0, NULL },
	{ "UID", SK_UID, 0, NULL },
	{ "MODSEQ", SK_MODSEQ, 0, NULL },
	{ "OLDER", SK_OLDER, 0, NULL },
	{ "YOUNGER", SK_YOUNGER, 0, NULL },
};

static void node_free(snode *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n->field);
	free(n->needle);
	imap_seqset_free(&n->set);
	if (n->cache) {
		imap_seqset_free(&n->cache->resolved);
		free(n->cache);
	}
	free(n);
}

void imap_search_free(imap_search **sp)
{
	if (*sp == NULL)
		return;
	node_free((*sp)->root);
	free(*sp);
	*sp = NULL;
}

static int add_kid(snode *parent, snode *kid)
{
	snode **k = realloc(parent->kids, (parent->nkids + 1) * sizeof(*k));

	if (k == NULL)
		return -1;
	parent->kids = k;
	parent->kids[parent->nkids++] = kid;
	return 0;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
int64_t imap_search_civil_days(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

int imap_search_month(const char *p)
{
	static const char months[12][4] = { "jan", "feb", "mar", "apr", "may", "jun",
					    "jul", "aug", "sep", "oct", "nov", "dec" };
	for (int i = 0; i < 12; i++)
		if (strncasecmp(p, months[i], 3) == 0)
			return i + 1;
	return 0;
}

/* "1-Feb-1994" (RFC 3501 date) into a day number. */
static int parse_search_date(const char *s, size_t len, int64_t *day_r)
{
	unsigned d = 0, y = 0;
	size_t i = 0;

	while (i < len && i < 2 && isdigit((unsigned char)s[i]))
		d = d * 10 + (unsigned)(s[i++] - '0');
	if (i == 0 || d < 1 || d > 31 || i + 9 != len || s[i] != '-' || s[i + 4] != '-')
		return -1;
	int m = imap_search_month(s + i + 1);
	if (m == 0)
		return -1;
	for (size_t k = i + 5; k < len; k++) {
		if (!isdigit((unsigned char)s[k]))
			return -1;
		y = y * 10 + (unsigned)(s[k] - '0');
	}
	*day_r = imap_search_civil_days(y, (unsigned)m, d);
	return 0;
}

static int parse_uint(const imap_arg *a, int64_t max, int64_t *v_r)
{
	int64_t v = 0;

	if (a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > 19)
		return -1;
	for (size_t i = 0; i < a->len; i++) {
		if (!isdigit((unsigned char)a->str[i]))
			return -1;
		v = v * 10 + (a->str[i] - '0');
	}
	if (v > max)
		return -1;
	*v_r = v;
	return 0;
}

/* A search string: valid UTF-8 without NULs, kept casefolded. */
static int set_needle(snode *n, const imap_arg *a, const char **error_r)
{
	if (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_STRING) {
		*error_r = "Missing search string";
		return -1;
	}
	if (!g_utf8_validate(a->str, (gssize)a->len, NULL)) {
		*error_r = "Search string is not valid UTF-8";
		return -1;
	}
	gchar *f = g_utf8_casefold(a->str, (gssize)a->len);
	n->needle = strdup(f);
	g_free(f);
	if (n->needle == NULL) {
		*error_r = "Out of memory";
		return -1;
	}
	n->needle_len = strlen(n->needle);
	return 0;
}

static snode *parse_key(const imap_arg *args, size_t nargs, size_t *ip, int depth, int *modseq, const char **error_r);

/* The keys of a list (or of the whole command) as one AND node. */
static snode *parse_and(const imap_arg *args, size_t nargs, int depth, int *modseq, const char **error_r)
{
	snode *n = calloc(1, sizeof(*n));
	size_t i = 0;

	if (n == NULL)
		return NULL;
	n->kind = SK_AND;
	if (nargs == 0) {
		*error_r = "Missing search key";
		goto bad;
	}
	while (i < nargs) {
		snode *k = parse_key(args, nargs, &i, depth + 1, modseq, error_r);
		if (k == NULL || add_kid(n, k) != 0) {
			node_free(k);
			goto bad;
		}
	}
	return n;
bad:
	node_free(n);
	return NULL;
}

/* Arguments of the key n (its name consumed) from args[*ip]. */
static int parse_key_args(snode *n, const char *field, const imap_arg *args, size_t nargs, size_t *ip, int depth,
			  int *modseq, const char **error_r)
{
	const imap_arg *a = *ip < nargs ? &args[*ip] : NULL;

	*error_r = "Missing or invalid search key argument";
	switch (n->kind) {
	case SK_NOT:
	case SK_OR:
		for (int k = n->kind == SK_OR ? 2 : 1; k > 0; k--) {
			snode *kid = *ip < nargs ? parse_key(args, nargs, ip, depth + 1, modseq, error_r) : NULL;
			if (kid == NULL || add_kid(n, kid) != 0) {
				node_free(kid);
				return -1;
			}
		}
		return 0;
	case SK_KEYWORD:
	case SK_UNKEYWORD:
		if (a == NULL || a->type != IMAP_ARG_ATOM || (n->field = strdup(a->str)) == NULL)
			return -1;
		break;
	case SK_BEFORE: case SK_ON: case SK_SINCE: case SK_SENTBEFORE: case SK_SENTON: case SK_SENTSINCE:
		if (a == NULL || a->type == IMAP_ARG_LIST || a->type == IMAP_ARG_NIL ||
		    parse_search_date(a->str, a->len, &n->num) != 0)
			return -1;
		break;
	case SK_LARGER: case SK_SMALLER: case SK_OLDER: case SK_YOUNGER:
		if (a == NULL || parse_uint(a, INT64_MAX, &n->num) != 0)
			return -1;
		break;
	case SK_HEADER:
		if (field == NULL) {
			if (a == NULL || (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_STRING) || a->len == 0 ||
			    memchr(a->str, '\0', a->len) || (n->field = strdup(a->str)) == NULL)
				return -1;
			(*ip)++;
			a = *ip < nargs ? &args[*ip] : NULL;
		} else if ((n->field = strdup(field)) == NULL) {
			return -1;
		}
		/* fall through */
	case SK_BODY:
	case SK_TEXT:
		if (a == NULL || set_needle(n, a, error_r) != 0)
			return -1;
		break;
	case SK_UID:
		if (a == NULL || a->type != IMAP_ARG_ATOM || imap_seqset_parse(a->str, &n->set, error_r) != 0 ||
		    (n->cache = calloc(1, sizeof(*n->cache))) == NULL)
			return -1;
		break;
	case SK_MODSEQ:
		/* MODSEQ [entry-name entry-type-req] mod-sequence-valzer */
		if (a != NULL && a->type == IMAP_ARG_STRING && *ip + 2 < nargs && args[*ip + 1].type == IMAP_ARG_ATOM) {
			const char *t = args[*ip + 1].str;
			if (strcasecmp(t, "priv") != 0 && strcasecmp(t, "shared") != 0 && strcasecmp(t, "all") != 0)
				return -1;
			*ip += 2;
			a = &args[*ip];
		}
		if (a == NULL || parse_uint(a, INT64_MAX, &n->num) != 0)
			return -1;
		*modseq = 1;
		break;
	default:
		return 0;
	}
	(*ip)++;
	return 0;
}

static snode *parse_key(const imap_arg *args, size_t nargs, size_t *ip, int depth, int *modseq, const char **error_r)
{
	const imap_arg *a = &args[(*ip)++];

	if (depth > SEARCH_DEPTH_MAX) {
		*error_r = "Search program nested too deeply";
		return NULL;
	}
	if (a->type == IMAP_ARG_LIST)
		return parse_and(a->list, a->nlist, depth, modseq, error_r);
	if (a->type != IMAP_ARG_ATOM || a->len == 0) {
		*error_r = "Invalid search key";
		return NULL;
	}
	snode *n = calloc(1, sizeof(*n));
	if (n == NULL) {
		*error_r = "Out of memory";
		return NULL;
	}
	if (isdigit((unsigned char)a->str[0]) || a->str[0] == '*' || a->str[0] == '$') {
		n->kind = SK_SEQ;
		if (imap_seqset_parse(a->str, &n->set, error_r) != 0 || (n->cache = calloc(1, sizeof(*n->cache))) == NULL)
			goto bad;
		return n;
	}
	for (size_t i = 0; i < sizeof(key_table) / sizeof(key_table[0]); i++) {
		if (strcasecmp(a->str, key_table[i].name) != 0)
			continue;
		n->kind = key_table[i].kind;
		n->flag = key_table[i].flag;
		if (parse_key_args(n, key_table[i].field, args, nargs, ip, depth, modseq, error_r) != 0)
			goto bad;
		return n;
	}
	*error_r = "Unknown search key";
bad:
	node_free(n);
	return NULL;
}

int imap_search_parse(const imap_arg *args, size_t nargs, imap_search **s_r, const char **error_r)
{
	imap_search *s = calloc(1, sizeof(*s));

	*s_r = NULL;
	*error_r = NULL;
	if (s == NULL) {
		*error_r = "Out of memory";
		return -1;
	}
	if (nargs >= 1 && args[0].type == IMAP_ARG_ATOM && strcasecmp(args[0].str, "CHARSET") == 0) {
		if (nargs < 2 || (args[1].type != IMAP_ARG_ATOM && args[1].type != IMAP_ARG_STRING) ||
		    (strcasecmp(args[1].str, "UTF-8") != 0 && strcasecmp(args[1].str, "US-ASCII") != 0)) {
			*error_r = "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset";
			free(s);
			return -1;
		}
		args += 2;
		nargs -= 2;
	}
	s->root = parse_and(args, nargs, 0, &s->uses_modseq, error_r);
	if (s->root == NULL) {
		if (*error_r == NULL)
			*error_r = "Out of memory";
		free(s);
		return -1;
	}
	*s_r = s;
	return 0;
}

static int node_reads_body(const snode *n)
{
	if (n->kind == SK_BODY || n->kind == SK_TEXT)
		return 1;
	for (size_t i = 0; i < n->nkids; i++)
		if (node_reads_body(n->kids[i]))
			return 1;
	return 0;
}

int imap_search_reads_body(const imap_search *s)
{
	return node_reads_body(s->root);
}

int imap_search_uses_modseq(const imap_search *s)
{
	return s->uses_modseq;
}
