/* cluster_fb.c - free/busy across the distributed domain (DESIGN.md §5).
 *
 * Slave: cluster_freebusy_push keeps the latest busy time of each local user in a list
 * (cl->fb_out, under cl->mu); the cluster thread sends each as a FreeBusyPush once the
 * master is reachable and again until the master acknowledges it, so a change made while
 * the master was away reaches it when it returns.
 *
 * Master: the latest push per user lives in a hash table (cl->fb, under cl->fb_mu) and
 * in the node-local config row "setting/fb/<address>" (hex of the packed FreeBusyPush),
 * written asynchronously; after a restart a user's row is read back on first use. A push
 * is accepted only from the node that the replicated home map names as the user's home.
 * cl_master_fb answers a slave's push and its queries about users homed elsewhere, and
 * hands the rest (users and resources of the master, bookings) to the service thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cluster_private.h"

#define FB_KEY_PREFIX "fb/"
#define FB_KEY_MAX 255                /* a setting name */

static char *dupe(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		abort();
	return d;
}

cluster_busy *cl_busy_from_wire(Tern__BusyPeriod *const *p, size_t n)
{
	if (n == 0)
		return NULL;
	cluster_busy *l = malloc(n * sizeof(*l));
	if (l == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
		l[i] = (cluster_busy){ p[i]->start, p[i]->end, p[i]->type };
	return l;
}

Tern__BusyPeriod **cl_busy_to_wire(const cluster_busy *list, size_t n, Tern__BusyPeriod **store_r)
{
	Tern__BusyPeriod *arr = calloc(n ? n : 1, sizeof(*arr));
	Tern__BusyPeriod **ptrs = calloc(n ? n : 1, sizeof(*ptrs));

	if (arr == NULL || ptrs == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		tern__busy_period__init(&arr[i]);
		arr[i].start = list[i].start;
		arr[i].end = list[i].end;
		arr[i].type = list[i].type;
		ptrs[i] = &arr[i];
	}
	*store_r = arr;
	return ptrs;
}

/* ---- master: the table of pushes ---- */

static unsigned fb_hash(const char *s)
{
	unsigned h = 5381;

	for (; *s; s++)
		h = h * 33 + (unsigned char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
	return h % CL_FB_BUCKETS;
}

void cl_fb_init(cluster *cl)
{
	pthread_mutex_init(&cl->fb_mu, NULL);
}

static void entry_free(cl_fb_entry *e)
{
	free(e->address);
	free(e->periods);
	free(e);
}

static void out_free(cl_fb_out *o)
{
	free(o->address);
	free(o->periods);
	free(o);
}

void cl_fb_free(cluster *cl)
{
	for (size_t b = 0; b < CL_FB_BUCKETS; b++)
		while (cl->fb[b] != NULL) {
			cl_fb_entry *e = cl->fb[b];

			cl->fb[b] = e->next;
			entry_free(e);
		}
	while (cl->fb_out != NULL) {
		cl_fb_out *o = cl->fb_out;

		cl->fb_out = o->next;
		out_free(o);
	}
	pthread_mutex_destroy(&cl->fb_mu);
}

/* The entry of address (fb_mu held), or NULL. */
static cl_fb_entry *entry_find(cluster *cl, const char *address)
{
	for (cl_fb_entry *e = cl->fb[fb_hash(address)]; e != NULL; e = e->next)
		if (strcasecmp(e->address, address) == 0)
			return e;
	return NULL;
}

/* Replace (or add) the entry of p->address when p is not older (fb_mu held). 1 when
 * taken, 0 when an entry computed later is kept. */
static int entry_put(cluster *cl, const Tern__Cluster__FreeBusyPush *p)
{
	cl_fb_entry *e = entry_find(cl, p->address);

	if (e != NULL && e->computed > p->computed)
		return 0;
	if (e == NULL) {
		unsigned h = fb_hash(p->address);

		e = calloc(1, sizeof(*e));
		if (e == NULL)
			abort();
		e->address = dupe(p->address);
		tern_lower(e->address);
		e->next = cl->fb[h];
		cl->fb[h] = e;
	}
	free(e->periods);
	e->periods = cl_busy_from_wire(p->periods, p->n_periods);
	e->n = p->n_periods;
	e->from = p->from;
	e->to = p->to;
	e->computed = p->computed;
	return 1;
}

static int hexv(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The stored push of address, read back after a restart (fb_mu held). */
static void entry_load(cluster *cl, const char *address)
{
	char key[FB_KEY_MAX + 1], *hex = NULL;
	int w = snprintf(key, sizeof(key), FB_KEY_PREFIX "%s", address);

	if (w <= 0 || (size_t)w >= sizeof(key))
		return;
	tern_lower(key);
	if (store_setting_get(cl->st, key, &hex) != STORE_OK || hex == NULL) {
		free(hex);
		return;
	}
	size_t n = strlen(hex) / 2;
	uint8_t *raw = malloc(n ? n : 1);
	int ok = raw != NULL && n > 0 && strlen(hex) % 2 == 0;
	for (size_t i = 0; ok && i < n; i++) {
		int h = hexv(hex[2 * i]), l = hexv(hex[2 * i + 1]);

		ok = h >= 0 && l >= 0;
		raw[i] = (uint8_t)(h * 16 + l);
	}
	Tern__Cluster__FreeBusyPush *p = ok ? tern__cluster__free_busy_push__unpack(NULL, n, raw) : NULL;
	if (p != NULL && p->address != NULL && strcasecmp(p->address, address) == 0)
		entry_put(cl, p);
	else
		tlog(TLOG_WARNING, "cluster: the stored free/busy of %s is unreadable; ignored", address);
	if (p != NULL)
		tern__cluster__free_busy_push__free_unpacked(p, NULL);
	free(raw);
	free(hex);
}

static void persisted(const store_result *res, void *arg)
{
	(void)res;
	(void)arg;
}

/* Write p into "setting/fb/<address>" without waiting (the store keeps the order). */
static void entry_persist(cluster *cl, const Tern__Cluster__FreeBusyPush *p)
{
	char key[FB_KEY_MAX + 1];
	int w = snprintf(key, sizeof(key), FB_KEY_PREFIX "%s", p->address);

	if (w <= 0 || (size_t)w >= sizeof(key))
		return;       /* kept in memory only */
	tern_lower(key);
	size_t n = tern__cluster__free_busy_push__get_packed_size(p);
	uint8_t *raw = malloc(n ? n : 1);
	char *hex = malloc(2 * n + 1);
	if (raw == NULL || hex == NULL)
		abort();
	tern__cluster__free_busy_push__pack(p, raw);
	for (size_t i = 0; i < n; i++) {
		hex[2 * i] = "0123456789abcdef"[raw[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[raw[i] & 15];
	}
	hex[2 * n] = '\0';
	store_cb cb = { persisted, NULL, NULL };
	store_setting_put(cl->st, key, hex, cb, NULL);
	free(raw);
	free(hex);
}

int cl_fb_store(cluster *cl, const char *from_node, const Tern__Cluster__FreeBusyPush *p, char *why,
		size_t whyn)
{
	char home[128];

	if (from_node != NULL && (cluster_user_home(cl->st, p->address, home, sizeof(home)) != 1 ||
				  strcasecmp(home, from_node) != 0)) {
		snprintf(why, whyn, "%s is not homed on node %s", p->address, from_node);
		return -1;
	}
	pthread_mutex_lock(&cl->fb_mu);
	if (entry_find(cl, p->address) == NULL)
		entry_load(cl, p->address);
	int taken = entry_put(cl, p);
	pthread_mutex_unlock(&cl->fb_mu);
	if (taken)
		entry_persist(cl, p);
	return 0;
}

int cl_fb_lookup(cluster *cl, const char *address, int64_t from, int64_t to, cluster_busy **list_r,
		 size_t *n_r, int64_t *cov_from, int64_t *cov_to)
{
	*list_r = NULL;
	*n_r = 0;
	pthread_mutex_lock(&cl->fb_mu);
	cl_fb_entry *e = entry_find(cl, address);
	if (e == NULL) {
		entry_load(cl, address);
		e = entry_find(cl, address);
	}
	if (e == NULL) {
		pthread_mutex_unlock(&cl->fb_mu);
		*cov_from = *cov_to = 0;
		return 0;
	}
	*cov_from = e->from;
	*cov_to = e->to;
	cluster_busy *l = e->n ? malloc(e->n * sizeof(*l)) : NULL;
	size_t k = 0;
	if (e->n && l == NULL)
		abort();
	for (size_t i = 0; i < e->n; i++) {
		cluster_busy b = e->periods[i];

		if (b.end <= from || b.start >= to)
			continue;
		if (b.start < from)
			b.start = from;
		if (b.end > to)
			b.end = to;
		l[k++] = b;
	}
	pthread_mutex_unlock(&cl->fb_mu);
	if (k == 0) {
		free(l);
		l = NULL;
	}
	*list_r = l;
	*n_r = k;
	return 1;
}

/* ---- master: the requests of slaves ---- */

static void master_send(cluster *cl, const cl_peer *p, Tern__Cluster__Envelope *e)
{
	cl_send(cl, cl->router, p->rid, p->rid_len, e);
}

static void master_refuse(cluster *cl, const cl_peer *p, uint64_t id, const char *msg)
{
	Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__Error er = TERN__CLUSTER__ERROR__INIT;

	er.code = TERN__CLUSTER__ERROR__CODE__REFUSED;
	er.message = (char *)msg;
	e.id = id;
	e.body_case = TERN__CLUSTER__ENVELOPE__BODY_ERROR;
	e.error = &er;
	master_send(cl, p, &e);
}

/* A slave's busy time of one of its users. */
static void master_push(cluster *cl, const cl_peer *p, const Tern__Cluster__Envelope *e)
{
	char why[CLUSTER_TEXT_MAX];

	if (cl_fb_store(cl, p->name, e->freebusy_push, why, sizeof(why)) < 0) {
		master_refuse(cl, p, e->id, why);
		return;
	}
	Tern__Cluster__Envelope r = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__FreeBusyPushOk ok = TERN__CLUSTER__FREE_BUSY_PUSH_OK__INIT;

	ok.address = e->freebusy_push->address;
	r.id = e->id;
	r.body_case = TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_PUSH_OK;
	r.freebusy_push_ok = &ok;
	master_send(cl, p, &r);
}

/* The pushed busy time of a user homed on another node, answered at once. */
static void master_query(cluster *cl, const cl_peer *p, const Tern__Cluster__Envelope *e)
{
	const Tern__Cluster__FreeBusyQuery *q = e->freebusy_query;
	Tern__Cluster__Envelope r = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__FreeBusyReply fr = TERN__CLUSTER__FREE_BUSY_REPLY__INIT;
	Tern__BusyPeriod *arr = NULL;
	cluster_busy *list = NULL;
	size_t n = 0;
	int64_t cf = 0, ct = 0;
	int known = cl_fb_lookup(cl, q->address, q->from, q->to, &list, &n, &cf, &ct);

	fr.address = q->address;
	fr.known = known == 1;
	fr.from = q->from;
	fr.to = q->to;
	fr.periods = cl_busy_to_wire(list, n, &arr);
	fr.n_periods = n;
	r.id = e->id;
	r.body_case = TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_REPLY;
	r.freebusy_reply = &fr;
	master_send(cl, p, &r);
	free(fr.periods);
	free(arr);
	free(list);
}

void cl_master_fb(cluster *cl, const cl_peer *p, const Tern__Cluster__Envelope *e)
{
	char home[128];

	if (e->body_case == TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_PUSH) {
		master_push(cl, p, e);
		return;
	}
	/* users homed on another node: from the pushes; users and resources of this node (and
	 * bookings): by the service thread, with their calendars */
	if (e->body_case == TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_QUERY &&
	    cluster_user_home(cl->st, e->freebusy_query->address, home, sizeof(home)) == 1) {
		master_query(cl, p, e);
		return;
	}
	if (cl_svc_submit(cl, p->name, e) < 0)
		master_refuse(cl, p, e->id, "the master is too busy; try again later");
}

/* ---- the public calls ---- */

static int valid_address(const char *a)
{
	return a != NULL && a[0] != '\0' && strlen(a) <= CLUSTER_TEXT_MAX && strchr(a, '@') != NULL;
}

int cluster_freebusy_push(cluster *cl, const char *address, const cluster_busy *periods, size_t n, int64_t from,
			  int64_t to)
{
	if (!valid_address(address) || to <= from || n > CLUSTER_LIST_MAX || (n > 0 && periods == NULL))
		return -1;
	for (size_t i = 0; i < n; i++)
		if (periods[i].start >= periods[i].end || (int)periods[i].type < 0 ||
		    periods[i].type > TERN__BUSY_PERIOD__TYPE__UNAVAILABLE)
			return -1;
	cluster_role role = cluster_get_role(cl);
	if (role == CLUSTER_STANDALONE)
		return 0;
	if (role == CLUSTER_MASTER) {
		Tern__Cluster__FreeBusyPush p = TERN__CLUSTER__FREE_BUSY_PUSH__INIT;
		Tern__BusyPeriod *arr = NULL;
		char why[256];

		p.address = (char *)address;
		p.from = from;
		p.to = to;
		p.computed = tern_now();
		p.periods = cl_busy_to_wire(periods, n, &arr);
		p.n_periods = n;
		int rc = cl_fb_store(cl, NULL, &p, why, sizeof(why));
		free(p.periods);
		free(arr);
		return rc;
	}
	cluster_busy *copy = n ? malloc(n * sizeof(*copy)) : NULL;
	if (n && copy == NULL)
		abort();
	if (n)
		memcpy(copy, periods, n * sizeof(*copy));
	pthread_mutex_lock(&cl->mu);
	cl_fb_out *o = cl->fb_out;
	while (o != NULL && strcasecmp(o->address, address) != 0)
		o = o->next;
	if (o == NULL && cl->nfb_out >= CL_FB_OUT_MAX) {
		pthread_mutex_unlock(&cl->mu);
		free(copy);
		tlog(TLOG_WARNING, "cluster: %zu free/busy pushes wait for the master; %s not queued",
		     (size_t)CL_FB_OUT_MAX, address);
		return -1;
	}
	if (o == NULL) {
		o = calloc(1, sizeof(*o));
		if (o == NULL)
			abort();
		o->address = dupe(address);
		tern_lower(o->address);
		o->next = cl->fb_out;
		cl->fb_out = o;
		cl->nfb_out++;
	}
	free(o->periods);
	o->periods = copy;
	o->n = n;
	o->from = from;
	o->to = to;
	o->computed = tern_now();
	o->wire_id = 0;
	pthread_mutex_unlock(&cl->mu);
	cl_wake(cl);
	return 0;
}

int cluster_freebusy_get(cluster *cl, const char *address, int64_t from, int64_t to, cluster_busy **list_r,
			 size_t *n_r, tbuf *err)
{
	int64_t cf, ct;

	*list_r = NULL;
	*n_r = 0;
	if (!valid_address(address) || to <= from) {
		tbuf_append_str(err, "invalid free/busy query");
		return -1;
	}
	switch (cluster_get_role(cl)) {
	case CLUSTER_MASTER:
		return cl_fb_lookup(cl, address, from, to, list_r, n_r, &cf, &ct) < 0 ? -1 : 0;
	case CLUSTER_STANDALONE:
		tbuf_append_str(err, "this node is not part of a distributed domain");
		return -1;
	default:
		break;
	}
	cl_request r;

	memset(&r, 0, sizeof(r));
	r.kind = CL_REQ_FB_QUERY;
	r.address = address;
	r.from = from;
	r.to = to;
	if (cl_request_run(cl, &r) < 0) {
		free(r.busy);
		tbuf_append_str(err, r.error);
		return -1;
	}
	*list_r = r.busy;
	*n_r = r.nbusy;
	return 0;
}

/* ---- slave: sending the pushes ---- */

void cl_fb_send_pending(cluster *cl, int64_t now_ms, int all)
{
	int64_t resend = cl->conf->cluster_request_timeout * 1000;

	pthread_mutex_lock(&cl->mu);
	for (cl_fb_out *o = cl->fb_out; o != NULL; o = o->next) {
		if (!all && o->wire_id != 0 && now_ms - o->sent_ms < resend)
			continue;
		Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
		Tern__Cluster__FreeBusyPush p = TERN__CLUSTER__FREE_BUSY_PUSH__INIT;
		Tern__BusyPeriod *arr = NULL;

		p.address = o->address;
		p.from = o->from;
		p.to = o->to;
		p.computed = o->computed;
		p.periods = cl_busy_to_wire(o->periods, o->n, &arr);
		p.n_periods = o->n;
		e.id = cl_new_id(cl);
		e.body_case = TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_PUSH;
		e.freebusy_push = &p;
		int rc = cl_send(cl, cl->dealer, NULL, 0, &e);
		free(p.periods);
		free(arr);
		if (rc < 0)
			break;    /* the queue is full: the next tick goes on */
		o->wire_id = e.id;
		o->sent_ms = now_ms;
	}
	pthread_mutex_unlock(&cl->mu);
}

int cl_fb_acked(cluster *cl, uint64_t id, const char *error)
{
	int found = 0;

	pthread_mutex_lock(&cl->mu);
	for (cl_fb_out **op = &cl->fb_out; *op != NULL; op = &(*op)->next) {
		cl_fb_out *o = *op;

		if (o->wire_id != id)
			continue;
		if (error != NULL)
			tlog(TLOG_WARNING, "cluster: master %s refused the free/busy of %s: %s", cl->master_name,
			     o->address, error);
		*op = o->next;
		cl->nfb_out--;
		out_free(o);
		found = 1;
		break;
	}
	pthread_mutex_unlock(&cl->mu);
	return found;
}
