#!/usr/bin/env python3
"""issue 11, first part: vmscreend's HTTP face on 127.0.0.1, a real daemon
and real HTTP requests: GET /metrics (Prometheus text: the counters of the
metrics file plus hold-queue size and age, outbox depth and parked alerts)
and GET /healthz (200 "ok", or 503 naming what is wrong).  Every response
carries a strict Content-Security-Policy; only GET is served.
"""
import http.client
import os
import shutil
import socket
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_harness import DAEMON, Daemon, free_port, cleanup_clips  # noqa: E402


def tearDownModule():
    cleanup_clips()


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
class HttpFace(unittest.TestCase):
    def setUp(self):
        self.port = free_port()
        self.d = Daemon(extra='http = { listen = "127.0.0.1:%d"; };\n'
                              'webhooks = ( { name = "slack-ops"; url = "http://127.0.0.1:9/"; format = "slack"; '
                              'retry_base_s = 60.0; } );' % self.port)

    def tearDown(self):
        self.d.close()

    def get(self, path, method="GET", src="127.0.0.1"):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10,
                                       source_address=(src, 0))
        c.request(method, path)
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return r, body

    def test_metrics_and_health(self):
        d = self.d
        d.start()
        d.drop("a.wav", "flagged")
        d.drop("b.wav", "clean")
        d.wait_done(["a.wav", "b.wav"])
        r, body = self.get("/metrics")
        self.assertEqual(r.status, 200, body)
        self.assertTrue(r.getheader("Content-Type").startswith("text/plain; version=0.0.4"))
        self.assertEqual(r.getheader("Content-Security-Policy"),
                         "default-src 'none'; frame-ancestors 'none'")
        self.assertEqual(r.getheader("X-Content-Type-Options"), "nosniff")
        self.assertIn('vmscreen_files_screened_total{spool="vm",verdict="hold"} 1', body)
        self.assertIn('vmscreen_files_screened_total{spool="vm",verdict="pass"} 1', body)
        self.assertIn('vmscreen_hold_items{spool="vm"} 1', body)
        self.assertRegex(body, r'vmscreen_hold_oldest_age_seconds\{spool="vm"\} \d+')
        self.assertRegex(body, r"vmscreen_outbox_pending [1-9]")  # the receiver is down
        self.assertIn("vmscreen_outbox_parked 0", body)
        # per hook, by name: the receiver refuses, so attempts failed and
        # nothing was delivered (issue 12: a 503 once left every counter at 0)
        end = time.time() + 10
        while time.time() < end and 'failed_attempts_total{hook="slack-ops"} 0' in body:
            time.sleep(0.2)
            body = self.get("/metrics")[1]
        self.assertRegex(body, r'vmscreen_webhook_failed_attempts_total\{hook="slack-ops"\} [1-9]')
        self.assertIn('vmscreen_webhook_delivered_total{hook="slack-ops"} 0', body)
        self.assertIn('vmscreen_webhook_pending{hook="slack-ops"} 1', body)
        for line in body.splitlines():  # exposition format: comments or name{labels} value
            self.assertRegex(line, r"^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? -?[\d.e+]+)$")
        import subprocess
        tool = subprocess.run(["bash", os.path.join(os.path.dirname(__file__), "..", "tools",
                                                    "promtool.sh")],
                              capture_output=True, text=True, timeout=300)
        promtool = tool.stdout.strip()
        if promtool:  # Prometheus's own linter (Debian's, fetched once)
            p = subprocess.run([promtool, "check", "metrics"], input=body, text=True,
                               capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        r, body = self.get("/healthz")
        self.assertEqual((r.status, body), (200, "ok\n"))
        # a state directory gone: unhealthy, and why
        shutil.rmtree(os.path.join(d.spool_path(), "released"))
        r, body = self.get("/healthz")
        self.assertEqual(r.status, 503)
        self.assertIn("released: not a directory", body)
        os.mkdir(os.path.join(d.spool_path(), "released"), 0o750)
        r, body = self.get("/healthz")
        self.assertEqual(r.status, 200, body)
        # only GET, only these two
        r, body = self.get("/metrics", "POST")
        self.assertEqual(r.status, 405)
        for path in ("/", "/metrics/../etc/passwd", "/healthz?x=<script>", "/api/items"):
            r, body = self.get(path)
            self.assertIn(r.status, (200, 404), path)
            self.assertNotIn("<script>", body)
            self.assertEqual(r.getheader("Content-Security-Policy"),
                             "default-src 'none'; frame-ancestors 'none'")
        self.assertEqual(d.stop(), 0)

    def test_healthz_says_when_the_audit_log_cannot_be_written(self):
        """issue 18, attack round 4 #47: screening stopped (every item waits
        in active/) while /healthz answered 200."""
        self.d.start()
        self.assertEqual(self.get("/healthz")[0].status, 200)
        if os.path.exists(self.d.audit):
            os.unlink(self.d.audit)
        os.mkdir(self.d.audit)  # nobody can append to a directory, root included
        try:
            self.d.drop("a1")
            end = time.time() + 60
            while time.time() < end and self.get("/healthz")[0].status == 200:
                time.sleep(0.3)
            r, body = self.get("/healthz")
            self.assertEqual(r.status, 503)
            self.assertIn("audit log %s: cannot be written" % self.d.audit, body)
        finally:
            os.rmdir(self.d.audit)
        self.d.wait_done(["a1"])  # the retry writes the line, and all is well again
        end = time.time() + 30
        while time.time() < end and self.get("/healthz")[0].status != 200:
            time.sleep(0.3)
        self.assertEqual(self.get("/healthz")[0].status, 200)

    def test_slow_client_never_blocks_screening(self):
        d = self.d
        d.start()
        idle = [socket.create_connection(("127.0.0.1", self.port)) for _ in range(8)]
        for s in idle:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
        t0 = time.time()
        d.drop("c.wav", "clean")
        self.assertEqual(d.wait_done(["c.wav"])["c.wav"], ["released"])
        self.assertLess(time.time() - t0, 30)
        # the monitor is another address: one address holds at most 8
        # connections (issue 18), and these 8 are the slow client's
        r, body = self.get("/healthz", src="127.0.0.2")
        self.assertEqual(r.status, 200, body)
        for s in idle:
            s.close()
        self.assertEqual(d.stop(), 0)

    def test_bad_listen_refused_by_check(self):
        d = self.d
        import subprocess
        for bad, why in (('"localhost"', "must be ADDRESS:PORT"),
                         ('"127.0.0.1:99999"', "port 1-65535")):
            d.write_config(d.config_text(extra="http = { listen = %s; };" % bad))
            r = subprocess.run([DAEMON, "--config", d.conf, "--check", "--allow-root"],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn(why, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
