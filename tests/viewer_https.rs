//! The viewer page over HTTPS on a LAN host name, in headless Chromium: `https://camera.lan:PORT/`
//! (mapped to 127.0.0.1 with `--host-resolver-rules`) is a secure context, so the page takes the
//! WebCodecs path and decodes video at the source rate. Over plain HTTP the same name is not
//! secure and gets no WebCodecs (tests/viewer_browser.rs `mse_on_plain_http_origin`): this is
//! what `[server.tls]` is for.
//!
//! The browser trusts the gateway's self-signed certificate the way a kiosk would: by pinning
//! its public key (`--ignore-certificate-errors-spki-list`), which also proves the page was served
//! with the key on disk.

mod browser_support;
mod gateway_support;
mod process_support;

use base64::Engine;
use browser_support::{Browser, assert_decoded_rates};
use gateway_support::{Gateway, test_config};
use rcgen::PublicKeyData;
use std::time::Duration;

const FPS: f64 = 30.0;

/// base64(SHA-256(SubjectPublicKeyInfo)) of a PEM private key's public half, as Chromium's
/// `--ignore-certificate-errors-spki-list` takes it.
fn spki_pin(key_pem: &str) -> String {
    let key = rcgen::KeyPair::from_pem(key_pem).expect("PEM key");
    let digest = ring::digest::digest(&ring::digest::SHA256, &key.subject_public_key_info());
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

#[test]
fn webcodecs_over_https_on_a_lan_host_name() {
    let gw = Gateway::start(&test_config(
        "codec = \"h264\"",
        "tls = { self_signed = true, cert = \"cert.pem\", key = \"key.pem\" }",
    ));
    let key = std::fs::read_to_string(gw.config_path.with_file_name("key.pem")).expect("key");
    let pin = format!("--ignore-certificate-errors-spki-list={}", spki_pin(&key));
    let mut b = Browser::launch(&["--host-resolver-rules=MAP camera.lan 127.0.0.1", &pin]);

    let url = format!("https://camera.lan:{}/", gw.addr.port());
    let first = b.open_and_play(&url, "cam0");
    assert_eq!(b.eval("location.href"), url.as_str());
    assert_eq!(b.eval("window.isSecureContext"), true);
    assert_eq!(b.eval("typeof VideoDecoder"), "function");
    assert_eq!(b.eval("window.sioedge.path"), "webcodecs");
    assert_eq!(first["path"], "webcodecs+webcodecs-audio");
    let nav = b.eval(
        "(() => { const n = performance.getEntriesByType('navigation')[0]; const ms = (x) => Math.round(x * 10) / 10; return { tls: ms(n.connectEnd - n.secureConnectionStart), ttfb: ms(n.responseStart - n.startTime), load: ms(n.loadEventEnd - n.startTime), bytes: n.transferSize, proto: n.nextHopProtocol }; })()",
    );
    assert_eq!(nav["proto"], "http/1.1", "ALPN: {nav}");

    std::thread::sleep(Duration::from_secs(1)); // past the late-joiner GOP burst
    let mark = "(() => { const p = window.sioedge.players.cam0; return [performance.now(), p.videoDecoded, p.audioDecoded, p.latencyP50]; })()";
    let m0 = b.eval(mark);
    std::thread::sleep(Duration::from_secs(5));
    let m1 = b.eval(mark);
    let at = |m: &serde_json::Value, i: usize| m[i].as_f64().unwrap_or(0.0);
    let secs = (at(&m1, 0) - at(&m0, 0)) / 1000.0;
    let video = at(&m1, 1) - at(&m0, 1);
    let audio = at(&m1, 2) - at(&m0, 2);
    eprintln!(
        "https://camera.lan: TLS handshake {} ms, page load {} ms (first byte {} ms, {} bytes), first picture {} ms after the player started; \
         {video} video frames in {secs:.2} s ({:.1} fps), {audio} audio frames, latency p50 {} ms",
        nav["tls"],
        nav["load"],
        nav["ttfb"],
        nav["bytes"],
        first["firstPictureMs"],
        video / secs,
        m1[3]
    );
    assert_decoded_rates(secs, video, audio, FPS);
}
