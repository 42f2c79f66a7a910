#!/usr/bin/python3
"""Migration faults (issue 8, DESIGN.md §6, migrate/migrate.h): three nodes on 127.0.0.1 -
A (master), B (source) and C (target), each with its own port base and data dir - and one
user per case homed on B with about 100 messages. For each crash point ([migrate] fault
crash:POINT on the node where that point is: copy, delta, prepared and committed on the
target C, frozen and drop on the source B, commit on the master A) the migration is
started at C with the fault set, the process is waited for to die (SIGKILL), restarted
without the fault, and the migration waited for until it is done, failed or cancelled.
Then: every node agrees on exactly one home (active), the mailbox there is whole (its
digest equals the recorded one plus the mail sent meanwhile), the other node holds
nothing of the user, and the mail sent over SMTP during the fault (through a node that
stays up) is delivered exactly once. A crash at or after the commit point always ends
with the user on C. corrupt:3 (source): the damaged reply is detected and re-sent, the
migration succeeds and warning.log names the checksum; disk_full (target): the migration
fails before the cut-over with a clear error, the source is untouched.
The kill cases (KILLS) stop a node by an external kill -9 at a moment found by polling
`ternctl --json migrate status` on C, with the source slowed (slow:SLOW_MS) so that the
copy lasts: the source, the master and the target while copying (something copied, more
to come), and the master in the cut-over (held with SIGSTOP from the copy on, so that the
cut-over reliably waits at the commit; killed while stopped). Each is restarted and the
migration must end done with the user on C, under the same checks."""
import json
import os
import signal
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ternlib  # noqa: E402

D = "example.test"
PW = ternlib.USER_PASSWORD
WAIT = 60.0
N_MESSAGES = int(os.environ.get("TERN_MIGRATE_FAULT_MESSAGES", "100"))
FOLDERS = ["Archive", "Work"]
CRASHES = (("copy", "c"), ("delta", "c"), ("frozen", "b"), ("prepared", "c"), ("commit", "a"),
           ("committed", "c"), ("drop", "b"))
AFTER_COMMIT = ("commit", "committed", "drop")
OTHER = ("corrupt", "disk_full")
# External kill -9 (not a fault point) at a moment found by polling the target's migrate
# status, the source slowed by [migrate] fault slow:SLOW_MS so that the copy lasts: (case,
# the node killed, the phase it is killed in).
KILLS = (("kill_source_copying", "b", "copying"), ("kill_master_copying", "a", "copying"),
         ("kill_master_cutover", "a", "cutover"), ("kill_target_copying", "c", "copying"))
SLOW_MS = int(os.environ.get("TERN_MIGRATE_FAULT_SLOW_MS", "100"))


def conf(fault=None):
    c = {"security": {"lockout_threshold": 0},
         "smtpd": {"max_msgs_per_hour_per_ip": 0, "max_unknown_rcpts": 0, "max_connections_per_ip": 0},
         "queue": {"check_interval": 1, "retry_interval": 2},
         "cluster": {"address": "127.0.0.1", "heartbeat_interval": 1, "unavailable_after": 3,
                     "request_timeout": 3, "relay_retry": 2},
         "migrate": {"chunk_kb": 16, "window": 2, "retry_interval": 1, "request_timeout": 3, "give_up": 120}}
    if fault:
        c["migrate"]["fault"] = fault
    return c


def user_of(case):
    return "f-%s@%s" % (case.replace("_", "-"), D)


class MigrateFault(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.a, cls.b, cls.c = ternlib.make_nodes(("node-a", "node-b", "node-c"), conf())
        cls.nodes = {"a": cls.a, "b": cls.b, "c": cls.c}
        with ternlib.CleanupOnError(cls.a, cls.b, cls.c):
            ternlib.start_cluster(cls.a, cls.b, cls.c)
            cases = [p for p, _ in CRASHES] + list(OTHER) + [k for k, _, _ in KILLS]
            homes = {}
            for case in cases:
                cls.a.add_user(user_of(case), "--home", "node-b")
                homes[user_of(case)] = "node-b"
            ternlib.wait_homes(homes, cls.a, cls.b, cls.c, timeout=WAIT)
            cls.before = {}
            t0 = time.time()
            for i, case in enumerate(cases):
                ternlib.fill_mailbox(cls.b, user_of(case), FOLDERS, N_MESSAGES, PW, connections=2, seed=100 + i,
                                     expunge_every=15)
                cls.before[case] = ternlib.imap_digest(cls.b, user_of(case), PW)
            sys.stderr.write("test_migrate_fault: %d mailboxes filled in %.1f s\n" % (len(cases), time.time() - t0))

    @classmethod
    def tearDownClass(cls):
        for n in (cls.a, cls.b, cls.c):
            n.cleanup()

    def tearDown(self):
        # Every node back up, without a fault, for the next case.
        for n in (self.a, self.b, self.c):
            with open(n.config) as f:
                faulty = "fault" in f.read()
            if faulty:
                ternlib.set_conf(n, conf())
                if n.alive():
                    n.stop()
            if not n.alive():
                n.start()
        ternlib.assert_alive(self, self.a, self.b, self.c)

    # ---- helpers ----

    def restart_with(self, node, fault):
        ternlib.set_conf(node, conf(fault))
        node.stop()
        node.start()
        for n in (self.a, self.b, self.c):
            ternlib.wait_available(n, ["node-a", "node-b", "node-c"], WAIT)

    def settle(self, user):
        """Waits until every node shows user with one and the same active home; returns it."""
        last = {}

        def ok():
            homes = set()
            for n in (self.a, self.b, self.c):
                rec = ternlib.user_record(n, user)
                if rec is None or str(rec.get("home_state", "active")).lower() != "active":
                    return False
                last[n.name] = (rec.get("home"), rec.get("home_state"), rec.get("home_target"))
                homes.add(rec.get("home"))
            return len(homes) == 1 and homes <= {"node-b", "node-c"}
        self.a.wait_for(ok, WAIT * 2, "one active home for %s on every node (last %r)" % (user, last))
        return ternlib.user_record(self.a, user)["home"]

    def check_whole(self, case, user, accepted):
        """The guarantees once the migration has settled; returns the home node."""
        home_name = self.settle(user)
        home = self.b if home_name == "node-b" else self.c
        other = self.c if home is self.b else self.b
        other.wait_for(lambda: ternlib.holds_nothing(other, user) == [], WAIT * 2,
                       "%s holds nothing of %s" % (other.name, user))
        want = set(accepted)
        home.wait_for(lambda: want <= set(ternlib.imap_mailbox_digest_light(home, user, PW, "INBOX")), 120,
                      "the %d messages sent during the fault in %s's INBOX at %s" % (len(want), user, home.name))
        after = ternlib.imap_digest(home, user, PW)
        problems, new = ternlib.digest_compare(self.before[case], after, new_allowed={"INBOX"})
        self.assertEqual(problems, [], "\n".join(problems[:20]))
        got = [m["message_id"] or "(UID %d without a Message-ID: %d bytes, sha256 %s)" % (
                   m["uid"], m["size"], m["sha256"][:16])
               for m in new.get("INBOX", [])]
        self.assertEqual(sorted(got), sorted(want), "mail sent during the fault: not exactly once")
        self.assertEqual(ternlib.holds_nothing(other, user), [])
        return home

    def crash_case(self, point, key):
        user = user_of(point)
        node = self.nodes[key]
        front = self.a if node is not self.a else self.b
        self.restart_with(node, "crash:" + point)
        sender = ternlib.SmtpSender(front, user, "fault-" + point, seed=11, size=1500, timeout=20, pause=0.25)
        sender.start()
        try:
            time.sleep(0.5)
            r = ternlib.migrate_here(self.c, user)
            self.assertEqual(r.returncode, 0, r.stderr)
            try:
                rc = node.proc.wait(timeout=120)
            except Exception:               # noqa: BLE001 - reported as the failure
                self.fail("%s did not die at crash:%s; status %r" % (
                    node.name, point, ternlib.migrate_status(self.c).get(user)))
            self.assertEqual(rc, -9, "%s exited %r at crash:%s\n%s" % (node.name, rc, point, node.output_tail()))
            time.sleep(1.5)                 # mail keeps arriving while it is down
            ternlib.set_conf(node, conf())
            node.start(timeout=60)
            e = ternlib.wait_migration(self.c, user, timeout=240)
            time.sleep(1.0)
        finally:
            sender.stop_ev.set()
            sender.join(60)
        self.assertEqual(sender.errors, [])
        home = self.check_whole(point, user, sender.accepted)
        sys.stderr.write("crash:%s on %s: migration %s (%s), home %s, %d sent during it\n" % (
            point, node.name, e["state"], e.get("error") or "-", home.name, len(sender.accepted)))
        if point in AFTER_COMMIT:
            self.assertEqual(e["state"], "done", e)
            self.assertIs(home, self.c)
        elif e["state"] == "done":
            self.assertIs(home, self.c)
        else:
            self.assertIs(home, self.b, "migration %s but the home moved" % e["state"])

    def target_job(self, user):
        """The target's migrate status entry of user, or None (also while C is down)."""
        r = self.c.run_ctl("migrate", "status", timeout=30)
        if r.returncode != 0:
            return None
        try:
            return next((e for e in json.loads(r.stdout) if e.get("user", "").lower() == user.lower()), None)
        except ValueError:
            return None

    def wait_phase(self, user, phase, timeout=60.0):
        """Polls the target until user's migration is in phase: copying with something
        copied and more to come, or cutover. Fails when it went past it uncaught."""
        order = ("queued", "copying", "cutover", "done")
        t_end, e = time.time() + timeout, None
        while time.time() < t_end:
            e = self.target_job(user)
            st = (e or {}).get("state")
            if st == phase and (phase != "copying" or 0 < e["messages"] < e["messages_total"]
                                or 0 < e["bytes"] < e["bytes_total"]):
                return e
            if st in ("failed", "cancelled") or (st in order and order.index(st) > order.index(phase)):
                self.fail("the migration of %s went past %s before it could be caught: %r" % (user, phase, e))
            time.sleep(0.05)
        self.fail("the migration of %s never reached %s within %d s: %r" % (user, phase, timeout, e))

    def kill9(self, node):
        """kill -9 of node's ternd from outside; waits for it and checks that it died so."""
        os.kill(node.proc.pid, signal.SIGKILL)
        rc = node.proc.wait(timeout=30)
        self.assertEqual(rc, -9, "%s exited %r\n%s" % (node.name, rc, node.output_tail()))

    def kill_case(self, case, key, phase):
        """The source slowed, the migration started at C, node `key` killed by an external
        kill -9 in phase (for cutover: the master is held with SIGSTOP from the copy on, so
        that the target's cut-over stops at the commit; it is killed while stopped), then
        restarted (the source without the slowness); the migration must end done, with
        the user on C, and the mailbox whole."""
        user = user_of(case)
        node = self.nodes[key]
        front = self.a if node is not self.a else self.b
        self.restart_with(self.b, "slow:%d" % SLOW_MS)
        sender = ternlib.SmtpSender(front, user, "fault-" + case, seed=13, size=1500, timeout=20, pause=0.25)
        sender.start()
        stopped = False
        try:
            time.sleep(0.5)
            r = ternlib.migrate_here(self.c, user)
            self.assertEqual(r.returncode, 0, r.stderr)
            if phase == "cutover":
                self.wait_phase(user, "copying")
                node.signal(signal.SIGSTOP)
                stopped = True
                self.wait_phase(user, "cutover", timeout=120)
                time.sleep(3.0)             # freeze, last delta, digest, PREPARED: at the commit
                caught = self.target_job(user)
                self.assertEqual((caught or {}).get("state"), "cutover", "a commit without the master: %r" % caught)
            else:
                caught = self.wait_phase(user, phase)
            self.kill9(node)
            stopped = False
            if node is self.a and phase == "copying":
                # The copy goes on over the bulk channel; the commit waits for the master.
                e = self.wait_phase(user, "cutover", timeout=120)
                time.sleep(2.0)
                e = self.target_job(user)
                self.assertEqual((e or {}).get("state"), "cutover", "a commit without the master: %r" % e)
            else:
                time.sleep(1.5)             # mail keeps arriving while it is down
            if node is self.b:
                ternlib.set_conf(node, conf())
            node.start(timeout=60)
            e = ternlib.wait_migration(self.c, user, timeout=240)
            time.sleep(1.0)
        finally:
            if stopped:
                node.signal(signal.SIGCONT)
            sender.stop_ev.set()
            sender.join(60)
        self.assertEqual(sender.errors, [])
        home = self.check_whole(case, user, sender.accepted)
        sys.stderr.write("%s: killed at %r; migration %s (%s), home %s, %d sent during it\n" % (
            case, (caught["state"], caught["messages"], caught["messages_total"]), e["state"],
            e.get("error") or "-", home.name, len(sender.accepted)))
        self.assertEqual(e["state"], "done", e)
        self.assertIs(home, self.c)

    # ---- tests ----

    def test_corrupt(self):
        user = user_of("corrupt")
        self.restart_with(self.b, "corrupt:3")
        r = ternlib.migrate_here(self.c, user)
        self.assertEqual(r.returncode, 0, r.stderr)
        e = ternlib.wait_migration(self.c, user, timeout=240)
        self.assertEqual(e["state"], "done", e)
        home = self.check_whole("corrupt", user, [])
        self.assertIs(home, self.c)
        logs = (self.c.log_text("warning") + self.b.log_text("warning")).lower()
        self.assertIn("checksum", logs)

    def test_disk_full(self):
        user = user_of("disk_full")
        self.restart_with(self.c, "disk_full")
        r = ternlib.migrate_here(self.c, user)
        if r.returncode != 0:           # refused at once: also before the cut-over
            self.assertRegex(r.stderr.lower(), "disk|space")
        else:
            e = ternlib.wait_migration(self.c, user, timeout=240)
            self.assertEqual(e["state"], "failed", e)
            self.assertRegex((e.get("error") or "").lower(), "disk|space")
        home = self.check_whole("disk_full", user, [])
        self.assertIs(home, self.b)
        self.assertEqual(ternlib.holds_nothing(self.c, user), [])


def _make_crash_test(point, key):
    def test(self):
        self.crash_case(point, key)
    test.__doc__ = "crash:%s on node %s" % (point, key.upper())
    return test


for _i, (_point, _key) in enumerate(CRASHES):
    setattr(MigrateFault, "test_crash_%d_%s" % (_i + 1, _point), _make_crash_test(_point, _key))


def _make_kill_test(case, key, phase):
    def test(self):
        self.kill_case(case, key, phase)
    test.__doc__ = "kill -9 of node %s while %s" % (key.upper(), phase)
    return test


for _case, _key, _phase in KILLS:
    setattr(MigrateFault, "test_" + _case, _make_kill_test(_case, _key, _phase))


if __name__ == "__main__":
    unittest.main(verbosity=2)
