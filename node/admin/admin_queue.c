/* admin_queue.c - the outgoing queue for administrators (guide ch. 23: queue view, "Try
 * to Send Now", "Remove Messages", "Run Queue") and the mail counters of `ternctl stats`. */
#include <stdlib.h>
#include <string.h>
#include "admin_private.h"

/* The JSON of one queue entry: ids, envelope, pending recipients and their state. */
static json_t *entry_json(const Tern__QueueEntry *e)
{
	char uuid[37] = "", qid[18] = "";
	if (e->id.len == 16)
		tern_uuid_str(e->id.data, uuid);
	queue_id_text(e->id.data, e->id.len, qid);
	json_t *to = json_array(), *rcpts = json_array();
	const char *last = "";
	for (size_t i = 0; i < e->n_rcpts; i++) {
		const Tern__QueueRcpt *q = e->rcpts[i];
		const char *state = q->state == TERN__QUEUE_RCPT__STATE__DELIVERED ? "delivered"
				    : q->state == TERN__QUEUE_RCPT__STATE__FAILED ? "failed" : "pending";
		if (q->state == TERN__QUEUE_RCPT__STATE__PENDING) {
			json_array_append_new(to, json_string(q->address));
			if (q->last_reply && q->last_reply[0])
				last = q->last_reply;
		}
		json_array_append_new(rcpts, json_pack("{s:s, s:s, s:s, s:I}", "address", q->address,
						       "state", state, "last_reply",
						       q->last_reply ? q->last_reply : "", "attempts",
						       (json_int_t)q->attempts));
	}
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:s, s:s}", "id", uuid,
			 "queue_id", qid, "from", e->sender ? e->sender : "", "to", to, "recipients", rcpts,
			 "size", (json_int_t)e->size, "created", (json_int_t)e->created, "next_try",
			 (json_int_t)e->next_try, "attempts", (json_int_t)e->attempts, "status",
			 e->attempts == 0 ? "queued" : "deferred", "last_reply", last);
}

/* GET /api/v1/queue: every entry, oldest first. */
void adm_queue_list(admin_req *r)
{
	Tern__QueueEntry **list = NULL;
	size_t n = 0;
	int rc = queue_list(r->a->env.queue, &list, &n);
	if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, entry_json(list[i]));
	store_free_list((void **)list, n);
	admin_reply_json(r, 200, arr);
}

/* Resolve the path's id (a UUID or the mail.log Queue-ID) to the entry's 16 bytes.
 * Replies and returns -1 when there is no such entry. */
static int path_entry(admin_req *r, uint8_t id[16])
{
	if (tern_uuid_parse(r->arg, id) == 0)
		return 0;
	Tern__QueueEntry **list = NULL;
	size_t n = 0;
	int rc = queue_list(r->a->env.queue, &list, &n), found = 0;
	for (size_t i = 0; rc == STORE_OK && i < n && !found; i++) {
		char qid[18];
		queue_id_text(list[i]->id.data, list[i]->id.len, qid);
		if (strcasecmp(qid, r->arg) == 0 && list[i]->id.len == 16) {
			memcpy(id, list[i]->id.data, 16);
			found = 1;
		}
	}
	store_free_list((void **)list, n);
	if (!found) {
		admin_error(r, 404, "no queued message %s", r->arg);
		return -1;
	}
	return 0;
}

/* The answer of a retry or remove once the runner has acted. */
static void queue_done(int rc, unsigned n, void *arg)
{
	admin_req *r = arg;
	if (rc != STORE_OK) {
		admin_store_error(r, rc, rc == STORE_ENOTFOUND ? "no such queued message" : NULL);
		return;
	}
	tlog(TLOG_CONFIG, "%s - %s", r->actor, tbuf_cstr(&r->log));
	admin_reply_json(r, 200, json_pack("{s:I}", "count", (json_int_t)n));
}

static void queue_act(admin_req *r, int remove, int all)
{
	uint8_t id[16];
	if (!all && path_entry(r, id) < 0)
		return;
	const char *what = all ? "all" : r->arg;
	if (remove) {
		admin_config_log(r, "Queue - remove messages: %s", what);
		queue_remove(r->a->env.queue, all ? NULL : id, r->io, queue_done, r);
	} else {
		admin_config_log(r, "Queue - try to send now: %s", what);
		queue_retry(r->a->env.queue, all ? NULL : id, r->io, queue_done, r);
	}
}

void adm_queue_retry(admin_req *r) { queue_act(r, 0, 0); }
void adm_queue_retry_all(admin_req *r) { queue_act(r, 0, 1); }
void adm_queue_remove(admin_req *r) { queue_act(r, 1, 0); }
void adm_queue_remove_all(admin_req *r) { queue_act(r, 1, 1); }

/* POST /api/v1/queue/run ("Run Queue"): every queued message is tried now. */
void adm_queue_run(admin_req *r)
{
	admin_config_log(r, "Queue - run");
	queue_retry(r->a->env.queue, NULL, r->io, queue_done, r);
}

/* The "mail" object of GET /api/v1/stats. */
json_t *admin_mail_stats(const admin_env *env)
{
	smtp_stats ss;
	deliver_stats ds;
	queue_stats qs;
	memset(&ss, 0, sizeof(ss));
	memset(&ds, 0, sizeof(ds));
	memset(&qs, 0, sizeof(qs));
	if (env->smtp)
		smtp_server_stats(env->smtp, &ss);
	if (env->dlv)
		deliverer_stats(env->dlv, &ds);
	if (env->queue)
		queue_runner_stats(env->queue, &qs);
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			 "received", (json_int_t)ds.received, "delivered", (json_int_t)ds.delivered_local,
			 "relayed", (json_int_t)qs.delivered, "queued", (json_int_t)ds.queued_remote,
			 "rejected", (json_int_t)(ss.rejected + ss.relay_refused),
			 "relay_refused", (json_int_t)ss.relay_refused, "auth_failed",
			 (json_int_t)ss.auth_failed, "sessions", (json_int_t)ss.sessions, "deferred",
			 (json_int_t)qs.deferred, "failed", (json_int_t)qs.failed, "bounced",
			 (json_int_t)qs.bounced, "over_quota", (json_int_t)ds.over_quota, "dsn_sent",
			 (json_int_t)ds.dsn_sent, "in_flight", (json_int_t)qs.in_flight);
}
