/* deliver_plan.c - from the RCPTs of a message to its distinct final recipients (local
 * mailboxes by user id, remote addresses, users homed on another node of the distributed
 * domain), and the RCPT-time checks that tell the SMTP session how to answer one address.
 * Both use deliver_expand() for aliases, groups and forwarding, except for mail relayed
 * by a cluster peer, whose recipients are final already. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster.h"
#include "deliver_int.h"

#define PLAN_FAILED_MAX 1000

/* Grow an array of n elements of size sz to hold one more; NULL on out-of-memory. */
static void *plan_grow(void *arr, size_t n, size_t sz)
{
	if (n & (n - 1))
		return arr;              /* capacity is the next power of two: room left */
	return realloc(arr, (n ? 2 * n : 1) * sz);
}

void dlv_plan_fail(dlv_plan *p, const char *address, size_t rcpt, const char *status,
		   const char *fmt, ...)
{
	dlv_failed *f;
	va_list ap;

	for (size_t i = 0; i < p->nfailed; i++)
		if (strcmp(p->failed[i].address, address) == 0)
			return;
	if (p->nfailed >= PLAN_FAILED_MAX)
		return;
	if (p->nfailed == p->failed_cap) {
		size_t cap = p->failed_cap ? 2 * p->failed_cap : 4;
		dlv_failed *nf = realloc(p->failed, cap * sizeof(*nf));
		if (nf == NULL)
			return;
		p->failed = nf;
		p->failed_cap = cap;
	}
	f = &p->failed[p->nfailed++];
	memset(f, 0, sizeof(*f));
	snprintf(f->address, sizeof(f->address), "%s", address);
	f->rcpt = rcpt;
	snprintf(f->status, sizeof(f->status), "%s", status);
	va_start(ap, fmt);
	vsnprintf(f->diagnostic, sizeof(f->diagnostic), fmt, ap);
	va_end(ap);
}

/* A local mailbox once per user id, whatever the path that reached it. */
static int plan_add_local(dlv_plan *p, const Tern__User *u, const char *address, size_t rcpt)
{
	dlv_local *l;

	if (u->id.len != 16)
		return STORE_EIO;
	for (size_t i = 0; i < p->nlocal; i++)
		if (memcmp(p->local[i].id, u->id.data, 16) == 0)
			return 0;
	if ((l = plan_grow(p->local, p->nlocal, sizeof(*l))) == NULL)
		return STORE_EIO;
	p->local = l;
	l = &p->local[p->nlocal++];
	memcpy(l->id, u->id.data, 16);
	snprintf(l->address, sizeof(l->address), "%s", address);
	l->rcpt = rcpt;
	return 0;
}

/* A queued address once, with the first RCPT that reached it; node = its home node for a
 * node-routed user, "" for a remote address. */
static int plan_add_remote(dlv_plan *p, const char *address, const char *node, size_t rcpt)
{
	dlv_remote *r;

	for (size_t i = 0; i < p->nremote; i++)
		if (strcmp(p->remote[i].address, address) == 0)
			return 0;
	if ((r = plan_grow(p->remote, p->nremote, sizeof(*r))) == NULL)
		return STORE_EIO;
	p->remote = r;
	r = &p->remote[p->nremote++];
	memset(r, 0, sizeof(*r));
	snprintf(r->address, sizeof(r->address), "%s", address);
	snprintf(r->node, sizeof(r->node), "%s", node);
	r->rcpt = rcpt;
	if (node[0] != '\0')
		p->nnode++;
	return 0;
}

/* An enabled user: a mailbox here, or the queue for its home node. A mailbox here that a
 * migration holds (frozen at its cut-over, or not yet active after it) takes no delivery:
 * the message is queued for this node, and the queue looks the home up again when it
 * delivers - the new home once the master committed, this node again once released. The
 * queue's own hand-back of such mail (DLV_PLAN_HANDBACK) fails temporarily instead
 * (STORE_EREFUSED, p->held), so the entry waits for its next try. */
static int plan_add_user(store *st, dlv_plan *p, const Tern__User *u, const char *address, size_t rcpt,
			 unsigned flags)
{
	char home[DELIVER_NODE_MAX];
	store_mbox_state ms = STORE_MBOX_ACTIVE;
	int rc = cluster_user_home(st, address, home, sizeof(home));

	if (rc < 0)
		return rc;
	if (rc == 1) {
		if (p->from_node[0] != '\0' && strcasecmp(home, p->from_node) == 0)
			p->bounced = 1;
		return plan_add_remote(p, address, home, rcpt);
	}
	if (u->id.len != 16)
		return STORE_EIO;
	if ((rc = store_mbox_state_get(st, u->id.data, &ms, NULL)) != STORE_OK)
		return rc;
	if (ms == STORE_MBOX_ACTIVE)
		return plan_add_local(p, u, address, rcpt);
	const char *self = store_node_name(st);
	if ((flags & DLV_PLAN_HANDBACK) || self == NULL || self[0] == '\0') {
		p->held = 1;
		snprintf(p->held_address, sizeof(p->held_address), "%s", address);
		return STORE_EREFUSED;
	}
	return plan_add_remote(p, address, self, rcpt);
}

/* A resource: its mail goes to scheduling after the commit, never to a mailbox. */
static int plan_add_resource(dlv_plan *p, const char *address, size_t rcpt)
{
	for (size_t i = 0; i < p->nresource; i++)
		if (strcmp(p->resource[i].address, address) == 0)
			return 0;
	p->resource = plan_grow(p->resource, p->nresource, sizeof(*p->resource));
	if (p->resource == NULL)
		return STORE_EIO;
	memset(&p->resource[p->nresource], 0, sizeof(*p->resource));
	snprintf(p->resource[p->nresource].address, DELIVER_ADDR_MAX, "%s", address);
	p->resource[p->nresource].rcpt = rcpt;
	p->nresource++;
	return 0;
}

/* One final recipient of RCPT number i. */
static int plan_add(store *st, dlv_plan *p, const deliver_rcpt *fr, size_t i, unsigned flags)
{
	Tern__User *u = NULL;
	int rc;

	switch (fr->kind) {
	case DELIVER_REMOTE:
		return plan_add_remote(p, fr->address, "", i);
	case DELIVER_PUBLIC:
		dlv_plan_fail(p, fr->address, i, "5.1.1", "550 5.1.1 %s: public folder delivery is not available",
			      fr->address);
		return 0;
	case DELIVER_UNKNOWN:
		dlv_plan_fail(p, fr->address, i, "5.1.1", "550 5.1.1 <%s>: no such user", fr->address);
		return 0;
	case DELIVER_RESOURCE:
		return plan_add_resource(p, fr->address, i);
	case DELIVER_LOCAL_USER:
		break;
	}
	rc = store_user_find(st, fr->address, &u);
	if (rc == STORE_ENOTFOUND) {
		dlv_plan_fail(p, fr->address, i, "5.1.1", "550 5.1.1 <%s>: no such user", fr->address);
		return 0;
	}
	if (rc != STORE_OK)
		return rc;
	if (!u->enabled)
		dlv_plan_fail(p, fr->address, i, "5.2.1", "550 5.2.1 <%s>: mailbox disabled", fr->address);
	else
		rc = plan_add_user(st, p, u, fr->address, i, flags);
	store_free_record(u);
	return rc;
}

/* A final address as it is (relayed mail): a user of a local domain, or remote. 0 ok;
 * STORE_EINVAL for a bad address; another store error. */
static int final_rcpt(store *st, const char *address, deliver_expansion *e)
{
	char local[65], domain[254], canon[254];
	int rc;

	memset(e, 0, sizeof(*e));
	if (tern_split_address(address, local, sizeof(local), domain, sizeof(domain)) < 0)
		return STORE_EINVAL;
	rc = store_domain_resolve(st, domain, canon, sizeof(canon));
	if (rc != STORE_OK && rc != STORE_ENOTFOUND && rc != STORE_EINVAL)
		return rc;
	if ((e->rcpts = calloc(1, sizeof(*e->rcpts))) == NULL)
		return STORE_EIO;
	e->n = 1;
	e->rcpts[0].kind = rc == STORE_OK ? DELIVER_LOCAL_USER : DELIVER_REMOTE;
	snprintf(e->rcpts[0].address, sizeof(e->rcpts[0].address), "%s", address);
	tern_lower(e->rcpts[0].address);
	return 0;
}

int dlv_plan_build(store *st, const deliver_rcpt_req *rcpts, size_t n, unsigned flags, const char *from_node,
		   dlv_plan *p)
{
	int rc = 0;
	int final = (flags & DLV_PLAN_FINAL) != 0;
	int held;
	char held_address[DELIVER_ADDR_MAX];

	memset(p, 0, sizeof(*p));
	snprintf(p->from_node, sizeof(p->from_node), "%s", from_node != NULL ? from_node : "");
	for (size_t i = 0; i < n && rc == 0; i++) {
		deliver_expansion e;
		rc = final ? final_rcpt(st, rcpts[i].address, &e) : deliver_expand(st, rcpts[i].address, &e);
		if (rc == STORE_EINVAL) {
			dlv_plan_fail(p, rcpts[i].address, i, "5.1.3", "501 5.1.3 <%s>: bad address",
				      rcpts[i].address);
			rc = 0;
		}
		for (size_t j = 0; j < e.n && rc == 0; j++)
			rc = plan_add(st, p, &e.rcpts[j], i, flags);
		deliver_expansion_free(&e);
	}
	if (rc != 0) {
		held = p->held;            /* the caller's reply names the held mailbox */
		memcpy(held_address, p->held_address, sizeof(held_address));
		dlv_plan_free(p);
		p->held = held;
		memcpy(p->held_address, held_address, sizeof(held_address));
	}
	return rc;
}

void dlv_plan_free(dlv_plan *p)
{
	free(p->local);
	free(p->remote);
	free(p->resource);
	free(p->failed);
	memset(p, 0, sizeof(*p));
}

/* The mailbox cannot take a message of `size` bytes (0 = unknown: it is full when usage
 * has reached either quota). */
static int check_full(store *st, const Tern__User *u, uint64_t size)
{
	Tern__Mailbox *m = NULL;
	int full = 0;

	if ((u->quota_bytes == 0 && u->quota_items == 0) || u->id.len != 16)
		return 0;
	if (store_mailbox_get(st, u->id.data, &m) != STORE_OK)
		return 0;
	if (u->quota_bytes && (size ? m->bytes + size > u->quota_bytes : m->bytes >= u->quota_bytes))
		full = 1;
	if (u->quota_items && m->items >= u->quota_items)
		full = 1;
	store_free_record(m);
	return full;
}

/* The state of one final recipient at RCPT time: 0 deliverable, else a store code with
 * the reply written. */
static int check_one(deliverer *d, const char *address, uint64_t size, const deliver_rcpt *fr,
		     char *reply, size_t n)
{
	Tern__User *u = NULL;
	int rc;

	if (fr->kind == DELIVER_REMOTE || fr->kind == DELIVER_RESOURCE)
		return 0;
	if (fr->kind == DELIVER_LOCAL_USER) {
		rc = store_user_find(d->st, fr->address, &u);
		if (rc != STORE_OK && rc != STORE_ENOTFOUND) {
			snprintf(reply, n, "451 4.3.0 <%s>: Temporary lookup failure", address);
			return STORE_EIO;
		}
		if (rc == STORE_OK) {
			int enabled = u->enabled, full = enabled && check_full(d->st, u, size);
			store_free_record(u);
			if (!enabled) {
				snprintf(reply, n, "550 5.2.1 <%s>: Recipient address rejected: mailbox disabled",
					 address);
				return STORE_EREFUSED;
			}
			if (full) {
				snprintf(reply, n, "552 5.2.2 <%s>: Mailbox full", address);
				return STORE_EQUOTA;
			}
			return 0;
		}
	}
	snprintf(reply, n, "550 5.1.1 <%s>: Recipient address rejected: no such user", address);
	return STORE_ENOTFOUND;
}

int deliver_check_rcpt(deliverer *d, const char *address, uint64_t size, int *local_r, char *reply,
		       size_t reply_n)
{
	char local[65], domain[254], canon[254];
	deliver_expansion e;
	int rc, first = 0;

	*local_r = 0;
	reply[0] = '\0';
	if (tern_split_address(address, local, sizeof(local), domain, sizeof(domain)) < 0) {
		snprintf(reply, reply_n, "501 5.1.3 Bad recipient address syntax");
		return STORE_EINVAL;
	}
	rc = store_domain_resolve(d->st, domain, canon, sizeof(canon));
	if (rc == STORE_ENOTFOUND || rc == STORE_EINVAL)
		return 0;
	if (rc != STORE_OK) {
		snprintf(reply, reply_n, "451 4.3.0 <%s>: Temporary lookup failure", address);
		return STORE_EIO;
	}
	*local_r = 1;
	rc = deliver_expand(d->st, address, &e);
	if (rc != STORE_OK) {
		deliver_expansion_free(&e);
		snprintf(reply, reply_n, "451 4.3.0 <%s>: Temporary lookup failure", address);
		return STORE_EIO;
	}
	/* Accepted when any final recipient can take it; otherwise the first one's reason. */
	for (size_t i = 0; i < e.n; i++) {
		char why[256];
		int r = check_one(d, address, size, &e.rcpts[i], why, sizeof(why));
		if (r == 0 || r == STORE_EIO) {
			if (r == STORE_EIO)
				snprintf(reply, reply_n, "%s", why);
			deliver_expansion_free(&e);
			if (r == 0)
				reply[0] = '\0';
			return r;
		}
		if (first == 0) {
			first = r;
			snprintf(reply, reply_n, "%s", why);
		}
	}
	deliver_expansion_free(&e);
	if (first == 0) {
		snprintf(reply, reply_n, "550 5.1.1 <%s>: Recipient address rejected: no such user", address);
		first = STORE_ENOTFOUND;
	}
	return first;
}

int deliver_check_relayed_rcpt(deliverer *d, const char *address, uint64_t size, char *reply,
			       size_t reply_n)
{
	deliver_expansion e;
	int rc;

	reply[0] = '\0';
	rc = final_rcpt(d->st, address, &e);
	if (rc == STORE_EINVAL) {
		snprintf(reply, reply_n, "501 5.1.3 Bad recipient address syntax");
		return STORE_EINVAL;
	}
	if (rc != STORE_OK) {
		snprintf(reply, reply_n, "451 4.3.0 <%s>: Temporary lookup failure", address);
		return STORE_EIO;
	}
	if (e.rcpts[0].kind != DELIVER_LOCAL_USER) {
		deliver_expansion_free(&e);
		snprintf(reply, reply_n, "550 5.7.1 <%s>: a node relays only mail for the domain's users",
			 address);
		return STORE_EINVAL;
	}
	/* A user homed elsewhere has no mailbox here: check_one finds it not full. */
	rc = check_one(d, address, size, &e.rcpts[0], reply, reply_n);
	deliver_expansion_free(&e);
	if (rc == 0)
		reply[0] = '\0';
	return rc;
}
