//! `sioedge relay` as a systemd service, like the gateway: `sd_notify` READY/WATCHDOG/STOPPING over
//! `$NOTIFY_SOCKET`, and SIGHUP re-reads the publisher tokens (RELOADING, then READY) so a device
//! whose token was added can publish without a restart.

mod client_common;
mod process_support;
#[path = "peers/relay/support.rs"]
mod relay_support;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use process_support::NotifySocket;
use relay_support::{Relay, relay_config};
use serde_json::json;
use sioedge::client::{Client, ClientEvent};
use std::time::{Duration, Instant};

/// Whether the relay accepts `device` with `token` on its publisher namespace.
async fn publisher_accepted(relay: &Relay, device: &str, token: &str) -> bool {
    let mut o = sioedge::client::ClientOptions::new(relay.url());
    o.namespace = "/publish".into();
    o.auth = Some(json!({ "device": device, "token": token }));
    o.reconnection.enabled = false;
    let (client, mut events) = Client::connect(o).expect("client options");
    let verdict = client_common::next_event(&mut events, Duration::from_secs(10), |e| {
        matches!(
            e,
            ClientEvent::Connected { .. } | ClientEvent::ConnectError { .. }
        )
    })
    .await;
    client_common::close(&client).await;
    matches!(verdict, Some(ClientEvent::Connected { .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifies_systemd_and_reloads_tokens_on_sighup() {
    let sock = NotifySocket::new();
    let relay = Relay::start_with(
        &relay_config(&[("pi", "t1")], None),
        &[("NOTIFY_SOCKET", sock.path()), ("WATCHDOG_USEC", "1000000")],
    );
    let ready = sock.next_but_pings();
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    assert!(
        ready.contains(&relay.url()),
        "READY names the URL: {ready:?}"
    );

    // WATCHDOG_USEC=1 s: pings every 0.5 s from the main loop.
    let start = Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_millis(2200) {
        assert_eq!(sock.next().as_deref(), Some("WATCHDOG=1"));
        pings += 1;
    }
    assert!(
        (4..=7).contains(&pings),
        "{pings} pings in {:?}",
        start.elapsed()
    );

    assert!(publisher_accepted(&relay, "pi", "t1").await);
    assert!(!publisher_accepted(&relay, "cam2", "t2").await);
    std::fs::write(
        relay.config_path(),
        relay_config(&[("pi", "t1"), ("cam2", "t2")], None),
    )
    .expect("rewrite config");
    let pid = Pid::from_raw(relay.proc.0.id() as i32);
    kill(pid, Signal::SIGHUP).expect("SIGHUP");
    let reloading = sock.next_but_pings();
    assert!(reloading.starts_with("RELOADING=1\n"), "{reloading:?}");
    let ready = sock.next_but_pings();
    assert!(
        ready.starts_with("READY=1\n") && ready.contains("2 devices"),
        "{ready:?}"
    );
    assert!(publisher_accepted(&relay, "cam2", "t2").await);

    kill(pid, Signal::SIGTERM).expect("SIGTERM");
    let stopping = sock.next_but_pings();
    assert!(stopping.starts_with("STOPPING=1\n"), "{stopping:?}");
    let mut relay = relay;
    let status = (relay.proc)
        .exit_before(Instant::now() + Duration::from_secs(5))
        .expect("exit within 5 s of SIGTERM");
    assert!(status.success(), "{status}");
}
