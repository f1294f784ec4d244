#!/usr/bin/env python3
"""Webhook delivery against a real HTTP receiver on 127.0.0.1 (issue 4).

Drives the real hub (src/alert) through tests/tools/alert_driver: real
outbox files, real libcurl, real signatures checked by an independent
Python implementation.  The retry base is lowered to a few hundredths of a
second (retry_base_s, a test-only knob) so the schedule runs in seconds.

VMS_BIN_DIR selects the build (build/rel or build/asan).
"""
import base64
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from webhook_receiver import Receiver, key_from_secret  # noqa: E402

BIN_DIR = os.environ.get("VMS_BIN_DIR", os.path.join(ROOT, "build", "rel"))
DRIVER = os.path.join(BIN_DIR, "tests", "tools", "alert_driver")


def load(path):
    """An outbox entry, or {} if it was just delivered and removed."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def verdict(item, severity="high", result="hold", evidence="you idiot"):
    """A NAME.verdict.json object as the daemon writes it."""
    alerts = []
    if severity:
        alerts.append(dict(type="phrasing", category="insult", severity=severity, start_s=3.1,
                           end_s=3.9, evidence=evidence, rule="insult.idiot"))
    words = [dict(w=w, start_s=s, end_s=s + 0.3, conf=0.9)
             for w, s in (("hello", 0.5), ("you", 3.1), ("idiot", 3.5), ("bye", 9.0))]
    return dict(file="/srv/spool/voicemail/incoming/%s.wav" % item, verdict=result,
                duration_s=10.0, alerts=alerts,
                transcript=dict(text=" ".join(w["w"] for w in words), words=words),
                metadata=dict(caller="+15550100"), spool="voicemail", id=item,
                screened_at="2024-05-01T10:00:00Z")


class Base(unittest.TestCase):
    """Temporary directory, secret, receiver and driver helpers."""

    def setUp(self):
        if not os.access(DRIVER, os.X_OK):
            self.fail("%s is not built: run make %s" % (DRIVER, os.path.relpath(DRIVER, ROOT)))
        self.dir = tempfile.mkdtemp(prefix="vms-webhooks-")
        self.outbox = os.path.join(self.dir, "outbox")
        self.secret_path = os.path.join(self.dir, "webhook.secret")
        secret = b"whsec_" + base64.b64encode(os.urandom(32))
        fd = os.open(self.secret_path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, secret + b"\n")
        os.close(fd)
        self.secret = secret
        self.rx = Receiver(key_from_secret(secret + b"\n")).start()
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.rx.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # helpers ---------------------------------------------------------------

    def config(self, hooks=None, **extra):
        """Writes a libconfig file; hooks are dicts of settings."""
        if hooks is None:
            hooks = [dict(url=self.rx.url, secret_file=self.secret_path, retry_base_s=0.05)]

        def val(v):
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, (int, float)):
                return repr(v)
            if isinstance(v, list):
                return "[" + ", ".join(val(x) for x in v) + "]"
            return json.dumps(v)

        groups = ["{ " + " ".join("%s = %s;" % (k, val(v)) for k, v in h.items()) + " }"
                  for h in hooks]
        text = 'outbox_dir = "%s";\nwebhooks = (\n  %s\n);\n' % (self.outbox,
                                                               ",\n  ".join(groups))
        path = os.path.join(self.dir, "vmscreend.conf")
        # 0640: a config holding a Slack or Teams URL is a secret (issue 18)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "w") as f:
            f.write(text)
        return path

    def subs(self, items, **kw):
        args = []
        for item in items:
            path = os.path.join(self.dir, "%s.verdict.json" % item)
            with open(path, "w") as f:
                json.dump(verdict(item, **kw), f)
            args += ["-s", "voicemail:%s:%s" % (item, path)]
        return args

    def driver(self, cfg, args, timeout=30):
        p = subprocess.run([DRIVER, "-c", cfg] + args, capture_output=True, text=True,
                           timeout=timeout)
        return p

    def spawn(self, cfg, args):
        p = subprocess.Popen([DRIVER, "-c", cfg] + args, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p

    def pending(self):
        return sorted(glob.glob(os.path.join(self.outbox, "*.json")))

    def wait_for(self, pred, timeout, what):
        end = time.time() + timeout
        while time.time() < end:
            v = pred()
            if v:
                return v
            time.sleep(0.02)
        self.fail("timed out after %.0fs waiting for %s" % (timeout, what))



class WebhookTest(Base):
    """The hub through tests/tools/alert_driver."""

    def test_signed_standard_delivery(self):
        cfg = self.config()
        p = self.driver(cfg, self.subs(["vm1"]) + self.subs(["ok1"], severity=None,
                                                            result="pass") + ["-e", "-t", "10"])
        self.assertEqual(p.returncode, 0, p.stderr)
        got = self.rx.delivered()
        self.assertEqual(len(got), 1, "only the held file alerts: %r" % self.rx.requests)
        r = got[0]
        self.assertEqual(r["bad"], "")
        self.assertRegex(r["id"], r"^msg_[0-9a-f]{32}$")
        self.assertRegex(r["headers"]["webhook-signature"], r"^v1,[A-Za-z0-9+/]{43}=$")
        self.assertEqual(r["headers"]["content-type"], "application/json")
        body = json.loads(r["body"])
        self.assertEqual(body["type"], "vmscreen.hold")
        d = body["data"]
        self.assertEqual((d["spool"], d["id"], d["file"], d["verdict"]),
                         ("voicemail", "vm1", "vm1.wav", "hold"))
        self.assertEqual(d["review_command"], "vmscreen show vm1")
        self.assertEqual(d["metadata"], {"caller": "+15550100"})
        f = d["findings"][0]
        self.assertEqual((f["type"], f["category"], f["severity"], f["evidence"]),
                         ("phrasing", "insult", "high", "you idiot"))
        self.assertEqual(f["excerpt"]["text"], "hello you idiot")
        self.assertEqual(self.pending(), [])
        # the secret never reaches the logs
        self.assertNotIn(self.secret.decode(), p.stderr + p.stdout)
        self.assertNotIn(self.secret.decode()[6:], p.stderr + p.stdout)
        # submit only writes to disk: fast
        us = [int(x) for x in re.findall(r"submit \S+ rc=0 us=(\d+)", p.stdout)]
        self.assertEqual(len(us), 2, p.stdout)
        self.assertLess(max(us), 500000, p.stdout)

    def test_retry_after_500_same_id(self):
        self.rx.script(500, 500)
        p = self.driver(self.config(), self.subs(["vm2"]) + ["-e", "-t", "10"])
        self.assertEqual(p.returncode, 0, p.stderr)
        reqs = self.rx.requests
        self.assertEqual([q["status"] for q in reqs], [500, 500, 200])
        self.assertEqual(len({q["id"] for q in reqs}), 1, "webhook-id must be stable")
        self.assertTrue(all(q["bad"] == "" for q in reqs))
        self.assertIn("<4>vmscreend: alert: attempt 1 of", p.stderr)
        self.assertEqual(self.pending(), [])

    def test_outage_then_recovery_none_lost(self):
        self.rx.stop()  # down: connection refused
        items = ["o%02d" % i for i in range(20)]
        cfg = self.config([dict(url=self.rx.url, secret_file=self.secret_path,
                                retry_base_s=0.02, connect_timeout_s=1, timeout_s=2)])
        proc = self.spawn(cfg, self.subs(items) + ["-e", "-t", "40"])
        self.wait_for(lambda: len(self.pending()) == 20, 10, "20 queued alerts")
        ids = {os.path.basename(f)[:-5] for f in self.pending()}
        time.sleep(1.0)  # several failed attempts each
        attempts = [load(f)["attempts"] for f in self.pending()]
        self.assertTrue(all(a >= 1 for a in attempts), attempts)
        self.rx.start()  # recovery on the same port
        out, err = proc.communicate(timeout=40)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(self.rx.delivered_ids(), ids, "every alert delivered, none lost")
        self.assertEqual(self.pending(), [])

    def test_retry_after_honoured(self):
        self.rx.script((429, 2))
        p = self.driver(self.config(), self.subs(["vm3", "vm3b"]) + ["-e", "-t", "15"])
        self.assertEqual(p.returncode, 0, p.stderr)
        reqs = self.rx.requests
        self.assertEqual([q["status"] for q in reqs], [429, 200, 200])
        # the schedule alone would retry after ~0.05 s; the endpoint asked
        # for 2 s of quiet, which holds for the other queued alert too
        for q in reqs[1:]:
            self.assertGreaterEqual(q["t"] - reqs[0]["t"], 1.9)
            self.assertLess(q["t"] - reqs[0]["t"], 5)
        self.assertEqual(self.rx.delivered_ids(), {reqs[0]["id"], reqs[1]["id"], reqs[2]["id"]})
        self.assertEqual(len(self.rx.delivered_ids()), 2)
        self.assertIn("(Retry-After)", p.stderr)

    def test_kill9_then_restart_with_full_outbox(self):
        self.rx.always = 503
        items = ["k%02d" % i for i in range(10)]
        cfg = self.config()
        proc = self.spawn(cfg, self.subs(items) + ["-t", "60"])
        self.wait_for(lambda: len(self.pending()) == 10
                      and all(load(f).get("attempts", 0) >= 2 for f in self.pending()),
                      20, "10 alerts with 2 failed attempts each")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ids = {os.path.basename(f)[:-5] for f in self.pending()}
        self.assertEqual(len(ids), 10)
        for f in self.pending():  # schedule persisted
            e = load(f)
            self.assertGreaterEqual(e["attempts"], 2)
            self.assertEqual(e["last_status"], 503)
            self.assertGreater(e["next_attempt_ms"], e["created_ms"])
        # a write torn by the kill: must be cleaned, not delivered
        with open(os.path.join(self.outbox, ".tmp-msg_torn.json"), "w") as f:
            f.write('{"id": "msg_to')
        before = len(self.rx.requests)
        self.rx.always = None
        p = self.driver(cfg, ["-e", "-t", "20"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("10 undelivered alert(s) from a previous run", p.stderr)
        self.assertEqual(self.rx.delivered_ids(), ids)
        self.assertEqual(len(self.rx.requests) - before, 10, "each delivered once after restart")
        self.assertEqual(sorted(os.listdir(self.outbox)), [".lock", "parked"])
        self.assertFalse(os.path.exists(os.path.join(self.outbox, ".tmp-msg_torn.json")))
        self.assertEqual(self.pending(), [])

    def test_entry_due_in_a_year_after_a_wrong_clock_is_tried_now(self):
        """issue 10: an entry saved while the clock was a year ahead waited a
        year.  No backoff or Retry-After waits that long: it is due now."""
        self.rx.always = 503
        cfg = self.config()
        proc = self.spawn(cfg, self.subs(["late"]) + ["-t", "60"])
        self.wait_for(lambda: len(self.pending()) == 1
                      and load(self.pending()[0]).get("attempts", 0) >= 1, 20, "one failed attempt")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        f = self.pending()[0]
        e = load(f)
        e["next_attempt_ms"] = e["created_ms"] + 365 * 86400 * 1000
        with open(f, "w") as fh:
            json.dump(e, fh)
        self.rx.always = None
        t0 = time.time()
        p = self.driver(cfg, ["-e", "-t", "20"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertLess(time.time() - t0, 15)
        self.assertIn("the clock must have been wrong; trying it now", p.stderr)
        self.assertEqual(self.pending(), [])
        self.assertEqual(len(self.rx.delivered_ids()), 1)

    def test_permanent_4xx_is_parked_loudly(self):
        self.rx.always = 404
        p = self.driver(self.config(), self.subs(["vm4"]) + ["-e", "-t", "10"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([q["status"] for q in self.rx.requests], [404, 404, 404])
        self.assertEqual(self.pending(), [])
        parked = glob.glob(os.path.join(self.outbox, "parked", "*.json"))
        self.assertEqual(len(parked), 1)
        self.assertEqual(load(parked[0])["attempts"], 3)
        self.assertRegex(p.stderr, r"<3>vmscreend: alert: PARKED alert msg_\w+ "
                                   r"\(vmscreen.hold voicemail/vm4\)")

    def test_slack_and_teams_bodies(self):
        slack = Receiver(None).start()
        self.addCleanup(slack.stop)
        cfg = self.config([
            dict(url=slack.url, format="slack", retry_base_s=0.05),
            dict(url=self.rx.url, format="teams", secret_file=self.secret_path,
                 retry_base_s=0.05),
        ])
        p = self.driver(cfg, self.subs(["vm5"], evidence="<!here> you & me") + ["-e", "-t", "10"])
        self.assertEqual(p.returncode, 0, p.stderr)
        s = json.loads(slack.delivered()[0]["body"])
        self.assertIn("held voicemail/vm5 (vm5.wav): high phrasing insult", s["text"])
        self.assertEqual(s["blocks"][0]["type"], "header")
        text = json.dumps(s["blocks"])
        self.assertIn("&lt;!here&gt; you &amp; me", text)
        self.assertNotIn("<!here>", text)
        self.assertIn("vmscreen show vm5", text)
        for b in s["blocks"]:
            self.assertIn(b["type"], ("header", "section", "context"))
            if b["type"] == "section" and "text" in b:
                self.assertLessEqual(len(b["text"]["text"]), 3000)
        t = json.loads(self.rx.delivered()[0]["body"])  # signed too
        self.assertEqual(t["type"], "message")
        att = t["attachments"][0]
        self.assertEqual(att["contentType"], "application/vnd.microsoft.card.adaptive")
        card = att["content"]
        self.assertEqual(card["type"], "AdaptiveCard")
        texts = " ".join(b.get("text", "") for b in card["body"])
        self.assertIn("Evidence: <!here> you & me", texts)
        self.assertIn("3.1s-3.9s", texts)
        facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet"
                 for f in b["facts"]}
        self.assertEqual((facts["Spool"], facts["Item"], facts["File"]),
                         ("voicemail", "vm5", "vm5.wav"))

    def test_secret_file_readable_by_others_is_refused(self):
        os.chmod(self.secret_path, 0o644)
        p = self.driver(self.config(), self.subs(["vm6"]))
        self.assertEqual(p.returncode, 2)
        self.assertIn(self.secret_path, p.stderr)
        self.assertIn("chmod o=", p.stderr)
        self.assertNotIn(self.secret.decode()[6:], p.stderr)
        self.assertEqual(self.rx.requests, [])

    def test_slow_endpoint_never_blocks_submit_and_stop_is_prompt(self):
        self.rx.hang_s = 5
        cfg = self.config([dict(url=self.rx.url, secret_file=self.secret_path,
                                retry_base_s=0.05, timeout_s=30)])
        items = ["s%d" % i for i in range(5)]
        p = self.driver(cfg, self.subs(items) + ["-t", "1"])
        self.assertEqual(p.returncode, 0, p.stderr)
        us = [int(x) for x in re.findall(r"rc=0 us=(\d+)", p.stdout)]
        self.assertEqual(len(us), 5, p.stdout)
        self.assertLess(max(us), 500000, "submit waited on the network: %s" % p.stdout)
        stop_ms = int(re.search(r"stop ms=(\d+)", p.stdout).group(1))
        self.assertLess(stop_ms, 1000, "stop waited for the slow attempt")
        self.assertEqual(len(self.pending()), 5, "undelivered alerts stay in the outbox")

    def test_timeout_bounds_each_attempt(self):
        self.rx.hang_s = 3
        cfg = self.config([dict(url=self.rx.url, secret_file=self.secret_path,
                                retry_base_s=10, timeout_s=0.5)])
        t = time.time()
        p = self.driver(cfg, self.subs(["vm7"]) + ["-t", "1.5"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertLess(time.time() - t, 5)
        self.assertRegex(p.stderr, r"attempt 1 of msg_\w+ .* failed: Timeout")
        self.assertEqual(len(self.pending()), 1)


class DaemonWebhookTest(Base):
    """End to end through the real daemon: a flagged voicemail dropped into
    a spool reaches the receiver with a valid signature."""

    def setUp(self):
        self.daemon = os.path.join(BIN_DIR, "vmscreend")
        if not os.access(self.daemon, os.X_OK):
            self.fail("%s is not built" % self.daemon)
        if shutil.which("flite") is None:
            self.skipTest("flite is not installed (make deps)")
        super().setUp()

    def test_flagged_voicemail_reaches_receiver_signed(self):
        spool = os.path.join(self.dir, "spool")
        wav = os.path.join(self.dir, "render.wav")
        subprocess.run(["flite", "-t", "Hi, this is Mike from the bank. You are a complete "
                        "idiot. Call me back.", "-o", wav], check=True)
        cfg = os.path.join(self.dir, "vmscreend.conf")
        with open(cfg, "w") as f:
            f.write('workers = 1;\naudit_log = "%s/audit.log";\n'
                    'spools = ( { name = "voicemail"; path = "%s"; } );\n'
                    'outbox_dir = "%s";\n'
                    'webhooks = ( { url = "%s"; secret_file = "%s"; min_severity = "medium"; '
                    'spools = [ "voicemail" ]; } );\n'
                    % (self.dir, spool, self.outbox, self.rx.url, self.secret_path))
        args = [self.daemon, "--config", cfg] + (["--allow-root"] if os.getuid() == 0 else [])
        proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        incoming = os.path.join(spool, "incoming")
        self.wait_for(lambda: os.path.isdir(incoming) or proc.poll() is not None, 30,
                      "the daemon to create its spool")
        if proc.poll() is not None:
            self.fail("vmscreend exited: %s" % proc.stderr.read())
        shutil.copy(wav, os.path.join(incoming, ".vm1.wav.part"))
        os.rename(os.path.join(incoming, ".vm1.wav.part"), os.path.join(incoming, "vm1.wav"))
        got = self.rx.wait(lambda r: r.delivered(), 90)
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        self.assertTrue(got, "no signed alert arrived; daemon said:\n" + err)
        self.assertEqual([q["bad"] for q in self.rx.requests], [""] * len(self.rx.requests))
        body = json.loads(got[0]["body"])
        self.assertEqual(body["type"], "vmscreen.hold")
        d = body["data"]
        self.assertEqual(d["spool"], "voicemail")
        self.assertTrue(d["file"].endswith("vm1.wav"), d["file"])
        self.assertEqual(d["review_command"], "vmscreen show " + d["id"])
        self.assertIn("insult", [f["category"] for f in d["findings"]])
        self.assertEqual(self.pending(), [])


if __name__ == "__main__":
    unittest.main()
