#!/usr/bin/python3
"""Kerberos single sign-on (issue 5) against the slapd + MIT KDC fixture: ternd started
with the fixture's KRB5_CONFIG and KRB5_KTNAME offers AUTH=GSSAPI; a mapped user with a
ticket (kinit into a temp ccache) logs in to IMAP with AUTHENTICATE GSSAPI (RFC 4752,
client side written here with python3-gssapi) and lands in her own mailbox, and likewise to POP3 (AUTH GSSAPI, RFC 5034) and to SMTP
submission (AUTH GSSAPI, RFC 4954); the admin
HTTPS API answers 401 with "WWW-Authenticate: Negotiate" and accepts a SPNEGO ticket
with the same rights checks as Basic; without a keytab nothing is offered and
warning.log says why. Needs python3-gssapi (run with /usr/bin/python3)."""
import base64
import http.client
import imaplib
import os
import poplib
import smtplib
import ssl
import struct
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
import ternlib  # noqa: E402
import dirfixture  # noqa: E402

try:
    import gssapi
except ImportError:  # pragma: no cover
    gssapi = None

D = "example.test"
U = dirfixture.USERS
CONF = {"security": {"lockout_threshold": 0},
        "smtpd": {"max_msgs_per_hour_per_ip": 0, "max_unknown_rcpts": 0},
        "directory": {"poll_interval": 2, "reconcile_interval": 6, "timeout": 3}}
SPNEGO = "1.3.6.1.5.5.2"


@unittest.skipIf(gssapi is None, "python3-gssapi is not installed")
class DirectoryGssapi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fx = dirfixture.start(ldap=True, backup=False, kdc=True)
        cls.saved_env = dict(os.environ)
        cls.tmp = tempfile.mkdtemp(prefix="tern-gss-")
        cls.ccache = os.path.join(cls.tmp, "ccache")
        # ternd reads the keytab; this process is the Kerberos client with its own ccache
        os.environ.update(cls.fx.kdc.service_env())
        os.environ.update(cls.fx.kdc.env(ccache=cls.ccache))
        cls.node = ternlib.Node(conf=CONF)
        try:
            cls.node.start()
            bindpw = cls.node.write_file("bind.pw", dirfixture.SERVICE_PASSWORD + "\n")
            cls.node.ctl("directory", "set", D, "--type", "od",
                         "--server", "127.0.0.1:%d" % cls.fx.primary.ldap_port,
                         "--bind-dn", dirfixture.OD_SERVICE_DN, "--bind-password-file", bindpw,
                         "--base", dirfixture.OD_BASE, "--realm", dirfixture.REALM, "--auth", "bind")
            cls.node.wait_for(lambda: "alice" in {u["name"] for u in cls.node.ctl("user", "list", D)},
                              timeout=60, what="alice mapped")
            k = cls.fx.kdc.kinit("alice", U["alice"]["password"], ccache=cls.ccache)
            if k.returncode != 0:
                raise AssertionError("kinit alice: %s %s" % (k.stdout, k.stderr))
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()
        cls.fx.stop()
        os.environ.clear()
        os.environ.update(cls.saved_env)

    def imap(self):
        return imaplib.IMAP4("127.0.0.1", self.node.port(143), timeout=30)

    def gss_client(self, service):
        """A step function for the client side of RFC 4752 towards service@localhost,
        and its state: layer_done once the security layer negotiation has been answered."""
        name = gssapi.Name(service + "@localhost", gssapi.NameType.hostbased_service)
        ctx = gssapi.SecurityContext(name=name, usage="initiate")
        state = {"layer_done": False}

        def step(challenge):
            if not ctx.complete:
                return ctx.step(challenge or None) or b""
            if not challenge:            # the server's last empty challenge of the context
                return b""
            # RFC 4752 3.1: the server's 4 bytes (layers, max size); no layer, no authzid
            offer = ctx.unwrap(challenge).message
            self.assertEqual(len(offer), 4)
            self.assertTrue(offer[0] & 1, "the server offers no 'no security layer'")
            state["layer_done"] = True
            return ctx.wrap(struct.pack("!I", 0x01000000), False).message

        return step, state

    def deliver_to_alice(self):
        mark = "gss-%d-%d" % (os.getpid(), id(self))
        msg = "From: x@remote.test\r\nTo: alice@%s\r\nSubject: %s\r\n\r\nfor alice\r\n" % (D, mark)
        self.node.send_mail("x@remote.test", ["alice@" + D], msg)
        self.node.wait_message("alice@" + D, mark)
        return mark

    def test_imap_gssapi(self):
        mark = self.deliver_to_alice()
        c = self.imap()
        self.assertIn("AUTH=GSSAPI", c.capabilities)
        step, state = self.gss_client("imap")
        typ, _ = c.authenticate("GSSAPI", step)
        self.assertEqual(typ, "OK")
        self.assertTrue(state["layer_done"])
        typ, _ = c.select("INBOX")
        self.assertEqual(typ, "OK")
        typ, data = c.search(None, "SUBJECT", mark)
        self.assertEqual(typ, "OK")
        self.assertTrue(data[0].split(), "alice's message is not in the mailbox logged in to")
        c.logout()

    def test_pop3_gssapi(self):
        mark = self.deliver_to_alice()
        p = poplib.POP3("127.0.0.1", self.node.port(110), timeout=30)
        try:
            self.assertIn("GSSAPI", p.capa().get("SASL", []))
            step, state = self.gss_client("pop")
            # RFC 5034: "+ base64" challenges, one base64 line per answer, +OK at the end
            # (a -ERR raises poplib.error_proto)
            resp = p._shortcmd("AUTH GSSAPI")
            rounds = 0
            while resp == b"+" or resp.startswith(b"+ "):
                rounds += 1
                self.assertLess(rounds, 10, "the SASL exchange does not end")
                answer = step(base64.b64decode(resp[2:]))
                resp = p._shortcmd(base64.b64encode(answer).decode())
            self.assertTrue(resp.startswith(b"+OK"), resp)
            self.assertTrue(state["layer_done"])
            # logged in: the TRANSACTION state answers STAT, and the maildrop is alice's
            count, _ = p.stat()
            self.assertGreaterEqual(count, 1)
            subjects = [b"\n".join(p.top(i, 0)[1]) for i in range(1, count + 1)]
            self.assertTrue(any(mark.encode() in h for h in subjects),
                            "alice's message is not in the maildrop logged in to")
        finally:
            p.quit()

    def test_smtp_gssapi(self):
        s = smtplib.SMTP("127.0.0.1", self.node.port(587), timeout=30)
        try:
            s.ehlo()
            self.assertIn("GSSAPI", s.esmtp_features.get("auth", "").split())
            # submission wants AUTH first: the same MAIL FROM is refused before the login
            code, _ = s.mail("alice@" + D)
            self.assertGreaterEqual(code, 500)
            s.rset()
            step, state = self.gss_client("smtp")
            code, resp = s.docmd("AUTH", "GSSAPI")
            rounds = 0
            while code == 334:
                rounds += 1
                self.assertLess(rounds, 10, "the SASL exchange does not end")
                code, resp = s.docmd(base64.b64encode(step(base64.b64decode(resp))).decode())
            self.assertEqual(code, 235, resp)
            self.assertTrue(state["layer_done"])
            code, resp = s.mail("alice@" + D)
            self.assertEqual(code, 250, resp)
            code, resp = s.rcpt("bob@" + D)
            self.assertEqual(code, 250, resp)
            s.rset()
        finally:
            s.quit()

    def test_imap_gssapi_bad_token(self):
        c = self.imap()
        with self.assertRaises(imaplib.IMAP4.error):
            c.authenticate("GSSAPI", lambda ch: b"not a kerberos token")
        self.node.wait_for(lambda: "Failed IMAP login" in self.node.log_text("security"),
                           what="security.log line of the refused ticket")
        c.logout()

    def https(self, headers, method="GET", body=None):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        h = http.client.HTTPSConnection("127.0.0.1", self.node.port(4040), context=ctx, timeout=30)
        if body is not None:
            headers = dict(headers, **{"Content-Type": "application/json"})
        h.request(method, "/api/v1/domains", body=body, headers=headers)
        r = h.getresponse()
        body = r.read()
        h.close()
        return r, body

    def negotiate_header(self):
        name = gssapi.Name("HTTP@localhost", gssapi.NameType.hostbased_service)
        ctx = gssapi.SecurityContext(name=name, usage="initiate",
                                     mech=gssapi.OID.from_int_seq(SPNEGO))
        import base64
        return "Negotiate " + base64.b64encode(ctx.step()).decode()

    def test_admin_negotiate(self):
        r, _ = self.https({})
        self.assertEqual(r.status, 401)
        schemes = [v for k, v in r.getheaders() if k.lower() == "www-authenticate"]
        self.assertIn("Negotiate", schemes)
        self.assertTrue(any(s.startswith("Basic") for s in schemes))
        # alice's ticket is accepted with her rights from the directory (read-only):
        # she may read, not write, as with Basic
        self.assertEqual(self.node.ctl("user", "show", "alice@" + D)["rights"], "read-only")
        r, body = self.https({"Authorization": self.negotiate_header()})
        self.assertEqual(r.status, 200, body)
        self.assertIn(D.encode(), body)
        r, body = self.https({"Authorization": self.negotiate_header()}, method="POST",
                             body=b'{"name":"gss.test"}')
        self.assertEqual(r.status, 403, body)
        self.assertIn(b"read-only", body)
        # a garbage token is refused like a bad password
        r, _ = self.https({"Authorization": "Negotiate AAAA"})
        self.assertEqual(r.status, 401)

    def dav(self, headers):
        """PROPFIND of the principal on the DAV HTTPS port (8443 + base)."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        h = http.client.HTTPSConnection("127.0.0.1", self.node.port(8443), context=ctx, timeout=30)
        body = ('<?xml version="1.0" encoding="utf-8"?>\n<d:propfind xmlns:d="DAV:"><d:prop>'
                '<d:current-user-principal/></d:prop></d:propfind>')
        h.request("PROPFIND", "/dav/principals/", body=body,
                  headers=dict(headers, **{"Depth": "0", "Content-Type": "application/xml"}))
        r = h.getresponse()
        data = r.read()
        h.close()
        return r, data

    def test_dav_negotiate(self):
        r, _ = self.dav({})
        self.assertEqual(r.status, 401)
        schemes = [v for k, v in r.getheaders() if k.lower() == "www-authenticate"]
        self.assertIn("Negotiate", schemes)
        self.assertTrue(any(s.startswith("Basic") for s in schemes))
        # alice's ticket logs her in to CalDAV/CardDAV without a password
        r, body = self.dav({"Authorization": self.negotiate_header()})
        self.assertEqual(r.status, 207, body)
        self.assertIn(("/dav/principals/%s/alice/" % D).encode(), body)
        r, _ = self.dav({"Authorization": "Negotiate AAAA"})
        self.assertEqual(r.status, 401)
        self.assertIn("Failed DAV login", self.node.log_text("security"))


    def test_no_keytab_not_offered(self):
        conf = dict(CONF, directory=dict(CONF["directory"], keytab="FILE:" + os.path.join(self.tmp, "none.kt")))
        n = ternlib.Node(name="n2", conf=conf)
        try:
            n.start()
            n.wait_for(lambda: "Kerberos single sign-on" in n.log_text("warning"),
                       what="warning.log line of the missing keytab")
            self.assertEqual(n.log_text("warning").count("Kerberos single sign-on"), 1)
            c = imaplib.IMAP4("127.0.0.1", n.port(143), timeout=30)
            self.assertNotIn("AUTH=GSSAPI", c.capabilities)
            c.logout()
            r = n.run_ctl("status", json_out=False)
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            n.cleanup()

if __name__ == "__main__":
    unittest.main()
