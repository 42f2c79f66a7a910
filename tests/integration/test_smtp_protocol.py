#!/usr/bin/python3
"""SMTP protocol (issue 3): greeting, EHLO extensions, HELO/RSET/NOOP/VRFY/HELP/QUIT,
STARTTLS on 25 and 587 with the state reset after it, implicit TLS on 465, pipelining,
pipelined plaintext after STARTTLS discarded, SIZE refusal at MAIL and at the end of DATA,
and bad input: over-long lines, bare LF/CR (no SMTP smuggling), NUL bytes, failed-command
limit, a client gone in DATA, a DATA that never ends, a flood of RCPTs, talk before the
greeting, garbage instead of a TLS handshake. The node must survive all of it.
Clients: smtplib and raw sockets, from 127.0.0.2 (an Internet client) unless said."""
import os
import smtplib
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

D = "example.test"
HOST = "mx.example.test"
BOB = "bob@" + D
NET = "127.0.0.2"          # not in "Local clients": an Internet client
MAX_KB = 1024
MAX_RCPTS = 5
DATA_TIMEOUT = 3


class SmtpProtocolTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        conf = {
            "server": {"hostname": HOST},
            "smtpd": {"max_message_kb": MAX_KB, "max_rcpts": MAX_RCPTS, "max_failed_cmds": 3,
                      "data_timeout": DATA_TIMEOUT, "command_timeout": 60,
                      "max_msgs_per_hour_per_ip": 0, "max_unknown_rcpts": 0, "max_conns_per_ip": 0},
        }
        cls.node = ternlib.Node(name="smtpp1", domain=D, conf=conf)
        try:
            cls.node.start()
            cls.node.add_user(BOB)
            cls.node.ctl("alias", "add", "*flood*@" + D, BOB)
        except Exception:
            cls.node.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def tearDown(self):
        self.assertTrue(self.node.alive(), "ternd died\n" + self.node.output_tail())

    def raw(self, svc="smtp", source=NET, **kw):
        r = self.node.raw_smtp(svc, source=source, **kw)
        self.addCleanup(r.close)
        return r

    def greeted(self, svc="smtp", source=NET):
        r = self.raw(svc, source)
        self.assertEqual(r.greeting[0], 220, r.greeting)
        code, text = r.cmd("EHLO client.test")
        self.assertEqual(code, 250, text)
        return r, ternlib.ehlo_keywords(text)

    def assert_still_serving(self):
        r = self.raw(source="127.0.0.3")
        self.assertEqual(r.greeting[0], 220)
        self.assertEqual(r.cmd("NOOP")[0], 250)
        r.cmd("QUIT")

    def assert_no_message(self, subject):
        time.sleep(1.0)
        self.assertEqual(self.node.find_messages(BOB, subject), [], "a message %r was delivered" % subject)

    # ---- commands and extensions ----

    def test_greeting_and_ehlo_extensions(self):
        r = self.raw()
        code, text = r.greeting
        self.assertEqual(code, 220)
        self.assertTrue(text.startswith(HOST), "greeting %r does not name the Internet hostname" % text)
        code, text = r.cmd("EHLO client.test")
        self.assertEqual(code, 250)
        self.assertTrue(text.startswith(HOST), text)
        kw = ternlib.ehlo_keywords(text)
        for ext in ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN", "STARTTLS"):
            self.assertIn(ext, kw, "EHLO lacks %s: %r" % (ext, text))
        self.assertIn(int(kw["SIZE"]), (MAX_KB * 1024, MAX_KB * 1000), kw["SIZE"])
        self.assertEqual(r.cmd("QUIT")[0], 221)
        self.assertTrue(r.closed_by_peer(5))

    def test_helo_rset_noop_vrfy_help_quit(self):
        r = self.raw()
        code, text = r.cmd("HELO client.test")
        self.assertEqual(code, 250, text)
        self.assertEqual(r.cmd("NOOP")[0], 250)
        self.assertEqual(r.cmd("MAIL FROM:<x@ext.test>")[0], 250)
        self.assertEqual(r.cmd("RSET")[0], 250)
        # RSET ended the transaction: RCPT without MAIL is a bad sequence.
        self.assertEqual(r.cmd("RCPT TO:<%s>" % BOB)[0], 503)
        self.assertEqual(r.cmd("VRFY bob")[0], 252)
        self.assertEqual(r.cmd("VRFY nosuchuser@" + D)[0], 252)
        self.assertIn(r.cmd("HELP")[0], (211, 214))
        self.assertEqual(r.cmd("QUIT")[0], 221)
        self.assertTrue(r.closed_by_peer(5))

    def test_enhanced_status_codes(self):
        r, _ = self.greeted()
        code, text = r.cmd("MAIL FROM:<x@ext.test>")
        self.assertEqual(code, 250)
        self.assertRegex(text, r"^2\.1\.0")
        code, text = r.cmd("RCPT TO:<nosuchuser@%s>" % D)
        self.assertEqual(code, 550, text)
        self.assertRegex(text, r"^5\.1\.1")

    def test_mail_before_ehlo_is_bad_sequence(self):
        r = self.raw()
        self.assertEqual(r.cmd("MAIL FROM:<x@ext.test>")[0], 503)

    def test_smtplib_message_to_local_user(self):
        subj = "proto-basic-%d" % time.time_ns()
        refused = self.node.send_mail("x@ext.test", [BOB], ternlib.make_message(subj, "x@ext.test", BOB),
                                      source=NET)
        self.assertEqual(refused, {})
        msg = self.node.wait_message(BOB, subj)
        self.assertEqual(ternlib.header_text(msg, "Return-Path"), "<x@ext.test>")

    def test_swaks_message(self):
        subj = "proto-swaks-%d" % time.time_ns()
        r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % self.node.smtp_port("smtp"),
                            "--local-interface", NET, "--from", "sw@ext.test", "--to", BOB,
                            "--header", "Subject: " + subj, "--pipeline", "--timeout", "30"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.node.wait_message(BOB, subj)

    # ---- TLS ----

    def check_starttls(self, svc):
        s = self.node.smtp(svc, source=NET)
        self.addCleanup(s.close)
        self.assertTrue(s.has_extn("starttls"))
        code, _ = s.starttls(context=ternlib.tls_context())
        self.assertEqual(code, 220)
        code, _ = s.ehlo()
        self.assertEqual(code, 250)
        self.assertFalse(s.has_extn("starttls"), "STARTTLS offered again inside TLS")
        self.assertTrue(s.has_extn("auth"), "no AUTH after STARTTLS on %s" % svc)
        for mech in ("PLAIN", "LOGIN", "SCRAM-SHA-256"):
            self.assertIn(mech, s.esmtp_features["auth"].upper().split())
        self.assertEqual(s.noop()[0], 250)
        s.quit()

    def test_starttls_port_25(self):
        self.check_starttls("smtp")

    def test_starttls_port_587(self):
        self.check_starttls("submission")

    def test_starttls_resets_state(self):
        r, _ = self.greeted()
        r.starttls()
        # The EHLO before TLS is forgotten: MAIL needs a new EHLO.
        self.assertEqual(r.cmd("MAIL FROM:<x@ext.test>")[0], 503)
        code, text = r.cmd("EHLO client.test")
        self.assertEqual(code, 250)
        kw = ternlib.ehlo_keywords(text)
        self.assertNotIn("STARTTLS", kw)
        self.assertEqual(r.cmd("STARTTLS")[0] // 100, 5, "a second STARTTLS was accepted")
        subj = "proto-after-tls-%d" % time.time_ns()
        self.assertEqual(r.cmd("MAIL FROM:<x@ext.test>")[0], 250)
        self.assertEqual(r.cmd("RCPT TO:<%s>" % BOB)[0], 250)
        self.assertEqual(r.cmd("DATA")[0], 354)
        r.send(ternlib.make_message(subj, "x@ext.test", BOB) + b".\r\n")
        self.assertEqual(r.reply()[0], 250)
        msg = self.node.wait_message(BOB, subj)
        rcv = ternlib.header_text(msg, "Received")
        self.assertRegex(rcv, r"ESMTPS", "Received does not record TLS: %r" % rcv)

    def test_pipelined_plaintext_after_starttls_is_discarded(self):
        r, _ = self.greeted()
        r.send("STARTTLS\r\nNOOP\r\n")
        code, text = r.reply()
        self.assertEqual(code, 220, text)
        self.assertEqual(r.buf, b"", "plaintext reply after STARTTLS's 220")
        r.sock = ternlib.tls_context().wrap_socket(r.sock)
        # The first reply inside TLS must answer VRFY (252), not the injected NOOP (250).
        code, text = r.cmd("VRFY bob")
        self.assertEqual(code, 252, "first reply over TLS was %d %s: the plaintext NOOP was executed" % (code, text))
        self.assertEqual(r.replies_within(0.5), [])

    def test_implicit_tls_465(self):
        s = self.node.smtp("smtps", source=NET)
        self.addCleanup(s.close)
        self.assertFalse(s.has_extn("starttls"))
        self.assertTrue(s.has_extn("auth"))
        subj = "proto-465-%d" % time.time_ns()
        self.assertEqual(s.sendmail("x@ext.test", [BOB], ternlib.make_message(subj, "x@ext.test", BOB)), {})
        s.quit()
        self.node.wait_message(BOB, subj)

    def test_garbage_instead_of_tls_handshake(self):
        sock = socket.create_connection(("127.0.0.1", self.node.smtp_port("smtps")), 10,
                                        source_address=(NET, 0))
        try:
            sock.sendall(b"EHLO not-tls\r\n" + os.urandom(2048))
            sock.settimeout(10)
            try:
                while sock.recv(4096):
                    pass
            except (ConnectionError, socket.timeout):
                pass
        finally:
            sock.close()
        s = self.node.smtp("smtps", source=NET)
        self.assertEqual(s.noop()[0], 250)
        s.quit()

    # ---- pipelining ----

    def test_pipelining_replies_in_order(self):
        r, kw = self.greeted()
        self.assertIn("PIPELINING", kw)
        subj = "proto-pipe-%d" % time.time_ns()
        r.send("MAIL FROM:<p@ext.test>\r\nRCPT TO:<%s>\r\nRCPT TO:<nosuchuser@%s>\r\nDATA\r\n" % (BOB, D))
        codes = [r.reply()[0] for _ in range(4)]
        self.assertEqual(codes, [250, 250, 550, 354])
        r.send(ternlib.make_message(subj, "p@ext.test", BOB) + b".\r\nQUIT\r\n")
        self.assertEqual(r.reply()[0], 250)
        self.assertEqual(r.reply()[0], 221)
        self.node.wait_message(BOB, subj)

    # ---- sizes ----

    def test_size_parameter_over_limit(self):
        r, _ = self.greeted()
        code, text = r.cmd("MAIL FROM:<x@ext.test> SIZE=%d" % (MAX_KB * 1024 * 4))
        self.assertEqual(code, 552, text)
        self.assertRegex(text, r"^5\.3\.4")
        self.assertEqual(r.cmd("MAIL FROM:<x@ext.test> SIZE=1000")[0], 250)

    def test_smtplib_refuses_big_message_by_size(self):
        s = self.node.smtp(source=NET)
        self.addCleanup(s.close)
        with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
            s.sendmail("x@ext.test", [BOB], ternlib.make_message("big", size=MAX_KB * 1024 + 50000))
        self.assertEqual(cm.exception.smtp_code, 552)

    def test_data_over_limit(self):
        r, _ = self.greeted()
        subj = "proto-toobig-%d" % time.time_ns()
        self.assertEqual(r.cmd("MAIL FROM:<x@ext.test>")[0], 250)
        self.assertEqual(r.cmd("RCPT TO:<%s>" % BOB)[0], 250)
        self.assertEqual(r.cmd("DATA")[0], 354)
        try:
            r.send(ternlib.make_message(subj, "x@ext.test", BOB, size=MAX_KB * 1024 + 100000) + b".\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        code, text = r.reply()
        self.assertEqual(code, 552, text)
        try:
            self.assertEqual(r.cmd("NOOP")[0], 250)
        except (EOFError, ConnectionError):
            pass      # closing after a refused oversized DATA is allowed
        self.assert_no_message(subj)

    # ---- bad input ----

    def test_overlong_command_line(self):
        r, _ = self.greeted()
        code, text = r.cmd("NOOP " + "x" * 5000)
        self.assertEqual(code, 500, text)
        self.assertEqual(r.cmd("NOOP")[0], 250, "the session did not continue after an over-long line")
        code, _ = r.cmd("MAIL FROM:<%s@ext.test>" % ("a" * 3000))
        self.assertEqual(code // 100, 5)
        self.assertEqual(r.cmd("RSET")[0], 250)

    def test_overlong_header_line_in_data(self):
        r, _ = self.greeted()
        subj = "proto-longhdr-%d" % time.time_ns()
        self.assertEqual(r.cmd("MAIL FROM:<x@ext.test>")[0], 250)
        self.assertEqual(r.cmd("RCPT TO:<%s>" % BOB)[0], 250)
        self.assertEqual(r.cmd("DATA")[0], 354)
        r.send(ternlib.make_message(subj, "x@ext.test", BOB, extra_headers=["X-Long: " + "y" * 200000])
               + b".\r\n")
        code, text = r.reply()
        self.assertIn(code // 100, (2, 5), text)
        self.assertEqual(r.cmd("NOOP")[0], 250)

    def test_bare_lf_command(self):
        r, _ = self.greeted()
        r.send("NOOP\n")
        got = r.replies_within(2.0)
        if got:     # answered (accepted or refused); silence (waiting for CRLF) is fine too
            self.assertIn(got[0][0], (250, 500, 501), got)
        self.assert_still_serving()

    def test_no_smuggling_through_bare_lf_or_cr(self):
        """A lone LF or CR around a dot never ends DATA: whatever follows stays in the
        message (or the message is refused); it is never run as commands."""
        for i, sep in enumerate(("\n.\n", "\n.\r\n", "\r\n.\n", "\r.\r\n", "\r\n.\r")):
            with self.subTest(sep=repr(sep)):
                tag = "%d-%d" % (i, time.time_ns())
                r, _ = self.greeted()
                self.assertEqual(r.cmd("MAIL FROM:<x@ext.test>")[0], 250)
                self.assertEqual(r.cmd("RCPT TO:<%s>" % BOB)[0], 250)
                self.assertEqual(r.cmd("DATA")[0], 354)
                r.send("Subject: carrier-%s\r\n\r\nhello%sMAIL FROM:<evil@evil.test>\r\nRCPT TO:<%s>\r\n"
                       "DATA\r\nSubject: smuggled-%s\r\n\r\nevil\r\n.\r\n" % (tag, sep, BOB, tag))
                got = r.replies_within(2.0)
                self.assertEqual(len(got), 1, "expected one reply to DATA, got %r (smuggling)" % got)
                self.assertIn(got[0][0] // 100, (2, 5), got)
                r.close()
                self.assert_no_message("smuggled-" + tag)

    def test_nul_bytes(self):
        r, _ = self.greeted()
        r.send("NOOP\x00\x00\r\n")
        got = r.replies_within(2.0)
        if got:
            self.assertIn(got[0][0], (250, 500, 501), got)
        r.close()
        r, _ = self.greeted()
        subj = "proto-nul-%d" % time.time_ns()
        self.assertEqual(r.cmd("MAIL FROM:<x@ext.test>")[0], 250)
        self.assertEqual(r.cmd("RCPT TO:<%s>" % BOB)[0], 250)
        self.assertEqual(r.cmd("DATA")[0], 354)
        r.send(ternlib.make_message(subj, "x@ext.test", BOB, body="a\x00b\x00\r\n") + b".\r\n")
        code, text = r.reply()
        self.assertIn(code // 100, (2, 5), text)
        self.assertEqual(r.cmd("NOOP")[0], 250)
        self.assert_still_serving()

    def test_too_many_failed_commands(self):
        """max_failed_cmds = 3: the session is closed with 421 at the latest on the 4th
        failed command (its own 5xx may come before the 421)."""
        r, _ = self.greeted()
        codes, sent = [], 0
        for i in range(6):
            try:
                r.send("BOGUS%d\r\n" % i)
            except (ConnectionError, OSError):
                break
            sent += 1
            codes += [c for c, _ in r.replies_within(1.5)]
            if 421 in codes:
                break
        self.assertIn(codes[0], (500, 502), codes)
        self.assertIn(421, codes, "no 421 after repeated failed commands: %r" % codes)
        self.assertLessEqual(sent, 4, "closed only after %d failed commands: %r" % (sent, codes))
        self.assertGreaterEqual(sent, 3, "closed after %d failed commands: %r" % (sent, codes))
        self.assertTrue(r.closed_by_peer(5), "session not closed after 421")

    def test_client_disconnects_in_data(self):
        r, _ = self.greeted()
        subj = "proto-cut-%d" % time.time_ns()
        self.assertEqual(r.cmd("MAIL FROM:<x@ext.test>")[0], 250)
        self.assertEqual(r.cmd("RCPT TO:<%s>" % BOB)[0], 250)
        self.assertEqual(r.cmd("DATA")[0], 354)
        r.send(ternlib.make_message(subj, "x@ext.test", BOB, size=20000))
        r.sock.shutdown(socket.SHUT_RDWR)
        r.close()
        self.assert_no_message(subj)
        self.assertEqual([q for q in self.node.queue_list()], [])

    def test_data_that_never_ends(self):
        r, _ = self.greeted()
        subj = "proto-stall-%d" % time.time_ns()
        self.assertEqual(r.cmd("MAIL FROM:<x@ext.test>")[0], 250)
        self.assertEqual(r.cmd("RCPT TO:<%s>" % BOB)[0], 250)
        self.assertEqual(r.cmd("DATA")[0], 354)
        r.send(ternlib.make_message(subj, "x@ext.test", BOB))
        # data_timeout seconds of silence: the server says 421 and closes.
        self.assertTrue(r.closed_by_peer(DATA_TIMEOUT + 15), "DATA stall not timed out")
        self.assertTrue(r.buf.startswith(b"421 4.4.2"), r.buf)
        self.assert_no_message(subj)

    def test_rcpt_flood(self):
        r, _ = self.greeted()
        self.assertEqual(r.cmd("MAIL FROM:<x@ext.test>")[0], 250)
        codes = [r.cmd("RCPT TO:<flood%d@%s>" % (i, D))[0] for i in range(MAX_RCPTS)]
        self.assertEqual(codes, [250] * MAX_RCPTS)
        code, text = r.cmd("RCPT TO:<flood%d@%s>" % (MAX_RCPTS, D))
        self.assertEqual(code, 452, text)
        # The transaction goes on with the recipients accepted.
        subj = "proto-flood-%d" % time.time_ns()
        self.assertEqual(r.cmd("DATA")[0], 354)
        r.send(ternlib.make_message(subj, "x@ext.test", BOB) + b".\r\n")
        self.assertEqual(r.reply()[0], 250)
        self.node.wait_message(BOB, subj)

    def test_talk_before_greeting(self):
        r = self.raw(greeting=False)
        r.send("EHLO early.test\r\nMAIL FROM:<x@ext.test>\r\n")
        try:
            code, _ = r.reply()
            self.assertIn(code // 100, (2, 4, 5))
        except (EOFError, ConnectionError):
            pass
        r.close()
        self.assert_still_serving()


if __name__ == "__main__":
    ternlib.main()
