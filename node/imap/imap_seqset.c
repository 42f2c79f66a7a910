/* imap_seqset.c - sequence sets of RFC 3501 §9 ("1:5,7,9:*"): parsing, resolution of '*'
 * against the highest number in use, and membership tests. */
#include <stdlib.h>
#include <string.h>
#include "imap_args.h"

#define SEQSET_STAR UINT32_MAX

/* One seq-number: an nz-number (1..4294967295, no leading zero) or '*'. Advances *pp. */
static int seq_number(const char **pp, uint32_t *v_r)
{
	const char *p = *pp;
	uint64_t v = 0;

	if (*p == '*') {
		*v_r = SEQSET_STAR;
		*pp = p + 1;
		return 0;
	}
	if (*p < '1' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return -1;
		p++;
	}
	*v_r = (uint32_t)v;
	*pp = p;
	return 0;
}

/* The ranges are kept as given ('*' as UINT32_MAX, either order) until resolved. */
int imap_seqset_parse(const char *s, imap_seqset *set, const char **error_r)
{
	size_t cap = 0;
	const char *p = s;

	set->r = NULL;
	set->n = 0;
	if (s == NULL || *s == '\0') {
		*error_r = "Empty sequence set";
		return -1;
	}
	for (;;) {
		imap_seqrange r;

		if (seq_number(&p, &r.lo) != 0)
			goto bad;
		r.hi = r.lo;
		if (*p == ':') {
			p++;
			if (seq_number(&p, &r.hi) != 0)
				goto bad;
		}
		if (set->n == cap) {
			cap = cap ? cap * 2 : 4;
			imap_seqrange *nr = realloc(set->r, cap * sizeof(*nr));
			if (nr == NULL)
				goto bad;
			set->r = nr;
		}
		set->r[set->n++] = r;
		if (*p == '\0')
			return 0;
		if (*p != ',')
			goto bad;
		p++;
	}
bad:
	imap_seqset_free(set);
	*error_r = "Invalid sequence set";
	return -1;
}

static int range_cmp(const void *a, const void *b)
{
	const imap_seqrange *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* After resolution the ranges are ordered and disjoint, so that contains is a binary
 * search and callers can walk them in ascending order. */
void imap_seqset_resolve(imap_seqset *set, uint32_t max)
{
	size_t i, n = 0;

	for (i = 0; i < set->n; i++) {
		imap_seqrange r = set->r[i];

		if (r.lo == SEQSET_STAR || r.hi == SEQSET_STAR) {
			if (max == 0)
				continue;
			if (r.lo == SEQSET_STAR)
				r.lo = max;
			if (r.hi == SEQSET_STAR)
				r.hi = max;
		}
		if (r.lo > r.hi) {
			uint32_t t = r.lo;
			r.lo = r.hi;
			r.hi = t;
		}
		set->r[n++] = r;
	}
	set->n = n;
	if (n == 0)
		return;
	qsort(set->r, n, sizeof(*set->r), range_cmp);
	size_t out = 0;
	for (i = 1; i < n; i++) {
		imap_seqrange *last = &set->r[out];

		if (last->hi == UINT32_MAX || set->r[i].lo <= last->hi + 1) {
			if (set->r[i].hi > last->hi)
				last->hi = set->r[i].hi;
		} else {
			set->r[++out] = set->r[i];
		}
	}
	set->n = out + 1;
}

/* The set must have been resolved (ordered, disjoint ranges). */
int imap_seqset_contains(const imap_seqset *set, uint32_t v)
{
	size_t lo = 0, hi = set->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v < set->r[mid].lo)
			hi = mid;
		else if (v > set->r[mid].hi)
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

void imap_seqset_free(imap_seqset *set)
{
	free(set->r);
	set->r = NULL;
	set->n = 0;
}
