/* Accounts in the store: domains, users, groups, aliases, IP groups, their checks, and
 * that account changes are applied one at a time (concurrent duplicate adds). */
#include "store_test_util.h"
#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <rocksdb/c.h>

static int add_domain(store *st, const char *name, store_sync_result *r)
{
	Tern__Domain d = TERN__DOMAIN__INIT;

	d.name = (char *)name;
	return store_domain_add(st, &d, STORE_SYNC, r);
}

static int add_user(store *st, const char *domain, const char *name, char **addrs, size_t n,
		    store_sync_result *r)
{
	Tern__User u = TERN__USER__INIT;

	u.name = (char *)name;
	u.domain = (char *)domain;
	u.enabled = 1;
	u.addresses = addrs;
	u.n_addresses = n;
	return store_user_add(st, &u, STORE_SYNC, r);
}

static int setup(void **state)
{
	test_store *t = ts_new();
	store_sync_result r;

	assert_int_equal(add_domain(t->st, "example.test", &r), STORE_OK);
	*state = t;
	return 0;
}

static void test_domain_basics(void **state)
{
	test_store *t = *state;
	store_sync_result r;
	Tern__Domain *d = NULL;

	assert_int_equal(store_domain_get(t->st, "EXAMPLE.test", &d), STORE_OK);
	assert_true(d->primary);
	store_free_record(d);
	assert_int_equal(add_domain(t->st, "example.test", &r), STORE_EEXISTS);
	assert_string_equal(r.error, "domain example.test already exists");
	assert_int_equal(add_domain(t->st, "a..b", &r), STORE_EINVAL);
	assert_string_equal(r.error, "invalid domain name 'a..b'");
	assert_int_equal(add_domain(t->st, "other.test", &r), STORE_OK);
	assert_int_equal(store_domain_get(t->st, "other.test", &d), STORE_OK);
	assert_false(d->primary);
	store_free_record(d);
	assert_int_equal(store_domain_remove(t->st, "example.test", STORE_SYNC, &r), STORE_EREFUSED);
	assert_string_equal(r.error, "example.test is the primary domain");
	assert_int_equal(store_domain_remove(t->st, "other.test", STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_domain_get(t->st, "other.test", &d), STORE_ENOTFOUND);
}

static void test_user_add_and_duplicates(void **state)
{
	test_store *t = *state;
	store_sync_result r;
	char *extra[] = { (char *)"robert" };
	Tern__User *u = NULL;
	Tern__Mailbox *mb = NULL;
	Tern__Folder *inbox = NULL;

	assert_int_equal(add_user(t->st, "example.test", "bob", extra, 1, &r), STORE_OK);
	uint8_t id[16];

	memcpy(id, r.res.id, 16);
	assert_int_equal(add_user(t->st, "example.test", "BOB", NULL, 0, &r), STORE_EEXISTS);
	assert_string_equal(r.error, "user BOB@example.test already exists");
	char *clash[] = { (char *)"Robert" };
	assert_int_equal(add_user(t->st, "example.test", "alice", clash, 1, &r), STORE_EEXISTS);
	assert_int_equal(add_user(t->st, "example.test", "robert", NULL, 0, &r), STORE_EEXISTS);
	assert_int_equal(add_user(t->st, "nowhere.test", "carol", NULL, 0, &r), STORE_ENOTFOUND);
	assert_int_equal(add_user(t->st, "example.test", "bad name", NULL, 0, &r), STORE_EINVAL);

	assert_int_equal(store_user_find(t->st, "Robert@Example.Test", &u), STORE_OK);
	assert_string_equal(u->name, "bob");
	assert_memory_equal(u->id.data, id, 16);
	store_free_record(u);
	assert_int_equal(store_user_get_by_id(t->st, id, &u), STORE_OK);
	assert_string_equal(u->name, "bob");
	store_free_record(u);
	assert_int_equal(store_mailbox_get(t->st, id, &mb), STORE_OK);
	assert_true(mb->bytes == 0 && mb->items == 0);
	store_free_record(mb);
	assert_int_equal(store_folder_find(t->st, id, "inbox", &inbox), STORE_OK);
	assert_string_equal(inbox->name, "INBOX");
	assert_int_equal(inbox->uidnext, 1);
	store_free_record(inbox);

	assert_int_equal(store_domain_user_count(t->st, "example.test"), 1);
	assert_int_equal(store_domain_remove(t->st, "example.test", STORE_SYNC, &r), STORE_EREFUSED);
	assert_int_equal(add_domain(t->st, "two.test", &r), STORE_OK);
	assert_int_equal(add_user(t->st, "two.test", "x", NULL, 0, &r), STORE_OK);
	assert_int_equal(add_user(t->st, "two.test", "y", NULL, 0, &r), STORE_OK);
	assert_int_equal(store_domain_remove(t->st, "two.test", STORE_SYNC, &r), STORE_EREFUSED);
	assert_string_equal(r.error, "domain two.test still has 2 users");
	assert_int_equal(store_user_remove(t->st, "example.test", "bob", STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_user_find(t->st, "robert@example.test", &u), STORE_ENOTFOUND);
	assert_int_equal(store_mailbox_get(t->st, id, &mb), STORE_ENOTFOUND);
	assert_int_equal(add_user(t->st, "example.test", "Bob", NULL, 0, &r), STORE_OK);
}

static void test_user_limit(void **state)
{
	test_store *t = *state;
	store_sync_result r;
	Tern__Domain d = TERN__DOMAIN__INIT;

	d.name = (char *)"small.test";
	d.user_limit = 1;
	assert_int_equal(store_domain_add(t->st, &d, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(add_user(t->st, "small.test", "one", NULL, 0, &r), STORE_OK);
	assert_int_equal(add_user(t->st, "small.test", "two", NULL, 0, &r), STORE_EREFUSED);
	d.user_limit = 0;
	d.deleted_retention_days = 366;
	assert_int_equal(store_domain_update(t->st, &d, STORE_SYNC, &r), STORE_EINVAL);
}

static void test_groups_aliases_ipgroups(void **state)
{
	test_store *t = *state;
	store_sync_result r;
	Tern__Group g = TERN__GROUP__INIT, *got = NULL;
	char *gaddr[] = { (char *)"sales" };
	Tern__Alias **al = NULL;
	size_t n = 0;

	g.name = (char *)"Sales";
	g.domain = (char *)"example.test";
	g.addresses = gaddr;
	g.n_addresses = 1;
	assert_int_equal(store_group_add(t->st, &g, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_group_add(t->st, &g, STORE_SYNC, &r), STORE_EEXISTS);
	assert_int_equal(add_user(t->st, "example.test", "sales", NULL, 0, &r), STORE_EEXISTS);
	assert_int_equal(store_group_find(t->st, "SALES@example.test", &got), STORE_OK);
	assert_string_equal(got->name, "Sales");
	store_free_record(got);

	assert_int_equal(store_alias_add(t->st, "example.test", "info", "a@example.test", NULL,
					 STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_alias_add(t->st, "example.test", "info", "b@example.test", NULL,
					 STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_alias_add(t->st, "example.test", "INFO", "a@example.test", NULL,
					 STORE_SYNC, &r), STORE_EEXISTS);
	assert_int_equal(store_alias_list(t->st, "example.test", &al, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(al[0]->n_targets, 2);
	store_free_list((void **)al, n);
	assert_int_equal(store_domain_remove(t->st, "example.test", STORE_SYNC, &r), STORE_EREFUSED);

	struct sockaddr_in a = { .sin_family = AF_INET };

	inet_pton(AF_INET, "192.168.1.5", &a.sin_addr);
	assert_int_equal(store_ipgroup_match(t->st, "Local clients", (struct sockaddr *)&a), 1);
	inet_pton(AF_INET, "8.8.8.8", &a.sin_addr);
	assert_int_equal(store_ipgroup_match(t->st, "Local clients", (struct sockaddr *)&a), 0);
	assert_int_equal(store_ipgroup_add(t->st, "dns", "8.8.8.0/24", "google", STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_ipgroup_add(t->st, "outer", "group:dns", NULL, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_ipgroup_add(t->st, "dns", "group:outer", NULL, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_ipgroup_match(t->st, "outer", (struct sockaddr *)&a), 1);
	inet_pton(AF_INET, "9.9.9.9", &a.sin_addr);
	assert_int_equal(store_ipgroup_match(t->st, "outer", (struct sockaddr *)&a), 0); /* loop cut */
	assert_int_equal(store_ipgroup_add(t->st, "dns", "not-an-ip", NULL, STORE_SYNC, &r), STORE_EINVAL);
}

static void test_rename_and_reopen(void **state)
{
	test_store *t = *state;
	store_sync_result r;
	Tern__User *u = NULL;
	Tern__Domain *d = NULL;
	char buf[256];

	assert_int_equal(add_user(t->st, "example.test", "bob", NULL, 0, &r), STORE_OK);
	assert_int_equal(store_alias_add(t->st, "example.test", "info", "bob@example.test", NULL,
					 STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_domain_rename(t->st, "example.test", "new.test", STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_domain_get(t->st, "example.test", &d), STORE_ENOTFOUND);
	assert_int_equal(store_user_get(t->st, "new.test", "bob", &u), STORE_OK);
	assert_string_equal(u->domain, "new.test");
	store_free_record(u);
	assert_int_equal(store_domain_resolve(t->st, "example.test", buf, sizeof(buf)), STORE_OK);
	assert_string_equal(buf, "new.test");
	assert_int_equal(store_user_find(t->st, "bob@example.test", &u), STORE_OK);
	store_free_record(u);
	assert_int_equal(store_setting_put(t->st, "node.name", "alpha", STORE_SYNC, &r), STORE_OK);

	store_close(&t->st);
	assert_int_equal(ts_open(t), 0);
	assert_false(store_is_new(t->st));
	assert_int_equal(store_user_get(t->st, "new.test", "BOB", &u), STORE_OK);
	store_free_record(u);
	assert_int_equal(store_domain_get(t->st, "new.test", &d), STORE_OK);
	assert_true(d->primary);
	assert_int_equal(d->n_aliases, 1);
	assert_string_equal(d->aliases[0], "example.test");
	store_free_record(d);
	char *v = NULL;

	assert_int_equal(store_setting_get(t->st, "node.name", &v), STORE_OK);
	assert_string_equal(v, "alpha");
	free(v);
}

/* A store written by a newer version is refused with a clear message. */
static void test_newer_format_refused(void **state)
{
	test_store *t = *state;
	store_options o;
	char *err = NULL;

	store_close(&t->st);
	/* Write a newer format record with RocksDB directly. */
	rocksdb_options_t *opt = rocksdb_options_create();
	const char *names[] = { "default", "config", "folder", "msg", "changes", "blob",
				"blobref", "queue", "dav", "changelog" };
	const rocksdb_options_t *opts[10];
	rocksdb_column_family_handle_t *cf[10];
	char *e = NULL;
	Tern__Format f = TERN__FORMAT__INIT;
	uint8_t buf[64];

	for (int i = 0; i < 10; i++)
		opts[i] = opt;
	rocksdb_t *db = rocksdb_open_column_families(opt, t->path, 10, names, opts, cf, &e);
	assert_null(e);
	f.version = STORE_FORMAT_VERSION + 1;
	size_t n = tern__format__pack(&f, buf);
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	rocksdb_put_cf(db, wo, cf[1], "format", 6, (const char *)buf, n, &e);
	assert_null(e);
	rocksdb_writeoptions_destroy(wo);
	for (int i = 0; i < 10; i++)
		rocksdb_column_family_handle_destroy(cf[i]);
	rocksdb_close(db);
	rocksdb_options_destroy(opt);

	ts_options(t, &o);
	assert_int_not_equal(store_open(&o, &t->st, &err), 0);
	assert_non_null(strstr(err, "newer than this build supports"));
	free(err);
	t->st = NULL;
}

static void test_locked_db(void **state)
{
	test_store *t = *state;
	store_options o;
	store *second = NULL;
	char *err = NULL;

	ts_options(t, &o);
	assert_int_not_equal(store_open(&o, &second, &err), 0);
	assert_non_null(strstr(err, "lock"));
	free(err);
}

typedef struct racer {
	store *st;
	int id;
	int ok;
} racer;

static void *race_add(void *arg)
{
	racer *r = arg;
	char name[32];
	store_sync_result res;

	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), (r->id + i) % 2 ? "User%d" : "user%d", i);
		if (add_user(r->st, "example.test", name, NULL, 0, &res) == STORE_OK)
			r->ok++;
	}
	return NULL;
}

/* 8 threads add users with overlapping names: exactly one success per name. */
static void test_concurrent_adds(void **state)
{
	test_store *t = *state;
	pthread_t th[8];
	racer rs[8];
	int total = 0;

	for (int i = 0; i < 8; i++) {
		rs[i] = (racer){ t->st, i, 0 };
		pthread_create(&th[i], NULL, race_add, &rs[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		total += rs[i].ok;
	}
	assert_int_equal(total, 10);
	assert_int_equal(store_domain_user_count(t->st, "example.test"), 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_domain_basics, setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_user_add_and_duplicates, setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_user_limit, setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_groups_aliases_ipgroups, setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_rename_and_reopen, setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_newer_format_refused, setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_locked_db, setup, ts_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_adds, setup, ts_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
