/* store_keys.c - the one place where store keys are laid out (DESIGN.md §4). */
#include "store_keys.h"
#include <ctype.h>
#include <string.h>

/* Append s lower-cased: account names are case-insensitive, keys hold one spelling. */
static void append_lower(tbuf *k, const char *s)
{
	for (; *s; s++)
		tbuf_append_char(k, (char)tolower((unsigned char)*s));
}

static void text_key(tbuf *k, const char *kind, const char *a, const char *b)
{
	tbuf_reset(k);
	tbuf_append_str(k, kind);
	tbuf_append_char(k, '/');
	if (a)
		append_lower(k, a);
	if (b) {
		tbuf_append_char(k, '/');
		append_lower(k, b);
	}
}

void sk_domain(tbuf *k, const char *domain) { text_key(k, "domain", domain, NULL); }
void sk_domalias(tbuf *k, const char *alias) { text_key(k, "domalias", alias, NULL); }
void sk_user(tbuf *k, const char *domain, const char *name) { text_key(k, "user", domain, name); }
void sk_user_prefix(tbuf *k, const char *domain) { text_key(k, "user", domain, ""); }
void sk_addr(tbuf *k, const char *domain, const char *local) { text_key(k, "addr", domain, local); }
void sk_addr_prefix(tbuf *k, const char *domain) { text_key(k, "addr", domain, ""); }
void sk_group(tbuf *k, const char *domain, const char *name) { text_key(k, "group", domain, name); }
void sk_group_prefix(tbuf *k, const char *domain) { text_key(k, "group", domain, ""); }
void sk_alias(tbuf *k, const char *domain, const char *pattern)
{
	text_key(k, "alias", domain, pattern);
}
void sk_alias_prefix(tbuf *k, const char *domain) { text_key(k, "alias", domain, ""); }
void sk_ipgroup(tbuf *k, const char *name) { text_key(k, "ipgroup", name, NULL); }
void sk_node(tbuf *k, const char *name) { text_key(k, "node", name, NULL); }
void sk_resource(tbuf *k, const char *domain, const char *name)
{
	text_key(k, "resource", domain, name);
}
void sk_resource_prefix(tbuf *k, const char *domain) { text_key(k, "resource", domain, ""); }

const char *const SK_SHARED_PREFIXES[] = {
	"domain/", "domalias/", SK_USER_PREFIX, "userid/", "addr/", "group/", "alias/",
	"directory/", "resource/", SK_NODE_PREFIX, NULL,
};

int sk_config_shared(const void *k, size_t n)
{
	for (const char *const *p = SK_SHARED_PREFIXES; *p; p++) {
		size_t pn = strlen(*p);

		if (n > pn && memcmp(k, *p, pn) == 0)
			return 1;
	}
	return 0;
}

/* Settings keep their key as given: they are internal names, not user input. */
void sk_setting(tbuf *k, const char *key)
{
	tbuf_reset(k);
	tbuf_append_str(k, "setting/");
	tbuf_append_str(k, key);
}

void sk_userid(tbuf *k, const uint8_t id[16])
{
	tbuf_reset(k);
	tbuf_append_str(k, "userid/");
	tbuf_append(k, id, 16);
}

void sk_blobgc(tbuf *k, const uint8_t sha[32])
{
	tbuf_reset(k);
	tbuf_append_str(k, SK_BLOBGC_PREFIX);
	tbuf_append_hex(k, sha, 32);
}

int sk_blobgc_parse(const char *k, size_t n, uint8_t sha[32])
{
	size_t plen = strlen(SK_BLOBGC_PREFIX);
	char hex[65];

	if (n != plen + 64 || memcmp(k, SK_BLOBGC_PREFIX, plen) != 0)
		return -1;
	memcpy(hex, k + plen, 64);
	hex[64] = '\0';
	return tern_unhex(hex, sha, 32);
}

void sk_mbstate(tbuf *k, const uint8_t user[16])
{
	tbuf_reset(k);
	tbuf_append_str(k, SK_MBSTATE_PREFIX);
	tbuf_append_hex(k, user, 16);
}

void sk_migjob(tbuf *k, const uint8_t user[16])
{
	tbuf_reset(k);
	tbuf_append_str(k, SK_MIGJOB_PREFIX);
	tbuf_append_hex(k, user, 16);
}

int sk_user_hex_parse(const char *prefix, const char *k, size_t n, uint8_t user[16])
{
	size_t plen = strlen(prefix);
	char hex[33];

	if (n != plen + 32 || memcmp(k, prefix, plen) != 0)
		return -1;
	memcpy(hex, k + plen, 32);
	hex[32] = '\0';
	return tern_unhex(hex, user, 16);
}

void sk_mailbox(uint8_t out[SK_FOLDER_LEN], const uint8_t user[16])
{
	memcpy(out, user, 16);
	memset(out + 16, 0, 16);
}

void sk_folder(uint8_t out[SK_FOLDER_LEN], const uint8_t user[16], const uint8_t folder[16])
{
	memcpy(out, user, 16);
	memcpy(out + 16, folder, 16);
}

void sk_msg(uint8_t out[SK_MSG_LEN], const uint8_t user[16], const uint8_t folder[16], uint32_t uid)
{
	sk_folder(out, user, folder);
	tern_be32_put(out + 32, uid);
}

void sk_change(uint8_t out[SK_CHANGE_LEN], const uint8_t user[16], const uint8_t folder[16],
	       uint64_t modseq)
{
	sk_folder(out, user, folder);
	tern_be64_put(out + 32, modseq);
}

void sk_blob(uint8_t out[SK_BLOB_LEN], const uint8_t sha[32], uint32_t chunk)
{
	memcpy(out, sha, 32);
	tern_be32_put(out + 32, chunk);
}

void sk_blobref(uint8_t out[SK_BLOBREF_LEN], const uint8_t sha[32], const uint8_t user[16],
		const uint8_t folder[16], uint32_t uid)
{
	memcpy(out, sha, 32);
	memcpy(out + 32, user, 16);
	memcpy(out + 48, folder, 16);
	tern_be32_put(out + 64, uid);
}

int sk_prefix_end(const uint8_t *p, size_t n, uint8_t *out)
{
	memcpy(out, p, n);
	for (size_t i = n; i-- > 0;) {
		if (out[i] != 0xff) {
			out[i]++;
			return 0;
		}
		out[i] = 0;
	}
	return -1;
}

int sk_msg_parse(const void *k, size_t n, uint8_t user[16], uint8_t folder[16], uint32_t *uid)
{
	const uint8_t *p = k;

	if (n != SK_MSG_LEN)
		return -1;
	memcpy(user, p, 16);
	memcpy(folder, p + 16, 16);
	*uid = tern_be32_get(p + 32);
	return 0;
}

int sk_change_parse(const void *k, size_t n, uint8_t user[16], uint8_t folder[16], uint64_t *modseq)
{
	const uint8_t *p = k;

	if (n != SK_CHANGE_LEN)
		return -1;
	memcpy(user, p, 16);
	memcpy(folder, p + 16, 16);
	*modseq = tern_be64_get(p + 32);
	return 0;
}

int sk_blob_parse(const void *k, size_t n, uint8_t sha[32], uint32_t *chunk)
{
	const uint8_t *p = k;

	if (n != SK_BLOB_LEN)
		return -1;
	memcpy(sha, p, 32);
	*chunk = tern_be32_get(p + 32);
	return 0;
}

int sk_blobref_parse(const void *k, size_t n, uint8_t sha[32], uint8_t user[16],
		     uint8_t folder[16], uint32_t *uid)
{
	const uint8_t *p = k;

	if (n != SK_BLOBREF_LEN)
		return -1;
	memcpy(sha, p, 32);
	memcpy(user, p + 32, 16);
	memcpy(folder, p + 48, 16);
	*uid = tern_be32_get(p + 64);
	return 0;
}

void sk_dav_collection(uint8_t out[SK_DAV_COLL_LEN], const uint8_t owner[16], const uint8_t coll[16])
{
	memcpy(out, owner, 16);
	memcpy(out + 16, coll, 16);
}

/* Hrefs and UIDs are kept as given (case-sensitive, as in URLs and iCalendar). */
void sk_dav_object(tbuf *k, const uint8_t owner[16], const uint8_t coll[16], const char *href)
{
	tbuf_reset(k);
	tbuf_append(k, owner, 16);
	tbuf_append(k, coll, 16);
	tbuf_append_str(k, href);
}

void sk_dav_uid(tbuf *k, const uint8_t owner[16], const uint8_t coll[16], const char *uid)
{
	tbuf_reset(k);
	tbuf_append(k, owner, 16);
	tbuf_append(k, coll, 16);
	tbuf_append_char(k, '\0');
	tbuf_append_str(k, uid);
}

void sk_changelog(uint8_t out[SK_CHANGELOG_LEN], uint64_t epoch, uint64_t seq)
{
	tern_be64_put(out, epoch);
	tern_be64_put(out + 8, seq);
}

int sk_changelog_parse(const void *k, size_t n, uint64_t *epoch, uint64_t *seq)
{
	const uint8_t *p = k;

	if (n != SK_CHANGELOG_LEN)
		return -1;
	*epoch = tern_be64_get(p);
	*seq = tern_be64_get(p + 8);
	return 0;
}

const uint8_t SK_QUEUE_OWNER[SK_ID_LEN] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

void sk_queue(uint8_t out[SK_QUEUE_LEN], const uint8_t id[16])
{
	out[0] = SK_QUEUE_ENTRY;
	memcpy(out + 1, id, 16);
}

void sk_queue_index(uint8_t out[SK_QUEUE_INDEX_LEN], uint64_t next_try, const uint8_t id[16])
{
	out[0] = SK_QUEUE_INDEX;
	tern_be64_put(out + 1, next_try);
	memcpy(out + 9, id, 16);
}

void sk_queue_blobref(uint8_t out[SK_BLOBREF_LEN], const uint8_t sha[32], const uint8_t id[16])
{
	sk_blobref(out, sha, SK_QUEUE_OWNER, id, 0);
}

int sk_queue_parse(const void *k, size_t n, uint8_t id[16])
{
	const uint8_t *p = k;

	if (n != SK_QUEUE_LEN || p[0] != SK_QUEUE_ENTRY)
		return -1;
	memcpy(id, p + 1, 16);
	return 0;
}

int sk_queue_index_parse(const void *k, size_t n, uint64_t *next_try, uint8_t id[16])
{
	const uint8_t *p = k;

	if (n != SK_QUEUE_INDEX_LEN || p[0] != SK_QUEUE_INDEX)
		return -1;
	*next_try = tern_be64_get(p + 1);
	memcpy(id, p + 9, 16);
	return 0;
}
