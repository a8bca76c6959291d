//! The viewer page in headless Chromium (Debian `chromium` driven by npm `playwright-core`).
//!
//! Behaviour tests run against the server chosen by `SIOEDGE_VIEWER_SERVER` (see [`Kind`]):
//! `gateway` (default) is `sioedge run` with two 320x240 test streams (H.264 + Opus, MJPEG);
//! `node` is the Node socket.io server in tests/peers/viewer/fake-gateway.js, which speaks the event
//! contract and stands for "a third-party Node socket.io relay" (`node_relay_on_a_custom_namespace`
//! always uses it). The page decodes, measures and exposes its state on `window.sioedge`; these
//! tests read that state and assert on it.
//!
//! The `live_edge::*` tests are benchmarks of issue 17's targets: `sioedge run` with the default
//! config (one 1280x720@30 test stream + Opus), which the page starts by itself on load; the page's
//! own statistics (capture time `t` → picture on screen) are collected for
//! `SIOEDGE_VIEWER_BENCH_SECS` seconds (default 20) and printed. They assert bounds loose enough for
//! a loaded 2-core CI machine; `SIOEDGE_VIEWER_STRICT=1` asserts the targets instead
//! (over 60 s unless SIOEDGE_VIEWER_BENCH_SECS says otherwise):
//! `SIOEDGE_VIEWER_STRICT=1 cargo test --test viewer_browser live_edge -- --nocapture`.
//! `SIOEDGE_UPDATE_SCREENSHOT=1` also writes the MSE benchmark's picture of the page to
//! tests/screenshots/viewer.png.
//!
//! The browser tests hold a lock so they run one at a time: each one measures frame rates and
//! latency, and several Chromiums on a 2-core machine would measure each other.

mod browser_support;
mod process_support;

use browser_support::{Browser, Proc, assert_decoded_rates, free_port, peers};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const FPS: f64 = 30.0;

static SERIAL: Mutex<()> = Mutex::new(());
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn target_tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// Which server the page talks to.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// tests/peers/viewer/fake-gateway.js: a Node socket.io server speaking the contract, i.e. a
    /// third-party Node relay. Replays pre-encoded 320x240 H.264 + Opus and 15 fps MJPEG.
    NodeRelay,
    /// `sioedge run` with test sources at 320x240: `cam0` (H.264 + Opus) and `mjpeg0`.
    Gateway,
    /// `sioedge run` with the default config (one stream `cam0`, 1280x720@30 H.264 + Opus) from
    /// test sources.
    DefaultGateway,
}
impl Kind {
    /// The server of the behaviour tests: `SIOEDGE_VIEWER_SERVER=gateway|node`; default the
    /// gateway (the Node relay when built without the `media` feature, where `run` cannot capture).
    fn main() -> Kind {
        match std::env::var("SIOEDGE_VIEWER_SERVER").as_deref() {
            Ok("gateway") => Kind::Gateway,
            Ok("node") => Kind::NodeRelay,
            Err(_) if cfg!(feature = "media") => Kind::Gateway,
            Err(_) => Kind::NodeRelay,
            Ok(other) => panic!("unknown SIOEDGE_VIEWER_SERVER {other:?} (gateway|node)"),
        }
    }
}

/// The server under test, on a fixed port so it can be restarted where the page expects it.
struct Server {
    kind: Kind,
    port: u16,
    token: Option<String>,
    /// Node relay only: serve the contract on this namespace instead of "/".
    nsp: Option<String>,
    dir: tempfile::TempDir,
    proc: Option<Proc>,
}
impl Server {
    fn start(kind: Kind, port: u16) -> Server {
        Self::start_with(kind, port, None)
    }
    fn start_with(kind: Kind, port: u16, token: Option<&str>) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s = Server {
            kind,
            port,
            token: token.map(str::to_owned),
            nsp: None,
            dir,
            proc: None,
        };
        s.spawn();
        s
    }
    fn spawn(&mut self) {
        let proc = match self.kind {
            Kind::NodeRelay => {
                let mut cmd = Command::new("node");
                cmd.arg(peers().join("viewer/fake-gateway.js"))
                    .args(["--port", &self.port.to_string(), "--cache"])
                    .arg(target_tmp().join("viewer-media"))
                    .arg("--root")
                    .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/viewer"));
                if let Some(t) = &self.token {
                    cmd.args(["--token", t]);
                }
                if let Some(n) = &self.nsp {
                    cmd.args(["--ns", n]);
                }
                let proc = Proc::spawn(&mut cmd);
                let line = proc.line(Duration::from_secs(90), "fake gateway start");
                assert!(line.starts_with("listening"), "fake gateway said {line:?}");
                proc
            }
            Kind::Gateway | Kind::DefaultGateway => {
                let config = self.dir.path().join("sioedge.toml");
                let token = self
                    .token
                    .as_ref()
                    .map(|t| format!("viewer_token = {t:?}\n"))
                    .unwrap_or_default();
                // only keys every revision of the config schema has; the rest are defaults
                let streams = if self.kind == Kind::DefaultGateway {
                    "[[stream]]\nid = \"cam0\"\n[stream.video]\nsource = \"test\"\n[stream.audio]\nsource = \"test\"\n"
                } else {
                    "[[stream]]\nid = \"cam0\"\n\
                     [stream.video]\nsource = \"test\"\nwidth = 320\nheight = 240\nfps = 30\ncodec = \"h264\"\n\
                     [stream.audio]\nsource = \"test\"\ncodec = \"opus\"\n\
                     [[stream]]\nid = \"mjpeg0\"\n\
                     [stream.video]\nsource = \"test\"\nwidth = 320\nheight = 240\nfps = 15\ncodec = \"mjpeg\"\n"
                };
                let toml = format!(
                    "device = \"viewer-test\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n{token}\n{streams}",
                    port = self.port
                );
                std::fs::write(&config, toml).expect("write test config");
                let mut proc = Proc::spawn(
                    Command::new(env!("CARGO_BIN_EXE_sioedge"))
                        .env("RUST_LOG", "warn")
                        .arg("run")
                        .arg("--config")
                        .arg(&config),
                );
                wait_http(self.port, Duration::from_secs(60), &mut proc);
                proc
            }
        };
        self.proc = Some(proc);
    }
    fn kill(&mut self) {
        self.proc = None;
    }
    fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

/// Waits until `GET /` on the port answers 200 (fails at once if the server exits).
fn wait_http(port: u16, timeout: Duration, proc: &mut Proc) {
    use std::io::Read;
    let end = Instant::now() + timeout;
    loop {
        let ok = std::net::TcpStream::connect(("127.0.0.1", port))
            .and_then(|mut c| {
                c.set_read_timeout(Some(Duration::from_secs(2)))?;
                c.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
                let mut head = [0u8; 12];
                c.read_exact(&mut head)?;
                Ok(head.starts_with(b"HTTP/1.1 200"))
            })
            .unwrap_or(false);
        if ok {
            return;
        }
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!("the server exited ({status}) before serving its page");
        }
        assert!(
            Instant::now() < end,
            "no page on port {port} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn num(v: &Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}
/// Benchmarks of issue 17's targets (see the file's doc); `sioedge run` captures, so `media` only.
#[cfg(feature = "media")]
mod live_edge {
    use super::*;

    fn percentile(v: &[f64], p: f64) -> f64 {
        let mut s = v.to_vec();
        s.sort_by(|a, b| a.total_cmp(b));
        s[((p * s.len() as f64) as usize).min(s.len() - 1)]
    }
    /// Latency samples (ms) the page recorded, one per picture shown since the first.
    fn latencies(p: &Value) -> Vec<f64> {
        p["lat"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    }
    fn load_average() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    }

    /// Issue 17's targets (strict) or bounds a loaded 2-core CI machine meets (the default).
    struct Bounds {
        p50_ms: f64,
        p99_ms: f64,
        first_picture_ms: f64,
        stalls: f64,
    }
    /// `SIOEDGE_VIEWER_STRICT=1`: assert the targets.
    fn strict() -> bool {
        std::env::var("SIOEDGE_VIEWER_STRICT").is_ok_and(|v| v == "1")
    }
    fn bounds(path: &str) -> Bounds {
        let (p50_ms, p99_ms, first_picture_ms, stalls) = match (strict(), path) {
            (true, "mse") => (80.0, 150.0, 300.0, 0.0),
            (true, _) => (80.0, 50.0, 300.0, 0.0),
            // measured here: MSE p50 54-68 / p99 80-290 ms, WebCodecs p50 ~4 / p99 16-43 ms (load
            // average 2.7 to 10); before issue 17: MSE p50 171-250 ms, WebCodecs p99 460-1150 ms
            (false, "mse") => (150.0, 600.0, 3000.0, 10.0),
            (false, _) => (100.0, 300.0, 3000.0, 10.0),
        };
        Bounds {
            p50_ms,
            p99_ms,
            first_picture_ms,
            stalls,
        }
    }
    fn bench_secs() -> u64 {
        std::env::var("SIOEDGE_VIEWER_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(if strict() { 60 } else { 20 })
    }

    /// The default config's stream, started by the page on load at 1280x720: latency, first picture
    /// and stalls from the page's statistics over the benchmark window (from the first picture on, the
    /// late joiner's GOP burst included); then the layout at desktop and phone sizes, the stats overlay,
    /// full screen and sound.
    fn case(host: &str, args: &[&str], path: &str) -> (Server, Browser) {
        let server = Server::start(Kind::DefaultGateway, free_port());
        let mut b = Browser::launch_sized(args, 1280, 720);
        let first = b.open_and_play(&format!("http://{host}:{}/", server.port), "cam0");
        assert_eq!(b.eval("window.sioedge.path"), path);
        assert_eq!(first["path"], format!("{path}+{path}-audio"));
        // it started by itself (one stream: no picker to click), muted, with a "Sound on" button
        assert_eq!(b.eval("document.querySelector('#streams').hidden"), true);
        assert_eq!(first["muted"], true);
        assert_eq!(
            b.eval("document.querySelector('.player .sound:not([hidden])')?.textContent"),
            "Sound on"
        );

        let secs = bench_secs();
        std::thread::sleep(Duration::from_secs(secs));
        let p = b.player("cam0");
        let lat = latencies(&p);
        let window = (b.eval("performance.now()").as_f64().unwrap_or(0.0)
            - num(&p, "startAt")
            - num(&p, "firstPictureMs"))
            / 1000.0;
        let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
        // "first picture after load": from the page's load event (the page autoplays from there)
        let after_load = num(&p, "pageToPictureMs")
            - b.eval("performance.getEntriesByType('navigation')[0].loadEventStart")
                .as_f64()
                .unwrap_or(0.0);
        eprintln!(
            "{path} 1280x720@30: {} pictures in {window:.1} s ({:.1} fps), capture → screen p50 {p50:.1} ms p90 {:.1} ms p99 {p99:.1} ms max {:.1} ms, \
             first picture {after_load:.0} ms after the load event ({} ms after navigation, {} ms after the player started), \
             stalls {}, waiting {}, seeks {}, skipped {}, load average {}",
            lat.len(),
            num(&p, "drawn") / window,
            percentile(&lat, 0.9),
            percentile(&lat, 1.0),
            p["pageToPictureMs"],
            p["firstPictureMs"],
            p["stalls"],
            p["waiting"],
            p["seeks"],
            p["skipped"],
            load_average()
        );
        let want = bounds(path);
        assert!(
            num(&p, "drawn") >= 0.8 * FPS * window,
            "{} pictures in {window:.1} s",
            p["drawn"]
        );
        assert!(p50 <= want.p50_ms, "p50 {p50:.1} ms > {} ms", want.p50_ms);
        assert!(p99 <= want.p99_ms, "p99 {p99:.1} ms > {} ms", want.p99_ms);
        assert!(
            after_load <= want.first_picture_ms,
            "first picture {after_load:.0} ms after load"
        );
        assert!(num(&p, "stalls") <= want.stalls, "{} stalls", p["stalls"]);

        // stats overlay: the key and the button
        assert_eq!(
            b.eval("getComputedStyle(document.querySelector('.player .stats')).display"),
            "none"
        );
        b.cmd(json!({"op": "press", "key": "s"}));
        let stats = b.wait_for(
            "getComputedStyle(document.querySelector('.player .stats')).display !== 'none' && document.querySelector('.player .stats').textContent",
            Duration::from_secs(3),
        );
        let stats = stats.as_str().unwrap_or_default().to_owned();
        for want in ["1280×720", "fps", "latency", path] {
            assert!(
                stats.contains(want),
                "stats overlay without {want:?}: {stats}"
            );
        }
        b.cmd(json!({"op": "click", "selector": ".player .stats-btn"}));
        assert_eq!(
            b.eval("getComputedStyle(document.querySelector('.player .stats')).display"),
            "none"
        );
        b.cmd(json!({"op": "press", "key": "s"}));

        // full screen and back
        b.cmd(json!({"op": "click", "selector": ".player .fs-btn"}));
        b.wait_for(
            "document.fullscreenElement?.dataset.stream === 'cam0'",
            Duration::from_secs(5),
        );
        b.cmd(json!({"op": "press", "key": "f"}));
        b.wait_for("!document.fullscreenElement", Duration::from_secs(5));

        // a snapshot of the default stream: a 1280x720 JPEG
        snapshot_button(&mut b, "cam0", 1280, 720);

        // the picture shows the test pattern and fills the width (1280x720: 16:9 under the header; a
        // phone upright); a phone on its side gives it the full height
        for (w, h) in [(390, 844), (844, 390), (1280, 720)] {
            let pic = b.picture_at(w, h);
            eprintln!("{path} layout {w}x{h}: {pic:?}");
            let (got, of) = if h < 500 {
                (pic.height, pic.viewport.1)
            } else {
                (pic.width, pic.viewport.0)
            };
            assert!(got >= 0.9 * of, "picture {pic:?}");
            assert!(pic.colours >= 5, "{} colours in the picture", pic.colours);
        }
        (server, b)
    }

    /// Plain-HTTP origin (a host name mapped to loopback): not a secure context, so no WebCodecs; the
    /// page muxes fMP4 for MSE and holds the live edge. Sound on plays the Opus track (its own MSE
    /// element). The page is photographed here (muted, as it starts), as most users see it.
    #[test]
    fn mse() {
        let _g = serial();
        let (_server, mut b) = case(
            "viewer.test",
            &["--host-resolver-rules=MAP viewer.test 127.0.0.1"],
            "mse",
        );
        assert_eq!(b.eval("window.isSecureContext"), false);
        assert_eq!(b.eval("typeof VideoDecoder"), "undefined");
        std::thread::sleep(Duration::from_millis(1200)); // a stats refresh for the picture
        let shot = target_tmp().join("viewer.png");
        b.cmd(json!({"op": "screenshot", "path": shot}));
        let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 10_000,
            "screenshot {} is {size} bytes",
            shot.display()
        );
        if std::env::var("SIOEDGE_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
            let dest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/screenshots/viewer.png");
            std::fs::copy(&shot, &dest).expect("update the screenshot");
        }
        eprintln!("screenshot: {}", shot.display());

        let audio_bytes =
            "document.querySelector('.player audio')?.webkitAudioDecodedByteCount ?? -1";
        b.cmd(json!({"op": "click", "selector": ".player .sound"}));
        assert_eq!(b.eval("window.sioedge.players.cam0.muted"), false);
        assert_eq!(
            b.eval("document.querySelector('.player audio').muted"),
            false
        );
        let before = b.eval(audio_bytes).as_f64().unwrap_or(-1.0);
        b.wait_for(
            &format!("{audio_bytes} > {before} + 4000"),
            Duration::from_secs(5),
        );
        assert_eq!(
            b.eval("document.querySelector('.player .sound').textContent"),
            "Mute"
        );

        // lip sync: how far the sound trails the picture (the page's own measure: the presented
        // frame's media time minus the audio element's, per frame), first with the picture left at
        // the live edge, then held to the sound
        let (loose, loose_lat) = av_window(&mut b, false);
        let (synced, synced_lat) = av_window(&mut b, true);
        let p = |v: &[f64], q: f64| {
            if v.is_empty() {
                f64::NAN
            } else {
                percentile(v, q)
            }
        };
        eprintln!(
            "mse sound on: the sound trails the picture by p50 {:.0} ms (p10 {:.0}, p90 {:.0}; picture latency p50 {:.0} ms) \
             at the live edge, by p50 {:.0} ms (p10 {:.0}, p90 {:.0}; picture latency p50 {:.0} ms) with lip sync",
            p(&loose, 0.5),
            p(&loose, 0.1),
            p(&loose, 0.9),
            p(&loose_lat, 0.5),
            p(&synced, 0.5),
            p(&synced, 0.1),
            p(&synced, 0.9),
            p(&synced_lat, 0.5)
        );
        assert!(synced.len() >= 60, "{} A/V samples in 4 s", synced.len());
        let bound = if strict() { 20.0 } else { 60.0 };
        assert!(
            p(&synced, 0.5).abs() <= bound,
            "with lip sync the sound still trails the picture by {:.0} ms",
            p(&synced, 0.5)
        );
    }

    /// A/V offsets (ms) and picture latencies (ms) over 4 s, after 2 s to settle, with lip sync
    /// `on` or off.
    fn av_window(b: &mut Browser, on: bool) -> (Vec<f64>, Vec<f64>) {
        b.eval(&format!("window.sioedge.cfg.lipSync = {on}"));
        std::thread::sleep(Duration::from_secs(2));
        b.eval(
            "window.sioedge.players.cam0.av.length = 0; window.sioedge.players.cam0.lat.length = 0",
        );
        std::thread::sleep(Duration::from_secs(4));
        let p = b.player("cam0");
        let list = |k: &str| -> Vec<f64> {
            p[k].as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        (list("av"), list("lat"))
    }

    /// Secure origin (127.0.0.1): WebCodecs; the late joiner's GOP burst is decoded but only its newest
    /// frame is shown, so the latency from the first picture on stays low. Sound on starts Web Audio.
    #[test]
    fn webcodecs() {
        let _g = serial();
        let (_server, mut b) = case("127.0.0.1", &[], "webcodecs");
        assert_eq!(b.eval("window.isSecureContext"), true);
        b.cmd(json!({"op": "click", "selector": ".player .sound"}));
        assert_eq!(b.eval("window.sioedge.players.cam0.muted"), false);
        assert_eq!(b.eval("window.sioedge.audioState()"), "running");
        let played = num(&b.player("cam0"), "audioPlayed");
        b.wait_for(
            &format!(
                "window.sioedge.players.cam0.audioPlayed > {}",
                played + 25.0
            ),
            Duration::from_secs(5),
        );
    }
}

/// Clicks the Snapshot button of `stream`'s player once it shows: the download's name is
/// `<stream>-<yyyymmdd>-<hhmmss>.jpg` and Chromium decodes it as a `width` x `height` JPEG.
fn snapshot_button(b: &mut Browser, stream: &str, width: u32, height: u32) {
    let button = format!(".player[data-stream={stream}] .snap-btn");
    b.wait_for(
        &format!("document.querySelector('{button}:not([hidden])')"),
        Duration::from_secs(10),
    );
    let dir = tempfile::tempdir().expect("download dir");
    let got = b.cmd(json!({"op": "download", "selector": button, "dir": dir.path()}));
    eprintln!("snapshot of {stream}: {got}");
    let name = got["name"].as_str().unwrap_or_default();
    let stamp = name
        .strip_prefix(&format!("{stream}-"))
        .and_then(|n| n.strip_suffix(".jpg"))
        .unwrap_or_else(|| panic!("download named {name:?}"));
    assert!(
        stamp.len() == 15
            && stamp.chars().enumerate().all(|(i, c)| if i == 8 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }),
        "download named {name:?}"
    );
    assert_eq!(got["jpeg"], true, "{got}");
    assert_eq!(
        (got["width"].as_u64(), got["height"].as_u64()),
        (Some(width.into()), Some(height.into()))
    );
    assert_eq!(num(&b.player(stream), "snapshots"), 1.0);
}

/// The Snapshot button on both origins (plain HTTP, MSE; secure, WebCodecs): the gateway's JPEG of
/// the H.264 stream (decoded on the gateway) and of the MJPEG stream (its newest frame).
#[cfg(feature = "media")]
#[test]
fn snapshot_button_on_both_origins() {
    let _g = serial();
    let server = Server::start(Kind::Gateway, free_port());
    for (host, args, path) in [
        (
            "viewer.test",
            &["--host-resolver-rules=MAP viewer.test 127.0.0.1"][..],
            "mse",
        ),
        ("127.0.0.1", &[][..], "webcodecs"),
    ] {
        let mut b = Browser::launch(args);
        let url = format!("http://{host}:{}/", server.port);
        let first = b.open_and_play(&url, "cam0");
        assert_eq!(first["path"], format!("{path}+{path}-audio"));
        snapshot_button(&mut b, "cam0", 320, 240);
        b.cmd(json!({"op": "click", "selector": "#streams button[data-stream=mjpeg0]"}));
        b.wait_for(
            "window.sioedge.players.mjpeg0?.drawn > 0",
            Duration::from_secs(10),
        );
        snapshot_button(&mut b, "mjpeg0", 320, 240);
    }
}

/// Two streams: the picker is shown and nothing starts by itself; each stream plays when picked
/// (H.264 + Opus with WebCodecs at the source rates, MJPEG beside it) and stops when picked again.
#[test]
fn picker_with_two_streams() {
    let _g = serial();
    let server = Server::start(Kind::main(), free_port());
    let mut b = Browser::launch(&[]);
    b.cmd(json!({"op": "goto", "url": format!("http://127.0.0.1:{}/", server.port)}));
    b.wait_for(
        "window.sioedge.streams.length === 2",
        Duration::from_secs(15),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(b.eval("document.querySelector('#streams').hidden"), false);
    assert_eq!(
        b.eval("Object.keys(window.sioedge.players).length"),
        0,
        "nothing starts by itself"
    );

    let first = b.open_and_play(&format!("http://127.0.0.1:{}/", server.port), "cam0");
    assert_eq!(first["path"], "webcodecs+webcodecs-audio");
    std::thread::sleep(Duration::from_secs(1));
    let mark = "(() => { const p = window.sioedge.players.cam0; return [performance.now(), p.videoDecoded, p.audioDecoded]; })()";
    let m0 = b.eval(mark);
    std::thread::sleep(Duration::from_secs(5));
    let m1 = b.eval(mark);
    let at = |m: &Value, i: usize| m[i].as_f64().unwrap_or(0.0);
    let secs = (at(&m1, 0) - at(&m0, 0)) / 1000.0;
    assert_decoded_rates(secs, at(&m1, 1) - at(&m0, 1), at(&m1, 2) - at(&m0, 2), FPS);
    let pic = b.picture();
    assert!(pic.colours >= 5, "{} colours on the canvas", pic.colours);

    b.cmd(json!({"op": "click", "selector": "#streams button[data-stream=mjpeg0]"}));
    b.wait_for(
        "window.sioedge.players.mjpeg0?.drawn > 5",
        Duration::from_secs(10),
    );
    assert_eq!(b.eval("document.querySelectorAll('.player').length"), 2);
    assert_eq!(b.eval("document.querySelector('#streams button[data-stream=mjpeg0]').getAttribute('aria-pressed')"), "true");
    b.cmd(json!({"op": "click", "selector": "#streams button[data-stream=cam0]"}));
    b.wait_for(
        "!window.sioedge.players.cam0 && document.querySelectorAll('.player').length === 1",
        Duration::from_secs(5),
    );
}

/// Killing the server and starting it again on the same port: the page says it lost the
/// connection, reconnects, re-watches, plays again within 5 s without a reload, and says so.
#[test]
fn reconnects_after_server_restart() {
    restart_case("127.0.0.1", &[], "webcodecs");
}
/// The same on the MSE path (the MediaSource is rebuilt for the restarted stream).
#[test]
fn reconnects_after_server_restart_mse() {
    restart_case(
        "viewer.test",
        &["--host-resolver-rules=MAP viewer.test 127.0.0.1"],
        "mse",
    );
}
fn restart_case(host: &str, args: &[&str], path: &str) {
    let _g = serial();
    let port = free_port();
    let mut server = Server::start(Kind::main(), port);
    let mut b = Browser::launch(args);
    b.open_and_play(&format!("http://{host}:{port}/"), "cam0");
    assert_eq!(b.eval("window.sioedge.path"), path);
    b.eval("window.__noReload = 1");
    let status = "(() => { const s = document.querySelector('.player .status'); return s.hidden ? '' : s.textContent; })()";
    assert_eq!(b.eval(status), "");
    server.kill();
    b.wait_for(
        "window.sioedge.conn !== 'connected'",
        Duration::from_secs(10),
    );
    let said = b.wait_for(
        &format!("{status}.includes('reconnecting') && {status}"),
        Duration::from_secs(5),
    );
    let before = num(&b.player("cam0"), "drawn");
    std::thread::sleep(Duration::from_millis(1500)); // the page backs off while the server is away
    server.restart();
    let restarted = Instant::now();
    b.wait_for(
        &format!(
            "window.sioedge.players.cam0.drawn >= {} && window.sioedge.conn === 'connected'",
            before + 5.0
        ),
        Duration::from_secs(10),
    );
    let took = restarted.elapsed();
    eprintln!(
        "{path}: playing again {:.0} ms after the server was back (the page said {said} while it was away)",
        took.as_secs_f64() * 1000.0
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(b.eval(status), "reconnected");
    assert_eq!(b.eval("window.__noReload"), 1, "the page was reloaded");
    assert!(num(&b.eval("window.sioedge"), "connects") >= 2.0);
}

/// MJPEG is drawn with createImageBitmap, also on a plain-HTTP origin.
#[test]
fn mjpeg_plays_on_plain_http_origin() {
    let _g = serial();
    let server = Server::start(Kind::main(), free_port());
    let mut b = Browser::launch(&["--host-resolver-rules=MAP viewer.test 127.0.0.1"]);
    let first = b.open_and_play(&format!("http://viewer.test:{}/", server.port), "mjpeg0");
    assert_eq!(first["path"], "mjpeg");
    let m0 = b.eval("[performance.now(), window.sioedge.players.mjpeg0.drawn]");
    std::thread::sleep(Duration::from_secs(3));
    let m1 = b.eval("[performance.now(), window.sioedge.players.mjpeg0.drawn]");
    let secs = (m1[0].as_f64().unwrap_or(0.0) - m0[0].as_f64().unwrap_or(0.0)) / 1000.0;
    let drawn = m1[1].as_f64().unwrap_or(0.0) - m0[1].as_f64().unwrap_or(0.0);
    eprintln!("mjpeg: {drawn} pictures in {secs:.2} s");
    assert!(
        drawn >= 0.8 * 15.0 * secs,
        "{drawn} pictures drawn in {secs:.2} s"
    );
}

/// A server that wants a viewer token: the page asks for it, and plays once it is given.
#[test]
fn asks_for_the_viewer_token() {
    let _g = serial();
    let server = Server::start_with(Kind::main(), free_port(), Some("s3cret"));
    let mut b = Browser::launch(&[]);
    b.cmd(json!({"op": "goto", "url": format!("http://127.0.0.1:{}/", server.port)}));
    b.wait_for("document.querySelector('#secret')", Duration::from_secs(10));
    assert_ne!(b.eval("window.sioedge.conn"), "connected");
    b.cmd(json!({"op": "fill", "selector": "#secret", "value": "s3cret"}));
    b.cmd(json!({"op": "click", "selector": "#notice button"}));
    b.wait_for(
        "window.sioedge.conn === 'connected'",
        Duration::from_secs(10),
    );
    b.cmd(json!({"op": "click", "selector": "#streams button[data-stream=cam0]"}));
    b.wait_for(
        "window.sioedge.players.cam0?.drawn > 5",
        Duration::from_secs(10),
    );
    if server.kind == Kind::Gateway {
        // the snapshot request carries the token the page was given (Authorization: Bearer)
        snapshot_button(&mut b, "cam0", 320, 240);
    }
}

/// The page follows `?ns=` to a relay that serves the contract on another namespace (namespaced
/// EVENT, ACK and BINARY_EVENT packets), here a Node socket.io relay on `/viewers`.
#[test]
fn node_relay_on_a_custom_namespace() {
    let _g = serial();
    let port = free_port();
    let mut server = Server::start_with(Kind::NodeRelay, port, None);
    server.nsp = Some("/viewers".into());
    server.restart();
    let mut b = Browser::launch(&[]);
    let p = b.open_and_play(&format!("http://127.0.0.1:{port}/?ns=/viewers"), "cam0");
    assert_eq!(b.eval("window.sioedge.cfg.nsp"), "/viewers");
    assert_eq!(p["path"], "webcodecs+webcodecs-audio");
    b.wait_for(
        "window.sioedge.players.cam0.videoDecoded > 30 && window.sioedge.players.cam0.audioDecoded > 30",
        Duration::from_secs(10),
    );
    // a server without snapshots: the page asked, and shows no Snapshot button
    let probe = b.wait_for(
        "window.sioedge.players.cam0.snapshotProbe",
        Duration::from_secs(5),
    );
    assert_eq!(probe, 404);
    assert_eq!(
        b.eval("document.querySelector('.player .snap-btn').hidden"),
        true
    );
}
