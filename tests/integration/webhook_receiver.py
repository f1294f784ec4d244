#!/usr/bin/env python3
"""A real webhook receiver on 127.0.0.1 for the vmscreen webhook tests.

Python 3 standard library only.  It verifies every request's Standard
Webhooks signature independently of the C code (hmac + hashlib here,
OpenSSL there), records what arrived, and can be told to misbehave:

    r = Receiver(key)            # key: HMAC key bytes, or None (unsigned)
    r.start()                    # ephemeral port, r.url
    r.script(500, 500)           # answer the next two requests with 500
    r.script((429, 2))           # next: 429 with Retry-After: 2
    r.always = 404               # answer everything 404 until reset
    r.hang_s = 10                # sleep before answering (slow endpoint)
    r.stop(); r.start()          # outage, then recovery on the same port

Run by hand: webhook_receiver.py --secret-file FILE [--port N]
"""
import argparse
import base64
import hashlib
import hmac
import http.server
import json
import sys
import threading
import time

TOLERANCE_S = 300


def key_from_secret(text: bytes) -> bytes:
    """The same rule as src/alert: whsec_<base64> is decoded, anything else
    is the raw bytes; one trailing newline is not part of the key."""
    if text.endswith(b"\n"):
        text = text[:-1]
    if text.endswith(b"\r"):
        text = text[:-1]
    if text.startswith(b"whsec_"):
        return base64.b64decode(text[6:], validate=True)
    return text


def verify(key: bytes, headers, body: bytes, now=None) -> str:
    """Returns "" if the request is authentic, else the reason."""
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sigs = headers.get("webhook-signature")
    if not msg_id or not ts or not sigs:
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        ts_i = int(ts)
    except ValueError:
        return "bad timestamp"
    now = time.time() if now is None else now
    if abs(now - ts_i) > TOLERANCE_S:
        return "timestamp outside tolerance"
    signed = msg_id.encode() + b"." + ts.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for sig in sigs.split(" "):
        version, _, value = sig.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return ""
    return "signature mismatch"


class Receiver:
    def __init__(self, key, port=0):
        self.key = key
        self.port = port
        self.lock = threading.Lock()
        self.requests = []  # every request: dict(t, id, headers, body, status, bad)
        self.queue = []  # scripted answers: int status or (status, retry_after)
        self.always = None
        self.hang_s = 0
        self.server = None
        self.thread = None

    @property
    def url(self):
        return "http://127.0.0.1:%d/hook" % self.port

    def script(self, *answers):
        with self.lock:
            self.queue.extend(answers)

    def start(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                if receiver.hang_s:
                    time.sleep(receiver.hang_s)
                bad = verify(receiver.key, hdrs, body) if receiver.key is not None else ""
                with receiver.lock:
                    if bad:
                        answer = 401
                    elif receiver.queue:
                        answer = receiver.queue.pop(0)
                    elif receiver.always is not None:
                        answer = receiver.always
                    else:
                        answer = 200
                    status, retry_after = answer if isinstance(answer, tuple) else (answer, None)
                    receiver.requests.append(
                        dict(t=time.time(), id=hdrs.get("webhook-id"), headers=hdrs,
                             body=body, status=status, bad=bad))
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", str(retry_after))
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        """Goes down: connections are refused until start() again."""
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def delivered(self):
        """Requests answered 2xx with a valid signature."""
        with self.lock:
            return [r for r in self.requests if 200 <= r["status"] < 300 and not r["bad"]]

    def delivered_ids(self):
        return {r["id"] for r in self.delivered()}

    def wait(self, pred, timeout):
        """Polls until pred(self) is true or timeout; returns its last value."""
        end = time.time() + timeout
        while True:
            v = pred(self)
            if v or time.time() >= end:
                return v
            time.sleep(0.02)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--secret-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    with open(args.secret_file, "rb") as f:
        r = Receiver(key_from_secret(f.read()), args.port).start()
    print("listening on", r.url, flush=True)
    seen = 0
    try:
        while True:
            time.sleep(0.2)
            with r.lock:
                new = r.requests[seen:]
                seen = len(r.requests)
            for q in new:
                print(q["status"], q["id"], q["bad"] or "signature ok",
                      json.loads(q["body"]).get("type"), flush=True)
    except KeyboardInterrupt:
        r.stop()


if __name__ == "__main__":
    sys.exit(main())
