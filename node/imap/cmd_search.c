/* cmd_search.c - SEARCH and UID SEARCH. The program is parsed on the I/O thread; the
 * matching runs over a copy of the session's view (UIDs, \Recent marks), so that a large
 * search, or one that reads bodies, can run on the cpu pool while the connection waits
 * (imap_offload). The pool thread touches only the search op, never the session. */
#include <stdlib.h>
#include <string.h>
#include "imap_int.h"

struct search_op {
	store *st;
	uint8_t user[16], folder[16];
	imap_search *sp;
	imap_search_ctx ctx;
	uint32_t *uids;          /* the view: message n is uids[n-1] */
	uint8_t *recent;         /* recent[n-1]: \Recent in the session */
	uint32_t n;
	int uid_cmd;
	/* results */
	tbuf out;                /* "* SEARCH ...\r\n" */
	int failed;              /* a message could not be read */
};

static void search_op_free(void *p)
{
	struct search_op *op = p;
	imap_search_free(&op->sp);
	free(op->uids);
	free(op->recent);
	tbuf_free(&op->out);
	free(op);
}

/* Match every message of the copied view; the reply line into op->out. */
static void search_job(void *arg)
{
	struct search_op *op = arg;
	uint64_t top = 0;

	tbuf_append_str(&op->out, "* SEARCH");
	for (uint32_t msn = 1; msn <= op->n; msn++) {
		uint32_t uid = op->uids[msn - 1];
		Tern__MessageMeta *m = NULL;
		if (store_msg_get(op->st, op->user, op->folder, uid, &m) != STORE_OK)
			continue;          /* expunged meanwhile */
		imap_msg msg = { op->st, m, msn, op->recent[msn - 1] };
		int rc = imap_search_match(op->sp, &op->ctx, &msg);
		if (rc == 1) {
			tbuf_appendf(&op->out, " %u", op->uid_cmd ? uid : msn);
			if (m->modseq > top)
				top = m->modseq;
		} else if (rc < 0) {
			op->failed = 1;
		}
		store_free_record(m);
	}
	if (imap_search_uses_modseq(op->sp) && top > 0)
		tbuf_appendf(&op->out, " (MODSEQ %llu)", (unsigned long long)top);
	tbuf_append_str(&op->out, "\r\n");
}

static void search_done(imap_session *s)
{
	struct search_op *op = s->op;

	imap_write(s, op->out.data, op->out.len);
	if (op->failed)
		imap_reply(s, "NO", "SEARCH failed: some messages could not be read");
	else
		imap_reply(s, "OK", "SEARCH completed");
	imap_async_done(s);
}

int imap_cmd_search(imap_session *s, const imap_cmd *c)
{
	imap_search *sp = NULL;
	const char *err = NULL;

	if (c->nargs == 0 || imap_search_parse(c->args, c->nargs, &sp, &err) < 0) {
		/* an unknown charset is NO, not BAD (RFC 3501 §6.4.4) */
		int badcs = err != NULL && strncmp(err, "[BADCHARSET", 11) == 0;
		imap_reply(s, badcs ? "NO" : "BAD", "%s", err ? err : "Syntax: SEARCH keys");
		return IMAP_DONE;
	}
	if (imap_search_uses_modseq(sp))
		s->condstore = 1;
	struct search_op *op = calloc(1, sizeof(*op));
	if (op == NULL)
		abort();
	s->op = op;
	s->op_free = search_op_free;
	op->st = s->srv->env.st;
	memcpy(op->user, s->user_id, 16);
	memcpy(op->folder, s->sel->folder, 16);
	op->sp = sp;
	op->uid_cmd = s->uid;
	op->n = imap_view_count(s);
	op->ctx = (imap_search_ctx){ op->n, op->n ? imap_view_uid(s, op->n) : 0, tern_now() };
	op->uids = malloc(((size_t)op->n + 1) * sizeof(uint32_t));
	op->recent = malloc((size_t)op->n + 1);
	if (op->uids == NULL || op->recent == NULL)
		abort();
	for (uint32_t msn = 1; msn <= op->n; msn++) {
		op->uids[msn - 1] = imap_view_uid(s, msn);
		op->recent[msn - 1] = (uint8_t)imap_view_is_recent(s, op->uids[msn - 1]);
	}
	tbuf_init(&op->out);
	int use_pool = op->n > IMAP_SEARCH_INLINE_MAX || imap_search_reads_body(sp);
	return imap_offload(s, search_job, search_done, use_pool);
}
