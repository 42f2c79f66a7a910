#!/usr/bin/python3
"""Several IMAP sessions on one mailbox (issue 4, RFC 3501 §7.4.1, §2.3.2, RFC 2177):
an EXPUNGE in session A reaches session B never during FETCH, STORE or SEARCH, and after
NOOP; \\Recent is set in exactly one session; flag changes in A reach B as untagged FETCH
after NOOP; concurrent STOREs of different keywords all stick; concurrent APPENDs from two
sessions get distinct increasing UIDs; IDLE in B reports EXISTS after an SMTP delivery
(latency printed; a generous limit here, the benchmark measures it), and flag changes and
expunges of other sessions."""
import os
import re
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

D = "example.test"
IDLE_LIMIT = 10.0


def numbered(untagged, kind):
    return [int(m.group(1)) for u in untagged
            for m in [re.match(rb"^\* (\d+) " + kind.encode() + rb"\b", u, re.I)] if m]


def fetch_flags(untagged):
    """{N: set of flags} of the untagged FETCH responses carrying FLAGS."""
    out = {}
    for u in untagged:
        if re.match(rb"^\* \d+ FETCH ", u):
            items = ternlib.fetch_items(u)
            if "FLAGS" in items:
                out[int(u.split()[1])] = {str(f) for f in items["FLAGS"]}
    return out


class ImapConcurrencyTest(ternlib.NodeTestCase):
    NODE = "imapc1"
    DOMAIN = D
    CONF = {"security": {"lockout_threshold": 0}, "smtpd": {"max_msgs_per_hour_per_ip": 0}}

    def mailbox(self, n):
        """A fresh user with n messages in INBOX; returns the address."""
        user = ternlib.fresh_user(self.node, "c")
        r = self.raw(user)
        for i in range(n):
            st, _, t = r.append("INBOX", ternlib.make_message("conc-%d" % i))
            self.assertEqual(st, "OK", t)
        r.close()
        return user

    def test_expunge_not_during_fetch_store_search(self):
        user = self.mailbox(3)
        a, b = self.raw(user), self.raw(user)
        a.select("INBOX")
        untagged, _ = b.select("INBOX")
        self.assertEqual(numbered(untagged, "EXISTS"), [3])
        a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        self.assertEqual(numbered(a.ok("EXPUNGE"), "EXPUNGE"), [2])
        time.sleep(0.3)           # let any notification reach B's session first
        for cmd in ("FETCH 1:* (FLAGS)", "STORE 1 +FLAGS (\\Flagged)", "SEARCH ALL", "FETCH 1,3 (UID)",
                    "STORE 3 -FLAGS.SILENT (\\Flagged)", "SEARCH UNDELETED"):
            status, untagged, tagged = b.command(cmd)
            self.assertIn(status, ("OK", "NO"), "%s: %r" % (cmd, tagged))
            self.assertEqual(numbered(untagged, "EXPUNGE"), [],
                             "untagged EXPUNGE during %s (RFC 3501 7.4.1): %r" % (cmd, untagged))
            # B's numbering is unchanged: message 3 still exists for B.
            if cmd == "SEARCH ALL":
                s = ternlib.untagged_of(untagged, "SEARCH")[0].split()[2:]
                self.assertIn(b"3", s, "B's view lost message 3 before the EXPUNGE was announced")
        untagged = b.ok("NOOP")
        self.assertEqual(numbered(untagged, "EXPUNGE"), [2], "EXPUNGE announced at NOOP: %r" % untagged)
        f = b.fetch("1:*", "UID")
        self.assertEqual(sorted(f), [1, 2])
        # A sees B's \Flagged on message 1 after its own NOOP.
        self.assertIn("\\Flagged", fetch_flags(a.ok("NOOP")).get(1, set()))

    def test_recent_in_exactly_one_session(self):
        user = self.mailbox(0)
        a, b = self.raw(user), self.raw(user)
        a.select("INBOX")
        b.select("INBOX")
        c = self.raw(user)
        st, _, t = c.append("INBOX", ternlib.make_message("recent-1"))
        self.assertEqual(st, "OK", t)
        time.sleep(0.3)
        ua, ub = a.ok("NOOP"), b.ok("NOOP")
        self.assertEqual(numbered(ua, "EXISTS"), [1], ua)
        self.assertEqual(numbered(ub, "EXISTS"), [1], ub)
        recents = (numbered(ua, "RECENT") or [0])[-1] + (numbered(ub, "RECENT") or [0])[-1]
        self.assertEqual(recents, 1, "RECENT counts A %r B %r" % (numbered(ua, "RECENT"), numbered(ub, "RECENT")))
        fa = {str(f) for f in a.fetch("1", "FLAGS")[1]["FLAGS"]}
        fb = {str(f) for f in b.fetch("1", "FLAGS")[1]["FLAGS"]}
        self.assertEqual(("\\Recent" in fa) + ("\\Recent" in fb), 1, "A %r B %r" % (fa, fb))
        sa = ternlib.untagged_of(a.ok("SEARCH RECENT"), "SEARCH")[0].split()[2:]
        sb = ternlib.untagged_of(b.ok("SEARCH RECENT"), "SEARCH")[0].split()[2:]
        self.assertEqual(len(sa) + len(sb), 1)
        # A later session sees it not recent; STATUS RECENT says 0 once a session holds it.
        d = self.raw(user)
        untagged, _ = d.select("INBOX")
        self.assertEqual(numbered(untagged, "RECENT"), [0])

    def test_flag_change_reaches_other_session(self):
        user = self.mailbox(2)
        a, b = self.raw(user), self.raw(user)
        a.select("INBOX")
        b.select("INBOX")
        a.ok("STORE 2 +FLAGS (\\Answered $Forwarded)")
        time.sleep(0.3)
        got = fetch_flags(b.ok("NOOP"))
        self.assertIn(2, got, "no untagged FETCH in B after A's STORE")
        self.assertLessEqual({"\\Answered", "$Forwarded"}, got[2])
        a.ok("STORE 2 -FLAGS (\\Answered)")
        time.sleep(0.3)
        got = fetch_flags(b.ok("NOOP"))
        self.assertNotIn("\\Answered", got.get(2, {"\\Answered"}))

    def test_concurrent_store_keywords(self):
        user = self.mailbox(1)
        sessions = [self.raw(user) for _ in range(2)]
        for s in sessions:
            s.select("INBOX")
        errors = []

        def work(s, prefix):
            try:
                for i in range(15):
                    s.ok("STORE 1 +FLAGS.SILENT ($%s%d)" % (prefix, i))
            except Exception as e:          # reported below
                errors.append(e)
        ts = [threading.Thread(target=work, args=(s, p)) for s, p in zip(sessions, ("A", "B"))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(errors, [])
        r = self.raw(user)
        r.select("INBOX")
        flags = {str(f) for f in r.fetch("1", "FLAGS")[1]["FLAGS"]}
        want = {"$A%d" % i for i in range(15)} | {"$B%d" % i for i in range(15)}
        self.assertEqual(want - flags, set(), "lost concurrent +FLAGS")

    def test_concurrent_appends_distinct_increasing_uids(self):
        user = self.mailbox(0)
        sessions = [self.raw(user) for _ in range(2)]
        got = {0: [], 1: []}
        errors = []

        def work(k):
            try:
                for i in range(20):
                    st, _, tagged = sessions[k].append("INBOX", ternlib.make_message("app-%d-%d" % (k, i)))
                    if st != "OK":
                        raise AssertionError(tagged)
                    got[k].append(int(re.search(rb"\[APPENDUID \d+ (\d+)\]", tagged).group(1)))
            except Exception as e:
                errors.append(e)
        ts = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        self.assertEqual(errors, [])
        for k in (0, 1):
            self.assertEqual(got[k], sorted(got[k]), "UIDs of one session not increasing")
        allu = got[0] + got[1]
        self.assertEqual(len(set(allu)), 40, "duplicate UIDs: %r" % sorted(allu))
        r = self.raw(user)
        untagged, _ = r.select("INBOX")
        self.assertEqual(numbered(untagged, "EXISTS"), [40])
        f = r.fetch("1:*", "UID")
        seq = [int(f[n]["UID"]) for n in sorted(f)]
        self.assertEqual(seq, sorted(allu), "sequence order is not UID order")

    def test_idle_reports_smtp_delivery(self):
        user = self.mailbox(1)
        b = self.raw(user)
        b.select("INBOX")
        b.send("i1 IDLE\r\n")
        cont = b.response()
        self.assertTrue(cont.startswith(b"+"), cont)
        t0 = time.time()
        refused = self.node.send_mail("sender@example.test", [user], ternlib.make_message("idle-wakeup"))
        t_sent = time.time()
        self.assertEqual(refused, {})
        r, seen = b.wait_response(lambda x: re.match(rb"^\* \d+ EXISTS", x), IDLE_LIMIT)
        t_exists = time.time()
        self.assertIsNotNone(r, "no EXISTS within %.0f s of the delivery (got %r)" % (IDLE_LIMIT, seen))
        self.assertEqual(numbered([r], "EXISTS"), [2])
        sys.stderr.write("\nIDLE: EXISTS %.3f s after the SMTP transaction ended (%.3f s after it began)\n"
                         % (t_exists - t_sent, t_exists - t0))
        b.send("DONE\r\n")
        status, _, tagged = b.read_tagged("i1")
        self.assertEqual(status, "OK", tagged)
        b.ok("NOOP")

    def test_idle_reports_flags_and_expunge(self):
        user = self.mailbox(3)
        a, b = self.raw(user), self.raw(user)
        a.select("INBOX")
        b.select("INBOX")
        b.send("i2 IDLE\r\n")
        self.assertTrue(b.response().startswith(b"+"))
        a.ok("STORE 1 +FLAGS (\\Flagged)")
        r, seen = b.wait_response(lambda x: re.match(rb"^\* 1 FETCH ", x), IDLE_LIMIT)
        self.assertIsNotNone(r, "no FETCH in IDLE after a STORE elsewhere: %r" % seen)
        self.assertIn(b"\\Flagged", r)
        a.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
        a.ok("EXPUNGE")
        r, seen = b.wait_response(lambda x: re.match(rb"^\* 3 EXPUNGE", x), IDLE_LIMIT)
        self.assertIsNotNone(r, "no EXPUNGE in IDLE after an expunge elsewhere: %r" % seen)
        b.send("DONE\r\n")
        status, _, tagged = b.read_tagged("i2")
        self.assertEqual(status, "OK", tagged)
        f = b.fetch("1:*", "UID")
        self.assertEqual(sorted(f), [1, 2])

    def test_idle_done_without_changes_and_bad_continuation(self):
        user = self.mailbox(0)
        b = self.raw(user)
        b.select("INBOX")
        b.send("i3 IDLE\r\n")
        self.assertTrue(b.response().startswith(b"+"))
        b.send("NOT-DONE\r\n")
        status, _, tagged = b.read_tagged("i3")
        self.assertEqual(status, "BAD", "IDLE ended by something else than DONE: %r" % tagged)
        b.ok("NOOP")
        # IDLE without a selected folder is allowed (authenticated state).
        c = self.raw(user)
        c.send("i4 IDLE\r\n")
        self.assertTrue(c.response().startswith(b"+"))
        c.send("DONE\r\n")
        self.assertEqual(c.read_tagged("i4")[0], "OK")


if __name__ == "__main__":
    ternlib.main()
