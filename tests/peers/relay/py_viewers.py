"""N python-socketio viewers of one stream on a relay, for the relay tests.

Each client connects to the first URL of --urls (comma-separated), watches --stream and records
video frames; when its connection drops it moves to the next URL (round robin) and watches again.
Prints JSON lines: {"ev":"first","client","ms","key","url"} (watch → first video frame) per
(re)connection, {"ev":"reconnected","client","ms","url"} (drop → first frame on the next node),
and at the end one {"ev":"client","client","frames","first_key","gaps","sessions","last_seq"}
per client, then {"ev":"done"}. With --progress, also {"ev":"frame","client","seq","key","at"}
(at = receive wall-clock µs) per video frame. "gaps" counts video seq jumps inside a session (a new session
may restart at the cached keyframe).

    python3 tests/peers/relay/py_viewers.py --urls http://127.0.0.1:8080 --stream pi1/cam0 --clients 50 --seconds 3
"""
import argparse, asyncio, json, sys, time

import socketio

p = argparse.ArgumentParser()
p.add_argument("--urls", required=True)
p.add_argument("--stream", required=True)
p.add_argument("--clients", type=int, default=1)
p.add_argument("--seconds", type=float, default=3)
p.add_argument("--progress", action="store_true", help="also print every video frame")
a = p.parse_args()
urls = a.urls.split(",")


def out(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


class Client:
    def __init__(self, i):
        self.i = i
        self.frames = 0
        self.first_key = None
        self.gaps = 0
        self.sessions = 0
        self.last_seq = None
        self.session_started = None
        self.dropped_at = None
        self.url = None

    async def session(self, url, stop):
        sio = socketio.AsyncClient(reconnection=False)
        gone = asyncio.Event()
        self.url = url
        self.last_seq = None

        @sio.on("media")
        async def media(meta, data):
            if meta.get("track") != "video":
                return
            seq = meta["seq"]
            now = time.monotonic()
            if self.last_seq is None:
                out(ev="first", client=self.i, ms=round((now - self.session_started) * 1000, 1),
                    key=meta["key"], url=url)
                if self.first_key is None:
                    self.first_key = meta["key"]
                elif not meta["key"]:
                    self.first_key = False
                if self.dropped_at is not None:
                    out(ev="reconnected", client=self.i,
                        ms=round((now - self.dropped_at) * 1000, 1), url=url)
                    self.dropped_at = None
            elif seq != self.last_seq + 1:
                self.gaps += 1
            self.last_seq = seq
            self.frames += 1
            if a.progress:
                out(ev="frame", client=self.i, seq=seq, key=meta["key"], at=int(time.time() * 1e6))

        @sio.event
        async def disconnect(*_):
            gone.set()

        await sio.connect(url, transports=["websocket"], wait_timeout=3)
        self.session_started = time.monotonic()
        await sio.call("watch", {"stream": a.stream}, timeout=5)
        self.sessions += 1
        waiter = asyncio.ensure_future(gone.wait())
        await asyncio.wait([waiter], timeout=max(0, stop - time.monotonic()))
        waiter.cancel()
        if not gone.is_set():
            await sio.disconnect()
            return True
        return False

    async def run(self, stop):
        k = 0
        while time.monotonic() < stop:
            url = urls[k % len(urls)]
            try:
                if await self.session(url, stop):
                    break
            except Exception as e:  # connection refused, timeout: try the next URL
                out(ev="error", client=self.i, url=url, error=repr(e))
                await asyncio.sleep(0.1)
            if self.dropped_at is None:
                self.dropped_at = time.monotonic()
            k += 1
        out(ev="client", client=self.i, frames=self.frames, first_key=self.first_key,
            gaps=self.gaps, sessions=self.sessions, last_seq=self.last_seq)


async def main():
    stop = time.monotonic() + a.seconds
    await asyncio.gather(*(Client(i).run(stop) for i in range(a.clients)))
    out(ev="done")


asyncio.run(main())
