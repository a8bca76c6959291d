//! Engine.IO over WebSocket: the upgrade handshake, then one task reading frames into the
//! session (corked, so a burst of messages is written out in one batch) and one writing what the
//! session and its queue have, plain TCP on the direct write path.

use super::connections::Busy;
use super::encoded::EncodedPacket;
use super::engine::{self, CloseReason, Conn, Engine, WsLink, WsStep};
use super::responses::{engine_error, refused, session_refused};
use super::sink::{Cursor, MAX_SLICES, SharedTcpSink, TcpSink};
use super::timed_io::TimedIo;
use super::ws::{self, FrameDecoder, Message};
use crate::engineio::{RequestError, Str, WsFrame};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub(super) fn websocket(
    engine: Arc<Engine>,
    busy: &Busy,
    parts: &mut http::request::Parts,
    sid: Option<&str>,
) -> Response<Full<Bytes>> {
    let accept = match accept_key(parts) {
        Ok(accept) => accept,
        Err(refusal) => return refusal.response(),
    };
    let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return engine_error(StatusCode::BAD_REQUEST, 3, "Bad request");
    };
    let attach = match sid {
        Some(sid) => match engine.get(sid) {
            Some(conn) => match conn.attach_ws() {
                Ok(link) => Attach::Session(conn, link),
                Err(RequestError::Closed) => return refused(&RequestError::Closed),
                // The session is upgrading or upgraded already. As the reference server does
                // (engine.io lib/server.ts, `onWebSocket`): complete this handshake, then close
                // only the new socket; the session and its WebSocket carry on.
                Err(_) => Attach::Ignored,
            },
            None => return engine_error(StatusCode::BAD_REQUEST, 1, "Session ID unknown"),
        },
        None => match engine.open_ws(busy.address()) {
            Ok((conn, link)) => Attach::Session(conn, link),
            Err(e) => return session_refused(&e, busy),
        },
    };
    let max = engine.config.max_payload;
    // The connection stays busy (no idle deadline, never evicted) while the WebSocket lives.
    let busy = busy.clone();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!("websocket upgrade failed: {e}");
                if let Attach::Session(conn, link) = attach {
                    conn.ws_closed(&link, true);
                }
                return;
            }
        };
        let (conn, link) = match attach {
            Attach::Session(conn, link) => (conn, link),
            Attach::Ignored => return close_ignored(TokioIo::new(upgraded)).await,
        };
        // Plain TCP gets the direct write path (see `sink`); TLS keeps hyper's stream.
        match upgraded.downcast::<TokioIo<TimedIo<TcpStream>>>() {
            Ok(parts) => {
                let (rd, wr) = parts.io.into_inner().into_inner().into_split();
                let sink = TcpSink::new(wr);
                link.set_direct(sink.clone());
                run_ws(rd, SharedTcpSink(sink), parts.read_buf, conn, link, max).await
            }
            Err(upgraded) => {
                let (rd, wr) = tokio::io::split(TokioIo::new(upgraded));
                run_ws(rd, wr, Bytes::new(), conn, link, max).await
            }
        }
        drop(busy);
    });
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

/// What an accepted upgrade becomes once the handshake is done.
enum Attach {
    /// The transport of a new session, or the upgrade candidate of a polling session.
    Session(Arc<Conn>, Arc<WsLink>),
    /// A second WebSocket for a session that is upgrading or upgraded: closed right away.
    Ignored,
}

/// Why an upgrade request is not a WebSocket opening handshake we accept.
enum Refusal {
    /// Not a GET, no `Upgrade: websocket` or `Connection: Upgrade`, or a bad key: 400.
    NotAHandshake,
    /// Another `Sec-WebSocket-Version` than 13: 426 with the version we speak (§4.4).
    Version,
}

impl Refusal {
    fn response(self) -> Response<Full<Bytes>> {
        match self {
            Refusal::NotAHandshake => engine_error(StatusCode::BAD_REQUEST, 3, "Bad request"),
            Refusal::Version => {
                let mut resp = engine_error(StatusCode::UPGRADE_REQUIRED, 3, "Bad request");
                resp.headers_mut().insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
                resp
            }
        }
    }
}

/// Checks an upgrade request against RFC 6455 section 4.2.1 and gives the
/// `Sec-WebSocket-Accept` value: a GET with `Upgrade: websocket`, `Connection: Upgrade`,
/// `Sec-WebSocket-Version: 13` and a key that is the base64 of 16 bytes.
fn accept_key(parts: &http::request::Parts) -> Result<String, Refusal> {
    let h = &parts.headers;
    let has_token = |name: header::HeaderName, token: &str| {
        h.get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if parts.method != Method::GET
        || !has_token(header::UPGRADE, "websocket")
        || !has_token(header::CONNECTION, "upgrade")
    {
        return Err(Refusal::NotAHandshake);
    }
    if h.get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(Refusal::Version);
    }
    let key = h
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(Refusal::NotAHandshake)?;
    let nonce = base64::engine::general_purpose::STANDARD.decode(key.as_bytes());
    if !nonce.is_ok_and(|n| n.len() == 16) {
        return Err(Refusal::NotAHandshake);
    }
    Ok(async_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

/// Says goodbye on a WebSocket the session ignores: a close frame without a status, as the
/// reference server's `websocket.close()` sends, then the end of the stream.
async fn close_ignored<S: AsyncWrite + Unpin>(mut stream: S) {
    let _ = tokio::time::timeout(WS_CLOSE_GRACE, async {
        stream.write_all(ws::CLOSE_NO_STATUS).await?;
        stream.shutdown().await
    })
    .await;
}

/// How long a closing WebSocket may take to flush what is queued and say goodbye.
const WS_CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Room made for a read; reads are bounded by the decoder's maximum message size. A read that
/// fills it doubles it for the next one, up to [`READ_CHUNK_MAX`] (a publisher streaming frames is
/// read in few syscalls), and one that does not resets it (a viewer's buffer stays small).
const READ_CHUNK: usize = 16 * 1024;
const READ_CHUNK_MAX: usize = 256 * 1024;
/// Bytes a reader takes in while corked before it writes out what they queued: at a publisher's
/// full rate, each viewer then gets every frame of up to this much input in one vectored write.
const CORK_LIMIT: usize = 1 << 20;

/// Drives one WebSocket attached to `conn`'s session (an upgrade candidate or the session's
/// transport): this task reads (starting with `read_ahead`, bytes that came with the HTTP
/// request), a spawned task writes.
async fn run_ws<R, W>(
    mut rd: R,
    wr: W,
    read_ahead: Bytes,
    conn: Arc<Conn>,
    link: Arc<WsLink>,
    max_payload: usize,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let mut writer = tokio::spawn(write_loop(wr, conn.clone(), link.clone()));
    tokio::select! {
        // The reader reported the end to the session: let the writer say goodbye.
        _ = read_loop(&mut rd, read_ahead, &conn, &link, max_payload) => {}
        // The writer said goodbye (session closed, or upgrade abandoned): stop reading.
        _ = &mut writer => return,
    }
    let abort = writer.abort_handle();
    if tokio::time::timeout(WS_CLOSE_GRACE, writer).await.is_err() {
        abort.abort();
    }
}

/// Reads the next message, bounded by the decoder's limit. `Ok(None)` at end of stream.
/// Takes what the socket already holds without waiting; before it waits (or after
/// [`CORK_LIMIT`] bytes) it writes out what the messages read so far queued ([`engine::uncork`]).
async fn next_message<R: AsyncRead + Unpin>(
    rd: &mut R,
    decoder: &mut FrameDecoder,
    buf: &mut BytesMut,
    input: &mut Input,
) -> Result<Option<Message>, ReadError> {
    loop {
        if let Some(msg) = decoder.decode(buf).map_err(ReadError::Ws)? {
            return Ok(Some(msg));
        }
        if buf.len() >= decoder.max_buffer() {
            return Err(ReadError::Ws(ws::WsError::TooBig(decoder.max_buffer())));
        }
        buf.reserve(input.chunk);
        let ready = if input.since_uncork < CORK_LIMIT {
            rd.read_buf(buf).now_or_never()
        } else {
            None
        };
        let read = match ready {
            Some(read) => read,
            None => {
                engine::uncork();
                input.since_uncork = 0;
                rd.read_buf(buf).await
            }
        };
        match read.map_err(|_| ReadError::Io)? {
            0 => return Ok(None),
            n => {
                input.since_uncork += n;
                input.chunk = if n >= input.chunk {
                    (input.chunk * 2).min(READ_CHUNK_MAX)
                } else {
                    READ_CHUNK
                };
            }
        }
    }
}

/// A reader's input accounting: bytes read since the last uncork, room for the next read.
struct Input {
    since_uncork: usize,
    chunk: usize,
}

enum ReadError {
    Ws(ws::WsError),
    Io,
}

/// Feeds the WebSocket's messages to the session until the socket ends or the session no
/// longer reads from it.
async fn read_loop<R: AsyncRead + Unpin>(
    rd: &mut R,
    read_ahead: Bytes,
    conn: &Arc<Conn>,
    link: &Arc<WsLink>,
    max_payload: usize,
) {
    read_messages(rd, read_ahead, conn, link, max_payload).await;
    // What the last messages queued (the task suspends only after an uncork).
    engine::uncork();
}

async fn read_messages<R: AsyncRead + Unpin>(
    rd: &mut R,
    read_ahead: Bytes,
    conn: &Arc<Conn>,
    link: &Arc<WsLink>,
    max_payload: usize,
) {
    let mut decoder = FrameDecoder::new(max_payload);
    let mut buf = BytesMut::with_capacity(READ_CHUNK.max(read_ahead.len()));
    buf.extend_from_slice(&read_ahead);
    // It is a view of hyper's whole read buffer: do not keep that alive for the connection.
    drop(read_ahead);
    let mut input = Input {
        since_uncork: 0,
        chunk: READ_CHUNK,
    };
    let mut events = Vec::new();
    loop {
        let frame = match next_message(rd, &mut decoder, &mut buf, &mut input).await {
            Ok(Some(Message::Text(t))) => match Str::from_utf8(t) {
                Ok(text) => WsFrame::Text(text),
                Err(_) => {
                    link.set_close_code(ws::CLOSE_INVALID_DATA);
                    conn.ws_closed(link, true);
                    return;
                }
            },
            Ok(Some(Message::Binary(b))) => WsFrame::Binary(b),
            Ok(Some(Message::Ping(p))) => {
                conn.ws_ping(link, ws::pong_frame(&p));
                continue;
            }
            Ok(Some(Message::Pong)) => continue,
            Ok(Some(Message::Close(_))) | Ok(None) => {
                conn.ws_closed(link, false);
                return;
            }
            Err(ReadError::Io) => {
                conn.ws_closed(link, true);
                return;
            }
            Err(ReadError::Ws(e)) => {
                tracing::debug!(sid = %conn.sid().as_str(), "websocket: {e}");
                link.set_close_code(e.close_code());
                conn.ws_closed(link, true);
                return;
            }
        };
        if !engine::corked(|| conn.ws_frame(link, frame, &mut events)) {
            return;
        }
    }
}

/// Writes what the session and its queue have for this WebSocket, then the close frame.
async fn write_loop<W: AsyncWrite + Unpin>(mut wr: W, conn: Arc<Conn>, link: Arc<WsLink>) {
    let mut batch = Vec::new();
    loop {
        match conn.ws_drain(&link, &mut batch) {
            WsStep::Write(from) => {
                let written = write_packets(&mut wr, &batch, from).await;
                batch.clear();
                if written.is_err() {
                    conn.ws_closed(&link, true);
                    return;
                }
            }
            WsStep::Wait => link.wait().await,
            WsStep::Close(reason) => {
                let (code, why) = match reason {
                    Some(CloseReason::ServerShuttingDown) => (ws::CLOSE_GOING_AWAY, ""),
                    // A packet that is not Engine.IO, or an abandoned upgrade probe.
                    Some(CloseReason::ParseError) | None => (ws::CLOSE_PROTOCOL, ""),
                    // Said with a reason: this is the server's policy, not a normal end.
                    Some(CloseReason::QueueOverflow) => (
                        ws::CLOSE_POLICY,
                        "queue overflow: the client reads too slowly",
                    ),
                    Some(_) => (link.close_code().unwrap_or(ws::CLOSE_NORMAL), ""),
                };
                let _ = wr.write_all(&ws::close_frame(code, why)).await;
                let _ = wr.shutdown().await;
                return;
            }
        }
    }
}

/// Writes every frame buffer of `packets` from `cursor` on, with vectored writes (no copies).
async fn write_packets<W: AsyncWrite + Unpin>(
    wr: &mut W,
    packets: &[Arc<EncodedPacket>],
    mut cursor: Cursor,
) -> std::io::Result<()> {
    let mut slices = Vec::with_capacity((2 * packets.len()).min(MAX_SLICES));
    loop {
        slices.clear();
        if cursor.gather(packets, &mut slices, usize::MAX) == 0 {
            return wr.flush().await;
        }
        let written = wr.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        cursor.advance(written, packets);
    }
}
