// The Engine.IO v4 protocol checks of the official test suite, against the raw echo endpoint.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BASE, WS_BASE, PING_INTERVAL, PING_TIMEOUT, QueuedSocket, sleep, openPolling, checkHandshake } from "./lib.mjs";

for (const path of ["/engine.io/", "/socket.io/"]) {
  const url = (q) => `${BASE}${path}?EIO=4&${q}`;
  const wsUrl = (q) => `${WS_BASE}${path}?${q}`;
  const echo = path === "/engine.io/";

  describe(`Engine.IO handshake at ${path}`, () => {
    it("opens a polling session", async () => {
      const res = await fetch(url("transport=polling"));
      assert.strictEqual(res.status, 200);
      checkHandshake(assert, await res.text(), ["websocket"]);
    });
    it("rejects a missing or bad EIO", async () => {
      assert.strictEqual((await fetch(`${BASE}${path}?transport=polling`)).status, 400);
      assert.strictEqual((await fetch(`${BASE}${path}?EIO=abc&transport=polling`)).status, 400);
    });
    it("rejects a missing or bad transport", async () => {
      assert.strictEqual((await fetch(`${BASE}${path}?EIO=4`)).status, 400);
      assert.strictEqual((await fetch(`${BASE}${path}?EIO=4&transport=abc`)).status, 400);
    });
    it("rejects POST/PUT without a session", async () => {
      assert.strictEqual((await fetch(url("transport=polling"), { method: "POST" })).status, 400);
      assert.strictEqual((await fetch(url("transport=polling"), { method: "PUT" })).status, 400);
    });
    it("opens a WebSocket session", async () => {
      const s = new QueuedSocket(wsUrl("EIO=4&transport=websocket"));
      checkHandshake(assert, await s.next("message"), []);
      s.close();
    });
    it("closes WebSockets with a bad EIO or transport", async () => {
      for (const q of ["transport=websocket", "EIO=abc&transport=websocket", "EIO=4", "EIO=4&transport=abc"]) {
        await new QueuedSocket(wsUrl(q)).next("close");
      }
    });
  });

  if (echo) {
    describe("Engine.IO messages (echo)", () => {
      for (const body of ["4hello", "4test1\x1e4test2\x1e4test3", "4hello\x1ebAQIDBA=="]) {
        it(`polling echoes ${JSON.stringify(body)}`, async () => {
          const sid = await openPolling(path);
          const post = await fetch(url(`transport=polling&sid=${sid}`), { method: "POST", body });
          assert.strictEqual(post.status, 200);
          assert.strictEqual(await post.text(), "ok");
          const poll = await fetch(url(`transport=polling&sid=${sid}`));
          assert.strictEqual(poll.status, 200);
          assert.strictEqual(await poll.text(), body);
        });
      }
      it("WebSocket echoes text and binary", async () => {
        const s = new QueuedSocket(wsUrl("EIO=4&transport=websocket"));
        await s.next("message");
        s.send("4hello");
        assert.strictEqual(await s.next("message"), "4hello");
        s.send(Uint8Array.from([1, 2, 3, 4]));
        assert.deepStrictEqual(await s.next("message"), Uint8Array.from([1, 2, 3, 4]));
        s.close();
      });
    });
  }

  describe(`Engine.IO errors and close at ${path}`, () => {
    it("polling: an invalid packet closes the session", async () => {
      const sid = await openPolling(path);
      try {
        const r = await fetch(url(`transport=polling&sid=${sid}`), { method: "POST", body: "abc" });
        assert.strictEqual(r.status, 400);
      } catch (_) {}
      assert.strictEqual((await fetch(url(`transport=polling&sid=${sid}`))).status, 400);
    });
    it("polling: a duplicate poll closes the session", async () => {
      const sid = await openPolling(path);
      const [a, b] = await Promise.all([
        fetch(url(`transport=polling&sid=${sid}`)),
        sleep(5).then(() => fetch(url(`transport=polling&sid=${sid}&t=x`))),
      ]);
      assert.strictEqual(a.status, 200);
      assert.strictEqual(await a.text(), "1");
      assert.ok([400, 500].includes(b.status));
      assert.strictEqual((await fetch(url(`transport=polling&sid=${sid}`))).status, 400);
    });
    it("polling: an aborted poll closes the session", async () => {
      const sid = await openPolling(path);
      const ctl = new AbortController();
      fetch(url(`transport=polling&sid=${sid}`), { signal: ctl.signal }).catch(() => {});
      await sleep(5);
      ctl.abort();
      await sleep(20);
      assert.strictEqual((await fetch(url(`transport=polling&sid=${sid}`))).status, 400);
    });
    it("WebSocket: an invalid packet closes the connection", async () => {
      const s = new QueuedSocket(wsUrl("EIO=4&transport=websocket"));
      await s.next("message");
      s.send("abc");
      await s.next("close");
    });
    it("polling: a close packet ends the pending poll with a noop", async () => {
      const sid = await openPolling(path);
      const [poll] = await Promise.all([
        fetch(url(`transport=polling&sid=${sid}`)),
        fetch(url(`transport=polling&sid=${sid}`), { method: "POST", body: "1" }),
      ]);
      assert.strictEqual(poll.status, 200);
      assert.strictEqual(await poll.text(), "6");
      assert.strictEqual((await fetch(url(`transport=polling&sid=${sid}`))).status, 400);
    });
    it("WebSocket: a close packet closes the connection", async () => {
      const s = new QueuedSocket(wsUrl("EIO=4&transport=websocket"));
      await s.next("message");
      s.send("1");
      await s.next("close");
    });
  });

  describe(`Engine.IO heartbeat at ${path}`, () => {
    it("polling: pings and accepts pongs", async () => {
      const sid = await openPolling(path);
      for (let i = 0; i < 3; i++) {
        const poll = await fetch(url(`transport=polling&sid=${sid}`));
        assert.strictEqual(poll.status, 200);
        assert.strictEqual(await poll.text(), "2");
        const post = await fetch(url(`transport=polling&sid=${sid}`), { method: "POST", body: "3" });
        assert.strictEqual(post.status, 200);
      }
    });
    it("polling: closes the session on ping timeout", async () => {
      const sid = await openPolling(path);
      await sleep(PING_INTERVAL + PING_TIMEOUT);
      assert.strictEqual((await fetch(url(`transport=polling&sid=${sid}`))).status, 400);
    });
    it("WebSocket: pings and accepts pongs", async () => {
      const s = new QueuedSocket(wsUrl("EIO=4&transport=websocket"));
      await s.next("message");
      for (let i = 0; i < 3; i++) {
        assert.strictEqual(await s.next("message"), "2");
        s.send("3");
      }
      s.close();
    });
    it("WebSocket: closes on ping timeout", async () => {
      const s = new QueuedSocket(wsUrl("EIO=4&transport=websocket"));
      await s.next("close");
    });
  });

  describe(`Engine.IO upgrade at ${path}`, () => {
    it("upgrades polling to WebSocket, releasing the poll with a noop", async () => {
      const sid = await openPolling(path);
      const s = new QueuedSocket(wsUrl(`EIO=4&transport=websocket&sid=${sid}`));
      await s.next("open");
      s.send("2probe");
      assert.strictEqual(await s.next("message"), "3probe");
      const poll = await fetch(url(`transport=polling&sid=${sid}`));
      assert.strictEqual(poll.status, 200);
      assert.strictEqual(await poll.text(), "6");
      s.send("5");
      if (echo) {
        s.send("4hello");
        assert.strictEqual(await s.next("message"), "4hello");
      }
      s.close();
    });
    it("refuses polling after the upgrade", async () => {
      const sid = await openPolling(path);
      const s = new QueuedSocket(wsUrl(`EIO=4&transport=websocket&sid=${sid}`));
      await s.next("open");
      s.send("2probe");
      await s.next("message");
      s.send("5");
      assert.strictEqual((await fetch(url(`transport=polling&sid=${sid}`))).status, 400);
      if (echo) {
        s.send("4hello");
        assert.strictEqual(await s.next("message"), "4hello");
      }
      s.close();
    });
    it("ignores WebSocket connection with same sid after upgrade", async () => {
      const sid = await openPolling(path);
      const s = new QueuedSocket(wsUrl(`EIO=4&transport=websocket&sid=${sid}`));
      await s.next("open");
      s.send("2probe");
      await s.next("message");
      s.send("5");
      // As the reference server: the handshake completes (an HTTP refusal is an error the
      // official suite does not catch), then only the new socket is closed.
      const s2 = new QueuedSocket(wsUrl(`EIO=4&transport=websocket&sid=${sid}`));
      await s2.next("open");
      await s2.next("close");
      if (echo) {
        s.send("4hello");
        assert.strictEqual(await s.next("message"), "4hello");
      }
      s.close();
    });
  });
}
