/* test_cluster_fb.c - free/busy and resource bookings across a distributed domain, over
 * real ZeroMQ on 127.0.0.1: a master "a" and slaves "b" and "c" (three stores, three
 * cluster objects in this process). The master's handlers stand in for node/dav: a
 * fixed busy time for its own user and a booking table for one resource. The tests run
 * in order and build on each other. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "cluster_test_util.h"
#include "cluster_wire.h"

#define T0 1900000000       /* a time well in the future */

static tnode A, B, C;

/* ---- the master's handlers ---- */

static pthread_mutex_t book_mu = PTHREAD_MUTEX_INITIALIZER;
static char booked_uid[64];             /* the one slot of room@example.test */
static atomic_int in_handler, overlap, book_calls, fb_calls;

static int fb_handler(void *arg, const char *address, int64_t from, int64_t to, cluster_busy **list_r,
		      size_t *n_r, tbuf *why)
{
	(void)arg;
	atomic_fetch_add(&fb_calls, 1);
	if (strcasecmp(address, "alice@example.test") != 0) {
		tbuf_appendf(why, "no such user: %s", address);
		return -1;
	}
	cluster_busy *l = malloc(sizeof(*l));
	l[0] = (cluster_busy){ from + 3600, from + 7200, TERN__BUSY_PERIOD__TYPE__TENTATIVE };
	(void)to;
	*list_r = l;
	*n_r = 1;
	return 0;
}

/* Books the slot when free; holds for a moment so that racing requests would overlap if
 * the master did not take them one at a time. */
static int book_handler(void *arg, const char *resource, const char *organizer, const char *uid, const char *ical,
			size_t len, int cancel, tbuf *why)
{
	(void)arg;
	(void)ical;
	(void)len;
	if (atomic_fetch_add(&in_handler, 1) != 0)
		atomic_store(&overlap, 1);
	atomic_fetch_add(&book_calls, 1);
	usleep(2000);
	int rc;
	pthread_mutex_lock(&book_mu);
	if (strcmp(resource, "room@example.test") != 0) {
		tbuf_appendf(why, "no such resource: %s", resource);
		rc = -1;
	} else if (cancel) {
		if (strcmp(booked_uid, uid) == 0)
			booked_uid[0] = '\0';
		rc = 1;
	} else if (booked_uid[0] == '\0' || strcmp(booked_uid, uid) == 0) {
		snprintf(booked_uid, sizeof(booked_uid), "%s", uid);
		rc = 1;
	} else {
		tbuf_appendf(why, "%s is already booked at that time (asked by %s)", resource, organizer);
		rc = 0;
	}
	pthread_mutex_unlock(&book_mu);
	atomic_fetch_sub(&in_handler, 1);
	return rc;
}

/* ---- nodes ---- */

static const cluster_handlers a_handlers = { fb_handler, book_handler, NULL };

static int group_setup(void **state)
{
	(void)state;
	if (logs_open("tern-clfb") != 0)
		return -1;
	A.handlers = &a_handlers;
	node_init(&A, "a", "tern-clfb");
	node_init(&B, "b", "tern-clfb");
	node_init(&C, "c", "tern-clfb");
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

/* 1 when address's busy time asked at node n is exactly want[0..nw) (0 on errors). */
static int busy_is(tnode *n, const char *address, int64_t from, int64_t to, const cluster_busy *want, size_t nw)
{
	cluster_busy *l = NULL;
	size_t k = 0;
	tbuf err = TBUF_INIT;
	int ok = cluster_freebusy_get(n->cl, address, from, to, &l, &k, &err) == 0 && k == nw;

	for (size_t i = 0; ok && i < nw; i++)
		ok = l[i].start == want[i].start && l[i].end == want[i].end && l[i].type == want[i].type;
	free(l);
	tbuf_free(&err);
	return ok;
}

static const cluster_busy bob_busy[] = {
	{ T0 + 3600, T0 + 7200, TERN__BUSY_PERIOD__TYPE__BUSY },
	{ T0 + 86400, T0 + 90000, TERN__BUSY_PERIOD__TYPE__TENTATIVE },
};

static void test_setup_domain(void **state)
{
	tbuf err = TBUF_INIT;

	(void)state;
	add_domain(A.st);
	add_user(A.st, "alice", STORE_OK);
	add_user(A.st, "bob", STORE_OK);
	add_user(A.st, "carol", STORE_OK);
	node_join(&A, &B);
	node_join(&A, &C);
	WAIT_FOR(has_user(B.st, "bob@example.test") && has_user(C.st, "carol@example.test"));
	if (cluster_user_set_home(A.cl, "bob@example.test", "b", &err) != 0 ||
	    cluster_user_set_home(A.cl, "carol@example.test", "c", &err) != 0)
		fail_msg("set home: %s", tbuf_cstr(&err));
	char home[64];
	WAIT_FOR(cluster_user_home(C.st, "bob@example.test", home, sizeof(home)) == 1 &&
		 cluster_user_home(B.st, "bob@example.test", home, sizeof(home)) == 0 &&
		 cluster_user_home(B.st, "carol@example.test", home, sizeof(home)) == 1);
	tbuf_free(&err);
}

static void test_push_and_query(void **state)
{
	(void)state;
	/* nothing pushed yet: the master knows no busy time of bob */
	assert_true(busy_is(&A, "bob@example.test", T0, T0 + 10 * 86400, NULL, 0));
	assert_int_equal(cluster_freebusy_push(B.cl, "bob@example.test", bob_busy, 2, T0, T0 + 30 * 86400), 0);
	WAIT_FOR(busy_is(&A, "bob@example.test", T0, T0 + 10 * 86400, bob_busy, 2));
	/* another slave asks the master */
	assert_true(busy_is(&C, "bob@example.test", T0, T0 + 10 * 86400, bob_busy, 2));
	/* clipped to the range asked */
	cluster_busy clipped = { T0 + 5400, T0 + 7200, TERN__BUSY_PERIOD__TYPE__BUSY };
	assert_true(busy_is(&C, "bob@example.test", T0 + 5400, T0 + 80000, &clipped, 1));
	/* a user homed on the master: its handler answers */
	cluster_busy alice = { T0 + 3600, T0 + 7200, TERN__BUSY_PERIOD__TYPE__TENTATIVE };
	assert_true(busy_is(&B, "alice@example.test", T0, T0 + 86400, &alice, 1));
	assert_true(atomic_load(&fb_calls) >= 1);
	/* an unknown address: the master refuses */
	cluster_busy *l = NULL;
	size_t n = 0;
	tbuf err = TBUF_INIT;
	assert_int_equal(cluster_freebusy_get(B.cl, "nobody@example.test", T0, T0 + 60, &l, &n, &err), -1);
	assert_non_null(strstr(tbuf_cstr(&err), "no such user"));
	tbuf_free(&err);
	/* invalid pushes are refused before they leave */
	cluster_busy bad = { T0 + 10, T0, TERN__BUSY_PERIOD__TYPE__BUSY };
	assert_int_equal(cluster_freebusy_push(B.cl, "bob@example.test", &bad, 1, T0, T0 + 86400), -1);
	assert_int_equal(cluster_freebusy_push(B.cl, "bob", bob_busy, 2, T0, T0 + 86400), -1);
}

static void test_push_from_other_node_refused(void **state)
{
	(void)state;
	/* c is not bob's home: the master keeps what b pushed */
	assert_int_equal(cluster_freebusy_push(C.cl, "bob@example.test", NULL, 0, T0, T0 + 86400), 0);
	WAIT_FOR(log_has("warning.log", "refused the free/busy of bob@example.test: bob@example.test is not homed "
			 "on node c"));
	assert_true(busy_is(&A, "bob@example.test", T0, T0 + 10 * 86400, bob_busy, 2));
	/* a new push from the home replaces the old one */
	assert_int_equal(cluster_freebusy_push(B.cl, "bob@example.test", bob_busy, 1, T0, T0 + 30 * 86400), 0);
	WAIT_FOR(busy_is(&A, "bob@example.test", T0, T0 + 10 * 86400, bob_busy, 1));
	assert_int_equal(cluster_freebusy_push(B.cl, "bob@example.test", bob_busy, 2, T0, T0 + 30 * 86400), 0);
	WAIT_FOR(busy_is(&A, "bob@example.test", T0, T0 + 10 * 86400, bob_busy, 2));
}

static void test_home_down_still_answered(void **state)
{
	(void)state;
	cluster_close(&B.cl);
	/* wait until the master sees b unavailable */
	WAIT_FOR(log_has("warning.log", "node b is unavailable"));
	assert_true(busy_is(&A, "bob@example.test", T0, T0 + 10 * 86400, bob_busy, 2));
	assert_true(busy_is(&C, "bob@example.test", T0, T0 + 10 * 86400, bob_busy, 2));
}

static void test_master_restart_keeps_pushes(void **state)
{
	(void)state;
	cluster_close(&A.cl);
	/* no master: a slave's question fails instead of hanging */
	cluster_busy *l = NULL;
	size_t n = 0;
	tbuf err = TBUF_INIT;
	int64_t t = tern_mono_ms();
	WAIT_FOR(cluster_freebusy_get(C.cl, "bob@example.test", T0, T0 + 60, &l, &n, &err) == -1);
	assert_true(tern_mono_ms() - t < WAIT_MS);
	tbuf_free(&err);
	node_start(&A);
	assert_int_equal(cluster_get_role(A.cl), CLUSTER_MASTER);
	/* from the node-local row, read back on first use */
	assert_true(busy_is(&A, "bob@example.test", T0, T0 + 10 * 86400, bob_busy, 2));
	WAIT_FOR(busy_is(&C, "bob@example.test", T0, T0 + 10 * 86400, bob_busy, 2));
	/* the home returns; its pushes flow again */
	node_start(&B);
	assert_int_equal(cluster_freebusy_push(B.cl, "bob@example.test", bob_busy + 1, 1, T0, T0 + 30 * 86400), 0);
	WAIT_FOR(busy_is(&C, "bob@example.test", T0, T0 + 10 * 86400, bob_busy + 1, 1));
}

static void test_book_forwarded(void **state)
{
	tbuf why = TBUF_INIT;
	const char *ical = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n";

	(void)state;
	assert_int_equal(cluster_book(B.cl, "room@example.test", "bob@example.test", "uid-1", ical, strlen(ical), 0,
				      &why), 1);
	tbuf_reset(&why);
	assert_int_equal(cluster_book(C.cl, "room@example.test", "carol@example.test", "uid-2", ical, strlen(ical),
				      0, &why), 0);
	assert_non_null(strstr(tbuf_cstr(&why), "already booked"));
	tbuf_reset(&why);
	assert_int_equal(cluster_book(C.cl, "hall@example.test", "carol@example.test", "uid-2", ical, strlen(ical),
				      0, &why), -1);
	assert_non_null(strstr(tbuf_cstr(&why), "no such resource"));
	tbuf_reset(&why);
	/* a cancellation gives the slot back */
	assert_int_equal(cluster_book(B.cl, "room@example.test", "", "uid-1", NULL, 0, 1, &why), 1);
	assert_string_equal(booked_uid, "");
	tbuf_free(&why);
}

typedef struct racer {
	tnode *n;
	int i;
	int rc;
} racer;

static void *race_one(void *arg)
{
	racer *r = arg;
	char uid[32], org[64];
	tbuf why = TBUF_INIT;
	const char *ical = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n";

	snprintf(uid, sizeof(uid), "race-%s-%d", r->n->name, r->i);
	snprintf(org, sizeof(org), "%s@example.test", r->n == &B ? "bob" : "carol");
	r->rc = cluster_book(r->n->cl, "room@example.test", org, uid, ical, strlen(ical), 0, &why);
	tbuf_free(&why);
	return NULL;
}

static void test_book_race(void **state)
{
	enum { N = 10 };
	pthread_t th[2 * N];
	racer rs[2 * N];
	int accepted = 0, declined = 0;

	(void)state;
	atomic_store(&overlap, 0);
	atomic_store(&book_calls, 0);
	for (int i = 0; i < 2 * N; i++) {
		rs[i] = (racer){ i % 2 ? &C : &B, i / 2, -2 };
		assert_int_equal(pthread_create(&th[i], NULL, race_one, &rs[i]), 0);
	}
	for (int i = 0; i < 2 * N; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 2 * N; i++) {
		accepted += rs[i].rc == 1;
		declined += rs[i].rc == 0;
	}
	assert_int_equal(accepted, 1);
	assert_int_equal(declined, 2 * N - 1);
	assert_int_equal(atomic_load(&book_calls), 2 * N);
	assert_int_equal(atomic_load(&overlap), 0);
}

/* The new frames are validated like the others. */
static void test_frames_validated(void **state)
{
	Tern__Cluster__Envelope e = TERN__CLUSTER__ENVELOPE__INIT, *d = NULL;
	Tern__Cluster__FreeBusyPush p = TERN__CLUSTER__FREE_BUSY_PUSH__INIT;
	Tern__Cluster__BookRequest b = TERN__CLUSTER__BOOK_REQUEST__INIT;
	Tern__Cluster__BookReply br = TERN__CLUSTER__BOOK_REPLY__INIT;
	Tern__BusyPeriod bp = TERN__BUSY_PERIOD__INIT, *bpp = &bp;
	tbuf out = TBUF_INIT;
	char why[160];

	(void)state;
	e.id = 7;
	e.body_case = TERN__CLUSTER__ENVELOPE__BODY_FREEBUSY_PUSH;
	e.freebusy_push = &p;
	p.address = (char *)"bob@example.test";
	p.from = T0;
	p.to = T0 + 86400;
	p.periods = &bpp;
	p.n_periods = 1;
	bp.start = T0 + 10;
	bp.end = T0 + 20;
	cluster_frame_encode(&e, &out);
	assert_int_equal(cluster_frame_decode(out.data, out.len, 65536, &d, why, sizeof(why)), 0);
	assert_int_equal(d->freebusy_push->n_periods, 1);
	cluster_frame_free(&d);
	bp.end = T0;                          /* end before start */
	cluster_frame_encode(&e, &out);
	assert_int_equal(cluster_frame_decode(out.data, out.len, 65536, &d, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "FreeBusyPush"));
	bp.end = T0 + 20;
	bp.type = 9;                          /* unknown type */
	cluster_frame_encode(&e, &out);
	assert_int_equal(cluster_frame_decode(out.data, out.len, 65536, &d, why, sizeof(why)), -1);
	bp.type = 0;
	p.address = (char *)"";
	cluster_frame_encode(&e, &out);
	assert_int_equal(cluster_frame_decode(out.data, out.len, 65536, &d, why, sizeof(why)), -1);

	e.body_case = TERN__CLUSTER__ENVELOPE__BODY_BOOK_REQUEST;
	e.book_request = &b;
	b.resource = (char *)"room@example.test";
	b.organizer = (char *)"bob@example.test";
	b.uid = (char *)"";
	cluster_frame_encode(&e, &out);
	assert_int_equal(cluster_frame_decode(out.data, out.len, 65536, &d, why, sizeof(why)), -1);
	b.uid = (char *)"u1";                  /* a request without its invitation */
	cluster_frame_encode(&e, &out);
	assert_int_equal(cluster_frame_decode(out.data, out.len, 65536, &d, why, sizeof(why)), -1);
	b.cancel = 1;                          /* a cancellation needs none */
	cluster_frame_encode(&e, &out);
	assert_int_equal(cluster_frame_decode(out.data, out.len, 65536, &d, why, sizeof(why)), 0);
	cluster_frame_free(&d);

	e.body_case = TERN__CLUSTER__ENVELOPE__BODY_BOOK_REPLY;
	e.book_reply = &br;
	br.result = 5;
	cluster_frame_encode(&e, &out);
	assert_int_equal(cluster_frame_decode(out.data, out.len, 65536, &d, why, sizeof(why)), -1);
	br.result = TERN__CLUSTER__BOOK_REPLY__RESULT__DECLINED;
	e.id = 0;                              /* a reply needs an id */
	cluster_frame_encode(&e, &out);
	assert_int_equal(cluster_frame_decode(out.data, out.len, 65536, &d, why, sizeof(why)), -1);
	tbuf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_setup_domain),
		cmocka_unit_test(test_push_and_query),
		cmocka_unit_test(test_push_from_other_node_refused),
		cmocka_unit_test(test_home_down_still_answered),
		cmocka_unit_test(test_master_restart_keeps_pushes),
		cmocka_unit_test(test_book_forwarded),
		cmocka_unit_test(test_book_race),
		cmocka_unit_test(test_frames_validated),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
