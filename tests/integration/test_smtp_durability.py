#!/usr/bin/python3
"""SMTP durability (issue 3): 5,000 small messages from four parallel smtplib sessions
(127.0.0.1) to 20 local users; the node is killed with SIGKILL after about 40% of them got
their 250, restarted, and the rest are sent. Afterwards every message that got 250 is in its
mailbox exactly once, every message refused with a reply is in none, and a message whose
session was cut by the kill is there at most once. Counted through the admin messages API,
matched by a unique Subject. TERN_SMTP_DUR_TOTAL overrides the count."""
import os
import smtplib
import sys
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

D = "dur.test"
TOTAL = int(os.environ.get("TERN_SMTP_DUR_TOTAL", "5000"))
KILL_AFTER = TOTAL * 2 // 5
USERS = ["u%d@%s" % (i, D) for i in range(20)]
WORKERS = 4


def subject_of(i):
    return "dur-%06d" % i


class SmtpDurabilityTest(unittest.TestCase):
    def setUp(self):
        conf = {"smtpd": {"max_msgs_per_hour_per_ip": 0, "max_conns_per_ip": 0}}
        self.node = ternlib.Node(name="smtpdur1", domain=D, conf=conf)
        self.addCleanup(self.node.cleanup)
        self.node.start()
        for u in USERS:
            self.node.add_user(u)

    def message(self, i):
        rcpt = USERS[i % len(USERS)]
        data = ("From: <sender@ext.test>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@client.test>\r\n\r\n"
                "Message number %d of the durability run.\r\n" % (rcpt, subject_of(i), subject_of(i), i))
        return rcpt, data.encode()

    def test_kill_9_during_smtp_load(self):
        n = self.node
        lock = threading.Lock()
        st = {"next": 0, "ok": set(), "refused": set(), "unknown": set(), "killed": False,
              "t_kill": None, "ok_at_kill": 0}
        restarted = threading.Event()

        def connect():
            return n.smtp("smtp", source="127.0.0.1", timeout=60)

        def worker():
            s = None
            while True:
                with lock:
                    if st["next"] >= TOTAL:
                        break
                    paused = st["killed"] and not restarted.is_set()
                    if not paused:
                        i = st["next"]
                        st["next"] += 1
                if paused:
                    restarted.wait(300)
                    continue
                rcpt, data = self.message(i)
                try:
                    if s is None:
                        s = connect()
                    s.sendmail("sender@ext.test", [rcpt], data)
                    outcome = "ok"
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError):
                    outcome = "refused"          # a definite non-2xx reply: must not be delivered
                    try:
                        s.rset()
                    except (smtplib.SMTPException, OSError):
                        s.close()
                        s = None
                except (smtplib.SMTPException, OSError):
                    outcome = "unknown"          # cut by the kill: at most once
                    if s is not None:
                        s.close()
                    s = None
                with lock:
                    st[outcome].add(i)
                    if outcome == "ok" and len(st["ok"]) >= KILL_AFTER and not st["killed"]:
                        st["killed"] = True
                        st["ok_at_kill"] = len(st["ok"])
                        st["t_kill"] = time.time()
                        n.kill()
            if s is not None:
                try:
                    s.quit()
                except (smtplib.SMTPException, OSError):
                    s.close()

        t0 = time.time()
        with ThreadPoolExecutor(WORKERS) as pool:
            futures = [pool.submit(worker) for _ in range(WORKERS)]
            while not all(f.done() for f in futures):
                if st["killed"] and not restarted.is_set():
                    time.sleep(0.5)            # let the other sessions see the dead node
                    n.start(timeout=120)
                    restarted.set()
                time.sleep(0.05)
            for f in futures:
                f.result()
        t_end = time.time()
        self.assertTrue(st["killed"], "the node was never killed (%d accepted)" % len(st["ok"]))
        first_rate = st["ok_at_kill"] / max(0.001, st["t_kill"] - t0)
        total_rate = len(st["ok"]) / max(0.001, t_end - t0)
        print("\n%d messages: %d accepted, %d refused, %d cut by the kill; %.0f msg/s before the kill, "
              "%.0f msg/s overall (restart included), %.0f s" % (
                  TOTAL, len(st["ok"]), len(st["refused"]), len(st["unknown"]), first_rate, total_rate,
                  t_end - t0), file=sys.stderr)

        counts = {}

        def scan(user):
            found = []
            for m in n.messages(user):
                raw = n.message_bytes(user, m["uid"], m.get("folder", "INBOX"))
                subj = ternlib.header_text(ternlib.parse_message(raw), "Subject")
                found.append(subj)
            return user, found
        with ThreadPoolExecutor(4) as pool:
            for user, subjects in pool.map(scan, USERS):
                for subj in subjects:
                    self.assertTrue(subj and subj.startswith("dur-"), "foreign message %r in %s" % (subj, user))
                    i = int(subj[4:])
                    self.assertEqual(USERS[i % len(USERS)], user, "%s in the wrong mailbox %s" % (subj, user))
                    counts[i] = counts.get(i, 0) + 1

        lost = sorted(i for i in st["ok"] if counts.get(i, 0) == 0)
        doubled = sorted(i for i, c in counts.items() if c > 1)
        ghosts = sorted(i for i in st["refused"] if counts.get(i, 0) > 0)
        self.assertEqual(lost[:20], [], "%d acknowledged messages lost" % len(lost))
        self.assertEqual(doubled[:20], [], "%d messages delivered more than once" % len(doubled))
        self.assertEqual(ghosts[:20], [], "%d refused messages delivered anyway" % len(ghosts))
        self.assertGreaterEqual(len(st["ok"]), TOTAL - 50, "too many messages not accepted")
        self.assertEqual(n.stop(), 0, n.output_tail())


if __name__ == "__main__":
    ternlib.main()
