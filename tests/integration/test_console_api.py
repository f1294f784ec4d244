#!/usr/bin/env python3
"""issue 11: the reviewer console's server side, against a real daemon on a
real spool over real HTTP on 127.0.0.1: accounts made with `vmscreen
passwd` (Argon2id), logins with an HttpOnly SameSite=Strict session cookie,
rate-limited failures, CSRF tokens on every POST, the JSON API (queue,
verdict, audio with Range, release/reject with a reason, false alarms), the
console's static files with their CSP, and HTTPS.  Decisions made here land
in the same audit log as the CLI's, with the reviewer's name.
"""
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import warnings
from concurrent.futures import ThreadPoolExecutor

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_harness import CLI, DAEMON, Daemon, free_port, cleanup_clips  # noqa: E402

PASSWORD = "correct horse battery staple"


def tearDownModule():
    cleanup_clips()


class Client:
    """A tiny HTTP client that keeps the session cookie, as a browser does."""

    def __init__(self, port, tls=False, src="127.0.0.1"):
        self.port, self.tls, self.src = port, tls, src
        self.cookie = None
        self.csrf = None

    def req(self, method, path, body=None, headers=None, form=None):
        if self.tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=ctx,
                                            source_address=(self.src, 0))
        else:
            # any 127.x.y.z is this machine: a second address for the limits
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30,
                                           source_address=(self.src, 0))
        h = dict(headers or {})
        if self.cookie:
            h["Cookie"] = self.cookie
        if form is not None:
            from urllib.parse import urlencode
            body = urlencode(form)
            h["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r, data

    def json(self, method, path, body=None, csrf=True, **kw):
        h = dict(kw.pop("headers", {}))
        if csrf and self.csrf and method == "POST":
            h["X-CSRF-Token"] = self.csrf
        r, data = self.req(method, path, body=body, headers=h, **kw)
        return r, (json.loads(data) if data else None)

    def login(self, user="alice", password=PASSWORD):
        r, data = self.req("POST", "/login", form={"user": user, "password": password})
        if r.status == 200:
            self.cookie = r.getheader("Set-Cookie").split(";")[0]
            self.csrf = json.loads(data)["csrf"]
        return r, json.loads(data)


def login_status(port, user, password, src):
    """One login from address src; its status."""
    return Client(port, src=src).login(user, password)[0].status


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
class ConsoleApi(unittest.TestCase):
    def setUp(self):
        self.port = free_port()
        self.tmp = tempfile.mkdtemp(prefix="vmsd-console-")
        self.users = os.path.join(self.tmp, "reviewers")
        self.www = os.path.join(self.tmp, "console")
        os.mkdir(self.www)
        with open(os.path.join(self.www, "index.html"), "w") as f:
            f.write("<!doctype html><title>vmscreen</title>")
        with open(os.path.join(self.www, "app.js"), "w") as f:
            f.write("export {};\n")
        with open(os.path.join(self.tmp, "secret.txt"), "w") as f:
            f.write("not for you\n")
        os.symlink(os.path.join(self.tmp, "secret.txt"), os.path.join(self.www, "link.txt"))
        self.passwd("alice", PASSWORD)
        self.d = None

    def tearDown(self):
        try:
            if self.d and self.d.proc and self.d.proc.poll() is None:
                # a clean stop: under ASan this is where leaks are reported
                self.assertEqual(self.d.stop(), 0, self.d.log_text()[-3000:])
        finally:
            if self.d:
                self.d.close()
        subprocess.run(["rm", "-rf", self.tmp])

    def passwd(self, name, password, *extra):
        return subprocess.run([CLI, "passwd", name, "--users-file", self.users] + list(extra),
                              input=password + "\n", capture_output=True, text=True,
                              timeout=60)

    def daemon(self, http_extra=""):
        self.d = Daemon(extra='http = { listen = "127.0.0.1:%d"; users_file = "%s"; '
                              'console_dir = "%s"; %s };' % (self.port, self.users, self.www,
                                                            http_extra))
        self.d.start()
        return self.d

    def test_passwd_writes_argon2id_and_refuses_weak_input(self):
        with open(self.users) as f:
            line = f.read().strip()
        self.assertRegex(line, r"^alice:\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$")
        self.assertNotIn(PASSWORD, line)
        self.assertEqual(os.stat(self.users).st_mode & 0o777, 0o640)
        r = self.passwd("bob", "short")
        self.assertEqual(r.returncode, 1)
        self.assertIn("at least 10 characters", r.stderr)
        r = self.passwd("../etc", PASSWORD)
        self.assertEqual(r.returncode, 1)
        self.assertIn("account name", r.stderr)
        self.assertEqual(self.passwd("bob", "another long one").returncode, 0)
        self.assertEqual(self.passwd("bob", "", "--delete").returncode, 0)
        with open(self.users) as f:
            self.assertEqual([l.split(":")[0] for l in f], ["alice"])

    def test_login_session_logout(self):
        self.daemon()
        c = Client(self.port)
        r, j = c.json("GET", "/api/items")
        self.assertEqual((r.status, j["error"]), (401, "login required"))
        r, j = c.login(password="wrong password!")
        self.assertEqual(r.status, 401)
        self.assertIsNone(r.getheader("Set-Cookie"))
        r, j = c.login(user="mallory")  # an unknown name answers the same
        self.assertEqual((r.status, j["error"]), (401, "wrong user name or password"))
        r, j = c.login()
        self.assertEqual(r.status, 200, j)
        ck = r.getheader("Set-Cookie")
        for flag in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"):
            self.assertIn(flag, ck)
        self.assertNotIn("Secure", ck)  # plain HTTP here; see the TLS test
        self.assertEqual(j["user"], "alice")
        self.assertRegex(j["csrf"], r"^[0-9a-f]{64}$")
        r, j = c.json("GET", "/api/session")
        self.assertEqual((r.status, j["user"]), (200, "alice"))
        # a forged cookie is no session
        other = Client(self.port)
        other.cookie = "vms_session=" + "0" * 64
        self.assertEqual(other.json("GET", "/api/session")[0].status, 401)
        # logout needs the CSRF token too, then the cookie is dead
        self.assertEqual(c.json("POST", "/logout", csrf=False)[0].status, 403)
        self.assertEqual(c.json("POST", "/logout")[0].status, 200)
        self.assertEqual(c.json("GET", "/api/session")[0].status, 401)
        self.assertIn("failed login for alice from 127.0.0.1", self.d.log_text())
        self.assertIn("failed login for mallory", self.d.log_text())
        self.assertNotIn("wrong password!", self.d.log_text())

    def test_sessions_expire(self):
        """A session ends session_minutes after login: the cookie stops
        working and the API asks for a login again."""
        self.daemon("session_minutes = 0.05;")  # 3 s
        c = Client(self.port)
        r, j = c.login()
        self.assertEqual(r.status, 200, j)
        self.assertIn("Max-Age=3", r.getheader("Set-Cookie"))
        self.assertEqual(c.json("GET", "/api/items")[0].status, 200)
        time.sleep(3.5)
        r, j = c.json("GET", "/api/items")
        self.assertEqual((r.status, j["error"]), (401, "login required"))
        self.assertEqual(c.json("GET", "/api/session")[0].status, 401)
        self.assertEqual(c.json("POST", "/logout")[0].status, 401)

    def test_failed_logins_are_rate_limited(self):
        self.daemon()
        c = Client(self.port)
        for _ in range(5):
            self.assertEqual(c.login(password="not the password")[0].status, 401)
        r, j = c.login()  # even the right password waits now
        self.assertEqual(r.status, 429)
        self.assertGreater(int(r.getheader("Retry-After")), 800)
        self.assertIn("too many failed logins", j["error"])
        self.assertEqual(c.json("GET", "/api/session")[0].status, 401)

    # --- issue 18: sessions and logins -------------------------------------

    def test_deleted_or_changed_account_loses_its_sessions(self):
        """issue 18: a reviewer deleted with `vmscreen passwd --delete`, or
        whose password changed, kept a working session for 8 hours (and a
        SIGHUP kept it too).  Every request now checks the account's hash."""
        d = self.daemon()
        d.drop("a.wav", "flagged")
        d.wait_done(["a.wav"])
        ida = d.verdict("a.wav")[1]["id"]
        self.passwd("bob", PASSWORD)
        self.passwd("carol", PASSWORD)
        alice, alice2, bob, carol = (Client(self.port) for _ in range(4))
        for c, who in ((alice, "alice"), (alice2, "alice"), (bob, "bob"), (carol, "carol")):
            self.assertEqual(c.login(who)[0].status, 200)
        self.assertEqual(self.passwd("alice", "", "--delete").returncode, 0)
        for c in (alice, alice2):
            r, j = c.json("POST", "/api/items/%s/release" % ida, {"reason": "still here?"})
            self.assertEqual((r.status, j["error"]), (401, "login required"))
            self.assertEqual(c.json("GET", "/api/items")[0].status, 401)
        self.assertEqual(d.where()["a.wav"], ["hold"])
        self.assertEqual(bob.json("GET", "/api/items")[0].status, 200)  # others stay
        # a new password ends the old sessions; the new one logs in again
        self.assertEqual(self.passwd("bob", "a brand new password").returncode, 0)
        self.assertEqual(bob.json("GET", "/api/session")[0].status, 401)
        self.assertEqual(bob.login("bob", PASSWORD)[0].status, 401)
        self.assertEqual(bob.login("bob", "a brand new password")[0].status, 200)
        self.assertEqual(bob.json("GET", "/api/items")[0].status, 200)
        # a reload keeps no session of a deleted account either
        self.assertEqual(self.passwd("carol", "", "--delete").returncode, 0)
        d.signal(signal.SIGHUP)
        end = time.time() + 60
        while "reloaded" not in d.log_text() and time.time() < end:
            time.sleep(0.1)
        self.assertIn("reloaded", d.log_text())
        self.assertEqual(carol.json("GET", "/api/session")[0].status, 401)
        self.assertIn("carol: account deleted or password changed", d.log_text())

    def test_one_account_cannot_log_the_others_out(self):
        """issue 18: 256 logins of one account pushed every other
        reviewer's session out of the table.  An account now holds at most
        8 sessions; its ninth login ends its own oldest."""
        self.daemon()
        self.passwd("bob", PASSWORD)
        bob = Client(self.port)
        self.assertEqual(bob.login("bob")[0].status, 200)
        first = Client(self.port)
        self.assertEqual(first.login()[0].status, 200)
        with ThreadPoolExecutor(2) as ex:
            codes = list(ex.map(lambda _: Client(self.port).login()[0].status, range(260)))
        self.assertEqual(set(codes), {200})
        self.assertEqual(bob.json("GET", "/api/session")[0].status, 200)
        self.assertEqual(first.json("GET", "/api/session")[0].status, 401)

    def test_wrong_guesses_lock_the_pair_not_the_reviewer(self):
        """issue 18: 5 bad guesses from anywhere locked the real reviewer out
        from every address.  Now the lock is per (name, address); a looser
        limit per name (50) bounds a guesser with many addresses."""
        self.daemon()
        for _ in range(5):
            self.assertEqual(login_status(self.port, "alice", "wrong guess!", "127.0.0.2"), 401)
        self.assertEqual(login_status(self.port, "alice", PASSWORD, "127.0.0.2"), 429)
        self.assertEqual(login_status(self.port, "alice", PASSWORD, "127.0.0.1"), 200)
        # many addresses, few guesses each: the name's own limit holds
        srcs = ["127.0.1.%d" % i for i in range(1, 10) for _ in range(5)]
        with ThreadPoolExecutor(2) as ex:
            codes = list(ex.map(lambda a: login_status(self.port, "alice", "wrong guess!", a),
                                srcs))
        self.assertEqual(codes.count(401), 45)
        self.assertEqual(login_status(self.port, "alice", PASSWORD, "127.0.2.1"), 429)

    def test_rate_limit_survives_a_flood_of_fresh_names(self):
        """issue 18: flooding the 512-record failure table with fresh names
        from fresh addresses evicted the lock on a name.  A record that
        counts is never evicted now (a full table refuses new keys)."""
        self.daemon()
        for _ in range(5):
            self.assertEqual(login_status(self.port, "alice", "wrong guess!", "127.0.0.1"), 401)
        jobs = [("flood%d" % i, "127.0.3.%d" % (i // 5 + 1)) for i in range(440)]
        with ThreadPoolExecutor(2) as ex:
            codes = list(ex.map(lambda j: login_status(self.port, j[0], "x" * 12, j[1]), jobs))
        self.assertEqual(set(codes), {401})
        self.assertEqual(login_status(self.port, "alice", PASSWORD, "127.0.0.1"), 429)

    def test_concurrent_guesses_are_counted_before_argon2id(self):
        """issue 18: concurrent attempts all passed a limit checked before
        the Argon2id run, so 8 at once got 6-8 guesses.  Each attempt is now
        counted under the lock first: at most 5 of 8 are ever checked, and
        at most 2 Argon2id checks run at once (503 beyond that)."""
        self.daemon()
        with ThreadPoolExecutor(8) as ex:  # 8: the most one address may open
            codes = list(ex.map(lambda _: login_status(self.port, "alice", "wrong guess!",
                                                       "127.0.0.1"), range(8)))
        self.assertLessEqual(codes.count(401), 5, codes)
        self.assertTrue(set(codes) <= {401, 429, 503}, codes)
        with ThreadPoolExecutor(8) as ex:
            codes = list(ex.map(lambda i: login_status(self.port, "alice", PASSWORD,
                                                       "127.0.4.%d" % i), range(1, 9)))
        self.assertIn(503, codes)  # busy: more than 2 at once
        self.assertIn(200, codes)

    # --- issue 18: decisions from a stale page --------------------------------

    def test_a_stale_page_cannot_undo_a_colleagues_decision(self):
        """issue 18: a reviewer on a stale page released an item a colleague
        had just rejected (200 "released", the rejected recording went out).
        A decision names the version it saw; a changed item is a 409 that
        says what happened, and nothing moves."""
        d = self.daemon()
        d.drop("a.wav", "flagged")
        d.wait_done(["a.wav"])
        ida = d.verdict("a.wav")[1]["id"]
        self.passwd("bob", PASSWORD)
        alice, bob = Client(self.port), Client(self.port)
        alice.login()
        bob.login("bob")
        seen = alice.json("GET", "/api/items/" + ida)[1]["version"]  # alice's page
        v = bob.json("GET", "/api/items/" + ida)[1]["version"]
        r, j = bob.json("POST", "/api/items/%s/reject" % ida, {"reason": "rude", "version": v})
        self.assertEqual((r.status, j["state"]), (200, "rejected"))
        r, j = alice.json("POST", "/api/items/%s/release" % ida,
                          {"reason": "sounded fine to me", "version": seen})
        self.assertEqual(r.status, 409, j)
        self.assertTrue(j["changed"])
        self.assertEqual(j["state"], "rejected")
        self.assertIn("bob (console) rejected it", j["error"])
        self.assertIn("nothing was done", j["error"])
        self.assertEqual(d.where()["a.wav"], ["rejected"])
        self.assertFalse([a for a in d.audit_lines() if a["event"] == "release"])
        # a decision that names no version is refused: 428
        r, j = alice.json("POST", "/api/items/%s/release" % ida, {"reason": "ok"})
        self.assertEqual(r.status, 428, j)
        self.assertIn("version", j["error"])
        # with the version of what is there now, the release goes through
        r, j = alice.json("POST", "/api/items/%s/release" % ida,
                          {"reason": "reviewed again", "version": j.get("version") or
                           alice.json("GET", "/api/items/" + ida)[1]["version"]})
        self.assertEqual((r.status, j["state"]), (200, "released"), j)
        self.assertEqual(d.where()["a.wav"], ["released"])

    def test_a_reason_that_is_not_utf8_is_refused(self):
        """issue 18: `vmscreen release --reason $'ok f\\xfcr'` released the item
        with no review entry (jansson refused the string).  The CLI and the
        API now refuse such a reason and nothing moves."""
        d = self.daemon()
        d.drop("a.wav", "flagged")
        d.wait_done(["a.wav"])
        ida = d.verdict("a.wav")[1]["id"]
        r = subprocess.run([CLI.encode(), b"release", ida.encode(), b"--reason", b"ok f\xfcr"],
                           env=dict(os.environ, VMSCREEN_CONFIG=d.conf), capture_output=True,
                           timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"not valid UTF-8", r.stderr)
        self.assertEqual(d.where()["a.wav"], ["hold"])
        c = Client(self.port)
        c.login()
        ver = c.json("GET", "/api/items/" + ida)[1]["version"]
        body = b'{"reason": "ok f\xfcr", "version": "' + ver.encode() + b'"}'
        r, data = c.req("POST", "/api/items/%s/release" % ida, body=body,
                        headers={"X-CSRF-Token": c.csrf, "Content-Type": "application/json"})
        self.assertEqual(r.status, 400, data)
        self.assertIn(b"UTF-8", data)
        self.assertEqual(d.where()["a.wav"], ["hold"])
        self.assertFalse([a for a in d.audit_lines() if a["event"] == "release"])

    # --- issue 18: the HTTP server ----------------------------------------------

    def test_slow_connections_cannot_take_healthz_down(self):
        """issue 18: 40 connections trickling a request took /healthz,
        /metrics and the console down (no limit per address, no deadline).
        Now one address holds at most 8 connections and a request must
        arrive within 10 s."""
        d = self.daemon()
        slow = []
        for _ in range(40):
            try:
                k = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                k.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                slow.append(k)
            except OSError:
                pass
        t0 = time.time()
        for src, path in (("127.0.0.2", "/healthz"), ("127.0.0.3", "/metrics")):
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5,
                                           source_address=(src, 0))
            c.request("GET", path)
            self.assertEqual(c.getresponse().status, 200, path)
            c.close()
        self.assertLess(time.time() - t0, 5)
        # the trickling connections are cut at the deadline, however they trickle
        end = time.time() + 16
        cut = 0
        for k in slow:
            k.settimeout(max(0.1, end - time.time()))
            try:
                k.sendall(b"X-Slow: 1\r\n")
                while k.recv(4096):
                    pass
                cut += 1
            except (socket.timeout, TimeoutError):
                pass
            except OSError:
                cut += 1
            k.close()
        self.assertEqual(cut, len(slow))
        # the reaper's line may reach the log a moment after the sockets end
        end = time.time() + 15
        while time.time() < end and "sent no whole request within 10 s" not in d.log_text():
            time.sleep(0.2)
        self.assertIn("sent no whole request within 10 s", d.log_text())
        self.assertIsNone(d.proc.poll())

    def test_host_must_name_this_server(self):
        """issue 18: any Host was served, so a DNS-rebinding page could read
        /metrics.  Only address literals, localhost and http.public_name are
        served now; others get 421."""
        self.daemon('public_name = "console.example.com";')
        for host, want in (("127.0.0.1:%d" % self.port, 200), ("localhost", 200),
                           ("console.example.com:%d" % self.port, 200),
                           ("CONSOLE.example.com", 200), ("evil.example", 421),
                           ("console.example.com.evil.example", 421)):
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            c.putrequest("GET", "/metrics", skip_host=True)
            c.putheader("Host", host)
            c.endheaders()
            r = c.getresponse()
            self.assertEqual(r.status, want, host)
            if want == 421:
                self.assertNotIn(b"vmscreen_", r.read())
            c.close()

    def test_plain_start_prints_no_mhd_errors(self):
        """issue 18: every plain-HTTP start printed "MHD HTTPS option 8/9
        passed to MHD but MHD_USE_TLS not set" (TLS options given as NULL)."""
        d = self.daemon()
        self.assertIn("http: serving", d.log_text())
        self.assertNotIn("MHD", d.log_text())

    def tls_pair(self, mode=0o600):
        cert, key = os.path.join(self.tmp, "c.pem"), os.path.join(self.tmp, "k.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                        "/CN=127.0.0.1", "-days", "2", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        os.chmod(key, mode)
        return cert, key

    def test_tls_refuses_old_versions_static_rsa_and_a_shared_key(self):
        """issue 18: TLS 1.0/1.1 and static-RSA key exchange were accepted,
        and so was a private key others could read."""
        cert, key = self.tls_pair(0o644)
        tls = 'tls_cert = "%s"; tls_key = "%s";' % (cert, key)
        d = Daemon(extra='http = { listen = "127.0.0.1:%d"; %s };' % (self.port, tls))
        self.d = d
        r = subprocess.run([DAEMON, "--config", d.conf, "--check", "--allow-root"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("lets group or others read", r.stderr)
        r = d.start(wait_ready=False)
        self.assertNotEqual(d.proc.wait(timeout=60), 0)
        self.assertIn("lets group or others read", d.log_text())
        d.close()
        os.chmod(key, 0o600)
        self.daemon(tls)

        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1: on purpose

        def handshake(**kw):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            if "ciphers" in kw:
                ctx.set_ciphers(kw["ciphers"])
            ctx.minimum_version = kw.get("lo", ssl.TLSVersion.MINIMUM_SUPPORTED)
            ctx.maximum_version = kw.get("hi", ssl.TLSVersion.MAXIMUM_SUPPORTED)
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as k:
                with ctx.wrap_socket(k) as t:
                    return t.version(), t.cipher()[0]

        self.assertIn(handshake()[0], ("TLSv1.2", "TLSv1.3"))
        self.assertEqual(handshake(hi=ssl.TLSVersion.TLSv1_2)[0], "TLSv1.2")
        for old in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            with self.assertRaises(ssl.SSLError, msg=str(old)):
                handshake(lo=old, hi=old, ciphers="ALL:@SECLEVEL=0")
        with self.assertRaises(ssl.SSLError):  # RSA key exchange: no forward secrecy
            handshake(hi=ssl.TLSVersion.TLSv1_2, ciphers="kRSA:@SECLEVEL=0")

    def test_queue_item_audio_and_decisions(self):
        d = self.daemon()
        d.drop("a.wav", "flagged")
        d.drop("b.wav", "flagged")
        d.drop("c.wav", "clean")
        d.wait_done(["a.wav", "b.wav", "c.wav"])
        c = Client(self.port)
        c.login()
        r, j = c.json("GET", "/api/items?state=hold")
        self.assertEqual(r.status, 200, j)
        self.assertEqual(r.getheader("Content-Security-Policy"),
                         "default-src 'none'; frame-ancestors 'none'")
        self.assertEqual(sorted(i["name"] for i in j["items"]), ["a.wav", "b.wav"])
        times = [i["screened_at"] for i in j["items"]]
        self.assertEqual(times, sorted(times, reverse=True))  # newest first
        row = j["items"][0]
        self.assertEqual(row["severity"], "high")
        self.assertIn("hostility", row["categories"])
        self.assertTrue(all("severity" in f and "evidence" in f for f in row["findings"]))
        self.assertEqual(j["spools"], [{"name": "vm", "mode": "gate"}])
        r, j = c.json("GET", "/api/items?state=released")
        self.assertEqual([i["name"] for i in j["items"]], ["c.wav"])
        self.assertEqual(c.json("GET", "/api/items?state=active")[0].status, 400)
        ida = d.verdict("a.wav")[1]["id"]
        r, v = c.json("GET", "/api/items/" + ida)
        self.assertEqual((r.status, v["state"], v["name"]), (200, "hold", "a.wav"))
        self.assertEqual(r.getheader("ETag"), '"%s"' % v["version"])
        ver = v["version"]
        self.assertEqual(v["audio_type"], "audio/wav")
        self.assertNotIn("file", v)
        self.assertTrue(v["transcript"]["words"])
        # the audio: exactly the screened bytes, whole or in ranges
        path = os.path.join(d.spool_path(), "hold", d.verdict("a.wav")[1]["id"] + "_a.wav")
        with open(path, "rb") as f:
            audio = f.read()
        r, data = c.req("GET", "/api/items/%s/audio" % ida)
        self.assertEqual((r.status, data), (200, audio))
        self.assertEqual(r.getheader("Accept-Ranges"), "bytes")
        self.assertEqual(r.getheader("Content-Type"), "audio/wav")
        r, data = c.req("GET", "/api/items/%s/audio" % ida, headers={"Range": "bytes=100-199"})
        self.assertEqual((r.status, data), (206, audio[100:200]))
        self.assertEqual(r.getheader("Content-Range"), "bytes 100-199/%d" % len(audio))
        r, data = c.req("GET", "/api/items/%s/audio" % ida, headers={"Range": "bytes=-10"})
        self.assertEqual((r.status, data), (206, audio[-10:]))
        r, data = c.req("GET", "/api/items/%s/audio" % ida,
                        headers={"Range": "bytes=%d-" % len(audio)})
        self.assertEqual(r.status, 416)
        self.assertEqual(r.getheader("Content-Range"), "bytes */%d" % len(audio))
        # decisions: CSRF token, a reason, the right state
        r, j = c.json("POST", "/api/items/%s/release" % ida, {"reason": "ok", "version": ver}, csrf=False)
        self.assertEqual(r.status, 403)
        r, j = c.json("POST", "/api/items/%s/release" % ida, {"reason": "ok", "version": ver},
                      headers={"X-CSRF-Token": "f" * 64}, csrf=False)
        self.assertEqual(r.status, 403)
        r, j = c.json("POST", "/api/items/%s/release" % ida, {"reason": "ok", "version": ver},
                      headers={"Origin": "http://evil.example"})
        self.assertEqual((r.status, j["error"]), (403, "cross-origin request"))
        r, j = c.json("POST", "/api/items/%s/release" % ida, {"reason": "  ", "version": ver})
        self.assertEqual(r.status, 400)
        self.assertEqual(d.where()["a.wav"], ["hold"])  # nothing moved yet
        r, j = c.json("POST", "/api/items/%s/false-alarm" % ida, {"finding": 0, "note": "fine"})
        self.assertEqual(r.status, 200, j)
        r, j = c.json("POST", "/api/items/%s/false-alarm" % ida, {"finding": 99})
        self.assertEqual(r.status, 404)
        r, j = c.json("POST", "/api/items/%s/release" % ida,
                      {"reason": "customer asked; wording acceptable",
                       "version": ver})
        self.assertEqual((r.status, j["state"], j["already"]), (200, "released", False))
        self.assertEqual(d.where()["a.wav"], ["released"])
        r, j = c.json("POST", "/api/items/%s/release" % ida, {"reason": "again", "version": ver})
        self.assertEqual((r.status, j["already"]), (200, True))
        r, j = c.json("POST", "/api/items/%s/reject" % ida, {"reason": "no", "version": ver})
        self.assertEqual(r.status, 409)
        idb = d.verdict("b.wav")[1]["id"]
        verb = c.json("GET", "/api/items/" + idb)[1]["version"]
        r, j = c.json("POST", "/api/items/%s/reject" % idb, {"reason": "rude"},
                      headers={"If-Match": '"%s"' % verb})  # the ETag works too
        self.assertEqual((r.status, j["state"]), (200, "rejected"))
        r, j = c.json("GET", "/api/items?state=hold")
        self.assertEqual(j["items"], [])
        self.assertEqual(c.json("GET", "/api/items/20990101T000000Z-00000000")[0].status, 404)
        for trick in ("/api/items/../../etc", "/api/items/%2e%2e%2f%2e%2e%2fetc",
                      "/api/items/" + ida + "/../../../audit", "/api/items/" + ida + "%00",
                      "/api/items/" + ida[:-1] + "/audio", "/api/items/" + ida + "/audio/x",
                      "/api/items/" + ida.replace("-", "/")):
            r, data = c.req("GET", trick)
            self.assertIn(r.status, (404, 405), trick)
            self.assertNotIn(b"RIFF", data, trick)
        # the audit log names the reviewer; the verdict carries the decision
        lines = d.audit_lines()
        rel = [a for a in lines if a["event"] == "release"]
        self.assertEqual([(a["id"], a["by"], a["via"]) for a in rel],
                         [(ida, "alice (console)", "console")])
        self.assertEqual(rel[0]["reason"], "customer asked; wording acceptable")
        fa = [a for a in lines if a["event"] == "false_alarm"]
        self.assertEqual(len(fa), 1)
        self.assertEqual((fa[0]["finding"], fa[0]["note"], fa[0]["by"]),
                         (0, "fine", "alice (console)"))
        self.assertTrue(fa[0]["evidence"] and fa[0]["words"] and fa[0]["category"])
        st, v = d.verdict("a.wav")
        self.assertEqual(v["review"][-1]["by"], "alice (console)")
        self.assertIsNone(d.proc.poll())

    def test_markup_in_names_and_transcripts_is_data(self):
        """A file name with HTML and script comes back as a JSON string
        (application/json, nosniff): the API never serves markup."""
        d = self.daemon()
        name = '<img src=x onerror=alert(1)><script>alert(2)<.script>.wav'
        d.drop(name, "flagged")
        d.wait_done([name])
        c = Client(self.port)
        c.login()
        r, data = c.req("GET", "/api/items")
        self.assertEqual(r.getheader("Content-Type"), "application/json; charset=utf-8")
        self.assertEqual(r.getheader("X-Content-Type-Options"), "nosniff")
        self.assertEqual([i["name"] for i in json.loads(data)["items"]], [name])
        idx = json.loads(data)["items"][0]["id"]
        r, data = c.req("GET", "/api/items/" + idx)
        self.assertEqual(json.loads(data)["name"], name)
        self.assertEqual(r.getheader("Content-Security-Policy"),
                         "default-src 'none'; frame-ancestors 'none'")

    def test_static_files_and_their_csp(self):
        self.daemon()
        c = Client(self.port)
        r, data = c.req("GET", "/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Content-Type"), "text/html; charset=utf-8")
        csp = r.getheader("Content-Security-Policy")
        self.assertIn("script-src 'self'", csp)
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertNotIn("unsafe", csp)
        r, data = c.req("GET", "/console/app.js")
        self.assertEqual((r.status, r.getheader("Content-Type")),
                         (200, "text/javascript; charset=utf-8"))
        for bad in ("/console/../secret.txt", "/console/%2e%2e/secret.txt",
                    "/console/link.txt", "/console/.hidden.js", "/console//etc/passwd",
                    "/console/index.exe", "/console/"):
            r, data = c.req("GET", bad)
            self.assertEqual(r.status, 404, bad)
            self.assertNotIn(b"not for you", data)
        r, data = c.req("DELETE", "/api/items")
        self.assertIn(r.status, (401, 405))
        # a body over the limit is refused, not buffered
        r, data = c.req("POST", "/login", body=b"user=" + b"a" * 70000,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status, 413)

    def test_https_marks_the_cookie_secure(self):
        cert, key = self.tls_pair()
        self.daemon('tls_cert = "%s"; tls_key = "%s";' % (cert, key))
        c = Client(self.port, tls=True)
        r, j = c.login()
        self.assertEqual(r.status, 200, j)
        self.assertIn("; Secure", r.getheader("Set-Cookie"))
        self.assertEqual(c.json("GET", "/api/session")[0].status, 200)
        with self.assertRaises(Exception):  # plain HTTP on the TLS port
            Client(self.port).req("GET", "/healthz")

    def test_check_refuses_bad_http_settings(self):
        d = Daemon(extra="")
        self.d = d
        for bad, why in (('users_file = "relative";', "must be an absolute path"),
                         ('session_minutes = 0;', "session_minutes 0:"),
                         ('tls_cert = "/x.pem";', "tls_cert and tls_key go together"),
                         ('usres_file = "/x";', "usres_file")):
            d.write_config(d.config_text(extra='http = { listen = "127.0.0.1:%d"; %s };' %
                                         (self.port, bad)))
            r = subprocess.run([DAEMON, "--config", d.conf, "--check", "--allow-root"],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 1, bad)
            self.assertIn(why, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
