#!/usr/bin/python3
"""Local delivery over SMTP (issue 3): a user, an alias with two targets, a wildcard alias,
a group by its name and by another address, forwarding with a kept copy, overlapping
recipients: every final mailbox gets the message exactly once, each copy with its own
Return-Path and Received "for <rcpt>". Unknown local user: 550 5.1.1. Quota: a recipient
that would go over it is refused at RCPT with 552 5.2.2 (SIZE given) while the others get
the message, and 90% usage brings a warning. The domain footer is appended for senders of
the domain only. DSN parameters are accepted and checked. mail.log Recv:/Sent: lines."""
import os
import re
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

D = "example.test"
HOST = "mx.example.test"
NET = "127.0.0.2"
EXT = "x@ext.test"
FOOTER = "FOOTER-Example-Test-7431"
U = {n: "%s@%s" % (n, D) for n in ("alice", "bob", "carol", "dave", "erin", "frank", "quser")}
QID = r"[0-9A-Za-z]+-[0-9A-Za-z]+"


def uniq(tag):
    return "dlv-%s-%d" % (tag, time.time_ns())


class SmtpDeliveryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        conf = {"server": {"hostname": HOST},
                "smtpd": {"max_msgs_per_hour_per_ip": 0, "max_unknown_rcpts": 0, "max_failed_cmds": 0}}
        cls.node = ternlib.Node(name="smtpd1", domain=D, conf=conf)
        try:
            n = cls.node
            n.start()
            for name in ("alice", "bob", "carol", "dave", "frank"):
                n.add_user(U[name])
            n.add_user(U["erin"], "--forward", U["frank"], "--keep-copy")
            n.add_user(U["quser"], quota_mb=1)
            n.ctl("alias", "add", "team@" + D, U["bob"])
            n.ctl("alias", "add", "team@" + D, U["carol"])
            n.ctl("alias", "add", "*sales*@" + D, U["dave"])
            # A group has no address of its own (guide ch. 9): both are given.
            n.ctl("group", "add", "staff@" + D, "--address", "staff", "--address", "allstaff",
                  "--member", U["alice"], "--member", U["bob"])
            n.ctl("group", "add", "quiet@" + D, "--member", U["alice"])
            n.ctl("domain", "set", D, "--footer", FOOTER)
        except Exception:
            cls.node.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def tearDown(self):
        self.assertTrue(self.node.alive(), "ternd died\n" + self.node.output_tail())

    def send(self, rcpts, subject, sender=EXT, source=NET, **kw):
        msg = ternlib.make_message(subject, sender, rcpts[0], body="Body of %s.\r\n" % subject, **kw)
        refused = self.node.send_mail(sender, rcpts, msg, source=source)
        self.assertEqual(refused, {})
        return msg

    def assert_once(self, address, subject, sender=EXT, rcpt_names=None):
        """address holds exactly one message with subject, with its own Return-Path and a
        Received of this server "for <X>", X being address or one of rcpt_names."""
        self.node.wait_message(address, subject)
        time.sleep(0.3)
        found = self.node.find_messages(address, subject)
        self.assertEqual(len(found), 1, "%s holds %d copies of %s" % (address, len(found), subject))
        msg = found[0]
        self.assertEqual(ternlib.header_text(msg, "Return-Path"), "<%s>" % sender)
        self.assertEqual(len(msg.get_all("Return-Path")), 1)
        rcv = ternlib.header_text(msg, "Received")
        self.assertIn("by " + HOST, rcv)
        m = re.search(r"for <([^>]+)>", rcv)
        self.assertIsNotNone(m, "top Received has no 'for <rcpt>': %r" % rcv)
        self.assertIn(m.group(1).lower(), [address] + list(rcpt_names or []), rcv)
        self.assertIn("Body of %s." % subject, msg.get_payload())
        return msg

    def test_local_user(self):
        subj = uniq("user")
        sent = ternlib.parse_message(self.send([U["bob"]], subj))
        msg = self.assert_once(U["bob"], subj)
        self.assertEqual(msg["Message-ID"], sent["Message-ID"])
        rcv = ternlib.header_text(msg, "Received")
        self.assertIn("127.0.0.2", rcv)
        self.assertIn("client.test", rcv)
        self.assertNotIn(FOOTER, msg.get_payload())

    def test_alias_with_two_targets(self):
        subj = uniq("team")
        self.send(["team@" + D], subj)
        for who in ("bob", "carol"):
            self.assert_once(U[who], subj, rcpt_names=["team@" + D])
        self.assertEqual(self.node.find_messages(U["alice"], subj), [])

    def test_wildcard_alias(self):
        subj = uniq("wild")
        self.send(["bigsales2026@" + D], subj)
        self.assert_once(U["dave"], subj, rcpt_names=["bigsales2026@" + D])

    def test_group_by_name_and_address(self):
        for addr in ("staff@" + D, "allstaff@" + D):
            subj = uniq("group")
            self.send([addr], subj)
            for who in ("alice", "bob"):
                self.assert_once(U[who], subj, rcpt_names=[addr])
        # The name of a group without that address is not a recipient.
        s = self.node.smtp(source=NET)
        self.addCleanup(s.close)
        self.assertEqual(s.mail(EXT)[0], 250)
        code, text = s.rcpt("quiet@" + D)
        self.assertEqual(code, 550, text)
        s.quit()

    def test_forward_with_keep_copy(self):
        subj = uniq("fwd")
        self.send([U["erin"]], subj)
        self.assert_once(U["erin"], subj)
        self.assert_once(U["frank"], subj, rcpt_names=[U["erin"]])

    def test_overlapping_recipients_deliver_once(self):
        subj = uniq("overlap")
        self.send(["team@" + D, U["bob"], "staff@" + D], subj)
        for who in ("alice", "bob", "carol"):
            self.assert_once(U[who], subj, rcpt_names=["team@" + D, "staff@" + D])

    def test_unknown_local_user(self):
        s = self.node.smtp(source=NET)
        self.addCleanup(s.close)
        self.assertEqual(s.mail(EXT)[0], 250)
        code, text = s.rcpt("nosuchuser@" + D)
        self.assertEqual(code, 550, text)
        self.assertTrue(text.startswith(b"5.1.1"), text)
        # Other recipients of the transaction are unaffected.
        self.assertEqual(s.rcpt(U["bob"])[0], 250)
        subj = uniq("unknown")
        self.assertEqual(s.data(ternlib.make_message(subj, EXT, U["bob"], body="Body of %s.\r\n" % subj))[0], 250)
        s.quit()
        self.assert_once(U["bob"], subj)

    def test_quota(self):
        q = U["quser"]
        big = uniq("q1")
        self.send([q], big, size=700 * 1000)
        self.assert_once(q, big)
        # Above 90% of 1 MiB: a quota warning arrives (one message that is not ours).
        second = uniq("q2")
        self.send([q], second, size=260 * 1000)
        self.assert_once(q, second)
        self.node.wait_mailbox(q, lambda msgs: any(ternlib.header_text(m, "Subject") not in (big, second)
                                                   for m in msgs), 20, "a quota warning to %s" % q)
        # A third big message does not fit: refused at RCPT with SIZE known; bob still gets it.
        third = uniq("q3")
        s = self.node.smtp(source=NET)
        self.addCleanup(s.close)
        data = ternlib.make_message(third, EXT, q, body="Body of %s.\r\n" % third, size=700 * 1000)
        self.assertEqual(s.mail(EXT, ["SIZE=%d" % len(data)])[0], 250)
        code, text = s.rcpt(q)
        self.assertEqual(code, 552, "RCPT %s accepted (%r) although usage + the MAIL SIZE exceed the quota" % (q, text))
        self.assertTrue(text.startswith(b"5.2.2"), text)
        self.assertEqual(s.rcpt(U["bob"])[0], 250)
        self.assertEqual(s.data(data)[0], 250)
        s.quit()
        self.assert_once(U["bob"], third)
        self.assertEqual(self.node.find_messages(q, third), [])
        stats = self.node.ctl("user", "stats", q)
        self.assertLessEqual(stats["usage"]["bytes"], 1024 * 1024)

    def test_footer_for_domain_senders_only(self):
        inside = uniq("footer-in")
        self.send([U["bob"]], inside, sender=U["alice"], source="127.0.0.1")
        msg = self.assert_once(U["bob"], inside, sender=U["alice"])
        body = msg.get_payload()
        self.assertIn(FOOTER, body, "no footer on mail from a sender of the domain")
        self.assertGreater(body.index(FOOTER), body.index("Body of %s." % inside))
        outside = uniq("footer-out")
        self.send([U["bob"]], outside)
        msg = self.assert_once(U["bob"], outside)
        self.assertNotIn(FOOTER, msg.get_payload(), "footer on mail from an external sender")

    def test_dsn_parameters(self):
        s = self.node.smtp(source=NET)
        self.addCleanup(s.close)
        self.assertTrue(s.has_extn("dsn"))
        subj = uniq("dsn")
        code, text = s.mail(EXT, ["RET=HDRS", "ENVID=env-%s" % subj])
        self.assertEqual(code, 250, text)
        code, text = s.rcpt(U["bob"], ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;" + U["bob"]])
        self.assertEqual(code, 250, text)
        code, text = s.rcpt(U["carol"], ["NOTIFY=NEVER"])
        self.assertEqual(code, 250, text)
        code, text = s.rcpt(U["alice"], ["NOTIFY=BOGUS"])
        self.assertEqual(code, 501, text)
        self.assertEqual(s.data(ternlib.make_message(subj, EXT, U["bob"], body="Body of %s.\r\n" % subj))[0], 250)
        s.rset()
        code, text = s.mail(EXT, ["RET=SOMETIMES"])
        self.assertEqual(code, 501, text)
        s.quit()
        self.assert_once(U["bob"], subj)
        self.assert_once(U["carol"], subj)
        self.assertEqual(self.node.find_messages(U["alice"], subj), [])

    def test_8bitmime(self):
        s = self.node.smtp(source=NET)
        self.addCleanup(s.close)
        self.assertTrue(s.has_extn("8bitmime"))
        subj = uniq("8bit")
        body = "Body of %s.\r\nGrüße, naïve café\r\n" % subj
        msg = ternlib.make_message(subj, EXT, U["bob"], body=body,
                                   extra_headers=["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
                                                  "Content-Transfer-Encoding: 8bit"])
        self.assertEqual(s.sendmail(EXT, [U["bob"]], msg, mail_options=["BODY=8BITMIME"]), {})
        s.quit()
        self.node.wait_message(U["bob"], subj)
        raw = [r for _, r, m in self.node.mailbox(U["bob"]) if ternlib.header_text(m, "Subject") == subj][0]
        self.assertIn("Grüße, naïve café".encode(), raw)

    def test_mail_log_lines(self):
        subj = uniq("log")
        self.send([U["carol"]], subj)
        self.assert_once(U["carol"], subj)
        rx = (ternlib.LOG_PREFIX + r"Recv: Queue-ID: (%s), Service: SMTP, From: <x@ext\.test>, "
              r"To: <carol@example\.test>, Size: (\d+)(, User: [^,]*)?, Sender-Host: 127\.0\.0\.2, SSL: no$" % QID)
        found = []

        def has_recv():
            found[:] = [re.match(rx, line) for line in self.node.log_text("mail").splitlines()]
            found[:] = [m for m in found if m]
            return bool(found)
        self.node.wait_for(has_recv, 10, "a Recv: line for carol in mail.log:\n" + self.node.log_text("mail")[-2000:])
        qid = found[-1].group(1)
        self.assertGreater(int(found[-1].group(2)), 100)
        sent = ternlib.LOG_PREFIX + (r"Sent: Queue-ID: %s, Recipient: <carol@example\.test>, Result: delivered, "
                                     r"Status: 2\.0\.0$" % re.escape(qid))
        self.node.wait_for(lambda: any(re.match(sent, line) for line in self.node.log_text("mail").splitlines()),
                           10, "a Sent: line for %s in mail.log" % qid)

    def test_mail_log_authenticated_tls(self):
        subj = uniq("logauth")
        s = self.node.smtp("submission", source=NET, starttls=True)
        self.addCleanup(s.close)
        s.login(U["alice"], ternlib.USER_PASSWORD)
        self.assertEqual(s.sendmail(U["alice"], [U["dave"]],
                                    ternlib.make_message(subj, U["alice"], U["dave"], body="Body of %s.\r\n" % subj)), {})
        s.quit()
        self.assert_once(U["dave"], subj, sender=U["alice"])
        rx = (r"Recv: Queue-ID: %s, Service: SMTP, From: <alice@example\.test>, To: <dave@example\.test>, "
              r"Size: \d+, User: alice(@example\.test)?, Sender-Host: 127\.0\.0\.2, SSL: yes$" % QID)
        self.node.wait_for(lambda: ternlib.log_lines(self.node, "mail", rx), 10,
                           "an authenticated TLS Recv: line in mail.log:\n" + self.node.log_text("mail")[-2000:])


if __name__ == "__main__":
    ternlib.main()
