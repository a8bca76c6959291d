"""A python-socketio viewer of the sioedge contract (works against the gateway or any relay).

Watches one stream for --seconds and prints one JSON line per event on stdout:
{"ev":"watching","ack":{...}}, {"ev":"announce",...}, {"ev":"status",...},
{"ev":"media","track","seq","key","len","crc"}, then {"ev":"done"}.

    python3 tests/peers/gateway_viewer.py --url http://127.0.0.1:8080 --stream cam0 --seconds 5
"""
import argparse, asyncio, json, sys, zlib

import socketio

p = argparse.ArgumentParser()
p.add_argument("--url", required=True)
p.add_argument("--stream", default="cam0")
p.add_argument("--seconds", type=float, default=5)
a = p.parse_args()


def out(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


async def main():
    sio = socketio.AsyncClient()

    @sio.on("announce")
    async def announce(ann):
        out(ev="announce", announce=ann)

    @sio.on("status")
    async def status(st):
        out(ev="status", status=st)

    @sio.on("media")
    async def media(meta, data):
        out(ev="media", track=meta["track"], seq=meta["seq"], key=meta["key"], len=len(data),
            crc=zlib.crc32(data))

    await sio.connect(a.url, transports=["websocket"], wait_timeout=5)
    ack = await sio.call("watch", {"stream": a.stream}, timeout=5)
    out(ev="watching", ack=ack)
    await asyncio.sleep(a.seconds)
    await sio.disconnect()
    out(ev="done")


asyncio.run(main())
