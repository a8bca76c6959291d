//! Valid configs: the shipped example documents the real defaults, every optional setting in it
//! is spelled right, `check-config` says ok, reloads can be diffed, and no input panics.

use proptest::prelude::*;
use sioedge::config::{Config, ConfigError, DuplicatePublisher, StreamConfig, Transport};
use sioedge::media::{AudioCodec, VideoCodec, VideoSource};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target-configs/sioedge.example.toml")
}

fn example_text() -> String {
    std::fs::read_to_string(example_path()).expect("read the example config")
}

fn parse(text: &str) -> Config {
    match Config::parse(text, "test.toml", Path::new("/nonexistent-base")) {
        Ok(c) => c,
        Err(e) => panic!("{e}\n--- text ---\n{text}"),
    }
}

/// The example with its optional settings (`# key = value`, `# [table]`) switched on.
fn example_enabled() -> String {
    example_text()
        .lines()
        .map(|l| {
            let rest = l.strip_prefix("# ").unwrap_or(l);
            let is_table = rest.starts_with('[') && rest.ends_with(']');
            let is_setting = rest
                .split_once(" = ")
                .is_some_and(|(k, _)| k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            if l.starts_with("# ") && (is_table || is_setting) {
                rest
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn example_active_values_are_exactly_the_embedded_default() {
    let cfg = Config::from_file(&example_path()).unwrap_or_else(|e| panic!("{e}"));
    let Config { source, .. } = &cfg;
    assert_eq!(source.as_deref(), Some(example_path().as_path()));
    let mut cfg = cfg.clone();
    cfg.source = None;
    assert_eq!(cfg, Config::embedded_default());
}

#[test]
fn example_optional_settings_are_valid_and_show_the_defaults() {
    let enabled = example_enabled();
    assert!(enabled.contains("\n[[relay]]\n") && enabled.contains("\n[relay_server]\n"));
    let cfg = parse(&enabled);
    assert_eq!(cfg.device, "garage-pi");
    assert_eq!(cfg.user.as_deref(), Some("sioedge"));
    assert!(cfg.server.tls.as_ref().is_some_and(|t| t.self_signed));

    // The relay block, minus the settings that have no default, is all defaults.
    let mut relay = cfg.relays[0].clone();
    let minimal = parse(
        "[[relay]]\nurl = \"wss://relay.example.com\"\ntoken = \"change-me\"\n[[stream]]\nid = \"a\"\n[stream.audio]\n",
    );
    relay.headers.clear();
    assert_eq!(relay, minimal.relays[0]);

    let mut rs = cfg.relay_server.clone().expect("relay_server enabled");
    let minimal = parse("[relay_server]\ntokens = { garage-pi = \"change-me\" }\n");
    rs.server.tls = None;
    rs.adapter = None;
    assert_eq!(Some(rs), minimal.relay_server);
}

#[test]
fn check_config_prints_ok_and_a_summary() {
    let out = Command::new(env!("CARGO_BIN_EXE_sioedge"))
        .arg("check-config")
        .arg(example_path())
        .output()
        .expect("run sioedge");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let want = format!("{}: ok (", example_path().display());
    assert!(stdout.starts_with(&want), "{stdout}");
    assert!(
        stdout.contains("cam0 [video h264 1280x720@30 from auto, audio opus 48000hz from auto]"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 1);
}

/// Names and values echoed by `check-config` (the file name, a camera name in the summary) stay on
/// one line, with control characters escaped as Rust's `escape_debug` writes them.
#[test]
fn check_config_escapes_what_it_echoes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("cam\u{1b}[31m\nforged: ok.toml");
    let valid =
        "[[stream]]\nid = \"a\"\n[stream.video]\nsource = \"libcamera:cam\\u001b[2J\\nforged\"\n";
    let shown = format!(
        "{}/cam\\u{{1b}}[31m\\nforged: ok.toml",
        dir.path().display()
    );
    for (text, status, want) in [
        (valid.to_owned(), 0, format!("{shown}: ok (")),
        (
            format!("{valid}fps = 0\n"),
            2,
            format!("{shown}:5:7: stream[0].video.fps: "),
        ),
    ] {
        std::fs::write(&file, text).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_sioedge"))
            .arg("check-config")
            .arg(&file)
            .output()
            .expect("run sioedge");
        assert_eq!(out.status.code(), Some(status));
        let printed = if status == 0 { out.stdout } else { out.stderr };
        let printed = String::from_utf8_lossy(&printed);
        assert!(printed.starts_with(&want), "{printed}");
        assert_eq!(printed.lines().count(), 1, "{printed}");
        assert!(!printed.trim_end().contains(char::is_control), "{printed}");
        if status == 0 {
            assert!(
                printed.contains("libcamera:cam\\u{1b}[2j\\nforged"),
                "{printed}"
            );
        }
    }
}

#[test]
fn units_sources_and_relative_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("relay.token"), "  tok-123\n").expect("write token");
    std::fs::write(
        dir.path().join("tokens.toml"),
        "pi = \"a\"\ncam-2 = \"b\"\n",
    )
    .expect("write");
    let file = dir.path().join("sioedge.toml");
    std::fs::write(
        &file,
        r#"
device = "pi"
[server]
listen = "0.0.0.0:0"
ping_interval = 1500
ping_timeout = "2m"
max_payload = "64KiB"
cors_origins = ["*", "https://example.com:8443"]
viewer_token = "v"

[[relay]]
url = "https://relay.example.com/?x=1"
token_file = "relay.token"
transports = ["polling", "websocket"]
reconnection = { delay = "250ms", max_delay = "30s", randomization = 0.0, attempts = 3 }
queue = { max_frames = 30, max_bytes = "1MB" }

[[stream]]
id = "front"
[stream.video]
source = "v4l2:/dev/video2"
codec = "mjpeg"
encoder = "mjpeg"
[[stream]]
id = "back"
audio = { source = "alsa:hw:1,0", codec = "pcm", sample_rate = 16000, frame_ms = 10 }

[relay_server]
tokens_file = "tokens.toml"
duplicate_publisher = "refuse"
adapter = "redis://127.0.0.1:6379/2"
"#,
    )
    .expect("write config");
    let cfg = Config::from_file(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.server.listen.port(), 0);
    assert_eq!(cfg.server.ping_interval.get(), Duration::from_millis(1500));
    assert_eq!(cfg.server.ping_timeout.get(), Duration::from_secs(120));
    assert_eq!(cfg.server.max_payload.get(), 65536);
    let relay = &cfg.relays[0];
    assert_eq!(
        relay.token_file.as_deref(),
        Some(dir.path().join("relay.token").as_path())
    );
    assert_eq!(
        relay.read_token().expect("token file"),
        Some("tok-123".into())
    );
    assert_eq!(relay.transports, [Transport::Polling, Transport::Websocket]);
    assert_eq!(relay.reconnection.delay.get(), Duration::from_millis(250));
    assert_eq!(relay.reconnection.max_delay.get(), Duration::from_secs(30));
    assert_eq!(
        (relay.queue.max_frames, relay.queue.max_bytes.get()),
        (30, 1_000_000)
    );
    assert_eq!(
        cfg.streams[0].video.as_ref().map(|v| (&v.source, v.codec)),
        Some((&VideoSource::V4l2("/dev/video2".into()), VideoCodec::Mjpeg))
    );
    assert!(cfg.streams[0].audio.is_none());
    let audio = cfg.streams[1].audio.as_ref().expect("audio");
    assert_eq!((audio.codec, audio.frame_ms), (AudioCodec::Pcm, 10));
    assert_eq!(audio.source.to_string(), "alsa:hw:1,0");
    let rs = cfg.for_relay().expect("relay server");
    assert_eq!(rs.duplicate_publisher, DuplicatePublisher::Refuse);
    let tokens = rs.publisher_tokens().expect("tokens");
    assert_eq!(tokens.get("cam-2").map(String::as_str), Some("b"));
    cfg.for_gateway().expect("has streams");
}

#[test]
fn relay_only_file_is_valid_but_not_for_the_gateway() {
    let cfg = parse("[relay_server]\ntokens = { pi = \"x\" }\n");
    let err = cfg.for_gateway().expect_err("no streams");
    assert!(err.to_string().contains("no [[stream]] defined"), "{err}");
    let gw = parse("[[stream]]\nid = \"a\"\n[stream.video]\n");
    assert!(gw.for_relay().is_err());
}

#[test]
fn reload_diff_sees_changed_streams_and_relays_only() {
    let old = parse(
        r#"
[[relay]]
url = "wss://a.example"
token = "t"
[[relay]]
url = "wss://b.example"
token = "t"
[[stream]]
id = "a"
[stream.video]
[[stream]]
id = "b"
[stream.audio]
[[stream]]
id = "c"
[stream.audio]
"#,
    );
    let new = parse(
        r#"
[[relay]]
url = "wss://b.example"
token = "t2"
[[relay]]
url = "wss://a.example"
token = "t"
[[stream]]
id = "b"
[stream.audio]
[[stream]]
id = "a"
[stream.video]
fps = 15
[[stream]]
id = "d"
[stream.video]
"#,
    );
    assert_ne!(old, new);
    let streams = old.diff_streams(&new);
    let ids = |v: &[&StreamConfig]| v.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&streams.added), ["d"]);
    assert_eq!(ids(&streams.removed), ["c"]);
    assert_eq!(streams.changed.len(), 1);
    let (before, after) = streams.changed[0];
    assert_eq!((before.id.as_str(), after.id.as_str()), ("a", "a"));
    assert_eq!(after.video.as_ref().map(|v| v.fps), Some(15));
    // Reordering alone is not a change; a new token is.
    let relays = old.diff_relays(&new);
    assert!(relays.added.is_empty() && relays.removed.is_empty());
    assert_eq!(relays.changed.len(), 1);
    assert_eq!(relays.changed[0].1.token.as_deref(), Some("t2"));
    assert!(old.diff_streams(&old).is_empty() && old.diff_relays(&old).is_empty());
    assert_eq!(old.server, new.server);
}

/// What a rejected config must look like: one line per problem, each at a real line and column
/// of `text`, with no control character that could forge a line or reach the terminal.
fn assert_located(text: &str, e: &ConfigError) -> Result<(), TestCaseError> {
    let shown = e.to_string();
    prop_assert!(!e.problems().is_empty(), "{shown}");
    prop_assert_eq!(shown.lines().count(), e.problems().len(), "{}", shown);
    prop_assert!(
        !shown.contains(|c: char| c.is_control() && c != '\n'),
        "{}",
        shown
    );
    let lines = text.split('\n').count();
    for (p, line) in e.problems().iter().zip(shown.lines()) {
        prop_assert!(p.line >= 1 && p.column >= 1, "{}", line);
        prop_assert!(p.line <= lines, "{}", line);
        let prefix = format!("fuzz.toml:{}:{}: ", p.line, p.column);
        prop_assert!(line.starts_with(&prefix), "{}", line);
    }
    Ok(())
}

/// Pieces of TOML that mutations insert, besides random characters and bytes.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "\"",
    "'",
    "=",
    "\n",
    "#",
    "{",
    "}",
    ",",
    ".",
    "\\u001b[31m",
    "\\n",
    ":99999",
    "\u{1b}",
    "\r",
    "\u{2028}",
    "é",
];

proptest! {
    // 512 cases each in CI; `PROPTEST_CASES=N` for a longer run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    /// Random edits of the example (deleting, duplicating or replacing characters, inserting
    /// TOML punctuation) never panic: they parse or produce located, escaped errors.
    #[test]
    fn mutated_example_never_panics(edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<char>(), any::<prop::sample::Index>()), 1..6)) {
        let mut text: Vec<char> = example_enabled().chars().collect();
        for (at, op, ch, token) in edits {
            let i = at.index(text.len());
            match op {
                0 => { text.remove(i); }
                1 => text.insert(i, ch),
                2 => text[i] = ch,
                _ => { text.splice(i..i, token.get(TOKENS).chars()); }
            }
        }
        let text: String = text.into_iter().collect();
        if let Err(e) = Config::parse(&text, "fuzz.toml", Path::new("/")) {
            assert_located(&text, &e)?;
        }
    }

    /// Random bytes put into the example (invalid UTF-8 among them) are reported at the line and
    /// column of the first bad byte, or parse.
    #[test]
    fn mutated_bytes_are_located(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = example_enabled().into_bytes();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = Config::parse_bytes(&bytes, "fuzz.toml", Path::new("/")) {
            assert_located(&text, &e)?;
            if let Err(bad) = std::str::from_utf8(&bytes) {
                let good = &bytes[..bad.valid_up_to()];
                let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
                prop_assert_eq!(e.problems()[0].line, line);
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        if let Err(e) = Config::parse(&text, "fuzz.toml", Path::new("/")) {
            assert_located(&text, &e)?;
        }
    }
}
