// Starts the real `cars` example server for the tests: temp data dir, free port on 127.0.0.1,
// throttling off, waits for /api/health, stops it afterwards.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Livebase } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.LIVEBASE_BIN
  ? resolve(process.env.LIVEBASE_BIN)
  : resolve(here, '../../../build/test/examples/cars/cars');

export { WebSocket };

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `pred` every 20 ms until it is truthy or `ms` pass; throws with `what` on timeout. */
export async function until(pred, what = 'condition', ms = 10_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export class Server {
  constructor({ port, dir, stepMs = 400 }) {
    this.port = port;
    this.dir = dir;
    this.stepMs = stepMs;
    this.proc = null;
    this.log = '';
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(opts = {}) {
    if (!existsSync(BIN)) throw new Error(`cars binary not found at ${BIN} (set LIVEBASE_BIN)`);
    const dir = mkdtempSync(join(tmpdir(), 'lb-js-'));
    const s = new Server({ port: await freePort(), dir, ...opts });
    try {
      await s.spawn();
    } catch (e) {
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    return s;
  }

  async spawn() {
    // The server rejects unknown LIVEBASE_* variables (LIVEBASE_BIN among them).
    const env = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LIVEBASE_')) env[k] = v;
    Object.assign(env, {
      LIVEBASE_SERVER_LISTEN: `127.0.0.1:${this.port}`,
      LIVEBASE_STORAGE_URL: `sqlite:${join(this.dir, 'cars.db')}`,
      LIVEBASE_AUTH_THROTTLE_ANONYMOUS: '1000000/s',
      LIVEBASE_AUTH_THROTTLE_USER: '1000000/s',
      LIVEBASE_SERVER_SHUTDOWN_GRACE: '2s',
      CARS_STEP_MS: String(this.stepMs),
    });
    const proc = spawn(BIN, ['serve', '--log-format', 'text', '--log-level', 'warn'], { cwd: this.dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    proc.stderr.on('data', (d) => { this.log = (this.log + d.toString()).slice(-20_000); });
    let exited = null;
    proc.on('exit', (code, sig) => { exited = { code, sig }; });
    const end = Date.now() + 20_000;
    for (;;) {
      if (exited) throw new Error(`server exited (${JSON.stringify(exited)}): ${this.log}`);
      try {
        const r = await fetch(`${this.url}/api/health`);
        if (r.ok) return;
      } catch { /* not up yet */ }
      if (Date.now() > end) throw new Error(`server not healthy within 20 s: ${this.log}`);
      await sleep(50);
    }
  }

  /** Stops the process (SIGTERM, then SIGKILL after 10 s). */
  async stop(signal = 'SIGTERM') {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill(signal);
    const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
    this.proc = null;
  }

  /** Restarts on the same port and data directory. */
  async restart(signal = 'SIGTERM') {
    await this.stop(signal);
    await this.spawn();
  }

  async dispose() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  client(opts = {}) {
    return new Livebase({ url: this.url, WebSocket, reconnectMinDelay: 50, reconnectMaxDelay: 500, requestTimeout: 15_000, ...opts });
  }

  /** Registers and logs in a new user; returns a logged-in client. */
  async user(name, opts = {}) {
    const lb = this.client(opts);
    await lb.auth.register(name, 'correct horse battery');
    await lb.auth.login(name, 'correct horse battery');
    return lb;
  }
}

let counter = 0;
/** A unique VIN (the field is unique). */
export const vin = () => `VIN-${process.pid}-${Date.now()}-${++counter}`;
