#!/usr/bin/env python3
"""issue 11: the reviewer console in a real browser.  A real daemon screens
real recordings into a real spool; Debian's chromium, headless and driven by
puppeteer-core (tests/integration/browser/drive.mjs, installed with `npm ci`
into build/browser-npm/, never committed), loads the console the daemon
serves from http.console_dir and does what a reviewer does: a wrong password
is refused on the page, the right one shows the queue of held items, an
item's page plays its audio, a click on a finding (in the list and in the
transcript) seeks the player to the finding's start, and a release with a
reason takes the item out of the queue; a false alarm is noted with a note.
Then the spool and the audit log say the same: the item is in released/,
the decision and the false alarm are alice's.  On the way: j/k and Enter
open an item, Space pauses, n seeks to a finding, ? opens the help, Esc goes
back, shortcuts are off while typing, a stereo recording has a waveform and a
transcript lane per channel; x and Ctrl+Enter reject another.

All along the browser reports no script error, no console error other than
the 401s a login page expects, no dialog, and no Content-Security-Policy
violation (but one, while the daemon's CSP lacks its hash: wavesurfer.js
writes a <style> into its shadow root, which style-src 'self' refuses; the
console adopts the same rules as a constructed stylesheet, and this test
checks the waveform is laid out all the same).  A recording named
`<img src=x onerror=alert(1)>.wav` whose sidecar carries HTML shows as text:
no element is made from it.

VMS_SCREENSHOTS=1 saves docs/console-queue.png and docs/console-item.png
(1280x800).
"""
import filecmp
import json
import math
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_harness import BIN_DIR, CLI, DAEMON, REPO, Daemon, free_port, cleanup_clips, clip  # noqa: E402

CHROMIUM = os.environ.get("VMS_CHROMIUM", "/usr/bin/chromium")
NODE = shutil.which("node")
NPM = shutil.which("npm")
BROWSER_SRC = os.path.join(REPO, "tests", "integration", "browser")
BROWSER_NPM = os.path.join(REPO, "build", "browser-npm")
PASSWORD = "correct horse battery staple"
HOSTILE = "<img src=x onerror=alert(1)>.wav"
HOSTILE_NOTE = "<script>alert(2)</script><img src=x onerror=alert(3)>"
REASON = "Quoted from a training call; checked with the team lead."
NOTE = "Reading out the script's own example of what not to say."


def console_dir():
    """The built console: this flavour's, else the optimised build's (the
    ASan build makes no console of its own)."""
    for d in (os.path.join(BIN_DIR, "console"), os.path.join(REPO, "build", "rel", "console")):
        if os.path.isfile(os.path.join(d, "index.html")) and \
                os.path.isfile(os.path.join(d, "vendor", "wavesurfer.esm.js")):
            return d
    return None


def tearDownModule():
    cleanup_clips()


def drop_file(d, name, path, sidecar):
    """Daemon.drop for a recording of our own: sidecar first, then the
    audio, each written as a dotfile and renamed in."""
    inc = os.path.join(d.spool_path(), "incoming")
    stem = name.rsplit(".", 1)[0]
    with open(os.path.join(inc, "." + stem + ".json.tmp"), "w") as f:
        json.dump(sidecar, f)
    os.rename(os.path.join(inc, "." + stem + ".json.tmp"), os.path.join(inc, stem + ".json"))
    shutil.copyfile(path, os.path.join(inc, "." + name + ".tmp"))
    os.rename(os.path.join(inc, "." + name + ".tmp"), os.path.join(inc, name))


def install_driver():
    """puppeteer-core as pinned in browser/package-lock.json, into
    build/browser-npm/ (again only when the lock changed), and the driver."""
    os.makedirs(BROWSER_NPM, exist_ok=True)
    lock = os.path.join(BROWSER_NPM, "package-lock.json")
    fresh = os.path.isdir(os.path.join(BROWSER_NPM, "node_modules", "puppeteer-core")) and \
        os.path.exists(lock) and filecmp.cmp(lock, os.path.join(BROWSER_SRC, "package-lock.json"),
                                             shallow=False)
    for f in ("package.json", "package-lock.json", "drive.mjs"):
        shutil.copyfile(os.path.join(BROWSER_SRC, f), os.path.join(BROWSER_NPM, f))
    if not fresh:
        r = subprocess.run([NPM, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                           cwd=BROWSER_NPM, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise AssertionError("npm ci for puppeteer-core failed:\n" + r.stdout + r.stderr)
    return os.path.join(BROWSER_NPM, "drive.mjs")


@unittest.skipUnless(os.path.exists(DAEMON) and os.path.exists(CLI), "vmscreend/vmscreen not built")
@unittest.skipUnless(os.access(CHROMIUM, os.X_OK),
                     "no chromium at %s (tests/deps.sh installs Debian's)" % CHROMIUM)
@unittest.skipUnless(NODE and NPM, "node and npm are needed to drive chromium (tests/deps.sh)")
@unittest.skipUnless(console_dir(), "the console is not built (make console)")
class ConsoleInBrowser(unittest.TestCase):
    def setUp(self):
        self.port = free_port()
        self.users = None
        self.d = Daemon(extra="")
        self.users = os.path.join(self.d.dir, "reviewers")
        self.d.extra = ('http = { listen = "127.0.0.1:%d"; users_file = "%s"; console_dir = "%s"; };\n'
                        % (self.port, self.users, console_dir()))
        self.d.write_config()

    def tearDown(self):
        self.d.close()

    def passwd(self, name, password):
        r = subprocess.run([CLI, "passwd", name, "--users-file", self.users], input=password + "\n",
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def drive(self, plan):
        driver = install_driver()
        r = subprocess.run([NODE, driver], input=json.dumps(plan), capture_output=True, text=True,
                           cwd=BROWSER_NPM, timeout=600)
        try:
            out = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            self.fail("the driver said nothing useful (exit %d):\n%s\n%s" %
                      (r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
        if r.returncode != 0 or not out.get("ok"):
            self.fail("the browser run stopped after %s: %s\nconsole: %s\n%s" %
                      (out.get("steps", [])[-1:], out.get("error"),
                       json.dumps(out.get("console"), indent=1)[:3000], self.d.log_text()[-3000:]))
        return out

    def test_review_a_held_item_in_chromium(self):
        """Log in (a wrong password first), find the held items, play one,
        seek by its findings, release it with a reason: the browser shows
        each step, the spool and the audit log agree, nothing hostile runs."""
        d = self.d
        self.passwd("alice", PASSWORD)
        d.start()
        d.drop("a.wav", "flagged", sidecar={"caller": "+15550100", "campaign": "spring"})
        d.drop(HOSTILE, "flagged", sidecar={"note": HOSTILE_NOTE})
        d.drop("b.wav", "clean")
        d.drop("call-0187.wav", "flagged_1s", sidecar={"caller": "+15550187", "queue": "billing"})
        stereo = os.path.join(d.dir, "stereo.wav")  # agent left, caller right
        subprocess.run(["sox", "-D", "-M", clip("flagged"), clip("clean"), stereo], check=True)
        drop_file(d, "stereo-call.wav", stereo, sidecar={"agent_channel": 0, "agent": "Ann"})
        names = ["a.wav", HOSTILE, "b.wav", "call-0187.wav", "stereo-call.wav"]
        w = d.wait_done(names)
        self.assertEqual((w["a.wav"], w[HOSTILE], w["b.wav"]), (["hold"], ["hold"], ["released"]))
        held = sorted(n for n in names if w[n] == ["hold"])
        self.assertEqual(held, sorted(["a.wav", HOSTILE, "call-0187.wav", "stereo-call.wav"]), w)
        _, verdict = d.verdict("a.wav")
        self.assertTrue(verdict["alerts"], verdict)
        shots = os.path.join(REPO, "docs") if os.environ.get("VMS_SCREENSHOTS") == "1" else None
        out = self.drive({
            "base": "http://127.0.0.1:%d" % self.port, "chromium": CHROMIUM,
            "user": "alice", "password": PASSWORD, "target": "a.wav", "hostile": HOSTILE,
            "expect": held, "reason": REASON, "note": NOTE, "screenshots": shots,
            "stereo": "stereo-call.wav", "rejectTarget": "call-0187.wav",
            "staleTarget": "stereo-call.wav",
        })

        # the login: refused on the page first, then in
        self.assertIn("wrong", out["loginError"].lower())
        self.assertFalse(out["queueShownAfterWrong"])
        self.assertEqual(out["user"], "alice")
        # the queue: the held items only (b.wav passed)
        self.assertEqual(sorted(out["queue"]), held)
        self.assertIn("%d held items" % len(held), out["queueCount"])
        # hostile text stays text: no element, no dialog
        self.assertEqual(out["hostile"], {"text": HOSTILE, "children": 0})
        self.assertEqual(out["hostileItem"]["title"], HOSTILE)
        self.assertIn(["note", HOSTILE_NOTE, 0], out["hostileItem"]["metadata"])
        self.assertEqual((out["imgs"], out["hostileItem"]["imgs"], out["imgsEnd"]), (0, 0, 0))
        self.assertEqual(out["dialogs"], [])
        # the keyboard reached the item (j/k, Enter)
        self.assertEqual(out["keyboardSelection"][-1], "a.wav")
        # a stereo recording: a transcript lane per channel
        self.assertEqual([x["label"].split(" ·")[0] for x in out["stereo"]], ["Channel 1", "Channel 2"])
        self.assertTrue(all(x["words"] > 0 for x in out["stereo"]), out["stereo"])
        self.assertEqual([t.split(" ·")[0] for t in out["stereoWaveTags"]], ["Channel 1", "Channel 2"])
        self.assertEqual(out["item"]["name"], "a.wav")
        # findings as the verdict has them, confidence as a percentage
        alerts = out["item"]["alerts"]
        self.assertEqual(len(out["findingsShown"]), len(alerts))
        for shown, a in zip(out["findingsShown"], alerts):
            self.assertIn(a["evidence"], shown["text"])
            self.assertIn(a["rule"], shown["text"])
            want = ("%d%%" % math.floor(a["confidence"] * 100 + 0.5)  # as Math.round
                    if "confidence" in a else "n/a")
            self.assertEqual(shown["confidence"], "confidence " + want)
        self.assertTrue(out["transcriptMarks"], out["transcriptText"])
        for m in out["transcriptMarks"]:
            self.assertIn(m["text"].split()[0], out["transcriptText"])
        # playing: the media clock moves
        p = out["play"]
        self.assertGreater(p["t1"], p["t0"] + 0.2, p)
        self.assertGreater(p["t2"], p["t1"], p)
        self.assertEqual(p["label"], "Pause")
        self.assertTrue(out["pausedBySpace"])
        # a click on a finding seeks to its start and plays
        vias = [s["via"] for s in out["seeks"]]
        self.assertEqual(vias.count("list"), len(alerts))
        self.assertIn("transcript", vias)
        for s in out["seeks"]:
            if "finding" in s:
                self.assertAlmostEqual(s["at"], alerts[s["finding"]]["start_s"], delta=0.05, msg=s)
                self.assertTrue(s["playing"], s)
        self.assertLessEqual(min(abs(out["seeks"][-1]["at"] - a["start_s"]) for a in alerts), 0.05,
                             out["seeks"][-1])  # n: to a finding's start
        self.assertTrue(out["itemAfterHelp"])
        # a false alarm: a note needed, then noted on the page and in the audit log
        self.assertTrue(out["faSubmitDisabledEmpty"])
        self.assertEqual(out["faNoted"], "false alarm noted")
        fa = [line for line in d.audit_lines() if line.get("event") == "false_alarm"]
        self.assertEqual(len(fa), 1, d.audit_lines())
        self.assertEqual((fa[0]["note"], fa[0]["rule"]), (NOTE, alerts[0]["rule"]))
        self.assertIn("alice", fa[0]["by"])
        # the reason box: needed, not blank, shortcuts off while typing
        self.assertTrue(out["reasonFocused"])
        self.assertTrue(out["submitDisabledEmpty"])
        self.assertTrue(out["submitDisabledBlank"])
        self.assertFalse(out["submitDisabledFilled"])
        self.assertTrue(out["typedNotShortcut"])
        # released: gone from the queue, also after a refresh; in the released tab
        rest = [n for n in held if n != "a.wav"]
        self.assertEqual(sorted(out["queueAfterRelease"]), rest)
        self.assertEqual(sorted(out["queueAfterRefresh"]), rest)
        self.assertIn("a.wav", out["released"])
        self.assertIn("Released a.wav", out["statusAfterRelease"])
        self.assertEqual(out["afterLogout"], 401)

        # the spool and the audit log say the same
        w = d.where()
        self.assertEqual((w["a.wav"], w[HOSTILE]), (["released"], ["hold"]))
        # rejected with x and Ctrl+Enter
        self.assertEqual(out["rejectLabel"], "Reason for rejecting")
        self.assertNotIn("call-0187.wav", out["queueAfterReject"])
        self.assertEqual(w["call-0187.wav"], ["rejected"])
        rej = [line for line in d.audit_lines() if line.get("event") == "reject"]
        self.assertEqual([(x["name"], x["reason"]) for x in rej],
                         [("call-0187.wav", REASON),
                          ("stereo-call.wav", "a colleague was faster")])  # the stale step
        self.assertIn("alice", rej[0]["by"])
        rel = [line for line in d.audit_lines() if line.get("event") == "release"]
        self.assertEqual(len(rel), 1, d.audit_lines())
        self.assertIn("alice", rel[0]["by"])
        self.assertEqual(rel[0]["name"], "a.wav")
        self.assertEqual(rel[0]["reason"], REASON)
        st, v = d.verdict("a.wav")
        self.assertEqual(st, "released")
        self.assertEqual(v["review"][-1]["reason"], REASON)
        self.assertIn("alice", v["review"][-1]["by"])
        # issue 18: a decision from a stale page is refused, in words
        self.assertIn("changed after you opened it", out["staleError"])
        self.assertIn("rejected it at", out["staleError"])
        self.assertEqual(d.where()["stereo-call.wav"], ["rejected"])

        # the browser: no script error, no unexpected error, no CSP violation
        self.assertEqual(out["pageErrors"], [])
        wave = out["waveStyle"]
        hash_allowed = wave is None or ("'%s'" % wave["hash"]) in (out["csp"] or "")
        errors = []
        for m in out["console"]:
            if m["type"] not in ("error", "assert"):
                continue
            if "status of 401" in m["text"] and m["url"].split("?")[0].endswith(
                    ("/api/session", "/login")):
                continue  # the session probe before login, the wrong password
            if "status of 409" in m["text"] and m["url"].endswith("/release"):
                continue  # the stale page's decision, refused on purpose
            if not hash_allowed and "Content Security Policy" in m["text"] and wave["hash"] in m["text"]:
                continue  # wavesurfer's shadow <style>: see the module docstring
            errors.append(m)
        self.assertEqual(errors, [])
        if hash_allowed:
            self.assertEqual(out["violations"], [])
        else:
            sys.stderr.write("\nNOTE: the daemon's CSP refuses wavesurfer's shadow <style>; adding "
                             "'%s' to style-src allows it\n" % wave["hash"])
            for v in out["violations"]:
                self.assertEqual((v["directive"], v["blocked"]), ("style-src-elem", "inline"), v)
        # ... and the waveform is laid out all the same
        self.assertEqual((wave["canvasPosition"], wave["progressPosition"], wave["progressOverflow"]),
                         ("absolute", "absolute", "hidden"), wave)
        bad = [r for r in out["responses"] if r["status"] >= 400 and not (
            r["status"] == 401 and r["url"].split("?")[0].endswith(("/api/session", "/login")))
            and not (r["status"] == 409 and r["url"].endswith("/release"))]
        self.assertEqual(bad, [])
        self.assertEqual(d.stop(), 0)

    def test_lockout_is_shown_with_its_time(self):
        """After 5 wrong passwords the server answers 429 with Retry-After:
        the page says "too many attempts, retry in N s", counts down and
        keeps the button off meanwhile."""
        self.passwd("alice", PASSWORD)
        self.d.start()
        out = self.drive({"mode": "lockout", "base": "http://127.0.0.1:%d" % self.port,
                          "chromium": CHROMIUM, "user": "alice"})
        att = out["attempts"]
        self.assertGreaterEqual(len(att), 2, att)
        for a in att[:-1]:
            self.assertEqual((a["error"], a["disabled"]), ("Wrong user name or password.", False))
        m = re.fullmatch(r"Too many attempts, retry in (\d+) s\.", att[-1]["error"])
        self.assertTrue(m and att[-1]["disabled"], att[-1])
        n = int(m.group(1))
        self.assertTrue(0 < n <= 15 * 60, n)
        later = re.fullmatch(r"Too many attempts, retry in (\d+) s\.", out["later"])
        self.assertTrue(later and int(later.group(1)) < n, out["later"])  # counting down
        self.assertEqual(out["pageErrors"], [])
        self.assertEqual(out["dialogs"], [])
        self.assertEqual(self.d.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
