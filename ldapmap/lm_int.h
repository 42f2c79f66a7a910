/* lm_int.h - internals shared by the files of ldapmap/ (never included outside it, except
 * by its unit tests).
 *
 * The mapping works on an lm_entry: a DN and a list of attribute name -> values, already
 * bounded (LM_MAX_VALUES, LM_MAX_VALUE_LEN) and UTF-8-checked. lm_search.c builds entries
 * from LDAP messages; lm_map.c turns entries into lm_user / lm_group and needs no server. */
#ifndef TERN_LM_INT_H
#define TERN_LM_INT_H
#include <ldap.h>
#include "ldapmap.h"

/* Page size of the paged-results control (RFC 2696); AD's MaxPageSize is 1000. */
#define LM_PAGE_SIZE 500
/* Largest LDAP message accepted from a server (one entry with all its values). */
#define LM_MAX_PDU (32u * 1024 * 1024)

typedef struct lm_attr {
	char *name;                    /* as the server sent it, without ";range=..." */
	char **vals;
	size_t nvals;
} lm_attr;

typedef struct lm_entry {
	char *dn;
	lm_attr *attrs;
	size_t nattrs;
	size_t dropped;                /* values refused (too long, not UTF-8, too many) */
} lm_entry;

/* Entries (lm_map.c). */
void lm_entry_init(lm_entry *e, const char *dn);
/* Add one value to attribute name (case-insensitive). A value that is longer than
 * LM_MAX_VALUE_LEN, not UTF-8, contains NUL, or is past LM_MAX_VALUES is dropped and
 * counted in e->dropped. 0 kept, 1 dropped. */
int lm_entry_add(lm_entry *e, const char *name, const char *val, size_t len);
const lm_attr *lm_entry_get(const lm_entry *e, const char *name);
/* First value of name, NULL when absent. */
const char *lm_entry_first(const lm_entry *e, const char *name);
void lm_entry_clear(lm_entry *e);
/* 1 when p[0..len) is well-formed UTF-8 (no overlongs, surrogates, or NUL). */
int lm_utf8_valid(const char *p, size_t len);

/* Attribute maps (lm_map.c). The NULL-terminated attribute lists a search asks for. */
const char *const *lm_user_attrs(lm_type type);
const char *const *lm_group_attrs(lm_type type);
/* The object filters, without the change or login condition. */
const char *lm_user_filter(lm_type type);
const char *lm_group_filter(lm_type type);
/* The attribute compared for changes: uSNChanged (AD) or modifyTimestamp. */
const char *lm_stamp_attr(lm_type type);
/* Build "(&OBJECTFILTER(STAMP>=...))" for since_stamp (0 = everything). */
void lm_changed_filter(lm_type type, const char *object_filter, uint64_t since_stamp, tbuf *out);
/* The stamp of an entry as a number: uSNChanged as is, a generalized time
 * "YYYYMMDDHHMMSS[.f]Z" as the number YYYYMMDDHHMMSS. 0 when absent or malformed. */
uint64_t lm_entry_stamp(lm_type type, const lm_entry *e);

/* Map an entry. 0 mapped (*r malloc'd), 1 the entry is not a usable user or group
 * (no login, a login that is not a valid name), with *why_r a static reason. */
int lm_map_user(const lm_config *cfg, const lm_entry *e, lm_user **u_r, const char **why_r);
int lm_map_group(const lm_config *cfg, const lm_entry *e, lm_group **g_r, const char **why_r);
void lm_group_free(lm_group **g);
/* "member;range=0-1499" -> base "member" (written to base, size n), *lo_r, *hi_r
 * (-1 for "*"). 1 when name has a range option, 0 when it has none, -1 when malformed. */
int lm_parse_range(const char *name, char *base, size_t n, long *lo_r, long *hi_r);

/* Connections (lm_conn.c). */
struct lm_conn {
	lm_config cfg;                 /* its strings point into strings (owned) */
	tbuf strings;                  /* the configuration's strings, NUL-separated */
	LDAP *ld;                      /* bound handle, NULL when down */
	int on_backup;                 /* ld talks to cfg.backup_server */
	int64_t primary_failed_ms;     /* tern_mono_ms() when the primary last failed */
	char server[300];              /* "host:port" of ld, for logs */
	int page_size;                 /* LM_PAGE_SIZE; tests make it smaller */
	unsigned long pages;           /* search requests sent (pages), for logs and tests */
};

/* Open a handle to server ("host[:port]") with the options of cfg (protocol 3, no
 * referrals, timeouts, TLS and StartTLS) but no bind. 0 ok, -1 with *error_r. */
int lm_open(const lm_config *cfg, const char *server, LDAP **ld_r, char **error_r);
/* Simple bind of dn/password with cfg's timeout. LDAP result code (LDAP_SUCCESS ...);
 * *diag_r (malloc'd or NULL) is the server's diagnostic message. */
int lm_simple_bind(LDAP *ld, const lm_config *cfg, const char *dn, const char *password,
		   char **diag_r);
/* Make sure c has a bound handle, going back to the primary after failover_retry.
 * 0 ok, -1 with *error_r. */
int lm_ready(lm_conn *c, char **error_r);
/* Forget c's handle after a connection-level failure (the next lm_ready reconnects,
 * trying the other server first when the failed one was the primary). */
void lm_drop(lm_conn *c);
/* 1 when rc means the server or the connection failed (worth a reconnect). */
int lm_rc_is_down(int rc);
/* Format "host:port: message" into a malloc'd string. */
char *lm_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Searches (lm_search.c). Subtree search of cfg.base with filter, attrs; paged; range
 * values fetched to the end; fn gets each entry (non-zero stops). Retries once on a new
 * connection if the server fails before any entry was handed out. 0 ok (also when fn
 * stopped), -1 with *error_r. */
int lm_search(lm_conn *c, const char *filter, const char *const *attrs,
	      int (*fn)(const lm_entry *e, void *arg), void *arg, char **error_r);

/* Read one entry (base scope) with attrs, for lm_test. 0 ok, -1 with *error_r. */
int lm_read_entry(lm_conn *c, const char *dn, const char *const *attrs, lm_entry *e, char **error_r);

/* Kerberos half of lm_check_password (lm_krb5.c): same return contract. */
int lm_krb5_check(const lm_config *cfg, const char *principal, const char *password, char **reason_r);

#endif
