"""A relay for the sioedge event contract, in python-socketio (AsyncServer on aiohttp).

This is what a sioedge user writes to relay their gateways: publishers (gateways) connect on
/publish with CONNECT auth {token, device}; viewers connect on "/" and use streams / watch /
unwatch, receiving announce, status and media. A viewer starts at the next video keyframe.

For the tests it also prints one JSON line per thing it sees on stdout:
{"ev":"ready","port":N}, {"ev":"publisher","auth":{...}}, {"ev":"refused",...}, {"ev":"publisher_gone",...},
{"ev":"announce","announce":{...}}, {"ev":"status",...}, {"ev":"media","track","seq","key","len","crc"}.

    python3 tests/peers/relay.py --port 0 --token secret
"""
import argparse, asyncio, json, sys, zlib
from collections import defaultdict

import socketio
from aiohttp import web

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, default=0)
p.add_argument("--token", required=True)
a = p.parse_args()


def out(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


# async_handlers=False: a publisher's events are handled one after another, so frames stay in order.
sio = socketio.AsyncServer(async_mode="aiohttp", async_handlers=False,
                           max_http_buffer_size=4_000_000, cors_allowed_origins="*")
streams = {}                  # stream id -> its announce
waiting = defaultdict(set)    # stream id -> viewer sids that start at the next video keyframe


def is_video(meta):
    tracks = streams.get(meta["stream"], {}).get("tracks", [])
    return any(t["track"] == meta["track"] and t["codec"] in ("h264", "mjpeg") for t in tracks)


# --- publishers ---------------------------------------------------------------------------------
@sio.on("connect", namespace="/publish")
async def publisher_connect(sid, environ, auth=None):
    if not isinstance(auth, dict) or auth.get("token") != a.token:
        out(ev="refused", auth=auth)
        raise socketio.exceptions.ConnectionRefusedError("bad token")
    out(ev="publisher", auth=auth)


@sio.on("disconnect", namespace="/publish")
async def publisher_disconnect(sid, reason=None):
    out(ev="publisher_gone", reason=str(reason))


@sio.on("announce", namespace="/publish")
async def announce(sid, ann):
    streams[ann["stream"]] = ann
    out(ev="announce", announce=ann)
    await sio.emit("announce", ann, room=ann["stream"])


@sio.on("status", namespace="/publish")
async def status(sid, st):
    out(ev="status", status=st)
    await sio.emit("status", st, room=st["stream"])


@sio.on("media", namespace="/publish")
async def media(sid, meta, data):
    out(ev="media", track=meta["track"], seq=meta["seq"], key=meta["key"], len=len(data),
        crc=zlib.crc32(data))
    stream = meta["stream"]
    if meta["key"] and is_video(meta):
        for viewer in waiting.pop(stream, set()):
            await sio.enter_room(viewer, stream)
    await sio.emit("media", (meta, data), room=stream)


# --- viewers ------------------------------------------------------------------------------------
@sio.on("streams")
async def list_streams(sid, *_):
    return list(streams.values())


@sio.on("watch")
async def watch(sid, req):
    stream = req["stream"] if isinstance(req, dict) else req
    if stream not in streams:
        return {"error": f"unknown stream {stream!r}"}
    waiting[stream].add(sid)
    return streams[stream]


@sio.on("unwatch")
async def unwatch(sid, req=None):
    stream = req["stream"] if isinstance(req, dict) else req
    for s in [stream] if stream else list(streams):
        waiting[s].discard(sid)
        await sio.leave_room(sid, s)
    return {"ok": True}


async def main():
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", a.port)
    await site.start()
    out(ev="ready", port=site._server.sockets[0].getsockname()[1])
    await asyncio.Event().wait()


asyncio.run(main())
