"""Issue 18: least privilege, with real accounts.

The third attack round found that the delivery account vmscreend(8) told ops
to put in the group vmscreen could read held and rejected recordings, the
config with its Slack URL, every reviewer's password hash and the secrets,
and could freeze all screening with `flock -x SPOOL/.lock-review` while
/healthz said 200; and that `sudo vmscreen release` left a verdict the
daemon could not rewrite.  Here the accounts are made with useradd and
groupadd (as root), the daemon runs as the service account with CAP_LEASE,
the producer writes as its own account, and the recipe of vmscreend(8)
ACCOUNTS is run as written (with this test's names and paths).  Then each
account is tried with `runuser -u ACCOUNT -- cat|flock`.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

from daemon_harness import CLI, DAEMON, REPO, Daemon, clip, free_port

SVC, DGRP, DLV, PBX = "vmst18svc", "vmst18-delivery", "vmst18dlv", "vmst18pbx"


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120,
                          errors="replace",
                          **kw)


def as_user(user, *args):
    return run("runuser", "-u", user, "--", *args)


def make_accounts():
    for u in (SVC, DLV, PBX):
        run("userdel", u)
    for g in (DGRP, SVC, DLV, PBX):
        run("groupdel", g)
    for cmd in (["groupadd", "--system", DGRP],
                ["useradd", "--system", "--user-group", "--no-create-home", "-G", DGRP, SVC],
                ["useradd", "--system", "--user-group", "--no-create-home", DLV],
                ["useradd", "--system", "--user-group", "--no-create-home", PBX]):
        r = run(*cmd)
        assert r.returncode == 0, r.stderr


def drop_accounts():
    for u in (SVC, DLV, PBX):
        run("userdel", u)
    for g in (DGRP,):
        run("groupdel", g)


def manual_recipe(top, spool):
    """The lines between the recipe markers of man/vmscreend.8, with this
    test's accounts and paths for the manual's."""
    with open(os.path.join(REPO, "man", "vmscreend.8")) as f:
        text = f.read()
    block = text.split('.\\" recipe-begin')[1].split('.\\" recipe-end')[0]
    lines = [ln for ln in block.splitlines()[1:] if not ln.startswith(".")]
    script = "\n".join(lines).replace("\\-", "-")
    script = script.replace("/var/spool/vmscreen/voicemail", spool)
    script = script.replace("/var/spool/vmscreen", top)
    script = re.sub(r"\bvmscreen-delivery\b", DGRP, script)
    script = re.sub(r"\bdeliver\b", DLV, script)
    script = re.sub(r"\bpbx\b", PBX, script)
    return re.sub(r"\bvmscreen\b", SVC, script)


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
@unittest.skipUnless(os.geteuid() == 0, "needs root to make accounts")
@unittest.skipUnless(shutil.which("useradd") and shutil.which("setfacl") and
                     shutil.which("setpriv") and shutil.which("adduser"),
                     "needs passwd, acl, setpriv, adduser")
class Accounts(unittest.TestCase):
    def setUp(self):
        make_accounts()
        self.tmp = tempfile.mkdtemp(prefix="vmsd-accounts-")
        os.chmod(self.tmp, 0o755)
        self.proc = None
        self.etc = os.path.join(self.tmp, "etc")
        self.top = os.path.join(self.tmp, "spool")
        self.spool = os.path.join(self.top, "voicemail")
        self.logdir = os.path.join(self.tmp, "log")
        self.audit = os.path.join(self.logdir, "audit.jsonl")
        self.conf = os.path.join(self.etc, "vmscreend.conf")
        # as make install and tmpfiles.d leave them
        for d, group, mode in ((self.etc, SVC, 0o750), (self.top, DGRP, 0o750),
                               (self.logdir, SVC, 0o750)):
            os.mkdir(d)
            shutil.chown(d, "root" if d == self.etc else SVC, group)
            os.chmod(d, mode)
        os.mkdir(os.path.join(self.top, "outbox"), 0o750)
        shutil.chown(os.path.join(self.top, "outbox"), SVC, SVC)
        # the manual's secret recipe: install -m 0640 -o root -g vmscreen
        self.secret = os.path.join(self.etc, "hook.secret")
        run("install", "-m", "0640", "-o", "root", "-g", SVC, "/dev/null", self.secret)
        with open(self.secret, "w") as f:
            f.write("whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\n")
        self.users = os.path.join(self.etc, "reviewers")
        self.port = free_port()
        self.write_conf()
        r = run(CLI, "passwd", "--config", self.conf, "alice", input="correct horse\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.log = open(os.path.join(self.tmp, "daemon.log"), "w")

    def write_conf(self, extra=""):
        with open(self.conf, "w") as f:
            f.write('workers = 1;\nsettle_ms = 200;\nrescan_interval_s = 1;\n'
                    'retry_interval_s = 1;\nmin_free_mb = 1;\naudit_log = "%s";\n'
                    'outbox_dir = "%s";\n'
                    'spools = ( { name = "voicemail"; path = "%s"; mode = "gate"; } );\n'
                    'http = { listen = "127.0.0.1:%d"; users_file = "%s"; };\n'
                    'webhooks = ( { name = "chat"; format = "slack"; '
                    'url = "http://127.0.0.1:9/hooks/T000/B000/XXXX"; },\n'
                    '  { name = "std"; url = "http://127.0.0.1:9/"; secret_file = "%s"; } );\n%s'
                    % (self.audit, os.path.join(self.top, "outbox"), self.spool, self.port,
                       self.users, self.secret, extra))
        shutil.chown(self.conf, "root", SVC)
        os.chmod(self.conf, 0o640)

    def tearDown(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        drop_accounts()

    def log_text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def check_as_service(self):
        return run("setpriv", "--reuid=" + SVC, "--regid=" + SVC, "--init-groups", DAEMON,
                   "--config", self.conf, "--check")

    def start(self):
        self.proc = subprocess.Popen(
            ["setpriv", "--reuid=" + SVC, "--regid=" + SVC, "--init-groups",
             "--inh-caps=+lease", "--ambient-caps=+lease", DAEMON, "--config", self.conf],
            stdout=self.log, stderr=subprocess.STDOUT)
        end = time.time() + 120
        while time.time() < end and self.proc.poll() is None:
            if os.path.isdir(os.path.join(self.spool, "rejected")):
                return
            time.sleep(0.2)
        self.fail("the daemon did not make the spool:\n" + self.log_text())

    def produce(self, name, kind):
        src = os.path.join(self.tmp, name)
        shutil.copyfile(clip(kind), src)
        os.chmod(src, 0o644)
        code = ("import os,shutil,sys; os.umask(0o077); d=sys.argv[1];"
                "shutil.copyfile(sys.argv[2], d+'/.t.tmp'); os.rename(d+'/.t.tmp', d+'/'+sys.argv[3])")
        r = as_user(PBX, "/usr/bin/python3", "-c", code, os.path.join(self.spool, "incoming"),
                    src, name)
        self.assertEqual(r.returncode, 0, r.stderr)

    def placed(self, name, state, timeout=120):
        d = os.path.join(self.spool, state)
        end = time.time() + timeout
        while time.time() < end:
            got = [f for f in os.listdir(d) if f.endswith("_" + name)]
            if got:
                return os.path.join(d, got[0])
            time.sleep(0.2)
        self.fail("%s never reached %s/:\n%s" % (name, state, self.log_text()))

    def verdict_of(self, audio):
        return audio.rsplit(".", 1)[0] + ".verdict.json"

    def test_manual_recipe_gives_each_account_only_what_it_needs(self):
        # issue 18: the secret recipe of the manual used to be refused
        r = self.check_as_service()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.start()
        r = subprocess.run(["bash", "-euc", manual_recipe(self.top, self.spool)],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.produce("clean.wav", "clean")
        self.produce("held.wav", "flagged")
        self.produce("nope.wav", "flagged")
        self.produce("later.wav", "flagged")
        released = self.placed("clean.wav", "released")
        held = self.placed("held.wav", "hold")
        nope = self.placed("nope.wav", "hold")
        later = self.placed("later.wav", "hold")
        # root decides (sudo vmscreen reject|release): the files it writes stay the service's
        rid = os.path.basename(nope).split("_")[0]
        r = run(CLI, "reject", "--config", self.conf, rid, "--reason", "abusive")
        self.assertEqual(r.returncode, 0, r.stderr)
        lid = os.path.basename(later).split("_")[0]
        r = run(CLI, "release", "--config", self.conf, lid, "--reason", "fine on listening")
        self.assertEqual(r.returncode, 0, r.stderr)
        rejected = self.placed("nope.wav", "rejected")
        released2 = self.placed("later.wav", "released")
        svc_uid = int(run("id", "-u", SVC).stdout)
        for f in (self.verdict_of(released2), self.verdict_of(rejected), self.audit):
            self.assertEqual(os.stat(f).st_uid, svc_uid, "%s is root's after the CLI" % f)
        # delivery: reads and lists released/, nothing else
        for f in (released, self.verdict_of(released), released2, self.verdict_of(released2)):
            r = as_user(DLV, "cat", f)
            self.assertEqual(r.returncode, 0, "delivery cannot read %s: %s" % (f, r.stderr))
        self.assertEqual(as_user(DLV, "ls", os.path.join(self.spool, "released")).returncode, 0)
        for f in (held, self.verdict_of(held), rejected, self.verdict_of(rejected), self.conf,
                  self.users, self.secret, self.audit):
            r = as_user(DLV, "cat", f)
            self.assertNotEqual(r.returncode, 0, "delivery can read %s" % f)
        self.assertNotEqual(as_user(DLV, "touch", os.path.join(self.spool, "released",
                                                                "planted.wav")).returncode, 0)
        # nobody but the service can take a lock
        locks = [os.path.join(self.spool, ".lock", n) for n in ("review", "daemon")]
        locks.append(os.path.join(self.logdir, ".audit.jsonl.lock"))
        for lk in locks + [self.audit]:
            self.assertTrue(os.path.exists(lk), lk)
            for who in (DLV, PBX):
                r = as_user(who, "flock", "-n", "-x", lk, "true")
                self.assertNotEqual(r.returncode, 0, "%s can lock %s" % (who, lk))
        # the producer reads nothing it did not write
        for f in (released, held, self.conf, self.users):
            self.assertNotEqual(as_user(PBX, "cat", f).returncode, 0, "pbx reads %s" % f)
        self.proc.terminate()
        self.proc.wait(timeout=60)

        # the recipe of earlier versions (delivery in the service's group) is refused
        r = run("usermod", "-a", "-G", SVC, DLV)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.check_as_service()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("%s is in that group" % DLV, r.stderr)
        run("gpasswd", "-d", DLV, SVC)
        self.assertEqual(self.check_as_service().returncode, 0)

    def test_check_refuses_every_secret_another_account_can_read(self):
        self.assertEqual(run("adduser", DLV, DGRP).returncode, 0)  # the recipe's first line
        pw = os.path.join(self.etc, "redis.pass")
        run("install", "-m", "0640", "-o", "root", "-g", SVC, "/dev/null", pw)
        self.write_conf('cluster = { redis = "127.0.0.1:9"; node = "n1"; '
                        'password_file = "%s"; };\n' % pw)
        os.makedirs(self.spool)  # --check looks at an existing spool too
        shutil.chown(self.spool, SVC, SVC)
        os.chmod(self.spool, 0o750)
        self.assertEqual(self.check_as_service().returncode, 0, self.check_as_service().stderr)
        # each secret given to the delivery group in turn
        for f, what in ((self.secret, "secret_file"), (pw, "cluster.password_file"),
                        (self.users, "http.users_file"),
                        (self.conf, "its Slack/Teams URL")):
            shutil.chown(f, "root", DGRP)
            os.chmod(f, 0o640)
            r = self.check_as_service()
            self.assertEqual(r.returncode, 1, "%s readable by %s passed" % (f, DLV))
            self.assertIn(what, r.stderr)
            self.assertIn(DLV, r.stderr)
            shutil.chown(f, "root", SVC)
            self.assertEqual(self.check_as_service().returncode, 0)
        # and an ACL that names the delivery account
        run("setfacl", "-m", "u:%s:r" % DLV, self.secret)
        r = self.check_as_service()
        self.assertEqual(r.returncode, 1)
        self.assertIn("access ACL", r.stderr)


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
class LockStall(unittest.TestCase):
    """A lock held by another process (root's, or an old CLI stopped with
    ^Z): /healthz answered 200 while every placement waited for it."""

    def test_healthz_names_a_lock_held_too_long(self):
        port = free_port()
        d = Daemon(extra='http = { listen = "127.0.0.1:%d"; };\n' % port)
        holder = None
        try:
            d.start()
            new, old = (os.path.join(d.spool_path(), ".lock", "review"),
                        os.path.join(d.spool_path(), ".lock-review"))
            lock = new if os.path.isdir(os.path.dirname(new)) else old
            holder = subprocess.Popen(["flock", "-x", lock, "sleep", "600"],
                                      start_new_session=True)
            time.sleep(0.5)
            d.drop("x.wav")

            def health():
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port,
                                                timeout=5) as r:
                        return r.status, r.read().decode()
                except urllib.error.HTTPError as e:
                    return e.code, e.read().decode()
            end = time.time() + 40
            st = health()
            while time.time() < end and st[0] == 200:
                time.sleep(1)
                st = health()
            self.assertEqual(st[0], 503, "healthz stayed 200 while placement waited")
            self.assertIn("lock %s: waited for" % lock, st[1])
            end = time.time() + 20
            while time.time() < end and "waited for" not in d.log_text():
                time.sleep(0.5)
            self.assertIn("lock %s: waited for" % lock, d.log_text())
            os.killpg(holder.pid, signal.SIGKILL)
            holder.wait()
            holder = None
            self.assertIn("x.wav", d.wait_done(["x.wav"]))
            end = time.time() + 20
            while time.time() < end and health()[0] != 200:
                time.sleep(0.5)
            self.assertEqual(health(), (200, "ok\n"))
            self.assertEqual(d.stop(), 0)
        finally:
            if holder is not None:
                os.killpg(holder.pid, signal.SIGKILL)
                holder.wait()
            d.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
