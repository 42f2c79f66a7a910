#!/usr/bin/python3
"""Directory mapping with bad input (issue 5): entries with huge attributes (10,000
ternAddress values, a 1 MB description, a 1 MB second cn), an entry missing the optional
attributes (no mail, no ternAddress) and a slow directory (a TCP server that accepts and
never answers). ternd keeps running with bounded memory, maps the odd users with bounded
data (at most LM_MAX_VALUES = 5000 values kept) or skips them, alice still logs in, and a
hanging directory makes a mapped user's login fail within the timeout while the local
admin still logs in. (A non-UTF-8 value cannot be tested here: slapd's syntax checks
refuse the bytes ff fe in cn, description and ternAddress; ldapmap's unit tests cover it.)"""
import imaplib
import os
import socket
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
import ternlib  # noqa: E402
import dirfixture  # noqa: E402

D = "example.test"
U = dirfixture.USERS
LM_MAX_VALUES = 5000
CONF = {"security": {"lockout_threshold": 0},
        "directory": {"poll_interval": 1, "timeout": 2, "cache_ttl": 0}}
MB = 1024 * 1024


def user_ldif_attrs(uid, cn, uid_number):
    return {"objectClass": ["top", "inetOrgPerson", "posixAccount", "ternMailUser"],
            "uid": uid, "cn": cn, "sn": uid.capitalize(), "uidNumber": str(uid_number),
            "gidNumber": "20", "homeDirectory": "/Users/" + uid,
            "userPassword": uid.capitalize() + "-Pass-9"}


class Blackhole:
    """A TCP server on loopback that accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)     # kept open, never read from nor written to

    def stop(self):
        self.stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in self.conns:
            c.close()


class DirectoryBadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fx = dirfixture.start(ldap=True, backup=False, kdc=False)
        # Under AddressSanitizer freed memory sits in a quarantine (256 MB by default),
        # which would read as RSS growth: keep it small so the RSS bound measures ternd.
        asan = os.environ.get("ASAN_OPTIONS", "")
        if "quarantine_size_mb" not in asan:
            os.environ["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "quarantine_size_mb=16"
        cls.node = ternlib.Node(conf=CONF)
        cls.node.start()
        cls.bindpw = cls.node.write_file("bind.pw", dirfixture.SERVICE_PASSWORD + "\n")
        cls.set_od()
        cls.rss0 = None

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()
        cls.fx.stop()

    @classmethod
    def set_od(cls, server=None):
        cls.node.ctl("directory", "set", D, "--type", "od",
                     "--server", server or "127.0.0.1:%d" % cls.fx.primary.ldap_port,
                     "--bind-dn", dirfixture.OD_SERVICE_DN, "--bind-password-file", cls.bindpw,
                     "--base", dirfixture.OD_BASE, "--realm", dirfixture.REALM, "--auth", "bind")

    # ---- helpers ----

    def users(self):
        return {u["name"]: u for u in self.node.ctl("user", "list", D)}

    def wait_user(self, name, timeout=60):
        self.node.wait_for(lambda: name in self.users(), timeout=timeout, what="user %s mapped" % name)
        return self.users()[name]

    def imap_login(self, user, password, timeout=30):
        c = imaplib.IMAP4("127.0.0.1", self.node.port(143), timeout=timeout)
        try:
            typ, _ = c.login(user, password)
            c.logout()
            return typ == "OK"
        except imaplib.IMAP4.error:
            c.shutdown()
            return False

    def assert_healthy(self):
        self.assertTrue(self.node.alive(), self.node.output_tail())
        r = self.node.run_ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)

    # ---- tests (run in name order) ----

    def test_01_baseline(self):
        self.wait_user("alice")
        self.assertTrue(self.imap_login("alice@" + D, U["alice"]["password"]))
        type(self).rss0 = self.node.rss_kb()

    def test_02_huge_values(self):
        rss0 = self.rss0 or self.node.rss_kb()
        big = user_ldif_attrs("bigaddr", "Big Addr", 1201)
        big["ternAddress"] = ["ba%05d" % i for i in range(10000)]
        big["description"] = "d" * MB
        self.fx.add_entry("uid=bigaddr,cn=users," + dirfixture.OD_BASE, big)
        bigcn = user_ldif_attrs("bigcn", ["Big Cn", "c" * MB], 1202)
        self.fx.add_entry("uid=bigcn,cn=users," + dirfixture.OD_BASE, bigcn)
        # A normal user added after them shows the poll got past both entries.
        self.fx.add_entry("uid=after1,cn=users," + dirfixture.OD_BASE,
                          user_ldif_attrs("after1", "After One", 1203))
        self.wait_user("after1", timeout=60)
        self.assert_healthy()
        # Both are mapped with bounded data: the first LM_MAX_VALUES addresses are kept,
        # the 1 MB values (over LM_MAX_VALUE_LEN) dropped, each drop logged.
        users = self.users()
        self.assertIn("bigaddr", users)
        self.assertIn("bigcn", users)
        shown = self.node.ctl("user", "show", "bigaddr@" + D)
        self.assertLessEqual(len(shown.get("addresses", [])), LM_MAX_VALUES)
        self.assertGreater(len(shown.get("addresses", [])), 0)
        self.assertEqual(shown["full_name"], "Big Addr")
        shown = self.node.ctl("user", "show", "bigcn@" + D)
        self.assertEqual(shown["full_name"], "Big Cn")
        warn = self.node.log_text("warning")
        self.assertIn("uid=bigaddr,cn=users,%s: " % dirfixture.OD_BASE, warn)
        self.assertIn("uid=bigcn,cn=users,%s: " % dirfixture.OD_BASE, warn)
        self.assertIn("values dropped", warn)
        self.assertTrue(self.imap_login("alice@" + D, U["alice"]["password"]))
        self.assertLess(self.node.rss_kb() - rss0, 200 * 1024,
                        "ternd RSS grew from %d KiB to %d KiB" % (rss0, self.node.rss_kb()))

    def test_03_missing_optional(self):
        self.fx.add_entry("uid=plain,cn=users," + dirfixture.OD_BASE,
                          user_ldif_attrs("plain", "Plain User", 1204))
        u = self.wait_user("plain", timeout=60)
        self.assertEqual(u["type"], "ldap")
        self.assertTrue(self.imap_login("plain@" + D, "Plain-Pass-9"))
        self.assert_healthy()
        self.assertTrue(self.imap_login("alice@" + D, U["alice"]["password"]))

    def test_04_slow_directory(self):
        self.wait_user("alice")
        hole = Blackhole()
        try:
            self.set_od(server="127.0.0.1:%d" % hole.port)
            t0 = time.monotonic()
            ok = self.imap_login("alice@" + D, U["alice"]["password"], timeout=60)
            took = time.monotonic() - t0
            self.assertFalse(ok)
            self.assertLess(took, 12, "login against a hanging directory took %.1f s" % took)
            self.node.wait_for(lambda: "directory unavailable" in self.node.log_text("security"),
                               timeout=10, what="security.log: directory unavailable")
            t0 = time.monotonic()
            self.assertTrue(self.imap_login(self.node.admin_address, ternlib.ADMIN_PASSWORD))
            self.assertLess(time.monotonic() - t0, 12)
            self.assert_healthy()
        finally:
            self.set_od()
            hole.stop()
        self.assertTrue(self.imap_login("alice@" + D, U["alice"]["password"]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
