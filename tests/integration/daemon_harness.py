"""Shared helpers for the vmscreend integration tests.

Starts the REAL daemon (build/rel/vmscreend, or $VMS_BIN_DIR/vmscreend) on a
temporary spool and config, with NOTIFY_SOCKET pointing at a datagram socket
the test reads, so the sd_notify protocol is exercised too.  Audio is
rendered once per process with flite + sox and copied.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN_DIR = os.path.abspath(os.path.join(REPO, os.environ.get("VMS_BIN_DIR", "build/rel")))
DAEMON = os.path.join(BIN_DIR, "vmscreend")
CLI = os.path.join(BIN_DIR, "vmscreen")
ASAN = "asan" in BIN_DIR
STATES = ("incoming", "active", "released", "hold", "rejected")

_CLIPS = {}
_CLIP_DIR = None

TEXTS = {
    "clean": "Your order ships Monday. Bye.",
    "flagged": "Shut up and listen to me. Bye.",
}
# one-second clips (padded or cut to exactly 1.0 s): fast to screen, for the
# fault and load tests that push hundreds of files through the daemon
SHORT_TEXTS = {
    "clean_1s": "Thanks, bye.",
    "flagged_1s": "Shut up, idiot.",
}


def clip(kind):
    """Path of a rendered clip (16 kHz, 16 bit, padded), rendered once."""
    global _CLIP_DIR
    if kind in _CLIPS:
        return _CLIPS[kind]
    if _CLIP_DIR is None:
        _CLIP_DIR = tempfile.mkdtemp(prefix="vmsd-clips-")
    raw = os.path.join(_CLIP_DIR, kind + ".raw.wav")
    out = os.path.join(_CLIP_DIR, kind + ".wav")
    if kind in SHORT_TEXTS:
        subprocess.run(["flite", "-voice", "slt", "-t", SHORT_TEXTS[kind], "-o", raw],
                       check=True)
        subprocess.run(["sox", "-V1", "-D", raw, "-r", "16000", "-b", "16", out, "pad", "0", "1",
                        "trim", "0", "1"], check=True)
        _CLIPS[kind] = out
        return out
    subprocess.run(["flite", "-voice", "slt", "-t", TEXTS[kind], "-o", raw], check=True)
    subprocess.run(["sox", "-D", raw, "-r", "16000", "-b", "16", out, "pad", "0", "0.5"], check=True)
    _CLIPS[kind] = out
    return out


def free_port():
    """A 127.0.0.1 TCP port nobody listens on now (for a server to take, or a
    webhook that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cleanup_clips():
    if _CLIP_DIR is not None:
        shutil.rmtree(_CLIP_DIR, ignore_errors=True)


class Daemon:
    """A temporary spool tree, a config, and the daemon process."""

    def __init__(self, spools=None, extra="", workers=2, settle_ms=200):
        self.dir = tempfile.mkdtemp(prefix="vmsd-test-")
        os.mkdir(os.path.join(self.dir, "spool"))  # like tmpfiles.d does
        self.spools = spools or [("vm", "gate")]
        self.audit = os.path.join(self.dir, "audit.jsonl")
        self.metrics = os.path.join(self.dir, "metrics.prom")
        self.conf = os.path.join(self.dir, "vmscreend.conf")
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.outbox = os.path.join(self.dir, "outbox")
        self.workers = workers
        self.settle_ms = settle_ms
        self.extra = extra
        self.proc = None
        self.cmd_prefix = []  # e.g. setpriv or strace in front of the daemon
        self.notify_path = os.path.join(self.dir, "notify.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.notify.settimeout(0.2)
        self.messages = []
        # read notifications all the time, as systemd does: a full socket
        # buffer would block the daemon's sd_notify()
        self._stop_reader = False
        self._reader = threading.Thread(target=self._read_notify, daemon=True)
        self._reader.start()
        self.write_config()

    def spool_path(self, name="vm"):
        return os.path.join(self.dir, "spool", name)

    def config_text(self, spools=None, extra=None):
        spools = spools or self.spools
        items = ",\n  ".join(
            '{ name = "%s"; path = "%s"; mode = "%s"; }' % (n, self.spool_path(n), m)
            for n, m in spools)
        return ("workers = %d;\naudit_log = \"%s\";\nmetrics_file = \"%s\";\n"
                "metrics_interval_s = 0.5;\nsettle_ms = %d;\nrescan_interval_s = 1;\n"
                "retry_interval_s = 1;\nmin_free_mb = 1;\noutbox_dir = \"%s\";\n"
                "spools = (\n  %s\n);\n%s\n" %
                (self.workers, self.audit, self.metrics, self.settle_ms,
                 self.outbox, items, self.extra if extra is None else extra))

    def write_config(self, text=None):
        # 0640 as installed: a config holding a Slack or Teams URL must be
        # the service's and root's alone (issue 18)
        fd = os.open(self.conf + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        with os.fdopen(fd, "w") as f:
            f.write(self.config_text() if text is None else text)
        os.rename(self.conf + ".tmp", self.conf)

    def start(self, wait_ready=True, args=(), allow_root_flag=True):
        env = dict(os.environ)
        env["NOTIFY_SOCKET"] = self.notify_path
        env["WATCHDOG_USEC"] = "2000000"
        env.pop("WATCHDOG_PID", None)
        self.messages.clear()  # READY=1 must come from this run
        cmd = list(self.cmd_prefix) + [DAEMON, "--config", self.conf]
        if os.geteuid() == 0 and allow_root_flag:
            cmd.append("--allow-root")
        cmd += list(args)
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
        if wait_ready:
            self.wait_notify("READY=1", timeout=120)
        return self.proc

    def _read_notify(self):
        while not self._stop_reader:
            try:
                msg = self.notify.recv(4096).decode()
            except (socket.timeout, OSError):
                continue
            self.messages.append(msg)
            if len(self.messages) > 2000:
                del self.messages[:1000]

    def wait_notify(self, what, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            if any(what in m for m in list(self.messages)):
                return True
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("daemon exited (%s) before %r:\n%s" %
                                     (self.proc.returncode, what, self.log_text()))
            time.sleep(0.05)
        raise AssertionError("no %r from the daemon within %ss:\n%s" %
                             (what, timeout, self.log_text()))

    def daemon_pid(self):
        """The daemon's pid: the process started, or its traced child when
        it was started under strace (cmd_prefix)."""
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                kids = f.read().split()
        except OSError:
            kids = []
        return int(kids[0]) if kids else self.proc.pid

    def signal(self, sig):
        os.kill(self.daemon_pid(), sig)

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            pid = self.daemon_pid()
            if pid != self.proc.pid:
                os.kill(pid, signal.SIGKILL)
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout=60):
        """SIGTERM and the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.signal(signal.SIGTERM)  # the daemon, not a strace in front of it
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("daemon ignored SIGTERM for %ss" % timeout)

    def close(self):
        try:
            self.kill9()
        finally:
            self._stop_reader = True
            self._reader.join()
            self.notify.close()
            if os.environ.get("VMS_KEEP_TMP") is None:
                shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        try:
            # errors="replace": a hostile file name must not break the reader
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # --- producers -------------------------------------------------------

    def drop(self, name, kind="clean", spool="vm", sidecar=None):
        """Producer contract: write elsewhere (a dotfile), then rename in."""
        inc = os.path.join(self.spool_path(spool), "incoming")
        if sidecar is not None:
            stem = name.rsplit(".", 1)[0]
            with open(os.path.join(inc, "." + stem + ".json.tmp"), "w") as f:
                json.dump(sidecar, f)
            os.rename(os.path.join(inc, "." + stem + ".json.tmp"),
                      os.path.join(inc, stem + ".json"))
        tmp = os.path.join(inc, "." + name + ".tmp")
        shutil.copyfile(clip(kind), tmp)
        os.rename(tmp, os.path.join(inc, name))

    # --- observers -------------------------------------------------------

    def where(self, spool="vm"):
        """{producer name: [state, ...]} for every audio file in the spool."""
        out = {}
        base = self.spool_path(spool)
        for st in STATES:
            d = os.path.join(base, st)
            if not os.path.isdir(d):
                continue
            for f in os.listdir(d):
                if st == "incoming" and f.startswith(".claim-"):
                    # a claim a kill interrupted: the producer's file, which
                    # the next start gives its name back, or removes when
                    # the copy already landed (then the item counts, not this)
                    item = f[len(".claim-"):]
                    if any(os.path.exists(os.path.join(base, s2, item)) for s2 in STATES):
                        continue
                    name = f.split("_", 1)[1]
                elif f.startswith(".") or f.endswith(".json"):
                    continue
                else:
                    name = f if st == "incoming" else f.split("_", 1)[1]
                out.setdefault(name, []).append(st)
        return out

    def wait_done(self, names, spool="vm", timeout=300):
        """Wait until every name is in a final state; return where()."""
        end = time.time() + timeout
        while time.time() < end:
            w = self.where(spool)
            if all(n in w and w[n][0] in ("released", "hold", "rejected") for n in names):
                return w
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("daemon died:\n" + self.log_text())
            time.sleep(0.2)
        raise AssertionError("not done within %ss: %s\n%s" %
                             (timeout, {n: self.where(spool).get(n) for n in names},
                              self.log_text()[-4000:]))

    def verdict(self, name, spool="vm"):
        """(state, verdict object) of a finished item, by producer name."""
        base = self.spool_path(spool)
        for st in ("released", "hold", "rejected"):
            for f in os.listdir(os.path.join(base, st)):
                if f.endswith(".json") or f.startswith("."):
                    continue
                if f.split("_", 1)[1] == name:
                    stem = f.rsplit(".", 1)[0] if "." in f else f
                    with open(os.path.join(base, st, stem + ".verdict.json")) as vf:
                        return st, json.load(vf)
        raise AssertionError("%s not finished" % name)

    def proc_status(self, key):
        """A /proc/PID/status field of the running daemon in kB (VmHWM,
        VmRSS...), or None."""
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1])
        except (OSError, AttributeError):
            pass
        return None

    def fds(self):
        """{fd: target} of the running daemon's open descriptors."""
        d = "/proc/%d/fd" % self.proc.pid
        out = {}
        for fd in os.listdir(d):
            try:
                out[int(fd)] = os.readlink(os.path.join(d, fd))
            except OSError:
                pass
        return out

    def audit_lines(self):
        if not os.path.exists(self.audit):
            return []
        with open(self.audit) as f:
            return [json.loads(line) for line in f if line.strip()]

    def cli(self, *args):
        env = dict(os.environ)
        env["VMSCREEN_CONFIG"] = self.conf
        return subprocess.run([CLI] + list(args), capture_output=True, text=True, env=env,
                              timeout=60)
