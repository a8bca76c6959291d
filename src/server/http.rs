//! The HTTP side: hyper 1 (HTTP/1.1) connections, routing, CORS, Engine.IO long-polling and the
//! WebSocket upgrade, plus the hooks for static assets and extra routes.

use super::encoded::EncodedPacket;
use super::engine::{self, CloseReason, Conn, Engine, PollStep, WsLink, WsStep};
use super::sink::{Cursor, MAX_SLICES, SharedTcpSink, TcpSink};
use super::ws::{self, Decoder, Message};
use crate::engineio::{RequestError, Str, WsFrame};
use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io::IoSlice;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Serves a static asset: path (e.g. `/index.html`) → content type and bytes.
pub type AssetHook = Arc<dyn Fn(&str) -> Option<(&'static str, Bytes)> + Send + Sync>;

/// Serves extra routes (e.g. `/api/status`, `/metrics`): `None` falls through to assets / 404.
pub type RouteHook =
    Arc<dyn Fn(&http::request::Parts) -> Option<Response<Full<Bytes>>> + Send + Sync>;

/// Cross-origin policy for the Engine.IO endpoints.
#[derive(Debug, Clone, Default)]
pub struct Cors {
    /// Origins allowed besides the server's own (`*` allows any).
    pub allowed_origins: Vec<String>,
    /// Whether to send `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
}

impl Cors {
    /// `Ok(Some(origin))` when the request is cross-origin and allowed, `Ok(None)` when it is
    /// same-origin or has no `Origin`, `Err(())` when it is cross-origin and not allowed.
    fn check(&self, req: &http::request::Parts) -> Result<Option<HeaderValue>, ()> {
        let Some(origin) = req.headers.get(header::ORIGIN) else {
            return Ok(None);
        };
        let text = origin.to_str().map_err(|_| ())?;
        let host = req.headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let same = host.is_some_and(|h| text.split_once("://").is_some_and(|(_, rest)| rest == h));
        if self.allowed_origins.iter().any(|o| o == "*" || o == text) {
            return Ok(Some(origin.clone()));
        }
        if same { Ok(None) } else { Err(()) }
    }

    fn apply(&self, origin: &Option<HeaderValue>, resp: &mut Response<Full<Bytes>>) {
        if let Some(origin) = origin {
            let h = resp.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
            if self.credentials {
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
        }
    }
}

/// Everything a connection needs to answer requests.
pub(crate) struct App {
    /// Engine.IO endpoints by path (without trailing slash).
    pub endpoints: Vec<(String, Arc<Engine>)>,
    pub cors: Cors,
    pub assets: Option<AssetHook>,
    pub routes: Option<RouteHook>,
    /// Bound on flushing and closing at shutdown.
    pub shutdown_grace: Duration,
}

impl App {
    fn endpoint(&self, path: &str) -> Option<&Arc<Engine>> {
        let path = path.strip_suffix('/').unwrap_or(path);
        self.endpoints
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, e)| e)
    }
}

/// Unsent bytes a connection may leave in the kernel (`TCP_NOTSENT_LOWAT`): about 0.2 s of a
/// 2.5 Mbit/s stream.
const NOTSENT_LOWAT: u32 = 64 * 1024;

/// Accepts connections until `shutdown` turns true; with `tls`, each connection's handshake runs
/// in its own task, so a client that stalls it holds up nobody else.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: watch::Receiver<bool>,
    tls: Option<super::tls::TlsConfig>,
) {
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!("set_nodelay: {e}");
                    }
                    // Keep at most this much unsent data in the kernel: beyond it writes stall, so
                    // a slow viewer's backlog builds up in its OutQueue, where the media drop policy
                    // applies, instead of as seconds of stale video in a multi-megabyte send buffer.
                    if let Err(e) =
                        socket2::SockRef::from(&stream).set_tcp_notsent_lowat(NOTSENT_LOWAT)
                    {
                        tracing::debug!("TCP_NOTSENT_LOWAT: {e}");
                    }
                    let (app, shutdown) = (app.clone(), shutdown.clone());
                    match tls.clone() {
                        None => tokio::spawn(serve_conn(stream, app, shutdown)),
                        Some(tls) => tokio::spawn(async move {
                            if let Some(stream) = tls.accept(stream).await {
                                serve_conn(stream, app, shutdown).await;
                            }
                        }),
                    };
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stopped(&mut stop) => return,
        }
    }
}

/// Resolves when the shutdown flag turns true (or its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

async fn serve_conn<S>(stream: S, app: Arc<App>, mut shutdown: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let grace = app.shutdown_grace;
    let svc = service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(handle(app, req).await) }
    });
    let conn = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => if let Err(e) = r { tracing::debug!("http connection: {e}") },
        _ = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(grace, conn).await;
        }
    }
}

fn text_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    resp
}

/// Engine.IO's JSON error bodies (code numbers as in the reference server).
fn engine_error(status: StatusCode, code: u8, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    let mut resp = text_response(status, body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if let Some(engine) = app.endpoint(req.uri().path()) {
        let engine = engine.clone();
        return engine_request(&app, engine, req).await;
    }
    let (parts, _body) = req.into_parts();
    if let Some(routes) = &app.routes
        && let Some(resp) = routes(&parts)
    {
        return resp;
    }
    if (parts.method == Method::GET || parts.method == Method::HEAD)
        && let Some(assets) = &app.assets
    {
        let path = match parts.uri.path() {
            "/" => "/index.html",
            p => p,
        };
        if let Some((content_type, body)) = assets(path) {
            let mut resp = Response::new(Full::new(if parts.method == Method::HEAD {
                Bytes::new()
            } else {
                body
            }));
            if let Ok(v) = HeaderValue::from_str(content_type) {
                resp.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            return resp;
        }
    }
    text_response(StatusCode::NOT_FOUND, "not found")
}

struct Query<'a> {
    eio: Option<&'a str>,
    transport: Option<&'a str>,
    sid: Option<&'a str>,
}

impl<'a> Query<'a> {
    fn parse(q: Option<&'a str>) -> Self {
        let mut out = Query {
            eio: None,
            transport: None,
            sid: None,
        };
        for pair in q.unwrap_or("").split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "EIO" => out.eio = Some(v),
                "transport" => out.transport = Some(v),
                "sid" => out.sid = Some(v),
                _ => {}
            }
        }
        out
    }
}

async fn engine_request(
    app: &App,
    engine: Arc<Engine>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let Ok(origin) = app.cors.check(&parts) else {
        return engine_error(StatusCode::FORBIDDEN, 4, "Forbidden");
    };
    let mut resp = engine_dispatch(engine, parts, body, origin.is_some()).await;
    app.cors.apply(&origin, &mut resp);
    resp
}

async fn engine_dispatch(
    engine: Arc<Engine>,
    mut parts: http::request::Parts,
    body: Incoming,
    cross_origin: bool,
) -> Response<Full<Bytes>> {
    if parts.method == Method::OPTIONS && cross_origin {
        let mut resp = text_response(StatusCode::NO_CONTENT, Bytes::new());
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        if let Some(req_headers) = parts.headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, req_headers.clone());
        }
        return resp;
    }
    let q = Query::parse(parts.uri.query());
    if q.eio != Some("4") {
        return engine_error(StatusCode::BAD_REQUEST, 5, "Unsupported protocol version");
    }
    let sid = q.sid.map(str::to_owned);
    match q.transport {
        Some("websocket") => websocket(engine, &mut parts, sid.as_deref()),
        Some("polling") => polling(engine, parts.method, sid, body).await,
        _ => engine_error(StatusCode::BAD_REQUEST, 0, "Transport unknown"),
    }
}

async fn polling(
    engine: Arc<Engine>,
    method: Method,
    sid: Option<String>,
    body: Incoming,
) -> Response<Full<Bytes>> {
    match (method, sid) {
        (Method::GET, None) => match engine.open_polling() {
            Ok(conn) => poll(conn, engine.config.max_payload).await,
            Err(e) => {
                tracing::error!("no randomness for a session id: {e}");
                engine_error(StatusCode::INTERNAL_SERVER_ERROR, 3, "Bad request")
            }
        },
        (Method::GET, Some(sid)) => match engine.get(&sid) {
            Some(conn) => poll(conn, engine.config.max_payload).await,
            None => engine_error(StatusCode::BAD_REQUEST, 1, "Session ID unknown"),
        },
        (Method::POST, Some(sid)) => match engine.get(&sid) {
            Some(conn) => post(conn, body, engine.config.max_payload).await,
            None => engine_error(StatusCode::BAD_REQUEST, 1, "Session ID unknown"),
        },
        _ => engine_error(StatusCode::BAD_REQUEST, 2, "Bad handshake method"),
    }
}

/// Tells the session how a poll ended; a request dropped before it was answered means the
/// client went away.
struct PollGuard {
    conn: Arc<Conn>,
    answered: bool,
}

impl Drop for PollGuard {
    fn drop(&mut self) {
        if self.answered {
            self.conn.session(|s, _| s.handle_poll_done());
        } else {
            self.conn.session(|s, now| s.handle_poll_aborted(now));
        }
    }
}

async fn poll(conn: Arc<Conn>, max_payload: usize) -> Response<Full<Bytes>> {
    if let Err(e) = conn.session(|s, now| s.handle_poll_request(now)) {
        return refused(&e);
    }
    let mut guard = PollGuard {
        conn,
        answered: false,
    };
    let mut out = BytesMut::new();
    loop {
        match guard.conn.poll_drain(max_payload, &mut out) {
            PollStep::Answer => break,
            PollStep::Wait => guard.conn.poll_wait().await,
            PollStep::Refuse(e) => {
                guard.answered = true;
                return refused(&e);
            }
        }
    }
    guard.answered = true;
    drop(guard);
    text_response(StatusCode::OK, out.freeze())
}

/// The answer to a request the session refused.
fn refused(e: &RequestError) -> Response<Full<Bytes>> {
    match e {
        RequestError::Closed => engine_error(StatusCode::BAD_REQUEST, 1, "Session ID unknown"),
        _ => engine_error(StatusCode::BAD_REQUEST, 3, "Bad request"),
    }
}

/// Tells the session a POST ended without a body (the client went away mid-request).
struct PostGuard {
    conn: Arc<Conn>,
    done: bool,
}

impl Drop for PostGuard {
    fn drop(&mut self) {
        if !self.done {
            self.conn
                .session(|s, now| s.handle_post_aborted(false, now));
        }
    }
}

async fn post(conn: Arc<Conn>, body: Incoming, max_payload: usize) -> Response<Full<Bytes>> {
    if let Err(e) = conn.session(|s, now| s.handle_post_request(now)) {
        return refused(&e);
    }
    let mut guard = PostGuard { conn, done: false };
    let body = Limited::new(body, max_payload).collect().await;
    guard.done = true;
    let body = match body {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let too_big = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            guard
                .conn
                .session(|s, now| s.handle_post_aborted(too_big, now));
            return if too_big {
                engine_error(StatusCode::PAYLOAD_TOO_LARGE, 3, "Payload too large")
            } else {
                engine_error(StatusCode::BAD_REQUEST, 3, "Bad request")
            };
        }
    };
    match guard
        .conn
        .session(|s, now| s.handle_polling_body(body, now))
    {
        Ok(()) => text_response(StatusCode::OK, "ok"),
        Err(e) => {
            tracing::debug!(sid = %guard.conn.sid().as_str(), "bad polling payload: {e}");
            refused(&e)
        }
    }
}

fn websocket(
    engine: Arc<Engine>,
    parts: &mut http::request::Parts,
    sid: Option<&str>,
) -> Response<Full<Bytes>> {
    let h = &parts.headers;
    let is_upgrade = h
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let version_ok = h
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    let Some(key) = h.get(header::SEC_WEBSOCKET_KEY) else {
        return engine_error(StatusCode::BAD_REQUEST, 3, "Bad request");
    };
    if !is_upgrade || !version_ok {
        return engine_error(StatusCode::BAD_REQUEST, 3, "Bad request");
    }
    let accept = async_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return engine_error(StatusCode::BAD_REQUEST, 3, "Bad request");
    };
    let candidate = match sid {
        Some(sid) => match engine.get(sid) {
            Some(conn) => match conn.attach_ws() {
                Ok(link) => Some((conn, link)),
                Err(e) => return refused(&e),
            },
            None => return engine_error(StatusCode::BAD_REQUEST, 1, "Session ID unknown"),
        },
        None => None,
    };
    let max = engine.config.max_payload;
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!("websocket upgrade failed: {e}");
                if let Some((conn, link)) = candidate {
                    conn.ws_closed(&link, true);
                }
                return;
            }
        };
        let (conn, link) = match candidate {
            Some(attached) => attached,
            None => match engine.open_ws() {
                Ok(opened) => opened,
                Err(e) => return tracing::error!("no randomness for a session id: {e}"),
            },
        };
        // Plain TCP gets the direct write path (see `sink`); TLS keeps hyper's stream.
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                let (rd, wr) = parts.io.into_inner().into_split();
                let sink = TcpSink::new(wr);
                link.set_direct(sink.clone());
                run_ws(rd, SharedTcpSink(sink), parts.read_buf, conn, link, max).await
            }
            Err(upgraded) => {
                let (rd, wr) = tokio::io::split(TokioIo::new(upgraded));
                run_ws(rd, wr, Bytes::new(), conn, link, max).await
            }
        }
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

/// How long a closing WebSocket may take to flush what is queued and say goodbye.
const WS_CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Read chunk size; reads are bounded by the decoder's maximum message size.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes a reader takes in while corked before it writes out what they queued.
const CORK_LIMIT: usize = 64 * 1024;

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
    decoder: &mut Decoder,
    buf: &mut BytesMut,
    since_uncork: &mut usize,
) -> Result<Option<Message>, ReadError> {
    loop {
        if let Some(msg) = decoder.decode(buf).map_err(ReadError::Ws)? {
            return Ok(Some(msg));
        }
        if buf.len() >= decoder.max_buffer() {
            return Err(ReadError::Ws(ws::WsError::TooBig(decoder.max_buffer())));
        }
        buf.reserve(READ_CHUNK);
        let ready = if *since_uncork < CORK_LIMIT {
            rd.read_buf(buf).now_or_never()
        } else {
            None
        };
        let read = match ready {
            Some(read) => read,
            None => {
                engine::uncork();
                *since_uncork = 0;
                rd.read_buf(buf).await
            }
        };
        match read.map_err(|_| ReadError::Io)? {
            0 => return Ok(None),
            n => *since_uncork += n,
        }
    }
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
    let mut decoder = Decoder::new(max_payload);
    let mut buf = BytesMut::with_capacity(READ_CHUNK.max(read_ahead.len()));
    buf.extend_from_slice(&read_ahead);
    // It is a view of hyper's whole read buffer: do not keep that alive for the connection.
    drop(read_ahead);
    let mut since_uncork = 0;
    let mut events = Vec::new();
    loop {
        let frame = match next_message(rd, &mut decoder, &mut buf, &mut since_uncork).await {
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
                let code = match reason {
                    Some(CloseReason::ServerShuttingDown) => ws::CLOSE_GOING_AWAY,
                    // A packet that is not Engine.IO, or an abandoned upgrade probe.
                    Some(CloseReason::ParseError) | None => ws::CLOSE_PROTOCOL,
                    Some(_) => link.close_code().unwrap_or(ws::CLOSE_NORMAL),
                };
                let _ = wr.write_all(&ws::close_frame(code)).await;
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
    let mut slices = [IoSlice::new(&[]); MAX_SLICES];
    loop {
        let n = cursor.fill(packets, &mut slices);
        if n == 0 {
            return wr.flush().await;
        }
        let written = wr.write_vectored(&slices[..n]).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        cursor.advance(written, packets);
    }
}
