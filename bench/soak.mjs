// Mixed steady load for bench/soak.sh (node 20, --experimental-websocket). Runs until killed
// or for SOAK_SECONDS: writers (creates, patches, deletes; the live set stays near a bound),
// subscribers (WebSocket subscriptions + live queries, and SSE streams) that reconnect every
// 5-30 s, task submitters that poll to the end, and list readers. Prints one status line a
// minute on stdout (counts since start, errors).
//   node --experimental-websocket bench/soak.mjs <port> <token>
const [port, token] = process.argv.slice(2);
const base = `http://127.0.0.1:${port}`;
const seconds = Number(process.env.SOAK_SECONDS || 0);
const writers = Number(process.env.SOAK_WRITERS || 4);
const subscribers = Number(process.env.SOAK_SUBSCRIBERS || 30);
const taskers = Number(process.env.SOAK_TASKERS || 2);
const readers = Number(process.env.SOAK_READERS || 2);
const liveBound = Number(process.env.SOAK_LIVE || 2000);
const pause = Number(process.env.SOAK_PAUSE_MS || 0);  // between a writer's requests (0: flat out)
const stats = { create: 0, patch: 0, delete: 0, tasks: 0, lists: 0, events: 0, diffs: 0, reconnects: 0, errors: 0 };
const brands = ["Ford", "Opel", "Fiat", "Kia", "Audi"];
const colors = ["Blue", "Red", "Black"];
let stopping = false;
const pick = (a) => a[Math.floor(Math.random() * a.length)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const auth = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
const live = [];
let lastError = "";

async function req(method, path, body, headers = {}) {
  const r = await fetch(base + path, { method, headers: { ...auth, ...headers }, body: body && JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}
function err(e) { stats.errors++; lastError = String(e).slice(0, 200); }

async function writer() {
  while (!stopping) {
    try {
      const roll = Math.random();
      if (live.length > liveBound || (roll < 0.2 && live.length > 50)) {
        const id = live.splice(Math.floor(Math.random() * live.length), 1)[0];
        const r = await req("DELETE", `/api/cars/${id}`);
        if (r.status !== 204) throw new Error(`delete ${r.status}`);
        stats.delete++;
      } else if (roll < 0.55 && live.length) {
        const r = await req("PATCH", `/api/cars/${pick(live)}`, { color: pick(colors), model: 1990 + Math.floor(Math.random() * 30) });
        if (r.status !== 200 && r.status !== 404) throw new Error(`patch ${r.status}`);
        stats.patch++;
      } else {
        const r = await req("POST", "/api/cars", { brand: pick(brands), model: 1990 + Math.floor(Math.random() * 30), color: pick(colors), make: "x".repeat(Math.floor(Math.random() * 200)) });
        if (r.status !== 201) throw new Error(`create ${r.status}`);
        live.push(r.body.id);
        stats.create++;
      }
    } catch (e) { err(e); await sleep(200); }
    if (pause) await sleep(pause);
  }
}

async function tasker() {
  while (!stopping) {
    try {
      const r = await req("GET", `/api/double?foo=${Math.floor(Math.random() * 1000)}`);
      if (r.status !== 202) throw new Error(`submit ${r.status}`);
      for (let i = 0; i < 100; i++) {
        const t = await req("GET", `/api/tasks/${r.body.id}`, undefined, { Prefer: "wait=5" });
        if (["succeeded", "failed", "cancelled"].includes(t.body && t.body.state)) break;
      }
      stats.tasks++;
    } catch (e) { err(e); await sleep(200); }
  }
}

async function reader() {
  while (!stopping) {
    try {
      const r = await fetch(`${base}/api/cars?brand=${pick(brands)}&ordering=-model&limit=20`);
      await r.text();
      if (r.status !== 200) throw new Error(`list ${r.status}`);
      stats.lists++;
      await sleep(20);
    } catch (e) { err(e); await sleep(200); }
  }
}

function wsSession() {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    let rid = 0;
    const timer = setTimeout(() => ws.close(), 5000 + Math.random() * 25000);
    ws.onopen = () => {
      ws.send(JSON.stringify({ stream: "cars", payload: { action: "subscribe", data: Math.random() < 0.5 ? {} : { filter: { brand: pick(brands) } }, request_id: ++rid } }));
      ws.send(JSON.stringify({ stream: "cars", payload: { action: "observe", data: { filter: { brand: pick(brands) }, ordering: "-model", limit: 10 }, request_id: ++rid } }));
    };
    ws.onmessage = (m) => {
      const p = JSON.parse(m.data).payload || {};
      if (p.action === "observe" && p.observer && p.data && p.data.msg) stats.diffs++;
      else if (p.seq && p.subscription) stats.events++;
      else if (p.response_status >= 400) err(`ws ${p.response_status} ${JSON.stringify(p.errors)}`);
    };
    ws.onerror = () => {};
    ws.onclose = () => { clearTimeout(timer); resolve(); };
  });
}

async function sseSession() {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 5000 + Math.random() * 25000);
  try {
    const r = await fetch(`${base}/api/cars/events?brand=${pick(brands)}`, { signal: ac.signal });
    const dec = new TextDecoder();
    for await (const chunk of r.body) stats.events += (dec.decode(chunk).match(/^id: /gm) || []).length;
  } catch (e) { if (e.name !== "AbortError") err(e); }
  clearTimeout(timer);
}

async function subscriber(i) {
  while (!stopping) {
    try { await (i % 5 === 4 ? sseSession() : wsSession()); } catch (e) { err(e); }
    stats.reconnects++;
    await sleep(100);
  }
}

const started = Date.now();
const all = [];
for (let i = 0; i < writers; i++) all.push(writer());
for (let i = 0; i < taskers; i++) all.push(tasker());
for (let i = 0; i < readers; i++) all.push(reader());
for (let i = 0; i < subscribers; i++) all.push(subscriber(i));
const report = setInterval(() => {
  const min = ((Date.now() - started) / 60000).toFixed(1);
  console.log(`t=${min}min ${Object.entries(stats).map(([k, v]) => `${k}=${v}`).join(" ")} live=${live.length}${lastError ? " last_error=" + lastError : ""}`);
  lastError = "";
}, 60000);
if (seconds) setTimeout(() => { stopping = true; clearInterval(report); setTimeout(() => process.exit(0), 31000); }, seconds * 1000);
process.on("SIGTERM", () => process.exit(0));
await Promise.all(all);
