#!/usr/bin/env python3
"""kill -9 chaos for the cars example (driven by bench/chaos.sh; stdlib only).

Runs the server, kills it with SIGKILL after a random 2-6 s of load, restarts it, CYCLES times,
while clients keep going across the restarts:
  writers      creates, patches and deletes of their own cars; an acknowledged (2xx) write is
               booked, a write that got no answer makes its car "uncertain" (not checked)
  subscribers  SSE streams of /api/cars/events from seq 0, resumed with Last-Event-ID after
               every restart; they record every event's seq
  tasks        GET /api/double?foo=N submissions (202 booked) polled to their end
Then one last run checks the books:
  - every acknowledged create is present with at least its acknowledged version, every
    acknowledged delete is gone
  - every subscriber received exactly the change log's cars events (a reference stream read from
    seq 0 at the end): no loss, no duplicate, in order
  - every acknowledged task is final (succeeded, result 2N), and stays so
Each server's stderr goes to <work>/server-<cycle>.log; how each process ended is reported (a
SIGKILL we sent is expected; anything else is a violation: a crash is never silent).
Exit status 1 on any violation.
"""
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

PORT = int(os.environ["CHAOS_PORT"])
TOKEN = os.environ["CHAOS_TOKEN_FILE"]
BINARY = os.environ["CHAOS_BINARY"]
WORK = os.environ["CHAOS_WORK"]
CYCLES = int(sys.argv[1]) if len(sys.argv) > 1 else 5
WRITERS = int(os.environ.get("CHAOS_WRITERS", "4"))
SUBSCRIBERS = int(os.environ.get("CHAOS_SUBSCRIBERS", "4"))
TASKERS = int(os.environ.get("CHAOS_TASKERS", "2"))

violations = []
vlock = threading.Lock()


def violation(msg):
    with vlock:
        violations.append(msg)
    print("VIOLATION:", msg, flush=True)


class Down(Exception):
    pass


def request(method, path, body=None, headers=None, timeout=10):
    """One request on a fresh connection; raises Down when the server is not there."""
    h = {"Authorization": "Bearer " + token}
    if body is not None:
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    try:
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
    except (OSError, http.client.HTTPException) as e:
        raise Down(str(e))
    return r.status, (json.loads(data) if data else None)


# ---- server lifecycle -------------------------------------------------------------------------
up = threading.Event()      # set while a server is expected to answer
stopping = threading.Event()  # the load stops (final check)
servers = []                # (cycle, how it ended)


def start_server(cycle):
    log = open(os.path.join(WORK, f"server-{cycle}.log"), "wb")
    p = subprocess.Popen([BINARY, "serve", "--log-level", "warn"], stderr=log, stdout=log)
    for _ in range(300):
        if p.poll() is not None:
            break
        try:
            if request("GET", "/api/health", timeout=1)[0] == 200:
                up.set()
                return p
        except Down:
            pass
        time.sleep(0.05)
    violation(f"server of cycle {cycle} did not start (exit {p.poll()}); see server-{cycle}.log")
    return p


def ended(p, cycle, expected):
    rc = p.wait()
    how = f"signal {-rc} ({signal.Signals(-rc).name})" if rc < 0 else f"exit {rc}"
    servers.append((cycle, how))
    if how != expected:
        violation(f"server of cycle {cycle} ended with {how}, expected {expected}; see server-{cycle}.log")


# ---- writers ----------------------------------------------------------------------------------
cars = {}          # id -> {"version": acked version, "deleted": bool}
uncertain = set()  # ids with an unanswered write
keys_created = {}  # Idempotency-Key -> car id (acknowledged creates)
unanswered_keys = []  # keys of creates that got no answer: retried after the restart
books = threading.Lock()
stats = {"key_retries": 0, "create": 0, "patch": 0, "delete": 0, "unanswered": 0, "tasks": 0, "events": 0, "resumes": 0}


def keyed_create(key, model):
    """A create with an Idempotency-Key; raises Down. A key in flight at a kill is retried with
    the same key after the restart: the replay or a fresh 201, never 409, and one car per key."""
    s, b = request("POST", "/api/cars", {"brand": "Chaos", "model": model, "make": key},
                   headers={"Idempotency-Key": key})
    if s != 201:
        violation(f"create ({key}): {s} {b}")
        return None
    with books:
        cars[b["id"]] = {"version": b["version"], "deleted": False}
        keys_created[key] = b["id"]
        stats["create"] += 1
    return b["id"]


def writer(n):
    mine = []
    while not stopping.is_set():
        if not up.wait(0.5):
            continue
        roll = random.random()
        cid = key = None
        model = 2000 + n
        try:
            with books:
                key, model = unanswered_keys.pop() if unanswered_keys else (None, 2000 + n)
            if key:
                stats["key_retries"] += 1
                if (cid := keyed_create(key, model)):
                    mine.append(cid)
                cid = None
            elif mine and roll < 0.35:
                cid = random.choice(mine)
                s, b = request("PATCH", f"/api/cars/{cid}", {"color": random.choice(["Red", "Blue", "Black"])})
                if s != 200:
                    violation(f"patch {cid}: {s} {b}")
                    continue
                with books:
                    cars[cid]["version"] = b["version"]
                    stats["patch"] += 1
            elif mine and roll < 0.5:
                cid = mine.pop(random.randrange(len(mine)))
                s, b = request("DELETE", f"/api/cars/{cid}")
                if s != 204:
                    violation(f"delete {cid}: {s} {b}")
                    continue
                with books:
                    cars[cid]["deleted"] = True
                    stats["delete"] += 1
            else:
                key = f"w{n}-{random.getrandbits(64):016x}"
                if (cid := keyed_create(key, model)):
                    mine.append(cid)
                cid = None
        except Down:
            up.clear()
            with books:
                stats["unanswered"] += 1
                if key:
                    unanswered_keys.append((key, model))
                if cid:
                    uncertain.add(cid)
                    if cid in mine:
                        mine.remove(cid)


# ---- subscribers (SSE, resumed with Last-Event-ID) ---------------------------------------------
def read_stream(last, on_event, until=None):
    """Reads /api/cars/events from `last`; returns the last seq seen when the stream ends."""
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
    c.request("GET", "/api/cars/events", headers={"Last-Event-ID": str(last), "Authorization": "Bearer " + token})
    r = c.getresponse()
    if r.status != 200:
        raise Down(f"events: {r.status} {r.read()[:200]}")
    ev_id = None
    while True:
        try:
            line = r.fp.readline()
        except TimeoutError:
            if until and until():
                return last
            continue
        if not line:
            raise Down("stream ended")
        line = line.decode().rstrip("\r\n")
        if line.startswith("id: "):
            ev_id = int(line[4:])
        elif line == "" and ev_id is not None:
            on_event(ev_id)
            last = ev_id
            ev_id = None
            if until and until():
                return last


subs = []


def subscriber(n):
    seqs = []
    subs.append(seqs)
    last = 0
    while True:
        if not up.wait(0.5):
            continue
        try:
            read_stream(last, seqs.append, until=lambda: final_seq is not None and seqs and seqs[-1] >= final_seq)
            return
        except (Down, OSError, http.client.HTTPException, ValueError):
            stats["resumes"] += 1
            if seqs:
                last = seqs[-1]
            time.sleep(0.05)


final_seq = None

# ---- tasks ------------------------------------------------------------------------------------
tasks = {}  # id -> N


def tasker():
    while not stopping.is_set():
        if not up.wait(0.5):
            continue
        n = random.randrange(1000)
        try:
            s, b = request("GET", f"/api/double?foo={n}")
            if s != 202:
                violation(f"task submission: {s} {b}")
                continue
            with books:
                tasks[b["id"]] = n
                stats["tasks"] += 1
            request("GET", f"/api/tasks/{b['id']}", headers={"Prefer": "wait=2"})
        except Down:
            up.clear()
            with books:
                stats["unanswered"] += 1


# ---- main -------------------------------------------------------------------------------------
token = open(TOKEN).read().strip()
threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(WRITERS)]
threads += [threading.Thread(target=tasker, daemon=True) for _ in range(TASKERS)]
sub_threads = [threading.Thread(target=subscriber, args=(i,), daemon=True) for i in range(SUBSCRIBERS)]
started = time.time()
for cycle in range(1, CYCLES + 1):
    p = start_server(cycle)
    if cycle == 1:
        for t in threads + sub_threads:
            t.start()
    time.sleep(random.uniform(2, 6))
    up.clear()
    p.send_signal(signal.SIGKILL)
    ended(p, cycle, "signal 9 (SIGKILL)")
    print(f"cycle {cycle}: {stats}", flush=True)

stopping.set()
for t in threads:
    t.join(timeout=30)
p = start_server("final")
# A marker write: every subscriber must get up to it.
s, b = request("POST", "/api/cars", {"brand": "Marker"})
if s != 201:
    violation(f"marker create: {s} {b}")
ref = []
try:
    # The reference: the change log's cars events from the start; the marker is the last cars
    # write, so 2 s without an event after it means the log is read to its end.
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
    c.request("GET", "/api/cars/events?since=0", headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    ev_id, ev_data = None, None
    while True:
        try:
            line = r.fp.readline().decode().rstrip("\r\n")
        except TimeoutError:
            break  # nothing for 2 s after the marker: the log is read to its end
        if line.startswith("id: "):
            ev_id = int(line[4:])
        elif line.startswith("data: "):
            ev_data = line[6:]
        elif line == "" and ev_id is not None:
            ref.append(ev_id)
            if ev_data and '"Marker"' in ev_data:
                final_seq = ev_id
            ev_id = None
except (OSError, http.client.HTTPException) as e:
    violation(f"reference stream: {e}")
if final_seq is None:
    violation("the marker's event never came")
else:
    for t in sub_threads:
        t.join(timeout=60)
    for i, seqs in enumerate(subs):
        got = [s for s in seqs if s <= final_seq]
        if got != sorted(set(got)):
            violation(f"subscriber {i}: events out of order or duplicated")
        want = [s for s in ref if s <= final_seq]
        if got != want:
            missing = sorted(set(want) - set(got))[:5]
            extra = sorted(set(got) - set(want))[:5]
            violation(f"subscriber {i}: {len(got)} events, change log {len(want)}; missing {missing} extra {extra}")
        stats["events"] += len(got)

# Keys still unanswered are retried now; then exactly one car per key.
for key, model in list(unanswered_keys):
    stats["key_retries"] += 1
    keyed_create(key, model)
per_key = {}
offset = 0
while True:
    s, b = request("GET", f"/api/cars?brand=Chaos&limit=500&offset={offset}")
    for car in b["results"]:
        per_key[car["make"]] = per_key.get(car["make"], 0) + 1
    if len(b["results"]) < 500:
        break
    offset += 500
deleted_keys = {k for k, cid in keys_created.items() if cars[cid]["deleted"]}
for key, cid in keys_created.items():
    want = 0 if key in deleted_keys else 1
    if per_key.get(key, 0) != want and not (cid in uncertain and per_key.get(key, 0) <= 1):
        violation(f"key {key}: {per_key.get(key, 0)} cars, expected {want}")
for key, n in per_key.items():
    if key not in keys_created:
        violation(f"a car with key {key} that no create acknowledged")

# Acknowledged writes.
present = gone = 0
for cid, st in list(cars.items()):
    if cid in uncertain:
        continue
    s, b = request("GET", f"/api/cars/{cid}")
    if st["deleted"]:
        gone += 1
        if s != 404:
            violation(f"acknowledged delete of {cid} undone: {s}")
    else:
        present += 1
        if s != 200:
            violation(f"acknowledged car {cid} lost: {s}")
        elif b["version"] < st["version"]:
            violation(f"acknowledged version {st['version']} of {cid} lost: {b['version']}")

# Tasks: every acknowledged one final, with its result, and final once.
finals = {}
for tid, n in list(tasks.items()):
    deadline = time.time() + 60
    while time.time() < deadline:
        s, b = request("GET", f"/api/tasks/{tid}", headers={"Prefer": "wait=5"})
        if s in (200, 303) and b["state"] in ("succeeded", "failed", "cancelled"):
            break
    if s != 303 or b["state"] != "succeeded":
        violation(f"task {tid}: {s} {b and b.get('state')}")
        continue
    s2, r = request("GET", f"/api/tasks/{tid}/result")
    if r != {"result": 2 * n}:
        violation(f"task {tid}: result {r}, expected {2 * n}")
    finals[tid] = (b["state"], b.get("finished"), b.get("attempt"))
for tid, f in finals.items():
    s, b = request("GET", f"/api/tasks/{tid}")
    if (b["state"], b.get("finished"), b.get("attempt")) != f:
        violation(f"task {tid} changed after it was final: {f} -> {b['state']} {b.get('finished')}")
attempts = sorted(f[2] or 0 for f in finals.values())

p.send_signal(signal.SIGTERM)
ended(p, "final", "exit 0")
print("---- chaos summary")
print(f"cycles {CYCLES} in {time.time() - started:.0f} s; servers: " + ", ".join(f"{c}: {h}" for c, h in servers))
print(f"writes acknowledged: creates {stats['create']}, patches {stats['patch']}, deletes {stats['delete']}; "
      f"unanswered (in flight at a kill) {stats['unanswered']}; checked present {present}, gone {gone}")
print(f"keyed creates: {len(keys_created)} keys, retried after a kill {stats['key_retries']}, cars per key 1")
print(f"subscribers {len(subs)}: change log {len(ref)} cars events, received {stats['events']} in all, "
      f"resumes {stats['resumes']}")
print(f"tasks acknowledged {len(tasks)}, final {len(finals)}; runs per task: max {attempts[-1] if attempts else 0}, "
      f"more than one {sum(1 for a in attempts if a > 1)}")
print(f"violations: {len(violations)}")
sys.exit(1 if violations else 0)
