//! The publisher client against our own server (`sioedge::server`), in process: the same matrix
//! as against python-socketio and Node (each transports setting, namespaces, auth accepted and
//! rejected, binary events and acks both ways).

mod client_common;
mod process_support;

use client_common::*;
use serde_json::{Value, json};
use sioedge::client::{Client, ClientEvent};
use sioedge::config::Transport;
use sioedge::server::Server;
use sioedge::socketio::Arg;
use std::time::Duration;
use tokio::sync::mpsc;

const T: Duration = Duration::from_secs(10);

/// Starts our server with the relay test behaviour on `/` and `/admin`; reports each accepted
/// CONNECT's auth on the returned channel.
async fn start_server() -> (u16, Server, mpsc::UnboundedReceiver<(String, Value)>) {
    let server = Server::builder().build();
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    for ns in ["/", "/admin"] {
        let seen = seen_tx.clone();
        server.of(ns).on_connect(move |socket, auth| {
            if auth.get("token") != Some(&json!("s3cret")) {
                return Err(json!({ "message": "bad token" }));
            }
            let _ = seen.send((ns.to_owned(), auth.clone()));
            socket.on("echo", |socket, args, _| {
                let _ = socket.emit("echo-back", args);
            });
            socket.on("ack-me", |_, args, ack| {
                if let Some(ack) = ack {
                    let _ = ack.send(args);
                }
            });
            socket.on("which-transport", |socket, _, ack| {
                if let Some(ack) = ack {
                    let t = format!("{:?}", socket.conn().transport()).to_lowercase();
                    let _ = ack.send(vec![Arg::Json(json!(t))]);
                }
            });
            socket.on("ask-me", |socket, args, _| {
                let socket = socket.clone();
                tokio::spawn(async move {
                    if let Ok(answer) = socket.emit_with_ack("question", args, T).await {
                        let _ = socket.emit("answer", answer);
                    }
                });
            });
            Ok(())
        });
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let s = server.clone();
    tokio::spawn(async move { s.serve(listener).await });
    (port, server, seen_rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_interop_own_server() {
    let (port, server, mut seen) = start_server().await;
    let settings: [&[Transport]; 3] = [
        &[Transport::Websocket],
        &[Transport::Polling],
        &[Transport::Polling, Transport::Websocket],
    ];
    for transports in settings {
        let what = format!("own server {transports:?}");
        let (client, mut events) = Client::connect(options(port, transports, "s3cret")).unwrap();
        assert!(
            connected(&mut events, "/", T).await,
            "{what}: / not connected"
        );
        assert!(
            connected(&mut events, "/admin", T).await,
            "{what}: /admin not connected"
        );
        let (ns, auth) = seen.recv().await.unwrap();
        assert_eq!(
            (ns.as_str(), auth),
            ("/", json!({ "token": "s3cret", "device": "pi" })),
            "{what}"
        );
        let _ = seen.recv().await;
        for ns in ["/", "/admin"] {
            exchange(&client, &mut events, ns, &what).await;
        }
        if transports.len() == 2 {
            assert_upgraded(&client, &what).await;
        }
        close(&client).await;
    }

    // Rejected: the server's CONNECT_ERROR data reaches the client as the message.
    let mut o = options(port, &[Transport::Websocket], "wrong");
    o.extra_namespaces.clear();
    let (client, mut events) = Client::connect(o).unwrap();
    let ev = next_event(&mut events, T, |e| {
        matches!(e, ClientEvent::ConnectError { .. })
    })
    .await
    .expect("no ConnectError");
    let ClientEvent::ConnectError { message, .. } = ev else {
        unreachable!()
    };
    assert_eq!(message, "bad token");
    close(&client).await;
    server.shutdown().await;
}
