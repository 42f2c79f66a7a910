#!/usr/bin/python3
"""IMAP bad input (issue 4): an enormous literal ({18446744073709551615}, synchronising and
LITERAL+), deeply nested parentheses, a 1 MB command line, invalid sequence sets (0,
4294967296, 1:*:*), commands in the wrong state, a client vanishing mid-literal, 8-bit
garbage in SEARCH. Each gets a tagged BAD/NO (or an untagged BAD/BYE and a clean close);
a session opened beforehand keeps working through all of it, new sessions log in, and the
node's resident size (/proc) does not grow beyond a bound when the whole set is repeated
(IMAP_BADINPUT_ROUNDS, default 20)."""
import os
import socket
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

D = "example.test"
USER = "bad@" + D
ROUNDS = int(os.environ.get("IMAP_BADINPUT_ROUNDS", "20"))
RSS_BOUND_KB = 16 * 1024


class ImapBadInputTest(ternlib.NodeTestCase):
    NODE = "imapbad"
    DOMAIN = D
    CONF = {"security": {"lockout_threshold": 0}}
    USERS = (USER,)

    @classmethod
    def setUpClass(cls):
        # A sanitizer build keeps freed memory in quarantine: keep it small so that RSS
        # growth means a leak, not the quarantine filling up.
        opts = os.environ.get("ASAN_OPTIONS", "")
        if "quarantine_size_mb" not in opts:
            os.environ["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "quarantine_size_mb=8"
        super().setUpClass()
        r = cls.node.raw_imap()
        r.login(USER)
        for i in range(3):
            r.append("INBOX", ternlib.make_message("bad-%d" % i))
        r.close()

    def setUp(self):
        self.witness = self.raw(USER)
        self.witness.select("INBOX")

    def still_serving(self):
        """The witness session and a new session both work, and no bad input was stored."""
        self.witness.ok("NOOP")
        self.assertEqual(len(self.witness.fetch("1:*", "UID")), 3)
        self.assertEqual(self.count(), 3)
        r = self.node.raw_imap()
        try:
            r.login(USER)
            r.select("INBOX")
        finally:
            r.close()

    def count(self):
        r = self.node.raw_imap()
        try:
            r.login(USER)
            st = b"".join(r.ok("STATUS INBOX (MESSAGES)"))
            return int(st.split(b"MESSAGES ")[1].split(b")")[0])
        finally:
            r.close()

    def expect_refused(self, r, data, tag, what):
        """Send data; the answer must be a tagged BAD/NO, or an untagged BAD/BYE followed by a
        close, or a plain close. Returns True when the connection is still usable."""
        try:
            r.send(data)
        except (BrokenPipeError, ConnectionResetError):
            return False                          # closed while we were still sending: fine
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                resp = r.response()
            except (EOFError, ConnectionError, ssl.SSLError):
                return False
            except socket.timeout:
                break
            if resp.startswith(tag.encode() + b" "):
                status = resp.split(b" ")[1].upper()
                self.assertIn(status, (b"BAD", b"NO"), "%s: %r" % (what, resp[:200]))
                return True
            if resp.startswith(b"+"):
                self.fail("%s: the server asked for the literal: %r" % (what, resp[:200]))
            if resp.upper().startswith(b"* BYE"):
                self.assertTrue(r.closed_by_peer(10), "%s: BYE but no close" % what)
                return False
            self.assertTrue(resp.upper().startswith(b"* BAD") or resp.startswith(b"* "),
                            "%s: unexpected %r" % (what, resp[:200]))
            if resp.upper().startswith(b"* BAD"):
                # untagged BAD for an unparseable line: the connection may go on or close
                return not r.closed_by_peer(0.5)
        self.fail("%s: no answer within 15 s" % what)

    # ---- the cases ----

    def case_huge_literal(self):
        r = self.raw(USER)
        usable = self.expect_refused(r, b"h1 APPEND INBOX {18446744073709551615}\r\n", "h1", "huge literal")
        if usable:
            r.ok("NOOP")
        r = self.raw()
        self.expect_refused(r, b"h2 LOGIN {18446744073709551615}\r\n", "h2", "huge literal in LOGIN")
        r = self.raw(USER)
        # LITERAL+: the server cannot skip 2^64 bytes: BAD and close, or just close.
        self.expect_refused(r, b"h3 APPEND INBOX {18446744073709551615+}\r\nxxxx\r\n", "h3", "huge LITERAL+")
        r = self.raw(USER)
        self.expect_refused(r, b"h4 APPEND INBOX {99999999999999999999999999}\r\n", "h4", "overflowing literal")

    def case_nested_parens(self):
        r = self.raw(USER)
        r.select("INBOX")
        deep = b"(" * 100000 + b"ALL" + b")" * 100000
        usable = self.expect_refused(r, b"n1 SEARCH " + deep + b"\r\n", "n1", "deep SEARCH")
        if usable:
            r.ok("NOOP")
        r = self.raw(USER)
        r.select("INBOX")
        self.expect_refused(r, b"n2 FETCH 1 " + b"(" * 50000 + b"FLAGS" + b")" * 50000 + b"\r\n", "n2",
                            "deep FETCH")
        r = self.raw(USER)
        self.expect_refused(r, b"n3 APPEND INBOX " + b"(" * 50000 + b"\r\n", "n3", "unclosed parens")

    def case_megabyte_line(self):
        r = self.raw(USER)
        self.expect_refused(r, b"m1 NOOP " + b"x" * (1024 * 1024) + b"\r\n", "m1", "1 MB line")
        r = self.raw(USER)
        self.expect_refused(r, b"m2 SEARCH SUBJECT \"" + b"y" * (1024 * 1024) + b"\"\r\n", "m2",
                            "1 MB quoted string")
        # 1 MB without any line end, then the client leaves.
        r = self.raw()
        try:
            r.send(b"z" * (1024 * 1024))
        except (BrokenPipeError, ConnectionResetError):
            pass
        r.close()

    def case_sequence_sets(self):
        r = self.raw(USER)
        r.select("INBOX")
        for i, cmd in enumerate(("FETCH 0 FLAGS", "FETCH 4294967296 FLAGS", "FETCH 1:*:* FLAGS",
                                 "UID FETCH 0:4294967296 FLAGS", "STORE 0 +FLAGS (\\Seen)",
                                 "COPY 1:*:* INBOX", "UID STORE 4294967296 +FLAGS (\\Seen)",
                                 "SEARCH 1:*:*", "FETCH 1,,2 FLAGS", "FETCH -1 FLAGS", "FETCH *:0 FLAGS",
                                 "UID SEARCH UID 0", "FETCH 18446744073709551617 FLAGS")):
            tag = "s%d" % i
            status, _, tagged = r.command(cmd, tag=tag)
            self.assertIn(status, ("BAD", "NO"), "%s: %r" % (cmd, tagged))
        r.ok("NOOP")

    def refused_each(self, make, cmds, prefix, what, allowed=("BAD", "NO")):
        """Each command on a session from make(): a tagged status in allowed, or a clean
        close (the server may drop a client that keeps sending nonsense; a new session then
        takes the next command)."""
        r = make()
        for i, cmd in enumerate(cmds):
            try:
                status, _, tagged = r.command(cmd, tag="%s%d" % (prefix, i))
            except (EOFError, ConnectionError):
                status, tagged = "BYE", b""
            if status == "BYE":
                r = make()
                continue
            self.assertIn(status, allowed, "%s %s: %r" % (cmd, what, tagged))
        return r

    def case_wrong_state(self):
        self.refused_each(self.raw, ("SELECT INBOX", "FETCH 1 FLAGS", 'LIST "" "*"', "APPEND INBOX {3+}\r\nabc",
                                     "IDLE", "STATUS INBOX (MESSAGES)", "EXPUNGE", "CLOSE", "UNSELECT",
                                     "ENABLE CONDSTORE", "NAMESPACE", "GETQUOTAROOT INBOX"), "w", "before login")
        self.refused_each(lambda: self.raw(USER),
                          ("FETCH 1 FLAGS", "STORE 1 +FLAGS (\\Seen)", "SEARCH ALL", "EXPUNGE", "CLOSE",
                           "UID FETCH 1 FLAGS", "COPY 1 INBOX", "MOVE 1 INBOX", "LOGIN a b",
                           "AUTHENTICATE PLAIN AGFAAGI=", "STARTTLS"), "x", "in the authenticated state")
        r = self.refused_each(lambda: self.raw(USER),
                              ("NOSUCHCOMMAND", "FETCH", "SELECT", "LOGIN", "UID NOSUCH 1", "FETCH 1 (NOSUCHITEM)",
                               "STORE 1 XFLAGS (\\Seen)"), "y", "(unknown or incomplete)", allowed=("BAD",))
        # No tag at all: an empty line. A "* BAD", a close, or (as Dovecot does) nothing;
        # the session goes on either way.
        try:
            r.send(b"\r\n")
            status, untagged, tagged = r.command("NOOP", tag="z1")
        except (EOFError, ConnectionError):
            return
        if status != "BYE":
            self.assertEqual(status, "OK", tagged)
            for u in untagged:
                self.assertTrue(u.upper().startswith(b"* BAD") or u.startswith(b"* "), u)

    def case_vanish_mid_literal(self):
        before = self.count()
        for i in range(5):
            r = self.raw(USER)
            r.send(b"v1 APPEND INBOX {100000}\r\n")
            self.assertTrue(r.response().startswith(b"+"))
            r.send(b"From: x\r\nSubject: half\r\n\r\n" + b"q" * 1000)
            r.close()
        time.sleep(0.3)
        self.assertEqual(self.count(), before, "a half-sent APPEND was stored")

    def case_8bit_search(self):
        r = self.raw(USER)
        r.select("INBOX")
        for i, data in enumerate((b"SEARCH SUBJECT \xff\xfe\x80garbage", b'SEARCH SUBJECT "\xc3\x28\xa0\xa1"',
                                  b"SEARCH \xff\xff\xff", b"SEARCH CHARSET UTF-8 TEXT {4}\r\n\xff\xfe\xfd\xfc",
                                  b"SEARCH CHARSET \xff\xfe TEXT x", b"SEARCH HEADER \x80\x81 x")):
            tag = "e%d" % i
            if b"{4}\r\n" in data:
                head, lit = data.split(b"\r\n", 1)
                r.send(tag.encode() + b" " + head + b"\r\n")
                cont = r.response()
                if cont.startswith(b"+"):
                    r.send(lit + b"\r\n")
                    status, _, tagged = r.read_tagged(tag)
                else:
                    status = cont.split(b" ")[1].decode().upper()
                    tagged = cont
            else:
                status, _, tagged = r.command(data, tag=tag)
            self.assertIn(status, ("OK", "NO", "BAD"), "%r: %r" % (data, tagged))
        r.ok("NOOP")

    ALL_CASES = ("case_huge_literal", "case_nested_parens", "case_megabyte_line", "case_sequence_sets",
                 "case_wrong_state", "case_vanish_mid_literal", "case_8bit_search")

    # ---- the tests ----

    def test_huge_literal(self):
        self.case_huge_literal()
        self.still_serving()

    def test_nested_parens(self):
        self.case_nested_parens()
        self.still_serving()

    def test_megabyte_line(self):
        self.case_megabyte_line()
        self.still_serving()

    def test_sequence_sets(self):
        self.case_sequence_sets()
        self.still_serving()

    def test_wrong_state(self):
        self.case_wrong_state()
        self.still_serving()

    def test_vanish_mid_literal(self):
        self.case_vanish_mid_literal()
        self.still_serving()

    def test_8bit_search(self):
        self.case_8bit_search()
        self.still_serving()

    def test_tls_garbage_on_993(self):
        """Plaintext IMAP on the TLS port, and garbage as a TLS hello: closed, server fine."""
        s = socket.create_connection(("127.0.0.1", self.node.imap_port(True)), 10)
        s.sendall(b"a1 LOGIN x y\r\n" + os.urandom(4096))
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
        except (ConnectionError, socket.timeout):
            pass
        s.close()
        self.still_serving()

    def run_all_cases(self):
        """Every case; a case's own assertion failures are reported by its own test, here
        only the memory matters."""
        for name in self.ALL_CASES:
            try:
                getattr(self, name)()
            except (AssertionError, OSError, EOFError):
                pass

    def test_zz_no_memory_growth(self):
        """Run every case ROUNDS times; RSS after minus RSS after a warm-up stays under a bound."""
        self.run_all_cases()
        self.doCleanups()
        time.sleep(0.5)
        base = self.node.rss_kb()
        for _ in range(ROUNDS):
            self.run_all_cases()
            self.doCleanups()                   # close this round's sessions
            self.witness = self.raw(USER)
            self.witness.select("INBOX")
        time.sleep(1.0)
        after = self.node.rss_kb()
        sys.stderr.write("\nRSS %d KiB after warm-up, %d KiB after %d rounds (+%d KiB)\n"
                         % (base, after, ROUNDS, after - base))
        self.assertLess(after - base, RSS_BOUND_KB,
                        "RSS grew by %d KiB over %d rounds of bad input" % (after - base, ROUNDS))
        self.still_serving()


if __name__ == "__main__":
    ternlib.main()
