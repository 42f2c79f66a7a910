/* store.h - the node store: one RocksDB database under DATA/db (DESIGN.md §4).
 * The only public header of store/; the only module that includes rocksdb/c.h.
 *
 * Records are the protobuf messages of proto/records.proto (Tern__Domain, Tern__User, ...).
 * Getters return freshly unpacked records that the caller frees with store_free_record()
 * or the protobuf-c free_unpacked function of the type.
 *
 * Reads are synchronous point lookups or short scans, safe from any thread.
 * Writes are asynchronous: every change is one WriteBatch, handed to the commit threads,
 * written with sync=1 (concurrent batches share one WAL fsync: group commit), and the
 * caller's callback runs once the batch is durable - on the I/O thread named in the
 * store_cb, or on the commit thread when that is NULL. A NULL fn makes the call block
 * until durable (for worker threads, tools and tests; never from an I/O thread).
 *
 * Account changes (domains, users, groups, aliases, IP groups, settings) are validated
 * and applied one at a time in submission order, so that checks such as "no duplicate
 * user" always see every earlier change. Mailbox changes take a per-mailbox lock only
 * while UIDs and modseqs are allocated and the batch is queued; UIDs strictly increase.
 * Watchers are notified after the batch is durable, in commit order. */
#ifndef TERN_STORE_H
#define TERN_STORE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "records.pb-c.h"
#include "tern.h"

#define STORE_FORMAT_VERSION 1

/* Error codes (negative); map to HTTP statuses in the admin API. */
enum {
	STORE_OK = 0,
	STORE_ENOTFOUND = -1,   /* no such domain/user/folder/message */
	STORE_EEXISTS = -2,     /* duplicate name or address */
	STORE_EINVAL = -3,      /* bad name, bad value, out of range */
	STORE_EREFUSED = -4,    /* not allowed now: primary domain, domain not empty, user limit */
	STORE_EQUOTA = -5,      /* over storage or item quota */
	STORE_EDISK = -6,       /* free disk below the hard limit: refuse new data, try later */
	STORE_EIO = -7,         /* RocksDB or internal error */
	STORE_ECONFLICT = -8,   /* a precondition failed: If-Match / If-None-Match (HTTP 412) */
};
const char *store_strerror(int rc);

typedef struct store store;

typedef struct store_options {
	const char *path;              /* DATA/db */
	uint64_t wal_max_bytes;        /* max_total_wal_size */
	uint64_t cache_bytes;
	unsigned commit_threads;       /* 1..4 */
	int64_t blob_grace;            /* seconds before an unreferenced blob is deleted */
	int64_t sweep_interval;        /* seconds between sweeper runs; 0 = no sweeper thread */
	uint64_t disk_soft_limit;      /* bytes of free disk: warn below */
	uint64_t disk_hard_limit;      /* bytes of free disk: refuse new mail below */
	int64_t disk_check_interval;   /* seconds; 0 = no watchdog thread */
} store_options;

void store_options_default(store_options *o);
/* Open or create the database with every column family, check the on-disk format
 * (refuse a newer one), create the "Local clients" IP group on a new store, start the
 * commit threads, the sweeper and the disk watchdog. -1 with *error_r (malloc'd). */
int store_open(const store_options *opt, store **st_r, char **error_r);
/* Finish queued commits, stop the threads, close. */
void store_close(store **st);
/* 1 when the database was created by this open (an empty data dir). */
int store_is_new(const store *st);

/* ---- completion ---- */

typedef struct store_result {
	int rc;                  /* STORE_OK or an error code */
	const char *error;       /* one-line message for rc != 0 (valid during the callback) */
	uint8_t id[16];          /* new user/folder id */
	uint32_t uid;            /* appended message: its UID */
	uint32_t uidvalidity;
	uint64_t modseq;         /* modseq of the change */
	const int *rcpt_rc;      /* store_deliver: one code per recipient */
	char etag[48];           /* store_dav_put: the new object's ETag (without quotes) */
} store_result;

typedef struct store_cb {
	void (*fn)(const store_result *res, void *arg);
	void *arg;
	tern_io *io;             /* run fn there; NULL = on the commit thread */
} store_cb;
/* For the blocking form: STORE_SYNC(&res) fills res (error copied into res_error). */
typedef struct store_sync_result {
	store_result res;
	char error[256];
} store_sync_result;
#define STORE_SYNC ((store_cb){ NULL, NULL, NULL })

/* ---- accounts (config CF) ----
 * Names are case-insensitive: keys hold them in lower case, records keep the spelling
 * given. Each writer validates syntax (util.h rules), existence and uniqueness and
 * either applies the whole change or nothing. In the blocking form (cb.fn NULL) the
 * return value is the result code and *res_r (if not NULL) receives id/error. */

int store_domain_get(store *st, const char *name, Tern__Domain **d_r);
/* Which local domain serves `name` (the domain itself or one of its aliases)? */
int store_domain_resolve(store *st, const char *name, char *domain_r, size_t n);
int store_domain_list(store *st, Tern__Domain ***list_r, size_t *n_r);
/* The first domain becomes primary; domain aliases must not clash with domains. */
int store_domain_add(store *st, const Tern__Domain *d, store_cb cb, store_sync_result *res_r);
/* Replace the settings of an existing domain (name, primary and created are kept). */
int store_domain_update(store *st, const Tern__Domain *d, store_cb cb, store_sync_result *res_r);
/* Refused for the primary domain and while users, groups or aliases exist. */
int store_domain_remove(store *st, const char *name, store_cb cb, store_sync_result *res_r);
int store_domain_set_primary(store *st, const char *name, store_cb cb, store_sync_result *res_r);
/* Move every account of the domain to the new name; the old name becomes a domain alias. */
int store_domain_rename(store *st, const char *name, const char *new_name, store_cb cb,
			store_sync_result *res_r);
unsigned store_domain_user_count(store *st, const char *domain);

int store_user_get(store *st, const char *domain, const char *name, Tern__User **u_r);
int store_user_get_by_id(store *st, const uint8_t id[16], Tern__User **u_r);
/* By full address: the user's name or one of its extra addresses, in the domain or one
 * of its aliases. */
int store_user_find(store *st, const char *address, Tern__User **u_r);
int store_user_list(store *st, const char *domain, Tern__User ***list_r, size_t *n_r);
/* u->id is made by the store when empty. Checks domain exists, user limit, name and
 * addresses unique in the domain. Creates the mailbox record and INBOX. */
int store_user_add(store *st, const Tern__User *u, store_cb cb, store_sync_result *res_r);
int store_user_update(store *st, const Tern__User *u, store_cb cb, store_sync_result *res_r);
/* Delete the account and its whole mailbox key range (folders, messages, changes, blob
 * references; blobs go to the sweeper). */
int store_user_remove(store *st, const char *domain, const char *name, store_cb cb,
		      store_sync_result *res_r);

int store_group_get(store *st, const char *domain, const char *name, Tern__Group **g_r);
/* A group by one of its addresses (local@domain), or STORE_ENOTFOUND. */
int store_group_find(store *st, const char *address, Tern__Group **g_r);
int store_group_list(store *st, const char *domain, Tern__Group ***list_r, size_t *n_r);
int store_group_add(store *st, const Tern__Group *g, store_cb cb, store_sync_result *res_r);
int store_group_update(store *st, const Tern__Group *g, store_cb cb, store_sync_result *res_r);
int store_group_remove(store *st, const char *domain, const char *name, store_cb cb,
		       store_sync_result *res_r);

/* One entry of a domain's Global Address List. */
typedef struct store_gal_entry {
	char *name;                     /* user or group name */
	char *address;                  /* user: name@domain; group: its first address@domain */
	char *full_name;                /* user: full name; group: its name */
	int is_group;
} store_gal_entry;
/* The GAL of a domain (guide ch. 10): users with a full name and publish_in_gal, groups
 * with publish_in_gal and at least one address; sorted by address. Free with
 * store_gal_free. STORE_OK or a store error. */
int store_gal_list(store *st, const char *domain, store_gal_entry **list_r, size_t *n_r);
void store_gal_free(store_gal_entry **list, size_t n);

int store_alias_list(store *st, const char *domain, Tern__Alias ***list_r, size_t *n_r);
/* Add one target to alias `pattern` in `domain` (creating the alias). Adding a target it
 * already has is STORE_EEXISTS. */
int store_alias_add(store *st, const char *domain, const char *pattern, const char *target,
		    const char *description, store_cb cb, store_sync_result *res_r);
/* Remove one target, or the whole alias when target is NULL. */
int store_alias_remove(store *st, const char *domain, const char *pattern, const char *target,
		       store_cb cb, store_sync_result *res_r);

int store_ipgroup_get(store *st, const char *name, Tern__IpGroup **g_r);
int store_ipgroup_list(store *st, Tern__IpGroup ***list_r, size_t *n_r);
/* Add one item ("10.0.0.0/8", "1.2.3.4-1.2.3.9", "1.2.3.4", or "group:NAME") to a group,
 * creating the group. */
int store_ipgroup_add(store *st, const char *name, const char *item, const char *description,
		      store_cb cb, store_sync_result *res_r);
/* Remove one item, or the whole group when item is NULL. */
int store_ipgroup_remove(store *st, const char *name, const char *item, store_cb cb,
			 store_sync_result *res_r);
/* 1 when addr is in the group (nested groups followed, loops cut), 0 when not or when
 * the group does not exist. */
int store_ipgroup_match(store *st, const char *name, const struct sockaddr *addr);

/* Free-form node settings (config CF "setting/<key>"), e.g. the node's name. */
int store_setting_get(store *st, const char *key, char **value_r);
int store_setting_put(store *st, const char *key, const char *value, store_cb cb,
		      store_sync_result *res_r);

/* Directory mapping of a domain (config CF "directory/<domain>", DirectoryConfig). The
 * store keeps bind_password as the bytes it is given (node/directory encrypts it).
 * put: the domain must exist; replaces the whole record. stamp: update only the two
 * sync stamps of an existing record (the sync loop; never undoes an admin's put).
 * remove: STORE_ENOTFOUND when the domain has no mapping. */
int store_directory_get(store *st, const char *domain, Tern__DirectoryConfig **c_r);
int store_directory_list(store *st, Tern__DirectoryConfig ***list_r, size_t *n_r);
int store_directory_put(store *st, const Tern__DirectoryConfig *c, store_cb cb,
			store_sync_result *res_r);
int store_directory_stamp(store *st, const char *domain, uint64_t last_poll_stamp,
			  uint64_t last_reconcile, store_cb cb, store_sync_result *res_r);
int store_directory_remove(store *st, const char *domain, store_cb cb, store_sync_result *res_r);

/* ---- distributed domain: nodes, home nodes, replication (DESIGN.md §5) ----
 * The distributed-domain state is the set of SHARED config rows: domain/, domalias/,
 * user/, userid/, addr/, group/, alias/, directory/, resource/, node/. Every other
 * config row (setting/, cluster/, repl/, ipgroup/, blobgc/, format, ...) is node-local.
 *
 * Modes (store_repl_set_mode):
 *  OFF     standalone: nothing is logged.
 *  MASTER  every account change that writes shared rows also writes, in the same batch, a
 *          ChangeRecord (epoch, seq) into the changelog CF listing those rows (puts with
 *          their values, deletes); seq increases by one per change in commit order and
 *          "repl/state" holds the head. Watchers (store_repl_watch) run after each.
 *  SLAVE   account changes that would write shared rows are refused with STORE_EREFUSED
 *          and the refusal text given (e.g. "distributed-domain settings are changed on
 *          the master NODE (HOST:PORT)"); only store_repl_apply* change them.
 * Node-local rows (settings, IP groups, ...) stay writable in every mode.
 *
 * Mailboxes follow homes: a user whose home is another node (User.home != "" and != this
 * node's name) has no mailbox here; whenever a user record is written (admin change or
 * replicated) the same batch creates the mailbox and INBOX when the home is this node
 * and there is none, and deletes an EMPTY mailbox when the home moved away. A home change
 * of a user whose mailbox here holds messages is refused (STORE_EREFUSED, "a mailbox with
 * data moves by migration"). */
typedef enum { STORE_REPL_OFF = 0, STORE_REPL_MASTER = 1, STORE_REPL_SLAVE = 2 } store_repl_mode;

/* 1 when the config key is a shared (replicated) row. */
int store_repl_key_is_shared(const void *key, size_t n);
/* Switch mode (any thread; takes effect for jobs not yet applied). refusal: the SLAVE
 * refusal text (copied). MASTER continues the epoch in "repl/state", or starts epoch
 * `new_epoch` when it is not 0 (seq restarts at 0). */
int store_repl_set_mode(store *st, store_repl_mode mode, uint64_t new_epoch, const char *refusal);
store_repl_mode store_repl_get_mode(store *st);
/* This node's name, for "mailboxes follow homes" (set once at start, before writes). */
void store_set_node_name(store *st, const char *name);
const char *store_node_name(const store *st);
/* "repl/state": master: head epoch and last seq; slave: last applied. 0s when none. */
int store_repl_state(store *st, uint64_t *epoch_r, uint64_t *seq_r);
/* Master: the records of `epoch` with seq > after, oldest first, at most max (free each
 * with store_free_record, the array with free()). STORE_ENOTFOUND when the epoch is not
 * the current one or records after `after` were compacted away: send a snapshot. */
int store_repl_read(store *st, uint64_t epoch, uint64_t after, size_t max,
		    Tern__ChangeRecord ***list_r, size_t *n_r);
/* Master: delete change records older than the newest `keep`. */
int store_repl_compact(store *st, uint64_t keep);
/* Master: every shared row as one ChangeRecord (snapshot = true, ops are puts) with the
 * head (epoch, seq) it is consistent with (taken on the config thread, between changes). */
int store_repl_snapshot(store *st, Tern__ChangeRecord **snap_r);
/* Slave: apply one record in one batch with the new "repl/state". A record of the
 * applied epoch with seq <= applied is ignored (STORE_OK, nothing written: a replay);
 * a gap (seq > applied + 1) or another epoch is STORE_EINVAL (ask again / snapshot).
 * Every key must be a shared key (else STORE_EINVAL). Mailboxes follow homes. */
int store_repl_apply(store *st, const Tern__ChangeRecord *r, store_cb cb, store_sync_result *res_r);
/* Slave: make the shared rows exactly the snapshot's (rows not in it are deleted), state
 * = the snapshot's (epoch, seq), in one batch. Mailboxes follow homes; a user with a
 * mailbox holding messages here that the snapshot homes elsewhere or lacks keeps its
 * mailbox rows (logged in warning.log), never silently loses data. */
int store_repl_apply_snapshot(store *st, const Tern__ChangeRecord *snap, store_cb cb,
			      store_sync_result *res_r);
/* Call fn(arg) on the commit thread after every durable change record (master), e.g. to
 * wake the cluster thread. One watcher; NULL removes it. */
void store_repl_watch(store *st, void (*fn)(void *arg), void *arg);

/* Nodes (config CF "node/<name>", shared). */
int store_node_get(store *st, const char *name, Tern__Node **n_r);
int store_node_list(store *st, Tern__Node ***list_r, size_t *n_r);
/* Add or replace a node record (master; the name must be a valid node name). */
int store_node_put(store *st, const Tern__Node *n, store_cb cb, store_sync_result *res_r);
/* Refused (STORE_EREFUSED) while users are homed on the node. */
int store_node_remove(store *st, const char *name, store_cb cb, store_sync_result *res_r);
/* Users (any domain) homed on the node: their count. */
unsigned store_node_user_count(store *st, const char *name);
/* The node a user's home names, into out: home itself when set; a home of "" (rows
 * written before the domain was distributed) is the master's - this node on a master,
 * the master on a slave - and "" stays "" on a standalone node. */
void store_home_node(store *st, const char *home, char *out, size_t n);
/* Node-local cluster records: "cluster/self" (ClusterSelf) and "cluster/curve" (CurveKeys).
 * get: STORE_ENOTFOUND when absent. put of self with role STANDALONE deletes it. */
int store_cluster_self_get(store *st, Tern__ClusterSelf **s_r);
int store_cluster_self_put(store *st, const Tern__ClusterSelf *s, store_cb cb, store_sync_result *res_r);
int store_curve_keys_get(store *st, Tern__CurveKeys **k_r);
int store_curve_keys_put(store *st, const Tern__CurveKeys *k, store_cb cb, store_sync_result *res_r);
/* 1 when the user's mailbox on this node holds at least one message, 0 when empty or
 * absent. */
int store_mailbox_has_data(store *st, const uint8_t user[16]);

/* ---- calendars and contacts (dav CF; issue 7) ----
 * An owner is a user or a resource (both have a 16-byte id). A collection is the row
 * <owner><collection-id>; its objects are <owner><collection-id><href>. Every object change
 * takes the next modseq of its collection (DavCollection.modseq: the sync token and CTag)
 * and writes a `changes` row <owner><collection-id><modseq> (Change kind DAV_PUT or
 * DAV_DELETE with the href) in the same batch, so sync-collection and migration deltas
 * read the changes CF. Writes for one owner are serialised (per-owner lock) while modseqs
 * are allocated; watchers (store_watch_add with folder = collection id) are notified after
 * the batch is durable, like mailbox changes. */

int store_dav_collection_list(store *st, const uint8_t owner[16], Tern__DavCollection ***list_r,
			      size_t *n_r);
/* By URL name (case-sensitive). STORE_ENOTFOUND when absent. */
int store_dav_collection_get(store *st, const uint8_t owner[16], const char *name,
			     Tern__DavCollection **c_r);
int store_dav_collection_get_by_id(store *st, const uint8_t owner[16], const uint8_t id[16],
				   Tern__DavCollection **c_r);
/* c->id is made when empty (res->id); name must be a valid URL segment ([A-Za-z0-9._-],
 * 1..128, not "." or "..") and unique for the owner (STORE_EEXISTS). modseq starts at 1. */
int store_dav_collection_create(store *st, const uint8_t owner[16], const Tern__DavCollection *c,
				store_cb cb, store_sync_result *res_r);
/* Replace the properties (display name, description, colour, components, timezone,
 * public, transparent, dead props) of the collection c->id; id, name, kind, modseq and
 * created are kept. */
int store_dav_collection_update(store *st, const uint8_t owner[16], const Tern__DavCollection *c,
				store_cb cb, store_sync_result *res_r);
/* Delete the collection with its objects and changes rows. */
int store_dav_collection_delete(store *st, const uint8_t owner[16], const uint8_t id[16],
				store_cb cb, store_sync_result *res_r);

int store_dav_object_get(store *st, const uint8_t owner[16], const uint8_t coll[16],
			 const char *href, Tern__DavObject **o_r);
/* Visit the objects of a collection in href order; stop when fn returns non-zero. */
int store_dav_object_scan(store *st, const uint8_t owner[16], const uint8_t coll[16],
			  int (*fn)(const Tern__DavObject *o, void *arg), void *arg);
/* The object with this iCalendar/vCard UID in the collection, or STORE_ENOTFOUND. */
int store_dav_object_find_uid(store *st, const uint8_t owner[16], const uint8_t coll[16],
			      const char *uid, Tern__DavObject **o_r);

typedef struct store_dav_write {
	const uint8_t *owner;            /* 16 bytes */
	const uint8_t *collection;       /* 16 bytes */
	const Tern__DavObject *obj;      /* href, data, uid, component, start, end, busy,
					  * schedule_tag; etag, modseq, created and modified are
					  * set by the store */
	const char *if_match;            /* non-NULL: the current ETag must be this
					  * (STORE_ECONFLICT otherwise, also when absent) */
	int if_none_match;               /* 1: the href must not exist (STORE_ECONFLICT) */
} store_dav_write;
/* Create or replace one object. Another object of the collection with the same UID is
 * STORE_EEXISTS ("no-uid-conflict"). res->modseq and res->etag on success. */
int store_dav_put(store *st, const store_dav_write *w, store_cb cb, store_sync_result *res_r);
/* Delete one object (if_match as for put; NULL = any). STORE_ENOTFOUND when absent. */
int store_dav_delete(store *st, const uint8_t owner[16], const uint8_t coll[16], const char *href,
		     const char *if_match, store_cb cb, store_sync_result *res_r);
/* sync-collection: the hrefs changed since modseq `since`, each once with its last state
 * (deleted or not), in modseq order. STORE_EINVAL when since is older than what the
 * changes CF still holds (the client must start again with an empty token). */
int store_dav_changes(store *st, const uint8_t owner[16], const uint8_t coll[16], uint64_t since,
		      int (*fn)(const char *href, int deleted, uint64_t modseq, void *arg), void *arg);

/* Resources (config CF "resource/<domain>/<name>", shared; their address is taken in the
 * domain like a user's or group's: AddressOwner kind RESOURCE). add: id made when empty. */
int store_resource_get(store *st, const char *domain, const char *name, Tern__Resource **r_r);
int store_resource_find(store *st, const char *address, Tern__Resource **r_r);
int store_resource_list(store *st, const char *domain, Tern__Resource ***list_r, size_t *n_r);
int store_resource_add(store *st, const Tern__Resource *r, store_cb cb, store_sync_result *res_r);
int store_resource_update(store *st, const Tern__Resource *r, store_cb cb, store_sync_result *res_r);
/* Removes the resource and its calendar (its DAV collections). */
int store_resource_remove(store *st, const char *domain, const char *name, store_cb cb,
			  store_sync_result *res_r);

/* Free any record returned above (Tern__Domain, Tern__User, ...) and arrays of them. */
void store_free_record(void *protobuf_message);
void store_free_list(void **list, size_t n);

/* ---- mailboxes (folder, msg, changes, blob, blobref CFs) ---- */

int store_mailbox_get(store *st, const uint8_t user[16], Tern__Mailbox **m_r);
int store_folder_list(store *st, const uint8_t user[16], Tern__Folder ***list_r, size_t *n_r);
int store_folder_get(store *st, const uint8_t user[16], const uint8_t folder[16], Tern__Folder **f_r);
/* By name; "INBOX" case-insensitive. */
int store_folder_find(store *st, const uint8_t user[16], const char *name, Tern__Folder **f_r);
/* res->id receives the folder id. */
int store_folder_create(store *st, const uint8_t user[16], const char *name, const char *special_use,
			store_cb cb, store_sync_result *res_r);
/* Renames the folder and its subfolders ("a" -> "b" moves "a/x" to "b/x"). */
int store_folder_rename(store *st, const uint8_t user[16], const uint8_t folder[16],
			const char *new_name, store_cb cb, store_sync_result *res_r);
/* Set or clear the folder's IMAP subscription (Folder.subscribed); folders are created
 * subscribed. STORE_ENOTFOUND when there is no such folder. */
int store_folder_subscribe(store *st, const uint8_t user[16], const uint8_t folder[16], int on,
			   store_cb cb, store_sync_result *res_r);
/* Deletes the folder with its messages (quota usage falls; blobs to the sweeper). */
int store_folder_delete(store *st, const uint8_t user[16], const uint8_t folder[16], store_cb cb,
			store_sync_result *res_r);

typedef struct store_append {
	const uint8_t *user;          /* 16 bytes */
	const uint8_t *folder;        /* 16 bytes; NULL = INBOX */
	const void *header_prefix;    /* per-recipient header lines (Return-Path, Received, ...) */
	size_t header_prefix_len;
	const void *body;             /* the message as received, stored once per content */
	size_t body_len;
	uint32_t flags;               /* TERN__FLAG__* bits */
	const char *const *keywords;
	size_t nkeywords;
	int64_t internaldate;         /* 0 = now */
	int enforce_quota;            /* refuse with STORE_EQUOTA when over storage or items */
	int64_t quota_warned_at;      /* != 0: record this time as the last quota warning */
	const Tern__MimeInfo *mime;   /* IMAP structure of the body (node/mime), kept in the
				       * message record; NULL = none yet */
} store_append;

/* Append one message. res->uid, res->uidvalidity, res->modseq on success. */
int store_msg_append(store *st, const store_append *a, store_cb cb, store_sync_result *res_r);
/* One message to n mailboxes in ONE batch (SMTP delivery): the body is stored once.
 * Each recipient that is over quota gets STORE_EQUOTA in res->rcpt_rc[i] and the others
 * still get the message; res->rc is STORE_OK when at least one recipient got it. */
int store_deliver(store *st, const store_append *rcpts, size_t n, store_cb cb, store_sync_result *res_r);

int store_msg_get(store *st, const uint8_t user[16], const uint8_t folder[16], uint32_t uid,
		  Tern__MessageMeta **m_r);
/* Visit the messages of a folder with uid >= from_uid in UID order; stop when fn returns
 * non-zero. */
int store_msg_scan(store *st, const uint8_t user[16], const uint8_t folder[16], uint32_t from_uid,
		   int (*fn)(const Tern__MessageMeta *m, void *arg), void *arg);
/* Read the stored body bytes [offset, offset+len) of blob sha256 into out (len 0 = to
 * the end). */
int store_blob_read(store *st, const uint8_t sha256[32], uint64_t offset, uint64_t len, tbuf *out);

typedef enum { STORE_FLAGS_SET, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE } store_flags_op;
/* Change flags/keywords of the listed UIDs (missing ones are skipped); each changed
 * message gets a new modseq and a `changes` row. With unchanged_since != 0, messages
 * whose modseq is higher are left alone (CONDSTORE). */
int store_msg_set_flags(store *st, const uint8_t user[16], const uint8_t folder[16],
			const uint32_t *uids, size_t n, store_flags_op op, uint32_t flags,
			const char *const *keywords, size_t nkeywords, uint64_t unchanged_since,
			store_cb cb, store_sync_result *res_r);
/* Remove the listed UIDs (quota usage falls; blob references dropped). */
int store_msg_expunge(store *st, const uint8_t user[16], const uint8_t folder[16],
		      const uint32_t *uids, size_t n, store_cb cb, store_sync_result *res_r);
/* Copy (STORE_COPY_MOVE: and expunge from the source) to a folder of the same user -
 * the same folder too - keeping flags and internaldate; new UIDs in the destination.
 * `how` is a mask of STORE_COPY_* (0/1 keep meaning copy/move). With STORE_COPY_QUOTA a
 * copy that would pass the user's storage or item quota changes nothing: STORE_EQUOTA. */
#define STORE_COPY_MOVE  1
#define STORE_COPY_QUOTA 2
int store_msg_copy(store *st, const uint8_t user[16], const uint8_t from[16], const uint8_t to[16],
		   const uint32_t *uids, size_t n, int how, store_cb cb, store_sync_result *res_r);

/* Visit the changes of a folder with modseq > since, in modseq order. */
int store_changes_scan(store *st, const uint8_t user[16], const uint8_t folder[16], uint64_t since,
		       int (*fn)(uint64_t modseq, const Tern__Change *c, void *arg), void *arg);

/* ---- migration (DESIGN.md §6; migrate/ drives it) ----
 * A mailbox held by a migration has a node-local state row "mbstate/<user-id hex>"
 * (MailboxState; none = ACTIVE):
 *   INCOMING  on the target while rows are copied in; PREPARED once verified, until the
 *             master's commit. No session may open it (callers check the state) and every
 *             ordinary write of the user's mailbox or DAV rows is refused with
 *             STORE_EREFUSED; only store_mig_import writes it.
 *   FROZEN    on the source at the cut-over: every write of the user's mailbox or DAV rows
 *             is refused with STORE_EREFUSED ("the mailbox of USER is moving to node X"),
 *             the batches in flight when the freeze was asked are durable before the freeze
 *             row is, and once it is durable every watcher of the user (any folder) gets
 *             an event of kind TERN__CHANGE__KIND__MOVED (sessions close).
 * "Mailboxes follow homes" leaves a mailbox with a state row alone (never creates,
 * refuses or removes it because of the home); the migration decides. */
typedef enum {
	STORE_MBOX_ACTIVE = 0, STORE_MBOX_INCOMING = 1, STORE_MBOX_PREPARED = 2, STORE_MBOX_FROZEN = 3,
} store_mbox_state;

/* The state of the user's mailbox here; *s_r = STORE_MBOX_ACTIVE without a row. The
 * record (peer, migration id) when st_r is not NULL. Cheap (cached): sessions call it at
 * login. STORE_OK or STORE_EIO. */
int store_mbox_state_get(store *st, const uint8_t user[16], store_mbox_state *s_r,
			 Tern__MailboxState **st_r);
/* Set the state (ACTIVE deletes the row). FROZEN waits for the user's batches in flight
 * first (see above). INCOMING on a user whose mailbox here holds data and has no state
 * row is refused (STORE_EREFUSED): a migration never writes over a live mailbox. */
int store_mbox_state_set(store *st, const uint8_t user[16], store_mbox_state s, const char *peer,
			 const uint8_t migration_id[16], store_cb cb, store_sync_result *res_r);
/* Every user with a state row here (for a restart's recovery): *ids_r malloc'd, n ids. */
int store_mbox_state_list(store *st, uint8_t (**ids_r)[16], size_t *n_r);

/* A user's rows, as one key range per column family. */
typedef enum {
	STORE_MIG_FOLDER = 1,    /* folder CF: the mailbox row (<user><zero id>) and folder rows */
	STORE_MIG_MSG = 2,       /* msg CF */
	STORE_MIG_CHANGES = 3,   /* changes CF (messages and DAV) */
	STORE_MIG_DAV = 4,       /* dav CF: collections, objects, UID index rows */
	STORE_MIG_BLOB = 5,      /* blob CF: <sha256><chunk be32>; only store_mig_import takes it */
} store_mig_cf;
typedef struct store_mig_row {
	store_mig_cf cf;
	const void *key;
	size_t klen;
	const void *val;
	size_t vlen;
	int deleted;             /* remove the key and what hangs on it (see store_mig_import) */
} store_mig_row;
typedef int (*store_mig_fn)(const store_mig_row *r, void *arg);

/* Source, initial copy: the user's rows of cf (FOLDER, MSG, CHANGES or DAV) with key >
 * after (NULL: from the first), in key order, until keys and values pass max_bytes (at
 * least one row). *more_r = 1 when rows remain. Stops early when fn returns non-zero. */
int store_mig_scan(store *st, const uint8_t user[16], store_mig_cf cf, const void *after, size_t an,
		   size_t max_bytes, store_mig_fn fn, void *arg, int *more_r);
/* Source: the "heads" - the mailbox row, every folder row and every DAV collection row
 * (a collection row is a DAV row whose key is 32 bytes). */
int store_mig_heads(store *st, const uint8_t user[16], store_mig_fn fn, void *arg);
/* Source, delta: the changes of folder (dav = 0) or DAV collection (dav = 1) `id` with
 * modseq > since, in modseq order until max_bytes pass: each changes row, then for every
 * UID (or href) they name its current row - the msg row, or the DAV object row and its
 * UID index row - or a deleted row (msg key / object key) when it is gone. *upto_r = the
 * highest modseq included (since when none); *more_r = 1 when changes remain. */
int store_mig_delta(store *st, const uint8_t user[16], const uint8_t id[16], int dav, uint64_t since,
		    size_t max_bytes, store_mig_fn fn, void *arg, uint64_t *upto_r, int *more_r);
/* Target: write rows of a user whose state here is INCOMING (else STORE_EREFUSED), in ONE
 * batch together with the job record (config "migrate/job/<user-id hex>"; NULL = none):
 *   FOLDER   put; deleted: a folder row also deletes that folder's msg and changes rows
 *            (and blob references), the mailbox row nothing else.
 *   MSG      put, replacing the blob reference of an earlier copy of the row, adding its
 *            own; STORE_EINVAL when the blob is not here (store_blob_has); deleted: the row
 *            and its blob reference.
 *   CHANGES  put / delete.
 *   DAV      put / delete; an object row (key > 32 bytes, byte 32 not NUL) replaces the
 *            UID index row of the earlier copy; deleted collection row (32 bytes): the
 *            collection with its objects, UID rows and changes rows.
 *   BLOB     put a chunk; a blob's chunk 0 is imported last (store_blob_has looks at
 *            it), and a new blob is left to the sweeper until a message refers to it.
 * The cached state of the mailbox is reloaded afterwards. */
int store_mig_import(store *st, const uint8_t user[16], const store_mig_row *rows, size_t n,
		     const Tern__MigrateJob *job, store_cb cb, store_sync_result *res_r);
/* 1 when blob sha256 is here (its chunk 0), 0 when not, STORE_EIO. */
int store_blob_has(store *st, const uint8_t sha[32]);
/* One stored chunk (STORE_BLOB_CHUNK_BYTES) of a blob into out, with the blob's chunk
 * count. STORE_ENOTFOUND when there is no such chunk. */
#define STORE_BLOB_CHUNK_BYTES (256 * 1024)
int store_blob_chunk(store *st, const uint8_t sha[32], uint32_t chunk, tbuf *out, uint32_t *chunks_r);

/* The digest both ends compare before the commit: one entry per folder (count, bytes,
 * highest modseq, SHA-256 over UID, flags, keywords, modseq, internal date and blob hash of
 * every message in UID order), one per DAV collection (count, modseq, SHA-256 over href,
 * ETag and modseq of every object in href order), and one with a zero id for the mailbox
 * row (count = items, bytes = quota usage). Sorted by (dav, id). Free with free(). */
typedef struct store_mig_digest_entry {
	uint8_t id[16];
	int dav;
	uint64_t count, bytes, modseq;
	uint8_t sha[32];
} store_mig_digest_entry;
int store_mig_digest(store *st, const uint8_t user[16], store_mig_digest_entry **list_r, size_t *n_r);
/* Totals for progress: the mailbox row's usage and the DAV object count. */
int store_mig_totals(store *st, const uint8_t user[16], uint64_t *bytes_r, uint64_t *messages_r,
		     uint64_t *dav_objects_r);
/* Delete the user's whole key range here (mailbox, folders, messages, changes, blob
 * references, DAV collections and objects) and its state row, whatever the home says:
 * the source after the commit, the target on a cancel. Cached state dropped. */
int store_mig_drop(store *st, const uint8_t user[16], store_cb cb, store_sync_result *res_r);

/* The master's half of a migration: write the user's home-map entry (home, state,
 * target) as is - never refused or acted on because a mailbox here holds data - as one
 * replicated change. STORE_ENOTFOUND for an unknown user id. */
int store_user_set_home_state(store *st, const uint8_t user[16], const char *home,
			      Tern__HomeState state, const char *target, store_cb cb,
			      store_sync_result *res_r);

/* Migration jobs of this node (config "migrate/job/<user-id hex>", node-local). */
int store_mig_job_get(store *st, const uint8_t user[16], Tern__MigrateJob **j_r);
/* Every job, in `order`. */
int store_mig_job_list(store *st, Tern__MigrateJob ***list_r, size_t *n_r);
int store_mig_job_put(store *st, const Tern__MigrateJob *j, store_cb cb, store_sync_result *res_r);
int store_mig_job_delete(store *st, const uint8_t user[16], store_cb cb, store_sync_result *res_r);

/* ---- submission and the outgoing queue (queue CF) ---- */

/* One accepted message in ONE durable batch: the local deliveries (each store_append may
 * carry its own body - e.g. with or without a footer - and every distinct body is stored
 * once) and, when queued != NULL, a queue entry for the remote recipients with its body
 * (queued->id is made when empty; blob and size are filled by the store). Recipients over
 * quota get STORE_EQUOTA in res->rcpt_rc[i] and the others still get the message;
 * res->rc is STORE_OK when anything was stored; res->id is the queue id. */
int store_submit(store *st, const store_append *local, size_t nlocal, const Tern__QueueEntry *queued,
		 const void *queued_body, size_t queued_len, store_cb cb, store_sync_result *res_r);
int store_queue_get(store *st, const uint8_t id[16], Tern__QueueEntry **e_r);
/* Every entry, oldest first. */
int store_queue_list(store *st, Tern__QueueEntry ***list_r, size_t *n_r);
/* Entries whose next_try <= now, in next_try order, at most max. */
int store_queue_due(store *st, int64_t now, size_t max, Tern__QueueEntry ***list_r, size_t *n_r);
/* Rewrite an entry (recipient states, next_try, attempts); the next-try index follows. */
int store_queue_update(store *st, const Tern__QueueEntry *e, store_cb cb, store_sync_result *res_r);
/* Drop an entry and its blob reference. */
int store_queue_remove(store *st, const uint8_t id[16], store_cb cb, store_sync_result *res_r);
/* Notify fn (on io) after every durable queue insertion, e.g. to wake the queue runner. */
void store_queue_watch(store *st, tern_io *io, void (*fn)(void *arg), void *arg);

/* ---- change notifier ---- */

typedef struct store_event {
	uint8_t user[16];
	uint8_t folder[16];
	uint64_t modseq;
	Tern__Change__Kind kind;
	uint32_t uid;
} store_event;
typedef struct store_watch store_watch;
/* Call fn on I/O thread io after every durable change to the folder (folder NULL: to any
 * folder of the user), in commit order. An event of kind TERN__CHANGE__KIND__MOVED (the
 * user's mailbox was frozen for a migration) reaches every watch of the user. */
store_watch *store_watch_add(store *st, const uint8_t user[16], const uint8_t *folder, tern_io *io,
			     void (*fn)(const store_event *ev, void *arg), void *arg);
/* A watch of the user that gets MOVED events only (sessions that must close at a
 * migration's cut-over, without being woken by every change of the mailbox). */
store_watch *store_watch_add_moved(store *st, const uint8_t user[16], tern_io *io,
				   void (*fn)(const store_event *ev, void *arg), void *arg);
void store_watch_remove(store *st, store_watch **w);

/* ---- housekeeping and figures ---- */

/* Run one blob sweep now; returns the number of blobs deleted. */
int store_sweep(store *st);
typedef enum { STORE_DISK_OK, STORE_DISK_SOFT, STORE_DISK_HARD } store_disk_state;
store_disk_state store_disk(store *st);

typedef struct store_stats {
	uint64_t wal_synced;        /* rocksdb.wal.synced ticker */
	uint64_t wal_bytes;         /* rocksdb.wal.bytes */
	uint64_t commits;           /* batches committed */
	uint64_t commit_groups;     /* rocksdb_write calls (commits / groups = sharing) */
	uint64_t live_data_bytes;   /* rocksdb.estimate-live-data-size */
	uint64_t blobs_swept;
	uint64_t free_disk_bytes;
} store_stats;
void store_get_stats(store *st, store_stats *s);

#endif
