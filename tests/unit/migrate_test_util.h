/* migrate_test_util.h - the migration tests' harness on top of cluster_test_util.h: nodes
 * with their own bulk port and [migrate] settings, a master "a" with a slave "b", users
 * with folders, messages (some with multi-chunk blobs) and a DAV collection, and the
 * migrate module of each node. */
#ifndef TERN_MIGRATE_TEST_UTIL_H
#define TERN_MIGRATE_TEST_UTIL_H
#include "cluster_test_util.h"
#include "migrate.h"
#include "util.h"

/* Reports received (the node's report hook). */
typedef struct mt_reports {
	pthread_mutex_t mu;
	int n;
	char subject[400];
	char body[2000];
} mt_reports;

static inline void mt_report(void *arg, const char *admin, const char *subject, const char *body)
{
	mt_reports *r = arg;
	(void)admin;
	pthread_mutex_lock(&r->mu);
	r->n++;
	snprintf(r->subject, sizeof(r->subject), "%s", subject);
	snprintf(r->body, sizeof(r->body), "%s", body);
	pthread_mutex_unlock(&r->mu);
}

/* A fresh node as node_init_opts makes it, with 4 MiB frames, a 1 MB hard disk limit, a
 * short [migrate] retry and request timeout, and the [migrate] settings `migrate_conf`
 * (e.g. "chunk_kb = 16\n"). */
static inline void mt_node_init(tnode *n, const char *name, const char *prefix, const char *migrate_conf)
{
	char extra[512];
	int w = snprintf(extra, sizeof(extra), "[store]\ndisk_hard_limit_mb = 1\n[migrate]\nretry_interval = 1\n"
			 "request_timeout = 5\n%s", migrate_conf);

	assert_true(w > 0 && (size_t)w < sizeof(extra));
	node_init_opts(n, name, prefix, 4194304, extra);
}

/* Replace the node's [migrate] fault setting (before its migrate module is opened). */
static inline void mt_set_fault(tnode *n, const char *fault)
{
	free(n->conf.migrate_fault);
	n->conf.migrate_fault = strdup(fault);
}

/* Open the migrate module of node n. */
static inline migrate *mt_migrate_open(tnode *n, mt_reports *rep)
{
	migrate_options o = { n->st, n->cl, &n->conf, NULL, mt_report, rep };
	migrate *m = NULL;
	char *err = NULL;

	if (migrate_open(&o, &m, &err) != 0)
		fail_msg("migrate_open %s: %s", n->name, err);
	return m;
}

/* a becomes the master, b its slave, with the domain example.test. */
static inline void mt_cluster(tnode *a, tnode *b)
{
	Tern__Node *an = NULL;

	add_domain(a->st);
	node_join(a, b);
	WAIT_FOR(cluster_node_find(b->st, a->name, &an) == STORE_OK);
	store_free_record(an);
}

/* The user's id in st. */
static inline void mt_user_id(store *st, const char *addr, uint8_t id[16])
{
	Tern__User *u = NULL;
	assert_int_equal(store_user_find(st, addr, &u), STORE_OK);
	memcpy(id, u->id.data, 16);
	store_free_record(u);
}

/* Append one message of len bytes (content varies with seq) to folder (NULL = INBOX). */
static inline int mt_append(store *st, const uint8_t user[16], const uint8_t *folder, unsigned seq, size_t len)
{
	store_append a = { 0 };
	store_sync_result r;
	char *body = malloc(len + 1);
	int n = snprintf(body, len + 1, "Subject: message %u\r\n\r\n", seq);

	for (size_t i = (size_t)n; i < len; i++)
		body[i] = (char)('a' + (i * 7 + seq) % 26);
	a.user = user;
	a.folder = folder;
	a.body = body;
	a.body_len = len;
	a.flags = seq % 3 == 0 ? TERN__FLAG__FLAG_SEEN : 0;
	int rc = store_msg_append(st, &a, STORE_SYNC, &r);
	free(body);
	return rc;
}

/* Folders "Work" and "Lists" with n messages spread over them and INBOX, two large ones
 * (several blob chunks), flags changed on some, and a calendar with a few events. */
static inline void mt_fill(store *st, const uint8_t user[16], unsigned n)
{
	store_sync_result r;
	uint8_t work[16], lists[16];

	assert_int_equal(store_folder_create(st, user, "Work", NULL, STORE_SYNC, &r), STORE_OK);
	memcpy(work, r.res.id, 16);
	assert_int_equal(store_folder_create(st, user, "Lists", NULL, STORE_SYNC, &r), STORE_OK);
	memcpy(lists, r.res.id, 16);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(mt_append(st, user, i % 3 == 0 ? NULL : i % 3 == 1 ? work : lists, i, 500 + (i % 50) * 40),
				 STORE_OK);
	assert_int_equal(mt_append(st, user, work, 9000, 700 * 1024), STORE_OK);
	assert_int_equal(mt_append(st, user, NULL, 9001, 300 * 1024), STORE_OK);
	uint32_t uids[] = { 1, 2, 3, 5, 8 };
	assert_int_equal(store_msg_set_flags(st, user, work, uids, 5, STORE_FLAGS_ADD, TERN__FLAG__FLAG_FLAGGED, NULL, 0,
					     0, STORE_SYNC, &r),
			 STORE_OK);

	Tern__DavCollection c = TERN__DAV_COLLECTION__INIT;
	c.name = (char *)"calendar";
	c.kind = TERN__DAV_COLLECTION__KIND__CALENDAR;
	assert_int_equal(store_dav_collection_create(st, user, &c, STORE_SYNC, &r), STORE_OK);
	uint8_t coll[16];
	memcpy(coll, r.res.id, 16);
	for (int i = 0; i < 5; i++) {
		Tern__DavObject o = TERN__DAV_OBJECT__INIT;
		char href[32], uid[32], data[256];
		snprintf(href, sizeof(href), "ev%d.ics", i);
		snprintf(uid, sizeof(uid), "uid-%d", i);
		snprintf(data, sizeof(data), "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:%s\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", uid);
		o.href = href;
		o.uid = uid;
		o.data.data = (uint8_t *)data;
		o.data.len = strlen(data);
		o.component = (char *)"VEVENT";
		store_dav_write w = { user, coll, &o, NULL, 0 };
		assert_int_equal(store_dav_put(st, &w, STORE_SYNC, &r), STORE_OK);
	}
}

/* The digest of the user's mailbox in st (malloc'd entries). */
static inline size_t mt_digest(store *st, const uint8_t user[16], store_mig_digest_entry **e_r)
{
	size_t n = 0;
	*e_r = NULL;
	assert_int_equal(store_mig_digest(st, user, e_r, &n), STORE_OK);
	return n;
}

/* The status of the job of `user` on m, or 0 when there is none. */
static inline int mt_status(migrate *m, const char *user, migrate_status *s_r)
{
	migrate_status *list = NULL;
	size_t n = 0;
	int found = 0;

	if (migrate_list(m, &list, &n) != 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].user, user) == 0) {
			*s_r = list[i];
			found = 1;
		}
	free(list);
	return found;
}

/* 1 when the job of user on m is in state `state`. */
static inline int mt_state_is(migrate *m, const char *user, const char *state)
{
	migrate_status s;
	return mt_status(m, user, &s) && strcmp(s.state, state) == 0;
}

/* 1 when st's record of the user names home `home`, ACTIVE. */
static inline int mt_home_is(store *st, const char *addr, const char *home)
{
	Tern__User *u = NULL;
	char h[64];
	int ok = 0;

	if (store_user_find(st, addr, &u) == STORE_OK) {
		store_home_node(st, u->home, h, sizeof(h));
		ok = strcmp(h, home) == 0 && u->home_state == TERN__HOME_STATE__HOME_ACTIVE;
	}
	store_free_record(u);
	return ok;
}

/* Rows of the user's key range in st (all column families). */
static inline int mt_count_row(const store_mig_row *r, void *arg)
{
	(void)r;
	(*(size_t *)arg)++;
	return 0;
}

static inline size_t mt_rows(store *st, const uint8_t user[16])
{
	size_t n = 0;
	for (int cf = STORE_MIG_FOLDER; cf <= STORE_MIG_DAV; cf++) {
		int more = 1;
		/* one pass with a large limit is enough for a test mailbox */
		assert_int_equal(store_mig_scan(st, user, (store_mig_cf)cf, NULL, 0, 1u << 30, mt_count_row, &n, &more),
				 STORE_OK);
	}
	return n;
}

#endif
