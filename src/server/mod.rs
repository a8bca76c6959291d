//! The Socket.IO v5 / Engine.IO v4 server: hyper 1 (HTTP/1.1 long-polling) and our own
//! WebSocket framing ([`ws`](self) module docs explain why) on tokio, over the sans-IO codecs in
//! [`crate::engineio`] and [`crate::socketio`].
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use sioedge::server::Server;
//! use sioedge::socketio::Arg;
//! use serde_json::json;
//!
//! let server = Server::builder().build();
//! server.of("/").on_connect(|socket, auth| {
//!     if auth.get("token").is_none() {
//!         return Err(json!({ "message": "token required" }));
//!     }
//!     socket.on("chat", |socket, args, ack| {
//!         // Everyone in the namespace but the sender; binary args stay `Bytes`, never copied.
//!         socket.broadcast().emit("chat", args.clone());
//!         if let Some(ack) = ack {
//!             let _ = ack.send(vec![Arg::Json(json!("ok"))]);
//!         }
//!     });
//!     socket.on_disconnect(|socket, reason| tracing::info!(sid = socket.id(), reason = reason.as_str()));
//!     Ok(())
//! });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! tokio::spawn({ let server = server.clone(); async move { server.serve(listener).await } });
//! // Media fan-out: encode once, share with every viewer, drop by class when one is slow.
//! let frame = server.of("/").encode_event("frame", vec![Arg::Binary(bytes::Bytes::from_static(b"..."))]);
//! server.of("/").to("viewers").emit_shared(frame, sioedge::queue::Class::Volatile);
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Layers: `router` (accepting, hyper connections, routing, CORS), `connections` (limits,
//! admission, eviction of idle connections, counters) and `timed_io` (the idle and header
//! timeouts), `polling` (Engine.IO long-polling),
//! `websocket` (the upgrade and the read/write loops), `ws` (RFC 6455 frames), `engine` (each
//! connection's [`crate::engineio::Session`] next to its bounded queue, driven by one timer task;
//! the session holds heartbeat, upgrade, close), `sio` (per-connection Socket.IO decoding and
//! dispatch), [`Namespace`]/[`Broadcast`] (rooms and fan-out) and [`Socket`].

mod connections;
mod encoded;
mod engine;
mod namespace;
mod polling;
mod responses;
mod router;
mod sink;
mod sio;
mod socket;
mod timed_io;
mod tls;
mod websocket;
mod ws;

pub use crate::engineio::TransportKind;
pub use connections::{Closed, ConnLimits, ConnectionStats, Connections, Refused};
pub use encoded::EncodedPacket;
pub use engine::{CloseReason, Conn, ConnHandler, Engine, EngineConfig, EngineHandler, Incoming};
pub use namespace::{Broadcast, ConnectHandler, Namespace};
pub use router::{AssetHook, Cors, RouteFuture, RouteHook};
pub use socket::{
    AckError, AckSender, DisconnectHandler, DisconnectReason, EmitError, EventHandler, Socket,
};
pub use tls::{ServerTlsError, TlsConfig, self_signed_names};

use crate::socketio::DecoderLimits;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Configures a [`Server`].
pub struct ServerBuilder {
    path: String,
    engine: EngineConfig,
    connect_timeout: Duration,
    limits: DecoderLimits,
    cors: Cors,
    assets: Option<AssetHook>,
    routes: Option<RouteHook>,
    endpoints: Vec<(String, Arc<dyn EngineHandler>)>,
    shutdown_grace: Duration,
    connections: Option<Connections>,
}

impl ServerBuilder {
    /// The Socket.IO path (default `/socket.io/`).
    pub fn path(mut self, path: &str) -> Self {
        self.path = path.to_owned();
        self
    }

    /// Server ping interval (default 25 s).
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.engine.ping_interval = d;
        self
    }

    /// How long a client has to answer a ping (default 20 s).
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.engine.ping_timeout = d;
        self
    }

    /// Largest accepted WebSocket message / polling body (default 1,000,000 bytes).
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.engine.max_payload = bytes;
        self
    }

    /// How long a new connection may take to join a namespace (default 45 s, as Socket.IO).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Per-connection outgoing queue bounds (packets, bytes); defaults 1024 and 8 MiB.
    pub fn queue_bounds(mut self, items: usize, bytes: usize) -> Self {
        self.engine.queue_items = items;
        self.engine.queue_bytes = bytes;
        self
    }

    /// Most binary attachments one incoming packet may carry (default 10).
    pub fn max_attachments(mut self, n: usize) -> Self {
        self.limits.max_attachments = n;
        self
    }

    /// Cross-origin policy (default: same origin only).
    pub fn cors(mut self, cors: Cors) -> Self {
        self.cors = cors;
        self
    }

    /// Static assets for GET requests outside the Engine.IO paths (e.g. the viewer page).
    pub fn assets(
        mut self,
        hook: impl Fn(&str) -> Option<(&'static str, bytes::Bytes)> + Send + Sync + 'static,
    ) -> Self {
        self.assets = Some(Arc::new(hook));
        self
    }

    /// Extra routes, tried before assets (e.g. `/api/status`, `/metrics`): the hook decides at once
    /// whether it answers, and answers with a future.
    pub fn routes(
        mut self,
        hook: impl Fn(&::http::request::Parts) -> Option<RouteFuture> + Send + Sync + 'static,
    ) -> Self {
        self.routes = Some(Arc::new(hook));
        self
    }

    /// An additional raw Engine.IO endpoint at `path` (e.g. the conformance echo).
    pub fn engine_endpoint(mut self, path: &str, handler: Arc<dyn EngineHandler>) -> Self {
        self.endpoints.push((path.to_owned(), handler));
        self
    }

    /// Bound on a clean shutdown (default 2 s).
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.shutdown_grace = d;
        self
    }

    /// The connection table: its [`ConnLimits`] (default [`ConnLimits::default`]) bound the
    /// connections and the Engine.IO sessions; share the handle to read its
    /// [`Connections::stats`] elsewhere (also [`Server::connection_stats`]).
    pub fn connections(mut self, connections: Connections) -> Self {
        self.connections = Some(connections);
        self
    }

    /// Builds the server (it serves once [`Server::serve`] runs).
    pub fn build(mut self) -> Server {
        let connections = self
            .connections
            .unwrap_or_else(|| Connections::new(ConnLimits::default()));
        let limits = connections.limits();
        self.engine.max_sessions = limits.max_connections;
        self.engine.max_sessions_per_address = limits.max_per_address;
        let sio = Arc::new(sio::SioServer {
            namespaces: Arc::new(RwLock::new(HashMap::new())),
            connect_timeout: self.connect_timeout,
            limits: self.limits,
        });
        let mut engines = vec![(
            trim_path(&self.path),
            Engine::new(self.engine.clone(), sio.clone()),
        )];
        for (path, handler) in self.endpoints {
            engines.push((trim_path(&path), Engine::new(self.engine.clone(), handler)));
        }
        let app = Arc::new(router::App {
            endpoints: engines.clone(),
            cors: self.cors,
            assets: self.assets,
            routes: self.routes,
            shutdown_grace: self.shutdown_grace,
            connections,
        });
        Server {
            inner: Arc::new(ServerInner {
                sio,
                app,
                engines: engines.into_iter().map(|(_, e)| e).collect(),
                shutdown: watch::Sender::new(false),
                grace: self.shutdown_grace,
            }),
        }
    }
}

fn trim_path(path: &str) -> String {
    let p = path.trim_end_matches('/');
    if p.starts_with('/') {
        p.to_owned()
    } else {
        format!("/{p}")
    }
}

struct ServerInner {
    sio: Arc<sio::SioServer>,
    app: Arc<router::App>,
    engines: Vec<Arc<Engine>>,
    shutdown: watch::Sender<bool>,
    grace: Duration,
}

/// A Socket.IO server. Cheap to clone (a handle).
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerInner>,
}

impl Server {
    /// Starts configuring a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            path: "/socket.io/".to_owned(),
            engine: EngineConfig::default(),
            connect_timeout: Duration::from_secs(45),
            limits: DecoderLimits::default(),
            cors: Cors::default(),
            assets: None,
            routes: None,
            endpoints: Vec::new(),
            shutdown_grace: Duration::from_secs(2),
            connections: None,
        }
    }

    /// The namespace `name` (created, with no connect handler, on first use). Clients can only
    /// join namespaces created this way; others get CONNECT_ERROR "Invalid namespace".
    pub fn of(&self, name: &str) -> Namespace {
        self.inner.sio.of(name)
    }

    /// Serves connections from `listener` until [`Server::shutdown`].
    pub async fn serve(&self, listener: TcpListener) {
        self.serve_with(listener, None).await
    }

    /// Serves HTTPS and WSS from `listener` until [`Server::shutdown`]: [`Server::serve`] with a
    /// TLS handshake (bounded in time) at the start of each connection.
    pub async fn serve_tls(&self, listener: TcpListener, tls: TlsConfig) {
        self.serve_with(listener, Some(tls)).await
    }

    /// [`Server::serve`] or [`Server::serve_tls`], as `tls` says.
    pub async fn serve_with(&self, listener: TcpListener, tls: Option<TlsConfig>) {
        router::serve(
            listener,
            self.inner.app.clone(),
            self.inner.shutdown.subscribe(),
            tls,
        )
        .await
    }

    /// Number of open Engine.IO sessions (all endpoints).
    pub fn connections(&self) -> usize {
        self.inner.engines.iter().map(|e| e.len()).sum()
    }

    /// The connections as of now: how many are open, the limits, and the refused and closed
    /// ones by reason.
    pub fn connection_stats(&self) -> ConnectionStats {
        self.inner.app.connections.stats()
    }

    /// Stops accepting, closes every session with a close packet (after flushing what is
    /// queued) and waits for them to end, at most the shutdown grace.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        for e in &self.inner.engines {
            e.close_all(CloseReason::ServerShuttingDown);
        }
        let deadline = tokio::time::Instant::now() + self.inner.grace;
        while self.connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
