/* imap_search_match.c - matching a parsed SEARCH program against one message. What a
 * key needs is loaded on first use and kept for the rest of the program: the MIME
 * record, the header section, its decoded text, the decoded body text (text parts
 * only, bounded per part and per message) and the date of the Date: header. */
#include <ctype.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "imap_msg_int.h"

typedef struct mctx {
	const imap_msg *m;
	const imap_search_ctx *ctx;
	const Tern__MimeInfo *mi;
	Tern__MimeInfo *owned;
	int mi_loaded, hdr_loaded, hdr_text_loaded, body_loaded, sent_loaded;
	tbuf hdr;               /* header section as stored (with the header prefix) */
	tbuf hdr_text;          /* "name: value\n" per field, decoded and casefolded */
	tbuf body;              /* decoded, casefolded text of the text parts */
	int64_t sent_day;
} mctx;

/* Append s (any bytes) casefolded, invalid UTF-8 replaced first. */
static void append_folded(const char *s, size_t n, tbuf *out)
{
	gchar *valid = g_utf8_make_valid(s, (gssize)n);
	gchar *f = g_utf8_casefold(valid, -1);

	tbuf_append_str(out, f);
	g_free(f);
	g_free(valid);
}

/* A field value unfolded, its encoded words decoded, casefolded. */
static void field_text(const imap_hdr_field *f, tbuf *out)
{
	tbuf unf = TBUF_INIT, dec = TBUF_INIT;
	size_t i = 0;

	while (i < f->value_len && (f->value[i] == ' ' || f->value[i] == '\t'))
		i++;
	for (; i < f->value_len; i++)
		if (f->value[i] != '\r' && f->value[i] != '\n' && f->value[i] != '\0')
			tbuf_append_char(&unf, f->value[i]);
	mime_decode_header(tbuf_cstr(&unf), unf.len, &dec);
	append_folded(tbuf_cstr(&dec), dec.len, out);
	tbuf_free(&unf);
	tbuf_free(&dec);
}

static int load_mime(mctx *c)
{
	int rc = 0;

	if (!c->mi_loaded) {
		c->mi = imap_msg_mime(c->m, &c->owned, &rc);
		if (c->mi == NULL)
			return rc;
		c->mi_loaded = 1;
	}
	return 0;
}

static int load_header(mctx *c)
{
	if (c->hdr_loaded)
		return 0;
	int rc = load_mime(c);
	if (rc != 0)
		return rc;
	const Tern__MimePart *root = c->mi->root;
	uint64_t len = c->m->meta->header_prefix.len + (root ? root->header_off + root->header_len : 0);
	if (len > IMAP_MSG_HEADER_MAX)
		len = IMAP_MSG_HEADER_MAX;
	rc = imap_msg_read(c->m, 0, len, &c->hdr);
	if (rc == 0)
		c->hdr_loaded = 1;
	return rc;
}

/* Every field of a header section as "name: value\n", decoded and casefolded. */
static void header_text(const char *hdr, size_t len, tbuf *out)
{
	imap_hdr_iter it;
	imap_hdr_field f;

	imap_hdr_iter_init(&it, hdr, len);
	while (imap_hdr_next(&it, &f)) {
		append_folded(f.name, f.name_len, out);
		tbuf_append_str(out, ": ");
		field_text(&f, out);
		tbuf_append_char(out, '\n');
	}
}

static int text_part(mctx *c, const Tern__MimePart *p)
{
	uint64_t plen = c->m->meta->header_prefix.len;
	tbuf hdr = TBUF_INIT, raw = TBUF_INIT, dec = TBUF_INIT;
	char charset[64];
	int rc;

	rc = imap_msg_read(c->m, plen + p->header_off,
			   p->header_len < SEARCH_PART_HEADER_MAX ? p->header_len : SEARCH_PART_HEADER_MAX, &hdr);
	if (rc == 0)
		rc = imap_msg_read(c->m, plen + p->body_off,
				   p->body_len < SEARCH_PART_RAW_MAX ? p->body_len : SEARCH_PART_RAW_MAX, &raw);
	if (rc == 0) {
		imap_hdr_param(tbuf_cstr(&hdr), hdr.len, "Content-Type", "charset", charset, sizeof(charset));
		if (mime_decode_text(p, tbuf_cstr(&raw), raw.len, charset[0] ? charset : NULL,
				     SEARCH_TEXT_MAX - c->body.len, &dec) == 0) {
			append_folded(tbuf_cstr(&dec), dec.len, &c->body);
			tbuf_append_char(&c->body, '\n');
		}
	}
	tbuf_free(&hdr);
	tbuf_free(&raw);
	tbuf_free(&dec);
	return rc;
}

/* The text parts under p, depth first; an attached message adds its header fields. */
static int walk_body(mctx *c, const Tern__MimePart *p)
{
	if (c->body.len >= SEARCH_TEXT_MAX)
		return 0;
	if (p->message != NULL) {
		const Tern__MimePart *msg = p->message;
		tbuf hdr = TBUF_INIT;
		uint64_t len = msg->header_len < IMAP_MSG_HEADER_MAX ? msg->header_len : IMAP_MSG_HEADER_MAX;
		int rc = imap_msg_read(c->m, c->m->meta->header_prefix.len + msg->header_off, len, &hdr);
		if (rc == 0)
			header_text(tbuf_cstr(&hdr), hdr.len, &c->body);
		tbuf_free(&hdr);
		return rc != 0 ? rc : walk_body(c, msg);
	}
	for (size_t i = 0; i < p->n_parts; i++) {
		int rc = walk_body(c, p->parts[i]);
		if (rc != 0)
			return rc;
	}
	if (p->n_parts == 0 && p->type != NULL && strcmp(p->type, "text") == 0)
		return text_part(c, p);
	return 0;
}

static int load_body(mctx *c)
{
	if (c->body_loaded)
		return 0;
	int rc = load_mime(c);
	if (rc == 0 && c->mi->root != NULL)
		rc = walk_body(c, c->mi->root);
	if (rc == 0)
		c->body_loaded = 1;
	return rc;
}

/* The day of a Date: value ("Tue, 1 Feb 1994 21:52:25 -0800"), time and zone ignored
 * as RFC 3501 asks; -1 when it cannot be read. */
static int date_header_day(const char *v, size_t n, int64_t *day_r)
{
	char buf[128];
	char *tok[4], *save = NULL;
	int nt = 0;

	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, v, n);
	buf[n] = '\0';
	for (char *t = strtok_r(buf, " \t\r\n,", &save); t && nt < 4; t = strtok_r(NULL, " \t\r\n,", &save)) {
		if (nt == 0 && isalpha((unsigned char)t[0]))
			continue;       /* day of week */
		tok[nt++] = t;
	}
	if (nt < 3 || strlen(tok[0]) > 2 || strlen(tok[1]) < 3 || strlen(tok[2]) < 2 || strlen(tok[2]) > 4)
		return -1;
	int d = atoi(tok[0]), m = imap_search_month(tok[1]);
	char *end;
	long y = strtol(tok[2], &end, 10);
	if (*end != '\0' || d < 1 || d > 31 || m == 0)
		return -1;
	if (strlen(tok[2]) <= 2)
		y += y < 50 ? 2000 : 1900;
	else if (strlen(tok[2]) == 3)
		y += 1900;
	*day_r = imap_search_civil_days(y, (unsigned)m, (unsigned)d);
	return 0;
}

static int64_t internal_day(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL)
		return t / 86400;
	return imap_search_civil_days(tm.tm_year + 1900, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday);
}

/* The sent date; a message without a readable Date: falls back to its INTERNALDATE. */
static int load_sent(mctx *c)
{
	if (c->sent_loaded)
		return 0;
	int rc = load_header(c);
	if (rc != 0)
		return rc;
	imap_hdr_iter it;
	imap_hdr_field f;
	int found = 0;
	imap_hdr_iter_init(&it, tbuf_cstr(&c->hdr), c->hdr.len);
	while (!found && imap_hdr_next(&it, &f))
		if (f.name_len == 4 && strncasecmp(f.name, "Date", 4) == 0)
			found = date_header_day(f.value, f.value_len, &c->sent_day) == 0;
	if (!found)
		c->sent_day = internal_day((int64_t)c->m->meta->internaldate);
	c->sent_loaded = 1;
	return 0;
}

static int header_match(mctx *c, const snode *n)
{
	int rc = load_header(c);
	if (rc != 0)
		return rc;
	imap_hdr_iter it;
	imap_hdr_field f;
	size_t flen = strlen(n->field);
	imap_hdr_iter_init(&it, tbuf_cstr(&c->hdr), c->hdr.len);
	while (imap_hdr_next(&it, &f)) {
		if (f.name_len != flen || strncasecmp(f.name, n->field, flen) != 0)
			continue;
		if (n->needle_len == 0)
			return 1;
		tbuf t = TBUF_INIT;
		field_text(&f, &t);
		int hit = memmem(tbuf_cstr(&t), t.len, n->needle, n->needle_len) != NULL;
		tbuf_free(&t);
		if (hit)
			return 1;
	}
	return 0;
}

static int contains_text(const tbuf *t, const snode *n)
{
	return n->needle_len == 0 || memmem(tbuf_cstr(t), t->len, n->needle, n->needle_len) != NULL;
}

static int seq_match(const snode *n, uint32_t v, uint32_t max)
{
	seq_cache *sc = n->cache;

	if (!sc->valid || sc->max != max) {
		imap_seqset_free(&sc->resolved);
		sc->resolved.r = malloc((n->set.n ? n->set.n : 1) * sizeof(*n->set.r));
		if (sc->resolved.r == NULL)
			return STORE_EIO;
		memcpy(sc->resolved.r, n->set.r, n->set.n * sizeof(*n->set.r));
		sc->resolved.n = n->set.n;
		imap_seqset_resolve(&sc->resolved, max);
		sc->max = max;
		sc->valid = 1;
	}
	return imap_seqset_contains(&sc->resolved, v);
}

static int has_keyword(const Tern__MessageMeta *meta, const char *kw)
{
	for (size_t i = 0; i < meta->n_keywords; i++)
		if (strcasecmp(meta->keywords[i], kw) == 0)
			return 1;
	return 0;
}

static int eval(const snode *n, mctx *c)
{
	const Tern__MessageMeta *meta = c->m->meta;
	int64_t now = c->ctx->now ? c->ctx->now : (int64_t)time(NULL);
	int rc;

	switch (n->kind) {
	case SK_ALL:
		return 1;
	case SK_AND:
		for (size_t i = 0; i < n->nkids; i++)
			if ((rc = eval(n->kids[i], c)) <= 0)
				return rc;
		return 1;
	case SK_OR:
		rc = eval(n->kids[0], c);
		return rc != 0 ? rc : eval(n->kids[1], c);
	case SK_NOT:
		rc = eval(n->kids[0], c);
		return rc < 0 ? rc : !rc;
	case SK_FLAG_SET:
		return (meta->flags & n->flag) != 0;
	case SK_FLAG_UNSET:
		return (meta->flags & n->flag) == 0;
	case SK_KEYWORD:
		return has_keyword(meta, n->field);
	case SK_UNKEYWORD:
		return !has_keyword(meta, n->field);
	case SK_RECENT:
		return c->m->recent != 0;
	case SK_NEW:
		return c->m->recent && !(meta->flags & TERN__FLAG__FLAG_SEEN);
	case SK_OLD:
		return !c->m->recent;
	case SK_BEFORE:
		return internal_day((int64_t)meta->internaldate) < n->num;
	case SK_ON:
		return internal_day((int64_t)meta->internaldate) == n->num;
	case SK_SINCE:
		return internal_day((int64_t)meta->internaldate) >= n->num;
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE:
		if ((rc = load_sent(c)) != 0)
			return rc;
		return n->kind == SK_SENTBEFORE ? c->sent_day < n->num
		       : n->kind == SK_SENTON ? c->sent_day == n->num : c->sent_day >= n->num;
	case SK_LARGER:
		return meta->size > (uint64_t)n->num;
	case SK_SMALLER:
		return meta->size < (uint64_t)n->num;
	case SK_HEADER:
		return header_match(c, n);
	case SK_TEXT:
		if ((rc = load_header(c)) != 0)
			return rc;
		if (!c->hdr_text_loaded) {
			header_text(tbuf_cstr(&c->hdr), c->hdr.len, &c->hdr_text);
			c->hdr_text_loaded = 1;
		}
		if (contains_text(&c->hdr_text, n))
			return 1;
		/* fall through */
	case SK_BODY:
		if ((rc = load_body(c)) != 0)
			return rc;
		return contains_text(&c->body, n);
	case SK_SEQ:
		return seq_match(n, c->m->msn, c->ctx->max_msn);
	case SK_UID:
		return seq_match(n, meta->uid, c->ctx->max_uid);
	case SK_MODSEQ:
		return meta->modseq >= (uint64_t)n->num;
	case SK_OLDER:
		return (int64_t)meta->internaldate <= now - n->num;
	case SK_YOUNGER:
		return (int64_t)meta->internaldate >= now - n->num;
	}
	return 0;
}

int imap_search_node_match(const snode *root, const imap_search_ctx *ctx, const imap_msg *m)
{
	mctx c;

	memset(&c, 0, sizeof(c));
	c.m = m;
	c.ctx = ctx;
	int rc = eval(root, &c);
	mime_info_free(&c.owned);
	tbuf_free(&c.hdr);
	tbuf_free(&c.hdr_text);
	tbuf_free(&c.body);
	return rc;
}

int imap_search_match(const imap_search *s, const imap_search_ctx *ctx, const imap_msg *m)
{
	return imap_search_node_match(s->root, ctx, m);
}
