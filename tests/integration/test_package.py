#!/usr/bin/env python3
"""issue 12: the Debian package.  `make deb` builds it (from `git archive HEAD`
in build/deb/: what is committed is what is packaged), then:

- lintian reports no error (its warnings are printed);
- the .deb holds what it must, with the right modes, and its control data
  says what dpkg needs: the conffiles, Depends, and a postinst that makes the
  user (systemd-sysusers) before the directories (systemd-tmpfiles) before
  it enables and starts vmscreend;
- `dpkg -x` into a clean root: the unit's paths, the logrotate file, and
  `vmscreen --version` and `check --text` run from there on the packaged
  models;
- `dpkg --root` into a clean root, maintainer scripts and all
  (--force-script-chrootless, so they run with DPKG_ROOT): the user, the
  directories and the config's group are made there, the unit is enabled; a
  reinstall keeps a changed conffile; a purge takes the package's files and
  the enable link and leaves the data;
- as root on a machine without the package, `dpkg -i` for real: vmscreend
  started as its unit says (service user, CAP_LEASE) screens a recording
  with the installed models, the real logrotate file rotates the audit log
  twice and `vmscreen audit verify` finds the chain intact across
  audit.jsonl.2.gz, .1 and the new file; then the package is purged and
  everything it made is removed (VMS_PACKAGE_INSTALL=0 skips this part).

Runs once, in `make check`'s rel flavour (alone: `python3
tests/integration/test_package.py -v`); needs dpkg-buildpackage, debhelper,
fakeroot, lintian and git (tests/deps.sh installs them).  About 70 s on 2
cores, 50 of them `make deb`.
"""
import gzip
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_harness import REPO, clip, cleanup_clips  # noqa: E402
import test_accounts  # noqa: E402
from test_accounts import manual_recipe  # noqa: E402

DELIVER, PBX = "vmsdeliver18", "vmspbx18"  # the manual's deliver and pbx

FLAVOUR = os.environ.get("VMS_FLAVOUR", "rel")
TOOLS = ("dpkg-buildpackage", "dh", "fakeroot", "lintian", "git", "dpkg-parsechangelog")
MISSING = [t for t in TOOLS if shutil.which(t) is None]
DEB_DIR = os.path.join(REPO, "build", "deb")
BUILD = {}


def version():
    return subprocess.run(["dpkg-parsechangelog", "-l", os.path.join(REPO, "debian/changelog"),
                           "-SVersion"], capture_output=True, text=True).stdout.strip()


def arch():
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                          text=True).stdout.strip()


def setUpModule():
    # .git is a file in a git worktree
    if FLAVOUR != "rel" or MISSING or not os.path.exists(os.path.join(REPO, ".git")):
        return
    t0 = time.time()
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    r = subprocess.run(["make", "--no-print-directory", "deb"], cwd=REPO, capture_output=True,
                       text=True, timeout=1500, env=env)  # no make check variables in it
    BUILD["seconds"] = time.time() - t0
    BUILD["result"] = r
    BUILD["deb"] = os.path.join(DEB_DIR, "vmscreen_%s_%s.deb" % (version(), arch()))
    BUILD["changes"] = os.path.join(DEB_DIR, "vmscreen_%s_%s.changes" % (version(), arch()))
    print("\n  make deb: %.0f s, exit %d" % (BUILD["seconds"], r.returncode), file=sys.stderr)


def tearDownModule():
    cleanup_clips()


def built(test):
    r = BUILD.get("result")
    test.assertIsNotNone(r, "make deb did not run")
    test.assertEqual(r.returncode, 0, (r.stdout + r.stderr)[-6000:])
    test.assertTrue(os.path.exists(BUILD["deb"]), BUILD["deb"])
    return BUILD["deb"]


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 300)
    return subprocess.run(cmd, **kw)


SKIP = unittest.skipIf(FLAVOUR != "rel", "package is built once, in the rel flavour")
NEEDS = unittest.skipIf(MISSING, "not installed: " + " ".join(MISSING))

# What the package must hold: path -> mode (file type bits included in the check).
EXPECTED = {
    "./usr/bin/vmscreen": "-rwxr-xr-x",
    "./usr/sbin/vmscreend": "-rwxr-xr-x",
    "./etc/vmscreen/": "drwxr-x---",
    "./etc/vmscreen/vmscreend.conf": "-rw-r-----",
    "./etc/logrotate.d/vmscreen": "-rw-r--r--",
    "./lib/systemd/system/vmscreend.service": "-rw-r--r--",
    "./usr/lib/sysusers.d/vmscreen.conf": "-rw-r--r--",
    "./usr/lib/tmpfiles.d/vmscreen.conf": "-rw-r--r--",
    "./usr/share/man/man1/vmscreen.1.gz": "-rw-r--r--",
    "./usr/share/man/man5/vmscreend.conf.5.gz": "-rw-r--r--",
    "./usr/share/man/man8/vmscreend.8.gz": "-rw-r--r--",
    "./usr/share/doc/vmscreen/copyright": "-rw-r--r--",
    "./usr/share/doc/vmscreen/changelog.gz": "-rw-r--r--",
    "./usr/share/doc/vmscreen/CHANGELOG.md.gz": "-rw-r--r--",
    "./usr/share/doc/vmscreen/README.md.gz": "-rw-r--r--",
    "./usr/share/doc/vmscreen/webhooks.md.gz": "-rw-r--r--",
    "./usr/share/doc/vmscreen/http.md.gz": "-rw-r--r--",
    "./usr/share/vmscreen/models/signoffs.txt": "-rw-r--r--",
    "./usr/share/vmscreen/models/decoder.conf": "-rw-r--r--",
    "./usr/share/vmscreen/models/phrasing.ftz": "-rw-r--r--",
    "./usr/share/vmscreen/models/agent.lm.bin": "-rw-r--r--",
    "./usr/share/vmscreen/models/rules/profanity.rules": "-rw-r--r--",
}


def contents(deb):
    """{path: (mode string, owner/group)} of the data archive."""
    out = {}
    for line in run(["dpkg-deb", "-c", deb]).stdout.splitlines():
        f = line.split(None, 5)
        path = f[5].split(" -> ")[0]
        out[path] = (f[0], f[1])
    return out


@SKIP
@NEEDS
class Package(unittest.TestCase):
    def test_lintian_reports_no_error(self):
        built(self)
        r = run(["lintian", "--fail-on", "error", "-I", "--pedantic", BUILD["changes"]],
                timeout=600)
        tags = [l for l in r.stdout.splitlines() if re.match(r"^[EWIPX]: ", l)]
        print("\n  lintian: %d tags" % len(tags), file=sys.stderr)
        for t in tags:
            print("    " + t, file=sys.stderr)
        self.assertEqual([t for t in tags if t.startswith("E: ")], [])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_files_and_modes(self):
        c = contents(built(self))
        for path, mode in EXPECTED.items():
            self.assertIn(path, c)
            self.assertEqual(c[path][0], mode, path)
        owners = {v[1] for v in c.values()}
        self.assertEqual(owners, {"root/root"})
        self.assertFalse([p for p in c if p.startswith("./usr/local")])
        self.assertFalse([p for p in c if "/tests/" in p or p.endswith(".o")])
        # the man page cites webhooks.md: installed; LICENSE is the copyright file
        self.assertNotIn("./usr/share/doc/vmscreen/LICENSE", c)
        console = os.path.join(REPO, "daemon", "console", "index.html")
        head_has_console = run(["git", "cat-file", "-e", "HEAD:daemon/console/index.html"],
                               cwd=REPO).returncode == 0
        if head_has_console:
            self.assertIn("./usr/share/vmscreen/console/index.html", c)
        elif os.path.exists(console):
            print("\n  (console not committed yet: not in the package)", file=sys.stderr)

    def test_control(self):
        deb = built(self)
        ctl = tempfile.mkdtemp(prefix="vms-ctl-")
        self.addCleanup(shutil.rmtree, ctl, True)
        run(["dpkg-deb", "-e", deb, ctl], check=True)
        with open(os.path.join(ctl, "conffiles")) as f:
            self.assertEqual(sorted(f.read().split()),
                             ["/etc/logrotate.d/vmscreen", "/etc/vmscreen/vmscreend.conf"])
        with open(os.path.join(ctl, "control")) as f:
            control = f.read()
        depends = re.search(r"^Depends: (.*)$", control, re.M).group(1)
        for dep in ("pocketsphinx-en-us", "systemd | systemd-standalone-sysusers",
                    "libpocketsphinx3", "libsndfile1"):
            self.assertIn(dep, depends)
        with open(os.path.join(ctl, "postinst")) as f:
            post = f.read()
        order = [post.find(s) for s in ("systemd-sysusers", "systemd-tmpfiles",
                                        "deb-systemd-helper enable", "deb-systemd-invoke")]
        self.assertNotIn(-1, order, post)
        self.assertEqual(order, sorted(order), "user, then directories, then the service")
        self.assertIn("vmscreen.conf", post)
        with open(os.path.join(ctl, "prerm")) as f:
            self.assertIn("deb-systemd-invoke stop 'vmscreend.service'", f.read())


@SKIP
@NEEDS
class ExtractedRoot(unittest.TestCase):
    """dpkg -x: the files alone, no maintainer scripts."""

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="vms-pkg-x-")
        if BUILD.get("result") is not None and BUILD["result"].returncode == 0:
            run(["dpkg-deb", "-x", BUILD["deb"], cls.root], check=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def p(self, rel):
        return os.path.join(self.root, rel)

    def test_unit_points_at_the_packaged_files(self):
        built(self)
        with open(self.p("lib/systemd/system/vmscreend.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/sbin/vmscreend --config /etc/vmscreen/vmscreend.conf\n",
                      unit)
        self.assertIn("ExecStartPre=/usr/sbin/vmscreend --config /etc/vmscreen/vmscreend.conf "
                      "--check\n", unit)
        self.assertIn("User=vmscreen", unit)
        self.assertIn("WantedBy=multi-user.target", unit)
        self.assertNotIn("@SBINDIR@", unit)
        self.assertNotIn("@SYSCONFDIR@", unit)
        with open(self.p("usr/lib/tmpfiles.d/vmscreen.conf")) as f:
            tmpf = f.read()
        self.assertIn("z /etc/vmscreen/vmscreend.conf  0640 root vmscreen", tmpf)

    def test_logrotate_keeps_the_chain(self):
        built(self)
        with open(self.p("etc/logrotate.d/vmscreen")) as f:
            text = f.read()
        body = [l.split("#")[0].strip() for l in text.splitlines()]
        body = [l for l in body if l]
        self.assertEqual(body[0], "/var/log/vmscreen/audit.jsonl {")
        for d in ("weekly", "rotate 52", "missingok", "notifempty", "delaycompress", "nodateext",
                  "create 0640 vmscreen vmscreen", "nocopytruncate"):
            self.assertIn(d, body)
        for bad in ("copytruncate", "dateext", "nodelaycompress", "olddir"):
            self.assertNotIn(bad, body)

    def test_binaries_run_from_the_root(self):
        built(self)
        r = run([self.p("usr/bin/vmscreen"), "--version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "vmscreen " + version())
        models = self.p("usr/share/vmscreen/models")
        env = dict(os.environ, VMSCREEN_MODELS=models)
        r = run([self.p("usr/bin/vmscreen"), "check", "--text", "-"], env=env,
                input="shut up and listen you idiot\nyour order ships on monday\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)  # one held
        lines = [l for l in r.stdout.splitlines() if l.startswith("-:")]
        self.assertEqual(len(lines), 2, r.stdout)
        self.assertIn("HOLD", lines[0])
        self.assertNotIn("HOLD", lines[1])
        r = run([self.p("usr/sbin/vmscreend"), "--version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(version(), r.stdout)


def makefile_pkgs():
    """The pkg-config modules the Makefile builds against."""
    with open(os.path.join(REPO, "Makefile")) as f:
        text = f.read()
    mods = re.search(r"^PKGS\s*:=(.*)$", text, re.M).group(1).split()
    return mods + re.findall(r"pkg-config --libs ([a-z][\w.+-]*) 2>", text)


@SKIP
@unittest.skipUnless(shutil.which("pkg-config") and shutil.which("dpkg"), "pkg-config, dpkg")
class BuildDepends(unittest.TestCase):
    def test_every_library_the_makefile_uses_is_a_build_dependency(self):
        with open(os.path.join(REPO, "debian", "control")) as f:
            control = f.read()
        field = re.search(r"^Build-Depends:(.*?)^\S", control, re.M | re.S).group(1)
        deps = {re.split(r"[\s(<\[]", d.strip())[0] for d in field.split(",") if d.strip()}
        pcs = {}
        for mod in sorted(set(makefile_pkgs())):
            r = run(["pkg-config", "--path", mod])
            if r.returncode != 0:
                self.fail("pkg-config knows no %s here (tests/deps.sh)" % mod)
            pcs[os.path.realpath(r.stdout.strip())] = mod
        r = run(["dpkg", "-S"] + sorted(pcs))  # one call: dpkg -S reads the whole database
        owners = {}
        for line in r.stdout.splitlines():
            pkg, path = line.split(": ", 1)
            owners[path] = pkg.split(":")[0]  # libfoo-dev:amd64
        for pc, mod in sorted(pcs.items()):
            self.assertIn(owners.get(pc), deps, "%s (%s): add %s to debian/control's "
                          "Build-Depends" % (mod, pc, owners.get(pc)))


@SKIP
@unittest.skipUnless(os.path.exists(os.path.join(REPO, "build", "rel", "vmscreend")),
                     "vmscreend not built")
class MakeUninstall(unittest.TestCase):
    def test_uninstall_removes_what_install_installed_but_config_and_data(self):
        tmp = tempfile.mkdtemp(prefix="vms-uninstall-")
        self.addCleanup(shutil.rmtree, tmp, True)
        args = ["DESTDIR=" + tmp, "PREFIX=/usr", "SYSCONFDIR=/etc", "BUILD=build/rel"]
        r = run(["make", "-s", "install"] + args, cwd=REPO, timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(os.path.join(tmp, "usr/share/doc/vmscreen/webhooks.md")))
        os.makedirs(os.path.join(tmp, "var/log/vmscreen"))
        open(os.path.join(tmp, "var/log/vmscreen/audit.jsonl"), "w").close()
        r = run(["make", "-s", "uninstall"] + args, cwd=REPO, timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr)
        left = sorted(os.path.relpath(os.path.join(d, f), tmp)
                      for d, _, fs in os.walk(tmp) for f in fs)
        self.assertEqual(left, ["etc/vmscreen/vmscreend.conf", "var/log/vmscreen/audit.jsonl"])


def dpkg_root_env():
    # dpkg runs maintainer scripts with this PATH; the host's tools do the work
    return dict(os.environ, PATH="/usr/sbin:/usr/bin:/sbin:/bin")


@SKIP
@NEEDS
@unittest.skipUnless(os.geteuid() == 0, "dpkg --root needs root")
@unittest.skipUnless(shutil.which("systemd-sysusers") and shutil.which("systemd-tmpfiles"),
                     "systemd-sysusers and systemd-tmpfiles needed")
class CleanRoot(unittest.TestCase):
    """dpkg --root DIR -i: the maintainer scripts run with DPKG_ROOT=DIR."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="vms-pkg-root-")
        os.chmod(self.root, 0o755)
        for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"):
            os.makedirs(os.path.join(self.root, d))
        for f in ("var/lib/dpkg/status", "var/lib/dpkg/available", "etc/passwd", "etc/group"):
            open(os.path.join(self.root, f), "w").close()

    def tearDown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def dpkg(self, *args):
        return run(["dpkg", "--root=" + self.root, "--force-script-chrootless",
                    "--force-depends", "--log=/dev/null"] + list(args), env=dpkg_root_env())

    def p(self, rel):
        return os.path.join(self.root, rel)

    def ids(self):
        with open(self.p("etc/passwd")) as f:
            pw = [l.split(":") for l in f if l.startswith("vmscreen:")]
        with open(self.p("etc/group")) as f:
            gr = [l.split(":") for l in f if l.startswith("vmscreen:")]
        self.assertEqual(len(pw), 1, "no vmscreen user in the root")
        self.assertEqual(len(gr), 1, "no vmscreen group in the root")
        self.assertEqual(pw[0][5], "/var/lib/vmscreen")
        return int(pw[0][2]), int(gr[0][2])

    def test_install_reinstall_purge(self):
        deb = built(self)
        r = self.dpkg("-i", deb)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        uid, gid = self.ids()
        st = os.stat(self.p("etc/vmscreen"))
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777), (0, gid, 0o750))
        st = os.stat(self.p("etc/vmscreen/vmscreend.conf"))
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777), (0, gid, 0o640))
        with open(self.p("etc/group")) as f:  # issue 18: the delivery group, vmscreen in it
            dg = [l.strip().split(":") for l in f if l.startswith("vmscreen-delivery:")]
        self.assertEqual(len(dg), 1, "no vmscreen-delivery group in the root")
        self.assertIn("vmscreen", dg[0][3].split(","))
        for d in ("var/spool/vmscreen", "var/spool/vmscreen/outbox", "var/log/vmscreen",
                  "var/lib/vmscreen"):
            st = os.stat(self.p(d))
            want = int(dg[0][2]) if d == "var/spool/vmscreen" else gid  # delivery enters
            self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777), (uid, want, 0o750), d)
        link = self.p("etc/systemd/system/multi-user.target.wants/vmscreend.service")
        self.assertTrue(os.path.islink(link), "vmscreend.service not enabled")
        self.assertEqual(os.readlink(link), "/lib/systemd/system/vmscreend.service")
        r = run(["dpkg", "--root=" + self.root, "-s", "vmscreen"])
        self.assertIn("Status: install ok installed", r.stdout)

        # an upgrade (here: the same version again) keeps the admin's config
        conf = self.p("etc/vmscreen/vmscreend.conf")
        with open(conf, "a") as f:
            f.write("# changed by the admin\n")
        r = self.dpkg("-i", deb)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(conf) as f:
            self.assertIn("# changed by the admin", f.read())
        st = os.stat(conf)
        self.assertEqual((st.st_gid, st.st_mode & 0o7777), (gid, 0o640))

        # data written while installed stays; the package's files go
        with open(self.p("var/log/vmscreen/audit.jsonl"), "w") as f:
            f.write("{}\n")
        r = self.dpkg("--purge", "vmscreen")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for gone in ("usr/bin/vmscreen", "usr/sbin/vmscreend", "etc/vmscreen",
                     "etc/logrotate.d/vmscreen", "lib/systemd/system/vmscreend.service",
                     "usr/share/vmscreen"):
            self.assertFalse(os.path.lexists(self.p(gone)), gone)
        self.assertFalse(os.path.lexists(link), "enable link left after purge")
        self.assertTrue(os.path.exists(self.p("var/log/vmscreen/audit.jsonl")))


def installed(pkg):
    r = run(["dpkg-query", "-W", "-f=${Status}", pkg])
    return r.returncode == 0 and "install ok installed" in r.stdout


HOST_PATHS = ("/etc/vmscreen", "/usr/share/vmscreen", "/var/spool/vmscreen",
              "/var/log/vmscreen", "/var/lib/vmscreen", "/usr/sbin/vmscreend", "/usr/bin/vmscreen")


@SKIP
@NEEDS
@unittest.skipUnless(os.geteuid() == 0, "needs root to install a package")
@unittest.skipIf(os.environ.get("VMS_PACKAGE_INSTALL") == "0", "VMS_PACKAGE_INSTALL=0")
@unittest.skipUnless(shutil.which("logrotate") and shutil.which("setpriv")
                     and shutil.which("flite"), "needs logrotate, setpriv and flite")
class RealInstall(unittest.TestCase):
    """dpkg -i on this machine, the service run as its unit says, purge."""

    def setUp(self):
        if installed("vmscreen") or any(os.path.lexists(p) for p in HOST_PATHS):
            self.skipTest("vmscreen is installed here (package or make install): left alone")
        if not installed("pocketsphinx-en-us"):
            self.skipTest("pocketsphinx-en-us not installed")
        self.had_user = run(["getent", "passwd", "vmscreen"]).returncode == 0
        self.had_group = run(["getent", "group", "vmscreen"]).returncode == 0
        self.had_dgroup = run(["getent", "group", "vmscreen-delivery"]).returncode == 0
        self.proc = None
        self.tmp = tempfile.mkdtemp(prefix="vms-pkg-real-")
        self.addCleanup(self.cleanup)

    def cleanup(self):
        self.stop()
        if installed("vmscreen") or os.path.exists("/var/lib/dpkg/info/vmscreen.list"):
            r = self.dpkg("--purge", "vmscreen")
            if r.returncode != 0:
                print(r.stdout + r.stderr, file=sys.stderr)
        for d in ("/var/spool/vmscreen", "/var/log/vmscreen", "/var/lib/vmscreen"):
            shutil.rmtree(d, ignore_errors=True)  # they were not here before the test
        if not self.had_user:
            run(["userdel", "vmscreen"])
        if not self.had_group and run(["getent", "group", "vmscreen"]).returncode == 0:
            run(["groupdel", "vmscreen"])
        for u in (DELIVER, PBX):
            run(["userdel", u])
        if not self.had_dgroup:
            run(["groupdel", "vmscreen-delivery"])
        shutil.rmtree(self.tmp, ignore_errors=True)

    def dpkg(self, *args):
        for _ in range(30):  # another dpkg or apt may hold the lock for a moment
            r = run(["dpkg", "--log=/dev/null"] + list(args), env=dpkg_root_env(), timeout=600)
            if r.returncode == 0 or "lock" not in r.stderr:
                return r
            time.sleep(2)
        return r

    def unit_cmd(self, key):
        with open("/lib/systemd/system/vmscreend.service") as f:
            m = re.search(r"^%s=(.*)$" % key, f.read(), re.M)
        return m.group(1).split()

    def start(self):
        """As the unit runs it: User=vmscreen, CAP_LEASE, UMask=0027."""
        as_service = ["setpriv", "--reuid=vmscreen", "--regid=vmscreen", "--init-groups",
                      "--inh-caps=+lease", "--ambient-caps=+lease"]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        r = run(as_service + self.unit_cmd("ExecStartPre"), env=env,
                preexec_fn=lambda: os.umask(0o027))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.log = open(os.path.join(self.tmp, "daemon.log"), "a")
        self.proc = subprocess.Popen(as_service + self.unit_cmd("ExecStart"), env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=lambda: os.umask(0o027))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.log.close()
        self.proc = None

    def log_text(self):
        with open(os.path.join(self.tmp, "daemon.log"), errors="replace") as f:
            return f.read()[-4000:]

    def screen(self, name, kind):
        """Drop a recording into the voicemail gate; wait for its state."""
        inc = "/var/spool/vmscreen/voicemail/incoming"
        end = time.time() + 180
        while not os.path.isdir(inc) and time.time() < end and self.proc.poll() is None:
            time.sleep(0.2)
        self.assertTrue(os.path.isdir(inc), self.log_text())
        tmp = os.path.join(inc, "." + name + ".tmp")
        shutil.copyfile(clip(kind), tmp)
        os.rename(tmp, os.path.join(inc, name))
        while time.time() < end:
            self.assertIsNone(self.proc.poll(), self.log_text())
            for st in ("released", "hold"):
                d = "/var/spool/vmscreen/voicemail/" + st
                if os.path.isdir(d) and [f for f in os.listdir(d) if f.endswith("_" + name)]:
                    return st
            time.sleep(0.2)
        self.fail("%s not screened in time\n%s" % (name, self.log_text()))

    def accounts_recipe(self):
        """issue 18: vmscreend(8)'s account recipe as written (its accounts
        deliver and pbx made here under other names): the delivery account
        reads released/ and not hold/, rejected/, the config, the
        users_file, the secrets or the audit log, and takes no lock."""
        for u in (DELIVER, PBX):
            r = run(["useradd", "--system", "--user-group", "--no-create-home", u])
            self.assertEqual(r.returncode, 0, r.stderr)
        S = "/var/spool/vmscreen/voicemail"
        script = manual_recipe("/var/spool/vmscreen", S).replace(
            test_accounts.DLV, DELIVER).replace(test_accounts.PBX, PBX).replace(
            test_accounts.DGRP, "vmscreen-delivery").replace(test_accounts.SVC, "vmscreen")
        r = run(["bash", "-euc", script])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        install = ["install", "-m", "0640", "-o", "root", "-g", "vmscreen", "/dev/null"]
        secret, users = "/etc/vmscreen/hook.secret", "/etc/vmscreen/reviewers"
        for f in (secret, users):
            self.addCleanup(lambda f=f: os.path.exists(f) and os.unlink(f))  # before the purge
            self.assertEqual(run(install + [f]).returncode, 0)
        self.assertEqual(self.screen("deliv.wav", "clean"), "released")  # after the recipe

        def cat(f):
            return run(["runuser", "-u", DELIVER, "--", "cat", f], errors="replace").returncode
        mine = [f for f in os.listdir(S + "/released") if "_deliv." in f]
        self.assertEqual(len(mine), 3, mine)  # the audio, its verdict and claim record
        for f in mine:
            self.assertEqual(cat(S + "/released/" + f), 0, "delivery cannot read " + f)
        for f in os.listdir(S + "/hold"):
            self.assertNotEqual(cat(S + "/hold/" + f), 0, "delivery reads hold/" + f)
        for f in ("/etc/vmscreen/vmscreend.conf", secret, users, "/var/log/vmscreen/audit.jsonl"):
            self.assertNotEqual(cat(f), 0, "delivery reads " + f)
        for lk in (S + "/.lock/review", "/var/log/vmscreen/.audit.jsonl.lock"):
            r = run(["runuser", "-u", DELIVER, "--", "flock", "-n", "-x", lk, "true"])
            self.assertNotEqual(r.returncode, 0, "delivery locks " + lk)
        for f in (secret, users):
            os.unlink(f)  # dpkg --purge leaves what it did not install

    def rotate(self):
        r = run(["logrotate", "-f", "-s", os.path.join(self.tmp, "logrotate.state"),
                 "/etc/logrotate.d/vmscreen"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_install_start_screen_rotate_purge(self):
        deb = built(self)
        r = self.dpkg("-i", deb)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(installed("vmscreen"))
        import grp
        import pwd
        pw = pwd.getpwnam("vmscreen")
        gid = grp.getgrnam("vmscreen").gr_gid
        st = os.stat("/etc/vmscreen/vmscreend.conf")
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777), (0, gid, 0o640))
        self.assertTrue(os.path.islink(
            "/etc/systemd/system/multi-user.target.wants/vmscreend.service"))

        self.start()
        self.assertEqual(self.screen("clean.wav", "clean"), "released")
        self.assertEqual(self.screen("rude.wav", "flagged"), "hold")
        self.accounts_recipe()
        self.stop()
        audit = "/var/log/vmscreen/audit.jsonl"
        with open(audit) as f:
            self.assertGreaterEqual(len(f.readlines()), 2)

        self.rotate()  # the packaged logrotate file, as cron/systemd would run it
        self.assertTrue(os.path.exists(audit + ".1"), os.listdir("/var/log/vmscreen"))
        self.assertFalse(os.path.exists(audit + ".1.gz"))
        st = os.stat(audit)
        self.assertEqual((st.st_size, st.st_uid, st.st_gid, st.st_mode & 0o7777),
                         (0, pw.pw_uid, gid, 0o640))
        self.start()
        self.assertEqual(self.screen("after.wav", "clean"), "released")
        self.stop()
        self.rotate()
        self.assertTrue(os.path.exists(audit + ".2.gz"), os.listdir("/var/log/vmscreen"))
        self.assertTrue(os.path.exists(audit + ".1"))  # delaycompress: .1 stays plain
        self.start()
        self.assertEqual(self.screen("third.wav", "clean"), "released")
        self.stop()

        oldest = os.path.join(self.tmp, "audit.jsonl.2")
        with gzip.open(audit + ".2.gz", "rb") as f, open(oldest, "wb") as out:
            out.write(f.read())
        r = run(["/usr/bin/vmscreen", "audit", "verify", oldest, audit + ".1", audit])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("chain intact", r.stdout)

        r = self.dpkg("--purge", "vmscreen")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse(installed("vmscreen"))
        for gone in ("/usr/bin/vmscreen", "/usr/sbin/vmscreend", "/etc/vmscreen",
                     "/etc/logrotate.d/vmscreen", "/lib/systemd/system/vmscreend.service",
                     "/etc/systemd/system/multi-user.target.wants/vmscreend.service"):
            self.assertFalse(os.path.lexists(gone), gone)


if __name__ == "__main__":
    unittest.main(verbosity=2)
