/* dav_collection.c - the collection methods: PROPFIND (Depth 0 and 1), PROPPATCH (all or
 * nothing), MKCALENDAR and extended MKCOL (RFC 5689), and the GAL address book. */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dav_private.h"

int dav_target_coll(dav_req *r, Tern__DavCollection **c_r)
{
	*c_r = NULL;
	if (r->path.card && strcmp(r->path.coll, DAV_GAL) == 0 && !r->owner_is_resource)
		return 1;
	Tern__DavCollection *c = NULL;
	if (store_dav_collection_get(r->env->st, r->owner, r->path.coll, &c) != STORE_OK) {
		dav_error(r, 404, "no such collection: %s", r->path.coll);
		return -1;
	}
	int card = c->kind == TERN__DAV_COLLECTION__KIND__ADDRESSBOOK;
	if (card != r->path.card) {
		store_free_record(c);
		dav_error(r, 404, "no such %s: %s", r->path.card ? "address book" : "calendar", r->path.coll);
		return -1;
	}
	*c_r = c;
	return 0;
}

int dav_target_coll_write(dav_req *r, Tern__DavCollection **c_r)
{
	*c_r = NULL;
	if (r->access < DAV_ACCESS_WRITE) {
		dav_precondition(r, 403, DAV_NS, "need-privileges", NULL);
		return -1;
	}
	int t = dav_target_coll(r, c_r);
	if (t < 0)
		return -1;
	if (t == 1) {
		dav_error(r, 403, "the global address list is read-only");
		return -1;
	}
	return 0;
}

void dav_obj_href(const dav_req *r, const char *coll, const char *obj, tbuf *out)
{
	dav_coll_href(r, r->path.card, coll, out);
	dav_href_seg(out, obj);
}

int dav_gal_objects(dav_req *r, Tern__DavObject ***list_r, size_t *n_r, char *ctag_r, size_t ctag_n)
{
	store_gal_entry *gal = NULL;
	size_t n = 0;
	*list_r = NULL;
	*n_r = 0;
	int rc = store_gal_list(r->env->st, r->path.domain, &gal, &n);
	if (rc != STORE_OK)
		return rc;
	Tern__DavObject **list = calloc(n ? n : 1, sizeof(*list));
	if (list == NULL)
		abort();
	tbuf all = TBUF_INIT;   /* the entries' hashes: the list's tag */
	for (size_t i = 0; i < n; i++) {
		tbuf card = TBUF_INIT, uid = TBUF_INIT, href = TBUF_INIT;
		tbuf_appendf(&uid, "gal-%s", gal[i].address);
		tbuf_appendf(&href, "%s.vcf", gal[i].address);
		dav_vcard_from_gal(tbuf_cstr(&uid), gal[i].full_name ? gal[i].full_name : gal[i].name, gal[i].address,
				   gal[i].is_group, &card);
		uint8_t h[32];
		char hex[65];
		SHA256((const unsigned char *)tbuf_cstr(&card), card.len, h);
		tern_hex(h, 16, hex);
		tbuf_append(&all, h, sizeof(h));
		Tern__DavObject *o = malloc(sizeof(*o));
		if (o == NULL)
			abort();
		tern__dav_object__init(o);
		o->href = tbuf_steal(&href);
		o->uid = tbuf_steal(&uid);
		o->etag = strdup(hex);
		o->component = strdup("VCARD");
		o->data.len = card.len;
		o->data.data = (uint8_t *)tbuf_steal(&card);
		if (o->etag == NULL || o->component == NULL)
			abort();
		list[i] = o;
	}
	store_gal_free(&gal, n);
	if (ctag_r != NULL) {
		uint8_t h[32];
		char hex[65];
		SHA256((const unsigned char *)tbuf_cstr(&all), all.len, h);
		tern_hex(h, 16, hex);
		snprintf(ctag_r, ctag_n, "gal-%s", hex);
	}
	tbuf_free(&all);
	*list_r = list;
	*n_r = n;
	return STORE_OK;
}

Tern__DavObject *dav_gal_object(dav_req *r, const char *name)
{
	Tern__DavObject **list = NULL, *o = NULL;
	size_t n = 0;
	if (dav_gal_objects(r, &list, &n, NULL, 0) == STORE_OK)
		for (size_t i = 0; i < n && o == NULL; i++)
			if (strcmp(list[i]->href, name) == 0) {
				o = list[i];
				list[i] = NULL;
			}
	store_free_list((void **)list, n);
	return o;
}

void dav_obj_response(dav_req *r, const char *coll, const Tern__DavCollection *c, const Tern__DavObject *o,
		      const dav_propreq *pr, tbuf *out)
{
	tbuf href = TBUF_INIT;
	dav_obj_href(r, coll, o->href, &href);
	dav_res res = { DAV_RES_OBJ, tbuf_cstr(&href), r->path.card, c, o };
	dav_response(r, &res, pr, out);
	tbuf_free(&href);
}

/* ---- PROPFIND ---- */

typedef struct pf_scan {
	dav_req *r;
	const dav_propreq *pr;
	const Tern__DavCollection *c;
	tbuf *out;
} pf_scan;

static int pf_object(const Tern__DavObject *o, void *arg)
{
	pf_scan *s = arg;
	dav_obj_response(s->r, s->c->name, s->c, o, s->pr, s->out);
	return 0;
}

/* The GAL collection and (depth 1) its entries. */
static void pf_gal(dav_req *r, const dav_propreq *pr, int depth, tbuf *out)
{
	Tern__DavObject **list = NULL;
	size_t n = 0;
	tbuf href = TBUF_INIT;
	dav_coll_href(r, 1, DAV_GAL, &href);
	dav_res res = { DAV_RES_GAL, tbuf_cstr(&href), 1, NULL, NULL };
	dav_response(r, &res, pr, out);
	if (depth > 0 && dav_gal_objects(r, &list, &n, NULL, 0) == STORE_OK) {
		for (size_t i = 0; i < n; i++)
			dav_obj_response(r, DAV_GAL, NULL, list[i], pr, out);
	}
	store_free_list((void **)list, n);
	tbuf_free(&href);
}

static int propfind_home(dav_req *r, const dav_propreq *pr, int depth, tbuf *out)
{
	tbuf href = TBUF_INIT;
	dav_coll_href(r, r->path.card, NULL, &href);
	dav_res home = { DAV_RES_HOME, tbuf_cstr(&href), r->path.card, NULL, NULL };
	dav_response(r, &home, pr, out);
	tbuf_free(&href);
	if (depth == 0)
		return 0;
	Tern__DavCollection **list = NULL;
	size_t n = 0;
	int rc = store_dav_collection_list(r->env->st, r->owner, &list, &n);
	if (rc != STORE_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		int card = list[i]->kind == TERN__DAV_COLLECTION__KIND__ADDRESSBOOK;
		if (card != r->path.card)
			continue;
		tbuf ch = TBUF_INIT;
		dav_coll_href(r, card, list[i]->name, &ch);
		dav_res res = { DAV_RES_COLL, tbuf_cstr(&ch), card, list[i], NULL };
		dav_response(r, &res, pr, out);
		tbuf_free(&ch);
	}
	store_free_list((void **)list, n);
	if (r->path.card && !r->owner_is_resource)
		pf_gal(r, pr, 0, out);
	return 0;
}

/* Depth 0 or 1 (missing: 1; infinity refused). -1 with the answer set. */
static int get_depth(dav_req *r, int *depth_r)
{
	const char *d = http_header_get(r->req, "Depth");
	if (d == NULL || strcmp(d, "1") == 0)
		*depth_r = 1;
	else if (strcmp(d, "0") == 0)
		*depth_r = 0;
	else if (strcasecmp(d, "infinity") == 0) {
		dav_precondition(r, 403, DAV_NS, "propfind-finite-depth", NULL);
		return -1;
	} else {
		dav_error(r, 400, "bad Depth header");
		return -1;
	}
	return 0;
}

void dav_do_propfind(dav_req *r)
{
	int depth;
	if (get_depth(r, &depth) < 0)
		return;
	xmlDoc *doc = NULL;
	dav_propreq pr;
	memset(&pr, 0, sizeof(pr));
	pr.allprop = 1;
	if (r->req->body.len > 0) {
		doc = dav_xml_parse(r);
		if (doc == NULL)
			return;
		xmlNode *root = xmlDocGetRootElement(doc);
		if (!dav_el_is(root, DAV_NS, "propfind") || dav_propreq_parse(root, &pr) < 0) {
			xmlFreeDoc(doc);
			dav_error(r, 400, "expected DAV:propfind with prop, allprop or propname");
			return;
		}
	}
	tbuf out = TBUF_INIT;
	dav_ms_begin(&out);
	int ok = 1;
	switch (r->path.kind) {
	case DAV_P_ROOT:
	case DAV_P_PRINCIPALS:
	case DAV_P_PRINCIPAL: {
		tbuf href = TBUF_INIT;
		if (r->path.kind == DAV_P_PRINCIPAL) {
			tbuf_append_str(&href, "/dav/principals/");
			dav_href_seg(&href, r->path.domain);
			tbuf_append_char(&href, '/');
			dav_href_seg(&href, r->path.user);
			tbuf_append_char(&href, '/');
		} else {
			tbuf_append_str(&href, r->path.kind == DAV_P_ROOT ? r->req->path : "/dav/principals/");
		}
		dav_res res = { r->path.kind == DAV_P_ROOT ? DAV_RES_ROOT : DAV_RES_PRINCIPAL, tbuf_cstr(&href), 0,
				NULL, NULL };
		dav_response(r, &res, &pr, &out);
		tbuf_free(&href);
		break;
	}
	case DAV_P_HOME:
		ok = propfind_home(r, &pr, depth, &out) == 0;
		break;
	case DAV_P_COLL:
	case DAV_P_OBJ: {
		Tern__DavCollection *c = NULL;
		int t = dav_target_coll(r, &c);
		if (t < 0) {
			ok = -1;
			break;
		}
		if (t == 1 && r->path.kind == DAV_P_COLL) {
			pf_gal(r, &pr, depth, &out);
			break;
		}
		if (t == 1) {   /* one GAL entry */
			Tern__DavObject *o = dav_gal_object(r, r->path.obj);
			if (o != NULL) {
				dav_obj_response(r, DAV_GAL, NULL, o, &pr, &out);
			} else {
				dav_error(r, 404, "no such contact");
				ok = -1;
			}
			store_free_record(o);
			break;
		}
		pf_scan s = { r, &pr, c, &out };
		if (r->path.kind == DAV_P_OBJ) {
			Tern__DavObject *o = NULL;
			if (store_dav_object_get(r->env->st, r->owner, c->id.data, r->path.obj, &o) != STORE_OK) {
				dav_error(r, 404, "no such object");
				ok = -1;
			} else {
				pf_object(o, &s);
			}
			store_free_record(o);
		} else {
			tbuf href = TBUF_INIT;
			dav_coll_href(r, r->path.card, c->name, &href);
			dav_res res = { DAV_RES_COLL, tbuf_cstr(&href), r->path.card, c, NULL };
			dav_response(r, &res, &pr, &out);
			tbuf_free(&href);
			if (depth > 0 && store_dav_object_scan(r->env->st, r->owner, c->id.data, pf_object, &s) != STORE_OK)
				ok = 0;
		}
		store_free_record(c);
		break;
	}
	default:
		dav_error(r, 405, "PROPFIND is not supported here");
		ok = -1;
	}
	if (ok == 1) {
		dav_ms_end(&out);
		dav_reply_xml(r, 207, &out);
	} else {
		if (ok == 0)
			dav_error(r, 500, "cannot read the collection");
		tbuf_free(&out);
	}
	dav_propreq_free(&pr);
	xmlFreeDoc(doc);
}

/* ---- PROPPATCH, MKCALENDAR, MKCOL ---- */

static const char *node_ns_of(const xmlNode *n)
{
	return n->ns && n->ns->href ? (const char *)n->ns->href : "";
}

static void set_str(char **f, const char *v)
{
	if (*f != NULL && *f != protobuf_c_empty_string)
		free(*f);
	*f = strdup(v);
	if (*f == NULL)
		abort();
}

static int is_live(const char *ns, const char *name)
{
	static const char *const names[] = {
		"resourcetype", "getetag", "getcontenttype", "getcontentlength", "getlastmodified",
		"current-user-principal", "principal-URL", "principal-collection-set", "owner",
		"current-user-privilege-set", "supported-report-set", "sync-token", "calendar-home-set",
		"calendar-user-address-set", "schedule-inbox-URL", "schedule-outbox-URL", "calendar-user-type",
		"schedule-default-calendar-URL", "supported-calendar-component-set", "supported-calendar-data",
		"max-resource-size", "addressbook-home-set", "supported-address-data", "getctag", "lockdiscovery",
		"supportedlock", "creationdate", "quota-used-bytes", "quota-available-bytes",
	};
	if (strcmp(ns, DAV_NS) != 0 && strcmp(ns, DAV_NS_CAL) != 0 && strcmp(ns, DAV_NS_CARD) != 0 &&
	    strcmp(ns, DAV_NS_CS) != 0)
		return 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return 1;
	return 0;
}

static void remove_dead(Tern__DavCollection *c, const char *ns, const char *name)
{
	for (size_t i = 0; i < c->n_props; i++)
		if (strcmp(c->props[i]->ns, ns) == 0 && strcmp(c->props[i]->name, name) == 0) {
			store_free_record(c->props[i]);
			memmove(&c->props[i], &c->props[i + 1], (c->n_props - i - 1) * sizeof(c->props[0]));
			c->n_props--;
			return;
		}
}

/* Apply one property element to c. 200 ok, 403 protected, 409 bad value. */
static int apply_prop(Tern__DavCollection *c, const xmlNode *p, int remove, int creating)
{
	const char *ns = node_ns_of(p);
	const char *name = (const char *)p->name;
	int cal = c->kind == TERN__DAV_COLLECTION__KIND__CALENDAR;
	char *text = remove ? strdup("") : dav_xml_text(p);
	int st = 200;
	if (text == NULL)
		abort();
	if (strcmp(ns, DAV_NS) == 0 && strcmp(name, "displayname") == 0) {
		set_str(&c->display_name, text);
	} else if ((strcmp(ns, DAV_NS_CAL) == 0 && strcmp(name, "calendar-description") == 0) ||
		   (strcmp(ns, DAV_NS_CARD) == 0 && strcmp(name, "addressbook-description") == 0)) {
		set_str(&c->description, text);
	} else if (strcmp(ns, DAV_NS_APPLE) == 0 && strcmp(name, "calendar-color") == 0) {
		set_str(&c->color, text);
	} else if (strcmp(ns, DAV_NS_TERN) == 0 && strcmp(name, "published") == 0 && cal) {
		/* "1": everyone may read the calendar at /ical/public/DOMAIN/NAME.ics */
		if (!remove && strcmp(text, "1") != 0 && strcmp(text, "0") != 0)
			st = 409;
		else
			c->public_ = !remove && strcmp(text, "1") == 0;
	} else if (strcmp(ns, DAV_NS_CAL) == 0 && strcmp(name, "calendar-timezone") == 0 && cal) {
		if (!remove && *text && strstr(text, "BEGIN:VTIMEZONE") == NULL)
			st = 409;
		else
			set_str(&c->timezone, text);
	} else if (strcmp(ns, DAV_NS_CAL) == 0 && strcmp(name, "schedule-calendar-transp") == 0 && cal) {
		c->transparent = !remove && dav_xml_child(p, DAV_NS_CAL, "transparent") != NULL;
	} else if (strcmp(ns, DAV_NS_CAL) == 0 && strcmp(name, "supported-calendar-component-set") == 0 && creating &&
		   cal && !remove) {
		for (size_t i = 0; i < c->n_components; i++)
			free(c->components[i]);
		free(c->components);
		c->components = NULL;
		c->n_components = 0;
		for (xmlNode *k = p->children; k != NULL; k = k->next) {
			if (!dav_el_is(k, DAV_NS_CAL, "comp"))
				continue;
			xmlChar *cn = xmlGetProp(k, (const xmlChar *)"name");
			if (cn == NULL)
				continue;
			char **nl = realloc(c->components, (c->n_components + 1) * sizeof(*nl));
			if (nl == NULL)
				abort();
			c->components = nl;
			c->components[c->n_components] = strdup((const char *)cn);
			char *u = c->components[c->n_components++];
			if (u == NULL)
				abort();
			for (; *u; u++)
				if (*u >= 'a' && *u <= 'z')
					*u = (char)(*u - 'a' + 'A');
			xmlFree(cn);
		}
		if (c->n_components == 0)
			st = 409;
	} else if (strcmp(ns, DAV_NS) == 0 && strcmp(name, "resourcetype") == 0 && creating) {
		/* MKCOL: checked by the caller */
	} else if (is_live(ns, name) || (strcmp(ns, DAV_NS_CAL) == 0 && !cal) ||
		   strcmp(ns, DAV_NS_CAL) == 0 || strcmp(ns, DAV_NS_CARD) == 0) {
		st = 403;
	} else {
		remove_dead(c, ns, name);
		if (!remove) {
			tbuf xml = TBUF_INIT;
			if (dav_xml_dump(p, &xml) < 0 || xml.len > 65536) {
				st = 409;
			} else {
				Tern__DavProp *dp = malloc(sizeof(*dp));
				Tern__DavProp **nl = realloc(c->props, (c->n_props + 1) * sizeof(*nl));
				if (dp == NULL || nl == NULL)
					abort();
				tern__dav_prop__init(dp);
				dp->ns = strdup(ns);
				dp->name = strdup(name);
				dp->xml.len = xml.len;
				dp->xml.data = (uint8_t *)tbuf_steal(&xml);
				c->props = nl;
				c->props[c->n_props++] = dp;
			}
			tbuf_free(&xml);
		}
	}
	free(text);
	return st;
}

typedef struct pp_item {
	const xmlNode *p;
	int st;
} pp_item;

static void pp_group(tbuf *out, const pp_item *items, size_t n, int status, int any_failed)
{
	tbuf props = TBUF_INIT;
	for (size_t i = 0; i < n; i++) {
		int st = items[i].st == 200 && any_failed ? 424 : items[i].st;
		if (st == status)
			dav_xml_empty(&props, node_ns_of(items[i].p), (const char *)items[i].p->name);
	}
	if (props.len > 0) {
		tbuf_append_str(out, "<d:propstat><d:prop>");
		tbuf_append(out, props.data, props.len);
		tbuf_append_str(out, "</d:prop><d:status>");
		dav_status_line(out, status);
		tbuf_append_str(out, "</d:status></d:propstat>");
	}
	tbuf_free(&props);
}

/* Apply every prop of the set/remove children of parent; items collected. 1 when one
 * failed. */
static int apply_all(Tern__DavCollection *c, const xmlNode *parent, int creating, pp_item **items, size_t *n)
{
	int failed = 0;
	for (xmlNode *op = parent->children; op != NULL; op = op->next) {
		int remove = dav_el_is(op, DAV_NS, "remove");
		if (!remove && !dav_el_is(op, DAV_NS, "set"))
			continue;
		xmlNode *prop = dav_xml_child(op, DAV_NS, "prop");
		for (xmlNode *p = prop ? prop->children : NULL; p != NULL; p = p->next) {
			if (p->type != XML_ELEMENT_NODE)
				continue;
			pp_item *ni = realloc(*items, (*n + 1) * sizeof(*ni));
			if (ni == NULL)
				abort();
			*items = ni;
			ni[*n].p = p;
			ni[*n].st = apply_prop(c, p, remove, creating);
			failed |= ni[*n].st != 200;
			(*n)++;
		}
	}
	return failed;
}

void dav_do_proppatch(dav_req *r)
{
	if (r->path.kind != DAV_P_COLL) {
		dav_error(r, 403, "only collection properties can be changed");
		return;
	}
	Tern__DavCollection *c = NULL;
	if (dav_target_coll_write(r, &c) < 0)
		return;
	xmlDoc *doc = dav_xml_parse(r);
	if (doc == NULL) {
		store_free_record(c);
		return;
	}
	xmlNode *root = xmlDocGetRootElement(doc);
	if (!dav_el_is(root, DAV_NS, "propertyupdate")) {
		dav_error(r, 400, "expected DAV:propertyupdate");
		xmlFreeDoc(doc);
		store_free_record(c);
		return;
	}
	pp_item *items = NULL;
	size_t n = 0;
	int failed = apply_all(c, root, 0, &items, &n);
	if (!failed) {
		store_sync_result res;
		int rc = store_dav_collection_update(r->env->st, r->owner, c, STORE_SYNC, &res);
		if (rc != STORE_OK) {
			dav_error(r, dav_store_status(rc), "cannot change the collection: %s", res.error);
			goto out;
		}
	}
	tbuf out = TBUF_INIT;
	dav_ms_begin(&out);
	tbuf_append_str(&out, "<d:response><d:href>");
	tbuf href = TBUF_INIT;
	dav_coll_href(r, r->path.card, c->name, &href);
	dav_xml_esc(&out, href.data, href.len);
	tbuf_free(&href);
	tbuf_append_str(&out, "</d:href>");
	static const int statuses[] = { 200, 403, 409, 424 };
	for (size_t i = 0; i < 4; i++)
		pp_group(&out, items, n, statuses[i], failed);
	tbuf_append_str(&out, "</d:response>\n");
	dav_ms_end(&out);
	dav_reply_xml(r, 207, &out);
out:
	free(items);
	xmlFreeDoc(doc);
	store_free_record(c);
}

/* 1 when the resourcetype of an extended MKCOL asks for the kind of this home. */
static int mkcol_type_ok(const xmlNode *root, int card)
{
	for (xmlNode *op = root->children; op != NULL; op = op->next) {
		xmlNode *prop = dav_el_is(op, DAV_NS, "set") ? dav_xml_child(op, DAV_NS, "prop") : NULL;
		xmlNode *rt = prop ? dav_xml_child(prop, DAV_NS, "resourcetype") : NULL;
		if (rt != NULL)
			return card ? dav_xml_child(rt, DAV_NS_CARD, "addressbook") != NULL
				    : dav_xml_child(rt, DAV_NS_CAL, "calendar") != NULL;
	}
	return 1;   /* no resourcetype: the kind of the home */
}

void dav_do_mkcol(dav_req *r, int calendar)
{
	if (r->path.kind != DAV_P_COLL) {
		dav_error(r, r->path.kind == DAV_P_OBJ ? 409 : 405, "collections are made in a calendar or "
			  "address book home");
		return;
	}
	if (r->access < DAV_ACCESS_WRITE) {
		dav_precondition(r, 403, DAV_NS, "need-privileges", NULL);
		return;
	}
	if (calendar && r->path.card) {
		dav_error(r, 403, "calendars are made under /calendars/");
		return;
	}
	Tern__DavCollection *old = NULL;
	if ((r->path.card && strcmp(r->path.coll, DAV_GAL) == 0) ||
	    store_dav_collection_get(r->env->st, r->owner, r->path.coll, &old) == STORE_OK) {
		store_free_record(old);
		dav_precondition(r, 405, DAV_NS, "resource-must-be-null", NULL);
		return;
	}
	Tern__DavCollection *c = malloc(sizeof(*c));
	if (c == NULL)
		abort();
	tern__dav_collection__init(c);
	set_str(&c->name, r->path.coll);
	set_str(&c->display_name, r->path.coll);
	c->kind = r->path.card ? TERN__DAV_COLLECTION__KIND__ADDRESSBOOK : TERN__DAV_COLLECTION__KIND__CALENDAR;
	xmlDoc *doc = NULL;
	pp_item *items = NULL;
	size_t n = 0;
	if (r->req->body.len > 0) {
		doc = dav_xml_parse(r);
		if (doc == NULL)
			goto out;
		xmlNode *root = xmlDocGetRootElement(doc);
		if (!(calendar ? dav_el_is(root, DAV_NS_CAL, "mkcalendar") : dav_el_is(root, DAV_NS, "mkcol"))) {
			dav_error(r, 400, "expected %s", calendar ? "CALDAV:mkcalendar" : "DAV:mkcol");
			goto out;
		}
		if (!calendar && !mkcol_type_ok(root, r->path.card)) {
			dav_precondition(r, 403, DAV_NS, "valid-resourcetype", NULL);
			goto out;
		}
		if (apply_all(c, root, 1, &items, &n)) {
			for (size_t i = 0; i < n; i++)
				if (items[i].st != 200) {
					dav_error(r, 403, "property %s cannot be set", (const char *)items[i].p->name);
					break;
				}
			goto out;
		}
	}
	store_sync_result res;
	int rc = store_dav_collection_create(r->env->st, r->owner, c, STORE_SYNC, &res);
	if (rc == STORE_EEXISTS)
		dav_precondition(r, 405, DAV_NS, "resource-must-be-null", NULL);
	else if (rc == STORE_EINVAL)
		dav_error(r, 403, "bad collection name (letters, digits, '.', '_', '-'): %s", res.error);
	else if (rc != STORE_OK)
		dav_error(r, dav_store_status(rc), "cannot make the collection: %s", res.error);
	else
		dav_set(r, 201, NULL, NULL);
out:
	free(items);
	xmlFreeDoc(doc);
	store_free_record(c);
}
