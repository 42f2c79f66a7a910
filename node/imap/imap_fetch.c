/* imap_fetch.c - FETCH (RFC 3501 §6.4.5, §7.4.2) with the CONDSTORE modifiers of RFC 7162:
 * the attribute list parsed once per command, then one "* n FETCH (...)" rendered per
 * message. Simple attributes come from the message record; body sections are served by
 * imap_fetch_section.c from the stored bytes. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "imap_msg_int.h"

#define FETCH_ITEMS_MAX 64

struct imap_fetch {
	fetch_item *items;
	size_t n;
	int sets_seen;
	int has_flags, has_modseq;
	int implicit_uid;       /* UID FETCH without UID in the list: UID goes first */
	uint64_t changedsince;
	int vanished;
};

static const struct {
	const char *name;
	fetch_kind kind;
} simple_atts[] = {
	{ "ENVELOPE", FETCH_ENVELOPE },
	{ "FLAGS", FETCH_FLAGS },
	{ "INTERNALDATE", FETCH_INTERNALDATE },
	{ "RFC822.SIZE", FETCH_RFC822_SIZE },
	{ "BODY", FETCH_BODY },
	{ "BODYSTRUCTURE", FETCH_BODYSTRUCTURE },
	{ "UID", FETCH_UID },
	{ "MODSEQ", FETCH_MODSEQ },
};

/* RFC822, RFC822.HEADER and RFC822.TEXT are BODY sections under their own names. */
static const struct {
	const char *name;
	fetch_sec sec;
	int peek;
} rfc822_atts[] = {
	{ "RFC822", SEC_ALL, 0 },
	{ "RFC822.HEADER", SEC_HEADER, 1 },
	{ "RFC822.TEXT", SEC_TEXT, 0 },
};

static void item_clear(fetch_item *it)
{
	for (size_t i = 0; i < it->nfields; i++)
		free(it->fields[i]);
	free(it->fields);
	free(it->name);
	memset(it, 0, sizeof(*it));
}

void imap_fetch_free(imap_fetch **fp)
{
	imap_fetch *f = *fp;

	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n; i++)
		item_clear(&f->items[i]);
	free(f->items);
	free(f);
	*fp = NULL;
}

/* One attribute atom into a new item of f. */
static int add_att(imap_fetch *f, const char *text, const char **error_r)
{
	fetch_item it;

	memset(&it, 0, sizeof(it));
	if (f->n == FETCH_ITEMS_MAX) {
		*error_r = "Too many FETCH attributes";
		return -1;
	}
	if (strchr(text, '[') != NULL) {
		if (imap_fetch_section_parse(text, &it, error_r) != 0) {
			item_clear(&it);
			return -1;
		}
		f->items[f->n++] = it;
		return 0;
	}
	for (size_t i = 0; i < sizeof(simple_atts) / sizeof(simple_atts[0]); i++) {
		if (strcasecmp(text, simple_atts[i].name) == 0) {
			it.kind = simple_atts[i].kind;
			f->items[f->n++] = it;
			return 0;
		}
	}
	for (size_t i = 0; i < sizeof(rfc822_atts) / sizeof(rfc822_atts[0]); i++) {
		if (strcasecmp(text, rfc822_atts[i].name) == 0) {
			it.kind = FETCH_SECTION;
			it.sec = rfc822_atts[i].sec;
			it.peek = rfc822_atts[i].peek;
			it.name = strdup(rfc822_atts[i].name);
			if (it.name == NULL)
				break;
			f->items[f->n++] = it;
			return 0;
		}
	}
	*error_r = "Invalid FETCH attribute";
	return -1;
}

/* The text of a list element for a section split by the parser around its field list
 * ("BODY[HEADER.FIELDS", (A B), "]<0.5>"): joined back into one attribute. */
static void join_list(const imap_arg *l, tbuf *out)
{
	tbuf_append_str(out, " (");
	for (size_t i = 0; i < l->nlist; i++) {
		if (i)
			tbuf_append_char(out, ' ');
		if (l->list[i].type == IMAP_ARG_STRING) {
			tbuf_append_char(out, '"');
			for (size_t k = 0; k < l->list[i].len; k++) {
				char c = l->list[i].str[k];
				if (c == '"' || c == '\\')
					tbuf_append_char(out, '\\');
				tbuf_append_char(out, c);
			}
			tbuf_append_char(out, '"');
		} else if (l->list[i].type == IMAP_ARG_ATOM) {
			tbuf_append(out, l->list[i].str, l->list[i].len);
		} else {
			tbuf_append_str(out, "\x01");   /* makes the section invalid */
		}
	}
	tbuf_append_char(out, ')');
}

static int parse_atts(imap_fetch *f, const imap_arg *a, size_t n, const char **error_r)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i].type != IMAP_ARG_ATOM || memchr(a[i].str, '\0', a[i].len) != NULL) {
			*error_r = "Invalid FETCH attribute";
			return -1;
		}
		if (memchr(a[i].str, '[', a[i].len) && !memchr(a[i].str, ']', a[i].len) && i + 2 < n &&
		    a[i + 1].type == IMAP_ARG_LIST && a[i + 2].type == IMAP_ARG_ATOM &&
		    a[i + 2].str[0] == ']') {
			tbuf j = TBUF_INIT;
			tbuf_append(&j, a[i].str, a[i].len);
			join_list(&a[i + 1], &j);
			tbuf_append(&j, a[i + 2].str, a[i + 2].len);
			int rc = add_att(f, tbuf_cstr(&j), error_r);
			tbuf_free(&j);
			if (rc != 0)
				return -1;
			i += 2;
			continue;
		}
		if (add_att(f, a[i].str, error_r) != 0)
			return -1;
	}
	return 0;
}

/* CHANGEDSINCE <mod-sequence-value> and VANISHED (RFC 7162 §3.1.4, §3.2.6). */
static int parse_modifiers(imap_fetch *f, const imap_arg *mods, int uid_cmd, const char **error_r)
{
	*error_r = "Invalid FETCH modifier";
	if (mods->type != IMAP_ARG_LIST)
		return -1;
	for (size_t i = 0; i < mods->nlist; i++) {
		const imap_arg *a = &mods->list[i];

		if (a->type != IMAP_ARG_ATOM)
			return -1;
		if (strcasecmp(a->str, "VANISHED") == 0) {
			f->vanished = 1;
			continue;
		}
		if (strcasecmp(a->str, "CHANGEDSINCE") != 0 || i + 1 >= mods->nlist || f->changedsince)
			return -1;
		const imap_arg *v = &mods->list[++i];
		char *end;
		if (v->type != IMAP_ARG_ATOM || !isdigit((unsigned char)v->str[0]) || v->len > 19)
			return -1;
		unsigned long long n = strtoull(v->str, &end, 10);
		if (*end != '\0' || n == 0 || n > INT64_MAX)
			return -1;
		f->changedsince = n;
	}
	if (f->vanished && (!uid_cmd || f->changedsince == 0)) {
		*error_r = "VANISHED needs UID FETCH with CHANGEDSINCE";
		return -1;
	}
	return 0;
}

int imap_fetch_parse(const imap_arg *atts, const imap_arg *modifiers, int uid_cmd, imap_fetch **f_r,
		     const char **error_r)
{
	static const char *const macro_all[] = { "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY" };
	imap_fetch *f = calloc(1, sizeof(*f));
	int rc = -1;

	*f_r = NULL;
	if (f == NULL || (f->items = calloc(FETCH_ITEMS_MAX, sizeof(*f->items))) == NULL) {
		*error_r = "Out of memory";
		goto out;
	}
	if (atts->type == IMAP_ARG_ATOM && (strcasecmp(atts->str, "ALL") == 0 || strcasecmp(atts->str, "FAST") == 0 ||
					     strcasecmp(atts->str, "FULL") == 0)) {
		size_t n = strcasecmp(atts->str, "FAST") == 0 ? 3 : strcasecmp(atts->str, "ALL") == 0 ? 4 : 5;
		for (size_t i = 0; i < n; i++)
			if (add_att(f, macro_all[i], error_r) != 0)
				goto out;
	} else if (atts->type == IMAP_ARG_ATOM) {
		if (parse_atts(f, atts, 1, error_r) != 0)
			goto out;
	} else if (atts->type == IMAP_ARG_LIST && atts->nlist > 0) {
		if (parse_atts(f, atts->list, atts->nlist, error_r) != 0)
			goto out;
	} else {
		*error_r = "Invalid FETCH attribute list";
		goto out;
	}
	if (modifiers != NULL && parse_modifiers(f, modifiers, uid_cmd, error_r) != 0)
		goto out;
	int has_uid = 0;
	for (size_t i = 0; i < f->n; i++) {
		const fetch_item *it = &f->items[i];
		has_uid |= it->kind == FETCH_UID;
		f->has_flags |= it->kind == FETCH_FLAGS;
		f->has_modseq |= it->kind == FETCH_MODSEQ;
		f->sets_seen |= (it->kind == FETCH_SECTION || it->kind == FETCH_BINARY) && !it->peek;
	}
	f->implicit_uid = uid_cmd && !has_uid;
	rc = 0;
out:
	if (rc == 0)
		*f_r = f;
	else
		imap_fetch_free(&f);
	return rc;
}

int imap_fetch_sets_seen(const imap_fetch *f)
{
	return f->sets_seen;
}

int imap_fetch_wants_modseq(const imap_fetch *f)
{
	return f->has_modseq || f->changedsince != 0;
}

uint64_t imap_fetch_changedsince(const imap_fetch *f)
{
	return f->changedsince;
}

int imap_fetch_vanished(const imap_fetch *f)
{
	return f->vanished;
}

/* "17-Jul-1996 02:44:25 -0700" in the server's time zone (RFC 3501 date-time). */
static void append_internaldate(int64_t t, tbuf *out)
{
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL) {
		tt = 0;
		gmtime_r(&tt, &tm);
	}
	long off = tm.tm_gmtoff / 60;
	char sign = off < 0 ? '-' : '+';
	if (off < 0)
		off = -off;
	tbuf_appendf(out, "INTERNALDATE \"%2d-%s-%04d %02d:%02d:%02d %c%02ld%02ld\"", tm.tm_mday,
		     months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60,
		     off % 60);
}

static void append_bytes(tbuf *out, const char *name, ProtobufCBinaryData d)
{
	tbuf_append_str(out, name);
	tbuf_append_char(out, ' ');
	if (d.len > 0)
		tbuf_append(out, d.data, d.len);
	else
		tbuf_append_str(out, "NIL");
}

/* One item; mi is the MIME record for the items that need it. */
static int render_item(const fetch_item *it, const imap_msg *m, const Tern__MimeInfo *mi, tbuf *out)
{
	const Tern__MessageMeta *meta = m->meta;

	switch (it->kind) {
	case FETCH_ENVELOPE:
		append_bytes(out, "ENVELOPE", mi->envelope);
		return 0;
	case FETCH_BODY:
		append_bytes(out, "BODY", mi->body);
		return 0;
	case FETCH_BODYSTRUCTURE:
		append_bytes(out, "BODYSTRUCTURE", mi->bodystructure);
		return 0;
	case FETCH_FLAGS:
		tbuf_append_str(out, "FLAGS ");
		imap_flags_render(meta->flags, meta->keywords, meta->n_keywords, m->recent, out);
		return 0;
	case FETCH_INTERNALDATE:
		append_internaldate((int64_t)meta->internaldate, out);
		return 0;
	case FETCH_RFC822_SIZE:
		tbuf_appendf(out, "RFC822.SIZE %llu", (unsigned long long)meta->size);
		return 0;
	case FETCH_UID:
		tbuf_appendf(out, "UID %u", meta->uid);
		return 0;
	case FETCH_MODSEQ:
		tbuf_appendf(out, "MODSEQ (%llu)", (unsigned long long)meta->modseq);
		return 0;
	default:
		return imap_fetch_section_render(it, m, mi, out);
	}
}

static int needs_mime(const fetch_item *it)
{
	switch (it->kind) {
	case FETCH_ENVELOPE:
	case FETCH_BODY:
	case FETCH_BODYSTRUCTURE:
		return 1;
	case FETCH_SECTION:
	case FETCH_BINARY:
	case FETCH_BINARY_SIZE:
		return it->part[0] != '\0' || it->sec != SEC_ALL;
	default:
		return 0;
	}
}

int imap_fetch_render(const imap_fetch *f, const imap_msg *m, int force_flags, int with_modseq, tbuf *out)
{
	size_t start = out->len;
	Tern__MimeInfo *owned = NULL;
	const Tern__MimeInfo *mi = NULL;
	int rc = 0, first = 1;

	for (size_t i = 0; i < f->n && mi == NULL; i++) {
		if (needs_mime(&f->items[i]) && (mi = imap_msg_mime(m, &owned, &rc)) == NULL)
			return rc;
	}
	tbuf_appendf(out, "* %u FETCH (", m->msn);
	if (f->implicit_uid) {
		tbuf_appendf(out, "UID %u", m->meta->uid);
		first = 0;
	}
	for (size_t i = 0; i < f->n && rc == 0; i++) {
		if (!first)
			tbuf_append_char(out, ' ');
		first = 0;
		rc = render_item(&f->items[i], m, mi, out);
	}
	if (rc == 0 && force_flags && !f->has_flags) {
		tbuf_append_str(out, first ? "FLAGS " : " FLAGS ");
		imap_flags_render(m->meta->flags, m->meta->keywords, m->meta->n_keywords, m->recent, out);
		first = 0;
	}
	if (rc == 0 && (with_modseq || f->changedsince) && !f->has_modseq)
		tbuf_appendf(out, "%sMODSEQ (%llu)", first ? "" : " ", (unsigned long long)m->meta->modseq);
	tbuf_append_str(out, ")\r\n");
	mime_info_free(&owned);
	if (rc != 0)
		tbuf_truncate(out, start);
	return rc;
}
