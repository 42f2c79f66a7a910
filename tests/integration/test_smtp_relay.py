#!/usr/bin/python3
"""Relay control (issue 3, guide ch. 12.2): an unauthenticated Internet client (127.0.0.2)
may not relay (554 5.7.1 and the guide's security.log line); the "Local clients" group
(127.0.0.1) and SMTP-authenticated users may, and their mail reaches the remote MX (an
aiosmtpd sink, by [queue] static_mx); a failed AUTH takes the IP group's right away (the
guide's exception); open-relay probes (percent hack, bang path, source route, quoted local
part, user@other@ours) are refused; directory-harvest protection blocks an address after
max_unknown_rcpts unknown recipients and logs it; ETRN only for relay clients."""
import base64
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

D = "example.test"
BOB = "bob@" + D
ALICE = "alice@" + D
PW = ternlib.USER_PASSWORD
MAX_UNKNOWN = 3


def plain_b64(user, password):
    return base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()


class SmtpRelayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sink = ternlib.SmtpSink()
        conf = {"server": {"hostname": "mx.example.test"},
                "security": {"lockout_threshold": 0},
                "smtpd": {"max_unknown_rcpts": MAX_UNKNOWN, "harvest_block": 60, "max_failed_cmds": 0,
                          "max_msgs_per_hour_per_ip": 0},
                "queue": {"static_mx": "remote.test=" + cls.sink.address, "retry_interval": 1,
                          "check_interval": 1, "use_tls": False}}
        try:
            cls.node = ternlib.Node(name="smtpr1", domain=D, conf=conf)
        except Exception:
            cls.sink.stop()
            raise
        try:
            cls.node.start()
            cls.node.add_user(BOB)
            cls.node.add_user(ALICE)
        except Exception:
            cls.node.cleanup()
            cls.sink.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()
        cls.sink.stop()

    def tearDown(self):
        self.assertTrue(self.node.alive(), "ternd died\n" + self.node.output_tail())

    def rcpt_code(self, source, rcpt, sender="spam@ext.test", svc="smtp", auth=None, starttls=False):
        """(code, text) of RCPT TO:<rcpt> in a fresh session (auth = (user, password))."""
        s = self.node.smtp(svc, source=source, starttls=starttls)
        try:
            if auth:
                code, text = s.docmd("AUTH", "PLAIN " + plain_b64(*auth))
                if code != 235:
                    return code, text
            code, text = s.docmd("MAIL FROM:<%s>" % sender)
            self.assertEqual(code, 250, text)
            return s.docmd("RCPT TO:%s" % (rcpt if rcpt.startswith("<") else "<%s>" % rcpt))
        finally:
            try:
                s.quit()
            except Exception:
                s.close()

    def relay_lines(self, source, sender, rcpt):
        line = "Relay attempt from IP address %s, mail from <%s> to <%s> rejected" % (source, sender, rcpt)
        return [x for x in self.node.log_text("security").splitlines() if x.endswith(line)]

    def test_relay_refused_from_internet(self):
        rcpt = "victim1@remote.test"
        code, text = self.rcpt_code("127.0.0.2", rcpt, sender="s1@ext.test")
        self.assertEqual(code, 554, text)
        self.assertTrue(text.startswith(b"5.7.1"), text)
        self.node.wait_for(lambda: self.relay_lines("127.0.0.2", "s1@ext.test", rcpt), 10,
                           "the relay attempt in security.log:\n" + self.node.log_text("security")[-1500:])
        self.assertEqual(self.sink.attempts_for(rcpt), [])
        # Local recipients are still fine for the same client.
        self.assertEqual(self.rcpt_code("127.0.0.2", BOB)[0], 250)

    def test_relay_allowed_for_local_clients(self):
        subj = "relay-local-%d" % time.time_ns()
        rcpt = "friend@remote.test"
        self.assertEqual(self.node.send_mail(ALICE, [rcpt], ternlib.make_message(subj, ALICE, rcpt),
                                             source="127.0.0.1"), {})
        got = [m for m in self.sink.wait_received(rcpt) if ("Subject: " + subj).encode() in m["content"]]
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0]["mail_from"], ALICE)
        self.assertEqual(got[0]["rcpt_tos"], [rcpt])
        self.assertIn(b"Received: ", got[0]["content"])

    def test_relay_allowed_when_authenticated(self):
        for svc in ("smtp", "submission"):
            with self.subTest(svc=svc):
                subj = "relay-auth-%s-%d" % (svc, time.time_ns())
                rcpt = "auth-%s@remote.test" % svc
                s = self.node.smtp(svc, source="127.0.0.2", starttls=True)
                self.addCleanup(s.close)
                self.assertEqual(s.docmd("AUTH", "PLAIN " + plain_b64(ALICE, PW))[0], 235)
                self.assertEqual(s.sendmail(ALICE, [rcpt], ternlib.make_message(subj, ALICE, rcpt)), {})
                s.quit()
                got = self.sink.wait_received(rcpt)
                self.assertEqual(got[0]["mail_from"], ALICE)
                self.assertIn(("Subject: " + subj).encode(), got[0]["content"])

    def test_failed_auth_cancels_ip_group(self):
        """Guide: with the IP group and SMTP auth both on, a client whose AUTH failed is
        not let through by the IP group."""
        code, text = self.rcpt_code("127.0.0.1", "afterfail@remote.test", auth=(ALICE, "bad-password"))
        self.assertEqual(code, 535, text)
        s = self.node.smtp("smtp", source="127.0.0.1")
        self.addCleanup(s.close)
        self.assertEqual(s.docmd("AUTH", "PLAIN " + plain_b64(ALICE, "bad-password"))[0], 535)
        self.assertEqual(s.docmd("MAIL FROM:<%s>" % ALICE)[0], 250)
        code, text = s.docmd("RCPT TO:<afterfail@remote.test>")
        self.assertEqual(code, 554, text)
        self.assertEqual(s.docmd("RCPT TO:<%s>" % BOB)[0], 250)
        s.quit()

    def test_open_relay_probes_refused(self):
        probes = ["<probe1%%remote.test@%s>" % D,
                  "<remote.test!probe2@%s>" % D,
                  "<@%s:probe3@remote.test>" % D,
                  '<"probe4@remote.test"@%s>' % D,
                  "<probe5@remote.test@%s>" % D,
                  "<probe6%%remote.test@[127.0.0.1]>",
                  "<@%s,@mx.example.test:probe7@remote.test>" % D]
        for p in probes:
            with self.subTest(probe=p):
                code, text = self.rcpt_code("127.0.0.4", p)
                self.assertGreaterEqual(code, 400, "open relay probe %s accepted: %d %s" % (p, code, text))
        time.sleep(2)
        for a, _ in self.sink.attempts:
            self.assertNotIn("probe", a, "a probe reached the remote MX: %r" % a)
        self.assertFalse([q for q in self.node.queue_list() if "probe" in str(q.get("to"))])

    def blocked(self, source):
        """True when source can no longer give mail to a valid local recipient."""
        try:
            r = self.node.raw_smtp(source=source, timeout=10)
        except (ConnectionError, socket.timeout, EOFError):
            return True
        try:
            if r.greeting[0] != 220:
                return True
            if r.cmd("EHLO client.test")[0] != 250 or r.cmd("MAIL FROM:<h@ext.test>")[0] != 250:
                return True
            return r.cmd("RCPT TO:<%s>" % BOB)[0] != 250
        except (EOFError, ConnectionError, socket.timeout):
            return True
        finally:
            r.close()

    def test_harvest_protection(self):
        src = "127.0.0.3"
        self.assertFalse(self.blocked(src))
        for i in range(MAX_UNKNOWN):
            code, text = self.rcpt_code(src, "harvest%d@%s" % (i, D))
            self.assertEqual(code, 550, text)
            self.assertTrue(text.startswith(b"5.1.1"), text)
        if not self.blocked(src):
            # "after N unknown recipients": allow the (N+1)-th to be the one that trips it.
            self.rcpt_code(src, "harvest%d@%s" % (MAX_UNKNOWN, D))
            self.assertTrue(self.blocked(src), "not blocked after %d unknown recipients" % (MAX_UNKNOWN + 1))
        self.node.wait_for(lambda: ternlib.log_lines(self.node, "security",
                                                     r"Directory harvest attack from 127\.0\.0\.3 detected"), 10,
                           "the harvest line in security.log:\n" + self.node.log_text("security")[-1500:])
        self.assertFalse(self.blocked("127.0.0.5"), "another address was blocked too")
        self.assertFalse(self.blocked("127.0.0.1"))

    def test_etrn(self):
        s = self.node.smtp(source="127.0.0.1")
        self.addCleanup(s.close)
        code, text = s.docmd("ETRN", "remote.test")
        self.assertIn(code, (250, 251, 252, 253), text)
        s.quit()
        s = self.node.smtp(source="127.0.0.2")
        self.addCleanup(s.close)
        code, text = s.docmd("ETRN", "remote.test")
        self.assertGreaterEqual(code, 400, text)
        s.quit()


if __name__ == "__main__":
    ternlib.main()
