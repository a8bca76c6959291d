//! The HTTP side of the server: accepting connections (TCP options, TLS handshake), hyper 1
//! (HTTP/1.1) connections, and routing each request — Engine.IO endpoints (with CORS) to the
//! long-polling and WebSocket handlers, then extra routes, then static assets.

use super::connections::{Busy, ConnLimits, Connections, Event, Refusal, Slot};
use super::engine::Engine;
use super::polling::polling;
use super::responses::{engine_error, text_response};
use super::timed_io::TimedIo;
use super::websocket::websocket;
use crate::repeats::{Repeats, Report};
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Serves a static asset: path (e.g. `/index.html`) → content type and bytes.
pub type AssetHook = Arc<dyn Fn(&str) -> Option<(&'static str, Bytes)> + Send + Sync>;

/// The answer of an extra route, computed asynchronously (e.g. a snapshot decoded off the runtime).
pub type RouteFuture = Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>;

/// Serves extra routes (e.g. `/api/status`, `/metrics`): `None` falls through to assets / 404.
pub type RouteHook = Arc<dyn Fn(&http::request::Parts) -> Option<RouteFuture> + Send + Sync>;

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
    /// The connection table: limits, admission, counters.
    pub connections: Connections,
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

/// Largest request head (beyond it: 431), and the read buffer a connection grows to while the
/// head is incomplete. hyper's default buffer, about 400 KiB, would let a Pi's 512 connections
/// hold 200 MB of half-sent headers; Node allows 16 KiB of headers, nginx 4 × 8 KiB.
const MAX_HEAD: usize = 32 * 1024;

/// The answer to a connection refused at accept (plain HTTP only; a TLS client gets a close).
const SERVICE_UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\
      Content-Length: 0\r\nRetry-After: 5\r\n\r\n";

/// First and longest pause after a failed `accept` (Go's `net/http` uses the same).
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

/// How often the accept loop logs each kind of failure at most.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// What the accept loop logs, each at most once a minute with a count.
struct AcceptLog {
    failed: Repeats,
    full: Repeats,
    per_address: Repeats,
}

/// How a line ends: the first says what to expect, the next ones how many were not logged.
fn since_last(report: Report) -> String {
    match report {
        Report::First | Report::Summary { count: 1, .. } => {
            "repeats are logged once a minute".to_owned()
        }
        Report::Summary { count, .. } => format!("{} more since the last report", count - 1),
    }
}

impl AcceptLog {
    fn new() -> AcceptLog {
        AcceptLog {
            failed: Repeats::every(LOG_EVERY),
            full: Repeats::every(LOG_EVERY),
            per_address: Repeats::every(LOG_EVERY),
        }
    }

    fn failed(&mut self, e: &std::io::Error, retry: Duration) {
        if let Some(more) = self.failed.failed(Instant::now()) {
            let more = since_last(more);
            tracing::warn!("accept: {e} (retrying in {retry:?}; {more})");
        }
    }

    fn refused(&mut self, refusal: Refusal, peer: SocketAddr, limits: &ConnLimits) {
        let now = Instant::now();
        match refusal {
            Refusal::Full => {
                if let Some(more) = self.full.failed(now) {
                    let (max, more) = (limits.max_connections, since_last(more));
                    tracing::warn!(
                        "refused a connection from {peer}: {max} open, none idle ({more})"
                    );
                }
            }
            Refusal::PerAddress => {
                if let Some(more) = self.per_address.failed(now) {
                    let (max, more) = (limits.max_per_address, since_last(more));
                    tracing::warn!(
                        "refused a connection from {peer}: {max} open from its address ({more})"
                    );
                }
            }
        }
    }
}

/// Accepts connections until `shutdown` turns true; with `tls`, each connection's handshake runs
/// in its own task, so a client that stalls it holds up nobody else. Connections beyond the
/// limits are refused at once; a failing `accept` (out of file descriptors) is retried with
/// backoff.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: watch::Receiver<bool>,
    tls: Option<super::tls::TlsConfig>,
) {
    let mut stop = shutdown.clone();
    let mut log = AcceptLog::new();
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut stop) => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                app.connections.count(Event::AcceptError);
                backoff = (backoff * 2).clamp(ACCEPT_BACKOFF.0, ACCEPT_BACKOFF.1);
                log.failed(&e, backoff);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => continue,
                    _ = stopped(&mut stop) => return,
                }
            }
        };
        backoff = Duration::ZERO;
        let slot = match app.connections.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                log.refused(refusal, peer, app.connections.limits());
                if tls.is_none() {
                    // A fresh socket's buffer takes it whole; if not, the close says enough.
                    let _ = stream.try_write(SERVICE_UNAVAILABLE);
                }
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("set_nodelay: {e}");
        }
        // Keep at most this much unsent data in the kernel: beyond it writes stall, so a slow
        // viewer's backlog builds up in its OutQueue, where the media drop policy applies,
        // instead of as seconds of stale video in a multi-megabyte send buffer.
        if let Err(e) = socket2::SockRef::from(&stream).set_tcp_notsent_lowat(NOTSENT_LOWAT) {
            tracing::debug!("TCP_NOTSENT_LOWAT: {e}");
        }
        tokio::spawn(connection(
            stream,
            slot,
            app.clone(),
            shutdown.clone(),
            tls.clone(),
        ));
    }
}

/// Serves one admitted connection (after its TLS handshake, with `tls`) until it ends, or
/// until the server, full, closes it while idle to make room.
async fn connection(
    stream: TcpStream,
    slot: Arc<Slot>,
    app: Arc<App>,
    shutdown: watch::Receiver<bool>,
    tls: Option<super::tls::TlsConfig>,
) {
    let served = async {
        match tls {
            None => serve_conn(TimedIo::new(stream, slot.clone()), &slot, app, shutdown).await,
            Some(tls) => {
                if let Some(stream) = tls.accept(stream).await {
                    serve_conn(TimedIo::new(stream, slot.clone()), &slot, app, shutdown).await;
                }
            }
        }
    };
    tokio::select! {
        () = served => {}
        () = slot.evicted() => tracing::debug!("closed an idle connection to make room"),
    }
}

/// Resolves when the shutdown flag turns true (or its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

async fn serve_conn<S>(
    stream: TimedIo<S>,
    slot: &Arc<Slot>,
    app: Arc<App>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let grace = app.shutdown_grace;
    let slot = slot.clone();
    let svc = service_fn(move |req: Request<Incoming>| {
        // Busy from the end of the headers until the answer is ready (an upgraded WebSocket
        // keeps a clone for its life).
        let busy = slot.busy();
        let app = app.clone();
        async move { Ok::<_, Infallible>(handle(app, &busy, req).await) }
    });
    let conn = http1::Builder::new()
        .max_buf_size(MAX_HEAD)
        .max_header_size(MAX_HEAD)
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

async fn handle(app: Arc<App>, busy: &Busy, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if let Some(engine) = app.endpoint(req.uri().path()) {
        let engine = engine.clone();
        return engine_request(&app, engine, busy, req).await;
    }
    let (parts, _body) = req.into_parts();
    if let Some(routes) = &app.routes
        && let Some(resp) = routes(&parts)
    {
        return resp.await;
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
    busy: &Busy,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let Ok(origin) = app.cors.check(&parts) else {
        return engine_error(StatusCode::FORBIDDEN, 4, "Forbidden");
    };
    let mut resp = engine_dispatch(engine, busy, parts, body, origin.is_some()).await;
    app.cors.apply(&origin, &mut resp);
    resp
}

async fn engine_dispatch(
    engine: Arc<Engine>,
    busy: &Busy,
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
        Some("websocket") => websocket(engine, busy, &mut parts, sid.as_deref()),
        Some("polling") => polling(engine, busy, &parts.method, sid, body).await,
        _ => engine_error(StatusCode::BAD_REQUEST, 0, "Transport unknown"),
    }
}
