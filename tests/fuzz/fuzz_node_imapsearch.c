/* fuzz_node_imapsearch.c - the SEARCH program parser of node/imap. The input is split
 * into IMAP arguments (atoms, quoted strings, lists) as the command parser would hand
 * them over, 8-bit bytes and all. Checks: no crash, leak or unbounded recursion, and a
 * parse error always has a message. Matching needs a store and is covered by
 * test_node_imap_search. */
#include <stdint.h>
#include <stdlib.h>
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static pool p;
	imap_arg top[POOL];
	const char *s = (const char *)data, *end = s + size;
	imap_search *srch = NULL;
	const char *err = NULL;

	p.n = p.tn = 0;
	size_t n = split(&p, &s, end, top, POOL, 0);
	int rc = imap_search_parse(top, n, &srch, &err);
	if (rc == 0) {
		if (srch == NULL)
			abort();
		(void)imap_search_uses_modseq(srch);
		imap_search_free(&srch);
	} else if (rc != -1 || err == NULL || srch != NULL) {
		abort();
	}
	return 0;
}
