#!/usr/bin/python3
"""Acknowledged writes survive kill -9: 1,000 `ternctl user add` calls, four at a time; the
node is killed after ~300 successes, restarted, and the rest are issued. Every call that
exited 0 must be in the user list afterwards, and the WAL sync counter must show that
acknowledged writes were synced (one sync per sequential write at least)."""
import os
import sys
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

D = "dur.test"
TOTAL = 1000
KILL_AFTER = 300


class DurabilityTest(unittest.TestCase):
    def setUp(self):
        self.node = ternlib.Node(name="dur1", domain=D)
        self.addCleanup(self.node.cleanup)
        self.node.start()

    def wal_synced(self):
        return self.node.ctl("stats")["store"]["wal_synced"]

    def test_wal_synced_counts_acknowledged_writes(self):
        n = self.node
        w0 = self.wal_synced()
        for i in range(5):
            n.ctl("user", "add", "seq%d@%s" % (i, D), "--password-file", n.userpw)
        w1 = self.wal_synced()
        self.assertGreaterEqual(w1 - w0, 5, "5 sequential acknowledged writes, wal_synced %d -> %d" % (w0, w1))
        stats = n.ctl("stats")["store"]
        self.assertGreater(stats["commits"], 0)
        self.assertGreater(stats["commit_groups"], 0)
        self.assertLessEqual(stats["commit_groups"], stats["commits"])

    def test_kill_9_keeps_acknowledged_users(self):
        n = self.node
        lock = threading.Lock()
        state = {"next": 0, "ok": set(), "failed": set(), "killed": False}

        def worker():
            while True:
                with lock:
                    if state["next"] >= TOTAL or (state["killed"] is None):
                        return
                    i = state["next"]
                    state["next"] += 1
                r = n.run_ctl("user", "add", "u%d@%s" % (i, D), "--password-file", n.userpw, json_out=False)
                with lock:
                    (state["ok"] if r.returncode == 0 else state["failed"]).add(i)
                    if len(state["ok"]) >= KILL_AFTER and state["killed"] is False:
                        state["killed"] = True
                        n.kill()           # in the middle of the other workers' calls
                        state["killed"] = None  # stop handing out work until restart

        t0 = time.time()
        with ThreadPoolExecutor(4) as pool:
            for f in [pool.submit(worker) for _ in range(4)]:
                f.result()
        self.assertIsNone(state["killed"], "the node was never killed (%d successes)" % len(state["ok"]))
        ok_before_kill = set(state["ok"])

        # Restart: it must come up cleanly and hold every acknowledged user.
        n.start()
        present = {u["name"] for u in n.ctl("user", "list", D, timeout=300)}
        missing = sorted(i for i in ok_before_kill if "u%d" % i not in present)
        self.assertEqual(missing, [], "acknowledged before kill -9 but lost")

        # The rest of the 1,000 calls, on the restarted node.
        state["killed"] = True
        with ThreadPoolExecutor(4) as pool:
            for f in [pool.submit(worker) for _ in range(4)]:
                f.result()
        self.assertEqual(state["next"], TOTAL)
        present = {u["name"] for u in n.ctl("user", "list", D, timeout=300)}
        missing = sorted(i for i in state["ok"] if "u%d" % i not in present)
        self.assertEqual(missing, [])
        self.assertGreaterEqual(len(state["ok"]), TOTAL - 20,
                                "too many calls failed: %d" % len(state["failed"]))
        self.assertEqual(n.stop(), 0, n.output_tail())
        print("\n%d calls, %d acknowledged (%d before the kill), %.0f s" % (
            TOTAL, len(state["ok"]), len(ok_before_kill), time.time() - t0), file=sys.stderr)


if __name__ == "__main__":
    ternlib.main()
