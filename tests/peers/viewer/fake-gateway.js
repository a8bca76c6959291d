// A Node socket.io v4 server that speaks sioedge's viewer event contract (issue 5) and serves the
// viewer page from src/viewer/. It replays pre-encoded test media in real time:
//   cam0:   H.264 320x240@30 constrained-baseline (Annex B, AUD + SPS/PPS on every IDR, GOP 30) + Opus 48 kHz mono 20 ms
//   mjpeg0: JPEG 320x240@15
// with t = capture wall-clock µs at emission. It stands for "a third-party Node socket.io relay"
// in the tests, and lets the page be developed without the gateway.
//
// usage: node fake-gateway.js --port N [--host 127.0.0.1] [--root src/viewer] [--cache DIR] [--token SECRET] [--ns /namespace]
// prints "listening http://HOST:PORT/" once ready.
'use strict';
const fs = require('fs');
const path = require('path');
const http = require('http');
const { execFileSync } = require('child_process');
const { Server } = require('socket.io');

const arg = (name, def) => { const i = process.argv.indexOf('--' + name); return i > 0 ? process.argv[i + 1] : def; };
const port = Number(arg('port', '0'));
const host = arg('host', '127.0.0.1');
const root = path.resolve(arg('root', path.join(__dirname, '../../../src/viewer')));
const token = arg('token', '');
const nsp = arg('ns', '/');
const cache = path.resolve(arg('cache', path.join(require('os').tmpdir(), 'sioedge-fake-media')));

// ---- media generation (once, cached; atomic rename so parallel tests can share the cache)
const GEN = {
  'cam0.h264': 'videotestsrc num-buffers=300 pattern=smpte horizontal-speed=2 ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! timeoverlay font-desc="Sans 20" ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=600 ! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au,profile=constrained-baseline',
  'cam0.ogg': 'audiotestsrc num-buffers=500 samplesperbuffer=960 freq=440 volume=0.3 ! audio/x-raw,rate=48000,channels=1 ! opusenc frame-size=20 ! oggmux',
  'mjpeg0.mjpeg': 'videotestsrc num-buffers=150 pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 ! jpegenc quality=60',
};
fs.mkdirSync(cache, { recursive: true });
function media(name) {
  const file = path.join(cache, name);
  if (!fs.existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    execFileSync('sh', ['-c', `gst-launch-1.0 -q ${GEN[name]} ! filesink location="${tmp}"`], { stdio: 'inherit', timeout: 60000 });
    fs.renameSync(tmp, file);
  }
  return fs.readFileSync(file);
}

/** Splits an Annex B byte stream into access units at each AUD (NAL type 9). */
function h264AccessUnits(buf) {
  const starts = [];
  for (let i = 0; i + 4 < buf.length; i++) {
    if (buf[i] === 0 && buf[i + 1] === 0 && buf[i + 2] === 1 && (buf[i + 3] & 31) === 9) starts.push(buf[i - 1] === 0 && i > 0 ? i - 1 : i);
  }
  return starts.map((s, k) => {
    const data = buf.subarray(s, k + 1 < starts.length ? starts[k + 1] : buf.length);
    let key = false;
    for (let i = 0; i + 3 < data.length; i++) if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1 && (data[i + 3] & 31) === 5) { key = true; break; }
    return { data, key };
  });
}
/** Opus packets from an Ogg stream (skips OpusHead/OpusTags). */
function oggPackets(buf) {
  const out = [];
  let o = 0, cur = [];
  while (o + 27 <= buf.length && buf.toString('latin1', o, o + 4) === 'OggS') {
    const nseg = buf[o + 26], lace = buf.subarray(o + 27, o + 27 + nseg);
    let p = o + 27 + nseg;
    for (const l of lace) { cur.push(buf.subarray(p, p + l)); p += l; if (l < 255) { out.push(Buffer.concat(cur)); cur = []; } }
    o = p;
  }
  return out.filter((pk) => !pk.subarray(0, 8).toString('latin1').startsWith('Opus'));
}
/** JPEG pictures from concatenated JPEG files (SOI..EOI). */
function jpegs(buf) {
  const out = [];
  let s = 0;
  for (let i = 2; i + 1 < buf.length; i++) if (buf[i] === 0xff && buf[i + 1] === 0xd9) { out.push({ data: buf.subarray(s, i + 2), key: true }); s = i + 2; i++; }
  return out;
}

const tracks = {
  cam0: [
    { info: { track: 'video', codec: 'h264', codecString: 'avc1.42C00D', width: 320, height: 240, fps: 30 }, frames: h264AccessUnits(media('cam0.h264')), us: 1e6 / 30 },
    { info: { track: 'audio', codec: 'opus', sampleRate: 48000, channels: 1 }, frames: oggPackets(media('cam0.ogg')).map((data) => ({ data, key: true })), us: 20000 },
  ],
  mjpeg0: [{ info: { track: 'video', codec: 'mjpeg', width: 320, height: 240, fps: 15 }, frames: jpegs(media('mjpeg0.mjpeg')), us: 1e6 / 15 }],
};
const announce = (stream) => ({ stream, tracks: tracks[stream].map((t) => t.info) });

// ---- HTTP: the viewer page
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };
const server = http.createServer((req, res) => {
  const p = new URL(req.url, 'http://x').pathname;
  const name = p === '/' ? 'index.html' : path.basename(p);
  const file = path.join(root, name);
  if (!TYPES[path.extname(name)] || !fs.existsSync(file)) { res.writeHead(404).end('not found'); return; }
  res.writeHead(200, { 'content-type': TYPES[path.extname(name)], 'cache-control': 'no-store' }).end(fs.readFileSync(file));
});
server.on('connection', (s) => s.setNoDelay(true));
const io = new Server(server, { maxHttpBufferSize: 4e6 }).of(nsp);

// ---- real-time replay; the GOP since the last keyframe is cached for late joiners
const gop = {}; // "stream/track" -> [[meta, data], ...]
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
for (const [stream, trs] of Object.entries(tracks)) {
  for (const tr of trs) {
    const key = `${stream}/${tr.info.track}`, video = tr.info.codec !== 'opus';
    const start = performance.now();
    let i = 0;
    const tick = () => {
      const f = tr.frames[i % tr.frames.length];
      const meta = { stream, track: tr.info.track, seq: i, pts: Math.round(i * tr.us), key: f.key, t: nowUs() };
      if (video) { if (f.key) gop[key] = []; gop[key]?.push([meta, f.data]); }
      io.to(stream).emit('media', meta, f.data);
      i++;
      setTimeout(tick, Math.max(0, start + i * tr.us / 1000 - performance.now()));
    };
    tick();
  }
}

// like the gateway's viewer_token: CONNECT auth {token} must match
io.use((socket, next) => next(!token || socket.handshake.auth?.token === token ? undefined : new Error('unauthorized')));
io.on('connection', (socket) => {
  socket.on('streams', (...a) => typeof a[a.length - 1] === 'function' && a[a.length - 1](Object.keys(tracks).map((s) => ({ ...announce(s), device: 'fake-gateway', state: 'live' }))));
  socket.on('watch', (req, ack) => {
    const stream = req && req.stream;
    if (!tracks[stream]) { if (typeof ack === 'function') ack({ error: 'unknown stream' }); return; }
    if (typeof ack === 'function') ack(announce(stream));
    socket.emit('announce', announce(stream));
    for (const tr of tracks[stream]) {
      socket.emit('status', { stream, track: tr.info.track, state: 'live', reason: '' });
      for (const [meta, data] of gop[`${stream}/${tr.info.track}`] || []) socket.emit('media', meta, data);
    }
    socket.join(stream);
  });
  socket.on('unwatch', (req) => req && socket.leave(req.stream));
});

server.listen(port, host, () => console.log(`listening http://${host}:${server.address().port}/`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
