/* The Global Address List of a domain: which users and groups store_gal_list shows,
 * their addresses, names and order. */
#include "store_test_util.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static void add_user(store *st, const char *domain, const char *name, const char *full_name,
		     int publish)
{
	Tern__User u = TERN__USER__INIT;
	store_sync_result r;

	u.name = (char *)name;
	u.domain = (char *)domain;
	u.enabled = 1;
	u.full_name = (char *)full_name;
	u.publish_in_gal = publish;
	assert_int_equal(store_user_add(st, &u, STORE_SYNC, &r), STORE_OK);
}

static void add_group(store *st, const char *name, const char *address, int publish)
{
	Tern__Group g = TERN__GROUP__INIT;
	char *addrs[] = { (char *)address };
	store_sync_result r;

	g.name = (char *)name;
	g.domain = (char *)"example.test";
	g.addresses = addrs;
	g.n_addresses = address ? 1 : 0;
	g.publish_in_gal = publish;
	assert_int_equal(store_group_add(st, &g, STORE_SYNC, &r), STORE_OK);
}

static void test_gal_list(void **state)
{
	test_store *t = *state;
	Tern__Domain d = TERN__DOMAIN__INIT;
	store_gal_entry *list = NULL;
	store_sync_result r;
	size_t n = 99;

	ts_add_domain(t->st);
	d.name = (char *)"other.test";
	assert_int_equal(store_domain_add(t->st, &d, STORE_SYNC, &r), STORE_OK);
	assert_int_equal(store_gal_list(t->st, "example.test", &list, &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_null(list);

	add_user(t->st, "example.test", "zoe", "Zoe Zimmer", 1);
	add_user(t->st, "example.test", "bob", "Bob Brown", 1);
	add_user(t->st, "example.test", "eve", "", 1);               /* no full name */
	add_user(t->st, "example.test", "ann", "Ann Hidden", 0);     /* not published */
	add_user(t->st, "other.test", "carl", "Carl Other", 1);      /* other domain */
	add_group(t->st, "Sales", "sales-team", 1);
	add_group(t->st, "quiet", "quiet", 0);                       /* not published */
	add_group(t->st, "noaddr", NULL, 1);                         /* no address */

	assert_int_equal(store_gal_list(t->st, "example.test", &list, &n), STORE_OK);
	assert_int_equal(n, 3);
	assert_string_equal(list[0].address, "bob@example.test");
	assert_string_equal(list[0].name, "bob");
	assert_string_equal(list[0].full_name, "Bob Brown");
	assert_false(list[0].is_group);
	assert_string_equal(list[1].address, "sales-team@example.test");
	assert_string_equal(list[1].name, "Sales");
	assert_string_equal(list[1].full_name, "Sales");
	assert_true(list[1].is_group);
	assert_string_equal(list[2].address, "zoe@example.test");
	assert_string_equal(list[2].full_name, "Zoe Zimmer");
	store_gal_free(&list, n);
	assert_null(list);

	assert_int_equal(store_gal_list(t->st, "other.test", &list, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].address, "carl@other.test");
	store_gal_free(&list, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gal_list, ts_setup, ts_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
