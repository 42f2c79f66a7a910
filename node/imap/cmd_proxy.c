/* cmd_proxy.c - IMAP in a distributed domain (DESIGN.md §5).
 *
 * Front node: a user homed on another node has been authenticated here (lockout, logs);
 * instead of opening a local mailbox the session logs in at the home node through
 * node/proxy and, once that succeeded, answers the client's login command with the home
 * node's capabilities and splices the bytes (IMAP_ST_PROXY).
 *
 * Home node: ID's x-originating-ip / x-originating-port are kept, and used as the
 * client's address in the logs when the login that follows is a node login. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "imap_int.h"

/* The client's port, for the home node's logs. */
static unsigned peer_port(imap_session *s)
{
	const struct sockaddr *sa = s->conn ? tern_conn_peer_addr(s->conn) : NULL;

	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

/* The login at the home node ended (on the session's I/O thread). */
static void proxy_done(void *ctx, int ok, const char *reply)
{
	imap_session *s = ctx;

	if (!ok) {
		tlog(TLOG_WARNING, "IMAP login of %s from %s: home node %s unreachable: %s", s->account, s->ip,
		     s->home, reply ? reply : "");
		proxy_free(&s->proxy);
		s->account[0] = '\0';
		imap_reply(s, "NO", "[UNAVAILABLE] home server unreachable");
		imap_async_done(s);
		return;
	}
	tlog(TLOG_SECURITY, "IMAP login of %s from %s proxied to %s", s->account, s->ip, s->home);
	imap_server_count(s->srv, &s->srv->stats.logins);
	/* "OK [CAPABILITY ...] Logged in": the client sees the home node's capabilities */
	const char *text = reply + 2;
	while (*text == ' ')
		text++;
	if (strncasecmp(text, "[CAPABILITY ", 12) == 0) {
		imap_reply(s, "OK", "%s", text);
	} else {
		tbuf caps = TBUF_INIT;
		imap_enter_state(s, IMAP_ST_AUTH);
		imap_capabilities(s, &caps);
		imap_reply(s, "OK", "[%s] Logged in", tbuf_cstr(&caps));
		tbuf_free(&caps);
	}
	imap_enter_state(s, IMAP_ST_PROXY);
	imap_flush(s);                  /* the OK goes before anything the home node sends */
	proxy_splice(s->proxy, s->conn);
	imap_async_done(s);
}

void imap_proxy_login(imap_session *s, const char *account, const char *home)
{
	const char *why = NULL;
	proxy_request rq = {
		.st = s->srv->env.st,
		.io = s->io,
		.proto = PROXY_IMAP,
		.home = home,
		.account = account,
		.client_ip = s->ip,
		.client_port = peer_port(s),
		.timeout = (int)s->srv->env.conf->cluster_request_timeout,
		.done = proxy_done,
		.ctx = s,
	};

	snprintf(s->account, sizeof(s->account), "%s", account);
	snprintf(s->home, sizeof(s->home), "%s", home);
	if (s->via_node[0] != '\0') {
		/* a node logged in here for a user it believes homed here: never proxy twice */
		tlog(TLOG_WARNING, "IMAP login of %s by node %s refused: the user's home is %s", account,
		     s->via_node, home);
		why = "";
	} else if (proxy_start(&rq, &s->proxy, &why) == 0) {
		return;                 /* proxy_done ends the command */
	} else {
		tlog(TLOG_WARNING, "IMAP login of %s from %s: home node %s unreachable: %s", account, s->ip,
		     home, why);
	}
	s->account[0] = '\0';
	imap_reply(s, "NO", "[UNAVAILABLE] home server unreachable");
	imap_async_done(s);
}

/* ID ("x-originating-ip" "192.0.2.1" "x-originating-port" "4711" ...): only numeric
 * addresses are kept; they count only if a node logs in next. */
void imap_id_params(imap_session *s, const imap_arg *list)
{
	if (list->type != IMAP_ARG_LIST)
		return;
	for (size_t i = 0; i + 1 < list->nlist; i += 2) {
		const imap_arg *k = &list->list[i], *v = &list->list[i + 1];
		unsigned char addr[sizeof(struct in6_addr)];

		if (k->type != IMAP_ARG_STRING || v->type != IMAP_ARG_STRING || v->len >= sizeof(s->orig_ip))
			continue;
		if (strcasecmp(k->str, "x-originating-ip") == 0 &&
		    (inet_pton(AF_INET, v->str, addr) == 1 || inet_pton(AF_INET6, v->str, addr) == 1)) {
			snprintf(s->orig_ip, sizeof(s->orig_ip), "%s", v->str);
		} else if (strcasecmp(k->str, "x-originating-port") == 0) {
			char *end = NULL;
			unsigned long port = strtoul(v->str, &end, 10);
			if (end != v->str && *end == '\0' && port <= 65535)
				s->orig_port = (unsigned)port;
		}
	}
}
