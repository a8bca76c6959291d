//! The server as both modes run it: the viewer page at `/`, `/api/status`, `/metrics` and
//! `/api/streams/<id>/snapshot.jpg`, per-viewer queues sized for live media, and the configured
//! connection limits.

use super::fd_limit::within_fd_limit;
use super::snapshot::{Decode, SnapshotLimits, Snapshots};
use super::status::{ObservedSlot, http_route};
use super::viewers::Access;
use crate::config::ServerConfig;
use crate::server::{ConnLimits, Connections, Cors, RouteFuture, Server};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// Each viewer connection's queue: about two seconds of 30 fps video plus 50 fps audio, and room
/// for a few large keyframes. A viewer further behind than that is live no more: it drops to the
/// next keyframe instead of piling up latency (the server's defaults suit a generic app, not live media).
const VIEWER_QUEUE_ITEMS: usize = 160;
const VIEWER_QUEUE_BYTES: usize = 4 << 20;

/// The server for `settings`, answering the status and snapshot routes from `observed` once it is
/// set; H.264 snapshots decode with `decoder` (`None`: MJPEG snapshots only).
pub fn viewer_server(
    settings: &ServerConfig,
    observed: ObservedSlot,
    decoder: Option<Arc<dyn Decode>>,
) -> Server {
    let snapshots = Arc::new(Snapshots::new(
        Access::from(settings.viewer_auth()),
        decoder,
        SnapshotLimits::default(),
    ));
    let connections = Connections::new(within_fd_limit(ConnLimits {
        max_connections: settings.max_connections,
        max_per_address: settings.max_connections_per_address,
        idle_timeout: settings.idle_timeout.get(),
        header_timeout: settings.header_timeout.get(),
        body_timeout: settings.body_timeout.get(),
    }));
    Server::builder()
        .path(&settings.path)
        .ping_interval(settings.ping_interval.get())
        .ping_timeout(settings.ping_timeout.get())
        .max_payload(settings.max_payload.as_usize())
        .cors(Cors {
            allowed_origins: settings.cors_origins.clone(),
            credentials: false,
        })
        .assets(|path| crate::viewer::asset(path).map(|(t, b)| (t, Bytes::from_static(b))))
        .connections(connections.clone())
        .routes(move |parts| {
            snapshots
                .route(parts, || observed.get().map(|o| o.hub.clone()))
                .or_else(|| {
                    let report = || {
                        observed
                            .get()
                            .map(|o| o.report(connections.stats(), snapshots.stats()))
                    };
                    let status = http_route(parts.uri.path(), report);
                    status.map(|r| Box::pin(std::future::ready(r)) as RouteFuture)
                })
        })
        .queue_bounds(VIEWER_QUEUE_ITEMS, VIEWER_QUEUE_BYTES)
        .shutdown_grace(Duration::from_secs(1))
        .build()
}
