#!/usr/bin/python3
"""`ternctl alias check` on the guide's examples (ch. 12.3): wildcards '*' and '?', the
catch-all, one alias with several targets, "jsmith -> info" + "jsmith -> jsmith", the
loop jwayne -> wayne -> john.wayne -> wayne (delivered to john.wayne), groups expanded to
their members, and user forwarding with and without a kept copy."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

D = "al.test"
W = "wild.test"


class AliasCheckTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        n = cls.node = ternlib.Node(name="al1", domain=D)
        try:
            n.start()
            n.ctl("domain", "add", W)
            for u in ("john.wayne", "jsmith", "info", "bob", "carol", "smsuser"):
                n.ctl("user", "add", "%s@%s" % (u, D), "--password-file", n.userpw)
            n.ctl("user", "add", "fwd@" + D, "--password-file", n.userpw,
                  "--forward", "ext@remote.test", "--keep-copy")
            n.ctl("user", "add", "fwd2@" + D, "--password-file", n.userpw, "--forward", "ext2@remote.test")
            # The guide (ch. 9): a group gets no address automatically; "sales" is given.
            n.ctl("group", "add", "sales@" + D, "--address", "sales",
                  "--member", "bob@" + D, "--member", "carol@" + D)
            n.ctl("group", "add", "quiet@" + D, "--member", "bob@" + D)
            aliases = [
                ("jwayne", "wayne"), ("wayne", "john.wayne"), ("john.wayne", "wayne"),
                ("jsmith", "info"), ("jsmith", "jsmith"),
                ("team", "bob@" + D), ("team", "carol@" + D),
                ("*sms*", "carol@" + D), ("?ime", "bob@" + D),
                ("salesalias", "sales@" + D),
            ]
            for a, t in aliases:
                n.ctl("alias", "add", "%s@%s" % (a, D), t if "@" in t else "%s@%s" % (t, D))
            n.ctl("alias", "add", "*@" + W, n.admin_address)
        except Exception:
            n.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def check(self, address):
        res = self.node.ctl("alias", "check", address)
        self.assertIsInstance(res.get("trace"), list)
        return sorted((r["address"], r["kind"]) for r in res["recipients"])

    def local(self, *names):
        return sorted(("%s@%s" % (n, D), "local") for n in names)

    def test_loop_delivers_to_last_unflagged(self):
        self.assertEqual(self.check("jwayne@" + D), self.local("john.wayne"))

    def test_alias_and_itself_keeps_copy(self):
        self.assertEqual(self.check("jsmith@" + D), self.local("info", "jsmith"))

    def test_several_targets(self):
        self.assertEqual(self.check("team@" + D), self.local("bob", "carol"))

    def test_wildcards(self):
        self.assertEqual(self.check("mysmsgate@" + D), self.local("carol"))
        self.assertEqual(self.check("time@" + D), self.local("bob"))
        self.assertEqual(self.check("dime@" + D), self.local("bob"))
        # '?' is exactly one character.
        self.assertEqual(self.check("slime@" + D), [("slime@" + D, "unknown")])
        # A wildcard never captures an existing mailbox.
        self.assertEqual(self.check("smsuser@" + D), self.local("smsuser"))

    def test_catch_all(self):
        self.assertEqual(self.check("anything@" + W), [(self.node.admin_address, "local")])

    def test_groups_expand(self):
        self.assertEqual(self.check("sales@" + D), self.local("bob", "carol"))
        self.assertEqual(self.check("salesalias@" + D), self.local("bob", "carol"))
        # A group without addresses has none: its name alone receives nothing.
        self.assertEqual(self.check("quiet@" + D), [("quiet@" + D, "unknown")])

    def test_forwarding(self):
        self.assertEqual(self.check("fwd@" + D), sorted([("fwd@" + D, "local"), ("ext@remote.test", "remote")]))
        self.assertEqual(self.check("fwd2@" + D), [("ext2@remote.test", "remote")])

    def test_unknown_and_remote(self):
        self.assertEqual(self.check("nobody@" + D), [("nobody@" + D, "unknown")])
        self.assertEqual(self.check("someone@elsewhere.test"), [("someone@elsewhere.test", "remote")])

    def test_human_output(self):
        r = self.node.run_ctl("alias", "check", "team@" + D, json_out=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("bob@" + D, r.stdout)
        self.assertIn("carol@" + D, r.stdout)


if __name__ == "__main__":
    ternlib.main()
