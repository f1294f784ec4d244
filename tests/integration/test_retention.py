#!/usr/bin/env python3
"""issue 12: retention.  A spool's keep_days removes the items of released/
and rejected/ (audio, sidecar, claim record, verdict) once they have not
changed for that long, each removal audited first as "expired"; hold/ is
never touched, however old.  A real daemon on a real spool; the audit
log's hash chain stays whole across the removals.  issue 18: nothing an
alert still waiting in the outbox (pending or parked) links to expires.
"""
import os
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_harness import CLI, DAEMON, Daemon, cleanup_clips, free_port  # noqa: E402

KEEP_S = 6.0


def tearDownModule():
    cleanup_clips()


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
class Retention(unittest.TestCase):
    def setUp(self):
        self.d = Daemon()
        text = self.d.config_text().replace(
            'mode = "gate"; }', 'mode = "gate"; keep_days = %.8f; }' % (KEEP_S / 86400))
        self.d.write_config(text)

    def tearDown(self):
        self.d.close()

    def files(self, state):
        return sorted(os.listdir(os.path.join(self.d.spool_path(), state)))

    def test_released_and_rejected_expire_hold_stays(self):
        d = self.d
        d.start()
        d.drop("c.wav", "clean", sidecar={"caller": "+15550100"})
        d.drop("a.wav", "flagged")
        d.drop("b.wav", "flagged")
        d.wait_done(["a.wav", "b.wav", "c.wav"])
        idb = d.verdict("b.wav")[1]["id"]
        self.assertEqual(d.cli("reject", idb, "--reason", "rude").returncode, 0)
        t_reject = time.time()
        self.assertEqual(len(self.files("released")), 4)  # audio, sidecar, claim, verdict
        # not before its time: the rejection just now restarted b's clock
        time.sleep(KEEP_S / 2)
        self.assertIn("b.wav", " ".join(self.files("rejected")))
        end = t_reject + KEEP_S + 10
        while time.time() < end and (self.files("released") or self.files("rejected")):
            time.sleep(0.3)
        self.assertEqual(self.files("released"), [])
        self.assertEqual(self.files("rejected"), [])
        self.assertEqual(d.where()["a.wav"], ["hold"])  # a person's queue is never pruned
        exp = [a for a in d.audit_lines() if a["event"] == "expired"]
        self.assertEqual(sorted((a["name"], a["state"]) for a in exp),
                         [("b.wav", "rejected"), ("c.wav", "released")])
        self.assertTrue(all(a["by"] == "vmscreend" and a["keep_days"] > 0 for a in exp))
        self.assertIn("item(s) older than", d.log_text())
        r = subprocess.run([CLI, "audit", "verify", "--config", d.conf], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(d.stop(), 0)

    def test_nothing_an_undelivered_alert_links_to_expires(self):
        """issue 18: keep_days removed a flagged call (monitor: released/)
        and a rejected item while their alert still waited in the outbox,
        so the supervisor's link 404ed.  They stay until the alert is gone."""
        d = self.d
        dead = "http://127.0.0.1:%d/hook" % free_port()  # nobody answers
        spools = [("vm", "gate"), ("mon", "monitor")]
        d.spools = spools
        d.extra = ('webhooks = ( { name = "sup"; url = "%s"; format = "slack"; '
                   'retry_base_s = 3600; } );\n' % dead)
        text = d.config_text(spools).replace(
            '"; }', '"; keep_days = %.8f; }' % (KEEP_S / 86400))
        d.write_config(text)
        d.start()
        d.drop("m.wav", "flagged", spool="mon")
        d.drop("c.wav", "clean", spool="mon")
        d.drop("b.wav", "flagged")
        d.wait_done(["m.wav", "c.wav"], spool="mon")
        d.wait_done(["b.wav"])
        idb = d.verdict("b.wav")[1]["id"]
        self.assertEqual(d.cli("reject", idb, "--reason", "rude").returncode, 0)
        t0 = time.time()
        waiting = [f for f in os.listdir(d.outbox) if f.endswith(".json")]
        self.assertGreaterEqual(len(waiting), 2)  # m's and b's alerts
        mon_released = os.path.join(d.spool_path("mon"), "released")
        rejected = os.path.join(d.spool_path("vm"), "rejected")

        def has(path, stem):
            return any(f.endswith("_%s.wav" % stem) for f in os.listdir(path))

        # well past keep_days: c (no alert) went, m and b stay
        end = t0 + KEEP_S + 20
        while time.time() < end and has(mon_released, "c"):
            time.sleep(0.3)
        time.sleep(KEEP_S / 2)
        self.assertFalse(has(mon_released, "c"))
        self.assertTrue(has(mon_released, "m"))
        self.assertTrue(has(rejected, "b"))
        self.assertIn("kept: an alert that links to them waits in the outbox", d.log_text())
        # parked counts as waiting too
        park = os.path.join(d.outbox, "parked")
        for f in os.listdir(d.outbox):
            if f.endswith(".json"):
                os.rename(os.path.join(d.outbox, f), os.path.join(park, f))
        time.sleep(KEEP_S / 2)
        self.assertTrue(has(mon_released, "m"))
        self.assertTrue(has(rejected, "b"))
        # once the alerts are gone (delivered, or removed by a person) they go
        for f in os.listdir(park):
            os.unlink(os.path.join(park, f))
        end = time.time() + 20
        while time.time() < end and (has(mon_released, "m") or has(rejected, "b")):
            time.sleep(0.3)
        self.assertFalse(has(mon_released, "m"))
        self.assertFalse(has(rejected, "b"))
        self.assertEqual(d.stop(), 0)

    def test_bad_keep_days_refused(self):
        d = self.d
        for bad in ("-1", '"ten"', "40000"):
            text = d.config_text().replace('mode = "gate"; }',
                                           'mode = "gate"; keep_days = %s; }' % bad)
            d.write_config(text)
            r = subprocess.run([DAEMON, "--config", d.conf, "--check", "--allow-root"],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 1, bad)
            self.assertIn("keep_days", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
