/* cmd_fetch.c - FETCH and STORE (and their UID forms) over the session's view,
 * calling the message engines of imap_msg.h for one message at a time. A FETCH of a body
 * without .PEEK first sets \Seen (one durable write), then renders. None of these sends
 * an untagged EXPUNGE (the command table's IMAP_F_NOEXPUNGE). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "imap_int.h"

/* ---- FETCH ---- */

struct fetch_op {
	imap_fetch *f;
	uint32_t *uids;
	size_t n;
	uint32_t *seen;          /* UIDs that got \Seen by this FETCH (sorted) */
	size_t nseen;
};

static void fetch_op_free(void *p)
{
	struct fetch_op *op = p;
	imap_fetch_free(&op->f);
	free(op->uids);
	free(op->seen);
	free(op);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void fetch_render_all(imap_session *s)
{
	struct fetch_op *op = s->op;
	uint64_t since = imap_fetch_changedsince(op->f);
	int with_modseq = s->condstore || imap_fetch_wants_modseq(op->f);
	tbuf b = TBUF_INIT;
	int failed = 0, unknown_cte = 0;

	if (imap_fetch_wants_modseq(op->f))
		s->condstore = 1;
	for (size_t i = 0; i < op->n; i++) {
		Tern__MessageMeta *m = NULL;
		if (store_msg_get(s->srv->env.st, s->user_id, s->sel->folder, op->uids[i], &m) != STORE_OK)
			continue;        /* expunged meanwhile: nothing to say about it */
		if (since == 0 || m->modseq > since) {
			imap_msg msg = { s->srv->env.st, m, imap_view_msn(s, op->uids[i]),
					 imap_view_is_recent(s, op->uids[i]) };
			int force = op->nseen && bsearch(&op->uids[i], op->seen, op->nseen, sizeof(uint32_t), cmp_u32);
			tbuf_reset(&b);
			int rc = imap_fetch_render(op->f, &msg, force, with_modseq, &b);
			if (rc == 0)
				imap_write(s, b.data, b.len);
			else if (rc == IMAP_FETCH_EUNKNOWN_CTE)
				unknown_cte = 1;
			else
				failed = 1;
		}
		store_free_record(m);
	}
	tbuf_free(&b);
	if (unknown_cte)   /* RFC 3516: BINARY of a part whose encoding we cannot undo */
		imap_reply(s, "NO", "[UNKNOWN-CTE] Cannot decode the content transfer encoding");
	else if (failed)
		imap_reply(s, "NO", "Some messages could not be read");
	else
		imap_reply(s, "OK", "FETCH completed");
}

static void fetch_seen_done(imap_session *s, const store_result *res)
{
	if (res->rc != STORE_OK) {
		struct fetch_op *op = s->op;
		op->nseen = 0;
	} else if (s->sel != NULL) {
		s->sel->dirty = 1;
	}
	fetch_render_all(s);
	imap_async_done(s);
}

int imap_cmd_fetch(imap_session *s, const imap_cmd *c)
{
	const char *err = NULL;
	struct fetch_op *op;

	if (c->nargs < 2 || c->nargs > 3 || (c->nargs == 3 && c->args[2].type != IMAP_ARG_LIST)) {
		imap_reply(s, "BAD", "Syntax: FETCH sequence-set attributes [(modifiers)]");
		return IMAP_DONE;
	}
	op = calloc(1, sizeof(*op));
	if (op == NULL)
		abort();
	s->op = op;
	s->op_free = fetch_op_free;
	if (imap_view_resolve(s, &c->args[0], s->uid, &op->uids, &op->n, &err) < 0 ||
	    imap_fetch_parse(&c->args[1], c->nargs == 3 ? &c->args[2] : NULL, s->uid, &op->f, &err) < 0) {
		imap_reply(s, "BAD", "%s", err ? err : "Invalid FETCH");
		return IMAP_DONE;
	}
	if (imap_fetch_sets_seen(op->f) && !s->sel->readonly) {
		for (size_t i = 0; i < op->n; i++) {
			Tern__MessageMeta *m = NULL;
			if (store_msg_get(s->srv->env.st, s->user_id, s->sel->folder, op->uids[i], &m) != STORE_OK)
				continue;
			if (!(m->flags & TERN__FLAG__FLAG_SEEN)) {
				uint32_t *v = realloc(op->seen, (op->nseen + 1) * sizeof(uint32_t));
				if (v == NULL)
					abort();
				op->seen = v;
				op->seen[op->nseen++] = m->uid;
			}
			store_free_record(m);
		}
		if (op->nseen > 0) {
			store_msg_set_flags(s->srv->env.st, s->user_id, s->sel->folder, op->seen, op->nseen,
					    STORE_FLAGS_ADD, TERN__FLAG__FLAG_SEEN, NULL, 0, 0,
					    imap_store_cb(s, fetch_seen_done), NULL);
			return IMAP_ASYNC;
		}
	}
	fetch_render_all(s);
	return IMAP_DONE;
}

/* ---- STORE ---- */

struct store_op {
	uint32_t *uids;
	size_t n;
	uint32_t *modified;      /* UNCHANGEDSINCE failures */
	size_t nmod;
	int silent;
	uint64_t before;         /* the folder's highest modseq before the write */
	const char **keywords;
};

static void store_op_free(void *p)
{
	struct store_op *op = p;
	free(op->uids);
	free(op->modified);
	free(op->keywords);
	free(op);
}

static void store_done(imap_session *s, const store_result *res)
{
	struct store_op *op = s->op;
	tbuf b = TBUF_INIT;
	size_t mine = 0;

	if (res->rc != STORE_OK) {
		imap_reply(s, "NO", "[SERVERBUG] STORE failed: %s", store_strerror(res->rc));
		imap_async_done(s);
		return;
	}
	imap_view_announce_keywords(s);   /* a new keyword: FLAGS before the FETCH replies */
	for (size_t i = 0; i < op->n; i++) {
		Tern__MessageMeta *m = NULL;
		if (store_msg_get(s->srv->env.st, s->user_id, s->sel->folder, op->uids[i], &m) != STORE_OK)
			continue;
		if (m->modseq > op->before && m->modseq <= res->modseq)
			mine++;
		if (!op->silent) {
			tbuf_reset(&b);
			tbuf_appendf(&b, "* %u FETCH (FLAGS ", imap_view_msn(s, m->uid));
			imap_flags_render(m->flags, m->keywords, m->n_keywords, imap_view_is_recent(s, m->uid), &b);
			if (s->uid)
				tbuf_appendf(&b, " UID %u", m->uid);
			if (s->condstore)
				tbuf_appendf(&b, " MODSEQ (%llu)", (unsigned long long)m->modseq);
			tbuf_append_str(&b, ")\r\n");
			imap_write(s, b.data, b.len);
		}
		store_free_record(m);
	}
	tbuf_free(&b);
	if (mine > 0)
		imap_view_own_change(s, res->modseq - mine + 1, res->modseq);
	s->sel->dirty = 1;
	if (op->nmod > 0) {
		tbuf set = TBUF_INIT;
		for (size_t i = 0; i < op->nmod; i++)
			tbuf_appendf(&set, "%s%u", i ? "," : "",
				     s->uid ? op->modified[i] : imap_view_msn(s, op->modified[i]));
		imap_reply(s, "OK", "[MODIFIED %s] Conditional STORE failed", tbuf_cstr(&set));
		tbuf_free(&set);
	} else {
		imap_reply(s, "OK", "STORE completed");
	}
	imap_async_done(s);
}

int imap_cmd_store(imap_session *s, const imap_cmd *c)
{
	const char *err = NULL;
	size_t i = 1;
	uint64_t unchanged = 0;
	uint32_t flags = 0;
	size_t nkw = 0;

	if (c->nargs < 3) {
		imap_reply(s, "BAD", "Syntax: STORE sequence-set [(UNCHANGEDSINCE n)] item flags");
		return IMAP_DONE;
	}
	if (c->args[1].type == IMAP_ARG_LIST) {
		const imap_arg *m = &c->args[1];
		if (m->nlist != 2 || !imap_arg_is_atom(&m->list[0], "UNCHANGEDSINCE") ||
		    m->list[1].type != IMAP_ARG_ATOM || (unchanged = strtoull(m->list[1].str, NULL, 10)) == 0) {
			imap_reply(s, "BAD", "Invalid STORE modifier");
			return IMAP_DONE;
		}
		s->condstore = 1;
		i++;
	}
	const imap_arg *item = &c->args[i];
	if (item->type != IMAP_ARG_ATOM || i + 1 >= c->nargs) {
		imap_reply(s, "BAD", "Syntax: STORE sequence-set item flags");
		return IMAP_DONE;
	}
	const char *it = item->str;
	store_flags_op fop = STORE_FLAGS_SET;
	if (*it == '+' || *it == '-')
		fop = *it++ == '+' ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE;
	int silent = 0;
	if (strcasecmp(it, "FLAGS.SILENT") == 0)
		silent = 1;
	else if (strcasecmp(it, "FLAGS") != 0) {
		imap_reply(s, "BAD", "Unknown STORE item");
		return IMAP_DONE;
	}
	struct store_op *op = calloc(1, sizeof(*op));
	if (op == NULL)
		abort();
	op->silent = silent;
	s->op = op;
	s->op_free = store_op_free;
	/* "+FLAGS \Seen \Deleted" without parentheses: the rest as one list */
	imap_arg list = { .type = IMAP_ARG_LIST, .list = &c->args[i + 1], .nlist = c->nargs - i - 1 };
	const imap_arg *fl = c->nargs - i - 1 == 1 ? &c->args[i + 1] : &list;
	if (imap_flags_parse(fl, &flags, &op->keywords, &nkw, &err) < 0 ||
	    imap_view_resolve(s, &c->args[0], s->uid, &op->uids, &op->n, &err) < 0) {
		imap_reply(s, "BAD", "%s", err ? err : "Invalid STORE");
		return IMAP_DONE;
	}
	if (op->n == 0) {
		imap_reply(s, "OK", "STORE completed");
		return IMAP_DONE;
	}
	Tern__Folder *f = NULL;
	if (store_folder_get(s->srv->env.st, s->user_id, s->sel->folder, &f) == STORE_OK) {
		op->before = f->highestmodseq;
		store_free_record(f);
	}
	if (unchanged) {
		for (size_t k = 0; k < op->n; k++) {
			Tern__MessageMeta *m = NULL;
			if (store_msg_get(s->srv->env.st, s->user_id, s->sel->folder, op->uids[k], &m) != STORE_OK)
				continue;
			if (m->modseq > unchanged) {
				uint32_t *v = realloc(op->modified, (op->nmod + 1) * sizeof(uint32_t));
				if (v == NULL)
					abort();
				op->modified = v;
				op->modified[op->nmod++] = m->uid;
			}
			store_free_record(m);
		}
	}
	store_msg_set_flags(s->srv->env.st, s->user_id, s->sel->folder, op->uids, op->n, fop, flags,
			    (const char *const *)op->keywords, nkw, unchanged, imap_store_cb(s, store_done), NULL);
	return IMAP_ASYNC;
}
