/* dav_vcard_filter.c - the CARDDAV:filter of an addressbook-query REPORT (RFC 6352 §10.5):
 * prop-filter, param-filter, text-match with anyof/allof. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dav_cal.h"
#include "dav_ical_int.h"

#define DAV_CARD_FILTER_MAX 256    /* prop-filters, param-filters and text-matches in all */

struct dav_card_prop {
	char *name;
	int not_defined, anyof;
	dav_text_match *tms;
	size_t n_tms;
	dav_param_filter *params;
	size_t n_params;
};

struct dav_card_filter {
	int anyof;
	struct dav_card_prop *props;
	size_t n_props;
};

static int dav_card_prop_parse(xmlNode *n, struct dav_card_prop *pf, size_t *budget, tbuf *err)
{
	if (!(pf->name = dav_filter_name(n, 1, err)) || dav_filter_test(n, 1, &pf->anyof, err) < 0)
		return -1;
	for (xmlNode *k = n->children; k; k = k->next) {
		if (k->type != XML_ELEMENT_NODE)
			continue;
		if (++*budget > DAV_CARD_FILTER_MAX) {
			tbuf_append_str(err, "filter too large");
			return -1;
		}
		if (dav_xml_is(k, DAV_NS_CARDDAV, "is-not-defined")) {
			pf->not_defined = 1;
		} else if (dav_xml_is(k, DAV_NS_CARDDAV, "text-match")) {
			dav_text_match *tm = dav_filter_grow((void **)&pf->tms, &pf->n_tms, sizeof(*tm));
			if (dav_text_match_parse(k, DAV_COLL_UNICODE, tm, err) < 0)
				return -1;
		} else if (dav_xml_is(k, DAV_NS_CARDDAV, "param-filter")) {
			dav_param_filter *p = dav_filter_grow((void **)&pf->params, &pf->n_params, sizeof(*p));
			if (dav_param_filter_parse(k, DAV_NS_CARDDAV, DAV_COLL_UNICODE, 1, budget, DAV_CARD_FILTER_MAX, p,
						   err) < 0)
				return -1;
		} else {
			tbuf_appendf(err, "unexpected %s in prop-filter", (const char *)k->name);
			return -1;
		}
	}
	return 0;
}

int dav_card_filter_parse(xmlNode *filter, dav_card_filter **f_r, tbuf *err)
{
	*f_r = NULL;
	if (!dav_xml_is(filter, DAV_NS_CARDDAV, "filter")) {
		tbuf_append_str(err, "not a CARDDAV:filter");
		return -1;
	}
	dav_card_filter *f = calloc(1, sizeof(*f));
	if (!f)
		abort();
	size_t budget = 0;
	int rc = dav_filter_test(filter, 1, &f->anyof, err);   /* RFC 6352: anyof by default */
	for (xmlNode *k = filter->children; k && rc == 0; k = k->next) {
		if (k->type != XML_ELEMENT_NODE)
			continue;
		if (!dav_xml_is(k, DAV_NS_CARDDAV, "prop-filter")) {
			tbuf_appendf(err, "unexpected %s in filter", (const char *)k->name);
			rc = -1;
		} else if (++budget > DAV_CARD_FILTER_MAX) {
			tbuf_append_str(err, "filter too large");
			rc = -1;
		} else {
			struct dav_card_prop *p = dav_filter_grow((void **)&f->props, &f->n_props, sizeof(*p));
			rc = dav_card_prop_parse(k, p, &budget, err);
		}
	}
	if (rc < 0) {
		dav_card_filter_free(&f);
		return -1;
	}
	*f_r = f;
	return 0;
}

void dav_card_filter_free(dav_card_filter **f)
{
	if (!*f)
		return;
	for (size_t i = 0; i < (*f)->n_props; i++) {
		struct dav_card_prop *p = &(*f)->props[i];
		free(p->name);
		for (size_t j = 0; j < p->n_tms; j++)
			dav_text_match_clear(&p->tms[j]);
		free(p->tms);
		for (size_t j = 0; j < p->n_params; j++)
			dav_param_filter_clear(&p->params[j]);
		free(p->params);
	}
	free((*f)->props);
	free(*f);
	*f = NULL;
}

/* A param-filter on one property: the parameter exists (its comma-separated values
 * tested one by one against the text-match). */
static int dav_card_param_match(const dav_param_filter *pf, const dav_vprop *p)
{
	int found = 0, hit = 0;
	for (size_t i = 0; i < p->n_params && !hit; i++) {
		if (strcmp(p->params[i].name, pf->name) != 0)
			continue;
		found = 1;
		if (!pf->has_tm) {
			hit = 1;
			break;
		}
		char *vals = strdup(p->params[i].value), *save = NULL;
		if (!vals)
			abort();
		for (char *v = strtok_r(vals, ",", &save); v && !hit; v = strtok_r(NULL, ",", &save))
			hit = dav_text_match_test(&pf->tm, v);
		free(vals);
	}
	return pf->not_defined ? !found : hit;
}

/* The tests of pf on one property instance. */
static int dav_card_prop_one(const struct dav_card_prop *pf, const dav_vprop *p)
{
	size_t tests = 0, hits = 0;
	if (pf->n_tms) {
		char *v = dav_vcard_unescape(p->value);
		for (size_t i = 0; i < pf->n_tms; i++) {
			tests++;
			hits += dav_text_match_test(&pf->tms[i], v);
		}
		free(v);
	}
	for (size_t i = 0; i < pf->n_params; i++) {
		tests++;
		hits += dav_card_param_match(&pf->params[i], p);
	}
	return tests == 0 || (pf->anyof ? hits > 0 : hits == tests);
}

static int dav_card_prop_match(const struct dav_card_prop *pf, const dav_vcard *vc)
{
	int found = 0;
	for (size_t i = 0; i < vc->n; i++) {
		if (strcmp(vc->props[i].name, pf->name) != 0)
			continue;
		found = 1;
		if (!pf->not_defined && dav_card_prop_one(pf, &vc->props[i]))
			return 1;
	}
	return pf->not_defined ? !found : 0;
}

int dav_card_filter_match(const dav_card_filter *f, const Tern__DavObject *o)
{
	dav_vcard vc;
	tbuf why = TBUF_INIT;
	int rc = dav_vcard_parse((const char *)o->data.data, o->data.len, &vc, &why);
	tbuf_free(&why);
	if (rc < 0)
		return 0;
	size_t hits = 0;
	for (size_t i = 0; i < f->n_props; i++)
		hits += dav_card_prop_match(&f->props[i], &vc);
	dav_vcard_clear(&vc);
	if (f->n_props == 0)
		return 1;
	return f->anyof ? hits > 0 : hits == f->n_props;
}
