/* queue_node.c - queued recipients of the distributed domain (DESIGN.md §5 "Routing").
 *
 * The deliverer queues a user of a local domain only when the user's home is another
 * node. The queue looks the home up again when it delivers, so that mail queued before a
 * migration reaches the new home:
 *   another node  relay to it: its Node record gives the address and submission port; TLS
 *                 is required and pinned to Node.fingerprint, the login is AUTH PLAIN with
 *                 this node's node login (cluster_node_login); the SMTP session is
 *                 queue_client.c's, like any other hop;
 *   this node     hand the message back to the deliverer as relayed mail (final recipient:
 *                 no alias or footer again), one recipient at a time so that each gets its
 *                 own answer;
 *   nobody        the user is unknown everywhere (user records are replicated): 5.1.1.
 * A failure that is not final leaves the recipient pending for [cluster] relay_retry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster.h"
#include "queue_int.h"

/* Copy a reply's code, text and enhanced status into res. */
static void node_answer(qc_reply *res, int code, const char *text)
{
	int a, b, c, len = 0;
	const char *t = strlen(text) > 4 ? text + 4 : "";

	res->code = code;
	snprintf(res->text, sizeof(res->text), "%s", text);
	if (sscanf(t, "%1d.%3d.%3d%n", &a, &b, &c, &len) == 3 && a == code / 100)
		snprintf(res->status, sizeof(res->status), "%d.%d.%d", a, b, c);
	else
		snprintf(res->status, sizeof(res->status), "%d.0.0", code / 100);
}

q_route_kind queue_node_classify(queue_runner *r, const char *address, const char *domain,
				 char *node_r, size_t node_n, qc_reply *res)
{
	char canon[256], text[QC_TEXT_MAX];
	Tern__User *u = NULL;
	int rc = store_domain_resolve(r->st, domain, canon, sizeof(canon));

	node_r[0] = '\0';
	if (rc == STORE_ENOTFOUND || rc == STORE_EINVAL)
		return Q_ROUTE_DOMAIN;
	res->cluster = 1;
	if (rc == STORE_OK)
		rc = cluster_user_home(r->st, address, node_r, node_n);
	if (rc == 1)
		return Q_ROUTE_NODE;
	if (rc == 0) {
		rc = store_user_find(r->st, address, &u);
		if (rc == STORE_OK) {
			store_free_record(u);
			return Q_ROUTE_LOCAL;
		}
		if (rc == STORE_ENOTFOUND) {
			snprintf(text, sizeof(text), "550 5.1.1 <%s>: no such user in the domain", address);
			node_answer(res, 550, text);
			return Q_ROUTE_ANSWERED;
		}
	}
	snprintf(text, sizeof(text), "451 4.3.0 <%s>: home node lookup failed (%s)", address,
		 store_strerror(rc));
	node_answer(res, 451, text);
	return Q_ROUTE_ANSWERED;
}

/* Relay to h->node: where it is, its pinned certificate, our login; then the usual walk
 * over its addresses (queue_route.c). */
static void node_relay(q_hop *h)
{
	queue_runner *r = h->job->r;
	const char *self = store_node_name(r->st);
	Tern__Node *n = NULL;
	char text[QC_TEXT_MAX];
	int rc = cluster_node_find(r->st, h->node, &n);

	if (rc != STORE_OK) {
		snprintf(text, sizeof(text), "451 4.4.1 node %s is not known here (%s)", h->node,
			 rc == STORE_ENOTFOUND ? "no node record yet" : store_strerror(rc));
		queue_route_fail(h, 451, text);
		return;
	}
	if (n->address == NULL || n->address[0] == '\0' || n->submission_port == 0 ||
	    n->submission_port > 65535 || n->fingerprint == NULL || strlen(n->fingerprint) != 64) {
		store_free_record(n);
		snprintf(text, sizeof(text), "451 4.4.1 node %s has no submission address or fingerprint",
			 h->node);
		queue_route_fail(h, 451, text);
		return;
	}
	if (self == NULL || cluster_node_login(r->st, self, h->node_user, sizeof(h->node_user),
					       h->node_pass, sizeof(h->node_pass)) < 0) {
		store_free_record(n);
		queue_route_fail(h, 451, "451 4.7.0 this node has no node credentials (not in a distributed domain)");
		return;
	}
	snprintf(h->pin, sizeof(h->pin), "%s", n->fingerprint);
	tern_lower(h->pin);
	char host[256];
	unsigned port = n->submission_port;
	snprintf(host, sizeof(host), "%s", n->address);
	store_free_record(n);
	queue_route_to(h, host, port);
}

static void local_next(q_hop *h);

/* The deliverer's answer for recipient h->local_i. */
static void local_done(const deliver_result *dr, void *arg)
{
	q_hop *h = arg;
	qc_reply *res = &h->job->res[h->idx[h->local_i]];
	int code = atoi(dr->reply);

	if (dr->rc == STORE_OK)
		node_answer(res, 250, dr->reply[0] != '\0' ? dr->reply : "250 2.0.0 Ok");
	else if (code >= 400 && code < 600)
		node_answer(res, code, dr->reply);
	else
		node_answer(res, 451, "451 4.3.0 local delivery failed, try again later");
	h->local_i++;
	local_next(h);
}

/* Deliver the next recipient of a local hop (the deliverer answers on the runner's io,
 * never inside deliver_submit), or end the hop. */
static void local_next(q_hop *h)
{
	q_job *job = h->job;
	queue_runner *r = job->r;
	const Tern__QueueEntry *e = job->e;

	if (h->local_i >= h->n) {
		queue_hop_done(h);
		return;
	}
	const Tern__QueueRcpt *rc = e->rcpts[h->idx[h->local_i]];
	/* Reports stay with the queue: the deliverer is told never to send one. */
	deliver_rcpt_req req = { rc->address, DELIVER_NOTIFY_NEVER, NULL };
	const char *self = store_node_name(r->st);
	deliver_message m = {
		.sender = e->sender != NULL ? e->sender : "",
		.rcpts = &req,
		.nrcpts = 1,
		.data = h->local_msg.data != NULL ? h->local_msg.data : "",
		.len = h->local_msg.len,
		.helo = r->hostname,
		.client_ip = "",
		.protocol = "ESMTP",
		.envid = e->envid != NULL && e->envid[0] != '\0' ? e->envid : NULL,
		.ret = e->ret,
		.service = "Queue",
		.relayed_from = self != NULL && self[0] != '\0' ? self : r->hostname,
	};
	deliver_submit(r->dlv, &m, r->io, local_done, h);
}

/* The home of these recipients is this node now: the entry's message (header prefix and
 * body) goes to the deliverer. */
static void node_local(q_hop *h)
{
	queue_runner *r = h->job->r;
	const Tern__QueueEntry *e = h->job->e;

	if (r->dlv == NULL) {
		queue_route_fail(h, 451, "451 4.3.0 no local delivery in this queue");
		return;
	}
	tbuf_reset(&h->local_msg);
	tbuf_append(&h->local_msg, e->header_prefix.data, e->header_prefix.len);
	if (e->blob.len != 32 || store_blob_read(r->st, e->blob.data, 0, 0, &h->local_msg) != 0) {
		queue_route_fail(h, 451, "451 4.3.0 cannot read the queued message");
		return;
	}
	h->local_i = 0;
	local_next(h);
}

void queue_node_start(q_hop *h)
{
	if (h->local)
		node_local(h);
	else
		node_relay(h);
}
