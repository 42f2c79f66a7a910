/* cluster_test_util.h - the multi-node harness of the cluster unit tests: several nodes in
 * one process, each a store in a temporary directory with a cluster object listening on
 * a free port of 127.0.0.1, the log files in a directory of their own, and polling for
 * what replication brings. The including test defines the nodes (tnode) it needs. */
#ifndef TERN_CLUSTER_TEST_UTIL_H
#define TERN_CLUSTER_TEST_UTIL_H
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "cluster.h"

#define WAIT_MS 20000

/* One node: its directory, store, configuration and cluster object. When handlers is
 * set they are installed each time the node starts (the master's stand-ins for node/). */
typedef struct tnode {
	char dir[64], db[128];
	char name[16];
	store *st;
	tern_conf conf;
	cluster *cl;
	const cluster_handlers *handlers;
} tnode;

/* Where logs_open put the log files, for log_has. */
static char logdir[64];

/* Poll cond (evaluated once per round) for up to WAIT_MS. */
#define WAIT_FOR(cond) do { \
	int64_t until_ = tern_mono_ms() + WAIT_MS; \
	int ok_; \
	while (!(ok_ = (cond)) && tern_mono_ms() < until_) \
		usleep(50000); \
	assert_true(ok_); \
} while (0)

/* A TCP port of 127.0.0.1 that was free a moment ago. */
static inline unsigned free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* Opens the node's cluster object (first start or restart), with its handlers if any. */
static inline void node_start(tnode *n)
{
	cluster_options o = { n->st, &n->conf, n->dir, n->name,
			      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
	char *err = NULL;

	if (cluster_open(&o, &n->cl, &err) != 0)
		fail_msg("cluster_open %s: %s", n->name, err);
	if (n->handlers != NULL)
		cluster_set_handlers(n->cl, n->handlers);
}

/* A fresh node called name in /tmp/<prefix>-XXXXXX: store, [cluster] configuration on
 * free ports (control and bulk) with short timers and frames of at most max_frame bytes,
 * more configuration text `extra` (e.g. a [migrate] section), and a started cluster
 * object. */
static inline void node_init_opts(tnode *n, const char *name, const char *prefix, unsigned max_frame,
				  const char *extra)
{
	store_options so;
	char text[1024], *err = NULL;

	snprintf(n->name, sizeof(n->name), "%s", name);
	snprintf(n->dir, sizeof(n->dir), "/tmp/%s-XXXXXX", prefix);
	assert_non_null(mkdtemp(n->dir));
	snprintf(n->db, sizeof(n->db), "%s/db", n->dir);
	store_options_default(&so);
	so.path = n->db;
	so.sweep_interval = 0;
	so.disk_check_interval = 0;
	so.disk_soft_limit = so.disk_hard_limit = 0;
	so.cache_bytes = 4u << 20;
	if (store_open(&so, &n->st, &err) != 0)
		fail_msg("store_open: %s", err);
	int w = snprintf(text, sizeof(text), "[cluster]\nport = %u\nbulk_port = %u\nlisten = 127.0.0.1\n"
			 "address = 127.0.0.1\nheartbeat_interval = 1\nunavailable_after = 3\nrequest_timeout = 3\n"
			 "max_frame = %u\n%s", free_port(), free_port(), max_frame, extra != NULL ? extra : "");
	assert_true(w > 0 && (size_t)w < sizeof(text));
	assert_int_equal(tern_conf_load_string(&n->conf, text, 0, &err), 0);
	node_start(n);
}

/* node_init_opts with 64 KiB frames and nothing more. */
static inline void node_init(tnode *n, const char *name, const char *prefix)
{
	node_init_opts(n, name, prefix, 65536, NULL);
}

static inline int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(p);
}

/* Closes everything node_init opened and removes its directory. */
static inline void node_free(tnode *n)
{
	cluster_close(&n->cl);
	store_close(&n->st);
	tern_conf_free(&n->conf);
	nftw(n->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Opens the logs in a fresh /tmp/<prefix>-logs-XXXXXX; -1 when that fails. */
static inline int logs_open(const char *prefix)
{
	tlog_options lo = { 0, 0, 0 };
	const char *lerr = NULL;

	snprintf(logdir, sizeof(logdir), "/tmp/%s-logs-XXXXXX", prefix);
	if (mkdtemp(logdir) == NULL || tlog_open(logdir, &lo, &lerr) != 0)
		return -1;
	return 0;
}

/* Closes the logs and removes their directory. */
static inline void logs_close(void)
{
	tlog_close();
	nftw(logdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* 1 when the log file (e.g. "warning.log") contains needle. */
static inline int log_has(const char *file, const char *needle)
{
	char path[128], chunk[4096];
	tbuf b = TBUF_INIT;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", logdir, file);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		tbuf_append(&b, chunk, n);
	fclose(f);
	int found = strstr(tbuf_cstr(&b), needle) != NULL;
	tbuf_free(&b);
	return found;
}

/* 1 when the user addr is in the store st (replicated there, on a slave). */
static inline int has_user(store *st, const char *addr)
{
	Tern__User *u = NULL;
	int rc = store_user_find(st, addr, &u);

	store_free_record(u);
	return rc == STORE_OK;
}

/* Adds the domain example.test to st (the master's, before a distributed domain). */
static inline void add_domain(store *st)
{
	Tern__Domain d = TERN__DOMAIN__INIT;
	store_sync_result r;

	d.name = (char *)"example.test";
	assert_int_equal(store_domain_add(st, &d, STORE_SYNC, &r), STORE_OK);
}

/* Admits node n at the master and joins it there; fails the test on an error. */
static inline void node_join(tnode *master, tnode *n)
{
	cluster_admission *adm = NULL;
	Tern__Node *id = NULL;
	tbuf err = TBUF_INIT;

	assert_int_equal(cluster_identity(n->cl, &id), 0);
	if (cluster_admit(master->cl, id, &adm, &err) != 0)
		fail_msg("admit %s: %s", n->name, tbuf_cstr(&err));
	if (cluster_join(n->cl, adm, &err) != 0)
		fail_msg("join %s: %s", n->name, tbuf_cstr(&err));
	store_free_record(id);
	cluster_admission_free(&adm);
	tbuf_free(&err);
}

/* Adds name@example.test to st, which must answer expect. */
static inline void add_user(store *st, const char *name, int expect)
{
	Tern__User u = TERN__USER__INIT;
	store_sync_result r;

	u.name = (char *)name;
	u.domain = (char *)"example.test";
	assert_int_equal(store_user_add(st, &u, STORE_SYNC, &r), expect);
}

#endif
