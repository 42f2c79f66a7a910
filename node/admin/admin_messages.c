/* admin_messages.c - a read-only look into a user's mailbox for administrators and
 * tests: the messages of its folders, and one message's bytes as stored (the
 * per-recipient header prefix followed by the shared body). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "admin_private.h"

#define ADMIN_MESSAGES_MAX 100000

typedef struct msg_list {
	json_t *arr;
	const char *folder;
	size_t n;
} msg_list;

static json_t *flags_json(const Tern__MessageMeta *m)
{
	static const struct { uint32_t bit; const char *name; } names[] = {
		{ TERN__FLAG__FLAG_SEEN, "\\Seen" }, { TERN__FLAG__FLAG_ANSWERED, "\\Answered" },
		{ TERN__FLAG__FLAG_FLAGGED, "\\Flagged" }, { TERN__FLAG__FLAG_DELETED, "\\Deleted" },
		{ TERN__FLAG__FLAG_DRAFT, "\\Draft" },
	};
	json_t *a = json_array();
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (m->flags & names[i].bit)
			json_array_append_new(a, json_string(names[i].name));
	for (size_t i = 0; i < m->n_keywords; i++)
		json_array_append_new(a, json_string(m->keywords[i]));
	return a;
}

static int list_one(const Tern__MessageMeta *m, void *arg)
{
	msg_list *l = arg;
	json_array_append_new(l->arr, json_pack("{s:s, s:I, s:I, s:o, s:I, s:I}", "folder", l->folder,
						"uid", (json_int_t)m->uid, "size", (json_int_t)m->size,
						"flags", flags_json(m), "internaldate",
						(json_int_t)m->internaldate, "modseq", (json_int_t)m->modseq));
	return ++l->n >= ADMIN_MESSAGES_MAX;
}

/* The user of the path, or NULL after replying. */
static Tern__User *path_user(admin_req *r)
{
	Tern__User *u = NULL;
	if (admin_user_address(r, r->arg) < 0)
		return NULL;
	if (admin_user_load(r, &u) < 0)
		return NULL;
	if (u->id.len != 16) {
		store_free_record(u);
		admin_error(r, 500, "user %s@%s has no id", r->name, r->domain);
		return NULL;
	}
	return u;
}

/* GET /api/v1/users/ADDRESS/messages[?folder=NAME]: every message, folder by folder. */
void adm_user_messages(admin_req *r)
{
	Tern__User *u = path_user(r);
	if (u == NULL)
		return;
	char *want = http_query_param(r->req, "folder");
	Tern__Folder **folders = NULL;
	size_t nf = 0;
	int rc = store_folder_list(r->st, u->id.data, &folders, &nf);
	if (rc != STORE_OK) {
		free(want);
		store_free_record(u);
		admin_store_error(r, rc, NULL);
		return;
	}
	msg_list l = { json_array(), NULL, 0 };
	int found = want == NULL;
	for (size_t i = 0; i < nf && rc == STORE_OK; i++) {
		if (want != NULL && strcasecmp(want, folders[i]->name) != 0)
			continue;
		found = 1;
		l.folder = folders[i]->name;
		rc = store_msg_scan(r->st, u->id.data, folders[i]->id.data, 1, list_one, &l);
	}
	store_free_list((void **)folders, nf);
	store_free_record(u);
	if (!found) {
		admin_error(r, 404, "no folder %s", want);
		json_decref(l.arr);
	} else if (rc != STORE_OK) {
		admin_store_error(r, rc, NULL);
		json_decref(l.arr);
	} else {
		admin_reply_json(r, 200, l.arr);
	}
	free(want);
}

/* GET /api/v1/users/ADDRESS/messages/UID[?folder=NAME]: the message as stored. */
void adm_user_message(admin_req *r)
{
	char *end = NULL;
	unsigned long uid = strtoul(r->arg2, &end, 10);
	if (end == r->arg2 || *end != '\0' || uid == 0 || uid > UINT32_MAX) {
		admin_error(r, 400, "invalid UID '%s'", r->arg2);
		return;
	}
	Tern__User *u = path_user(r);
	if (u == NULL)
		return;
	char *want = http_query_param(r->req, "folder");
	Tern__Folder *f = NULL;
	Tern__MessageMeta *m = NULL;
	int rc = store_folder_find(r->st, u->id.data, want ? want : "INBOX", &f);
	if (rc == STORE_OK)
		rc = store_msg_get(r->st, u->id.data, f->id.data, (uint32_t)uid, &m);
	tbuf out = TBUF_INIT;
	if (rc == STORE_OK) {
		tbuf_append(&out, m->header_prefix.data, m->header_prefix.len);
		if (m->blob.len == 32)
			rc = store_blob_read(r->st, m->blob.data, 0, 0, &out);
	}
	if (rc == STORE_OK)
		admin_reply_text(r, 200, "message/rfc822", out.data ? out.data : "", out.len);
	else
		admin_store_error(r, rc, NULL);
	tbuf_free(&out);
	store_free_record(m);
	store_free_record(f);
	store_free_record(u);
	free(want);
}
