#!/usr/bin/env python3
"""vmscreend crash safety and bursts: kill -9 mid-batch and restart,
repeatedly, and a burst far larger than the queue.

Every file must end up in exactly one state directory, with its verdict
beside it; nothing lost, nothing duplicated.  Under the ASan build
(VMS_BIN_DIR=build/asan) the batches are smaller, as screening is slower.
"""
import os
import random
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_harness import ASAN, DAEMON, Daemon, cleanup_clips  # noqa: E402

KILL_BATCH = int(os.environ.get("VMS_KILL_BATCH", "60" if ASAN else "100"))
BURST = int(os.environ.get("VMS_BURST", "40" if ASAN else "200"))


def tearDownModule():
    cleanup_clips()


def check_exactly_once(test, d, names, final):
    """Each name in exactly one state; with final, in released/ beside its
    verdict and sidecar, and nothing else anywhere."""
    w = d.where()
    for n in names:
        test.assertEqual(len(w.get(n, [])), 1, "%s is in %s" % (n, w.get(n)))
    test.assertEqual(set(w) - set(names), set(), "unexpected files")
    if not final:
        return
    base = d.spool_path()
    rel = os.listdir(os.path.join(base, "released"))
    for n in names:
        test.assertEqual(w[n], ["released"], n)
        audio = [f for f in rel if not f.endswith(".json") and f.split("_", 1)[1] == n]
        test.assertEqual(len(audio), 1)
        stem = audio[0].rsplit(".", 1)[0]
        test.assertIn(stem + ".verdict.json", rel, n)
        test.assertIn(stem + ".json", rel, n)  # the sidecar travelled too
        test.assertIn(stem + ".claim.json", rel, n)  # and the claim record
    for st in ("incoming", "active", "hold", "rejected"):
        # nothing left: no claim half done, no temp file, no stray companion
        left = [f for f in os.listdir(os.path.join(base, st)) if not f.startswith(".attempts")]
        test.assertEqual(left, [], "%s/ not empty" % st)
    test.assertEqual(len(rel), 4 * len(names))


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
class CrashSafety(unittest.TestCase):
    def setUp(self):
        # max_attempts high: this test kills on purpose, often mid-screening
        self.d = Daemon(extra="max_attempts = 1000;\nqueue_size = 8;")

    def tearDown(self):
        self.d.close()

    def test_kill9_mid_batch_repeatedly(self):
        d = self.d
        rnd = random.Random(int(os.environ.get("VMS_SEED", "4242")))
        names = ["k%03d.wav" % i for i in range(KILL_BATCH)]
        d.start()
        for i, n in enumerate(names):
            d.drop(n, sidecar={"seq": i})
        kills = 0
        end = time.time() + (900 if ASAN else 400)
        while time.time() < end:
            w = d.where()
            done = sum(1 for n in names if w.get(n, [""])[0] == "released")
            if done == len(names):
                break
            if kills < 8 and done < len(names) - 2:
                # short random waits: on a fast machine the batch must not
                # finish before the kills have happened
                time.sleep(rnd.uniform(0.1, 1.0))
                d.kill9()
                kills += 1
                check_exactly_once(self, d, names, final=False)
                d.start()
            else:
                time.sleep(0.3)
        d.wait_done(names, timeout=300)
        print("\n  kill -9 batch: %d files, %d kills, %d audit verdict lines" %
              (len(names), kills, sum(1 for a in d.audit_lines() if a["event"] == "verdict")),
              file=sys.stderr)
        self.assertGreaterEqual(kills, 3)
        check_exactly_once(self, d, names, final=True)
        # every item has at least one verdict line; re-screens are marked
        audited = {a["name"] for a in d.audit_lines() if a["event"] == "verdict"}
        self.assertEqual(audited, set(names))
        self.assertIn("was in active/: screening it again", d.log_text())
        self.assertEqual(d.stop(), 0)

    def test_burst_is_worked_off_in_bounded_memory(self):
        d = self.d
        d.start()
        names = ["b%03d.wav" % i for i in range(BURST)]
        for i, n in enumerate(names):
            d.drop(n, sidecar={"seq": i})
        # the queue bounds what is claimed: active/ never holds more than
        # queue_size + workers files, the rest waits in incoming/
        most_active = 0
        end = time.time() + (1200 if ASAN else 600)
        while time.time() < end:
            w = d.where()
            most_active = max(most_active, sum(1 for v in w.values() if v[0] == "active"))
            if all(w.get(n, [""])[0] == "released" for n in names):
                break
            time.sleep(0.1)
        with open("/proc/%d/status" % d.proc.pid) as f:
            hwm = [line for line in f if line.startswith("VmHWM")]
        print("\n  burst: %d files, at most %d in active/, peak RSS %s" %
              (len(names), most_active, hwm[0].split(":")[1].strip() if hwm else "?"),
              file=sys.stderr)
        self.assertLessEqual(most_active, 8 + 2)
        self.assertGreater(most_active, 0)
        check_exactly_once(self, d, names, final=True)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
