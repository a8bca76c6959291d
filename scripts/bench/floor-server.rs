//! The kernel floor for `scripts/bench-server`: the same fan-out with no protocol work, to show
//! what the deliveries themselves cost on the machine (kept out of the product).
//!
//! It speaks just enough of Engine.IO/Socket.IO over WebSocket for `scripts/bench/bench-client.rs`
//! (the open packet, one CONNECT answered; no heartbeat, no parsing beyond the frame header) and
//! forwards every event of the publisher to every viewer with one blocking `writev` per viewer:
//! the frames the publisher sent, re-framed unmasked. One thread reads the publisher; there is no
//! event loop, no queue, no lock per delivery and no allocation per viewer. Whatever CPU this
//! costs per delivered event is kernel work (TCP send, loopback receive, wake-ups) that any server
//! on this machine pays; the benchmark prints it next to the real servers.
//!
//! Usage: `floor-server --port N` (0 = any; prints "listening on ADDR").

use std::io::{self, BufRead, BufReader, IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

type Viewers = Arc<Mutex<Vec<TcpStream>>>;

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
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    println!("listening on {}", listener.local_addr()?);
    let viewers: Viewers = Arc::default();
    for (n, stream) in listener.incoming().enumerate() {
        let stream = stream?;
        stream.set_nodelay(true)?;
        let mut reader = BufReader::with_capacity(256 << 10, stream.try_clone()?);
        match handshake(&mut reader, stream.try_clone()?, n) {
            Ok(true) => {
                let viewers = viewers.clone();
                std::thread::spawn(move || forward(reader, &viewers));
            }
            Ok(false) => viewers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(stream),
            Err(e) => eprintln!("handshake: {e}"),
        }
    }
    Ok(())
}

/// The WebSocket upgrade, the Engine.IO open packet and the Socket.IO CONNECT; true for the
/// publisher.
fn handshake(reader: &mut BufReader<TcpStream>, mut out: TcpStream, n: usize) -> io::Result<bool> {
    let mut key = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("sec-websocket-key")
        {
            key = Some(value.trim().to_owned());
        }
    }
    let key = key.ok_or_else(|| io::Error::other("no Sec-WebSocket-Key"))?;
    let accept = async_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    write!(
        out,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )?;
    let open = format!(
        r#"0{{"sid":"floor{n}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#
    );
    out.write_all(&[header(0x1, open.len()), open.into_bytes()].concat())?;
    let (_, connect) = read_frame(reader)?;
    let connect = String::from_utf8_lossy(&connect).into_owned();
    let ok = format!(r#"40{{"sid":"s{n}"}}"#);
    out.write_all(&[header(0x1, ok.len()), ok.into_bytes()].concat())?;
    Ok(connect.contains("publisher"))
}

/// Reads the publisher's frames and sends what was read (whole events: a text frame and its
/// binary attachments) to every viewer in one `writev`.
fn forward(mut reader: BufReader<TcpStream>, viewers: &Viewers) {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut attachments: i64 = 0;
    while let Ok((opcode, payload)) = read_frame(&mut reader) {
        if opcode == 0x1 {
            // `45N-` announces N binary attachments; anything else stands alone.
            attachments = std::str::from_utf8(&payload)
                .ok()
                .and_then(|t| t.strip_prefix("45"))
                .and_then(|t| t.split_once('-'))
                .and_then(|(n, _)| n.parse().ok())
                .unwrap_or(0);
        } else {
            attachments -= 1;
        }
        parts.push(header(opcode, payload.len()));
        parts.push(payload);
        // Gather every event already read (a server under load writes batches), and write
        // before the next read would have to wait for the socket.
        // (`writev` takes at most 1024 buffers.)
        if attachments > 0 || (has_frame(reader.buffer()) && parts.len() < 512) {
            continue;
        }
        let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        viewers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain_mut(|v| write_all_vectored(v, &slices).is_ok());
        parts.clear();
    }
}

fn write_all_vectored(stream: &mut TcpStream, slices: &[IoSlice<'_>]) -> io::Result<()> {
    let mut owned: Vec<IoSlice<'_>> = slices.to_vec();
    let mut bufs = &mut owned[..];
    while !bufs.is_empty() {
        let n = stream.write_vectored(bufs)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}

/// True when `buf` holds a whole client frame.
fn has_frame(buf: &[u8]) -> bool {
    let (ext, len) = match buf.get(1).map(|b| b & 0x7f) {
        None => return false,
        Some(126) => match buf.get(2..4) {
            Some(b) => (2, u16::from_be_bytes([b[0], b[1]]) as usize),
            None => return false,
        },
        Some(127) => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (8, u64::from_be_bytes(b) as usize),
            None => return false,
        },
        Some(n) => (0, n as usize),
    };
    buf.len() >= 2 + ext + 4 + len
}

/// A server frame header (FIN set, unmasked).
fn header(opcode: u8, len: usize) -> Vec<u8> {
    let mut h = vec![0x80 | opcode];
    match len {
        0..126 => h.push(len as u8),
        126..65536 => {
            h.push(126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(127);
            h.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    h
}

/// Reads one masked client frame: (opcode, unmasked payload).
fn read_frame(r: &mut impl Read) -> io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    r.read_exact(&mut head)?;
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)?;
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            r.read_exact(&mut b)?;
            usize::try_from(u64::from_be_bytes(b)).map_err(io::Error::other)?
        }
        n => n as usize,
    };
    if len > 1 << 24 {
        return Err(io::Error::other("frame too large"));
    }
    let mut mask = [0u8; 4];
    r.read_exact(&mut mask)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Ok((head[0] & 0x0f, payload))
}
