#!/usr/bin/python3
"""Proxied IMAP and POP3 logins in a distributed domain (issue 6, DESIGN.md §5): two
nodes, "alpha" (master) and "beta" (joined with `ternctl cluster join`), and a user
homed on beta. Logging in at alpha, the client reaches beta's mailbox: IMAP LOGIN and
AUTHENTICATE PLAIN answer with beta's capabilities, SELECT/FETCH see what was delivered
at beta, IDLE reports a new delivery through the splice, a large FETCH comes through
whole; POP3 USER/PASS and AUTH PLAIN see the same maildrop. alpha logs "proxied to
beta"; beta logs the client's own address (IMAP ID x-originating-ip), not alpha's. A
wrong password is refused at alpha (never reaching beta) and counts toward alpha's
lockout. A home node that does not answer (stopped with SIGSTOP) makes the login fail
with NO [UNAVAILABLE] / -ERR [SYS/TEMP] within [cluster] request_timeout, and warning.log
says why; once beta answers again logins work again."""
import base64
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

D = "example.test"
PW = ternlib.USER_PASSWORD
CLIENT = "127.0.0.3"          # the client's own address, distinct from the nodes' 127.0.0.1
TIMEOUT = 3                   # [cluster] request_timeout


def conf():
    return {"cluster": {"address": "127.0.0.1", "request_timeout": TIMEOUT,
                        "heartbeat_interval": 1, "unavailable_after": 3},
            "security": {"lockout_threshold": 3, "lockout_seconds": 600},
            "smtpd": {"max_msgs_per_hour_per_ip": 0, "max_unknown_rcpts": 0}}


class ClusterProxyTest(ternlib.ClusterPairTestCase):
    DOMAIN = D
    CONF = conf()

    @classmethod
    def set_up_nodes(cls):
        cls.user = "carol@" + D
        cls.alpha.add_user(cls.user, "--home", "beta")
        ternlib.wait_homes({cls.user: "beta"}, cls.beta, timeout=20, what="carol replicated to beta")
        cls.first = cls.beta.deliver(cls.user, ternlib.make_message("proxied-one", to=cls.user))

    def raw(self, node=None):
        r = (node or self.alpha).raw_imap(source=CLIENT)
        self.addCleanup(r.close)
        return r

    def test_imap_login_select_fetch(self):
        r = self.raw()
        status, untagged, tagged = r.command("LOGIN %s %s" % (self.user, PW))
        self.assertEqual(status, "OK", tagged)
        # beta's post-login capabilities (alpha's own would be the same list: check it is one)
        self.assertIn(b"[CAPABILITY IMAP4rev1", tagged)
        self.assertIn(b"UIDPLUS", tagged)
        untagged, tagged = r.select("INBOX")
        self.assertTrue(any(u.endswith(b" EXISTS") and int(u.split()[1]) >= 1 for u in untagged), untagged)
        got = r.ok("UID FETCH %d (BODY.PEEK[HEADER.FIELDS (SUBJECT)])" % self.first["uid"])
        self.assertTrue(any(b"proxied-one" in u for u in got), got)
        status, untagged, tagged = r.command("LOGOUT")
        self.assertEqual(status, "OK")
        self.assertTrue(any(u.startswith(b"* BYE") for u in untagged))
        self.assertTrue(r.closed_by_peer(10))
        sec = self.alpha.log_text("security")
        self.assertIn("IMAP login of %s from %s proxied to beta" % (self.user, CLIENT), sec)
        # beta logs the client's address given by alpha's ID, not alpha's 127.0.0.1
        self.beta.wait_for(lambda: ("IMAP login of %s from %s" % (self.user, CLIENT)) in
                           self.beta.log_text("security"), 10, "beta's log line")
        self.assertIn("by node alpha", self.beta.log_text("security"))

    def test_imap_authenticate_plain(self):
        r = self.raw()
        ir = base64.b64encode(b"\0" + self.user.encode() + b"\0" + PW.encode()).decode()
        status, untagged, tagged = r.command("AUTHENTICATE PLAIN " + ir)
        self.assertEqual(status, "OK", tagged)
        untagged = r.ok("STATUS INBOX (MESSAGES)")
        self.assertTrue(any(b"MESSAGES" in u for u in untagged), untagged)

    def test_imap_idle_through_proxy(self):
        r = self.raw()
        r.login(self.user)
        untagged, _ = r.select("INBOX")
        exists = [int(u.split()[1]) for u in untagged if u.endswith(b" EXISTS")][0]
        r.send(b"i1 IDLE\r\n")
        self.assertTrue(r.response().startswith(b"+"))
        self.beta.deliver(self.user, ternlib.make_message("proxied-idle", to=self.user))
        deadline = time.time() + 20
        seen = False
        while time.time() < deadline and not seen:
            line = r.response()
            seen = line.endswith(b" EXISTS") and int(line.split()[1]) > exists
        self.assertTrue(seen, "no EXISTS through the proxy during IDLE")
        r.send(b"DONE\r\n")
        status, _, tagged = r.read_tagged("i1")
        self.assertEqual(status, "OK", tagged)

    def test_large_fetch_whole(self):
        body = ("x" * 76 + "\r\n") * 40000           # about 3 MiB: back-pressure in the splice
        entry = self.beta.deliver(self.user, ternlib.make_message("proxied-big", to=self.user, body=body))
        stored = self.beta.message_bytes(self.user, entry["uid"])
        r = self.raw()
        r.login(self.user)
        r.select("INBOX")
        got = r.ok("UID FETCH %d (BODY.PEEK[])" % entry["uid"])
        literal = [u for u in got if b"BODY[]" in u][0]
        head, data = literal.split(b"}\r\n", 1)
        self.assertEqual(int(head.rsplit(b"{", 1)[1]), len(stored))
        self.assertEqual(data[:len(stored)], stored)

    def test_wrong_password_stays_at_front(self):
        r = self.raw()
        status, _, tagged = r.command("LOGIN %s %s" % (self.user, "wrong-password-9"))
        self.assertEqual(status, "NO")
        self.assertIn(b"AUTHENTICATIONFAILED", tagged)
        self.assertIn("Failed IMAP login from %s, bad credentials" % CLIENT, self.alpha.log_text("security"))

    def test_pop3_user_pass_and_auth(self):
        c = self.alpha.pop3(self.user, source=CLIENT)
        count, size = c.stat()
        self.assertGreaterEqual(count, 1)
        lines = c.retr(1)[1]
        self.assertTrue(any(b"Subject:" in l for l in lines))
        self.assertTrue(c.quit().startswith(b"+OK"))
        self.assertIn("POP3 login of %s from %s" % (self.user, CLIENT), self.alpha.log_text("security"))
        self.assertIn("proxied to beta", self.alpha.log_text("security"))
        c = self.alpha.pop3(source=CLIENT)
        ir = base64.b64encode(b"\0" + self.user.encode() + b"\0" + PW.encode()).decode()
        resp = c._shortcmd("AUTH PLAIN " + ir)
        self.assertTrue(resp.startswith(b"+OK"), resp)
        self.assertEqual(c.stat()[0], count)
        c.quit()

    def test_home_unreachable_then_back(self):
        os.kill(self.beta.proc.pid, signal.SIGSTOP)
        try:
            r = self.raw()
            t0 = time.time()
            status, _, tagged = r.command("LOGIN %s %s" % (self.user, PW))
            spent = time.time() - t0
            self.assertEqual(status, "NO", tagged)
            self.assertIn(b"[UNAVAILABLE] home server unreachable", tagged)
            self.assertLess(spent, TIMEOUT + 5)
            self.assertGreater(spent, TIMEOUT - 1)
            # the session goes on: the client may try again or log out
            status, _, _ = r.command("NOOP")
            self.assertEqual(status, "OK")
            c = self.alpha.pop3(source=CLIENT)
            c.user(self.user)
            with self.assertRaises(Exception) as ctx:
                c.pass_(PW)
            self.assertIn("SYS/TEMP", str(ctx.exception))
            c.close()
        finally:
            os.kill(self.beta.proc.pid, signal.SIGCONT)
        warn = self.alpha.log_text("warning")
        self.assertIn("IMAP login of %s from %s: home node beta unreachable" % (self.user, CLIENT), warn)
        self.assertIn("timed out", warn)
        r = self.raw()
        status, _, tagged = r.command("LOGIN %s %s" % (self.user, PW))
        self.assertEqual(status, "OK", tagged)


if __name__ == "__main__":
    ternlib.main()
