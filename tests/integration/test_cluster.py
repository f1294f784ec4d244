#!/usr/bin/env python3
"""Cluster mode, fast (issue 13): two real vmscreend nodes share one spool
through a real redis-server on 127.0.0.1 (random port, no persistence).
Twenty files are each screened once, by one node or the other; a single
daemon is refused on a cluster's spool; while Redis is down /healthz says
503 with the reason and the log says the node waits; when it is back the
nodes carry on.  issue 18: a node whose spool configuration (mode...)
differs from the cluster's works nothing of it (log, /healthz, metrics).  The kill -9 and outage run is tests/faults/test_cluster.py.
"""
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_harness import DAEMON, Daemon, cleanup_clips  # noqa: E402
from cluster_harness import REDIS_SERVER, Node, Redis  # noqa: E402

FINAL = ("released", "hold", "rejected")
WAITING = "cluster: redis 127.0.0.1:%d unreachable: waiting (no claims, no new work)"


def tearDownModule():
    cleanup_clips()


def wait_for(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("not within %ss: %s" % (timeout, what))


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
@unittest.skipUnless(os.path.exists(REDIS_SERVER), "redis-server not installed")
class TwoNodes(unittest.TestCase):
    def setUp(self):
        self.redis = Redis().start()
        self.a = Node("vm1", self.redis)
        self.b = Node("vm2", self.redis, base=self.a)

    def tearDown(self):
        self.b.close()
        self.a.close()
        self.redis.stop()
        shutil.rmtree(self.redis.dir, ignore_errors=True)

    def test_twenty_files_each_screened_once_and_healthz_while_redis_is_down(self):
        a, b = self.a, self.b
        a.start()
        b.start()
        names = ["c%02d.wav" % i for i in range(20)]
        for i, n in enumerate(names):
            a.drop(n, "flagged_1s" if i % 4 == 0 else "clean_1s")
        w = a.wait_done(names, timeout=240)
        for n in names:
            self.assertEqual(len(w[n]), 1, (n, w[n]))
            st, v = a.verdict(n)
            self.assertEqual(st, "released" if v["verdict"] == "pass" else "hold", n)
        base = a.spool_path()
        self.assertEqual(os.listdir(os.path.join(base, "incoming")), [])
        wait_for(lambda: os.listdir(os.path.join(base, "active")) == [], 30, "active/ empty")
        verdicts = [x for x in a.audit_lines() if x["event"] == "verdict"]
        self.assertEqual(sorted(x["name"] for x in verdicts), sorted(names),
                         "each file screened exactly once")
        # both nodes worked, and the stream is empty once everything is acked
        wait_for(lambda: (a.log_text() + b.log_text()).count(" -> ") == 20, 30,
                 "20 placements logged")
        self.assertGreater(a.log_text().count(" -> "), 0, "node vm1 screened nothing")
        self.assertGreater(b.log_text().count(" -> "), 0, "node vm2 screened nothing")
        wait_for(lambda: self.redis.cli("XLEN", "vmscreen:items") == "0", 30, "stream empty")
        st, body = a.get("/healthz")
        self.assertEqual((st, body), (200, "ok\n"))
        st, body = b.get("/metrics")
        self.assertIn('vmscreen_cluster_up{node="vm2"} 1', body)
        self.assertIn("vmscreen_cluster_stream_length", body)

        # a single daemon is refused on the cluster's spool
        single = Daemon()
        try:
            single.write_config(single.config_text().replace(single.spool_path(),
                                                             a.spool_path()))
            single.start(wait_ready=False)
            self.assertNotEqual(single.proc.wait(timeout=120), 0)
            self.assertIn("another vmscreend is running on it", single.log_text())
        finally:
            single.close()

        # Redis away: 503 with the reason, one clear log line, no claims
        self.redis.stop()
        line = WAITING % self.redis.port
        wait_for(lambda: a.get("/healthz")[0] == 503 and b.get("/healthz")[0] == 503, 30,
                 "healthz 503 on both nodes")
        st, body = a.get("/healthz")
        self.assertIn(line, body)
        wait_for(lambda: line in a.log_text() and line in b.log_text(), 30, "the log line")
        a.drop("late.wav", "clean_1s")
        time.sleep(3)
        self.assertEqual(a.where()["late.wav"], ["incoming"], "claimed while Redis was down")
        self.assertLessEqual(a.log_text().count(line), 2, "the waiting line repeats")
        # back: the nodes reconnect, claim and screen
        self.redis.start()
        a.wait_done(["late.wav"], timeout=120)
        wait_for(lambda: a.get("/healthz") == (200, "ok\n"), 30, "healthz ok again")
        self.assertEqual(a.stop(), 0)
        self.assertEqual(b.stop(), 0)


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
@unittest.skipUnless(os.path.exists(REDIS_SERVER), "redis-server not installed")
class Auth(unittest.TestCase):
    def test_password_file_authenticates_and_a_wrong_one_waits(self):
        """Redis with requirepass: a node with the password file screens; a
        node with a wrong password says why it waits and claims nothing."""
        redis = Redis(password="s3cret-" + os.urandom(4).hex()).start()
        a = Node("vm1", redis)
        try:
            pw = os.path.join(a.dir, "redis.pass")
            fd = os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            os.write(fd, ("wrong\n").encode())
            os.close(fd)
            a.write_config(a.config_text(extra=a.extra.replace(
                "claim_idle_s = 5;", 'claim_idle_s = 5; password_file = "%s";' % pw)))
            a.start()
            wait_for(lambda: "AUTH" in a.log_text(), 30, "the AUTH failure logged")
            self.assertIn(WAITING % redis.port, a.log_text())
            self.assertEqual(a.get("/healthz")[0], 503)
            a.drop("p.wav", "clean_1s")
            time.sleep(2)
            self.assertEqual(a.where()["p.wav"], ["incoming"])
            self.assertEqual(a.stop(), 0)
            with open(pw, "w") as f:
                f.write(redis.password + "\n")
            a.start()
            a.wait_done(["p.wav"], timeout=120)
            wait_for(lambda: a.get("/healthz") == (200, "ok\n"), 30, "healthz ok")
            self.assertEqual(a.stop(), 0)
            # a password file others can read is refused by --check
            os.chmod(pw, 0o644)
            r = subprocess.run([DAEMON, "--config", a.conf, "--check", "--allow-root"],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 1)
            self.assertIn("lets every account read or write it", r.stderr)
        finally:
            a.close()
            redis.stop()
            shutil.rmtree(redis.dir, ignore_errors=True)


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
@unittest.skipUnless(os.path.exists(REDIS_SERVER), "redis-server not installed")
class ConfigDigest(unittest.TestCase):
    """issue 18: two nodes that disagreed on a spool's mode released 4 of 10
    flagged voicemails (the monitor node placed what it screened).  A node
    whose spool configuration differs from the cluster's (the digest the
    first node stored) works nothing of it and says so in the log,
    /healthz and the metrics; a reload that makes them agree lets it work."""

    @contextlib.contextmanager
    def disagreeing(self, spools=None, extra=""):
        """Node vm1, then vm2 configured otherwise (spools, extra): yields
        both once vm2 has logged the mismatch and answers 503; stops all."""
        redis = Redis().start()
        a = Node("vm1", redis)
        b = Node("vm2", redis, base=a, extra=extra)
        try:
            if spools is not None:
                b.spools = spools
                b.write_config()
            a.start()
            wait_for(lambda: redis.cli("EXISTS", "vmscreen:config:vm") == "1", 30,
                     "the first node's digest stored")
            b.start()
            wait_for(lambda: "configuration differs from the cluster's" in b.log_text(), 30,
                     "the mismatch logged")
            st, body = b.get("/healthz")
            self.assertEqual(st, 503, body)
            self.assertIn("spool vm: configuration differs from the cluster's", body)
            self.assertEqual(a.get("/healthz"), (200, "ok\n"))
            yield a, b
            self.assertEqual(b.stop(), 0)
            self.assertEqual(a.stop(), 0)
        finally:
            b.close()
            a.close()
            redis.stop()
            shutil.rmtree(redis.dir, ignore_errors=True)

    def test_a_node_with_another_mode_claims_nothing(self):
        with self.disagreeing(spools=[("vm", "monitor")]) as (a, b):  # a gate spool elsewhere
            wait_for(lambda: 'vmscreen_cluster_config_agrees{spool="vm"} 0' in
                     b.get("/metrics")[1], 30, "the metric")
            self.assertIn('vmscreen_cluster_config_agrees{spool="vm"} 1', a.get("/metrics")[1])
            names = ["f%d.wav" % i for i in range(6)]
            for n in names:
                a.drop(n, "flagged_1s")
            w = a.wait_done(names, timeout=240)
            self.assertEqual({n: w[n] for n in names}, {n: ["hold"] for n in names})
            # b screened none of them: every verdict was made by a
            for n in names:
                self.assertEqual(a.verdict(n)[1]["mode"], "gate")
            self.assertNotIn("-> released", b.log_text())
            self.assertNotIn("-> hold", b.log_text())
            # b's configuration made to agree by a reload: it works again
            b.spools = [("vm", "gate")]
            b.write_config()
            b.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "agrees with the cluster's" in b.log_text(), 30, "agreement")
            wait_for(lambda: b.get("/healthz") == (200, "ok\n"), 30, "b healthy")

    def test_a_node_with_other_screening_settings_claims_nothing(self):
        """attack round 4 #27: a node holding only at "high" released the
        medium findings the other held; the digest covers screening too."""
        with self.disagreeing(extra='screening = { hold_severity = "high"; };\n'):
            pass


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
@unittest.skipUnless(os.path.exists(REDIS_SERVER), "redis-server not installed")
class ForeignClients(unittest.TestCase):
    """issue 18: a Redis client with the password that is no node could
    squat the scanner lease or replace the stream key, and the cluster
    stopped claiming silently (/healthz 200); a consumer name with a quote
    and newlines wrote lines of its own into /metrics."""

    def setUp(self):
        self.redis = Redis().start()
        self.a = Node("vm1", self.redis)

    def tearDown(self):
        self.a.close()
        self.redis.stop()
        shutil.rmtree(self.redis.dir, ignore_errors=True)

    def test_squatted_lease_replaced_stream_and_odd_consumer_are_noticed(self):
        a, r = self.a, self.redis
        a.start()
        wait_for(lambda: a.get("/healthz") == (200, "ok\n"), 30, "healthz ok")
        # a consumer named to inject metrics lines holds an entry
        evil = 'x"} 1\nvmscreen_injected 1\n#'
        # (in one script: the node's own XREADGROUP would take the entry first)
        r.cli("EVAL", "redis.call('xadd', KEYS[1], '*', 'spool', 'vm', 'file', 'nothing') "
              "return redis.call('xreadgroup', 'GROUP', 'vmscreen', ARGV[1], 'COUNT', '1', "
              "'STREAMS', KEYS[1], '>')", "1", "vmscreen:items", evil)
        wait_for(lambda: "vmscreen_cluster_foreign_consumers 1" in a.get("/metrics")[1], 10,
                 "the odd consumer counted")
        body = a.get("/metrics")[1]
        self.assertFalse([ln for ln in body.split("\n") if ln.startswith("vmscreen_injected")],
                         body)
        self.assertIn('vmscreen_cluster_pending{node="x___1_vmscreen_injected_1__"}', body)
        # the lease squatted: no expiry, a name no node sets
        r.cli("DEL", "vmscreen:scanner:vm")
        r.cli("SET", "vmscreen:scanner:vm", "intruder")
        wait_for(lambda: a.get("/healthz")[0] == 503, 30, "healthz 503 on the squatted lease")
        self.assertIn('spool vm: the scanner lease is held by "intruder"', a.get("/healthz")[1])
        self.assertIn('vmscreen_cluster_lease_foreign{spool="vm"} 1', a.get("/metrics")[1])
        self.assertIn('held by "intruder" (no expiry', a.log_text())
        a.drop("sq.wav", "clean_1s")
        time.sleep(2)
        self.assertEqual(a.where()["sq.wav"], ["incoming"])
        r.cli("DEL", "vmscreen:scanner:vm")
        a.wait_done(["sq.wav"], timeout=120)
        wait_for(lambda: a.get("/healthz") == (200, "ok\n"), 30, "healthz ok again")
        # the stream key replaced by a string: said, backed off, not spun on
        r.cli("DEL", "vmscreen:items")
        r.cli("SET", "vmscreen:items", "gone")
        wait_for(lambda: a.get("/healthz")[0] == 503, 30, "healthz 503 on a replaced stream")
        self.assertIn("WRONGTYPE", a.get("/healthz")[1])
        time.sleep(3)
        self.assertLessEqual(a.log_text().count("WRONGTYPE"), 3, "logged on every try")
        r.cli("DEL", "vmscreen:items")
        wait_for(lambda: a.get("/healthz") == (200, "ok\n"), 30, "healthz ok after the stream")
        a.drop("after.wav", "clean_1s")
        a.wait_done(["after.wav"], timeout=120)
        self.assertEqual(a.stop(), 0)


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
class Check(unittest.TestCase):
    def test_check_validates_the_cluster_group(self):
        d = Daemon()
        try:
            for bad, why in (('cluster = { node = "x"; };', "cluster.redis: required"),
                             ('cluster = { redis = "h"; };', "must be HOST:PORT"),
                             ('cluster = { redis = "h:1"; node = "a b"; };', "cluster.node"),
                             ('cluster = { redis = "h:1"; claim_idle_s = 0; };',
                              "claim_idle_s = 0"),
                             ('cluster = { redis = "h:1"; claim_idel_s = 3; };',
                              "did you mean 'claim_idle_s'")):
                d.write_config(d.config_text(extra=bad))
                r = subprocess.run([DAEMON, "--config", d.conf, "--check", "--allow-root"],
                                   capture_output=True, text=True, timeout=120)
                self.assertEqual(r.returncode, 1, bad)
                self.assertIn(why, r.stderr, bad)
            d.write_config(d.config_text(
                extra='cluster = { redis = "127.0.0.1:6379"; node = "vm1"; };'))
            r = subprocess.run([DAEMON, "--config", d.conf, "--check", "--allow-root"],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            d.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
