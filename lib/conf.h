/* conf.h - tern.conf (INI, read with inih). Every setting has an embedded default, so a
 * node runs with no file at all. Unknown sections or keys are reported, not fatal.
 * Every interval is a setting in seconds, so that tests can make it short. */
#ifndef TERN_CONF_H
#define TERN_CONF_H
#include <stdint.h>
#include "buf.h"

/* X(section, key, type, default, min, max, help)  -- type: STR, INT or BOOL.
 * For STR, min/max are unused. The field is conf->section_key. */
#define TERN_SETTINGS(X) \
	X(server, hostname, STR, "", 0, 0, "Internet hostname: greetings, Received lines; empty = this host's name") \
	X(server, io_threads, INT, 0, 0, 256, "I/O threads (libevent bases); 0 = one per core") \
	X(server, commit_threads, INT, 2, 1, 4, "store commit threads (group commit)") \
	X(server, auth_workers, INT, 4, 1, 64, "auth pool threads (LDAP, Kerberos, password hashing)") \
	X(server, cpu_workers, INT, 2, 1, 64, "cpu pool threads (MIME parsing of large messages)") \
	X(server, bulk_workers, INT, 1, 1, 16, "bulk pool threads (backup, migration, reconcile)") \
	X(server, pool_queue_max, INT, 4096, 16, 1000000, "jobs a worker pool queues before refusing more") \
	X(server, dns_resolver, STR, "", 0, 0, "DNS server host:port; empty = /etc/resolv.conf") \
	X(server, dns_timeout, INT, 5, 1, 120, "seconds a DNS query may take") \
	X(server, drain_timeout, INT, 10, 0, 3600, "seconds SIGTERM waits for sessions to finish") \
	X(log, rotate_kb, INT, 10240, 0, 4194304, "rotate a log when it exceeds this many kB; 0 = never") \
	X(log, keep_files, INT, 5, 0, 100, "rotated files kept per log") \
	X(log, debug, BOOL, 0, 0, 1, "write debug.log lines beyond start, stop and listeners") \
	X(store, wal_max_mb, INT, 256, 8, 65536, "max_total_wal_size of RocksDB in MiB") \
	X(store, cache_mb, INT, 64, 8, 65536, "block cache size in MiB") \
	X(store, blob_grace, INT, 3600, 0, 2592000, "seconds an unreferenced blob is kept before the sweeper deletes it") \
	X(store, sweep_interval, INT, 600, 1, 86400, "seconds between blob sweeper runs") \
	X(store, disk_soft_limit_mb, INT, 1024, 1, 1048576, "free disk below which the watchdog warns (MiB)") \
	X(store, disk_hard_limit_mb, INT, 64, 1, 1048576, "free disk below which new mail is refused (MiB)") \
	X(store, disk_check_interval, INT, 30, 1, 3600, "seconds between free-disk checks") \
	X(http, max_header_bytes, INT, 16384, 1024, 1048576, "largest request head accepted") \
	X(http, max_body_bytes, INT, 16777216, 1024, 1073741824, "largest request body accepted") \
	X(http, keepalive_timeout, INT, 60, 1, 3600, "seconds an idle keep-alive connection is kept") \
	X(http, request_timeout, INT, 30, 1, 3600, "seconds a client may take to send one request") \
	X(admin, session_timeout, INT, 2400, 60, 86400, "seconds of inactivity that end an admin session (guide: 40 min)") \
	X(admin, remote, BOOL, 1, 0, 1, "allow administration from remote hosts over HTTPS") \
	X(admin, remote_ipgroup, STR, "", 0, 0, "only from this IP address group; empty = any") \
	X(security, lockout_threshold, INT, 5, 0, 1000, "failed logins from one address that lock an account; 0 = never") \
	X(security, lockout_seconds, INT, 1200, 1, 604800, "seconds an account stays locked") \
	X(security, auth_policy, STR, "none", 0, 0, "none | secure-auth | encrypted: plaintext AUTH/LOGIN without TLS is refused unless none") \
	X(security, insecure_auth_ipgroup, STR, "", 0, 0, "IP address group allowed plaintext authentication whatever the policy") \
	X(smtpd, relay_open, BOOL, 0, 0, 1, "open relay: anyone may relay (never on the Internet)") \
	X(smtpd, relay_ipgroup, STR, "Local clients", 0, 0, "clients of this IP address group may relay; empty = none") \
	X(smtpd, relay_auth, BOOL, 1, 0, 1, "users authenticated through SMTP may relay") \
	X(smtpd, relay_pop3, BOOL, 0, 0, 1, "POP3 before SMTP: a POP3 login lets its address relay for a while") \
	X(smtpd, pop3_relay_window, INT, 1800, 1, 86400, "seconds a POP3 login allows relay from its address") \
	X(smtpd, max_msgs_per_hour_per_ip, INT, 50, 0, 1000000, "messages per sliding hour from one address; 0 = unlimited") \
	X(smtpd, max_conns_per_ip, INT, 20, 0, 100000, "concurrent SMTP connections from one address; 0 = unlimited") \
	X(smtpd, max_unknown_rcpts, INT, 10, 0, 100000, "unknown recipients before the address is blocked (harvest protection); 0 = off") \
	X(smtpd, harvest_block, INT, 3600, 1, 604800, "seconds an address is blocked after a directory harvest attack") \
	X(smtpd, exempt_ipgroup, STR, "Local clients", 0, 0, "addresses exempt from the per-address limits above") \
	X(smtpd, block_unknown_sender_domain, BOOL, 0, 0, 1, "refuse senders whose domain is not in DNS") \
	X(smtpd, max_rcpts, INT, 100, 1, 100000, "recipients in one message") \
	X(smtpd, max_failed_cmds, INT, 3, 0, 1000, "failed commands before the session is closed; 0 = unlimited") \
	X(smtpd, max_message_kb, INT, 10240, 0, 4194304, "largest incoming message in kB; 0 = unlimited") \
	X(smtpd, max_received, INT, 100, 1, 10000, "Received headers accepted before a message is taken for a loop") \
	X(smtpd, command_line_max, INT, 2048, 512, 65536, "longest SMTP command line") \
	X(smtpd, data_line_max, INT, 65536, 1000, 1048576, "longest line inside DATA") \
	X(smtpd, command_timeout, INT, 300, 1, 3600, "seconds a client may stay silent between commands") \
	X(smtpd, data_timeout, INT, 600, 1, 3600, "seconds a client may stay silent inside DATA") \
	X(smtpd, vrfy, BOOL, 0, 0, 1, "answer VRFY with the address; off = 252 for every address") \
	X(smtpd, etrn, BOOL, 1, 0, 1, "accept ETRN from clients of relay_ipgroup") \
	X(smtpd, x_envelope_to, BOOL, 0, 0, 1, "insert X-Envelope-To in delivered messages") \
	X(smtpd, hide_local_ip, BOOL, 0, 0, 1, "hide addresses of relay_ipgroup clients in Received headers") \
	X(smtpd, show_version, BOOL, 0, 0, 1, "show the program name and version in the greeting") \
	X(pop3, timeout, INT, 600, 1, 86400, "seconds a POP3 client may stay silent between commands (RFC 1939: at least 600)") \
	X(directory, poll_interval, INT, 30, 1, 86400, "seconds between polls of a mapped directory for changes") \
	X(directory, reconcile_interval, INT, 3600, 1, 604800, "seconds between full reconciles (polling never sees deletions)") \
	X(directory, cache_ttl, INT, 60, 0, 86400, "seconds a directory lookup is trusted without asking again") \
	X(directory, timeout, INT, 5, 1, 300, "seconds an LDAP or Kerberos operation may take") \
	X(directory, failover_retry, INT, 30, 1, 3600, "seconds before a failed primary directory server is tried again") \
	X(directory, keytab, STR, "", 0, 0, "service keytab for Kerberos and GSSAPI; empty = KRB5_KTNAME or the system default") \
	X(cluster, address, STR, "", 0, 0, "host name or IP the other nodes of a distributed domain reach this node at; empty = the Internet hostname") \
	X(cluster, port, INT, 4050, 1, 65535, "control-plane port (ZeroMQ, CURVE); the port base is added") \
	X(cluster, listen, STR, "*", 0, 0, "address the control-plane port is bound to (\"*\" = every address)") \
	X(cluster, heartbeat_interval, INT, 2, 1, 3600, "seconds between heartbeats between the master and each node") \
	X(cluster, unavailable_after, INT, 6, 1, 86400, "seconds without a heartbeat after which a node is shown unavailable") \
	X(cluster, request_timeout, INT, 10, 1, 3600, "seconds a control-plane request waits for its reply") \
	X(cluster, changelog_keep, INT, 100000, 100, 100000000, "change records the master keeps for slaves catching up (older: snapshot)") \
	X(cluster, max_frame, INT, 16777216, 65536, 1073741824, "largest control-plane frame in bytes; larger ones are refused") \
	X(cluster, relay_retry, INT, 60, 1, 86400, "seconds between attempts to relay queued mail to another node of the domain") \
	X(cluster, bulk_port, INT, 4051, 1, 65535, "migration bulk-data port (ZeroMQ, CURVE); the port base is added") \
	X(migrate, window, INT, 8, 1, 256, "bulk requests a migration keeps in flight (flow control)") \
	X(migrate, chunk_kb, INT, 1024, 16, 8192, "rows per bulk request, in KiB of keys and values") \
	X(migrate, delta_rounds, INT, 10, 1, 1000, "delta rounds at most before the cut-over") \
	X(migrate, delta_small, INT, 200, 0, 1000000, "a delta of at most this many rows is small enough for the cut-over") \
	X(migrate, retry_interval, INT, 5, 1, 3600, "seconds between attempts when a node or the master does not answer") \
	X(migrate, request_timeout, INT, 30, 1, 3600, "seconds a bulk request waits for its reply") \
	X(migrate, give_up, INT, 3600, 10, 604800, "seconds a migration keeps retrying an unreachable source before it fails (never once PREPARED)") \
	X(migrate, keep_done, INT, 100, 1, 100000, "finished migrations kept for migrate status") \
	X(migrate, fault, STR, "", 0, 0, "tests only: fault injection, see migrate/migrate.h") \
	X(dav, max_body_kb, INT, 10240, 1, 1048576, "largest CalDAV/CardDAV request body in KiB (an event, a vCard, a REPORT)") \
	X(dav, max_header_kb, INT, 64, 1, 1024, "largest HTTP request head in KiB on the DAV ports") \
	X(dav, keepalive_timeout, INT, 60, 1, 3600, "seconds an idle HTTP keep-alive connection stays open") \
	X(dav, request_timeout, INT, 60, 1, 3600, "seconds a client may take to send one request") \
	X(dav, freebusy_max_days, INT, 366, 1, 3660, "longest free/busy range answered, in days") \
	X(dav, max_instances, INT, 10000, 10, 1000000, "recurrence instances expanded per object for time ranges and free/busy") \
	X(delivery, quota_warning_percent, INT, 90, 1, 100, "usage (% of either quota) that sends a warning message") \
	X(delivery, quota_warning_interval, INT, 86400, 1, 31536000, "seconds between two quota warnings to one user") \
	X(queue, delivery_threads, INT, 32, 1, 1024, "parallel outgoing deliveries (connections)") \
	X(queue, retry_interval, INT, 1800, 1, 604800, "seconds between delivery attempts") \
	X(queue, bounce_after, INT, 432000, 1, 31536000, "seconds after which an undelivered message is bounced") \
	X(queue, warn_after, INT, 2700, 0, 31536000, "seconds after which the sender is warned of a delay; 0 = never") \
	X(queue, check_interval, INT, 10, 1, 3600, "seconds between scans of the queue for due messages") \
	X(queue, connect_timeout, INT, 60, 1, 3600, "seconds to connect to a remote server") \
	X(queue, command_timeout, INT, 300, 1, 3600, "seconds to wait for a remote server's reply") \
	X(queue, remote_port, INT, 25, 1, 65535, "port of remote mail servers found by MX") \
	X(queue, static_mx, STR, "", 0, 0, "domain=host[:port] pairs, comma-separated, used before DNS (tests, private routes)") \
	X(queue, use_tls, BOOL, 1, 0, 1, "use STARTTLS when the remote server offers it") \
	X(queue, relay_host, STR, "", 0, 0, "send everything through this relay (smarthost) host; empty = by MX") \
	X(queue, relay_port, INT, 25, 1, 65535, "port of the relay server") \
	X(queue, relay_user, STR, "", 0, 0, "SMTP AUTH user at the relay; empty = no AUTH") \
	X(queue, relay_password_file, STR, "", 0, 0, "file whose first line is the relay password")

typedef enum { TERN_TLS_NONE, TERN_TLS_STARTTLS, TERN_TLS_IMPLICIT } tern_tls_mode;

/* The listening services of DESIGN.md §8. Each has a [name] section with
 * enabled, listen (comma-separated "*", "ADDR" or "ADDR:PORT", IPv6 as "[ADDR]:PORT"),
 * max_connections (0 = unlimited), allow_ipgroup (empty = everyone). */
#define TERN_SERVICES(X) \
	X(smtp, 25, TERN_TLS_STARTTLS) \
	X(smtps, 465, TERN_TLS_IMPLICIT) \
	X(submission, 587, TERN_TLS_STARTTLS) \
	X(pop3, 110, TERN_TLS_STARTTLS) \
	X(pop3s, 995, TERN_TLS_IMPLICIT) \
	X(imap, 143, TERN_TLS_STARTTLS) \
	X(imaps, 993, TERN_TLS_IMPLICIT) \
	X(http, 80, TERN_TLS_NONE) \
	X(http_alt, 8800, TERN_TLS_NONE) \
	X(https, 443, TERN_TLS_IMPLICIT) \
	X(https_alt, 8443, TERN_TLS_IMPLICIT) \
	X(ldap, 389, TERN_TLS_NONE) \
	X(ldaps, 636, TERN_TLS_IMPLICIT) \
	X(admin, 4040, TERN_TLS_IMPLICIT)

typedef enum {
#define TERN_SVC_ENUM(name, port, tls) TERN_SVC_##name,
	TERN_SERVICES(TERN_SVC_ENUM)
#undef TERN_SVC_ENUM
	TERN_SVC_COUNT
} tern_service_id;

#define TERN_LISTEN_MAX 8
typedef struct tern_listen_addr {
	char host[64];      /* numeric address, "" = all addresses */
	uint16_t port;      /* after the port base */
} tern_listen_addr;

typedef struct tern_service_conf {
	const char *name;             /* "smtp" */
	uint16_t default_port;        /* 25, before the port base */
	tern_tls_mode tls;
	int enabled;
	unsigned max_connections;     /* 0 = unlimited */
	char allow_ipgroup[64];       /* "" = anyone */
	unsigned nlisten;
	tern_listen_addr listen[TERN_LISTEN_MAX];
} tern_service_conf;

typedef struct tern_conf {
#define TERN_CONF_FIELD_STR(s, k) char *s##_##k;
#define TERN_CONF_FIELD_INT(s, k) int64_t s##_##k;
#define TERN_CONF_FIELD_BOOL(s, k) int s##_##k;
#define TERN_CONF_FIELD(s, k, type, def, min, max, help) TERN_CONF_FIELD_##type(s, k)
	TERN_SETTINGS(TERN_CONF_FIELD)
#undef TERN_CONF_FIELD
	tern_service_conf services[TERN_SVC_COUNT];
	unsigned port_base;
	/* One line per problem that did not stop loading (unknown key, ...), for warning.log. */
	tbuf warnings;
} tern_conf;

/* Fill conf with the embedded defaults and, when path is not NULL, read the file over them.
 * port_base is added to every listening port. 0 ok; -1 with a message in *error_r
 * (malloc'd) for an unreadable file or a bad value (out of range, not a number, bad listen
 * address). Unknown keys are put in conf->warnings and are not an error. */
int tern_conf_load(tern_conf *conf, const char *path, unsigned port_base, char **error_r);
/* Parse a config text instead of a file (tests). */
int tern_conf_load_string(tern_conf *conf, const char *text, unsigned port_base, char **error_r);
void tern_conf_free(tern_conf *conf);
/* The Internet hostname: conf value, else the host's FQDN, else its name. Static storage. */
const char *tern_conf_hostname(const tern_conf *conf);
/* The default tern.conf with every setting commented out and its help, for ops/. */
void tern_conf_write_defaults(tbuf *out);

#endif
