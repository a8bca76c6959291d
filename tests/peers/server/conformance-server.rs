//! The server under test for the official Engine.IO v4 and Socket.IO v5 protocol test suites:
//! `cargo run --example conformance-server -- --port 3000`.
//!
//! On one port: a raw Engine.IO echo at `/engine.io/` and Socket.IO at `/socket.io/` with
//! namespaces `/` and `/custom` that emit `auth` on connect, answer `message` with
//! `message-back` and ack `message-with-ack` with the same arguments. Ping interval 300 ms,
//! ping timeout 200 ms, max payload 1,000,000, connect timeout 1,000 ms.

use sioedge::engineio::Packet;
use sioedge::server::{
    CloseReason, Conn, ConnHandler, EncodedPacket, EngineHandler, Incoming, Server,
};
use sioedge::socketio::Arg;
use std::sync::Arc;
use std::time::Duration;

/// Echoes every Engine.IO message back.
struct Echo;

impl EngineHandler for Echo {
    fn open(&self, _conn: &Arc<Conn>) -> Arc<dyn ConnHandler> {
        Arc::new(Echo)
    }
}

impl ConnHandler for Echo {
    fn message(self: Arc<Self>, conn: &Arc<Conn>, msg: Incoming) {
        let packet = match msg {
            Incoming::Text(text) => Packet::Message(text),
            Incoming::Binary(data) => Packet::Binary(data),
        };
        conn.send(Arc::new(EncodedPacket::new(vec![packet])));
    }

    fn close(self: Arc<Self>, _conn: &Arc<Conn>, _reason: CloseReason) {}
}

fn port_from_args() -> Result<u16, String> {
    let mut args = std::env::args().skip(1);
    let mut port = 3000;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => {
                let v = args.next().ok_or("--port needs a value")?;
                port = v.parse().map_err(|e| format!("bad port {v}: {e}"))?;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(port)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Logs on stderr: stdout carries the `listening on` line.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let port = port_from_args()?;
    let server = Server::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_payload(1_000_000)
        .connect_timeout(Duration::from_millis(1000))
        .engine_endpoint("/engine.io/", Arc::new(Echo))
        .build();
    for nsp in ["/", "/custom"] {
        server.of(nsp).on_connect(|socket, auth| {
            let _ = socket.emit("auth", vec![Arg::Json(auth.clone())]);
            socket.on("message", |socket, args, _ack| {
                let _ = socket.emit("message-back", args);
            });
            socket.on("message-with-ack", |_socket, args, ack| {
                if let Some(ack) = ack {
                    let _ = ack.send(args);
                }
            });
            Ok(())
        });
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    // Tests read this line to learn the port when started with --port 0.
    println!("listening on {}", listener.local_addr()?);
    let serve = server.serve(listener);
    tokio::select! {
        _ = serve => {}
        _ = tokio::signal::ctrl_c() => server.shutdown().await,
    }
    Ok(())
}
