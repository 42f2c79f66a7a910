/* cmd_copy.c - COPY and MOVE (RFC 6851) with UIDPLUS COPYUID. The store copies in one
 * batch and gives the destination UIDs contiguously from res->uid; it enforces the quota
 * in the same batch (STORE_COPY_QUOTA; a MOVE does not change the usage). The same folder
 * is a valid destination: the copies get new UIDs. */
#include <stdlib.h>
#include <string.h>
#include "imap_int.h"

struct copy_op {
	uint32_t *uids;          /* source UIDs that exist */
	size_t n;
	int move;
};

static void copy_op_free(void *p)
{
	struct copy_op *op = p;
	free(op->uids);
	free(op);
}

/* "1:3,7" from sorted UIDs. */
static void uid_set(const uint32_t *u, size_t n, tbuf *out)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && u[j + 1] == u[j] + 1)
			j++;
		if (i > 0)
			tbuf_append_char(out, ',');
		if (j > i)
			tbuf_appendf(out, "%u:%u", u[i], u[j]);
		else
			tbuf_appendf(out, "%u", u[i]);
		i = j + 1;
	}
}

static void copy_done(imap_session *s, const store_result *res)
{
	struct copy_op *op = s->op;
	const char *name = op->move ? "MOVE" : "COPY";

	if (res->rc == STORE_EQUOTA) {
		imap_reply(s, "NO", "[OVERQUOTA] Quota exceeded");
	} else if (res->rc != STORE_OK) {
		imap_reply(s, "NO", "%s failed: %s", name, store_strerror(res->rc));
	} else {
		tbuf src = TBUF_INIT;
		uid_set(op->uids, op->n, &src);
		if (s->sel)
			s->sel->dirty = 1;
		if (op->move) {
			imap_untagged(s, "OK [COPYUID %u %s %u:%u] Moved", res->uidvalidity, tbuf_cstr(&src), res->uid,
				      res->uid + (uint32_t)op->n - 1);
			imap_reply(s, "OK", "MOVE completed");
		} else {
			imap_reply(s, "OK", "[COPYUID %u %s %u:%u] COPY completed", res->uidvalidity, tbuf_cstr(&src),
				   res->uid, res->uid + (uint32_t)op->n - 1);
		}
		tbuf_free(&src);
	}
	imap_async_done(s);
}

static int copy_common(imap_session *s, const imap_cmd *c, int move)
{
	char name[IMAP_NAME_MAX + 1];
	const char *err = NULL;
	uint32_t *uids = NULL;
	size_t n = 0;
	Tern__Folder *f = NULL;

	if (c->nargs != 2 || imap_arg_mailbox(&c->args[1], name, &err) < 0 ||
	    imap_view_resolve(s, &c->args[0], s->uid, &uids, &n, &err) < 0) {
		imap_reply(s, "BAD", "%s", err ? err : "Syntax: COPY sequence-set mailbox");
		return IMAP_DONE;
	}
	struct copy_op *op = calloc(1, sizeof(*op));
	if (op == NULL)
		abort();
	op->move = move;
	s->op = op;
	s->op_free = copy_op_free;
	if (store_folder_find(s->srv->env.st, s->user_id, name, &f) != STORE_OK) {
		free(uids);
		imap_reply(s, "NO", "[TRYCREATE] Mailbox does not exist");
		return IMAP_DONE;
	}
	for (size_t i = 0; i < n; i++) {
		Tern__MessageMeta *m = NULL;
		if (store_msg_get(s->srv->env.st, s->user_id, s->sel->folder, uids[i], &m) != STORE_OK)
			continue;
		uids[op->n++] = uids[i];
		store_free_record(m);
	}
	op->uids = uids;
	if (op->n == 0) {
		store_free_record(f);
		imap_reply(s, "OK", "%s completed", move ? "MOVE" : "COPY");
		return IMAP_DONE;
	}
	uint8_t to[16];
	memcpy(to, f->id.data, 16);
	store_free_record(f);
	store_msg_copy(s->srv->env.st, s->user_id, s->sel->folder, to, op->uids, op->n,
		       STORE_COPY_QUOTA | (move ? STORE_COPY_MOVE : 0), imap_store_cb(s, copy_done), NULL);
	return IMAP_ASYNC;
}

int imap_cmd_copy(imap_session *s, const imap_cmd *c)
{
	return copy_common(s, c, 0);
}

int imap_cmd_move(imap_session *s, const imap_cmd *c)
{
	return copy_common(s, c, 1);
}
