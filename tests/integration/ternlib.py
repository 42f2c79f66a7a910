"""Shared helpers of the integration tests: find the built ternd and ternctl, claim a port
base no other test node overlaps, start/stop/kill/restart a node in a temp data dir, run
ternctl and parse its JSON, and talk raw HTTP to the admin socket.

Port bases: a node listens on base + each of PORTS. Bases are picked at random between
10000 and 22000, checked free by binding every port, and recorded in a registry under /tmp
guarded by an fcntl lock, so that tests running in parallel (ctest -j2) never pick two
bases whose port sets meet (nor the base 22500 of contract-check)."""
import fcntl
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

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

    def __init__(self, name="n1", domain="example.test", admin="admin", config_text=None):
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


def fingerprint_of(node):
    return node.ctl("node", "show")["fingerprint"]


def by_key(items, key):
    return {i[key]: i for i in items}


def main():
    unittest.main(verbosity=2)
