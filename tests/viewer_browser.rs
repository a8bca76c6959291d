//! The viewer page in headless Chromium (Debian `chromium` driven by npm `playwright-core`).
//!
//! The server under test is chosen by `SIOEDGE_VIEWER_SERVER` (see [`Kind`]): `gateway` (default)
//! is `sioedge run` with test sources at 320x240; `node` is the Node socket.io server in
//! tests/peers/viewer/fake-gateway.js, which speaks the event contract and stands for "a
//! third-party Node socket.io relay" (`node_relay_on_a_custom_namespace` always uses it).
//! The page decodes, measures and exposes its state on `window.sioedge`; these tests read that
//! state and assert on it.
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
    /// `sioedge run` with test sources at 320x240.
    Gateway,
}
impl Kind {
    /// The server of the main tests: `SIOEDGE_VIEWER_SERVER=gateway|node`; default the gateway
    /// (the Node relay when built without the `media` feature, where `run` cannot capture).
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
            Kind::Gateway => {
                let config = self.dir.path().join("sioedge.toml");
                let token = self
                    .token
                    .as_ref()
                    .map(|t| format!("viewer_token = {t:?}\n"))
                    .unwrap_or_default();
                // only keys every revision of the config schema has; the rest are defaults
                let toml = format!(
                    "device = \"viewer-test\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n{token}\n\
                     [[stream]]\nid = \"cam0\"\n\
                     [stream.video]\nsource = \"test\"\nwidth = 320\nheight = 240\nfps = 30\ncodec = \"h264\"\n\
                     [stream.audio]\nsource = \"test\"\ncodec = \"opus\"\n\
                     [[stream]]\nid = \"mjpeg0\"\n\
                     [stream.video]\nsource = \"test\"\nwidth = 320\nheight = 240\nfps = 15\ncodec = \"mjpeg\"\n",
                    port = self.port
                );
                std::fs::write(&config, toml).expect("write test config");
                let proc = Proc::spawn(
                    Command::new(env!("CARGO_BIN_EXE_sioedge"))
                        .env("RUST_LOG", "warn")
                        .arg("run")
                        .arg("--config")
                        .arg(&config),
                );
                let mut proc = proc;
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
fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[((p * s.len() as f64) as usize).min(s.len() - 1)]
}
/// Latency samples (ms) recorded since the player's `lat` array was last cleared.
fn latencies(p: &Value) -> Vec<f64> {
    p["lat"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

/// Secure origin (127.0.0.1): WebCodecs decodes H.264 and Opus at the source rate with a latency
/// figure; the page is photographed playing the test pattern.
#[test]
fn webcodecs_on_loopback_origin() {
    let _g = serial();
    let server = Server::start(Kind::main(), free_port());
    let mut b = Browser::launch(&[]);
    let first = b.open_and_play(&format!("http://127.0.0.1:{}/", server.port), "cam0");
    assert_eq!(b.eval("window.isSecureContext"), true);
    assert_eq!(b.eval("window.sioedge.path"), "webcodecs");
    assert_eq!(first["path"], "webcodecs+webcodecs-audio");

    std::thread::sleep(Duration::from_secs(1)); // past the late-joiner GOP burst
    let js_mark = "(() => { const p = window.sioedge.players.cam0; p.lat = []; return [performance.now(), p.videoDecoded, p.audioDecoded, p.dropped]; })()";
    let m0 = b.eval(js_mark);
    std::thread::sleep(Duration::from_secs(5));
    let m1 = b.eval(js_mark.replace("p.lat = []; ", "").as_str());
    let p = b.player("cam0");
    let secs = (m1[0].as_f64().unwrap_or(0.0) - m0[0].as_f64().unwrap_or(0.0)) / 1000.0;
    let video = m1[1].as_f64().unwrap_or(0.0) - m0[1].as_f64().unwrap_or(0.0);
    let audio = m1[2].as_f64().unwrap_or(0.0) - m0[2].as_f64().unwrap_or(0.0);
    let lat = latencies(&p);
    eprintln!(
        "webcodecs: {video} video frames in {secs:.2} s ({:.1} fps), {audio} audio frames, latency p50 {:.1} ms p99 {:.1} ms over {} frames, first picture {} ms after click, dropped {}",
        video / secs,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.len(),
        first["firstPictureMs"],
        m1[3]
    );
    assert_decoded_rates(secs, video, audio, FPS);
    assert!(
        lat.len() as f64 >= 0.8 * FPS * secs,
        "{} latency samples",
        lat.len()
    );
    assert!(num(&p, "latencyP50") > 0.0, "latency figure reported: {p}");
    assert!(
        percentile(&lat, 0.5) < 500.0,
        "loopback latency p50 {lat:?}"
    );

    // the canvas shows the test pattern: many distinct saturated colours along one row
    let colours = b.eval(
        "(() => { const c = document.querySelector('.player canvas'); const d = c.getContext('2d').getImageData(0, c.height / 4, c.width, 1).data; \
         const s = new Set(); for (let i = 0; i < d.length; i += 4) s.add([d[i], d[i+1], d[i+2]].map((x) => x >> 6).join()); return s.size; })()",
    );
    assert!(
        colours.as_u64().unwrap_or(0) >= 5,
        "{colours} colours on the canvas"
    );

    // audio starts muted; the unmute click (a user gesture) gets Web Audio running and scheduled
    assert_eq!(b.eval("window.sioedge.players.cam0.muted"), true);
    b.cmd(json!({"op": "click", "selector": ".player button"}));
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

    // a second stream plays beside the first
    b.cmd(json!({"op": "click", "selector": "li[data-stream=mjpeg0] button.play"}));
    b.wait_for(
        "window.sioedge.players.mjpeg0?.drawn > 5",
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(1200)); // one stats refresh for the picture
    let shot = target_tmp().join("viewer-webcodecs.png");
    b.cmd(json!({"op": "screenshot", "path": shot}));
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "screenshot {} is {size} bytes",
        shot.display()
    );
    eprintln!("screenshot: {}", shot.display());
}

/// Plain-HTTP origin (a host name mapped to loopback): no WebCodecs, the page muxes fMP4 for MSE,
/// plays at the source rate and stays within 1 s of the live edge for 20 s.
#[test]
fn mse_on_plain_http_origin() {
    let _g = serial();
    let server = Server::start(Kind::main(), free_port());
    let mut b = Browser::launch(&["--host-resolver-rules=MAP viewer.test 127.0.0.1"]);
    let first = b.open_and_play(&format!("http://viewer.test:{}/", server.port), "cam0");
    assert_eq!(b.eval("window.isSecureContext"), false);
    assert_eq!(b.eval("typeof VideoDecoder"), "undefined");
    assert_eq!(b.eval("window.sioedge.path"), "mse");
    assert_eq!(first["path"], "mse+mse-audio");

    std::thread::sleep(Duration::from_secs(1));
    let sample = "(() => { const v = document.querySelector('.player video'); const q = v.getVideoPlaybackQuality(); const p = window.sioedge.players.cam0; \
                  return [performance.now(), v.currentTime, q.totalVideoFrames, p.lag, p.seeks, v.webkitAudioDecodedByteCount || 0]; })()";
    b.eval("window.sioedge.players.cam0.lat = []");
    let s0 = b.eval(sample);
    let mut worst_lag: f64 = 0.0;
    let end = Instant::now() + Duration::from_secs(20);
    let mut last = s0.clone();
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(250));
        last = b.eval(sample);
        worst_lag = worst_lag.max(last[3].as_f64().unwrap_or(f64::INFINITY));
    }
    let p = b.player("cam0");
    let f = |v: &Value, i: usize| v[i].as_f64().unwrap_or(0.0);
    let secs = (f(&last, 0) - f(&s0, 0)) / 1000.0;
    let frames = f(&last, 2) - f(&s0, 2);
    let advanced = f(&last, 1) - f(&s0, 1);
    let lat = latencies(&p);
    eprintln!(
        "mse: currentTime +{advanced:.2} s in {secs:.2} s, {frames} frames ({:.1} fps), worst buffer lag {:.0} ms, seeks {}, latency p50 {:.1} ms p99 {:.1} ms over {} frames, first picture {} ms after click, audio bytes decoded {}",
        frames / secs,
        worst_lag * 1000.0,
        f(&last, 4) - f(&s0, 4),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.len(),
        first["firstPictureMs"],
        f(&last, 5) - f(&s0, 5)
    );
    assert!(
        advanced > 0.8 * secs,
        "currentTime advanced {advanced} s in {secs} s"
    );
    assert!(frames >= 0.8 * FPS * secs, "{frames} frames in {secs:.2} s");
    assert!(
        worst_lag < 1.0,
        "fell {worst_lag} s behind the buffered live edge"
    );
    assert!(
        percentile(&lat, 0.99) < 1000.0,
        "capture → presented p99 {:.0} ms",
        percentile(&lat, 0.99)
    );
    assert!(f(&last, 5) > f(&s0, 5), "the Opus track in MSE decodes");
}

/// Killing the server and starting it again on the same port: the page reconnects, re-watches and
/// plays again within 5 s, without a reload.
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
    server.kill();
    b.wait_for(
        "window.sioedge.conn !== 'connected'",
        Duration::from_secs(10),
    );
    let before = num(&b.player("cam0"), "videoDecoded");
    std::thread::sleep(Duration::from_millis(1500)); // the page backs off while the server is away
    server.restart();
    let restarted = Instant::now();
    b.wait_for(
        &format!(
            "window.sioedge.players.cam0.videoDecoded >= {} && window.sioedge.conn === 'connected'",
            before + 5.0
        ),
        Duration::from_secs(10),
    );
    let took = restarted.elapsed();
    eprintln!(
        "{path}: playing again {:.0} ms after the server was back",
        took.as_secs_f64() * 1000.0
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
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
    b.cmd(json!({"op": "click", "selector": "li[data-stream=cam0] button.play"}));
    b.wait_for(
        "window.sioedge.players.cam0?.drawn > 5",
        Duration::from_secs(10),
    );
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
}
