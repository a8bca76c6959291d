//! `sioedge run`: capture → hub → LAN viewers (our Socket.IO server with the viewer page) and
//! relays (our client), plus `/api/status` and `/metrics`, and a clean shutdown.
//!
//! Wiring only: the stream logic lives in [`crate::hub`], the viewer contract, the server, the
//! status routes and the systemd handling in [`crate::service`] (shared with `sioedge relay`),
//! capture in [`crate::media`].

#[cfg(feature = "media")]
mod capture;
mod error;
mod relays;
mod reload;

pub use error::GatewayError;

use crate::config::Config;
use crate::hub::{CacheLimits, InProcess};
use crate::service::status::Observed;
use crate::service::viewers::{self, Access};
use crate::service::{self, Service};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long a shutdown may take in total (viewers and relays told, pipelines stopped).
const SHUTDOWN_BUDGET: Duration = Duration::from_millis(1800);

/// Runs the gateway until `shutdown` completes or SIGTERM/SIGINT arrives, then stops within about
/// two seconds. Prints `viewer: <url>` on stdout once the server listens, then tells systemd
/// `READY=1`; pings its watchdog from the main loop; reloads the config file on SIGHUP
/// (see `reload.rs`). When started as root with `user` set, drops to it right after binding.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), GatewayError> {
    config.for_gateway()?;
    let mut service = Service::start()?;
    let observed = Arc::new(OnceLock::new());
    let s = &config.server;
    // Before binding and the privilege drop: the state directory may be root's.
    let tls = service::load_tls(s.tls.as_ref())?;
    let server = service::viewer_server(s, observed.clone(), service::h264_decoder());
    let ns = server.of("/");
    let hub = viewers::hub(&ns, Arc::new(InProcess), CacheLimits::default());
    viewers::serve(&ns, hub.clone(), Access::from(s.viewer_auth()));
    let (listener, addr) = service::listen(s.listen).await?;
    // Ports are bound: root is no longer needed (and must not reach capture or the network).
    service.drop_privileges(config.user.as_deref())?;
    let relays = Arc::new(relays::Relays::start(&config, &hub)?);
    let _ = observed.set(Observed {
        device: config.device.clone(),
        started: Instant::now(),
        hub: hub.clone(),
        viewers: ns.clone(),
        links: Box::new({
            let relays = relays.clone();
            move || relays.reports()
        }),
    });
    let url = service::viewer_url(addr, tls.is_some());
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
    service.ready(&format!("viewer {url} ({})", config.summary()));
    let mut running = reload::Running {
        config,
        hub,
        relays: relays.clone(),
        #[cfg(feature = "media")]
        capture,
    };
    service.run(shutdown, async || running.reload().await).await;

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
