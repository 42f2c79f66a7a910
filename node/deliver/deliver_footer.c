/* deliver_footer.c - the domain footer (guide ch. 7: plain text, appended to mail whose
 * sender is in the domain). Only the header section and its Content-Type and
 * Content-Transfer-Encoding are parsed, within fixed bounds; no MIME tree is built.
 *   - single-part text/plain (or no Content-Type): "\r\n" + footer after the body, in
 *     the body's encoding (quoted-printable when the body is; base64 bodies are left
 *     alone); a non-ASCII footer needs a UTF-8 body in 8bit or quoted-printable;
 *   - multipart/mixed: a text/plain part is added before the closing boundary;
 *   - anything else (alternative, related, HTML, signed ...) is left unchanged. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "deliver_int.h"

#define FOOTER_HEADER_MAX (256u * 1024u)  /* a header section longer than this: no footer */
#define FOOTER_FIELD_MAX 2048             /* unfolded Content-Type kept */
#define QP_LINE_MAX 76

typedef struct footer_mime {
	char type[128];          /* "text/plain", lower case */
	char charset[64];        /* lower case, "" when absent */
	char boundary[128];      /* as given, "" when absent */
	char cte[32];            /* lower case, "" when absent */
} footer_mime;

/* Length of the header section including its empty line; 0 when there is none in bounds. */
static size_t footer_header_len(const char *m, size_t len)
{
	size_t max = len < FOOTER_HEADER_MAX ? len : FOOTER_HEADER_MAX;

	if (max >= 2 && m[0] == '\r' && m[1] == '\n')
		return 2;
	for (size_t i = 0; i + 4 <= max; i++)
		if (m[i] == '\r' && memcmp(m + i, "\r\n\r\n", 4) == 0)
			return i + 4;
	return 0;
}

/* The unfolded value of header field `name` in the header section hdr, or 0. */
static int footer_field(const char *hdr, size_t n, const char *name, char *out, size_t out_n)
{
	size_t nl = strlen(name), i = 0;

	while (i < n) {
		size_t eol = i;
		while (eol < n && hdr[eol] != '\n')
			eol++;
		if (eol - i > nl && strncasecmp(hdr + i, name, nl) == 0 && hdr[i + nl] == ':') {
			size_t o = 0, j = i + nl + 1;
			for (;;) {
				for (; j < eol && o + 1 < out_n; j++)
					if (hdr[j] != '\r')
						out[o++] = hdr[j] == '\t' ? ' ' : hdr[j];
				if (eol + 1 >= n || (hdr[eol + 1] != ' ' && hdr[eol + 1] != '\t'))
					break;
				j = eol + 1;
				for (eol = j; eol < n && hdr[eol] != '\n'; eol++)
					;
			}
			out[o] = '\0';
			return 1;
		}
		i = eol + 1;
	}
	return 0;
}

static void footer_trim_copy(char *out, size_t n, const char *s, size_t len, int lower)
{
	size_t o = 0;

	while (len && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len && s[0] == '"' && len >= 2 && s[len - 1] == '"')
		s++, len -= 2;
	for (size_t i = 0; i < len && o + 1 < n; i++)
		out[o++] = lower && s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
	out[o] = '\0';
}

/* "type/subtype; charset=x; boundary="y"" into f (quoted values without the quotes). */
static void footer_parse_ct(const char *v, footer_mime *f)
{
	const char *p = strchr(v, ';');

	footer_trim_copy(f->type, sizeof(f->type), v, p ? (size_t)(p - v) : strlen(v), 1);
	while (p && *p == ';') {
		const char *name = p + 1, *eq = strchr(name, '='), *end;
		if (eq == NULL)
			break;
		if (eq[1] == '"') {
			end = strchr(eq + 2, '"');
			end = end ? end + 1 : eq + strlen(eq);
		} else {
			end = strchr(eq, ';');
			end = end ? end : eq + strlen(eq);
		}
		char key[32];
		footer_trim_copy(key, sizeof(key), name, (size_t)(eq - name), 1);
		if (strcmp(key, "charset") == 0)
			footer_trim_copy(f->charset, sizeof(f->charset), eq + 1, (size_t)(end - eq - 1), 1);
		else if (strcmp(key, "boundary") == 0)
			footer_trim_copy(f->boundary, sizeof(f->boundary), eq + 1, (size_t)(end - eq - 1), 0);
		p = strchr(end, ';');
	}
}

/* Non-ASCII footers need a UTF-8 body or a part of their own. */
static int footer_is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s & 0x80)
			return 0;
	return 1;
}

/* The footer with CRLF line ends and no trailing empty lines, each line ended by CRLF. */
static void footer_lines(tbuf *out, const char *footer)
{
	size_t len = strlen(footer);

	while (len && (footer[len - 1] == '\n' || footer[len - 1] == '\r'))
		len--;
	for (size_t i = 0; i < len; i++) {
		if (footer[i] == '\r') {
			if (i + 1 < len && footer[i + 1] == '\n')
				i++;
			tbuf_append_str(out, "\r\n");
		} else if (footer[i] == '\n') {
			tbuf_append_str(out, "\r\n");
		} else {
			tbuf_append_char(out, footer[i]);
		}
	}
	tbuf_append_str(out, "\r\n");
}

/* Quoted-printable (RFC 2045 6.7) of CRLF-ended text. */
static void footer_qp(tbuf *out, const char *text, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)text[i];
		int at_eol = i + 1 >= len || text[i + 1] == '\r';
		int lit = (ch >= 33 && ch <= 126 && ch != '=') || ((ch == ' ' || ch == '\t') && !at_eol);

		if (ch == '\r' && i + 1 < len && text[i + 1] == '\n') {
			tbuf_append_str(out, "\r\n");
			i++;
			col = 0;
			continue;
		}
		if (col + (lit ? 1 : 3) > QP_LINE_MAX - 1) {
			tbuf_append_str(out, "=\r\n");
			col = 0;
		}
		if (lit) {
			tbuf_append_char(out, (char)ch);
			col++;
		} else {
			char e[3] = { '=', hex[ch >> 4], hex[ch & 15] };
			tbuf_append(out, e, 3);
			col += 3;
		}
	}
}

/* text/plain: the footer after the body, in the body's transfer encoding. */
static int footer_single(const char *m, size_t len, const footer_mime *f, const char *footer, tbuf *out)
{
	int ascii = footer_is_ascii(footer), qp = strcmp(f->cte, "quoted-printable") == 0;
	int raw8 = strcmp(f->cte, "8bit") == 0 || strcmp(f->cte, "binary") == 0;
	int raw7 = f->cte[0] == '\0' || strcmp(f->cte, "7bit") == 0;
	int utf8 = strcmp(f->charset, "utf-8") == 0 || strcmp(f->charset, "utf8") == 0;
	tbuf text = TBUF_INIT;

	if (!qp && !raw8 && !raw7)
		return 0;                 /* base64 or unknown encoding */
	if (strncmp(f->charset, "utf-16", 6) == 0 || strncmp(f->charset, "utf-32", 6) == 0 ||
	    strncmp(f->charset, "ucs", 3) == 0)
		return 0;
	if (!ascii && (!utf8 || raw7))
		return 0;
	tbuf_append(out, m, len);
	if (len > 0 && m[len - 1] != '\n')
		tbuf_append_str(out, "\r\n");
	tbuf_append_str(out, "\r\n");
	footer_lines(&text, footer);
	if (qp)
		footer_qp(out, text.data, text.len);
	else
		tbuf_append(out, text.data, text.len);
	tbuf_free(&text);
	return 1;
}

/* The last close delimiter "CRLF--boundary--" of the body, or NULL. */
static const char *footer_close_delim(const char *body, size_t n, const char *boundary)
{
	char delim[160];
	int dl = snprintf(delim, sizeof(delim), "\r\n--%s--", boundary);
	const char *last = NULL, *p = body;

	if (dl < 0 || (size_t)dl >= sizeof(delim))
		return NULL;
	while ((size_t)(p - body) + (size_t)dl <= n) {
		const char *hit = memmem(p, n - (size_t)(p - body), delim, (size_t)dl);
		if (hit == NULL)
			break;
		last = hit;
		p = hit + 1;
	}
	return last;
}

/* multipart/mixed: a text/plain part of its own before the closing delimiter. */
static int footer_mixed(const char *m, size_t len, size_t hlen, const footer_mime *f, const char *footer,
			tbuf *out)
{
	const char *close;
	int ascii = footer_is_ascii(footer);
	tbuf text = TBUF_INIT;

	if (f->boundary[0] == '\0')
		return 0;
	/* The header section's last CRLF may start the first delimiter: search from it. */
	close = footer_close_delim(m + hlen - 2, len - hlen + 2, f->boundary);
	if (close == NULL)
		return 0;
	tbuf_append(out, m, (size_t)(close - m));
	tbuf_appendf(out, "\r\n--%s\r\n", f->boundary);
	tbuf_appendf(out, "Content-Type: text/plain; charset=%s\r\n", ascii ? "us-ascii" : "utf-8");
	tbuf_appendf(out, "Content-Transfer-Encoding: %s\r\n", ascii ? "7bit" : "quoted-printable");
	tbuf_append_str(out, "Content-Disposition: inline\r\n\r\n");
	footer_lines(&text, footer);
	if (ascii)
		tbuf_append(out, text.data, text.len - 2);   /* the delimiter brings the CRLF */
	else
		footer_qp(out, text.data, text.len - 2);
	tbuf_free(&text);
	tbuf_append(out, close, len - (size_t)(close - m));
	return 1;
}

int dlv_footer_apply(const void *msg, size_t len, const char *footer, tbuf *out)
{
	const char *m = msg;
	char ct[FOOTER_FIELD_MAX], cte[64];
	footer_mime f;
	size_t hlen;
	int done;

	if (footer == NULL || footer[0] == '\0' || (hlen = footer_header_len(m, len)) == 0)
		return 0;
	memset(&f, 0, sizeof(f));
	if (footer_field(m, hlen, "Content-Type", ct, sizeof(ct)))
		footer_parse_ct(ct, &f);
	else
		snprintf(f.type, sizeof(f.type), "text/plain");
	if (footer_field(m, hlen, "Content-Transfer-Encoding", cte, sizeof(cte)))
		footer_trim_copy(f.cte, sizeof(f.cte), cte, strlen(cte), 1);
	if (strcmp(f.type, "text/plain") == 0 || f.type[0] == '\0')
		done = footer_single(m, len, &f, footer, out);
	else if (strcmp(f.type, "multipart/mixed") == 0)
		done = footer_mixed(m, len, hlen, &f, footer, out);
	else
		done = 0;
	if (!done)
		tlog(TLOG_DEBUG, "footer not added: %s message with encoding %s", f.type[0] ? f.type : "untyped",
		     f.cte[0] ? f.cte : "7bit");
	return done;
}
