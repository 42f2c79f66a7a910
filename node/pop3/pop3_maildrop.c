/* pop3_maildrop.c - the maildrop of a POP3 session: INBOX as a snapshot taken at login
 * (message numbers and sizes fixed for the session), RETR and TOP streamed from the
 * stored bytes (header prefix, then the body blob in chunks) with output back-pressure,
 * and the UPDATE state: the messages marked by DELE are expunged in one batch at QUIT. */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include "pop3_int.h"

typedef struct load_ctx {
	pop3_maildrop *md;
	size_t cap;
	int rc;
} load_ctx;

/* store_msg_scan visitor: one entry per message, in UID order (= message number). */
static int load_one(const Tern__MessageMeta *m, void *arg)
{
	load_ctx *lc = arg;
	pop3_maildrop *md = lc->md;

	if (md->n == lc->cap) {
		size_t cap = lc->cap ? lc->cap * 2 : 64;
		pop3_msg *p = realloc(md->msgs, cap * sizeof(*p));
		if (p == NULL) {
			lc->rc = STORE_EIO;
			return 1;
		}
		md->msgs = p;
		lc->cap = cap;
	}
	md->msgs[md->n++] = (pop3_msg){ .uid = m->uid, .size = m->size };
	md->bytes += m->size;
	return 0;
}

/* The account is resolved again here so that a login by alias or bare name finds the
 * same mailbox as delivery does. */
int pop3_maildrop_load(store *st, const char *account, pop3_maildrop *md)
{
	Tern__User *u = NULL;
	Tern__Folder *f = NULL;
	int rc;

	memset(md, 0, sizeof(*md));
	if ((rc = store_user_find(st, account, &u)) != STORE_OK)
		return rc;
	if (u->id.len != 16) {
		store_free_record(u);
		return STORE_EIO;
	}
	memcpy(md->user, u->id.data, 16);
	store_free_record(u);
	if ((rc = store_folder_find(st, md->user, "INBOX", &f)) != STORE_OK)
		return rc;
	if (f->id.len != 16) {
		store_free_record(f);
		return STORE_EIO;
	}
	memcpy(md->folder, f->id.data, 16);
	md->uidvalidity = f->uidvalidity;
	store_free_record(f);
	load_ctx lc = { md, 0, STORE_OK };
	rc = store_msg_scan(st, md->user, md->folder, 1, load_one, &lc);
	if (rc == STORE_OK)
		rc = lc.rc;
	if (rc != STORE_OK)
		pop3_maildrop_clear(md);
	return rc;
}

/* Forget the snapshot (the store is untouched). */
void pop3_maildrop_clear(pop3_maildrop *md)
{
	free(md->msgs);
	memset(md, 0, sizeof(*md));
}

/* Message numbers are 1-based and fixed for the session. */
pop3_msg *pop3_maildrop_msg(pop3_maildrop *md, uint32_t n)
{
	return n >= 1 && n <= md->n ? &md->msgs[n - 1] : NULL;
}

/* Mark (idempotent); STAT's octets follow. */
void pop3_maildrop_delete(pop3_maildrop *md, pop3_msg *m)
{
	if (m->deleted)
		return;
	m->deleted = 1;
	md->ndeleted++;
	md->bytes -= m->size;
}

/* RSET: unmark everything. */
void pop3_maildrop_reset(pop3_maildrop *md)
{
	for (size_t i = 0; i < md->n; i++)
		if (md->msgs[i].deleted) {
			md->msgs[i].deleted = 0;
			md->bytes += md->msgs[i].size;
		}
	md->ndeleted = 0;
}

/* The batch QUIT hands to store_msg_expunge. */
uint32_t *pop3_maildrop_deleted(const pop3_maildrop *md, size_t *n_r)
{
	uint32_t *uids = md->ndeleted ? malloc(md->ndeleted * sizeof(*uids)) : NULL;
	size_t k = 0;

	if (uids != NULL)
		for (size_t i = 0; i < md->n; i++)
			if (md->msgs[i].deleted)
				uids[k++] = md->msgs[i].uid;
	*n_r = k;
	return uids;
}

/* ---- streaming one message ---- */

/* The record is read now, not at login: a message expunged meanwhile is detected here. */
int pop3_sender_open(pop3_sender *sd, store *st, const pop3_maildrop *md, const pop3_msg *m,
		     int top, uint64_t lines)
{
	memset(sd, 0, sizeof(*sd));
	int rc = store_msg_get(st, md->user, md->folder, m->uid, &sd->meta);
	if (rc != STORE_OK)
		return rc;
	if (sd->meta->blob_size > 0 && sd->meta->blob.len != 32) {
		pop3_sender_close(sd);
		return STORE_EIO;
	}
	pop3_stuff_init(&sd->stuff, top, lines);
	return STORE_OK;
}

/* The header prefix in one piece (it is small and already in the record), then the
 * body in POP3_CHUNK reads. */
int pop3_sender_next(pop3_sender *sd, store *st, tbuf *out)
{
	const Tern__MessageMeta *m = sd->meta;
	uint64_t plen = m->header_prefix.len, total = plen + m->blob_size;

	if (!sd->stuff.done && sd->off < plen) {
		pop3_stuff(&sd->stuff, (const char *)m->header_prefix.data + sd->off, plen - sd->off, out);
		sd->off = plen;
		if (sd->off < total && !sd->stuff.done)
			return 0;
	} else if (!sd->stuff.done && sd->off < total) {
		uint64_t boff = sd->off - plen, want = total - sd->off;
		if (want > POP3_CHUNK)
			want = POP3_CHUNK;
		tbuf_reset(&sd->chunk);
		if (store_blob_read(st, m->blob.data, boff, want, &sd->chunk) != STORE_OK ||
		    sd->chunk.len == 0)
			return -1;
		size_t got = sd->chunk.len < want ? sd->chunk.len : (size_t)want;
		pop3_stuff(&sd->stuff, sd->chunk.data, got, out);
		sd->off += got;
		if (sd->off < total && !sd->stuff.done)
			return 0;
	}
	pop3_stuff_end(&sd->stuff, out);
	return 1;
}

/* Release the record and the chunk buffer. */
void pop3_sender_close(pop3_sender *sd)
{
	if (sd->meta != NULL)
		tern__message_meta__free_unpacked(sd->meta, NULL);
	sd->meta = NULL;
	tbuf_free(&sd->chunk);
}

/* End streaming (done, failed or the peer left): the timer goes with it. */
void pop3_send_stop(pop3_session *s)
{
	if (s->tick != NULL) {
		event_free(s->tick);
		s->tick = NULL;
	}
	if (s->sending)
		pop3_sender_close(&s->sender);
	s->sending = 0;
}

static void send_tick(evutil_socket_t fd, short what, void *arg);

/* Write pieces while the peer keeps up; when too much output waits, look again a
 * moment later (the connection has no "drained" callback for sessions), less and less
 * often while nothing moves, and give up on a peer that stopped reading. */
static void send_pump(pop3_session *s)
{
	pop3_server *srv = s->srv;
	tbuf out = TBUF_INIT;
	int rc = 0, wrote = 0;

	if (s->closed) {
		pop3_send_stop(s);
		pop3_async_done(s);
		return;
	}
	while (rc == 0 && tern_conn_output_pending(s->conn) < POP3_OUTPUT_HIGH) {
		rc = pop3_sender_next(&s->sender, srv->env.st, &out);
		tern_conn_write(s->conn, out.data, out.len);
		tbuf_reset(&out);
		wrote = 1;
	}
	tbuf_free(&out);
	int64_t now = tern_mono_ms();
	if (wrote || s->send_wait_us == 0) {
		s->send_progress_ms = now;
		s->send_wait_us = 2000;
	} else if (s->send_wait_us < 100000) {
		s->send_wait_us *= 2;
	}
	if (rc == 0 && now - s->send_progress_ms > srv->env.conf->pop3_timeout * 1000) {
		tlog(TLOG_DEBUG, "POP3: %s stopped reading a message, closing", s->ip);
		pop3_close(s, NULL);
		rc = 2;
	} else if (rc == 0) {
		struct timeval tv = { 0, (suseconds_t)s->send_wait_us };
		if (s->tick == NULL)
			s->tick = event_new(tern_io_base(s->io), -1, 0, send_tick, s);
		if (s->tick != NULL && event_add(s->tick, &tv) == 0)
			return;
		rc = -1;
	}
	if (rc < 0) {
		/* Nothing can be said in the middle of a multi-line response: cut the line. */
		tlog(TLOG_ERROR, "POP3: cannot read message UID %u of %s", s->sender.meta->uid, s->account);
		pop3_close(s, NULL);
	} else if (rc == 1 && !s->sender.stuff.top) {
		pop3_server_count(srv, &srv->stats.retrieved, 1);
	}
	pop3_send_stop(s);
	pop3_async_done(s);
}

/* The back-pressure timer fired: try again. */
static void send_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	send_pump(arg);
}

/* Start sending message n; the +OK line goes first. */
static int send_start(pop3_session *s, uint32_t n, int top, uint64_t lines)
{
	pop3_msg *m = pop3_maildrop_msg(&s->md, n);

	if (m == NULL) {
		pop3_reply(s, "-ERR No such message");
		return -1;
	}
	if (m->deleted) {
		pop3_reply(s, "-ERR Message %u already deleted", n);
		return -1;
	}
	int rc = pop3_sender_open(&s->sender, s->srv->env.st, &s->md, m, top, lines);
	if (rc == STORE_ENOTFOUND) {
		pop3_reply(s, "-ERR Message %u no longer exists", n);
		return -1;
	}
	if (rc != STORE_OK) {
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot read message %u", n);
		return -1;
	}
	s->sending = 1;
	s->send_wait_us = 0;
	if (top)
		pop3_reply(s, "+OK Top of message follows");
	else
		pop3_reply(s, "+OK %llu octets", (unsigned long long)m->size);
	pop3_async_begin(s);
	send_pump(s);
	return 0;
}

/* RETR: the whole message; TOP: its header and the first lines of the body. */
int pop3_cmd_retr(pop3_session *s, pop3_cmd *cmd)
{
	return send_start(s, cmd->num[0], 0, 0);
}

int pop3_cmd_top(pop3_session *s, pop3_cmd *cmd)
{
	return send_start(s, cmd->num[0], 1, cmd->num[1]);
}

/* ---- UPDATE ---- */

/* The expunge batch is durable (or failed): answer and close. */
static void update_done(const store_result *res, void *arg)
{
	pop3_session *s = arg;
	pop3_server *srv = s->srv;

	if (res->rc == STORE_OK) {
		pop3_server_count(srv, &srv->stats.deleted, s->md.ndeleted);
		pop3_reply(s, "+OK %s POP3 server signing off (%zu messages deleted)", srv->hostname,
			   s->md.ndeleted);
	} else {
		tlog(TLOG_ERROR, "POP3: deleting messages of %s failed: %s", s->account,
		     res->error ? res->error : store_strerror(res->rc));
		pop3_reply(s, "-ERR [SYS/TEMP] Some deleted messages were not removed");
	}
	if (s->locked) {
		pop3_server_unlock_user(srv, s->md.user);
		s->locked = 0;
	}
	pop3_close(s, NULL);
	pop3_async_done(s);
}

/* RFC 1939 6: QUIT in TRANSACTION removes the marked messages; +OK only once that is
 * durable. Messages already expunged by another client are skipped by the store. */
int pop3_update(pop3_session *s)
{
	size_t n = 0;
	uint32_t *uids = pop3_maildrop_deleted(&s->md, &n);

	pop3_enter_state(s, POP3_ST_UPDATE);
	pop3_async_begin(s);
	if (n == 0) {
		store_result ok = { .rc = STORE_OK };
		update_done(&ok, s);
		return 0;
	}
	store_cb cb = { update_done, s, s->io };
	store_msg_expunge(s->srv->env.st, s->md.user, s->md.folder, uids, n, cb, NULL);
	free(uids);
	return 0;
}
