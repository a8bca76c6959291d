//! socketioxide fan-out peer for sioload's contract (the same one scripts/bench/bench-server.rs
//! serves): a viewer's `watch {"stream": id}` (acked `{"ok": true}`) joins room `id`; each
//! `frame` event (JSON meta with `stream`, then the binary frame) is re-emitted with the same two
//! arguments to the room of its `stream`. Usage: socketioxide-bench-peer --port N (0 = any; prints
//! "listening on ADDR").
use axum::serve::{Listener, ListenerExt};
use bytes::Bytes;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};

fn stream_of(v: &Value) -> Option<String> {
    v.get("stream").and_then(Value::as_str).map(str::to_owned)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut port = 0u16;
    while let Some(a) = args.next() {
        if a == "--port" {
            port = args.next().ok_or("--port needs a value")?.parse()?;
        }
    }
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", async |socket: SocketRef| {
        socket.on("watch", async |socket: SocketRef, Data(watch): Data<Value>, ack: AckSender| {
            let reply = match stream_of(&watch) {
                Some(stream) => {
                    socket.join(stream);
                    json!({"ok": true})
                }
                None => json!({"error": "watch needs {stream}"}),
            };
            let _ = ack.send(&reply);
        });
        socket.on("frame", async |socket: SocketRef, Data((meta, frame)): Data<(Value, Bytes)>| {
            if let Some(stream) = stream_of(&meta) {
                let _ = socket.within(stream).emit("frame", &(meta, frame)).await;
            }
        });
    });
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
