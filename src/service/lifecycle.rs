//! [`Service`]: the life of a running mode under systemd, the same for `sioedge run` and
//! `sioedge relay` — the file descriptor limit raised and signals installed early, root dropped
//! once the ports are bound, `READY=1` once serving, the watchdog pinged from the main loop,
//! SIGHUP → reload, SIGTERM/SIGINT → stop.

use super::error::ServiceError;
use super::fd_limit::raise_fd_limit;
use super::notify::Notifier;
use super::privileges::{PrivilegeDrop, drop_privileges};
use super::signals::{Signal, Signals};
use std::future::Future;

/// A running mode's side of the service manager: its notifier and the signals it acts on.
#[derive(Debug)]
pub struct Service {
    notifier: Notifier,
    signals: Signals,
}

/// Logs a failed `sd_notify` (systemd would notice missing pings; the service keeps serving).
fn notified(what: &str, result: Result<(), ServiceError>) {
    if let Err(e) = result {
        tracing::warn!("sd_notify {what}: {e}");
    }
}

impl Service {
    /// Reads `$NOTIFY_SOCKET` and `$WATCHDOG_USEC`, installs the signal handlers (from here on
    /// SIGHUP, SIGTERM and SIGINT no longer kill the process, so call it first thing) and raises
    /// the soft file descriptor limit to the hard one. Needs a tokio runtime.
    pub fn start() -> Result<Service, ServiceError> {
        raise_fd_limit();
        Ok(Service {
            notifier: Notifier::from_env()?,
            signals: Signals::new()?,
        })
    }

    /// The ports are bound: when started as root with `user` set, switches to that user (root
    /// must not reach capture, clients or the network). Does nothing otherwise.
    pub fn drop_privileges(&self, user: Option<&str>) -> Result<(), ServiceError> {
        if let Some(user) = user
            && let PrivilegeDrop::Dropped { uid, gid } = drop_privileges(user)?
        {
            tracing::info!(%user, uid, gid, "dropped root privileges");
        }
        Ok(())
    }

    /// `READY=1` with a status line for `systemctl status`: serving.
    pub fn ready(&self, status: &str) {
        notified("READY", self.notifier.ready(status));
    }

    /// Serves until `shutdown` completes or SIGTERM/SIGINT arrives, pinging the watchdog from this
    /// loop (a wedged loop stops the pings and systemd restarts the service). On SIGHUP it tells
    /// systemd `RELOADING=1`, awaits `reload` and reports its status line with `READY=1`. Tells
    /// `STOPPING=1` on the way out.
    pub async fn run(
        &mut self,
        shutdown: impl Future<Output = ()>,
        mut reload: impl AsyncFnMut() -> String,
    ) {
        let mut watchdog = self.notifier.watchdog_timer();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                () = watchdog.tick() => notified("WATCHDOG", self.notifier.watchdog()),
                signal = self.signals.recv() => match signal {
                    Signal::Reload => {
                        notified("RELOADING", self.notifier.reloading());
                        let status = reload().await;
                        notified("READY", self.notifier.ready(&status));
                    }
                    Signal::Shutdown => break,
                },
            }
        }
        notified("STOPPING", self.notifier.stopping());
    }
}
