//! `[server.tls]` on the gateway (`sioedge run`): the self-signed pair made on first start and
//! reused, the page over HTTPS, Socket.IO over wss and https polling with our client trusting
//! the generated certificate, clients that never finish a handshake beside a good one, plain HTTP
//! redirected to https://, and startup errors that name the file.

mod client_common;
mod gateway_support;
mod process_support;
mod server_support;

use gateway_support::{Gateway, https_get, test_config};
use serde_json::json;
use server_support::run_with_timeout;
use sioedge::client::{Client, ClientEvent, ClientOptions};
use sioedge::config::Transport;
use sioedge::socketio::Arg;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A self-signed pair kept beside the gateway's config file.
const TLS_BESIDE_CONFIG: &str =
    "tls = { self_signed = true, cert = \"cert.pem\", key = \"key.pem\" }";

fn cert_of(gw: &Gateway) -> PathBuf {
    gw.config_path.with_file_name("cert.pem")
}

fn assert_page(response: &str) {
    assert!(response.starts_with("HTTP/1.1 200"), "{response:.200}");
    assert!(response.contains("<!doctype html>"), "{response:.400}");
}

#[test]
fn self_signed_pair_is_made_once_with_a_private_key_and_reused() {
    let state = tempfile::tempdir().expect("tempdir");
    let dir = state.path().to_str().expect("utf-8 temp path");
    let config = test_config("", "tls = { self_signed = true }");
    let env = [("RUST_LOG", "warn"), ("STATE_DIRECTORY", dir)];
    let (cert, key) = (
        state.path().join("tls/cert.pem"),
        state.path().join("tls/key.pem"),
    );

    // check-config tells where the pair will be kept.
    let file = state.path().join("check.toml");
    std::fs::write(&file, &config).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_sioedge"))
        .arg("check-config")
        .arg(&file)
        .env("STATE_DIRECTORY", dir)
        .output()
        .expect("run check-config");
    let said = String::from_utf8_lossy(&out.stdout);
    let want = format!("(https, self-signed certificate {})", cert.display());
    assert!(said.contains(&want), "{said}");

    let gw = Gateway::start_with(&config, &env, Stdio::inherit());
    assert!(gw.https, "the gateway prints an https:// URL");
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&key), 0o600, "key file mode");
    assert_eq!(mode(&state.path().join("tls")), 0o700, "key directory mode");
    assert_eq!(mode(&cert) & 0o022, 0, "certificate not writable by others");
    // The served certificate is the one on disk: it is the only CA the client trusts.
    assert_page(&https_get(gw.addr, Some(&cert), "/").expect("verified HTTPS GET"));
    let first = std::fs::read(&cert).expect("read cert");
    let key_time = std::fs::metadata(&key).expect("stat key").mtime_nsec();
    drop(gw);

    let gw = Gateway::start_with(&config, &env, Stdio::inherit());
    assert_page(&https_get(gw.addr, Some(&cert), "/").expect("same certificate on restart"));
    assert_eq!(std::fs::read(&cert).expect("read cert"), first);
    assert_eq!(
        std::fs::metadata(&key).expect("stat key").mtime_nsec(),
        key_time
    );
}

/// Connects our Socket.IO client with only `cert` trusted, watches `cam0` and counts video
/// frames for a second.
async fn watch_video(url: String, cert: &Path, transports: &[Transport]) -> usize {
    let mut o = ClientOptions::new(url.clone());
    o.tls.ca_file = Some(cert.to_owned());
    o.transports = transports.to_vec();
    let (client, mut events) = Client::connect(o).expect("client options");
    let t = Duration::from_secs(10);
    assert!(
        client_common::connected(&mut events, "/", t).await,
        "{url} {transports:?}: not connected"
    );
    let ack = client
        .emit_with_ack("/", "watch", vec![Arg::Json(json!({"stream": "cam0"}))], t)
        .await
        .expect("watch ack");
    assert!(!ack.is_empty(), "watch answered {ack:?}");
    let end = tokio::time::Instant::now() + Duration::from_secs(1);
    let mut video = 0;
    while let Some(ev) = client_common::next_event(
        &mut events,
        end - tokio::time::Instant::now(),
        |e| matches!(e, ClientEvent::Event { name, .. } if name == "media"),
    )
    .await
    {
        if let ClientEvent::Event { args, .. } = ev
            && let [Arg::Json(meta), Arg::Binary(data)] = &args[..]
            && meta["track"] == "video"
        {
            assert!(!data.is_empty());
            video += 1;
        }
    }
    client_common::close(&client).await;
    video
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_and_socketio_over_tls_with_the_generated_certificate_trusted() {
    let gw = tokio::task::spawn_blocking(|| Gateway::start(&test_config("", TLS_BESIDE_CONFIG)))
        .await
        .expect("gateway");
    let cert = cert_of(&gw);
    let addr = gw.addr;
    let times = tokio::task::spawn_blocking(move || {
        let mut times = Vec::new();
        for _ in 0..20 {
            let t0 = Instant::now();
            assert_page(&https_get(addr, Some(&cert), "/").expect("HTTPS GET /"));
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        times
    })
    .await
    .expect("GETs");
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    eprintln!(
        "HTTPS GET / on a new connection (TCP + TLS handshake + page): p50 {:.2} ms, max {:.2} ms over {}",
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1],
        sorted.len()
    );

    let port = gw.addr.port();
    let cert = cert_of(&gw);
    for (scheme, transports) in [
        ("wss", &[Transport::Websocket][..]),
        ("https", &[Transport::Polling, Transport::Websocket][..]),
        ("https", &[Transport::Polling][..]),
    ] {
        let video = watch_video(format!("{scheme}://127.0.0.1:{port}"), &cert, transports).await;
        // 30 fps for a second, less the start-up of the first GOP: clearly streaming.
        assert!(
            video >= 15,
            "{scheme} {transports:?}: {video} video frames in 1 s"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_and_plain_http_do_not_hold_up_a_good_client_and_http_is_redirected() {
    let gw = tokio::task::spawn_blocking(|| Gateway::start(&test_config("", TLS_BESIDE_CONFIG)))
        .await
        .expect("gateway");
    let addr = gw.addr;
    let connect = || {
        let s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(15))).ok();
        s
    };
    // 40 clients that connect and say nothing, and one that stops half-way through a ClientHello.
    let mut stalled: Vec<std::net::TcpStream> = (0..40).map(|_| connect()).collect();
    let mut half = connect();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .expect("partial ClientHello");
    stalled.push(half);
    let opened = Instant::now();

    // Plain HTTP on the TLS port: redirected to https:// at once (or told off without a Host).
    for (request, answer) in [
        (
            "GET /?watch=cam0 HTTP/1.1\r\nHost: camera.lan:8443\r\n\r\n",
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: https://camera.lan:8443/?watch=cam0\r\n",
        ),
        ("GET / HTTP/1.0\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"),
    ] {
        let mut plain = connect();
        plain.write_all(request.as_bytes()).expect("plain request");
        let t0 = Instant::now();
        let mut got = String::new();
        plain.read_to_string(&mut got).expect("plain HTTP answered");
        assert!(got.starts_with(answer), "{request:?} got {got:?}");
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "plain HTTP took {:?}",
            t0.elapsed()
        );
    }

    // Meanwhile a good client gets its page quickly and its video at the full rate.
    let cert = cert_of(&gw);
    let t0 = Instant::now();
    let page = tokio::task::spawn_blocking({
        let cert = cert.clone();
        move || https_get(addr, Some(&cert), "/")
    })
    .await
    .expect("GET");
    assert_page(&page.expect("HTTPS GET beside stalled clients"));
    let page_time = t0.elapsed();
    assert!(
        page_time < Duration::from_secs(1),
        "page took {page_time:?}"
    );
    let video = watch_video(format!("wss://{addr}"), &cert, &[Transport::Websocket]).await;
    assert!(
        video >= 15,
        "{video} video frames in 1 s beside stalled clients"
    );
    eprintln!(
        "beside 41 stalled handshakes: HTTPS GET / in {:.1} ms, {video} video frames in 1 s over wss",
        page_time.as_secs_f64() * 1000.0
    );

    // The server gives up on the stalled handshakes (10 s) and closes them.
    tokio::task::spawn_blocking(move || {
        for mut s in stalled {
            // Until the server closes it: EOF (or a reset), not our 15 s read timeout.
            let mut sink = Vec::new();
            if let Err(e) = s.read_to_end(&mut sink) {
                assert!(
                    !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                    "a stalled handshake was still open after {:?}",
                    opened.elapsed()
                );
            }
        }
        let waited = opened.elapsed();
        assert!(
            waited < Duration::from_secs(14),
            "stalled handshakes closed after {waited:?}"
        );
        eprintln!("stalled handshakes closed by the server after {waited:?}");
    })
    .await
    .expect("stalled clients");
}

/// Runs `sioedge <args>` to its exit (10 s at most); returns the exit code and stderr.
fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sioedge"));
    cmd.args(args).env("RUST_LOG", "warn");
    let out = run_with_timeout(cmd, Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stderr)
}

#[test]
fn unusable_certificate_or_key_stops_the_start_with_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |name: &str| dir.path().join(name).display().to_string();
    // Two valid pairs, to mismatch them.
    for pair in ["a", "b"] {
        sioedge::server::TlsConfig::load_or_generate(
            Path::new(&p(&format!("{pair}.crt"))),
            Path::new(&p(&format!("{pair}.key"))),
        )
        .expect("generate a pair");
    }
    std::fs::write(p("garbage.pem"), "not a certificate\n").expect("write");
    let cases = [
        // (cert, key, the file the error must name, what it must say)
        (
            p("missing.pem"),
            p("a.key"),
            p("missing.pem"),
            "cannot open",
        ),
        (
            p("garbage.pem"),
            p("a.key"),
            p("garbage.pem"),
            "no CERTIFICATE block found",
        ),
        (
            p("a.crt"),
            p("garbage.pem"),
            p("garbage.pem"),
            "no PRIVATE KEY block found",
        ),
        (
            p("a.crt"),
            p("b.key"),
            p("b.key"),
            "does not fit the certificate",
        ),
    ];
    for (cert, key, file, says) in &cases {
        let tls = format!("tls = {{ cert = {cert:?}, key = {key:?} }}");
        let relay =
            format!("[relay_server]\nlisten = \"127.0.0.1:0\"\ntokens = {{ pi = \"t\" }}\n{tls}\n");
        for (command, text, section) in [
            ("run", test_config("", &tls), "server.tls"),
            ("relay", relay, "relay_server.tls"),
        ] {
            let config = dir.path().join(format!("{command}.toml"));
            std::fs::write(&config, text).expect("write config");
            let config = config.display().to_string();
            for args in [
                vec![command, "--config", &config],
                vec!["check-config", &config],
            ] {
                let (code, stderr) = run_to_exit(&args);
                assert_eq!(code, Some(2), "{args:?}: {stderr}");
                assert!(
                    stderr.contains(section)
                        && stderr.contains(file.as_str())
                        && stderr.contains(says),
                    "{args:?} with cert {cert} key {key}: {stderr}"
                );
            }
        }
    }

    // Validation passes (/proc is a directory) but the pair cannot be written there: the start
    // fails, naming the file, and nothing is served.
    let config = dir.path().join("unwritable.toml");
    std::fs::write(
        &config,
        test_config(
            "",
            "tls = { self_signed = true, cert = \"/proc/sioedge-test/cert.pem\", key = \"/proc/sioedge-test/key.pem\" }",
        ),
    )
    .expect("write config");
    let (code, stderr) = run_to_exit(&["run", "--config", &config.display().to_string()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("[server.tls] cannot write /proc/sioedge-test/key.pem"),
        "{stderr}"
    );
}
