//! The publisher client: one Socket.IO connection to a relay that survives everything.
//!
//! ```text
//! capture ──send_media()──▶ OutQueue (bounded, media-aware) ──▶ writer task ──▶ relay
//!                                ▲                                              │
//!  ClientHandle::emit*() ────────┘          driver task (sans-IO sessions) ◀── reader task
//!                                                  │
//!                                   ClientEvent receiver (connect, events, errors)
//! ```
//!
//! - [`Client::connect`] validates [`ClientOptions`], starts a driver task and returns at once a
//!   [`ClientHandle`] (cheap to clone) and a bounded receiver of [`ClientEvent`]s.
//! - The driver connects (WebSocket, or long-polling with optional upgrade), joins every
//!   namespace with its auth, and reconnects with backoff after any failure: a refused CONNECT
//!   (reported with the relay's message), a dropped socket, a handshake that never comes, a relay
//!   that stops pinging.
//! - Nothing ever blocks the caller: [`ClientHandle::send_media`] takes a short lock, pushes into
//!   the [`OutQueue`](crate::queue::OutQueue) (which drops by policy when full) and returns. While the link is down media is
//!   dropped, and on every disconnect queued media is discarded, so that a reconnect resumes at
//!   the next keyframe with nothing stale replayed.
//! - Frames larger than the relay's `maxPayload` are dropped and counted, never sent (the relay
//!   would close the connection, again and again).

mod driver;
mod error;
mod events;
mod handle;
mod link;
mod options;
mod tls;
mod transport;

pub use error::{BoxError, ClientError, ConnectStep, LinkFailure, ProtocolError, Waited};
pub use events::{AckResponder, ClientEvent};
pub use handle::{ClientHandle, MediaPush};
pub use link::{ClientStats, ConnState};
pub use options::{AuthProvider, ClientOptions, Endpoint, NamespaceOptions, OptionsError};
pub use tls::{ClientTlsError, client_config};

use link::Link;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Entry point: see the module docs.
pub struct Client;

impl Client {
    /// Validates `options`, starts connecting in the background (on the current tokio runtime)
    /// and returns the handle and the event receiver (bounded: events are dropped and counted
    /// when it is not read).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn connect(
        options: ClientOptions,
    ) -> Result<(ClientHandle, mpsc::Receiver<ClientEvent>), ClientError> {
        Client::connect_with_auth(options, None)
    }

    /// Like [`Client::connect`], with the CONNECT payloads built by `auth` at every attempt.
    pub fn connect_with_auth(
        options: ClientOptions,
        auth: Option<AuthProvider>,
    ) -> Result<(ClientHandle, mpsc::Receiver<ClientEvent>), ClientError> {
        let endpoint = options.validate()?;
        let tls = if endpoint.tls {
            Some(tls::client_config(&options.tls)?)
        } else {
            None
        };
        let shared = Arc::new(Link::new(&options.queue));
        let (events_tx, events_rx) = mpsc::channel(EVENTS_CAPACITY);
        let (close_tx, close_rx) = mpsc::channel(1);
        let dialer = transport::Dialer {
            endpoint,
            tls,
            headers: options.headers.clone(),
            timeout: options.connect_timeout,
        };
        let task = tokio::spawn(driver::run(
            options,
            auth,
            dialer,
            shared.clone(),
            events_tx,
            close_rx,
        ));
        let handle = ClientHandle::new(shared, close_tx, task);
        Ok((handle, events_rx))
    }
}

/// Capacity of the event receiver.
const EVENTS_CAPACITY: usize = 1024;
