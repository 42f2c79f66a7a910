/* dav_propfind.c - properties (RFC 4918, 4791, 6352, 6578, 6638, calendarserver CTag,
 * Apple colour): PROPFIND on principals, homes, collections and objects, PROPPATCH
 * (all or nothing), MKCALENDAR and extended MKCOL (RFC 5689). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dav_private.h"

/* The live properties; settable ones can be changed by PROPPATCH / MKCALENDAR. */
static const struct {
	const char *ns, *name;
	int settable;
} live_props[] = {
	{ DAV_NS, "displayname", 1 },
	{ DAV_NS, "resourcetype", 0 },
	{ DAV_NS, "getetag", 0 },
	{ DAV_NS, "getcontenttype", 0 },
	{ DAV_NS, "getcontentlength", 0 },
	{ DAV_NS, "getlastmodified", 0 },
	{ DAV_NS, "current-user-principal", 0 },
	{ DAV_NS, "principal-URL", 0 },
	{ DAV_NS, "principal-collection-set", 0 },
	{ DAV_NS, "owner", 0 },
	{ DAV_NS, "current-user-privilege-set", 0 },
	{ DAV_NS, "supported-report-set", 0 },
	{ DAV_NS, "sync-token", 0 },
	{ DAV_NS_CAL, "calendar-home-set", 0 },
	{ DAV_NS_CAL, "calendar-user-address-set", 0 },
	{ DAV_NS_CAL, "schedule-inbox-URL", 0 },
	{ DAV_NS_CAL, "schedule-outbox-URL", 0 },
	{ DAV_NS_CAL, "calendar-user-type", 0 },
	{ DAV_NS_CAL, "schedule-default-calendar-URL", 0 },
	{ DAV_NS_CAL, "supported-calendar-component-set", 0 },
	{ DAV_NS_CAL, "supported-calendar-data", 0 },
	{ DAV_NS_CAL, "calendar-description", 1 },
	{ DAV_NS_CAL, "calendar-timezone", 1 },
	{ DAV_NS_CAL, "schedule-calendar-transp", 1 },
	{ DAV_NS_CAL, "max-resource-size", 0 },
	{ DAV_NS_CARD, "addressbook-home-set", 0 },
	{ DAV_NS_CARD, "addressbook-description", 1 },
	{ DAV_NS_CARD, "supported-address-data", 0 },
	{ DAV_NS_CARD, "max-resource-size", 0 },
	{ DAV_NS_CS, "getctag", 0 },
	{ DAV_NS_APPLE, "calendar-color", 1 },
	{ DAV_NS_TERN, "published", 1 },
};
#define NLIVE (sizeof(live_props) / sizeof(live_props[0]))

static const char *const default_components[] = { "VEVENT", "VTODO", "VJOURNAL" };

size_t dav_coll_components(const Tern__DavCollection *c, char *const **list_r)
{
	if (c != NULL && c->n_components > 0) {
		*list_r = c->components;
		return c->n_components;
	}
	*list_r = (char *const *)default_components;
	return 3;
}

static const char *node_ns(const xmlNode *n)
{
	return n->ns && n->ns->href ? (const char *)n->ns->href : "";
}

int dav_propreq_parse(const xmlNode *parent, dav_propreq *pr)
{
	memset(pr, 0, sizeof(*pr));
	if (parent == NULL || dav_xml_child(parent, DAV_NS, "allprop") != NULL) {
		pr->allprop = 1;
		return 0;
	}
	if (dav_xml_child(parent, DAV_NS, "propname") != NULL) {
		pr->propname = 1;
		return 0;
	}
	xmlNode *prop = dav_xml_child(parent, DAV_NS, "prop");
	if (prop == NULL)
		return -1;
	for (xmlNode *c = prop->children; c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		const xmlNode **np = realloc(pr->props, (pr->n + 1) * sizeof(*np));
		if (np == NULL)
			abort();
		pr->props = np;
		pr->props[pr->n++] = c;
		if (dav_el_is(c, DAV_NS_CAL, "calendar-data") || dav_el_is(c, DAV_NS_CARD, "address-data"))
			pr->cal_data = c;
	}
	/* RFC 4791 §9.6.5: CALDAV:expand names both ends of its range (an open range would
	 * expand an endless rule as far as the instance bound goes). */
	xmlNode *exp = pr->cal_data ? dav_xml_child(pr->cal_data, DAV_NS_CAL, "expand") : NULL;
	if (exp != NULL) {
		xmlChar *s = xmlGetProp(exp, (const xmlChar *)"start"), *e = xmlGetProp(exp, (const xmlChar *)"end");
		int64_t ts, te;
		int ok = s && e && dav_time_parse((const char *)s, &ts) == 0 &&
			 dav_time_parse((const char *)e, &te) == 0 && te > ts;
		xmlFree(s);
		xmlFree(e);
		if (!ok) {
			pr->cal_data = NULL;
			return -2;
		}
	}
	return 0;
}

void dav_propreq_free(dav_propreq *pr)
{
	free(pr->props);
	pr->props = NULL;
	pr->n = 0;
}

static void href_el(tbuf *o, const char *href)
{
	tbuf_append_str(o, "<d:href>");
	dav_xml_esc(o, href, strlen(href));
	tbuf_append_str(o, "</d:href>");
}

/* "/dav/principals/D/U/" of the target owner (path.domain/path.user). */
static void owner_href(const dav_req *r, const char *top, tbuf *o)
{
	tbuf_append_str(o, top);
	dav_href_seg(o, r->path.domain);
	tbuf_append_char(o, '/');
	dav_href_seg(o, r->path.user);
	tbuf_append_char(o, '/');
}

void dav_coll_href(const dav_req *r, int card, const char *coll, tbuf *out)
{
	owner_href(r, card ? "/addressbooks/" : "/calendars/", out);
	if (coll != NULL) {
		dav_href_seg(out, coll);
		tbuf_append_char(out, '/');
	}
}

static void http_date(int64_t t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	if (strftime(out, n, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0 && n > 0)
		out[0] = '\0';
}

static void privileges(const dav_req *r, const dav_res *res, tbuf *o)
{
	static const char *const rd[] = { "read", "read-current-user-privilege-set" };
	static const char *const wr[] = { "all", "write", "write-properties", "write-content", "bind", "unbind" };
	for (size_t i = 0; i < 2; i++)
		tbuf_appendf(o, "<d:privilege><d:%s/></d:privilege>", rd[i]);
	if (r->access < DAV_ACCESS_WRITE || res->type == DAV_RES_GAL ||
	    (res->type == DAV_RES_OBJ && res->coll == NULL))
		return;
	for (size_t i = 0; i < 6; i++)
		tbuf_appendf(o, "<d:privilege><d:%s/></d:privilege>", wr[i]);
	if (res->coll && res->coll->kind == TERN__DAV_COLLECTION__KIND__SCHEDULE_INBOX)
		tbuf_append_str(o, "<d:privilege><c:schedule-deliver/></d:privilege>");
	if (res->coll && res->coll->kind == TERN__DAV_COLLECTION__KIND__SCHEDULE_OUTBOX)
		tbuf_append_str(o, "<d:privilege><c:schedule-send/></d:privilege>");
}

static void reports(const dav_res *res, tbuf *o)
{
	const char *list[5];
	size_t n = 0;
	if (res->type == DAV_RES_GAL) {
		list[n++] = "cr:addressbook-query";
		list[n++] = "cr:addressbook-multiget";
	} else if (res->type == DAV_RES_COLL && res->coll->kind == TERN__DAV_COLLECTION__KIND__ADDRESSBOOK) {
		list[n++] = "cr:addressbook-query";
		list[n++] = "cr:addressbook-multiget";
		list[n++] = "d:sync-collection";
	} else if (res->type == DAV_RES_COLL) {
		list[n++] = "c:calendar-query";
		list[n++] = "c:calendar-multiget";
		list[n++] = "c:free-busy-query";
		list[n++] = "d:sync-collection";
	}
	for (size_t i = 0; i < n; i++)
		tbuf_appendf(o, "<d:supported-report><d:report><%s/></d:report></d:supported-report>", list[i]);
}

/* calendar-data / address-data of an object: the whole object, or with CALDAV:expand
 * its instances in the range. 0 ok, -1 when the expansion failed. */
static int object_data(const dav_propreq *pr, const Tern__DavObject *o, tbuf *out)
{
	xmlNode *exp = pr && pr->cal_data ? dav_xml_child(pr->cal_data, DAV_NS_CAL, "expand") : NULL;
	if (exp == NULL || strcmp(o->component, "VCARD") == 0) {
		dav_xml_esc(out, (const char *)o->data.data, o->data.len);
		return 0;
	}
	xmlChar *s = xmlGetProp(exp, (const xmlChar *)"start");
	xmlChar *e = xmlGetProp(exp, (const xmlChar *)"end");
	int64_t start = INT64_MIN, end = INT64_MAX;
	int rc = (s && dav_time_parse((const char *)s, &start) < 0) || (e && dav_time_parse((const char *)e, &end) < 0)
			 ? -1 : 0;
	xmlFree(s);
	xmlFree(e);
	tbuf x = TBUF_INIT;
	if (rc == 0)
		rc = dav_ical_expand(o, start, end, &x);
	if (rc == 0) {
		if (strncmp(tbuf_cstr(&x), "BEGIN:VCALENDAR", 15) != 0) {
			tbuf w = TBUF_INIT;
			tbuf_append_str(&w, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Tern//DAV//EN\r\n");
			tbuf_append(&w, x.data ? x.data : "", x.len);
			tbuf_append_str(&w, "END:VCALENDAR\r\n");
			tbuf_free(&x);
			x = w;
		}
		dav_xml_esc(out, x.data ? x.data : "", x.len);
	}
	tbuf_free(&x);
	return rc;
}

/* Write the property ns:name of res as a whole element into o. 1 when res has it. */
static int prop_value(const dav_req *r, const dav_res *res, const dav_propreq *pr, const char *ns,
		      const char *name, tbuf *o)
{
	const Tern__DavCollection *c = res->coll;
	const Tern__DavObject *ob = res->obj;
	int coll = res->type == DAV_RES_COLL;
	int is_cal = coll && c->kind == TERN__DAV_COLLECTION__KIND__CALENDAR;
	int is_card = (coll && c->kind == TERN__DAV_COLLECTION__KIND__ADDRESSBOOK) || res->type == DAV_RES_GAL;
	int obj = res->type == DAV_RES_OBJ;
	int principal = res->type == DAV_RES_PRINCIPAL || res->type == DAV_RES_ROOT;
	tbuf v = TBUF_INIT;
	int have = 1;
	char date[64];
#define IS(n_, s_) (strcmp(ns, n_) == 0 && strcmp(name, s_) == 0)
	if (IS(DAV_NS, "displayname")) {
		const char *dn = coll ? c->display_name : res->type == DAV_RES_GAL ? "Global Address List"
					  : principal ? (r->owner_is_resource ? r->resource->description : NULL) : NULL;
		if (principal && (dn == NULL || *dn == '\0'))
			dn = r->owner_is_resource ? r->path.user : (r->full_name && *r->full_name ? r->full_name : r->user);
		if (dn == NULL || (!principal && !coll && res->type != DAV_RES_GAL))
			have = 0;
		else
			dav_xml_esc(&v, dn, strlen(dn));
	} else if (IS(DAV_NS, "resourcetype")) {
		if (res->type == DAV_RES_PRINCIPAL)
			tbuf_append_str(&v, "<d:principal/>");
		else if (!obj)
			tbuf_append_str(&v, "<d:collection/>");
		if (is_cal)
			tbuf_append_str(&v, "<c:calendar/>");
		if (is_card)
			tbuf_append_str(&v, "<cr:addressbook/>");
		if (coll && c->kind == TERN__DAV_COLLECTION__KIND__SCHEDULE_INBOX)
			tbuf_append_str(&v, "<c:schedule-inbox/>");
		if (coll && c->kind == TERN__DAV_COLLECTION__KIND__SCHEDULE_OUTBOX)
			tbuf_append_str(&v, "<c:schedule-outbox/>");
	} else if (IS(DAV_NS, "getetag") && obj) {
		tbuf_append_str(&v, "&quot;");
		dav_xml_esc(&v, ob->etag, strlen(ob->etag));
		tbuf_append_str(&v, "&quot;");
	} else if (IS(DAV_NS, "getcontenttype") && obj) {
		tbuf_append_str(&v, strcmp(ob->component, "VCARD") == 0 ? "text/vcard; charset=utf-8"
									 : "text/calendar; charset=utf-8");
	} else if (IS(DAV_NS, "getcontentlength") && obj) {
		tbuf_appendf(&v, "%zu", ob->data.len);
	} else if (IS(DAV_NS, "getlastmodified") && obj && (ob->modified || ob->created)) {
		http_date((int64_t)(ob->modified ? ob->modified : ob->created), date, sizeof(date));
		tbuf_append_str(&v, date);
	} else if (IS(DAV_NS, "current-user-principal")) {
		tbuf u = TBUF_INIT;
		tbuf_append_str(&u, "/dav/principals/");
		dav_href_seg(&u, r->domain);
		tbuf_append_char(&u, '/');
		dav_href_seg(&u, r->user);
		tbuf_append_char(&u, '/');
		href_el(&v, tbuf_cstr(&u));
		tbuf_free(&u);
	} else if (IS(DAV_NS, "principal-URL") || IS(DAV_NS, "owner")) {
		tbuf u = TBUF_INIT;
		owner_href(r, "/dav/principals/", &u);
		href_el(&v, tbuf_cstr(&u));
		tbuf_free(&u);
	} else if (IS(DAV_NS, "principal-collection-set") && principal) {
		href_el(&v, "/dav/principals/");
	} else if (IS(DAV_NS, "current-user-privilege-set")) {
		privileges(r, res, &v);
	} else if (IS(DAV_NS, "supported-report-set") && (coll || res->type == DAV_RES_GAL)) {
		reports(res, &v);
	} else if ((IS(DAV_NS, "sync-token") || IS(DAV_NS_CS, "getctag")) && coll) {
		tbuf_appendf(&v, DAV_SYNC_PREFIX "%llu", (unsigned long long)c->modseq);
	} else if (IS(DAV_NS_CAL, "calendar-home-set") && !obj) {
		tbuf u = TBUF_INIT;
		dav_coll_href(r, 0, NULL, &u);
		href_el(&v, tbuf_cstr(&u));
		tbuf_free(&u);
	} else if (IS(DAV_NS_CARD, "addressbook-home-set") && !obj && !r->owner_is_resource) {
		tbuf u = TBUF_INIT;
		dav_coll_href(r, 1, NULL, &u);
		href_el(&v, tbuf_cstr(&u));
		tbuf_free(&u);
	} else if (IS(DAV_NS_CAL, "calendar-user-address-set") && principal) {
		tbuf u = TBUF_INIT;
		tbuf_appendf(&u, "mailto:%s@%s", r->path.user, r->path.domain);
		href_el(&v, tbuf_cstr(&u));
		tbuf_reset(&u);
		owner_href(r, "/dav/principals/", &u);
		href_el(&v, tbuf_cstr(&u));
		tbuf_free(&u);
	} else if ((IS(DAV_NS_CAL, "schedule-inbox-URL") || IS(DAV_NS_CAL, "schedule-outbox-URL")) && principal) {
		tbuf u = TBUF_INIT;
		dav_coll_href(r, 0, strcmp(name, "schedule-inbox-URL") == 0 ? "inbox" : "outbox", &u);
		href_el(&v, tbuf_cstr(&u));
		tbuf_free(&u);
	} else if (IS(DAV_NS_CAL, "calendar-user-type") && principal) {
		tbuf_append_str(&v, !r->owner_is_resource ? "INDIVIDUAL"
				    : r->resource->type == TERN__RESOURCE__TYPE__ROOM ? "ROOM" : "RESOURCE");
	} else if (IS(DAV_NS_CAL, "schedule-default-calendar-URL") &&
		   coll && c->kind == TERN__DAV_COLLECTION__KIND__SCHEDULE_INBOX) {
		tbuf u = TBUF_INIT;
		dav_coll_href(r, 0, "calendar", &u);
		href_el(&v, tbuf_cstr(&u));
		tbuf_free(&u);
	} else if (IS(DAV_NS_CAL, "supported-calendar-component-set") && is_cal) {
		char *const *list;
		size_t n = dav_coll_components(c, &list);
		for (size_t i = 0; i < n; i++) {
			tbuf_append_str(&v, "<c:comp name=\"");
			dav_xml_esc(&v, list[i], strlen(list[i]));
			tbuf_append_str(&v, "\"/>");
		}
	} else if (IS(DAV_NS_CAL, "supported-calendar-data") && is_cal) {
		tbuf_append_str(&v, "<c:calendar-data content-type=\"text/calendar\" version=\"2.0\"/>");
	} else if (IS(DAV_NS_CARD, "supported-address-data") && is_card) {
		tbuf_append_str(&v, "<cr:address-data-type content-type=\"text/vcard\" version=\"3.0\"/>"
			       "<cr:address-data-type content-type=\"text/vcard\" version=\"4.0\"/>");
	} else if ((IS(DAV_NS_CAL, "max-resource-size") && is_cal) || (IS(DAV_NS_CARD, "max-resource-size") && is_card)) {
		tbuf_appendf(&v, "%lld", (long long)(r->env->conf ? r->env->conf->dav_max_body_kb : 10240) * 1024);
	} else if (IS(DAV_NS_CAL, "calendar-description") && is_cal && c->description[0]) {
		dav_xml_esc(&v, c->description, strlen(c->description));
	} else if (IS(DAV_NS_CARD, "addressbook-description") && is_card && coll && c->description[0]) {
		dav_xml_esc(&v, c->description, strlen(c->description));
	} else if (IS(DAV_NS_CAL, "calendar-timezone") && is_cal && c->timezone[0]) {
		dav_xml_esc(&v, c->timezone, strlen(c->timezone));
	} else if (IS(DAV_NS_CAL, "schedule-calendar-transp") && is_cal) {
		tbuf_append_str(&v, c->transparent ? "<c:transparent/>" : "<c:opaque/>");
	} else if (IS(DAV_NS_APPLE, "calendar-color") && is_cal && c->color[0]) {
		dav_xml_esc(&v, c->color, strlen(c->color));
	} else if (IS(DAV_NS_TERN, "published") && is_cal) {
		tbuf_append_str(&v, c->public_ ? "1" : "0");
	} else if ((IS(DAV_NS_CAL, "calendar-data") || IS(DAV_NS_CARD, "address-data")) && obj) {
		if (object_data(pr, ob, &v) < 0)
			have = 0;
	} else {
		have = 0;
		/* dead properties of a collection: stored as whole elements */
		for (size_t i = 0; coll && i < c->n_props; i++)
			if (strcmp(c->props[i]->ns, ns) == 0 && strcmp(c->props[i]->name, name) == 0) {
				tbuf_append(o, c->props[i]->xml.data, c->props[i]->xml.len);
				have = 2;
				break;
			}
	}
#undef IS
	if (have == 1) {
		if (v.len == 0)
			dav_xml_empty(o, ns, name);
		else {
			dav_xml_open(o, ns, name);
			tbuf_append(o, v.data, v.len);
			dav_xml_close(o, ns, name);
		}
	}
	tbuf_free(&v);
	return have != 0;
}

static void propstat(tbuf *o, const tbuf *props, int status)
{
	if (props->len == 0)
		return;
	tbuf_append_str(o, "<d:propstat><d:prop>");
	tbuf_append(o, props->data, props->len);
	tbuf_append_str(o, "</d:prop><d:status>");
	dav_status_line(o, status);
	tbuf_append_str(o, "</d:status></d:propstat>");
}

void dav_response(dav_req *r, const dav_res *res, const dav_propreq *pr, tbuf *out)
{
	tbuf ok = TBUF_INIT, missing = TBUF_INIT, scratch = TBUF_INIT;
	tbuf_append_str(out, "<d:response>");
	href_el(out, res->href);
	if (pr->allprop || pr->propname) {
		for (size_t i = 0; i < NLIVE; i++) {
			tbuf_reset(&scratch);
			if (!prop_value(r, res, pr, live_props[i].ns, live_props[i].name, &scratch))
				continue;
			if (pr->propname)
				dav_xml_empty(&ok, live_props[i].ns, live_props[i].name);
			else
				tbuf_append(&ok, scratch.data, scratch.len);
		}
		for (size_t i = 0; res->type == DAV_RES_COLL && i < res->coll->n_props; i++) {
			const Tern__DavProp *p = res->coll->props[i];
			if (pr->propname)
				dav_xml_empty(&ok, p->ns, p->name);
			else
				tbuf_append(&ok, p->xml.data, p->xml.len);
		}
	} else {
		for (size_t i = 0; i < pr->n; i++) {
			const char *ns = node_ns(pr->props[i]);
			const char *name = (const char *)pr->props[i]->name;
			if (!prop_value(r, res, pr, ns, name, &ok))
				dav_xml_empty(&missing, ns, name);
		}
	}
	propstat(out, &ok, 200);
	propstat(out, &missing, 404);
	if (ok.len == 0 && missing.len == 0) {
		tbuf_append_str(out, "<d:status>");
		dav_status_line(out, 200);
		tbuf_append_str(out, "</d:status>");
	}
	tbuf_append_str(out, "</d:response>\n");
	tbuf_free(&ok);
	tbuf_free(&missing);
	tbuf_free(&scratch);
}
