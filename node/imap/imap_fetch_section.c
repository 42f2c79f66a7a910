/* imap_fetch_section.c - FETCH body sections (RFC 3501 §6.4.5 BODY[section]<partial>,
 * RFC 3516 BINARY[section], BINARY.SIZE): parsing the section spec and serving its bytes
 * from the stored message by the offsets of its MIME record. Only the bytes of the asked
 * range are read from the store; HEADER.FIELDS reads the header section alone. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "imap_msg_int.h"

static const struct {
	const char *name;
	fetch_kind kind;
	int peek;
	const char *reply;
} section_names[] = {
	{ "BODY", FETCH_SECTION, 0, "BODY" },
	{ "BODY.PEEK", FETCH_SECTION, 1, "BODY" },
	{ "BINARY", FETCH_BINARY, 0, "BINARY" },
	{ "BINARY.PEEK", FETCH_BINARY, 1, "BINARY" },
	{ "BINARY.SIZE", FETCH_BINARY_SIZE, 1, "BINARY.SIZE" },
};

/* A decimal number without leading zeros (nz when nz is set); advances *pp. */
static int parse_num(const char **pp, const char *end, int nz, uint64_t max, uint64_t *v_r)
{
	const char *p = *pp;
	uint64_t v = 0;

	if (p >= end || !isdigit((unsigned char)*p) || (*p == '0' && (nz || (p + 1 < end && isdigit((unsigned char)p[1])))))
		return -1;
	while (p < end && isdigit((unsigned char)*p)) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > max)
			return -1;
		p++;
	}
	*pp = p;
	*v_r = v;
	return 0;
}

/* The astring field names of "(Subject From)", kept unquoted. */
static int parse_fields(const char *p, const char *end, fetch_item *it)
{
	if (p >= end || *p != '(' || end[-1] != ')')
		return -1;
	p++;
	end--;
	it->fields = calloc(FETCH_FIELDS_MAX, sizeof(*it->fields));
	if (it->fields == NULL)
		return -1;
	for (;;) {
		tbuf name = TBUF_INIT;

		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		if (it->nfields == FETCH_FIELDS_MAX)
			return -1;
		if (*p == '"') {
			for (p++; p < end && *p != '"'; p++) {
				if (*p == '\\' && p + 1 < end)
					p++;
				tbuf_append_char(&name, *p);
			}
			if (p == end) {
				tbuf_free(&name);
				return -1;
			}
			p++;
		} else {
			while (p < end && *p != ' ' && *p != '(' && *p != ')' && *p != '"')
				tbuf_append_char(&name, *p++);
		}
		/* RFC 5322 field names: printable ASCII except the colon. */
		int ok = name.len > 0 && name.len < 256;
		for (size_t i = 0; ok && i < name.len; i++)
			ok = name.data[i] > 0x20 && name.data[i] < 0x7f && name.data[i] != ':';
		if (!ok || (p < end && *p != ' ')) {
			tbuf_free(&name);
			return -1;
		}
		it->fields[it->nfields++] = tbuf_steal(&name);
	}
	return it->nfields > 0 ? 0 : -1;
}

/* A field name as an IMAP astring: an atom when it can be one, else a quoted string. */
static void append_astring(tbuf *out, const char *s)
{
	if (strpbrk(s, "(){%*\"\\]") == NULL && *s != '\0') {
		tbuf_append_str(out, s);
		return;
	}
	tbuf_append_char(out, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			tbuf_append_char(out, '\\');
		tbuf_append_char(out, *s);
	}
	tbuf_append_char(out, '"');
}

static void build_name(fetch_item *it, const char *reply)
{
	static const char *const spec[] = { [SEC_ALL] = "", [SEC_HEADER] = "HEADER",
		[SEC_FIELDS] = "HEADER.FIELDS", [SEC_FIELDS_NOT] = "HEADER.FIELDS.NOT",
		[SEC_TEXT] = "TEXT", [SEC_MIME] = "MIME" };
	tbuf n = TBUF_INIT;

	tbuf_appendf(&n, "%s[%s", reply, it->part);
	if (it->part[0] && it->sec != SEC_ALL)
		tbuf_append_char(&n, '.');
	tbuf_append_str(&n, spec[it->sec]);
	if (it->nfields > 0) {
		tbuf_append_str(&n, " (");
		for (size_t i = 0; i < it->nfields; i++) {
			if (i)
				tbuf_append_char(&n, ' ');
			append_astring(&n, it->fields[i]);
		}
		tbuf_append_char(&n, ')');
	}
	tbuf_append_char(&n, ']');
	it->name = tbuf_steal(&n);
}

/* The section-spec inside the brackets: part numbers, then an optional text spec. */
static int parse_spec(const char *p, const char *end, fetch_item *it)
{
	size_t plen = 0;

	while (p < end && isdigit((unsigned char)*p)) {
		const char *start = p;
		uint64_t v;

		if (parse_num(&p, end, 1, UINT32_MAX, &v) != 0 || plen + (size_t)(p - start) + 2 > FETCH_PART_MAX)
			return -1;
		if (plen)
			it->part[plen++] = '.';
		memcpy(it->part + plen, start, (size_t)(p - start));
		plen += (size_t)(p - start);
		it->part[plen] = '\0';
		if (p == end)
			break;
		if (*p != '.' || p + 1 == end)
			return -1;
		p++;
	}
	size_t rest = (size_t)(end - p);
	if (rest == 0) {
		it->sec = SEC_ALL;
		return 0;
	}
	if (it->kind != FETCH_SECTION)
		return -1;
	if (rest == 6 && strncasecmp(p, "HEADER", 6) == 0)
		it->sec = SEC_HEADER;
	else if (rest == 4 && strncasecmp(p, "TEXT", 4) == 0)
		it->sec = SEC_TEXT;
	else if (rest == 4 && strncasecmp(p, "MIME", 4) == 0 && plen > 0)
		it->sec = SEC_MIME;
	else if (rest > 18 && strncasecmp(p, "HEADER.FIELDS.NOT ", 18) == 0) {
		it->sec = SEC_FIELDS_NOT;
		return parse_fields(p + 18, end, it);
	} else if (rest > 14 && strncasecmp(p, "HEADER.FIELDS ", 14) == 0) {
		it->sec = SEC_FIELDS;
		return parse_fields(p + 14, end, it);
	} else
		return -1;
	return 0;
}

int imap_fetch_section_parse(const char *text, fetch_item *it, const char **error_r)
{
	const char *lb = strchr(text, '['), *rb = strrchr(text, ']');
	const char *reply = NULL;

	memset(it, 0, sizeof(*it));
	*error_r = "Invalid FETCH section";
	if (lb == NULL || rb == NULL || rb < lb)
		return -1;
	for (size_t i = 0; i < sizeof(section_names) / sizeof(section_names[0]); i++) {
		if (strlen(section_names[i].name) == (size_t)(lb - text) &&
		    strncasecmp(text, section_names[i].name, (size_t)(lb - text)) == 0) {
			it->kind = section_names[i].kind;
			it->peek = section_names[i].peek;
			reply = section_names[i].reply;
		}
	}
	if (reply == NULL || parse_spec(lb + 1, rb, it) != 0)
		return -1;
	const char *p = rb + 1, *end = p + strlen(p);
	if (p < end) {
		if (it->kind == FETCH_BINARY_SIZE || *p != '<' || end[-1] != '>')
			return -1;
		p++;
		if (parse_num(&p, end - 1, 0, UINT32_MAX, &it->poff) != 0 || *p != '.')
			return -1;
		p++;
		if (parse_num(&p, end - 1, 1, UINT32_MAX, &it->plen) != 0 || p != end - 1)
			return -1;
		it->partial = 1;
	}
	build_name(it, reply);
	return 0;
}

/* NAME<o> {n}\r\n + data (or ~{n} for BINARY data holding NULs). */
static void append_literal(const fetch_item *it, const char *data, size_t n, int binary, tbuf *out)
{
	tbuf_append_str(out, it->name);
	if (it->partial)
		tbuf_appendf(out, "<%llu>", (unsigned long long)it->poff);
	int nul = binary && n > 0 && memchr(data, '\0', n) != NULL;
	tbuf_appendf(out, " %s{%zu}\r\n", nul ? "~" : "", n);
	tbuf_append(out, data, n);
}

static void append_nil(const fetch_item *it, tbuf *out)
{
	tbuf_append_str(out, it->name);
	if (it->partial)
		tbuf_appendf(out, "<%llu>", (unsigned long long)it->poff);
	tbuf_append_str(out, " NIL");
}

/* The <o.n> window of a range of length len. */
static void window(const fetch_item *it, uint64_t *off, uint64_t *len)
{
	if (!it->partial)
		return;
	uint64_t skip = it->poff < *len ? it->poff : *len;
	*off += skip;
	*len -= skip;
	if (*len > it->plen)
		*len = it->plen;
}

/* Read a range of the message into out, or STORE_EIO when the store holds fewer bytes
 * than the record promises (a literal must carry exactly what it announces). */
static int read_exact(const imap_msg *m, uint64_t off, uint64_t len, tbuf *out)
{
	size_t before = out->len;
	int rc = imap_msg_read(m, off, len, out);

	if (rc == 0 && out->len - before != len) {
		tbuf_truncate(out, before);
		rc = STORE_EIO;
	}
	return rc;
}

/* Section bytes that are a plain range of the message: served straight into out. */
static int render_range(const fetch_item *it, const imap_msg *m, uint64_t off, uint64_t len, tbuf *out)
{
	uint64_t total = m->meta->header_prefix.len + m->meta->blob_size;

	if (off > total)
		off = total;
	if (len > total - off)
		len = total - off;
	window(it, &off, &len);
	tbuf_append_str(out, it->name);
	if (it->partial)
		tbuf_appendf(out, "<%llu>", (unsigned long long)it->poff);
	tbuf_appendf(out, " {%llu}\r\n", (unsigned long long)len);
	return read_exact(m, off, len, out);
}

static int is_identity(const char *enc)
{
	return enc == NULL || enc[0] == '\0' || strcasecmp(enc, "7bit") == 0 || strcasecmp(enc, "8bit") == 0 ||
	       strcasecmp(enc, "binary") == 0;
}

/* BINARY[part] and BINARY.SIZE[part]: the part body with its transfer encoding undone
 * (leaf parts only; containers and the whole message are served as stored). */
static int render_binary(const fetch_item *it, const imap_msg *m, const Tern__MimePart *root, tbuf *out)
{
	uint64_t plen = m->meta->header_prefix.len;
	uint64_t off = 0, len = plen + m->meta->blob_size;
	const Tern__MimePart *p = NULL;
	int decode = 0;

	if (it->part[0]) {
		p = root ? mime_find_part(root, it->part) : NULL;
		if (p == NULL) {
			if (it->kind == FETCH_BINARY_SIZE) {
				tbuf_appendf(out, "%s NIL", it->name);
				return 0;
			}
			append_nil(it, out);
			return 0;
		}
		off = plen + p->body_off;
		len = p->body_len;
		decode = p->n_parts == 0 && p->message == NULL && !is_identity(p->encoding);
	}
	if (!decode && it->kind == FETCH_BINARY_SIZE) {
		tbuf_appendf(out, "%s %llu", it->name, (unsigned long long)len);
		return 0;
	}
	tbuf raw = TBUF_INIT, dec = TBUF_INIT;
	int rc = read_exact(m, off, len, &raw);
	if (rc == 0 && decode && mime_decode_transfer(p->encoding, raw.data, raw.len, &dec) != 0)
		rc = IMAP_FETCH_EUNKNOWN_CTE;
	if (rc == 0) {
		const tbuf *d = decode ? &dec : &raw;
		if (it->kind == FETCH_BINARY_SIZE) {
			tbuf_appendf(out, "%s %zu", it->name, d->len);
		} else {
			uint64_t wo = 0, wl = d->len;
			window(it, &wo, &wl);
			append_literal(it, d->data ? d->data + wo : "", (size_t)wl, 1, out);
		}
	}
	tbuf_free(&raw);
	tbuf_free(&dec);
	return rc;
}

/* HEADER.FIELDS[.NOT] of an entity whose header section is [off, off+len). */
static int render_fields(const fetch_item *it, const imap_msg *m, uint64_t off, uint64_t len, tbuf *out)
{
	tbuf hdr = TBUF_INIT, sel = TBUF_INIT;

	if (len > IMAP_MSG_HEADER_MAX)
		len = IMAP_MSG_HEADER_MAX;
	int rc = imap_msg_read(m, off, len, &hdr);
	if (rc == 0) {
		imap_hdr_filter(hdr.data ? hdr.data : "", hdr.len, it->fields, it->nfields, it->sec == SEC_FIELDS_NOT,
				&sel);
		uint64_t wo = 0, wl = sel.len;
		window(it, &wo, &wl);
		append_literal(it, sel.data + wo, (size_t)wl, 0, out);
	}
	tbuf_free(&hdr);
	tbuf_free(&sel);
	return rc;
}

int imap_fetch_section_render(const fetch_item *it, const imap_msg *m, const Tern__MimeInfo *mi, tbuf *out)
{
	const Tern__MimePart *root = mi ? mi->root : NULL, *ent = root;
	uint64_t plen = m->meta->header_prefix.len;
	int top = 1;

	if (it->kind != FETCH_SECTION)
		return render_binary(it, m, root, out);
	if (it->part[0] == '\0' && it->sec == SEC_ALL)
		return render_range(it, m, 0, plen + m->meta->blob_size, out);
	if (it->part[0]) {
		const Tern__MimePart *p = root ? mime_find_part(root, it->part) : NULL;

		if (p != NULL && it->sec == SEC_ALL)
			return render_range(it, m, plen + p->body_off, p->body_len, out);
		if (p != NULL && it->sec == SEC_MIME)
			return render_range(it, m, plen + p->header_off, p->header_len, out);
		ent = p ? p->message : NULL;
		top = 0;
	}
	if (ent == NULL) {
		append_nil(it, out);
		return 0;
	}
	uint64_t hoff = top ? 0 : plen + ent->header_off;
	uint64_t hlen = top ? plen + ent->header_off + ent->header_len : ent->header_len;
	switch (it->sec) {
	case SEC_HEADER:
		return render_range(it, m, hoff, hlen, out);
	case SEC_TEXT:
		return render_range(it, m, plen + ent->body_off, ent->body_len, out);
	case SEC_FIELDS:
	case SEC_FIELDS_NOT:
		return render_fields(it, m, hoff, hlen, out);
	default:
		append_nil(it, out);
		return 0;
	}
}
