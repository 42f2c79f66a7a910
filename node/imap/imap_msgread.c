/* imap_msgread.c - the bytes of a message as IMAP clients see them (the per-recipient
 * header prefix followed by the shared body blob; only the asked range is read), its MIME
 * record, and the header-section helpers that FETCH and SEARCH share. */
#include <string.h>
#include <strings.h>
#include "imap_msg_int.h"

int imap_msg_read(const imap_msg *m, uint64_t off, uint64_t len, tbuf *out)
{
	const Tern__MessageMeta *meta = m->meta;
	uint64_t plen = meta->header_prefix.len;
	uint64_t total = plen + meta->blob_size;
	size_t start = out->len;

	if (off >= total || len == 0)
		return 0;
	if (len > total - off)
		len = total - off;
	if (off < plen) {
		uint64_t take = plen - off < len ? plen - off : len;

		tbuf_append(out, meta->header_prefix.data + off, (size_t)take);
		off += take;
		len -= take;
	}
	if (len == 0)
		return 0;
	if (meta->blob.len != 32) {
		tbuf_truncate(out, start);
		return STORE_EIO;
	}
	int rc = store_blob_read(m->st, meta->blob.data, off - plen, len, out);
	if (rc != 0) {
		tbuf_truncate(out, start);
		return rc;
	}
	return 0;
}

const Tern__MimeInfo *imap_msg_mime(const imap_msg *m, Tern__MimeInfo **owned_r, int *rc_r)
{
	const Tern__MessageMeta *meta = m->meta;
	tbuf body = TBUF_INIT;

	*owned_r = NULL;
	*rc_r = 0;
	if (meta->mime != NULL && meta->mime->root != NULL)
		return meta->mime;
	if (meta->blob.len != 32) {
		*rc_r = STORE_EIO;
		return NULL;
	}
	if (meta->blob_size > 0) {
		int rc = store_blob_read(m->st, meta->blob.data, 0, meta->blob_size, &body);
		if (rc != 0) {
			tbuf_free(&body);
			*rc_r = rc;
			return NULL;
		}
	}
	*owned_r = mime_analyze(body.data ? body.data : "", body.len);
	tbuf_free(&body);
	if (*owned_r == NULL)
		*rc_r = STORE_EIO;
	return *owned_r;
}

void imap_hdr_iter_init(imap_hdr_iter *it, const char *hdr, size_t len)
{
	it->p = hdr;
	it->end = hdr + len;
}

/* A field runs from a line that does not start with white space to the next such line. */
int imap_hdr_next(imap_hdr_iter *it, imap_hdr_field *f)
{
	const char *p = it->p, *end = it->end;

	while (p < end) {
		if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')) {
			it->p = end;
			return 0;
		}
		const char *start = p;
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : end;
		while (p < end && (*p == ' ' || *p == '\t')) {
			nl = memchr(p, '\n', (size_t)(end - p));
			p = nl ? nl + 1 : end;
		}
		const char *colon = memchr(start, ':', (size_t)(p - start));
		if (colon == NULL)
			continue;       /* not a field: skipped as RFC 5322 parsers do */
		size_t nlen = (size_t)(colon - start);
		while (nlen > 0 && (start[nlen - 1] == ' ' || start[nlen - 1] == '\t'))
			nlen--;
		if (nlen == 0 || memchr(start, '\n', nlen) != NULL)
			continue;
		f->name = start;
		f->name_len = nlen;
		f->raw = start;
		f->raw_len = (size_t)(p - start);
		f->value = colon + 1;
		f->value_len = (size_t)(p - colon - 1);
		it->p = p;
		return 1;
	}
	it->p = end;
	return 0;
}

static int name_in(const imap_hdr_field *f, char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(names[i]) == f->name_len && strncasecmp(names[i], f->name, f->name_len) == 0)
			return 1;
	return 0;
}

void imap_hdr_filter(const char *hdr, size_t len, char *const *names, size_t n, int not, tbuf *out)
{
	imap_hdr_iter it;
	imap_hdr_field f;

	imap_hdr_iter_init(&it, hdr, len);
	while (imap_hdr_next(&it, &f)) {
		if (name_in(&f, names, n) == !not) {
			tbuf_append(out, f.raw, f.raw_len);
			if (f.raw_len == 0 || f.raw[f.raw_len - 1] != '\n')
				tbuf_append_str(out, "\r\n");
		}
	}
	tbuf_append_str(out, "\r\n");
}

/* Parameters are "; name=value" or "; name="quoted value"" (RFC 2045); RFC 2231
 * continuations are not needed for a charset. */
void imap_hdr_param(const char *hdr, size_t len, const char *field, const char *param, char *out, size_t outn)
{
	imap_hdr_iter it;
	imap_hdr_field f;
	size_t plen = strlen(param);

	out[0] = '\0';
	imap_hdr_iter_init(&it, hdr, len);
	while (imap_hdr_next(&it, &f)) {
		if (f.name_len != strlen(field) || strncasecmp(f.name, field, f.name_len) != 0)
			continue;
		const char *p = f.value, *end = f.value + f.value_len;
		while (p < end) {
			const char *semi = memchr(p, ';', (size_t)(end - p));
			if (semi == NULL)
				return;
			p = semi + 1;
			while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
				p++;
			if ((size_t)(end - p) <= plen || strncasecmp(p, param, plen) != 0 || p[plen] != '=')
				continue;
			p += plen + 1;
			int quoted = p < end && *p == '"';
			p += quoted;
			size_t o = 0;
			while (p < end && o + 1 < outn) {
				if (quoted ? *p == '"' : (*p == ';' || *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
					break;
				out[o++] = *p++;
			}
			out[o] = '\0';
			return;
		}
		return;
	}
}
