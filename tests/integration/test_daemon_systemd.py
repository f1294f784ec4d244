#!/usr/bin/env python3
"""`make install` into a temporary prefix, then check what systemd will see:
`systemd-analyze verify` on the installed unit (its ExecStart= points at the
installed binary, which must exist), sysusers.d and tmpfiles.d applied to a
temporary root, the installed example config accepted by `vmscreend --check`
once its paths point into the temporary tree.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_harness import BIN_DIR, DAEMON, REPO  # noqa: E402


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
@unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze not installed")
class SystemdInstall(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vmsd-install-")
        cls.prefix = os.path.join(cls.tmp, "usr")
        cls.etc = os.path.join(cls.tmp, "etc")
        build = os.path.relpath(BIN_DIR, REPO)
        r = subprocess.run(["make", "-s", "install", "BUILD=" + build, "PREFIX=" + cls.prefix,
                            "SYSCONFDIR=" + cls.etc], cwd=REPO, capture_output=True, text=True,
                           timeout=600)
        cls.install = r

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_install_layout(self):
        self.assertEqual(self.install.returncode, 0, self.install.stderr)
        for p in ("sbin/vmscreend", "bin/vmscreen", "lib/systemd/system/vmscreend.service",
                  "lib/sysusers.d/vmscreen.conf", "lib/tmpfiles.d/vmscreen.conf",
                  "share/man/man8/vmscreend.8", "share/man/man1/vmscreen.1",
                  "share/man/man5/vmscreend.conf.5"):
            self.assertTrue(os.path.exists(os.path.join(self.prefix, p)), p)
        conf = os.path.join(self.etc, "vmscreen", "vmscreend.conf")
        self.assertTrue(os.path.exists(conf))
        self.assertEqual(os.stat(conf).st_mode & 0o777, 0o640)

    def test_unit_verifies(self):
        self.assertEqual(self.install.returncode, 0, self.install.stderr)
        unit = os.path.join(self.prefix, "lib/systemd/system/vmscreend.service")
        with open(unit) as f:
            text = f.read()
        self.assertIn("ExecStart=%s/sbin/vmscreend --config %s/vmscreen/vmscreend.conf" %
                      (self.prefix, self.etc), text)
        for key in ("Type=notify", "User=vmscreen", "NoNewPrivileges=yes",
                    "ProtectSystem=strict", "ReadWritePaths=", "PrivateTmp=yes",
                    "ProtectHome=yes", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                    "SystemCallFilter=@system-service", "WatchdogSec="):
            self.assertIn(key, text)
        env = dict(os.environ, MANPATH=os.path.join(self.prefix, "share/man"))
        r = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True,
                           env=env, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("vmscreend.service:", r.stderr)  # no warnings about our unit

    def test_sysusers_and_tmpfiles_apply(self):
        self.assertEqual(self.install.returncode, 0, self.install.stderr)
        root = os.path.join(self.tmp, "root")
        os.makedirs(os.path.join(root, "etc"))
        for f in ("passwd", "group"):
            open(os.path.join(root, "etc", f), "w").close()
        if shutil.which("systemd-sysusers") is None:
            self.skipTest("systemd-sysusers not installed")
        r = subprocess.run(["systemd-sysusers", "--root=" + root,
                            os.path.join(self.prefix, "lib/sysusers.d/vmscreen.conf")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(root, "etc", "passwd")) as f:
            self.assertIn("vmscreen:", f.read())
        r = subprocess.run(["systemd-tmpfiles", "--root=" + root, "--create",
                            os.path.join(self.prefix, "lib/tmpfiles.d/vmscreen.conf")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        for d in ("var/spool/vmscreen", "var/log/vmscreen", "var/lib/vmscreen"):
            st = os.stat(os.path.join(root, d))
            self.assertEqual(st.st_mode & 0o777, 0o750, d)

    def test_example_config_is_valid(self):
        self.assertEqual(self.install.returncode, 0, self.install.stderr)
        with open(os.path.join(self.etc, "vmscreen", "vmscreend.conf")) as f:
            text = f.read()
        text = text.replace('"/var/', '"%s/var/' % self.tmp)
        for d in ("var/spool/vmscreen", "var/log/vmscreen", "var/lib/vmscreen"):
            os.makedirs(os.path.join(self.tmp, d), exist_ok=True)
        conf = os.path.join(self.tmp, "check.conf")
        with open(conf, "w") as f:
            f.write(text)
        cmd = [DAEMON, "--config", conf, "--check"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("OK (2 spool(s), 2 worker(s))", r.stdout)


def as_user(name, groups=()):
    import pwd
    pw = pwd.getpwnam(name)

    def drop():
        os.setgroups(list(groups))
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    return drop


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
@unittest.skipUnless(os.geteuid() == 0, "needs root to install and to be other users")
@unittest.skipUnless(shutil.which("setfacl") and shutil.which("setpriv"), "needs acl, setpriv")
class InstallThatStarts(unittest.TestCase):
    """issue 10: `make install` left the config root:root 0640 (the service
    user could not read it), and the man page's producer recipe left every
    recording unreadable by the daemon.  Here the service user is Debian's
    `daemon` account, the producer `nobody`, the delivery system `mail`, and
    the recipe is the one in vmscreend(8), applied as written."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vmsd-install-")
        os.chmod(self.tmp, 0o755)
        self.prefix = os.path.join(self.tmp, "usr")
        self.etc = os.path.join(self.tmp, "etc")
        self.proc = None
        self.log = open(os.path.join(self.tmp, "daemon.log"), "w")

    def log_text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def tearDown(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_installed_config_readable_and_the_producer_recipe_works(self):
        build = os.path.relpath(BIN_DIR, REPO)
        r = subprocess.run(["make", "-s", "install", "BUILD=" + build, "PREFIX=" + self.prefix,
                            "SYSCONFDIR=" + self.etc, "SERVICE_GROUP=daemon"], cwd=REPO,
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr)
        conf = os.path.join(self.etc, "vmscreen", "vmscreend.conf")
        st = os.stat(conf)
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o777), (0, 1, 0o640))
        var = os.path.join(self.tmp, "var")
        for d in ("spool/vmscreen", "spool/vmscreen/outbox", "log/vmscreen", "lib/vmscreen"):
            os.makedirs(os.path.join(var, d), 0o750)  # as tmpfiles.d makes them
            os.chown(os.path.join(var, d), 1, 1)
            os.chmod(os.path.join(var, d), 0o750)
        os.chmod(var, 0o755)
        for d in ("spool", "log", "lib"):
            os.chmod(os.path.join(var, d), 0o755)
        with open(conf) as f:
            text = f.read().replace('"/var/', '"%s/' % var)
        text = text.replace("workers = 2;", "workers = 1;\nsettle_ms = 200;\nrescan_interval_s = 1;")
        text = text.replace("screening = {", 'screening = {\n  models_dir = "%s";' %
                            os.path.join(self.prefix, "share/vmscreen/models"))
        with open(conf, "w") as f:
            f.write(text)  # still root:daemon 0640: the service user reads it
        self.proc = subprocess.Popen(
            ["setpriv", "--reuid=daemon", "--regid=daemon", "--clear-groups",
             "--inh-caps=+lease", "--ambient-caps=+lease", DAEMON, "--config", conf],
            stdout=self.log, stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k != "VMSCREEN_MODELS"})
        S = os.path.join(var, "spool/vmscreen/voicemail")
        inc, rel = os.path.join(S, "incoming"), os.path.join(S, "released")
        end = time.time() + 120
        while not os.path.isdir(rel) and time.time() < end and self.proc.poll() is None:
            time.sleep(0.2)
        self.assertIsNone(self.proc.poll(), self.log_text())
        top = os.path.join(var, "spool/vmscreen")
        recipe = [  # vmscreend(8), DEPLOYMENT, with pbx=nobody, deliver=mail, vmscreen=daemon
            ["setfacl", "-m", "u:nobody:x", top, S],
            ["setfacl", "-m", "u:nobody:rwx", inc],
            ["setfacl", "-d", "-m", "u:daemon:r", inc],
        ]  # and `adduser mail daemon`: the test gives mail the group for its processes
        for cmd in recipe:
            subprocess.run(cmd, check=True)
        clip_path = os.path.join(self.tmp, "clip.wav")
        subprocess.run(["flite", "-voice", "slt", "-t", "Your order ships Monday. Bye.", "-o",
                        clip_path], check=True)
        os.chmod(clip_path, 0o644)
        code = ("import os,shutil,sys; os.umask(0o077); d=sys.argv[1];"
                "shutil.copyfile(sys.argv[2], d+'/.m.tmp'); os.rename(d+'/.m.tmp', d+'/m.wav')")
        subprocess.run(["/usr/bin/python3", "-c", code, inc, clip_path], check=True,
                       preexec_fn=as_user("nobody"))
        end = time.time() + 120
        got = []
        while time.time() < end and not got:
            got = [f for f in os.listdir(rel) if f.endswith("_m.wav")]
            time.sleep(0.2)
        self.assertTrue(got, "%s %s\n%s" % (os.listdir(S + "/hold"), os.listdir(inc),
                                              self.log_text()))
        path = os.path.join(rel, got[0])
        self.assertEqual(os.stat(path).st_uid, 1)  # the daemon's own copy
        # delivery reads it; nobody else writes where screened audio lies
        check = ("import sys\ntry:\n  open(sys.argv[1], %r)\n  print('yes')\n"
                 "except PermissionError:\n  print('no')")
        def can(user, p, mode):
            groups = [1] if user == "mail" else []  # deliver is in the service group
            out = subprocess.run(["/usr/bin/python3", "-c", check % mode, p],
                                 capture_output=True, text=True, preexec_fn=as_user(user, groups))
            return out.stdout.strip()
        self.assertEqual(can("mail", path, "rb"), "yes")
        self.assertEqual(can("mail", os.path.join(rel, "planted.wav"), "wb"), "no")
        self.assertEqual(can("nobody", os.path.join(rel, "planted.wav"), "wb"), "no")
        self.assertEqual(can("nobody", path, "rb"), "no")
        self.assertEqual(can("nobody", os.path.join(S, "hold", "x.wav"), "wb"), "no")


if __name__ == "__main__":
    unittest.main(verbosity=2)
