/* cluster_move.c - a migration's changes of the home-node map (DESIGN.md §6): BEGIN,
 * COMMIT (the commit point) and ABORT, decided by the master on its service thread one
 * at a time with every other decision there, and written with store_user_set_home_state
 * (replicated). A slave forwards the request (HomeMove) and waits for HomeMoveOk or an
 * Error; the master's own requests queue for the same thread. Only the target of a move
 * may ask for it over the control plane. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cluster_private.h"

typedef struct move_result {
	char source[64];              /* the home before the request */
	char home[64];                /* the home after it */
	Tern__HomeState state;
} move_result;

/* Items are compared whole, blanks around them ignored. */
int cl_fault_has(const tern_conf *conf, const char *item)
{
	const char *s = conf->migrate_fault;
	size_t len = strlen(item);

	while (s != NULL && *s != '\0') {
		const char *end = strchr(s, ',');
		const char *e = end != NULL ? end : s + strlen(s);

		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		const char *t = e;
		while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - s) == len && strncmp(s, item, len) == 0)
			return 1;
		s = end != NULL ? end + 1 : NULL;
	}
	return 0;
}

/* For log lines. */
static const char *op_name(int op)
{
	return op == CLUSTER_MOVE_BEGIN ? "BEGIN" : op == CLUSTER_MOVE_COMMIT ? "COMMIT" : "ABORT";
}

/* Write the user's home-map entry; 0, -1 (no such user) or -2 (store failure). */
static int write_home(cluster *cl, const uint8_t user[16], const char *home, Tern__HomeState state,
		      const char *target, tbuf *why)
{
	store_sync_result res;
	int rc = store_user_set_home_state(cl->st, user, home, state, target, STORE_SYNC, &res);

	if (rc == STORE_OK)
		return 0;
	tbuf_appendf(why, "cannot write the home of the user: %s", res.error);
	return rc == STORE_ENOTFOUND ? -1 : -2;
}

/* The rules of cluster_home_move (cluster.h) against the user's present entry; writes
 * what changes. 0 done, -1 refused, -2 not decided (why says why). admin_mu held. */
static int decide_locked(cluster *cl, const Tern__User *u, int op, const char *target, move_result *mr,
			 tbuf *why)
{
	char addr[320], cur[64];
	const char *mt = u->home_target != NULL ? u->home_target : "";
	int moving = u->home_state == TERN__HOME_STATE__HOME_MOVING;
	int to_target = moving && strcasecmp(mt, target) == 0;
	int rc;

	snprintf(addr, sizeof(addr), "%s@%s", u->name, u->domain);
	store_home_node(cl->st, u->home != NULL ? u->home : "", cur, sizeof(cur));
	snprintf(mr->source, sizeof(mr->source), "%s", cur);
	snprintf(mr->home, sizeof(mr->home), "%s", cur);
	mr->state = u->home_state;
	if (moving && !to_target) {
		tbuf_appendf(why, "a migration of %s to %s is running", addr, mt);
		return -1;
	}
	if (u->home_state == TERN__HOME_STATE__HOME_RESERVED) {
		tbuf_appendf(why, "%s is being created; it cannot move now", addr);
		return -1;
	}
	switch (op) {
	case CLUSTER_MOVE_BEGIN:
		if (to_target)
			return 0;     /* a resume */
		if (strcasecmp(cur, target) == 0) {
			tbuf_appendf(why, "%s already lives on node %s", addr, target);
			return -1;
		}
		if (!cl_node_registered(cl, target)) {
			tbuf_appendf(why, "no node '%s' in this domain", target);
			return -1;
		}
		if (!cl_node_registered(cl, cur)) {
			tbuf_appendf(why, "the home of %s, '%s', is not a registered node", addr, cur);
			return -1;
		}
		if ((rc = write_home(cl, u->id.data, cur, TERN__HOME_STATE__HOME_MOVING, target, why)) < 0)
			return rc;
		mr->state = TERN__HOME_STATE__HOME_MOVING;
		tlog(TLOG_OPERATIONS, "cluster: %s is moving from node %s to node %s", addr, cur, target);
		return 0;
	case CLUSTER_MOVE_COMMIT:
		if (!moving) {
			if (strcasecmp(cur, target) == 0)
				return 0;     /* a replay */
			tbuf_appendf(why, "no migration of %s to %s is running", addr, target);
			return -1;
		}
		if (!cl_node_registered(cl, target)) {
			tbuf_appendf(why, "no node '%s' in this domain", target);
			return -1;
		}
		if ((rc = write_home(cl, u->id.data, target, TERN__HOME_STATE__HOME_ACTIVE, "", why)) < 0)
			return rc;
		snprintf(mr->home, sizeof(mr->home), "%s", target);
		mr->state = TERN__HOME_STATE__HOME_ACTIVE;
		tlog(TLOG_OPERATIONS, "cluster: %s moved from node %s to node %s (committed)", addr, cur, target);
		if (cl_fault_has(cl->conf, "crash:commit")) {
			tlog(TLOG_WARNING, "cluster: [migrate] fault crash:commit: the master dies now");
			raise(SIGKILL);
		}
		return 0;
	default:
		if (!moving) {
			if (strcasecmp(cur, target) != 0)
				return 0;     /* aborted already (or never begun) */
			tbuf_appendf(why, "the migration of %s to %s was committed; it cannot be aborted", addr,
				 target);
			return -1;
		}
		if ((rc = write_home(cl, u->id.data, cur, TERN__HOME_STATE__HOME_ACTIVE, "", why)) < 0)
			return rc;
		mr->state = TERN__HOME_STATE__HOME_ACTIVE;
		tlog(TLOG_OPERATIONS, "cluster: the migration of %s from node %s to node %s was aborted", addr, cur,
		     target);
		return 0;
	}
}

/* One decision on the service thread (master). */
static int decide(cluster *cl, const uint8_t user[16], int op, const char *target, move_result *mr, tbuf *why)
{
	Tern__User *u = NULL;

	memset(mr, 0, sizeof(*mr));
	if (cluster_get_role(cl) != CLUSTER_MASTER) {
		tbuf_append_str(why, "this node is no longer the master");
		return -1;
	}
	/* serialised with `user set --home`, which writes the same record */
	pthread_mutex_lock(&cl->admin_mu);
	int rc = store_user_get_by_id(cl->st, user, &u);
	if (rc == STORE_OK && u->id.len == 16)
		rc = decide_locked(cl, u, op, target, mr, why);
	else if (rc == STORE_ENOTFOUND || rc == STORE_OK)
		rc = (tbuf_append_str(why, "no such user"), -1);
	else
		rc = (tbuf_append_str(why, "cannot read the user record"), -2);
	pthread_mutex_unlock(&cl->admin_mu);
	store_free_record(u);
	if (rc == -1)
		tlog(TLOG_OPERATIONS, "cluster: home move %s to node %s refused: %s", op_name(op), target, tbuf_cstr(why));
	return rc;
}

/* Decide, then wake the local caller or queue the slave's answer (REFUSED = -1,
 * INTERNAL = -2: not decided, try again). */
void cl_move_run(cluster *cl, cl_job *j)
{
	move_result mr;
	tbuf why = TBUF_INIT;
	char text[CLUSTER_TEXT_MAX + 1];
	int rc = decide(cl, j->user_id, j->move_op, j->target, &mr, &why);

	snprintf(text, sizeof(text), "%s", tbuf_cstr(&why));
	tbuf_free(&why);

	if (j->local != NULL) {
		pthread_mutex_lock(&cl->svc_mu);
		j->local->rc = rc;
		snprintf(j->local->source, sizeof(j->local->source), "%s", mr.source);
		snprintf(j->local->error, sizeof(j->local->error), "%s", text);
		j->local->done = 1;
		j->local = NULL;
		pthread_cond_broadcast(&cl->svc_done_cv);
		pthread_mutex_unlock(&cl->svc_mu);
		return;
	}
	Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__HomeMoveOk ok = TERN__CLUSTER__HOME_MOVE_OK__INIT;
	Tern__Cluster__Error er = TERN__CLUSTER__ERROR__INIT;

	e.id = j->id;
	if (rc == 0) {
		ok.source = mr.source;
		ok.home = mr.home;
		ok.state = mr.state;
		e.body_case = TERN__CLUSTER__ENVELOPE__BODY_HOME_MOVE_OK;
		e.home_move_ok = &ok;
	} else {
		er.code = rc == -1 ? TERN__CLUSTER__ERROR__CODE__REFUSED : TERN__CLUSTER__ERROR__CODE__INTERNAL;
		er.message = text;
		e.body_case = TERN__CLUSTER__ENVELOPE__BODY_ERROR;
		e.error = &er;
	}
	cl_svc_reply(cl, j->node, &e);
}

/* 1 when node is the user's current home (the source of a move). */
static int is_home(cluster *cl, const uint8_t user[16], const char *node)
{
	Tern__User *u = NULL;
	char home[CLUSTER_NAME_MAX + 1];
	int yes = 0;

	if (store_user_get_by_id(cl->st, user, &u) == STORE_OK) {
		store_home_node(cl->st, u->home, home, sizeof(home));
		yes = strcasecmp(home, node) == 0;
	}
	store_free_record(u);
	return yes;
}

/* A slave asks for moves to itself, or (the source) for the ABORT of a move away from it
 * that its target gave up; the rest waits for the service thread. */
void cl_master_move(cluster *cl, const cl_peer *p, const Tern__Cluster__Envelope *e)
{
	Tern__Cluster__Envelope r = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__Error er = TERN__CLUSTER__ERROR__INIT;
	const Tern__Cluster__HomeMove *hm = e->home_move;
	char msg[200];

	if (strcasecmp(p->name, hm->target) != 0 &&
	    !(hm->op == TERN__CLUSTER__HOME_MOVE__OP__ABORT && is_home(cl, hm->user_id.data, p->name))) {
		snprintf(msg, sizeof(msg), "node %s cannot move a mailbox to node %s (the target asks)", p->name,
			 e->home_move->target);
		er.code = TERN__CLUSTER__ERROR__CODE__REFUSED;
	} else if (cl_svc_submit(cl, p->name, e) < 0) {
		snprintf(msg, sizeof(msg), "the master is too busy; try again later");
		er.code = TERN__CLUSTER__ERROR__CODE__INTERNAL;
	} else {
		return;
	}
	er.message = msg;
	r.id = e->id;
	r.body_case = TERN__CLUSTER__ENVELOPE__BODY_ERROR;
	r.error = &er;
	cl_send(cl, cl->router, p->rid, p->rid_len, &r);
}

/* The frame points into r (no copies): send it before r completes. */
void cl_move_frame(const cl_request *r, Tern__Cluster__Envelope *e, Tern__Cluster__HomeMove *m)
{
	m->op = (Tern__Cluster__HomeMove__Op)r->move_op;
	m->user_id.data = (uint8_t *)r->user_id;
	m->user_id.len = 16;
	m->target = (char *)r->target;
	e->body_case = TERN__CLUSTER__ENVELOPE__BODY_HOME_MOVE;
	e->home_move = m;
}

/* On the master: queue the decision for the service thread and wait for it. */
static int move_local(cluster *cl, const uint8_t user[16], int op, const char *target, char *source_r,
		      size_t sn, tbuf *err)
{
	cl_move_wait w;
	cl_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		abort();
	memset(&w, 0, sizeof(w));
	j->kind = CL_JOB_MOVE;
	memcpy(j->user_id, user, 16);
	j->move_op = op;
	snprintf(j->target, sizeof(j->target), "%s", target);
	j->local = &w;
	if (cl_svc_queue(cl, j) < 0) {
		free(j);
		tbuf_append_str(err, "the master takes no decisions now (stopping or too busy); try again later");
		return -2;
	}
	pthread_mutex_lock(&cl->svc_mu);
	while (!w.done)
		pthread_cond_wait(&cl->svc_done_cv, &cl->svc_mu);
	pthread_mutex_unlock(&cl->svc_mu);
	if (w.rc < 0)
		tbuf_append_str(err, w.error);
	else if (source_r != NULL && sn > 0)
		snprintf(source_r, sn, "%s", w.source);
	return w.rc;
}

/* See cluster.h: the master decides on its service thread; a slave asks it. */
int cluster_home_move(cluster *cl, const uint8_t user[16], cluster_move_op op, const char *target,
		      char *source_r, size_t sn, tbuf *err)
{
	if (source_r != NULL && sn > 0)
		source_r[0] = '\0';
	if (user == NULL || (int)op < CLUSTER_MOVE_BEGIN || (int)op > CLUSTER_MOVE_ABORT ||
	    !cluster_valid_node_name(target)) {
		tbuf_append_str(err, "invalid home move (user id, operation or target node)");
		return -1;
	}
	switch (cluster_get_role(cl)) {
	case CLUSTER_STANDALONE:
		tbuf_append_str(err, "this node is not part of a distributed domain");
		return -1;
	case CLUSTER_MASTER:
		return move_local(cl, user, (int)op, target, source_r, sn, err);
	default:
		break;
	}
	cl_request r;

	memset(&r, 0, sizeof(r));
	r.kind = CL_REQ_HOME_MOVE;
	memcpy(r.user_id, user, 16);
	r.move_op = (int)op;
	snprintf(r.target, sizeof(r.target), "%s", target);
	int rc = cl_request_run(cl, &r);
	if (rc < 0) {
		tbuf_append_str(err, r.error);
		return r.done ? rc : -2;     /* never queued: the cluster is stopping */
	}
	if (source_r != NULL && sn > 0)
		snprintf(source_r, sn, "%s", r.source);
	return 0;
}
