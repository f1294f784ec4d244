#!/usr/bin/env python3
"""vmscreend against a hostile spool, and its privilege rules (issue 6).

Everything a producer (or an intruder with write access to incoming/) can
put there: symlinks (to a real recording outside the spool, and dangling),
a hard link to a file outside, a FIFO, a directory, names with a newline,
spaces, bytes that are not UTF-8, names that start with "..", a name that
looks like an option, a file still being written, a WAV header claiming
2 GB over 1 KB of data, a 4-hour recording refused by max_duration_s, an
empty file.  For each: a clear line in the daemon's log, nothing lost (the
bytes are still in incoming/ or in hold/ with a verdict), symlinks never
followed, and the daemon still alive and screening afterwards.

Privileges: the daemon refuses root unless told, creates files 0640 and
directories 0750 whatever its umask, and refuses a webhook secret file that
group or others can read.

The real daemon, real audio (flite + sox).  VMS_BIN_DIR selects the build.
"""
import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_harness import ASAN, DAEMON, STATES, Daemon, cleanup_clips, clip  # noqa: E402

FINAL = ("released", "hold", "rejected")


def tearDownModule():
    cleanup_clips()


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def wav_header_lies(path, claimed=2_000_000_000, actual=1024):
    """A PCM WAV whose RIFF and data sizes claim `claimed` bytes over
    `actual` bytes of real samples."""
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + claimed) + b"WAVE")
        f.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt)
        f.write(b"data" + struct.pack("<I", claimed))
        f.write(bytes((i * 37) & 0xFF for i in range(actual)))


def all_files(base):
    """Every regular file under base, with its sha256: {path: digest}."""
    out = {}
    for root, _dirs, files in os.walk(os.fsencode(base)):
        for f in files:
            p = os.path.join(root, f)
            if stat.S_ISREG(os.lstat(p).st_mode):
                out[p] = sha(p)
    return out


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
class HostileSpool(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(settle_ms=300)

    def tearDown(self):
        self.d.close()

    def assertLog(self, text, what=None):
        log = self.d.log_text()
        self.assertIn(text, log, "%s: no log line %r in:\n%s" % (what or text, text, log[-3000:]))

    def test_hostile_entries_in_incoming(self):
        d = self.d
        d.start()
        base = d.spool_path()
        inc = os.path.join(base, "incoming")
        outside = os.path.join(d.dir, "outside")
        os.mkdir(outside)
        real = os.path.join(outside, "real.wav")
        shutil.copyfile(clip("flagged"), real)
        hard_src = os.path.join(outside, "hard-outside.wav")
        shutil.copyfile(clip("clean"), hard_src)
        before = {p: (sha(p), os.stat(p).st_mtime_ns, os.stat(p).st_ino)
                  for p in (real, hard_src)}

        os.symlink(real, os.path.join(inc, "link.wav"))
        os.symlink(os.path.join(outside, "nothing-here.wav"), os.path.join(inc, "dangling.wav"))
        os.link(hard_src, os.path.join(inc, "hard.wav"))
        os.mkfifo(os.path.join(inc, "fifo.wav"))
        os.mkdir(os.path.join(inc, "dir.wav"))
        shutil.copyfile(clip("clean"), os.path.join(inc, "dir.wav", "inner.wav"))
        shutil.copyfile(clip("clean"), os.path.join(inc, "new\nline.wav"))
        shutil.copyfile(clip("clean"), os.fsencode(inc) + b"/caf\xe9-latin1.wav")
        shutil.copyfile(clip("clean"), os.path.join(inc, "..foo.wav"))
        wav_header_lies(os.path.join(inc, "huge-header.wav"))
        open(os.path.join(inc, "empty.wav"), "wb").close()
        d.drop("with spaces 01.wav", "clean")
        d.drop("-rf.wav", "clean")
        d.drop("zz-marker.wav", "clean")
        # what was put into incoming/ as regular files: these bytes must
        # survive somewhere (in place, or in hold/ or released/)
        offered = {p: h for p, h in all_files(inc).items()}

        screened = ["with spaces 01.wav", "-rf.wav", "huge-header.wav", "empty.wav",
                    "zz-marker.wav"]
        w = d.wait_done(screened, timeout=300)
        time.sleep(2.5)  # at least two more rescans (rescan_interval_s = 1)
        w = d.where()
        self.assertIsNone(d.proc.poll(), "daemon died:\n" + d.log_text())

        # screened normally
        for n in ("with spaces 01.wav", "-rf.wav", "zz-marker.wav"):
            self.assertEqual(w[n], ["released"], n)
            st, v = d.verdict(n)
            self.assertEqual((v["verdict"], v["name"]), ("pass", n))
        # unscreenable: held with the reason, in the verdict and in the log
        for n, why in (("huge-header.wav", "truncated: the WAV header declares"),
                       ("empty.wav", "empty file")):
            self.assertEqual(w[n], ["hold"], n)
            st, v = d.verdict(n)
            self.assertEqual(v["verdict"], "hold")
            ev = [a["evidence"] for a in v["alerts"] if a["type"] == "unscreenable"]
            self.assertTrue(ev and why in ev[0], (n, v["alerts"]))
            self.assertLog(why, n)
            self.assertRegex(d.log_text(), r"_%s -> hold \(hold, 1 finding, unscreenable" %
                             n.replace(".", r"\."))

        # never taken, each with one clear line
        skipped = {
            "link.wav": "incoming/link.wav: skipped: a symlink (never followed)",
            "dangling.wav": "incoming/dangling.wav: skipped: a symlink (never followed)",
            "fifo.wav": "incoming/fifo.wav: skipped: not a regular file",
            "dir.wav": "incoming/dir.wav: skipped: not a regular file",
            "new\nline.wav": "incoming/new?line.wav: skipped: name contains a control character",
            "..foo.wav": "incoming/..foo.wav: skipped: dotfile",
            "hard.wav": "incoming/hard.wav: skipped: a hard link (another name outside the spool",
            "caf\udce9-latin1.wav": "incoming/caf?-latin1.wav: skipped: name is not valid UTF-8",
        }
        log = d.log_text()
        for n, line in skipped.items():
            if n.startswith("."):  # where() lists no dotfiles
                self.assertTrue(os.path.exists(os.path.join(inc, n)), n)
            else:
                self.assertEqual(w.get(n), ["incoming"], (n, w.get(n)))
            self.assertIn(line, log, n)
            self.assertEqual(log.count(line), 1, "%s logged more than once" % n)
        # the log is one event per line and valid UTF-8 (journald shows it)
        with open(d.log_path, "rb") as f:
            raw = f.read()
        raw.decode("utf-8")
        self.assertNotIn(b"\xe9", raw)
        # the FIFO is still a FIFO, the directory untouched
        self.assertTrue(stat.S_ISFIFO(os.lstat(os.path.join(inc, "fifo.wav")).st_mode))
        self.assertEqual(os.listdir(os.path.join(inc, "dir.wav")), ["inner.wav"])
        # symlinks never followed: the targets are where they were, unchanged
        for p, (h, mtime, ino) in before.items():
            self.assertEqual((sha(p), os.stat(p).st_mtime_ns, os.stat(p).st_ino), (h, mtime, ino))
        self.assertTrue(os.path.islink(os.path.join(inc, "link.wav")))
        self.assertTrue(os.path.islink(os.path.join(inc, "dangling.wav")))
        self.assertFalse(os.path.exists(os.path.join(outside, "nothing-here.wav")))
        self.assertEqual(sorted(os.listdir(outside)), ["hard-outside.wav", "real.wav"])
        # nothing lost: every byte string offered is still in the spool
        now = set(all_files(base).values())
        for p, h in offered.items():
            self.assertIn(h, now, "lost: %r" % p)
        # nothing half-written anywhere
        for st in STATES:
            left = [f for f in os.listdir(os.path.join(base, st)) if f.startswith(".tmp-")]
            self.assertEqual(left, [], st)
        # still alive, still screening
        d.drop("after.wav", "flagged")
        self.assertEqual(d.wait_done(["after.wav"])["after.wav"], ["hold"])
        self.assertEqual(d.stop(), 0)

    def test_oversized_file_is_not_copied(self):
        """issue 10, second round of attacks: a 1 GiB sparse file (no blocks
        on disk) was copied in full, a few times a second, filling the
        spool's filesystem for every other item."""
        d = self.d
        d.extra = "screening = { max_file_mb = 1; };"
        d.write_config()
        d.start()
        inc = os.path.join(d.spool_path(), "incoming")
        with open(os.path.join(inc, ".big"), "wb") as f:
            f.truncate(1 << 30)
        os.rename(os.path.join(inc, ".big"), os.path.join(inc, "big.wav"))
        d.drop("small.wav")
        self.assertEqual(d.wait_done(["small.wav"])["small.wav"], ["released"])
        time.sleep(3)
        self.assertEqual(d.where().get("big.wav"), ["incoming"])
        self.assertEqual(d.log_text().count("incoming/big.wav: skipped: not claimed: larger "
                                            "than screening.max_file_mb"), 1)
        self.assertEqual(os.listdir(os.path.join(d.spool_path(), "active")), [])

    def test_missing_state_directory_is_said_loudly(self):
        """issue 10: with active/ removed every claim failed silently."""
        d = self.d
        d.start()
        shutil.rmtree(os.path.join(d.spool_path(), "active"))
        d.drop("wait.wav")
        time.sleep(3)
        self.assertEqual(d.where().get("wait.wav"), ["incoming"])
        log = d.log_text()
        self.assertEqual(log.count("active: not a directory: not claiming from this spool"), 1,
                         log[-2000:])
        os.mkdir(os.path.join(d.spool_path(), "active"), 0o750)
        self.assertEqual(d.wait_done(["wait.wav"])["wait.wav"], ["released"])
        self.assertIn("its directories are sound again", d.log_text())

    def test_skipped_entries_are_logged_once_however_many_or_long(self):
        """issue 10: a name over 195 bytes, and every entry past the 1,024th,
        were logged again on every scan; a name toggled between a file and a
        FIFO flooded the journal (2,600 lines a second)."""
        d = self.d
        inc = os.path.join(d.spool_path(), "incoming")
        d.start()
        long_name = "x" * 200 + ".wav"  # too long to claim
        with open(os.path.join(inc, long_name), "w") as f:
            f.write("x")
        time.sleep(3.5)  # three rescans at rescan_interval_s = 1
        self.assertEqual(d.log_text().count("incoming/%s: skipped: name too long" % long_name), 1)
        # a sidecar name toggled between a regular file and a FIFO
        flip, tmp = os.path.join(inc, "flip.json"), os.path.join(inc, ".flip")
        end = time.time() + 2
        while time.time() < end:
            open(tmp, "w").close()
            os.rename(tmp, flip)
            os.unlink(flip)
            os.mkfifo(tmp)
            os.rename(tmp, flip)
            os.unlink(flip)
        os.mkfifo(flip)
        time.sleep(1.5)
        self.assertLessEqual(d.log_text().count("incoming/flip.json: skipped"), 45)
        for i in range(8300):  # more than the daemon notes one by one
            open(os.path.join(inc, ".stray-%05d" % i), "w").close()
        time.sleep(4.5)
        log = d.log_text()
        self.assertEqual(log.count("more entries in incoming/ cannot be screened"), 1, log[-500:])
        self.assertIn("more skipped entries in incoming/ not logged", log)
        n = log.count(": skipped: ")
        self.assertLessEqual(n, 200)  # about 20 a second
        time.sleep(2.5)
        self.assertEqual(d.log_text().count(": skipped: "), n)  # nothing logged again
        d.drop("fine.wav")
        self.assertEqual(d.wait_done(["fine.wav"])["fine.wav"], ["released"])

    def test_file_still_being_written_is_not_taken(self):
        """A writer that pauses for longer than settle_ms with the file
        open: only the open-for-writing check can tell, and it must."""
        d = self.d
        d.start()
        with open(clip("clean"), "rb") as f:
            data = f.read()
        path = os.path.join(d.spool_path(), "incoming", "slow.wav")
        chunks = 6
        step = len(data) // chunks + 1
        with open(path, "wb") as f:
            for i in range(chunks):
                f.write(data[i * step:(i + 1) * step])
                f.flush()
                time.sleep(1.2)  # 4 x settle_ms, > the rescan interval
                self.assertEqual(d.where().get("slow.wav"), ["incoming"], "taken early")
        w = d.wait_done(["slow.wav"])
        self.assertEqual(w["slow.wav"], ["released"])
        st, v = d.verdict("slow.wav")
        self.assertAlmostEqual(v["duration_s"], 3.06, delta=0.5)  # the whole file

    def test_four_hour_recording_refused_in_bounded_memory(self):
        d = self.d
        d.extra = "screening = { max_duration_s = 1800; };"
        d.write_config()
        big = os.path.join(d.dir, ".long.wav")
        subprocess.run(["sox", "-n", "-r", "8000", "-e", "u-law", big, "synth", "14400",
                        "sine", "300"], check=True)
        size = os.path.getsize(big)
        self.assertGreater(size, 100 * 1024 * 1024)
        digest = sha(big)
        d.start()
        d.drop("warmup.wav", "clean")  # decoders warmed up: the baseline
        d.wait_done(["warmup.wav"])
        base_hwm = d.proc_status("VmHWM")
        os.rename(big, os.path.join(d.spool_path(), "incoming", "long.wav"))
        w = d.wait_done(["long.wav"], timeout=300)
        self.assertEqual(w["long.wav"], ["hold"])
        st, v = d.verdict("long.wav")
        ev = [a["evidence"] for a in v["alerts"] if a["type"] == "unscreenable"]
        self.assertTrue(ev and "1800" in ev[0] and "14400" in ev[0], v["alerts"])
        self.assertIn(ev[0], d.log_text())
        hwm = d.proc_status("VmHWM")
        print("\n  4-hour file (%d MB): VmHWM %d kB before, %d kB after" %
              (size >> 20, base_hwm, hwm), file=sys.stderr)
        # reading it whole would cost >= its size (115 MB as u-law bytes,
        # ~920 MB as 16 kHz floats); refusing it from the header costs nothing
        self.assertLess(hwm - base_hwm, 32 * 1024)
        self.assertLess(hwm, (700 if ASAN else 400) * 1024)
        held = [f for f in os.listdir(os.path.join(d.spool_path(), "hold"))
                if f.endswith("_long.wav")]
        self.assertEqual(len(held), 1)
        self.assertEqual(sha(os.path.join(d.spool_path(), "hold", held[0])), digest)
        d.drop("after.wav", "clean")
        self.assertEqual(d.wait_done(["after.wav"])["after.wav"], ["released"])
        self.assertEqual(d.stop(), 0)


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
class Privileges(unittest.TestCase):
    def setUp(self):
        self.d = Daemon()

    def tearDown(self):
        self.d.close()

    def run_daemon(self, *args):
        return subprocess.run([DAEMON, "--config", self.d.conf] + list(args),
                              capture_output=True, text=True, timeout=120)

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_refuses_root_unless_told(self):
        d = self.d
        r = self.run_daemon()
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("<3>refusing to run as root", r.stderr)
        # refused before touching anything
        self.assertFalse(os.path.exists(d.spool_path()))
        self.assertFalse(os.path.exists(d.audit))
        # told by the config file (no flag): runs
        d.extra = "allow_root = true;"
        d.write_config()
        d.start(allow_root_flag=False)
        d.drop("ok.wav")
        self.assertEqual(d.wait_done(["ok.wav"])["ok.wav"], ["released"])
        self.assertEqual(d.stop(), 0)
        # told by the flag
        d.extra = "allow_root = false;"
        d.write_config()
        r = self.run_daemon("--check")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("refusing to run as root", r.stderr)
        r = self.run_daemon("--check", "--allow-root")
        self.assertEqual(r.returncode, 0, r.stderr)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to make another user's directory")
    def test_refuses_state_directories_others_control(self):
        """issue 10: a released/ pre-created by another user, or a hold/
        anybody can write, was accepted."""
        d = self.d
        base = d.spool_path()
        for st in STATES:
            os.makedirs(os.path.join(base, st), mode=0o750, exist_ok=True)
        cases = [("released", 65534, 0o750, "belongs to uid 65534, not to vmscreend"),
                 ("hold", 0, 0o777, "is writable by everybody (mode 0777)"),
                 ("active", 0, 0o770, "is writable by its group (mode 0770)")]
        for st, uid, mode, why in cases:
            with self.subTest(state=st):
                p = os.path.join(base, st)
                os.chown(p, uid, 0)
                os.chmod(p, mode)
                r = self.run_daemon("--allow-root")
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn("%s %s" % (p, why), r.stderr)
                os.chown(p, 0, 0)
                os.chmod(p, 0o750)
        os.chmod(os.path.join(base, "incoming"), 0o770)  # producers' group: fine
        d.start()
        d.drop("ok.wav")
        self.assertEqual(d.wait_done(["ok.wav"])["ok.wav"], ["released"])
        self.assertEqual(d.stop(), 0)

    def test_created_files_0640_directories_0750(self):
        d = self.d
        secret = os.path.join(d.dir, "hook.secret")
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"s3cret-key\n")
        os.close(fd)
        # a webhook nobody answers: its alerts stay in the outbox (files too)
        d.extra = ('webhooks = ( { url = "http://127.0.0.1:9/hook"; secret_file = "%s"; '
                   'retry_base_s = 30.0; } );' % secret)
        d.write_config()
        old = os.umask(0)  # the daemon must not rely on the umask it inherits
        try:
            d.start()
        finally:
            os.umask(old)
        d.drop("c.wav", "clean", sidecar={"k": 1})
        d.drop("f.wav", "flagged")
        d.wait_done(["c.wav", "f.wav"])
        end = time.time() + 10
        while not os.path.exists(d.metrics) and time.time() < end:
            time.sleep(0.1)
        self.assertEqual(d.stop(), 0)
        # issue 10: the audio and sidecar are the daemon's own copies now,
        # created 0640 like everything else it writes
        produced = set()
        dirs, files = [], []
        for top in (d.spool_path(), d.outbox):
            dirs.append(top)
            for root, ds, fs in os.walk(top):
                dirs += [os.path.join(root, x) for x in ds]
                files += [os.path.join(root, x) for x in fs
                          if x.split("_", 1)[-1] not in produced]
        files += [d.audit]
        # issue 12: the metrics file alone is 0644, for node_exporter's user
        self.assertEqual(stat.S_IMODE(os.stat(d.metrics).st_mode), 0o644)
        verdicts = [f for f in files if f.endswith(".verdict.json")]
        self.assertEqual(len(verdicts), 2)
        # issue 18: the locks are in a 0700 directory, 0600 files
        self.assertTrue(any(f.endswith("/.lock/daemon") for f in files))
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d.spool_path(), ".lock")).st_mode),
                         0o700)
        self.assertTrue(any(os.path.dirname(f) == d.outbox for f in files), "no outbox entry")
        for p in dirs:
            mode = stat.S_IMODE(os.stat(p).st_mode)
            self.assertEqual(mode & ~0o750, 0, "%s is %04o" % (p, mode))
        for p in files:
            mode = stat.S_IMODE(os.stat(p).st_mode)
            self.assertEqual(mode & ~0o640, 0, "%s is %04o" % (p, mode))
        # exactly as documented for the spool tree, the verdicts, the audit log
        for p in [d.spool_path()] + [os.path.join(d.spool_path(), s) for s in STATES]:
            self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o750, p)
        for p in verdicts + [d.audit]:
            self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o640, p)

    def test_refuses_secret_file_others_can_read(self):
        d = self.d
        secret = os.path.join(d.dir, "hook.secret")
        with open(secret, "w") as f:
            f.write("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=" + "\n")
        d.extra = ('webhooks = ( { url = "http://127.0.0.1:9/hook"; secret_file = "%s"; } );'
                   % secret)
        d.write_config()
        # (issue 18: 0640 in a group that holds another account is refused
        # too; test_accounts.py makes such a group)
        for mode in (0o644, 0o604, 0o606):
            os.chmod(secret, mode)
            p = d.start(wait_ready=False)
            self.assertEqual(p.wait(timeout=120), 1, "started with a %04o secret" % mode)
            self.assertIn("secret_file %s: mode %04o lets every account read or write it" %
                          (secret, mode), d.log_text())
        self.assertNotIn("QUJDREVG", d.log_text())  # the secret never reaches the log
        os.chmod(secret, 0o600)
        d.start()
        d.drop("x.wav")
        self.assertEqual(d.wait_done(["x.wav"])["x.wav"], ["released"])
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
