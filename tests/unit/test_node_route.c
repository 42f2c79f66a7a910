/* test_node_route.c - routing in a distributed domain, deliverer side (DESIGN.md §5): on
 * node "a" of a domain with a node record "c", a message to a user of a, a user homed on
 * c, a group with members on both nodes, an alias to the user of c and a remote address
 * is ONE durable batch: a's user in her mailbox, one queue entry holding c's user once and
 * the remote address; a message relayed by a cluster peer takes its recipients as final
 * (no alias again, no footer); the RCPT check of relayed recipients. */
#include "store_test_util.h"
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "mail_test_util.h"

#define MSG "From: Rob <rob@remote.test>\r\nTo: team@example.test\r\nSubject: plan\r\n\r\nHello all.\r\n"
#define FOOTER "-- \nExample Corp footer"

typedef struct fixture {
	test_store *t;
	tern_conf conf;
	deliverer *d;
	uint8_t alice[16], carol[16], dave[16];
} fixture;

static void add_node(store *st, const char *name)
{
	Tern__Node n = TERN__NODE__INIT;
	uint8_t key[32] = { 7 };

	n.name = (char *)name;
	n.curve_public.data = key;
	n.curve_public.len = sizeof(key);
	n.address = (char *)"127.0.0.1";
	n.fingerprint = (char *)"0000000000000000000000000000000000000000000000000000000000000000";
	n.submission_port = 587;
	assert_int_equal(store_node_put(st, &n, STORE_SYNC, NULL), STORE_OK);
}

/* Node "a" of a domain with node "c": alice and dave live on a, carol on c; group team =
 * alice + carol; alias info -> carol; alias dave -> alice (takes dave's own mail). */
static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	Tern__Group g = TERN__GROUP__INIT;
	char *addresses[] = { (char *)"team" };
	char *members[] = { (char *)"alice@example.test", (char *)"carol@example.test" };
	char *err = NULL;

	f->t = ts_new();
	store_set_node_name(f->t->st, "a");
	ts_add_domain(f->t->st);
	add_node(f->t->st, "c");
	ts_add_user_homed(f->t->st, "alice", "", f->alice);
	ts_add_user_homed(f->t->st, "carol", "c", f->carol);
	ts_add_user_homed(f->t->st, "dave", "a", f->dave);
	g.name = (char *)"team";
	g.domain = (char *)"example.test";
	g.addresses = addresses;
	g.n_addresses = 1;
	g.members = members;
	g.n_members = 2;
	assert_int_equal(store_group_add(f->t->st, &g, STORE_SYNC, NULL), STORE_OK);
	assert_int_equal(store_alias_add(f->t->st, "example.test", "info", "carol@example.test", NULL,
					 STORE_SYNC, NULL), STORE_OK);
	assert_int_equal(store_alias_add(f->t->st, "example.test", "dave", "alice@example.test", NULL,
					 STORE_SYNC, NULL), STORE_OK);
	if (tern_conf_load_string(&f->conf, "[server]\nhostname = a.example.test\n", 0, &err) < 0)
		fail_msg("conf: %s", err);
	f->d = mt_deliverer_new(f->t->st, &f->conf, "a.example.test");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	deliverer_free(&f->d);
	tern_conf_free(&f->conf);
	ts_free(&f->t);
	free(f);
	return 0;
}

/* Submit data from sender to the NULL-terminated rcpts and wait for the result. */
static deliver_result submit(fixture *f, const char *sender, const char *const *rcpts,
			     const char *data, const char *relayed_from)
{
	deliver_message m = {
		.sender = sender, .data = data, .len = strlen(data),
		.helo = "peer.example.test", .client_ip = "192.0.2.7", .protocol = "ESMTPS",
		.service = "SMTP", .relayed_from = relayed_from,
	};

	return mt_deliver(f->d, &m, rcpts);
}

/* Messages in the user's INBOX (-1: no mailbox here); the last body in b->last. */
static int inbox_count(fixture *f, const uint8_t user[16], mt_inbox *b)
{
	return mt_inbox_count(f->t->st, user, b);
}

/* ---- tests ---- */

static void test_plan_routes_by_home(void **state)
{
	fixture *f = *state;
	const char *rcpts[] = { "alice@example.test", "carol@example.test", "team@example.test",
				"info@example.test", "bob@remote.test", NULL };
	mt_inbox b = { 0 };
	Tern__QueueEntry **list = NULL;
	size_t n = 0;

	deliver_result r = submit(f, "rob@remote.test", rcpts, MSG, NULL);
	assert_int_equal(r.rc, STORE_OK);
	assert_int_equal(r.delivered_local, 1);    /* alice, once */
	assert_int_equal(r.queued_node, 1);        /* carol, once, by every path */
	assert_int_equal(r.queued_remote, 1);
	assert_int_equal(inbox_count(f, f->alice, &b), 1);
	assert_non_null(strstr(tbuf_cstr(&b.last), "Hello all."));
	/* one entry in the same batch, with carol and the remote address */
	assert_int_equal(store_queue_list(f->t->st, &list, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(list[0]->n_rcpts, 2);
	assert_string_equal(list[0]->rcpts[0]->address, "carol@example.test");
	assert_string_equal(list[0]->rcpts[1]->address, "bob@remote.test");
	assert_string_equal(list[0]->sender, "rob@remote.test");
	store_free_list((void **)list, n);
	deliver_stats ds;
	deliverer_stats(f->d, &ds);
	assert_int_equal(ds.queued_node, 1);
	assert_int_equal(ds.queued_remote, 1);
	tbuf_free(&b.last);
}

static void test_alias_to_other_node(void **state)
{
	fixture *f = *state;
	const char *rcpts[] = { "info@example.test", NULL };
	Tern__QueueEntry **list = NULL;
	size_t n = 0;
	mt_inbox b = { 0 };

	deliver_result r = submit(f, "rob@remote.test", rcpts, MSG, NULL);
	assert_int_equal(r.rc, STORE_OK);
	assert_int_equal(r.delivered_local, 0);
	assert_int_equal(r.queued_node, 1);
	assert_int_equal(r.queued_remote, 0);
	assert_int_equal(inbox_count(f, f->alice, &b), 0);
	assert_int_equal(store_queue_list(f->t->st, &list, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(list[0]->n_rcpts, 1);
	assert_string_equal(list[0]->rcpts[0]->address, "carol@example.test");
	assert_int_equal(list[0]->rcpts[0]->state, TERN__QUEUE_RCPT__STATE__PENDING);
	store_free_list((void **)list, n);
	tbuf_free(&b.last);
}

/* dave's own mail goes to alice (alias "dave -> alice"); relayed mail to dave is final. */
static void test_relayed_is_final(void **state)
{
	fixture *f = *state;
	const char *rcpts[] = { "dave@example.test", NULL };
	Tern__Domain *d = NULL;
	mt_inbox b = { 0 };

	assert_int_equal(store_domain_get(f->t->st, "example.test", &d), STORE_OK);
	char *old = d->footer;
	d->footer = (char *)FOOTER;
	assert_int_equal(store_domain_update(f->t->st, d, STORE_SYNC, NULL), STORE_OK);
	d->footer = old;
	store_free_record(d);

	deliver_result r = submit(f, "alice@example.test", rcpts, MSG, NULL);
	assert_int_equal(r.rc, STORE_OK);
	assert_int_equal(inbox_count(f, f->alice, &b), 1);
	assert_int_equal(inbox_count(f, f->dave, &b), 0);

	assert_non_null(strstr(tbuf_cstr(&b.last), "Example Corp footer"));

	r = submit(f, "alice@example.test", rcpts, MSG, "c");
	assert_int_equal(r.rc, STORE_OK);
	assert_int_equal(r.delivered_local, 1);
	assert_int_equal(inbox_count(f, f->alice, &b), 1);
	assert_int_equal(inbox_count(f, f->dave, &b), 1);
	/* the footer was added where the message was accepted first */
	assert_non_null(strstr(tbuf_cstr(&b.last), "Hello all."));
	assert_null(strstr(tbuf_cstr(&b.last), "Example Corp footer"));
	tbuf_free(&b.last);
}

/* A relayed recipient homed elsewhere (its home moved again) is queued for it. */
static void test_relayed_forwarded_again(void **state)
{
	fixture *f = *state;
	const char *rcpts[] = { "carol@example.test", NULL };
	Tern__QueueEntry **list = NULL;
	size_t n = 0;

	deliver_result r = submit(f, "rob@remote.test", rcpts, MSG, "b");
	assert_int_equal(r.rc, STORE_OK);
	assert_int_equal(r.queued_node, 1);
	assert_int_equal(store_queue_list(f->t->st, &list, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(list[0]->rcpts[0]->address, "carol@example.test");
	/* from b, going on to c: due at once */
	assert_true(list[0]->next_try <= list[0]->created);
	store_free_list((void **)list, n);
}

/* Relayed by c for a user this node sees homed on c: the two views of the home differ
 * (replication has not settled), so it is queued to wait [cluster] relay_retry before
 * it goes back, instead of ping-ponging between the nodes. */
static void test_relayed_back_waits(void **state)
{
	fixture *f = *state;
	const char *rcpts[] = { "carol@example.test", NULL };
	Tern__QueueEntry **list = NULL;
	size_t n = 0;

	deliver_result r = submit(f, "rob@remote.test", rcpts, MSG, "c");
	assert_int_equal(r.rc, STORE_OK);
	assert_int_equal(r.queued_node, 1);
	assert_int_equal(store_queue_list(f->t->st, &list, &n), STORE_OK);
	for (size_t i = 0; i < n; i++) {
		if (list[i]->next_try > list[i]->created) {
			assert_string_equal(list[i]->rcpts[0]->address, "carol@example.test");
			assert_int_equal(list[i]->next_try - list[i]->created, f->conf.cluster_relay_retry);
			store_free_list((void **)list, n);
			return;
		}
	}
	store_free_list((void **)list, n);
	fail_msg("no queue entry waits before going back to c");
}

static void test_check_relayed_rcpt(void **state)
{
	fixture *f = *state;
	char reply[256];

	assert_int_equal(deliver_check_relayed_rcpt(f->d, "alice@example.test", 100, reply, sizeof(reply)), 0);
	assert_string_equal(reply, "");
	assert_int_equal(deliver_check_relayed_rcpt(f->d, "carol@example.test", 100, reply, sizeof(reply)), 0);
	assert_int_equal(deliver_check_relayed_rcpt(f->d, "nobody@example.test", 0, reply, sizeof(reply)),
			 STORE_ENOTFOUND);
	assert_non_null(strstr(reply, "550 5.1.1"));
	/* a group address is not final: the peer expands before relaying */
	assert_int_equal(deliver_check_relayed_rcpt(f->d, "team@example.test", 0, reply, sizeof(reply)),
			 STORE_ENOTFOUND);
	assert_int_equal(deliver_check_relayed_rcpt(f->d, "bob@remote.test", 0, reply, sizeof(reply)),
			 STORE_EINVAL);
	assert_non_null(strstr(reply, "550 5.7.1"));
	assert_int_equal(deliver_check_relayed_rcpt(f->d, "not-an-address", 0, reply, sizeof(reply)),
			 STORE_EINVAL);
	assert_non_null(strstr(reply, "501"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_plan_routes_by_home, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alias_to_other_node, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relayed_is_final, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relayed_forwarded_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relayed_back_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_relayed_rcpt, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
