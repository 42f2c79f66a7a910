/* test_lib_net.c - the listener/connection layer against real client sockets: plain echo,
 * implicit TLS (fingerprint pinned), STARTTLS without pipelined plaintext, connection
 * limit, IP group refusal, TLS garbage, idle timeout, Unix socket, and the drain. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "tern.h"

#define FLOOD_BYTES (6u * 1024 * 1024)

enum { P_PLAIN, P_TLS, P_STARTTLS, P_LIMIT, P_ACL, P_IDLE, P_COUNT };

static struct {
	char dir[64];
	char sock_path[128];
	tern_conf conf;
	tern_server *srv;
	pthread_t thread;
	int run_rc;
	unsigned port[P_COUNT];
	pthread_mutex_t lock;
	tbuf seen;               /* every line a session received, "\n"-separated */
	int opened, closed, drained, access_calls;
	size_t flood_pending;
	int job_on_io;
	tern_conn *stay;         /* a session that ignores on_drain */
} T = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- the echo service ---- */

static void *echo_open(tern_conn *c, void *ctx)
{
	pthread_mutex_lock(&T.lock);
	T.opened++;
	pthread_mutex_unlock(&T.lock);
	tern_conn_printf(c, "HELLO %s\r\n", tern_conn_is_tls(c) ? "tls" : "plain");
	return c;   /* any non-NULL session */
}

/* Back on the connection's I/O thread after the "job". */
static void job_done(void *arg)
{
	tern_conn *c = arg;

	pthread_mutex_lock(&T.lock);
	T.job_on_io = tern_io_current() == tern_conn_io(c);
	pthread_mutex_unlock(&T.lock);
	tern_conn_write(c, "DONE\r\n", 6);
	tern_conn_resume(c);
}

static void *job_thread(void *arg)
{
	tern_conn *c = arg;

	usleep(100000);
	tern_io_post(tern_conn_io(c), job_done, c);
	return NULL;
}

static void echo_read(tern_conn *c, void *session)
{
	size_t n;
	char *line;

	while ((line = evbuffer_readln(tern_conn_input(c), &n, EVBUFFER_EOL_CRLF)) != NULL) {
		pthread_mutex_lock(&T.lock);
		tbuf_appendf(&T.seen, "%s\n", line);
		pthread_mutex_unlock(&T.lock);
		if (strcmp(line, "STARTTLS") == 0) {
			tern_conn_write(c, "OK\r\n", 4);
			free(line);
			/* No cmocka assert here: this runs on an I/O thread. */
			if (tern_conn_starttls(c) < 0)
				tern_conn_close(c);
			return;   /* the rest of the plaintext input is gone */
		}
		if (strcmp(line, "FLOOD") == 0) {
			/* More output than the high-water mark, in one go. */
			static char chunk[65536];
			memset(chunk, 'x', sizeof(chunk));
			for (size_t i = 0; i < FLOOD_BYTES / sizeof(chunk); i++)
				tern_conn_write(c, chunk, sizeof(chunk));
			tern_conn_write(c, "\r\nEND\r\n", 7);
			pthread_mutex_lock(&T.lock);
			T.flood_pending = tern_conn_output_pending(c);
			pthread_mutex_unlock(&T.lock);
			free(line);
			continue;
		}
		if (strcmp(line, "JOB") == 0) {
			/* As a worker-pool job would: pause, finish elsewhere, post back. */
			pthread_t t;
			tern_conn_pause(c);
			free(line);
			if (pthread_create(&t, NULL, job_thread, c) != 0)
				tern_conn_close(c);
			else
				pthread_detach(t);
			return;
		}
		if (strcmp(line, "STAY") == 0) {
			pthread_mutex_lock(&T.lock);
			T.stay = c;
			pthread_mutex_unlock(&T.lock);
		}
		if (strcmp(line, "QUIT") == 0) {
			tern_conn_write(c, "BYE\r\n", 5);
			tern_conn_close(c);
			free(line);
			return;
		}
		tern_conn_printf(c, "ECHO %s%s\r\n", line, tern_conn_is_tls(c) ? " (tls)" : "");
		free(line);
	}
}

static void echo_close(tern_conn *c, void *session)
{
	pthread_mutex_lock(&T.lock);
	T.closed++;
	pthread_mutex_unlock(&T.lock);
}

static void echo_drain(tern_conn *c, void *session)
{
	pthread_mutex_lock(&T.lock);
	T.drained++;
	int stay = c == T.stay;
	pthread_mutex_unlock(&T.lock);
	if (stay)
		return;
	tern_conn_write(c, "BYE draining\r\n", 14);
	tern_conn_close(c);
}

static int deny_all(const char *ipgroup, const struct sockaddr *peer, void *ctx)
{
	pthread_mutex_lock(&T.lock);
	T.access_calls++;
	pthread_mutex_unlock(&T.lock);
	return strcmp(ipgroup, "office") == 0 && peer->sa_family == AF_INET ? 0 : 1;
}

/* ---- client helpers ---- */

/* A client socket; rcvbuf > 0 caps its receive buffer (and so the TCP window). */
static int client_connect_buf(unsigned port, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { 5, 0 };

	assert_true(fd >= 0);
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

static int client_connect(unsigned port)
{
	return client_connect_buf(port, 0);
}

/* Read one line byte by byte (so no byte after it is consumed). Returns its length without
 * CRLF, 0 on EOF/reset before any byte, -1 on timeout. */
static int read_line(int fd, char *buf, size_t n)
{
	size_t len = 0;

	while (len + 1 < n) {
		ssize_t r = recv(fd, buf + len, 1, 0);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return -1;
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
	return (int)len;
}

/* 1 when the server closed (EOF or reset) without sending a byte; 0 when it sent data;
 * -1 on timeout. */
static int closed_silently(int fd)
{
	char b;
	ssize_t r = recv(fd, &b, 1, 0);

	if (r == 0 || (r < 0 && errno == ECONNRESET))
		return 1;
	return r > 0 ? 0 : -1;
}

static void send_all(int fd, const char *s)
{
	assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* TLS over fd; checks that the server certificate is the one with our fingerprint. */
static SSL *tls_connect(int fd, SSL_CTX **ctx_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char hex[65];

	assert_non_null(ctx);
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "localhost");
	assert_int_equal(SSL_connect(ssl), 1);
	X509 *peer = SSL_get1_peer_certificate(ssl);
	assert_non_null(peer);
	assert_int_equal(X509_digest(peer, EVP_sha256(), md, &mdlen), 1);
	X509_free(peer);
	tern_hex(md, mdlen, hex);
	assert_string_equal(hex, tern_server_fingerprint(T.srv));
	assert_true(SSL_version(ssl) >= TLS1_2_VERSION);
	*ctx_r = ctx;
	return ssl;
}

static int tls_read_line(SSL *ssl, char *buf, size_t n)
{
	size_t len = 0;

	while (len + 1 < n) {
		if (SSL_read(ssl, buf + len, 1) <= 0)
			break;
		if (buf[len] == '\n') {
			if (len > 0 && buf[len - 1] == '\r')
				len--;
			break;
		}
		len++;
	}
	buf[len] = '\0';
	return (int)len;
}

static void tls_close(SSL *ssl, SSL_CTX *ctx, int fd)
{
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
}

/* Wait (up to 5 s) until the server counts n connections of svc. */
static void wait_connections(tern_service_id svc, unsigned n)
{
	for (int i = 0; i < 500 && tern_server_connections(T.srv, svc) != n; i++)
		usleep(10000);
	assert_int_equal(tern_server_connections(T.srv, svc), n);
}

/* ---- server set-up ---- */

static void *run_thread(void *arg)
{
	T.run_rc = tern_server_run(T.srv);
	return NULL;
}

static const tern_service_id svc_of[P_COUNT] = {
	[P_PLAIN] = TERN_SVC_http, [P_TLS] = TERN_SVC_smtps, [P_STARTTLS] = TERN_SVC_smtp,
	[P_LIMIT] = TERN_SVC_pop3, [P_ACL] = TERN_SVC_imap, [P_IDLE] = TERN_SVC_ldap,
};

/* Make the server on ports base..base+P_COUNT-1; 0 ok, 1 when a port is busy. */
static int start_on(unsigned base)
{
	tern_service_handler h = { .on_open = echo_open, .on_read = echo_read,
				   .on_close = echo_close, .on_drain = echo_drain };
	char *err = NULL;

	for (int i = 0; i < TERN_SVC_COUNT; i++)
		T.conf.services[i].enabled = 0;
	for (int p = 0; p < P_COUNT; p++) {
		tern_service_conf *s = &T.conf.services[svc_of[p]];
		T.port[p] = base + (unsigned)p;
		s->enabled = 1;
		s->nlisten = 1;
		/* The idle service listens on all addresses ("" = 0.0.0.0 and [::]). */
		snprintf(s->listen[0].host, sizeof(s->listen[0].host), "%s",
			 p == P_IDLE ? "" : "127.0.0.1");
		s->listen[0].port = (uint16_t)T.port[p];
	}
	T.conf.services[TERN_SVC_pop3].max_connections = 1;
	snprintf(T.conf.services[TERN_SVC_imap].allow_ipgroup, 64, "office");

	T.srv = tern_server_new(&T.conf, T.dir, &err);
	if (T.srv == NULL)
		fail_msg("tern_server_new: %s", err);
	assert_int_equal(tern_server_io_count(T.srv), 2);
	tern_server_set_access_check(T.srv, deny_all, NULL);
	for (int p = 0; p < P_COUNT; p++) {
		h.idle_timeout = p == P_IDLE ? 1 : 0;
		if (tern_server_listen(T.srv, svc_of[p], &h, &err) < 0) {
			int busy = strstr(err, "Address already in use") != NULL;
			if (!busy)
				fail_msg("listen: %s", err);
			free(err);
			tern_server_free(&T.srv);
			return 1;
		}
	}
	return 0;
}

static int group_setup(void **state)
{
	char *err = NULL;

	snprintf(T.dir, sizeof(T.dir), "/tmp/tern-net-XXXXXX");
	if (mkdtemp(T.dir) == NULL)
		return -1;
	if (tern_conf_load_string(&T.conf, "", 0, &err) < 0)
		return -1;
	T.conf.server_io_threads = 2;
	T.conf.server_drain_timeout = 2;
	uint32_t r;
	tern_random(&r, sizeof(r));
	for (int attempt = 0; attempt < 10; attempt++) {
		if (start_on(30000 + (r + (unsigned)attempt * 977u) % 9990u) == 0)
			break;
	}
	if (T.srv == NULL)
		return -1;
	snprintf(T.sock_path, sizeof(T.sock_path), "%s/test.sock", T.dir);
	tern_service_handler h = { .on_open = echo_open, .on_read = echo_read,
				   .on_close = echo_close, .on_drain = echo_drain };
	if (tern_server_listen_unix(T.srv, T.sock_path, &h, &err) < 0)
		fail_msg("listen_unix: %s", err);
	return pthread_create(&T.thread, NULL, run_thread, NULL) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[128];

	tern_server_free(&T.srv);
	tern_conf_free(&T.conf);
	tbuf_free(&T.seen);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T.dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- tests ---- */

static void test_certificate_files(void **state)
{
	char path[160];
	struct stat st;

	snprintf(path, sizeof(path), "%s/ssl", T.dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/ssl/server.key", T.dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	const char *fp = tern_server_fingerprint(T.srv);
	assert_int_equal(strlen(fp), 64);
	assert_int_equal(strspn(fp, "0123456789abcdef"), 64);

	/* The self-signed certificate names localhost and 127.0.0.1 and lasts ten years. */
	snprintf(path, sizeof(path), "%s/ssl/server.crt", T.dir);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	assert_int_equal(X509_get_signature_nid(x), NID_sha256WithRSAEncryption);
	int days = 0, secs = 0;
	assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)), 1);
	assert_true(days > 9 * 365 && days <= 3660);
	X509_free(x);
}

static void test_plain_echo(void **state)
{
	char line[256];
	int fd = client_connect(T.port[P_PLAIN]);

	assert_true(read_line(fd, line, sizeof(line)) > 0);
	assert_string_equal(line, "HELLO plain");
	send_all(fd, "one\r\ntwo\r\n");
	read_line(fd, line, sizeof(line));
	assert_string_equal(line, "ECHO one");
	read_line(fd, line, sizeof(line));
	assert_string_equal(line, "ECHO two");
	send_all(fd, "QUIT\r\n");
	read_line(fd, line, sizeof(line));
	assert_string_equal(line, "BYE");
	assert_int_equal(closed_silently(fd), 1);
	close(fd);
	wait_connections(TERN_SVC_http, 0);
}

/* A session that writes far more than the peer reads: the bytes are all delivered, in
 * order, and input sent meanwhile is handled once the output has drained. */
static void test_output_backpressure(void **state)
{
	static char buf[65536];
	char line[256];
	size_t got = 0;
	int fd = client_connect_buf(T.port[P_PLAIN], 65536);

	read_line(fd, line, sizeof(line));
	assert_string_equal(line, "HELLO plain");
	send_all(fd, "FLOOD\r\n");
	usleep(100000);
	send_all(fd, "PING\r\n");
	usleep(200000);
	/* Reading is suspended while the flood waits for us. */
	pthread_mutex_lock(&T.lock);
	assert_null(strstr(tbuf_cstr(&T.seen), "PING"));
	pthread_mutex_unlock(&T.lock);
	while (got < FLOOD_BYTES) {
		ssize_t r = recv(fd, buf, sizeof(buf) < FLOOD_BYTES - got ? sizeof(buf)
									  : FLOOD_BYTES - got, 0);
		assert_true(r > 0);
		assert_int_equal(memchr(buf, '\r', (size_t)r), NULL);
		got += (size_t)r;
	}
	read_line(fd, line, sizeof(line));
	assert_string_equal(line, "");
	read_line(fd, line, sizeof(line));
	assert_string_equal(line, "END");
	read_line(fd, line, sizeof(line));
	assert_string_equal(line, "ECHO PING");
	pthread_mutex_lock(&T.lock);
	assert_true(T.flood_pending >= FLOOD_BYTES);
	pthread_mutex_unlock(&T.lock);
	close(fd);
	wait_connections(TERN_SVC_http, 0);
}

/* Input that arrives while the session is paused is delivered on resume, in order. */
static void test_pause_resume(void **state)
{
	char line[256];
	int fd = client_connect(T.port[P_PLAIN]);

	read_line(fd, line, sizeof(line));
	assert_string_equal(line, "HELLO plain");
	send_all(fd, "JOB\r\nAFTER\r\n");
	read_line(fd, line, sizeof(line));
	assert_string_equal(line, "DONE");
	read_line(fd, line, sizeof(line));
	assert_string_equal(line, "ECHO AFTER");
	pthread_mutex_lock(&T.lock);
	assert_int_equal(T.job_on_io, 1);
	pthread_mutex_unlock(&T.lock);
	close(fd);
	wait_connections(TERN_SVC_http, 0);
}

static void test_tls_echo(void **state)
{
	char line[256];
	SSL_CTX *ctx;
	int fd = client_connect(T.port[P_TLS]);
	SSL *ssl = tls_connect(fd, &ctx);

	tls_read_line(ssl, line, sizeof(line));
	assert_string_equal(line, "HELLO tls");
	assert_int_equal(SSL_write(ssl, "secret\r\n", 8), 8);
	tls_read_line(ssl, line, sizeof(line));
	assert_string_equal(line, "ECHO secret (tls)");
	tls_close(ssl, ctx, fd);
	wait_connections(TERN_SVC_smtps, 0);
}

static void test_starttls_drops_pipelined(void **state)
{
	char line[256];
	SSL_CTX *ctx;
	int fd = client_connect(T.port[P_STARTTLS]);

	read_line(fd, line, sizeof(line));
	assert_string_equal(line, "HELLO plain");
	send_all(fd, "STARTTLS\r\nPIPELINED\r\n");
	read_line(fd, line, sizeof(line));
	assert_string_equal(line, "OK");
	SSL *ssl = tls_connect(fd, &ctx);
	assert_int_equal(SSL_write(ssl, "AFTER\r\n", 7), 7);
	tls_read_line(ssl, line, sizeof(line));
	assert_string_equal(line, "ECHO AFTER (tls)");
	tls_close(ssl, ctx, fd);
	wait_connections(TERN_SVC_smtp, 0);
	pthread_mutex_lock(&T.lock);
	assert_null(strstr(tbuf_cstr(&T.seen), "PIPELINED"));
	assert_non_null(strstr(tbuf_cstr(&T.seen), "STARTTLS\nAFTER\n"));
	pthread_mutex_unlock(&T.lock);
}

static void test_max_connections(void **state)
{
	char line[256];
	int a = client_connect(T.port[P_LIMIT]);

	read_line(a, line, sizeof(line));
	assert_string_equal(line, "HELLO plain");
	int b = client_connect(T.port[P_LIMIT]);
	assert_int_equal(closed_silently(b), 1);
	close(b);
	assert_int_equal(tern_server_connections(T.srv, TERN_SVC_pop3), 1);
	close(a);
	wait_connections(TERN_SVC_pop3, 0);
	int c = client_connect(T.port[P_LIMIT]);
	read_line(c, line, sizeof(line));
	assert_string_equal(line, "HELLO plain");
	close(c);
	wait_connections(TERN_SVC_pop3, 0);
}

static void test_access_refused(void **state)
{
	int fd = client_connect(T.port[P_ACL]);

	assert_int_equal(closed_silently(fd), 1);
	close(fd);
	pthread_mutex_lock(&T.lock);
	assert_true(T.access_calls >= 1);
	pthread_mutex_unlock(&T.lock);
	assert_int_equal(tern_server_connections(T.srv, TERN_SVC_imap), 0);
}

static void test_tls_garbage(void **state)
{
	unsigned char junk[512];
	char b[256];
	int fd = client_connect(T.port[P_TLS]);

	tern_random(junk, sizeof(junk));
	junk[0] = 0x47;   /* not a TLS record type */
	assert_int_equal(send(fd, junk, sizeof(junk), MSG_NOSIGNAL), (ssize_t)sizeof(junk));
	/* The server may send an alert first; it must then close. */
	ssize_t r;
	while ((r = recv(fd, b, sizeof(b), 0)) > 0)
		;
	assert_true(r == 0 || errno == ECONNRESET);
	close(fd);
	wait_connections(TERN_SVC_smtps, 0);
	test_tls_echo(state);
}

static void test_idle_timeout(void **state)
{
	char line[256];
	int fd = client_connect(T.port[P_IDLE]);
	int64_t t0 = tern_mono_ms();

	read_line(fd, line, sizeof(line));
	assert_string_equal(line, "HELLO plain");
	assert_int_equal(closed_silently(fd), 1);
	int64_t waited = tern_mono_ms() - t0;
	assert_true(waited >= 900 && waited < 4000);
	close(fd);
	wait_connections(TERN_SVC_ldap, 0);
}

static void test_unix_socket(void **state)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	char line[256], *err = NULL;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct timeval tv = { 5, 0 };

	assert_int_equal(stat(T.sock_path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_true(strlen(T.sock_path) < sizeof(sun.sun_path));
	memcpy(sun.sun_path, T.sock_path, strlen(T.sock_path) + 1);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	read_line(fd, line, sizeof(line));
	assert_string_equal(line, "HELLO plain");
	send_all(fd, "ping\r\n");
	read_line(fd, line, sizeof(line));
	assert_string_equal(line, "ECHO ping");
	close(fd);
	wait_connections(TERN_SVC_COUNT, 0);

	/* A second server on the same live socket, and a path over the limit, are refused. */
	tern_service_handler h = { .on_open = echo_open, .on_read = echo_read,
				   .on_close = echo_close };
	assert_int_equal(tern_server_listen_unix(T.srv, T.sock_path, &h, &err), -1);
	assert_non_null(strstr(err, "already in use"));
	free(err);
	char longp[200];
	memset(longp, 'x', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(tern_server_listen_unix(T.srv, longp, &h, &err), -1);
	assert_non_null(strstr(err, "limit"));
	free(err);
}

static void test_listen_busy_and_describe(void **state)
{
	tern_service_handler h = { .on_open = echo_open, .on_read = echo_read,
				   .on_close = echo_close };
	char *err = NULL, want[64];
	tbuf out = TBUF_INIT;

	tern_server_describe_listeners(T.srv, &out);
	snprintf(want, sizeof(want), "http 127.0.0.1:%u\n", T.port[P_PLAIN]);
	assert_non_null(strstr(tbuf_cstr(&out), want));
	snprintf(want, sizeof(want), "smtps 127.0.0.1:%u\n", T.port[P_TLS]);
	assert_non_null(strstr(tbuf_cstr(&out), want));
	snprintf(want, sizeof(want), "ldap 0.0.0.0:%u\n", T.port[P_IDLE]);
	assert_non_null(strstr(tbuf_cstr(&out), want));
	/* [::] too, when this kernel has IPv6. */
	int s6 = socket(AF_INET6, SOCK_STREAM, 0);
	if (s6 >= 0) {
		snprintf(want, sizeof(want), "ldap [::]:%u\n", T.port[P_IDLE]);
		assert_non_null(strstr(tbuf_cstr(&out), want));
		close(s6);
	}
	/* One line per address, not per I/O thread. */
	snprintf(want, sizeof(want), "http 127.0.0.1:%u\n", T.port[P_PLAIN]);
	const char *first = strstr(tbuf_cstr(&out), want);
	assert_null(strstr(first + 1, want));
	tbuf_free(&out);

	/* The same service again: its port is taken (by us), the error names it. */
	assert_int_equal(tern_server_listen(T.srv, TERN_SVC_http, &h, &err), -1);
	snprintf(want, sizeof(want), "http: cannot listen on 127.0.0.1:%u: Address already in use",
		 T.port[P_PLAIN]);
	assert_string_equal(err, want);
	free(err);
	/* A disabled service is skipped. */
	assert_int_equal(tern_server_listen(T.srv, TERN_SVC_admin, &h, &err), 0);
}

static void test_stop_drains(void **state)
{
	char line[256];
	int fd = client_connect(T.port[P_PLAIN]);
	int stay = client_connect(T.port[P_STARTTLS]);   /* still plain */

	read_line(fd, line, sizeof(line));
	assert_string_equal(line, "HELLO plain");
	read_line(stay, line, sizeof(line));
	assert_string_equal(line, "HELLO plain");
	send_all(stay, "STAY\r\n");
	read_line(stay, line, sizeof(line));
	assert_string_equal(line, "ECHO STAY");
	wait_connections(TERN_SVC_http, 1);
	int64_t t0 = tern_mono_ms();
	tern_server_stop(T.srv);
	/* A session that answers on_drain says goodbye at once. */
	read_line(fd, line, sizeof(line));
	assert_string_equal(line, "BYE draining");
	assert_int_equal(closed_silently(fd), 1);
	close(fd);
	/* One that ignores it is closed at the drain timeout (2 s). */
	assert_int_equal(closed_silently(stay), 1);
	assert_true(tern_mono_ms() - t0 >= 1500);
	close(stay);
	assert_int_equal(pthread_join(T.thread, NULL), 0);
	assert_int_equal(T.run_rc, 0);
	assert_int_equal(T.drained, 2);
	assert_int_equal(T.opened, T.closed);
	assert_int_equal(tern_server_connections(T.srv, TERN_SVC_smtp), 0);
	/* Listeners are gone. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)T.port[P_PLAIN]) };
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(connect(s, (struct sockaddr *)&sin, sizeof(sin)), -1);
	close(s);
	assert_int_equal(access(T.sock_path, F_OK), -1);
}

/* tern_io_post runs the function on the given I/O thread. */
static pthread_mutex_t post_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t post_cond = PTHREAD_COND_INITIALIZER;
static tern_io *post_seen;
static int post_done;

static void post_fn(void *arg)
{
	pthread_mutex_lock(&post_lock);
	post_seen = tern_io_current();
	post_done = 1;
	pthread_cond_signal(&post_cond);
	pthread_mutex_unlock(&post_lock);
}

static void test_io_post(void **state)
{
	tern_io *io = tern_server_io(T.srv, 1);

	assert_null(tern_io_current());
	tern_io_post(io, post_fn, NULL);
	pthread_mutex_lock(&post_lock);
	while (!post_done)
		pthread_cond_wait(&post_cond, &post_lock);
	pthread_mutex_unlock(&post_lock);
	assert_ptr_equal(post_seen, io);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_certificate_files),
		cmocka_unit_test(test_plain_echo),
		cmocka_unit_test(test_output_backpressure),
		cmocka_unit_test(test_pause_resume),
		cmocka_unit_test(test_tls_echo),
		cmocka_unit_test(test_starttls_drops_pipelined),
		cmocka_unit_test(test_max_connections),
		cmocka_unit_test(test_access_refused),
		cmocka_unit_test(test_tls_garbage),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_unix_socket),
		cmocka_unit_test(test_listen_busy_and_describe),
		cmocka_unit_test(test_io_post),
		cmocka_unit_test(test_stop_drains),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
