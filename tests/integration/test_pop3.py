#!/usr/bin/python3
"""POP3 (issue 4, RFC 1939, RFC 2449, RFC 2595, RFC 5034) with poplib: CAPA, USER/PASS
good and bad, APOP neither offered (no timestamp in the greeting) nor accepted, STAT,
LIST, UIDL (stable across sessions), TOP, RETR byte-exact against the stored message (dot
stuffing included), DELE+RSET, DELE+QUIT then gone (also for IMAP), no deletion when the
client vanishes without QUIT, INBOX only, STLS on 110 and POP3S on 995, AUTH PLAIN (with
an initial response and without), the POP3-before-SMTP window ([smtpd] relay_pop3 = yes:
relaying from 127.0.0.2 refused before a POP3 login from 127.0.0.2, allowed after), and
the lockout after lockout_threshold failures with `ternctl user unlock`."""
import base64
import os
import poplib
import re
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

D = "example.test"
PW = ternlib.USER_PASSWORD
BAD = "wrong-password-9"
NET = "127.0.0.2"
DOT_BODY = "First line.\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast line\r\n"


def message_lines(raw):
    return raw.split(b"\r\n")[:-1] if raw.endswith(b"\r\n") else raw.split(b"\r\n")


class Pop3Test(ternlib.NodeTestCase):
    NODE = "pop3a"
    DOMAIN = D
    CONF = {"security": {"lockout_threshold": 3, "lockout_seconds": 600},
            "smtpd": {"max_msgs_per_hour_per_ip": 0, "max_unknown_rcpts": 0}}

    def pop(self, user=None, **kw):
        c = self.node.pop3(user, **kw)

        def bye():
            try:
                c.close()
            except Exception:
                pass
        self.addCleanup(bye)
        return c

    def filled(self, n=3):
        """A fresh user with n delivered messages (the second with dot-stuffed lines);
        returns (address, [admin API entries in delivery order])."""
        user = ternlib.fresh_user(self.node, "p")
        entries = []
        for i in range(n):
            body = DOT_BODY if i == 1 else "Body of message %d.\r\nLine two.\r\nLine three.\r\n" % i
            entries.append(self.node.deliver(user, ternlib.make_message("pop-%d" % i, to=user, body=body)))
        return user, entries

    def test_capa_and_greeting(self):
        c = self.pop()
        welcome = c.getwelcome()
        self.assertTrue(welcome.startswith(b"+OK"), welcome)
        self.assertIsNone(re.search(rb"<[^>]*@[^>]*>", welcome), "APOP timestamp in the greeting: %r" % welcome)
        caps = c.capa()
        for k in ("USER", "UIDL", "TOP", "STLS", "SASL"):
            self.assertIn(k, caps, caps)
        self.assertIn("PLAIN", caps["SASL"])
        self.assertNotIn("APOP", caps)
        c2 = self.pop(tls=True)
        caps = c2.capa()
        self.assertNotIn("STLS", caps, "STLS on the implicit-TLS port")
        self.assertIn("UIDL", caps)

    def test_apop_refused(self):
        user, _ = self.filled(0)
        c = self.pop()
        with self.assertRaises(poplib.error_proto):
            c._shortcmd("APOP %s 0123456789abcdef0123456789abcdef" % user)
        c.user(user)
        self.assertTrue(c.pass_(PW).startswith(b"+OK"))

    def test_user_pass(self):
        user, _ = self.filled(0)
        c = self.pop()
        c.user(user)
        self.assertTrue(c.pass_(PW).startswith(b"+OK"))
        c.quit()
        c = self.pop()
        c.user(user)
        with self.assertRaises(poplib.error_proto):
            c.pass_(BAD)
        with self.assertRaises(poplib.error_proto):
            c.stat()                       # still in AUTHORIZATION
        c = self.pop()
        with self.assertRaises(poplib.error_proto):
            c.pass_(PW)                    # PASS without USER

    def test_stat_list_uidl_top_retr(self):
        user, entries = self.filled(3)
        raws = [self.node.message_bytes(user, e["uid"]) for e in entries]
        c = self.pop(user)
        count, size = c.stat()
        self.assertEqual(count, 3)
        self.assertEqual(size, sum(len(r) for r in raws))
        resp, listing, _ = c.list()
        sizes = {int(a): int(b) for a, b in (x.split() for x in listing)}
        self.assertEqual(sizes, {i + 1: len(r) for i, r in enumerate(raws)})
        self.assertEqual(c.list(2).split()[1:], [b"2", str(len(raws[1])).encode()])
        resp, uidl, _ = c.uidl()
        uids = dict(x.split() for x in uidl)
        self.assertEqual(len(set(uids.values())), 3)
        for u in uids.values():
            self.assertTrue(1 <= len(u) <= 70 and all(0x21 <= ch <= 0x7e for ch in u), u)
        for i, raw in enumerate(raws):
            resp, lines, octets = c.retr(i + 1)
            self.assertEqual(lines, message_lines(raw), "RETR %d is not the stored message" % (i + 1))
            self.assertEqual(b"\r\n".join(lines) + b"\r\n", raw)
        # TOP n 0: the header and the blank line; TOP n 2: plus two body lines.
        header, body = raws[1].split(b"\r\n\r\n", 1)
        resp, lines, _ = c.top(2, 0)
        self.assertEqual(lines, header.split(b"\r\n") + [b""])
        resp, lines, _ = c.top(2, 2)
        self.assertEqual(lines, header.split(b"\r\n") + [b""] + body.split(b"\r\n")[:2])
        with self.assertRaises(poplib.error_proto):
            c.retr(4)
        with self.assertRaises(poplib.error_proto):
            c.top(0, 1)
        c.quit()
        # UIDL is stable across sessions.
        c = self.pop(user)
        self.assertEqual(dict(x.split() for x in c.uidl()[1]), uids)
        self.assertEqual(c.uidl(3).split()[2], uids[b"3"])

    def test_dele_rset(self):
        user, entries = self.filled(3)
        c = self.pop(user)
        c.dele(1)
        self.assertEqual(c.stat()[0], 2)
        with self.assertRaises(poplib.error_proto):
            c.retr(1)                      # marked deleted
        with self.assertRaises(poplib.error_proto):
            c.dele(1)
        self.assertEqual(len(c.list()[1]), 2)
        c.rset()
        self.assertEqual(c.stat()[0], 3)
        c.quit()
        c = self.pop(user)
        self.assertEqual(c.stat()[0], 3)

    def test_dele_quit_gone_also_for_imap(self):
        user, entries = self.filled(3)
        c = self.pop(user)
        gone_uidl = c.uidl(2).split()[2]
        c.dele(2)
        c.quit()
        c = self.pop(user)
        self.assertEqual(c.stat()[0], 2)
        self.assertNotIn(gone_uidl, [x.split()[1] for x in c.uidl()[1]])
        c.quit()
        r = self.raw(user)
        untagged, _ = r.select("INBOX")
        self.assertIn(b"* 2 EXISTS", untagged)
        s = [u for u in r.ok('SEARCH SUBJECT "pop-1"') if u.startswith(b"* SEARCH")]
        self.assertEqual(s, [b"* SEARCH"])
        self.assertEqual(len(self.node.messages(user)), 2)

    def test_no_deletion_without_quit(self):
        user, _ = self.filled(2)
        c = self.node.pop3(user)
        c.dele(1)
        c.close()                           # vanish without QUIT
        deadline = time.time() + 10
        while True:                         # the server notices the close and drops its lock
            try:
                c = self.pop(user)
                break
            except poplib.error_proto as e:
                if b"IN-USE" not in str(e).encode() or time.time() > deadline:
                    raise
                time.sleep(0.2)
        self.assertEqual(c.stat()[0], 2)

    def test_inbox_only(self):
        user, _ = self.filled(1)
        r = self.raw(user)
        st, _, t = r.append("Drafts", ternlib.make_message("draft-not-in-pop"))
        self.assertEqual(st, "OK", t)
        c = self.pop(user)
        self.assertEqual(c.stat()[0], 1)

    def test_imap_flags_after_pop(self):
        """A message read by POP3 and left on the server is still there for IMAP."""
        user, _ = self.filled(1)
        c = self.pop(user)
        c.retr(1)
        c.quit()
        r = self.raw(user)
        untagged, _ = r.select("INBOX")
        self.assertIn(b"* 1 EXISTS", untagged)

    def test_stls_and_pop3s(self):
        user, entries = self.filled(1)
        raw = self.node.message_bytes(user, entries[0]["uid"])
        c = self.pop(stls=True)
        self.assertNotIn("STLS", c.capa())
        c.user(user)
        c.pass_(PW)
        self.assertEqual(b"\r\n".join(c.retr(1)[1]) + b"\r\n", raw)
        c.quit()                           # the maildrop may be locked by one session (RFC 1939)
        c = self.pop(tls=True)
        c.user(user)
        c.pass_(PW)
        self.assertEqual(c.stat()[0], 1)
        c.quit()
        # STLS after login is refused.
        c = self.pop(user)
        with self.assertRaises(poplib.error_proto):
            c._shortcmd("STLS")

    def test_auth_plain(self):
        user, _ = self.filled(1)
        c = self.pop()
        ir = base64.b64encode(("\0%s\0%s" % (user, PW)).encode()).decode()
        self.assertTrue(c._shortcmd("AUTH PLAIN " + ir).startswith(b"+OK"))
        self.assertEqual(c.stat()[0], 1)
        c.quit()                           # the maildrop may be locked by one session (RFC 1939)
        # Without the initial response: "+ " then the response.
        c = self.pop()
        c._putcmd("AUTH PLAIN")
        cont = c._getline()[0]
        self.assertTrue(cont.startswith(b"+ ") or cont == b"+", cont)
        c._putcmd(ir)
        self.assertTrue(c._getresp().startswith(b"+OK"))
        self.assertEqual(c.stat()[0], 1)
        c.quit()
        # Wrong password, and a cancelled exchange.
        c = self.pop()
        bad = base64.b64encode(("\0%s\0%s" % (user, BAD)).encode()).decode()
        with self.assertRaises(poplib.error_proto):
            c._shortcmd("AUTH PLAIN " + bad)
        c._putcmd("AUTH PLAIN")
        c._getline()
        c._putcmd("*")
        with self.assertRaises(poplib.error_proto):
            c._getresp()
        c.user(user)
        c.pass_(PW)

    def test_lockout_and_unlock(self):
        user, _ = self.filled(1)
        for _ in range(3):
            c = self.pop(source=NET)
            c.user(user)
            with self.assertRaises(poplib.error_proto):
                c.pass_(BAD)
            c.close()
        c = self.pop(source=NET)
        c.user(user)
        with self.assertRaises(poplib.error_proto):
            c.pass_(PW)
        self.node.ctl("user", "unlock", user)
        c = self.pop(source=NET)
        c.user(user)
        self.assertTrue(c.pass_(PW).startswith(b"+OK"))


class Pop3BeforeSmtpTest(ternlib.NodeTestCase):
    NODE = "pop3b"
    DOMAIN = D
    USER = "relayer@" + D
    USERS = (USER,)
    CONF = {"security": {"lockout_threshold": 0},
            "smtpd": {"relay_pop3": True, "pop3_relay_window": 600, "relay_auth": True,
                      "max_msgs_per_hour_per_ip": 0, "max_unknown_rcpts": 0, "max_failed_cmds": 0},
            "queue": {"static_mx": "remote.test=127.0.0.1:9", "retry_interval": 3600}}

    def try_relay(self, source):
        """True when 127.0.0.1's node accepts a message from source to a remote address."""
        try:
            refused = self.node.send_mail(self.USER, ["someone@remote.test"],
                                          ternlib.make_message("relay-test", sender=self.USER,
                                                               to="someone@remote.test"),
                                          source=source)
            return refused == {}
        except smtplib.SMTPRecipientsRefused as e:
            code = list(e.recipients.values())[0][0]
            self.assertTrue(500 <= code < 600 or 400 <= code < 500, e.recipients)
            return False

    def test_pop3_before_smtp(self):
        self.assertFalse(self.try_relay(NET), "relaying from %s allowed before any POP3 login" % NET)
        c = self.node.pop3(self.USER, source=NET)
        c.quit()
        self.assertTrue(self.try_relay(NET), "relaying from %s refused after a POP3 login from it" % NET)
        # Another outside address gained nothing.
        self.assertFalse(self.try_relay("127.0.0.3"))

    def test_failed_pop3_login_opens_nothing(self):
        src = "127.0.0.4"
        c = self.node.pop3(source=src)
        c.user(self.USER)
        with self.assertRaises(poplib.error_proto):
            c.pass_(BAD)
        c.close()
        self.assertFalse(self.try_relay(src))


if __name__ == "__main__":
    ternlib.main()
