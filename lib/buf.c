/* buf.c - the length-carrying byte buffer (tbuf) and small memory helpers. */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Allocation failure is not something a caller can answer; say why, then stop. */
static void tbuf_oom(size_t want)
{
	fprintf(stderr, "tern: out of memory (allocating %zu bytes)\n", want);
	abort();
}

void tbuf_init(tbuf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void tbuf_free(tbuf *b)
{
	free(b->data);
	tbuf_init(b);
}

void tbuf_reset(tbuf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

/* Grow by doubling so that n appends cost O(n) copies; cap always leaves room for
 * the terminating NUL. */
void tbuf_reserve(tbuf *b, size_t n)
{
	if (n > SIZE_MAX - b->len - 1)
		tbuf_oom(SIZE_MAX);
	size_t need = b->len + n + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	char *p = realloc(b->data, cap);
	if (!p)
		tbuf_oom(cap);
	p[b->len] = '\0';
	b->data = p;
	b->cap = cap;
}

void tbuf_append(tbuf *b, const void *p, size_t n)
{
	tbuf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void tbuf_append_str(tbuf *b, const char *s)
{
	tbuf_append(b, s, strlen(s));
}

void tbuf_append_char(tbuf *b, char c)
{
	tbuf_append(b, &c, 1);
}

void tbuf_appendf(tbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tbuf_vappendf(b, fmt, ap);
	va_end(ap);
}

/* Format straight into the spare room; if it did not fit, grow to the exact size and
 * format again. */
void tbuf_vappendf(tbuf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	tbuf_reserve(b, 0);
	va_copy(ap2, ap);
	int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		b->data[b->len] = '\0';
		return;     /* encoding error: append nothing */
	}
	if ((size_t)n >= b->cap - b->len) {
		tbuf_reserve(b, (size_t)n);
		va_copy(ap2, ap);
		n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
		va_end(ap2);
		if (n < 0 || (size_t)n >= b->cap - b->len) {
			b->data[b->len] = '\0';
			return;
		}
	}
	b->len += (size_t)n;
}

void tbuf_append_hex(tbuf *b, const void *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *s = p;
	tbuf_reserve(b, 2 * n);
	for (size_t i = 0; i < n; i++) {
		b->data[b->len++] = digits[s[i] >> 4];
		b->data[b->len++] = digits[s[i] & 15];
	}
	b->data[b->len] = '\0';
}

void tbuf_append_be32(tbuf *b, uint32_t v)
{
	uint8_t tmp[4];
	tern_be32_put(tmp, v);
	tbuf_append(b, tmp, sizeof(tmp));
}

void tbuf_append_be64(tbuf *b, uint64_t v)
{
	uint8_t tmp[8];
	tern_be64_put(tmp, v);
	tbuf_append(b, tmp, sizeof(tmp));
}

void tbuf_consume(tbuf *b, size_t n)
{
	if (n >= b->len) {
		tbuf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

void tbuf_truncate(tbuf *b, size_t n)
{
	if (n >= b->len)
		return;
	b->len = n;
	b->data[n] = '\0';
}

const char *tbuf_cstr(const tbuf *b)
{
	return b->data ? b->data : "";
}

char *tbuf_steal(tbuf *b)
{
	tbuf_reserve(b, 0);
	char *p = b->data;
	tbuf_init(b);
	return p;
}

uint32_t tern_be32_get(const void *p)
{
	const uint8_t *s = p;
	return (uint32_t)s[0] << 24 | (uint32_t)s[1] << 16 | (uint32_t)s[2] << 8 | s[3];
}

uint64_t tern_be64_get(const void *p)
{
	const uint8_t *s = p;
	return (uint64_t)tern_be32_get(s) << 32 | tern_be32_get(s + 4);
}

void tern_be32_put(void *p, uint32_t v)
{
	uint8_t *d = p;
	d[0] = (uint8_t)(v >> 24);
	d[1] = (uint8_t)(v >> 16);
	d[2] = (uint8_t)(v >> 8);
	d[3] = (uint8_t)v;
}

void tern_be64_put(void *p, uint64_t v)
{
	uint8_t *d = p;
	tern_be32_put(d, (uint32_t)(v >> 32));
	tern_be32_put(d + 4, (uint32_t)v);
}

void tern_hex(const void *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[s[i] >> 4];
		out[2 * i + 1] = digits[s[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly 2n hex digits, either case. */
int tern_unhex(const char *hex, void *out, size_t n)
{
	uint8_t *d = out;
	if (strlen(hex) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		d[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
