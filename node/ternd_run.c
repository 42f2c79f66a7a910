/* ternd_run.c - the daemon's life: data dir, lock, config, logs, store, listeners,
 * signals, run, orderly shutdown. Start-up errors are one line on stderr and in
 * error.log, and exit code 1. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "dav.h"
#include "directory.h"
#include "ternd_private.h"

static tern_server *ternd_srv;       /* for the signal handler */
static int ternd_logs_open;
static int ternd_logs_echo;            /* error.log lines also reach stderr */

static void on_stop_signal(int sig)
{
	if (ternd_srv != NULL)
		tern_server_stop(ternd_srv);   /* async-signal-safe */
}

/* SIGHUP, from the event loop of I/O thread 0. */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	tlog_reopen();
	tlog(TLOG_DEBUG, "Logs reopened (SIGHUP)");
}

static int startup_error(const char *msg)
{
	if (!ternd_logs_open || !ternd_logs_echo)
		fprintf(stderr, "ternd: %s\n", msg);
	if (ternd_logs_open)
		tlog(TLOG_ERROR, "ternd: %s", msg);
	return 1;
}

static int make_dir(const char *path, tbuf *err)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	tbuf_appendf(err, "cannot create %s: %s", path, strerror(errno));
	return -1;
}

/* Detach: the parent waits for the child's start-up result on a pipe and exits with it,
 * so that `ternd` without --foreground still fails visibly. Returns the pipe's write end
 * in the child. */
static int daemonise(void)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(p[1]);
		char rc = 1;
		if (read(p[0], &rc, 1) != 1)
			rc = 1;
		_exit(rc);
	}
	close(p[0]);
	setsid();
	return p[1];
}

/* After a successful start: stdout/stderr to DATA/logs/ternd.out, tell the parent. */
static void daemon_ready(int fd, const char *data, char rc)
{
	if (fd < 0)
		return;
	if (rc == 0) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/logs/ternd.out", data);
		int out = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		int nul = open("/dev/null", O_RDONLY);
		if (out >= 0) {
			fflush(stdout);
			dup2(out, 1);
			dup2(out, 2);
			close(out);
		}
		if (nul >= 0) {
			dup2(nul, 0);
			close(nul);
		}
	}
	if (write(fd, &rc, 1) != 1)
		rc = 1;
	close(fd);
}

static void log_conf_warnings(const tern_conf *conf)
{
	const char *p = tbuf_cstr(&conf->warnings);
	while (*p) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);
		if (n > 0)
			tlog(TLOG_WARNING, "tern.conf: %.*s", n, p);
		p += n + (nl ? 1 : 0);
	}
}

enum { TERND_GSS_IMAP, TERND_GSS_POP, TERND_GSS_SMTP, TERND_GSS_HTTP, TERND_GSS_COUNT };

typedef struct ternd {
	const ternd_opts *o;
	tern_conf conf;
	int conf_loaded;
	store *st;
	tern_server *srv;
	tern_pool *auth_pool, *cpu_pool, *bulk_pool;
	tern_dns **dns;               /* one resolver per I/O thread */
	unsigned ndns;
	auth_lockout *lockout;
	deliverer *dlv;
	smtp_server *smtp;
	queue_runner *queue;
	pop3_server *pop3;
	imap_server *imap;
	directory *dir;
	/* Kerberos acceptors of IMAP, POP3, SMTP and the admin API; offered when usable */
	auth_gssapi_conf gss[TERND_GSS_COUNT];
	int gss_ok[TERND_GSS_COUNT];
	cluster *cl;                  /* the distributed domain's control plane */
	migrate *mig;                 /* live mailbox migration to this node */
	ternd_mig_hooks mh;           /* its hooks: queue wake-up, reports */
	admin *adm;
	http_service *http;
	dav *dav;                     /* CalDAV, CardDAV, iCal, free/busy */
	http_service *dav_http;       /* on http, http_alt, https and https_alt */
	struct event *hup;
	char node_name[128];
	char sock[512];
	int lock_fd;
} ternd;

static int access_check(const char *ipgroup, const struct sockaddr *peer, void *ctx)
{
	return store_ipgroup_match(ctx, ipgroup, peer);
}

/* Config, logs, store, node name; -1 with err. */
static int ternd_open(ternd *t, tbuf *err)
{
	const ternd_opts *o = t->o;
	char path[4096];
	const char *conf_path = o->config;
	snprintf(path, sizeof(path), "%s/tern.conf", o->data);
	if (conf_path == NULL && access(path, F_OK) == 0)
		conf_path = path;
	char *cerr = NULL;
	if (tern_conf_load(&t->conf, conf_path, o->port_base, &cerr) < 0) {
		tbuf_appendf(err, "%s", cerr ? cerr : "cannot load the configuration");
		free(cerr);
		return -1;
	}
	t->conf_loaded = 1;
	snprintf(path, sizeof(path), "%s/logs", o->data);
	tlog_options lo = { .rotate_bytes = (size_t)t->conf.log_rotate_kb * 1024,
			    .keep_files = (unsigned)t->conf.log_keep_files, .echo_stderr = o->foreground };
	const char *lerr = NULL;
	if (tlog_open(path, &lo, &lerr) < 0) {
		tbuf_appendf(err, "cannot open the logs in %s: %s", path, lerr ? lerr : "");
		return -1;
	}
	ternd_logs_open = 1;
	ternd_logs_echo = o->foreground;
	tlog(TLOG_DEBUG, "ternd %s starting, data %s, port base %u", TERN_VERSION, o->data, o->port_base);
	log_conf_warnings(&t->conf);
	store_options so;
	store_options_default(&so);
	snprintf(path, sizeof(path), "%s/db", o->data);
	so.path = path;
	so.wal_max_bytes = (uint64_t)t->conf.store_wal_max_mb << 20;
	so.cache_bytes = (uint64_t)t->conf.store_cache_mb << 20;
	so.commit_threads = (unsigned)t->conf.server_commit_threads;
	so.blob_grace = t->conf.store_blob_grace;
	so.sweep_interval = t->conf.store_sweep_interval;
	so.disk_soft_limit = (uint64_t)t->conf.store_disk_soft_limit_mb << 20;
	so.disk_hard_limit = (uint64_t)t->conf.store_disk_hard_limit_mb << 20;
	so.disk_check_interval = t->conf.store_disk_check_interval;
	char *serr = NULL;
	if (store_open(&so, &t->st, &serr) < 0) {
		tbuf_appendf(err, "cannot open the store %s: %s", path, serr ? serr : "");
		free(serr);
		return -1;
	}
	if (ternd_node_name(t->st, o->node_name, t->node_name, sizeof(t->node_name), err) < 0)
		return -1;
	store_set_node_name(t->st, t->node_name);   /* before any write: mailboxes follow homes */
	if (store_is_new(t->st) && ternd_init_store(t->st, o, err) < 0)
		return -1;
	return 0;
}

/* Kerberos single sign-on: one acceptor per protocol, with the keytab of [directory]
 * (or KRB5_KTNAME / the default) and the realm -> mail domain map of the directory.
 * Each is offered only when its service key is in the keytab; the others are named in
 * one warning.log line with the reason (the first one's only when none is usable). */
static void ternd_gssapi(ternd *t)
{
	static const char *const services[TERND_GSS_COUNT] = { "imap", "pop", "smtp", "HTTP" };
	tbuf missing = TBUF_INIT;
	char *first = NULL;
	int nmissing = 0;

	for (int i = 0; i < TERND_GSS_COUNT; i++) {
		char *why = NULL;
		t->gss[i] = (auth_gssapi_conf){ .keytab = t->conf.directory_keytab, .service = services[i],
						.map = directory_map_principal, .map_arg = t->st };
		t->gss_ok[i] = auth_gssapi_available(&t->gss[i], &why) == 1;
		if (!t->gss_ok[i]) {
			const char *w = why ? why : "unavailable";
			tbuf_appendf(&missing, "%s%s: %s", nmissing ? "; " : "", services[i], w);
			if (first == NULL)
				first = strdup(w);
			nmissing++;
		}
		free(why);
	}
	if (nmissing == TERND_GSS_COUNT && first != NULL)   /* the usual case: no keytab at all */
		tlog(TLOG_WARNING, "Kerberos single sign-on (GSSAPI, Negotiate) not offered for imap, pop, "
		     "smtp or HTTP: %s", first);
	else if (nmissing > 0)
		tlog(TLOG_WARNING, "Kerberos single sign-on not offered for %s", tbuf_cstr(&missing));
	free(first);
	tbuf_free(&missing);
}

/* The resolver of an I/O thread (SMTP's sender-domain check). */
static tern_dns *dns_for_io(tern_io *io, void *ctx)
{
	ternd *t = ctx;
	for (unsigned i = 0; i < t->ndns; i++)
		if (tern_server_io(t->srv, i) == io)
			return t->dns[i];
	return NULL;
}

/* ETRN (RFC 1985): the queued messages are tried now (all of them: few sites queue
 * for more than one domain). */
static int etrn_run(const char *domain, void *ctx)
{
	queue_retry(ctx, NULL, NULL, NULL, NULL);
	return 0;
}

/* POP3 before SMTP: a POP3 login lets its address relay for a while. */
static void pop3_login_relay(const struct sockaddr *addr, void *ctx)
{
	smtp_pop3_login(ctx, addr);
}

/* Listen on each service of svcs with the handler its server gives; mark them served. */
static int listen_services(ternd *t, admin_env *env, const tern_service_id *svcs, size_t n,
			   const tern_service_handler *(*handler)(void *server, tern_service_id svc),
			   void *server, tbuf *err)
{
	for (size_t i = 0; i < n; i++) {
		char *e = NULL;
		if (tern_server_listen(t->srv, svcs[i], handler(server, svcs[i]), &e) < 0) {
			tbuf_appendf(err, "%s", e ? e : "cannot listen");
			free(e);
			return -1;
		}
		env->served[svcs[i]] = t->conf.services[svcs[i]].enabled;
	}
	return 0;
}

static const tern_service_handler *smtp_handler(void *s, tern_service_id svc)
{
	return smtp_server_handler(s, svc);
}

static const tern_service_handler *pop3_handler(void *s, tern_service_id svc)
{
	return pop3_server_handler(s, svc);
}

static const tern_service_handler *imap_handler(void *s, tern_service_id svc)
{
	return imap_server_handler(s, svc);
}

/* Worker pools and one c-ares resolver per I/O thread (DESIGN.md §3). */
static int ternd_runtime(ternd *t, tbuf *err)
{
	unsigned qmax = (unsigned)t->conf.server_pool_queue_max;
	t->auth_pool = tern_pool_new("auth", (unsigned)t->conf.server_auth_workers, qmax);
	t->cpu_pool = tern_pool_new("cpu", (unsigned)t->conf.server_cpu_workers, qmax);
	t->bulk_pool = tern_pool_new("bulk", (unsigned)t->conf.server_bulk_workers, qmax);
	if (t->auth_pool == NULL || t->cpu_pool == NULL || t->bulk_pool == NULL) {
		tbuf_appendf(err, "cannot start the worker pools");
		return -1;
	}
	t->ndns = tern_server_io_count(t->srv);
	t->dns = calloc(t->ndns, sizeof(*t->dns));
	if (t->dns == NULL) {
		tbuf_appendf(err, "out of memory");
		return -1;
	}
	for (unsigned i = 0; i < t->ndns; i++) {
		char *e = NULL;
		t->dns[i] = tern_dns_new(tern_io_base(tern_server_io(t->srv, i)), t->conf.server_dns_resolver,
					 (int)t->conf.server_dns_timeout, &e);
		if (t->dns[i] == NULL) {
			tbuf_appendf(err, "DNS resolver: %s", e ? e : "cannot start");
			free(e);
			return -1;
		}
	}
	return 0;
}

/* The mail services: the deliverer, SMTP on its three ports, the outgoing queue on the
 * first I/O thread, POP3 and IMAP; -1 with err. */
static int ternd_mail(ternd *t, admin_env *env, tbuf *err)
{
	const char *host = tern_conf_hostname(&t->conf);
	deliver_env de = { .st = t->st, .conf = &t->conf, .hostname = host, .cpu_pool = t->cpu_pool };
	t->dlv = deliverer_new(&de);
	if (t->dlv == NULL) {
		tbuf_appendf(err, "cannot make the deliverer");
		return -1;
	}
	char *e = NULL;
	queue_env qe = { .st = t->st, .conf = &t->conf, .hostname = host, .io = tern_server_io(t->srv, 0),
			 .dns = t->dns[0], .dlv = t->dlv };
	t->queue = queue_runner_new(&qe, &e);
	if (t->queue == NULL) {
		tbuf_appendf(err, "queue: %s", e ? e : "cannot start");
		free(e);
		return -1;
	}
	smtp_env se = { .st = t->st, .conf = &t->conf, .hostname = host, .auth_pool = t->auth_pool,
			.lockout = t->lockout, .deliverer = t->dlv, .dns_for_io = dns_for_io, .dns_ctx = t,
			.etrn = etrn_run, .etrn_ctx = t->queue,
			.gssapi = t->gss_ok[TERND_GSS_SMTP] ? &t->gss[TERND_GSS_SMTP] : NULL };
	t->smtp = smtp_server_new(&se);
	if (t->smtp == NULL) {
		tbuf_appendf(err, "cannot make the SMTP server");
		return -1;
	}
	static const tern_service_id smtp_svcs[] = { TERN_SVC_smtp, TERN_SVC_smtps, TERN_SVC_submission };
	if (listen_services(t, env, smtp_svcs, 3, smtp_handler, t->smtp, err) < 0)
		return -1;
	pop3_env pe = { .st = t->st, .conf = &t->conf, .hostname = host, .auth_pool = t->auth_pool,
			.lockout = t->lockout, .pop3_login = pop3_login_relay, .pop3_login_ctx = t->smtp,
			.gssapi = t->gss_ok[TERND_GSS_POP] ? &t->gss[TERND_GSS_POP] : NULL };
	t->pop3 = pop3_server_new(&pe);
	if (t->pop3 == NULL) {
		tbuf_appendf(err, "cannot make the POP3 server");
		return -1;
	}
	static const tern_service_id pop3_svcs[] = { TERN_SVC_pop3, TERN_SVC_pop3s };
	if (listen_services(t, env, pop3_svcs, 2, pop3_handler, t->pop3, err) < 0)
		return -1;
	imap_env ie = { .st = t->st, .conf = &t->conf, .hostname = host, .auth_pool = t->auth_pool,
			.lockout = t->lockout, .cpu_pool = t->cpu_pool,
			.gssapi = t->gss_ok[TERND_GSS_IMAP] ? &t->gss[TERND_GSS_IMAP] : NULL };
	t->imap = imap_server_new(&ie);
	if (t->imap == NULL) {
		tbuf_appendf(err, "cannot make the IMAP server");
		return -1;
	}
	static const tern_service_id imap_svcs[] = { TERN_SVC_imap, TERN_SVC_imaps };
	if (listen_services(t, env, imap_svcs, 2, imap_handler, t->imap, err) < 0)
		return -1;
	env->dlv = t->dlv;
	env->smtp = t->smtp;
	env->queue = t->queue;
	queue_runner_start(t->queue);
	return 0;
}

/* The control plane of the distributed domain: needs the store and the server's TLS
 * fingerprint, and comes before every listener, so that the store's replication mode
 * (slave: shared rows refused) holds before the first request. -1 with err. */
static int ternd_cluster(ternd *t, tbuf *err)
{
	cluster_options co = { .st = t->st, .conf = &t->conf, .data_dir = t->o->data,
			       .node_name = t->node_name, .fingerprint = tern_server_fingerprint(t->srv) };
	char *e = NULL;
	if (cluster_open(&co, &t->cl, &e) < 0) {
		tbuf_appendf(err, "cluster: %s", e ? e : "cannot start the control plane");
		free(e);
		return -1;
	}
	tlog(TLOG_DEBUG, "Cluster role of node %s: %s", t->node_name,
	     cluster_role_name(cluster_get_role(t->cl)));
	return 0;
}

/* CalDAV/CardDAV on the web ports (http, http_alt, https, https_alt) with the [dav]
 * limits; -1 with err. */
static int ternd_dav(ternd *t, admin_env *env, tbuf *err)
{
	dav_env de = { .st = t->st, .conf = &t->conf, .auth_pool = t->auth_pool, .lockout = t->lockout,
		       .dlv = t->dlv, .cl = t->cl, .node_name = t->node_name,
		       .hostname = tern_conf_hostname(&t->conf),
		       .gssapi = t->gss_ok[TERND_GSS_HTTP] ? &t->gss[TERND_GSS_HTTP] : NULL };
	t->dav = dav_new(&de);
	http_limits lim = { (size_t)t->conf.dav_max_header_kb * 1024, (size_t)t->conf.dav_max_body_kb * 1024,
			    (int)t->conf.dav_keepalive_timeout, (int)t->conf.dav_request_timeout };
	t->dav_http = t->dav ? http_service_new(&lim, dav_handle, t->dav) : NULL;
	if (t->dav == NULL || t->dav_http == NULL) {
		tbuf_appendf(err, "out of memory");
		return -1;
	}
	static const tern_service_id svcs[] = { TERN_SVC_http, TERN_SVC_http_alt, TERN_SVC_https, TERN_SVC_https_alt };
	for (size_t i = 0; i < sizeof(svcs) / sizeof(svcs[0]); i++) {
		char *e = NULL;
		if (tern_server_listen(t->srv, svcs[i], http_service_handler(t->dav_http), &e) < 0) {
			tbuf_appendf(err, "%s", e ? e : "cannot listen on a DAV port");
			free(e);
			return -1;
		}
		env->served[svcs[i]] = t->conf.services[svcs[i]].enabled;
	}
	return 0;
}

/* Server, pools, admin API, listeners, signals; -1 with err. */
static int ternd_serve(ternd *t, admin_env *env, tbuf *err)
{
	const ternd_opts *o = t->o;
	char *e = NULL;
	t->srv = tern_server_new(&t->conf, o->data, &e);
	if (t->srv == NULL) {
		tbuf_appendf(err, "%s", e ? e : "cannot make the server");
		free(e);
		return -1;
	}
	tern_server_set_access_check(t->srv, access_check, t->st);
	if (ternd_cluster(t, err) < 0 || ternd_runtime(t, err) < 0)
		return -1;
	t->lockout = auth_lockout_new((unsigned)t->conf.security_lockout_threshold,
				      t->conf.security_lockout_seconds);
	directory_env de = { .st = t->st, .conf = &t->conf, .auth_pool = t->auth_pool, .data_dir = o->data };
	if (directory_start(&de, &t->dir, &e) < 0) {
		tbuf_appendf(err, "directory mapping: %s", e ? e : "cannot start");
		free(e);
		return -1;
	}
	ternd_gssapi(t);
	*env = (admin_env){ .st = t->st, .srv = t->srv, .conf = &t->conf, .auth_pool = t->auth_pool,
			    .lockout = t->lockout, .data_dir = o->data, .node_name = t->node_name,
			    .started = tern_now(), .cl = t->cl,
			    .gssapi = t->gss_ok[TERND_GSS_HTTP] ? &t->gss[TERND_GSS_HTTP] : NULL };
	env->served[TERN_SVC_admin] = t->conf.services[TERN_SVC_admin].enabled;
	if (t->lockout == NULL) {
		tbuf_appendf(err, "out of memory");
		return -1;
	}
	/* Mail listeners are bound before the admin socket opens, so "ready" means all. */
	if (ternd_mail(t, env, err) < 0 || ternd_dav(t, env, err) < 0)
		return -1;
	/* after the control plane and the mail services its hooks use */
	t->mh.st = t->st;
	t->mh.dlv = t->dlv;
	t->mh.queue = t->queue;
	t->mh.hostname = tern_conf_hostname(&t->conf);
	if (ternd_migrate_open(&t->mh, t->cl, &t->conf, &t->mig, err) < 0)
		return -1;
	env->mig = t->mig;
	t->adm = admin_new(env);
	http_limits lim = { (size_t)t->conf.http_max_header_bytes, (size_t)t->conf.http_max_body_bytes,
			    (int)t->conf.http_keepalive_timeout, (int)t->conf.http_request_timeout };
	t->http = http_service_new(&lim, admin_handle, t->adm);
	if (t->adm == NULL || t->http == NULL) {
		tbuf_appendf(err, "out of memory");
		return -1;
	}
	if (tern_server_listen(t->srv, TERN_SVC_admin, http_service_handler(t->http), &e) < 0) {
		tbuf_appendf(err, "%s", e ? e : "cannot listen on the admin port");
		free(e);
		return -1;
	}
	unlink(t->sock);   /* a stale socket of a dead ternd: the lock says none runs */
	if (tern_server_listen_unix(t->srv, t->sock, http_service_handler(t->http), &e) < 0) {
		tbuf_appendf(err, "%s", e ? e : "cannot listen on the admin socket");
		free(e);
		return -1;
	}
	tbuf lines = TBUF_INIT;
	tern_server_describe_listeners(t->srv, &lines);
	const char *p = tbuf_cstr(&lines);
	while (*p) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);
		if (n > 0)
			tlog(TLOG_DEBUG, "Listening on %.*s", n, p);
		p += n + (nl ? 1 : 0);
	}
	tbuf_free(&lines);
	ternd_srv = t->srv;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	t->hup = evsignal_new(tern_io_base(tern_server_io(t->srv, 0)), SIGHUP, on_hup, NULL);
	if (t->hup != NULL)
		event_add(t->hup, NULL);
	return 0;
}

static void ternd_close(ternd *t)
{
	ternd_srv = NULL;
	if (t->hup != NULL)
		event_free(t->hup);
	ternd_migrate_quiesce(&t->mh);   /* the queue goes now */
	queue_runner_free(&t->queue);
	pop3_server_free(&t->pop3);
	imap_server_free(&t->imap);
	smtp_server_free(&t->smtp);
	for (unsigned i = 0; i < t->ndns; i++)
		tern_dns_free(&t->dns[i]);
	free(t->dns);
	t->dns = NULL;
	tern_server_free(&t->srv);
	directory_stop(&t->dir);
	tern_pool_free(&t->auth_pool);
	tern_pool_free(&t->cpu_pool);
	tern_pool_free(&t->bulk_pool);
	/* no admin request uses it any more; its runner may still report through the
	 * deliverer; before the cluster and the store it uses */
	migrate_close(&t->mig);
	ternd_migrate_drain(&t->mh);
	deliverer_free(&t->dlv);
	http_service_free(&t->http);
	admin_free(&t->adm);
	http_service_free(&t->dav_http);
	dav_free(&t->dav);
	auth_lockout_free(&t->lockout);
	cluster_close(&t->cl);   /* no request uses it any more; before the store it writes */
	if (t->st != NULL)
		store_close(&t->st);
	if (t->sock[0] != '\0')
		unlink(t->sock);
	if (t->conf_loaded)
		tern_conf_free(&t->conf);
}

int ternd_run(const ternd_opts *o)
{
	ternd t;
	memset(&t, 0, sizeof(t));
	t.o = o;
	t.lock_fd = -1;
	tbuf err = TBUF_INIT;
	char logs[4096];
	snprintf(logs, sizeof(logs), "%s/logs", o->data);
	int w = snprintf(t.sock, sizeof(t.sock), "%s/admin.sock", o->data);
	if (w < 0 || w > 107) {
		t.sock[0] = '\0';
		tbuf_appendf(&err, "the admin socket path %s/admin.sock is longer than 107 bytes; "
			     "use a shorter --data path", o->data);
		int rc = startup_error(tbuf_cstr(&err));
		tbuf_free(&err);
		return rc;
	}
	if (make_dir(o->data, &err) < 0 || make_dir(logs, &err) < 0 || ternd_lock(o->data, &t.lock_fd, &err) < 0) {
		int rc = startup_error(tbuf_cstr(&err));
		tbuf_free(&err);
		return rc;
	}
	int ready_fd = o->foreground ? -1 : daemonise();
	ternd_lock_write_pid(t.lock_fd);
	admin_env env;
	if (ternd_open(&t, &err) < 0 || ternd_serve(&t, &env, &err) < 0) {
		int rc = startup_error(tbuf_cstr(&err));
		daemon_ready(ready_fd, o->data, 1);
		tbuf_free(&err);
		ternd_close(&t);
		tlog_close();
		return rc;
	}
	tlog(TLOG_DEBUG, "ternd %s started, node %s, pid %ld", TERN_VERSION, t.node_name, (long)getpid());
	daemon_ready(ready_fd, o->data, 0);
	tern_server_run(t.srv);
	tlog(TLOG_DEBUG, "ternd stopping");
	ternd_close(&t);
	tlog(TLOG_DEBUG, "ternd stopped");
	tlog_close();
	close(t.lock_fd);
	tbuf_free(&err);
	return 0;
}
