"""A python-socketio publisher of the sioedge contract (announce, media, status), with fake
H.264-like frames: a keyframe every --gop frames, content derived from the seq so any viewer can
check it. Prints JSON lines: {"ev":"connected"}, {"ev":"connect_error","message"},
{"ev":"sent","seq","key","sha1"} per frame, then {"ev":"done"}.

    python3 tests/peers/relay/py_publisher.py --url http://127.0.0.1:8080 --token t --device pi1
"""
import argparse, asyncio, hashlib, json, sys, time

import socketio

p = argparse.ArgumentParser()
p.add_argument("--url", required=True)
p.add_argument("--namespace", default="/publish")
p.add_argument("--token", default="")
p.add_argument("--device", default="pi1")
p.add_argument("--stream", default="cam0")
p.add_argument("--fps", type=float, default=30)
p.add_argument("--gop", type=int, default=10)
p.add_argument("--frames", type=int, default=90)
p.add_argument("--size", type=int, default=4000)
a = p.parse_args()


def out(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def frame(seq, key):
    # Annex-B start code + IDR (5) or non-IDR (1) NAL header, then a seq-derived body.
    head = b"\x00\x00\x00\x01" + (b"\x65" if key else b"\x41")
    body = hashlib.sha256(seq.to_bytes(8, "big")).digest()
    n = a.size + (seq * 37) % 500
    return head + (body * (n // len(body) + 1))[:n]


async def main():
    sio = socketio.AsyncClient(reconnection=False)
    failed = asyncio.Event()

    @sio.on("connect_error", namespace=a.namespace)
    async def connect_error(data):
        msg = data.get("message") if isinstance(data, dict) else data
        out(ev="connect_error", message=msg)
        failed.set()

    try:
        await sio.connect(a.url, namespaces=[a.namespace], transports=["websocket"],
                          auth={"token": a.token, "device": a.device}, wait_timeout=5)
    except socketio.exceptions.ConnectionError as e:
        if not failed.is_set():
            out(ev="connect_error", message=str(e))
        return
    out(ev="connected")
    ns = a.namespace
    await sio.emit("announce", {"stream": a.stream, "tracks": [
        {"track": "video", "codec": "h264", "width": 320, "height": 240, "fps": a.fps}]},
        namespace=ns)
    await sio.emit("status", {"stream": a.stream, "track": "video", "state": "live",
                              "reason": ""}, namespace=ns)
    start = time.monotonic()
    for seq in range(a.frames):
        key = seq % a.gop == 0
        data = frame(seq, key)
        meta = {"stream": a.stream, "track": "video", "seq": seq, "pts": seq * 3000,
                "key": key, "t": int(time.time() * 1e6)}
        await sio.emit("media", (meta, data), namespace=ns)
        out(ev="sent", seq=seq, key=key, len=len(data), sha1=hashlib.sha1(data).hexdigest())
        delay = start + (seq + 1) / a.fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    await asyncio.sleep(0.5)
    await sio.disconnect()
    out(ev="done")


asyncio.run(main())
