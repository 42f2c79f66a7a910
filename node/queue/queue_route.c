/* queue_route.c - next hops: which hosts a group of recipients goes to, in which order,
 * and walking them until one session reaches a transaction.
 *
 * Hosts, first rule that applies: a recipient of a local domain goes to its home node
 * (queue_node.c: the node's submission port, TLS pinned, node login); the entry's fixed
 * route ("host:port"); queue.relay_host (with AUTH when relay_user is set);
 * queue.static_mx for the domain;
 * the domain's MX records (lowest preference first, random among equals - tern_dns sorts
 * them); no MX: the domain itself (A/AAAA). A null MX ("." RFC 7505) refuses mail for good.
 * Each host's addresses are tried in turn; a session that fails before MAIL FROM moves on
 * to the next address and then the next host, and one whose STARTTLS failed is retried once
 * on the same address without TLS (never for a node: its TLS is pinned). When every host
 * failed, the group's recipients get the last failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include "queue_int.h"

static void route_next_addr(q_hop *h);
static void route_next_host(q_hop *h);

/* Split "host[:port]" / "[v6]:port" into host and port (default when absent). 0 ok. */
static int split_host_port(const char *s, size_t len, unsigned def, char *host, size_t hn,
			   unsigned *port_r)
{
	const char *end = s + len, *colon = NULL;
	const char *hs = s, *he;

	if (len > 0 && s[0] == '[') {
		const char *rb = memchr(s, ']', len);
		if (rb == NULL)
			return -1;
		hs = s + 1;
		he = rb;
		if (rb + 1 < end) {
			if (rb[1] != ':')
				return -1;
			colon = rb + 1;
		}
	} else {
		colon = memchr(s, ':', len);
		he = colon != NULL ? colon : end;
	}
	if (he <= hs || (size_t)(he - hs) >= hn)
		return -1;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	*port_r = def;
	if (colon != NULL) {
		char num[8];
		size_t nl = (size_t)(end - colon - 1);
		if (nl == 0 || nl >= sizeof(num))
			return -1;
		memcpy(num, colon + 1, nl);
		num[nl] = '\0';
		char *ep;
		long p = strtol(num, &ep, 10);
		if (*ep != '\0' || p < 1 || p > 65535)
			return -1;
		*port_r = (unsigned)p;
	}
	return 0;
}

int queue_route_parse_static(const char *text, unsigned default_port, q_static_mx **list_r,
			     size_t *n_r, char **error_r)
{
	q_static_mx *list = NULL;
	size_t n = 0;
	const char *p = text != NULL ? text : "";

	while (*p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		size_t len = strcspn(p, ",");
		while (len > 0 && p[len - 1] == ' ')
			len--;
		const char *eq = memchr(p, '=', len);
		q_static_mx *grown = realloc(list, (n + 1) * sizeof(*list));
		if (grown == NULL)
			goto bad;
		list = grown;
		q_static_mx *m = &list[n];
		size_t dl = eq != NULL ? (size_t)(eq - p) : 0;
		if (eq == NULL || dl == 0 || dl >= sizeof(m->domain) ||
		    split_host_port(eq + 1, len - dl - 1, default_port, m->host, sizeof(m->host),
				    &m->port) < 0)
			goto bad;
		memcpy(m->domain, p, dl);
		m->domain[dl] = '\0';
		tern_lower(m->domain);
		n++;
		p += strcspn(p, ",");
	}
	*list_r = list;
	*n_r = n;
	return 0;
bad:
	free(list);
	if (error_r != NULL) {
		tbuf b = TBUF_INIT;
		tbuf_appendf(&b, "queue.static_mx: expected DOMAIN=HOST[:PORT],... in \"%s\"", text);
		*error_r = tbuf_steal(&b);
	}
	return -1;
}

/* The group failed everywhere: its recipients get the last failure. */
void queue_route_fail(q_hop *h, int code, const char *text)
{
	q_job *job = h->job;

	for (size_t i = 0; i < h->n; i++) {
		qc_reply *r = &job->res[h->idx[i]];
		r->code = code;
		snprintf(r->text, sizeof(r->text), "%s", text);
		snprintf(r->status, sizeof(r->status), "%s", code / 100 == 5 ? "5.4.4" : "4.4.1");
		const char *t = strlen(text) > 4 ? text + 4 : "";
		int a, b, c, len = 0;
		if (sscanf(t, "%1d.%3d.%3d%n", &a, &b, &c, &len) == 3 && a == code / 100)
			snprintf(r->status, sizeof(r->status), "%d.%d.%d", a, b, c);
	}
	queue_hop_done(h);
}

static int set_hosts(q_hop *h, size_t n)
{
	free(h->hosts);
	h->hosts = calloc(n ? n : 1, sizeof(*h->hosts));
	h->nhosts = h->hosts != NULL ? n : 0;
	h->host_i = 0;
	return h->hosts != NULL ? 0 : -1;
}

/* One session ended: done, or on to the next address. */
static void route_session_done(const qc_result *res, void *arg)
{
	q_hop *h = arg;
	q_job *job = h->job;

	if (res->transaction) {
		for (size_t i = 0; i < h->n && i < res->n; i++)
			job->res[h->idx[i]] = res->rcpt[i];
		queue_hop_done(h);
		return;
	}
	h->code = res->code ? res->code : 451;
	snprintf(h->error, sizeof(h->error), "%s", res->error);
	if (h->node[0] != '\0')
		tlog(TLOG_WARNING, "Queue-ID: %s: relay to node %s failed: %s", job->qid, h->node,
		     res->error);
	if (res->tls_failed && !h->no_tls && h->pin[0] == '\0') {
		h->no_tls = 1;   /* once more on this address, in plaintext */
		route_next_addr(h);
		return;
	}
	h->no_tls = 0;
	h->addr_i++;
	route_next_addr(h);
}

static void route_next_addr(q_hop *h)
{
	q_job *job = h->job;
	queue_runner *r = job->r;

	if (h->addr_i >= h->naddrs) {
		h->host_i++;
		route_next_host(h);
		return;
	}
	q_host *host = &h->hosts[h->host_i];
	qc_request req = {
		.io = r->io, .host = host->name, .helo = r->hostname,
		.use_tls = h->pin[0] != '\0' || ((int)r->conf->queue_use_tls && !h->no_tls),
		.fingerprint = h->pin[0] != '\0' ? h->pin : NULL,
		.connect_timeout = (int)r->conf->queue_connect_timeout,
		.command_timeout = (int)r->conf->queue_command_timeout,
		.st = r->st, .e = job->e, .idx = h->idx, .n = h->n,
	};
	req.addr = h->addrs[h->addr_i];
	req.addrlen = req.addr.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						      : sizeof(struct sockaddr_in);
	if (h->node[0] != '\0') {
		req.auth_user = h->node_user;
		req.auth_pass = h->node_pass;
	} else if (h->relay && r->conf->queue_relay_user[0] != '\0') {
		req.auth_user = r->conf->queue_relay_user;
		req.auth_pass = r->relay_password;
	}
	if (queue_client_start(&req, route_session_done, h) < 0) {
		h->code = 451;
		snprintf(h->error, sizeof(h->error), "451 4.4.1 cannot connect to %s", host->name);
		h->addr_i++;
		route_next_addr(h);   /* bounded by naddrs */
	}
}

static void set_port(struct sockaddr_storage *ss, unsigned port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

static void route_addr_cb(tern_dns_status st, const struct sockaddr_storage *a, size_t n, void *arg)
{
	q_hop *h = arg;
	q_host *host = &h->hosts[h->host_i];

	if (st != TERN_DNS_OK || n == 0) {
		int only = h->nhosts == 1 && h->domain[0] != '\0' &&
			   strcasecmp(host->name, h->domain) == 0;
		/* No MX and no address either: the domain cannot receive mail. */
		h->code = st == TERN_DNS_NOTFOUND && only ? 550 : 451;
		snprintf(h->error, sizeof(h->error), "%d %s Host or domain name not found: %s",
			 h->code, h->code == 550 ? "5.1.2" : "4.4.3", host->name);
		h->host_i++;
		route_next_host(h);
		return;
	}
	free(h->addrs);
	h->addrs = calloc(n, sizeof(*h->addrs));
	if (h->addrs == NULL) {
		queue_route_fail(h, 451, "451 4.3.0 out of memory");
		return;
	}
	memcpy(h->addrs, a, n * sizeof(*a));
	h->naddrs = n;
	h->addr_i = 0;
	for (size_t i = 0; i < n; i++)
		set_port(&h->addrs[i], host->port);
	route_next_addr(h);
}

/* Resolve the current host (a literal needs no DNS) and try its addresses. */
static void route_next_host(q_hop *h)
{
	queue_runner *r = h->job->r;

	if (h->host_i >= h->nhosts) {
		queue_route_fail(h, h->code ? h->code : 451,
			   h->error[0] ? h->error : "451 4.4.1 no server could be reached");
		return;
	}
	q_host *host = &h->hosts[h->host_i];
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, host->name, &in->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		route_addr_cb(TERN_DNS_OK, &ss, 1, h);
		return;
	}
	if (inet_pton(AF_INET6, host->name, &in6->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		route_addr_cb(TERN_DNS_OK, &ss, 1, h);
		return;
	}
	tern_dns_addr(r->dns, host->name, route_addr_cb, h);
}

static void route_mx_cb(tern_dns_status st, const tern_mx *mx, size_t n, void *arg)
{
	q_hop *h = arg;
	queue_runner *r = h->job->r;
	unsigned port = (unsigned)r->conf->queue_remote_port;

	if (st == TERN_DNS_TEMPFAIL) {
		char text[QC_TEXT_MAX];
		snprintf(text, sizeof(text), "451 4.4.3 DNS lookup of the MX of %s failed", h->domain);
		queue_route_fail(h, 451, text);
		return;
	}
	if (st == TERN_DNS_OK && n == 1 && (mx[0].host[0] == '\0' || strcmp(mx[0].host, ".") == 0)) {
		char text[QC_TEXT_MAX];
		snprintf(text, sizeof(text), "556 5.1.10 %s does not accept mail (null MX)", h->domain);
		queue_route_fail(h, 556, text);
		return;
	}
	if (st != TERN_DNS_OK || n == 0) {
		if (set_hosts(h, 1) < 0) {
			queue_route_fail(h, 451, "451 4.3.0 out of memory");
			return;
		}
		snprintf(h->hosts[0].name, sizeof(h->hosts[0].name), "%s", h->domain);
		h->hosts[0].port = port;
	} else {
		if (set_hosts(h, n) < 0) {
			queue_route_fail(h, 451, "451 4.3.0 out of memory");
			return;
		}
		for (size_t i = 0; i < n; i++) {
			snprintf(h->hosts[i].name, sizeof(h->hosts[i].name), "%s", mx[i].host);
			h->hosts[i].port = port;
		}
	}
	route_next_host(h);
}

void queue_route_to(q_hop *h, const char *host, unsigned port)
{
	if (set_hosts(h, 1) < 0) {
		queue_route_fail(h, 451, "451 4.3.0 out of memory");
		return;
	}
	snprintf(h->hosts[0].name, sizeof(h->hosts[0].name), "%s", host);
	h->hosts[0].port = port;
	route_next_host(h);
}

void queue_route_start(q_hop *h)
{
	queue_runner *r = h->job->r;
	const Tern__QueueEntry *e = h->job->e;

	if (h->node[0] != '\0' || h->local) {
		queue_node_start(h);
		return;
	}
	if (e->route != NULL && e->route[0] != '\0') {
		if (set_hosts(h, 1) < 0 ||
		    split_host_port(e->route, strlen(e->route), (unsigned)r->conf->queue_remote_port,
				    h->hosts[0].name, sizeof(h->hosts[0].name), &h->hosts[0].port) < 0) {
			queue_route_fail(h, 451, "451 4.3.5 bad route in the queue entry");
			return;
		}
		route_next_host(h);
		return;
	}
	if (h->relay) {
		if (set_hosts(h, 1) < 0) {
			queue_route_fail(h, 451, "451 4.3.0 out of memory");
			return;
		}
		snprintf(h->hosts[0].name, sizeof(h->hosts[0].name), "%s", r->conf->queue_relay_host);
		h->hosts[0].port = (unsigned)r->conf->queue_relay_port;
		route_next_host(h);
		return;
	}
	for (size_t i = 0; i < r->nsmx; i++) {
		if (strcmp(r->smx[i].domain, h->domain) == 0) {
			if (set_hosts(h, 1) < 0) {
				queue_route_fail(h, 451, "451 4.3.0 out of memory");
				return;
			}
			snprintf(h->hosts[0].name, sizeof(h->hosts[0].name), "%s", r->smx[i].host);
			h->hosts[0].port = r->smx[i].port;
			route_next_host(h);
			return;
		}
	}
	tern_dns_mx(r->dns, h->domain, route_mx_cb, h);
}
