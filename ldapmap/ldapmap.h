/* ldapmap.h - directory mapping (DESIGN.md §7): read users and groups from Active
 * Directory, Apple Open Directory or a generic LDAP server (libldap), and check mapped
 * users' passwords by Kerberos 5 (libkrb5) or LDAP bind. The only module that includes
 * ldap.h or krb5.h. It knows nothing of the store: node/directory turns what it reads
 * into accounts.
 *
 * Every call blocks (network): run them on the auth worker pool, never on an I/O thread.
 * An lm_conn is one LDAP handle for one worker thread; it fails over to the backup server
 * and back after failover_retry seconds. Timeouts bound every operation; referrals are
 * never chased; values are length-checked and non-UTF-8 values dropped. */
#ifndef TERN_LDAPMAP_H
#define TERN_LDAPMAP_H
#include <stddef.h>
#include <stdint.h>
#include "tern.h"

typedef enum { LM_TYPE_LDAP, LM_TYPE_AD, LM_TYPE_OD } lm_type;
typedef enum { LM_TLS_PLAIN, LM_TLS_LDAPS, LM_TLS_STARTTLS } lm_tls;
typedef enum { LM_AUTH_KERBEROS, LM_AUTH_BIND } lm_auth;

typedef struct lm_config {
	const char *domain;            /* mail domain */
	lm_type type;
	const char *server;            /* host[:port]; port defaults 389 / 636 for LDAPS */
	const char *backup_server;     /* "" = none */
	lm_tls tls;
	const char *ca_file;           /* "" = system CAs */
	const char *bind_dn;
	const char *bind_password;
	const char *base;              /* search base / suffix */
	const char *directory_domain;  /* AD: the directory's DNS domain when it differs */
	const char *realm;             /* Kerberos realm, upper case */
	lm_auth auth;
	int timeout;                   /* seconds per operation */
	int failover_retry;            /* seconds before the primary is tried again */
	const char *keytab;            /* "" = KRB5_KTNAME / default */
} lm_config;

/* Limits on what a directory may send (bad input). */
#define LM_MAX_VALUES 5000             /* values of one attribute kept */
#define LM_MAX_VALUE_LEN 4096          /* bytes of one value kept */
#define LM_MAX_ENTRIES 200000          /* entries of one search */

typedef struct lm_user {
	char *dn;
	char *login;                   /* AD sAMAccountName / RFC 2307 uid, lower case */
	char *principal;               /* userPrincipalName or login@REALM */
	char *full_name;
	char **addresses;              /* local parts in the mail domain (mail, proxyAddresses smtp:) */
	size_t naddresses;
	int enabled;                   /* AD userAccountControl bit 2 off, tern attribute */
	char **groups;                 /* DNs of groups (memberOf) */
	size_t ngroups;
	uint64_t quota_bytes, quota_items;   /* tern attributes; 0 = unlimited */
	char **forward;
	size_t nforward;
	int forward_keep_copy;
	int rights;                    /* Tern__Rights value from the tern attribute */
	int has_mailbox;               /* AD: tern "create a mailbox" attribute (default 1) */
	int publish_gal;               /* ternPublishInGAL; default 1 when a full name is set */
} lm_user;

typedef struct lm_group {
	char *dn;
	char *name;                    /* cn, lower case */
	char **addresses;              /* local parts */
	size_t naddresses;
	char **members;                /* member DNs (AD) or uids (memberUid) */
	size_t nmembers;
	int members_are_dns;
	int rights;
} lm_group;

typedef struct lm_conn lm_conn;

/* Connect and bind with the service account (primary, else backup). NULL with *error_r
 * (malloc'd, one line: "ldap.example.test:389: Can't contact LDAP server"). */
lm_conn *lm_connect(const lm_config *cfg, char **error_r);
void lm_close(lm_conn **c);
/* The server in use now ("host:port"), for logs. */
const char *lm_server(const lm_conn *c);

/* Visit every mapped user (since_stamp 0) or those changed after since_stamp
 * (modifyTimestamp / uSNChanged as a number); paged results; *max_stamp_r gets the
 * highest stamp seen. fn returns non-zero to stop. 0 ok, -1 with *error_r. */
int lm_users(lm_conn *c, uint64_t since_stamp, int (*fn)(const lm_user *u, void *arg), void *arg,
	     uint64_t *max_stamp_r, char **error_r);
int lm_groups(lm_conn *c, uint64_t since_stamp, int (*fn)(const lm_group *g, void *arg), void *arg,
	      uint64_t *max_stamp_r, char **error_r);
/* One user by login name (filter-escaped). 0 found (*u_r, free with lm_user_free),
 * 1 not found, -1 error. */
int lm_find_user(lm_conn *c, const char *login, lm_user **u_r, char **error_r);
void lm_user_free(lm_user **u);

/* Password of a mapped user: Kerberos (get_init_creds_password, then verify_init_creds
 * against the keytab with ap_req_nofail) or LDAP simple bind as the user's DN.
 * 0 = good; 1 = refused (bad password, disabled, expired: *reason_r is the guide's log
 * reason); -1 = could not ask (KDC or directory down, no keytab, clock skew: *reason_r
 * says which). *reason_r is malloc'd. */
int lm_check_password(lm_conn *c, const lm_user *u, const char *password, char **reason_r);

/* `ternctl directory test`: reachability, bind, search, schema (tern attributes present),
 * and a few users; each step one line in report. 0 all good, -1 a step failed. */
int lm_test(const lm_config *cfg, tbuf *report);

/* Escape a value for an LDAP filter (RFC 4515: * ( ) \ NUL). */
void lm_filter_escape(const char *in, tbuf *out);

#endif
