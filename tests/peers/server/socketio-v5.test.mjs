// The Socket.IO v5 protocol checks of the official test suite (the Engine.IO part runs against
// /socket.io/ in engineio-v4.test.mjs).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { WS_BASE, QueuedSocket } from "./lib.mjs";

const WS = `${WS_BASE}/socket.io/?EIO=4&transport=websocket`;

async function engineOpen() {
  const s = new QueuedSocket(WS);
  await s.next("message"); // Engine.IO handshake
  return s;
}

async function joined() {
  const s = await engineOpen();
  s.send("40");
  await s.next("message"); // CONNECT answer
  await s.next("message"); // "auth" event
  return s;
}

function checkConnect(data, prefix) {
  assert.ok(data.startsWith(prefix), data);
  const h = JSON.parse(data.slice(prefix.length));
  assert.deepStrictEqual(Object.keys(h), ["sid"]);
  assert.strictEqual(typeof h.sid, "string");
}

describe("Socket.IO connect", () => {
  const cases = [
    ["40", "40", '42["auth",{}]'],
    ['40{"token":"123"}', "40", '42["auth",{"token":"123"}]'],
    ["40/custom,", "40/custom,", '42/custom,["auth",{}]'],
    ['40/custom,{"token":"abc"}', "40/custom,", '42/custom,["auth",{"token":"abc"}]'],
  ];
  for (const [send, prefix, auth] of cases) {
    it(`accepts ${send}`, async () => {
      const s = await engineOpen();
      s.send(send);
      checkConnect(await s.next("message"), prefix);
      assert.strictEqual(await s.next("message"), auth);
      s.close();
    });
  }
  it("refuses an unknown namespace", async () => {
    const s = await engineOpen();
    s.send("40/random");
    assert.strictEqual(await s.next("message"), '44/random,{"message":"Invalid namespace"}');
    s.close();
  });
  it("closes on an invalid handshake", async () => {
    const s = await engineOpen();
    s.send("4abc");
    await s.next("close");
  });
  it("closes when no namespace is joined in time", async () => {
    await new QueuedSocket(WS).next("close");
  });
});

describe("Socket.IO disconnect", () => {
  it("leaves the main namespace and keeps the connection", async () => {
    const s = await joined();
    s.send("41");
    assert.strictEqual(await s.next("message"), "2");
    s.close();
  });
  it("joins then leaves a custom namespace", async () => {
    const s = await joined();
    await s.next("message"); // ping
    s.send("40/custom");
    await s.next("message");
    await s.next("message");
    s.send("41/custom");
    s.send('42["message","message to main namespace"]');
    assert.strictEqual(await s.next("message"), '42["message-back","message to main namespace"]');
    s.close();
  });
});

describe("Socket.IO messages", () => {
  it("echoes a text event", async () => {
    const s = await joined();
    s.send('42["message",1,"2",{"3":[true]}]');
    assert.strictEqual(await s.next("message"), '42["message-back",1,"2",{"3":[true]}]');
    s.close();
  });
  it("echoes a binary event", async () => {
    const s = await joined();
    s.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    s.send(Uint8Array.from([1, 2, 3]));
    s.send(Uint8Array.from([4, 5, 6]));
    const p = await s.nonPing(3);
    assert.strictEqual(p[0], '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    assert.deepStrictEqual(p[1], Uint8Array.from([1, 2, 3]));
    assert.deepStrictEqual(p[2], Uint8Array.from([4, 5, 6]));
    s.close();
  });
  it("acks a text event", async () => {
    const s = await joined();
    s.send('42456["message-with-ack",1,"2",{"3":[false]}]');
    assert.strictEqual(await s.next("message"), '43456[1,"2",{"3":[false]}]');
    s.close();
  });
  it("acks a binary event with a binary ack", async () => {
    const s = await joined();
    s.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    s.send(Uint8Array.from([1, 2, 3]));
    s.send(Uint8Array.from([4, 5, 6]));
    const p = await s.nonPing(3);
    assert.strictEqual(p[0], '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    assert.deepStrictEqual(p[1], Uint8Array.from([1, 2, 3]));
    assert.deepStrictEqual(p[2], Uint8Array.from([4, 5, 6]));
    s.close();
  });
  for (const bad of ["4abc", "42{}", '42abc["message-with-ack",1,"2",{"3":[false]}]']) {
    it(`closes on invalid packet ${bad}`, async () => {
      const s = await joined();
      s.send(bad);
      await s.next("close");
    });
  }
});
