/* test_node_http.c - the HTTP layer against a real tern_server on 127.0.0.1: framing,
 * keep-alive, pipelining, chunked bodies and every refusal (400, 413, 431). */
#include <event2/event.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "http.h"

static tern_server *srv;
static http_service *svc;
static pthread_t run_thread;
static unsigned port;
static char data_dir[64];

static atomic_int late_replies;

/* A reply made after the handler returned, as a pool job or timer would make it. */
typedef struct late_job {
	http_request *req;
	tern_io *io;
	struct event *ev;
} late_job;

static void late_reply(void *arg)
{
	late_job *j = arg;
	static const char body[] = "late";
	if (j->ev != NULL)
		event_free(j->ev);
	http_reply(j->req, 200, "text/plain", body, sizeof(body) - 1);
	free(j);
	atomic_fetch_add(&late_replies, 1);
}

static void late_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	late_reply(arg);
}

/* Another thread finishes the work and posts the reply back to the I/O thread. */
static void *late_thread(void *arg)
{
	late_job *j = arg;
	usleep(300000);
	tern_io_post(j->io, late_reply, j);
	return NULL;
}

/* Keep the request and answer it 300 ms later: "/late-post" through another thread and
 * tern_io_post, "/late-timer" from a timer; "/late-closed" also closes the connection
 * from the server side first (as the drain timeout does). */
static int late_handler(http_request *req)
{
	if (strncmp(req->path, "/late-", 6) != 0)
		return 0;
	late_job *j = calloc(1, sizeof(*j));
	assert_non_null(j);
	j->req = req;
	j->io = tern_io_current();
	assert_non_null(j->io);
	if (strcmp(req->path, "/late-post") == 0) {
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, late_thread, j), 0);
		pthread_detach(t);
		return 1;
	}
	if (strcmp(req->path, "/late-closed") == 0)
		tern_conn_close(req->conn);
	j->ev = evtimer_new(tern_io_base(j->io), late_timer_cb, j);
	assert_non_null(j->ev);
	struct timeval tv = { 0, 300000 };
	evtimer_add(j->ev, &tv);
	return 1;
}

/* Echo "METHOD PATH BODY" so that tests see what the layer parsed. */
static void echo_handler(http_request *req, void *ctx)
{
	if (late_handler(req))
		return;
	tbuf out = TBUF_INIT;
	tbuf_appendf(&out, "%s %s %s", req->method, req->path, tbuf_cstr(&req->body));
	const char *x = http_header_get(req, "X-Test");
	if (x != NULL)
		tbuf_appendf(&out, " x=%s", x);
	char *q = http_query_param(req, "q");
	if (q != NULL)
		tbuf_appendf(&out, " q=%s", q);
	free(q);
	http_add_header(req, "X-Echo", "1");
	http_reply(req, 200, "text/plain", out.data, out.len);
	tbuf_free(&out);
}

static void *run_main(void *arg)
{
	tern_server_run(srv);
	return NULL;
}

static int connect_server(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	struct timeval tv = { 10, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < 50; i++) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		usleep(100000);
	}
	fail_msg("cannot connect to 127.0.0.1:%u", port);
	return -1;
}

static void send_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;    /* the server may have closed already: fine for refusal tests */
		s += w;
		n -= (size_t)w;
	}
}

/* Read one response: status, body (NUL-terminated into body), Connection header.
 * Returns the status, or -1 when the connection closed first. */
static int read_response(int fd, char *body, size_t bodymax, int *close_r)
{
	static char pending[65536];
	static size_t npending;
	static int pending_fd = -1;
	if (pending_fd != fd) {
		npending = 0;
		pending_fd = fd;
	}
	for (;;) {
		char *end = memmem(pending, npending, "\r\n\r\n", 4);
		if (end != NULL) {
			size_t headlen = (size_t)(end - pending) + 4;
			int status = 0;
			if (sscanf(pending, "HTTP/1.1 %d", &status) != 1)
				return -1;
			char *cl = memmem(pending, headlen, "Content-Length: ", 16);
			size_t len = cl ? strtoul(cl + 16, NULL, 10) : 0;
			if (close_r != NULL)
				*close_r = memmem(pending, headlen, "Connection: close", 17) != NULL;
			while (npending < headlen + len) {
				ssize_t r = recv(fd, pending + npending, sizeof(pending) - npending, 0);
				if (r <= 0)
					return -1;
				npending += (size_t)r;
			}
			size_t copy = len < bodymax - 1 ? len : bodymax - 1;
			memcpy(body, pending + headlen, copy);
			body[copy] = '\0';
			memmove(pending, pending + headlen + len, npending - headlen - len);
			npending -= headlen + len;
			return status;
		}
		ssize_t r = recv(fd, pending + npending, sizeof(pending) - npending, 0);
		if (r <= 0)
			return -1;
		npending += (size_t)r;
	}
}

/* 1 when the server closed the connection (recv returns 0). */
static int peer_closed(int fd)
{
	char ch;
	return recv(fd, &ch, 1, 0) == 0;
}

static int setup(void **state)
{
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	port = 30000 + (unsigned)(rand() % 10000);
	snprintf(data_dir, sizeof(data_dir), "/tmp/test_http_XXXXXX");
	assert_non_null(mkdtemp(data_dir));
	tern_conf conf;
	char *err = NULL;
	assert_int_equal(tern_conf_load_string(&conf, "[server]\nio_threads = 2\n[http]\nlisten = 127.0.0.1\n",
					       port - 80, &err), 0);
	srv = tern_server_new(&conf, data_dir, &err);
	if (srv == NULL)
		fail_msg("tern_server_new: %s", err);
	http_limits lim = { .max_header_bytes = 1024, .max_body_bytes = 1024, .keepalive_timeout = 30,
			    .request_timeout = 30 };
	svc = http_service_new(&lim, echo_handler, NULL);
	assert_non_null(svc);
	if (tern_server_listen(srv, TERN_SVC_http, http_service_handler(svc), &err) < 0)
		fail_msg("listen: %s", err);
	tern_conf_free(&conf);
	assert_int_equal(pthread_create(&run_thread, NULL, run_main, NULL), 0);
	return 0;
}

static int teardown(void **state)
{
	tern_server_stop(srv);
	pthread_join(run_thread, NULL);
	tern_server_free(&srv);
	http_service_free(&svc);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", data_dir);
	if (system(cmd) != 0)
		return 0;
	return 0;
}

static void test_get(void **state)
{
	int fd = connect_server();
	const char *rq = "GET /a%20b/c?q=x%2By&z=1 HTTP/1.1\r\nHost: t\r\nX-Test: v\r\n\r\n";
	send_all(fd, rq, strlen(rq));
	char body[256];
	int cl = 0;
	assert_int_equal(read_response(fd, body, sizeof(body), &cl), 200);
	assert_string_equal(body, "GET /a b/c  x=v q=x+y");
	assert_int_equal(cl, 0);
	close(fd);
}

static void test_post_body_and_keepalive(void **state)
{
	int fd = connect_server();
	const char *rq = "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
	char body[256];
	send_all(fd, rq, strlen(rq));
	assert_int_equal(read_response(fd, body, sizeof(body), NULL), 200);
	assert_string_equal(body, "POST /p hello");
	/* second request on the same connection */
	const char *rq2 = "DELETE /second HTTP/1.1\r\nHost: t\r\n\r\n";
	send_all(fd, rq2, strlen(rq2));
	assert_int_equal(read_response(fd, body, sizeof(body), NULL), 200);
	assert_string_equal(body, "DELETE /second ");
	close(fd);
}

static void test_pipelined(void **state)
{
	int fd = connect_server();
	const char *rq = "GET /one HTTP/1.1\r\nHost: t\r\n\r\n"
			 "POST /two HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
			 "GET /three HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	send_all(fd, rq, strlen(rq));
	char body[256];
	int cl = 0;
	assert_int_equal(read_response(fd, body, sizeof(body), &cl), 200);
	assert_string_equal(body, "GET /one ");
	assert_int_equal(read_response(fd, body, sizeof(body), &cl), 200);
	assert_string_equal(body, "POST /two abc");
	assert_int_equal(read_response(fd, body, sizeof(body), &cl), 200);
	assert_string_equal(body, "GET /three ");
	assert_int_equal(cl, 1);
	assert_true(peer_closed(fd));
	close(fd);
}

static void test_chunked(void **state)
{
	int fd = connect_server();
	const char *rq = "PUT /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
	/* byte by byte, so that every callback is split */
	for (size_t i = 0; rq[i]; i++)
		send_all(fd, rq + i, 1);
	char body[256];
	assert_int_equal(read_response(fd, body, sizeof(body), NULL), 200);
	assert_string_equal(body, "PUT /c hello world");
	close(fd);
}

/* A refusal: the status, then the server closes. */
static void expect_refusal(const char *rq, size_t n, int status)
{
	int fd = connect_server();
	send_all(fd, rq, n);
	char body[256];
	int cl = 0;
	assert_int_equal(read_response(fd, body, sizeof(body), &cl), status);
	assert_int_equal(cl, 1);
	assert_true(peer_closed(fd));
	close(fd);
}

static void test_te_and_cl(void **state)
{
	const char *rq = "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
			 "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
	expect_refusal(rq, strlen(rq), 400);
}

static void test_oversized_header(void **state)
{
	tbuf rq = TBUF_INIT;
	tbuf_append_str(&rq, "GET / HTTP/1.1\r\nX-Big: ");
	for (int i = 0; i < 2000; i++)
		tbuf_append_char(&rq, 'a');
	tbuf_append_str(&rq, "\r\n\r\n");
	expect_refusal(rq.data, rq.len, 431);
	tbuf_reset(&rq);
	/* too many headers */
	tbuf_append_str(&rq, "GET / HTTP/1.1\r\n");
	for (int i = 0; i < HTTP_MAX_HEADERS + 1; i++)
		tbuf_appendf(&rq, "H%d: v\r\n", i);
	tbuf_append_str(&rq, "\r\n");
	expect_refusal(rq.data, rq.len, 431);
	tbuf_free(&rq);
}

static void test_oversized_body(void **state)
{
	const char *rq = "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n";
	expect_refusal(rq, strlen(rq), 413);
	tbuf big = TBUF_INIT;
	tbuf_append_str(&big, "POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 3; i++) {
		tbuf_append_str(&big, "200\r\n");
		for (int j = 0; j < 0x200; j++)
			tbuf_append_char(&big, 'z');
		tbuf_append_str(&big, "\r\n");
	}
	tbuf_append_str(&big, "0\r\n\r\n");
	expect_refusal(big.data, big.len, 413);
	tbuf_free(&big);
}

static void test_garbage(void **state)
{
	const char rq[] = "\x01\x02 nonsense here\r\n\r\n";
	expect_refusal(rq, sizeof(rq) - 1, 400);
	const char *nul = "GET /a%00b HTTP/1.1\r\nHost: t\r\n\r\n";
	expect_refusal(nul, strlen(nul), 400);
	const char *bad = "GET /a%zz HTTP/1.1\r\nHost: t\r\n\r\n";
	expect_refusal(bad, strlen(bad), 400);
}

static void test_abrupt_disconnect(void **state)
{
	int fd = connect_server();
	const char *part = "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc";
	send_all(fd, part, strlen(part));
	close(fd);
	fd = connect_server();
	const char *half = "GET /y HTTP/1.1\r\nHo";
	send_all(fd, half, strlen(half));
	close(fd);
	/* the server still answers */
	fd = connect_server();
	const char *rq = "GET /alive HTTP/1.1\r\nHost: t\r\n\r\n";
	send_all(fd, rq, strlen(rq));
	char body[256];
	assert_int_equal(read_response(fd, body, sizeof(body), NULL), 200);
	assert_string_equal(body, "GET /alive ");
	close(fd);
}

/* Wait until n late replies have been made and every HTTP connection has been released
 * by the server (its session freed). */
static void wait_late(int n)
{
	for (int i = 0; i < 100; i++) {
		if (atomic_load(&late_replies) >= n && tern_server_connections(srv, TERN_SVC_http) == 0)
			return;
		usleep(50000);
	}
	fail_msg("late replies %d of %d, connections %u", atomic_load(&late_replies), n,
		 tern_server_connections(srv, TERN_SVC_http));
}

/* Send a request and go away at once (RST), before the handler answers. */
static void send_and_vanish(const char *rq)
{
	int fd = connect_server();
	send_all(fd, rq, strlen(rq));
	usleep(50000);              /* let the server read it and call the handler */
	struct linger lg = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* A handler that replies after the client disconnected: no crash, nothing leaked (ASan
 * checks at exit), the connection is released, and the server goes on serving. */
static void test_late_reply_after_disconnect(void **state)
{
	int base = atomic_load(&late_replies);
	send_and_vanish("GET /late-post HTTP/1.1\r\nHost: t\r\n\r\n");
	wait_late(base + 1);
	send_and_vanish("GET /late-timer HTTP/1.1\r\nHost: t\r\n\r\n");
	wait_late(base + 2);
	/* a pipelined second request waits behind the late one and dies with the client */
	send_and_vanish("POST /late-timer HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nab"
			"GET /never HTTP/1.1\r\nHost: t\r\n\r\n");
	wait_late(base + 3);
	/* the server closed the connection itself before the late reply */
	int fd = connect_server();
	const char *rq = "GET /late-closed HTTP/1.1\r\nHost: t\r\n\r\n";
	send_all(fd, rq, strlen(rq));
	assert_true(peer_closed(fd));
	close(fd);
	wait_late(base + 4);

	/* a client that stays gets its late answer */
	fd = connect_server();
	rq = "GET /late-post HTTP/1.1\r\nHost: t\r\n\r\n";
	send_all(fd, rq, strlen(rq));
	char body[256];
	assert_int_equal(read_response(fd, body, sizeof(body), NULL), 200);
	assert_string_equal(body, "late");
	rq = "GET /alive HTTP/1.1\r\nHost: t\r\n\r\n";
	send_all(fd, rq, strlen(rq));
	assert_int_equal(read_response(fd, body, sizeof(body), NULL), 200);
	assert_string_equal(body, "GET /alive ");
	close(fd);
	wait_late(base + 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_post_body_and_keepalive),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_te_and_cl),
		cmocka_unit_test(test_oversized_header),
		cmocka_unit_test(test_oversized_body),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_abrupt_disconnect),
		cmocka_unit_test(test_late_reply_after_disconnect),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
