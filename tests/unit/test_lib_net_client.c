/* test_lib_net_client.c - outgoing connections: a plain exchange with a local echo service,
 * a refused port (on_close with the ctx, never on_open), STARTTLS as a client with the right
 * and with a wrong pinned fingerprint, and the connect timeout. */
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
#include <cmocka.h>
#include <event2/buffer.h>
#include "tern.h"

enum { P_PLAIN, P_STARTTLS, P_COUNT };

static struct {
	char dir[64];
	tern_conf conf;
	tern_server *srv;
	pthread_t thread;
	unsigned port[P_COUNT];
} S;

/* ---- the server side: an echo service that can switch to TLS ---- */

static void *echo_open(tern_conn *c, void *ctx)
{
	tern_conn_printf(c, "HELLO %s\r\n", tern_conn_is_tls(c) ? "tls" : "plain");
	return c;
}

static void echo_read(tern_conn *c, void *session)
{
	size_t n;
	char *line;

	while ((line = evbuffer_readln(tern_conn_input(c), &n, EVBUFFER_EOL_CRLF)) != NULL) {
		if (strcmp(line, "STARTTLS") == 0) {
			tern_conn_write(c, "OK\r\n", 4);
			free(line);
			if (tern_conn_starttls(c) < 0)
				tern_conn_close(c);
			return;
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
}

/* ---- the client side ---- */

typedef struct client {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int starttls;              /* ask for STARTTLS after the greeting */
	const char *pin;           /* fingerprint for tern_conn_starttls_client */
	int opened, closed;
	void *close_session;       /* what on_close got */
	int close_conn_known;      /* on_close got a connection */
	tbuf lines;                /* every line received, "\n"-separated */
	char error[160];
	char tls_info[128];
	char local_ip[64];
	int step;
} client;

static void client_init(client *cl)
{
	memset(cl, 0, sizeof(*cl));
	pthread_mutex_init(&cl->lock, NULL);
	pthread_cond_init(&cl->cond, NULL);
}

static void client_fini(client *cl)
{
	tbuf_free(&cl->lines);
	pthread_mutex_destroy(&cl->lock);
	pthread_cond_destroy(&cl->cond);
}

static void *cl_open(tern_conn *c, void *ctx)
{
	client *cl = ctx;

	pthread_mutex_lock(&cl->lock);
	cl->opened++;
	snprintf(cl->local_ip, sizeof(cl->local_ip), "%s", tern_conn_local_ip(c));
	pthread_mutex_unlock(&cl->lock);
	return cl;
}

/* The script: greeting -> (STARTTLS -> OK -> TLS) -> PING -> ECHO -> QUIT -> BYE. */
static void cl_read(tern_conn *c, void *session)
{
	client *cl = session;
	size_t n;
	char *line;

	while ((line = evbuffer_readln(tern_conn_input(c), &n, EVBUFFER_EOL_CRLF)) != NULL) {
		pthread_mutex_lock(&cl->lock);
		tbuf_appendf(&cl->lines, "%s\n", line);
		pthread_mutex_unlock(&cl->lock);
		if (strncmp(line, "HELLO", 5) == 0) {
			tern_conn_printf(c, "%s\r\n", cl->starttls ? "STARTTLS" : "PING");
		} else if (strcmp(line, "OK") == 0) {
			if (tern_conn_starttls_client(c, "localhost", cl->pin) < 0) {
				tern_conn_close(c);
			} else {
				/* Buffered until the handshake is done. */
				tern_conn_printf(c, "PING\r\n");
			}
			free(line);
			return;
		} else if (strncmp(line, "ECHO", 4) == 0) {
			const char *info = tern_conn_tls_info(c);
			pthread_mutex_lock(&cl->lock);
			snprintf(cl->tls_info, sizeof(cl->tls_info), "%s", info != NULL ? info : "");
			pthread_mutex_unlock(&cl->lock);
			tern_conn_printf(c, "QUIT\r\n");
		}
		free(line);
	}
}

static void cl_close(tern_conn *c, void *session)
{
	client *cl = session;

	pthread_mutex_lock(&cl->lock);
	cl->closed++;
	cl->close_session = session;
	cl->close_conn_known = c != NULL;
	snprintf(cl->error, sizeof(cl->error), "%s", tern_conn_error(c));
	pthread_cond_broadcast(&cl->cond);
	pthread_mutex_unlock(&cl->lock);
}

typedef struct connect_job {
	tern_io *io;
	struct sockaddr_in sin;
	int timeout;
	tern_service_handler h;
	int rc;
	int on_io;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
} connect_job;

static void connect_on_io(void *arg)
{
	connect_job *j = arg;
	int rc = tern_client_connect(j->io, (struct sockaddr *)&j->sin, sizeof(j->sin), j->timeout,
				     &j->h);

	pthread_mutex_lock(&j->lock);
	j->rc = rc;
	j->on_io = tern_io_current() == j->io;
	j->done = 1;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
}

/* Start a connection from I/O thread 0 to addr:port; returns tern_client_connect's result. */
static int start_client(client *cl, const char *addr, unsigned port, int timeout)
{
	connect_job j = { .io = tern_server_io(S.srv, 0), .timeout = timeout,
			  .h = { cl_open, cl_read, cl_close, NULL, cl, 5 } };

	pthread_mutex_init(&j.lock, NULL);
	pthread_cond_init(&j.cond, NULL);
	j.sin.sin_family = AF_INET;
	j.sin.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, addr, &j.sin.sin_addr);
	tern_io_post(j.io, connect_on_io, &j);
	pthread_mutex_lock(&j.lock);
	while (!j.done)
		pthread_cond_wait(&j.cond, &j.lock);
	pthread_mutex_unlock(&j.lock);
	assert_true(j.on_io);
	pthread_mutex_destroy(&j.lock);
	pthread_cond_destroy(&j.cond);
	return j.rc;
}

/* Wait up to seconds for on_close. */
static void wait_closed(client *cl, int seconds)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	pthread_mutex_lock(&cl->lock);
	while (cl->closed == 0) {
		if (pthread_cond_timedwait(&cl->cond, &cl->lock, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&cl->lock);
	assert_int_equal(cl->closed, 1);
}

/* ---- set-up ---- */

static void *run_thread(void *arg)
{
	tern_server_run(S.srv);
	return NULL;
}

static int start_on(unsigned base)
{
	static const tern_service_id svc_of[P_COUNT] = { TERN_SVC_http, TERN_SVC_smtp };
	tern_service_handler h = { .on_open = echo_open, .on_read = echo_read,
				   .on_close = echo_close };
	char *err = NULL;

	for (int i = 0; i < TERN_SVC_COUNT; i++)
		S.conf.services[i].enabled = 0;
	for (int p = 0; p < P_COUNT; p++) {
		tern_service_conf *s = &S.conf.services[svc_of[p]];
		S.port[p] = base + (unsigned)p;
		s->enabled = 1;
		s->nlisten = 1;
		snprintf(s->listen[0].host, sizeof(s->listen[0].host), "127.0.0.1");
		s->listen[0].port = (uint16_t)S.port[p];
	}
	S.srv = tern_server_new(&S.conf, S.dir, &err);
	if (S.srv == NULL)
		fail_msg("tern_server_new: %s", err);
	for (int p = 0; p < P_COUNT; p++) {
		if (tern_server_listen(S.srv, svc_of[p], &h, &err) < 0) {
			int busy = strstr(err, "Address already in use") != NULL;
			if (!busy)
				fail_msg("listen: %s", err);
			free(err);
			tern_server_free(&S.srv);
			return 1;
		}
	}
	return 0;
}

static int group_setup(void **state)
{
	char *err = NULL;
	uint32_t r;

	snprintf(S.dir, sizeof(S.dir), "/tmp/tern-netc-XXXXXX");
	if (mkdtemp(S.dir) == NULL)
		return -1;
	if (tern_conf_load_string(&S.conf, "", 0, &err) < 0)
		return -1;
	S.conf.server_io_threads = 1;
	S.conf.server_drain_timeout = 1;
	tern_random(&r, sizeof(r));
	for (int attempt = 0; attempt < 10 && S.srv == NULL; attempt++)
		start_on(40000 + (r + (unsigned)attempt * 977u) % 9990u);
	if (S.srv == NULL)
		return -1;
	return pthread_create(&S.thread, NULL, run_thread, NULL) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[128];

	tern_server_stop(S.srv);
	pthread_join(S.thread, NULL);
	tern_server_free(&S.srv);
	tern_conf_free(&S.conf);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", S.dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A port on 127.0.0.1 where nothing listens (bound once, then released). */
static unsigned closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

/* ---- tests ---- */

static void test_plain_exchange(void **state)
{
	client cl;

	client_init(&cl);
	assert_int_equal(start_client(&cl, "127.0.0.1", S.port[P_PLAIN], 5), 0);
	wait_closed(&cl, 10);
	assert_int_equal(cl.opened, 1);
	assert_string_equal(tbuf_cstr(&cl.lines), "HELLO plain\nECHO PING\nBYE\n");
	assert_ptr_equal(cl.close_session, &cl);
	assert_string_equal(cl.local_ip, "127.0.0.1");
	assert_string_equal(cl.tls_info, "");   /* no TLS: tern_conn_tls_info gave NULL */
	client_fini(&cl);
}

static void test_refused(void **state)
{
	client cl;

	client_init(&cl);
	assert_int_equal(start_client(&cl, "127.0.0.1", closed_port(), 5), 0);
	wait_closed(&cl, 10);
	assert_int_equal(cl.opened, 0);
	/* Never opened: on_close gets the handler's ctx as its session. */
	assert_ptr_equal(cl.close_session, &cl);
	assert_true(cl.close_conn_known);
	assert_string_equal(cl.error, "Connection refused");
	assert_int_equal(cl.lines.len, 0);
	client_fini(&cl);
}

static void test_connect_timeout(void **state)
{
	client cl;
	int64_t t0 = tern_mono_ms();

	client_init(&cl);
	/* TEST-NET-1 (RFC 5737) is not routed: the SYN goes nowhere (or fails at once on a
	 * host without a default route). */
	assert_int_equal(start_client(&cl, "192.0.2.1", 25, 1), 0);
	wait_closed(&cl, 10);
	assert_int_equal(cl.opened, 0);
	assert_true(tern_mono_ms() - t0 < 5000);
	assert_true(cl.error[0] != '\0');
	client_fini(&cl);
}

static void test_starttls_pinned(void **state)
{
	client cl;

	client_init(&cl);
	cl.starttls = 1;
	cl.pin = tern_server_fingerprint(S.srv);
	assert_int_equal(start_client(&cl, "127.0.0.1", S.port[P_STARTTLS], 5), 0);
	wait_closed(&cl, 10);
	assert_int_equal(cl.opened, 1);
	assert_string_equal(tbuf_cstr(&cl.lines), "HELLO plain\nOK\nECHO PING (tls)\nBYE\n");
	assert_true(strncmp(cl.tls_info, "TLSv1.", 6) == 0);
	assert_non_null(strchr(cl.tls_info, ' '));
	client_fini(&cl);
}

static void test_starttls_no_pin(void **state)
{
	client cl;

	client_init(&cl);
	cl.starttls = 1;
	cl.pin = NULL;   /* opportunistic: a self-signed certificate is fine */
	assert_int_equal(start_client(&cl, "127.0.0.1", S.port[P_STARTTLS], 5), 0);
	wait_closed(&cl, 10);
	assert_string_equal(tbuf_cstr(&cl.lines), "HELLO plain\nOK\nECHO PING (tls)\nBYE\n");
	client_fini(&cl);
}

static void test_starttls_wrong_pin(void **state)
{
	client cl;
	char wrong[65];

	snprintf(wrong, sizeof(wrong), "%s", tern_server_fingerprint(S.srv));
	wrong[0] = wrong[0] == '0' ? '1' : '0';
	client_init(&cl);
	cl.starttls = 1;
	cl.pin = wrong;
	assert_int_equal(start_client(&cl, "127.0.0.1", S.port[P_STARTTLS], 5), 0);
	wait_closed(&cl, 10);
	assert_int_equal(cl.opened, 1);
	/* The handshake failed: PING never left, nothing came back over TLS. */
	assert_string_equal(tbuf_cstr(&cl.lines), "HELLO plain\nOK\n");
	assert_non_null(strstr(cl.error, "does not match"));
	client_fini(&cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_exchange),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_starttls_pinned),
		cmocka_unit_test(test_starttls_no_pin),
		cmocka_unit_test(test_starttls_wrong_pin),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
