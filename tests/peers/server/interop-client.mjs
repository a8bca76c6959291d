// Interop scenario for the official socket.io-client v4 against our server (see
// tests/server_interop.rs for the server side). Usage: node interop-client.mjs MODE URL
// MODE: polling | websocket | upgrade. Prints "SID <role> <id>" lines and "DONE" on success;
// any failed check throws (non-zero exit).
import { Manager } from "socket.io-client";
import assert from "node:assert/strict";

const [mode, url] = process.argv.slice(2);
const transports = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] }[mode];
if (!transports) throw new Error(`bad mode ${mode}`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function within(ms, what, promise) {
  return Promise.race([promise, sleep(ms).then(() => { throw new Error(`timeout: ${what}`); })]);
}
const once = (socket, event) => within(5000, event, new Promise((r) => socket.once(event, (...args) => r(args))));

function manager() {
  return new Manager(url, { transports, upgrade: mode === "upgrade", reconnection: false, timeout: 5000 });
}
function connect(mgr, nsp = "/", auth = { token: "good" }) {
  const s = mgr.socket(nsp, { auth });
  return within(5000, `connect ${nsp}`, new Promise((resolve, reject) => {
    s.once("connect", () => resolve(s));
    s.once("connect_error", reject);
    s.connect();
  }));
}
const buf = (...b) => Buffer.from(b);

const mgrA = manager();
const a = await connect(mgrA);
console.log(`SID a ${a.id}`);

// Transport as requested (and the upgrade really happens).
const expected = mode === "polling" ? "polling" : "websocket";
for (let i = 0; i < 100 && mgrA.engine.transport.name !== expected; i++) await sleep(50);
assert.equal(mgrA.engine.transport.name, expected);

// Text and binary events both ways.
a.emit("echo", "hi", { n: 1, s: "é" });
assert.deepEqual(await once(a, "echo-back"), ["hi", { n: 1, s: "é" }]);
a.emit("echo", buf(1, 2, 3), "x", buf());
assert.deepEqual(await once(a, "echo-back"), [buf(1, 2, 3), "x", buf()]);

// Client → server ack (binary in the ack).
const acked = await within(5000, "ack", new Promise((r) => a.emit("ack", "t", buf(4, 5), (...res) => r(res))));
assert.deepEqual(acked, ["t", buf(4, 5)]);

// Server → client ack (binary both ways).
a.on("ask", (...args) => {
  const cb = args.pop();
  cb("answer", buf(7, 8), ...args);
});
a.emit("server-ack", "q", buf(1));
assert.deepEqual(await once(a, "ask-result"), ["answer", buf(7, 8), "q", buf(1)]);

// A second namespace on the same connection.
const admin = await connect(mgrA, "/admin");
admin.emit("echo", "to admin", buf(9));
assert.deepEqual(await once(admin, "echo-back"), ["to admin", buf(9)]);

// Rooms and broadcasts with exceptions.
const b = await connect(manager());
const c = await connect(manager());
const d = await connect(manager());
for (const s of [a, b, c]) {
  const [id] = await within(5000, "join", new Promise((r) => s.emit("join", "r", (...res) => r(res))));
  assert.equal(id, s.id);
}
const rooms = await within(5000, "rooms", new Promise((r) => a.emit("rooms", (res) => r(res))));
assert.deepEqual(rooms, [a.id, "r"].sort());

async function collect(sockets, trigger) {
  const got = sockets.map(() => []);
  const handlers = sockets.map((s, i) => (...args) => got[i].push(args));
  sockets.forEach((s, i) => s.on("bcast", handlers[i]));
  const n = await trigger();
  await sleep(400);
  sockets.forEach((s, i) => s.off("bcast", handlers[i]));
  return [n, got];
}
let [n, got] = await collect([a, b, c, d], () =>
  within(5000, "broadcast", new Promise((r) => a.emit("broadcast", { room: "r", except: b.id }, "hello", buf(1, 2), (k) => r(k)))),
);
assert.equal(n, 2);
assert.deepEqual(got, [[["hello", buf(1, 2)]], [], [["hello", buf(1, 2)]], []]);
[n, got] = await collect([a, b, c, d], () =>
  within(5000, "broadcast-others", new Promise((r) => a.emit("broadcast-others", "r", "yo", (k) => r(k)))),
);
assert.equal(n, 2);
assert.deepEqual(got, [[], [["yo"]], [["yo"]], []]);

// Auth rejected: a connect error carrying our data.
const err = await connect(manager(), "/", { token: "bad" }).then(
  () => { throw new Error("bad token accepted"); },
  (e) => e,
);
assert.equal(err.message, "unauthorized");
assert.deepEqual(err.data, { code: 42 });

// Disconnect from the client side (server sees "client namespace disconnect").
console.log(`SID b ${b.id}`);
b.disconnect();

// Disconnect from the server side.
console.log(`SID c ${c.id}`);
const reasonC = once(c, "disconnect");
c.emit("disconnect-me");
assert.deepEqual((await reasonC)[0], "io server disconnect");

// A client that stops answering pings is dropped (server sees "ping timeout").
console.log(`SID d ${d.id}`);
const engine = d.io.engine;
const send = engine._sendPacket.bind(engine);
engine._sendPacket = (type, ...rest) => (type === "pong" ? undefined : send(type, ...rest));
const started = Date.now();
const [reasonD] = await within(6000, "ping timeout drop", new Promise((r) => d.once("disconnect", (...x) => r(x))));
console.log(`DROPPED d after ${Date.now() - started} ms (${reasonD})`);

a.disconnect();
admin.disconnect();
console.log("DONE");
process.exit(0);
