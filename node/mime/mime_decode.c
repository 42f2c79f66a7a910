/* mime_decode.c - the decoding SEARCH and FETCH BINARY need, done by GMime: RFC 2047
 * encoded words, transfer encodings (base64, quoted-printable, uuencode) and charset
 * conversion to UTF-8. Input is untrusted: unknown charsets and invalid bytes degrade to
 * GMime's 8-bit guess, never to an error or unbounded output. */
#include <gmime/gmime.h>
#include <string.h>
#include <strings.h>
#include "mime_int.h"

#define MD_CHUNK 65536

/* Unfold, then decode the encoded words; raw 8-bit text is taken as UTF-8 when valid,
 * else converted by GMime's charset guess. */
void mime_decode_header(const char *raw, size_t len, tbuf *out)
{
	tbuf unfolded = TBUF_INIT;
	char *dec;

	for (size_t i = 0; i < len; i++)
		if (raw[i] != '\r' && raw[i] != '\n' && raw[i] != '\0')
			tbuf_append_char(&unfolded, raw[i]);
	dec = g_mime_utils_header_decode_text(NULL, tbuf_cstr(&unfolded));
	if (dec != NULL) {
		tbuf_append_str(out, dec);
		g_free(dec);
	}
	tbuf_free(&unfolded);
}

/* GMime's encoding for a Content-Transfer-Encoding name; -1 when unknown. Identity
 * encodings (7bit, 8bit, binary, none) map to GMIME_CONTENT_ENCODING_DEFAULT. */
static int md_encoding(const char *encoding, GMimeContentEncoding *enc_r)
{
	if (encoding == NULL || encoding[0] == '\0' || strcasecmp(encoding, "7bit") == 0 ||
	    strcasecmp(encoding, "8bit") == 0 || strcasecmp(encoding, "binary") == 0) {
		*enc_r = GMIME_CONTENT_ENCODING_DEFAULT;
		return 0;
	}
	*enc_r = g_mime_content_encoding_from_string(encoding);
	switch (*enc_r) {
	case GMIME_CONTENT_ENCODING_BASE64:
	case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
	case GMIME_CONTENT_ENCODING_UUENCODE:
		return 0;
	default:
		return -1;
	}
}

/* Decode up to max output bytes (max 0 = all) in bounded chunks. */
static void md_transfer(GMimeContentEncoding enc, const char *in, size_t len, size_t max, tbuf *out)
{
	GMimeEncoding st;
	size_t start = out->len;

	if (enc == GMIME_CONTENT_ENCODING_DEFAULT) {
		tbuf_append(out, in, max && len > max ? max : len);
		return;
	}
	g_mime_encoding_init_decode(&st, enc);
	for (size_t off = 0; off < len;) {
		size_t n = len - off > MD_CHUNK ? MD_CHUNK : len - off;
		int last = off + n == len;
		tbuf_reserve(out, g_mime_encoding_outlen(&st, n) + 16);
		if (last)
			out->len += g_mime_encoding_flush(&st, in + off, n, out->data + out->len);
		else
			out->len += g_mime_encoding_step(&st, in + off, n, out->data + out->len);
		out->data[out->len] = '\0';
		off += n;
		if (max && out->len - start >= max)
			break;
	}
	if (max && out->len - start > max)
		tbuf_truncate(out, start + max);
}

int mime_decode_transfer(const char *encoding, const void *body, size_t len, tbuf *out)
{
	GMimeContentEncoding enc;

	if (md_encoding(encoding, &enc) < 0)
		return -1;
	md_transfer(enc, body, len, 0, out);
	return 0;
}

/* Cut at most max bytes of UTF-8 without splitting a character. */
static void md_utf8_cut(tbuf *out, size_t start, size_t max)
{
	size_t n = out->len - start;

	if (max == 0 || n <= max)
		return;
	n = max;
	while (n > 0 && ((unsigned char)out->data[start + n] & 0xC0) == 0x80)
		n--;
	tbuf_truncate(out, start + n);
}

/* Transfer decoding by part->encoding (an unknown one leaves the bytes as they are),
 * then charset to UTF-8: the given charset, else UTF-8 when the text is valid UTF-8,
 * else GMime's 8-bit guess. */
int mime_decode_text(const Tern__MimePart *part, const void *body, size_t len, const char *charset, size_t max,
		     tbuf *out)
{
	GMimeContentEncoding enc = GMIME_CONTENT_ENCODING_DEFAULT;
	tbuf raw = TBUF_INIT;
	size_t start = out->len;
	char *conv = NULL;

	if (part == NULL || md_encoding(part->encoding, &enc) < 0)
		enc = GMIME_CONTENT_ENCODING_DEFAULT;
	/* a character is at most 4 bytes in any charset we convert from */
	md_transfer(enc, body, len, max ? (max > SIZE_MAX / 4 ? 0 : max * 4) : 0, &raw);
	if (raw.len == 0) {
		tbuf_free(&raw);
		return 0;
	}
	if (charset && charset[0] && strcasecmp(charset, "utf-8") != 0 && strcasecmp(charset, "us-ascii") != 0) {
		iconv_t cd = g_mime_iconv_open("UTF-8", charset);
		if (cd != (iconv_t)-1) {
			conv = g_mime_iconv_strndup(cd, raw.data, raw.len);
			g_mime_iconv_close(cd);
		}
	}
	if (conv == NULL && g_utf8_validate(raw.data, (gssize)raw.len, NULL)) {
		tbuf_append(out, raw.data, raw.len);
	} else {
		if (conv == NULL)
			conv = g_mime_utils_decode_8bit(NULL, raw.data, raw.len);
		if (conv != NULL)
			tbuf_append_str(out, conv);
		g_free(conv);
	}
	tbuf_free(&raw);
	md_utf8_cut(out, start, max);
	return 0;
}
