//! The file descriptor limit: raised at start from the soft limit a shell or service manager
//! gives (often 1024) to the hard one, and the connection limit kept below it, so that a flood
//! of connections meets the server's own limit (refused, or idle ones closed) rather than
//! `accept: Too many open files` for every newcomer.

use crate::server::ConnLimits;
use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Descriptors kept for everything but connections: capture devices and their buffers, relay
/// links, Redis, files, the runtime's own.
const FD_RESERVE: nix::libc::rlim_t = 128;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and logs both.
pub(super) fn raise_fd_limit() {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(e) => return tracing::warn!("cannot read the file descriptor limit: {e}"),
    };
    if soft >= hard {
        return tracing::info!("file descriptor limit: {soft} (hard limit {hard})");
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => {
            tracing::info!("file descriptor limit: raised from {soft} to the hard limit {hard}")
        }
        Err(e) => tracing::warn!(
            "file descriptor limit: {soft} (hard limit {hard}; raising it failed: {e})"
        ),
    }
}

/// `limits` with `max_connections` lowered, with a warning, to what the file descriptor limit
/// leaves after [`FD_RESERVE`].
pub(super) fn within_fd_limit(mut limits: ConnLimits) -> ConnLimits {
    let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return limits;
    };
    let budget = usize::try_from(soft.saturating_sub(FD_RESERVE).max(1)).unwrap_or(usize::MAX);
    if limits.max_connections > budget {
        tracing::warn!(
            "max_connections = {} needs more file descriptors than the limit of {soft} allows: \
             serving at most {budget} connections (raise LimitNOFILE / ulimit -n)",
            limits.max_connections
        );
        limits.max_connections = budget;
    }
    limits
}
