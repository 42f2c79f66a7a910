#!/usr/bin/python3
"""DAV requests of a user homed on another node (issue 7 item 1, DESIGN.md §5): two
nodes, "alpha" (master) and "beta" (joined with `ternctl cluster join`), and carol homed
on beta. At alpha, carol's PROPFIND, MKCALENDAR, PUT, GET, HEAD, REPORT and DELETE are
authenticated at alpha and forwarded to beta over TLS pinned to beta's certificate, with
alpha's node login and carol in X-Tern-User: what she writes is found at beta, the ETag
is beta's, If-Match / If-None-Match failures (412) come back as beta gave them, and so
do ETag, Location and the body. A wrong password is refused at alpha. At beta, the
X-Tern-User header with a user's own Basic credentials is ignored (she stays herself), a
node name with a wrong credential is refused. A home node that does not answer in
time gives 504 and one that is down 502, each with a clear text and a warning.log line
at alpha; once beta is back requests work again."""
import os
import signal
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402
from ternlib import DavConn, multistatus, ical_event, basic_auth  # noqa: E402

D = "example.test"
PW = ternlib.USER_PASSWORD
TIMEOUT = 3                   # [cluster] request_timeout
CAROL = "carol@" + D          # homed on beta
DAVE = "dave@" + D            # homed on alpha
CAL = "/calendars/%s/carol/" % D


def conf():
    return {"cluster": {"address": "127.0.0.1", "request_timeout": TIMEOUT,
                        "heartbeat_interval": 1, "unavailable_after": 3},
            "security": {"lockout_threshold": 5, "lockout_seconds": 600}}


def calendar_query():
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
            '<d:prop><d:getetag/><c:calendar-data/></d:prop>'
            '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
            '<c:time-range start="20310101T000000Z" end="20320101T000000Z"/>'
            '</c:comp-filter></c:comp-filter></c:filter></c:calendar-query>')


class ClusterDavProxyTest(ternlib.ClusterPairTestCase):
    DOMAIN = D
    CONF = conf()

    @classmethod
    def set_up_nodes(cls):
        cls.alpha.add_user(CAROL, "--home", "beta")
        cls.alpha.add_user(DAVE)
        ternlib.wait_homes({CAROL: "beta", DAVE: None}, cls.beta, timeout=20,
                           what="carol and dave replicated to beta")
        ternlib.wait_dav(cls.alpha)
        ternlib.wait_dav(cls.beta)

    def conn(self, node=None, user=CAROL, password=PW, tls=False):
        c = DavConn(node or self.alpha, user, password=password, tls=tls)
        self.addCleanup(c.close)
        return c

    def put_event(self, c, name, summary, headers=None):
        body = ical_event(name, "20310310T100000Z", "20310310T110000Z", summary)
        hdrs = {"Content-Type": "text/calendar; charset=utf-8"}
        hdrs.update(headers or {})
        return c.request("PUT", CAL + "calendar/%s.ics" % name, body, headers=hdrs)

    # ---- requests land on the home node ----

    def test_propfind_put_get_report_at_front(self):
        front = self.conn(tls=True)
        r = front.propfind(CAL, ["d:resourcetype", "d:displayname"], depth=1)
        ms = multistatus(r)
        self.assertIn(CAL + "calendar/", ms, r)
        self.assertIn(CAL + "inbox/", ms, r)
        self.assertIn("calendar-access", r.header("DAV", ""))

        name = "px-" + uuid.uuid4().hex[:8]
        r = self.put_event(front, name, "Proxied meeting", {"If-None-Match": "*"})
        self.assertEqual(r.status, 201, r)
        etag = r.header("ETag")
        self.assertTrue(etag and etag.startswith('"'), r.headers)

        # the object lives at beta, under beta's ETag
        home = self.conn(self.beta)
        r = home.request("GET", CAL + "calendar/%s.ics" % name)
        self.assertEqual(r.status, 200, r)
        self.assertIn(b"SUMMARY:Proxied meeting", r.body)
        self.assertEqual(r.header("ETag"), etag)

        r = front.request("GET", CAL + "calendar/%s.ics" % name)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("ETag"), etag)
        self.assertTrue(r.header("Content-Type", "").startswith("text/calendar"), r.headers)
        self.assertIn(b"SUMMARY:Proxied meeting", r.body)

        r = front.request("HEAD", CAL + "calendar/%s.ics" % name)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("ETag"), etag)
        self.assertEqual(r.body, b"")

        r = front.report(CAL + "calendar/", calendar_query())
        ms = multistatus(r)
        href = CAL + "calendar/%s.ics" % name
        self.assertIn(href, ms, r)
        self.assertEqual(ms[href]["props"]["{DAV:}getetag"].text, etag)

        r = front.request("DELETE", CAL + "calendar/%s.ics" % name, headers={"If-Match": etag})
        self.assertIn(r.status, (200, 204), r)
        self.assertEqual(home.request("GET", CAL + "calendar/%s.ics" % name).status, 404)

    def test_mkcalendar_at_front_made_at_home(self):
        front = self.conn()
        coll = "work-" + uuid.uuid4().hex[:6]
        r = front.request("MKCALENDAR", CAL + coll + "/")
        self.assertEqual(r.status, 201, r)
        r = self.conn(self.beta).propfind(CAL + coll + "/", ["d:resourcetype"], depth=0)
        self.assertIn(CAL + coll + "/", multistatus(r))

    def test_preconditions_relayed(self):
        front = self.conn()
        name = "pre-" + uuid.uuid4().hex[:8]
        r = self.put_event(front, name, "First")
        self.assertEqual(r.status, 201, r)
        etag = r.header("ETag")
        r = self.put_event(front, name, "Second", {"If-Match": '"not-the-etag"'})
        self.assertEqual(r.status, 412, r)
        r = self.put_event(front, name, "Again", {"If-None-Match": "*"})
        self.assertEqual(r.status, 412, r)
        r = self.put_event(front, name, "Third", {"If-Match": etag})
        self.assertIn(r.status, (200, 204), r)
        self.assertNotEqual(r.header("ETag"), etag)
        got = self.conn(self.beta).request("GET", CAL + "calendar/%s.ics" % name)
        self.assertIn(b"SUMMARY:Third", got.body)
        self.assertEqual(got.header("ETag"), r.header("ETag"))

    def test_wrong_password_stays_at_front(self):
        r = self.conn(password="wrong-password-7").propfind(CAL, ["d:resourcetype"])
        self.assertEqual(r.status, 401, r)
        self.assertIn("Failed DAV login from 127.0.0.1", self.alpha.log_text("security"))

    # ---- the home node trusts X-Tern-User from nodes only ----

    def test_forged_user_header_ignored(self):
        c = self.conn(self.beta)
        # carol's own credentials with dave in X-Tern-User: carol stays carol
        r = c.request("PROPFIND", "/calendars/%s/dave/" % D, headers={"X-Tern-User": DAVE, "Depth": "0"})
        self.assertEqual(r.status, 403, r)
        body = ('<?xml version="1.0" encoding="utf-8"?>\n<d:propfind xmlns:d="DAV:"><d:prop>'
                '<d:current-user-principal/></d:prop></d:propfind>')
        r = c.request("PROPFIND", "/dav/principals/", body, headers={"X-Tern-User": DAVE, "Depth": "0"})
        principals = [ternlib.href_text(e["props"].get("{DAV:}current-user-principal"))
                      for e in multistatus(r).values()]
        self.assertEqual(principals, ["/dav/principals/%s/carol/" % D], r)
        # a node name with a credential that is not the node's
        raw = DavConn(self.beta, tls=True)
        self.addCleanup(raw.close)
        r = raw.request("PROPFIND", CAL, headers={
            "Authorization": basic_auth("node/alpha", "00" * 32), "X-Tern-User": CAROL, "Depth": "0"})
        self.assertEqual(r.status, 401, r)
        self.assertIn("bad node credentials", self.beta.log_text("security"))
        # node credentials are taken over TLS only
        plain = DavConn(self.beta)
        self.addCleanup(plain.close)
        r = plain.request("PROPFIND", CAL, headers={
            "Authorization": basic_auth("node/alpha", "00" * 32), "X-Tern-User": CAROL, "Depth": "0"})
        self.assertEqual(r.status, 401, r)
        self.assertIn("node login without TLS", self.beta.log_text("security"))

    # ---- an unreachable home ----

    def test_zz_home_unreachable_then_back(self):
        os.kill(self.beta.proc.pid, signal.SIGSTOP)
        try:
            t0 = time.time()
            r = self.conn().propfind(CAL, ["d:resourcetype"])
            spent = time.time() - t0
        finally:
            os.kill(self.beta.proc.pid, signal.SIGCONT)
        self.assertEqual(r.status, 504, r)
        self.assertIn("on node beta, which cannot be reached", r.text())
        self.assertLess(spent, TIMEOUT + 5)
        self.assertGreater(spent, TIMEOUT - 1)
        self.assertIn("DAV request of %s from 127.0.0.1: home node beta unreachable: timed out" % CAROL,
                      self.alpha.log_text("warning"))

        self.beta.stop()
        try:
            r = self.conn().propfind(CAL, ["d:resourcetype"])
            self.assertEqual(r.status, 502, r)
            self.assertIn("on node beta, which cannot be reached", r.text())
            self.alpha.wait_for(lambda: "Connection refused" in self.alpha.log_text("warning"), 5,
                                "warning about the refused connection")
        finally:
            self.beta.start()
        ternlib.wait_dav(self.beta)
        r = self.conn().propfind(CAL, ["d:resourcetype"], depth=1)
        self.assertIn(CAL + "calendar/", multistatus(r))


if __name__ == "__main__":
    ternlib.main()
