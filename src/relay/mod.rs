//! Relay mode (`sioedge relay`): authenticated publishers, many viewers, Redis scale-out.
//!
//! Wiring only, like the gateway: publishers come in on the publisher namespace
//! (`publishers.rs`), viewers are served the same contract and page as on a gateway
//! (`service/viewers.rs`), the hub does the fan-out, and with `adapter = "redis://…"` the
//! hub's [`cluster::RedisAdapter`] makes several relay processes one relay. Runs under systemd
//! like the gateway ([`crate::service::Service`]). Needs no GStreamer.

pub mod cluster;
pub mod envelope;
mod error;
mod publishers;
pub mod redis_bus;

pub use error::RelayError;

use crate::config::Config;
use crate::hub::{Adapter, CacheLimits, InProcess};
use crate::service::status::{LinkReport, Observed};
use crate::service::viewers::{self, Access};
use crate::service::{self, Service};
use crate::sync::lock;
use cluster::RedisAdapter;
use publishers::{Limits, Publishers};
use redis_bus::BusConfig;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// The outgoing links of a relay node, for `/api/status`: its publishers (as one link) and the
/// Redis bus.
fn links(publishers: &Publishers, redis: Option<&RedisAdapter>) -> Vec<LinkReport> {
    let mut links = vec![LinkReport {
        name: "publishers".into(),
        state: format!("{} connected", publishers.count()),
        last_error: None,
        last_error_at: None,
        sent: 0,
        dropped: 0,
        reconnects: 0,
        attempts: 0,
    }];
    if let Some(redis) = redis {
        let s = redis.bus().stats();
        let last_error = lock(&s.last_error).clone();
        links.push(LinkReport {
            name: "redis".into(),
            state: if s.connected.load(Ordering::Relaxed) {
                "connected".into()
            } else {
                "reconnecting".into()
            },
            last_error_at: last_error.as_ref().map(|(_, at)| *at),
            last_error: last_error.map(|(e, _)| e),
            sent: s.published.load(Ordering::Relaxed),
            dropped: s.publish_dropped.load(Ordering::Relaxed)
                + s.receive_dropped.load(Ordering::Relaxed),
            reconnects: s.reconnects.load(Ordering::Relaxed),
            attempts: s.failed_attempts.load(Ordering::Relaxed),
        });
    }
    links
}

/// Runs the relay until `shutdown` completes or SIGTERM/SIGINT arrives. Prints `relay: <url>` on
/// stdout once listening, then tells systemd `READY=1`; pings its watchdog from the main loop; on
/// SIGHUP re-reads the publisher tokens (inline or `tokens_file`) without dropping anybody. When
/// started as root with `user` set, drops to it right after binding.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), RelayError> {
    let rs = config.for_relay()?.clone();
    let mut service = Service::start()?;
    // Before binding and the privilege drop: the state directory may be root's.
    let tls = service::load_tls(rs.server.tls.as_ref())?;
    let node = format!("{}-{}", config.device, std::process::id());
    let observed = Arc::new(OnceLock::new());
    // No decoder on a relay: MJPEG snapshots only, H.264 ones answer 501 (docs/viewer.md).
    let server = service::viewer_server(&rs.server, observed.clone(), None);

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
    viewers::serve(
        &viewers_ns,
        hub.clone(),
        Access::from(rs.server.viewer_auth()),
    );
    let publishers = Publishers::new(
        hub.clone(),
        rs.publisher_tokens()?,
        rs.duplicate_publisher,
        Limits {
            streams: rs.max_streams_per_publisher,
            cache: rs.max_cache_per_publisher.as_usize(),
        },
    );
    publishers::serve(&server.of(&rs.publisher_namespace), publishers.clone());
    let redis = redis.map(|(adapter, feeder)| {
        tokio::spawn(feeder.run(hub.clone()));
        adapter
    });
    let _ = observed.set(Observed {
        device: node.clone(),
        started: Instant::now(),
        hub: hub.clone(),
        viewers: viewers_ns.clone(),
        links: Box::new({
            let (publishers, redis) = (publishers.clone(), redis.clone());
            move || links(&publishers, redis.as_deref())
        }),
    });

    let (listener, addr) = service::listen(rs.server.listen).await?;
    service.drop_privileges(config.user.as_deref())?;
    let url = service::viewer_url(addr, tls.is_some());
    let serving = tokio::spawn({
        let server = server.clone();
        async move { server.serve_with(listener, tls).await }
    });
    println!("relay: {url}");
    let adapter_name = rs.adapter.as_deref().unwrap_or("in-process");
    tracing::info!(node, adapter = adapter_name, "sioedge relay running");
    service.ready(&format!("relay {url} ({})", config.summary()));
    service
        .run(shutdown, async || {
            reload_tokens(config.source.as_deref(), &publishers)
        })
        .await;

    tracing::info!("relay shutting down");
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

/// SIGHUP: re-reads the publisher tokens from the config file; a broken file keeps the old tokens.
/// Returns the status line for systemd.
fn reload_tokens(source: Option<&Path>, publishers: &Publishers) -> String {
    let Some(path) = source else {
        tracing::info!("SIGHUP: running on the embedded default, nothing to reload");
        return "no config file to reload".into();
    };
    let fresh = Config::from_file(path).and_then(|c| c.for_relay()?.publisher_tokens());
    match fresh {
        Ok(tokens) => {
            tracing::info!(devices = tokens.len(), "SIGHUP: publisher tokens reloaded");
            let status = format!("publisher tokens reloaded ({} devices)", tokens.len());
            publishers.set_tokens(tokens);
            status
        }
        Err(e) => {
            tracing::error!("SIGHUP: keeping the old tokens: {e}");
            format!(
                "reload of {} rejected: keeping the old tokens",
                path.display()
            )
        }
    }
}
