/* cmd_quota.c - GETQUOTA and GETQUOTAROOT (RFC 2087): one root "" per user with STORAGE
 * (KiB) and MESSAGE from the user's quota and the mailbox's usage; unlimited resources
 * are left out. */
#include <string.h>
#include "imap_int.h"

static int quota_line(imap_session *s)
{
	Tern__User *u = NULL;
	Tern__Mailbox *mb = NULL;
	tbuf b = TBUF_INIT;

	if (store_user_get_by_id(s->srv->env.st, s->user_id, &u) != STORE_OK ||
	    store_mailbox_get(s->srv->env.st, s->user_id, &mb) != STORE_OK) {
		store_free_record(u);
		return -1;
	}
	tbuf_append_str(&b, "QUOTA \"\" (");
	if (u->quota_bytes)
		tbuf_appendf(&b, "STORAGE %llu %llu", (unsigned long long)((mb->bytes + 1023) / 1024),
			     (unsigned long long)(u->quota_bytes / 1024));
	if (u->quota_items)
		tbuf_appendf(&b, "%sMESSAGE %llu %llu", u->quota_bytes ? " " : "", (unsigned long long)mb->items,
			     (unsigned long long)u->quota_items);
	tbuf_append_char(&b, ')');
	imap_untagged(s, "%s", tbuf_cstr(&b));
	tbuf_free(&b);
	store_free_record(u);
	store_free_record(mb);
	return 0;
}

int imap_cmd_getquota(imap_session *s, const imap_cmd *c)
{
	const char *root;
	size_t n;

	if (c->nargs != 1 || imap_arg_astring(&c->args[0], &root, &n) < 0) {
		imap_reply(s, "BAD", "Syntax: GETQUOTA root");
		return IMAP_DONE;
	}
	if (n != 0) {
		imap_reply(s, "NO", "[NONEXISTENT] No such quota root");
		return IMAP_DONE;
	}
	if (quota_line(s) < 0)
		imap_reply(s, "NO", "[SERVERBUG] Quota not available");
	else
		imap_reply(s, "OK", "GETQUOTA completed");
	return IMAP_DONE;
}

int imap_cmd_getquotaroot(imap_session *s, const imap_cmd *c)
{
	char name[IMAP_NAME_MAX + 1];
	const char *err;
	Tern__Folder *f = NULL;
	tbuf b = TBUF_INIT;

	if (c->nargs != 1 || imap_arg_mailbox(&c->args[0], name, &err) < 0) {
		imap_reply(s, "BAD", "Syntax: GETQUOTAROOT mailbox");
		return IMAP_DONE;
	}
	if (store_folder_find(s->srv->env.st, s->user_id, name, &f) != STORE_OK) {
		imap_reply(s, "NO", "[NONEXISTENT] Mailbox does not exist");
		return IMAP_DONE;
	}
	store_free_record(f);
	tbuf_append_str(&b, "QUOTAROOT ");
	imap_append_string(&b, name, strlen(name));
	tbuf_append_str(&b, " \"\"");
	imap_untagged(s, "%s", tbuf_cstr(&b));
	tbuf_free(&b);
	if (quota_line(s) < 0)
		imap_reply(s, "NO", "[SERVERBUG] Quota not available");
	else
		imap_reply(s, "OK", "GETQUOTAROOT completed");
	return IMAP_DONE;
}
