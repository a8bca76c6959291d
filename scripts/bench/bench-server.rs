//! The sioedge side of `scripts/bench-server`: `server::Server` as a library, serving the load
//! generator's contract (sioload, `../shared/tools/sioload`). A viewer's `watch {"stream": id}`
//! (acked `{"ok": true}`) joins room `id`; every `frame` event (JSON meta with `stream`, then the
//! binary frame) is re-emitted with the same two arguments to that room, encoded once and shared
//! (`emit_shared`, volatile: a viewer that cannot keep up loses frames). One current-thread
//! runtime: the benchmark pins the server to one core.
//! Usage: `bench-server --port N` (0 = any; prints "listening on ADDR").

use serde_json::{Value, json};
use sioedge::queue::Class;
use sioedge::server::Server;
use sioedge::socketio::Arg;

/// The `stream` member of an event's first argument.
fn stream_of(args: &[Arg]) -> Option<&str> {
    match args.first() {
        Some(Arg::Json(v)) => v.get("stream").and_then(Value::as_str),
        _ => None,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut port = 0u16;
    while let Some(a) = args.next() {
        if a == "--port" {
            port = args.next().ok_or("--port needs a value")?.parse()?;
        }
    }
    let server = Server::builder().build();
    server.of("/").on_connect(|socket, _| {
        socket.on("watch", |socket, args, ack| {
            let reply = match stream_of(&args) {
                Some(stream) => {
                    socket.join(stream);
                    json!({"ok": true})
                }
                None => json!({"error": "watch needs {stream}"}),
            };
            if let Some(ack) = ack {
                let _ = ack.send(vec![Arg::Json(reply)]);
            }
        });
        socket.on("frame", |socket, args, _| {
            let Some(stream) = stream_of(&args).map(str::to_owned) else {
                return;
            };
            let ns = socket.namespace();
            let packet = ns.encode_event("frame", args);
            let _ = ns.to(&stream).emit_shared(packet, Class::Volatile);
        });
        Ok(())
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    tokio::select! {
        _ = server.serve(listener) => {}
        _ = tokio::signal::ctrl_c() => server.shutdown().await,
    }
    Ok(())
}
