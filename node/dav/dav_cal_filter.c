/* dav_cal_filter.c - the CALDAV:filter of a calendar-query REPORT (RFC 4791 §9.7): compiled
 * once from the request's XML, matched against each stored object with time ranges
 * applied to every expanded instance (§9.9). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dav_cal.h"
#include "dav_ical_int.h"

#define DAV_FILTER_MAX_DEPTH 8     /* comp-filter nesting (VCALENDAR/VEVENT/VALARM is 3) */
#define DAV_FILTER_MAX_NODES 256   /* filter elements in one query */

struct dav_time_range {
	int set;
	int64_t start, end;
};

struct dav_prop_filter {
	char *name;
	int not_defined, anyof;
	struct dav_time_range tr;
	int has_tm;
	dav_text_match tm;
	dav_param_filter *params;
	size_t n_params;
};

struct dav_comp_filter {
	char *name;
	int not_defined, anyof;
	struct dav_time_range tr;
	struct dav_prop_filter *props;
	size_t n_props;
	struct dav_comp_filter *comps;
	size_t n_comps;
};

struct dav_cal_filter {
	struct dav_comp_filter root;
};

/* Parse state: bounds on size and depth. */
struct dav_fparse {
	size_t nodes;
	tbuf *err;
};

static void dav_comp_filter_clear(struct dav_comp_filter *cf);

static int dav_time_range_parse(xmlNode *n, struct dav_time_range *tr, struct dav_fparse *ps)
{
	char *s = dav_xml_attr(n, "start"), *e = dav_xml_attr(n, "end");
	int rc = 0;
	tr->set = 1;
	tr->start = INT64_MIN;
	tr->end = INT64_MAX;
	if ((!s && !e) || (s && dav_time_parse(s, &tr->start) < 0) || (e && dav_time_parse(e, &tr->end) < 0) ||
	    tr->end <= tr->start) {
		tbuf_append_str(ps->err, "bad time-range");
		rc = -1;
	}
	xmlFree(s);
	xmlFree(e);
	return rc;
}

/* The children that prop-filter and comp-filter share: 1 when k is taken here (not an
 * element, is-not-defined, the first time-range), 0 when it is the caller's, -1 on error
 * (too many elements, a bad time-range). */
static int dav_filter_common(xmlNode *k, int *not_defined, struct dav_time_range *tr, struct dav_fparse *ps)
{
	if (k->type != XML_ELEMENT_NODE)
		return 1;
	if (++ps->nodes > DAV_FILTER_MAX_NODES) {
		tbuf_append_str(ps->err, "filter too large");
		return -1;
	}
	if (dav_xml_is(k, DAV_NS_CALDAV, "is-not-defined")) {
		*not_defined = 1;
		return 1;
	}
	if (dav_xml_is(k, DAV_NS_CALDAV, "time-range") && !tr->set)
		return dav_time_range_parse(k, tr, ps) < 0 ? -1 : 1;
	return 0;
}

static int dav_prop_filter_parse(xmlNode *n, struct dav_prop_filter *pf, struct dav_fparse *ps)
{
	if (!(pf->name = dav_filter_name(n, 0, ps->err)) || dav_filter_test(n, 0, &pf->anyof, ps->err) < 0)
		return -1;
	for (xmlNode *k = n->children; k; k = k->next) {
		int common = dav_filter_common(k, &pf->not_defined, &pf->tr, ps);
		if (common < 0)
			return -1;
		if (common > 0)
			continue;
		if (dav_xml_is(k, DAV_NS_CALDAV, "text-match") && !pf->has_tm) {
			if (dav_text_match_parse(k, DAV_COLL_ASCII, &pf->tm, ps->err) < 0)
				return -1;
			pf->has_tm = 1;
		} else if (dav_xml_is(k, DAV_NS_CALDAV, "param-filter")) {
			dav_param_filter *p = dav_filter_grow((void **)&pf->params, &pf->n_params, sizeof(*p));
			if (dav_param_filter_parse(k, DAV_NS_CALDAV, DAV_COLL_ASCII, 0, NULL, 0, p, ps->err) < 0)
				return -1;
		} else {
			tbuf_appendf(ps->err, "unexpected %s in prop-filter", (const char *)k->name);
			return -1;
		}
	}
	return 0;
}

static int dav_comp_filter_parse(xmlNode *n, struct dav_comp_filter *cf, int depth, struct dav_fparse *ps)
{
	if (depth > DAV_FILTER_MAX_DEPTH) {
		tbuf_append_str(ps->err, "comp-filter nested too deep");
		return -1;
	}
	if (!(cf->name = dav_filter_name(n, 0, ps->err)) || dav_filter_test(n, 0, &cf->anyof, ps->err) < 0)
		return -1;
	for (xmlNode *k = n->children; k; k = k->next) {
		int common = dav_filter_common(k, &cf->not_defined, &cf->tr, ps);
		if (common < 0)
			return -1;
		if (common > 0)
			continue;
		if (dav_xml_is(k, DAV_NS_CALDAV, "prop-filter")) {
			struct dav_prop_filter *p = dav_filter_grow((void **)&cf->props, &cf->n_props, sizeof(*p));
			if (dav_prop_filter_parse(k, p, ps) < 0)
				return -1;
		} else if (dav_xml_is(k, DAV_NS_CALDAV, "comp-filter")) {
			struct dav_comp_filter *c = dav_filter_grow((void **)&cf->comps, &cf->n_comps, sizeof(*c));
			if (dav_comp_filter_parse(k, c, depth + 1, ps) < 0)
				return -1;
		} else {
			tbuf_appendf(ps->err, "unexpected %s in comp-filter", (const char *)k->name);
			return -1;
		}
	}
	return 0;
}

int dav_cal_filter_parse(xmlNode *filter, dav_cal_filter **f_r, tbuf *err)
{
	*f_r = NULL;
	if (!dav_xml_is(filter, DAV_NS_CALDAV, "filter")) {
		tbuf_append_str(err, "not a CALDAV:filter");
		return -1;
	}
	xmlNode *top = NULL;
	for (xmlNode *k = filter->children; k; k = k->next) {
		if (k->type != XML_ELEMENT_NODE)
			continue;
		if (top || !dav_xml_is(k, DAV_NS_CALDAV, "comp-filter")) {
			tbuf_append_str(err, "filter must hold exactly one comp-filter");
			return -1;
		}
		top = k;
	}
	if (!top) {
		tbuf_append_str(err, "filter must hold exactly one comp-filter");
		return -1;
	}
	dav_cal_filter *f = calloc(1, sizeof(*f));
	if (!f)
		abort();
	struct dav_fparse ps = { 0, err };
	if (dav_comp_filter_parse(top, &f->root, 0, &ps) < 0 || strcasecmp(f->root.name, "VCALENDAR") != 0) {
		if (f->root.name && strcasecmp(f->root.name, "VCALENDAR") != 0)
			tbuf_append_str(err, "the outer comp-filter must name VCALENDAR");
		dav_cal_filter_free(&f);
		return -1;
	}
	*f_r = f;
	return 0;
}

static void dav_prop_filter_clear(struct dav_prop_filter *pf)
{
	free(pf->name);
	dav_text_match_clear(&pf->tm);
	for (size_t i = 0; i < pf->n_params; i++)
		dav_param_filter_clear(&pf->params[i]);
	free(pf->params);
}

static void dav_comp_filter_clear(struct dav_comp_filter *cf)
{
	free(cf->name);
	for (size_t i = 0; i < cf->n_props; i++)
		dav_prop_filter_clear(&cf->props[i]);
	free(cf->props);
	for (size_t i = 0; i < cf->n_comps; i++)
		dav_comp_filter_clear(&cf->comps[i]);
	free(cf->comps);
}

void dav_cal_filter_free(dav_cal_filter **f)
{
	if (!*f)
		return;
	dav_comp_filter_clear(&(*f)->root);
	free(*f);
	*f = NULL;
}

/* ---- matching ---- */

/* x + y saturating at the int64 bounds. */
static int64_t dav_sat_add(int64_t x, int64_t y)
{
	if (y > 0 && x > INT64_MAX - y)
		return INT64_MAX;
	if (y < 0 && x < INT64_MIN - y)
		return INT64_MIN;
	return x + y;
}

/* Look for an instance of component c overlapping the range (its kind's rules), or for
 * an alarm of c whose trigger falls in it. */
struct dav_tr_probe {
	icalcomponent *vcal, *comp, *alarm;
	icalcomponent_kind kind;
	int64_t start, end;
	int hit;
};

/* The trigger times of alarm a for an instance (RFC 4791 §9.9 VALARM, with REPEAT). */
static int dav_alarm_hits(icalcomponent *a, const dav_inst *in, icalcomponent *vcal, int64_t S, int64_t E)
{
	icalproperty *tp = icalcomponent_get_first_property(a, ICAL_TRIGGER_PROPERTY);
	if (!tp)
		return 0;
	struct icaltriggertype tr = icalproperty_get_trigger(tp);
	int64_t t;
	if (!icaltime_is_null_time(tr.time)) {
		t = dav_ical_utc(tp, vcal, tr.time);
	} else {
		icalparameter *rel = icalproperty_get_first_parameter(tp, ICAL_RELATED_PARAMETER);
		int at_end = rel && icalparameter_get_related(rel) == ICAL_RELATED_END;
		t = (at_end ? in->end : in->start) + icaldurationtype_as_int(tr.duration);
	}
	icalproperty *rp = icalcomponent_get_first_property(a, ICAL_REPEAT_PROPERTY);
	icalproperty *dp = icalcomponent_get_first_property(a, ICAL_DURATION_PROPERTY);
	int repeat = rp && dp ? icalproperty_get_repeat(rp) : 0;
	int64_t step = dp ? icaldurationtype_as_int(icalproperty_get_duration(dp)) : 0;
	if (repeat < 0 || step <= 0)
		repeat = 0;
	if (repeat > 1000)
		repeat = 1000;
	for (int r = 0; r <= repeat; r++, t += step)
		if (S <= t && E > t)
			return 1;
	return 0;
}

static int dav_tr_probe_one(const dav_inst *in, void *arg)
{
	struct dav_tr_probe *p = arg;
	if (in->comp != p->comp)
		return 0;
	if (p->alarm)
		p->hit = dav_alarm_hits(p->alarm, in, p->vcal, p->start, p->end);
	else
		p->hit = dav_ical_inst_overlaps(in, p->kind, p->vcal, p->start, p->end);
	return p->hit;
}

/* Does component c (child of parent) meet the time-range? */
static int dav_comp_in_range(icalcomponent *c, icalcomponent *parent, icalcomponent *vcal,
			     const struct dav_time_range *tr)
{
	icalcomponent_kind k = icalcomponent_isa(c);
	struct dav_tr_probe p = { vcal, c, NULL, k, tr->start, tr->end, 0 };
	dav_walk w;
	if (k == ICAL_VEVENT_COMPONENT || k == ICAL_VTODO_COMPONENT || k == ICAL_VJOURNAL_COMPONENT) {
		dav_ical_walk(vcal, k, tr->start, tr->end, DAV_CAL_MAX_INSTANCES, dav_tr_probe_one, &p, &w);
		return p.hit;
	}
	if (k == ICAL_VALARM_COMPONENT && parent && parent != vcal) {
		/* triggers may lie far from their instance: widen the walk by a year */
		const int64_t slack = 366LL * DAV_DAY;
		p.comp = parent;
		p.alarm = c;
		p.kind = icalcomponent_isa(parent);
		dav_ical_walk(vcal, p.kind, dav_sat_add(tr->start, -slack), dav_sat_add(tr->end, slack),
			      DAV_CAL_MAX_INSTANCES, dav_tr_probe_one, &p, &w);
		return p.hit;
	}
	if (k == ICAL_VFREEBUSY_COMPONENT) {
		int hs, he;
		int64_t s = dav_ical_prop_utc(c, ICAL_DTSTART_PROPERTY, vcal, &hs, NULL);
		int64_t e = dav_ical_prop_utc(c, ICAL_DTEND_PROPERTY, vcal, &he, NULL);
		return hs && he && tr->start <= e && tr->end > s;
	}
	return 0;
}

/* The value of p as text for text-match: TEXT unescaped, others in iCalendar form. */
static char *dav_prop_text(icalproperty *p)
{
	icalvalue *v = icalproperty_get_value(p);
	if (!v)
		return strdup("");
	if (icalvalue_isa(v) == ICAL_TEXT_VALUE) {
		const char *t = icalvalue_get_text(v);
		return strdup(t ? t : "");
	}
	char *s = icalvalue_as_ical_string_r(v);
	return s ? s : strdup("");
}

static int dav_param_filter_match(const dav_param_filter *pf, icalproperty *p)
{
	int found = 0, hit = 0;
	for (icalparameter *a = icalproperty_get_first_parameter(p, ICAL_ANY_PARAMETER); a && !hit;
	     a = icalproperty_get_next_parameter(p, ICAL_ANY_PARAMETER)) {
		char *s = icalparameter_as_ical_string_r(a);
		char *eq = s ? strchr(s, '=') : NULL;
		if (eq && (size_t)(eq - s) == strlen(pf->name) && strncasecmp(s, pf->name, (size_t)(eq - s)) == 0) {
			found = 1;
			char *v = eq + 1;
			size_t vl = strlen(v);
			if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
				v[vl - 1] = '\0';
				v++;
			}
			hit = !pf->has_tm || dav_text_match_test(&pf->tm, v);
		}
		free(s);
	}
	return pf->not_defined ? !found : hit;
}

/* Does property p meet the time-range (a DATE or DATE-TIME value inside it)? */
static int dav_prop_in_range(icalproperty *p, icalcomponent *vcal, const struct dav_time_range *tr)
{
	icalvalue *v = icalproperty_get_value(p);
	if (!v || (icalvalue_isa(v) != ICAL_DATETIME_VALUE && icalvalue_isa(v) != ICAL_DATE_VALUE))
		return 0;
	struct icaltimetype t = icalvalue_get_datetime(v);
	int64_t s = dav_ical_utc(p, vcal, t);
	if (t.is_date)
		return tr->start < s + DAV_DAY && tr->end > s;
	return tr->start <= s && tr->end > s;
}

/* One property instance against the tests of pf. */
static int dav_prop_one(const struct dav_prop_filter *pf, icalproperty *p, icalcomponent *vcal)
{
	int tests = 0, hits = 0;
	if (pf->tr.set) {
		tests++;
		hits += dav_prop_in_range(p, vcal, &pf->tr);
	}
	if (pf->has_tm) {
		char *s = dav_prop_text(p);
		tests++;
		hits += s && dav_text_match_test(&pf->tm, s);
		free(s);
	}
	for (size_t i = 0; i < pf->n_params; i++) {
		tests++;
		hits += dav_param_filter_match(&pf->params[i], p);
	}
	return tests == 0 || (pf->anyof ? hits > 0 : hits == tests);
}

static int dav_prop_filter_match(const struct dav_prop_filter *pf, icalcomponent *c, icalcomponent *vcal)
{
	int found = 0;
	for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_ANY_PROPERTY); p;
	     p = icalcomponent_get_next_property(c, ICAL_ANY_PROPERTY)) {
		char *name = icalproperty_get_property_name_r(p);
		int same = name && strcasecmp(name, pf->name) == 0;
		free(name);
		if (!same)
			continue;
		found = 1;
		if (!pf->not_defined && dav_prop_one(pf, p, vcal))
			return 1;
	}
	return pf->not_defined ? !found : 0;
}

static int dav_comp_filter_match(const struct dav_comp_filter *cf, icalcomponent *parent, icalcomponent *vcal);

/* The tests of cf inside component c (c is the one the filter names). */
static int dav_comp_tests(const struct dav_comp_filter *cf, icalcomponent *c, icalcomponent *parent,
			  icalcomponent *vcal)
{
	size_t tests = 0, hits = 0;
	if (cf->tr.set) {
		tests++;
		hits += dav_comp_in_range(c, parent, vcal, &cf->tr);
	}
	for (size_t i = 0; i < cf->n_props; i++) {
		tests++;
		hits += dav_prop_filter_match(&cf->props[i], c, vcal);
	}
	for (size_t i = 0; i < cf->n_comps; i++) {
		tests++;
		hits += dav_comp_filter_match(&cf->comps[i], c, vcal);
	}
	return tests == 0 || (cf->anyof ? hits > 0 : hits == tests);
}

/* A comp-filter in the scope of parent: some child named cf->name meets its tests. The
 * children are collected first since the tests iterate the same parent again. */
static int dav_comp_filter_match(const struct dav_comp_filter *cf, icalcomponent *parent, icalcomponent *vcal)
{
	size_t n = (size_t)icalcomponent_count_components(parent, ICAL_ANY_COMPONENT), k = 0;
	icalcomponent **cs = calloc(n + 1, sizeof(*cs));
	if (!cs)
		abort();
	for (icalcomponent *c = icalcomponent_get_first_component(parent, ICAL_ANY_COMPONENT); c && k < n;
	     c = icalcomponent_get_next_component(parent, ICAL_ANY_COMPONENT)) {
		const char *name = icalcomponent_kind_to_string(icalcomponent_isa(c));
		if (name && strcasecmp(name, cf->name) == 0)
			cs[k++] = c;
	}
	int hit = 0;
	if (cf->not_defined)
		hit = k == 0;
	else
		for (size_t i = 0; i < k && !hit; i++)
			hit = dav_comp_tests(cf, cs[i], parent, vcal);
	free(cs);
	return hit;
}

int dav_cal_filter_match(const dav_cal_filter *f, const Tern__DavObject *o)
{
	tbuf why = TBUF_INIT;
	icalcomponent *vcal = dav_ical_parse((const char *)o->data.data, o->data.len, &why);
	tbuf_free(&why);
	if (!vcal)
		return 0;
	int hit = !f->root.not_defined && dav_comp_tests(&f->root, vcal, NULL, vcal);
	icalcomponent_free(vcal);
	return hit;
}
