/* dav_cal_text.c - text-match (RFC 4791 §9.7.5, RFC 6352 §10.5.4) with its collations,
 * the parsing the CalDAV and CardDAV filters share (name and test attributes,
 * param-filter), and small libxml2 helpers. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dav_ical_int.h"

char *dav_xml_attr(xmlNode *n, const char *name)
{
	return (char *)xmlGetNoNsProp(n, (const xmlChar *)name);
}

int dav_xml_is(const xmlNode *n, const char *ns, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
	       strcmp((const char *)n->ns->href, ns) == 0 && strcmp((const char *)n->name, name) == 0;
}

char *dav_filter_name(xmlNode *n, int upper, tbuf *err)
{
	char *a = dav_xml_attr(n, "name");
	if (!a || !*a) {
		tbuf_appendf(err, "%s without a name", (const char *)n->name);
		xmlFree(a);
		return NULL;
	}
	char *s = strdup(a);
	xmlFree(a);
	if (!s)
		abort();
	for (char *c = s; upper && *c; c++)
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 32);
	return s;
}

int dav_filter_test(xmlNode *n, int def, int *anyof, tbuf *err)
{
	char *a = dav_xml_attr(n, "test");
	int rc = 0;
	*anyof = def;
	if (a) {
		if (strcmp(a, "anyof") == 0)
			*anyof = 1;
		else if (strcmp(a, "allof") == 0)
			*anyof = 0;
		else {
			tbuf_appendf(err, "bad test attribute %.50s", a);
			rc = -1;
		}
		xmlFree(a);
	}
	return rc;
}

void *dav_filter_grow(void **arr, size_t *n, size_t sz)
{
	char *a = realloc(*arr, (*n + 1) * sz);
	if (!a)
		abort();
	memset(a + *n * sz, 0, sz);
	*arr = a;
	return a + (*n)++ * sz;
}

int dav_param_filter_parse(xmlNode *n, const char *ns, enum dav_collation coll, int upper, size_t *budget,
			   size_t max, dav_param_filter *pf, tbuf *err)
{
	if (!(pf->name = dav_filter_name(n, upper, err)))
		return -1;
	for (xmlNode *k = n->children; k; k = k->next) {
		if (k->type != XML_ELEMENT_NODE)
			continue;
		if (dav_xml_is(k, ns, "is-not-defined")) {
			pf->not_defined = 1;
		} else if (dav_xml_is(k, ns, "text-match") && !pf->has_tm) {
			if (budget && ++*budget > max) {
				tbuf_append_str(err, "filter too large");
				return -1;
			}
			if (dav_text_match_parse(k, coll, &pf->tm, err) < 0)
				return -1;
			pf->has_tm = 1;
		} else {
			tbuf_appendf(err, "unexpected %s in param-filter", (const char *)k->name);
			return -1;
		}
	}
	return 0;
}

void dav_param_filter_clear(dav_param_filter *pf)
{
	free(pf->name);
	pf->name = NULL;
	dav_text_match_clear(&pf->tm);
}

/* One code point from UTF-8 at s (advancing *i); invalid bytes stand for themselves. */
static uint32_t dav_utf8_next(const unsigned char *s, size_t n, size_t *i)
{
	unsigned char c = s[*i];
	size_t k = c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
	if (k == 1 || *i + k > n) {
		(*i)++;
		return c;
	}
	uint32_t cp = c & (0x3F >> (k - 1));
	for (size_t j = 1; j < k; j++) {
		if ((s[*i + j] & 0xC0) != 0x80) {
			(*i)++;
			return c;
		}
		cp = (cp << 6) | (s[*i + j] & 0x3F);
	}
	*i += k;
	return cp;
}

static void dav_utf8_put(tbuf *b, uint32_t cp)
{
	char o[4];
	if (cp < 0x80) {
		tbuf_append_char(b, (char)cp);
	} else if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		tbuf_append(b, o, 2);
	} else if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		tbuf_append(b, o, 3);
	} else {
		o[0] = (char)(0xF0 | (cp >> 18));
		o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[3] = (char)(0x80 | (cp & 0x3F));
		tbuf_append(b, o, 4);
	}
}

/* Simple lower-case folding of the scripts address books mostly hold (ASCII, Latin-1,
 * Latin Extended-A, Greek, Cyrillic): an approximation of i;unicode-casemap (RFC 5051)
 * without decomposition. */
static uint32_t dav_fold_cp(uint32_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c + 32;
	if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
		return c + 32;
	if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 &&
	    c != 0x17F) {
		int odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
		if (odd_upper ? (c & 1) : !(c & 1))
			return c + 1;
		return c;
	}
	if (c >= 0x391 && c <= 0x3AB && c != 0x3A2)
		return c + 32;
	if (c >= 0x410 && c <= 0x42F)
		return c + 32;
	if (c >= 0x400 && c <= 0x40F)
		return c + 80;
	return c;
}

/* s under the collation, into b (case-folded unless i;octet). */
static void dav_collate(const char *s, enum dav_collation coll, tbuf *b)
{
	size_t n = strlen(s);
	tbuf_reset(b);
	if (coll == DAV_COLL_OCTET) {
		tbuf_append(b, s, n);
		return;
	}
	if (coll == DAV_COLL_ASCII) {
		for (size_t i = 0; i < n; i++) {
			char c = s[i];
			tbuf_append_char(b, c >= 'A' && c <= 'Z' ? (char)(c + 32) : c);
		}
		return;
	}
	for (size_t i = 0; i < n;)
		dav_utf8_put(b, dav_fold_cp(dav_utf8_next((const unsigned char *)s, n, &i)));
}

int dav_text_match_parse(xmlNode *n, enum dav_collation def, dav_text_match *tm, tbuf *err)
{
	memset(tm, 0, sizeof(*tm));
	tm->coll = def;
	char *a = dav_xml_attr(n, "collation");
	if (a) {
		if (strcasecmp(a, "i;ascii-casemap") == 0)
			tm->coll = DAV_COLL_ASCII;
		else if (strcasecmp(a, "i;octet") == 0)
			tm->coll = DAV_COLL_OCTET;
		else if (strcasecmp(a, "i;unicode-casemap") == 0)
			tm->coll = DAV_COLL_UNICODE;
		else {
			tbuf_appendf(err, "supported-collation: unsupported collation %.100s", a);
			xmlFree(a);
			return -1;
		}
		xmlFree(a);
	}
	if ((a = dav_xml_attr(n, "negate-condition"))) {
		int bad = strcmp(a, "yes") != 0 && strcmp(a, "no") != 0;
		tm->negate = strcmp(a, "yes") == 0;
		xmlFree(a);
		if (bad) {
			tbuf_append_str(err, "negate-condition must be yes or no");
			return -1;
		}
	}
	if ((a = dav_xml_attr(n, "match-type"))) {
		if (strcmp(a, "equals") == 0)
			tm->type = DAV_MATCH_EQUALS;
		else if (strcmp(a, "contains") == 0)
			tm->type = DAV_MATCH_CONTAINS;
		else if (strcmp(a, "starts-with") == 0)
			tm->type = DAV_MATCH_STARTS;
		else if (strcmp(a, "ends-with") == 0)
			tm->type = DAV_MATCH_ENDS;
		else {
			tbuf_appendf(err, "unsupported match-type %.100s", a);
			xmlFree(a);
			return -1;
		}
		xmlFree(a);
	}
	xmlChar *c = xmlNodeGetContent(n);
	tbuf t = TBUF_INIT;
	dav_collate(c ? (const char *)c : "", tm->coll, &t);
	xmlFree(c);
	tm->text = tbuf_steal(&t);
	return 0;
}

int dav_text_match_test(const dav_text_match *tm, const char *value)
{
	tbuf v = TBUF_INIT;
	dav_collate(value ? value : "", tm->coll, &v);
	const char *h = tbuf_cstr(&v);
	size_t hn = v.len, nn = strlen(tm->text);
	int hit = 0;
	switch (tm->type) {
	case DAV_MATCH_EQUALS:
		hit = hn == nn && memcmp(h, tm->text, nn) == 0;
		break;
	case DAV_MATCH_STARTS:
		hit = hn >= nn && memcmp(h, tm->text, nn) == 0;
		break;
	case DAV_MATCH_ENDS:
		hit = hn >= nn && memcmp(h + hn - nn, tm->text, nn) == 0;
		break;
	case DAV_MATCH_CONTAINS:
		hit = nn == 0 || memmem(h, hn, tm->text, nn) != NULL;
		break;
	}
	tbuf_free(&v);
	return tm->negate ? !hit : hit;
}

void dav_text_match_clear(dav_text_match *tm)
{
	free(tm->text);
	tm->text = NULL;
}
