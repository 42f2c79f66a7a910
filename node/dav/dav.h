/* dav.h - calendars and contacts over HTTP (issue 7): CalDAV (RFC 4791, 6638 scheduling,
 * 6578 sync-collection), CardDAV (RFC 6352), discovery (RFC 6764), iCal publishing and the
 * free/busy URL, served on the http, http_alt, https and https_alt services through the
 * node/http layer. The one public header of node/dav/.
 *
 * URL space (DOMAIN and USER lower case; COLL a collection name; OBJ an object href):
 *   /.well-known/caldav, /.well-known/carddav, /caldav, /carddav  -> 301 to /dav/principals/
 *   /dav/principals/                      the authenticated user's principal (redirect)
 *   /dav/principals/DOMAIN/USER/          principal (current-user-principal target)
 *   /calendars/DOMAIN/USER/               calendar home (the guide's URL form)
 *   /calendars/DOMAIN/USER/COLL/[OBJ]     calendars, schedule inbox "inbox", outbox "outbox"
 *   /addressbooks/DOMAIN/USER/COLL/[OBJ]  address books; "gal" = the domain's GAL, read-only
 *   /ical/DOMAIN/USER/COLL.ics            a calendar as one iCalendar file (owner, Basic auth)
 *   /ical/public/DOMAIN/COLL.ics          a calendar marked public (no auth)
 *   /freebusy/USER@DOMAIN[.ifb]?start=..&end=..   VFREEBUSY of a user or resource
 * Users reach their own collections only (sharing and ACLs come later); resources'
 * calendars are readable by their manager. Requests for a user homed on another node are
 * proxied there (cluster). */
#ifndef TERN_DAV_H
#define TERN_DAV_H
#include "auth.h"
#include "auth_gssapi.h"
#include "deliver.h"
#include "http.h"
#include "store.h"

typedef struct cluster cluster;

typedef struct dav_env {
	store *st;
	const tern_conf *conf;
	tern_pool *auth_pool;        /* password checks (Basic) and other blocking work */
	auth_lockout *lockout;
	deliverer *dlv;              /* iMIP: invitations and replies to external attendees */
	cluster *cl;                 /* NULL when standalone */
	const char *node_name;
	const char *hostname;        /* Internet hostname (absolute URLs, iMIP From) */
	/* Kerberos single sign-on ("Authorization: Negotiate", RFC 4559) with the HTTP/
	 * service key; NULL = Basic only. */
	const auth_gssapi_conf *gssapi;
} dav_env;

typedef struct dav dav;

dav *dav_new(const dav_env *env);
void dav_free(dav **d);
/* The http_handler_fn of the DAV services; ctx is the dav object. */
void dav_handle(http_request *req, void *ctx);

/* Make a user's default collections when missing: calendar "calendar" (VEVENT),
 * "tasks" (VTODO), "inbox", "outbox", address book "contacts". Blocking; idempotent. */
int dav_provision(store *st, const uint8_t owner[16], int is_resource);

#endif
