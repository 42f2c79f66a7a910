/* imap_test_util.h - for the unit tests of node/imap's message views (FETCH, SEARCH):
 * a message appended to a user's INBOX with its MIME record, read back as an imap_msg.
 * Include after store_test_util.h. */
#ifndef TERN_IMAP_TEST_UTIL_H
#define TERN_IMAP_TEST_UTIL_H
#include "imap_msg.h"
#include "mime.h"

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

#endif
