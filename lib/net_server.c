/* net_server.c - the server: I/O threads and their event bases, posting work to a thread,
 * and the orderly stop (drain) that SIGTERM starts.
 *
 * Stop sequence: tern_server_stop() writes a byte to a pipe watched by io 0. There every
 * I/O thread is told (tern_io_post) to close its listeners and call on_drain of its
 * connections; a timer on io 0 then waits until no connection remains or drain_timeout
 * has passed, and finally tells every thread to close what is left and leave its loop. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <event2/thread.h>
#include "net_int.h"

#define DRAIN_POLL_MS 50

static __thread tern_io *current_io;
static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
static int evthread_rc;

void net_error(char **error_r, const char *fmt, ...)
{
	tbuf b = TBUF_INIT;
	va_list ap;

	if (error_r == NULL)
		return;
	va_start(ap, fmt);
	tbuf_vappendf(&b, fmt, ap);
	va_end(ap);
	*error_r = tbuf_steal(&b);
}

void net_addr_format(const struct sockaddr *sa, char *ip, size_t n, unsigned *port_r)
{
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		if (inet_ntop(AF_INET, &in->sin_addr, ip, n) == NULL)
			snprintf(ip, n, "?");
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		if (inet_ntop(AF_INET6, &in6->sin6_addr, ip, n) == NULL)
			snprintf(ip, n, "?");
		port = ntohs(in6->sin6_port);
	} else {
		snprintf(ip, n, "local");
	}
	if (port_r != NULL)
		*port_r = port;
}

/* libevent must know about pthreads before the first base is made, once per process. */
static void evthread_init(void)
{
	evthread_rc = evthread_use_pthreads();
}

/* A byte on the stop pipe (io 0): begin the drain, once. */
static void server_stop_cb(evutil_socket_t fd, short what, void *arg);

static int server_make_io(tern_server *srv, char **error_r)
{
	srv->io = calloc(srv->nio, sizeof(*srv->io));
	if (srv->io == NULL) {
		net_error(error_r, "out of memory");
		return -1;
	}
	for (unsigned i = 0; i < srv->nio; i++) {
		tern_io *io = &srv->io[i];
		io->srv = srv;
		io->index = i;
		LIST_INIT(&io->conns);
		LIST_INIT(&io->listeners);
		io->base = event_base_new();
		if (io->base == NULL) {
			net_error(error_r, "cannot make an event base");
			return -1;
		}
	}
	if (pipe2(srv->stop_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		net_error(error_r, "cannot make the stop pipe: %s", strerror(errno));
		return -1;
	}
	srv->stop_ev = event_new(srv->io[0].base, srv->stop_pipe[0], EV_READ | EV_PERSIST,
				 server_stop_cb, srv);
	if (srv->stop_ev == NULL || event_add(srv->stop_ev, NULL) < 0) {
		net_error(error_r, "cannot watch the stop pipe");
		return -1;
	}
	return 0;
}

tern_server *tern_server_new(const tern_conf *conf, const char *data_dir, char **error_r)
{
	pthread_once(&evthread_once, evthread_init);
	/* A peer that vanished must give EPIPE on write, not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	if (evthread_rc != 0) {
		net_error(error_r, "libevent has no pthreads support");
		return NULL;
	}
	tern_server *srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		net_error(error_r, "out of memory");
		return NULL;
	}
	srv->stop_pipe[0] = srv->stop_pipe[1] = -1;
	pthread_mutex_init(&srv->lock, NULL);
	tbuf_init(&srv->bound);
	memcpy(srv->services, conf->services, sizeof(srv->services));
	srv->drain_timeout = (int)conf->server_drain_timeout;
	snprintf(srv->hostname, sizeof(srv->hostname), "%s", tern_conf_hostname(conf));
	if (srv->hostname[0] == '\0')
		snprintf(srv->hostname, sizeof(srv->hostname), "localhost");
	long n = conf->server_io_threads > 0 ? (long)conf->server_io_threads
					     : sysconf(_SC_NPROCESSORS_ONLN);
	srv->nio = n > 0 ? (unsigned)n : 1;

	if (server_make_io(srv, error_r) < 0 || net_tls_setup(srv, data_dir, error_r) < 0) {
		tern_server_free(&srv);
		return NULL;
	}
	return srv;
}

void tern_server_set_access_check(tern_server *srv, tern_access_fn fn, void *ctx)
{
	srv->access_fn = fn;
	srv->access_ctx = ctx;
}

/* Body of an I/O thread: run its base until the stop sequence ends it. */
static void *io_thread_main(void *arg)
{
	tern_io *io = arg;

	current_io = io;
	event_base_loop(io->base, EVLOOP_NO_EXIT_ON_EMPTY);
	current_io = NULL;
	return NULL;
}

int tern_server_run(tern_server *srv)
{
	int rc = 0;

	for (unsigned i = 0; i < srv->nio; i++) {
		int e = pthread_create(&srv->io[i].thread, NULL, io_thread_main, &srv->io[i]);
		if (e != 0) {
			tlog(TLOG_ERROR, "cannot start I/O thread %u: %s", i, strerror(e));
			/* The threads already started must still end: stop them the normal way. */
			tern_server_stop(srv);
			rc = -1;
			break;
		}
		srv->io[i].started = 1;
	}
	for (unsigned i = 0; i < srv->nio; i++) {
		if (srv->io[i].started) {
			pthread_join(srv->io[i].thread, NULL);
			srv->io[i].started = 0;
		}
	}
	return rc;
}

void tern_server_stop(tern_server *srv)
{
	char c = 's';
	int saved = errno;

	/* A full pipe already holds a stop request; nothing else to do. */
	if (write(srv->stop_pipe[1], &c, 1) < 0) {
		/* ignored: EAGAIN means a byte is already there */
	}
	errno = saved;
}

/* On each I/O thread at the end of the drain: close what is left and leave the loop. */
static void io_finish_job(void *arg)
{
	tern_io *io = arg;

	net_listen_close_io(io);
	net_conn_close_all(io);
	event_base_loopexit(io->base, NULL);
}

/* On each I/O thread at the start of the drain. */
static void io_drain_job(void *arg)
{
	tern_io *io = arg;

	net_listen_close_io(io);
	net_conn_drain_all(io);
}

/* io 0 timer: end the drain once every connection is gone or the time is up. */
static void drain_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	tern_server *srv = arg;
	unsigned left = atomic_load(&srv->total_conns);

	if (left > 0 && tern_mono_ms() < srv->drain_deadline_ms)
		return;
	if (left > 0)
		tlog(TLOG_WARNING, "Drain timeout: closing %u remaining connections", left);
	event_del(srv->drain_timer);
	for (unsigned i = 0; i < srv->nio; i++)
		tern_io_post(&srv->io[i], io_finish_job, &srv->io[i]);
}

static void server_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	tern_server *srv = arg;
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	if (atomic_exchange(&srv->draining, 1))
		return;
	tlog(TLOG_OPERATIONS, "Stopping: draining %u connections (up to %d s)",
	     atomic_load(&srv->total_conns), srv->drain_timeout);
	event_del(srv->stop_ev);
	for (unsigned i = 0; i < srv->nio; i++)
		tern_io_post(&srv->io[i], io_drain_job, &srv->io[i]);
	srv->drain_deadline_ms = tern_mono_ms() + (int64_t)srv->drain_timeout * 1000;
	struct timeval tv = { 0, DRAIN_POLL_MS * 1000 };
	srv->drain_timer = event_new(srv->io[0].base, -1, EV_PERSIST, drain_timer_cb, srv);
	if (srv->drain_timer == NULL || event_add(srv->drain_timer, &tv) < 0) {
		tlog(TLOG_ERROR, "cannot arm the drain timer; closing every connection now");
		for (unsigned i = 0; i < srv->nio; i++)
			tern_io_post(&srv->io[i], io_finish_job, &srv->io[i]);
	}
}

void tern_server_free(tern_server **srvp)
{
	tern_server *srv = *srvp;

	if (srv == NULL)
		return;
	*srvp = NULL;
	for (unsigned i = 0; srv->io != NULL && i < srv->nio; i++) {
		tern_io *io = &srv->io[i];
		net_listen_close_io(io);
		while (!LIST_EMPTY(&io->conns))
			net_conn_discard(LIST_FIRST(&io->conns));
	}
	if (srv->drain_timer != NULL)
		event_free(srv->drain_timer);
	if (srv->stop_ev != NULL)
		event_free(srv->stop_ev);
	for (unsigned i = 0; srv->io != NULL && i < srv->nio; i++) {
		if (srv->io[i].base != NULL)
			event_base_free(srv->io[i].base);
	}
	free(srv->io);
	for (int i = 0; i < 2; i++) {
		if (srv->stop_pipe[i] >= 0)
			close(srv->stop_pipe[i]);
	}
	while (srv->svcs != NULL) {
		net_service *s = srv->svcs;
		srv->svcs = s->next;
		free(s);
	}
	SSL_CTX_free(srv->ssl_ctx);
	SSL_CTX_free(srv->client_ctx);
	tbuf_free(&srv->bound);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}

const char *tern_server_fingerprint(const tern_server *srv)
{
	return srv->fingerprint;
}

unsigned tern_server_io_count(const tern_server *srv)
{
	return srv->nio;
}

tern_io *tern_server_io(tern_server *srv, unsigned i)
{
	return i < srv->nio ? &srv->io[i] : NULL;
}

unsigned tern_server_connections(const tern_server *srv, tern_service_id svc)
{
	if ((unsigned)svc > TERN_SVC_COUNT)
		return 0;
	return atomic_load(&((tern_server *)srv)->nconn[svc]);
}

void tern_server_describe_listeners(const tern_server *srv, tbuf *out)
{
	tern_server *s = (tern_server *)srv;

	pthread_mutex_lock(&s->lock);
	tbuf_append(out, s->bound.data, s->bound.len);
	pthread_mutex_unlock(&s->lock);
}

/* A posted call travelling to its thread. */
typedef struct io_job {
	void (*fn)(void *arg);
	void *arg;
} io_job;

static void io_job_cb(evutil_socket_t fd, short what, void *arg)
{
	io_job *job = arg;
	void (*fn)(void *) = job->fn;
	void *fnarg = job->arg;

	free(job);
	fn(fnarg);
}

void tern_io_post(tern_io *io, void (*fn)(void *arg), void *arg)
{
	static const struct timeval now = { 0, 0 };
	io_job *job = malloc(sizeof(*job));

	/* An allocation failure here would lose work silently: treat it as fatal. */
	if (job == NULL)
		abort();
	job->fn = fn;
	job->arg = arg;
	/* With evthread enabled, event_base_once locks the base and wakes its loop. */
	if (event_base_once(io->base, -1, EV_TIMEOUT, io_job_cb, job, &now) < 0) {
		tlog(TLOG_ERROR, "cannot post a job to I/O thread %u", io->index);
		free(job);
	}
}

struct event_base *tern_io_base(tern_io *io)
{
	return io->base;
}

tern_io *tern_io_current(void)
{
	return current_io;
}
