#!/usr/bin/python3
"""IMAP basics (issue 4): CAPABILITY, STARTTLS on 143 and implicit TLS on 993, LOGIN good and
bad (security.log "Failed IMAP login from IP, <reason>"), AUTHENTICATE PLAIN (with and
without SASL-IR) and SCRAM-SHA-256 (the client of ternlib, server signature checked),
LOGINDISABLED before TLS when [security] auth_policy = encrypted, account lockout after
lockout_threshold failures and `ternctl user unlock`, the guide's default folders with
SPECIAL-USE attributes at first login, CREATE/RENAME/DELETE/SUBSCRIBE/LSUB/STATUS with the
"/" hierarchy and CHILDREN, NAMESPACE, ID, ENABLE CONDSTORE, GETQUOTAROOT, and the
operations.log lines of EXPUNGE, folder delete and folder rename."""
import base64
import imaplib
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402
from ternlib import imap_quote as q  # noqa: E402

D = "example.test"
ALICE = "alice@" + D
VICTIM = "victim@" + D
BOB = "bob@" + D
PW = ternlib.USER_PASSWORD
BAD = "wrong-password-9"
REQUIRED_CAPS = {"IMAP4REV1", "IDLE", "NAMESPACE", "UIDPLUS", "MOVE", "ID", "SPECIAL-USE", "CHILDREN",
                 "LITERAL+", "ENABLE", "UNSELECT", "SASL-IR", "CONDSTORE", "QUOTA"}
PRELOGIN_CAPS = {"IMAP4REV1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE"}
DEFAULT_FOLDERS = {"Sent Items": "\\Sent", "Drafts": "\\Drafts", "Deleted Items": "\\Trash",
                   "Junk E-mail": "\\Junk"}


def list_entries(untagged, kind="LIST"):
    """{name: (set of attributes, delimiter)} from '* LIST (attrs) "/" name' responses."""
    out = {}
    for u in ternlib.untagged_of(untagged, kind):
        toks = ternlib.imap_parse(u)
        attrs, delim, name = toks[2], toks[3], toks[4]
        if isinstance(name, bytes):
            name = name.decode()
        out[str(name)] = ({str(a).upper() for a in attrs}, delim.decode() if isinstance(delim, bytes) else delim)
    return out


def failed_logins(node, ip="127\\.0\\.0\\.1", reason=r"\S"):
    """security.log lines "Failed IMAP login from IP, <reason>" (guide ch. 24)."""
    return len(ternlib.log_lines(node, "security", r"Failed IMAP login from %s, %s" % (ip, reason)))


class ImapBasicTest(ternlib.NodeTestCase):
    NODE = "imapb1"
    DOMAIN = D
    CONF = {"server": {"hostname": "imap.example.test"}, "security": {"lockout_threshold": 0}}
    USERS = (ALICE, VICTIM, BOB)
    QUOTAS = {BOB: 5}

    # ---- capabilities and TLS ----

    def test_capability_before_login(self):
        r = self.raw()
        self.assertTrue(r.greeting.startswith(b"* OK"), r.greeting)
        caps = ternlib.imap_capabilities(r.ok("CAPABILITY"))
        # Before login a server may list fewer (RFC 3501 7.2.1; the full set is checked after
        # login): what a client needs to log in must be there.
        missing = PRELOGIN_CAPS - caps
        self.assertFalse(missing, "missing capabilities %s in %s" % (missing, caps))
        self.assertIn("STARTTLS", caps)
        self.assertIn("AUTH=PLAIN", caps)
        self.assertIn("AUTH=SCRAM-SHA-256", caps)
        self.assertNotIn("LOGINDISABLED", caps, "auth_policy is 'none'")
        # A CAPABILITY code in the greeting, when there is one, says the same.
        if b"[CAPABILITY" in r.greeting.upper():
            self.assertEqual(ternlib.imap_capabilities(r.greeting), caps)
        status, untagged, tagged = r.command("LOGOUT")
        self.assertEqual(status, "OK")
        self.assertTrue(ternlib.untagged_of(untagged, "BYE"), untagged)

    def test_capability_after_login(self):
        r = self.raw(ALICE)
        caps = ternlib.imap_capabilities(r.ok("CAPABILITY"))
        self.assertFalse(REQUIRED_CAPS - caps, caps)

    def test_starttls_on_143(self):
        r = self.raw()
        r.starttls()
        caps = ternlib.imap_capabilities(r.ok("CAPABILITY"))
        self.assertNotIn("STARTTLS", caps, "STARTTLS offered again inside TLS")
        status, _, tagged = r.command("STARTTLS")
        self.assertIn(status, ("BAD", "NO"), "a second STARTTLS: %r" % tagged)
        r.login(ALICE)
        r.select("INBOX")
        # imaplib's own STARTTLS too.
        c = self.imap(starttls=True)
        self.assertEqual(c.login(ALICE, PW)[0], "OK")
        self.assertEqual(c.select("INBOX")[0], "OK")

    def test_implicit_tls_on_993(self):
        c = self.imap(tls=True)
        self.assertIn("IMAP4REV1", c.capabilities)
        self.assertEqual(c.login(ALICE, PW)[0], "OK")
        typ, data = c.select("INBOX")
        self.assertEqual(typ, "OK")
        r = self.raw(tls=True)
        caps = ternlib.imap_capabilities(r.ok("CAPABILITY"))
        self.assertNotIn("STARTTLS", caps)
        self.assertNotIn("LOGINDISABLED", caps)

    def test_starttls_not_on_993_and_not_after_login(self):
        r = self.raw(ALICE)
        status, _, tagged = r.command("STARTTLS")
        self.assertIn(status, ("BAD", "NO"), "STARTTLS in the authenticated state: %r" % tagged)
        r.ok("NOOP")

    # ---- LOGIN and AUTHENTICATE ----

    def test_login_good_and_bad(self):
        c = self.imap()
        self.assertEqual(c.login(ALICE, PW)[0], "OK")
        self.assertEqual(c.state, "AUTH")
        before = failed_logins(self.node)
        before_bc = failed_logins(self.node, reason="bad credentials")
        r = self.raw()
        status, _, tagged = r.command("LOGIN %s %s" % (q(VICTIM), q(BAD)))
        self.assertEqual(status, "NO", tagged)
        status, _, tagged = r.command("LOGIN %s %s" % (q("nobody@" + D), q(BAD)))
        self.assertEqual(status, "NO", tagged)
        r.ok("NOOP")                       # still connected, still not authenticated
        status, _, tagged = r.command("SELECT INBOX")
        self.assertEqual(status, "BAD", "SELECT before login: %r" % tagged)
        self.node.wait_for(lambda: failed_logins(self.node) >= before + 2, 10,
                           "two 'Failed IMAP login from 127.0.0.1, <reason>' lines in security.log")
        self.assertGreaterEqual(failed_logins(self.node, reason="bad credentials") - before_bc, 2,
                                "the guide's reason for a wrong password is 'bad credentials'")
        with self.assertRaises(imaplib.IMAP4.error):
            self.imap().login(VICTIM, BAD)

    def test_login_literal_password(self):
        """A password sent as a literal (as clients do for passwords with specials)."""
        r = self.raw()
        r.send("l1 LOGIN %s {%d}\r\n" % (q(ALICE), len(PW)))
        self.assertTrue(r.response().startswith(b"+"))
        r.send(PW + "\r\n")
        status, _, tagged = r.read_tagged("l1")
        self.assertEqual(status, "OK", tagged)

    def test_authenticate_plain(self):
        c = self.imap()
        typ, data = c.authenticate("PLAIN", ternlib.imap_plain(ALICE, PW))
        self.assertEqual(typ, "OK", data)
        self.assertEqual(c.select("INBOX")[0], "OK")
        # SASL-IR: the initial response on the command line.
        r = self.raw()
        ir = base64.b64encode(("\0%s\0%s" % (ALICE, PW)).encode()).decode()
        status, _, tagged = r.command("AUTHENTICATE PLAIN " + ir)
        self.assertEqual(status, "OK", tagged)
        # Wrong password: NO, logged.
        before = failed_logins(self.node)
        r = self.raw()
        ir = base64.b64encode(("\0%s\0%s" % (VICTIM, BAD)).encode()).decode()
        status, _, tagged = r.command("AUTHENTICATE PLAIN " + ir)
        self.assertEqual(status, "NO", tagged)
        self.node.wait_for(lambda: failed_logins(self.node) > before, 10, "a failed AUTHENTICATE logged")
        # Cancelled by the client ("*"): BAD, and the session goes on.
        r.send("c1 AUTHENTICATE PLAIN\r\n")
        self.assertTrue(r.response().startswith(b"+"))
        r.send("*\r\n")
        status, _, tagged = r.read_tagged("c1")
        self.assertEqual(status, "BAD", tagged)
        r.ok("NOOP")
        # An unknown mechanism: NO or BAD.
        status, _, tagged = r.command("AUTHENTICATE X-UNKNOWN-MECH")
        self.assertIn(status, ("NO", "BAD"), tagged)

    def test_authenticate_scram_sha_256(self):
        c = self.imap()
        scram = ternlib.ScramSha256(ALICE, PW)
        typ, data = c.authenticate("SCRAM-SHA-256", scram)
        self.assertEqual(typ, "OK", data)
        self.assertTrue(scram.server_verified, "the server-final message (v=) was not sent or not checked")
        self.assertEqual(c.select("INBOX")[0], "OK")
        c2 = self.imap()
        with self.assertRaises(imaplib.IMAP4.error):
            c2.authenticate("SCRAM-SHA-256", ternlib.ScramSha256(VICTIM, BAD))

    # ---- folders ----

    def test_default_folders_with_special_use(self):
        user = ternlib.fresh_user(self.node, "fold")
        r = self.raw(user)
        entries = list_entries(r.ok('LIST "" "*"'))
        self.assertIn("INBOX", entries)
        for name, attr in DEFAULT_FOLDERS.items():
            self.assertIn(name, entries, "default folder %r missing: %s" % (name, sorted(entries)))
            self.assertIn(attr.upper(), entries[name][0], "%s lacks %s" % (name, attr))
            self.assertEqual(entries[name][1], "/")
        # The hierarchy delimiter: LIST "" "".
        toks = ternlib.imap_parse(ternlib.untagged_of(r.ok('LIST "" ""'), "LIST")[0])
        self.assertEqual(toks[3], b"/")
        self.assertIn("\\NOSELECT", {str(a).upper() for a in toks[2]})
        # Every default folder can be selected.
        for name in list(DEFAULT_FOLDERS) + ["INBOX", "inbox"]:
            r.select(name)
        # imaplib sees the same.
        c = self.imap(user)
        typ, data = c.list()
        self.assertEqual(typ, "OK")
        self.assertTrue(any(b'"Sent Items"' in d for d in data), data)

    def test_create_rename_delete_hierarchy(self):
        user = ternlib.fresh_user(self.node, "tree")
        r = self.raw(user)
        r.ok('CREATE "Projects/2026"')
        r.ok('CREATE "Projects/2025/"')          # trailing delimiter: the name without it
        entries = list_entries(r.ok('LIST "" "Projects*"'))
        self.assertEqual(set(entries), {"Projects", "Projects/2026", "Projects/2025"}, entries)
        self.assertIn("\\HASCHILDREN", entries["Projects"][0])
        self.assertIn("\\HASNOCHILDREN", entries["Projects/2026"][0])
        # % does not cross the delimiter, * does.
        self.assertEqual(set(list_entries(r.ok('LIST "" "%"'))) & {"Projects", "Projects/2026"}, {"Projects"})
        self.assertEqual(set(list_entries(r.ok('LIST "Projects/" "%"'))), {"Projects/2026", "Projects/2025"})
        status, _, tagged = r.command('CREATE "Projects/2026"')
        self.assertEqual(status, "NO", "CREATE of an existing folder: %r" % tagged)
        status, _, tagged = r.command("CREATE INBOX")
        self.assertEqual(status, "NO", tagged)
        # RENAME moves the subtree; the target's parents come into being.
        r.ok('CREATE "Projects/2026/Q1"')
        r.ok('RENAME "Projects/2026" "Archive/Old 2026"')
        names = set(list_entries(r.ok('LIST "" "*"')))
        self.assertIn("Archive/Old 2026", names)
        self.assertIn("Archive/Old 2026/Q1", names)
        self.assertNotIn("Projects/2026", names)
        self.assertNotIn("Projects/2026/Q1", names)
        status, _, tagged = r.command('RENAME "Archive/Old 2026" "Projects/2025"')
        self.assertEqual(status, "NO", "RENAME onto an existing folder: %r" % tagged)
        status, _, tagged = r.command('RENAME "No such" "Whatever"')
        self.assertEqual(status, "NO", tagged)
        # DELETE of a folder with inferiors never removes them (RFC 3501 6.3.4): refused, or the
        # folder emptied / made \Noselect.
        status, _, tagged = r.command('DELETE "Archive/Old 2026"')
        self.assertIn(status, ("OK", "NO"), tagged)
        self.assertIn("Archive/Old 2026/Q1", list_entries(r.ok('LIST "" "Archive*"')))
        r.ok('DELETE "Archive/Old 2026/Q1"')
        self.assertNotIn("Archive/Old 2026/Q1", list_entries(r.ok('LIST "" "*"')))
        status, _, tagged = r.command("DELETE INBOX")
        self.assertEqual(status, "NO", tagged)
        status, _, tagged = r.command('DELETE "Never existed"')
        self.assertEqual(status, "NO", tagged)
        status, _, tagged = r.command('SELECT "Never existed"')
        self.assertEqual(status, "NO", tagged)

    def test_modified_utf7_names(self):
        user = ternlib.fresh_user(self.node, "utf7")
        r = self.raw(user)
        r.ok('CREATE "Entw&APw-rfe"')                     # Entwürfe
        self.assertIn("Entw&APw-rfe", list_entries(r.ok('LIST "" "Entw*"')))
        r.select("Entw&APw-rfe")
        status, _, tagged = r.command('CREATE "bad&name"')  # not valid modified UTF-7
        self.assertIn(status, ("NO", "BAD"), tagged)

    def test_rename_inbox_moves_messages(self):
        user = ternlib.fresh_user(self.node, "rinbox")
        r = self.raw(user)
        for i in range(2):
            st, _, t = r.append("INBOX", ternlib.make_message("inbox-%d" % i))
            self.assertEqual(st, "OK", t)
        r.ok('RENAME INBOX "Old Inbox"')
        self.assertIn(b"MESSAGES 2", b"".join(r.ok('STATUS "Old Inbox" (MESSAGES)')))
        self.assertIn(b"MESSAGES 0", b"".join(r.ok("STATUS INBOX (MESSAGES)")))

    def test_subscribe_lsub(self):
        user = ternlib.fresh_user(self.node, "subs")
        r = self.raw(user)
        r.ok('CREATE "Lists/tern"')
        r.ok('SUBSCRIBE "Lists/tern"')
        entries = list_entries(r.ok('LSUB "" "*"'), "LSUB")
        self.assertIn("Lists/tern", entries)
        self.assertEqual(entries["Lists/tern"][1], "/")
        # LSUB with % and a subscribed child of an unsubscribed parent: \Noselect parent.
        lsub = list_entries(r.ok('LSUB "" "Lists"'), "LSUB")
        if "Lists" in lsub:
            self.assertIn("\\NOSELECT", lsub["Lists"][0])
        r.ok('UNSUBSCRIBE "Lists/tern"')
        self.assertNotIn("Lists/tern", list_entries(r.ok('LSUB "" "*"'), "LSUB"))
        # Subscribing to a name that does not exist is allowed by RFC 3501 (6.3.6: MAY).
        status, _, tagged = r.command('SUBSCRIBE "Not/There"')
        self.assertIn(status, ("OK", "NO"), tagged)

    def test_status(self):
        user = ternlib.fresh_user(self.node, "stat")
        r = self.raw(user)
        r.ok('CREATE "Box"')
        for i, flags in enumerate(("\\Seen", None, None)):
            st, _, t = r.append("Box", ternlib.make_message("st-%d" % i), flags=flags)
            self.assertEqual(st, "OK", t)
        st = ternlib.untagged_of(r.ok('STATUS "Box" (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)'), "STATUS")
        self.assertEqual(len(st), 1, st)
        toks = ternlib.imap_parse(st[0])
        self.assertEqual(ternlib.imap_norm(toks[2]), "Box")
        kv = dict(zip([str(x).upper() for x in toks[3][::2]], [int(x) for x in toks[3][1::2]]))
        self.assertEqual(kv["MESSAGES"], 3)
        self.assertEqual(kv["UNSEEN"], 2)
        self.assertEqual(kv["RECENT"], 3)
        self.assertGreaterEqual(kv["UIDNEXT"], 4)
        self.assertGreater(kv["UIDVALIDITY"], 0)
        status, _, tagged = r.command('STATUS "No box" (MESSAGES)')
        self.assertEqual(status, "NO", tagged)

    # ---- NAMESPACE, ID, ENABLE, QUOTA ----

    def test_namespace(self):
        r = self.raw(ALICE)
        ns = ternlib.untagged_of(r.ok("NAMESPACE"), "NAMESPACE")
        self.assertEqual(len(ns), 1, ns)
        toks = ternlib.imap_parse(ns[0])
        personal = toks[2]
        self.assertIsInstance(personal, list)
        self.assertEqual(personal[0][0], b"", "personal namespace prefix: %r" % ns[0])
        self.assertEqual(personal[0][1], b"/", "personal namespace delimiter: %r" % ns[0])

    def test_id(self):
        r = self.raw()
        ids = ternlib.untagged_of(r.ok('ID ("name" "ternlib" "version" "1")'), "ID")
        self.assertEqual(len(ids), 1)
        toks = ternlib.imap_parse(ids[0])
        self.assertTrue(toks[2] is None or isinstance(toks[2], list), ids[0])
        if isinstance(toks[2], list):
            self.assertEqual(len(toks[2]) % 2, 0)
        self.assertEqual(len(ternlib.untagged_of(r.ok("ID NIL"), "ID")), 1)

    def test_enable_condstore(self):
        r = self.raw(ALICE)
        enabled = ternlib.untagged_of(r.ok("ENABLE CONDSTORE"), "ENABLED")
        self.assertEqual(len(enabled), 1)
        self.assertIn(b"CONDSTORE", enabled[0].upper())
        untagged, _ = r.select("INBOX")
        self.assertTrue(any(re.search(rb"\[HIGHESTMODSEQ \d+\]", u) for u in untagged), untagged)
        # ENABLE before authentication is BAD (RFC 5161).
        r2 = self.raw()
        status, _, tagged = r2.command("ENABLE CONDSTORE")
        self.assertIn(status, ("BAD", "NO"), tagged)

    def test_getquotaroot(self):
        r = self.raw(BOB)
        st, _, t = r.append("INBOX", ternlib.make_message("quota-1", size=20000))
        self.assertEqual(st, "OK", t)
        untagged = r.ok("GETQUOTAROOT INBOX")
        roots = ternlib.untagged_of(untagged, "QUOTAROOT")
        self.assertEqual(len(roots), 1, untagged)
        toks = ternlib.imap_parse(roots[0])
        self.assertEqual(ternlib.imap_norm(toks[2]).upper(), "INBOX")
        self.assertGreaterEqual(len(toks), 4, "INBOX has no quota root: %r" % roots[0])
        root = toks[3].decode() if isinstance(toks[3], bytes) else str(toks[3])
        quotas = ternlib.untagged_of(untagged, "QUOTA")
        self.assertTrue(quotas, untagged)
        qt = ternlib.imap_parse(quotas[0])
        res = qt[3]
        storage = [res[i + 1:i + 3] for i in range(0, len(res), 3) if str(res[i]).upper() == "STORAGE"]
        self.assertTrue(storage, quotas[0])
        used, limit = int(storage[0][0]), int(storage[0][1])
        self.assertEqual(limit, 5 * 1024, "STORAGE limit in KiB of a 5 MB quota")
        self.assertGreaterEqual(used, 19)
        # GETQUOTA of that root answers the same.
        again = ternlib.untagged_of(r.ok("GETQUOTA %s" % q(root)), "QUOTA")
        self.assertEqual(len(again), 1)

    # ---- operations.log ----

    def test_operations_log_expunge_delete_rename(self):
        user = ternlib.fresh_user(self.node, "ops")
        local = user.split("@")[0]
        r = self.raw(user)
        msg = ternlib.make_message("ops-expunged", sender="carol@example.test",
                                   extra_headers=())
        msg = msg.replace(b"From: <carol@example.test>", b'From: "Carol C" <carol@example.test>')
        st, _, t = r.append("INBOX", msg)
        self.assertEqual(st, "OK", t)
        r.select("INBOX")
        r.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        r.ok("EXPUNGE")
        rx = (r"\{DELETE\} Protocol: IMAP, User: %s(@%s)?, IP: 127\.0\.0\.1, Folder: ~%s(@%s)?/(INBOX|Inbox), "
              r'From: "Carol C" <carol@example\.test>, Subject: "ops-expunged", '
              r"Delivered: \d\d/[A-Z][a-z]{2}/\d{4} \d\d:\d\d:\d\d, Size: %d"
              % (re.escape(local), re.escape(D), re.escape(local), re.escape(D), len(msg)))
        self.node.wait_for(lambda: ternlib.log_lines(self.node, "operations", rx), 10,
                           "the {DELETE} line of the EXPUNGE in operations.log:\n" + rx + "\n"
                           + self.node.log_text("operations")[-800:])
        # Folder rename with two messages, then delete.
        r.ok('CREATE "Old"')
        for i in range(2):
            st, _, t = r.append("Old", ternlib.make_message("ops-mv-%d" % i))
            self.assertEqual(st, "OK", t)
        r.ok('RENAME "Old" "New"')
        rx = (r"\{MOVE_FOLDER\} Protocol: IMAP, User: %s(@%s)?, IP: 127\.0\.0\.1, Old location: \S*Old, "
              r"New location: \S*New, Items count: 2" % (re.escape(local), re.escape(D)))
        self.node.wait_for(lambda: ternlib.log_lines(self.node, "operations", rx), 10,
                           "the {MOVE_FOLDER} line in operations.log:\n" + rx + "\n"
                           + self.node.log_text("operations")[-800:])
        r.ok('DELETE "New"')
        rx = r"\{DELETE_FOLDER\} Folder: ~%s(@%s)?/New deleted" % (re.escape(local), re.escape(D))
        self.node.wait_for(lambda: ternlib.log_lines(self.node, "operations", rx), 10,
                           "the {DELETE_FOLDER} line in operations.log:\n" + rx + "\n"
                           + self.node.log_text("operations")[-800:])


class ImapPolicyTest(ternlib.NodeTestCase):
    """auth_policy = encrypted (LOGINDISABLED before TLS) and the lockout (threshold 3)."""
    NODE = "imapb2"
    DOMAIN = D
    CONF = {"server": {"hostname": "imap.example.test"},
            "security": {"auth_policy": "encrypted", "lockout_threshold": 3, "lockout_seconds": 600}}
    USERS = (ALICE, VICTIM)

    def test_logindisabled_before_tls(self):
        r = self.raw()
        caps = ternlib.imap_capabilities(r.ok("CAPABILITY"))
        self.assertIn("LOGINDISABLED", caps)
        self.assertIn("STARTTLS", caps)
        self.assertNotIn("AUTH=PLAIN", caps, "PLAIN offered on a plaintext connection under 'encrypted'")
        status, _, tagged = r.command("LOGIN %s %s" % (q(ALICE), q(PW)))
        self.assertIn(status, ("NO", "BAD"), "LOGIN without TLS: %r" % tagged)
        ir = base64.b64encode(("\0%s\0%s" % (ALICE, PW)).encode()).decode()
        status, _, tagged = r.command("AUTHENTICATE PLAIN " + ir)
        self.assertIn(status, ("NO", "BAD"), "AUTHENTICATE PLAIN without TLS: %r" % tagged)
        r.starttls()
        caps = ternlib.imap_capabilities(r.ok("CAPABILITY"))
        self.assertNotIn("LOGINDISABLED", caps)
        self.assertIn("AUTH=PLAIN", caps)
        r.login(ALICE)
        r.select("INBOX")
        c = self.imap(tls=True)
        self.assertNotIn("LOGINDISABLED", c.capabilities)
        self.assertEqual(c.login(ALICE, PW)[0], "OK")

    def test_lockout_and_unlock(self):
        src = "127.0.0.2"
        before = failed_logins(self.node, r"127\.0\.0\.2")
        for i in range(3):
            r = self.raw(tls=True, source=src)
            status, _, tagged = r.command("LOGIN %s %s" % (q(VICTIM), q(BAD)))
            self.assertEqual(status, "NO", tagged)
            r.close()
        self.node.wait_for(lambda: failed_logins(self.node, r"127\.0\.0\.2") >= before + 3, 10,
                           "three failed logins in security.log")
        r = self.raw(tls=True, source=src)
        status, _, tagged = r.command("LOGIN %s %s" % (q(VICTIM), q(PW)))
        self.assertEqual(status, "NO", "the right password of a locked account: %r" % tagged)
        r.close()
        c = self.imap(tls=True, source=src)
        with self.assertRaises(imaplib.IMAP4.error):
            c.authenticate("PLAIN", ternlib.imap_plain(VICTIM, PW))
        self.node.ctl("user", "unlock", VICTIM)
        r = self.raw(tls=True, source=src)
        r.login(VICTIM)
        r.select("INBOX")
        # Another account is not affected by the victim's lock.
        self.raw(ALICE, tls=True, source=src)


if __name__ == "__main__":
    ternlib.main()
