//! Relay mode (`sioedge relay`): authenticated publishers, many viewers, Redis scale-out.
//!
//! Wiring only, like the gateway: publishers come in on the publisher namespace
//! ([`publishers`]), viewers are served the same contract and page as on a gateway
//! ([`crate::gateway::viewers`]), the hub does the fan-out, and with `adapter = "redis://…"` the
//! hub's [`cluster::RedisAdapter`] makes several relay processes one relay. Needs no GStreamer.

pub mod cluster;
pub mod publishers;
pub mod redis_bus;

use crate::config::{Config, ConfigError};
use crate::gateway::viewers::{self, Access, ViewerHub};
use crate::hub::report::{LinkReport, StatusReport};
use crate::hub::{Adapter, CacheLimits, InProcess};
use crate::server::Namespace;
use bytes::Bytes;
use cluster::RedisAdapter;
use http_body_util::Full;
use publishers::Publishers;
use redis_bus::{BusConfig, BusError};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The config cannot run a relay.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address is unavailable.
    #[error(transparent)]
    Bind(#[from] crate::gateway::BindError),
    /// The Redis adapter URL is unusable.
    #[error(transparent)]
    Adapter(#[from] BusError),
    /// `[relay_server.tls]`: the certificate or key cannot be used (the error names the file).
    #[error("[relay_server.tls] {0}")]
    Tls(#[from] crate::server::TlsError),
}

/// What `/api/status` and `/metrics` read.
struct Observed {
    node: String,
    started: Instant,
    hub: Arc<ViewerHub>,
    viewers: Namespace,
    publishers: Arc<Publishers>,
    redis: Option<Arc<RedisAdapter>>,
}

impl Observed {
    fn report(&self) -> StatusReport {
        // The outgoing links of a relay node: its publishers (as one link) and the Redis bus.
        let mut links = vec![LinkReport {
            name: "publishers".into(),
            state: format!("{} connected", self.publishers.count()),
            last_error: None,
            sent: 0,
            dropped: 0,
            reconnects: 0,
        }];
        if let Some(redis) = &self.redis {
            let s = redis.bus().stats();
            links.push(LinkReport {
                name: "redis".into(),
                state: if s.connected.load(Ordering::Relaxed) {
                    "connected".into()
                } else {
                    "reconnecting".into()
                },
                last_error: None,
                sent: s.published.load(Ordering::Relaxed),
                dropped: s.publish_dropped.load(Ordering::Relaxed)
                    + s.receive_dropped.load(Ordering::Relaxed),
                reconnects: s.reconnects.load(Ordering::Relaxed),
            });
        }
        StatusReport {
            device: self.node.clone(),
            uptime_seconds: self.started.elapsed().as_secs(),
            viewers: self.viewers.sockets().len(),
            hub: self.hub.snapshot(),
            relays: links,
        }
    }
}

fn route(
    observed: &OnceLock<Observed>,
    parts: &http::request::Parts,
) -> Option<http::Response<Full<Bytes>>> {
    crate::hub::report::http_route(parts.uri.path(), || observed.get().map(Observed::report))
}

/// Runs the relay until `shutdown` completes. Prints `relay: <url>` on stdout once listening.
/// SIGHUP re-reads the publisher tokens (inline or `tokens_file`) without dropping anybody.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), RelayError> {
    let rs = config.for_relay()?.clone();
    let tls = crate::gateway::load_tls(rs.server.tls.as_ref())?;
    let http = &rs.server;
    let node = format!("{}-{}", config.device, std::process::id());
    let observed: Arc<OnceLock<Observed>> = Arc::new(OnceLock::new());
    let o = observed.clone();
    let server = crate::gateway::viewer_server(http, move |parts| route(&o, parts));

    let (adapter, redis): (Arc<dyn Adapter>, Option<_>) = match &rs.adapter {
        Some(url) => {
            let (adapter, feeder) = RedisAdapter::start(BusConfig {
                url: url.clone(),
                prefix: rs.adapter_prefix.clone(),
                node: node.clone(),
                ttl: rs.cache_ttl.get(),
                queue: 1024,
            })?;
            (adapter.clone(), Some((adapter, feeder)))
        }
        None => (Arc::new(InProcess), None),
    };
    let viewers_ns = server.of(&rs.viewer_namespace);
    let hub = viewers::hub(&viewers_ns, adapter, CacheLimits::default());
    viewers::serve(&viewers_ns, hub.clone(), Access::from(http.viewer_auth()));
    let publishers = Publishers::new(rs.publisher_tokens()?, rs.duplicate_publisher);
    publishers::serve(
        &server.of(&rs.publisher_namespace),
        hub.clone(),
        publishers.clone(),
    );
    let redis = redis.map(|(adapter, feeder)| {
        tokio::spawn(feeder.run(hub.clone()));
        adapter
    });
    let _ = observed.set(Observed {
        node: node.clone(),
        started: Instant::now(),
        hub: hub.clone(),
        viewers: viewers_ns.clone(),
        publishers: publishers.clone(),
        redis: redis.clone(),
    });

    let (listener, addr) = crate::gateway::listen(rs.server.listen).await?;
    let url = crate::gateway::viewer_url(addr, tls.is_some());
    let serving = tokio::spawn({
        let server = server.clone();
        async move { server.serve_with(listener, tls).await }
    });
    let reloading = tokio::spawn(reload_tokens_on_sighup(config.clone(), publishers.clone()));
    println!("relay: {url}");
    tracing::info!(
        node,
        adapter = rs.adapter.as_deref().unwrap_or("in-process"),
        "sioedge relay running"
    );

    shutdown.await;
    tracing::info!("relay shutting down");
    reloading.abort();
    for socket in viewers_ns.sockets() {
        socket.disconnect();
    }
    server.shutdown().await;
    serving.abort();
    if let Some(redis) = redis {
        redis.bus().abort();
    }
    Ok(())
}

/// Re-reads the publisher tokens on every SIGHUP; a broken file keeps the old tokens.
async fn reload_tokens_on_sighup(config: Config, publishers: Arc<Publishers>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        let Some(path) = &config.source else {
            tracing::info!("SIGHUP: running on the embedded default, nothing to reload");
            continue;
        };
        let fresh = Config::from_file(path).and_then(|c| {
            let tokens = c.for_relay()?.publisher_tokens()?;
            Ok(tokens)
        });
        match fresh {
            Ok(tokens) => {
                tracing::info!(devices = tokens.len(), "SIGHUP: publisher tokens reloaded");
                publishers.set_tokens(tokens);
            }
            Err(e) => tracing::error!("SIGHUP: keeping the old tokens: {e}"),
        }
    }
}
