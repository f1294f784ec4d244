#!/usr/bin/env python3
"""Latency of the real daemon: time from a file landing in incoming/ (an
atomic rename, as the producer contract says) to its verdict in hold/ or
released/, for a ~30 s voicemail with the daemon idle and for a burst of
100.  Also the daemon's peak RSS (VmHWM) with 2 workers.

usage: latency.py   (VMS_BIN_DIR selects the build, default build/rel)
"""
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import daemon_harness as dh  # noqa: E402

TEXT = ("Hi Mister Johnson, this is Dave from Acme Communications calling about your "
        "service installation. We expect the technician on Wednesday at ten in the "
        "morning. He will need access to the basement and to the main electrical panel, "
        "so please make sure someone over eighteen is home. If Wednesday does not work, "
        "we can also do Friday afternoon or Monday. Please call me back at five five five, "
        "one two one two, and ask for extension four. Thanks again, and have a great day.")


def render(dirname):
    raw = os.path.join(dirname, "vm30.raw.wav")
    out = os.path.join(dirname, "vm30.wav")
    subprocess.run(["flite", "-voice", "slt", "-t", TEXT, "-o", raw], check=True)
    subprocess.run(["sox", raw, "-r", "16000", "-b", "16", out, "pad", "0.5", "1"], check=True)
    dur = float(subprocess.run(["soxi", "-D", out], capture_output=True, text=True).stdout)
    return out, dur


def main():
    d = dh.Daemon(workers=2, settle_ms=200)
    src, dur = render(d.dir)
    dh._CLIPS["vm30"] = src
    d.start()
    try:
        idle = []
        for i in range(5):
            name = "idle%d.wav" % i
            t0 = time.time()
            d.drop(name, kind="vm30")
            d.wait_done([name], timeout=120)
            idle.append(time.time() - t0)
        names = ["burst%03d.wav" % i for i in range(100)]
        t0 = time.time()
        for n in names:
            d.drop(n, kind="vm30")
        done = {}
        while len(done) < len(names):
            w = d.where()
            now = time.time()
            for n in names:
                if n not in done and n in w and w[n][0] in ("released", "hold"):
                    done[n] = now - t0
            time.sleep(0.05)
        hwm = d.proc_status("VmHWM")
        burst = sorted(done.values())
        print("voicemail: %.1f s of audio; daemon: 2 workers, settle_ms 200" % dur)
        print("idle   latency: median %.2f s, worst %.2f s (5 files, one at a time)" %
              (statistics.median(idle), max(idle)))
        print("burst  latency: median %.2f s, worst %.2f s (100 files at once; "
              "throughput %.1f audio-s per s)" %
              (statistics.median(burst), burst[-1], 100 * dur / burst[-1]))
        print("daemon peak RSS (VmHWM): %.0f MB" % (hwm / 1024.0))
        print("target    %-44s %s" % ("daemon peak RSS <= 150 MB, 2 workers (%.0f MB)"
                                      % (hwm / 1024.0), "met" if hwm <= 150 * 1024 else "MISSED"))
    finally:
        d.stop()
        d.close()
        dh.cleanup_clips()


if __name__ == "__main__":
    main()
