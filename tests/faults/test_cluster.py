#!/usr/bin/env python3
"""Cluster mode under faults (issue 13): three vmscreend nodes with one
worker each share one spool through a real redis-server on 127.0.0.1
(random port, no persistence).  300 one-second files; one node is killed
with SIGKILL twice (restarted after the first kill only), and Redis is
killed and restarted empty 10 s later, all during the run.

Afterwards every file is in exactly one state with one whole verdict
(check_spool of test_faults.py), each held file's alert reached the real
receiver under one webhook-id (or waits in the outbox of the node that
stayed dead), and each item the killed node had in hand was placed within
claim_idle_s plus one screening (and a second of polling) of the kill.

Run by `make check-faults`; VMS_BIN_DIR selects the build, VMS_SEED the
file mix.
"""
import calendar
import json
import os
import random
import shutil
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
from daemon_harness import DAEMON, cleanup_clips  # noqa: E402
from cluster_harness import REDIS_SERVER, Node, Redis  # noqa: E402
from test_faults import (audit_ok, check_spool, drop, outbox_entries,  # noqa: E402
                         webhook_conf, write_secret)
from webhook_receiver import Receiver  # noqa: E402

SEED = int(os.environ.get("VMS_SEED", "20261201"))
FILES = int(os.environ.get("VMS_CLUSTER_FILES", "300"))
CLAIM_IDLE_S = 5
SCREENING_S = 5.0  # one screening of a 1-s file on a loaded 2-core machine, with margin
FINAL = ("released", "hold", "rejected")


def tearDownModule():
    cleanup_clips()


def iso_epoch(s):
    """Seconds since the epoch of the daemon's ISO 8601 UTC times."""
    base, _, frac = s.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))


@unittest.skipUnless(os.path.exists(DAEMON), "vmscreend not built")
@unittest.skipUnless(os.path.exists(REDIS_SERVER), "redis-server not installed")
class ClusterFaults(unittest.TestCase):
    def setUp(self):
        self.redis = Redis().start()
        self.nodes = []
        self.rx = None

    def tearDown(self):
        for n in reversed(self.nodes):
            n.close()
        if self.rx is not None:
            self.rx.stop()
        self.redis.stop()
        shutil.rmtree(self.redis.dir, ignore_errors=True)

    def done(self, names):
        w = self.nodes[0].where()
        return sum(1 for n in names if w.get(n, ["?"])[0] in FINAL)

    def wait_done_count(self, names, count, timeout=300):
        end = time.time() + timeout
        while time.time() < end and self.done(names) < count:
            time.sleep(0.1)
        self.assertGreaterEqual(self.done(names), count, "no progress")

    def kill(self, node):
        """SIGKILL; returns (time, the files the node had in hand)."""
        node.kill9()
        t = time.time()
        return t, self.redis.pending_files("vmscreen:items", "vmscreen", node.name)

    def test_three_nodes_300_files_two_kills_and_a_redis_outage(self):
        rnd = random.Random(SEED)
        secret_dir = self.redis.dir
        secret = os.path.join(secret_dir, "hook.secret")
        key = write_secret(secret)
        self.rx = Receiver(key).start()
        self.rx.server.handle_error = lambda request, client_address: None
        hook = "max_attempts = 1000;\n" + webhook_conf(self.rx.url, secret, retry_base_s=0.2)
        a = Node("vm1", self.redis, claim_idle_s=CLAIM_IDLE_S, extra=hook)
        b = Node("vm2", self.redis, base=a, claim_idle_s=CLAIM_IDLE_S, extra=hook)
        c = Node("vm3", self.redis, base=a, claim_idle_s=CLAIM_IDLE_S, extra=hook)
        self.nodes = [a, b, c]
        for n in self.nodes:
            n.start()
        names = ["cl%03d.wav" % i for i in range(FILES)]
        kinds = {n: rnd.choice(("clean_1s", "clean_1s", "flagged_1s", "garbage")) for n in names}
        t0 = time.time()
        for i, n in enumerate(names):
            drop(a, n, kinds[n], sidecar={"seq": i} if i % 3 == 0 else None)
        # the scanner dies first (its lease must pass to another node)
        self.wait_done_count(names, FILES // 6)
        victim = next(n for n in self.nodes if n.name == self.redis.cli("GET",
                                                                         "vmscreen:scanner:vm"))
        kills = [self.kill(victim)]
        time.sleep(3)
        victim.start()
        # Redis goes away for 10 s and comes back empty
        self.wait_done_count(names, FILES * 2 // 5)
        self.redis.stop()
        outage_at = self.done(names)
        time.sleep(10)
        stalled = self.done(names) - outage_at
        self.redis.start()
        # the same node dies again, for good
        self.wait_done_count(names, FILES * 2 // 3)
        kills.append(self.kill(victim))
        live = [n for n in self.nodes if n is not victim]
        live[0].wait_done(names, timeout=600)
        wall = time.time() - t0
        # the live nodes deliver what they queued; then a clean stop
        end = time.time() + 60
        while time.time() < end and any(outbox_entries(n) for n in live):
            time.sleep(0.2)
        for n in live:
            self.assertEqual(n.stop(), 0, n.name)

        ids = check_spool(self, a, {n: "hold" if kinds[n] == "garbage" else None
                                    for n in names})
        lines = audit_ok(self, a)
        self.assertEqual({x["name"] for x in lines if x["event"] == "verdict"}, set(names))
        # alerts: one webhook-id per held item, delivered or left in the dead node's outbox
        held = {v["id"] for st, v in ids.values() if st == "hold"}
        by_item = {}
        for q in self.rx.delivered():
            by_item.setdefault(json.loads(q["body"])["data"]["id"], set()).add(q["id"])
        self.assertEqual(set(by_item) - held, set(), "alert for a file not held")
        self.assertEqual({i: s for i, s in by_item.items() if len(s) != 1}, {},
                         "an item alerted under two webhook-ids")
        left = {e["item"] for _, e in outbox_entries(victim)}
        for n in live:
            self.assertEqual(outbox_entries(n), [], n.name)
        self.assertEqual(held - set(by_item) - left, set(), "held without an alert")
        self.assertEqual([q for q in self.rx.requests if q["bad"]], [])
        # no item of a dead node waited longer than claim_idle_s plus one screening
        placed = {v["name"]: iso_epoch(v["screened_at"]) for st, v in ids.values()}
        waits = [placed[f.split("_", 1)[1]] - t for t, files in kills for f in files
                 if f.split("_", 1)[1] in placed]
        bound = CLAIM_IDLE_S + 1.0 + SCREENING_S
        self.assertTrue(all(w <= bound for w in waits), (waits, bound))
        again = sum(n.log_text().count("went quiet") for n in self.nodes)
        placed_before = sum(n.log_text().count("placed before): acked") for n in self.nodes)
        audio_s = float(FILES)
        print("\n  cluster: %d files on 3 nodes in %.0f s (%.1f audio s per wall s), "
              "2 kills of %s (in hand: %s; longest wait after a kill %.1f s, bound %.1f s), "
              "redis down 10 s (%d placed meanwhile), %d entries taken from a quiet node, "
              "%d acked as placed before, %d held, %d alerts delivered (%d requests), "
              "%d left in the dead node's outbox, %d audit verdict lines" %
              (FILES, wall, audio_s / wall, victim.name, [len(f) for _, f in kills],
               max(waits) if waits else 0.0, bound, stalled, again, placed_before,
               len(held), len(by_item), len(self.rx.requests), len(left),
               sum(1 for x in lines if x["event"] == "verdict")), file=sys.stderr)
        self.assertEqual(len(kills), 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
