"""A python-socketio publisher that floods a relay with streams: it announces --streams streams
(each with one H.264 video track, announce acked) and sends one --size-byte keyframe on each, then
leaves (with --no-ack: announces without acks, and no frames). Prints JSON lines:
{"ev":"connected"}, {"ev":"connect_error","message"},
{"ev":"refused","stream","error"} for each announce the relay acked with an error (at most 20),
{"ev":"error","message"} for each `error` event the relay sent (at most 20), then
{"ev":"flooded"} with --linger once the relay acked a last announce sent after every frame (so
it has read them all), then {"ev":"done","accepted","refused","errors","seconds"} once it has
disconnected.

    python3 tests/peers/relay/py_flood.py --url http://127.0.0.1:8080 --token t --device pi1 \
        --streams 5000 --size 30000 --prefix r1-
"""
import argparse, asyncio, json, sys, time

import socketio

p = argparse.ArgumentParser()
p.add_argument("--url", required=True)
p.add_argument("--token", required=True)
p.add_argument("--device", default="pi1")
p.add_argument("--streams", type=int, default=5000)
p.add_argument("--size", type=int, default=30000)
p.add_argument("--prefix", default="s")
p.add_argument("--id", action="append", default=[],
               help="announce exactly these stream ids (JSON strings) instead of numbered ones")
p.add_argument("--linger", type=float, default=0,
               help="seconds to stay connected after the flood (prints \"flooded\" first)")
p.add_argument("--no-ack", action="store_true",
               help="announce without asking for acks (a refusal then comes as an `error` event)")
a = p.parse_args()


def out(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def announce(stream):
    return {"stream": stream, "tracks": [
        {"track": "video", "codec": "h264", "width": 1280, "height": 720, "fps": 30}]}


async def main():
    sio = socketio.AsyncClient(reconnection=False)
    errors = 0

    @sio.on("error", namespace="/publish")
    async def on_error(data):
        nonlocal errors
        errors += 1
        if errors <= 20:
            out(ev="error", message=data.get("message") if isinstance(data, dict) else data)

    try:
        await sio.connect(a.url, namespaces=["/publish"], transports=["websocket"],
                          auth={"token": a.token, "device": a.device}, wait_timeout=5)
    except socketio.exceptions.ConnectionError as e:
        out(ev="connect_error", message=str(e))
        return
    out(ev="connected")
    start = time.monotonic()
    ids = [json.loads(i) for i in a.id] or [f"{a.prefix}{i}" for i in range(a.streams)]
    accepted, refused = [], 0
    for stream in ids:
        if a.no_ack:
            await sio.emit("announce", announce(stream), namespace="/publish")
            continue
        ack = await sio.call("announce", announce(stream), namespace="/publish", timeout=30)
        if isinstance(ack, dict) and ack.get("ok"):
            accepted.append(stream)
        else:
            refused += 1
            if refused <= 20:
                out(ev="refused", stream=stream, error=(ack or {}).get("error"))
    key = b"\x00\x00\x00\x01\x65" + bytes(i % 251 for i in range(max(a.size - 5, 0)))
    for stream in accepted:
        meta = {"stream": stream, "track": "video", "seq": 0, "pts": 0, "key": True,
                "t": int(time.time() * 1e6)}
        await sio.emit("media", (meta, key), namespace="/publish")
    # The relay handles a publisher's events in order: this ack means every frame was read.
    await sio.call("announce", announce(ids[0] if ids else "barrier"), namespace="/publish",
                   timeout=60)
    await asyncio.sleep(0.2)  # `error` events the relay sent before that ack
    if a.linger:
        out(ev="flooded")
        await asyncio.sleep(a.linger)
    await sio.disconnect()
    out(ev="done", accepted=len(accepted), refused=refused, errors=errors,
        seconds=round(time.monotonic() - start, 2))


asyncio.run(main())
