//! Running track pipelines: appsink → [`MediaEvent`]s, and the supervisor that restarts them.
//!
//! Timestamps:
//! - `pts` (µs) = a per-run base + (buffer PTS − first buffer PTS of the run). The base of a run is
//!   the later of "end of the previous run's last frame" and "time since the track was created",
//!   so pts never goes backwards across restarts and an outage shows up as a gap.
//! - `t` (µs since the Unix epoch) = `SystemTime::now()` in the appsink callback minus the frame's
//!   age. The age is `clock.time() − (base_time + buffer PTS)`: live sources stamp buffers with the
//!   running time at capture, so this subtracts the whole pipeline latency (encoder included) that
//!   the frame actually saw, rather than the latency the elements merely announce. It is clamped to
//!   0..5 s and 0 when the pipeline has no clock yet.

use super::devices;
use super::encoders::Fallback;
use super::error::MediaError;
use super::h264::ParameterSets;
use super::modes::Want;
use super::pipeline::{self, AudioInput, Encoder, VideoInput};
use super::spec::{AudioSpec, SpecError, VideoSpec};
use crate::contract::{Codec, MediaEvent, MediaFrame, TrackInfo, TrackKind};
use crate::sync::lock;
use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::{self, error::TrySendError};

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A run that stayed up this long resets the backoff to its start.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);
/// Bus poll period; also how fast a stop request is noticed.
const POLL: Duration = Duration::from_millis(100);
/// A pipeline that produced no frame this long after starting is restarted.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// A running track that stops producing frames this long is restarted (unplugged USB cameras
/// sometimes just go quiet).
const STALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Wraps a buffer's memory in [`Bytes`] without copying: the `Bytes` owns the readable mapping and
/// releases it (and the buffer) when its last clone drops. A buffer made of several memory blocks
/// is merged by the mapping (one copy, unavoidable since a frame is one contiguous `Bytes`):
/// x264enc (through h264parse), jpegenc and opusenc emit single-block buffers (tested);
/// openh264enc emits one block per NAL unit (one copy per frame); v4l2h264enc is not measured
/// (no hardware here). [`TrackStats::merged`] counts merged frames.
pub fn buffer_to_bytes(buffer: gst::Buffer) -> Result<Bytes, MediaError> {
    let mapped = buffer
        .into_mapped_buffer_readable()
        .map_err(|_| MediaError::Map)?;
    Ok(Bytes::from_owner(mapped))
}

/// Counters of one track, for status pages and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackStats {
    /// Stream id.
    pub stream: Arc<str>,
    /// Track id.
    pub track: Arc<str>,
    /// `TrackUp` sent and no failure since.
    pub up: bool,
    /// Frames delivered to the channel.
    pub frames: u64,
    /// Frames dropped (channel full, or waiting for a keyframe / parameter sets).
    pub dropped: u64,
    /// Pipeline (re)builds after a failure.
    pub restarts: u64,
    /// Frames whose buffer had several memory blocks (mapping merged them: one copy).
    pub merged: u64,
    /// What the current run captures: source, mode, conversions and encoder (see
    /// [`TrackInfo::capture`]).
    pub capture: Option<String>,
}

#[derive(Clone)]
enum TrackSpec {
    Video(VideoSpec),
    Audio(AudioSpec),
}

impl TrackSpec {
    fn codec(&self) -> Codec {
        match self {
            TrackSpec::Video(v) => pipeline::video_codec(v),
            TrackSpec::Audio(a) => pipeline::audio_codec(a),
        }
    }

    /// Resolves devices and encoders now (they can appear between restarts) and builds the launch
    /// line; video uses the encoder `fallback` picks.
    fn launch(&self, fallback: &Fallback) -> Result<Launch, String> {
        match self {
            TrackSpec::Video(v) => {
                let candidates = Encoder::candidates(v, &devices::has_element)?;
                let enc = fallback
                    .pick(&candidates)
                    .ok_or_else(|| "no video encoder".to_string())?;
                let input = devices::resolve_video(v, enc).map_err(|e| e.to_string())?;
                let mut capture = format!("{} → {}", describe_video(v, &input), enc.element());
                if let Some(note) = fallback.note() {
                    capture.push_str(&format!(" ({note})"));
                }
                Ok(Launch {
                    text: pipeline::video_launch(v, &input, enc),
                    capture,
                    encoder: Some((enc, candidates)),
                })
            }
            TrackSpec::Audio(a) => {
                let input = devices::resolve_audio(a).map_err(|e| e.to_string())?;
                Ok(Launch {
                    text: pipeline::audio_launch(a, &input),
                    capture: describe_audio(&input),
                    encoder: None,
                })
            }
        }
    }
}

/// One run's pipeline, what it captures, and (video) its encoder among the candidates.
struct Launch {
    text: String,
    capture: String,
    encoder: Option<(Encoder, Vec<Encoder>)>,
}

/// `v4l2:/dev/video0 MJPEG 1280x720@30 → jpegdec → videoconvert → NV12/I420 1280x720@30`.
fn describe_video(spec: &VideoSpec, input: &VideoInput) -> String {
    let want = Want {
        width: spec.width,
        height: spec.height,
        fps: spec.fps,
    };
    match input {
        VideoInput::Test { .. } => {
            format!("test pattern {}x{}@{}", want.width, want.height, want.fps)
        }
        VideoInput::Custom(_) => "pipeline".into(),
        VideoInput::V4l2 { device, plan } => format!("v4l2:{device} {}", plan.describe(want)),
        VideoInput::Libcamera {
            camera,
            settings,
            plan,
        } => {
            let mut s = format!(
                "libcamera:{} {}",
                camera.as_deref().unwrap_or("(first)"),
                plan.describe(want)
            );
            for setting in settings {
                s.push_str(&format!(" [{setting}]"));
            }
            s
        }
    }
}

fn describe_audio(input: &AudioInput) -> String {
    match input {
        AudioInput::Test => "test tone".into(),
        AudioInput::Alsa(d) => format!("alsa:{d}"),
        AudioInput::Pulse(None) => "pulse".into(),
        AudioInput::Pulse(Some(d)) => format!("pulse:{d}"),
        AudioInput::Custom(_) => "pipeline".into(),
    }
}

/// Counts a finished video run for the encoder fallback: an error the encoder (the element named
/// `enc`) posted before the track came up counts against it, anything else clears its count.
/// Returns the line to log when this moves to the next encoder.
fn encoder_verdict(
    fallback: &mut Fallback,
    encoder: Option<&(Encoder, Vec<Encoder>)>,
    ended: &Ended,
    was_up: bool,
) -> Option<String> {
    let (enc, candidates) = encoder?;
    if ended.element.as_deref() == Some("enc") && !was_up {
        fallback.failed(*enc, &ended.reason, candidates)
    } else {
        fallback.not_the_encoder();
        None
    }
}

/// How a run ended: why, and the element that posted the error (`enc` is the encoder).
struct Ended {
    reason: String,
    element: Option<String>,
}

impl From<String> for Ended {
    fn from(reason: String) -> Self {
        Ended {
            reason,
            element: None,
        }
    }
}

/// Per-run timestamp and announcement state, touched by the streaming thread and reset by the
/// supervisor between runs.
#[derive(Default)]
struct RunState {
    started: bool,
    first_pts: Option<gst::ClockTime>,
    base_us: u64,
    last_pts_us: Option<u64>,
    end_us: u64,
    announced: bool,
    skip_to_key: bool,
}

impl RunState {
    fn new_run(&mut self) {
        self.started = false;
        self.first_pts = None;
        self.announced = false;
        self.skip_to_key = false;
    }

    fn pts_us(&mut self, buf_pts: Option<gst::ClockTime>, now_us: u64, duration_us: u64) -> u64 {
        if !self.started {
            self.started = true;
            self.first_pts = buf_pts;
            self.base_us = self.end_us.max(now_us);
        }
        let rel = match (self.first_pts, buf_pts) {
            (Some(first), Some(p)) => p.saturating_sub(first).useconds(),
            _ => now_us.saturating_sub(self.base_us),
        };
        let mut pts = self.base_us + rel;
        if let Some(last) = self.last_pts_us
            && pts <= last
        {
            pts = last + 1;
        }
        self.last_pts_us = Some(pts);
        self.end_us = self.end_us.max(pts + duration_us);
        pts
    }
}

/// State shared by a track's supervisor thread and its appsink callback.
struct Track {
    stream: Arc<str>,
    track: Arc<str>,
    codec: Codec,
    tx: mpsc::Sender<MediaEvent>,
    epoch: Instant,
    stop: AtomicBool,
    up: AtomicBool,
    up_since_us: AtomicU64,
    last_frame_us: AtomicU64,
    frames: AtomicU64,
    dropped: AtomicU64,
    restarts: AtomicU64,
    merged: AtomicU64,
    run: Mutex<RunState>,
    /// What the current run captures (for `TrackUp` and stats).
    capture: Mutex<Option<String>>,
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// How long ago the buffer was captured, by the pipeline clock (see the module docs).
fn capture_age_us(sink: &gst_app::AppSink, pts: Option<gst::ClockTime>) -> u64 {
    let (Some(clock), Some(base), Some(pts)) = (sink.clock(), sink.base_time(), pts) else {
        return 0;
    };
    let Some(captured) = base.checked_add(pts) else {
        return 0;
    };
    clock
        .time()
        .saturating_sub(captured)
        .useconds()
        .min(5_000_000)
}

impl Track {
    fn since_epoch_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn state(&self) -> std::sync::MutexGuard<'_, RunState> {
        lock(&self.run)
    }

    fn capture(&self) -> Option<String> {
        lock(&self.capture).clone()
    }

    fn set_capture(&self, capture: Option<String>) {
        *lock(&self.capture) = capture;
    }

    fn drop_frame(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.dropped.fetch_add(1, Relaxed);
        Ok(gst::FlowSuccess::Ok)
    }

    /// The appsink callback: runs on GStreamer's streaming thread, so it never blocks.
    fn on_sample(&self, sink: &gst_app::AppSink) -> Result<gst::FlowSuccess, gst::FlowError> {
        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
        let Some(buffer) = sample.buffer_owned() else {
            return Ok(gst::FlowSuccess::Ok);
        };
        let wall_us = unix_us();
        let buf_pts = buffer.pts();
        let age_us = capture_age_us(sink, buf_pts);
        let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let duration = buffer.duration().map_or(0, |d| d.useconds());
        if buffer.n_memory() > 1 {
            self.merged.fetch_add(1, Relaxed);
        }
        let Ok(data) = buffer_to_bytes(buffer) else {
            return self.drop_frame();
        };
        let now_us = self.since_epoch_us();
        self.last_frame_us.store(now_us, Relaxed);
        let mut run = self.state();
        if !run.announced {
            // H.264 needs its SPS/PPS (the first keyframe) before viewers can be told the codec.
            let Some(info) = self.track_info(sample.caps(), &data) else {
                return self.drop_frame();
            };
            let up = MediaEvent::TrackUp {
                stream: self.stream.clone(),
                info,
            };
            match self.tx.try_send(up) {
                Ok(()) => {
                    run.announced = true;
                    self.up_since_us.store(now_us, Relaxed);
                    self.up.store(true, Relaxed);
                }
                Err(_) => return self.drop_frame(),
            }
        }
        if run.skip_to_key {
            if !key {
                return self.drop_frame();
            }
            run.skip_to_key = false;
        }
        let pts = run.pts_us(buf_pts, now_us, duration);
        let frame = MediaFrame {
            stream: self.stream.clone(),
            track: self.track.clone(),
            codec: self.codec,
            pts,
            duration,
            key,
            t: wall_us.saturating_sub(age_us),
            data,
        };
        match self.tx.try_send(MediaEvent::Frame(frame)) {
            Ok(()) => {
                self.frames.fetch_add(1, Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                // A lost H.264 frame breaks every delta up to the next keyframe.
                run.skip_to_key = self.codec == Codec::H264;
                self.dropped.fetch_add(1, Relaxed);
            }
            Err(TrySendError::Closed(_)) => {}
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn track_info(&self, caps: Option<&gst::CapsRef>, data: &Bytes) -> Option<TrackInfo> {
        let s = caps.and_then(|c| c.structure(0));
        let int = |k: &str| s.and_then(|s| s.get::<i32>(k).ok()).map(|v| v as u32);
        let (codec_string, avcc) = match self.codec {
            Codec::H264 => {
                let ps = ParameterSets::find(data)?;
                (ps.info.codec_string(), Some(ps.avcc()))
            }
            Codec::Mjpeg => ("mjpeg".to_string(), None),
            Codec::Opus => ("opus".to_string(), None),
            Codec::Pcm => ("pcm-s16".to_string(), None),
        };
        let video = self.codec.kind() == TrackKind::Video;
        let fps = s
            .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
            .filter(|f| f.numer() > 0 && f.denom() > 0)
            .map(|f| (f.numer() as f64 / f.denom() as f64).round() as u32);
        Some(TrackInfo {
            track: self.track.to_string(),
            codec: self.codec,
            codec_string: Some(codec_string),
            width: int("width").filter(|_| video),
            height: int("height").filter(|_| video),
            fps: fps.filter(|_| video),
            sample_rate: int("rate").filter(|_| !video),
            channels: int("channels").filter(|_| !video),
            avcc,
            capture: self.capture(),
        })
    }

    /// Sends a control event from the supervisor thread (which may wait, unlike the streaming
    /// thread): retries while the channel is full, gives up when it is closed or on stop.
    fn send_control(&self, mut event: MediaEvent) {
        loop {
            match self.tx.try_send(event) {
                Ok(()) | Err(TrySendError::Closed(_)) => return,
                Err(TrySendError::Full(e)) => {
                    if self.stop.load(Relaxed) {
                        return;
                    }
                    event = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Sleeps up to `d`, waking early on stop.
    fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stop.load(Relaxed) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    fn supervise(self: Arc<Self>, spec: TrackSpec) {
        let mut backoff = BACKOFF_START;
        let mut down_sent = false;
        let mut fallback = Fallback::default();
        while !self.stop.load(Relaxed) {
            self.state().new_run();
            let (ended, healthy, encoder) = match spec.launch(&fallback) {
                Ok(launch) => {
                    tracing::info!(stream = %self.stream, track = %self.track, capture = %launch.capture, launch = %launch.text, "starting pipeline");
                    self.set_capture(Some(launch.capture));
                    let (ended, healthy) = self.run_once(&launch.text);
                    (ended, healthy, launch.encoder)
                }
                Err(e) => (Ended::from(e), false, None),
            };
            let was_up = self.up.swap(false, Relaxed);
            if self.stop.load(Relaxed) {
                break;
            }
            if healthy {
                backoff = BACKOFF_START;
            }
            if let Some(msg) = encoder_verdict(&mut fallback, encoder.as_ref(), &ended, was_up) {
                tracing::warn!(stream = %self.stream, track = %self.track, "{msg}");
                backoff = BACKOFF_START;
            }
            let reason = ended.reason;
            tracing::warn!(stream = %self.stream, track = %self.track, %reason, retry_in = ?backoff, "track down");
            if was_up || !down_sent {
                down_sent = true;
                self.send_control(MediaEvent::TrackDown {
                    stream: self.stream.clone(),
                    track: self.track.clone(),
                    reason,
                });
            }
            self.pause(backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
            self.restarts.fetch_add(1, Relaxed);
        }
    }

    /// Runs one pipeline until it fails or stop is requested: how it ended, and whether it stayed
    /// up long enough to count as healthy.
    fn run_once(self: &Arc<Self>, launch: &str) -> (Ended, bool) {
        let pipeline = match gst::parse::launch(launch) {
            Ok(p) => p,
            Err(e) => return (Ended::from(format!("cannot build pipeline: {e}")), false),
        };
        let ended = self.watch(&pipeline);
        let healthy = self.up.load(Relaxed)
            && self.since_epoch_us() - self.up_since_us.load(Relaxed)
                >= HEALTHY_AFTER.as_micros() as u64;
        if pipeline.set_state(gst::State::Null).is_err() {
            tracing::warn!(stream = %self.stream, track = %self.track, "pipeline refused to stop");
        }
        (ended, healthy)
    }

    fn watch(self: &Arc<Self>, pipeline: &gst::Element) -> Ended {
        let sink = pipeline
            .downcast_ref::<gst::Bin>()
            .and_then(|b| b.by_name("sink"))
            .and_then(|s| s.downcast::<gst_app::AppSink>().ok());
        let (Some(sink), Some(bus)) = (sink, pipeline.bus()) else {
            return Ended::from("pipeline has no appsink named \"sink\"".to_string());
        };
        let me = Arc::clone(self);
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| me.on_sample(s))
                .build(),
        );
        let started = Instant::now();
        if pipeline.set_state(gst::State::Playing).is_err() {
            let msg =
                bus.timed_pop_filtered(gst::ClockTime::from_seconds(1), &[gst::MessageType::Error]);
            return match msg.as_ref().map(|m| m.view()) {
                Some(gst::MessageView::Error(e)) => describe_error(e),
                _ => Ended::from("pipeline failed to start".to_string()),
            };
        }
        loop {
            if self.stop.load(Relaxed) {
                return Ended::from("stopped".to_string());
            }
            if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(POLL.as_millis() as u64))
            {
                match msg.view() {
                    gst::MessageView::Error(e) => return describe_error(e),
                    gst::MessageView::Eos(_) => {
                        return Ended::from("end of stream".to_string());
                    }
                    gst::MessageView::Warning(w) => {
                        let src = w.src().map(|s| s.name().to_string()).unwrap_or_default();
                        tracing::warn!(stream = %self.stream, track = %self.track, element = %src, warning = %w.error(), "pipeline warning");
                    }
                    _ => {}
                }
            }
            if self.up.load(Relaxed) {
                let quiet = self
                    .since_epoch_us()
                    .saturating_sub(self.last_frame_us.load(Relaxed));
                if quiet > STALL_TIMEOUT.as_micros() as u64 {
                    return Ended::from(format!("no frame for {} s", quiet / 1_000_000));
                }
            } else if started.elapsed() > STARTUP_TIMEOUT {
                return Ended::from(format!(
                    "no frame within {} s of starting",
                    STARTUP_TIMEOUT.as_secs()
                ));
            }
        }
    }
}

/// `element: message (debug details)`: what a user needs to see why a camera failed.
fn describe_error(e: &gst::message::Error) -> Ended {
    let element = e.src().map(|s| s.name().to_string());
    let src = element.as_deref().unwrap_or("pipeline");
    let reason = match e.debug() {
        Some(d) => format!("{src}: {} ({d})", e.error()),
        None => format!("{src}: {}", e.error()),
    };
    Ended { reason, element }
}

struct Handle {
    track: Arc<Track>,
    thread: Option<JoinHandle<()>>,
}

/// Captures streams: one supervised GStreamer pipeline per track, events into one bounded channel.
/// See the [module docs](super) for the event order and drop policy.
pub struct Capture {
    tx: mpsc::Sender<MediaEvent>,
    tracks: Vec<Handle>,
}

impl Capture {
    /// Prepares capture into `tx` (initialises GStreamer). Its capacity bounds frames in flight.
    pub fn new(tx: mpsc::Sender<MediaEvent>) -> Result<Capture, MediaError> {
        super::pipeline::init()?;
        Ok(Capture {
            tx,
            tracks: Vec::new(),
        })
    }

    /// Starts the tracks of stream `id` (track ids from the specs' `id`). Specs are validated
    /// first; nothing starts if one is invalid. Device trouble is not an error: it shows up as
    /// `TrackDown` events and retries.
    pub fn add_stream(
        &mut self,
        id: &str,
        video: Option<&VideoSpec>,
        audio: Option<&AudioSpec>,
    ) -> Result<(), MediaError> {
        if self.tracks.iter().any(|h| &*h.track.stream == id) {
            return Err(MediaError::Duplicate(id.to_string()));
        }
        let spec_err = |kind, source| MediaError::Spec {
            stream: id.to_string(),
            kind,
            source,
        };
        let mut specs = Vec::new();
        if let Some(v) = video {
            v.validate().map_err(|e| spec_err("video", e))?;
            specs.push((v.id.as_str(), TrackSpec::Video(v.clone())));
        }
        if let Some(a) = audio {
            a.validate().map_err(|e| spec_err("audio", e))?;
            specs.push((a.id.as_str(), TrackSpec::Audio(a.clone())));
        }
        if let [(v, _), (a, _)] = specs.as_slice()
            && v == a
        {
            let problem = format!("track id {a:?} is also the video track's id");
            return Err(spec_err(
                "audio",
                SpecError {
                    field: "id",
                    problem,
                },
            ));
        }
        let stream: Arc<str> = id.into();
        for (name, spec) in specs {
            let track = Arc::new(Track {
                stream: stream.clone(),
                track: name.into(),
                codec: spec.codec(),
                tx: self.tx.clone(),
                epoch: Instant::now(),
                stop: AtomicBool::new(false),
                up: AtomicBool::new(false),
                up_since_us: AtomicU64::new(0),
                last_frame_us: AtomicU64::new(0),
                frames: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                restarts: AtomicU64::new(0),
                merged: AtomicU64::new(0),
                run: Mutex::new(RunState::default()),
                capture: Mutex::new(None),
            });
            let t = Arc::clone(&track);
            let thread = std::thread::Builder::new()
                .name(format!("media-{id}-{name}"))
                .spawn(move || t.supervise(spec))
                .map_err(|e| MediaError::Probe(format!("cannot start a capture thread: {e}")))?;
            self.tracks.push(Handle {
                track,
                thread: Some(thread),
            });
        }
        Ok(())
    }

    /// Stops and removes every track of stream `id` (e.g. on config reload); waits for the
    /// pipelines to stop.
    pub fn remove_stream(&mut self, id: &str) {
        let (gone, keep) = std::mem::take(&mut self.tracks)
            .into_iter()
            .partition(|h| &*h.track.stream == id);
        self.tracks = keep;
        stop_all(gone);
    }

    /// Counters of every track.
    pub fn stats(&self) -> Vec<TrackStats> {
        self.tracks
            .iter()
            .map(|h| {
                let t = &h.track;
                TrackStats {
                    stream: t.stream.clone(),
                    track: t.track.clone(),
                    up: t.up.load(Relaxed),
                    frames: t.frames.load(Relaxed),
                    dropped: t.dropped.load(Relaxed),
                    restarts: t.restarts.load(Relaxed),
                    merged: t.merged.load(Relaxed),
                    capture: t.capture(),
                }
            })
            .collect()
    }
}

fn stop_all(handles: Vec<Handle>) {
    for h in &handles {
        h.track.stop.store(true, Relaxed);
    }
    for mut h in handles {
        if let Some(t) = h.thread.take()
            && t.join().is_err()
        {
            tracing::error!(stream = %h.track.stream, track = %h.track.track, "capture thread panicked");
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        stop_all(std::mem::take(&mut self.tracks));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error a pipeline posts, described as the supervisor sees it.
    fn first_error(launch: &str) -> Ended {
        gst::init().unwrap();
        let pipeline = gst::parse::launch(launch).unwrap();
        let bus = pipeline.bus().unwrap();
        let _ = pipeline.set_state(gst::State::Playing);
        let msg = bus
            .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Error])
            .expect("an error");
        let _ = pipeline.set_state(gst::State::Null);
        match msg.view() {
            gst::MessageView::Error(e) => describe_error(e),
            _ => unreachable!("filtered"),
        }
    }

    #[test]
    fn the_encoders_errors_move_auto_to_the_next_encoder() {
        let candidates = (Encoder::V4l2h264, vec![Encoder::V4l2h264, Encoder::X264]);
        // an element named `enc` failing, as the encoder does in every launch line
        let enc_failed =
            first_error("videotestsrc num-buffers=3 ! identity name=enc error-after=1 ! fakesink");
        assert_eq!(enc_failed.element.as_deref(), Some("enc"));
        assert!(
            enc_failed.reason.starts_with("enc: "),
            "{}",
            enc_failed.reason
        );
        let source_failed = first_error("v4l2src device=/dev/sioedge-no-such-camera ! fakesink");
        assert_ne!(source_failed.element.as_deref(), Some("enc"));

        let mut fallback = Fallback::default();
        let mut verdict = |ended: &Ended, was_up| {
            encoder_verdict(&mut fallback, Some(&candidates), ended, was_up)
        };
        assert_eq!(verdict(&enc_failed, false), None);
        assert_eq!(verdict(&enc_failed, false), None);
        // a camera error in between starts the count again
        assert_eq!(verdict(&source_failed, false), None);
        // so does an encoder failure after the track was up
        assert_eq!(verdict(&enc_failed, true), None);
        assert_eq!(verdict(&enc_failed, false), None);
        assert_eq!(verdict(&enc_failed, false), None);
        let msg = verdict(&enc_failed, false).expect("fallback");
        assert!(
            msg.starts_with("v4l2h264enc failed 3 times (enc: ")
                && msg.ends_with("using x264enc instead"),
            "{msg}"
        );
        assert_eq!(fallback.pick(&candidates.1), Some(Encoder::X264));
        // audio tracks have no encoder to fall back from
        assert_eq!(
            encoder_verdict(&mut Fallback::default(), None, &enc_failed, false),
            None
        );
    }

    #[test]
    fn pts_is_monotonic_and_restarts_continue_after_the_last_frame() {
        let ms = gst::ClockTime::from_mseconds;
        let mut r = RunState::default();
        r.new_run();
        assert_eq!(r.pts_us(Some(ms(500)), 1_000, 33_000), 1_000);
        assert_eq!(r.pts_us(Some(ms(533)), 40_000, 33_000), 34_000);
        // a buffer stamped earlier than the previous one never moves pts backwards
        assert_eq!(r.pts_us(Some(ms(520)), 50_000, 33_000), 34_001);
        // restart quickly: the new pipeline's clock starts again at 0, pts continues after the end
        r.new_run();
        assert_eq!(r.pts_us(Some(ms(0)), 60_000, 33_000), 67_001);
        assert_eq!(r.pts_us(Some(ms(33)), 70_000, 33_000), 100_001);
        // restart after an outage: the gap in wall time shows in pts
        r.new_run();
        assert_eq!(r.pts_us(None, 5_000_000, 0), 5_000_000);
        assert_eq!(r.pts_us(None, 5_020_000, 0), 5_020_000);
    }
}
