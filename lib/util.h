/* util.h - small things every module needs: time, ids, names and addresses, IP items. */
#ifndef TERN_UTIL_H
#define TERN_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Wall clock, unix seconds; monotonic milliseconds. */
int64_t tern_now(void);
int64_t tern_mono_ms(void);

/* A fresh random UUID (16 bytes) and its text form (36 chars + NUL). */
void tern_uuid_new(uint8_t id[16]);
void tern_uuid_str(const uint8_t id[16], char out[37]);
int tern_uuid_parse(const char *s, uint8_t id[16]);

/* Lower-case ASCII in place / into out (size n). */
void tern_lower(char *s);

/* Name rules. Each returns 1 when valid.
 * domain: RFC 1035 host name, labels 1..63 of [A-Za-z0-9-] not starting or ending
 *   with '-', at least two labels, at most 253 chars.
 * local part: a user, group or address name: [A-Za-z0-9._-], 1..64 chars, no leading,
 *   trailing or double dot (ASCII only, no diacritics - guide ch. 8).
 * alias pattern: as local part plus '*' and '?' (guide ch. 12.3).
 * address: LOCAL@DOMAIN with the two rules above. */
int tern_valid_domain(const char *s);
int tern_valid_localpart(const char *s);
int tern_valid_alias_pattern(const char *s);
int tern_valid_address(const char *s);
/* Split "local@domain" into lower-cased parts. 0 ok, -1 if not an address. */
int tern_split_address(const char *addr, char *local, size_t local_n, char *domain, size_t domain_n);

/* Glob match for alias patterns: '*' any run (also empty), '?' exactly one character;
 * case-insensitive. 1 on match. */
int tern_glob_match(const char *pattern, const char *text);

/* IP address group items (guide ch. 19): "HOST" (an address), "A-B" (a range),
 * "NET/BITS" or "NET/MASK". IPv4 and IPv6. */
typedef struct tern_ipitem {
	int family;           /* AF_INET or AF_INET6 */
	uint8_t lo[16], hi[16]; /* inclusive range, network byte order */
} tern_ipitem;
/* Parse an item text. 0 ok, -1 on bad syntax. */
int tern_ipitem_parse(const char *text, tern_ipitem *item);
int tern_ipitem_match(const tern_ipitem *item, const struct sockaddr *addr);

/* Read the first line of a file (without its newline) into a malloc'd string; used for
 * password files. NULL on error, with errno set. */
char *tern_read_first_line(const char *path);

/* Secure random bytes (OpenSSL RAND_bytes); aborts if the RNG fails. */
void tern_random(void *p, size_t n);

#endif
