#!/usr/bin/python3
"""Resource booking (guide ch. 22, issue 7) on one node: `ternctl resource add|list|show|
set|remove`; booking = a CalDAV PUT of an event with ATTENDEE;CUTYPE=ROOM in the
organiser's calendar (implicit scheduling, RFC 6638): the room accepts when available, the
organiser may book it and the slot is free, else declines, and the organiser's copy shows
the room's PARTSTAT. 100 concurrent bookings of the same slot by 100 organisers: exactly
one ACCEPTED, 99 DECLINED, and the room's free/busy has one busy period. An unavailable
room declines and shows busy; bookable_by group:NAME admits members only; subjects are
hidden in the room's calendar; cancelling frees the slot."""
import calendar as pycal
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402
from ternlib import DavConn, ical_attendee_partstat, ical_components, ical_param, ical_value  # noqa: E402

D = "example.test"
ROOM = "room1@" + D
ICAL_CT = {"Content-Type": "text/calendar; charset=utf-8"}
N_ORGANISERS = 100


def ts(y, mo, d, h=0, mi=0):
    return pycal.timegm((y, mo, d, h, mi, 0))


def cal_path(user):
    local, dom = user.split("@")
    return "/calendars/%s/%s/calendar/" % (dom, local)


def invitation(uid, organiser, resource, start, end, summary, cutype="ROOM", others=()):
    extra = ["ORGANIZER;CN=Organiser:mailto:" + organiser,
             "ATTENDEE;CN=Organiser;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:" + organiser,
             "ATTENDEE;CUTYPE=%s;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:%s"
             % (cutype, resource)]
    extra += ["ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:" + o for o in others]
    extra.append("LOCATION:" + resource)
    return ternlib.ical_event(uid, start, end, summary, extra=extra)


class ResourceBookingTest(ternlib.NodeTestCase):
    NODE = "res1"
    DOMAIN = D
    CONF = {"security": {"lockout_threshold": 0}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.organisers = ["org%03d@%s" % (i, D) for i in range(N_ORGANISERS)]
            ternlib.add_users_fast(cls.node, cls.organisers + ["inside@" + D, "outside@" + D, "manager@" + D])
            ternlib.wait_dav(cls.node)
        except BaseException:
            cls.node.cleanup()
            raise

    def conn(self, user):
        c = DavConn(self.node, user)
        self.addCleanup(c.close)
        return c

    def book(self, user, uid, resource, start, end, summary="Meeting", cutype="ROOM", conn=None):
        c = conn or self.conn(user)
        return c.request("PUT", cal_path(user) + uid + ".ics",
                         invitation(uid, user, resource, start, end, summary, cutype), ICAL_CT)

    def partstat(self, user, uid, resource, timeout=20.0):
        """The resource's PARTSTAT in the organiser's copy, waiting until it is decided."""
        c = self.conn(user)
        last = [None]

        def decided():
            r = c.request("GET", cal_path(user) + uid + ".ics")
            if r.status != 200:
                last[0] = r
                return False
            last[0] = ical_attendee_partstat(r.text(), resource)
            return last[0] not in (None, "NEEDS-ACTION")
        try:
            self.node.wait_for(decided, timeout, "a decision of %s on %s" % (resource, uid))
        except AssertionError:
            raise AssertionError("no decision of %s in %s's copy of %s: %r" % (resource, user, uid, last[0]))
        return last[0]

    def freebusy(self, user, address, start, end):
        r = self.conn(user).request("GET", "/freebusy/%s?start=%s&end=%s"
                                    % (address, ternlib.ical_stamp(start), ternlib.ical_stamp(end)))
        self.assertEqual(r.status, 200, r)
        return r.text(), ternlib.freebusy_periods(r.text())

    # ---- ternctl ----

    def test_ternctl_resource_commands(self):
        self.node.ctl("resource", "add", "projector@" + D, "--type", "equipment",
                      "--manager", "manager@" + D, "--bookable-by", "domain")
        shown = self.node.ctl("resource", "show", "projector@" + D)
        text = str(shown).lower()
        self.assertIn("projector", text)
        self.assertIn("equipment", text)
        self.assertIn("manager@" + D, text)
        listed = self.node.ctl("resource", "list", D)
        self.assertIn("projector", str(listed))
        self.node.ctl("resource", "set", "projector@" + D, "--unavailable")
        self.assertIn("false", str(self.node.ctl("resource", "show", "projector@" + D)).lower())
        # the resource's address is taken: no user of that name
        code, err = self.node.ctl_fail("user", "add", "projector@" + D, "--password-file", self.node.userpw)
        self.assertTrue(err.strip(), "no error text")
        code, err = self.node.ctl_fail("resource", "add", "bad name@" + D, "--type", "room")
        code, err = self.node.ctl_fail("resource", "add", "thing@" + D, "--type", "spaceship")
        self.node.ctl("resource", "remove", "projector@" + D)
        self.assertNotIn("projector", str(self.node.ctl("resource", "list", D)))
        self.node.ctl_fail("resource", "show", "projector@" + D)

    # ---- booking ----

    def test_concurrent_bookings_one_wins(self):
        self.node.ctl("resource", "add", ROOM, "--type", "room")
        start, end = ts(2031, 6, 2, 10), ts(2031, 6, 2, 11)
        conns = {u: DavConn(self.node, u) for u in self.organisers}
        for c in conns.values():
            self.addCleanup(c.close)
        # connect and authenticate everyone first, so that the PUTs really race
        for u, c in conns.items():
            r = c.request("OPTIONS", cal_path(u))
            self.assertLess(r.status, 400, r)
        barrier = threading.Barrier(N_ORGANISERS)
        results = {}
        errors = []

        def one(u):
            try:
                barrier.wait(60)
                results[u] = self.book(u, "slot-" + u.split("@")[0], ROOM, start, end,
                                       summary="Booking by " + u, conn=conns[u])
            except Exception as e:          # noqa: BLE001 - reported below
                errors.append((u, repr(e)))
        threads = [threading.Thread(target=one, args=(u,)) for u in self.organisers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        self.assertEqual(errors, [])
        bad = {u: r for u, r in results.items() if r.status not in (201, 204)}
        self.assertEqual(bad, {}, "PUTs of invitations failed")
        decisions = {u: self.partstat(u, "slot-" + u.split("@")[0], ROOM) for u in self.organisers}
        accepted = [u for u, p in decisions.items() if p == "ACCEPTED"]
        declined = [u for u, p in decisions.items() if p == "DECLINED"]
        self.assertEqual(len(accepted), 1, "accepted by %r" % accepted)
        self.assertEqual(len(declined), N_ORGANISERS - 1,
                         {p: sum(1 for x in decisions.values() if x == p) for p in set(decisions.values())})
        # the room's free/busy: one busy hour
        text, periods = self.freebusy(self.organisers[0], ROOM, ts(2031, 6, 2), ts(2031, 6, 3))
        self.assertEqual([(s, e) for s, e, _ in periods], [(start, end)], text)
        # every organiser is told in its own copy: the room's ATTENDEE carries its answer
        # and a SCHEDULE-STATUS of a delivered request (RFC 6638 2.x)
        for u in (accepted[0], declined[0], declined[-1]):
            r = self.conn(u).request("GET", cal_path(u) + "slot-%s.ics" % u.split("@")[0])
            room_line = [line for comp in ical_components(r.text()) for line in comp.get("ATTENDEE", [])
                         if ical_value(line).lower() == "mailto:" + ROOM]
            self.assertEqual(len(room_line), 1, r.text())
            self.assertTrue((ical_param(room_line[0], "SCHEDULE-STATUS") or "").startswith("2."), room_line)
        # the room's calendar hides the subject (ClearEventSubject default): its free/busy
        # never shows it either
        self.assertNotIn("Booking by", text)

    def test_cancel_frees_the_slot(self):
        room = "roomcancel@" + D
        self.node.ctl("resource", "add", room, "--type", "room")
        a, b = self.organisers[0], self.organisers[1]
        start, end = ts(2031, 7, 1, 9), ts(2031, 7, 1, 10)
        self.assertIn(self.book(a, "cx-a", room, start, end).status, (201, 204))
        self.assertEqual(self.partstat(a, "cx-a", room), "ACCEPTED")
        self.assertIn(self.book(b, "cx-b", room, start, end).status, (201, 204))
        self.assertEqual(self.partstat(b, "cx-b", room), "DECLINED")
        # a books an adjacent slot: no overlap, accepted
        self.assertIn(self.book(a, "cx-a2", room, end, end + 3600).status, (201, 204))
        self.assertEqual(self.partstat(a, "cx-a2", room), "ACCEPTED")
        # a deletes its booking: CANCEL to the room, the slot is free again
        r = self.conn(a).request("DELETE", cal_path(a) + "cx-a.ics")
        self.assertIn(r.status, (200, 204), r)
        self.node.wait_for(lambda: [(s, e) for s, e, _ in self.freebusy(a, room, start - 3600, end + 7200)[1]]
                           == [(end, end + 3600)], 20, "the cancelled booking gone from the room's free/busy")
        self.assertIn(self.book(b, "cx-b2", room, start, end).status, (201, 204))
        self.assertEqual(self.partstat(b, "cx-b2", room), "ACCEPTED")

    def test_unavailable_room_declines(self):
        room = "roomclosed@" + D
        self.node.ctl("resource", "add", room, "--type", "room", "--unavailable")
        u = self.organisers[2]
        start, end = ts(2031, 8, 1, 9), ts(2031, 8, 1, 10)
        self.assertIn(self.book(u, "closed-1", room, start, end).status, (201, 204))
        self.assertEqual(self.partstat(u, "closed-1", room), "DECLINED")
        # shown busy over the whole range asked
        q0, q1 = ts(2031, 8, 1), ts(2031, 8, 2)
        text, periods = self.freebusy(u, room, q0, q1)
        self.assertTrue(periods, text)
        covered = min(s for s, _, _ in periods) <= q0 and max(e for _, e, _ in periods) >= q1
        self.assertTrue(covered, "an unavailable room is not busy over %s..%s:\n%s" % (q0, q1, text))
        # made available: bookable
        self.node.ctl("resource", "set", room, "--available")
        self.assertIn(self.book(u, "closed-2", room, start + 86400, end + 86400).status, (201, 204))
        self.assertEqual(self.partstat(u, "closed-2", room), "ACCEPTED")

    def test_bookable_by_group(self):
        self.node.ctl("group", "add", "staff@" + D, "--member", "inside@" + D)
        room = "roomstaff@" + D
        self.node.ctl("resource", "add", room, "--type", "room", "--bookable-by", "group:staff")
        start, end = ts(2031, 9, 1, 9), ts(2031, 9, 1, 10)
        self.assertIn(self.book("outside@" + D, "grp-out", room, start, end).status, (201, 204))
        self.assertEqual(self.partstat("outside@" + D, "grp-out", room), "DECLINED")
        self.assertIn(self.book("inside@" + D, "grp-in", room, start, end).status, (201, 204))
        self.assertEqual(self.partstat("inside@" + D, "grp-in", room), "ACCEPTED")
        # bookable by one user only
        room2 = "roomone@" + D
        self.node.ctl("resource", "add", room2, "--type", "room", "--bookable-by", "user:inside@" + D)
        self.assertIn(self.book("outside@" + D, "one-out", room2, start, end).status, (201, 204))
        self.assertEqual(self.partstat("outside@" + D, "one-out", room2), "DECLINED")
        self.assertIn(self.book("inside@" + D, "one-in", room2, start, end).status, (201, 204))
        self.assertEqual(self.partstat("inside@" + D, "one-in", room2), "ACCEPTED")

    def test_room_calendar_hides_subject(self):
        """ClearEventSubject: the manager reading the room's calendar sees the booking but
        not its subject or notes."""
        room = "roomhidden@" + D
        self.node.ctl("resource", "add", room, "--type", "room", "--manager", "manager@" + D)
        u = self.organisers[5]
        body = invitation("hide-1", u, room, ts(2031, 10, 1, 9), ts(2031, 10, 1, 10), "Secret layoffs")
        body = body.replace("LOCATION:", "DESCRIPTION:Confidential notes\r\nLOCATION:")
        self.assertIn(self.conn(u).request("PUT", cal_path(u) + "hide-1.ics", body, ICAL_CT).status, (201, 204))
        self.assertEqual(self.partstat(u, "hide-1", room), "ACCEPTED")
        m = self.conn("manager@" + D)
        rcal = cal_path(room)
        r = m.report(rcal, '<?xml version="1.0"?><c:calendar-query xmlns:d="DAV:" '
                           'xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><c:calendar-data/></d:prop>'
                           '<c:filter><c:comp-filter name="VCALENDAR"/></c:filter></c:calendar-query>')
        ms = ternlib.multistatus(r)
        texts = [e["props"]["{%s}calendar-data" % ternlib.NS_CALDAV].text for e in ms.values()
                 if "{%s}calendar-data" % ternlib.NS_CALDAV in e["props"]]
        self.assertEqual(len(texts), 1, r)
        self.assertIn("UID:hide-1", texts[0])
        self.assertNotIn("Secret layoffs", texts[0])
        self.assertNotIn("Confidential", texts[0])
        # another user cannot read the room's calendar at all
        self.assertIn(self.conn(self.organisers[6]).request("PROPFIND", rcal, depth=1).status, (403, 404))

    def test_equipment_and_recurring_conflict(self):
        eq = "beamer@" + D
        self.node.ctl("resource", "add", eq, "--type", "equipment")
        a, b = self.organisers[3], self.organisers[4]
        # a weekly booking on Mondays 14:00 for 4 weeks
        body = invitation("eq-weekly", a, eq, ts(2031, 3, 3, 14), ts(2031, 3, 3, 15), "Weekly", cutype="RESOURCE")
        body = body.replace("LOCATION:", "RRULE:FREQ=WEEKLY;COUNT=4\r\nLOCATION:")
        r = self.conn(a).request("PUT", cal_path(a) + "eq-weekly.ics", body, ICAL_CT)
        self.assertIn(r.status, (201, 204), r)
        self.assertEqual(self.partstat(a, "eq-weekly", eq), "ACCEPTED")
        # b wants the third Monday: conflicts with an instance
        self.assertIn(self.book(b, "eq-b", eq, ts(2031, 3, 17, 14, 30), ts(2031, 3, 17, 15, 30),
                                cutype="RESOURCE").status, (201, 204))
        self.assertEqual(self.partstat(b, "eq-b", eq), "DECLINED")
        # the Tuesday is free
        self.assertIn(self.book(b, "eq-b2", eq, ts(2031, 3, 18, 14), ts(2031, 3, 18, 15),
                                cutype="RESOURCE").status, (201, 204))
        self.assertEqual(self.partstat(b, "eq-b2", eq), "ACCEPTED")
        text, periods = self.freebusy(b, eq, ts(2031, 3, 1), ts(2031, 4, 1))
        self.assertEqual(len(periods), 5, text)


if __name__ == "__main__":
    ternlib.main()
