/* smtp_txn.c - the mail transaction: MAIL (size, rate and sender-domain checks), RCPT
 * (relay control, recipient resolution, harvest protection) and DATA (the hand-off to
 * the deliverer; 250 only once the message is durable). A cluster peer (a node of the
 * distributed domain relaying mail of the domain) gives final recipients: users of the
 * domain homed here, or elsewhere when the home moved (the mail is queued again). */
#include <stdlib.h>
#include <string.h>
#include "smtp_int.h"

/* ---- MAIL ---- */

static void mail_accept(smtp_session *s, const smtp_cmd *cmd)
{
	snprintf(s->sender, sizeof(s->sender), "%s", cmd->path.null ? "" : cmd->path.addr);
	s->mail_params = cmd->params;
	s->nrcpts = 0;
	smtp_enter_state(s, SMTP_ST_MAIL);
	smtp_reply(s, "250 2.1.0 Ok");
}

typedef struct dns_check {
	smtp_session *s;
	smtp_cmd cmd;
	int pending;           /* queries outstanding */
	int found, tempfail;
} dns_check;

/* Both answers (MX, then A/AAAA) are in: decide. */
static void dns_check_done(dns_check *d)
{
	smtp_session *s = d->s;

	if (!s->closed) {
		if (d->found) {
			mail_accept(s, &d->cmd);
		} else if (d->tempfail) {
			smtp_reply(s, "450 4.1.8 <%s>: Sender address rejected: Domain not found", d->cmd.path.addr);
		} else {
			smtp_reply(s, "550 5.1.8 <%s>: Sender address rejected: Domain not found", d->cmd.path.addr);
			smtp_server_count(s->srv, &s->srv->stats.rejected);
		}
	}
	free(d);
	smtp_async_done(s);
}

static void dns_note(dns_check *d, tern_dns_status st, size_t n)
{
	if (st == TERN_DNS_OK && n > 0)
		d->found = 1;
	else if (st == TERN_DNS_TEMPFAIL)
		d->tempfail = 1;
	if (--d->pending == 0)
		dns_check_done(d);
}

static void dns_mx_cb(tern_dns_status st, const tern_mx *mx, size_t n, void *arg)
{
	(void)mx;
	dns_note(arg, st, n);
}

static void dns_addr_cb(tern_dns_status st, const struct sockaddr_storage *a, size_t n, void *arg)
{
	(void)a;
	dns_note(arg, st, n);
}

/* "Block if sender's mail domain was not found in DNS": an MX or an address will do. */
static int sender_domain_check(smtp_session *s, const smtp_cmd *cmd)
{
	const smtp_env *env = &s->srv->env;
	tern_dns *dns = env->dns_for_io ? env->dns_for_io(s->io, env->dns_ctx) : NULL;

	if (dns == NULL || cmd->path.domain[0] == '[')
		return 0;
	dns_check *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return 0;
	d->s = s;
	d->cmd = *cmd;
	d->pending = 2;
	smtp_async_begin(s);
	tern_dns_mx(dns, d->cmd.path.domain, dns_mx_cb, d);
	tern_dns_addr(dns, d->cmd.path.domain, dns_addr_cb, d);
	return 1;
}

int smtp_cmd_mail(smtp_session *s, smtp_cmd *cmd)
{
	const tern_conf *conf = s->srv->env.conf;
	uint64_t max = (uint64_t)conf->smtpd_max_message_kb * 1024;

	if (smtp_ip_limits(s) && conf->smtpd_max_msgs_per_hour_per_ip > 0 &&
	    smtp_policy_msgs_last_hour(s->srv->policy, s->ip, tern_now()) >=
	    (uint64_t)conf->smtpd_max_msgs_per_hour_per_ip) {
		smtp_reply(s, "450 4.7.0 Too many messages from your address, try again later");
		smtp_server_count(s->srv, &s->srv->stats.rejected);
		return 0;
	}
	if (cmd->params.has_size && max > 0 && cmd->params.size > max) {
		smtp_reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
		smtp_server_count(s->srv, &s->srv->stats.rejected);
		return 0;
	}
	if (!cmd->path.null && (cmd->path.relay_form || cmd->path.local[0] == '\0')) {
		smtp_reply(s, "501 5.1.7 Bad sender address syntax");
		return -1;
	}
	if (conf->smtpd_block_unknown_sender_domain && !cmd->path.null && !s->exempt &&
	    s->auth_user[0] == '\0' && sender_domain_check(s, cmd))
		return 0;
	mail_accept(s, cmd);
	return 0;
}

/* ---- RCPT ---- */

/* "<Postmaster>" is the postmaster of the primary domain. */
static int postmaster_address(store *st, char *out, size_t n)
{
	Tern__Domain **list = NULL;
	size_t nd = 0;
	int rc = -1;

	if (store_domain_list(st, &list, &nd) != STORE_OK)
		return -1;
	for (size_t i = 0; i < nd; i++)
		if (list[i]->primary) {
			int w = snprintf(out, n, "postmaster@%s", list[i]->name);
			rc = w < 0 || (size_t)w >= n ? -1 : 0;
			tern_lower(out);
		}
	store_free_list((void **)list, nd);
	return rc;
}

static void rcpt_add(smtp_session *s, const char *addr, const smtp_params *pr)
{
	if (s->nrcpts == s->rcpt_cap) {
		size_t cap = s->rcpt_cap ? s->rcpt_cap * 2 : 8;
		smtp_rcpt *r = realloc(s->rcpts, cap * sizeof(*r));
		if (r == NULL)
			abort();
		s->rcpts = r;
		s->rcpt_cap = cap;
	}
	smtp_rcpt *r = &s->rcpts[s->nrcpts++];
	snprintf(r->addr, sizeof(r->addr), "%s", addr);
	r->notify = pr->notify;
	r->orcpt = pr->orcpt[0] ? strdup(pr->orcpt) : NULL;
}

/* An unknown local recipient counts toward directory-harvest protection. */
static void rcpt_unknown(smtp_session *s)
{
	const tern_conf *conf = s->srv->env.conf;

	if (!smtp_ip_limits(s) || conf->smtpd_max_unknown_rcpts <= 0)
		return;
	if (smtp_policy_unknown_rcpt(s->srv->policy, s->ip, (unsigned)conf->smtpd_max_unknown_rcpts,
				     conf->smtpd_harvest_block, tern_now()))
		tlog(TLOG_SECURITY, "Directory harvest attack from %s detected", s->ip);
}

/* A recipient relayed by a cluster peer: a final user of the domain, no relay control. */
static int rcpt_from_peer(smtp_session *s, smtp_cmd *cmd, const char *addr, uint64_t size)
{
	char reply[256];
	int rc = deliver_check_relayed_rcpt(s->srv->env.deliverer, addr, size, reply, sizeof(reply));

	if (rc != 0) {
		smtp_reply(s, "%s", reply);
		smtp_server_count(s->srv, &s->srv->stats.rejected);
		return reply[0] == '5' ? -1 : 0;
	}
	rcpt_add(s, addr, &cmd->params);
	smtp_enter_state(s, SMTP_ST_RCPT);
	smtp_reply(s, "250 2.1.5 Ok");
	return 0;
}

int smtp_cmd_rcpt(smtp_session *s, smtp_cmd *cmd)
{
	const smtp_env *env = &s->srv->env;
	char addr[SMTP_ADDR_MAX + 1], reply[256];
	int local = 0;

	if (s->nrcpts >= (size_t)env->conf->smtpd_max_rcpts) {
		smtp_reply(s, "452 4.5.3 Too many recipients");
		return 0;
	}
	/* a local account never has such an address: these are relay probes */
	if (cmd->path.source_route || cmd->path.relay_form) {
		smtp_reply(s, "550 5.7.1 <%s>: Relay access denied", cmd->path.addr);
		smtp_server_count(s->srv, &s->srv->stats.relay_refused);
		return -1;
	}
	if (cmd->path.postmaster) {
		if (postmaster_address(env->st, addr, sizeof(addr)) < 0) {
			smtp_reply(s, "550 5.1.1 <%s>: Recipient address rejected", cmd->path.addr);
			return -1;
		}
	} else {
		snprintf(addr, sizeof(addr), "%s", cmd->path.addr);
	}
	uint64_t size = s->mail_params.has_size ? s->mail_params.size : 0;
	if (s->peer_node[0] != '\0')
		return rcpt_from_peer(s, cmd, addr, size);
	int rc = deliver_check_rcpt(env->deliverer, addr, size, &local, reply, sizeof(reply));
	if (local) {
		if (rc != 0) {
			smtp_reply(s, "%s", reply);
			smtp_server_count(s->srv, &s->srv->stats.rejected);
			if (strncmp(reply, "550 5.1.1", 9) == 0)
				rcpt_unknown(s);
			return reply[0] == '5' ? -1 : 0;
		}
	} else {
		smtp_relay_facts f = {
			.in_relay_group = s->in_relay_group,
			.authenticated = s->auth_user[0] != '\0',
			.auth_failed = s->auth_failed,
			.pop3_recent = env->conf->smtpd_relay_pop3 &&
				smtp_policy_pop3_recent(s->srv->policy, s->ip, env->conf->smtpd_pop3_relay_window,
							tern_now()),
		};
		if (!smtp_policy_relay_allowed(env->conf, &f)) {
			smtp_reply(s, "554 5.7.1 <%s>: Relay access denied", addr);
			tlog(TLOG_SECURITY, "Relay attempt from IP address %s, mail from <%s> to <%s> rejected",
			     s->ip, s->sender, addr);
			smtp_server_count(s->srv, &s->srv->stats.relay_refused);
			return -1;
		}
		if (rc != 0 && reply[0] != '\0') {
			smtp_reply(s, "%s", reply);
			return reply[0] == '5' ? -1 : 0;
		}
	}
	rcpt_add(s, addr, &cmd->params);
	smtp_enter_state(s, SMTP_ST_RCPT);
	smtp_reply(s, "250 2.1.5 Ok");
	return 0;
}

/* ---- DATA ---- */

int smtp_cmd_data(smtp_session *s, smtp_cmd *cmd)
{
	const tern_conf *conf = s->srv->env.conf;

	if (cmd->arg[0] != '\0') {
		smtp_reply(s, "501 5.5.4 Syntax: DATA");
		return -1;
	}
	smtp_data_clear(&s->data);
	smtp_data_init(&s->data, (size_t)conf->smtpd_data_line_max,
		       (uint64_t)conf->smtpd_max_message_kb * 1024, (unsigned)conf->smtpd_max_received);
	smtp_enter_state(s, SMTP_ST_DATA);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	return 0;
}

/* RFC 3848 names for the Received header's "with". */
static const char *received_protocol(const smtp_session *s)
{
	static const char *const names[2][2][2] = {
		{ { "SMTP", "SMTP" }, { "SMTP", "SMTP" } },
		{ { "ESMTP", "ESMTPA" }, { "ESMTPS", "ESMTPSA" } },
	};
	return names[s->esmtp][s->tls][s->auth_user[0] != '\0'];
}

/* The deliverer is done: the message is durable (or failed); answer and go on. */
static void data_delivered(const deliver_result *r, void *arg)
{
	smtp_session *s = arg;

	if (!s->closed) {
		if (r->rc == STORE_OK) {
			smtp_reply(s, "250 2.0.0 Ok: queued as %s", r->queue_id);
			if (smtp_ip_limits(s))
				smtp_policy_msg_accepted(s->srv->policy, s->ip, tern_now());
			smtp_server_count(s->srv, &s->srv->stats.received);
		} else if (r->reply[0] != '\0') {
			smtp_reply(s, "%s", r->reply);
			smtp_server_count(s->srv, &s->srv->stats.rejected);
		} else if (r->rc == STORE_EDISK) {
			smtp_reply(s, "452 4.3.1 Insufficient system storage");
		} else {
			smtp_reply(s, "451 4.3.0 Error: queue file write error");
		}
		smtp_txn_reset(s);
	}
	smtp_async_done(s);
}

void smtp_data_end(smtp_session *s)
{
	const char *verdict = smtp_data_verdict(&s->data);

	if (verdict != NULL) {
		smtp_reply(s, "%s", verdict);
		smtp_server_count(s->srv, &s->srv->stats.rejected);
		smtp_txn_reset(s);
		return;
	}
	deliver_rcpt_req *reqs = calloc(s->nrcpts, sizeof(*reqs));
	if (reqs == NULL)
		abort();
	for (size_t i = 0; i < s->nrcpts; i++) {
		reqs[i].address = s->rcpts[i].addr;
		reqs[i].notify = s->rcpts[i].notify;
		reqs[i].orcpt = s->rcpts[i].orcpt;
	}
	deliver_message m = {
		.sender = s->sender,
		.rcpts = reqs,
		.nrcpts = s->nrcpts,
		.data = s->data.msg.data ? s->data.msg.data : "",
		.len = s->data.msg.len,
		.helo = s->helo,
		.client_ip = s->ip,
		.client_host = NULL,
		/* a peer node is no sender account: its own mail.log field says who relayed */
		.auth_user = s->auth_user[0] && !s->peer_node[0] ? s->auth_user : NULL,
		.protocol = received_protocol(s),
		.tls_info = s->conn ? tern_conn_tls_info(s->conn) : NULL,
		.envid = s->mail_params.envid[0] ? s->mail_params.envid : NULL,
		.ret = s->mail_params.ret,
		.service = "SMTP",
		.relayed_from = s->peer_node[0] ? s->peer_node : NULL,
	};
	/* READY before the step: the reply comes in the callback, which may run at once */
	smtp_enter_state(s, SMTP_ST_READY);
	smtp_async_begin(s);
	deliver_submit(s->srv->env.deliverer, &m, s->io, data_delivered, s);
	free(reqs);
}
