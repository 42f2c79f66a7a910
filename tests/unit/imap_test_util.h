/* imap_test_util.h - for the unit tests of node/imap: a message appended to a user's
 * INBOX with its MIME record, read back as an imap_msg (the message views, FETCH and
 * SEARCH), and an IMAP server with the pools and lockout it runs on (the session tests).
 * Include after store_test_util.h. */
#ifndef TERN_IMAP_TEST_UTIL_H
#define TERN_IMAP_TEST_UTIL_H
#include "auth.h"
#include "imap.h"
#include "imap_msg.h"
#include "mime.h"
#include "tern.h"

/* Append body (after the header prefix) to user's INBOX with flags, the keyword kw (NULL:
 * none) and internaldate, analysed by mime_analyze; *meta_r is its record (free it with
 * store_free_record) and *m the message as message number msn sees it. */
static inline void it_append(store *st, const uint8_t user[16], const char *body, const char *prefix,
			     uint32_t flags, const char *kw, int64_t date, uint32_t msn,
			     Tern__MessageMeta **meta_r, imap_msg *m)
{
	store_append a = { 0 };
	store_sync_result r;
	Tern__Folder *inbox = NULL;
	Tern__MimeInfo *mi = mime_analyze(body, strlen(body));

	assert_non_null(mi);
	a.user = user;
	a.header_prefix = prefix;
	a.header_prefix_len = strlen(prefix);
	a.body = body;
	a.body_len = strlen(body);
	a.flags = flags;
	a.keywords = &kw;
	a.nkeywords = kw ? 1 : 0;
	a.internaldate = date;
	a.mime = mi;
	assert_int_equal(store_msg_append(st, &a, STORE_SYNC, &r), STORE_OK);
	mime_info_free(&mi);
	assert_int_equal(store_folder_find(st, user, "INBOX", &inbox), STORE_OK);
	assert_int_equal(store_msg_get(st, user, inbox->id.data, r.res.uid, meta_r), STORE_OK);
	store_free_record(inbox);
	m->st = st;
	m->meta = *meta_r;
	m->msn = msn;
}

/* An IMAP server with an auth pool and a cpu pool of 2 threads each and a lockout. */
typedef struct it_server {
	tern_pool *auth_pool, *cpu_pool;
	auth_lockout *lockout;
	imap_server *imap;
} it_server;

/* Make s's pools, a lockout after max_failures failed logins for 10 minutes and the server
 * on st with conf (which must outlive it), hostname in its greeting. */
static inline void it_server_new(it_server *s, store *st, const tern_conf *conf, const char *hostname,
				 unsigned max_failures)
{
	s->auth_pool = tern_pool_new("auth", 2, 64);
	s->cpu_pool = tern_pool_new("cpu", 2, 64);
	s->lockout = auth_lockout_new(max_failures, 600);
	imap_env env = { .st = st, .conf = conf, .hostname = hostname,
			 .auth_pool = s->auth_pool, .cpu_pool = s->cpu_pool, .lockout = s->lockout };
	s->imap = imap_server_new(&env);
	assert_non_null(s->imap);
}

/* Free what it_server_new made: the server before the pools it runs on. */
static inline void it_server_free(it_server *s)
{
	imap_server_free(&s->imap);
	tern_pool_free(&s->auth_pool);
	tern_pool_free(&s->cpu_pool);
	auth_lockout_free(&s->lockout);
}

#endif
