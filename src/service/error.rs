//! [`ServiceError`]: what can go wrong while talking to the service manager or changing identity.

/// Everything that can go wrong while talking to the service manager, installing the signal
/// handlers or changing identity.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// `$NOTIFY_SOCKET` is set but is neither a path nor an abstract (`@`) socket name.
    #[error("NOTIFY_SOCKET={0:?} is not a socket path or an abstract socket name")]
    BadNotifySocket(String),
    /// `$WATCHDOG_USEC` is set but is not a positive integer.
    #[error("WATCHDOG_USEC={0:?} is not a positive number of microseconds")]
    BadWatchdogUsec(String),
    /// Sending a notification datagram failed.
    #[error("sd_notify to {socket}: {source}")]
    Notify {
        /// `$NOTIFY_SOCKET`.
        socket: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Installing a signal handler failed (needs a running tokio runtime).
    #[error("installing the {name} handler: {source}")]
    Signal {
        /// `SIGHUP`, `SIGTERM` or `SIGINT`.
        name: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The configured user does not exist in the password database.
    #[error("user {0:?} does not exist")]
    UnknownUser(String),
    /// The configured user is root itself: dropping to it would keep every privilege.
    #[error("refusing to run as user {0:?}: it has uid 0")]
    UserIsRoot(String),
    /// A system call of the privilege drop failed.
    #[error("dropping privileges to {user:?}: {call}: {source}")]
    Drop {
        /// The configured user.
        user: String,
        /// The system call, e.g. `setuid`.
        call: &'static str,
        /// Its error.
        source: nix::Error,
    },
    /// After the drop, uid 0 could be regained: the drop did not happen.
    #[error("dropping privileges to {0:?}: root could be regained afterwards")]
    StillRoot(String),
}
