#!/usr/bin/python3
"""Bad input on the DAV ports (issue 7): malformed XML (400), a DOCTYPE with entities
(billion laughs) and an external entity (file:///etc/passwd) refused without expansion
while ternd's RSS stays bounded, a 100 MB body refused with 413 before it is sent, a
chunked body over [dav] max_body_kb, a head over max_header_kb, invalid iCalendar (403
with the CalDAV precondition), a vCard in a calendar, an unknown method, path traversal
(.. and %2F), two PUTs racing on the same If-Match (one 2xx, one 412), a recurrence rule
that never ends, clients that vanish mid-body; after all of it the node still serves and
nothing was stored half-way."""
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402
from ternlib import DavConn, multistatus, ical_event, NS_CALDAV  # noqa: E402

D = "example.test"
ALICE = "alice@" + D
BOB = "bob@" + D
HOME = "/calendars/%s/alice/" % D
CAL = HOME + "calendar/"
BOB_CAL = "/calendars/%s/bob/calendar/" % D
ICAL_CT = {"Content-Type": "text/calendar; charset=utf-8"}
T0 = 1930298400          # 2031-03-03 10:00 UTC

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><d:displayname>&lol9;</d:displayname></d:prop></d:set>
</d:propertyupdate>"""

XXE_PROPPATCH = """<?xml version="1.0"?>
<!DOCTYPE d:propertyupdate [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><d:displayname>&xxe;</d:displayname></d:prop></d:set>
</d:propertyupdate>"""

XXE_PARAM = """<?xml version="1.0"?>
<!DOCTYPE d:propfind [ <!ENTITY % ext SYSTEM "file:///etc/passwd"> %ext; ]>
<d:propfind xmlns:d="DAV:"><d:prop><d:displayname/></d:prop></d:propfind>"""

XXE_DTD = """<?xml version="1.0"?>
<!DOCTYPE d:propfind SYSTEM "http://127.0.0.1:9/evil.dtd">
<d:propfind xmlns:d="DAV:"><d:prop><d:displayname/></d:prop></d:propfind>"""


def raw_head(method, path, user=ALICE, headers=()):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1",
             "Authorization: " + ternlib.basic_auth(user)] + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_status(sock, timeout=10):
    """The status code of the first response on sock (None when it closes without one)."""
    sock.settimeout(timeout)
    buf = b""
    deadline = time.time() + timeout
    while b"\r\n" not in buf and time.time() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionError, socket.timeout):
            break
        if not chunk:
            break
        buf += chunk
    if not buf.startswith(b"HTTP/1."):
        return None
    return int(buf.split(b" ", 2)[1])


class DavBadInputTest(ternlib.NodeTestCase):
    NODE = "davbad"
    DOMAIN = D
    CONF = {"dav": {"max_body_kb": 1024, "max_header_kb": 16, "max_instances": 1000}}
    USERS = (ALICE, BOB)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            ternlib.wait_dav(cls.node)
            c = DavConn(cls.node, BOB)
            r = c.request("PUT", BOB_CAL + "secret.ics",
                          ical_event("bob-secret", T0, T0 + 3600, "Bob top secret"), ICAL_CT)
            c.close()
            if r.status not in (201, 204):
                raise AssertionError("setup PUT for bob: %r" % r)
        except BaseException:
            cls.node.cleanup()
            raise

    def conn(self, user=ALICE):
        c = DavConn(self.node, user)
        self.addCleanup(c.close)
        return c

    def sock(self):
        s = socket.create_connection(("127.0.0.1", self.node.port(ternlib.DAV_HTTP)), 10)
        self.addCleanup(s.close)
        return s

    def assert_serves(self):
        r = self.conn().propfind(CAL, ["d:getetag"], depth=1)
        self.assertEqual(r.status, 207, "the node no longer serves DAV: %r" % r)
        return multistatus(r)

    def assert_no_object(self, path):
        self.assertEqual(self.conn().request("GET", path).status, 404, "%s was stored" % path)

    # ---- XML ----

    def test_malformed_xml(self):
        c = self.conn()
        for body in ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop>',
                     '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop></d:propfind></d:prop>',
                     '<?xml version="1.0"?><x:propfind xmlns:d="DAV:"><d:prop/></x:propfind>',
                     '<?xml version="1.0"?>\x00\x01\x02',
                     '<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:"><d:prop>\xff\xfe</d:prop></d:propfind>'):
            r = c.request("PROPFIND", CAL, body.encode("latin-1"), {"Content-Type": "application/xml"}, depth=0)
            self.assertEqual(r.status, 400, "%r: %r" % (body, r))
        for method, body in (("REPORT", '<?xml version="1.0"?><c:calendar-query xmlns:c="%s"><c:filter>' % NS_CALDAV),
                             ("PROPPATCH", '<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:"><d:set>'),
                             ("MKCALENDAR", '<?xml version="1.0"?><c:mkcalendar xmlns:c="%s"><oops' % NS_CALDAV)):
            path = HOME + "never-made/" if method == "MKCALENDAR" else CAL
            r = c.request(method, path, body, {"Content-Type": "application/xml"}, depth=1)
            self.assertEqual(r.status, 400, "%s: %r" % (method, r))
        self.assertEqual(c.propfind(HOME + "never-made/", ["d:resourcetype"]).status, 404)
        # a REPORT the server does not know: 403/501 with supported-report, or 400/415
        r = c.report(CAL, '<?xml version="1.0"?><x:weird-report xmlns:x="urn:x"/>')
        self.assertIn(r.status, (400, 403, 415, 501), r)
        self.assert_serves()

    def test_entity_expansion_refused(self):
        rss0 = self.node.rss_kb()
        c = self.conn()
        t0 = time.time()
        r = c.request("PROPPATCH", CAL, BILLION_LAUGHS, {"Content-Type": "application/xml"})
        self.assertLess(time.time() - t0, 5, "billion laughs took long: expanded?")
        self.assertIn(r.status, (400, 403, 415), r)
        self.assertNotIn(b"lollol", r.body)
        for body in (XXE_PROPPATCH,):
            r = c.request("PROPPATCH", CAL, body, {"Content-Type": "application/xml"})
            self.assertIn(r.status, (400, 403, 415), r)
            self.assertNotIn(b"root:", r.body)
        for body in (XXE_PARAM, XXE_DTD, BILLION_LAUGHS.replace("propertyupdate", "propfind")):
            r = c.request("PROPFIND", CAL, body, {"Content-Type": "application/xml"}, depth=0)
            self.assertIn(r.status, (400, 403, 415), r)
            self.assertNotIn(b"root:", r.body)
            self.assertNotIn(b"lollol", r.body)
        ms = multistatus(c.propfind(CAL, ["d:displayname"]))
        dn = list(ms.values())[0]["props"].get("{DAV:}displayname")
        text = (dn.text or "") if dn is not None else ""
        self.assertNotIn("root:", text)
        self.assertNotIn("lollol", text)
        for _ in range(20):
            c.request("PROPPATCH", CAL, BILLION_LAUGHS, {"Content-Type": "application/xml"})
        growth = self.node.rss_kb() - rss0
        self.assertLess(growth, 150 * 1024, "ternd RSS grew by %d KiB on entity bombs" % growth)
        self.assert_serves()

    # ---- sizes ----

    def test_100mb_body_refused_early(self):
        s = self.sock()
        s.sendall(raw_head("PUT", CAL + "huge.ics", headers=["Content-Type: text/calendar",
                                                               "Content-Length: %d" % (100 * 1024 * 1024)]))
        t0 = time.time()
        try:
            s.sendall(b"BEGIN:VCALENDAR\r\n" + b"X" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        st = read_status(s, timeout=10)
        self.assertEqual(st, 413, "a 100 MB Content-Length")
        self.assertLess(time.time() - t0, 5)
        s.close()
        # the same with Expect: 100-continue: 413 instead of 100
        s = self.sock()
        s.sendall(raw_head("PUT", CAL + "huge2.ics", headers=["Content-Type: text/calendar", "Expect: 100-continue",
                                                                "Content-Length: %d" % (100 * 1024 * 1024)]))
        self.assertEqual(read_status(s, timeout=10), 413)
        s.close()
        self.assert_no_object(CAL + "huge.ics")
        self.assert_no_object(CAL + "huge2.ics")
        self.assertTrue(self.node.alive())
        self.assert_serves()

    def test_chunked_body_over_limit(self):
        s = self.sock()
        s.sendall(raw_head("PUT", CAL + "chunked.ics", headers=["Content-Type: text/calendar",
                                                                  "Transfer-Encoding: chunked"]))
        chunk = b"X" * 65536
        sent = 0
        status = None
        try:
            while sent < 4 * 1024 * 1024:               # 4x the 1 MiB limit
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status = read_status(s, timeout=10)
        self.assertIn(status, (413, None), "chunked body past max_body_kb")
        s.close()
        self.assert_no_object(CAL + "chunked.ics")
        # a small chunked PUT is fine
        body = ical_event("chunked-ok", T0 + 86400, T0 + 90000, "Chunked").encode()
        s = self.sock()
        s.sendall(raw_head("PUT", CAL + "chunked-ok.ics", headers=["Content-Type: text/calendar",
                                                                     "Transfer-Encoding: chunked"]))
        s.sendall(b"%x\r\n" % 40 + body[:40] + b"\r\n" + b"%x\r\n" % (len(body) - 40) + body[40:] + b"\r\n0\r\n\r\n")
        self.assertEqual(read_status(s), 201)
        self.assertIn("UID:chunked-ok", self.conn().request("GET", CAL + "chunked-ok.ics").text())

    def test_huge_head(self):
        s = self.sock()
        s.sendall(raw_head("PROPFIND", CAL, headers=["X-Filler: " + "a" * 40000, "Depth: 0"]))
        self.assertIn(read_status(s), (400, 413, 431, None))
        s.close()
        s = self.sock()
        s.sendall(raw_head("PROPFIND", CAL, headers=["X-F%d: %s" % (i, "b" * 100) for i in range(300)]))
        self.assertIn(read_status(s), (400, 413, 431, None))
        s.close()
        self.assert_serves()

    # ---- objects ----

    def test_invalid_icalendar(self):
        c = self.conn()
        cases = {
            "garbage.ics": ("this is not iCalendar", ("valid-calendar-data",)),
            "truncated.ics": ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:t1\r\nDTSTART:20310303T100000Z\r\n",
                              ("valid-calendar-data",)),
            "bad-date.ics": (ical_event("bd1", "20311345T990000Z", "20311346T990000Z"), ("valid-calendar-data",)),
            "method.ics": (ical_event("m1", T0, T0 + 3600).replace("VERSION:2.0", "VERSION:2.0\r\nMETHOD:REQUEST"),
                           ("valid-calendar-object-resource",)),
            "two-uids.ics": (ical_event("u1", T0, T0 + 3600).replace(
                "END:VCALENDAR", "BEGIN:VEVENT\r\nUID:u2\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:20310303T120000Z\r\n"
                "END:VEVENT\r\nEND:VCALENDAR"), ("valid-calendar-object-resource",)),
            "no-uid.ics": (ical_event("x", T0, T0 + 3600).replace("UID:x\r\n", ""),
                           ("valid-calendar-object-resource", "valid-calendar-data")),
            "vcard.ics": (ternlib.vcard("vc1", "Card In Calendar"), ("valid-calendar-data", "supported-calendar-data")),
            "journal.ics": (ical_event("j1", T0, None, component="VJOURNAL"), ("supported-calendar-component",)),
        }
        for name, (body, preconds) in cases.items():
            r = c.request("PUT", CAL + name, body, ICAL_CT)
            self.assertIn(r.status, (400, 403, 415), "%s: %r" % (name, r))
            if r.status == 403:
                errs = ternlib.dav_error_elements(r)
                self.assertTrue(any("{%s}%s" % (NS_CALDAV, p) in errs for p in preconds),
                                "%s: precondition %s not in %r (%r)" % (name, preconds, errs, r))
            self.assert_no_object(CAL + name)
        # a wrong Content-Type for a calendar
        r = c.request("PUT", CAL + "ctype.ics", ical_event("ct1", T0, T0 + 3600), {"Content-Type": "image/png"})
        self.assertIn(r.status, (400, 403, 415), r)
        self.assert_no_object(CAL + "ctype.ics")
        # an overlong line of 900 KB inside the body limit is handled (stored or refused)
        r = c.request("PUT", CAL + "long.ics", ical_event("long1", T0, T0 + 3600, "S" * 900000), ICAL_CT)
        self.assertIn(r.status, (201, 400, 403, 413), r)
        self.assert_serves()

    def test_unknown_method(self):
        c = self.conn()
        # methods HTTP knows but DAV does not serve: 405 with Allow
        for m in ("PATCH", "LOCK", "UNLOCK", "COPY", "MOVE", "PURGE"):
            r = c.request(m, CAL)
            self.assertIn(r.status, (405, 501), "%s: %r" % (m, r))
            if r.status == 405:
                self.assertIn("PROPFIND", r.header("Allow", ""), "%s: %r" % (m, r.headers))
        # a method token nobody knows: refused by the HTTP parser (400) or 405/501
        for m in ("FROBNICATE", "BREW"):
            r = c.request(m, CAL)
            self.assertIn(r.status, (400, 405, 501), "%s: %r" % (m, r))
        r = c.request("POST", CAL + "x.ics", "hello", {"Content-Type": "text/plain"})
        self.assertIn(r.status, (400, 403, 405, 415), r)
        self.assert_serves()

    def test_path_traversal(self):
        c = self.conn()
        paths = [
            HOME + "../bob/calendar/secret.ics",
            HOME + "calendar/../../bob/calendar/secret.ics",
            HOME + "calendar/..%2F..%2Fbob%2Fcalendar%2Fsecret.ics",
            HOME + "..%2Fbob/calendar/secret.ics",
            HOME + "%2e%2e/bob/calendar/secret.ics",
            "/calendars/%s/alice%%2F..%%2Fbob/calendar/secret.ics" % D,
            "/ical/%s/alice/..%%2F..%%2Fbob/calendar.ics" % D,
            "/ical/%s/alice/../bob/calendar.ics" % D,
            "/freebusy/..%2F..%2Fetc%2Fpasswd",
            "/addressbooks/%s/alice/../bob/contacts/" % D,
            "/calendars/%s/alice/calendar/%%00secret.ics" % D,
        ]
        for p in paths:
            for method in ("GET", "PROPFIND"):
                r = c.request(method, p, depth=1 if method == "PROPFIND" else None)
                self.assertTrue(400 <= r.status < 500, "%s %s: %r" % (method, p, r))
                self.assertNotIn(b"top secret", r.body)
                self.assertNotIn(b"root:", r.body)
        for p in (CAL + "..%2Fescape.ics", CAL + "a%2Fb.ics", CAL + "..", HOME + "..%2F..%2Fbob%2Fcalendar%2Fx.ics"):
            r = c.request("PUT", p, ical_event("trav-%d" % len(p), T0, T0 + 3600), ICAL_CT)
            self.assertTrue(400 <= r.status < 500, "PUT %s: %r" % (p, r))
        ms = self.assert_serves()
        self.assertFalse([h for h in ms if "escape" in h or "a/b" in h], list(ms))
        bob = DavConn(self.node, BOB)
        self.addCleanup(bob.close)
        ms = multistatus(bob.propfind(BOB_CAL, ["d:getetag"], depth=1))
        self.assertEqual([h for h in ms if h != BOB_CAL], [BOB_CAL + "secret.ics"])

    def test_racing_if_match(self):
        c = self.conn()
        p = CAL + "race.ics"
        r = c.request("PUT", p, ical_event("race", T0, T0 + 3600, "v0"), ICAL_CT)
        self.assertEqual(r.status, 201, r)
        for rnd in range(10):
            etag = c.request("GET", p).header("ETag")
            barrier = threading.Barrier(2)
            results = [None, None]

            def put(i):
                cc = DavConn(self.node, ALICE)
                try:
                    cc.request("OPTIONS", CAL)            # connect and authenticate first
                    barrier.wait()
                    results[i] = cc.request("PUT", p, ical_event("race", T0, T0 + 3600, "r%d-%d" % (rnd, i)),
                                            dict(ICAL_CT, **{"If-Match": etag}))
                finally:
                    cc.close()
            ts = [threading.Thread(target=put, args=(i,)) for i in range(2)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            codes = sorted(x.status for x in results)
            self.assertEqual(len([s for s in codes if 200 <= s < 300]), 1, "round %d: %r" % (rnd, results))
            self.assertEqual(len([s for s in codes if s == 412]), 1, "round %d: %r" % (rnd, results))
            winner = [i for i in range(2) if 200 <= results[i].status < 300][0]
            self.assertIn("SUMMARY:r%d-%d" % (rnd, winner), c.request("GET", p).text())

    def test_unbounded_recurrence(self):
        c = self.conn()
        rss0 = self.node.rss_kb()
        r = c.request("PUT", CAL + "every-second.ics",
                      ical_event("every-second", T0, T0 + 1, "Tick", extra=["RRULE:FREQ=SECONDLY"]), ICAL_CT)
        self.assertIn(r.status, (201, 403), r)
        body = ('<?xml version="1.0" encoding="utf-8"?>\n<c:calendar-query xmlns:d="DAV:" xmlns:c="%s">'
                '<d:prop><c:calendar-data><c:expand start="20310101T000000Z" end="20320101T000000Z"/>'
                '</c:calendar-data></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
                '<c:time-range start="20310101T000000Z" end="20320101T000000Z"/></c:comp-filter></c:comp-filter>'
                '</c:filter></c:calendar-query>' % NS_CALDAV)
        t0 = time.time()
        r = c.report(CAL, body)
        self.assertLess(time.time() - t0, 20)
        self.assertIn(r.status, (207, 403, 507), r)
        if r.status == 207:
            self.assertLessEqual(r.body.count(b"BEGIN:VEVENT"), 10000 + 100, "expansion not bounded")
        t0 = time.time()
        r = c.request("GET", "/freebusy/%s?start=20310101T000000Z&end=20320101T000000Z" % ALICE)
        self.assertLess(time.time() - t0, 20)
        self.assertIn(r.status, (200, 403, 507), r)
        self.assertLess(self.node.rss_kb() - rss0, 300 * 1024)
        c.request("DELETE", CAL + "every-second.ics")
        self.assert_serves()

    def test_abrupt_disconnects(self):
        body = ical_event("cut", T0, T0 + 3600, "Cut").encode()
        for i in range(30):
            s = socket.create_connection(("127.0.0.1", self.node.port(ternlib.DAV_HTTP)), 10)
            try:
                if i % 3 == 0:       # mid-head
                    s.sendall(raw_head("PUT", CAL + "cut.ics")[:40])
                else:                # mid-body
                    s.sendall(raw_head("PUT", CAL + "cut.ics", headers=["Content-Type: text/calendar",
                                                                         "Content-Length: %d" % len(body)]))
                    s.sendall(body[:len(body) // 2])
                if i % 2 == 0:       # RST instead of FIN
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            finally:
                s.close()
        # a REPORT whose response is never read
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", self.node.port(ternlib.DAV_HTTP)), 10)
            s.sendall(raw_head("PROPFIND", CAL, headers=["Depth: 1", "Content-Length: 0"]))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        time.sleep(0.5)
        self.assert_no_object(CAL + "cut.ics")
        self.assert_serves()
        # slowloris: a request that never finishes is dropped after request_timeout, and
        # does not stop others being served meanwhile
        s = self.sock()
        s.sendall(b"PROPFIND " + CAL.encode() + b" HTTP/1.1\r\nHost: x\r\n")
        self.assert_serves()


if __name__ == "__main__":
    ternlib.main()
