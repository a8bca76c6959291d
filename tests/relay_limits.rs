//! `sioedge relay` against a hostile publisher (issue 18): per-publisher limits on streams and on
//! cached bytes, stream ids checked with the config's rule. A publisher past a limit is told
//! which one, and nothing else changes: what it had stays, other devices are unaffected. The
//! flood itself is tests/peers/relay/py_flood.py (python-socketio).

mod gateway_support;
mod process_support;
#[path = "peers/relay/support.rs"]
mod relay_support;

use gateway_support::{Peer, Viewer};
use relay_support::{Relay, relay_config};
use serde_json::Value;
use std::time::Duration;

/// A relay for devices pi1 and pi2 with `limits` (`[relay_server]` lines).
fn relay_with(limits: &str) -> Relay {
    let config = relay_config(&[("pi1", "t1"), ("pi2", "t2")], None);
    Relay::start(&config.replace(
        "[relay_server.tokens]",
        &format!("{limits}\n[relay_server.tokens]"),
    ))
}

/// Runs py_flood.py as `device` with `args`; returns it and its `done` line (30 s).
fn flood(relay: &Relay, device: &str, args: &[&str]) -> (Peer, Value) {
    let token = if device == "pi1" { "t1" } else { "t2" };
    let url = relay.url();
    let mut all = vec!["--url", &url, "--token", token, "--device", device];
    all.extend(args);
    let mut p = Peer::python("relay/py_flood.py", &all);
    let done = p.wait_for("done", Duration::from_secs(30));
    (p, done)
}

/// The stream ids the relay lists.
async fn listed(relay: &Relay) -> Vec<String> {
    let mut v = Viewer::connect(relay.addr).await;
    let ack = v.call("streams", Value::Null).await;
    let mut ids: Vec<String> = ack
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["stream"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

fn messages<'a>(p: &'a Peer, ev: &str, field: &str) -> Vec<&'a str> {
    p.all(ev).iter().filter_map(|v| v[field].as_str()).collect()
}

/// Checks a flood's counts, and that each refusal's error passes `check`.
fn assert_refused(p: &Peer, done: &Value, counts: (u64, u64), check: impl Fn(&str) -> bool) {
    let got = (done["accepted"].as_u64(), done["refused"].as_u64());
    assert_eq!(got, (Some(counts.0), Some(counts.1)), "{done}");
    for e in messages(p, "refused", "error") {
        assert!(check(e), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_past_its_stream_limit_is_refused_by_name_and_nothing_else_changes() {
    let relay = relay_with("max_streams_per_publisher = 3");
    let (p, done) = flood(&relay, "pi1", &["--streams", "5", "--size", "2000"]);
    assert_refused(&p, &done, (3, 2), |e| {
        e.contains("max_streams_per_publisher = 3") && e.contains("stream limit")
    });
    // The three it had stay; another device is not limited by pi1's streams.
    let (_, done) = flood(&relay, "pi2", &["--streams", "3", "--size", "2000"]);
    assert_eq!(done["refused"], 0, "{done}");
    assert_eq!(
        listed(&relay).await,
        ["pi1/s0", "pi1/s1", "pi1/s2", "pi2/s0", "pi2/s1", "pi2/s2"]
    );
    // Without acks, the refusal comes as an `error` event naming the limit.
    let (p, _) = flood(
        &relay,
        "pi1",
        &["--no-ack", "--id", "\"s0\"", "--id", "\"s9\""],
    );
    let errors = messages(&p, "error", "message");
    assert_eq!(errors.len(), 1, "{:?}", p.seen);
    assert!(
        errors[0].contains("max_streams_per_publisher"),
        "{errors:?}"
    );
    assert!(!listed(&relay).await.contains(&"pi1/s9".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_stream_ids_follow_the_config_id_rule() {
    let relay = relay_with("");
    let long = format!("\"{}\"", "x".repeat(10_000));
    let ids = [
        "\"\"",
        "\"../x\"",
        "\"a\\u0000b\"",
        "\"a/b\"",
        &long,
        "\"ok-1.cam_0\"",
    ];
    let mut args = Vec::new();
    for id in &ids {
        args.extend(["--id", id]);
    }
    let (p, done) = flood(&relay, "pi1", &args);
    // The 10,000-character id is not echoed whole.
    assert_refused(&p, &done, (1, 5), |e| {
        e.starts_with("invalid stream id")
            && e.contains("1 to 64 characters among")
            && e.len() < 300
    });
    assert_eq!(listed(&relay).await, ["pi1/ok-1.cam_0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_past_its_cache_budget_is_told_once_and_keyframes_past_it_are_not_cached() {
    // 100 KiB: three 30 KB keyframes fit, the fourth and fifth do not.
    let relay = relay_with("max_cache_per_publisher = \"100KiB\"");
    let url = relay.url();
    let args = [
        "--url",
        &url,
        "--token",
        "t1",
        "--device",
        "pi1",
        "--streams",
        "5",
    ];
    let mut p = Peer::python(
        "relay/py_flood.py",
        &[&args[..], &["--size", "30000", "--linger", "3"]].concat(),
    );
    p.wait_for("flooded", Duration::from_secs(30));
    let status: Value = serde_json::from_str(&http_get(&relay, "/api/status")).expect("json");
    let tracks: Vec<(u64, u64)> = status["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            let t = &s["tracks"][0];
            (
                t["framesIn"].as_u64().unwrap_or(0),
                t["cacheBytes"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    // Every keyframe was relayed; the first three are cached whole, the other two not at all.
    assert_eq!(tracks.len(), 5, "{status}");
    assert!(tracks.iter().all(|t| t.0 == 1), "{status}");
    assert!(tracks[..3].iter().all(|t| t.1 > 30_000), "{status}");
    assert!(tracks[3..].iter().all(|t| t.1 == 0), "{status}");
    assert!(tracks.iter().map(|t| t.1).sum::<u64>() <= 100 << 10);
    p.wait_for("done", Duration::from_secs(10));
    let errors = messages(&p, "error", "message");
    assert_eq!(errors.len(), 1, "told once: {errors:?}");
    assert!(
        errors[0].contains("max_cache_per_publisher") && errors[0].contains("102400 bytes"),
        "{errors:?}"
    );
    // pi2 has a budget of its own.
    let (p2, _) = flood(&relay, "pi2", &["--streams", "3", "--size", "30000"]);
    assert!(
        messages(&p2, "error", "message").is_empty(),
        "{:?}",
        p2.seen
    );
}

fn http_get(relay: &Relay, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(relay.addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}
