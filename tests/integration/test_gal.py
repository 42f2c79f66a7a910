#!/usr/bin/python3
"""The global address list of local accounts (guide ch. 8, "Publish in Global Address
List"): `ternctl user add/set --publish-in-gal | --no-publish-in-gal` and the admin API's
"publish_in_gal" field. A local user with a full name that is published is listed by
`ternctl gal list`; one that is not published, or has no full name, is not; a new user is
published by default; the change shows at once."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ternlib  # noqa: E402

D = "example.test"


class GalLocalUsers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = ternlib.Node()
        cls.node.start()
        cls.pw = cls.node.write_file("user.pw", ternlib.USER_PASSWORD + "\n")

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def gal(self):
        return {e["address"]: e for e in self.node.ctl("gal", "list", D)}

    def add(self, name, *extra):
        self.node.ctl("user", "add", name + "@" + D, "--password-file", self.pw, *extra)

    def test_publish_flags(self):
        self.add("pub", "--full-name", "Pat Published", "--publish-in-gal")
        self.add("hidden", "--full-name", "Hal Hidden", "--no-publish-in-gal")
        self.add("plain", "--full-name", "Dee Default")
        self.add("noname", "--publish-in-gal")
        self.assertTrue(self.node.ctl("user", "show", "pub@" + D)["publish_in_gal"])
        self.assertFalse(self.node.ctl("user", "show", "hidden@" + D)["publish_in_gal"])
        self.assertTrue(self.node.ctl("user", "show", "plain@" + D)["publish_in_gal"])
        gal = self.gal()
        self.assertEqual(gal["pub@" + D]["full_name"], "Pat Published")
        self.assertEqual(gal["pub@" + D]["kind"], "user")
        self.assertIn("plain@" + D, gal)                  # published by default
        self.assertNotIn("hidden@" + D, gal)
        self.assertNotIn("noname@" + D, gal)              # no full name: never listed

        # set: in and out at once
        self.node.ctl("user", "set", "pub@" + D, "--no-publish-in-gal")
        self.node.ctl("user", "set", "hidden@" + D, "--publish-in-gal")
        gal = self.gal()
        self.assertNotIn("pub@" + D, gal)
        self.assertEqual(gal["hidden@" + D]["full_name"], "Hal Hidden")
        # another change leaves the flag alone
        self.node.ctl("user", "set", "hidden@" + D, "--description", "still listed")
        self.assertIn("hidden@" + D, self.gal())
        self.assertIn("PublishInGAL='0'", self.node.log_text("config"))

        # the admin API field, PATCH and POST
        st, body = self.node.request("PATCH", "/api/v1/users/plain@" + D, {"publish_in_gal": False})
        self.assertEqual(st, 200, body)
        self.assertFalse(body["publish_in_gal"])
        self.assertNotIn("plain@" + D, self.gal())
        st, body = self.node.request("POST", "/api/v1/users",
                                     {"address": "api@" + D, "password": ternlib.USER_PASSWORD,
                                      "full_name": "Ada Api", "publish_in_gal": False})
        self.assertEqual(st, 201, body)
        self.assertFalse(body["publish_in_gal"])
        self.assertNotIn("api@" + D, self.gal())
        st, body = self.node.request("GET", "/api/v1/users/api@" + D)
        self.assertEqual(st, 200, body)
        self.assertFalse(body["publish_in_gal"])

    def test_flags_exclude_each_other(self):
        r = self.node.run_ctl("user", "set", "admin@" + D, "--publish-in-gal", "--no-publish-in-gal")
        self.assertEqual(r.returncode, 2)
        self.assertIn("exclude each other", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
