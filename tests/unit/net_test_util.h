/* net_test_util.h - the socket side of the protocol servers' unit tests (SMTP, POP3,
 * IMAP, DAV): the store, configuration, auth pool and lockout they share, a tern_server
 * listening on free loopback ports and run on its own thread, a user with a password,
 * and a plain client that dials, sends and reads reply lines (and an IMAP command's
 * response up to its tagged line). Include after store_test_util.h (cmocka
 * and the store). */
#ifndef TERN_NET_TEST_UTIL_H
#define TERN_NET_TEST_UTIL_H
#include <pthread.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include "auth.h"
#include "tern.h"

typedef struct nt_server {
	tern_server *srv;
	pthread_t thread;
} nt_server;

static void *nt_run_thread(void *arg)
{
	tern_server_run(((nt_server *)arg)->srv);
	return NULL;
}

/* Only svcs[0..n) enabled, on host ("" = every address) and ports port, port+1, ...;
 * 1 when one of the ports is taken (ns->srv is then NULL). */
static inline int nt_listen_on(nt_server *ns, tern_conf *conf, const char *dir, const char *host,
			       const tern_service_id *svcs, const tern_service_handler *const *handlers,
			       size_t n, unsigned port)
{
	char *err = NULL;

	for (int i = 0; i < TERN_SVC_COUNT; i++)
		conf->services[i].enabled = 0;
	for (size_t i = 0; i < n; i++) {
		tern_service_conf *s = &conf->services[svcs[i]];
		s->enabled = 1;
		s->nlisten = 1;
		snprintf(s->listen[0].host, sizeof(s->listen[0].host), "%s", host);
		s->listen[0].port = (uint16_t)(port + (unsigned)i);
	}
	ns->srv = tern_server_new(conf, dir, &err);
	if (ns->srv == NULL)
		fail_msg("tern_server_new: %s", err);
	for (size_t i = 0; i < n; i++)
		if (tern_server_listen(ns->srv, svcs[i], handlers[i], &err) < 0) {
			free(err);
			tern_server_free(&ns->srv);
			return 1;
		}
	return 0;
}

/* Listen as nt_listen_on on the first free run of n ports of 20 tried from a random base,
 * and run the server on its own thread. *port_r: the first port (svcs[i] has port + i).
 * 0, or -1 when the thread could not start. */
static inline int nt_start(nt_server *ns, tern_conf *conf, const char *dir, const char *host,
			   const tern_service_id *svcs, const tern_service_handler *const *handlers,
			   size_t n, unsigned *port_r)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	unsigned base = 30000 + (unsigned)(tv.tv_usec % 20000);
	int rc = 1;
	for (unsigned i = 0; i < 20 && rc == 1; i++) {
		*port_r = base + (unsigned)n * i;
		rc = nt_listen_on(ns, conf, dir, host, svcs, handlers, n, *port_r);
	}
	assert_int_equal(rc, 0);
	return pthread_create(&ns->thread, NULL, nt_run_thread, ns) == 0 ? 0 : -1;
}

/* Stop the server, wait for its thread and free it. */
static inline void nt_stop(nt_server *ns)
{
	tern_server_stop(ns->srv);
	pthread_join(ns->thread, NULL);
	tern_server_free(&ns->srv);
}

/* What the protocol servers' tests share besides their server: a temporary store, the
 * configuration conf_text, an auth pool of 2 threads and a lockout after 5 failures for
 * 10 minutes. */
typedef struct nt_fixture {
	test_store *ts;
	tern_conf conf;
	tern_pool *auth_pool;
	auth_lockout *lockout;
} nt_fixture;

static inline void nt_fixture_init(nt_fixture *f, const char *conf_text)
{
	char *err = NULL;

	f->ts = ts_new();
	if (tern_conf_load_string(&f->conf, conf_text, 0, &err) < 0)
		fail_msg("conf: %s", err);
	f->auth_pool = tern_pool_new("auth", 2, 64);
	f->lockout = auth_lockout_new(5, 600);
}

/* Free what nt_fixture_init made: the auth pool first (unless the caller freed it
 * already, before its server), then the lockout, the configuration and the store. */
static inline void nt_fixture_free(nt_fixture *f)
{
	tern_pool_free(&f->auth_pool);
	auth_lockout_free(&f->lockout);
	tern_conf_free(&f->conf);
	ts_free(&f->ts);
}

/* An enabled user name@example.test with password (and its SCRAM keys), homed on the node
 * home ("": this node); id_r may be NULL. */
static inline void nt_add_user_homed(store *st, const char *name, const char *password,
				     const char *home, uint8_t id_r[16])
{
	char *hash = NULL;
	Tern__User u = TERN__USER__INIT;
	Tern__ScramKeys scram = TERN__SCRAM_KEYS__INIT;
	store_sync_result r;

	assert_int_equal(auth_password_hash(password, &hash, &scram), 0);
	u.name = (char *)name;
	u.domain = (char *)"example.test";
	u.enabled = 1;
	u.password_hash = hash;
	u.scram = &scram;
	u.home = (char *)home;
	assert_int_equal(store_user_add(st, &u, STORE_SYNC, &r), STORE_OK);
	if (id_r != NULL)
		memcpy(id_r, r.res.id, 16);
	free(hash);
	auth_scram_clear(&scram);
}

/* An enabled user name@example.test of this node with password; id_r may be NULL. */
static inline void nt_add_user(store *st, const char *name, const char *password, uint8_t id_r[16])
{
	nt_add_user_homed(st, name, password, "", id_r);
}

/* A TCP connection to 127.0.0.1:port from the address `from` (NULL: any), reads timing
 * out after timeout_s seconds; rcvbuf != 0 sets a receive buffer that small. */
static inline int nt_dial(const char *from, unsigned port, int timeout_s, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct timeval tv = { timeout_s, 0 };

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (from != NULL) {
		inet_pton(AF_INET, from, &a.sin_addr);
		assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	}
	a.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static inline void nt_say(int fd, const char *s)
{
	size_t n = strlen(s);
	assert_int_equal(send(fd, s, n, 0), (ssize_t)n);
}

/* One line (CRLF dropped), read a byte at a time so that nothing after it is consumed;
 * "" at EOF or timeout. */
static inline void nt_hear(int fd, char *buf, size_t n)
{
	size_t len = 0;
	while (len + 1 < n) {
		ssize_t r = recv(fd, buf + len, 1, 0);
		if (r <= 0)
			break;
		if (buf[len] == '\n') {
			if (len > 0 && buf[len - 1] == '\r')
				len--;
			break;
		}
		len++;
	}
	buf[len] = '\0';
}

/* IMAP: the lines up to and including the one tagged `tag` into out (reset first), each
 * followed by '\n'; fails the test when the connection ends or no tagged line comes. */
static inline void nt_until_tag(int fd, const char *tag, tbuf *out)
{
	char line[4096];
	size_t tl = strlen(tag);

	tbuf_reset(out);
	for (int i = 0; i < 1000; i++) {
		nt_hear(fd, line, sizeof(line));
		if (line[0] == '\0')
			fail_msg("connection ended waiting for %s; so far: %s", tag, tbuf_cstr(out));
		tbuf_appendf(out, "%s\n", line);
		if (strncmp(line, tag, tl) == 0 && line[tl] == ' ')
			return;
	}
	fail_msg("no tagged reply %s", tag);
}

/* IMAP: send "tag text", collect the response into out (NULL: dropped) and fail the test
 * unless its tagged line is "tag status...". */
static inline void nt_imap_cmd(int fd, const char *tag, const char *text, const char *status, tbuf *out)
{
	char buf[8192];
	tbuf tmp = TBUF_INIT;
	tbuf *o = out ? out : &tmp;

	snprintf(buf, sizeof(buf), "%s %s\r\n", tag, text);
	nt_say(fd, buf);
	nt_until_tag(fd, tag, o);
	snprintf(buf, sizeof(buf), "\n%s %s", tag, status);
	tbuf all = TBUF_INIT;
	tbuf_appendf(&all, "\n%s", tbuf_cstr(o));
	if (strstr(tbuf_cstr(&all), buf) == NULL)
		fail_msg("%s %s: want %s, got:\n%s", tag, text, status, tbuf_cstr(o));
	tbuf_free(&all);
	tbuf_free(&tmp);
}

#endif
