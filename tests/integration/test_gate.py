#!/usr/bin/env python3
"""issue 10: the gate holds.  A real vmscreend on a real spool, attacked as a
producer running as another user (nobody) would:

- the bytes delivered are the daemon's own copy, owned by it, 0640, with
  their SHA-256 and size in the verdict; the producer cannot rewrite them;
- a file that another user's writer holds open (stalling mid-write) is not
  claimed until the writer closes it, and the whole file is screened;
- without a lease (no CAP_LEASE, another owner) nothing is claimed;
- a sidecar that is a symlink, FIFO or directory makes the item
  unscreenable (held), and a symlink is never followed;
- a review decision interrupted between its renames is finished by the
  next run, with the full verdict intact.
These need root (to be the daemon and to become nobody); they skip otherwise.
"""
import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_harness import CLI, DAEMON, Daemon, clip, cleanup_clips  # noqa: E402

PY = "/usr/bin/python3"
NOBODY = pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else None


def tearDownModule():
    cleanup_clips()


def as_nobody():
    os.setgid(65534)
    os.setuid(NOBODY)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def item_file(d, name, state):
    """The ID_NAME file of a finished item in a state directory."""
    base = os.path.join(d.spool_path(), state)
    for f in os.listdir(base):
        if not f.endswith(".json") and not f.startswith(".") and f.split("_", 1)[1] == name:
            return os.path.join(base, f)
    raise AssertionError("%s not in %s/" % (name, state))


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
@unittest.skipUnless(os.geteuid() == 0, "needs root to act as another user")
class GateTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(workers=1)
        self.inc = os.path.join(self.d.spool_path(), "incoming")

    def tearDown(self):
        self.d.close()

    def start(self, **kw):
        self.d.start(**kw)
        # a producer account with write access to incoming/ only
        os.chmod(self.d.dir, 0o755)
        os.chmod(os.path.join(self.d.dir, "spool"), 0o755)
        os.chmod(self.d.spool_path(), 0o755)
        os.chown(self.inc, 0, 65534)  # the producers' group: nogroup
        os.chmod(self.inc, 0o770)

    def producer(self, code, *args, data=b""):
        """Run python code as nobody (the system python: nobody cannot read
        a python under /root), data on its standard input."""
        return subprocess.run([PY, "-c", code, *args], preexec_fn=as_nobody, input=data,
                              capture_output=True, timeout=120)

    def drop_as_nobody(self, name, kind="clean"):
        with open(clip(kind), "rb") as f:
            data = f.read()
        r = self.producer("import sys,os; open(sys.argv[1]+'/.t','wb').write(sys.stdin.buffer."
                          "read()); os.rename(sys.argv[1]+'/.t', sys.argv[1]+'/'+sys.argv[2])",
                          self.inc, name, data=data)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_released_bytes_are_the_daemons_own_copy(self):
        self.start()
        src = clip("clean")
        self.drop_as_nobody("own.wav")
        self.d.wait_done(["own.wav"])
        st, v = self.d.verdict("own.wav")
        self.assertEqual(st, "released", v)
        path = item_file(self.d, "own.wav", "released")
        sb = os.lstat(path)
        self.assertEqual(sb.st_uid, os.geteuid())  # the daemon's, not nobody's
        self.assertEqual(stat.S_IMODE(sb.st_mode), 0o640)
        self.assertEqual(sb.st_nlink, 1)
        self.assertEqual(v["audio"], {"bytes": os.path.getsize(src), "sha256": sha256(src)})
        self.assertEqual(sha256(path), sha256(src))
        self.assertEqual(os.listdir(self.inc), [])
        # the producer cannot rewrite what was screened
        r = self.producer("open(__import__('sys').argv[1], 'r+b').write(b'x')", path)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"PermissionError", r.stderr)
        self.assertEqual(sha256(path), sha256(src))

    def test_writer_of_another_user_holding_the_file_is_waited_for(self):
        self.start()
        src = clip("flagged")
        with open(src, "rb") as f:
            data = f.read()
        half = len(data) // 2
        # written in place, stalling 4 s mid-write with the file open
        code = ("import sys,time; f=open(sys.argv[1],'wb'); d=sys.stdin.buffer.read();"
                "f.write(d[:%d]); f.flush(); time.sleep(4); f.write(d[%d:]); f.close()"
                % (half, half))
        t0 = time.time()
        proc = subprocess.Popen([PY, "-c", code, os.path.join(self.inc, "slow.wav")],
                                preexec_fn=as_nobody, stdin=subprocess.PIPE)
        proc.stdin.write(data)
        proc.stdin.close()
        w = self.d.wait_done(["slow.wav"], timeout=120)
        self.assertEqual(proc.wait(), 0)
        self.assertGreater(time.time() - t0, 4.0)
        st, v = self.d.verdict("slow.wav")
        self.assertEqual(v["audio"]["sha256"], hashlib.sha256(data).hexdigest())
        self.assertEqual(v["audio"]["bytes"], len(data))
        self.assertEqual(st, "hold", v)  # all of it heard: "shut up" is in the second half too
        self.assertEqual(w["slow.wav"], ["hold"])

    def test_no_lease_no_claim(self):
        """Without CAP_LEASE the kernel will not say whether another user is
        writing a file: it stays in incoming/, logged once."""
        if shutil.which("setpriv") is None:
            self.skipTest("setpriv missing")
        daemon = self.d
        # root without CAP_LEASE, as an unprivileged service user would be
        daemon.cmd_prefix = ["setpriv", "--inh-caps=-lease", "--bounding-set=-lease"]
        self.start()
        self.drop_as_nobody("nolease.wav")
        time.sleep(4)
        self.assertEqual(daemon.where().get("nolease.wav"), ["incoming"])
        log = daemon.log_text()
        self.assertEqual(log.count("incoming/nolease.wav: skipped: not claimed: the kernel will "
                                   "not say"), 1, log)

    def test_sidecar_that_is_not_a_regular_file_is_held(self):
        self.start()
        secret = os.path.join(self.d.dir, "daemon-only.json")
        with open(secret, "w") as f:
            json.dump({"secret": "do-not-copy"}, f)
        os.chmod(secret, 0o600)
        os.symlink(secret, os.path.join(self.inc, "sym.json"))
        os.mkfifo(os.path.join(self.inc, "fifo.json"))
        os.mkdir(os.path.join(self.inc, "dir.json"))
        for n in ("sym", "fifo", "dir"):
            self.d.drop(n + ".wav")
        self.d.drop("plain.wav", sidecar={"crm": "ok"})
        names = ["sym.wav", "fifo.wav", "dir.wav", "plain.wav"]
        self.d.wait_done(names)
        kinds = {"sym": "a symlink", "fifo": "a FIFO", "dir": "a directory"}
        for n, kind in kinds.items():
            with self.subTest(sidecar=n):
                st, v = self.d.verdict(n + ".wav")
                self.assertEqual(st, "hold")
                ev = [a["evidence"] for a in v["alerts"] if a["type"] == "unscreenable"]
                self.assertEqual(len(ev), 1, v["alerts"])
                self.assertIn("sidecar refused: incoming/%s.json is %s" % (n, kind), ev[0])
        st, v = self.d.verdict("plain.wav")
        self.assertEqual((st, v["metadata"]), ("released", {"crm": "ok"}))
        for root, _, files in os.walk(self.d.spool_path()):
            for f in files:
                p = os.path.join(root, f)
                if os.path.isfile(p) and not os.path.islink(p):
                    with open(p, "rb") as fh:
                        self.assertNotIn(b"do-not-copy", fh.read(), p)
        with open(self.d.audit) as f:
            self.assertNotIn("do-not-copy", f.read())


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
class EveryChannelOnAGate(unittest.TestCase):
    """issue 10, second round of attacks: a stereo voicemail whose sidecar
    names the clean channel as the agent passed with the other channel's
    insults unscreened.  A voicemail's listener hears both channels: on a
    gate every channel is screened; on a monitor spool only the agent's
    words count (the customer may swear)."""

    def test_gate_screens_both_channels_monitor_the_agents(self):
        d = Daemon(workers=1, spools=[("vm", "gate"), ("calls", "monitor")])
        try:
            stereo = os.path.join(d.dir, "st.wav")
            subprocess.run(["sox", "-D", "-M", clip("flagged"), clip("clean"), stereo],
                           check=True)
            d.start()
            for sp in ("vm", "calls"):
                inc = os.path.join(d.spool_path(sp), "incoming")
                with open(os.path.join(inc, ".s.json"), "w") as f:
                    json.dump({"agent_channel": 1}, f)  # the clean one
                os.rename(os.path.join(inc, ".s.json"), os.path.join(inc, "s.json"))
                shutil.copy(stereo, os.path.join(inc, ".s.wav"))
                os.rename(os.path.join(inc, ".s.wav"), os.path.join(inc, "s.wav"))
            d.wait_done(["s.wav"], spool="vm")
            d.wait_done(["s.wav"], spool="calls")
            st, v = d.verdict("s.wav", spool="vm")
            self.assertEqual(st, "hold", v["alerts"])
            self.assertEqual(v["transcript"]["channels"], [0, 1])
            self.assertTrue(any(a["type"] == "phrasing" for a in v["alerts"]), v["alerts"])
            st, v = d.verdict("s.wav", spool="calls")
            self.assertEqual((st, v["verdict"]), ("released", "pass"), v["alerts"])
            self.assertEqual(v["transcript"]["channels"], [1])
        finally:
            d.close()


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
class ReviewResumeTest(unittest.TestCase):
    """A `vmscreen release` killed between its renames (simulated by doing
    its first renames by hand), then retried: the verdict keeps its findings
    and transcript (issue 10: the retry wrote a stub over it)."""

    def test_interrupted_release_keeps_the_verdict(self):
        d = Daemon(workers=1)
        try:
            d.start()
            d.drop("f.wav", "flagged", sidecar={"crm": 7})
            d.wait_done(["f.wav"])
            self.assertEqual(d.stop(), 0)
            hold = os.path.join(d.spool_path(), "hold")
            rel = os.path.join(d.spool_path(), "released")
            audio = os.path.basename(item_file(d, "f.wav", "hold"))
            stem = audio.rsplit(".", 1)[0]
            with open(os.path.join(hold, stem + ".verdict.json")) as f:
                before = json.load(f)
            self.assertTrue(before["alerts"])
            # as if killed after the companions moved, before the audio
            for suffix in (".json", ".claim.json", ".verdict.json"):
                os.rename(os.path.join(hold, stem + suffix), os.path.join(rel, stem + suffix))
            r = subprocess.run([CLI, "release", "--config", d.conf, audio[:25], "--reason",
                                "customer asked"], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(sorted(os.listdir(rel)),
                             sorted(stem + s for s in (".wav", ".json", ".claim.json",
                                                       ".verdict.json")))
            self.assertEqual(os.listdir(hold), [])
            with open(os.path.join(rel, stem + ".verdict.json")) as f:
                after = json.load(f)
            self.assertEqual(after["alerts"], before["alerts"])
            self.assertEqual(after["transcript"], before["transcript"])
            self.assertEqual(after["metadata"], {"crm": 7})
            self.assertEqual([x["action"] for x in after["review"]], ["release"])
        finally:
            d.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
