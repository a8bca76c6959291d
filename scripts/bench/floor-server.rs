//! The floor of `scripts/bench-server`: a minimal, correct Socket.IO v5 relay for sioload's
//! contract, written for one thing only — the fewest CPU cycles per delivery — so that the
//! benchmark shows what this machine allows next to the real servers (issue 16). Not part of the
//! product.
//!
//! Contract (sioload's, the same as scripts/bench/bench-server.rs): a viewer's
//! `watch {"stream": id}` (acked `{"ok": true}`) joins room `id`; every `frame` event (JSON meta
//! with `stream`, then the binary frame) is re-emitted with the same arguments to that room.
//!
//! Shape: one thread, one edge-triggered epoll loop (mio), non-blocking sockets with TCP_NODELAY.
//! A publisher is read until the socket is drained; each event is unmasked once into one shared
//! buffer that holds its server frames (the text frame and the binary attachments, headers built
//! once), and every viewer of the room gets a reference-counted handle to it in its pending list
//! (never a copy). After the batch, each viewer with new data gets ONE `writev` carrying every
//! frame pending for it (up to 1 MiB or 1024 slices); when the socket takes only part, the rest
//! waits, with its offset, until the socket is writable again. Nothing is reordered; a viewer more
//! than 16 MiB behind skips whole new events (as a volatile emit would).
//! Short reads and writes count as "drained", as tokio does on Unix (tokio's
//! src/io/poll_evented.rs: the kernel raises the next edge), so no syscall is spent on EAGAIN.
//!
//! Left out, as the contract does not need them: namespaces other than "/", fragmented WebSocket
//! messages (closed), HTTP long-polling, a heartbeat of its own (client pings are answered).
//!
//! Usage: `floor-server --port N` (0 = any; prints "listening on ADDR").

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::rc::Rc;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

const LISTENER: Token = Token(0);
/// The largest client frame accepted (the open packet's `maxPayload`).
const MAX_PAYLOAD: usize = 1_000_000;
/// Binary attachments per event.
const MAX_ATTACHMENTS: usize = 16;
/// One `writev`: at most this many bytes (give or take one frame) and slices (Linux's IOV_MAX).
const WRITE_MAX_BYTES: usize = 1 << 20;
const WRITE_MAX_SLICES: usize = 1024;
/// A viewer with more than this pending skips new events.
const BACKLOG_MAX: usize = 16 << 20;
/// Read buffers start this small (viewers send almost nothing) and double while reads fill them.
const READ_MIN: usize = 4096;
const READ_MAX: usize = 1 << 20;
/// Reads of one connection per turn of the loop before the others get theirs.
const READS_PER_TURN: usize = 8;
/// Event buffers kept for reuse (fresh 16-32 KiB buffers cost brk calls and page faults): how
/// many, and the largest kept.
const POOL_MAX: usize = 256;
const POOL_BUF_MAX: usize = 64 << 10;
/// The longest HTTP upgrade request.
const MAX_REQUEST: usize = 8192;

const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Server frames shared by every viewer they go to.
type Frames = Rc<Vec<u8>>;

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut port = 0u16;
    while let Some(a) = args.next() {
        if a == "--port" {
            port = args
                .next()
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| io::Error::other("--port needs a number"))?;
        }
    }
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    listener.set_nonblocking(true)?;
    println!("listening on {}", listener.local_addr()?);
    Relay::new(TcpListener::from_std(listener))?.run()
}

/// A protocol violation: the connection is closed.
fn violation(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// One client connection.
struct Conn {
    stream: TcpStream,
    /// Bytes read and not yet parsed: `rbuf[start..end]`.
    rbuf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes from `start` the next frame needs (0 while its header is incomplete).
    need: usize,
    upgraded: bool,
    connected: bool,
    sid: u64,
    rooms: Vec<String>,
    /// A binary event waiting for its attachments.
    partial: Option<Partial>,
    /// Frames not yet written; `offset` bytes of the first are.
    out: VecDeque<Frames>,
    offset: usize,
    queued: usize,
    /// In the relay's `dirty` list.
    dirty: bool,
}

/// A binary event being received: its server frames so far and the attachments still to come.
struct Partial {
    frames: Vec<u8>,
    left: usize,
    room: Option<String>,
}

impl Conn {
    fn new(stream: TcpStream, sid: u64) -> Self {
        Conn {
            stream,
            rbuf: Vec::new(),
            start: 0,
            end: 0,
            need: 0,
            upgraded: false,
            connected: false,
            sid,
            rooms: Vec::new(),
            partial: None,
            out: VecDeque::new(),
            offset: 0,
            queued: 0,
            dirty: false,
        }
    }

    /// Makes room to read into and returns how much there is.
    fn spare(&mut self) -> usize {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 && self.rbuf.len() - self.end < self.rbuf.len() / 2 {
            self.rbuf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let want = self.end
            + (self.start + self.need)
                .saturating_sub(self.end)
                .max(READ_MIN);
        if self.rbuf.len() < want {
            self.rbuf.resize(want, 0);
        }
        self.rbuf.len() - self.end
    }

    /// Queues frames for this connection; marks it for the flush at the end of the turn.
    fn send(&mut self, frames: Frames, me: usize, dirty: &mut Vec<usize>) {
        self.queued += frames.len();
        self.out.push_back(frames);
        if !self.dirty {
            self.dirty = true;
            dirty.push(me);
        }
    }

    /// One `writev` with everything pending (again only while whole batches go through); frames
    /// written by their last holder go back to `pool`.
    fn flush(&mut self, pool: &mut Vec<Vec<u8>>) -> io::Result<()> {
        while !self.out.is_empty() {
            let (written, bytes) = {
                let mut slices = [IoSlice::new(&[]); WRITE_MAX_SLICES];
                let (mut n, mut bytes) = (0, 0);
                for (i, f) in self.out.iter().enumerate() {
                    let s = if i == 0 { &f[self.offset..] } else { &f[..] };
                    slices[n] = IoSlice::new(s);
                    n += 1;
                    bytes += s.len();
                    if n == WRITE_MAX_SLICES || bytes >= WRITE_MAX_BYTES {
                        break;
                    }
                }
                (self.stream.write_vectored(&slices[..n]), bytes)
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(w) => {
                    self.advance(w, pool);
                    if w < bytes {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Drops `written` bytes from the front of the pending frames.
    fn advance(&mut self, written: usize, pool: &mut Vec<Vec<u8>>) {
        self.queued -= written;
        let mut left = written;
        while let Some(front) = self.out.front()
            && left > 0
        {
            let rest = front.len() - self.offset;
            if left >= rest {
                left -= rest;
                self.offset = 0;
                if let Some(Ok(mut frames)) = self.out.pop_front().map(Rc::try_unwrap)
                    && pool.len() < POOL_MAX
                    && frames.capacity() <= POOL_BUF_MAX
                {
                    frames.clear();
                    pool.push(frames);
                }
            } else {
                self.offset += left;
                left = 0;
            }
        }
    }
}

/// The event loop and everything it owns.
struct Relay {
    poll: Poll,
    listener: TcpListener,
    /// Connection `i` has token `i + 1`.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    rooms: HashMap<String, Vec<usize>>,
    /// Events to deliver: (room, frames).
    outbox: Vec<(String, Frames)>,
    /// Connections with frames queued this turn.
    dirty: Vec<usize>,
    /// Connections whose reads stopped at `READS_PER_TURN` before draining the socket.
    again: Vec<usize>,
    /// Event buffers written to every viewer, for the next events.
    pool: Vec<Vec<u8>>,
    sids: u64,
}

impl Relay {
    fn new(mut listener: TcpListener) -> io::Result<Self> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Relay {
            poll,
            listener,
            conns: Vec::new(),
            free: Vec::new(),
            rooms: HashMap::new(),
            outbox: Vec::new(),
            dirty: Vec::new(),
            again: Vec::new(),
            pool: Vec::new(),
            sids: 0,
        })
    }

    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = (!self.again.is_empty()).then_some(std::time::Duration::ZERO);
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for i in std::mem::take(&mut self.again) {
                self.on_readable(i);
            }
            for ev in events.iter() {
                if ev.token() == LISTENER {
                    self.accept();
                    continue;
                }
                let i = ev.token().0 - 1;
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.on_readable(i);
                }
                if ev.is_writable()
                    && let Some(c) = self.conns[i].as_mut()
                    && !c.out.is_empty()
                    && !c.dirty
                {
                    c.dirty = true;
                    self.dirty.push(i);
                }
            }
            let mut dirty = std::mem::take(&mut self.dirty);
            for &i in &dirty {
                let Some(c) = self.conns[i].as_mut() else {
                    continue;
                };
                c.dirty = false;
                if c.flush(&mut self.pool).is_err() {
                    self.close(i);
                }
            }
            dirty.clear();
            self.dirty = dirty;
        }
    }

    fn accept(&mut self) {
        loop {
            let mut stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    eprintln!("floor-server: accept: {e}");
                    return;
                }
            };
            if let Err(e) = stream.set_nodelay(true) {
                eprintln!("floor-server: TCP_NODELAY: {e}");
                continue;
            }
            let i = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) = self
                .poll
                .registry()
                .register(&mut stream, Token(i + 1), interest)
            {
                eprintln!("floor-server: register: {e}");
                self.free.push(i);
                continue;
            }
            self.sids += 1;
            self.conns[i] = Some(Conn::new(stream, self.sids));
        }
    }

    fn on_readable(&mut self, i: usize) {
        let Some(mut c) = self.conns[i].take() else {
            return;
        };
        let read = self.read(i, &mut c);
        self.conns[i] = Some(c);
        self.deliver();
        match read {
            Ok(true) => {}
            Ok(false) => self.again.push(i),
            Err(_) => self.close(i),
        }
    }

    /// Reads and handles what the socket has; true when it is drained.
    fn read(&mut self, i: usize, c: &mut Conn) -> io::Result<bool> {
        for _ in 0..READS_PER_TURN {
            let spare = c.spare();
            let n = match c.stream.read(&mut c.rbuf[c.end..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            c.end += n;
            if n == spare && c.rbuf.len() < READ_MAX {
                c.rbuf.resize(c.rbuf.len() * 2, 0);
            }
            let mut rbuf = std::mem::take(&mut c.rbuf);
            let parsed = self.parse(i, c, &mut rbuf);
            c.rbuf = rbuf;
            parsed?;
            if n < spare {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Handles every complete request or frame in `rbuf[c.start..c.end]`.
    fn parse(&mut self, i: usize, c: &mut Conn, rbuf: &mut [u8]) -> io::Result<()> {
        if !c.upgraded {
            let head = &rbuf[c.start..c.end];
            let Some(len) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                return match head.len() > MAX_REQUEST {
                    true => Err(violation("upgrade request too long")),
                    false => Ok(()),
                };
            };
            let reply = upgrade(&head[..len], c.sid)?;
            c.start += len + 4;
            c.upgraded = true;
            c.send(Rc::new(reply), i, &mut self.dirty);
        }
        while let Some(f) = frame_at(&rbuf[c.start..c.end])? {
            if f.total > c.end - c.start {
                c.need = f.total;
                return Ok(());
            }
            let payload = &mut rbuf[c.start + f.at..c.start + f.total];
            unmask(payload, f.mask);
            c.start += f.total;
            c.need = 0;
            match f.opcode {
                OP_TEXT => self.on_text(i, c, payload)?,
                OP_BINARY => self.on_attachment(c, payload)?,
                OP_PING => {
                    let mut pong = Vec::with_capacity(2 + payload.len());
                    push_head(&mut pong, OP_PONG, payload.len());
                    pong.extend_from_slice(payload);
                    c.send(Rc::new(pong), i, &mut self.dirty);
                }
                OP_PONG => {}
                OP_CLOSE => {
                    if c.out.is_empty() {
                        let _ = c.stream.write(&[0x88, 2, 0x03, 0xe8]);
                    }
                    return Err(io::ErrorKind::ConnectionAborted.into());
                }
                _ => return Err(violation("fragmented or unknown WebSocket frame")),
            }
        }
        Ok(())
    }

    /// An Engine.IO packet.
    fn on_text(&mut self, i: usize, c: &mut Conn, text: &[u8]) -> io::Result<()> {
        if c.partial.is_some() {
            return Err(violation("text frame among a binary event's attachments"));
        }
        match text.split_first() {
            // ping (with its data, e.g. "probe") -> pong
            Some((b'2', data)) => c.send(Rc::new(text_frame(&[b"3", data])), i, &mut self.dirty),
            Some((b'3' | b'6', _)) => {}
            Some((b'4', packet)) => self.on_packet(i, c, packet)?,
            _ => return Err(violation("Engine.IO close or unknown packet")),
        }
        Ok(())
    }

    /// A Socket.IO packet.
    fn on_packet(&mut self, i: usize, c: &mut Conn, p: &[u8]) -> io::Result<()> {
        let Some((&kind, rest)) = p.split_first() else {
            return Err(violation("empty Socket.IO packet"));
        };
        if rest.first() == Some(&b'/') {
            return Err(violation("only the namespace / is served"));
        }
        match kind {
            b'0' => {
                c.connected = true;
                let connect = format!(r#"40{{"sid":"s{}"}}"#, c.sid);
                c.send(
                    Rc::new(text_frame(&[connect.as_bytes()])),
                    i,
                    &mut self.dirty,
                );
                Ok(())
            }
            b'2' | b'5' if c.connected => {
                let (attachments, rest) = match kind {
                    b'5' => {
                        let (n, rest) = number(rest);
                        let rest = rest
                            .strip_prefix(b"-")
                            .ok_or_else(|| violation("binary event without attachment count"))?;
                        (n.unwrap_or(0), rest)
                    }
                    _ => (0, rest),
                };
                let (ack, body) = number(rest);
                self.on_event(i, c, ack, body, attachments as usize)
            }
            b'3' | b'6' if c.connected => Ok(()),
            _ => Err(violation("disconnect or unexpected Socket.IO packet")),
        }
    }

    fn on_event(
        &mut self,
        i: usize,
        c: &mut Conn,
        ack: Option<u64>,
        body: &[u8],
        attachments: usize,
    ) -> io::Result<()> {
        let head: EventHead =
            serde_json::from_slice(body).map_err(|_| violation("event is not a JSON array"))?;
        let reply = match (head.name.as_str(), head.stream) {
            ("watch", Some(stream)) => {
                let members = self.rooms.entry(stream.clone()).or_default();
                if !members.contains(&i) {
                    members.push(i);
                    c.rooms.push(stream);
                }
                r#"[{"ok":true}]"#
            }
            ("watch", None) => r#"[{"error":"watch needs {stream}"}]"#,
            (name, stream) => {
                // Re-emitted as it came, without the ack id: `45N-` + body (or `42` + body).
                let room = stream.filter(|_| name == "frame");
                let count = attachments.to_string();
                let mut frames = self.pool.pop().unwrap_or_default();
                match attachments {
                    0 => push_text(&mut frames, &[b"42", body]),
                    1..=MAX_ATTACHMENTS => {
                        push_text(&mut frames, &[b"45", count.as_bytes(), b"-", body]);
                    }
                    _ => return Err(violation("too many attachments")),
                }
                match (attachments, room) {
                    (0, Some(room)) => self.outbox.push((room, Rc::new(frames))),
                    (0, None) => {}
                    (left, room) => c.partial = Some(Partial { frames, left, room }),
                }
                "[]"
            }
        };
        if let Some(id) = ack {
            let id = id.to_string();
            let ack = text_frame(&[b"43", id.as_bytes(), reply.as_bytes()]);
            c.send(Rc::new(ack), i, &mut self.dirty);
        }
        Ok(())
    }

    /// A binary frame: the next attachment of the pending binary event.
    fn on_attachment(&mut self, c: &mut Conn, payload: &[u8]) -> io::Result<()> {
        let p = c
            .partial
            .as_mut()
            .ok_or_else(|| violation("binary frame without a binary event"))?;
        p.frames.reserve_exact(10 + payload.len());
        push_head(&mut p.frames, OP_BINARY, payload.len());
        p.frames.extend_from_slice(payload);
        p.left -= 1;
        if p.left == 0
            && let Some(Partial {
                frames,
                room: Some(room),
                ..
            }) = c.partial.take()
        {
            self.outbox.push((room, Rc::new(frames)));
        }
        Ok(())
    }

    /// Queues the outbox's events for the members of their rooms.
    fn deliver(&mut self) {
        for (room, frames) in self.outbox.drain(..) {
            let Some(members) = self.rooms.get(&room) else {
                continue;
            };
            for &m in members {
                if let Some(c) = self.conns[m].as_mut()
                    && c.queued <= BACKLOG_MAX
                {
                    c.send(frames.clone(), m, &mut self.dirty);
                }
            }
        }
    }

    fn close(&mut self, i: usize) {
        let Some(mut c) = self.conns[i].take() else {
            return;
        };
        for room in &c.rooms {
            if let Some(members) = self.rooms.get_mut(room) {
                members.retain(|&m| m != i);
                if members.is_empty() {
                    self.rooms.remove(room);
                }
            }
        }
        let _ = self.poll.registry().deregister(&mut c.stream);
        self.free.push(i);
    }
}

/// The 101 answer to a WebSocket upgrade request (without its blank line), with the Engine.IO open
/// packet in its first frame.
fn upgrade(request: &[u8], sid: u64) -> io::Result<Vec<u8>> {
    let request = std::str::from_utf8(request).map_err(|_| violation("request is not UTF-8"))?;
    let mut lines = request.split("\r\n");
    if !lines.next().is_some_and(|l| l.starts_with("GET ")) {
        return Err(violation("not a GET request"));
    }
    let key = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("sec-websocket-key"))
        .map(|(_, v)| v.trim())
        .ok_or_else(|| violation("no Sec-WebSocket-Key"))?;
    let accept = async_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut reply = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes();
    let open = format!(
        r#"0{{"sid":"e{sid}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":{MAX_PAYLOAD}}}"#
    );
    push_head(&mut reply, OP_TEXT, open.len());
    reply.extend_from_slice(open.as_bytes());
    Ok(reply)
}

/// Where a client frame's payload is in the buffer.
struct FrameAt {
    opcode: u8,
    mask: [u8; 4],
    /// Offset of the payload and of the frame's end.
    at: usize,
    total: usize,
}

/// The client frame starting `buf`, once its header is complete; only whole (FIN) frames are
/// served, and clients must mask.
fn frame_at(buf: &[u8]) -> io::Result<Option<FrameAt>> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if b0 & 0xf0 != 0x80 || b1 & 0x80 == 0 {
        return Err(violation("fragmented, extended or unmasked client frame"));
    }
    let (ext, len) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (2, usize::from(u16::from_be_bytes([b[0], b[1]]))),
            None => return Ok(None),
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (
                8,
                usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX),
            ),
            None => return Ok(None),
        },
        n => (0, usize::from(n)),
    };
    if len > MAX_PAYLOAD {
        return Err(violation("frame larger than maxPayload"));
    }
    let at = 2 + ext + 4;
    let Some(mask) = buf
        .get(2 + ext..at)
        .and_then(|m| <[u8; 4]>::try_from(m).ok())
    else {
        return Ok(None);
    };
    Ok(Some(FrameAt {
        opcode: b0 & 0x0f,
        mask,
        at,
        total: at + len,
    }))
}

/// Unmasks a client payload in place, eight bytes at a time.
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

/// A server frame header (FIN set, unmasked).
fn push_head(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    match len {
        0..126 => out.push(len as u8),
        126..65536 => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// One server text frame made of `parts`.
fn text_frame(parts: &[&[u8]]) -> Vec<u8> {
    let mut frame = Vec::new();
    push_text(&mut frame, parts);
    frame
}

/// Appends a server text frame made of `parts`.
fn push_text(out: &mut Vec<u8>, parts: &[&[u8]]) {
    let len = parts.iter().map(|p| p.len()).sum();
    out.reserve(10 + len);
    push_head(out, OP_TEXT, len);
    for p in parts {
        out.extend_from_slice(p);
    }
}

/// The decimal number at the start of `s` (at most 18 digits), and what follows it.
fn number(s: &[u8]) -> (Option<u64>, &[u8]) {
    let digits = s.iter().take(18).take_while(|b| b.is_ascii_digit()).count();
    let n = s[..digits].iter().fold(None, |n: Option<u64>, d| {
        Some(n.unwrap_or(0) * 10 + u64::from(d - b'0'))
    });
    (n, &s[digits..])
}

/// What the relay needs of an event's JSON array: its name, and the `stream` member of its first
/// argument when that is an object with a string there. The rest is skipped, not built.
struct EventHead {
    name: String,
    stream: Option<String>,
}

impl<'de> Deserialize<'de> for EventHead {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(EventVisitor)
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = EventHead;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event: [name, args...]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EventHead, A::Error> {
        let name: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let stream = seq.next_element_seed(StreamOf { meta: true })?.flatten();
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(EventHead { name, stream })
    }
}

/// Finds the stream in any JSON value: with `meta`, the `stream` member of an object; without,
/// the value itself when it is a string. None for anything else.
#[derive(Clone, Copy)]
struct StreamOf {
    meta: bool,
}

impl<'de> DeserializeSeed<'de> for StreamOf {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StreamOf {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut stream = None;
        while let Some(key) = map.next_key::<IsStream>()? {
            if self.meta && key.0 {
                stream = map.next_value_seed(StreamOf { meta: false })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(stream)
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok((!self.meta).then(|| v.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// An object key: is it `stream`?
struct IsStream(bool);

impl<'de> Deserialize<'de> for IsStream {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(IsStreamVisitor)
    }
}

struct IsStreamVisitor;

impl<'de> Visitor<'de> for IsStreamVisitor {
    type Value = IsStream;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, v: &str) -> Result<IsStream, E> {
        Ok(IsStream(v == "stream"))
    }
}
