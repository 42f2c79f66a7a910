/* test_lib_log.c - log lines, rotation keeping N files, reopen after a move. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/tern-test-log-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	tlog_close();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *slurp(const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	tbuf b = TBUF_INIT;
	char chunk[512];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		tbuf_append(&b, chunk, n);
	fclose(f);
	return tbuf_steal(&b);
}

static int exists(const char *name)
{
	char path[256];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0;
}

static void test_stamp(void **state)
{
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm = { .tm_year = 126, .tm_mon = 10, .tm_mday = 29, .tm_hour = 10,
			 .tm_min = 55, .tm_sec = 47, .tm_isdst = -1 };
	time_t t = mktime(&tm);
	char out[32];
	tlog_stamp((long)t, out);
	assert_string_equal(out, "[29/Nov/2026 10:55:47]");
	for (int m = 0; m < 12; m++) {
		struct tm x = { .tm_year = 100, .tm_mon = m, .tm_mday = 3, .tm_hour = 4, .tm_isdst = -1 };
		char want[32];
		snprintf(want, sizeof(want), "[03/%s/2000 04:00:00]", mon[m]);
		tlog_stamp((long)mktime(&x), out);
		assert_string_equal(out, want);
	}
	assert_string_equal(tlog_category_name(TLOG_OPERATIONS), "operations");
	assert_string_equal(tlog_category_name(TLOG_SPAM), "spam");
}

static void test_lines(void **state)
{
	tlog_options opt = { .rotate_bytes = 0, .keep_files = 3, .echo_stderr = 0 };
	const char *err = NULL;
	assert_int_equal(tlog_open(dir, &opt, &err), 0);
	static const char *const files[] = { "config.log", "mail.log", "security.log",
		"warning.log", "error.log", "operations.log", "spam.log", "debug.log" };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		assert_true(exists(files[i]));
	tlog(TLOG_MAIL, "Recv: Queue-ID: %s, Size: %d", "438dd9ea-00000000", 3302);
	tlog(TLOG_MAIL, "evil\ninjected [01/Jan/2000 00:00:00] line\r\n");
	tlog(TLOG_SECURITY, "Failed IMAP login from %s, bad credentials", "192.168.36.139");
	char *mail = slurp("mail.log");
	assert_non_null(mail);
	/* "[DD/Mon/YYYY HH:MM:SS] text\n", and one line per event */
	assert_int_equal(mail[0], '[');
	assert_int_equal(mail[3], '/');
	assert_int_equal(mail[21], ']');
	char *second = strchr(mail, '\n') + 1;
	assert_memory_equal(mail + 22, " Recv: Queue-ID: 438dd9ea-00000000, Size: 3302\n", 47);
	assert_string_equal(second + 22, " evil injected [01/Jan/2000 00:00:00] line\n");
	free(mail);
	char *sec = slurp("security.log");
	assert_string_equal(sec + 22, " Failed IMAP login from 192.168.36.139, bad credentials\n");
	free(sec);
	tlog_close();
}

static void test_rotation(void **state)
{
	tlog_options opt = { .rotate_bytes = 100, .keep_files = 2, .echo_stderr = 0 };
	const char *err = NULL;
	assert_int_equal(tlog_open(dir, &opt, &err), 0);
	/* each line is 22 + 1 + 46 + 1 = 70 bytes: one line per file */
	for (int i = 0; i < 5; i++)
		tlog(TLOG_ERROR, "line %d xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i);
	char *cur = slurp("error.log"), *r1 = slurp("error.log.1"), *r2 = slurp("error.log.2");
	assert_non_null(cur);
	assert_non_null(r1);
	assert_non_null(r2);
	assert_non_null(strstr(cur, "line 4 "));
	assert_non_null(strstr(r1, "line 3 "));
	assert_non_null(strstr(r2, "line 2 "));
	assert_null(strstr(cur, "line 3 "));
	assert_false(exists("error.log.3"));     /* the oldest was dropped */
	free(cur);
	free(r1);
	free(r2);
	tlog_close();
}

static void test_reopen(void **state)
{
	tlog_options opt = { 0 };
	const char *err = NULL;
	char from[128], to[128];
	assert_int_equal(tlog_open(dir, &opt, &err), 0);
	tlog(TLOG_OPERATIONS, "before");
	snprintf(from, sizeof(from), "%s/operations.log", dir);
	snprintf(to, sizeof(to), "%s/operations.log.old", dir);
	assert_int_equal(rename(from, to), 0);      /* what logrotate does */
	tlog(TLOG_OPERATIONS, "still old");
	tlog_reopen();
	tlog(TLOG_OPERATIONS, "after");
	char *old = slurp("operations.log.old"), *cur = slurp("operations.log");
	assert_non_null(strstr(old, "] before\n"));
	assert_non_null(strstr(old, "] still old\n"));
	assert_null(strstr(old, "after"));
	assert_string_equal(cur + 22, " after\n");
	free(old);
	free(cur);
	tlog_close();

	/* a directory that cannot be made is an error */
	assert_int_equal(tlog_open("/proc/no/such/dir", &opt, &err), -1);
	assert_non_null(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stamp),
		cmocka_unit_test_setup_teardown(test_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
