/* lm_entry.c - the bounded attribute sets the mapping works on (lm_int.h): what a
 * directory sends is checked here once, so lm_map.c can trust every value it sees. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "lm_int.h"

/* Strict UTF-8 (RFC 3629): shortest form only, no surrogates, nothing above U+10FFFF,
 * and no NUL (a C string would silently end there). */
int lm_utf8_valid(const char *p, size_t len)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i];
		size_t n;
		unsigned cp;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (len - i - 1 < n)
			return 0;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

void lm_entry_init(lm_entry *e, const char *dn)
{
	memset(e, 0, sizeof(*e));
	e->dn = strdup(dn ? dn : "");
	if (!e->dn)
		abort();
}

/* Find or append the attribute; attribute names are case-insensitive (RFC 4512). */
static lm_attr *entry_attr(lm_entry *e, const char *name)
{
	for (size_t i = 0; i < e->nattrs; i++)
		if (strcasecmp(e->attrs[i].name, name) == 0)
			return &e->attrs[i];
	lm_attr *a = realloc(e->attrs, (e->nattrs + 1) * sizeof(*a));
	if (!a)
		abort();
	e->attrs = a;
	a = &e->attrs[e->nattrs++];
	a->name = strdup(name);
	if (!a->name)
		abort();
	a->vals = NULL;
	a->nvals = 0;
	return a;
}

int lm_entry_add(lm_entry *e, const char *name, const char *val, size_t len)
{
	if (len > LM_MAX_VALUE_LEN || !lm_utf8_valid(val, len)) {
		e->dropped++;
		return 1;
	}
	lm_attr *a = entry_attr(e, name);
	if (a->nvals >= LM_MAX_VALUES) {
		e->dropped++;
		return 1;
	}
	char **v = realloc(a->vals, (a->nvals + 1) * sizeof(*v));
	if (!v)
		abort();
	a->vals = v;
	a->vals[a->nvals] = strndup(val, len);
	if (!a->vals[a->nvals])
		abort();
	a->nvals++;
	return 0;
}

const lm_attr *lm_entry_get(const lm_entry *e, const char *name)
{
	for (size_t i = 0; i < e->nattrs; i++)
		if (strcasecmp(e->attrs[i].name, name) == 0)
			return e->attrs[i].nvals ? &e->attrs[i] : NULL;
	return NULL;
}

const char *lm_entry_first(const lm_entry *e, const char *name)
{
	const lm_attr *a = lm_entry_get(e, name);
	return a ? a->vals[0] : NULL;
}

void lm_entry_clear(lm_entry *e)
{
	for (size_t i = 0; i < e->nattrs; i++) {
		for (size_t k = 0; k < e->attrs[i].nvals; k++)
			free(e->attrs[i].vals[k]);
		free(e->attrs[i].vals);
		free(e->attrs[i].name);
	}
	free(e->attrs);
	free(e->dn);
	memset(e, 0, sizeof(*e));
}

int lm_parse_range(const char *name, char *base, size_t n, long *lo_r, long *hi_r)
{
	const char *semi = strchr(name, ';');
	const char *opt = semi;

	/* Options may be several (";binary;range=..."); find the range one. */
	while (opt && strncasecmp(opt, ";range=", 7) != 0)
		opt = strchr(opt + 1, ';');
	if (!opt)
		return 0;
	size_t blen = (size_t)(semi - name);
	if (blen == 0 || blen >= n)
		return -1;
	memcpy(base, name, blen);
	base[blen] = '\0';

	char *end;
	const char *p = opt + 7;
	if (*p < '0' || *p > '9')
		return -1;
	long lo = strtol(p, &end, 10);
	if (*end != '-' || lo < 0)
		return -1;
	p = end + 1;
	long hi;
	if (*p == '*') {
		hi = -1;
		end = (char *)p + 1;
	} else {
		if (*p < '0' || *p > '9')
			return -1;
		hi = strtol(p, &end, 10);
		if (hi < lo)
			return -1;
	}
	if (*end != '\0' && *end != ';')
		return -1;
	*lo_r = lo;
	*hi_r = hi;
	return 1;
}

/* RFC 4515 escaping: the filter metacharacters and NUL become \XX, so a user name can
 * never change the structure of the filter it is put in. */
void lm_filter_escape(const char *in, tbuf *out)
{
	for (const char *p = in; *p; p++) {
		switch (*p) {
		case '*': case '(': case ')': case '\\':
			tbuf_appendf(out, "\\%02x", (unsigned char)*p);
			break;
		default:
			tbuf_append_char(out, *p);
		}
	}
}
