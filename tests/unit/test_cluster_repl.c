/* test_cluster_repl.c - the control plane over real ZeroMQ on 127.0.0.1: a master "a"
 * and a slave "b" (two stores, two cluster objects in this process), and raw CURVE
 * sockets playing a registered node "c" and an unregistered one. The tests run in order
 * and build on each other: admit + join, streaming, restart catch-up, refused keys, bad
 * frames, status, homes, remove and leave. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>
#include "cluster_test_util.h"
#include "cluster_wire.h"

static tnode A, B;
static void *zctx;
static uint8_t c_pub[32], c_sec[32];

static int group_setup(void **state)
{
	if (logs_open("tern-cluster") != 0)
		return -1;
	node_init(&A, "a", "tern-cluster");
	node_init(&B, "b", "tern-cluster");
	zctx = zmq_ctx_new();
	return 0;
}

static int group_teardown(void **state)
{
	node_free(&B);
	node_free(&A);
	zmq_ctx_term(zctx);
	logs_close();
	return 0;
}

static void test_admit_join_snapshot(void **state)
{
	cluster_admission *adm = NULL;
	Tern__Node *id = NULL;
	tbuf err = TBUF_INIT;

	add_domain(A.st);
	add_user(A.st, "bob", STORE_OK);
	assert_int_equal(cluster_get_role(A.cl), CLUSTER_STANDALONE);

	assert_int_equal(cluster_identity(B.cl, &id), 0);
	assert_string_equal(id->name, "b");
	assert_int_equal(id->curve_public.len, 32);
	assert_string_equal(id->address, "127.0.0.1");
	assert_int_equal(id->cluster_port, (uint32_t)B.conf.cluster_port);
	if (cluster_admit(A.cl, id, &adm, &err) != 0)
		fail_msg("admit: %s", tbuf_cstr(&err));
	assert_int_equal(cluster_get_role(A.cl), CLUSTER_MASTER);
	assert_string_equal(adm->master->name, "a");
	assert_non_null(strstr(adm->endpoint, "tcp://127.0.0.1:"));
	/* a second candidate with the name but another key is refused */
	id->curve_public.data[0] ^= 1;
	cluster_admission *adm2 = NULL;
	tbuf_reset(&err);
	assert_int_equal(cluster_admit(A.cl, id, &adm2, &err), -1);
	assert_non_null(strstr(tbuf_cstr(&err), "taken by another node"));
	store_free_record(id);

	tbuf_reset(&err);
	if (cluster_join(B.cl, adm, &err) != 0)
		fail_msg("join: %s", tbuf_cstr(&err));
	assert_int_equal(cluster_get_role(B.cl), CLUSTER_SLAVE);
	WAIT_FOR(has_user(B.st, "bob@example.test"));
	Tern__Node *an = NULL;
	WAIT_FOR(cluster_node_find(B.st, "a", &an) == STORE_OK);
	assert_true(an->master);
	store_free_record(an);

	/* the node login made at admission works on both sides */
	char authcid[80], password[80];
	assert_int_equal(cluster_node_login(B.st, "b", authcid, sizeof(authcid), password, sizeof(password)), 0);
	assert_string_equal(authcid, "node/b");
	assert_int_equal(cluster_check_node_login(A.st, authcid, password), 1);
	password[0] = password[0] == '0' ? '1' : '0';
	assert_int_equal(cluster_check_node_login(A.st, authcid, password), 0);

	/* the shared secret came along */
	char pa[128], pb[128];
	uint8_t ka[40], kb[40];
	snprintf(pa, sizeof(pa), "%s/ssl/secret.key", A.dir);
	snprintf(pb, sizeof(pb), "%s/ssl/secret.key", B.dir);
	FILE *fa = fopen(pa, "rb"), *fb = fopen(pb, "rb");
	assert_non_null(fa);
	assert_non_null(fb);
	assert_int_equal(fread(ka, 1, sizeof(ka), fa), 32);
	assert_int_equal(fread(kb, 1, sizeof(kb), fb), 32);
	fclose(fa);
	fclose(fb);
	assert_memory_equal(ka, kb, 32);
	assert_memory_equal(ka, adm->secret, 32);
	cluster_admission_free(&adm);
	assert_null(adm);
	tbuf_free(&err);
	assert_true(log_has("operations.log", "admitted node b"));
}

static void test_stream_and_refusal(void **state)
{
	store_sync_result r;
	Tern__User u = TERN__USER__INIT;

	add_user(A.st, "ann", STORE_OK);
	WAIT_FOR(has_user(B.st, "ann@example.test"));
	u.name = (char *)"zed";
	u.domain = (char *)"example.test";
	assert_int_equal(store_user_add(B.st, &u, STORE_SYNC, &r), STORE_EREFUSED);
	assert_non_null(strstr(r.error, "changed on the master a (127.0.0.1:"));
}

static void test_slave_restart_catches_up(void **state)
{
	cluster_close(&B.cl);
	add_user(A.st, "eve", STORE_OK);
	add_user(A.st, "fay", STORE_OK);
	assert_false(has_user(B.st, "eve@example.test"));
	node_start(&B);
	assert_int_equal(cluster_get_role(B.cl), CLUSTER_SLAVE);
	WAIT_FOR(has_user(B.st, "eve@example.test") && has_user(B.st, "fay@example.test"));
}

static void test_master_restart(void **state)
{
	cluster_close(&A.cl);
	node_start(&A);
	assert_int_equal(cluster_get_role(A.cl), CLUSTER_MASTER);
	add_user(A.st, "ida", STORE_OK);
	WAIT_FOR(has_user(B.st, "ida@example.test"));
}

static const cluster_node_status *find_status(const cluster_node_status *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

static int caught_up(void)
{
	cluster_node_status *v = NULL;
	size_t n = 0;
	int ok = 0;

	if (cluster_status(A.cl, &v, &n) == 0) {
		const cluster_node_status *b = find_status(v, n, "b");
		ok = n == 2 && b != NULL && b->lag == 0 && strcmp(b->status, "available") == 0 && b->seq > 0;
	}
	free(v);
	return ok;
}

static void test_status(void **state)
{
	cluster_node_status *v = NULL;
	size_t n = 0;

	WAIT_FOR(caught_up());
	assert_int_equal(cluster_status(A.cl, &v, &n), 0);
	const cluster_node_status *a = find_status(v, n, "a");
	assert_non_null(a);
	assert_string_equal(a->role, "master");
	assert_string_equal(a->status, "this server");
	assert_string_equal(find_status(v, n, "b")->role, "slave");
	assert_int_equal(find_status(v, n, "b")->seq, a->seq);
	assert_true(find_status(v, n, "b")->last_seen > 0);
	free(v);
	/* the slave shows both, from the master's heartbeat */
	int64_t until = tern_mono_ms() + WAIT_MS;
	for (;;) {
		assert_int_equal(cluster_status(B.cl, &v, &n), 0);
		const cluster_node_status *sa = find_status(v, n, "a"), *sb = find_status(v, n, "b");
		if (n == 2 && sa && sb && strcmp(sa->status, "available") == 0 && strcmp(sb->status, "this server") == 0 &&
		    strcmp(sa->role, "master") == 0)
			break;
		free(v);
		assert_true(tern_mono_ms() < until);
		usleep(100000);
	}
	free(v);
	assert_string_equal(cluster_role_name(CLUSTER_SLAVE), "slave");
}

/* A raw CURVE DEALER to the master with the given key pair. */
static void *raw_dealer(const uint8_t pub[32], const uint8_t sec[32])
{
	Tern__CurveKeys *k = NULL;
	char ep[64];
	int zero = 0;
	void *s = zmq_socket(zctx, ZMQ_DEALER);

	assert_int_equal(store_curve_keys_get(A.st, &k), STORE_OK);
	assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, k->public_key.data, 32), 0);
	assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 32), 0);
	assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 32), 0);
	assert_int_equal(zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)), 0);
	store_free_record(k);
	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%u", (unsigned)A.conf.cluster_port);
	assert_int_equal(zmq_connect(s, ep), 0);
	return s;
}

static void make_keys(uint8_t pub[32], uint8_t sec[32])
{
	char zp[41], zs[41];

	assert_int_equal(zmq_curve_keypair(zp, zs), 0);
	assert_non_null(zmq_z85_decode(pub, zp));
	assert_non_null(zmq_z85_decode(sec, zs));
}

/* Receive one envelope within ms, or NULL. */
static Tern__Cluster__Envelope *raw_recv(void *s, int ms)
{
	zmq_pollitem_t it = { s, 0, ZMQ_POLLIN, 0 };
	zmq_msg_t m;
	Tern__Cluster__Envelope *e = NULL;
	char why[160];

	if (zmq_poll(&it, 1, ms) <= 0)
		return NULL;
	zmq_msg_init(&m);
	assert_true(zmq_msg_recv(&m, s, 0) >= 0);
	if (cluster_frame_decode(zmq_msg_data(&m), zmq_msg_size(&m), 1 << 20, &e, why, sizeof(why)) != 0)
		fail_msg("bad frame from master: %s", why);
	zmq_msg_close(&m);
	return e;
}

/* Receive until an envelope of the body case arrives (heartbeats may come first). */
static Tern__Cluster__Envelope *raw_expect(void *s, Tern__Cluster__Envelope__BodyCase c)
{
	int64_t until = tern_mono_ms() + WAIT_MS;

	while (tern_mono_ms() < until) {
		Tern__Cluster__Envelope *e = raw_recv(s, 500);
		if (e != NULL && e->body_case == c)
			return e;
		cluster_frame_free(&e);
	}
	fail_msg("no frame of body %d", c);
	return NULL;
}

static void raw_hello(void *s, const char *node, uint64_t id)
{
	Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__Hello h = TERN__CLUSTER__HELLO__INIT;
	tbuf b = TBUF_INIT;

	h.version = CLUSTER_PROTO_VERSION;
	h.node = (char *)node;
	e.id = id;
	e.body_case = TERN__CLUSTER__ENVELOPE__BODY_HELLO;
	e.hello = &h;
	cluster_frame_encode(&e, &b);
	assert_int_equal(zmq_send(s, b.data, b.len, 0), (int)b.len);
	tbuf_free(&b);
}

static void test_forged_key_refused(void **state)
{
	uint8_t pub[32], sec[32];

	make_keys(pub, sec);
	void *s = raw_dealer(pub, sec);
	raw_hello(s, "b", 1);   /* claims to be b, with a key that is not b's */
	Tern__Cluster__Envelope *e = raw_recv(s, 1500);
	assert_null(e);
	zmq_close(s);
	WAIT_FOR(log_has("warning.log", "is not a registered node"));
	assert_true(caught_up());
}

static void send_raw(void *s, const void *p, size_t n, int flags)
{
	assert_int_equal(zmq_send(s, p, n, flags), (int)n);
}

static void expect_error(void *s, Tern__Cluster__Error__Code code)
{
	Tern__Cluster__Envelope *e = raw_expect(s, TERN__CLUSTER__ENVELOPE__BODY_ERROR);
	assert_int_equal(e->error->code, code);
	cluster_frame_free(&e);
}

static void test_bad_frames(void **state)
{
	Tern__Node c = TERN__NODE__INIT;
	cluster_admission *adm = NULL;
	tbuf err = TBUF_INIT, good = TBUF_INIT;

	make_keys(c_pub, c_sec);
	c.name = (char *)"c";
	c.curve_public.data = c_pub;
	c.curve_public.len = 32;
	c.address = (char *)"127.0.0.1";
	c.fingerprint = (char *)"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
	if (cluster_admit(A.cl, &c, &adm, &err) != 0)
		fail_msg("admit c: %s", tbuf_cstr(&err));
	cluster_admission_free(&adm);

	void *s = raw_dealer(c_pub, c_sec);
	send_raw(s, "\xff\xff\xff\xff garbage", 13, 0);
	expect_error(s, TERN__CLUSTER__ERROR__CODE__BAD_FRAME);
	char *big = calloc(1, 70000);
	send_raw(s, big, 70000, 0);      /* over max_frame (65536) */
	free(big);
	expect_error(s, TERN__CLUSTER__ERROR__CODE__BAD_FRAME);

	/* a truncated Hello */
	Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT;
	Tern__Cluster__Hello h = TERN__CLUSTER__HELLO__INIT;
	h.version = CLUSTER_PROTO_VERSION;
	h.node = (char *)"c";
	e.id = 5;
	e.body_case = TERN__CLUSTER__ENVELOPE__BODY_HELLO;
	e.hello = &h;
	cluster_frame_encode(&e, &good);
	send_raw(s, good.data, good.len - 1, 0);
	expect_error(s, TERN__CLUSTER__ERROR__CODE__BAD_FRAME);
	/* two parts */
	send_raw(s, good.data, good.len, ZMQ_SNDMORE);
	send_raw(s, good.data, good.len, 0);
	expect_error(s, TERN__CLUSTER__ERROR__CODE__BAD_FRAME);
	/* a Hello naming another node than its key */
	raw_hello(s, "b", 6);
	expect_error(s, TERN__CLUSTER__ERROR__CODE__BAD_FRAME);
	/* an unknown body (field 99) is no message */
	send_raw(s, "\x08\x07\x9a\x06\x00", 5, 0);
	expect_error(s, TERN__CLUSTER__ERROR__CODE__BAD_FRAME);
	/* a heartbeat before Hello */
	Tern__Cluster__Heartbeat hb = TERN__CLUSTER__HEARTBEAT__INIT;
	e.id = 0;
	e.body_case = TERN__CLUSTER__ENVELOPE__BODY_HEARTBEAT;
	e.heartbeat = &hb;
	cluster_frame_encode(&e, &good);
	send_raw(s, good.data, good.len, 0);
	expect_error(s, TERN__CLUSTER__ERROR__CODE__HELLO_REQUIRED);

	/* the master keeps working: a proper Hello gets HelloOk and a snapshot */
	raw_hello(s, "c", 7);
	Tern__Cluster__Envelope *ok = raw_expect(s, TERN__CLUSTER__ENVELOPE__BODY_HELLO_OK);
	assert_int_equal(ok->id, 7);
	assert_string_equal(ok->hello_ok->master, "a");
	cluster_frame_free(&ok);
	Tern__Cluster__Envelope *snap = raw_expect(s, TERN__CLUSTER__ENVELOPE__BODY_SNAPSHOT);
	assert_true(snap->snapshot->last);
	assert_true(snap->snapshot->n_ops > 0);
	cluster_frame_free(&snap);
	zmq_close(s);
	assert_true(log_has("warning.log", "invalid frame from node c"));
	add_user(A.st, "gus", STORE_OK);
	WAIT_FOR(has_user(B.st, "gus@example.test"));
	tbuf_free(&err);
	tbuf_free(&good);
}

static void test_homes(void **state)
{
	tbuf err = TBUF_INIT;
	Tern__User *u = NULL;
	char home[64];

	/* on the slave: refused, naming the master */
	assert_int_equal(cluster_user_set_home(B.cl, "bob@example.test", "b", &err), -1);
	assert_non_null(strstr(tbuf_cstr(&err), "master a"));
	tbuf_reset(&err);
	assert_int_equal(cluster_user_set_home(A.cl, "bob@example.test", "nosuch", &err), -1);
	tbuf_reset(&err);
	if (cluster_user_set_home(A.cl, "bob@example.test", "b", &err) != 0)
		fail_msg("set home: %s", tbuf_cstr(&err));
	assert_int_equal(store_user_find(A.st, "bob@example.test", &u), STORE_OK);
	assert_string_equal(u->home, "b");
	store_free_record(u);
	assert_int_equal(cluster_user_home(A.st, "bob@example.test", home, sizeof(home)), 1);
	assert_string_equal(home, "b");
	WAIT_FOR(cluster_user_home(B.st, "bob@example.test", home, sizeof(home)) == 0);

	/* b is not removable while bob lives there */
	tbuf_reset(&err);
	assert_int_equal(cluster_remove(A.cl, "b", &err), -1);
	assert_non_null(strstr(tbuf_cstr(&err), "homed on node 'b'"));
	/* back to a: the (empty) mailbox is checked on b over the control plane */
	tbuf_reset(&err);
	if (cluster_user_set_home(A.cl, "bob@example.test", "a", &err) != 0)
		fail_msg("set home back: %s", tbuf_cstr(&err));
	assert_int_equal(cluster_user_home(A.st, "bob@example.test", home, sizeof(home)), 0);
	tbuf_free(&err);
}

static void test_remove_refused_after(void **state)
{
	tbuf err = TBUF_INIT;

	void *s = raw_dealer(c_pub, c_sec);
	raw_hello(s, "c", 9);
	Tern__Cluster__Envelope *ok = raw_expect(s, TERN__CLUSTER__ENVELOPE__BODY_HELLO_OK);
	cluster_frame_free(&ok);
	if (cluster_remove(A.cl, "c", &err) != 0)
		fail_msg("remove c: %s", tbuf_cstr(&err));
	expect_error(s, TERN__CLUSTER__ERROR__CODE__REMOVED);
	zmq_close(s);
	assert_true(log_has("operations.log", "removed node c"));

	/* a new connection with c's key no longer passes ZAP */
	s = raw_dealer(c_pub, c_sec);
	raw_hello(s, "c", 10);
	assert_null(raw_recv(s, 1500));
	zmq_close(s);
	tbuf_reset(&err);
	assert_int_equal(cluster_remove(A.cl, "c", &err), -1);
	tbuf_free(&err);
}

static void test_leave(void **state)
{
	tbuf err = TBUF_INIT;
	Tern__Node *n = NULL;

	assert_int_equal(cluster_leave(A.cl, &err), -1);
	tbuf_reset(&err);
	if (cluster_leave(B.cl, &err) != 0)
		fail_msg("leave: %s", tbuf_cstr(&err));
	assert_int_equal(cluster_get_role(B.cl), CLUSTER_STANDALONE);
	assert_int_equal(store_repl_get_mode(B.st), STORE_REPL_OFF);
	assert_int_equal(store_node_get(A.st, "b", &n), STORE_ENOTFOUND);
	assert_true(log_has("operations.log", "node b left the distributed domain"));
	/* the replicated accounts stay, and are writable again */
	assert_true(has_user(B.st, "gus@example.test"));
	add_user(B.st, "hal", STORE_OK);
	cluster_node_status *v = NULL;
	size_t cnt = 0;
	assert_int_equal(cluster_status(B.cl, &v, &cnt), 0);
	assert_int_equal(cnt, 1);
	assert_string_equal(v[0].role, "standalone");
	free(v);
	tbuf_free(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_admit_join_snapshot),
		cmocka_unit_test(test_stream_and_refusal),
		cmocka_unit_test(test_slave_restart_catches_up),
		cmocka_unit_test(test_master_restart),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_forged_key_refused),
		cmocka_unit_test(test_bad_frames),
		cmocka_unit_test(test_homes),
		cmocka_unit_test(test_remove_refused_after),
		cmocka_unit_test(test_leave),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
