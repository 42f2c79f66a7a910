/* buf.h - the one length-carrying byte buffer of Tern.
 * A tbuf owns its memory; data is always NUL-terminated after len so that it can be
 * handed to C string functions, but it may hold NULs. */
#ifndef TERN_BUF_H
#define TERN_BUF_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tbuf {
	char *data;     /* NULL until the first append; see tbuf_cstr() */
	size_t len;
	size_t cap;
} tbuf;

#define TBUF_INIT { NULL, 0, 0 }

void tbuf_init(tbuf *b);
/* Release the memory; the buffer is empty and reusable afterwards. */
void tbuf_free(tbuf *b);
/* Keep the memory, forget the contents. */
void tbuf_reset(tbuf *b);
/* Make room for n more bytes. Aborts on out-of-memory (start-up style: allocation
 * failure is not a protocol error). */
void tbuf_reserve(tbuf *b, size_t n);
void tbuf_append(tbuf *b, const void *p, size_t n);
void tbuf_append_str(tbuf *b, const char *s);
void tbuf_append_char(tbuf *b, char c);
void tbuf_appendf(tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tbuf_vappendf(tbuf *b, const char *fmt, va_list ap);
void tbuf_append_hex(tbuf *b, const void *p, size_t n);
void tbuf_append_be32(tbuf *b, uint32_t v);
void tbuf_append_be64(tbuf *b, uint64_t v);
/* Drop the first n bytes (n <= len). */
void tbuf_consume(tbuf *b, size_t n);
/* Cut to n bytes (n <= len). */
void tbuf_truncate(tbuf *b, size_t n);
/* Always a valid NUL-terminated string, "" for an empty buffer. */
const char *tbuf_cstr(const tbuf *b);
/* Hand the memory to the caller (NUL-terminated, free() it); the buffer is empty after. */
char *tbuf_steal(tbuf *b);

/* Small helpers on plain memory that every module needs. */
uint32_t tern_be32_get(const void *p);
uint64_t tern_be64_get(const void *p);
void tern_be32_put(void *p, uint32_t v);
void tern_be64_put(void *p, uint64_t v);
void tern_hex(const void *p, size_t n, char *out /* 2n+1 */);
/* Decode hex; 0 ok, -1 on bad input or wrong length. */
int tern_unhex(const char *hex, void *out, size_t n);

#endif
