//! `sioedge run`: capture → hub → LAN viewers (our Socket.IO server with the viewer page) and
//! relays (our client), plus `/api/status` and `/metrics`, and a clean shutdown.
//!
//! Wiring only: the stream logic lives in [`crate::hub`], the viewer contract in [`viewers`] (shared
//! with `sioedge relay`), capture in [`crate::media`].

#[cfg(feature = "media")]
mod capture;
mod relays;
mod reload;
pub mod viewers;

use crate::config::{Config, ConfigError, ServerConfig, ServerTls};
use crate::hub::report::{LinkReport, StatusReport};
use crate::hub::{CacheLimits, InProcess};
use crate::server::{Cors, Namespace, Server, TlsConfig, TlsError};
use crate::service::{self, Notifier, PrivilegeDrop, ServiceError, Signal, Signals};
use bytes::Bytes;
use http_body_util::Full;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use viewers::{Access, ViewerHub};

/// The listen address of the gateway or the relay is unavailable.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The configured address.
    pub addr: SocketAddr,
    /// The OS error.
    pub source: std::io::Error,
}

/// Binds the server's listener; returns it with the address actually bound (port 0 picks one).
pub(crate) async fn listen(
    addr: SocketAddr,
) -> Result<(tokio::net::TcpListener, SocketAddr), BindError> {
    let bound = async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        Ok((listener, local))
    };
    bound.await.map_err(|source| BindError { addr, source })
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The config cannot run a gateway.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address is unavailable.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// A `[[relay]]` cannot be set up.
    #[error("relay {relay}: {problem}")]
    Relay {
        /// The relay URL.
        relay: String,
        /// What is wrong.
        problem: String,
    },
    /// systemd notification setup, signal handlers or the privilege drop failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// `[server.tls]`: the certificate or key cannot be used (the error names the file).
    #[error("[server.tls] {0}")]
    Tls(#[from] TlsError),
    /// Capture could not start.
    #[cfg(feature = "media")]
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),
}

/// Each viewer connection's queue: about two seconds of 30 fps video plus 50 fps audio, and room
/// for a few large keyframes. A viewer further behind than that is live no more: it drops to the
/// next keyframe instead of piling up latency (the server's defaults suit a generic app, not live media).
const VIEWER_QUEUE_ITEMS: usize = 160;
const VIEWER_QUEUE_BYTES: usize = 4 << 20;

/// How long a shutdown may take in total (viewers and relays told, pipelines stopped).
const SHUTDOWN_BUDGET: Duration = Duration::from_millis(1800);

/// What `/api/status` and `/metrics` read, filled in once the server exists.
struct Observed {
    device: String,
    started: Instant,
    hub: Arc<ViewerHub>,
    viewers: Namespace,
    relays: Arc<relays::Relays>,
}

impl Observed {
    fn report(&self) -> StatusReport {
        let links: Vec<LinkReport> = self.relays.reports();
        StatusReport {
            device: self.device.clone(),
            uptime_seconds: self.started.elapsed().as_secs(),
            viewers: self.viewers.sockets().len(),
            hub: self.hub.snapshot(),
            relays: links,
        }
    }
}

/// The server as the gateway and the relay run it: the viewer page at `/`, `routes` (status and
/// metrics), and per-viewer queues sized for live media.
pub(crate) fn viewer_server(
    s: &ServerConfig,
    routes: impl Fn(&http::request::Parts) -> Option<http::Response<Full<Bytes>>>
    + Send
    + Sync
    + 'static,
) -> Server {
    Server::builder()
        .path(&s.path)
        .ping_interval(s.ping_interval.get())
        .ping_timeout(s.ping_timeout.get())
        .max_payload(s.max_payload.as_usize())
        .cors(Cors {
            allowed_origins: s.cors_origins.clone(),
            credentials: false,
        })
        .assets(|path| crate::viewer::asset(path).map(|(t, b)| (t, Bytes::from_static(b))))
        .routes(routes)
        .queue_bounds(VIEWER_QUEUE_ITEMS, VIEWER_QUEUE_BYTES)
        .shutdown_grace(Duration::from_secs(1))
        .build()
}

/// Answers `GET /api/status` and `GET /metrics`.
fn route(
    observed: &OnceLock<Observed>,
    parts: &http::request::Parts,
) -> Option<http::Response<Full<Bytes>>> {
    crate::hub::report::http_route(parts.uri.path(), || observed.get().map(Observed::report))
}

/// Loads a server's `tls` section (generating the self-signed pair on first start when asked)
/// and logs the certificate's fingerprint, which a user can compare with the browser's warning.
pub(crate) fn load_tls(tls: Option<&ServerTls>) -> Result<Option<TlsConfig>, TlsError> {
    let Some(tls) = tls else { return Ok(None) };
    let (cert, key) = tls.files();
    let loaded = if tls.self_signed {
        TlsConfig::load_or_generate(&cert, &key)?
    } else {
        TlsConfig::load(&cert, &key)?
    };
    tracing::info!(
        cert = %cert.display(),
        self_signed = tls.self_signed,
        "HTTPS on; certificate SHA-256 fingerprint {}",
        loaded.fingerprint()
    );
    Ok(Some(loaded))
}

/// The URL to print for a listen address (an unspecified IP is reachable on loopback too).
pub(crate) fn viewer_url(addr: SocketAddr, tls: bool) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{ip}:{}/", addr.port())
}

/// Logs a failed `sd_notify` (systemd would notice missing pings; the gateway keeps serving).
fn notified(what: &str, result: Result<(), ServiceError>) {
    if let Err(e) = result {
        tracing::warn!("sd_notify {what}: {e}");
    }
}

/// Runs the gateway until `shutdown` completes or SIGTERM/SIGINT arrives, then stops within about
/// two seconds. Prints `viewer: <url>` on stdout once the server listens, then tells systemd
/// `READY=1`; pings its watchdog from this loop; reloads the config file on SIGHUP
/// (see [`reload`]). When started as root with `user` set, drops to it right after binding.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), GatewayError> {
    config.for_gateway()?;
    let notifier = Notifier::from_env()?;
    let mut signals = Signals::new()?;
    let observed: Arc<OnceLock<Observed>> = Arc::new(OnceLock::new());
    let o = observed.clone();
    let s = &config.server;
    // Before binding and the privilege drop: the state directory may be root's.
    let tls = load_tls(s.tls.as_ref())?;
    let server = viewer_server(s, move |parts| route(&o, parts));
    let ns = server.of("/");
    let hub = viewers::hub(&ns, Arc::new(InProcess), CacheLimits::default());
    viewers::serve(&ns, hub.clone(), Access::from(s.viewer_auth()));
    let (listener, addr) = listen(s.listen).await?;
    // Ports are bound: root is no longer needed (and must not reach capture or the network).
    if let Some(user) = &config.user
        && let PrivilegeDrop::Dropped { uid, gid } = service::drop_privileges(user)?
    {
        tracing::info!(%user, uid, gid, "dropped root privileges");
    }
    let relays = Arc::new(relays::Relays::start(&config, &hub)?);
    let _ = observed.set(Observed {
        device: config.device.clone(),
        started: Instant::now(),
        hub: hub.clone(),
        viewers: ns.clone(),
        relays: relays.clone(),
    });
    let url = viewer_url(addr, tls.is_some());
    let serving = tokio::spawn({
        let server = server.clone();
        async move { server.serve_with(listener, tls).await }
    });

    #[cfg(feature = "media")]
    let capture = Some(capture::start(&config, hub.clone())?);
    #[cfg(not(feature = "media"))]
    tracing::warn!(
        "built without the `media` feature: no capture, {} configured stream(s) stay empty",
        config.streams.len()
    );

    println!("viewer: {url}");
    tracing::info!(device = %config.device, "sioedge gateway running ({})", config.summary());
    notified(
        "READY",
        notifier.ready(&format!("viewer {url} ({})", config.summary())),
    );
    let mut running = reload::Running {
        config,
        hub,
        relays: relays.clone(),
        #[cfg(feature = "media")]
        capture,
    };

    let mut watchdog = notifier.watchdog_timer();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            // Pinged from the loop that also handles reloads: a wedged loop stops the pings.
            () = watchdog.tick() => notified("WATCHDOG", notifier.watchdog()),
            signal = signals.recv() => match signal {
                Signal::Reload => {
                    notified("RELOADING", notifier.reloading());
                    let status = running.reload().await;
                    notified("READY", notifier.ready(&status));
                }
                Signal::Shutdown => break,
            },
        }
    }

    notified("STOPPING", notifier.stopping());
    let deadline = Instant::now() + SHUTDOWN_BUDGET;
    tracing::info!("shutting down");
    // Stop capture off the runtime: joining the pipeline threads blocks.
    #[cfg(feature = "media")]
    let stopping = {
        let capture = running.capture.take();
        tokio::task::spawn_blocking(move || drop(capture))
    };
    for socket in ns.sockets() {
        socket.disconnect();
    }
    tokio::join!(
        server.shutdown(),
        relays.close(deadline.saturating_duration_since(Instant::now()))
    );
    serving.abort();
    #[cfg(feature = "media")]
    if tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), stopping)
        .await
        .is_err()
    {
        tracing::warn!("capture pipelines did not stop in time");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewer_url_is_reachable() {
        assert_eq!(
            viewer_url("0.0.0.0:8080".parse().unwrap(), false),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            viewer_url("192.168.1.5:80".parse().unwrap(), false),
            "http://192.168.1.5:80/"
        );
        assert_eq!(
            viewer_url("[::]:9".parse().unwrap(), true),
            "https://[::1]:9/"
        );
    }
}
