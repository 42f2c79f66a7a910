/* store_keys.h - every key layout of the store (DESIGN.md §4), encoded in store_keys.c.
 * Mailbox keys are big-endian binary so that range scans come out in numeric order;
 * account keys are "kind/<domain>/<name>" text with names in lower case. */
#ifndef TERN_STORE_KEYS_H
#define TERN_STORE_KEYS_H
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

#define SK_ID_LEN 16
#define SK_SHA_LEN 32
#define SK_FOLDER_LEN (2 * SK_ID_LEN)                 /* user, folder */
#define SK_MSG_LEN (2 * SK_ID_LEN + 4)                /* user, folder, uid */
#define SK_CHANGE_LEN (2 * SK_ID_LEN + 8)             /* user, folder, modseq */
#define SK_BLOB_LEN (SK_SHA_LEN + 4)                  /* sha256, chunk */
#define SK_BLOBREF_LEN (SK_SHA_LEN + 2 * SK_ID_LEN + 4) /* sha256, user, folder, uid */
#define SK_QUEUE_LEN (1 + SK_ID_LEN)                  /* 'q', queue id */
#define SK_QUEUE_INDEX_LEN (1 + 8 + SK_ID_LEN)        /* 't', next try be64, queue id */
#define SK_CHANGELOG_LEN (8 + 8)                      /* epoch be64, seq be64 */

/* ---- config CF (text keys; names are lower-cased by the encoder) ---- */
void sk_domain(tbuf *k, const char *domain);
void sk_domalias(tbuf *k, const char *alias);
void sk_user(tbuf *k, const char *domain, const char *name);
/* Prefix of every user (or group, alias, addr) key of a domain: "user/<d>/". */
void sk_user_prefix(tbuf *k, const char *domain);
void sk_userid(tbuf *k, const uint8_t id[16]);
void sk_addr(tbuf *k, const char *domain, const char *local);
void sk_addr_prefix(tbuf *k, const char *domain);
void sk_group(tbuf *k, const char *domain, const char *name);
void sk_group_prefix(tbuf *k, const char *domain);
void sk_alias(tbuf *k, const char *domain, const char *pattern);
void sk_alias_prefix(tbuf *k, const char *domain);
void sk_ipgroup(tbuf *k, const char *name);
void sk_setting(tbuf *k, const char *key);
void sk_blobgc(tbuf *k, const uint8_t sha[32]);
#define SK_FORMAT "format"
#define SK_DOMAIN_PREFIX "domain/"
#define SK_IPGROUP_PREFIX "ipgroup/"
#define SK_BLOBGC_PREFIX "blobgc/"
#define SK_USER_PREFIX "user/"
#define SK_NODE_PREFIX "node/"
#define SK_REPL_STATE "repl/state"
#define SK_CLUSTER_SELF "cluster/self"
#define SK_CLUSTER_CURVE "cluster/curve"
#define SK_MBSTATE_PREFIX "mbstate/"
#define SK_MIGJOB_PREFIX "migrate/job/"
/* "mbstate/<user-id hex>" (MailboxState) and "migrate/job/<user-id hex>" (MigrateJob):
 * node-local rows of mailbox migrations. */
void sk_mbstate(tbuf *k, const uint8_t user[16]);
void sk_migjob(tbuf *k, const uint8_t user[16]);
/* The user id of such a key (prefix: SK_MBSTATE_PREFIX or SK_MIGJOB_PREFIX); 0 ok, -1. */
int sk_user_hex_parse(const char *prefix, const char *k, size_t n, uint8_t user[16]);
/* "node/<name>": a node of the distributed domain. */
void sk_node(tbuf *k, const char *name);
/* "resource/<d>/<name>": a room or piece of equipment; prefix "resource/<d>/". */
void sk_resource(tbuf *k, const char *domain, const char *name);
void sk_resource_prefix(tbuf *k, const char *domain);
/* The prefixes of the shared (replicated) config rows, DESIGN.md §5; NULL-terminated. */
extern const char *const SK_SHARED_PREFIXES[];
/* 1 when config key k (n bytes) is a shared row. */
int sk_config_shared(const void *k, size_t n);
/* The sha256 of a "blobgc/<hex>" key; 0 ok, -1 when malformed. */
int sk_blobgc_parse(const char *k, size_t n, uint8_t sha[32]);

/* ---- mailbox CFs (binary, big-endian) ---- */
void sk_mailbox(uint8_t out[SK_FOLDER_LEN], const uint8_t user[16]);
void sk_folder(uint8_t out[SK_FOLDER_LEN], const uint8_t user[16], const uint8_t folder[16]);
void sk_msg(uint8_t out[SK_MSG_LEN], const uint8_t user[16], const uint8_t folder[16], uint32_t uid);
void sk_change(uint8_t out[SK_CHANGE_LEN], const uint8_t user[16], const uint8_t folder[16],
	       uint64_t modseq);
void sk_blob(uint8_t out[SK_BLOB_LEN], const uint8_t sha[32], uint32_t chunk);
void sk_blobref(uint8_t out[SK_BLOBREF_LEN], const uint8_t sha[32], const uint8_t user[16],
		const uint8_t folder[16], uint32_t uid);
/* The first key after every key that starts with prefix p (n bytes): p + 1 as a
 * big-endian number. -1 when p is all 0xff (no such key). */
int sk_prefix_end(const uint8_t *p, size_t n, uint8_t *out);

/* ---- dav CF (binary) ----
 * <owner><collection-id> (32 bytes) holds the DavCollection, <owner><collection-id><href>
 * a DavObject, and <owner><collection-id>\0<uid> the href of the object with that UID
 * (the per-collection UID index: an href never starts with a NUL byte). */
#define SK_DAV_COLL_LEN (2 * SK_ID_LEN)
void sk_dav_collection(uint8_t out[SK_DAV_COLL_LEN], const uint8_t owner[16], const uint8_t coll[16]);
void sk_dav_object(tbuf *k, const uint8_t owner[16], const uint8_t coll[16], const char *href);
void sk_dav_uid(tbuf *k, const uint8_t owner[16], const uint8_t coll[16], const char *uid);

/* ---- changelog CF: <epoch be64><seq be64> -> ChangeRecord ---- */
void sk_changelog(uint8_t out[SK_CHANGELOG_LEN], uint64_t epoch, uint64_t seq);
int sk_changelog_parse(const void *k, size_t n, uint64_t *epoch, uint64_t *seq);

/* ---- queue CF (binary) ----
 * Every key starts with a one-byte type, so entries and index rows never collide and a
 * prefix scan sees one kind only: SK_QUEUE_ENTRY <queue-id> holds the QueueEntry,
 * SK_QUEUE_INDEX <next-try be64><queue-id> (empty value) orders the entries by next try.
 * The body of a queue entry is referenced by a blobref row <sha256><SK_QUEUE_OWNER>
 * <queue-id><uid 0>: the owner is the all-ones UUID, which tern_uuid_new() (random,
 * version 4) never makes, so it cannot clash with a user's mailbox references. */
#define SK_QUEUE_ENTRY 'q'
#define SK_QUEUE_INDEX 't'
extern const uint8_t SK_QUEUE_OWNER[SK_ID_LEN];
void sk_queue(uint8_t out[SK_QUEUE_LEN], const uint8_t id[16]);
void sk_queue_index(uint8_t out[SK_QUEUE_INDEX_LEN], uint64_t next_try, const uint8_t id[16]);
void sk_queue_blobref(uint8_t out[SK_BLOBREF_LEN], const uint8_t sha[32], const uint8_t id[16]);

/* Decoders: 0 ok, -1 when the key has the wrong length. */
int sk_msg_parse(const void *k, size_t n, uint8_t user[16], uint8_t folder[16], uint32_t *uid);
int sk_change_parse(const void *k, size_t n, uint8_t user[16], uint8_t folder[16], uint64_t *modseq);
int sk_blob_parse(const void *k, size_t n, uint8_t sha[32], uint32_t *chunk);
int sk_blobref_parse(const void *k, size_t n, uint8_t sha[32], uint8_t user[16],
		     uint8_t folder[16], uint32_t *uid);
int sk_queue_parse(const void *k, size_t n, uint8_t id[16]);
int sk_queue_index_parse(const void *k, size_t n, uint64_t *next_try, uint8_t id[16]);

#endif
