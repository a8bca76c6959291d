// sioedge viewer: lists the gateway's (or relay's) streams and plays them.
// Secure origin: WebCodecs (lowest latency). Plain HTTP: fragmented MP4 muxed here, played by MSE.
// MJPEG: createImageBitmap on any origin. Talks the event contract over a tiny Socket.IO v5 client.

const params = new URLSearchParams(location.search);
const meta = (n) => document.querySelector(`meta[name="sioedge-${n}"]`)?.content;
const CFG = {
  nsp: params.get('ns') || meta('namespace') || '/',
  path: params.get('path') || meta('path') || '/socket.io/',
  server: params.get('server') || location.origin.replace(/^http/, 'ws'),
  secret: params.get('token') || params.get('password') || sessionStorage.getItem('sioedge-secret') || '',
  mode: params.get('mode') || '', // "mse" forces the MSE path on a secure origin (debugging)
};
const MS = window.ManagedMediaSource || window.MediaSource;
const FEAT = {
  secure: window.isSecureContext,
  videoDecoder: window.isSecureContext && 'VideoDecoder' in window,
  audioDecoder: window.isSecureContext && 'AudioDecoder' in window,
  mse: !!MS,
  managedMediaSource: !!window.ManagedMediaSource,
  mseOpus: !!MS && MS.isTypeSupported('audio/mp4; codecs="opus"'),
  webAudio: 'AudioContext' in window,
};
const H264_PATH = FEAT.videoDecoder && CFG.mode !== 'mse' ? 'webcodecs' : FEAT.mse ? 'mse' : 'none';
const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;
const $ = (s) => document.querySelector(s);
const el = (tag, { dataset, ...props } = {}, ...kids) => {
  const e = Object.assign(document.createElement(tag), props);
  Object.assign(e.dataset, dataset);
  e.append(...kids);
  return e;
};

/** Debug/state object for tests and the curious: `window.sioedge`. */
const dbg = window.sioedge = { path: H264_PATH, features: FEAT, cfg: CFG, conn: 'connecting', connects: 0, streams: [], players: {} };

// ---------------------------------------------------------------- Socket.IO v5 client (Engine.IO v4, WebSocket only)
class Sio {
  constructor(url, nsp, auth) {
    Object.assign(this, { url, nsp, auth, handlers: {}, acks: new Map(), nextAck: 0, attempt: 0, ws: null, state: 'connecting' });
    this.prefix = nsp === '/' ? '' : nsp + ',';
    this.open();
  }
  on(ev, fn) { this.handlers[ev] = fn; }
  fire(ev, ...a) { this.handlers[ev]?.(...a); }
  /** Emits an event; resolves with the ack's arguments (array), rejects after `ms`. */
  call(ev, data, ms = 5000) {
    return new Promise((resolve, reject) => {
      if (this.state !== 'connected') return reject(new Error('not connected'));
      const id = this.nextAck++;
      const timer = setTimeout(() => { this.acks.delete(id); reject(new Error(ev + ': no ack')); }, ms);
      this.acks.set(id, (args) => { clearTimeout(timer); resolve(args); });
      this.send('42' + this.prefix + id + JSON.stringify(data === undefined ? [ev] : [ev, data]));
    });
  }
  emit(ev, data) { if (this.state === 'connected') this.send('42' + this.prefix + JSON.stringify([ev, data])); }
  send(s) { if (this.ws?.readyState === 1) this.ws.send(s); }
  open() {
    const ws = this.ws = new WebSocket(this.url);
    ws.binaryType = 'arraybuffer';
    this.partial = null;
    this.heard(20000);
    ws.onmessage = (m) => { if (ws === this.ws) this.frame(m.data); };
    ws.onclose = () => this.lost(ws, 'closed');
  }
  /** Liveness: the server pings every pingInterval; silence for pingInterval+pingTimeout = dead link. */
  heard(ms = this.deadMs) {
    clearTimeout(this.deadTimer);
    const ws = this.ws;
    this.deadTimer = setTimeout(() => { ws.close(); this.lost(ws, 'ping timeout'); }, ms);
  }
  lost(ws, why) {
    if (ws !== this.ws) return;
    this.ws = null;
    clearTimeout(this.deadTimer);
    for (const cb of this.acks.values()) cb([]);
    this.acks.clear();
    const was = this.state;
    this.state = 'reconnecting';
    if (was === 'connected') this.fire('disconnect', why);
    // Backoff 250 ms doubling to 2 s, +-30 % jitter: a restarted gateway is found within ~2 s.
    const delay = Math.min(2000, 250 * 2 ** this.attempt++) * (0.7 + Math.random() * 0.6);
    this.fire('state', `reconnecting (${this.attempt})`);
    setTimeout(() => this.open(), delay);
  }
  frame(d) {
    if (typeof d !== 'string') { // binary attachment of a BINARY_EVENT/BINARY_ACK
      const p = this.partial;
      if (!p) return;
      p.bufs.push(d);
      if (p.bufs.length === p.n) { this.partial = null; this.packet(p.type, p.id, fill(p.data, p.bufs)); }
      return;
    }
    this.heard();
    switch (d[0]) {
      case '0': { // Engine.IO open
        const o = JSON.parse(d.slice(1));
        this.deadMs = (o.pingInterval || 25000) + (o.pingTimeout || 20000);
        this.heard();
        this.send('40' + this.prefix + (this.auth ? JSON.stringify(this.auth) : ''));
        break;
      }
      case '2': this.send('3' + d.slice(1)); break; // ping -> pong
      case '1': this.ws?.close(); this.lost(this.ws, 'server close'); break;
      case '4': this.sio(d.slice(1)); break;
    }
  }
  sio(s) {
    const type = +s[0];
    let i = 1, n = 0, nsp = '/';
    if (type === 5 || type === 6) { const j = s.indexOf('-', i); n = +s.slice(i, j); i = j + 1; }
    if (s[i] === '/') { let j = s.indexOf(',', i); if (j < 0) j = s.length; nsp = s.slice(i, j); i = j + 1; }
    let j = i;
    while (j < s.length && s.charCodeAt(j) >= 48 && s.charCodeAt(j) <= 57) j++;
    const id = j > i ? +s.slice(i, j) : null;
    const data = j < s.length ? JSON.parse(s.slice(j)) : undefined;
    if (nsp !== this.nsp) return;
    if (n > 0) this.partial = { type, id, data, n, bufs: [] };
    else this.packet(type, id, data);
  }
  packet(type, id, data) {
    switch (type) {
      case 0: this.state = 'connected'; this.attempt = 0; this.fire('connect'); break;
      case 1: this.ws?.close(); this.lost(this.ws, 'server disconnect'); break; // a gateway restart: come back
      case 2: case 5: {
        const [ev, ...args] = data;
        if (id !== null) args.push((...r) => this.send('43' + this.prefix + id + JSON.stringify(r)));
        this.fire(ev, ...args);
        break;
      }
      case 3: case 6: { const cb = this.acks.get(id); this.acks.delete(id); cb?.(data); break; }
      case 4: this.fire('state', 'refused: ' + (data?.message || 'connect error')); this.ws?.close(); break;
    }
  }
}
/** Replaces `{_placeholder:true,num}` with the received attachments. */
function fill(v, bufs) {
  if (Array.isArray(v)) return v.map((x) => fill(x, bufs));
  if (v && typeof v === 'object') {
    if (v._placeholder === true && typeof v.num === 'number') return bufs[v.num];
    for (const k of Object.keys(v)) v[k] = fill(v[k], bufs);
  }
  return v;
}

// ---------------------------------------------------------------- H.264 helpers
/** NAL units of an Annex B access unit, as subarrays without start codes. */
function nalUnits(u8) {
  const out = [], n = u8.length;
  let i = 0, start = -1;
  const cut = (end) => { while (end > start && u8[end - 1] === 0) end--; out.push(u8.subarray(start, end)); };
  while (i + 2 < n) {
    if (u8[i + 2] > 1) { i += 3; continue; }
    if (u8[i + 2] === 1 && u8[i + 1] === 0 && u8[i] === 0) { if (start >= 0) cut(i); start = i + 3; i += 3; continue; }
    i++;
  }
  if (start >= 0) cut(n);
  return out;
}
const hex2 = (b) => b.toString(16).padStart(2, '0').toUpperCase();
/** RFC 6381 codec string from an SPS NAL (profile, constraint flags, level). */
const avcCodec = (sps) => 'avc1.' + hex2(sps[1]) + hex2(sps[2]) + hex2(sps[3]);
function paramSets(u8) {
  let sps = null, pps = null;
  for (const nal of nalUnits(u8)) { const t = nal[0] & 31; if (t === 7) sps ??= nal; else if (t === 8) pps ??= nal; }
  return { sps, pps };
}

// ---------------------------------------------------------------- ISO BMFF (fragmented MP4) writer
function concat(parts) {
  let len = 0; for (const p of parts) len += p.length;
  const out = new Uint8Array(len); let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
const u8s = (...a) => new Uint8Array(a);
const u16 = (v) => u8s(v >> 8 & 255, v & 255);
const u32 = (v) => u8s(v >>> 24, v >> 16 & 255, v >> 8 & 255, v & 255);
const u64 = (v) => concat([u32(Math.floor(v / 2 ** 32)), u32(v % 2 ** 32)]);
const str = (s) => new Uint8Array([...s].map((c) => c.charCodeAt(0)));
const zeros = (n) => new Uint8Array(n);
function box(type, ...parts) { const body = concat(parts); return concat([u32(body.length + 8), str(type), body]); }
const full = (type, version, flags, ...parts) => box(type, u8s(version, flags >> 16 & 255, flags >> 8 & 255, flags & 255), ...parts);
const MATRIX = concat([u32(0x10000), u32(0), u32(0), u32(0), u32(0x10000), u32(0), u32(0), u32(0), u32(0x40000000)]);

/** Init segment (ftyp+moov) for one track with track_ID 1. */
function initSegment(kind, timescale, entry, w = 0, h = 0) {
  const video = kind === 'video';
  const tkhd = full('tkhd', 0, 3, u32(0), u32(0), u32(1), u32(0), u32(0), zeros(8), u16(0), u16(0), u16(video ? 0 : 0x100), u16(0), MATRIX, u32(w << 16), u32(h << 16));
  const mdhd = full('mdhd', 0, 0, u32(0), u32(0), u32(timescale), u32(0), u16(0x55c4), u16(0));
  const hdlr = full('hdlr', 0, 0, u32(0), str(video ? 'vide' : 'soun'), zeros(12), str('sioedge\0'));
  const head = video ? full('vmhd', 0, 1, zeros(8)) : full('smhd', 0, 0, zeros(4));
  const dinf = box('dinf', full('dref', 0, 0, u32(1), full('url ', 0, 1)));
  const stbl = box('stbl', full('stsd', 0, 0, u32(1), entry), full('stts', 0, 0, u32(0)), full('stsc', 0, 0, u32(0)),
    full('stsz', 0, 0, u32(0), u32(0)), full('stco', 0, 0, u32(0)));
  const mvhd = full('mvhd', 0, 0, u32(0), u32(0), u32(1000), u32(0), u32(0x10000), u16(0x100), zeros(10), MATRIX, zeros(24), u32(2));
  const trak = box('trak', tkhd, box('mdia', mdhd, hdlr, box('minf', head, dinf, stbl)));
  const mvex = box('mvex', full('trex', 0, 0, u32(1), u32(1), u32(0), u32(0), u32(0)));
  return concat([box('ftyp', str('isom'), u32(512), str('isomiso6mp41')), box('moov', mvhd, trak, mvex)]);
}
function avc1Entry(sps, pps, w, h) {
  const high = [100, 110, 122, 144].includes(sps[1]);
  const avcC = box('avcC', u8s(1, sps[1], sps[2], sps[3], 0xff, 0xe1), u16(sps.length), sps, u8s(1), u16(pps.length), pps,
    high ? u8s(0xfd, 0xf8, 0xf8, 0) : zeros(0));
  return box('avc1', zeros(6), u16(1), zeros(16), u16(w), u16(h), u32(0x480000), u32(0x480000), u32(0), u16(1), zeros(32),
    u16(0x18), u16(0xffff), avcC);
}
function opusEntry(channels, rate) {
  const dOps = box('dOps', u8s(0, channels), u16(0), u32(rate), u16(0), u8s(0));
  return box('Opus', zeros(6), u16(1), zeros(8), u16(channels), u16(16), zeros(4), u32(48000 * 65536), dOps);
}
/** moof+mdat with one sample. */
function fragment(seq, time, dur, key, data) {
  const moof = (off) => box('moof', full('mfhd', 0, 0, u32(seq)), box('traf', full('tfhd', 0, 0x20000, u32(1)),
    full('tfdt', 1, 0, u64(time)), full('trun', 0, 0x701, u32(1), u32(off), u32(dur), u32(data.length), u32(key ? 0x2000000 : 0x1010000))));
  const size = moof(0).length;
  return concat([moof(size + 8), u32(data.length + 8), str('mdat'), data]);
}
/** Opus packet duration in 48 kHz samples, from its TOC byte (RFC 6716 3.1). */
function opusSamples(p) {
  const c = p[0] >> 3;
  const ms10 = c < 12 ? [10, 20, 40, 60][c & 3] : c < 16 ? [10, 20][c & 1] : [2.5, 5, 10, 20][c & 3];
  const frames = (p[0] & 3) === 0 ? 1 : (p[0] & 3) < 3 ? 2 : (p[1] & 63);
  return ms10 * 48 * frames;
}

// ---------------------------------------------------------------- audio output (Web Audio, small jitter buffer)
let actx = null;
function audioContext() {
  if (!actx && FEAT.webAudio) actx = new AudioContext({ latencyHint: 'interactive' });
  return actx;
}
document.addEventListener('pointerdown', () => actx?.resume(), { capture: true });
const JITTER_S = 0.06;
class AudioOut {
  constructor(player) { this.player = player; this.next = 0; }
  setMuted(m) {
    const ctx = audioContext();
    if (!ctx) return;
    if (!this.gain) { this.gain = ctx.createGain(); this.gain.connect(ctx.destination); }
    this.gain.gain.value = m ? 0 : 1;
    if (!m) ctx.resume();
  }
  /** Schedules planar float samples on the AudioContext clock, ~60 ms behind the newest packet. */
  play(planes, rate) {
    const ctx = actx;
    if (!ctx || ctx.state !== 'running' || !this.gain) return;
    const n = planes[0].length, now = ctx.currentTime;
    if (this.next < now + 0.01 || this.next > now + 0.3) this.next = now + JITTER_S; // underrun or drift: re-anchor
    const buf = ctx.createBuffer(planes.length, n, rate);
    planes.forEach((p, i) => buf.copyToChannel(p, i));
    const src = ctx.createBufferSource();
    src.buffer = buf; src.connect(this.gain); src.start(this.next);
    this.next += n / rate;
    this.player.st.audioPlayed++;
  }
  close() { this.gain?.disconnect(); }
}

// ---------------------------------------------------------------- sinks: one per track kind and path
/** H.264 via WebCodecs: Annex B in, newest frame drawn on the next animation frame. */
class WcVideo {
  constructor(player, info) {
    Object.assign(this, { player, info, codec: null, frame: null, ts: new Map(), needKey: true });
    this.canvas = el('canvas', { width: info.width || 320, height: info.height || 240 });
    this.g = this.canvas.getContext('2d');
    this.dec = this.newDecoder();
  }
  newDecoder() {
    return new VideoDecoder({ output: (f) => this.output(f), error: (e) => { this.player.note('video decoder: ' + e.message); this.codec = null; this.needKey = true; } });
  }
  push(m, data) {
    const st = this.player.st;
    if (m.key) {
      const { sps } = paramSets(data);
      const codec = sps ? avcCodec(sps) : this.info.codecString;
      if (codec && codec !== this.codec) { // first keyframe, or the stream changed profile/level
        if (this.dec.state === 'closed') this.dec = this.newDecoder();
        this.dec.configure({ codec, optimizeForLatency: true });
        this.codec = codec;
      }
      this.needKey = false;
    }
    if (this.needKey || !this.codec) { st.dropped++; return; }
    // a stalled decoder (not the late-joiner GOP burst, up to one GOP at once): restart at the next keyframe
    if (this.dec.decodeQueueSize > 2 * (this.info.fps || 30)) { this.dec.reset(); this.codec = null; this.needKey = true; this.ts.clear(); st.dropped++; return; }
    if (this.ts.size > 200) this.ts.clear();
    this.ts.set(m.pts, m.t);
    this.dec.decode(new EncodedVideoChunk({ type: m.key ? 'key' : 'delta', timestamp: m.pts, data }));
  }
  output(f) {
    const t = this.ts.get(f.timestamp);
    this.ts.delete(f.timestamp);
    this.player.decoded('video', t);
    if (this.frame) { this.frame.close(); this.player.st.skipped++; } else requestAnimationFrame(() => this.draw());
    this.frame = f;
  }
  draw() {
    const f = this.frame;
    if (!f) return;
    this.frame = null;
    if (this.canvas.width !== f.displayWidth || this.canvas.height !== f.displayHeight) { this.canvas.width = f.displayWidth; this.canvas.height = f.displayHeight; }
    this.g.drawImage(f, 0, 0);
    f.close();
    this.player.drawn();
  }
  close() { this.frame?.close(); if (this.dec.state !== 'closed') this.dec.close(); }
}

/** MJPEG: each frame is a JPEG; decode off-thread with createImageBitmap, keep only the newest. */
class JpegVideo {
  constructor(player, info) {
    Object.assign(this, { player, busy: false, queued: null });
    this.canvas = el('canvas', { width: info.width || 320, height: info.height || 240 });
    this.g = this.canvas.getContext('2d');
  }
  push(m, data) {
    if (this.busy) { if (this.queued) this.player.st.dropped++; this.queued = [m, data]; return; }
    this.busy = true;
    createImageBitmap(new Blob([data], { type: 'image/jpeg' })).then((bmp) => {
      this.player.decoded('video', m.t);
      requestAnimationFrame(() => {
        if (this.canvas.width !== bmp.width) { this.canvas.width = bmp.width; this.canvas.height = bmp.height; }
        this.g.drawImage(bmp, 0, 0); bmp.close(); this.player.drawn();
      });
    }, () => this.player.st.dropped++).finally(() => {
      this.busy = false;
      const q = this.queued; this.queued = null;
      if (q) this.push(...q);
    });
  }
  close() {}
}

/** Opus via WebCodecs AudioDecoder into Web Audio. */
class WcAudio {
  constructor(player, info) {
    this.player = player;
    this.dec = new AudioDecoder({ output: (a) => this.output(a), error: (e) => player.note('audio decoder: ' + e.message) });
    this.dec.configure({ codec: 'opus', sampleRate: info.sampleRate || 48000, numberOfChannels: info.channels || 1 });
  }
  push(m, data) {
    if (this.dec.state !== 'configured') return;
    if (this.dec.decodeQueueSize > 50) { this.player.st.dropped++; return; }
    this.dec.decode(new EncodedAudioChunk({ type: 'key', timestamp: m.pts, data }));
  }
  output(a) {
    const planes = [];
    for (let c = 0; c < a.numberOfChannels; c++) {
      const p = new Float32Array(a.numberOfFrames);
      a.copyTo(p, { planeIndex: c, format: 'f32-planar' });
      planes.push(p);
    }
    this.player.decoded('audio');
    this.player.audio.play(planes, a.sampleRate);
    a.close();
  }
  close() { if (this.dec.state !== 'closed') this.dec.close(); }
}

/** Raw PCM (s16le interleaved) straight into Web Audio; works on any origin. */
class PcmAudio {
  constructor(player, info) { Object.assign(this, { player, ch: info.channels || 1, rate: info.sampleRate || 48000 }); }
  push(m, data) {
    const s = new Int16Array(data.buffer, data.byteOffset, data.byteLength >> 1), n = Math.floor(s.length / this.ch);
    const planes = Array.from({ length: this.ch }, (_, c) => Float32Array.from({ length: n }, (_, i) => s[i * this.ch + c] / 32768));
    this.player.decoded('audio');
    this.player.audio.play(planes, this.rate);
  }
  close() {}
}

/**
 * H.264 (+ Opus) through Media Source Extensions: the page muxes fragmented MP4 itself, one
 * SourceBuffer per track. Both tracks are put on the capture clock (`t`) so they stay in sync, and
 * the element is held near the live edge (seek when > 0.8 s behind, play faster when > 0.2 s).
 */
class MseSink {
  constructor(player, vInfo, aInfo) {
    this.player = player;
    this.video = el('video', { muted: true, playsInline: true, autoplay: true, disableRemotePlayback: true });
    if (!vInfo) this.video.hidden = true;
    this.ms = new MS();
    this.url = URL.createObjectURL(this.ms);
    this.video.src = this.url;
    this.video.onerror = () => { // a decode error kills the MediaSource: start over, a second later
      const why = 'media error: ' + (this.video.error?.message || this.video.error?.code);
      setTimeout(() => this.closed || this.player.rebuild(why), 1000);
    };
    this.tracks = {};
    if (vInfo) this.tracks.video = { info: vInfo, sb: null, q: [], seq: 1, ready: false };
    if (aInfo) this.tracks.audio = { info: aInfo, sb: null, q: [], seq: 1, ready: true, entry: opusEntry(aInfo.channels || 1, aInfo.sampleRate || 48000) };
    this.t0 = null; this.early = []; this.tmap = new Map();
    this.ms.addEventListener('sourceopen', () => this.setup(), { once: true });
    this.timer = setInterval(() => this.tick(), 200);
    if (this.video.requestVideoFrameCallback) this.video.requestVideoFrameCallback((n, md) => this.presented(md));
  }
  /** SourceBuffers can only be added before the first init segment: wait for the video's SPS. */
  setup() {
    const trs = Object.values(this.tracks);
    if (this.ms.readyState !== 'open' || !trs.every((t) => t.ready) || trs.some((t) => t.sb)) return;
    for (const [kind, tr] of Object.entries(this.tracks)) {
      const mime = kind === 'video' ? `video/mp4; codecs="${tr.codec}"` : 'audio/mp4; codecs="opus"';
      try { tr.sb = this.ms.addSourceBuffer(mime); } catch (e) { this.player.note(`MSE ${mime}: ${e.message}`); return; }
      tr.sb.mode = 'segments';
      tr.sb.addEventListener('updateend', () => this.pump(tr));
      tr.q.push(kind === 'video' ? initSegment('video', 90000, tr.entry, tr.w, tr.h) : initSegment('audio', 48000, tr.entry));
    }
    const early = this.early; this.early = [];
    for (const a of early) this.push(...a);
    for (const tr of trs) this.pump(tr);
  }
  push(kind, m, data) {
    const tr = this.tracks[kind];
    if (!tr) return;
    if (kind === 'video' && !tr.ready) {
      if (!m.key) { this.player.st.dropped++; return; }
      const { sps, pps } = paramSets(data);
      if (!sps || !pps) { this.player.st.dropped++; return; }
      Object.assign(tr, { ready: true, sps, codec: avcCodec(sps), w: tr.info.width || 640, h: tr.info.height || 480 });
      tr.entry = avc1Entry(sps, pps, tr.w, tr.h);
      this.setup();
    }
    if (!tr.sb) { if (this.early.length < 200) this.early.push([kind, m, data]); return; }
    if (tr.skipToKey && !m.key) { this.player.st.dropped++; return; }
    tr.skipToKey = false;
    // Timeline: microseconds since the first capture time seen (minus 1 s so early audio is >= 0),
    // following the track's pts between re-anchors so sample spacing stays regular.
    this.t0 ??= m.t - 1e6;
    const est = m.t - this.t0;
    if (!tr.anchor || Math.abs(tr.anchor.us + m.pts - tr.anchor.pts - est) > 500000) tr.anchor = { us: est, pts: m.pts };
    const us = tr.anchor.us + m.pts - tr.anchor.pts;
    if (kind === 'video') {
      if (m.key) {
        const { sps } = paramSets(data);
        if (sps && sps.join() !== tr.sps.join()) { this.player.rebuild('new SPS'); return; }
      }
      const nals = nalUnits(data).filter((n) => { const t = n[0] & 31; return t !== 7 && t !== 8 && t !== 9; });
      const sample = concat(nals.flatMap((n) => [u32(n.length), n]));
      const time = Math.round(us * 0.09), fps = tr.info.fps || 30;
      if (this.tmap.size > 300) this.tmap.clear();
      this.tmap.set(time, m.t);
      tr.q.push(fragment(tr.seq++, time, Math.round(90000 / fps), m.key, sample));
    } else {
      tr.q.push(fragment(tr.seq++, Math.round(us * 0.048), opusSamples(data), true, data));
    }
    if (tr.q.length > 90) { this.player.st.dropped += tr.q.length; tr.q.length = 0; tr.skipToKey = true; } // stalled: drop rather than grow
    this.pump(tr);
  }
  pump(tr) {
    if (!tr.sb || tr.sb.updating || this.ms.readyState !== 'open') return;
    const v = this.video, b = tr.sb.buffered;
    if (b.length && v.currentTime - b.start(0) > 8) { tr.sb.remove(0, v.currentTime - 4); return; } // trim history
    if (!tr.q.length) return;
    const data = concat(tr.q); tr.q = [];
    try { tr.sb.appendBuffer(data); } catch (e) { this.player.note('MSE append: ' + e.message); tr.skipToKey = true; }
  }
  /** Live-edge control, 5x a second. */
  tick() {
    const v = this.video, b = v.buffered;
    if (!b.length) return;
    const end = b.end(b.length - 1), lag = end - v.currentTime;
    this.player.st.lag = lag;
    if (v.currentTime < b.start(0) || lag > 0.8) { v.currentTime = Math.max(b.start(b.length - 1), end - 0.15); this.player.st.seeks++; }
    v.playbackRate = lag > 0.5 ? 1.5 : lag > 0.2 ? 1.15 : 1;
    if (v.paused) v.play().catch(() => {});
    const q = v.getVideoPlaybackQuality?.();
    if (q) { this.player.st.mseFrames = q.totalVideoFrames; this.player.st.mseDropped = q.droppedVideoFrames; }
    this.player.st.mseAudioBytes = v.webkitAudioDecodedByteCount ?? null; // Chromium only
    if (!v.requestVideoFrameCallback && this.tmap.size) { // latency estimate without rVFC: newest t minus buffered lag
      const last = [...this.tmap.values()].pop();
      this.player.st.lat.push((nowUs() - last) / 1000 + lag * 1000 - this.player.offsetMs());
    }
  }
  presented(md) {
    const t = this.tmap.get(Math.round(md.mediaTime * 90000));
    if (t !== undefined) this.player.decoded('video', t, true);
    else this.player.drawn();
    if (!this.closed) this.video.requestVideoFrameCallback((n, m) => this.presented(m));
  }
  close() {
    this.closed = true;
    clearInterval(this.timer);
    this.video.removeAttribute('src'); this.video.load();
    URL.revokeObjectURL(this.url);
  }
}

// ---------------------------------------------------------------- one watched stream
const kindOf = (codec) => (codec === 'h264' || codec === 'mjpeg' ? 'video' : 'audio');
const pct = (a, p) => { if (!a.length) return null; const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };

class Player {
  constructor(name) {
    this.name = name;
    this.muted = true;
    this.audio = new AudioOut(this);
    this.sinks = {};
    this.tracksJson = '';
    this.fastWin = []; // per-second minima of (receive - t), for the clock offset
    this.stateEl = el('span', { className: 'badge', textContent: 'starting' });
    this.muteBtn = el('button', { textContent: 'unmute', onclick: () => this.setMuted(!this.muted) });
    this.screen = el('div', { className: 'screen' });
    this.statsEl = el('div', { className: 'stats' });
    this.card = el('section', { className: 'player' },
      el('div', { className: 'bar' }, el('b', { textContent: name }), this.stateEl, this.muteBtn,
        el('button', { textContent: 'full screen', onclick: () => this.fullscreen() }),
        el('button', { textContent: '✕', title: 'stop watching', onclick: () => stop(name) })),
      this.screen, this.statsEl);
    $('#players').append(this.card);
    this.st = dbg.players[name] = { path: null, state: 'starting', recvFrames: 0, recvBytes: 0, muted: true, videoDecoded: 0, audioDecoded: 0, audioPlayed: 0, drawn: 0,
      dropped: 0, skipped: 0, seqGaps: 0, seeks: 0, lag: null, lat: [], latencyP50: null, latencyP99: null, fps: 0, kbps: 0,
      offsetMs: 0, clickAt: performance.now(), firstPictureMs: null, notes: [] };
    this.last = { decoded: 0, bytes: 0, at: performance.now() };
    this.seq = {};
    this.timer = setInterval(() => this.report(), 1000);
  }
  note(msg) { this.st.notes.push(msg); console.warn(this.name, msg); }
  setState(s, cls = '') { this.st.state = s; this.stateEl.textContent = s; this.stateEl.className = 'badge ' + cls; }
  setMuted(m) {
    this.muted = this.st.muted = m;
    this.muteBtn.textContent = m ? 'unmute' : 'mute';
    this.audio.setMuted(m);
    if (this.sinks.mse) { this.sinks.mse.video.muted = m; if (!m) this.sinks.mse.video.play().catch(() => {}); }
  }
  fullscreen() {
    const c = this.card;
    if (document.fullscreenElement) document.exitFullscreen();
    else if (c.requestFullscreen) c.requestFullscreen();
    else if (c.webkitRequestFullscreen) c.webkitRequestFullscreen();
    else this.sinks.mse?.video.webkitEnterFullscreen?.(); // iPhone: only <video> goes full screen
  }
  /** (Re)builds the decoders from an announce; no-op when the tracks did not change. */
  build(tracks, force = false) {
    const json = JSON.stringify(tracks);
    if (json === this.tracksJson && !force) return;
    this.tracksJson = json;
    this.teardown();
    this.tracks = tracks;
    const v = tracks.find((t) => kindOf(t.codec) === 'video'), a = tracks.find((t) => kindOf(t.codec) === 'audio');
    const mse = {}, paths = [];
    if (v?.codec === 'h264') {
      if (H264_PATH === 'webcodecs') { this.sinks[v.track] = new WcVideo(this, v); paths.push('webcodecs'); }
      else if (H264_PATH === 'mse') { mse.video = v; paths.push('mse'); }
      else showNotice('This browser has neither WebCodecs nor Media Source Extensions: H.264 cannot play.');
    } else if (v?.codec === 'mjpeg') { this.sinks[v.track] = new JpegVideo(this, v); paths.push('mjpeg'); }
    if (a?.codec === 'opus') {
      if ((mse.video || !FEAT.audioDecoder) && FEAT.mseOpus) { mse.audio = a; paths.push('mse-audio'); }
      else if (FEAT.audioDecoder) { this.sinks[a.track] = new WcAudio(this, a); paths.push('webcodecs-audio'); }
      else { showNotice('This browser cannot decode Opus here (Safari MSE has no Opus): video only. Open the page over HTTPS for audio.'); paths.push('no-audio'); }
    } else if (a?.codec === 'pcm') { this.sinks[a.track] = new PcmAudio(this, a); paths.push('pcm'); }
    if (mse.video || mse.audio) {
      this.sinks.mse = new MseSink(this, mse.video, mse.audio);
      if (mse.video) this.sinks[mse.video.track] = { push: (m, d) => this.sinks.mse.push('video', m, d), close() {} };
      if (mse.audio) this.sinks[mse.audio.track] = { push: (m, d) => this.sinks.mse.push('audio', m, d), close() {} };
    }
    this.st.path = paths.join('+');
    this.muteBtn.hidden = !a;
    const screen = this.sinks.mse && mse.video ? this.sinks.mse.video : Object.values(this.sinks).find((s) => s.canvas)?.canvas;
    this.screen.replaceChildren(...[screen, this.sinks.mse?.video].filter((x, i, all) => x && all.indexOf(x) === i));
    this.setMuted(this.muted);
  }
  rebuild(why) { this.note('rebuild: ' + why); this.build(this.tracks, true); }
  teardown() { for (const s of new Set(Object.values(this.sinks))) s.close(); this.sinks = {}; this.seq = {}; }
  media(m, buf) {
    const data = new Uint8Array(buf);
    const st = this.st;
    st.recvFrames++; st.recvBytes += data.length;
    this.observeClock(m.t);
    const prev = this.seq[m.track];
    if (prev !== undefined && m.seq > prev + 1) st.seqGaps += m.seq - prev - 1;
    this.seq[m.track] = m.seq;
    this.sinks[m.track]?.push(m, data);
  }
  /**
   * Clock offset between gateway and browser: recv - t = offset + delay with delay >= 0, so the
   * minimum over a 10 s window bounds the offset from above. We assume synchronised clocks (NTP on a
   * LAN) and only correct when that bound is negative (browser clock provably behind).
   */
  observeClock(t) {
    const d = (nowUs() - t) / 1000, sec = Math.floor(performance.now() / 1000);
    const w = this.fastWin, top = w[w.length - 1];
    if (top && top.sec === sec) top.min = Math.min(top.min, d); else { w.push({ sec, min: d }); if (w.length > 10) w.shift(); }
  }
  offsetMs() { return Math.min(0, ...this.fastWin.map((x) => x.min)); }
  decoded(kind, t, presented = false) {
    if (kind === 'audio') { this.st.audioDecoded++; return; }
    this.st.videoDecoded++;
    if (t !== undefined) { this.st.lat.push((nowUs() - t) / 1000 - this.offsetMs()); if (this.st.lat.length > 1200) this.st.lat.shift(); }
    if (presented) this.drawn();
  }
  drawn() {
    this.st.drawn++;
    if (this.st.firstPictureMs === null) { this.st.firstPictureMs = Math.round(performance.now() - this.st.clickAt); this.setState('live', 'ok'); }
  }
  report() {
    const st = this.st, now = performance.now(), dt = (now - this.last.at) / 1000;
    st.fps = Math.round((st.videoDecoded - this.last.decoded) / dt * 10) / 10;
    st.kbps = Math.round((st.recvBytes - this.last.bytes) * 8 / dt / 1000);
    if (st.recvFrames !== this.last.frames) this.lastMediaAt = now;
    else if (st.state === 'live' && now - (this.lastMediaAt ?? now) > 3000) this.setState('no media', 'warn');
    if (st.state === 'no media' && st.recvFrames !== this.last.frames) this.setState('live', 'ok');
    this.last = { decoded: st.videoDecoded, bytes: st.recvBytes, frames: st.recvFrames, at: now };
    const recent = st.lat.slice(-300);
    st.latencyP50 = pct(recent, 0.5); st.latencyP99 = pct(recent, 0.99);
    st.offsetMs = this.offsetMs();
    const f = (x) => (x === null ? '–' : x.toFixed(0));
    this.statsEl.textContent = `${st.path || '–'}  ${st.fps} fps  ${st.kbps} kbit/s\nlatency p50 ${f(st.latencyP50)} ms  p99 ${f(st.latencyP99)} ms` +
      (st.lag !== null ? `  buffer ${(st.lag * 1000).toFixed(0)} ms` : '') +
      `\ndropped ${st.dropped + st.seqGaps + (st.mseDropped || 0)}  first picture ${f(st.firstPictureMs)} ms  clock offset ${f(st.offsetMs)} ms`;
  }
  close() { clearInterval(this.timer); clearTimeout(this.retry); this.teardown(); this.audio.close(); this.card.remove(); delete dbg.players[this.name]; }
}

// ---------------------------------------------------------------- page wiring
const players = new Map();
// The server checks whichever it is configured with (viewer_token → auth.token, viewer_password → auth.password).
const authFor = (secret) => (secret ? { token: secret, password: secret } : null);
const sio = new Sio(CFG.server + CFG.path + '?EIO=4&transport=websocket', CFG.nsp, authFor(CFG.secret));

function showNotice(text) { const n = $('#notice'); if (!n.textContent.includes(text)) n.textContent += (n.textContent ? ' ' : '') + text; n.hidden = false; }
/** The server refused the CONNECT: ask for the viewer password/token (kept for this tab only). */
function askSecret(why) {
  const input = el('input', { id: 'secret', type: 'password', placeholder: 'password or token', autocomplete: 'current-password' });
  const form = el('form', { onsubmit: (e) => {
    e.preventDefault();
    sessionStorage.setItem('sioedge-secret', input.value);
    sio.auth = authFor(input.value);
    form.remove();
    $('#notice').hidden = true;
  } }, `The server refused this viewer (${why}). `, input, ' ', el('button', { textContent: 'connect' }));
  $('#notice').replaceChildren(form);
  $('#notice').hidden = false;
}
function setConn(s, cls) { dbg.conn = s; const c = $('#conn'); c.textContent = s; c.className = 'badge ' + cls; }

/** Watches p's stream; on refusal (e.g. a restarted gateway whose capture is not up yet) retries every second. */
async function watch(p) {
  clearTimeout(p.retry);
  if (players.get(p.name) !== p || sio.state !== 'connected') return; // the next connect re-watches
  p.setState('watching', 'warn');
  try {
    const [ann] = await sio.call('watch', { stream: p.name });
    if (!ann?.tracks) throw new Error(ann?.error || ann?.message || 'unknown stream');
    if (players.get(p.name) === p) p.build(ann.tracks); // no-op if the announce event came first
  } catch (e) {
    p.setState(`waiting (${e.message})`, 'err');
    p.retry = setTimeout(() => watch(p), 1000);
  }
}
function play(name) {
  audioContext()?.resume(); // this click is the gesture that lets audio start later
  let p = players.get(name);
  if (p) { p.st.clickAt = performance.now(); return; }
  p = new Player(name);
  players.set(name, p);
  watch(p);
}
function stop(name) { const p = players.get(name); if (!p) return; players.delete(name); sio.emit('unwatch', { stream: name }); p.close(); }
dbg.play = play; dbg.stop = stop; dbg.audioState = () => actx?.state ?? 'none';

function renderStreams(list) {
  dbg.streams = list;
  const ul = $('#streams');
  if (!list.length) { ul.replaceChildren(el('li', { className: 'empty', textContent: 'no streams' })); return; }
  ul.replaceChildren(...list.map((s) => el('li', { dataset: { stream: s.stream } },
    el('span', { textContent: s.stream }),
    el('small', { textContent: (s.tracks || []).map((t) => t.codec + (t.width ? ` ${t.width}×${t.height}` : '')).join(' + ') + (s.state && s.state !== 'live' ? ` (${s.state})` : '') }),
    el('button', { textContent: 'play', className: 'play', onclick: () => play(s.stream) }))));
}
async function refreshStreams() {
  let list;
  try { [list] = await sio.call('streams'); } catch { return; } // reconnecting: the next connect refreshes
  if (Array.isArray(list)) renderStreams(list);
}

sio.on('connect', () => {
  dbg.connects++;
  setConn('connected', 'ok');
  refreshStreams();
  for (const p of players.values()) { p.teardown(); p.tracksJson = ''; watch(p); } // resume after a restart
});
sio.on('disconnect', (why) => { setConn('disconnected: ' + why, 'err'); for (const p of players.values()) p.setState('reconnecting', 'warn'); });
sio.on('state', (s) => {
  setConn(s, s.startsWith('refused') ? 'err' : 'warn');
  if (s.startsWith('refused') && !$('#secret')) askSecret(s.slice(9));
});
sio.on('announce', (a) => { const p = players.get(a?.stream); if (p && a.tracks) p.build(a.tracks); });
sio.on('status', (s) => {
  const p = players.get(s?.stream);
  if (!p) return;
  if (s.state === 'down') p.setState(`${s.track} down${s.reason ? ': ' + s.reason : ''}`, 'err');
  else if (p.st.state.includes(' down')) p.setState('live', 'ok');
});
sio.on('media', (m, buf) => { const p = players.get(m?.stream); if (p && buf instanceof ArrayBuffer) p.media(m, buf); });
setInterval(() => { if (sio.state === 'connected') refreshStreams(); }, 5000);

$('#mode').textContent = { webcodecs: 'WebCodecs', mse: 'MSE (fMP4)', none: 'no H.264 decoder' }[H264_PATH] + (FEAT.managedMediaSource ? ' · ManagedMediaSource' : '');
if (H264_PATH === 'mse' && !FEAT.secure) showNotice('Plain-HTTP origin: WebCodecs is unavailable, so H.264 plays through MSE (higher latency). Open this page over HTTPS or on localhost for the lowest latency.');
for (const name of (params.get('watch') || '').split(',').filter(Boolean)) play(name);
