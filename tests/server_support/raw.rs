//! Raw HTTP/1.1 and WebSocket clients for black-box tests that must send exactly the bytes they
//! want (including invalid ones).

use bytes::{Buf, BytesMut};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The Socket.IO endpoint's long-polling handshake path.
pub const POLLING: &str = "/socket.io/?EIO=4&transport=polling";

/// One HTTP request on a fresh connection: (status, body).
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut req = head.into_bytes();
    req.extend_from_slice(body);
    // The server may answer (413) and close before reading a large body: ignore write errors.
    let _ = s.write_all(&req).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(IO_TIMEOUT, s.read_to_end(&mut out))
        .await
        .expect("http response timed out");
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body_at = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(out.len(), |p| p + 4);
    (status, out[body_at..].to_vec())
}

/// A TCP connection to `addr` from the loopback address `from`.
pub async fn connect_from(from: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    let ip = from.parse().expect("an IPv4 address");
    socket.bind(SocketAddr::new(ip, 0)).expect("bind");
    socket.connect(addr).await.expect("connect")
}

/// What the server sent before it closed `s`, if it does within `within`; `None` if it is
/// still open then.
pub async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let end = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    end.ok()
        .map(|()| String::from_utf8_lossy(&got).into_owned())
}

/// Opens a long-polling session at `/socket.io/`: its sid.
pub async fn open_polling(addr: SocketAddr) -> String {
    let (status, body) = http(addr, "GET", POLLING, b"").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body[1..]).expect("handshake json");
    v["sid"].as_str().expect("sid").to_owned()
}

/// A POST to session `sid` declaring `length` bytes, of which it sends none yet.
pub async fn post_head(addr: SocketAddr, sid: &str, length: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {POLLING}&sid={sid} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {length}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("write");
    s
}

/// A WebSocket upgrade request head for `path`: the headers RFC 6455 asks for, each of which
/// `replace` may drop (an empty value) or change.
pub fn upgrade_request(
    method: &str,
    path: &str,
    addr: SocketAddr,
    replace: &[(&str, &str)],
) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    let standard = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];
    for (name, value) in standard {
        let value = replace
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or(value, |(_, v)| v);
        if !value.is_empty() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head + "\r\n"
}

/// A frame from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
    /// The status code, if any, and the reason.
    Close(Option<u16>, String),
    Ping(Vec<u8>),
    Pong,
}

/// A minimal WebSocket client (masked frames out, any frames in).
pub struct RawWs {
    stream: TcpStream,
    buf: BytesMut,
}

impl RawWs {
    /// Opens `path` (e.g. `/socket.io/?EIO=4&transport=websocket`); `Err(status line)` when the
    /// server refuses the upgrade.
    pub async fn connect(addr: SocketAddr, path: &str) -> Result<RawWs, String> {
        RawWs::upgrade(addr, &upgrade_request("GET", path, addr, &[])).await
    }

    /// [`RawWs::connect`] over a socket with a receive buffer of about `bytes`: a server's writes
    /// fill it after a few KB while the test does not read.
    pub async fn connect_small(addr: SocketAddr, path: &str, bytes: u32) -> Result<RawWs, String> {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        let stream = socket.connect(addr).await.expect("connect");
        RawWs::upgrade_on(stream, &upgrade_request("GET", path, addr, &[])).await
    }

    /// Sends `request` (a whole request head) and reads the answer: the WebSocket on a 101,
    /// else `Err(the response head)`.
    pub async fn upgrade(addr: SocketAddr, request: &str) -> Result<RawWs, String> {
        let stream = TcpStream::connect(addr).await.expect("connect");
        RawWs::upgrade_on(stream, request).await
    }

    async fn upgrade_on(mut stream: TcpStream, request: &str) -> Result<RawWs, String> {
        stream.set_nodelay(true).expect("nodelay");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut buf = BytesMut::new();
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let n = tokio::time::timeout(IO_TIMEOUT, stream.read_buf(&mut buf))
                .await
                .expect("handshake timed out")
                .expect("read");
            if n == 0 {
                return Err("closed during handshake".into());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        if !head.starts_with("HTTP/1.1 101") {
            return Err(head);
        }
        buf.advance(head_end);
        Ok(RawWs { stream, buf })
    }

    /// Sends raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Sends one masked frame.
    pub async fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        let mut f = vec![0x80 | opcode];
        let len = payload.len();
        if len < 126 {
            f.push(0x80 | len as u8);
        } else if len <= 65535 {
            f.push(0x80 | 126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&(len as u64).to_be_bytes());
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.send_raw(&f).await;
    }

    /// Sends a text frame.
    pub async fn text(&mut self, s: &str) {
        self.send_frame(0x1, s.as_bytes()).await;
    }

    /// Sends a binary frame.
    pub async fn binary(&mut self, b: &[u8]) {
        self.send_frame(0x2, b).await;
    }

    /// The next frame; `None` when the connection ends. Panics after the I/O timeout.
    pub async fn recv(&mut self) -> Option<Frame> {
        loop {
            if let Some((frame, used)) = parse(&self.buf) {
                self.buf.advance(used);
                return Some(frame);
            }
            self.buf.reserve(65536);
            let n = tokio::time::timeout(IO_TIMEOUT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("websocket read timed out")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
        }
    }

    /// The next text frame that is not an Engine.IO ping (answering pings).
    pub async fn recv_data(&mut self) -> Option<Frame> {
        loop {
            match self.recv().await? {
                Frame::Text(t) if t == "2" => self.text("3").await,
                other => return Some(other),
            }
        }
    }

    /// Waits for the connection to end (close frame or EOF), answering pings meanwhile: the
    /// close frame's code.
    pub async fn expect_closed(&mut self) -> Option<u16> {
        self.expect_close_frame().await.and_then(|(code, _)| code)
    }

    /// Waits for the connection to end, answering pings meanwhile: the close frame's code and
    /// reason, `None` at the end of the stream without one.
    pub async fn expect_close_frame(&mut self) -> Option<(Option<u16>, String)> {
        loop {
            match self.recv().await {
                None => return None,
                Some(Frame::Close(code, reason)) => return Some((code, reason)),
                Some(Frame::Text(t)) if t == "2" => self.text("3").await,
                Some(_) => {}
            }
        }
    }
}

fn parse(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0F;
    let (len, mut at) = match buf[1] & 0x7F {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(raw) as usize, 10)
        }
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    if buf[1] & 0x80 != 0 {
        at += 4; // servers never mask, but skip a mask if one is there
    }
    if buf.len() < at + len {
        return None;
    }
    let payload = buf[at..at + len].to_vec();
    let frame = match opcode {
        0x1 => Frame::Text(String::from_utf8_lossy(&payload).into_owned()),
        0x2 => Frame::Binary(payload),
        0x8 => Frame::Close(
            (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
            String::from_utf8_lossy(payload.get(2..).unwrap_or_default()).into_owned(),
        ),
        0x9 => Frame::Ping(payload),
        _ => Frame::Pong,
    };
    Some((frame, at + len))
}
