#!/usr/bin/env python3
"""Smoke-test viewer (python-socketio client) for scripts/qemu-smoke.

Connects to a sioedge server, waits for a stream to be announced, watches it and checks that
H.264 and Opus frames arrive: the first video frame is a keyframe whose access unit is Annex B
with an SPS, and every audio frame is a non-empty Opus packet. Prints one JSON line with the
counts and exits 0 on success, 1 on failure. Every wait is bounded by --timeout.
"""
import argparse
import json
import sys
import threading
import time

import socketio


def nal_types(au: bytes):
    """NAL unit types of an Annex B access unit (start codes 00 00 01 / 00 00 00 01)."""
    types, i = [], 0
    while True:
        j = au.find(b"\x00\x00\x01", i)
        if j < 0 or j + 3 >= len(au):
            return types
        types.append(au[j + 3] & 0x1F)
        i = j + 3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--stream", default="cam0")
    ap.add_argument("--min-video", type=int, default=10)
    ap.add_argument("--min-audio", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    deadline = time.monotonic() + args.timeout

    lock = threading.Lock()
    done = threading.Event()
    codecs = {}  # track id -> codec, from announce
    got = {"h264": 0, "opus": 0}
    errors = []
    first_video = {"key": None, "sps": None}

    sio = socketio.Client(reconnection=False)

    @sio.on("announce")
    def on_announce(a):
        if isinstance(a, dict) and a.get("stream") == args.stream:
            with lock:
                for t in a.get("tracks", []):
                    codecs[t.get("track")] = t.get("codec")

    @sio.on("media")
    def on_media(meta, data=None):
        with lock:
            if not isinstance(meta, dict) or not isinstance(data, (bytes, bytearray)):
                errors.append(f"media event without metadata + binary: {type(meta)} {type(data)}")
                done.set()
                return
            codec = codecs.get(meta.get("track"))
            if codec == "h264":
                if got["h264"] == 0:
                    first_video["key"] = bool(meta.get("key"))
                    first_video["sps"] = 7 in nal_types(bytes(data))
                got["h264"] += 1
            elif codec == "opus":
                if len(data) == 0:
                    errors.append("empty Opus packet")
                got["opus"] += 1
            if got["h264"] >= args.min_video and got["opus"] >= args.min_audio:
                done.set()

    def left():
        return max(0.1, deadline - time.monotonic())

    result = {"ok": False}
    try:
        sio.connect(args.url, transports=["websocket"], wait_timeout=left())
        # The stream is announced once its pipeline produced a first frame (slow under qemu).
        announce = None
        while time.monotonic() < deadline:
            streams = sio.call("streams", timeout=left())
            announce = next((s for s in streams or [] if s.get("stream") == args.stream), None)
            if announce:
                break
            time.sleep(0.5)
        if not announce:
            raise RuntimeError(f"stream {args.stream!r} never announced")
        on_announce(announce)
        ack = sio.call("watch", {"stream": args.stream}, timeout=left())
        if isinstance(ack, dict) and "error" in ack:
            raise RuntimeError(f"watch refused: {ack['error']}")
        on_announce(ack)
        done.wait(left())
        with lock:
            result.update(codecs=codecs, frames=dict(got), first_video=first_video, errors=errors)
            result["ok"] = (
                not errors
                and got["h264"] >= args.min_video
                and got["opus"] >= args.min_audio
                and first_video["key"] is True
                and first_video["sps"] is True
            )
    except Exception as e:  # noqa: BLE001 - reported, then exit 1
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        if sio.connected:
            sio.disconnect()
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
