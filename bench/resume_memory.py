#!/usr/bin/env python3
"""Server memory and other clients' event latency while one client resumes over a long history.

Starts `livebase serve` on a fresh SQLite database, writes RECORDS records of SIZE bytes, then
connects a live WebSocket client (subscribed to a small `pings` collection that a writer
touches every 20 ms) and a resuming client that subscribes to `docs` with since=0 and reads
everything. Prints the server's RSS before and at its peak during the resume (VmRSS sampled
every 20 ms, and VmHWM), the resume's duration, and the live client's event latency (commit
POST sent -> event read) during the resume. Loopback only; bounded in time.

    bench/resume_memory.py path/to/livebase_cli [--records 20000] [--size 4096] [--slow]

--slow: the resuming client reads 64 KiB at a time with pauses (a slow reader).
"""
import argparse, base64, http.client, json, os, socket, struct, subprocess, sys, tempfile, threading, time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class ws:
    """The smallest WebSocket client that does: text frames out (masked), frames in."""

    def __init__(self, port, rcvbuf=0):
        self.s = socket.socket()
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.s.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert b" 101 " in head.split(b"\r\n")[0], head
        self.recv()  # hello

    def send(self, obj):
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
        self.s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _need(self, n, chunk):
        while len(self.buf) < n:
            d = self.s.recv(chunk)
            if not d:
                raise EOFError
            self.buf += d

    def recv(self, chunk=1 << 20):
        self._need(2, chunk)
        op, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
        at = 2
        if n == 126:
            self._need(4, chunk)
            n, at = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10, chunk)
            n, at = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(at + n, chunk)
        payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
        if op == 8:
            raise EOFError("closed %r" % payload[:40])
        return json.loads(payload) if op == 1 else None


def rss(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                k, v = line.split(":")
                out[k] = int(v.split()[0]) // 1024
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--slow", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="resume-memory-")
    port = free_port()
    with open(os.path.join(tmp, "livebase.toml"), "w") as f:
        f.write('[server]\nlisten = "127.0.0.1:%d"\n[storage]\nurl = "sqlite:%s/db.sqlite"\n'
                '[auth]\nthrottle.anonymous = "unlimited"\n[collections.docs]\nfields.body = { type = "text" }\nrules.create = "public"\n'
                '[collections.pings]\nfields.t = { type = "number" }\nrules.create = "public"\n' % (port, tmp))
    srv = subprocess.Popen([a.binary, "serve", "-c", os.path.join(tmp, "livebase.toml"), "--log-level", "warn"],
                           stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "server.log"), "w"))
    try:
        for _ in range(300):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                c.request("GET", "/api/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        else:
            sys.exit("the server did not start; see " + os.path.join(tmp, "server.log"))
        body = "x" * a.size

        def seed(lo, hi):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for i in range(lo, hi):
                c.request("POST", "/api/docs", json.dumps({"body": body}), {"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                assert r.status == 201, r.status

        t0 = time.time()
        step = (a.records + 3) // 4
        ts = [threading.Thread(target=seed, args=(i, min(a.records, i + step))) for i in range(0, a.records, step)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        print("seeded %d records of %d B in %.1f s" % (a.records, a.size, time.time() - t0))
        time.sleep(1)
        before = rss(srv.pid)

        live = ws(port)
        live.send({"stream": "pings", "payload": {"action": "subscribe", "request_id": 1}})
        live.recv()
        lat, stop = [], threading.Event()

        def writer():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            deadline = time.time() + 600
            while not stop.is_set() and time.time() < deadline:
                c.request("POST", "/api/pings", json.dumps({"t": time.time()}), {"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                time.sleep(0.02)

        def reader():
            while not stop.is_set():
                try:
                    e = live.recv()
                except (EOFError, OSError):
                    return
                if e and e["payload"].get("action") == "create":
                    t, now = e["payload"]["data"]["t"], time.time()
                    lat.append((t, now - t, now))

        live.s.settimeout(1.0)
        peak = dict(before)

        def sampler():
            while not stop.is_set():
                r = rss(srv.pid)
                peak["VmRSS"] = max(peak["VmRSS"], r["VmRSS"])
                time.sleep(0.02)

        threads = [threading.Thread(target=f) for f in (writer, reader, sampler)]
        [t.start() for t in threads]
        time.sleep(1)

        res = ws(port, rcvbuf=65536 if a.slow else 0)
        t0 = time.time()
        res.send({"stream": "docs", "payload": {"action": "subscribe", "data": {"since": 0}, "request_id": 2}})
        got = 0
        while got < a.records:
            e = res.recv(65536 if a.slow else 1 << 20)
            if e and "seq" in e.get("payload", {}):
                got += 1
                if a.slow and got % 200 == 0:
                    time.sleep(0.01)
        t1 = time.time()
        took = t1 - t0
        time.sleep(2)  # events of pings posted during the resume that are still on their way
        stop.set()
        [t.join() for t in threads]
        after = rss(srv.pid)

        # A ping posted just before the resume whose event waits behind it counts as during.
        lat_before = [d for t, d, _ in lat if t < t0 - 0.5]
        lat_during = [d for t, d, _ in lat if t0 - 0.5 <= t <= t1]
        # The writer posts a ping every 20 ms: the longest silence at the live client while the
        # resume ran shows a stall anywhere on the way (the write itself included).
        arrivals = [t0] + [now for _, _, now in lat if t0 <= now <= t1] + [t1]
        gap = max(b - a for a, b in zip(arrivals, arrivals[1:]))

        def pct(v, p):
            v = sorted(v)
            return v[min(len(v) - 1, int(len(v) * p))] * 1000 if v else float("nan")

        print("server RSS before the resume: %d MB; peak during it: %d MB (VmHWM %d MB); after: %d MB"
              % (before["VmRSS"], peak["VmRSS"], after["VmHWM"], after["VmRSS"]))
        print("resume of %d events took %.2f s" % (got, took))
        print("longest silence at the live client during the resume: %.0f ms" % (gap * 1000))
        print("live event latency before: p50 %.1f ms, max %.1f ms (%d events)"
              % (pct(lat_before, 0.5), pct(lat_before, 1.0), len(lat_before)))
        print("live event latency from 0.5 s before the resume to its end: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d events)"
              % (pct(lat_during, 0.5), pct(lat_during, 0.99), pct(lat_during, 1.0), len(lat_during)))
    finally:
        srv.terminate()
        srv.wait(timeout=30)


if __name__ == "__main__":
    main()
