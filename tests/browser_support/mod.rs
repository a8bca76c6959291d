//! Shared by the browser tests (viewer_browser, viewer_https): headless Chromium driven through
//! tests/peers/viewer/browser.js, and child processes killed on drop.
#![allow(dead_code)] // each test binary uses a different subset

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

#[allow(unused_imports)] // each test binary uses a subset
pub use crate::process_support::{ChildGuard, free_port};

/// tests/peers (the Node and Python peers, with their node_modules).
pub fn peers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// A child process killed and reaped on drop, with its stdout lines on a channel.
pub struct Proc {
    pub child: ChildGuard,
    pub lines: Receiver<String>,
}
impl Proc {
    pub fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let out = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child: ChildGuard(child),
            lines,
        }
    }
    pub fn line(&self, timeout: Duration, what: &str) -> String {
        self.lines
            .recv_timeout(timeout)
            .unwrap_or_else(|e| panic!("{what}: no answer within {timeout:?} ({e})"))
    }
}

/// Headless Chromium behind tests/peers/viewer/browser.js (JSON lines in, JSON lines out).
pub struct Browser {
    proc: Proc,
    stdin: ChildStdin,
}
impl Browser {
    /// Chromium with an 800x520 window; `args` are extra command-line flags.
    pub fn launch(args: &[&str]) -> Browser {
        Self::launch_sized(args, 800, 520)
    }
    /// Chromium with a `width` x `height` viewport.
    pub fn launch_sized(args: &[&str], width: u32, height: u32) -> Browser {
        let mut proc = Proc::spawn(
            Command::new("node")
                .arg(peers().join("viewer/browser.js"))
                .current_dir(peers()),
        );
        let stdin = proc.child.stdin.take().expect("stdin is piped");
        let mut b = Browser { proc, stdin };
        b.cmd(json!({"op": "launch", "args": args, "width": width, "height": height}));
        b
    }
    pub fn cmd(&mut self, c: Value) -> Value {
        writeln!(self.stdin, "{c}").expect("write to browser driver");
        let line = self.proc.line(Duration::from_secs(60), &c.to_string());
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert_eq!(v["ok"], true, "{c} failed: {}", v["error"]);
        v["value"].clone()
    }
    pub fn eval(&mut self, js: &str) -> Value {
        self.cmd(json!({"op": "eval", "js": js}))
    }
    /// Polls `js` until it is truthy; returns its value.
    pub fn wait_for(&mut self, js: &str, timeout: Duration) -> Value {
        let end = Instant::now() + timeout;
        loop {
            let v = self.eval(js);
            if !(v.is_null() || v == false || v == 0) {
                return v;
            }
            if Instant::now() > end {
                let state = self
                    .eval("JSON.stringify(window.sioedge, (k, v) => (k === 'lat' ? v.length : v))");
                panic!("timed out after {timeout:?} waiting for {js}; page state: {state}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    pub fn player(&mut self, stream: &str) -> Value {
        self.eval(&format!(
            "(() => {{ const p = window.sioedge.players[{stream:?}]; return p ? JSON.parse(JSON.stringify(p)) : null; }})()"
        ))
    }
    /// Opens the page and waits for the stream's first picture: a single stream starts by itself,
    /// one of several is started with its button in the stream picker.
    pub fn open_and_play(&mut self, url: &str, stream: &str) -> Value {
        self.cmd(json!({"op": "goto", "url": url}));
        let button = format!("#streams:not([hidden]) button[data-stream={stream}]");
        let autoplayed = self.wait_for(
            &format!(
                "window.sioedge.players[{stream:?}] ? 'autoplay' : document.querySelector({button:?}) && 'picker'"
            ),
            Duration::from_secs(15),
        );
        if autoplayed == "picker" {
            self.cmd(json!({"op": "click", "selector": button}));
        }
        self.wait_for(
            &format!("window.sioedge.players[{stream:?}]?.firstPictureMs"),
            Duration::from_secs(15),
        );
        self.player(stream)
    }
    /// [`Browser::picture`] after resizing the viewport to `width` x `height` (and a layout pass).
    pub fn picture_at(&mut self, width: u32, height: u32) -> Picture {
        self.cmd(json!({"op": "viewport", "width": width, "height": height}));
        std::thread::sleep(Duration::from_millis(300));
        self.picture()
    }
    /// The first player's picture: its rendered size inside the video/canvas element's content box
    /// (letterboxing taken out: `object-fit: contain` scales the intrinsic size to fit), the
    /// viewport, and how many distinct coarse colours one row of the picture has.
    pub fn picture(&mut self) -> Picture {
        let v = self.eval(
            "(() => { const e = document.querySelector('.player .media > video:not([hidden]), .player .media > canvas'); \
             const r = e.getBoundingClientRect(), iw = e.videoWidth || e.width, ih = e.videoHeight || e.height; \
             const s = Math.min(r.width / iw, r.height / ih); \
             const c = Object.assign(document.createElement('canvas'), { width: iw, height: ih }), g = c.getContext('2d'); g.drawImage(e, 0, 0); \
             const d = g.getImageData(0, ih >> 2, iw, 1).data, set = new Set(); \
             for (let i = 0; i < d.length; i += 4) set.add([d[i], d[i + 1], d[i + 2]].map((x) => x >> 6).join()); \
             return [iw * s, ih * s, innerWidth, innerHeight, set.size, e.tagName]; })()",
        );
        let f = |i: usize| v[i].as_f64().unwrap_or(0.0);
        Picture {
            width: f(0),
            height: f(1),
            viewport: (f(2), f(3)),
            colours: f(4) as usize,
            element: v[5].as_str().unwrap_or("").to_lowercase(),
        }
    }
}

/// What [`Browser::picture`] measured, in CSS pixels.
#[derive(Debug)]
pub struct Picture {
    pub width: f64,
    pub height: f64,
    pub viewport: (f64, f64),
    pub colours: usize,
    pub element: String,
}

/// Asserts that `video` and `audio` frames decoded in `secs` are at least 80 % of the sources'
/// rates (`fps` video, 50 Opus packets of 20 ms per second).
pub fn assert_decoded_rates(secs: f64, video: f64, audio: f64, fps: f64) {
    assert!(
        video >= 0.8 * fps * secs,
        "decoded {video} video frames in {secs:.2} s"
    );
    assert!(
        audio >= 0.8 * 50.0 * secs,
        "decoded {audio} audio frames in {secs:.2} s"
    );
}
