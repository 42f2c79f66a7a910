#!/usr/bin/python3
"""Logs: a change is one config.log line in the guide's form, never with the password;
SIGHUP reopens the files (logrotate style); an unknown tern.conf key is reported in
warning.log; `ternctl logs NAME --lines N` shows the tail."""
import os
import re
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

D = "logs.test"
CONF = """[server]
no_such_setting = 42
commit_threads = 2
"""
STAMP = r"^\[\d\d/[A-Z][a-z][a-z]/\d{4} \d\d:\d\d:\d\d\] "


class LogsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = ternlib.Node(name="log1", domain=D, config_text=CONF)
        try:
            cls.node.start()
        except Exception:
            cls.node.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def test_1_user_add_in_config_log(self):
        n = self.node
        n.ctl("user", "add", "bob@" + D, "--password-file", n.userpw, "--quota-mb", "2")
        n.wait_for(lambda: "Name='bob'" in n.log_text("config"), what="the config.log line")
        lines = [l for l in n.log_text("config").splitlines() if "Name='bob'" in l]
        self.assertEqual(len(lines), 1, lines)
        line = lines[0]
        self.assertRegex(line, STAMP)
        self.assertIn("local - insert User set Name='bob', Domain='%s'" % D, line)
        self.assertIn("Qstorage='2097152'", line)
        self.assertIn("Password=********", line)
        for name in ("config", "security", "warning", "error", "debug", "mail", "operations"):
            self.assertNotIn(ternlib.USER_PASSWORD, n.log_text(name), name + ".log holds the password")
        n.ctl("user", "remove", "bob@" + D)
        n.wait_for(lambda: re.search(r"local - delete User where Name='bob', Domain='%s'" % re.escape(D),
                                     n.log_text("config")), what="the delete line")

    def test_2_sighup_reopens(self):
        n = self.node
        logs = os.path.join(n.data, "logs")
        os.rename(os.path.join(logs, "config.log"), os.path.join(logs, "config.log.old"))
        n.signal(signal.SIGHUP)
        n.wait_for(lambda: os.path.exists(os.path.join(logs, "config.log")), what="a new config.log")
        n.ctl("user", "add", "carol@" + D, "--password-file", n.userpw)
        n.wait_for(lambda: "Name='carol'" in n.log_text("config"), what="carol in the new config.log")
        with open(os.path.join(logs, "config.log.old")) as f:
            self.assertNotIn("Name='carol'", f.read())
        # The node still runs after SIGHUP.
        self.assertEqual(n.ctl("user", "show", "carol@" + D)["name"], "carol")

    def test_3_unknown_conf_key_warned(self):
        n = self.node
        n.wait_for(lambda: "no_such_setting" in n.log_text("warning"), what="the warning.log line")
        line = [l for l in n.log_text("warning").splitlines() if "no_such_setting" in l][0]
        self.assertRegex(line, STAMP)

    def test_4_ternctl_logs(self):
        n = self.node
        r = n.run_ctl("logs", "config", "--lines", "2", json_out=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLessEqual(len(r.stdout.strip().splitlines()), 2)
        self.assertIn("insert User", n.log_text("config"))
        lines = n.ctl("logs", "config", "--lines", "50")
        self.assertIsInstance(lines, list)
        self.assertTrue(any("Name='carol'" in l for l in lines), lines)
        code, err = n.ctl_fail("logs", "no-such-log")
        self.assertEqual(code, 1)


if __name__ == "__main__":
    ternlib.main()
