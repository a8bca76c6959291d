//! `GET /api/streams/<id>/snapshot.jpg`: the newest picture of a stream as a JPEG — what the
//! page's Snapshot button downloads and what a home-automation camera entity polls.
//!
//! - MJPEG streams: the newest frame as it is (the late-joiner cache holds exactly that frame).
//! - H.264 streams: the cached GOP (keyframe + the deltas since) decoded on demand by the mode's
//!   [`Decode`]r (the gateway's GStreamer one, [`h264_decoder`]); the relay has none and answers
//!   501. Bounded in CPU: the JPEG is cached per (keyframe, newest frame), so asking again before
//!   the next frame costs nothing; one decode at a time per stream (requests that come while it
//!   runs get its picture); at most [`SnapshotLimits::decodes`] decodes at once in all (503 with
//!   `Retry-After` beyond); each within [`SnapshotLimits::within`] (503 when it overruns).
//! - The same access rule as watching: with a viewer token or password configured, the request
//!   carries it as `?token=` (or `?password=`), `Authorization: Bearer …` or HTTP Basic (any user
//!   name); 401 otherwise. 404 for an unknown stream or one with no picture yet.
//! - `HEAD` answers whether a picture can be had (the page shows its button on 200) without
//!   decoding anything. Every answer is `Cache-Control: no-store`; `X-Snapshot` says where the
//!   picture came from (`decoded`, `cached`, `shared`, `mjpeg`) and `X-Snapshot-Frame` its seq.
//! - Counted ([`SnapshotStats`]): answers by status code and decodes started, in `/api/status`
//!   and `/metrics`, so an operator sees how often something polls and what it costs.

use super::viewers::Access;
use crate::contract::Codec;
use crate::hub::{FrameId, Hub, NewestPicture};
use crate::server::RouteFuture;
use crate::sync::lock;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// Why a decoder gave no picture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// It ran out of time.
    #[error("decoding took too long")]
    TimedOut,
    /// It failed (the reason).
    #[error("{0}")]
    Failed(String),
}

/// Turns H.264 frames into one JPEG: the mode's way of decoding (GStreamer on the gateway; tests
/// put a counting fake here).
pub trait Decode: Send + Sync + 'static {
    /// The newest picture of `frames` (Annex B access units, keyframe first) as a JPEG scaled to
    /// `size` when given, within `within`. Blocks: called off the async runtime.
    fn jpeg(
        &self,
        frames: &[Bytes],
        size: Option<(u32, u32)>,
        within: Duration,
    ) -> Result<Bytes, DecodeError>;
}

#[cfg(feature = "media")]
impl Decode for crate::media::snapshot::JpegSnapshots {
    fn jpeg(
        &self,
        frames: &[Bytes],
        size: Option<(u32, u32)>,
        within: Duration,
    ) -> Result<Bytes, DecodeError> {
        use crate::media::snapshot::SnapshotError;
        self.jpeg(frames, size, within).map_err(|e| match e {
            SnapshotError::Timeout(_) => DecodeError::TimedOut,
            e => DecodeError::Failed(e.to_string()),
        })
    }
}

/// The gateway's H.264 decoder for snapshots: GStreamer's best one on this machine (built with
/// `media`), `None` (with a warning) when there is none.
pub fn h264_decoder() -> Option<Arc<dyn Decode>> {
    #[cfg(feature = "media")]
    match crate::media::snapshot::JpegSnapshots::new() {
        Ok(d) => {
            tracing::info!(
                decoder = d.decoder(),
                "snapshots of H.264 streams decode with {}",
                d.decoder()
            );
            return Some(Arc::new(d));
        }
        Err(e) => tracing::warn!("snapshots of H.264 streams are off: {e}"),
    }
    None
}

/// Bounds on the CPU snapshots may take.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotLimits {
    /// Decodes running at once, all streams together.
    pub decodes: usize,
    /// Time one decode may take.
    pub within: Duration,
}

impl Default for SnapshotLimits {
    /// Two decodes at once, 3 s each: a 2 s GOP of 720p decodes in well under a second in software
    /// on a Raspberry Pi 4.
    fn default() -> Self {
        SnapshotLimits {
            decodes: 2,
            within: Duration::from_secs(3),
        }
    }
}

/// Slots kept beyond which finished ones are forgotten (streams come and go on a relay).
const MAX_SLOTS: usize = 64;

/// Which picture a JPEG shows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PictureKey {
    track: String,
    key: FrameId,
    newest: FrameId,
}

/// A JPEG and the seq of the frame it shows.
#[derive(Debug, Clone)]
struct Made {
    jpeg: Bytes,
    seq: u64,
}

/// One stream's snapshot state: its last JPEG, and the decode running for it.
#[derive(Default)]
struct Slot {
    cached: Option<(PictureKey, Made)>,
    running: Option<watch::Receiver<Option<Result<Made, DecodeError>>>>,
}

/// What the snapshot route did since start: how often a camera entity or a page asked, what it
/// got, and how many of those requests cost a decode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SnapshotStats {
    /// Answers by HTTP status code (200, 401, 404, 503…).
    pub answers: BTreeMap<u16, u64>,
    /// Decodes started (each one a cached GOP turned into a JPEG).
    pub decodes: u64,
}

/// The snapshot route of one server (see the module docs).
pub(crate) struct Snapshots {
    access: Access,
    decoder: Option<Arc<dyn Decode>>,
    within: Duration,
    permits: Arc<Semaphore>,
    slots: Mutex<HashMap<String, Slot>>,
    stats: Mutex<SnapshotStats>,
}

type Answer = Response<Full<Bytes>>;

fn respond(status: StatusCode, headers: &[(header::HeaderName, &str)], body: Bytes) -> Answer {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name.clone(), v);
        }
    }
    r
}

fn text(status: StatusCode, msg: impl Into<String>) -> Answer {
    respond(
        status,
        &[(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Bytes::from(msg.into() + "\n"),
    )
}

fn busy(msg: &str) -> Answer {
    let mut r = text(StatusCode::SERVICE_UNAVAILABLE, msg);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// The stream id of a snapshot path, percent-decoded: `None` for other paths, `Err` for a bad id.
/// Ids may hold `/` (a relay's `<device>/<stream>`), as such or as `%2F`.
fn stream_of(path: &str) -> Option<Result<String, ()>> {
    let id = path
        .strip_prefix("/api/streams/")?
        .strip_suffix("/snapshot.jpg")?;
    if id.is_empty() {
        return None;
    }
    Some(
        percent_encoding::percent_decode_str(id)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(drop),
    )
}

/// The secret a request carries: `Authorization: Bearer`, HTTP Basic's password, or the
/// `token`/`password` query parameter.
fn secret_of(parts: &http::request::Parts) -> Option<String> {
    let auth = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(auth) = auth {
        if let Some(t) = auth.strip_prefix("Bearer ") {
            return Some(t.trim().to_owned());
        }
        if let Some(b) = auth.strip_prefix("Basic ") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()?;
            let text = String::from_utf8(raw).ok()?;
            return text.split_once(':').map(|(_, p)| p.to_owned());
        }
    }
    parts.uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "token" || k == "password")
            .then(|| percent_encoding::percent_decode_str(v).decode_utf8().ok())
            .flatten()
            .map(|v| v.into_owned())
    })
}

impl Snapshots {
    /// Snapshots guarded by `access`, decoding H.264 with `decoder` (none: H.264 answers 501).
    pub(crate) fn new(
        access: Access,
        decoder: Option<Arc<dyn Decode>>,
        limits: SnapshotLimits,
    ) -> Snapshots {
        Snapshots {
            access,
            decoder,
            within: limits.within,
            permits: Arc::new(Semaphore::new(limits.decodes.max(1))),
            slots: Mutex::new(HashMap::new()),
            stats: Mutex::default(),
        }
    }

    /// The counts so far.
    pub(crate) fn stats(&self) -> SnapshotStats {
        lock(&self.stats).clone()
    }

    /// Answers a snapshot request from `hub` (`None` while the server is starting); `None` for any
    /// other path.
    pub(crate) fn route<P: Send + Sync + 'static>(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        hub: impl FnOnce() -> Option<Arc<Hub<P>>>,
    ) -> Option<RouteFuture> {
        let stream = stream_of(parts.uri.path())?;
        let this = self.clone();
        let method = parts.method.clone();
        let secret = secret_of(parts);
        let hub = hub();
        Some(Box::pin(async move {
            let answer = this.serve(stream, method, secret, hub).await;
            *lock(&this.stats)
                .answers
                .entry(answer.status().as_u16())
                .or_default() += 1;
            answer
        }))
    }

    async fn serve<P: Send + Sync + 'static>(
        self: &Arc<Self>,
        stream: Result<String, ()>,
        method: Method,
        secret: Option<String>,
        hub: Option<Arc<Hub<P>>>,
    ) -> Answer {
        let Ok(stream) = stream else {
            return text(StatusCode::BAD_REQUEST, "bad stream id");
        };
        if method != Method::GET && method != Method::HEAD {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        let Some(hub) = hub else {
            return busy("starting");
        };
        let answer = self
            .answer(&hub, &stream, secret, method == Method::HEAD)
            .await;
        if method == Method::HEAD {
            let (head, _) = answer.into_parts();
            return Response::from_parts(head, Full::new(Bytes::new()));
        }
        answer
    }

    async fn answer<P: Send + Sync + 'static>(
        self: &Arc<Self>,
        hub: &Hub<P>,
        stream: &str,
        secret: Option<String>,
        head: bool,
    ) -> Answer {
        if let Err(refusal) = self
            .access
            .check(&json!({ "token": secret, "password": secret }))
        {
            let msg = refusal["message"]
                .as_str()
                .unwrap_or("unauthorized")
                .to_owned();
            let challenge = match self.access {
                Access::Password(_) => "Basic realm=\"sioedge\"",
                _ => "Bearer realm=\"sioedge\"",
            };
            let mut r = text(StatusCode::UNAUTHORIZED, msg);
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
            return r;
        }
        let picture = match hub.newest_picture(stream) {
            Err(e) => return text(StatusCode::NOT_FOUND, e.to_string()),
            Ok(None) => {
                return text(
                    StatusCode::NOT_FOUND,
                    format!("stream {stream:?} has no picture yet"),
                );
            }
            Ok(Some(p)) => p,
        };
        let made = match (picture.track.codec, &self.decoder) {
            (Codec::Mjpeg, _) => Ok((
                Made {
                    jpeg: picture.frames.last().cloned().unwrap_or_default(),
                    seq: picture.newest.seq,
                },
                "mjpeg",
            )),
            (Codec::H264, Some(_)) if head => Ok((
                Made {
                    jpeg: Bytes::new(),
                    seq: picture.newest.seq,
                },
                "not decoded (HEAD)",
            )),
            (Codec::H264, Some(decoder)) => self.decoded(stream, picture, decoder.clone()).await,
            (codec, _) => Err(text(
                StatusCode::NOT_IMPLEMENTED,
                format!(
                    "no snapshots of {codec:?} streams here: this server has no decoder \
                     (`sioedge relay` serves MJPEG snapshots only; the gateway decodes H.264)"
                ),
            )),
        };
        match made {
            Ok((made, source)) => respond(
                StatusCode::OK,
                &[
                    (header::CONTENT_TYPE, "image/jpeg"),
                    (header::HeaderName::from_static("x-snapshot"), source),
                    (
                        header::HeaderName::from_static("x-snapshot-frame"),
                        &made.seq.to_string(),
                    ),
                ],
                made.jpeg,
            ),
            Err(r) => r,
        }
    }

    /// The JPEG of `picture`: cached, or from the decode running for `stream`, or from a new one.
    async fn decoded(
        self: &Arc<Self>,
        stream: &str,
        picture: NewestPicture,
        decoder: Arc<dyn Decode>,
    ) -> Result<(Made, &'static str), Answer> {
        let key = PictureKey {
            track: picture.track.track.clone(),
            key: picture.key,
            newest: picture.newest,
        };
        let (mut rx, source) = {
            let mut slots = lock(&self.slots);
            if slots.len() > MAX_SLOTS {
                slots.retain(|_, s| s.running.is_some());
            }
            let slot = slots.entry(stream.to_owned()).or_default();
            match (&slot.cached, &slot.running) {
                (Some((k, made)), _) if *k == key => return Ok((made.clone(), "cached")),
                (_, Some(rx)) => (rx.clone(), "shared"),
                (_, None) => {
                    let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                        return Err(busy("busy: other snapshots are being decoded"));
                    };
                    let (tx, rx) = watch::channel(None);
                    slot.running = Some(rx.clone());
                    lock(&self.stats).decodes += 1;
                    self.clone()
                        .start(stream, key, picture, decoder, permit, tx);
                    (rx, "decoded")
                }
            }
        };
        let wait = self.within + Duration::from_secs(1);
        let made = tokio::time::timeout(wait, rx.wait_for(Option::is_some))
            .await
            .ok()
            .and_then(|r| r.ok().and_then(|v| v.clone()));
        match made {
            Some(Ok(made)) => Ok((made, source)),
            Some(Err(DecodeError::TimedOut)) | None => Err(busy("the snapshot took too long")),
            Some(Err(DecodeError::Failed(why))) => Err(text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("snapshot failed: {why}"),
            )),
        }
    }

    /// Decodes off the runtime, on a task of its own so a request that goes away does not leave
    /// the stream's slot marked running; the permit is released when the decoder returns.
    fn start(
        self: Arc<Self>,
        stream: &str,
        key: PictureKey,
        picture: NewestPicture,
        decoder: Arc<dyn Decode>,
        permit: OwnedSemaphorePermit,
        tx: watch::Sender<Option<Result<Made, DecodeError>>>,
    ) {
        let stream = stream.to_owned();
        let within = self.within;
        let size = picture.track.width.zip(picture.track.height);
        let seq = picture.newest.seq;
        tokio::spawn(async move {
            let job = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                decoder.jpeg(&picture.frames, size, within)
            });
            let made = match job.await {
                Ok(r) => r.map(|jpeg| Made { jpeg, seq }),
                Err(e) => Err(DecodeError::Failed(format!("decoder crashed: {e}"))),
            };
            if let Err(e) = &made {
                tracing::warn!(stream, "snapshot: {e}");
            }
            {
                let mut slots = lock(&self.slots);
                if let Some(slot) = slots.get_mut(&stream) {
                    slot.running = None;
                    if let Ok(m) = &made {
                        slot.cached = Some((key, m.clone()));
                    }
                }
            }
            tx.send_replace(Some(made));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{Announce, MediaFrame, TrackInfo, cam_announce};
    use crate::hub::{CacheLimits, InProcess};
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// Counts its calls; blocks while `closed` (5 s at most); answers the frame count as "JPEG".
    #[derive(Default)]
    struct Fake {
        calls: AtomicUsize,
        closed: AtomicBool,
        answer: Mutex<Option<DecodeError>>,
    }

    impl Decode for Fake {
        fn jpeg(
            &self,
            frames: &[Bytes],
            size: Option<(u32, u32)>,
            _: Duration,
        ) -> Result<Bytes, DecodeError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            // at most 5 s, so a failing test fails instead of waiting for this thread forever
            for _ in 0..2500 {
                if !self.closed.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            if let Some(e) = lock(&self.answer).clone() {
                return Err(e);
            }
            Ok(Bytes::from(format!("{} frames at {size:?}", frames.len())))
        }
    }

    fn hub() -> Arc<Hub<()>> {
        let hub = Arc::new(Hub::new(
            |_: &_| (),
            Arc::new(InProcess),
            CacheLimits::default(),
        ));
        for s in ["cam0", "cam1"] {
            hub.announce(cam_announce(s)).expect("announce");
        }
        hub.announce(Announce {
            stream: "mj".into(),
            tracks: vec![TrackInfo {
                track: "video".into(),
                codec: Codec::Mjpeg,
                codec_string: None,
                width: Some(320),
                height: Some(240),
                fps: Some(15),
                sample_rate: None,
                channels: None,
                avcc: None,
                capture: None,
            }],
        })
        .expect("announce");
        hub
    }

    fn publish(hub: &Hub<()>, stream: &str, n: u64, key: bool) {
        let codec = if stream == "mj" {
            Codec::Mjpeg
        } else {
            Codec::H264
        };
        hub.publish(MediaFrame {
            stream: stream.into(),
            track: "video".into(),
            codec,
            pts: n * 1000,
            duration: 0,
            key,
            t: 5_000_000 + n,
            data: Bytes::from(format!("frame {n}")),
        })
        .expect("publish");
    }

    fn snapshots(access: Access, fake: &Arc<Fake>, decodes: usize) -> Arc<Snapshots> {
        Arc::new(Snapshots::new(
            access,
            Some(fake.clone() as Arc<dyn Decode>),
            SnapshotLimits {
                decodes,
                within: Duration::from_millis(300),
            },
        ))
    }

    /// The answer to `method uri` with `headers`, not yet awaited.
    fn request(
        s: &Arc<Snapshots>,
        hub: &Arc<Hub<()>>,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> RouteFuture {
        let mut req = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (parts, ()) = req.body(()).expect("request").into_parts();
        s.route(&parts, || Some(hub.clone()))
            .expect("a snapshot path")
    }

    /// Status, the X-Snapshot header, the body and the response of an answer.
    async fn finish(answer: RouteFuture) -> (u16, String, String, Answer) {
        let (head, body) = answer.await.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let source = head
            .headers
            .get("x-snapshot")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let status = head.status.as_u16();
        (
            status,
            source,
            String::from_utf8_lossy(&bytes).into_owned(),
            Response::from_parts(head, Full::new(bytes)),
        )
    }

    async fn ask(
        s: &Arc<Snapshots>,
        hub: &Arc<Hub<()>>,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String, String, Answer) {
        finish(request(s, hub, method, uri, headers)).await
    }

    /// Polls `answer` once: it gets as far as waiting for a decode.
    async fn poll_once(answer: &mut RouteFuture) -> bool {
        std::future::poll_fn(|cx| std::task::Poll::Ready(answer.as_mut().poll(cx).is_pending()))
            .await
    }

    #[test]
    fn paths_and_secrets_are_read_from_the_request() {
        assert_eq!(
            stream_of("/api/streams/cam0/snapshot.jpg"),
            Some(Ok("cam0".into()))
        );
        assert_eq!(
            stream_of("/api/streams/a%20b/snapshot.jpg"),
            Some(Ok("a b".into()))
        );
        assert_eq!(stream_of("/api/streams/%ff/snapshot.jpg"), Some(Err(())));
        for relayed in [
            "/api/streams/gw/cam0/snapshot.jpg",
            "/api/streams/gw%2Fcam0/snapshot.jpg",
        ] {
            assert_eq!(stream_of(relayed), Some(Ok("gw/cam0".into())), "{relayed}");
        }
        for other in [
            "/api/streams//snapshot.jpg",
            "/api/streams/snapshot.jpg",
            "/api/status",
            "/",
        ] {
            assert_eq!(stream_of(other), None, "{other}");
        }
        let secret = |uri: &str, auth: Option<&str>| {
            let mut r = http::Request::builder().uri(uri);
            if let Some(a) = auth {
                r = r.header("authorization", a);
            }
            secret_of(&r.body(()).expect("request").into_parts().0)
        };
        assert_eq!(secret("/x?a=1&token=s%2F3", None).as_deref(), Some("s/3"));
        assert_eq!(secret("/x?password=pw", None).as_deref(), Some("pw"));
        assert_eq!(secret("/x", Some("Bearer tok")).as_deref(), Some("tok"));
        // "user:pw" in base64
        assert_eq!(
            secret("/x", Some("Basic dXNlcjpwdw==")).as_deref(),
            Some("pw")
        );
        assert_eq!(secret("/x", Some("Basic !!")), None);
        assert_eq!(secret("/x?tokenx=1", None), None);
    }

    #[tokio::test]
    async fn access_unknown_streams_and_streams_without_a_picture() {
        let (hub, fake) = (hub(), Arc::new(Fake::default()));
        let s = snapshots(Access::Token("s3cret".into()), &fake, 2);
        publish(&hub, "cam0", 0, true);
        let url = "/api/streams/cam0/snapshot.jpg";
        let (status, _, body, resp) = ask(&s, &hub, "GET", url, &[]).await;
        assert_eq!((status, body.trim()), (401, "viewer token required"));
        assert_eq!(
            resp.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"sioedge\""
        );
        assert_eq!(
            ask(&s, &hub, "GET", &format!("{url}?token=nope"), &[])
                .await
                .0,
            401
        );
        assert_eq!(
            fake.calls.load(Ordering::SeqCst),
            0,
            "nothing decoded for strangers"
        );
        assert_eq!(
            ask(&s, &hub, "GET", &format!("{url}?token=s3cret"), &[])
                .await
                .0,
            200
        );
        let bearer = [("authorization", "Bearer s3cret")];
        assert_eq!(ask(&s, &hub, "GET", url, &bearer).await.0, 200);
        let (status, _, body, _) =
            ask(&s, &hub, "GET", "/api/streams/nope/snapshot.jpg", &bearer).await;
        assert_eq!((status, body.trim()), (404, "unknown stream \"nope\""));
        let (status, _, body, _) =
            ask(&s, &hub, "GET", "/api/streams/cam1/snapshot.jpg", &bearer).await;
        assert_eq!(
            (status, body.trim()),
            (404, "stream \"cam1\" has no picture yet")
        );
        assert_eq!(ask(&s, &hub, "POST", url, &bearer).await.0, 405);

        let p = snapshots(Access::Password("pw".into()), &fake, 2);
        let (status, _, _, resp) = ask(&p, &hub, "GET", url, &[]).await;
        assert_eq!(status, 401);
        assert_eq!(
            resp.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"sioedge\""
        );
        let basic = [("authorization", "Basic dXNlcjpwdw==")];
        assert_eq!(ask(&p, &hub, "GET", url, &basic).await.0, 200);
    }

    #[tokio::test]
    async fn a_picture_is_decoded_once_per_newest_frame() {
        let (hub, fake) = (hub(), Arc::new(Fake::default()));
        let s = snapshots(Access::Open, &fake, 2);
        let url = "/api/streams/cam0/snapshot.jpg";
        publish(&hub, "cam0", 0, true);
        publish(&hub, "cam0", 1, false);
        let (status, source, body, resp) = ask(&s, &hub, "GET", url, &[]).await;
        assert_eq!((status, source.as_str()), (200, "decoded"));
        assert_eq!(
            body, "2 frames at Some((320, 240))",
            "the GOP at the announced size"
        );
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "image/jpeg");
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(resp.headers()["x-snapshot-frame"], "1");
        let (status, source, again, _) = ask(&s, &hub, "GET", url, &[]).await;
        assert_eq!((status, source.as_str(), again), (200, "cached", body));
        assert_eq!(
            fake.calls.load(Ordering::SeqCst),
            1,
            "two requests, one decode"
        );
        publish(&hub, "cam0", 2, false);
        let (_, source, body, _) = ask(&s, &hub, "GET", url, &[]).await;
        assert_eq!(
            (source.as_str(), body.as_str()),
            ("decoded", "3 frames at Some((320, 240))")
        );
        assert_eq!(
            fake.calls.load(Ordering::SeqCst),
            2,
            "a new frame, a new decode"
        );
        // HEAD says a picture can be had, without decoding it
        let (status, _, body, _) =
            ask(&s, &hub, "HEAD", "/api/streams/cam1/snapshot.jpg", &[]).await;
        assert_eq!(status, 404);
        assert!(body.is_empty());
        publish(&hub, "cam1", 0, true);
        let (status, _, body, _) =
            ask(&s, &hub, "HEAD", "/api/streams/cam1/snapshot.jpg", &[]).await;
        assert_eq!((status, body.as_str()), (200, ""));
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
        assert_eq!(
            s.stats(),
            SnapshotStats {
                answers: [(200, 4), (404, 1)].into(),
                decodes: 2,
            },
            "every answer counted by status, decodes apart"
        );
    }

    #[tokio::test]
    async fn mjpeg_is_served_as_it_is_and_h264_needs_a_decoder() {
        let hub = hub();
        let none = Arc::new(Snapshots::new(
            Access::Open,
            None,
            SnapshotLimits::default(),
        ));
        publish(&hub, "mj", 7, true);
        publish(&hub, "cam0", 0, true);
        let (status, source, body, _) =
            ask(&none, &hub, "GET", "/api/streams/mj/snapshot.jpg", &[]).await;
        assert_eq!(
            (status, source.as_str(), body.as_str()),
            (200, "mjpeg", "frame 7")
        );
        let (status, _, body, _) =
            ask(&none, &hub, "GET", "/api/streams/cam0/snapshot.jpg", &[]).await;
        assert_eq!(status, 501);
        assert!(body.contains("no decoder"), "{body}");
        assert_eq!(
            ask(&none, &hub, "HEAD", "/api/streams/cam0/snapshot.jpg", &[])
                .await
                .0,
            501
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_decode_per_stream_at_a_time_and_a_global_limit() {
        let (hub, fake) = (hub(), Arc::new(Fake::default()));
        let s = snapshots(Access::Open, &fake, 1);
        publish(&hub, "cam0", 0, true);
        publish(&hub, "cam1", 0, true);
        fake.closed.store(true, Ordering::SeqCst);
        let url = "/api/streams/cam0/snapshot.jpg";
        let mut first = request(&s, &hub, "GET", url, &[]);
        assert!(poll_once(&mut first).await, "decoding");
        while fake.calls.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // the same stream joins the running decode
        let mut joined = request(&s, &hub, "GET", url, &[]);
        assert!(
            poll_once(&mut joined).await,
            "waiting for the running decode"
        );
        // another stream finds the global limit taken
        let (status, _, body, resp) =
            ask(&s, &hub, "GET", "/api/streams/cam1/snapshot.jpg", &[]).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        fake.closed.store(false, Ordering::SeqCst);
        let (first, joined) = (finish(first).await, finish(joined).await);
        assert_eq!((first.0, first.1.as_str()), (200, "decoded"));
        assert_eq!((joined.0, joined.1.as_str()), (200, "shared"));
        assert_eq!(first.2, joined.2);
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1, "one decode for both");
        let (status, source, _, _) =
            ask(&s, &hub, "GET", "/api/streams/cam1/snapshot.jpg", &[]).await;
        assert_eq!(
            (status, source.as_str()),
            (200, "decoded"),
            "the permit came back"
        );
        let stats = s.stats();
        assert_eq!(stats.answers, [(200, 3), (503, 1)].into());
        assert_eq!(stats.decodes, 2, "the joined request shared a decode");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_and_failing_decodes_answer_errors_and_cache_nothing() {
        let (hub, fake) = (hub(), Arc::new(Fake::default()));
        let s = snapshots(Access::Open, &fake, 2);
        publish(&hub, "cam0", 0, true);
        let url = "/api/streams/cam0/snapshot.jpg";
        // a decoder that does not come back within the limit (+1 s): 503, the request is not held
        fake.closed.store(true, Ordering::SeqCst);
        let started = std::time::Instant::now();
        let (status, _, _, resp) = ask(&s, &hub, "GET", url, &[]).await;
        assert_eq!(status, 503);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        *lock(&fake.answer) = Some(DecodeError::TimedOut);
        fake.closed.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            ask(&s, &hub, "GET", url, &[]).await.0,
            503,
            "the decoder's own time limit"
        );
        *lock(&fake.answer) = Some(DecodeError::Failed("corrupt".into()));
        let (status, _, body, _) = ask(&s, &hub, "GET", url, &[]).await;
        assert_eq!((status, body.trim()), (500, "snapshot failed: corrupt"));
        *lock(&fake.answer) = None;
        assert_eq!(
            ask(&s, &hub, "GET", url, &[]).await.1,
            "decoded",
            "nothing cached from failures"
        );
    }
}
