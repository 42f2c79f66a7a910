/* dav_report.c - REPORT: calendar-query, calendar-multiget, addressbook-query,
 * addressbook-multiget, sync-collection (RFC 6578) and free-busy-query; and the free/busy
 * collection of an owner's calendars that the /freebusy URL shares. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dav_private.h"

/* ---- free/busy ---- */

typedef struct fb_scan {
	int64_t start, end;
	dav_busy **list;
	size_t *n;
	int rc;
} fb_scan;

static int fb_object(const Tern__DavObject *o, void *arg)
{
	fb_scan *s = arg;
	if (o->component[0] && strcmp(o->component, "VEVENT") != 0)
		return 0;
	/* start/end are the object's bounds (0 / INT64_MAX when unknown or unbounded) */
	if ((o->start != 0 && o->start >= s->end) || (o->end != 0 && o->end <= s->start))
		return 0;
	if (dav_ical_busy(o, s->start, s->end, s->list, s->n) < 0)
		s->rc = -1;   /* one unreadable object does not hide the others' time */
	return 0;
}

/* The busy time of one calendar collection. */
static int fb_collection(store *st, const uint8_t owner[16], const Tern__DavCollection *c, int64_t start,
			 int64_t end, dav_busy **list, size_t *n)
{
	fb_scan s = { start, end, list, n, 0 };
	if (store_dav_object_scan(st, owner, c->id.data, fb_object, &s) != STORE_OK)
		return -1;
	return 0;
}

int dav_freebusy_collect(store *st, const uint8_t owner[16], int64_t start, int64_t end, dav_busy **list,
			 size_t *n)
{
	Tern__DavCollection **colls = NULL;
	size_t nc = 0;
	if (store_dav_collection_list(st, owner, &colls, &nc) != STORE_OK)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < nc && rc == 0; i++)
		if (colls[i]->kind == TERN__DAV_COLLECTION__KIND__CALENDAR && !colls[i]->transparent)
			rc = fb_collection(st, owner, colls[i], start, end, list, n);
	store_free_list((void **)colls, nc);
	return rc;
}

/* ---- helpers ---- */

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decode s into out (size n); -1 on bad escapes, NULs or overflow. */
static int pct_decode(const char *s, char *out, size_t n)
{
	size_t k = 0;
	for (; *s; s++) {
		int c = (unsigned char)*s;
		if (c == '%') {
			int h = hexval(s[1]), l = h >= 0 ? hexval(s[2]) : -1;
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return -1;
			c = h * 16 + l;
			s += 2;
		}
		if (k + 1 >= n)
			return -1;
		out[k++] = (char)c;
	}
	out[k] = '\0';
	return 0;
}

/* The object name of an href in collection href `coll` (absolute URLs allowed), or -1. */
static int href_name(const char *href, const char *coll, char *name, size_t n)
{
	char path[2048];
	if (strncasecmp(href, "http://", 7) == 0 || strncasecmp(href, "https://", 8) == 0) {
		href = strchr(href + 8, '/');
		if (href == NULL)
			return -1;
	}
	char decoded_coll[2048];
	if (pct_decode(href, path, sizeof(path)) < 0 || pct_decode(coll, decoded_coll, sizeof(decoded_coll)) < 0)
		return -1;
	size_t cl = strlen(decoded_coll);
	if (strncmp(path, decoded_coll, cl) != 0)
		return -1;
	const char *rest = path + cl;
	if (*rest == '\0' || strchr(rest, '/') != NULL || strcmp(rest, ".") == 0 || strcmp(rest, "..") == 0)
		return -1;
	int w = snprintf(name, n, "%s", rest);
	return w < 0 || (size_t)w >= n ? -1 : 0;
}

typedef struct rp_ctx {
	dav_req *r;
	const Tern__DavCollection *c;   /* NULL: the GAL */
	const char *coll_name;
	const dav_propreq *pr;
	dav_cal_filter *cf;
	dav_card_filter *kf;
	tbuf *out;
	long limit;                      /* addressbook-query nresults; -1 none */
	long count;
	int truncated;
} rp_ctx;

static void rp_response(rp_ctx *x, const Tern__DavObject *o)
{
	dav_obj_response(x->r, x->coll_name, x->c, o, x->pr, x->out);
}

/* A DAV:response of href with a status alone (and a DAV:error fragment, may be NULL). */
static void rp_status(rp_ctx *x, const char *href, int status, const char *error)
{
	tbuf_append_str(x->out, "<d:response><d:href>");
	dav_xml_esc(x->out, href, strlen(href));
	tbuf_append_str(x->out, "</d:href><d:status>");
	dav_status_line(x->out, status);
	tbuf_append_str(x->out, "</d:status>");
	if (error != NULL)
		tbuf_append_str(x->out, error);
	tbuf_append_str(x->out, "</d:response>\n");
}

static int rp_query_one(const Tern__DavObject *o, void *arg)
{
	rp_ctx *x = arg;
	int match = x->cf ? dav_cal_filter_match(x->cf, o) : x->kf ? dav_card_filter_match(x->kf, o) : 1;
	if (match != 1)
		return 0;
	if (x->limit >= 0 && x->count >= x->limit) {
		x->truncated = 1;
		return 1;
	}
	x->count++;
	rp_response(x, o);
	return 0;
}

/* Visit the objects of the target collection (or the GAL). */
static int rp_each(rp_ctx *x, int (*fn)(const Tern__DavObject *o, void *arg))
{
	if (x->c != NULL)
		return store_dav_object_scan(x->r->env->st, x->r->owner, x->c->id.data, fn, x);
	Tern__DavObject **list = NULL;
	size_t n = 0;
	int rc = dav_gal_objects(x->r, &list, &n, NULL, 0);
	for (size_t i = 0; rc == STORE_OK && i < n; i++)
		if (fn(list[i], x) != 0)
			break;
	store_free_list((void **)list, n);
	return rc;
}

/* One object by name, from the collection or the GAL; NULL when absent. */
static Tern__DavObject *rp_get(rp_ctx *x, const char *name)
{
	Tern__DavObject *o = NULL;
	if (x->c == NULL)
		return dav_gal_object(x->r, name);
	if (store_dav_object_get(x->r->env->st, x->r->owner, x->c->id.data, name, &o) != STORE_OK)
		return NULL;
	return o;
}

static void rp_multiget(rp_ctx *x, const xmlNode *root)
{
	tbuf coll = TBUF_INIT;
	dav_coll_href(x->r, x->r->path.card, x->coll_name, &coll);
	for (xmlNode *h = root->children; h != NULL; h = h->next) {
		if (!dav_el_is(h, DAV_NS, "href"))
			continue;
		char *href = dav_xml_text(h);
		char name[256];
		Tern__DavObject *o = NULL;
		if (href_name(href, tbuf_cstr(&coll), name, sizeof(name)) == 0)
			o = rp_get(x, name);
		if (o != NULL)
			rp_response(x, o);
		else
			rp_status(x, href, 404, NULL);
		store_free_record(o);
		free(href);
	}
	tbuf_free(&coll);
}

/* ---- sync-collection ---- */

typedef struct sync_change {
	char *href;
	int deleted;
} sync_change;

typedef struct sync_list {
	sync_change *v;
	size_t n;
	uint64_t max;
} sync_list;

static int sync_add(const char *href, int deleted, uint64_t modseq, void *arg)
{
	sync_list *l = arg;
	sync_change *nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (nv == NULL)
		abort();
	l->v = nv;
	l->v[l->n].href = strdup(href);
	l->v[l->n++].deleted = deleted;
	if (modseq > l->max)
		l->max = modseq;
	return 0;
}

static int sync_all(const Tern__DavObject *o, void *arg)
{
	rp_ctx *x = arg;
	rp_response(x, o);
	if (o->modseq > (uint64_t)x->count)
		x->count = (long)o->modseq;
	return 0;
}

/* 0 with the answer in x->out; -1 with r's answer set. */
static int rp_sync(rp_ctx *x, const xmlNode *root)
{
	dav_req *r = x->r;
	if (x->c == NULL) {
		dav_precondition(r, 403, DAV_NS, "supported-report", NULL);
		return -1;
	}
	xmlNode *lvl = dav_xml_child(root, DAV_NS, "sync-level");
	if (lvl != NULL) {
		char *l = dav_xml_text(lvl);
		int ok = strcmp(l, "1") == 0 || strcasecmp(l, "infinite") == 0;
		free(l);
		if (!ok) {
			dav_error(r, 400, "sync-level must be 1 or infinite");
			return -1;
		}
	}
	xmlNode *tok = dav_xml_child(root, DAV_NS, "sync-token");
	char *token = tok ? dav_xml_text(tok) : strdup("");
	uint64_t cur = x->c->modseq, since = 0, top = cur;
	int rc = 0;
	const char *t = token;
	while (*t == ' ' || *t == '\n' || *t == '\t' || *t == '\r')
		t++;
	if (*t != '\0') {
		char *end = NULL;
		size_t pl = strlen(DAV_SYNC_PREFIX);
		if (strncmp(t, DAV_SYNC_PREFIX, pl) == 0 && t[pl] >= '0' && t[pl] <= '9')
			since = strtoull(t + pl, &end, 10);
		if (end == NULL || (*end != '\0' && *end != ' ' && *end != '\n' && *end != '\r' && *end != '\t') ||
		    since > cur) {
			dav_precondition(r, 403, DAV_NS, "valid-sync-token", NULL);
			free(token);
			return -1;
		}
		sync_list l = { NULL, 0, 0 };
		int src = store_dav_changes(r->env->st, r->owner, x->c->id.data, since, sync_add, &l);
		if (src == STORE_EINVAL) {
			dav_precondition(r, 403, DAV_NS, "valid-sync-token", NULL);
			rc = -1;
		} else if (src != STORE_OK) {
			dav_error(r, 500, "cannot read the changes");
			rc = -1;
		}
		for (size_t i = 0; i < l.n; i++) {
			if (rc == 0) {
				Tern__DavObject *o = l.v[i].deleted ? NULL : rp_get(x, l.v[i].href);
				if (o != NULL) {
					rp_response(x, o);
				} else {
					tbuf h = TBUF_INIT;
					dav_obj_href(r, x->coll_name, l.v[i].href, &h);
					rp_status(x, tbuf_cstr(&h), 404, NULL);
					tbuf_free(&h);
				}
				store_free_record(o);
			}
			free(l.v[i].href);
		}
		free(l.v);
		if (l.max > top)
			top = l.max;
	} else {
		x->count = 0;
		if (rp_each(x, sync_all) != STORE_OK) {
			dav_error(r, 500, "cannot read the collection");
			rc = -1;
		}
		if ((uint64_t)x->count > top)
			top = (uint64_t)x->count;
	}
	free(token);
	if (rc == 0)
		tbuf_appendf(x->out, "<d:sync-token>" DAV_SYNC_PREFIX "%" PRIu64 "</d:sync-token>\n", top);
	return rc;
}

/* ---- free-busy-query ---- */

static void rp_freebusy(dav_req *r, const Tern__DavCollection *c, const xmlNode *root)
{
	xmlNode *tr = dav_xml_child(root, DAV_NS_CAL, "time-range");
	xmlChar *s = tr ? xmlGetProp(tr, (const xmlChar *)"start") : NULL;
	xmlChar *e = tr ? xmlGetProp(tr, (const xmlChar *)"end") : NULL;
	int64_t start = 0, end = 0;
	int ok = s != NULL && dav_time_parse((const char *)s, &start) == 0 &&
		 (e == NULL || dav_time_parse((const char *)e, &end) == 0);
	xmlFree(s);
	xmlFree(e);
	if (ok && e == NULL)
		end = start + 86400;
	int64_t max_days = r->env->conf ? r->env->conf->dav_freebusy_max_days : 366;
	if (!ok || end <= start) {
		dav_error(r, 400, "free-busy-query needs a CALDAV:time-range with start (and end after it)");
		return;
	}
	if (end - start > max_days * 86400) {
		dav_error(r, 400, "free/busy range longer than %lld days", (long long)max_days);
		return;
	}
	dav_busy *list = NULL;
	size_t n = 0;
	if (c == NULL || c->kind != TERN__DAV_COLLECTION__KIND__CALENDAR) {
		dav_error(r, 403, "free-busy-query is a report on a calendar");
		return;
	}
	if (!c->transparent && fb_collection(r->env->st, r->owner, c, start, end, &list, &n) < 0) {
		free(list);
		dav_error(r, 500, "cannot read the calendar");
		return;
	}
	char addr[400];
	dav_owner_address(r, addr, sizeof(addr));
	tbuf_reset(&r->body);
	dav_freebusy_render(list, n, start, end, NULL, addr, 0, &r->body);
	free(list);
	r->status = 200;
	r->ctype = "text/calendar; charset=utf-8";
}

void dav_do_report(dav_req *r)
{
	if (r->path.kind != DAV_P_COLL && r->path.kind != DAV_P_OBJ) {
		dav_precondition(r, 403, DAV_NS, "supported-report", NULL);
		return;
	}
	Tern__DavCollection *c = NULL;
	int t = dav_target_coll(r, &c);
	if (t < 0)
		return;
	xmlDoc *doc = dav_xml_parse(r);
	if (doc == NULL) {
		store_free_record(c);
		return;
	}
	xmlNode *root = xmlDocGetRootElement(doc);
	dav_propreq pr;
	memset(&pr, 0, sizeof(pr));
	tbuf out = TBUF_INIT;
	rp_ctx x = { r, c, c ? c->name : DAV_GAL, &pr, NULL, NULL, &out, -1, 0, 0 };
	int cal = c != NULL && c->kind != TERN__DAV_COLLECTION__KIND__ADDRESSBOOK;
	int rc = 0;
	tbuf err = TBUF_INIT;
	if (dav_el_is(root, DAV_NS_CAL, "free-busy-query")) {
		rp_freebusy(r, c, root);
		goto done;
	}
	int prc = dav_propreq_parse(root, &pr);
	if (prc == -2) {
		dav_error(r, 400, "CALDAV:expand needs a start and an end");
		goto done;
	}
	if (prc < 0)
		pr.allprop = 1;
	dav_ms_begin(&out);
	if (cal && dav_el_is(root, DAV_NS_CAL, "calendar-query")) {
		xmlNode *f = dav_xml_child(root, DAV_NS_CAL, "filter");
		if (f == NULL || dav_cal_filter_parse(f, &x.cf, &err) < 0) {
			dav_precondition(r, 403, DAV_NS_CAL, "valid-filter", NULL);
			goto done;
		}
		rc = rp_each(&x, rp_query_one);
	} else if (!cal && dav_el_is(root, DAV_NS_CARD, "addressbook-query")) {
		xmlNode *f = dav_xml_child(root, DAV_NS_CARD, "filter");
		if (f != NULL && dav_card_filter_parse(f, &x.kf, &err) < 0) {
			dav_precondition(r, 403, DAV_NS_CARD, "valid-filter", NULL);
			goto done;
		}
		xmlNode *lim = dav_xml_child(root, DAV_NS_CARD, "limit");
		xmlNode *nr = lim ? dav_xml_child(lim, DAV_NS_CARD, "nresults") : NULL;
		if (nr != NULL) {
			char *v = dav_xml_text(nr);
			x.limit = strtol(v, NULL, 10);
			free(v);
			if (x.limit < 0)
				x.limit = 0;
		}
		rc = rp_each(&x, rp_query_one);
		if (rc == STORE_OK && x.truncated) {
			tbuf h = TBUF_INIT;
			dav_coll_href(r, 1, x.coll_name, &h);
			rp_status(&x, tbuf_cstr(&h), 507, "<d:error><d:number-of-matches-within-limits/></d:error>");
			tbuf_free(&h);
		}
	} else if ((cal && dav_el_is(root, DAV_NS_CAL, "calendar-multiget")) ||
		   (!cal && dav_el_is(root, DAV_NS_CARD, "addressbook-multiget"))) {
		rp_multiget(&x, root);
	} else if (dav_el_is(root, DAV_NS, "sync-collection")) {
		if (rp_sync(&x, root) < 0)
			goto done;
	} else {
		dav_precondition(r, 403, DAV_NS, "supported-report", NULL);
		goto done;
	}
	if (rc != STORE_OK) {
		dav_error(r, 500, "cannot read the collection");
		goto done;
	}
	dav_ms_end(&out);
	dav_reply_xml(r, 207, &out);
done:
	tbuf_free(&out);
	tbuf_free(&err);
	dav_cal_filter_free(&x.cf);
	dav_card_filter_free(&x.kf);
	dav_propreq_free(&pr);
	xmlFreeDoc(doc);
	store_free_record(c);
}
