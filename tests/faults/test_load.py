#!/usr/bin/env python3
"""vmscreend under load (issue 6): a burst of 1,000 files with 2 workers.

Bounded memory (the peak RSS, VmHWM, is printed and bounded), no descriptor
leak (the daemon's open descriptors are counted before and after), every
file accounted for exactly once with its verdict, held files alerted to a
real receiver on 127.0.0.1.  No timing is asserted: only liveness timeouts.

Run by `make check-faults` on the optimised build.  VMS_LOAD_FILES resizes
the burst.
"""
import base64
import json
import os
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
from daemon_harness import ASAN, DAEMON, Daemon, cleanup_clips  # noqa: E402
from webhook_receiver import Receiver, key_from_secret  # noqa: E402
from test_faults import audit_ok, check_spool, drop, source, tearDownModule  # noqa: E402,F401

N = int(os.environ.get("VMS_LOAD_FILES", "1000"))
QUEUE = 32


def describe(fds):
    """Descriptor targets grouped by kind, for the failure message."""
    kinds = {}
    for t in fds.values():
        k = t.split(":", 1)[0] if ":" in t and not t.startswith("/") else t
        kinds[k] = kinds.get(k, 0) + 1
    return kinds


def steady_fds(d):
    """The daemon's descriptors at rest: the smallest of a few looks, less
    the temp file of a metrics write caught in the act (a leak shows in
    every look)."""
    best = None
    for _ in range(10):
        fds = {k: v for k, v in d.fds().items() if "/.tmp-" not in v}
        if best is None or len(fds) < len(best):
            best = fds
        time.sleep(0.2)
    return best


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
class Burst(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(workers=2)
        self.rx = None

    def tearDown(self):
        self.d.kill9()
        if self.rx is not None:
            self.rx.stop()
        self.d.close()

    def test_1000_file_burst_two_workers(self):
        d = self.d
        secret = os.path.join(d.dir, "hook.secret")
        text = b"whsec_" + base64.b64encode(os.urandom(32)) + b"\n"
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, text)
        os.close(fd)
        self.rx = Receiver(key_from_secret(text)).start()
        d.write_config(d.config_text(extra="queue_size = %d;\nwebhooks = ( { url = \"%s\"; "
                                     "secret_file = \"%s\"; retry_base_s = 0.2; } );" %
                                     (QUEUE, self.rx.url, secret)))
        d.start()
        # warm up every path once (decoders, audit log, outbox, a webhook
        # connection) so that "before" is the daemon at work, not at birth
        warm = ["warm%d.wav" % i for i in range(4)]
        for i, n in enumerate(warm):
            drop(d, n, ("clean_1s", "flagged_1s", "garbage", "clean_1s")[i])
        d.wait_done(warm)
        self.rx.wait(lambda r: len(r.delivered()) >= 1, timeout=30)
        time.sleep(1.5)
        fds_before = steady_fds(d)
        hwm_before = d.proc_status("VmHWM")

        names = ["ld%04d.wav" % i for i in range(N)]
        kinds = ("clean_1s", "clean_1s", "flagged_1s", "garbage")
        for i, n in enumerate(names):
            drop(d, n, kinds[i % 4], sidecar={"seq": i} if i % 5 == 0 else None)
        most_active, most_fds, t0 = 0, 0, time.time()
        end = time.time() + (3600 if ASAN else 1500)
        while time.time() < end:
            w = d.where()
            most_active = max(most_active, sum(1 for v in w.values() if v[0] == "active"))
            try:
                most_fds = max(most_fds, len(d.fds()))
            except OSError:
                pass
            if all(w.get(n, [""])[0] in ("released", "hold") for n in names):
                break
            self.assertIsNone(d.proc.poll(), "daemon died:\n" + d.log_text()[-3000:])
            time.sleep(0.5)
        wall = time.time() - t0
        d.wait_done(names, timeout=60)
        self.rx.wait(lambda r: not any(f.endswith(".json") for f in os.listdir(d.outbox)),
                     timeout=120)
        time.sleep(2.5)  # idle: metrics written, connections settled
        fds_after = steady_fds(d)
        hwm = d.proc_status("VmHWM")
        rss = d.proc_status("VmRSS")
        print("\n  load: %d files in %.0f s with 2 workers; at most %d in active/; "
              "peak RSS (VmHWM) %d kB (%d kB before the burst, %d kB now); "
              "open descriptors %d before, %d after, at most %d during; "
              "%d alerts delivered" %
              (N, wall, most_active, hwm, hwm_before, rss, len(fds_before), len(fds_after),
               most_fds, len(self.rx.delivered())), file=sys.stderr)
        self.assertEqual(d.stop(), 0)

        expect = {n: "hold" if kinds[i % 4] == "garbage" else None
                  for i, n in enumerate(names)}
        expect.update({n: None for n in warm})
        ids = check_spool(self, d, expect)
        self.assertEqual(len(ids), N + len(warm))
        # bounded: the queue, not the burst, decides how much is claimed...
        self.assertLessEqual(most_active, QUEUE + 2)
        # ...and memory: two decoders (~100 MB each) and change, whatever
        # the burst size (a leak of even 100 kB per file would show)
        self.assertLess(hwm, (900 if ASAN else 450) * 1024)
        self.assertLess(hwm - hwm_before, (200 if ASAN else 100) * 1024)
        # no descriptor leak: the same count, and nothing pointing into
        # the spool (an unclosed recording or verdict) is left open
        self.assertLessEqual(len(fds_after), len(fds_before),
                             "before %s\nafter %s" % (describe(fds_before), describe(fds_after)))
        # (the daemon's own locks, in SPOOL/.lock/ since issue 18, stay open)
        spool_fds = [t for t in fds_after.values() if t.startswith(d.spool_path() + "/")
                     and "/.lock-" not in t and "/.lock/" not in t]
        self.assertEqual(spool_fds, [])
        # every held file alerted, delivered to the receiver
        held = {v["id"] for st, v in ids.values() if st == "hold"}
        delivered = {json.loads(q["body"])["data"]["id"] for q in self.rx.delivered()}
        self.assertEqual(held - delivered, set())
        self.assertEqual([q for q in self.rx.requests if q["bad"]], [])
        lines = audit_ok(self, d)
        self.assertEqual({a["name"] for a in lines if a["event"] == "verdict"},
                         set(names + warm))


if __name__ == "__main__":
    unittest.main(verbosity=2)
