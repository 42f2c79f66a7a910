#!/usr/bin/python3
"""Live mailbox migration, "migrate here" (issue 8, DESIGN.md §6), with three nodes on
127.0.0.1 - A (master, mapping the slapd fixture), B and C (joined) - and erin homed on
B with about 2,000 messages in 10 folders (mixed sizes, flags, keywords, some expunged),
a calendar with recurring events, a tasks list and contacts. Her full digest is recorded
through IMAP and DAV logins (per folder UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ; per UID
flags, internal date, modseq and the body's sha256; DAV hrefs, ETags, bodies, CTag and
sync token). `migrate here` runs on C while, through A, one client appends and flags over
IMAP and another sends her mail over SMTP (B answers slowly: [migrate] fault slow:MS, so
the copy lasts a few seconds). Afterwards: the digest at C is the old one plus exactly
what arrived or changed meanwhile (old UIDs, UIDVALIDITY and modseqs kept; each appended
or delivered message present once); DAV identical and the old sync token still valid; a
session that had INBOX selected at B gets a BYE and, reconnecting through A, finds the
same UIDVALIDITY and UIDs; every node says home C, active; B holds nothing of her; quota
usage moved; the admin got the report; the status JSON has its shape; a second
migration of a user already MOVING is refused. Cancel mid-copy (dave): cancelled, dave
still on B and whole, C holds nothing. Bad input: an unknown user and a user already
homed on this node are refused with one line on stderr; a non-admin gets 403 from
/api/v1/migrations."""
import json
import os
import random
import re
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
import ternlib  # noqa: E402
import dirfixture  # noqa: E402
from ternlib import RawIMAP, imap_quote, untagged_of  # noqa: E402

D = "example.test"
U = dirfixture.USERS
WAIT = 60.0
MIGRATE_WAIT = 600.0
SLOW_MS = int(os.environ.get("TERN_MIGRATE_SLOW_MS", "4"))
N_MESSAGES = int(os.environ.get("TERN_MIGRATE_MESSAGES", "2000"))
FOLDERS = ["Archive", "Projects", "Receipts", "Travel", "Family", "Lists", "Newsletters", "Old mail", "Work"]
ERIN, DAVE = "erin@" + D, "dave@" + D
GUEST = "guest@" + D          # a local user without admin rights (the admin port checks local passwords)
CONF = {"security": {"lockout_threshold": 0},
        "smtpd": {"max_msgs_per_hour_per_ip": 0, "max_unknown_rcpts": 0, "max_connections_per_ip": 0},
        "directory": {"poll_interval": 2, "reconcile_interval": 6, "timeout": 3},
        "queue": {"check_interval": 1, "retry_interval": 2},
        "cluster": {"address": "127.0.0.1", "heartbeat_interval": 1, "unavailable_after": 3,
                    "request_timeout": 5, "relay_retry": 2},
        "migrate": {"chunk_kb": 64, "retry_interval": 1, "request_timeout": 10, "fault": "slow:%d" % SLOW_MS}}


def pw(address):
    return U[address.split("@")[0]]["password"]


def one_line(test, stderr):
    lines = [x for x in stderr.splitlines() if x.strip()]
    test.assertEqual(len(lines), 1, "want one line on stderr, got %r" % stderr)
    return lines[0]


class ImapWriter(threading.Thread):
    """A client working through `front` while the mailbox moves: appends messages with
    unique Message-IDs to append_folder and adds flags to old messages of flag_folder.
    It reconnects after a BYE or a refused login; an APPEND whose answer was lost is
    looked up by its Message-ID after reconnecting and sent again only when absent, and
    a STORE is repeated until OK (it is idempotent): so every append counts exactly once."""
    ADDED = ("$Migrated", "\\Flagged")

    def __init__(self, front, user, password, append_folder, flag_folder, flag_uids, rng):
        super().__init__(daemon=True)
        self.front, self.user, self.password = front, user, password
        self.append_folder, self.flag_folder = append_folder, flag_folder
        self.todo_flags = list(flag_uids)
        rng.shuffle(self.todo_flags)
        self.rng = rng
        self.stop_ev = threading.Event()
        self.appended, self.flagged = [], []
        self.reconnects, self.errors = 0, []
        self.pending = None             # Message-ID of an APPEND whose outcome is unknown
        self.n = 0
        self.c = None

    def connect(self):
        while not self.stop_ev.is_set():
            try:
                c = RawIMAP(self.front.imap_port(), timeout=30)
                st, _, line = c.command("LOGIN %s %s" % (imap_quote(self.user), imap_quote(self.password)))
                if st == "OK":
                    c.select(self.flag_folder)
                    self.c = c
                    return True
                c.close()
            except (OSError, EOFError, AssertionError):
                pass
            time.sleep(0.2)
        return False

    def drop(self):
        if self.c is not None:
            self.c.close()
            self.c = None
            self.reconnects += 1

    def settle_pending(self):
        """After a reconnect: was the APPEND with the lost answer stored?"""
        mid = self.pending
        self.c.ok("EXAMINE %s" % imap_quote(self.append_folder))
        found = []
        for u in untagged_of(self.c.ok('UID SEARCH HEADER Message-ID "%s"' % mid), "SEARCH"):
            found += u.split()[2:]
        self.c.select(self.flag_folder)
        if found:
            self.appended.append(mid)
            self.pending = None
            return True
        return False

    def one_append(self):
        if self.pending is None:
            self.n += 1
            self.pending = "live-append-%d@migrate.test" % self.n
        mid = self.pending
        msg = ternlib.random_message(self.rng, mid.split("@")[0], self.user,
                                     size=self.rng.choice((900, 3000, 20000)))
        st, _, line = self.c.append(self.append_folder, msg, flags="\\Seen Live", nonsync=True)
        if st == "OK":
            self.appended.append(mid)
            self.pending = None
        elif st == "BYE":
            raise EOFError("BYE during APPEND")
        # NO: nothing stored; the same message is tried again.

    def one_store(self):
        if not self.todo_flags:
            return
        uid = self.todo_flags[0]
        st, _, line = self.c.command("UID STORE %d +FLAGS.SILENT (%s)" % (uid, " ".join(self.ADDED)))
        if st == "OK":
            self.flagged.append(self.todo_flags.pop(0))
        elif st == "BYE":
            raise EOFError("BYE during STORE")

    def run(self):
        while not self.stop_ev.is_set():
            if self.c is None:
                if not self.connect():
                    return
                try:
                    if self.pending is not None and self.settle_pending():
                        continue
                except (OSError, EOFError, AssertionError):
                    self.drop()
                    continue
            try:
                self.one_append()
                self.one_store()
            except (OSError, EOFError) as e:
                self.drop()
            except AssertionError as e:
                self.errors.append(str(e))
                self.drop()
            time.sleep(0.05)
        if self.c is not None:
            self.c.close()


class Migrate(ternlib.DirectoryClusterTestCase):
    CONF = CONF
    MAPPED = (DAVE, ERIN)
    WAIT = WAIT

    @classmethod
    def set_up_nodes(cls):
        homes = {ERIN: "node-b", DAVE: "node-b"}
        ternlib.set_homes(cls.a, homes)
        cls.a.add_user(GUEST)
        ternlib.wait_homes(dict(homes, **{GUEST: None}), cls.a, cls.b, cls.c, timeout=WAIT)
        for n in (cls.a, cls.b, cls.c):
            ternlib.wait_dav(n)
        t0 = time.time()
        cls.erin_count = ternlib.fill_mailbox(cls.b, ERIN, FOLDERS, N_MESSAGES, pw(ERIN), seed=1)
        ternlib.fill_dav(cls.b, ERIN, pw(ERIN))
        cls.dave_count = ternlib.fill_mailbox(cls.b, DAVE, FOLDERS[:3], 300, pw(DAVE), seed=2)
        sys.stderr.write("test_migrate: filled %d + %d messages in %.1f s\n" % (
            cls.erin_count, cls.dave_count, time.time() - t0))
        cls.erin_before = ternlib.imap_digest(cls.b, ERIN, pw(ERIN))
        cls.erin_dav_before = ternlib.dav_digest(cls.b, ERIN, pw(ERIN))
        cls.dave_before = ternlib.imap_digest(cls.b, DAVE, pw(DAVE))

    def tearDown(self):
        ternlib.assert_alive(self, self.a, self.b, self.c)

    # ---- helpers ----

    def wait_home_everywhere(self, address, home):
        def ok():
            for n in (self.a, self.b, self.c):
                rec = ternlib.user_record(n, address)
                if rec is None or rec.get("home") != home or str(rec.get("home_state", "active")).lower() != "active":
                    return False
            return True
        self.a.wait_for(ok, WAIT, "%s homed on %s, active, on every node" % (address, home))

    def admin_reports(self, about):
        """Subjects of the messages in the admin's INBOX (on any node) that name `about`."""
        admin = self.c.admin_address     # over the socket: the primary domain's first admin
        out = []
        for n in (self.a, self.b, self.c):
            try:
                for m, raw, msg in n.mailbox(admin):
                    subj = ternlib.header_text(msg, "Subject") or ""
                    if about.split("@")[0] in subj:
                        out.append(subj)
            except ternlib.CtlError:
                pass
        return out

    # ---- tests (run in name order) ----

    def test_01_bad_input(self):
        r = ternlib.migrate_here(self.c, "nobody-here@" + D)
        self.assertNotEqual(r.returncode, 0)
        one_line(self, r.stderr)
        r = ternlib.migrate_here(self.b, DAVE)          # already homed on B
        self.assertNotEqual(r.returncode, 0)
        line = one_line(self, r.stderr)
        self.assertIn("dave", line.lower())
        r = ternlib.migrate_here(self.c, "not-an-address")
        self.assertNotEqual(r.returncode, 0)
        one_line(self, r.stderr)
        r = self.c.run_ctl("migrate", "cancel", DAVE, json_out=False)   # nothing to cancel
        self.assertNotEqual(r.returncode, 0)
        one_line(self, r.stderr)
        self.assertNotIn(DAVE, ternlib.migrate_status(self.c))
        self.assertEqual(ternlib.user_record(self.a, DAVE)["home"], "node-b")

    def test_02_non_admin_forbidden(self):
        for method, body in (("GET", None), ("POST", {"users": [DAVE]})):
            st, resp = ternlib.https_admin_request(self.c, method, "/api/v1/migrations", GUEST,
                                                   ternlib.USER_PASSWORD, body)
            self.assertEqual(st, 403, "%s /api/v1/migrations as a user without rights: %r" % (method, resp))
        st, resp = ternlib.https_admin_request(self.c, "GET", "/api/v1/migrations", self.a.admin_address,
                                               ternlib.ADMIN_PASSWORD)
        self.assertEqual(st, 200, resp)
        self.assertIsInstance(resp, list)
        st, resp = self.c.request("GET", "/api/v1/migrations")
        self.assertEqual(st, 200, resp)
        self.assertNotIn(DAVE, [e.get("user") for e in resp])

    def test_03_cancel_mid_copy(self):
        r = ternlib.migrate_here(self.c, DAVE)
        self.assertEqual(r.returncode, 0, r.stderr)
        e = ternlib.wait_migration(self.c, DAVE, ("copying",) + ternlib.MIGRATE_TERMINAL + ("cutover",), WAIT)
        self.assertEqual(e["state"], "copying", "the copy was over before it could be cancelled: %r" % e)
        r = self.c.run_ctl("migrate", "cancel", DAVE, json_out=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        e = ternlib.wait_migration(self.c, DAVE, timeout=WAIT)
        self.assertEqual(e["state"], "cancelled", e)
        self.wait_home_everywhere(DAVE, "node-b")
        self.c.wait_for(lambda: ternlib.holds_nothing(self.c, DAVE) == [], WAIT, "C holds nothing of dave")
        after = ternlib.imap_digest(self.b, DAVE, pw(DAVE))
        problems, new = ternlib.digest_compare(self.dave_before, after, new_allowed=set())
        self.assertEqual(problems, [])
        self.assertEqual(after, self.dave_before)
        self.assertEqual(ternlib.holds_nothing(self.c, DAVE), [])
        # A cancelled migration can be started again later: nothing was left behind at
        # the master (the user is not MOVING any more).
        rec = ternlib.user_record(self.a, DAVE)
        self.assertFalse(rec.get("home_target"), rec)

    def test_04_live_migration(self):
        a, b, c = self.a, self.b, self.c
        before, dav_before = self.erin_before, self.erin_dav_before
        usage_b = ternlib.user_record(b, ERIN)["usage"]
        msgs_b = sum(len(f["messages"]) for f in before.values())
        size_b = sum(m["size"] for f in before.values() for m in f["messages"].values())
        # A client with INBOX selected at B, IDLE: its cached state must stay valid.
        cached = RawIMAP(b.imap_port(), timeout=30)
        self.addCleanup(cached.close)
        cached.login(ERIN, pw(ERIN))
        untagged, _ = cached.select("INBOX", extra=" (CONDSTORE)")
        uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", b"\n".join(untagged)).group(1))
        hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"\n".join(untagged)).group(1))
        cached_uids = set()
        for u in untagged_of(cached.ok("UID SEARCH ALL"), "SEARCH"):
            cached_uids |= {int(x) for x in u.split()[2:]}
        self.assertEqual(cached_uids, set(before["INBOX"]["messages"]))
        cached.send(b"idle1 IDLE\r\n")
        self.assertTrue(cached.response().startswith(b"+"))
        # Users keep working through A (the front) while the mailbox moves.
        writer = ImapWriter(a, ERIN, pw(ERIN), "Projects", "Archive", sorted(before["Archive"]["messages"]),
                            random.Random(5))
        sender = ternlib.SmtpSender(a, ERIN, "live-smtp", seed=7, size=2000)
        writer.start()
        sender.start()
        time.sleep(1.0)
        t0 = time.time()
        r = ternlib.migrate_here(c, ERIN)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(time.time() - t0, 30, "migrate here without --wait must return once queued")
        seen_moving, refused_again, other_target = False, False, None
        try:
            # A second migration of a user already queued or MOVING is refused.
            r = ternlib.migrate_here(c, ERIN)
            self.assertNotEqual(r.returncode, 0, "a second migrate here of erin at C was accepted")
            one_line(self, r.stderr)
            refused_again = True
            deadline = time.time() + MIGRATE_WAIT
            states = []
            while time.time() < deadline:
                e = ternlib.migrate_status(c).get(ERIN)
                if e and (not states or states[-1] != e["state"]):
                    states.append(e["state"])
                rec = ternlib.user_record(a, ERIN)
                if rec and str(rec.get("home_state", "")).lower() == "moving":
                    seen_moving = True
                    self.assertEqual(rec.get("home_target"), "node-c", rec)
                if e and e["state"] == "copying" and seen_moving and other_target is None:
                    # Another target while erin is MOVING: refused at once, or its job
                    # fails at the master's BEGIN.
                    other_target = ternlib.migrate_here(a, ERIN)
                if e and e["state"] in ternlib.MIGRATE_TERMINAL:
                    break
                time.sleep(0.2)
            self.assertEqual(e["state"], "done", "migration ended %r (states %r)" % (e, states))
            self.assertIsNotNone(other_target, "never saw erin MOVING while copying (states %r)" % states)
            if other_target.returncode == 0:
                ea = ternlib.wait_migration(a, ERIN, timeout=WAIT)
                self.assertIn(ea["state"], ("failed", "cancelled"), ea)
            else:
                one_line(self, other_target.stderr)
            time.sleep(2.0)             # keep working on the new home for a moment
        finally:
            writer.stop_ev.set()
            sender.stop_ev.set()
            writer.join(60)
            sender.join(60)
        sys.stderr.write("test_migrate: states %r, %d appended / %d flagged over IMAP (%d reconnects), "
                         "%d sent over SMTP (%d deferrals), status %s\n" % (
                             states, len(writer.appended), len(writer.flagged), writer.reconnects,
                             len(sender.accepted), sender.deferrals, json.dumps(e)))
        self.assertTrue(refused_again)
        self.assertTrue(seen_moving, "the master never showed erin MOVING to node-c")
        self.assertEqual(writer.errors, [])
        self.assertEqual(sender.errors, [])
        self.assertIsNone(writer.pending, "an APPEND was left unsettled")
        self.assertGreater(len(writer.appended), 0)
        self.assertGreater(len(sender.accepted), 0)
        # The status entry's shape.
        for k in ("user", "state", "bytes", "messages", "rate", "eta", "source", "bytes_total",
                  "messages_total", "cutover_ms", "error"):
            self.assertIn(k, e)
        self.assertEqual(e["source"], "node-b")
        self.assertGreaterEqual(e["messages"], msgs_b)
        self.assertGreater(e["bytes"], 0)
        self.assertIsInstance(e["cutover_ms"], int)
        self.assertGreaterEqual(e["cutover_ms"], 0)
        self.assertLess(e["cutover_ms"], 1000, "cut-over over 1 s for an ordinary mailbox")
        # The home: C, active, on every node; B holds nothing of erin.
        self.wait_home_everywhere(ERIN, "node-c")
        b.wait_for(lambda: ternlib.holds_nothing(b, ERIN) == [], WAIT, "B holds nothing of erin")
        # Every message SMTP accepted is delivered at C, exactly once.
        want_smtp = set(sender.accepted)

        def smtp_arrived():
            d = ternlib.imap_mailbox_digest_light(c, ERIN, pw(ERIN), "INBOX")
            return want_smtp <= set(d)
        c.wait_for(smtp_arrived, 120, "the %d accepted SMTP messages in erin's INBOX at C" % len(want_smtp))
        after = ternlib.imap_digest(c, ERIN, pw(ERIN))
        added = {("Archive", uid): ImapWriter.ADDED for uid in writer.flagged}
        problems, new = ternlib.digest_compare(before, after, flags_added=added, new_allowed={"INBOX", "Projects"})
        self.assertEqual(problems, [], "\n".join(problems[:20]))
        got_smtp = [m["message_id"] for m in new.get("INBOX", [])]
        got_app = [m["message_id"] for m in new.get("Projects", [])]
        self.assertEqual(sorted(got_smtp), sorted(want_smtp), "INBOX arrivals != SMTP accepted")
        self.assertEqual(sorted(got_app), sorted(writer.appended), "Projects arrivals != IMAP appends")
        # DAV: identical objects, ETags, CTags and sync tokens; the old token still works.
        self.assertEqual(ternlib.dav_digest(c, ERIN, pw(ERIN)), dav_before)
        dc = ternlib.DavConn(c, ERIN, pw(ERIN))
        self.addCleanup(dc.close)
        for coll, d in dav_before.items():
            if not d["sync_token"]:
                continue
            body = ('<?xml version="1.0" encoding="utf-8"?>\n<d:sync-collection xmlns:d="DAV:">'
                    '<d:sync-token>%s</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/>'
                    '</d:prop></d:sync-collection>' % d["sync_token"])
            rr = dc.report(coll, body)
            self.assertEqual(rr.status, 207, "sync-collection with the old token at %s: %r" % (coll, rr))
            self.assertEqual([h for h in ternlib.multistatus(rr) if h.rstrip("/") != coll.rstrip("/")], [],
                             "changes since the old token at %s" % coll)
        # The cached session got a BYE (or was closed) and its state is still valid.
        self.assertTrue(cached.closed_by_peer(30) or b"* BYE" in cached.buf,
                        "the session at B was not closed at cut-over")
        r2 = RawIMAP(a.imap_port(), timeout=30)
        self.addCleanup(r2.close)
        r2.login(ERIN, pw(ERIN))
        untagged, _ = r2.select("INBOX", extra=" (CONDSTORE)")
        self.assertEqual(int(re.search(rb"UIDVALIDITY (\d+)", b"\n".join(untagged)).group(1)), uidvalidity)
        self.assertGreaterEqual(int(re.search(rb"HIGHESTMODSEQ (\d+)", b"\n".join(untagged)).group(1)), hms)
        now = set()
        for u in untagged_of(r2.ok("UID SEARCH ALL"), "SEARCH"):
            now |= {int(x) for x in u.split()[2:]}
        self.assertEqual(cached_uids - now, set(), "cached UIDs gone after the move")
        self.assertTrue(all(u > max(cached_uids) for u in now - cached_uids))
        # Quota usage moved with the mailbox: the same relation to the digest as at B.
        usage_c = ternlib.user_record(c, ERIN)["usage"]
        msgs_c = sum(len(f["messages"]) for f in after.values())
        size_c = sum(m["size"] for f in after.values() for m in f["messages"].values())
        self.assertEqual(usage_c["items"] - msgs_c, usage_b["items"] - msgs_b, (usage_b, usage_c))
        self.assertEqual(usage_c["bytes"] - size_c, usage_b["bytes"] - size_b, (usage_b, usage_c))
        # The admin's report.
        reports = []

        def reported():
            reports[:] = self.admin_reports(ERIN)
            return bool(reports)
        a.wait_for(reported, WAIT, "the admin's report about erin")
        self.assertTrue(any(re.search(r"done|success|succeeded|complete", s, re.I) for s in reports), reports)

    def test_05_after(self):
        st = ternlib.migrate_status(self.c).get(ERIN)
        if st is None or st["state"] != "done":
            self.skipTest("the live migration did not finish")
        r = ternlib.migrate_here(self.c, ERIN)     # already homed here now
        self.assertNotEqual(r.returncode, 0)
        one_line(self, r.stderr)
        self.assertEqual(ternlib.holds_nothing(self.b, ERIN), [])
        self.assertEqual(ternlib.user_record(self.b, ERIN)["home"], "node-c")
        # Mail sent now at B reaches the new home.
        msg = ternlib.random_message(random.Random(3), "after-move", ERIN, size=1000)
        self.assertFalse(self.b.send_mail("sender@remote.test", [ERIN], msg))
        self.c.wait_for(lambda: "after-move@migrate.test" in ternlib.imap_mailbox_digest_light(
            self.c, ERIN, pw(ERIN), "INBOX"), WAIT, "mail sent at B after the move at C")


if __name__ == "__main__":
    unittest.main(verbosity=2)
