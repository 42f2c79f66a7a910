/* imap_mutf7.c - the check of mailbox names against modified UTF-7 (RFC 3501 §5.1.3).
 * Names are stored as the client gives them (mUTF-7); this only refuses what no correct
 * client can send, so that every stored name decodes to one Unicode string. */
#include <string.h>
#include "imap_int.h"

/* The value of a modified-BASE64 digit ("," replaces "/"), or -1. */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

/* Check one shifted sequence s[0..n) (between "&" and "-", n > 0): whole UTF-16 units,
 * zero padding bits, valid surrogate pairs, no printable ASCII encoded. */
static int shifted_valid(const char *s, size_t n)
{
	uint32_t bits = 0;
	unsigned nbits = 0;
	unsigned high = 0;          /* a high surrogate waiting for its pair */

	for (size_t i = 0; i < n; i++) {
		int v = b64_value((unsigned char)s[i]);
		if (v < 0)
			return 0;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		unsigned u = (bits >> nbits) & 0xffff;
		bits &= (1u << nbits) - 1;
		if (high) {
			if (u < 0xdc00 || u > 0xdfff)
				return 0;
			high = 0;
		} else if (u >= 0xd800 && u <= 0xdbff) {
			high = u;
		} else if ((u >= 0xdc00 && u <= 0xdfff) || (u >= 0x20 && u <= 0x7e)) {
			return 0;
		}
	}
	return !high && nbits < 6 && bits == 0;
}

int imap_mutf7_valid(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c > 0x7e)
			return 0;
		if (c != '&')
			continue;
		const char *end = memchr(s + i + 1, '-', n - i - 1);
		if (end == NULL)
			return 0;
		size_t len = (size_t)(end - (s + i + 1));
		if (len > 0 && !shifted_valid(s + i + 1, len))
			return 0;
		i += len + 1;      /* "&-" is "&" */
	}
	return 1;
}
