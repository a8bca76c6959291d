// Helpers shared by our re-implementation of the official Engine.IO v4 / Socket.IO v5
// protocol test suites (socket.io repo, docs/*-protocol/*-test-suite), run with `node --test`.
import WebSocket from "ws";

export const BASE = process.env.SERVER_URL;
if (!BASE) throw new Error("SERVER_URL is not set");
export const WS_BASE = BASE.replace(/^http/, "ws");
export const PING_INTERVAL = 300;
export const PING_TIMEOUT = 200;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A WebSocket whose open/close/message events are queued so that none is missed. */
export class QueuedSocket {
  constructor(url) {
    this.ws = new WebSocket(url);
    this.ws.binaryType = "arraybuffer";
    this.queues = { open: [], close: [], message: [] };
    this.waiters = { open: [], close: [], message: [] };
    this.ws.on("error", () => {});
    this.ws.on("open", () => this.push("open", null));
    this.ws.on("close", (code) => this.push("close", code));
    this.ws.on("message", (data, isBinary) =>
      this.push("message", isBinary ? new Uint8Array(data) : data.toString()),
    );
  }
  push(kind, v) {
    const w = this.waiters[kind].shift();
    if (w) w(v);
    else this.queues[kind].push(v);
  }
  next(kind, timeoutMs = 3000) {
    if (this.queues[kind].length) return Promise.resolve(this.queues[kind].shift());
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${kind}`)), timeoutMs);
      this.waiters[kind].push((v) => {
        clearTimeout(t);
        resolve(v);
      });
    });
  }
  /** The next `count` messages that are not pings. */
  async nonPing(count) {
    const out = [];
    while (out.length < count) {
      const m = await this.next("message");
      if (m !== "2") out.push(m);
    }
    return out;
  }
  send(d) {
    this.ws.send(d);
  }
  close() {
    this.ws.close();
  }
}

export async function openPolling(path) {
  const res = await fetch(`${BASE}${path}?EIO=4&transport=polling`);
  const body = await res.text();
  return JSON.parse(body.slice(1)).sid;
}

export function checkHandshake(assert, text, upgrades) {
  assert.ok(text.startsWith("0"), text);
  const h = JSON.parse(text.slice(1));
  assert.deepStrictEqual(Object.keys(h).sort(), ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]);
  assert.strictEqual(typeof h.sid, "string");
  assert.deepStrictEqual(h.upgrades, upgrades);
  assert.strictEqual(h.pingInterval, PING_INTERVAL);
  assert.strictEqual(h.pingTimeout, PING_TIMEOUT);
  assert.strictEqual(h.maxPayload, 1000000);
}
