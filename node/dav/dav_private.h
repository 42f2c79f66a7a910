/* dav_private.h - the protocol side of node/dav/: request state, URL parsing, the XML
 * reader and writer, properties, and the method handlers (dav.c, dav_xml.c,
 * dav_propfind.c, dav_collection.c, dav_report.c, dav_put.c, dav_publish.c). Private to
 * node/dav/.
 *
 * A request is authenticated on the I/O thread's behalf by a job on the auth pool; the
 * same job then does the whole request (store reads, blocking store writes, libical,
 * scheduling) and fills r->status, r->ctype and r->body; the done callback replies on
 * the I/O thread. Nothing of a request is touched by two threads at once. */
#ifndef TERN_DAV_PRIVATE_H
#define TERN_DAV_PRIVATE_H
#include <libxml/tree.h>
#include <pthread.h>
#include "dav.h"
#include "dav_cal.h"
#include "dav_sched.h"

#define DAV_NS "DAV:"
#define DAV_NS_CAL "urn:ietf:params:xml:ns:caldav"
#define DAV_NS_CARD "urn:ietf:params:xml:ns:carddav"
#define DAV_NS_CS "http://calendarserver.org/ns/"
#define DAV_NS_APPLE "http://apple.com/ns/ical/"
/* Tern's own properties: published (a calendar served at /ical/public/..., "1" or "0"). */
#define DAV_NS_TERN "urn:tern:params:xml:ns:dav"
#define DAV_SYNC_PREFIX "http://tern/sync/"
#define DAV_GAL "gal"
#define DAV_AUTH_CACHE 64          /* recent Basic logins (yescrypt is slow on purpose) */
#define DAV_AUTH_CACHE_SECONDS 60
#define DAV_PROVISIONED_MAX 1024

/* What a request path names. */
typedef enum {
	DAV_P_ROOT,             /* "/" */
	DAV_P_PRINCIPALS,       /* /dav/principals/ : the authenticated user's principal */
	DAV_P_PRINCIPAL,        /* /dav/principals/DOMAIN/USER/ */
	DAV_P_HOME,             /* /calendars/DOMAIN/USER/ or /addressbooks/DOMAIN/USER/ */
	DAV_P_COLL,             /* .../COLL/ */
	DAV_P_OBJ,              /* .../COLL/OBJ */
	DAV_P_ICAL,             /* /ical/DOMAIN/USER/COLL.ics */
	DAV_P_ICAL_PUBLIC,      /* /ical/public/DOMAIN/COLL.ics or /ical/public/DOMAIN/USER/COLL.ics */
	DAV_P_FREEBUSY,         /* /freebusy/USER@DOMAIN[.ifb] */
	DAV_P_WELLKNOWN,        /* /.well-known/caldav|carddav, /caldav, /carddav */
} dav_path_kind;

typedef struct dav_path {
	dav_path_kind kind;
	int card;               /* under /addressbooks/ */
	char domain[256];
	char user[128];
	char coll[130];
	char obj[256];
} dav_path;

/* 0 ok; -1 for a path that is not ours (404); -2 for a malformed or traversing path (400).
 * raw: the raw request target (to see encoded slashes); path: percent-decoded. */
int dav_path_parse(const char *raw, const char *path, dav_path *p);

/* ---- distributed free/busy and bookings (dav_fb_push.c) ---- */
typedef struct dav_fb dav_fb;
/* Start the push worker and install the control plane's handlers; NULL without a
 * cluster (env->cl NULL). */
dav_fb *dav_fb_start(const dav_env *env);
void dav_fb_stop(dav_fb **fb);
/* A calendar of owner changed (after a PUT or DELETE succeeded): on a slave, its busy
 * time is pushed to the master shortly after (debounced, on the worker). Never blocks. */
void dav_fb_changed(dav_fb *fb, const uint8_t owner[16]);

typedef struct dav_cache_entry {
	uint8_t key[32];
	char account[400];
	int64_t expires;
} dav_cache_entry;

struct dav {
	dav_env env;
	pthread_mutex_t lock;
	uint8_t secret[32];
	dav_cache_entry cache[DAV_AUTH_CACHE];
	unsigned cache_next;
	uint8_t provisioned[DAV_PROVISIONED_MAX][16];
	unsigned nprovisioned;
	dav_fb *fb;                /* NULL without a cluster */
};

/* How the authenticated user may use the target owner's collections. */
enum { DAV_ACCESS_NONE = 0, DAV_ACCESS_READ = 1, DAV_ACCESS_WRITE = 2 };

typedef struct dav_req {
	dav *d;
	const dav_env *env;
	http_request *req;
	tern_io *io;
	char ip[64];
	int tls;                   /* the client connection is TLS (read on the I/O thread) */
	char *login_user;
	char *login_pass;
	char *negotiate;           /* the token of "Authorization: Negotiate" (base64), or NULL */
	const char *fail_reason;   /* authentication refused: why (security log) */
	/* the authenticated user */
	uint8_t uid[16];
	char account[400];         /* name@domain, lower case */
	char user[128], domain[256];
	char *full_name;
	int via_node;              /* a node sent it on the user's behalf (dav_proxy.h) */
	struct dav_proxy *proxy;   /* set: forward to the user's home node (dav_proxy.c) */
	/* the target */
	dav_path path;
	int has_owner;
	uint8_t owner[16];
	int owner_is_resource;
	Tern__Resource *resource;  /* owner_is_resource */
	int access;
	/* the answer */
	int status;
	const char *ctype;
	tbuf body;
} dav_req;

/* ---- replies (dav.c) ---- */
void dav_set(dav_req *r, int status, const char *ctype, const char *text);
/* A plain-text error. */
void dav_error(dav_req *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* status with a DAV:error body holding the precondition element <prefix:name/> of ns
 * (and an optional extra XML fragment inside it, e.g. a DAV:href). */
void dav_precondition(dav_req *r, int status, const char *ns, const char *name, const char *inner);
void dav_header(dav_req *r, const char *name, const char *value);
/* 400/404/409/503... for a store error code. */
int dav_store_status(int rc);
/* The owner's address (name@domain) and kind of the target. */
void dav_owner_address(const dav_req *r, char *out, size_t n);

/* ---- XML (dav_xml.c) ---- */
/* Parse a request body: NULL with 400 set on r for malformed XML or any DOCTYPE. */
xmlDoc *dav_xml_parse(dav_req *r);
/* 1 when node is element name in namespace ns. */
int dav_el_is(const xmlNode *node, const char *ns, const char *name);
/* First child element ns:name, or NULL. */
xmlNode *dav_xml_child(const xmlNode *node, const char *ns, const char *name);
/* Append s XML-escaped (text and attribute values). */
void dav_xml_esc(tbuf *b, const char *s, size_t n);
/* Append a URL path segment percent-encoded for an href. */
void dav_href_seg(tbuf *b, const char *s);
/* <?xml?> and the opening multistatus element with every namespace prefix declared. */
void dav_ms_begin(tbuf *b);
void dav_ms_end(tbuf *b);
/* The prefix we use for a namespace, or NULL when it has none. */
const char *dav_ns_prefix(const char *ns);
/* Open / close / empty element of any namespace (declared inline when unknown). */
void dav_xml_open(tbuf *b, const char *ns, const char *name);
void dav_xml_close(tbuf *b, const char *ns, const char *name);
void dav_xml_empty(tbuf *b, const char *ns, const char *name);
/* The text content of node (malloc'd, "" when none). */
char *dav_xml_text(const xmlNode *node);
/* Serialise an element with the namespaces it needs (a dead property's value). */
int dav_xml_dump(const xmlNode *node, tbuf *out);
/* "HTTP/1.1 200 OK" */
void dav_status_line(tbuf *b, int status);
/* Answer status with the XML document *xml (taken over: *xml is left empty). */
void dav_reply_xml(dav_req *r, int status, tbuf *xml);

/* ---- properties and collection methods (dav_propfind.c) ---- */
typedef enum {
	DAV_RES_ROOT,
	DAV_RES_PRINCIPAL,
	DAV_RES_HOME,
	DAV_RES_COLL,
	DAV_RES_GAL,
	DAV_RES_OBJ,
} dav_res_type;

typedef struct dav_res {
	dav_res_type type;
	const char *href;
	int card;                          /* HOME: address book home */
	const Tern__DavCollection *coll;   /* COLL, OBJ (NULL for GAL objects) */
	const Tern__DavObject *obj;        /* OBJ */
} dav_res;

/* A property request: the list of names (prop), or allprop / propname. */
typedef struct dav_propreq {
	int allprop, propname;
	size_t n;
	const xmlNode **props;   /* the requested property elements */
	const xmlNode *cal_data; /* C:calendar-data / CR:address-data element requested */
} dav_propreq;

/* 0 ok; -1 no DAV:prop (callers choose allprop or 400); -2 a CALDAV:expand without a
 * valid start and end (400). */
int dav_propreq_parse(const xmlNode *parent, dav_propreq *pr);
void dav_propreq_free(dav_propreq *pr);
/* One DAV:response for res with the requested properties. */
void dav_response(dav_req *r, const dav_res *res, const dav_propreq *pr, tbuf *out);
/* The href of a collection / home of the target owner. */
void dav_coll_href(const dav_req *r, int card, const char *coll, tbuf *out);
/* The collection of the target path (COLL or OBJ): 0 with *c_r; 1 for the GAL address
 * book (*c_r NULL); -1 with the answer set (404). */
int dav_target_coll(dav_req *r, Tern__DavCollection **c_r);
/* The collection a write goes to (COLL or OBJ): 0 with *c_r; -1 with the answer set
 * (403 need-privileges without write access, 403 for the read-only GAL, 404). */
int dav_target_coll_write(dav_req *r, Tern__DavCollection **c_r);
/* The GAL of the owner's domain as vCard objects (href ADDRESS.vcf, etag of the
 * content); free with store_free_list. ctag_r (may be NULL): a tag of the whole list. */
int dav_gal_objects(dav_req *r, Tern__DavObject ***list_r, size_t *n_r, char *ctag_r, size_t ctag_n);
/* Write an object's href (collection href + encoded name) into out. */
void dav_obj_href(const dav_req *r, const char *coll, const char *obj, tbuf *out);
/* The GAL entry named name ("ADDRESS.vcf") as a vCard object, or NULL (free with
 * store_free_record). */
Tern__DavObject *dav_gal_object(dav_req *r, const char *name);
/* One DAV:response for object o of the collection named coll (c its record, NULL for
 * the GAL) with the requested properties. */
void dav_obj_response(dav_req *r, const char *coll, const Tern__DavCollection *c, const Tern__DavObject *o,
		      const dav_propreq *pr, tbuf *out);
void dav_do_propfind(dav_req *r);
void dav_do_proppatch(dav_req *r);
void dav_do_mkcol(dav_req *r, int calendar);
/* Allowed calendar components of a collection (default VEVENT, VTODO, VJOURNAL). */
size_t dav_coll_components(const Tern__DavCollection *c, char *const **list_r);

/* ---- REPORT (dav_report.c) ---- */
void dav_do_report(dav_req *r);
/* Busy time of owner over [start, end): every calendar of the owner that is not
 * transparent, instances expanded (dav_ical_busy). Blocking. 0 or -1. Free *list. */
int dav_freebusy_collect(store *st, const uint8_t owner[16], int64_t start, int64_t end, dav_busy **list,
			 size_t *n);

/* ---- objects, iCal, free/busy, outbox (dav_put.c) ---- */
void dav_do_get(dav_req *r, int head);
void dav_do_put(dav_req *r);
void dav_do_delete(dav_req *r);
void dav_do_post(dav_req *r);
void dav_do_ical(dav_req *r, int public_only);
void dav_do_freebusy(dav_req *r);
/* Merge calendar objects into one VCALENDAR (VTIMEZONE once per TZID). */
typedef struct dav_ics_merge dav_ics_merge;
dav_ics_merge *dav_ics_merge_new(const char *calname);
void dav_ics_merge_add(dav_ics_merge *m, const char *data, size_t len);
void dav_ics_merge_finish(dav_ics_merge *m, tbuf *out);
void dav_ics_merge_free(dav_ics_merge **m);
/* Unquote an ETag header value ("abc", W/"abc") into out; 0 or -1. */
int dav_etag_unquote(const char *v, char *out, size_t n);

#endif
