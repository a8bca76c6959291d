//! `GET /api/streams/<id>/snapshot.jpg` on a real `sioedge run` (test sources, a viewer token):
//! an H.264 stream decoded by the gateway and an MJPEG stream served as it is, each a JPEG of its
//! configured size (decoded again with GStreamer's jpegdec); the token rule of watching; 404s; one
//! decode per picture however many ask.
//! The CPU bounds (global limit, time limit, failures) are unit-tested with a fake decoder in
//! src/service/snapshot.rs.
#![cfg(feature = "media")]

mod gateway_support;
mod process_support;
#[path = "peers/relay/support.rs"]
mod relay_support;

use bytes::Bytes;
use gateway_support::Gateway;
use gstreamer as gst;
use gstreamer::prelude::*;
use http_body_util::{BodyExt, Empty};
use std::net::SocketAddr;
use std::time::Duration;

const TOKEN: &str = "s3cret";

/// `cam0`: H.264 at 384×216, 5 fps, a keyframe every 4 s (so a snapshot decodes up to 20 frames,
/// and two requests 100 ms apart usually find the same newest frame); `mjpeg0`: MJPEG at 320×240.
fn config() -> String {
    format!(
        r#"device = "snap-test"
[server]
listen = "127.0.0.1:0"
viewer_token = "{TOKEN}"
[[stream]]
id = "cam0"
[stream.video]
source = "test"
width = 384
height = 216
fps = 5
keyframe_interval = 4.0
[[stream]]
id = "mjpeg0"
[stream.video]
source = "test"
width = 320
height = 240
fps = 15
codec = "mjpeg"
"#
    )
}

/// One request on a fresh connection (hyper's client).
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> http::Response<Bytes> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = tokio::time::timeout(
        Duration::from_secs(10),
        send.send_request(req.body(Empty::<Bytes>::new()).expect("request")),
    )
    .await
    .expect("answered within 10 s")
    .expect("response");
    let (head, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    http::Response::from_parts(head, body)
}

fn header<'a>(r: &'a http::Response<Bytes>, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Decodes the JPEG with GStreamer's jpegdec: the decoded picture's size.
fn jpegdec_size(j: &Bytes) -> (i32, i32) {
    gst::init().expect("gst init");
    let p = gst::parse::launch(
        "appsrc name=src caps=image/jpeg ! jpegdec ! appsink name=sink sync=false",
    )
    .expect("launch")
    .downcast::<gst::Pipeline>()
    .expect("pipeline");
    let src = p
        .by_name("src")
        .and_then(|e| e.downcast::<gstreamer_app::AppSrc>().ok())
        .expect("appsrc");
    let sink = p
        .by_name("sink")
        .and_then(|e| e.downcast::<gstreamer_app::AppSink>().ok())
        .expect("appsink");
    p.set_state(gst::State::Playing).expect("play");
    src.push_buffer(gst::Buffer::from_slice(j.clone()))
        .expect("push");
    src.end_of_stream().expect("eos");
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_seconds(5))
        .expect("jpegdec decoded the snapshot");
    let _ = p.set_state(gst::State::Null);
    let s = sample
        .caps()
        .and_then(|c| c.structure(0).map(|s| s.to_owned()))
        .expect("caps");
    (
        s.get::<i32>("width").expect("width"),
        s.get::<i32>("height").expect("height"),
    )
}

fn start() -> Gateway {
    let gw = Gateway::start(&config());
    gw.wait_live(2);
    gw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_and_mjpeg_snapshots_are_jpegs_of_the_configured_size() {
    let gw = start();
    let bearer = format!("Bearer {TOKEN}");
    for (stream, auth, source, size) in [
        ("cam0", None, "decoded", (384, 216)),
        ("mjpeg0", Some(bearer.as_str()), "mjpeg", (320, 240)),
    ] {
        let (path, headers) = match auth {
            None => (
                format!("/api/streams/{stream}/snapshot.jpg?token={TOKEN}"),
                vec![],
            ),
            Some(a) => (
                format!("/api/streams/{stream}/snapshot.jpg"),
                vec![("authorization", a)],
            ),
        };
        let started = std::time::Instant::now();
        let r = request(gw.addr, "GET", &path, &headers).await;
        eprintln!(
            "{stream}: {} {} B in {:?} ({})",
            r.status(),
            r.body().len(),
            started.elapsed(),
            header(&r, "x-snapshot")
        );
        assert_eq!(r.status(), 200, "{stream}: {:?}", r.body());
        assert_eq!(header(&r, "content-type"), "image/jpeg");
        assert_eq!(header(&r, "cache-control"), "no-store");
        assert_eq!(header(&r, "x-snapshot"), source);
        assert!(r.body().starts_with(b"\xff\xd8"), "{stream}: not a JPEG");
        let (w, h) = jpegdec_size(r.body());
        assert_eq!((w as u32, h as u32), size, "{stream}: decoded");
        let head = request(gw.addr, "HEAD", &path, &headers).await;
        assert_eq!((head.status().as_u16(), head.body().len()), (200, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_token_is_required_and_unknown_streams_are_404() {
    let gw = start();
    let path = "/api/streams/cam0/snapshot.jpg";
    let r = request(gw.addr, "GET", path, &[]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "www-authenticate"), "Bearer realm=\"sioedge\"");
    assert_eq!(r.body().as_ref(), b"viewer token required\n");
    let r = request(gw.addr, "GET", &format!("{path}?token=wrong"), &[]).await;
    assert_eq!(r.status(), 401);
    let wrong = [("authorization", "Bearer wrong")];
    assert_eq!(request(gw.addr, "GET", path, &wrong).await.status(), 401);
    let r = request(
        gw.addr,
        "GET",
        &format!("/api/streams/nope/snapshot.jpg?token={TOKEN}"),
        &[],
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.body().as_ref(), b"unknown stream \"nope\"\n");
    // the token is checked before anything about the stream is told
    let r = request(gw.addr, "GET", "/api/streams/nope/snapshot.jpg", &[]).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_decode_per_picture_however_many_ask() {
    let gw = start();
    let path = format!("/api/streams/cam0/snapshot.jpg?token={TOKEN}");
    // back to back: the second finds the same newest frame (5 fps) and gets the cached JPEG
    let mut pair = None;
    let (mut answered, mut decodes) = (0, 0);
    for _ in 0..20 {
        let a = request(gw.addr, "GET", &path, &[]).await;
        let b = request(gw.addr, "GET", &path, &[]).await;
        assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
        answered += 2;
        decodes += [&a, &b]
            .iter()
            .filter(|r| header(r, "x-snapshot") == "decoded")
            .count();
        if header(&a, "x-snapshot-frame") == header(&b, "x-snapshot-frame") {
            pair = Some((a, b));
            break;
        }
    }
    let (a, b) = pair.expect("two requests within one frame");
    // the first of the pair decoded the frame, or found it cached from the previous round
    assert!(["decoded", "cached"].contains(&header(&a, "x-snapshot")));
    assert_eq!(
        header(&b, "x-snapshot"),
        "cached",
        "the same frame is not decoded twice"
    );
    assert_eq!(a.body(), b.body());

    // eight at once, once a newer frame is in (5 fps): per picture one decode, which the others
    // share or find cached (src/service/snapshot.rs tests the sharing step by step)
    tokio::time::sleep(Duration::from_millis(250)).await;
    let answers =
        futures_util::future::join_all((0..8).map(|_| request(gw.addr, "GET", &path, &[]))).await;
    let mut by_frame = std::collections::BTreeMap::<String, Vec<String>>::new();
    for r in &answers {
        assert_eq!(r.status(), 200, "{:?}", r.body());
        by_frame
            .entry(header(r, "x-snapshot-frame").to_owned())
            .or_default()
            .push(header(r, "x-snapshot").to_owned());
    }
    eprintln!("8 concurrent requests: {by_frame:?}");
    for (frame, sources) in &by_frame {
        let decoded = sources.iter().filter(|s| *s == "decoded").count();
        assert!(
            decoded <= 1,
            "frame {frame} decoded {decoded} times: {sources:?}"
        );
        assert!(
            sources
                .iter()
                .all(|s| ["decoded", "shared", "cached"].contains(&s.as_str())),
            "{sources:?}"
        );
    }
    let decoded = by_frame
        .values()
        .flatten()
        .filter(|s| *s == "decoded")
        .count();
    assert!(
        decoded >= 1,
        "the frame had changed, yet nothing was decoded: {by_frame:?}"
    );

    // /metrics counts every answer and every decode
    let metrics = request(gw.addr, "GET", "/metrics", &[]).await;
    let text = String::from_utf8_lossy(metrics.body());
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert_eq!(
        value("sioedge_snapshots_total{status=\"200\"}"),
        answered + answers.len()
    );
    assert_eq!(value("sioedge_snapshot_decodes_total"), decodes + decoded);
}

/// `sioedge relay` decodes nothing: the gateway's MJPEG stream, relayed as `<device>/mjpeg0`, has
/// snapshots there (its newest frame); the H.264 one answers 501 and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_serves_mjpeg_snapshots_and_refuses_h264_ones() {
    let relay = relay_support::Relay::start(&relay_support::relay_config(
        &[("snap-test", "gw-token")],
        None,
    ));
    let gw = config().replacen(
        "[[stream]]",
        &format!(
            "[[relay]]\nurl = \"{}\"\nnamespace = \"/publish\"\ntoken = \"gw-token\"\n\n[[stream]]",
            relay.url()
        ),
        1,
    );
    let _gw = Gateway::start(&gw);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mjpeg = loop {
        // the stream id holds a slash: as such in the path, or as %2F (the page's encodeURIComponent)
        let r = request(
            relay.addr,
            "GET",
            "/api/streams/snap-test/mjpeg0/snapshot.jpg",
            &[],
        )
        .await;
        if r.status() == 200 || std::time::Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(mjpeg.status(), 200, "{:?}", mjpeg.body());
    assert_eq!(header(&mjpeg, "x-snapshot"), "mjpeg");
    assert_eq!(jpegdec_size(mjpeg.body()), (320, 240));
    let h264 = request(
        relay.addr,
        "GET",
        "/api/streams/snap-test%2Fcam0/snapshot.jpg",
        &[],
    )
    .await;
    assert_eq!(h264.status(), 501);
    let why = String::from_utf8_lossy(h264.body()).into_owned();
    assert!(why.contains("no decoder"), "{why}");
    assert_eq!(
        request(
            relay.addr,
            "HEAD",
            "/api/streams/snap-test%2Fcam0/snapshot.jpg",
            &[]
        )
        .await
        .status(),
        501
    );
}
