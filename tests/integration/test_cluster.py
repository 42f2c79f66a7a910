#!/usr/bin/python3
"""Distributed domain (issue 6) with three nodes on 127.0.0.1 - A (master), B and C
(slaves) - each with its own port base, node name and data dir, and one slapd fixture
that A maps: B and C join A with the pinned fingerprint; users, an alias and the node list
replicate to both slaves; mail for a user homed on C sent to A lands in C's mailbox; an
IMAP login at A for that user is proxied to C, and IDLE there sees a new delivery; group
mail reaches members on every node; a CURVE key that never joined is refused at the
handshake; with the master stopped the slaves serve their own users and queue mail for
the master's, and all of it arrives and the slaves catch up once it is back; leave and
re-join. Every property with a time in it is waited for with a generous limit."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
import ternlib  # noqa: E402
import dirfixture  # noqa: E402

D = "example.test"
U = dirfixture.USERS
WAIT = 30.0
CONF = {"security": {"lockout_threshold": 0},
        "smtpd": {"max_msgs_per_hour_per_ip": 0, "max_unknown_rcpts": 0},
        "directory": {"poll_interval": 2, "reconcile_interval": 6, "timeout": 3},
        "queue": {"check_interval": 1, "retry_interval": 2},
        "cluster": {"address": "127.0.0.1", "heartbeat_interval": 1, "unavailable_after": 3,
                    "request_timeout": 5, "relay_retry": 2}}


def addr(name):
    return "%s@%s" % (name, D)


class Cluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fx = dirfixture.start(ldap=True, backup=False, kdc=False)
        cls.a, cls.b, cls.c = ternlib.make_nodes(("node-a", "node-b", "node-c"), CONF)
        for n in (cls.a, cls.b, cls.c):
            n.start()
        ternlib.set_od_directory(cls.a, D, cls.fx)
        cls.a.wait_for(lambda: cls.user(cls.a, "bob") is not None, WAIT, "bob mapped on the master")
        cls.fp_a = ternlib.fingerprint_of(cls.a)
        ternlib.join_cluster(cls.a, cls.b, cls.c)
        # bob lives on C, alice stays on the master.
        ternlib.set_homes(cls.a, {addr("bob"): "node-c"})
        ternlib.wait_homes({addr("bob"): "node-c"}, cls.c, timeout=WAIT, what="bob homed on node-c, seen by node-c")

    @classmethod
    def tearDownClass(cls):
        for n in (cls.a, cls.b, cls.c):
            n.cleanup()
        cls.fx.stop()

    # ---- helpers ----

    @classmethod
    def join(cls, node, fingerprint=None, password_file=None, admin=None):
        return ternlib.cluster_join(cls.a, node, fingerprint or cls.fp_a, admin, password_file)

    @staticmethod
    def user(node, name):
        return ternlib.user_record(node, addr(name))

    @staticmethod
    def status(node):
        return ternlib.cluster_nodes(node)

    def wait_available(self, node, names):
        ternlib.wait_available(node, names, WAIT)

    def imap_login(self, node, name):
        return node.imap(addr(name), U[name]["password"])

    # ---- tests (run in name order) ----

    def test_01_joined(self):
        for n in (self.a, self.b, self.c):
            self.wait_available(n, ["node-a", "node-b", "node-c"])
        st = self.status(self.a)
        self.assertEqual(st["node-a"]["role"], "master")
        self.assertEqual(st["node-a"]["status"], "this server")
        self.assertEqual(st["node-b"]["role"], "slave")
        self.assertEqual(self.status(self.b)["node-b"]["status"], "this server")

    def test_02_users_and_alias_replicate(self):
        for n in (self.b, self.c):
            n.wait_for(lambda: self.user(n, "alice") is not None, WAIT, "alice on " + n.name)
            self.assertEqual(self.user(n, "alice")["type"], "ldap")
        self.a.ctl("alias", "add", "help@" + D, addr("alice"))
        for n in (self.b, self.c):
            n.wait_for(lambda: any(x["alias"].lower().startswith("help")
                                   for x in n.ctl("alias", "list", D)), WAIT, "alias on " + n.name)

    def test_03_slave_refuses_shared_change(self):
        code, err = self.b.ctl_fail("alias", "add", "nope@" + D, addr("alice"))
        self.assertIn("master", err)
        self.assertIn("node-a", err)

    def test_04_mail_reaches_home_node(self):
        msg = ternlib.make_message("cross-node 1", to=addr("bob"))
        self.assertFalse(self.a.send_mail("sender@example.test", [addr("bob")], msg))
        self.c.wait_message(addr("bob"), "cross-node 1", timeout=WAIT)
        self.assertIn("node-c", self.a.log_text("mail") + self.c.log_text("mail"))

    def test_05_group_mail_on_every_node(self):
        msg = ternlib.make_message("group fan-out", to="sales@" + D)
        self.assertFalse(self.b.send_mail("sender@example.test", ["sales@" + D], msg))
        self.a.wait_message(addr("alice"), "group fan-out", timeout=WAIT)
        self.c.wait_message(addr("bob"), "group fan-out", timeout=WAIT)

    def test_06_imap_proxy_and_idle(self):
        c = self.imap_login(self.a, "bob")
        try:
            typ, data = c.select("INBOX")
            self.assertEqual(typ, "OK")
            before = int(data[0])
            self.assertGreaterEqual(before, 1)
            tag = c._new_tag().decode()
            c.send(("%s IDLE\r\n" % tag).encode())
            self.assertTrue(c.readline().startswith(b"+"))
            msg = ternlib.make_message("while idle", to=addr("bob"))
            self.assertFalse(self.b.send_mail("sender@example.test", [addr("bob")], msg))
            c.sock.settimeout(WAIT)
            line = c.readline()
            self.assertRegex(line, rb"^\* \d+ EXISTS")
            c.send(b"DONE\r\n")
            while not c.readline().startswith(tag.encode()):
                pass
        finally:
            c.logout()
        self.assertIn("node-c", self.a.log_text("security") + self.a.log_text("mail"))

    def test_07_pop3_proxy(self):
        p = self.a.pop3(addr("bob"), U["bob"]["password"])
        try:
            count, _ = p.stat()
            self.assertGreaterEqual(count, 2)
        finally:
            p.quit()

    def test_08_forged_key_refused(self):
        import zmq
        ctx = zmq.Context()
        s = ctx.socket(zmq.DEALER)
        try:
            pub, sec = zmq.curve_keypair()
            s.linger = 0
            s.curve_publickey, s.curve_secretkey = pub, sec
            s.curve_serverkey = self.master_curve_key()
            s.connect("tcp://127.0.0.1:%d" % self.a.port(4050))
            s.send(b"\x08\x01", zmq.NOBLOCK)
            self.assertEqual(s.poll(3000), 0, "the master answered an unregistered key")
        except zmq.Again:
            pass                        # no handshake, so not even queued: refused
        finally:
            s.close(linger=0)
            ctx.term()
        line = "CURVE key %s is not a registered node" % pub.decode()
        self.a.wait_for(lambda: line in self.a.log_text("warning"), WAIT,
                        "the master's warning.log line naming the unregistered key")
        self.wait_available(self.a, ["node-b", "node-c"])

    def master_curve_key(self):
        import base64
        import zmq.utils.z85
        status, ident = self.a.request("GET", "/api/v1/cluster/identity")
        self.assertEqual(status, 200)
        key = base64.b64decode(ident["curve_public"])
        return zmq.utils.z85.encode(key)

    def test_09_master_down(self):
        self.a.stop()
        try:
            for n in (self.b, self.c):
                n.wait_for(lambda: self.status(n)["node-a"]["status"] == "unavailable", WAIT,
                           "master unavailable on " + n.name)
            # C serves its own user, B routes to C directly, mail for the master's user waits.
            msg = ternlib.make_message("master down bob", to=addr("bob"))
            self.assertFalse(self.b.send_mail("sender@example.test", [addr("bob")], msg))
            self.c.wait_message(addr("bob"), "master down bob", timeout=WAIT)
            c = self.imap_login(self.c, "bob")
            self.assertEqual(c.select("INBOX")[0], "OK")
            c.logout()
            msg = ternlib.make_message("master down alice", to=addr("alice"))
            self.assertFalse(self.c.send_mail("sender@example.test", [addr("alice")], msg))
            self.c.wait_for(lambda: len(self.c.queue_list()) >= 1, WAIT, "mail for alice queued on C")
        finally:
            self.a.start()
        self.a.wait_message(addr("alice"), "master down alice", timeout=WAIT * 2)
        self.a.ctl("alias", "add", "after@" + D, addr("alice"))
        for n in (self.b, self.c):
            n.wait_for(lambda: any(x["alias"].lower().startswith("after")
                                   for x in n.ctl("alias", "list", D)), WAIT, "caught up: " + n.name)
        self.a.wait_for(lambda: self.status(self.a)["node-b"]["lag"] == 0, WAIT, "B's lag back to 0")
        self.assertGreater(self.status(self.a)["node-b"]["seq"], 0)

    def test_10_join_refusals(self):
        wrong = "0" * 64
        r = self.join(self.b, fingerprint=wrong)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("fingerprint", r.stderr.lower())
        badpw = self.b.write_file("bad.pw", "not-the-password\n")
        d = ternlib.Node(name="node-d", conf=CONF)
        try:
            d.start()
            r = self.join(d, password_file=badpw)
            self.assertNotEqual(r.returncode, 0)
            self.assertNotIn("node-d", self.status(self.a))
            self.assertIn("standalone", [x["role"] for x in d.ctl("cluster", "status")["nodes"]])
        finally:
            d.cleanup()

    def test_11_remove_refused_while_homed(self):
        code, err = self.a.ctl_fail("cluster", "remove", "node-c")
        self.assertIn("home", err.lower())

    def test_12_leave_and_rejoin(self):
        self.b.ctl("cluster", "leave")
        self.assertEqual(self.status(self.b)["node-b"]["role"], "standalone")
        self.a.wait_for(lambda: "node-b" not in self.status(self.a), WAIT, "node-b gone from the master")
        r = self.join(self.b)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_available(self.a, ["node-b"])
        self.wait_available(self.b, ["node-a", "node-c"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
