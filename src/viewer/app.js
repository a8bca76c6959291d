// sioedge viewer: plays the gateway's (or relay's) streams; a single stream starts by itself, muted.
// Secure origin: WebCodecs. Plain HTTP: fragmented MP4 muxed here, played by MSE at the live edge.
// MJPEG: createImageBitmap on any origin. Talks the event contract over a tiny Socket.IO v5 client.
// Keys: s statistics, f full screen, m sound. Debug state for tests and the curious: window.sioedge.

const params = new URLSearchParams(location.search);
const meta = (n) => document.querySelector(`meta[name="sioedge-${n}"]`)?.content;
const CFG = {
  nsp: params.get('ns') || meta('namespace') || '/',
  path: params.get('path') || meta('path') || '/socket.io/',
  server: params.get('server') || location.origin.replace(/^http/, 'ws'),
  secret: params.get('token') || params.get('password') || sessionStorage.getItem('sioedge-secret') || '',
  mode: params.get('mode') || '', // "mse" forces the MSE path on a secure origin (debugging)
  lipSync: params.get('lipsync') !== '0', // MSE with sound on: hold the picture to the sound (see MseTrack.steer)
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
// Created on the first "sound on" (a user gesture, so it may run), not before: creating one takes
// Chromium up to ~250 ms, which would delay the first picture.
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
    const ctx = m ? actx : audioContext();
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
/**
 * H.264 via WebCodecs: Annex B in, the newest decoded frame drawn at once. A frame is skipped when a
 * newer one is already in the decoder, so the late joiner's GOP burst (the cached keyframe and the
 * deltas since, sent at once) is decoded but only its newest frame is shown; a guard draws anyway
 * when nothing was drawn for STARVE_MS, so a decoder that always lags still shows something.
 */
const STARVE_MS = 250;
class WcVideo {
  constructor(player, info) {
    Object.assign(this, { player, info, codec: null, ts: new Map(), needKey: true, inFlight: 0, newest: -1, lastDraw: performance.now() });
    this.canvas = el('canvas', { width: info.width || 320, height: info.height || 240 });
    this.g = this.canvas.getContext('2d');
    this.dec = this.newDecoder();
  }
  newDecoder() {
    return new VideoDecoder({ output: (f) => this.output(f), error: (e) => { this.player.note('video decoder: ' + e.message); this.restart(); } });
  }
  restart() { this.codec = null; this.needKey = true; this.ts.clear(); this.inFlight = 0; }
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
    if (this.dec.decodeQueueSize > 2 * (this.info.fps || 30)) { this.dec.reset(); this.restart(); st.dropped++; return; }
    if (this.ts.size > 200) this.ts.clear();
    this.ts.set(m.pts, m.t);
    this.inFlight++; this.newest = m.pts;
    this.dec.decode(new EncodedVideoChunk({ type: m.key ? 'key' : 'delta', timestamp: m.pts, data }));
  }
  output(f) {
    const t = this.ts.get(f.timestamp), now = performance.now(), st = this.player.st;
    this.ts.delete(f.timestamp);
    this.inFlight = Math.max(0, this.inFlight - 1);
    st.videoDecoded++;
    if (f.timestamp < this.newest && this.inFlight > 0 && now - this.lastDraw < STARVE_MS) { f.close(); st.skipped++; return; }
    if (this.canvas.width !== f.displayWidth || this.canvas.height !== f.displayHeight) { this.canvas.width = f.displayWidth; this.canvas.height = f.displayHeight; }
    this.g.drawImage(f, 0, 0);
    f.close();
    this.lastDraw = now;
    this.player.shown(t, now);
  }
  close() { if (this.dec.state !== 'closed') this.dec.close(); }
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
      this.player.st.videoDecoded++;
      if (this.canvas.width !== bmp.width) { this.canvas.width = bmp.width; this.canvas.height = bmp.height; }
      this.g.drawImage(bmp, 0, 0); bmp.close();
      this.player.shown(m.t, performance.now());
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
    this.player.st.audioDecoded++;
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
    this.player.st.audioDecoded++;
    this.player.audio.play(planes, this.rate);
  }
  close() {}
}

/**
 * One track (H.264 or Opus) through Media Source Extensions, for plain-HTTP origins (no WebCodecs).
 * The page muxes one fragmented-MP4 fragment per frame into a MediaSource of the track's own element.
 * Video and audio get separate elements: an element's clock follows its audio, and Chromium keeps
 * some 200-400 ms of decoded audio ahead of the playhead, which would hold the picture that far
 * behind too. With no duration in the init segment (mvhd 0, no mehd) Chromium's MP4 parser marks
 * the stream live (media/formats/mp4/mp4_stream_parser.cc), and for live video it turns off its
 * ~200 ms rendering buffer (the "renderingBufferHint explained" proposal describes this heuristic):
 * each frame is shown once decoded. The audio element only starts on "sound on": most viewers never
 * unmute, and a second media pipeline starting beside the video's slows its first second.
 * After every append the playhead is steered to the newest frame (see steer()); about one frame
 * is kept in hand so arrival jitter does not run the buffer dry every frame. With sound on, the
 * audio element plays those 200-400 ms behind the newest frame and cannot play closer without
 * running dry, so the picture is steered to the sound instead (lip sync), only while it is on.
 */
const KEY_SKIP_S = 0.1, JUMP_S = 0.5, SLACK_FRAMES = 1.5;
class MseTrack {
  constructor(player, kind, info) {
    Object.assign(this, { player, kind, info, q: [], seq: 1, sb: null, closed: false, tmap: new Map(), keyTime: -1 });
    this.video = kind === 'video';
    this.frameS = this.video ? 1 / (info.fps || 30) : 0.02;
    this.el = el(kind, { muted: true, playsInline: true, disableRemotePlayback: true }); // steer() starts it
    if (!this.video) this.entry = opusEntry(info.channels || 1, info.sampleRate || 48000);
    this.ms = new MS();
    this.url = URL.createObjectURL(this.ms);
    this.el.src = this.url;
    this.el.onerror = () => { // a decode error kills the MediaSource: start over, a second later
      const why = `${kind}: ${this.el.error?.message || this.el.error?.code}`;
      setTimeout(() => this.closed || this.player.rebuild(why), 1000);
    };
    this.el.onwaiting = () => this.player.st.waiting++;
    this.ms.addEventListener('sourceopen', () => this.setup(), { once: true });
    if (this.video) this.el.requestVideoFrameCallback?.((n, md) => this.presented(md));
  }
  /** The SourceBuffer needs the codec string: for video, from the first keyframe's SPS. */
  setup() {
    if (this.ms.readyState !== 'open' || !this.entry || this.sb) return;
    const mime = this.video ? `video/mp4; codecs="${this.codec}"` : 'audio/mp4; codecs="opus"';
    try { this.sb = this.ms.addSourceBuffer(mime); } catch (e) { this.player.note(`MSE ${mime}: ${e.message}`); return; }
    this.sb.addEventListener('updateend', () => { this.steer(); this.pump(); });
    this.q.unshift(this.video ? initSegment('video', 90000, this.entry, this.w, this.h) : initSegment('audio', 48000, this.entry));
    this.pump();
  }
  push(m, data) {
    const st = this.player.st;
    if (this.video && !this.entry) {
      const { sps, pps } = m.key ? paramSets(data) : {};
      if (!sps || !pps) { st.dropped++; return; }
      Object.assign(this, { sps, codec: avcCodec(sps), w: this.info.width || 640, h: this.info.height || 480 });
      this.entry = avc1Entry(sps, pps, this.w, this.h);
      this.setup();
    }
    if (this.skipToKey && !m.key) { st.dropped++; return; }
    this.skipToKey = false;
    const us = this.player.timeline(this.kind, m);
    if (this.video) {
      if (m.key) {
        const { sps } = paramSets(data);
        if (sps && sps.join() !== this.sps.join()) { this.player.rebuild('new SPS'); return; }
        this.keyTime = us / 1e6;
      }
      const nals = nalUnits(data).filter((n) => { const t = n[0] & 31; return t !== 7 && t !== 8 && t !== 9; });
      const time = Math.round(us * 0.09);
      if (this.tmap.size > 300) this.tmap.clear();
      this.tmap.set(time, m.t);
      this.q.push(fragment(this.seq++, time, Math.round(90000 * this.frameS), m.key, concat(nals.flatMap((n) => [u32(n.length), n]))));
    } else {
      this.q.push(fragment(this.seq++, Math.round(us * 0.048), opusSamples(data), true, data));
    }
    if (this.q.length > 90) { st.dropped += this.q.length; this.q.length = 0; this.skipToKey = true; } // stalled: drop rather than grow
    this.pump();
  }
  pump() {
    const sb = this.sb;
    if (!sb || sb.updating || this.ms.readyState !== 'open') return;
    const b = sb.buffered, now = this.el.currentTime;
    if (b.length && now - b.start(0) > 10) { sb.remove(0, now - 5); return; } // trim history
    if (!this.q.length) return;
    const data = concat(this.q); this.q = [];
    try { sb.appendBuffer(data); } catch (e) { this.player.note('MSE append: ' + e.message); this.skipToKey = true; }
  }
  /**
   * Live-edge control, after every append (`behind`: how far the playhead is behind the newest
   * frame's start). Video starts once a frame after the first keyframe is in (so the late joiner's
   * old keyframe is never shown on its own) with one jump to the newest frame (Chromium decodes the
   * GOP burst up to it without showing it); then a jump to a fresh keyframe (one frame to decode)
   * when more than KEY_SKIP_S behind, and in between a rate that grows with the lag beyond SLACK_FRAMES.
   */
  steer() {
    const v = this.el, b = this.sb.buffered, st = this.player.st, d = this.frameS;
    if (!b.length || v.seeking) return;
    const end = b.end(b.length - 1), lag = end - v.currentTime, behind = lag - d;
    const jump = (to) => { v.currentTime = to; v.playbackRate = 1; st.seeks++; this.jumped = true; };
    const outside = v.currentTime < b.start(b.length - 1);
    if (!this.video) { // audio: Chromium decides how much it holds; only bound it
      st.audioLag = lag;
      if (lag > JUMP_S || outside) jump(end - d);
    } else {
      st.lag = lag;
      if (this.seq - this.q.length < 3) return; // fragments appended so far: just the first keyframe
      if (!v.requestVideoFrameCallback && v.readyState >= 2) this.player.shown(undefined, performance.now()); // no per-frame callback: count appends
      const slack = SLACK_FRAMES * d, sound = CFG.lipSync && this.shown && this.player.soundClock();
      if (sound) { // lip sync: the picture follows the sound (by rate; a seek only when far off)
        const late = Math.min(sound.currentTime, end - d) - v.currentTime;
        if (Math.abs(late) > JUMP_S || outside) jump(Math.max(b.start(b.length - 1), Math.min(sound.currentTime, end - d)));
        else v.playbackRate = Math.abs(late) > d ? Math.min(1.5, Math.max(0.5, Math.round((1 + late * 2.5) * 20) / 20)) : 1;
      } else if ((!this.jumped && !this.shown && behind > d / 2) || behind > JUMP_S || outside) jump(end - d);
      else if (this.keyTime > v.currentTime && this.keyTime < end && behind > KEY_SKIP_S) jump(this.keyTime);
      else v.playbackRate = behind > slack ? Math.min(2, Math.round((1 + (behind - slack) * 4) * 20) / 20) : 1;
    }
    if (v.paused) v.play().catch(() => {});
  }
  /** requestVideoFrameCallback: the frame's capture time and when it is expected on the glass. */
  presented(md) {
    const t = this.tmap.get(Math.round(md.mediaTime * 90000));
    this.shown = true;
    if (t !== undefined) this.player.shown(t, md.expectedDisplayTime);
    this.player.avSample(md);
    if (!this.closed) this.el.requestVideoFrameCallback((n, m) => this.presented(m));
  }
  close() {
    this.closed = true;
    this.el.removeAttribute('src'); this.el.load();
    URL.revokeObjectURL(this.url);
  }
}

// ---------------------------------------------------------------- one watched stream
const kindOf = (codec) => (codec === 'h264' || codec === 'mjpeg' ? 'video' : 'audio');
const pct = (a, p) => { if (!a.length) return null; const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
/** A picture that froze this long while frames kept arriving counts as a stall. */
const STALL_MS = 200;

class Player {
  constructor(name) {
    Object.assign(this, { name, muted: true, sinks: {}, tracksJson: '', anchors: {}, t0: null, fastWin: [] }); // fastWin: per-second minima of (receive - t)
    this.audio = new AudioOut(this);
    this.box = el('div', { className: 'media' });
    this.statusEl = el('div', { className: 'status', textContent: 'connecting…' });
    this.statsEl = el('pre', { className: 'stats' });
    this.soundBtn = el('button', { className: 'sound', hidden: true, onclick: () => this.setMuted(!this.muted) });
    // The toolbar: [text, title, action, class]; a further button is one more entry here.
    const tools = [
      ['Snapshot', 'save the picture as JPEG', () => this.snapshot(), 'snap-btn'],
      ['Stats', 'statistics (s)', toggleStats, 'stats-btn'],
      ['Full screen', 'full screen (f)', () => this.fullscreen(), 'fs-btn'],
      ['✕', 'stop watching', () => stop(name), 'close'],
    ];
    this.view = el('div', { className: 'view', ondblclick: () => this.fullscreen(), onpointerdown: () => this.touched() },
      this.box, this.statusEl, this.statsEl, this.soundBtn,
      el('div', { className: 'bar' }, el('b', { textContent: name }),
        ...tools.map(([textContent, title, onclick, className]) => el('button', { textContent, title, onclick, className }))));
    this.snapBtn = this.view.querySelector('.snap-btn');
    this.snapBtn.hidden = true; // until the server says it has snapshots (probeSnapshot)
    this.card = el('section', { className: 'player', dataset: { stream: name } }, this.view);
    $('#players').append(this.card);
    this.st = dbg.players[name] = { path: null, state: 'starting', recvFrames: 0, videoRecv: 0, recvBytes: 0, muted: true, videoDecoded: 0, audioDecoded: 0, audioPlayed: 0,
      drawn: 0, dropped: 0, skipped: 0, seqGaps: 0, seeks: 0, stalls: 0, snapshots: 0, snapshotProbe: null, waiting: 0, lag: null, audioLag: null, av: [], avP50: null, lat: [], latencyP50: null, latencyP99: null,
      fps: 0, kbps: 0, width: 0, height: 0, offsetMs: 0, startAt: performance.now(), firstPictureMs: null, pageToPictureMs: null, notes: [] };
    this.last = { drawn: 0, bytes: 0, at: performance.now() };
    this.seq = {};
    this.timer = setInterval(() => this.report(), 1000);
    this.setMuted(true);
  }
  note(msg) { this.st.notes.push(msg); console.warn(this.name, msg); }
  /** The state, shown over the picture unless live; back from a lost connection, "reconnected" for 3 s. */
  setState(s, cls = '') {
    this.st.state = s;
    clearTimeout(this.statusTimer);
    let text = s === 'live' ? '' : s;
    if (s === 'live' && this.lost) {
      text = 'reconnected'; this.lost = false;
      this.statusTimer = setTimeout(() => { this.statusEl.hidden = true; }, 3000);
    }
    this.statusEl.textContent = text;
    this.statusEl.className = 'status ' + cls;
    this.statusEl.hidden = !text;
  }
  touched() { this.card.classList.add('touched'); clearTimeout(this.touchTimer); this.touchTimer = setTimeout(() => this.card.classList.remove('touched'), 3000); }
  setMuted(m) {
    this.muted = this.st.muted = m;
    this.soundBtn.textContent = m ? 'Sound on' : 'Mute';
    this.soundBtn.title = m ? 'sound on (m)' : 'mute (m)';
    this.soundBtn.classList.toggle('off', m);
    this.audio.setMuted(m);
    const a = this.mseAudio;
    if (!m && a && !this.sinks[a.track]) this.box.append((this.sinks[a.track] = new MseTrack(this, 'audio', a)).el);
    for (const s of Object.values(this.sinks)) if (s.el && !s.video) { s.el.muted = m; if (!m) s.el.play().catch(() => {}); }
  }
  /** Shows the Snapshot button when the server answers HEAD on the stream's snapshot URL (a relay has none for H.264, a third-party server none at all). */
  async probeSnapshot() {
    let status = 0;
    try { status = (await fetch(snapshotUrl(this.name), { method: 'HEAD', headers: authHeaders() })).status; } catch {}
    this.st.snapshotProbe = status;
    this.snapBtn.hidden = status !== 200;
  }
  /** Downloads the server's JPEG of the newest picture as <stream>-<yyyymmdd>-<hhmmss>.jpg. */
  async snapshot() {
    const b = this.snapBtn;
    b.disabled = true;
    try {
      const r = await fetch(snapshotUrl(this.name), { headers: authHeaders(), cache: 'no-store' });
      if (!r.ok) throw new Error(`${r.status} ${(await r.text()).trim()}`);
      const d = new Date(), two = (n) => String(n).padStart(2, '0');
      const stamp = `${d.getFullYear()}${two(d.getMonth() + 1)}${two(d.getDate())}-${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}`;
      const a = el('a', { href: URL.createObjectURL(await r.blob()), download: `${this.name.replace(/[^\w.-]+/g, '_')}-${stamp}.jpg` });
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
      this.st.snapshots++;
    } catch (e) { this.note('snapshot: ' + e.message); b.title = 'snapshot failed: ' + e.message; }
    b.disabled = false;
  }
  /** The audio element while the sound plays (MSE path, sound on), for lip sync; else null. */
  soundClock() {
    const e = !this.muted && this.mseAudio && this.sinks[this.mseAudio.track]?.el;
    return e && !e.paused && e.readyState >= 3 ? e : null;
  }
  /** How far the sound trails the picture just presented (ms, positive: sound late), while it plays. */
  avSample(md) {
    const a = this.soundClock();
    if (!a) return;
    const av = this.st.av, heard = a.currentTime + (md.expectedDisplayTime - performance.now()) / 1000;
    av.push((md.mediaTime - heard) * 1000);
    if (av.length > 600) av.shift();
  }
  fullscreen() {
    const c = this.card;
    if (document.fullscreenElement) document.exitFullscreen();
    else if (c.requestFullscreen) c.requestFullscreen().catch(() => {});
    else if (c.webkitRequestFullscreen) c.webkitRequestFullscreen();
    else Object.values(this.sinks).find((s) => s.video)?.el.webkitEnterFullscreen?.(); // iPhone: only <video> goes full screen
  }
  /** (Re)builds the decoders from an announce; no-op when the tracks did not change. */
  build(tracks, force = false) {
    const json = JSON.stringify(tracks);
    if (json === this.tracksJson && !force) return;
    this.tracksJson = json;
    this.teardown();
    this.tracks = tracks;
    const v = tracks.find((t) => kindOf(t.codec) === 'video'), a = tracks.find((t) => kindOf(t.codec) === 'audio');
    const paths = [];
    if (v?.codec === 'h264') {
      if (H264_PATH === 'webcodecs') { this.sinks[v.track] = new WcVideo(this, v); paths.push('webcodecs'); }
      else if (H264_PATH === 'mse') { this.sinks[v.track] = new MseTrack(this, 'video', v); paths.push('mse'); }
      else showNotice('This browser has neither WebCodecs nor Media Source Extensions: H.264 cannot play.');
    } else if (v?.codec === 'mjpeg') { this.sinks[v.track] = new JpegVideo(this, v); paths.push('mjpeg'); }
    if (a?.codec === 'opus') {
      if (FEAT.audioDecoder) { this.sinks[a.track] = new WcAudio(this, a); paths.push('webcodecs-audio'); }
      else if (FEAT.mseOpus) { this.mseAudio = a; paths.push('mse-audio'); } // its element starts on "sound on": setMuted()
      else { showNotice('This browser cannot decode Opus here (Safari MSE has no Opus): video only. Open the page over HTTPS for sound.'); paths.push('no-audio'); }
    } else if (a?.codec === 'pcm') { this.sinks[a.track] = new PcmAudio(this, a); paths.push('pcm'); }
    this.st.path = paths.join('+');
    this.videoTrack = v?.track;
    this.soundBtn.hidden = !a;
    if (v?.width && v?.height) this.view.style.setProperty('--ar', `${v.width} / ${v.height}`);
    this.box.replaceChildren(...Object.values(this.sinks).map((s) => s.canvas || s.el).filter(Boolean));
    this.setMuted(this.muted);
  }
  rebuild(why) { this.note('rebuild: ' + why); this.build(this.tracks, true); }
  teardown() { for (const s of Object.values(this.sinks)) s.close(); Object.assign(this, { sinks: {}, seq: {}, anchors: {}, t0: null, mseAudio: null }); }
  /**
   * Media time (µs) of a frame on the MSE timeline: microseconds since the first capture time seen
   * (minus 1 s so early audio is >= 0), following the track's pts between re-anchors so sample
   * spacing stays regular. Both tracks share it, so the elements' currentTime are comparable.
   */
  timeline(kind, m) {
    this.t0 ??= m.t - 1e6;
    const est = m.t - this.t0, a = this.anchors[kind];
    if (!a || Math.abs(a.us + m.pts - a.pts - est) > 500000) this.anchors[kind] = { us: est, pts: m.pts };
    const b = this.anchors[kind];
    return b.us + m.pts - b.pts;
  }
  media(m, buf) {
    const data = new Uint8Array(buf);
    const st = this.st;
    st.recvFrames++; st.recvBytes += data.length;
    if (m.track === this.videoTrack) st.videoRecv++;
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
  /**
   * A picture captured at `t` (µs, gateway clock) reaches the screen at `when` (performance.now() ms:
   * the expected display time for <video>, the draw for a canvas). Records its latency, stalls
   * (a picture that froze for STALL_MS while video frames kept coming) and the first picture.
   */
  shown(t, when) {
    const st = this.st;
    if (t !== undefined) { st.lat.push(performance.timeOrigin + when - t / 1000 - this.offsetMs()); if (st.lat.length > 4000) st.lat.shift(); }
    if (this.lastShown !== undefined && when - this.lastShown > STALL_MS && st.videoRecv - this.recvAtShown > 1) st.stalls++;
    this.lastShown = when; this.recvAtShown = st.videoRecv;
    st.drawn++;
    if (st.firstPictureMs === null) { st.firstPictureMs = Math.round(when - st.startAt); st.pageToPictureMs = Math.round(when); this.probeSnapshot(); }
    if (st.state !== 'live' && sio.state === 'connected') this.setState('live', 'ok'); // not a buffered picture after a disconnect
  }
  report() {
    const st = this.st, now = performance.now(), dt = (now - this.last.at) / 1000;
    st.fps = Math.round((st.drawn - this.last.drawn) / dt * 10) / 10;
    st.kbps = Math.round((st.recvBytes - this.last.bytes) * 8 / dt / 1000);
    if (st.recvFrames !== this.last.frames) this.lastMediaAt = now;
    else if (st.state === 'live' && now - (this.lastMediaAt ?? now) > 3000) this.setState('no media', 'warn');
    this.last = { drawn: st.drawn, bytes: st.recvBytes, frames: st.recvFrames, at: now };
    const recent = st.lat.slice(-300);
    st.latencyP50 = pct(recent, 0.5); st.latencyP99 = pct(recent, 0.99);
    st.avP50 = this.soundClock() ? pct(st.av.slice(-30), 0.5) : null;
    st.offsetMs = this.offsetMs();
    const pic = Object.values(this.sinks).find((s) => s.canvas || s.video), e = pic?.canvas || pic?.el;
    st.width = e?.videoWidth ?? e?.width ?? 0; st.height = e?.videoHeight ?? e?.height ?? 0;
    if (!document.body.classList.contains('show-stats')) return;
    const f = (x, unit = ' ms') => (x === null ? '–' : x.toFixed(0) + unit);
    this.statsEl.textContent = `${st.width}×${st.height}  ${st.fps} fps  ${st.kbps} kbit/s\n` +
      `latency ${f(st.latencyP50)} (p99 ${f(st.latencyP99)})` + (st.lag !== null ? `  buffer ${f(st.lag * 1000)}` : '') + '\n' +
      `${st.path || '–'}${H264_PATH === 'mse' && !FEAT.secure ? ' (plain HTTP)' : ''}` + (st.avP50 !== null ? `  audio ${st.avP50 < 0 ? '' : '+'}${f(st.avP50)}` : '') + '\n' +
      `stalls ${st.stalls}  dropped ${st.dropped + st.seqGaps}  first picture ${f(st.firstPictureMs)}`;
  }
  close() { clearInterval(this.timer); clearTimeout(this.retry); this.teardown(); this.audio.close(); this.card.remove(); delete dbg.players[this.name]; }
}

// ---------------------------------------------------------------- page wiring
const players = new Map();
// The server checks whichever it is configured with (viewer_token → auth.token, viewer_password → auth.password).
const authFor = (secret) => (secret ? { token: secret, password: secret } : null);
/** The snapshot URL of a stream on the server the page talks to, and the secret for it. */
const snapshotUrl = (name) => `${CFG.server.replace(/^ws/, 'http')}/api/streams/${encodeURIComponent(name)}/snapshot.jpg`;
const authHeaders = () => (sio.auth?.token ? { Authorization: 'Bearer ' + sio.auth.token } : {});
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
function toggleStats() { document.body.classList.toggle('show-stats'); for (const p of players.values()) p.report(); }

/** Watches p's stream; on refusal (e.g. a restarted gateway whose capture is not up yet) retries every second. */
async function watch(p) {
  clearTimeout(p.retry);
  if (players.get(p.name) !== p || sio.state !== 'connected') return; // the next connect re-watches
  if (!p.lost) p.setState('starting…');
  try {
    const [ann] = await sio.call('watch', { stream: p.name });
    if (!ann?.tracks) throw new Error(ann?.error || ann?.message || 'unknown stream');
    if (players.get(p.name) === p) p.build(ann.tracks); // no-op if the announce event came first
  } catch (e) {
    p.setState(`waiting for the stream (${e.message})`, 'err');
    p.retry = setTimeout(() => watch(p), 1000);
  }
}
function play(name) {
  actx?.resume(); // a click here is a gesture that lets sound start
  if (players.has(name)) return;
  const p = new Player(name);
  players.set(name, p);
  markWatched();
  watch(p);
}
function stop(name) { const p = players.get(name); if (!p) return; players.delete(name); sio.emit('unwatch', { stream: name }); p.close(); markWatched(); }
function markWatched() { for (const b of document.querySelectorAll('#streams button')) b.setAttribute('aria-pressed', players.has(b.dataset.stream)); }
dbg.play = play; dbg.stop = stop; dbg.audioState = () => actx?.state ?? 'none';

/** The stream picker, shown only when there is a choice; a single stream starts by itself (muted). */
let autoplayed = false;
function renderStreams(list) {
  dbg.streams = list;
  const nav = $('#streams');
  nav.hidden = list.length < 2;
  document.body.classList.toggle('single', list.length < 2 && players.size < 2);
  nav.replaceChildren(...list.map((s) => el('button', {
    dataset: { stream: s.stream },
    title: (s.tracks || []).map((t) => t.codec + (t.width ? ` ${t.width}×${t.height}` : '')).join(' + ') + (s.state && s.state !== 'live' ? ` (${s.state})` : ''),
    textContent: s.stream,
    onclick: () => (players.has(s.stream) ? stop(s.stream) : play(s.stream)),
  })));
  markWatched();
  $('#players').dataset.hint = list.length ? 'Pick a stream above.' : 'The server has no streams yet.';
  if (list.length === 1 && !players.size && !autoplayed) { autoplayed = true; play(list[0].stream); }
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
sio.on('disconnect', (why) => {
  setConn('disconnected: ' + why, 'err');
  $('#players').dataset.hint = 'Connection lost: reconnecting…';
  for (const p of players.values()) { p.lost = true; p.setState('connection lost: reconnecting…', 'warn'); }
});
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

document.addEventListener('keydown', (e) => {
  if (e.target.closest?.('input, textarea') || e.ctrlKey || e.metaKey || e.altKey) return;
  const p = players.values().next().value;
  if (e.key === 's') toggleStats();
  else if (e.key === 'f') p?.fullscreen();
  else if (e.key === 'm') p?.setMuted(!p.muted);
});
if (params.has('stats')) toggleStats();
for (const name of (params.get('watch') || '').split(',').filter(Boolean)) { autoplayed = true; play(name); }
