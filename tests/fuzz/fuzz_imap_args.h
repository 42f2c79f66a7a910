/* fuzz_imap_args.h - for the fuzzers of node/imap's argument parsers (FETCH, SEARCH):
 * fuzz input split into IMAP arguments (atoms, quoted strings, lists) as the command
 * parser would hand them over, 8-bit bytes and all. */
#ifndef TERN_FUZZ_IMAP_ARGS_H
#define TERN_FUZZ_IMAP_ARGS_H
#include <stddef.h>
#include <string.h>
#include "imap_msg_int.h"

#define POOL 512

typedef struct pool {
	imap_arg a[POOL];
	size_t n;
	char text[8192];
	size_t tn;
} pool;

/* Arguments up to ')' or the end, into out (at most max); lists nest up to depth 8. */
static size_t split(pool *p, const char **s, const char *end, imap_arg *out, size_t max, int depth)
{
	size_t n = 0;

	while (*s < end && n < max) {
		char c = **s;
		if (c == ' ') {
			(*s)++;
			continue;
		}
		if (c == ')')
			return n;
		imap_arg *a = &out[n];
		memset(a, 0, sizeof(*a));
		if (c == '(' && depth < 8) {
			imap_arg tmp[32];
			(*s)++;
			size_t k = split(p, s, end, tmp, 32, depth + 1);
			if (*s < end)
				(*s)++;
			if (p->n + k > POOL)
				return n;
			memcpy(&p->a[p->n], tmp, k * sizeof(*tmp));
			a->type = IMAP_ARG_LIST;
			a->list = &p->a[p->n];
			a->nlist = k;
			p->n += k;
			n++;
			continue;
		}
		char *t = &p->text[p->tn];
		size_t len = 0, room = sizeof(p->text) - p->tn - 1;
		if (room == 0)
			return n;
		a->type = c == '"' ? IMAP_ARG_STRING : IMAP_ARG_ATOM;
		if (c == '"')
			(*s)++;
		while (*s < end && len < room) {
			c = **s;
			if (a->type == IMAP_ARG_STRING ? c == '"' : (c == ' ' || c == '(' || c == ')'))
				break;
			t[len++] = c;
			(*s)++;
		}
		if (a->type == IMAP_ARG_STRING && *s < end)
			(*s)++;
		t[len] = '\0';
		p->tn += len + 1;
		a->str = t;
		a->len = len;
		n++;
	}
	return n;
}

#endif
