/* test_node_lockout.c - account lockout per (account, IP): threshold, expiry, unlock,
 * concurrent use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>
#include "auth.h"

static void test_threshold(void **state)
{
	auth_lockout *l = auth_lockout_new(3, 600);

	assert_non_null(l);
	assert_int_equal(auth_lockout_is_locked(l, "bob@x.test", "10.0.0.1"), 0);
	auth_lockout_failed(l, "bob@x.test", "10.0.0.1");
	auth_lockout_failed(l, "bob@x.test", "10.0.0.1");
	assert_int_equal(auth_lockout_is_locked(l, "bob@x.test", "10.0.0.1"), 0);
	/* Failures of other accounts and other addresses are counted apart. */
	auth_lockout_failed(l, "bob@x.test", "10.0.0.2");
	auth_lockout_failed(l, "ann@x.test", "10.0.0.1");
	assert_int_equal(auth_lockout_is_locked(l, "bob@x.test", "10.0.0.1"), 0);

	auth_lockout_failed(l, "bob@x.test", "10.0.0.1");
	assert_int_equal(auth_lockout_is_locked(l, "bob@x.test", "10.0.0.1"), 1);
	assert_int_equal(auth_lockout_is_locked(l, "BOB@x.test", "10.0.0.1"), 1);
	/* The lock holds for the address that failed, not for the user elsewhere. */
	assert_int_equal(auth_lockout_is_locked(l, "bob@x.test", "10.0.0.2"), 0);
	assert_int_equal(auth_lockout_is_locked(l, "ann@x.test", "10.0.0.1"), 0);
	/* A success while locked does not lift the lock. */
	auth_lockout_succeeded(l, "bob@x.test", "10.0.0.1");
	assert_int_equal(auth_lockout_is_locked(l, "bob@x.test", "10.0.0.1"), 1);
	auth_lockout_free(&l);
	assert_null(l);
}

static void test_success_resets(void **state)
{
	auth_lockout *l = auth_lockout_new(2, 600);

	auth_lockout_failed(l, "bob@x.test", "::1");
	auth_lockout_succeeded(l, "bob@x.test", "::1");
	auth_lockout_failed(l, "bob@x.test", "::1");
	assert_int_equal(auth_lockout_is_locked(l, "bob@x.test", "::1"), 0);
	auth_lockout_failed(l, "bob@x.test", "::1");
	assert_int_equal(auth_lockout_is_locked(l, "bob@x.test", "::1"), 1);
	auth_lockout_free(&l);
}

static void test_unlock(void **state)
{
	auth_lockout *l = auth_lockout_new(1, 600);

	auth_lockout_failed(l, "bob@x.test", "10.0.0.1");
	auth_lockout_failed(l, "bob@x.test", "10.0.0.2");
	auth_lockout_failed(l, "ann@x.test", "10.0.0.1");
	auth_lockout_failed(l, "eve@x.test", "10.0.0.3");
	assert_int_equal(auth_lockout_is_locked(l, "bob@x.test", "10.0.0.2"), 1);

	assert_int_equal(auth_lockout_unlock(l, "BOB@x.test"), 2);
	assert_int_equal(auth_lockout_is_locked(l, "bob@x.test", "10.0.0.1"), 0);
	assert_int_equal(auth_lockout_is_locked(l, "bob@x.test", "10.0.0.2"), 0);
	assert_int_equal(auth_lockout_is_locked(l, "ann@x.test", "10.0.0.1"), 1);
	assert_int_equal(auth_lockout_unlock(l, "nobody@x.test"), 0);

	/* "Unlock all accounts now". */
	assert_int_equal(auth_lockout_unlock(l, NULL), 2);
	assert_int_equal(auth_lockout_is_locked(l, "ann@x.test", "10.0.0.1"), 0);
	assert_int_equal(auth_lockout_is_locked(l, "eve@x.test", "10.0.0.3"), 0);
	assert_int_equal(auth_lockout_unlock(l, NULL), 0);
	auth_lockout_free(&l);
}

static void test_disabled(void **state)
{
	auth_lockout *l = auth_lockout_new(0, 600);

	for (int i = 0; i < 10; i++)
		auth_lockout_failed(l, "bob@x.test", "10.0.0.1");
	assert_int_equal(auth_lockout_is_locked(l, "bob@x.test", "10.0.0.1"), 0);
	auth_lockout_free(&l);
	/* NULL table: lockout not configured. */
	auth_lockout_failed(NULL, "bob@x.test", "10.0.0.1");
	assert_int_equal(auth_lockout_is_locked(NULL, "bob@x.test", "10.0.0.1"), 0);
}

/* The lock ends by itself after lock_seconds; the count starts again from zero. */
static void test_expiry(void **state)
{
	auth_lockout *l = auth_lockout_new(2, 2);

	auth_lockout_failed(l, "bob@x.test", "10.0.0.1");
	auth_lockout_failed(l, "bob@x.test", "10.0.0.1");
	assert_int_equal(auth_lockout_is_locked(l, "bob@x.test", "10.0.0.1"), 1);
	sleep(3);
	assert_int_equal(auth_lockout_is_locked(l, "bob@x.test", "10.0.0.1"), 0);
	auth_lockout_failed(l, "bob@x.test", "10.0.0.1");
	assert_int_equal(auth_lockout_is_locked(l, "bob@x.test", "10.0.0.1"), 0);
	auth_lockout_free(&l);
}

/* The "locked from any address" query behind the admin API's user stats. */
static void test_locked_any(void **state)
{
	auth_lockout *l = auth_lockout_new(2, 600);

	assert_int_equal(auth_lockout_is_locked_any(l, "bob@x.test"), 0);
	/* Failures below the threshold, spread over addresses, lock nothing. */
	auth_lockout_failed(l, "bob@x.test", "10.0.0.1");
	auth_lockout_failed(l, "bob@x.test", "10.0.0.2");
	auth_lockout_failed(l, "ann@x.test", "10.0.0.2");
	assert_int_equal(auth_lockout_is_locked_any(l, "bob@x.test"), 0);
	/* One address reaching the threshold makes the account locked "from any". */
	auth_lockout_failed(l, "bob@x.test", "10.0.0.2");
	assert_int_equal(auth_lockout_is_locked(l, "bob@x.test", "10.0.0.1"), 0);
	assert_int_equal(auth_lockout_is_locked_any(l, "bob@x.test"), 1);
	assert_int_equal(auth_lockout_is_locked_any(l, "BOB@X.TEST"), 1);
	assert_int_equal(auth_lockout_is_locked_any(l, "ann@x.test"), 0);
	assert_int_equal(auth_lockout_is_locked_any(l, "bob@x.tes"), 0);
	assert_int_equal(auth_lockout_is_locked_any(l, "nobody@x.test"), 0);
	/* Many other entries (table growth) do not hide it. */
	for (int i = 0; i < 300; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.2.%d.%d", i / 250, i % 250);
		auth_lockout_failed(l, "eve@x.test", ip);
	}
	assert_int_equal(auth_lockout_is_locked_any(l, "bob@x.test"), 1);
	assert_int_equal(auth_lockout_is_locked_any(l, "eve@x.test"), 0);
	assert_int_equal(auth_lockout_unlock(l, "bob@x.test"), 1);
	assert_int_equal(auth_lockout_is_locked_any(l, "bob@x.test"), 0);
	auth_lockout_free(&l);

	/* Disabled or absent lockout: never locked. */
	l = auth_lockout_new(0, 600);
	auth_lockout_failed(l, "bob@x.test", "10.0.0.1");
	assert_int_equal(auth_lockout_is_locked_any(l, "bob@x.test"), 0);
	auth_lockout_free(&l);
	assert_int_equal(auth_lockout_is_locked_any(NULL, "bob@x.test"), 0);
}

/* A lock that has run out no longer counts for "locked from any address". */
static void test_locked_any_expiry(void **state)
{
	auth_lockout *l = auth_lockout_new(1, 1);

	auth_lockout_failed(l, "bob@x.test", "10.0.0.9");
	assert_int_equal(auth_lockout_is_locked_any(l, "bob@x.test"), 1);
	sleep(2);
	assert_int_equal(auth_lockout_is_locked_any(l, "bob@x.test"), 0);
	auth_lockout_free(&l);
}

#define THREADS 4
#define PER_THREAD 600

static void *hammer(void *arg)
{
	auth_lockout *l = arg;
	char ip[32];

	for (int i = 0; i < PER_THREAD; i++) {
		/* Every thread fails for the same accounts from the same addresses. */
		snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 250, i % 250);
		auth_lockout_failed(l, "bob@x.test", ip);
		auth_lockout_is_locked(l, "bob@x.test", ip);
	}
	return NULL;
}

/* Concurrent failures are all counted (threshold = THREADS per address) and the table
 * grows past its first size without losing entries. */
static void test_threads(void **state)
{
	auth_lockout *l = auth_lockout_new(THREADS, 600);
	pthread_t t[THREADS];
	char ip[32];
	int locked = 0;

	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, l), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < PER_THREAD; i++) {
		snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 250, i % 250);
		locked += auth_lockout_is_locked(l, "bob@x.test", ip);
	}
	assert_int_equal(locked, PER_THREAD);
	assert_int_equal(auth_lockout_unlock(l, "bob@x.test"), PER_THREAD);
	auth_lockout_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threshold),
		cmocka_unit_test(test_success_resets),
		cmocka_unit_test(test_unlock),
		cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_locked_any),
		cmocka_unit_test(test_locked_any_expiry),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
