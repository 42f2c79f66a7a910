/* util.c - clocks, ids, name rules, glob matching, IP items, small file helpers. */
#include "util.h"
#include "buf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

int64_t tern_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

int64_t tern_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tern_uuid_new(uint8_t id[16])
{
	uuid_generate_random(id);
}

void tern_uuid_str(const uint8_t id[16], char out[37])
{
	uuid_unparse_lower(id, out);
}

int tern_uuid_parse(const char *s, uint8_t id[16])
{
	return uuid_parse(s, id) == 0 ? 0 : -1;
}

void tern_lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static int is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Labels of [A-Za-z0-9-], 1..63 long, no '-' at either end; two labels or more. */
static int valid_domain_n(const char *s, size_t n)
{
	if (n == 0 || n > 253)
		return 0;
	unsigned labels = 0;
	size_t i = 0;
	while (i <= n) {
		size_t start = i;
		while (i < n && s[i] != '.') {
			if (!is_alnum(s[i]) && s[i] != '-')
				return 0;
			i++;
		}
		size_t len = i - start;
		if (len == 0 || len > 63 || s[start] == '-' || s[i - 1] == '-')
			return 0;
		labels++;
		i++;    /* past the dot, or past the end */
	}
	return labels >= 2;
}

/* The local-part rule, with extra allowed characters for alias patterns. */
static int valid_local_n(const char *s, size_t n, const char *extra)
{
	if (n == 0 || n > 64 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.' && i > 0 && s[i - 1] == '.')
			return 0;
		if (!is_alnum(c) && c != '.' && c != '_' && c != '-' && !(c && strchr(extra, c)))
			return 0;
	}
	return 1;
}

int tern_valid_domain(const char *s)
{
	return valid_domain_n(s, strlen(s));
}

int tern_valid_localpart(const char *s)
{
	return valid_local_n(s, strlen(s), "");
}

int tern_valid_alias_pattern(const char *s)
{
	return valid_local_n(s, strlen(s), "*?");
}

int tern_valid_address(const char *s)
{
	const char *at = strchr(s, '@');
	if (!at || strchr(at + 1, '@'))
		return 0;
	return valid_local_n(s, (size_t)(at - s), "") && tern_valid_domain(at + 1);
}

int tern_split_address(const char *addr, char *local, size_t local_n, char *domain, size_t domain_n)
{
	if (!tern_valid_address(addr))
		return -1;
	const char *at = strchr(addr, '@');
	size_t ln = (size_t)(at - addr), dn = strlen(at + 1);
	if (ln >= local_n || dn >= domain_n)
		return -1;
	memcpy(local, addr, ln);
	local[ln] = '\0';
	memcpy(domain, at + 1, dn + 1);
	tern_lower(local);
	tern_lower(domain);
	return 0;
}

static char lc(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Iterative matcher keeping only the last '*' as a backtrack point: a later '*' makes
 * earlier ones irrelevant, so the work is at most strlen(pattern) * strlen(text) steps,
 * never exponential. */
int tern_glob_match(const char *pattern, const char *text)
{
	const char *p = pattern, *t = text;
	const char *star = NULL, *star_t = NULL;

	while (*t) {
		if (*p == '*') {
			while (*p == '*')
				p++;
			if (!*p)
				return 1;
			star = p;
			star_t = t;
		} else if (*p && (*p == '?' || lc(*p) == lc(*t))) {
			p++;
			t++;
		} else if (star) {
			p = star;
			t = ++star_t;
		} else {
			return 0;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

/* A numeric IPv4 or IPv6 address; fills 16 bytes (IPv4 uses the first 4). */
static int ip_parse(const char *s, int *family, uint8_t out[16])
{
	memset(out, 0, 16);
	if (inet_pton(AF_INET, s, out) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return -1;
}

/* Copy s[0..n) without surrounding blanks into out. */
static int trim_copy(const char *s, size_t n, char *out, size_t out_n)
{
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= out_n)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

/* Turn a prefix length or a contiguous dotted mask into a bit count. */
static int prefix_bits(const char *s, int family, unsigned *bits)
{
	unsigned max = family == AF_INET ? 32 : 128;
	if (strchr(s, '.')) {
		uint8_t m[16];
		int fam;
		if (family != AF_INET || ip_parse(s, &fam, m) < 0 || fam != AF_INET)
			return -1;
		uint32_t v = tern_be32_get(m);
		unsigned n = 0;
		while (n < 32 && (v & (0x80000000u >> n)))
			n++;
		if (n < 32 && (v << n) != 0)
			return -1;    /* not contiguous */
		*bits = n;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-' || s[0] == '+')
		return -1;
	*bits = (unsigned)v;
	return 0;
}

int tern_ipitem_parse(const char *text, tern_ipitem *item)
{
	char a[64], b[64];
	const char *sep;
	int fa, fb;

	memset(item, 0, sizeof(*item));
	if ((sep = strchr(text, '-')) != NULL) {
		if (trim_copy(text, (size_t)(sep - text), a, sizeof(a)) < 0 ||
		    trim_copy(sep + 1, strlen(sep + 1), b, sizeof(b)) < 0 ||
		    ip_parse(a, &fa, item->lo) < 0 || ip_parse(b, &fb, item->hi) < 0 || fa != fb)
			return -1;
		if (memcmp(item->lo, item->hi, 16) > 0)
			return -1;
		item->family = fa;
		return 0;
	}
	if ((sep = strchr(text, '/')) != NULL) {
		unsigned bits;
		if (trim_copy(text, (size_t)(sep - text), a, sizeof(a)) < 0 ||
		    trim_copy(sep + 1, strlen(sep + 1), b, sizeof(b)) < 0 ||
		    ip_parse(a, &fa, item->lo) < 0 || prefix_bits(b, fa, &bits) < 0)
			return -1;
		unsigned nbytes = fa == AF_INET ? 4 : 16;
		for (unsigned i = 0; i < nbytes; i++) {
			unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
			uint8_t mask = (uint8_t)(keep ? 0xff << (8 - keep) : 0);
			item->lo[i] &= mask;
			item->hi[i] = (uint8_t)(item->lo[i] | (uint8_t)~mask);
		}
		item->family = fa;
		return 0;
	}
	if (trim_copy(text, strlen(text), a, sizeof(a)) < 0 || ip_parse(a, &fa, item->lo) < 0)
		return -1;
	memcpy(item->hi, item->lo, 16);
	item->family = fa;
	return 0;
}

/* IPv4-mapped IPv6 peers (::ffff:a.b.c.d) are IPv4 peers; an IPv4 peer also matches an
 * item written in the mapped IPv6 form. */
int tern_ipitem_match(const tern_ipitem *item, const struct sockaddr *addr)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	uint8_t v4[16] = { 0 }, v6[16];
	int has4 = 0, has6 = 0;

	if (!addr)
		return 0;
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
		memcpy(v4, &sin->sin_addr, 4);
		memcpy(v6, mapped, 12);
		memcpy(v6 + 12, &sin->sin_addr, 4);
		has4 = has6 = 1;
	} else if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)addr;
		memcpy(v6, &sin6->sin6_addr, 16);
		has6 = 1;
		if (memcmp(v6, mapped, 12) == 0) {
			memcpy(v4, v6 + 12, 4);
			has4 = 1;
		}
	} else {
		return 0;
	}
	if (item->family == AF_INET && has4)
		return memcmp(v4, item->lo, 4) >= 0 && memcmp(v4, item->hi, 4) <= 0;
	if (item->family == AF_INET6 && has6)
		return memcmp(v6, item->lo, 16) >= 0 && memcmp(v6, item->hi, 16) <= 0;
	return 0;
}

/* First line, without "\n" or "\r\n"; lines are bounded (64 KiB) so that a wrong path
 * (a huge file) cannot exhaust memory. */
char *tern_read_first_line(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	tbuf line = TBUF_INIT;
	int c;
	while ((c = getc(f)) != EOF && c != '\n') {
		if (line.len >= 65536) {
			fclose(f);
			tbuf_free(&line);
			errno = EFBIG;
			return NULL;
		}
		tbuf_append_char(&line, (char)c);
	}
	int err = ferror(f);
	fclose(f);
	if (err) {
		tbuf_free(&line);
		errno = EIO;
		return NULL;
	}
	if (line.len && line.data[line.len - 1] == '\r')
		tbuf_truncate(&line, line.len - 1);
	return tbuf_steal(&line);
}

void tern_random(void *p, size_t n)
{
	while (n > 0) {
		int chunk = n > 1 << 20 ? 1 << 20 : (int)n;
		if (RAND_bytes(p, chunk) != 1) {
			fprintf(stderr, "tern: the random number generator failed\n");
			abort();
		}
		p = (uint8_t *)p + chunk;
		n -= (size_t)chunk;
	}
}
