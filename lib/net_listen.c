/* net_listen.c - listening sockets.
 *
 * Each configured address of a service gets one socket per I/O thread, all bound with
 * SO_REUSEPORT so that the kernel spreads new connections over the threads. Because
 * SO_REUSEPORT would also let a second server of the same user share the port silently, a
 * probe socket without it is bound first: a port already served elsewhere gives the usual
 * "Address already in use". Listeners are made disabled and enabled only once every
 * address of the call is bound, so a failing call leaves nothing behind. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "net_int.h"

#define LISTEN_BACKLOG 511
#define ACCEPT_RETRY_MS 500

/* Listeners made by one listen call, committed together. */
typedef struct listen_set {
	net_listener **v;
	size_t n, cap;
} listen_set;

static void listener_free(net_listener *l)
{
	if (l->retry_ev != NULL)
		event_free(l->retry_ev);
	if (l->lev != NULL)
		evconnlistener_free(l->lev);
	if (l->is_unix)
		unlink(l->local);
	free(l);
}

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	net_listener *l = arg;

	net_conn_accept(l->io, l->svc, fd, sa, (socklen_t)salen);
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	net_listener *l = arg;

	evconnlistener_enable(l->lev);
}

/* accept() failed for another reason than a vanished client (EMFILE, ENOBUFS): pause
 * this listener for a moment instead of spinning on it. */
static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
	net_listener *l = arg;
	struct timeval tv = { 0, ACCEPT_RETRY_MS * 1000 };

	tlog(TLOG_ERROR, "%s: accept on %s failed: %s", l->svc->name, l->local,
	     strerror(errno));
	evconnlistener_disable(lev);
	evtimer_add(l->retry_ev, &tv);
}

/* Wrap a bound, listening socket into a disabled listener on io. fd is closed on failure. */
static net_listener *listener_new(tern_io *io, net_service *svc, int fd, const char *local,
				  int is_unix)
{
	net_listener *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		close(fd);
		return NULL;
	}
	l->io = io;
	l->svc = svc;
	l->is_unix = is_unix;
	snprintf(l->local, sizeof(l->local), "%s", local);
	l->lev = evconnlistener_new(io->base, accept_cb, l,
				    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_THREADSAFE | LEV_OPT_DISABLED,
				    -1, fd);
	if (l->lev == NULL) {
		close(fd);
		free(l);
		return NULL;
	}
	l->retry_ev = evtimer_new(io->base, accept_retry_cb, l);
	if (l->retry_ev == NULL) {
		l->is_unix = 0;   /* the file is not ours to remove yet */
		listener_free(l);
		return NULL;
	}
	evconnlistener_set_error_cb(l->lev, accept_error_cb);
	return l;
}

static int set_push(listen_set *set, net_listener *l)
{
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 8;
		net_listener **v = realloc(set->v, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		set->v = v;
		set->cap = cap;
	}
	set->v[set->n++] = l;
	return 0;
}

/* A stream socket with the options every TCP listener of ours has. */
static int tcp_socket(int family, int reuseport)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    (family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Fail unless the address is free for us alone (see the file comment). */
static int probe_free(const struct sockaddr_storage *ss, socklen_t len)
{
	int fd = tcp_socket(ss->ss_family, 0);

	if (fd < 0)
		return -1;
	int rc = bind(fd, (const struct sockaddr *)ss, len);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

/* Bind one address on every I/O thread. 0 ok, 1 skipped (no IPv6 in this kernel and the
 * address was the implicit [::]), -1 with *error_r. */
static int listen_addr(tern_server *srv, net_service *svc, struct sockaddr_storage *ss,
		       socklen_t len, int optional, listen_set *set, char **error_r)
{
	char ip[NET_ADDR_STRLEN], local[128];
	unsigned port;

	net_addr_format((struct sockaddr *)ss, ip, sizeof(ip), &port);
	snprintf(local, sizeof(local), ss->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
	if (port != 0 && probe_free(ss, len) < 0) {
		if (optional && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL))
			return 1;
		goto fail;
	}
	for (unsigned i = 0; i < srv->nio; i++) {
		int fd = tcp_socket(ss->ss_family, 1);
		if (fd < 0 && i == 0 && optional && errno == EAFNOSUPPORT)
			return 1;
		if (fd < 0)
			goto fail;
		if (bind(fd, (struct sockaddr *)ss, len) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
			int e = errno;
			close(fd);
			errno = e;
			goto fail;
		}
		if (port == 0) {
			/* An ephemeral port: every thread's socket must share the one we got. */
			socklen_t l = len;
			if (getsockname(fd, (struct sockaddr *)ss, &l) < 0) {
				close(fd);
				goto fail;
			}
			net_addr_format((struct sockaddr *)ss, ip, sizeof(ip), &port);
			snprintf(local, sizeof(local),
				 ss->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
		}
		net_listener *l = listener_new(&srv->io[i], svc, fd, local, 0);
		if (l == NULL || set_push(set, l) < 0) {
			if (l != NULL)
				listener_free(l);
			errno = ENOMEM;
			goto fail;
		}
	}
	return 0;
fail:
	net_error(error_r, "%s: cannot listen on %s: %s", svc->name, local, strerror(errno));
	return -1;
}

/* Parse a numeric listen host ("" = none given) with port into ss. */
static int parse_host(const char *host, unsigned port, struct sockaddr_storage *ss,
		      socklen_t *len_r)
{
	char buf[64];
	size_t n = strlen(host);

	memset(ss, 0, sizeof(*ss));
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		snprintf(buf, sizeof(buf), "%.*s", (int)(n - 2), host + 1);
		host = buf;
	}
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*len_r = sizeof(*in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len_r = sizeof(*in6);
		return 0;
	}
	return -1;
}

static net_service *service_new(const char *name, tern_service_id id, tern_tls_mode tls,
				const tern_service_handler *h)
{
	net_service *svc = calloc(1, sizeof(*svc));

	if (svc == NULL)
		return NULL;
	svc->h = *h;
	svc->id = id;
	svc->tls = tls;
	snprintf(svc->name, sizeof(svc->name), "%s", name);
	return svc;
}

/* Make the listeners of a successful call live: attach them to their threads, record
 * them for describe_listeners and start accepting. Takes ownership of svc. */
static void commit(tern_server *srv, net_service *svc, listen_set *set)
{
	pthread_mutex_lock(&srv->lock);
	svc->next = srv->svcs;
	srv->svcs = svc;
	for (size_t i = 0; i < set->n; i++) {
		net_listener *l = set->v[i];
		LIST_INSERT_HEAD(&l->io->listeners, l, link);
		/* Every thread has the same addresses: describe each address once. */
		if (l->io->index == 0)
			tbuf_appendf(&srv->bound, "%s %s\n", svc->name, l->local);
		evconnlistener_enable(l->lev);
	}
	pthread_mutex_unlock(&srv->lock);
}

static void set_discard(listen_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		listener_free(set->v[i]);
	free(set->v);
	set->v = NULL;
	set->n = set->cap = 0;
}

int tern_server_listen(tern_server *srv, tern_service_id id, const tern_service_handler *h,
		       char **error_r)
{
	if ((unsigned)id >= TERN_SVC_COUNT) {
		net_error(error_r, "unknown service %d", (int)id);
		return -1;
	}
	const tern_service_conf *sc = &srv->services[id];
	if (!sc->enabled)
		return 0;
	if (atomic_load(&srv->draining)) {
		net_error(error_r, "%s: the server is stopping", sc->name);
		return -1;
	}
	net_service *svc = service_new(sc->name, id, sc->tls, h);
	if (svc == NULL) {
		net_error(error_r, "%s: out of memory", sc->name);
		return -1;
	}
	svc->max_connections = sc->max_connections;
	snprintf(svc->ipgroup, sizeof(svc->ipgroup), "%s", sc->allow_ipgroup);

	listen_set set = { NULL, 0, 0 };
	for (unsigned i = 0; i < sc->nlisten; i++) {
		const tern_listen_addr *la = &sc->listen[i];
		struct sockaddr_storage ss;
		socklen_t len;
		int rc;

		if (la->host[0] == '\0') {
			parse_host("0.0.0.0", la->port, &ss, &len);
			rc = listen_addr(srv, svc, &ss, len, 0, &set, error_r);
			if (rc >= 0) {
				parse_host("::", la->port, &ss, &len);
				rc = listen_addr(srv, svc, &ss, len, 1, &set, error_r);
			}
		} else if (parse_host(la->host, la->port, &ss, &len) < 0) {
			net_error(error_r, "%s: bad listen address %s", sc->name, la->host);
			rc = -1;
		} else {
			rc = listen_addr(srv, svc, &ss, len, 0, &set, error_r);
		}
		if (rc < 0) {
			set_discard(&set);
			free(svc);
			return -1;
		}
	}
	commit(srv, svc, &set);
	free(set.v);
	return 0;
}

/* Remove a stale socket file left by a server that is gone; refuse when one still
 * answers or when the path is something else than a socket. */
static int unix_clear_stale(const struct sockaddr_un *sun, char **error_r)
{
	struct stat st;

	if (lstat(sun->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : (net_error(error_r, "%s: %s", sun->sun_path,
						       strerror(errno)), -1);
	if (!S_ISSOCK(st.st_mode)) {
		net_error(error_r, "cannot listen on %s: exists and is not a socket", sun->sun_path);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0) {
		close(fd);
		net_error(error_r, "cannot listen on %s: Address already in use", sun->sun_path);
		return -1;
	}
	if (fd >= 0)
		close(fd);
	if (unlink(sun->sun_path) < 0 && errno != ENOENT) {
		net_error(error_r, "cannot remove stale %s: %s", sun->sun_path, strerror(errno));
		return -1;
	}
	return 0;
}

int tern_server_listen_unix(tern_server *srv, const char *path, const tern_service_handler *h,
			    char **error_r)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		net_error(error_r, "cannot listen on %s: the path is %zu bytes, the limit is %zu",
			  path, strlen(path), sizeof(sun.sun_path) - 1);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (unix_clear_stale(&sun, error_r) < 0)
		return -1;

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		net_error(error_r, "cannot listen on %s: %s", path, strerror(errno));
		return -1;
	}
	/* chmod between bind and listen: nobody can connect before the mode is 0600. */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		net_error(error_r, "cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (chmod(path, 0600) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		net_error(error_r, "cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	net_service *svc = service_new("unix", TERN_SVC_COUNT, TERN_TLS_NONE, h);
	net_listener *l = svc != NULL ? listener_new(&srv->io[0], svc, fd, path, 1) : NULL;
	listen_set set = { NULL, 0, 0 };
	if (l == NULL || set_push(&set, l) < 0) {
		net_error(error_r, "cannot listen on %s: out of memory", path);
		if (l != NULL)
			listener_free(l);
		else if (svc == NULL)
			close(fd);
		unlink(path);
		free(svc);
		return -1;
	}
	commit(srv, svc, &set);
	free(set.v);
	return 0;
}

void net_listen_close_io(tern_io *io)
{
	tern_server *srv = io->srv;

	pthread_mutex_lock(&srv->lock);
	while (!LIST_EMPTY(&io->listeners)) {
		net_listener *l = LIST_FIRST(&io->listeners);
		LIST_REMOVE(l, link);
		listener_free(l);
	}
	pthread_mutex_unlock(&srv->lock);
}
