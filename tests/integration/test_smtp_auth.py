#!/usr/bin/python3
"""SMTP AUTH (issue 3): PLAIN, LOGIN and SCRAM-SHA-256 (client side written here after
RFC 5802/7677 and checked against the RFC's test vector), each succeeding with the right
password and failing with 535 and a security.log line with a wrong one; the submission
port wants AUTH before MAIL (530); with [security] auth_policy = encrypted, AUTH without
TLS gets 538 and works after STARTTLS."""
import base64
import os
import smtplib
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

D = "example.test"
ALICE = "alice@" + D
VICTIM = "victim@" + D      # the target of the failed logins (keeps alice unlocked)
BOB = "bob@" + D
NET = "127.0.0.2"
PW = ternlib.USER_PASSWORD
BAD = "wrong-password-9"
BASE_CONF = {"server": {"hostname": "mx.example.test"},
             "security": {"lockout_threshold": 0},
             "smtpd": {"max_msgs_per_hour_per_ip": 0, "max_unknown_rcpts": 0}}


def plain_b64(user, password):
    return base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()


class ScramVectorTest(unittest.TestCase):
    """The test's own SCRAM client against RFC 7677's example (no node needed)."""

    def test_rfc7677_example(self):
        c = ternlib.ScramSha256("user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO")
        self.assertEqual(c(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        final = c(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
        self.assertEqual(final, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        self.assertEqual(c(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="), "")
        self.assertTrue(c.server_verified)


class SmtpAuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = ternlib.Node(name="smtpa1", domain=D, conf=BASE_CONF)
        try:
            cls.node.start()
            for u in (ALICE, VICTIM, BOB):
                cls.node.add_user(u)
        except Exception:
            cls.node.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def tearDown(self):
        self.assertTrue(self.node.alive(), "ternd died\n" + self.node.output_tail())

    def client(self, svc="submission", starttls=True, source=NET):
        s = self.node.smtp(svc, source=source, starttls=starttls)
        self.addCleanup(s.close)
        return s

    def auth(self, s, mech, user, password, initial_response_ok=True):
        if mech == "SCRAM-SHA-256":
            obj = ternlib.ScramSha256(user, password)
            code, text = s.auth(mech, obj, initial_response_ok=initial_response_ok)
            return code, obj
        s.user, s.password = user, password
        fn = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login}[mech]
        return s.auth(mech, fn, initial_response_ok=initial_response_ok)

    def assert_failed_login_logged(self, before):
        def logged():
            return len(ternlib.log_lines(self.node, "security", r"Failed SMTP login from 127\.0\.0\.2, \S")) > before
        self.node.wait_for(logged, 10, "a 'Failed SMTP login from 127.0.0.2, <reason>' line in security.log")

    def failed_lines(self):
        return len(ternlib.log_lines(self.node, "security", r"Failed SMTP login from 127\.0\.0\.2, \S"))

    def send_after_auth(self, s, tag):
        subj = "auth-%s-%d" % (tag, time.time_ns())
        self.assertEqual(s.sendmail(ALICE, [BOB], ternlib.make_message(subj, ALICE, BOB)), {})
        msg = self.node.wait_message(BOB, subj)
        rcv = ternlib.header_text(msg, "Received")
        self.assertRegex(rcv, r"ESMTPS?A", "Received does not say the sender authenticated: %r" % rcv)
        return msg

    def check_success(self, mech, **kw):
        s = self.client()
        self.assertIn(mech, s.esmtp_features["auth"].upper().split())
        res = self.auth(s, mech, ALICE, PW, **kw)
        self.assertEqual(res[0], 235, res)
        if mech == "SCRAM-SHA-256":
            self.assertTrue(res[1].server_verified, "the server's SCRAM signature was not sent/checked")
        self.send_after_auth(s, mech)
        s.quit()

    def check_failure(self, mech, **kw):
        before = self.failed_lines()
        s = self.client()
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            self.auth(s, mech, VICTIM, BAD, **kw)
        self.assertEqual(cm.exception.smtp_code, 535, cm.exception)
        self.assertIn(b"5.7.8", cm.exception.smtp_error)
        # Not authenticated: submission still refuses MAIL.
        code, _ = s.mail(VICTIM)
        self.assertEqual(code, 530)
        self.assert_failed_login_logged(before)

    def test_plain_success(self):
        self.check_success("PLAIN")

    def test_plain_failure(self):
        self.check_failure("PLAIN")

    def test_login_success(self):
        self.check_success("LOGIN", initial_response_ok=False)

    def test_login_failure(self):
        self.check_failure("LOGIN", initial_response_ok=False)

    def test_scram_sha256_success(self):
        self.check_success("SCRAM-SHA-256")

    def test_scram_sha256_failure(self):
        self.check_failure("SCRAM-SHA-256")

    def test_unknown_user_fails(self):
        before = self.failed_lines()
        s = self.client()
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            self.auth(s, "PLAIN", "nobody@" + D, PW)
        self.assertEqual(cm.exception.smtp_code, 535)
        self.assert_failed_login_logged(before)

    def test_swaks_auth_login_and_plain(self):
        for mech in ("LOGIN", "PLAIN"):
            subj = "auth-swaks-%s-%d" % (mech, time.time_ns())
            # Port 25 without TLS (auth_policy none): swaks's TLS needs Net::SSLeay.
            r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % self.node.smtp_port("smtp"),
                                "--local-interface", NET, "--auth", mech, "--auth-user", ALICE,
                                "--auth-password", PW, "--from", ALICE, "--to", BOB,
                                "--header", "Subject: " + subj, "--timeout", "30"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.node.wait_message(BOB, subj)

    def test_auth_without_tls_allowed_by_default_policy(self):
        s = self.client("smtp", starttls=False)
        code, text = s.docmd("AUTH", "PLAIN " + plain_b64(ALICE, PW))
        self.assertEqual(code, 235, text)
        s.quit()

    def test_submission_requires_auth_before_mail(self):
        s = self.client()
        code, text = s.mail("x@ext.test")
        self.assertEqual(code, 530, text)
        self.assertIn(b"5.7.0", text)
        s.quit()
        # Also from a Local clients address: submission is for authenticated users.
        s = self.client(source="127.0.0.1")
        self.assertEqual(s.mail(ALICE)[0], 530)
        s.quit()

    def test_auth_protocol_errors(self):
        s = self.client()
        self.assertEqual(s.docmd("AUTH", "CRAM-MD5")[0], 504)
        code, _ = s.docmd("AUTH", "PLAIN")
        self.assertEqual(code, 334)
        self.assertEqual(s.docmd("*")[0], 501)          # client cancels (RFC 4954)
        s.close()
        s = self.client()
        self.assertEqual(s.docmd("AUTH", "PLAIN " + plain_b64(ALICE, PW))[0], 235)
        self.assertEqual(s.docmd("AUTH", "PLAIN " + plain_b64(ALICE, PW))[0], 503)  # once per session
        s.quit()


class SmtpAuthEncryptedPolicyTest(unittest.TestCase):
    """[security] auth_policy = encrypted: no plaintext AUTH before TLS (538)."""

    @classmethod
    def setUpClass(cls):
        conf = dict(BASE_CONF)
        conf["security"] = {"lockout_threshold": 0, "auth_policy": "encrypted"}
        cls.node = ternlib.Node(name="smtpa2", domain=D, conf=conf)
        try:
            cls.node.start()
            cls.node.add_user(ALICE)
        except Exception:
            cls.node.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def test_auth_refused_before_tls_allowed_after(self):
        for svc in ("smtp", "submission"):
            with self.subTest(svc=svc):
                s = self.node.smtp(svc, source=NET)
                self.addCleanup(s.close)
                code, text = s.docmd("AUTH", "PLAIN " + plain_b64(ALICE, PW))
                self.assertEqual(code, 538, text)
                self.assertIn(b"5.7.11", text)
                code, _ = s.starttls(context=ternlib.tls_context())
                self.assertEqual(code, 220)
                s.ehlo()
                self.assertTrue(s.has_extn("auth"))
                code, text = s.docmd("AUTH", "PLAIN " + plain_b64(ALICE, PW))
                self.assertEqual(code, 235, text)
                s.quit()

    def test_implicit_tls_auth(self):
        s = self.node.smtp("smtps", source=NET)
        self.addCleanup(s.close)
        self.assertEqual(s.docmd("AUTH", "PLAIN " + plain_b64(ALICE, PW))[0], 235)
        s.quit()


if __name__ == "__main__":
    ternlib.main()
