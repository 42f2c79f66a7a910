#!/usr/bin/python3
"""Active Directory's ranged attributes through ternd (issue 5): a group whose member
attribute the directory splits ("member;range=0-99", then 100-*, 200-* ... as AD does
past MaxValRange) is mapped with every member. slapd never splits attributes, so the
directory here is tests/fixtures/fakead.py (250 users, ranges of 100 values); a member
of the big group receives the group's mail, and a mapped user logs in by LDAP bind."""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
import ternlib  # noqa: E402
import fakead  # noqa: E402

D = "example.test"
USERS = 250
RANGE = 100
CONF = {"security": {"lockout_threshold": 0},
        "directory": {"poll_interval": 2, "reconcile_interval": 30, "timeout": 5}}


class DirectoryRange(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="tern-fakead-")
        cls.log = os.path.join(cls.tmp.name, "search.log")
        cls.ad = subprocess.Popen([sys.executable, os.path.join(HERE, "..", "fixtures", "fakead.py"),
                                   "--users", str(USERS), "--range", str(RANGE), "--log", cls.log],
                                  stdout=subprocess.PIPE, text=True)
        cls.port = int(cls.ad.stdout.readline())
        cls.node = ternlib.Node(conf=CONF)
        cls.node.start()
        pw = cls.node.write_file("bind.pw", fakead.SERVICE_PASSWORD + "\n")
        cls.node.ctl("directory", "set", D, "--type", "ad", "--server", "127.0.0.1:%d" % cls.port,
                     "--bind-dn", fakead.SERVICE_DN, "--bind-password-file", pw,
                     "--base", fakead.BASE, "--auth", "bind")

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()
        cls.ad.terminate()
        cls.ad.wait()
        cls.ad.stdout.close()
        cls.tmp.cleanup()

    def group_members(self, name):
        for g in self.node.ctl("group", "list", D):
            if g["name"] == name:
                return self.node.ctl("group", "show", name + "@" + D)["members"]
        return []

    def test_all_members_mapped(self):
        want = sorted("%s@%s" % (fakead.user_name(i), D) for i in range(USERS))
        self.node.wait_for(lambda: len(self.group_members("biggroup")) == USERS, timeout=90,
                           what="biggroup mapped with its %d members" % USERS)
        self.assertEqual(sorted(self.group_members("biggroup")), want)
        self.assertEqual(sorted(self.group_members("smallgroup")), want[:2])
        users = {u["name"]: u for u in self.node.ctl("user", "list", D)}
        self.assertEqual(users["user0249"]["type"], "ldap")
        with open(self.log) as f:
            asked = f.read()
        # the follow-ups were asked of the group's entry, range after range
        for lo in range(RANGE, USERS, RANGE):
            self.assertIn("0 cn=biggroup,cn=Users,dc=big,dc=test member;range=%d-*" % lo, asked)
        # the last member receives the group's mail, and logs in with its directory password
        msg = "From: x@remote.test\r\nTo: biggroup@%s\r\nSubject: ranged\r\n\r\nhello\r\n" % D
        self.node.send_mail("x@remote.test", ["biggroup@" + D], msg)
        self.node.wait_message("user0249@" + D, "ranged", timeout=60)
        imap = self.node.imap("user0249@" + D, fakead.password_of("user0249"))
        imap.logout()


if __name__ == "__main__":
    unittest.main(verbosity=2)
