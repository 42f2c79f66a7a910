#!/usr/bin/python3
"""Bad input to the admin API is refused with a 4xx and {"error": ...}, ternctl exits
non-zero with one line on stderr, and nothing is half-done: the lists are the same before
and after. A second ternd on the same data dir is refused; ternctl against a stopped node
exits 3."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

D = "example.test"


class BadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = ternlib.Node(name="bad1", domain=D)
        try:
            cls.node.start()
            n = cls.node
            n.ctl("user", "add", "bob@" + D, "--password-file", n.userpw)
            n.ctl("domain", "add", "full.test")
            n.ctl("user", "add", "x@full.test", "--password-file", n.userpw)
        except Exception:
            cls.node.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def snapshot(self):
        n = self.node
        return (n.ctl("domain", "list"), n.ctl("user", "list", D), n.ctl("user", "list", "full.test"),
                n.ctl("alias", "list", D), n.ctl("group", "list", D))

    def assert_api_error(self, method, path, body, statuses=(400,)):
        status, answer = self.node.request(method, path, body)
        self.assertIn(status, statuses, "%s %s %r -> %d %r" % (method, path, body, status, answer))
        self.assertIsInstance(answer, dict, "error body is not JSON: %r" % (answer,))
        self.assertIsInstance(answer.get("error"), str)
        self.assertTrue(answer["error"].strip())
        self.assertNotIn("\n", answer["error"])

    def assert_ctl_error(self, *args):
        code, err = self.node.ctl_fail(*args, json_out=False)
        self.assertEqual(code, 1, err)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith("ternctl: "), err)
        return lines[0]

    def test_api_rejects_bad_requests(self):
        before = self.snapshot()
        pw = ternlib.USER_PASSWORD
        long_local = "a" * 65
        cases = [
            ("POST", "/api/v1/users", '{"address": "m@example.test", "password": ', (400,)),
            ("POST", "/api/v1/users", "[1, 2", (400,)),
            ("POST", "/api/v1/users", {"address": "u1@" + D, "password": pw, "colour": "red"}, (400,)),
            ("POST", "/api/v1/users", {"address": long_local + "@" + D, "password": pw}, (400,)),
            ("POST", "/api/v1/users", {"address": "no spaces@" + D, "password": pw}, (400,)),
            ("POST", "/api/v1/users", {"address": "nodomain", "password": pw}, (400, 404)),
            ("POST", "/api/v1/users", {"address": "u2@" + D}, (400,)),
            ("POST", "/api/v1/users", {"address": "u3@" + D, "password": pw, "quota_bytes": "lots"}, (400,)),
            ("POST", "/api/v1/users", {"address": "bob@" + D, "password": pw}, (409,)),
            ("POST", "/api/v1/users", {"address": "u4@unknown.test", "password": pw}, (400, 404)),
            ("POST", "/api/v1/domains", {"name": "bad_domain"}, (400,)),
            ("POST", "/api/v1/domains", {"name": "-x.test"}, (400,)),
            ("POST", "/api/v1/domains", {"name": ("a" * 64) + ".test"}, (400,)),
            ("POST", "/api/v1/domains", {"name": "ok.test", "unknown_field": 1}, (400,)),
            ("POST", "/api/v1/domains", {"name": D}, (409,)),
            ("POST", "/api/v1/aliases", {"alias": "bad alias@" + D, "target": "bob@" + D}, (400,)),
            ("POST", "/api/v1/aliases", {"alias": "a@" + D, "target": "bob@" + D, "x": 1}, (400,)),
            ("POST", "/api/v1/groups", {"address": "g@" + D, "members": "bob"}, (400,)),
            ("POST", "/api/v1/ipgroups", {"name": "Net", "item": "300.1.2.3"}, (400,)),
            ("PATCH", "/api/v1/users/bob@" + D, {"address": "other@" + D}, (400,)),
            ("DELETE", "/api/v1/domains/" + D, None, (409,)),
            ("DELETE", "/api/v1/domains/full.test", None, (409,)),
            ("GET", "/api/v1/users/nobody@" + D, None, (404,)),
        ]
        for method, path, body, statuses in cases:
            with self.subTest(method=method, path=path, body=body):
                self.assert_api_error(method, path, body, statuses)
        self.assertEqual(before, self.snapshot())

    def test_ternctl_errors_are_one_line(self):
        n = self.node
        before = self.snapshot()
        msg = self.assert_ctl_error("user", "add", "bob@" + D, "--password-file", n.userpw)
        self.assertIn("bob@" + D, msg)
        self.assert_ctl_error("user", "add", "bad name@" + D, "--password-file", n.userpw)
        self.assert_ctl_error("user", "add", ("b" * 65) + "@" + D, "--password-file", n.userpw)
        self.assert_ctl_error("domain", "add", "not_a_domain")
        self.assert_ctl_error("domain", "remove", D)
        self.assert_ctl_error("domain", "remove", "full.test")
        self.assert_ctl_error("alias", "add", "a b@" + D, "bob@" + D)
        self.assert_ctl_error("user", "show", "nobody@" + D)
        # Also with --json: nothing on stdout, one line on stderr.
        r = n.run_ctl("user", "add", "bob@" + D, "--password-file", n.userpw)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)
        # Usage errors exit 2 and never reach the node.
        r = n.run_ctl("user", "add", "new@" + D, json_out=False)
        self.assertEqual(r.returncode, 2)
        r = n.run_ctl("user", "add", "new@" + D, "--password-file", n.userpw, "--quota-mb", "-1")
        self.assertEqual(r.returncode, 2)
        r = n.run_ctl("nonsense", json_out=False)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(before, self.snapshot())

    def test_second_ternd_on_same_data_dir(self):
        n = self.node
        other = ternlib.claim_port_base()
        try:
            argv = n.argv()
            argv[argv.index("--port-base") + 1] = str(other)
            r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        finally:
            ternlib.release_port_base(other)
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue((r.stderr + r.stdout).strip(), "no message from the second ternd")
        # The first node still serves.
        self.assertEqual(n.ctl("user", "show", "bob@" + D)["address"], "bob@" + D)

    def test_zz_stopped_node_exits_3(self):
        n = self.node
        self.assertEqual(n.stop(), 0, n.output_tail())
        r = n.run_ctl("domain", "list")
        self.assertEqual(r.returncode, 3)
        self.assertIn("not running", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)
        r = n.run_ctl("status", "--wait", "1", json_out=False)
        self.assertEqual(r.returncode, 3)


if __name__ == "__main__":
    ternlib.main()
