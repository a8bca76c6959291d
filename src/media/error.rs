//! [`MediaError`]: why capture could not start or a probe failed.

use super::spec::SpecError;

/// Why capture could not start or a probe failed (pipeline failures at run time are not errors:
/// they become [`MediaEvent::TrackDown`](crate::contract::MediaEvent::TrackDown) and retries).
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// GStreamer itself could not be initialised.
    #[error("GStreamer init failed: {0}")]
    Init(#[from] gstreamer::glib::Error),
    /// A track spec is invalid.
    #[error("invalid {kind} spec for stream {stream}: {source}")]
    Spec {
        /// Stream id.
        stream: String,
        /// `video` or `audio`.
        kind: &'static str,
        /// The field and problem.
        source: SpecError,
    },
    /// The stream id is already capturing.
    #[error("stream {0} is already capturing")]
    Duplicate(String),
    /// A buffer could not be mapped readable.
    #[error("cannot map a GStreamer buffer readable")]
    Map,
    /// Device probing or reporting failed, or the configured camera is not there.
    #[error("device probe: {0}")]
    Probe(String),
    /// The camera has no mode for the configured picture (the reason lists its best modes).
    #[error("{camera}: {reason}")]
    Mode {
        /// Camera name and source.
        camera: String,
        /// Why, with the modes it does have.
        reason: super::modes::NoPlan,
    },
}
