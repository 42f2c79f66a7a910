#!/usr/bin/python3
"""Queue and outbound delivery (issue 3) against an aiosmtpd sink that stands for the remote
MX (remote.test -> the sink by [queue] static_mx): relayed mail arrives with its envelope;
a 451 then 250 is delivered on retry; a 550 brings an RFC 3464 DSN (multipart/report,
Action: failed, null sender) to the local sender; a long deferral brings a delay warning
and then a bounce; never a bounce to <>; `ternctl queue list|retry|remove|run`; the queue
survives a restart and kill -9; smtp counters in `ternctl stats`."""
import os
import re
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

D = "example.test"
ALICE = "alice@" + D
BOB = "bob@" + D
COUNTERS = ("received", "delivered", "relayed", "rejected", "queued")


def uniq(tag):
    return "q-%s-%d" % (tag, time.time_ns())


class QueueTestBase(unittest.TestCase):
    NAME = "smtpq"
    QUEUE = {}

    @classmethod
    def setUpClass(cls):
        cls.sink = ternlib.SmtpSink()
        queue = {"static_mx": "remote.test=" + cls.sink.address, "check_interval": 1, "use_tls": False}
        queue.update(cls.QUEUE)
        conf = {"server": {"hostname": "mx.example.test"},
                "smtpd": {"max_msgs_per_hour_per_ip": 0, "max_failed_cmds": 0, "max_unknown_rcpts": 0},
                "queue": queue}
        try:
            cls.node = ternlib.Node(name=cls.NAME, domain=D, conf=conf)
        except Exception:
            cls.sink.stop()
            raise
        try:
            cls.node.start()
            cls.node.add_user(ALICE)
            cls.node.add_user(BOB)
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

    def relay(self, rcpts, subject, sender=ALICE):
        """alice (a Local client, 127.0.0.1) sends subject to rcpts; all must be accepted."""
        msg = ternlib.make_message(subject, sender or "mailer@example.test", rcpts[0])
        self.assertEqual(self.node.send_mail(sender, rcpts, msg, source="127.0.0.1"), {})
        return msg

    def entries_to(self, rcpt):
        return [e for e in self.node.queue_list() if rcpt in str(e.get("to"))]

    def wait_entry(self, rcpt, timeout=20):
        found = []

        def ok():
            found[:] = self.entries_to(rcpt)
            return bool(found)
        self.node.wait_for(ok, timeout, "a queue entry for %s" % rcpt)
        return found[0]

    def wait_attempts(self, rcpt, n=1, timeout=20):
        self.node.wait_for(lambda: len(self.sink.attempts_for(rcpt)) >= n, timeout,
                           "%d delivery attempt(s) to %s at the sink" % (n, rcpt))

    def ctl_ok(self, *args):
        r = self.node.run_ctl(*args, json_out=False)
        self.assertEqual(r.returncode, 0, "ternctl %s: %s" % (" ".join(args), r.stderr))

    def dsns(self, who, action):
        """Delivery reports in who's INBOX with an 'Action: action' line."""
        out = []
        for _, raw, msg in self.node.mailbox(who):
            if msg.get_content_type() != "multipart/report":
                continue
            if re.search(rb"(?im)^Action:\s*" + action.encode() + rb"\b", raw):
                out.append((raw, msg))
        return out

    def wait_dsn(self, who, action, about, timeout=30):
        """The DSN with Action: action whose report names recipient about."""
        found = []

        def ok():
            found[:] = [d for d in self.dsns(who, action) if about.encode() in d[0]]
            return bool(found)
        self.node.wait_for(ok, timeout, "a DSN (Action: %s) about %s in %s" % (action, about, who))
        return found[0]


class QueueFastRetryTest(QueueTestBase):
    """retry_interval 1 s, warn after 2 s, bounce after 8 s."""
    NAME = "smtpq1"
    QUEUE = {"retry_interval": 1, "warn_after": 2, "bounce_after": 8}

    def test_relayed_mail_reaches_sink_with_envelope(self):
        subj = uniq("out")
        r1, r2 = "out1@remote.test", "out2@remote.test"
        self.relay([r1, r2], subj)
        got = self.sink.wait_received(r1)
        self.sink.wait_received(r2)
        msgs = [m for m in self.sink.messages if ("Subject: " + subj).encode() in m["content"]]
        rcpts = sorted(r for m in msgs for r in m["rcpt_tos"])
        self.assertEqual(rcpts, [r1, r2], "each recipient exactly once")
        for m in msgs:
            self.assertEqual(m["mail_from"], ALICE)
            rcv = ternlib.header_text(ternlib.parse_message(m["content"]), "Received")
            self.assertIn("by mx.example.test", rcv or "", "no Received of this server on top: %r" % rcv)
            self.assertNotIn(b"Return-Path:", m["content"], "Return-Path is for final delivery only")
            self.assertEqual(m["peer"][0], "127.0.0.1")
        self.assertEqual(len(got), 1)
        self.node.wait_for(lambda: not self.entries_to(r1), 10, "the delivered entry to leave the queue")
        rx = r"Sent: Queue-ID: \S+, Recipient: <out1@remote\.test>, Result: \w+, Status: 2\.\d\.\d"
        self.node.wait_for(lambda: ternlib.log_lines(self.node, "mail", rx), 10, "a Sent: line for out1")

    def test_temporary_failure_then_success(self):
        subj = uniq("later")
        rcpt = "later@remote.test"
        self.sink.script_rcpt(rcpt, ["451 4.3.0 try again later"])
        self.relay([rcpt], subj)
        got = self.sink.wait_received(rcpt, timeout=30)
        self.assertEqual(len(got), 1)
        attempts = self.sink.attempts_for(rcpt)
        self.assertEqual(attempts[0], "451 4.3.0 try again later")
        self.assertGreaterEqual(len(attempts), 2)
        time.sleep(1.5)
        self.assertEqual(len(self.sink.received_for(rcpt)), 1, "delivered twice")
        self.assertEqual(self.entries_to(rcpt), [])

    def test_permanent_failure_brings_dsn(self):
        subj = uniq("bounce")
        rcpt = "nobody@remote.test"
        self.sink.refuse_rcpt(rcpt, "550 5.1.1 no such user here")
        self.relay([rcpt], subj)
        raw, msg = self.wait_dsn(ALICE, "failed", rcpt)
        self.assertEqual(ternlib.header_text(msg, "Return-Path"), "<>", "a DSN must have the null sender")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        parts = {p.get_content_type(): p for p in msg.walk()}
        self.assertIn("message/delivery-status", parts)
        self.assertRegex(raw, rb"(?im)^Final-Recipient:\s*rfc822;\s*nobody@remote\.test")
        self.assertRegex(raw, rb"(?im)^Status:\s*5\.1\.1")
        self.assertRegex(raw, rb"(?im)^Reporting-MTA:\s*dns;\s*mx\.example\.test")
        self.assertIn(subj.encode(), raw, "the DSN does not carry the original headers")
        self.assertTrue(any(t in parts for t in ("message/rfc822", "text/rfc822-headers")))
        self.node.wait_for(lambda: not self.entries_to(rcpt), 10, "the failed entry to leave the queue")
        rx = r"Recv: Queue-ID: \S+, Service: DSN, From: <>, To: <alice@example\.test>, Size: \d+, Report: failed"
        self.node.wait_for(lambda: ternlib.log_lines(self.node, "mail", rx), 10, "the DSN's Recv: line in mail.log")
        self.sink.refuse_rcpt(rcpt, None)

    def test_delay_warning_then_bounce(self):
        subj = uniq("slow")
        rcpt = "slowpoke@remote.test"
        self.sink.refuse_rcpt(rcpt, "451 4.4.1 busy, come back later")
        self.relay([rcpt], subj)
        raw, _ = self.wait_dsn(ALICE, "delayed", rcpt, timeout=30)
        self.assertRegex(raw, rb"(?im)^Status:\s*4\.\d\.\d")
        self.wait_dsn(ALICE, "failed", rcpt, timeout=40)
        self.node.wait_for(lambda: not self.entries_to(rcpt), 10, "the bounced entry to leave the queue")
        self.assertGreaterEqual(len(self.dsns(ALICE, "delayed")), 1)
        n = len(self.sink.attempts_for(rcpt))
        time.sleep(2.5)
        self.assertEqual(len(self.sink.attempts_for(rcpt)), n, "still retried after the bounce")
        self.sink.refuse_rcpt(rcpt, None)

    def test_no_bounce_to_null_sender(self):
        rcpt = "nullbounce@remote.test"
        self.sink.refuse_rcpt(rcpt, "550 5.1.1 no such user here")
        msg = ternlib.make_message(uniq("null"), "mailer-daemon@example.test", rcpt)
        s = self.node.smtp(source="127.0.0.1")
        self.addCleanup(s.close)
        self.assertEqual(s.mail("")[0], 250)
        self.assertEqual(s.rcpt(rcpt)[0], 250)
        self.assertEqual(s.data(msg)[0], 250)
        s.quit()
        self.wait_attempts(rcpt)
        self.node.wait_for(lambda: not self.entries_to(rcpt), 15, "the failed entry to leave the queue")
        time.sleep(2)
        self.assertEqual([e for e in self.node.queue_list() if str(e.get("to")) in ("", "[]", "['']")], [])
        self.assertEqual(ternlib.log_lines(self.node, "mail", r"Service: DSN, From: <>, To: <>"), [])
        self.sink.refuse_rcpt(rcpt, None)

    def test_stats_counters(self):
        n = self.node
        local = uniq("local")
        self.relay([BOB], local)
        n.wait_message(BOB, local)
        self.relay(["stats@remote.test"], uniq("stats"))
        self.sink.wait_received("stats@remote.test")
        s = n.smtp(source="127.0.0.2")
        self.addCleanup(s.close)
        s.mail("x@ext.test")
        self.assertEqual(s.rcpt("nosuchuser@" + D)[0], 550)
        s.quit()

        def counters():
            st = n.ctl("stats")
            return st.get("smtp") or st.get("mail")
        c = counters()
        self.assertIsInstance(c, dict, "no 'smtp' (or 'mail') counters in ternctl stats: %r" % n.ctl("stats"))
        for k in COUNTERS:
            self.assertIsInstance(c.get(k), int, "stats %s missing or not a number: %r" % (k, c))
        n.wait_for(lambda: counters()["relayed"] >= 1 and counters()["delivered"] >= 1, 10, "relayed/delivered counted")
        c = counters()
        self.assertGreaterEqual(c["received"], 2)
        self.assertGreaterEqual(c["rejected"], 1)
        self.assertGreaterEqual(c["queued"], 0)


class QueueSlowRetryTest(QueueTestBase):
    """retry_interval 1 hour: a deferred entry stays until an operator acts."""
    NAME = "smtpq2"
    QUEUE = {"retry_interval": 3600, "warn_after": 0}

    def defer_one(self, rcpt):
        self.sink.refuse_rcpt(rcpt, "451 4.3.0 not now")
        subj = uniq(rcpt.split("@")[0])
        self.relay([rcpt], subj)
        self.wait_attempts(rcpt)
        entry = self.wait_entry(rcpt)
        return subj, entry

    def assert_delivered_once(self, rcpt, subj):
        got = self.sink.wait_received(rcpt, timeout=30)
        time.sleep(1)
        got = [m for m in self.sink.received_for(rcpt) if subj.encode() in m["content"]]
        self.assertEqual(len(got), 1, "%s delivered %d times" % (rcpt, len(got)))
        self.node.wait_for(lambda: not self.entries_to(rcpt), 10, "the entry to leave the queue")

    def test_list_fields_and_retry(self):
        rcpt = "held1@remote.test"
        subj, e = self.defer_one(rcpt)
        for k in ("id", "from", "to", "size", "next_try", "status"):
            self.assertIn(k, e, "queue list entry lacks %r: %r" % (k, e))
        self.assertEqual(e["from"], ALICE)
        self.assertIsInstance(e["size"], int)
        self.assertGreater(e["size"], 100)
        self.assertTrue(e["next_try"], e)
        time.sleep(2)
        self.assertEqual(len(self.sink.attempts_for(rcpt)), 1, "retried before retry_interval")
        self.sink.refuse_rcpt(rcpt, None)
        self.ctl_ok("queue", "retry", e["id"])
        self.assert_delivered_once(rcpt, subj)

    def test_remove(self):
        rcpt = "held2@remote.test"
        subj, e = self.defer_one(rcpt)
        self.ctl_ok("queue", "remove", e["id"])
        self.assertEqual(self.entries_to(rcpt), [])
        self.sink.refuse_rcpt(rcpt, None)
        self.ctl_ok("queue", "run")
        time.sleep(3)
        self.assertEqual(self.sink.received_for(rcpt), [])
        self.assertEqual(len(self.sink.attempts_for(rcpt)), 1)
        r = self.node.run_ctl("queue", "remove", e["id"], json_out=False)
        self.assertEqual(r.returncode, 1, "removing a removed entry: %s" % r.stderr)

    def test_run(self):
        rcpt = "held3@remote.test"
        subj, e = self.defer_one(rcpt)
        self.sink.refuse_rcpt(rcpt, None)
        self.ctl_ok("queue", "run")
        self.assert_delivered_once(rcpt, subj)

    def test_queue_survives_restart_and_kill9(self):
        for how, rcpt in (("stop", "held4@remote.test"), ("kill", "held5@remote.test")):
            with self.subTest(how=how):
                subj, e = self.defer_one(rcpt)
                if how == "stop":
                    self.assertEqual(self.node.stop(), 0, self.node.output_tail())
                else:
                    self.node.kill()
                self.sink.refuse_rcpt(rcpt, None)
                self.node.start()
                after = self.entries_to(rcpt)
                self.assertEqual([x["id"] for x in after], [e["id"]], "queue entry lost over %s" % how)
                self.ctl_ok("queue", "retry", e["id"])
                self.assert_delivered_once(rcpt, subj)


if __name__ == "__main__":
    ternlib.main()
