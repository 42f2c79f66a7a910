#!/usr/bin/python3
"""Remote administration over the HTTPS admin port: ternctl --node with Basic credentials
and a pinned certificate works; a wrong pin fails before any credential is sent; a wrong
password fails and is logged in security.log; a read-only admin can list but not add."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

D = "remote.test"


class RemoteAdminTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = ternlib.Node(name="rem1", domain=D)
        try:
            cls.node.start()
            cls.fp = ternlib.fingerprint_of(cls.node)
            cls.node.ctl("user", "add", "ro@" + D, "--password-file", cls.node.userpw, "--rights", "read-only")
            cls.node.ctl("user", "add", "plain@" + D, "--password-file", cls.node.userpw)
        except Exception:
            cls.node.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def remote(self, user, pwfile, fp, *args, json_out=True):
        return self.node.run_ctl(*args, json_out=json_out, remote=(user, pwfile, fp))

    def test_pinned_admin_works(self):
        n = self.node
        r = self.remote(n.admin_address, n.pwfile, self.fp, "domain", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        import json
        doms = json.loads(r.stdout)
        self.assertEqual(doms[0]["name"], D)
        # Colons and upper case are accepted in the pin.
        fp2 = ":".join(self.fp[i:i + 2] for i in range(0, 64, 2)).upper()
        r = self.remote(n.admin_address, n.pwfile, fp2, "user", "add", "viaremote@" + D,
                        "--password-file", n.userpw)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(n.ctl("user", "show", "viaremote@" + D)["address"], "viaremote@" + D)
        n.wait_for(lambda: "session opened for host" in n.log_text("config"), what="config.log session line")

    def test_wrong_fingerprint_fails(self):
        n = self.node
        bad = ("0" if self.fp[0] != "0" else "1") + self.fp[1:]
        before = n.log_text("security")
        r = self.remote(n.admin_address, n.pwfile, bad, "domain", "list")
        self.assertEqual(r.returncode, 1)
        self.assertIn("fingerprint", r.stderr)
        self.assertEqual(r.stdout, "")
        # The credentials never reached the node: no failed login was logged.
        self.assertEqual(before, n.log_text("security"))

    def test_no_pin_self_signed_is_refused(self):
        n = self.node
        r = self.remote(n.admin_address, n.pwfile, None, "domain", "list")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("certificate", r.stderr)

    def test_wrong_password_is_logged(self):
        n = self.node
        bad = n.write_file("bad.pw", "not-the-password\n")
        before = len(n.log_text("security").splitlines())
        r = self.remote(n.admin_address, bad, self.fp, "domain", "list")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        n.wait_for(lambda: len(n.log_text("security").splitlines()) > before, what="a security.log line")
        new = n.log_text("security").splitlines()[before:]
        self.assertTrue(any("127.0.0.1" in line or "admin" in line for line in new), new)
        self.assertNotIn("not-the-password", n.log_text("security"))

    def test_read_only_admin(self):
        n = self.node
        r = self.remote("ro@" + D, n.userpw, self.fp, "user", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.remote("ro@" + D, n.userpw, self.fp, "user", "add", "nope@" + D, "--password-file", n.userpw)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertNotEqual(n.run_ctl("user", "show", "nope@" + D).returncode, 0)

    def test_user_without_rights_refused(self):
        n = self.node
        r = self.remote("plain@" + D, n.userpw, self.fp, "user", "list")
        self.assertEqual(r.returncode, 1)


if __name__ == "__main__":
    ternlib.main()
