"""Interop scenario for python-socketio 5 against our server (tests/server_interop.rs).

Usage: python3 interop_client.py sync|async polling|websocket|upgrade URL
Prints "SID <role> <id>" lines and "DONE" on success; a failed check raises (non-zero exit).
Same scenario as interop-client.mjs.
"""
import asyncio
import sys
import time

import socketio
from engineio import packet as eio_packet

KIND, MODE, URL = sys.argv[1:4]
TRANSPORTS = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": ["polling", "websocket"]}[MODE]
EXPECTED_TRANSPORT = "polling" if MODE == "polling" else "websocket"


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Recorder:
    """Collects events per (namespace, event) so that checks can wait for them."""

    def __init__(self):
        self.events = {}

    def add(self, key, args):
        self.events.setdefault(key, []).append(list(args))

    def take(self, key):
        got = self.events.get(key, [])
        if got:
            return got.pop(0)
        return None


def make_client(cls, rec, name):
    c = cls(reconnection=False)
    for nsp in ("/", "/admin"):
        for ev in ("echo-back", "ask-result", "bcast"):
            c.on(ev, (lambda ev, nsp: lambda *args: rec.add((name, nsp, ev), args))(ev, nsp), namespace=nsp)

    def ask(*args):
        return ("answer", b"\x07\x08", *args)

    c.on("ask", ask)
    c.on("disconnect", lambda *reason: rec.add((name, "/", "disconnect"), reason))
    c.on("connect_error", lambda *data: rec.add((name, "/", "connect_error"), data))
    return c


def drop_pongs(c):
    eio = c.eio
    orig = eio._send_packet

    if asyncio.iscoroutinefunction(orig):
        async def send(pkt):
            if pkt.packet_type != eio_packet.PONG:
                await orig(pkt)
    else:
        def send(pkt):
            if pkt.packet_type != eio_packet.PONG:
                orig(pkt)
    eio._send_packet = send


async def scenario(api):
    rec = Recorder()

    async def wait_for(key, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = rec.take(key)
            if got is not None:
                return got
            await api.sleep(0.02)
        raise AssertionError(f"timeout waiting for {key}")

    a = make_client(api.cls, rec, "a")
    await api.connect(a, auth={"token": "good"}, namespaces=["/", "/admin"])
    print("SID a", a.get_sid("/"), flush=True)
    for _ in range(100):
        if a.transport() == EXPECTED_TRANSPORT:
            break
        await api.sleep(0.05)
    check(a.transport() == EXPECTED_TRANSPORT, f"transport {a.transport()}")

    await api.emit(a, "echo", ("hi", {"n": 1, "s": "é"}))
    check(await wait_for(("a", "/", "echo-back")) == ["hi", {"n": 1, "s": "é"}], "text echo")
    await api.emit(a, "echo", (b"\x01\x02\x03", "x", b""))
    check(await wait_for(("a", "/", "echo-back")) == [b"\x01\x02\x03", "x", b""], "binary echo")

    acked = await api.call(a, "ack", ("t", b"\x04\x05"))
    check(list(acked) == ["t", b"\x04\x05"], f"ack {acked!r}")

    await api.emit(a, "server-ack", ("q", b"\x01"))
    got = await wait_for(("a", "/", "ask-result"))
    check(got == ["answer", b"\x07\x08", "q", b"\x01"], f"server ack {got!r}")

    await api.emit(a, "echo", ("to admin", b"\x09"), namespace="/admin")
    check(await wait_for(("a", "/admin", "echo-back")) == ["to admin", b"\x09"], "admin echo")

    clients = {"a": a}
    for name in ("b", "c", "d"):
        c = make_client(api.cls, rec, name)
        await api.connect(c, auth={"token": "good"}, namespaces=["/"])
        clients[name] = c
    for name in ("a", "b", "c"):
        c = clients[name]
        sid = await api.call(c, "join", ("r",))
        check(sid == c.get_sid("/"), "join ack")
    rooms = await api.call(a, "rooms", ())
    check(rooms == sorted([a.get_sid("/"), "r"]), f"rooms {rooms!r}")

    async def collect(trigger):
        n = await trigger()
        await api.sleep(0.4)
        got = {}
        for name in clients:
            got[name] = []
            while (ev := rec.take((name, "/", "bcast"))) is not None:
                got[name].append(ev)
        return n, got

    b_sid = clients["b"].get_sid("/")
    n, got = await collect(lambda: api.call(a, "broadcast", ({"room": "r", "except": b_sid}, "hello", b"\x01\x02")))
    check(n == 2, f"broadcast count {n}")
    want = [["hello", b"\x01\x02"]]
    check(got == {"a": want, "b": [], "c": want, "d": []}, f"broadcast receivers {got!r}")
    n, got = await collect(lambda: api.call(a, "broadcast-others", ("r", "yo")))
    check(n == 2, f"broadcast-others count {n}")
    check(got == {"a": [], "b": [["yo"]], "c": [["yo"]], "d": []}, f"broadcast-others receivers {got!r}")

    bad = make_client(api.cls, rec, "bad")
    try:
        await api.connect(bad, auth={"token": "bad"}, namespaces=["/"])
        raise AssertionError("bad token accepted")
    except socketio.exceptions.ConnectionError:
        pass
    err = await wait_for(("bad", "/", "connect_error"))
    check(err == [{"message": "unauthorized", "data": {"code": 42}}], f"connect_error {err!r}")

    print("SID b", b_sid, flush=True)
    await api.disconnect(clients["b"])

    c = clients["c"]
    print("SID c", c.get_sid("/"), flush=True)
    await api.emit(c, "disconnect-me", ())
    reason = await wait_for(("c", "/", "disconnect"))
    check(reason == [c.reason.SERVER_DISCONNECT], f"server disconnect reason {reason!r}")

    d = clients["d"]
    print("SID d", d.get_sid("/"), flush=True)
    drop_pongs(d)
    started = time.monotonic()
    reason = await wait_for(("d", "/", "disconnect"), timeout=6.0)
    print(f"DROPPED d after {int((time.monotonic() - started) * 1000)} ms ({reason})", flush=True)

    for c in (a, bad):
        await api.disconnect(c)
    await api.sleep(0.1)
    print("DONE", flush=True)


class SyncApi:
    """Runs the sync client's blocking calls inline (the scenario coroutine never really awaits)."""

    cls = socketio.Client

    async def connect(self, c, **kw):
        c.connect(URL, transports=TRANSPORTS, wait_timeout=5, **kw)

    async def emit(self, c, ev, args, namespace="/"):
        c.emit(ev, args, namespace=namespace)

    async def call(self, c, ev, args):
        return c.call(ev, args, timeout=5)

    async def disconnect(self, c):
        c.disconnect()

    async def sleep(self, s):
        time.sleep(s)


class AsyncApi:
    cls = socketio.AsyncClient

    async def connect(self, c, **kw):
        await c.connect(URL, transports=TRANSPORTS, wait_timeout=5, **kw)

    async def emit(self, c, ev, args, namespace="/"):
        await c.emit(ev, args, namespace=namespace)

    async def call(self, c, ev, args):
        return await c.call(ev, args, timeout=5)

    async def disconnect(self, c):
        await c.disconnect()

    async def sleep(self, s):
        await asyncio.sleep(s)


asyncio.run(scenario(SyncApi() if KIND == "sync" else AsyncApi()))
