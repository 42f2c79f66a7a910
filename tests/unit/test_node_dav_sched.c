/* test_node_dav_sched.c - resource booking and scheduling on a temporary store: 100
 * concurrent bookings of one slot give exactly one acceptance, who may book, an
 * unavailable resource, updates and cancels, two local users inviting and replying, an
 * external attendee by iMIP, iMIP arriving for a resource, and the outbox free/busy POST. */
#include <pthread.h>
#include "store_test_util.h"
#include "dav_sched_int.h"

typedef struct fx {
	test_store *t;
	tern_conf conf;
	tern_pool *pool;
	deliverer *dlv;
	dav_env env;
	uint8_t bob[16], ann[16];
	Tern__Resource *room;
} fx;

/* An event text; method NULL for a stored object. atts: "ADDR[:PARTSTAT]" items. */
static void event(tbuf *out, const char *method, const char *uid, const char *start, const char *end,
		  const char *org, const char *const *atts, size_t n)
{
	tbuf_append_str(out, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tern test//EN\r\n");
	if (method)
		tbuf_appendf(out, "METHOD:%s\r\n", method);
	tbuf_appendf(out, "BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:%s\r\nDTEND:%s\r\n"
		     "SUMMARY:Planning\r\nDESCRIPTION:secret notes\r\nORGANIZER:mailto:%s\r\n", uid, start, end, org);
	for (size_t i = 0; i < n; i++) {
		char a[200];
		snprintf(a, sizeof(a), "%s", atts[i]);
		char *ps = strchr(a, ':');
		if (ps)
			*ps++ = '\0';
		tbuf_appendf(out, "ATTENDEE;PARTSTAT=%s:mailto:%s\r\n", ps ? ps : "NEEDS-ACTION", a);
	}
	tbuf_append_str(out, "END:VEVENT\r\nEND:VCALENDAR\r\n");
}

static Tern__Resource *add_room(fx *f, const char *name, int available, const char *rule, const char *manager)
{
	Tern__Resource r = TERN__RESOURCE__INIT;
	store_sync_result res;
	char *rules[1] = { (char *)rule };
	char addr[128];
	Tern__Resource *got = NULL;

	r.name = (char *)name;
	r.domain = (char *)"example.test";
	r.type = TERN__RESOURCE__TYPE__ROOM;
	r.available = available;
	r.n_bookable_by = rule ? 1 : 0;
	r.bookable_by = rules;
	r.manager = (char *)(manager ? manager : "");
	assert_int_equal(store_resource_add(f->t->st, &r, STORE_SYNC, &res), STORE_OK);
	snprintf(addr, sizeof(addr), "%s@example.test", name);
	assert_int_equal(store_resource_find(f->t->st, addr, &got), STORE_OK);
	assert_int_equal(dav_provision(f->t->st, got->id.data, 1), STORE_OK);
	return got;
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	char *err = NULL;

	f->t = ts_new();
	ts_add_domain(f->t->st);
	ts_add_user_homed(f->t->st, "bob", "", f->bob);
	ts_add_user_homed(f->t->st, "ann", "", f->ann);
	assert_int_equal(dav_provision(f->t->st, f->bob, 0), STORE_OK);
	assert_int_equal(dav_provision(f->t->st, f->ann, 0), STORE_OK);
	assert_int_equal(tern_conf_load_string(&f->conf, "", 0, &err), 0);
	f->pool = tern_pool_new("cpu", 2, 64);
	deliver_env denv = { f->t->st, &f->conf, "mx.example.test", f->pool };
	f->dlv = deliverer_new(&denv);
	f->env = (dav_env){ .st = f->t->st, .conf = &f->conf, .dlv = f->dlv, .node_name = "n1",
			    .hostname = "mx.example.test" };
	f->room = add_room(f, "room1", 1, "anyone", "ann@example.test");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	store_free_record(f->room);
	tern_pool_free(&f->pool);       /* iMIP hand-offs finish before the store closes */
	deliverer_free(&f->dlv);
	tern_conf_free(&f->conf);
	ts_free(&f->t);
	free(f);
	return 0;
}

/* Objects in owner's collection `coll`. */
static int count_one(const Tern__DavObject *o, void *arg)
{
	(void)o;
	(*(int *)arg)++;
	return 0;
}

static int count_objects(fx *f, const uint8_t owner[16], const char *coll)
{
	Tern__DavCollection *c = NULL;
	int n = 0;
	assert_int_equal(store_dav_collection_get(f->t->st, owner, coll, &c), STORE_OK);
	assert_int_equal(store_dav_object_scan(f->t->st, owner, c->id.data, count_one, &n), STORE_OK);
	store_free_record(c);
	return n;
}

/* The text of owner's object with uid (in any calendar), or NULL (malloc'd). */
static char *object_text(fx *f, const uint8_t owner[16], const char *uid)
{
	Tern__DavCollection *c = NULL;
	Tern__DavObject *o = NULL;
	if (sched_find_uid(f->t->st, owner, uid, &c, &o) != STORE_OK)
		return NULL;
	char *s = strndup((const char *)o->data.data, o->data.len);
	store_free_record(o);
	store_free_record(c);
	return s;
}

static int book(fx *f, const Tern__Resource *r, const char *org, const char *uid, const char *start,
		const char *end, tbuf *why)
{
	char self[128];
	tbuf ev = TBUF_INIT;
	snprintf(self, sizeof(self), "%s@example.test", r->name);
	const char *atts[] = { self };
	event(&ev, "REQUEST", uid, start, end, org, atts, 1);
	tbuf_reset(why);
	int rc = dav_book(&f->env, r, org, uid, ev.data, ev.len, why);
	tbuf_free(&ev);
	return rc;
}

typedef struct racer {
	fx *f;
	int i;
	int rc;
	pthread_barrier_t *go;
} racer;

static void *race(void *arg)
{
	racer *r = arg;
	char uid[32];
	tbuf why = TBUF_INIT;
	snprintf(uid, sizeof(uid), "race-%d", r->i);
	pthread_barrier_wait(r->go);
	r->rc = book(r->f, r->f->room, r->i % 2 ? "bob@example.test" : "ann@example.test", uid,
		     "20310310T100000Z", "20310310T110000Z", &why);
	tbuf_free(&why);
	return NULL;
}

/* The conflict test on one node: 100 requests for one slot, one winner. */
static void test_concurrent_bookings(void **state)
{
	fx *f = *state;
	enum { N = 100 };
	pthread_t th[N];
	racer rs[N];
	pthread_barrier_t go;
	int accepted = 0, declined = 0;

	pthread_barrier_init(&go, NULL, N);
	for (int i = 0; i < N; i++) {
		rs[i] = (racer){ f, i, -2, &go };
		assert_int_equal(pthread_create(&th[i], NULL, race, &rs[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		accepted += rs[i].rc == 1;
		declined += rs[i].rc == 0;
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(accepted, 1);
	assert_int_equal(declined, N - 1);
	assert_int_equal(count_objects(f, f->room->id.data, "calendar"), 1);
}

static void test_bookable_by(void **state)
{
	fx *f = *state;
	tbuf why = TBUF_INIT;
	Tern__Group g = TERN__GROUP__INIT;
	char *members[] = { "bob@example.test" };
	store_sync_result res;

	g.name = "team";
	g.domain = "example.test";
	g.members = members;
	g.n_members = 1;
	assert_int_equal(store_group_add(f->t->st, &g, STORE_SYNC, &res), STORE_OK);

	Tern__Resource *r = add_room(f, "grouproom", 1, "group:team", "mgr@example.test");
	assert_int_equal(book(f, r, "bob@example.test", "g1", "20310401T100000Z", "20310401T110000Z", &why), 1);
	assert_int_equal(book(f, r, "ann@example.test", "g2", "20310402T100000Z", "20310402T110000Z", &why), 0);
	assert_non_null(strstr(tbuf_cstr(&why), "may not book"));
	/* the reservation manager may always book */
	assert_int_equal(book(f, r, "mgr@example.test", "g3", "20310403T100000Z", "20310403T110000Z", &why), 1);
	store_free_record(r);

	r = add_room(f, "domroom", 1, "domain", NULL);
	assert_int_equal(book(f, r, "ann@example.test", "d1", "20310401T100000Z", "20310401T110000Z", &why), 1);
	assert_int_equal(book(f, r, "eve@other.test", "d2", "20310402T100000Z", "20310402T110000Z", &why), 0);
	store_free_record(r);

	r = add_room(f, "userroom", 1, "user:ann@example.test", NULL);
	assert_int_equal(book(f, r, "ann@example.test", "u1", "20310401T100000Z", "20310401T110000Z", &why), 1);
	assert_int_equal(book(f, r, "bob@example.test", "u2", "20310402T100000Z", "20310402T110000Z", &why), 0);
	store_free_record(r);

	r = add_room(f, "srvroom", 1, "server", NULL);
	assert_int_equal(book(f, r, "bob@example.test", "s1", "20310401T100000Z", "20310401T110000Z", &why), 1);
	assert_int_equal(book(f, r, "x@remote.test", "s2", "20310402T100000Z", "20310402T110000Z", &why), 0);
	store_free_record(r);
	tbuf_free(&why);
}

static void test_unavailable(void **state)
{
	fx *f = *state;
	tbuf why = TBUF_INIT, out = TBUF_INIT, err = TBUF_INIT;
	Tern__Resource *r = add_room(f, "closed", 0, "anyone", NULL);

	assert_int_equal(book(f, r, "bob@example.test", "c1", "20310401T100000Z", "20310401T110000Z", &why), 0);
	assert_non_null(strstr(tbuf_cstr(&why), "not available"));
	assert_int_equal(count_objects(f, r->id.data, "calendar"), 0);

	/* free/busy shows it busy all the time */
	dav_actor bob = { { 0 }, "bob@example.test", "Bob" };
	const char *fbreq = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nMETHOD:REQUEST\r\n"
			    "BEGIN:VFREEBUSY\r\nUID:fb1\r\nDTSTAMP:20300101T000000Z\r\n"
			    "DTSTART:20310401T000000Z\r\nDTEND:20310402T000000Z\r\n"
			    "ORGANIZER:mailto:bob@example.test\r\nATTENDEE:mailto:closed@example.test\r\n"
			    "ATTENDEE:mailto:nobody@example.test\r\nEND:VFREEBUSY\r\nEND:VCALENDAR\r\n";
	assert_int_equal(dav_sched_outbox_post(&f->env, &bob, fbreq, strlen(fbreq), &out, &err), 0);
	assert_non_null(strstr(tbuf_cstr(&out), "FBTYPE=BUSY-UNAVAILABLE"));
	assert_non_null(strstr(tbuf_cstr(&out), "3.7;Invalid calendar user"));
	store_free_record(r);
	tbuf_free(&why);
	tbuf_free(&out);
	tbuf_free(&err);
}

static void test_update_cancel(void **state)
{
	fx *f = *state;
	tbuf why = TBUF_INIT;
	const char *bob = "bob@example.test";

	assert_int_equal(book(f, f->room, bob, "A", "20310501T100000Z", "20310501T110000Z", &why), 1);
	assert_int_equal(book(f, f->room, bob, "B", "20310501T110000Z", "20310501T120000Z", &why), 1);
	/* B moved over its own old slot: decided without itself */
	assert_int_equal(book(f, f->room, bob, "B", "20310501T113000Z", "20310501T123000Z", &why), 1);
	/* A moved onto B: declined, and A's old slot is given back */
	assert_int_equal(book(f, f->room, bob, "A", "20310501T120000Z", "20310501T130000Z", &why), 0);
	assert_non_null(strstr(tbuf_cstr(&why), "already booked"));
	assert_int_equal(count_objects(f, f->room->id.data, "calendar"), 1);
	assert_int_equal(book(f, f->room, bob, "C", "20310501T100000Z", "20310501T110000Z", &why), 1);
	/* subject and notes hidden in the resource's calendar */
	char *txt = object_text(f, f->room->id.data, "C");
	assert_non_null(txt);
	assert_null(strstr(txt, "Planning"));
	assert_null(strstr(txt, "secret notes"));
	assert_non_null(strstr(txt, "PARTSTAT=ACCEPTED"));
	free(txt);
	/* CANCEL removes the booking; the slot is free again */
	assert_int_equal(dav_book_cancel(&f->env, f->room, "B"), STORE_OK);
	assert_int_equal(book(f, f->room, bob, "D", "20310501T113000Z", "20310501T123000Z", &why), 1);
	tbuf_free(&why);
}

/* Store text as owner's object (its default calendar); returns the object as stored. */
static Tern__DavObject *put_own(fx *f, const uint8_t owner[16], const char *text, size_t len, const char *uid)
{
	Tern__DavCollection *c = NULL;
	Tern__DavObject *o = NULL;
	assert_int_equal(sched_default_calendar(f->t->st, owner, &c), STORE_OK);
	assert_int_equal(sched_put(&f->env, owner, c->id.data, text, len, NULL, NULL), STORE_OK);
	assert_int_equal(store_dav_object_find_uid(f->t->st, owner, c->id.data, uid, &o), STORE_OK);
	store_free_record(c);
	return o;
}

static void test_invite_and_reply(void **state)
{
	fx *f = *state;
	dav_actor bob = { { 0 }, "bob@example.test", "Bob" }, ann = { { 0 }, "ann@example.test", "Ann" };
	const char *atts[] = { "bob@example.test:ACCEPTED", "ann@example.test", "room1@example.test",
			       "ghost@example.test" };
	tbuf ev = TBUF_INIT, upd = TBUF_INIT;

	memcpy(bob.id, f->bob, 16);
	memcpy(ann.id, f->ann, 16);
	event(&ev, NULL, "m1", "20310601T090000Z", "20310601T100000Z", "bob@example.test", atts, 4);
	Tern__DavObject *o = put_own(f, f->bob, ev.data, ev.len, "m1");
	assert_int_equal(dav_sched_after_write(&f->env, &bob, NULL, o, &upd), 0);
	const char *u = tbuf_cstr(&upd);
	assert_non_null(strstr(u, "SCHEDULE-STATUS=1.2"));       /* ann: delivered */
	assert_non_null(strstr(u, "SCHEDULE-STATUS=3.7"));       /* ghost: no such user */
	assert_non_null(strstr(u, "PARTSTAT=ACCEPTED;SCHEDULE-STATUS=2.0:mailto:room1") ||
			strstr(u, "SCHEDULE-STATUS=2.0;PARTSTAT=ACCEPTED:mailto:room1"));
	store_free_record(o);
	o = put_own(f, f->bob, upd.data, upd.len, "m1");

	/* ann got the invitation in her inbox and calendar, unanswered */
	assert_int_equal(count_objects(f, f->ann, "inbox"), 1);
	char *mine = object_text(f, f->ann, "m1");
	assert_non_null(mine);
	assert_null(strstr(mine, "METHOD:"));
	assert_non_null(strstr(mine, "PARTSTAT=NEEDS-ACTION:mailto:ann@example.test"));
	assert_null(strstr(mine, "SCHEDULE-STATUS"));

	/* ann accepts: bob's copy says so */
	Tern__DavObject *aold = put_own(f, f->ann, mine, strlen(mine), "m1");
	icalcomponent *ac = sched_parse(mine, strlen(mine));
	assert_int_equal(sched_set_param(ac, "ann@example.test", "PARTSTAT", "ACCEPTED"), 1);
	char *acc = icalcomponent_as_ical_string_r(ac);
	icalcomponent_free(ac);
	Tern__DavObject *anew = put_own(f, f->ann, acc, strlen(acc), "m1");
	tbuf_reset(&upd);
	assert_int_equal(dav_sched_after_write(&f->env, &ann, aold, anew, &upd), 0);
	assert_int_equal(upd.len, 0);
	char *bobs = object_text(f, f->bob, "m1");
	assert_non_null(strstr(bobs, "mailto:ann@example.test"));
	icalcomponent *bc = sched_parse(bobs, strlen(bobs));
	assert_string_equal(sched_partstat(bc, "ann@example.test"), "ACCEPTED");
	assert_string_equal(sched_partstat(bc, "room1@example.test"), "ACCEPTED");
	icalcomponent_free(bc);
	assert_int_equal(count_objects(f, f->bob, "inbox"), 1);

	/* bob deletes the event: ann's copy and the room's booking go */
	Tern__DavObject *bold = put_own(f, f->bob, bobs, strlen(bobs), "m1");
	tbuf_reset(&upd);
	assert_int_equal(dav_sched_after_write(&f->env, &bob, bold, NULL, &upd), 0);
	char *gone = object_text(f, f->ann, "m1");
	assert_null(gone);
	assert_null(object_text(f, f->room->id.data, "m1"));

	free(mine);
	free(acc);
	free(bobs);
	store_free_record(o);
	store_free_record(aold);
	store_free_record(anew);
	store_free_record(bold);
	tbuf_free(&ev);
	tbuf_free(&upd);
}

/* An external attendee gets the invitation as a queued iMIP mail. */
static void test_external_imip(void **state)
{
	fx *f = *state;
	dav_actor bob = { { 0 }, "bob@example.test", "Bob B" };
	const char *atts[] = { "carol@remote.test" };
	tbuf ev = TBUF_INIT, upd = TBUF_INIT;
	Tern__QueueEntry **q = NULL;
	size_t nq = 0;

	memcpy(bob.id, f->bob, 16);
	event(&ev, NULL, "x1", "20310701T090000Z", "20310701T100000Z", "bob@example.test", atts, 1);
	Tern__DavObject *o = put_own(f, f->bob, ev.data, ev.len, "x1");
	assert_int_equal(dav_sched_after_write(&f->env, &bob, NULL, o, &upd), 0);
	assert_non_null(strstr(tbuf_cstr(&upd), "SCHEDULE-STATUS=1.1"));
	assert_int_equal(store_queue_list(f->t->st, &q, &nq), STORE_OK);
	assert_int_equal(nq, 1);
	assert_string_equal(q[0]->rcpts[0]->address, "carol@remote.test");
	assert_string_equal(q[0]->sender, "bob@example.test");
	for (size_t i = 0; i < nq; i++)
		store_free_record(q[i]);
	free(q);
	store_free_record(o);
	tbuf_free(&ev);
	tbuf_free(&upd);
}

/* iMIP reaching the resource: the booking is decided; a forged sender is ignored. */
static void test_imip_in_resource(void **state)
{
	fx *f = *state;
	const char *atts[] = { "room1@example.test" };
	tbuf ev = TBUF_INIT;

	event(&ev, "REQUEST", "i1", "20310801T090000Z", "20310801T100000Z", "bob@example.test", atts, 1);
	assert_int_equal(dav_sched_imip_in(&f->env, "room1@example.test", "mallory@remote.test", ev.data, ev.len), 0);
	assert_null(object_text(f, f->room->id.data, "i1"));
	assert_int_equal(dav_sched_imip_in(&f->env, "room1@example.test", "bob@example.test", ev.data, ev.len), 0);
	char *t = object_text(f, f->room->id.data, "i1");
	assert_non_null(t);
	free(t);
	/* not iTIP: ordinary mail */
	assert_int_equal(dav_sched_imip_in(&f->env, "room1@example.test", "bob@example.test", "hello", 5), 1);
	tbuf_reset(&ev);
	event(&ev, "CANCEL", "i1", "20310801T090000Z", "20310801T100000Z", "bob@example.test", atts, 1);
	assert_int_equal(dav_sched_imip_in(&f->env, "room1@example.test", "bob@example.test", ev.data, ev.len), 0);
	assert_null(object_text(f, f->room->id.data, "i1"));
	tbuf_free(&ev);
}

static void submitted(const deliver_result *r, void *arg)
{
	*(int *)arg = r->rc == STORE_OK ? 1 : -1;
}

/* Poll (the hand-off to scheduling is asynchronous) for owner's object uid. */
static char *wait_object(fx *f, const uint8_t owner[16], const char *uid)
{
	for (int i = 0; i < 500; i++) {
		char *t = object_text(f, owner, uid);
		if (t != NULL)
			return t;
		usleep(10000);
	}
	return NULL;
}

/* iMIP through the deliverer: the resource's address takes mail (no mailbox) and books;
 * a local user invited by an external organizer gets the event in her calendar. */
static void test_deliver_hook(void **state)
{
	fx *f = *state;
	const char *atts[] = { "room1@example.test", "ann@example.test" };
	tbuf ev = TBUF_INIT, mail = TBUF_INIT;
	char reply[256];
	int local = 0, done = 0;

	assert_int_equal(deliver_check_rcpt(f->dlv, "room1@example.test", 100, &local, reply, sizeof(reply)), 0);
	assert_int_equal(local, 1);
	event(&ev, "REQUEST", "h1", "20311001T090000Z", "20311001T100000Z", "dan@remote.test", atts, 2);
	tbuf_appendf(&mail, "From: <dan@remote.test>\r\nTo: <room1@example.test>\r\nSubject: x\r\n"
		     "MIME-Version: 1.0\r\nContent-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n%s",
		     tbuf_cstr(&ev));
	deliver_rcpt_req rcpts[] = { { "room1@example.test", 0, NULL }, { "ann@example.test", 0, NULL } };
	deliver_message m = { .sender = "dan@remote.test", .rcpts = rcpts, .nrcpts = 2, .data = mail.data,
			      .len = mail.len, .helo = "remote.test", .client_ip = "192.0.2.1",
			      .protocol = "ESMTP", .service = "SMTP" };
	deliver_submit(f->dlv, &m, NULL, submitted, &done);
	char *t = wait_object(f, f->room->id.data, "h1");
	assert_non_null(t);
	free(t);
	t = wait_object(f, f->ann, "h1");
	assert_non_null(t);
	assert_non_null(strstr(t, "ORGANIZER:mailto:dan@remote.test"));
	free(t);
	for (int i = 0; i < 500 && done == 0; i++)
		usleep(10000);
	assert_int_equal(done, 1);
	/* the resource's REPLY went to the organizer by mail (queued for remote.test) */
	Tern__QueueEntry **q = NULL;
	size_t nq = 0;
	for (int i = 0; i < 500 && nq == 0; i++) {
		assert_int_equal(store_queue_list(f->t->st, &q, &nq), STORE_OK);
		if (nq == 0) {
			free(q);
			usleep(10000);
		}
	}
	assert_int_equal(nq, 1);
	assert_string_equal(q[0]->sender, "room1@example.test");
	store_free_record(q[0]);
	free(q);
	tbuf_free(&ev);
	tbuf_free(&mail);
}

/* Outbox POST: ann's busy time, without the event's details. */
static void test_outbox_freebusy(void **state)
{
	fx *f = *state;
	dav_actor bob = { { 0 }, "bob@example.test", "Bob" };
	const char *atts[] = { "ann@example.test:ACCEPTED" };
	tbuf ev = TBUF_INIT, out = TBUF_INIT, err = TBUF_INIT;

	event(&ev, NULL, "f1", "20310901T090000Z", "20310901T100000Z", "ann@example.test", atts, 1);
	Tern__DavObject *o = put_own(f, f->ann, ev.data, ev.len, "f1");
	const char *req = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nMETHOD:REQUEST\r\n"
			  "BEGIN:VFREEBUSY\r\nUID:fb2\r\nDTSTAMP:20300101T000000Z\r\n"
			  "DTSTART:20310901T000000Z\r\nDTEND:20310902T000000Z\r\n"
			  "ORGANIZER:mailto:bob@example.test\r\nATTENDEE:mailto:ann@example.test\r\n"
			  "END:VFREEBUSY\r\nEND:VCALENDAR\r\n";
	assert_int_equal(dav_sched_outbox_post(&f->env, &bob, req, strlen(req), &out, &err), 0);
	const char *x = tbuf_cstr(&out);
	assert_non_null(strstr(x, "<C:schedule-response"));
	assert_non_null(strstr(x, "2.0;Success"));
	assert_non_null(strstr(x, "20310901T090000Z/"));
	assert_null(strstr(x, "Planning"));
	/* someone else's organizer is refused */
	dav_actor ann = { { 0 }, "ann@example.test", "Ann" };
	tbuf_reset(&out);
	assert_int_equal(dav_sched_outbox_post(&f->env, &ann, req, strlen(req), &out, &err), -1);
	store_free_record(o);
	tbuf_free(&ev);
	tbuf_free(&out);
	tbuf_free(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_concurrent_bookings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bookable_by, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unavailable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invite_and_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_external_imip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_imip_in_resource, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_freebusy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_hook, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
