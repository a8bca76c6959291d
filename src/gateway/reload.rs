//! SIGHUP: re-read the config file and apply only what changed, so viewers and relay links of
//! unchanged streams keep running (same sockets, no gap). An invalid new file is rejected with its
//! `file:line` error logged and the running config kept.

use super::relays::Relays;
use crate::config::{Config, StreamConfig};
use crate::service::viewers::ViewerHub;
use std::sync::Arc;
use std::time::Duration;

/// How long a reload may spend disconnecting a removed relay.
const RELAY_CLOSE_BUDGET: Duration = Duration::from_secs(1);

/// What a running gateway can change without a restart: its streams (capture + hub) and relays.
pub(super) struct Running {
    /// The config currently applied.
    pub(super) config: Config,
    pub(super) hub: Arc<ViewerHub>,
    pub(super) relays: Arc<Relays>,
    /// `None` only while a reload or the shutdown works on it off the runtime.
    #[cfg(feature = "media")]
    pub(super) capture: Option<crate::media::Capture>,
}

impl Running {
    /// Re-reads `config.source` and applies the differences; returns a one-line status for
    /// `systemctl status`. Never fails: problems are logged and the old settings stay.
    pub(super) async fn reload(&mut self) -> String {
        let Some(path) = self.config.source.clone() else {
            tracing::warn!(
                "SIGHUP: running the embedded default config, there is no file to reload"
            );
            return "no config file to reload".into();
        };
        let checked = Config::from_file(&path)
            .and_then(|c| c.for_gateway().map(|()| c))
            .and_then(|c| crate::service::check_tls_files(&c).map(|()| c));
        let new = match checked {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("config reload rejected, keeping the running config: {e}");
                return format!(
                    "reload of {} rejected: keeping the old config",
                    path.display()
                );
            }
        };
        let mut rest = new.clone();
        rest.streams.clone_from(&self.config.streams);
        rest.relays.clone_from(&self.config.relays);
        if rest != self.config {
            tracing::warn!(
                "config reload: changes outside [[stream]] and [[relay]] (device, user, [server], [log]) are ignored until restart"
            );
        }

        let streams = self.config.diff_streams(&new);
        let remove: Vec<String> = (streams.removed.iter().copied())
            .chain(streams.changed.iter().map(|(old, _)| *old))
            .map(|s| s.id.clone())
            .collect();
        let add: Vec<StreamConfig> = (streams.added.iter().copied())
            .chain(streams.changed.iter().map(|(_, new)| *new))
            .cloned()
            .collect();
        let relays = self.config.diff_relays(&new);
        let summary = format!(
            "config reloaded: streams +{} -{} ~{}, relays +{} -{} ~{}",
            streams.added.len(),
            streams.removed.len(),
            streams.changed.len(),
            relays.added.len(),
            relays.removed.len(),
            relays.changed.len()
        );
        let relay_stop: Vec<_> = (relays.removed.iter().copied())
            .chain(relays.changed.iter().map(|(old, _)| *old))
            .cloned()
            .collect();
        let relay_start: Vec<_> = (relays.added.iter().copied())
            .chain(relays.changed.iter().map(|(_, new)| *new))
            .cloned()
            .collect();

        self.restart_streams(remove, add).await;
        for r in &relay_stop {
            tracing::info!(relay = %r.url, "config reload: disconnecting");
            self.relays.remove(r, RELAY_CLOSE_BUDGET).await;
        }
        for r in &relay_start {
            tracing::info!(relay = %r.url, "config reload: connecting");
            if let Err(e) = self.relays.add(r, &self.config.device) {
                tracing::error!("config reload: {e}");
            }
        }
        self.config = new;
        tracing::info!("{summary}");
        summary
    }

    /// Stops the `remove` streams (capture, then hub: their watchers get `status` down and stay
    /// registered) and starts the `add` ones. Capture joins threads, so it runs off the runtime.
    async fn restart_streams(&mut self, remove: Vec<String>, add: Vec<StreamConfig>) {
        let hub = self.hub.clone();
        #[cfg(feature = "media")]
        {
            let mut capture = self.capture.take();
            let job = tokio::task::spawn_blocking(move || {
                if let Some(c) = capture.as_mut() {
                    for id in &remove {
                        c.remove_stream(id);
                        withdraw(&hub, id);
                    }
                    for s in &add {
                        if let Err(e) = c.add_stream(&s.id, s.video.as_ref(), s.audio.as_ref()) {
                            tracing::error!(stream = %s.id, "config reload: cannot start: {e}");
                        }
                    }
                }
                capture
            });
            match job.await {
                Ok(c) => self.capture = c,
                Err(e) => {
                    tracing::error!("config reload: capture update failed ({e}): capture stopped")
                }
            }
        }
        #[cfg(not(feature = "media"))]
        {
            for id in &remove {
                withdraw(&hub, id);
            }
            if !add.is_empty() {
                tracing::warn!("built without the `media` feature: added streams stay empty");
            }
        }
    }
}

/// Withdraws a stream from the hub (a stream that never came up is not in it: nothing to do).
fn withdraw(hub: &ViewerHub, id: &str) {
    tracing::info!(stream = %id, "config reload: stream stopped");
    if let Err(e) = hub.withdraw(id) {
        tracing::debug!(stream = %id, "withdraw: {e}");
    }
}
