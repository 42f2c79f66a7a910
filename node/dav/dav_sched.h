/* dav_sched.h - scheduling (RFC 6638 implicit scheduling, iTIP RFC 5546, iMIP RFC 6047)
 * and resource booking (guide ch. 22) of node/dav/. Private to node/dav/. Every call is
 * blocking (store writes, libical): run it on a worker, never on an I/O thread. */
#ifndef TERN_DAV_SCHED_H
#define TERN_DAV_SCHED_H
#include "buf.h"
#include "dav.h"

/* Who did a write: the owner of the calendar (a user; resources never write here) and
 * the address it schedules as (mailto: without the scheme). */
typedef struct dav_actor {
	uint8_t id[16];
	const char *address;        /* "bob@example.test" */
	const char *full_name;
} dav_actor;

/* After a calendar object of `who` changed (old = previous version or NULL for a create,
 * new = NULL for a delete), do what RFC 6638 asks of the server:
 *  - who is the ORGANIZER: REQUEST to every attendee added or changed, CANCEL to removed
 *    ones and to all on delete. A local user gets the message in its schedule inbox and
 *    the event in (or out of) its default calendar with PARTSTAT=NEEDS-ACTION; a resource
 *    decides at once (dav_book) and its REPLY updates the organizer's copy; an external
 *    attendee gets an iMIP mail through env->dlv.
 *  - who is an ATTENDEE whose PARTSTAT changed: REPLY to the organizer (local: update the
 *    organizer's copy and inbox; external: iMIP).
 * *updated receives the new text of who's own object when scheduling changed it
 * (SCHEDULE-STATUS, resources' PARTSTAT); left empty when nothing changed, then the
 * caller stores nothing more. 0, or -1 when the object could not be read at all. */
int dav_sched_after_write(const dav_env *env, const dav_actor *who, const Tern__DavObject *old,
			  const Tern__DavObject *new_obj, tbuf *updated);

/* POST of a VFREEBUSY REQUEST to the schedule outbox: the CALDAV:schedule-response XML
 * with one response per ATTENDEE (local users and resources; others 3.7 "invalid
 * calendar user"). 0 ok (out filled), -1 with a text in err (-> 400). */
int dav_sched_outbox_post(const dav_env *env, const dav_actor *who, const char *body, size_t len,
			  tbuf *out, tbuf *err);

/* Booking decision for resource r over the busy intervals of the invitation
 * (instances[0..n), expanded): "ACCEPTED" when r is available, `organizer` may book it
 * (bookable_by: anyone / server / domain / group:NAME / user:ADDRESS) and no accepted
 * booking overlaps; else "DECLINED" with a reason. One decision at a time per resource
 * (a lock), so concurrent requests never double-book. Records an accepted booking in
 * the resource's calendar (uid) in the same step. Returns 1 accepted, 0 declined, -1 on
 * error (reason in why). */
int dav_book(const dav_env *env, const Tern__Resource *r, const char *organizer,
	     const char *uid, const char *ical, size_t len, tbuf *why);

/* A mail with a text/calendar part (METHOD REQUEST/REPLY/CANCEL) reached a local user or
 * a resource (recipient): apply it - into the user's inbox/calendar, or a booking
 * decision for a resource with a REPLY mailed back. 0 handled, 1 not iTIP (deliver as
 * ordinary mail), -1 error. */
int dav_sched_imip_in(const dav_env *env, const char *recipient, const char *sender,
		      const char *ical, size_t len);

/* Scheduling changed owner's calendar (an invitation, a reply, a cancel): its busy time
 * is pushed to the master again (node/dav/dav_fb_push.c; nothing when not a slave). */
void dav_fb_calendar_changed(const uint8_t owner[16]);

#endif
