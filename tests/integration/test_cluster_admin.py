#!/usr/bin/python3
"""Administration of a distributed domain (DESIGN.md §5, §8) with two nodes on 127.0.0.1:
`ternctl cluster join` refuses a master whose certificate does not match the pinned
fingerprint (nothing is sent), wrong admin credentials and accounts without whole-server
read/write rights (logged in security.log); a correct join shows both nodes on both sides
(`cluster status --json`); a slave refuses changes of shared state with a message naming the
master; `user list --this-node` shows the users homed on the node; `cluster remove` is
refused while a user is homed on the node; `cluster leave` returns the slave to standalone
and the master stops showing it available.

The steps build on each other, so they run in order (test_01 ... test_06)."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

D = "cluster.test"
MASTER, SLAVE = "cam-master", "cam-slave"
WAIT = 40          # generous limit for cluster properties (heartbeats every 2 s)
CONF = {"cluster": {"address": "127.0.0.1"}}


def nodes_of(status):
    return {n["name"]: n for n in status.get("nodes", [])}


class ClusterAdminTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.master = ternlib.Node(name=MASTER, domain=D, conf=CONF)
        cls.slave = ternlib.Node(name=SLAVE, domain=D, conf=CONF)
        with ternlib.CleanupOnError(cls.master, cls.slave):
            cls.master.start()
            cls.slave.start()
            cls.fp = ternlib.fingerprint_of(cls.master)
            cls.master.add_user("plain@" + D)
            cls.master.add_user("ro@" + D, "--rights", "read-only")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.slave.cleanup()
        finally:
            cls.master.cleanup()

    def tearDown(self):
        ternlib.assert_alive(self, self.master, self.slave)

    def join(self, admin=None, pwfile=None, fp=None):
        """ternctl cluster join on the slave; the CompletedProcess."""
        return ternlib.cluster_join(self.master, self.slave, fp or self.fp, admin, pwfile)

    def assert_master_alone(self):
        st = self.master.ctl("cluster", "status")
        self.assertEqual(list(nodes_of(st)), [MASTER], st)
        self.assertEqual(nodes_of(st)[MASTER]["status"], "this server")
        self.assertEqual(self.slave.ctl("cluster", "status")["nodes"][0]["role"], "standalone")

    def wait_status(self, node, pred, what):
        last = [None]

        def check():
            last[0] = node.ctl("cluster", "status")
            return pred(nodes_of(last[0]))
        try:
            node.wait_for(check, timeout=WAIT, what=what)
        except AssertionError as e:
            raise AssertionError("%s; last status on %s: %r" % (e, node.name, last[0]))

    def test_01_wrong_fingerprint_is_refused_before_sending(self):
        bad = ("0" if self.fp[0] != "0" else "1") + self.fp[1:]
        sec_before = self.master.log_text("security")
        r = self.join(fp=bad)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("fingerprint", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        # nothing reached the master: no login, no node
        time.sleep(0.5)
        self.assertEqual(sec_before, self.master.log_text("security"))
        self.assert_master_alone()
        # a malformed fingerprint is a usage error
        r = self.join(fp="not-hex")
        self.assertEqual(r.returncode, 2, r.stderr)

    def test_02_wrong_password_is_refused_and_logged(self):
        bad = self.slave.write_file("bad.pw", "not-the-admin-password\n")
        before = len(self.master.log_text("security").splitlines())
        r = self.join(pwfile=bad)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertTrue(r.stderr.strip(), "no message")
        self.master.wait_for(lambda: len(self.master.log_text("security").splitlines()) > before,
                             what="a security.log line on the master")
        self.assertNotIn("not-the-admin-password", self.master.log_text("security"))
        self.assert_master_alone()

    def test_03_accounts_without_server_rights_are_refused(self):
        for user in ("plain@" + D, "ro@" + D):
            before = len(self.master.log_text("security").splitlines())
            r = self.join(admin=user, pwfile=self.master.userpw)
            self.assertNotEqual(r.returncode, 0, r.stdout)
            self.assertIn("rights", r.stderr)
            self.master.wait_for(lambda: len(self.master.log_text("security").splitlines()) > before,
                                 what="a security.log line for %s" % user)
            new = self.master.log_text("security").splitlines()[before:]
            self.assertTrue(any(user in line and "/api/v1/cluster/nodes" in line for line in new), new)
            self.assert_master_alone()

    def test_04_join_shows_both_nodes_on_both_sides(self):
        r = self.join()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(MASTER, r.stdout)
        self.wait_status(self.master, lambda n: set(n) == {MASTER, SLAVE} and n[SLAVE]["status"] == "available",
                         "the slave available on the master")
        self.wait_status(self.slave, lambda n: set(n) == {MASTER, SLAVE} and n[MASTER]["status"] == "available",
                         "the master available on the slave")
        for node, me, other in ((self.master, MASTER, SLAVE), (self.slave, SLAVE, MASTER)):
            st = node.ctl("cluster", "status")
            n = nodes_of(st)
            self.assertEqual(n[MASTER]["role"], "master", st)
            self.assertEqual(n[SLAVE]["role"], "slave", st)
            self.assertEqual(n[me]["status"], "this server", st)
            for entry in st["nodes"]:
                for key in ("name", "role", "status", "address", "seq", "lag"):
                    self.assertIn(key, entry)
                self.assertIsInstance(entry["seq"], int)
                self.assertIsInstance(entry["lag"], int)
        self.assertEqual(self.slave.ctl("node", "show")["role"], "slave")
        self.assertEqual(self.master.ctl("node", "show")["role"], "master")
        self.assertTrue(self.master.ctl("node", "show")["fingerprint"])
        # the human table names both
        r = self.slave.run_ctl("cluster", "status", json_out=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(MASTER, r.stdout)
        self.assertIn("this server", r.stdout)
        # the join was logged on the master
        self.assertIn("insert Node set Name='%s'" % SLAVE, self.master.log_text("config"))

    def test_05_slave_refuses_shared_changes_and_homes(self):
        code, err = self.slave.ctl_fail("user", "add", "onslave@" + D, "--password-file", self.slave.userpw)
        self.assertEqual(code, 1)
        self.assertIn(MASTER, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        # a user homed on the slave, made on the master
        self.master.ctl("user", "add", "homed@" + D, "--password-file", self.master.userpw, "--home", SLAVE)
        self.addCleanup(self.master.run_ctl, "user", "remove", "homed@" + D)   # before the leave
        self.assertEqual(self.master.ctl("user", "show", "homed@" + D)["home"], SLAVE)

        def listed_on_slave():
            return "homed@" + D in [u["address"] for u in self.slave.ctl("user", "list", "--this-node")]
        self.slave.wait_for(listed_on_slave, timeout=WAIT, what="homed@ replicated to the slave")
        self.assertEqual(self.slave.ctl("user", "show", "homed@" + D)["home"], SLAVE)
        theirs = [u["address"] for u in self.slave.ctl("user", "list", "--this-node")]
        self.assertNotIn("plain@" + D, theirs)      # a user of the master is not the slave's
        self.assertEqual(self.slave.ctl("user", "show", "plain@" + D)["home"], MASTER)
        mine = [u["address"] for u in self.master.ctl("user", "list", "--this-node")]
        self.assertNotIn("homed@" + D, mine)
        self.assertIn("plain@" + D, mine)
        for u in self.master.ctl("user", "list", "--this-node"):
            self.assertEqual(u["home"], MASTER, u)
        # user set --home moves a user whose mailbox is empty; an unknown node is refused
        self.master.ctl("user", "add", "movable@" + D, "--password-file", self.master.userpw)
        self.addCleanup(self.master.run_ctl, "user", "remove", "movable@" + D)
        self.assertEqual(self.master.ctl("user", "show", "movable@" + D)["home"], MASTER)
        code, err = self.master.ctl_fail("user", "set", "movable@" + D, "--home", "no-such-node")
        self.assertEqual(code, 1)
        self.assertIn("no-such-node", err)
        code, err = self.slave.ctl_fail("user", "set", "movable@" + D, "--home", SLAVE)
        self.assertEqual(code, 1)
        self.assertIn(MASTER, err)
        self.master.ctl("user", "set", "movable@" + D, "--home", SLAVE)
        self.assertEqual(self.master.ctl("user", "show", "movable@" + D)["home"], SLAVE)
        self.slave.wait_for(lambda: "movable@" + D in [u["address"] for u in
                                                       self.slave.ctl("user", "list", "--this-node")],
                            timeout=WAIT, what="movable@ homed on the slave")
        self.master.ctl("user", "set", "movable@" + D, "--home", MASTER)
        self.assertEqual(self.master.ctl("user", "show", "movable@" + D)["home"], MASTER)
        # remove is refused while a user lives on the node
        code, err = self.master.ctl_fail("cluster", "remove", SLAVE)
        self.assertEqual(code, 1)
        self.assertTrue(err.strip())
        self.assertIn(SLAVE, nodes_of(self.master.ctl("cluster", "status")))

    def test_06_leave_returns_the_slave_to_standalone(self):
        r = self.slave.run_ctl("cluster", "leave", json_out=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        st = self.slave.ctl("cluster", "status")
        self.assertEqual([n["name"] for n in st["nodes"]], [SLAVE], st)
        self.assertEqual(st["nodes"][0]["role"], "standalone")
        self.assertEqual(st["nodes"][0]["status"], "this server")
        self.assertEqual(self.slave.ctl("node", "show")["role"], "standalone")
        self.wait_status(self.master, lambda n: SLAVE not in n or n[SLAVE]["status"] != "available",
                         "the master to stop showing the slave available")
        if SLAVE in nodes_of(self.master.ctl("cluster", "status")):
            self.master.ctl("cluster", "remove", SLAVE)
            self.assertNotIn(SLAVE, nodes_of(self.master.ctl("cluster", "status")))
        # standalone again: the slave's own changes are accepted
        self.slave.ctl("user", "add", "afterleave@" + D, "--password-file", self.slave.userpw)


if __name__ == "__main__":
    ternlib.main()
