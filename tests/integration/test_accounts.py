#!/usr/bin/python3
"""Accounts through ternctl: domains, users, groups, aliases and IP groups are created,
listed and shown with the fields an administrator set, and survive a restart; the first
start made the primary domain and the admin, a second start ignores --init-*."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

MIB = 1024 * 1024


class AccountsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = ternlib.Node(name="acc1", domain="example.test")
        try:
            cls.node.start()
        except Exception:
            cls.node.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def populate(self):
        n = self.node
        n.ctl("domain", "add", "branch.test", "--description", "Branch office", "--alias", "branch-alias.test",
              "--alias", "old-branch.test", "--user-limit", "50")
        n.ctl("user", "add", "bob@example.test", "--password-file", n.userpw, "--full-name", "Bob Builder",
              "--description", "Sales", "--quota-mb", "2", "--quota-items", "500",
              "--forward", "bob.home@elsewhere.test", "--keep-copy", "--address", "robert", "--address", "bb")
        n.ctl("user", "add", "carol@example.test", "--password-file", n.userpw, "--full-name", "Carol C")
        n.ctl("user", "add", "dave@branch.test", "--password-file", n.userpw, "--rights", "read-only")
        n.ctl("group", "add", "sales@example.test", "--description", "Sales team",
              "--member", "bob@example.test", "--member", "carol@example.test")
        n.ctl("alias", "add", "team@example.test", "bob@example.test", "--description", "the team")
        n.ctl("alias", "add", "team@example.test", "carol@example.test")
        n.ctl("alias", "add", "*sms*@example.test", "carol@example.test")
        n.ctl("ipgroup", "add", "Office", "192.168.1.0/24", "--description", "LAN")
        n.ctl("ipgroup", "add", "Office", "10.0.0.1-10.0.0.9")

    def check_state(self):
        n = self.node
        doms = n.ctl("domain", "list")
        self.assertEqual(doms[0]["name"], "example.test")
        self.assertTrue(doms[0]["primary"])
        branch = ternlib.by_key(doms, "name")["branch.test"]
        self.assertFalse(branch["primary"])
        self.assertEqual(branch["description"], "Branch office")
        self.assertEqual(sorted(branch["aliases"]), ["branch-alias.test", "old-branch.test"])
        self.assertEqual(branch["user_limit"], 50)
        self.assertEqual(n.ctl("domain", "show", "branch.test")["name"], "branch.test")

        bob = n.ctl("user", "show", "bob@example.test")
        want = {"address": "bob@example.test", "name": "bob", "domain": "example.test", "type": "local",
                "enabled": True, "full_name": "Bob Builder", "description": "Sales", "keep_copy": True,
                "forward": ["bob.home@elsewhere.test"]}
        for k, v in want.items():
            self.assertEqual(bob.get(k), v, k)
        self.assertEqual(sorted(bob["addresses"]), ["bb", "robert"])
        self.assertEqual(bob["quota"], {"bytes": 2 * MIB, "items": 500})
        self.assertIn("home", bob)
        self.assertNotIn("password", bob)
        self.assertEqual(len(bob["id"]), 36)

        users = n.ctl("user", "list")
        names = [u["address"] for u in users]
        self.assertIn("admin@example.test", names)
        self.assertIn("bob@example.test", names)
        self.assertIn("carol@example.test", names)
        self.assertNotIn("dave@branch.test", names)
        self.assertEqual([u["name"] for u in users], sorted(u["name"] for u in users))
        dave = n.ctl("user", "list", "branch.test")
        self.assertEqual([u["address"] for u in dave], ["dave@branch.test"])
        self.assertEqual(dave[0]["rights"], "read-only")

        grp = n.ctl("group", "show", "sales@example.test")
        self.assertEqual(sorted(grp["members"]), ["bob@example.test", "carol@example.test"])
        self.assertEqual(grp["description"], "Sales team")
        self.assertIn("sales@example.test", [g["address"] for g in n.ctl("group", "list", "example.test")])

        aliases = n.ctl("alias", "list", "example.test")
        team = [a for a in aliases if a["alias"] in ("team", "team@example.test")]
        self.assertEqual(len(team), 1)
        self.assertEqual(sorted(team[0]["targets"]), ["bob@example.test", "carol@example.test"])
        self.assertTrue(any(a["alias"] in ("*sms*", "*sms*@example.test") for a in aliases))

        groups = ternlib.by_key(n.ctl("ipgroup", "list"), "name")
        self.assertIn("Office", groups)
        values = sorted(i["value"] for i in groups["Office"]["items"])
        self.assertEqual(values, ["10.0.0.1-10.0.0.9", "192.168.1.0/24"])

    def test_1_first_start_made_domain_and_admin(self):
        admin = self.node.ctl("user", "show", "admin@example.test")
        self.assertEqual(admin["rights"], "read-write")
        self.assertEqual([d["name"] for d in self.node.ctl("domain", "list") if d["primary"]], ["example.test"])
        node = self.node.ctl("node", "show")
        self.assertEqual(node["name"], "acc1")
        self.assertEqual(len(node["fingerprint"]), 64)

    def test_2_create_list_restart(self):
        n = self.node
        self.populate()
        self.check_state()
        # user set changes only what is given.
        n.ctl("user", "set", "carol@example.test", "--disabled", "--quota-mb", "5")
        carol = n.ctl("user", "show", "carol@example.test")
        self.assertFalse(carol["enabled"])
        self.assertEqual(carol["quota"]["bytes"], 5 * MIB)
        self.assertEqual(carol["full_name"], "Carol C")
        n.ctl("user", "set", "carol@example.test", "--enabled")
        self.assertTrue(n.ctl("user", "show", "carol@example.test")["enabled"])
        n.ctl("group", "members", "sales@example.test", "--remove", "carol@example.test")
        self.assertEqual(n.ctl("group", "show", "sales@example.test")["members"], ["bob@example.test"])
        n.ctl("group", "members", "sales@example.test", "--add", "carol@example.test")

        # Restart with other --init-* values: they are ignored on an existing data dir.
        self.assertEqual(n.stop(), 0, n.output_tail())
        n.domain = "ignored.test"
        n.admin = "root"
        n.start()
        n.domain, n.admin = "example.test", "admin"
        self.check_state()
        names = [d["name"] for d in n.ctl("domain", "list")]
        self.assertNotIn("ignored.test", names)
        self.assertEqual(n.run_ctl("user", "show", "root@example.test").returncode, 1)

    def test_3_human_output(self):
        r = self.node.run_ctl("domain", "list", json_out=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("example.test", r.stdout)
        self.assertTrue(r.stdout.startswith("NAME"))
        r = self.node.run_ctl("user", "show", "admin@example.test", json_out=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("address: admin@example.test", r.stdout)

    def test_4_remove(self):
        n = self.node
        n.ctl("user", "add", "temp@example.test", "--password-file", n.userpw)
        n.ctl("alias", "add", "tmpalias@example.test", "temp@example.test")
        n.ctl("alias", "remove", "tmpalias@example.test", "temp@example.test")
        self.assertFalse(any(a["alias"] in ("tmpalias", "tmpalias@example.test")
                             for a in n.ctl("alias", "list", "example.test")))
        n.ctl("user", "remove", "temp@example.test")
        code, err = n.ctl_fail("user", "show", "temp@example.test")
        self.assertEqual(code, 1)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        n.ctl("domain", "add", "gone.test")
        n.ctl("domain", "remove", "gone.test")
        self.assertNotIn("gone.test", [d["name"] for d in n.ctl("domain", "list")])


if __name__ == "__main__":
    ternlib.main()
