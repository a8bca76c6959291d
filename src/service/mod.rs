//! The layer under both modes: what `sioedge run` ([`crate::gateway`]) and `sioedge relay`
//! ([`crate::relay`]) do the same way, so neither imports the other.
//!
//! - [`Service`]: running unattended under systemd — `sd_notify` readiness, status and watchdog
//!   ([`Notifier`]), SIGHUP/SIGTERM ([`Signals`]), dropping root once the ports are bound
//!   ([`drop_privileges`]), the file descriptor limit raised at start (`fd_limit`).
//! - [`listen`], [`BindError`], [`viewer_url`]: the listening socket and the URL printed for it.
//! - [`load_tls`], [`check_tls_files`]: a server's `tls` section at startup.
//! - [`viewer_server`] and `viewers`: the server with the viewer page, and the viewer contract
//!   bound to its namespace over a hub.
//! - `status`: `/api/status` and `/metrics`; `snapshot`: `/api/streams/<id>/snapshot.jpg`
//!   ([`h264_decoder`] is the gateway's decoder for it).
//! - `secret`: tokens and passwords compared in constant time (viewers and publishers alike).
//!
//! How a mode's main loop uses it:
//!
//! ```no_run
//! use sioedge::service::{Service, ServiceError};
//! # async fn main_loop(user: Option<&str>, shutdown: impl std::future::Future<Output = ()>) -> Result<(), ServiceError> {
//! let mut service = Service::start()?; // early: from here SIGHUP/SIGTERM no longer kill the process
//! // ... bind every listening socket (ports < 1024 need root or CAP_NET_BIND_SERVICE) ...
//! service.drop_privileges(user)?; // no-op unless running as root with a user configured
//! service.ready("listening on 0.0.0.0:8080");
//! service
//!     .run(shutdown, async || {
//!         // SIGHUP: re-read the config; on error log it and keep the old one
//!         "config reloaded".to_owned()
//!     })
//!     .await;
//! // ... stop within the shutdown budget ...
//! # Ok(())
//! # }
//! ```

mod error;
mod fd_limit;
mod lifecycle;
mod listen;
mod notify;
mod privileges;
pub(crate) mod secret;
mod signals;
mod snapshot;
pub(crate) mod status;
mod tls;
mod viewer_server;
pub(crate) mod viewers;

pub use error::ServiceError;
pub use lifecycle::Service;
pub use listen::{BindError, listen, viewer_url};
pub use notify::{Notifier, WatchdogTimer};
pub use privileges::{PrivilegeDrop, drop_privileges};
pub use signals::{Signal, Signals};
pub use snapshot::{Decode, DecodeError, SnapshotLimits, h264_decoder};
pub use tls::{check_tls_files, load_tls};
pub use viewer_server::viewer_server;
