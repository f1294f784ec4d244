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


if __name__ == "__main__":
    unittest.main(verbosity=2)
