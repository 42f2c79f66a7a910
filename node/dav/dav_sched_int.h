/* dav_sched_int.h - private to the scheduling files of node/dav/ (dav_sched*.c,
 * dav_book*.c): iTIP text helpers over libical, store helpers for the calendars and
 * inboxes that scheduling writes, the per-owner locks and the iMIP mail. */
#ifndef TERN_DAV_SCHED_INT_H
#define TERN_DAV_SCHED_INT_H
#include <libical/ical.h>
#include "dav_cal.h"
#include "dav_sched.h"

#define SCHED_ADDR_MAX 320
#define SCHED_ATTENDEES_MAX 500     /* attendees scheduled per object */

/* ---- dav_sched_itip.c: iCalendar objects and iTIP messages ---- */

/* Parse data[0..len) as one VCALENDAR; NULL when it is not one. */
icalcomponent *sched_parse(const char *data, size_t len);
/* The address of a cal-address value ("mailto:Bob@X" -> "bob@x") into out. 0, or -1 when
 * it is not a mailto: address. */
int sched_addr(const char *value, char *out, size_t n);
/* The ORGANIZER of the first scheduling component (VEVENT/VTODO) into out. 0 or -1. */
int sched_organizer(icalcomponent *cal, char *out, size_t n);
/* The UID of the first scheduling component, or NULL. */
const char *sched_uid(icalcomponent *cal);
/* The first scheduling component (VEVENT, VTODO) of cal, or NULL. */
icalcomponent *sched_first(icalcomponent *cal);
/* The distinct attendee addresses of every component (lower case, the organizer left
 * out, and those with SCHEDULE-AGENT=CLIENT/NONE when server_only). Free with
 * sched_list_free. Returns the count. */
size_t sched_attendees(icalcomponent *cal, const char *organizer, int server_only, char ***list_r);
void sched_list_free(char ***list, size_t n);
int sched_list_has(char *const *list, size_t n, const char *addr);
/* The ATTENDEE property of addr in comp, or NULL. */
icalproperty *sched_attendee(icalcomponent *comp, const char *addr);
/* PARTSTAT of addr in the first component that lists it ("NEEDS-ACTION" when the
 * parameter is absent); NULL when addr is not an attendee. */
const char *sched_partstat(icalcomponent *cal, const char *addr);
/* Set (value != NULL) or remove a parameter of addr's ATTENDEE in every component.
 * Returns how many properties changed. */
int sched_set_param(icalcomponent *cal, const char *addr, const char *param, const char *value);
/* Remove the METHOD property (a stored object has none). */
void sched_strip_method(icalcomponent *cal);
/* The text of cal appended to out. */
void sched_text(icalcomponent *cal, tbuf *out);
/* An iTIP message from the object cal: method REQUEST (the object as it is), CANCEL
 * (STATUS:CANCELLED, attendees limited to `only` when not NULL, SEQUENCE + 1) or REPLY
 * (attendee `only` alone). No SCHEDULE-STATUS parameters. Appended to out. */
void sched_itip(icalcomponent *cal, icalproperty_method method, const char *only, tbuf *out);
/* The text of the components of cal apart from alarms and the parameters PARTSTAT,
 * SCHEDULE-STATUS of attendees and DTSTAMP: two versions with the same digest differ only
 * by replies. */
void sched_digest(icalcomponent *cal, tbuf *out);
/* SUMMARY of the first component, or "". */
const char *sched_summary(icalcomponent *cal);
/* 1 when the timing (DTSTART, DTEND, DURATION, DUE, RRULE, RDATE, EXDATE) of the two
 * versions differs. */
int sched_timing_changed(icalcomponent *a, icalcomponent *b);

/* ---- dav_sched_store.c: calendars and inboxes ---- */

/* Owner locks (striped by id): one writer of scheduling state at a time per owner. */
void sched_lock(const uint8_t owner[16]);
void sched_unlock(const uint8_t owner[16]);
/* A DavObject for text[0..len) checked by dav_ical_check, with busy periods filled (free
 * with tern__dav_object__free_unpacked). NULL with a reason in why. */
Tern__DavObject *sched_object(const dav_env *env, const char *text, size_t len, tbuf *why);
/* Where the busy time of o that matters ends: its end, or for a rule without end (or
 * one longer than that) the free/busy horizon ([dav] freebusy_max_days) past its start
 * or now, whichever is later. */
int64_t sched_span_end(const dav_env *env, const Tern__DavObject *o);
/* The calendar collection (kind CALENDAR) of owner holding uid, and the object; or
 * STORE_ENOTFOUND. Free both with store_free_record. */
int sched_find_uid(store *st, const uint8_t owner[16], const char *uid, Tern__DavCollection **c_r,
		   Tern__DavObject **o_r);
/* Store text as the object with its UID in collection `coll` of owner (replacing the one
 * with the same UID, if_match its etag when given, else a new href "<uid>.ics").
 * A store code. */
int sched_put(const dav_env *env, const uint8_t owner[16], const uint8_t coll[16], const char *text,
	      size_t len, const char *href, const char *if_match);
/* Store an iTIP message in owner's schedule inbox ("inbox"), a new href each time. */
int sched_inbox_put(const dav_env *env, const uint8_t owner[16], const char *text, size_t len);
/* The owner's default calendar ("calendar", else the first VEVENT calendar). */
int sched_default_calendar(store *st, const uint8_t owner[16], Tern__DavCollection **c_r);
/* Append the busy time of owner's non-transparent calendars within [start, end). */
int sched_owner_busy(store *st, const uint8_t owner[16], int64_t start, int64_t end, dav_busy **list,
		     size_t *n);

/* ---- dav_sched_deliver.c: one iTIP message to one local or external recipient ---- */

/* Deliver an iTIP message text of organizer/attendee `from` to local user, resource or
 * external address `to` (REQUEST/CANCEL from the organizer, REPLY from an attendee).
 * For a resource REQUEST, *partstat_r receives "ACCEPTED" or "DECLINED".
 * Returns the SCHEDULE-STATUS code ("1.1", "1.2", "2.0", "3.7", "5.1"). */
const char *sched_deliver(const dav_env *env, const char *from, const char *from_name, const char *to,
			  icalproperty_method method, const char *itip, size_t len,
			  const char **partstat_r);
/* Apply a REPLY of attendee `from` to the organizer's (local user owner) copy: the
 * attendee's PARTSTAT (and SCHEDULE-STATUS 2.0), and the message into the inbox. */
int sched_apply_reply(const dav_env *env, const uint8_t owner[16], const char *from, icalcomponent *reply,
		      const char *text, size_t len);
/* Apply a REQUEST or CANCEL to a local user's (owner) calendar and inbox. */
int sched_apply_request(const dav_env *env, const uint8_t owner[16], const char *addr,
			icalproperty_method method, icalcomponent *msg, const char *text, size_t len);

/* ---- dav_sched_imip.c: iMIP mail out ---- */

/* Mail an iTIP message (RFC 6047): From `from` to `to`, text/calendar; method=...
 * plus a text/plain part, through env->dlv; waits until queued. 0, or -1. */
int sched_imip_send(const dav_env *env, const char *from, const char *from_name, const char *to,
		    icalproperty_method method, const char *summary, const char *itip, size_t len);

/* ---- dav_book.c ---- */

/* Remove the booking uid from resource r's calendar (a CANCEL). 0 or a store code. */
int dav_book_cancel(const dav_env *env, const Tern__Resource *r, const char *uid);
/* The resource's address "name@domain" (lower case) into out. */
void dav_book_address(const Tern__Resource *r, char *out, size_t n);

#endif
