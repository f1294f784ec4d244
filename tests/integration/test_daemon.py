#!/usr/bin/env python3
"""vmscreend end to end: the real daemon on a temporary spool.

Clean and flagged voicemails, producers that rename in and producers that
write slowly in place, files that must be skipped, fail-closed holds,
systemd notifications, SIGHUP with a good and a broken config, SIGTERM,
and the review commands against the running daemon.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_harness import ASAN, CLI, DAEMON, REPO, Daemon, cleanup_clips, clip  # noqa: E402


def tearDownModule():
    cleanup_clips()


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
class DaemonBasics(unittest.TestCase):
    def setUp(self):
        self.d = Daemon()

    def tearDown(self):
        self.d.close()

    def test_clean_released_flagged_held(self):
        d = self.d
        d.start()
        d.drop("clean.wav", "clean", sidecar={"caller": "+15550100", "agent_channel": 0})
        d.drop("flagged.wav", "flagged")
        w = d.wait_done(["clean.wav", "flagged.wav"])
        self.assertEqual(w["clean.wav"], ["released"])
        self.assertEqual(w["flagged.wav"], ["hold"])
        st, v = d.verdict("clean.wav")
        self.assertEqual(v["verdict"], "pass")
        self.assertEqual(v["spool"], "vm")
        self.assertEqual(v["name"], "clean.wav")
        self.assertEqual(v["state"], "released")
        self.assertRegex(v["id"], r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
        self.assertIn("screened_at", v)
        self.assertEqual(v["metadata"].get("caller"), "+15550100")
        # the sidecar travelled with the audio
        rel = os.path.join(d.spool_path(), "released")
        self.assertTrue(os.path.exists(os.path.join(rel, v["id"] + "_clean.json")))
        st, v = d.verdict("flagged.wav")
        self.assertEqual(v["verdict"], "hold")
        self.assertTrue(any(a["type"] == "phrasing" for a in v["alerts"]))
        # one audit line per verdict, and systemd heard about it
        events = [(a["event"], a["name"]) for a in d.audit_lines()]
        self.assertIn(("verdict", "clean.wav"), events)
        self.assertIn(("verdict", "flagged.wav"), events)
        d.wait_notify("STATUS=screened 2", timeout=30)
        d.wait_notify("WATCHDOG=1", timeout=30)
        # the metrics file is Prometheus text with our counters
        end = time.time() + 10
        text = ""
        while time.time() < end:
            if os.path.exists(d.metrics):
                with open(d.metrics) as f:
                    text = f.read()
            if 'vmscreen_files_screened_total{spool="vm",verdict="hold"} 1' in text:
                break
            time.sleep(0.2)
        self.assertIn('vmscreen_files_screened_total{spool="vm",verdict="pass"} 1', text)
        self.assertIn('vmscreen_files_screened_total{spool="vm",verdict="hold"} 1', text)
        self.assertIn("vmscreen_screening_seconds_count 2", text)
        # issue 12: readable by node_exporter's own user; no temp file that a
        # textfile collector would take for metrics (*.prom)
        self.assertEqual(os.stat(d.metrics).st_mode & 0o777, 0o644)
        self.assertEqual([f for f in os.listdir(os.path.dirname(d.metrics))
                          if f.endswith(".prom") and f != os.path.basename(d.metrics)], [])
        # umask 027: nothing the daemon creates is world-readable
        for root, dirs, files in os.walk(d.spool_path()):
            for f in dirs + [f for f in files if f.endswith(".verdict.json")]:
                self.assertEqual(os.stat(os.path.join(root, f)).st_mode & 0o007, 0, f)
        self.assertEqual(os.stat(d.audit).st_mode & 0o777, 0o640)
        self.assertEqual(d.stop(), 0)

    def test_slow_direct_write_waits_until_complete(self):
        d = self.d
        d.start()
        with open(clip("clean"), "rb") as f:
            data = f.read()
        path = os.path.join(d.spool_path(), "incoming", "slow.wav")
        chunks = 12
        step = len(data) // chunks + 1
        with open(path, "wb") as f:
            for i in range(chunks):
                f.write(data[i * step:(i + 1) * step])
                f.flush()
                time.sleep(0.25)
                # while the writer still has it open, nobody takes it
                self.assertEqual(d.where().get("slow.wav"), ["incoming"])
        w = d.wait_done(["slow.wav"])
        self.assertEqual(w["slow.wav"], ["released"])
        st, v = d.verdict("slow.wav")
        self.assertEqual(v["verdict"], "pass")
        self.assertAlmostEqual(v["duration_s"], 3.06, delta=0.5)

    def test_untrusted_entries_skipped_and_garbage_held(self):
        d = self.d
        d.start()
        inc = os.path.join(d.spool_path(), "incoming")
        secret = os.path.join(d.dir, "secret.wav")
        shutil.copyfile(clip("clean"), secret)
        os.symlink(secret, os.path.join(inc, "link.wav"))
        os.mkdir(os.path.join(inc, "adir"))
        shutil.copyfile(clip("clean"), os.path.join(inc, ".hidden.wav"))
        shutil.copyfile(clip("clean"), os.path.join(inc, "bad\nname.wav"))
        with open(os.path.join(inc, "noise.wav"), "wb") as f:
            f.write(os.urandom(20000))
        d.drop("marker.wav", "clean")
        d.wait_done(["marker.wav", "noise.wav"])
        time.sleep(1.5)  # a further rescan
        w = d.where()
        self.assertEqual(w["link.wav"], ["incoming"])
        self.assertEqual(w["bad\nname.wav"], ["incoming"])
        self.assertTrue(os.path.exists(os.path.join(inc, ".hidden.wav")))
        self.assertTrue(os.path.isdir(os.path.join(inc, "adir")))
        self.assertTrue(os.path.exists(secret))
        # fail closed: unreadable audio is held as unscreenable, never released
        self.assertEqual(w["noise.wav"], ["hold"])
        st, v = d.verdict("noise.wav")
        self.assertEqual(v["verdict"], "hold")
        self.assertTrue(any(a["type"] == "unscreenable" for a in v["alerts"]))
        log = d.log_text()
        self.assertIn("incoming/link.wav: skipped: a symlink", log)
        self.assertIn("skipped: name contains a control character", log)
        self.assertEqual(log.count("incoming/link.wav: skipped"), 1)  # logged once

    def test_poison_file_held_after_max_attempts(self):
        d = self.d
        d.extra = "max_attempts = 2;"
        d.write_config()
        d.start()
        self.assertEqual(d.stop(), 0)
        # as if the daemon had crashed twice while screening this file
        act = os.path.join(d.spool_path(), "active")
        fid = "20250101T000000Z-0badf00d"
        shutil.copyfile(clip("clean"), os.path.join(act, fid + "_poison.wav"))
        with open(os.path.join(act, ".attempts-" + fid), "w") as f:
            f.write("2\n")
        d.start()
        w = d.wait_done(["poison.wav"])
        self.assertEqual(w["poison.wav"], ["hold"])
        st, v = d.verdict("poison.wav")
        self.assertIn("did not finish in 2 attempts", v["alerts"][0]["evidence"])
        self.assertFalse(os.path.exists(os.path.join(act, ".attempts-" + fid)))

    def test_sigterm_exits_zero_and_nothing_lost(self):
        d = self.d
        d.start()
        names = ["t%02d.wav" % i for i in range(8)]
        for n in names:
            d.drop(n)
        time.sleep(1.0)
        self.assertEqual(d.stop(), 0)
        self.assertIn("vmscreend stopped", d.log_text())
        w = d.where()
        for n in names:
            self.assertEqual(len(w.get(n, [])), 1, (n, w.get(n)))
        d.start()
        w = d.wait_done(names)
        for n in names:
            self.assertEqual(w[n], ["released"])

    def test_broken_config_refused_at_start(self):
        d = self.d
        d.write_config("workers = 2;\nspools = ( { name = \"vm\"; path = \"%s\"; mode = \"gate\" }"
                       % d.spool_path())
        p = d.start(wait_ready=False)
        self.assertEqual(p.wait(timeout=60), 1)
        self.assertIn(d.conf + ":", d.log_text())
        d.write_config(d.config_text(spools=[("vm", "sideways")]))
        p = d.start(wait_ready=False)
        self.assertEqual(p.wait(timeout=60), 1)
        self.assertIn('mode "sideways"', d.log_text())

    def test_check_refuses_what_the_daemon_would(self):
        """issue 10: --check said OK for misspelt keys (wrokers, hold_severty,
        mood) and for nested spools that the daemon then refused or ignored;
        a relative @include worked only from the config's own directory."""
        d = self.d
        base = d.config_text()
        sp = d.spool_path()
        cases = [
            (base.replace("workers =", "wrokers ="), "unknown setting 'wrokers' (did you mean "
             "'workers'?)"),
            (base + 'screening = { hold_severty = "high"; };\n',
             "unknown setting 'screening.hold_severty' (did you mean 'hold_severity'?)"),
            (base.replace('mode = "gate"', 'mood = "gate"'), "unknown setting 'spools[0].mood'"),
            (base.replace("spools = (\n", 'spools = (\n  { name = "in"; path = "%s/inner"; },\n'
                          % sp), "are nested"),
            (base.replace('path = "%s"' % sp, 'path = "%s/"' % sp).replace(
                "spools = (\n", 'spools = (\n  { name = "again"; path = "%s"; },\n' % sp),
             "name or path repeats"),
            (base + "webhooks = ( { url = \"http://127.0.0.1:9/\"; secret_file = \"/nonexistent\";"
             " } );\n", "/nonexistent"),
        ]
        for text, why in cases:
            with self.subTest(why=why):
                d.write_config(text)
                r = subprocess.run([DAEMON, "--config", d.conf, "--check", "--allow-root"],
                                   capture_output=True, text=True, timeout=120)
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertIn(why, r.stderr)
                self.assertNotIn("OK", r.stdout)
        # a world-writable state directory the daemon would refuse
        d.write_config(base)
        os.makedirs(os.path.join(sp, "hold"))
        os.chmod(os.path.join(sp, "hold"), 0o777)
        r = subprocess.run([DAEMON, "--config", d.conf, "--check", "--allow-root"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("writable by everybody", r.stderr)
        shutil.rmtree(sp)
        # a relative @include, from another working directory (systemd's is /)
        with open(os.path.join(d.dir, "spools.inc"), "w") as f:
            f.write(base[base.index("spools = ("):])
        with open(d.conf, "w") as f:
            f.write(base[:base.index("spools = (")] + '@include "spools.inc"\n')
        r = subprocess.run([DAEMON, "--config", d.conf, "--check", "--allow-root"],
                           capture_output=True, text=True, timeout=120, cwd="/")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("OK (1 spool(s)", r.stdout)
        r = subprocess.run([CLI, "check", "--config", d.conf, clip("clean")],
                           capture_output=True, text=True, timeout=120, cwd="/")
        self.assertEqual(r.returncode, 0, r.stderr)

    @unittest.skipUnless(os.geteuid() == 0, "only meaningful as root")
    def test_refuses_root_without_override(self):
        import subprocess
        r = subprocess.run([DAEMON, "--config", self.d.conf], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("refusing to run as root", r.stderr)
        self.assertTrue(r.stderr.startswith("<3>"))  # journald priority prefix

    def test_second_daemon_on_same_spool_refused(self):
        d = self.d
        d.start()
        import subprocess
        cmd = [DAEMON, "--config", d.conf] + (["--allow-root"] if os.geteuid() == 0 else [])
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 1)
        self.assertIn("another vmscreend is running", r.stderr)


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
class DaemonReload(unittest.TestCase):
    def setUp(self):
        self.d = Daemon()
        self.models = os.path.join(self.d.dir, "models")
        shutil.copytree(os.path.join(REPO, "models"), self.models)
        self.d.extra = 'screening = { models_dir = "%s"; };' % self.models
        self.d.write_config()

    def tearDown(self):
        self.d.close()

    def test_reloads_leak_no_descriptors(self):
        """issue 10: every SIGHUP leaked a /dev/null descriptor (the decoder's
        -logfn), so reloads failed after about a thousand."""
        d = self.d
        d.start()
        before = d.fds()
        for i in range(12):
            n = d.log_text().count("reloaded")
            d.proc.send_signal(signal.SIGHUP)
            end = time.time() + 60
            while d.log_text().count("reloaded") == n and time.time() < end:
                time.sleep(0.05)
            self.assertEqual(d.log_text().count("reloaded"), n + 1)
        time.sleep(0.5)  # workers let go of the old runtimes between files
        # the working dictionary is a fresh (deleted) temp file per runtime
        def kinds(fds):
            return sorted(re.sub(r"vmscreen-dict-\w+", "vmscreen-dict-*", t)
                          for t in fds.values())
        self.assertEqual(kinds(d.fds()), kinds(before))
        d.drop("ok.wav")
        self.assertEqual(d.wait_done(["ok.wav"])["ok.wav"], ["released"])
        self.assertEqual(d.stop(), 0)

    def test_sighup_good_then_broken_config(self):
        d = self.d
        d.start()
        d.drop("before.wav")
        self.assertEqual(d.wait_done(["before.wav"])["before.wav"], ["released"])
        # good: a new rule pack and a new monitor spool
        with open(os.path.join(self.models, "rules", "zz_test.rules"), "w") as f:
            f.write("category money\nseverity high\nrule test_monday: monday\n")
        d.spools = [("vm", "gate"), ("calls", "monitor")]
        d.write_config()
        d.proc.send_signal(signal.SIGHUP)
        end = time.time() + 120
        while "reloaded" not in d.log_text() and time.time() < end:
            time.sleep(0.1)
        self.assertIn("reloaded", d.log_text())
        d.drop("after.wav")
        d.drop("call.wav", spool="calls")
        w = d.wait_done(["after.wav"])
        self.assertEqual(w["after.wav"], ["hold"])  # the new rule fired
        st, v = d.verdict("after.wav")
        self.assertTrue(any(a["rule"].endswith("test_monday") for a in v["alerts"]), v["alerts"])
        # monitor mode: flagged, alerted, but not held
        w = d.wait_done(["call.wav"], spool="calls")
        self.assertEqual(w["call.wav"], ["released"])
        st, v = d.verdict("call.wav", spool="calls")
        self.assertEqual(v["verdict"], "hold")
        self.assertEqual(v["mode"], "monitor")
        # broken: refused, old configuration keeps working
        d.write_config("workers = 2;\nspools = (;\n")
        d.proc.send_signal(signal.SIGHUP)
        end = time.time() + 60
        while "reload refused" not in d.log_text() and time.time() < end:
            time.sleep(0.1)
        self.assertIn("reload refused", d.log_text())
        self.assertIsNone(d.proc.poll())
        d.drop("later.wav")
        w = d.wait_done(["later.wav"])
        self.assertEqual(w["later.wav"], ["hold"])  # still the reloaded rules
        # a broken rule pack is refused the same way
        d.write_config(d.config_text(spools=[("vm", "gate")]))
        with open(os.path.join(self.models, "rules", "zz_broken.rules"), "w") as f:
            f.write("category nosuchcategory\nrule x: (unclosed\n")
        n_refused = d.log_text().count("reload refused")
        d.proc.send_signal(signal.SIGHUP)
        end = time.time() + 60
        while d.log_text().count("reload refused") == n_refused and time.time() < end:
            time.sleep(0.1)
        self.assertEqual(d.log_text().count("reload refused"), n_refused + 1)
        d.drop("calls-still.wav", spool="calls")  # the old config still has "calls"
        self.assertEqual(d.wait_done(["calls-still.wav"], spool="calls")["calls-still.wav"],
                         ["released"])
        self.assertEqual(d.stop(), 0)


@unittest.skipUnless(os.path.exists(DAEMON) and os.path.exists(CLI), "binaries not built")
class ReviewCommands(unittest.TestCase):
    def setUp(self):
        self.d = Daemon()

    def tearDown(self):
        self.d.close()

    def test_hostile_text_never_reaches_the_terminal(self):
        """issue 10: `show` printed a reason's escape sequences raw, and a
        name with a right-to-left override was accepted."""
        d = self.d
        d.start()
        d.drop("a.wav", "flagged")
        bidi = "invoice\u202egnp.wav"  # reads as "invoicevaw.png"
        zwsp = "a.wav\u200b.wav"     # looks like a second copy of a.wav
        d.drop(bidi)
        d.drop(zwsp)
        d.wait_done(["a.wav"])
        time.sleep(1.5)
        self.assertEqual(d.where().get(bidi), ["incoming"])
        self.assertEqual(d.where().get(zwsp), ["incoming"])
        self.assertIn("control or bidirectional character U+202E", d.log_text())
        self.assertIn("control or bidirectional character U+200B", d.log_text())
        ida = d.verdict("a.wav")[1]["id"]
        r = d.cli("reject", ida, "--reason", "\x1b]0;pwned\x07\x1b[2J rude \u202eevil")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = d.cli("show", ida)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("rude", r.stdout)
        for bad in ("\x1b", "\x07", "\u202e"):
            self.assertNotIn(bad, r.stdout)
        r = d.cli("show", "--json", ida)
        self.assertNotIn("\u202e", r.stdout)
        self.assertEqual(json.loads(r.stdout)["review"][0]["reason"][-5:], "\u202eevil")

    def test_invisible_characters_in_names_are_refused_and_named(self):
        """issue 18: names with a soft hyphen, an invisible operator, a
        Hangul filler, tag characters, a variation selector or a line
        separator were claimed and shown as a second "a.wav".  They stay in
        incoming/, and the log names the code point (never the raw
        character)."""
        d = self.d
        d.start()
        d.drop("a.wav", "flagged")
        bad = {"a\u00ad.wav": "U+00AD", "a.wav\u2064": "U+2064", "\u3164a.wav": "U+3164",
               "a\U000e0061.wav": "U+E0061", "a\ufe0f.wav": "U+FE0F",
               "a\u2028.wav": "U+2028"}
        for n in bad:
            d.drop(n, "flagged")
        d.wait_done(["a.wav"])
        time.sleep(1.5)
        w = d.where()
        log = d.log_text()
        for n, cp in bad.items():
            self.assertEqual(w.get(n), ["incoming"], cp)
            self.assertIn("invisible, control or bidirectional character " + cp, log)
        for ch in ("\u00ad", "\u2064", "\u3164", "\U000e0061", "\ufe0f", "\u2028"):
            self.assertNotIn(ch, log)
        # nothing but a.wav was claimed: one verdict line in the audit log
        self.assertEqual([a["name"] for a in d.audit_lines() if a["event"] == "verdict"],
                         ["a.wav"])
        self.assertEqual(d.stop(), 0)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to act as another user")
    def test_review_without_access_says_permission_denied(self):
        d = self.d
        d.start()
        d.drop("a.wav", "flagged")
        d.wait_done(["a.wav"])
        ida = d.verdict("a.wav")[1]["id"]
        for p in (d.dir, os.path.join(d.dir, "spool")):
            os.chmod(p, 0o755)

        def nobody():
            os.setgid(65534)
            os.setuid(65534)
        # issue 10: an unreadable config said only "file I/O error"
        os.chmod(d.conf, 0o600)
        r = subprocess.run([CLI, "show", "--config", d.conf, ida], capture_output=True,
                           text=True, preexec_fn=nobody, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cannot read: Permission denied", r.stderr)
        self.assertIn("root:vmscreen 0640", r.stderr)
        os.chmod(d.conf, 0o644)
        r = subprocess.run([CLI, "show", "--config", d.conf, ida], capture_output=True,
                           text=True, preexec_fn=nobody, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("permission denied reading spool", r.stderr)
        self.assertNotIn("no such item", r.stderr)

    def test_list_show_release_reject_while_running(self):
        d = self.d
        d.start()
        d.drop("a.wav", "flagged")
        d.drop("b.wav", "flagged")
        d.drop("c.wav", "clean")
        d.wait_done(["a.wav", "b.wav", "c.wav"])
        r = d.cli("list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("a.wav", r.stdout)
        self.assertIn("b.wav", r.stdout)
        self.assertNotIn("c.wav", r.stdout)  # default: hold only
        r = d.cli("list", "--state", "all", "--spool", "vm")
        self.assertIn("c.wav", r.stdout)
        ida = d.verdict("a.wav")[1]["id"]
        idb = d.verdict("b.wav")[1]["id"]
        r = d.cli("show", ida)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("hostility", r.stdout)
        self.assertIn("shut up", r.stdout)
        self.assertIn("transcript:", r.stdout)
        self.assertRegex(r.stdout, r"\[\s*\d+\.\d+ -\s*\d+\.\d+ s\]")
        r = d.cli("release", ida)
        self.assertEqual(r.returncode, 2)  # a reason is required
        self.assertIn("--reason", r.stderr)
        r = d.cli("release", ida, "--reason", "customer asked for it; wording ok")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = d.cli("reject", idb, "--reason", "rude")
        self.assertEqual(r.returncode, 0, r.stderr)
        w = d.where()
        self.assertEqual(w["a.wav"], ["released"])
        self.assertEqual(w["b.wav"], ["rejected"])
        st, v = d.verdict("a.wav")
        self.assertEqual(v["review"][0]["action"], "release")
        self.assertEqual(v["review"][0]["reason"], "customer asked for it; wording ok")
        # the verdict travelled with it
        self.assertEqual(st, "released")
        # release twice: already done (a retry after a crash must succeed),
        # nothing moves and no second audit line
        r = d.cli("release", ida, "--reason", "again")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("already released", r.stdout)
        # the other way is refused: a rejected item is released, never the reverse
        r = d.cli("reject", ida, "--reason", "changed my mind")
        self.assertEqual(r.returncode, 1)
        self.assertIn("is in released/", r.stderr)
        r = d.cli("show", "20990101T000000Z-00000000")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no such item", r.stderr)
        acts = [a for a in d.audit_lines() if a["event"] in ("release", "reject")]
        self.assertEqual([(a["event"], a["id"]) for a in acts], [("release", ida),
                                                                ("reject", idb)])
        for a in acts:
            self.assertTrue(a["by"])
            self.assertTrue(a["ts"])
            self.assertTrue(a["reason"])
        self.assertIsNone(d.proc.poll())  # the daemon did not mind

    def test_decisions_name_the_real_user(self):
        """issue 11: the audit log's `by` comes from the kernel (the uid and
        the login uid), never from $SUDO_USER; a user other than root or the
        service account cannot point a decision at another config (and so
        at another audit log)."""
        d = self.d
        d.start()
        d.drop("a.wav", "flagged")
        d.wait_done(["a.wav"])
        ida = d.verdict("a.wav")[1]["id"]
        env = dict(os.environ, VMSCREEN_CONFIG=d.conf, SUDO_USER="mallory")
        r = subprocess.run([CLI, "release", ida, "--reason", "fine"], capture_output=True,
                           text=True, env=env, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        line = [a for a in d.audit_lines() if a["event"] == "release"][-1]
        self.assertNotIn("mallory", json.dumps(line))
        self.assertEqual(line["uid"], os.getuid())
        self.assertEqual(line["via"], "cli")
        with open("/proc/self/loginuid") as f:
            luid = int(f.read())
        if luid == 4294967295:
            self.assertIn("(no login session)", line["by"])
            self.assertNotIn("login_uid", line)
        else:
            self.assertEqual(line["login_uid"], luid)
        if os.geteuid() != 0:
            return

        def nobody():
            os.setgid(65534)
            os.setuid(65534)
        other = os.path.join(d.dir, "other.conf")
        shutil.copy(d.conf, other)
        os.chmod(other, 0o644)
        for args, env in ((["--config", other], dict(os.environ)),):
            r = subprocess.run([CLI, "reject", ida, "--reason", "x"] + args,
                               capture_output=True, text=True, env=env, preexec_fn=nobody,
                               timeout=60)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("--config is only for root and the", r.stderr)
        # $VMSCREEN_CONFIG is not honoured for nobody's decision: the
        # installed config is read instead (absent here, or not this spool)
        r = subprocess.run([CLI, "reject", ida, "--reason", "x"], capture_output=True,
                           text=True, env=dict(os.environ, VMSCREEN_CONFIG=other),
                           preexec_fn=nobody, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertNotIn(other, r.stderr)
        self.assertEqual(d.where()["a.wav"], ["released"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
