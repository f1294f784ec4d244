#!/usr/bin/env python3
"""make bench-cluster (issue 13): throughput of cluster mode with 1, 2 and 3
nodes of one worker each on one spool, through a real redis-server on
127.0.0.1, beside a single daemon (not in cluster mode) with one worker.

Each run stages VMS_BENCH_FILES one-second clips (clean and flagged) as
dotfiles, renames them into incoming/ at once, and times from the rename to
the last file placed: audio seconds per wall second, settle time and
claiming included.  Prints one line per configuration.
"""
import os
import shutil
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from daemon_harness import Daemon, cleanup_clips, clip  # noqa: E402
from cluster_harness import Node, Redis  # noqa: E402

FILES = int(os.environ.get("VMS_BENCH_FILES", "150"))
FINAL = ("released", "hold", "rejected")


def run(nodes):
    """Seconds to screen FILES one-second files on these started nodes."""
    first = nodes[0]
    inc = os.path.join(first.spool_path(), "incoming")
    names = ["b%03d.wav" % i for i in range(FILES)]
    for i, n in enumerate(names):
        shutil.copyfile(clip("flagged_1s" if i % 4 == 0 else "clean_1s"),
                        os.path.join(inc, ".stage." + n))
    t0 = time.time()
    for n in names:
        os.rename(os.path.join(inc, ".stage." + n), os.path.join(inc, n))
    first.wait_done(names, timeout=1800)
    return time.time() - t0


def bench_single():
    d = Daemon(workers=1)
    try:
        d.start()
        return run([d])
    finally:
        d.close()


def bench_cluster(n):
    redis = Redis().start()
    nodes = []
    try:
        for i in range(n):
            nodes.append(Node("vm%d" % (i + 1), redis, base=nodes[0] if nodes else None))
        for x in nodes:
            x.start()
        return run(nodes)
    finally:
        for x in reversed(nodes):
            x.close()
        redis.stop()
        shutil.rmtree(redis.dir, ignore_errors=True)


def main():
    cores = os.cpu_count()
    print("== cluster: %d one-second files, one worker per node, %d cores" % (FILES, cores))
    wall = bench_single()
    print("  single daemon (no cluster), 1 worker: %6.1f s  %5.2f audio s per wall s" %
          (wall, FILES / wall))
    base = None
    for n in (1, 2, 3):
        wall = bench_cluster(n)
        base = base or wall
        print("  cluster, %d node%s x 1 worker:        %6.1f s  %5.2f audio s per wall s  "
              "(x%.2f of 1 node)" % (n, " " if n == 1 else "s", wall, FILES / wall,
                                     base / wall))
    cleanup_clips()


if __name__ == "__main__":
    main()
