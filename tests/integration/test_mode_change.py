#!/usr/bin/env python3
"""issue 18: a spool's mode changed by SIGHUP while items wait.

Before: jobs queued before the reload kept the mode they were queued
under, so after monitor -> gate 7 of 8 flagged voicemails went to
released/.  Now an item is placed under the stricter of the mode it was
claimed under (recorded in its claim record) and the spool's mode when it
is placed: monitor -> gate holds everything not yet placed, and gate ->
monitor still holds what was claimed under gate.  A real daemon with one
worker, so that most items wait in the queue across the reload.
"""
import json
import os
import signal
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_harness import DAEMON, Daemon, cleanup_clips  # noqa: E402

N = 6


def tearDownModule():
    cleanup_clips()


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
class ModeChange(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(spools=[("calls", "monitor"), ("vm", "gate")], workers=1)

    def tearDown(self):
        self.d.close()

    def claimed(self, spool, names):
        """All names have left incoming/ (claimed, queued or placed)."""
        w = self.d.where(spool)
        return all(n in w and w[n][0] != "incoming" for n in names)

    def test_queued_items_are_placed_under_the_stricter_mode(self):
        d = self.d
        d.start()
        calls = ["c%d.wav" % i for i in range(N)]
        vms = ["v%d.wav" % i for i in range(N)]
        for n in calls:
            d.drop(n, "flagged", spool="calls")
        for n in vms:
            d.drop(n, "flagged", spool="vm")
        end = time.time() + 60
        while time.time() < end and not (self.claimed("calls", calls) and
                                         self.claimed("vm", vms)):
            time.sleep(0.05)
        # claimed under the old modes, recorded in the claim records
        active = os.path.join(d.spool_path("calls"), "active")
        recs = [f for f in os.listdir(active) if f.endswith(".claim.json")]
        self.assertTrue(recs, os.listdir(active))
        with open(os.path.join(active, recs[0])) as f:
            self.assertEqual(json.load(f)["mode"], "monitor")
        # the modes swap while most items wait for the one worker
        d.spools = [("calls", "gate"), ("vm", "monitor")]
        d.write_config()
        d.proc.send_signal(signal.SIGHUP)
        end = time.time() + 60
        while "reloaded" not in d.log_text() and time.time() < end:
            time.sleep(0.05)
        self.assertIn("reloaded", d.log_text())
        wc = d.wait_done(calls, spool="calls")
        wv = d.wait_done(vms, spool="vm")
        # monitor -> gate: nothing flagged may reach released/ after the
        # reload (items placed before it, under monitor, may: the log shows
        # their move before the "reloaded" line); most were still queued
        log = d.log_text()
        reloaded = log.index("reloaded")
        placed_before = [n for n in calls if wc[n] == ["released"]]
        self.assertLess(len(placed_before), N, wc)
        for n in placed_before:
            self.assertEqual(d.verdict(n, spool="calls")[1]["mode"], "monitor")
            self.assertLess(log.index("_%s -> released" % n), reloaded, n)
        for n in calls:
            if n not in placed_before:
                st, v = d.verdict(n, spool="calls")
                self.assertEqual((st, v["mode"]), ("hold", "gate"), n)
        # gate -> monitor: claimed under gate, so still held
        self.assertEqual({n: wv[n] for n in vms}, {n: ["hold"] for n in vms})
        # a new item of the now-monitor spool is alerted, not held
        d.drop("after.wav", "flagged", spool="vm")
        self.assertEqual(d.wait_done(["after.wav"])["after.wav"], ["released"])
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
