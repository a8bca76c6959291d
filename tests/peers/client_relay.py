"""A python-socketio relay for the client's tests (aiohttp or tornado).

Prints one JSON object per line on stdout for everything it sees, so the Rust test can follow:
{"ev":"ready"}, {"ev":"connect",...}, {"ev":"refused",...}, {"ev":"media",...}, ...
Behaviour, on namespaces "/" and "/admin":
  echo(*args)        -> emits "echo-back" with the same args (binary included)
  ack-me(*args)      -> acks with the same args
  ask-me(*args)      -> calls the client's "question" with the same args (server->client ack),
                        then emits "answer" with what the client acked
  which-transport()  -> acks with the Engine.IO transport in use
  media(meta, data)  -> recorded: seq, key, len and crc32 of data
"""
import argparse, asyncio, json, ssl, sys, zlib

import socketio

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--mode", choices=["aiohttp", "tornado"], default="aiohttp")
p.add_argument("--token")
p.add_argument("--path", default="socket.io")
p.add_argument("--ping-interval", type=float, default=25)
p.add_argument("--ping-timeout", type=float, default=20)
p.add_argument("--max-payload", type=int, default=1_000_000)
p.add_argument("--certfile")
p.add_argument("--keyfile")
p.add_argument("--quiet-media", action="store_true", help="print only the first media frame of each connection and every 100th")
a = p.parse_args()


def out(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


sio = socketio.AsyncServer(async_mode=a.mode, ping_interval=a.ping_interval,
                           ping_timeout=a.ping_timeout, max_http_buffer_size=a.max_payload,
                           cors_allowed_origins="*")
media_count = 0
media_sids = set()


def js(v):
    return {"bin": v.hex()} if isinstance(v, (bytes, bytearray)) else v


for ns in ["/", "/admin"]:
    def handlers(ns):
        @sio.on("connect", namespace=ns)
        async def connect(sid, environ, auth=None):
            if a.token is not None and (not isinstance(auth, dict) or auth.get("token") != a.token):
                out(ev="refused", ns=ns, auth=auth)
                raise socketio.exceptions.ConnectionRefusedError("bad token")
            out(ev="connect", ns=ns, sid=sid, auth=auth, query=environ.get("QUERY_STRING", ""),
                header=environ.get("HTTP_X_TEST"), transport=sio.transport(sid, namespace=ns))

        @sio.on("disconnect", namespace=ns)
        async def disconnect(sid, reason=None):
            out(ev="disconnect", ns=ns, reason=str(reason))

        @sio.on("echo", namespace=ns)
        async def echo(sid, *args):
            await sio.emit("echo-back", args, to=sid, namespace=ns)

        @sio.on("ack-me", namespace=ns)
        async def ack_me(sid, *args):
            return args

        @sio.on("which-transport", namespace=ns)
        async def which(sid, *args):
            return sio.transport(sid, namespace=ns)

        @sio.on("ask-me", namespace=ns)
        async def ask_me(sid, *args):
            answer = await sio.call("question", args, to=sid, namespace=ns, timeout=5)
            if not isinstance(answer, tuple):
                answer = (answer,)
            await sio.emit("answer", answer, to=sid, namespace=ns)

        @sio.on("media", namespace=ns)
        async def media(sid, meta, data):
            global media_count
            media_count += 1
            first = sid not in media_sids
            media_sids.add(sid)
            if not a.quiet_media or first or media_count % 100 == 0:
                out(ev="media", ns=ns, seq=meta.get("seq"), key=meta.get("key"), len=len(data),
                    crc=zlib.crc32(data), count=media_count, first=first)

    handlers(ns)

ssl_ctx = None
if a.certfile:
    ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ssl_ctx.load_cert_chain(a.certfile, a.keyfile)

path = "/" + a.path.strip("/") + "/"


async def main():
    if a.mode == "aiohttp":
        from aiohttp import web
        app = web.Application()
        sio.attach(app, socketio_path=a.path.strip("/"))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", a.port, ssl_context=ssl_ctx, reuse_address=True)
        await site.start()
    else:
        import tornado.web
        app = tornado.web.Application([(path, socketio.get_tornado_handler(sio))])
        app.listen(a.port, address="127.0.0.1", ssl_options=ssl_ctx, reuse_port=False)
    out(ev="ready", port=a.port)
    await asyncio.Event().wait()


asyncio.run(main())
