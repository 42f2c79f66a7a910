/* Replication of the shared config rows: the master's change log (exactly the shared
 * rows of each change, seqs in commit order, written in the batch of the change), the
 * slave's refusal, applying records and snapshots on a second store, compaction, and
 * mailboxes that follow their user's home node. */
#include "store_test_util.h"
#include "store_private.h"
#include "log.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define EPOCH 7
#define REFUSAL "distributed-domain settings are changed on the master a (127.0.0.1:4050)"

/* Two stores: a master (node "a") and a slave (node "b"). */
typedef struct pair {
	test_store *m, *s;
} pair;

static int setup_pair(void **state)
{
	pair *p = calloc(1, sizeof(*p));

	p->m = ts_new();
	p->s = ts_new();
	store_set_node_name(p->m->st, "a");
	store_set_node_name(p->s->st, "b");
	assert_int_equal(store_repl_set_mode(p->m->st, STORE_REPL_MASTER, EPOCH, NULL), STORE_OK);
	*state = p;
	return 0;
}

static int teardown_pair(void **state)
{
	pair *p = *state;

	ts_free(&p->m);
	ts_free(&p->s);
	free(p);
	return 0;
}

static int add_user(store *st, const char *name, const char *home, char **addrs, size_t n,
		    uint8_t id[16], store_sync_result *r)
{
	Tern__User u = TERN__USER__INIT;
	int rc;

	u.name = (char *)name;
	u.domain = (char *)"example.test";
	u.home = (char *)home;
	u.addresses = addrs;
	u.n_addresses = n;
	rc = store_user_add(st, &u, STORE_SYNC, r);
	if (rc == STORE_OK && id)
		memcpy(id, r->res.id, 16);
	return rc;
}

/* Update name@example.test: a new home, and the extra addresses given. */
static int set_home(store *st, const char *name, const char *home, char **addrs, size_t n,
		    store_sync_result *r)
{
	Tern__User *u = NULL;
	int rc;

	assert_int_equal(store_user_get(st, "example.test", name, &u), STORE_OK);
	if (u->home != protobuf_c_empty_string)
		free(u->home);
	u->home = strdup(home);
	if (addrs) {
		for (size_t i = 0; i < u->n_addresses; i++)
			free(u->addresses[i]);
		free(u->addresses);
		u->addresses = calloc(n, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			u->addresses[i] = strdup(addrs[i]);
		u->n_addresses = n;
	}
	rc = store_user_update(st, u, STORE_SYNC, r);
	store_free_record(u);
	return rc;
}

/* The record's op keys as text, "+" put / "-" delete, in order, one per line; the
 * binary id of a userid/ key shown as '#'. */
static void op_keys(const Tern__ChangeRecord *r, char *out, size_t n)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < r->n_ops && o + 1 < n; i++) {
		const Tern__ConfigOp *op = r->ops[i];

		assert_true(store_repl_key_is_shared(op->key.data, op->key.len));
		int binary = op->key.len > 7 && memcmp(op->key.data, "userid/", 7) == 0;

		out[o++] = op->delete_ ? '-' : '+';
		for (size_t k = 0; k < op->key.len && o + 2 < n; k++)
			out[o++] = binary && k >= 7 ? '#' : (char)op->key.data[k];
		out[o++] = '\n';
		out[o] = '\0';
	}
}

static void expect_record(store *st, uint64_t seq, const char *keys)
{
	Tern__ChangeRecord **l = NULL;
	size_t n = 0;
	char got[1024];

	assert_int_equal(store_repl_read(st, EPOCH, seq - 1, 1, &l, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(l[0]->epoch, EPOCH);
	assert_int_equal(l[0]->seq, seq);
	assert_false(l[0]->snapshot);
	op_keys(l[0], got, sizeof(got));
	assert_string_equal(got, keys);
	store_free_list((void **)l, n);
}

static void expect_head(store *st, uint64_t epoch, uint64_t seq)
{
	uint64_t e, s;

	assert_int_equal(store_repl_state(st, &e, &s), STORE_OK);
	assert_int_equal(e, epoch);
	assert_int_equal(s, seq);
}

#define UID_KEY "+userid/################\n"

static void test_master_logs_shared_rows(void **state)
{
	pair *p = *state;
	store *st = p->m->st;
	store_sync_result r;
	char *robert[] = { (char *)"robert" };
	uint8_t bob[16];
	Tern__Mailbox *mb = NULL;

	assert_int_equal(store_repl_get_mode(st), STORE_REPL_MASTER);
	expect_head(st, EPOCH, 0);
	ts_add_domain(st);
	expect_record(st, 1, "+domain/example.test\n");
	assert_int_equal(add_user(st, "bob", "", NULL, 0, bob, &r), STORE_OK);
	/* The mailbox rows are node-local: not in the record, but created with it. */
	expect_record(st, 2, "+user/example.test/bob\n" UID_KEY "+addr/example.test/bob\n");
	assert_int_equal(store_mailbox_get(st, bob, &mb), STORE_OK);
	store_free_record(mb);
	assert_int_equal(set_home(st, "bob", "", robert, 1, &r), STORE_OK);
	expect_record(st, 3, "+user/example.test/bob\n" UID_KEY "+addr/example.test/robert\n");
	assert_int_equal(store_alias_add(st, "example.test", "sales", "bob@example.test", "",
					 STORE_SYNC, &r), STORE_OK);
	expect_record(st, 4, "+alias/example.test/sales\n");
	/* Node-local rows write no record. */
	assert_int_equal(store_setting_put(st, "greeting", "hi", STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_ipgroup_add(st, "office", "10.0.0.0/8", "", STORE_SYNC, &r), STORE_OK);
	expect_head(st, EPOCH, 4);
	assert_int_equal(store_user_remove(st, "example.test", "bob", STORE_SYNC, &r), STORE_OK);
	expect_record(st, 5, "-user/example.test/bob\n-userid/################\n"
		      "-addr/example.test/bob\n-addr/example.test/robert\n");
	expect_head(st, EPOCH, 5);

	/* Reading: all of them in order, from the middle, at the head, past it. */
	Tern__ChangeRecord **l = NULL;
	size_t n = 0;

	assert_int_equal(store_repl_read(st, EPOCH, 0, 0, &l, &n), STORE_OK);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(l[i]->seq, i + 1);
	store_free_list((void **)l, n);
	assert_int_equal(store_repl_read(st, EPOCH, 3, 10, &l, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(l[0]->seq, 4);
	assert_int_equal(l[1]->seq, 5);
	store_free_list((void **)l, n);
	assert_int_equal(store_repl_read(st, EPOCH, 5, 10, &l, &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_repl_read(st, EPOCH, 6, 10, &l, &n), STORE_ENOTFOUND);
	assert_int_equal(store_repl_read(st, EPOCH + 1, 0, 10, &l, &n), STORE_ENOTFOUND);

	/* A failed job logs nothing and takes no seq. */
	assert_int_equal(add_user(st, "bob", "", NULL, 0, NULL, &r), STORE_OK);
	assert_int_equal(add_user(st, "BOB", "", NULL, 0, NULL, &r), STORE_EEXISTS);
	expect_head(st, EPOCH, 6);
}

/* The change and its record are one batch: a failed write leaves neither, and after a
 * reopen both are there or neither. */
static void test_master_record_in_change_batch(void **state)
{
	pair *p = *state;
	store_sync_result r;
	Tern__User *u = NULL;
	Tern__ChangeRecord **l = NULL;
	size_t n = 0;

	ts_add_domain(p->m->st);
	store_test_fail_writes(p->m->st, 1);
	assert_int_equal(add_user(p->m->st, "bob", "", NULL, 0, NULL, &r), STORE_EIO);
	expect_head(p->m->st, EPOCH, 1);
	assert_int_equal(store_user_get(p->m->st, "example.test", "bob", &u), STORE_ENOTFOUND);
	assert_int_equal(store_repl_read(p->m->st, EPOCH, 1, 0, &l, &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(add_user(p->m->st, "ann", "", NULL, 0, NULL, &r), STORE_OK);
	expect_record(p->m->st, 2, "+user/example.test/ann\n" UID_KEY "+addr/example.test/ann\n");

	store_close(&p->m->st);
	assert_int_equal(ts_open(p->m), 0);
	/* The mode is not kept (the cluster sets it at start); the head is. */
	assert_int_equal(store_repl_get_mode(p->m->st), STORE_REPL_OFF);
	expect_head(p->m->st, EPOCH, 2);
	assert_int_equal(store_user_get(p->m->st, "example.test", "ann", &u), STORE_OK);
	store_free_record(u);
	assert_int_equal(store_user_get(p->m->st, "example.test", "bob", &u), STORE_ENOTFOUND);
	expect_record(p->m->st, 2, "+user/example.test/ann\n" UID_KEY "+addr/example.test/ann\n");
	/* OFF logs nothing; MASTER again continues the epoch. */
	assert_int_equal(add_user(p->m->st, "eve", "", NULL, 0, NULL, &r), STORE_OK);
	expect_head(p->m->st, EPOCH, 2);
	assert_int_equal(store_repl_set_mode(p->m->st, STORE_REPL_MASTER, 0, NULL), STORE_OK);
	assert_int_equal(add_user(p->m->st, "zed", "", NULL, 0, NULL, &r), STORE_OK);
	expect_record(p->m->st, 3, "+user/example.test/zed\n" UID_KEY "+addr/example.test/zed\n");
}

static void test_slave_refuses_shared_rows(void **state)
{
	pair *p = *state;
	store *st = p->s->st;
	store_sync_result r;
	Tern__Domain d = TERN__DOMAIN__INIT, *dg = NULL;
	Tern__ClusterSelf self = TERN__CLUSTER_SELF__INIT, *got = NULL;
	char *v = NULL;

	ts_add_domain(st);   /* standalone: allowed */
	assert_int_equal(store_repl_set_mode(st, STORE_REPL_SLAVE, 0, REFUSAL), STORE_OK);
	assert_int_equal(store_repl_get_mode(st), STORE_REPL_SLAVE);
	assert_int_equal(add_user(st, "bob", "", NULL, 0, NULL, &r), STORE_EREFUSED);
	assert_string_equal(r.error, REFUSAL);
	assert_int_equal(store_domain_user_count(st, "example.test"), 0);
	d.name = (char *)"other.test";
	assert_int_equal(store_domain_add(st, &d, STORE_SYNC, &r), STORE_EREFUSED);
	assert_string_equal(r.error, REFUSAL);
	assert_int_equal(store_domain_get(st, "other.test", &dg), STORE_ENOTFOUND);
	/* Node-local rows stay writable. */
	assert_int_equal(store_setting_put(st, "greeting", "hi", STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_setting_get(st, "greeting", &v), STORE_OK);
	assert_string_equal(v, "hi");
	free(v);
	assert_int_equal(store_ipgroup_add(st, "office", "10.0.0.0/8", "", STORE_SYNC, &r), STORE_OK);
	self.role = TERN__CLUSTER_SELF__ROLE__SLAVE;
	self.master_name = (char *)"a";
	assert_int_equal(store_cluster_self_put(st, &self, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_cluster_self_get(st, &got), STORE_OK);
	assert_string_equal(got->master_name, "a");
	store_free_record(got);
	expect_head(st, 0, 0);
}

/* Apply every record of the master from `after` on to the slave. */
static void replicate(pair *p, uint64_t after)
{
	Tern__ChangeRecord **l = NULL;
	size_t n = 0;
	store_sync_result r;

	assert_int_equal(store_repl_read(p->m->st, EPOCH, after, 0, &l, &n), STORE_OK);
	for (size_t i = 0; i < n; i++) {
		if (store_repl_apply(p->s->st, l[i], STORE_SYNC, &r) != STORE_OK)
			fail_msg("apply %llu: %s", (unsigned long long)l[i]->seq, r.error);
	}
	store_free_list((void **)l, n);
}

/* The slave's shared rows equal the master's, row for row. */
static void expect_same_rows(pair *p)
{
	Tern__ChangeRecord *a = NULL, *b = NULL;

	assert_int_equal(store_repl_snapshot(p->m->st, &a), STORE_OK);
	assert_int_equal(store_repl_snapshot(p->s->st, &b), STORE_OK);
	assert_int_equal(a->epoch, b->epoch);
	assert_int_equal(a->seq, b->seq);
	assert_int_equal(a->n_ops, b->n_ops);
	for (size_t i = 0; i < a->n_ops; i++) {
		assert_int_equal(a->ops[i]->key.len, b->ops[i]->key.len);
		assert_memory_equal(a->ops[i]->key.data, b->ops[i]->key.data, a->ops[i]->key.len);
		assert_int_equal(a->ops[i]->value.len, b->ops[i]->value.len);
		assert_memory_equal(a->ops[i]->value.data, b->ops[i]->value.data,
				    a->ops[i]->value.len);
	}
	store_free_record(a);
	store_free_record(b);
}

/* A fresh slave starts from a snapshot (here an empty one), then applies records. */
static void start_slave(pair *p)
{
	Tern__ChangeRecord *snap = NULL;
	store_sync_result r;

	assert_int_equal(store_repl_snapshot(p->m->st, &snap), STORE_OK);
	assert_true(snap->snapshot);
	assert_int_equal(store_repl_apply_snapshot(p->s->st, snap, STORE_SYNC, &r), STORE_OK);
	store_free_record(snap);
	assert_int_equal(store_repl_set_mode(p->s->st, STORE_REPL_SLAVE, 0, REFUSAL), STORE_OK);
}

static void test_slave_follows_master(void **state)
{
	pair *p = *state;
	store_sync_result r;
	char *robert[] = { (char *)"robert" };
	Tern__User *u = NULL;
	Tern__Group g = TERN__GROUP__INIT;
	Tern__Alias **al = NULL;
	size_t n = 0;

	start_slave(p);
	expect_head(p->s->st, EPOCH, 0);
	ts_add_domain(p->m->st);
	assert_int_equal(add_user(p->m->st, "bob", "a", robert, 1, NULL, &r), STORE_OK);
	assert_int_equal(add_user(p->m->st, "ann", "b", NULL, 0, NULL, &r), STORE_OK);
	assert_int_equal(store_alias_add(p->m->st, "example.test", "sales", "bob@example.test", "",
					 STORE_SYNC, &r), STORE_OK);
	g.name = (char *)"staff";
	g.domain = (char *)"example.test";
	assert_int_equal(store_group_add(p->m->st, &g, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(set_home(p->m->st, "bob", "a", NULL, 0, &r), STORE_OK);
	replicate(p, 0);
	expect_head(p->s->st, EPOCH, 6);
	assert_int_equal(store_user_find(p->s->st, "robert@example.test", &u), STORE_OK);
	assert_string_equal(u->name, "bob");
	assert_string_equal(u->home, "a");
	store_free_record(u);
	assert_int_equal(store_alias_list(p->s->st, "example.test", &al, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(al[0]->pattern, "sales");
	store_free_list((void **)al, n);
	expect_same_rows(p);

	/* A replay is ignored; a gap and another epoch are refused. */
	Tern__ChangeRecord **l = NULL;

	assert_int_equal(store_repl_read(p->m->st, EPOCH, 0, 1, &l, &n), STORE_OK);
	assert_int_equal(store_repl_apply(p->s->st, l[0], STORE_SYNC, &r), STORE_OK);
	expect_head(p->s->st, EPOCH, 6);
	l[0]->seq = 8;
	assert_int_equal(store_repl_apply(p->s->st, l[0], STORE_SYNC, &r), STORE_EINVAL);
	assert_string_equal(r.error, "change record 7/8 does not follow the applied 7/6");
	l[0]->seq = 7;
	l[0]->epoch = EPOCH + 1;
	assert_int_equal(store_repl_apply(p->s->st, l[0], STORE_SYNC, &r), STORE_EINVAL);
	/* A node-local row in a record is refused: a slave's own rows are its own. */
	l[0]->epoch = EPOCH;
	free(l[0]->ops[0]->key.data);
	l[0]->ops[0]->key.data = (uint8_t *)strdup("setting/greeting");
	l[0]->ops[0]->key.len = strlen("setting/greeting");
	assert_int_equal(store_repl_apply(p->s->st, l[0], STORE_SYNC, &r), STORE_EINVAL);
	store_free_list((void **)l, n);
	expect_head(p->s->st, EPOCH, 6);
	/* A master does not apply records. */
	assert_int_equal(store_repl_read(p->m->st, EPOCH, 0, 1, &l, &n), STORE_OK);
	assert_int_equal(store_repl_apply(p->m->st, l[0], STORE_SYNC, &r), STORE_EREFUSED);
	store_free_list((void **)l, n);

	/* More changes, removals included, still converge. */
	assert_int_equal(store_alias_remove(p->m->st, "example.test", "sales", NULL, STORE_SYNC, &r),
			 STORE_OK);
	assert_int_equal(store_user_remove(p->m->st, "example.test", "ann", STORE_SYNC, &r), STORE_OK);
	replicate(p, 6);
	expect_head(p->s->st, EPOCH, 8);
	assert_int_equal(store_user_find(p->s->st, "ann@example.test", &u), STORE_ENOTFOUND);
	expect_same_rows(p);
}

static void test_compact(void **state)
{
	pair *p = *state;
	store_sync_result r;
	Tern__ChangeRecord **l = NULL;
	size_t n = 0;

	ts_add_domain(p->m->st);
	assert_int_equal(add_user(p->m->st, "u1", "", NULL, 0, NULL, &r), STORE_OK);
	assert_int_equal(add_user(p->m->st, "u2", "", NULL, 0, NULL, &r), STORE_OK);
	assert_int_equal(add_user(p->m->st, "u3", "", NULL, 0, NULL, &r), STORE_OK);
	assert_int_equal(add_user(p->m->st, "u4", "", NULL, 0, NULL, &r), STORE_OK);
	assert_int_equal(store_repl_compact(p->m->st, 2), STORE_OK);
	assert_int_equal(store_repl_read(p->m->st, EPOCH, 0, 0, &l, &n), STORE_ENOTFOUND);
	assert_int_equal(store_repl_read(p->m->st, EPOCH, 2, 0, &l, &n), STORE_ENOTFOUND);
	assert_int_equal(store_repl_read(p->m->st, EPOCH, 3, 0, &l, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(l[0]->seq, 4);
	assert_int_equal(l[1]->seq, 5);
	store_free_list((void **)l, n);
	assert_int_equal(store_repl_compact(p->m->st, 0), STORE_OK);
	assert_int_equal(store_repl_read(p->m->st, EPOCH, 4, 0, &l, &n), STORE_ENOTFOUND);
	assert_int_equal(store_repl_read(p->m->st, EPOCH, 5, 0, &l, &n), STORE_OK);
	assert_int_equal(n, 0);
}

/* A snapshot replaces whatever shared rows the slave had; its own node-local rows stay. */
static void test_snapshot_makes_rows_equal(void **state)
{
	pair *p = *state;
	store_sync_result r;
	Tern__Domain d = TERN__DOMAIN__INIT;
	Tern__ChangeRecord *snap = NULL;
	Tern__User *u = NULL;
	Tern__Mailbox *mb = NULL;
	uint8_t stray[16];
	char *v = NULL;

	ts_add_domain(p->m->st);
	assert_int_equal(add_user(p->m->st, "bob", "b", NULL, 0, NULL, &r), STORE_OK);
	assert_int_equal(add_user(p->m->st, "ann", "a", NULL, 0, NULL, &r), STORE_OK);
	/* The slave, standalone so far, has rows of its own: a domain, a user, a setting. */
	d.name = (char *)"other.test";
	assert_int_equal(store_domain_add(p->s->st, &d, STORE_SYNC, &r), STORE_OK);
	ts_add_domain(p->s->st);
	assert_int_equal(add_user(p->s->st, "stray", "", NULL, 0, stray, &r), STORE_OK);
	assert_int_equal(store_setting_put(p->s->st, "greeting", "hi", STORE_SYNC, &r), STORE_OK);

	assert_int_equal(store_repl_snapshot(p->m->st, &snap), STORE_OK);
	assert_int_equal(snap->epoch, EPOCH);
	assert_int_equal(snap->seq, 3);
	assert_int_equal(store_repl_apply_snapshot(p->s->st, snap, STORE_SYNC, &r), STORE_OK);
	store_free_record(snap);
	expect_head(p->s->st, EPOCH, 3);
	expect_same_rows(p);
	Tern__Domain *dg = NULL;

	assert_int_equal(store_domain_get(p->s->st, "other.test", &dg), STORE_ENOTFOUND);
	assert_int_equal(store_user_find(p->s->st, "stray@example.test", &u), STORE_ENOTFOUND);
	/* The stray user's empty mailbox went with it; bob (homed on b) got one. */
	assert_int_equal(store_mailbox_get(p->s->st, stray, &mb), STORE_ENOTFOUND);
	assert_int_equal(store_user_find(p->s->st, "bob@example.test", &u), STORE_OK);
	assert_int_equal(store_mailbox_get(p->s->st, u->id.data, &mb), STORE_OK);
	store_free_record(mb);
	store_free_record(u);
	assert_int_equal(store_user_find(p->s->st, "ann@example.test", &u), STORE_OK);
	assert_int_equal(store_mailbox_get(p->s->st, u->id.data, &mb), STORE_ENOTFOUND);
	store_free_record(u);
	assert_int_equal(store_setting_get(p->s->st, "greeting", &v), STORE_OK);
	assert_string_equal(v, "hi");
	free(v);
	/* Then records follow on. */
	assert_int_equal(store_repl_set_mode(p->s->st, STORE_REPL_SLAVE, 0, REFUSAL), STORE_OK);
	assert_int_equal(add_user(p->m->st, "eve", "b", NULL, 0, NULL, &r), STORE_OK);
	replicate(p, 3);
	expect_same_rows(p);
}

static int has_mailbox(store *st, const uint8_t id[16])
{
	Tern__Folder *f = NULL;
	int rc = store_folder_find(st, id, "INBOX", &f);

	store_free_record(f);
	return rc == STORE_OK;
}

static void deliver(store *st, const uint8_t id[16])
{
	store_append a = { 0 };
	store_sync_result r;

	a.user = id;
	a.body = "Subject: hi\r\n\r\nhello\r\n";
	a.body_len = strlen(a.body);
	assert_int_equal(store_msg_append(st, &a, STORE_SYNC, &r), STORE_OK);
}

/* The number of lines of DIR/warning.log that contain text. */
static int log_lines(const char *dir, const char *text)
{
	char path[256], line[1024];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/warning.log", dir);
	if (!(f = fopen(path, "r")))
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, text) != NULL;
	fclose(f);
	return n;
}

static void test_mailbox_follows_home(void **state)
{
	pair *p = *state;
	store_sync_result r;
	uint8_t carol[16], dave[16];
	tlog_options lo = { 0, 1, 0 };
	const char *err = NULL;
	char logdir[128];
	Tern__User *u = NULL;

	snprintf(logdir, sizeof(logdir), "%s/logs", p->s->dir);
	assert_int_equal(tlog_open(logdir, &lo, &err), 0);
	start_slave(p);
	ts_add_domain(p->m->st);
	/* Homed on b: no mailbox on the master a, one on b once applied. */
	assert_int_equal(add_user(p->m->st, "carol", "b", NULL, 0, carol, &r), STORE_OK);
	assert_false(has_mailbox(p->m->st, carol));
	replicate(p, 0);
	assert_true(has_mailbox(p->s->st, carol));
	assert_int_equal(store_mailbox_has_data(p->s->st, carol), 0);
	/* Home moved to a while empty: a makes one, b drops its own. */
	assert_int_equal(set_home(p->m->st, "carol", "a", NULL, 0, &r), STORE_OK);
	assert_true(has_mailbox(p->m->st, carol));
	replicate(p, 2);
	assert_false(has_mailbox(p->s->st, carol));
	/* And back to b; mail arrives there. */
	assert_int_equal(set_home(p->m->st, "carol", "B", NULL, 0, &r), STORE_OK);
	assert_false(has_mailbox(p->m->st, carol));
	replicate(p, 3);
	assert_true(has_mailbox(p->s->st, carol));
	deliver(p->s->st, carol);
	assert_int_equal(store_mailbox_has_data(p->s->st, carol), 1);
	/* A replicated move away from b keeps b's mailbox with data, and says so. */
	assert_int_equal(set_home(p->m->st, "carol", "a", NULL, 0, &r), STORE_OK);
	replicate(p, 4);
	expect_head(p->s->st, EPOCH, 5);
	assert_true(has_mailbox(p->s->st, carol));
	assert_int_equal(store_mailbox_has_data(p->s->st, carol), 1);
	assert_int_equal(log_lines(logdir, "carol@example.test is homed on node a but its mailbox "
				   "here holds messages"), 1);

	/* On the admin path, moving a mailbox with data is refused and logs nothing. */
	assert_int_equal(add_user(p->m->st, "dave", "", NULL, 0, dave, &r), STORE_OK);
	deliver(p->m->st, dave);
	assert_int_equal(set_home(p->m->st, "dave", "b", NULL, 0, &r), STORE_EREFUSED);
	assert_string_equal(r.error, "a mailbox with data moves by migration");
	expect_head(p->m->st, EPOCH, 6);
	assert_int_equal(store_user_get(p->m->st, "example.test", "dave", &u), STORE_OK);
	/* The master names itself as the home of a user added without one. */
	assert_string_equal(u->home, "a");
	store_free_record(u);
	assert_int_equal(store_mailbox_has_data(p->m->st, dave), 1);
	/* Other changes of such a user still go through. */
	char *extra[] = { (char *)"dj" };

	assert_int_equal(set_home(p->m->st, "dave", "", extra, 1, &r), STORE_OK);
	/* Replicated, dave's home is the master: no mailbox for dave on b. */
	replicate(p, 5);
	assert_false(has_mailbox(p->s->st, dave));
	/* A replicated removal of a user takes its mailbox here along, data and all. */
	assert_int_equal(store_user_remove(p->m->st, "example.test", "carol", STORE_SYNC, &r), STORE_OK);
	replicate(p, 7);
	assert_false(has_mailbox(p->s->st, carol));
	assert_int_equal(store_mailbox_has_data(p->s->st, carol), 0);
	tlog_close();
}

static void put_node(store *st, const char *name, int expect)
{
	Tern__Node n = TERN__NODE__INIT;
	uint8_t key[32] = { 1, 2, 3 };
	store_sync_result r;

	n.name = (char *)name;
	n.address = (char *)"127.0.0.1";
	n.curve_public.data = key;
	n.curve_public.len = sizeof(key);
	n.cluster_port = 4050;
	assert_int_equal(store_node_put(st, &n, STORE_SYNC, &r), expect);
}

/* Directory sync stamps are shared rows; stamping the same values again logs nothing. */
static void test_directory_stamps(void **state)
{
	pair *p = *state;
	store *st = p->m->st;
	store_sync_result r;
	Tern__DirectoryConfig d = TERN__DIRECTORY_CONFIG__INIT;

	ts_add_domain(st);
	d.domain = (char *)"example.test";
	d.server = (char *)"ldap.example.test";
	assert_int_equal(store_directory_put(st, &d, STORE_SYNC, &r), STORE_OK);
	expect_record(st, 2, "+directory/example.test\n");
	assert_int_equal(store_directory_stamp(st, "example.test", 10, 20, STORE_SYNC, &r), STORE_OK);
	expect_record(st, 3, "+directory/example.test\n");
	assert_int_equal(store_directory_stamp(st, "example.test", 10, 20, STORE_SYNC, &r), STORE_OK);
	expect_head(st, EPOCH, 3);
	assert_int_equal(store_directory_stamp(st, "example.test", 11, 20, STORE_SYNC, &r), STORE_OK);
	expect_head(st, EPOCH, 4);
}

static void test_nodes(void **state)
{
	pair *p = *state;
	store *st = p->m->st;
	store_sync_result r;
	Tern__Node *n = NULL, **list = NULL;
	size_t cnt = 0;

	put_node(st, "a", STORE_OK);
	put_node(st, "B", STORE_OK);
	put_node(st, "bad name", STORE_EINVAL);
	put_node(st, "-x", STORE_EINVAL);
	expect_record(st, 2, "+node/b\n");
	assert_int_equal(store_node_get(st, "b", &n), STORE_OK);
	assert_string_equal(n->name, "B");
	assert_int_equal(n->cluster_port, 4050);
	store_free_record(n);
	assert_int_equal(store_node_list(st, &list, &cnt), STORE_OK);
	assert_int_equal(cnt, 2);
	store_free_list((void **)list, cnt);

	ts_add_domain(st);
	assert_int_equal(add_user(st, "bob", "b", NULL, 0, NULL, &r), STORE_OK);
	assert_int_equal(store_node_user_count(st, "b"), 1);
	assert_int_equal(store_node_user_count(st, "a"), 0);
	assert_int_equal(store_node_remove(st, "b", STORE_SYNC, &r), STORE_EREFUSED);
	assert_string_equal(r.error, "node b is the home of 1 user");
	assert_int_equal(set_home(st, "bob", "a", NULL, 0, &r), STORE_OK);
	assert_int_equal(store_node_user_count(st, "b"), 0);
	assert_int_equal(store_node_remove(st, "b", STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_node_get(st, "b", &n), STORE_ENOTFOUND);
	assert_int_equal(store_node_remove(st, "b", STORE_SYNC, &r), STORE_ENOTFOUND);
	uint64_t e, s;

	store_repl_state(st, &e, &s);
	expect_record(st, s, "-node/b\n");
}

/* This node's own cluster records are node-local and never logged. */
static void test_cluster_records(void **state)
{
	pair *p = *state;
	store *st = p->m->st;
	store_sync_result r;
	Tern__ClusterSelf self = TERN__CLUSTER_SELF__INIT, *got = NULL;
	Tern__CurveKeys ck = TERN__CURVE_KEYS__INIT, *kg = NULL;
	uint8_t pub[32], sec[32], cred[32];

	memset(pub, 1, sizeof(pub));
	memset(sec, 2, sizeof(sec));
	memset(cred, 3, sizeof(cred));
	assert_int_equal(store_cluster_self_get(st, &got), STORE_ENOTFOUND);
	assert_int_equal(store_curve_keys_get(st, &kg), STORE_ENOTFOUND);
	ck.public_key.data = pub;
	ck.public_key.len = 32;
	ck.secret_key.data = sec;
	ck.secret_key.len = 16;
	assert_int_equal(store_curve_keys_put(st, &ck, STORE_SYNC, &r), STORE_EINVAL);
	ck.secret_key.len = 32;
	assert_int_equal(store_curve_keys_put(st, &ck, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_curve_keys_get(st, &kg), STORE_OK);
	assert_memory_equal(kg->secret_key.data, sec, 32);
	store_free_record(kg);
	self.role = TERN__CLUSTER_SELF__ROLE__MASTER;
	self.credential.data = cred;
	self.credential.len = 32;
	assert_int_equal(store_cluster_self_put(st, &self, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_cluster_self_get(st, &got), STORE_OK);
	assert_int_equal(got->role, TERN__CLUSTER_SELF__ROLE__MASTER);
	store_free_record(got);
	self.role = TERN__CLUSTER_SELF__ROLE__STANDALONE;
	assert_int_equal(store_cluster_self_put(st, &self, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_cluster_self_get(st, &got), STORE_ENOTFOUND);
	expect_head(st, EPOCH, 0);
	assert_false(store_repl_key_is_shared("cluster/self", 12));
	assert_false(store_repl_key_is_shared("setting/x", 9));
	assert_true(store_repl_key_is_shared("node/a", 6));
	assert_true(store_repl_key_is_shared("directory/example.test", 22));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_master_logs_shared_rows, setup_pair, teardown_pair),
		cmocka_unit_test_setup_teardown(test_master_record_in_change_batch, setup_pair,
						teardown_pair),
		cmocka_unit_test_setup_teardown(test_slave_refuses_shared_rows, setup_pair, teardown_pair),
		cmocka_unit_test_setup_teardown(test_slave_follows_master, setup_pair, teardown_pair),
		cmocka_unit_test_setup_teardown(test_compact, setup_pair, teardown_pair),
		cmocka_unit_test_setup_teardown(test_snapshot_makes_rows_equal, setup_pair,
						teardown_pair),
		cmocka_unit_test_setup_teardown(test_mailbox_follows_home, setup_pair, teardown_pair),
		cmocka_unit_test_setup_teardown(test_directory_stamps, setup_pair, teardown_pair),
		cmocka_unit_test_setup_teardown(test_nodes, setup_pair, teardown_pair),
		cmocka_unit_test_setup_teardown(test_cluster_records, setup_pair, teardown_pair),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
