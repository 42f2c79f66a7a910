/* test_cluster_bulk.c - the migration side of the cluster module over real ZeroMQ on
 * 127.0.0.1: the bulk channel (request/reply between every pair of a master "a" and
 * slaves "b" and "c", pipelining, large payloads, a forged key refused) and the home
 * moves decided by the master (BEGIN/COMMIT/ABORT from a slave and on the master,
 * replication, refusals, replays, no master). The tests run in order and build on each
 * other. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zmq.h>
#include "cluster_test_util.h"
#include "cluster_private.h"
#include "cluster_wire.h"

#define MAX_FRAME (8u << 20)
#define BIG (4u << 20)

static tnode A, B, C;

/* ---- the bulk handlers: reply "<this node>|<peer>|<request>" ---- */

typedef struct handler_state {
	const char *me;
	atomic_int calls;
	char last_peer[64];
} handler_state;

static handler_state HA = { "a", 0, "" }, HB = { "b", 0, "" }, HC = { "c", 0, "" };

static void echo(void *arg, const char *peer, const void *req, size_t n, tbuf *reply)
{
	handler_state *h = arg;

	atomic_fetch_add(&h->calls, 1);
	snprintf(h->last_peer, sizeof(h->last_peer), "%s", peer);
	tbuf_appendf(reply, "%s|%s|", h->me, peer);
	tbuf_append(reply, req, n);
}

static int group_setup(void **state)
{
	(void)state;
	if (logs_open("tern-clbulk") != 0)
		return -1;
	node_init_opts(&A, "a", "tern-clbulk", MAX_FRAME, NULL);
	node_init_opts(&B, "b", "tern-clbulk", MAX_FRAME, NULL);
	node_init_opts(&C, "c", "tern-clbulk", MAX_FRAME, NULL);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	node_free(&C);
	node_free(&B);
	node_free(&A);
	logs_close();
	return 0;
}

/* Joins n to the master a; its identity must name a bulk port. */
static void join(tnode *n)
{
	Tern__Node *id = NULL;

	assert_int_equal(cluster_identity(n->cl, &id), 0);
	assert_true(id->bulk_port != 0);
	store_free_record(id);
	node_join(&A, n);
}

static int knows_node(store *st, const char *name)
{
	Tern__Node *n = NULL;
	int rc = store_node_get(st, name, &n);

	store_free_record(n);
	return rc == STORE_OK;
}

static void test_setup_domain(void **state)
{
	tbuf err = TBUF_INIT;

	(void)state;
	/* standalone: no bulk channel, no moves */
	cluster_bulk *b = NULL;
	uint8_t id[16] = { 1 };
	assert_int_equal(cluster_bulk_open(A.cl, "b", &b, &err), -1);
	assert_int_equal(cluster_home_move(A.cl, id, CLUSTER_MOVE_BEGIN, "b", NULL, 0, &err), -1);
	assert_non_null(strstr(tbuf_cstr(&err), "not part of a distributed domain"));

	add_domain(A.st);
	add_user(A.st, "alice", STORE_OK);
	add_user(A.st, "bob", STORE_OK);
	join(&B);
	join(&C);
	WAIT_FOR(has_user(B.st, "bob@example.test") && has_user(C.st, "bob@example.test") &&
		 knows_node(B.st, "c") && knows_node(C.st, "b"));
	cluster_bulk_set_handler(A.cl, echo, &HA);
	cluster_bulk_set_handler(B.cl, echo, &HB);
	cluster_bulk_set_handler(C.cl, echo, &HC);
	tbuf_free(&err);
}

/* ---- the bulk channel ---- */

/* One request from `from` to node `to`: the reply must be "<to>|<from>|<payload>". */
static void round_trip(tnode *from, const char *to, const char *payload)
{
	cluster_bulk *b = NULL;
	tbuf err = TBUF_INIT, reply = TBUF_INIT, want = TBUF_INIT;
	uint64_t tag = 0;

	if (cluster_bulk_open(from->cl, to, &b, &err) != 0)
		fail_msg("bulk open %s -> %s: %s", from->name, to, tbuf_cstr(&err));
	assert_int_equal(cluster_bulk_send(b, 0x0102030405060708ull, payload, strlen(payload), &err), 0);
	assert_int_equal(cluster_bulk_recv(b, &tag, &reply, 10000, &err), 1);
	assert_true(tag == 0x0102030405060708ull);
	tbuf_appendf(&want, "%s|%s|%s", to, from->name, payload);
	assert_string_equal(tbuf_cstr(&reply), tbuf_cstr(&want));
	cluster_bulk_close(&b);
	assert_null(b);
	tbuf_free(&err);
	tbuf_free(&reply);
	tbuf_free(&want);
}

static void test_bulk_slave_master(void **state)
{
	(void)state;
	round_trip(&B, "a", "from b to the master");
	assert_string_equal(HA.last_peer, "b");
	round_trip(&A, "b", "from the master to b");
	assert_string_equal(HB.last_peer, "a");
	round_trip(&C, "a", "from c");
}

static void test_bulk_slave_slave(void **state)
{
	(void)state;
	round_trip(&B, "c", "b to c");
	assert_string_equal(HC.last_peer, "b");
	round_trip(&C, "b", "c to b");
	assert_string_equal(HB.last_peer, "c");
}

/* A window of 8 requests in flight, 64 in all: replies come back in order, tags right. */
static void test_bulk_pipelined(void **state)
{
	cluster_bulk *b = NULL;
	tbuf err = TBUF_INIT, reply = TBUF_INIT;
	char req[64], want[80];
	uint64_t sent = 0, got = 0, tag;

	(void)state;
	assert_int_equal(cluster_bulk_open(B.cl, "a", &b, &err), 0);
	while (got < 64) {
		while (sent < 64 && sent - got < 8) {
			snprintf(req, sizeof(req), "request %llu", (unsigned long long)sent);
			assert_int_equal(cluster_bulk_send(b, 1000 + sent, req, strlen(req), &err), 0);
			sent++;
		}
		assert_int_equal(cluster_bulk_recv(b, &tag, &reply, 10000, &err), 1);
		assert_true(tag == 1000 + got);
		snprintf(want, sizeof(want), "a|b|request %llu", (unsigned long long)got);
		assert_string_equal(tbuf_cstr(&reply), want);
		got++;
	}
	assert_int_equal(cluster_bulk_recv(b, &tag, &reply, 200, &err), 0);   /* nothing more */
	cluster_bulk_close(&b);
	tbuf_free(&err);
	tbuf_free(&reply);
}

/* 4 MB each way; a request over max_frame is refused before it is sent. */
static void test_bulk_large(void **state)
{
	cluster_bulk *b = NULL;
	tbuf err = TBUF_INIT, reply = TBUF_INIT;
	uint8_t *big = malloc(MAX_FRAME + 1);
	uint64_t tag = 0;

	(void)state;
	assert_non_null(big);
	for (size_t i = 0; i < MAX_FRAME + 1; i++)
		big[i] = (uint8_t)(i * 7 + (i >> 12));
	assert_int_equal(cluster_bulk_open(B.cl, "c", &b, &err), 0);
	assert_int_equal(cluster_bulk_send(b, 42, big, BIG, &err), 0);
	assert_int_equal(cluster_bulk_recv(b, &tag, &reply, 20000, &err), 1);
	assert_true(tag == 42);
	assert_int_equal(reply.len, BIG + 4);
	assert_memory_equal(reply.data, "c|b|", 4);
	assert_memory_equal(reply.data + 4, big, BIG);
	tbuf_reset(&err);
	assert_int_equal(cluster_bulk_send(b, 43, big, MAX_FRAME, &err), -1);
	assert_non_null(strstr(tbuf_cstr(&err), "max_frame"));
	cluster_bulk_close(&b);
	free(big);
	tbuf_free(&err);
	tbuf_free(&reply);
}

/* Without a handler a request gets an empty reply; unknown nodes cannot be opened. */
static void test_bulk_no_handler(void **state)
{
	cluster_bulk *b = NULL;
	tbuf err = TBUF_INIT, reply = TBUF_INIT;
	uint64_t tag = 0;

	(void)state;
	cluster_bulk_set_handler(C.cl, NULL, NULL);
	int before = atomic_load(&HC.calls);
	assert_int_equal(cluster_bulk_open(A.cl, "c", &b, &err), 0);
	assert_int_equal(cluster_bulk_send(b, 5, "x", 1, &err), 0);
	assert_int_equal(cluster_bulk_recv(b, &tag, &reply, 10000, &err), 1);
	assert_true(tag == 5);
	assert_int_equal(reply.len, 0);
	assert_int_equal(atomic_load(&HC.calls), before);
	cluster_bulk_close(&b);
	cluster_bulk_set_handler(C.cl, echo, &HC);
	assert_int_equal(cluster_bulk_open(A.cl, "nosuchnode", &b, &err), -1);
	assert_non_null(strstr(tbuf_cstr(&err), "no node 'nosuchnode'"));
	assert_int_equal(cluster_bulk_open(A.cl, "a", &b, &err), -1);
	tbuf_free(&err);
	tbuf_free(&reply);
}

/* A client with an unregistered CURVE key: ZAP refuses it, nothing reaches the handler,
 * the request simply gets no answer, and warning.log names the key. */
static void test_bulk_forged_key(void **state)
{
	Tern__Node *a = NULL;
	char zpub[41], zsec[41], ep[64];
	int zero = 0;

	(void)state;
	assert_int_equal(store_node_get(B.st, "a", &a), STORE_OK);
	assert_int_equal(zmq_curve_keypair(zpub, zsec), 0);
	void *ctx = zmq_ctx_new();
	void *s = zmq_socket(ctx, ZMQ_DEALER);
	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%u", a->bulk_port);
	assert_int_equal(zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)), 0);
	assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, a->curve_public.data, 32), 0);
	assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, zpub, 40), 0);
	assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, zsec, 40), 0);
	assert_int_equal(zmq_connect(s, ep), 0);
	int before = atomic_load(&HA.calls);
	assert_int_equal(zmq_send(s, "\0\0\0\0\0\0\0\1forged", 14, ZMQ_DONTWAIT), 14);
	zmq_pollitem_t it = { s, 0, ZMQ_POLLIN, 0 };
	assert_int_equal(zmq_poll(&it, 1, 1500), 0);
	assert_int_equal(atomic_load(&HA.calls), before);
	WAIT_FOR(log_has("warning.log", "refused a bulk connection") && log_has("warning.log", zpub));
	zmq_close(s);
	zmq_ctx_term(ctx);
	store_free_record(a);
}

/* ---- home moves ---- */

static void user_id(const char *addr, uint8_t id[16])
{
	Tern__User *u = NULL;

	assert_int_equal(store_user_find(A.st, addr, &u), STORE_OK);
	assert_int_equal(u->id.len, 16);
	memcpy(id, u->id.data, 16);
	store_free_record(u);
}

/* 1 when node n's copy of addr's entry is (home, state, target). */
static int entry_is(tnode *n, const char *addr, const char *home, Tern__HomeState state, const char *target)
{
	Tern__User *u = NULL;
	int ok = store_user_find(n->st, addr, &u) == STORE_OK && u->home_state == state &&
		 strcasecmp(u->home != NULL ? u->home : "", home) == 0 &&
		 strcasecmp(u->home_target != NULL ? u->home_target : "", target) == 0;

	store_free_record(u);
	return ok;
}

static int everywhere(const char *addr, const char *home, Tern__HomeState state, const char *target)
{
	return entry_is(&A, addr, home, state, target) && entry_is(&B, addr, home, state, target) &&
	       entry_is(&C, addr, home, state, target);
}

/* rc of the move, the source in src, the error text in why (both may be NULL). */
static int move(tnode *n, const uint8_t id[16], cluster_move_op op, const char *target, char *src, char *why,
		size_t wn)
{
	tbuf err = TBUF_INIT;
	char s[64];
	int rc = cluster_home_move(n->cl, id, op, target, s, sizeof(s), &err);

	if (src != NULL)
		snprintf(src, 64, "%s", s);
	if (why != NULL)
		snprintf(why, wn, "%s", tbuf_cstr(&err));
	tbuf_free(&err);
	return rc;
}

static void test_move_from_slave(void **state)
{
	uint8_t alice[16];
	char src[64], why[512];

	(void)state;
	user_id("alice@example.test", alice);
	assert_int_equal(move(&B, alice, CLUSTER_MOVE_BEGIN, "b", src, why, sizeof(why)), 0);
	assert_string_equal(src, "a");
	WAIT_FOR(everywhere("alice@example.test", "a", TERN__HOME_STATE__HOME_MOVING, "b"));
	/* a resume */
	assert_int_equal(move(&B, alice, CLUSTER_MOVE_BEGIN, "b", src, why, sizeof(why)), 0);
	assert_string_equal(src, "a");
	/* a second migration to another node */
	assert_int_equal(move(&C, alice, CLUSTER_MOVE_BEGIN, "c", NULL, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "a migration of alice@example.test to b is running"));
	assert_int_equal(move(&A, alice, CLUSTER_MOVE_COMMIT, "c", NULL, why, sizeof(why)), -1);
	/* only the target asks for its moves */
	assert_int_equal(move(&C, alice, CLUSTER_MOVE_COMMIT, "b", NULL, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "the target asks"));
	assert_true(everywhere("alice@example.test", "a", TERN__HOME_STATE__HOME_MOVING, "b"));
	/* the commit point, and its replay */
	assert_int_equal(move(&B, alice, CLUSTER_MOVE_COMMIT, "b", src, why, sizeof(why)), 0);
	assert_string_equal(src, "a");
	WAIT_FOR(everywhere("alice@example.test", "b", TERN__HOME_STATE__HOME_ACTIVE, ""));
	char home[64];
	assert_int_equal(cluster_user_home(A.st, "alice@example.test", home, sizeof(home)), 1);
	assert_string_equal(home, "b");
	assert_int_equal(move(&B, alice, CLUSTER_MOVE_COMMIT, "b", src, why, sizeof(why)), 0);
	assert_string_equal(src, "b");
	/* a committed move cannot be aborted */
	assert_int_equal(move(&B, alice, CLUSTER_MOVE_ABORT, "b", NULL, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "was committed"));
	/* already there */
	assert_int_equal(move(&B, alice, CLUSTER_MOVE_BEGIN, "b", NULL, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "already lives on node b"));
}

static void test_move_abort_from_slave(void **state)
{
	uint8_t alice[16];
	char src[64], why[512];

	(void)state;
	user_id("alice@example.test", alice);
	assert_int_equal(move(&C, alice, CLUSTER_MOVE_BEGIN, "c", src, why, sizeof(why)), 0);
	assert_string_equal(src, "b");
	WAIT_FOR(everywhere("alice@example.test", "b", TERN__HOME_STATE__HOME_MOVING, "c"));
	assert_int_equal(move(&C, alice, CLUSTER_MOVE_ABORT, "c", src, why, sizeof(why)), 0);
	WAIT_FOR(everywhere("alice@example.test", "b", TERN__HOME_STATE__HOME_ACTIVE, ""));
	assert_int_equal(move(&C, alice, CLUSTER_MOVE_ABORT, "c", NULL, why, sizeof(why)), 0);   /* replay */
	assert_int_equal(move(&C, alice, CLUSTER_MOVE_COMMIT, "c", NULL, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "no migration of alice@example.test to c"));
}

static void test_move_on_master(void **state)
{
	uint8_t bob[16], alice[16];
	char src[64], why[512];

	(void)state;
	user_id("bob@example.test", bob);
	user_id("alice@example.test", alice);
	assert_int_equal(move(&A, bob, CLUSTER_MOVE_BEGIN, "c", src, why, sizeof(why)), 0);
	assert_string_equal(src, "a");
	WAIT_FOR(everywhere("bob@example.test", "a", TERN__HOME_STATE__HOME_MOVING, "c"));
	assert_int_equal(move(&A, bob, CLUSTER_MOVE_ABORT, "c", src, why, sizeof(why)), 0);
	WAIT_FOR(everywhere("bob@example.test", "a", TERN__HOME_STATE__HOME_ACTIVE, ""));
	/* alice comes home to the master */
	assert_int_equal(move(&A, alice, CLUSTER_MOVE_BEGIN, "a", src, why, sizeof(why)), 0);
	assert_string_equal(src, "b");
	assert_int_equal(move(&A, alice, CLUSTER_MOVE_COMMIT, "a", src, why, sizeof(why)), 0);
	WAIT_FOR(everywhere("alice@example.test", "a", TERN__HOME_STATE__HOME_ACTIVE, ""));
}

static void test_move_refusals(void **state)
{
	uint8_t bob[16], nobody[16];
	char why[512];

	(void)state;
	user_id("bob@example.test", bob);
	memset(nobody, 0x5a, sizeof(nobody));
	assert_int_equal(move(&A, nobody, CLUSTER_MOVE_BEGIN, "b", NULL, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "no such user"));
	assert_int_equal(move(&B, nobody, CLUSTER_MOVE_BEGIN, "b", NULL, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "no such user"));
	assert_int_equal(move(&A, bob, CLUSTER_MOVE_BEGIN, "zz", NULL, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "no node 'zz'"));
	assert_int_equal(move(&A, bob, CLUSTER_MOVE_BEGIN, "bad name!", NULL, why, sizeof(why)), -1);
	assert_int_equal(move(&A, bob, (cluster_move_op)9, "b", NULL, why, sizeof(why)), -1);
	assert_true(everywhere("bob@example.test", "a", TERN__HOME_STATE__HOME_ACTIVE, ""));
}

static void test_move_frames_validated(void **state)
{
	Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT, *d = NULL;
	Tern__Cluster__HomeMove m = TERN__CLUSTER__HOME_MOVE__INIT;
	Tern__Cluster__HomeMoveOk ok = TERN__CLUSTER__HOME_MOVE_OK__INIT;
	uint8_t id[16] = { 0 };
	tbuf f = TBUF_INIT;
	char why[160];

	(void)state;
	m.op = TERN__CLUSTER__HOME_MOVE__OP__BEGIN;
	m.user_id.data = id;
	m.user_id.len = 16;
	m.target = (char *)"b";
	e.id = 7;
	e.body_case = TERN__CLUSTER__ENVELOPE__BODY_HOME_MOVE;
	e.home_move = &m;
	cluster_frame_encode(&e, &f);
	assert_int_equal(cluster_frame_decode(f.data, f.len, 65536, &d, why, sizeof(why)), 0);
	cluster_frame_free(&d);
	m.user_id.len = 15;
	cluster_frame_encode(&e, &f);
	assert_int_equal(cluster_frame_decode(f.data, f.len, 65536, &d, why, sizeof(why)), -1);
	m.user_id.len = 16;
	m.op = (Tern__Cluster__HomeMove__Op)4;
	cluster_frame_encode(&e, &f);
	assert_int_equal(cluster_frame_decode(f.data, f.len, 65536, &d, why, sizeof(why)), -1);
	m.op = TERN__CLUSTER__HOME_MOVE__OP__UNSPECIFIED;
	cluster_frame_encode(&e, &f);
	assert_int_equal(cluster_frame_decode(f.data, f.len, 65536, &d, why, sizeof(why)), -1);
	m.op = TERN__CLUSTER__HOME_MOVE__OP__ABORT;
	m.target = (char *)"not a node";
	cluster_frame_encode(&e, &f);
	assert_int_equal(cluster_frame_decode(f.data, f.len, 65536, &d, why, sizeof(why)), -1);
	e.body_case = TERN__CLUSTER__ENVELOPE__BODY_HOME_MOVE_OK;
	e.home_move_ok = &ok;
	ok.source = (char *)"a";
	ok.home = (char *)"b";
	ok.state = TERN__HOME_STATE__HOME_ACTIVE;
	cluster_frame_encode(&e, &f);
	assert_int_equal(cluster_frame_decode(f.data, f.len, 65536, &d, why, sizeof(why)), 0);
	cluster_frame_free(&d);
	ok.state = (Tern__HomeState)3;
	cluster_frame_encode(&e, &f);
	assert_int_equal(cluster_frame_decode(f.data, f.len, 65536, &d, why, sizeof(why)), -1);
	ok.state = TERN__HOME_STATE__HOME_MOVING;
	ok.home = (char *)"x y";
	cluster_frame_encode(&e, &f);
	assert_int_equal(cluster_frame_decode(f.data, f.len, 65536, &d, why, sizeof(why)), -1);
	tbuf_free(&f);
}

static void test_fault_setting(void **state)
{
	tern_conf c;
	char *err = NULL;

	(void)state;
	assert_int_equal(tern_conf_load_string(&c, "[migrate]\nfault = slow:5, crash:commit ,disk_full\n", 0, &err), 0);
	assert_true(cl_fault_has(&c, "crash:commit"));
	assert_true(cl_fault_has(&c, "disk_full"));
	assert_false(cl_fault_has(&c, "crash:com"));
	assert_false(cl_fault_has(&c, "crash:prepared"));
	tern_conf_free(&c);
	assert_false(cl_fault_has(&A.conf, "crash:commit"));
}

/* Without the master a move is not decided: -2, try again later. */
static void test_move_master_down(void **state)
{
	uint8_t bob[16];
	char why[512];

	(void)state;
	user_id("bob@example.test", bob);
	cluster_close(&A.cl);
	int64_t t0 = tern_mono_ms();
	assert_int_equal(move(&B, bob, CLUSTER_MOVE_BEGIN, "b", NULL, why, sizeof(why)), -2);
	assert_true(tern_mono_ms() - t0 < 10000);
	/* and the bulk channel of a node that is down: no answer within the timeout */
	cluster_bulk *b = NULL;
	tbuf err = TBUF_INIT, reply = TBUF_INIT;
	uint64_t tag;
	assert_int_equal(cluster_bulk_open(B.cl, "a", &b, &err), 0);
	assert_int_equal(cluster_bulk_send(b, 1, "x", 1, &err), 0);
	assert_int_equal(cluster_bulk_recv(b, &tag, &reply, 500, &err), 0);
	cluster_bulk_close(&b);
	tbuf_free(&err);
	tbuf_free(&reply);
	/* the master comes back: the move goes through */
	node_start(&A);
	WAIT_FOR(move(&B, bob, CLUSTER_MOVE_BEGIN, "b", NULL, why, sizeof(why)) == 0);
	WAIT_FOR(everywhere("bob@example.test", "a", TERN__HOME_STATE__HOME_MOVING, "b"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_setup_domain),
		cmocka_unit_test(test_bulk_slave_master),
		cmocka_unit_test(test_bulk_slave_slave),
		cmocka_unit_test(test_bulk_pipelined),
		cmocka_unit_test(test_bulk_large),
		cmocka_unit_test(test_bulk_no_handler),
		cmocka_unit_test(test_bulk_forged_key),
		cmocka_unit_test(test_move_from_slave),
		cmocka_unit_test(test_move_abort_from_slave),
		cmocka_unit_test(test_move_on_master),
		cmocka_unit_test(test_move_refusals),
		cmocka_unit_test(test_move_frames_validated),
		cmocka_unit_test(test_fault_setting),
		cmocka_unit_test(test_move_master_down),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
