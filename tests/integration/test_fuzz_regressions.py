#!/usr/bin/env python3
"""Fuzz regressions (issue 6): every input a fuzzer ever crashed on, replayed.

Each libFuzzer harness in tests/fuzz/ is also linked with
tests/fuzz/replay_main.c into $VMS_BIN_DIR/tests/fuzz/replay_NAME (built by
`make check`, with the flavour's flags: gcc -O2 in build/rel, gcc with
ASan+UBSan in build/asan).  This test runs each replay over
tests/fuzz/regressions/NAME/ and over the committed files the seed corpus
is made from (tests/fuzz/seeds/, the rule packs, the example config, the
evaluation kit's malformed recordings when the kit is beside us), and
asserts that every input runs to the end: no crash, no sanitizer report,
no leak beyond tests/fuzz/lsan.supp, no failed harness check.

VMS_BIN_DIR selects the build (build/rel or build/asan).
"""
import glob
import os
import subprocess
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN_DIR = os.environ.get("VMS_BIN_DIR", os.path.join(ROOT, "build", "rel"))
KIT = os.environ.get("VMS_EVAL_KIT", os.path.join(ROOT, "..", "shared", "eval"))
FUZZ = os.path.join(ROOT, "tests", "fuzz")
HARNESSES = sorted(os.path.basename(p)[len("fuzz_"):-2]
                   for p in glob.glob(os.path.join(FUZZ, "fuzz_*.c")))


def files(*patterns):
    """Regular files matching the patterns (relative to the repository)."""
    out = []
    for p in patterns:
        out += [f for f in sorted(glob.glob(os.path.join(ROOT, p))) if os.path.isfile(f)]
    return out


SEEDS = {
    "audio": files(os.path.join(os.path.relpath(KIT, ROOT), "malformed", "*")),
    "sidecar": files("tests/fuzz/seeds/sidecar/*"),
    "rules": files("models/rules/*.rules", "models/signoffs.txt", "tests/fuzz/seeds/rules/*"),
    "config": files("etc/vmscreend.conf", "tests/fuzz/seeds/config/*"),
}


class FuzzRegressions(unittest.TestCase):
    def replay(self, name, inputs):
        binary = os.path.join(BIN_DIR, "tests", "fuzz", "replay_" + name)
        self.assertTrue(os.access(binary, os.X_OK),
                        "%s is missing: `make check` builds it" % binary)
        env = dict(os.environ)
        env["VMSCREEN_MODELS"] = os.path.join(ROOT, "models")
        env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=1:halt_on_error=1"
        env["LSAN_OPTIONS"] = "suppressions=%s:print_suppressions=0" % os.path.join(
            FUZZ, "lsan.supp")
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
        p = subprocess.run([binary] + inputs, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=600)
        out = p.stdout.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, "%s failed (exit %d):\n%s" % (
            name, p.returncode, out[-4000:]))
        self.assertIn("replay: %d input(s), all ran" % len(inputs), out)

    def test_regressions(self):
        """Every input under tests/fuzz/regressions/NAME/ runs clean."""
        ran = 0
        for name in HARNESSES:
            inputs = files("tests/fuzz/regressions/%s/*" % name)
            if inputs:
                with self.subTest(harness=name):
                    self.replay(name, inputs)
                ran += len(inputs)
        self.assertGreater(ran, 0, "no regression inputs found")

    def test_seeds(self):
        """The committed seed sources run clean (a harness check that fails on
        ordinary input would make the fuzzer useless)."""
        for name in HARNESSES:
            if SEEDS.get(name):
                with self.subTest(harness=name):
                    self.replay(name, SEEDS[name])

    def test_every_harness_has_a_replay(self):
        self.assertEqual(sorted(HARNESSES), ["audio", "config", "rules", "sidecar"])
        for name in HARNESSES:
            self.assertTrue(os.path.exists(os.path.join(FUZZ, "fuzz_%s.c" % name)))


if __name__ == "__main__":
    unittest.main()
