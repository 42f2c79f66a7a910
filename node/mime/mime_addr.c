/* mime_addr.c - RFC 5322 address lists into IMAP ENVELOPE addresses, and the ENVELOPE
 * itself (RFC 3501 §7.4.2). Names stay raw (encoded words are not decoded; quoted
 * strings are unquoted), a comment names an address that has no phrase, groups become
 * (NIL NIL "name" NIL) ... (NIL NIL NIL NIL). Broken addresses are described as Dovecot
 * does: a missing part becomes "MISSING_MAILBOX" or "MISSING_DOMAIN". */
#include <string.h>
#include "mime_int.h"

#define MA_ADDRS_MAX 1000        /* addresses rendered per list */

typedef struct ma_ctx {
	const char *p, *end;
	tbuf comment;                /* text of the last comment seen */
	tbuf *out;
	size_t n;                    /* addresses written */
} ma_ctx;

/* atext of RFC 5322 plus 8-bit bytes (tolerated in names). */
static int ma_atext(unsigned char c)
{
	return c >= 0x80 || (c > ' ' && c != 0x7f && strchr("()<>[]:;@\\,.\"", c) == NULL);
}

/* Skip white space and comments; the last comment's text is kept. */
static void ma_cfws(ma_ctx *m)
{
	while (m->p < m->end) {
		if (*m->p == ' ' || *m->p == '\t' || *m->p == '\r' || *m->p == '\n') {
			m->p++;
			continue;
		}
		if (*m->p != '(')
			return;
		int depth = 0;
		tbuf_reset(&m->comment);
		for (; m->p < m->end; m->p++) {
			if (*m->p == '\\' && m->p + 1 < m->end) {
				m->p++;
			} else if (*m->p == '(') {
				if (depth++ == 0)
					continue;
			} else if (*m->p == ')' && --depth == 0) {
				m->p++;
				break;
			}
			tbuf_append_char(&m->comment, *m->p);
		}
	}
}

/* One word (atom or quoted string, unquoted) appended to out; 0 when none. raw keeps
 * the quotes (a quoted local part must stay quoted to be an address). */
static int ma_word(ma_ctx *m, tbuf *out, int raw)
{
	if (m->p < m->end && *m->p == '"') {
		if (raw)
			tbuf_append_char(out, '"');
		for (m->p++; m->p < m->end && *m->p != '"'; m->p++) {
			if (*m->p == '\\' && m->p + 1 < m->end) {
				if (raw)
					tbuf_append_char(out, '\\');
				m->p++;
			}
			tbuf_append_char(out, *m->p);
		}
		if (m->p < m->end)
			m->p++;
		if (raw)
			tbuf_append_char(out, '"');
		tbuf_append(out, "", 0);
		return 1;
	}
	const char *s = m->p;
	while (m->p < m->end && ma_atext((unsigned char)*m->p))
		m->p++;
	tbuf_append(out, s, (size_t)(m->p - s));
	return m->p > s;
}

/* A phrase: words and dots up to a special; words joined with one space.
 * *words_r counts the words, *quoted_r tells whether one was a quoted string. */
static void ma_phrase(ma_ctx *m, tbuf *out, int *words_r, int *quoted_r)
{
	*words_r = 0;
	*quoted_r = 0;
	for (;;) {
		ma_cfws(m);
		if (m->p >= m->end)
			return;
		if (*m->p == '.') {
			tbuf_append_char(out, '.');
			m->p++;
			continue;
		}
		if (*m->p == '"')
			*quoted_r = 1;
		size_t before = out->len;
		if (*words_r && out->len && out->data[out->len - 1] != '.')
			tbuf_append_char(out, ' ');
		if (!ma_word(m, out, 0)) {
			tbuf_truncate(out, before);
			return;
		}
		(*words_r)++;
	}
}

/* A dot-separated local part or domain (or a domain literal) without spaces. */
static void ma_dotted(ma_ctx *m, tbuf *out, int local)
{
	for (;;) {
		ma_cfws(m);
		if (m->p >= m->end)
			return;
		if (*m->p == '.') {
			tbuf_append_char(out, '.');
			m->p++;
		} else if (!local && *m->p == '[') {
			const char *s = m->p;
			while (m->p < m->end && *m->p != ']')
				m->p++;
			m->p += m->p < m->end;
			tbuf_append(out, s, (size_t)(m->p - s));
		} else if (!ma_word(m, out, 1)) {
			return;
		}
	}
}

/* Write one address; NULL strings are NIL. */
static void ma_emit(ma_ctx *m, const tbuf *name, const tbuf *adl, const char *mbox, size_t mlen, const char *host,
		    size_t hlen)
{
	if (m->n >= MA_ADDRS_MAX)
		return;
	tbuf_append_str(m->out, m->n++ ? "(" : "((");
	mime_imap_nstring(m->out, name && name->len ? name->data : NULL, name ? name->len : 0, 1);
	tbuf_append_char(m->out, ' ');
	mime_imap_nstring(m->out, adl && adl->len ? adl->data : NULL, adl ? adl->len : 0, 1);
	tbuf_append_char(m->out, ' ');
	mime_imap_nstring(m->out, mbox, mlen, 1);
	tbuf_append_char(m->out, ' ');
	mime_imap_nstring(m->out, host, hlen, 1);
	tbuf_append_char(m->out, ')');
}

/* local "@" domain, appended to local and domain. */
static void ma_addr_spec(ma_ctx *m, tbuf *local, tbuf *domain)
{
	ma_dotted(m, local, 1);
	ma_cfws(m);
	if (m->p < m->end && *m->p == '@') {
		m->p++;
		tbuf_reset(&m->comment);     /* only a comment from here on names it */
		ma_dotted(m, domain, 0);
	}
}

/* One mailbox address; a missing part is named as Dovecot names it. */
static void ma_emit_addr(ma_ctx *m, const tbuf *name, const tbuf *adl, const tbuf *local, const tbuf *domain)
{
	ma_emit(m, name, adl, local->len ? local->data : "MISSING_MAILBOX", local->len ? local->len : 15,
		domain->len ? domain->data : "MISSING_DOMAIN", domain->len ? domain->len : 14);
}

/* "<" [route ":"] addr-spec ">" with the phrase read before it as name. */
static void ma_angle(ma_ctx *m, tbuf *name)
{
	tbuf adl = TBUF_INIT, local = TBUF_INIT, domain = TBUF_INIT;

	m->p++;
	ma_cfws(m);
	if (m->p < m->end && *m->p == '@') {        /* obsolete route: @a,@b: */
		const char *s = m->p;
		while (m->p < m->end && *m->p != ':' && *m->p != '>')
			m->p++;
		tbuf_append(&adl, s, (size_t)(m->p - s));
		m->p += m->p < m->end && *m->p == ':';
	}
	if (!name->len && m->comment.len)
		tbuf_append(name, m->comment.data, m->comment.len);
	ma_addr_spec(m, &local, &domain);
	ma_emit_addr(m, name, &adl, &local, &domain);
	while (m->p < m->end && *m->p != '>' && *m->p != ',' && *m->p != ';')
		m->p++;
	m->p += m->p < m->end && *m->p == '>';
	tbuf_free(&adl);
	tbuf_free(&local);
	tbuf_free(&domain);
}

/* Render the list; "NIL" when it has no address at all. */
void mime_addr_list_render(const char *v, size_t len, tbuf *out)
{
	ma_ctx m = { v, v + len, TBUF_INIT, out, 0 };
	int in_group = 0;

	while (m.p < m.end) {
		tbuf phrase = TBUF_INIT;
		int words, quoted;
		const char *before = m.p;

		tbuf_reset(&m.comment);
		ma_phrase(&m, &phrase, &words, &quoted);
		ma_cfws(&m);
		if (m.p < m.end && *m.p == ':' && !in_group) {
			m.p++;
			ma_emit(&m, NULL, NULL, phrase.data ? phrase.data : "", phrase.len, NULL, 0);
			in_group = 1;
			tbuf_free(&phrase);
			continue;
		} else if (m.p < m.end && *m.p == '<') {
			ma_angle(&m, &phrase);
		} else if (m.p < m.end && *m.p == '@') {
			tbuf local = TBUF_INIT, domain = TBUF_INIT;
			/* the phrase was the local part: re-read it raw (quotes kept); a
			 * comment after the address names it */
			m.p = before;
			ma_addr_spec(&m, &local, &domain);
			ma_cfws(&m);
			ma_emit_addr(&m, &m.comment, NULL, &local, &domain);
			tbuf_free(&local);
			tbuf_free(&domain);
		} else if (words > 0) {
			if (words == 1 && !quoted)
				ma_emit(&m, NULL, NULL, phrase.data, phrase.len, "MISSING_DOMAIN", 14);
			else
				ma_emit(&m, &phrase, NULL, "MISSING_MAILBOX", 15, "MISSING_DOMAIN", 14);
		}
		tbuf_free(&phrase);
		ma_cfws(&m);
		if (m.p < m.end && *m.p == ';') {
			m.p++;
			if (in_group)
				ma_emit(&m, NULL, NULL, NULL, 0, NULL, 0);
			in_group = 0;
		} else if (m.p < m.end && *m.p == ',') {
			m.p++;
		} else if (m.p < m.end && m.p == before) {
			m.p++;                  /* a stray special: skip it */
		} else if (m.p < m.end && *m.p != ':' && *m.p != '<') {
			while (m.p < m.end && *m.p != ',' && *m.p != ';')
				m.p++;
		}
	}
	if (in_group)
		ma_emit(&m, NULL, NULL, NULL, 0, NULL, 0);
	tbuf_free(&m.comment);
	if (m.n == 0)
		tbuf_append_str(out, "NIL");
	else
		tbuf_append_char(out, ')');
}

/* An address field; absent or empty ones fall back to fallback (sender, reply-to). */
static void ma_field(const mime_fields *f, enum mime_field which, enum mime_field fallback, tbuf *out)
{
	size_t at = out->len;

	if (f->present[which])
		mime_addr_list_render(f->v[which].data, f->v[which].len, out);
	if ((!f->present[which] || strcmp(out->data + at, "NIL") == 0) && fallback != which) {
		tbuf_truncate(out, at);
		ma_field(f, fallback, fallback, out);
	} else if (!f->present[which]) {
		tbuf_append_str(out, "NIL");
	}
}

/* An unstructured field (date, subject, ids): trimmed raw value or NIL. */
static void ma_string(const mime_fields *f, enum mime_field which, tbuf *out)
{
	const tbuf *v = &f->v[which];
	size_t a = 0, b = v->len;

	if (!f->present[which]) {
		tbuf_append_str(out, "NIL");
		return;
	}
	while (a < b && (v->data[a] == ' ' || v->data[a] == '\t'))
		a++;
	while (b > a && (v->data[b - 1] == ' ' || v->data[b - 1] == '\t'))
		b--;
	mime_imap_string(out, v->data + a, b - a);
}

void mime_envelope_render(const mime_fields *f, tbuf *out)
{
	tbuf_append_char(out, '(');
	ma_string(f, MF_DATE, out);
	tbuf_append_char(out, ' ');
	ma_string(f, MF_SUBJECT, out);
	tbuf_append_char(out, ' ');
	ma_field(f, MF_FROM, MF_FROM, out);
	tbuf_append_char(out, ' ');
	ma_field(f, MF_SENDER, MF_FROM, out);
	tbuf_append_char(out, ' ');
	ma_field(f, MF_REPLY_TO, MF_FROM, out);
	tbuf_append_char(out, ' ');
	ma_field(f, MF_TO, MF_TO, out);
	tbuf_append_char(out, ' ');
	ma_field(f, MF_CC, MF_CC, out);
	tbuf_append_char(out, ' ');
	ma_field(f, MF_BCC, MF_BCC, out);
	tbuf_append_char(out, ' ');
	ma_string(f, MF_IN_REPLY_TO, out);
	tbuf_append_char(out, ' ');
	ma_string(f, MF_MESSAGE_ID, out);
	tbuf_append_char(out, ')');
}
