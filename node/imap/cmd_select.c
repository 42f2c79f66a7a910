/* cmd_select.c - the selected state: SELECT, EXAMINE (with CONDSTORE), CHECK, CLOSE,
 * UNSELECT, EXPUNGE / UID EXPUNGE, IDLE; and the operations.log lines of deleted
 * messages. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "imap_int.h"
#include "mime.h"

struct first_unseen {
	const imap_session *s;
	uint32_t msn;
};

static int find_unseen(const Tern__MessageMeta *m, void *arg)
{
	struct first_unseen *fu = arg;

	if (m->flags & TERN__FLAG__FLAG_SEEN)
		return 0;
	fu->msn = imap_view_msn(fu->s, m->uid);
	return fu->msn != 0;
}

static int select_common(imap_session *s, const imap_cmd *c, int readonly)
{
	char name[IMAP_NAME_MAX + 1];
	const char *err = NULL;
	Tern__Folder *f = NULL;

	if (c->nargs < 1 || c->nargs > 2 || imap_arg_mailbox(&c->args[0], name, &err) < 0 ||
	    (c->nargs == 2 && c->args[1].type != IMAP_ARG_LIST)) {
		if (err != NULL)
			imap_reply(s, "BAD", "%s", err);
		else
			imap_reply(s, "BAD", "Syntax: %s mailbox [(CONDSTORE)]", readonly ? "EXAMINE" : "SELECT");
		return IMAP_DONE;
	}
	for (size_t i = 0; c->nargs == 2 && i < c->args[1].nlist; i++) {
		if (!imap_arg_is_atom(&c->args[1].list[i], "CONDSTORE")) {
			imap_reply(s, "BAD", "Unknown SELECT parameter");
			return IMAP_DONE;
		}
		s->condstore = 1;
	}
	if (s->state == IMAP_ST_SELECTED) {
		imap_enter_state(s, IMAP_ST_AUTH);
		imap_untagged(s, "OK [CLOSED] Previous mailbox closed");
	}
	if (store_folder_find(s->srv->env.st, s->user_id, name, &f) != STORE_OK) {
		imap_reply(s, "NO", "[NONEXISTENT] Mailbox does not exist");
		return IMAP_DONE;
	}
	if (imap_view_open(s, f, readonly) != 0) {
		store_free_record(f);
		imap_reply(s, "NO", "[SERVERBUG] Cannot open mailbox");
		return IMAP_DONE;
	}
	imap_enter_state(s, IMAP_ST_SELECTED);
	imap_view_send_flags(s);
	imap_untagged(s, "%u EXISTS", imap_view_count(s));
	imap_untagged(s, "%u RECENT", imap_view_recent_count(s));
	if (f->unseen > 0) {
		struct first_unseen fu = { s, 0 };
		store_msg_scan(s->srv->env.st, s->user_id, f->id.data, 1, find_unseen, &fu);
		if (fu.msn)
			imap_untagged(s, "OK [UNSEEN %u] First unseen", fu.msn);
	}
	imap_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", f->uidvalidity);
	imap_untagged(s, "OK [UIDNEXT %u] Predicted next UID", f->uidnext);
	imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest", (unsigned long long)s->sel->flags_modseq);
	store_free_record(f);
	imap_reply(s, "OK", "[%s] %s completed", readonly ? "READ-ONLY" : "READ-WRITE", readonly ? "EXAMINE" : "SELECT");
	return IMAP_DONE;
}

int imap_cmd_select(imap_session *s, const imap_cmd *c)
{
	return select_common(s, c, 0);
}

int imap_cmd_examine(imap_session *s, const imap_cmd *c)
{
	return select_common(s, c, 1);
}

int imap_cmd_check(imap_session *s, const imap_cmd *c)
{
	(void)c;
	imap_reply(s, "OK", "CHECK completed");
	return IMAP_DONE;
}

int imap_cmd_unselect(imap_session *s, const imap_cmd *c)
{
	(void)c;
	imap_enter_state(s, IMAP_ST_AUTH);
	imap_reply(s, "OK", "UNSELECT completed");
	return IMAP_DONE;
}

/* ---- operations.log ---- */

/* The value of header `name` in a header block (unfolded, raw), or 0. */
static int header_value(const char *h, size_t n, const char *name, tbuf *out)
{
	size_t nl = strlen(name);
	const char *p = h, *end = h + n;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			for (;;) {
				const char *e = eol > v && eol[-1] == '\r' ? eol - 1 : eol;
				tbuf_append(out, v, (size_t)(e - v));
				if (eol >= end || (eol[1] != ' ' && eol[1] != '\t'))
					break;
				v = eol + 1;
				eol = memchr(v, '\n', (size_t)(end - v));
				if (eol == NULL)
					eol = end;
			}
			return 1;
		}
		if (eol == p || (eol == p + 1 && p[0] == '\r'))
			break;            /* end of the header section */
		p = eol + 1;
	}
	return 0;
}

static void log_one(imap_session *s, const char *folder_name, const Tern__MessageMeta *m, const uint8_t folder[16])
{
	imap_msg msg = { s->srv->env.st, m, 0, 0 };
	tbuf head = TBUF_INIT, raw = TBUF_INIT, from = TBUF_INIT, subj = TBUF_INIT;
	uint64_t hl = m->header_prefix.len + (m->mime && m->mime->root ? m->mime->root->header_len : 8192);
	char stamp[32], name[256] = "", addr[256] = "";

	(void)folder;
	if (hl > m->size)
		hl = m->size;
	imap_msg_read(&msg, 0, hl, &head);
	if (header_value(head.data ? head.data : "", head.len, "From", &raw)) {
		mime_decode_header(raw.data, raw.len, &from);
		const char *f = tbuf_cstr(&from), *lt = strrchr(f, '<'), *gt = lt ? strchr(lt, '>') : NULL;
		if (lt && gt) {
			size_t nl = (size_t)(lt - f);
			while (nl > 0 && (f[nl - 1] == ' ' || f[nl - 1] == '"'))
				nl--;
			while (nl > 0 && (*f == ' ' || *f == '"'))
				f++, nl--;
			snprintf(name, sizeof(name), "%.*s", (int)nl, f);
			snprintf(addr, sizeof(addr), "%.*s", (int)(gt - lt - 1), lt + 1);
		} else {
			snprintf(addr, sizeof(addr), "%s", f);
		}
	}
	tbuf_reset(&raw);
	if (header_value(head.data ? head.data : "", head.len, "Subject", &raw))
		mime_decode_header(raw.data, raw.len, &subj);
	tlog_stamp((long)m->internaldate, stamp);
	size_t sl = strlen(stamp);
	if (sl > 2 && stamp[0] == '[')
		memmove(stamp, stamp + 1, sl), stamp[sl - 2] = '\0';
	tlog(TLOG_OPERATIONS,
	     "{DELETE} Protocol: IMAP, User: %s, IP: %s, Folder: ~%s/%s, From: \"%s\" <%s>, Subject: \"%s\", "
	     "Delivered: %s, Size: %llu",
	     s->account, s->ip, s->account, folder_name, name, addr, tbuf_cstr(&subj), stamp,
	     (unsigned long long)m->size);
	tbuf_free(&head);
	tbuf_free(&raw);
	tbuf_free(&from);
	tbuf_free(&subj);
}

void imap_log_deletes(imap_session *s, const uint8_t folder[16], const char *folder_name, const uint32_t *uids,
		      size_t n)
{
	for (size_t i = 0; i < n; i++) {
		Tern__MessageMeta *m = NULL;
		if (store_msg_get(s->srv->env.st, s->user_id, folder, uids[i], &m) != STORE_OK)
			continue;
		log_one(s, imap_is_inbox(folder_name) ? "Inbox" : folder_name, m, folder);
		store_free_record(m);
	}
}

/* ---- EXPUNGE / CLOSE ---- */

struct deleted_ctx {
	const imap_session *s;
	const uint32_t *only;          /* UID EXPUNGE: the UIDs named (sorted), else NULL */
	size_t nonly;
	uint32_t *uids;
	size_t n;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int collect_deleted(const Tern__MessageMeta *m, void *arg)
{
	struct deleted_ctx *d = arg;

	if (!(m->flags & TERN__FLAG__FLAG_DELETED) || imap_view_msn(d->s, m->uid) == 0)
		return 0;
	if (d->only && !bsearch(&m->uid, d->only, d->nonly, sizeof(uint32_t), cmp_u32))
		return 0;
	uint32_t *v = realloc(d->uids, (d->n + 1) * sizeof(uint32_t));
	if (v == NULL)
		abort();
	d->uids = v;
	d->uids[d->n++] = m->uid;
	return 0;
}

static void expunge_done(imap_session *s, const store_result *res)
{
	int closing = s->cur && strcmp(s->cur->name, "CLOSE") == 0;

	if (closing) {
		imap_enter_state(s, IMAP_ST_AUTH);
		imap_reply(s, "OK", "CLOSE completed");
	} else if (res->rc != STORE_OK) {
		imap_reply(s, "NO", "[SERVERBUG] EXPUNGE failed: %s", store_strerror(res->rc));
	} else {
		if (s->sel)
			s->sel->dirty = 1;
		imap_reply(s, "OK", "EXPUNGE completed");
	}
	imap_async_done(s);
}

/* Expunge the \Deleted messages of the view (only those in `only` when given). */
static int expunge_deleted(imap_session *s, const uint32_t *only, size_t nonly)
{
	struct deleted_ctx d = { s, only, nonly, NULL, 0 };
	imap_sel *sel = s->sel;

	store_msg_scan(s->srv->env.st, s->user_id, sel->folder, 1, collect_deleted, &d);
	if (d.n == 0) {
		free(d.uids);
		return -1;
	}
	imap_log_deletes(s, sel->folder, sel->name, d.uids, d.n);
	s->op = d.uids;
	s->op_free = free;
	store_msg_expunge(s->srv->env.st, s->user_id, sel->folder, d.uids, d.n, imap_store_cb(s, expunge_done), NULL);
	return 0;
}

int imap_cmd_expunge(imap_session *s, const imap_cmd *c)
{
	uint32_t *only = NULL;
	size_t nonly = 0;
	const char *err;

	if (s->uid) {
		if (c->nargs != 1 || imap_view_resolve(s, &c->args[0], 1, &only, &nonly, &err) < 0) {
			imap_reply(s, "BAD", "Syntax: UID EXPUNGE uid-set");
			return IMAP_DONE;
		}
		if (nonly == 0) {
			free(only);
			imap_reply(s, "OK", "EXPUNGE completed");
			return IMAP_DONE;
		}
	}
	int rc = expunge_deleted(s, only, nonly);
	free(only);
	if (rc < 0) {
		imap_reply(s, "OK", "EXPUNGE completed");
		return IMAP_DONE;
	}
	return IMAP_ASYNC;
}

int imap_cmd_close(imap_session *s, const imap_cmd *c)
{
	(void)c;
	if (!s->sel->readonly && expunge_deleted(s, NULL, 0) == 0)
		return IMAP_ASYNC;
	imap_enter_state(s, IMAP_ST_AUTH);
	imap_reply(s, "OK", "CLOSE completed");
	return IMAP_DONE;
}

/* ---- IDLE (RFC 2177) ---- */

int imap_cmd_idle(imap_session *s, const imap_cmd *c)
{
	(void)c;
	if (s->sel != NULL)
		imap_view_sync(s, 1);
	imap_write(s, "+ idling\r\n", 10);
	imap_flush(s);
	s->input = IMAP_IN_IDLE;
	s->busy = 1;
	imap_async_done(s);     /* input goes on as raw lines; the command stays open */
	return IMAP_ASYNC;
}

void imap_idle_wake(imap_session *s)
{
	if (s->input != IMAP_IN_IDLE || s->sel == NULL || s->closed)
		return;
	imap_view_sync(s, 1);
	imap_flush(s);
}

void imap_idle_line(imap_session *s, const char *line, size_t len)
{
	s->input = IMAP_IN_CMD;
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0)
		imap_reply(s, "OK", "IDLE terminated");
	else
		imap_reply(s, "BAD", "Expected DONE");
	s->busy = 1;
	imap_async_done(s);
}
