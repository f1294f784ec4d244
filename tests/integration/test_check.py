#!/usr/bin/env python3
"""`vmscreen check` and `vmscreen rules` end to end, on voicemails rendered
with flite and sox (cached once per test class in a temporary directory).

VMS_BIN_DIR selects the build (build/rel or build/asan); VMS_EVAL_KIT the
evaluation kit (default ../shared/eval beside the repository).
"""
import glob
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN_DIR = os.path.abspath(os.environ.get("VMS_BIN_DIR", os.path.join(ROOT, "build", "rel")))
VMSCREEN = os.path.join(BIN_DIR, "vmscreen")
EVAL_KIT = os.environ.get("VMS_EVAL_KIT", os.path.join(ROOT, "..", "shared", "eval"))
MALFORMED = sorted(glob.glob(os.path.join(EVAL_KIT, "malformed", "*.wav")))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
import wer  # noqa: E402  (tests/bench/wer.py: word error rate's edit distance)

CLEAN_TEXT = "Hi, this is Dave from Acme. Your order ships Monday. Thanks, bye."
HOSTILE_TEXT = ("Hi, this is Dave from Acme. I need you to shut up and listen. "
                "Your order ships Monday. Thanks, bye.")
CHATTER_TEXT = "Ugh, that guy again. What a waste of my afternoon."
# One medium finding (blame.your_fault) and nothing above: held at the default
# hold_severity, passed with hold_severity = "high".
BLAME_TEXT = ("Hi, this is Dave from Acme. I am sorry, but this was your own fault. "
              "Your order ships Monday. Thanks, bye.")
SUMMARY = re.compile(r"^(\d+) files?: (\d+) held, (\d+) passed, (\d+) unscreenable; "
                     r"([0-9.]+) s of audio in ([0-9.]+) s \(([0-9.]+)x real time\)$", re.M)

SEVERITY = {"low": 1, "medium": 2, "high": 3}


def env():
    e = dict(os.environ)
    # As tests/run.sh does, so a direct run of the ASan build behaves the same.
    e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1:halt_on_error=1")
    e.setdefault("LSAN_OPTIONS", "suppressions=%s:print_suppressions=0"
                 % os.path.join(ROOT, "tests", "lsan.supp"))
    e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    e.setdefault("VMSCREEN_MODELS", os.path.join(ROOT, "models"))
    # check reads $VMSCREEN_CONFIG as the daemon does: a caller's must not
    # change these results (tests that want one pass it)
    e.pop("VMSCREEN_CONFIG", None)
    return e


def run(*args, cwd=None, config_env=None, input_text=None):
    e = env()
    if config_env is not None:
        e["VMSCREEN_CONFIG"] = config_env
    return subprocess.run([VMSCREEN, *args], capture_output=True, text=True, env=e,
                          cwd=cwd, timeout=600, input=input_text)


def json_lines(out):
    return [json.loads(l) for l in out.split("\n") if l != ""]


def untimed(objs):
    """--json objects without their timing field (cpu_s differs run to run)."""
    return [{k: v for k, v in o.items() if k != "cpu_s"} for o in objs]


def render(text, path, voice="slt"):
    """flite + sox: 16 kHz mono, 1 s of silence after, byte-identical each time."""
    raw = path + ".raw.wav"
    sh("flite", "-voice", voice, "-t", text, "-o", raw)
    sh("sox", "-D", raw, "-r", "16000", "-b", "16", "-c", "1", path, "pad", "0", "1")
    os.unlink(raw)


def sh(*cmd):
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def duration(path):
    out = subprocess.run(["soxi", "-D", path], check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


@unittest.skipUnless(shutil.which("flite") and shutil.which("sox") and shutil.which("soxi"),
                     "flite and sox are needed to render voicemails")
def ogg_crc(data):
    """The Ogg page checksum (CRC-32, polynomial 0x04c11db7, not reflected)."""
    c = 0
    for b in data:
        c ^= b << 24
        for _ in range(8):
            c = ((c << 1) ^ 0x04C11DB7) if c & 0x80000000 else c << 1
            c &= 0xFFFFFFFF
    return c


def write_ogg_last_granule(src, dst, granule):
    """Copy an Ogg file with its last page's granule position set (and its
    checksum fixed): a header that ends the stream early."""
    with open(src, "rb") as f:
        d = bytearray(f.read())
    pos = last = 0
    while pos < len(d):
        assert d[pos:pos + 4] == b"OggS"
        n = d[pos + 26]
        last, pos = pos, pos + 27 + n + sum(d[pos + 27:pos + 27 + n])
    d[last + 6:last + 14] = granule.to_bytes(8, "little")
    d[last + 22:last + 26] = bytes(4)
    d[last + 22:last + 26] = ogg_crc(bytes(d[last:pos])).to_bytes(4, "little")
    with open(dst, "wb") as f:
        f.write(d)


class CheckTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="vms-test-check-")
        d = cls.dir

        def p(name):
            return os.path.join(d, name)

        # sox -D: no dither, so every render is byte-identical and a failure
        # seen once can be reproduced.
        sh("flite", "-t", CLEAN_TEXT, "-o", p("clean_raw.wav"))
        sh("sox", "-D", p("clean_raw.wav"), "-r", "16000", "-b", "16", "-c", "1", p("clean.wav"),
           "pad", "0", "1")
        # slt, not the default kal voice: with kal the recogniser hears "shut up"
        # as "show up" in about one render in ten, and a test must not flake.
        sh("flite", "-voice", "slt", "-t", HOSTILE_TEXT, "-o", p("hostile_raw.wav"))
        sh("sox", "-D", p("hostile_raw.wav"), "-r", "16000", "-b", "16", "-c", "1",
           p("hostile.wav"), "pad", "0", "1")
        # Open line: the clean message, a 1.5 s pause, off-mic chatter.
        sh("sox", "-D", p("clean_raw.wav"), "-r", "16000", "-b", "16", "-c", "1",
           p("msg_pause.wav"), "pad", "0", "1.5")
        sh("flite", "-voice", "rms", "-t", CHATTER_TEXT, "-o", p("chatter_raw.wav"))
        sh("sox", "-D", p("chatter_raw.wav"), "-r", "16000", "-b", "16", "-c", "1",
           p("chatter.wav"), "vol", "-12", "dB")
        sh("sox", "-D", p("msg_pause.wav"), p("chatter.wav"), p("open.wav"), "pad", "0", "1")
        sh("sox", "-D", p("clean.wav"), "-r", "8000", "-e", "u-law", p("clean_ulaw.wav"))
        sh("sox", "-D", p("clean.wav"), p("clean.flac"))
        cls.message_end = duration(p("clean_raw.wav"))  # end of the message
        cls.chatter_start = duration(p("msg_pause.wav"))
        for name in ("clean_raw.wav", "hostile_raw.wav", "chatter_raw.wav",
                     "msg_pause.wav", "chatter.wav"):
            os.unlink(p(name))
        cls.results = {}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def check_json(self, *files):
        """Screen files with --json; (exit code, [objects], stderr)."""
        r = run("check", "--json", *files)
        lines = [l for l in r.stdout.split("\n") if l != ""]
        self.assertEqual(len(lines), len(files), r.stdout + r.stderr)
        objs = []
        for line in lines:
            o = json.loads(line)
            self.assertIsInstance(o, dict)
            objs.append(o)
        return r.returncode, objs, r.stderr

    def result(self, name):
        """One cached --json result per rendered file."""
        if name not in self.results:
            rc, objs, err = self.check_json(self.path(name))
            self.results[name] = (rc, objs[0], err)
        return self.results[name]

    # --- determinism ---------------------------------------------------------

    def test_result_does_not_depend_on_the_file_before(self):
        # One decoder screens file after file (as each daemon worker does):
        # what it heard in one file must not change what it hears in the next.
        def key(o):
            return (o["verdict"], o["transcript"]["text"],
                    [(w["w"], w["start_s"], w["end_s"]) for w in o["transcript"]["words"]],
                    sorted((a["type"], a["rule"], a["start_s"]) for a in o["alerts"]))
        _, alone, _ = self.check_json(self.path("hostile.wav"))
        _, seq, _ = self.check_json(self.path("clean.wav"), self.path("hostile.wav"),
                                    self.path("open.wav"), self.path("hostile.wav"))
        self.assertEqual(key(alone[0]), key(seq[1]))
        self.assertEqual(key(alone[0]), key(seq[3]))

    # --- exit codes ---------------------------------------------------------

    def test_clean_passes(self):
        for name in ("clean.wav", "clean_ulaw.wav", "clean.flac"):
            with self.subTest(name=name):
                rc, o, err = self.result(name)
                self.assertEqual(rc, 0, err)
                self.assertEqual(o["verdict"], "pass")
                serious = [a for a in o["alerts"] if SEVERITY[a["severity"]] >= 2]
                self.assertEqual(serious, [])
                self.assertAlmostEqual(o["duration_s"], duration(self.path("clean.wav")),
                                       delta=0.1)

    def test_sample_rates_reported(self):
        self.assertEqual(self.result("clean_ulaw.wav")[1]["sample_rate"], 8000)
        self.assertEqual(self.result("clean.flac")[1]["sample_rate"], 16000)

    def test_hostile_held(self):
        rc, o, err = self.result("hostile.wav")
        self.assertEqual(rc, 1, err)
        self.assertEqual(o["verdict"], "hold")
        hits = [a for a in o["alerts"]
                if a["type"] == "phrasing" and a["category"] == "hostility"]
        self.assertTrue(hits, o["alerts"])
        self.assertTrue(any("shut" in a["evidence"] for a in hits), hits)

    def test_open_line_held(self):
        rc, o, err = self.result("open.wav")
        self.assertEqual(rc, 1, err)
        self.assertEqual(o["verdict"], "hold")
        ol = [a for a in o["alerts"] if a["type"] == "open_line"]
        self.assertEqual(len(ol), 1, o["alerts"])
        # After the sign-off (the end of the message), around the chatter.
        self.assertGreater(ol[0]["start_s"], self.message_end)
        self.assertLess(ol[0]["start_s"], self.chatter_start + 1.0)
        self.assertEqual(ol[0]["severity"], "high")

    def test_exit_one_when_any_held(self):
        r = run("check", self.path("clean.wav"), self.path("hostile.wav"))
        self.assertEqual(r.returncode, 1, r.stderr)

    def test_unknown_option(self):
        r = run("check", "--no-such-option", self.path("clean.wav"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage", r.stderr)
        self.assertEqual(r.stdout, "")

    def config(self, text):
        fd, path = tempfile.mkstemp(suffix=".conf", dir=self.dir)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    def test_config_errors(self):
        cases = {
            "missing": os.path.join(self.dir, "no-such.conf"),
            "bad severity": self.config('screening = { hold_severity = "extreme"; };\n'),
            "bad models dir": self.config('screening = { models_dir = "/nonexistent"; };\n'),
            "syntax": self.config("screening = { hold_severity = ; \n"),
        }
        for what, conf in cases.items():
            with self.subTest(what=what):
                r = run("check", "--config", conf, self.path("clean.wav"))
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertTrue(r.stderr.startswith("vmscreen"), r.stderr)
                self.assertEqual(r.stdout, "")

    def test_good_config(self):
        conf = self.config('screening = { hold_severity = "high"; };\n')
        r = run("check", "--config", conf, self.path("clean.wav"))
        self.assertEqual(r.returncode, 0, r.stderr)

    # --- JSON shape ---------------------------------------------------------

    def test_json_shape(self):
        names = ["clean.wav", "hostile.wav", "open.wav"]
        rc, objs, err = self.check_json(*[self.path(n) for n in names])
        self.assertEqual(rc, 1)
        for name, o in zip(names, objs):
            with self.subTest(name=name):
                for key in ("file", "verdict", "duration_s", "alerts", "transcript",
                            "metadata"):
                    self.assertIn(key, o)
                self.assertEqual(o["file"], self.path(name))
                self.assertIn(o["verdict"], ("pass", "hold"))
                self.assertIsInstance(o["duration_s"], float)
                self.assertGreater(o["duration_s"], 1.0)
                self.assertIsInstance(o["alerts"], list)
                self.assertIsInstance(o["metadata"], dict)
                tr = o["transcript"]
                self.assertIsInstance(tr["text"], str)
                self.assertTrue(tr["words"], "no words recognised")
                prev = 0.0
                for w in tr["words"]:
                    for key in ("w", "start_s", "end_s", "conf"):
                        self.assertIn(key, w)
                    self.assertIsInstance(w["w"], str)
                    self.assertLessEqual(w["start_s"], w["end_s"])
                    self.assertGreaterEqual(w["start_s"], prev - 1e-9)
                    self.assertLessEqual(w["end_s"], o["duration_s"] + 0.05)
                    self.assertTrue(0.0 <= w["conf"] <= 1.0, w)
                    prev = w["start_s"]
                self.assertEqual(tr["text"], " ".join(w["w"] for w in tr["words"]))
                for a in o["alerts"]:
                    for key in ("type", "category", "severity", "start_s", "end_s",
                                "evidence"):
                        self.assertIn(key, a)

    # --- sidecar ------------------------------------------------------------

    def test_sidecar_hangup(self):
        d = tempfile.mkdtemp(dir=self.dir)
        wav = os.path.join(d, "call.wav")
        shutil.copy(self.path("open.wav"), wav)
        with open(os.path.join(d, "call.json"), "w") as f:
            json.dump({"hangup_at": round(self.message_end, 2), "crm_id": "abc"}, f)
        rc, objs, err = self.check_json(wav)
        o = objs[0]
        self.assertEqual(rc, 1, err)
        self.assertEqual(o["metadata"], {"crm_id": "abc"})
        ol = [a for a in o["alerts"] if a["type"] == "open_line"]
        self.assertEqual(len(ol), 1, o["alerts"])
        self.assertEqual(ol[0]["category"], "after_hangup")
        self.assertGreater(ol[0]["start_s"], self.message_end)

    def test_stereo_transcribes_the_agent_channel(self):
        """A stereo call whose sidecar names the agent: only the agent's channel
        is decoded (the customer may swear; no finding reads their words), and
        transcribe_all_channels brings the other party back for context."""
        d = tempfile.mkdtemp(dir=self.dir)
        wav = os.path.join(d, "call.wav")
        # channel 0: the hostile message; channel 1: the clean one
        sh("sox", "-D", "-M", self.path("hostile.wav"), self.path("clean.wav"), wav)
        for agent, verdict in ((0, "hold"), (1, "pass")):
            with self.subTest(agent=agent):
                with open(os.path.join(d, "call.json"), "w") as f:
                    json.dump({"agent_channel": agent}, f)
                rc, objs, err = self.check_json(wav)
                o = objs[0]
                self.assertEqual(o["channels"], 2)
                self.assertEqual(o["transcript"]["channels"], [agent])
                self.assertTrue(o["transcript"]["words"])
                self.assertEqual({w["channel"] for w in o["transcript"]["words"]}, {agent})
                self.assertEqual(o["verdict"], verdict, o["alerts"])
        conf = self.config("screening = { transcribe_all_channels = true; };\n")
        r = run("check", "--config", conf, "--json", wav)
        o = json.loads(r.stdout)
        self.assertEqual(o["transcript"]["channels"], [0, 1])
        self.assertEqual({w["channel"] for w in o["transcript"]["words"]}, {0, 1})
        self.assertEqual(o["verdict"], "pass", o["alerts"])  # agent is channel 1

    def test_broken_sidecar_is_unscreenable(self):
        d = tempfile.mkdtemp(dir=self.dir)
        wav = os.path.join(d, "call.wav")
        shutil.copy(self.path("clean.wav"), wav)
        with open(os.path.join(d, "call.json"), "w") as f:
            f.write('{"hangup_at": "later"}')
        rc, objs, err = self.check_json(wav)
        self.assertEqual(rc, 1)
        self.assertEqual(objs[0]["verdict"], "hold")
        self.assertIn("call.json", err)

    def test_silent_agent_channel_is_held(self):
        """issue 10: the sidecar names a silent channel as the agent while the
        other speaks; screening nothing must not pass."""
        d = tempfile.mkdtemp(dir=self.dir)
        wav = os.path.join(d, "call.wav")
        silent = os.path.join(d, "silent.wav")
        sh("sox", "-D", self.path("clean.wav"), silent, "vol", "0")
        sh("sox", "-D", "-M", self.path("clean.wav"), silent, wav)
        with open(os.path.join(d, "call.json"), "w") as f:
            json.dump({"agent_channel": 1}, f)
        rc, objs, err = self.check_json(wav)
        self.assertEqual(rc, 1, err)
        self.assertEqual(objs[0]["verdict"], "hold")
        un = [a for a in objs[0]["alerts"] if a["type"] == "unscreenable"]
        self.assertEqual(len(un), 1, objs[0]["alerts"])
        self.assertIn("names channel 1 as the agent, but it is silent", un[0]["evidence"])
        with open(os.path.join(d, "call.json"), "w") as f:
            json.dump({"agent_channel": 0}, f)
        rc, objs, err = self.check_json(wav)
        self.assertEqual(objs[0]["verdict"], "pass", objs[0]["alerts"])

    def test_flac_and_ogg_hiding_audio_past_their_header_are_held(self):
        """issue 10: libsndfile stops at the declared length (FLAC STREAMINFO
        total_samples, the Ogg granule it finds); a player plays every frame
        and page.  Content and header disagree: hold."""
        d = tempfile.mkdtemp(dir=self.dir)
        good = self.path("clean.flac")
        with open(good, "rb") as f:
            flac = bytearray(f.read())
        self.assertEqual(flac[:4], b"fLaC")
        total = ((flac[21] & 0xF) << 32) | int.from_bytes(flac[22:26], "big")
        short = total // 3  # declare a third of what the stream holds
        flac[21] = (flac[21] & 0xF0) | ((short >> 32) & 0xF)
        flac[22:26] = (short & 0xFFFFFFFF).to_bytes(4, "big")
        bad_flac = os.path.join(d, "short.flac")
        with open(bad_flac, "wb") as f:
            f.write(flac)
        ogg = os.path.join(d, "clean.ogg")
        sh("sox", "-D", self.path("clean.wav"), ogg)
        chained = os.path.join(d, "chained.ogg")
        with open(ogg, "rb") as f, open(chained, "wb") as g:
            data = f.read()
            g.write(data + data)  # a second logical stream after the first
        backwards = os.path.join(d, "backwards.ogg")
        noise = os.path.join(d, "noise.ogg")
        sh("sox", "-D", "-n", "-r", "16000", noise, "synth", "20", "pinknoise", "vol", "0.3")
        write_ogg_last_granule(noise, backwards, 16000)
        rc, objs, err = self.check_json(good, ogg, noise, bad_flac, chained, backwards)
        self.assertEqual([o["verdict"] for o in objs[:3]], ["pass", "pass", "pass"],
                         [o["alerts"] for o in objs[:3]])
        for o in objs[3:]:
            with self.subTest(file=o["file"]):
                self.assertEqual(o["verdict"], "hold")
                ev = [a["evidence"] for a in o["alerts"] if a["type"] == "unscreenable"]
                self.assertEqual(len(ev), 1, o["alerts"])
                self.assertIn("content disagrees with header", ev[0])
        m = re.search(r"declares ([0-9.]+) s but the stream holds ([0-9.]+) s",
                      objs[3]["alerts"][0]["evidence"])
        self.assertIsNotNone(m, objs[3]["alerts"])
        self.assertAlmostEqual(float(m.group(1)), short / 16000, places=1)
        self.assertAlmostEqual(float(m.group(2)), total / 16000, places=1)
        # total_samples 0 is legal ("unknown"): judged by the stream itself
        # (second round of attacks: it was held with a nonsense length)
        flac[21] &= 0xF0
        flac[22:26] = bytes(4)
        unknown = os.path.join(d, "unknown.flac")
        with open(unknown, "wb") as f:
            f.write(flac)
        rc, objs, err = self.check_json(unknown)
        self.assertEqual(objs[0]["verdict"], "pass", objs[0]["alerts"])
        self.assertAlmostEqual(objs[0]["duration_s"], total / 16000, places=1)

    def test_wav_tail_and_mpeg_that_a_player_would_play_further_are_held(self):
        """issue 10, in general form: bytes after a WAV's data chunk that are
        not chunks, and MPEG (whose length libsndfile estimates), could play
        audio nobody screened; whole trailing chunks (LIST) are fine."""
        d = tempfile.mkdtemp(dir=self.dir)
        with open(self.path("clean.wav"), "rb") as f:
            wav = f.read()
        tail, listed, mp3 = (os.path.join(d, n) for n in ("tail.wav", "list.wav", "a.mp3"))
        with open(tail, "wb") as f:
            f.write(wav + wav[44:])  # a second copy of the audio, no chunk header
        with open(listed, "wb") as f:
            f.write(wav + b"LIST" + (4).to_bytes(4, "little") + b"INFO")
        sh("sox", "-D", self.path("clean.wav"), mp3)
        rc, objs, err = self.check_json(tail, listed, mp3)
        self.assertEqual([o["verdict"] for o in objs], ["hold", "pass", "hold"],
                         [o["alerts"] for o in objs])
        self.assertIn("bytes after the WAV data chunk are not chunks",
                      objs[0]["alerts"][0]["evidence"])
        self.assertIn("MPEG audio is not accepted", objs[2]["alerts"][0]["evidence"])
        # a PCM fmt that does not add up (7 bits, block align 1): a player
        # plays noise of bytes that were screened as something else
        bits7 = os.path.join(d, "bits7.wav")
        data = bytearray(wav)
        i = data.find(b"fmt ")
        data[i + 20:i + 22] = (1).to_bytes(2, "little")
        data[i + 22:i + 24] = (7).to_bytes(2, "little")
        with open(bits7, "wb") as f:
            f.write(data)
        rc, objs, err = self.check_json(bits7)
        self.assertEqual(objs[0]["verdict"], "hold")
        self.assertIn("does not add up", objs[0]["alerts"][0]["evidence"])

    def test_container_renamed_to_a_raw_extension_is_held(self):
        """issue 10, second round of attacks: a WAV, FLAC or MP3 named .ulaw,
        .gsm or .sln was read as raw samples (noise, passed) while a player
        sniffs the content and plays the speech."""
        d = tempfile.mkdtemp(dir=self.dir)
        cases = []
        for src, ext in (("hostile.wav", ".ulaw"), ("clean.flac", ".gsm"), ("hostile.wav", ".sln")):
            dst = os.path.join(d, "x%d%s" % (len(cases), ext))
            shutil.copy(self.path(src), dst)
            cases.append(dst)
        mp3 = os.path.join(d, "m.mp3")
        sh("sox", "-D", self.path("hostile.wav"), mp3)
        shutil.copy(mp3, os.path.join(d, "m.ulaw"))
        cases.append(os.path.join(d, "m.ulaw"))
        real = os.path.join(d, "real.ulaw")  # real headerless u-law still passes
        sh("sox", "-D", self.path("clean.wav"), "-r", "8000", "-t", "raw", "-e", "u-law", real)
        rc, objs, err = self.check_json(*cases, real)
        for o in objs[:-1]:
            with self.subTest(file=o["file"]):
                self.assertEqual(o["verdict"], "hold")
                self.assertIn("content disagrees with name", o["alerts"][0]["evidence"])
        self.assertEqual(objs[-1]["verdict"], "pass", objs[-1]["alerts"])

    def test_sidecar_key_in_the_wrong_case_is_refused(self):
        """issue 10, second round: {"Hangup_At": ...} was kept as metadata and
        the recording screened without its hangup mark."""
        d = tempfile.mkdtemp(dir=self.dir)
        wav = os.path.join(d, "call.wav")
        shutil.copy(self.path("open.wav"), wav)
        for key in ("Hangup_At", "HANGUP_AT", "agent-channel"):
            with self.subTest(key=key):
                with open(os.path.join(d, "call.json"), "w") as f:
                    json.dump({key: 1}, f)
                rc, objs, err = self.check_json(wav)
                self.assertEqual(objs[0]["verdict"], "hold")
                self.assertIn("key '%s' is not" % key, objs[0]["alerts"][0]["evidence"])

    # --- unscreenable -------------------------------------------------------

    def assert_unscreenable(self, files):
        rc, objs, err = self.check_json(*files)
        self.assertEqual(rc, 1)
        for f, o in zip(files, objs):
            with self.subTest(file=f):
                self.assertEqual(o["file"], f)
                self.assertEqual(o["verdict"], "hold")
                self.assertIn("unscreenable", [a["type"] for a in o["alerts"]])
                lines = [l for l in err.splitlines() if f + ":" in l]
                self.assertEqual(len(lines), 1, err)

    def test_missing_file(self):
        self.assert_unscreenable([os.path.join(self.dir, "no-such-file.wav")])

    @unittest.skipUnless(MALFORMED, "evaluation kit malformed/ not found")
    def test_malformed_files(self):
        self.assert_unscreenable(MALFORMED)

    # --- text report --------------------------------------------------------

    def test_text_report(self):
        files = [self.path("clean.wav"), self.path("hostile.wav"),
                 os.path.join(self.dir, "no-such-file.wav")]
        r = run("check", *files)
        self.assertEqual(r.returncode, 1)
        verdicts = {}
        for line in r.stdout.splitlines():
            m = re.match(r"^(\S+)\s+(pass|HOLD)\s", line)
            if m:
                verdicts[m.group(1)] = m.group(2)
        self.assertEqual(verdicts, {files[0]: "pass", files[1]: "HOLD", files[2]: "HOLD"},
                         r.stdout)
        self.assertIn("hostility", r.stdout)


def summary(stderr):
    """The summary line's numbers: (files, held, passed, unscreenable, audio s)."""
    m = SUMMARY.findall(stderr)
    assert len(m) == 1, stderr
    files, held, passed, unscreenable, audio = m[0][:5]
    return int(files), int(held), int(passed), int(unscreenable), float(audio)


def expected_counts(objs):
    """What the summary should say of these --json results."""
    un = sum(1 for o in objs if any(a["type"] == "unscreenable" for a in o["alerts"]))
    held = sum(1 for o in objs if o["verdict"] == "hold") - un
    return len(objs), held, sum(1 for o in objs if o["verdict"] == "pass"), un


@unittest.skipUnless(shutil.which("flite") and shutil.which("sox"),
                     "flite and sox are needed to render voicemails")
class CheckJobsConfigTest(unittest.TestCase):
    """issue 12: check -j N, the daemon's configuration, progress, summary, help."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="vms-test-check-j-")
        p = cls.path
        render(CLEAN_TEXT, p("clean.wav"))
        render(HOSTILE_TEXT, p("hostile.wav"))
        render(BLAME_TEXT, p("blame.wav"))
        sh("sox", "-D", p("clean.wav"), "-r", "8000", "-e", "u-law", p("clean_ulaw.wav"))
        sh("sox", "-D", p("blame.wav"), p("blame.flac"))
        with open(p("clean.wav"), "rb") as f, open(p("truncated.wav"), "wb") as g:
            g.write(f.read()[:600])
        cls.files = [p(n) for n in ("clean.wav", "hostile.wav", "blame.wav", "clean_ulaw.wav",
                                    "truncated.wav", "blame.flac", "no-such-file.wav",
                                    "hostile.wav")]
        cls.high = p("high.conf")
        with open(cls.high, "w") as f:
            f.write('screening = { hold_severity = "high"; };\n')
        cls.medium = p("medium.conf")
        with open(cls.medium, "w") as f:
            f.write('screening = { hold_severity = "medium"; };\n')
        cls.runs = {}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)

    def jobs(self, n, *extra):
        """check -j n --json on the eight files, once per n: (run, objects, wall s)."""
        if n not in self.runs:
            t0 = time.monotonic()
            r = run("check", "-j", str(n), "--json", *extra, *self.files)
            wall = time.monotonic() - t0
            self.runs[n] = (r, json_lines(r.stdout), wall)
            print("\n  check -j %d on %d files: %.1f s wall" % (n, len(self.files), wall),
                  file=sys.stderr)
        return self.runs[n]

    def test_jobs_same_results_in_input_order(self):
        r1, one, _ = self.jobs(1)
        r3, three, _ = self.jobs(3)
        self.assertEqual(r1.returncode, 1, r1.stderr)
        self.assertEqual(r3.returncode, 1, r3.stderr)
        self.assertEqual([o["file"] for o in three], self.files)
        self.assertEqual([o["verdict"] for o in one],
                         ["pass", "hold", "hold", "pass", "hold", "hold", "hold", "hold"],
                         [o["alerts"] for o in one])
        # byte for byte, but for cpu_s: transcripts, times, findings, order
        self.assertEqual(untimed(one), untimed(three))
        # the unscreenable messages on stderr, in input order too
        un = lambda err: [l for l in err.splitlines() if l.startswith("vmscreen: ")]
        self.assertEqual(un(r1.stderr), un(r3.stderr))
        self.assertEqual(len(un(r3.stderr)), 2, r3.stderr)

    def test_jobs_report_identical(self):
        """The report a person reads has no timing: identical bytes."""
        files = self.files[:3]
        a = run("check", "-j", "1", *files)
        b = run("check", "--jobs", "2", *files)
        self.assertEqual(a.stdout, b.stdout)
        self.assertEqual(a.returncode, b.returncode)

    def test_summary_counts(self):
        for n in (1, 3):
            with self.subTest(jobs=n):
                r, objs, _ = self.jobs(n)
                files, held, passed, un, audio = summary(r.stderr)
                self.assertEqual((files, held, passed, un), expected_counts(objs))
                self.assertEqual((files, held, passed, un), (8, 4, 2, 2))
                self.assertAlmostEqual(audio, sum(o["duration_s"] for o in objs), delta=0.1)
        # one per CPU, and the summary of --text
        r = subprocess.run([VMSCREEN, "check", "-j", "0", "--text", "-"], input="",
                           capture_output=True, text=True, env=env(), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0 transcripts: 0 held, 0 passed", r.stderr)

    def test_jobs_refused(self):
        for bad in ("-1", "x", "1000", ""):
            with self.subTest(jobs=bad):
                r = run("check", "-j", bad, self.files[0])
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("--jobs", r.stderr)
                self.assertEqual(r.stdout, "")

    def verdicts(self, *args, config_env=None):
        r = run("check", "--json", *args, self.path("blame.wav"), self.path("hostile.wav"),
                config_env=config_env)
        return [o["verdict"] for o in json_lines(r.stdout)], r

    def test_config_from_the_environment(self):
        """$VMSCREEN_CONFIG is read as the daemon reads it; --config wins over
        it and --no-config ignores both.  The medium blame finding holds only
        at the default hold_severity; the high one always."""
        self.assertEqual(self.verdicts()[0], ["hold", "hold"])
        got, r = self.verdicts(config_env=self.high)
        self.assertEqual(got, ["pass", "hold"], r.stdout)
        self.assertEqual(summary(r.stderr)[:4], (2, 1, 1, 0))
        got, r = self.verdicts("--config", self.medium, config_env=self.high)
        self.assertEqual(got, ["hold", "hold"], r.stdout)
        got, r = self.verdicts("--config", self.high, config_env=self.medium)
        self.assertEqual(got, ["pass", "hold"], r.stdout)
        got, r = self.verdicts("--no-config", config_env=self.high)
        self.assertEqual(got, ["hold", "hold"], r.stdout)
        r = run("check", "--config", self.high, "--no-config", self.files[0])
        self.assertEqual(r.returncode, 2)
        self.assertIn("exclude each other", r.stderr)

    def test_config_from_the_environment_errors_and_notice(self):
        """A bad $VMSCREEN_CONFIG is an error, not silently skipped; the
        config used is named with -v (not otherwise on a pipe)."""
        bad = self.path("bad.conf")
        with open(bad, "w") as f:
            f.write('screening = { hold_severity = "extreme"; };\n')
        line = "your order ships monday\n"
        r = subprocess.run([VMSCREEN, "check", "--text", "-"], input=line, capture_output=True,
                           text=True, env=dict(env(), VMSCREEN_CONFIG=bad), timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(bad, r.stderr)
        self.assertIn("--no-config", r.stderr)
        self.assertEqual(r.stdout, "")
        r = subprocess.run([VMSCREEN, "check", "--no-config", "--text", "-"], input=line,
                           capture_output=True, text=True,
                           env=dict(env(), VMSCREEN_CONFIG=bad), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("config", r.stderr)
        for args, want in (([], "config %s (named by $VMSCREEN_CONFIG)" % self.high),
                           (["-v"], "config %s (named by $VMSCREEN_CONFIG)" % self.high)):
            r = subprocess.run([VMSCREEN, "check", *args, "--text", "-"], input=line,
                               capture_output=True, text=True,
                               env=dict(env(), VMSCREEN_CONFIG=self.high), timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            if args:
                self.assertIn(want, r.stderr)
            else:
                self.assertNotIn("vmscreen check: config", r.stderr)

    def run_on_terminal(self, *args):
        """Run check with stderr on a pseudo-terminal (stdout a pipe):
        (exit status, stdout, what the terminal got)."""
        master, slave = pty.openpty()
        got = []
        reader = threading.Thread(target=self.read_terminal, args=(master, got))
        reader.start()
        r = subprocess.run([VMSCREEN, "check", *args], stdout=subprocess.PIPE,
                           stderr=slave, env=env(), timeout=600)
        os.close(slave)
        reader.join()
        os.close(master)
        return r.returncode, r.stdout.decode(), b"".join(got).decode(errors="replace")

    @staticmethod
    def read_terminal(fd, out):
        while True:
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the last writer closed
                return
            if not data:
                return
            out.append(data)

    def test_progress_on_a_terminal_only(self):
        files = [self.path("clean.wav"), self.path("blame.wav")]
        rc, out, tty = self.run_on_terminal("-j", "2", *files)
        self.assertEqual(rc, 1, tty)
        self.assertIn("\r[1/2] 50% ", tty)
        self.assertIn("\r[2/2] 100% ", tty)
        self.assertRegex(tty, r"\[2/2\] 100% \S*(clean|blame)\.wav")
        self.assertNotIn("[1/2]", out)
        self.assertIn("2 files: 1 held, 1 passed, 0 unscreenable;", tty)
        # which config is used is said on a terminal, unasked
        self.assertIn("vmscreen check: ", tty.split("\r")[0])
        r = run("check", *files)  # a pipe: no progress, the summary still
        self.assertNotIn("\r", r.stderr)
        self.assertNotIn("[1/2]", r.stderr)
        self.assertEqual(summary(r.stderr)[:4], (2, 1, 1, 0))

    def test_help_command(self):
        h = run("help", "check")
        self.assertEqual(h.returncode, 0, h.stderr)
        self.assertTrue(h.stdout.startswith("usage: vmscreen check"), h.stdout)
        for opt in ("--jobs", "--no-config", "--config", "--json", "--text", "VMSCREEN_CONFIG"):
            self.assertIn(opt, h.stdout)
        self.assertNotIn("vmscreen rules", h.stdout)  # not the general usage
        self.assertEqual(run("check", "--help").stdout, h.stdout)
        general = run("help")
        self.assertEqual(general.returncode, 0)
        self.assertIn("vmscreen rules", general.stdout)
        self.assertIn("vmscreen help [COMMAND]", general.stdout)
        for cmd in ("rules", "list", "show", "release", "reject", "passwd", "audit"):
            with self.subTest(cmd=cmd):
                r = run("help", cmd)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertTrue(r.stdout.startswith("usage: vmscreen " + cmd), r.stdout)
                self.assertNotIn("vmscreen check", r.stdout)
                self.assertEqual(run(cmd, "--help").stdout, r.stdout)
        r = run("help", "no-such-command")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no-such-command", r.stderr)


@unittest.skipUnless(shutil.which("flite") and shutil.which("sox"),
                     "flite and sox are needed to render voicemails")
class CheckAgreesWithDaemonTest(unittest.TestCase):
    """issue 12: `check -j` and the daemon, on the same files and the same
    config, give every file the same verdict (the same findings too).  A
    monitor spool: it screens a stereo call's agent channel only, as check
    does (a gate spool hears every channel)."""

    def setUp(self):
        sys.path.insert(0, HERE)
        import daemon_harness
        self.harness = daemon_harness
        self.dir = tempfile.mkdtemp(prefix="vms-test-check-daemon-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        p = lambda n: os.path.join(self.dir, n)
        render(CLEAN_TEXT, p("clean.wav"))
        render(HOSTILE_TEXT, p("hostile.wav"))
        render(BLAME_TEXT, p("blame.wav"))
        sh("sox", "-D", p("blame.wav"), "-r", "8000", "-e", "u-law", p("blame_ulaw.wav"))
        with open(p("hostile.wav"), "rb") as f, open(p("truncated.wav"), "wb") as g:
            g.write(f.read()[:600])
        sh("sox", "-D", "-M", p("hostile.wav"), p("clean.wav"), p("call.wav"))
        with open(p("call.json"), "w") as f:
            json.dump({"agent_channel": 1}, f)  # the clean channel
        self.names = ["clean.wav", "hostile.wav", "blame.wav", "blame_ulaw.wav",
                      "truncated.wav", "call.wav"]

    def drop(self, d, name):
        """The producer contract (daemon_harness.Daemon.drop) for any file,
        its sidecar first."""
        inc = os.path.join(d.spool_path(), "incoming")
        stem = name.rsplit(".", 1)[0]
        for src in (stem + ".json", name):
            if os.path.exists(os.path.join(self.dir, src)):
                shutil.copyfile(os.path.join(self.dir, src), os.path.join(inc, "." + src))
                os.rename(os.path.join(inc, "." + src), os.path.join(inc, src))

    def test_check_jobs_agrees_with_the_daemon(self):
        d = self.harness.Daemon(spools=[("vm", "monitor")],
                                extra='screening = { hold_severity = "high"; };\n')
        self.addCleanup(d.close)
        d.start()
        for n in self.names:
            self.drop(d, n)
        d.wait_done(self.names, timeout=300)
        self.assertEqual(d.stop(), 0, d.log_text()[-3000:])
        daemon = {n: d.verdict(n)[1] for n in self.names}
        files = [os.path.join(self.dir, n) for n in self.names]
        r = run("check", "-j", "2", "--json", "--config", d.conf, *files)
        self.assertEqual(r.returncode, 1, r.stderr)
        check = dict(zip(self.names, json_lines(r.stdout)))
        got = {n: (daemon[n]["verdict"], check[n]["verdict"]) for n in self.names}
        self.assertEqual({n: v[0] for n, v in got.items()}, {n: v[1] for n, v in got.items()})
        # the config counts: blame is medium, held by default, passed at "high"
        self.assertEqual([check[n]["verdict"] for n in self.names],
                         ["pass", "hold", "pass", "pass", "hold", "pass"], got)

        def rules(o):
            return sorted((a["type"], a.get("rule", "")) for a in o["alerts"]
                          if a["type"] != "unscreenable")
        for n in self.names:
            with self.subTest(file=n):
                self.assertEqual(rules(daemon[n]), rules(check[n]))
        default = run("check", "--json", "--no-config", files[2])
        self.assertEqual(json_lines(default.stdout)[0]["verdict"], "hold")



class PhoneChannelTest(unittest.TestCase):
    """Issue 17: telephone audio is decoded with the telephone transform
    (models/phone.mllr), wideband audio without it, whatever came before."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vms-phone-")
        cls.refs = {}
        with open(os.path.join(EVAL_KIT, "real", "transcripts.tsv")) as f:
            for line in f:
                name, text = line.rstrip("\n").split("\t", 1)
                src = os.path.join(EVAL_KIT, "real", name)
                dst = os.path.join(cls.tmp, name)
                subprocess.run(["sox", src, "-r", "8000", "-c", "1", "-e", "u-law", dst,
                                "sinc", "300-3400"], check=True, capture_output=True,
                               env={**os.environ, "SOX_OPTS": "-R"})
                cls.refs[dst] = text.split()
        cls.wide = os.path.join(EVAL_KIT, "real", "librivox-0880.wav")
        cls.no_adapt = os.path.join(cls.tmp, "no-adapt.conf")
        with open(cls.no_adapt, "w") as f:
            f.write("screening = { phone_adapt = false; };\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def errors(self, *args):
        r = run("check", "--json", *args, *sorted(self.refs))
        self.assertIn(r.returncode, (0, 1), r.stderr)
        errs = words = 0
        for o in json_lines(r.stdout):
            ref, hyp = self.refs[o["file"]], o["transcript"]["text"].split()
            errs, words = errs + wer.edits(ref, hyp), words + len(ref)
        return errs / words

    def test_telephone_transform_lowers_word_errors_on_real_speech(self):
        # real readers the transform never heard, through G.711 u-law
        on, off = self.errors("--no-config"), self.errors("--config", self.no_adapt)
        self.assertLess(on, off, f"WER with the transform {on:.3f}, without {off:.3f}")

    def test_wideband_audio_after_telephone_audio_is_decoded_as_alone(self):
        alone = json_lines(run("check", "--no-config", "--json", self.wide).stdout)
        after = json_lines(run("check", "--no-config", "--json", sorted(self.refs)[0],
                               self.wide).stdout)
        self.assertEqual(alone[0]["transcript"], after[1]["transcript"])
        off = json_lines(run("check", "--config", self.no_adapt, "--json", self.wide).stdout)
        self.assertEqual(alone[0]["transcript"], off[0]["transcript"])

    def test_missing_transform_is_a_clear_error(self):
        models = os.path.join(self.tmp, "models")
        shutil.copytree(os.path.join(ROOT, "models"), models, symlinks=True,
                        ignore=shutil.ignore_patterns("corpus", "phone.mllr"))
        e = env()
        e["VMSCREEN_MODELS"] = models
        r = subprocess.run([VMSCREEN, "check", "--no-config", self.wide], capture_output=True,
                           text=True, env=e, timeout=300)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("phone.mllr", r.stderr)
        self.assertIn("telephone transform", r.stderr)


class AttackRound4Test(unittest.TestCase):
    """Issue 18, attack rounds 4-6: containers whose length nothing checks,
    media behind raw extensions, recordings too quiet to screen, damaged
    FLAC frames, and a configuration another account can write."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vms-r4-")
        os.chmod(self.tmp, 0o700)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_au_and_aiff_are_held_not_screened(self):
        # round 4 #37: a Sun .au declaring 9.6 s played 16.9 s; libsndfile
        # stops where the header says, a player does not
        files = []
        for ext in ("au", "aiff"):
            path = os.path.join(self.tmp, "clip." + ext)
            subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", path, "synth",
                            "1", "sine", "440"], check=True, capture_output=True)
            with open(path, "ab") as f:
                f.write(os.urandom(16000))  # unscreened bytes past the declared audio
            files.append(path)
        r = run("check", "--no-config", "--json", *files)
        self.assertEqual(r.returncode, 1, r.stderr)
        for o in json_lines(r.stdout):
            self.assertEqual(o["verdict"], "hold")
            self.assertEqual(o["alerts"][0]["type"], "unscreenable")
            self.assertIn("is not accepted", o["alerts"][0]["evidence"])

    def test_media_renamed_to_a_raw_extension_is_held(self):
        # round 5 #26-29: AAC, MP4, Matroska and WavPack named .sln, .ulaw or
        # .gsm were screened as noise and played as speech; raw telephone
        # audio itself still passes
        adts = bytes([0xFF, 0xF1, 0x60, 0x40, 0x20, 0x1F, 0xFC])  # AAC LC, 16 kHz, mono
        heads = {"wavpack.sln": b"wvpk" + bytes([0x20, 0, 0, 0, 0x10, 4]),
                 "m4a.ulaw": b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isommp42",
                 "mkv.alaw": bytes([0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01,
                                    0x42, 0x82, 0x88]) + b"matroska",
                 "aac.gsm": (adts + bytes(505)) * 16}
        files = []
        for name, head in heads.items():
            path = os.path.join(self.tmp, name)
            with open(path, "wb") as f:
                f.write(head + bytes(range(256)) * 64)
            files.append(path)
        raw = os.path.join(self.tmp, "speech.ulaw")
        subprocess.run(["sox", os.path.join(EVAL_KIT, "real", "librivox-0880.wav"), "-r", "8000",
                        "-c", "1", "-e", "u-law", "-t", "raw", raw], check=True)
        r = run("check", "--no-config", "--json", *files, raw)
        res = {os.path.basename(o["file"]): o for o in json_lines(r.stdout)}
        for name in heads:
            self.assertEqual(res[name]["verdict"], "hold", name)
            self.assertIn("content disagrees with name", res[name]["alerts"][0]["evidence"])
        self.assertNotIn("unscreenable", [a["type"] for a in res["speech.ulaw"]["alerts"]])

    def test_a_damaged_flac_frame_is_held(self):
        # round 6 #52-53: a frame failing its CRC was silence to the screen,
        # while ffmpeg (which ignores FLAC CRCs) played it nearly intact
        good = os.path.join(self.tmp, "good.flac")
        subprocess.run(["sox", os.path.join(EVAL_KIT, "real", "librivox-0870.wav"), good],
                       check=True, capture_output=True)
        with open(good, "rb") as f:
            data = bytearray(f.read())
        data[len(data) // 2] ^= 0x10
        bad = os.path.join(self.tmp, "bad.flac")
        with open(bad, "wb") as f:
            f.write(data)
        res = {os.path.basename(o["file"]): o for o in json_lines(
            run("check", "--no-config", "--json", good, bad).stdout)}
        self.assertNotIn("unscreenable", [a["type"] for a in res["good.flac"]["alerts"]])
        self.assertEqual(res["bad.flac"]["verdict"], "hold")
        self.assertIn("damaged FLAC", res["bad.flac"]["alerts"][0]["evidence"])

    def test_a_recording_too_quiet_to_screen_is_held(self):
        # round 5 #20 and #21: a message at -40 dBFS (or a FLAC at -40 dB with
        # a ReplayGain tag of +40 dB) passed with an empty transcript
        src = os.path.join(EVAL_KIT, "real", "librivox-0880.wav")
        files = {}
        for name, fx in (("quiet.wav", ["vol", "-40dB"]), ("soft.wav", ["vol", "-15dB"]),
                         ("silence.wav", None)):
            path = files[name] = os.path.join(self.tmp, name)
            cmd = (["sox", src, path] + fx if fx else
                   ["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", path, "trim", "0", "2"])
            subprocess.run(cmd, check=True, capture_output=True)
        r = run("check", "--no-config", "--json", *files.values())
        res = {os.path.basename(o["file"]): o for o in json_lines(r.stdout)}
        self.assertEqual(res["quiet.wav"]["verdict"], "hold")
        self.assertIn("too quiet to screen", res["quiet.wav"]["alerts"][0]["evidence"])
        self.assertNotIn("unscreenable", [a["type"] for a in res["soft.wav"]["alerts"]])
        self.assertEqual(res["silence.wav"]["verdict"], "pass", res["silence.wav"]["alerts"])

    @unittest.skipUnless(os.geteuid() == 0, "needs root to give a file to another account")
    def test_configuration_others_can_write_is_refused(self):
        # round 4 #24: an @include owned by another account, a 0666 file
        conf = os.path.join(self.tmp, "vmscreend.conf")
        inc = os.path.join(self.tmp, "screening.conf")
        with open(inc, "w") as f:
            f.write('screening = { hold_severity = "medium"; };\n')
        with open(conf, "w") as f:
            f.write('@include "screening.conf"\n')
        os.chmod(conf, 0o640)
        os.chmod(inc, 0o640)
        r = run("check", "--config", conf, "--text", "-", input_text="hello\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        os.chown(inc, 65534, -1)
        r = run("check", "--config", conf, "--text", "-", input_text="hello\n")
        self.assertEqual(r.returncode, 2)
        self.assertIn("screening.conf: configuration: it belongs to uid 65534", r.stderr)
        os.chown(inc, 0, -1)
        os.chmod(conf, 0o666)
        r = run("check", "--config", conf, "--text", "-", input_text="hello\n")
        self.assertEqual(r.returncode, 2)
        self.assertIn("every account can write it", r.stderr)


class DecisionInputsTest(unittest.TestCase):
    """Issue 17: every phrasing finding says what decided its severity."""

    def test_findings_carry_their_inputs(self):
        r = run("check", "--no-config", "--json", "--text", "-",
                input_text="you are a complete idiot and i do not care\n")
        self.assertEqual(r.returncode, 1, r.stderr)
        alerts = json_lines(r.stdout)[0]["alerts"]
        self.assertTrue(alerts)
        for a in alerts:
            self.assertIn("word_confidence", a)
            self.assertTrue(a["basis"].startswith(("rule:", "learned:")), a)
        learned = [a for a in alerts if a["rule"].startswith("learned.")]
        for a in learned:
            self.assertIn("score", a)

    def test_a_number_read_out_is_no_survey_score(self):
        r = run("check", "--no-config", "--json", "--text", "-", input_text=(
            "please call me back on five five five nine zero one two thanks\n"
            "remember a nine counts as a zero for me on the survey\n"))
        res = json_lines(r.stdout)
        self.assertEqual(res[0]["verdict"], "pass", res[0]["alerts"])
        self.assertEqual(res[1]["verdict"], "hold")

    def test_learned_sure_settings_are_checked(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("screening = { learned_sure = 1.5; };\n")
        try:
            r = run("check", "--config", f.name, "--text", "-", input_text="hello\n")
            self.assertEqual(r.returncode, 2)
            self.assertIn("learned_sure", r.stderr)
        finally:
            os.unlink(f.name)


class RulesTest(unittest.TestCase):
    def test_rules_test_hostility(self):
        r = run("rules", "--test", "shut up and listen")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertTrue(any(l.split("\t")[0] == "hostility" for l in r.stdout.splitlines()),
                        r.stdout)

    def test_rules_test_clean(self):
        r = run("rules", "--test", "your order ships monday")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "")

    def test_rules_lint(self):
        r = run("rules", "--lint")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("load cleanly", r.stdout)


if __name__ == "__main__":
    unittest.main()
