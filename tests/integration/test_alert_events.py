#!/usr/bin/env python3
"""issue 12: alerts that say what happened, from a real daemon on real
spools to real receivers on 127.0.0.1, in all three formats: a gate's hold
(vmscreen.hold), a monitor call delivered with findings (vmscreen.flagged),
a file that could not be screened (vmscreen.unscreenable), and review
decisions from the CLI and from the console (vmscreen.released,
vmscreen.rejected: who, when, why).  Every payload has a `state`; Slack and
Teams texts say the same thing; a hostile file name cannot ping a Slack
channel or make a Teams link.
"""
import base64
import json
import os
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_harness import CLI, DAEMON, Daemon, cleanup_clips, free_port  # noqa: E402
from webhook_receiver import Receiver, key_from_secret  # noqa: E402

HOSTILE = "<!channel> [click](https:evil.example) *x*.wav"


def tearDownModule():
    cleanup_clips()


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
class AlertEvents(unittest.TestCase):
    def setUp(self):
        secret = b"whsec_" + base64.b64encode(os.urandom(32))
        self.rx = Receiver(key_from_secret(secret)).start()
        self.slack = Receiver(None).start()
        self.teams = Receiver(None).start()
        for r in (self.rx, self.slack, self.teams):
            self.addCleanup(r.stop)
        self.port = free_port()
        self.d = Daemon(spools=[("vm", "gate"), ("calls", "monitor")], extra="")
        self.secret_path = os.path.join(self.d.dir, "hook.secret")
        with open(self.secret_path, "wb") as f:
            f.write(secret)
        os.chmod(self.secret_path, 0o600)
        self.users = os.path.join(self.d.dir, "reviewers")
        subprocess.run([CLI, "passwd", "alice", "--users-file", self.users],
                       input="a long enough password\n", text=True, check=True,
                       capture_output=True)
        hooks = ('webhooks = (\n'
                 ' { name = "std"; url = "%s"; secret_file = "%s"; retry_base_s = 0.05; },\n'
                 ' { name = "slack"; url = "%s"; format = "slack"; retry_base_s = 0.05; },\n'
                 ' { name = "teams"; url = "%s"; format = "teams"; retry_base_s = 0.05; } );\n'
                 'http = { listen = "127.0.0.1:%d"; users_file = "%s"; };\n'
                 % (self.rx.url, self.secret_path, self.slack.url, self.teams.url, self.port,
                    self.users))
        self.d.extra = hooks
        self.d.write_config()

    def tearDown(self):
        self.d.close()

    def bodies(self, rx, n, timeout=60):
        got = rx.wait(lambda r: len(r.delivered()) >= n and r.delivered(), timeout)
        self.assertTrue(got and len(got) >= n, "%d of %d alerts" % (len(got or []), n))
        return [json.loads(g["body"]) for g in got]

    def by_type(self, typ, timeout=60):
        got = self.rx.wait(lambda r: [json.loads(g["body"]) for g in r.delivered()
                                      if json.loads(g["body"])["type"] == typ], timeout)
        self.assertTrue(got, "no %s alert; got %r" % (
            typ, [json.loads(g["body"])["type"] for g in self.rx.delivered()]))
        return got

    def garbage(self, name, spool="vm"):
        inc = os.path.join(self.d.spool_path(spool), "incoming")
        with open(os.path.join(inc, ".g.tmp"), "wb") as f:
            f.write(b"RIFF\x00\x00\x00\x00WAVEjunk" + os.urandom(3000))
        os.rename(os.path.join(inc, ".g.tmp"), os.path.join(inc, name))

    def test_each_event_type_and_state_in_three_formats(self):
        d = self.d
        d.start()
        d.drop("a.wav", "flagged")                 # gate: held
        d.drop("c.wav", "flagged", spool="calls")  # monitor: delivered, flagged
        self.garbage("g.wav")                      # gate: unscreenable, held
        d.drop(HOSTILE, "flagged")                 # gate: held, hostile name
        d.wait_done(["a.wav", "g.wav", HOSTILE])
        d.wait_done(["c.wav"], spool="calls")
        hold = self.by_type("vmscreen.hold")
        self.assertEqual({(b["data"]["file"], b["data"]["state"], b["data"]["mode"])
                          for b in hold},
                         {("a.wav", "hold", "gate"), (HOSTILE, "hold", "gate")})
        fl = self.by_type("vmscreen.flagged")
        self.assertEqual([(b["data"]["file"], b["data"]["state"], b["data"]["mode"])
                          for b in fl], [("c.wav", "released", "monitor")])
        un = self.by_type("vmscreen.unscreenable")
        self.assertEqual([(b["data"]["file"], b["data"]["state"]) for b in un],
                         [("g.wav", "hold")])
        # the CLI's decision: the daemon delivers it (it owns the outbox)
        ida = d.verdict("a.wav")[1]["id"]
        r = d.cli("release", ida, "--reason", "checked: the caller asked for it")
        self.assertEqual(r.returncode, 0, r.stderr)
        rel = self.by_type("vmscreen.released", timeout=30)
        dec = rel[0]["data"]["decision"]
        self.assertEqual((rel[0]["data"]["id"], rel[0]["data"]["state"]), (ida, "released"))
        self.assertEqual((dec["action"], dec["reason"], dec["via"]),
                         ("release", "checked: the caller asked for it", "cli"))
        self.assertTrue(dec["by"] and dec["at"])
        # the console's decision: the daemon queues it itself
        import http.client
        from urllib.parse import urlencode
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("POST", "/login", urlencode({"user": "alice",
                                               "password": "a long enough password"}),
                  {"Content-Type": "application/x-www-form-urlencoded"})
        resp = c.getresponse()
        login = json.loads(resp.read())
        cookie = resp.getheader("Set-Cookie").split(";")[0]
        idh = d.verdict(HOSTILE)[1]["id"]
        c.request("GET", "/api/items/" + idh, headers={"Cookie": cookie})
        ver = json.loads(c.getresponse().read())["version"]  # issue 18: decisions name it
        c.request("POST", "/api/items/%s/reject" % idh,
                  json.dumps({"reason": "rude <b>", "version": ver}),
                  {"Cookie": cookie, "X-CSRF-Token": login["csrf"],
                   "Content-Type": "application/json"})
        self.assertEqual(c.getresponse().status, 200)
        rej = self.by_type("vmscreen.rejected", timeout=30)
        dec = rej[0]["data"]["decision"]
        self.assertEqual((dec["by"], dec["reason"], rej[0]["data"]["state"]),
                         ("alice (console)", "rude <b>", "rejected"))
        # Slack and Teams: the same events, in words, with hostile text escaped
        n = len(self.rx.delivered())
        slack = self.bodies(self.slack, n)
        teams = self.bodies(self.teams, n)
        heads = " | ".join(s["text"] for s in slack)
        for word in ("vmscreen held", "flagged (delivered)", "could not screen (held)",
                     "released after review", "rejected after review", "by alice (console)"):
            self.assertIn(word, heads)
        everything = json.dumps(slack)
        self.assertNotIn("<!channel>", everything)
        self.assertIn("&lt;!channel&gt;", everything)
        cards = json.dumps(teams)
        self.assertNotIn("[click](https", cards)
        self.assertIn("\\\\[click\\\\]\\\\(https", cards)
        self.assertNotIn("*x*", cards.replace("\\\\*x\\\\*", ""))
        for t in teams:
            facts = {f["title"]: f["value"] for b in t["attachments"][0]["content"]["body"]
                     if b["type"] == "FactSet" for f in b["facts"]}
            self.assertIn(facts["State"], ("hold", "released", "rejected"))
        self.assertEqual([q["bad"] for q in self.rx.requests], [""] * len(self.rx.requests))
        self.assertEqual(d.stop(), 0)


    def test_alerts_list_retry_and_test(self):
        """`vmscreen alerts`: a parked alert is listed with its hook's name,
        `retry` puts it back and the daemon delivers it, `test` sends a
        signed vmscreen.test now."""
        d = self.d
        d.extra = ('webhooks = ( { name = "std"; url = "%s"; secret_file = "%s"; '
                   'retry_base_s = 0.05; max_attempts = 2; } );\n'
                   % (self.rx.url, self.secret_path))
        d.write_config()
        self.rx.always = 500
        d.start()
        d.drop("a.wav", "flagged")
        d.wait_done(["a.wav"])
        parked = os.path.join(d.outbox, "parked")
        end = time.time() + 30
        while time.time() < end and not os.listdir(parked):
            time.sleep(0.1)
        r = d.cli("alerts", "list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = json.loads(r.stdout)
        self.assertEqual([(x["state"], x["hook"], x["type"], x["attempts"]) for x in rows],
                         [("parked", "std", "vmscreen.hold", 2)])
        self.assertIn("HTTP 500", rows[0]["last_error"])
        r = d.cli("alerts", "list")
        self.assertIn("parked", r.stdout)
        self.assertIn(rows[0]["id"], r.stdout)
        self.rx.always = None
        r = d.cli("alerts", "retry", rows[0]["id"])
        self.assertEqual(r.returncode, 0, r.stderr)
        got = self.rx.wait(lambda rx: rx.delivered(), 30)
        self.assertEqual([g["id"] for g in got], [rows[0]["id"]])  # the same webhook-id
        end = time.time() + 10
        while time.time() < end and json.loads(d.cli("alerts", "list", "--json").stdout):
            time.sleep(0.2)
        self.assertEqual(json.loads(d.cli("alerts", "list", "--json").stdout), [])
        self.assertEqual(d.cli("alerts", "retry", rows[0]["id"]).returncode, 1)
        r = d.cli("alerts", "test", "std")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("HTTP 200", r.stdout)
        t = json.loads(self.rx.delivered()[-1]["body"])
        self.assertEqual((t["type"], t["data"]["hook"]), ("vmscreen.test", "std"))
        self.assertEqual(self.rx.delivered()[-1]["bad"], "")  # signed
        r = d.cli("alerts", "test", "nosuch")
        self.assertEqual(r.returncode, 1)
        self.assertIn('no webhook named "nosuch"', r.stderr)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
