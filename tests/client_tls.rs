//! TLS: a wss/https python-socketio relay with a CA made by the test (rcgen), verified through
//! `tls.ca_file`; the wrong CA and the system roots are rejected with a clear error; the explicit
//! `insecure_skip_verify` opt-in connects.

mod client_common;
mod process_support;

use bytes::Bytes;
use client_common::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use sioedge::client::{Client, ClientError, ClientEvent, ClientOptions};
use sioedge::config::Transport;
use sioedge::socketio::Arg;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA, a server certificate for 127.0.0.1/localhost signed by it, and an unrelated CA.
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = make_ca("sioedge test CA");
        let other = make_ca("some other CA");
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("other.pem"), other.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), server.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), server_key.serialize_pem()).unwrap();
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn make_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn tls_relay(pki: &Pki) -> Relay {
    let cert = pki.path("cert.pem");
    let key = pki.path("key.pem");
    Relay::start(
        Kind::Aiohttp,
        free_port(),
        &["--certfile", &cert, "--keyfile", &key],
    )
}

fn opts(url: String, ca: Option<&str>, transports: &[Transport]) -> ClientOptions {
    let mut o = ClientOptions::new(url);
    o.tls.ca_file = ca.map(|p| Path::new(p).to_path_buf());
    o.transports = transports.to_vec();
    o.reconnection.delay = Duration::from_secs_f64(0.3).into();
    o.reconnection.max_delay = Duration::from_secs_f64(0.5).into();
    o
}

async fn echo_works(
    client: &sioedge::client::ClientHandle,
    events: &mut tokio::sync::mpsc::Receiver<ClientEvent>,
) {
    let args = vec![Arg::Binary(Bytes::from_static(b"\x00secret\xff"))];
    client.emit("/", "echo", args.clone()).unwrap();
    let ev = next_event(
        events,
        T,
        |e| matches!(e, ClientEvent::Event { name, .. } if name == "echo-back"),
    )
    .await
    .expect("echo-back over TLS");
    let ClientEvent::Event { args: back, .. } = ev else {
        unreachable!()
    };
    assert_eq!(back, args);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_verified_with_custom_ca_on_wss_and_https_polling() {
    let pki = Pki::new();
    let relay = tls_relay(&pki);
    for (scheme, transports) in [
        ("wss", &[Transport::Websocket][..]),
        ("https", &[Transport::Polling, Transport::Websocket][..]),
        ("https", &[Transport::Polling][..]),
    ] {
        let url = format!("{scheme}://127.0.0.1:{}", relay.port);
        let (client, mut events) =
            Client::connect(opts(url.clone(), Some(&pki.path("ca.pem")), transports)).unwrap();
        assert!(
            connected(&mut events, "/", T).await,
            "{url} {transports:?}: not connected"
        );
        echo_works(&client, &mut events).await;
        close(&client).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_wrong_ca_is_rejected_with_a_clear_error() {
    let pki = Pki::new();
    let relay = tls_relay(&pki);
    let url = format!("wss://127.0.0.1:{}", relay.port);
    for ca in [Some(pki.path("other.pem")), None] {
        let (client, mut events) =
            Client::connect(opts(url.clone(), ca.as_deref(), &[Transport::Websocket])).unwrap();
        assert!(
            !connected(&mut events, "/", Duration::from_secs(2)).await,
            "{ca:?}: connected"
        );
        let stats = client.stats();
        let err = stats.last_error.clone().unwrap_or_default();
        assert!(
            err.starts_with("TLS: 127.0.0.1:") && err.contains("UnknownIssuer"),
            "{ca:?}: unclear error {err:?}"
        );
        assert!(stats.failed_attempts >= 1, "{stats:?}");
        close(&client).await;
    }
    // A CA file that is not there is a setup error, before any connection.
    let err = Client::connect(opts(
        url.clone(),
        Some("/nonexistent/ca.pem"),
        &[Transport::Websocket],
    ))
    .unwrap_err();
    assert!(
        matches!(&err, ClientError::TlsSetup(e) if e.to_string().contains("/nonexistent/ca.pem")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_insecure_skip_verify_connects() {
    let pki = Pki::new();
    let relay = tls_relay(&pki);
    let mut o = opts(
        format!("wss://127.0.0.1:{}", relay.port),
        None,
        &[Transport::Websocket],
    );
    o.tls.insecure_skip_verify = true;
    let (client, mut events) = Client::connect(o).unwrap();
    assert!(connected(&mut events, "/", T).await);
    echo_works(&client, &mut events).await;
    close(&client).await;
}
