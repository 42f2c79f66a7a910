"""Shared helpers of the integration tests: find the built ternd and ternctl, claim a port
base no other test node overlaps, start/stop/kill/restart a node in a temp data dir, run
ternctl and parse its JSON, and talk raw HTTP to the admin socket.

Port bases: a node listens on base + each of PORTS. Bases are picked at random between
10000 and 22000, checked free by binding every port, and recorded in a registry under /tmp
guarded by an fcntl lock, so that tests running in parallel (ctest -j2) never pick two
bases whose port sets meet (nor the base 22500 of contract-check)."""
import base64
import email
import email.policy
import fcntl
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import smtplib
import ssl
import shutil
import sys
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

PORTS = (25, 465, 587, 110, 995, 143, 993, 80, 8800, 443, 8443, 389, 636, 4040, 4050, 4051)
BASE_MIN, BASE_MAX = 10000, 22000
RESERVED_BASES = (22500,)          # shared/contract-check
REGISTRY = "/tmp/tern-test-port-bases"
ADMIN_PASSWORD = "Admin-pass-1"
USER_PASSWORD = "User-pass-1"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _find_binary(env, name, subdir):
    path = os.environ.get(env)
    if path and os.access(path, os.X_OK):
        return path
    dirs = [os.environ.get("TERN_BUILD_DIR")] if os.environ.get("TERN_BUILD_DIR") else []
    dirs += [os.path.join(ROOT, d) for d in ("build-asan", "build")]
    for d in dirs:
        p = os.path.join(d, subdir, name)
        if os.access(p, os.X_OK):
            return p
    raise unittest.SkipTest("%s not found: set %s or build the tree (ops/tern build)" % (name, env))


def ternd_path():
    return _find_binary("TERND", "ternd", "node")


def ternctl_path():
    return _find_binary("TERNCTL", "ternctl", "ops")


# ---- port bases -------------------------------------------------------------------

_DIFFS = {a - b for a in PORTS for b in PORTS}


def _overlaps(b1, b2):
    return (b1 - b2) in _DIFFS


def _ports_free(base):
    for p in PORTS:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("0.0.0.0", base + p))
        except OSError:
            return False
        finally:
            s.close()
    return True


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def claim_port_base():
    """A base whose 16 ports are free and meet no claimed base; recorded with our pid."""
    with open(REGISTRY + ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries = []
        if os.path.exists(REGISTRY):
            with open(REGISTRY) as f:
                lines = f.readlines()
            for line in lines:
                try:
                    base, pid = (int(x) for x in line.split())
                except ValueError:
                    continue
                if _pid_alive(pid):
                    entries.append((base, pid))
        taken = [b for b, _ in entries] + list(RESERVED_BASES)
        rng = random.SystemRandom()
        for _ in range(2000):
            base = rng.randrange(BASE_MIN, BASE_MAX + 1)
            if any(_overlaps(base, t) for t in taken) or not _ports_free(base):
                continue
            entries.append((base, os.getpid()))
            with open(REGISTRY + ".tmp", "w") as f:
                f.writelines("%d %d\n" % e for e in entries)
            os.replace(REGISTRY + ".tmp", REGISTRY)
            return base
    raise RuntimeError("no free port base found")


def release_port_base(base):
    with open(REGISTRY + ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(REGISTRY):
            return
        keep = []
        with open(REGISTRY) as f:
            lines = f.readlines()
        for line in lines:
            try:
                b, pid = (int(x) for x in line.split())
            except ValueError:
                continue
            if not (b == base and pid == os.getpid()) and _pid_alive(pid):
                keep.append((b, pid))
        with open(REGISTRY + ".tmp", "w") as f:
            f.writelines("%d %d\n" % e for e in keep)
        os.replace(REGISTRY + ".tmp", REGISTRY)


# ---- raw HTTP on the admin socket ---------------------------------------------------

class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over DATA/admin.sock."""

    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class CtlError(AssertionError):
    pass


class Node:
    """One ternd in its own temp dir and port base."""

    def __init__(self, name="n1", domain="example.test", admin="admin", config_text=None, conf=None):
        """conf: {section: {key: value}} written as DATA-independent tern.conf (see make_conf);
        config_text: the file's text as is. Either is passed with --config."""
        if conf is not None:
            config_text = make_conf(conf) + (config_text or "")
        self.ternd = ternd_path()
        self.ternctl = ternctl_path()
        self.name, self.domain, self.admin = name, domain, admin
        self.dir = tempfile.mkdtemp(prefix="tern-", dir="/tmp")
        self.data = os.path.join(self.dir, "data")
        self.pwfile = self.write_file("admin.pw", ADMIN_PASSWORD + "\n")
        self.userpw = self.write_file("user.pw", USER_PASSWORD + "\n")
        self.config = self.write_file("tern.conf", config_text) if config_text is not None else None
        self.base = claim_port_base()
        self.proc = None
        self.out_path = os.path.join(self.dir, "ternd.out")

    def write_file(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    @property
    def admin_address(self):
        return "%s@%s" % (self.admin, self.domain)

    def port(self, std_port):
        return self.base + std_port

    def argv(self, extra=()):
        a = [self.ternd, "--data", self.data, "--port-base", str(self.base), "--node-name", self.name,
             "--foreground", "--init-domain", self.domain, "--init-admin", self.admin,
             "--init-admin-password-file", self.pwfile]
        if self.config:
            a += ["--config", self.config]
        return a + list(extra)

    def spawn(self, extra=()):
        """Start ternd without waiting; returns the Popen."""
        out = open(self.out_path, "ab")
        try:
            return subprocess.Popen(self.argv(extra), stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        finally:
            out.close()

    def start(self, extra=(), timeout=30):
        assert self.proc is None or self.proc.poll() is not None, "node already running"
        self.proc = self.spawn(extra)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=30):
        r = self.run_ctl("status", "--wait", str(timeout), json_out=False, timeout=timeout + 30)
        if r.returncode != 0:
            raise CtlError("node %s not ready (ternctl status exit %d: %s; ternd %s)\n%s" % (
                self.name, r.returncode, r.stderr.strip(),
                "exited %s" % self.proc.poll() if self.proc and self.proc.poll() is not None else "running",
                self.output_tail()))

    def output_tail(self, n=40):
        try:
            with open(self.out_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout=60):
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise CtlError("ternd did not exit within %d s of SIGTERM" % timeout)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart(self, timeout=30):
        rc = self.stop()
        if rc != 0:
            raise CtlError("ternd exited %s on SIGTERM\n%s" % (rc, self.output_tail()))
        return self.start(timeout=timeout)

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def cleanup(self):
        try:
            self.kill()
        finally:
            release_port_base(self.base)
            if os.environ.get("TERN_KEEP_TMP"):
                print("ternlib: kept %s" % self.dir, file=sys.stderr)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    # ---- ternctl ----

    def run_ctl(self, *args, json_out=True, timeout=120, remote=None):
        """Run ternctl; remote = (user, password_file, fingerprint or None) uses --node."""
        if remote:
            user, pwf, fp = remote
            conn = ["--node", "127.0.0.1:%d" % self.port(4040), "--user", user, "--password-file", pwf]
            if fp:
                conn += ["--fingerprint", fp]
        else:
            conn = ["--data", self.data]
        argv = [self.ternctl] + conn + (["--json"] if json_out else []) + [str(a) for a in args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    def ctl(self, *args, **kw):
        """ternctl --json ARGS: the parsed JSON; raises CtlError on a non-zero exit."""
        r = self.run_ctl(*args, **kw)
        if r.returncode != 0:
            raise CtlError("ternctl %s exited %d: %s" % (" ".join(map(str, args)), r.returncode,
                                                         r.stderr.strip()))
        try:
            return json.loads(r.stdout)
        except ValueError:
            raise CtlError("ternctl --json %s printed no JSON: %r" % (" ".join(map(str, args)), r.stdout[:300]))

    def ctl_fail(self, *args, **kw):
        """ternctl ARGS that must fail: returns (exit code, stderr)."""
        r = self.run_ctl(*args, **kw)
        if r.returncode == 0:
            raise CtlError("ternctl %s should have failed, printed %r" % (" ".join(map(str, args)), r.stdout[:300]))
        return r.returncode, r.stderr

    # ---- raw API ----

    def request(self, method, path, body=None, headers=None):
        """One raw request on the admin socket: (status, parsed JSON or bytes)."""
        conn = UnixHTTPConnection(os.path.join(self.data, "admin.sock"))
        try:
            hdrs = dict(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
                hdrs.setdefault("Content-Type", "application/json")
            if isinstance(body, str):
                body = body.encode()
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            ctype = resp.getheader("Content-Type", "")
        finally:
            conn.close()
        if "json" in ctype:
            try:
                return resp.status, json.loads(data)
            except ValueError:
                pass
        return resp.status, data

    def log_text(self, name):
        path = os.path.join(self.data, "logs", name + ".log")
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_for(self, predicate, timeout=10.0, what="condition"):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))

    # ---- SMTP (issue 3) ----

    def smtp_port(self, svc="smtp"):
        """Port of an SMTP service: "smtp" (25), "smtps" (465), "submission" (587) or the
        standard number itself, shifted by the port base."""
        return self.base + (SMTP_SERVICES[svc] if isinstance(svc, str) else int(svc))

    def smtp(self, svc="smtp", source="127.0.0.1", starttls=False, ehlo=True, timeout=30):
        """An smtplib client connected to svc from the address source (127.0.0.1 is in the
        default "Local clients" group, 127.0.0.2 plays an Internet client); smtps is implicit
        TLS, starttls=True upgrades 25/587 and says EHLO again."""
        port = self.smtp_port(svc)
        if (svc == "smtps" or svc == 465):
            s = smtplib.SMTP_SSL("127.0.0.1", port, local_hostname="client.test", timeout=timeout,
                                 source_address=(source, 0), context=tls_context())
        else:
            s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=timeout,
                             source_address=(source, 0))
        if ehlo or starttls:
            s.ehlo()
        if starttls:
            code, resp = s.starttls(context=tls_context())
            if code != 220:
                raise AssertionError("STARTTLS answered %d %r" % (code, resp))
            s.ehlo()
        return s

    def raw_smtp(self, svc="smtp", source="127.0.0.1", timeout=20, greeting=True):
        """A RawSMTP on svc (implicit TLS for smtps); reads the greeting unless told not to."""
        tls = svc == "smtps" or svc == 465
        r = RawSMTP(self.smtp_port(svc), source=source, timeout=timeout, tls=tls)
        if greeting:
            r.greeting = r.reply()
        return r

    def send_mail(self, sender, rcpts, msg, svc="smtp", source="127.0.0.1", login=None,
                  mail_options=(), rcpt_options=(), starttls=False):
        """One message through smtplib; login = (user, password). Returns sendmail's dict of
        refused recipients ({} when all were accepted); raises smtplib errors as smtplib does."""
        s = self.smtp(svc, source=source, starttls=starttls)
        try:
            if login:
                s.login(*login)
            if isinstance(msg, str):
                msg = msg.encode()
            return s.sendmail(sender, rcpts, msg, mail_options=list(mail_options),
                              rcpt_options=list(rcpt_options))
        finally:
            try:
                s.quit()
            except (smtplib.SMTPException, OSError):
                s.close()

    def add_user(self, address, *extra, quota_mb=None, password_file=None):
        """ternctl user add with the common user password (USER_PASSWORD)."""
        args = ["user", "add", address, "--password-file", password_file or self.userpw]
        if quota_mb is not None:
            args += ["--quota-mb", str(quota_mb)]
        return self.ctl(*args, *extra)

    # Mailboxes through the admin API (until IMAP exists):
    #   GET /api/v1/users/ADDRESS/messages            -> [{"folder", "uid", "size", "flags"}]
    #   GET /api/v1/users/ADDRESS/messages/UID?folder=F -> the raw RFC 822 bytes

    def messages(self, address, folder="INBOX"):
        """The message list of a user, only folder's entries unless folder is None."""
        path = "/api/v1/users/%s/messages" % urllib.parse.quote(address, safe="@")
        status, body = self.request("GET", path)
        if status != 200 or not isinstance(body, list):
            raise CtlError("GET %s -> %d %r" % (path, status, body if isinstance(body, dict) else body[:200]))
        return [m for m in body if folder is None or m.get("folder") == folder]

    def message_bytes(self, address, uid, folder="INBOX"):
        """The raw bytes of one message (header prefix + stored body)."""
        path = "/api/v1/users/%s/messages/%d?folder=%s" % (urllib.parse.quote(address, safe="@"), int(uid),
                                                         urllib.parse.quote(folder, safe=""))
        status, body = self.request("GET", path)
        if status != 200 or not isinstance(body, bytes):
            raise CtlError("GET %s -> %d %r" % (path, status, body))
        return body

    def mailbox(self, address, folder="INBOX"):
        """[(meta, raw bytes, email.message.Message)] of a folder, in list order."""
        out = []
        for m in self.messages(address, folder):
            raw = self.message_bytes(address, m["uid"], m.get("folder", folder))
            out.append((m, raw, parse_message(raw)))
        return out

    def find_messages(self, address, subject, folder="INBOX"):
        """Parsed messages of a folder whose Subject header is exactly subject."""
        return [msg for _, _, msg in self.mailbox(address, folder) if header_text(msg, "Subject") == subject]

    def wait_message(self, address, subject, timeout=20.0, folder="INBOX"):
        """Wait until a message with this Subject is in the folder; returns it (parsed)."""
        found = []

        def ok():
            found[:] = self.find_messages(address, subject, folder)
            return bool(found)
        self.wait_for(ok, timeout, "message %r in %s/%s" % (subject, address, folder))
        return found[0]

    def wait_mailbox(self, address, predicate, timeout=20.0, what=None, folder="INBOX"):
        """Wait until predicate([parsed messages]) is true; returns the last list."""
        last = []

        def ok():
            last[:] = [msg for _, _, msg in self.mailbox(address, folder)]
            return predicate(last)
        self.wait_for(ok, timeout, what or "mailbox condition on %s" % address)
        return last

    def queue_list(self):
        """ternctl --json queue list: [{"id", "from", "to", "size", "next_try", "status", ...}]."""
        return self.ctl("queue", "list")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # ---- IMAP and POP3 (issue 4) ----

    def imap_port(self, tls=False):
        """Port of IMAP: 143 (STARTTLS) or, tls=True, 993 (implicit TLS), shifted by the base."""
        return self.base + (993 if tls else 143)

    def pop3_port(self, tls=False):
        """Port of POP3: 110 (STLS) or, tls=True, 995 (implicit TLS), shifted by the base."""
        return self.base + (995 if tls else 110)

    def imap(self, user=None, password=USER_PASSWORD, tls=False, starttls=False, source="127.0.0.1",
             timeout=30):
        """An imaplib client on 143 (starttls=True upgrades it) or 993 (tls=True) from the
        address source; logged in as user (LOGIN) when user is given."""
        if tls:
            c = IMAP4_SSL_From("127.0.0.1", self.imap_port(True), source=source, timeout=timeout,
                               ssl_context=tls_context())
        else:
            c = IMAP4_From("127.0.0.1", self.imap_port(False), source=source, timeout=timeout)
            if starttls:
                typ, data = c.starttls(ssl_context=tls_context())
                if typ != "OK":
                    raise AssertionError("STARTTLS answered %s %r" % (typ, data))
        if user is not None:
            typ, data = c.login(user, password)
            if typ != "OK":
                raise AssertionError("LOGIN %s answered %s %r" % (user, typ, data))
        return c

    def raw_imap(self, tls=False, source="127.0.0.1", timeout=20, greeting=True):
        """A RawIMAP on 143 or 993 (tls=True); reads the greeting unless told not to."""
        return RawIMAP(self.imap_port(tls), source=source, tls=tls, timeout=timeout, greeting=greeting)

    def pop3(self, user=None, password=USER_PASSWORD, tls=False, stls=False, source="127.0.0.1",
             timeout=30):
        """A poplib client on 110 (stls=True upgrades it) or 995 (tls=True) from source;
        logged in with USER/PASS when user is given."""
        if tls:
            c = POP3_SSL_From("127.0.0.1", self.pop3_port(True), source=source, timeout=timeout,
                              context=tls_context())
        else:
            c = POP3_From("127.0.0.1", self.pop3_port(False), source=source, timeout=timeout)
            if stls:
                c.stls(context=tls_context())
        if user is not None:
            c.user(user)
            c.pass_(password)
        return c

    def deliver(self, address, msg, timeout=20.0, sender="sender@example.test"):
        """Deliver msg (bytes or str, with a unique Subject) to a local user by SMTP on 25
        from 127.0.0.1, then wait until the admin API shows it in the INBOX. Returns the
        admin API's entry ({"folder", "uid", "size", "flags", ...}) of the new message."""
        if isinstance(msg, str):
            msg = msg.encode()
        subject = header_text(parse_message(msg), "Subject")
        before = {m["uid"] for m in self.messages(address)}
        refused = self.send_mail(sender, [address], msg)
        if refused:
            raise AssertionError("SMTP refused %r" % refused)
        found = []

        def ok():
            for m in self.messages(address):
                if m["uid"] in before:
                    continue
                raw = self.message_bytes(address, m["uid"])
                if subject is None or header_text(parse_message(raw), "Subject") == subject:
                    found.append(m)
                    return True
            return False
        self.wait_for(ok, timeout, "delivery of %r to %s" % (subject, address))
        return found[0]

    def rss_kb(self):
        """Resident set size of ternd in KiB (VmRSS of /proc/PID/status)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for ternd")

    def cpu_seconds(self):
        """User + system CPU time ternd has used so far (/proc/PID/stat)."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fingerprint_of(node):
    return node.ctl("node", "show")["fingerprint"]


def by_key(items, key):
    return {i[key]: i for i in items}


# ---- SMTP helpers (issue 3) --------------------------------------------------------

SMTP_SERVICES = {"smtp": 25, "smtps": 465, "submission": 587}


def make_conf(sections):
    """tern.conf text from {section: {key: value}}; booleans become yes/no. Setting names
    are those of TERN_SETTINGS in lib/conf.h (no quoting: inih keeps the value as is)."""
    lines = []
    for section, items in sections.items():
        lines.append("[%s]" % section)
        for k, v in items.items():
            if isinstance(v, bool):
                v = "yes" if v else "no"
            lines.append("%s = %s" % (k, v))
        lines.append("")
    return "\n".join(lines) + "\n"


def tls_context():
    """A client context that accepts the node's self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def parse_message(raw):
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def header_text(msg, name):
    """A header's value unfolded and stripped, or None."""
    v = msg.get(name)
    if v is None:
        return None
    return re.sub(r"\r?\n[ \t]+", " ", str(v)).strip()


def make_message(subject, sender="sender@example.test", to="rcpt@example.test", body="Hello.\r\n",
                 extra_headers=(), size=None):
    """A small RFC 5322 message (CRLF lines) with a unique Message-ID; size pads the body
    with 76-character lines up to about that many bytes."""
    hdrs = ["From: <%s>" % sender, "To: <%s>" % to, "Subject: %s" % subject,
            "Message-ID: <%s.%d@client.test>" % (re.sub(r"[^A-Za-z0-9.-]", "", subject) or "m",
                                                  random.getrandbits(48)),
            "Date: %s" % time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())]
    hdrs += list(extra_headers)
    text = "\r\n".join(hdrs) + "\r\n\r\n" + body
    if size is not None:
        line = ("x" * 76) + "\r\n"
        need = max(0, size - len(text))
        text += line * (need // len(line) + 1)
    return text.encode()


def free_local_port(host="127.0.0.1"):
    """A free TCP port from the kernel's ephemeral range (above every test port base)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


class RawConn:
    """A client on a plain (or TLS) socket that reads and writes bytes itself: the common
    part of RawSMTP and RawIMAP."""

    def __init__(self, port, source="127.0.0.1", host="127.0.0.1", timeout=20, tls=False):
        self.sock = socket.create_connection((host, port), timeout, source_address=(source, 0))
        if tls:
            self.sock = tls_context().wrap_socket(self.sock)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by the server")
        self.buf += chunk

    def closed_by_peer(self, timeout=10):
        """True when the server closes the connection (EOF or reset) within timeout, reading
        and dropping whatever it sends before."""
        deadline = time.time() + timeout
        try:
            while time.time() < deadline:
                self.sock.settimeout(max(0.05, deadline - time.time()))
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    return False
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionError, ssl.SSLError):
            return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class RawSMTP(RawConn):
    """A line-level SMTP client on a plain socket, for what smtplib cannot do: pipelined
    writes, bad input, STARTTLS with data behind it, a client that disappears in DATA."""

    def __init__(self, port, source="127.0.0.1", host="127.0.0.1", timeout=20, tls=False):
        super().__init__(port, source, host, timeout, tls)
        self.greeting = None

    def read_line(self):
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def reply(self):
        """(code, text): one reply, multi-line ones joined with newlines."""
        lines = []
        while True:
            line = self.read_line()
            if len(line) < 3 or not line[:3].isdigit():
                raise AssertionError("not an SMTP reply line: %r" % line)
            lines.append(line[4:].decode(errors="replace"))
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def replies_within(self, seconds):
        """Every complete reply that arrives within seconds (for counting stray replies)."""
        out = []
        deadline = time.time() + seconds
        old = self.sock.gettimeout()
        try:
            while time.time() < deadline:
                while b"\n" in self.buf:
                    out.append(self.reply())
                self.sock.settimeout(max(0.05, deadline - time.time()))
                try:
                    self._fill()
                except (socket.timeout, EOFError, ConnectionError):
                    break
            while b"\n" in self.buf:
                out.append(self.reply())
        finally:
            self.sock.settimeout(old)
        return out

    def starttls(self):
        """STARTTLS; the server must answer 220 and send nothing after it in plaintext."""
        code, text = self.cmd("STARTTLS")
        if code != 220:
            raise AssertionError("STARTTLS answered %d %s" % (code, text))
        if self.buf:
            raise AssertionError("plaintext after the 220 of STARTTLS: %r" % self.buf)
        self.sock = tls_context().wrap_socket(self.sock)
        return code, text



def ehlo_keywords(text):
    """{KEYWORD: params} from an EHLO reply's text (first line is the greeting)."""
    out = {}
    for line in text.split("\n")[1:]:
        parts = line.strip().split(None, 1)
        if parts:
            out[parts[0].upper()] = parts[1] if len(parts) > 1 else ""
    return out


class _SinkHandler:
    def __init__(self, sink):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.sink._rcpt_reply(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = self.sink._data_reply()
        if reply is not None:
            return reply
        self.sink._record(session, envelope)
        return "250 2.0.0 OK: queued as sink-%d" % len(self.sink.messages)


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 (a free ephemeral port) standing for the remote MX.
    It records every accepted message ({"mail_from", "rcpt_tos", "content" (bytes),
    "mail_options", "rcpt_options", "peer"}) and every RCPT attempt ((address, reply)).
    Scripting: script_rcpt(addr, ["451 4.3.0 later"]) answers the next attempts for addr
    with those replies, in order, then accepts; refuse_rcpt(addr, "550 5.1.1 no") answers
    every attempt so (None clears it); script_data([...]) does the same for DATA."""

    def __init__(self, host="127.0.0.1"):
        from aiosmtpd.controller import Controller
        self.host = host
        self.lock = threading.Lock()
        self.messages = []
        self.attempts = []
        self._rcpt_script = {}
        self._rcpt_fixed = {}
        self._data_script = []
        last = None
        for _ in range(5):
            self.port = free_local_port(host)
            self.controller = Controller(_SinkHandler(self), hostname=host, port=self.port,
                                         server_hostname="sink.remote.test", decode_data=False)
            try:
                self.controller.start()
                return
            except Exception as e:       # the port was taken in between: try another
                last = e
        raise RuntimeError("SMTP sink did not start: %s" % last)

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    def stop(self):
        try:
            self.controller.stop()
        except Exception:
            pass

    def script_rcpt(self, address, replies):
        with self.lock:
            self._rcpt_script[address.lower()] = list(replies)

    def refuse_rcpt(self, address, reply):
        with self.lock:
            if reply is None:
                self._rcpt_fixed.pop(address.lower(), None)
            else:
                self._rcpt_fixed[address.lower()] = reply

    def script_data(self, replies):
        with self.lock:
            self._data_script = list(replies)

    def _rcpt_reply(self, address):
        a = address.lower()
        with self.lock:
            reply = None
            if self._rcpt_script.get(a):
                reply = self._rcpt_script[a].pop(0)
            elif a in self._rcpt_fixed:
                reply = self._rcpt_fixed[a]
            self.attempts.append((a, reply or "250"))
            return reply

    def _data_reply(self):
        with self.lock:
            return self._data_script.pop(0) if self._data_script else None

    def _record(self, session, envelope):
        with self.lock:
            self.messages.append({"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                                  "content": envelope.original_content or envelope.content,
                                  "mail_options": list(envelope.mail_options),
                                  "rcpt_options": list(envelope.rcpt_options),
                                  "peer": session.peer})

    def attempts_for(self, address):
        with self.lock:
            return [r for a, r in self.attempts if a == address.lower()]

    def received_for(self, address):
        """Accepted messages with address among their envelope recipients."""
        with self.lock:
            return [m for m in self.messages if address.lower() in (r.lower() for r in m["rcpt_tos"])]

    def wait_received(self, address, count=1, timeout=30.0):
        t0 = time.time()
        while time.time() - t0 < timeout:
            got = self.received_for(address)
            if len(got) >= count:
                return got
            time.sleep(0.1)
        raise AssertionError("sink: %d message(s) for %s after %.0f s (wanted %d); attempts %r" % (
            len(self.received_for(address)), address, timeout, count, self.attempts_for(address)))


class ScramSha256:
    """Client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as an smtplib authobject:
    s.auth("SCRAM-SHA-256", ScramSha256(user, password)). After a success, server_verified
    says whether the server's signature (v=) was checked and right."""

    def __init__(self, user, password, nonce=None):
        self.user = user.replace("=", "=3D").replace(",", "=2C")
        self.password = password.encode()
        self.nonce = nonce or base64.b64encode(os.urandom(18)).decode()
        self.step = 0
        self.server_signature = None
        self.server_verified = False
        self.client_first_bare = "n=%s,r=%s" % (self.user, self.nonce)

    def __call__(self, challenge=None):
        if challenge is None or self.step == 0 and challenge == b"":
            self.step = 1
            return "n,," + self.client_first_bare
        if isinstance(challenge, bytes):
            challenge = challenge.decode()
        if self.step == 1:
            self.step = 2
            return self.client_final(challenge)
        # step 2: server-final "v=..." sent as a 334 challenge: verify, answer empty.
        self.verify_server_final(challenge)
        self.step = 3
        return ""

    def client_final(self, server_first):
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        if not attrs["r"].startswith(self.nonce):
            raise AssertionError("server nonce does not extend the client's: %r" % server_first)
        salt = base64.b64decode(attrs["s"])
        iters = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, iters)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=%s" % attrs["r"]
        auth_message = ",".join((self.client_first_bare, server_first, without_proof)).encode()
        client_sig = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, client_sig))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
        return "%s,p=%s" % (without_proof, base64.b64encode(proof).decode())

    def verify_server_final(self, server_final):
        if isinstance(server_final, bytes):
            server_final = server_final.decode()
        attrs = dict(kv.split("=", 1) for kv in server_final.split(",") if "=" in kv)
        if "e" in attrs:
            raise AssertionError("SCRAM server error: %s" % attrs["e"])
        if base64.b64decode(attrs.get("v", "")) != self.server_signature:
            raise AssertionError("SCRAM server signature is wrong: %r" % server_final)
        self.server_verified = True


LOG_PREFIX = r"^\[\d\d/[A-Z][a-z]{2}/\d{4} \d\d:\d\d:\d\d\] "


def log_lines(node, name, pattern):
    """Lines of DATA/logs/NAME.log matching the regex pattern (searched, not anchored)."""
    rx = re.compile(pattern)
    return [line for line in node.log_text(name).splitlines() if rx.search(line)]



# ---- IMAP and POP3 helpers (issue 4) -------------------------------------------------

import imaplib   # noqa: E402
import poplib    # noqa: E402


def _connect_from(host, port, source, timeout):
    if timeout is not None and not timeout:
        raise ValueError("non-blocking socket (timeout=0) is not supported")
    return socket.create_connection((host, port), timeout, source_address=(source, 0))


class IMAP4_From(imaplib.IMAP4):
    """imaplib.IMAP4 connecting from a chosen local address (127.0.0.2 plays a remote client)."""

    def __init__(self, host, port, source="127.0.0.1", timeout=30):
        self._source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return _connect_from(self.host, self.port, self._source, timeout)


class IMAP4_SSL_From(imaplib.IMAP4_SSL):
    def __init__(self, host, port, source="127.0.0.1", timeout=30, ssl_context=None):
        self._source = source
        super().__init__(host, port, ssl_context=ssl_context, timeout=timeout)

    def _create_socket(self, timeout):
        sock = _connect_from(self.host, self.port, self._source, timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


class POP3_From(poplib.POP3):
    """poplib.POP3 connecting from a chosen local address."""

    def __init__(self, host, port, source="127.0.0.1", timeout=30):
        self._source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return _connect_from(self.host, self.port, self._source, timeout)


class POP3_SSL_From(poplib.POP3_SSL):
    def __init__(self, host, port, source="127.0.0.1", timeout=30, context=None):
        self._source = source
        super().__init__(host, port, timeout=timeout, context=context)

    def _create_socket(self, timeout):
        sock = _connect_from(self.host, self.port, self._source, timeout)
        return self.context.wrap_socket(sock, server_hostname=self.host)


def imap_plain(user, password):
    """An imaplib authobject for AUTHENTICATE PLAIN."""
    def auth(challenge):
        return "\0%s\0%s" % (user, password)
    return auth


class ImapParseError(ValueError):
    pass


class Atom(str):
    """An IMAP atom (NIL is None; quoted strings and literals are bytes)."""


def imap_parse(data, pos=0, nested=False):
    """Tokens of an IMAP response line with its literals inlined (as RawIMAP returns it):
    atoms become Atom (str), quoted strings and literals bytes, NIL None, parenthesised
    lists Python lists; [..] after an atom (BODY[HEADER.FIELDS (A B)], [UIDNEXT 5]) stays
    inside the atom text. Returns the list (and the end position when nested)."""
    out = []
    n = len(data)
    while pos < n:
        c = data[pos:pos + 1]
        if c == b" ":
            pos += 1
        elif c == b"(":
            sub, pos = imap_parse(data, pos + 1, True)
            out.append(sub)
        elif c == b")":
            if not nested:
                raise ImapParseError("unbalanced ) at %d in %r" % (pos, data[:200]))
            return out, pos + 1
        elif c == b'"':
            i = pos + 1
            buf = bytearray()
            while True:
                if i >= n:
                    raise ImapParseError("unterminated quoted string in %r" % data[:200])
                ch = data[i:i + 1]
                if ch == b"\\":
                    buf += data[i + 1:i + 2]
                    i += 2
                elif ch == b'"':
                    break
                else:
                    buf += ch
                    i += 1
            out.append(bytes(buf))
            pos = i + 1
        elif c == b"{" or (c == b"~" and data[pos + 1:pos + 2] == b"{"):
            if c == b"~":
                pos += 1
            end = data.index(b"}", pos)
            size = int(data[pos + 1:end].rstrip(b"+"))
            start = end + 1
            if data[start:start + 2] == b"\r\n":
                start += 2
            out.append(data[start:start + size])
            pos = start + size
        else:
            i = pos
            depth = 0
            while i < n:
                ch = data[i:i + 1]
                if ch == b"[":
                    depth += 1
                elif ch == b"]":
                    depth -= 1
                elif depth == 0 and ch in b" ()":
                    break
                elif depth > 0 and ch == b"{":
                    # a literal inside brackets (HEADER.FIELDS with a literal name): rare; skip it
                    end = data.index(b"}", i)
                    size = int(data[i + 1:end].rstrip(b"+"))
                    i = end + 3 + size
                    continue
                i += 1
            word = data[pos:i].decode("utf-8", "replace")
            out.append(None if word.upper() == "NIL" else Atom(word))
            pos = i
    if nested:
        raise ImapParseError("unbalanced ( in %r" % data[:200])
    return out


def imap_norm(tree):
    """A parsed structure with bytes turned into str (for comparisons and messages)."""
    if isinstance(tree, list):
        return [imap_norm(x) for x in tree]
    if isinstance(tree, bytes):
        return tree.decode("utf-8", "replace")
    if isinstance(tree, Atom):
        return str(tree)
    return tree


def fetch_items(response):
    """{ITEM-NAME (upper case): value} of one untagged '* N FETCH (...)' response (bytes)."""
    toks = imap_parse(response)
    if len(toks) < 4 or toks[0] != "*" or str(toks[2]).upper() != "FETCH":
        raise ImapParseError("not a FETCH response: %r" % response[:200])
    items = toks[3]
    out = {}
    for i in range(0, len(items) - 1, 2):
        out[str(items[i]).upper()] = items[i + 1]
    return out


class RawIMAP(RawConn):
    """A protocol-level IMAP client on a plain (or TLS) socket, for what imaplib hides:
    where untagged responses come, IDLE, bad input, literals, a client that disappears.
    Responses are bytes lines with their literals inlined ('{N}' CRLF + N bytes kept)."""

    def __init__(self, port, source="127.0.0.1", host="127.0.0.1", tls=False, timeout=20, greeting=True):
        super().__init__(port, source, host, timeout, tls)
        self.ntag = 0
        self.greeting = self.response() if greeting else None

    def read_line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 64 * 1024 * 1024:
                raise AssertionError("server line longer than 64 MB")
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self):
        """One whole server response (untagged, tagged or continuation), literals inlined."""
        out = b""
        while True:
            line = self.read_line()
            out += line
            m = re.search(rb"\{(\d+)\}$", line)
            if not m:
                return out
            out += b"\r\n" + self.read_exact(int(m.group(1)))

    def next_tag(self):
        self.ntag += 1
        return "t%d" % self.ntag

    def command(self, text, tag=None):
        """Send 'TAG text' and read up to its tagged reply: (status, [untagged and
        continuation responses], tagged line). status is 'OK', 'NO', 'BAD' or 'BYE'
        (connection closed with a BYE before the tagged reply)."""
        tag = tag or self.next_tag()
        if isinstance(text, str):
            text = text.encode()
        self.send(tag.encode() + b" " + text + b"\r\n")
        return self.read_tagged(tag)

    def read_tagged(self, tag):
        untagged = []
        tb = tag.encode() + b" "
        while True:
            try:
                r = self.response()
            except EOFError:
                if any(u.upper().startswith(b"* BYE") for u in untagged):
                    return "BYE", untagged, b""
                raise
            if r.startswith(tb):
                status = r[len(tb):].split(b" ", 1)[0].decode(errors="replace").upper()
                return status, untagged, r
            untagged.append(r)

    def ok(self, text):
        """command() that must answer OK; returns the untagged responses."""
        status, untagged, tagged = self.command(text)
        if status != "OK":
            raise AssertionError("%s -> %r (untagged %r)" % (text if isinstance(text, str) else text[:80],
                                                              tagged, untagged[-5:]))
        return untagged

    def login(self, user, password=USER_PASSWORD):
        return self.ok("LOGIN %s %s" % (imap_quote(user), imap_quote(password)))

    def starttls(self):
        """STARTTLS; OK and nothing after it in plaintext, then the TLS handshake."""
        status, untagged, tagged = self.command("STARTTLS")
        if status != "OK":
            raise AssertionError("STARTTLS answered %r" % tagged)
        if self.buf:
            raise AssertionError("plaintext after the OK of STARTTLS: %r" % self.buf)
        self.sock = tls_context().wrap_socket(self.sock)
        return untagged

    def append(self, mailbox, message, flags=None, date=None, nonsync=False):
        """APPEND with a synchronising literal (or LITERAL+ when nonsync): (status,
        untagged, tagged line)."""
        if isinstance(message, str):
            message = message.encode()
        tag = self.next_tag()
        head = "%s APPEND %s" % (tag, imap_quote(mailbox))
        if flags is not None:
            head += " (%s)" % flags
        if date is not None:
            head += " %s" % imap_quote(date)
        if nonsync:
            self.send(head.encode() + b" {%d+}\r\n" % len(message) + message + b"\r\n")
            return self.read_tagged(tag)
        self.send(head.encode() + b" {%d}\r\n" % len(message))
        r = self.response()
        if not r.startswith(b"+"):
            status = r.split(b" ", 2)[1].decode(errors="replace").upper() if r.startswith(tag.encode()) else "?"
            return status, [], r
        self.send(message + b"\r\n")
        return self.read_tagged(tag)

    def select(self, mailbox="INBOX", examine=False, extra=""):
        """SELECT (or EXAMINE) that must succeed: (untagged, tagged line)."""
        status, untagged, tagged = self.command("%s %s%s" % ("EXAMINE" if examine else "SELECT",
                                                              imap_quote(mailbox), extra))
        if status != "OK":
            raise AssertionError("SELECT %s -> %r" % (mailbox, tagged))
        return untagged, tagged

    def fetch(self, seqset, items, uid=False):
        """{number: {ITEM: value}} of a FETCH that must succeed (merged per message)."""
        out = {}
        for u in self.ok("%sFETCH %s %s" % ("UID " if uid else "", seqset, items)):
            if re.match(rb"^\* \d+ FETCH ", u):
                n = int(u.split(b" ")[1])
                out.setdefault(n, {}).update(fetch_items(u))
        return out

    def responses_within(self, seconds):
        """Every complete response that arrives within seconds."""
        out = []
        deadline = time.time() + seconds
        old = self.sock.gettimeout()
        try:
            while time.time() < deadline:
                while b"\r\n" in self.buf:
                    out.append(self.response())
                self.sock.settimeout(max(0.05, deadline - time.time()))
                try:
                    self._fill()
                except (socket.timeout, EOFError, ConnectionError):
                    break
            while b"\r\n" in self.buf:
                out.append(self.response())
        finally:
            self.sock.settimeout(old)
        return out

    def wait_response(self, predicate, timeout):
        """Read responses until predicate(response) is true; returns (that response, the
        ones before), or (None, all) after timeout seconds."""
        seen = []
        deadline = time.time() + timeout
        old = self.sock.gettimeout()
        try:
            while True:
                while b"\r\n" in self.buf:
                    r = self.response()
                    if predicate(r):
                        return r, seen
                    seen.append(r)
                left = deadline - time.time()
                if left <= 0:
                    return None, seen
                self.sock.settimeout(left)
                try:
                    self._fill()
                except socket.timeout:
                    return None, seen
        finally:
            self.sock.settimeout(old)



def imap_quote(s):
    """An IMAP quoted string."""
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def untagged_of(untagged, kind):
    """The untagged responses '* KIND ...' or '* N KIND ...' (KIND upper case)."""
    out = []
    rx = re.compile(rb"^\* (?:\d+ )?" + re.escape(kind.encode()) + rb"(?:[ \r]|$)", re.I)
    for u in untagged:
        if rx.match(u):
            out.append(u)
    return out


def imap_capabilities(untagged_or_line):
    """The set of capability names (upper case) in '* CAPABILITY ...' or an [CAPABILITY ..] code."""
    lines = untagged_or_line if isinstance(untagged_or_line, list) else [untagged_or_line]
    caps = set()
    for line in lines:
        m = re.search(rb"(?:^\* CAPABILITY |\[CAPABILITY )([^\]\r\n]*)", line, re.I)
        if m:
            caps.update(w.decode().upper() for w in m.group(1).split())
    return caps


DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


class PrivateDovecot:
    """A private Dovecot (oracle of the MIME corpus, peer of ops/bench/imap): its own
    base_dir, state_dir and log under a temp dir, a passwd-file userdb with plaintext
    passwords, maildirs owned by nobody (65534), IMAP (and with tls=True IMAPS on a second
    port, using the given cert/key PEM files) on free loopback ports. Never touches the
    system instance nor standard ports. Needs root (Dovecot drops to the users' uid)."""

    def __init__(self, users, tls_cert=None, tls_key=None, max_conns=10000, extra_conf=""):
        if not os.access(DOVECOT, os.X_OK) or not os.path.exists("/usr/lib/dovecot/imap"):
            raise unittest.SkipTest("dovecot-imapd is not installed")
        if os.geteuid() != 0:
            raise unittest.SkipTest("a private Dovecot needs root")
        self.dir = tempfile.mkdtemp(prefix="tern-dovecot-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.port = free_local_port()
        self.tls_port = free_local_port() if tls_cert else 0
        self.proc = None
        for d in ("run", "state", "mail"):
            os.makedirs(os.path.join(self.dir, d))
        with open(os.path.join(self.dir, "users"), "w") as f:
            for user, pw in users.items():
                home = os.path.join(self.dir, "mail", user)
                os.makedirs(home)
                scheme = "" if pw.startswith("{") else "{PLAIN}"   # "{CRYPT}$y$..." as is
                f.write("%s:%s%s:65534:65534::%s::\n" % (user, scheme, pw, home))
        for root, dirs, _ in os.walk(os.path.join(self.dir, "mail")):
            os.chown(root, 65534, 65534)
        os.chown(os.path.join(self.dir, "mail"), 65534, 65534)
        ssl_conf = "ssl = no\n"
        if tls_cert:
            ssl_conf = "ssl = yes\nssl_cert = <%s\nssl_key = <%s\n" % (tls_cert, tls_key)
        conf = """base_dir = {d}/run
state_dir = {d}/state
instance_name = tern-dovecot-{pid}-{port}
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_fsync = optimized
default_client_limit = {maxc}
passdb {{
  driver = passwd-file
  args = {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
  service_count = 0
  process_min_avail = 2
  client_limit = {maxc}
}}
service imap {{
  process_limit = {maxc}
}}
service anvil {{
  client_limit = {anvil}
}}
service auth {{
  client_limit = {anvil}
}}
""".format(d=self.dir, pid=os.getpid(), port=self.port, tls_port=self.tls_port, ssl=ssl_conf,
           maxc=max_conns, anvil=3 * max_conns + 100) + extra_conf
        self.users_file = os.path.join(self.dir, "users")
        self.conf = os.path.join(self.dir, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(conf)

    def start(self, timeout=15):
        out = open(os.path.join(self.dir, "dovecot.out"), "ab")
        try:
            self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf], stdout=out, stderr=out,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            out.close()
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return self
            except OSError:
                time.sleep(0.1)
        tail = ""
        for name in ("dovecot.out", "dovecot.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    tail += f.read()[-1500:]
            except OSError:
                pass
        self.stop()
        raise RuntimeError("private dovecot did not start: %s" % tail)

    def imap(self, user, password):
        c = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        c.login(user, password)
        return c

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()       # the master stops its children on SIGTERM
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class NodeTestCase(unittest.TestCase):
    """A test class with one node of its own: NODE (name), CONF ({section: {key: value}}),
    USERS ([address] added with USER_PASSWORD), QUOTAS ({address: MB}). The node must
    still be alive after every test."""
    NODE = "n1"
    DOMAIN = "example.test"
    CONF = {}
    USERS = ()
    QUOTAS = {}

    @classmethod
    def setUpClass(cls):
        cls.node = Node(name=cls.NODE, domain=cls.DOMAIN, conf=cls.CONF)
        try:
            cls.node.start()
            for u in cls.USERS:
                cls.node.add_user(u, quota_mb=cls.QUOTAS.get(u))
        except Exception:
            cls.node.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def tearDown(self):
        self.assertTrue(self.node.alive(), "ternd died\n" + self.node.output_tail())

    def raw(self, user=None, tls=False, source="127.0.0.1"):
        """A RawIMAP closed at the end of the test, logged in as user when given."""
        r = self.node.raw_imap(tls=tls, source=source)
        self.addCleanup(r.close)
        if user is not None:
            r.login(user)
        return r

    def imap(self, user=None, **kw):
        """An imaplib client logged out at the end of the test."""
        c = self.node.imap(user, **kw)

        def bye():
            try:
                c.logout()
            except Exception:
                try:
                    c.shutdown()
                except Exception:
                    pass
        self.addCleanup(bye)
        return c


_user_counter = [0]


def fresh_user(node, prefix="u", quota_mb=None):
    """A new user (unique name) on node; returns the address."""
    _user_counter[0] += 1
    addr = "%s%d-%d@%s" % (prefix, _user_counter[0], random.getrandbits(20), node.domain)
    node.add_user(addr, quota_mb=quota_mb)
    return addr

def main():
    unittest.main(verbosity=2)


# ---- CalDAV / CardDAV (issue 7) ---------------------------------------------------------
# DAV is served on http_alt (8800) and https_alt (8443) shifted by the port base (and on
# 80/443). Helpers are functions of a Node so that the class above stays as it is.

DAV_HTTP, DAV_HTTPS = 8800, 8443
NS_DAV = "DAV:"
NS_CALDAV = "urn:ietf:params:xml:ns:caldav"
NS_CARDDAV = "urn:ietf:params:xml:ns:carddav"
NS_CS = "http://calendarserver.org/ns/"
DAV_NAMESPACES = {"d": NS_DAV, "c": NS_CALDAV, "card": NS_CARDDAV, "cs": NS_CS}


def dav_base(node, tls=False):
    """The base URL of the node's DAV service: http://127.0.0.1:(8800+base) or https 8443."""
    return "%s://127.0.0.1:%d" % ("https" if tls else "http", node.port(DAV_HTTPS if tls else DAV_HTTP))


class DavResponse:
    """status, reason, headers ({lower-case name: value}), body (bytes); xml() parses it."""

    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def text(self):
        return self.body.decode(errors="replace")

    def xml(self):
        import xml.etree.ElementTree as ET
        return ET.fromstring(self.body)

    def __repr__(self):
        return "<%d %s %r>" % (self.status, self.reason, self.body[:600])


def basic_auth(user, password=USER_PASSWORD):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


class DavConn:
    """A raw HTTP/1.1 keep-alive client (http.client) on the node's DAV port, with Basic
    auth of user when given: for what the caldav library cannot do (ETag conflicts,
    CardDAV, bad input). request() reconnects once when the server closed the connection."""

    def __init__(self, node, user=None, password=USER_PASSWORD, tls=False, timeout=30):
        self.node, self.user, self.password, self.tls, self.timeout = node, user, password, tls, timeout
        self.conn = None

    def _connect(self):
        port = self.node.port(DAV_HTTPS if self.tls else DAV_HTTP)
        if self.tls:
            self.conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=self.timeout,
                                                    context=tls_context())
        else:
            self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=self.timeout)

    def request(self, method, path, body=None, headers=None, depth=None, auth=True):
        hdrs = {}
        if auth and self.user is not None:
            hdrs["Authorization"] = basic_auth(self.user, self.password)
        if depth is not None:
            hdrs["Depth"] = str(depth)
        if body is not None and isinstance(body, str):
            body = body.encode()
        if body is not None and body.lstrip()[:5] == b"<?xml":
            hdrs["Content-Type"] = 'application/xml; charset="utf-8"'
        hdrs.update(headers or {})
        for attempt in (0, 1):
            if self.conn is None:
                self._connect()
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
                continue
            out = DavResponse(resp.status, resp.reason, {k.lower(): v for k, v in resp.getheaders()}, data)
            if resp.will_close:
                self.close()
            return out

    def propfind(self, path, props, depth=0, extra_ns=""):
        """PROPFIND with <prop> of the given element strings ("d:getetag", "c:calendar-home-set")."""
        body = ('<?xml version="1.0" encoding="utf-8"?>\n<d:propfind xmlns:d="DAV:" '
                'xmlns:c="%s" xmlns:card="%s" xmlns:cs="%s"%s><d:prop>%s</d:prop></d:propfind>'
                % (NS_CALDAV, NS_CARDDAV, NS_CS, extra_ns, "".join("<%s/>" % p for p in props)))
        return self.request("PROPFIND", path, body, depth=depth)

    def report(self, path, body, depth=1):
        return self.request("REPORT", path, body, depth=depth)

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None


def multistatus(resp):
    """A 207 body as {href (unquoted path): {"status": int or None, "props": {clark tag:
    Element}, "prop_status": {clark tag: int}}}; "status" is the response-level status
    (sync-collection deletions: 404), props only those in a 2xx propstat."""
    if resp.status != 207:
        raise AssertionError("expected 207 Multi-Status, got %r" % resp)
    out = {}
    for r in resp.xml().findall("{DAV:}response"):
        href = urllib.parse.unquote(urllib.parse.urlsplit(r.findtext("{DAV:}href").strip()).path)
        entry = out.setdefault(href, {"status": None, "props": {}, "prop_status": {}})
        st = r.findtext("{DAV:}status")
        if st:
            entry["status"] = int(st.split()[1])
        for ps in r.findall("{DAV:}propstat"):
            code = int(ps.findtext("{DAV:}status").split()[1])
            prop = ps.find("{DAV:}prop")
            for p in (prop if prop is not None else []):
                entry["prop_status"][p.tag] = code
                if 200 <= code < 300:
                    entry["props"][p.tag] = p
    return out


def sync_token_of(resp):
    t = resp.xml().findtext("{DAV:}sync-token")
    return t.strip() if t else t


def href_text(elem):
    """The unquoted path of the first DAV:href inside elem (a property), or None."""
    if elem is None:
        return None
    h = elem.find(".//{DAV:}href")
    if h is None or h.text is None:
        return None
    return urllib.parse.unquote(urllib.parse.urlsplit(h.text.strip()).path)


def dav_error_elements(resp):
    """Clark names of the children of a DAV:error body ({ns}name), [] when not one."""
    try:
        root = resp.xml()
    except Exception:               # noqa: BLE001 - not XML at all
        return []
    if root.tag != "{DAV:}error":
        return []
    return [c.tag for c in root]


def ical_stamp(t):
    """A UTC iCalendar DATE-TIME from a unix time or a datetime."""
    if not isinstance(t, (int, float)):
        t = t.timestamp()
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))


def ical_event(uid, start, end, summary="Event", extra=(), component="VEVENT", overrides=()):
    """A VCALENDAR text (CRLF) with one component: DTSTART/DTEND are unix times or
    iCalendar strings, extra = more property lines; overrides = [(recurrence-id, start,
    end, summary)] as further components with the same UID."""
    def t(x):
        return x if isinstance(x, str) else ical_stamp(x)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Tern tests//EN",
             "BEGIN:" + component, "UID:" + uid, "DTSTAMP:20300101T000000Z",
             "DTSTART:" + t(start)]
    if end is not None:
        lines.append(("DUE:" if component == "VTODO" else "DTEND:") + t(end))
    lines += ["SUMMARY:" + summary] + list(extra) + ["END:" + component]
    for rid, s, e, summ in overrides:
        lines += ["BEGIN:" + component, "UID:" + uid, "DTSTAMP:20300101T000000Z",
                  "RECURRENCE-ID:" + t(rid), "DTSTART:" + t(s), "DTEND:" + t(e),
                  "SUMMARY:" + summ, "END:" + component]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def vcard(uid, fn, email_addr=None, tel=None, version="3.0", extra=()):
    """A vCard text (CRLF)."""
    parts = fn.split(" ", 1)
    lines = ["BEGIN:VCARD", "VERSION:" + version, "UID:" + uid, "FN:" + fn,
             "N:%s;%s;;;" % (parts[-1], parts[0] if len(parts) > 1 else "")]
    if email_addr:
        lines.append("EMAIL;TYPE=INTERNET:" + email_addr)
    if tel:
        lines.append("TEL;TYPE=CELL:" + tel)
    lines += list(extra) + ["END:VCARD"]
    return "\r\n".join(lines) + "\r\n"


def ical_unfold(text):
    """Content lines of an iCalendar/vCard text, unfolded."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return re.sub(r"\r?\n[ \t]", "", text).replace("\r\n", "\n").split("\n")


def ical_components(text, name="VEVENT"):
    """[{PROPNAME: [full line, ...]}] of each component `name` in the text (unfolded)."""
    comps, cur, depth = [], None, 0
    for line in ical_unfold(text):
        if line == "BEGIN:" + name:
            cur, depth = {}, 0
            continue
        if cur is None:
            continue
        if line.startswith("BEGIN:"):
            depth += 1
        elif line.startswith("END:"):
            if depth == 0 and line == "END:" + name:
                comps.append(cur)
                cur = None
                continue
            depth -= 1
        if depth == 0 and line:
            prop = re.split(r"[;:]", line, 1)[0].upper()
            cur.setdefault(prop, []).append(line)
    return comps


def ical_value(line):
    """The value of a content line (after the first unquoted ':')."""
    inq = False
    for i, ch in enumerate(line):
        if ch == '"':
            inq = not inq
        elif ch == ":" and not inq:
            return line[i + 1:]
    return ""


def ical_param(line, name):
    """A parameter of a content line, upper-cased, or None."""
    m = re.search(r";%s=(\"[^\"]*\"|[^;:]*)" % re.escape(name), line.split(":mailto")[0], re.I)
    return m.group(1).strip('"').upper() if m else None


def freebusy_periods(text):
    """[(start, end, fbtype)] of the FREEBUSY lines of a VFREEBUSY, as unix times."""
    import calendar as _cal
    out = []
    for line in ical_unfold(text):
        if not line.upper().startswith("FREEBUSY"):
            continue
        fbtype = ical_param(line, "FBTYPE") or "BUSY"
        for period in ical_value(line).split(","):
            s, e = period.split("/")
            st = _cal.timegm(time.strptime(s, "%Y%m%dT%H%M%SZ"))
            if e.startswith("P") or e.startswith("+P"):
                m = re.match(r"\+?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$", e)
                w, d, h, mi, sec = (int(x or 0) for x in m.groups())
                en = st + (((w * 7 + d) * 24 + h) * 60 + mi) * 60 + sec
            else:
                en = _cal.timegm(time.strptime(e, "%Y%m%dT%H%M%SZ"))
            out.append((st, en, fbtype))
    return sorted(out)


def dav_client(node, user, password=USER_PASSWORD, path="/", tls=False):
    """A python3-caldav DAVClient (Debian's, /usr/bin/python3) on the node's DAV port with
    Basic auth, starting at path."""
    try:
        import caldav
        import requests
        import urllib3
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    except ImportError:
        raise unittest.SkipTest("python3-caldav is not installed (run with /usr/bin/python3)")
    return caldav.DAVClient(url=dav_base(node, tls) + path, username=user, password=password,
                            auth=requests.auth.HTTPBasicAuth(user, password), ssl_verify_cert=False)


def wait_dav(node, timeout=30):
    """Wait until the DAV port answers HTTP (any status); fail when it never does."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        c = DavConn(node, timeout=5)
        try:
            r = c.request("OPTIONS", "/")
            return r
        except OSError as e:
            last = e
            time.sleep(0.3)
        finally:
            c.close()
    raise AssertionError("nothing answers HTTP on the DAV port %d: %s" % (node.port(DAV_HTTP), last))


def add_users_fast(node, addresses, full_names=None, threads=4):
    """Add many users through the admin API (POST /api/v1/users on admin.sock), a few at a
    time; full_names: {address: name}."""
    errors = []
    todo = list(addresses)
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                a = todo.pop()
            body = {"address": a, "password": USER_PASSWORD}
            if full_names and a in full_names:
                body["full_name"] = full_names[a]
            st, resp = node.request("POST", "/api/v1/users", body)
            if st != 201:
                with lock:
                    errors.append((a, st, resp))
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise CtlError("adding users failed: %r" % errors[:3])


# vdirsyncer (Debian package) two-way sync of one collection against a filesystem storage:
# format VDIRSYNCER_CONF with tmp (a temp dir), url (the DAV base URL ending in /), user,
# pw, kind ("caldav" or "carddav"), ext (".ics" / ".vcf") and coll (the collection name);
# the local copies are in TMP/local/COLL/.
VDIRSYNCER_CONF = """[general]
status_path = "%(tmp)s/status/"

[pair tern]
a = "tern_remote"
b = "tern_local"
collections = ["%(coll)s"]
conflict_resolution = "a wins"

[storage tern_remote]
type = "%(kind)s"
url = "%(url)s"
username = "%(user)s"
password = "%(pw)s"

[storage tern_local]
type = "filesystem"
path = "%(tmp)s/local/"
fileext = "%(ext)s"
"""


def vdirsyncer_run(conf, cmd, timeout=120):
    """vdirsyncer -c CONF CMD, answering yes to its questions (discover offers to create
    the local collection); AssertionError with its output on a non-zero exit."""
    r = subprocess.run(["vdirsyncer", "-c", conf, cmd], input="y\ny\ny\n", capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("vdirsyncer %s exited %d:\n%s\n%s" % (cmd, r.returncode, r.stdout, r.stderr))
    return r


def read_dir(path):
    """{file name: text} of the files of a directory."""
    out = {}
    for fn in os.listdir(path):
        with open(os.path.join(path, fn)) as f:
            out[fn] = f.read()
    return out


# ---- distributed domains (issues 6 and 7) ------------------------------------------

class CleanupOnError:
    """`with CleanupOnError(a, b):` cleans up the nodes when the block raises, then lets the
    exception through: for setUpClass, after which tearDownClass does not run."""

    def __init__(self, *nodes):
        self.nodes = nodes

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is not None:
            for n in self.nodes:
                n.cleanup()
        return False


def assert_alive(test, *nodes):
    """Fails test (a TestCase) with its output tail when a node's ternd has died."""
    for n in nodes:
        test.assertTrue(n.alive(), "%s died\n%s" % (n.name, n.output_tail()))


def make_nodes(names, conf, domain="example.test"):
    """One (unstarted) Node per name, all with the same domain and conf sections."""
    return [Node(name=n, domain=domain, conf=conf) for n in names]


def set_od_directory(node, domain, fx):
    """Maps domain at node to the slapd of fx (tests/fixtures/dirfixture.py, which the test
    has imported) as an Open Directory, bound with the fixture's service account."""
    import dirfixture
    bindpw = node.write_file("bind.pw", dirfixture.SERVICE_PASSWORD + "\n")
    node.ctl("directory", "set", domain, "--type", "od",
             "--server", "127.0.0.1:%d" % fx.primary.ldap_port,
             "--bind-dn", dirfixture.OD_SERVICE_DN, "--bind-password-file", bindpw,
             "--base", dirfixture.OD_BASE, "--auth", "bind")


def cluster_join(master, node, fingerprint=None, admin=None, password_file=None, timeout=120):
    """`ternctl cluster join` of node to master, pinning fingerprint (master's own when not
    given), with master's admin login unless another is given: the CompletedProcess."""
    return node.run_ctl("cluster", "join", "--master", "127.0.0.1:%d" % master.port(4040),
                        "--admin", admin or master.admin_address,
                        "--password-file", password_file or master.pwfile,
                        "--master-fingerprint", fingerprint or fingerprint_of(master),
                        json_out=False, timeout=timeout)


def join_cluster(master, *slaves):
    """Joins each of slaves to master; AssertionError naming the first join that failed."""
    fp = fingerprint_of(master)
    for n in slaves:
        r = cluster_join(master, n, fingerprint=fp)
        if r.returncode != 0:
            raise AssertionError("cluster join of %s failed (%d): %s" % (n.name, r.returncode, r.stderr))


def start_cluster(master, *slaves):
    """Starts master and slaves, then joins the slaves to master (see join_cluster)."""
    for n in (master,) + slaves:
        n.start()
    join_cluster(master, *slaves)


class ClusterPairTestCase(unittest.TestCase):
    """A test class with two nodes of its own in DOMAIN with CONF: alpha, the master, and
    beta, joined to it; then the subclass's set_up_nodes (its users and the like) runs.
    Both must still be alive after every test."""
    DOMAIN = "example.test"
    CONF = {}

    @classmethod
    def setUpClass(cls):
        cls.alpha, cls.beta = make_nodes(("alpha", "beta"), cls.CONF, domain=cls.DOMAIN)
        with CleanupOnError(cls.alpha, cls.beta):
            start_cluster(cls.alpha, cls.beta)
            cls.set_up_nodes()

    @classmethod
    def set_up_nodes(cls):
        """What the subclass adds to the joined nodes before its tests."""

    @classmethod
    def tearDownClass(cls):
        cls.alpha.cleanup()
        cls.beta.cleanup()

    def tearDown(self):
        assert_alive(self, self.alpha, self.beta)


class DirectoryClusterTestCase(unittest.TestCase):
    """A test class with the slapd fixture (tests/fixtures/dirfixture.py, which the test
    has imported) and three nodes of its own with CONF: node-a, the master, maps DOMAIN to
    the fixture's directory; once every address of MAPPED is on the master (within WAIT
    seconds), node-b and node-c join it; then the subclass's set_up_nodes (homes, mail and
    the like) runs. When that fails, and after the tests, the nodes and the fixture stop."""
    DOMAIN = "example.test"
    CONF = {}
    MAPPED = ()
    WAIT = 30.0

    @classmethod
    def setUpClass(cls):
        import dirfixture
        cls.fx = dirfixture.start(ldap=True, backup=False, kdc=False)
        cls.a, cls.b, cls.c = make_nodes(("node-a", "node-b", "node-c"), cls.CONF, domain=cls.DOMAIN)
        try:
            for n in (cls.a, cls.b, cls.c):
                n.start()
            set_od_directory(cls.a, cls.DOMAIN, cls.fx)
            cls.a.wait_for(lambda: all(user_record(cls.a, x) is not None for x in cls.MAPPED), cls.WAIT,
                           "users mapped on the master")
            join_cluster(cls.a, cls.b, cls.c)
            cls.set_up_nodes()
        except BaseException:
            cls.cleanup_all()
            raise

    @classmethod
    def set_up_nodes(cls):
        """What the subclass adds to the joined nodes before its tests."""

    @classmethod
    def cleanup_all(cls):
        for n in (cls.a, cls.b, cls.c):
            n.cleanup()
        cls.fx.stop()

    @classmethod
    def tearDownClass(cls):
        cls.cleanup_all()


def user_record(node, address):
    """`ternctl user show address` at node: the parsed record, or None when it has no such user."""
    r = node.run_ctl("user", "show", address)
    return json.loads(r.stdout) if r.returncode == 0 else None


def set_homes(master, homes):
    """Moves each user of homes ({address: node name}) to that home, at master."""
    for address, home in homes.items():
        master.ctl("user", "set", address, "--home", home)


def wait_homes(homes, *nodes, timeout=30.0, what=None):
    """Waits until each of nodes has every user of homes ({address: node name, or None for
    any home}) with that home: until the master's changes have replicated there."""
    def ok(node):
        for address, home in homes.items():
            rec = user_record(node, address)
            if rec is None or (home is not None and rec.get("home") != home):
                return False
        return True
    for n in nodes:
        n.wait_for(lambda: ok(n), timeout, what or "%s homed as set, seen by %s" % (", ".join(homes), n.name))


def cluster_nodes(node):
    """`ternctl cluster status` at node: {node name: its status entry}."""
    return by_key(node.ctl("cluster", "status")["nodes"], "name")


def wait_available(node, names, timeout=30.0):
    """Waits until node sees each node of names available (or as itself)."""
    def ok():
        st = cluster_nodes(node)
        return all(n in st and st[n]["status"] in ("available", "this server") for n in names)
    node.wait_for(ok, timeout, "%s sees %s available" % (node.name, ", ".join(names)))


def ical_attendee_partstat(text, address):
    """PARTSTAT of the ATTENDEE address in the VEVENTs of text (NEEDS-ACTION when it has
    none), or None when address is no attendee: a resource's answer in the organiser's copy."""
    for comp in ical_components(text):
        for line in comp.get("ATTENDEE", []):
            if ical_value(line).lower() == "mailto:" + address.lower():
                return ical_param(line, "PARTSTAT") or "NEEDS-ACTION"
    return None


# ---- mailbox migration (issue 8) ------------------------------------------------------
# A mailbox's full digest through IMAP and DAV logins (what a client with cached state
# relies on), filling a mailbox fast, the migrate commands, and a node's config rewritten
# between restarts (fault injection).

MIGRATE_TERMINAL = ("done", "failed", "cancelled")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_FLAG_CHOICES = ("\\Seen", "\\Flagged", "\\Answered", "\\Draft", "$Label1", "Proj-Alpha", "NonJunk")


def set_conf(node, conf):
    """Rewrites node's tern.conf from conf ({section: {key: value}}); used at its next start."""
    node.config = node.write_file("tern.conf", make_conf(conf))


def imap_date(t):
    """An IMAP date-time ("07-Feb-2024 10:11:12 +0000") of a unix time."""
    g = time.gmtime(t)
    return "%02d-%s-%04d %02d:%02d:%02d +0000" % (g.tm_mday, _MONTHS[g.tm_mon - 1], g.tm_year,
                                                   g.tm_hour, g.tm_min, g.tm_sec)


def random_message(rng, tag, to, size=None):
    """A message (bytes) with a unique Message-ID <tag@migrate.test> and Subject tag, of
    about size bytes (mixed sizes when None: mostly small, some large) of varied text."""
    if size is None:
        x = rng.random()
        size = (rng.randint(600, 4000) if x < 0.70 else rng.randint(8000, 40000) if x < 0.97
                else rng.randint(80000, 160000) if x < 0.998 else rng.randint(900000, 1100000))
    hdr = ("From: Sender %d <s%d@remote.test>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@migrate.test>\r\n"
           "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=us-ascii\r\n\r\n" % (rng.randint(1, 99), rng.randint(1, 99), to, tag, tag))
    need = max(0, size - len(hdr))
    body = base64.encodebytes(rng.randbytes(need * 3 // 4 + 3)).replace(b"\n", b"\r\n")[:need]
    return hdr.encode() + body + b"\r\n"


def imap_list_folders(r):
    """Names of the selectable folders of a logged-in RawIMAP, in LIST order."""
    names = []
    for u in untagged_of(r.ok('LIST "" "*"'), "LIST"):
        toks = imap_parse(u)
        attrs = [str(a).lower() for a in toks[2]]
        name = toks[4]
        name = name.decode() if isinstance(name, bytes) else str(name)
        if "\\noselect" not in attrs and "\\nonexistent" not in attrs:
            names.append(name)
    return names


def imap_status(r, folder):
    """{MESSAGES, UIDNEXT, UIDVALIDITY, HIGHESTMODSEQ} of a folder by STATUS."""
    u = untagged_of(r.ok("STATUS %s (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)" % imap_quote(folder)),
                    "STATUS")
    toks = imap_parse(u[-1])
    items = toks[3]
    return {str(items[i]).upper(): int(items[i + 1]) for i in range(0, len(items) - 1, 2)}


def imap_mailbox_digest(r, folder, batch=200):
    """{"uidvalidity", "uidnext", "highestmodseq", "messages": {uid: {"flags" (sorted
    tuple, no \\Recent), "internaldate", "sha256", "size", "modseq", "message_id"}}} of one
    folder, read with EXAMINE and UID FETCH BODY.PEEK[] (nothing changes on the server)."""
    st = imap_status(r, folder)
    r.select(folder, examine=True)
    uids = []
    for u in untagged_of(r.ok("UID SEARCH ALL"), "SEARCH"):
        uids += [int(x) for x in u.split()[2:]]
    msgs = {}
    for i in range(0, len(uids), batch):
        part = ",".join(str(x) for x in uids[i:i + batch])
        for items in r.fetch(part, "(UID FLAGS INTERNALDATE MODSEQ BODY.PEEK[])", uid=True).values():
            body = items.get("BODY[]") or b""
            m = re.search(rb"(?im)^Message-ID:\s*<([^>]*)>", body[:8192])
            msgs[int(items["UID"])] = {
                "flags": tuple(sorted(str(f) for f in items["FLAGS"] if str(f).lower() != "\\recent")),
                "internaldate": imap_norm(items["INTERNALDATE"]),
                "sha256": hashlib.sha256(body).hexdigest(), "size": len(body),
                "modseq": int(items["MODSEQ"][0]) if items.get("MODSEQ") else None,
                "message_id": m.group(1).decode(errors="replace") if m else None}
    r.ok("UNSELECT")
    return {"uidvalidity": st["UIDVALIDITY"], "uidnext": st["UIDNEXT"],
            "highestmodseq": st.get("HIGHESTMODSEQ"), "messages": msgs}


def imap_digest(node, user, password=USER_PASSWORD, timeout=120):
    """{folder: imap_mailbox_digest} of every selectable folder of user, by an IMAP login
    at node."""
    r = RawIMAP(node.imap_port(), timeout=timeout)
    try:
        r.login(user, password)
        return {f: imap_mailbox_digest(r, f) for f in imap_list_folders(r)}
    finally:
        r.close()


def digest_compare(before, after, flags_added=None, new_allowed=None):
    """Problems (a list of lines, empty when none) between a recorded digest and a later
    one: every folder kept with its UIDVALIDITY; every recorded UID present with the same
    internal date, body and flags (plus flags_added[(folder, uid)] when given), its modseq
    not lower (equal when untouched); UIDNEXT not lower. New messages (UIDs at or above
    the recorded UIDNEXT) are returned as {folder: [entry...]} in the second value;
    new_allowed (a set of folders, None = any) limits where they may appear."""
    problems, new = [], {}
    flags_added = flags_added or {}
    for folder, b in before.items():
        a = after.get(folder)
        if a is None:
            problems.append("folder %r is gone" % folder)
            continue
        if a["uidvalidity"] != b["uidvalidity"]:
            problems.append("%s: UIDVALIDITY %d -> %d" % (folder, b["uidvalidity"], a["uidvalidity"]))
        if a["uidnext"] < b["uidnext"]:
            problems.append("%s: UIDNEXT %d -> %d" % (folder, b["uidnext"], a["uidnext"]))
        if (b["highestmodseq"] or 0) > (a["highestmodseq"] or 0):
            problems.append("%s: HIGHESTMODSEQ %s -> %s" % (folder, b["highestmodseq"], a["highestmodseq"]))
        for uid, m in b["messages"].items():
            n = a["messages"].get(uid)
            if n is None:
                problems.append("%s: UID %d missing" % (folder, uid))
                continue
            for k in ("internaldate", "sha256"):
                if n[k] != m[k]:
                    problems.append("%s: UID %d %s %r -> %r" % (folder, uid, k, m[k], n[k]))
            added = flags_added.get((folder, uid))
            want = tuple(sorted(set(m["flags"]) | set(added or ())))
            if n["flags"] != want:
                problems.append("%s: UID %d flags %r -> %r (want %r)" % (folder, uid, m["flags"], n["flags"], want))
            if m["modseq"] is not None and n["modseq"] is not None:
                if n["modseq"] < m["modseq"] or (added is None and n["modseq"] != m["modseq"]):
                    problems.append("%s: UID %d modseq %d -> %d" % (folder, uid, m["modseq"], n["modseq"]))
        fresh = [dict(e, uid=u) for u, e in a["messages"].items() if u >= b["uidnext"]]
        odd = [u for u in a["messages"] if u not in b["messages"] and u < b["uidnext"]]
        if odd:
            problems.append("%s: UIDs %r below the old UIDNEXT appeared" % (folder, odd[:5]))
        if fresh:
            new[folder] = fresh
            if new_allowed is not None and folder not in new_allowed:
                problems.append("%s: %d unexpected new messages" % (folder, len(fresh)))
    for folder in after:
        if folder not in before:
            problems.append("folder %r appeared" % folder)
    return problems, new


def fill_mailbox(node, user, folders, count, password=USER_PASSWORD, connections=4, seed=1,
                 expunge_every=30, window=16):
    """Creates folders (besides INBOX) and APPENDs count messages spread over INBOX and
    them, with mixed sizes, internal dates, flags and keywords, over `connections`
    pipelined (LITERAL+) connections; then expunges every expunge_every-th message of
    each folder and changes the flags of some. Returns the message count left."""
    r = RawIMAP(node.imap_port(), timeout=120)
    r.login(user, password)
    have = set(imap_list_folders(r))
    for f in folders:
        if f not in have:
            r.ok("CREATE %s" % imap_quote(f))
    r.close()
    targets = ["INBOX"] + list(folders)
    errors = []

    def worker(k):
        rng = random.Random(seed * 1000 + k)
        c = RawIMAP(node.imap_port(), timeout=120)
        try:
            c.login(user, password)
            tags = []
            for i in range(k, count, connections):
                folder = targets[i % len(targets)]
                msg = random_message(rng, "fill-%d-%d" % (seed, i), user)
                flags = " ".join(f for f in _FLAG_CHOICES if rng.random() < 0.25)
                date = imap_date(1577836800 + rng.randint(0, 4 * 365 * 86400))
                tag = c.next_tag()
                c.send(("%s APPEND %s (%s) %s {%d+}\r\n" % (tag, imap_quote(folder), flags, imap_quote(date),
                                                            len(msg))).encode() + msg + b"\r\n")
                tags.append(tag)
                if len(tags) >= window:
                    st, _, line = c.read_tagged(tags.pop(0))
                    if st != "OK":
                        errors.append(line)
            for t in tags:
                st, _, line = c.read_tagged(t)
                if st != "OK":
                    errors.append(line)
        except Exception as e:          # noqa: BLE001 - reported below
            errors.append(repr(e))
        finally:
            c.close()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(connections)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise AssertionError("fill_mailbox: %d APPENDs failed, first %r" % (len(errors), errors[0]))
    left = 0
    r = RawIMAP(node.imap_port(), timeout=120)
    try:
        r.login(user, password)
        for f in targets:
            r.select(f)
            uids = []
            for u in untagged_of(r.ok("UID SEARCH ALL"), "SEARCH"):
                uids += [int(x) for x in u.split()[2:]]
            gone = uids[::expunge_every] if expunge_every else []
            if gone:
                r.ok("UID STORE %s +FLAGS.SILENT (\\Deleted)" % ",".join(map(str, gone)))
                r.ok("EXPUNGE")
            kept = [u for u in uids if u not in set(gone)]
            touch = kept[1::7]
            if touch:
                r.ok("UID STORE %s +FLAGS.SILENT (\\Answered $Followup)" % ",".join(map(str, touch)))
            left += len(kept)
            r.ok("UNSELECT")
    finally:
        r.close()
    return left


def dav_collections(user):
    """The default DAV collections of user: calendar, tasks and contacts paths."""
    local, dom = user.split("@")
    return ["/calendars/%s/%s/calendar/" % (dom, local), "/calendars/%s/%s/tasks/" % (dom, local),
            "/addressbooks/%s/%s/contacts/" % (dom, local)]


def dav_digest(node, user, password=USER_PASSWORD, collections=None):
    """{collection path: {"ctag", "sync_token", "objects": {href: (etag, sha256 of the
    body)}}} of user's collections (default: dav_collections) at node."""
    c = DavConn(node, user, password)
    out = {}
    try:
        for coll in collections or dav_collections(user):
            ms = multistatus(c.propfind(coll, ["cs:getctag", "d:sync-token"], depth=0))
            props = ms.get(coll, next(iter(ms.values())))["props"]
            ctag = props.get("{%s}getctag" % NS_CS)
            tok = props.get("{DAV:}sync-token")
            objs = {}
            for href, e in multistatus(c.propfind(coll, ["d:getetag"], depth=1)).items():
                if href.rstrip("/") == coll.rstrip("/"):
                    continue
                etag = e["props"].get("{DAV:}getetag")
                g = c.request("GET", href)
                if g.status != 200:
                    raise AssertionError("GET %s -> %r" % (href, g))
                objs[href] = (etag.text if etag is not None else None, hashlib.sha256(g.body).hexdigest())
            out[coll] = {"ctag": ctag.text if ctag is not None else None,
                         "sync_token": tok.text.strip() if tok is not None and tok.text else None,
                         "objects": objs}
    finally:
        c.close()
    return out


def fill_dav(node, user, password=USER_PASSWORD, events=20, todos=10, cards=20):
    """PUTs events (every 3rd weekly recurring, one with an override), todos and vCards
    into user's default collections, then deletes one of each (a tombstone in the sync
    history)."""
    cal, tasks, book = dav_collections(user)
    c = DavConn(node, user, password)
    t0 = 1924992000                      # 2031-01-01
    try:
        def put(path, body, ctype):
            r = c.request("PUT", path, body, headers={"Content-Type": ctype})
            if r.status not in (201, 204):
                raise AssertionError("PUT %s -> %r" % (path, r))
        for i in range(events):
            s = t0 + i * 86400 + 9 * 3600
            extra = ["RRULE:FREQ=WEEKLY;COUNT=%d" % (5 + i)] if i % 3 == 0 else []
            ov = [(s + 7 * 86400, s + 7 * 86400 + 7200, s + 7 * 86400 + 10800, "Moved")] if i == 0 else []
            put("%sev-%d.ics" % (cal, i), ical_event("mig-ev-%d" % i, s, s + 3600, "Event %d" % i, extra, overrides=ov),
                "text/calendar; charset=utf-8")
        for i in range(todos):
            s = t0 + i * 86400
            extra = ["STATUS:COMPLETED"] if i % 2 else ["STATUS:NEEDS-ACTION"]
            put("%stodo-%d.ics" % (tasks, i), ical_event("mig-todo-%d" % i, s, s + 86400, "Todo %d" % i, extra,
                                                         component="VTODO"), "text/calendar; charset=utf-8")
        for i in range(cards):
            put("%scard-%d.vcf" % (book, i), vcard("mig-card-%d" % i, "Person %d Example" % i,
                                                   "p%d@remote.test" % i, "+1555%04d" % i), "text/vcard; charset=utf-8")
        for path in ("%sev-%d.ics" % (cal, events - 1), "%stodo-%d.ics" % (tasks, todos - 1),
                     "%scard-%d.vcf" % (book, cards - 1)):
            r = c.request("DELETE", path)
            if r.status not in (200, 204):
                raise AssertionError("DELETE %s -> %r" % (path, r))
    finally:
        c.close()


class SmtpSender(threading.Thread):
    """Sends numbered messages ("<prefix>-N@migrate.test", size bytes, from a
    random.Random(seed)) to user through `front` on port 25 until stopped, pause seconds
    apart; a 4xx answer or a lost connection is retried with the same message (counted in
    deferrals), a 5xx is an error. accepted: the Message-IDs answered 250."""

    def __init__(self, front, user, prefix, seed, size, timeout=30, pause=0.1):
        super().__init__(daemon=True)
        self.front, self.user, self.prefix = front, user, prefix
        self.size, self.timeout, self.pause = size, timeout, pause
        self.stop_ev = threading.Event()
        self.accepted, self.errors, self.deferrals = [], [], 0
        self.rng = random.Random(seed)

    def run(self):
        n, s = 0, None
        while not self.stop_ev.is_set():
            mid = "%s-%d@migrate.test" % (self.prefix, n + 1)
            msg = random_message(self.rng, mid.split("@")[0], self.user, size=self.size)
            try:
                if s is None:
                    s = smtplib.SMTP("127.0.0.1", self.front.port(25), timeout=self.timeout)
                refused = s.sendmail("sender@remote.test", [self.user], msg)
                if refused:
                    raise smtplib.SMTPRecipientsRefused(refused)
                self.accepted.append(mid)
                n += 1
            except smtplib.SMTPRecipientsRefused as e:
                if list(e.recipients.values())[0][0] >= 500:
                    self.errors.append("%s refused: %r" % (mid, e.recipients))
                    return
                self.deferrals += 1
                s = self.reset(s)
            except smtplib.SMTPResponseException as e:
                if e.smtp_code >= 500:
                    self.errors.append("%s: %d %r" % (mid, e.smtp_code, e.smtp_error))
                    return
                self.deferrals += 1
                s = self.reset(s)
            except (OSError, smtplib.SMTPException):
                self.deferrals += 1
                s = self.reset(s)
            time.sleep(self.pause)
        self.reset(s)

    @staticmethod
    def reset(s):
        """Drops the connection s (when any) and waits a moment: None."""
        if s is not None:
            try:
                s.quit()
            except Exception:           # noqa: BLE001 - the connection is gone anyway
                pass
        time.sleep(0.3)
        return None


def migrate_here(node, *users, wait=False, timeout=600):
    """`ternctl migrate here USERS [--wait]` at node (the target): the CompletedProcess."""
    args = ["migrate", "here"] + list(users) + (["--wait"] if wait else [])
    return node.run_ctl(*args, json_out=False, timeout=timeout)


def migrate_status(node):
    """`ternctl --json migrate status` at node: {user: entry}."""
    return {e["user"]: e for e in node.ctl("migrate", "status")}


def wait_migration(node, user, states=MIGRATE_TERMINAL, timeout=300.0):
    """Waits until node's migrate status shows user in one of states; returns the entry.
    Tolerates the node being briefly unreachable (a restart)."""
    last = [None]

    def ok():
        r = node.run_ctl("migrate", "status", timeout=30)
        if r.returncode != 0:
            return False
        try:
            for e in json.loads(r.stdout):
                if e.get("user", "").lower() == user.lower():
                    last[0] = e
                    return e.get("state") in states
        except ValueError:
            pass
        return False
    node.wait_for(ok, timeout, "migration of %s %s at %s (last %r)" % (user, "/".join(states), node.name, last[0]))
    return last[0]


def holds_nothing(node, address):
    """Problems (list of lines) when node's store still holds anything of address: a
    message in its admin view, or quota usage."""
    st, body = node.request("GET", "/api/v1/users/%s/messages" % urllib.parse.quote(address, safe="@"))
    out = []
    if st == 200 and isinstance(body, list) and body:
        out.append("%s holds %d messages of %s" % (node.name, len(body), address))
    st, body = node.request("GET", "/api/v1/users/%s/stats" % urllib.parse.quote(address, safe="@"))
    if st == 200 and isinstance(body, dict):
        u = body.get("usage") or {}
        if u.get("bytes") or u.get("items"):
            out.append("%s shows usage %r for %s" % (node.name, u, address))
    return out


def https_admin_request(node, method, path, user, password, body=None):
    """One request on node's HTTPS admin port (4040) with Basic credentials: (status,
    parsed JSON or bytes)."""
    conn = http.client.HTTPSConnection("127.0.0.1", node.port(4040), timeout=30, context=tls_context())
    try:
        hdrs = {"Authorization": basic_auth(user, password)}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw
    finally:
        conn.close()


def imap_mailbox_digest_light(node, user, password, folder="INBOX"):
    """The Message-IDs (without <>) of the messages of one folder, by an IMAP login at
    node: a cheap poll for arrivals; a list (duplicates kept) that supports `in`."""
    r = RawIMAP(node.imap_port(), timeout=60)
    try:
        r.login(user, password)
        r.select(folder, examine=True)
        out = []
        for items in r.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])").values():
            for k, v in items.items():
                if k.startswith("BODY[") and isinstance(v, bytes):
                    m = re.search(rb"<([^>]*)>", v)
                    if m:
                        out.append(m.group(1).decode(errors="replace"))
        return out
    except AssertionError:
        return []
    finally:
        r.close()
