//! Media capture (GStreamer, behind the `media` feature): track specs in,
//! [`MediaEvent`](crate::contract::MediaEvent)s out (the contract's frames and track descriptions,
//! see [`crate::contract`]).
//!
//! # Using capture (for the gateway)
//!
//! ```no_run
//! # #[cfg(feature = "media")] fn demo() -> Result<(), sioedge::media::MediaError> {
//! use sioedge::contract::MediaEvent;
//! use sioedge::media::{AudioSpec, Capture, VideoSpec};
//! let (tx, mut rx) = tokio::sync::mpsc::channel(256);
//! let mut capture = Capture::new(tx)?;
//! capture.add_stream("cam0", Some(&VideoSpec::default()), Some(&AudioSpec::default()))?;
//! # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! # rt.block_on(async {
//! while let Some(event) = rx.recv().await {
//!     match event {
//!         MediaEvent::TrackUp { stream, info } => {
//!             // announce it: `info` is the `announce` entry of this track of `stream`
//!         }
//!         MediaEvent::Frame(frame) => { /* hand to the hub; `frame.data` shares GStreamer's memory */ }
//!         MediaEvent::TrackDown { stream, track, reason } => { /* mark down; capture retries itself */ }
//!     }
//! }
//! # });
//! # Ok(()) }
//! ```
//!
//! - Specs: [`VideoSpec`]/[`AudioSpec`] are the capture parameters, and also the config file's
//!   `[stream.video]`/`[stream.audio]` tables (serde, compiled without GStreamer). Track ids come
//!   from the specs (`video`/`audio` by default).
//! - One GStreamer pipeline per track, each watched by its own supervisor thread (no GLib main
//!   loop). A failing camera never stops the microphone of the same stream.
//! - Per track the channel sees `TrackUp` before any `Frame`, and `TrackDown` when the pipeline
//!   fails; then capture rebuilds it with backoff (1 s doubling to 30 s, back to 1 s after 10 s of
//!   health) and sends a fresh `TrackUp` before frames resume.
//! - The appsink callback runs on GStreamer's streaming thread and only ever `try_send`s: when the
//!   channel is full the frame is dropped and counted ([`Capture::stats`]); after a dropped H.264
//!   frame, frames are dropped up to the next keyframe (deltas without their reference are useless).
//! - `pts` is monotonic per track across restarts; `t` is the capture wall-clock time (see
//!   [`MediaFrame::t`](crate::contract::MediaFrame::t) and `capture.rs`).
//! - Dropping [`Capture`] (or [`Capture::remove_stream`]) stops the pipelines and joins the threads.

pub mod h264;
mod spec;

#[cfg(feature = "media")]
mod capture;
#[cfg(feature = "media")]
pub mod devices;
#[cfg(feature = "media")]
pub mod discovery;
#[cfg(feature = "media")]
pub mod encoders;
#[cfg(feature = "media")]
mod error;
#[cfg(feature = "media")]
pub mod libcamera;
#[cfg(feature = "media")]
pub mod modes;
#[cfg(feature = "media")]
pub mod pipeline;
#[cfg(feature = "media")]
pub mod rpicam;
#[cfg(feature = "media")]
pub mod snapshot;

pub use spec::{
    AUDIO_FRAME_MS, AudioCodec, AudioSource, AudioSpec, BCM2835_CODEC_MAX, BCM2835_CODEC_MIN,
    KEYFRAME_INTERVAL_S, OPUS_BITRATE_KBPS, OPUS_SAMPLE_RATES, OpusApplication, PCM_SAMPLE_RATES,
    SpecError, VIDEO_BITRATE_KBPS, VIDEO_FPS, VIDEO_HEIGHT_MAX, VIDEO_SIZE_MIN, VIDEO_WIDTH_MAX,
    VideoCodec, VideoEncoder, VideoSource, VideoSpec, or_list,
};

#[cfg(feature = "media")]
pub use capture::{Capture, TrackStats, buffer_to_bytes};
#[cfg(feature = "media")]
pub use error::MediaError;
#[cfg(feature = "media")]
pub use pipeline::init;
