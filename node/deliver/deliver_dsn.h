/* deliver_dsn.h - delivery status notifications (RFC 3464 reports, RFC 3461 rules).
 *
 * A report is a multipart/report; report-type=delivery-status message made of three
 * parts: a human-readable text/plain explanation, the machine-readable
 * message/delivery-status (per-message fields, then one block per recipient), and the
 * original message - whole as message/rfc822 (RET=FULL, or no RET and a small message)
 * or its header section as text/rfc822-headers (RET=HDRS, or a message too big to
 * return). It is sent from "Mail Delivery System <MAILER-DAEMON@host>" to the original
 * envelope sender with the null envelope sender, so a report is never bounced.
 *
 * Used by the deliverer (local recipients refused for quota or gone since RCPT, success
 * notices for NOTIFY=SUCCESS) and by the queue (remote failures, delays, give-up). */
#ifndef TERN_DELIVER_DSN_H
#define TERN_DELIVER_DSN_H
#include <stddef.h>
#include <stdint.h>
#include "deliver.h"

typedef enum {
	DSN_ACTION_FAILED,
	DSN_ACTION_DELAYED,
	DSN_ACTION_DELIVERED,
	DSN_ACTION_RELAYED,
	DSN_ACTION_EXPANDED,
} dsn_action;

/* RET=unspecified: the whole message is returned up to this size, its headers beyond. */
#define DSN_RETURN_DEFAULT_MAX (64u * 1024u)
/* RET=FULL: the whole message up to this size, its headers beyond. */
#define DSN_RETURN_FULL_MAX (10u * 1024u * 1024u)

typedef struct dsn_rcpt {
	const char *address;        /* Final-Recipient (an address, "rfc822;" is added) */
	const char *orcpt;          /* RFC 3461 ORCPT as given ("rfc822;bob@x") or NULL */
	dsn_action action;
	const char *status;         /* enhanced status code, "5.2.2" */
	const char *diagnostic;     /* SMTP reply ("552 5.2.2 Mailbox full") or NULL */
	const char *remote_mta;     /* host name of the remote server or NULL */
	int64_t last_attempt;       /* unix seconds; 0 = none shown */
	int64_t will_retry_until;   /* delayed: unix seconds; 0 = none shown */
} dsn_rcpt;

typedef struct dsn_report {
	const char *reporting_mta;  /* this server's Internet hostname */
	const char *sender;         /* the original envelope sender: the report's recipient */
	const char *envid;          /* RFC 3461 ENVID or NULL */
	int64_t arrival;            /* when the original arrived; 0 = not shown */
	uint32_t ret;               /* RFC 3461 RET: 0 unspecified, 1 FULL, 2 HDRS */
	const void *original;       /* the original message (or only its header section) */
	size_t original_len;
	const dsn_rcpt *rcpts;
	size_t nrcpts;
} dsn_report;

/* Write the report (a complete RFC 5322 message, CRLF lines) to out. The subject follows
 * the most serious action: failed > delayed > delivered/relayed/expanded.
 * 0 ok; -1 when there is no recipient or no sender to report to. */
int deliver_dsn_build(const dsn_report *r, tbuf *out);

/* "failed", "delayed", "delivered", "relayed", "expanded". */
const char *deliver_dsn_action_name(dsn_action a);

/* 1 when a recipient with RFC 3461 NOTIFY bits `notify` (DELIVER_NOTIFY_*, 0 = not
 * given) asks for a report of action a: never with NEVER; failures by default or with
 * FAILURE; delays by default or with DELAY; successes only with SUCCESS. */
int deliver_dsn_wanted(uint32_t notify, dsn_action a);

/* Build the report and hand it to the deliverer as a message from the null sender
 * (service "DSN", NOTIFY=NEVER) to r->sender: delivered locally or queued. cb (may be
 * NULL) runs as for deliver_submit. A report to the null sender is never made: cb gets
 * rc STORE_EINVAL. */
void deliver_dsn_submit(deliverer *d, const dsn_report *r, tern_io *io,
			void (*cb)(const deliver_result *res, void *arg), void *arg);

#endif
