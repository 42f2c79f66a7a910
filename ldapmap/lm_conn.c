/* lm_conn.c - one LDAP handle per worker: connect (LDAPS or StartTLS with certificate
 * checks), bind the service account, fail over to the backup server and go back to the
 * primary after failover_retry seconds. Every network wait is bounded by cfg->timeout. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <openldap.h>
#include <openssl/crypto.h>
#include "lm_int.h"

char *lm_errorf(const char *fmt, ...)
{
	tbuf b = TBUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	tbuf_vappendf(&b, fmt, ap);
	va_end(ap);
	return tbuf_steal(&b);
}

int lm_rc_is_down(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT || rc == LDAP_CONNECT_ERROR ||
	       rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY;
}

static int timeout_of(const lm_config *cfg)
{
	return cfg->timeout > 0 ? cfg->timeout : 5;
}

/* "host[:port]" / "[v6]:port" -> host (brackets kept for the URI) and port; 0 ok, -1 on
 * a bad name. The default port is 389, 636 for LDAPS. */
static int parse_server(const lm_config *cfg, const char *server, char *host, size_t hn,
			char *port, size_t pn)
{
	const char *p = NULL;
	size_t hlen;

	if (!server || !*server || strpbrk(server, " /?#@"))
		return -1;
	if (server[0] == '[') {
		const char *close = strchr(server, ']');
		if (!close || (close[1] && close[1] != ':'))
			return -1;
		hlen = (size_t)(close + 1 - server);
		if (close[1] == ':')
			p = close + 2;
	} else {
		const char *colon = strchr(server, ':');
		if (colon && strchr(colon + 1, ':'))
			return -1;
		hlen = colon ? (size_t)(colon - server) : strlen(server);
		if (colon)
			p = colon + 1;
	}
	if (hlen == 0 || hlen >= hn)
		return -1;
	memcpy(host, server, hlen);
	host[hlen] = '\0';
	if (p) {
		char *end;
		long v = strtol(p, &end, 10);
		if (*p < '0' || *p > '9' || *end || v < 1 || v > 65535)
			return -1;
	} else {
		p = cfg->tls == LM_TLS_LDAPS ? "636" : "389";
	}
	int w = snprintf(port, pn, "%s", p);
	return w < 0 || (size_t)w >= pn ? -1 : 0;
}

/* The numeric form of one address, "[v6]" bracketed so that it can stand in a URI. */
static int numeric_addr(const struct addrinfo *ai, char *out, size_t n)
{
	char num[NI_MAXHOST];

	if (getnameinfo(ai->ai_addr, ai->ai_addrlen, num, sizeof(num), NULL, 0, NI_NUMERICHOST) != 0) {
		errno = EINVAL;
		return -1;
	}
	int w = ai->ai_family == AF_INET6 ? snprintf(out, n, "[%s]", num) : snprintf(out, n, "%s", num);
	if (w < 0 || (size_t)w >= n) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* TCP connect within timeout_s to any address of host, and give the socket receive and
 * send timeouts: libldap's own network timeout does not cover every blocking read (the
 * TLS handshake of Debian's libldap 2.5 is one), so a server that accepts and then says
 * nothing still costs one timeout, not a worker. The address reached goes to addr_r
 * (numeric, IPv6 in brackets, as in a URI). */
static int tcp_connect(const char *host, const char *port, int timeout_s, int *fd_r,
		       char *addr_r, size_t addr_n, char **why_r)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
	struct addrinfo *res = NULL;
	char bare[256];
	size_t hl = strlen(host);
	int err = 0;

	if (host[0] == '[' && hl >= 2 && hl - 2 < sizeof(bare)) {
		memcpy(bare, host + 1, hl - 2);
		bare[hl - 2] = '\0';
	} else {
		snprintf(bare, sizeof(bare), "%s", host);
	}
	int rc = getaddrinfo(bare, port, &hints, &res);
	if (rc != 0) {
		*why_r = lm_errorf("%s", gai_strerror(rc));
		return -1;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno == EINPROGRESS) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			int n;
			do
				n = poll(&pfd, 1, timeout_s * 1000);
			while (n < 0 && errno == EINTR);
			socklen_t len = sizeof(err);
			if (n == 0)
				err = ETIMEDOUT;
			else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
				err = errno;
		} else {
			err = errno == 0 || errno == EINPROGRESS ? 0 : errno;
		}
		if (err == 0) {
			struct timeval tv = { .tv_sec = timeout_s, .tv_usec = 0 };
			int flags = fcntl(fd, F_GETFL);
			if (flags >= 0 && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0 &&
			    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
			    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0 &&
			    numeric_addr(ai, addr_r, addr_n) == 0) {
				freeaddrinfo(res);
				*fd_r = fd;
				return 0;
			}
			err = errno;
		}
		close(fd);
	}
	freeaddrinfo(res);
	*why_r = lm_errorf("Can't contact LDAP server (%s)", strerror(err ? err : ECONNREFUSED));
	return -1;
}

/* A sockbuf layer between TCP and TLS that bounds the TLS handshake. libldap 2.5 makes
 * the socket non-blocking for the handshake and then calls gnutls_handshake() in a loop
 * without waiting or any deadline: a server that accepts and says nothing would spin a
 * worker forever. While armed (until_ms != 0), EAGAIN waits in poll() for the rest of
 * the time and then becomes ETIMEDOUT, which ends the handshake. Unarmed, EAGAIN passes
 * through, as libldap expects. */
typedef struct lm_deadline {
	int64_t until_ms;
} lm_deadline;

/* 1 ready (retry), 0 not armed, -1 deadline passed (errno ETIMEDOUT). */
static int deadline_wait(Sockbuf_IO_Desc *sbiod, short events)
{
	lm_deadline *d = sbiod->sbiod_pvt;
	ber_socket_t fd = -1;

	if (!d || d->until_ms == 0)
		return 0;
	int64_t left = d->until_ms - tern_mono_ms();
	if (left > 0 && ber_sockbuf_ctrl(sbiod->sbiod_sb, LBER_SB_OPT_GET_FD, &fd) == 1 && fd >= 0) {
		struct pollfd pfd = { .fd = fd, .events = events };
		int n = poll(&pfd, 1, (int)left);
		if (n > 0)
			return 1;
		if (n < 0 && errno == EINTR)
			return 1;
	}
	errno = ETIMEDOUT;
	return -1;
}

static ber_slen_t deadline_read(Sockbuf_IO_Desc *sbiod, void *buf, ber_len_t len)
{
	for (;;) {
		ber_slen_t n = LBER_SBIOD_READ_NEXT(sbiod, buf, len);
		if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return n;
		int w = deadline_wait(sbiod, POLLIN);
		if (w <= 0) {
			if (w == 0)
				errno = EAGAIN;
			return n;
		}
	}
}

/* Writes go straight to the socket with MSG_NOSIGNAL: a directory server that closed
 * the connection must give EPIPE, not kill a process that did not ignore SIGPIPE. */
static ber_slen_t deadline_write(Sockbuf_IO_Desc *sbiod, void *buf, ber_len_t len)
{
	ber_socket_t fd = -1;

	if (ber_sockbuf_ctrl(sbiod->sbiod_sb, LBER_SB_OPT_GET_FD, &fd) != 1 || fd < 0) {
		errno = EBADF;
		return -1;
	}
	for (;;) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			if (n < 0 && errno == EINTR)
				continue;
			return n;
		}
		int w = deadline_wait(sbiod, POLLOUT);
		if (w <= 0) {
			if (w == 0)
				errno = EAGAIN;
			return -1;
		}
	}
}

static int deadline_setup(Sockbuf_IO_Desc *sbiod, void *arg)
{
	sbiod->sbiod_pvt = arg;
	return 0;
}

static int deadline_remove(Sockbuf_IO_Desc *sbiod)
{
	free(sbiod->sbiod_pvt);
	sbiod->sbiod_pvt = NULL;
	return 0;
}

static int deadline_ctrl(Sockbuf_IO_Desc *sbiod, int opt, void *arg)
{
	return LBER_SBIOD_CTRL_NEXT(sbiod, opt, arg);
}

static Sockbuf_IO deadline_io = {
	.sbi_setup = deadline_setup, .sbi_remove = deadline_remove, .sbi_ctrl = deadline_ctrl,
	.sbi_read = deadline_read, .sbi_write = deadline_write,
};

/* The TLS options must be set on the handle before libldap (GnuTLS on Debian) builds its
 * context; LDAP_OPT_X_TLS_NEWCTX builds it from them. The certificate is always checked. */
static int set_tls(LDAP *ld, const lm_config *cfg)
{
	int demand = LDAP_OPT_X_TLS_DEMAND;
	int is_server = 0;

	if (ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand) != LDAP_OPT_SUCCESS)
		return -1;
	if (cfg->ca_file && cfg->ca_file[0] &&
	    ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, cfg->ca_file) != LDAP_OPT_SUCCESS)
		return -1;
	if (ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &is_server) != LDAP_OPT_SUCCESS)
		return -1;
	return 0;
}

/* The handle's URI names the host the certificate must name (libldap checks the name
 * in the URI). One exception: for exactly "localhost", libldap checks the machine's own
 * host name instead, which a certificate for a local directory seldom names, so the
 * URI names the loopback address actually reached and the certificate must name that
 * address (an iPAddress subjectAltName, as "localhost" certificates usually carry). */
int lm_open(const lm_config *cfg, const char *server, LDAP **ld_r, char **error_r)
{
	char host[256], port[8], addr[NI_MAXHOST + 2], uri[NI_MAXHOST + 300], *why = NULL;
	LDAP *ld = NULL;
	int v3 = LDAP_VERSION3;
	int limit = timeout_of(cfg);
	struct timeval tv = { .tv_sec = limit, .tv_usec = 0 };
	int rc, fd;

	*ld_r = NULL;
	if (parse_server(cfg, server, host, sizeof(host), port, sizeof(port)) < 0) {
		*error_r = lm_errorf("%s: not a host[:port]", server ? server : "");
		return -1;
	}
	if (tcp_connect(host, port, limit, &fd, addr, sizeof(addr), &why) < 0) {
		*error_r = lm_errorf("%s: %s", server, why);
		free(why);
		return -1;
	}
	int w = snprintf(uri, sizeof(uri), "%s://%s:%s", cfg->tls == LM_TLS_LDAPS ? "ldaps" : "ldap",
			 strcasecmp(host, "localhost") == 0 ? addr : host, port);
	if (w < 0 || (size_t)w >= sizeof(uri)) {
		*error_r = lm_errorf("%s: not a host[:port]", server);
		close(fd);
		return -1;
	}
	if ((rc = ldap_init_fd(fd, LDAP_PROTO_TCP, uri, &ld)) != LDAP_SUCCESS) {
		*error_r = lm_errorf("%s: %s", server, ldap_err2string(rc));
		close(fd);
		return -1;
	}
	/* Bound what one PDU may make libldap allocate (huge attributes, endless values),
	 * and make a stalled read or write an error. */
	Sockbuf *sb = NULL;
	ber_len_t max_pdu = LM_MAX_PDU;
	lm_deadline *deadline = calloc(1, sizeof(*deadline));
	if (!deadline)
		abort();
	if (ldap_get_option(ld, LDAP_OPT_SOCKBUF, &sb) != LDAP_OPT_SUCCESS || !sb ||
	    ber_sockbuf_add_io(sb, &deadline_io, LBER_SBIOD_LEVEL_PROVIDER + 5, deadline) != 0) {
		free(deadline);
		*error_r = lm_errorf("%s: cannot set up the connection", server);
		ldap_unbind_ext_s(ld, NULL, NULL);
		return -1;
	}
	ber_sockbuf_ctrl(sb, LBER_SB_OPT_SET_MAX_INCOMING, &max_pdu);
	if (ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3) != LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_TIMELIMIT, &limit) != LDAP_OPT_SUCCESS ||
	    (cfg->tls != LM_TLS_PLAIN && set_tls(ld, cfg) < 0)) {
		*error_r = lm_errorf("%s: cannot set LDAP options", server);
		ldap_unbind_ext_s(ld, NULL, NULL);
		return -1;
	}
	if (cfg->tls == LM_TLS_LDAPS) {
		deadline->until_ms = tern_mono_ms() + limit * 1000;
		rc = ldap_install_tls(ld);
		deadline->until_ms = 0;
		if (rc != LDAP_SUCCESS) {
			char *diag = NULL;
			ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
			*error_r = lm_errorf("%s: TLS failed: %s%s%s", server, ldap_err2string(rc),
					     diag && *diag ? ": " : "", diag ? diag : "");
			ldap_memfree(diag);
			ldap_unbind_ext_s(ld, NULL, NULL);
			return -1;
		}
	}
	if (cfg->tls == LM_TLS_STARTTLS) {
		deadline->until_ms = tern_mono_ms() + limit * 1000;
		rc = ldap_start_tls_s(ld, NULL, NULL);
		deadline->until_ms = 0;
		if (rc != LDAP_SUCCESS) {
			char *diag = NULL;
			ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
			*error_r = lm_errorf("%s: StartTLS failed: %s%s%s", server, ldap_err2string(rc),
					     diag && *diag ? ": " : "", diag ? diag : "");
			ldap_memfree(diag);
			ldap_unbind_ext_s(ld, NULL, NULL);
			return -1;
		}
	}
	*ld_r = ld;
	return 0;
}

/* Asynchronous bind so that the wait is ours to bound: a server that accepts the
 * connection and never answers costs cfg->timeout, not a worker. */
int lm_simple_bind(LDAP *ld, const lm_config *cfg, const char *dn, const char *password,
		   char **diag_r)
{
	struct berval cred = { .bv_len = strlen(password), .bv_val = (char *)password };
	struct timeval tv = { .tv_sec = timeout_of(cfg), .tv_usec = 0 };
	LDAPMessage *res = NULL;
	int msgid, rc, err = LDAP_OTHER;
	char *diag = NULL;

	*diag_r = NULL;
	rc = ldap_sasl_bind(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, &msgid);
	if (rc != LDAP_SUCCESS)
		goto fail;
	rc = ldap_result(ld, msgid, LDAP_MSG_ALL, &tv, &res);
	if (rc == 0) {
		ldap_abandon_ext(ld, msgid, NULL, NULL);
		return LDAP_TIMEOUT;
	}
	if (rc < 0) {
		ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &rc);
		goto fail;
	}
	rc = ldap_parse_result(ld, res, &err, NULL, &diag, NULL, NULL, 1);
	if (rc != LDAP_SUCCESS)
		return rc;
	if (diag && *diag)
		*diag_r = strdup(diag);
	ldap_memfree(diag);
	return err;
fail:
	ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	if (diag && *diag)
		*diag_r = strdup(diag);
	ldap_memfree(diag);
	return rc;
}

/* Connect and bind the service account on one server. */
static int connect_one(lm_conn *c, const char *server, char **error_r)
{
	const lm_config *cfg = &c->cfg;
	LDAP *ld;
	char *diag = NULL;

	if (lm_open(cfg, server, &ld, error_r) < 0)
		return -1;
	const char *dn = cfg->bind_dn ? cfg->bind_dn : "";
	const char *pw = cfg->bind_password ? cfg->bind_password : "";
	/* A DN with an empty password is an unauthenticated bind that servers accept
	 * without checking anything (RFC 4513 5.1.2): never mistake it for a real bind. */
	if (*dn && !*pw) {
		*error_r = lm_errorf("%s: the bind password is empty", server);
		ldap_unbind_ext_s(ld, NULL, NULL);
		return -1;
	}
	int rc = lm_simple_bind(ld, cfg, dn, pw, &diag);
	if (rc != LDAP_SUCCESS) {
		*error_r = lm_errorf("%s: bind as %s failed: %s%s%s", server, *dn ? dn : "anonymous",
				     ldap_err2string(rc), diag ? ": " : "", diag ? diag : "");
		free(diag);
		ldap_unbind_ext_s(ld, NULL, NULL);
		return -1;
	}
	free(diag);
	int w = snprintf(c->server, sizeof(c->server), "%s", server);
	if (w < 0 || (size_t)w >= sizeof(c->server)) {
		*error_r = lm_errorf("server name too long");
		ldap_unbind_ext_s(ld, NULL, NULL);
		return -1;
	}
	c->ld = ld;
	return 0;
}

static int has_backup(const lm_conn *c)
{
	return c->cfg.backup_server && c->cfg.backup_server[0];
}

/* Primary first unless it failed less than failover_retry seconds ago, then the other. */
static int connect_any(lm_conn *c, char **error_r)
{
	int64_t retry_ms = (int64_t)(c->cfg.failover_retry > 0 ? c->cfg.failover_retry : 30) * 1000;
	int primary_first = !has_backup(c) || c->primary_failed_ms == 0 ||
			    tern_mono_ms() - c->primary_failed_ms >= retry_ms;
	char *err1 = NULL, *err2 = NULL;

	for (int pass = 0; pass < 2; pass++) {
		int primary = (pass == 0) == primary_first;
		if (!primary && !has_backup(c))
			continue;
		const char *server = primary ? c->cfg.server : c->cfg.backup_server;
		char **err = err1 ? &err2 : &err1;
		if (connect_one(c, server, err) == 0) {
			c->on_backup = !primary;
			if (primary)
				c->primary_failed_ms = 0;
			else if (c->primary_failed_ms == 0)
				c->primary_failed_ms = tern_mono_ms();
			if (err1 && !primary)
				tlog(TLOG_WARNING, "directory %s: primary server failed (%s); using backup %s",
				     c->cfg.domain ? c->cfg.domain : "", err1, server);
			free(err1);
			free(err2);
			return 0;
		}
		if (primary)
			c->primary_failed_ms = tern_mono_ms();
	}
	*error_r = err2 ? lm_errorf("%s; %s", err1, err2) : err1;
	if (err2) {
		free(err1);
		free(err2);
	}
	return -1;
}

/* The connection keeps its own copy of every string of the configuration, so that the
 * caller may free its record (the node reloads it from the store) while the handle lives. */
static void own_config(lm_conn *c, const lm_config *cfg)
{
	const char *const *src[] = { &cfg->domain, &cfg->server, &cfg->backup_server, &cfg->ca_file,
				     &cfg->bind_dn, &cfg->bind_password, &cfg->base,
				     &cfg->directory_domain, &cfg->realm, &cfg->keytab };
	const char **dst[] = { &c->cfg.domain, &c->cfg.server, &c->cfg.backup_server, &c->cfg.ca_file,
			       &c->cfg.bind_dn, &c->cfg.bind_password, &c->cfg.base,
			       &c->cfg.directory_domain, &c->cfg.realm, &c->cfg.keytab };
	size_t off[sizeof(src) / sizeof(src[0])];

	c->cfg = *cfg;
	tbuf_init(&c->strings);
	for (size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++) {
		off[i] = c->strings.len;
		tbuf_append(&c->strings, *src[i] ? *src[i] : "", strlen(*src[i] ? *src[i] : "") + 1);
	}
	for (size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++)
		*dst[i] = c->strings.data + off[i];
}

lm_conn *lm_connect(const lm_config *cfg, char **error_r)
{
	lm_conn *c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	own_config(c, cfg);
	c->page_size = LM_PAGE_SIZE;
	if (connect_any(c, error_r) < 0) {
		OPENSSL_cleanse(c->strings.data, c->strings.len);
		tbuf_free(&c->strings);
		free(c);
		return NULL;
	}
	return c;
}

void lm_drop(lm_conn *c)
{
	if (!c->ld)
		return;
	ldap_unbind_ext_s(c->ld, NULL, NULL);
	c->ld = NULL;
	if (!c->on_backup)
		c->primary_failed_ms = tern_mono_ms();
}

int lm_ready(lm_conn *c, char **error_r)
{
	int64_t retry_ms = (int64_t)(c->cfg.failover_retry > 0 ? c->cfg.failover_retry : 30) * 1000;

	if (c->ld && c->on_backup && tern_mono_ms() - c->primary_failed_ms >= retry_ms) {
		/* Time to try the primary again; keep the backup handle if it is still down. */
		LDAP *backup = c->ld;
		char server[sizeof(c->server)];
		char *err = NULL;

		memcpy(server, c->server, sizeof(server));
		c->ld = NULL;
		if (connect_one(c, c->cfg.server, &err) == 0) {
			ldap_unbind_ext_s(backup, NULL, NULL);
			c->on_backup = 0;
			c->primary_failed_ms = 0;
			tlog(TLOG_WARNING, "directory %s: primary server %s is back",
			     c->cfg.domain ? c->cfg.domain : "", c->server);
			return 0;
		}
		free(err);
		c->ld = backup;
		memcpy(c->server, server, sizeof(server));
		c->primary_failed_ms = tern_mono_ms();
		return 0;
	}
	if (c->ld)
		return 0;
	return connect_any(c, error_r);
}

void lm_close(lm_conn **cp)
{
	lm_conn *c = *cp;
	if (!c)
		return;
	if (c->ld)
		ldap_unbind_ext_s(c->ld, NULL, NULL);
	OPENSSL_cleanse(c->strings.data, c->strings.len);   /* the bind password is in there */
	tbuf_free(&c->strings);
	free(c);
	*cp = NULL;
}

const char *lm_server(const lm_conn *c)
{
	return c->server;
}
