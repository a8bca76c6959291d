//! `sd_notify`: readiness, status and watchdog notifications to systemd.
//!
//! The packaged unit (`target-configs/debian/sioedge.service`) is `Type=notify` with
//! `WatchdogSec=`: systemd considers the service started only after [`Notifier::ready`] and
//! restarts it when [`Notifier::watchdog`] stops arriving. Outside systemd (`NOTIFY_SOCKET`
//! unset) every notification is a no-op, so the same code runs from a shell.

use super::error::ServiceError;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Sends `sd_notify` messages to the service manager; a no-op when `$NOTIFY_SOCKET` is unset.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr, String)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID` as systemd sets them.
    pub fn from_env() -> Result<Notifier, ServiceError> {
        let var = |name| std::env::var(name).ok();
        let watchdog = watchdog_interval(
            var("WATCHDOG_USEC").as_deref(),
            var("WATCHDOG_PID").as_deref(),
            std::process::id(),
        )?;
        Notifier::new(var("NOTIFY_SOCKET").as_deref(), watchdog)
    }

    /// A notifier for an explicit socket (`None`: notifications are dropped) and ping interval.
    pub fn new(socket: Option<&str>, watchdog: Option<Duration>) -> Result<Notifier, ServiceError> {
        let target = match socket.filter(|s| !s.is_empty()) {
            None => None,
            Some(name) => {
                let addr = notify_socket_addr(name)?;
                let sock = UnixDatagram::unbound()
                    .and_then(|s| s.set_nonblocking(true).map(|()| s))
                    .map_err(|source| ServiceError::Notify {
                        socket: name.to_owned(),
                        source,
                    })?;
                Some((sock, addr, name.to_owned()))
            }
        };
        Ok(Notifier { target, watchdog })
    }

    /// Whether a service manager listens (i.e. `$NOTIFY_SOCKET` was set).
    pub fn is_supervised(&self) -> bool {
        self.target.is_some()
    }

    /// `READY=1` plus a status line: the service is up (sockets bound, pipelines started).
    pub fn ready(&self, status: &str) -> Result<(), ServiceError> {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    /// `STATUS=…`: a free-form line shown by `systemctl status`.
    pub fn status(&self, status: &str) -> Result<(), ServiceError> {
        self.send(&format!("STATUS={}", one_line(status)))
    }

    /// `WATCHDOG=1`: the main loop is alive. Call it every [`Notifier::watchdog_interval`].
    pub fn watchdog(&self) -> Result<(), ServiceError> {
        self.send("WATCHDOG=1")
    }

    /// `RELOADING=1`: a SIGHUP reload started; follow with [`Notifier::ready`] when done.
    pub fn reloading(&self) -> Result<(), ServiceError> {
        self.send("RELOADING=1\nSTATUS=reloading the config")
    }

    /// `STOPPING=1`: a clean shutdown started.
    pub fn stopping(&self) -> Result<(), ServiceError> {
        self.send("STOPPING=1\nSTATUS=stopping")
    }

    /// How often to send `WATCHDOG=1`: half the `WatchdogSec=` systemd enforces, if any.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// A ticker for the main loop's `select!` that fires every [`Notifier::watchdog_interval`]
    /// and never fires when no watchdog is configured.
    pub fn watchdog_timer(&self) -> WatchdogTimer {
        WatchdogTimer {
            interval: self.watchdog.map(|period| {
                let mut i = tokio::time::interval(period);
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                i
            }),
        }
    }

    fn send(&self, message: &str) -> Result<(), ServiceError> {
        let Some((sock, addr, name)) = &self.target else {
            return Ok(());
        };
        match sock.send_to_addr(message.as_bytes(), addr) {
            Ok(_) => Ok(()),
            Err(source) => Err(ServiceError::Notify {
                socket: name.clone(),
                source,
            }),
        }
    }
}

/// Fires every watchdog interval; pending forever when the watchdog is off.
#[derive(Debug)]
pub struct WatchdogTimer {
    interval: Option<tokio::time::Interval>,
}

impl WatchdogTimer {
    /// Waits for the next ping time (the first one is immediate).
    pub async fn tick(&mut self) {
        match &mut self.interval {
            Some(i) => {
                i.tick().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
}

/// `$NOTIFY_SOCKET` as a socket address: `/path` or `@abstract-name`.
fn notify_socket_addr(name: &str) -> Result<SocketAddr, ServiceError> {
    let bad = || ServiceError::BadNotifySocket(name.to_owned());
    if let Some(abstract_name) = name.strip_prefix('@') {
        SocketAddr::from_abstract_name(abstract_name.as_bytes()).map_err(|_| bad())
    } else if name.starts_with('/') {
        SocketAddr::from_pathname(name).map_err(|_| bad())
    } else {
        Err(bad())
    }
}

/// The ping interval from `$WATCHDOG_USEC` / `$WATCHDOG_PID`: half the timeout (as
/// `sd_watchdog_enabled(3)` advises), `None` when unset or meant for another process.
fn watchdog_interval(
    usec: Option<&str>,
    pid: Option<&str>,
    my_pid: u32,
) -> Result<Option<Duration>, ServiceError> {
    let Some(usec) = usec else { return Ok(None) };
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(my_pid)
    {
        return Ok(None);
    }
    match usec.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(Duration::from_micros(n) / 2)),
        _ => Err(ServiceError::BadWatchdogUsec(usec.to_owned())),
    }
}

/// STATUS= values end at a newline; keep a multi-line message on one line.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv_text(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = sock
            .recv(&mut buf)
            .expect("datagram within the read timeout");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn notifies_a_path_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).expect("bind");
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let n = Notifier::new(path.to_str(), None).expect("notifier");
        assert!(n.is_supervised());
        n.ready("listening on 0.0.0.0:8080\nand more")
            .expect("ready");
        assert_eq!(
            recv_text(&server),
            "READY=1\nSTATUS=listening on 0.0.0.0:8080 and more"
        );
        n.watchdog().expect("watchdog");
        assert_eq!(recv_text(&server), "WATCHDOG=1");
        n.reloading().expect("reloading");
        assert!(recv_text(&server).starts_with("RELOADING=1\n"));
        n.status("2 viewers").expect("status");
        assert_eq!(recv_text(&server), "STATUS=2 viewers");
        n.stopping().expect("stopping");
        assert!(recv_text(&server).starts_with("STOPPING=1\n"));
    }

    #[test]
    fn notifies_an_abstract_socket() {
        let name = format!("sioedge-test-{}-{}", std::process::id(), fastrand::u64(..));
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract addr");
        let server = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let n = Notifier::new(Some(&format!("@{name}")), None).expect("notifier");
        n.watchdog().expect("watchdog");
        assert_eq!(recv_text(&server), "WATCHDOG=1");
    }

    #[test]
    fn unset_socket_is_a_silent_no_op() {
        let n = Notifier::new(None, None).expect("notifier");
        assert!(!n.is_supervised());
        n.ready("up").expect("no-op");
        let n = Notifier::new(Some(""), None).expect("empty = unset");
        assert!(!n.is_supervised());
    }

    #[test]
    fn send_to_a_missing_socket_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nobody-listens.sock");
        let n = Notifier::new(path.to_str(), None).expect("notifier");
        assert!(matches!(n.ready("up"), Err(ServiceError::Notify { .. })));
    }

    #[test]
    fn rejects_malformed_notify_socket() {
        for bad in ["relative/path", "vsock:2:1234"] {
            assert!(
                matches!(Notifier::new(Some(bad), None), Err(ServiceError::BadNotifySocket(s)) if s == bad),
                "{bad}"
            );
        }
    }

    #[test]
    fn watchdog_env_parsing() {
        let me = 4242;
        assert_eq!(watchdog_interval(None, None, me).ok(), Some(None));
        assert_eq!(
            watchdog_interval(Some("30000000"), None, me).ok(),
            Some(Some(Duration::from_secs(15)))
        );
        assert_eq!(
            watchdog_interval(Some("30000000"), Some("4242"), me).ok(),
            Some(Some(Duration::from_secs(15)))
        );
        // Meant for another process (e.g. inherited by a child): ignore it.
        assert_eq!(
            watchdog_interval(Some("30000000"), Some("1"), me).ok(),
            Some(None)
        );
        for bad in ["0", "-5", "soon", ""] {
            assert!(
                matches!(
                    watchdog_interval(Some(bad), None, me),
                    Err(ServiceError::BadWatchdogUsec(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn watchdog_timer_ticks_at_the_interval_or_never() {
        let period = Duration::from_millis(100);
        let n = Notifier::new(None, Some(period)).expect("notifier");
        assert_eq!(n.watchdog_interval(), Some(period));
        let mut t = n.watchdog_timer();
        let start = tokio::time::Instant::now();
        t.tick().await; // immediate
        assert!(start.elapsed() < period);
        tokio::time::timeout(Duration::from_secs(5), t.tick())
            .await
            .expect("second tick");
        assert!(start.elapsed() >= period);

        let mut off = Notifier::new(None, None)
            .expect("notifier")
            .watchdog_timer();
        let r = tokio::time::timeout(Duration::from_millis(300), off.tick()).await;
        assert!(r.is_err(), "a disabled watchdog must never tick");
    }
}
