/* dav_put.c - objects: GET/HEAD, PUT (conditional, validated, scheduled), DELETE; POST to
 * the schedule outbox; iCal publishing (/ical/...) and the free/busy URL. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dav_private.h"

int dav_etag_unquote(const char *v, char *out, size_t n)
{
	while (*v == ' ')
		v++;
	if (strncmp(v, "W/", 2) == 0)
		v += 2;
	const char *s = v, *e = v + strlen(v);
	while (e > s && e[-1] == ' ')
		e--;
	if (e - s >= 2 && *s == '"' && e[-1] == '"') {
		s++;
		e--;
	}
	if ((size_t)(e - s) >= n || e == s)
		return -1;
	memcpy(out, s, (size_t)(e - s));
	out[e - s] = '\0';
	return 0;
}

/* 1 when the If-None-Match list (etags or "*") matches etag (NULL: no object). */
static int none_match_hits(const char *hdr, const char *etag)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", hdr);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		char tag[256];
		while (*t == ' ')
			t++;
		if (strcmp(t, "*") == 0)
			return etag != NULL;
		if (etag != NULL && dav_etag_unquote(t, tag, sizeof(tag)) == 0 && strcmp(tag, etag) == 0)
			return 1;
	}
	return 0;
}

/* A header whose value is a quoted tag (ETag, Schedule-Tag). */
static void tag_header(dav_req *r, const char *name, const char *tag)
{
	char q[128];
	snprintf(q, sizeof(q), "\"%s\"", tag);
	dav_header(r, name, q);
}

static int is_calendar_coll(const Tern__DavCollection *c)
{
	return c != NULL && c->kind == TERN__DAV_COLLECTION__KIND__CALENDAR;
}

/* ---- GET / HEAD ---- */

void dav_do_get(dav_req *r, int head)
{
	(void)head;   /* the body is dropped for HEAD when replying */
	if (r->path.kind == DAV_P_COLL && !r->path.card) {
		dav_do_ical(r, 0);
		return;
	}
	if (r->path.kind != DAV_P_OBJ) {
		dav_error(r, r->path.kind == DAV_P_ROOT ? 200 : 405, "Tern CalDAV/CardDAV: use a calendar or "
			  "address book client");
		return;
	}
	Tern__DavCollection *c = NULL;
	int t = dav_target_coll(r, &c);
	if (t < 0)
		return;
	Tern__DavObject *o = NULL;
	if (t == 1)
		o = dav_gal_object(r, r->path.obj);
	else if (store_dav_object_get(r->env->st, r->owner, c->id.data, r->path.obj, &o) != STORE_OK) {
		o = NULL;
	}
	if (o == NULL) {
		dav_error(r, 404, "no such object");
	} else {
		tag_header(r, "ETag", o->etag);
		const char *inm = http_header_get(r->req, "If-None-Match");
		if (inm != NULL && none_match_hits(inm, o->etag)) {
			dav_set(r, 304, NULL, NULL);
		} else {
			r->status = 200;
			r->ctype = strcmp(o->component, "VCARD") == 0 ? "text/vcard; charset=utf-8"
								      : "text/calendar; charset=utf-8";
			tbuf_reset(&r->body);
			tbuf_append(&r->body, o->data.data, o->data.len);
			if (o->schedule_tag[0])
				tag_header(r, "Schedule-Tag", o->schedule_tag);
		}
	}
	store_free_record(o);
	store_free_record(c);
}

/* ---- PUT ---- */

static int ctype_ok(const char *ct, int card)
{
	if (ct == NULL || *ct == '\0')
		return 1;
	size_t n = strcspn(ct, ";");
	while (n > 0 && ct[n - 1] == ' ')
		n--;
#define CT(lit) (n == sizeof(lit) - 1 && strncasecmp(ct, lit, n) == 0)
	return card ? CT("text/vcard") || CT("text/x-vcard") || CT("text/directory") : CT("text/calendar");
#undef CT
}

/* Validate body for collection c into o (uid, component, bounds). 0, or -1 with the
 * answer set. */
static int put_check(dav_req *r, const Tern__DavCollection *c, Tern__DavObject *o)
{
	const char *prec = NULL;
	tbuf why = TBUF_INIT;
	int rc;
	if (c->kind == TERN__DAV_COLLECTION__KIND__ADDRESSBOOK) {
		rc = dav_vcard_check(r->req->body.data, r->req->body.len, o, &prec, &why);
	} else {
		char *const *allowed;
		size_t n = dav_coll_components(c, &allowed);
		rc = dav_ical_check(r->req->body.data, r->req->body.len, allowed, n, o, &prec, &why);
	}
	if (rc < 0) {
		const char *ns = c->kind == TERN__DAV_COLLECTION__KIND__ADDRESSBOOK ? DAV_NS_CARD : DAV_NS_CAL;
		tbuf inner = TBUF_INIT;
		tbuf_append_str(&inner, "<d:responsedescription>");
		dav_xml_esc(&inner, why.data ? why.data : "", why.len);
		tbuf_append_str(&inner, "</d:responsedescription>");
		dav_precondition(r, 403, ns, prec ? prec : "valid-calendar-data", NULL);
		/* the reason as a second child of DAV:error, for people reading logs */
		tbuf_truncate(&r->body, r->body.len - strlen("</d:error>\n"));
		tbuf_append(&r->body, inner.data, inner.len);
		tbuf_append_str(&r->body, "</d:error>\n");
		tbuf_free(&inner);
	}
	tbuf_free(&why);
	return rc < 0 ? -1 : 0;
}

/* Busy periods of a new calendar object within a horizon around now (for nodes that
 * push free/busy without re-expanding). */
static void put_busy(Tern__DavObject *o)
{
	if (strcmp(o->component, "VEVENT") != 0)
		return;
	int64_t now = tern_now();
	dav_ical_busy_set(o, now - 31 * 86400, now + 366 * 86400);
}

/* A new object record for body (data copied, href set). */
static Tern__DavObject *new_object(const char *href, const char *data, size_t len)
{
	Tern__DavObject *o = malloc(sizeof(*o));
	if (o == NULL)
		abort();
	tern__dav_object__init(o);
	o->href = strdup(href);
	o->data.data = malloc(len + 1);
	if (o->href == NULL || o->data.data == NULL)
		abort();
	memcpy(o->data.data, data, len);
	o->data.data[len] = '\0';
	o->data.len = len;
	return o;
}

/* Store o (conditions from the request on the first write). 0 with etag_r; -1 with the
 * answer set. */
static int put_store(dav_req *r, const Tern__DavCollection *c, const Tern__DavObject *o, const char *if_match,
		     int if_none, char *etag_r, size_t n)
{
	store_dav_write w = { r->owner, c->id.data, o, if_match, if_none };
	store_sync_result res;
	memset(&res, 0, sizeof(res));
	int rc = store_dav_put(r->env->st, &w, STORE_SYNC, &res);
	if (rc == STORE_OK) {
		snprintf(etag_r, n, "%s", res.res.etag);
		return 0;
	}
	if (rc == STORE_ECONFLICT) {
		dav_error(r, 412, "the object changed meanwhile (If-Match / If-None-Match)");
	} else if (rc == STORE_EEXISTS) {
		const char *ns = c->kind == TERN__DAV_COLLECTION__KIND__ADDRESSBOOK ? DAV_NS_CARD : DAV_NS_CAL;
		Tern__DavObject *other = NULL;
		tbuf inner = TBUF_INIT;
		if (store_dav_object_find_uid(r->env->st, r->owner, c->id.data, o->uid, &other) == STORE_OK) {
			tbuf h = TBUF_INIT;
			dav_obj_href(r, c->name, other->href, &h);
			tbuf_append_str(&inner, "<d:href>");
			dav_xml_esc(&inner, h.data, h.len);
			tbuf_append_str(&inner, "</d:href>");
			tbuf_free(&h);
		}
		dav_precondition(r, 403, ns, "no-uid-conflict", tbuf_cstr(&inner));
		tbuf_free(&inner);
		store_free_record(other);
	} else if (rc == STORE_EQUOTA) {
		dav_precondition(r, 507, DAV_NS, "quota-not-exceeded", NULL);
	} else {
		dav_error(r, dav_store_status(rc), "cannot store the object: %s", res.error);
	}
	return -1;
}

/* The scheduling identity of the request's user. */
static void actor_of(const dav_req *r, dav_actor *a)
{
	memcpy(a->id, r->uid, 16);
	a->address = r->account;
	a->full_name = r->full_name;
}

void dav_do_put(dav_req *r)
{
	if (r->path.kind != DAV_P_OBJ) {
		dav_error(r, 405, "PUT stores objects inside a calendar or address book");
		return;
	}
	Tern__DavCollection *c = NULL;
	if (dav_target_coll_write(r, &c) < 0)
		return;
	Tern__DavObject *o = NULL, *old = NULL;
	if (c->kind == TERN__DAV_COLLECTION__KIND__SCHEDULE_OUTBOX) {
		dav_error(r, 403, "the outbox takes POST only");
		goto out;
	}
	int card = c->kind == TERN__DAV_COLLECTION__KIND__ADDRESSBOOK;
	if (!ctype_ok(http_header_get(r->req, "Content-Type"), card)) {
		if (card)
			dav_precondition(r, 415, DAV_NS_CARD, "supported-address-data", NULL);
		else
			dav_precondition(r, 415, DAV_NS_CAL, "supported-calendar-data", NULL);
		goto out;
	}
	o = new_object(r->path.obj, r->req->body.data ? r->req->body.data : "", r->req->body.len);
	if (put_check(r, c, o) < 0)
		goto out;
	if (store_dav_object_get(r->env->st, r->owner, c->id.data, r->path.obj, &old) != STORE_OK)
		old = NULL;
	const char *im = http_header_get(r->req, "If-Match");
	const char *inm = http_header_get(r->req, "If-None-Match");
	char match[256];
	const char *if_match = NULL;
	int if_none = 0;
	if (im != NULL) {
		if (strcmp(im, "*") == 0) {
			if (old == NULL) {
				dav_error(r, 412, "no object to replace (If-Match: *)");
				goto out;
			}
			snprintf(match, sizeof(match), "%s", old->etag);
		} else if (dav_etag_unquote(im, match, sizeof(match)) < 0) {
			dav_error(r, 400, "bad If-Match header");
			goto out;
		}
		if_match = match;
	}
	if (inm != NULL) {
		if (strcmp(inm, "*") == 0)
			if_none = 1;
		else if (none_match_hits(inm, old ? old->etag : NULL)) {
			dav_error(r, 412, "the object matches If-None-Match");
			goto out;
		}
	}
	if (is_calendar_coll(c))
		put_busy(o);
	char etag[64];
	if (put_store(r, c, o, if_match, if_none, etag, sizeof(etag)) < 0)
		goto out;
	int changed = 0;
	if (is_calendar_coll(c) && !r->owner_is_resource) {
		dav_actor a;
		actor_of(r, &a);
		tbuf upd = TBUF_INIT;
		if (dav_sched_after_write(r->env, &a, old, o, &upd) == 0 && upd.len > 0) {
			Tern__DavObject *o2 = new_object(r->path.obj, upd.data, upd.len);
			char etag2[64];
			tbuf why = TBUF_INIT;
			const char *prec = NULL;
			char *const *allowed;
			size_t n = dav_coll_components(c, &allowed);
			if (dav_ical_check(upd.data, upd.len, allowed, n, o2, &prec, &why) == 0) {
				put_busy(o2);
				store_dav_write w = { r->owner, c->id.data, o2, etag, 0 };
				store_sync_result res;
				if (store_dav_put(r->env->st, &w, STORE_SYNC, &res) == STORE_OK) {
					snprintf(etag2, sizeof(etag2), "%s", res.res.etag);
					changed = 1;
				} else {
					tlog(TLOG_WARNING, "DAV: scheduling update of %s/%s for %s not stored: %s",
					     c->name, r->path.obj, r->account, res.error);
				}
			}
			tbuf_free(&why);
			store_free_record(o2);
		}
		tbuf_free(&upd);
	}
	/* a changed object is not what the client sent: no ETag, so it fetches it again */
	if (!changed)
		tag_header(r, "ETag", etag);
	if (is_calendar_coll(c))
		dav_fb_changed(r->d->fb, r->owner);
	dav_set(r, old == NULL ? 201 : 204, NULL, NULL);
out:
	store_free_record(o);
	store_free_record(old);
	store_free_record(c);
}

/* ---- DELETE ---- */

void dav_do_delete(dav_req *r)
{
	if (r->path.kind != DAV_P_OBJ && r->path.kind != DAV_P_COLL) {
		dav_error(r, 403, "only collections and objects can be deleted");
		return;
	}
	Tern__DavCollection *c = NULL;
	if (dav_target_coll_write(r, &c) < 0)
		return;
	store_sync_result res;
	memset(&res, 0, sizeof(res));
	if (r->path.kind == DAV_P_COLL) {
		if (c->kind == TERN__DAV_COLLECTION__KIND__SCHEDULE_INBOX ||
		    c->kind == TERN__DAV_COLLECTION__KIND__SCHEDULE_OUTBOX) {
			dav_error(r, 403, "the schedule inbox and outbox cannot be deleted");
		} else {
			int rc = store_dav_collection_delete(r->env->st, r->owner, c->id.data, STORE_SYNC, &res);
			if (rc == STORE_OK)
				dav_set(r, 204, NULL, NULL);
			else
				dav_error(r, dav_store_status(rc), "cannot delete the collection: %s", res.error);
		}
		dav_fb_changed(r->d->fb, r->owner);
		store_free_record(c);
		return;
	}
	Tern__DavObject *old = NULL;
	if (store_dav_object_get(r->env->st, r->owner, c->id.data, r->path.obj, &old) != STORE_OK) {
		dav_error(r, 404, "no such object");
		store_free_record(c);
		return;
	}
	const char *im = http_header_get(r->req, "If-Match");
	char match[256];
	const char *if_match = NULL;
	if (im != NULL && strcmp(im, "*") != 0) {
		if (dav_etag_unquote(im, match, sizeof(match)) < 0) {
			dav_error(r, 400, "bad If-Match header");
			goto out;
		}
		if_match = match;
	}
	int rc = store_dav_delete(r->env->st, r->owner, c->id.data, r->path.obj, if_match, STORE_SYNC, &res);
	if (rc == STORE_ECONFLICT) {
		dav_error(r, 412, "the object changed meanwhile (If-Match)");
		goto out;
	}
	if (rc != STORE_OK) {
		dav_error(r, dav_store_status(rc), "cannot delete the object: %s", res.error);
		goto out;
	}
	if (is_calendar_coll(c) && !r->owner_is_resource) {
		dav_actor a;
		actor_of(r, &a);
		tbuf upd = TBUF_INIT;
		dav_sched_after_write(r->env, &a, old, NULL, &upd);
		tbuf_free(&upd);
	}
	dav_fb_changed(r->d->fb, r->owner);
	dav_set(r, 204, NULL, NULL);
out:
	store_free_record(old);
	store_free_record(c);
}

/* ---- POST to the outbox ---- */

void dav_do_post(dav_req *r)
{
	Tern__DavCollection *c = NULL;
	if (r->path.kind != DAV_P_COLL || r->path.card || dav_target_coll(r, &c) != 0 ||
	    c->kind != TERN__DAV_COLLECTION__KIND__SCHEDULE_OUTBOX) {
		store_free_record(c);
		if (r->status == 0)
			dav_error(r, 405, "POST goes to the schedule outbox");
		return;
	}
	store_free_record(c);
	if (r->access < DAV_ACCESS_WRITE || r->owner_is_resource) {
		dav_precondition(r, 403, DAV_NS, "need-privileges", NULL);
		return;
	}
	if (!ctype_ok(http_header_get(r->req, "Content-Type"), 0)) {
		dav_precondition(r, 415, DAV_NS_CAL, "supported-calendar-data", NULL);
		return;
	}
	dav_actor a;
	actor_of(r, &a);
	tbuf out = TBUF_INIT, err = TBUF_INIT;
	if (dav_sched_outbox_post(r->env, &a, r->req->body.data ? r->req->body.data : "", r->req->body.len, &out,
				  &err) < 0) {
		dav_error(r, 400, "%s", err.len ? tbuf_cstr(&err) : "bad scheduling request");
		tbuf_free(&out);
	} else {
		dav_reply_xml(r, 200, &out);
	}
	tbuf_free(&err);
}
