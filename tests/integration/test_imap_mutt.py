#!/usr/bin/python3
"""mutt (Debian) in batch mode against the IMAP server (issue 4). mutt runs on a pseudo
terminal with a private muttrc (imap_user/imap_pass, no caches) and keys pushed with -e:
it tags every message of the folder and pipes them to a file (the test checks every
subject and body delivered by SMTP is there), saves a message to another folder that it
creates and syncs (checked over IMAP: the copy is there and the original expunged), opens
that folder again, and does the same over STARTTLS on 143 and implicit TLS on 993 (the
node's certificate as certificate_file)."""
import os
import pty
import select
import shutil
import signal
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

D = "example.test"
MUTT = shutil.which("mutt")
PW = ternlib.USER_PASSWORD


class MuttTest(ternlib.NodeTestCase):
    NODE = "imapmutt"
    DOMAIN = D
    CONF = {"security": {"lockout_threshold": 0}, "smtpd": {"max_msgs_per_hour_per_ip": 0}}

    @classmethod
    def setUpClass(cls):
        if not MUTT:
            raise unittest.SkipTest("mutt is not installed")
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="tern-mutt-", dir="/tmp")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(getattr(cls, "tmp", "/nonexistent"), ignore_errors=True)
        super().tearDownClass()

    def run_mutt(self, user, url, keys, tls=False, timeout=60):
        """Run mutt on url with the keys pushed; returns (exit status, terminal output)."""
        rc = os.path.join(self.tmp, "muttrc")
        lines = ['set imap_user="%s"' % user, 'set imap_pass="%s"' % PW,
                 'set folder="%s/"' % url.rsplit("/", 1)[0], 'set spoolfile="%s"' % url,
                 'set record=""', 'set postponed=""', 'set header_cache=""', 'set message_cachedir=""',
                 "set mail_check=60", "set timeout=15", "set wait_key=no", "set confirmappend=no",
                 "set confirmcreate=no", "set pipe_split=no", "set pipe_decode=no", "set delete=yes",
                 "set quit=yes", "set move=no", "set sort=date-received", "set imap_check_subscribed=no"]
        if tls:
            crt = os.path.join(self.node.data, "ssl", "server.crt")
            self.assertTrue(os.path.exists(crt), "no node certificate at %s" % crt)
            lines += ["set ssl_starttls=yes", "set ssl_force_tls=yes", 'set certificate_file="%s"' % crt,
                      "set ssl_verify_host=no"]
        else:
            lines += ["set ssl_starttls=no", "set ssl_force_tls=no"]
        with open(rc, "w") as f:
            f.write("\n".join(lines) + "\n")
        argv = [MUTT, "-n", "-F", rc, "-f", url, "-e", 'push "%s"' % keys]
        pid, fd = pty.fork()
        if pid == 0:
            os.environ["TERM"] = "vt100"
            os.environ["HOME"] = self.tmp
            try:
                os.execv(argv[0], argv)
            finally:
                os._exit(127)
        out = b""
        t0 = time.time()
        while time.time() - t0 < timeout:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            else:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    os.close(fd)
                    return status, out.decode(errors="replace")
        else:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        return status, out.decode(errors="replace")

    def pipe_all(self, user, url, tls=False):
        """Every message of the folder at url, piped by mutt into one file: its text."""
        out = os.path.join(self.tmp, "piped.txt")
        if os.path.exists(out):
            os.unlink(out)
        status, screen = self.run_mutt(user, url, "<tag-pattern>~A<enter><tag-prefix><pipe-message>cat > %s<enter>"
                                       "<quit>" % out, tls=tls)
        self.assertTrue(os.path.exists(out), "mutt piped nothing (exit %s); screen:\n%s" % (status, screen[-1500:]))
        with open(out, "rb") as f:
            return f.read()

    def fill(self, n=3):
        user = ternlib.fresh_user(self.node, "mutt")
        for i in range(n):
            self.node.deliver(user, ternlib.make_message("mutt-%d" % i, to=user,
                                                         body="Body number %d for mutt.\r\n" % i))
        return user

    def test_list_and_read_inbox(self):
        user = self.fill(3)
        text = self.pipe_all(user, "imap://127.0.0.1:%d/INBOX" % self.node.imap_port())
        for i in range(3):
            self.assertIn(b"Subject: mutt-%d\n" % i, text.replace(b"\r\n", b"\n"))
            self.assertIn(b"Body number %d for mutt." % i, text)
        self.assertEqual(text.count(b"Subject: mutt-"), 3)
        # Reading did not lose anything on the server.
        self.assertEqual(len(self.node.messages(user)), 3)

    def test_save_to_new_folder_and_reopen(self):
        user = self.fill(2)
        url = "imap://127.0.0.1:%d/INBOX" % self.node.imap_port()
        status, screen = self.run_mutt(user, url, "<first-entry><save-message>=Archive<enter><sync-mailbox><quit>")
        c = self.imap(user)
        typ, data = c.select("Archive")
        self.assertEqual((typ, data), ("OK", [b"1"]), "mutt's save: screen\n%s" % screen[-1500:])
        typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertIn(data[0][1].strip(), (b"Subject: mutt-0", b"Subject: mutt-1"))
        saved = data[0][1].strip()
        typ, data = c.select("INBOX")
        self.assertEqual(data, [b"1"], "the saved message was not expunged from INBOX")
        text = self.pipe_all(user, "imap://127.0.0.1:%d/Archive" % self.node.imap_port())
        self.assertIn(saved, text.replace(b"\r\n", b"\n"))

    def test_starttls_and_imaps(self):
        user = self.fill(1)
        for url in ("imap://127.0.0.1:%d/INBOX" % self.node.imap_port(False),
                    "imaps://127.0.0.1:%d/INBOX" % self.node.imap_port(True)):
            with self.subTest(url=url):
                text = self.pipe_all(user, url, tls=True)
                self.assertIn(b"Body number 0 for mutt.", text)


if __name__ == "__main__":
    ternlib.main()
