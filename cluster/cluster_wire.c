/* cluster_wire.c - decoding and validation of control-plane frames. A frame is acted on
 * only after cluster_frame_decode accepted it, so the handlers may rely on every field
 * being present and in range. */
#include <stdio.h>
#include <string.h>
#include "cluster_wire.h"

int cluster_valid_node_name(const char *s)
{
	return s != NULL && strlen(s) <= CLUSTER_NAME_MAX && tern_valid_localpart(s);
}

/* Write the reason and fail. */
static int bad(char *why, size_t whyn, const char *fmt, const char *arg)
{
	snprintf(why, whyn, fmt, arg);
	return -1;
}

static int text_ok(const char *s)
{
	return s != NULL && strlen(s) <= CLUSTER_TEXT_MAX;
}

/* A replicated row: a key 1..CLUSTER_KEY_MAX bytes; puts need no value check (the store
 * decodes the record), deletes carry none. */
static int op_ok(const Tern__ConfigOp *op, int allow_delete)
{
	if (op == NULL || op->key.len == 0 || op->key.len > CLUSTER_KEY_MAX)
		return 0;
	if (op->delete_)
		return allow_delete && op->value.len == 0;
	return 1;
}

static int changes_ok(const Tern__Cluster__Changes *c, char *why, size_t whyn)
{
	if (c->n_records == 0 || c->n_records > CLUSTER_LIST_MAX)
		return bad(why, whyn, "%s", "Changes without records");
	for (size_t i = 0; i < c->n_records; i++) {
		const Tern__ChangeRecord *r = c->records[i];

		if (r->epoch == 0 || r->seq == 0 || r->snapshot || r->n_ops > CLUSTER_LIST_MAX)
			return bad(why, whyn, "%s", "Changes with an invalid record");
		if (i > 0 && (r->epoch != c->records[0]->epoch || r->seq != c->records[i - 1]->seq + 1))
			return bad(why, whyn, "%s", "Changes records not consecutive");
		for (size_t j = 0; j < r->n_ops; j++)
			if (!op_ok(r->ops[j], 1))
				return bad(why, whyn, "%s", "Changes with an invalid row");
	}
	return 0;
}

static int snapshot_ok(const Tern__Cluster__Snapshot *s, char *why, size_t whyn)
{
	if (s->epoch == 0 || s->n_ops > CLUSTER_LIST_MAX)
		return bad(why, whyn, "%s", "Snapshot without epoch");
	for (size_t j = 0; j < s->n_ops; j++)
		if (!op_ok(s->ops[j], 0))
			return bad(why, whyn, "%s", "Snapshot with an invalid row");
	return 0;
}

static int heartbeat_ok(const Tern__Cluster__Heartbeat *h, char *why, size_t whyn)
{
	if (h->n_nodes > CLUSTER_LIST_MAX)
		return bad(why, whyn, "%s", "Heartbeat with too many nodes");
	for (size_t i = 0; i < h->n_nodes; i++)
		if (!cluster_valid_node_name(h->nodes[i]->name) || !text_ok(h->nodes[i]->address) ||
		    h->nodes[i]->last_seen < 0)
			return bad(why, whyn, "%s", "Heartbeat with an invalid node");
	return 0;
}

static int address_ok(const char *s)
{
	return s != NULL && s[0] != '\0' && strlen(s) <= CLUSTER_TEXT_MAX && strchr(s, '@') != NULL;
}

/* Busy periods: bounded count, start < end, a known type. */
static int periods_ok(Tern__BusyPeriod *const *p, size_t n)
{
	if (n > CLUSTER_LIST_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (p[i]->start >= p[i]->end || (int)p[i]->type < TERN__BUSY_PERIOD__TYPE__BUSY ||
		    (int)p[i]->type > TERN__BUSY_PERIOD__TYPE__UNAVAILABLE)
			return 0;
	return 1;
}

static int freebusy_ok(const Tern__Cluster__Envelope *e, char *why, size_t whyn)
{
	switch (e->body_case) {
	case TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_PUSH: {
		const Tern__Cluster__FreeBusyPush *p = e->freebusy_push;

		if (!address_ok(p->address) || p->to <= p->from || p->computed < 0 ||
		    !periods_ok(p->periods, p->n_periods))
			return bad(why, whyn, "%s", "FreeBusyPush without address, range or valid periods");
		return 0;
	}
	case TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_PUSH_OK:
		if (!address_ok(e->freebusy_push_ok->address))
			return bad(why, whyn, "%s", "FreeBusyPushOk without address");
		return 0;
	case TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_QUERY:
		if (!address_ok(e->freebusy_query->address) || e->freebusy_query->to <= e->freebusy_query->from)
			return bad(why, whyn, "%s", "FreeBusyQuery without address or range");
		return 0;
	case TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_REPLY: {
		const Tern__Cluster__FreeBusyReply *r = e->freebusy_reply;

		if (!address_ok(r->address) || (r->known && r->to <= r->from) ||
		    !periods_ok(r->periods, r->n_periods))
			return bad(why, whyn, "%s", "FreeBusyReply without address, range or valid periods");
		return 0;
	}
	case TERN__CLUSTER__ENVELOPE__BODY_BOOK_REQUEST: {
		const Tern__Cluster__BookRequest *b = e->book_request;

		if (!address_ok(b->resource) || !text_ok(b->organizer) || (!b->cancel && !address_ok(b->organizer)) ||
		    b->uid == NULL || b->uid[0] == '\0' ||
		    !text_ok(b->uid) || (!b->cancel && b->ical.len == 0))
			return bad(why, whyn, "%s", "BookRequest without resource, organizer, UID or invitation");
		return 0;
	}
	case TERN__CLUSTER__ENVELOPE__BODY_BOOK_REPLY:
		if ((int)e->book_reply->result < TERN__CLUSTER__BOOK_REPLY__RESULT__FAILED ||
		    (int)e->book_reply->result > TERN__CLUSTER__BOOK_REPLY__RESULT__DECLINED ||
		    !text_ok(e->book_reply->reason))
			return bad(why, whyn, "%s", "BookReply with an unknown result or a long reason");
		return 0;
	default:
		return bad(why, whyn, "%s", "frame without a known body");
	}
}

/* A node name in a reply about the home map: a valid name, or "" (a home of rows written
 * before the domain was distributed). */
static int home_name_ok(const char *s)
{
	return s != NULL && (s[0] == '\0' || cluster_valid_node_name(s));
}

static int home_move_ok(const Tern__Cluster__Envelope *e, char *why, size_t whyn)
{
	if (e->body_case == TERN__CLUSTER__ENVELOPE__BODY_HOME_MOVE) {
		const Tern__Cluster__HomeMove *m = e->home_move;

		if (m->user_id.len != 16 || (int)m->op < TERN__CLUSTER__HOME_MOVE__OP__BEGIN ||
		    (int)m->op > TERN__CLUSTER__HOME_MOVE__OP__ABORT || !cluster_valid_node_name(m->target))
			return bad(why, whyn, "%s", "HomeMove without a 16-byte user id, a known operation or a valid target");
		return 0;
	}
	const Tern__Cluster__HomeMoveOk *ok = e->home_move_ok;

	if (!home_name_ok(ok->source) || !home_name_ok(ok->home) || (int)ok->state < TERN__HOME_STATE__HOME_ACTIVE ||
	    (int)ok->state > TERN__HOME_STATE__HOME_MOVING)
		return bad(why, whyn, "%s", "HomeMoveOk with an invalid node name or home state");
	return 0;
}

/* The per-body rules; env is decoded. */
static int body_ok(const Tern__Cluster__Envelope *e, char *why, size_t whyn)
{
	switch (e->body_case) {
	case TERN__CLUSTER__ENVELOPE__BODY_HELLO:
		if (e->hello->version == 0 || !cluster_valid_node_name(e->hello->node))
			return bad(why, whyn, "%s", "Hello without version or valid node name");
		if (e->hello->epoch == 0 && e->hello->seq != 0)
			return bad(why, whyn, "%s", "Hello with a seq but no epoch");
		return 0;
	case TERN__CLUSTER__ENVELOPE__BODY_HELLO_OK:
		if (e->hello_ok->version == 0 || !cluster_valid_node_name(e->hello_ok->master))
			return bad(why, whyn, "%s", "HelloOk without version or master name");
		return 0;
	case TERN__CLUSTER__ENVELOPE__BODY_ERROR:
		if ((int)e->error->code < TERN__CLUSTER__ERROR__CODE__UNSPECIFIED ||
		    (int)e->error->code > TERN__CLUSTER__ERROR__CODE__INTERNAL)
			return bad(why, whyn, "%s", "Error with an unknown code");
		if (!text_ok(e->error->message))
			return bad(why, whyn, "%s", "Error message too long");
		return 0;
	case TERN__CLUSTER__ENVELOPE__BODY_HEARTBEAT:
		return heartbeat_ok(e->heartbeat, why, whyn);
	case TERN__CLUSTER__ENVELOPE__BODY_CHANGES:
		return changes_ok(e->changes, why, whyn);
	case TERN__CLUSTER__ENVELOPE__BODY_ACK:
		if (e->ack->epoch == 0 && e->ack->seq != 0)
			return bad(why, whyn, "%s", "Ack with a seq but no epoch");
		return 0;
	case TERN__CLUSTER__ENVELOPE__BODY_SNAPSHOT:
		return snapshot_ok(e->snapshot, why, whyn);
	case TERN__CLUSTER__ENVELOPE__BODY_LEAVE:
		if (!cluster_valid_node_name(e->leave->node))
			return bad(why, whyn, "%s", "Leave without a valid node name");
		return 0;
	case TERN__CLUSTER__ENVELOPE__BODY_MAILBOX_USAGE_REQUEST:
		if (e->mailbox_usage_request->user_id.len != 16)
			return bad(why, whyn, "%s", "MailboxUsageRequest without a 16-byte user id");
		return 0;
	case TERN__CLUSTER__ENVELOPE__BODY_MAILBOX_USAGE_REPLY:
		if (e->mailbox_usage_reply->user_id.len != 16)
			return bad(why, whyn, "%s", "MailboxUsageReply without a 16-byte user id");
		return 0;
	case TERN__CLUSTER__ENVELOPE__BODY_SNAPSHOT_REQUEST:
	case TERN__CLUSTER__ENVELOPE__BODY_LEAVE_OK:
		return 0;
	case TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_PUSH:
	case TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_PUSH_OK:
	case TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_QUERY:
	case TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_REPLY:
	case TERN__CLUSTER__ENVELOPE__BODY_BOOK_REQUEST:
	case TERN__CLUSTER__ENVELOPE__BODY_BOOK_REPLY:
		return freebusy_ok(e, why, whyn);
	case TERN__CLUSTER__ENVELOPE__BODY_HOME_MOVE:
	case TERN__CLUSTER__ENVELOPE__BODY_HOME_MOVE_OK:
		return home_move_ok(e, why, whyn);
	default:
		return bad(why, whyn, "%s", "frame without a known body");
	}
}

/* Requests and replies need an id; errors and heartbeats may go without. */
static int needs_id(Tern__Cluster__Envelope__BodyCase c)
{
	return c != TERN__CLUSTER__ENVELOPE__BODY_ERROR && c != TERN__CLUSTER__ENVELOPE__BODY_HEARTBEAT;
}

int cluster_frame_decode(const void *data, size_t n, size_t max_frame,
			 Tern__Cluster__Envelope **env_r, char *why, size_t whyn)
{
	char num[32];

	*env_r = NULL;
	if (n == 0)
		return bad(why, whyn, "%s", "empty frame");
	if (n > max_frame) {
		snprintf(num, sizeof(num), "%zu", n);
		return bad(why, whyn, "frame of %s bytes exceeds [cluster] max_frame", num);
	}
	Tern__Cluster__Envelope *e = tern__cluster__envelope__unpack(NULL, n, data);
	if (e == NULL)
		return bad(why, whyn, "%s", "undecodable frame");
	if (body_ok(e, why, whyn) < 0) {
		tern__cluster__envelope__free_unpacked(e, NULL);
		return -1;
	}
	if (needs_id(e->body_case) && e->id == 0) {
		tern__cluster__envelope__free_unpacked(e, NULL);
		return bad(why, whyn, "%s", "request or reply without an id");
	}
	*env_r = e;
	return 0;
}

void cluster_frame_free(Tern__Cluster__Envelope **env)
{
	if (*env != NULL)
		tern__cluster__envelope__free_unpacked(*env, NULL);
	*env = NULL;
}

void cluster_frame_encode(const Tern__Cluster__Envelope *env, tbuf *out)
{
	size_t n = tern__cluster__envelope__get_packed_size(env);

	tbuf_reset(out);
	tbuf_reserve(out, n + 1);
	tern__cluster__envelope__pack(env, (uint8_t *)out->data);
	out->len = n;
	out->data[n] = '\0';
}
