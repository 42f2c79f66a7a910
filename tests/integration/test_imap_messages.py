#!/usr/bin/python3
"""IMAP message commands (issue 4, RFC 3501 and extensions): APPEND with flags and date
(APPENDUID, LITERAL+, TRYCREATE), SELECT/EXAMINE responses, FETCH of FLAGS, UID,
INTERNALDATE, RFC822.SIZE, ENVELOPE, BODY[], BODY.PEEK[HEADER.FIELDS (SUBJECT)],
BODY[1]<0.10>, BODY[TEXT], RFC822.* (\\Seen set by BODY[] and not by PEEK), STORE (+FLAGS,
-FLAGS, FLAGS.SILENT, keywords), SEARCH (many keys, UID SEARCH, CHARSET UTF-8 with a
non-ASCII term, case-insensitive), COPY (COPYUID), MOVE, EXPUNGE, UID EXPUNGE, CLOSE,
UNSELECT, quota on APPEND and COPY ([OVERQUOTA]), CONDSTORE (MODSEQ, UNCHANGEDSINCE,
CHANGEDSINCE, HIGHESTMODSEQ)."""
import imaplib
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

D = "example.test"
PW = ternlib.USER_PASSWORD

ENV_MSG = (b'Date: Tue, 03 Nov 2026 11:22:33 +0100\r\n'
           b'From: "Alice A." <alice@example.test>\r\n'
           b'To: bob@example.test, "Carol" <carol@example.test>\r\n'
           b'Cc: dave@example.test\r\n'
           b'Subject: envelope test\r\n'
           b'Message-ID: <env-1@example.test>\r\n'
           b'In-Reply-To: <parent@example.test>\r\n'
           b'X-Extra: not in the envelope\r\n'
           b'\r\n'
           b'First line of the body.\r\n'
           b'Second line.\r\n')
ENV_HEADER, ENV_BODY = ENV_MSG.split(b"\r\n\r\n", 1)
ENV_HEADER += b"\r\n\r\n"


def codes(untagged):
    """{CODE: rest} of the '* OK [CODE rest]' responses."""
    out = {}
    for u in untagged:
        m = re.match(rb"^\* OK \[([A-Z0-9.-]+)(?: ([^\]]*))?\]", u, re.I)
        if m:
            out[m.group(1).decode().upper()] = (m.group(2) or b"").decode()
    return out


def numbered(untagged, kind):
    """[N] of the '* N KIND' responses, in order."""
    return [int(m.group(1)) for u in untagged
            for m in [re.match(rb"^\* (\d+) " + kind.encode() + rb"\b", u, re.I)] if m]


def idate(value):
    """An INTERNALDATE with the day as two digits (RFC 3501 allows " 5-Nov-..." and "05-Nov-...")."""
    return b"0" + value[1:] if value.startswith(b" ") else value


def flags_of(value):
    return {str(f) for f in value}


def search_result(untagged):
    """The numbers of the '* SEARCH' response (exactly one expected); MODSEQ dropped."""
    s = ternlib.untagged_of(untagged, "SEARCH")
    if len(s) != 1:
        raise AssertionError("expected one * SEARCH response: %r" % untagged)
    text = re.sub(rb"\(MODSEQ \d+\)", b"", s[0])
    return sorted(int(x) for x in text.split()[2:])


class ImapMessagesTest(ternlib.NodeTestCase):
    NODE = "imapm1"
    DOMAIN = D
    CONF = {"server": {"hostname": "imap.example.test"}, "security": {"lockout_threshold": 0},
            "smtpd": {"max_msgs_per_hour_per_ip": 0}}

    def user(self, quota_mb=None):
        return ternlib.fresh_user(self.node, "m", quota_mb=quota_mb)

    def append_ok(self, r, box, msg, flags=None, date=None):
        """APPEND that must succeed; returns the new UID from APPENDUID."""
        st, _, tagged = r.append(box, msg, flags=flags, date=date)
        self.assertEqual(st, "OK", tagged)
        m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", tagged, re.I)
        self.assertIsNotNone(m, "no APPENDUID in %r" % tagged)
        return int(m.group(2))

    # ---- APPEND, SELECT, EXAMINE ----

    def test_append_flags_date_appenduid(self):
        r = self.raw(self.user())
        uid1 = self.append_ok(r, "INBOX", ENV_MSG, flags="\\Flagged $Work", date="05-Nov-2026 10:00:00 +0000")
        st, _, tagged = r.append("INBOX", ternlib.make_message("literal-plus"), nonsync=True)
        self.assertEqual(st, "OK", tagged)
        uid2 = int(re.search(rb"\[APPENDUID \d+ (\d+)\]", tagged).group(1))
        self.assertGreater(uid2, uid1)
        untagged, _ = r.select("INBOX")
        self.assertEqual(numbered(untagged, "EXISTS"), [2])
        f = r.fetch("1", "(FLAGS INTERNALDATE UID RFC822.SIZE)")[1]
        self.assertEqual(int(f["UID"]), uid1)
        self.assertLessEqual({"\\Flagged", "$Work"}, flags_of(f["FLAGS"]))
        self.assertNotIn("\\Seen", flags_of(f["FLAGS"]))
        self.assertEqual(idate(f["INTERNALDATE"]), b"05-Nov-2026 10:00:00 +0000")
        self.assertEqual(int(f["RFC822.SIZE"]), len(ENV_MSG))
        # UIDVALIDITY of APPENDUID is the folder's.
        st, _, tagged = r.append("INBOX", ternlib.make_message("third"))
        m = re.search(rb"\[APPENDUID (\d+) \d+\]", tagged)
        self.assertEqual(m.group(1).decode(), codes(untagged)["UIDVALIDITY"])
        # A missing folder: NO [TRYCREATE].
        st, _, tagged = r.append("No such folder", ternlib.make_message("x"))
        self.assertEqual(st, "NO")
        self.assertIn(b"[TRYCREATE]", tagged.upper())
        # A bad date or flag: BAD.
        st, _, tagged = r.append("INBOX", ternlib.make_message("x"), date="31-Foo-2026 99:00:00 +0000")
        self.assertEqual(st, "BAD", tagged)
        # imaplib's append.
        c = self.imap(self.user())
        typ, data = c.append("INBOX", "(\\Seen)", imaplib.Time2Internaldate(1700000000), ternlib.make_message("via imaplib"))
        self.assertEqual(typ, "OK", data)
        typ, data = c.select("INBOX")
        self.assertEqual(data, [b"1"])

    def test_select_and_examine(self):
        r = self.raw(self.user())
        for i in range(3):
            self.append_ok(r, "INBOX", ternlib.make_message("sel-%d" % i), flags="\\Seen" if i == 0 else None)
        untagged, tagged = r.select("INBOX")
        self.assertEqual(numbered(untagged, "EXISTS"), [3])
        self.assertEqual(len(numbered(untagged, "RECENT")), 1)
        c = codes(untagged)
        for code in ("UIDVALIDITY", "UIDNEXT", "PERMANENTFLAGS"):
            self.assertIn(code, c, untagged)
        self.assertEqual(c.get("UNSEEN"), "2", "first unseen message number")
        self.assertGreaterEqual(int(c["UIDNEXT"]), 4)
        self.assertIn("\\*", c["PERMANENTFLAGS"])
        fl = [u for u in untagged if re.match(rb"^\* FLAGS ", u)]
        self.assertEqual(len(fl), 1)
        for f in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"):
            self.assertIn(f.encode(), fl[0])
        self.assertIn(b"[READ-WRITE]", tagged.upper())
        # EXAMINE: read-only; BODY[] does not set \Seen, STORE is refused.
        untagged, tagged = r.select("INBOX", examine=True)
        self.assertIn(b"[READ-ONLY]", tagged.upper())
        self.assertEqual(numbered(untagged, "EXISTS"), [3])
        r.fetch("2", "BODY[]")
        st, _, t = r.command("STORE 2 +FLAGS (\\Flagged)")
        self.assertIn(st, ("NO", "OK"), t)       # NO per RFC 3501; Dovecot says OK and ignores it
        f = r.fetch("2", "FLAGS")[2]
        self.assertNotIn("\\Seen", flags_of(f["FLAGS"]))
        self.assertNotIn("\\Flagged", flags_of(f["FLAGS"]), "STORE changed a read-only folder")
        # A failed SELECT leaves no folder selected.
        st, _, t = r.command('SELECT "Missing"')
        self.assertEqual(st, "NO")
        st, _, t = r.command("FETCH 1 FLAGS")
        self.assertEqual(st, "BAD", "FETCH with nothing selected: %r" % t)

    # ---- FETCH ----

    def test_fetch_items(self):
        r = self.raw(self.user())
        uid = self.append_ok(r, "INBOX", ENV_MSG, date="03-Nov-2026 10:22:33 +0000")
        r.select("INBOX")
        f = r.fetch("1", "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)")[1]
        self.assertEqual(int(f["UID"]), uid)
        self.assertEqual(idate(f["INTERNALDATE"]), b"03-Nov-2026 10:22:33 +0000")
        self.assertEqual(int(f["RFC822.SIZE"]), len(ENV_MSG))
        env = ternlib.imap_norm(f["ENVELOPE"])
        alice = [["Alice A.", None, "alice", "example.test"]]
        self.assertEqual(env, [
            "Tue, 03 Nov 2026 11:22:33 +0100", "envelope test", alice, alice, alice,
            [[None, None, "bob", "example.test"], ["Carol", None, "carol", "example.test"]],
            [[None, None, "dave", "example.test"]], None, "<parent@example.test>", "<env-1@example.test>"])
        # Sections.
        f = r.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[1]<0.10> BODY.PEEK[TEXT] "
                         "BODY.PEEK[HEADER] BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT X-EXTRA)])")[1]
        self.assertEqual(f["BODY[HEADER.FIELDS (SUBJECT)]"], b"Subject: envelope test\r\n\r\n")
        self.assertEqual(f["BODY[1]<0>"], ENV_BODY[:10])
        self.assertEqual(f["BODY[TEXT]"], ENV_BODY)
        self.assertEqual(f["BODY[HEADER]"], ENV_HEADER)
        notf = f["BODY[HEADER.FIELDS.NOT (SUBJECT X-EXTRA)]"]
        self.assertNotIn(b"Subject:", notf)
        self.assertNotIn(b"X-Extra:", notf)
        self.assertIn(b"Message-ID: <env-1@example.test>\r\n", notf)
        self.assertTrue(notf.endswith(b"\r\n\r\n"))
        # PEEK left \Seen alone.
        self.assertNotIn("\\Seen", flags_of(r.fetch("1", "FLAGS")[1]["FLAGS"]))
        # Partial beyond the end: empty. Partial in the middle: the slice.
        f = r.fetch("1", "(BODY.PEEK[]<5.10> BODY.PEEK[]<100000.10>)")[1]
        self.assertEqual(f["BODY[]<5>"], ENV_MSG[5:15])
        self.assertEqual(f["BODY[]<100000>"], b"")
        # BODY[] sets \Seen and the FETCH response carries the new FLAGS.
        untagged = r.ok("FETCH 1 BODY[]")
        merged = {}
        for u in untagged:
            if b" FETCH " in u:
                merged.update(ternlib.fetch_items(u))
        self.assertEqual(merged["BODY[]"], ENV_MSG)
        self.assertIn("\\Seen", flags_of(merged.get("FLAGS", [])), "no FLAGS (\\Seen) with BODY[]: %r" % untagged)
        # RFC822 forms.
        f = r.fetch("1", "(RFC822.HEADER RFC822.TEXT)")[1]
        self.assertEqual(f["RFC822.HEADER"], ENV_HEADER)
        self.assertEqual(f["RFC822.TEXT"], ENV_BODY)
        f = r.fetch("1", "RFC822")[1]
        self.assertEqual(f["RFC822"], ENV_MSG)
        # Macros.
        f = r.fetch("1", "FAST")[1]
        self.assertEqual(set(f), {"FLAGS", "INTERNALDATE", "RFC822.SIZE"})
        f = r.fetch("1", "ALL")[1]
        self.assertEqual(set(f), {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"})
        f = r.fetch("1", "FULL")[1]
        self.assertEqual(set(f), {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"})
        # UID FETCH always returns UID.
        f = r.fetch(str(uid), "FLAGS", uid=True)[1]
        self.assertEqual(int(f["UID"]), uid)
        # Non-existent UIDs: OK with nothing; non-existent sequence number: BAD or NO.
        self.assertEqual(r.fetch("%d:%d" % (uid + 100, uid + 200), "FLAGS", uid=True), {})
        st, _, t = r.command("FETCH 7 FLAGS")
        self.assertIn(st, ("BAD", "NO"), t)

    def test_imaplib_fetch_and_peek(self):
        user = self.user()
        c = self.imap(user)
        c.append("INBOX", None, None, ENV_MSG)
        c.select("INBOX")
        typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0][1], b"Subject: envelope test\r\n\r\n")
        typ, data = c.fetch("1", "(FLAGS)")
        self.assertNotIn(b"\\Seen", data[0])
        typ, data = c.fetch("1", "(BODY[])")
        self.assertEqual(data[0][1], ENV_MSG)
        typ, data = c.fetch("1", "(FLAGS)")
        self.assertIn(b"\\Seen", data[0])

    # ---- STORE ----

    def test_store(self):
        r = self.raw(self.user())
        for i in range(3):
            self.append_ok(r, "INBOX", ternlib.make_message("store-%d" % i))
        r.select("INBOX")
        untagged = r.ok("STORE 1:2 +FLAGS (\\Flagged $Label1)")
        got = {int(u.split()[1]): flags_of(ternlib.fetch_items(u)["FLAGS"]) for u in untagged if b" FETCH " in u}
        self.assertEqual(set(got), {1, 2})
        for n in (1, 2):
            self.assertLessEqual({"\\Flagged", "$Label1"}, got[n])
        untagged = r.ok("STORE 1 -FLAGS (\\Flagged)")
        f = [ternlib.fetch_items(u) for u in untagged if b" FETCH " in u]
        self.assertEqual(len(f), 1)
        self.assertNotIn("\\Flagged", flags_of(f[0]["FLAGS"]))
        self.assertIn("$Label1", flags_of(f[0]["FLAGS"]))
        # .SILENT: no FETCH response for the change itself.
        untagged = r.ok("STORE 3 FLAGS.SILENT (\\Answered \\Draft custom-kw)")
        self.assertFalse([u for u in untagged if b" FETCH " in u], untagged)
        f = r.fetch("3", "FLAGS")[3]
        self.assertEqual(flags_of(f["FLAGS"]) - {"\\Recent"}, {"\\Answered", "\\Draft", "custom-kw"})
        # FLAGS replaces.
        r.ok("STORE 3 FLAGS (\\Seen)")
        self.assertEqual(flags_of(r.fetch("3", "FLAGS")[3]["FLAGS"]) - {"\\Recent"}, {"\\Seen"})
        # UID STORE answers with UID.
        uid = int(r.fetch("2", "UID")[2]["UID"])
        untagged = r.ok("UID STORE %d +FLAGS (\\Deleted)" % uid)
        f = [ternlib.fetch_items(u) for u in untagged if b" FETCH " in u]
        self.assertEqual(int(f[0]["UID"]), uid)
        # An unknown system flag is refused.
        st, _, t = r.command("STORE 1 +FLAGS (\\Bogus)")
        self.assertIn(st, ("BAD", "NO"), t)
        # Keywords may be created: PERMANENTFLAGS has \* (listing keywords in FLAGS is optional).
        untagged, _ = r.select("INBOX")
        self.assertIn("\\*", codes(untagged)["PERMANENTFLAGS"])
        # imaplib's store.
        c = self.imap(self.user())
        c.append("INBOX", None, None, ternlib.make_message("x"))
        c.select("INBOX")
        typ, data = c.store("1", "+FLAGS", "(\\Flagged)")
        self.assertEqual(typ, "OK")
        self.assertIn(b"\\Flagged", data[0])

    # ---- SEARCH ----

    def fill_search_box(self, r):
        msgs = [
            (ternlib.make_message("Quarterly report", sender="boss@example.test", to="team@example.test",
                                  body="Numbers are up.\r\n", extra_headers=("Cc: cfo@example.test",)),
             "\\Seen \\Answered", "01-Jan-2026 10:00:00 +0000"),
            (ternlib.make_message("Lunch tomorrow?", sender="friend@example.test", to="me@example.test",
                                  body="Pizza or sushi?\r\n", size=5000),
             "\\Flagged", "15-Feb-2026 12:00:00 +0000"),
            (b"From: =?UTF-8?Q?J=C3=BCrgen?= <juergen@example.test>\r\nTo: me@example.test\r\n"
             b"Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?=\r\n"
             b"Date: Sun, 01 Mar 2026 09:00:00 +0100\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
             b"X-Project: Tern\r\n\r\nDas Stra=C3=9Fenfest in M=C3=BCnchen.\r\n",
             "$Important", "01-Mar-2026 08:00:00 +0000"),
            (ternlib.make_message("Draft reply", sender="me@example.test", to="boss@example.test",
                                  body="Unfinished\r\n"),
             "\\Draft \\Deleted", "20-Mar-2026 18:00:00 +0000"),
        ]
        uids = [self.append_ok(r, "INBOX", m, flags=f, date=d) for m, f, d in msgs]
        r.select("INBOX")
        return uids

    def search(self, r, keys, uid=False):
        return search_result(r.ok("%sSEARCH %s" % ("UID " if uid else "", keys)))

    def test_search_keys(self):
        r = self.raw(self.user())
        uids = self.fill_search_box(r)
        s = lambda k: self.search(r, k)  # noqa: E731
        self.assertEqual(s("ALL"), [1, 2, 3, 4])
        self.assertEqual(s('SUBJECT "report"'), [1])
        self.assertEqual(s('SUBJECT "QUARTERLY"'), [1], "SUBJECT is case-insensitive")
        self.assertEqual(s('FROM "boss@"'), [1])
        self.assertEqual(s("TO me@example.test"), [2, 3])
        self.assertEqual(s("CC cfo"), [1])
        self.assertEqual(s('BODY "sushi"'), [2])
        self.assertEqual(s('TEXT "pizza"'), [2], "TEXT searches the body, case-insensitively")
        self.assertEqual(s('TEXT "lunch"'), [2], "TEXT searches the header too")
        self.assertEqual(s('HEADER X-Project "tern"'), [3])
        self.assertEqual(s('HEADER X-Project ""'), [3], "HEADER with an empty string: the field exists")
        self.assertEqual(s("SEEN"), [1])
        self.assertEqual(s("UNSEEN"), [2, 3, 4])
        self.assertEqual(s("ANSWERED"), [1])
        self.assertEqual(s("UNANSWERED"), [2, 3, 4])
        self.assertEqual(s("FLAGGED"), [2])
        self.assertEqual(s("DELETED"), [4])
        self.assertEqual(s("UNDELETED"), [1, 2, 3])
        self.assertEqual(s("DRAFT"), [4])
        self.assertEqual(s("KEYWORD $Important"), [3])
        self.assertEqual(s("UNKEYWORD $Important"), [1, 2, 4])
        self.assertEqual(s("LARGER 4000"), [2])
        self.assertEqual(s("SMALLER 4000"), [1, 3, 4])
        self.assertEqual(s("BEFORE 15-Feb-2026"), [1])
        self.assertEqual(s("ON 15-Feb-2026"), [2])
        self.assertEqual(s("SINCE 01-Mar-2026"), [3, 4])
        self.assertEqual(s("SENTON 01-Mar-2026"), [3], "SENTON uses the Date: header (its own zone)")
        self.assertEqual(s("SENTBEFORE 01-Jan-2000"), [])
        self.assertEqual(s("NOT SEEN"), [2, 3, 4])
        self.assertEqual(s("OR FLAGGED ANSWERED"), [1, 2])
        self.assertEqual(s("2:3"), [2, 3])
        self.assertEqual(s("UID %d,%d" % (uids[0], uids[3])), [1, 4])
        self.assertEqual(s("(OR SEEN FLAGGED) LARGER 1000"), [2])
        self.assertEqual(s("RECENT"), [1, 2, 3, 4])
        self.assertEqual(s("NEW"), [2, 3, 4])
        self.assertEqual(s("OLD"), [])
        self.assertEqual(s("1:* NOT DELETED SUBJECT tomorrow"), [2])
        self.assertEqual(s('SUBJECT "no such words"'), [])
        # UID SEARCH answers UIDs.
        self.assertEqual(self.search(r, "FLAGGED", uid=True), [uids[1]])
        self.assertEqual(self.search(r, "UID %d:*" % uids[2], uid=True), [uids[2], uids[3]])
        # A bad key: BAD.
        st, _, t = r.command("SEARCH NOSUCHKEY")
        self.assertEqual(st, "BAD", t)
        st, _, t = r.command("SEARCH BEFORE 99-Xyz-2026")
        self.assertEqual(st, "BAD", t)

    def test_search_charset_utf8(self):
        r = self.raw(self.user())
        self.fill_search_box(r)

        def lit_search(key, term, charset="UTF-8"):
            data = term.encode("utf-8")
            tag = r.next_tag()
            r.send("%s SEARCH CHARSET %s %s {%d}\r\n" % (tag, charset, key, len(data)))
            cont = r.response()
            if not cont.startswith(b"+"):
                return cont, []
            r.send(data + b"\r\n")
            st, untagged, tagged = r.read_tagged(tag)
            self.assertEqual(st, "OK", tagged)
            return tagged, search_result(untagged)

        self.assertEqual(lit_search("SUBJECT", "Grüße")[1], [3], "encoded-word subject, UTF-8 term")
        self.assertEqual(lit_search("SUBJECT", "MÜNCHEN")[1], [3], "non-ASCII case-insensitive")
        self.assertEqual(lit_search("BODY", "Straßenfest")[1], [3], "quoted-printable UTF-8 body")
        self.assertEqual(lit_search("FROM", "Jürgen")[1], [3])
        self.assertEqual(lit_search("TEXT", "münchen")[1], [3])
        self.assertEqual(self.search(r, 'CHARSET US-ASCII SUBJECT "lunch"'), [2])
        # imaplib: search with a charset and a literal.
        c = self.imap(self.user())
        c.append("INBOX", None, None, b"Subject: =?ISO-8859-1?Q?Caf=E9?=\r\n\r\ncr\xe8me\r\n")
        c.select("INBOX")
        c.literal = "café".encode()
        typ, data = c.search("UTF-8", "SUBJECT")
        self.assertEqual((typ, data), ("OK", [b"1"]))
        # An unknown charset: tagged NO [BADCHARSET] (RFC 3501 6.4.4: "NO ..., not a BAD").
        st, _, tagged = r.command('SEARCH CHARSET X-NO-SUCH-CHARSET SUBJECT "x"')
        self.assertEqual(st, "NO", tagged)
        self.assertIn(b"[BADCHARSET", tagged.upper())

    # ---- COPY, MOVE, EXPUNGE, CLOSE, UNSELECT ----

    def test_copy_and_move(self):
        r = self.raw(self.user())
        uids = [self.append_ok(r, "INBOX", ternlib.make_message("cm-%d" % i), flags="\\Flagged" if i == 1 else None)
                for i in range(4)]
        r.ok('CREATE "Dest"')
        r.select("INBOX")
        st, untagged, tagged = r.command('COPY 1:2 "Dest"')
        self.assertEqual(st, "OK", tagged)
        m = re.search(rb"\[COPYUID (\d+) ([0-9:,]+) ([0-9:,]+)\]", tagged)
        self.assertIsNotNone(m, "no COPYUID: %r" % tagged)
        self.assertEqual(expand(m.group(2)), uids[:2])
        dest_uids = expand(m.group(3))
        self.assertEqual(len(dest_uids), 2)
        st, _, tagged = r.command('COPY 1 "Missing"')
        self.assertEqual(st, "NO")
        self.assertIn(b"[TRYCREATE]", tagged.upper())
        # MOVE: COPYUID in an untagged OK, EXPUNGE for the moved messages.
        st, untagged, tagged = r.command('UID MOVE %d "Dest"' % uids[2])
        self.assertEqual(st, "OK", tagged)
        self.assertTrue(any(b"[COPYUID" in u.upper() for u in untagged + [tagged]), untagged)
        self.assertEqual(numbered(untagged, "EXPUNGE"), [3])
        st, untagged, tagged = r.command('MOVE 1 "Dest"')
        self.assertEqual(st, "OK", tagged)
        self.assertEqual(numbered(untagged, "EXPUNGE"), [1])
        f = r.fetch("1:*", "UID")
        self.assertEqual(sorted(int(v["UID"]) for v in f.values()), [uids[1], uids[3]])
        # The destination has four messages, flags kept by COPY.
        r.select("Dest")
        f = r.fetch("1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects = sorted(v["BODY[HEADER.FIELDS (SUBJECT)]"].strip() for v in f.values())
        self.assertEqual(subjects, [b"Subject: cm-0", b"Subject: cm-0", b"Subject: cm-1", b"Subject: cm-2"])
        flagged = [v for v in f.values() if b"cm-1" in v["BODY[HEADER.FIELDS (SUBJECT)]"]]
        self.assertIn("\\Flagged", flags_of(flagged[0]["FLAGS"]))
        self.assertTrue(set(dest_uids) <= {int(v["UID"]) for v in f.values()})

    def test_expunge_numbering(self):
        r = self.raw(self.user())
        uids = [self.append_ok(r, "INBOX", ternlib.make_message("ex-%d" % i)) for i in range(6)]
        r.select("INBOX")
        r.ok("STORE 2,4,5 +FLAGS.SILENT (\\Deleted)")
        untagged = r.ok("EXPUNGE")
        seq = list(uids)
        for n in numbered(untagged, "EXPUNGE"):
            del seq[n - 1]
        self.assertEqual(seq, [uids[0], uids[2], uids[5]], "EXPUNGE responses %r" % untagged)
        f = r.fetch("1:*", "UID")
        self.assertEqual([int(f[n]["UID"]) for n in sorted(f)], [uids[0], uids[2], uids[5]])
        # UID EXPUNGE removes only the given UIDs among the \Deleted.
        r.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
        untagged = r.ok("UID EXPUNGE %d" % uids[2])
        self.assertEqual(numbered(untagged, "EXPUNGE"), [2])
        f = r.fetch("1:*", "UID")
        self.assertEqual(sorted(int(v["UID"]) for v in f.values()), [uids[0], uids[5]])
        # UNSELECT does not expunge; CLOSE does, silently.
        r.ok("UNSELECT")
        st, _, t = r.command("FETCH 1 FLAGS")
        self.assertEqual(st, "BAD", t)
        untagged, _ = r.select("INBOX")
        self.assertEqual(numbered(untagged, "EXISTS"), [2])
        untagged = r.ok("CLOSE")
        self.assertFalse(numbered(untagged, "EXPUNGE"), "CLOSE sends no EXPUNGE: %r" % untagged)
        untagged, _ = r.select("INBOX")
        self.assertEqual(numbered(untagged, "EXISTS"), [0])
        # CLOSE of an EXAMINEd folder does not expunge.
        self.append_ok(r, "INBOX", ternlib.make_message("ex-keep"), flags="\\Deleted")
        r.select("INBOX", examine=True)
        r.ok("CLOSE")
        untagged, _ = r.select("INBOX")
        self.assertEqual(numbered(untagged, "EXISTS"), [1])
        # UIDs are never reused.
        uid = self.append_ok(r, "INBOX", ternlib.make_message("ex-new"))
        self.assertGreater(uid, uids[-1])

    def test_quota_on_append_and_copy(self):
        r = self.raw(self.user(quota_mb=1))
        big = ternlib.make_message("quota-big", size=600 * 1024)
        self.append_ok(r, "INBOX", big)
        st, _, tagged = r.append("INBOX", big)
        self.assertEqual(st, "NO", tagged)
        self.assertIn(b"[OVERQUOTA]", tagged.upper())
        r.ok('CREATE "Copies"')
        r.select("INBOX")
        st, _, tagged = r.command('COPY 1 "Copies"')
        self.assertEqual(st, "NO", tagged)
        self.assertIn(b"[OVERQUOTA]", tagged.upper())
        self.assertIn(b"MESSAGES 0", b"".join(r.ok('STATUS "Copies" (MESSAGES)')))
        # Small messages still fit.
        self.append_ok(r, "INBOX", ternlib.make_message("quota-small"))

    # ---- CONDSTORE ----

    def test_condstore(self):
        r = self.raw(self.user())
        for i in range(3):
            self.append_ok(r, "INBOX", ternlib.make_message("cs-%d" % i))
        untagged, _ = r.select("INBOX", extra=" (CONDSTORE)")
        hms = int(codes(untagged)["HIGHESTMODSEQ"])
        f = r.fetch("1:*", "(MODSEQ)")
        mods = {n: int(v["MODSEQ"][0]) for n, v in f.items()}
        self.assertEqual(set(mods), {1, 2, 3})
        self.assertLessEqual(max(mods.values()), hms)
        # STORE with UNCHANGEDSINCE the current modseq: applied, MODSEQ grows.
        untagged = r.ok("STORE 1 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)" % mods[1])
        f = [ternlib.fetch_items(u) for u in untagged if b" FETCH " in u]
        self.assertEqual(len(f), 1, untagged)
        new1 = int(f[0]["MODSEQ"][0])
        self.assertGreater(new1, hms)
        # With an older UNCHANGEDSINCE: not applied, [MODIFIED 1].
        st, untagged, tagged = r.command("STORE 1 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % mods[1])
        self.assertEqual(st, "OK", tagged)
        self.assertRegex(tagged.upper().decode(), r"\[MODIFIED 1\]")
        self.assertNotIn("\\Seen", flags_of(r.fetch("1", "FLAGS")[1]["FLAGS"]))
        # CHANGEDSINCE: only what changed after hms.
        f = r.fetch("1:*", "(FLAGS) (CHANGEDSINCE %d)" % hms)
        self.assertEqual(set(f), {1})
        self.assertEqual(int(f[1]["MODSEQ"][0]), new1)
        # SEARCH MODSEQ.
        untagged = r.ok("SEARCH MODSEQ %d" % (hms + 1))
        s = ternlib.untagged_of(untagged, "SEARCH")
        self.assertRegex(s[0].decode(), r"^\* SEARCH 1 \(MODSEQ %d\)$" % new1)
        # HIGHESTMODSEQ in STATUS, and grown in a new SELECT.
        st = b"".join(r.ok("STATUS INBOX (HIGHESTMODSEQ)"))
        self.assertIn(b"HIGHESTMODSEQ %d" % new1, st)
        untagged, _ = r.select("INBOX", extra=" (CONDSTORE)")
        self.assertEqual(int(codes(untagged)["HIGHESTMODSEQ"]), new1)


def expand(uidset):
    """[uids] of a uid-set like b'4:6,9'."""
    out = []
    for part in uidset.decode().split(","):
        if ":" in part:
            a, b = (int(x) for x in part.split(":"))
            out.extend(range(min(a, b), max(a, b) + 1))
        else:
            out.append(int(part))
    return out


if __name__ == "__main__":
    ternlib.main()
