"""Helpers for the cluster-mode tests (issue 13): a real redis-server on
127.0.0.1 with a random port and no persistence, and vmscreend nodes that
share one spool tree and audit log (each with its own outbox, metrics file
and HTTP port), as nodes sharing an NFS mount do.
"""
import http.client
import os
import subprocess
import tempfile
import time

from daemon_harness import Daemon, free_port

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"


class Redis:
    """redis-server as a child process: start(), stop(), start() again on
    the same port (its data is gone: no persistence, as the tests want)."""

    def __init__(self, password=None):
        self.password = password
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="vms-redis-")
        self.proc = None

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=20):
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no"] +
            (["--requirepass", self.password] if self.password else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.time() + timeout
        while time.time() < end:
            if self.cli("PING") == "PONG":
                return self
            time.sleep(0.05)
        raise AssertionError("redis-server did not answer within %ss" % timeout)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cli(self, *args):
        """One command through redis-cli; its output, stripped ("" on error)."""
        auth = ["--no-auth-warning", "-a", self.password] if self.password else []
        r = subprocess.run([REDIS_CLI, "-p", str(self.port)] + auth + [str(a) for a in args],
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip() if r.returncode == 0 else ""

    def pending_files(self, stream, group, node):
        """The files of the entries pending for a node (its work in hand)."""
        ids = self.cli("XPENDING", stream, group, "-", "+", "1000", node).split("\n")
        files = []
        for i in range(0, len(ids) - 3, 4):  # id, consumer, idle, deliveries
            out = self.cli("XRANGE", stream, ids[i], ids[i]).split("\n")
            if "file" in out:
                files.append(out[out.index("file") + 1])
        return files


class Node(Daemon):
    """A vmscreend node on the spool tree of `base` (another Node, or None
    for the first: its tree is the shared one)."""

    def __init__(self, name, redis, base=None, workers=1, claim_idle_s=5, extra="",
                 settle_ms=200, password_file=None):
        self.name = name
        self.base = base
        self.http_port = free_port()
        pw = ' password_file = "%s";' % password_file if password_file else ""
        cluster = ('cluster = { redis = "%s"; node = "%s"; claim_idle_s = %s;%s };\n'
                   'http = { listen = "127.0.0.1:%d"; };\n' %
                   (redis.addr, name, claim_idle_s, pw, self.http_port))
        super().__init__(extra=cluster + extra, workers=workers, settle_ms=settle_ms)
        if base is not None:
            self.audit = base.audit  # one audit trail for the spool
            self.write_config()

    def spool_path(self, name="vm"):
        if self.base is not None:
            return self.base.spool_path(name)
        return super().spool_path(name)

    def get(self, path):
        """(status, body) of GET path on this node's HTTP port."""
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read().decode()
        finally:
            c.close()
