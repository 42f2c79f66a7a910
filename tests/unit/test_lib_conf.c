/* test_lib_conf.c - tern.conf: defaults, every type, range errors, unknown keys,
 * listen parsing with the port base. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_defaults(void **state)
{
	tern_conf c;
	char *err = NULL;
	assert_int_equal(tern_conf_load(&c, NULL, 0, &err), 0);
	assert_string_equal(c.server_hostname, "");
	assert_int_equal(c.server_commit_threads, 2);
	assert_int_equal(c.server_pool_queue_max, 4096);
	assert_int_equal(c.log_rotate_kb, 10240);
	assert_int_equal(c.log_debug, 0);
	assert_int_equal(c.admin_remote, 1);
	assert_int_equal(c.admin_session_timeout, 2400);
	assert_int_equal(c.warnings.len, 0);
	const tern_service_conf *smtp = &c.services[TERN_SVC_smtp];
	assert_string_equal(smtp->name, "smtp");
	assert_int_equal(smtp->enabled, 1);
	assert_int_equal(smtp->default_port, 25);
	assert_int_equal(smtp->tls, TERN_TLS_STARTTLS);
	assert_int_equal(smtp->nlisten, 1);
	assert_string_equal(smtp->listen[0].host, "");
	assert_int_equal(smtp->listen[0].port, 25);
	assert_int_equal(smtp->max_connections, 0);
	assert_string_equal(smtp->allow_ipgroup, "");
	assert_int_equal(c.services[TERN_SVC_admin].listen[0].port, 4040);
	assert_int_equal(c.services[TERN_SVC_imaps].tls, TERN_TLS_IMPLICIT);
	tern_conf_free(&c);
	assert_null(c.server_hostname);
	tern_conf_free(&c);    /* twice is harmless */
}

static void test_every_type(void **state)
{
	static const char *text =
		"; a comment\n"
		"[server]\n"
		"hostname = mail.example.test\n"
		"io_threads = 3\n"
		"dns_resolver = 127.0.0.1:5353\n"
		"[log]\n"
		"debug = yes\n"
		"rotate_kb = 0\n"
		"[admin]\n"
		"remote = off\n"
		"session_timeout = 60\n"
		"enabled = false\n"
		"[http]\n"
		"max_body_bytes = 1024\n"
		"max_connections = 77\n"
		"allow_ipgroup = Local clients\n";
	tern_conf c;
	char *err = NULL;
	assert_int_equal(tern_conf_load_string(&c, text, 0, &err), 0);
	assert_string_equal(c.server_hostname, "mail.example.test");
	assert_string_equal(tern_conf_hostname(&c), "mail.example.test");
	assert_int_equal(c.server_io_threads, 3);
	assert_string_equal(c.server_dns_resolver, "127.0.0.1:5353");
	assert_int_equal(c.log_debug, 1);
	assert_int_equal(c.log_rotate_kb, 0);
	assert_int_equal(c.admin_remote, 0);
	assert_int_equal(c.admin_session_timeout, 60);
	assert_int_equal(c.services[TERN_SVC_admin].enabled, 0);
	assert_int_equal(c.http_max_body_bytes, 1024);
	assert_int_equal(c.services[TERN_SVC_http].max_connections, 77);
	assert_string_equal(c.services[TERN_SVC_http].allow_ipgroup, "Local clients");
	assert_int_equal(c.warnings.len, 0);
	tern_conf_free(&c);

	static const struct { const char *v; int want; } bools[] = {
		{ "1", 1 }, { "0", 0 }, { "yes", 1 }, { "no", 0 }, { "TRUE", 1 }, { "false", 0 },
		{ "on", 1 }, { "Off", 0 },
	};
	for (size_t i = 0; i < N(bools); i++) {
		char t[64];
		snprintf(t, sizeof(t), "[log]\ndebug = %s\n", bools[i].v);
		assert_int_equal(tern_conf_load_string(&c, t, 0, &err), 0);
		assert_int_equal(c.log_debug, bools[i].want);
		tern_conf_free(&c);
	}
}

static void test_bad_values(void **state)
{
	static const struct { const char *text, *want; } cases[] = {
		{ "[server]\nio_threads = many\n", "tern.conf line 2: [server] io_threads: 'many' is not a number" },
		{ "[server]\n\ncommit_threads = 5\n", "tern.conf line 3: [server] commit_threads: 5 is out of range 1..4" },
		{ "[server]\ncommit_threads = 0\n", "line 2" },
		{ "[server]\ncommit_threads = 3x\n", "not a number" },
		{ "[log]\ndebug = maybe\n", "tern.conf line 2: [log] debug: 'maybe' is not a boolean" },
		{ "[smtp]\nenabled = 2\n", "[smtp] enabled" },
		{ "[smtp]\nmax_connections = -1\n", "max_connections" },
		{ "[smtp]\nlisten = mail.example.com\n", "tern.conf line 2: [smtp] listen: bad address" },
		{ "[smtp]\nlisten = 1.2.3.4:0\n", "bad port" },
		{ "[smtp]\nlisten = 1.2.3.4:99999\n", "bad port" },
		{ "[smtp]\nlisten = [::1\n", "bad address" },
		{ "[smtp]\nlisten = 1.2.3.4:25:26\n", "bad IPv6" },
		{ "[smtp]\nlisten = \n", "empty listen" },
		{ "[smtp]\nlisten = 1.1.1.1,1.1.1.2,1.1.1.3,1.1.1.4,1.1.1.5,1.1.1.6,1.1.1.7,1.1.1.8,1.1.1.9\n", "more than 8" },
		{ "[server]\nthis line has no equals sign\n", "tern.conf line 2: syntax error" },
	};
	for (size_t i = 0; i < N(cases); i++) {
		tern_conf c;
		char *err = NULL;
		if (tern_conf_load_string(&c, cases[i].text, 0, &err) != -1)
			fail_msg("case %zu accepted: %s", i, cases[i].text);
		assert_non_null(err);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: error '%s' lacks '%s'", i, err, cases[i].want);
		free(err);
		tern_conf_free(&c);
	}
}

static void test_unknown_keys(void **state)
{
	static const char *text =
		"[server]\n"
		"hostname = a.example\n"
		"\n"
		"foo = 1\n"
		"[nosuch]\n"
		"x = y\n"
		"[imap]\n"
		"colour = blue\n";
	tern_conf c;
	char *err = NULL;
	assert_int_equal(tern_conf_load_string(&c, text, 0, &err), 0);
	const char *w = tbuf_cstr(&c.warnings);
	assert_non_null(strstr(w, "tern.conf line 4: unknown key 'foo' in [server]\n"));
	assert_non_null(strstr(w, "tern.conf line 6: unknown section [nosuch]"));
	assert_non_null(strstr(w, "tern.conf line 8: unknown key 'colour' in [imap]\n"));
	assert_string_equal(c.server_hostname, "a.example");
	tern_conf_free(&c);
}

static void test_listen(void **state)
{
	static const struct {
		const char *listen;
		unsigned base;
		unsigned n;
		const char *host[3];
		unsigned port[3];
	} cases[] = {
		{ "*", 0, 1, { "" }, { 25 } },
		{ "*", 10000, 1, { "" }, { 10025 } },
		{ "127.0.0.1", 10000, 1, { "127.0.0.1" }, { 10025 } },
		{ "127.0.0.1:2525", 10000, 1, { "127.0.0.1" }, { 12525 } },
		{ "[::1]:2525", 100, 1, { "::1" }, { 2625 } },
		{ "[::1]", 0, 1, { "::1" }, { 25 } },
		{ "::", 0, 1, { "::" }, { 25 } },
		{ " 10.0.0.1 , [2001:db8::1]:26,*:27 ", 1, 3, { "10.0.0.1", "2001:db8::1", "" },
		  { 26, 27, 28 } },
	};
	for (size_t i = 0; i < N(cases); i++) {
		char text[200];
		tern_conf c;
		char *err = NULL;
		snprintf(text, sizeof(text), "[smtp]\nlisten = %s\n", cases[i].listen);
		if (tern_conf_load_string(&c, text, cases[i].base, &err) != 0)
			fail_msg("listen '%s' refused: %s", cases[i].listen, err);
		const tern_service_conf *s = &c.services[TERN_SVC_smtp];
		assert_int_equal(s->nlisten, cases[i].n);
		for (unsigned j = 0; j < cases[i].n; j++) {
			assert_string_equal(s->listen[j].host, cases[i].host[j]);
			assert_int_equal(s->listen[j].port, cases[i].port[j]);
		}
		/* other services keep "*" at their port + base */
		assert_int_equal(c.services[TERN_SVC_imap].listen[0].port, 143 + cases[i].base);
		assert_int_equal(c.port_base, cases[i].base);
		tern_conf_free(&c);
	}
}

static void test_port_base_overflow(void **state)
{
	tern_conf c;
	char *err = NULL;
	/* 8800 + 60000 is past 65535: an error... */
	assert_int_equal(tern_conf_load_string(&c, "", 60000, &err), -1);
	assert_non_null(strstr(err, "above 65535"));
	free(err);
	tern_conf_free(&c);
	/* ...also for an explicit port */
	assert_int_equal(tern_conf_load_string(&c, "[smtp]\nlisten = *:6000\n", 60000, &err), -1);
	assert_non_null(strstr(err, "line 2"));
	free(err);
	tern_conf_free(&c);
	/* ...unless every service above the limit is disabled */
	tbuf t = TBUF_INIT;
	tern_conf d;
	assert_int_equal(tern_conf_load_string(&d, "", 0, &err), 0);
	for (int i = 0; i < TERN_SVC_COUNT; i++)
		if (d.services[i].default_port + 60000u > 65535)
			tbuf_appendf(&t, "[%s]\nenabled = no\n", d.services[i].name);
	tern_conf_free(&d);
	assert_int_equal(tern_conf_load_string(&c, tbuf_cstr(&t), 60000, &err), 0);
	assert_int_equal(c.services[TERN_SVC_smtp].listen[0].port, 60025);
	tern_conf_free(&c);
	tbuf_free(&t);
}

static void test_file_and_defaults_text(void **state)
{
	tbuf out = TBUF_INIT;
	tern_conf_write_defaults(&out);
	const char *s = tbuf_cstr(&out);
	assert_non_null(strstr(s, "[server]\n"));
	assert_non_null(strstr(s, "#commit_threads = 2\n"));
	assert_non_null(strstr(s, "#debug = no\n"));
	assert_non_null(strstr(s, "[smtps]\n"));
	assert_non_null(strstr(s, "#listen = *\n"));
	/* [http] and [admin] appear once, with settings and service keys together */
	const char *h = strstr(s, "[http]\n");
	assert_non_null(h);
	assert_null(strstr(h + 1, "[http]\n"));

	char path[] = "/tmp/tern-test-conf-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, out.data, out.len), (ssize_t)out.len);
	close(fd);
	tern_conf c;
	char *err = NULL;
	assert_int_equal(tern_conf_load(&c, path, 0, &err), 0);
	assert_int_equal(c.warnings.len, 0);     /* everything is commented out */
	assert_int_equal(c.server_commit_threads, 2);
	tern_conf_free(&c);
	unlink(path);
	assert_int_equal(tern_conf_load(&c, path, 0, &err), -1);
	assert_non_null(strstr(err, "cannot read"));
	free(err);
	tern_conf_free(&c);
	tbuf_free(&out);

	/* no configured name: the host's own name, never empty */
	assert_int_equal(tern_conf_load(&c, NULL, 0, &err), 0);
	assert_true(strlen(tern_conf_hostname(&c)) > 0);
	tern_conf_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_type),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_port_base_overflow),
		cmocka_unit_test(test_file_and_defaults_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
