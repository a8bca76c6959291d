//! `sioedge check-config` on broken files: each must exit with status 2 and print the expected
//! problem at the expected FILE:LINE:COL, naming the field.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// (case file, line, column, expected `field: message` text after `FILE:LINE:COL: `, where `{dir}`
/// stands for this directory).
const CASES: &[(&str, usize, usize, &str)] = &[
    (
        "unknown_key.toml",
        3,
        1,
        "server.listne: unknown field `listne`, expected one of `listen`",
    ),
    (
        "top_level_typo.toml",
        3,
        3,
        "streams: unknown field `streams`",
    ),
    (
        "wrong_type.toml",
        4,
        7,
        "stream[0].video.fps: invalid type: string \"thirty\", expected u32",
    ),
    ("syntax_error.toml", 1, 13, "invalid basic string"),
    ("duplicate_key.toml", 3, 1, "duplicate key `id`"),
    (
        "duplicate_stream_id.toml",
        6,
        6,
        "stream[1].id: duplicate stream id \"cam0\" (also stream[0])",
    ),
    (
        "duplicate_relay.toml",
        6,
        7,
        "relay[1].url: duplicate relay wss://relay.example.com namespace /publish (also relay[0])",
    ),
    (
        "pi_encoder_too_wide.toml",
        8,
        9,
        "stream[0].video.width: 2304 pixels: the Raspberry Pi hardware encoder (encoder = \"v4l2h264enc\") \
         takes 32..=1920 in width and height; lower the width, or set encoder = \"auto\" (x264 above 1920)",
    ),
    (
        "fps_zero.toml",
        12,
        7,
        "stream[1].video.fps: 0 is outside 1..=120",
    ),
    (
        "width_odd.toml",
        3,
        19,
        "stream[0].video.width: 641 is not an even number of pixels in 16..=7680",
    ),
    (
        "height_zero.toml",
        4,
        10,
        "stream[0].video.height: 0 is not an even number of pixels in 16..=4320",
    ),
    (
        "bitrate_zero.toml",
        4,
        16,
        "stream[0].video.bitrate_kbps: 0 is outside 16..=100000",
    ),
    (
        "ping_timeout_zero.toml",
        2,
        16,
        "server.ping_timeout: must be greater than 0",
    ),
    (
        "max_payload_small.toml",
        2,
        15,
        "server.max_payload: must be between 1024 and 268435456 (got 100)",
    ),
    (
        "bad_duration.toml",
        2,
        17,
        "server.ping_interval: invalid duration \"25x\"",
    ),
    (
        "bad_listen.toml",
        2,
        10,
        "server.listen: expected an IP address and port such as \"0.0.0.0:8080\" or \"[::]:8080\" \
         (got \"localhost:8080\")",
    ),
    (
        "relay_scheme.toml",
        2,
        7,
        "relay[0].url: scheme must be http, https, ws or wss (got \"ftp\")",
    ),
    (
        "relay_url_path.toml",
        2,
        7,
        "relay[0].url: no path allowed in \"https://relay.example.com/socket.io/\": put it in socketio_path",
    ),
    (
        "relay_namespace_comma.toml",
        3,
        13,
        "relay[0].namespace: \"/cams,all\" contains ',' or '?'",
    ),
    (
        "token_and_token_file.toml",
        4,
        14,
        "relay[0].token_file: set either token or token_file, not both",
    ),
    (
        "missing_token_file.toml",
        3,
        14,
        "relay[0].token_file: {dir}/does-not-exist.token: cannot open: No such file or directory",
    ),
    (
        "bad_transports.toml",
        3,
        14,
        "relay[0].transports: must be [\"websocket\"], [\"polling\", \"websocket\"] or [\"polling\"]",
    ),
    (
        "unknown_transport.toml",
        3,
        15,
        "relay[0].transports[0]: unknown variant `webtransport`",
    ),
    (
        "reconnect_max_below_delay.toml",
        5,
        13,
        "relay[0].reconnection.max_delay: must not be shorter than delay (2s < 10s)",
    ),
    (
        "stream_without_tracks.toml",
        1,
        1,
        "stream[0]: a stream needs a [stream.video] or a [stream.audio] table",
    ),
    (
        "nothing_to_run.toml",
        1,
        1,
        "stream: nothing to run: define at least one [[stream]]",
    ),
    (
        "unknown_video_source.toml",
        4,
        10,
        "stream[0].video.source: unknown video source \"/dev/video0\"",
    ),
    (
        "audio_codec_on_video.toml",
        4,
        9,
        "stream[0].video.codec: unknown variant `opus`, expected `h264` or `mjpeg`",
    ),
    (
        "encoder_codec_mismatch.toml",
        5,
        11,
        "stream[0].video.encoder: X264 is an H.264 encoder but codec = \"mjpeg\"",
    ),
    (
        "opus_sample_rate.toml",
        5,
        15,
        "stream[0].audio.sample_rate: Opus supports 8000, 12000, 16000, 24000 or 48000, not 44100",
    ),
    (
        "video_bitrate_unit.toml",
        4,
        1,
        "stream[0].video.bitrate: unknown field `bitrate`, expected one of",
    ),
    (
        "pipeline_appsink.toml",
        4,
        12,
        "stream[0].video.pipeline: must produce raw media only",
    ),
    (
        "duplicate_track_id.toml",
        6,
        6,
        "stream[0].audio.id: duplicate track id \"main\"",
    ),
    (
        "bad_stream_id.toml",
        2,
        6,
        "stream[0].id: must be 1 to 64 characters",
    ),
    (
        "tls_missing_key.toml",
        3,
        7,
        "server.tls.key: missing: give cert and key files, or set self_signed = true",
    ),
    (
        "relay_server_no_tokens.toml",
        1,
        1,
        "relay_server.tokens: no publisher tokens",
    ),
    (
        "relay_server_bad_adapter.toml",
        3,
        11,
        "relay_server.adapter: not a usable Redis URL \"http://127.0.0.1:6379/0\"",
    ),
    (
        "relay_server_bad_tokens_file.toml",
        2,
        15,
        "relay_server.tokens_file: invalid tokens file",
    ),
    (
        "relay_server_bad_duration.toml",
        3,
        17,
        "relay_server.ping_interval: invalid duration \"25x\"",
    ),
    (
        "relay_server_unknown_key.toml",
        3,
        1,
        "relay_server.listne: unknown field `listne`, expected one of `listen`",
    ),
    (
        "relay_server_zero_streams.toml",
        3,
        29,
        "relay_server.max_streams_per_publisher: must be between 1 and 100000 (got 0)",
    ),
    (
        "same_namespaces.toml",
        3,
        23,
        "relay_server.publisher_namespace: must differ from viewer_namespace (both \"/\")",
    ),
    (
        "bad_log_level.toml",
        2,
        9,
        "log.level: expected off, error, warn, info, debug, trace",
    ),
    ("invalid_utf8.toml", 4, 26, "invalid UTF-8 (byte 0xFF)"),
    (
        "value_newline.toml",
        2,
        6,
        "stream[0].id: must be 1 to 64 characters among A-Z a-z 0-9 - _ . \
         (got \"cam0\\nstream[0].video.fps: forged line\")",
    ),
    (
        "value_ansi.toml",
        1,
        10,
        "device: must be 1 to 64 characters among A-Z a-z 0-9 - _ . \
         (got \"\\u{1b}[2J\\u{1b}[31mpwned\")",
    ),
    (
        "key_ansi.toml",
        2,
        1,
        "server.\\u{1b}[31mlisten: unknown field `\\u{1b}[31mlisten`, expected one of `listen`",
    ),
    (
        "relay_url_port.toml",
        2,
        7,
        "relay[0].url: port must be between 1 and 65535 (got 99999)",
    ),
    (
        "cors_origin_port.toml",
        2,
        47,
        "server.cors_origins[1]: port must be between 1 and 65535 (got 70000)",
    ),
    (
        "listen_port.toml",
        2,
        10,
        "server.listen: port must be between 0 and 65535 (got 99999)",
    ),
    (
        "relay_server_adapter_port.toml",
        3,
        11,
        "relay_server.adapter: port must be between 1 and 65535 (got 99999)",
    ),
    (
        "unclosed_table_header.toml",
        1,
        8,
        "unclosed table header `[server`, expected `]`",
    ),
    (
        "relay_socketio_path_crlf.toml",
        3,
        17,
        "relay[0].socketio_path: not a URL path \
         (got \"/socket.io/ HTTP/1.1\\r\\nX-Injected: 1\")",
    ),
    (
        "relay_server_tokens_dev_zero.toml",
        2,
        15,
        "relay_server.tokens_file: /dev/zero: not a regular file (character device)",
    ),
];

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config_cases")
}

/// Runs `sioedge check-config FILE`; a run that takes longer than 30 s (a file read without end)
/// is killed (its status then has no code).
fn check_config(file: &Path) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_sioedge"))
        .arg("check-config")
        .arg(file)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sioedge check-config");
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let out = rx.recv_timeout(Duration::from_secs(30)).or_else(|_| {
        let _ = kill(pid, Signal::SIGKILL);
        rx.recv()
    });
    out.expect("check-config's output")
        .expect("wait for sioedge check-config")
}

/// `text` with every `{dir}` replaced by the cases directory.
fn in_cases_dir(text: &str) -> String {
    text.replace("{dir}", &cases_dir().display().to_string())
}

#[test]
fn every_broken_file_is_reported_with_location_and_status_2() {
    let mut failures = Vec::new();
    for &(name, line, column, expected) in CASES {
        let file = cases_dir().join(name);
        let out = check_config(&file);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let want = format!(
            "{}:{line}:{column}: {}",
            file.display(),
            in_cases_dir(expected)
        );
        // Every line is a problem in a file of this directory: a value cannot forge a line, and
        // no control character (an ANSI escape) reaches the terminal.
        let dir = cases_dir().display().to_string();
        let forged = stderr
            .lines()
            .any(|l| !l.starts_with(&dir) || l.contains(char::is_control));
        if out.status.code() != Some(2)
            || forged
            || !out.stdout.is_empty()
            || !stderr.lines().any(|l| l.starts_with(&want))
        {
            failures.push(format!(
                "{name}: status {:?}\n  want: {want}\n  got:  {}{}",
                out.status.code(),
                stderr.trim().replace('\n', "\n        "),
                String::from_utf8_lossy(&out.stdout).trim(),
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_table_covers_every_case_file() {
    let mut files: Vec<String> = std::fs::read_dir(cases_dir())
        .expect("read tests/config_cases")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = CASES.iter().map(|c| c.0.to_owned()).collect();
    listed.sort();
    assert_eq!(files, listed);
    assert!(CASES.len() >= 15);
}

#[test]
fn problems_inside_a_tokens_file_name_that_file() {
    let file = cases_dir().join("relay_server_bad_tokens_file.toml");
    let out = check_config(&file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tokens = cases_dir().join("bad.tokens");
    let want = format!(
        "{}:2:10: garage: a device needs a non-empty token",
        tokens.display()
    );
    assert!(stderr.lines().any(|l| l == want), "{stderr}");
}

#[test]
fn all_problems_of_a_file_are_listed_in_file_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("many.toml");
    std::fs::write(
        &file,
        "[server]\nping_interval = 0\n\n[[stream]]\nid = \"a b\"\n[stream.video]\nfps = 500\nwidth = 15\n[stream.audio]\nchannels = 3\n",
    )
    .expect("write");
    let out = check_config(&file);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let locations: Vec<&str> = stderr
        .lines()
        .map(|l| l.split(": ").next().unwrap_or(""))
        .collect();
    let f = file.display();
    assert_eq!(
        locations,
        [
            format!("{f}:2:17"),
            format!("{f}:5:6"),
            format!("{f}:8:9"),
            format!("{f}:10:12"),
        ],
        "{stderr}"
    );
}

#[test]
fn unreadable_file_is_status_2() {
    let out = check_config(Path::new("/nonexistent/sioedge.toml"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/sioedge.toml: cannot open: No such file or directory"),
        "{stderr}"
    );
}

/// A config file, or a file it names, that is too big or not a regular file (a FIFO that would
/// block, `/dev/zero` that never ends) is refused before it is read, at the field that names it.
#[test]
fn oversized_and_special_files_are_refused_without_reading_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big");
    // 2 MiB of zeros, sparse: costs no disk.
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(2 << 20))
        .expect("sparse file");
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());

    for (file, problem) in [
        (&big, "larger than 1 MiB"),
        (&fifo, "not a regular file (FIFO)"),
    ] {
        let out = check_config(file);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr, format!("{}: {problem}\n", file.display()));
    }

    let d = dir.path().display();
    let stream = "[[stream]]\nid = \"a\"\n[stream.audio]\n";
    let relay = "[[relay]]\nurl = \"wss://relay.example.com\"\n";
    let cases = [
        (
            "[relay_server]\ntokens_file = \"big\"\n".to_owned(),
            format!("2:15: relay_server.tokens_file: {d}/big: larger than 1 MiB"),
        ),
        (
            "[relay_server]\ntokens_file = \"fifo\"\n".to_owned(),
            format!("2:15: relay_server.tokens_file: {d}/fifo: not a regular file (FIFO)"),
        ),
        (
            format!("{relay}token_file = \"big\"\n{stream}"),
            format!("3:14: relay[0].token_file: {d}/big: larger than 1 MiB"),
        ),
        (
            format!("{relay}token = \"t\"\ntls = {{ ca_file = \"fifo\" }}\n{stream}"),
            format!("4:19: relay[0].tls.ca_file: {d}/fifo: not a regular file (FIFO)"),
        ),
        (
            format!("[server]\ntls = {{ cert = \"big\", key = \"fifo\" }}\n{stream}"),
            format!("2:16: server.tls.cert: {d}/big: larger than 1 MiB"),
        ),
        (
            format!("[server]\ntls = {{ cert = \"big\", key = \"fifo\" }}\n{stream}"),
            format!("2:29: server.tls.key: {d}/fifo: not a regular file (FIFO)"),
        ),
    ];
    for (text, want) in cases {
        let file = dir.path().join("c.toml");
        std::fs::write(&file, &text).expect("write");
        let out = check_config(&file);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let want = format!("{}:{want}", file.display());
        assert_eq!(out.status.code(), Some(2), "{text}\n{stderr}");
        assert!(
            stderr.lines().any(|l| l == want),
            "{text}\nwant {want}\ngot {stderr}"
        );
    }
}

/// The relay's `token_file`, re-read at each connection attempt, is read with the same bound.
#[test]
fn a_token_file_is_read_with_a_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("t"), "tok\n").expect("write");
    let cfg = sioedge::config::Config::parse(
        "[[relay]]\nurl = \"wss://relay.example.com\"\ntoken_file = \"t\"\n[[stream]]\nid = \"a\"\n[stream.audio]\n",
        "c.toml",
        dir.path(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut relay = cfg.relays[0].clone();
    assert_eq!(relay.read_token().ok().flatten().as_deref(), Some("tok"));
    relay.token_file = Some("/dev/zero".into());
    let e = relay.read_token().expect_err("not read");
    assert_eq!(e.to_string(), "not a regular file (character device)");
}
