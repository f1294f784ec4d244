#!/usr/bin/env python3
"""issue 10: moves that resume.  Every rename the daemon and `vmscreen
release` make is failed (ENOSPC, EIO) or turned into a crash (SIGKILL on
entry) in turn, with strace's fault injection, and the next run of either
program must finish or roll back the move with the verdict intact.

The recording is clean speech with a sidecar whose hangup mark makes it an
open line: only with its sidecar is it held, so a retry that lost the
sidecar (the defect) releases it and fails the test.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from daemon_harness import CLI, DAEMON, Daemon, clip, cleanup_clips  # noqa: E402

def strace_works():
    """strace, and a kernel that lets it trace (containers may forbid ptrace)."""
    path = shutil.which("strace")
    if path is None:
        return None
    r = subprocess.run([path, "-f", "-qq", "-o", "/dev/null", "true"], capture_output=True)
    return path if r.returncode == 0 else None


STRACE = strace_works()
FAULTS = ("error=ENOSPC", "error=EIO", "signal=KILL")
# strace counts each syscall per thread: the claim (main thread) makes 2
# renameat2 and 2 rename calls, the worker 5 rename and 1 renameat2
DAEMON_SWEEP = [("rename", n) for n in range(1, 6)] + [("renameat2", n) for n in (1, 2)]
# the release: 1 rename for the verdict, 3 for companions, 1 renameat2
RELEASE_SWEEP = ([("rename", n) for n in range(1, 5)] + [("renameat2", 1)] +
                 [("fsync", n) for n in range(1, 7)])  # fsyncs: verdict, audit, directories


def tearDownModule():
    cleanup_clips()


def inject(syscall, n, fault):
    return [STRACE, "-f", "-qq", "-o", "/dev/null", "-e", "trace=" + syscall,
            "-e", "inject=%s:%s:when=%d" % (syscall, fault, n)]


def released_lines(d, stem):
    """Audit lines recording a release of the item."""
    return sum(1 for a in d.audit_lines() if a["event"] == "release" and a["id"] == stem[:25])


def spool_files(base):
    """{state: sorted entries} (lock files aside)."""
    return {st: sorted(f for f in os.listdir(os.path.join(base, st)) if not f.startswith(".lock"))
            for st in ("incoming", "active", "released", "hold", "rejected")}


def item_in(test, base, state, stem):
    """The item is whole in state: audio, sidecar, claim record, verdict."""
    files = spool_files(base)
    test.assertEqual(files[state], sorted(stem + s for s in (".wav", ".json", ".claim.json",
                                                              ".verdict.json")), files)
    for st, fs in files.items():
        if st != state:
            test.assertEqual(fs, [], "%s/ not empty: %s" % (st, files))
    with open(os.path.join(base, state, stem + ".verdict.json")) as f:
        return json.load(f)


@unittest.skipUnless(os.path.exists(DAEMON) and STRACE, "needs vmscreend and strace")
class MovesResume(unittest.TestCase):
    def daemon(self):
        d = Daemon(workers=1)
        # no metrics file: its rewrites would take the main thread's renames
        d.write_config(d.config_text().replace('metrics_file = "%s";' % d.metrics, ""))
        return d

    def screen_under_fault(self, syscall, n, fault):
        d = self.daemon()
        try:
            d.cmd_prefix = inject(syscall, n, fault)
            d.start()
            d.drop("a.wav", "clean", sidecar={"hangup_at": 0.3})
            try:
                d.wait_done(["a.wav"], timeout=60)
                crashed = False
            except AssertionError:
                crashed = d.proc.poll() is not None
                if not crashed:
                    raise
            if crashed or d.proc.poll() is not None:
                d.cmd_prefix = []
                d.start()  # the next run finishes it
                d.wait_done(["a.wav"], timeout=60)
            d.stop()
            base = d.spool_path()
            hold = spool_files(base)["hold"]
            self.assertTrue(hold, spool_files(base))
            stem = min(f.split(".")[0] for f in hold)
            v = item_in(self, base, "hold", stem)
            ol = [a for a in v["alerts"] if a["type"] == "open_line"]
            self.assertEqual([a["category"] for a in ol], ["after_hangup"], v["alerts"])
            with open(clip("clean"), "rb") as f:
                self.assertEqual(v["audio"]["sha256"], hashlib.sha256(f.read()).hexdigest())
            states = {a["state"] for a in d.audit_lines() if a["event"] == "verdict"}
            self.assertEqual(states, {"hold"})
            return crashed
        finally:
            d.close()

    def test_daemon_every_rename_fails_or_crashes(self):
        crashes = 0
        for syscall, n in DAEMON_SWEEP:
            for fault in FAULTS:
                with self.subTest(syscall=syscall, n=n, fault=fault):
                    crashes += self.screen_under_fault(syscall, n, fault)
        print("\n  moves: daemon, %d renames x %d faults, %d crashes resumed" %
              (len(DAEMON_SWEEP), len(FAULTS), crashes), file=sys.stderr)
        self.assertGreaterEqual(crashes, len(DAEMON_SWEEP) - 1)

    def test_release_every_rename_fails_or_crashes(self):
        d = self.daemon()
        try:
            d.start()
            d.drop("a.wav", "clean", sidecar={"hangup_at": 0.3})
            d.wait_done(["a.wav"])
            self.assertEqual(d.stop(), 0)
            base = d.spool_path()
            stem = min(f.split(".")[0] for f in spool_files(base)["hold"])
            original = item_in(self, base, "hold", stem)
            pristine = base + ".pristine"
            shutil.copytree(base, pristine, symlinks=True)
            release = [CLI, "release", "--config", d.conf, stem[:25], "--reason", "checked"]
            hit = 0
            for syscall, n in RELEASE_SWEEP:
                for fault in FAULTS:
                    with self.subTest(syscall=syscall, n=n, fault=fault):
                        shutil.rmtree(base)
                        shutil.copytree(pristine, base, symlinks=True)
                        audited = released_lines(d, stem)
                        first = subprocess.run(inject(syscall, n, fault) + release,
                                               capture_output=True, text=True, timeout=60)
                        # a failed or killed rename always stops the first run; a
                        # directory fsync after the move may not
                        hit += first.returncode != 0 and syscall != "fsync"
                        if first.returncode != 0:
                            again = subprocess.run(release, capture_output=True, text=True,
                                                   timeout=60)
                            self.assertEqual(again.returncode, 0, first.stderr + again.stderr)
                        v = item_in(self, base, "released", stem)
                        self.assertEqual(v["alerts"], original["alerts"])
                        self.assertEqual(v["transcript"], original["transcript"])
                        self.assertEqual(v["state"], "released")
                        self.assertIn("release", [r["action"] for r in v["review"]])
                        # the audit log has it too (was lost when killed after the move)
                        self.assertGreater(released_lines(d, stem), audited)
            print("\n  moves: release, %d renames x %d faults, %d interrupted and resumed" %
                  (len(RELEASE_SWEEP), len(FAULTS), hit), file=sys.stderr)
            renames = sum(1 for s, _ in RELEASE_SWEEP if s != "fsync")
            self.assertEqual(hit, renames * len(FAULTS))
        finally:
            d.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
