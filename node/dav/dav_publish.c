/* dav_publish.c - read-only views over plain HTTP GET: a calendar as one iCalendar file
 * (/ical/DOMAIN/USER/COLL.ics for its owner, /ical/public/... for calendars marked
 * public, GET on a calendar collection) and the free/busy URL /freebusy/USER@DOMAIN.
 * In a distributed domain the free/busy of a user homed on another node, or (on a slave)
 * of a resource, which is homed on the master, comes from the master (cluster.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cluster.h"
#include "dav_private.h"

/* ---- merging calendar objects into one VCALENDAR ---- */

struct dav_ics_merge {
	char *calname;
	tbuf tz;        /* VTIMEZONE components, one per TZID */
	tbuf comps;     /* every other component */
	tbuf tzids;     /* "\nTZID\n" of those in tz */
};

dav_ics_merge *dav_ics_merge_new(const char *calname)
{
	dav_ics_merge *m = calloc(1, sizeof(*m));
	if (m == NULL || (m->calname = strdup(calname ? calname : "")) == NULL)
		abort();
	tbuf_append_char(&m->tzids, '\n');
	return m;
}

void dav_ics_merge_free(dav_ics_merge **m)
{
	if (*m == NULL)
		return;
	free((*m)->calname);
	tbuf_free(&(*m)->tz);
	tbuf_free(&(*m)->comps);
	tbuf_free(&(*m)->tzids);
	free(*m);
	*m = NULL;
}

/* A VTIMEZONE block is added unless one with its TZID already was. */
static void merge_tz(dav_ics_merge *m, const tbuf *cur)
{
	const char *p = tbuf_cstr(cur);
	const char *id = NULL;
	for (const char *l = p; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncasecmp(l, "TZID", 4) == 0 && (l[4] == ':' || l[4] == ';')) {
			id = strchr(l, ':');
			break;
		}
	if (id != NULL) {
		id++;
		size_t n = strcspn(id, "\r\n");
		tbuf key = TBUF_INIT;
		tbuf_append_char(&key, '\n');
		tbuf_append(&key, id, n);
		tbuf_append_char(&key, '\n');
		int seen = strstr(tbuf_cstr(&m->tzids), tbuf_cstr(&key)) != NULL;
		if (!seen)
			tbuf_append(&m->tzids, key.data + 1, key.len - 1);
		tbuf_free(&key);
		if (seen)
			return;
	}
	tbuf_append(&m->tz, cur->data, cur->len);
}

void dav_ics_merge_add(dav_ics_merge *m, const char *data, size_t len)
{
	int depth = 0, is_tz = 0;
	tbuf cur = TBUF_INIT;
	size_t i = 0;
	while (i < len) {
		const char *l = data + i;
		const char *nl = memchr(l, '\n', len - i);
		size_t n = nl ? (size_t)(nl - l) : len - i;
		i += n + (nl ? 1 : 0);
		if (n > 0 && l[n - 1] == '\r')
			n--;
		int cont = n > 0 && (l[0] == ' ' || l[0] == '\t');
		int begin = !cont && n > 6 && strncasecmp(l, "BEGIN:", 6) == 0;
		int end = !cont && n > 4 && strncasecmp(l, "END:", 4) == 0;
		if (depth == 0) {
			if (begin && n == 15 && strncasecmp(l + 6, "VCALENDAR", 9) == 0)
				depth = 1;
			continue;
		}
		if (depth == 1) {
			if (end)
				depth = 0;
			if (!begin)
				continue;   /* the calendar's own properties: ours replace them */
			tbuf_reset(&cur);
			is_tz = n == 15 && strncasecmp(l + 6, "VTIMEZONE", 9) == 0;
		}
		tbuf_append(&cur, l, n);
		tbuf_append_str(&cur, "\r\n");
		if (begin)
			depth++;
		else if (end && --depth == 1) {
			if (is_tz)
				merge_tz(m, &cur);
			else
				tbuf_append(&m->comps, cur.data, cur.len);
			tbuf_reset(&cur);
		}
	}
	tbuf_free(&cur);
}

void dav_ics_merge_finish(dav_ics_merge *m, tbuf *out)
{
	tbuf_append_str(out, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Tern//iCal//EN\r\nCALSCALE:GREGORIAN\r\n");
	if (m->calname[0]) {
		tbuf_append_str(out, "X-WR-CALNAME:");
		for (const char *p = m->calname; *p; p++) {
			if (*p == '\\' || *p == ';' || *p == ',')
				tbuf_append_char(out, '\\');
			if ((unsigned char)*p >= 0x20)
				tbuf_append_char(out, *p);
		}
		tbuf_append_str(out, "\r\n");
	}
	tbuf_append(out, m->tz.data, m->tz.len);
	tbuf_append(out, m->comps.data, m->comps.len);
	tbuf_append_str(out, "END:VCALENDAR\r\n");
}

static int merge_object(const Tern__DavObject *o, void *arg)
{
	dav_ics_merge_add(arg, (const char *)o->data.data, o->data.len);
	return 0;
}

/* A public calendar named coll in domain (of user when given): 0 with owner and c. */
static int find_public(dav_req *r, uint8_t owner[16], Tern__DavCollection **c_r)
{
	Tern__User **users = NULL;
	size_t n = 0;
	int found = -1;
	if (r->path.user[0]) {
		Tern__User *u = NULL;
		if (store_user_get(r->env->st, r->path.domain, r->path.user, &u) == STORE_OK && u->id.len == 16 &&
		    store_dav_collection_get(r->env->st, u->id.data, r->path.coll, c_r) == STORE_OK) {
			memcpy(owner, u->id.data, 16);
			found = 0;
		}
		store_free_record(u);
	} else if (store_user_list(r->env->st, r->path.domain, &users, &n) == STORE_OK) {
		for (size_t i = 0; i < n && found < 0; i++) {
			Tern__DavCollection *c = NULL;
			if (users[i]->id.len == 16 &&
			    store_dav_collection_get(r->env->st, users[i]->id.data, r->path.coll, &c) == STORE_OK &&
			    c->public_) {
				memcpy(owner, users[i]->id.data, 16);
				*c_r = c;
				found = 0;
			} else {
				store_free_record(c);
			}
		}
		store_free_list((void **)users, n);
	}
	if (found == 0 && !(*c_r)->public_) {
		store_free_record(*c_r);
		*c_r = NULL;
		found = -1;
	}
	return found;
}

void dav_do_ical(dav_req *r, int public_only)
{
	if (strcmp(r->req->method, "GET") != 0 && strcmp(r->req->method, "HEAD") != 0) {
		dav_error(r, 405, "a published calendar is read with GET");
		return;
	}
	Tern__DavCollection *c = NULL;
	uint8_t owner[16];
	if (public_only) {
		char dom[256];
		if (store_domain_resolve(r->env->st, r->path.domain, dom, sizeof(dom)) == STORE_OK)
			snprintf(r->path.domain, sizeof(r->path.domain), "%s", dom);
		if (find_public(r, owner, &c) < 0) {
			dav_error(r, 404, "no such public calendar");
			return;
		}
	} else {
		memcpy(owner, r->owner, 16);
		if (store_dav_collection_get(r->env->st, owner, r->path.coll, &c) != STORE_OK)
			c = NULL;
	}
	if (c == NULL || c->kind != TERN__DAV_COLLECTION__KIND__CALENDAR) {
		store_free_record(c);
		dav_error(r, 404, "no such calendar");
		return;
	}
	dav_ics_merge *m = dav_ics_merge_new(c->display_name[0] ? c->display_name : c->name);
	int rc = store_dav_object_scan(r->env->st, owner, c->id.data, merge_object, m);
	if (rc != STORE_OK) {
		dav_error(r, 500, "cannot read the calendar");
	} else {
		tbuf_reset(&r->body);
		dav_ics_merge_finish(m, &r->body);
		r->status = 200;
		r->ctype = "text/calendar; charset=utf-8";
		char tag[64];
		snprintf(tag, sizeof(tag), "\"ics-%llu\"", (unsigned long long)c->modseq);
		dav_header(r, "ETag", tag);
	}
	dav_ics_merge_free(&m);
	store_free_record(c);
}

/* ---- free/busy URL ---- */

/* A time parameter; default when absent. 0, or -1 when present and unreadable. */
static int time_param(dav_req *r, const char *name, int64_t def, int64_t *t_r)
{
	char *v = http_query_param(r->req, name);
	int rc = 0;
	*t_r = def;
	if (v != NULL && *v != '\0')
		rc = dav_time_parse(v, t_r);
	free(v);
	return rc;
}

/* Busy time of addr, homed on another node, from the master (or, on the master, from
 * what the home node pushed): 0 with *list_r, -1 with the answer set (503). */
static int remote_busy(dav_req *r, const char *addr, int64_t start, int64_t end, dav_busy **list_r, size_t *n_r)
{
	cluster_busy *cb = NULL;
	size_t n = 0;
	tbuf err = TBUF_INIT;

	if (cluster_freebusy_get(r->env->cl, addr, start, end, &cb, &n, &err) < 0) {
		dav_error(r, 503, "free/busy of %s is not available: %s", addr, tbuf_cstr(&err));
		tbuf_free(&err);
		return -1;
	}
	tbuf_free(&err);
	dav_busy *list = n ? malloc(n * sizeof(*list)) : NULL;
	if (n && list == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
		list[i] = (dav_busy){ cb[i].start, cb[i].end, cb[i].type };
	free(cb);
	*list_r = list;
	*n_r = n;
	return 0;
}

void dav_do_freebusy(dav_req *r)
{
	int64_t now = tern_now(), start, end;
	if (time_param(r, "start", now - 86400, &start) < 0 || time_param(r, "end", now + 60 * 86400, &end) < 0 ||
	    end <= start) {
		dav_error(r, 400, "start and end are iCalendar date-times (YYYYMMDDTHHMMSSZ), end after start");
		return;
	}
	int64_t max_days = r->env->conf ? r->env->conf->dav_freebusy_max_days : 366;
	if (end - start > max_days * 86400) {
		dav_error(r, 400, "free/busy range longer than %lld days", (long long)max_days);
		return;
	}
	char dom[256], addr[400], home[128];
	if (store_domain_resolve(r->env->st, r->path.domain, dom, sizeof(dom)) == STORE_OK) {
		tern_lower(dom);
		snprintf(r->path.domain, sizeof(r->path.domain), "%s", dom);
	}
	dav_owner_address(r, addr, sizeof(addr));
	uint8_t owner[16];
	int unavailable = 0, remote = 0;
	Tern__User *u = NULL;
	Tern__Resource *res = NULL;
	if (store_user_get(r->env->st, r->path.domain, r->path.user, &u) == STORE_OK && u->id.len == 16) {
		memcpy(owner, u->id.data, 16);
		store_free_record(u);
		remote = r->env->cl != NULL && cluster_user_home(r->env->st, addr, home, sizeof(home)) == 1;
	} else if (store_resource_get(r->env->st, r->path.domain, r->path.user, &res) == STORE_OK &&
		   res->id.len == 16) {
		store_free_record(u);
		memcpy(owner, res->id.data, 16);
		unavailable = !res->available;
		store_free_record(res);
		remote = r->env->cl != NULL && cluster_get_role(r->env->cl) == CLUSTER_SLAVE;
	} else {
		store_free_record(u);
		store_free_record(res);
		dav_error(r, 404, "no such user or resource: %s", addr);
		return;
	}
	dav_busy *list = NULL;
	size_t n = 0;
	if (remote) {
		if (remote_busy(r, addr, start, end, &list, &n) < 0)
			return;
	} else if (unavailable) {
		list = malloc(sizeof(*list));
		if (list == NULL)
			abort();
		list[0] = (dav_busy){ start, end, TERN__BUSY_PERIOD__TYPE__BUSY };
		n = 1;
	} else if (dav_freebusy_collect(r->env->st, owner, start, end, &list, &n) < 0) {
		free(list);
		dav_error(r, 500, "cannot read the calendars of %s", addr);
		return;
	}
	tbuf_reset(&r->body);
	dav_freebusy_render(list, n, start, end, NULL, addr, 0, &r->body);
	free(list);
	r->status = 200;
	r->ctype = "text/calendar; charset=utf-8";
}
