#!/usr/bin/env python3
"""The audit log's hash chain and `vmscreen audit`, on the real daemon.

The daemon screens files and a reviewer releases and rejects with the real
commands; then `vmscreen audit verify` must find the chain intact and print
the head, and must exit 1 naming the right line after one byte of a middle
line is edited, a line is deleted, a line is inserted (plain or with a
forged prev) or the file is cut mid-line.  Rotation by rename keeps the
chain across FILE.1 FILE; lines from before the chain are counted; a torn
line the daemon finds at its next append is kept and reported.
`vmscreen audit false-alarms` turns false_alarm events into clean test lines
that tests/eval_text.py reads.
"""
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_harness import CLI, DAEMON, REPO, Daemon, cleanup_clips  # noqa: E402
from test_console_api import PASSWORD, Client, free_port  # noqa: E402

ZERO = "0" * 64


def tearDownModule():
    cleanup_clips()


def sha(line):
    return hashlib.sha256(line).hexdigest()


def raw_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    return data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n")


def write_lines(path, lines, end=b"\n"):
    with open(path, "wb") as f:
        f.write(b"\n".join(lines) + end)


def run(*args, env=None):
    return subprocess.run([CLI] + list(args), capture_output=True, text=True, timeout=60,
                          env=env)


def screen_and_decide(d, names):
    """Drop flagged and clean files, wait, release the first flagged one
    and reject the second; returns their ids."""
    for i, n in enumerate(names):
        d.drop(n, "flagged" if i < 2 else "clean")
    d.wait_done(names)
    ida = d.verdict(names[0])[1]["id"]
    idb = d.verdict(names[1])[1]["id"]
    r = d.cli("release", ida, "--reason", "wording acceptable")
    assert r.returncode == 0, r.stderr
    r = d.cli("reject", idb, "--reason", "rude")
    assert r.returncode == 0, r.stderr
    return ida, idb


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
class ChainFromTheDaemon(unittest.TestCase):
    """One daemon run makes a log; each test tampers with a copy."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        cls.d.start()
        cls.ida, cls.idb = screen_and_decide(cls.d, ["a.wav", "b.wav", "c.wav", "d.wav"])
        assert cls.d.stop() == 0
        cls.lines = raw_lines(cls.d.audit)

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vms-audit-")
        self.copy = os.path.join(self.tmp, "audit.jsonl")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def verify(self, lines, end=b"\n", *extra):
        write_lines(self.copy, lines, end)
        return run("audit", "verify", *extra, self.copy)

    def assertBreak(self, r, line, word):
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("audit log %s: line %d: " % (self.copy, line), r.stdout)
        self.assertIn(word, r.stdout)

    def test_every_line_chained_and_verify_prints_the_head(self):
        ls = self.lines
        events = [json.loads(l)["event"] for l in ls]
        self.assertEqual(events.count("verdict"), 4)
        self.assertEqual(events[-2:], ["release", "reject"])
        # recomputed here: prev first, the hash of the line before, zeros first
        prev = ZERO
        for l in ls:
            self.assertTrue(l.startswith(b'{"prev":"' + prev.encode() + b'",'), l[:90])
            prev = sha(l)
        r = self.d.cli("audit", "verify")  # the log of the daemon's config
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.splitlines()[0],
                         "audit log %s: %d lines, chain intact, head %s" %
                         (self.d.audit, len(ls), sha(ls[-1])))
        r = self.d.cli("audit", "verify", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual((j["ok"], j["lines"], j["head"]), (True, len(ls), sha(ls[-1])))

    def test_one_byte_edited_in_a_middle_line(self):
        ls = list(self.lines)
        i = ls[2].index(b'"ts":"') + len(b'"ts":"')
        ls[2] = ls[2][:i] + (b"3" if ls[2][i:i + 1] != b"3" else b"4") + ls[2][i + 1:]
        json.loads(ls[2])  # still JSON: only the chain can tell
        self.assertBreak(self.verify(ls), 3, "changed")
        r = self.verify(ls, b"\n", "--json")
        j = json.loads(r.stdout)
        self.assertEqual((j["ok"], j["line"], j["problem"]), (False, 3, "changed_or_removed"))

    def test_prev_of_a_line_edited(self):
        ls = list(self.lines)
        ls[3] = ls[3].replace(ls[3][9:13], b"ffff", 1)
        self.assertBreak(self.verify(ls), 4, "changed")

    def test_line_deleted(self):
        ls = list(self.lines)
        del ls[2]
        r = self.verify(ls)
        self.assertBreak(r, 2, "removed")

    def test_line_inserted(self):
        ls = list(self.lines)
        self.assertBreak(self.verify(ls[:2] + [ls[0]] + ls[2:]), 3, "inserted")
        # a line without prev, as an older version wrote them
        old = b'{"ts":"2026-01-01T00:00:00Z","event":"release","by":"mallory"}'
        self.assertBreak(self.verify(ls[:2] + [old] + ls[2:]), 3, "no \"prev\"")
        # a forger who chains the new line to the one before it: the next
        # line still points past it
        forged = b'{"prev":"%s","event":"release","by":"mallory"}' % sha(ls[1]).encode()
        self.assertBreak(self.verify(ls[:2] + [forged] + ls[2:]), 3, "inserted")

    def test_truncated_mid_line(self):
        ls = list(self.lines)
        cut = ls[:3] + [ls[3][:len(ls[3]) // 2]]
        self.assertBreak(self.verify(cut, b""), 4, "torn")
        # only the newline missing
        self.assertBreak(self.verify(ls, b""), len(ls), "torn")

    def test_a_rewritten_chain_misses_the_recorded_head(self):
        ls = list(self.lines)
        kept = sha(ls[2])  # an operator recorded the head after line 3
        r = self.verify(ls, b"\n", "--head", kept)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("line 3 is the recorded head " + kept, r.stdout)
        # whoever can write the log can delete line 2 and recompute every prev:
        # the chain is intact again, but the kept head is gone
        forged, prev = [], ZERO
        for n, l in enumerate(ls[:1] + ls[2:]):
            o = json.loads(l)
            o["prev"], o["seq"] = prev, n + 1
            forged.append(json.dumps(o, separators=(",", ":")).encode())
            prev = sha(forged[-1])
        self.assertEqual(self.verify(forged).returncode, 0)
        r = self.verify(forged, b"\n", "--head", kept)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("recorded head %s is the hash of no line" % kept, r.stdout)
        self.assertEqual(self.verify(ls, b"\n", "--head", "nothex").returncode, 2)

    def test_a_line_being_written_is_not_taken_for_a_torn_one(self):
        ls = list(self.lines)
        write_lines(self.copy, ls)
        line = b'{"prev":"%s","seq":%d,"event":"verdict","by":"vmscreend"}' % (
            sha(ls[-1]).encode(), len(ls) + 1)
        # the writers' lock is DIR/.NAME.lock (issue 18), not the log itself
        lock = os.path.join(os.path.dirname(self.copy), "." + os.path.basename(self.copy) + ".lock")
        with open(self.copy, "ab") as f, open(os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)) as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)  # as spool_audit_append holds it
            f.write(line[:20])
            f.flush()
            p = subprocess.Popen([CLI, "audit", "verify", self.copy], stdout=subprocess.PIPE,
                                 text=True)
            time.sleep(0.5)
            self.assertIsNone(p.poll())  # waits for the writer
            f.write(line[20:] + b"\n")
            f.flush()
            fcntl.flock(lk, fcntl.LOCK_UN)
        out, _ = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("%d lines, chain intact, head %s" % (len(ls) + 1, sha(line)), out)

    def test_oldest_lines_cut_are_named_even_with_the_head(self):
        """issue 18: deleting the OLDEST lines left a chain that verified,
        --head included (the first line kept just chains to a line not
        given); every line's seq now shows the history does not start at 1."""
        ls = list(self.lines)
        self.assertEqual([json.loads(l)["seq"] for l in ls], list(range(1, len(ls) + 1)))
        head = sha(ls[-1])
        r = self.verify(ls, b"\n", "--head", head)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("lines numbered 1 to %d, none missing" % len(ls), r.stdout)
        r = self.verify(ls[2:], b"\n", "--head", head)
        self.assertBreak(r, 1, "its seq is 3 but the history starts at 1: lines 1 to 2 "
                               "are missing")
        j = json.loads(self.verify(ls[2:], b"\n", "--json").stdout)
        self.assertEqual((j["ok"], j["line"], j["problem"]), (False, 1, "start_missing"))
        # older files deleted on purpose: the operator says where it starts
        r = self.verify(ls[2:], b"\n", "--first", "3", "--head", head)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(self.verify(ls[2:], b"\n", "--first", "0").returncode, 2)

    def test_a_rechained_cut_is_named_by_its_numbers(self):
        """A forger who deletes a line and recomputes every prev after it
        but keeps the numbers leaves a gap in them."""
        ls = list(self.lines)
        forged, prev = [], sha(ls[1])
        for l in ls[3:]:
            o = json.loads(l)
            o["prev"] = prev
            forged.append(json.dumps(o, separators=(",", ":")).encode())
            prev = sha(forged[-1])
        self.assertBreak(self.verify(ls[:2] + forged), 3, "its seq is 4 where 3 was due")
        # a line without a seq among numbered ones
        o = json.loads(ls[2])
        del o["seq"]
        forged = ls[:2] + [json.dumps(o, separators=(",", ":")).encode()]
        self.assertBreak(self.verify(forged), 3, "has no valid \"seq\"")

    def test_a_log_of_an_older_version_without_numbers(self):
        """Lines chained but not numbered (written before issue 18) still
        verify, and verify says their start cannot be checked."""
        old, prev = [], ZERO
        for n in range(3):
            old.append(b'{"prev":"%s","event":"verdict","n":%d}' % (prev.encode(), n))
            prev = sha(old[-1])
        r = self.verify(old)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("3 lines have no seq", r.stdout)
        # the daemon's lines go on from 1 after them
        new = [b'{"prev":"%s","seq":1,"event":"verdict"}' % prev.encode()]
        r = self.verify(old + new)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("lines numbered 1 to 1, none missing", r.stdout)
        new = [b'{"prev":"%s","seq":2,"event":"verdict"}' % prev.encode()]
        self.assertBreak(self.verify(old + new), 4, "its seq is 2 where 1 was due")

    def test_not_json(self):
        ls = list(self.lines)
        ls[1] = b"garbage"
        self.assertBreak(self.verify(ls), 2, "not a JSON object")

    def test_false_alarms_become_clean_test_lines(self):
        ls = list(self.lines)
        ev = {"ts": "2026-12-01T12:00:00.000Z", "event": "false_alarm", "spool": "vm",
              "id": self.ida, "name": "a.wav", "by": "alice (console)",
              "note": "a quote\tof the customer", "finding": 0, "type": "phrasing",
              "category": "hostility", "rule": "hostility.shut_up", "evidence": "shut up",
              "words": "he said shut up and listen"}
        line = json.dumps(dict([("prev", sha(ls[-1])), ("seq", len(ls) + 1)] +
                               list(ev.items())),
                          separators=(",", ":")).encode()
        write_lines(self.copy, ls + [line])
        r = run("audit", "verify", self.copy)  # a chain Python wrote verifies too
        self.assertEqual(r.returncode, 0, r.stdout)
        r = run("audit", "false-alarms", self.copy)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual(len(out), 1)
        self.assertEqual(out[0]["text"], "he said shut up and listen")
        self.assertEqual(out[0]["expect"], "clean")
        self.assertIn("false_alarm " + self.ida, out[0]["source"])
        self.assertEqual(out[0]["rule"], "hostility.shut_up")
        r = run("audit", "false-alarms", "--tsv", self.copy)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = [l for l in r.stdout.splitlines() if not l.startswith("#")]
        self.assertEqual(rows, ["clean\the said shut up and listen"])
        self.assertNotIn("\t", r.stdout.splitlines()[0])  # the note's tab is gone
        tsv = os.path.join(self.tmp, "fa.tsv")
        with open(tsv, "w") as f:
            f.write(r.stdout)
        e = subprocess.run([sys.executable, os.path.join(REPO, "tests", "eval_text.py"), CLI,
                            tsv], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, VMSCREEN_MODELS=os.path.join(REPO, "models")))
        self.assertEqual(e.returncode, 0, e.stdout + e.stderr)
        self.assertRegex(e.stdout, r"clean\s+\d+/1 +passed")


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
class ChainOverTime(unittest.TestCase):
    def setUp(self):
        self.d = Daemon()

    def tearDown(self):
        self.d.close()

    def test_rotation_by_rename_keeps_the_chain(self):
        d = self.d
        d.start()
        screen_and_decide(d, ["a.wav", "b.wav", "c.wav"])
        old = raw_lines(d.audit)
        os.rename(d.audit, d.audit + ".1")  # logrotate's default, daemon running
        screen_and_decide(d, ["e.wav", "f.wav", "g.wav"])
        new = raw_lines(d.audit)
        self.assertEqual(len(new), 5)
        self.assertTrue(new[0].startswith(b'{"prev":"%s"' % sha(old[-1]).encode()))
        r = run("audit", "verify", d.audit + ".1", d.audit)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("audit log %s.1: %d lines, chain intact, head %s" %
                      (d.audit, len(old), sha(old[-1])), r.stdout)
        self.assertIn("audit log %s: %d lines, chain intact, head %s" %
                      (d.audit, len(new), sha(new[-1])), r.stdout)
        # issue 18: by default verify reads the rotated file too
        r = d.cli("audit", "verify")
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("audit log %s.1: %d lines, chain intact" % (d.audit, len(old)),
                      r.stdout)
        self.assertIn("lines numbered 1 to %d, none missing" % (len(old) + len(new)),
                      r.stdout)
        # alone, the new file's start is missing: its numbers go on from .1
        r = run("audit", "verify", d.audit)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("line 1: its seq is %d but the history starts at 1" % (len(old) + 1),
                      r.stdout)
        r = run("audit", "verify", "--first", str(len(old) + 1), d.audit)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("continues from a line not given here", r.stdout)
        self.assertIn(sha(old[-1]), r.stdout)
        # in the wrong order the numbers break at the first line
        r = run("audit", "verify", d.audit, d.audit + ".1")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("audit log %s: line 1:" % d.audit, r.stdout)
        # the rotated file losing its last line shows across the two
        write_lines(d.audit + ".1", old[:-1])
        r = run("audit", "verify", d.audit + ".1", d.audit)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("audit log %s.1: line %d: changed, or lines after it were removed" %
                      (d.audit, len(old) - 1), r.stdout)
        self.assertEqual(d.stop(), 0)

    def test_verify_reads_every_rotated_file_and_names_a_cut_start(self):
        """issue 18: by default verify read only the current file, so the
        start of the history (the rotated files) could be cut unseen.  Now
        it reads LOG.N.gz ... LOG.1 LOG and checks the numbers from 1."""
        d = self.d
        d.start()
        screen_and_decide(d, ["a.wav", "b.wav", "c.wav"])
        os.rename(d.audit, d.audit + ".1")
        screen_and_decide(d, ["e.wav", "f.wav", "g.wav"])
        # logrotate again: .1 becomes .2.gz (compress, delaycompress)
        subprocess.run(["gzip", "-n", d.audit + ".1"], check=True)
        os.rename(d.audit + ".1.gz", d.audit + ".2.gz")
        os.rename(d.audit, d.audit + ".1")
        d.drop("h.wav", "clean")
        d.wait_done(["h.wav"])
        total = sum(1 for _ in raw_lines(d.audit + ".1")) + len(raw_lines(d.audit))
        r = d.cli("audit", "verify")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = r.stdout.splitlines()
        self.assertTrue(out[0].startswith("audit log %s.2.gz: 5 lines, chain intact" %
                                          d.audit), out)
        self.assertTrue(out[1].startswith("audit log %s.1: " % d.audit), out)
        self.assertTrue(out[2].startswith("audit log %s: " % d.audit), out)
        self.assertIn("lines numbered 1 to %d, none missing" % (total + 5), r.stdout)
        # the oldest file removed: the start is missing, and named
        os.unlink(d.audit + ".2.gz")
        r = d.cli("audit", "verify")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("audit log %s.1: line 1: its seq is 6 but the history starts at 1"
                      % d.audit, r.stdout)
        r = d.cli("audit", "verify", "--first", "6")
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(d.stop(), 0)

    def test_older_lines_then_the_chain_then_a_torn_line(self):
        d = self.d
        before = [b'{"ts":"2026-01-01T00:00:00Z","event":"verdict","name":"x.wav"}',
                  b'{"ts":"2026-01-01T00:00:01Z","event":"release","name":"x.wav"}']
        write_lines(d.audit, before)
        os.chmod(d.audit, 0o640)
        d.start()
        d.drop("a.wav", "clean")
        d.wait_done(["a.wav"])
        r = d.cli("audit", "verify")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("audit log %s: 3 lines, chain intact" % d.audit, r.stdout)
        self.assertIn("2 lines before the chain began", r.stdout)
        ls = raw_lines(d.audit)
        self.assertTrue(ls[2].startswith(b'{"prev":"%s"' % sha(ls[1]).encode()))
        # a crash cut the daemon's last line short
        with open(d.audit, "r+b") as f:
            f.truncate(os.path.getsize(d.audit) - 30)
        r = d.cli("audit", "verify")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("line 3: torn", r.stdout)
        d.drop("b.wav", "clean")
        d.wait_done(["b.wav"])
        ls = raw_lines(d.audit)
        self.assertEqual(len(ls), 4)
        self.assertTrue(ls[3].startswith(b'{"prev":"%s"' % sha(ls[1]).encode()))
        self.assertIn("ends in a partial line", d.log_text())
        r = d.cli("audit", "verify")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertRegex(r.stdout, r"line 3: not JSON: a torn write .*chains past it")
        self.assertEqual(d.stop(), 0)



@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
class FalseAlarmsFromTheConsole(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vms-audit-console-")
        self.d = None

    def tearDown(self):
        if self.d:
            self.d.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_a_reviewers_false_alarm_becomes_a_clean_test_line(self):
        users, www, port = os.path.join(self.tmp, "reviewers"), self.tmp, free_port()
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("<!doctype html><title>vmscreen</title>")
        r = subprocess.run([CLI, "passwd", "alice", "--users-file", users],
                           input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.d = d = Daemon(extra='http = { listen = "127.0.0.1:%d"; users_file = "%s"; '
                                  'console_dir = "%s"; };' % (port, users, www))
        d.start()
        d.drop("a.wav", "flagged")
        d.wait_done(["a.wav"])
        ida = d.verdict("a.wav")[1]["id"]
        c = Client(port)
        self.assertEqual(c.login()[0].status, 200)
        r, j = c.json("POST", "/api/items/%s/false-alarm" % ida, {"finding": 0, "note": "fine"})
        self.assertEqual(r.status, 200, j)
        ev = [a for a in d.audit_lines() if a["event"] == "false_alarm"]
        self.assertEqual(len(ev), 1)
        r = d.cli("audit", "false-alarms")  # the configured log
        self.assertEqual(r.returncode, 0, r.stderr)
        out = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual(len(out), 1)
        self.assertEqual((out[0]["text"], out[0]["expect"]), (ev[0]["words"], "clean"))
        self.assertTrue(out[0]["text"])
        self.assertIn("false_alarm %s (spool vm) by alice (console)" % ida, out[0]["source"])
        self.assertEqual((out[0]["rule"], out[0]["note"]), (ev[0]["rule"], "fine"))
        # the console's line is chained like the daemon's
        r = d.cli("audit", "verify")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("2 lines, chain intact", r.stdout)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
