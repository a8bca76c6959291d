//! SIGHUP (reload), SIGTERM and SIGINT (stop) as values the main loop selects on.

use super::error::ServiceError;
use tokio::signal::unix::{SignalKind, signal};

/// A signal the main loop acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGHUP (`systemctl reload sioedge`): re-read the config file.
    Reload,
    /// SIGTERM (`systemctl stop`) or SIGINT (Ctrl-C): shut down cleanly.
    Shutdown,
}

/// SIGHUP, SIGTERM and SIGINT as a stream of [`Signal`]s. Once created, these signals no
/// longer terminate the process, so create it early in the main loop.
#[derive(Debug)]
pub struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers; must be called inside a tokio runtime.
    pub fn new() -> Result<Signals, ServiceError> {
        let install =
            |kind, name| signal(kind).map_err(|source| ServiceError::Signal { name, source });
        Ok(Signals {
            hup: install(SignalKind::hangup(), "SIGHUP")?,
            term: install(SignalKind::terminate(), "SIGTERM")?,
            int: install(SignalKind::interrupt(), "SIGINT")?,
        })
    }

    /// The next signal received.
    pub async fn recv(&mut self) -> Signal {
        tokio::select! {
            Some(()) = self.hup.recv() => Signal::Reload,
            Some(()) = self.term.recv() => Signal::Shutdown,
            Some(()) = self.int.recv() => Signal::Shutdown,
            else => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn sighup_reloads_and_sigterm_shuts_down() {
        use nix::sys::signal::{Signal as Sig, raise};
        let mut signals = Signals::new().expect("handlers");
        raise(Sig::SIGHUP).expect("raise");
        let got = tokio::time::timeout(Duration::from_secs(5), signals.recv()).await;
        assert_eq!(got.ok(), Some(Signal::Reload));
        raise(Sig::SIGTERM).expect("raise");
        let got = tokio::time::timeout(Duration::from_secs(5), signals.recv()).await;
        assert_eq!(got.ok(), Some(Signal::Shutdown));
    }
}
