#!/usr/bin/python3
"""Calendars in a distributed domain (issue 7, DESIGN.md §5) with three nodes on
127.0.0.1 - A (master, mapping the slapd fixture), B and C (joined) - bob homed on C and
dave on B. Free/busy: an event that bob creates at C over CalDAV (C's DAV port, Basic with
the directory password) is pushed to the master; /freebusy/bob@... answers with it at A
(from the pushed data) and at B (asking the master), and still does with C stopped.
Resources: a room added on the master is booked by organisers on B and C for the same
slot at once (20 PUTs at each): every decision is taken by the master, one at a time, so
exactly one organiser's copy shows the room ACCEPTED and every other one DECLINED, and the
room's free/busy shows that one booking."""
import os
import re
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
import ternlib  # noqa: E402
import dirfixture  # noqa: E402
from ternlib import DavConn, ical_attendee_partstat  # noqa: E402

D = "example.test"
U = dirfixture.USERS
ROOM = "room7@" + D
WAIT = 30.0
PER_NODE = 20
ICAL_CT = {"Content-Type": "text/calendar; charset=utf-8"}
CONF = {"security": {"lockout_threshold": 0},
        "directory": {"poll_interval": 2, "reconcile_interval": 6, "timeout": 3},
        "cluster": {"address": "127.0.0.1", "heartbeat_interval": 1, "unavailable_after": 3,
                    "request_timeout": 5}}


def addr(name):
    return "%s@%s" % (name, D)


def cal_path(name):
    return "/calendars/%s/%s/calendar/" % (D, name)


def invitation(uid, organiser, start, end):
    extra = ["ORGANIZER:mailto:" + organiser,
             "ATTENDEE;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:" + organiser,
             "ATTENDEE;CUTYPE=ROOM;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:" + ROOM]
    return ternlib.ical_event(uid, start, end, "Planning", extra=extra)


class ClusterDav(ternlib.DirectoryClusterTestCase):
    CONF = CONF
    MAPPED = (addr("dave"),)
    WAIT = WAIT

    @classmethod
    def set_up_nodes(cls):
        homes = {addr("bob"): "node-c", addr("dave"): "node-b"}
        ternlib.set_homes(cls.a, homes)
        cls.a.ctl("resource", "add", ROOM, "--type", "room")
        ternlib.wait_homes(homes, cls.b, cls.c, timeout=WAIT)
        for n in (cls.b, cls.c):
            n.wait_for(lambda: n.run_ctl("resource", "show", ROOM).returncode == 0, WAIT,
                       "the room replicated to " + n.name)
        for n in (cls.a, cls.b, cls.c):
            ternlib.wait_dav(n)

    @staticmethod
    def user(node, name):
        return ternlib.user_record(node, addr(name))

    def conn(self, node, name):
        c = DavConn(node, addr(name), password=U[name]["password"])
        self.addCleanup(c.close)
        return c

    def freebusy(self, node, asker, address, start, end):
        """(status, [(start, end, fbtype)]) of /freebusy/address at node, asked by asker."""
        r = self.conn(node, asker).request("GET", "/freebusy/%s?start=%s&end=%s" % (
            address, ternlib.ical_stamp(start), ternlib.ical_stamp(end)))
        if r.status != 200:
            return r.status, r.text()
        return 200, [(s, e) for s, e, _ in ternlib.freebusy_periods(r.text())]

    # ---- tests (run in name order) ----

    def test_01_resource_on_master_race(self):
        hour = int(time.time()) // 3600 * 3600
        start, end = hour + 3 * 86400, hour + 3 * 86400 + 3600
        jobs = [(self.b, "dave", "race-b-%02d" % i) for i in range(PER_NODE)]
        jobs += [(self.c, "bob", "race-c-%02d" % i) for i in range(PER_NODE)]
        results = {}
        gate = threading.Barrier(len(jobs))

        def put(node, name, uid):
            c = DavConn(node, addr(name), password=U[name]["password"], timeout=60)
            try:
                gate.wait(30)
                r = c.request("PUT", cal_path(name) + uid + ".ics",
                              invitation(uid, addr(name), start, end), ICAL_CT)
                results[uid] = r.status
            except Exception as e:      # noqa: BLE001 - reported below
                results[uid] = repr(e)
            finally:
                c.close()
        threads = [threading.Thread(target=put, args=j) for j in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(sorted(results.values()), [201] * len(jobs), results)

        decisions = {}
        for node, name, uid in jobs:
            c = self.conn(node, name)

            def decided():
                r = c.request("GET", cal_path(name) + uid + ".ics")
                ps = ical_attendee_partstat(r.text(), ROOM) if r.status == 200 else None
                decisions[uid] = ps
                return ps not in (None, "NEEDS-ACTION")
            node.wait_for(decided, WAIT, "the room's decision on " + uid)
        accepted = [u for u, ps in decisions.items() if ps == "ACCEPTED"]
        declined = [u for u, ps in decisions.items() if ps == "DECLINED"]
        self.assertEqual(len(accepted), 1, decisions)
        self.assertEqual(len(declined), 2 * PER_NODE - 1, decisions)
        # decided on the master, once per request
        lines = [ln for ln in self.a.log_text("operations").splitlines() if "Booking: %s by" % ROOM in ln]
        self.assertEqual(len(lines), 2 * PER_NODE, lines)
        self.assertEqual(len([ln for ln in lines if ln.endswith(": accepted")]), 1, lines)
        self.assertIn("by the master", self.b.log_text("operations") + self.c.log_text("operations"))
        # the room's free/busy shows the one booking, at the master and through it
        for node, asker in ((self.a, "alice"), (self.b, "dave")):
            status, periods = self.freebusy(node, asker, ROOM, start - 3600, end + 3600)
            self.assertEqual(status, 200, periods)
            self.assertEqual(periods, [(start, end)])

    def test_02_freebusy_of_user_on_other_node(self):
        hour = int(time.time()) // 3600 * 3600
        start, end = hour + 5 * 86400, hour + 5 * 86400 + 5400
        ev = ternlib.ical_event("fb-c-1", start, end, "Dentist")
        r = self.conn(self.c, "bob").request("PUT", cal_path("bob") + "fb-c-1.ics", ev, ICAL_CT)
        self.assertEqual(r.status, 201, r)
        lo, hi = start - 86400, end + 86400
        self.a.wait_for(lambda: (start, end) in (self.freebusy(self.a, "alice", addr("bob"), lo, hi)[1] or []),
                        WAIT, "bob's event in the master's free/busy answer")
        status, periods = self.freebusy(self.b, "dave", addr("bob"), lo, hi)
        self.assertEqual(status, 200, periods)
        self.assertIn((start, end), periods)
        # no detail of the event leaks
        r = self.conn(self.a, "alice").request("GET", "/freebusy/%s?start=%s&end=%s" % (
            addr("bob"), ternlib.ical_stamp(lo), ternlib.ical_stamp(hi)))
        self.assertNotIn("Dentist", r.text())

        self.assertEqual(self.c.stop(), 0)
        self.a.wait_for(lambda: any(x["name"] == "node-c" and x["status"] == "unavailable"
                                    for x in self.a.ctl("cluster", "status")["nodes"]), WAIT,
                        "node-c unavailable at the master")
        for node, asker in ((self.a, "alice"), (self.b, "dave")):
            status, periods = self.freebusy(node, asker, addr("bob"), lo, hi)
            self.assertEqual(status, 200, periods)
            self.assertIn((start, end), periods)
        self.c.start()
        # a deletion at C once it is back reaches the master as well
        ternlib.wait_dav(self.c)
        r = self.conn(self.c, "bob").request("DELETE", cal_path("bob") + "fb-c-1.ics")
        self.assertEqual(r.status, 204, r)
        self.a.wait_for(lambda: (start, end) not in (self.freebusy(self.a, "alice", addr("bob"), lo, hi)[1] or []),
                        WAIT, "bob's deleted event gone from the master's free/busy answer")

    def test_03_invitation_across_nodes(self):
        """bob (home C) invites dave (home B): the invitation reaches dave's calendar on B
        by iMIP over the cluster's routing, dave's busy time reaches the master, and his
        acceptance comes back into bob's copy on C."""
        hour = int(time.time()) // 3600 * 3600
        start, end = hour + 7 * 86400, hour + 7 * 86400 + 3600
        uid = "cross-invite-1"
        extra = ["ORGANIZER:mailto:" + addr("bob"),
                 "ATTENDEE;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:" + addr("bob"),
                 "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:" + addr("dave")]
        ev = ternlib.ical_event(uid, start, end, "Cross-site review", extra=extra)
        bob = self.conn(self.c, "bob")
        r = bob.request("PUT", cal_path("bob") + uid + ".ics", ev, ICAL_CT)
        self.assertEqual(r.status, 201, r)
        dave = self.conn(self.b, "dave")
        got = {}

        def invited():
            # the invitation may be stored under any name: look for the UID
            body = ('<?xml version="1.0" encoding="utf-8"?>\n<c:calendar-query xmlns:d="DAV:" '
                    'xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/><c:calendar-data/>'
                    '</d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
                    '<c:prop-filter name="UID"><c:text-match collation="i;octet">%s</c:text-match>'
                    '</c:prop-filter></c:comp-filter></c:comp-filter></c:filter></c:calendar-query>' % uid)
            r = dave.request("REPORT", cal_path("dave"), body, {"Depth": "1"})
            for href, e in (ternlib.multistatus(r).items() if r.status == 207 else []):
                data = e["props"].get("{urn:ietf:params:xml:ns:caldav}calendar-data")
                if data is not None and uid in (data.text or ""):
                    got["href"], got["text"] = href, data.text
                    return True
            return False
        self.b.wait_for(invited, WAIT, "bob's invitation in dave's calendar on node-b")
        self.assertIn("Cross-site review", got["text"])
        lo, hi = start - 86400, end + 86400
        self.a.wait_for(lambda: (start, end) in (self.freebusy(self.a, "alice", addr("dave"), lo, hi)[1] or []),
                        WAIT, "the invitation in dave's free/busy at the master")
        # dave accepts on B: the REPLY travels to bob's home and updates his copy on C
        lines = got["text"].replace("\r\n", "\n").replace("\n ", "").split("\n")
        lines = [re.sub(r"PARTSTAT=[A-Z-]+", "PARTSTAT=ACCEPTED", ln)
                 if ln.startswith("ATTENDEE") and ("mailto:" + addr("dave")) in ln else ln for ln in lines]
        r = dave.request("PUT", got["href"], "\r\n".join(lines), ICAL_CT)
        self.assertIn(r.status, (201, 204), r)

        def accepted():
            r = bob.request("GET", cal_path("bob") + uid + ".ics")
            return r.status == 200 and ical_attendee_partstat(r.text(), addr("dave")) == "ACCEPTED"
        self.c.wait_for(accepted, WAIT, "dave's acceptance in bob's copy on node-c")

if __name__ == "__main__":
    ternlib.main()
